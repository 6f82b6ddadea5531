r"""Models from equations: a :class:`~rnngraph.nodes.DENode` (rate) or
:class:`~rnngraph.nodes.SpikingNode` class built from :class:`Equations`.

The class is a model of the core like a built-in: its state variables are the equations'
variables, its parameters registered tensors (trainable by name with ``train=``), its inputs
the names listed in ``inputs=``. What the equations' structure allows is found from them:

* every derivative affine in its own variable, :math:`\dot x = (a + b\,x)/d` with
  :math:`a, b, d` free of :math:`x`, gives the decay rates :math:`-b/d` of ``exp_euler``
  (Brian2's ``exponential_euler``);
* every derivative linear, :math:`\dot x = (c_0 + \sum_k g_k I_k + b\,x)/d` with
  coefficients free of the state and of the inputs, gives the model's
  :meth:`~rnngraph.nodes.DENode.linear_part`
  :math:`\tau \dot x = \mathrm{rest} + \sum_k \mathrm{gain}_k I_k - x` with
  :math:`\tau = d/(-b)`, :math:`\mathrm{rest} = c_0/(-b)`, :math:`\mathrm{gain}_k =
  g_k/(-b)`: the exact affine one-step map and every kernel registered for that structure
  (the native LIF step among them) serve it, as ``explain()`` shows.

With units, every value is kept in SI units (seconds, volts, amperes, ...), ``dt``
included: a network holding such a model is built with ``Network(dt=0.1*ms)``.
"""

from __future__ import annotations

import ast
import functools
import math
import pickle
import re
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch

from .._checks import describe
from ..nodes import DENode, LinearPart, SpikingNode, affine_gain, affine_step
from ..units import UNITS, Dimension, DimensionError, Quantity, dimensionless
from ._expr import FUNCTIONS, REDUCTIONS, compile_tree, parse_expression
from ._symbolic import Affine, affine, dimension, names_in
from ._text import Equations

__all__ = ["equation_model"]

SECOND = UNITS["second"].dim
#: names an equation model cannot use for its own variables: Brian2's special variables
#: (not provided here) and the spiking state
RESERVED = ("t", "dt", "i", "N", "xi", "lastspike", "not_refractory", "z", "ref", "refractory")
#: the mathematical constants an expression may read (unless a parameter takes the name)
CONSTANTS = MappingProxyType({"pi": Quantity(math.pi)})
#: Brian2's integrator names, as rnngraph's
METHODS = MappingProxyType(
    {
        "euler": "euler",
        "rk4": "rk4",
        "exp_euler": "exp_euler",
        "exponential_euler": "exp_euler",
        "exact": "exact",
        "linear": "exact",
    }
)
_STATEMENT = re.compile(r"\s*([A-Za-z_]\w*)\s*(\+=|-=|=)\s*(.+?)\s*")


@dataclass(frozen=True)
class _Spec:
    """What the class is built from, checked."""

    eqs: Equations
    inputs: tuple[str, ...]
    params: tuple[str, ...]  # declared parameters, then external names, in order
    dims: Mapping[str, Dimension]  # known at class creation
    units: Mapping[str, Quantity]  # the unit names the expressions read
    namespace: Mapping[str, Any]
    uses_units: bool
    threshold: ast.AST | None
    resets: tuple[tuple[str, ast.AST], ...]  # (variable, new value or jump)
    refractory: Any
    output: str | None
    on_input: tuple[tuple[str, ast.AST], ...] = ()  # (variable, jump by the step's input)

    @property
    def time(self) -> Dimension:
        return SECOND if self.uses_units else dimensionless


def _where(name: str) -> str:
    return f"equation_model({name!r})"


def _names(eqs: Equations, inputs: tuple, extra: list[ast.AST], namespace: Mapping) -> tuple:
    """The parameters (declared ones, then the undeclared names the expressions read that
    are not units) and the unit names read. Names are units only in equations that carry
    units (a declared unit, or a namespace value with one): in unitless ones every
    undeclared name is a parameter (``C``, ``g``, ``m`` are not coulomb, gram, metre)."""
    known = set(eqs.diff_names) | set(eqs.sub_names) | set(inputs)
    with_units = any(not x.dim.is_dimensionless for x in eqs.lines) or any(
        isinstance(v, Quantity) and not v.dim.is_dimensionless for v in namespace.values()
    )
    read = [n for line in eqs.lines if line.expr is not None for n in _ordered(line.expr.tree)]
    read += [n for tree in extra for n in _ordered(tree)]
    params = [p for p in eqs.param_names if p not in inputs]
    units: dict[str, Quantity] = {}
    for n in dict.fromkeys(read):
        if n in known or n in params:
            continue
        if n in CONSTANTS and n not in namespace:
            units[n] = CONSTANTS[n]
        elif with_units and n in UNITS and n not in namespace:
            units[n] = UNITS[n]
        else:
            params.append(n)
    return tuple(params), units


def _ordered(tree: ast.AST) -> list[str]:
    funcs = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    names = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in funcs]
    return [n.id for n in sorted(names, key=lambda n: (n.lineno, n.col_offset))]  # as read


def _statements(
    where: str, text: str | None, what: str = "reset"
) -> tuple[tuple[str, str, ast.AST], ...]:
    """The statements ``x = expr``, ``x += expr``, ``x -= expr`` of ``text`` (``what``:
    the argument, ``reset`` or ``on_input``), separated by ``;`` or new lines."""
    if text is None:
        return ()
    if not isinstance(text, str):
        raise TypeError(f"{where}: {what} must be a string of statements, got {text!r}")
    out = []
    for part in re.split(r"[;\n]", text):
        if not part.strip():
            continue
        m = _STATEMENT.fullmatch(part)
        if m is None:
            raise ValueError(
                f"{where}: cannot read the {what} statement {part.strip()!r} "
                "(expected 'x = expr', 'x += expr' or 'x -= expr')"
            )
        var, op, rhs = m.groups()
        tree = parse_expression(f"{where}: {what} {part.strip()!r}", rhs).tree
        out.append((var, op, tree))
    return tuple(out)


def _threshold(where: str, eqs: Equations, threshold: Any) -> ast.AST | None:
    """The right side ``X`` of a threshold ``v > X``."""
    if threshold is None:
        return None
    if not isinstance(threshold, str):
        raise TypeError(
            f"{where}: threshold must be a string such as 'v > v_th', got {threshold!r}"
        )
    tree = parse_expression(f"{where}: threshold", threshold, compare=True).tree
    if not (
        isinstance(tree, ast.Compare)
        and isinstance(tree.ops[0], ast.Gt)
        and isinstance(tree.left, ast.Name)
        and tree.left.id == "v"
    ):
        raise ValueError(
            f"{where}: the threshold must read 'v > expression' (v strictly above a value "
            f"free of the state, the rule of rnngraph's spiking models), got {threshold!r}"
        )
    if "v" not in eqs.diff_names:
        raise ValueError(f"{where}: a spiking model needs a differential equation for v")
    return tree.comparators[0]


def _spec(
    name: str,
    equations: Any,
    inputs: Any,
    threshold: Any,
    reset: Any,
    refractory: Any,
    output: Any,
    namespace: Any,
    on_input: Any = None,
) -> _Spec:
    where = _where(name)
    eqs = equations if isinstance(equations, Equations) else Equations(equations)
    inputs = _inputs(where, eqs, inputs)
    namespace = dict(namespace or {})
    thr = _threshold(where, eqs, threshold)
    statements = _statements(where, reset)
    if (thr is None) != (not statements):
        raise ValueError(
            f"{where}: a spiking model takes both a threshold and a reset ('v = ...'), got "
            f"threshold={threshold!r}, reset={reset!r}"
        )
    jumps = _input_jumps(where, eqs, inputs, on_input, thr is not None)
    extra = ([thr] if thr is not None else []) + [t for _, _, t in statements]
    params, units = _names(eqs, inputs, extra + [t for _, t in jumps], namespace)
    _event_reads(where, eqs, inputs, thr, statements)
    read = set(eqs.names()) | {n for _, t in jumps for n in names_in(eqs.inlined(t))}
    unread = sorted(set(inputs) - read)
    if unread:
        raise ValueError(f"{where}: no equation (or on_input jump) reads the inputs {unread}")
    used = read | {n for t in extra for n in names_in(t)}
    _check_own_names(where, eqs, inputs, params, used, namespace)
    dims = {line.name: line.dim for line in eqs.lines}
    dims.update({p: _as_quantity(namespace[p]).dim for p in namespace if p not in dims})
    uses_units = any(n not in CONSTANTS for n in units) or any(
        not d.is_dimensionless for d in dims.values()
    )
    undeclared = [k for k in inputs if k not in dims]
    if uses_units and undeclared:
        raise ValueError(
            f"{where}: the equations carry units, so each input needs its unit declared in a "
            f"line such as '{undeclared[0]} : amp'; no line declares {undeclared}"
        )
    if thr is not None and not (isinstance(refractory, int | float) and refractory == 0):
        _si(where, "refractory", refractory, SECOND if uses_units else dimensionless, uses_units)
    resets = _resets(where, eqs, statements) if thr is not None else ()
    spec = _Spec(
        eqs,
        inputs,
        params,
        MappingProxyType(dims),
        MappingProxyType(units),
        MappingProxyType(namespace),
        uses_units,
        thr,
        resets,
        refractory,
        _output(where, eqs, output, thr is not None),
        jumps,
    )
    _flags(where, spec)
    if all(p in dims for p in params):
        _check_dimensions(where, spec, dims)
    return spec


def _check_own_names(
    where: str, eqs: Equations, inputs: tuple, params: tuple, used: set, namespace: Mapping
) -> None:
    own = set(eqs.diff_names) | set(eqs.sub_names) | set(params) | set(inputs)
    bad = sorted(own & (set(RESERVED) | {n for n in used if n.startswith(("xi", "_"))}))
    if bad:
        raise ValueError(
            f"{where}: {bad} are reserved (Brian2's time, noise and spike variables, the "
            "spiking state z, ref, refractory, and names starting with '_' are not "
            "equation names)"
        )
    unknown = sorted(set(namespace) - set(params))
    if unknown:
        raise ValueError(
            f"{where}: namespace= names {unknown}, which are not parameters of "
            f"the equations; its parameters are {list(params)}"
        )


def _input_jumps(
    where: str, eqs: Equations, inputs: tuple, on_input: Any, spiking: bool
) -> tuple[tuple[str, ast.AST], ...]:
    """``on_input``'s jumps ``x += expr`` (``-=``), each reading the step's inputs (Brian2's
    ``on_pre`` of a synapse whose presynaptic spikes arrive through the inputs)."""
    statements = _statements(where, on_input, "on_input")
    if statements and spiking:
        raise ValueError(
            f"{where}: on_input= is for rate models (synapses); a spiking model takes its "
            "input through its equations (or from a synapse node before it)"
        )
    out = []
    for var, op, tree in statements:
        if var not in eqs.diff_names or op == "=":
            raise ValueError(
                f"{where}: on_input {var} {op} {ast.unparse(tree)}: expected a jump 'x += "
                f"expr' or 'x -= expr' of a variable of a differential equation {eqs.diff_names}"
            )
        if not names_in(eqs.inlined(tree)) & set(inputs):
            raise ValueError(
                f"{where}: on_input {var} {op} {ast.unparse(tree)} reads none of the inputs "
                f"{list(inputs)}: it would jump at every step"
            )
        if var in [v for v, _ in out]:
            raise ValueError(f"{where}: on_input changes {var!r} twice; write one statement")
        out.append((var, ast.UnaryOp(ast.USub(), tree) if op == "-=" else tree))
    return tuple(out)


def _inputs(where: str, eqs: Equations, inputs: Any) -> tuple[str, ...]:
    inputs = (inputs,) if isinstance(inputs, str) else tuple(inputs or ())
    if not inputs or any(not isinstance(k, str) or not k.isidentifier() for k in inputs):
        raise ValueError(
            f"{where}: inputs= must name at least one variable that edges drive (e.g. "
            f"inputs=('I',)), got {inputs!r}"
        )
    if len(set(inputs)) != len(inputs):
        raise ValueError(f"{where}: inputs= names a variable twice: {inputs!r}")
    clash = sorted(set(inputs) & (set(eqs.diff_names) | set(eqs.sub_names)))
    if clash:
        raise ValueError(f"{where}: the inputs {clash} are defined by equations")
    return inputs


def _event_reads(
    where: str, eqs: Equations, inputs: tuple, thr: ast.AST | None, statements: tuple
) -> None:
    """A threshold and the reset's values are free of the state and of the inputs
    (subexpressions of parameters alone are allowed: they are inlined)."""
    state, events = set(eqs.diff_names), []
    if thr is not None:
        events.append((f"threshold v > {ast.unparse(thr)}", thr))
    events += [(f"reset {var} {op} {ast.unparse(t)}", t) for var, op, t in statements]
    for what, tree in events:
        reads = names_in(eqs.inlined(tree))
        bad = sorted(reads & state) + sorted(reads & set(inputs))
        if bad:
            raise ValueError(
                f"{where}: the {what} reads {bad} (directly or through a subexpression); "
                "a threshold and a reset value are computed from parameters alone"
            )


def _as_quantity(x: Any) -> Quantity:
    return x if isinstance(x, Quantity) else Quantity(0.0)


def _resets(where: str, eqs: Equations, statements: tuple) -> tuple:
    out, state = [], set(eqs.diff_names)
    for var, op, tree in statements:
        if var not in state:
            raise ValueError(
                f"{where}: the reset sets {var!r}, which is not a variable of a "
                f"differential equation {sorted(state)}"
            )
        if (var == "v") != (op == "="):
            raise ValueError(
                f"{where}: the reset sets v with '=' (v = value) and changes the other "
                f"variables with '+=' or '-=' (jumps), got {var} {op} {ast.unparse(tree)}"
            )
        if var in [v for v, _ in out]:
            raise ValueError(
                f"{where}: the reset changes {var!r} twice; write one statement "
                "per variable (e.g. 'w += b1 + b2')"
            )
        out.append((var, ast.UnaryOp(ast.USub(), tree) if op == "-=" else tree))
    if "v" not in [v for v, _ in out]:
        raise ValueError(f"{where}: the reset must set v ('v = value')")
    return tuple(out)


def _output(where: str, eqs: Equations, output: Any, spiking: bool) -> str | None:
    if output is None:
        return None
    if spiking:
        raise ValueError(
            f"{where}: a spiking model outputs its spikes z; output= is for rate "
            f"models, got {output!r}"
        )
    if not isinstance(output, str):
        raise TypeError(f"{where}: output must be a variable name or 'f(variable)'")
    tree = parse_expression(f"{where}: output", output).tree
    var = tree.args[0] if isinstance(tree, ast.Call) and len(tree.args) == 1 else tree
    ok = isinstance(var, ast.Name) and var.id in eqs.diff_names
    call = tree.func.id if isinstance(tree, ast.Call) else None
    if not ok or (call is not None and (FUNCTIONS[call][1] != 1 or call in REDUCTIONS)):
        raise ValueError(
            f"{where}: output must be a variable of a differential equation {eqs.diff_names} "
            f"or an elementwise function of one, such as 'tanh(v)' (one output per unit), "
            f"got {output!r}"
        )
    return output


def _flags(where: str, spec: _Spec) -> None:
    flagged = [x.name for x in spec.eqs.lines if "unless refractory" in x.flags]
    if flagged and spec.threshold is None:
        raise ValueError(f"{where}: '(unless refractory)' needs a spiking model (threshold=)")
    if set(flagged) - {"v"}:
        raise ValueError(
            f"{where}: only v may be held in the refractory period (rnngraph's spiking "
            f"models hold the membrane alone), got '(unless refractory)' on {flagged}"
        )


def _check_dimensions(where: str, spec: _Spec, dims: Mapping[str, Dimension]) -> None:
    """Every equation, threshold and reset dimensionally consistent (with units only)."""
    if not spec.uses_units:
        return

    def of(name: str) -> Dimension:
        return dims[name] if name in dims else spec.units[name].dim

    def say(t: ast.AST) -> str:
        return repr(ast.unparse(t))

    def check(text: str, tree: ast.AST, want: Dimension, what: str) -> None:
        try:
            got = dimension(tree, of, say)
        except DimensionError as e:
            raise DimensionError(f"{where}: in {text!r}: {e}") from None
        if got != want:
            raise DimensionError(
                f"{where}: in {text!r}: {what} has dimension {got}, expected {want}"
            )

    for line in spec.eqs.lines:
        if line.kind == "sub":
            check(line.text, line.expr.tree, line.dim, "the right-hand side")
        elif line.kind == "diff":
            check(
                line.text,
                line.expr.tree,
                line.dim / spec.time,
                f"the right-hand side (d{line.name}/dt)",
            )
    if spec.threshold is not None:
        check(f"v > {ast.unparse(spec.threshold)}", spec.threshold, dims["v"], "the threshold")
    for var, tree in spec.resets:
        check(f"reset of {var}", tree, dims[var], f"the reset of {var}")
    for var, tree in spec.on_input:
        check(f"on_input jump of {var}", tree, dims[var], f"the jump of {var}")


# ---- structure found from the equations -----------------------------------------------


@dataclass(frozen=True)
class Structure:
    """What the equations' form allows: the decay rate of each variable (trees over
    parameters and state; ``None`` when some derivative is not affine in its variable) and
    the linear part (``None`` when some derivative is not linear), per variable
    ``(tau, rest, {input: gain})`` as trees over the parameters."""

    rates: tuple[ast.AST, ...] | None
    linear: Mapping[str, tuple[ast.AST, ast.AST | None, Mapping[str, ast.AST]]] | None
    why_not_linear: str | None
    #: the equations as a linear system :math:`\dot x_i = \sum_j A_{ij} x_j + f_i` (per
    #: variable, its coefficients ``{x_j: A_ij}`` free of the state and the inputs and
    #: its remainder ``f_i``, free of the state), or ``None`` when they are not one
    system: Mapping[str, tuple[Mapping[str, ast.AST], ast.AST | None]] | None = None


def _free(tree: ast.AST | None, names: set[str]) -> bool:
    return tree is None or not (names_in(tree) & names)


def structure(spec: _Spec) -> Structure:
    """The decay rates and the linear part of ``spec``'s equations (see the module
    docstring)."""
    eqs, state, inputs = spec.eqs, set(spec.eqs.diff_names), set(spec.inputs)
    forms: dict[str, Affine | None] = {}
    for x in eqs.diff_names:
        forms[x] = affine(eqs.inlined(eqs[x].expr.tree), x)
    bad = [x for x, f in forms.items() if f is None or f.b is None]
    rates = None
    if not bad and all(_free(f.b, inputs) and _free(f.d, inputs) for f in forms.values()):
        rates = tuple(_rate(f) for f in forms.values())
    system = _system(eqs, state | inputs)
    if bad:
        return Structure(rates, None, f"d{bad[0]}/dt is not linear in {bad[0]}", system)
    linear = {}
    for x, f in forms.items():
        part, why = _linear(f, state, spec.inputs)
        if part is None:
            return Structure(rates, None, f"d{x}/dt: {why}", system)
        linear[x] = part
    return Structure(rates, MappingProxyType(linear), None, system)


def _system(eqs: Equations, varying: set[str]) -> Mapping | None:
    """The equations as a linear system (see :attr:`Structure.system`), or ``None``."""
    out = {}
    for x in eqs.diff_names:
        rest, coeffs = eqs.inlined(eqs[x].expr.tree), {}
        for y in eqs.diff_names:
            part = affine(rest, y) if rest is not None else None
            if part is None:
                if rest is None:
                    continue
                return None
            rest, c = part.flat()
            if c is not None:
                if not _free(c, varying):
                    return None
                coeffs[y] = c
        out[x] = (MappingProxyType(coeffs), rest)
    return MappingProxyType(out)


def _over(x: ast.AST, d: ast.AST | None) -> ast.AST:
    """``x / d``, or ``x`` when ``d`` is one (no division computed at every step)."""
    one = d is None or (isinstance(d, ast.Constant) and d.value == 1.0)
    return x if one else ast.BinOp(x, ast.Div(), d)


def _minus(x: ast.AST) -> ast.AST:
    if isinstance(x, ast.UnaryOp) and isinstance(x.op, ast.USub):
        return x.operand
    return ast.UnaryOp(ast.USub(), x)


def _rate(f: Affine) -> ast.AST:
    return _over(_minus(f.b), f.d)


def _linear(f: Affine, state: set[str], inputs: tuple[str, ...]) -> tuple[Any, str | None]:
    """``(tau, rest, gains)`` of one derivative, or ``None`` and why not."""
    if not (_free(f.b, state | set(inputs)) and _free(f.d, state | set(inputs))):
        return None, "its decay depends on the state or the inputs"
    minus_b = _minus(f.b)
    rest, gains = f.a, {}
    for k in inputs:
        part = None if rest is None else affine(rest, k)
        if part is None and rest is not None:
            return None, f"it is not linear in the input {k}"
        if part is not None and part.b is not None:
            rest, g = part.flat()
            if not _free(g, state | set(inputs)):
                return None, f"the gain of {k} depends on the state or the inputs"
            gains[k] = _over(g, minus_b)
    if not _free(rest, state):
        return None, "it couples to other state variables"
    tau = _over(f.d if f.d is not None else ast.Constant(1.0), minus_b)
    rest = None if rest is None else _over(rest, minus_b)
    return (tau, rest, MappingProxyType(gains)), None


# ---- the class ---------------------------------------------------------------------------


def _si(where: str, what: str, value: Any, dim: Dimension | None, uses_units: bool) -> Any:
    """``value`` in SI units, checked against ``dim`` (``None``: any, from the value)."""
    if isinstance(value, Quantity):
        if not uses_units:
            raise TypeError(
                f"{where}: {what} is given with a unit ({value!r}) but the "
                "equations carry none: give a plain number"
            )
        if dim is not None and value.dim != dim:
            raise DimensionError(
                f"{where}: {what} must have dimension {dim}, got {value.dim} ({value!r})"
            )
        return value.value
    if uses_units and dim is not None and not dim.is_dimensionless:
        raise DimensionError(
            f"{where}: {what} must have dimension {dim} (a Quantity: a number times a unit "
            f"of {dim}); got {value!r} without a unit"
        )
    return value


class EquationModel:
    """The part every model built by :func:`equation_model` shares (a mixin before its
    :class:`DENode` or :class:`SpikingNode` base): parameters by keyword, in SI units when
    the equations carry units."""

    spec: _Spec
    structure_found: Structure
    #: the arguments of :func:`equation_model` that built the class
    factory: Mapping[str, Any]
    #: the equations the model was built from
    equations: Equations

    def __init__(self, n: int, **kwargs: Any) -> None:
        spec, owner = self.spec, type(self).__name__
        spiking = spec.threshold is not None
        options = {"integrator", "train", "init"} | (
            {"refractory", "reset", "surrogate", "surrogate_scale", "detach_reset"}
            if spiking
            else set()
        )
        unknown = sorted(set(kwargs) - set(spec.params) - options)
        if unknown:
            hint = [
                f"{u} is read as the unit {u} (declare '{u} : unit' to make it a parameter)"
                for u in unknown
                if u in spec.units
            ]
            raise TypeError(
                f"{owner}: unknown keyword argument(s) {unknown}; the model's parameters are "
                f"{list(spec.params)}, its options {sorted(options)}"
                + (f"; {'; '.join(hint)}" if hint else "")
            )
        values = {**spec.namespace, **{p: kwargs.pop(p) for p in spec.params if p in kwargs}}
        missing = [p for p in spec.params if p not in values]
        if missing:
            raise TypeError(
                f"{owner}: missing parameter value(s) {missing} (give them as "
                "keywords or in equation_model(namespace=...))"
            )
        dims = dict(spec.dims)
        dims.update({p: _as_quantity(values[p]).dim for p in spec.params if p not in dims})
        _check_dimensions(owner, spec, dims)
        if kwargs.get("integrator") is not None:  # Brian2's names too
            kwargs["integrator"] = _method(
                owner, kwargs["integrator"], self.structure_found, "integrator", self.is_map
            )
        refractory = kwargs.pop("refractory", spec.refractory) if spiking else None
        super().__init__(n, **kwargs)  # initial values through in_units (set_init)
        for p in spec.params:
            self.add_param(p, _si(owner, f"parameter {p!r}", values[p], dims[p], spec.uses_units))
        if self.structure_found.linear is not None:
            _leak(owner, self, self._param_env(), "the parameter values")
        self._param_dims = {p: dims[p] for p in spec.params}
        if spiking:
            if not (isinstance(refractory, int | float) and refractory == 0):  # 0: no unit
                refractory = _si(owner, "refractory", refractory, spec.time, spec.uses_units)
            self.finish(refractory)
            if bool((self.refractory > 0).any()) and "unless refractory" not in spec.eqs["v"].flags:
                raise ValueError(
                    f"{owner}: refractory={refractory!r} holds v after a spike; flag its "
                    "equation '(unless refractory)' (as Brian2 asks) or set refractory=0"
                )
        else:
            self.check_train()
            if spec.output is not None and spec.output not in spec.eqs.diff_names:
                self.output_function = _function(spec.output)

    @property
    def uses_units(self) -> bool:
        """Whether the model computes in SI units (its equations carry units)."""
        return self.spec.uses_units

    def in_units(self, where: str, name: str, value: Any) -> Any:
        """``value`` for the variable or parameter ``name`` in SI units: with units, a
        :class:`~rnngraph.units.Quantity` of the declared dimension (a plain number only
        for a dimensionless one); without, a plain number."""
        spec = self.spec
        dims = {"z": dimensionless, "ref": dimensionless, "refractory": spec.time}
        dims.update(spec.dims)
        dims.update(vars(self).get("_param_dims", {}))
        return _si(where, f"the value of {name!r}", value, dims.get(name), spec.uses_units)

    def check_param(self, where: str, name: str, value: Any) -> torch.Tensor:
        """The base checks, and: a new value keeps every unit's leak of a linear model
        (the exact affine map needs :math:`\tau` finite)."""
        t = super().check_param(where, name, value)
        if self.structure_found.linear is not None and "_param_dims" in vars(self):
            _leak(where, self, {**self._param_env(), name: t}, f"{name} = {describe(value)}")
        return t

    def _param_env(self) -> dict[str, Any]:
        """The values an expression reads besides the state and the inputs: units,
        constants and every parameter (buffers and ``nn.Parameter`` s, as registered)."""
        return {**self._unit_values, **self._buffers, **self._parameters}

    def _tensor(self, x: Any) -> torch.Tensor:
        ref = self.refractory
        return torch.as_tensor(x, dtype=ref.dtype, device=ref.device)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, equations={len(self.equations.lines)} lines"

    def __reduce_ex__(self, protocol: Any) -> tuple:
        """Pickled by the arguments that build the class (a class made at run time has
        no importable name), and the module's state."""
        return (_restore, (dict(type(self).factory),), self.__getstate__())


def _units_listed(bad: torch.Tensor) -> str:
    """``units [0, 2]`` (the first ten, and how many in all), or ``every unit``."""
    if bad.numel() == 1:
        return "every unit"
    which = torch.nonzero(bad).reshape(-1).tolist()
    more = f" ({len(which)} units in all)" if len(which) > 10 else ""
    return f"units {which[:10]}{more}"


def _leak(where: str, model: Any, env: Mapping[str, Any], given: str) -> None:
    """Refuse parameters that leave a unit of a linear model without a leak: its linear
    part :math:`\tau \\dot x = \\ldots - x` needs :math:`\tau` finite."""
    why = model._leakless(env)
    if why is not None:
        raise ValueError(
            f"{where}: {given} would leave {why}; a linear model's exact affine map (and its "
            "form tau dx/dt = rest + gain*I - x) needs a leak in every unit: give those "
            "units their own population, or a leak"
        )


def _function(output: str) -> Callable:
    return FUNCTIONS[ast.parse(output, mode="eval").body.func.id][0]


def _closures(where: str, trees: Mapping[str, ast.AST]) -> tuple[tuple[str, Callable], ...]:
    return tuple((k, compile_tree(where, ast.unparse(t), t)) for k, t in trees.items())


def _has_own_step(spec: _Spec, found: Structure, method: Any) -> bool:
    """Whether the class defines its own step (``map``): jumps by the inputs, or the exact
    step of a linear system asked for by ``method``."""
    exact = isinstance(method, str) and METHODS.get(method) == "exact"
    return bool(spec.on_input) or (exact and found.linear is None and found.system is not None)


def _methods(spec: _Spec, found: Structure, where: str, own_step: bool) -> dict[str, Any]:
    """``linear_part`` (a linear model), or ``rhs`` and, where the form allows,
    ``decay``; with jumps by the inputs (``on_input``), ``rhs``, ``decay`` and ``map``."""
    linear = _linear_methods(found, where) if found.linear is not None else {}
    if own_step:
        values = linear.pop("linear_part", None)
        own = _own_step(spec, found, values, where)
        return {**linear, **_rhs_methods(spec, found, where), **own}
    return linear or _rhs_methods(spec, found, where)  # the core derives rhs from a linear part


def _linear_methods(found: Structure, where: str) -> dict[str, Any]:
    parts = {}
    for x, (tau, rest, gains) in found.linear.items():
        rest_f = None if rest is None else compile_tree(where, ast.unparse(rest), rest)
        parts[x] = (compile_tree(where, ast.unparse(tau), tau), rest_f, _closures(where, gains))

    def linear_part(self: Any) -> dict[str, LinearPart]:
        env = self._param_env()
        return {
            x: LinearPart(
                tau(env), 0.0 if rest is None else rest(env), {k: g(env) for k, g in gains}
            )
            for x, (tau, rest, gains) in parts.items()
        }

    def leakless(self: Any, env: Mapping[str, Any] | None = None) -> str | None:
        """Why the linear part is undefined for some unit (a leak of 0), or ``None``."""
        env = self._param_env() if env is None else env
        for x, (tau, _, _) in parts.items():
            t = torch.as_tensor(tau(env)).detach().reshape(-1)
            bad = ~torch.isfinite(t)
            if bool(bad.any()):
                return f"d{x}/dt without a leak (tau infinite) for {_units_listed(bad)}"
        return None

    return {"linear_part": linear_part, "_leakless": leakless}


def _rhs_methods(spec: _Spec, found: Structure, where: str) -> dict[str, Any]:
    eqs, state, inputs = spec.eqs, spec.eqs.diff_names, spec.inputs
    subs = _closures(where, {k: eqs[k].expr.tree for k in eqs.sub_names})
    odes = tuple(f for _, f in _closures(where, {k: eqs[k].expr.tree for k in state}))

    def rhs(self: Any, s: tuple, i: tuple) -> tuple:
        env = self._param_env()
        env.update(zip(state, s, strict=True))
        env.update(zip(inputs, i, strict=True))
        for name, f in subs:
            env[name] = f(env)
        return tuple(f(env) for f in odes)

    out: dict[str, Any] = {"rhs": rhs}
    if found.rates is not None:
        rates = tuple(compile_tree(where, ast.unparse(r), r) for r in found.rates)

        def decay(self: Any, s: tuple) -> tuple:
            env = self._param_env()
            env.update(zip(state, s, strict=True))
            return tuple(f(env) for f in rates)

        out["decay"] = decay
    return out


def _own_step(
    spec: _Spec, found: Structure, linear_values: Callable | None, where: str
) -> dict[str, Any]:
    r"""``map``: the step of the equations (with ``integrator="exact"`` the exact affine map
    of uncoupled linear equations, or of a linear system, else the integrator), then the
    jumps by this step's input, computed from the integrated state:
    :math:`x(k) = \Phi_{dt}(x(k-1)) + J(x, I(k))`."""
    eqs, state, inputs = spec.eqs, spec.eqs.diff_names, spec.inputs
    jumps = dict(_closures(where, dict(spec.on_input)))
    subs = _closures(where, {k: eqs[k].expr.tree for k in eqs.sub_names})
    system = None
    if linear_values is None and found.system is not None:
        system = _system_step(found.system, state, inputs, where)

    def map(self: Any, s: tuple, i: tuple, dt: float) -> tuple:
        if self.integrator != "exact":
            new = self._integrate(self, s, i, dt)
        elif system is not None:
            new = system(self, s, i, dt)
        else:
            lin = linear_values(self)
            new = []
            for v in state:
                x = getattr(s, v)
                g = affine_gain("exp_euler", dt, lin[v].tau, x)
                new.append(affine_step(x, lin[v].fixed_point(i), g))
        if not jumps:
            return self.State(*new)
        env = self._param_env()
        env.update(zip(state, new, strict=True))
        env.update(zip(inputs, i, strict=True))
        for name, f in subs:  # each once, in the order of the equations
            env[name] = f(env)
        return self.State(
            *(x + jumps[v](env) if v in jumps else x for v, x in zip(state, new, strict=True))
        )

    return {"map": map}


def _system_step(system: Mapping, state: tuple, inputs: tuple, where: str) -> Callable:
    r"""The exact step of :math:`\dot x = A x + f` with :math:`A` per unit and :math:`f`
    held over the step: :math:`x \leftarrow \Phi x + \Psi f` with
    :math:`\Phi = e^{A\,dt}`, :math:`\Psi = \int_0^{dt} e^{A s} ds`, both read from the
    matrix exponential of :math:`\begin{pmatrix} A & I \\ 0 & 0 \end{pmatrix} dt`
    (differentiable; no inverse of :math:`A`, which may be singular)."""
    k, index = len(state), {v: j for j, v in enumerate(state)}
    coeffs = [
        (index[x], index[y], compile_tree(where, ast.unparse(t), t))
        for x in state
        for y, t in system[x][0].items()
    ]
    rests = [
        (index[x], compile_tree(where, ast.unparse(r), r))
        for x in state
        if (r := system[x][1]) is not None
    ]

    reach = _reach(k, [(a, b) for a, b, _ in coeffs])

    def exponential(self: Any, env: dict, x: torch.Tensor, dt: float) -> torch.Tensor:
        """The matrix exponential, kept while ``dt`` and the coefficients' values stay as
        they were and nothing needs its gradient (it depends on the parameters alone)."""
        values = [f(env) for _, _, f in coeffs]
        grad = any(isinstance(v, torch.Tensor) and v.requires_grad for v in values)
        key = (dt, x.dtype, x.device, x.shape[-1])  # x: a (B, n) state variable
        held = vars(self).get("_system_exponential")
        if not grad and held is not None and held[0] == key and _same_values(held[1], values):
            return held[2]
        m = x.new_zeros(x.shape[-1], 2 * k, 2 * k)
        for (a, b, _), v in zip(coeffs, values, strict=True):
            m[:, a, b] = v * dt
        m[:, range(k), range(k, 2 * k)] = dt
        e = torch.linalg.matrix_exp(m)
        if not grad:
            kept = [v.detach().clone() if isinstance(v, torch.Tensor) else v for v in values]
            self.__dict__["_system_exponential"] = (key, kept, e)
        return e

    def step(self: Any, s: tuple, i: tuple, dt: float) -> list:
        env = self._param_env()
        env.update(zip(inputs, i, strict=True))
        e = exponential(self, env, s[0], dt)
        f = {a: r(env) for a, r in rests}
        out = []
        for a in range(k):  # x_a <- sum_b Phi_ab x_b + Psi_ab f_b, over the b that a reads
            acc = None
            for b in reach[a]:
                term = e[:, a, b] * s[b]
                if b in f:
                    term = term + e[:, a, k + b] * f[b]
                acc = term if acc is None else acc + term
            out.append(acc)
        return out

    return step


def _reach(k: int, pattern: list[tuple[int, int]]) -> list[list[int]]:
    """For each variable, the variables its exact step reads: itself and those it reaches
    through the coupling ``pattern`` (the other entries of the exponential are zero)."""
    reach = [{a} for a in range(k)]
    changed = True
    while changed:
        changed = False
        for a, b in pattern:
            new = reach[a] | reach[b]
            if new != reach[a]:
                reach[a], changed = new, True
    return [sorted(r) for r in reach]


def _same_values(held: list, values: list) -> bool:
    for a, b in zip(held, values, strict=True):
        if isinstance(a, torch.Tensor) != isinstance(b, torch.Tensor):
            return False
        if isinstance(a, torch.Tensor):
            if a.shape != b.shape or a.dtype != b.dtype or not torch.equal(a, b):
                return False
        elif a != b:
            return False
    return True


def _derived(where: str, name: str, tree: ast.AST) -> property:
    """A read-only attribute computing ``tree`` (subexpressions inlined) from the
    parameters, as a tensor."""
    f = compile_tree(where, ast.unparse(tree), tree)
    return property(
        lambda self: self._tensor(f(self._param_env())), doc=f"{name} = {ast.unparse(tree)}"
    )


def _event(spec: _Spec, where: str) -> dict[str, Any]:
    """The spiking declarations: ``threshold_name``, ``v_reset``, ``jumps``."""
    out: dict[str, Any] = {}
    params = set(spec.params)
    thr = spec.eqs.inlined(spec.threshold)
    if isinstance(thr, ast.Name) and thr.id in params:
        out["threshold_name"] = thr.id
    else:
        out["threshold_name"] = "threshold"
        out["threshold"] = _derived(where, "threshold", thr)
    resets = {var: spec.eqs.inlined(tree) for var, tree in spec.resets}
    v = resets.pop("v")
    if not (isinstance(v, ast.Name) and v.id == "v_reset"):
        if "v_reset" in params:
            raise ValueError(
                f"{where}: the parameter v_reset is not the reset value "
                f"({ast.unparse(v)}); rename it"
            )
        out["v_reset"] = _derived(where, "v_reset", v)
    jumps: dict[str, str | float] = {}
    for var, tree in resets.items():
        if isinstance(tree, ast.Name) and tree.id in params:
            jumps[var] = tree.id
        elif isinstance(tree, ast.Constant):
            jumps[var] = float(tree.value)
        else:
            jumps[var] = f"jump_{var}"
            out[f"jump_{var}"] = _derived(where, f"jump_{var}", tree)
    out["jumps"] = MappingProxyType(jumps)
    return out


def equation_model(
    equations: str | Equations,
    *,
    inputs: str | tuple[str, ...],
    threshold: str | None = None,
    reset: str | None = None,
    refractory: Any = 0.0,
    method: str | None = None,
    output: str | None = None,
    namespace: Mapping[str, Any] | None = None,
    name: str = "EquationModel",
    on_input: str | None = None,
) -> type[DENode]:
    r"""A model class built from equations in Brian2's syntax.

    Parameters
    ----------
    equations : str or Equations
        The equations (see :class:`Equations`).
    inputs : str or tuple of str
        The variables that edges drive (each read by an equation; declare them as
        ``I : amp`` lines when the equations carry units).
    threshold : str, optional
        ``"v > expression"`` (the expression free of the state): a spiking model, whose
        output is the spike ``z``. A unit spikes when :math:`v` is strictly above the
        threshold after the step's integration.
    reset : str, optional
        With ``threshold``: ``"v = expression"`` and jumps ``"w += expression"``
        (``-=``), separated by ``;`` or new lines, applied in the spike step.
    refractory : float or Quantity
        Default refractory period (in time units, or a time Quantity): :math:`v` is held
        as for the built-in spiking models; the equation of ``v`` must then carry
        ``(unless refractory)``. Instances take ``refractory=`` too.
    method : str, optional
        ``"euler"``, ``"rk4"``, ``"exp_euler"`` (Brian2's ``"exponential_euler"``: every
        derivative affine in its variable) or ``"exact"``/``"linear"`` (a linear model:
        its exact affine map). Default: ``"exp_euler"`` when the model is linear (exact
        for inputs held over the step), else ``"euler"``. Instances take ``integrator=``.
    output : str, optional
        A rate model's output: a variable or a function of one (``"tanh(x)"``); default
        the first variable.
    namespace : mapping, optional
        Default values of parameters (Brian2's namespace); instances override them.
    name : str
        The class's name.
    on_input : str, optional
        Jumps by the step's input, ``"s += w*spikes"`` (``-=``; ``;`` or new lines between
        statements), applied after each step's integration to the integrated state
        (Brian2's ``on_pre`` of a synapse whose spikes arrive through the inputs): one step
        is :math:`x(k) = \Phi_{dt}(x(k-1)) + J(x, I(k))`, with :math:`\Phi` the exact
        affine map of linear equations (``method="exact"``, their default) or the
        integrator. For rate models (synapse nodes).

    Returns
    -------
    type
        A :class:`~rnngraph.nodes.DENode` subclass (a
        :class:`~rnngraph.nodes.SpikingNode` with ``threshold``), instantiated as
        ``Model(n, **parameters, integrator=..., train=..., init=...)``.
    """
    where = _where(name)
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"{where}: name must be an identifier")
    spec = _spec(name, equations, inputs, threshold, reset, refractory, output, namespace, on_input)
    found = structure(spec)
    own_step = _has_own_step(spec, found, method)
    integrator = _method(where, method, found, own_step=own_step)
    attrs = _attributes(name, spec, found, integrator, own_step)
    factory = {  # the arguments, with the equations and inputs as read
        **dict(threshold=threshold, reset=reset, refractory=refractory, method=method),
        **dict(output=output, name=name, on_input=on_input),
        **dict(equations=spec.eqs.text, inputs=spec.inputs, namespace=dict(spec.namespace)),
    }
    attrs["factory"] = MappingProxyType(factory)
    base = SpikingNode if spec.threshold is not None else DENode
    _check_names(where, spec, attrs, base)
    cls = type(name, (EquationModel, base), attrs)
    _BUILT[_key(factory)] = cls
    return cls


def _attributes(
    name: str, spec: _Spec, found: Structure, integrator: str, own_step: bool
) -> dict[str, Any]:
    """The class body of the model: its declarations and its methods."""
    where, state = _where(name), spec.eqs.diff_names
    attrs: dict[str, Any] = {
        "spec": spec,
        "structure_found": found,
        "equations": spec.eqs,
        "_unit_values": MappingProxyType({k: q.value for k, q in spec.units.items()}),
        "input_names": spec.inputs,
        "default_integrator": integrator,
        "__doc__": f"{name}: a model from the equations\n\n{spec.eqs}",
        "__module__": __name__,
        **_methods(spec, found, where, own_step),
    }
    if spec.threshold is not None:
        attrs.update(ode_vars=state, state_vars=(*state, "z", "ref"), **_event(spec, where))
    else:
        out = spec.output
        var = out if out is None or out in state else ast.parse(out, mode="eval").body.args[0].id
        attrs.update(state_vars=state, output_var=var or state[0])
    return attrs


@functools.cache
def _taken(base: type) -> frozenset[str]:
    """The attribute names an instance of ``base`` has (its class's, and those its
    ``__init__`` sets, found on a bare instance)."""
    attrs = {"state_vars": ("v", "z", "ref"), "output_var": "v", "input_names": ("I",)}
    attrs.update(ode_vars=("v",), threshold_name="v_th", v_reset=0.0, rhs=lambda *a: a)
    probe = type("Probe", (base,), attrs)(1)
    return frozenset(dir(base)) | frozenset(vars(probe)) | frozenset(dir(EquationModel))


def _check_names(where: str, spec: _Spec, attrs: Mapping[str, Any], base: type) -> None:
    """No parameter takes the name of an attribute of the model (``training``, ``n``,
    ``integrator``, ``rhs``, a derived ``jump_w``, ...), which would hide one or the
    other."""
    named = {attrs.get("threshold_name"), *dict(attrs.get("jumps", {})).values()}
    own = {x for x in named if x not in attrs}  # parameters the declarations name
    clash = sorted(p for p in spec.params if p in (_taken(base) | set(attrs)) - own)
    if clash:
        raise ValueError(
            f"{where}: the parameter names {clash} are attributes of the model (of "
            f"{base.__name__}, or derived from the equations); rename them"
        )


#: the classes built, by their arguments: an unpickled model finds its class here (or
#: builds it again from the arguments, in a new process)
_BUILT: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def _key(factory: Mapping[str, Any]) -> bytes:
    """The arguments as bytes (every value in full: a repr elides long arrays)."""
    items = {**factory, "namespace": sorted(factory["namespace"].items())}
    return pickle.dumps(sorted(items.items()), protocol=pickle.HIGHEST_PROTOCOL)


def _restore(factory: Mapping[str, Any]) -> Any:
    """An empty instance of the class ``factory`` builds (for pickle and copy)."""
    cls = _BUILT.get(_key(factory)) or equation_model(**factory)
    return cls.__new__(cls)


def _method(
    where: str, method: Any, found: Structure, word: str = "method", own_step: bool = False
) -> str:
    """rnngraph's integrator for ``method`` (rnngraph's or Brian2's name; ``None``: the
    default), checked against the equations' structure. A model with its own step (jumps
    by its inputs) labels the exact affine map ``"exact"``."""
    solvable = found.linear is not None or found.system is not None
    if own_step and solvable and (method is None or METHODS.get(method) == "exact"):
        return "exact"
    if method is None:
        return "exp_euler" if found.linear is not None else "euler"
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"{where}: unknown {word} {method!r}; valid names are {sorted(METHODS)}")
    name = METHODS[method]
    if name == "exact":
        if found.linear is None:
            raise ValueError(
                f"{where}: {word} {method!r} needs linear equations: {found.why_not_linear}"
            )
        return "exp_euler"
    if name == "exp_euler" and found.rates is None and found.linear is None:
        raise ValueError(
            f"{where}: {word} {method!r} needs every derivative affine in its own variable "
            "(dx/dt = a + b x, with b free of the inputs)"
        )
    return name
