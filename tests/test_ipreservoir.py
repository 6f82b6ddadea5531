"""``IPReservoir`` and ``Network.fit_intrinsic``: leaky units whose gains and shifts are
tuned by intrinsic plasticity (Triesch 2005; Schrauwen et al. 2008), against the map and the
rule written out in NumPy (reservoirpy's own node: ``tests/test_peer_reservoirpy.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rnngraph as rg
from rnngraph import _native
from rnngraph.network import _compiled
from rnngraph.network.executor import Hook

F64 = torch.float64
N = 25


def weights(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    w_in = rg.input_weights(N, 2, seed=g, dtype=F64).numpy()
    w = rg.recurrent_weights(N, spectral_radius=0.9, connectivity=0.3, seed=g, dtype=F64).numpy()
    bias = np.random.default_rng(seed).uniform(-0.5, 0.5, N)
    return w_in, w, bias


def network(activation="tanh", mu=0.0, sigma=0.3, eta=2e-3, lr=0.4, seed=0):
    w_in, w, bias = weights(seed)
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 2)
    node = rg.nodes.IPReservoir(
        N, lr=lr, bias=bias, activation=activation, mu=mu, sigma=sigma, learning_rate=eta
    )
    net.add_diffeq_node("res", node)
    net.add_edge("in", "res", weights=w_in)
    net.add_edge("res", "res", weights=w, feedback=True)
    return net, node


def reference(u, epochs, washout, activation="tanh", mu=0.0, sigma=0.3, eta=2e-3, lr=0.4):
    """The map and the rule in NumPy, ``u`` ``(B, T, 2)``: a and b after ``epochs`` passes
    (the state carried on), the rule's steps summed over the batch."""
    w_in, w, bias = weights()
    a, b = np.ones(N), np.zeros(N)
    r = x = np.zeros((u.shape[0], N))
    f = np.tanh if activation == "tanh" else (lambda z: 1.0 / (1.0 + np.exp(-z)))
    for _ in range(epochs):
        for t in range(u.shape[1]):
            r = (1 - lr) * r + lr * (x @ w.T + u[:, t] @ w_in.T + bias)
            x = f(a * r + b)
            if t < washout:
                continue
            if activation == "tanh":
                db = mu / sigma**2 - (x / sigma**2) * (2 * sigma**2 + 1 - x**2 + mu * x)
            else:
                db = 1 - (2 + 1 / mu) * x + x**2 / mu
            a, b = a + eta * (1 / a + db * r).sum(0), b + eta * db.sum(0)
    return a, b, x


@pytest.mark.parametrize(
    "activation, mu, sigma", [("tanh", 0.0, 0.3), ("sigmoid", 0.2, 1.0)], ids=["tanh", "sigmoid"]
)
def test_fit_intrinsic_follows_the_rule_step_by_step(activation, mu, sigma):
    u = np.random.default_rng(1).uniform(-1, 1, (2, 150, 2))
    net, node = network(activation, mu, sigma)
    rec = net.fit_intrinsic(u, epochs=3, washout=10)
    a, b, x = reference(u, 3, 10, activation, mu, sigma)
    assert np.abs(a - 1).max() > 0.1  # the rule moved the gains
    np.testing.assert_allclose(node.a.numpy(), a, rtol=0, atol=1e-12)
    np.testing.assert_allclose(node.b.numpy(), b, rtol=0, atol=1e-12)
    np.testing.assert_allclose(rec.output[:, -1].numpy(), x, rtol=0, atol=1e-12)
    np.testing.assert_allclose(net.state["res.x"].numpy(), x, rtol=0, atol=1e-12)


needs_native = pytest.mark.skipif(
    not _native.available(), reason=f"native loops unavailable: {_native.failure()}"
)


@needs_native
@pytest.mark.parametrize(
    "activation, mu, sigma", [("tanh", 0.0, 0.3), ("sigmoid", 0.2, 1.0)], ids=["tanh", "sigmoid"]
)
def test_the_native_loop_applies_the_rule_across_chunks(
    monkeypatch, generic, activation, mu, sigma
):
    """Batch 1 runs in the C loop, the rule included (the hook's torch function is never
    called), in 16-step chunks with the washout ending inside the third: the gains, shifts
    and states are the NumPy rule's and the torch loop's."""
    monkeypatch.setattr(_compiled, "_CHUNK_ELEMENTS", 16 * (N + 2))
    u = np.random.default_rng(4).uniform(-1, 1, (1, 150, 2))
    chunks = []
    gain = _native.ReservoirRun._gain
    monkeypatch.setattr(
        _native.ReservoirRun, "_gain", lambda run, *a: chunks.append(run.t) or gain(run, *a)
    )
    net, node = network(activation, mu, sigma)
    assert net.compile().explain().loop == "native reservoir loop"
    monkeypatch.setattr(type(node), "plasticity", None, raising=False)  # never called
    rec = net.fit_intrinsic(u, epochs=2, washout=40)
    assert chunks == [16 * k for k in range(10)] * 2
    a, b, x = reference(u, 2, 40, activation, mu, sigma)
    assert np.abs(b).max() > 0.05  # the rule moved the shifts
    for got, want in ((node.a, a), (node.b, b), (rec.output[:, -1], x), (net.state["res.x"], x)):
        np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-12)
    monkeypatch.undo()
    torch_net, torch_node = network(activation, mu, sigma)
    with generic:
        torch_rec = torch_net.fit_intrinsic(u, epochs=2, washout=40)
    assert torch.allclose(torch_node.a, node.a, rtol=0, atol=1e-13)
    assert torch.allclose(torch_rec.output, rec.output, rtol=0, atol=1e-13)


def test_a_rule_of_a_subclass_is_the_one_applied():
    """A subclass that redefines ``plasticity`` loses the gain map's native loop (explain
    says why) and its own rule is applied, step by step."""

    class ShiftOnly(rg.nodes.IPReservoir):
        def plasticity(self, r, x):
            return torch.zeros_like(x), torch.full_like(x, 1e-3)

    w_in, w, bias = weights()
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 2)
    node = ShiftOnly(N, lr=0.4, bias=bias, sigma=0.3)
    net.add_diffeq_node("res", node)
    net.add_edge("in", "res", weights=w_in)
    net.add_edge("res", "res", weights=w, feedback=True)
    why = net.compile().explain().loop_why
    assert "ShiftOnly overrides plasticity() and declares no gain map" in why
    net.fit_intrinsic(np.zeros((30, 2)), washout=10)
    assert torch.equal(node.a, torch.ones(N, dtype=F64))
    np.testing.assert_allclose(node.b.numpy(), 20e-3, rtol=1e-12)


@pytest.mark.parametrize("rule", [("hebbian", 0), ("intrinsic", -1), ("intrinsic", True), "x"])
def test_a_hook_refuses_a_rule_it_cannot_name(rule):
    with pytest.raises(ValueError, match="rule must be"):
        Hook("res", (), lambda t: None, rule=rule)


def test_a_plain_run_leaves_gains_and_shifts_and_computes_the_map():
    net, node = network()
    node.a.copy_(torch.linspace(0.5, 1.5, N, dtype=F64))
    node.b.copy_(torch.linspace(-0.2, 0.2, N, dtype=F64))
    u = np.random.default_rng(2).uniform(-1, 1, (60, 2))
    out = net.run(u, record=["res.r"])
    w_in, w, bias = weights()
    a, b = node.a.numpy(), node.b.numpy()
    r = x = np.zeros(N)
    for t in range(60):
        r = 0.6 * r + 0.4 * (w @ x + w_in @ u[t] + bias)
        x = np.tanh(a * r + b)
    np.testing.assert_allclose(out.output[-1].numpy(), x, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["res.r"][-1].numpy(), r, rtol=0, atol=1e-12)
    assert torch.equal(node.a, torch.linspace(0.5, 1.5, N, dtype=F64))


def test_fit_intrinsic_refuses_and_leaves_the_network():
    net, node = network()
    u = np.random.default_rng(3).uniform(-1, 1, (40, 2))
    with pytest.raises(TypeError, match="call once per sequence"):
        net.fit_intrinsic([u, u])
    with pytest.raises(ValueError, match="washout=40 leaves none of the 40 steps"):
        net.fit_intrinsic(u, washout=40)
    with pytest.raises(ValueError, match="node='in' is not an IPReservoir"):
        net.fit_intrinsic(u, node="in")
    with pytest.raises(ValueError, match="epochs"):
        net.fit_intrinsic(u, epochs=0)
    wild, wild_node = network()
    wild_node.a.zero_()  # a gain of 0: the rule's 1/a is inf at the first step
    held = wild.state
    with pytest.raises(ValueError, match="became NaN or inf"):
        wild.fit_intrinsic(u)
    assert torch.equal(wild_node.a, torch.zeros(N, dtype=F64)) and wild.state is held
    assert torch.equal(wild_node.b, torch.zeros(N, dtype=F64))
    plain = rg.Network(dt=1.0)
    plain.add_func_node("in", 2)
    plain.add_diffeq_node("res", "leaky_tanh", n=5)
    plain.add_edge("in", "res", weights=np.ones((5, 2)))
    with pytest.raises(ValueError, match="has 0 IPReservoir nodes"):
        plain.fit_intrinsic(u)
    assert torch.equal(node.a, torch.ones(N, dtype=F64))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"activation": "relu"}, "activation must be 'tanh' or 'sigmoid'"),
        ({"sigma": 0.0}, "sigma must be a finite number > 0"),
        ({"activation": "sigmoid", "mu": 0.0}, "mu must be a finite number > 0"),
        ({"learning_rate": -1.0}, "learning_rate must be a finite number > 0"),
        ({"mu": True}, "mu must be a finite number"),
        ({"lr": 1.5}, "lr"),
    ],
)
def test_ipreservoir_refuses_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rg.nodes.IPReservoir(4, **kwargs)
