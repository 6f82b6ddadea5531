"""BPTT through spiking networks: pattern generation (Bellec et al. 2020's task), batching,
and gradients to trainable time constants and thresholds through the surrogate."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import rnngraph as rg
from rnngraph.network._compiled import CompiledNetwork
from rnngraph.nodes import get_surrogate

F64 = torch.float64
PERIODS = (1000.0, 500.0, 333.0, 200.0)  # ms: the four sines of the target


def _task(n_in: int, steps: int, seed: int = 0, batch: int | None = None):
    """Frozen Poisson inputs at 50 Hz (dt = 1 ms) and a sum of four sines scaled to |y| <= 1."""
    g = np.random.default_rng(seed)
    shape = (steps, n_in) if batch is None else (batch, steps, n_in)
    x = (g.random(shape) < 0.05).astype(np.float64)
    t = np.arange(steps, dtype=np.float64)
    amp, phase = g.uniform(0.5, 2.0, 4), g.uniform(0.0, 2.0 * np.pi, 4)
    y = sum(a * np.sin(2 * np.pi * t / p + f) for a, p, f in zip(amp, PERIODS, phase, strict=True))
    return x, (y / np.abs(y).max())[:, None]


def _pattern_net(
    model="lif", n_in=100, n=100, seed=0, w_in=20.0, w_rec=10.0, w_out=0.0, **node_kwargs
):
    """Inputs -> recurrent LIF/ALIF population (feedback self-edge without self-connections)
    -> leaky readout ``y(t) = exp(-dt/20) y(t-1) + W_out z(t) + b``; all edges trained. The
    settings of ``benchmarks/bptt_pattern.py``, in float64."""
    g = torch.Generator().manual_seed(seed)
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", n_in)
    params = {"tau_m": 20.0, "v_th": 1.0, "reset": "value", "surrogate": "triangle"}
    if model == "alif":
        params.update(tau_a=200.0, beta=0.7)
    params.update(node_kwargs)
    net.add_diffeq_node("rec", model, n=n, **params)
    w = w_in * torch.randn(n, n_in, generator=g, dtype=F64) / math.sqrt(n_in)
    net.add_edge("in", "rec", weights=w, train="gd")
    mask = 1.0 - torch.eye(n, dtype=F64)
    w = w_rec * torch.randn(n, n, generator=g, dtype=F64) / math.sqrt(n)
    net.add_edge("rec", "rec", weights=w * mask, mask=mask, feedback=True, train="gd")
    net.add_diffeq_node("out", "exp_syn", n=1, tau=20.0)
    w = w_out * torch.randn(1, n, generator=g, dtype=F64) / math.sqrt(n)
    net.add_edge("rec", "out", weights=w, bias=True, train="gd")
    return net


def _rerun_mse(net, x, y) -> float:
    """The MSE of the network run again from its initial state."""
    net.reset()
    return net.test(x, y, loss="mse")[1]


def _train_pattern(net, x, y, epochs_fast, epochs_slow):
    """Adam on the MSE: lr 1e-2, then 2e-3 (a second ``fit_bptt`` with a fresh optimiser)."""
    first = net.fit_bptt(x, y, optimizer="adam", lr=1e-2, loss="mse", epochs=epochs_fast)
    second = net.fit_bptt(x, y, optimizer="adam", lr=2e-3, loss="mse", epochs=epochs_slow)
    return np.asarray(first.loss + second.loss)


# ------------------------------------------------------------------------------------------
# (a, b) pattern generation: a tenfold lower MSE for LIF at reduced and at full size (slow),
# a lower one for ALIF with the same code
# ------------------------------------------------------------------------------------------


def test_bptt_lif_pattern_generation_small():
    """30 LIF units, 300 steps, 100 epochs."""
    x, y = _task(n_in=100, steps=300)
    net = _pattern_net("lif", n=30, w_in=30.0)
    loss = _train_pattern(net, x, y, 60, 40)
    assert len(loss) == 100 and np.isfinite(loss).all()
    assert loss[0] == pytest.approx(np.mean(y**2))  # W_out = 0, b = 0: the output is 0
    assert loss[0] / loss[-1] >= 10.0, (loss[0], loss[-1])
    # the trained network, run again from its initial state, does as well
    assert loss[0] / _rerun_mse(net, x, y) >= 10.0


def test_bptt_alif_runs_with_the_same_code_and_lowers_the_loss():
    x, y = _task(n_in=100, steps=300)
    net = _pattern_net("alif", n=30)
    rec = net.fit_bptt(x, y, optimizer="adam", lr=1e-2, loss="mse", epochs=30)
    loss = np.asarray(rec.loss)
    assert np.isfinite(loss).all()
    assert loss[-5:].mean() < 0.5 * loss[0]
    assert isinstance(net.get_node("rec"), rg.nodes.ALIF)
    assert net.state["rec.a"].abs().sum() > 0  # the adaptation took part


@pytest.mark.slow
@pytest.mark.parametrize("model", ["lif", "alif"])
def test_bptt_pattern_generation_full_size(model):
    """The acceptance setting: 100 Poisson inputs at 50 Hz, 100 units, 1000 steps of 1 ms,
    250 epochs (150 at lr 1e-2, 100 at 2e-3): the MSE falls at least tenfold."""
    x, y = _task(n_in=100, steps=1000)
    net = _pattern_net(model, n=100)
    loss = _train_pattern(net, x, y, 150, 100)
    assert np.isfinite(loss).all()
    assert loss[0] / loss[-1] >= 10.0, (loss[0], loss[-1])
    assert loss[0] / _rerun_mse(net, x, y) >= 10.0


# ------------------------------------------------------------------------------------------
# (c) a batch of trials is one batched forward, and each trial equals a run on its own
# ------------------------------------------------------------------------------------------


def _trials(batch, n_in=20, steps=80):
    x, y = _task(n_in=n_in, steps=steps, seed=3, batch=batch)
    return x, np.broadcast_to(y, (batch, steps, 1)).copy()


def test_a_batch_of_64_spiking_trials_trains_in_one_batched_forward(monkeypatch):
    calls = []
    original = CompiledNetwork._run

    def counting(self, x, *args, **kwargs):
        calls.append(None if x is None else tuple(x.shape))
        return original(self, x, *args, **kwargs)

    monkeypatch.setattr(CompiledNetwork, "_run", counting)
    x, y = _trials(64)
    net = _pattern_net("lif", n_in=20, n=16, w_out=1.0)
    rec = net.fit_bptt(x, y, optimizer="adam", lr=1e-3, loss="mse")
    assert calls == [(64, 80, 20)]
    assert len(rec.loss) == 1


@pytest.mark.parametrize("model", ["lif", "alif"])
def test_each_trial_of_a_batch_equals_a_run_on_its_own(model):
    x, y = _trials(64)
    net = _pattern_net(model, n_in=20, n=16, w_out=1.0)
    model_ = net.compile()
    params = list(net.parameters())
    out = model_.forward(x, state=model_.init_state(64))
    assert out.shape == (64, 80, 1)
    spikes = net.run(x, state=model_.init_state(64), record=["rec"])["rec"]
    assert spikes.sum() > 0
    loss = torch.nn.functional.mse_loss(out, torch.as_tensor(y))
    g_batch = torch.autograd.grad(loss, params)
    g_sum = [torch.zeros_like(p) for p in params]
    for b in range(0, 64, 9):  # every 9th trial on its own
        single = net.run(x[b], state=model_.init_state(1), record=["rec"])
        torch.testing.assert_close(single["rec"], spikes[b], rtol=0, atol=0)
        torch.testing.assert_close(single.output, out[b].detach(), rtol=1e-12, atol=1e-12)
    for b in range(64):
        o = model_.forward(x[b], state=model_.init_state(1))
        lb = torch.nn.functional.mse_loss(o, torch.as_tensor(y[b]))
        for acc, g in zip(g_sum, torch.autograd.grad(lb, params), strict=True):
            acc += g
    for g, s in zip(g_batch, g_sum, strict=True):
        torch.testing.assert_close(g, s / 64, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------------------------
# (d) gradients reach a trainable membrane time constant and threshold
# ------------------------------------------------------------------------------------------


def _param_net(model, param, n=16, **kwargs):
    init = {"tau_m": 20.0, "v_th": 1.0}[param]
    vals = torch.full((n,), init, dtype=F64)
    return _pattern_net(model, n_in=20, n=n, w_out=3.0, train=[param], **{param: vals}, **kwargs)


@pytest.mark.parametrize("model", ["lif", "alif"])
@pytest.mark.parametrize("param", ["tau_m", "v_th"])
def test_gradient_flows_to_a_trainable_time_constant_and_threshold(model, param):
    x, y = _task(n_in=20, steps=150, seed=4)
    net = _param_net(model, param, surrogate="fast_sigmoid", surrogate_scale=5.0)
    node = net.get_node("rec")
    p = getattr(node, param)
    assert isinstance(p, torch.nn.Parameter) and p.shape == (16,)
    model_ = net.compile()
    out = model_.forward(x, state=model_.init_state(1))
    loss = torch.nn.functional.mse_loss(out, torch.as_tensor(y))
    (grad,) = torch.autograd.grad(loss, [p])
    assert torch.isfinite(grad).all()
    assert (grad != 0).sum() >= 12  # (nearly) every unit's own value gets a gradient
    # one SGD step of fit_bptt moves the parameter by -lr * gradient
    before = p.detach().clone()
    net.fit_bptt(x, y, optimizer="sgd", lr=0.5, loss="mse", epochs=1)
    after = getattr(net.get_node("rec"), param).detach()
    assert not torch.equal(after, before)
    torch.testing.assert_close(after, before - 0.5 * grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("model", ["lif", "alif"])
def test_surrogate_gradients_of_tau_m_and_v_th_match_finite_differences(model):
    """With the relaxed surrogate (smooth forward, same backward) and the reset's gradient
    kept, the network is a smooth function of its parameters: autograd's directional
    derivative equals a central difference."""
    x, y = _task(n_in=20, steps=100, seed=5)
    spike = get_surrogate("atan", relaxed=True, scale=2.0)
    net = _pattern_net(
        model,
        n_in=20,
        n=12,
        w_out=3.0,
        train=["tau_m", "v_th"],
        tau_m=torch.full((12,), 20.0, dtype=F64),
        v_th=torch.full((12,), 1.0, dtype=F64),
        surrogate=spike,
        detach_reset=False,
    )
    node = net.get_node("rec")
    params = [node.tau_m, node.v_th]
    model_ = net.compile()
    yt = torch.as_tensor(y)

    def loss():
        out = model_.forward(x, state=model_.init_state(1))
        return torch.nn.functional.mse_loss(out, yt)

    g = torch.Generator().manual_seed(0)
    dirs = [torch.randn(p.shape, generator=g, dtype=F64) for p in params]

    def shifted_loss(step):
        with torch.no_grad():
            for p, d in zip(params, dirs, strict=True):
                p.add_(step * d)
        try:  # evaluated with autograd on, as the gradient is
            return float(loss().detach())
        finally:
            with torch.no_grad():
                for p, d in zip(params, dirs, strict=True):
                    p.sub_(step * d)

    grads = torch.autograd.grad(loss(), params)
    eps = 1e-6
    numeric = (shifted_loss(eps) - shifted_loss(-eps)) / (2 * eps)
    analytic = sum(float((gr * d).sum()) for gr, d in zip(grads, dirs, strict=True))
    assert analytic != 0.0
    assert analytic == pytest.approx(numeric, rel=1e-5)


@pytest.mark.parametrize("model", ["lif", "alif"])
def test_a_relaxed_surrogate_gives_the_same_forward_with_and_without_gradients(model):
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 1)
    spike = get_surrogate("atan", relaxed=True)
    net.add_diffeq_node("rec", model, n=1, surrogate=spike)
    net.add_edge("in", "rec", weights=[[30.0]], train="gd")
    m = net.compile()
    x = torch.ones(3, 1, dtype=F64)
    with torch.no_grad():
        off = m.forward(x, state=m.init_state(1))
    on = m.forward(x, state=m.init_state(1)).detach()
    torch.testing.assert_close(off, on)
