"""The Python source of a compiled network's time loop, and of its single step.

The loop is generated once per configuration (external input or not, recorded variables,
hooks) with every tensor in a local variable: no dictionary look-ups, no dispatch over
nodes, no host synchronisation inside it (see ``CompiledNetwork``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .. import _native
from ..nodes import DENode
from ._plan import PlanEdge, Target

__all__ = ["AS_LOOP", "LoopSource", "StepSource", "run_source"]


def run_source(src: str, label: str, constants: dict[str, Any]) -> Callable:
    """The one function ``src`` defines (a loop or a step of :class:`LoopSource` or
    :class:`StepSource`), executed with ``torch``, ``EVENT`` (the event-driven product)
    and ``constants`` as its globals; ``label`` names it in tracebacks."""
    namespace: dict[str, Any] = {"torch": torch, "EVENT": _native.event_addmm, **constants}
    exec(compile(src, label, "exec"), namespace)  # noqa: S102 - source generated from a graph
    return namespace[src[4 : src.index("(")]]  # "def <name>(...":  the one definition


class LoopSource:
    """The Python source of the time loop of one configuration of a compiled network: every
    tensor a local variable, one line per node input, node step, hook and delay line."""

    at = "[t]"  # how a precomputed input or the external input is read at the step

    def __init__(self, net, external, rec_dyn, hooked, single, events) -> None:
        plan = net.plan
        self.net, self.plan, self.external, self.rec_dyn = net, plan, external, rec_dyn
        # events: the edges whose products are event-driven (``plan.event_keys``)
        self.hooked, self.single, self.events = hooked, single, events
        self.idx = {v: i for i, v in enumerate(plan.dynamic)}
        self.eidx = {e.key: j for j, e in enumerate(plan.edges)}
        self.edge_of = {e.key: e for e in plan.edges}
        self.hooks_at: dict[str, list[int]] = {}
        for h, spec in enumerate(hooked):
            self.hooks_at.setdefault(spec[0], []).append(h)
        # the value a node passes on: its output, or what a replacing hook returns
        self.prop = {
            v: (f"y{i}h" if any(hooked[h][2] for h in self.hooks_at.get(v, ())) else f"y{i}")
            for v, i in self.idx.items()
        }
        # the value recorded as a node's output: its own, or a recorded hook's
        self.shown = {
            v: (f"y{i}h" if any(hooked[h][4] for h in self.hooks_at.get(v, ())) else f"y{i}")
            for v, i in self.idx.items()
        }
        self.static_reads = net._static_reads(hooked)
        self.zero_inputs = net._zero_inputs()
        self.pre = [t for t in plan.targets.values() if t.static]
        self.bias, self.live, self.written = net._biases(hooked)
        self.pre_id = {id(t): i for i, t in enumerate(self.pre)}
        self.bias_id = {id(t): i for i, t in enumerate(self.bias)}
        self.live_id = {e.key: len(self.bias) + j for j, e in enumerate(self.live)}
        self.input_expr: dict[str, dict[str, str]] = {}  # node -> input -> its expression
        self.state_names = [f"s{self.idx[v]}" for v in plan.de_nodes]
        self.state_names += [
            f"d{self.eidx[e.key]}_{k}" for e in plan.delayed for k in range(1, e.delay + 1)
        ]

    def source(self) -> str:
        lines = ["def _loop(n_steps, X, P, W, BIAS, STEP, ZERO, S, OUT, R, ridx, H, T0, SV):"]
        lines += self._unpacking()
        body: list[str] = []
        for v in self.plan.dynamic:
            body += self._node_lines(v)
            for h in self.hooks_at.get(v, ()):
                body.append(self._hook_line(v, h))
        body += self._delay_lines() + self._record_lines()
        lines.append("    for t in range(n_steps):")
        lines.extend(body if body else ["        pass"])
        lines.append(f"    return ({''.join(n + ', ' for n in self.state_names)})")
        return "\n".join(lines) + "\n"

    def _unpacking(self) -> list[str]:
        dyn_edges = [e for t in self.plan.targets.values() for e in t.dynamic]
        groups = [
            ([f"P{i}" for i in range(len(self.pre))], "P"),
            ([f"W{self.eidx[e.key]}" for e in dyn_edges], "W"),
            ([f"B{i}" for i in range(len(self.bias) + len(self.live))], "BIAS"),
            ([f"step{self.idx[v]}" for v in self.plan.dynamic], "STEP"),
            ([f"Z{k}" for k in range(len(self.zero_inputs))], "ZERO"),
            (self.state_names, "S"),
            ([f"R{i}" for i in range(len(self.rec_dyn))], "R"),
            ([f"H{h}" for h in range(len(self.hooked))], "H"),
            ([f"SV{k}" for k in range(len(self.static_reads))], "SV"),
        ]
        return [f"    {', '.join(names)}, = {src}" for names, src in groups if names]

    def _var(self, label: str, var: str) -> str:
        return f"s{self.idx[label]}[{self.net._var_index(label, var)}]"

    def _source_expr(self, e: PlanEdge) -> str:
        if e.delay > 0:
            return f"d{self.eidx[e.key]}_{e.delay}"
        return self.prop[e.source] if e.source_var is None else self._var(e.source, e.source_var)

    def _input_sum(self, t: Target) -> str | None:
        """The expression of what input ``t`` receives this step (``None``: nothing)."""
        acc = None
        if t.static:
            acc = f"P{self.pre_id[id(t)]}{self.at}"
        elif id(t) in self.bias_id:
            acc = f"B{self.bias_id[id(t)]}"
        if t.external and self.external:
            x = f"X{self.at}"
            acc = x if acc is None else f"{acc} + {x}"
        for e in t.dynamic:
            if e.key in self.live_id:  # a bias a hook writes: read at every step
                b = f"B{self.live_id[e.key]}"
                acc = b if acc is None else f"{acc} + {b}"
            acc = self._product(acc, e)
        return acc

    def _product(self, acc: str | None, e: PlanEdge) -> str:
        """``acc`` plus edge ``e``'s product with its source."""
        src, w = self._source_expr(e), f"W{self.eidx[e.key]}"
        if e.module.sparse and self.single:
            # batch of one: a CSR mat-vec is ~2x faster than a mat-mat
            term = f"torch.mv({w}, {src}.view(-1))"
            return f"{term}.view(1, -1)" if acc is None else f"{acc} + {term}"
        if e.module.sparse:
            term = f"({w} @ {src}.t()).t()"
            return term if acc is None else f"{acc} + {term}"
        if e.key in self.events and e.key not in self.written:
            return f"EVENT({acc}, {src}, {w})"
        return f"torch.mm({src}, {w})" if acc is None else f"torch.addmm({acc}, {src}, {w})"

    def _node_lines(self, v: str) -> list[str]:
        i, node = self.idx[v], self.net.nodes[v]
        lines, args = [f"        # node {v!r}"], []
        for var in node.input_names:
            acc = self._input_sum(self.plan.targets[(v, var)])
            if acc is None:
                args.append(f"Z{self.zero_inputs.index((v, var))}")
            else:
                lines.append(f"        a{i}_{var} = {acc}")
                args.append(f"a{i}_{var}")
        self.input_expr[v] = dict(zip(node.input_names, args, strict=True))
        if isinstance(node, DENode):
            lines.append(f"        y{i}, s{i} = step{i}(s{i}, {', '.join(args)})")
        else:
            lines.append(f"        y{i} = step{i}({args[0]})")
        return lines

    def _hook_line(self, v: str, h: int) -> str:
        args = ["T0 + t"] + [self._hook_read(v, name) for name in self.hooked[h][1]]
        call = f"H{h}({', '.join(args)})"
        return f"        y{self.idx[v]}h = {call}" if self.hooked[h][2] else f"        {call}"

    def _hook_read(self, v: str, name: str) -> str:
        """The expression of what a hook after node ``v`` reads as ``name``."""
        if name in self.static_reads:
            return f"SV{self.static_reads.index(name)}[t]"
        if "->" in name:
            return self._source_expr(self.edge_of[name])
        if ":" in name:
            label, _, var = name.partition(":")
            if var not in self.input_expr.get(label, {}):
                raise ValueError(
                    f"a hook after node {v!r} reads {name!r}: no input {var!r} of "
                    f"a node {label!r} computed by then"
                )
            return self.input_expr[label][var]
        label, _, var = name.partition(".")
        done = set(self.plan.dynamic[: self.plan.dynamic.index(v) + 1])
        if label not in done:
            raise ValueError(
                f"a hook after node {v!r} reads {name!r}, which is computed later in the step"
            )
        if var:
            return self._var(label, var)
        return f"y{self.idx[label]}" if label == v else self.prop[label]

    def _delay_lines(self) -> list[str]:
        """Shift the delay lines: the newest value enters at @1."""
        lines = []
        for e in self.plan.delayed:
            j = self.eidx[e.key]
            src = self.prop[e.source] if e.source_var is None else self._var(e.source, e.source_var)
            names = [f"d{j}_{k}" for k in range(e.delay, 0, -1)]
            vals = [f"d{j}_{k}" for k in range(e.delay - 1, 0, -1)] + [src]
            lines.append(f"        {', '.join(names)} = {', '.join(vals)}")
        return lines

    def _record_lines(self) -> list[str]:
        lines = []
        if self.net.output_node in self.idx:
            lines.append(f"        OUT[t] = {self.shown[self.net.output_node]}")
        if self.rec_dyn:
            lines += ["        k = ridx[t]", "        if k >= 0:"]
            for r, name in enumerate(self.rec_dyn):
                label, _, var = name.partition(".")
                expr = self._var(label, var) if var else self.shown[label]
                lines.append(f"            R{r}[k] = {expr}")
        return lines


#: How the loop takes a dynamic edge's weights (see ``CompiledNetwork._weight_layout``).
AS_LOOP: dict[str, Callable[[Tensor], Tensor]] = {
    "as is": lambda w: w,
    "transposed": Tensor.t,
    "contiguous": lambda w: w.t().contiguous(),
}


class StepSource(LoopSource):
    """The source of one step of the loop as a function ``_step(X, state) -> (y, new)``
    from one step's input ``X`` ``(B, C)`` (``None`` without external input) and a state
    dict: the static nodes and their projections for this step, the current weights and
    biases, the kernels, the loop's body once, and the new state as a ``StepState``.

    Its names are the loop's, plus ``q<k>`` for the output of the ``k``-th static node;
    the constants it reads are those of :meth:`constants` and, given by the caller,
    ``K<i>()`` (the checked kernel of the ``i``-th dynamic node, a DE node), ``Z<k>`` (the
    zero inputs), ``XZERO()`` (a zero input where the static nodes read one without external
    input), ``BIAS_ROWS()``, ``STEPSTATE`` (made by ``NEWSTATE`` and filled by ``FILL``,
    ``dict``'s own methods, which leave the state trusted) and ``ISSUER``."""

    at = ""

    def __init__(self, net, external: bool, single: bool, events: frozenset[str]) -> None:
        super().__init__(net, external, (), (), single, events)
        self.static_id = {v: k for k, v in enumerate(self.plan.static)}
        layout = net._weight_layout(self.events, self.written)
        self._layout = {e.key: how for e, how in layout}

    def source(self) -> str:
        lines = ["def _step(X, state):"]
        lines += self._static_lines() + self._weight_lines() + self._start_lines()
        body: list[str] = []
        for v in self.plan.dynamic:
            body += self._node_lines(v)
        body += self._delay_lines()
        lines += [line[4:] for line in body]  # the loop's body, out of the loop
        de = self.plan.de_nodes
        flat = ", ".join([f"*s{self.idx[v]}" for v in de] + self.state_names[len(de) :])
        out = self.net.output_node
        y = f"q{self.static_id[out]}" if out in self.static_id else self.shown[out]
        lines += [
            f"    flat = ({flat},)" if flat else "    flat = ()",
            "    new = NEWSTATE(STEPSTATE)",
            "    FILL(new, zip(KEYS, flat))",
            "    new._issuer = ISSUER",
            f"    return {y}, new",
        ]
        return "\n".join(lines) + "\n"

    def constants(self) -> dict:
        """The structural constants the source reads: edge modules ``E<j>`` (by the plan's
        edge order), dynamic node modules ``M<i>``, static ones ``N<k>`` and their input
        columns ``C<k>``, state classes ``STATE<i>``, the state keys ``KEYS`` and
        ``LINEAR`` (``torch.nn.functional.linear``)."""
        net, plan = self.net, self.plan
        out: dict = {f"E{j}": e.module for j, e in enumerate(plan.edges)}
        out["LINEAR"] = torch.nn.functional.linear
        out.update({f"M{i}": net.nodes[v] for v, i in self.idx.items()})
        out.update({f"STATE{self.idx[v]}": net.nodes[v].State for v in plan.de_nodes})
        for v, k in self.static_id.items():
            out[f"N{k}"], out[f"C{k}"] = net.nodes[v], net._input_columns.get(v)
        for key, how in self._layout.items():
            out[f"AS{self.eidx[key]}"] = AS_LOOP[how]
        out["KEYS"] = tuple(net.state_keys())
        return out

    def _static_lines(self) -> list[str]:
        """The static nodes on this step's input, then what each target with static edges
        receives from them, its folded biases included (``CompiledNetwork._precomputed``)."""
        net, lines = self.net, []
        if not self.external and any(v in self.static_id for v in net._input_nodes):
            lines.append("    X = XZERO()")
        for v, k in self.static_id.items():
            acc = None
            if v in net._input_columns:
                acc = "X" if net._input_columns[v] is None else f"X[..., C{k}].contiguous()"
            acc = self._projections(acc, net._into[v])
            lines.append(f"    q{k} = N{k}.fn({acc})")
        for t, i in ((t, self.pre_id[id(t)]) for t in self.pre):
            lines.append(f"    P{i} = {self._projections(None, t.static)}")
            for e in t.dynamic:  # the folded biases (an edge has one or not for good)
                if e.module.bias is not None:
                    lines.append(f"    P{i} = P{i} + E{self.eidx[e.key]}.bias")
        return lines

    def _projections(self, acc: str | None, edges: tuple[PlanEdge, ...]) -> str | None:
        for e in edges:
            term = f"E{self.eidx[e.key]}.project(q{self.static_id[e.source]})"
            acc = term if acc is None else f"{acc} + {term}"
        return acc

    def _product(self, acc: str | None, e: PlanEdge) -> str:
        """As the loop's, but a dense product with the transposed weights is
        ``linear(source, W, acc)``: the same ``addmm`` without a transposed view made at
        every step."""
        if self._layout[e.key] != "transposed":
            return super()._product(acc, e)
        args = f"{self._source_expr(e)}, W{self.eidx[e.key]}"
        return f"LINEAR({args})" if acc is None else f"LINEAR({args}, {acc})"

    def _weight_lines(self) -> list[str]:
        """The dynamic edges' current weights as the step multiplies them (see
        :meth:`_product`), the biases not folded, and the kernels."""
        lines = []
        for key, how in self._layout.items():
            j = self.eidx[key]
            read = f"E{j}.effective_weight()"
            lines.append(f"    W{j} = " + (read if how == "transposed" else f"AS{j}({read})"))
        if self.bias or self.live:
            names = [f"B{i}" for i in range(len(self.bias) + len(self.live))]
            lines.append(f"    {', '.join(names)}, = BIAS_ROWS()")
        for v, i in self.idx.items():
            de = v in self.plan.de_nodes
            lines.append(f"    step{i} = K{i}()" if de else f"    step{i} = M{i}.fn")
        return lines

    def _start_lines(self) -> list[str]:
        lines = []
        for v in self.plan.de_nodes:
            keys = ", ".join(f"state[{f'{v}.{var}'!r}]" for var in self.net.nodes[v].state_vars)
            lines.append(f"    s{self.idx[v]} = STATE{self.idx[v]}({keys})")
        for e in self.plan.delayed:
            for d in range(1, e.delay + 1):
                lines.append(f"    d{self.eidx[e.key]}_{d} = state[{f'{e.key}@{d}'!r}]")
        return lines
