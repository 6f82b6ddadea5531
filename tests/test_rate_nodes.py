"""Rate nodes against references written out in numpy: the ESN map, RectiPy's leaky
integrator, the QIF mean field."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
import torch
from conftest import esn_reference

import rnngraph as rg
from rnngraph import Network
from rnngraph.nodes import LeakyTanh, QIFMeanField

N, C, T = 60, 3, 200
LR = 0.3


@pytest.fixture
def esn_data():
    """W: sparse 10 %, spectral radius 1.25; W_in, b, u drawn from fixed seeds."""
    W = rg.recurrent_weights(N, 1.25, 0.1, seed=7, dtype=torch.float64).numpy()
    g = np.random.default_rng(11)
    W_in = g.uniform(-1.0, 1.0, size=(N, C))
    b = g.normal(scale=0.2, size=N)
    u = g.normal(size=(T, C))
    return W, W_in, b, u


def _esn(W, W_in, b, *, node_bias=True, **rec_kwargs):
    net = Network(1.0, dtype=torch.float64)
    net.add_func_node("inp", C)
    net.add_diffeq_node("res", "leaky_tanh", N, lr=LR, bias=b if node_bias else 0.0)
    net.add_edge("inp", "res", W_in, bias=False if node_bias else b)
    net.add_edge("res", "res", feedback=True, **rec_kwargs)
    return net


def test_recurrent_weights_recipe():
    W = rg.recurrent_weights(N, 1.25, 0.1, seed=7, dtype=torch.float64).numpy()
    assert abs(np.max(np.abs(np.linalg.eigvals(W))) - 1.25) < 1e-10
    density = np.count_nonzero(W) / W.size
    assert 0.07 < density < 0.13  # 10 % connectivity, binomial spread at N=60


@pytest.mark.parametrize("where_bias", ["node", "edge"])
def test_esn_reproduces_reservoirpy_update(esn_data, where_bias):
    W, W_in, b, u = esn_data
    ref = esn_reference(W, W_in, b, LR, u)
    net = _esn(W, W_in, b, node_bias=where_bias == "node", weights=W)
    got = net.run(u, record="res")["res"].numpy()
    err = np.abs(got - ref).max()
    assert err < 1e-12, err
    # the output node is the reservoir and its output is x(t), already reflecting u(t)
    np.testing.assert_allclose(net.run(u).output.numpy(), esn_reference(W, W_in, b, LR, u, ref[-1]))
    # the reservoir is not trivially saturated or silent: the check above has teeth
    assert 0.05 < np.abs(ref).mean() < 0.95


def test_esn_with_sparse_csr_weights(esn_data):
    W, W_in, b, u = esn_data
    ref = esn_reference(W, W_in, b, LR, u)
    W_csr = rg.recurrent_weights(N, 1.25, 0.1, seed=7, dtype=torch.float64, sparse=True)
    assert W_csr.layout == torch.sparse_csr
    np.testing.assert_array_equal(W_csr.to_dense().numpy(), W)
    for kwargs in (
        {"weights": W, "sparse": True},
        {"weights": scipy.sparse.csr_matrix(W)},
        {"weights": W_csr},
    ):
        net = _esn(W, W_in, b, **kwargs)
        assert net.get_edge("res", "res").sparse
        err = np.abs(net.run(u).output.numpy() - ref).max()
        assert err < 1e-12, (kwargs.keys(), err)


def test_esn_with_mask(esn_data):
    W, W_in, b, u = esn_data
    dense = np.random.default_rng(3).normal(size=(N, N)) * 0.3
    mask = (np.random.default_rng(4).random((N, N)) < 0.1).astype(np.float64)
    ref = esn_reference(dense * mask, W_in, b, LR, u)
    net = _esn(W, W_in, b, weights=dense, mask=mask)
    err = np.abs(net.run(u).output.numpy() - ref).max()
    assert err < 1e-12, err
    # without the mask the trajectory is a different one
    assert np.abs(esn_reference(dense, W_in, b, LR, u) - ref).max() > 1e-2


def test_esn_unbatched_float32_default(esn_data):
    W, W_in, b, u = esn_data
    net = Network(1.0)
    net.add_func_node("inp", C)
    net.add_diffeq_node("res", "leaky_tanh", N, lr=LR, bias=b)
    net.add_edge("inp", "res", W_in)
    net.add_edge("res", "res", W, feedback=True)
    y = net.run(u.astype(np.float32)).output
    assert y.dtype == torch.float32
    np.testing.assert_allclose(y.numpy(), esn_reference(W, W_in, b, LR, u), atol=1e-4)


def test_leaky_tanh_takes_no_integrator():
    with pytest.raises(ValueError, match="LeakyTanh: this is a discrete map.*integrator='rk4'"):
        LeakyTanh(3, integrator="rk4")


def test_rectipy_leaky_integrator_template(rng):
    """RectiPy's call, line by line, against a numpy forward-Euler loop of
    ``v' = -v/tau + J tanh(v(t-1)) + I_ext``."""
    n, dt, tau, steps = 8, 0.05, 2.0, 300
    J = rng.normal(scale=1.5 / np.sqrt(n), size=(n, n))
    inp = rng.normal(size=(steps, n))
    net = Network(dt, dtype=torch.float64)
    net.add_diffeq_node(
        "rnn",
        "neuron_model_templates.rate_neurons.leaky_integrator.tanh",
        weights=J,
        source_var="tanh_op/r",
        target_var="li_op/r_in",
        input_var="li_op/I_ext",
        node_vars={"all/li_op/tau": 2.0},
    )
    assert float(net.get_var("rnn", "li_op/tau")) == tau
    got = net.run(inp, record=["rnn", "rnn.v"])
    v = np.zeros(n)
    vs = np.empty((steps, n))
    for t in range(steps):
        v = v + dt * (-v / tau + J @ np.tanh(v) + inp[t])
        vs[t] = v
    np.testing.assert_allclose(got["rnn.v"].numpy(), vs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["rnn"].numpy(), np.tanh(vs), rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.output.numpy(), np.tanh(vs), rtol=0, atol=1e-12)


def test_rectipy_sigmoid_template_and_eta(rng):
    n, dt = 4, 0.1
    net = Network(dt, dtype=torch.float64)
    net.add_diffeq_node(
        "rnn", "neuron_model_templates.rate_neurons.leaky_integrator.sigmoid", n, eta=0.5, tau=3.0
    )
    inp = rng.normal(size=(50, n))
    got = net.run(inp).output.numpy()
    v = np.zeros(n)
    for t in range(50):
        v = v + dt * (-v / 3.0 + 0.5 + inp[t])
    np.testing.assert_allclose(got[-1], 1.0 / (1.0 + np.exp(-v)), atol=1e-12)


def test_leaky_integrator_output_is_activation_of_v(rng):
    net = Network(0.5, dtype=torch.float64)
    net.add_diffeq_node("li", "leaky_integrator", 3, tau=4.0, activation="sigmoid")
    inp = rng.normal(size=(20, 3))
    rec = net.run(inp, record=["li", "li.v"])
    v = np.zeros(3)
    for t in range(20):
        v = v + 0.5 * (inp[t] - v) / 4.0
    np.testing.assert_allclose(rec["li.v"].numpy()[-1], v, atol=1e-13)
    np.testing.assert_allclose(rec["li"].numpy(), 1 / (1 + np.exp(-rec["li.v"].numpy())))


def test_qif_mean_field_fixed_point():
    """Without input and coupling the MPR equations (tau = 1) have the stable focus
    ``2 r v = -Delta / pi``, ``v^2 + eta = (pi r)^2``, i.e.
    ``(pi r)^2 = (eta + sqrt(eta^2 + Delta^2)) / 2`` and ``v = -Delta / (2 pi r)``."""
    Delta, eta = 1.0, 1.0
    net = Network(1e-2, dtype=torch.float64)
    net.add_diffeq_node("qif", "qif_mf", 1, Delta=Delta, eta=eta, integrator="rk4")
    net.get_node("qif").set_init("r", 0.1)
    rec = net.run(steps=4000, record=["qif", "qif.v"])
    r, v = float(rec["qif"][-1, 0]), float(rec["qif.v"][-1, 0])
    r_star = np.sqrt((eta + np.sqrt(eta**2 + Delta**2)) / 2) / np.pi
    v_star = -Delta / (2 * np.pi * r_star)
    assert abs(r - r_star) < 1e-8 and abs(v - v_star) < 1e-8, (r, r_star, v, v_star)
    # it got there from far away: the start was not the fixed point
    assert abs(float(rec["qif"][0, 0]) - r_star) > 0.1


def test_qif_mean_field_parameters_documented():
    node = QIFMeanField(2)
    assert (float(node.tau), float(node.Delta), float(node.eta)) == (1.0, 1.0, -5.0)
    assert node.state_vars == ("r", "v") and node.output_var == "r"
