"""Expressions and equations given as text, read without ``eval``.

An expression is parsed by Python's ``ast`` module and accepted only when every part of it
belongs to a small arithmetic language: numbers, names, ``+ - * / **`` (``^`` is a power, as
in PyRates), unary signs, calls of the functions in :data:`FUNCTIONS` and, where the caller
allows it (a threshold), one comparison. The accepted tree is turned into nested closures
over torch operations (nothing is executed as code), so a model built from it is batched,
runs on any device and carries gradients like a built-in. The tree itself is kept
(:attr:`Expression.tree`) for the symbolic passes of :mod:`rnngraph.equations._symbolic`.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "FUNCTIONS",
    "Equation",
    "Expression",
    "compile_tree",
    "parse_equation",
    "parse_expression",
]


def _exprel(x: Any) -> Any:
    """:math:`(e^x - 1)/x`, 1 at :math:`x = 0` (Brian2's ``exprel``); near 0 its Taylor
    series :math:`1 + x/2 + x^2/6` (error below :math:`x^3/24`, under ``1e-16`` for
    :math:`|x| < 10^{-5}`), so its value and gradient (:math:`1/2` at 0) are right there."""
    small = x.abs() < 1e-5
    safe = torch.where(small, torch.ones_like(x), x)
    return torch.where(small, 1.0 + x / 2.0 + x * x / 6.0, torch.expm1(safe) / safe)


def _clip(x: Any, lo: Any, hi: Any) -> Any:
    """``x`` limited to ``[lo, hi]`` (Brian2's ``clip``)."""
    lo, hi = torch.as_tensor(lo, dtype=x.dtype), torch.as_tensor(hi, dtype=x.dtype)
    return torch.minimum(torch.maximum(x, lo.to(x.device)), hi.to(x.device))


#: The functions an expression may call (Brian2's and PyRates' names), each with its number
#: of arguments.
FUNCTIONS: Mapping[str, tuple[Callable, int]] = {
    "exp": (torch.exp, 1),
    "log": (torch.log, 1),
    "log10": (torch.log10, 1),
    "sqrt": (torch.sqrt, 1),
    "abs": (torch.abs, 1),
    "sign": (torch.sign, 1),
    "floor": (torch.floor, 1),
    "ceil": (torch.ceil, 1),
    "tanh": (torch.tanh, 1),
    "sinh": (torch.sinh, 1),
    "cosh": (torch.cosh, 1),
    "sin": (torch.sin, 1),
    "cos": (torch.cos, 1),
    "tan": (torch.tan, 1),
    "arcsin": (torch.asin, 1),
    "arccos": (torch.acos, 1),
    "arctan": (torch.atan, 1),
    "sigmoid": (torch.sigmoid, 1),
    "exprel": (_exprel, 1),
    "clip": (_clip, 3),
    "minimum": (torch.minimum, 2),
    "maximum": (torch.maximum, 2),
    "mean": (lambda x: x.mean(-1, keepdim=True), 1),  # over the units of the population
}
#: the functions that reduce over the units (the others act on each unit alone)
REDUCTIONS = frozenset({"mean"})

_BINARY: Mapping[type, Callable] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.BitXor: operator.pow,  # PyRates' ``^``
}
_UNARY: Mapping[type, Callable] = {ast.USub: operator.neg, ast.UAdd: operator.pos}
#: the comparisons a threshold may make
COMPARISONS: Mapping[type, Callable] = {
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
}

Env = Mapping[str, Any]


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its text, the names it reads, ``evaluate(env)`` (its value with
    each name taken from ``env``) and its syntax tree."""

    text: str
    names: frozenset[str]
    evaluate: Callable[[Env], Any]
    tree: ast.AST


@dataclass(frozen=True)
class Equation:
    """``target' = rhs`` (``derivative``) or ``target = rhs`` (an algebraic variable)."""

    target: str
    derivative: bool
    rhs: Expression


def parse_expression(where: str, text: str, compare: bool = False) -> Expression:
    """The expression ``text`` (see the module docstring for what it may contain); with
    ``compare``, one comparison ``a > b`` (``>=``, ``<``, ``<=``) is allowed at the top."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{where}: expected an expression as a non-empty string, got {text!r}")
    try:
        tree = ast.parse(text.strip().replace("^", "**"), mode="eval").body
        _check_depth(where, text, tree)
        names: set[str] = set()
        if compare and isinstance(tree, ast.Compare):
            evaluate = _compare(where, text, tree, names)
        else:
            evaluate = _build(where, text, tree, names)
    except SyntaxError as e:
        raise ValueError(f"{where}: cannot read {text!r} as an expression ({e.msg})") from None
    except RecursionError:
        raise ValueError(f"{where}: {text[:60]!r}... is nested too deeply") from None
    return Expression(text, frozenset(names), evaluate, tree)


#: the deepest nesting of an expression (a sum of ``k`` terms nests ``k - 1`` levels)
MAX_DEPTH = 100


def _check_depth(where: str, text: str, tree: ast.AST) -> None:
    """Refuse an expression nested deeper than :data:`MAX_DEPTH` (its symbolic passes and
    closures recurse once per level)."""
    level, depth = [(tree, 1)], 0
    while level:
        node, d = level.pop()
        depth = max(depth, d)
        level.extend((c, d + 1) for c in ast.iter_child_nodes(node) if isinstance(c, ast.expr))
    if depth > MAX_DEPTH:
        raise ValueError(
            f"{where}: {text[:60]!r}... nests {depth} levels deep, more than the "
            f"{MAX_DEPTH} an expression may; split it into subexpressions (lines "
            "'s1 = a0 + ... + a49 : unit')"
        )


def compile_tree(where: str, text: str, tree: ast.AST) -> Callable[[Env], Any]:
    """The closure computing ``tree`` (a tree of the language, e.g. one a symbolic pass
    built from parsed ones); ``text`` names it in errors."""
    try:
        return _build(where, text, tree, set())
    except RecursionError:
        raise ValueError(f"{where}: {text[:60]!r}... is nested too deeply") from None


def _compare(where: str, text: str, tree: ast.Compare, names: set[str]) -> Callable:
    if len(tree.ops) != 1 or type(tree.ops[0]) not in COMPARISONS:
        raise ValueError(
            f"{where}: {text!r}: expected one comparison (>, >=, <, <=) of two expressions"
        )
    op = COMPARISONS[type(tree.ops[0])]
    a = _build(where, text, tree.left, names)
    b = _build(where, text, tree.comparators[0], names)
    return lambda env: op(a(env), b(env))


_DERIVATIVE = (
    re.compile(r"\s*d/dt\s*\*?\s*([A-Za-z_]\w*)\s*"),  # d/dt * v
    re.compile(r"\s*([A-Za-z_]\w*)\s*'\s*"),  # v'
)
_ALGEBRAIC = re.compile(r"\s*([A-Za-z_]\w*)\s*")


def parse_equation(where: str, text: str) -> Equation:
    """An equation ``v' = ...``, ``d/dt * v = ...`` or ``r = ...``."""
    if not isinstance(text, str) or text.count("=") != 1:
        raise ValueError(
            f"{where}: expected an equation 'v' = ...', 'd/dt * v = ...' or 'r = ...' "
            f"(one '='), got {text!r}"
        )
    lhs, rhs = text.split("=")
    for pattern in _DERIVATIVE:
        m = pattern.fullmatch(lhs)
        if m:
            return Equation(m.group(1), True, parse_expression(where, rhs))
    m = _ALGEBRAIC.fullmatch(lhs)
    if m is None:
        raise ValueError(
            f"{where}: the left-hand side of {text!r} is neither a derivative (v', "
            f"d/dt * v) nor a variable name (higher derivatives: write first-order equations)"
        )
    return Equation(m.group(1), False, parse_expression(where, rhs))


def _build(where: str, text: str, node: ast.AST, names: set[str]) -> Callable[[Env], Any]:
    """The closure computing ``node``, after checking that it belongs to the language."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        value = float(node.value)
        return lambda env: value
    if isinstance(node, ast.Name):
        name = node.id
        names.add(name)
        return lambda env: env[name]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        op = _BINARY[type(node.op)]
        a, b = _build(where, text, node.left, names), _build(where, text, node.right, names)
        if isinstance(node.left, ast.Constant) and isinstance(node.right, ast.Constant):
            try:  # numbers alone: computed once, here
                value = float(op(a({}), b({})))
            except (OverflowError, ZeroDivisionError) as e:
                raise ValueError(f"{where}: {text!r}: {ast.unparse(node)} gives {e}") from None
            return lambda env: value
        return lambda env: op(a(env), b(env))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        op, a = _UNARY[type(node.op)], _build(where, text, node.operand, names)
        return lambda env: op(a(env))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        f, arity = FUNCTIONS.get(node.func.id, (None, 0))
        if f is None:
            raise ValueError(
                f"{where}: {text!r} calls {node.func.id}(), which is not one of the known "
                f"functions {sorted(FUNCTIONS)}"
            )
        if len(node.args) != arity:
            raise ValueError(
                f"{where}: {text!r}: {node.func.id}() takes {arity} argument"
                f"{'s' if arity > 1 else ''}, got {len(node.args)}"
            )
        args = [_build(where, text, a, names) for a in node.args]
        return lambda env: _call(f, [a(env) for a in args])
    raise ValueError(
        f"{where}: {text!r} contains {ast.unparse(node)!r}, which is not allowed: an "
        f"expression holds numbers, names, + - * / ^ **, signs and calls of "
        f"{sorted(FUNCTIONS)}"
    )


def _call(f: Callable, args: list) -> Any:
    """``f(*args)``; on numbers alone the result stays a Python number (computed in
    float64), else every number becomes a tensor like the first tensor argument."""
    like = next((a for a in args if isinstance(a, torch.Tensor)), None)
    if like is None:
        return float(f(*(torch.tensor(a, dtype=torch.float64) for a in args)))
    return f(*(a if isinstance(a, torch.Tensor) else torch.as_tensor(a, dtype=like.dtype,
               device=like.device) for a in args))  # fmt: skip
