"""The network API refuses what it cannot honour and honours what it accepts: torch's own
methods are not shadowed, compiled programs follow the attributes they depend on, every
parameter is checked where it is set, and forward passes are independent."""

from __future__ import annotations

import copy
import io
import math
import re
import sys

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
    net.reset()
    y2 = net.run(x).output
    torch.testing.assert_close(y2, _li_net(2.0).run(x).output, rtol=0, atol=0)
    assert net.dt == 2.0 and net.compile() is model and model.dt == 2.0
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
    with pytest.raises(ValueError, match=r"^Network\.to: device must be a torch device"):
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
        self.add_param("tau", tau)

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


# ----------------------------------------------------------------------------------------
# point 11: every parameter is checked where it is set
# ----------------------------------------------------------------------------------------

NAN, INF = math.nan, math.inf

#: (model, parameter, bad value, expected range in the message)
RATE_BAD = [
    *[("leaky_tanh", "lr", v, r"in \(0, 1\]") for v in (NAN, -0.5, 0.0, 2.0, INF)],
    *[("leaky_tanh", "bias", v, "finite") for v in (NAN, INF, -INF)],
    *[
        (m, "tau", v, r"finite and > 0")
        for m in ("leaky_integrator", "li", "qif_mf", "leaky_readout")
        for v in (0.0, -1.0, NAN, INF)
    ],
    *[("li", p, v, "finite") for p in ("k", "eta") for v in (NAN, INF)],
    *[("qif_mf", "Delta", v, r"finite and >= 0") for v in (-1.0, NAN)],
    ("qif_mf", "eta", NAN, "finite"),
    ("leaky_tanh", "lr", [0.5, 2.0, 0.1], r"in \(0, 1\], got 2\.0 \(1 of 3 values are not\)"),
    ("leaky_integrator", "tau", np.array([1.0, -1.0, NAN]), r"finite and > 0, got -1\.0"),
]


@pytest.mark.parametrize(("model", "param", "value", "expected"), RATE_BAD)
def test_rate_model_parameters_are_checked(model, param, value, expected):
    net = _esn()
    before = sorted(net.graph.nodes)
    with pytest.raises(
        ValueError,
        match=rf"^Network\.add_diffeq_node\('x'\): \w+: parameter '{param}' must be {expected}",
    ):
        net.add_diffeq_node("x", model, 3, **{param: value})
    assert sorted(net.graph.nodes) == before


@pytest.mark.parametrize(
    ("cls", "kwargs", "msg"),
    [
        (rg.nodes.LeakyTanh, {"lr": 2.0}, r"^LeakyTanh: parameter 'lr' must be in \(0, 1\], got 2"),
        (rg.nodes.LeakyTanh, {"lr": np.ones(4)}, r"'lr' must be a scalar or have shape \(3,\)"),
        (rg.nodes.LeakyIntegrator, {"tau": 0}, r"^LeakyIntegrator: parameter 'tau' must be fin"),
        (rg.nodes.QIFMeanField, {"Delta": -0.1}, r"^QIFMeanField: parameter 'Delta' must be"),
        (rg.nodes.LeakyReadout, {"tau": -2.0}, r"^LeakyReadout: parameter 'tau' must be finite"),
        (rg.nodes.RectiPyLI, {"k": INF}, r"^RectiPyLI: parameter 'k' must be finite, got inf"),
        (rg.nodes.LeakyTanh, {"init": {"x": NAN}}, r"^LeakyTanh\.set_init: the initial value of"),
        (
            rg.nodes.LeakyIntegrator,
            {"init": {"v": [1.0, 2.0]}},
            r"initial value of 'v' must be a scalar, \(3,\) or \(B, 3\), got shape \(2,\)",
        ),
    ],
)
def test_rate_model_constructors_name_themselves(cls, kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        cls(3, **kwargs)


class _Plain(rg.DENode):
    state_vars = ("v",)
    input_names = ("I",)

    def __init__(self, n, a=1.0, **kwargs):
        super().__init__(n, **kwargs)
        self.add_param("a", a)

    def rhs(self, s, i):
        return (-self.a * s.v + i.I,)


@pytest.mark.parametrize(
    ("value", "msg"),
    [
        (NAN, r"^_Plain: parameter 'a' must be finite, got nan$"),
        (np.ones(4), r"^_Plain: parameter 'a' must be a scalar or have shape \(3,\), got shape"),
        (np.ones((3, 1)), r"^_Plain: parameter 'a' must be a scalar or have shape \(3,\)"),
        ("fast", r"^_Plain: parameter 'a' must be real numbers, got an array of dtype <U4$"),
    ],
)
def test_add_param_checks_every_user_parameter(value, msg):
    with pytest.raises((ValueError, TypeError), match=msg):
        _Plain(3, a=value)
    node = _Plain(3)
    with pytest.raises(ValueError, match=r"^_Plain\.set_init: the initial value of 'v' must be"):
        node.set_init("v", [[NAN, 0.0, 0.0]])
    with pytest.raises(ValueError, match=r"^_Plain\.add_param: unknown domain 'big'"):
        node.add_param("b", 1.0, domain="big")
    assert node.param_names == ("a",)


def test_set_var_checks_the_domain_and_changes_nothing_when_refused():
    net = _esn()
    net.run(torch.zeros(3, 2))
    lr = net.get_var("res", "lr").clone()
    held = {k: v.clone() for k, v in net.state.items()}
    with pytest.raises(
        ValueError, match=r"^Network\.set_var\('res'\): parameter 'lr' must be in \(0, 1\], got 2"
    ):
        net.set_var("res", "lr", 2.0)
    with pytest.raises(ValueError, match=r"^Network\.set_var: value for res\.x contains NaN"):
        net.set_var("res", "x", NAN)
    with pytest.raises(TypeError, match=r"^Network\.set_var: the value for res\.x must be real"):
        net.set_var("res", "x", "zero")
    with pytest.raises(KeyError, match=r"Network\.set_var: no node 'ghost'; nodes are"):
        net.set_var("ghost", "x", 0.0)
    with pytest.raises(KeyError, match=r"Network\.get_var: node 'res' has no variable 'y'"):
        net.get_var("res", "y")
    torch.testing.assert_close(net.get_var("res", "lr"), lr, rtol=0, atol=0)
    for k, v in held.items():
        torch.testing.assert_close(net.state[k], v, rtol=0, atol=0)
    net.set_var("res", "lr", 0.25)
    assert float(net.get_var("res", "lr")) == 0.25


#: (add_edge keyword arguments, exception, message after "Network.add_edge('inp', 'res'): ")
EDGE_BAD = [
    ({"weights": np.full((20, 2), NAN)}, ValueError, r"weights contains NaN or inf values"),
    ({"weights": np.full((20, 2), INF)}, ValueError, r"weights contains NaN or inf values"),
    ({"weights": np.full((20, 2), "a")}, TypeError, r"weights must be real numbers, got an arr"),
    ({"weights": np.full((20, 2), None)}, TypeError, r"weights must be real numbers, got an arr"),
    ({"weights": np.ones((20, 2)) * 1j}, TypeError, r"weights must be real numbers"),
    ({"mask": np.full((20, 2), NAN)}, ValueError, r"mask must hold only 0s and 1s .*got the val"),
    ({"mask": np.full((20, 2), 0.5)}, ValueError, r"mask must hold only 0s and 1s .*got the val"),
    ({"mask": 2 * np.ones((20, 2))}, ValueError, r"mask must hold only 0s and 1s \(or booleans"),
    ({"mask": np.ones((2, 20))}, ValueError, r"mask must have shape \(n_out, n_in\) = \(20, 2\)"),
    ({"bias": INF}, ValueError, r"bias contains NaN or inf values \(1 of 1\)"),
    ({"bias": NAN}, ValueError, r"bias contains NaN or inf values"),
    ({"bias": [NAN] + [0.0] * 19}, ValueError, r"bias contains NaN or inf values \(1 of 20\)"),
    ({"bias": np.ones(3)}, ValueError, r"bias must be a scalar or have shape \(20,\), got \(3,\)"),
    ({"bias": "yes"}, TypeError, r"bias must be real numbers"),
    ({"init": NAN, "delay": 1}, ValueError, r"init contains NaN or inf values"),
    ({"init": np.zeros(3), "delay": 1}, ValueError, r"init must be a scalar, \(2,\) or \(B, 2\)"),
    ({"init": np.zeros((1, 1, 2)), "delay": 1}, ValueError, r"init must be a scalar, \(2,\)"),
    ({"delay": -1}, ValueError, r"delay must be an int >= 0, got -1"),
    ({"delay": 1.5}, ValueError, r"delay must be an int >= 0, got 1\.5"),
    ({"delay": "1"}, ValueError, r"delay must be an int >= 0, got '1'"),
    ({"train": "sgd"}, ValueError, r"train must be one of \(None, 'gd', 'rls'\), got 'sgd'"),
    ({"train": ["gd"]}, ValueError, r"train must be one of \(None, 'gd', 'rls'\), got \['gd'\]"),
    ({"sparse": "yes"}, TypeError, r"sparse must be True or False, got 'yes'"),
    ({"seed": 1.5}, TypeError, r"seed must be an int or a torch\.Generator, got float"),
    ({"source_var": 3}, ValueError, r"source_var 3 is not a state variable of 'inp'"),
    ({"target_var": "J"}, ValueError, r"target_var 'J' is not an input of 'res'"),
]


@pytest.mark.parametrize(("kwargs", "exc", "msg"), EDGE_BAD)
def test_edge_arguments_are_checked_and_the_graph_is_unchanged(kwargs, exc, msg):
    net = _esn()
    net.pop_edge("inp", "res")
    before = sorted(net.graph.edges)
    with pytest.raises(exc, match=rf"^Network\.add_edge\('inp', 'res'\): {msg}"):
        net.add_edge("inp", "res", **kwargs)
    assert sorted(net.graph.edges) == before


def test_linear_checks_its_sizes():
    with pytest.raises(ValueError, match=r"^Linear: n_in must be an int >= 1, got 0$"):
        Linear(0, 2)
    with pytest.raises(TypeError, match=r"^Linear: n_out must be an int >= 1, got 2\.0$"):
        Linear(3, 2.0)
    edge = Linear(3, 2, delay=1)
    with pytest.raises(AttributeError):
        edge.delay = 0  # a compiled network is planned on it: pop and add the edge instead
    assert edge.delay == 1


@pytest.mark.parametrize(
    ("kwargs", "exc", "msg"),
    [
        ({"dt": INF}, ValueError, r"^Network: dt must be a positive number, got inf"),
        ({"dt": np.float64(NAN)}, ValueError, r"^Network: dt must be a positive number, got nan"),
        ({"dt": 1.0, "dtype": torch.int64}, TypeError, r"^Network: dtype must be a floating"),
        ({"dt": 1.0, "dtype": "float32"}, TypeError, r"^Network: dtype must be a floating"),
        ({"dt": 1.0, "device": "gpu0"}, ValueError, r"^Network: device must be a torch dev"),
    ],
)
def test_network_arguments_are_checked(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        Network(**kwargs)


# ----------------------------------------------------------------------------------------
# point 12: every integer and array-like is accepted; anything else names the call
# ----------------------------------------------------------------------------------------


def test_numpy_integers_are_valid_sizes():
    net = Network(np.float32(1.0))
    net.add_func_node("inp", np.int64(2))
    node = net.add_diffeq_node("res", "leaky_tanh", np.int32(4), lr=np.float64(0.5))
    assert node.n == 4 and type(node.n) is int
    edge = net.add_edge("inp", "res", seed=np.int64(0), delay=np.int64(1))
    assert edge.delay == 1 and type(edge.delay) is int
    assert Linear(np.int64(3), np.uint8(2)).weight.shape == (2, 3)
    obs = rg.Observer(["res"], every=np.int64(2), start=np.int16(1))
    assert (obs.every, obs.start) == (2, 1)
    assert net.run(torch.ones(5, 2), observer=obs)["res"].shape == (2, 4)
    with pytest.raises(TypeError, match=r"^Network\.add_func_node\('f'\): FuncNode: n must be"):
        net.add_func_node("f", 2.0)
    with pytest.raises(TypeError, match=r"^LeakyTanh: n must be a positive int"):
        rg.nodes.LeakyTanh(True)


def test_negative_stride_views_are_valid_everywhere():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(4, 3))
    M = (rng.random((4, 3)) > 0.3).astype(float)
    b, i0, u = rng.normal(size=4), rng.normal(size=3), rng.normal(size=(6, 3))

    def build(w, m, bias, init, x):
        net = Network(1.0, dtype=torch.float64)
        net.add_func_node("inp", 3)
        net.add_diffeq_node("res", "leaky_tanh", 4, lr=np.full(4, 0.5)[::-1])
        net.add_edge("inp", "res", w, mask=m, bias=bias, delay=1, init=init)
        net.get_node("res").set_init("x", bias / 10)
        return net.run(x).output

    flipped = build(W[::-1, ::-1], M[::-1], b[::-1], i0[::-1], u[::-1])
    ref = build(
        *(np.ascontiguousarray(a) for a in (W[::-1, ::-1], M[::-1], b[::-1])),
        i0[::-1].copy(),
        u[::-1].copy(),
    )
    torch.testing.assert_close(flipped, ref, rtol=0, atol=0)
    net = _esn(torch.float64)
    model = net.compile()
    y, _ = model.step(u[::-1, :2][0], model.init_state(1))
    y_ref, _ = model.step(u[::-1, :2][0].copy(), model.init_state(1))
    torch.testing.assert_close(y, y_ref, rtol=0, atol=0)
    net.add_diffeq_node("more", "leaky_tanh", 3, bias=np.zeros(3))
    net.set_var("more", "bias", np.array([1.0, 2.0, 3.0])[::-1])
    torch.testing.assert_close(net.get_var("more", "bias"), torch.tensor([3.0, 2.0, 1.0]).double())


@pytest.mark.parametrize(
    ("inputs", "msg"),
    [
        (np.array([[None, 1.0]], dtype=object), r"must be real numbers, got an array of dtype obj"),
        (np.array([["a", "b"]]), r"must be real numbers, got an array of dtype <U1"),
        ([[1.0, 2.0], [3.0]], r"must be a number, an array of numbers or a tensor, got list"),
        (torch.zeros(3, 2).to_sparse(), r"must be a dense tensor, got layout torch\.sparse_coo"),
    ],
)
def test_inputs_that_are_no_numbers_name_the_call(inputs, msg):
    net = _esn()
    net.run(torch.zeros(2, 2))
    held = {k: v.clone() for k, v in net.state.items()}
    with pytest.raises(TypeError, match=rf"^Network\.run: inputs {msg}"):
        net.run(inputs)
    with pytest.raises(TypeError, match=rf"^CompiledNetwork\.forward: inputs {msg}"):
        net.model(inputs)
    for k, v in held.items():
        torch.testing.assert_close(net.state[k], v, rtol=0, atol=0)


# ----------------------------------------------------------------------------------------
# point 14: forward is stateless (torch's recurrent modules); run continues (RectiPy's)
# ----------------------------------------------------------------------------------------


def _trainable_net():
    net = Network(1.0)
    net.add_func_node("inp", 1)
    net.add_diffeq_node("li", "leaky_integrator", 6, tau=3.0, train=["tau"])
    net.add_func_node("out", 1)
    net.add_edge("inp", "li", train="gd", seed=0)
    net.add_edge("li", "li", train="gd", feedback=True, seed=1)
    net.add_edge("li", "out", train="gd", seed=2)
    return net


def test_plain_torch_training_loop_equals_fresh_networks():
    x = torch.sin(torch.linspace(0, 6, 30))[:, None]
    target = torch.roll(x, 2, 0)
    model = _trainable_net().compile()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    losses, snapshots = [], []
    for _ in range(3):
        snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        loss = ((model(x) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()  # the second and third iterations have their own graph
        opt.step()
        losses.append(loss.item())
    assert model.state is None  # forward leaves the held state alone
    assert losses[2] < losses[0]
    for snap, loss in zip(snapshots, losses, strict=True):
        fresh = _trainable_net()
        fresh.load_state_dict(snap)
        ref = ((fresh.run(x).output - target) ** 2).mean().item()
        assert ref == pytest.approx(loss, rel=1e-6, abs=0)


def test_forward_leaves_the_held_state_and_run_continues_from_it():
    x = torch.randn(2, 10, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    net = _esn(torch.float64)
    model = net.compile()
    whole = net.run(x).output
    net.reset()
    first = net.run(x[:, :4])
    held = {k: v.clone() for k, v in net.state.items()}
    # forward from a fresh state, twice the same, the held state untouched
    y1, y2 = model(x[:, 4:]), net(x[:, 4:])
    torch.testing.assert_close(y1, y2, rtol=0, atol=0)
    torch.testing.assert_close(y1, _esn(torch.float64).model(x[:, 4:]), rtol=0, atol=0)
    # (forward builds the autograd graph, run does not: the two paths agree to rounding)
    torch.testing.assert_close(y1, _esn(torch.float64).run(x[:, 4:]).output, rtol=0, atol=1e-14)
    for k, v in held.items():
        torch.testing.assert_close(net.state[k], v, rtol=0, atol=0)
    # forward from a given state continues a sequence without holding it
    cont = model(x[:, 4:], state=first.state)
    torch.testing.assert_close(cont, whole[:, 4:], rtol=0, atol=1e-14)
    # run continues from the held state (RectiPy)
    torch.testing.assert_close(net.run(x[:, 4:]).output, whole[:, 4:], rtol=0, atol=0)
    assert model.forward(None, steps=3).shape == (3, 1)


# ----------------------------------------------------------------------------------------
# point 23: copies and pickles of networks with CSR weights
# ----------------------------------------------------------------------------------------


def _sparse_esn():
    net = Network(1.0, dtype=torch.float64)
    net.add_func_node("inp", 2)
    net.add_diffeq_node("res", "leaky_tanh", 30, lr=0.4, bias=0.1)
    net.add_func_node("out", 1)
    net.add_edge("inp", "res", rg.input_weights(30, 2, seed=0, dtype=torch.float64))
    w = rg.recurrent_weights(30, 0.9, 0.2, seed=1, sparse=True, dtype=torch.float64)
    net.add_edge("res", "res", w, feedback=True)
    net.add_edge("res", "out", seed=2)
    return net


def test_deepcopy_and_pickle_of_csr_networks_run_the_same():
    x = torch.randn(12, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    net = _sparse_esn()
    assert net.get_edge("res", "res").sparse
    net.run(x[:4])  # a held state to carry along
    copies = [copy.deepcopy(net), copy.deepcopy(net.model)]
    buf = io.BytesIO()
    torch.save(net, buf)
    buf.seek(0)
    copies.append(torch.load(buf, weights_only=False))
    ref = net.run(x[4:]).output
    for other in copies:
        assert other.state_dict()["edges.res->res.weight"].layout == torch.sparse_csr
        torch.testing.assert_close(other.run(x[4:]).output, ref, rtol=0, atol=0)
    # the copy owns its weights
    other = copy.deepcopy(net)
    other.get_edge("res", "res").weight.values().zero_()
    assert net.get_edge("res", "res").weight.values().abs().sum() > 0
    # a state_dict through torch.save into a fresh network
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    buf.seek(0)
    fresh = _sparse_esn()
    with torch.no_grad():
        fresh.get_edge("res", "out").weight.zero_()
    fresh.load_state_dict(torch.load(buf))
    net.reset()
    torch.testing.assert_close(fresh.run(x).output, net.run(x).output, rtol=0, atol=0)


# ----------------------------------------------------------------------------------------
# unknown keyword arguments name the call and list the valid names
# ----------------------------------------------------------------------------------------

KEYWORD_CALLS = {
    "Network": lambda net: Network(1.0, bogus=1),
    "Network.add_node": lambda net: net.add_node("f", rg.FuncNode(2), bogus=1),
    "Network.add_func_node": lambda net: net.add_func_node("f", 2, bogus=1),
    "Network.add_edge": lambda net: net.add_edge("out", "res", feedback=True, bogus=1),
    "Network.compile": lambda net: net.compile(bogus=1),
    "Network.run": lambda net: net.run(torch.zeros(2, 2), bogus=1),
    "Network.reset": lambda net: net.reset(bogus=1),
    "Network.get_var": lambda net: net.get_var("res", "x", bogus=1),
    "Network.set_var": lambda net: net.set_var("res", "x", 0.0, bogus=1),
    "Network.to": lambda net: net.to(bogus=1),
    "CompiledNetwork.run": lambda net: net.model.run(torch.zeros(2, 2), bogus=1),
    "CompiledNetwork.forward": lambda net: net.model(torch.zeros(2, 2), bogus=1),
    "CompiledNetwork.step": lambda net: net.model.step(torch.zeros(2), {}, bogus=1),
    "CompiledNetwork.init_state": lambda net: net.model.init_state(2, bogus=1),
    "CompiledNetwork.reset": lambda net: net.model.reset(bogus=1),
    "Observer": lambda net: rg.Observer(["res"], bogus=1),
    "Linear": lambda net: Linear(2, 2, bogus=1),
}


@pytest.mark.parametrize("call", list(KEYWORD_CALLS))
def test_unknown_keywords_name_the_call_and_list_valid_ones(call):
    net = _esn()
    net.run(torch.zeros(3, 2))
    held = {k: v.clone() for k, v in net.state.items()}
    edges, nodes = sorted(net.graph.edges), sorted(net.graph.nodes)
    with pytest.raises(
        TypeError,
        match=rf"^{re.escape(call)}: unknown keyword argument\(s\) \['bogus'\]; valid ones are \[",
    ):
        KEYWORD_CALLS[call](net)
    assert sorted(net.graph.edges) == edges and sorted(net.graph.nodes) == nodes
    for k, v in held.items():
        torch.testing.assert_close(net.state[k], v, rtol=0, atol=0)
    with pytest.raises(
        TypeError,
        match=r"^Network\.add_diffeq_node\('y'\): LeakyTanh: unknown keyword argument\(s\) "
        r"\['bogus'\]; valid ones are \['n', 'lr', 'bias', 'activation'",
    ):
        net.add_diffeq_node("y", "leaky_tanh", 3, bogus=1)


# ----------------------------------------------------------------------------------------
# weight initialisers check their arguments too
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "exc", "msg"),
    [
        (lambda: rg.recurrent_weights(0), ValueError, r"^recurrent_weights: n must be an int >= 1"),
        (lambda: rg.recurrent_weights(2.5), TypeError, r"^recurrent_weights: n must be an int"),
        (
            lambda: rg.recurrent_weights(5, spectral_radius=NAN),
            ValueError,
            r"^recurrent_weights: spectral_radius must be a finite number >= 0 or None, got nan",
        ),
        (
            lambda: rg.recurrent_weights(5, spectral_radius=-1.0),
            ValueError,
            r"^recurrent_weights: spectral_radius must be a finite number >= 0",
        ),
        (
            lambda: rg.recurrent_weights(5, dtype=torch.int64),
            TypeError,
            r"^recurrent_weights: dtype must be a floating torch\.dtype",
        ),
        (
            lambda: rg.recurrent_weights(5, sparse="yes"),
            TypeError,
            r"^recurrent_weights: sparse must be True or False",
        ),
        (
            lambda: rg.input_weights(5, 2, scaling=NAN),
            ValueError,
            r"^input_weights: scaling contains NaN or inf values",
        ),
        (
            lambda: rg.input_weights(5, 2, scaling=[1.0, 2.0, 3.0]),
            ValueError,
            r"^input_weights: scaling must be a scalar or have shape \(2,\), got shape \(3,\)",
        ),
        (lambda: rg.input_weights(5, 0), ValueError, r"^input_weights: n_in must be an int >= 1"),
        (
            lambda: rg.input_weights(5, 2, connectivity="all"),
            ValueError,
            r"^input_weights: connectivity must be in \(0, 1\], got 'all'",
        ),
        (lambda: rg.bias_weights(5, scaling=INF), ValueError, r"^bias_weights: scaling contains"),
        (
            lambda: rg.edges.spectral_radius(np.ones((3, 2))),
            ValueError,
            r"^spectral_radius: w must be a square matrix, got shape \(3, 2\)",
        ),
        (
            lambda: rg.edges.spectral_radius(np.full((2, 2), NAN)),
            ValueError,
            r"^spectral_radius: w contains NaN or inf values \(4 of 4\)",
        ),
        (
            lambda: rg.recurrent_weights(5, conectivity=0.5),
            TypeError,
            r"^recurrent_weights: unknown keyword argument\(s\) \['conectivity'\]; valid ones",
        ),
    ],
)
def test_initialiser_arguments_are_checked(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_initialisers_take_numpy_integers_and_negative_strides():
    w = rg.input_weights(np.int64(5), np.int32(2), scaling=np.array([1.0, 2.0])[::-1], seed=0)
    ref = rg.input_weights(5, 2, scaling=np.array([2.0, 1.0]), seed=0)
    torch.testing.assert_close(w, ref, rtol=0, atol=0)
    assert rg.edges.spectral_radius(np.diag([1.0, -3.0])[::-1, ::-1]) == pytest.approx(3.0)
    r = rg.recurrent_weights(np.int64(6), spectral_radius=0.9, connectivity=1.0, seed=1)
    assert rg.edges.spectral_radius(r) == pytest.approx(0.9, rel=1e-5)


# ----------------------------------------------------------------------------------------
# data sets and metrics name themselves for unknown keywords and non-numbers
# ----------------------------------------------------------------------------------------

DATA_CALLS = {
    "mackey_glass": lambda: rg.datasets.mackey_glass(10, bogus=1),
    "lorenz": lambda: rg.datasets.lorenz(10, bogus=1),
    "narma": lambda: rg.datasets.narma(10, bogus=1),
    "force_target": lambda: rg.datasets.force_target(np.arange(3.0), bogus=1),
    "to_forecasting": lambda: rg.datasets.to_forecasting(np.arange(5.0), bogus=1),
    "evidence_accumulation": lambda: rg.datasets.evidence_accumulation(2, bogus=1),
    "pattern_generation": lambda: rg.datasets.pattern_generation(bogus=1),
    "mse": lambda: rg.metrics.mse(np.ones(2), np.ones(2), bogus=1),
    "nrmse": lambda: rg.metrics.nrmse(np.arange(2.0), np.ones(2), bogus=1),
}


@pytest.mark.parametrize("call", list(DATA_CALLS))
def test_datasets_and_metrics_name_unknown_keywords(call):
    with pytest.raises(
        TypeError, match=rf"^{call}: unknown keyword argument\(s\) \['bogus'\]; valid ones are \["
    ):
        DATA_CALLS[call]()


def test_to_forecasting_refuses_strings():
    with pytest.raises(TypeError, match=r"^to_forecasting: x must be real numbers, got an array"):
        rg.datasets.to_forecasting(np.array(["a"] * 5))
    X, y = rg.datasets.to_forecasting(np.arange(6.0)[::-1], forecast=np.int64(2))
    np.testing.assert_array_equal(X, [5.0, 4.0, 3.0, 2.0])
    np.testing.assert_array_equal(y, [3.0, 2.0, 1.0, 0.0])


def test_changing_a_node_integrator_is_honoured_or_refused():
    x = torch.sin(torch.arange(16.0, dtype=torch.float64)).reshape(8, 2)

    def li_net(integrator):
        net = _li_net(0.5)
        net.pop_edge("li", "li")
        if integrator != "euler":
            net.get_node("li").integrator = integrator
        return net

    euler = li_net("euler").run(x).output
    for name in ("rk4", "exp_euler"):
        net = li_net(name)
        assert net.get_node("li").integrator == name
        ref = Network(0.5, dtype=torch.float64)
        ref.add_func_node("inp", 2)
        ref.add_diffeq_node(
            "li", "leaky_integrator", 5, tau=4.0, activation="identity", integrator=name
        )
        ref.add_edge("inp", "li", torch.arange(10.0).reshape(5, 2) / 10)
        torch.testing.assert_close(net.run(x).output, ref.run(x).output, rtol=0, atol=0)
        assert not torch.allclose(net.run(x, state=net.model.init_state(1)).output, euler)
    node = rg.nodes.LeakyIntegrator(3)
    with pytest.raises(ValueError, match=r"^LeakyIntegrator: unknown integrator 'rk5'; valid"):
        node.integrator = "rk5"
    assert node.integrator == "euler"
    tanh = rg.nodes.LeakyTanh(3)
    with pytest.raises(ValueError, match=r"^LeakyTanh: the model defines its own exact step"):
        tanh.integrator = "rk4"
    assert tanh.integrator == "map"


def test_state_arguments_and_pops_name_the_call():
    net = _esn()
    model = net.compile()
    for call, f in (
        ("CompiledNetwork.run", lambda: model.run(torch.zeros(2, 3, 2), state=[1, 2])),
        ("CompiledNetwork.forward", lambda: model(torch.zeros(2, 3, 2), state=[1, 2])),
        ("CompiledNetwork.step", lambda: model.step(torch.zeros(2, 2), [1, 2])),
    ):
        with pytest.raises(
            TypeError, match=rf"^{re.escape(call)}: state must be a dict of tensors"
        ):
            f()
    y, s = model.step(torch.ones(3, 2), None)  # None: the initial state
    y_ref, s_ref = model.step(torch.ones(3, 2), model.init_state(3))
    torch.testing.assert_close(y, y_ref, rtol=0, atol=0)
    with pytest.raises(KeyError, match=r"Network\.pop_node: no node 'zz'; nodes are"):
        net.pop_node("zz")
    with pytest.raises(KeyError, match=r"Network\.pop_edge: no edge 'zz' -> 'res'; edges are"):
        net.pop_edge("zz", "res")
    with pytest.raises(
        TypeError, match=r"^Network\.add_diffeq_node\('q'\): weights must be an \(n, n\) matrix"
    ):
        net.add_diffeq_node("q", "leaky_tanh", weights="abc")
    assert "q" not in net


def test_numpy_integers_as_steps_and_batch_sizes():
    net = _esn(torch.float64)
    model = net.compile()
    assert model.init_state(np.int64(3))["res.x"].shape == (3, 20)
    y = net.run(steps=np.int64(4), sampling_steps=np.int64(2), cutoff=np.int8(1), record="res")
    assert y.output.shape == (4, 1) and y["res"].shape == (2, 20)
    assert model(None, steps=np.uint16(3)).shape == (3, 1)
    with pytest.raises(ValueError, match=r"^Network\.run: steps must be an int >= 1, got 2\.0"):
        net.run(steps=2.0)


def test_pickles_with_the_planned_attributes_as_plain_ones_still_load():
    """Networks pickled when dt, integrator and the edge's delay were plain attributes."""
    net = _li_net(0.5)
    x = torch.ones(3, 2, dtype=torch.float64)
    ref = net.run(x).output
    net.reset()
    old = copy.deepcopy(net)
    for obj, names in (
        (old, ("dt", "dtype", "device")),
        (old.get_node("li"), ("integrator",)),
        (old.get_edge("li", "li"), ("n_in", "n_out", "delay", "source_var", "target_var")),
    ):
        state = dict(obj.__dict__)
        for name in names:
            state[name] = state.pop(f"_{name}")
        type(obj).__setstate__(obj, state)
    old._compiled = None
    torch.testing.assert_close(old.run(x).output, ref, rtol=0, atol=0)


def test_csr_edge_with_bias_into_a_dynamic_node_keeps_the_batch_axis():
    """Batch 1, a CSR edge with a bias into a node of the time loop: the product of a
    mat-vec plus the folded bias is ``(1, n)``, so the output is ``(T, n)`` with the
    edge's values (it used to lose the batch axis and be resized)."""
    rng = np.random.default_rng(3)
    W = rng.normal(size=(3, 2))
    b = rng.normal(size=3)
    net = rg.Network(dt=1.0, dtype=torch.float64)
    net.add_func_node("in", 2)
    net.add_func_node("mid", 2)
    net.add_func_node("out", 3)
    net.add_edge("in", "mid", weights=np.eye(2), delay=1)  # makes the next nodes dynamic
    net.add_edge("mid", "out", weights=W, sparse=True, bias=True)
    net.get_edge("mid", "out").bias.data[:] = torch.as_tensor(b)
    x = rng.normal(size=(5, 2))
    y = net.run(x).output
    expected = np.vstack([np.zeros(2), x[:-1]]) @ W.T + b
    assert y.shape == (5, 3)
    np.testing.assert_allclose(y.numpy(), expected, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------------------
# floating dtypes only, devices by name, flags as bools
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exc", "msg"),
    [
        (
            {"dtype": torch.int64},
            TypeError,
            r"dtype must be a floating torch\.dtype, got torch\.int64",
        ),
        (
            {"dtype": torch.bool},
            TypeError,
            r"dtype must be a floating torch\.dtype, got torch\.bool",
        ),
        ({"dtype": torch.complex64}, TypeError, r"dtype must be a floating torch\.dtype"),
        ({"dtype": "float32"}, TypeError, r"dtype must be a floating torch\.dtype, got 'float32'"),
        ({"device": "gpu0"}, ValueError, r"device must be a torch device or its name"),
        ({"device": 1.5}, TypeError, r"device must be a torch device or its name, got float"),
        ({"device": True}, TypeError, r"device must be a torch device or its name, got bool"),
        ({"delay": 1.0}, ValueError, r"delay must be an int >= 0, got 1\.0"),
        ({"delay": True}, ValueError, r"delay must be an int >= 0, got True"),
        ({"sparse": "no"}, TypeError, r"sparse must be True or False, got 'no'"),
        ({"bias": np.array([True, False])}, TypeError, r"bias must be True, False or real"),
    ],
)
def test_linear_refuses_what_it_cannot_honour(kwargs, exc, msg):
    with pytest.raises(exc, match=rf"^Linear: {msg}"):
        Linear(3, 2, **kwargs)


def test_linear_takes_integer_tensors_and_zero_dim_flags():
    assert Linear(3, 2, delay=torch.tensor(2)).delay == 2
    assert Linear(3, 2, delay=np.int64(2)).delay == 2
    edge = Linear(3, 2, bias=torch.tensor(True))  # the flag, not a bias of 1
    torch.testing.assert_close(edge.bias, torch.zeros(2))
    assert Linear(3, 2, bias=np.bool_(False)).bias is None
    assert Linear(3, 2, dtype=torch.float64, device="cpu").weight.dtype == torch.float64


def test_compiled_network_refuses_a_dtype_that_is_not_floating():
    net = _esn()
    net.run(torch.ones(3, 2))
    model = net.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    held = {k: v.clone() for k, v in model.state.items()}
    for convert in (lambda: model.to(torch.complex64), lambda: model.type(torch.int64)):
        with pytest.raises(TypeError, match=r"^CompiledNetwork(\.to)?: .*floating"):
            convert()
        for k, v in model.state_dict().items():
            assert v.dtype == before[k].dtype
            torch.testing.assert_close(v, before[k], rtol=0, atol=0)
        for k, v in model.state.items():
            torch.testing.assert_close(v, held[k], rtol=0, atol=0)
    assert model.double() is model and model.state["res.x"].dtype == torch.float64


@pytest.mark.parametrize(
    ("call", "msg"),
    [
        (lambda n: n.run(torch.ones(3, 2), verbose="no"), r"Network\.run: verbose must be True"),
        (lambda n: n.run(torch.ones(3, 2), enable_grad=1), r"Network\.run: enable_grad must be"),
        (lambda n: n.run(torch.ones(3, 2), progress="yes"), r"Network\.run: progress must be"),
        (lambda n: n.model.run(torch.ones(3, 2), progress=0), r"CompiledNetwork\.run: progress"),
        (
            lambda n: n.add_edge("out", "res", feedback="yes"),
            r"Network\.add_edge\('out', 'res'\): feedback must be True or False, got 'yes'",
        ),
    ],
)
def test_flags_must_be_bools(call, msg):
    net = _esn()
    net.run(torch.ones(3, 2))
    held = {k: v.clone() for k, v in net.state.items()}
    edges = sorted(net.graph.edges)
    with pytest.raises(TypeError, match=rf"^{msg}"):
        call(net)
    assert sorted(net.graph.edges) == edges
    for k, v in net.state.items():
        torch.testing.assert_close(v, held[k], rtol=0, atol=0)


def test_run_refuses_arguments_it_would_drop():
    net = _esn()
    obs = rg.Observer(["res"])
    for kwargs in ({"record": ["out"]}, {"sampling_steps": 2}, {"cutoff": 1}):
        with pytest.raises(ValueError, match=r"^Network\.run: observer= says what to record"):
            net.run(torch.ones(3, 2), observer=obs, **kwargs)
    with pytest.raises(ValueError, match=r"^Network\.run: verbose=True and progress=False"):
        net.run(torch.ones(3, 2), verbose=True, progress=False)
    assert net.state is None  # nothing ran
    assert net.run(torch.ones(3, 2), observer=obs)["res"].shape == (3, 20)


def test_initialisers_refuse_bools_as_scales():
    with pytest.raises(TypeError, match=r"^recurrent_weights: spectral_radius must be a real"):
        rg.recurrent_weights(5, True)
    with pytest.raises(TypeError, match=r"^input_weights: scaling must be a real number"):
        rg.input_weights(4, 2, scaling=np.array([True, False]))
    with pytest.raises(TypeError, match=r"^bias_weights: scaling must be a real number"):
        rg.bias_weights(4, scaling=torch.tensor(True))
    torch.testing.assert_close(
        rg.bias_weights(4, scaling=torch.tensor(2), seed=0), 2 * rg.bias_weights(4, seed=0)
    )


# ----------------------------------------------------------------------------------------
# a single name is one name, never its characters
# ----------------------------------------------------------------------------------------


def test_train_takes_one_name_or_a_list():
    net = Network(1.0)
    node = net.add_diffeq_node("a", "leaky_tanh", n=4, train="lr")
    assert [k for k, _ in node.named_parameters()] == ["lr"]
    node = net.add_diffeq_node("b", "leaky_tanh", n=4, train=("bias", "lr"))
    assert sorted(k for k, _ in node.named_parameters()) == ["bias", "lr"]
    node = net.add_diffeq_node("c", "li", n=4, train_params="li_op/tau")
    assert [k for k, _ in node.named_parameters()] == ["tau"]
    node = net.add_diffeq_node("d", "leaky_tanh", n=4, train="lr", train_params=["bias"])
    assert sorted(k for k, _ in node.named_parameters()) == ["bias", "lr"]  # both honoured
    node = net.add_diffeq_node("e", "izhikevich", n=4, train="g")  # one name, not 'k', 'g'
    assert [k for k, _ in node.named_parameters()] == ["g"]
    with pytest.raises(ValueError, match=r"^Network\.add_diffeq_node\('f'\): .*\['kg'\]"):
        net.add_diffeq_node("f", "izhikevich", n=4, train="kg")


@pytest.mark.parametrize(
    ("kwargs", "exc", "msg"),
    [
        ({"train": "tau"}, ValueError, r"LeakyTanh: train= names unknown parameters \['tau'\]; "
         r"the model's parameters are \['lr', 'bias'\]"),
        ({"train": 5}, TypeError, r"train must be a name or a list of names, got 5"),
        ({"train": ["lr", 3]}, TypeError, r"train must hold names \(strings\), got 3"),
        ({"train": {"lr": True}}, TypeError, r"train must be a name or a list of names"),
        ({"train_params": 1.0}, TypeError, r"train_params must be a name or a list of names"),
        ({"node_vars": "lr"}, TypeError, r"node_vars must be a dict of variable names"),
        ({"op": 3}, TypeError, r"op must be an operator name, got 3"),
    ],
)  # fmt: skip
def test_add_diffeq_node_names_are_checked(kwargs, exc, msg):
    net = _esn()
    with pytest.raises(exc, match=rf"^Network\.add_diffeq_node\('x'\): {msg}"):
        net.add_diffeq_node("x", "leaky_tanh", n=4, **kwargs)
    assert "x" not in net


def test_add_diffeq_node_instance_size_is_an_int():
    net = Network(1.0)
    with pytest.raises(TypeError, match=r"^Network\.add_diffeq_node: n must be an int >= 1"):
        net.add_diffeq_node("x", rg.nodes.LeakyTanh(4), n=4.0)
    assert net.add_diffeq_node("x", rg.nodes.LeakyTanh(4), n=np.int64(4)).n == 4


def test_hook_names_are_names():
    hook = rg.network.Hook("res", "res.x", print, writes="res->out")
    assert hook.reads == ("res.x",) and hook.writes == ("res->out",)
    assert rg.network.Hook("res", ["res", "res.x"], print).reads == ("res", "res.x")
    with pytest.raises(TypeError, match=r"^Hook: reads must hold names \(strings\), got 3"):
        rg.network.Hook("res", ("res", 3), print)
    with pytest.raises(TypeError, match=r"^Hook: fn must be callable"):
        rg.network.Hook("res", (), "print")
    with pytest.raises(TypeError, match=r"^Hook: replaces must be True or False"):
        rg.network.Hook("res", (), print, replaces="yes")
    with pytest.raises(ValueError, match=r"^Hook: recorded=True needs replaces=True"):
        rg.network.Hook("res", (), print, recorded=True)


# ----------------------------------------------------------------------------------------
# one value per unit for a parameter shared by all units
# ----------------------------------------------------------------------------------------


def _per_unit_esn(lr, dtype=torch.float64):
    net = Network(1.0, dtype=dtype)
    net.add_func_node("inp", 2)
    net.add_diffeq_node("res", "leaky_tanh", 8, lr=lr, bias=0.1)
    net.add_func_node("out", 2)
    net.add_edge("inp", "res", rg.input_weights(8, 2, seed=0, dtype=dtype))
    net.add_edge(
        "res", "res", rg.recurrent_weights(8, 0.9, 0.5, seed=1, dtype=dtype), feedback=True
    )
    net.add_edge("res", "out", seed=2)
    return net


@pytest.mark.parametrize("batch", [1, 3])
def test_set_var_per_unit_equals_per_unit_construction_native_on_and_off(batch):
    lr = np.linspace(0.2, 0.9, 8)
    x = torch.randn(batch, 15, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    was = rg.native.enabled()
    outs = {}
    try:
        for native in (True, False):
            rg.native.set_enabled(native)
            built = _per_unit_esn(lr).run(x).output
            net = _per_unit_esn(0.5)
            net.set_var("res", "lr", lr)
            outs[native] = net.run(x).output
            torch.testing.assert_close(outs[native], built, rtol=0, atol=0)
            node_vars = Network(1.0, dtype=torch.float64)
            node = node_vars.add_diffeq_node("res", "leaky_tanh", 8, node_vars={"lr": lr})
            torch.testing.assert_close(node.lr, torch.as_tensor(lr), rtol=0, atol=0)
    finally:
        rg.native.set_enabled(was)
    torch.testing.assert_close(outs[True], outs[False], rtol=0, atol=1e-12)
    assert not torch.equal(outs[False], _per_unit_esn(0.5).run(x).output)


def test_set_var_per_unit_keeps_the_parameter_and_drops_its_old_gradient():
    net = Network(1.0)
    net.add_func_node("inp", 2)
    node = net.add_diffeq_node("res", "lif", 4, tau_m=10.0, train=["tau_m"])
    net.add_edge("inp", "res", seed=0)
    p = node.tau_m
    p.grad = torch.ones(())
    net.set_var("res", "tau_m", [5.0, 6.0, 7.0, 8.0])
    assert node.tau_m is p and isinstance(p, nn.Parameter) and p.grad is None
    torch.testing.assert_close(p.detach(), torch.tensor([5.0, 6.0, 7.0, 8.0]))
    net.set_var("res", "tau_m", [9.0])  # one value: every unit, the shape stays (n,)
    torch.testing.assert_close(p.detach(), torch.full((4,), 9.0))
    with pytest.raises(
        ValueError, match=r"must be a scalar or have shape \(4,\), got shape \(3,\)"
    ):
        net.set_var("res", "tau_m", [1.0, 2.0, 3.0])
    with pytest.raises(
        ValueError, match=r"^Network\.set_var\('res'\): parameter 'tau_m' must be finite and > 0"
    ):
        net.set_var("res", "tau_m", [1.0, 2.0, -3.0, 4.0])
    torch.testing.assert_close(p.detach(), torch.full((4,), 9.0))
    scalar = Network(1.0).add_diffeq_node("r", "leaky_tanh", 4)
    Network(1.0).add_diffeq_node("r", scalar)
    assert scalar.lr.shape == ()


def test_run_and_forward_without_input_keep_the_batch_of_the_state():
    net = _esn()
    net.run(torch.zeros(3, 4, 2))
    ref = _esn()
    ref.run(torch.zeros(3, 4, 2))
    out = net.run(steps=5, record=["res"])
    assert out.output.shape == (3, 5, 1) and out["res"].shape == (3, 5, 20)
    torch.testing.assert_close(out.output, ref.run(torch.zeros(3, 5, 2)).output, rtol=0, atol=0)
    assert net.forward(steps=2, state=net.state).shape == (3, 2, 1)
    assert net.forward(steps=2).shape == (2, 1)  # no state: batch 1, the unbatched layout


# ----------------------------------------------------------------------------------------
# threads: the calls on the held state run one at a time
# ----------------------------------------------------------------------------------------


def _in_two_threads(a, b):
    import threading

    out = [None, None]
    barrier = threading.Barrier(2)

    def work(k, job):
        barrier.wait(timeout=60)
        try:
            out[k] = ("ok", job())
        except BaseException as err:
            out[k] = ("error", err)

    threads = [
        threading.Thread(target=work, args=(k, j), daemon=True) for k, j in enumerate((a, b))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive(), "a thread hung"
    return out


def test_a_run_and_a_ridge_fit_from_two_threads_follow_each_other():
    """A run and a fit continue one network's held state at once: the outputs, the fitted
    weights and the final state are those of one call after the other, in one order or
    the other. The torch loop (native off) runs long enough for the two calls to overlap
    when nothing serialises them."""
    g = torch.Generator().manual_seed(0)
    x_run = torch.randn(1, 2000, 2, generator=g)
    x_fit, y_fit = torch.randn(1, 2000, 2, generator=g), torch.randn(1, 2000, 1, generator=g)

    def fitted(net):
        return net.get_edge("res", "out").weight.detach().clone()

    def warm():
        net = _esn()
        net.run(x_run[:, :5])
        return net

    was, interval = rg.native.enabled(), sys.getswitchinterval()
    rg.native.set_enabled(False)
    sys.setswitchinterval(1e-5)  # threads take turns often: the calls overlap
    try:
        ref = []
        for run_first in (True, False):
            net = warm()
            if not run_first:
                net.fit_ridge(x_fit, y_fit, alpha=1e-3)
            y = net.run(x_run).output.clone()
            if run_first:
                net.fit_ridge(x_fit, y_fit, alpha=1e-3)
            ref.append((y, fitted(net), net.state["res.x"].clone()))
        for _ in range(5):
            net = warm()
            got = _in_two_threads(
                lambda net=net: net.run(x_run).output.clone(),
                lambda net=net: net.fit_ridge(x_fit, y_fit, alpha=1e-3),
            )
            assert [s for s, _ in got] == ["ok", "ok"], got
            now = (got[0][1], fitted(net), net.state["res.x"])
            assert any(all(torch.equal(a, b) for a, b in zip(now, r, strict=True)) for r in ref)
    finally:
        rg.native.set_enabled(was)
        sys.setswitchinterval(interval)


def test_the_lock_survives_copies_pickles_and_calls_from_inside_a_call():
    net = _esn()
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(1))
    net.run(x)
    copies = [copy.deepcopy(net), copy.deepcopy(net.model)]
    buf = io.BytesIO()
    torch.save(net, buf)
    buf.seek(0)
    copies.append(torch.load(buf, weights_only=False))
    ref = net.run(x).output
    for other in copies:
        with torch.no_grad():  # as Network.run (the readout is trainable)
            torch.testing.assert_close(other.run(x).output, ref, rtol=0, atol=0)
        assert other._lock is not net._lock
    fresh = _esn()
    fresh.load_state_dict(net.state_dict())
    net.reset()
    torch.testing.assert_close(fresh.run(x).output, net.run(x).output, rtol=0, atol=0)
    # a call from inside another, in the same thread: a hook that reads the network
    seen = []
    hook = rg.network.Hook("res", ("res",), lambda t, r: seen.append(net.get_var("res", "x")))
    model = net.model
    model.execute("test", x, None, None, False, None, hooks=(hook,))
    assert len(seen) == x.shape[0]
    assert net.test(x, torch.zeros(6, 1)) is not None  # test() runs inside itself


def test_output_var_is_honoured_or_refused():
    """``output_var`` (RectiPy's name) must name what the node already emits: rnngraph's
    ``li`` emits ``tanh(v)``, so ``output_var="li_op/v"`` is refused and the graph is unchanged;
    a FitzHugh-like node that emits its state ``v`` takes ``output_var="v"``."""
    net = Network(0.1)
    with pytest.raises(ValueError, match=r"add_diffeq_node\('rnn'\): output_var 'v' .*rnn\.v"):
        net.add_diffeq_node("rnn", "li", n=3, weights=0.1 * np.eye(3), output_var="li_op/v")
    assert list(net.graph) == []
    net.add_diffeq_node("a", "leaky_tanh", n=3, output_var="x")  # emits x itself
    with pytest.raises(ValueError, match=r"output_var 'v'"):
        net.add_diffeq_node("b", "leaky_tanh", n=3, output_var="v")


def test_a_single_train_name_is_one_name_in_node_constructors():
    node = rg.nodes.Izhikevich(4, train="k")
    assert [n for n, p in node.named_parameters()] == ["k"]
    with pytest.raises(ValueError, match=r"Izhikevich: train= names unknown parameters \['kg'\]"):
        rg.nodes.Izhikevich(4, train="kg")


def _small_esn() -> Network:
    net = Network(1.0)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", "leaky_tanh", n=4)
    net.add_edge("in", "res", weights=np.ones((4, 1)))
    return net


def test_a_batched_initial_value_must_fit_the_run():
    """``set_init`` with ``(B, n)`` values fixes the batch: another batch is refused with a
    message naming the node and variable (it was a raw torch size error), batch B runs."""
    net = _small_esn()
    init = np.arange(12.0).reshape(3, 4) / 12
    net.get_node("res").set_init("x", init)
    for x in (np.zeros((2, 5, 1)), np.zeros((5, 1))):
        with pytest.raises(ValueError, match=r"node 'res'.*'x' is for batch size 3"):
            net.run(x)
    assert net.state is None
    out = net.run(np.zeros((3, 2, 1))).output  # each row starts from its own initial value
    for b in range(3):
        one = _small_esn()
        one.get_node("res").set_init("x", init[b])
        torch.testing.assert_close(out[b], one.run(np.zeros((2, 1))).output, rtol=0, atol=0)


def test_edge_arguments_that_would_be_dropped_are_refused():
    net = _small_esn()
    with pytest.raises(ValueError, match=r"add_edge.*init=.*delay 0"):
        net.add_edge("res", "res", weights=np.eye(4), init=5.0)
    with pytest.raises(ValueError, match=r"add_edge.*seed=.*weights are given"):
        net.add_edge("res", "res", weights=np.eye(4), seed=3, feedback=True)
    assert net.graph.number_of_edges() == 1
    a, b = _small_esn(), _small_esn()  # a seed draws the default weights, reproducibly
    a.add_edge("res", "res", seed=3, feedback=True)
    b.add_edge("res", "res", seed=3, feedback=True)
    torch.testing.assert_close(a.get_edge("res", "res").weight, b.get_edge("res", "res").weight)


def test_layer_builders_honour_or_refuse_sizes_and_flags():
    from rnngraph import layers

    net = _small_esn()
    with pytest.raises(ValueError, match=r"n=3 but the given LIF has 4 units"):
        layers.serial(net, "S", "in", rg.nodes.LIF(4), n=3)
    with pytest.raises(TypeError, match=r"serial.*capture_intermediate"):
        layers.serial(net, "S", "in", "lif", n=3, capture_intermediate="no")
    with pytest.raises(TypeError, match=r"recurrent_serial.*trainable_feedback"):
        layers.recurrent_serial(net, "R", "in", "lif", "lif", 3, 3, trainable_feedback=1)
    with pytest.raises(TypeError, match=r"biclique.*capture_intermediate"):
        layers.biclique(net, "B", ["in"], {"a": ("lif", 3)}, capture_intermediate=0.0)
    assert sorted(net.graph) == ["in", "res"]
    # serial has one connection: a seed with its weights given would have no effect
    w = np.full((3, 1), 0.5)
    with pytest.raises(ValueError, match=r"serial: seed= .*no effect"):
        layers.serial(net, "S", "in", rg.nodes.LIF(3), weights=w, seed=4)
    layer = layers.serial(net, "S", "in", rg.nodes.LIF(3), weights=w)
    torch.testing.assert_close(net.get_edge("in", "S").weight.double(), torch.as_tensor(w))
    assert layer.neurons["neuron"] == "S"


def test_batched_initial_values_reach_get_var_set_var_and_runs_without_input():
    """Before any run, ``get_var``/``set_var`` and ``run(steps=)`` take the batch that ``(B, n)``
    initial values fix; errors about a batch that does not fit name the call made."""
    net = _small_esn()
    init = torch.arange(12.0).reshape(3, 4) / 12
    net.get_node("res").set_init("x", init)
    torch.testing.assert_close(net.get_var("res", "x"), init.float(), rtol=0, atol=0)
    out = net.run(steps=2).output
    assert out.shape == (3, 2, 4)
    other = _small_esn()
    other.get_node("res").set_init("x", init)
    torch.testing.assert_close(out, other.run(np.zeros((3, 2, 1))).output, rtol=0, atol=0)
    net.reset()
    net.set_var("res", "x", 0.5)
    assert net.get_var("res", "x").shape == (3, 4)
    fresh = _small_esn()
    fresh.get_node("res").set_init("x", init)
    with pytest.raises(ValueError, match=r"^Network\.forward: node 'res'.*batch size 3"):
        fresh.forward(np.zeros((2, 2, 1)))
