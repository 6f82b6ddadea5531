"""The compiled plan: what ``compile()`` decided once, read by every run, step and trainer.

A :class:`Plan` is frozen. It holds the node order, the split into a *static* part (function
nodes fed only by the input, computed for a whole chunk before the time loop) and a
*dynamic* part (evaluated step by step), every edge with its delay and the inputs it feeds,
the delay lines, the edges that carry spikes, the native whole-network loop when the
structure has one (and why not otherwise), and for each differential-equation node the
registered kernels that could serve it. :meth:`Plan.explain` prints it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import _native
from ..edges import Linear
from ..nodes import Context, DENode, FuncNode, Node, candidates, choose
from ._reservoir import find_reservoir, reservoir_unusable

__all__ = ["Plan", "PlanEdge", "Target", "build_plan", "edge_key"]


class FrozenMap(Mapping):
    """A read-only mapping (unlike ``MappingProxyType``, it pickles)."""

    def __init__(self, data: Mapping) -> None:
        self._data = dict(data)

    def __getitem__(self, key: Any) -> Any:
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


def edge_key(source: str, target: str) -> str:
    return f"{source}->{target}"


@dataclass(frozen=True)
class PlanEdge:
    """An edge as the plan runs it: ``key`` is ``"source->target"``."""

    key: str
    source: str
    target: str
    module: Linear
    delay: int
    source_var: str | None
    target_var: str


@dataclass(frozen=True)
class Target:
    """One named input of a dynamic node and what feeds it: ``static`` edges (precomputed
    before the loop), ``dynamic`` edges (applied inside it), the external input."""

    node: str
    var: str
    static: tuple[PlanEdge, ...] = ()
    dynamic: tuple[PlanEdge, ...] = ()
    external: bool = False


@dataclass(frozen=True)
class Plan:
    """The frozen result of ``compile()``; see the module docstring."""

    order: tuple[str, ...]
    input_nodes: tuple[str, ...]  # where the external input enters, its columns in order
    output_node: str
    edges: tuple[PlanEdge, ...]
    static: tuple[str, ...]
    dynamic: tuple[str, ...]
    de_nodes: tuple[str, ...]
    targets: Mapping[tuple[str, str], Target]
    delayed: tuple[PlanEdge, ...]
    event_edges: frozenset[str]
    reservoir: Any  # network._reservoir.Reservoir or None
    reservoir_why: str | None

    def edges_into(self, node: str) -> tuple[PlanEdge, ...]:
        return tuple(e for e in self.edges if e.target == node)

    def state_keys(self, nodes: Mapping[str, Node]) -> list[str]:
        """Names of the state entries, in the order the loop carries them."""
        keys = [f"{v}.{var}" for v in self.de_nodes for var in nodes[v].state_vars]
        keys += [f"{e.key}@{k}" for e in self.delayed for k in range(1, e.delay + 1)]
        return keys


def _static_nodes(order, nodes, ins, outs, input_nodes) -> set[str]:
    """Function nodes fed (through zero-delay edges) only by the input or other static
    nodes, whose outputs leave through zero-delay edges only."""
    static: set[str] = set()
    for v in order:
        feeds_ok = all(e.delay == 0 and e.source in static for e in ins[v])
        if v not in input_nodes and not ins[v]:
            feeds_ok = False  # a function node with no input at all is an error
        if (
            isinstance(nodes[v], FuncNode)
            and feeds_ok
            and all(e.delay == 0 and e.source_var is None for e in outs[v])
        ):
            static.add(v)
    return static


def _targets(dynamic, nodes, ins, static, input_nodes) -> dict[tuple[str, str], Target]:
    out = {}
    for v in dynamic:
        node = nodes[v]
        for var in node.input_names:
            feeds = [e for e in ins[v] if e.target_var == var]
            out[(v, var)] = Target(
                v,
                var,
                tuple(e for e in feeds if e.source in static),
                tuple(e for e in feeds if e.source not in static),
                v in input_nodes and var == node.input_names[0],
            )
    return out


def build_plan(
    nodes: Mapping[str, Node],
    edges: list[tuple[str, str, Linear]],
    order: list[str],
    input_nodes: tuple[str, ...],
    output_node: str,
) -> Plan:
    """The plan of a graph (nodes in topological ``order``) whose external input enters
    at ``input_nodes``, their columns side by side in that order."""
    plan_edges = tuple(
        PlanEdge(
            edge_key(s, t), s, t, e, e.delay, e.source_var, e.target_var or nodes[t].input_names[0]
        )
        for s, t, e in edges
    )
    ins: dict[str, list[PlanEdge]] = {v: [] for v in order}
    outs: dict[str, list[PlanEdge]] = {v: [] for v in order}
    for e in plan_edges:
        ins[e.target].append(e)
        outs[e.source].append(e)
    for v in order:
        if isinstance(nodes[v], FuncNode) and not ins[v] and v not in input_nodes:
            raise ValueError(
                f"Network.compile: function node {v!r} receives no input; "
                "connect an edge to it or remove it"
            )
    static = _static_nodes(order, nodes, ins, outs, input_nodes)
    _check_several_inputs(input_nodes, nodes, ins, static)
    dynamic = tuple(v for v in order if v not in static)
    targets = _targets(dynamic, nodes, ins, static, input_nodes)
    plan = Plan(
        order=tuple(order),
        input_nodes=tuple(input_nodes),
        output_node=output_node,
        edges=plan_edges,
        static=tuple(v for v in order if v in static),
        dynamic=dynamic,
        de_nodes=tuple(v for v in dynamic if isinstance(nodes[v], DENode)),
        targets=FrozenMap(targets),
        delayed=tuple(e for e in plan_edges if e.delay > 0),
        # dense edges that carry events: without autograd their product is event-driven
        event_edges=frozenset(
            e.key
            for t in targets.values()
            for e in t.dynamic
            if not e.module.sparse
            and getattr(nodes[e.source], "emits_events", False)
            and e.source_var in (None, nodes[e.source].output_var)
        ),
        reservoir=None,
        reservoir_why=None,
    )
    reservoir, why = find_reservoir(plan, nodes)
    object.__setattr__(plan, "reservoir", reservoir)
    object.__setattr__(plan, "reservoir_why", why)
    return plan


def _check_several_inputs(input_nodes, nodes, ins, static) -> None:
    """Several input nodes take their columns of the input in the static part, before the
    time loop: each must be a function node that no edge feeds and whose output leaves
    through zero-delay edges (a single input node may be anything)."""
    if len(input_nodes) == 1:
        return
    for v in input_nodes:
        if v not in static or ins[v]:
            kind = type(nodes[v]).__name__
            raise ValueError(
                f"Network.compile: with several input nodes {list(input_nodes)}, each must be "
                f"a function node that no edge feeds and whose output leaves through "
                f"zero-delay edges, but {v!r} is a {kind}"
                + (f" fed by {[e.key for e in ins[v]]}" if ins[v] else "")
                + "; give it an input node of its own, or compile with one input node"
            )


def node_kernels(node: DENode, ctx: Context):
    """The kernel that serves ``node`` in a run of ``ctx`` and the faster ones passed over,
    with why (see :func:`rnngraph.nodes._kernels.choose`)."""
    return choose(candidates(node), node, ctx)


@dataclass(frozen=True)
class Explanation:
    """What a run of a compiled network takes, and why not anything faster.

    ``loop``: ``"native reservoir loop"``, ``"window map over whole chunks"`` or ``"time
    loop"``, with ``loop_why`` (why neither whole-sequence loop applies, ``None`` when one
    runs). ``nodes``: per dynamic node, the
    kernel that serves it, how it integrates, and ``(kernel, why not)`` for each faster
    kernel passed over. ``edges``: per edge, how its product is computed.
    """

    batch: int
    grad: bool
    loop: str
    loop_why: str | None
    nodes: Mapping[str, tuple[str, str, tuple[tuple[str, str], ...]]]
    edges: Mapping[str, str]

    def __str__(self) -> str:
        mode = "with gradients" if self.grad else "without gradients"
        head = f"a run of batch {self.batch} {mode}: {self.loop}"
        lines = [head + (f" (native loop: {self.loop_why})" if self.loop_why else "")]
        for label, (kernel, integration, passed) in self.nodes.items():
            lines.append(f"  node {label!r}: {kernel} [{integration}]")
            lines.extend(f"      not {name}: {why}" for name, why in passed)
        lines.extend(f"  edge {key}: {how}" for key, how in self.edges.items())
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # IPython / Jupyter
        p.text(str(self))


#: An event-driven product (the rows of the units that fired, in C) costs a C call and a copy
#: of the input sum per step; below this many multiply-adds per step (batch x inputs x
#: outputs) the dense product is faster: an e-prop update of 100 LIF units at batch 1 takes
#: 0.86x the time with dense products, at 300 units or batch 64 the event-driven ones are
#: even or faster (1.0-1.9x; ``benchmarks/eprop_nest.py``, and ``native_kernels.py``'s
#: ``lif_step`` workloads, which stay event-driven).
EVENT_MIN_MACS = 1 << 15


def events_skipped(e: PlanEdge, batch: int) -> str | None:
    """Why edge ``e`` (one that carries events) takes the dense product at ``batch``, or
    ``None`` (its product is event-driven where native code runs)."""
    macs = batch * e.module.n_in * e.module.n_out
    if macs >= EVENT_MIN_MACS:
        return None
    return f"batch x inputs x outputs = {macs} < {EVENT_MIN_MACS} (the dense product is faster)"


def event_keys(plan: Plan, batch: int) -> frozenset[str]:
    """The edges whose products are event-driven in a run of ``batch`` without gradients."""
    return frozenset(
        e.key for e in plan.edges if e.key in plan.event_edges and events_skipped(e, batch) is None
    )


def _edge_kernel(plan: Plan, e: PlanEdge, ctx: Context, batch: int, hooks_write: set) -> str:
    if e.source in plan.static:
        return "precomputed for a whole chunk before the loop (one GEMM)"
    if e.delay > 0 and e.module.sparse:
        kind = "CSR product"
    elif e.module.sparse:
        kind = "CSR mat-vec" if batch == 1 else "CSR product"
    else:
        kind = "dense product"
    if e.key in plan.event_edges:
        why = (
            ctx.grad
            and "the run needs gradients"
            or (e.key in hooks_write and "a hook writes the weights")
            or _native_reason(ctx)
            or events_skipped(e, batch)
        )
        kind = (
            "event-driven (rows of the units that fired)"
            if not why
            else (f"{kind} (not event-driven: {why})")
        )
    return kind + (f", delay {e.delay}" if e.delay else "")


def _native_reason(ctx: Context) -> str | None:
    return _native.unavailable(ctx.dtype, ctx.device)


#: the whole-chunk loops as explain() names them: (loop, node kernel, how it integrates)
_WHOLE = {
    "native": ("native reservoir loop", "native reservoir loop", "whole sequence in C"),
    "window": (
        "window map over whole chunks",
        "window map",
        "whole chunks at once: the features of the input's windows",
    ),
}


def explain(
    plan: Plan, nodes: Mapping[str, Node], ctx: Context, batch: int, hooks=()
) -> Explanation:
    """The :class:`Explanation` of a run of ``plan`` under ``ctx``."""
    why = reservoir_unusable(plan.reservoir, plan.reservoir_why, ctx, batch, hooks)
    native = why is None
    whole = _WHOLE["window" if native and plan.reservoir.kind == "window" else "native"]
    table = {}
    for v in plan.dynamic:
        node = nodes[v]
        if native and (v == plan.reservoir.node or v in plan.reservoir.post):
            table[v] = (*whole[1:], ())
        elif isinstance(node, DENode):
            kernel, passed = node_kernels(node, ctx)
            method, method_why = node.integration()
            integration = method + (f"; not the affine map: {method_why}" if method_why else "")
            table[v] = (kernel.name, integration, tuple(passed))
        else:
            table[v] = ("function", f"{getattr(node, 'name', '')}", ())
    written = {k for h in hooks for k in getattr(h, "writes", ())}
    edges = {e.key: _edge_kernel(plan, e, ctx, batch, written) for e in plan.edges}
    fed = plan.reservoir.feedback if native else None
    if fed is not None:
        edges[fed.key] = (
            f"readout fed back in the C loop (a dot product per unit), delay {fed.delay}"
        )
    loop = whole[0] if native else "time loop"
    return Explanation(batch, ctx.grad, loop, why, FrozenMap(table), FrozenMap(edges))
