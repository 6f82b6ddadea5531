r"""PyRates' YAML templates, read by rnngraph itself (PyYAML; PyRates is not needed).

A *node template* lists *operators*; each operator holds equations and its variables::

    li_op:                                  # an operator
      base: OperatorTemplate
      equations: "v' = -v/tau + k*r_in + I_ext"
      variables: {v: output(0.0), tau: 10.0, k: 1.0, r_in: input(0.0), I_ext: input(0.0)}
    tanh_op:
      base: OperatorTemplate
      equations: "r = tanh(v)"
      variables: {r: output(0.0), v: input(0.0)}
    rate:                                   # a node template
      base: NodeTemplate
      operators: [li_op, tanh_op]

Read as PyRates reads it: ``x' = f`` or ``d/dt * x = f`` is a differential equation (forward
Euler in RectiPy), ``r = g`` an algebraic variable recomputed from the state at every
evaluation; ``output(x0)`` and ``variable(x0)`` declare a variable and its initial value,
``input(0.0)`` an input (another operator's variable of the same name, else what edges and
the external input bring), a number a constant (a parameter of the model). An operator whose
``base`` is another operator inherits its equations and variables, changed by
``equations: {replace: {old: new}, add: [...], remove: [...]}`` and updated ``variables``.
Variables named in no equation are dropped, as PyRates drops them.

A template path is PyRates': ``package.module.file.template`` (``file.yaml`` found in the
directory of that dotted path under the working directory or ``sys.path``; no module is
imported; RectiPy's own ``neuron_model_templates`` ship with rnngraph, found last) or
``path/to/file/template`` (relative to the working directory, or absolute).

:func:`template_model` turns a node template into a :class:`~rnngraph.nodes.DENode` class:
its state variables are the differential equations' variables, its inputs the unconnected
``input`` variables, its parameters the constants (by name, each a scalar or one value per
unit), so it batches, runs on any device and trains like a built-in model. A variable two
operators both define stays apart as ``<operator>__<name>``.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..equations._expr import Equation, parse_equation
from ..nodes import DENode

__all__ = [
    "Coupling",
    "NodeTemplate",
    "Operator",
    "SpikeRule",
    "TemplateModel",
    "Variable",
    "read_template",
    "template_model",
]

#: rnngraph's copies of RectiPy's own templates (``neuron_model_templates.*``), found after
#: any file of the same path on ``sys.path``
BUNDLED = Path(__file__).with_name("templates")
_KINDS = {"output": "state", "variable": "state", "state_var": "state", "input": "input"}
_DECLARED = re.compile(r"\s*(output|variable|state_var|input)\s*(?:\((.*)\))?\s*")
_NAME = re.compile(r"[A-Za-z_]\w*")


@dataclass(frozen=True)
class Variable:
    """A template variable: ``kind`` is ``"state"`` (``output``/``variable``: a variable an
    equation defines), ``"input"`` or ``"constant"``; ``value`` its default or initial value."""

    kind: str
    value: float
    output: bool = False  # declared ``output(...)``


@dataclass(frozen=True)
class Operator:
    """An operator: its name, equations (as text) and variables."""

    name: str
    equations: tuple[str, ...]
    variables: Mapping[str, Variable]


@dataclass(frozen=True)
class NodeTemplate:
    """A node template: its path and operators, in the template's order."""

    path: str
    operators: tuple[Operator, ...]


# ---- reading ----------------------------------------------------------------------------


def _load_yaml(where: str, file: Path) -> dict:
    try:
        import yaml
    except ImportError:  # pragma: no cover - the extra is part of the test setup
        raise ImportError(
            f"{where}: reading a YAML template needs PyYAML: pip install 'rnngraph[rectipy]'"
        ) from None
    try:
        doc = yaml.safe_load(file.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"{where}: {file} is not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{where}: {file} holds no templates (expected a mapping of names)")
    return doc


def _locate(where: str, path: str) -> tuple[Path, str]:
    """The YAML file and template name of a template path (see the module docstring)."""
    if not isinstance(path, str) or not path:
        raise TypeError(f"{where}: expected a template path as a string, got {path!r}")
    if "/" in path or "\\" in path:
        directory, name = path.replace("\\", "/").rsplit("/", 1)
        stems = [Path(directory).expanduser()]
    elif "." in path:
        *parts, name = path.split(".")
        roots = [*sys.path, str(BUNDLED)]  # PyRates' search, then RectiPy's templates
        stems = [Path(p or ".").joinpath(*parts) for p in roots]
    else:
        raise ValueError(
            f"{where}: {path!r} is not a template path ('package.file.template' or "
            f"'path/to/file/template')"
        )
    for stem in stems:
        for ext in (".yaml", ".yml"):
            file = stem.with_name(stem.name + ext)
            if file.is_file():
                return file, name
    raise FileNotFoundError(
        f"{where}: no template file for {path!r} (looked for {stems[0]}.yaml"
        f"{' on sys.path' if len(stems) > 1 else ''})"
    )


def _variable(where: str, name: str, spec: Any) -> Variable:
    if isinstance(spec, bool) or not isinstance(spec, int | float | str):
        raise ValueError(f"{where}: variable {name!r}: cannot read {spec!r}")
    if isinstance(spec, int | float):
        return Variable("constant", float(spec))
    m = _DECLARED.fullmatch(spec)
    if m is None:
        try:
            return Variable("constant", float(spec))
        except ValueError:
            raise ValueError(
                f"{where}: variable {name!r}: {spec!r} is none of a number, output(x), "
                f"variable(x), input(x)"
            ) from None
    kind, value = _KINDS[m.group(1)], (m.group(2) or "").strip()
    output = m.group(1) == "output"
    if value in ("", "float"):
        return Variable(kind, 0.0, output)
    try:
        return Variable(kind, float(value), output)
    except ValueError:
        raise ValueError(
            f"{where}: variable {name!r}: {spec!r}: only a number may stand in the "
            f"parentheses (vector-valued template variables: give per-unit values instead)"
        ) from None


def _replace(equation: str, old: str, new: str) -> str:
    """``old`` replaced by ``new`` in ``equation`` where it stands as a whole term."""
    head = r"(?<![\w.])" if re.match(r"\w", old) else ""
    tail = r"(?![\w])" if re.search(r"\w$", old) else ""
    return re.sub(head + re.escape(old) + tail, lambda _: new, equation)


def _equations(where: str, entry: dict, base: Operator | None) -> tuple[str, ...]:
    eqs = entry.get("equations")
    if eqs is None:
        if base is None:
            raise ValueError(f"{where}: the operator has no equations")
        return base.equations
    if isinstance(eqs, str):
        return (eqs,)
    if isinstance(eqs, list) and all(isinstance(e, str) for e in eqs):
        return tuple(eqs)
    if isinstance(eqs, dict) and base is not None:
        unknown = set(eqs) - {"replace", "remove", "add", "append", "prepend"}
        if unknown:
            raise ValueError(f"{where}: unknown equation updates {sorted(unknown)}")
        out = []
        for eq in base.equations:
            for old, new in dict(eqs.get("replace") or {}).items():
                eq = _replace(eq, str(old), str(new))
            removes = eqs.get("remove") or []
            for old in [removes] if isinstance(removes, str) else removes:
                eq = _replace(eq, str(old), "")
            if eqs.get("append"):
                eq = f"{eq} {eqs['append']}"
            if eqs.get("prepend"):
                eq = f"{eqs['prepend']} {eq}"
            out.append(eq)
        added = eqs.get("add") or []
        return tuple(out) + tuple([added] if isinstance(added, str) else added)
    raise ValueError(f"{where}: cannot read the equations {eqs!r}")


def _operator(where: str, file: Path, doc: dict, name: str, seen: tuple = ()) -> Operator:
    if "." in name or "/" in name:  # an operator of another file
        other, name = _locate(where, name)
        file, doc = other, _load_yaml(where, other)
    here = f"{where}: operator {name!r} ({file.name})"
    if name in seen:
        raise ValueError(f"{here}: its bases form a cycle {list(seen)}")
    entry = doc.get(name)
    if not isinstance(entry, dict):
        raise ValueError(f"{here}: not found (the file holds {sorted(doc)})")
    base_name = entry.get("base", "OperatorTemplate")
    base = None
    if base_name != "OperatorTemplate":
        base = _operator(where, file, doc, str(base_name), (*seen, name))
    equations = _equations(here, entry, base)
    variables = dict(base.variables) if base is not None else {}
    raw = entry.get("variables") or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{here}: 'variables' must be a mapping, got {raw!r}")
    variables.update({str(k): _variable(here, str(k), v) for k, v in raw.items()})
    used = {n for eq in equations for n in _NAME.findall(eq)}
    variables = {k: v for k, v in variables.items() if k in used}  # PyRates drops the rest
    return Operator(name, equations, variables)


def read_template(path: str, where: str = "read_template") -> NodeTemplate:
    """The node template at ``path`` (see the module docstring), its operators read."""
    file, name = _locate(where, path)
    doc = _load_yaml(where, file)
    entry = doc.get(name)
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: {path!r}: no template {name!r} in {file} ({sorted(doc)})")
    if entry.get("base") != "NodeTemplate":
        raise ValueError(
            f"{where}: {path!r} is a {entry.get('base', 'template without base')!r}; "
            f"expected a NodeTemplate (an operator is used through a node template)"
        )
    ops = entry.get("operators")
    if isinstance(ops, dict):
        if any(v for v in ops.values()):
            raise ValueError(
                f"{where}: {path!r}: operator updates inside a node template are not read; "
                f"give the changed values to the model instead"
            )
        ops = list(ops)
    if not isinstance(ops, list) or not ops:
        raise ValueError(f"{where}: {path!r}: 'operators' must list the operators")
    return NodeTemplate(path, tuple(_operator(where, file, doc, str(op)) for op in ops))


# ---- the model -------------------------------------------------------------------------


@dataclass(frozen=True)
class Structure:
    """A node template as a model reads it: every quantity by its key (its name, or
    ``<operator>__<name>`` where operators define the same name apart), ``alias`` from
    ``(operator, name)`` to the key; the state variables with their initial values and
    derivatives, the algebraic variables in the order they are computed, the inputs and the
    constants with their defaults."""

    path: str
    alias: Mapping[tuple[str, str], str]
    states: Mapping[str, float]
    derivatives: Mapping[str, Equation]
    algebraic: tuple[Equation, ...]
    inputs: tuple[str, ...]
    constants: Mapping[str, float]

    def key(self, where: str, name: str) -> str:
        """The key of ``name``: ``var``, ``op/var`` or ``all/op/var`` (RectiPy's forms)."""
        parts = name.split("/")[-2:]
        if len(parts) == 2:
            if tuple(parts) in self.alias:
                return self.alias[tuple(parts)]
        else:
            keys = {k for (_, v), k in self.alias.items() if v == parts[0]}
            if len(keys) == 1:
                return keys.pop()
            if len(keys) > 1:
                raise ValueError(
                    f"{where}: {name!r} is ambiguous in {self.path!r}: name its operator "
                    f"('op/var'): {sorted(f'{o}/{v}' for o, v in self.alias if v == parts[0])}"
                )
        raise ValueError(
            f"{where}: {self.path!r} has no variable {name!r}; its variables are "
            f"{sorted(f'{o}/{v}' for o, v in self.alias)}"
        )


def _keys(template: NodeTemplate) -> dict[tuple[str, str], str]:
    """Each operator variable's key. As PyRates links them, an input joins the variable of
    its name that one other operator declares ``output(...)``; any other input stays an
    input of its own. Names several operators define apart are qualified
    (``<operator>__<name>``), as is an input that shares its name with a variable it does
    not join."""
    defined: dict[str, list[str]] = {}
    outputs: dict[str, list[str]] = {}
    for op in template.operators:
        for name, var in op.variables.items():
            if var.kind != "input":
                defined.setdefault(name, []).append(op.name)
            if var.output:
                outputs.setdefault(name, []).append(op.name)

    def own(op: str, name: str) -> str:
        return name if len(defined.get(name, [])) <= 1 else f"{op}__{name}"

    alias = {}
    for op in template.operators:
        for name, var in op.variables.items():
            if var.kind != "input":
                alias[(op.name, name)] = own(op.name, name)
                continue
            owners = [o for o in outputs.get(name, []) if o != op.name]
            if len(owners) > 1:
                raise ValueError(
                    f"{template.path!r}: input {op.name}/{name} could be any of "
                    f"{[f'{o}/{name}' for o in owners]}"
                )
            if owners:
                alias[(op.name, name)] = own(owners[0], name)  # linked to that output
            else:
                alias[(op.name, name)] = f"{op.name}__{name}" if name in defined else name
    return alias


def _structure(template: NodeTemplate) -> Structure:
    where = f"template {template.path!r}"
    alias = _keys(template)
    states, derivatives, algebraic, inputs, constants = {}, {}, {}, [], {}
    for op in template.operators:
        local = {name: alias[(op.name, name)] for name in op.variables}
        for text in op.equations:
            eq = parse_equation(f"{where}, operator {op.name!r}", _rename(text, local))
            var = op.variables.get(_origin(local, eq.target))
            if var is None or var.kind != "state":
                raise ValueError(
                    f"{where}, operator {op.name!r}: {text!r} defines {eq.target!r}, which "
                    f"the operator does not declare as output(...) or variable(...)"
                )
            if eq.target in derivatives or eq.target in algebraic:
                raise ValueError(f"{where}: {eq.target!r} is defined twice")
            if eq.derivative:
                states[eq.target], derivatives[eq.target] = var.value, eq
            else:
                algebraic[eq.target] = eq
        for name, var in op.variables.items():
            if var.kind == "constant":
                constants[local[name]] = var.value
    inputs = []
    for op in template.operators:
        for name, var in op.variables.items():
            key = alias[(op.name, name)]
            if var.kind != "input" or key in states or key in algebraic or key in constants:
                continue
            if var.value:
                raise ValueError(
                    f"{where}: input {op.name}/{name} has the default {var.value}; an input "
                    f"is what edges bring (0 without them): make it a constant instead"
                )
            inputs.append(key)
    if not states:
        raise ValueError(f"{where}: no differential equation (x' = ...); nothing to integrate")
    structure = Structure(
        template.path, alias, states, derivatives, _ordered(where, algebraic),
        tuple(dict.fromkeys(inputs)), constants,
    )  # fmt: skip
    _check_names(where, structure)
    return structure


def _rename(text: str, local: Mapping[str, str]) -> str:
    """``text`` with each variable name of the operator replaced by its key."""
    return _NAME.sub(lambda m: local.get(m.group(0), m.group(0)), text)


def _origin(local: Mapping[str, str], key: str) -> str | None:
    return next((name for name, k in local.items() if k == key), None)


def _ordered(where: str, algebraic: Mapping[str, Equation]) -> tuple[Equation, ...]:
    """The algebraic equations, each after those it reads (a cycle is refused)."""
    done: list[Equation] = []
    pending = dict(algebraic)
    while pending:
        ready = [k for k, eq in pending.items() if not (eq.rhs.names & set(pending) - {k})]
        if not ready or any(k in pending[k].rhs.names for k in ready):
            raise ValueError(f"{where}: the algebraic variables {sorted(pending)} form a cycle")
        for k in ready:
            done.append(pending.pop(k))
    return tuple(done)


def _check_names(where: str, s: Structure) -> None:
    known = set(s.states) | {eq.target for eq in s.algebraic} | set(s.inputs) | set(s.constants)
    for eq in (*s.derivatives.values(), *s.algebraic):
        unknown = eq.rhs.names - known
        if unknown:
            raise ValueError(
                f"{where}: {eq.rhs.text!r} reads {sorted(unknown)}, which no operator "
                f"declares (known: {sorted(known)})"
            )


class _Spike(torch.autograd.Function):
    """RectiPy's spike: ``H(x)`` with ``H(0) = 1`` forward; ``1/(1 + slope |x|)^2`` back."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, slope: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.slope = slope
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad / (1.0 + ctx.slope * x.abs()) ** 2, None


@dataclass(frozen=True)
class SpikeRule:
    r"""RectiPy's spike rule on a template model: at the start of each step,
    :math:`z = H(x - x_{peak})` of the variable ``reset_var``; the input ``spike_input``
    receives :math:`z/dt` during the step (one forward-Euler step adds :math:`z` to a
    trace fed by it), and after the step ``reset_var`` is set to ``x_reset`` where
    :math:`z = 1`. The backward pass of :math:`H` is :math:`1/(1 + s|x - x_{peak}|)^2` with
    ``slope`` :math:`s`; the reset takes no gradient."""

    spike_input: str
    reset_var: str
    peak: float
    reset: float
    slope: float


@dataclass(frozen=True)
class Coupling:
    """Recurrent coupling inside a template population, as PyRates builds it from a weight
    matrix: the input ``target`` receives ``W @ source`` of the units' own variable
    ``source``, computed from the state the step starts from (RectiPy's ``weights``)."""

    source: str
    target: str


class TemplateModel(DENode):
    r"""A model read from a PyRates node template: made by :func:`template_model`.

    One step from state :math:`y` with input :math:`I` is forward Euler (RectiPy's
    integrator), :math:`y \leftarrow y + dt\,F(y, I)` with :math:`F` the template's
    differential equations, the algebraic variables recomputed from :math:`y` at each
    evaluation; then the spike rule's reset, if the model has one (:class:`SpikeRule`).

    Parameters
    ----------
    n : int
        Number of units.
    integrator : str
        ``"euler"`` (default, as RectiPy) or ``"rk4"``; a model with a spike rule takes
        ``"euler"`` only.
    train, init
        As :class:`~rnngraph.nodes.DENode`; ``train`` may name ``"weights"``.
    dt : float, optional
        The step, for a model with a spike rule (its input is :math:`z/dt`).
    weights : tensor, optional
        ``(n, n)``, for a model with a :class:`Coupling`: row ``i`` weighs what unit ``i``
        receives from each unit.
    **values
        The template's constants by key (a scalar, or ``(n,)`` values per unit).

    Notes
    -----
    A model made with ``before=True`` emits, at each step, its output variable as it was
    when the step began (RectiPy's nodes return ``y_old``): the event of each step sets the
    extra state variable ``y_old`` to it (its held value is never read).
    """

    template: ClassVar[Structure]
    output_key: ClassVar[str]
    spike_rule: ClassVar[SpikeRule | None] = None
    coupling: ClassVar[Coupling | None] = None
    before: ClassVar[bool] = False

    def __init__(
        self, n: int, integrator=None, train=None, init=None, dt=None, weights=None, **values
    ) -> None:
        where = type(self).__name__
        constants = self.template.constants
        unknown = sorted(set(values) - set(constants))
        if unknown:
            raise TypeError(
                f"{where}: unknown constant(s) {unknown}; the template's constants are "
                f"{sorted(constants)}"
            )
        train = [train] if isinstance(train, str) else list(train or ())
        train_weights = "weights" in train
        super().__init__(n, integrator, [t for t in train if t != "weights"], init)
        for key, default in constants.items():
            self.add_param(key, values.get(key, default))
        self.check_train()
        self._set_weights(where, weights, train_weights)
        self._set_dt(where, dt)

    def _set_weights(self, where: str, weights: Any, train: bool) -> None:
        if self.coupling is None:
            if weights is not None or train:
                raise TypeError(f"{where}: weights= is for a model with recurrent coupling")
            return
        w = torch.as_tensor(weights, dtype=torch.float64) if weights is not None else None
        if w is None or w.shape != (self.n, self.n) or not bool(torch.isfinite(w).all()):
            got = None if w is None else tuple(w.shape)
            raise ValueError(f"{where}: weights must be finite and ({self.n}, {self.n}), got {got}")
        if train:
            self.weights = torch.nn.Parameter(w.clone())
        else:
            self.register_buffer("weights", w.clone())

    def _set_dt(self, where: str, dt: Any) -> None:
        if self.spike_rule is not None:
            if self.integrator != "euler":
                raise ValueError(f"{where}: RectiPy's spike rule is defined for 'euler' only")
            if not isinstance(dt, int | float) or isinstance(dt, bool) or not dt > 0:
                raise ValueError(f"{where}: a model with a spike rule needs dt > 0, got {dt!r}")
        elif dt is not None:
            raise TypeError(f"{where}: dt= is for a model with a spike rule (the template's)")
        self.dt = dt

    def _env(self, s: tuple, i: tuple | None) -> dict[str, Any]:
        """Every quantity of the template at state ``s`` and inputs ``i`` (``None``: no
        inputs, for the output)."""
        tables = self._buffers, self._parameters  # faster than Module.__getattr__, per step
        env: dict[str, Any] = {
            k: tables[0][k] if k in tables[0] else tables[1][k] for k in self.template.constants
        }
        env.update(zip(self.state_vars, s, strict=True))
        if i is not None:
            env.update(zip(self.input_names, i, strict=True))
        rule = self.spike_rule
        if rule is not None and i is not None:
            x = getattr(s, rule.reset_var) - rule.peak
            env[rule.spike_input] = _Spike.apply(x, rule.slope) / self.dt
        for eq in self.template.algebraic:
            env[eq.target] = eq.rhs.evaluate(env)
        c = self.coupling
        if c is not None and i is not None:
            env[c.target] = env[c.target] + torch.nn.functional.linear(env[c.source], self.weights)
        return env

    def rhs(self, s: tuple, i: tuple) -> tuple:
        """The derivatives of the state variables, the template's equations evaluated."""
        env = self._env(s, i)
        out = []
        for var, x in zip(self.state_vars, s, strict=True):
            eq = self.template.derivatives.get(var)
            d = 0.0 if eq is None else eq.rhs.evaluate(env)  # y_old changes by the event
            out.append(
                d if isinstance(d, Tensor) and d.shape == x.shape else d + torch.zeros_like(x)
            )
        return tuple(out)

    def event(self, before: tuple, after: tuple, dt: float) -> tuple:
        """RectiPy's reset (see :class:`SpikeRule`) and, with ``before=True``, the output
        the step began with."""
        rule, new = self.spike_rule, {}
        if rule is not None:
            x = getattr(before, rule.reset_var)
            z = (x - rule.peak >= 0).to(x.dtype)
            new[rule.reset_var] = getattr(after, rule.reset_var) * (1.0 - z) + z * rule.reset
        if self.before:
            new["y_old"] = self.value(before)
        return after._replace(**new) if new else after

    def value(self, s: tuple) -> Tensor:
        """The output variable at state ``s`` (without the ``before`` timing)."""
        if self.output_key in self.template.states:
            return getattr(s, self.output_key)
        return self._env(s, None)[self.output_key]

    @property
    def parameter_names(self) -> list[str]:
        """The constants and inputs by PyRates' ``op/var`` names (RectiPy's nodes list
        these, with PyRates' own internal names besides), and ``weights`` if coupled."""
        names = [f"{op}/{v}" for (op, v), k in self.template.alias.items()
                 if k in self.template.constants or k in self.input_names]  # fmt: skip
        return names + (["weights"] if self.coupling is not None else [])

    @property
    def variable_names(self) -> list[str]:
        """The state variables by PyRates' ``op/var`` names."""
        return [
            f"{op}/{v}" for (op, v), k in self.template.alias.items() if k in self.template.states
        ]

    def output(self, s: tuple) -> Tensor:
        """The variable ``output_key`` (a state variable, or an algebraic one computed from
        the state), as it is after the step, or as it was before it (``before=True``)."""
        return s.y_old if self.before else self.value(s)


_MODELS: dict[tuple, type[TemplateModel]] = {}
#: the model's own constructor arguments, which a template constant may not be named
_ARGUMENTS = frozenset({"n", "integrator", "train", "init", "dt", "weights"})


def template_model(
    template: str | NodeTemplate,
    output: str | None = None,
    spike: SpikeRule | None = None,
    coupling: Coupling | None = None,
    before: bool = False,
) -> type[TemplateModel]:
    """The model class of a node template (a path or a read :class:`NodeTemplate`).

    Parameters
    ----------
    template : str or NodeTemplate
        The template path (see the module docstring) or the template read.
    output : str, optional
        The variable the units emit, as ``var`` or ``op/var``; default: the one variable the
        template declares ``output(...)``.
    spike : SpikeRule, optional
        RectiPy's spike rule (its names as keys).
    coupling : Coupling, optional
        Recurrent coupling through a weight matrix (``weights=`` of the model).
    before : bool
        Emit the output as it was when each step began (RectiPy's timing).

    Classes are made once per template and options.
    """
    where = "template_model"
    spec = read_template(template, where) if isinstance(template, str) else template
    structure = _structure(spec)
    key = _output_key(where, spec, structure, output)
    taken = [k for k in structure.constants if k in _ARGUMENTS or hasattr(TemplateModel, k)]
    if taken:
        raise ValueError(
            f"{where}: {spec.path!r}: the constant(s) {taken} clash with the model's own "
            f"arguments or attributes ({sorted(_ARGUMENTS)}, torch.nn.Module's); rename them"
        )
    inputs = structure.inputs
    if spike is not None:
        inputs, spike = _check_rule(where, structure, spike)
    if not inputs:
        raise ValueError(f"{where}: {spec.path!r} has no input variable (input(...))")
    if coupling is not None:
        coupling = _check_coupling(where, structure, coupling, inputs)
    cache = (repr(spec), key, spike, coupling, bool(before))
    if cache not in _MODELS:
        name = re.sub(r"\W", "_", spec.path.rsplit(".", 1)[-1].rsplit("/", 1)[-1]).title()
        states = tuple(structure.states) + (("y_old",) if before else ())
        if before and "y_old" in structure.states:
            raise ValueError(
                f"{where}: {spec.path!r} names a variable y_old, which before=True adds"
            )
        _MODELS[cache] = type(
            f"{name}Template",
            (TemplateModel,),
            {
                "__module__": __name__,
                "template": structure,
                "output_key": key,
                "spike_rule": spike,
                "coupling": coupling,
                "before": bool(before),
                "state_vars": states,
                "input_names": inputs,
                "output_var": "y_old" if before else (key if key in states else states[0]),
                "init_defaults": {**structure.states, **({"y_old": 0.0} if before else {})},
            },
        )
    return _MODELS[cache]


def _output_key(where: str, spec: NodeTemplate, structure: Structure, output: str | None) -> str:
    if output is None:
        outputs = {
            structure.alias[(op.name, name)]
            for op in spec.operators
            for name, var in op.variables.items()
            if var.output
        }
        if len(outputs) != 1:
            raise ValueError(
                f"{where}: {spec.path!r} declares {len(outputs)} output variables "
                f"{sorted(outputs)}; name the one the units emit (output=...)"
            )
        return outputs.pop()
    key = structure.key(where, output)
    algebraic = {eq.target for eq in structure.algebraic}
    if key not in structure.states and key not in algebraic:
        raise ValueError(f"{where}: {output!r} is an input or constant, not a variable")
    if key in algebraic and _reads_inputs(structure, key):
        raise ValueError(f"{where}: the output {output!r} reads an input; emit a state variable")
    return key


def _check_coupling(
    where: str, structure: Structure, c: Coupling, inputs: tuple[str, ...]
) -> Coupling:
    source, target = structure.key(where, c.source), structure.key(where, c.target)
    algebraic = {eq.target for eq in structure.algebraic}
    if source not in structure.states and source not in algebraic:
        raise ValueError(f"{where}: the coupling's source {c.source!r} is not a variable")
    if target not in inputs:
        raise ValueError(
            f"{where}: the coupling's target {c.target!r} is not an input ({list(inputs)})"
        )
    if any(target in eq.rhs.names for eq in structure.algebraic):
        raise ValueError(f"{where}: an algebraic variable reads the coupling's target {c.target!r}")
    return Coupling(source, target)


def _reads_inputs(structure: Structure, key: str) -> bool:
    """Whether the algebraic variable ``key`` depends on an input."""
    algebraic = {eq.target: eq for eq in structure.algebraic}
    todo, seen = [key], set()
    while todo:
        k = todo.pop()
        if k in structure.inputs:
            return True
        if k in algebraic and k not in seen:
            seen.add(k)
            todo.extend(algebraic[k].rhs.names)
    return False


def _check_rule(
    where: str, structure: Structure, rule: SpikeRule
) -> tuple[tuple[str, ...], SpikeRule]:
    """The model's inputs under the spike rule ``rule`` (its spike input taken out), and
    the rule with its variables by key."""
    rule = dataclasses.replace(
        rule,
        spike_input=structure.key(where, rule.spike_input),
        reset_var=structure.key(where, rule.reset_var),
    )
    if rule.spike_input not in structure.inputs:
        raise ValueError(
            f"{where}: the spike input {rule.spike_input!r} is not an input of "
            f"{structure.path!r} ({list(structure.inputs)})"
        )
    if rule.reset_var not in structure.states:
        raise ValueError(
            f"{where}: the reset variable {rule.reset_var!r} is not a state variable of "
            f"{structure.path!r} ({list(structure.states)})"
        )
    if not rule.peak > rule.reset:
        raise ValueError(f"{where}: the spike peak {rule.peak} must exceed the reset {rule.reset}")
    return tuple(k for k in structure.inputs if k != rule.spike_input), rule
