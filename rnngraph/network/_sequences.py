"""Sequences as the calls read them: one array, or a list of sequences of their own lengths,
run together in batches padded to the longest of each batch.

A network is causal: its values at step ``t`` depend on the inputs up to ``t`` only, so a
sequence padded at its end gives, over its own steps, what it gives alone. A list therefore
runs sorted by length, in groups of rows that share one padded pass, and each sequence keeps
its own steps of the result.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from .._checks import all_finite, as_tensor
from ..observers import Observer, Recordings

if TYPE_CHECKING:  # pragma: no cover
    from ._compiled import CompiledNetwork, State

#: padded steps (rows x longest length) a group of a list run holds; a longer sequence runs
#: alone
GROUP_STEPS = 1 << 16

#: the most padding a group holds, as a fraction of its steps: more groups cost a pass each,
#: more padding costs the steps
PADDING = 0.1

#: why a recording of one sequence of a list run has no final state
NO_STATE = (
    "a run over a list of sequences holds no final states (the sequences run together, "
    "padded in groups of similar lengths); run one sequence to continue from its end"
)


def _numbers(a: Any) -> bool:
    """Whether ``a`` is a number or a non-empty nested list (or tuple) whose leaves are all
    numbers: one array, as ``run`` reads it."""
    if isinstance(a, list | tuple):
        return bool(a) and all(_numbers(v) for v in a)
    return isinstance(a, numbers.Number | np.bool_)


def is_sequence_list(a: Any) -> bool:
    """Whether ``a`` is a list of sequences: a list or tuple that is not one nested list of
    numbers, read as one array as ``run`` reads it."""
    return isinstance(a, list | tuple) and not _numbers(a)


def raw_tensor(where: str, name: str, a: Any) -> Tensor:
    """``a`` (a nested sequence, a NumPy array of any strides or a tensor) as a tensor of
    real numbers by the library's conversion of array-likes (``rnngraph._checks.as_tensor``,
    the one ``run`` uses), without changing its dtype or copying a tensor."""
    if a is None:
        raise TypeError(f"{where}: {name} must be an array of real numbers, got None")
    try:
        return as_tensor(where, name, a, copy=False)
    except TypeError as err:
        if not (isinstance(a, list | tuple) and _numbers(a)):
            raise
        raise TypeError(
            f"{err}; a nested list of numbers is one array, as Network.run reads it: pass "
            "a list of sequences as a list of arrays or tensors"
        ) from None


def as_sequence_tensor(
    where: str, name: str, a: Any, dtype: torch.dtype, device: Any, nan: bool = False
) -> Tensor:
    """``a`` as a ``(T, n)`` or ``(B, T, n)`` tensor of ``dtype`` on ``device`` (``(T,)``
    becomes ``(T, 1)``), with at least one trial and one step, every value finite (with
    ``nan``, NaN allowed: a target left out)."""
    t = raw_tensor(where, name, a)
    if t.dim() == 1:
        t = t.unsqueeze(-1)
    if t.dim() not in (2, 3):
        raise ValueError(f"{where}: {name} must be (T, n) or (B, T, n), got shape {tuple(t.shape)}")
    if 0 in t.shape[:-1]:
        raise ValueError(
            f"{where}: {name} are empty (shape {tuple(t.shape)}); expected at least one trial "
            "and one step"
        )
    t = t.to(device=device, dtype=dtype)
    if nan and t.is_floating_point():
        if bool(t.isinf().any()):
            raise ValueError(f"{where}: {name} contain inf values (a NaN target is left out)")
    elif not all_finite(t):
        raise ValueError(f"{where}: {name} contain NaN or inf values")
    return t


def groups(lengths: list[int], rows: list[int], budget: int = GROUP_STEPS) -> list[list[int]]:
    """The indices of the sequences in the groups that run together: by increasing length,
    consecutive ones while rows x longest length stays within ``budget`` (a sequence over
    it runs alone) and the padding within ``PADDING`` of the group's steps."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    out: list[list[int]] = []
    group: list[int] = []
    count = steps = 0
    for k in order:
        padded_steps = (count + rows[k]) * lengths[k]
        own = steps + rows[k] * lengths[k]
        if group and (padded_steps > budget or own < (1.0 - PADDING) * padded_steps):
            out.append(group)
            group, count, steps = [], 0, 0
        group.append(k)
        count += rows[k]
        steps += rows[k] * lengths[k]
    return out + [group] if group else out


def padded(parts: list[Tensor], fill: float = 0.0) -> tuple[Tensor, list[slice]]:
    """``(B, T, n)`` sequences stacked along the batch into one ``(sum B, max T, n)`` tensor,
    the steps after each one's end set to ``fill``; and the rows of each."""
    length = max(p.shape[1] for p in parts)
    out = parts[0].new_full((sum(p.shape[0] for p in parts), length, parts[0].shape[-1]), fill)
    spans, r = [], 0
    for p in parts:
        out[r : r + p.shape[0], : p.shape[1]] = p
        spans.append(slice(r, r + p.shape[0]))
        r += p.shape[0]
    return out, spans


def check_start(where: str, state: State | None) -> None:
    """A list run starts every sequence from one state: ``state`` must have batch 1."""
    if state and not all(isinstance(v, Tensor) and v.shape[:1] == (1,) for v in state.values()):
        raise ValueError(
            f"{where}: a run over a list of sequences starts every sequence from state=, "
            "which must then have batch 1 (the state of one trial)"
        )


def run_list(
    where: str,
    model: CompiledNetwork,
    inputs: list | tuple,
    observer: Observer | None,
    state: State | None,
    progress: bool,
) -> Recordings:
    """Run ``model`` over a list of input sequences, each from ``state`` (default: the
    initial state), leaving the held state as it was; one recording per sequence."""
    if not inputs:
        raise ValueError(f"{where}: no sequences: an empty {type(inputs).__name__}")
    check_start(where, state)
    xs, layouts = [], []
    for k, seq in enumerate(inputs):
        x, batched = model.as_input(f"{where} (sequence {k})", seq)
        xs.append(x)
        layouts.append(batched)
    recs: list[Any] = [None] * len(xs)
    for group in groups([x.shape[1] for x in xs], [x.shape[0] for x in xs]):
        x, spans = padded([xs[k] for k in group])
        rec = model.execute(where, x, observer, state, progress, None, hold=False)
        for k, rows in zip(group, spans, strict=True):
            recs[k] = rec.part(rows, xs[k].shape[1], layouts[k], NO_STATE)
    return Recordings(recs)
