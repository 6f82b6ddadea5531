"""e-prop: the online gradients equal autograd through the same network with the recurrent
spikes detached (Bellec et al. 2020), for LIF and ALIF populations, regression and
classification, symmetric and random feedback; errors; a learning run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import rnngraph as rg
from rnngraph.nodes import ALIF, LIF
from rnngraph.training import EProp

F64 = torch.float64
N_IN, N, K, T, B = 4, 8, 2, 40, 2


def _population(kind: str, **kw):
    kw.setdefault("reset", "subtract")
    kw.setdefault("integrator", "exp_euler")
    kw.setdefault("surrogate", "triangle")
    if kind == "lif":  # LIF.bellec(N, dt=1.0, tau_m=20.0, v_th=0.6) with the options in kw
        return LIF(N, tau_m=20.0, v_th=0.6, r_m=1.0 / (1.0 - math.exp(-1.0 / 20.0)), **kw)
    # a mixed population: ALIF units with beta = 0 are LIF units
    beta = torch.tensor([0.0] * (N // 2) + [0.5] * (N - N // 2), dtype=F64)
    return ALIF(
        N,
        tau_m=20.0,
        tau_a=60.0,
        beta=beta,
        v_th=0.6,
        r_m=1.0 / (1.0 - math.exp(-1.0 / 20.0)),
        **kw,
    )


def _net(kind="lif", k_out=K, seed=0, in_bias=False, readout=None, **kw):
    g = torch.Generator().manual_seed(seed)
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", N_IN)
    net.add_diffeq_node("rec", _population(kind, **kw))
    w_in = 0.6 * torch.randn(N, N_IN, generator=g, dtype=F64)
    w_rec = 0.3 * torch.randn(N, N, generator=g, dtype=F64)
    net.add_edge("in", "rec", weights=w_in, train="gd", bias=in_bias)
    if in_bias:
        with torch.no_grad():
            net.get_edge("in", "rec").bias.copy_(0.05 * torch.randn(N, generator=g, dtype=F64))
    net.add_edge(
        "rec",
        "rec",
        weights=w_rec,
        train="gd",
        feedback=True,
        mask=1.0 - torch.eye(N, dtype=F64),
    )
    if readout is None:
        net.add_diffeq_node("out", "leaky_readout", n=k_out, tau=15.0)
    else:
        net.add_diffeq_node("out", readout)
    w_out = torch.randn(k_out, N, generator=g, dtype=F64) / math.sqrt(N)
    net.add_edge("rec", "out", weights=w_out, train="gd", bias=0.1)
    return net


def _inputs(seed=0, t=T, b=B):
    g = np.random.default_rng(seed)
    return (g.random((b, t, N_IN)) < 0.3).astype(np.float64)


class _RandomFeedbackLinear(torch.autograd.Function):
    """``z W^T`` forward; backward sends the error to ``z`` through ``B`` instead of ``W^T``."""

    @staticmethod
    def forward(z, w, fb):
        return z @ w.T

    @staticmethod
    def setup_context(ctx, inputs, output):
        z, w, fb = inputs
        ctx.save_for_backward(z, fb)

    @staticmethod
    def backward(ctx, grad):
        z, fb = ctx.saved_tensors
        return grad @ fb.T, grad.T @ z, None


def _reference(net, x, targets, task="regression", mask=None, fb=None, reg=None, reduction="mean"):
    """The same network as a plain torch loop with the node's pure step, the recurrent
    spikes detached inside the recurrence; returns (loss, grads by parameter name, z)."""
    model = net.compile()
    node = net.get_node("rec")
    e_in, e_rec, e_out = (net.get_edge(*k) for k in (("in", "rec"), ("rec", "rec"), ("rec", "out")))
    kappa = math.exp(-1.0 / float(net.get_node("out").tau))
    x = torch.as_tensor(x, dtype=F64)
    b, t_len = x.shape[:2]
    s = node.init_state(b, dtype=F64)
    y = torch.zeros(b, net.get_node("out").n, dtype=F64)
    ys, zs = [], []
    for t in range(t_len):
        z_prev = s.z.detach()
        cur = e_in.project(x[:, t]) + z_prev @ e_rec.effective_weight().T
        z, s = node.step(s, node.Inputs(cur), 1.0)
        if fb is None:
            drive = z @ e_out.weight.T
        else:
            drive = _RandomFeedbackLinear.apply(z, e_out.weight, fb)
        y = kappa * y + drive + e_out.bias
        ys.append(y)
        zs.append(z)
    y = torch.stack(ys, 1)
    z = torch.stack(zs, 1)
    if task == "regression":
        per = 0.5 * (y - torch.as_tensor(targets, dtype=F64)).square().sum(-1)
    else:
        logp = torch.log_softmax(y, -1)
        per = -logp.gather(-1, torch.as_tensor(targets).long().unsqueeze(-1)).squeeze(-1)
    m = torch.ones(b, t_len, dtype=F64) if mask is None else torch.as_tensor(mask, dtype=F64)
    m = m.expand(b, t_len)
    loss = (per * m).sum()
    if reduction == "mean":
        loss = loss / m.sum()
    if reg is not None:
        rate, weight = reg  # rate in spikes per step (dt = 1 ms, time unit 1 ms)
        f = z.mean((0, 1))
        loss = loss + weight * (f - rate).square().sum()
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    params = [p for n, p in model.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params)
    return loss.detach(), dict(zip(names, grads, strict=True)), z.detach()


def _max_rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


CASES = {
    "lif": {},
    "alif": {},
    "lif_value_reset": {"reset": "value"},
    "lif_refractory": {"refractory": 3.0},
    "alif_refractory_value": {"refractory": 2.0, "reset": "value"},
    "lif_euler": {"integrator": "euler"},
    "alif_rk4_fast_sigmoid": {"integrator": "rk4", "surrogate": "fast_sigmoid"},
}


def _kind(case):
    return case.split("_")[0]


@pytest.mark.parametrize("method", ["reverse", "traces"])
@pytest.mark.parametrize("task", ["regression", "classification"])
@pytest.mark.parametrize("case", list(CASES))
def test_symmetric_eprop_equals_autograd_with_detached_recurrence(case, task, method):
    k_out = K if task == "regression" else 3
    net = _net(_kind(case), k_out=k_out, in_bias=case == "lif_refractory", **CASES[case])
    x = _inputs()
    g = np.random.default_rng(1)
    if task == "regression":
        y = g.standard_normal((B, T, k_out))
        mask = None
    else:
        y = g.integers(0, k_out, (B, T))
        mask = np.zeros(T)
        mask[-12:] = 1.0
    loss, ref, z = _reference(net, x, y, task, mask)
    assert z.sum() > 20  # the units spike, so the surrogate and the resets matter
    trainer = EProp(feedback="symmetric", task=task, method=method)
    grads = trainer.compute_gradients(net, x, y, loss_mask=mask)
    assert trainer.method_used == method
    assert set(grads) == set(ref)
    for name, r in ref.items():
        assert grads[name].shape == r.shape
        assert r.abs().max() > 0, name
        assert _max_rel(grads[name], r) < 1e-10, name


def test_hand_written_bellec_alif_loop_agrees():
    """Bellec's equations written out (no rnngraph step functions): ALIF with subtractive
    reset, v(t) = alpha v(t-1) + I(t) - v_th z(t-1), a(t) = rho a(t-1) + z(t-1)."""
    net = _net("alif")
    node = net.get_node("rec")
    w_in = net.get_edge("in", "rec").weight
    w_rec = net.get_edge("rec", "rec").weight
    w_out, b_out = net.get_edge("rec", "out").weight, net.get_edge("rec", "out").bias
    mask_rec = 1.0 - torch.eye(N, dtype=F64)
    alpha, rho, kappa = math.exp(-1 / 20), math.exp(-1 / 60), math.exp(-1 / 15)
    beta, v_th, gamma = node.beta, 0.6, 0.3

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, v_scaled):
            ctx.save_for_backward(v_scaled)
            return (v_scaled > 0).to(v_scaled.dtype)

        @staticmethod
        def backward(ctx, grad):
            (v_scaled,) = ctx.saved_tensors
            # Bellec's pseudo-derivative with respect to v_scaled; the chain rule through
            # v_scaled = (v - A) / v_th adds the 1 / v_th
            return grad * gamma * torch.clamp(1 - v_scaled.abs(), min=0)

    x = torch.as_tensor(_inputs())
    y_star = torch.as_tensor(np.random.default_rng(3).standard_normal((B, T, K)))
    v = torch.zeros(B, N, dtype=F64)
    a = torch.zeros(B, N, dtype=F64)
    z = torch.zeros(B, N, dtype=F64)
    y = torch.zeros(B, K, dtype=F64)
    loss = 0.0
    for t in range(T):
        zd = z.detach()
        a = rho * a + z
        v = alpha * v + x[:, t] @ w_in.T + zd @ (w_rec * mask_rec).T - v_th * zd
        z = Spike.apply((v - v_th - beta * a) / v_th)
        y = kappa * y + z @ w_out.T + b_out
        loss = loss + 0.5 * (y - y_star[:, t]).square().sum()
    params = [w_in, w_rec, w_out, b_out]
    ref = torch.autograd.grad(loss, params)
    grads = EProp(reduction="sum").compute_gradients(net, x, y_star)
    keys = ["edges.in->rec.weight", "edges.rec->rec.weight", "edges.rec->out.weight"]
    keys.append("edges.rec->out.bias")
    for key, r in zip(keys, ref, strict=True):
        assert _max_rel(grads[key], r) < 1e-10, key


@pytest.mark.parametrize("kind", ["lif", "alif"])
def test_random_feedback_equals_autograd_with_b_in_the_readout_backward(kind):
    net = _net(kind)
    x = _inputs()
    y = np.random.default_rng(2).standard_normal((B, T, K))
    trainer = EProp(feedback="random", seed=7)
    grads = trainer.compute_gradients(net, x, y)
    fb = trainer.feedback_weights
    assert fb.shape == (N, K)
    w_out = net.get_edge("rec", "out").weight.detach()
    assert not torch.allclose(fb, w_out.T)
    _, ref, _ = _reference(net, x, y, fb=fb)
    for name, r in ref.items():
        assert _max_rel(grads[name], r) < 1e-10, name
    # the same seed draws the same matrix; another seed another one
    assert torch.equal(
        EProp(feedback="random", seed=7)._feedback(trainer.check_network("t", net.compile())), fb
    )
    other = EProp(feedback="random", seed=8)
    other.compute_gradients(net, x, y)
    assert not torch.equal(other.feedback_weights, fb)


@pytest.mark.parametrize("method", ["reverse", "traces"])
@pytest.mark.parametrize("kind", ["lif", "alif"])
def test_rate_regulariser_gradient_is_exact(kind, method):
    net = _net(kind, refractory=2.0)
    x = _inputs()
    y = np.random.default_rng(4).standard_normal((B, T, K))
    reg_hz, weight = 10.0, 3.0
    _, ref, z = _reference(net, x, y, reg=(reg_hz / 1000.0, weight), reduction="sum")
    trainer = EProp(reg_rate=reg_hz, reg_weight=weight, reduction="sum", method=method)
    grads = trainer.compute_gradients(net, x, y)
    for name, r in ref.items():
        assert _max_rel(grads[name], r) < 1e-10, name
    assert torch.allclose(trainer.rates, z.mean((0, 1)) * 1000.0)


def test_adaptive_feedback_follows_the_readout_update():
    net = _net("lif")
    x, y = _inputs(), np.random.default_rng(5).standard_normal((B, T, K))
    trainer = EProp(feedback="adaptive", optimizer="sgd", lr=0.1, seed=3)
    w0 = net.get_edge("rec", "out").weight.detach().clone()
    trainer.step(net, x, y)
    b0 = EProp(feedback="random", seed=3)._feedback(trainer.check_network("t", net.compile()))
    w1 = net.get_edge("rec", "out").weight.detach()
    assert torch.allclose(trainer.feedback_weights, b0 + (w1 - w0).T, atol=1e-14)
    assert not torch.allclose(w1, w0)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_decayed_adaptive_feedback_aligns_with_the_decayed_readout(optimizer):
    """feedback_decay decays W_out and B alike after the optimiser's step: B - W_out^T
    shrinks by exactly (1 - lr * decay) per update, whatever the gradients (Kolen &
    Pollack 1994), at the learning rate of that update (set_lr); and the readout's first
    update is the optimiser's minus lr * decay * W_out, against a twin trained without
    the decay."""
    nets = {d: _net("lif") for d in (0.0, 0.3)}
    x, y = _inputs(), np.random.default_rng(7).standard_normal((B, T, K))
    trainers = {
        d: EProp(feedback="adaptive", optimizer=optimizer, lr=0.05, seed=3, feedback_decay=d)
        for d in nets
    }
    edges = {d: net.get_edge("rec", "out") for d, net in nets.items()}
    w0 = edges[0.3].weight.detach().clone()
    for d in nets:
        trainers[d].step(nets[d], x, y)
    twin = edges[0.0].weight.detach()
    assert torch.allclose(edges[0.3].weight.detach(), twin - 0.05 * 0.3 * w0, atol=1e-14)
    trainer, edge = trainers[0.3], edges[0.3]
    gap = trainer.feedback_weights - edge.weight.detach().T
    for lr in (0.05, 0.02):
        trainer.set_lr(lr)
        w_before = edge.weight.detach().clone()
        trainer.step(nets[0.3], x, y)
        assert float((edge.weight.detach() - w_before).abs().max()) > 1e-4
        now = trainer.feedback_weights - edge.weight.detach().T
        assert torch.allclose(now, (1.0 - lr * 0.3) * gap, rtol=0, atol=1e-13)
        gap = now.clone()
    assert float(gap.abs().max()) > 0.1  # B and W_out^T still differ: a real check


def test_feedback_decay_is_refused_where_it_would_do_nothing():
    with pytest.raises(ValueError, match="feedback_decay=0.1 decays the adaptive"):
        EProp(feedback="random", feedback_decay=0.1)
    for bad in (-1.0, math.nan, math.inf, True, "0.1"):
        with pytest.raises(ValueError, match="feedback_decay must be a number >= 0"):
            EProp(feedback="adaptive", feedback_decay=bad)
    net = _net("lif")
    net.get_edge("rec", "out").weight.requires_grad_(False)
    trainer = EProp(feedback="adaptive", feedback_decay=0.1, seed=1)
    x, y = _inputs(), np.random.default_rng(8).standard_normal((B, T, K))
    before = {n: p.detach().clone() for n, p in net.compile().named_parameters()}
    with pytest.raises(ValueError, match="does not train the readout weights"):
        trainer.step(net, x, y)
    for n, p in net.compile().named_parameters():
        assert torch.equal(p.detach(), before[n]) and p.grad is None, n
    assert repr(EProp(feedback="adaptive", feedback_decay=0.1)).startswith(
        "EProp(feedback='adaptive', feedback_decay=0.1,"
    )


def test_fit_eprop_passes_feedback_decay_and_a_continued_trainer_takes_a_new_one():
    net = _net("lif")
    x, y = _inputs(), np.random.default_rng(9).standard_normal((B, T, K))
    rec = net.fit_eprop(x, y, feedback="adaptive", feedback_decay=0.2, seed=2, lr=0.01)
    assert rec.trainer.feedback_decay == 0.2
    rec = net.fit_eprop(x, y, trainer=rec.trainer, feedback_decay=0.5)
    assert rec.trainer.feedback_decay == 0.5
    with pytest.raises(ValueError, match="feedback_decay"):
        net.fit_eprop(x, y, feedback="random", feedback_decay=0.2)


def test_sgd_step_moves_weights_by_lr_times_gradient_and_keeps_the_state():
    net = _net("alif")
    x, y = _inputs(), np.random.default_rng(6).standard_normal((B, T, K))
    model = net.compile()
    grads = EProp().compute_gradients(net, x, y)
    assert model.state is None  # compute_gradients leaves the held state alone
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = EProp(optimizer="sgd", lr=0.5)
    loss = trainer.step(net, x, y)
    assert trainer.losses == [loss]
    for name, p in model.named_parameters():
        assert torch.allclose(p.detach(), before[name] - 0.5 * grads[name], atol=1e-14), name
        assert p.grad is None


def test_traces_do_not_grow_with_time(monkeypatch):
    """With method="traces" the trainer allocates its traces once per call, (N, B, P) at
    most, whatever T."""
    sizes = []
    original = torch.zeros

    def spy(*args, **kwargs):
        out = original(*args, **kwargs)
        sizes.append(out.numel())
        return out

    net = _net("alif")
    for t_len in (20, 200):
        sizes.clear()
        monkeypatch.setattr(torch, "zeros", spy)
        EProp(method="traces").compute_gradients(net, _inputs(t=t_len), np.zeros((B, t_len, K)))
        monkeypatch.setattr(torch, "zeros", original)
        assert max(sizes) <= N * B * (N_IN + N)
    # the loss accumulates as a loss, the gradient shapes match the parameters
    grads = EProp().compute_gradients(net, _inputs(), np.zeros((B, T, K)))
    shapes = {n: p.shape for n, p in net.named_parameters()}
    assert {n: g.shape for n, g in grads.items()} == shapes


def test_errors_say_what_eprop_needs():
    trainer = EProp()
    x, y = _inputs(), np.zeros((B, T, K))
    # a rate network: no spiking population feeds the readout
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", N_IN)
    net.add_diffeq_node("res", "leaky_tanh", n=N)
    net.add_edge("in", "res", train="gd")
    net.add_diffeq_node("out", "leaky_readout", n=K)
    net.add_edge("res", "out", train="gd")
    with pytest.raises(
        ValueError,
        match=r"Network\.fit_eprop: e-prop needs a recurrent population of 'lif' or 'alif' "
        r"units feeding the readout 'out', but 'res' is a LeakyTanh",
    ):
        net.fit_eprop(x, y)
    # a spiking population with an instantaneous readout
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", N_IN)
    net.add_diffeq_node("rec", _population("lif"))
    net.add_edge("in", "rec", train="gd")
    net.add_func_node("out", K)
    net.add_edge("rec", "out", train="gd")
    with pytest.raises(
        ValueError,
        match=r"EProp\.compute_gradients: e-prop needs a leaky readout \(y = kappa y \+ I\) "
        r"as the output node, but 'out' is none \(it is a FuncNode\); add one with "
        r"net\.add_diffeq_node\('out', 'leaky_readout'",
    ):
        trainer.compute_gradients(net, x, y)
    # self-connections in the trained recurrent edge
    net = _net("lif")
    net.pop_edge("rec", "rec")
    net.add_edge("rec", "rec", train="gd", feedback=True)
    with pytest.raises(ValueError, match=r"the recurrent edge rec->rec must have no self-conn"):
        trainer.compute_gradients(net, x, y)
    # other trainable parameters
    net = _net("lif")
    net.get_node("rec").tau_m = torch.nn.Parameter(torch.tensor(20.0, dtype=F64))
    with pytest.raises(ValueError, match=r"\['nodes\.rec\.tau_m'\] are trainable too"):
        trainer.compute_gradients(net, x, y)
    # an integrator without a linear one-step map: the node itself refuses it
    net = _net("lif")
    with pytest.raises(ValueError, match=r"LIF: unknown integrator 'heun'; valid names are"):
        net.get_node("rec").integrator = "heun"
    with pytest.raises(ValueError, match=r"unknown feedback 'sym'; valid modes are"):
        EProp(feedback="sym")
    with pytest.raises(ValueError, match=r"unknown task 'ranking'"):
        EProp(task="ranking")
    with pytest.raises(ValueError, match="reg_weight needs reg_rate"):
        EProp(reg_weight=1.0)
    net = _net("lif")
    with pytest.raises(ValueError, match=r"regression targets must be \(T, K\) or \(B, T, K\)"):
        trainer.compute_gradients(net, x, np.zeros((B, T, K + 1)))
    with pytest.raises(TypeError, match="classification targets must be integer class indices"):
        EProp(task="classification").compute_gradients(net, x, np.zeros((B, T)))
    with pytest.raises(ValueError, match=r"class indices must lie in \[0, 2\)"):
        EProp(task="classification").compute_gradients(net, x, np.full((B, T), 2))
    with pytest.raises(ValueError, match="loss_mask selects no step"):
        trainer.compute_gradients(net, x, y, loss_mask=np.zeros(T))


def _pattern_net(n_in, n, train, seed=0):
    g = torch.Generator().manual_seed(seed)
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", n_in)
    net.add_diffeq_node("rec", LIF.bellec(n, dt=1.0, tau_m=20.0, v_th=0.6))
    w_in = torch.randn(n, n_in, generator=g, dtype=F64) / math.sqrt(n_in)
    w_rec = 0.5 * torch.randn(n, n, generator=g, dtype=F64) / math.sqrt(n)
    net.add_edge("in", "rec", weights=w_in, train=train)
    eye = torch.eye(n, dtype=F64)
    net.add_edge("rec", "rec", weights=w_rec, train=train, feedback=True, mask=1.0 - eye)
    net.add_diffeq_node("out", "leaky_readout", n=1, tau=20.0)
    net.add_edge("rec", "out", weights=torch.zeros(1, n, dtype=F64), train="gd", bias=True)
    return net


def test_fit_eprop_lowers_a_regression_loss():
    """Pattern generation in small: 30 LIF units learn a sum of two sines from frozen
    Poisson input; e-prop of the input and recurrent weights does clearly better than
    training the readout alone."""
    n_in, n, t_len = 20, 30, 150
    rng = np.random.default_rng(1)
    x = (rng.random((1, t_len, n_in)) < 0.05).astype(np.float64)
    tt = np.arange(t_len)
    y = (np.sin(2 * np.pi * tt / t_len) + 0.5 * np.sin(4 * np.pi * tt / t_len))[None, :, None]
    rec = _pattern_net(n_in, n, "gd", seed=1).fit_eprop(x, y, lr=1e-2, epochs=50)
    assert len(rec.loss) == 50
    assert isinstance(rec.trainer, EProp) and rec.trainer.task == "regression"
    assert rec.loss[-1] < 0.1 * rec.loss[0]
    readout_only = _pattern_net(n_in, n, None, seed=1).fit_eprop(x, y, lr=1e-2, epochs=50)
    assert rec.loss[-1] < 0.5 * readout_only.loss[-1]
    # classification targets select the classification task
    net2 = _net("lif", k_out=2)
    labels = np.zeros((B, T), dtype=np.int64)
    mask = np.zeros(T)
    mask[-5:] = 1
    rec2 = net2.fit_eprop(_inputs(), labels, loss_mask=mask, lr=1e-2, epochs=3)
    assert rec2.trainer.task == "classification"
    assert rec2.loss[-1] < rec2.loss[0]


def test_leaky_readout_node():
    net = rg.Network(dt=0.5, dtype=F64)
    net.add_func_node("in", 2)
    node = net.add_diffeq_node("out", "leaky_readout", n=2, tau=4.0)
    assert isinstance(node, rg.nodes.LeakyReadout)
    net.add_edge("in", "out", weights=torch.eye(2, dtype=F64))
    u = torch.randn(3, 50, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    y = net.run(u).output
    kappa = math.exp(-0.5 / 4.0)
    ref = torch.zeros(3, 2, dtype=F64)
    for t in range(50):
        ref = kappa * ref + u[:, t]
        assert torch.allclose(y[:, t], ref, atol=1e-14)
    assert float(node.kappa(0.5)) == pytest.approx(kappa, rel=1e-15)
    with pytest.raises(ValueError, match="LeakyReadout: this is an exact discrete map"):
        rg.nodes.LeakyReadout(2, integrator="euler")
    with pytest.raises(ValueError, match=r"LeakyReadout: parameter .tau. must be finite and > 0"):
        rg.nodes.LeakyReadout(2, tau=0.0)


# ---- the reverse scan against the forward traces ------------------------------------------


def _case_data(task, k_out, seed=1, t=T):
    g = np.random.default_rng(seed)
    if task == "regression":
        return g.standard_normal((B, t, k_out)), None
    mask = np.zeros(t)
    mask[-12:] = 1.0
    return g.integers(0, k_out, (B, t)), mask


@pytest.mark.parametrize("task", ["regression", "classification"])
@pytest.mark.parametrize("case", list(CASES))
def test_reverse_scan_equals_forward_traces_across_blocks(case, task, monkeypatch):
    """Blocks of 7 steps: the scan carries mu, the adaptation's A and the filtered errors
    across block boundaries (40 steps: 5 full blocks and a short one)."""
    import rnngraph.training._eprop as eprop_module

    monkeypatch.setattr(eprop_module, "_SPAN", 7)
    k_out = K if task == "regression" else 3
    net = _net(_kind(case), k_out=k_out, in_bias=True, **CASES[case])
    x = _inputs(seed=3)
    y, mask = _case_data(task, k_out)
    kw = {"feedback": "random", "seed": 4, "task": task, "reg_rate": 20.0, "reg_weight": 0.5}
    ref = EProp(method="traces", **kw).compute_gradients(net, x, y, loss_mask=mask)
    got = EProp(method="reverse", **kw).compute_gradients(net, x, y, loss_mask=mask)
    assert set(got) == set(ref)
    for name, r in ref.items():
        assert r.abs().max() > 0, name
        assert _max_rel(got[name], r) < 1e-12, name


def test_reverse_scan_float32_on_an_evidence_network():
    """Bellec's evidence network in small (LIF and ALIF units in one node, refractory
    5 steps, classification over a recall window, rate regulariser), float32: the two
    formulations agree to 1e-5 of the largest gradient."""
    n_in, n, t_len, b = 12, 40, 300, 4
    g = torch.Generator().manual_seed(5)
    alpha = math.exp(-1.0 / 20.0)
    beta = torch.tensor([0.0] * 20 + [0.02] * 20)
    node = ALIF(
        n,
        tau_m=20.0,
        tau_a=500.0,
        beta=beta,
        v_th=0.6,
        r_m=1.0 / (1.0 - alpha),
        refractory=5.0,
        reset="subtract",
        integrator="exp_euler",
        surrogate="triangle",
    )
    net = rg.Network(dt=1.0, dtype=torch.float32)
    net.add_func_node("in", n_in)
    net.add_diffeq_node("rec", node)
    no_self = 1.0 - torch.eye(n)
    net.add_edge("in", "rec", weights=torch.randn(n, n_in, generator=g), train="gd")
    w_rec = torch.randn(n, n, generator=g) / math.sqrt(n) * no_self
    net.add_edge("rec", "rec", weights=w_rec, train="gd", feedback=True, mask=no_self)
    net.add_diffeq_node("out", "leaky_readout", n=2, tau=20.0)
    net.add_edge("rec", "out", weights=torch.randn(2, n, generator=g) / 6, train="gd", bias=True)
    rng = np.random.default_rng(6)
    x = (rng.random((b, t_len, n_in)) < 0.04).astype(np.float32)
    labels = np.repeat(rng.integers(0, 2, (b, 1)), t_len, axis=1)
    mask = np.zeros(t_len, dtype=np.float32)
    mask[-50:] = 1.0
    kw = {"feedback": "random", "task": "classification", "reg_rate": 10.0}
    ref = EProp(method="traces", **kw).compute_gradients(net, x, labels, loss_mask=mask)
    got = EProp(method="reverse", **kw).compute_gradients(net, x, labels, loss_mask=mask)
    spikes = float(net.run(x, record=["rec"])["rec"].sum())
    net.reset()
    assert spikes > 200  # the surrogate, the refractory holds and the adaptation matter
    for name, r in ref.items():
        assert r.abs().max() > 0, name
        assert _max_rel(got[name], r) < 1e-5, name


def test_auto_takes_the_reverse_scan_unless_its_history_exceeds_the_limit():
    from rnngraph.training import history_bytes

    net = _net("alif", refractory=2.0)
    x, y = _inputs(), np.random.default_rng(7).standard_normal((B, T, K))
    p = N_IN  # the stored presynaptic values: the recurrent edge reads the recorded spikes
    need = history_bytes(N, p, K, B, T, 8, True)
    # (T B (2N + P_s + K) numbers + T B N booleans) + a block of scratch (T < 64 steps)
    assert need == T * B * ((2 * N + p + K) * 8 + N) + T * B * N * 8
    big = EProp(history_limit=need)
    method, why = big.method_for(net, B, T)
    assert method == "reverse" and "<= history_limit" in why
    small = EProp(history_limit=need - 1)
    method, why = small.method_for(net, B, T)
    assert method == "traces" and "> history_limit" in why
    g_big = big.compute_gradients(net, x, y)
    g_small = small.compute_gradients(net, x, y)
    assert (big.method_used, small.method_used) == ("reverse", "traces")
    for name, r in g_small.items():
        assert _max_rel(g_big[name], r) < 1e-12, name
    # the history the scan holds is what history_bytes counts, less the scratch
    h = big._kept
    held = sum(t.numel() * t.element_size() for t in (h.pre, h.psi, h.z, h.held))
    assert held + T * B * K * 8 == need - T * B * N * 8
    # a forced method is taken whatever the memory
    assert EProp(method="reverse").method_for(net, B, 10**6)[0] == "reverse"
    assert EProp(method="traces").method_for(net, 1, 1)[0] == "traces"
    # with only the readout trained, the scan records the spikes alone
    assert history_bytes(N, 0, K, B, T, 8, True, inputs=False) == T * B * (N + K) * 8


def test_the_history_is_reused_for_calls_of_the_same_shape():
    net = _net("lif", refractory=3.0, reset="value")
    x, y = _inputs(), np.random.default_rng(8).standard_normal((B, T, K))
    trainer = EProp()
    first = trainer.compute_gradients(net, x, y)
    kept = trainer._kept
    ptr = kept.psi.data_ptr()
    # another network and other data of the same shapes: nothing of the first call stays
    other = _net("lif", seed=5, refractory=3.0, reset="value")
    x2, y2 = _inputs(seed=9), np.random.default_rng(11).standard_normal((B, T, K))
    reused = trainer.compute_gradients(other, x2, y2)
    assert trainer._kept is kept and kept.psi.data_ptr() == ptr
    fresh = EProp().compute_gradients(other, x2, y2)
    for name, g in fresh.items():
        assert torch.equal(reused[name], g), name
    assert torch.equal(
        trainer.compute_gradients(net, x, y)["edges.in->rec.weight"], first["edges.in->rec.weight"]
    )
    trainer.compute_gradients(net, _inputs(t=T + 5), np.zeros((B, T + 5, K)))
    assert trainer._kept is not kept and trainer._kept.z.shape[0] == T + 5
    EProp.compute_gradients(trainer, net, x, y)
    trainer.method = "traces"  # a call that takes the traces lets the history go
    trainer.compute_gradients(net, x, y)
    assert trainer._kept is None and trainer.method_used == "traces"
    trainer.method = "reverse"
    trainer.compute_gradients(net, x, y)
    trainer.release()
    assert trainer._kept is None


@pytest.mark.parametrize("reset", ["subtract", "value"])
@pytest.mark.parametrize("kind", ["lif", "alif"])
def test_units_held_in_the_first_state(kind, reset):
    """A first state that holds units (ref > 0, set by the user): both formulations take
    the holds of the first steps, and they matter."""
    net = _net(kind, refractory=3.0, reset=reset)
    ref0 = torch.zeros(B, N, dtype=F64)
    ref0[:, ::2] = 2.0
    net.get_node("rec").set_init("ref", ref0)
    net.get_node("rec").set_init("v", torch.full((N,), 0.5, dtype=F64))
    x, y = _inputs(seed=6), np.random.default_rng(12).standard_normal((B, T, K))
    x[:, :2] = 1.0  # input while the units are held: their eligibility must not take it
    _, ref, _ = _reference(net, x, y)
    for method in ("reverse", "traces"):
        got = EProp(method=method).compute_gradients(net, x, y)
        for name, r in ref.items():
            assert _max_rel(got[name], r) < 1e-10, (method, name)
    free = _net(kind, refractory=3.0, reset=reset)
    free.get_node("rec").set_init("v", torch.full((N,), 0.5, dtype=F64))
    g_free = EProp().compute_gradients(free, x, y)
    assert _max_rel(g_free["edges.in->rec.weight"], ref["edges.in->rec.weight"]) > 1e-3


def test_method_settings_are_honoured_or_refused():
    with pytest.raises(ValueError, match=r"EProp: unknown method 'fast'; valid ones are"):
        EProp(method="fast")
    for bad in (0, -5):
        with pytest.raises(ValueError, match=r"EProp: history_limit must be an int >= 1"):
            EProp(history_limit=bad)
    for bad in (True, 1.5, "1GB"):
        with pytest.raises(TypeError, match=r"EProp: history_limit must be an int"):
            EProp(history_limit=bad)
    with pytest.raises(ValueError, match=r"EProp.method_for: n_steps must be an int >= 1"):
        EProp().method_for(_net("lif"), 1, 0)
    for method in ("reverse", "traces"):  # the limit would change nothing: refused
        with pytest.raises(
            ValueError, match=rf"history_limit=5 has no effect with method='{method}'"
        ):
            EProp(method=method, history_limit=5)
    from rnngraph.training import history_bytes

    with pytest.raises(ValueError, match=r"history_bytes: n must be an int >= 0"):
        history_bytes(-8, 4, 2, 1, 10, 8, True)
    with pytest.raises(TypeError, match=r"history_bytes: n must be an int"):
        history_bytes(8.5, 4, 2, 1, 10, 8, True)
    with pytest.raises((TypeError, ValueError), match=r"history_bytes: hold"):
        history_bytes(8, 4, 2, 1, 10, 8, "no")
    # a call that fails leaves method_used as the last call that finished
    trainer = EProp(method="traces")
    trainer.compute_gradients(_net("lif"), _inputs(), np.zeros((B, T, K)))
    trainer.method = "reverse"
    with pytest.raises(ValueError, match="regression targets"):
        trainer.compute_gradients(_net("lif"), _inputs(), np.zeros((B, T, K + 1)))
    assert trainer.method_used == "traces"
    x, y = _inputs(), np.random.default_rng(9).standard_normal((B, T, K))
    net = _net("lif")
    rec = net.fit_eprop(x, y, method="traces")
    assert rec.trainer.method == "traces" and rec.trainer.method_used == "traces"
    rec = net.fit_eprop(x, y, trainer=rec.trainer, method="auto", history_limit=1)
    assert rec.trainer.method_used == "traces" and rec.trainer.history_limit == 1
    rec = net.fit_eprop(x, y, trainer=rec.trainer, history_limit=2**30)
    assert rec.trainer.method_used == "reverse"
    with pytest.raises(ValueError, match=r"Network\.fit_eprop: .*history_limit=5 has no effect"):
        net.fit_eprop(x, y, method="reverse", history_limit=5)
    rec = net.fit_eprop(x, y, trainer=rec.trainer, method="traces")  # the limit goes
    assert rec.trainer.history_limit is None and rec.trainer.method_used == "traces"
    with pytest.raises(ValueError, match=r"Network\.fit_eprop: .*unknown method 'gemm'"):
        net.fit_eprop(x, y, trainer=rec.trainer, method="gemm")
    assert rec.trainer.method == "traces"  # the refused call changed nothing


@pytest.mark.parametrize("kind", ["lif", "alif"])
def test_spikes_in_the_first_state_reach_the_recurrent_gradient(kind):
    """The recurrent edge's first presynaptic value is what the delayed edge reads before
    its first step (``init``; the reverse scan keeps it, later ones come from the recorded
    spikes), here with spikes in the first state too."""
    net = _net(kind, refractory=2.0)
    z0 = torch.zeros(N, dtype=F64)
    z0[::3] = 1.0
    net.get_node("rec").set_init("z", z0)
    w_rec = net.get_edge("rec", "rec").weight.detach().clone()
    net.pop_edge("rec", "rec")
    mask = 1.0 - torch.eye(N, dtype=F64)
    net.add_edge("rec", "rec", weights=w_rec, train="gd", feedback=True, mask=mask, init=z0)
    x, y = _inputs(seed=4), np.random.default_rng(10).standard_normal((B, T, K))
    ref = EProp(method="traces").compute_gradients(net, x, y)
    got = EProp(method="reverse").compute_gradients(net, x, y)
    for name, r in ref.items():
        assert _max_rel(got[name], r) < 1e-12, name
    plain = _net(kind, refractory=2.0)
    other = EProp(method="reverse").compute_gradients(plain, x, y)
    key = "edges.rec->rec.weight"
    assert _max_rel(other[key], got[key]) > 1e-3  # the first spikes change it


def test_fit_reads_a_stream_of_trials_one_batch_at_a_time():
    """A generator of fresh trials: each batch is drawn when its update comes, and the
    updates equal those of the same batches given as a list."""
    made, done = [], []

    def stream(n):
        for k in range(n):
            made.append(len(done))  # how many updates had run when batch k was drawn
            yield _inputs(seed=20 + k), np.random.default_rng(k).standard_normal((B, T, K))

    net_a, net_b = _net("alif"), _net("alif")
    a = EProp(optimizer="sgd", lr=0.05)
    step = a.step

    def counted(*args, **kw):
        loss = step(*args, **kw)
        done.append(loss)
        return loss

    a.step = counted
    losses_a = a.fit(net_a, stream(3))
    assert made == [0, 1, 2]  # batch k drawn after k updates
    made.clear()
    losses_b = EProp(optimizer="sgd", lr=0.05).fit(net_b, list(stream(3)))
    assert losses_a == losses_b
    for (name, p), q in zip(
        net_a.compile().named_parameters(), net_b.compile().parameters(), strict=True
    ):
        assert torch.equal(p, q), name
    with pytest.raises(
        ValueError, match=r"EProp.fit: data is an iterator \(read once\), so epochs=2"
    ):
        EProp().fit(_net("lif"), stream(2), epochs=2)


def test_a_trainer_switched_to_auto_takes_the_default_limit():
    trainer = EProp(method="reverse")
    assert trainer.history_limit is None
    trainer.method = "auto"
    method, why = trainer.method_for(_net("lif"), B, T)
    assert method == "reverse" and "history_limit 1024.0 MiB" in why


def test_the_readout_is_any_model_declaring_a_decay_map():
    """e-prop reads the readout's decay from its declared decay map: a model with its own
    map() (the same numbers, no declaration) is refused, saying why."""

    class OwnMap(rg.nodes.LeakyReadout):
        def map(self, s, i, dt):
            return self.State(self.kappa(dt) * s.y + i.I)

    x, y = _inputs(), np.random.default_rng(10).standard_normal((B, T, K))
    grads = EProp().compute_gradients(_net("lif"), x, y)
    assert all(float(g.abs().max()) > 0 for g in grads.values())
    with pytest.raises(ValueError, match="OwnMap overrides map\\(\\) and declares no decay map"):
        EProp().compute_gradients(_net("lif", readout=OwnMap(K, tau=15.0)), x, y)


def test_a_readout_e_prop_cannot_serve_is_refused():
    """A decay map read through an output function, or an edge into another input of the
    readout, would give wrong gradients: refused."""

    class Squashed(rg.nodes.LeakyReadout):
        def __init__(self, n, **kw):
            super().__init__(n, **kw)
            self.output_function = torch.tanh

    x, y = _inputs(), np.random.default_rng(11).standard_normal((B, T, K))
    with pytest.raises(ValueError, match="the output goes through an output function"):
        EProp().compute_gradients(_net("lif", readout=Squashed(K, tau=15.0)), x, y)

    class TwoInputs(rg.nodes.LeakyReadout):
        input_names = ("J", "I")

    with pytest.raises(ValueError, match="feeds its input 'J'; its decay map adds the input 'I'"):
        EProp().compute_gradients(_net("lif", readout=TwoInputs(K, tau=15.0)), x, y)


def test_a_refused_update_builds_no_optimiser_and_a_rolled_back_fit_restores_the_trainer(
    monkeypatch,
):
    net = _net("lif")
    net.get_edge("rec", "out").weight.requires_grad_(False)
    trainer = EProp(feedback="adaptive", feedback_decay=0.1, seed=1)
    x, y = _inputs(), np.random.default_rng(12).standard_normal((B, T, K))
    with pytest.raises(ValueError, match="does not train the readout weights"):
        trainer.step(net, x, y)
    assert trainer.optimizer is None
    with pytest.raises(ValueError, match="must be < 1"):
        EProp(feedback="adaptive", feedback_decay=20.0, lr=0.1, seed=1).step(_net("lif"), x, y)
    # an error in the second update of a fit: weights, feedback matrix and losses as before
    net = _net("lif")
    rec = net.fit_eprop(x, y, feedback="adaptive", feedback_decay=0.2, seed=2, lr=0.01)
    trainer = rec.trainer
    before_b, n_losses = trainer.feedback_weights.clone(), len(trainer.losses)
    before_w = {n: p.detach().clone() for n, p in net.compile().named_parameters()}
    step, calls = EProp.step, []

    def failing(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("interrupted")
        return step(self, *args, **kwargs)

    monkeypatch.setattr(EProp, "step", failing)
    with pytest.raises(RuntimeError, match="interrupted"):
        net.fit_eprop([x, x], [y, y], trainer=trainer)
    assert len(calls) == 2 and len(trainer.losses) == n_losses
    assert torch.equal(trainer.feedback_weights, before_b)
    for n, p in net.compile().named_parameters():
        assert torch.equal(p.detach(), before_w[n]), n
