"""Bad input raises an error that names what was expected and what came, before anything
changes: the held state, the graph and the parameters are the same afterwards."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_state_equal, state_copy

import rnngraph as rg
from rnngraph import Network, Observer


@pytest.fixture
def net():
    """An ESN that has run once, so it holds a nonzero state (batch size 2)."""
    net = Network(0.5)
    net.add_func_node("inp", 3)
    net.add_diffeq_node("res", "leaky_integrator", 8, tau=2.0)
    net.add_func_node("out", 2)
    net.add_edge("inp", "res", seed=0)
    net.add_edge("res", "res", rg.recurrent_weights(8, 0.9, 0.5, seed=1), feedback=True)
    net.add_edge("res", "out", train="gd", seed=2)
    net.run(torch.randn(2, 10, 3, generator=torch.Generator().manual_seed(0)))
    return net


def _snapshot(net):
    params = {k: v.detach().clone() for k, v in net.state_dict().items()}
    return state_copy(net.state), list(net.graph.nodes), list(net.graph.edges), params


def _assert_untouched(net, snap):
    state, nodes, edges, params = snap
    assert list(net.graph.nodes) == nodes and list(net.graph.edges) == edges
    assert_state_equal(net.state, state)
    now = net.state_dict()
    assert now.keys() == params.keys()
    for k in params:
        torch.testing.assert_close(now[k], params[k], rtol=0, atol=0)


# every case: (exception, message pattern, call on the fixture network)
CASES = {
    "wrong input width": (
        ValueError,
        r"(?<!Compiled)Network\.run: inputs have 4 channels, input node 'inp' expects 3 "
        r"\(shape \(T, 3\) or \(B, T, 3\)\)",
        lambda net: net.run(torch.zeros(2, 5, 4)),
    ),
    "wrong input rank": (
        ValueError,
        r"inputs must be \(T, C\) or \(B, T, C\) with C = 3 \(the width of input node 'inp'\), "
        r"got shape \(5,\)",
        lambda net: net.run(torch.zeros(5)),
    ),
    "NaN input": (
        ValueError,
        r"(?<!Compiled)Network\.run: inputs contain NaN or inf values",
        lambda net: net.run(np.full((2, 5, 3), np.nan)),
    ),
    "inf input in forward": (
        ValueError,
        r"(?<!Compiled)Network\.forward: inputs contain NaN or inf values",
        lambda net: net(torch.tensor([[0.0, float("inf"), 0.0]]).expand(2, 1, 3)),
    ),
    "empty input (no steps)": (
        ValueError,
        r"inputs are empty \(shape \(2, 0, 3\)\)",
        lambda net: net.run(torch.zeros(2, 0, 3)),
    ),
    "empty input (no batch)": (
        ValueError,
        r"inputs are empty \(shape \(0, 4, 3\)\)",
        lambda net: net.run(torch.zeros(0, 4, 3)),
    ),
    "complex input": (
        TypeError,
        r"inputs must be real numbers, got dtype torch\.complex64",
        lambda net: net.run(torch.zeros(2, 3, 3, dtype=torch.complex64)),
    ),
    "object input": (
        TypeError,
        r"(?<!Compiled)Network\.run: inputs must be real numbers, got an array of dtype object",
        lambda net: net.run(np.array([[None, 1, 2]], dtype=object)),
    ),
    "state with wrong batch size": (
        ValueError,
        r"(?<!Compiled)Network\.run: state entry 'res\.v' must be a \(B=3, n\) tensor, "
        r"got \(2, 8\); "
        r"the batch size of a run must match its state \(call reset\(\) to start anew\)",
        lambda net: net.run(torch.zeros(3, 5, 3)),
    ),
    "explicit state= with wrong batch size": (
        ValueError,
        r"state entry 'res\.v' must be a \(B=2, n\) tensor, got \(4, 8\)",
        lambda net: net.run(torch.zeros(2, 5, 3), state=net.model.init_state(4)),
    ),
    "state missing entries": (
        ValueError,
        r"the state lacks \['res->res@1'\]; expected keys \['res\.v', 'res->res@1'\]",
        lambda net: net.run(torch.zeros(2, 5, 3), state={"res.v": torch.zeros(2, 8)}),
    ),
    "state entry of the wrong width": (
        ValueError,
        r"(?<!Compiled)Network\.run: state entry 'res->res@1' must be a \(B=2, 8\) tensor of dtype "
        r"torch\.float32, got shape \(2, 5\) and dtype torch\.float32",
        lambda net: net.run(
            torch.zeros(2, 5, 3), state={**net.state, "res->res@1": torch.zeros(2, 5)}
        ),
    ),
    "state entry of the wrong dtype": (
        ValueError,
        r"state entry 'res\.v' must be a \(B=2, 8\) tensor of dtype torch\.float32, "
        r"got shape \(2, 8\) and dtype torch\.float64",
        lambda net: net.run(
            torch.zeros(2, 5, 3), state={**net.state, "res.v": net.state["res.v"].double()}
        ),
    ),
    "steps= disagreeing with inputs": (
        ValueError,
        r"steps=4 but the inputs have 5 steps",
        lambda net: net.run(torch.zeros(2, 5, 3), steps=4),
    ),
    "neither inputs nor steps": (
        ValueError,
        r"give inputs, or steps= for a run without input",
        lambda net: net.run(),
    ),
    "steps=0": (
        ValueError,
        r"steps must be an int >= 1, got 0",
        lambda net: net.run(steps=0),
    ),
    "record an unknown node": (
        ValueError,
        r"cannot record 'ghost\.v': no node 'ghost'; nodes are \['inp', 'res', 'out'\]",
        lambda net: net.run(torch.zeros(2, 5, 3), record=["res", "ghost.v"]),
    ),
    "record an unknown state variable": (
        ValueError,
        r"cannot record 'res\.x': node 'res' has no state variable 'x'; "
        r"its state variables are \['v'\]",
        lambda net: net.run(torch.zeros(2, 5, 3), observer=Observer(["res.x"])),
    ),
    "record a state variable of a function node": (
        ValueError,
        r"cannot record 'out\.v': node 'out' has no state variable 'v'",
        lambda net: net.run(torch.zeros(2, 5, 3), record="out.v"),
    ),
    "observer of the wrong type": (
        TypeError,
        r"observer must be an Observer, got list",
        lambda net: net.model.run(torch.zeros(2, 5, 3), observer=["res"]),
    ),
    "unknown keyword in run": (
        TypeError,
        r"Network\.run: unknown keyword argument\(s\) \['sampling_step'\]; valid ones are "
        r"\['inputs', 'sampling_steps', 'cutoff',",
        lambda net: net.run(torch.zeros(2, 5, 3), sampling_step=2),
    ),
    "unknown source in add_edge": (
        KeyError,
        r"Network\.add_edge\('ghost', 'res'\): no node 'ghost'; nodes are \['inp', 'res', 'out'\]",
        lambda net: net.add_edge("ghost", "res"),
    ),
    "unknown target in add_edge": (
        KeyError,
        r"Network\.add_edge\('res', 'ghost'\): no node 'ghost'",
        lambda net: net.add_edge("res", "ghost"),
    ),
    "edge exists already": (
        ValueError,
        r"Network\.add_edge\('res', 'out'\): the edge exists already; pop_edge\(\) it first",
        lambda net: net.add_edge("res", "out"),
    ),
    "unknown keyword in add_edge": (
        TypeError,
        r"Network\.add_edge: unknown keyword argument\(s\) \['weight'\]; valid ones are "
        r"\['source', 'target', 'weights',",
        lambda net: net.add_edge("inp", "out", weight=np.zeros((2, 3))),
    ),
    "weights of the wrong shape": (
        ValueError,
        r"Network\.add_edge\('inp', 'out'\): weights must have shape \(n_target, n_source\) = "
        r"\(2, 3\) \('out' has 2 units, 'inp' has 3\), got \(3, 2\)",
        lambda net: net.add_edge("inp", "out", np.zeros((3, 2))),
    ),
    "recurrent weights of the wrong shape": (
        ValueError,
        r"Network\.add_edge\('rnn', 'rnn'\): weights must have shape \(n_target, n_source\) = "
        r"\(4, 4\) \('rnn' has 4 units, 'rnn' has 4\), got \(4, 5\)",
        lambda net: net.add_diffeq_node("rnn", "leaky_tanh", weights=np.zeros((4, 5))),
    ),
    "feedback with delay 0": (
        ValueError,
        r"feedback=True needs delay >= 1, got delay=0",
        lambda net: net.add_edge("out", "res", feedback=True, delay=0),
    ),
    "unknown source_var": (
        ValueError,
        r"source_var 'u' is not a state variable of 'res' \(LeakyIntegrator: \['v'\]\)",
        lambda net: net.add_edge("res", "inp", feedback=True, source_var="u"),
    ),
    "unknown target_var": (
        ValueError,
        r"target_var 'r_in' is not an input of 'res' \(LeakyIntegrator: \['I'\]\)",
        lambda net: net.add_edge("out", "res", feedback=True, target_var="r_in"),
    ),
    "unknown node in get_node": (
        KeyError,
        r"Network\.get_node: no node 'ghost'; nodes are \['inp', 'res', 'out'\]",
        lambda net: net.get_node("ghost"),
    ),
    "unknown edge in get_edge": (
        KeyError,
        r"Network\.get_edge: no edge 'out' -> 'res'; edges are ",
        lambda net: net.get_edge("out", "res"),
    ),
    "unknown node in get_var": (
        KeyError,
        r"no node 'ghost'",
        lambda net: net.get_var("ghost", "v"),
    ),
    "unknown variable in get_var": (
        KeyError,
        r"Network\.get_var: node 'res' has no variable 'x'; state variables \['v'\], "
        r"parameters \['tau'\]",
        lambda net: net.get_var("res", "x"),
    ),
    "unknown variable in set_var": (
        KeyError,
        r"Network\.set_var: node 'res' has no variable 'x'",
        lambda net: net.set_var("res", "x", 1.0),
    ),
    "NaN in set_var": (
        ValueError,
        r"Network\.set_var: value for res\.v contains NaN or inf",
        lambda net: net.set_var("res", "v", np.nan),
    ),
    "wrong shape in set_var": (
        ValueError,
        r"Network\.set_var: res\.v has shape \(2, 8\), got a value of shape \(3,\)",
        lambda net: net.set_var("res", "v", [1.0, 2.0, 3.0]),
    ),
    "unknown model name": (
        ValueError,
        r"Network\.add_diffeq_node: unknown model 'lif_typo'; built-in models are \[.*'leaky_tanh'",
        lambda net: net.add_diffeq_node("x", "lif_typo", 3),
    ),
    "unknown integrator name": (
        ValueError,
        r"LeakyIntegrator: unknown integrator 'rk45'; valid names are "
        r"\['euler', 'exp_euler', 'rk4'\]",
        lambda net: net.add_diffeq_node("x", "leaky_integrator", 3, integrator="rk45"),
    ),
    "unknown model parameter": (
        TypeError,
        r"Network\.add_diffeq_node\('x'\): LeakyIntegrator: unknown keyword argument\(s\) "
        r"\['taus'\]; valid ones are \['n', 'tau', 'activation', 'integrator', 'train', 'init'\]",
        lambda net: net.add_diffeq_node("x", "leaky_integrator", 3, taus=2.0),
    ),
    "unknown keyword in add_diffeq_node with an instance": (
        TypeError,
        r"model parameters \['tau'\] go to the DENode's constructor",
        lambda net: net.add_diffeq_node("x", rg.nodes.LeakyIntegrator(3), tau=2.0),
    ),
    "unknown trainable parameter": (
        ValueError,
        r"LeakyIntegrator: train= names unknown parameters \['tau_m'\]; "
        r"the model's parameters are \['tau'\]",
        lambda net: net.add_diffeq_node("x", "leaky_integrator", 3, train=["tau_m"]),
    ),
    "unknown node_vars": (
        ValueError,
        r"node_vars names 'x', which node 'y' does not have; parameters \['tau'\], "
        r"state variables \['v'\]",
        lambda net: net.add_diffeq_node("y", "leaky_integrator", 3, node_vars={"x": 1.0}),
    ),
    "unknown activation of a function node": (
        ValueError,
        r"FuncNode: unknown activation_function 'tanhh'; valid names are \['identity', "
        r"'log_softmax', 'relu', 'sigmoid', 'softmax', 'softmin', 'tanh'\]",
        lambda net: net.add_func_node("f", 3, "tanhh"),
    ),
    "unknown activation of a DE node": (
        ValueError,
        r"LeakyIntegrator: unknown activation 'sigmoïd'; valid names are \[",
        lambda net: net.add_diffeq_node("x", "leaky_integrator", 3, activation="sigmoïd"),
    ),
    "label taken": (
        ValueError,
        r"Network\.add_func_node: a node 'res' exists already; pop_node\(\) it first",
        lambda net: net.add_func_node("res", 3),
    ),
    "label with a dot": (
        ValueError,
        r"a node label must be a non-empty string without '\.', '->' or '@', got 'a\.b'",
        lambda net: net.add_func_node("a.b", 3),
    ),
    "bad number of units": (
        ValueError,
        r"FuncNode: n must be a positive int \(the number of units\), got 0",
        lambda net: net.add_func_node("f", 0),
    ),
    "input_node that does not exist": (
        KeyError,
        r"Network\.compile: input_node='ghost' is not a node",
        lambda net: net.compile(input_node="ghost"),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_raises_and_leaves_network_untouched(net, case):
    exc, msg, call = CASES[case]
    snap = _snapshot(net)
    with pytest.raises(exc, match=msg):
        call(net)
    _assert_untouched(net, snap)
    # and the network still runs, continuing the held state
    assert net.run(torch.zeros(2, 1, 3)).output.shape == (2, 1, 2)


@pytest.mark.parametrize(
    ("dt", "exc"),
    [
        (-0.1, ValueError),
        (0.0, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        ("1", TypeError),
        (True, TypeError),
    ],
)
def test_network_rejects_bad_dt(dt, exc):
    with pytest.raises(exc, match=r"Network: dt must be a positive number, got "):
        Network(dt)


def test_network_rejects_bad_dtype_and_keywords():
    with pytest.raises(TypeError, match=r"Network: dtype must be a floating torch\.dtype, got "):
        Network(1.0, dtype=torch.int32)
    with pytest.raises(
        TypeError,
        match=r"Network: unknown keyword argument\(s\) \['device_type'\]; valid ones are "
        r"\['dt', 'device', 'dtype'\]",
    ):
        Network(1.0, device_type="cpu")


def test_compile_errors():
    net = Network(1.0)
    with pytest.raises(ValueError, match=r"Network\.compile: the network has no nodes"):
        net.compile()
    net.add_func_node("a", 2)
    net.add_func_node("b", 2)
    with pytest.raises(
        ValueError,
        match=r"Network\.compile: node\(s\) \['a', 'b'\] have no edges; connect them",
    ):
        net.compile()
    net.add_func_node("c", 2)
    net.add_edge("a", "c", seed=0)
    net.add_edge("b", "c", seed=1)
    with pytest.raises(
        ValueError,
        match=r"cannot tell the input node: the nodes without incoming zero-delay edges are "
        r"\['a', 'b'\]; name one with compile\(input_node=\.\.\.\)",
    ):
        net.compile()
    with pytest.raises(ValueError, match=r"function node 'b' receives no input"):
        net.compile(input_node="a", output_node="c")


def test_step_errors(net):
    model = net.model
    held = state_copy(model.state)
    with pytest.raises(ValueError, match=r"CompiledNetwork\.step: inputs have 2 channels"):
        model.step(torch.zeros(2, 2), model.init_state(2))
    with pytest.raises(ValueError, match=r"CompiledNetwork\.step: state entry 'res\.v' must be"):
        model.step(torch.zeros(1, 3), model.init_state(2))
    with pytest.raises(ValueError, match=r"init_state: batch_size must be an int >= 1, got 0"):
        model.init_state(0)
    assert_state_equal(model.state, held)


def test_edge_init_for_another_batch_size(net):
    net.add_edge("out", "res", feedback=True, init=torch.ones(4, 2), seed=3)
    net.reset()
    with pytest.raises(
        ValueError,
        match=r"edge out->res has an init value for batch size 4, the run has batch size 2",
    ):
        net.run(torch.zeros(2, 3, 3))
    assert net.state is None
    assert net.run(torch.zeros(4, 3, 3)).output.shape == (4, 3, 2)
