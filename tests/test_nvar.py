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


def _nvar_readout(rng, d=2, **kw):
    net = _net(d, **kw)
    n = net.get_node("nvar").n
    net.add_func_node("out", 3)
    net.add_edge("nvar", "out", weights=rng.standard_normal((3, n)), bias=rng.standard_normal(3))
    return net


def test_nvar_runs_whole_chunks_at_once_with_the_step_by_step_numbers(monkeypatch):
    """Fed by static nodes alone, an NVAR and the function nodes after it run whole chunks
    at once (its declared window map); features, store and readout equal the time loop's
    (native code off) and numpy's, over pieces of 7 steps and runs that continue."""
    from rnngraph.network import _reservoir

    rng = np.random.default_rng(5)
    u = rng.standard_normal((2, 50, 2))
    net = _nvar_readout(rng, delay=3, order=2, strides=2)
    model = net.compile()
    assert model.explain(batch_size=2).loop == "window map over whole chunks"
    assert model.explain(batch_size=2).nodes["out"][0] == "window map"
    runs = []
    for native, piece in ((True, None), (True, 7), (False, None)):
        if piece is not None:
            monkeypatch.setattr(
                _reservoir.WindowRun, "_PIECE", piece * 2 * 27
            )  # 7 steps of 27 features
        rg.native.set_enabled(native)
        try:
            net.reset()
            rec = [
                net.run(u[:, a:b], record=["nvar.x", "nvar.store"]) for a, b in ((0, 31), (31, 50))
            ]
        finally:
            rg.native.set_enabled(True)
        runs.append(rec)
    assert model.explain(batch_size=2).loop == "window map over whole chunks"
    feats = np.stack([_nvar_reference(u[b], 3, 2, 2) for b in range(2)])
    for rec in runs:
        x = np.concatenate([r["nvar.x"].numpy() for r in rec], axis=1)
        np.testing.assert_allclose(x, feats, rtol=1e-13, atol=1e-13)
        for a, b in zip(rec, runs[-1], strict=True):
            torch.testing.assert_close(a["nvar.store"], b["nvar.store"], rtol=0, atol=0)
            torch.testing.assert_close(a.output, b.output, rtol=0, atol=1e-13)
            for k, v in a.state.items():
                torch.testing.assert_close(v, b.state[k], rtol=0, atol=0)
    assert runs[0][1]["nvar.store"][:, -1, :2].numpy().tolist() == u[:, -1].tolist()


def test_a_user_window_map_and_a_redefined_map():
    """A model that declares a window map (a moving average over 4 steps) runs whole chunks
    with numpy's numbers; a subclass that redefines map() takes the time loop and says why."""
    from rnngraph.nodes import DENode, WindowMap

    class MovingAverage(DENode):
        state_vars = ("store", "x")
        input_names = ("u",)
        output_var = "x"

        def __init__(self, d):
            super().__init__(d)
            self.integrator = "map"

        def var_size(self, var):
            return 4 * self.n if var == "store" else self.n

        def window_map(self):
            return WindowMap("u", 4, lambda w: w.reshape(w.shape[0], 4, -1).mean(1))

    class Doubled(MovingAverage):
        def map(self, s, i, dt):
            store, x = self.window_map().step(s.store, i.u)
            return self.State(store, 2 * x)

    u = np.random.default_rng(6).standard_normal((30, 2))
    padded = np.concatenate([np.zeros((3, 2)), u])
    ref = np.stack([padded[t : t + 4].mean(0) for t in range(30)])
    for cls, loop, scale in (
        (MovingAverage, "window map over whole chunks", 1),
        (Doubled, "time loop", 2),
    ):
        net = rg.Network(dt=1.0, dtype=F64)
        net.add_func_node("in", 2)
        net.add_diffeq_node("avg", cls(2))
        net.add_edge("in", "avg", weights=np.eye(2))
        explained = net.compile().explain()
        assert explained.loop == loop, explained
        np.testing.assert_allclose(net.run(u).output.numpy(), scale * ref, atol=1e-14)
    assert "Doubled overrides map() and declares no window map" in str(explained.loop_why)
