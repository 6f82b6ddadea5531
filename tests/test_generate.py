"""Generative (closed-loop) runs, ``Network.generate``, and the native reservoir loop with a
readout fed back.

The reference is the test suite's own interpreter (``_reference``) running the closed loop
as a graph: the network's nodes and edges plus an identity edge ``output -> input`` of delay
1 whose initial value is the first generated input. A warmup is the same graph with the
output forced to zero (so that nothing is fed back) for all but the last warmup step.
"""

from __future__ import annotations

import math

import _reference as ref
import numpy as np
import pytest
import torch
from conftest import assert_state_equal, state_copy

import rnngraph as rg
from rnngraph.datasets import mackey_glass

N, C = 40, 2


def _weights(seed: int, skip: bool, bias: bool) -> dict:
    g = torch.Generator().manual_seed(seed)
    w = {
        "in->res": torch.randn(N, C, generator=g, dtype=torch.float64),
        "res->res": rg.recurrent_weights(N, spectral_radius=0.9, connectivity=0.3, seed=g).double(),
        "res->out": torch.randn(C, N, generator=g, dtype=torch.float64) * 0.2,
    }
    if skip:
        w["in->out"] = torch.randn(C, C, generator=g, dtype=torch.float64) * 0.3
    b = {k: torch.randn(len(v), generator=g, dtype=torch.float64) * 0.1 for k, v in w.items()}
    return {k: (v, b[k] if bias else None) for k, v in w.items()}


def esn(seed: int = 0, skip: bool = False, bias: bool = True, sparse: bool = False):
    """input (identity, C) -> leaky tanh (N) -> readout (identity, C), optionally with a
    skip edge input -> readout; with its reference description."""
    net = rg.Network(dt=1.0, dtype=torch.float64)
    nodes = {
        "in": net.add_func_node("in", C),
        "res": net.add_diffeq_node("res", "leaky_tanh", n=N, lr=0.35, bias=0.05),
        "out": net.add_func_node("out", C),
    }
    edges = []
    for key, (w, b) in _weights(seed, skip, bias).items():
        s, t = key.split("->")
        delay = 1 if s == t else 0
        net.add_edge(
            s, t, w, delay=delay, bias=b if b is not None else False, sparse=sparse and s == t
        )
        bias_np = None if b is None else b.numpy()
        edges.append(ref.EdgeDesc(s, t, w.numpy(), None, bias_np, delay))
    descs = {k: ref.node_desc(k, v) for k, v in nodes.items()}
    return net, descs, edges


def reference(descs, edges, first, steps, warmup=None):
    """The closed loop in the reference interpreter: ``(B, steps, C)`` generated outputs."""
    first = np.asarray(first, dtype=np.float64).reshape(-1, C)
    if warmup is None:
        loop = ref.EdgeDesc("out", "in", np.eye(C), delay=1, init=first)
        g = ref.GraphDesc(1.0, descs, [*edges, loop], "in", "out")
        return ref.run(g, np.zeros((first.shape[0], steps, C))).outputs["out"]
    warmup = np.asarray(warmup, dtype=np.float64).reshape(first.shape[0], -1, C)
    t_w = warmup.shape[1]
    loop = ref.EdgeDesc("out", "in", np.eye(C), delay=1)
    g = ref.GraphDesc(1.0, descs, [*edges, loop], "in", "out")
    x = np.concatenate([warmup, np.zeros((warmup.shape[0], steps, C))], axis=1)
    force = {"out": np.zeros((warmup.shape[0], t_w - 1, C))}
    return ref.run(g, x, force=force).outputs["out"][:, t_w:]


@pytest.mark.parametrize("skip", [False, True], ids=["esn", "skip-edge"])
@pytest.mark.parametrize("native", [True, False], ids=["native", "torch"])
def test_generate_from_first_equals_the_reference(skip, native, generic):
    net, descs, edges = esn(1, skip=skip)
    first = np.array([0.3, -0.2])
    want = reference(descs, edges, first, 150)
    if native:
        rec = net.generate(150, first=first)
    else:
        with generic:
            rec = net.generate(150, first=first)
    assert rec.output.shape == (150, C)
    np.testing.assert_allclose(rec.output.numpy(), want[0], rtol=0, atol=1e-12)
    assert np.abs(want).max() > 0.05  # the closed loop is not trivially quiet


def test_generate_after_a_warmup_equals_the_reference():
    net, descs, edges = esn(2)
    warm = np.random.default_rng(0).uniform(-1, 1, (60, C))
    rec = net.generate(80, warmup=warm)
    want = reference(descs, edges, np.zeros(C), 80, warmup=warm)
    np.testing.assert_allclose(rec.output.numpy(), want[0], rtol=0, atol=1e-12)


def test_a_batch_generates_each_element_from_its_own_first_input():
    net, descs, edges = esn(3)
    first = np.random.default_rng(1).uniform(-1, 1, (3, C))
    rec = net.generate(50, first=first)
    assert rec.output.shape == (3, 50, C)
    want = reference(descs, edges, first, 50)
    np.testing.assert_allclose(rec.output.numpy(), want, rtol=0, atol=1e-12)
    assert np.abs(want[0] - want[1]).max() > 1e-3  # the elements differ


def test_the_network_holds_the_state_of_the_last_generated_step():
    net, descs, edges = esn(4)
    rec = net.generate(30, first=[0.1, 0.2])
    assert set(rec.state) == set(net.compile().state_keys())
    assert_state_equal(state_copy(net.state), state_copy(rec.state))
    # continuing: 30 + 20 generated steps from the same start equal 50 at once
    more = net.generate(20, first=rec.output[-1])
    net.reset()
    whole = net.generate(50, first=[0.1, 0.2])
    np.testing.assert_allclose(more.output.numpy(), whole.output[30:].numpy(), atol=1e-12)


def test_generation_reads_the_weights_as_they_are_now():
    net, descs, edges = esn(5)
    net.generate(10, first=[0.0, 0.5])
    with torch.no_grad():  # writes that leave no trace but the values
        net.get_edge("res", "out").weight.data.mul_(0.5)
        net.get_edge("in", "res").weight.data.mul_(-1.0)
    edges = [
        ref.EdgeDesc(e.source, e.target, e.weight * f, e.mask, e.bias, e.delay)
        for e, f in zip(edges, (-1.0, 1.0, 0.5), strict=True)
    ]
    net.reset()
    rec = net.generate(60, first=[0.0, 0.5])
    want = reference(descs, edges, [0.0, 0.5], 60)
    np.testing.assert_allclose(rec.output.numpy(), want[0], rtol=0, atol=1e-12)


def test_explain_generate_says_which_network_runs():
    net = esn(6)[0]
    text = net.explain_generate()
    assert "folded" in text and "readout fed back in the C loop" in text
    assert "native reservoir loop" in text
    closed = net.explain_generate(record=["in"])
    assert "not folded: the input node 'in' is recorded" in closed
    skip = esn(6, skip=True)[0].explain_generate()
    assert "not folded: the edges are not" in skip
    assert "not folded: gradients are wanted" in net.explain_generate(grad=True)


def test_a_recorded_input_node_shows_the_fed_back_values():
    net = esn(7)[0]
    rec = net.generate(40, first=[0.2, -0.1], record=["in", "out"])
    np.testing.assert_allclose(rec["in"][0].numpy(), [0.2, -0.1])
    np.testing.assert_allclose(rec["in"][1:].numpy(), rec["out"][:-1].numpy(), atol=0)


def test_generate_with_gradients_reaches_the_readout():
    net = rg.Network(dt=1.0, dtype=torch.float64)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", "leaky_tanh", n=20, lr=0.5)
    net.add_func_node("out", 1)
    g = torch.Generator().manual_seed(0)
    net.add_edge("in", "res", torch.randn(20, 1, generator=g, dtype=torch.float64))
    net.add_edge(
        "res", "res", torch.randn(20, 20, generator=g, dtype=torch.float64) * 0.1, feedback=True
    )
    w = net.add_edge("res", "out", torch.randn(1, 20, generator=g, dtype=torch.float64), train="gd")
    rec = net.generate(20, first=[0.5], enable_grad=True)
    rec.output.pow(2).sum().backward()
    assert w.weight.grad is not None and float(w.weight.grad.abs().sum()) > 0

    # the same loss by finite differences in one weight
    def loss(delta):
        with torch.no_grad():
            w.weight[0, 3] += delta
            net.reset()
            out = net.generate(20, first=[0.5]).output
            w.weight[0, 3] -= delta
        return float(out.pow(2).sum())

    fd = (loss(1e-6) - loss(-1e-6)) / 2e-6
    np.testing.assert_allclose(float(w.weight.grad[0, 3]), fd, rtol=1e-5)


def test_mackey_glass_is_generated_for_many_steps():
    """The figure of reservoirpy's generative tutorial: a fitted ESN follows the series on
    its own predictions (seeded draw; about 300 steps stay within 0.1 of it)."""
    g = torch.Generator().manual_seed(1)
    net = rg.Network(dt=1.0, dtype=torch.float64)
    net.add_func_node("in", 1)
    net.add_diffeq_node(
        "res", "leaky_tanh", n=200, lr=0.3, bias=rg.bias_weights(200, connectivity=0.2, seed=g)
    )
    net.add_edge("in", "res", rg.input_weights(200, 1, connectivity=0.2, seed=g))
    w = rg.recurrent_weights(200, spectral_radius=1.25, connectivity=0.1, seed=g)
    net.add_edge("res", "res", w, feedback=True)
    x = mackey_glass(2600)
    x = 2 * (x - x.min()) / (x.max() - x.min()) - 1
    net.fit_ridge(x[:2000], x[1:2001], alpha=1e-6, washout=100)
    net.reset()
    rec = net.generate(400, warmup=x[1500:2000])
    err = np.abs(rec.output.numpy()[:, 0] - np.asarray(x[2001:2401])[:, 0])
    assert err[:100].max() < 0.01
    valid = int(np.argmax(err > 0.1)) if (err > 0.1).any() else len(err)
    assert valid >= 250, valid


def test_native_loop_with_a_fed_back_readout_equals_the_torch_loop(generic):
    """A user's echo-state network with output feedback (``res -> out -> res``, delay 1):
    the native loop computes the readout at every step and equals the torch loop."""
    g = torch.Generator().manual_seed(8)
    net = rg.Network(dt=1.0, dtype=torch.float64)
    net.add_func_node("in", 2)
    net.add_diffeq_node("res", "leaky_tanh", n=30, lr=0.4)
    net.add_func_node("out", 3)
    net.add_edge("in", "res", torch.randn(30, 2, generator=g, dtype=torch.float64))
    w = rg.recurrent_weights(30, spectral_radius=0.9, connectivity=0.2, seed=g).double()
    net.add_edge("res", "res", w, feedback=True)
    net.add_edge(
        "res", "out", torch.randn(3, 30, generator=g, dtype=torch.float64) * 0.3, bias=True
    )
    fb = torch.randn(30, 3, generator=g, dtype=torch.float64) * 0.3
    net.add_edge("out", "res", fb, feedback=True, bias=torch.full((30,), 0.1, dtype=torch.float64))
    model = net.compile(input_node="in", output_node="out")
    assert model.explain().loop == "native reservoir loop"
    x = torch.randn(200, 2, generator=g, dtype=torch.float64)
    obs = rg.Observer(["res", "out"])
    fast = model.run(x, observer=obs, state=model.init_state(1))
    with generic:
        slow = model.run(x, observer=obs, state=model.init_state(1))
    for k in ("res", "out"):
        torch.testing.assert_close(fast[k], slow[k], rtol=0, atol=1e-12)
    for k in slow.state:
        torch.testing.assert_close(fast.state[k], slow.state[k], rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------
# refused: nothing runs, the held state stays as it was
# --------------------------------------------------------------------------------------


def _refused(net, exc, match, **kwargs):
    net.run(np.zeros((5, C)))
    before = state_copy(net.state)
    with pytest.raises(exc, match=match):
        net.generate(**kwargs)
    assert_state_equal(before, state_copy(net.state))


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"steps": 5}, ValueError, "give warmup= .* or first="),
        ({"steps": 5, "first": [0, 0], "warmup": np.zeros((3, C))}, ValueError, "one of them"),
        ({"steps": 0, "first": [0, 0]}, ValueError, "steps"),
        (
            {"steps": 5, "first": [0, 0, 0]},
            ValueError,
            r"first must be \(C,\) or \(B, C\) with C = 2",
        ),
        ({"steps": 5, "first": [np.nan, 0]}, ValueError, "first contains NaN"),
        ({"steps": 5, "warmup": np.full((4, C), np.inf)}, ValueError, "NaN or inf"),
        ({"steps": 5, "warmup": np.zeros((4, 3))}, ValueError, "Network.generate"),
        ({"steps": 5, "first": [0, 0], "record": ["nope"]}, ValueError, "no node 'nope'"),
        ({"steps": 5, "first": [0, 0], "horizon": 3}, TypeError, "unknown keyword"),
    ],
)
def test_bad_calls_are_refused_and_change_nothing(kwargs, exc, match):
    _refused(esn(9)[0], exc, match, **kwargs)


def test_widths_that_cannot_close_the_loop_are_refused():
    net = rg.Network(dt=1.0)
    net.add_func_node("in", 2)
    net.add_diffeq_node("res", "leaky_tanh", n=10)
    net.add_func_node("out", 1)
    net.add_edge("in", "res")
    net.add_edge("res", "out")
    with pytest.raises(ValueError, match="output node 'out' has 1 units, the input is 2 wide"):
        net.generate(5, first=[0.0, 0.0])


def test_a_network_whose_output_feeds_its_input_is_refused():
    net = rg.Network(dt=1.0)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", "leaky_tanh", n=10)
    net.add_func_node("out", 1)
    net.add_edge("in", "res")
    net.add_edge("res", "out")
    net.add_edge("out", "in", feedback=True)
    net.compile(input_node="in", output_node="out")
    with pytest.raises(ValueError, match="feeds the input node 'in' already"):
        net.generate(5, first=[0.0])


def test_a_moved_network_generates_in_its_new_dtype():
    net = esn(10)[0]
    want = net.generate(40, first=[0.1, 0.1]).output
    net.reset()
    net.to(dtype=torch.float32)
    got = net.generate(40, first=[0.1, 0.1]).output
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, rtol=0, atol=1e-4)


def test_a_diverging_forecast_returns_its_values_and_holds_its_state_as_run_does():
    """A closed loop that blows up (a gain of 1e100 per step) is a result, not an error:
    the outputs grow as float64 does until they overflow, and the state is held."""
    net = rg.Network(dt=1.0, dtype=torch.float64)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", "leaky_tanh", n=1, lr=1.0, activation="identity")
    net.add_func_node("out", 1)
    net.add_edge("in", "res", weights=[[1e100]])
    net.add_edge("res", "out", weights=[[1.0]])
    out = net.generate(6, first=[1.0]).output[:, 0]
    expected = torch.tensor([1e100, 1e200, 1e300], dtype=torch.float64)
    torch.testing.assert_close(out[:3], expected, rtol=1e-12, atol=0)
    assert not torch.isfinite(out[3:]).any()
    held = net.compile().state["res.x"]
    assert not math.isfinite(held.item())
