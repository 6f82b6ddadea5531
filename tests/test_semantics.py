"""The time-step contract (design section 3), sentence by sentence.

Function nodes with identity activation and integer inputs make every value exact, so
lags and initial values are checked with ``==``, not a tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_state_equal, state_copy

import rnngraph as rg
from rnngraph import Network, Observer

T = 12
U = np.arange(1.0, T + 1.0)[:, None]  # (T, 1): 1, 2, ..., T


def _copy_net(dtype=torch.float64):
    """inp -> out, both identity: out(k) = 2 u(k) through a zero-delay edge."""
    net = Network(1.0, dtype=dtype)
    net.add_func_node("inp", 1)
    net.add_func_node("out", 1)
    net.add_edge("inp", "out", [[2.0]])
    return net


def _stateful_identity(net, label, n=1):
    """A DE node whose output equals its input of the same step: tau = dt = 1, Euler."""
    return net.add_diffeq_node(label, "leaky_integrator", n, tau=1.0, activation="identity")


# ----------------------------------------------------------------------------------------
# zero-delay edges read the same step
# ----------------------------------------------------------------------------------------


def test_zero_delay_edge_reads_same_step():
    net = _copy_net()
    rec = net.run(U, record=["inp", "out"])
    np.testing.assert_array_equal(rec["inp"].numpy(), U)
    np.testing.assert_array_equal(rec["out"].numpy(), 2 * U)


def test_zero_delay_chain_through_de_nodes_reads_same_step():
    """inp -> c (DE) -> d (DE) -> e (function): a DE node's output at step k already reflects
    its input at step k, so a chain of zero-delay edges adds no lag."""
    net = Network(1.0, dtype=torch.float64)
    net.add_func_node("inp", 1)
    _stateful_identity(net, "c")
    _stateful_identity(net, "d")
    net.add_func_node("e", 1)
    net.add_edge("inp", "c", [[1.0]])
    net.add_edge("c", "d", [[3.0]])
    net.add_edge("d", "e", [[-1.0]])
    rec = net.run(U, record=["c", "d", "e"])
    np.testing.assert_array_equal(rec["c"].numpy(), U)
    np.testing.assert_array_equal(rec["d"].numpy(), 3 * U)
    np.testing.assert_array_equal(rec.output.numpy(), -3 * U)


def test_node_input_is_sum_of_incoming_edges():
    net = Network(1.0, dtype=torch.float64)
    net.add_func_node("inp", 2)
    net.add_func_node("a", 1)
    _stateful_identity(net, "b")
    net.add_func_node("out", 1)
    net.add_edge("inp", "a", [[1.0, 0.0]])
    net.add_edge("inp", "b", [[0.0, 1.0]])
    net.add_edge("a", "out", [[10.0]], bias=[0.5])
    net.add_edge("b", "out", [[100.0]])
    u = np.stack([U[:, 0], -(U[:, 0] ** 2)], axis=1)
    y = net.run(u).output.numpy()[:, 0]
    np.testing.assert_array_equal(y, 10 * u[:, 0] + 100 * u[:, 1] + 0.5)


# ----------------------------------------------------------------------------------------
# delayed edges and feedback
# ----------------------------------------------------------------------------------------


def _cumsum_net(init=None):
    """s(k) = u(k) + s(k-1): an identity node with a feedback self-edge sums its input."""
    net = Network(1.0, dtype=torch.float64)
    net.add_func_node("inp", 1)
    net.add_func_node("s", 1)
    net.add_edge("inp", "s", [[1.0]])
    net.add_edge("s", "s", [[1.0]], feedback=True, init=init)
    return net


def test_feedback_edge_reads_zero_then_previous_output():
    net = _cumsum_net()
    assert net.get_edge("s", "s").delay == 1
    y = net.run(U).output.numpy()
    np.testing.assert_array_equal(y, np.cumsum(U, axis=0))
    assert y[0, 0] == U[0, 0]  # step 0 read zeros


def test_feedback_edge_reads_init_value_first():
    net = _cumsum_net(init=5.0)
    np.testing.assert_array_equal(net.run(U).output.numpy(), 5.0 + np.cumsum(U, axis=0))


def test_reset_restores_initial_value_of_delayed_edges():
    net = _cumsum_net(init=5.0)
    first = net.run(U).output.numpy()
    # without reset the next run continues from the held state
    cont = net.run(U).output.numpy()
    np.testing.assert_array_equal(cont, first[-1] + np.cumsum(U, axis=0))
    net.reset()
    assert net.state is None
    np.testing.assert_array_equal(net.run(U).output.numpy(), first)


@pytest.mark.parametrize("delay", [1, 2, 3, 5])
def test_delay_d_lags_exactly_d_steps(delay):
    """inp -> probe through a delay-d edge: probe(k) = u(k-d), the init value before."""
    net = Network(1.0, dtype=torch.float64)
    net.add_func_node("inp", 1)
    _stateful_identity(net, "probe")
    net.add_edge("inp", "probe", [[1.0]], delay=delay, init=-7.0)
    # with no zero-delay edge either node could be input or output: name them (run()
    # remembers them)
    net.compile(input_node="inp", output_node="probe")
    y = net.run(U).output.numpy()[:, 0]
    expected = np.concatenate([np.full(delay, -7.0), U[: T - delay, 0]])
    np.testing.assert_array_equal(y, expected)
    # the delay line holds the last d outputs of the source, newest at @1
    state = net.state
    for k in range(1, delay + 1):
        assert state[f"inp->probe@{k}"].item() == U[T - k, 0]
    # reset() restores the init value on every slot
    net.reset()
    np.testing.assert_array_equal(net.run(U).output.numpy()[:, 0], expected)


def test_delay_3_on_a_cycle():
    """a -> b zero-delay, b -> a delay 3: a(k) = u(k) + b(k-3), b(k) = a(k)."""
    net = Network(1.0, dtype=torch.float64)
    net.add_func_node("a", 1)
    _stateful_identity(net, "b")
    net.add_edge("a", "b", [[1.0]])
    net.add_edge("b", "a", [[1.0]], delay=3)
    y = net.run(U).output.numpy()[:, 0]
    ref = np.zeros(T)
    for k in range(T):
        ref[k] = U[k, 0] + (ref[k - 3] if k >= 3 else 0.0)
    np.testing.assert_array_equal(y, ref)


def test_feedback_with_explicit_delay_and_source_var():
    """feedback=True with delay=2 reads the DE state variable ``v`` two steps back."""
    net = Network(1.0, dtype=torch.float64)
    net.add_func_node("inp", 1)
    net.add_diffeq_node("c", "leaky_integrator", 1, tau=1.0, activation="tanh")
    net.add_func_node("out", 1)
    net.add_edge("inp", "c", [[1.0]])
    net.add_edge("c", "out", [[1.0]], feedback=True, delay=2, source_var="v")
    net.add_edge("inp", "out", [[0.0]])
    net.compile(output_node="out")
    y = net.run(U).output.numpy()[:, 0]
    np.testing.assert_array_equal(y, np.concatenate([[0.0, 0.0], U[: T - 2, 0]]))


def test_recurrent_de_population_with_feedback_self_edge():
    """A DE population with a feedback self-edge: I(k) = W y(k-1) + u(k)."""
    g = np.random.default_rng(5)
    W = g.normal(scale=0.4, size=(4, 4))
    u = g.normal(size=(30, 4))
    net = Network(0.1, dtype=torch.float64)
    net.add_diffeq_node("p", "leaky_integrator", 4, tau=0.5)
    net.add_edge("p", "p", W, feedback=True)
    got = net.run(u, record="p.v")["p.v"].numpy()
    v = np.zeros(4)
    for k in range(30):
        v = v + 0.1 * (W @ np.tanh(v) + u[k] - v) / 0.5
        np.testing.assert_allclose(got[k], v, rtol=0, atol=1e-14)


# ----------------------------------------------------------------------------------------
# batch
# ----------------------------------------------------------------------------------------


def _batch_net():
    net = Network(0.5)
    net.add_func_node("inp", 3)
    net.add_diffeq_node("res", "leaky_tanh", 40, lr=0.4, bias=0.1)
    net.add_diffeq_node("li", "leaky_integrator", 5, tau=2.0, integrator="rk4")
    net.add_func_node("out", 2, "softmax")
    net.add_edge("inp", "res", rg.input_weights(40, 3, seed=1))
    net.add_edge("res", "res", rg.recurrent_weights(40, 1.25, 0.2, seed=2), feedback=True)
    net.add_edge("res", "li", seed=3)
    net.add_edge("li", "res", seed=4, delay=2)
    net.add_edge("li", "out", seed=5, bias=True)
    return net


def test_batch_of_five_equals_five_single_runs():
    x = torch.randn(5, 60, 3, generator=torch.Generator().manual_seed(9))
    net = _batch_net()
    rec = net.run(x, record=["res", "li.v"])
    assert rec.output.shape == (5, 60, 2)
    assert rec["res"].shape == (5, 60, 40) and rec["li.v"].shape == (5, 60, 5)
    for b in range(5):
        net.reset()
        single = net.run(x[b], record=["res", "li.v"])
        assert single.output.shape == (60, 2)  # (T, C) in, (T, n) out
        torch.testing.assert_close(single.output, rec.output[b], rtol=0, atol=1e-6)
        torch.testing.assert_close(single["res"], rec["res"][b], rtol=0, atol=1e-6)
        torch.testing.assert_close(single["li.v"], rec["li.v"][b], rtol=0, atol=1e-6)
    # batch elements really differ (the comparison above is not between equal rows)
    assert (rec.output[0] - rec.output[1]).abs().max() > 1e-2


def test_batch_of_one_keeps_the_batch_axis():
    net = _batch_net()
    x = torch.randn(1, 7, 3)
    assert net.run(x).output.shape == (1, 7, 2)
    net.reset()
    assert net.run(x[0]).output.shape == (7, 2)
    net.reset()
    assert net(x).shape == (1, 7, 2)


# ----------------------------------------------------------------------------------------
# step, state carry-over, runs without input
# ----------------------------------------------------------------------------------------


def test_step_is_pure_and_iterates_to_run():
    net = _batch_net()
    model = net.compile()
    x = torch.randn(3, 25, 3, generator=torch.Generator().manual_seed(1))
    ref = model.run(x).output
    held = state_copy(model.state)
    state = model.init_state(3)
    ys = []
    for t in range(25):
        before = state_copy(state)
        y, new = model.step(x[:, t], state)
        assert_state_equal(state, before)  # the state passed in is not changed in place
        state = new
        ys.append(y)
    assert_state_equal(model.state, held)  # nor is the held state
    torch.testing.assert_close(torch.stack(ys, 1), ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(state["res.x"], held["res.x"], rtol=0, atol=1e-6)


def test_step_unbatched_input():
    net = _cumsum_net()
    model = net.compile()
    y, s = model.step(torch.tensor([2.0], dtype=torch.float64), model.init_state(1))
    assert y.shape == (1,) and y.item() == 2.0
    y, s = model.step(np.array([3.0]), s)
    assert y.item() == 5.0


def test_state_carries_over_between_runs():
    net = _batch_net()
    x = torch.randn(2, 100, 3, generator=torch.Generator().manual_seed(2))
    full = net.run(x, record="li.v")
    net.reset()
    a = net.run(x[:, :50], record="li.v")
    b = net.run(x[:, 50:], record="li.v")
    torch.testing.assert_close(torch.cat([a.output, b.output], 1), full.output, rtol=0, atol=0)
    torch.testing.assert_close(torch.cat([a["li.v"], b["li.v"]], 1), full["li.v"], rtol=0, atol=0)
    # an explicit state= starts there and the network then holds the end of that run
    net.reset()
    first = net.run(x[:, :50])
    again = net.run(x[:, 50:], state=first.state)
    torch.testing.assert_close(again.output, b.output, rtol=0, atol=0)
    # reset(state) sets the state the next run starts from
    net.reset(first.state)
    torch.testing.assert_close(net.run(x[:, 50:]).output, b.output, rtol=0, atol=0)


def test_run_without_input_equals_zero_input():
    net = _batch_net()
    y0 = net.run(steps=20).output
    assert y0.shape == (20, 2)
    net.reset()
    torch.testing.assert_close(y0, net.run(torch.zeros(20, 3)).output, rtol=0, atol=0)
    # the bias drives the network even without input, so this is not all zeros
    assert net.state["res.x"].abs().max() > 1e-2


def test_run_without_input_continues_held_batch():
    net = _batch_net()
    net.run(torch.randn(4, 5, 3))
    assert net.run(steps=3).output.shape == (4, 3, 2)  # no input: the held batch's layout
    assert net.state["res.x"].shape == (4, 40)


def test_recompiling_after_adding_a_readout_keeps_state():
    net = _cumsum_net()
    net.run(U)
    held = state_copy(net.state)
    net.add_func_node("readout", 1)
    net.add_edge("s", "readout", [[1.0]])
    assert_state_equal(net.state, held)
    y = net.run(U[:2]).output.numpy()[:, 0]
    np.testing.assert_array_equal(y, U[:, 0].sum() + np.cumsum(U[:2, 0]))


def test_observer_default_and_output_layout_numpy_input():
    net = _copy_net(torch.float32)
    rec = net.run(U.astype(np.float32), observer=Observer("out"))
    assert isinstance(rec.output, torch.Tensor) and rec.output.dtype == torch.float32
    assert rec.output.shape == (T, 1)


def test_adding_a_delayed_edge_keeps_the_held_state():
    """Growing the graph after a run keeps every state entry that survives; only the new
    delay line starts from its initial value."""
    net = rg.Network(dt=1.0, dtype=torch.float64)
    net.add_diffeq_node("res", "leaky_integrator", n=3, tau=5.0, init={"v": 1.0})
    net.run(steps=50)
    v = net.state["res.v"].clone()
    assert torch.all(v < 0.01)
    net.add_func_node("readout", 1)
    net.add_edge("res", "readout", weights=np.ones((1, 3)))
    assert torch.equal(net.state["res.v"], v)
    net.add_edge("readout", "res", weights=np.ones((3, 1)), feedback=True)
    assert torch.equal(net.state["res.v"], v)
    assert torch.equal(net.state["readout->res@1"], torch.zeros(1, 1, dtype=torch.float64))


@pytest.mark.parametrize("grad", [False, True], ids=["no-grad", "grad"])
def test_hook_reads_a_nodes_input_of_the_step(grad):
    """``"node:I"`` is what the node received this step: the sum of its edges (here the
    input projection with its bias and the feedback edge, which reads the previous step)."""
    from rnngraph.network import Hook

    g = torch.Generator().manual_seed(2)
    net = Network(dt=1.0, dtype=torch.float64)
    net.add_func_node("in", 2)
    net.add_diffeq_node("res", "leaky_tanh", n=4, lr=0.5)
    w_in = torch.randn(4, 2, generator=g, dtype=torch.float64)
    w = torch.randn(4, 4, generator=g, dtype=torch.float64)
    b = torch.randn(4, generator=g, dtype=torch.float64)
    net.add_edge("in", "res", weights=w_in, bias=b)
    net.add_edge("res", "res", weights=w, feedback=True, train="gd" if grad else None)
    seen = []
    hook = Hook("res", ("res:I",), lambda t, inp: seen.append(inp.detach().clone()))
    x = torch.randn(3, 6, 2, generator=g, dtype=torch.float64)
    with torch.set_grad_enabled(grad):
        out = net.compile().execute("test", x, None, None, False, None, hooks=(hook,)).output
    prev = torch.cat([torch.zeros(3, 1, 4, dtype=torch.float64), out[:, :-1].detach()], 1)
    expected = x @ w_in.T + b + prev @ w.T  # (B, T, 4)
    torch.testing.assert_close(torch.stack(seen, 1), expected, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="reads 'res:J': no input 'J'"):
        net.compile().execute(
            "test", x, None, None, False, None, hooks=(Hook("res", ("res:J",), print),)
        )


@pytest.mark.parametrize("recorded", [False, True])
def test_a_replacing_hook_is_recorded_only_when_asked(recorded):
    """``replaces=True`` passes the hook's value on (the feedback edge reads it);
    ``recorded=True`` also makes it the node's output in recordings and the run's output."""
    from rnngraph.network import Hook

    def build(feedback):
        net = Network(dt=1.0, dtype=torch.float64)
        net.add_diffeq_node("res", "leaky_integrator", n=2, tau=2.0, init={"v": 1.0})
        net.add_func_node("out", 2)
        net.add_edge("res", "out", weights=np.eye(2))
        net.add_edge("out", "res", weights=feedback * np.eye(2), feedback=True)
        return net

    seen = []

    def hook(t, y):
        seen.append(y.clone())
        return 2.0 * y

    tap = Hook("out", ("out",), hook, replaces=True, recorded=recorded)
    rec = build(0.5).compile().execute("test", None, None, None, False, 5, hooks=(tap,))
    own = torch.stack(seen, 1)  # (B, T, 2): the node's own outputs
    torch.testing.assert_close(rec.with_batch(), 2.0 * own if recorded else own, rtol=0, atol=0)
    # the feedback edge read the doubled value: the network with twice the feedback weight
    plain = build(1.0).compile().execute("test", None, None, None, False, 5).with_batch()
    torch.testing.assert_close(own, plain, rtol=0, atol=1e-15)
    assert not torch.allclose(plain, build(0.5).run(steps=5).output[None])
