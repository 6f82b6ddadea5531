r"""Brian2's equation syntax, read line by line.

Each line is one of::

    dv/dt = (v_rest - v + R*I) / tau : volt (unless refractory)   # a differential equation
    I_syn = g * (E - v) : amp                                     # a subexpression
    tau : second                                                  # a parameter (or an input)

An expression may continue on the next lines: a line ends where its ``: unit`` comes.
``#`` starts a comment. The unit is a product of SI base units (``volt``, ``amp/metre**2``,
``1`` for none; values are stored in SI units, so ``mV`` as a declared unit is refused).
The flags ``(unless refractory)`` and ``(constant)`` are honoured; every other flag is
refused by name.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from ..units import UNITS, Dimension, dimensionless
from ._expr import Expression, parse_expression
from ._symbolic import names_in, substitute

__all__ = ["Equations", "Line"]

#: the flags a line may carry
FLAGS = ("unless refractory", "constant")
_DIFF = re.compile(r"d([A-Za-z_]\w*)\s*/\s*dt")
_NAME = re.compile(r"[A-Za-z_]\w*")
_FLAGS_ONLY = re.compile(r"\([^()]*\)")
_TAIL = re.compile(r"\s*(?P<unit>[^()]*?)\s*(?:\((?P<flags>[^()]*)\))?\s*")


@dataclass(frozen=True)
class Line:
    """One line: ``kind`` is ``"diff"`` (``dname/dt = expr``), ``"sub"`` (``name = expr``)
    or ``"param"`` (``name : unit``); ``dim`` is the declared dimension."""

    kind: str
    name: str
    expr: Expression | None
    dim: Dimension
    unit: str
    flags: frozenset[str]
    text: str

    def __str__(self) -> str:
        flags = f" ({', '.join(sorted(self.flags))})" if self.flags else ""
        return f"{self.text.strip()}{flags}" if ":" in self.text else self.text


def _physical_lines(text: str) -> list[str]:
    """The logical lines of ``text``: comments dropped, continuations joined (an
    expression continues until its ``: unit``; a line of flags alone belongs to the line
    before it)."""
    out: list[str] = []
    buffer = ""
    for raw in text.splitlines():
        part = raw.split("#", 1)[0].strip()
        if not part:
            continue
        if not buffer and out and _FLAGS_ONLY.fullmatch(part):
            out[-1] = f"{out[-1]} {part}"
            continue
        buffer = f"{buffer} {part}".strip()
        if ":" in buffer:
            out.append(buffer)
            buffer = ""
    if buffer:
        raise ValueError(
            f"Equations: {buffer!r} has no unit: every line ends with ': unit' (': 1' for a "
            "dimensionless variable)"
        )
    return out


def _unit(where: str, text: str) -> Dimension:
    """The dimension of a declared unit (a product of unscaled units, or ``1``)."""
    if text in ("boolean", "integer"):
        raise ValueError(f"{where}: type {text!r} is not supported: variables are real numbers")
    expr = parse_expression(where, text)
    unknown = sorted(n for n in names_in(expr.tree) if n not in UNITS)
    if unknown:
        raise ValueError(f"{where}: {unknown} in the unit {text!r} are not unit names")
    value = expr.evaluate(UNITS)
    scale = value.value if hasattr(value, "value") else value
    if abs(scale - 1.0) > 1e-12:
        raise ValueError(
            f"{where}: declare the unit {text!r} in unscaled form (e.g. volt, not mV): values "
            f"are kept in SI units"
        )
    return value.dim if hasattr(value, "dim") else dimensionless


def _line(text: str) -> Line:
    body, _, tail = text.rpartition(":")
    where = f"Equations: {text!r}"
    m = _TAIL.fullmatch(tail)
    if m is None or not m.group("unit"):
        raise ValueError(f"{where}: expected ': unit' or ': unit (flags)' at the end")
    unit = m.group("unit")
    flags = frozenset(f.strip() for f in (m.group("flags") or "").split(",") if f.strip())
    unknown = sorted(flags - set(FLAGS))
    if unknown:
        raise ValueError(f"{where}: unknown flag(s) {unknown}; supported flags are {list(FLAGS)}")
    dim = _unit(where, unit)
    lhs, eq, rhs = body.partition("=")
    lhs = lhs.strip()
    if not eq:
        if not _NAME.fullmatch(lhs):
            raise ValueError(f"{where}: expected a parameter name before ':', got {lhs!r}")
        return Line("param", lhs, None, dim, unit, flags, text)
    diff = _DIFF.fullmatch(lhs)
    if diff is None and not _NAME.fullmatch(lhs):
        raise ValueError(
            f"{where}: the left-hand side {lhs!r} is neither 'dx/dt' nor a name (higher "
            "derivatives: write first-order equations)"
        )
    expr = parse_expression(where, rhs)
    kind, name = ("diff", diff.group(1)) if diff else ("sub", lhs)
    if "unless refractory" in flags and kind != "diff":
        raise ValueError(f"{where}: '(unless refractory)' goes with a differential equation")
    if "constant" in flags:
        raise ValueError(f"{where}: '(constant)' goes with a parameter line ('p : unit')")
    return Line(kind, name, expr, dim, unit, flags, text)


class Equations:
    r"""Equations in Brian2's syntax (see the module docstring), parsed and checked.

    Parameters
    ----------
    text : str
        The equations, one per line.
    **renames : str
        Names to replace, as Brian2's ``Equations(text, vm="v")``: every whole-word ``vm``
        becomes ``v`` (a spiking model's membrane is named ``v``).

    Attributes
    ----------
    lines : tuple of Line
        In the order given.
    diff_names : tuple of str
        The variables of the differential equations, in order (the model's state).
    sub_names, param_names : tuple of str
        The subexpressions (in order) and the declared parameters.

    Examples
    --------
    >>> eqs = Equations('''
    ...     dv/dt = (v_rest - v + R*I) / tau : volt (unless refractory)
    ...     I : amp
    ... ''')
    >>> eqs.diff_names, eqs.param_names
    (('v',), ('I',))
    """

    def __init__(self, text: str, **renames: str) -> None:
        if isinstance(text, Equations):
            text = text.text
        if not isinstance(text, str):
            raise TypeError(f"Equations: expected the equations as a string, got {text!r}")
        for old, new in renames.items():
            if not isinstance(new, str) or not new.isidentifier():
                raise ValueError(f"Equations: {old}= must give a new name, got {new!r}")
            name = re.escape(old)
            text = re.sub(rf"(?<![\w.])d{name}(\s*/\s*dt)(?!\w)", rf"d{new}\1", text)
            text = re.sub(rf"(?<![\w.]){name}(?!\w)", new, text)
        self.text = text
        self.lines = tuple(_line(t) for t in _physical_lines(text))
        if not self.lines:
            raise ValueError("Equations: no equations in the text")
        seen: set[str] = set()
        for line in self.lines:
            if line.name in seen:
                raise ValueError(f"Equations: {line.name!r} is defined twice")
            seen.add(line.name)
        self.diff_names = tuple(x.name for x in self.lines if x.kind == "diff")
        self.sub_names = tuple(x.name for x in self.lines if x.kind == "sub")
        self.param_names = tuple(x.name for x in self.lines if x.kind == "param")
        self._check_subexpressions()

    def __getitem__(self, name: str) -> Line:
        for line in self.lines:
            if line.name == name:
                return line
        raise KeyError(f"Equations: no line defines {name!r}")

    def _check_subexpressions(self) -> None:
        """Each subexpression reads only the subexpressions above it (no cycle)."""
        for k, name in enumerate(self.sub_names):
            later = set(self.sub_names[k:]) & names_in(self[name].expr.tree)
            if later:
                raise ValueError(
                    f"Equations: the subexpression {name!r} reads {sorted(later)}, defined "
                    "below it (or itself): order subexpressions so that each reads only "
                    "those above it"
                )

    def names(self) -> set[str]:
        """Every name the expressions read."""
        return set().union(*(names_in(x.expr.tree) for x in self.lines if x.expr is not None))

    def inlined(self, tree: ast.AST) -> ast.AST:
        """``tree`` with every subexpression replaced by its definition."""
        for name in reversed(self.sub_names):
            tree = substitute(tree, {name: self[name].expr.tree})
        return tree

    def __str__(self) -> str:
        return "\n".join(line.text for line in self.lines)

    def __repr__(self) -> str:
        return f"Equations({self.text!r})"
