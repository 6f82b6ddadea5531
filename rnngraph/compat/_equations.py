"""Equations given as text (PyRates' templates), read without ``eval``.

An expression is parsed by Python's ``ast`` module and accepted only when every part of it
belongs to a small arithmetic language: numbers, names, ``+ - * / **`` (``^`` is a power, as
in PyRates), unary signs, and calls of the functions in :data:`FUNCTIONS`. The accepted tree
is turned into nested closures over torch operations (nothing is executed as code), so a
model built from it is batched, runs on any device and carries gradients like a built-in.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["FUNCTIONS", "Equation", "Expression", "parse_equation", "parse_expression"]

#: The functions an expression may call, by their PyRates names.
FUNCTIONS: Mapping[str, Callable] = {
    "exp": torch.exp,
    "log": torch.log,
    "sqrt": torch.sqrt,
    "abs": torch.abs,
    "tanh": torch.tanh,
    "sinh": torch.sinh,
    "cosh": torch.cosh,
    "sin": torch.sin,
    "cos": torch.cos,
    "tan": torch.tan,
    "arctan": torch.atan,
    "sigmoid": torch.sigmoid,
    "mean": lambda x: x.mean(-1, keepdim=True),  # over the units of the population
}

_BINARY: Mapping[type, Callable] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.BitXor: operator.pow,  # PyRates' ``^``
}
_UNARY: Mapping[type, Callable] = {ast.USub: operator.neg, ast.UAdd: operator.pos}

Env = Mapping[str, Any]


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its text, the names it reads, and ``evaluate(env)``, its value
    with each name taken from ``env``."""

    text: str
    names: frozenset[str]
    evaluate: Callable[[Env], Any]


@dataclass(frozen=True)
class Equation:
    """``target' = rhs`` (``derivative``) or ``target = rhs`` (an algebraic variable)."""

    target: str
    derivative: bool
    rhs: Expression


def parse_expression(where: str, text: str) -> Expression:
    """The expression ``text`` (see the module docstring for what it may contain)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{where}: expected an expression as a non-empty string, got {text!r}")
    names: set[str] = set()
    try:
        tree = ast.parse(text.strip().replace("^", "**"), mode="eval")
        evaluate = _build(where, text, tree.body, names)
    except SyntaxError as e:
        raise ValueError(f"{where}: cannot read {text!r} as an expression ({e.msg})") from None
    except RecursionError:
        raise ValueError(f"{where}: {text[:60]!r}... is nested too deeply") from None
    return Expression(text, frozenset(names), evaluate)


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
        f = FUNCTIONS.get(node.func.id)
        if f is None:
            raise ValueError(
                f"{where}: {text!r} calls {node.func.id}(), which is not one of the known "
                f"functions {sorted(FUNCTIONS)}"
            )
        if len(node.args) != 1:
            raise ValueError(f"{where}: {text!r}: {node.func.id}() takes one argument")
        a = _build(where, text, node.args[0], names)
        return lambda env: _call(f, a(env))
    raise ValueError(
        f"{where}: {text!r} contains {ast.unparse(node)!r}, which is not allowed: an "
        f"expression holds numbers, names, + - * / ^ **, signs and calls of "
        f"{sorted(FUNCTIONS)}"
    )


def _call(f: Callable, x: Any) -> Any:
    """``f(x)``; a number stays a Python number (computed in float64)."""
    if isinstance(x, torch.Tensor):
        return f(x)
    return float(f(torch.tensor(x, dtype=torch.float64)))
