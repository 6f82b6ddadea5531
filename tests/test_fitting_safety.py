"""The trainers never give a silently wrong fit and never leave a half-done change.

* ``fit_ridge`` fits the readout's whole input: other edges into the readout and a bias it
  leaves as it is are offsets (against ``torch.linalg.lstsq``), and a readout that feeds
  back is teacher-forced (features against a plain run with the target as input);
* ``fit_rls`` trains the edge marked ``train="rls"`` into the output node;
* ``fit_bptt`` says what each shape means, counts its updates, and checks the target width
  and the class indices against the output node;
* every refused call (trainers, ``test``, layer builders) leaves the graph, every weight
  and the held state as they were, and a correct retry then works.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

import rnngraph as rg
from rnngraph import layers
from rnngraph.training import Ridge

F64 = torch.float64


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def _snapshot(net: rg.Network) -> dict:
    """Graph, every parameter and buffer of every node and edge, and the held state."""
    g = net.graph
    tensors = {}
    for v in g:
        for k, t in g.nodes[v]["node"].state_dict().items():
            tensors[f"{v}.{k}"] = t.clone()
    for u, v, e in g.edges(data="edge"):
        for k, t in e.state_dict().items():
            tensors[f"{u}->{v}.{k}"] = t.clone()
    state = net.state
    return {
        "nodes": list(g.nodes),
        "edges": list(g.edges),
        "tensors": tensors,
        "state": None if state is None else {k: v.clone() for k, v in state.items()},
        "output": net.compile().output_node,
    }


def _assert_unchanged(net: rg.Network, before: dict) -> None:
    assert list(net.graph.nodes) == before["nodes"]
    assert list(net.graph.edges) == before["edges"]
    after = _snapshot(net)
    assert after["tensors"].keys() == before["tensors"].keys()
    for k, t in before["tensors"].items():
        assert torch.equal(after["tensors"][k], t), k
    if before["state"] is None:
        assert after["state"] is None
    else:
        assert after["state"].keys() == before["state"].keys()
        for k, t in before["state"].items():
            assert torch.equal(after["state"][k], t), k
    assert after["output"] == before["output"]


def _esn(n=60, seed=0, in_scale=0.5, lr=0.3):
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", "leaky_tanh", n=n, lr=lr)
    net.add_edge("in", "res", weights=rg.input_weights(n, 1, in_scale, seed=seed, dtype=F64))
    net.add_edge(
        "res",
        "res",
        weights=rg.recurrent_weights(n, 0.9, 0.1, seed=seed + 1, dtype=F64),
        feedback=True,
    )
    return net


def _task(T=1600):
    t = np.arange(T + 1)
    s = np.sin(0.2 * t) * np.cos(0.031 * t)
    return s[:-1, None], s[1:, None]


def _nrmse(out, y):
    out, y = np.asarray(out), np.asarray(y)
    return float(np.sqrt(np.mean((out - y) ** 2)) / y.std())


# ---------------------------------------------------------------------------------------
# 1. fit_ridge counts the other edges into the readout
# ---------------------------------------------------------------------------------------


def _esn_with_readout(skip: bool, n=100):
    net = _esn(n=n)
    net.add_func_node("ro", 1)
    net.add_edge("res", "ro", weights=torch.zeros(1, n, dtype=F64), bias=True)
    if skip:
        net.add_edge("in", "ro", weights=torch.full((1, 1), 0.7, dtype=F64))
    return net


def test_fit_ridge_with_a_skip_edge_fits_as_well_as_without():
    """ESN with a skip edge in -> ro (w = 0.7) beside res -> ro: the fitted network
    reproduces the target as well as without it (measured: NRMSE 5.2e-5 without, 2.8e-5
    with; 0.70 when the skip edge was ignored)."""
    x, y = _task()
    scores = {}
    for skip in (False, True):
        net = _esn_with_readout(skip)
        net.fit_ridge(x[:1000], y[:1000], edge=("res", "ro"), alpha=1e-8, washout=100)
        scores[skip] = _nrmse(net.run(x[1000:]).output, y[1000:])
    assert scores[False] < 1e-3 and scores[True] < 1e-3, scores
    assert torch.equal(net.get_edge("in", "ro").weight, torch.full((1, 1), 0.7, dtype=F64))


def test_fit_ridge_offsets_equal_lstsq_on_target_minus_offset():
    """Other edges (one delayed), a fixed bias on another edge and a readout edge with
    nonzero starting weights and a bias the fit leaves as it is: the weights are lstsq on
    (features, target - offset) in float64, the offset recorded independently."""
    g = np.random.default_rng(3)
    T, n, wash = 400, 15, 20
    x = g.standard_normal((T, 1))
    y = g.standard_normal((T, 2))
    w_in, w_rec = g.standard_normal((n, 1)), 0.8 * g.standard_normal((n, n)) / np.sqrt(n)
    w_h, w_hr, w_skip = (
        g.standard_normal((3, 1)),
        g.standard_normal((2, 3)),
        g.standard_normal((2, 1)),
    )

    def base():
        net = rg.Network(dt=1.0, dtype=F64)
        net.add_func_node("in", 1)
        net.add_diffeq_node("res", "leaky_tanh", n=n, lr=0.5)
        net.add_edge("in", "res", weights=w_in)
        net.add_edge("res", "res", weights=w_rec, feedback=True)
        net.add_func_node("h", 3, "tanh")
        net.add_edge("in", "h", weights=w_h)
        net.add_func_node("ro", 2)
        return net

    net = base()
    w0, b0 = g.standard_normal((2, n)) * 0.1, np.array([0.3, -0.2])
    net.add_edge("res", "ro", weights=w0, bias=b0)
    net.add_edge("h", "ro", weights=w_hr, bias=np.array([1.0, 2.0]))
    net.add_edge("in", "ro", weights=w_skip, delay=2)
    ref = base()  # the features, and the offset: ro without res -> ro
    ref.add_edge("h", "ro", weights=w_hr, bias=np.array([1.0, 2.0]))
    ref.add_edge("in", "ro", weights=w_skip, delay=2)
    rec = ref.run(x, record=["res", "ro"])
    feats, off = rec["res"], rec["ro"]

    net.fit_ridge(x, y, edge=("res", "ro"), alpha=0.0, bias=False, washout=wash)
    goal = torch.as_tensor(y) - off - torch.as_tensor(b0)  # the edge's own bias stays
    sol = torch.linalg.lstsq(feats[wash:], goal[wash:], driver="gelsd").solution
    lin = net.get_edge("res", "ro")
    torch.testing.assert_close(lin.weight, sol.T, rtol=0, atol=1e-8)
    assert torch.equal(lin.bias, torch.as_tensor(b0))

    net.reset()
    ridge = net.fit_ridge(x, y, edge=("res", "ro"), alpha=0.0, bias=True, washout=wash)
    aug = torch.cat([feats, torch.ones(T, 1, dtype=F64)], dim=1)
    sol = torch.linalg.lstsq(aug[wash:], (torch.as_tensor(y) - off)[wash:], driver="gelsd")
    torch.testing.assert_close(lin.weight, sol.solution[:-1].T, rtol=0, atol=1e-8)
    torch.testing.assert_close(lin.bias, sol.solution[-1], rtol=0, atol=1e-8)
    assert ridge.n_samples == T - wash
    # the fitted network reproduces the least-squares prediction
    net.reset()
    torch.testing.assert_close(net.run(x).output, aug @ sol.solution + off, rtol=0, atol=1e-9)


@pytest.mark.parametrize("kind", ["tanh", "li"])
def test_fit_ridge_refuses_a_readout_that_is_not_an_identity_node(kind):
    x, y = _task(T=100)
    net = _esn(n=30)
    if kind == "tanh":
        net.add_func_node("ro", 1, "tanh")
    else:
        net.add_diffeq_node("ro", "li", n=1)
    net.add_edge("res", "ro", weights=torch.zeros(1, 30, dtype=F64))
    net.run(x[:5])
    before = _snapshot(net)
    match = r"Network\.fit_ridge: the readout node 'ro' is a .*identity function node"
    with pytest.raises(ValueError, match=match):
        net.fit_ridge(x, y, edge=("res", "ro"), bias=False)
    _assert_unchanged(net, before)


# ---------------------------------------------------------------------------------------
# 2. fit_ridge teacher-forces a readout that feeds back
# ---------------------------------------------------------------------------------------


def _generator(n=200, seed=0):
    """A reservoir without input whose readout feeds back (delay 1)."""
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_diffeq_node("res", "leaky_tanh", n=n, lr=0.5)
    net.add_edge(
        "res",
        "res",
        weights=rg.recurrent_weights(n, 0.9, 0.1, seed=seed + 1, dtype=F64),
        feedback=True,
    )
    net.add_func_node("ro", 1)
    net.add_edge("res", "ro", weights=torch.zeros(1, n, dtype=F64), bias=True)
    w_fb = rg.input_weights(n, 1, 1.0, seed=seed + 2, dtype=F64)
    net.add_edge("ro", "res", weights=w_fb, feedback=True)
    return net, w_fb


def _wave(T=3000):
    return (0.5 * np.sin(2 * np.pi * np.arange(T) / 30))[:, None]


@pytest.mark.parametrize("seed", [0, 1])
def test_fit_ridge_with_feedback_generates_the_target_in_closed_loop(seed):
    """Trained with the target fed back, the network continues the wave on its own
    (measured closed-loop MAE over 1000 steps: 4.9e-7 and 2.8e-7; 0.32 on both draws when
    the readout's zero output was fed back during the fit)."""
    s = _wave()
    net, _ = _generator(seed=seed)
    net.fit_ridge(None, s[:2000], edge=("res", "ro"), alpha=1e-6, washout=200)
    out = net.run(None, steps=1000).output.numpy()
    assert np.abs(out - s[2000:]).mean() < 1e-4


def test_fit_ridge_features_with_feedback_are_those_of_the_target_fed_back():
    """The statistics of the fit equal those of a plain run in which the target enters the
    reservoir as an input through the feedback weights, one step late."""
    s = _wave(600)
    net, w_fb = _generator(n=50)
    ridge = net.fit_ridge(None, s, edge=("res", "ro"), alpha=1e-6, washout=50)
    plain = rg.Network(dt=1.0, dtype=F64)
    plain.add_func_node("in", 1)
    plain.add_diffeq_node("res", "leaky_tanh", n=50, lr=0.5)
    plain.add_edge("res", "res", weights=net.get_edge("res", "res").weight, feedback=True)
    plain.add_edge("in", "res", weights=w_fb, delay=1)
    feats = plain.compile(input_node="in", output_node="res").run(s, observer=rg.Observer(["res"]))[
        "res"
    ]
    ref = Ridge(alpha=1e-6, washout=50).partial_fit(feats, torch.as_tensor(s))
    torch.testing.assert_close(ridge.xtx, ref.xtx, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ridge.xty, ref.xty, rtol=1e-12, atol=1e-12)
    # in chunks (the forced value crosses each chunk boundary in the delay line): the same
    chunked = _generator(n=50)[0].fit_ridge(
        None, s, edge=("res", "ro"), alpha=1e-6, washout=50, chunk=37
    )
    torch.testing.assert_close(chunked.xtx, ref.xtx, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(chunked.xty, ref.xty, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fit", ["fit_ridge", "fit_rls"])
def test_the_added_readout_becomes_the_output_node_even_after_a_named_one(fit):
    """``compile(output_node="res")`` names the output node; the readout a fit adds on it
    takes over, as without the name (the run returned the reservoir before)."""
    x, y = _task(T=300)
    net = _esn(n=30)
    net.compile(output_node="res")
    getattr(net, fit)(x, y, washout=10)
    assert net.compile().output_node == "readout"
    assert net.run(x[:3]).output.shape == (3, 1)


# ---------------------------------------------------------------------------------------
# 9. fit_rls trains the user's train="rls" edge
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fit", ["fit_rls", "fit_ridge"])
def test_a_marked_rls_edge_into_the_output_node_is_the_readout(fit):
    x, y = _task(T=400)
    net = _esn(n=40)
    net.add_func_node("out", 1)
    net.add_edge("res", "out", weights=torch.zeros(1, 40, dtype=F64), train="rls")
    nodes, edges = list(net.graph.nodes), list(net.graph.edges)
    if fit == "fit_rls":
        rec = net.fit_rls(x, y, alpha=1e-3)
        assert float(rec.loss[-50:].mean()) < 1e-3 * float(rec.loss[:5].mean())
    else:
        net.fit_ridge(x, y, alpha=1e-8, washout=50, bias=False)
    assert list(net.graph.nodes) == nodes and list(net.graph.edges) == edges
    assert float(net.get_edge("res", "out").weight.abs().sum()) > 0.1
    net.reset()
    out = net.run(x).output.numpy()
    assert _nrmse(out[100:], y[100:]) < 0.05


def test_several_marked_rls_edges_into_the_output_node_must_be_named():
    x, y = _task(T=50)
    net = _esn(n=30)
    net.add_func_node("out", 1)
    net.add_edge("res", "out", weights=torch.zeros(1, 30, dtype=F64), train="rls")
    net.add_edge("in", "out", weights=torch.zeros(1, 1, dtype=F64), train="rls")
    before = _snapshot(net)
    with pytest.raises(ValueError, match=r"Network\.fit_rls: the output node 'out' has several"):
        net.fit_rls(x, y)
    _assert_unchanged(net, before)


# ---------------------------------------------------------------------------------------
# 10 and 21. fit_bptt: shapes, updates, widths, class indices
# ---------------------------------------------------------------------------------------


def _bptt_net(n_out=1, seed=0):
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 2)
    net.add_diffeq_node("res", "leaky_integrator", n=8, tau=4.0)
    net.add_edge("in", "res", train="gd", seed=seed)
    net.add_edge(
        "res",
        "res",
        weights=rg.recurrent_weights(8, 0.9, 0.5, seed=seed + 1, dtype=F64),
        feedback=True,
    )
    net.add_func_node("out", n_out)
    net.add_edge("res", "out", train="gd", seed=seed + 2)
    return net


@pytest.mark.parametrize(
    ("x_shape", "y_shape", "kwargs", "updates"),
    [
        ((50, 2), (50, 1), {}, 1),  # one sequence
        ((50, 2), (50,), {}, 1),  # one sequence, one output
        ((50, 2), (50, 1), {"update_steps": 10}, 5),  # truncated windows
        ((8, 50, 2), (8, 50, 1), {}, 1),  # a batch of 8 trials: one batched update
        ((8, 50, 2), (8, 50, 1), {"update_steps": 20}, 3),
        ((8, 50, 2), (8, 50, 1), {"epochs": 3}, 3),
        (None, (50, 1), {"update_steps": 25}, 2),  # no input: the targets fix the length
    ],
)
def test_fit_bptt_updates_per_shape(x_shape, y_shape, kwargs, updates):
    g = np.random.default_rng(0)
    x = None if x_shape is None else g.standard_normal(x_shape)
    y = g.standard_normal(y_shape)
    net = _bptt_net()
    rec = net.fit_bptt(x, y, optimizer="sgd", lr=1e-3, **kwargs)
    assert len(rec.loss) == updates


def test_fit_bptt_a_list_of_trials_makes_one_update_each_and_a_batch_one_in_all():
    g = np.random.default_rng(1)
    x, y = g.standard_normal((8, 30, 2)), g.standard_normal((8, 30, 1))
    one_by_one = _bptt_net().fit_bptt(list(x), list(y), optimizer="sgd", lr=1e-2)
    assert len(one_by_one.loss) == 8
    batched_net = _bptt_net()
    before = [p.detach().clone() for p in batched_net.parameters()]
    batched = batched_net.fit_bptt(x, y, optimizer="sgd", lr=1e-2)
    assert len(batched.loss) == 1
    # the batched update is the mean of the 8 trials' gradients
    grads = []
    for b in range(8):
        probe = _bptt_net()
        out = probe.compile().forward(x[b], state=probe.compile().init_state(1))
        loss = torch.nn.functional.mse_loss(out, torch.as_tensor(y[b]))
        grads.append(torch.autograd.grad(loss, list(probe.parameters())))
    for p, p0, *gs in zip(batched_net.parameters(), before, *grads, strict=True):
        torch.testing.assert_close(p.detach(), p0 - 1e-2 * sum(gs) / 8, rtol=0, atol=1e-12)


ACCEPTED = r"accepted: inputs \(T, C\) with targets \(T, n_out\)"


@pytest.mark.parametrize(
    ("x_shape", "y", "match"),
    [
        # one class label per trial: which steps count is not said
        (
            (8, 50, 2),
            np.arange(8) % 3,
            r"class indices of shape \(8,\) do not fit inputs of "
            r"shape \(8, 50, 2\); one class per trial",
        ),
        # per-trial real targets (B, T) without a width
        ((8, 50, 2), np.zeros((8, 50)), r"targets of shape \(8, 50\) do not fit inputs"),
        # a batch of targets without inputs
        (
            None,
            np.zeros((4, 50, 3)),
            r"targets of shape \(4, 50, 3\) do not fit inputs of "
            r"shape None",
        ),
        ((50, 2), np.zeros(40, dtype=np.int64), r"class indices of shape \(40,\) do not fit"),
    ],
)
def test_fit_bptt_refuses_ambiguous_shapes_listing_the_accepted_ones(x_shape, y, match):
    g = np.random.default_rng(2)
    x = None if x_shape is None else g.standard_normal(x_shape)
    net = _bptt_net(n_out=3)
    net.run(g.standard_normal((5, 2)))
    before = _snapshot(net)
    with pytest.raises(ValueError, match=r"Network\.fit_bptt: " + match) as err:
        net.fit_bptt(x, y)
    assert "accepted: inputs (T, C) with targets (T, n_out)" in str(err.value)
    _assert_unchanged(net, before)


def test_fit_bptt_refuses_targets_wider_than_the_output():
    """Targets (50, 3) for a 1-unit output: refused, naming the output node and both widths
    (before: a broadcast MSE with only torch's warning)."""
    g = np.random.default_rng(3)
    net = _bptt_net(n_out=1)
    net.run(g.standard_normal((5, 2)))
    before = _snapshot(net)
    with pytest.raises(
        ValueError,
        match=r"Network\.fit_bptt: the targets have width 3, the output node 'out' has 1 units",
    ):
        net.fit_bptt(g.standard_normal((50, 2)), g.standard_normal((50, 3)))
    _assert_unchanged(net, before)
    rec = net.fit_bptt(g.standard_normal((50, 2)), g.standard_normal((50, 1)))
    assert len(rec.loss) == 1 and math.isfinite(rec.loss[0])


def test_fit_bptt_refuses_out_of_range_class_indices_before_running():
    g = np.random.default_rng(4)
    net = _bptt_net(n_out=3)
    x = g.standard_normal((4, 20, 2))
    net.run(x)
    before = _snapshot(net)
    labels = np.full((4, 20), 1)
    labels[2, 7] = 5
    with pytest.raises(
        ValueError,
        match=r"Network\.fit_bptt: class index 5 is out of range: the output node 'out' has 3",
    ):
        net.fit_bptt(x, labels, loss="ce")
    _assert_unchanged(net, before)
    with pytest.raises(TypeError, match=r"Network\.fit_bptt: integer class-index targets need"):
        net.fit_bptt(x, labels % 3, loss="mse")
    _assert_unchanged(net, before)
    rec = net.fit_bptt(x, labels % 3, loss="ce", optimizer="adam", lr=1e-2, epochs=2)
    assert len(rec.loss) == 2


# ---------------------------------------------------------------------------------------
# 20. a refused call changes nothing; the retry works
# ---------------------------------------------------------------------------------------


def _warm_esn(n=30):
    x, y = _task(T=300)
    net = _esn(n=n)
    net.run(x[:20])  # a held state that is not the initial one
    return net, x, y


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"washout": 300}, ValueError, r"Network\.fit_ridge: washout=300 drops every step"),
        ({"washout": 1000}, ValueError, r"washout=1000 drops every step: the targets have 300"),
        ({"chunk": 0}, ValueError, r"Network\.fit_ridge: chunk must be an int >= 1, got 0"),
        ({"chunk": -5}, ValueError, r"chunk must be an int >= 1, got -5"),
    ],
)
def test_fit_ridge_bad_settings_change_nothing(kwargs, exc, match):
    net, x, y = _warm_esn()
    before = _snapshot(net)
    with pytest.raises(exc, match=match):
        net.fit_ridge(x, y, **kwargs)
    _assert_unchanged(net, before)
    ridge = net.fit_ridge(x, y, washout=50)  # the retry adds the readout and fits
    assert ridge.n_samples == 250 and "readout" in net.graph


def test_fit_ridge_singular_system_is_undone_completely():
    """All-zero features and alpha = 0: the normal equations are singular. The added
    readout node goes again, the held state is the one before the call."""
    x, y = _task(T=300)
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 1)
    net.add_diffeq_node("other", "leaky_tanh", n=5, lr=0.5)
    net.add_edge("in", "other", weights=np.ones((5, 1)))
    net.add_diffeq_node("res", "leaky_tanh", n=30, lr=0.5)
    net.add_edge("other", "res", weights=np.zeros((30, 5)))  # res stays at zero
    net.add_edge("res", "res", weights=np.eye(30) * 0.5, feedback=True)
    net.run(x[:20])
    before = _snapshot(net)
    assert float(before["state"]["other.x"].abs().sum()) > 0
    with pytest.raises(
        ValueError,
        match=r"Network\.fit_ridge: edge 'res' -> 'readout': Ridge\.solve: the normal "
        r"equations are singular \(alpha=0; .*pass alpha > 0; nothing was fitted",
    ):
        net.fit_ridge(x, y, alpha=0.0)
    _assert_unchanged(net, before)
    ridge = net.fit_ridge(x, y, alpha=1e-3)
    assert torch.equal(net.get_edge("res", "readout").weight, torch.zeros(1, 30, dtype=F64))
    assert ridge.n_samples == 300


def test_fit_ridge_on_a_delayed_edge_refuses_before_running():
    net, x, y = _warm_esn()
    net.add_func_node("ro", 1)
    net.add_edge("res", "ro", weights=torch.zeros(1, 30, dtype=F64), bias=True, delay=1)
    before = _snapshot(net)
    with pytest.raises(
        ValueError,
        match=r"Network\.fit_ridge: edge 'res' -> 'ro' has delay 1; fit a zero-delay readout",
    ):
        net.fit_ridge(x, y, edge=("res", "ro"))
    _assert_unchanged(net, before)


def test_fit_ridge_on_an_existing_readout_label_names_it():
    net, x, y = _warm_esn()
    net.fit_ridge(x, y, washout=10)
    before = _snapshot(net)
    with pytest.raises(
        ValueError,
        match=r"a node 'readout' exists already; pass edge=\(<its source>, 'readout'\) to "
        r"refit it, or another readout= label",
    ):
        net.fit_ridge(x, y)
    _assert_unchanged(net, before)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"record": ["nowhere"]}, ValueError, r"Network\.fit_rls: .*'nowhere'"),
        ({"record": "res.nothing"}, ValueError, r"Network\.fit_rls: .*'res.nothing'"),
        (
            {"sampling_steps": 0},
            ValueError,
            r"^Network\.fit_rls: sampling_steps must be an int >= 1, got 0$",
        ),
        ({"cutoff": -1}, ValueError, r"^Network\.fit_rls: cutoff must be an int >= 0, got -1$"),
        ({"washout": 300}, ValueError, r"Network\.fit_rls: washout=300 leaves no step to update"),
        ({"update_steps": 0}, ValueError, r"Network\.fit_rls: update_steps must be an int >= 1"),
        (
            {"feedback_weights": np.full((30, 1), np.nan)},
            ValueError,
            r"Network\.fit_rls: feedback_weights contain NaN",
        ),
    ],
)
def test_fit_rls_bad_settings_change_nothing(kwargs, exc, match):
    net, x, y = _warm_esn()
    before = _snapshot(net)
    with pytest.raises(exc, match=match):
        net.fit_rls(x, y, **kwargs)
    _assert_unchanged(net, before)
    rec = net.fit_rls(x, y, alpha=1.0, record=["res"])  # the retry
    assert rec["res"].shape == (300, 30) and "readout" in net.graph


def test_fit_rls_error_inside_the_run_restores_weights_and_trainer():
    """An error raised in the middle of the training run, after updates of the edge and of
    the trainer's P, undoes them all (and the run's advance of the held state)."""
    net, x, y = _warm_esn()
    calls = {"left": None}

    def fails_later(v: torch.Tensor) -> torch.Tensor:
        if calls["left"] is not None:
            calls["left"] -= 1
            if calls["left"] == 0:
                raise FloatingPointError("a user's node failed at step 150")
        return v

    net.add_func_node("probe", 1, fails_later)
    net.add_edge("res", "probe", weights=torch.full((1, 30), 0.1, dtype=F64))
    net.add_func_node("out", 1)
    net.add_edge("probe", "out", weights=torch.zeros(1, 1, dtype=F64))
    net.add_edge("res", "out", weights=torch.zeros(1, 30, dtype=F64))
    first = net.fit_rls(x[:100], y[:100], edge=("res", "out"), alpha=1.0)
    P = first.trainer.P.clone()
    before = _snapshot(net)
    calls["left"] = 150
    with pytest.raises(FloatingPointError, match="failed at step 150"):
        net.fit_rls(x, y, edge=("res", "out"), trainer=first.trainer)
    assert calls["left"] == 0  # it did fail inside the run
    _assert_unchanged(net, before)
    assert torch.equal(first.trainer.P, P) and first.trainer.n_updates == 100
    calls["left"] = None
    rec = net.fit_rls(x, y, edge=("res", "out"), trainer=first.trainer)  # the retry
    assert first.trainer.n_updates == 400 and float(rec.loss[-50:].mean()) < 1e-2


def test_test_checks_before_it_runs():
    net, x, y = _warm_esn()
    net.fit_ridge(x, y, washout=10)
    net.run(x[:7])
    before = _snapshot(net)
    with pytest.raises(
        ValueError,
        match=r"Network\.test: the targets have width 2, the output node 'readout' has 1",
    ):
        net.test(x, np.zeros((300, 2)))
    with pytest.raises(TypeError, match=r"Network\.test: .*'colour'"):
        net.test(x, y, colour="red")
    with pytest.raises(ValueError, match=r"Network\.test: loss='nrmse' of constant targets"):
        net.test(x, np.ones((300, 1)), loss="nrmse")
    _assert_unchanged(net, before)
    net.reset()
    _, score = net.test(x, y, loss="nrmse")
    assert score < 0.05


# ---------------------------------------------------------------------------------------
# layer builders add everything or nothing
# ---------------------------------------------------------------------------------------

LIF = ("lif", {"tau_m": 20.0, "v_th": 1.0, "v_reset": 0.0, "refractory": 0.0})


def _layer_net():
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 2)
    net.add_diffeq_node("pre", "leaky_tanh", n=4, lr=0.5)
    net.add_edge("in", "pre", weights=np.ones((4, 2)))
    net.run(np.ones((3, 2)))
    return net


@pytest.mark.parametrize(
    ("build", "exc", "match"),
    [
        (
            lambda net: layers.serial(net, "l", "nowhere", LIF, n=3),
            KeyError,
            r"rnngraph\.layers\.serial: .*no node 'nowhere'",
        ),
        (
            lambda net: layers.serial(
                net, "l", "pre", LIF, n=3, weights=np.ones((2, 2)), capture_intermediate=True
            ),
            ValueError,
            r"rnngraph\.layers\.serial: .*weights must have shape",
        ),
        (
            lambda net: layers.biclique(net, "b", ["in", "pre"], {"a": (LIF, 3), "c": (42, 2)}),
            TypeError,
            r"rnngraph\.layers\.biclique: neuron 'b_c': give a model name",
        ),
        (
            lambda net: layers.biclique(
                net, "b", ["in", "pre"], {"a": (LIF, 3)}, weights={("pre", "a"): np.ones((3, 2))}
            ),
            ValueError,
            r"rnngraph\.layers\.biclique: .*weights must have shape",
        ),
        (
            lambda net: layers.recurrent_serial(
                net,
                "r",
                "in",
                LIF,
                LIF,
                n_feedfwd=3,
                n_feedback=2,
                feedback_weights=np.ones((2, 2)),
            ),
            ValueError,
            r"rnngraph\.layers\.recurrent_serial: .*weights must have shape",
        ),
        (
            lambda net: layers.recurrent_serial(
                net,
                "pre",
                "in",
                LIF,
                LIF,
                n_feedfwd=3,
                n_feedback=2,
                capture_intermediate=True,
                transforms={"lateral": torch.neg},
                feedback_weights=np.ones((3, 3)),
            ),
            ValueError,
            r"rnngraph\.layers\.recurrent_serial: .*weights must have shape",
        ),
    ],
)
def test_layer_builders_leave_nothing_half_built(build, exc, match):
    net = _layer_net()
    before = _snapshot(net)
    with pytest.raises(exc, match=match):
        build(net)
    _assert_unchanged(net, before)
    layer = layers.recurrent_serial(net, "ok", "pre", LIF, LIF, n_feedfwd=3, n_feedback=2, seed=0)
    assert layer.neurons == {"feedfwd": "ok_ff", "feedback": "ok_fb"}
    assert net.run(np.ones((4, 2))).output.shape == (4, 2)


# ---------------------------------------------------------------------------------------
# fit_eprop and fit_bptt name themselves in their checks, before anything runs
# ---------------------------------------------------------------------------------------


def _eprop_net():
    g = torch.Generator().manual_seed(0)
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 2)
    net.add_diffeq_node("rec", "lif", n=6, tau_m=10.0)
    net.add_edge("in", "rec", weights=torch.randn(6, 2, generator=g, dtype=F64), train="gd")
    net.add_edge(
        "rec",
        "rec",
        weights=0.3 * torch.randn(6, 6, generator=g, dtype=F64),
        train="gd",
        feedback=True,
        mask=1.0 - torch.eye(6, dtype=F64),
    )
    net.add_diffeq_node("out", "leaky_readout", n=2, tau=15.0)
    net.add_edge("rec", "out", weights=torch.randn(2, 6, generator=g, dtype=F64), train="gd")
    return net


@pytest.mark.parametrize(
    ("fit", "kwargs", "exc", "match"),
    [
        ("fit_eprop", {"epochs": 0}, ValueError, r"Network\.fit_eprop: epochs must be an int >= 1"),
        ("fit_eprop", {"trainer": "eprop"}, TypeError, r"Network\.fit_eprop: trainer must be"),
        ("fit_bptt", {"epochs": 0}, ValueError, r"Network\.fit_bptt: epochs must be an int >= 1"),
        ("fit_bptt", {"trainer": "bptt"}, TypeError, r"Network\.fit_bptt: trainer must be"),
    ],
)
def test_fit_eprop_and_fit_bptt_check_their_settings_first(fit, kwargs, exc, match):
    g = np.random.default_rng(5)
    x, y = g.standard_normal((3, 20, 2)) * 3.0, g.standard_normal((3, 20, 2))
    net = _eprop_net()
    net.run(x)
    before = _snapshot(net)
    with pytest.raises(exc, match=match):
        getattr(net, fit)(x, y, **kwargs)
    _assert_unchanged(net, before)
    rec = getattr(net, fit)(x, y, lr=1e-3)  # the retry
    assert len(rec.loss) == 1 and math.isfinite(rec.loss[0])


def test_test_refused_after_its_run_leaves_the_held_state():
    """``Network.test`` whose output cannot match the targets (a held batch of 3, targets of
    one trial) is refused, and the held state is the one before the call."""
    net = rg.Network(1.0)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", "leaky_tanh", n=5)
    net.add_edge("in", "res", weights=np.ones((5, 1)))
    net.add_edge("res", "res", weights=0.5 * np.eye(5), feedback=True)
    net.run(np.random.default_rng(0).standard_normal((3, 10, 1)))
    held = {k: v.clone() for k, v in net.state.items()}
    with pytest.raises(ValueError, match=r"Network\.test: the output has shape \(3, 8, 5\)"):
        net.test(None, np.zeros((8, 5)))
    for k, v in held.items():
        assert net.state[k].equal(v), k


def test_a_refused_fit_leaves_the_iaf_noise_stream_where_it_was():
    """A ridge fit refused after its run (singular system) rewinds the IAF's noise generator
    with everything else: the next run equals that of a network that never made the call."""

    def build() -> rg.Network:
        net = rg.Network(1e-3)
        net.add_func_node("in", 1)
        net.add_diffeq_node("iaf", "iaf", n=4, noise_std=1e-3, seed=7, bias=0.0)
        net.add_edge("in", "iaf", weights=np.full((4, 1), 1e-9))
        net.add_func_node("ro", 1)
        net.add_edge("iaf", "ro", weights=np.zeros((1, 4)))  # reads the spikes: none here
        return net

    u = np.full((50, 1), 1.0)
    a, b = build(), build()
    a.run(u[:10])
    b.run(u[:10])
    with pytest.raises(ValueError, match=r"Network\.fit_ridge: .*singular"):
        a.fit_ridge(u, np.ones((50, 1)), alpha=0.0, edge=("iaf", "ro"), bias=False)
    ya, yb = a.run(u, record=["iaf.v"]), b.run(u, record=["iaf.v"])
    assert ya["iaf.v"].std() > 0  # the noise is there
    torch.testing.assert_close(ya["iaf.v"], yb["iaf.v"], rtol=0, atol=0)


def test_fit_bptt_refused_midway_changes_nothing():
    """A fit that fails after some updates (the second sequence's batch does not fit the
    state carried over with ``reset=False``) leaves every weight, the held state and the
    continued trainer's optimiser state as they were, and names the call."""
    g = torch.Generator().manual_seed(3)
    x2, y2 = torch.randn(2, 10, 1, generator=g), torch.randn(2, 10, 1, generator=g)
    x3, y3 = torch.randn(3, 10, 1, generator=g), torch.randn(3, 10, 1, generator=g)

    def build() -> rg.Network:
        net = rg.Network(1.0)
        net.add_func_node("in", 1)
        net.add_diffeq_node("res", "leaky_tanh", n=6, lr=0.5)
        net.add_edge("in", "res", weights=rg.input_weights(6, 1, seed=1), train="gd")
        net.add_func_node("out", 1)
        net.add_edge("res", "out", train="gd", seed=2)
        return net

    net = build()
    first = net.fit_bptt(x2, y2, optimizer="adam", lr=1e-2)
    params = {k: v.detach().clone() for k, v in net.compile().named_parameters()}
    held = {k: v.clone() for k, v in net.state.items()}
    moments = copy.deepcopy(first.trainer.optimizer.state_dict())
    with pytest.raises(ValueError, match=r"^Network\.fit_bptt: .*B=3"):
        net.fit_bptt([x2, x3], [y2, y3], reset=False, trainer=first.trainer)
    for k, v in net.compile().named_parameters():
        assert v.detach().equal(params[k]), k
    for k, v in held.items():
        assert net.state[k].equal(v), k
    after = first.trainer.optimizer.state_dict()
    for i, st in moments["state"].items():
        for name, value in st.items():
            assert torch.as_tensor(after["state"][i][name]).equal(torch.as_tensor(value)), name
    # the retry from where it stood gives what a network that never failed gives
    twin = build()
    twin_first = twin.fit_bptt(x2, y2, optimizer="adam", lr=1e-2)
    assert (
        net.fit_bptt(x2, y2, trainer=first.trainer).loss
        == twin.fit_bptt(x2, y2, trainer=twin_first.trainer).loss
    )
