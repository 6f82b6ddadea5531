"""rnngraph against reservoirpy itself (0.4.2 in ``.peers/reservoirpy``, ``make peers``).

The README's reservoirpy claims as tests: the same reservoir states, the same ridge
readout and predictions, and the same generative (closed-loop) forecast, with the same
weights on both sides. Skipped with a message where the peer's venv is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _peer_run import peer_python, run_side

import rnngraph as rg

PYTHON = peer_python("reservoirpy")
LR = 0.3

pytestmark = pytest.mark.skipif(
    not PYTHON.exists(),
    reason="reservoirpy's venv .peers/reservoirpy is absent (make peers PEERS=reservoirpy)",
)


def peer(task: str, tmp_path: Path, **arrays) -> dict[str, np.ndarray]:
    return run_side("reservoirpy", task, tmp_path, lr=LR, **arrays)


def esn(n: int, c: int, sr: float, seed: int) -> tuple[rg.Network, dict[str, np.ndarray]]:
    gen = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    w_in = rg.input_weights(n, c, connectivity=0.2, seed=gen, dtype=f64)
    w = rg.recurrent_weights(n, spectral_radius=sr, connectivity=0.1, seed=gen, dtype=f64)
    net = rg.Network(dt=1.0, dtype=f64)
    net.add_func_node("in", c)
    net.add_diffeq_node("res", "leaky_tanh", n=n, lr=LR, bias=0.0)
    net.add_edge("in", "res", weights=w_in)
    net.add_edge("res", "res", weights=w, feedback=True, sparse=True)
    return net, {"W": w.numpy(), "Win": w_in.numpy()}


def mackey_glass(n: int) -> np.ndarray:
    s = rg.datasets.mackey_glass(n)
    return 2.0 * (s - s.min()) / (s.max() - s.min()) - 1.0


def test_mackey_glass_series_is_reservoirpys_bit_for_bit(tmp_path):
    theirs = peer("mackey_glass", tmp_path, n=3000)["series"]
    np.testing.assert_array_equal(rg.datasets.mackey_glass(3000), theirs)


def test_reservoir_states_equal_reservoirpys(tmp_path):
    net, w = esn(200, 2, 1.25, seed=0)
    u = np.random.default_rng(0).uniform(-1, 1, (300, 2))
    theirs = peer("states", tmp_path, u=u, **w)["states"]
    ours = net.run(u, record=["res"])["res"].numpy()
    assert np.abs(theirs).max() > 0.1  # the reservoir is driven, not near zero
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def test_ridge_readout_and_predictions_equal_reservoirpys(tmp_path):
    """One-step-ahead Mackey-Glass, 300 units, alpha 1e-6 with an unpenalised bias."""
    s = mackey_glass(3001)
    x, y = s[:-1], s[1:]
    net, w = esn(300, 1, 1.25, seed=1)
    args = {"x": x[:2000], "y": y[:2000], "x_test": x[2000:], "alpha": 1e-6, "warmup": 100}
    theirs = peer("ridge", tmp_path, **args, **w)
    net.fit_ridge(x[:2000], y[:2000], alpha=1e-6, washout=100)
    edge = net.get_edge("res", "readout")
    pred = net.run(x[2000:]).output.numpy()
    assert rg.metrics.nrmse(y[2000:], pred) < 1e-2  # a fitted readout, not a trivial one
    np.testing.assert_allclose(pred, theirs["pred"], rtol=0, atol=2e-9)
    scale = np.abs(theirs["Wout"]).max()
    np.testing.assert_allclose(edge.weight.detach().numpy(), theirs["Wout"], atol=1e-6 * scale)
    np.testing.assert_allclose(edge.bias.detach().numpy(), theirs["bias"], atol=1e-6 * scale)


def valid_steps(pred: np.ndarray, truth: np.ndarray, std: float) -> int:
    bad = np.flatnonzero(np.abs(pred - truth)[:, 0] / std > 0.4)
    return int(bad[0]) if bad.size else len(pred)


@pytest.mark.parametrize("seed", [0, 3])
def test_generated_forecast_equals_reservoirpys(tmp_path, seed):
    """Mackey-Glass generated 600 steps after a 300-step warm-up; same valid prediction time
    and the same trajectory until the two (separately fitted) readouts' rounding grows."""
    s = mackey_glass(2601)
    x, y = s[:-1], s[1:]
    net, w = esn(300, 1, 1.25, seed=seed)
    args = {"x": x[:2000], "y": y[:2000], "warm": x[1700:2000], "steps": 600}
    theirs = peer("generate", tmp_path, alpha=1e-6, warmup=100, **args, **w)["pred"]
    net.fit_ridge(x[:2000], y[:2000], alpha=1e-6, washout=100)
    net.reset()
    ours = net.generate(600, warmup=x[1700:2000]).output.numpy()
    truth = s[2001:2601]
    vpt = valid_steps(ours, truth, s.std())
    assert vpt > 20  # a forecast that follows the series, not one that fails at once
    assert vpt == valid_steps(theirs, truth, s.std())
    np.testing.assert_allclose(ours[:100], theirs[:100], rtol=0, atol=1e-5)


def feedback_case(seed: int = 3, n: int = 300):
    s = mackey_glass(2401)
    x, y = s[:-1], s[1:]
    net, w = esn(n, 1, 1.25, seed=seed)
    w["Wfb"] = 0.1 * np.random.default_rng(seed).uniform(-1, 1, (n, 1))
    data = {"x": x[:2000], "y": y[:2000], "x_test": x[2000:2400]}
    return net, w, data, y[2000:2400]


def test_teacher_forced_ridge_with_feedback_equals_reservoirpys_esn_feedback(tmp_path):
    """reservoirpy's ``ESN(feedback=True)``: the readout fitted on teacher-forced states
    (the target fed back), then a test run that feeds back its own predictions."""
    net, w, data, truth = feedback_case()
    theirs = peer("feedback_ridge", tmp_path, alpha=1e-4, warmup=100, **data, **w)
    n = w["W"].shape[0]
    net.add_func_node("out", 1)
    net.add_edge("res", "out", weights=np.zeros((1, n)), bias=True)
    net.add_edge("out", "res", weights=w["Wfb"], feedback=True)
    net.fit_ridge(data["x"], data["y"], edge=("res", "out"), alpha=1e-4, washout=100)
    pred = net.run(data["x_test"]).output.numpy()
    assert rg.metrics.nrmse(truth, pred) < 1e-2
    np.testing.assert_allclose(pred, theirs["pred"], rtol=0, atol=1e-6)


@pytest.mark.parametrize("order", ["after", "before"])
def test_force_feedback_order_after_equals_reservoirpys_rls(tmp_path, order):
    """``res << RLS`` trained online: reservoirpy passes on the output of the updated
    weights, ``feedback_order="after"``; the default (FORCE's, before) differs from it."""
    net, w, data, truth = feedback_case(seed=2, n=200)
    theirs = peer("force", tmp_path, alpha=1.0, **data, **w)
    rec = net.fit_rls(
        data["x"], data["y"], alpha=1.0, feedback_weights=w["Wfb"], feedback_order=order
    )
    pred = net.run(data["x_test"]).output.numpy()
    assert np.abs(pred - truth).mean() < 0.05  # it learned
    diff = np.abs(rec.output.numpy() - theirs["train"]).max()
    if order == "after":
        assert diff < 1e-9
        np.testing.assert_allclose(pred, theirs["pred"], rtol=0, atol=1e-9)
        weight = net.get_edge("res", "readout").weight.detach().numpy()
        np.testing.assert_allclose(weight, theirs["Wout"], rtol=0, atol=1e-9)
    else:
        assert diff > 1e-2


@pytest.mark.parametrize("closed", [True, False], ids=["res<<LMS", "res>>LMS"])
def test_lms_readout_equals_reservoirpys(tmp_path, closed):
    """reservoirpy's ``LMS`` trained online, fed back (``res << LMS``, whose update steps
    pass on the updated weights' output, without a bias: reservoirpy's output there adds
    the bias of before the update) and open loop with a bias: the training outputs, the
    weights and the test predictions."""
    net, w, data, truth = feedback_case(seed=4, n=200)
    if not closed:
        del w["Wfb"]
    rate, bias = 0.01, not closed
    theirs = peer("lms", tmp_path, rate=rate, fit_bias=bias, **data, **w)
    fb = w.get("Wfb")
    rec = net.fit_lms(
        data["x"],
        data["y"],
        learning_rate=rate,
        bias=bias,
        feedback_weights=fb,
        feedback_order="after",
    )
    pred = net.run(data["x_test"]).output.numpy()
    assert np.abs(pred - truth).mean() < 0.1  # it learned
    edge = net.get_edge("res", "readout")
    np.testing.assert_allclose(edge.weight.detach().numpy(), theirs["Wout"], rtol=0, atol=1e-8)
    if bias:
        np.testing.assert_allclose(edge.bias.detach().numpy(), theirs["bias"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(pred, theirs["pred"], rtol=0, atol=1e-8)
    if closed:  # open loop, reservoirpy's training output adds the bias before the update
        np.testing.assert_allclose(rec.output.numpy(), theirs["train"], rtol=0, atol=1e-8)


def _svd_ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """``W`` ``(n_out, n)`` minimising ``|(x - mean) W^T - (y - mean)|^2 + alpha |W|^2``."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    u, sv, vt = np.linalg.svd(xc, full_matrices=False)
    return (vt.T @ np.diag(sv / (sv**2 + alpha)) @ u.T @ yc).T


def test_nvar_features_fit_and_forecast_equal_reservoirpys_ng_rc(tmp_path):
    """reservoirpy's NG-RC tutorial on its own Lorenz series: the NVAR features, the ridge
    readout fitted on the differences (rnngraph: the input passed on by a skip edge, so the
    readout's other input is the difference), and the closed-loop forecast."""
    shape = {"delay": 2, "order": 2, "strides": 1}
    theirs = peer(
        "nvar", tmp_path, n=1200, n_train=600, warmup=200, alpha=2.5e-6, steps=200, **shape
    )
    series = theirs["series"]
    net = rg.Network(dt=1.0, dtype=torch.float64)
    net.add_func_node("in", 3)
    net.add_diffeq_node("nvar", rg.nodes.NVAR(3, **shape))
    net.add_edge("in", "nvar", weights=np.eye(3))
    features = net.run(series, record=["nvar"])["nvar"].numpy()
    np.testing.assert_allclose(features, theirs["features"], rtol=1e-14, atol=0)
    net.reset()
    n = net.get_node("nvar").n
    net.add_func_node("readout", 3)
    net.add_edge("nvar", "readout", weights=np.zeros((3, n)), bias=True)
    net.add_edge("in", "readout", weights=np.eye(3))
    net.fit_ridge(series[:600], series[1:601], edge=("nvar", "readout"), alpha=2.5e-6, washout=200)
    # the readout inputs are ill-conditioned (the monomials reach 2e3): against the ridge
    # solution by SVD (centred, as both solve it) rnngraph's weights are at least as close
    exact = _svd_ridge(features[200:600], series[201:601] - series[200:600], 2.5e-6)
    ours = net.get_edge("nvar", "readout").weight.detach().numpy()
    err_ours, err_theirs = (np.abs(w - exact).max() for w in (ours, theirs["Wout"]))
    print(f"weights vs SVD: rnngraph {err_ours:.2e}, reservoirpy {err_theirs:.2e}")
    assert err_ours <= err_theirs
    pred = net.generate(200, first=series[600]).output.numpy()
    diff = np.abs(pred - theirs["pred"]).max(axis=1)
    print(f"forecast difference: step 1 {diff[0]:.1e}, steps 1-100 {diff[:100].max():.1e}")
    assert diff[0] < 1e-8 and diff[:100].max() < 1e-4  # the weights' rounding, grown by chaos
    assert np.abs(pred[:100] - series[601:701]).max() < 1.0  # it forecasts the attractor


def test_es2n_states_equal_reservoirpys(tmp_path):
    n = 200
    _, w = esn(n, 2, 1.0, seed=5)
    rng = np.random.default_rng(5)
    w["O"] = np.linalg.qr(rng.standard_normal((n, n)))[0]
    u = rng.uniform(-1, 1, (300, 2))
    theirs = peer("es2n", tmp_path, u=u, beta=0.2, **w)["states"]
    net = rg.Network(dt=1.0, dtype=torch.float64)
    net.add_func_node("in", 2)
    net.add_diffeq_node("res", rg.nodes.ES2N(n, w["O"], proximity=0.2))
    net.add_edge("in", "res", weights=w["Win"])
    net.add_edge("res", "res", weights=w["W"], feedback=True, sparse=True)
    ours = net.run(u).output.numpy()
    assert np.abs(theirs).max() > 0.1
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def test_sequence_classification_equals_reservoirpys_tutorial(tmp_path):
    """reservoirpy's classification tutorial on lists of sequences of 6 to 20 steps:
    transduction with the input read out beside the reservoir (two edges fitted jointly),
    and last-state classification (one sample per sequence)."""
    rng = np.random.default_rng(5)
    lengths, lengths_test = rng.integers(6, 21, 40), rng.integers(6, 21, 30)
    classes, classes_test = rng.integers(0, 4, 40), rng.integers(0, 4, 30)
    centres = rng.standard_normal((4, 5))

    def seqs(ls, cs):
        return [centres[c] + 0.8 * rng.standard_normal((T, 5)) for T, c in zip(ls, cs, strict=True)]

    xs, xt = seqs(lengths, classes), seqs(lengths_test, classes_test)
    labels = np.eye(4)[classes]
    ys = [np.repeat(row[None], T, axis=0) for row, T in zip(labels, lengths, strict=True)]
    net, w = esn(100, 5, 0.5, seed=4)
    args = {"alpha": 1e-1, "alpha_last": 1e-6, "warmup": 2, "labels": labels}
    cat = {"x": np.concatenate(xs), "lengths": lengths, "y": np.concatenate(ys)}
    test = {"x_test": np.concatenate(xt), "lengths_test": lengths_test}
    theirs = peer("classify", tmp_path, **args, **cat, **test, **w)
    net.add_func_node("readout", 4)
    net.add_edge("res", "readout", weights=torch.zeros(4, 100), bias=True)
    net.add_edge("in", "readout", weights=torch.zeros(4, 5), bias=False)
    net.fit_ridge(xs, ys, edge=[("res", "readout"), ("in", "readout")], alpha=1e-1, washout=2)
    transduction = net.run(xt).cat().numpy()
    steps = np.concatenate([np.full(T, c) for T, c in zip(lengths_test, classes_test, strict=True)])
    assert (transduction.argmax(1) == steps).mean() > 0.5  # a classifier, not chance (0.25)
    np.testing.assert_allclose(transduction, theirs["transduction"], rtol=0, atol=1e-8)
    last, _ = esn(100, 5, 0.5, seed=4)
    last.fit_ridge(xs, labels, reduce="last", alpha=1e-6)
    scores = last.run(xt).last().numpy()
    assert (scores.argmax(1) == classes_test).mean() > 0.5
    np.testing.assert_allclose(scores, theirs["last"], rtol=0, atol=1e-8)


@pytest.mark.parametrize(
    "activation, mu, sigma", [("tanh", 0.0, 0.2), ("sigmoid", 0.2, 1.0)], ids=["tanh", "sigmoid"]
)
def test_intrinsic_plasticity_equals_reservoirpys_ipreservoir(tmp_path, activation, mu, sigma):
    """reservoirpy's IPReservoir on NARMA inputs, 10 epochs: gains, shifts and the states
    of a run afterwards, on the same W, W_in and bias."""
    n, lr, eta, warmup = 100, LR, 5e-4, 20  # the side reads lr (LR) itself
    gen = torch.Generator().manual_seed(6)
    f64 = torch.float64
    w_in = rg.input_weights(n, 1, connectivity=0.2, seed=gen, dtype=f64)
    w = rg.recurrent_weights(n, spectral_radius=0.95, connectivity=0.1, seed=gen, dtype=f64)
    bias = np.random.default_rng(6).uniform(-1, 1, n) * 0.2
    u = rg.datasets.narma(700, seed=6)[0]
    u = np.asarray(u, dtype=np.float64).reshape(-1, 1)
    args = dict(mu=mu, sigma=sigma, learning_rate=eta, epochs=10, warmup=warmup)
    theirs = peer(
        "ip", tmp_path, W=w.numpy(), Win=w_in.numpy(), bias=bias, u=u[:500], u_test=u[500:],
        activation=activation, **args,
    )  # fmt: skip
    node = rg.nodes.IPReservoir(
        n, lr=lr, bias=bias, activation=activation, mu=mu, sigma=sigma, learning_rate=eta
    )
    net = rg.Network(dt=1.0, dtype=f64)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", node)
    net.add_edge("in", "res", weights=w_in)
    net.add_edge("res", "res", weights=w, feedback=True)
    net.fit_intrinsic(u[warmup:500], epochs=10)  # reservoirpy's warmup skips those steps
    assert np.abs(theirs["a"] - 1).max() > 0.05  # the rule moved the gains
    np.testing.assert_allclose(node.a.numpy(), theirs["a"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(node.b.numpy(), theirs["b"], rtol=0, atol=1e-8)
    states = net.run(u[500:]).output.numpy()
    np.testing.assert_allclose(states, theirs["states"], rtol=0, atol=1e-8)


def test_memory_capacity_equals_reservoirpys(tmp_path):
    """reservoirpy's memory capacity on the same reservoir and input series: every MC_k."""
    net, w = esn(100, 1, 0.9, seed=7)
    u = np.random.default_rng(7).uniform(-0.8, 0.8, (1000, 1))
    theirs = peer("memory", tmp_path, alpha=1e-4, k_max=50, u=u, test_size=0.2, **w)["mc"]
    ours = rg.metrics.memory_capacity(net, 50, alpha=1e-4, series=u, as_list=True)
    assert 5 < ours.sum() < 50  # a reservoir with memory, below its bound
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8)
    assert net.state is None  # the network was copied, not fitted


def test_two_input_nodes_fed_from_a_dict_equal_reservoirpys(tmp_path):
    """``[u, v] >> reservoir >> Ridge`` fitted and run on dicts of inputs, on both sides:
    Mackey-Glass into ``u``, two noise channels into ``v``, one-step-ahead targets."""
    s = mackey_glass(2201)
    noise = np.random.default_rng(8).uniform(-0.5, 0.5, (2200, 2))
    xu, xv, y = s[:-1], noise, s[1:]
    net, w = esn(200, 3, 1.1, seed=8)
    w_in = net.pop_edge("in", "res").weight.detach()
    net.pop_node("in")
    net.add_func_node("u", 1)
    net.add_func_node("v", 2)
    net.add_edge("u", "res", weights=w_in[:, :1])
    net.add_edge("v", "res", weights=w_in[:, 1:])
    args = {"alpha": 1e-6, "warmup": 100, "y": y[:1800]}
    data = {"xu": xu[:1800], "xv": xv[:1800], "xu_test": xu[1800:], "xv_test": xv[1800:]}
    theirs = peer("two_inputs", tmp_path, **args, **data, **w)["pred"]
    net.fit_ridge({"u": xu[:1800], "v": xv[:1800]}, y[:1800], alpha=1e-6, washout=100)
    assert net.compile().input_nodes == ("u", "v")  # named by the dict's keys
    pred = net.run({"u": xu[1800:], "v": xv[1800:]}).output.numpy()
    assert rg.metrics.nrmse(y[1800:], pred) < 5e-2  # a fitted readout, not a trivial one
    np.testing.assert_allclose(pred, theirs, rtol=0, atol=2e-9)


def test_observables_equal_reservoirpys(tmp_path):
    """The README's rows for reservoirpy.observables: spectral radius, effective spectral
    radius, mse, rmse, rsquare and nrmse with each of reservoirpy's norms (its default
    "minmax" is rnngraph's "range")."""
    g = np.random.default_rng(9)
    W = g.normal(0, 1 / np.sqrt(80), (80, 80))
    y = g.normal(0, 1, (300, 2)).cumsum(0)
    p = y + g.normal(0, 0.3, y.shape)
    theirs = peer("observables", tmp_path, W=W, y=y, p=p)  # lr=LR
    m = rg.metrics
    ours = {
        "sr": rg.edges.spectral_radius(W), "esr": rg.edges.effective_spectral_radius(W, LR),
        "mse": m.mse(y, p), "rmse": m.rmse(y, p), "rsquare": m.rsquare(y, p),
        "nrmse_minmax": m.nrmse(y, p, norm="range"),
        **{f"nrmse_{n}": m.nrmse(y, p, norm=n) for n in ("var", "mean", "q1q3")},
    }  # fmt: skip
    assert 0.5 < ours["sr"] < 1.5 and ours["rsquare"] > 0.5
    for k, v in ours.items():
        np.testing.assert_allclose(float(v), float(theirs[k]), rtol=1e-10, err_msg=k)


def test_two_readouts_fitted_from_a_dict_equal_reservoirpys(tmp_path):
    """``reservoir >> [readout1, readout2]`` fitted on a dict of targets, on both sides."""
    s = mackey_glass(1601)
    x, y1, y2 = s[:-1], s[1:], s[:-1] ** 2
    net, w = esn(150, 1, 1.1, seed=10)
    net.add_func_node("r1", 1)
    net.add_func_node("r2", 1)
    net.add_edge("res", "r1", weights=np.zeros((1, 150)), bias=True)
    net.add_edge("res", "r2", weights=np.zeros((1, 150)), bias=True)
    net.compile(output_node="r1")  # two readouts: the network's output is one of them
    data = {"x": x[:1200], "y1": y1[:1200], "y2": y2[:1200], "x_test": x[1200:]}
    theirs = peer("two_readouts", tmp_path, alpha=1e-6, warmup=100, **data, **w)
    net.fit_ridge(x[:1200], {"r1": y1[:1200], "r2": y2[:1200]}, alpha=1e-6, washout=100)
    rec = net.run(x[1200:], record=["r1", "r2"])
    assert rg.metrics.nrmse(y1[1200:], rec["r1"].numpy()) < 5e-2
    np.testing.assert_allclose(rec["r1"].numpy(), theirs["p1"], rtol=0, atol=2e-9)
    np.testing.assert_allclose(rec["r2"].numpy(), theirs["p2"], rtol=0, atol=2e-9)


def test_a_skip_edge_fitted_on_a_list_of_sequences_equals_reservoirpys(tmp_path):
    """``[source >> reservoir, source] >> readout`` fitted on a list of sequences of their
    own lengths, each from the initial state; the test sequences likewise."""
    g = np.random.default_rng(11)
    lengths, test_lengths = np.array([140, 90, 170, 120]), np.array([80, 110])
    x = g.uniform(-1, 1, (lengths.sum(), 2))
    y = np.stack([np.roll(x[:, 0], 3), x[:, 1] * x[:, 0]], axis=1)
    x_test = g.uniform(-1, 1, (test_lengths.sum(), 2))
    net, w = esn(120, 2, 0.9, seed=11)
    net.add_func_node("readout", 2)
    net.add_edge("res", "readout", weights=np.zeros((2, 120)), bias=True)
    net.add_edge("in", "readout", weights=np.zeros((2, 2)))
    args = dict(alpha=1e-6, warmup=10, lengths=lengths, test_lengths=test_lengths)
    theirs = peer("skip_lists", tmp_path, x=x, y=y, x_test=x_test, **args, **w)
    split = np.cumsum(lengths)[:-1]
    xs, ys = np.split(x, split), np.split(y, split)
    net.fit_ridge(xs, ys, edge=[("res", "readout"), ("in", "readout")], alpha=1e-6, washout=10)
    pred = net.run(np.split(x_test, np.cumsum(test_lengths)[:-1])).cat().numpy()
    np.testing.assert_allclose(pred, theirs["pred"], rtol=0, atol=2e-9)
