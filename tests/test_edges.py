"""Linear edges: dense, masked, sparse, bias, init values, train modes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
import torch
from conftest import esn_reference
from torch import nn

import rnngraph as rg
from rnngraph import Linear, Network


def test_dense_apply_is_wx_plus_b(rng):
    W = rng.normal(size=(4, 3))
    b = rng.normal(size=4)
    x = rng.normal(size=(5, 7, 3))
    e = Linear(3, 4, weights=W, bias=b, dtype=torch.float64)
    y = e(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(y, x @ W.T + b, rtol=0, atol=1e-14)
    assert e.weight.shape == (4, 3) and e.bias.shape == (4,)


def test_masked_weights_apply_and_stay_masked_under_training(rng):
    W = rng.normal(size=(4, 3))
    M = (rng.random((4, 3)) < 0.5).astype(float)
    x = torch.as_tensor(rng.normal(size=(6, 3)))
    e = Linear(3, 4, weights=W, mask=M, train="gd", dtype=torch.float64)
    np.testing.assert_allclose(e(x).detach().numpy(), x.numpy() @ (W * M).T, atol=1e-14)
    e(x).pow(2).sum().backward()
    np.testing.assert_array_equal(e.weight.grad.numpy()[M == 0], 0.0)
    assert isinstance(e.weight, nn.Parameter) and not isinstance(e.mask, nn.Parameter)


@pytest.mark.parametrize("kind", ["flag", "scipy"])
def test_sparse_equals_dense(rng, kind):
    W = rng.normal(size=(30, 20)) * (rng.random((30, 20)) < 0.1)
    x = torch.as_tensor(rng.normal(size=(2, 5, 20)))
    dense = Linear(20, 30, weights=W, bias=[1.0] * 30, dtype=torch.float64)
    if kind == "flag":
        sparse = Linear(20, 30, weights=W, sparse=True, bias=[1.0] * 30, dtype=torch.float64)
    else:
        W_sp = scipy.sparse.csr_matrix(W)
        sparse = Linear(20, 30, weights=W_sp, bias=[1.0] * 30, dtype=torch.float64)
    assert sparse.sparse and sparse.weight.layout == torch.sparse_csr
    assert sparse.weight._nnz() == np.count_nonzero(W)
    torch.testing.assert_close(sparse(x), dense(x), rtol=0, atol=1e-14)


def test_sparse_cannot_be_trained_by_gradient():
    with pytest.raises(ValueError, match="sparse \\(CSR\\) weights cannot be trained"):
        Linear(3, 3, weights=np.eye(3), sparse=True, train="gd")


def test_train_modes():
    assert isinstance(Linear(2, 2, train="gd", seed=0).weight, nn.Parameter)
    rls = Linear(2, 2, train="rls", seed=0)
    assert not isinstance(rls.weight, nn.Parameter) and "weight" in dict(rls.named_buffers())
    with pytest.raises(ValueError, match=r"train must be one of \(None, 'gd', 'rls'\), got 'sgd'"):
        Linear(2, 2, train="sgd")


def test_bias_true_is_zero_and_trainable_with_gd():
    e = Linear(3, 2, train="gd", bias=True, seed=0)
    assert isinstance(e.bias, nn.Parameter)
    torch.testing.assert_close(e.bias, torch.zeros(2))


@pytest.mark.parametrize(
    ("kwargs", "msg"),
    [
        ({"delay": -1}, r"delay must be an int >= 0, got -1"),
        ({"delay": 1.5}, r"delay must be an int >= 0, got 1.5"),
        ({"weights": np.full((2, 3), np.nan)}, r"weights contains NaN or inf"),
        (
            {"mask": np.ones((3, 2))},
            r"mask must have shape \(n_out, n_in\) = \(2, 3\), got \(3, 2\)",
        ),
        ({"bias": [1.0, 2.0, 3.0]}, r"bias must be a scalar or have shape \(2,\), got \(3,\)"),
        (
            {"init": np.zeros(2), "delay": 1},
            r"init must be a scalar, \(3,\) or \(B, 3\), got shape \(2,\)",
        ),
    ],
)
def test_linear_rejects_bad_arguments(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        Linear(3, 2, **kwargs)


def test_edge_bias_on_feedback_and_dynamic_edges(rng):
    """A bias on a feedback edge and on a zero-delay edge between dynamic nodes enters every
    step, including step 0 (where the delayed value itself is still zero)."""
    n = 5
    W = rng.normal(scale=0.3, size=(n, n))
    b_rec = rng.normal(size=n)
    W_out = rng.normal(size=(2, n))
    b_out = rng.normal(size=2)
    u = rng.normal(size=(15, 2))
    W_in = rng.normal(size=(n, 2))
    net = Network(1.0, dtype=torch.float64)
    net.add_func_node("inp", 2)
    net.add_diffeq_node("res", "leaky_tanh", n, lr=0.6)
    net.add_func_node("out", 2)
    net.add_edge("inp", "res", W_in)
    net.add_edge("res", "res", W, feedback=True, bias=b_rec)
    net.add_edge("res", "out", W_out, bias=b_out)
    xs = esn_reference(W, W_in, b_rec, 0.6, u)
    np.testing.assert_allclose(net.run(u).output.numpy(), xs @ W_out.T + b_out, atol=1e-13)


def test_initialisers():
    W = rg.recurrent_weights(50, 0.9, 0.2, distribution="uniform", seed=3)
    assert abs(rg.edges.spectral_radius(W) - 0.9) < 1e-5
    Win = rg.input_weights(10, 3, connectivity=1.0, scaling=[1.0, 2.0, 0.5], seed=0)
    np.testing.assert_array_equal(np.unique(np.abs(Win.numpy()), axis=0)[0], [1.0, 2.0, 0.5])
    torch.testing.assert_close(rg.input_weights(10, 3, seed=4), rg.input_weights(10, 3, seed=4))
    with pytest.raises(ValueError, match="unknown distribution 'cauchy'; valid: "):
        rg.recurrent_weights(5, distribution="cauchy", seed=0)


def test_bias_weights_are_one_input_column():
    """bias_weights draws what input_weights draws for one column, with the same seed."""
    b = rg.bias_weights(5000, connectivity=0.2, scaling=0.5, seed=7, dtype=torch.float64)
    col = rg.input_weights(5000, 1, connectivity=0.2, scaling=0.5, seed=7, dtype=torch.float64)
    assert b.shape == (5000,) and b.is_contiguous()
    torch.testing.assert_close(b, col[:, 0], rtol=0, atol=0)
    assert set(b.unique().tolist()) == {-0.5, 0.0, 0.5}
    assert not torch.signbit(b[b == 0]).any()  # zeros, not negative zeros
    # fraction of units with a bias: binomial, sd 0.0057 at n = 5000
    assert abs((b != 0).double().mean().item() - 0.2) < 0.02
    # signs balanced: sd of the mean sign over about 1000 entries is 0.032
    assert abs(torch.sign(b[b != 0]).mean().item()) < 0.1
    with pytest.raises(ValueError, match=r"bias_weights: connectivity must be in \(0, 1\], got 0"):
        rg.bias_weights(10, connectivity=0, seed=0)


def test_initialiser_docstring_examples():
    import doctest

    from rnngraph.edges import _init

    assert doctest.testmod(_init).failed == 0


def test_bias_breaks_the_odd_symmetry_of_a_tanh_reservoir():
    """Without a bias, the states driven by -u are minus those driven by u; with one, not."""
    n = 40
    w = rg.recurrent_weights(n, 0.9, 0.5, seed=1, dtype=torch.float64)
    w_in = rg.input_weights(n, 1, seed=2, dtype=torch.float64)
    u = torch.sin(torch.arange(60, dtype=torch.float64) / 5).reshape(-1, 1) + 0.3

    def states(bias, sign):
        net = Network(1.0, dtype=torch.float64)
        net.add_func_node("in", 1)
        net.add_diffeq_node("res", "leaky_tanh", n, lr=0.5, bias=bias)
        net.add_edge("in", "res", w_in)
        net.add_edge("res", "res", w, feedback=True)
        return net.run(sign * u).output

    odd = states(0.0, 1.0) + states(0.0, -1.0)
    assert odd.abs().max() < 1e-14
    b = rg.bias_weights(n, connectivity=0.5, seed=3, dtype=torch.float64)
    assert (states(b, 1.0) + states(b, -1.0)).abs().max() > 0.1


def _readout_net(bias: bool) -> tuple[Network, torch.Tensor]:
    gen = torch.Generator().manual_seed(5)
    net = Network(dt=1.0, dtype=torch.float64)
    net.add_func_node("in", 2)
    net.add_diffeq_node("res", "leaky_tanh", n=4, lr=0.5)
    net.add_func_node("out", 1)
    net.add_edge("in", "res", weights=torch.randn(4, 2, generator=gen, dtype=torch.float64))
    net.add_edge("res", "out", weights=torch.randn(1, 4, generator=gen, dtype=torch.float64),
                 bias=bias)  # fmt: skip
    return net, torch.randn(1, 6, 2, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize(
    "had, how",
    [(False, "setattr"), (False, "register"), (True, "setattr"), (True, "delattr"),
     (True, "register")],
)  # fmt: skip
def test_whether_an_edge_has_a_bias_is_fixed_when_it_is_made(had, how):
    """Compiled loops fold an edge's bias in when they are made: adding one later (or
    taking one away) is refused, and the network runs as before; new values are taken."""
    net, x = _readout_net(bias=had)
    model = net.compile()
    edge, before = model.edges["res->out"], model.forward(x)
    change = {
        "setattr": lambda: setattr(edge, "bias", None if had else nn.Parameter(torch.ones(1))),
        "delattr": lambda: delattr(edge, "bias"),
        "register": lambda: edge.register_parameter(
            "bias", None if had else nn.Parameter(torch.ones(1, dtype=torch.float64))
        ),  # fmt: skip
    }[how]
    with pytest.raises(ValueError, match="made with (no bias|a bias).*cannot change"):
        change()
    assert (edge.bias is None) is (not had)
    assert torch.equal(model.forward(x), before)
    if had:  # its values change freely: the bias made with bias=True starts at zero
        assert float(edge.bias.abs().sum()) == 0.0
        edge.bias.data.fill_(2.5)
        assert torch.allclose(model.forward(x), before + 2.5, rtol=0, atol=1e-14)


def test_a_parametrized_weight_is_the_weight_the_network_applies():
    """``torch.nn.utils.parametrize`` replaces the weight by a computed property: runs and
    steps apply it (here twice the stored weight)."""
    from torch.nn.utils import parametrize

    class Twice(nn.Module):
        def forward(self, w: torch.Tensor) -> torch.Tensor:
            return 2.0 * w

    net, x = _readout_net(bias=False)
    ref = net.compile().forward(x)
    model = net.compile()
    edge = model.edges["in->res"]
    with torch.no_grad():
        edge.weight.mul_(0.5)
    parametrize.register_parametrization(edge, "weight", Twice())
    assert torch.allclose(model.forward(x), ref, rtol=0, atol=1e-14)
    s, ys = model.init_state(1), []
    for t in range(x.shape[1]):
        y, s = model.step(x[:, t], s)
        ys.append(y)
    assert torch.allclose(torch.stack(ys, 1), ref, rtol=0, atol=1e-14)
