"""Threads and processes: networks run in threads, in forked and in spawned workers give the
numbers they give when run one after another in the main thread, with the native loops on
and off, for rate (leaky-tanh ESN, dense and sparse weights) and spiking (LIF) networks.

Every wait has a timeout, so a hang fails the test instead of stalling the suite; all of it
runs under ``torch.set_num_threads(2)`` (restored afterwards).
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
import re
import threading
from collections.abc import Callable
from typing import Any

import pytest
import torch

import rnngraph as rg
from rnngraph import Network

T_WAIT = 60.0  # seconds any thread or worker may take before the test fails as a hang
T_STEPS = 60
P_STEPS = 25  # steps of each run in the process tests


def _esn(seed: int, layout: str) -> Network:
    """A leaky-tanh ESN of 60 units; ``layout``: dense (all weights nonzero), ``sparse_dense``
    (10 % nonzeros in a dense tensor) or ``csr`` (10 % nonzeros stored as CSR)."""
    g = torch.Generator().manual_seed(seed)
    net = Network(1.0, dtype=torch.float64)
    net.add_func_node("in", 2)
    b = rg.bias_weights(60, connectivity=0.5, seed=g, dtype=torch.float64)
    net.add_diffeq_node("res", "leaky_tanh", n=60, lr=0.4, bias=b)
    net.add_edge("in", "res", weights=rg.input_weights(60, 2, seed=g, dtype=torch.float64))
    conn = 1.0 if layout == "dense" else 0.1
    w = rg.recurrent_weights(60, 1.1, connectivity=conn, seed=g, dtype=torch.float64)
    net.add_edge("res", "res", weights=w, feedback=True, sparse=layout == "csr")
    net.add_func_node("out", 3)
    net.add_edge("res", "out", seed=seed + 100)
    return net


def _lif(seed: int, layout: str = "") -> Network:
    """A LIF population of 50 units with a masked recurrent edge and a leaky readout."""
    g = torch.Generator().manual_seed(seed)
    net = Network(1.0)
    net.add_func_node("in", 20)
    net.add_diffeq_node("rec", "lif", n=50, tau_m=10.0, v_th=0.6, refractory=2.0)
    net.add_edge("in", "rec", weights=0.6 * torch.rand(50, 20, generator=g))
    w = 0.2 * torch.randn(50, 50, generator=g)
    net.add_edge("rec", "rec", weights=w, feedback=True, mask=1.0 - torch.eye(50))
    net.add_diffeq_node("out", "leaky_readout", n=2, tau=5.0)
    net.add_edge("rec", "out", weights=0.1 * torch.randn(2, 50, generator=g))
    return net


BUILD: dict[str, Callable[[int], Network]] = {
    "esn_dense": lambda s: _esn(s, "dense"),
    "esn_sparse_dense": lambda s: _esn(s, "sparse_dense"),
    "esn_csr": lambda s: _esn(s, "csr"),
    "lif": _lif,
}
KINDS = list(BUILD)


def _inputs(kind: str, seed: int, batch: int = 2, steps: int = T_STEPS) -> torch.Tensor:
    g = torch.Generator().manual_seed(1000 + seed)
    if kind == "lif":
        return (torch.rand(batch, steps, 20, generator=g) < 0.1).float()
    return torch.randn(batch, steps, 2, generator=g, dtype=torch.float64)


def _runs(net: Network, kind: str, seed: int, steps: int = T_STEPS) -> list[torch.Tensor]:
    """Two runs one after another, the second continuing the held state of the first."""
    return [net.run(_inputs(kind, seed + j, steps=steps)).output.clone() for j in range(2)]


def _exact(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.fixture(autouse=True)
def _two_torch_threads():
    was = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(was)


@pytest.fixture(params=[True, False], ids=["native", "torch"])
def native(request):
    was = rg.native.enabled()
    rg.native.set_enabled(request.param)
    yield request.param
    rg.native.set_enabled(was)


def _in_threads(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run each job in its own daemon thread, started together; results or raised errors."""
    barrier = threading.Barrier(len(jobs))
    out: list[Any] = [None] * len(jobs)

    def work(k: int) -> None:
        barrier.wait(timeout=T_WAIT)
        try:
            out[k] = ("ok", jobs[k]())
        except BaseException as err:  # reported to the main thread
            out[k] = ("error", err)

    threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=T_WAIT)
        assert not t.is_alive(), "a thread hung"
    return out


# ----------------------------------------------------------------------------------------
# threads
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_two_networks_in_two_threads_equal_running_them_in_turn(kind, native):
    expected = [_runs(BUILD[kind](s), kind, s) for s in (1, 2)]
    nets = [BUILD[kind](s) for s in (1, 2)]
    got = _in_threads(
        [lambda n=n, s=s: _runs(n, kind, s) for n, s in zip(nets, (1, 2), strict=True)]
    )
    for (status, outs), exp in zip(got, expected, strict=True):
        assert status == "ok", outs
        for a, b in zip(outs, exp, strict=True):
            _exact(a, b)


@pytest.mark.parametrize("kind", ["esn_dense", "esn_csr"])
def test_two_ridge_fits_in_two_threads_equal_fitting_in_turn(kind, native):
    """fit_ridge streams statistics through per-thread buffers of the native loop: two fits
    at once give the weights and the later outputs of two fits one after the other."""

    def fit(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        net = BUILD[kind](seed)
        x = _inputs(kind, seed)
        y = torch.sin(x[..., :1].cumsum(1))  # (B, T, 1)
        ridge = net.fit_ridge(x, y, alpha=1e-4, washout=5)
        return ridge.weight.clone(), net.run(_inputs(kind, seed + 1)).output.clone()

    expected = [fit(s) for s in (21, 22)]
    got = _in_threads([lambda s=s: fit(s) for s in (21, 22)])
    for (status, result), exp in zip(got, expected, strict=True):
        assert status == "ok", result
        for a, b in zip(result, exp, strict=True):
            _exact(a, b)


@pytest.mark.parametrize("kind", ["esn_sparse_dense", "lif"])
def test_one_network_in_two_threads_with_explicit_states(kind, native):
    """The functional use, ``model.run(x, state=...)``, reads nothing the other thread
    writes but the held state it does not read: each thread gets its own numbers."""
    net = BUILD[kind](3)
    model = net.compile()
    xs = [_inputs(kind, s) for s in (4, 5)]
    expected = [model.run(x, state=model.init_state(2)).output.clone() for x in xs]

    def job(x: torch.Tensor) -> list[torch.Tensor]:
        return [model.run(x, state=model.init_state(2)).output.clone() for _ in range(4)]

    got = _in_threads([lambda x=x: job(x) for x in xs])
    for (status, outs), exp in zip(got, expected, strict=True):
        assert status == "ok", outs
        for a in outs:
            _exact(a, exp)


@pytest.mark.parametrize("kind", ["esn_dense", "lif"])
def test_one_network_held_state_from_two_threads(kind, native):
    """Two threads continue one network's held state at once. Either one run is refused
    with an error that names the call and says why, or each run sees a whole state: the
    outputs and the final state are those of the two runs one after the other, in one
    order or the other. Up to five attempts with runs long enough to overlap."""
    steps = 2000 if native else 100
    x_a, x_b = _inputs(kind, 6, steps=steps), _inputs(kind, 7, steps=steps)
    warm = _inputs(kind, 9)
    ref = {}
    for order in ("ab", "ba"):
        net = BUILD[kind](8)
        net.run(warm)
        outs = {c: net.run({"a": x_a, "b": x_b}[c]).output.clone() for c in order}
        ref[order] = (outs, {k: v.clone() for k, v in net.state.items()})
    for _ in range(5):
        net = BUILD[kind](8)
        net.run(warm)
        got = _in_threads(
            [lambda n=net: n.run(x_a).output.clone(), lambda n=net: n.run(x_b).output.clone()]
        )
        refused = [err for status, err in got if status == "error"]
        if refused:
            assert len(refused) == 1, refused
            assert isinstance(refused[0], RuntimeError), refused
            assert re.search(r"(Network|CompiledNetwork)\.run.*thread", str(refused[0]))
            continue
        outs = {"a": got[0][1], "b": got[1][1]}
        serial = any(
            all(torch.equal(outs[c], r_out[c]) for c in "ab")
            and all(torch.equal(net.state[k], r_state[k]) for k in r_state)
            for r_out, r_state in ref.values()
        )
        assert serial, "the two runs mixed their states: neither order gives these outputs"


# ----------------------------------------------------------------------------------------
# processes
# ----------------------------------------------------------------------------------------


def _worker(tasks: list[tuple], threads: int) -> list[list[torch.Tensor]]:
    """Run each task ``(kind, native, seed, pickled network or None)`` in this process."""
    torch.set_num_threads(threads)
    out = []
    for kind, use_native, seed, blob in tasks:
        rg.native.set_enabled(use_native)
        net = BUILD[kind](seed) if blob is None else pickle.loads(blob)
        out.append(_runs(net, kind, seed, P_STEPS))
    return out


def _warm(kind: str, seed: int) -> Network:
    """A network that has run once, so that a pickled copy carries a held state."""
    net = BUILD[kind](seed)
    net.run(_inputs(kind, seed + 50, steps=P_STEPS))
    return net


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_workers_give_the_parents_numbers(method):
    """One worker builds each network itself, and continues a pickled copy of one that ran
    in the parent (its held state included): both give the parent's outputs."""
    tasks, expected = [], []
    was = rg.native.enabled()
    try:
        for kind in KINDS:
            for use_native in (True, False):
                rg.native.set_enabled(use_native)
                tasks.append((kind, use_native, 11, None))
                expected.append(_runs(BUILD[kind](11), kind, 11, P_STEPS))
                tasks.append((kind, use_native, 12, pickle.dumps(_warm(kind, 12))))
                expected.append(_runs(_warm(kind, 12), kind, 12, P_STEPS))
    finally:
        rg.native.set_enabled(was)
    ctx = mp.get_context(method)
    # a forked child must bring torch to one thread before its first parallel operation:
    # otherwise torch's OpenMP pool, inherited from a parent that ran on two threads,
    # deadlocks (a plain matmul does, without rnngraph)
    threads = 1 if method == "fork" else 2
    with ctx.Pool(1) as pool:
        result = pool.apply_async(_worker, (tasks, threads))
        got = result.get(timeout=T_WAIT)
    for task, outs, exp in zip(tasks, got, expected, strict=True):
        for a, b in zip(outs, exp, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0, msg=str(task[:3]))
