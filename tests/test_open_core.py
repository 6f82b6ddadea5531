"""The open core: a model declares its mathematics once, and every path derives from it.

* a rate model and a spiking model defined here, in a few lines each, declare a linear
  membrane: the plan serves them with the affine and native kernels (``explain()`` says so),
  and they equal the generic integrator on the same equations to 1e-12 in float64, spike
  for spike;
* a subclass that changes the equations (an ``LIF`` whose ``rhs`` adds a drive) fires as
  those equations say (the generic integrator), and loses the kernels that assume the
  declared ones; an empty subclass keeps them;
* ``step`` (and the other methods the kernels would bypass) cannot be overridden.
"""

from __future__ import annotations

import math

import pytest
import torch

import rnngraph as rg
from rnngraph import native
from rnngraph.nodes import (
    INTEGRATORS,
    LIF,
    DecayMap,
    DENode,
    LeakyReadout,
    LeakyTanh,
    LinearPart,
    SpikingNode,
    build_kernel,
)

F64 = torch.float64
#: whether native kernels run here (built, and not switched off by RNNGRAPH_NATIVE=0)
NATIVE = native.enabled() and native.available()


class LeakyRate(DENode):
    """tau dv/dt = I - v, output tanh(v): declared by its linear part alone."""

    state_vars = ("v",)
    input_names = ("I",)

    def __init__(self, n, tau=5.0, **kwargs):
        super().__init__(n, **kwargs)
        self.add_param("tau", tau, domain="positive")
        self.output_function = torch.tanh

    def linear_part(self):
        return {"v": LinearPart(self.tau, 0.0, {"I": 1.0})}


class PlainLIF(SpikingNode):
    """tau dv/dt = v_rest + R I - v, spike above v_th, reset to v_reset."""

    input_names = ("I",)

    def __init__(
        self, n, tau=10.0, v_rest=0.0, v_th=1.0, v_reset=0.0, r=1.5, refractory=0.0, **kwargs
    ):
        super().__init__(n, **kwargs)
        for name, value in dict(tau=tau, v_rest=v_rest, v_th=v_th, v_reset=v_reset, r=r).items():
            self._param(name, value)
        self.finish(refractory, v_rest)

    def linear_part(self):
        return {"v": LinearPart(self.tau, self.v_rest, {"I": self.r})}


def _generic_step(node, s, i, dt):
    """The reference: the integrator on the node's rhs, then its event rule (no kernel)."""
    if isinstance(node, SpikingNode):
        ode = node.ODEState(*s[: len(node.ode_vars)])
        model = type("M", (), {"State": node.ODEState, "rhs": node.rhs, "decay": node.decay})
        c = INTEGRATORS[node.integrator](model, ode, i, dt)
        v = torch.where(s.ref > 0, s.v, c.v)
        after = node.State(*c._replace(v=v), *s[len(node.ode_vars) :])
    else:
        after = INTEGRATORS[node.integrator](node, s, i, dt)
    new = node.event(s, after, dt)
    return node.output(new), new


def _network(kind: str, dtype=F64, refractory=0.0):
    g = torch.Generator().manual_seed(3)
    net = rg.Network(dt=0.5, dtype=dtype)
    net.add_func_node("in", 3)
    node = LeakyRate(20) if kind == "rate" else PlainLIF(20, refractory=refractory)
    net.add_diffeq_node("pop", node)
    scale = 0.8 if kind == "rate" else 2.5
    net.add_edge("in", "pop", weights=scale * torch.rand(20, 3, generator=g, dtype=dtype))
    net.add_edge(
        "pop", "pop", weights=0.1 * torch.randn(20, 20, generator=g, dtype=dtype), feedback=True
    )
    return net


@pytest.mark.parametrize("integrator", ["euler", "rk4", "exp_euler"])
@pytest.mark.parametrize(
    ("kind", "refractory"), [("rate", 0.0), ("spiking", 0.0), ("spiking", 1.5)]
)
def test_a_user_model_declaring_a_linear_membrane_gets_the_fast_kernels(
    kind, refractory, integrator
):
    net = _network(kind, refractory=refractory)  # 1.5 ms at dt 0.5: two held steps
    net.get_node("pop").integrator = integrator
    model = net.compile()
    plain = model.explain(batch_size=4)
    node = plain.nodes["pop"]
    assert node[1] == "affine map"
    if kind == "spiking":
        # the C step serves a population with a refractory countdown
        expected = "native LIF step" if NATIVE and refractory else "torch LIF step"
        assert node[0] == expected
        # event-driven spiking products where a step has enough multiply-adds for them
        assert model.explain(batch_size=128).edges["pop->pop"].startswith("event-driven") == NATIVE
        small = plain.edges["pop->pop"]  # batch 4 x 20 x 20
        assert small.startswith("dense product") and (
            not NATIVE or "batch x inputs x outputs = 1600 < 32768" in small
        )
    else:
        assert node[0] == "generic"  # the affine map is the generic step's integration
    x = torch.rand(4, 300, 3, generator=torch.Generator().manual_seed(4), dtype=F64)
    with torch.no_grad():
        fast = model.run(x, observer=rg.Observer(["pop", "pop.v"]))
    # the reference: the same graph stepped with the generic integrator on rhs, by hand
    p = model.plan
    n = model.nodes["pop"]
    W_in, W = net.get_edge("in", "pop").weight, net.get_edge("pop", "pop").weight
    s, y_prev = n.init_state(4, dtype=F64), torch.zeros(4, 20, dtype=F64)
    outs, vs = [], []
    with torch.no_grad():
        for t in range(300):
            i = n.Inputs(x[:, t] @ W_in.T + y_prev @ W.T)
            y_prev, s = _generic_step(n, s, i, model.dt)
            outs.append(y_prev)
            vs.append(s.v)
    assert p.de_nodes == ("pop",)
    ref_y, ref_v = torch.stack(outs, 1), torch.stack(vs, 1)
    if kind == "spiking":
        assert torch.equal(fast["pop"], ref_y), "spike for spike"
        assert int(ref_y.sum()) > 200
    torch.testing.assert_close(fast["pop.v"], ref_v, rtol=0, atol=1e-12)
    torch.testing.assert_close(fast["pop"], ref_y, rtol=0, atol=1e-12)


def test_the_native_kernel_equals_the_torch_kernel_for_a_user_model():
    node = PlainLIF(7, tau=torch.linspace(3.0, 20.0, 7)).double()
    g = torch.Generator().manual_seed(1)
    s1 = s2 = tuple(node.init_state(5))
    torch_k = build_kernel("torch LIF step", node, 0.5)
    native_k = build_kernel("native LIF step", node, 0.5) if NATIVE else torch_k
    spikes = 0
    for _ in range(100):
        i = 3.0 * torch.rand(5, 7, generator=g, dtype=F64)
        with torch.no_grad():
            z1, s1 = torch_k(s1, i)
            z2, s2 = native_k(s2, i)
        assert torch.equal(z1, z2)
        torch.testing.assert_close(s1[0], s2[0], rtol=0, atol=1e-13)
        spikes += int(z1.sum())
    assert spikes > 50


class DrivenLIF(LIF):
    """LIF with an extra constant drive in its equation: dv/dt += drive / tau_m."""

    def __init__(self, n, drive=0.9, **kwargs):
        super().__init__(n, **kwargs)
        self.add_param("drive", drive)

    def rhs(self, s, i):
        (dv,) = super().rhs(s, i)
        return (dv + self.drive / self.tau_m,)


@pytest.mark.parametrize("integrator", ["euler", "rk4", "exp_euler"])
def test_a_lif_subclass_overriding_rhs_fires_as_its_equations_say(integrator):
    """Without input, a plain LIF (v_rest 0, threshold 1) never fires; with the drive 1.5
    above threshold the subclass does, exactly as the generic integrator on its rhs says."""
    net = rg.Network(dt=0.5, dtype=F64)
    net.add_func_node("in", 1)
    node = DrivenLIF(
        4, drive=1.5, tau_m=torch.tensor([2.0, 5.0, 10.0, 20.0]), integrator=integrator
    )
    net.add_diffeq_node("lif", node)
    net.add_edge("in", "lif", weights=torch.zeros(4, 1, dtype=F64))
    model = net.compile()
    info = model.explain().nodes["lif"]
    assert info[0] == "generic"
    why = "DrivenLIF overrides rhs() and declares no linear part"
    assert info[1] == f"{integrator}; not the affine map: {why}"
    assert any("DrivenLIF overrides rhs()" in why for _, why in info[2])
    with torch.no_grad():
        rec = model.run(torch.zeros(400, 1, dtype=F64), observer=rg.Observer(["lif", "lif.v"]))
    s, zs, vs = node.init_state(1, dtype=F64), [], []
    zero = node.Inputs(torch.zeros(1, 4, dtype=F64))
    with torch.no_grad():
        for _ in range(400):
            z, s = _generic_step(node, s, zero, 0.5)
            zs.append(z[0])
            vs.append(s.v[0])
    assert torch.equal(rec["lif"], torch.stack(zs))
    torch.testing.assert_close(rec["lif.v"], torch.stack(vs), rtol=0, atol=1e-12)
    assert int(rec["lif"].sum()) > 20  # the drive makes it fire
    plain = LIF(4, tau_m=torch.tensor([2.0, 5.0, 10.0, 20.0]), integrator=integrator)
    net.pop_node("lif")
    net.add_diffeq_node("lif", plain.double())
    net.add_edge("in", "lif", weights=torch.zeros(4, 1, dtype=F64))
    with torch.no_grad():
        assert int(net.compile().run(torch.zeros(400, 1, dtype=F64)).output.sum()) == 0


@pytest.mark.parametrize("method", ["step", "kernel", "integrate", "event"])
def test_overriding_a_method_the_fast_paths_bypass_raises_at_class_creation(method):
    with pytest.raises(TypeError, match=rf"MyLIF overrides {method}\(\).*define .* instead"):
        type("MyLIF", (LIF,), {method: lambda self, *a: None})
    if method != "event":
        with pytest.raises(TypeError, match=rf"MyRate overrides {method}\(\)"):
            type("MyRate", (LeakyTanh,), {method: lambda self, *a: None})


def test_defining_both_a_linear_part_and_rhs_is_refused():
    with pytest.raises(TypeError, match="defines both linear_part\\(\\) and rhs\\(\\)"):
        type(
            "Both",
            (DENode,),
            {"linear_part": lambda self: None, "rhs": lambda self, s, i: None},
        )


def test_an_empty_subclass_keeps_the_kernels_of_its_base():
    class MyESN(LeakyTanh):
        pass

    class MyLIF(LIF):
        pass

    for cls, kernel in ((MyESN, "native leaky-tanh step"), (MyLIF, "native LIF step")):
        kw = {"refractory": 2.0} if cls is MyLIF else {}  # one held step: the C step
        net = rg.Network(dt=1.0)
        net.add_func_node("in", 1)
        net.add_diffeq_node("pop", cls(10, **kw))
        net.add_diffeq_node("pop2", cls(10, **kw))  # two DE nodes: no whole-network loop
        net.add_edge("in", "pop", weights=torch.ones(10, 1))
        net.add_edge("pop", "pop2", weights=torch.eye(10))
        info = net.compile().explain()
        expected = (
            kernel
            if NATIVE
            else kernel.replace("native", "torch").replace(
                "torch leaky-tanh step", "torch leaky map"
            )
        )
        assert info.nodes["pop"][0] == expected
    net = rg.Network(dt=1.0)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", MyESN(10))
    net.add_edge("in", "res", weights=torch.ones(10, 1))
    net.add_edge("res", "res", weights=0.1 * torch.eye(10), feedback=True)
    assert net.compile().explain().loop == ("native reservoir loop" if NATIVE else "time loop")


def test_explain_names_why_the_native_loop_does_not_run():
    net = rg.Network(dt=1.0)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", "leaky_tanh", n=10, activation="relu")
    net.add_edge("in", "res", weights=torch.ones(10, 1))
    net.add_edge("res", "res", weights=0.1 * torch.eye(10), feedback=True)
    info = net.compile().explain(grad=True)
    assert info.loop == "time loop"
    assert "activation is not tanh" in info.loop_why
    assert info.nodes["res"][0] == "torch leaky map"
    assert ("native leaky-tanh step", "the activation is not tanh") in info.nodes["res"][2]
    text = str(info)
    assert "node 'res': torch leaky map" in text and "edge res->res" in text
    with pytest.raises(ValueError, match="CompiledNetwork.explain: batch_size"):
        net.compile().explain(batch_size=0)


# ---- what the fast kernels assume, and when they stand aside ------------------------------


class _Half:
    """A mixin that changes the output (half the spikes' height)."""

    def output(self, s):
        return 0.5 * s.z


class _Drive:
    """A mixin that adds a drive to the membrane's rhs."""

    def rhs(self, s, i):
        (dv,) = super().rhs(s, i)
        return (dv + 2.0 / self.tau_m,)


class HalfLIF(_Half, LIF):
    pass


class MixinDrivenLIF(_Drive, LIF):
    pass


class NoisyRate(DENode):
    """A leaky map that adds its own noise to the input."""

    state_vars = ("x",)
    input_names = ("I",)
    output_var = "x"

    def __init__(self, n, **kwargs):
        super().__init__(n, **kwargs)
        self.add_param("lr", 0.5, domain="unit")
        self.gen = torch.Generator().manual_seed(0)

    def leaky_map(self):
        return rg.nodes.LeakyMap(self.lr, 0.0, torch.tanh, "I")

    def add_noise(self, s, i, dt):
        xi = torch.randn(s.x.shape, generator=self.gen, dtype=s.x.dtype)
        return self.Inputs(i.I + xi)


def _hand_run(node, x, W_in, dt):
    s, ys = node.init_state(x.shape[0], dtype=x.dtype), []
    for t in range(x.shape[1]):
        y, s = node.step(s, node.Inputs(x[:, t] @ W_in.T), dt)
        ys.append(y)
    return torch.stack(ys, 1)


@pytest.mark.parametrize("make", [lambda: HalfLIF(6), lambda: MixinDrivenLIF(6)])
def test_a_mixin_that_changes_the_output_or_rhs_gets_the_generic_step(make):
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 2)
    node = make().double()
    net.add_diffeq_node("pop", node)
    W_in = 1.5 * torch.rand(6, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    net.add_edge("in", "pop", weights=W_in)
    model = net.compile()
    assert model.explain().nodes["pop"][0] == "generic"
    x = torch.rand(1, 60, 2, generator=torch.Generator().manual_seed(1), dtype=F64)
    with torch.no_grad():
        assert torch.equal(model.forward(x), _hand_run(node, x, W_in, 1.0))


def test_a_mixin_cannot_override_step():
    class _Step:
        def step(self, s, i, dt):
            return None

    with pytest.raises(TypeError, match=r"_Step overrides step\(\)"):
        type("X", (_Step, LIF), {})
    with pytest.raises(TypeError, match=r"defines map\(\); a spiking model"):
        type("MapLIF", (LIF,), {"map": lambda self, s, i, dt: s})


def test_a_model_with_its_own_noise_or_output_function_skips_the_fast_kernels():
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 1)
    node = NoisyRate(5).double()
    net.add_diffeq_node("res", node)
    W_in = torch.ones(5, 1, dtype=F64)
    net.add_edge("in", "res", weights=W_in)
    net.add_edge("res", "res", weights=0.1 * torch.eye(5, dtype=F64), feedback=True)
    model = net.compile()
    info = model.explain()
    assert info.loop == "time loop" and "NoisyRate defines add_noise()" in info.loop_why
    assert info.nodes["res"][0] == "generic"
    lif = LIF(4)
    lif.output_function = torch.relu
    assert rg.nodes.lif_structure(lif)[1] == "the output goes through an output function"


def test_unrolled_reads_dt_and_parameters_at_every_call():
    net = rg.Network(dt=1.0)
    net.add_func_node("in", 2)
    net.add_diffeq_node("pop", "lif", n=8, tau_m=5.0)
    net.add_edge(
        "in", "pop", weights=2.0 * torch.rand(8, 2, generator=torch.Generator().manual_seed(0))
    )
    model = net.compile()
    f = model.unrolled()
    x = torch.rand(2, 50, 2, generator=torch.Generator().manual_seed(1))
    for change in (
        lambda: setattr(model, "dt", 0.25),
        lambda: model.nodes["pop"].tau_m.data.fill_(9.0),
    ):
        change()
        with torch.no_grad():
            assert torch.equal(f(x, model.init_state(2))[0], model.forward(x))


def test_step_follows_the_native_switch_and_new_parameters():
    net = rg.Network(dt=1.0)
    net.add_func_node("in", 2)
    net.add_diffeq_node("pop", "lif", n=8, tau_m=5.0)
    net.add_edge(
        "in", "pop", weights=2.0 * torch.rand(8, 2, generator=torch.Generator().manual_seed(0))
    )
    net.add_edge(
        "pop",
        "pop",
        weights=0.2 * torch.rand(8, 8, generator=torch.Generator().manual_seed(2)),
        feedback=True,
    )
    model = net.compile()
    x = torch.rand(2, 2)
    was = native.enabled()
    try:
        with torch.no_grad():
            y1, _ = model.step(x, None)
            native.set_enabled(not was)
            y2, _ = model.step(x, None)
        assert torch.equal(y1, y2)
    finally:
        native.set_enabled(was)
    model.nodes["pop"].tau_m = torch.nn.Parameter(torch.tensor(5.0))
    y, _ = model.step(x, None)
    assert y.requires_grad


def test_a_rectipy_template_path_builds_its_model_unless_a_registration_shadows_it():
    path = "neuron_model_templates.spiking_neurons.qif.qif"
    assert type(rg.nodes.make_model("t", path, 3)).__name__ == "QIF"

    class MyQIF(rg.nodes.QIF):
        pass

    try:
        rg.nodes.register_model(path, MyQIF)
        net = rg.Network(dt=1e-3)
        net.add_diffeq_node("q", path, n=3)
        assert type(net.get_node("q")) is MyQIF
    finally:
        rg.nodes.MODELS.pop(path)
    with pytest.raises(ValueError, match="fixes"):
        rg.nodes.make_model(
            "t",
            "neuron_model_templates.rate_neurons.leaky_integrator.tanh",
            3,
            activation="sigmoid",
        )


def test_a_carried_step_state_sees_every_change_between_steps():
    """The repeated step with its own returned state (the fast path) honours
    in-place weight edits, parameter swaps, requires_grad changes and a new
    batch size exactly as a fresh, fully checked step does."""
    gen = torch.Generator().manual_seed(3)
    net = rg.Network(dt=1.0)
    net.add_func_node("in", 3)
    net.add_diffeq_node("res", "leaky_tanh", n=6, lr=0.3)
    net.add_edge("in", "res", weights=torch.randn(6, 3, generator=gen))
    net.add_edge("res", "res", weights=0.3 * torch.randn(6, 6, generator=gen), feedback=True)
    model = net.compile()
    xs = torch.randn(8, 2, 3, generator=gen)

    def checked(state, x):
        # a plain dict of copies is not a trusted StepState: the full checks run
        fresh = {key: value.clone() for key, value in state.items()}
        return model.step(x, fresh)

    edits = {
        2: lambda: model.edges["in->res"].weight.data.mul_(0.5),
        3: lambda: setattr(model.nodes["res"], "lr", torch.nn.Parameter(torch.tensor(0.6))),
        5: lambda: model.nodes["res"].lr.requires_grad_(False),
    }
    state, grads = model.init_state(2), []
    for t in range(xs.shape[0]):
        if t in edits:
            edits[t]()
        y_ref, _ = checked(state, xs[t])
        y, state = model.step(xs[t], state)
        assert torch.equal(y.detach(), y_ref.detach())
        grads.append((y.requires_grad, y_ref.requires_grad))
    # once lr is trainable the carried state holds its graph, whatever lr does later
    assert grads == [(False, False)] * 3 + [(True, True)] * 5
    with pytest.raises(ValueError):
        model.step(torch.randn(5, 3), state)


def test_a_step_loop_follows_data_writes_to_bound_parameters():
    """The leaky map binds a fixed scalar leak rate as a number and skips a zero bias;
    writes through ``.data`` between steps (value, shape) reach the next step, checked
    against the map written out in NumPy-free float64."""
    gen = torch.Generator().manual_seed(4)
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", "leaky_tanh", n=5, lr=0.3)
    w_in = torch.randn(5, 1, generator=gen, dtype=F64)
    w = 0.4 * torch.randn(5, 5, generator=gen, dtype=F64)
    net.add_edge("in", "res", weights=w_in)
    net.add_edge("res", "res", weights=w, feedback=True)
    model = net.compile()
    node = model.nodes["res"]
    assert not node.lr.requires_grad and node.lr.dim() == 0
    edits = {
        2: lambda: node.lr.data.fill_(0.7),
        4: lambda: node.bias.data.fill_(0.2),
        6: lambda: setattr(node.lr, "data", torch.tensor([0.5], dtype=F64)),
    }
    lr, b = 0.3, 0.0
    us = torch.randn(9, 1, 1, generator=gen, dtype=F64)
    x, state = torch.zeros(1, 5, dtype=F64), model.init_state(1)
    with torch.no_grad():
        for t, u in enumerate(us):
            if t in edits:
                edits[t]()
                lr, b = float(node.lr.reshape(())), float(node.bias.reshape(-1)[0])
            x = torch.lerp(x, torch.tanh(u @ w_in.T + x @ w.T + b), lr)
            y, state = model.step(u, state)
            torch.testing.assert_close(y, x, rtol=0, atol=1e-14)
    assert (lr, b) == (0.5, 0.2)


def _trusted_one_channel_step():
    """A four-unit ESN of one input channel, and the state of its second step (which the
    next step takes on the fast path)."""
    net = rg.Network(dt=1.0)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", "leaky_tanh", n=4)
    net.add_edge("in", "res", weights=torch.ones(4, 1))
    net.add_edge("res", "res", weights=0.1 * torch.eye(4), feedback=True)
    model = net.compile()
    _, state = model.step(torch.ones(1, 1), None)
    _, state = model.step(torch.ones(1, 1), state)
    return model, state


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_step_loop_of_one_channel_refuses_a_bad_value(bad):
    model, state = _trusted_one_channel_step()
    with pytest.raises(ValueError, match="NaN or inf"):
        model.step(torch.tensor([[bad]]), state)


def _bad_state_edits() -> dict:
    """Each way of changing a returned state's entries: a NaN entry (which the unchecked
    step would carry on silently) or a missing one."""
    bad = torch.full((1, 4), math.nan)
    return {
        "setitem": lambda s: s.__setitem__("res.x", bad),
        "init": lambda s: s.__init__({"res.x": bad}),
        "update": lambda s: s.update({"res.x": bad}),
        "ior": lambda s: s.__ior__({"res.x": bad}),
        "setdefault": lambda s: (s.pop("res.x"), s.setdefault("res.x", bad)),
        "delitem": lambda s: s.__delitem__("res.x"),
        "pop": lambda s: s.pop("res->res@1"),
        "popitem": lambda s: s.popitem(),
        "clear": lambda s: s.clear(),
    }


@pytest.mark.parametrize("edit", sorted(_bad_state_edits()))
def test_a_returned_state_changed_by_hand_is_checked_again(edit):
    """The state a step returns skips the checks while it is passed back as it came;
    after any change of its entries the next step checks it as a state given by hand
    (here: a NaN or a missing entry is refused)."""
    model, state = _trusted_one_channel_step()
    y, _ = model.step(torch.ones(1, 1), state)
    _bad_state_edits()[edit](state)
    with pytest.raises((ValueError, KeyError), match="state"):
        model.step(torch.ones(1, 1), state)
    # the fast path itself still serves a state passed back unchanged
    _, fresh = model.step(torch.ones(1, 1), None)
    assert model.step(torch.ones(1, 1), fresh)[0].shape == y.shape


@pytest.mark.skipif(not NATIVE, reason="the native library is unavailable here")
def test_the_native_lif_step_serves_populations_held_at_the_runs_dt():
    """The C step is chosen where the countdown holds units at the run's dt (Brian2's
    rule: 1.5 ms at dt 1 holds none, 2 ms holds one step); a new dt changes the choice,
    and both kernels give the same spikes as the torch step."""
    gen = torch.Generator().manual_seed(5)
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 3)
    net.add_diffeq_node("pop", "lif", n=30, tau_m=10.0, refractory=2.0)
    net.add_edge("in", "pop", weights=3.0 * torch.rand(30, 3, generator=gen, dtype=F64))
    w = 0.2 * torch.randn(30, 30, generator=gen, dtype=F64)
    net.add_edge("pop", "pop", weights=w, feedback=True)
    model = net.compile()
    x = torch.rand(1, 200, 3, generator=gen, dtype=F64)
    for dt, expected in ((1.0, "native LIF step"), (0.5, "native LIF step"), (1.5, "torch")):
        model.dt = dt
        chosen = model.explain(batch_size=1).nodes["pop"]
        assert chosen[0].startswith(expected)
        if expected == "torch":
            assert "no refractory steps at this dt" in str(chosen)
        with torch.no_grad():
            fast = model.forward(x)
            native.set_enabled(False)
            try:
                reference = model.forward(x)
            finally:
                native.set_enabled(True)
        assert torch.equal(fast, reference) and int(fast.sum()) > 100


@pytest.mark.skipif(not NATIVE, reason="the native library is unavailable here")
def test_a_step_loop_takes_the_kernel_of_each_new_dt():
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 2)
    net.add_diffeq_node("pop", "lif", n=10, tau_m=10.0, refractory=2.0)
    net.add_edge("in", "pop", weights=4.0 * torch.ones(10, 2, dtype=F64))
    model = net.compile()
    x = torch.ones(1, 2, dtype=F64)
    fresh = net.compile()
    fresh.dt = 1.5
    with torch.no_grad():
        _, state = model.step(x, None)
        _, state = model.step(x, state)
        model.dt = 1.5  # no held steps: the torch LIF step, from the next step on
        for _ in range(20):
            before = {k: v.clone() for k, v in state.items()}
            y, state = model.step(x, state)
            y_ref, ref = fresh.step(x, before)
            assert torch.equal(y, y_ref) and all(torch.equal(state[k], ref[k]) for k in ref)
    assert model._last_step.ctx.dt == 1.5  # the program of the new dt
    assert model.explain().nodes["pop"][0] == "torch LIF step"


# ---- the decay map (y = kappa y + I): one declaration, a bound kernel, e-prop's readout ----


class _OwnMap(LeakyReadout):
    """The leaky readout's mathematics written as its own map(): the generic step."""

    def map(self, s, i, dt):
        return self.State(self.kappa(dt) * s.y + i.I)


class _Trace(DENode):
    """A user model declaring a decay map in a few lines: a per-unit spike trace."""

    state_vars = ("y",)
    input_names = ("I",)
    output_var = "y"

    def __init__(self, n, tau=5.0, **kw):
        super().__init__(n, **kw)
        self.integrator = "map"
        self.add_param("tau", tau, domain="positive")

    def decay_map(self):
        return DecayMap(lambda dt: torch.exp(-dt / self.tau), "I")


def _readout_net(node, dtype=F64):
    net = rg.Network(dt=0.5, dtype=dtype)
    net.add_func_node("in", 3)
    net.add_diffeq_node("out", node)
    net.add_edge("in", "out", weights=torch.randn(4, 3, generator=torch.Generator().manual_seed(7),
                                                dtype=dtype))  # fmt: skip
    return net


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_the_decay_map_kernel_gives_the_models_own_numbers(dtype):
    tau = torch.tensor([3.0, 7.0, 11.0, 20.0])
    x = torch.randn(2, 50, 3, generator=torch.Generator().manual_seed(8), dtype=dtype)
    fast = _readout_net(LeakyReadout(4, tau=tau), dtype).compile()
    own = _readout_net(_OwnMap(4, tau=tau), dtype)
    own.get_edge("in", "out").weight.data.copy_(fast.edges["in->out"].weight)
    own = own.compile()
    assert fast.explain().nodes["out"][0] == "torch decay map"
    kernel, why, skipped = own.explain().nodes["out"]
    assert kernel == "generic"
    assert ("torch decay map", "_OwnMap overrides map() and declares no decay map") in skipped
    y = fast.forward(x)
    assert torch.equal(y, own.forward(x)) and float(y.abs().max()) > 0.5
    user = _readout_net(_Trace(4, tau=tau), dtype).compile()
    user.edges["in->out"].weight.data.copy_(fast.edges["in->out"].weight)
    assert user.explain().nodes["out"][0] == "torch decay map"
    assert torch.equal(user.forward(x), y)  # the same map, declared in a few lines


def test_a_trained_decay_takes_the_generic_step_and_its_gradient():
    net = _readout_net(LeakyReadout(4, tau=6.0, train=["tau"]))
    model = net.compile()
    kernel, _, skipped = model.explain(grad=True).nodes["out"]
    assert kernel == "generic"
    assert ("torch decay map", "the decay trains (a bound kappa would take no gradient)") in skipped
    assert model.explain(grad=False).nodes["out"][0] == "torch decay map"
    x = torch.randn(1, 30, 3, generator=torch.Generator().manual_seed(9), dtype=F64)
    model.forward(x).sum().backward()
    tau = model.nodes["out"].tau
    assert tau.grad is not None and float(tau.grad.abs()) > 1e-3


def test_the_decay_map_kernel_reads_its_decay_afresh_at_every_run():
    """kappa may read more than the model's parameters (here a plain attribute): the kernel
    computes it once per run, so a change between runs takes effect as in the model's step."""

    class Scaled(_Trace):
        factor = 1.0

        def decay_map(self):
            return DecayMap(lambda dt: self.factor * torch.exp(-dt / self.tau), "I")

    node = Scaled(4, tau=5.0)
    model = _readout_net(node).compile()
    assert model.explain().nodes["out"][0] == "torch decay map"
    x = torch.randn(1, 40, 3, generator=torch.Generator().manual_seed(10), dtype=F64)
    first = model.forward(x)
    node.factor = 0.5
    second = model.forward(x)
    reference = _readout_net(_OwnMapOf(node)).compile()
    reference.edges["in->out"].weight.data.copy_(model.edges["in->out"].weight)
    assert not torch.equal(first, second)
    assert torch.equal(second, reference.forward(x))


def _OwnMapOf(node):
    """A generic-step copy of ``node``'s decay (its own map(), the same kappa)."""

    class Own(DENode):
        state_vars, input_names, output_var = ("y",), ("I",), "y"

        def __init__(self):
            super().__init__(node.n)
            self.integrator = "map"

        def map(self, s, i, dt):
            return self.State(node.decay_map().kappa(dt) * s.y + i.I)

    return Own()
