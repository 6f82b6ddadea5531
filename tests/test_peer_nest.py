"""NEST's e-prop models (``rnngraph.compat.nest``) against NEST 3.10 itself (``.peers/nest``,
``make peers PEERS=nest``): the sine-wave tutorial's network (``eprop_iaf_bsshslm_2020``,
``eprop_readout_bsshslm_2020``), NEST's own weights, noise and target, float64. The
membranes, the readout and the loss of the first iteration equal NEST's to rounding; after
one update every weight equals NEST's; the losses of the next iterations agree. The NEST
side is ``benchmarks/peers/nest_eprop_sine.py``. Skipped with a message where the peer's
venv is absent; the refusals of the mapping run everywhere."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from _peer_run import peer_python

from rnngraph.compat.nest import eprop_bsshslm_2020

PYTHON = peer_python("nest")
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "peers" / "nest_eprop_sine.py"
needs_nest = pytest.mark.skipif(
    not PYTHON.exists(), reason="NEST's venv .peers/nest is absent (make peers PEERS=nest)"
)


def _nest(tmp_path: Path, iterations: int, tau_m=30.0, tau_out=30.0, arrival=False) -> dict:
    out = tmp_path / f"nest_{iterations}_{tau_m}_{tau_out}_{arrival}.npz"
    cmd = [str(PYTHON), str(SCRIPT), str(out), "--iterations", str(iterations),
           "--tau-m", str(tau_m), "--tau-out", str(tau_out)]  # fmt: skip
    if arrival:
        cmd.append("--regular-spike-arrival")
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    return dict(np.load(out))


def _params(tau_m=30.0, tau_out=30.0, arrival=False) -> tuple[dict, dict, dict]:
    """The tutorial's dictionaries, as the NEST side passes them."""
    rec = {
        "C_m": 1.0, "c_reg": 300.0, "E_L": 0.0, "f_target": 10.0,
        "flush_event_send_interval": 1000.0, "I_e": 0.0, "regular_spike_arrival": arrival,
        "surrogate_gradient_function": "piecewise_linear",
        "surrogate_gradient_height": 0.3 / 0.03, "surrogate_gradient_width": 0.03,
        "t_ref": 0.0, "tau_m": tau_m, "V_m": 0.0, "V_th": 0.03,
    }  # fmt: skip
    out = {"C_m": 1.0, "E_L": 0.0, "I_e": 0.0, "loss": "mean_squared_error",
           "regular_spike_arrival": arrival, "tau_m": tau_out, "V_m": 0.0}  # fmt: skip
    opt = {"type": "gradient_descent", "batch_size": 1, "eta": 1e-4, "Wmin": -100.0,
           "Wmax": 100.0, "average_gradient": False}  # fmt: skip
    return rec, out, opt


def _ours(theirs: dict, **settings):
    net, trainer = eprop_bsshslm_2020(
        theirs["w_in"], theirs["w_rec"], theirs["w_out"], theirs["w_fb"], *_params(**settings)
    )
    x = torch.tensor(theirs["x"])[None]
    y = torch.tensor(theirs["target"][:1000])[None, :, None]
    return net, trainer, x, y


def _loss(net, x, y) -> float:
    model = net.compile()
    out = model.run(x, state=model.init_state(1)).output.detach()
    return 0.5 * float(((out - y) ** 2).sum())


@needs_nest
@pytest.mark.parametrize(
    "settings",
    [{}, {"tau_m": 25.0, "tau_out": 20.0}, {"tau_m": 25.0, "tau_out": 20.0, "arrival": True}],
)
def test_membranes_readout_loss_and_one_update_equal_nests(tmp_path, settings):
    theirs = _nest(tmp_path, 1, **settings)
    net, trainer, x, y = _ours(theirs, **settings)
    net.reset()  # a run from the initial state, as every e-prop trial
    rec = net.run(x, record=["rec.v", "rec.z"])
    assert 0.01 < float(rec["rec.z"].mean()) < 0.9  # the units fire, but not always
    np.testing.assert_allclose(rec["rec.v"][0].numpy(), theirs["v_rec"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(rec.output[0, :, 0].detach().numpy(), theirs["readout"],
                               rtol=0, atol=1e-12)  # fmt: skip
    assert math.isclose(_loss(net, x, y), float(theirs["loss"][0]), rel_tol=1e-12)
    trainer.step(net, x, y)
    zeta_out = (
        1.0 if settings.get("arrival") else 1.0 - math.exp(-1.0 / settings.get("tau_out", 30.0))
    )
    for name, key, scale in (("in", "in->rec", 1.0), ("rec", "rec->rec", 1.0),
                             ("out", "rec->out", zeta_out)):  # fmt: skip
        ours = net.get_edge(*key.split("->")).weight.detach().numpy() / scale
        change = theirs[f"w_{name}_after"] - theirs[f"w_{name}"]
        assert np.abs(change).max() > 1e-4, name  # the update moved the weights
        np.testing.assert_allclose(ours, theirs[f"w_{name}_after"], rtol=0,
                                   atol=1e-10 * np.abs(change).max())  # fmt: skip


@needs_nest
def test_the_losses_of_the_first_iterations_equal_nests(tmp_path):
    theirs = _nest(tmp_path, 4)
    net, trainer, x, y = _ours(theirs)
    losses = []
    for _ in range(4):
        losses.append(_loss(net, x, y))
        trainer.step(net, x, y)
    np.testing.assert_allclose(losses, theirs["loss"], rtol=1e-9)
    assert len(set(np.round(losses, 3))) == 4  # the loss changes between iterations


def test_nests_defaults_and_settings_it_does_not_reproduce_are_refused():
    g = np.random.default_rng(0)
    w = {"w_in": g.normal(size=(4, 3)), "w_rec": np.zeros((4, 4)), "w_out": g.normal(size=(1, 4)),
         "w_fb": g.normal(size=(4, 1))}  # fmt: skip
    assert np.abs(w["w_in"]).max() > 0.1  # outside the bounds of the case below
    rec, out, opt = _params()
    cases = [
        ({"rec_params": {}}, r"rec_params\['C_m'\] = 250.0 \(NEST's default\)"),
        ({"rec_params": {**rec, "t_ref": 2.0}}, r"rec_params\['t_ref'\] = 2.0 \(given\)"),
        ({"rec_params": {**rec, "beta": 1.0}}, r"keys \['beta'\] that this mapping"),
        ({"rec_params": {**rec, "surrogate_gradient_width": 1.0}}, "has the width V_th"),
        ({"out_params": {**out, "loss": "cross_entropy"}}, r"loss.*mean_squared_error"),
        ({"optimizer": {**opt, "type": "adam"}}, r"optimizer\['type'\] = 'adam'"),
        ({"optimizer": {**opt, "batch_size": 4}}, r"batch_size=1 only"),
        ({"optimizer": {**opt, "Wmin": 1.0, "Wmax": 0.0}}, "Wmin must be <= Wmax"),
        ({"w_rec": np.eye(4)}, "non-zero diagonal"),
        ({"dt": 0.5}, "must be 1.0 ms"),
        ({"rec_params": {**rec, "regular_spike_arrival": "no"}}, "must be True or False"),
        ({"rec_params": {**rec, "C_m": True}}, r"\['C_m'\] must be a number, got True"),
        ({"optimizer": {**opt, "Wmin": "-5"}}, r"\['Wmin'\] must be a number"),
        ({"optimizer": {**opt, "Wmin": -0.1, "Wmax": 0.1}}, "w_in has weights outside"),
        ({"dtype": torch.float16}, "dtype must be torch.float32 or torch.float64"),
    ]
    for change, match in cases:
        kwargs = {**w, "rec_params": rec, "out_params": out, "optimizer": opt, **change}
        with pytest.raises(ValueError, match=match):
            eprop_bsshslm_2020(**kwargs)


def test_weights_are_clipped_to_nests_bounds_after_an_update():
    g = np.random.default_rng(1)
    rec, out, opt = _params()
    net, trainer = eprop_bsshslm_2020(
        g.uniform(-0.04, 0.04, (20, 5)), np.zeros((20, 20)), g.uniform(-0.04, 0.04, (1, 20)),
        g.normal(0, 0.3, (20, 1)), rec, out, {**opt, "eta": 10.0, "Wmin": -0.05, "Wmax": 0.05},
    )  # fmt: skip
    x = torch.tensor(g.random((1, 200, 5)) < 0.3, dtype=torch.float64)
    y = torch.tensor(np.sin(np.linspace(0, 6, 200)))[None, :, None]
    trainer.step(net, x, y)
    zeta = 1.0 - math.exp(-1.0 / 30.0)
    for key, bound in (("in", 0.05), ("rec", 0.05)):
        w = net.get_edge(key, "rec").weight.detach()
        assert float(w.abs().max()) == pytest.approx(bound), key  # reached and held
    w_out = net.get_edge("rec", "out").weight.detach()
    assert float(w_out.abs().max()) <= zeta * 0.05 * (1 + 1e-12)


def test_one_learning_rate_keeps_the_readouts_factor():
    """``set_lr`` (or ``fit_eprop(lr=)``) sets NEST's eta: the readout's update stays eta
    zeta^2 (the mapping's factor), checked against gradient descent written out."""
    g = np.random.default_rng(2)
    rec, out, opt = _params()
    net, trainer = eprop_bsshslm_2020(
        g.uniform(-0.3, 0.3, (20, 5)), np.zeros((20, 20)), g.uniform(-0.3, 0.3, (1, 20)),
        g.normal(0, 0.3, (20, 1)), rec, out, opt,
    )  # fmt: skip
    x = torch.tensor(g.random((1, 200, 5)) < 0.3, dtype=torch.float64)
    y = torch.tensor(np.sin(np.linspace(0, 6, 200)))[None, :, None]
    trainer.set_lr(0.5)
    edge = net.get_edge("rec", "out")
    w0 = edge.weight.detach().clone()
    grads = trainer.compute_gradients(net, x, y)
    trainer.step(net, x, y)
    zeta = 1.0 - math.exp(-1.0 / 30.0)
    expect = w0 - 0.5 * zeta**2 * grads["edges.rec->out.weight"]
    assert float((expect - w0).abs().max()) > 1e-6
    torch.testing.assert_close(edge.weight.detach(), expect, rtol=0, atol=1e-14)
