"""``rnngraph.compat.pyrates`` (PyRates templates read by rnngraph) and
``rnngraph.compat.rectipy`` (RectiPy 0.12's interface) without RectiPy: the equation
language refuses anything but arithmetic, a template model equals forward Euler of its
equations written out in numpy, RectiPy's semantics (output timing, recording windows,
weight orientation, reset to zero, the ridge formula) hold as stated, every refusal names
its call and changes nothing, and the facade's methods take the arguments RectiPy's API
page documents (the seed document). RectiPy itself: ``test_peer_rectipy_scripts.py``."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import rnngraph as rg
from rnngraph.compat import pyrates, rectipy
from rnngraph.equations._expr import parse_equation, parse_expression

TEMPLATES = Path(__file__).with_name("rectipy_scripts") / "templates"
LI = "neuron_model_templates.rate_neurons.leaky_integrator.tanh"
QIF = "neuron_model_templates.spiking_neurons.qif.qif"
SEED = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "004_3ff5077c1a4e9f11.txt"
F64 = torch.float64


# ---- the equation language -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "v.real",
        "(lambda: 1)()",
        "a if b else c",
        "v > 0",
        "open('x')",
        "exp(v, 2)",
        "exp(x=v)",
        "v[0]",
        "'text'",
        "",
    ],
)
def test_an_expression_outside_the_arithmetic_language_is_refused(text: str):
    with pytest.raises(ValueError, match=r"where: "):
        parse_expression("where", text)


def test_an_expression_computes_its_arithmetic_with_caret_as_power():
    e = parse_expression("w", "-(v^2 + 3*v)/tau + exp(-v) - tanh(0.5)")
    v = torch.tensor([0.5, -1.0, 2.0], dtype=F64)
    expected = -(v**2 + 3 * v) / 4.0 + torch.exp(-v) - np.tanh(0.5)
    torch.testing.assert_close(e.evaluate({"v": v, "tau": 4.0}), expected, rtol=0, atol=1e-15)
    assert e.names == {"v", "tau"}


@pytest.mark.parametrize(
    "text, target, derivative",
    [("v' = -v", "v", True), ("d/dt * x = 1 - x", "x", True), ("r = tanh(v)", "r", False)],
)
def test_an_equation_is_a_derivative_or_an_algebraic_variable(text, target, derivative):
    eq = parse_equation("w", text)
    assert (eq.target, eq.derivative) == (target, derivative)


@pytest.mark.parametrize("text", ["v'' = -v", "2*v' = 1", "v' = 1 = 2", "v' == 1", "v'"])
def test_an_equation_of_another_form_is_refused(text: str):
    with pytest.raises(ValueError, match="w: "):
        parse_equation("w", text)


# ---- template models against forward Euler written out ------------------------------------


def test_a_template_population_equals_forward_euler_of_its_equations():
    """The user template's adapting population (two operators, a derivative written
    ``d/dt * v``, an algebraic rate read by the coupling) on rnngraph's own Network,
    against its equations stepped in numpy."""
    model = pyrates.template_model(
        f"{TEMPLATES}/populations/exc", "v", coupling=pyrates.Coupling("r", "r_in")
    )
    n, dt, T = 7, 0.05, 300
    g = np.random.default_rng(0)
    W, drive = g.normal(0, 0.6, (n, n)), g.normal(0, 1, (T, n))
    tau = g.uniform(1.5, 3.0, n)
    net = rg.Network(dt=dt, dtype=F64)
    net.add_func_node("in", n)
    net.add_diffeq_node("exc", model(n, weights=W, tau=tau))
    net.add_edge("in", "exc", np.eye(n), target_var="I_ext")
    rec = net.run(drive, record=["exc.v", "exc.a"])
    v, a = np.full(n, 0.1), np.zeros(n)  # output(0.1), variable(0.0)
    vs, as_ = [], []
    for t in range(T):
        r = 2.0 / (1 + np.exp(-3.0 * (v - 0.5)))
        dv = (-v + 1.5 * (W @ r) + drive[t] - a) / tau
        da = (-a + 0.7 * np.tanh(v) ** 2) / 8.0
        v, a = v + dt * dv, a + dt * da
        vs.append(v)
        as_.append(a)
    np.testing.assert_allclose(rec["exc.v"].numpy(), np.array(vs), rtol=0, atol=1e-12)
    np.testing.assert_allclose(rec["exc.a"].numpy(), np.array(as_), rtol=0, atol=1e-12)


def test_a_derived_operator_replaces_whole_terms_and_adds_equations():
    t = pyrates.read_template("neuron_model_templates.spiking_neurons.qif.qif_sfa")
    (op,) = t.operators
    assert op.equations[0].replace(" ", "") == "v'=(v^2+eta-x+I_ext)/tau+k*s_in"
    assert op.equations[-1] == "x' = -x/tau_x + alpha*spike"
    assert op.variables["x"] == pyrates.Variable("state", 0.0)
    assert op.variables["tau_s"] == pyrates.Variable("constant", 1.0)


@pytest.mark.parametrize(
    "yaml, match",
    [
        ("op: {base: OperatorTemplate, equations: \"v' = -v + I\", variables: {v: output(0.0), "
         "I: input(1.0)}}\nn: {base: NodeTemplate, operators: [op]}", "has the default 1.0"),
        ("op: {base: OperatorTemplate, equations: \"v' = -v + q + I\", variables: "
         "{v: output(0.0), I: input(0.0)}}\nn: {base: NodeTemplate, operators: [op]}",
         r"reads \['q'\]"),
        ("op: {base: OperatorTemplate, equations: \"v' = -v\", variables: {v: 1.0, "
         "I: input(0.0)}}\nn: {base: NodeTemplate, operators: [op]}", "does not declare"),
        ("op: {base: OperatorTemplate, equations: \"r = 2*v\", variables: {r: output(0.0), "
         "v: input(0.0)}}\nn: {base: NodeTemplate, operators: [op]}", "no differential"),
        ("n: {base: CircuitTemplate}", "expected a NodeTemplate"),
    ],
)  # fmt: skip
def test_a_template_rnngraph_cannot_read_as_written_is_refused(tmp_path, yaml, match):
    (tmp_path / "m.yaml").write_text(yaml)
    with pytest.raises(ValueError, match=match):
        pyrates.template_model(f"{tmp_path}/m/n")


def test_a_missing_template_file_names_where_it_was_looked_for(tmp_path):
    with pytest.raises(FileNotFoundError, match="no template file for"):
        pyrates.read_template(f"{tmp_path}/nothing/here")


# ---- RectiPy's semantics, as stated -------------------------------------------------------


def li_network(n: int = 5, seed: int = 0, **kwargs) -> tuple[rectipy.Network, np.ndarray]:
    g = np.random.default_rng(seed)
    W = g.normal(0, 1.0, (n, n))
    net = rectipy.Network(dt=0.1)
    net.add_diffeq_node(
        "rnn", LI, weights=W, source_var="tanh_op/r", target_var="li_op/r_in",
        input_var="li_op/I_ext", output_var="li_op/v",
        node_vars={"all/li_op/v": g.normal(0, 1, n), "all/li_op/tau": 2.0}, **kwargs,
    )  # fmt: skip
    return net, W


def test_a_node_emits_its_output_as_it_was_when_the_step_began():
    net, W = li_network()
    v0 = net.get_var("rnn", "v").clone()
    x = np.random.default_rng(1).normal(0, 1, (40, 1))
    obs = net.run(x, record_vars=[("rnn", "v", False)], verbose=False)
    out, v = obs.to_numpy("out"), obs.to_numpy(("rnn", "v"))
    np.testing.assert_array_equal(out[0], v0.numpy())
    np.testing.assert_array_equal(out[1:], v[:-1])
    # the coupling reads tanh of the state the step starts from, from step 0 on
    expected = v0.numpy() + 0.1 * (-v0.numpy() / 2.0 + W @ np.tanh(v0.numpy()) + x[0])
    np.testing.assert_allclose(v[0], expected, rtol=0, atol=1e-14)


def test_run_records_each_window_mean_from_cutoff_on():
    net, _ = li_network()
    start = net.state
    x = np.random.default_rng(2).normal(0, 1, (50, 1))
    every = net.run(x, verbose=False).to_numpy("out")
    net.reset(start)
    obs = net.run(x, sampling_steps=4, cutoff=3, verbose=False)
    steps = [s for s in range(3, 50) if s % 4 == 0]
    assert obs["steps"] == steps
    bounds = [3] + [s + 1 for s in steps[:-1]]
    expected = [every[a : s + 1].mean(0) for a, s in zip(bounds, steps, strict=True)]
    np.testing.assert_allclose(obs.to_numpy("out"), np.array(expected), rtol=0, atol=1e-15)


def test_edge_weights_of_shape_source_by_target_are_transposed_and_square_ones_always():
    net, _ = li_network(n=3)
    net.add_func_node("out", 3, "identity")
    A = np.arange(9.0).reshape(3, 3)
    net.add_edge("rnn", "out", weights=A)
    v0 = net.get_var("rnn", "v").numpy()
    out = net.run(np.zeros((1, 1)), verbose=False).to_numpy("out")[0]
    np.testing.assert_allclose(out, A.T @ v0, rtol=0, atol=1e-14)  # RectiPy's orientation
    net2, _ = li_network(n=3)
    net2.add_func_node("out", 2, "identity")
    B = np.arange(6.0).reshape(2, 3)  # (target, source): as given
    net2.add_edge("rnn", "out", weights=B)
    out2 = net2.run(np.zeros((1, 1)), verbose=False).to_numpy("out")[0]
    np.testing.assert_allclose(out2, B @ v0, rtol=0, atol=1e-14)


def test_reset_sets_every_state_variable_to_zero():
    net = rectipy.Network(dt=1e-3)
    net.add_diffeq_node(
        "qif", QIF, weights=np.ones((4, 4)), source_var="s", target_var="s_in",
        input_var="I_ext", output_var="s", spike_var="spike", reset_var="v", op="qif_op",
    )  # fmt: skip
    assert net.get_var("qif", "v").tolist() == [-2.0] * 4  # the template's v(0)
    net.run(np.ones((20, 4)), verbose=False)
    net.reset()
    assert net.get_var("qif", "v").tolist() == [0.0] * 4  # RectiPy's reset: zeros
    assert net.get_var("qif", "s").tolist() == [0.0] * 4


def test_fit_ridge_solves_rectipys_normal_equations_with_a_float32_alpha():
    net, _ = li_network(n=6)
    g = np.random.default_rng(3)
    x, y = g.normal(0, 1, (80, 1)), g.normal(0, 1, (80, 2))
    start = net.state
    X = net.run(x, verbose=False).to_numpy("out")
    net.reset(start)
    obs = net.fit_ridge(x, y, sampling_steps=1, alpha=1e-3, verbose=False)
    alpha = float(np.float32(1e-3))  # torch.eye's default dtype times alpha
    w = np.linalg.solve(X.T @ X + alpha * np.eye(6), X.T @ y)
    np.testing.assert_allclose(obs.to_numpy("w_out"), w, rtol=1e-9, atol=0)
    assert "readout" in net.nodes  # add_readout_node=True
    np.testing.assert_allclose(net.get_edge("rnn", "readout").weights.numpy(), w.T, rtol=1e-9)


def test_fit_rls_with_beta_one_is_recursive_least_squares():
    """RectiPy's RLS step with beta = 1 against the textbook recursion
    k = P x / (1 + x'P x), W += (y - W x) k', P -= k x'P."""
    net, _ = li_network(n=4)
    net.add_func_node("out", 1, "identity")
    net.add_edge("rnn", "out", weights=np.zeros((1, 4)), train="rls", alpha=2.0)
    g = np.random.default_rng(4)
    x, y = g.normal(0, 1, (30, 1)), g.normal(0, 1, (30, 1))
    start = net.state
    net.fit_rls(x, y, update_steps=1, sampling_steps=1, verbose=False)
    W_ours = net.get_edge("rnn", "out").weights.numpy().copy()
    net.reset(start)
    net.get_edge("rnn", "out").weights.zero_()
    states = net.run(x, verbose=False, record_vars=[("rnn", "v", False)])
    v_before = np.vstack([start["rnn"]["v"].numpy(), states.to_numpy(("rnn", "v"))[:-1]])
    W, P = np.zeros((1, 4)), 2.0 * np.eye(4)
    for t in range(30):
        u = v_before[t]  # what the edge read at step t (the node's output then)
        k = P @ u / (1 + u @ P @ u)
        W = W + np.outer(y[t] - W @ u, k)
        P = P - np.outer(k, u @ P)
    np.testing.assert_allclose(W_ours, W, rtol=1e-10, atol=1e-12)


# ---- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"float_precision": "float32"}, "computes|integrates its nodes in float64"),
        ({"solver": "heun"}, r"keyword\(s\) \['solver'\]"),
        ({"output_var": "tanh_op/r"}, "algebraic variable"),
        ({"node_vars": {"all/li_op/nope": 1.0}}, "has no variable"),
        ({"node_vars": {"all/li_op/I_ext": 1.0}}, "an input cannot be set"),
        ({"spike_var": "li_op/I_ext"}, "reset_var"),
        ({"spike_threshold": 3.0}, "need a spiking node"),
        ({"train_params": ["li_op/v"]}, "train"),
        ({"input_var": "li_op/tau"}, "not an input"),
    ],
)
def test_add_diffeq_node_refuses_what_it_does_not_reproduce_and_adds_nothing(kwargs, match):
    net = rectipy.Network(dt=0.1)
    args = dict(
        weights=np.eye(3), source_var="tanh_op/r", target_var="li_op/r_in",
        input_var="li_op/I_ext", output_var="li_op/v",
    )  # fmt: skip
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        net.add_diffeq_node("rnn", LI, **args)
    assert len(net) == 0 and net.state == {}


def test_the_facade_refuses_by_name_and_keeps_its_state():
    net, _ = li_network()
    net.add_func_node("out", 2, "identity")
    with pytest.raises(ValueError, match="train must be"):
        net.add_edge("rnn", "out", train="hebb")
    with pytest.raises(ValueError, match="float64"):
        net.add_edge("rnn", "out", dtype=torch.float32)
    with pytest.raises(TypeError, match="delays"):
        net.add_edge("rnn", "out", delays=np.ones(5, dtype=int))
    with pytest.raises(ValueError, match=r"must be \(2, 5\)"):
        net.add_edge("rnn", "out", weights=np.ones((4, 4)))
    assert not net.graph.has_edge("rnn", "out")
    net.add_edge("rnn", "out", weights=np.ones((2, 5)))
    before = {k: v.clone() for k, v in net.state["rnn"].items()}
    with pytest.raises(ValueError, match="T x m"):
        net.run(np.zeros((2, 3, 1)))
    with pytest.raises(ValueError, match="records"):
        net.fit_ridge(np.zeros((10, 1)), np.zeros((10, 2)), sampling_steps=3, verbose=False)
    with pytest.raises(ValueError, match="record_vars is not reproduced"):
        net.fit_bptt(np.zeros((10, 1)), np.zeros((10, 2)), record_vars=[("rnn", "v", 0)])
    with pytest.raises(ValueError, match="detach_params"):
        net.detach(detach_params=True)
    with pytest.raises(TypeError, match="not reproduced"):
        net.add_node("x", object(), "diff_eq")
    with pytest.raises(NotImplementedError, match="RectiPy 0.12 does not implement"):
        net.fit_eprop(np.zeros((10, 1)), np.zeros((10, 2)))
    for k, v in net.state["rnn"].items():
        assert torch.equal(v, before[k]), k


def test_a_spiking_nodes_state_is_not_set_by_set_var():
    net = rectipy.Network(dt=1e-3)
    net.add_diffeq_node(
        "qif", QIF, weights=np.ones((3, 3)), source_var="s", target_var="s_in",
        input_var="I_ext", output_var="s", spike_var="spike", reset_var="v", op="qif_op",
    )  # fmt: skip
    with pytest.raises(ValueError, match="drop a state value"):
        net.set_var("qif", "v", 1.0)
    net.set_var("qif", "eta", 2.5)  # a constant is set
    assert net.get_var("qif", "eta").tolist() == [2.5] * 3


# ---- RectiPy's documented signatures --------------------------------------------------------


def _documented_methods(text: str, cls: str) -> dict[str, list[str]]:
    """Method name -> parameter names, from the section of class ``cls`` of the API page."""
    start = text.index(f"class rectipy.network.{cls}(")
    later = [i for i in (text.find("class rectipy.network.", start + 1),) if i > 0]
    section = text[start : later[0] if later else None]
    out = {}
    for line in section.splitlines():
        m = re.match(r"^([a-z_]+)\((.*)\)", line)
        if m is None:
            continue
        depth, names, part = 0, [], ""
        for ch in m.group(2) + ",":
            depth += ch in "([<" and 1 or (ch in ")]>" and -1 or 0)
            if ch == "," and depth == 0:
                names.append(re.split(r"[:=]", part)[0].strip().lstrip("*"))
                part = ""
            else:
                part += ch
        out[m.group(1)] = [n for n in names if n]
    return out


@pytest.mark.skipif(not SEED.exists(), reason="the seed documents (../shared/seeds) are absent")
@pytest.mark.parametrize("cls, least", [("Network", 20), ("FeedbackNetwork", 5)])
def test_every_documented_network_method_takes_rectipys_arguments(cls: str, least: int):
    documented = _documented_methods(SEED.read_text(), cls)
    assert len(documented) >= least
    for name, params in documented.items():
        method = getattr(getattr(rectipy, cls), name, None)
        assert method is not None, f"{cls}.{name} is missing"
        ours = [p for p in inspect.signature(method).parameters if p != "self"]
        assert ours == params, f"{cls}.{name}: {ours} != {params}"


def test_reset_checks_every_value_before_it_changes_anything():
    net = rectipy.Network(dt=0.1)
    for label in ("a", "b"):
        net.add_diffeq_node(
            label, LI, weights=np.eye(3), source_var="tanh_op/r", target_var="li_op/r_in",
            input_var="li_op/I_ext", output_var="li_op/v",
        )  # fmt: skip
    net.add_edge("a", "b", weights=np.eye(3))
    net.run(np.ones((5, 1)), verbose=False)
    before = net.state
    with pytest.raises(ValueError, match=r"Network.reset: b.v takes a scalar or 3 values"):
        net.reset({"a": {"v": 7.0}, "b": {"v": np.zeros(2)}})
    with pytest.raises(ValueError, match="no state variable"):
        net.reset({"a": {"li_op/tau": 1.0}})
    for node, values in net.state.items():
        for var, v in values.items():
            assert torch.equal(v, before[node][var]), (node, var)
    net.reset({"a": {"li_op/v": 5.0}})  # RectiPy's op/var name
    assert net.get_var("a", "v").tolist() == [5.0] * 3
    assert net.get_var("b", "v").tolist() == [0.0] * 3


def test_fit_rls_checks_the_targets_before_it_runs():
    net, _ = li_network(n=4)
    net.add_func_node("out", 1, "identity")
    net.add_edge("rnn", "out", train="rls")
    assert net.get_edge("rnn", "out").weights.abs().sum() == 0  # RectiPy's RLS: zeros
    before = net.state
    with pytest.raises(ValueError, match=r"targets must be T x 1"):
        net.fit_rls(np.zeros((10, 1)), np.zeros((10, 2)), verbose=False)
    assert all(torch.equal(v, before["rnn"][k]) for k, v in net.state["rnn"].items())


def test_combinations_rectipy_cannot_run_are_refused():
    net, _ = li_network(n=3)
    net.add_func_node("a", 3, "identity")
    net.add_func_node("b", 3, "identity")
    net.add_edge("rnn", "a")
    net.add_edge("rnn", "b")
    net.add_func_node("out", 3, "identity")
    net.add_edge("a", "out")
    net.add_edge("b", "out")
    with pytest.raises(ValueError, match="one input edge per node"):
        net.run(np.zeros((3, 1)), verbose=False)
    with pytest.raises(TypeError, match="RLS edge takes no mask"):
        net.add_edge("out", "rnn", train="rls", mask=np.ones((3, 3)))
    with pytest.raises(ValueError, match="same input"):
        rectipy.Network(0.1).add_diffeq_node(
            "x", LI, weights=np.eye(2), source_var="tanh_op/r", target_var="li_op/I_ext",
            input_var="li_op/I_ext", output_var="li_op/v",
        )  # fmt: skip


def test_a_template_constant_named_as_a_model_argument_is_refused(tmp_path):
    (tmp_path / "m.yaml").write_text(
        'op: {base: OperatorTemplate, equations: "v\' = -v/dt + I", variables: '
        "{v: output(0.0), dt: 2.0, I: input(0.0)}}\nn: {base: NodeTemplate, operators: [op]}"
    )
    with pytest.raises(ValueError, match=r"constant\(s\) \['dt'\] clash"):
        pyrates.template_model(f"{tmp_path}/m/n")


@pytest.mark.parametrize(
    "text, match",
    [("10**400", "gives"), ("1/0", "gives"), ("+".join(["v"] * 5000), "nested too deeply")],
)
def test_an_expression_that_cannot_be_computed_is_refused_when_read(text, match):
    with pytest.raises(ValueError, match=match):
        parse_expression("w", text)


def test_a_feedback_edge_reads_the_later_populations_state_of_the_step_before():
    """FeedbackNetwork: b (after a in the forward pass) feeds a back what it held after
    the previous step; at step 0, its initial state."""
    net = rectipy.FeedbackNetwork(dt=0.1)
    for label, n in (("a", 3), ("b", 2)):
        net.add_diffeq_node(
            label, LI, weights=np.zeros((n, n)), source_var="tanh_op/r",
            target_var="li_op/r_in", input_var="li_op/I_ext", output_var="li_op/v",
            node_vars={"all/li_op/v": np.arange(n) + 1.0, "all/li_op/tau": 1.0},
        )  # fmt: skip
    F = np.arange(6.0).reshape(3, 2)
    net.add_edge("a", "b", weights=np.ones((2, 3)))
    net.add_edge("b", "a", weights=F, feedback=True)
    obs = net.run(np.zeros((3, 1)), record_vars=[("a", "v", False), ("b", "v", False)],
                  verbose=False)  # fmt: skip
    a, b = obs.to_numpy(("a", "v")), obs.to_numpy(("b", "v"))
    a0, b0 = np.arange(3) + 1.0, np.arange(2) + 1.0
    np.testing.assert_allclose(a[0], a0 + 0.1 * (-a0 + F @ b0), rtol=0, atol=1e-15)
    np.testing.assert_allclose(a[1], a[0] + 0.1 * (-a[0] + F @ b[0]), rtol=0, atol=1e-15)


def test_feedback_edges_rectipy_cannot_run_are_refused():
    net = rectipy.FeedbackNetwork(dt=0.1)
    net.add_func_node("inp", 3, "identity")
    net.add_diffeq_node(
        "a", LI, weights=np.zeros((3, 3)), source_var="tanh_op/r", target_var="li_op/r_in",
        input_var="li_op/I_ext", output_var="li_op/v",
    )  # fmt: skip
    net.add_edge("inp", "a")
    with pytest.raises(ValueError, match="function node's"):
        net.add_edge("inp", "a", feedback=True)
    with pytest.raises(ValueError, match="RLS training of a feedback edge"):
        net.add_edge("a", "a", feedback=True, train="rls")
    assert net.graph.number_of_edges() == 1


def test_a_node_added_under_a_used_label_forgets_the_old_nodes_shown_state():
    """A spiking node shows its pre-step state; a rate node replacing it shows its own."""
    net = rectipy.Network(dt=1e-3)
    net.add_diffeq_node(
        "q", QIF, weights=np.ones((3, 3)), source_var="s", target_var="s_in",
        input_var="I_ext", output_var="s", spike_var="spike", reset_var="v", op="qif_op",
    )  # fmt: skip
    net.run(np.ones((20, 3)), verbose=False)
    net.pop_node("q")
    net.add_diffeq_node(
        "q", LI, weights=np.eye(3), source_var="tanh_op/r", target_var="li_op/r_in",
        input_var="li_op/I_ext", output_var="li_op/v", node_vars={"all/li_op/v": [1, 2, 3]},
    )  # fmt: skip
    assert net.get_var("q", "v").tolist() == [1.0, 2.0, 3.0]
    assert net.state["q"]["v"].tolist() == [1.0, 2.0, 3.0]


def test_fit_rls_prints_rectipys_progress_where_verbose(capsys):
    net, _ = li_network(n=3)
    net.add_func_node("out", 1, "identity")
    net.add_edge("rnn", "out", train="rls")
    x, y = np.zeros((6, 1)), np.ones((6, 1))
    net.fit_rls(x, y, sampling_steps=3, verbose=False)
    assert capsys.readouterr().out == ""
    net.fit_rls(x, y, sampling_steps=3, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" training")[0] for line in lines] == ["Progress: 0/6", "Progress: 3/6"]
