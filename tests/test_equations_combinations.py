"""Models from equations one step off the plain path: every combination a user reaches is
honoured (checked against closed forms and the built-ins) or refused by name, and a refused
call changes nothing."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

import rnngraph as rg
from rnngraph.equations._expr import FUNCTIONS
from rnngraph.nodes import LIF
from rnngraph.units import DimensionError, Mohm, ms, mV, nA, nS, pF

F64 = torch.float64
COND = """
dv/dt = (g*(E - v) + I)/C : volt
I : amp
g : siemens
E : volt
C : farad
"""
Cond = rg.equation_model(COND, inputs="I", name="Cond")


def _net(node, dt=0.1, label="a"):
    net = rg.Network(dt=dt, dtype=F64)
    net.add_node(label, node)
    return net


def _v0(node):
    return node.init_state(1, dtype=F64).v.reshape(-1).tolist()


# ---- a unit without leak ------------------------------------------------------------------


def test_exponential_euler_integrates_a_unit_without_leak_exactly():
    """dv/dt = -a v + sin(I) under constant I: v(T) = sin(I) (1 - e^{-aT})/a, and its
    limit sin(I) T where a = 0 (was NaN); the gradient in a there is -sin(I) T^2/2."""
    model = rg.equation_model("dv/dt = -a*v + sin(I) : 1", inputs="I", method="exp_euler")
    node = model(3, a=torch.tensor([0.0, 1.0, 0.25]), train="a")
    y = _net(node).compile()(torch.full((1, 50, 3), 0.5, dtype=F64))
    s, T = math.sin(0.5), 5.0
    want = [s * T, s * (1 - math.exp(-T)), s * (1 - math.exp(-0.25 * T)) / 0.25]
    assert torch.allclose(y[0, -1], torch.tensor(want, dtype=F64), rtol=1e-13, atol=0)
    y[0, -1, 0].backward()
    assert node.a.grad[0].item() == pytest.approx(-s * T**2 / 2, rel=1e-12)


def test_a_linear_model_refuses_a_unit_without_leak_and_changes_nothing():
    with pytest.raises(ValueError, match=r"without a leak \(tau infinite\) for units \[0, 2\]"):
        Cond(3, g=torch.tensor([0.0, 10.0, 0.0]) * nS, E=-70 * mV, C=200 * pF)
    node = Cond(3, g=10 * nS, E=-70 * mV, C=200 * pF)
    net = rg.Network(dt=0.1 * ms, dtype=F64)
    net.add_node("a", node)
    with pytest.raises(ValueError, match=r"g = .* would leave dv/dt without a leak.*\[1\]"):
        net.set_var("a", "g", torch.tensor([1.0, 0.0, 1.0]) * nS)
    assert torch.equal(net.get_var("a", "g"), torch.tensor(1e-8, dtype=F64))


# ---- values with units ------------------------------------------------------------------


def test_set_var_and_set_init_take_quantities_in_si_units_and_refuse_bare_numbers():
    node = Cond(2, g=10 * nS, E=-70 * mV, C=200 * pF, init={"v": -65 * mV})
    assert _v0(node) == pytest.approx([-0.065, -0.065], rel=1e-15)
    net = rg.Network(dt=0.1 * ms, dtype=F64)
    net.add_node("a", node)
    net.set_var("a", "g", 5 * nS)
    net.set_var("a", "v", -60 * mV)
    assert net.get_var("a", "g").item() == pytest.approx(5e-9, rel=1e-15)
    assert net.get_var("a", "v").reshape(-1).tolist() == pytest.approx([-0.06] * 2, rel=1e-15)
    for value, error, match in (
        (-60.0, DimensionError, "must have dimension volt.*without a unit"),
        (-60 * nA, DimensionError, "must have dimension volt, got amp"),
    ):
        with pytest.raises(error, match=match):
            net.set_var("a", "v", value)
    with pytest.raises(DimensionError, match="must have dimension siemens"):
        net.set_var("a", "g", 5e-9)
    assert net.get_var("a", "g").item() == pytest.approx(5e-9, rel=1e-15)
    assert net.get_var("a", "v").reshape(-1).tolist() == pytest.approx([-0.06] * 2, rel=1e-15)
    node.set_init("v", torch.tensor([-50.0, -40.0], dtype=F64) * mV)  # a tensor in a Quantity
    assert _v0(node) == pytest.approx([-0.05, -0.04], rel=1e-15)
    with pytest.raises(TypeError, match=r"LIF has no units.*Quantity\(-0.065"):
        LIF(2).set_init("v", -65 * mV)
    lif = _net(LIF(2, tau_m=12.5))
    with pytest.raises(TypeError, match="LIF has no units"):
        lif.set_var("a", "tau_m", 10 * ms)
    assert lif.get_var("a", "tau_m").item() == 12.5


def test_the_compiled_networks_step_follows_the_unit_rule_and_the_network():
    net = rg.Network(dt=0.1 * ms, dtype=F64)
    net.add_node("a", Cond(2, g=10 * nS, E=-70 * mV, C=200 * pF))
    model = net.compile()
    with pytest.raises(ValueError, match=r"CompiledNetwork.dt: node 'a' \(Cond\) computes in SI"):
        model.dt = 0.1
    with pytest.raises(ValueError, match=r"set a Quantity, net.dt = 0.05\*ms"):
        net.dt = net.dt
    assert model.dt == net.dt == pytest.approx(1e-4, rel=1e-15)
    model.dt = 0.2 * ms
    assert net.dt == pytest.approx(2e-4, rel=1e-15)
    net.dt = 0.05 * ms
    assert model.dt == pytest.approx(5e-5, rel=1e-15)
    plain = _net(LIF(2)).compile()
    with pytest.raises(ValueError, match=r"node 'a' \(LIF\) has no units"):
        plain.dt = 0.1 * ms
    plain.dt = 0.5
    assert plain.dt == 0.5


def test_quantities_compare_are_false_at_zero_and_carry_tensors():
    assert (1 * mV <= 1 * mV) and (2 * mV >= 1 * mV) and not (2 * mV <= 1 * mV)
    assert not bool(0 * mV) and bool(-1 * mV)
    q = torch.tensor([1.0, 2.0], dtype=F64) * ms
    assert isinstance(q.value, torch.Tensor) and q.value.tolist() == [1e-3, 2e-3]
    assert q == torch.tensor([1e-3, 2e-3], dtype=F64) * rg.units.second
    with pytest.raises(DimensionError, match="cannot compare"):
        _ = 1 * mV <= 1 * ms
    with pytest.raises(TypeError, match="a quantity combines with numbers.*got str"):
        _ = "a" * ms


# ---- definitions refused by name, at class creation -------------------------------------


SPIKE = dict(threshold="v > 1", reset="v = 0")


@pytest.mark.parametrize(
    "eqs, kwargs, match",
    [
        ("dv/dt = -v + I : 1\ndw/dt = -w : 1", dict(SPIKE, threshold="v > w"), r"\['w'\]"),
        ("dv/dt = -v : 1", dict(SPIKE, threshold="v > I"), r"threshold v > I reads \['I'\]"),
        ("dv/dt = -v + I : 1\nh = v/2 : 1", dict(SPIKE, threshold="v > h"), r"reads \['v'\]"),
        ("dv/dt = -v + I : 1", dict(SPIKE, reset="v = I"), r"reset v = I reads \['I'\]"),
        ("dv/dt = -v + I : 1", dict(inputs=("I", "I")), "names a variable twice"),
        ("dv/dt = -v + I : 1", dict(output="mean(v)"), "elementwise function"),
        ("dv/dt = -v + I : 1", dict(output="clip(v, 0, 1)"), "elementwise function"),
        ("dv/dt = -v/training + I : 1", {}, r"\['training'\] are attributes of the model"),
        ("dv/dt = -v/n + I : 1", {}, r"\['n'\] are attributes"),
        ("dv/dt = -v*rhs + I : 1", {}, r"\['rhs'\] are attributes"),
        ("dv/dt = -v/spike_fn + I : 1", SPIKE, r"\['spike_fn'\] are attributes"),
        ("dv/dt = -v + I : 1\ndw/dt = -w : 1", dict(SPIKE, reset="v = 0; w += 2*jump_w"), "jump_w"),
        ("dv/dt = (R*I - v)/tau : volt\ntau : second\nR : ohm", {}, r"no line declares \['I'\]"),
        (
            "dv/dt = -v + I : 1 (unless refractory)",
            dict(SPIKE, refractory=2 * ms),
            "refractory is given with a unit",
        ),
    ],
)
def test_a_definition_that_cannot_be_honoured_is_refused_by_name(eqs, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        rg.equation_model(eqs, **{"inputs": "I", **kwargs})


def test_a_threshold_from_a_subexpression_of_parameters_equals_the_builtin():
    """``v > th`` with ``th = 2*a`` spikes as the built-in LIF with ``v_th = 2a``."""
    eqs = "dv/dt = (v_rest - v + r_m*I)/tau_m : 1\nth = 2*a : 1\nrst = a - 1.5 : 1"
    model = rg.equation_model(eqs, inputs="I", threshold="v > th", reset="v = rst")
    p = dict(tau_m=10.0, v_rest=0.0, r_m=1.0)
    node = model(4, **p, a=torch.tensor([0.4, 0.5, 0.6, 0.7], dtype=F64))
    assert node.threshold.tolist() == pytest.approx([0.8, 1.0, 1.2, 1.4], rel=1e-15)
    ref = LIF(4, **p, v_th=[0.8, 1.0, 1.2, 1.4], v_reset=[-1.1, -1.0, -0.9, -0.8])
    x = 1.5 + torch.rand(2, 1000, 4, generator=torch.Generator().manual_seed(3), dtype=F64)
    z = [_net(n).run(x, record=["a.v"]) for n in (node, ref)]
    assert torch.equal(z[0].output, z[1].output) and z[0].output.sum() > 20
    assert (z[0]["a.v"] - z[1]["a.v"]).abs().max() <= 1e-12


def test_a_long_sum_is_refused_with_a_way_out_that_works():
    terms = "+".join(f"a{k}" for k in range(400))
    with pytest.raises(ValueError, match="nests 403 levels deep.*split it into subexpr"):
        rg.Equations(f"dv/dt = -v + I + {terms} : 1")
    subs = "\n".join(
        f"s{j} = " + "+".join(f"a{k}" for k in range(50 * j, 50 * j + 50)) + " : 1"
        for j in range(8)
    )
    eqs = "dv/dt = -v + I + " + "+".join(f"s{j}" for j in range(8)) + " : 1\n" + subs
    node = rg.equation_model(eqs, inputs="I")(1, **{f"a{k}": 0.01 for k in range(400)})
    assert node.integration() == ("affine map", None)
    y = _net(node).compile()(torch.zeros(1, 30, 1, dtype=F64))  # v -> 4 (1 - e^{-t})
    assert y[0, -1, 0].item() == pytest.approx(4.0 * (1 - math.exp(-3.0)), rel=1e-13)


# ---- functions, methods, copies -------------------------------------------------------------


def test_exprel_has_its_value_and_gradient_at_and_near_zero():
    f = FUNCTIONS["exprel"][0]
    x = torch.tensor([0.0, 1e-7, -3e-6, 1e-3, -0.5, 2.0], dtype=F64, requires_grad=True)
    y = f(x)
    want = [1.0] + [math.expm1(v) / v for v in x.tolist()[1:]]
    assert torch.allclose(y, torch.tensor(want, dtype=F64), rtol=1e-15, atol=0)
    (g,) = torch.autograd.grad(y.sum(), x)
    slope = [  # d/dx (e^x - 1)/x: its series near 0, where the closed form cancels
        1 / 2 + v / 3 + v * v / 8 if abs(v) < 1e-2 else ((v - 1) * math.exp(v) + 1) / v**2
        for v in x.tolist()
    ]
    assert torch.allclose(g, torch.tensor(slope, dtype=F64), rtol=1e-8, atol=0)


def test_sign_takes_a_value_with_a_dimension():
    eqs = "dv/dt = (-v + sign(v - E)*mV + R*I)/tau : volt\nI : amp\nE : volt\nR : ohm\ntau : second"
    node = rg.equation_model(eqs, inputs="I")(2, E=-1 * mV, R=1 * Mohm, tau=10 * ms)
    net = rg.Network(dt=0.1 * ms, dtype=F64)
    net.add_node("a", node)
    y = net.compile()(torch.zeros(1, 1, 2, dtype=F64))  # v = 0 > E: dv/dt = 1 mV/10 ms
    assert y[0, 0].tolist() == pytest.approx([1e-5, 1e-5], rel=1e-12)


def test_brian2_integrator_names_are_taken_by_instances_too():
    model = rg.equation_model("dv/dt = -v + sin(I) : 1", inputs="I", method="exponential_euler")
    a = model(2, integrator="euler")
    assert a.integrator == "euler"
    with pytest.raises(ValueError, match="integrator 'linear' needs linear equations"):
        model(2, integrator="linear")
    lin = rg.equation_model("dv/dt = (-v + I)/tau : 1", inputs="I")
    runs = [
        _net(lin(2, tau=5.0, integrator=m)).compile()(torch.ones(1, 20, 2, dtype=F64))
        for m in ("exponential_euler", "exp_euler", "exact")
    ]
    assert torch.equal(runs[0], runs[1]) and torch.equal(runs[0], runs[2])
    assert runs[0][0, -1, 0].item() == pytest.approx(1 - math.exp(-20 * 0.1 / 5), rel=1e-13)


def test_models_differing_deep_inside_a_large_namespace_array_are_told_apart():
    a, b = np.ones(2000), np.ones(2000)
    b[1000] = 2.0
    eqs = "dv/dt = -v*w + I : 1"
    m_a = rg.equation_model(eqs, inputs="I", namespace={"w": a}, name="K")
    m_b = rg.equation_model(eqs, inputs="I", namespace={"w": b}, name="K")
    copy_b = copy.deepcopy(m_b(2000))
    assert type(copy_b) is m_b and type(copy.deepcopy(m_a(2000))) is m_a
    assert copy_b.w[1000].item() == 2.0 and copy_b.w[999].item() == 1.0


# ---- jumps by the step's input (on_input) ---------------------------------------------


@pytest.mark.parametrize("method", ["exact", "euler"])
def test_a_saturating_jump_by_the_input_follows_the_step_by_hand(method):
    """x(k) = Phi(x(k-1)) + (1 - Phi) u s(k), Phi the exact decay e^{-dt/tau} or Euler's
    1 - dt/tau: the jump reads the integrated state and this step's input."""
    model = rg.equation_model(
        "dx/dt = -x/tau : 1", inputs="spikes", on_input="x += (1 - x)*u*spikes", method=method
    )
    node = model(3, tau=torch.tensor([2.0, 5.0, 9.0], dtype=F64), u=0.3)
    assert node.integrator == method
    g = torch.Generator().manual_seed(4)
    spikes = (torch.rand(2, 400, 3, generator=g, dtype=F64) < 0.2).to(F64)
    y = _net(node).compile()(spikes)
    tau, x, want = node.tau, torch.zeros(2, 3, dtype=F64), []
    for k in range(400):
        x = x * (torch.exp(-0.1 / tau) if method == "exact" else 1 - 0.1 / tau)
        x = x + (1 - x) * 0.3 * spikes[:, k]
        want.append(x)
    assert (y - torch.stack(want, 1)).abs().max() <= 1e-14 and y.max() > 0.3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(on_input="x = spikes"), "expected a jump 'x \\+= expr'"),
        (dict(on_input="y += spikes"), "of a variable of a differential equation"),
        (dict(on_input="x += 1"), "reads none of the inputs"),
        (dict(on_input="x += spikes; x -= spikes"), "changes 'x' twice"),
        (
            dict(
                equations="dv/dt = -v : 1\ndx/dt = -x/tau : 1",
                on_input="x += spikes",
                threshold="v > 1",
                reset="v = 0",
            ),
            "for rate models",
        ),
        (dict(on_input="x += spikes", method="exact", equations="dx/dt = -x*x : 1"), "linear"),
    ],
)
def test_jumps_by_the_input_that_cannot_be_honoured_are_refused(kwargs, match):
    kwargs = {"equations": "dx/dt = -x/tau : 1", "inputs": "spikes", **kwargs}
    with pytest.raises(ValueError, match=match):
        rg.equation_model(**kwargs)


def test_a_jump_by_the_input_is_checked_for_units():
    eqs = "dg/dt = -g/tau : siemens\ntau : second\nspikes : 1\nw : siemens"
    with pytest.raises(DimensionError, match="the jump of g has dimension 1, expected siemens"):
        rg.equation_model(eqs, inputs="spikes", on_input="g += spikes")(2, tau=5 * ms, w=1 * nS)
    syn = rg.equation_model(eqs, inputs="spikes", on_input="g += w*spikes")
    node = syn(2, tau=5 * ms, w=2 * nS)
    net = rg.Network(dt=0.1 * ms, dtype=F64)
    net.add_node("g", node)
    y = net.compile()(torch.tensor([[[1.0, 0.0], [0.0, 0.0]]], dtype=F64))
    assert y[0, :, 0].tolist() == pytest.approx([2e-9, 2e-9 * math.exp(-0.02)], rel=1e-14)


# ---- the exact step of a linear system ------------------------------------------------


def test_the_exact_step_of_a_coupled_linear_system_is_its_closed_form():
    """A damped oscillator under a constant drive, x(t) = (1 - e^{-zwt}(cos w_d t +
    z w/w_d sin w_d t))/w^2, and the chain dx/dt = v, dv/dt = I (a singular system),
    x = I t^2/2: exact at every step, whatever dt."""
    osc = rg.equation_model(
        "dx/dt = v : 1\ndv/dt = -w*w*x - 2*zeta*w*v + I : 1", inputs="I", method="exact"
    )
    node = osc(2, w=torch.tensor([2.0, 3.0], dtype=F64), zeta=0.1)
    assert node.integrator == "exact" and node.integration() == ("exact", None)
    y = _net(node).compile()(torch.ones(1, 200, 2, dtype=F64))[0]
    t = 0.1 * torch.arange(1, 201, dtype=F64)[:, None]
    w, z = torch.tensor([2.0, 3.0], dtype=F64), 0.1
    wd = w * math.sqrt(1 - z * z)
    want = 1 - torch.exp(-z * w * t) * (torch.cos(wd * t) + z * w / wd * torch.sin(wd * t))
    assert (y - want / w**2).abs().max() <= 1e-13
    chain = rg.equation_model("dx/dt = v : 1\ndv/dt = I : 1", inputs="I", method="exact")(1)
    y = _net(chain, dt=0.25).compile()(torch.full((1, 40, 1), 3.0, dtype=F64))[0, :, 0]
    t = 0.25 * torch.arange(1, 41, dtype=F64)
    assert (y - 1.5 * t**2).abs().max() <= 1e-12 * 1.5 * 100
    with pytest.raises(ValueError, match="needs linear equations"):
        rg.equation_model("dx/dt = v : 1\ndv/dt = -x*x + I : 1", inputs="I", method="exact")
