r"""Generative (closed-loop) runs: a network driven by its own output.

After a readout is fitted to predict the next input (one-step-ahead forecasting), the
network can run on its own predictions: the output of step ``t`` is the input of step
``t + 1``. This is reservoirpy's generative mode (``x = esn(x)`` in a loop) and the
free-running phase of FORCE. Here it is the same compiled network with one more edge: an
identity edge from the output node to the input node with a delay of one step, so that
every node, kernel and observer works as in an open-loop run.

The common echo-state network (input -> reservoir -> linear readout) runs closed-loop
without its input node: with an identity input node, the edge ``input -> reservoir`` reads
the readout of the step before, so the closed loop is the reservoir with its readout fed
back through ``W_in`` with a delay of one step, exactly. That network is one the native
reservoir loop runs whole (the readout fed back is computed in the C loop at every step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .._checks import as_tensor
from ..edges import Linear
from ..nodes import ACTIVATIONS, FuncNode
from ..observers import Observer, Recording
from ._compiled import CompiledNetwork, State
from ._plan import edge_key

__all__ = ["Folded", "closed_loop", "closed_run", "feedback_key", "first_input", "why_not_folded"]


def feedback_key(model: CompiledNetwork) -> str:
    """The state entry of the closed loop's feedback: the output of the previous step."""
    return f"{edge_key(model.output_node, model.input_node)}@1"


def closed_loop(where: str, model: CompiledNetwork) -> CompiledNetwork:
    """``model`` with its output fed back to its input: the same node and edge modules (so
    trained weights are shared) plus an identity edge ``output -> input`` of delay 1.

    Raises ``ValueError`` when the output and input widths differ, or when the output node
    already feeds the input node."""
    inp, out = model.input_node, model.output_node
    if len(model.input_nodes) > 1:
        raise ValueError(
            f"{where}: the output is fed back as the next input, but the network has several "
            f"input nodes {list(model.input_nodes)}; compile it with the one input node the "
            "output replaces"
        )
    if model.n_out != model.n_in:
        raise ValueError(
            f"{where}: the output must be fed back as the next input, so their widths must "
            f"agree: output node {out!r} has {model.n_out} units, the input is {model.n_in} wide"
        )
    edges = [(e.source, e.target, e.module) for e in model.plan.edges]
    if any(s == out and t == inp for s, t, _ in edges):
        raise ValueError(
            f"{where}: the output node {out!r} feeds the input node {inp!r} already "
            f"(edge {edge_key(out, inp)}); the network runs closed-loop with run()"
        )
    ref = model._ref
    eye = torch.eye(model.n_in, dtype=ref.dtype, device=ref.device)
    loop = Linear(model.n_in, model.n_in, eye, delay=1, dtype=ref.dtype, device=ref.device)
    edges.append((out, inp, loop))
    nodes = {v: model.nodes[v] for v in model.order}
    return CompiledNetwork(
        nodes, edges, model.time_step, inp, out, model.order, ref.dtype, ref.device
    )


def first_input(where: str, model: CompiledNetwork, first: Any, state: State | None) -> Tensor:
    """``first`` (the input of the first generated step) as a checked ``(B, n_in)`` tensor
    of the network's dtype and device, finite, of the batch of ``state`` (or a batch of 1
    that a state of batch ``B`` broadcasts)."""
    x = as_tensor(where, "first", first, copy=False)
    x = x.to(model._ref)
    if x.dim() == 1:
        x = x.reshape(1, -1)
    if x.dim() != 2 or x.shape[1] != model.n_in:
        raise ValueError(
            f"{where}: first must be (C,) or (B, C) with C = {model.n_in}, "
            f"got shape {tuple(x.shape)}"
        )
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{where}: first contains NaN or inf values")
    if state:
        batch = next(iter(state.values())).shape[0]
        if x.shape[0] not in (1, batch) and batch != 1:
            raise ValueError(
                f"{where}: first has a batch of {x.shape[0]}, the state one of {batch}"
            )
    return x


def _identity(node: Any) -> bool:
    return isinstance(node, FuncNode) and node.fn is ACTIVATIONS["identity"]


def why_not_folded(model: CompiledNetwork, record: tuple[str, ...], grad: bool) -> str | None:
    """Why the closed loop of ``model`` cannot run folded into one autonomous reservoir
    (see the module docstring), or ``None`` when it can. ``record``: the recorded names;
    ``grad``: whether gradients are wanted (the folded weights are a copy)."""
    plan, inp, out = model.plan, model.input_node, model.output_node
    if grad:
        return "gradients are wanted (the folded weights are a copy of W + W_in W_out)"
    if not (_identity(model.nodes[inp]) and _identity(model.nodes[out])):
        return "the input and output nodes are not both identity function nodes"
    if len(plan.de_nodes) != 1 or len(plan.order) != 3:
        return "the network is not input -> one reservoir node -> readout"
    (r,) = plan.de_nodes
    shape = {(e.source, e.target, e.delay, e.source_var) for e in plan.edges}
    if len(plan.edges) != 3 or shape != {(inp, r, 0, None), (r, r, 1, None), (r, out, 0, None)}:
        return (
            f"the edges are not {inp}->{r}, {r}->{r} (delay 1) and {r}->{out} "
            "(each reading the source's output)"
        )
    if len({e.target_var or model.nodes[r].input_names[0] for e in plan.edges_into(r)}) != 1:
        return f"the edges into {r!r} write into different inputs"
    if any(name.partition(".")[0] == inp for name in record):
        return f"the input node {inp!r} is recorded (the folded network feeds it no input)"
    return None


class Folded:
    """The closed loop of an echo-state network without its input node (see the module
    docstring): the reservoir node, its recurrent edge and the readout edge are the model's
    own modules; the fed-back edge ``readout -> reservoir`` holds the model's ``W_in`` and
    its bias, copied at every :meth:`start`. Its state is the model's plus the readout of
    the step before (``feedback_key``)."""

    def __init__(self, model: CompiledNetwork) -> None:
        inp, out, (r,) = model.input_node, model.output_node, model.plan.de_nodes
        self.model, self.w_in = model, model.edges[edge_key(inp, r)]
        ref = model._ref
        n, c = self.w_in.n_out, model.n_in  # the width of the input W_in feeds
        self.fed = Linear(c, n, torch.zeros(n, c), bias=True, delay=1, dtype=ref.dtype)
        self.fed.to(ref.device)
        edges = [(r, r, model.edges[edge_key(r, r)]), (r, out, model.edges[edge_key(r, out)])]
        edges.append((out, r, self.fed))
        nodes = {v: model.nodes[v] for v in model.order if v != inp}
        order = [v for v in model.order if v != inp]
        self.network = CompiledNetwork(
            nodes, edges, model.time_step, r, out, order, ref.dtype, ref.device
        )
        self.key = f"{edge_key(out, r)}@1"

    def start(self, state: State, x0: Tensor) -> State:
        """The folded network's start: the model's ``state`` with ``x0`` as the readout of
        the step before; the fed-back edge takes the model's current ``W_in``."""
        with torch.no_grad():
            w = self.w_in.effective_weight()
            self.fed.weight.copy_(w.to_dense() if w.layout != torch.strided else w)
            b = self.w_in.bias
            self.fed.bias.copy_(b.detach() if b is not None else torch.zeros_like(self.fed.bias))
        return {**state, self.key: x0}


def closed_run(
    where: str,
    model: CompiledNetwork,
    nets: tuple[CompiledNetwork, Callable[[], Folded]],
    x0: Tensor,
    observer: Observer,
    progress: bool,
    steps: int,
) -> Recording:
    """``steps`` closed-loop steps from ``model``'s held state (its initial state if it holds
    none) with ``x0`` ``(B, C)`` as the first input, on the folded network where it applies
    (``nets``: the closed loop and the maker of the folded form); the held state is left
    alone. The recording's state has ``model``'s keys."""
    closed, folded = nets
    start = dict(model.state or model.initial_state(where, x0.shape[0]))
    batch = max(x0.shape[0], next(iter(start.values())).shape[0] if start else 1)
    start = {k: v.expand(batch, -1).clone() for k, v in start.items()}
    x0 = x0.expand(batch, -1).clone()
    if why_not_folded(model, observer.record, torch.is_grad_enabled()) is None:
        net, start = folded().network, folded().start(start, x0)
    else:
        net, start = closed, {**start, feedback_key(model): x0}
    rec = net.execute(where, None, observer, start, progress, steps, hold=False)
    rec.state = {k: rec.state[k] for k in model.state_keys()}
    return rec
