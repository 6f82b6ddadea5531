"""rnngraph's snnTorch neurons (``rnngraph.compat.snntorch``) against snnTorch 1.0 itself
(``.peers/snntorch``, ``make peers PEERS=snntorch``), same inputs and weights, float64:
the same spikes at every step and the same gradients of a loss on them. Skipped with a
message where the peer's venv is absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _peer_run import peer_python, run_side

import rnngraph as rg
from rnngraph.compat import snntorch as snn

PYTHON = peer_python("snntorch")
F64 = torch.float64
B, T, C, N = 4, 120, 6, 30

pytestmark = pytest.mark.skipif(
    not PYTHON.exists(),
    reason="snnTorch's venv .peers/snntorch is absent (make peers PEERS=snntorch)",
)


def peer(task: str, tmp_path: Path, **arrays) -> dict[str, np.ndarray]:
    return run_side("snntorch", task, tmp_path, **arrays)


CASES = [  # task, reset, spike_grad, its parameter, threshold
    ("leaky", "subtract", "atan", 2.0, 1.0),
    ("leaky", "zero", "atan", 2.0, 1.0),
    ("leaky", "subtract", "atan", 3.0, 0.5),
    ("leaky", "subtract", "fast_sigmoid", 25.0, 1.0),
    ("rleaky", "subtract", "atan", 2.0, 1.0),
    ("rleaky", "zero", "atan", 2.0, 1.0),
    ("synaptic", "subtract", "atan", 2.0, 1.0),
    ("synaptic", "zero", "fast_sigmoid", 10.0, 1.0),
]


@pytest.mark.parametrize(("task", "reset", "grad", "param", "threshold"), CASES)
def test_spikes_and_gradients_equal_snntorchs(tmp_path, task, reset, grad, param, threshold):
    g = np.random.default_rng(7)
    x = g.uniform(0.0, 1.0, (B, T, C))
    w_in = g.uniform(0.0, 0.12 * threshold, (N, C))
    w_rec = g.normal(0.0, 0.3 * threshold / np.sqrt(N), (N, N))
    b_rec = g.normal(0.0, 0.05, N)
    r = g.normal(0.0, 1.0, (B, T, N))
    beta, alpha = 0.85, 0.7
    theirs = peer(
        task, tmp_path, x=x, W_in=w_in, W_rec=w_rec, b_rec=b_rec, R=r, beta=beta, alpha=alpha,
        threshold=threshold, reset=reset, spike_grad=grad, grad_param=param,
    )  # fmt: skip
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", C)
    kw = {"threshold": threshold, "spike_grad": (grad, param), "reset_mechanism": reset}
    if task == "leaky":
        target = "lif"
        snn.leaky(net, "lif", N, beta, **kw)
    elif task == "rleaky":
        target = "lif"
        snn.rleaky(net, "lif", N, beta, torch.tensor(w_rec), torch.tensor(b_rec), **kw)
    else:
        target, _ = snn.synaptic(net, "lif", N, alpha, beta, **kw)
    net.add_edge("in", target, weights=torch.tensor(w_in), train="gd")
    model = net.compile()
    y = model.forward(torch.tensor(x))
    (y * torch.tensor(r)).sum().backward()
    spikes = theirs["spk"]
    assert 0.05 < spikes.mean() < 0.6, "the units fire, but not always"
    np.testing.assert_array_equal(y.detach().numpy(), spikes)
    grads = {"grad_W_in": model.edges[f"in->{target}"].weight.grad}
    if task == "rleaky":
        grads["grad_W_rec"] = model.edges["lif->lif"].weight.grad
    for name, ours in grads.items():
        # snnTorch's spike function returns float32 spikes whatever the input, so its
        # gradients pass through float32 (relative rounding about 1e-7 of their scale)
        ref = theirs[name]
        assert np.abs(ref).max() > 1e-3
        np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())
