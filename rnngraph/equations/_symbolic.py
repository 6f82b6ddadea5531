"""Symbolic passes over parsed expressions: names, substitution, the affine form in one
variable, and dimensions.

Every pass works on the syntax trees of :mod:`rnngraph.equations._expr` (trees of its small
language only) and returns new trees, never code: what a pass builds is compiled by
:func:`~rnngraph.equations._expr.compile_tree` like any parsed expression.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable, Mapping
from typing import NamedTuple

from ..units import Dimension, DimensionError, dimensionless
from ._expr import compile_tree

__all__ = ["Affine", "affine", "dimension", "names_in", "substitute"]

ONE = ast.Constant(1.0)


def names_in(tree: ast.AST) -> set[str]:
    """The variable names ``tree`` reads (function names excluded)."""
    funcs = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in funcs}


class _Substitute(ast.NodeTransformer):
    def __init__(self, mapping: Mapping[str, ast.AST]) -> None:
        self.mapping = mapping

    def visit_Call(self, node: ast.Call) -> ast.AST:
        node.args = [self.visit(a) for a in node.args]  # the function's name stays
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        new = self.mapping.get(node.id)
        return node if new is None else copy.deepcopy(new)


def substitute(tree: ast.AST, mapping: Mapping[str, ast.AST]) -> ast.AST:
    """``tree`` with each name of ``mapping`` replaced by its tree (a copy of each)."""
    return _Substitute(mapping).visit(copy.deepcopy(tree))


class Affine(NamedTuple):
    """``tree == (a + b x) / d`` with ``a``, ``b`` and ``d`` free of ``x``; ``None`` stands
    for a zero ``a`` or ``b`` and for a denominator of one."""

    a: ast.AST | None
    b: ast.AST | None
    d: ast.AST | None = None

    def flat(self) -> tuple[ast.AST | None, ast.AST | None]:
        """``(a/d, b/d)``."""
        return _div(self.a, self.d), _div(self.b, self.d)


def _bin(op: ast.operator, x: ast.AST, y: ast.AST) -> ast.AST:
    return ast.BinOp(x, op, y)


def _neg(x: ast.AST | None) -> ast.AST | None:
    if x is None:
        return None
    if isinstance(x, ast.UnaryOp) and isinstance(x.op, ast.USub):
        return x.operand
    return ast.UnaryOp(ast.USub(), x)


def _add(x: ast.AST | None, y: ast.AST | None, sub: bool = False) -> ast.AST | None:
    if y is None:
        return x
    if x is None:
        return _neg(y) if sub else y
    return _bin(ast.Sub() if sub else ast.Add(), x, y)


def _mul(k: ast.AST, x: ast.AST | None) -> ast.AST | None:
    return None if x is None else _bin(ast.Mult(), k, x)


def _div(x: ast.AST | None, d: ast.AST | None) -> ast.AST | None:
    return x if x is None or d is None else _bin(ast.Div(), x, d)


def affine(tree: ast.AST, x: str) -> Affine | None:
    """``tree`` as :class:`Affine` in the variable ``x``, or ``None`` when it is not affine
    in ``x`` (found by structure: products and quotients of ``x`` with ``x``-free factors,
    sums, signs; a power or a function of ``x`` is not affine)."""
    if x not in names_in(tree):
        return Affine(tree, None)
    if isinstance(tree, ast.Name):
        return Affine(None, ONE)
    if isinstance(tree, ast.UnaryOp):
        part = affine(tree.operand, x)
        if part is None or isinstance(tree.op, ast.UAdd):
            return part
        return Affine(_neg(part.a), _neg(part.b), part.d)
    if not isinstance(tree, ast.BinOp):
        return None
    left, right = tree.left, tree.right
    if isinstance(tree.op, ast.Add | ast.Sub):
        p, q = affine(left, x), affine(right, x)
        if p is None or q is None:
            return None
        sub = isinstance(tree.op, ast.Sub)
        if p.d is None and q.d is None:
            return Affine(_add(p.a, q.a, sub), _add(p.b, q.b, sub))
        (pa, pb), (qa, qb) = p.flat(), q.flat()
        return Affine(_add(pa, qa, sub), _add(pb, qb, sub))
    if isinstance(tree.op, ast.Mult):
        free, other = (left, right) if x not in names_in(left) else (right, left)
        if x in names_in(free):
            return None
        part = affine(other, x)
        return None if part is None else Affine(_mul(free, part.a), _mul(free, part.b), part.d)
    if isinstance(tree.op, ast.Div) and x not in names_in(right):
        part = affine(left, x)
        if part is None:
            return None
        d = right if part.d is None else _bin(ast.Mult(), part.d, right)
        return Affine(part.a, part.b, d)
    return None


#: functions whose result has their argument's dimension; every other function takes and
#: gives a dimensionless number (``sqrt`` halves the dimension)
_KEEP_DIMENSION = ("abs", "floor", "ceil", "clip", "mean")


def dimension(
    tree: ast.AST, of: Callable[[str], Dimension], say: Callable[[ast.AST], str]
) -> Dimension:
    """The dimension of ``tree``, each name's from ``of``; a mismatch raises
    :class:`~rnngraph.units.DimensionError` with ``say(term)`` naming the terms."""

    def dim(t: ast.AST) -> Dimension:
        if isinstance(t, ast.Constant):
            return dimensionless
        if isinstance(t, ast.Name):
            return of(t.id)
        if isinstance(t, ast.UnaryOp):
            return dim(t.operand)
        if isinstance(t, ast.Compare):
            return _same(t.left, t.comparators[0], "compare")
        if isinstance(t, ast.Call):
            return _call(t)
        if isinstance(t.op, ast.Add | ast.Sub):
            return _same(t.left, t.right, "add")
        if isinstance(t.op, ast.Mult):
            return dim(t.left) * dim(t.right)
        if isinstance(t.op, ast.Div):
            return dim(t.left) / dim(t.right)
        return _power(t)

    def _same(a: ast.AST, b: ast.AST, op: str) -> Dimension:
        da, db = dim(a), dim(b)
        if da != db:
            raise DimensionError(
                f"cannot {op} {say(a)} (dimension {da}) and {say(b)} (dimension {db})"
            )
        return da

    def _dimensionless(t: ast.AST, what: str) -> None:
        d = dim(t)
        if not d.is_dimensionless:
            raise DimensionError(f"{what} {say(t)} must be dimensionless, has dimension {d}")

    def _call(t: ast.Call) -> Dimension:
        name = t.func.id
        if name == "sqrt":
            return dim(t.args[0]) ** 0.5
        if name == "clip":
            return _same(_same_node(t.args[0], t.args[1], "clip"), t.args[2], "clip")
        if name in ("minimum", "maximum"):
            return _same(t.args[0], t.args[1], name)
        if name in _KEEP_DIMENSION:
            return dim(t.args[0])
        if name == "sign":  # of a value of any dimension: -1, 0 or 1
            dim(t.args[0])
            return dimensionless
        _dimensionless(t.args[0], f"the argument of {name}():")
        return dimensionless

    def _same_node(a: ast.AST, b: ast.AST, op: str) -> ast.AST:
        _same(a, b, op)
        return a

    def _power(t: ast.BinOp) -> Dimension:
        base = dim(t.left)
        _dimensionless(t.right, "the exponent")
        if base.is_dimensionless:
            return base
        if names_in(t.right):
            raise DimensionError(
                f"the exponent of {say(t)} must be a number: its base has dimension {base}"
            )
        return base ** compile_tree("exponent", ast.unparse(t.right), t.right)({})

    return dim(tree)
