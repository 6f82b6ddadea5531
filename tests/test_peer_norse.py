"""rnngraph's Norse cells (``rnngraph.compat.norse``) against Norse 1.1 itself
(``.peers/norse``, ``make peers PEERS=norse``), same inputs and weights, float64, Norse's
default ``LIFParameters()`` and ``dt = 1 ms``: the same spikes at every step and the same
gradients of a loss on them. Skipped with a message where the peer's venv is absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _peer_run import peer_python, run_side

import rnngraph as rg
from rnngraph.compat import norse

PYTHON = peer_python("norse")
F64 = torch.float64
B, T, C, N, DT = 4, 150, 6, 30, 1e-3

pytestmark = pytest.mark.skipif(
    not PYTHON.exists(), reason="Norse's venv .peers/norse is absent (make peers PEERS=norse)"
)


def peer(task: str, tmp_path: Path, **arrays) -> dict[str, np.ndarray]:
    return run_side("norse", task, tmp_path, **arrays)


@pytest.mark.parametrize(
    ("task", "autapses"),
    [("lif_cell", True), ("lif_recurrent_cell", True), ("lif_recurrent_cell", False)],
)
def test_spikes_and_gradients_equal_norses(tmp_path, task, autapses):
    g = np.random.default_rng(11)
    x = g.uniform(0.0, 1.0, (B, T, C))
    w_in = g.uniform(0.0, 0.8, (N, C))
    w_rec = g.normal(0.0, 1.0 / np.sqrt(N), (N, N))
    r = g.normal(0.0, 1.0, (B, T, N))
    arrays = {"x": x, "W_in": w_in, "W_rec": w_rec, "R": r, "dt": DT, "autapses": autapses}
    theirs = peer(task, tmp_path, **arrays)
    net = rg.Network(dt=DT, dtype=F64)
    net.add_func_node("in", C)
    if task == "lif_cell":
        syn, lif = norse.lif_cell(net, "lif", N)
    else:  # the recurrent weights train by default, as Norse's
        syn, lif = norse.lif_recurrent_cell(net, "lif", N, torch.tensor(w_rec), autapses=autapses)
    net.add_edge("in", syn, weights=torch.tensor(w_in), train="gd")
    model = net.compile()
    y = model.forward(torch.tensor(x))
    (y * torch.tensor(r)).sum().backward()
    spikes = theirs["spk"]
    assert 0.03 < spikes.mean() < 0.6, "the units fire, but not always"
    np.testing.assert_array_equal(y.detach().numpy(), spikes)
    grads = {"grad_W_in": model.edges[f"in->{syn}"].weight.grad}
    if task != "lif_cell":
        grads["grad_W_rec"] = model.edges[f"{lif}->{syn}"].weight.grad
    if not autapses:  # Norse masks the diagonal's gradient; rnngraph's fixed mask does too
        assert not np.diag(theirs["grad_W_rec"]).any() and not np.diag(grads["grad_W_rec"]).any()
    for name, ours in grads.items():
        ref = theirs[name]
        assert np.abs(ref).max() > 1e-3
        np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-5, atol=1e-8 * np.abs(ref).max())
