"""Models from equations: each built-in model written as equations equals the built-in
(float64: states to 1e-12, spike for spike, gradients to 1e-9), the structure found from
the equations gives the built-in's kernels, units are checked once, and the text is parsed,
never executed."""

from __future__ import annotations

from typing import NamedTuple

import pytest
import torch

import rnngraph as rg
from rnngraph.nodes import (
    EIF,
    IAF,
    LIF,
    QIF,
    AdEx,
    DoubleExpSynapse,
    ExpSynapse,
    Izhikevich,
    LeakyIntegrator,
    QIFMeanField,
)
from rnngraph.units import DimensionError, Mohm, ms, mV, nA, second

F64 = torch.float64

LIF_EQ = rg.equations.equation_form(LIF)["equations"]
ADEX_EQ = rg.equations.equation_form(AdEx)["equations"]
ADEX_P = dict(C=281.0, g_L=30.0, E_L=-70.6, V_T=-50.4, Delta_T=2.0, v_reset=-70.6, v_peak=0.0)
LIF_P = dict(tau_m=10.0, v_rest=-0.5, v_th=1.0, v_reset=-0.2, r_m=1.5)


class Case(NamedTuple):
    builtin: type
    params: dict
    scale: float  # of the drive
    dt: float
    integrators: tuple
    init: dict  # the built-in's initial state, given to the equation model
    trained: tuple  # parameters whose gradients are compared

    @property
    def model(self):
        return _MODELS[self.builtin]


#: each built-in against the equations its docstring shows (``equation_form``)
CASES = {
    "lif": Case(
        LIF, LIF_P, 1.2, 0.5, ("exp_euler", "euler", "rk4"), {"v": -0.5}, ("tau_m", "v_th")
    ),
    "iaf": Case(
        IAF,
        dict(tau_mem=0.02, v_thresh=-0.055, v_reset=-0.065, v_rest=-0.065, r_m=1e7, bias=2e-10),
        1.6e-9,
        1e-4,
        ("rk4", "euler", "exp_euler"),
        {"v": -0.065},
        ("tau_mem", "bias"),
    ),
    "eif": Case(EIF, ADEX_P, 700.0, 0.1, ("euler", "rk4"), {"v": -70.6}, ("g_L", "V_T")),
    "adex": Case(
        AdEx,
        {**ADEX_P, "a": 4.0, "tau_w": 144.0, "b": 80.5},
        900.0,
        0.1,
        ("euler", "rk4"),
        {"v": -70.6},
        ("a", "tau_w", "b"),
    ),
    "izhikevich": Case(
        Izhikevich,
        dict(
            C=100.0,
            k=0.7,
            v_r=-60.0,
            v_theta=-40.0,
            eta=0.0,
            g=1.0,
            E_r=0.0,
            b=-2.0,
            tau_u=33.33,
            kappa=10.0,
            tau_s=6.0,
            v_peak=30.0,
            v_reset=-65.0,
        ),
        150.0,
        0.1,
        ("euler", "rk4"),
        {"v": -60.0},
        ("b", "kappa"),
    ),
    "qif": Case(
        QIF,
        dict(tau=1.0, eta=-1.0, k=0.5, tau_s=2.0, v_peak=100.0, v_reset=-100.0),
        3.0,
        0.01,
        ("euler", "rk4"),
        {"v": -2.0},
        ("eta", "tau"),
    ),
    "qif_mf": Case(
        QIFMeanField,
        dict(tau=1.0, Delta=1.0, eta=-5.0),
        2.0,
        0.01,
        ("euler", "rk4"),
        {},
        ("eta", "Delta"),
    ),
    "leaky_integrator": Case(
        LeakyIntegrator, dict(tau=5.0), 2.0, 0.5, ("exp_euler", "euler", "rk4"), {}, ("tau",)
    ),
    "double_exp_syn": Case(
        DoubleExpSynapse,
        dict(tau_r=[1.0, 2.0, 3.0, 2.5, 0.5], tau_d=[10.0, 20.0, 15.0, 8.0, 30.0]),
        0.5,
        0.1,
        ("exact",),
        {},
        ("tau_r", "tau_d"),
    ),
    "exp_syn": Case(
        ExpSynapse, dict(tau=[3.0, 4.0, 5.0, 6.0, 7.0]), 0.5, 0.1, ("exact",), {}, ("tau",)
    ),
}
_MODELS = {
    c.builtin: rg.equation_model(**rg.equations.equation_form(c.builtin)) for c in CASES.values()
}


def _drive(case, T=1500, B=2, n=5, seed=0):
    c = CASES[case]
    g = torch.Generator().manual_seed(seed)
    return {
        k: c.scale * (0.6 + 0.8 * torch.rand(B, T, n, generator=g, dtype=F64))
        for k in c.builtin.input_names
    }


def _simulate(node, case, x, record):
    dt, inputs = CASES[case].dt, CASES[case].builtin.input_names
    net = rg.Network(dt=dt, dtype=F64)
    net.add_node("n", node)
    for k in inputs:
        net.add_node(f"in_{k}", rg.FuncNode(node.n))
        net.add_edge(f"in_{k}", "n", target_var=k, weights=torch.eye(node.n, dtype=F64))
    net.output_node = "n"
    if len(inputs) == 1:
        net.input_node = f"in_{inputs[0]}"
        return net, net.run(x[inputs[0]], record=record)
    return net, net.run({f"in_{k}": x[k] for k in inputs}, record=record)


def _pair(case, integrator, refractory=None, **extra):
    c = CASES[case]
    opts = dict(integrator=integrator, **extra)
    if refractory is not None:
        opts["refractory"] = refractory
    return c.builtin(5, **c.params, **opts), c.model(5, **c.params, init=c.init, **opts)


@pytest.mark.parametrize(
    "case, integrator",
    [(c, i) for c, spec in CASES.items() for i in spec.integrators],
)
def test_a_builtin_written_as_equations_equals_the_builtin(case, integrator):
    refractory = 0.3 if case in ("lif", "adex", "izhikevich") else None
    a, b = _pair(case, integrator, refractory)
    x = _drive(case)
    record = ["n"] + [f"n.{v}" for v in a.state_vars if v not in ("z", "ref")]
    _, ra = _simulate(a, case, x, record)
    _, rb = _simulate(b, case, x, record)
    for key in record:
        ya, yb = ra[key], rb[key]
        assert torch.isfinite(ya).all()
        scale = ya.abs().max().clamp_min(1.0)
        assert (ya - yb).abs().max() <= 1e-12 * scale, (key, (ya - yb).abs().max())
    if "z" in a.state_vars:
        assert torch.equal(ra["n"], rb["n"]) and ra["n"].sum() > 20  # spike for spike


@pytest.mark.parametrize("case", list(CASES))
def test_gradients_through_an_equation_model_equal_the_builtins(case):
    c = CASES[case]
    inputs, trained = c.builtin.input_names, c.trained
    x = _drive(case, T=300)
    grads = []
    for cls in (c.builtin, c.model):
        init_opt = {"init": c.init} if cls is c.model else {}
        node = cls(5, **c.params, integrator=c.integrators[0], train=trained, **init_opt)
        xs = {k: v.clone().requires_grad_(True) for k, v in x.items()}
        net, _ = _simulate(node, case, {k: v.detach() for k, v in xs.items()}, ["n"])
        feeds = {f"in_{k}": xs[k] for k in inputs}
        y = net.forward(feeds if len(inputs) > 1 else xs[inputs[0]])
        w = torch.linspace(-1.0, 1.0, y.shape[-1], dtype=F64)
        loss = (y * w).sum() / y.shape[1]
        ps = [getattr(node, p) for p in trained]
        grads.append(torch.autograd.grad(loss, [*ps, *xs.values()]))
    for ga, gb in zip(*grads, strict=True):
        scale = ga.abs().max().clamp_min(1e-12)
        assert ga.abs().max() > 0
        assert (ga - gb).abs().max() <= 1e-9 * scale, (case, (ga - gb).abs().max() / scale)


def _explained(node, dt, grad=False):
    net = rg.Network(dt=dt, dtype=F64)
    net.add_node("n", node)
    net.input_node = net.output_node = "n"
    text = str(net.compile().explain(batch_size=2, grad=grad))
    return [line.split(":", 1)[1] for line in text.splitlines() if "  node 'n':" in line]


@pytest.mark.parametrize("grad", [False, True])
def test_a_linear_model_from_equations_gets_the_builtins_kernels(grad):
    a, b = _pair("lif", "exp_euler")
    assert b.integration() == ("affine map", None)
    kernels = _explained(a, 0.5, grad)
    assert kernels == _explained(b, 0.5, grad) and kernels
    assert ("LIF step" in kernels[0]) and "[affine map]" in kernels[0]


def test_what_the_structure_finder_says():
    adex = CASES["adex"].model.structure_found
    assert adex.linear is None and adex.rates is None  # v*exp(v) and exp(v): no decay
    assert adex.why_not_linear == "dv/dt is not linear in v"
    izh = CASES["izhikevich"].model.structure_found
    assert izh.rates is None and "v" in izh.why_not_linear
    lif = CASES["lif"].model.structure_found
    assert set(lif.linear) == {"v"}
    coba = rg.equation_model(
        """dv/dt = (g_l*(E_l - v) + ge*(E_e - v) + I)/C : 1
           dge/dt = -ge/tau_e : 1""",
        inputs="I",
    ).structure_found
    assert coba.rates is not None and coba.linear is None  # decay of v depends on ge
    assert "depends on the state" in coba.why_not_linear
    with pytest.raises(ValueError, match="needs linear equations"):
        rg.equation_model(
            ADEX_EQ, inputs="I", threshold="v > v_peak", reset="v = v_reset; w += b", method="exact"
        )
    with pytest.raises(ValueError, match="affine in its own variable"):
        rg.equation_model(
            ADEX_EQ,
            inputs="I",
            threshold="v > v_peak",
            reset="v = v_reset; w += b",
            method="exponential_euler",
        )


# ---- units --------------------------------------------------------------------------------

IAF_EQ = """
dv/dt = (v_rest - v + r_m*(I + bias))/tau_mem : volt (unless refractory)
I : amp
tau_mem : second
r_m : ohm
v_rest : volt
v_thresh : volt
v_reset : volt
bias : amp
"""
IAFEq = rg.equation_model(
    IAF_EQ, inputs="I", threshold="v > v_thresh", reset="v = v_reset", method="rk4", name="IAFEq"
)
IAF_SI = dict(tau_mem=0.02, r_m=1e7, v_rest=-0.065, v_thresh=-0.055, v_reset=-0.065, bias=0.2e-9)


def test_a_model_with_units_computes_in_si_units_as_the_builtin_iaf():
    """Brian2/Rockpool's IAF, its values given in mV, ms, Mohm and nA, equals the built-in
    ``iaf`` given the same values as plain SI numbers."""
    eq = IAFEq(5, **_iaf_units(), refractory=2 * ms, init={"v": -65 * mV})
    assert eq.uses_units and float(eq.tau_mem) == pytest.approx(0.02, rel=1e-15)
    ref = IAF(5, **IAF_SI, refractory=2e-3, integrator="rk4")
    g = torch.Generator().manual_seed(1)
    x = 1e-9 + 1.5e-9 * torch.rand(2, 4000, 5, generator=g, dtype=F64)
    runs = []
    for node, dt in ((ref, 1e-4), (eq, 0.1 * ms)):
        net = rg.Network(dt=dt, dtype=F64)
        net.add_node("n", node)
        net.input_node = net.output_node = "n"
        runs.append(net.run(x, record=["n", "n.v"]))
    assert torch.equal(runs[0]["n"], runs[1]["n"]) and runs[0]["n"].sum() > 50
    assert (runs[0]["n.v"] - runs[1]["n.v"]).abs().max() <= 1e-12 * 0.07


def test_a_unit_error_raises_at_construction_naming_the_equation_and_term():
    with pytest.raises(DimensionError, match=r"parameter 'tau_mem' must have dimension second"):
        IAFEq(
            3,
            **{
                **dict(tau_mem=20 * mV),
                **{k: v for k, v in _iaf_units().items() if k != "tau_mem"},
            },
        )
    with pytest.raises(DimensionError, match=r"without a unit"):
        IAFEq(3, **{**_iaf_units(), "r_m": 1e7})
    bad = IAF_EQ.replace("r_m*(I + bias)", "(I + bias)")
    with pytest.raises(
        DimensionError,
        match=r"cannot add 'v_rest - v' \(dimension volt\) "
        r"and 'I \+ bias' \(dimension amp\)",
    ):
        rg.equation_model(bad, inputs="I", threshold="v > v_thresh", reset="v = v_reset")
    with pytest.raises(
        DimensionError,
        match=r"dv/dt = v_rest/r_m.*has dimension amp, expected "
        r"volt/second",
    ):
        rg.equation_model(
            "dv/dt = v_rest/r_m + I : volt\nv_rest : volt\nr_m : ohm\nI : amp", inputs="I"
        )
    with pytest.raises(DimensionError, match=r"the argument of exp\(\): 'v' must be dimensionless"):
        rg.equation_model("dv/dt = exp(v)/second + I/second : volt\nI : volt", inputs="I")
    with pytest.raises(DimensionError, match="the threshold has dimension amp"):
        rg.equation_model(IAF_EQ, inputs="I", threshold="v > bias", reset="v = v_reset")
    with pytest.raises(ValueError, match="unscaled form"):
        rg.Equations("dv/dt = -v/tau : mV")


def _iaf_units():
    return dict(
        tau_mem=20 * ms,
        r_m=10 * Mohm,
        v_rest=-65 * mV,
        v_thresh=-55 * mV,
        v_reset=-65 * mV,
        bias=0.2 * nA,
    )


def test_units_and_the_networks_step_go_together():
    eq = IAFEq(2, **_iaf_units())
    with pytest.raises(ValueError, match=r"node 'n' \(IAFEq\) computes in SI units.*Network\("):
        rg.Network(dt=1e-4).add_node("n", eq)
    net = rg.Network(dt=0.1 * ms)
    assert net.dt == pytest.approx(1e-4, rel=1e-15)
    with pytest.raises(ValueError, match=r"node 'lif' \(LIF\) has no units"):
        net.add_node("lif", LIF(2))
    net.add_node("n", eq)
    with pytest.raises(ValueError, match="computes in SI units"):
        net.dt = 1e-4  # refused, the step stays
    assert net.dt == pytest.approx(1e-4, rel=1e-15)
    with pytest.raises(DimensionError, match="dt must be a time"):
        rg.Network(dt=0.1 * mV)
    unitless = CASES["lif"].model
    with pytest.raises(TypeError, match="given with a unit"):
        unitless(2, **{**LIF_P, "tau_m": 10 * ms})
    assert float(0.5 * second / ms) == pytest.approx(500.0)


# ---- safety: parsed, never executed ------------------------------------------------------


@pytest.mark.parametrize(
    "rhs",
    [
        "__import__('os').system('echo hacked')",
        "v.__class__",
        "(lambda: 1)()",
        "v[0]",
        "'text'",
        "[x for x in v]",
        "open('/etc/passwd')",
        "getattr(v, 'grad')",
        "v if v else 1",
        "v; import os",
    ],
)
def test_an_injection_in_an_equation_is_refused_before_anything_runs(rhs, tmp_path):
    with pytest.raises(ValueError, match="not allowed|not one of the known functions|cannot read"):
        rg.equation_model(f"dv/dt = {rhs} + I : 1", inputs="I")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(threshold="v >= v_th", reset="v = 0"), "strictly above"),
        (dict(threshold="w > 1", reset="v = 0"), "v > expression"),
        (dict(threshold="v > v_th"), "both a threshold and a reset"),
        (dict(threshold="v > v_th", reset="w = 0"), "not a variable"),
        (dict(threshold="v > v_th", reset="v = v*0"), r"reads \[.v.\].*parameters alone"),
        (dict(threshold="v > v_th", reset="v -= 1"), "sets v with '='"),
        (dict(inputs="J"), r"no equation \(or on_input jump\) reads the inputs"),
        (dict(inputs=()), "at least one variable"),
        (dict(output="v*2"), "output must be a variable"),
        (dict(method="heun"), "unknown method"),
        (dict(namespace={"nope": 1.0}), "not parameters of the equations"),
    ],
)
def test_bad_model_definitions_are_refused_by_name(kwargs, match):
    kwargs = {"inputs": "I", **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        rg.equation_model("dv/dt = (v_rest - v + I)/tau : 1", **kwargs)


def test_reserved_and_unknown_names_and_flags():
    with pytest.raises(ValueError, match="reserved"):
        rg.equation_model("dv/dt = -v/tau + xi/tau + I : 1", inputs="I")
    with pytest.raises(ValueError, match="reserved"):
        rg.equation_model("dv/dt = -v/tau + I + t : 1", inputs="I")
    with pytest.raises(ValueError, match="reserved"):
        rg.equation_model("dv/dt = -v/_tau + I : 1", inputs="I")
    with pytest.raises(ValueError, match="unknown flag"):
        rg.Equations("dv/dt = -v/tau : 1 (event-driven)")
    with pytest.raises(ValueError, match="goes with a parameter line"):
        rg.Equations("dv/dt = -v/tau : 1 (constant)")
    assert rg.Equations("dv/dt = -v/tau : 1\ntau : 1 (constant)")["tau"].flags == {"constant"}
    with pytest.raises(ValueError, match="defined twice"):
        rg.Equations("dv/dt = -v : 1\nv = 2 : 1")
    with pytest.raises(ValueError, match="defined below it"):
        rg.Equations("a = b : 1\nb = 2 : 1\ndv/dt = a : 1")
    with pytest.raises(ValueError, match="only v may be held"):
        rg.equation_model(
            ADEX_EQ.replace("tau_w : 1", "tau_w : 1 (unless refractory)"),
            inputs="I",
            threshold="v > v_peak",
            reset="v = v_reset",
        )
    Lif = CASES["lif"].model
    plain = rg.equation_model(
        LIF_EQ.replace("(unless refractory)", ""),
        inputs="I",
        threshold="v > v_th",
        reset="v = v_reset",
    )
    with pytest.raises(ValueError, match=r"flag its equation '\(unless refractory\)'"):
        plain(2, **LIF_P, refractory=1.0)
    with pytest.raises(TypeError, match=r"missing parameter value\(s\) \['tau_m'"):
        Lif(2, **{k: v for k, v in LIF_P.items() if k != "tau_m"})
    with pytest.raises(TypeError, match=r"unknown keyword argument\(s\) \['tau'\]"):
        Lif(2, **LIF_P, tau=1.0)


def test_brian2_renames_namespace_defaults_and_reset_expressions():
    """``Equations(text, vm='v')``, parameters from ``namespace=``, a threshold and reset
    given as expressions of parameters and units, and a jump by ``-=``."""
    eqs = rg.Equations("dvm/dt = (E_L - vm + R*I)/tau : volt (unless refractory)\nI : amp", vm="v")
    assert eqs.diff_names == ("v",) and "(E_L - v + R*I)" in eqs.text
    M = rg.equation_model(
        str(eqs) + "\ndw/dt = -w/tau : amp",
        inputs="I",
        threshold="v > E_L + 15*mV",
        reset="v = E_L - 5*mV; w -= 0.5*nA",
        namespace=dict(E_L=-70 * mV, R=10 * Mohm, tau=10 * ms),
        refractory=1 * ms,
    )
    node = M(1, tau=20 * ms, init={"v": -70 * mV})
    assert float(node.threshold) == pytest.approx(-0.055) and float(node.tau) == 0.02
    assert float(node.v_reset) == pytest.approx(-0.075) and float(node.jump_w) == -0.5e-9
    net = rg.Network(dt=0.1 * ms, dtype=F64)
    net.add_node("n", node)
    net.input_node = net.output_node = "n"
    rec = net.run(torch.full((300, 1), 2e-9, dtype=F64), record=["n", "n.v", "n.w"])
    k = int(torch.nonzero(rec["n"][:, 0])[0])
    assert rec["n.v"][k, 0] == pytest.approx(-0.075) and rec["n.w"][k, 0] == pytest.approx(
        -0.5e-9 * 1.0, rel=1e-12
    )
    # the closed form of the first threshold crossing: v(t) = E_L + R I (1 - exp(-t/tau))
    import math

    t_star = -0.02 * math.log(1 - 0.015 / 0.02)
    assert k == math.ceil(t_star / 1e-4 - 1e-9) - 1


# ---- training a model given only as equations -------------------------------------------


def _adex_network(model, seed=3):
    g = torch.Generator().manual_seed(seed)
    net = rg.Network(dt=0.5, dtype=F64)
    net.add_node("in", rg.FuncNode(3))
    c = CASES["adex"]
    init = {"init": c.init} if model is c.model else {}
    net.add_node("adex", model(12, **c.params, train=("tau_w", "a"), **init))
    net.add_node("out", LeakyIntegrator(2, tau=10.0, activation="identity"))
    net.add_edge(
        "in", "adex", weights=1000.0 * torch.rand(12, 3, generator=g, dtype=F64), train="gd"
    )
    net.add_edge("adex", "out", weights=torch.randn(2, 12, generator=g, dtype=F64), train="gd")
    net.input_node, net.output_node = "in", "out"
    return net


def test_bptt_trains_an_adex_network_given_only_as_equations_as_the_builtin():
    """Adam on the weights and on AdEx's tau_w and a (surrogate gradients through the
    spikes), towards the output of a teacher network with other weights: the loss falls
    tenfold, and the loss curves of the equation model and of the built-in are the same."""
    t = torch.arange(200, dtype=F64) * 0.5
    x = (1.5 + torch.stack([torch.sin(t / 8), torch.cos(t / 11), torch.sin(t / 5)], -1))[None]
    with torch.no_grad():
        target = _adex_network(AdEx, seed=11).forward(x)
    curves, params = [], []
    for model in (AdEx, CASES["adex"].model):
        net = _adex_network(model)
        opt = torch.optim.Adam(net.parameters(), lr=0.02)
        losses = []
        for _ in range(30):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(net.forward(x), target)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        curves.append(torch.tensor(losses, dtype=F64))
        params.append({k: p.detach() for k, p in net.named_parameters()})
    assert curves[1][-1] < 0.1 * curves[1][0]  # it learns
    torch.testing.assert_close(curves[1], curves[0], rtol=1e-9, atol=0.0)
    assert params[1].keys() == params[0].keys() and len(params[0]) == 4
    for k, p in params[0].items():
        torch.testing.assert_close(params[1][k], p, rtol=1e-9, atol=1e-12, msg=k)


def test_an_equation_model_pickles_and_copies_with_its_class_rebuilt_from_its_arguments():
    import copy
    import pickle
    import subprocess
    import sys

    eq = IAFEq(3, **_iaf_units(), refractory=2 * ms, train=["tau_mem"], init={"v": -65 * mV})
    net = rg.Network(dt=0.1 * ms, dtype=F64)
    net.add_node("n", eq)
    net.input_node = net.output_node = "n"
    x = 1e-9 + 1.5e-9 * torch.rand(2, 400, 3, generator=torch.Generator().manual_seed(2), dtype=F64)
    y = net.forward(x)
    assert y.sum() > 5
    for other in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        node = other.graph.nodes["n"]["node"]
        assert type(node) is IAFEq and isinstance(node.tau_mem, torch.nn.Parameter)
        assert torch.equal(other.forward(x), y)
    # a new process has no such class: it is built again from the pickled arguments
    code = (
        "import pickle, sys, torch; net = pickle.loads(sys.stdin.buffer.read()); "
        "node = net.graph.nodes['n']['node']; "
        "print(type(node).__name__, float(node.tau_mem), node.uses_units)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], input=pickle.dumps(net), capture_output=True, check=True
    )
    assert done.stdout.decode().split() == ["IAFEq", "0.02", "True"]
