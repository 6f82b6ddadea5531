"""``ES2N``: edge-of-stability echo-state units, against the map written out in numpy, and
its refusals."""

import math

import numpy as np
import pytest
import torch

import rnngraph as rg
from rnngraph.nodes import ES2N

F64 = torch.float64


def _case(n=40, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n, n)) * 0.9 / math.sqrt(n)
    W_in = rng.uniform(-1, 1, (n, 2))
    O = np.linalg.qr(rng.standard_normal((n, n)))[0]
    u = rng.uniform(-1, 1, (3, 80, 2))
    return W, W_in, O, u


def _es2n_reference(W, W_in, O, u, beta, bias):
    """``x(t) = (1 - beta) O x(t-1) + beta tanh(W x(t-1) + W_in u(t) + b)`` from zero."""
    x, out = np.zeros((u.shape[0], W.shape[0])), []
    for t in range(u.shape[1]):
        x = (1 - beta) * x @ O.T + beta * np.tanh(x @ W.T + u[:, t] @ W_in.T + bias)
        out.append(x)
    return np.stack(out, axis=1)


def _net(W, W_in, O, **kw):
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", W_in.shape[1])
    net.add_diffeq_node("res", ES2N(W.shape[0], O, **kw))
    net.add_edge("in", "res", weights=W_in)
    net.add_edge("res", "res", weights=W, feedback=True)
    return net


@pytest.mark.parametrize("beta", [0.1, 0.5, 1.0])
def test_es2n_equals_the_map_written_in_numpy(beta):
    W, W_in, O, u = _case()
    bias = np.linspace(-0.5, 0.5, 40)
    out = _net(W, W_in, O, proximity=beta, bias=bias).run(u).output.numpy()
    ref = _es2n_reference(W, W_in, O, u, beta, bias)
    assert np.abs(ref).max() > 0.1
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-13)


def test_es2n_with_the_identity_is_the_leaky_tanh_map():
    W, W_in, _, u = _case()
    es2n = _net(W, W_in, np.eye(40), proximity=0.3).run(u).output
    leaky = rg.Network(dt=1.0, dtype=F64)
    leaky.add_func_node("in", 2)
    leaky.add_diffeq_node("res", "leaky_tanh", n=40, lr=0.3, bias=0.0)
    leaky.add_edge("in", "res", weights=W_in)
    leaky.add_edge("res", "res", weights=W, feedback=True)
    torch.testing.assert_close(es2n, leaky.run(u).output, rtol=0, atol=1e-14)


def test_es2n_refusals():
    with pytest.raises(ValueError, match=r"ES2N: O must be a finite \(4, 4\) matrix"):
        ES2N(4, np.eye(3))
    with pytest.raises(ValueError, match=r"ES2N: O must be a finite"):
        ES2N(2, [[1.0, math.nan], [0.0, 1.0]])
    with pytest.raises(ValueError, match="proximity"):
        ES2N(2, np.eye(2), proximity=0.0)
    with pytest.raises(ValueError, match="ES2N: this is a discrete map"):
        ES2N(2, np.eye(2), integrator="euler")


@pytest.mark.parametrize("batch", [1, 3, 12])
@pytest.mark.parametrize("dtype", [F64, torch.float32])
def test_es2n_runs_in_the_native_loop_and_equals_numpy(batch, dtype):
    # declared as a leaky map that mixes by O: the whole-sequence C loop serves it at
    # batch 1 (dense W), and at any batch with CSR W; the torch step gives the same values
    W, W_in, O, _ = _case()
    W = W * (np.random.default_rng(1).uniform(size=W.shape) < 0.3)
    u = np.random.default_rng(batch).uniform(-1, 1, (batch, 60, 2))
    bias = np.linspace(-0.3, 0.3, 40)
    net = _net(W, W_in, O, proximity=0.3, bias=bias)
    net.to(dtype=dtype)
    if batch > 1:
        net.pop_edge("res", "res")
        net.add_edge(
            "res", "res", weights=torch.as_tensor(W, dtype=dtype), feedback=True, sparse=True
        )
    model = net.compile()
    assert "native reservoir loop" in str(model.explain(batch_size=batch))
    out = model.run(torch.as_tensor(u, dtype=dtype)).output.double().numpy()
    ref = _es2n_reference(W, W_in, O, u, 0.3, bias)
    tol = 1e-12 if dtype == F64 else 3e-5
    np.testing.assert_allclose(out, ref, rtol=0, atol=tol)
    rg.native.set_enabled(False)
    try:
        model.reset()
        torch_loop = model.run(torch.as_tensor(u, dtype=dtype)).output.double().numpy()
    finally:
        rg.native.set_enabled(True)
    np.testing.assert_allclose(out, torch_loop, rtol=0, atol=tol)


def test_es2n_generates_on_its_own_output_in_the_native_loop():
    W, W_in, O, _ = _case(n=40)
    W_in = W_in[:, :1]
    net = _net(W, W_in, O, proximity=0.4)
    x = np.sin(np.arange(400) * 0.1)[:, None]
    net.fit_ridge(x[:300], x[1:301], alpha=1e-6, washout=20)
    net.reset()
    gen = net.generate(50, warmup=x[250:300]).output.numpy()
    rg.native.set_enabled(False)
    try:
        net.reset()
        ref = net.generate(50, warmup=x[250:300]).output.numpy()
    finally:
        rg.native.set_enabled(True)
    np.testing.assert_allclose(gen, ref, rtol=0, atol=1e-9)
    assert np.abs(gen[:10] - x[301:311]).max() < 0.05  # it follows the sine for a while
