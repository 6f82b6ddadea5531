"""The network API refuses what it cannot honour and honours what it accepts: torch's own
methods are not shadowed, compiled programs follow the attributes they depend on, every
parameter is checked where it is set, and forward passes are independent."""

from __future__ import annotations

import torch
from torch import nn

import rnngraph as rg
from rnngraph import Linear, Network


def _esn(dtype=torch.float32, n=20, dt=1.0):
    net = Network(dt, dtype=dtype)
    net.add_func_node("inp", 2)
    net.add_diffeq_node("res", "leaky_tanh", n, lr=0.5, bias=0.2)
    net.add_func_node("out", 1)
    net.add_edge("inp", "res", rg.input_weights(n, 2, seed=0))
    net.add_edge("res", "res", rg.recurrent_weights(n, 1.1, 0.3, seed=1), feedback=True)
    net.add_edge("res", "out", train="gd", seed=2)
    return net


# ----------------------------------------------------------------------------------------
# point 13: nn.Module.apply is torch's
# ----------------------------------------------------------------------------------------


def test_module_apply_visits_every_submodule():
    net = _esn()
    model = net.compile()
    seen = []
    assert model.apply(seen.append) is model
    assert seen[-1] is model
    linears = [m for m in seen if isinstance(m, Linear)]
    assert len(linears) == 3
    assert set(map(id, seen)) == set(map(id, model.modules()))

    def zero_linear(m):
        if isinstance(m, Linear):
            with torch.no_grad():
                m.weight.zero_()

    model.apply(zero_linear)
    for edge in (net.get_edge("inp", "res"), net.get_edge("res", "out")):
        assert torch.count_nonzero(edge.weight) == 0

    edge = Linear(3, 2, weights=torch.ones(2, 3))
    seen = []
    assert edge.apply(seen.append) is edge and seen == [edge]
    torch.testing.assert_close(edge.project(torch.ones(1, 3)), torch.full((1, 2), 3.0))
    torch.testing.assert_close(edge(torch.ones(1, 3)), torch.full((1, 2), 3.0))
    assert isinstance(edge, nn.Module)
