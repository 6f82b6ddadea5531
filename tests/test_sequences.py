"""Lists of sequences of their own lengths: ``run`` over a list (one padded batched pass),
``Recordings`` (last, mean and concatenated values), and ``fit_ridge`` over lists, with NaN
targets left out, several edges into one readout fitted jointly and per-sequence fits
(``reduce="last"``/``"mean"``).

The references are the test suite's own interpreter (``_reference``) for the states, run
on each sequence alone, and ridge solutions written out in NumPy.
"""

from __future__ import annotations

import _reference as ref
import numpy as np
import pytest
import torch
from conftest import assert_state_equal, state_copy

import rnngraph as rg
from rnngraph.network import _sequences
from rnngraph.training import Ridge

F64 = torch.float64
N, C, K = 24, 3, 2
LENGTHS = (5, 11, 3, 11, 8)


def esn(readout: bool = False, feedback: bool = False):
    """input (C) -> leaky tanh (N) [-> readout (K), with the input too]; the reference
    description of the part without a readout."""
    g = torch.Generator().manual_seed(0)
    w_in = rg.input_weights(N, C, seed=g, dtype=F64)
    w = rg.recurrent_weights(N, spectral_radius=0.9, connectivity=0.3, seed=g, dtype=F64)
    net = rg.Network(dt=1.0, dtype=F64)
    nodes = {
        "in": net.add_func_node("in", C),
        "res": net.add_diffeq_node("res", "leaky_tanh", n=N, lr=0.4, bias=0.1),
    }
    net.add_edge("in", "res", weights=w_in)
    net.add_edge("res", "res", weights=w, feedback=True)
    if readout:
        net.add_func_node("readout", K)
        net.add_edge("res", "readout", weights=torch.zeros(K, N, dtype=F64), bias=True)
        net.add_edge("in", "readout", weights=torch.zeros(K, C, dtype=F64), bias=False)
    if feedback:
        fb = torch.randn(N, K, generator=g, dtype=F64) * 0.3
        net.add_edge("readout", "res", weights=fb, feedback=True)
    edges = [
        ref.EdgeDesc("in", "res", w_in.numpy(), None, None, 0),
        ref.EdgeDesc("res", "res", w.numpy(), None, None, 1),
    ]
    descs = {k: ref.node_desc(k, v) for k, v in nodes.items()}
    return net, ref.GraphDesc(1.0, descs, edges, "in", "res")


def data(seed: int = 0, lengths=LENGTHS):
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal((T, C)) for T in lengths]
    ys = [rng.standard_normal((T, K)) for T in lengths]
    return xs, ys


def states(g, xs) -> list[np.ndarray]:
    """The reservoir's states on each sequence alone, from the initial state."""
    return [ref.run(g, x[None]).outputs["res"][0] for x in xs]


def ridge(F: np.ndarray, Y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Ridge with an unpenalised bias, solved in NumPy: ``(W (K, n), b (K,))``."""
    A = np.c_[F, np.ones(len(F))]
    D = np.eye(A.shape[1])
    D[-1, -1] = 0.0
    sol = np.linalg.solve(A.T @ A + alpha * D, A.T @ Y)
    return sol[:-1].T, sol[-1]


# ------------------------------------------------------------------------------------
# run over a list
# ------------------------------------------------------------------------------------


def test_run_over_a_list_gives_each_sequence_its_own_run_from_the_initial_state():
    net, g = esn()
    xs, _ = data()
    net.run(np.ones((4, C)))  # a held state that the list run must neither read nor change
    held = state_copy(net.state)
    recs = net.run(xs, record=["res"])
    assert isinstance(recs, rg.Recordings) and len(recs) == len(xs)
    for x, rec, want in zip(xs, recs, states(g, xs), strict=True):
        assert rec["res"].shape == (x.shape[0], N) and not rec.batched
        np.testing.assert_allclose(rec["res"].numpy(), want, atol=1e-12, rtol=0)
        np.testing.assert_allclose(rec.output.numpy(), want, atol=1e-12, rtol=0)
    assert_state_equal(net.state, held)


def test_a_list_run_in_several_groups_and_with_batched_entries_is_the_same(monkeypatch):
    net, g = esn()
    xs, _ = data(1, lengths=(7, 2, 9, 4, 6, 9, 1))
    batch = np.stack([xs[0], xs[0] * 0.5])  # a (2, 7, C) entry: two rows of its own
    whole = net.run([batch, *xs[1:]], record=["res"])
    monkeypatch.setattr(_sequences, "GROUP_STEPS", 10)  # a group per one or two sequences
    split = net.run([batch, *xs[1:]], record=["res"])
    assert whole[0]["res"].shape == (2, 7, N) and whole[0].batched
    want = states(g, [xs[0], xs[0] * 0.5, *xs[1:]])
    np.testing.assert_allclose(whole[0]["res"][1].numpy(), want[1], atol=1e-12, rtol=0)
    for a, b, w in zip(whole[1:], split[1:], want[2:], strict=True):
        np.testing.assert_allclose(a["res"].numpy(), w, atol=1e-12, rtol=0)
        assert torch.equal(a["res"], b["res"])
    assert torch.equal(whole[0]["res"], split[0]["res"])


def test_a_list_run_records_each_sequence_on_its_own_recorded_steps():
    net, g = esn()
    xs, _ = data(2)
    recs = net.run(xs, record=["res"], sampling_steps=3, cutoff=1)
    for x, rec, want in zip(xs, recs, states(g, xs), strict=True):
        steps = np.arange(1, x.shape[0], 3)
        np.testing.assert_array_equal(rec.steps.numpy(), steps)
        np.testing.assert_allclose(rec["res"].numpy(), want[steps], atol=1e-12, rtol=0)
        assert rec.output.shape == (x.shape[0], N)  # the output: every step


def test_a_list_run_starts_every_sequence_from_a_given_state():
    net, _ = esn()
    xs, _ = data(3)
    start = net.run(np.full((6, C), 0.3)).state
    recs = net.run(xs, state=start)
    for x, rec in zip(xs, recs, strict=True):
        alone = net.run(x, state=start)
        torch.testing.assert_close(rec.output, alone.output, atol=1e-13, rtol=0)


def test_recordings_gather_last_mean_and_all_steps():
    net, g = esn()
    xs, _ = data(4)
    recs = net.run(xs, record=["res"])
    want = states(g, xs)
    np.testing.assert_allclose(recs.last("res").numpy(), [s[-1] for s in want], atol=1e-12)
    np.testing.assert_allclose(
        recs.mean(start=2).numpy(), [s[2:].mean(0) for s in want], atol=1e-12
    )
    np.testing.assert_allclose(recs.cat("res").numpy(), np.concatenate(want), atol=1e-12)
    with pytest.raises(ValueError, match="start=3 leaves no recorded step of sequence 2"):
        recs.mean(start=3)


def test_a_list_run_refuses_what_it_cannot_honour():
    net, _ = esn()
    xs, _ = data(5)
    held = state_copy(net.run(np.ones((3, C))).state)
    with pytest.raises(ValueError, match="no sequences"):
        net.run([])
    with pytest.raises(ValueError, match="steps= is for a run without input"):
        net.run(xs, steps=4)
    with pytest.raises(ValueError, match=r"sequence 1\): inputs have 2 channels"):
        net.run([xs[0], xs[1][:, :2]])
    with pytest.raises(ValueError, match=r"sequence 0\): inputs contain NaN"):
        net.run([np.full((3, C), np.nan)])
    batch2 = net.run(np.ones((2, 3, C))).state
    with pytest.raises(ValueError, match="must then have batch 1"):
        net.run(xs, state=batch2)
    assert_state_equal(net.state, state_copy(batch2))
    net.reset(held)
    rec = net.run(xs)[0]
    with pytest.raises(AttributeError, match="holds no final states"):
        rec.state  # noqa: B018


# ------------------------------------------------------------------------------------
# ridge over lists: NaN targets, joint edges, per-sequence fits
# ------------------------------------------------------------------------------------


def test_ridge_leaves_steps_with_a_nan_target_out():
    rng = np.random.default_rng(6)
    X, Y = torch.tensor(rng.standard_normal((80, 5))), torch.tensor(rng.standard_normal((80, 2)))
    Yn = Y.clone()
    Yn[[3, 40, 41], 1] = float("nan")
    keep = torch.ones(80, dtype=torch.bool)
    keep[[3, 40, 41]] = False
    masked = Ridge(alpha=1e-2).fit(X, Yn)
    dropped = Ridge(alpha=1e-2).fit(X[keep], Y[keep])
    assert masked.n_samples == 77
    torch.testing.assert_close(masked.weight, dropped.weight, atol=1e-13, rtol=0)
    Yi = Y.clone()
    Yi[5, 0] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        Ridge().fit(X, Yi)


def test_fit_ridge_over_a_list_fits_two_edges_jointly_with_nan_targets_masked():
    net, g = esn(readout=True)
    xs, ys = data(7)
    ys[1][4, 0] = np.nan
    held = state_copy(net.run(np.ones((2, C))).state)
    edges = [("res", "readout"), ("in", "readout")]
    fitted = net.fit_ridge(xs, ys, edge=edges, alpha=0.1, washout=2)
    F = np.concatenate([np.c_[s[2:], x[2:]] for s, x in zip(states(g, xs), xs, strict=True)])
    Y = np.concatenate([y[2:] for y in ys])
    keep = ~np.isnan(Y).any(1)
    W, b = ridge(F[keep], Y[keep], 0.1)
    assert fitted.n_samples == keep.sum()
    got = np.c_[net["res", "readout"].weight.detach(), net["in", "readout"].weight.detach()]
    np.testing.assert_allclose(got, W, atol=1e-11, rtol=0)
    np.testing.assert_allclose(net["res", "readout"].bias.detach(), b, atol=1e-11, rtol=0)
    assert_state_equal(net.state, held)  # a list fit leaves the held state alone
    pred = net.run(xs).cat().numpy()
    np.testing.assert_allclose(pred, np.concatenate([F0 @ W.T + b for F0 in _full(g, xs)]))


def _full(g, xs):
    return [np.c_[s, x] for s, x in zip(states(g, xs), xs, strict=True)]


def test_fit_ridge_with_one_edge_and_an_unfitted_one_takes_the_other_off_the_targets():
    net, g = esn(readout=True)
    xs, ys = data(8)
    skip = torch.randn(K, C, generator=torch.Generator().manual_seed(3), dtype=F64)
    net["in", "readout"].weight.data.copy_(skip)
    net.fit_ridge(xs, ys, edge=("res", "readout"), alpha=1e-2)
    S = np.concatenate(states(g, xs))
    Y = np.concatenate(ys) - np.concatenate(xs) @ skip.numpy().T
    W, b = ridge(S, Y, 1e-2)
    np.testing.assert_allclose(net["res", "readout"].weight.detach(), W, atol=1e-11, rtol=0)
    torch.testing.assert_close(net["in", "readout"].weight.data, skip, atol=0, rtol=0)


@pytest.mark.parametrize("how", ["last", "mean"])
def test_fit_ridge_per_sequence_matches_the_reduced_states(how):
    net, g = esn()
    xs, _ = data(9)
    labels = np.random.default_rng(9).standard_normal((len(xs), K))
    washout = 2
    net.fit_ridge(xs, labels, reduce=how, alpha=1e-3, washout=washout, chunk=4)
    S = states(g, xs)
    F = np.stack([s[-1] if how == "last" else s[washout:].mean(0) for s in S])
    W, b = ridge(F, labels, 1e-3)
    np.testing.assert_allclose(net["res", "readout"].weight.detach(), W, atol=1e-11, rtol=0)
    recs = net.run(xs)
    scores = recs.last() if how == "last" else recs.mean(start=washout)
    np.testing.assert_allclose(scores.numpy(), F @ W.T + b, atol=1e-11, rtol=0)


def test_fit_ridge_per_sequence_takes_a_list_of_rows_and_a_batch_array():
    net, _ = esn()
    xs, _ = data(10, lengths=(6, 6, 6))
    labels = np.random.default_rng(10).standard_normal((3, K))
    net.fit_ridge(xs, [row[None] for row in labels], reduce="last", alpha=1e-3)
    from_list = net["res", "readout"].weight.detach().clone()
    net.fit_ridge(np.stack(xs), labels, edge=("res", "readout"), reduce="last", alpha=1e-3)
    torch.testing.assert_close(net["res", "readout"].weight.detach(), from_list)


def test_a_teacher_forced_list_fit_is_the_merge_of_its_sequences():
    xs, ys = data(11)
    net, _ = esn(readout=True, feedback=True)
    net.pop_edge("in", "readout")
    net.fit_ridge(xs, ys, edge=("res", "readout"), alpha=1e-2)
    together = net["res", "readout"].weight.detach().clone()
    parts = []
    for x, y in zip(xs, ys, strict=True):
        alone, _ = esn(readout=True, feedback=True)
        alone.pop_edge("in", "readout")
        parts.append(alone.fit_ridge(x, y, edge=("res", "readout"), alpha=1e-2))
    merged = parts[0]
    for p in parts[1:]:
        merged.merge(p)
    merged.solve()
    torch.testing.assert_close(together, merged.weight, atol=1e-11, rtol=0)


def test_fit_ridge_over_lists_refuses_and_leaves_the_weights():
    net, _ = esn(readout=True, feedback=False)
    xs, ys = data(12)
    before = {e: net[e].weight.detach().clone() for e in [("res", "readout"), ("in", "readout")]}
    labels = np.zeros((len(xs), K))
    cases = [
        (dict(edge=[]), ValueError, "empty list"),
        (dict(edge=[("res", "readout"), ("res", "readout")]), ValueError, "listed twice"),
        (dict(edge=[("res", "readout"), ("in", "res")]), ValueError, "into one readout"),
        (dict(reduce="max", edge=("res", "readout")), ValueError, "reduce must be"),
    ]
    for kwargs, err, match in cases:
        with pytest.raises(err, match=match):
            net.fit_ridge(xs, ys, **kwargs)
    with pytest.raises(ValueError, match=r"one row per sequence, \(5, n_out\)"):
        net.fit_ridge(xs, labels[:4], edge=("res", "readout"), reduce="last")
    with pytest.raises(ValueError, match="drops every step of sequence 2"):
        net.fit_ridge(xs, labels, edge=("res", "readout"), reduce="mean", washout=3)
    nan = [np.full_like(y, np.nan) for y in ys]
    with pytest.raises(ValueError, match="no step to fit"):
        net.fit_ridge(xs, nan, edge=("res", "readout"))
    for e, w in before.items():
        assert torch.equal(net[e].weight.detach(), w)
    fed, _ = esn(readout=True, feedback=True)
    ys[0][1, 0] = np.nan
    with pytest.raises(ValueError, match="cannot hold NaN"):
        fed.fit_ridge(xs, ys, edge=("res", "readout"))
    with pytest.raises(ValueError, match="feeds back into the network"):
        fed.fit_ridge(xs, labels, edge=("res", "readout"), reduce="last")


def test_test_over_lists_scores_every_step_of_every_sequence():
    net, g = esn(readout=True)
    xs, ys = data(13)
    net.fit_ridge(xs, ys, edge=[("res", "readout"), ("in", "readout")], alpha=0.1)
    held = state_copy(net.state)
    recs, mse = net.test(xs, ys)
    W = np.c_[net["res", "readout"].weight.detach(), net["in", "readout"].weight.detach()]
    pred = (
        np.concatenate([f @ W.T for f in _full(g, xs)])
        + net["res", "readout"].bias.detach().numpy()
    )
    err = pred - np.concatenate(ys)
    assert isinstance(recs, rg.Recordings) and mse > 0.1  # a fit of noise: a real error
    np.testing.assert_allclose(mse, (err**2).mean(), rtol=1e-12)
    _, mae = net.test(xs, ys, loss="mae")
    np.testing.assert_allclose(mae, np.abs(err).mean(), rtol=1e-12)
    assert_state_equal(net.state, held)
    with pytest.raises(ValueError, match="needs a list of inputs"):
        net.test(None, ys)
    with pytest.raises(ValueError, match="steps= is for a run without input"):
        net.test(xs, ys, steps=3)


def test_a_deep_reservoir_reads_out_every_layer_jointly():
    """in -> res1 -> res2, the readout fed by both layers (a deep ESN with all layers read
    out), fitted in one call, against the layers' states in the reference interpreter."""
    g = torch.Generator().manual_seed(4)
    net = rg.Network(dt=1.0, dtype=F64)
    nodes = {"in": net.add_func_node("in", C)}
    edges = []
    for src, tgt in [("in", "res1"), ("res1", "res2")]:
        nodes[tgt] = net.add_diffeq_node(tgt, "leaky_tanh", n=N, lr=0.5, bias=0.05)
        w_in = rg.input_weights(N, nodes[src].n, seed=g, dtype=F64)
        w = rg.recurrent_weights(N, spectral_radius=0.8, connectivity=0.3, seed=g, dtype=F64)
        net.add_edge(src, tgt, weights=w_in)
        net.add_edge(tgt, tgt, weights=w, feedback=True)
        edges += [ref.EdgeDesc(src, tgt, w_in.numpy(), None, None, 0)]
        edges += [ref.EdgeDesc(tgt, tgt, w.numpy(), None, None, 1)]
    net.add_func_node("readout", K)
    for layer in ("res1", "res2"):
        net.add_edge(layer, "readout", weights=torch.zeros(K, N, dtype=F64), bias=True)
    xs, ys = data(14)
    net.fit_ridge(xs, ys, edge=[("res1", "readout"), ("res2", "readout")], alpha=1e-2)
    descs = {k: ref.node_desc(k, v) for k, v in nodes.items()}
    g2 = ref.GraphDesc(1.0, descs, edges, "in", "res2")
    traces = [ref.run(g2, x[None]).outputs for x in xs]
    F = np.concatenate([np.c_[t["res1"][0], t["res2"][0]] for t in traces])
    W, b = ridge(F, np.concatenate(ys), 1e-2)
    got = np.c_[net["res1", "readout"].weight.detach(), net["res2", "readout"].weight.detach()]
    np.testing.assert_allclose(got, W, atol=1e-11, rtol=0)
    np.testing.assert_allclose(net["res1", "readout"].bias.detach(), b, atol=1e-11, rtol=0)
    assert torch.equal(net["res2", "readout"].bias.detach(), torch.zeros(K, dtype=F64))


def two_readouts():
    """The ESN of ``esn`` with two readouts: ``a`` (K) from the reservoir, ``b`` (1) from
    the reservoir and the input."""
    net, g = esn()
    net.add_func_node("a", K)
    net.add_edge("res", "a", weights=torch.zeros(K, N, dtype=F64), bias=True)
    net.add_func_node("b", 1)
    net.add_edge("res", "b", weights=torch.zeros(1, N, dtype=F64), bias=True)
    net.add_edge("in", "b", weights=torch.zeros(1, C, dtype=F64), bias=False)
    net.compile(output_node="a")
    return net, g


def test_several_readouts_fit_from_one_run_as_each_alone():
    xs, ys = data()
    yb = [y[:, :1] * 0.5 - 0.2 for y in ys]
    net, g = two_readouts()
    fits = net.fit_ridge(xs, {"a": ys, "b": yb}, alpha={"a": 1e-3, "b": 1e-1}, washout=2)
    assert set(fits) == {"a", "b"} and fits["a"].n_samples == sum(len(y) - 2 for y in ys)
    # the reference: NumPy ridge solves on the reference interpreter's states
    F = np.concatenate([s[2:] for s in states(g, xs)])
    U = np.concatenate([x[2:] for x in xs])
    Wa, ba = ridge(F, np.concatenate([y[2:] for y in ys]), 1e-3)
    Wb, bb = ridge(np.hstack([F, U]), np.concatenate([y[2:] for y in yb]), 1e-1)
    np.testing.assert_allclose(net.get_edge("res", "a").weight.detach().numpy(), Wa, atol=1e-9)
    np.testing.assert_allclose(net.get_edge("res", "a").bias.detach().numpy(), ba, atol=1e-9)
    both = np.hstack([net.get_edge(s, "b").weight.detach().numpy() for s in ("res", "in")])
    np.testing.assert_allclose(both, Wb, atol=1e-9)
    np.testing.assert_allclose(net.get_edge("res", "b").bias.detach().numpy(), bb, atol=1e-9)
    # per sequence (reduce) as well: the same as each readout fitted alone
    labels = np.random.default_rng(3).standard_normal((len(xs), K))
    one, _ = two_readouts()
    one.fit_ridge(xs, {"a": labels, "b": labels[:, :1]}, reduce="last", alpha=1e-2)
    alone, _ = two_readouts()
    alone.fit_ridge(xs, labels, edge=("res", "a"), reduce="last", alpha=1e-2)
    alone.fit_ridge(xs, labels[:, :1], edge=[("res", "b"), ("in", "b")], reduce="last", alpha=1e-2)
    for u, v in (("res", "a"), ("res", "b"), ("in", "b")):
        torch.testing.assert_close(one.get_edge(u, v).weight, alone.get_edge(u, v).weight)


def test_several_readouts_of_one_array_continue_the_held_state():
    x = np.random.default_rng(1).standard_normal((2, 40, C))
    y = np.random.default_rng(2).standard_normal((2, 40, K))
    net, _ = two_readouts()
    net.fit_ridge(x, {"a": y, "b": y[..., :1]}, alpha=1e-2, washout=5)
    after = state_copy(net.state)
    alone, _ = two_readouts()
    alone.fit_ridge(x, y, edge=("res", "a"), alpha=1e-2, washout=5)
    torch.testing.assert_close(net.get_edge("res", "a").weight, alone.get_edge("res", "a").weight)
    assert_state_equal(after, alone.state)  # one run: the state after it


def test_several_readouts_refuse_and_leave_the_network_alone():
    xs, ys = data()
    net, _ = two_readouts()
    net.add_edge("b", "res", weights=torch.zeros(N, 1, dtype=F64), feedback=True)
    kept = {k: v.clone() for k, v in net.state_dict().items()}
    short = [y[:-1] for y in ys]
    cases = [
        ({"a": ys, "b": [y[:, :1] for y in ys]}, {}, "readout 'b' feeds back"),
        ({"a": ys, "zz": ys}, {}, "'zz', which is not a node"),
        ({"a": ys}, {"edge": {"b": ("res", "b")}}, r"edge names \['b'\]"),
        ({"a": ys, "b": short}, {}, "must match step by step"),
        ({"a": ys}, {"alpha": {"b": 1.0}}, r"alpha names \['b'\]"),
        ({"a": ys}, {"edge": ("res", "a")}, "edge must be a dict"),
        ({"a": ys}, {"edge": {"a": ("in", "b")}}, "must go into it"),
        ({}, {}, "empty dict"),
    ]
    for targets, kw, match in cases:
        with pytest.raises(ValueError, match=match):
            net.fit_ridge(xs, targets, **kw)
        for k, v in net.state_dict().items():
            assert torch.equal(v, kept[k]), k
