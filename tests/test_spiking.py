"""Spiking nodes with numerical intent: analytic LIF spike times, exact refractory holds,
Bellec's ALIF recursion, reset rules, batch independence, gradient checks, error messages."""

from __future__ import annotations

import copy
import io
import math

import numpy as np
import pytest
import torch

from rnngraph import Network, Observer
from rnngraph.nodes import (
    ALIF,
    EIF,
    IAF,
    LIF,
    MODELS,
    QIF,
    AdEx,
    ALIFParameters,
    ALIFState,
    DoubleExpSynapse,
    ExpSynapse,
    Izhikevich,
    alif_step,
    get_surrogate,
)

F64 = torch.float64


def _run_node(node, x, dt, record=(), batched=True):
    """Run ``node`` alone as the input node on external input ``x`` ((B,) T, n)."""
    net = Network(dt, dtype=F64)
    net.add_node("cells", node)
    rec = net.run(x, record=["cells", *record])
    return rec, net


def _lif_period(i_ext, tau, dt, v_th=1.0, r_m=1.0):
    """Steps from v = 0 to the first step with v > v_th under constant input (exp_euler is
    exact): v after m steps is R I (1 - exp(-m dt / tau))."""
    t_star = -tau * math.log(1.0 - v_th / (r_m * i_ext))
    m = math.ceil(t_star / dt)
    assert abs(t_star / dt - round(t_star / dt)) > 1e-6  # not on the grid: no rounding ties
    return t_star, m


# --------------------------------------------------------------------------------------
# LIF
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("integrator", ["exp_euler", "rk4"])
def test_lif_spike_times_match_the_analytic_time_to_threshold(integrator):
    tau, dt, T = 20.0, 0.1, 3000
    currents = [1.05, 1.2, 1.5, 2.0, 3.0, 7.0]
    node = LIF(len(currents), tau_m=tau, integrator=integrator)
    x = torch.tensor(currents, dtype=F64).expand(T, -1)
    rec, _ = _run_node(node, x, dt)
    z = rec["cells"].numpy()
    assert set(np.unique(z)) <= {0.0, 1.0}
    for j, i_ext in enumerate(currents):
        t_star, m = _lif_period(i_ext, tau, dt)
        # step k integrates up to time (k + 1) dt; reset to 0 restarts the same trajectory
        expected = np.arange(m - 1, T, m)
        got = np.flatnonzero(z[:, j])
        np.testing.assert_array_equal(got, expected, err_msg=f"I={i_ext}, t*={t_star}")
        # refractory = 0: no phantom spikes, the count is the analytic one
        assert len(got) == T // m


def test_lif_subthreshold_input_never_spikes_and_relaxes_exactly():
    tau, dt, T = 10.0, 0.5, 200
    node = LIF(1, tau_m=tau, v_th=1.0, r_m=2.0)
    rec, _ = _run_node(node, torch.full((T, 1), 0.45, dtype=F64), dt, record=["cells.v"])
    assert rec["cells"].sum().item() == 0.0
    t = (np.arange(T) + 1) * dt
    np.testing.assert_allclose(
        rec["cells.v"].numpy()[:, 0], 0.9 * (1 - np.exp(-t / tau)), rtol=1e-13
    )


def test_lif_output_at_step_k_reflects_input_at_step_k():
    x = torch.zeros(10, 1, dtype=F64)
    x[4] = 100.0  # one strong pulse
    rec, _ = _run_node(LIF(1, tau_m=5.0), x, 1.0)
    np.testing.assert_array_equal(np.flatnonzero(rec["cells"].numpy()), [4])


def test_refractory_holds_v_and_ignores_input_for_r_minus_1_steps():
    # Brian2's rule: a spike at step k, held at k+1 .. k+R-1, integrating again at k+R
    tau, dt, t_ref = 20.0, 0.5, 2.1  # R = int((2.1 + 1e-3 * 0.5) / 0.5) = 4
    n_hold = 3
    T = 400
    g = np.random.default_rng(3)
    # a strong input that varies every step: any integration while held would move v
    x = torch.as_tensor(3.0 + g.uniform(0.0, 1.0, size=(T, 1)))
    node = LIF(1, tau_m=tau, v_reset=-0.5, refractory=t_ref)
    rec, _ = _run_node(node, x, dt, record=["cells.v", "cells.ref"])
    z, v, ref = (rec[k].numpy()[:, 0] for k in ("cells", "cells.v", "cells.ref"))
    spikes = np.flatnonzero(z)
    assert len(spikes) > 10
    for k in spikes:
        if k + n_hold + 1 >= T:
            break
        np.testing.assert_array_equal(v[k : k + n_hold + 1], -0.5)  # spike step + held steps
        np.testing.assert_array_equal(ref[k : k + n_hold + 1], [3, 2, 1, 0])
        assert v[k + n_hold + 1] > -0.5  # integrates again at k + R
        assert z[k + 1 : k + n_hold + 1].sum() == 0
    # the inter-spike interval: held steps plus the integration steps to threshold
    isi = np.diff(spikes)
    assert isi.min() >= n_hold + 1
    # same run without refractoriness spikes more often
    rec0, _ = _run_node(LIF(1, tau_m=tau, v_reset=-0.5), x, dt)
    assert rec0["cells"].sum().item() > len(spikes)


def test_refractory_isi_is_held_steps_plus_time_to_threshold():
    tau, dt, i_ext = 20.0, 0.1, 1.5
    _, m = _lif_period(i_ext, tau, dt)
    # R = int((t_ref + 1e-3 dt) / dt) steps from the spike to the first integrating step:
    # R - 1 held (Brian2's truncation: 0.29 holds 1 step, not 2)
    for t_ref, n_hold in [(0.0, 0), (0.1, 0), (0.2, 1), (0.29, 1), (1.0, 9), (2.04, 19)]:
        node = LIF(1, tau_m=tau, refractory=t_ref)
        rec, _ = _run_node(node, torch.full((2000, 1), i_ext, dtype=F64), dt)
        isi = np.diff(np.flatnonzero(rec["cells"].numpy()[:, 0]))
        np.testing.assert_array_equal(isi, m + n_hold)


def test_reset_to_value_and_by_subtraction_by_hand():
    tau, dt, i_ext, v_th, v_reset = 10.0, 1.0, 2.0, 1.0, 0.25
    a = math.exp(-dt / tau)
    v_inf = i_ext  # v_rest = 0, r_m = 1
    T = 40
    x = torch.full((T, 1), i_ext, dtype=F64)
    out = {}
    for mode in ("value", "subtract"):
        node = LIF(1, tau_m=tau, v_th=v_th, v_reset=v_reset, reset=mode)
        rec, _ = _run_node(node, x, dt, record=["cells.v"])
        out[mode] = (rec["cells"].numpy()[:, 0], rec["cells.v"].numpy()[:, 0])
    # by hand: exact leak, then threshold, then the reset rule
    for mode, (z_got, v_got) in out.items():
        v, z_prev = 0.0, 0.0
        for k in range(T):
            v = a * v + (1 - a) * v_inf
            if mode == "subtract":
                v -= (v_th - v_reset) * z_prev
            z = float(v > v_th)
            if mode == "value" and z:
                v = v_reset
            assert z_got[k] == z, (mode, k)
            assert v_got[k] == pytest.approx(v, abs=1e-13), (mode, k)
            z_prev = z
    # subtraction keeps the overshoot: v is above threshold in the spike step
    z_s, v_s = out["subtract"]
    assert (v_s[z_s == 1] > v_th).all()
    assert (out["value"][1][out["value"][0] == 1] == v_reset).all()


def test_lif_bellec_form():
    """v(t+1) = alpha v(t) + I(t+1) - v_th z(t), z(t) = H(v(t) - v_th)."""
    dt, tau, v_th, T, n = 1.0, 20.0, 0.6, 300, 5
    g = np.random.default_rng(0)
    x = g.uniform(-0.05, 0.15, size=(T, n))
    node = LIF.bellec(n, dt, tau_m=tau, v_th=v_th)
    assert node.spike_fn.name == "triangle" and node.reset_mode == "subtract"
    rec, _ = _run_node(node, torch.as_tensor(x), dt, record=["cells.v"])
    alpha = math.exp(-dt / tau)
    v, z = np.zeros(n), np.zeros(n)
    vs, zs = [], []
    for t in range(T):
        v = alpha * v + x[t] - v_th * z
        z = (v > v_th).astype(float)
        vs.append(v)
        zs.append(z)
    np.testing.assert_allclose(rec["cells.v"].numpy(), np.array(vs), atol=1e-12)
    np.testing.assert_array_equal(rec["cells"].numpy(), np.array(zs))
    assert np.array(zs).sum() > 20


# --------------------------------------------------------------------------------------
# ALIF
# --------------------------------------------------------------------------------------


def test_alif_threshold_adaptation_matches_the_hand_recursion():
    dt, tau_m, tau_a, beta, v_th, T, n = 1.0, 20.0, 200.0, 0.2, 0.6, 400, 6
    g = np.random.default_rng(1)
    x = g.uniform(0.0, 0.2, size=(T, n))
    r_m = 1.0 / (1.0 - math.exp(-dt / tau_m))
    node = ALIF(n, tau_m=tau_m, tau_a=tau_a, beta=beta, v_th=v_th, r_m=r_m)
    rec, _ = _run_node(node, torch.as_tensor(x), dt, record=["cells.v", "cells.a"])
    alpha, rho = math.exp(-dt / tau_m), math.exp(-dt / tau_a)
    v, a, z = np.zeros(n), np.zeros(n), np.zeros(n)
    vs, as_, zs = [], [], []
    for t in range(T):
        a = rho * a + z
        v = alpha * v + x[t] - v_th * z
        z = (v > v_th + beta * a).astype(float)
        vs.append(v)
        as_.append(a)
        zs.append(z)
    np.testing.assert_array_equal(rec["cells"].numpy(), np.array(zs))
    np.testing.assert_allclose(rec["cells.a"].numpy(), np.array(as_), rtol=1e-12)
    np.testing.assert_allclose(rec["cells.v"].numpy(), np.array(vs), atol=1e-12)
    # the adaptation matters here: without it the units fire more
    node0 = ALIF(n, tau_m=tau_m, tau_a=tau_a, beta=0.0, v_th=v_th, r_m=r_m)
    rec0, _ = _run_node(node0, torch.as_tensor(x), dt)
    assert rec0["cells"].sum() > 1.2 * np.array(zs).sum()


def test_alif_pure_step_matches_the_module():
    g = torch.Generator().manual_seed(2)
    node = ALIF(4, tau_a=50.0, beta=0.5, refractory=2.0).double()
    s = node.init_state(3, dtype=F64)
    st = ALIFState(*s)
    for _ in range(30):
        i = 0.3 * torch.rand(3, 4, generator=g, dtype=F64)
        z1, s = node.step(s, node.Inputs(i), 1.0)
        z2, st = alif_step(i, st, node.params(), 1.0, spike_fn=node.spike_fn)
        assert torch.equal(z1, z2)
        for a, b in zip(s, st, strict=True):
            assert torch.equal(a, b)
    assert isinstance(st, ALIFState) and type(s).__name__ == "ALIFState"


# --------------------------------------------------------------------------------------
# batch independence, gradients
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "kwargs", "scale"),
    [
        ("lif", {"refractory": 2.0}, 1.5),
        ("alif", {"beta": 0.3, "tau_a": 100.0, "refractory": 1.0}, 1.5),
        ("iaf", {"refractory": 2e-4, "bias": 0.0}, 0.02),
        ("qif", {"refractory": 0.05}, 8.0),
        ("izhikevich", {}, 150.0),
        ("adex", {"refractory": 2.0}, 800.0),
        ("eif", {}, 800.0),
    ],
)
def test_batch_elements_are_independent(model, kwargs, scale):
    n, T, B = 5, 300, 4
    dt = {"iaf": 1e-4, "qif": 1e-2}.get(model, 0.1)
    g = np.random.default_rng(4)
    x = torch.as_tensor(scale * g.uniform(0.5, 1.5, size=(B, T, n)))
    net = Network(dt, dtype=F64)
    net.add_diffeq_node("cells", model, n, **kwargs)
    rec = net.run(x, record=["cells", "cells.v"])
    assert rec["cells"].sum() > 0, "the check needs spikes"
    for b in range(B):
        net.reset()
        single = net.run(x[b], record=["cells", "cells.v"])
        torch.testing.assert_close(single["cells"], rec["cells"][b], rtol=0, atol=0)
        torch.testing.assert_close(single["cells.v"], rec["cells.v"][b], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("model", ["lif", "alif", "iaf", "qif", "izhikevich", "adex", "eif"])
def test_gradcheck_of_a_step_with_a_smooth_surrogate(model):
    """Relaxed surrogate (smooth forward, same backward) through three steps, float64."""
    n, B = 3, 2
    sg = get_surrogate("atan", scale=0.8, relaxed=True)
    kwargs = {"surrogate": sg, "detach_reset": False}
    node = MODELS[model](n, **kwargs).double()
    th = getattr(node, node.threshold_name).item()
    gap = th - node.v_reset.item()
    g = torch.Generator().manual_seed(11)
    v0 = th + 0.3 * gap * torch.randn(B, n, generator=g, dtype=F64)
    if model in ("adex", "eif"):  # below the exponential's runaway: finite differences work
        v0 = -58.0 + 3.0 * torch.randn(B, n, generator=g, dtype=F64)
    scale = {"iaf": 1e-3, "izhikevich": 50.0, "adex": 50.0, "eif": 50.0, "qif": 1.0}
    dt = {"iaf": 1e-4, "qif": 1e-3}.get(model, 0.1)
    i = scale.get(model, 0.2) * torch.randn(B, n, generator=g, dtype=F64)

    def f(i, v0):
        s = node.init_state(B, dtype=F64)
        s = s._replace(v=v0)
        zs = []
        for _ in range(3):
            inputs = node.Inputs(*([i] + [0.0] * (len(node.input_names) - 1)))
            z, s = node.step(s, inputs, dt)
            zs.append(z)
        return torch.stack(zs), s.v

    inputs = (i.requires_grad_(True), v0.requires_grad_(True))
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


def test_bptt_through_a_compiled_spiking_network():
    """Surrogate gradients reach the input weights through spikes, synapse and recurrence."""
    torch.manual_seed(0)
    net = Network(1.0)
    net.add_func_node("inp", 3)
    net.add_diffeq_node("cells", "lif", 8, tau_m=10.0)
    net.add_diffeq_node("syn", "exp_syn", 8, tau=5.0)
    net.add_edge("inp", "cells", train="gd", seed=1)
    net.add_edge("cells", "syn", weights=torch.eye(8))
    net.add_edge("syn", "cells", feedback=True, seed=2)
    x = 2.0 * torch.rand(50, 3)
    y = net(x)
    assert y.shape == (50, 8) and y.sum() > 0
    y.sum().backward()
    grad = net.get_edge("inp", "cells").weight.grad
    assert grad is not None and grad.abs().sum() > 0


# --------------------------------------------------------------------------------------
# the other models
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "drive", "dt", "T", "inp"),
    [
        ("izhikevich", 200.0, 0.05, 4000, "I_ext"),
        ("adex", 800.0, 0.1, 3000, "I"),
        ("eif", 800.0, 0.1, 3000, "I"),
        ("qif", 10.0, 1e-3, 5000, "I_ext"),
    ],
)
def test_spikes_under_drive_and_silence_without(model, drive, dt, T, inp):
    for amp, spikes in ((0.0, False), (drive, True)):
        net = Network(dt, dtype=F64)
        node = net.add_diffeq_node("cells", model, 2)
        assert node.input_names[0] == inp
        rec = net.run(torch.full((T, 2), amp, dtype=F64), record=["cells", "cells.v"])
        count = rec["cells"].sum().item()
        assert torch.isfinite(rec["cells.v"]).all()
        assert (count > 2) if spikes else (count == 0), (model, amp, count)


def test_qif_interspike_interval_matches_the_analytic_one():
    """v' = v^2 + c from v_reset to v_peak takes (atan(v_p/sqrt c) - atan(v_r/sqrt c))/sqrt c."""
    dt, T, c = 1e-3, 20000, 5.0
    net = Network(dt, dtype=F64)
    net.add_diffeq_node("cells", "qif", 1, eta=-5.0, v_peak=100.0, v_reset=-100.0)
    rec = net.run(torch.full((T, 1), 10.0, dtype=F64), record=["cells", "cells.s"])
    spikes = np.flatnonzero(rec["cells"].numpy()[:, 0])
    isi = np.diff(spikes)[1:] * dt
    expected = 2.0 * math.atan(100.0 / math.sqrt(c)) / math.sqrt(c)  # 1.3853
    assert len(isi) >= 10
    assert np.abs(isi - expected).max() <= dt  # on the dt grid
    # the trace jumps by 1 in each spike step and decays with tau_s = 1 in between
    s = rec["cells.s"].numpy()[:, 0]
    k = spikes[3]
    assert s[k] - s[k - 1] * math.exp(-dt) == pytest.approx(1.0, abs=1e-3)


def test_izhikevich_conductance_input_and_jumps():
    dt = 0.05
    node = Izhikevich(1, g=2.0, E_r=0.0).double()
    s = node.init_state(1, dtype=F64)
    i0 = node.Inputs(0.0, 0.0)
    i1 = node.Inputs(0.0, torch.full((1, 1), 0.5, dtype=F64))
    _, s0 = node.step(s, i0, dt)
    _, s1 = node.step(s, i1, dt)
    # Euler: the conductance term adds dt * g s_in (E_r - v) / C
    expected = dt * 2.0 * 0.5 * (0.0 - (-60.0)) / 100.0
    assert (s1.v - s0.v).item() == pytest.approx(expected, rel=1e-12)
    # a spike resets v, adds kappa to u and 1 to s
    s = s._replace(v=torch.full((1, 1), 999.9, dtype=F64))
    z, s2 = node.step(s, i0, dt)
    assert z.item() == 1.0 and s2.v.item() == -1000.0
    du = dt * (-2.0 * (999.9 + 60.0)) / 33.33  # one Euler step of u, then the jump kappa
    assert s2.s.item() == 1.0 and s2.u.item() == pytest.approx(du + 10.0, rel=1e-12)


def test_adex_spike_triggered_adaptation_lengthens_the_intervals():
    net = Network(0.1, dtype=F64)
    net.add_diffeq_node("cells", "adex", 1)
    rec = net.run(torch.full((5000, 1), 800.0, dtype=F64), record=["cells", "cells.w"])
    isi = np.diff(np.flatnonzero(rec["cells"].numpy()[:, 0]))
    # spike-frequency adaptation: the intervals grow to a steady state
    assert len(isi) > 5 and (np.diff(isi) >= 0).all() and isi[-1] > 2 * isi[0]
    w = rec["cells.w"].numpy()[:, 0]
    k = np.flatnonzero(rec["cells"].numpy()[:, 0])[0]
    assert w[k] - w[k - 1] == pytest.approx(80.5, abs=1.0)  # jump b (+ one step of drift)


# --------------------------------------------------------------------------------------
# synapses
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("normalize", [False, True])
def test_exp_synapse_kernel(normalize):
    dt, tau, T = 0.5, 4.0, 200
    x = torch.zeros(T, 1, dtype=F64)
    x[0] = 1.0
    rec, _ = _run_node(ExpSynapse(1, tau=tau, normalize=normalize), x, dt)
    c = 1.0 / tau if normalize else 1.0
    np.testing.assert_allclose(rec["cells"].numpy()[:, 0], c * np.exp(-np.arange(T) * dt / tau))
    area = rec["cells"].sum().item() * dt
    if normalize:  # unit area, up to the rectangle rule
        assert area == pytest.approx((dt / tau) / (1 - math.exp(-dt / tau)), rel=1e-9)
        assert area == pytest.approx(1.0, abs=dt / tau)


@pytest.mark.parametrize("normalize", [False, True])
def test_double_exp_synapse_kernel_is_exact(normalize):
    dt, tr, td, T = 0.05, 2.0, 20.0, 4000
    x = torch.zeros(T, 1, dtype=F64)
    x[0] = 1.0
    node = DoubleExpSynapse(1, tau_r=tr, tau_d=td, normalize=normalize)
    rec, _ = _run_node(node, x, dt)
    t = np.arange(T) * dt
    shape = (np.exp(-t / td) - np.exp(-t / tr)) / (td - tr)
    r = rec["cells"].numpy()[:, 0]
    if normalize:
        np.testing.assert_allclose(r, shape, atol=1e-14)
        assert r.sum() * dt == pytest.approx(1.0, abs=1e-3)
    else:
        np.testing.assert_allclose(r, shape / shape.max(), atol=1e-5)
        assert r.max() == pytest.approx(1.0, abs=1e-5)


# --------------------------------------------------------------------------------------
# IAF: the Rockpool workflow
# --------------------------------------------------------------------------------------


def test_iaf_runs_on_bias_alone_and_records_v():
    dt, T = 1e-4, 300
    net = Network(dt, dtype=F64)
    net.add_diffeq_node("iaf", "iaf", 3, bias=[0.005, 0.009, 0.015])
    rec = net.run(steps=T, record=["iaf.v", "iaf"])
    v = rec["iaf.v"].numpy()
    assert v.shape == (T, 3)
    # subthreshold units follow the exact relaxation (rk4 error ~ (dt/tau)^5)
    t = (np.arange(T) + 1) * dt
    for j, b in enumerate([0.005, 0.009]):
        np.testing.assert_allclose(v[:, j], -0.065 + b * (1 - np.exp(-t / 0.02)), atol=1e-12)
    assert rec["iaf"][:, :2].sum() == 0 and rec["iaf"][:, 2].sum() > 0
    with pytest.raises(ValueError, match="cannot record 'iaf.w'"):
        net.run(steps=2, observer=Observer(["iaf.w"]))


def test_iaf_randomize_state_is_seeded_and_in_range():
    node = IAF(500)
    v1 = node.randomize_state(seed=3)
    v2 = IAF(500).randomize_state(seed=3)
    assert torch.equal(v1, v2)
    assert not torch.equal(v1, IAF(500).randomize_state(seed=4))
    assert (v1 >= -0.065).all() and (v1 < -0.055).all()
    assert v1.std().item() == pytest.approx(0.01 / math.sqrt(12), rel=0.1)  # uniform
    net = Network(1e-4, dtype=F64)
    net.add_node("iaf", node)
    net.reset()
    torch.testing.assert_close(net.compile().init_state(1)["iaf.v"][0], v1)


def test_iaf_noise_is_seeded_and_has_the_documented_std():
    dt, T, n, std = 1e-4, 3000, 400, 0.002
    runs = []
    for seed in (7, 7, 8):
        net = Network(dt, dtype=F64)
        net.add_diffeq_node("iaf", "iaf", n, bias=0.0, noise_std=std, seed=seed)
        runs.append(net.run(steps=T, record=["iaf.v"])["iaf.v"])
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])
    v = runs[0][1000:].numpy()  # after 5 tau_mem the fluctuations are stationary
    # exact stationary std of a leak driven by step-held white current: std * sqrt(tanh(h/2) 2/h)
    h = dt / 0.02
    expected = std * math.sqrt(math.tanh(h / 2) * 2 / h)
    assert v.mean() == pytest.approx(-0.065, abs=2e-4)
    assert v.std() == pytest.approx(expected, rel=0.05)


def test_iaf_state_dict_round_trip():
    def build(**kw):
        net = Network(1e-4, dtype=F64)
        net.add_diffeq_node("iaf", "iaf", 4, **kw)
        return net

    g = np.random.default_rng(5)
    src = build(
        bias=g.uniform(0.012, 0.02, 4), tau_mem=0.015, refractory=3e-4, noise_std=1e-3, seed=9
    )
    buf = io.BytesIO()
    torch.save(src.state_dict(), buf)
    dst = build(bias=np.zeros(4))  # same architecture (parameter shapes), default values
    buf.seek(0)
    dst.load_state_dict(torch.load(buf))
    assert dst.get_node("iaf").noise_std == 1e-3 and dst.get_node("iaf").seed == 9
    a = src.run(steps=500, record=["iaf.v"])
    b = dst.run(steps=500, record=["iaf.v"])
    assert torch.equal(a["iaf.v"], b["iaf.v"]) and a.output.sum() > 0
    # a deep copy is a separate, equal network
    c = copy.deepcopy(build(noise_std=1e-3, seed=2))
    assert c.run(steps=5)["iaf"].shape == (5, 4)


# --------------------------------------------------------------------------------------
# graphs
# --------------------------------------------------------------------------------------


def test_rectipy_qif_recurrent_wiring():
    """RectiPy: add_diffeq_node(..., weights=J, source_var='s', target_var='s_in')."""
    n = 20
    J = np.random.default_rng(2).normal(scale=1.0 / n, size=(n, n))
    net = Network(1e-3, dtype=F64)
    net.add_diffeq_node(
        "qif",
        "neuron_model_templates.spiking_neurons.qif.qif",
        weights=J,
        source_var="s",
        target_var="s_in",
        eta=np.linspace(-2.0, 6.0, n),
    )
    rec = net.run(torch.zeros(3000, n, dtype=F64), record=["qif.s"])
    assert rec.output.sum() > 0 and torch.isfinite(rec["qif.s"]).all()


def test_parameters_are_buffers_or_trainable_and_move_with_dtype():
    node = LIF(3, tau_m=[10.0, 20.0, 30.0], train=["v_th"])
    assert isinstance(node.v_th, torch.nn.Parameter)
    assert not isinstance(node.tau_m, torch.nn.Parameter)
    assert node.tau_m.shape == (3,)
    node.to(torch.float32)
    assert node.tau_m.dtype == torch.float32
    assert "surrogate=Surrogate('fast_sigmoid', scale=25)" in repr(node)


def test_documented_defaults():
    lif = LIF(1)
    assert [getattr(lif, k).item() for k in ("tau_m", "v_rest", "v_th", "v_reset", "r_m")] == [
        20.0,
        0.0,
        1.0,
        0.0,
        1.0,
    ]
    assert lif.integrator == "exp_euler" and lif.reset_mode == "value"
    iaf = IAF(1)
    vals = [iaf.tau_mem, iaf.v_thresh, iaf.v_reset, iaf.v_rest, iaf.r_m, iaf.bias, iaf.refractory]
    assert [t.item() for t in vals] == [0.02, -0.055, -0.065, -0.065, 1.0, 0.015, 0.0]
    assert iaf.integrator == "rk4" and iaf.noise_std == 0.0
    alif = ALIF(1)
    assert (alif.tau_a.item(), alif.beta.item(), alif.reset_mode) == (2000.0, 0.07, "subtract")
    qif = QIF(1)
    assert (qif.v_peak.item(), qif.v_reset.item(), qif.eta.item()) == (100.0, -100.0, -5.0)
    assert qif.init_state(1).v.item() == -2.0
    ik = Izhikevich(1)
    assert (ik.C.item(), ik.k.item(), ik.tau_s.item(), ik.v_peak.item()) == (
        100.0,
        0.7,
        6.0,
        1000.0,
    )
    adex = AdEx(1)
    assert (adex.C.item(), adex.g_L.item(), adex.b.item(), adex.tau_w.item()) == (
        281.0,
        30.0,
        80.5,
        144.0,
    )
    assert EIF(1).init_state(1).v.item() == pytest.approx(-70.6)
    for name in ("lif", "alif", "iaf", "qif", "izhikevich", "adex", "eif"):
        assert MODELS[name](2).output_var == "z"
    assert ALIFParameters().tau_a == 2000.0


# --------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------


def test_errors():
    with pytest.raises(
        ValueError, match=r"LIF: parameter 'tau_m' must be finite and > 0, got -1.0"
    ):
        LIF(2, tau_m=-1.0)
    with pytest.raises(
        ValueError, match=r"ALIF: parameter 'tau_a' must be finite and > 0, got 0.0"
    ):
        ALIF(2, tau_a=[1.0, 0.0])
    with pytest.raises(
        ValueError, match=r"LIF: unknown reset 'zero'; valid modes for this model are "
    ):
        LIF(2, reset="zero")
    with pytest.raises(ValueError, match=r"QIF: unknown reset 'subtract'; .* are \['value'\]"):
        QIF(2, reset="subtract")
    with pytest.raises(
        ValueError,
        match=r"LIF: unknown surrogate 'superspike'; valid names are "
        r"\['atan', 'fast_sigmoid', 'sigmoid', 'triangle'\]",
    ):
        LIF(2, surrogate="superspike")
    with pytest.raises(TypeError, match="surrogate_scale goes with a surrogate name"):
        LIF(2, surrogate=get_surrogate("atan"), surrogate_scale=3.0)
    with pytest.raises(ValueError, match=r"IAF: v_thresh must be above v_reset"):
        IAF(2, v_thresh=-0.07)
    with pytest.raises(
        ValueError, match=r"LIF: parameter 'refractory' must be finite and >= 0, got -1.0"
    ):
        LIF(2, refractory=-1.0)
    with pytest.raises(ValueError, match=r"IAF: noise_std must be finite and >= 0, got -0.1"):
        IAF(2, noise_std=-0.1)
    with pytest.raises(ValueError, match=r"LIF: unknown integrator 'midpoint'"):
        LIF(2, integrator="midpoint")
    with pytest.raises(
        TypeError,
        match=r"LIF: unknown keyword argument\(s\) \['tau'\]; valid ones are \['n', 'tau_m', "
        r"'v_rest', 'v_th', 'v_reset', 'r_m', 'refractory', 'reset', 'surrogate', "
        r"'surrogate_scale', 'detach_reset', 'integrator', 'train', 'init'\]",
    ):
        LIF(2, tau=3.0)
    with pytest.raises(
        TypeError, match=r"IAF: unknown keyword argument\(s\) \['noise'\]; .*'seed'"
    ):
        IAF(2, noise=0.1)
    with pytest.raises(ValueError, match=r"LIF: parameter 'v_th' must be finite, got nan"):
        LIF(2, v_th=float("nan"))
    with pytest.raises(ValueError, match=r"DoubleExpSynapse: tau_r and tau_d must differ"):
        DoubleExpSynapse(2, tau_r=5.0, tau_d=5.0)
    with pytest.raises(ValueError, match=r"ExpSynapse: a synapse is integrated exactly"):
        ExpSynapse(2, integrator="rk4")
    with pytest.raises(
        ValueError, match=r"ExpSynapse: parameter 'tau' must be finite and > 0, got 0.0"
    ):
        ExpSynapse(2, tau=0.0)
    with pytest.raises(ValueError, match=r"train= names unknown parameters \['v_peak'\]"):
        LIF(2, train=["v_peak"])
    with pytest.raises(ValueError, match=r"unknown model 'lif2'"):
        Network(1.0).add_diffeq_node("x", "lif2", 3)


def _both_steps(node, name, state, n_steps, scale, seed, dt=0.5):
    """Step ``node`` by its own step and by the kernel ``name`` from ``state`` on the same
    uniform random input (times ``scale``, seeded); yields ``(z, state, z_kernel,
    state_kernel)`` after every step."""
    from rnngraph.nodes import build_kernel

    g = torch.Generator().manual_seed(seed)
    fast = build_kernel(name, node, dt)
    fast_state = tuple(state)
    for _ in range(n_steps):
        i = scale * torch.rand(*state.v.shape, generator=g, dtype=state.v.dtype)
        with torch.no_grad():
            z_ref, state = node.step(state, node.Inputs(i), dt)
            z_fast, fast_state = fast(fast_state, i)
        yield z_ref, state, z_fast, fast_state


@pytest.mark.parametrize("integrator", ["exp_euler", "euler", "rk4"])
@pytest.mark.parametrize("reset", ["value", "subtract"])
@pytest.mark.parametrize("refractory", [0.0, 3.0])
def test_no_gradient_fast_path_equals_lif_step(integrator, reset, refractory):
    """Runs without gradients use the affine one-step map of the membrane; it must give
    the spikes and voltages of the pure step function."""
    from rnngraph.nodes import LIF

    node = LIF(
        6,
        tau_m=torch.linspace(5.0, 30.0, 6),
        v_reset=-0.2,
        refractory=refractory,
        reset=reset,
        integrator=integrator,
    ).double()
    n_spikes = 0
    for z_ref, state, z_fast, fast_state in _both_steps(
        node, "torch LIF step", node.init_state(3), 200, 4.0, 0
    ):
        assert torch.equal(z_ref, z_fast)
        for a, b in zip(state, fast_state, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
        n_spikes += int(z_ref.sum())
    assert n_spikes > 100  # the input drives spikes (and resets, and refractory holds)


@pytest.mark.parametrize("integrator", ["exp_euler", "euler", "rk4"])
@pytest.mark.parametrize("reset", ["value", "subtract"])
@pytest.mark.parametrize("refractory", [0.0, 3.0])
def test_no_gradient_alif_step_equals_the_generic_step(integrator, reset, refractory):
    """The torch ALIF step (the adaptive threshold v_th + beta a, a(t) = rho a(t-1) +
    z(t-1)) gives the spikes and states of the model's own step, held steps included."""
    from rnngraph.nodes import ALIF

    node = ALIF(
        6,
        tau_m=torch.linspace(5.0, 30.0, 6),
        tau_a=torch.linspace(20.0, 200.0, 6),
        beta=torch.tensor([0.0, 0.0, 0.2, 0.5, 1.0, 2.0]),
        v_reset=-0.2,
        refractory=refractory,
        reset=reset,
        integrator=integrator,
    ).double()
    state = node.init_state(3)
    # units held in the first state above threshold: the hold, not v, keeps them silent
    held0 = torch.zeros(3, 6, dtype=F64)
    held0[:, ::2] = 3.0
    start = state._replace(v=torch.full((3, 6), 1.5, dtype=F64), ref=held0)
    n_spikes, a_max = 0, 0.0
    for z_ref, state, z_fast, fast_state in _both_steps(
        node, "torch ALIF step", start, 300, 5.0, 2
    ):
        assert torch.equal(z_ref, z_fast)
        for a, b in zip(state, fast_state, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
        n_spikes += int(z_ref.sum())
        a_max = max(a_max, float(state.a.max()))
    assert n_spikes > 100 and a_max > 1.0  # spikes, resets, holds and adaptation matter


def test_the_alif_step_serves_runs_without_gradients_only():
    net = Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 3)
    net.add_diffeq_node("rec", "alif", n=5, refractory=2.0)
    net.add_edge("in", "rec")
    model = net.compile()
    assert model.explain(batch_size=2).nodes["rec"][0] == "torch ALIF step"
    assert model.explain(batch_size=2, grad=True).nodes["rec"][0] == "generic"
    # a LIF node is no ALIF: the LIF steps serve it, and the ALIF step says why not
    from rnngraph.nodes import LIF, build_kernel

    with pytest.raises(ValueError, match=r"cannot serve LIF: the threshold is fixed"):
        build_kernel("torch ALIF step", LIF(3), 1.0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", ["torch LIF step", "torch ALIF step"])
def test_torch_lif_steps_round_rest_plus_r_i_as_the_model(name, dtype):
    """With one r_m other than 1 the steps form v_rest + r_m I as the model does: at
    dt = tau_m (euler) v is exactly that sum, and an input that puts it on the threshold
    by rounding spikes in both (a fused add rounds once and misses it)."""
    from rnngraph.nodes import ALIF, LIF, build_kernel

    cls = ALIF if "ALIF" in name else LIF
    r_m, cur = (1.3, 0.9230769230769231) if dtype == torch.float64 else (1.7, 0.70588237)
    node = cls(1, tau_m=1.0, v_rest=-0.2, r_m=r_m, integrator="euler").to(dtype)
    k = build_kernel(name, node, 1.0)
    i = torch.tensor([[cur]], dtype=dtype)
    s = node.init_state(1)
    with torch.no_grad():
        z_ref, s_ref = node.step(s, node.Inputs(i), 1.0)
        z_k, s_k = k(tuple(s), i)
    assert torch.equal(z_ref, z_k) and torch.equal(s_ref.v, s_k[0])
    # and over many steps of random input, per-unit and scalar parameters alike
    node = cls(4, tau_m=torch.tensor([5.0, 9.0, 14.0, 30.0]), r_m=1.3, v_rest=-0.1).to(dtype)
    for z_ref, s, z_k, sk in _both_steps(node, name, node.init_state(2), 300, 3.0, 3):
        assert torch.equal(z_ref, z_k)
        assert torch.equal(s.v, sk[0])
