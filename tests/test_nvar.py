"""``NVAR``: the next-generation reservoir-computing feature map, against the features
written out in numpy (delays, strides, monomial orders, a batch), its widths, and its
refusals."""

import itertools

import numpy as np
import pytest
import torch

import rnngraph as rg
from rnngraph.nodes import NVAR

F64 = torch.float64


def _nvar_reference(u, delay, order, strides):
    """The features step by step: a store of the last ``delay * strides`` inputs (newest
    first, zeros before the first), its rows ``0, s, 2s, ...`` flattened, then the product
    of every index combination with replacement of degree ``order``."""
    store = np.zeros((delay * strides, u.shape[-1]))
    idx = np.array(list(itertools.combinations_with_replacement(range(delay * u.shape[-1]), order)))
    out = []
    for x in u:
        store = np.roll(store, 1, axis=0)
        store[0] = x
        lin = store[::strides].ravel()
        out.append(np.concatenate([lin, np.prod(lin[idx], axis=1)]))
    return np.array(out)


def _net(d, **kw):
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", d)
    net.add_diffeq_node("nvar", NVAR(d, **kw))
    net.add_edge("in", "nvar", weights=np.eye(d))
    return net


@pytest.mark.parametrize(
    ("d", "delay", "order", "strides"), [(1, 1, 1, 1), (3, 2, 2, 1), (2, 3, 3, 2), (2, 2, 2, 5)]
)
def test_nvar_features_equal_the_numpy_features(d, delay, order, strides):
    u = np.random.default_rng(d + delay + order).standard_normal((60, d))
    net = _net(d, delay=delay, order=order, strides=strides)
    out = net.run(u).output.numpy()
    ref = _nvar_reference(u, delay, order, strides)
    assert out.shape == ref.shape == (60, net.get_node("nvar").n)
    np.testing.assert_allclose(out, ref, rtol=1e-13, atol=1e-13)


def test_nvar_batch_and_continued_runs_equal_one_run():
    """A batch is independent sequences; a run continues the store of the one before."""
    u = np.random.default_rng(1).standard_normal((3, 40, 2))
    net = _net(2, delay=3, order=2, strides=2)
    first = net.run(u[:, :25]).output.numpy()
    second = net.run(u[:, 25:]).output.numpy()
    for b in range(3):
        ref = _nvar_reference(u[b], 3, 2, 2)
        np.testing.assert_allclose(np.concatenate([first[b], second[b]]), ref, atol=1e-13)
    assert net.compile().state["nvar.store"].shape == (3, 3 * 2 * 2)


def test_nvar_widths_and_refusals():
    node = NVAR(3, delay=2, order=2)
    assert node.n == 6 + 21  # k d linear, C(k d + p - 1, p) monomials
    assert (node.input_size("u"), node.var_size("store"), node.var_size("x")) == (3, 6, 27)
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 2)
    net.add_diffeq_node("nvar", node)
    with pytest.raises(ValueError, match=r"weights must have shape .* \(3, 2\).*takes 3 input"):
        net.add_edge("in", "nvar", weights=np.eye(27, 2))
    for bad in ({"delay": 0}, {"order": 0}, {"strides": 0}, {"delay": 1.5}):
        with pytest.raises(ValueError, match="NVAR"):
            NVAR(3, **bad)
    with pytest.raises(ValueError, match="NVAR: this is a discrete feature map"):
        NVAR(3, integrator="rk4")


def test_ng_rc_fit_and_forecast_a_linear_map_exactly():
    """x(t+1) = A x(t) + B x(t-1) without noise: the linear features of delay 2 hold the
    exact answer, so a ridge readout (tiny alpha) on them, with the input passed on by a
    skip edge, forecasts the map in closed loop to rounding."""
    c, s = np.cos(0.2), np.sin(0.2)
    A, B = 0.995 * np.array([[c, -s], [s, c]]), np.diag([0.004, -0.004])
    x = np.zeros((400, 2))
    x[0], x[1] = [1.0, 0.0], [0.5, 0.5]
    for t in range(1, 399):
        x[t + 1] = A @ x[t] + B @ x[t - 1]
    net = _net(2, delay=2, order=2)
    n = net.get_node("nvar").n
    net.add_func_node("readout", 2)
    net.add_edge("nvar", "readout", weights=np.zeros((2, n)), bias=True)
    net.add_edge("in", "readout", weights=np.eye(2))
    net.fit_ridge(x[:300], x[1:301], edge=("nvar", "readout"), alpha=1e-12, washout=5)
    pred = net.generate(50, first=x[300]).output.numpy()
    scale = np.abs(x[301:351]).max()
    assert scale > 1e-6  # the trajectory has not decayed to nothing
    np.testing.assert_allclose(pred, x[301:351], rtol=0, atol=1e-6 * scale)


def test_an_nvar_readout_trains_online_with_feedback_into_its_input():
    """``feedback_weights`` of an NVAR source are ``(d, n_out)``: into the input it takes."""
    u = np.random.default_rng(2).standard_normal((100, 2))
    net = _net(2, delay=2, order=2)
    rec = net.fit_lms(u, u, learning_rate=1e-3, feedback_weights=np.zeros((2, 2)))
    assert rec.output.shape == (100, 2)
    assert net.get_edge("readout", "nvar").weight.shape == (2, 2)


def test_nvar_generates_with_a_delayed_self_edge_and_records_no_steps_in_its_width():
    rng = np.random.default_rng(3)
    u = rng.standard_normal((30, 2))
    net = _net(2, delay=2, order=2)
    n = net.get_node("nvar").n
    net.add_edge("nvar", "nvar", weights=0.01 * rng.standard_normal((2, n)), feedback=True)
    net.add_func_node("readout", 2)
    net.add_edge("nvar", "readout", weights=0.1 * rng.standard_normal((2, n)))
    folded = net.generate(5, warmup=u).output
    net.reset()
    plain = net.generate(5, warmup=u, record=["in", "readout"])["readout"]  # not folded
    torch.testing.assert_close(folded, plain, rtol=0, atol=1e-14)
    rec = net.run(u, record=["nvar.store"], cutoff=30)
    assert tuple(rec["nvar.store"].shape) == (0, 4)
