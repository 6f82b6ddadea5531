"""The native reservoir loop: same numbers as the generic loop, and used only where valid."""

from __future__ import annotations

import shutil
from contextlib import nullcontext

import _reference as ref
import numpy as np
import pytest
import torch

import rnngraph as rg
from rnngraph import _native
from rnngraph.network import _compiled
from rnngraph.network._reservoir import reservoir_unusable
from rnngraph.nodes import Context

pytestmark = pytest.mark.skipif(
    not (shutil.which("cc") or shutil.which("gcc")), reason="no C compiler"
)


def test_library_builds():
    assert _native.available(), _native.failure()


N = 60


def reservoir(
    dtype=torch.float64,
    sparse=False,
    mask=False,
    edge_bias=False,
    readout=False,
    lr=0.3,
    seed=0,
):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(N, N, generator=g, dtype=dtype) * 0.25
    w = w * (torch.rand(N, N, generator=g) < 0.3)
    net = rg.Network(dt=1.0, dtype=dtype)
    net.add_func_node("in", 2)
    net.add_diffeq_node(
        "res", "leaky_tanh", n=N, lr=lr, bias=0.2 * torch.randn(N, generator=g, dtype=dtype)
    )
    net.add_edge("in", "res", weights=torch.randn(N, 2, generator=g, dtype=dtype))
    net.add_edge(
        "res",
        "res",
        weights=w,
        feedback=True,
        sparse=sparse,
        mask=(torch.rand(N, N, generator=g) < 0.5).to(dtype) if mask else None,
        bias=0.1 * torch.randn(N, generator=g, dtype=dtype) if edge_bias else None,
    )
    if readout:
        net.add_func_node("out", 3, activation_function="tanh")
        net.add_edge("res", "out", weights=torch.randn(3, N, generator=g, dtype=dtype) * 0.3)
    return net


def population(kind, label, w_in, w, dt=1.0, edge=None, **params):
    """``in`` -> ``label`` (a ``kind`` node of ``len(w)`` units, ``params``) through ``w_in``,
    and its feedback self-edge ``w`` (``edge``: that edge's further options)."""
    net = rg.Network(dt=dt, dtype=w.dtype)
    net.add_func_node("in", w_in.shape[1])
    net.add_diffeq_node(label, kind, n=w.shape[0], **params)
    net.add_edge("in", label, weights=w_in)
    net.add_edge(label, label, weights=w, feedback=True, **(edge or {}))
    return net


def inputs(steps=257, dtype=torch.float64, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(steps, 2, generator=g, dtype=dtype)


def runs_natively(net, batch=1, grad=False, hooks=()):
    model = net.compile()
    if hooks:
        ctx = Context(grad, model._ref.device, model._ref.dtype, model.dt)
        plan = model.plan
        return reservoir_unusable(plan.reservoir, plan.reservoir_why, ctx, batch, hooks) is None
    return model.explain(batch, grad).loop == "native reservoir loop"


def both_ways(net, x, names, generic, atol=1e-12):
    """The same run from the initial state with the native paths on, then off; the
    recordings of ``names``, the output and the final state of each, and checks that every
    entry agrees to ``atol``."""
    obs = rg.Observer(names)
    native = net.compile().run(x, observer=obs)
    net.reset()
    with generic:
        reference = net.compile().run(x, observer=obs)
    torch.testing.assert_close(native.output, reference.output, rtol=0, atol=atol)
    for name in names:
        torch.testing.assert_close(native[name], reference[name], rtol=0, atol=atol)
    for key, value in reference.state.items():
        torch.testing.assert_close(native.state[key], value, rtol=0, atol=atol)
    return native, reference


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"sparse": True},
        {"mask": True},
        {"edge_bias": True},
        {"readout": True},
        {"lr": torch.linspace(0.1, 0.9, N, dtype=torch.float64)},
    ],
    ids=["dense", "csr", "masked", "edge-bias", "readout", "per-unit-lr"],
)
def test_native_equals_generic_loop_float64(options, generic):
    net = reservoir(**options)
    assert runs_natively(net)
    names = ["res", "res.x"] + (["out"] if options.get("readout") else [])
    _, reference = both_ways(net, inputs(), names, generic)
    # not trivially equal: the states move
    assert reference["res"].std() > 0.1


def test_native_float32_and_numpy_reference():
    """float32 native run against the ESN update written in float64 numpy."""
    net = reservoir(dtype=torch.float32, sparse=True)
    assert runs_natively(net)
    x = inputs(dtype=torch.float32)
    y = net.compile().run(x).output.numpy()
    res, edge = net.get_node("res"), net.get_edge("res", "res")
    w = edge.effective_weight().to_dense().double().numpy()
    w_in = net.get_edge("in", "res").weight.double().numpy()
    b, state, ref = res.bias.double().numpy(), np.zeros(N), []
    for u in x.double().numpy():
        state = 0.7 * state + 0.3 * np.tanh(w @ state + w_in @ u + b)
        ref.append(state)
    np.testing.assert_allclose(y, np.array(ref), rtol=0, atol=2e-5)


def test_chunks_and_consecutive_runs_continue_exactly(monkeypatch):
    net = reservoir(readout=True)
    x = inputs(300)
    whole = net.compile().run(x, observer=rg.Observer(["res"], every=3, start=5))
    net.reset()
    monkeypatch.setattr(_compiled, "_CHUNK_ELEMENTS", 7 * (N + 2))  # 7-step chunks
    first = net.compile().run(x[:130])
    second = net.compile().run(x[130:])
    torch.testing.assert_close(
        torch.cat([first.output, second.output]), whole.output, rtol=0, atol=1e-13
    )
    net.reset()
    chunked = net.compile().run(x, observer=rg.Observer(["res"], every=3, start=5))
    torch.testing.assert_close(chunked["res"], whole["res"], rtol=0, atol=1e-13)
    assert chunked["res"].shape == (len(range(5, 300, 3)), N)


def test_run_without_input_and_caller_state_untouched(generic):
    net = reservoir()
    c = net.compile()
    start = c.init_state(1)
    start["res.x"] = torch.full((1, N), 0.5, dtype=torch.float64)
    start["res->res@1"] = torch.full((1, N), -0.5, dtype=torch.float64)
    kept = {k: v.clone() for k, v in start.items()}
    native = c.run(None, steps=40, state=start)
    for k in start:
        assert torch.equal(start[k], kept[k])
    with generic:
        reference = c.run(None, steps=40, state=start)
    torch.testing.assert_close(native.output, reference.output, rtol=0, atol=1e-12)


def test_native_path_only_where_valid():
    net = reservoir()
    c = net.compile()
    assert runs_natively(net)
    assert not runs_natively(net, batch=2)  # batches: the torch loop
    assert runs_natively(reservoir(sparse=True), batch=2)  # CSR at B > 1: the batched loop
    assert not runs_natively(reservoir(readout=True), batch=2)
    assert not runs_natively(net, grad=True)
    assert not runs_natively(net, hooks=(object(),))
    other = reservoir()
    other.add_diffeq_node("res2", "leaky_tanh", n=4)
    other.add_edge("res", "res2", weights=torch.zeros(4, N, dtype=torch.float64))
    assert other.compile().plan.reservoir is None  # a second DE node
    relu = rg.Network(dt=1.0)
    relu.add_func_node("in", 1)
    relu.add_diffeq_node("res", "leaky_tanh", n=4, activation="relu")
    relu.add_edge("in", "res", weights=torch.ones(4, 1))
    relu.add_edge("res", "res", weights=torch.eye(4), feedback=True)
    assert relu.compile().plan.reservoir is None
    assert c.plan.reservoir is not None


def test_gradient_runs_take_the_generic_loop():
    net = reservoir(dtype=torch.float64)
    c = net.compile()
    start = c.init_state(1)
    x0 = torch.full((1, N), 0.1, dtype=torch.float64, requires_grad=True)
    start["res.x"] = x0
    y = c.run(inputs(50), state=start).output
    assert y.requires_grad
    y.sum().backward()
    assert x0.grad is not None and x0.grad.abs().sum() > 0


def test_missing_compiler_falls_back(monkeypatch, tmp_path, generic):
    monkeypatch.setattr(_native, "_libs", {})
    monkeypatch.setattr(_native, "_failure", None)
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("RNNGRAPH_CACHE_DIR", str(tmp_path))
    assert not _native.available()
    assert "no-such-compiler" in _native.failure()
    net = reservoir()
    y = net.compile().run(inputs(20)).output
    assert not runs_natively(net)
    with generic:
        net.reset()
        reference = net.compile().run(inputs(20)).output
    assert torch.equal(y, reference)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("forgetting", [1.0, 0.99])
def test_native_rls_equals_torch_update(bias, forgetting, generic):
    """The C update (upper triangle of P only) against the torch one, on 300 samples."""
    g = torch.Generator().manual_seed(3)
    r = torch.randn(300, 1, 40, generator=g, dtype=torch.float64)
    y = torch.randn(300, 1, 2, generator=g, dtype=torch.float64)
    fits = []
    for native in (True, False):
        with nullcontext() if native else generic:
            w = torch.zeros(2, 40, dtype=torch.float64)
            b = torch.zeros(2, dtype=torch.float64) if bias else None
            rls = rg.training.RLS(alpha=0.5, forgetting=forgetting)
            errors = torch.cat([rls.update(w, b, r[t], y[t]) for t in range(300)])
            fits.append((w, b, rls.P, errors))
    (w, b, P, errors), (w_ref, b_ref, P_ref, errors_ref) = fits
    torch.testing.assert_close(P, P.T, rtol=0, atol=0)  # mirrored from the upper triangle
    torch.testing.assert_close(P, P_ref, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(w, w_ref, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(errors, errors_ref, rtol=1e-9, atol=1e-12)
    if bias:
        torch.testing.assert_close(b, b_ref, rtol=1e-9, atol=1e-12)
    assert w.abs().max() > 0.01


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_batched_runs_use_the_native_elementwise_step(sparse, generic):
    """B > 1: dense W runs the generic loop (torch's gemm) with the C leaky-tanh step; CSR
    the whole-sequence C loop (one batched sparse product per step)."""
    net = reservoir(sparse=sparse, edge_bias=True, lr=torch.linspace(0.1, 0.9, N))
    g = torch.Generator().manual_seed(5)
    x = torch.randn(4, 120, 2, generator=g, dtype=torch.float64)
    assert runs_natively(net, batch=4) == sparse
    with torch.no_grad():
        assert _native.leaky_tanh_step(torch.tensor(0.3), torch.tensor(0.0), N) is not None
    _, reference = both_ways(net, x, ["res"], generic)
    assert reference["res"].std() > 0.1


@pytest.mark.parametrize("reset", ["value", "subtract"])
@pytest.mark.parametrize("refractory", [0.0, 3.0])
def test_native_lif_step_equals_the_torch_step(reset, refractory, generic):
    """A recurrent LIF population (B = 10: enough multiply-adds per step for the
    event-driven products) with the C step and with torch's: same spikes."""
    g = torch.Generator().manual_seed(7)
    w_in = torch.rand(N, 5, generator=g, dtype=torch.float64)
    w = torch.randn(N, N, generator=g, dtype=torch.float64) * 0.3
    net = population(
        "lif",
        "lif",
        w_in,
        w,
        tau_m=torch.linspace(10.0, 30.0, N, dtype=torch.float64),
        v_th=1.0,
        refractory=refractory,
        reset=reset,
        integrator="exp_euler",
    )
    x = torch.rand(10, 300, 5, generator=g, dtype=torch.float64) * 1.5
    native, reference = both_ways(net, x, ["lif", "lif.v", "lif.ref"], generic)
    assert any(key[-1] for key in net.compile()._loops)  # an event-driven loop ran
    assert torch.equal(native["lif"], reference["lif"])  # the spikes, exactly
    assert torch.equal(native["lif.ref"], reference["lif.ref"])
    rate = reference["lif"].mean()
    assert 0.01 < rate < 0.5  # spikes, not silence or saturation


@pytest.mark.parametrize("integrator", ["euler", "rk4", "exp_euler"])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_native_leaky_integrator_equals_generic_loop(integrator, sparse, generic):
    """RectiPy's leaky-integrator template (``li``): v' = -v/tau + k r_in + I_ext + eta."""
    g = torch.Generator().manual_seed(11)
    w_in = torch.randn(N, 2, generator=g, dtype=torch.float64)
    w = torch.randn(N, N, generator=g, dtype=torch.float64) * 0.3
    w = w * (torch.rand(N, N, generator=g) < 0.3)
    bias = 0.1 * torch.randn(N, generator=g, dtype=torch.float64)
    net = population(
        "li",
        "rnn",
        w_in,
        w,
        dt=0.1,
        edge={"target_var": "r_in", "bias": bias, "sparse": sparse},
        tau=torch.linspace(0.5, 2.0, N, dtype=torch.float64),
        k=1.3,
        eta=0.2,
        integrator=integrator,
    )
    c = net.compile()
    assert c.plan.reservoir is not None and c.plan.reservoir.kind == "li"
    _, reference = both_ways(net, inputs(200), ["rnn", "rnn.v"], generic)
    assert reference["rnn.v"].std() > 0.1


def test_sparse_enough_dense_weights_and_weight_changes(generic):
    """A dense W with 10 % nonzeros runs as CSR in C; changing W in place between runs
    (a trainer, load_state_dict) is seen by the next run."""
    net = reservoir(seed=4)
    edge = net.get_edge("res", "res")
    with torch.no_grad():
        edge.weight.mul_(torch.rand(N, N, generator=torch.Generator().manual_seed(9)) < 0.3)
    assert (edge.weight != 0).float().mean() < _native.DENSE_TO_CSR
    x = inputs(100)
    both_ways(net, x, ["res"], generic)
    assert _native.recurrent_layout(edge, edge.effective_weight())[1][0] is not None  # as CSR
    with torch.no_grad():
        edge.weight.mul_(-0.5)
    net.reset()
    _, reference = both_ways(net, x, ["res"], generic)
    assert reference["res"].std() > 0.05


def test_event_driven_spike_input_equals_the_product(generic):
    """Spikes into a dense edge: only the columns of units that spiked are added."""
    g = torch.Generator().manual_seed(12)
    wt = torch.randn(40, 30, generator=g, dtype=torch.float64)
    z = (torch.rand(5, 40, generator=g) < 0.2).to(torch.float64)
    acc = torch.randn(30, generator=g, dtype=torch.float64)
    torch.testing.assert_close(_native.event_addmm(acc, z, wt), acc + z @ wt, rtol=0, atol=1e-13)
    torch.testing.assert_close(_native.event_addmm(None, z, wt), z @ wt, rtol=0, atol=1e-13)
    assert torch.equal(
        _native.event_addmm(None, torch.zeros(5, 40, dtype=torch.float64), wt),
        torch.zeros(5, 30, dtype=torch.float64),
    )


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_csr_rows_of_every_length(dtype, generic):
    """Rows with 0 to 19 nonzeros: the C product takes blocks of 8 and a remainder."""
    n = 40
    g = torch.Generator().manual_seed(21)
    w = torch.zeros(n, n, dtype=dtype)
    for i in range(n):
        cols = torch.randperm(n, generator=g)[: i % 20]
        w[i, cols] = torch.randn(len(cols), generator=g, dtype=dtype) * 0.3
    w_in = torch.randn(n, 2, generator=g, dtype=dtype)
    net = population("leaky_tanh", "res", w_in, w, edge={"sparse": True}, lr=0.5)
    assert runs_natively(net)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    _, reference = both_ways(net, inputs(50, dtype=dtype), ["res"], generic, atol=tol)
    assert reference["res"].std() > 0.1


def _reference_esn(dtype, seed=0):
    """A sparse 60-unit reservoir and its description for the test suite's interpreter."""
    g = torch.Generator().manual_seed(seed)
    w_in = rg.input_weights(N, 2, seed=g, dtype=dtype)
    w = rg.recurrent_weights(N, spectral_radius=0.95, connectivity=0.2, seed=g, dtype=dtype)
    lr = 0.1 + 0.8 * torch.rand(N, generator=g, dtype=dtype)  # one leak rate per unit
    net = rg.Network(dt=1.0, dtype=dtype)
    nodes = {
        "in": net.add_func_node("in", 2),
        "res": net.add_diffeq_node("res", "leaky_tanh", n=N, lr=lr, bias=0.2),
    }
    net.add_edge("in", "res", weights=w_in)
    net.add_edge("res", "res", weights=w, feedback=True, sparse=True)
    edges = [
        ref.EdgeDesc("in", "res", w_in.double().numpy(), None, None, 0),
        ref.EdgeDesc("res", "res", w.double().numpy(), None, None, 1),
    ]
    descs = {k: ref.node_desc(k, v) for k, v in nodes.items()}
    return net, ref.GraphDesc(1.0, descs, edges, "in", "res")


@pytest.mark.parametrize("batch", [2, 4, 5, 7, 9, 12, 16, 17, 40])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_a_batch_on_sparse_weights_runs_natively_and_equals_the_reference(batch, dtype):
    # rows in blocks of 8 (double) or 16 (float) with a padded last block, summed half as
    # wide when it holds at most 4 (8) rows, split over threads: every row is its own
    # trial of the reference interpreter's run
    net, g = _reference_esn(dtype)
    c = net.compile()
    assert "native reservoir loop" in str(c.explain(batch_size=batch))
    x = np.random.default_rng(batch).standard_normal((batch, 70, 2))
    out = c.run(torch.as_tensor(x, dtype=dtype)).output
    want = ref.run(g, x).outputs["res"]
    tol = 1e-12 if dtype == torch.float64 else 2e-5
    np.testing.assert_allclose(out.double().numpy(), want, rtol=0, atol=tol)
    # the held state continues the batch: a second call equals one run of both halves
    c.reset()
    first = c.run(torch.as_tensor(x[:, :30], dtype=dtype)).output
    second = c.run(torch.as_tensor(x[:, 30:], dtype=dtype)).output
    np.testing.assert_allclose(torch.cat([first, second], 1).double().numpy(), want, atol=tol)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_rows_of_one_sparse_matrix_with_their_own_gains_and_coefficients(threads):
    # the loop's ensemble form: row r has its own leak rates, bias and a gain on W x; the
    # rows split into 1, 2 or 3 groups run in parallel threads, the same numbers in each
    g = torch.Generator().manual_seed(3)
    w = rg.recurrent_weights(N, connectivity=0.2, seed=g, dtype=torch.float64, sparse=True)
    m, steps = 40, 25
    lr = 0.05 + 0.9 * torch.rand(m, N, generator=g, dtype=torch.float64)
    b = torch.randn(m, N, generator=g, dtype=torch.float64)
    gain = 0.5 + torch.rand(m, generator=g, dtype=torch.float64)
    P = torch.randn(steps, m, N, generator=g, dtype=torch.float64)
    x0 = torch.zeros(m, N, dtype=torch.float64)
    run = _native.ReservoirRun(
        "esn", "test", "e", object(), w, [lr, b], (x0, x0.clone()), gain=gain, threads=threads
    )
    assert len(run.rows) == threads
    out = run.chunk(P, steps, torch.empty(steps, m, N, dtype=torch.float64))[0]
    x, dense, want = x0.clone(), w.to_dense(), []
    for t in range(steps):
        x = x + lr * (torch.tanh(gain[:, None] * (x @ dense.T) + P[t] + b) - x)
        want.append(x)
    torch.testing.assert_close(out, torch.stack(want), rtol=0, atol=1e-13)
    with pytest.raises(ValueError, match="the gain"):
        _native.ReservoirRun(
            "esn", "test", "e", object(), w, [lr, b], (x0, x0.clone()), gain=gain[:3]
        )
