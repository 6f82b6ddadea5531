"""The built-in models as equations: each built-in's docstring shows its equation form,
and :func:`equation_form` reads it from there, so the form a user reads is the form the
tests check against the built-in (1e-12 in float64, spike for spike)."""

from __future__ import annotations

import inspect
from typing import Any

from ..nodes import DENode

__all__ = ["equation_form"]

_OPTIONS = ("threshold", "reset", "output", "on_input", "method")


def equation_form(cls: type[DENode]) -> dict[str, Any]:
    """The keyword arguments of :func:`~rnngraph.equation_model` that build ``cls`` from
    equations: the literal block of the paragraph ``As equations ...::`` in its docstring
    (``threshold:``, ``reset:``, ``output:``, ``on_input:`` and ``method:`` lines are
    those options), its ``input_names`` as inputs, and (without a ``method:`` line) its
    default integrator as method.

    Examples
    --------
    >>> from rnngraph.nodes import LIF
    >>> LIFEquations = equation_model(**equation_form(LIF))  # doctest: +SKIP
    """
    lines = inspect.getdoc(cls).splitlines() if cls.__doc__ else []
    mark = next((k for k, line in enumerate(lines) if line.startswith("As equations")), None)
    start = next((k for k in range(mark or 0, len(lines)) if lines[k].endswith("::")), None)
    if mark is None or start is None:
        raise ValueError(f"equation_form: {cls.__name__}'s docstring shows no equation form")
    block = []
    for line in lines[start + 1 :]:
        if line.strip() and not line.startswith(" "):
            break
        block.append(line.strip())
    form: dict[str, Any] = {"inputs": tuple(cls.input_names), "name": f"{cls.__name__}Equations"}
    equations = []
    for line in filter(None, block):
        key, _, value = line.partition(":")
        if key in _OPTIONS:
            form[key] = value.strip()
        else:
            equations.append(line)
    form["equations"] = "\n".join(equations)
    form.setdefault("method", cls.default_integrator)
    return form
