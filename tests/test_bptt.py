"""BPTT: gradients equal a hand-written torch loop, truncation, names, batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rnngraph as rg
from rnngraph.network._compiled import CompiledNetwork
from rnngraph.training import BPTT, LOSSES, OPTIMIZERS, get_loss

F64 = torch.float64


def _rate_net(n=20, seed=0, dtype=F64):
    net = rg.Network(dt=1.0, dtype=dtype)
    net.add_func_node("in", 2)
    net.add_diffeq_node("res", "leaky_integrator", n=n, tau=4.0)
    net.add_edge("in", "res", train="gd", seed=seed)
    net.add_edge(
        "res",
        "res",
        weights=rg.recurrent_weights(n, 0.9, 0.5, seed=seed + 1, dtype=dtype),
        feedback=True,
        train="gd",
    )
    net.add_func_node("out", 1)
    net.add_edge("res", "out", train="gd", seed=seed + 2)
    return net


def _data(T=60, B=None, seed=0):
    g = np.random.default_rng(seed)
    shape = (T, 2) if B is None else (B, T, 2)
    x = g.standard_normal(shape)
    y = np.cumsum(x[..., :1], axis=-2) * 0.1
    return x, y


def _manual_loss(net, x, y):
    """The same network written as a plain torch loop (Euler, feedback read at t-1)."""
    W_in = net.get_edge("in", "res").weight
    W = net.get_edge("res", "res").weight
    W_out = net.get_edge("res", "out").weight
    tau = net.get_node("res").tau
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    v = torch.zeros(W.shape[0], dtype=F64)
    r_prev = torch.zeros_like(v)
    outs = []
    for t in range(x.shape[0]):
        v = v + (W_in @ x[t] + W @ r_prev - v) / tau
        r = torch.tanh(v)
        outs.append(W_out @ r)
        r_prev = r
    return torch.nn.functional.mse_loss(torch.stack(outs), y)


def test_bptt_gradients_equal_a_plain_torch_loop():
    net = _rate_net()
    x, y = _data()
    ref = _manual_loss(net, x, y)
    ref_grads = torch.autograd.grad(ref, list(net.parameters()))
    out = net.compile().forward(x, state=net.compile().init_state(1))
    loss = torch.nn.functional.mse_loss(out, torch.as_tensor(y))
    grads = torch.autograd.grad(loss, list(net.parameters()))
    assert torch.allclose(loss, ref, atol=1e-13)
    for g, r in zip(grads, ref_grads, strict=True):
        assert torch.allclose(g, r, atol=1e-12)


def test_one_sgd_update_moves_weights_by_lr_times_gradient():
    net = _rate_net()
    x, y = _data()
    before = [p.detach().clone() for p in net.parameters()]
    grads = torch.autograd.grad(_manual_loss(net, x, y), list(net.parameters()))
    rec = net.fit_bptt(x, y, optimizer="sgd", lr=0.1)
    assert len(rec.loss) == 1
    for p, b, g in zip(net.parameters(), before, grads, strict=True):
        assert torch.allclose(p.detach(), b - 0.1 * g, atol=1e-12)


def test_truncation_detaches_every_window():
    net = _rate_net()
    x, y = _data(T=60)
    # a vanishing learning rate keeps the weights, so windows can be compared with a plain run
    rec = net.fit_bptt(x, y, optimizer="sgd", lr=1e-12, update_steps=25)
    assert len(rec.loss) == 3  # windows 0-25, 25-50, 50-60
    # the held state after training carries no autograd history
    assert all(not v.requires_grad for v in net.state.values())
    # the second window's loss equals a forward from the first window's end state
    net2 = _rate_net()
    model = net2.compile()
    with torch.no_grad():
        model.run(x[:25])
        out = model.run(x[25:50]).output
    ref = torch.nn.functional.mse_loss(out, torch.as_tensor(y[25:50]))
    assert rec.loss[1] == pytest.approx(float(ref), rel=1e-9)


def test_training_lowers_the_loss_tenfold():
    net = _rate_net(n=40, seed=3)
    x, y = _data(T=100, seed=3)
    rec = net.fit_bptt(x, y, optimizer="adam", lr=2e-2, epochs=150)
    assert rec.loss[-1] < 0.1 * rec.loss[0]


def test_batch_runs_as_one_forward(monkeypatch):
    calls = []
    original = CompiledNetwork._run

    def counting(self, x, *args, **kwargs):
        calls.append(None if x is None else tuple(x.shape))
        return original(self, x, *args, **kwargs)

    monkeypatch.setattr(CompiledNetwork, "_run", counting)
    net = _rate_net()
    x, y = _data(T=30, B=64)
    net.fit_bptt(x, y, optimizer="adam", lr=1e-3)
    assert calls == [(64, 30, 2)]


def test_batched_gradient_is_the_mean_of_per_trial_gradients():
    x, y = _data(T=20, B=4)
    net = _rate_net()
    model = net.compile()
    out = model.forward(x, state=model.init_state(4))
    loss = torch.nn.functional.mse_loss(out, torch.as_tensor(y))
    g_batch = torch.autograd.grad(loss, list(net.parameters()))
    per = [
        torch.autograd.grad(_manual_loss(net, x[b], y[b]), list(net.parameters())) for b in range(4)
    ]
    for k, g in enumerate(g_batch):
        assert torch.allclose(g, sum(p[k] for p in per) / 4, atol=1e-12)


def test_cross_entropy_with_class_index_targets():
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 3)
    net.add_func_node("out", 3)
    net.add_edge("in", "out", train="gd", seed=0)
    g = np.random.default_rng(0)
    x = g.standard_normal((8, 50, 3))
    labels = x.argmax(-1)  # learnable: the class is the largest input
    rec = net.fit_bptt(x, labels, optimizer="adam", lr=5e-2, loss="ce", epochs=100)
    assert rec.loss[-1] < 0.3 * rec.loss[0]
    pred = net.run(x).output.argmax(-1).numpy()
    assert (pred == labels).mean() > 0.95


def test_names_and_errors():
    assert set(OPTIMIZERS) == {
        "sgd",
        "adam",
        "adamw",
        "adagrad",
        "adadelta",
        "adamax",
        "rmsprop",
        "rprop",
    }
    assert set(LOSSES) == {"mse", "l1", "nll", "ce", "kld", "hinge"}
    with pytest.raises(
        ValueError, match=r"unknown optimizer 'adamx'; valid names are \['adadelta'"
    ):
        BPTT(optimizer="adamx")
    with pytest.raises(ValueError, match=r"unknown loss 'mae'; valid names are"):
        get_loss("mae")
    with pytest.raises(ValueError, match="update_steps must be an int >= 1, got 0"):
        BPTT(update_steps=0)
    net = rg.Network(dt=1.0)
    net.add_func_node("in", 2)
    net.add_func_node("out", 1)
    net.add_edge("in", "out")
    with pytest.raises(ValueError, match="no trainable parameters"):
        net.fit_bptt(*_data(T=5))


def test_optimizer_instances_and_custom_losses():
    net = _rate_net()
    x, y = _data()
    opt = torch.optim.SGD(net.parameters(), lr=1e-2)
    calls = []

    def loss(out, target):
        calls.append(out.shape)
        return (out - target).abs().mean()

    net.fit_bptt(x, y, optimizer=opt, loss=loss)
    assert calls == [torch.Size([1, 60, 1])]
