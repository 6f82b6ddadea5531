"""The whole-chunk loops of a network: when a plan's structure has one, and its run.

Three structures run as one C loop over all steps of a chunk (``rnngraph._native``), chosen by
what the node declares, never by its class:

* ``"esn"``: a node with a leaky map (:meth:`~rnngraph.nodes.DENode.leaky_map`) whose
  activation is ``tanh`` (reservoirpy's reservoir; ``leaky_tanh``);
* ``"gain"``: a node with a gain map (:meth:`~rnngraph.nodes.DENode.gain_map`) whose
  activation is ``tanh`` or the logistic sigmoid (``IPReservoir``), its intrinsic-plasticity
  rule applied in the loop when a trainer's hook asks for that rule alone;
* ``"li"``: a node with one linear variable (:meth:`~rnngraph.nodes.DENode.linear_part`)
  fed by two inputs, whose output function is ``tanh`` and whose integrator has an affine
  one-step map (RectiPy's leaky integrator, ``li``).

In both, the node's only dynamic input is its delay-1 feedback self-edge, static nodes feed
it (their projection is computed for all steps in one GEMM), and only function nodes follow.
An ``"esn"`` loop may also take a linear readout fed back: an identity function node that
reads only the reservoir and feeds its recurrent input through a delay-1 edge (an echo-state
network with output feedback, or one generating on its own predictions), computed in the C
loop at every step.

A third, ``"window"``, is computed in torch for all steps of a chunk at once: a node with a
window map (:meth:`~rnngraph.nodes.DENode.window_map`, the features of its input's last
values: ``NVAR``), fed by static nodes alone, with no delayed edge in the network and only
function nodes after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .. import _native
from ..nodes import ACTIVATIONS, AFFINE_GAINS, FuncNode, Node, affine_gain

__all__ = [
    "Reservoir",
    "delay_lines",
    "find_reservoir",
    "reservoir_unusable",
    "final_state",
    "start_reservoir",
]


@dataclass(frozen=True)
class Reservoir:
    """A plan's native reservoir loop: ``node`` runs as ``kind`` with the recurrent
    ``edge`` (a ``PlanEdge``) on its input ``var``, then the function nodes ``post``."""

    kind: str
    node: str
    edge: Any
    var: str
    post: tuple[str, ...]
    feedback: Any = None  # the delay-1 edge from the fed-back readout, or None
    readout: Any = None  # the edge node -> readout it feeds back
    rules: tuple[str, ...] = ()  # the node's rules the loop applies itself ("intrinsic")


def _kind(node: Node) -> tuple[str | None, str]:
    """``(kind, recurrent input)`` of the loop the node's declarations allow, or
    ``(None, why not)``."""
    if not hasattr(node, "structure"):
        return None, "not a differential-equation node"
    plain = node.plain_output()
    if plain is not None:
        return None, plain
    lm, why_map = node.structure("leaky_map")
    if lm is not None:
        if node.output_function is not None:
            return None, "the output goes through an output function"
        if lm.f is not torch.tanh:
            return None, "the leaky map's activation is not tanh"
        return "esn", lm.input
    gm, why_gain = node.structure("gain_map")
    if gm is not None:
        if node.output_function is not None:
            return None, "the output goes through an output function"
        if len(node.state_vars) != 2 or node.output_var != node.state_vars[1]:
            return None, "its state is not (input, output)"
        if gm.f is not torch.tanh and gm.f is not torch.sigmoid:
            return None, "the gain map's activation is neither tanh nor the logistic sigmoid"
        return "gain", gm.input
    lin, why = node.structure("linear_part")
    if lin is None:
        return None, f"{why_map}; {why_gain}; {why}"
    if getattr(node, "emits_events", False):
        return None, "a spiking node (the whole-sequence loops serve rate reservoirs)"
    if len(lin) != 1 or len(next(iter(lin.values())).gains) != 2:
        return None, "the linear part is not one variable with two inputs"
    if node.output_function is not torch.tanh:
        return None, "the output function is not tanh"
    if node.integrator not in AFFINE_GAINS:
        return None, f"integrator {node.integrator!r} has no affine one-step map"
    return "li", ""


def _find_window(plan: Any, nodes: Mapping[str, Node]) -> tuple[Reservoir | None, str | None]:
    """The plan's whole-chunk window map (its one node, without delayed edges), or why not."""
    v = plan.de_nodes[0]
    node = nodes[v]
    if not hasattr(node, "structure"):
        return None, f"node {v!r}: not a differential-equation node"
    wm, why = node.structure("window_map")
    why = why or node.plain_output()
    if why is None and node.output_function is not None:
        why = "the output goes through an output function"
    if why is None and (len(node.state_vars) != 2 or node.output_var != node.state_vars[1]):
        why = "its state is not (window, output)"
    if why is not None:
        return None, f"node {v!r} has no window map to compute whole chunks: {why}"
    for t in plan.targets.values():
        if t.node == v and t.var != wm.input:
            return None, f"input {t.var!r} of {v!r} is not the window's input {wm.input!r}"
    post, why = _post_nodes(plan, nodes, v)
    return (None, why) if why else (Reservoir("window", v, None, wm.input, post), None)


def _post_nodes(plan: Any, nodes: Mapping[str, Node], v: str) -> tuple[tuple, str | None]:
    """The dynamic nodes after ``v``, if they are plain function nodes (else why not)."""
    post = tuple(u for u in plan.dynamic if u != v)
    done = set(plan.static) | {v}
    for u in post:
        feeds = plan.edges_into(u)
        if (
            u in plan.input_nodes
            or not isinstance(nodes[u], FuncNode)
            or any(e.delay != 0 or e.source_var is not None or e.source not in done for e in feeds)
        ):
            return (), f"node {u!r} after {v!r} is not a plain function node"
        done.add(u)
    return post, None


def find_reservoir(plan: Any, nodes: Mapping[str, Node]) -> tuple[Reservoir | None, str | None]:
    """The plan's native reservoir loop, or ``None`` and why its structure has none."""
    if len(plan.de_nodes) == 1 and not plan.delayed:
        return _find_window(plan, nodes)
    if len(plan.de_nodes) != 1 or not 1 <= len(plan.delayed) <= 2:
        return None, "needs one differential-equation node and one delayed edge"
    v = plan.de_nodes[0]
    node = nodes[v]
    kind, var = _kind(node)
    if kind is None:
        return None, f"node {v!r}: {var}"
    selfs = [e for e in plan.delayed if (e.source, e.target) == (v, v)]
    edge = selfs[0] if selfs else plan.delayed[0]
    if (edge.source, edge.target, edge.delay, edge.source_var) != (v, v, 1, None):
        return None, "the delayed edge is not a feedback self-edge of delay 1 on the output"
    if kind == "li":
        names = list(next(iter(node.linear_part().values())).gains)
        var = edge.target_var
        if var not in names:
            return None, f"the self-edge feeds {var!r}, not an input of the linear part"
    fed = next((e for e in plan.delayed if e is not edge), None)
    readout, why = (None, None) if fed is None else _fed_readout(plan, nodes, kind, v, edge, fed)
    if why is not None:
        return None, why
    for t in plan.targets.values():
        if t.node == v and set(t.dynamic) != ({edge, fed} - {None} if t.var == var else set()):
            return None, f"input {t.var!r} of {v!r} has other dynamic edges"
        if t.node == v and kind == "li" and t.var == var and (t.static or t.external):
            return None, "the drive enters the recurrent input"
    post, why = _post_nodes(plan, nodes, v)
    if why:
        return None, why
    rules = ("intrinsic",) if kind == "gain" and node.gain_map().rule is not None else ()
    return Reservoir(kind, v, edge, var, post, fed, readout, rules), None


def _fed_readout(plan, nodes, kind, v, edge, fed) -> tuple[Any, str | None]:
    """The edge ``v -> readout`` of a readout fed back by ``fed``, or why ``fed`` is not
    that: a delay-1 edge into the self-edge's input from an identity function node whose
    only input is ``v``'s output."""
    u = fed.source
    feeds = plan.edges_into(u)
    node = nodes[u]
    if (
        kind != "esn"
        or fed.target != v
        or fed.delay != 1
        or fed.source_var is not None
        or fed.target_var != edge.target_var
        or not isinstance(node, FuncNode)
        or node.fn is not ACTIVATIONS["identity"]
        or len(feeds) != 1
        or (feeds[0].source, feeds[0].delay, feeds[0].source_var) != (v, 0, None)
    ):
        return None, (
            "the second delayed edge is not a readout fed back (an identity function node "
            f"reading only {v!r}, into its recurrent input with delay 1)"
        )
    return feeds[0], None


def reservoir_unusable(
    r: Reservoir | None, why: str | None, ctx: Any, batch: int, hooks
) -> str | None:
    """Why a run of ``ctx`` (batch ``batch``, with ``hooks``) cannot take the loop, or
    ``None``."""
    if r is None:
        return why
    # the loop applies one rule of its node's own in place of the hook that asks for it
    asking = [(h.node, h.rule[0]) for h in hooks if getattr(h, "rule", None) is not None]
    ruled = [a for a in asking if a in _rules(r)]
    reasons: tuple = (
        (ctx.grad, "the run needs gradients"),
        (len(ruled) != len(hooks) or len(ruled) > 1, "a trainer's hooks run inside the loop"),
    )
    if r.kind == "window":  # torch on any device: only the switch applies
        off = "whole-chunk loops are switched off (set_enabled(False))"
        reasons += ((not _native.enabled(), off),)
    else:
        weight = r.edge.module.weight
        reasons += (
            (True, _native.unavailable(ctx.dtype, ctx.device)),
            (batch != 1, _batch_unusable(r, weight)),
            (not _native.int32_indices(weight), "more than 2**31 nonzeros"),
        )
    return next((text for bad, text in reasons if bad and text), None)


def _rules(r: Reservoir) -> set[tuple[str, str]]:
    """``(node, rule)`` of the rules the loop applies itself."""
    return {(r.node, name) for name in r.rules}


def _batch_unusable(r: Reservoir, weight: Tensor) -> str | None:
    """Why the loop does not run a batch > 1, or ``None``: it does for an echo-state
    reservoir with CSR weights (one sparse-times-dense product per step, each nonzero read
    once for all trials); dense weights take the torch loop's BLAS products, which are
    faster there."""
    if r.kind != "esn" or r.feedback is not None:
        return "batch > 1 (the native loop runs it for a sparse echo-state reservoir alone)"
    if weight.layout != torch.sparse_csr:
        return "batch > 1 with dense recurrent weights (the torch loop's BLAS products are faster)"
    return None


def _coefficients(r: Reservoir, node: Node, plan: Any, dt: float, like: Tensor) -> list:
    """The loop's per-unit constants, from the node's declarations."""
    module = r.edge.module
    # the recurrent edge's bias; the generic loop folds it into the static drive of its
    # target when that has one
    static = bool(plan.targets[(r.node, r.var)].static)
    bias = 0.0 if module.bias is None else module.bias.detach()
    with torch.no_grad():
        if r.kind == "esn":
            lm = node.leaky_map()
            if r.feedback is not None and r.feedback.module.bias is not None:
                bias = bias + r.feedback.module.bias.detach()
            return [lm.lr, lm.bias + (0.0 if static else bias)]
        if r.kind == "gain":
            gm = node.gain_map()
            return [gm.lr, gm.bias + (0.0 if static else bias), gm.a, gm.b]
        part = next(iter(node.linear_part().values()))
        g = affine_gain(node.integrator, dt, part.tau, like)
        drive = next(k for k in part.gains if k != r.var)
        c_rec, c_ext = (1 - g) * part.gains[r.var], (1 - g) * part.gains[drive]
        return [g, c_rec, c_ext, (1 - g) * part.rest + c_rec * bias]


class WindowRun:
    """A run of a window map over whole chunks: the node's state ``(window, output)``
    carried from chunk to chunk."""

    _PIECE = 1 << 21  # output values computed at once (the features' products are a few more)

    def __init__(self, node: Node, state: tuple) -> None:
        self.map = node.window_map()
        self.vars = node.state_vars
        self.store, self.x = state

    def outputs(self, label: str, drive: Tensor | None, n_steps: int) -> dict[str, Tensor]:
        """The node's output and state variables over a chunk ``(T, B, .)`` from its input
        ``drive`` (``None``: zeros), by name as the run records them."""
        B, width = self.store.shape
        if drive is None:
            d = width // self.map.length
            drive = self.store.new_zeros(n_steps, B, d)
        piece = max(1, self._PIECE // max(1, B * self.x.shape[1]))
        parts = [self.map.chunk(self.store, drive[:piece])]
        for t0 in range(piece, n_steps, piece):
            parts.append(self.map.chunk(parts[-1][0][-1], drive[t0 : t0 + piece]))
        w, x = (torch.cat(p) if len(p) > 1 else p[0] for p in zip(*parts, strict=True))
        self.store, self.x = w[-1].clone(), x[-1].clone()
        return {label: x, f"{label}.{self.vars[0]}": w, f"{label}.{self.vars[1]}": x}

    def state(self) -> tuple[Tensor, Tensor]:
        return self.store, self.x


def start_reservoir(
    r: Reservoir, nodes, plan, dt: float, s0: tuple, lines: list[Tensor], hooks=()
) -> _native.ReservoirRun | WindowRun:
    """The loop of one run from the node's state ``s0`` and the delay ``lines`` (one per
    delayed edge, in the plan's order), applying the node's rules the ``hooks`` ask for."""
    node = nodes[r.node]
    if r.kind == "window":
        return WindowRun(node, s0)
    x = s0[0]
    where = f"CompiledNetwork.run (native loop of node {r.node!r})"
    coef = [
        torch.as_tensor(c, dtype=torch.float64).detach()
        if not isinstance(c, Tensor)
        else c.detach()
        for c in _coefficients(r, node, plan, dt, x)
    ]
    line = dict(zip((e.key for e in plan.delayed), lines, strict=True))
    feedback = None
    if r.feedback is not None:
        dense = [m.effective_weight().detach() for m in (r.feedback.module, r.readout.module)]
        A, R = (w.to_dense() if w.layout != torch.strided else w for w in dense)
        rb = r.readout.module.bias
        feedback = (A, R, None if rb is None else rb.detach(), line[r.feedback.key])
    weight = r.edge.module.effective_weight()
    state = (x, line[r.edge.key])
    mix = node.leaky_map().mix if r.kind == "esn" else None
    mix = None if mix is None else torch.as_tensor(mix).detach().to(x.dtype).contiguous()
    rule = _gain_rule(node, hooks, x.dtype) if r.kind == "gain" else None
    return _native.ReservoirRun(
        r.kind, where, r.edge.key, r.edge.module, weight, coef, state, feedback, mix=mix, rule=rule
    )


def _gain_rule(node: Node, hooks, dtype: torch.dtype) -> tuple:
    """The gain loop's ``rule`` argument: the activation, and the node's intrinsic rule with
    its first step when a hook asks for it (its gains and shifts the tensors it updates)."""
    gm = node.gain_map()
    sigmoid = gm.f is torch.sigmoid
    asks = [h.rule[1] for h in hooks if h.rule is not None and h.rule[0] == "intrinsic"]
    if not asks:
        return sigmoid, None, 0, None
    numbers = torch.tensor([gm.rule.eta, *gm.rule.coef], dtype=torch.float64).to(dtype)
    return sigmoid, numbers, asks[0], (gm.a, gm.b)


def delay_lines(r: Reservoir, plan: Any, run: _native.ReservoirRun) -> list[Tensor]:
    """The delay lines after a native run, in the plan's order: the recurrent edge's and
    the fed-back readout's (copies)."""
    x, prev = run.state()
    return [prev if e is r.edge else run.z.clone() for e in plan.delayed]


def final_state(r: Reservoir, plan: Any, nodes: Mapping[str, Node], run) -> list:
    """The run's state list after the loop ``run`` (the node's state, then the delay lines)."""
    node = nodes[r.node]
    if r.kind == "window":
        return [node.State(*run.state())]
    x, prev = run.state()
    # a gain map's output variable is the last output, which its self-edge also holds
    own = (x, prev) if r.kind == "gain" else (x,)
    return [node.State(*own), *delay_lines(r, plan, run)]
