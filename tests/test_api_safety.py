"""The network API refuses what it cannot honour and honours what it accepts: torch's own
methods are not shadowed, compiled programs follow the attributes they depend on, every
parameter is checked where it is set, and forward passes are independent."""

from __future__ import annotations

import math

import numpy as np
import pytest
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


# ----------------------------------------------------------------------------------------
# point 3: a node without edges is never the input or the output node
# ----------------------------------------------------------------------------------------


def _closed_loop_after_popping_the_input():
    """An ESN whose input edge was popped and whose readout now feeds back: ``in`` is left
    without any edge."""
    net = Network(1.0, dtype=torch.float64)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", "leaky_tanh", 4, lr=0.5, bias=0.3)
    net.add_func_node("ro", 1)
    net.add_edge("in", "res", torch.ones(4, 1))
    w = 0.4 * torch.eye(4, dtype=torch.float64)
    net.add_edge("res", "res", w, feedback=True)
    net.add_edge("res", "ro", torch.full((1, 4), 0.25, dtype=torch.float64))
    net.pop_edge("in", "res")
    net.add_edge("ro", "res", torch.full((4, 1), 0.5, dtype=torch.float64), feedback=True)
    return net


def test_isolated_node_is_refused_not_taken_as_the_output():
    net = _closed_loop_after_popping_the_input()
    graph = sorted(net.graph.edges)
    with pytest.raises(
        ValueError,
        match=r"^Network\.compile: node\(s\) \['in'\] have no edges; connect them with "
        r"add_edge\(\), remove them with pop_node\(\), or name one as compile\(input_node=",
    ):
        net.run(steps=5)
    assert sorted(net.graph.edges) == graph and net._compiled is None
    net.pop_node("in")
    y = net.run(steps=5).output[:, 0]
    # the closed loop by hand: x <- x + 0.5 (tanh(0.4 x + 0.5 ro_prev + 0.3) - x)
    x, ro, ref = np.zeros(4), 0.0, []
    for _ in range(5):
        x = x + 0.5 * (np.tanh(0.4 * x + 0.5 * ro + 0.3) - x)
        ro = 0.25 * x.sum()
        ref.append(ro)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-12, atol=0)
    assert abs(ref[-1]) > 0.1


def test_isolated_node_may_be_named_explicitly():
    net = _closed_loop_after_popping_the_input()
    model = net.compile(input_node="in", output_node="ro")
    assert (model.input_node, model.output_node) == ("in", "ro")
    # its input goes nowhere: the loop runs on its own
    y = net.run(torch.ones(5, 1)).output
    net.pop_node("in")
    torch.testing.assert_close(y, net.run(steps=5, state=net.model.init_state(1)).output)
    net2 = Network(1.0)
    net2.add_diffeq_node("only", "leaky_integrator", 2, tau=2.0)
    assert net2.compile().input_node == net2.compile().output_node == "only"


def test_ambiguous_output_lists_candidates_and_how_to_choose():
    net = Network(1.0)
    net.add_func_node("a", 2)
    net.add_func_node("b", 2)
    net.add_func_node("c", 2)
    net.add_edge("a", "b", seed=0)
    net.add_edge("a", "c", seed=1)
    with pytest.raises(
        ValueError,
        match=r"^Network\.compile: cannot tell the output node: the nodes without outgoing "
        r"zero-delay edges are \['b', 'c'\]; name one with compile\(output_node=\.\.\.\)$",
    ):
        net.compile()
    assert net.compile(output_node="c").output_node == "c"


# ----------------------------------------------------------------------------------------
# point 4: dt, dtype and device reach the compiled network
# ----------------------------------------------------------------------------------------


def _li_net(dt, dtype=torch.float64):
    net = Network(dt, dtype=dtype)
    net.add_func_node("inp", 2)
    net.add_diffeq_node("li", "leaky_integrator", 5, tau=4.0, activation="identity")
    net.add_edge("inp", "li", torch.arange(10.0).reshape(5, 2) / 10)
    net.add_edge("li", "li", 0.1 * torch.ones(5, 5), feedback=True)
    return net


def test_changing_dt_after_a_run_equals_a_fresh_network():
    x = torch.sin(torch.arange(24.0, dtype=torch.float64)).reshape(12, 2)
    net = _li_net(1.0)
    model = net.compile()
    y1 = net.run(x).output
    torch.testing.assert_close(y1, _li_net(1.0).run(x).output, rtol=0, atol=0)
    net.dt = 2.0
    assert net.dt == 2.0 and net.compile() is model and model.dt == 2.0
    net.reset()
    y2 = net.run(x).output
    torch.testing.assert_close(y2, _li_net(2.0).run(x).output, rtol=0, atol=0)
    assert not torch.allclose(y1, y2)
    # the held state is kept: the next run continues from it with the new step
    fresh = _li_net(1.0)
    fresh.run(x[:6])
    fresh.dt = 0.5
    cont = fresh.run(x[6:]).output
    ref = _li_net(0.5)
    ref.reset(_li_net(1.0).run(x[:6]).state)
    torch.testing.assert_close(cont, ref.run(x[6:]).output, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("value", "exc"),
    [
        (0.0, ValueError),
        (-1.0, ValueError),
        (math.inf, ValueError),
        (math.nan, ValueError),
        ("2", TypeError),
        (True, TypeError),
        (None, TypeError),
    ],
)
def test_bad_dt_is_refused_and_changes_nothing(value, exc):
    net = _li_net(1.0)
    model = net.compile()
    with pytest.raises(exc, match=r"^Network\.dt: dt must be a positive number, got "):
        net.dt = value
    assert net.dt == 1.0 and model.dt == 1.0
    with pytest.raises(exc, match=r"^CompiledNetwork\.dt: dt must be a positive number, got "):
        model.dt = value
    assert model.dt == 1.0


def test_setting_dtype_and_device_moves_the_network():
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(0))
    net = _li_net(1.0, torch.float32)
    model = net.compile()
    y32 = net.run(x).output
    net.reset()
    net.dtype = torch.float64
    assert net.dtype == torch.float64 and net.compile() is model
    y64 = net.run(x).output
    assert y64.dtype == torch.float64
    torch.testing.assert_close(y64, _li_net(1.0).run(x.double()).output, rtol=0, atol=0)
    torch.testing.assert_close(y64.float(), y32, rtol=1e-5, atol=1e-6)
    net.device = "cpu"
    assert net.device == torch.device("cpu")
    with pytest.raises(TypeError, match=r"^Network\.to: dtype must be a floating torch\.dtype"):
        net.dtype = torch.int64
    with pytest.raises(RuntimeError, match=r"^Network\.to: device must be a torch device"):
        net.device = "nonsense"
    assert net.dtype == torch.float64 and net.device == torch.device("cpu")


# ----------------------------------------------------------------------------------------
# point 5: an integer buffer does not change the network's dtype
# ----------------------------------------------------------------------------------------


class CountingLeak(rg.DENode):
    """A leaky integrator that carries an integer buffer (registered first)."""

    state_vars = ("v",)
    input_names = ("I",)

    def __init__(self, n, tau=4.0, **kwargs):
        super().__init__(n, **kwargs)
        self.register_buffer("code", torch.arange(n, dtype=torch.int64))
        self.add_param("tau", tau, domain="positive")

    def rhs(self, s, i):
        return ((i.I - s.v) / self.tau,)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_integer_buffer_keeps_its_dtype_and_the_network_its_own(dtype):
    net = Network(1.0, dtype=dtype)
    net.add_func_node("inp", 1)
    net.add_diffeq_node("c", CountingLeak(3))
    net.add_edge("inp", "c", torch.tensor([[1.0], [2.0], [3.0]]))
    x = torch.ones(4, 1)
    y = net.run(x).output
    assert y.dtype == dtype and net.get_node("c").code.dtype == torch.int64
    assert net.model.init_state(2)["c.v"].dtype == dtype
    v, ref = np.zeros(3), []
    for _ in range(4):  # Euler: v <- v + (I - v) / 4
        v = v + (np.array([1.0, 2.0, 3.0]) - v) / 4.0
        ref.append(v.copy())
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-6 if dtype == torch.float32 else 1e-14)
    net.to(dtype=torch.float64 if dtype == torch.float32 else torch.float32)
    assert net.get_node("c").code.dtype == torch.int64
    torch.testing.assert_close(net.get_node("c").code, torch.arange(3))
