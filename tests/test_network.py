"""Network building and the torch conveniences: get/pop, get_var/set_var, state_dict,
``.to()``, user-defined DE nodes, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_state_equal, state_copy
from torch import nn

import rnngraph as rg
from rnngraph import DENode, FuncNode, Linear, Network


def _esn(dtype=torch.float32, n=20):
    net = Network(1.0, dtype=dtype)
    net.add_func_node("inp", 2)
    net.add_diffeq_node("res", "leaky_tanh", n, lr=0.5, bias=0.2)
    net.add_func_node("out", 1)
    net.add_edge("inp", "res", rg.input_weights(n, 2, seed=0))
    net.add_edge("res", "res", rg.recurrent_weights(n, 1.1, 0.3, seed=1), feedback=True)
    net.add_edge("res", "out", train="gd", seed=2)
    return net


# ----------------------------------------------------------------------------------------
# building
# ----------------------------------------------------------------------------------------


def test_get_and_pop_nodes_and_edges():
    net = _esn()
    assert len(net) == 3 and "res" in net and "nope" not in net
    assert isinstance(net.get_node("inp"), FuncNode) and net["inp"] is net.get_node("inp")
    edge = net.get_edge("res", "out")
    assert isinstance(edge, Linear) and net["res", "out"] is edge
    assert isinstance(edge.weight, nn.Parameter)
    assert not isinstance(net.get_edge("inp", "res").weight, nn.Parameter)
    assert net.graph.nodes["res"]["node"] is net.get_node("res")
    assert net.pop_edge("res", "out") is edge and not net.graph.has_edge("res", "out")
    node = net.pop_node("out")
    assert isinstance(node, FuncNode) and "out" not in net
    assert net.compile().output_node == "res"


def test_default_weights_are_seeded():
    a, b = _esn(), _esn()
    torch.testing.assert_close(a.get_edge("res", "out").weight, b.get_edge("res", "out").weight)
    w = a.get_edge("res", "out").weight
    assert w.abs().max() <= 1.0 / np.sqrt(20)  # U(-1/sqrt(n_in), 1/sqrt(n_in))
    c = Network(1.0)
    c.add_func_node("x", 20)
    c.add_func_node("y", 1)
    assert not torch.equal(c.add_edge("x", "y", seed=3).weight, w)
    # a seed gives the same draws in any dtype
    d = Network(1.0, dtype=torch.float64)
    d.add_func_node("x", 20)
    d.add_func_node("y", 1)
    torch.testing.assert_close(d.add_edge("x", "y", seed=2).weight.float(), w, rtol=0, atol=0)


def test_add_diffeq_node_instance_and_registry():
    net = Network(0.5)
    node = rg.nodes.LeakyIntegrator(4, tau=3.0)
    assert net.add_diffeq_node("li", node) is node
    assert net.get_node("li").tau.dtype == torch.float32  # converted to the network's dtype
    rg.register_model("my_logistic_li", rg.nodes.LeakyIntegrator)
    try:
        made = net.add_diffeq_node("li2", "my_logistic_li", 2, tau=4.0)
        assert float(made.tau) == 4.0
    finally:
        rg.nodes.MODELS.pop("my_logistic_li")


# ----------------------------------------------------------------------------------------
# get_var / set_var
# ----------------------------------------------------------------------------------------


def test_get_var_and_set_var():
    net = Network(0.1, dtype=torch.float64)
    net.add_diffeq_node("li", "leaky_integrator", 3, tau=2.0, activation="identity")
    assert float(net.get_var("li", "tau")) == 2.0
    torch.testing.assert_close(net.get_var("li", "v"), torch.zeros(1, 3, dtype=torch.float64))
    net.set_var("li", "tau", 4.0)
    assert float(net.get_node("li").tau) == 4.0
    net.set_var("li", "v", [1.0, 2.0, 3.0])
    torch.testing.assert_close(
        net.get_var("li", "li_op/v"), torch.tensor([[1.0, 2.0, 3.0]]).double()
    )
    # the next run starts from the set value: one Euler step with zero input
    y = net.run(np.zeros((1, 3))).output.numpy()[0]
    np.testing.assert_allclose(y, np.array([1.0, 2.0, 3.0]) * (1 - 0.1 / 4.0), rtol=0, atol=1e-15)
    # reset() undoes a set state variable, not a set parameter
    net.reset()
    torch.testing.assert_close(net.get_var("li", "v"), torch.zeros(1, 3, dtype=torch.float64))
    assert float(net.get_var("li", "tau")) == 4.0


def test_set_init_survives_reset():
    net = Network(1.0, dtype=torch.float64)
    net.add_diffeq_node("li", "leaky_integrator", 2, node_vars={"v": [0.5, -0.5]})
    np.testing.assert_array_equal(net.get_var("li", "v").numpy(), [[0.5, -0.5]])
    net.run(np.ones((3, 2)))
    net.reset()
    np.testing.assert_array_equal(net.get_var("li", "v").numpy(), [[0.5, -0.5]])


# ----------------------------------------------------------------------------------------
# torch conveniences
# ----------------------------------------------------------------------------------------


def test_state_dict_round_trip():
    x = torch.randn(30, 2, generator=torch.Generator().manual_seed(0))
    a = _esn()
    with torch.no_grad():
        a.get_edge("res", "out").weight.mul_(3.0)  # differ from b's seeded default
    sd = a.state_dict()
    assert set(sd) >= {"edges.res->out.weight", "edges.res->res.weight", "nodes.res.lr"}
    b = _esn()
    b_before = b.run(x).output
    b.load_state_dict(sd)
    b.reset()
    ya, yb = a.run(x).output, b.run(x).output
    torch.testing.assert_close(ya, yb, rtol=0, atol=0)
    assert (yb - b_before).abs().max() > 1e-3


def test_to_float64():
    x = torch.randn(40, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = _esn(torch.float64).run(x).output
    net = _esn(torch.float32)
    y32 = net.run(x).output
    assert y32.dtype == torch.float32
    assert net.to(dtype=torch.float64) is net
    assert net.state["res.x"].dtype == torch.float64  # the held state moves too
    net.reset()
    y64 = net.run(x).output
    assert y64.dtype == torch.float64
    assert all(p.dtype == torch.float64 for p in net.parameters())
    # float32 weights cast up are not the float64 draws: compare to float32 precision
    torch.testing.assert_close(y64, ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(y64.float(), y32, rtol=0, atol=1e-5)


def test_compiled_module_to_float64():
    x = torch.randn(2, 9, 2, generator=torch.Generator().manual_seed(0))
    model = _esn(torch.float32).compile()
    ref = model(x)
    model.run(x[:, :4])
    assert model.to(torch.float64) is model
    assert model.state["res.x"].dtype == torch.float64  # the held state moves along
    y = model.run(x[:, 4:]).output  # and the run continues from it
    assert y.dtype == torch.float64
    torch.testing.assert_close(y.float(), ref[:, 4:], rtol=0, atol=1e-6)
    assert model.init_state(2)["res.x"].dtype == torch.float64
    model.double().float()
    assert model.state["res.x"].dtype == torch.float32


def test_function_node_only_network_keeps_dtype():
    net = Network(1.0, dtype=torch.float64)
    net.add_func_node("a", 3, "softmax")
    y = net.run(np.array([[0.0, 1.0, 2.0]])).output
    assert y.dtype == torch.float64
    np.testing.assert_allclose(y.numpy()[0], np.exp([0, 1, 2]) / np.exp([0, 1, 2]).sum())


def test_detach_cuts_autograd_graph():
    net = _esn()
    x = torch.randn(10, 2)
    y = net.run(x, enable_grad=True).output
    assert y.requires_grad and net.state["res.x"].grad_fn is None  # no trainable recurrence
    w = net.get_edge("res", "res")
    w.weight = nn.Parameter(w.weight.clone())
    net.reset()
    net.run(x, enable_grad=True)
    assert net.state["res.x"].grad_fn is not None
    net.detach()
    assert net.state["res.x"].grad_fn is None
    # run() leaves autograd off unless asked (RectiPy's enable_grad)
    assert not net.run(x).output.requires_grad
    assert net.run(x, enable_grad=True).output.requires_grad


# ----------------------------------------------------------------------------------------
# user-defined DE node
# ----------------------------------------------------------------------------------------


class FitzHughNagumo(DENode):
    """The DENode docstring's example, verbatim."""

    state_vars = ("v", "w")
    input_names = ("I",)

    def __init__(self, n, a=0.7, b=0.8, tau=12.5, **kwargs):
        super().__init__(n, **kwargs)
        self.add_param("a", a)
        self.add_param("b", b)
        self.add_param("tau", tau)

    def rhs(self, s, i):
        return (s.v - s.v**3 / 3 - s.w + i.I, (s.v + self.a - self.b * s.w) / self.tau)


@pytest.mark.parametrize("integrator", ["euler", "rk4"])
def test_user_defined_fitzhugh_nagumo(integrator):
    dt, steps = 0.1, 600
    net = Network(dt, dtype=torch.float64)
    node = net.add_diffeq_node("fhn", FitzHughNagumo(2, integrator=integrator))
    node.set_init("v", [-1.0, 0.5])
    drive = np.tile([0.5, 0.0], (steps, 1))
    rec = net.run(drive, record=["fhn.v", "fhn.w"])
    a, b, tau = 0.7, 0.8, 12.5

    def f(y, current):
        v, w = y
        return np.array([v - v**3 / 3 - w + current, (v + a - b * w) / tau])

    y = np.array([[-1.0, 0.5], [0.0, 0.0]])
    vs = []
    for k in range(steps):
        if integrator == "euler":
            y = y + dt * f(y, drive[k])
        else:
            k1 = f(y, drive[k])
            k2 = f(y + dt / 2 * k1, drive[k])
            k3 = f(y + dt / 2 * k2, drive[k])
            k4 = f(y + dt * k3, drive[k])
            y = y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        vs.append(y.copy())
    vs = np.array(vs)
    np.testing.assert_allclose(rec["fhn.v"].numpy(), vs[:, 0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(rec["fhn.w"].numpy(), vs[:, 1], rtol=0, atol=1e-12)
    # with I = 0.5 unit 0 oscillates (relaxation oscillations), unit 1 rests
    v0 = vs[300:, 0, 0]
    assert v0.max() > 1.5 and v0.min() < -1.5
    roots = np.roots([-1 / 3, 0.0, 1 - 1 / b, -a / b])  # v - v^3/3 - (v + a)/b = 0
    v_rest = roots[np.abs(roots.imag) < 1e-12].real
    assert v_rest.shape == (1,) and abs(vs[-1, 0, 1] - v_rest[0]) < 1e-3
    torch.testing.assert_close(rec.output, rec["fhn.v"])  # output_var defaults to "v"


def test_user_defined_node_train_names():
    net = Network(0.1)
    node = net.add_diffeq_node("fhn", FitzHughNagumo(3, train=["tau"]))
    assert isinstance(node.tau, nn.Parameter) and not isinstance(node.a, nn.Parameter)
    assert [n for n, _ in net.named_parameters()] == ["nodes.fhn.tau"]
    # the example does not call check_train(); add_node does, before the node joins the graph
    with pytest.raises(
        ValueError,
        match=r"FitzHughNagumo: train= names unknown parameters \['taux'\]; "
        r"the model's parameters are \['a', 'b', 'tau'\]",
    ):
        net.add_diffeq_node("fhn2", FitzHughNagumo(3, train=["taux"]))
    assert "fhn2" not in net


# ----------------------------------------------------------------------------------------
# gradients
# ----------------------------------------------------------------------------------------


def test_gradcheck_through_compiled_network_with_feedback():
    """d output / d (edge weights, trainable tau, input) through three nodes and a feedback
    edge, in float64."""
    g = torch.Generator().manual_seed(0)
    net = Network(0.2, dtype=torch.float64)
    net.add_func_node("inp", 2)
    net.add_diffeq_node("li", "leaky_integrator", 3, tau=[1.0, 1.5, 2.0], train=["tau"])
    net.add_func_node("out", 2, "tanh")
    net.add_edge("inp", "li", torch.randn(3, 2, generator=g), train="gd", bias=True)
    net.add_edge("li", "li", torch.randn(3, 3, generator=g), train="gd", feedback=True)
    net.add_edge("li", "out", torch.randn(2, 3, generator=g), train="gd")
    model = net.compile()
    names = [n for n, _ in model.named_parameters()]
    assert set(names) == {
        "nodes.li.tau",
        "edges.inp->li.weight",
        "edges.inp->li.bias",
        "edges.li->li.weight",
        "edges.li->out.weight",
    }
    params = tuple(p.detach().clone().requires_grad_() for _, p in model.named_parameters())
    x = torch.randn(2, 6, 2, generator=g, dtype=torch.float64, requires_grad=True)
    s0 = model.init_state(2)

    def f(x, *ps):
        return torch.func.functional_call(
            model, dict(zip(names, ps, strict=True)), (x,), {"state": s0}
        )

    assert torch.autograd.gradcheck(f, (x, *params))
    # the gradient reaches back through the feedback edge: the first input step matters to
    # the last output only through it
    out = f(x, *params)[:, -1].sum()
    (gx,) = torch.autograd.grad(out, x)
    assert gx[:, 0].abs().max() > 1e-6


def test_gradients_train_parameters():
    """A few Adam steps on the trainable edges and tau lower a regression loss."""
    net = Network(0.2)
    net.add_func_node("inp", 1)
    net.add_diffeq_node("li", "leaky_integrator", 8, tau=1.0, train=["tau"])
    net.add_func_node("out", 1)
    net.add_edge("inp", "li", train="gd", seed=0)
    net.add_edge("li", "li", train="gd", feedback=True, seed=1)
    net.add_edge("li", "out", train="gd", seed=2)
    x = torch.sin(torch.linspace(0, 6, 40))[:, None]
    target = torch.roll(x, 3, 0)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    losses = []
    for _ in range(30):
        net.reset()
        loss = ((net(x) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
    assert net.get_node("li").tau.grad is not None


def test_held_state_untouched_by_failed_call_after_run():
    net = _esn()
    net.run(torch.randn(5, 2))
    held = state_copy(net.state)
    with pytest.raises(ValueError, match="inputs have 3 channels"):
        net.run(torch.randn(5, 3))
    assert_state_equal(net.state, held)


def test_a_batch_one_state_starts_every_element_of_a_batch():
    u = torch.randn(3, 20, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    # set_var before any run: every element starts from the value set
    net = _esn(torch.float64, n=6)
    net.set_var("res", "x", 0.5)
    y = net.run(u).output
    for k in range(3):
        one = _esn(torch.float64, n=6)
        one.set_var("res", "x", 0.5)
        torch.testing.assert_close(y[k], one.run(u[k]).output, rtol=0, atol=1e-14)
    # a warmed-up reservoir of batch 1, then a batch of probes from that one state
    net = _esn(torch.float64, n=6)
    net.run(u[0])
    probes = net.run(u).output
    assert net.state["res.x"].shape == (3, 6)
    for k in range(3):
        one = _esn(torch.float64, n=6)
        one.run(u[0])
        torch.testing.assert_close(probes[k], one.run(u[k]).output, rtol=0, atol=1e-14)
    # the functional step broadcasts a batch-1 state in the same way
    model = _esn(torch.float64, n=6).compile()
    one = model.init_state(1)
    y3, s3 = model.step(u[:, 0], one)
    y1, s1 = model.step(u[:1, 0], one)
    assert s3["res.x"].shape == (3, 6) and one["res.x"].shape == (1, 6)
    torch.testing.assert_close(y3[:1], y1, rtol=0, atol=1e-15)
    # a held state of batch 3 does not fit a run of batch 2
    with pytest.raises(ValueError, match=r"must be a \(B=2, n\) tensor, got \(3, 6\)"):
        net.run(u[:2])


def test_step_of_a_network_without_state_takes_any_batch():
    net = Network(dt=1.0, dtype=torch.float64)
    net.add_func_node("in", 1)
    net.add_func_node("h", 2, "tanh")
    net.add_edge("in", "h", weights=torch.tensor([[1.0], [-2.0]], dtype=torch.float64))
    model = net.compile()
    x = torch.tensor([[0.1], [0.2], [0.3]], dtype=torch.float64)
    for state in (None, {}):
        y, _ = model.step(x, state)
        torch.testing.assert_close(y, torch.tanh(x * torch.tensor([1.0, -2.0])), rtol=0, atol=0)
