"""Ridge and RLS readout training: agreement with lstsq, streaming, RLS -> ridge, FORCE."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest
import torch

import rnngraph as rg
from rnngraph.network import _fitting
from rnngraph.training import RLS, Ridge, ridge_solve, rls_update

F64 = torch.float64


def _design(seed: int = 0, n: int = 400, f: int = 12, k: int = 3):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, f, generator=g, dtype=F64)
    W = torch.randn(k, f, generator=g, dtype=F64)
    b = torch.randn(k, generator=g, dtype=F64) * 3.0
    Y = X @ W.T + b + 0.1 * torch.randn(n, k, generator=g, dtype=F64)
    return X, Y, W, b


def _augmented_lstsq(X, Y, alpha):
    n, f = X.shape
    top = torch.cat([X, torch.ones(n, 1, dtype=F64)], dim=1)
    bottom = torch.cat(
        [math.sqrt(alpha) * torch.eye(f, dtype=F64), torch.zeros(f, 1, dtype=F64)], dim=1
    )
    A = torch.cat([top, bottom])
    B = torch.cat([Y, torch.zeros(f, Y.shape[1], dtype=F64)])
    sol = torch.linalg.lstsq(A, B, driver="gelsd").solution
    return sol[:-1].T, sol[-1]


@pytest.mark.parametrize("alpha", [0.0, 1e-6, 1e-2, 10.0])
def test_ridge_equals_augmented_lstsq(alpha):
    X, Y, _, _ = _design()
    ridge = Ridge(alpha=alpha).fit(X, Y)
    W, b = _augmented_lstsq(X, Y, alpha)
    assert torch.allclose(ridge.weight, W, atol=1e-8, rtol=0)
    assert torch.allclose(ridge.bias, b, atol=1e-8, rtol=0)


def test_ridge_fits_the_bias():
    X, Y, W_true, b_true = _design(seed=1, n=2000)
    ridge = Ridge(alpha=1e-8).fit(X, Y)
    # the intercept is recovered (noise 0.1 over 2000 samples: error ~ 0.1/sqrt(2000))
    assert torch.allclose(ridge.bias, b_true, atol=0.02)
    assert torch.allclose(ridge.weight, W_true, atol=0.02)
    no_bias = Ridge(alpha=1e-8, fit_bias=False).fit(X, Y)
    assert no_bias.bias is None
    assert (no_bias.predict(X) - Y).square().mean() > 5 * (ridge.predict(X) - Y).square().mean()


def test_ridge_streaming_equals_batch_fit():
    X, Y, _, _ = _design(seed=2, n=800)
    batch = Ridge(alpha=1e-3).fit(X, Y)
    stream = Ridge(alpha=1e-3)
    for chunk in torch.chunk(torch.arange(800), 4):
        stream.partial_fit(X[chunk], Y[chunk])
    stream.solve()
    assert torch.allclose(stream.weight, batch.weight, atol=1e-10, rtol=0)
    assert torch.allclose(stream.bias, batch.bias, atol=1e-10, rtol=0)
    # a (B, T, n) batch is the same as its sequences one after another
    Xb, Yb = X.reshape(4, 200, -1), Y.reshape(4, 200, -1)
    batched = Ridge(alpha=1e-3).fit(Xb, Yb)
    assert torch.allclose(batched.weight, batch.weight, atol=1e-10, rtol=0)


def test_ridge_washout_drops_steps_per_sequence():
    X, Y, _, _ = _design(seed=3, n=300)
    Xb, Yb = X.reshape(3, 100, -1), Y.reshape(3, 100, -1)
    washed = Ridge(alpha=1e-4, washout=10).fit(Xb, Yb)
    manual = Ridge(alpha=1e-4).fit(Xb[:, 10:], Yb[:, 10:])
    assert washed.n_samples == 270
    assert torch.allclose(washed.weight, manual.weight, atol=1e-12, rtol=0)


@pytest.mark.parametrize(
    "where, value",
    [("X", math.nan), ("X", math.inf), ("X", -math.inf), ("Y", math.inf)],
)
def test_ridge_rejects_non_finite_samples_and_keeps_its_statistics(where, value):
    X, Y, _, _ = _design(seed=4, n=200)
    ridge = Ridge(alpha=1e-3, washout=5).partial_fit(X[:100], Y[:100])
    before = (ridge.xtx.clone(), ridge.xty.clone(), ridge.n_samples)
    Xb, Yb = X[100:].clone(), Y[100:].clone()
    (Xb if where == "X" else Yb)[60, 1] = value
    with pytest.raises(ValueError, match="NaN or inf.*nothing was accumulated"):
        ridge.partial_fit(Xb, Yb)
    assert torch.equal(ridge.xtx, before[0]) and torch.equal(ridge.xty, before[1])
    assert ridge.n_samples == before[2]
    # a bad value inside the washout is dropped with its step, not an error
    Xw = X[100:].clone()
    Xw[2, 1] = value
    ridge.partial_fit(Xw, Y[100:]).solve()
    clean = Ridge(alpha=1e-3, washout=5).partial_fit(X[:100], Y[:100])
    clean.partial_fit(X[100:], Y[100:]).solve()
    assert torch.allclose(ridge.weight, clean.weight, atol=1e-12, rtol=0)


def test_ridge_solve_in_float32_statistics_uses_float64():
    X, Y, _, _ = _design(seed=4)
    r32 = Ridge(alpha=1e-4).fit(X.float(), Y.float())
    assert r32.xtx.dtype == F64 and r32.weight.dtype == F64


def test_rls_converges_to_ridge_with_weak_prior():
    X, Y, _, _ = _design(seed=5, n=600)
    alpha = 1e-6
    rls = RLS(alpha=alpha, forgetting=1.0)
    w = torch.zeros(3, X.shape[1], dtype=F64)
    b = torch.zeros(3, dtype=F64)
    for t in range(X.shape[0]):
        rls.update(w, b, X[t : t + 1], Y[t : t + 1])
    # RLS with P(0) = I/alpha minimises the ridge objective with the bias penalised too
    ref = Ridge(alpha=alpha, fit_bias=True).fit(X, Y)
    assert torch.allclose(w, ref.weight, atol=1e-6, rtol=0)
    assert torch.allclose(b, ref.bias, atol=1e-6, rtol=0)


def test_rls_rank_b_update_equals_b_rank_one_updates():
    X, Y, _, _ = _design(seed=6, n=64)
    P1 = torch.eye(13, dtype=F64)
    P2 = P1.clone()
    w1, w2 = torch.zeros(3, 12, dtype=F64), torch.zeros(3, 12, dtype=F64)
    b1, b2 = torch.zeros(3, dtype=F64), torch.zeros(3, dtype=F64)
    for t0 in range(0, 64, 8):
        xb, yb = X[t0 : t0 + 8], Y[t0 : t0 + 8]
        rls_update(P1, w1, b1, xb, xb @ w1.T + b1 - yb)
        for t in range(8):
            x, y = xb[t : t + 1], yb[t : t + 1]
            rls_update(P2, w2, b2, x, x @ w2.T + b2 - y)
    assert torch.allclose(w1, w2, atol=1e-10, rtol=0)
    assert torch.allclose(P1, P2, atol=1e-10, rtol=0)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize(
    ("batch", "native"), [(1, True), (1, False), (4, False)], ids=["native", "torch", "rank-4"]
)
@pytest.mark.parametrize("lam", [0.99, 0.9])
def test_rls_with_forgetting_is_exponentially_weighted_ridge(lam, batch, native, bias, generic):
    # after m updates from P(0) = I/alpha, w minimises
    # sum_j lam^(m-1-j) |w x_j + b - y_j|^2 + lam^m alpha (|w|^2 + b^2),
    # j over the updates (each a batch of samples)
    X, Y, _, _ = _design(seed=9, n=300)
    n, alpha = X.shape[0], 0.5
    m = n // batch
    rls = RLS(alpha=alpha, forgetting=lam)
    w = torch.zeros(3, X.shape[1], dtype=F64)
    b = torch.zeros(3, dtype=F64) if bias else None
    with contextlib.nullcontext() if native else generic:
        for j in range(m):
            rls.update(w, b, X[j * batch : (j + 1) * batch], Y[j * batch : (j + 1) * batch])
    Xa = torch.cat([X, torch.ones(n, 1, dtype=F64)], dim=1) if bias else X  # (n, F)
    weight = (lam ** torch.arange(m - 1, -1, -1, dtype=F64)).repeat_interleave(batch)  # (n,)
    A = Xa.T @ (weight[:, None] * Xa) + lam**m * alpha * torch.eye(Xa.shape[1], dtype=F64)
    ref = torch.linalg.solve(A, Xa.T @ (weight[:, None] * Y)).T  # (3, F)
    assert torch.allclose(w, ref[:, : X.shape[1]], atol=1e-11, rtol=0)
    if bias:
        assert torch.allclose(b, ref[:, -1], atol=1e-11, rtol=0)
    assert torch.allclose(rls.P, torch.linalg.inv(A), atol=1e-12, rtol=1e-10)
    if not native:  # (the C update stores one triangle: its P is symmetric by construction)
        assert torch.equal(rls.P, rls.P.T)  # an asymmetric rounding error grows as lam^-m


@pytest.mark.parametrize("native", [True, False], ids=["native", "torch"])
def test_rls_with_forgetting_survives_unexcited_directions(native, generic):
    # features in a 3-dimensional subspace of 20: P grows as lam^-n in the other 17
    # directions (to ~1e17 here) and rounding can make 1 + r^T P r/lam negative; the
    # update must stay finite and keep fitting the targets
    g = torch.Generator().manual_seed(1)
    basis = torch.randn(3, 20, generator=g, dtype=F64)
    a = torch.randn(3, 2, generator=g, dtype=F64)
    rls = RLS(alpha=1.0, forgetting=0.99)
    w = torch.zeros(2, 20, dtype=F64)
    b = torch.zeros(2, dtype=F64)
    with contextlib.nullcontext() if native else generic:
        for _ in range(4000):
            z = torch.randn(1, 3, generator=g, dtype=F64)
            err = rls.update(w, b, z @ basis, z @ a + 0.3)
    assert float(rls.P.abs().max()) > 1e15  # the wind-up did happen
    assert torch.isfinite(rls.P).all() and torch.isfinite(w).all()
    assert float(err.abs().max()) < 1e-9


def test_rls_forgetting_tracks_a_changing_target():
    g = torch.Generator().manual_seed(7)
    X = torch.randn(2000, 5, generator=g, dtype=F64)
    w_a, w_b = torch.randn(1, 5, generator=g, dtype=F64), torch.randn(1, 5, generator=g, dtype=F64)
    Y = torch.cat([X[:1000] @ w_a.T, X[1000:] @ w_b.T])
    for lam, expect_close in ((0.98, True), (1.0, False)):
        rls = RLS(alpha=1.0, forgetting=lam)
        w = torch.zeros(1, 5, dtype=F64)
        for t in range(2000):
            rls.update(w, None, X[t : t + 1], Y[t : t + 1])
        assert torch.allclose(w, w_b, atol=1e-3) == expect_close


def test_ridge_solve_without_bias_matches_normal_equations():
    X, Y, _, _ = _design(seed=8)
    W, b = ridge_solve(X.T @ X, X.T @ Y, 0.5, fit_bias=False)
    ref = torch.linalg.solve(X.T @ X + 0.5 * torch.eye(12, dtype=F64), X.T @ Y).T
    assert b is None and torch.allclose(W, ref, atol=1e-12)


# ---------------------------------------------------------------------------------------
# through the network
# ---------------------------------------------------------------------------------------


def _esn(n=100, seed=0, dtype=F64):
    net = rg.Network(dt=1.0, dtype=dtype)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", "leaky_tanh", n=n, lr=0.3)
    net.add_edge("in", "res", weights=rg.input_weights(n, 1, 0.2, seed=seed, dtype=dtype))
    net.add_edge(
        "res",
        "res",
        weights=rg.recurrent_weights(n, 0.9, 0.1, seed=seed + 1, dtype=dtype),
        feedback=True,
    )
    return net


def _sine_task(T=600):
    t = np.arange(T + 1)
    s = np.sin(0.2 * t) * np.cos(0.031 * t)
    return s[:-1, None], s[1:, None]


def test_fit_ridge_writes_the_solution_of_the_recorded_states():
    x, y = _sine_task()
    net = _esn()
    states = net.run(x, record=["res"])["res"]
    net.reset()
    ridge = net.fit_ridge(x, y, alpha=1e-6, washout=50)
    ref = Ridge(alpha=1e-6, washout=50).fit(states, torch.as_tensor(y))
    assert torch.allclose(ridge.weight, ref.weight, atol=1e-10)
    edge = net.get_edge("res", "readout")
    assert torch.equal(edge.weight, ridge.weight) and torch.equal(edge.bias, ridge.bias)
    # the readout is now the output node; rerunning from the start reproduces the fit
    net.reset()
    out = net.run(x).output.numpy()
    assert np.sqrt(np.mean((out[50:] - y[50:]) ** 2)) < 0.05 * y.std()


def test_fit_ridge_list_of_sequences_each_from_initial_state():
    x, y = _sine_task(400)
    seqs_x, seqs_y = [x[:200], x[200:]], [y[:200], y[200:]]
    net = _esn(seed=3)
    ridge = net.fit_ridge(seqs_x, seqs_y, alpha=1e-4)
    ref = Ridge(alpha=1e-4)
    probe = _esn(seed=3)
    for sx, sy in zip(seqs_x, seqs_y, strict=True):
        probe.reset()
        ref.partial_fit(probe.run(sx, record=["res"])["res"], torch.as_tensor(sy))
    ref.solve()
    assert torch.allclose(ridge.weight, ref.weight, atol=1e-10)


def test_fit_ridge_chunked_run_equals_one_run():
    x, y = _sine_task(500)
    a, b = _esn(seed=5), _esn(seed=5)
    ra = a.fit_ridge(x, y, alpha=1e-5, chunk=10_000)
    rb = b.fit_ridge(x, y, alpha=1e-5, washout=30, chunk=64)
    rc = _esn(seed=5).fit_ridge(x, y, alpha=1e-5, washout=30)
    assert torch.allclose(rb.weight, rc.weight, atol=1e-10)
    assert ra.n_samples == 500 and rb.n_samples == 470


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (
            {"targets": np.zeros((599, 1))},
            ValueError,
            r"inputs have \(B, T\) = \(1, 600\) but "
            r"targets have \(1, 599\)",
        ),
        ({"targets": np.full((600, 1), np.nan)}, ValueError, "no step to fit: the targets are NaN"),
        ({"edge": ("res", "nowhere")}, KeyError, "no edge 'res' -> 'nowhere'"),
        ({"alpha": -1.0}, ValueError, r"alpha must be a number >= 0, got -1.0"),
    ],
)
def test_fit_ridge_bad_input_fits_nothing(kwargs, exc, match):
    x, y = _sine_task()
    net = _esn()
    net.run(x[:10])
    before = {k: v.clone() for k, v in net.state.items()}
    nodes, edges = list(net.graph.nodes), list(net.graph.edges)
    args = {"inputs": x, "targets": y, **kwargs}
    with pytest.raises(exc, match=match):
        net.fit_ridge(**args)
    assert list(net.graph.nodes) == nodes and list(net.graph.edges) == edges
    assert all(torch.equal(before[k], v) for k, v in net.state.items())


def test_fit_rls_bad_input_fits_nothing():
    x, y = _sine_task()
    net = _esn()
    nodes = list(net.graph.nodes)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        net.fit_rls(x, y, alpha=-1.0)
    with pytest.raises(ValueError, match="targets contain NaN"):
        net.fit_rls(x, np.full_like(y, np.nan))
    with pytest.raises(ValueError, match=r"feedback_weights must have shape \(n_source, n_out\)"):
        net.fit_rls(x, y, feedback_weights=np.ones((3, 1)))
    assert list(net.graph.nodes) == nodes


def test_fit_rls_open_loop_approaches_ridge():
    x, y = _sine_task(800)
    a, b = _esn(seed=11), _esn(seed=11)
    a.fit_ridge(x, y, alpha=1e-6, bias=False)
    rec = b.fit_rls(x, y, alpha=1e-6)
    wa, wb = a.get_edge("res", "readout").weight, b.get_edge("res", "readout").weight
    # with a weak prior the RLS solution after one pass is the ridge solution
    assert torch.allclose(wa, wb, atol=1e-4 * wa.abs().max())
    assert rec.loss.shape == (800,) and rec.loss[-100:].mean() < 1e-4 * rec.loss[:10].mean()


def test_fit_rls_batch_elements_are_extra_samples():
    x, y = _sine_task(300)
    xb = np.stack([x, 0.5 * x, -x])
    yb = np.stack([y, 0.5 * y, -y])
    net = _esn(seed=12)
    rec = net.fit_rls(xb, yb, alpha=1.0)
    assert rec.output.shape == (3, 300, 1)
    # the same regression fitted by ridge on all samples, with the RLS prior as penalty
    probe = _esn(seed=12)
    states = probe.run(xb, record=["res"])["res"]
    ref = Ridge(alpha=1.0, fit_bias=False).fit(states, torch.as_tensor(yb))
    assert torch.allclose(net.get_edge("res", "readout").weight, ref.weight, atol=1e-8)


def test_teacher_forcing_feeds_the_target_back():
    # readout -> res feedback; with teacher forcing, res must see the target one step later
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_diffeq_node("res", "leaky_tanh", n=1, lr=1.0, activation="identity")
    net.add_func_node("out", 1)
    net.add_edge("res", "out", weights=[[0.0]], train="rls")
    net.add_edge("out", "res", weights=[[1.0]], feedback=True)
    target = np.arange(1, 11, dtype=float)[:, None]
    rec = net.fit_rls(
        None, target, edge=("res", "out"), teacher_forcing=True, record=["res"], alpha=1e9
    )
    # res(t) = out(t-1) = target(t-1) under teacher forcing; res(0) reads the zero init
    np.testing.assert_allclose(rec["res"][:, 0].numpy(), np.r_[0.0, target[:-1, 0]])


def test_force_closed_loop_learns_and_generates():
    """Sussillo & Abbott's FORCE, closed loop: the network learns to generate a two-sine
    pattern from its own fed-back output. Whether a given reservoir draw keeps generating
    after learning stops varies from draw to draw (the benchmark reports the spread); this
    draw does."""
    n, dt, tau, g = 500, 0.1, 1.0, 1.5
    gen = torch.Generator().manual_seed(1)
    J = g * torch.randn(n, n, generator=gen, dtype=F64) / math.sqrt(n)
    w_f = (2 * torch.rand(n, 1, generator=gen, dtype=F64) - 1).numpy()
    x0 = 0.5 * torch.randn(n, generator=gen, dtype=F64)
    net = rg.Network(dt=dt, dtype=F64)
    net.add_diffeq_node("res", "leaky_integrator", n=n, tau=tau, init={"v": x0})
    net.add_edge("res", "res", weights=J, feedback=True)
    steps = int(1200 / dt)
    t = np.arange(2 * steps) * dt
    f = ((np.sin(np.pi * t / 30) + 0.5 * np.sin(2 * np.pi * t / 30)) / 1.5)[:, None]
    rec = net.fit_rls(None, f[:steps], alpha=1.0, update_steps=2, feedback_weights=w_f)
    assert rec.output.shape == (steps, 1) and rec.loss.shape == (steps // 2,)
    assert np.abs(rec.output.numpy() - f[:steps]).mean() < 0.01  # tracks while learning
    gen_out = net.run(steps=steps).output.numpy()  # learning off, own output fed back
    assert np.abs(gen_out - f[steps:]).mean() < 0.01


def test_fit_rls_continues_across_calls_with_its_trainer():
    """Two calls that pass the first call's trainer on equal one call over the whole
    sequence: P, the weights and the network's state carry over."""
    x, y = _sine_task(400)
    whole, split = _esn(seed=13), _esn(seed=13)
    rec = whole.fit_rls(x, y, alpha=0.5, bias=True, update_steps=2, washout=10)
    first = split.fit_rls(x[:250], y[:250], alpha=0.5, bias=True, update_steps=2, washout=10)
    second = split.fit_rls(
        x[250:], y[250:], edge=("res", "readout"), bias=True, update_steps=2, trainer=first.trainer
    )
    assert second.trainer is first.trainer and first.trainer.n_updates == rec.trainer.n_updates
    for name in ("weight", "bias"):
        expected = getattr(whole.get_edge("res", "readout"), name)
        torch.testing.assert_close(
            getattr(split.get_edge("res", "readout"), name), expected, rtol=0, atol=1e-10
        )
    torch.testing.assert_close(first.trainer.P, rec.trainer.P, rtol=0, atol=1e-10)
    torch.testing.assert_close(
        torch.cat([first.loss, second.loss]), rec.loss, rtol=1e-9, atol=1e-14
    )
    assert rec.loss[-20:].mean() < 1e-2 * rec.loss[:5].mean()  # it learned
    nodes = list(split.graph.nodes)
    with pytest.raises(ValueError, match=r"trainer's P is \(101, 101\)"):
        split.fit_rls(x, y, edge=("res", "readout"), bias=False, trainer=first.trainer)
    with pytest.raises(ValueError, match=r"trainer's P is \(101, 101\)"):
        split.fit_rls(x, y, readout="other", trainer=first.trainer)  # before adding "other"
    assert list(split.graph.nodes) == nodes
    with pytest.raises(TypeError, match="trainer must be the RLS"):
        split.fit_rls(x, y, edge=("res", "readout"), trainer="rls")


@pytest.mark.parametrize(
    "case",
    [
        {"bias": True, "update_steps": 3, "washout": 5, "forgetting": 0.99},
        {"bias": False, "update_steps": 1, "washout": 0, "teacher_forcing": True},
        {"bias": True, "update_steps": 2, "washout": 1, "batch": 3},
        {"bias": True, "update_steps": 4, "washout": 2, "readout_fn": "tanh"},
        {"bias": True, "update_steps": 3, "washout": 4, "batch": 2, "chunk": 7},
        {"bias": False, "update_steps": 1, "washout": 0, "chunk": 1},
        {"bias": False, "update_steps": 2, "washout": 3, "readout_fn": "tanh", "fixed": 0.5},
    ],
)
def test_open_loop_rls_replays_the_updates_of_the_loop(case, monkeypatch):
    """A readout that feeds nothing trains by replay after the run (in chunks of the run
    for long ones); that equals the updates made inside the loop (forced here) in outputs,
    recordings, errors, weights, P and the held state."""
    case = dict(case)
    batch, fn, chunk = case.pop("batch", None), case.pop("readout_fn", None), case.pop("chunk", 0)
    fixed = case.pop("fixed", None)  # a bias on the edge that the fit leaves as it is
    x, y = _sine_task(T=300)
    if batch:  # batch elements: shifted copies of the task
        x = np.stack([np.roll(x, 7 * k, axis=0) for k in range(batch)])
        y = np.stack([np.roll(y, 7 * k, axis=0) for k in range(batch)])

    def fit(replay: bool):
        net = _esn(n=60)
        kwargs = dict(case)
        if fn:
            net.add_func_node("out", 1, fn)
            has_bias = case["bias"] or fixed is not None
            net.add_edge("res", "out", weights=torch.zeros(1, 60, dtype=F64), bias=has_bias)
            if fixed is not None:
                net.get_edge("res", "out").bias.data.fill_(fixed)
            kwargs["edge"] = ("res", "out")
        readout = kwargs.get("edge", ("res", "readout"))[1]
        if not replay:
            monkeypatch.setattr(rg.Network, "_feeds_nothing", lambda self, edge: False)
        elif chunk:  # replay in chunks of `chunk` steps
            monkeypatch.setattr(_fitting, "_REPLAY_ELEMENTS", chunk * (batch or 1) * 60)
        rec = net.fit_rls(
            x, y, alpha=0.5, record=["res", readout], sampling_steps=2, cutoff=3, **kwargs
        )
        monkeypatch.undo()
        edge = net.get_edge("res", readout)
        after = net.run(x[..., :20, :]).output  # continues from the held state
        return rec, edge, after, readout

    (a, ea, after_a, readout), (b, eb, after_b, _) = fit(True), fit(False)
    tol = {"rtol": 0, "atol": 1e-11}
    torch.testing.assert_close(a.output, b.output, **tol)
    torch.testing.assert_close(a["res"], b["res"], **tol)
    torch.testing.assert_close(a[readout], b[readout], **tol)
    assert torch.equal(a.steps, b.steps) and a.steps[0] == 3 and a.steps[1] == 5
    torch.testing.assert_close(a.loss, b.loss, **tol)
    torch.testing.assert_close(ea.weight, eb.weight, **tol)
    if case["bias"]:
        torch.testing.assert_close(ea.bias, eb.bias, **tol)
    torch.testing.assert_close(a.trainer.P, b.trainer.P, **tol)
    torch.testing.assert_close(after_a, after_b, **tol)
    assert float(ea.weight.abs().sum()) > 0.1  # it learned something


@pytest.mark.parametrize("extra", ["none", "static edge", "second bias edge", "fixed bias"])
def test_closed_loop_rls_output_uses_the_live_weights_and_bias(extra):
    """Inside the loop the readout's output of each step uses the weights and the bias as
    the previous update left them: its squared distance to the target is that update's
    a-priori error. Also when the readout has a static input edge (whose sum is
    precomputed), a second biased edge, or a bias the fit leaves fixed (bias=False)."""
    x, y = _sine_task(T=200)
    net = _esn(n=50)
    net.add_func_node("out", 1)
    bias0 = 0.2 if extra == "fixed bias" else 0.0
    net.add_edge("res", "out", weights=torch.zeros(1, 50, dtype=F64), bias=True)
    net.get_edge("res", "out").bias.data.fill_(bias0)
    if extra == "static edge":
        net.add_edge("in", "out", weights=torch.full((1, 1), 0.2, dtype=F64))
    if extra == "second bias edge":
        net.add_func_node("h", 50, "tanh")
        net.add_edge("res", "h", weights=torch.eye(50, dtype=F64))
        net.add_edge("h", "out", weights=torch.full((1, 50), 0.01, dtype=F64), bias=True)
    fb = 0.1 * torch.ones(50, 1, dtype=F64)
    train_bias = extra != "fixed bias"
    rec = net.fit_rls(x, y, edge=("res", "out"), alpha=1.0, bias=train_bias, feedback_weights=fb)
    b = float(net.get_edge("res", "out").bias)
    assert (abs(b) > 1e-3) if train_bias else (b == bias0)
    torch.testing.assert_close(
        (rec.output[:, 0] - torch.as_tensor(y[:, 0])).square(), rec.loss, rtol=0, atol=1e-12
    )
    # and it learned: over the last quarter its error is a fraction of the untrained one
    out, target = rec.output[-50:, 0], torch.as_tensor(y[-50:, 0])
    ratio = (out - target).abs().mean() / (target - bias0).abs().mean()
    assert ratio < 0.3, float(ratio)


def test_closed_loop_rls_from_spikes_sees_its_updates():
    """A readout of spikes with several outputs: the event-driven product of spikes uses a
    copy of W^T made when the run starts, except for an edge a hook writes (RLS)."""
    gen = torch.Generator().manual_seed(0)
    x, y1 = _sine_task(T=300)
    y = np.concatenate([y1, -y1], 1)
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 1)
    net.add_diffeq_node("lif", "lif", n=40, tau_m=5.0, v_th=0.5)
    net.add_edge("in", "lif", weights=2.0 * torch.randn(40, 1, generator=gen, dtype=F64))
    w = 0.1 * torch.randn(40, 40, generator=gen, dtype=F64)
    net.add_edge("lif", "lif", weights=w, feedback=True)
    net.add_func_node("out", 2)
    net.add_edge("lif", "out", weights=torch.zeros(2, 40, dtype=F64))
    fb = 0.1 * torch.ones(40, 2, dtype=F64)
    rec = net.fit_rls(x, y, edge=("lif", "out"), alpha=1.0, feedback_weights=fb)
    assert float(rec.output.abs().max()) > 0.5  # the readout moved during the run
    err = (rec.output - torch.as_tensor(y)).square().mean(1)
    torch.testing.assert_close(err, rec.loss, rtol=0, atol=1e-12)


@pytest.mark.parametrize("fit", ["fit_ridge", "fit_rls"])
def test_a_masked_readout_edge_is_refused(fit):
    """A mask would zero weights of the least-squares solution after the fit: refused."""
    x, y = _sine_task(T=100)
    net = _esn(n=20)
    net.add_func_node("out", 1)
    w = torch.full((1, 20), 0.01, dtype=F64)
    net.add_edge("res", "out", weights=w, mask=(torch.arange(20) >= 5)[None])
    with pytest.raises(ValueError, match="'res' -> 'out' has a connectivity mask"):
        getattr(net, fit)(x, y, edge=("res", "out"), bias=False)
    assert torch.equal(net.get_edge("res", "out").weight, w)


def test_rls_into_a_second_input_counts_only_that_inputs_other_edges():
    """An edge into the readout's second input (target_var): an edge into its first input
    is not part of the trained input and leaves the fit as it is."""
    x, y = _sine_task(T=300)

    def fit(other: bool):
        net = _esn(n=30)
        net.add_diffeq_node("ro", "li", n=1, tau=1.0)  # inputs I_ext, r_in
        net.add_edge("res", "ro", weights=torch.zeros(1, 30, dtype=F64), target_var="r_in")
        if other:
            net.add_edge(
                "in", "ro", weights=torch.full((1, 1), 0.01, dtype=F64), target_var="I_ext"
            )
        rec = net.fit_rls(x, y, edge=("res", "ro"), alpha=1.0)
        return rec.loss, net.get_edge("res", "ro").weight

    (loss_a, w_a), (loss_b, w_b) = fit(False), fit(True)
    torch.testing.assert_close(loss_b, loss_a, rtol=0, atol=1e-12)
    torch.testing.assert_close(w_b, w_a, rtol=0, atol=1e-12)
    assert float(loss_a[-20:].mean()) < 0.1 * float(loss_a[:20].mean())


def test_rls_refuses_an_edge_computed_before_the_loop_and_adds_nothing():
    """An edge from the input node is applied before the time loop: RLS inside the loop
    could not update it. Refused, with the network as it was."""
    x, y = _sine_task(T=50)
    net = _esn(n=20)
    net.add_func_node("out", 1)
    net.add_edge("res", "out", weights=torch.full((1, 20), 0.05, dtype=F64))
    net.add_edge("in", "out", weights=torch.zeros(1, 1, dtype=F64))
    edges = sorted(net.graph.edges)
    with pytest.raises(ValueError, match="'in' -> 'out' leaves a node computed before the"):
        net.fit_rls(x, y, edge=("in", "out"))
    assert sorted(net.graph.edges) == edges
    assert torch.equal(net.get_edge("in", "out").weight, torch.zeros(1, 1, dtype=F64))


def test_rls_on_a_network_without_state_refuses_and_adds_no_readout():
    x, y = _sine_task(T=50)
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 1)
    net.add_func_node("h", 4, "tanh")
    net.add_edge("in", "h", weights=torch.ones(4, 1, dtype=F64))
    with pytest.raises(ValueError, match="does not depend on the network's state"):
        net.fit_rls(x, y)
    assert sorted(net.graph.nodes) == ["h", "in"]
    assert net.compile().output_node == "h"


def test_ridge_solve_reads_the_upper_triangle_only():
    X, Y, _, _ = _design(seed=9, f=5)
    xtx = X.T @ X
    full = ridge_solve(xtx, X.T @ Y, 0.1, fit_bias=False)[0]
    garbage = xtx.triu() + torch.full_like(xtx, float("nan")).tril(-1)
    assert torch.allclose(ridge_solve(garbage, X.T @ Y, 0.1, fit_bias=False)[0], full)


@pytest.mark.parametrize("target_dtype", [F64, torch.float32])
def test_ridge_solve_of_an_indefinite_matrix_falls_back_to_solve(target_dtype):
    """Not positive definite: no Cholesky factor, the linear system is still solved (in
    the statistics' float64, whatever the targets' dtype)."""
    a = torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=F64)  # eigenvalues 3 and -1
    b = torch.tensor([[1.0], [0.0]], dtype=target_dtype)
    W, _ = ridge_solve(a, b, 0.0, fit_bias=False)
    assert W.dtype == F64
    assert torch.allclose(W.T, torch.linalg.solve(a, b.to(F64)), atol=1e-14)
    assert torch.allclose(W, torch.tensor([[-1 / 3, 2 / 3]], dtype=F64), atol=1e-14)


def test_ridge_statistics_are_the_augmented_gram_matrix():
    X, Y, _, _ = _design(seed=10, f=6)
    ridge = Ridge(alpha=0.0).partial_fit(X[:150], Y[:150]).partial_fit(X[150:], Y[150:])
    aug = torch.cat([X, torch.ones(len(X), 1, dtype=F64)], dim=1)
    torch.testing.assert_close(ridge.xtx, aug.T @ aug, rtol=1e-13, atol=1e-10)
    torch.testing.assert_close(ridge.xty, aug.T @ Y, rtol=1e-13, atol=1e-10)


def test_ridge_solve_is_differentiable():
    X, Y, _, _ = _design(seed=11, n=40, f=3, k=2)
    xtx, xty = X.T @ X, (X.T @ Y).requires_grad_()
    W, _ = ridge_solve(xtx, xty, 0.3, fit_bias=False)
    ref = torch.linalg.solve(xtx + 0.3 * torch.eye(3, dtype=F64), xty.detach()).T
    assert torch.allclose(W.detach(), ref, atol=1e-12)
    assert torch.autograd.gradcheck(lambda b: ridge_solve(xtx, b, 0.3, fit_bias=False)[0], (xty,))


def test_ridge_statistics_merge_in_place():
    """``xtx`` is the statistics themselves: adding another fit's to it is one fit of both."""
    X, Y, _, _ = _design(seed=12, f=6)
    one, two = Ridge(alpha=0.1).partial_fit(X[:150], Y[:150]), Ridge(alpha=0.1)
    two.partial_fit(X[150:], Y[150:])
    one.xtx.add_(two.xtx)
    one.xty.add_(two.xty)
    one.n_samples += two.n_samples
    whole = Ridge(alpha=0.1).fit(X, Y)
    W, b = one.solve()
    assert torch.allclose(W, whole.weight, atol=1e-12) and torch.allclose(b, whole.bias, atol=1e-12)


# --------------------------------------------------------------------------------------
# centred statistics: accuracy at high condition, streaming and merging
# --------------------------------------------------------------------------------------


def _ill_conditioned(seed: int, m: int = 3000, n: int = 200, cond: float = 1e9):
    """Features with a mean of the order of their spread and a Gram condition ``cond`` once
    centred (the singular values of the centred data span ``sqrt(cond)``)."""
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.standard_normal((m, n)))
    v, _ = np.linalg.qr(rng.standard_normal((n, n)))
    s = np.logspace(0, -np.log10(np.sqrt(cond)), n)
    X = (u * s) @ v.T * 10 + 0.3 + 0.2 * rng.standard_normal(n)
    Y = X @ rng.standard_normal((n, 2)) + 0.5 + 1e-3 * rng.standard_normal((m, 2))
    return X, Y


def _svd_ridge(X, Y, alpha):
    """The ridge solution with an unpenalised bias from the SVD of the centred data."""
    mx, my = X.mean(0), Y.mean(0)
    u, s, vt = np.linalg.svd(X - mx, full_matrices=False)
    W = ((vt.T * (s / (s**2 + alpha))) @ (u.T @ (Y - my))).T
    return W, my - W @ mx


@pytest.mark.parametrize("alpha", [1e-8, 1e-6])
def test_ridge_at_condition_1e9_is_close_to_the_svd_solution(alpha):
    X, Y = _ill_conditioned(0)
    W_ref, b_ref = _svd_ridge(X, Y, alpha)
    centred = Ridge(alpha=alpha)
    for k in range(0, len(X), 700):  # streamed in chunks
        centred.partial_fit(X[k : k + 700], Y[k : k + 700])
    W, b = (t.numpy() for t in centred.solve())
    err = np.linalg.norm(W - W_ref) / np.linalg.norm(W_ref)
    # the augmented normal equations (what reading xtx switches to) for comparison
    augmented = Ridge(alpha=alpha).partial_fit(X, Y)
    augmented.xtx  # noqa: B018 - hands the statistics out, as augmented sums
    err_aug = np.linalg.norm(augmented.solve()[0].numpy() - W_ref) / np.linalg.norm(W_ref)
    assert err < 2e-7, err
    assert err < err_aug / 30, (err, err_aug)
    np.testing.assert_allclose(b, b_ref, rtol=0, atol=1e-6 * np.abs(b_ref).max())


def test_streamed_centred_statistics_equal_one_pass():
    X, Y, _, _ = _design(seed=20, n=900, f=8)
    whole = Ridge(alpha=1e-3).fit(X, Y)
    streamed = Ridge(alpha=1e-3)
    for k in range(0, 900, 37):
        streamed.partial_fit(X[k : k + 37], Y[k : k + 37])
    W, b = streamed.solve()
    torch.testing.assert_close(W, whole.weight, rtol=0, atol=1e-12)
    torch.testing.assert_close(b, whole.bias, rtol=0, atol=1e-12)
    assert streamed.n_samples == 900


@pytest.mark.parametrize("fit_bias", [True, False])
@pytest.mark.parametrize("read_first", [False, True], ids=["centred", "after-xtx"])
def test_ridge_merge_is_one_fit_of_both(fit_bias, read_first):
    X, Y, _, _ = _design(seed=21, n=500, f=6)
    one = Ridge(alpha=0.1, fit_bias=fit_bias).partial_fit(X[:200], Y[:200])
    two = Ridge(alpha=0.1, fit_bias=fit_bias).partial_fit(X[200:], Y[200:])
    if read_first:
        one.xtx  # noqa: B018 - the augmented form on one side only
    before = two.solve()
    one.merge(two)
    assert one.n_samples == 500
    whole = Ridge(alpha=0.1, fit_bias=fit_bias).fit(X, Y)
    W, b = one.solve()
    torch.testing.assert_close(W, whole.weight, rtol=0, atol=1e-11)
    if fit_bias:
        torch.testing.assert_close(b, whole.bias, rtol=0, atol=1e-11)
    after = two.solve()  # the other is left as it was
    torch.testing.assert_close(after[0], before[0], rtol=0, atol=0)


def test_ridge_merge_refuses_what_does_not_fit():
    X, Y, _, _ = _design(seed=22, n=100, f=4)
    one = Ridge(alpha=0.1).partial_fit(X, Y)
    W = one.solve()[0].clone()
    with pytest.raises(ValueError, match="fit_bias=True"):
        one.merge(Ridge(alpha=0.1, fit_bias=False).partial_fit(X, Y))
    with pytest.raises(ValueError, match="widths differ"):
        one.merge(Ridge(alpha=0.1).partial_fit(X[:, :3], Y))
    with pytest.raises(ValueError, match="must be a Ridge"):
        one.merge("statistics")
    assert one.n_samples == 100
    torch.testing.assert_close(one.solve()[0], W, rtol=0, atol=0)


def _force_reference(W, W_in, W_fb, lr, u, y, alpha, every, after, closed, skip=None):
    """FORCE written out in numpy: ``x(t) = (1-lr) x + lr tanh(W x + W_in u(t) + W_fb z(t-1))``
    (``W_fb = 0`` when not ``closed``), ``z(t) = W_out x(t)``; on steps ``t % every == 0``
    ``k = P x / (1 + x^T P x)``, ``P -= k x^T P``, ``W_out -= (W_out x - y) k^T``; the step
    passes on ``W_out x(t)`` of the weights after the update when ``after``; a ``skip``
    matrix adds ``skip u(t)`` to ``z(t)``. Returns the outputs passed on ``(T, n_out)`` and
    the final ``W_out``."""
    n, n_out = W.shape[0], y.shape[1]
    x, z, P = np.zeros(n), np.zeros(n_out), np.eye(n) / alpha
    w_out, outs = np.zeros((n_out, n)), np.empty((len(y), n_out))
    skip = np.zeros((n_out, u.shape[1])) if skip is None else skip
    for t in range(len(y)):
        fb = W_fb @ z if closed else 0.0
        x = (1 - lr) * x + lr * np.tanh(W @ x + W_in @ u[t] + fb)
        z = w_out @ x + skip @ u[t]
        if t % every == 0:
            px = P @ x
            k = px / (1.0 + x @ px)
            P -= np.outer(k, px)
            w_out -= np.outer(z - y[t], k)
            if after:
                z = w_out @ x + skip @ u[t]
        outs[t] = z
    return outs, w_out


@pytest.mark.parametrize("closed", [True, False], ids=["closed-loop", "open-loop"])
@pytest.mark.parametrize("order", ["before", "after"])
def test_fit_rls_feedback_order_equals_a_numpy_force(closed, order):
    """Both feedback orders against FORCE written out by hand, in the loop (the readout fed
    back) and replayed (a readout that feeds nothing); the orders give different runs."""
    n, lr, T = 40, 0.5, 300
    rng = np.random.default_rng(7)
    W = rng.standard_normal((n, n)) * 0.9 / math.sqrt(n)
    W_in, W_fb = rng.uniform(-1, 1, (n, 1)), rng.uniform(-1, 1, (n, 1))
    u = np.sin(np.arange(T) / 5.0)[:, None]
    y = np.cos(np.arange(T) / 5.0)[:, None]
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", "leaky_tanh", n=n, lr=lr, bias=0.0)
    net.add_edge("in", "res", weights=W_in)
    net.add_edge("res", "res", weights=W, feedback=True)
    fb = W_fb if closed else None
    rec = net.fit_rls(u, y, alpha=0.5, update_steps=2, feedback_weights=fb, feedback_order=order)
    ref, w_ref = _force_reference(W, W_in, W_fb, lr, u, y, 0.5, 2, order == "after", closed)
    np.testing.assert_allclose(rec.output.numpy(), ref, rtol=0, atol=1e-10)
    weight = net.get_edge("res", "readout").weight.detach().numpy()
    np.testing.assert_allclose(weight, w_ref, rtol=0, atol=1e-10)
    other, _ = _force_reference(W, W_in, W_fb, lr, u, y, 0.5, 2, order != "after", closed)
    assert np.abs(other - ref).max() > 1e-3  # the order shows in the outputs


def test_fit_rls_feedback_order_after_keeps_the_readouts_other_inputs():
    """A skip edge input -> readout: the output passed on after the update keeps it."""
    n, T = 30, 200
    rng = np.random.default_rng(9)
    W = rng.standard_normal((n, n)) * 0.8 / math.sqrt(n)
    W_in, W_fb, S = (rng.uniform(-1, 1, s) for s in ((n, 1), (n, 1), (1, 1)))
    u, y = rng.uniform(-1, 1, (T, 1)), np.sin(np.arange(T) / 4.0)[:, None]
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", "leaky_tanh", n=n, lr=0.4, bias=0.0)
    net.add_func_node("readout", 1)
    net.add_edge("in", "res", weights=W_in)
    net.add_edge("res", "res", weights=W, feedback=True)
    net.add_edge("res", "readout", weights=np.zeros((1, n)), train="rls")
    net.add_edge("in", "readout", weights=S)
    net.add_edge("readout", "res", weights=W_fb, feedback=True)
    rec = net.fit_rls(u, y, feedback_order="after")
    ref, _ = _force_reference(W, W_in, W_fb, 0.4, u, y, 1.0, 1, True, True, skip=S)
    np.testing.assert_allclose(rec.output.numpy(), ref, rtol=0, atol=1e-10)


def test_fit_rls_feedback_order_after_shows_in_a_subsampled_recording():
    n, T = 30, 120
    rng = np.random.default_rng(8)
    W = rng.standard_normal((n, n)) * 0.8 / math.sqrt(n)
    W_in, W_fb = rng.uniform(-1, 1, (n, 1)), rng.uniform(-1, 1, (n, 1))
    u, y = rng.uniform(-1, 1, (T, 1)), np.sin(np.arange(T) / 4.0)[:, None]
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", "leaky_tanh", n=n, lr=0.4, bias=0.0)
    net.add_edge("in", "res", weights=W_in)
    net.add_edge("res", "res", weights=W, feedback=True)
    rec = net.fit_rls(
        u, y, feedback_weights=W_fb, feedback_order="after", record=["readout"], sampling_steps=3
    )
    ref, _ = _force_reference(W, W_in, W_fb, 0.4, u, y, 1.0, 1, True, True)
    np.testing.assert_allclose(rec["readout"].numpy(), ref[rec.steps.numpy()], atol=1e-10)


def test_fit_rls_feedback_order_refusals_change_nothing():
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", "leaky_tanh", n=5, lr=0.5)
    net.add_edge("in", "res", weights=np.ones((5, 1)))
    u, y = np.zeros((10, 1)), np.zeros((10, 1))
    with pytest.raises(ValueError, match="fit_rls: feedback_order must be 'before' or 'after'"):
        net.fit_rls(u, y, feedback_order="post")
    with pytest.raises(ValueError, match="feedback_order='after' with teacher_forcing=True"):
        net.fit_rls(u, y, feedback_order="after", teacher_forcing=True)
    assert sorted(net.graph.nodes) == ["in", "res"]  # no readout added
    net.add_diffeq_node("li", "leaky_integrator", n=1, tau=2.0)
    net.add_edge("res", "li", weights=np.zeros((1, 5)), train="rls")
    before = net.get_edge("res", "li").weight.clone()
    with pytest.raises(ValueError, match="'after' needs a function node as the readout"):
        net.fit_rls(u, y, feedback_order="after")
    assert torch.equal(net.get_edge("res", "li").weight, before)
