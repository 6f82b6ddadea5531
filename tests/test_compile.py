"""compile(): ordering, cycle detection, and a property test against a naive evaluator."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnngraph import CompiledNetwork, Network

# ----------------------------------------------------------------------------------------
# cycles
# ----------------------------------------------------------------------------------------


def _ring(labels, delayed=()):
    net = Network(1.0)
    for v in labels:
        net.add_func_node(v, 2, "tanh")
    for u, v in zip(labels, labels[1:] + labels[:1], strict=True):
        net.add_edge(u, v, delay=1 if (u, v) in delayed else 0, seed=0)
    return net


def test_zero_delay_cycle_raises_naming_nodes_in_order():
    net = _ring(["a", "b", "c"])
    with pytest.raises(
        ValueError,
        match=r"^Network\.compile: the cycle a -> b -> c -> a has no delayed edge; "
        r"mark one edge feedback=True or give it delay>=1$",
    ):
        net.compile()


def test_zero_delay_self_loop_raises():
    net = Network(1.0)
    net.add_diffeq_node("res", "leaky_tanh", 3)
    net.add_edge("res", "res", seed=0)  # forgot feedback=True
    with pytest.raises(ValueError, match=r"the cycle res -> res has no delayed edge"):
        net.compile()


def test_cycle_inside_a_larger_graph_is_named_in_order():
    net = Network(1.0)
    for v in ("inp", "x", "y", "z", "w", "out"):
        net.add_func_node(v, 1)
    for u, v in [("inp", "x"), ("x", "y"), ("y", "z"), ("z", "x"), ("z", "w"), ("w", "out")]:
        net.add_edge(u, v, [[1.0]])
    net.add_edge("w", "inp", [[1.0]], feedback=True)  # a legal cycle beside the illegal one
    with pytest.raises(ValueError, match=r"the cycle .* has no delayed edge") as info:
        net.compile()
    names = re.search(r"the cycle (.*) has no", str(info.value)).group(1).split(" -> ")
    assert names[0] == names[-1] and len(names) == 4
    ring = ["x", "y", "z"]
    k = ring.index(names[0])
    assert names[:-1] == ring[k:] + ring[:k]  # a rotation of x -> y -> z, in edge direction


def test_cycle_with_one_delayed_edge_compiles():
    net = _ring(["a", "b", "c"], delayed={("c", "a")})
    model = net.compile()
    assert model.order == ["a", "b", "c"]
    assert (model.input_node, model.output_node) == ("a", "c")
    y = net.run(torch.ones(4, 2)).output
    assert y.shape == (4, 2) and torch.isfinite(y).all()


def test_compile_caches_and_recompiles_after_changes():
    net = _ring(["a", "b"], delayed={("b", "a")})
    m1 = net.compile()
    assert net.compile() is m1 and net.model is m1
    assert isinstance(m1, CompiledNetwork)
    net.add_func_node("c", 2)
    net.add_edge("b", "c", seed=1)
    m2 = net.compile()
    assert m2 is not m1 and m2.output_node == "c"
    net.pop_node("c")
    assert net.compile().output_node == "b"


def test_generated_loop_is_straight_line_code():
    net = _ring(["a", "b"], delayed={("b", "a")})
    src = net.compile().loop_source()
    assert "for t in range(n_steps):" in src
    # no dictionary look-ups or host syncs inside the loop
    body = src.split("for t in range(n_steps):")[1]
    assert '["' not in body and "item()" not in body and ".state" not in body


# ----------------------------------------------------------------------------------------
# property test: random DAGs plus delayed back-edges
# ----------------------------------------------------------------------------------------


@dataclass
class _NodeSpec:
    kind: str  # "func", "li" (leaky integrator), "lt" (leaky tanh)
    n: int
    act: str
    tau: float


@dataclass
class _EdgeSpec:
    u: int
    v: int
    delay: int
    source_var: str | None
    bias: bool


@st.composite
def _graphs(draw):
    n_nodes = draw(st.integers(2, 6))
    nodes = [
        _NodeSpec(
            kind=draw(st.sampled_from(["func", "li", "lt"])),
            n=draw(st.integers(1, 3)),
            act=draw(st.sampled_from(["identity", "tanh"])),
            tau=draw(st.floats(0.5, 3.0)),
        )
        for _ in range(n_nodes)
    ]
    edges: dict[tuple[int, int], _EdgeSpec] = {}
    for v in range(1, n_nodes):  # zero-delay edges go forward in index order: a DAG
        for u in range(v):
            if draw(st.booleans()):
                edges[u, v] = _EdgeSpec(u, v, 0, None, draw(st.booleans()))
    for v in range(n_nodes):  # delayed edges anywhere: back-edges, self-loops, forward
        for u in range(n_nodes):
            if (u, v) not in edges and draw(st.integers(0, 3)) == 0:
                edges[u, v] = _EdgeSpec(u, v, draw(st.integers(1, 3)), None, draw(st.booleans()))
    for v in range(1, n_nodes):  # every function node needs an input
        if nodes[v].kind == "func" and not any(e.v == v for e in edges.values()):
            edges[0, v] = _EdgeSpec(0, v, 0, None, False)
    for e in edges.values():  # sometimes read a DE node's state instead of its output
        if nodes[e.u].kind == "li" and draw(st.booleans()):
            e.source_var = "v"
    seed = draw(st.integers(0, 2**31 - 1))
    return nodes, list(edges.values()), seed


def _build(nodes, edges, seed):
    g = np.random.default_rng(seed)
    net = Network(0.5, dtype=torch.float64)
    for i, s in enumerate(nodes):
        if s.kind == "func":
            net.add_func_node(f"n{i}", s.n, s.act)
        elif s.kind == "li":
            net.add_diffeq_node(f"n{i}", "leaky_integrator", s.n, tau=s.tau, activation=s.act)
        else:
            net.add_diffeq_node(f"n{i}", "leaky_tanh", s.n, lr=1.0 / (1.0 + s.tau), bias=0.1)
    weights, biases = {}, {}
    for e in edges:
        w = g.normal(size=(nodes[e.v].n, nodes[e.u].n))
        b = g.normal(size=nodes[e.v].n) if e.bias else None
        weights[e.u, e.v], biases[e.u, e.v] = w, b
        net.add_edge(
            f"n{e.u}",
            f"n{e.v}",
            w,
            delay=e.delay,
            bias=False if b is None else b,
            source_var=e.source_var,
        )
    return net, weights, biases


def _naive_run(nodes, edges, weights, biases, u, dt):
    """Evaluate node by node in index order: sum incoming edges, delayed edges read buffers."""
    f = {"identity": lambda x: x, "tanh": np.tanh}
    B, T, _ = u.shape
    state = {i: np.zeros((B, s.n)) for i, s in enumerate(nodes) if s.kind != "func"}
    bufs = {(e.u, e.v): [np.zeros((B, nodes[e.u].n))] * e.delay for e in edges if e.delay}
    ys = np.zeros((B, T, nodes[-1].n))
    for t in range(T):
        out, read = {}, {}
        for i, s in enumerate(nodes):
            x = u[:, t] if i == 0 else np.zeros((B, s.n))
            for e in edges:
                if e.v != i:
                    continue
                if e.delay:
                    src = bufs[e.u, e.v][-e.delay]
                else:
                    src = read[e.u, e.source_var]
                x = x + src @ weights[e.u, e.v].T
                if biases[e.u, e.v] is not None:
                    x = x + biases[e.u, e.v]
            if s.kind == "func":
                out[i] = f[s.act](x)
            elif s.kind == "li":
                state[i] = state[i] + dt * (x - state[i]) / s.tau
                out[i] = f[s.act](state[i])
            else:
                lr = 1.0 / (1.0 + s.tau)
                state[i] = (1 - lr) * state[i] + lr * np.tanh(x + 0.1)
                out[i] = state[i]
            read[i, None] = out[i]
            if s.kind == "li":
                read[i, "v"] = state[i]
        for e in edges:
            if e.delay:
                bufs[e.u, e.v] = bufs[e.u, e.v][1:] + [read[e.u, e.source_var]]
        ys[:, t] = out[len(nodes) - 1]
    return ys


@settings(
    derandomize=True,
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_graphs())
def test_random_graphs_compile_in_order_and_match_naive_evaluation(graph):
    nodes, edges, seed = graph
    net, weights, biases = _build(nodes, edges, seed)
    model = net.compile(input_node="n0", output_node=f"n{len(nodes) - 1}")
    pos = {v: k for k, v in enumerate(model.order)}
    assert sorted(pos) == sorted(net.graph.nodes)
    for e in edges:
        if e.delay == 0:
            assert pos[f"n{e.u}"] < pos[f"n{e.v}"], (model.order, e)
    u = np.random.default_rng(seed + 1).normal(size=(2, 7, nodes[0].n))
    got = net.run(u).output.numpy()
    ref = _naive_run(nodes, edges, weights, biases, u, 0.5)
    np.testing.assert_allclose(got, ref, rtol=1e-13, atol=1e-12)  # sums in other orders
