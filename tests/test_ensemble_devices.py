"""The ensemble's torch loop: where native code is off or unavailable, and on other devices
(``ReservoirEnsemble(device=...)``, ``rg.hyper.search(device=...)``).

References: every member against the network a user writes with the public initialisers,
run by the library's time loop with native code off (nothing of the ensemble in it), and a
NumPy echo-state network; on a GPU, the same ensemble on the CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_ensemble import ALPHA, HYPER, N, numpy_member, series, user_network

import rnngraph as rg

F64 = torch.float64


def ensemble(bias: bool = True, **kw) -> rg.ReservoirEnsemble:
    extra = {"bias_connectivity": 0.2, "bias_scaling": 0.5} if bias else {}
    return rg.ReservoirEnsemble(N, 1, **HYPER, **extra, **kw)


@pytest.mark.parametrize("bias", [False, True])
def test_without_native_code_the_ensemble_runs_a_torch_loop_with_the_same_numbers(generic, bias):
    x, y = series(400)
    with generic:
        ens = ensemble(bias)
        assert ens.loop == "torch" and "switched off" in ens.loop_why
        pred = ens.fit_ridge(x[:250], y[:250], alpha=ALPHA, washout=30).run(x[250:])
        for e in (0, 1, 3, 6):  # rows of one seed's loop, a seed of its own, another seed
            net = user_network(e, bias)
            net.fit_ridge(x[:250], y[:250], alpha=ALPHA[e], washout=30)
            torch.testing.assert_close(pred[e], net.run(x[250:]).output, rtol=0, atol=1e-9)
            if not bias:  # the NumPy member has no bias
                X, W, c = numpy_member(ens, e, x, y[:250], ALPHA[e], 30)
                np.testing.assert_allclose(pred[e].numpy(), X[250:] @ W.T + c, atol=1e-8)
        held = ens.state.clone()
    native = ensemble(bias)
    assert native.loop == "native" and native.loop_why is None
    theirs = native.fit_ridge(x[:250], y[:250], alpha=ALPHA, washout=30).run(x[250:])
    torch.testing.assert_close(pred, theirs, rtol=0, atol=1e-9)
    torch.testing.assert_close(held, native.state, rtol=0, atol=1e-13)


def test_a_search_runs_its_generations_in_the_torch_loop_too(generic):
    x, y = series(300)
    space = {"sr": rg.hyper.loguniform(0.2, 1.0), "seed": rg.hyper.choice([4, 5])}
    kw = {"units": N, "washout": 20, "progress": False, "generation": 3}
    train, test = (x[:200], y[:200]), (x[200:], y[200:])
    native = rg.hyper.search(space, train, test, 6, **kw)
    with generic:
        torch_loop = rg.hyper.search(space, train, test, 6, device="cpu", **kw)
    np.testing.assert_allclose(torch_loop.losses, native.losses, rtol=1e-7)
    assert torch_loop.best.number == native.best.number


def test_a_device_that_is_not_one_is_refused():
    with pytest.raises((TypeError, ValueError), match="ReservoirEnsemble: .*device"):
        ensemble(device="gpu0")
    with pytest.raises(TypeError, match="device must be a torch device"):
        ensemble(device=3.5)


@pytest.mark.cuda
def test_the_ensemble_on_a_gpu_equals_the_cpu():
    x, y = series(400)
    cpu = ensemble().fit_ridge(x[:250], y[:250], alpha=ALPHA, washout=30)
    gpu = ensemble(device="cuda").fit_ridge(x[:250], y[:250], alpha=ALPHA, washout=30)
    assert gpu.loop == "torch" and gpu.state.is_cuda
    pred = gpu.run(x[250:])
    assert pred.is_cuda
    torch.testing.assert_close(pred.cpu(), cpu.run(x[250:]), rtol=0, atol=1e-9)
    torch.testing.assert_close(gpu.weight.cpu(), cpu.weight, rtol=1e-5, atol=1e-6)
    member = gpu.network(2)  # on the GPU too, with its readout
    out = member.run(x).output[250:]
    torch.testing.assert_close(out.cpu(), pred[2].cpu(), rtol=0, atol=1e-9)
