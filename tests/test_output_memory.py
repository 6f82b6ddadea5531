"""Runs reuse the memory of earlier outputs only when nothing refers to it any more."""

from __future__ import annotations

import shutil
from contextlib import nullcontext

import pytest
import torch

import rnngraph as rg
from rnngraph.network import _compiled

N, B, T = 40, 3, 50
#: tests of the native loop's memory: they need it compiled and switched on
needs_native = pytest.mark.skipif(
    not (shutil.which("cc") or shutil.which("gcc")) or not rg.native.enabled(),
    reason="no C compiler, or RNNGRAPH_NATIVE=0",
)


def esn(seed: int = 0) -> rg.Network:
    gen = torch.Generator().manual_seed(seed)
    net = rg.Network(dt=1.0, dtype=torch.float64)
    net.add_func_node("in", 2)
    net.add_diffeq_node("res", "leaky_tanh", n=N, lr=0.3)
    net.add_edge("in", "res", weights=torch.randn(N, 2, generator=gen, dtype=torch.float64))
    w = rg.recurrent_weights(N, spectral_radius=0.9, seed=gen, dtype=torch.float64)
    net.add_edge("res", "res", weights=w, feedback=True)
    return net


def inputs(seed: int) -> torch.Tensor:
    return torch.randn(B, T, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def expected(u: torch.Tensor) -> torch.Tensor:
    """The output of a fresh network run from the initial state."""
    with torch.no_grad():
        return esn().run(u).output


def test_a_dropped_output_is_reused_and_rewritten():
    net, u1, u2 = esn(), inputs(1), inputs(2)
    with torch.no_grad():
        ptr = net.run(u1).output.data_ptr()
        net.reset()
        y2 = net.run(u2).output
    assert y2.data_ptr() == ptr  # the same memory ...
    torch.testing.assert_close(y2, expected(u2), rtol=0, atol=0)  # ... with the new run's values


@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated:UserWarning")
@pytest.mark.parametrize(
    "hold", ["output", "view", "numpy", "recording", "untyped storage", "typed storage"]
)
def test_a_held_output_is_never_overwritten(hold):
    net, u1 = esn(), inputs(1)
    with torch.no_grad():
        rec = net.run(u1)
        kept = {
            "output": lambda: rec.output,
            "view": lambda: rec.output[:, -5:],
            "numpy": lambda: rec.output.numpy(),
            "recording": lambda: rec,
            "untyped storage": lambda: rec.output.untyped_storage(),
            "typed storage": lambda: rec.output.storage(),  # deprecated, still used
        }[hold]()
        ref = _values(kept, hold).clone()
        if hold != "recording":
            del rec
        for k in range(3):  # the held buffer stays out of every later run
            net.reset()
            net.run(inputs(10 + k))
    torch.testing.assert_close(_values(kept, hold), ref, rtol=0, atol=0)
    torch.testing.assert_close(ref, expected(u1)[:, -ref.shape[1] :], rtol=0, atol=0)


def _values(kept, hold: str) -> torch.Tensor:
    """The values a holder refers to: (B, T, N) or a part of it."""
    if hold == "recording":
        return kept.output
    if hold.endswith("storage"):  # the output is (T, B, N) in memory
        storage = kept if hold == "untyped storage" else kept._untyped_storage
        flat = torch.tensor([], dtype=torch.float64).set_(storage)
        return flat.view(T, B, N).transpose(0, 1)
    return torch.as_tensor(kept)


def test_memory_given_to_another_process_is_never_reused():
    """A tensor sent through ``torch.multiprocessing`` moves into shared memory, which the
    receiving process holds where no count here sees it: the pool lets go of it."""
    net = esn()
    with torch.no_grad():
        y = net.run(inputs(1)).output
        y.share_memory_()
        del y
        net.reset()
        z = net.run(inputs(2)).output
    assert not z.is_shared()
    assert all(not buf.is_shared() for buf in net.compile()._outputs._bufs)
    torch.testing.assert_close(z, expected(inputs(2)), rtol=0, atol=0)


@needs_native
def test_empty_cache_releases_the_kept_memory():
    """The network's output buffers and this thread's scratch buffers are let go (whether
    the allocator then hands the same addresses out again is its own business)."""
    net = esn()
    with torch.no_grad():
        net.run(inputs(1))
        model = net.compile()
        assert model._outputs._bufs and _compiled._scratch()._bufs  # kept for reuse
        net.empty_cache()
        assert not model._outputs._bufs and not _compiled._scratch()._bufs
        net.reset()
        y = net.run(inputs(2)).output
    torch.testing.assert_close(y, expected(inputs(2)), rtol=0, atol=0)


@pytest.mark.parametrize("native", [True, False])
def test_memory_from_inference_mode_is_not_reused_outside_it(native, generic):
    """An output made under ``torch.inference_mode()`` is an inference tensor: later runs
    under ``no_grad`` get normal tensors, which autograd may use."""
    with nullcontext() if native else generic:
        net = esn()
        with torch.inference_mode():
            net.run(inputs(1))
        with torch.no_grad():
            net.reset()
            y = net.run(inputs(2)).output
        assert not y.is_inference()
        torch.testing.assert_close(y, expected(inputs(2)), rtol=0, atol=0)


@pytest.mark.parametrize("native", [True, False])
def test_a_network_run_by_the_generated_loop_pickles(native, generic):
    """The generic loop is Python source compiled at run time; a saved network leaves it
    out and makes it again when it runs."""
    import io

    with nullcontext() if native else generic:
        net = esn()
        with torch.no_grad():
            net.run(inputs(1))
        buf = io.BytesIO()
        torch.save(net, buf)
        buf.seek(0)
        loaded = torch.load(buf, weights_only=False)
        with torch.no_grad():
            torch.testing.assert_close(loaded.run(inputs(2)).output, net.run(inputs(2)).output)


def test_copies_and_pickles_carry_no_kept_memory():
    import copy
    import io

    net = esn()
    with torch.no_grad():
        net.run(inputs(1))
    pool = net.compile()._outputs
    assert len(pool._bufs) == 1
    assert copy.deepcopy(net).compile()._outputs._bufs == []
    buf = io.BytesIO()
    torch.save(net.compile(), buf)
    assert buf.tell() < B * T * N * 8  # the 48 kB output is not in the file
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    assert loaded._outputs._bufs == []
    with torch.no_grad():
        loaded.reset()
        torch.testing.assert_close(loaded.run(inputs(2)).output, expected(inputs(2)))


@needs_native
def test_recordings_of_one_native_buffer_do_not_share_memory():
    """An echo-state node's output and its state are the same values: the two recordings
    still own separate memory, and neither is the run's output."""
    net = esn()
    net.add_func_node("out", 1)
    net.add_edge("res", "out", weights=torch.ones(1, N, dtype=torch.float64))
    with torch.no_grad():
        rec = net.run(inputs(1)[:1], record=["res", "res.x"])
    kept = rec["res.x"].clone()
    rec["res"].zero_()
    torch.testing.assert_close(rec["res.x"], kept, rtol=0, atol=0)
    assert rec["res"].untyped_storage().data_ptr() != rec.output.untyped_storage().data_ptr()


def esn_with_readout(seed: int) -> rg.Network:
    net = esn(seed)
    net.add_func_node("out", 1)
    net.add_edge("res", "out", weights=torch.full((1, N), 1.0 / N, dtype=torch.float64))
    return net


def states_of(net: rg.Network, u: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net.run(u, observer=rg.Observer(["res"]))["res"]


@needs_native
def test_the_native_loops_scratch_memory_serves_fresh_networks(generic):
    """The reservoir's states (not the run's output here) go into memory kept per thread:
    a later run of another network reuses it once the recording is dropped, with that run's
    own values, and never while it is held."""
    u = inputs(1)[:1]  # batch 1: the whole-sequence C loop
    ptr = states_of(esn_with_readout(0), u).data_ptr()  # dropped at once
    second = states_of(esn_with_readout(1), u)
    assert second.data_ptr() == ptr
    kept = second.clone()
    third = states_of(esn_with_readout(2), u)  # `second` is held
    assert third.data_ptr() != ptr and torch.equal(second, kept)
    with generic:
        references = [states_of(esn_with_readout(seed), u) for seed in (1, 2)]
    for states, reference in zip((second, third), references, strict=True):
        torch.testing.assert_close(states, reference, rtol=0, atol=1e-12)
