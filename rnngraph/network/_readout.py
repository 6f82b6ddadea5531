r"""How ``fit_ridge`` collects its data: the readout edges it fits jointly, the runs over an
array or a list of sequences (padded batches, :mod:`._sequences`), and per-sequence
features for classification.

The edges :math:`s_i \to r` into one identity readout :math:`r` are fitted as one linear
map of the concatenated sources, :math:`\sum_i W_i x_i(t) + b = [W_1, W_2, \dots]
[x_1(t); x_2(t); \dots] + b`, the bias held by the first edge; the readout's other input
:math:`o(t)` (edges not fitted, biases left as they are) is recorded and taken off the
targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from ..observers import Observer
from ._sequences import groups, padded
from .executor import Hook

if TYPE_CHECKING:  # pragma: no cover
    from ..edges import Linear
    from ..training import Ridge
    from ._compiled import CompiledNetwork, State

#: what ``reduce=`` takes: the feature of a sequence is its value at its last step, or its
#: mean over the steps after the washout
REDUCTIONS = ("last", "mean")


@dataclass(frozen=True)
class Readout:
    """The edges fitted into one readout node, and how its data are collected: ``offset``,
    the readout has other input to take off the targets; ``forced``, its output comes back
    into the network, so the targets are fed on in its place (teacher forcing)."""

    edges: tuple[tuple[str, str], ...]
    lins: tuple[Linear, ...]
    bias: bool
    offset: bool
    forced: bool

    @property
    def node(self) -> str:
        return self.edges[0][1]

    def sources(self) -> list[str]:
        return [
            u if lin.source_var is None else f"{u}.{lin.source_var}"
            for (u, _), lin in zip(self.edges, self.lins, strict=True)
        ]

    def widths(self) -> list[int]:
        return [lin.weight.shape[1] for lin in self.lins]

    def own(self, feats: Tensor) -> Tensor:
        """The fitted edges' part of the readout's input, ``(..., n_out)``."""
        parts = torch.split(feats, self.widths(), dim=-1)
        out = sum(F.linear(p, lin.weight) for p, lin in zip(parts, self.lins, strict=True))
        return out + self.lins[0].bias if self.bias else out

    def write(self, weight: Tensor, bias: Tensor | None) -> None:
        """Copy a solution over the concatenated sources into the edges."""
        for w, lin in zip(torch.split(weight, self.widths(), dim=1), self.lins, strict=True):
            lin.weight.copy_(w.to(lin.weight.dtype))
        if self.bias:
            self.lins[0].bias.copy_(bias.to(self.lins[0].bias.dtype))


def collect(
    where: str,
    model: CompiledNetwork,
    plans: list[Readout],
    x: Tensor | None,
    y: Tensor,
    t0: int,
    t1: int,
    verbose: bool,
    start: State | None,
    hold: bool,
) -> tuple[list[Tensor], list[Tensor | None], State]:
    """Steps ``t0 .. t1`` of one run for the readouts ``plans``: each one's features
    ``(B, T_c, n_src)`` and other input ``(B, T_c, n_out)`` (``None`` without ``offset``),
    and the state at ``t1``. With ``hold`` the run continues the held state and holds its
    end, else it starts from ``start`` (``None``: the initial state); ``y`` (NaN where
    padded) is fed back when the one readout is forced."""
    names = [n for p in plans for n in p.sources() + ([p.node] if p.offset else [])]
    hooks: tuple[Hook, ...] = ()
    if plans[0].forced:  # only ever one readout (refused with several)
        tm = torch.nan_to_num(y[:, t0:t1], nan=0.0).transpose(0, 1)  # (T_c, B, n_out)
        hooks = (Hook(plans[0].node, (), lambda t: tm[t], replaces=True),)
    xc = None if x is None else x[:, t0:t1]
    steps, batch = (t1 - t0, y.shape[0]) if x is None else (None, None)
    with torch.no_grad():
        rec = model.execute(
            where, xc, Observer(list(dict.fromkeys(names))), None if hold else start, verbose,
            steps, batch_size=batch, hooks=hooks, hold=hold,
        )  # fmt: skip
    feats = [torch.cat([rec.with_batch(s) for s in p.sources()], dim=-1) for p in plans]
    other = [
        rec.with_batch(p.node) - p.own(f) if p.offset else None
        for p, f in zip(plans, feats, strict=True)
    ]
    return feats, other, rec.state


def _weights(lengths: Tensor, t0: int, t1: int, how: str, washout: int) -> Tensor:
    """``(B, t1 - t0)``: the weight of each step in a sequence's feature (``how``: the
    last step, or the mean of the steps from ``washout`` on)."""
    t = torch.arange(t0, t1, device=lengths.device)[None]
    end = lengths[:, None]
    if how == "last":
        return (t == end - 1).to(torch.float64)
    return ((t >= washout) & (t < end)).to(torch.float64) / (end - washout)


def stream(
    where: str,
    model: CompiledNetwork,
    plans: list[Readout],
    ridges: list[Ridge],
    runs: list[tuple[Tensor | None, Tensor, Tensor, bool]],
    chunk: int,
    verbose: bool,
    reduce: str | None = None,
) -> None:
    """Feed each readout's ridge from ``runs``, ``(x, y, lengths, hold)`` each, ``y`` the
    readouts' targets side by side: with ``hold`` (an array) the run continues the held
    state, else (a padded group of a list) it starts from the initial state and leaves the
    held state alone; ``lengths`` per row. Step by step the targets are ``y`` minus the
    other input; with ``reduce`` every row gives one sample, its reduced features against
    its label (``y`` at step 0, the same at every step) minus its reduced other input."""
    widths = [p.lins[0].weight.shape[0] for p in plans]
    for x, y, lengths, hold in runs:
        state, total = None, y.shape[1]
        acc: list[list[Tensor]] = [[] for _ in plans]
        for t0 in range(0, total, chunk):
            t1 = min(total, t0 + chunk)
            feats, others, state = collect(where, model, plans, x, y, t0, t1, verbose, state, hold)
            goals = torch.split(y[:, t0:t1], widths, dim=-1)
            for k, (ridge, f, other) in enumerate(zip(ridges, feats, others, strict=True)):
                if reduce is None:
                    goal = goals[k] if other is None else goals[k] - other
                    ridge.partial_fit(f, goal, washout=max(0, ridge.washout - t0))
                    continue
                w = _weights(lengths, t0, t1, reduce, ridge.washout)
                parts = [f] if other is None else [f, other]
                sums = [torch.einsum("bt,btn->bn", w, p.to(torch.float64)) for p in parts]
                acc[k] = sums if not acc[k] else [a + s for a, s in zip(acc[k], sums, strict=True)]
        if reduce is not None:
            labels = torch.split(y[:, 0].to(torch.float64), widths, dim=-1)
            for ridge, a, label in zip(ridges, acc, labels, strict=True):
                goal = label if len(a) == 1 else label - a[1]
                ridge.partial_fit(a[0][:, None], goal[:, None], washout=0)


def list_runs(
    xs: list[Tensor | None], ys: list[Tensor], budget: int
) -> list[tuple[Tensor | None, Tensor, Tensor, bool]]:
    """The padded groups of a list of ``(B_k, T_k, .)`` sequences, ``(x, y, lengths)``
    each: inputs padded with zeros (``None`` without input), targets with NaN (left out of
    the fit), the length of each row. Rows keep the order of the list within a group;
    the groups follow their lengths."""
    runs = []
    for group in groups([y.shape[1] for y in ys], [y.shape[0] for y in ys], budget):
        y, spans = padded([ys[k] for k in group], float("nan"))
        x = None if xs[group[0]] is None else padded([xs[k] for k in group])[0]
        lengths = torch.empty(y.shape[0], dtype=torch.int64, device=y.device)
        for k, rows in zip(group, spans, strict=True):
            lengths[rows] = ys[k].shape[1]
        runs.append((x, y, lengths, False))
    return runs
