"""The executor's interface to trainers: hooks the time loop calls at every step.

Trainers (``rnngraph.training``) drive a compiled network through its plan
(``CompiledNetwork.plan``) and its executor API (``CompiledNetwork.execute``, ``as_input``,
``initial_state``, ``init_state``), passing :class:`Hook` objects that read values inside
the time loop, replace a node's output (teacher forcing) or change weights in place (RLS).
This module sits below both, so that trainers need not import the network package.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._checks import as_flag, as_names, describe

__all__ = ["Hook", "HookSpec"]


HookSpec = tuple[str, tuple[str, ...], bool, tuple[str, ...], bool]


@dataclass(frozen=True)
class Hook:
    """A function the time loop calls at every step, right after ``node`` is computed.

    ``fn(t, *values)`` receives the global step index and the values named in ``reads``:
    ``"node"`` (a node's output of this step), ``"node.var"`` (a state variable after this
    step), ``"node:input"`` (what a dynamic node received on that input this step: the sum
    of its edges) or ``"src->tgt"`` (what that edge reads this step, its delay included). Nodes
    read must come no later than ``node`` in the compiled order. With ``replaces=True`` the
    return value is passed on instead of ``node``'s output (to downstream edges and delay
    lines; recordings keep the node's own output): teacher forcing, for example. With
    ``recorded=True`` as well, the return value becomes the node's output of the step, also
    in recordings and the run's output (an RLS readout passing on the output of its updated
    weights).
    ``writes`` names the edges (``"src->tgt"``) whose weights or bias ``fn`` changes in
    place during the run: the loop then reads them afresh at every step instead of a copy
    made when the run starts (no event-driven copy of the weights, no bias folded into the
    precomputed input). Edges leaving a static node cannot be written: their products are
    computed before the loop. Trainers use hooks to update weights inside the loop (RLS) or to
    carry eligibility traces (e-prop).
    ``rule`` ``("intrinsic", start)`` says that ``fn`` applies the intrinsic-plasticity rule
    ``node`` declares (:class:`~rnngraph.nodes.GainMap`) at every step from the run's
    ``start``-th, and nothing else: a native loop of that node may then apply the rule
    itself instead of calling ``fn``.
    """

    node: str
    reads: tuple[str, ...]
    fn: Callable[..., Any]
    replaces: bool = False
    writes: tuple[str, ...] = ()
    recorded: bool = False
    rule: tuple[str, int] | None = None

    def __post_init__(self) -> None:
        # a single name is one name (never its characters); lists become tuples
        if not isinstance(self.node, str):
            raise TypeError(f"Hook: node must be a node label, got {describe(self.node)}")
        if not callable(self.fn):
            raise TypeError(f"Hook: fn must be callable, got {describe(self.fn)}")
        object.__setattr__(self, "reads", tuple(as_names("Hook", "reads", self.reads)))
        object.__setattr__(self, "writes", tuple(as_names("Hook", "writes", self.writes)))
        object.__setattr__(self, "replaces", as_flag("Hook", "replaces", self.replaces))
        object.__setattr__(self, "recorded", as_flag("Hook", "recorded", self.recorded))
        if self.recorded and not self.replaces:
            raise ValueError("Hook: recorded=True needs replaces=True (a value to record)")
        ok = self.rule is None or (
            isinstance(self.rule, tuple)
            and len(self.rule) == 2
            and self.rule[0] == "intrinsic"
            and isinstance(self.rule[1], int)
            and not isinstance(self.rule[1], bool)
            and self.rule[1] >= 0
        )
        if not ok:
            raise ValueError(f"Hook: rule must be ('intrinsic', start >= 0), got {self.rule!r}")

    @property
    def spec(self) -> HookSpec:
        return (self.node, tuple(self.reads), self.replaces, tuple(self.writes), self.recorded)
