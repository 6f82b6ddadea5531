"""Spiking models that are never silently wrong: every copy of the LIF membrane agrees in
the network's dtype, refractory periods follow Brian2's rule, refractory units hold ``v``
in every integrator stage, the IAF noise stream survives ``state_dict``, and every
parameter of every spiking model and synapse is checked where it is set.

The references here are small and independent: Brian2's refractory rule and a per-stage
RK4 are written out in NumPy, float64, without the library's integrators or kernels."""

from __future__ import annotations

import copy
import io
import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rnngraph import Network, native
from rnngraph.nodes import (
    ALIF,
    EIF,
    IAF,
    INTEGRATORS,
    LIF,
    QIF,
    AdEx,
    DoubleExpSynapse,
    ExpSynapse,
    Izhikevich,
    affine_gain,
    build_kernel,
)
from rnngraph.nodes import _spiking as spiking

F64 = torch.float64
REFERENCE = Path(__file__).parents[1].parent / "shared" / "reference" / "brian2_iaf_result.json"


def _run(net: Network, x: torch.Tensor, names: list[str], grad: bool) -> dict[str, np.ndarray]:
    """Run ``net`` on ``x``; with ``grad`` through the autograd step (an input that requires
    grad), else through the no-gradient fast path."""
    x = x.clone().requires_grad_(grad)
    rec = net.run(x, enable_grad=grad, record=names)
    return {k: rec[k].detach().numpy() for k in names}


def _paths(build, x: torch.Tensor, names: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """The same network through the gradient step, the no-gradient torch step and the
    no-gradient native step (when the native library is there)."""
    out = {"grad": _run(build(), x, names, True)}
    was = native.enabled()
    try:
        native.set_enabled(False)
        out["nograd-torch"] = _run(build(), x, names, False)
        native.set_enabled(True)
        if native.available():
            out["nograd-native"] = _run(build(), x, names, False)
    finally:
        native.set_enabled(was)
    return out


# --------------------------------------------------------------------------------------
# 6. one affine membrane map, in the network's dtype, on every path
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["lif", "iaf"])
def test_euler_with_dt_equal_to_tau_at_threshold_fires_no_spike(model):
    """Euler with dt = tau jumps to the fixed point u in one step: with u = v_th exactly
    (strict threshold) no unit ever spikes, on any path, and v = u from step 0 on."""
    dt, n, T = 0.1, 100, 100  # float32(0.1) > 0.1: a float32 dt / tau overshoots u
    if model == "lif":
        kwargs = {"tau_m": dt, "v_th": 1.0, "integrator": "euler"}
        drive, u = 1.0, 1.0
    else:  # dyadic values: u = v_rest + r_m (I + bias) = v_thresh exactly
        kwargs = {"tau_mem": dt, "v_thresh": -0.0546875, "v_reset": -0.0625}
        kwargs.update(v_rest=-0.0625, bias=0.0078125, integrator="euler")
        drive, u = 0.0, -0.0546875
        assert -0.0625 + 0.0078125 == u

    def build():
        net = Network(dt, dtype=F64)
        net.add_diffeq_node("cells", model, n, **kwargs)
        return net

    x = torch.full((T, n), drive, dtype=F64)
    for path, rec in _paths(build, x, ["cells", "cells.v"]).items():
        assert rec["cells"].sum() == 0, path
        np.testing.assert_array_equal(rec["cells.v"], u, err_msg=path)


@pytest.mark.parametrize("integrator", ["exp_euler", "euler", "rk4"])
@pytest.mark.parametrize("model", ["lif", "alif", "iaf"])
@pytest.mark.parametrize("reset", ["value", "subtract"])
def test_no_gradient_paths_equal_the_gradient_path_in_float64(model, integrator, reset):
    """Voltages to 1e-12 and spike for spike: the gradient step, the no-gradient torch step
    and the native step, with refractory holds (2.5 steps: 1 held step)."""
    n, T = 40, 400
    dt = 1e-4 if model == "iaf" else 0.3  # 0.3: not a float32 number
    g = np.random.default_rng(7)
    common = {"reset": reset, "integrator": integrator, "refractory": 2.5 * dt}
    if model == "iaf":
        kwargs = {"tau_mem": g.uniform(0.005, 0.03, n), "bias": 0.0, **common}
        x = torch.as_tensor(g.uniform(0.0, 0.05, (T, n)))
    else:
        kwargs = {"tau_m": g.uniform(2.0, 30.0, n), "v_reset": -0.2, **common}
        x = torch.as_tensor(g.uniform(0.0, 4.0, (T, n)))

    def build():
        net = Network(dt, dtype=F64)
        net.add_diffeq_node("cells", model, n, **kwargs)
        return net

    runs = _paths(build, x, ["cells", "cells.v", "cells.ref"])
    ref = runs.pop("grad")
    assert ref["cells"].sum() > 200 and ref["cells.ref"].max() == 1.0
    for path, rec in runs.items():
        np.testing.assert_array_equal(rec["cells"], ref["cells"], err_msg=path)
        np.testing.assert_array_equal(rec["cells.ref"], ref["cells.ref"], err_msg=path)
        np.testing.assert_allclose(rec["cells.v"], ref["cells.v"], rtol=0, atol=1e-12, err_msg=path)


@pytest.mark.parametrize("model", ["lif", "iaf"])
def test_a_unit_held_by_its_initial_state_is_held_on_every_path(model):
    """Without a refractory period, an initial countdown ref = 3 (set by the user) still
    holds v for 3 steps and counts down, on every path as in lif_step."""
    dt = 1e-4 if model == "iaf" else 1.0
    kwargs = {"bias": 0.0} if model == "iaf" else {"tau_m": 5.0}
    drive = 0.05 if model == "iaf" else 2.0

    def build():
        net = Network(dt, dtype=F64)
        net.add_diffeq_node("cells", model, 2, init={"ref": [3.0, 0.0]}, **kwargs)
        return net

    x = torch.full((8, 2), drive, dtype=F64)
    runs = _paths(build, x, ["cells.v", "cells.ref"])
    ref = runs.pop("grad")
    np.testing.assert_array_equal(ref["cells.ref"][:4, 0], [2.0, 1.0, 0.0, 0.0])
    assert (ref["cells.v"][:3, 0] == ref["cells.v"][0, 0]).all() and ref["cells.v"][3, 0] != ref[
        "cells.v"
    ][2, 0]
    for path, rec in runs.items():
        np.testing.assert_array_equal(rec["cells.ref"], ref["cells.ref"], err_msg=path)
        np.testing.assert_allclose(rec["cells.v"], ref["cells.v"], rtol=0, atol=1e-15, err_msg=path)


def test_float64_gain_is_computed_in_float64():
    """g = exp(-dt/tau) to the last bit for a float64 network (not dt rounded to float32),
    and the run follows the exact closed form of the IAF under its bias to 1e-15 V."""
    dt, tau = 1e-4, 0.02
    like = torch.zeros((), dtype=F64)
    assert affine_gain("exp_euler", dt, torch.tensor(tau, dtype=F64), like).item() == (
        math.exp(-dt / tau)
    )
    assert affine_gain("euler", dt, tau, like).item() == 1.0 - dt / tau
    h = dt / tau
    assert affine_gain("rk4", dt, tau, like).item() == pytest.approx(
        1 - h + h**2 / 2 - h**3 / 6 + h**4 / 24, rel=1e-15
    )
    net = Network(dt, dtype=F64)
    net.add_diffeq_node("iaf", "iaf", 1, bias=0.009, integrator="exp_euler")
    with torch.no_grad():
        v = net.run(steps=200, record=["iaf.v"])["iaf.v"].numpy()[:, 0]
    k = np.arange(1, 201)
    closed = -0.065 + 0.009 * (1.0 - np.exp(-k * dt / tau))  # below threshold all along
    np.testing.assert_allclose(v, closed, rtol=0, atol=1e-15)


@pytest.mark.parametrize("integrator", ["exp_euler", "euler", "rk4"])
def test_every_copy_of_the_lif_membrane_agrees(integrator):
    """LIF.rhs through the generic integrator, lif_step's affine map, the no-gradient
    kernel (torch and native) and e-prop's membrane constants: one map."""
    from rnngraph.training._eprop import _membrane_constants

    n, B, dt = 8, 3, 0.7
    g = torch.Generator().manual_seed(2)
    node = LIF(n, tau_m=torch.linspace(1.0, 30.0, n), v_th=50.0, integrator=integrator)
    node = node.double()
    v = torch.randn(B, n, generator=g, dtype=F64)
    i = 3.0 * torch.randn(B, n, generator=g, dtype=F64)
    s = node.init_state(B)._replace(v=v)
    model = SimpleNamespace(State=node.ODEState, rhs=node.rhs, decay=node.decay)
    ode = INTEGRATORS[integrator](model, node.ODEState(v), node.Inputs(i), dt)
    _, affine = node.step(s, node.Inputs(i), dt)
    was = native.enabled()
    try:
        for flag in (False, True):
            native.set_enabled(flag)
            with torch.no_grad():
                name = "native LIF step" if flag else "torch LIF step"
                _, fast = build_kernel(name, node, dt)(tuple(s), i)
            np.testing.assert_allclose(fast[0], affine.v, rtol=0, atol=1e-13)
    finally:
        native.set_enabled(was)
    np.testing.assert_allclose(ode.v, affine.v, rtol=0, atol=1e-13)
    alpha, c = _membrane_constants("test", node, dt)
    torch.testing.assert_close(alpha, affine_gain(integrator, dt, node.tau_m, v), rtol=0, atol=0)
    np.testing.assert_allclose(affine.v, alpha * v + c * i, rtol=0, atol=1e-13)


def test_brian2_reference_still_matches():
    """The 100-unit Brian2 IAF reference (rk4, refractory 0): every path, spike counts."""
    if not REFERENCE.exists():
        pytest.skip(f"Brian2 reference file {REFERENCE} is absent (it lives outside the repo)")
    ref = json.loads(REFERENCE.read_text())
    p = ref["params"]
    rng = np.random.default_rng(p["seed"])
    W = p["W_scale"] * rng.standard_normal((p["N_in"], p["N"]))
    bias = p["bias_A"] + p["I_per_channel_A"] * np.ones(p["N_in"]) @ W
    steps = round(p["duration_s"] / p["dt_s"])
    kwargs = {"tau_mem": p["tau_mem_s"], "v_thresh": p["v_thresh_V"], "r_m": p["r_m_ohm"]}
    kwargs.update(v_reset=p["v_reset_V"], v_rest=p["v_rest_V"], integrator=p["method"])

    def build():
        net = Network(p["dt_s"], dtype=F64)
        net.add_diffeq_node("iaf", "iaf", p["N"], bias=bias, **kwargs)
        return net

    runs = _paths(build, torch.zeros(steps, p["N"], dtype=F64), ["iaf"])
    for path, rec in runs.items():
        counts = rec["iaf"].sum(axis=0).astype(int)
        for run in ref["runs"]:
            np.testing.assert_array_equal(counts, run["counts"], err_msg=path)


# --------------------------------------------------------------------------------------
# 7. Brian2's refractory rule
# --------------------------------------------------------------------------------------


def _timestep(t: float, dt: float) -> int:
    """Brian2's ``timestep(t, dt)`` (brian2.core.functions): truncation after a 1e-3 dt
    shift."""
    return int(np.array((t + 1e-3 * dt) / dt, dtype=np.int64))


def _brian2_refractory(spikes: np.ndarray, dt: float, refractory: float) -> np.ndarray:
    """Brian2's ``not_refractory`` at each step from the spike steps before it: ``t - lastspike``
    with ``t = i dt`` and ``lastspike`` the time of the last spike (-1e4 before any)."""
    out = np.ones(len(spikes), dtype=bool)
    lastspike = -1e4
    for j in range(len(spikes)):
        t = j * dt
        out[j] = _timestep(t - lastspike, dt) >= _timestep(refractory, dt)
        if spikes[j]:
            lastspike = t
    return out


def _brian2_lif(x: np.ndarray, dt: float, tau: float, refractory: float) -> tuple:
    """A Brian2 LIF (``(unless refractory)``, threshold ``v > 1``, reset ``v = 0``), exact
    integration, per step: not_refractory, integrate, threshold, reset."""
    v, lastspike = 0.0, -1e4
    a = math.exp(-dt / tau)
    zs, vs = [], []
    for j, i in enumerate(x):
        t = j * dt
        not_ref = _timestep(t - lastspike, dt) >= _timestep(refractory, dt)
        if not_ref:
            v = i + (v - i) * a
        spike = v > 1.0 and not_ref
        if spike:
            lastspike, v = t, 0.0
        zs.append(float(spike))
        vs.append(v)
    return np.array(zs), np.array(vs)


RATIOS = [0.0, 0.5, 1.0, 1.4, 1.5, 2.0, 2.000001, 2.5, 19.99]


@pytest.mark.parametrize("ratio", RATIOS)
def test_refractory_steps_count_like_brian2(ratio):
    for dt in (1.0, 0.1, 1e-4, 0.3):
        refractory = ratio * dt
        expected = max(_timestep(refractory, dt) - 1, 0)
        assert spiking.refractory_steps(refractory, dt).item() == expected, (ratio, dt)
    assert [max(_timestep(r, 1.0) - 1, 0) for r in RATIOS] == [0, 0, 0, 0, 0, 1, 1, 1, 18]


@pytest.mark.parametrize("ratio", RATIOS)
def test_lif_refractory_spike_trains_match_a_brian2_reimplementation(ratio):
    """Strong, varying drive (a spike soon after every refractory period): every path
    spikes at Brian2's steps and holds v where Brian2 holds it."""
    dt, tau, T = 0.1, 0.3, 1000
    x = np.random.default_rng(11).uniform(1.2, 6.0, T)
    refractory = ratio * dt
    z_ref, v_ref = _brian2_lif(x, dt, tau, refractory)
    assert z_ref.sum() > 40

    def build():
        net = Network(dt, dtype=F64)
        net.add_diffeq_node("cells", "lif", 1, tau_m=tau, refractory=refractory)
        return net

    runs = _paths(build, torch.as_tensor(x).reshape(T, 1), ["cells", "cells.v"])
    for path, rec in runs.items():
        np.testing.assert_array_equal(rec["cells"][:, 0], z_ref, err_msg=path)
        np.testing.assert_allclose(rec["cells.v"][:, 0], v_ref, rtol=0, atol=1e-12)


MODELS = {
    # model: (kwargs, drive, dt, T)
    "lif": ({}, 3.0, 0.1, 1500),
    "alif": ({"beta": 0.3, "tau_a": 100.0, "reset": "value"}, 3.0, 0.1, 1500),
    "iaf": ({"bias": 0.0}, 0.04, 1e-4, 1500),
    "qif": ({}, 400.0, 1e-3, 1500),
    "izhikevich": ({}, 300.0, 0.05, 3000),
    "adex": ({}, 1500.0, 0.1, 2000),
    "eif": ({}, 1500.0, 0.1, 2000),
}


@pytest.mark.parametrize("ratio", [1.5, 2.5, 19.99])
@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_is_refractory_exactly_where_brian2_is(model, ratio):
    """From each model's own spikes, Brian2's rule says which steps are refractory: there v
    is held (equal to the step before) and no spike occurs; elsewhere v moves."""
    kwargs, drive, dt, T = MODELS[model]
    refractory = ratio * dt
    net = Network(dt, dtype=F64)
    net.add_diffeq_node("cells", model, 1, refractory=refractory, **kwargs)
    x = torch.as_tensor(np.random.default_rng(5).uniform(0.8, 1.2, (T, 1)) * drive)
    rec = net.run(x, record=["cells", "cells.v"])
    z, v = rec["cells"].numpy()[:, 0], rec["cells.v"].numpy()[:, 0]
    assert z.sum() >= 5, "the check needs spikes"
    free = _brian2_refractory(z, dt, refractory)
    held = np.flatnonzero(~free)
    assert len(held) > 0 or ratio < 2
    assert z[held].sum() == 0
    np.testing.assert_array_equal(v[held], v[held - 1])
    moving = np.flatnonzero(free[1:]) + 1
    assert (v[moving] != v[moving - 1]).all()


def test_brian2_refractory_timing_on_a_hand_case():
    """refractory = 1.5 dt: R = int(1.5 + 1e-3) = 1, so nothing is held (round() gave 2)."""
    dt = 1.0
    net = Network(dt, dtype=F64)
    net.add_diffeq_node("cells", "lif", 1, tau_m=1.0, refractory=1.5)
    z = net.run(torch.full((10, 1), 100.0, dtype=F64)).output.numpy()[:, 0]
    np.testing.assert_array_equal(z, 1.0)  # a spike at every step
    net = Network(dt, dtype=F64)
    net.add_diffeq_node("cells", "lif", 1, tau_m=1.0, refractory=19.99)
    z = net.run(torch.full((40, 1), 100.0, dtype=F64)).output.numpy()[:, 0]
    np.testing.assert_array_equal(np.flatnonzero(z), [0, 19, 38])  # 18 held steps


# --------------------------------------------------------------------------------------
# 8. a refractory v is held in every integrator stage
# --------------------------------------------------------------------------------------


def _adex_rhs(p: dict):
    def f(v, w, i):
        vc = np.minimum(v, p["v_peak"])
        exp = p["g_L"] * p["Delta_T"] * np.exp((vc - p["V_T"]) / p["Delta_T"])
        dv = (-p["g_L"] * (v - p["E_L"]) + exp - w + i) / p["C"]
        return dv, (p["a"] * (v - p["E_L"]) - w) / p["tau_w"]

    return f


def _izhikevich_rhs(p: dict):
    def f(v, u, i):
        dv = (p["k"] * (v - p["v_r"]) * (v - p["v_theta"]) - u + i + p["eta"]) / p["C"]
        return dv, (p["b"] * (v - p["v_r"]) - u) / p["tau_u"]

    return f


def _brian2_rk4(f, v, w, i, dt, held):
    """Classical RK4 with dv/dt multiplied by not_refractory in every stage."""

    def F(v, w):
        dv, dw = f(v, w, i)
        return np.where(held, 0.0, dv), dw

    k1 = F(v, w)
    k2 = F(v + 0.5 * dt * k1[0], w + 0.5 * dt * k1[1])
    k3 = F(v + 0.5 * dt * k2[0], w + 0.5 * dt * k2[1])
    k4 = F(v + dt * k3[0], w + dt * k3[1])
    v1 = v + dt / 6.0 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
    w1 = w + dt / 6.0 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
    return v1, w1


def _brian2_run(f, p, x, dt, refractory, v0, jump):
    """Brian2's step per unit: not_refractory, rk4, threshold v > v_peak, reset."""
    T, n = x.shape
    v, w = np.full(n, v0), np.zeros(n)
    lastspike = np.full(n, -1e4)
    R = _timestep(refractory, dt)
    zs, vs, ws = (np.zeros((T, n)) for _ in range(3))
    for j in range(T):
        t = j * dt
        free = np.array([_timestep(t - ls, dt) >= R for ls in lastspike])
        v, w = _brian2_rk4(f, v, w, x[j], dt, ~free)
        spike = (v > p["v_peak"]) & free
        lastspike[spike] = t
        v = np.where(spike, p["v_reset"], v)
        w = w + jump * spike
        zs[j], vs[j], ws[j] = spike, v, w
    return zs, vs, ws


@pytest.mark.parametrize("model", ["adex", "izhikevich"])
def test_rk4_holds_a_refractory_v_in_every_stage(model):
    """AdEx's w and Izhikevich's u integrate against the held v, as in Brian2."""
    n = 6
    if model == "adex":
        # a cut-off at V_T + 5 Delta_T (Brette & Gerstner): rk4's stages stay moderate
        node = AdEx(n, refractory=2.0, v_peak=-40.4, integrator="rk4")
        names = ("C", "g_L", "E_L", "V_T", "Delta_T", "a", "tau_w", "v_reset", "v_peak")
        dt, T, drive, other, jump = 0.1, 2000, 1500.0, "w", "b"
        v0 = -70.6
    else:
        node = Izhikevich(n, refractory=1.0, v_peak=30.0, v_reset=-50.0, integrator="rk4")
        names = ("C", "k", "v_r", "v_theta", "eta", "b", "tau_u", "v_reset", "v_peak")
        dt, T, drive, other, jump = 0.05, 3000, 150.0, "u", "kappa"
        v0 = -60.0
    p = {k: getattr(node, k).item() for k in names}
    f = _adex_rhs(p) if model == "adex" else _izhikevich_rhs(p)
    x = np.random.default_rng(3).uniform(0.7, 1.3, (T, n)) * drive
    refractory, jump = node.refractory.item(), getattr(node, jump).item()
    z_ref, v_ref, w_ref = _brian2_run(f, p, x, dt, refractory, v0, jump)
    assert z_ref.sum() > 5 * n
    net = Network(dt, dtype=F64)
    net.add_node("cells", node)
    rec = net.run(torch.as_tensor(x), record=["cells", "cells.v", f"cells.{other}"])
    np.testing.assert_array_equal(rec["cells"].numpy(), z_ref)
    np.testing.assert_allclose(rec["cells.v"].numpy(), v_ref, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(rec[f"cells.{other}"].numpy(), w_ref, rtol=1e-9, atol=1e-9)


# --------------------------------------------------------------------------------------
# 23. the IAF noise stream in state_dict
# --------------------------------------------------------------------------------------


def _noisy(seed: int) -> Network:
    net = Network(1e-4, dtype=F64)
    g = np.random.default_rng(5)
    net.add_diffeq_node(
        "iaf", "iaf", 4, bias=g.uniform(0.03, 0.05, 4), refractory=3e-4, noise_std=2e-3, seed=seed
    )
    return net


def test_iaf_noise_continues_after_a_state_dict_round_trip():
    src = _noisy(9)
    src.run(steps=300)
    held = {k: v.clone() for k, v in src.compile().state.items()}
    buf = io.BytesIO()
    torch.save(src.state_dict(), buf)
    dst = _noisy(123)  # another seed: the loaded generator state must win
    buf.seek(0)
    dst.load_state_dict(torch.load(buf))
    dst.reset(held)
    copied = copy.deepcopy(src)
    a = src.run(steps=500, record=["iaf", "iaf.v"])
    b = dst.run(steps=500, record=["iaf", "iaf.v"])
    c = copied.run(steps=500, record=["iaf", "iaf.v"])
    assert a["iaf"].sum() > 20
    for other in (b, c):
        assert torch.equal(other["iaf"], a["iaf"])
        assert torch.equal(other["iaf.v"], a["iaf.v"])


def test_iaf_extra_state_without_generators_restarts_from_the_seed():
    """A state saved without generator states (older files) restarts from its seed."""
    fresh = _noisy(9)
    node = fresh.get_node("iaf")
    node.set_extra_state({"noise_std": 2e-3, "seed": 9})
    a = fresh.run(steps=200).output
    b = _noisy(9).run(steps=200).output
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("state", "error", "match"),
    [
        ({"seed": 1}, ValueError, r"IAF.load_state_dict: the IAF extra state must be a dict"),
        ({"noise_std": -1.0, "seed": 1}, ValueError, r"noise_std must be finite and >= 0"),
        ({"noise_std": 0.1, "seed": 1.5}, TypeError, r"IAF.load_state_dict: seed must be an int"),
        (
            {"noise_std": 0.1, "seed": 1, "generators": {"cpu": torch.zeros(3)}},
            ValueError,
            r"the noise generator state for device 'cpu' is not one",
        ),
    ],
)
def test_iaf_bad_extra_state_is_refused_and_changes_nothing(state, error, match):
    node = IAF(2, noise_std=1e-3, seed=4)
    before = node.get_extra_state()
    with pytest.raises(error, match=match):
        node.set_extra_state(state)
    assert node.get_extra_state() == before


# --------------------------------------------------------------------------------------
# 11. every parameter checked where it is set
# --------------------------------------------------------------------------------------

P, F, NN = "positive", "finite", "nonnegative"
RULES = {
    LIF: {"tau_m": P, "v_rest": F, "v_th": F, "v_reset": F, "r_m": P, "refractory": NN},
    ALIF: {
        **{"tau_m": P, "tau_a": P, "beta": NN, "v_rest": F, "v_th": F, "v_reset": F},
        **{"r_m": P, "refractory": NN},
    },
    IAF: {
        **{"tau_mem": P, "v_thresh": F, "v_reset": F, "v_rest": F, "r_m": P, "bias": F},
        "refractory": NN,
    },
    QIF: {
        **{"tau": P, "eta": F, "k": F, "tau_s": P, "v_peak": F, "v_reset": F},
        "refractory": NN,
    },
    Izhikevich: {
        **{"C": P, "k": F, "v_r": F, "v_theta": F, "eta": F, "g": NN, "E_r": F, "b": F},
        **{"tau_u": P, "kappa": F, "tau_s": P, "v_peak": F, "v_reset": F, "refractory": NN},
    },
    AdEx: {
        **{"C": P, "g_L": P, "E_L": F, "V_T": F, "Delta_T": P, "a": F, "tau_w": P, "b": F},
        **{"v_reset": F, "v_peak": F, "refractory": NN},
    },
    EIF: {
        **{"C": P, "g_L": P, "E_L": F, "V_T": F, "Delta_T": P, "v_reset": F, "v_peak": F},
        "refractory": NN,
    },
    ExpSynapse: {"tau": P},
    DoubleExpSynapse: {"tau_r": P, "tau_d": P},
}
TEXT = {P: "finite and > 0", F: "finite", NN: "finite and >= 0"}
BAD = {
    P: [0.0, -1.0, math.nan, math.inf],
    F: [math.nan, math.inf, -math.inf],
    NN: [-1.0, -math.inf, math.nan, math.inf],
}
CASES = [
    (cls, name, rule, bad)
    for cls, table in RULES.items()
    for name, rule in table.items()
    for bad in BAD[rule]
]


def _id(case) -> str:
    cls, name, _, bad = case
    return f"{cls.__name__}-{name}={bad}"


def test_the_table_covers_every_parameter_of_every_model():
    for cls, table in RULES.items():
        assert set(cls(3).param_names) == set(table), cls.__name__


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_a_bad_parameter_value_is_refused_with_its_name(case):
    cls, name, rule, bad = case
    msg = rf"{cls.__name__}: parameter '{name}' must be {TEXT[rule]}, got {re.escape(repr(bad))}"
    with pytest.raises(ValueError, match=msg):
        cls(3, **{name: bad})
    # one bad entry of a per-unit array
    with pytest.raises(ValueError, match=msg + r" \(1 of 3 values are not\)"):
        cls(3, **{name: np.array([2.0, bad, 3.0]) if rule != F else np.array([0.0, bad, 0.0])})


@pytest.mark.parametrize("cls", list(RULES), ids=lambda c: c.__name__)
def test_set_var_checks_a_parameter_and_leaves_it_as_it_was(cls):
    """Network.set_var checks a parameter as the constructor does: nothing changes."""
    net = Network(0.1, dtype=F64)
    net.add_node("cells", cls(3))
    for name, rule in RULES[cls].items():
        before = net.get_var("cells", name).clone()
        bad = BAD[rule][0]
        what = rf"(parameter '{name}' must be {TEXT[rule]}|cells.{name} contains NaN or inf)"
        with pytest.raises(ValueError, match=rf"Network.set_var.*{what}"):
            net.set_var("cells", name, bad)
        assert torch.equal(net.get_var("cells", name), before)


@pytest.mark.parametrize("cls", list(RULES), ids=lambda c: c.__name__)
def test_a_parameter_of_the_wrong_shape_or_type_is_refused(cls):
    name = next(iter(RULES[cls]))  # a time constant or capacitance
    owner = cls.__name__
    with pytest.raises(
        ValueError,
        match=rf"{owner}: parameter '{name}' must be a scalar or have shape \(3,\), "
        r"got shape \(4,\)",
    ):
        cls(3, **{name: np.ones(4)})
    with pytest.raises(ValueError, match=rf"{owner}: parameter '{name}' .* got shape \(3, 1\)"):
        cls(3, **{name: np.ones((3, 1))})
    for bad in ("fast", 1j, np.array([1.0, None, 2.0]), [1.0, [2.0]]):
        with pytest.raises(TypeError, match=rf"{owner}: parameter '{name}' must"):
            cls(3, **{name: bad})


@pytest.mark.parametrize("cls", list(RULES), ids=lambda c: c.__name__)
def test_good_values_of_any_real_kind_are_accepted(cls):
    name = next(iter(RULES[cls]))
    values = np.array([3.0, 2.0, 1.0])
    node = cls(np.int64(3), **{name: np.float64(2.0)})
    assert node.n == 3 and type(node.n) is int and getattr(node, name).item() == 2.0
    view = np.array([1.0, 2.0, 3.0])[::-1]  # a negative-stride view
    for good in (view, values.astype(np.float32), torch.tensor(values), list(values), np.int64(2)):
        node = cls(3, **{name: good})
        expected = torch.as_tensor(np.asarray(good, dtype=np.float64).copy())
        torch.testing.assert_close(getattr(node, name), expected.to(F64), rtol=0, atol=0)
    assert getattr(cls(3, **{name: view}), name).tolist() == [3.0, 2.0, 1.0]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: LIF(2, surrogate_scale=0.0),
            ValueError,
            r"LIF: surrogate_scale must be finite and > 0, got 0.0",
        ),
        (
            lambda: LIF(2, surrogate_scale=math.nan),
            ValueError,
            r"LIF: surrogate_scale must be finite and > 0, got nan",
        ),
        (
            lambda: ALIF(2, surrogate_scale="3"),
            TypeError,
            r"ALIF: surrogate_scale must be a real number, got '3'",
        ),
        (
            lambda: QIF(2, detach_reset="no"),
            TypeError,
            r"QIF: detach_reset must be True or False, got 'no'",
        ),
        (
            lambda: LIF(2, reset=0),
            ValueError,
            r"LIF: unknown reset 0; valid modes for this model are",
        ),
        (
            lambda: IAF(2, noise_std=math.inf),
            ValueError,
            r"IAF: noise_std must be finite and >= 0, got inf",
        ),
        (
            lambda: IAF(2, noise_std=np.ones(2)),
            TypeError,
            r"IAF: noise_std must be a real number, got ndarray of shape \(2,\)",
        ),
        (lambda: IAF(2, seed=1.5), TypeError, r"IAF: seed must be an int or None, got 1.5"),
        (
            lambda: ExpSynapse(2, normalize="yes"),
            TypeError,
            r"ExpSynapse: normalize must be True or False, got 'yes'",
        ),
        (
            lambda: DoubleExpSynapse(2, normalize=1),
            TypeError,
            r"DoubleExpSynapse: normalize must be True or False, got 1",
        ),
        (
            lambda: DoubleExpSynapse(2, tau_r=[1.0, 3.0], tau_d=[2.0, 3.0]),
            ValueError,
            r"DoubleExpSynapse: tau_r and tau_d must differ .* "
            r"got tau_r=\[1.0, 3.0\], tau_d=\[2.0, 3.0\]",
        ),
        (lambda: AdEx(2, v_peak=-80.0), ValueError, r"AdEx: v_peak must be above v_reset"),
        (lambda: LIF(0), ValueError, r"LIF: n must be a positive int"),
        (lambda: LIF(2.0), TypeError, r"LIF: n must be a positive int"),
        (lambda: ExpSynapse(True), TypeError, r"ExpSynapse: n must be a positive int"),
    ],
)
def test_bad_options_are_refused_with_the_call_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_good_options_of_numpy_kinds_are_accepted():
    node = LIF(2, surrogate_scale=np.float32(5.0), detach_reset=np.True_)
    assert node.spike_fn.params["scale"] == 5.0 and node.detach_reset is True
    iaf = IAF(2, noise_std=np.float64(1e-3), seed=np.int64(7))
    assert iaf.noise_std == 1e-3 and iaf.seed == 7
    assert ExpSynapse(np.int64(2), tau=np.float64(3.0), normalize=np.True_).normalize is True
