r"""RectiPy 0.12's ``Network`` on rnngraph's core: a RectiPy script runs with its import
line changed and gives RectiPy's numbers.

    from rnngraph.compat.rectipy import Network, input_connections, random_connectivity

What RectiPy computes, computed as RectiPy computes it (float64), in particular:

* a differential-equation node is a population of units of a PyRates node template (read
  by :mod:`rnngraph.compat.pyrates`; RectiPy's own ``neuron_model_templates`` ship with
  rnngraph), integrated by forward Euler; ``weights=`` couples the units through
  ``source_var -> target_var`` within the step, from the state the step starts from;
* every node emits its ``output_var`` as it was when the step began (RectiPy's ``y_old``);
  recorded variables are read after the step;
* spiking templates (``spike_var``, ``reset_var``) spike when ``reset_var`` reaches
  ``spike_threshold`` at the start of a step, feed ``spike / dt`` to ``spike_var`` during
  it, and set ``reset_var`` to ``spike_reset`` after it;
* ``run`` records every ``sampling_steps``-th step from ``cutoff`` on the output averaged
  over the steps since the previous record (RectiPy's buffer), ``fit_ridge`` solves
  :math:`W = (X^\top X + \alpha I)^{-1} X^\top Y` on those records, ``reset()`` sets
  every state variable to 0 (not to its initial value), and an edge given weights of shape
  ``(n_source, n_target)`` takes them transposed (a square matrix always is).

Whatever RectiPy accepts that this layer does not reproduce is refused with an error that
says so. rnngraph's own :class:`rnngraph.Network` keeps rnngraph's semantics (README,
"Coming from RectiPy", lists each difference and the argument that gives RectiPy's).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

import networkx as nx
import numpy as np
import torch
from torch import Tensor

from .. import network as _rg
from ..nodes import DENode, FuncNode
from ._dialect import TEMPLATES, resolve_model, strip_op
from .pyrates import Coupling, SpikeRule, TemplateModel, read_template, template_model

__all__ = [
    "TEMPLATES",
    "FeedbackNetwork",
    "Network",
    "Observer",
    "input_connections",
    "normalize",
    "random_connectivity",
    "resolve_model",
    "strip_op",
    "wta_score",
]

_F64 = torch.float64
_ACTIVATIONS = ("tanh", "sigmoid", "softmax", "softmin", "log_softmax", "identity")
#: RectiPy's add_diffeq_node keywords this layer reads (anything else is refused)
_DIFFEQ_KWARGS = {
    "node_vars", "clear", "float_precision", "dtype", "N", "spike_threshold",
    "spike_reset", "spike_slope", "spike_center",
}  # fmt: skip


def _float64(where: str, what: str, value: Any) -> Tensor:
    t = torch.as_tensor(value.detach() if isinstance(value, Tensor) else value, dtype=_F64)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{where}: {what} contains NaN or inf values")
    return t


class Observer:
    """RectiPy's ``Observer``: lists of recorded values per key (``"out"``, ``"loss"``,
    ``"steps"`` and each ``(node, var)`` of ``record_vars``), plus values saved by name.

    Parameters
    ----------
    dt : float
        The step (the time axis of :meth:`to_dataframe` and :meth:`plot` is ``steps * dt``).
    record_output, record_loss : bool
        Whether :meth:`record` keeps the output and the loss.
    record_vars : list of tuples, optional
        ``(node, var, reduce)``: record ``var`` of ``node``, its mean over the units where
        ``reduce``.
    """

    def __init__(
        self,
        dt: float,
        record_output: bool = True,
        record_loss: bool = True,
        record_vars: list | None = None,
    ) -> None:
        where = "Observer"
        record_vars = list(record_vars or [])
        for v in record_vars:
            if not isinstance(v, tuple | list) or len(v) != 3:
                raise ValueError(
                    f"{where}: each record_vars entry is (node, var, reduce), got {v!r}"
                )
        self._dt = dt
        self._state_vars = [tuple(v[:2]) for v in record_vars]
        self._reduce_vars = [bool(v[2]) for v in record_vars]
        self._recordings: dict[Any, list] = {v: [] for v in self._state_vars}
        self._record_loss, self._record_out = bool(record_loss), bool(record_output)
        if self._record_loss:
            self._recordings["loss"] = []
        if self._record_out:
            self._recordings["out"] = []
        self._recordings["steps"] = []
        self._additional_storage: dict[str, Any] = {}

    def __getitem__(self, item: Any) -> Any:
        key = tuple(item) if isinstance(item, list) else item
        if key in self._recordings:
            return self._recordings[key]
        if key in self._additional_storage:
            return self._additional_storage[key]
        raise KeyError(
            f"Observer: nothing recorded or saved as {item!r}; recorded "
            f"{list(self._recordings)}, saved {list(self._additional_storage)}"
        )

    @property
    def recorded_state_variables(self) -> list:
        return list(self._state_vars)

    @property
    def recorded_variables(self) -> list:
        return list(self._recordings)

    def record(self, step: int, output: Tensor, loss: Any, record_vars: list) -> None:
        """Keep one step's output, loss and variables (in ``record_vars``' order)."""
        if len(record_vars) != len(self._state_vars):
            raise ValueError(
                f"Observer.record: {len(self._state_vars)} variables are recorded, got "
                f"{len(record_vars)} values"
            )
        recs = self._recordings
        recs["steps"].append(step)
        for key, val, reduce in zip(self._state_vars, record_vars, self._reduce_vars, strict=True):
            recs[key].append(torch.mean(val) if reduce else val)
        if self._record_out:
            recs["out"].append(output)
        if self._record_loss:
            recs["loss"].append(loss)

    def save(self, key: str, val: Any) -> None:
        self._additional_storage[key] = val

    def to_numpy(self, item: Any) -> np.ndarray:
        """The values of ``item`` as one array (recorded steps first)."""
        val = self[item]
        if isinstance(val, Tensor):
            return val.detach().cpu().numpy()
        return np.asarray([v.detach().cpu().numpy() if isinstance(v, Tensor) else v for v in val])

    def to_dataframe(self, item: Any):
        """The values of ``item`` as a ``pandas.DataFrame`` indexed by time."""
        import pandas as pd  # optional, as in RectiPy

        index = np.asarray(self._recordings["steps"]) * self._dt
        return pd.DataFrame(index=index, data=self.to_numpy(item))

    def plot(self, y: Any, x: Any = None, ax: Any = None, **kwargs: Any) -> Any:
        """A line plot of ``y`` over time (or over ``x``); returns the axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(
                **({"figsize": kwargs.pop("figsize")} if "figsize" in kwargs else {})
            )
        if x is None:
            ax.plot(np.asarray(self._recordings["steps"]) * self._dt, self.to_numpy(y), **kwargs)
        else:
            ax.plot(self.to_numpy(x), self.to_numpy(y), **kwargs)
        ax.set_xlabel("time" if x is None else str(x))
        ax.set_ylabel(str(y))
        return ax


class Edge(torch.nn.Module):
    """An edge as RectiPy holds it: ``weights`` ``(n_out, n_in)`` as multiplied (times
    ``mask`` where given); ``train`` is ``None``, ``"gd"`` or ``"rls"`` (with ``P``)."""

    def __init__(self, n_in: int, n_out: int, weights: Tensor, train: str | None, **extra: Any):
        super().__init__()
        self.n_in, self.n_out, self.train_mode = n_in, n_out, train
        if train == "gd":
            self.weights = torch.nn.Parameter(weights)
        else:
            self.register_buffer("weights", weights)
        self.mask = extra.get("mask")
        if train == "rls":
            self.beta = 1.0 / extra["beta"]
            self.P = extra["alpha"] * torch.eye(n_in, dtype=_F64)
            self.loss = 0.0

    def forward(self, x: Tensor) -> Tensor:
        return (self.weights if self.mask is None else self.weights * self.mask) @ x

    def update(self, x: Tensor, y: Tensor, y_hat: Tensor) -> None:
        r"""RectiPy's RLS step from source output ``x``, target ``y`` and prediction
        ``y_hat``: :math:`z = \beta^{-1} P x`, :math:`k = 1/(1 + x^\top z)`,
        :math:`W \mathrel{+}= (y - k\,x^\top(W + y z^\top)^\top) z^\top`,
        :math:`P \mathrel{-}= k\,z z^\top` (with :math:`\beta = 1`, recursive least squares)."""
        with torch.no_grad():
            z = self.beta * self.P @ x
            k = (1.0 + x @ z) ** (-1)
            error = y - y_hat
            self.weights += torch.outer((y - k * x @ (self.weights + torch.outer(y, z)).T), z)
            self.P -= k * torch.outer(z, z)
            self.loss = torch.inner(error, error)


def _edge_weights(where: str, weights: Any, n_in: int, n_out: int) -> Tensor:
    """The weights as the edge multiplies them: RectiPy takes ``(n_in, n_out)`` transposed
    (checked first, so a square matrix is always transposed), else ``(n_out, n_in)``."""
    if weights is None:  # RectiPy's draw, from torch's generator, oriented as given ones
        weights = torch.randn(n_out, n_in, dtype=_F64)
    w = _float64(where, "the weights", weights)
    if w.dim() == 2 and w.shape[0] == n_in and w.shape[1] == n_out:
        return w.T.clone()
    if w.dim() != 2 or w.shape[0] != n_out or w.shape[1] != n_in:
        raise ValueError(
            f"{where}: the weights must be ({n_out}, {n_in}) (target x source) or "
            f"({n_in}, {n_out}), got {tuple(w.shape)}"
        )
    return w.clone()


class _Built(NamedTuple):
    """The rnngraph network of a graph for one input width, made once per change of the
    graph: its compiled model, how each edge reads its source, and the state entries of
    the spiking nodes (shown as their steps began)."""

    width: int
    net: _rg.Network
    model: Any
    readings: dict[tuple[str, str], dict]
    spiking: tuple[str, ...]


class Network:
    """RectiPy 0.12's ``Network(dt, device)``: nodes and edges in a networkx graph,
    compiled into a forward pass from its one input node to its one output node.

    Parameters
    ----------
    dt : float
        The integration step (in the unit of the templates' time constants).
    device : str
        Where the network computes (``"cpu"``, ``"cuda:0"``, ...).
    """

    def __init__(self, dt: float, device: str = "cpu") -> None:
        if isinstance(dt, bool) or not isinstance(dt, int | float) or not dt > 0:
            raise ValueError(f"Network: dt must be a number > 0, got {dt!r}")
        self.dt, self.device = float(dt), device
        self.graph = nx.DiGraph()
        self._held: dict[str, Tensor] = {}  # "node.var" -> (1, n), the state runs continue
        self._shown: dict[str, Tensor] = {}  # what get_var shows of a spiking node (see run)
        self._in_node: str | None = None
        self._out_node: str | None = None
        self._built: _Built | None = None  # unset by every change of the graph
        self._rls: tuple[str, str] | None = None  # the edge added with train="rls"

    # ---- graph access (RectiPy's) --------------------------------------------------------

    def __getitem__(self, item: Any) -> dict:
        if isinstance(item, tuple):
            return self.graph[item[0]][item[1]]
        return self.graph.nodes[item]

    def __iter__(self) -> Iterator[dict]:
        for n in self.graph.nodes:
            yield self[n]

    def __len__(self) -> int:
        return len(self.graph.nodes)

    def __call__(self, x: Any) -> Tensor:
        return self.forward(x)

    @property
    def nodes(self):
        return self.graph.nodes

    @property
    def n_in(self) -> int:
        self.compile()
        return self[self._in_node]["n_in"]

    @property
    def n_out(self) -> int:
        self.compile()
        return self[self._out_node]["n_out"]

    @property
    def state(self) -> dict[str, dict[str, Tensor]]:
        """Each differential-equation node's state variables (copies), by node and variable
        (RectiPy gives one flat vector per node; :meth:`reset` takes either's values by
        variable name). A spiking node's are those its last step began from, as in
        RectiPy."""
        out: dict[str, dict[str, Tensor]] = {}
        for key, v in self._held.items():
            node, _, var = key.partition(".")
            if var == "y_old":  # the output a step began with: set anew by every step
                continue
            shown = self._shown.get(key, v)  # a spiking node's: as its last step began
            out.setdefault(node, {})[var] = shown[0].detach().clone()
        return out

    def get_node(self, node: str) -> Any:
        return self._node_data("Network.get_node", node)["node"]

    def get_edge(self, source: str, target: str) -> Edge:
        if not self.graph.has_edge(source, target):
            raise KeyError(f"Network.get_edge: no edge {source!r} -> {target!r}")
        return self.graph[source][target]["edge"]

    def _node_data(self, where: str, node: str) -> dict:
        if node not in self.graph:
            raise KeyError(f"{where}: no node {node!r}; nodes are {list(self.graph)}")
        return self.graph.nodes[node]

    # ---- building --------------------------------------------------------------------------

    def add_diffeq_node(
        self,
        label: str,
        node: Any,
        input_var: str,
        output_var: str,
        weights: Any = None,
        source_var: str | None = None,
        target_var: str | None = None,
        spike_var: str | list | None = None,
        reset_var: str | list | None = None,
        reset: bool = True,
        op: str | None = None,
        train_params: list | None = None,
        **kwargs: Any,
    ) -> TemplateModel:
        """A population of units of the node template ``node`` (a template path), ``N =
        weights.shape[0]`` of them (or ``N=`` without weights), coupled by ``weights`` from
        ``source_var`` to ``target_var``; input arrives on ``input_var``, the node emits
        ``output_var``. ``op`` names the operator of names given without one. ``node_vars=``
        sets constants and initial values (scalars or one value per unit),
        ``train_params`` the constants (and ``"weights"``) to train. Spiking templates take
        ``spike_var``, ``reset_var``, ``spike_threshold`` (default 100), ``spike_reset``
        (-100) and ``spike_slope`` (``100 / |threshold - reset|``, the surrogate's)."""
        where = f"Network.add_diffeq_node({label!r})"
        unknown = sorted(set(kwargs) - _DIFFEQ_KWARGS)
        if unknown:
            raise TypeError(
                f"{where}: keyword(s) {unknown} are not reproduced by rnngraph.compat.rectipy; "
                f"it reads {sorted(_DIFFEQ_KWARGS)}"
            )
        model, n = self._template_population(where, node, locals(), kwargs)
        self.graph.add_node(label, node=model, node_type="diff_eq", n_in=n, n_out=n)
        s = model.init_state(1, dtype=_F64)
        for table in (self._held, self._shown):  # a node of this label before: forgotten
            for k in [k for k in table if k.partition(".")[0] == label]:
                del table[k]
        self._held.update({f"{label}.{v}": x for v, x in zip(model.state_vars, s, strict=True)})
        self._built = None
        return model

    def _template_population(
        self, where: str, node: Any, args: dict, kwargs: dict
    ) -> tuple[TemplateModel, int]:
        """The model instance RectiPy's ``add_diffeq_node`` arguments describe."""
        op = args["op"]

        def q(name: Any) -> Any:  # RectiPy's add_op_name
            if name is None or not isinstance(name, str) or op is None or "/" in name:
                return name
            return f"{op}/{name}"

        _check_precision(where, kwargs)
        if not isinstance(node, str):
            raise TypeError(
                f"{where}: node must be a template path (PyRates template objects are not "
                f"read), got {type(node).__name__}"
            )
        weights = args["weights"]
        if weights is not None:
            weights = _float64(where, "weights", weights)
            if weights.dim() != 2 or weights.shape[0] != weights.shape[1]:
                raise ValueError(f"{where}: weights must be N x N, got {tuple(weights.shape)}")
            if args["source_var"] is None or args["target_var"] is None:
                raise ValueError(
                    f"{where}: weights need the source_var and target_var they connect"
                )
            n = weights.shape[0]
        elif "N" in kwargs:
            n = kwargs["N"]
        else:
            raise ValueError(f"{where}: give weights (N x N) or the number of units N=")
        spike = _spike_rule(where, args, kwargs, q)
        coupling = (
            None if weights is None else Coupling(q(args["source_var"]), q(args["target_var"]))
        )
        cls = template_model(
            read_template(node, where), q(args["output_var"]), spike, coupling, True
        )
        st = cls.template
        if cls.output_key not in st.states:
            raise ValueError(
                f"{where}: output_var {args['output_var']!r} is an algebraic variable; RectiPy "
                f"0.12 emits the state vector's entries at its position instead (for the "
                f"leaky integrator's tanh_op/r, v); name a state variable"
            )
        if st.key(where, q(args["input_var"])) not in cls.input_names:
            raise ValueError(
                f"{where}: input_var {args['input_var']!r} is not an input of {node!r}"
            )
        if coupling is not None and cls.coupling.target == st.key(where, q(args["input_var"])):
            raise ValueError(f"{where}: input_var and target_var name the same input")
        values, init = _node_vars(where, st, kwargs.get("node_vars") or {}, op, n)
        # PyRates gives every unit its own copy of each constant (trained one by one)
        values = {k: torch.broadcast_to(torch.as_tensor(values.get(k, d), dtype=_F64), (n,))
                  for k, d in st.constants.items()}  # fmt: skip
        train = [st.key(where, q(p)) if p != "weights" else p for p in args["train_params"] or []]
        model = cls(
            n, train=train, init=init, dt=self.dt if spike else None, weights=weights, **values
        )
        model.input_key = st.key(where, q(args["input_var"]))
        model.train_order = train  # RectiPy yields its parameters in train_params' order
        return model, n

    def add_node(
        self, label: str, node: Any, node_type: str, op: str | None = None, **node_attrs: Any
    ) -> None:
        """RectiPy adds instances of its own node classes here; they are not reproduced
        (add the node with :meth:`add_diffeq_node` or :meth:`add_func_node`)."""
        raise TypeError(
            f"Network.add_node({label!r}): RectiPy's node instances are not reproduced; "
            f"add the node with add_diffeq_node (a template path) or add_func_node"
        )

    def add_func_node(self, label: str, n: int, activation_function: str, **kwargs: Any) -> Any:
        """A node ``y = f(x)`` of ``n`` units: ``activation_function`` one of RectiPy's
        (``tanh``, ``sigmoid``, ``softmax``, ``softmin``, ``log_softmax``, ``identity``);
        the softmax family over the units (``dim=0`` of a step's vector, RectiPy's
        default)."""
        where = f"Network.add_func_node({label!r})"
        if activation_function not in _ACTIVATIONS:
            raise ValueError(
                f"{where}: {activation_function!r} is not a valid option: {list(_ACTIVATIONS)}"
            )
        dim = kwargs.pop("dim", 0)
        kwargs.pop("node_type", None)  # fit_ridge's own call passes it; it selects nothing
        if kwargs or dim not in (0, -1):
            raise TypeError(f"{where}: only dim=0 (the units) is reproduced; got {kwargs or dim}")
        fn = FuncNode(n, activation_function)
        self.graph.add_node(label, node=fn, node_type="func_instant", n_in=n, n_out=n)
        self._built = None
        return fn

    def add_edge(
        self,
        source: str,
        target: str,
        weights: Any = None,
        train: str | None = None,
        dtype: torch.dtype = torch.float64,
        edge_attrs: dict | None = None,
        **kwargs: Any,
    ) -> Edge:
        """An edge ``source -> target`` (into the target's ``input_var``) with ``weights``
        (drawn from ``torch.randn`` when not given); ``train`` ``None``, ``"gd"`` or
        ``"rls"`` (with ``beta`` and ``alpha``, RectiPy's, ``P(0) = alpha I``); ``mask=``
        multiplies the weights."""
        where = f"Network.add_edge({source!r}, {target!r})"
        n_in = self._node_data(where, source)["n_out"]
        n_out = self._node_data(where, target)["n_in"]
        if dtype is not torch.float64:
            raise ValueError(f"{where}: RectiPy 0.12 computes in float64; got dtype={dtype}")
        if train not in (None, "gd", "rls"):
            raise ValueError(f"{where}: train must be None, 'gd' or 'rls', got {train!r}")
        extra = _edge_options(where, train, kwargs, n_in, n_out)
        if weights is None and train == "rls":  # RectiPy's RLS edge starts from zeros
            weights = torch.zeros(n_out, n_in, dtype=_F64)
        edge = Edge(n_in, n_out, _edge_weights(where, weights, n_in, n_out), train, **extra)
        if train == "rls":
            self._rls = (source, target)
        self.graph.add_edge(
            source, target, edge=edge, trainable=train is not None, n_in=n_in, n_out=n_out,
            **(edge_attrs or {}),
        )  # fmt: skip
        self._built = None
        return edge

    def pop_node(self, node: str) -> Any:
        data = self.get_node(node)
        self.graph.remove_node(node)
        self._held = {k: v for k, v in self._held.items() if k.partition(".")[0] != node}
        self._shown = {k: v for k, v in self._shown.items() if k.partition(".")[0] != node}
        self._built = None
        return data

    def pop_edge(self, source: str, target: str) -> Edge:
        edge = self.get_edge(source, target)
        self.graph.remove_edge(source, target)
        self._built = None
        return edge

    def clear(self) -> None:
        """Remove every node and edge."""
        for node in list(self.graph.nodes):
            self.pop_node(node)

    # ---- compiling and running ---------------------------------------------------------------

    def compile(self) -> None:
        """Find the input node (the one without incoming edges) and the output node (the one
        without outgoing edges); there must be exactly one of each."""
        g = self._forward_graph()
        for kind, degree in (("input", g.in_degree), ("output", g.out_degree)):
            ends = [n for n in g.nodes if degree(n) == 0]
            if len(ends) != 1:
                raise ValueError(
                    f"Network.compile: unable to identify the {kind} node of the Network; "
                    f"nodes without {'incoming' if kind == 'input' else 'outgoing'} edges: "
                    f"{ends} (exactly one must exist)"
                )
            setattr(self, f"_{'in' if kind == 'input' else 'out'}_node", ends[0])
        if any(nx.simple_cycles(g)):
            raise ValueError("Network.compile: the graph has a cycle (RectiPy's is a chain)")
        joins = [n for n in g.nodes if g.in_degree(n) > 1]
        if joins:  # RectiPy's forward pass fails there (it sums the inputs as scalars)
            raise ValueError(
                f"Network.compile: node(s) {joins} receive several edges; RectiPy's forward "
                f"pass takes one input edge per node"
            )

    def _forward_graph(self) -> nx.DiGraph:
        """The graph of the forward pass (here: all of it)."""
        return self.graph

    def _network(self, width: int) -> _rg.Network:
        """The rnngraph network of this graph for inputs of ``width`` channels (made again
        after any change of the graph), sharing this graph's node modules and weights."""
        if self._built is not None and self._built.width == width:
            return self._built.net
        self.compile()
        net = _rg.Network(dt=self.dt, device=self.device, dtype=_F64)
        for label, data in self.graph.nodes(data=True):
            net.add_node(label, data["node"])
        first = self[self._in_node]
        if isinstance(first["node"], DENode):  # the input drives input_var directly
            n = first["n_in"]
            if width not in (1, n):
                raise ValueError(
                    f"Network.run: inputs of {width} channels drive node {self._in_node!r} "
                    f"of {n} units (give {n} channels, or 1 for all units)"
                )
            net.add_func_node("__input__", width)
            w = torch.eye(n, dtype=_F64) if width == n else torch.ones(n, 1, dtype=_F64)
            net.add_edge("__input__", self._in_node, w, target_var=first["node"].input_key)
        elif width != first["n_in"]:
            raise ValueError(
                f"Network.run: inputs have {width} channels; the input node "
                f"{self._in_node!r} has {first['n_in']} units"
            )
        readings = {}
        for u, v, data in self.graph.edges(data=True):
            e, target = data["edge"], self[v]["node"]
            key = target.input_key if isinstance(target, DENode) else None
            readings[u, v] = self._reading(u, v)
            made = net.add_edge(u, v, e.weights.detach(), mask=e.mask, target_var=key,
                                **readings[u, v])  # fmt: skip
            made.weight = e.weights  # the same tensor: training either trains both
        spiking = tuple(
            f"{n}.{var}"
            for n, d in self.graph.nodes(data=True)
            if getattr(d["node"], "spike_rule", None) is not None
            for var in d["node"].state_vars
        )
        self._built = _Built(width, net, net.compile(), readings, spiking)
        return net

    def _reading(self, source: str, target: str) -> dict:
        """How the rnngraph edge ``source -> target`` reads its source (here: the output)."""
        return {}

    def _lines(self) -> dict[str, Tensor]:
        """The delay lines a run starts from, derived from the nodes' state (here: none)."""
        return {}

    def _inputs(self, where: str, inputs: Any) -> Tensor:
        x = _float64(where, "inputs", inputs).to(self.device)
        if x.dim() != 2:
            raise ValueError(
                f"{where}: inputs must be T x m (steps x channels), got {tuple(x.shape)}"
            )
        return x

    def _simulate(
        self, x: Tensor, names: list[str], grad: bool, verbose: bool = False
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Outputs ``(T, n_out)`` and the recorded ``node.key`` variables ``(T, n)`` of a
        run over ``x`` from the held state, which then holds the final state.

        A spiking node shows its variables as they were when each step began (RectiPy's
        spiking nodes keep their new state apart from the ``y`` that ``get_var`` reads)."""
        net = self._network(x.shape[1])
        shown = list(self._built.spiking)
        record = list(dict.fromkeys(names + shown))
        before = dict(self._held)
        if x.shape[0] == 1 and not names and not verbose:  # forward(): one step, step()'s
            with torch.set_grad_enabled(grad):
                y, new = self._built.model.step(x, {**before, **self._lines()})
            self._held = {k: new[k] for k in self._held}
            self._shown.update({k: before[k] for k in shown})
            return y, {}
        rec = net.run(x, state={**before, **self._lines()}, record=record or None,
                      enable_grad=grad, verbose=verbose)  # fmt: skip
        self._held = {k: v for k, v in rec.state.items() if k in self._held}
        values = {k: rec[k] for k in record}
        for k in shown:
            values[k] = torch.cat([before[k], values[k][:-1]])
            self._shown[k] = values[k][-1:]
        return rec.output, values

    def _record_names(self, where: str, obs: Observer) -> list[str]:
        names = []
        for node, var in obs.recorded_state_variables:
            model = self._node_data(where, node)["node"]
            if not isinstance(model, TemplateModel):
                raise ValueError(f"{where}: node {node!r} has no state variables to record")
            key = model.template.key(where, var)
            if key not in model.template.states:
                raise ValueError(f"{where}: {node}/{var} is not a state variable of {node!r}")
            names.append(f"{node}.{key}")
        return names

    def run(
        self,
        inputs: Any,
        sampling_steps: int = 1,
        cutoff: int = 0,
        verbose: bool = True,
        enable_grad: bool = True,
        **kwargs: Any,
    ) -> Observer:
        """Integrate the network over ``inputs`` (``T x m``) from its current state; record
        every ``sampling_steps``-th step from ``cutoff`` on: the output averaged over the
        steps since the previous record, and ``record_vars`` (``(node, var, reduce)``)
        after that step. ``record_output``, ``record_loss`` and ``obs`` (an
        :class:`Observer` to fill) as in RectiPy; ``truncate_steps`` cuts the gradient
        every so many steps."""
        where = "Network.run"
        x = self._inputs(where, inputs)
        steps = x.shape[0]
        truncate = kwargs.pop("truncate_steps", steps)
        obs = kwargs.pop("obs", None)
        if obs is None:
            obs = Observer(self.dt, record_loss=kwargs.pop("record_loss", False), **kwargs)
        elif kwargs:
            raise TypeError(f"{where}: obs= and {sorted(kwargs)} given together")
        ss, cut = _positive(where, "sampling_steps", sampling_steps), _first(where, cutoff)
        names = self._record_names(where, obs)
        outs, values = [], {k: [] for k in names}
        for start in range(0, steps, _positive(where, "truncate_steps", truncate)):
            out, vals = self._simulate(x[start : start + truncate], names, enable_grad, verbose)
            outs.append(out)
            for k in names:
                values[k].append(vals[k])
            if start + truncate < steps:
                self.detach()
        out = torch.cat(outs)
        _fill(obs, out, {k: torch.cat(v) for k, v in values.items()}, names, ss, cut, 0.0)
        return obs

    def forward(self, x: Any) -> Tensor:
        """One step on the input ``x`` (``m`` values): the output node's output."""
        x = torch.as_tensor(x)
        x = x.reshape(1, -1) if x.dim() <= 1 else x  # one step's m values (a scalar: m = 1)
        out, _ = self._simulate(self._inputs("Network.forward", x), [], torch.is_grad_enabled())
        return out[0]

    # ---- variables, state ------------------------------------------------------------------

    def _model_key(self, where: str, node: str, var: str) -> tuple[TemplateModel, str]:
        model = self._node_data(where, node)["node"]
        if not isinstance(model, TemplateModel):
            raise KeyError(f"{where}: node {node!r} is a function node; it has no variables")
        if var == "weights" and model.coupling is not None:
            return model, "weights"
        return model, model.template.key(where, var)

    def get_var(self, node: str, var: str) -> Tensor:
        """A state variable (its current value, one per unit) or a constant of ``node``."""
        model, key = self._model_key("Network.get_var", node, var)
        if key in model.template.states:
            name = f"{node}.{key}"
            return self._shown.get(name, self._held[name])[0]
        return getattr(model, key)

    def set_var(self, node: str, var: str, val: Any) -> None:
        """Set a constant (a scalar or one value per unit) or the current value of a state
        variable of ``node`` (what the node emits next follows it)."""
        where = "Network.set_var"
        model, key = self._model_key(where, node, var)
        new = _float64(where, f"the value of {node}/{var}", val).to(self.device)
        if key in model.template.states:
            if model.spike_rule is not None:
                raise ValueError(
                    f"{where}: RectiPy's spiking nodes drop a state value set this way (the "
                    f"next step starts from their own copy); set it with reset(state=...)"
                )
            name = f"{node}.{key}"
            self._held[name] = _fitted(where, name, new, self._held[name])
            return
        if key == "weights":
            if new.shape != model.weights.shape:
                raise ValueError(f"{where}: weights must be {tuple(model.weights.shape)}")
            with torch.no_grad():
                model.weights.copy_(new)
            return
        checked = model.check_param(f"{where}({node!r})", key, new)
        checked = checked.reshape(()) if checked.numel() == 1 else checked
        with torch.no_grad():
            p = getattr(model, key)  # one value per unit (PyRates'), stays so
            p.copy_(torch.broadcast_to(checked.to(p), p.shape))

    def reset(self, state: dict | None = None) -> None:
        """Set every state variable to 0 (RectiPy's reset; not to the initial values), or to
        ``state`` (``{node: {var: value}}``, as :attr:`state` gives it; ``var`` or
        ``op/var``) where given. Every value is checked before anything changes."""
        where = "Network.reset"
        state = dict(state or {})
        unknown = [n for n in state if n not in self.graph]
        if unknown:
            raise KeyError(f"{where}: no node(s) {unknown}")
        new: dict[str, Tensor] = {}
        for node, data in self.graph.nodes(data=True):
            model = data["node"]
            if not isinstance(model, TemplateModel):
                if node in state:
                    raise ValueError(f"{where}: {node!r} is a function node; it has no state")
                continue
            given = state.get(node, {})
            if not isinstance(given, dict):
                raise TypeError(f"{where}: state[{node!r}] must map variables to values")
            keys = {model.template.key(where, v): v for v in given}
            stray = [v for k, v in keys.items() if k not in model.state_vars]
            if stray:
                raise ValueError(f"{where}: {node!r} has no state variable(s) {stray}")
            for v in model.state_vars:
                name = f"{node}.{v}"
                value = given[keys[v]] if v in keys else 0.0
                new[name] = _fitted(where, name, value, self._held[name])
        self._held.update(new)
        self._shown = {}

    def detach(self, requires_grad: bool = True, detach_params: bool = False) -> None:
        """Cut the state from the autograd graph; the detached state requires gradients
        where ``requires_grad`` (RectiPy's default)."""
        if detach_params:
            raise ValueError(
                "Network.detach: detach_params=True is not reproduced (RectiPy replaces the "
                "trained parameters by copies its optimiser does not hold)"
            )
        self._held = {
            k: v.detach().requires_grad_(bool(requires_grad)) for k, v in self._held.items()
        }

    def parameters(self, recurse: bool = True) -> Iterator[Tensor]:
        """The trained tensors: each node's ``train_params`` (in their order) and the
        ``"gd"`` edges' weights."""
        for _, data in self.graph.nodes(data=True):
            for key in getattr(data["node"], "train_order", ()):
                yield getattr(data["node"], key)
        for _, _, data in self.graph.edges(data=True):
            if data["edge"].train_mode == "gd":
                yield data["edge"].weights

    # ---- training and testing ----------------------------------------------------------------

    def fit_ridge(
        self,
        inputs: Any,
        targets: Any,
        sampling_steps: int = 100,
        alpha: float = 1e-4,
        verbose: bool = True,
        add_readout_node: bool = True,
        **kwargs: Any,
    ) -> Observer:
        r"""Ridge regression of ``targets`` on the recorded outputs :math:`X` (one row per
        record, see :meth:`run`): :math:`W = (X^\top X + \alpha I)^{-1} X^\top Y`, as
        RectiPy computes it (its :math:`\alpha I` is a float32 identity times ``alpha``).
        Saves ``"w_out"`` and the fit ``"y"`` on the observer; with ``add_readout_node``
        adds the node ``"readout"`` fed by the output node through :math:`W^\top`."""
        where = "Network.fit_ridge"
        y = self._targets(where, targets, inputs)
        every = _positive(where, "sampling_steps", sampling_steps)
        records = len(_recorded(y.shape[0], every, _first(where, kwargs.get("cutoff", 0))))
        if records != y.shape[0]:  # checked before the run changes the state
            raise ValueError(
                f"{where}: {records} records (sampling_steps={sampling_steps}) for "
                f"{y.shape[0]} target rows; RectiPy regresses one target row per record "
                f"(sampling_steps=1 for one per step)"
            )
        obs = self.run(inputs, sampling_steps=sampling_steps, verbose=verbose, **kwargs)
        X = torch.stack(obs["out"])
        eye = alpha * torch.eye(X.shape[1])  # RectiPy's: in torch's default dtype
        w_out = torch.inverse(X.T @ X + eye) @ X.T @ y
        if add_readout_node:
            self.add_func_node("readout", w_out.shape[1], "identity")
            self.add_edge(self._out_node, "readout", weights=w_out.T)
        obs.save("y", X @ w_out)
        obs.save("w_out", w_out)
        return obs

    def fit_bptt(
        self,
        inputs: Any,
        targets: Any,
        optimizer: str = "sgd",
        optimizer_kwargs: dict | None = None,
        loss: str = "mse",
        loss_kwargs: dict | None = None,
        lr: float = 1e-3,
        sampling_steps: int = 1,
        update_steps: int = 100,
        verbose: bool = True,
        **kwargs: Any,
    ) -> Observer:
        """Backpropagation through time, as RectiPy runs it. ``inputs`` ``T x m``: an update
        after every ``update_steps`` steps on the loss of their outputs, the state cut from
        the graph after it; every ``sampling_steps``-th step recorded with the latest loss.
        A list of arrays: one update per array (an epoch, its outputs recorded as
        :meth:`run` records them), each epoch from the state the training began with; it
        returns the last epoch's recording with ``"epoch_loss"`` and ``"epochs"`` saved.
        ``retain_graph`` and ``closure`` go to ``backward`` and the optimiser's ``step``."""
        where = "Network.fit_bptt"
        error_kwargs = {k: kwargs.pop(k) for k in ("retain_graph",) if k in kwargs}
        step_kwargs = {k: kwargs.pop(k) for k in ("closure",) if k in kwargs}
        obs = self._observer(where, kwargs, record_loss=True)
        fn = _loss(where, loss, loss_kwargs)
        if optimizer not in _OPTIMIZERS:
            raise ValueError(f"{where}: unknown optimizer {optimizer!r}: {sorted(_OPTIMIZERS)}")
        epochs = isinstance(inputs, list)
        width = np.shape(inputs[0] if epochs else inputs)[-1]
        self._network(int(width))  # the modules the optimiser holds, made before it
        opt = _OPTIMIZERS[optimizer](self.parameters(), lr=lr, **(optimizer_kwargs or {}))

        def update(pred: Tensor, target: Tensor) -> float:
            error = fn(pred, target)
            opt.zero_grad()
            error.backward(**error_kwargs)
            opt.step(**step_kwargs)
            return error.item()

        if epochs:
            return self._epochs(where, inputs, targets, obs, sampling_steps, update)
        x, y = self._inputs(where, inputs), self._targets(where, targets, inputs)
        every, error = _positive(where, "sampling_steps", sampling_steps), 0.0
        window = _positive(where, "update_steps", update_steps)
        for a in range(0, x.shape[0], window):
            with torch.enable_grad():
                out, _ = self._simulate(x[a : a + window], [], True, verbose)
            new = error
            if out.shape[0] == window:
                new = update(out, y[a : a + window])
                self.detach()
            for s in range(a, a + out.shape[0]):
                if s % every == 0:
                    obs.record(s, out[s - a], new if s == a + window - 1 else error, [])
            error = new
        return obs

    def fit_eprop(
        self,
        inputs: Any,
        targets: Any,
        feedback_weights: Any = None,
        epsilon: float = 0.99,
        delta: float = 0.9,
        update_steps: int = 1,
        sampling_steps: int = 100,
        verbose: bool = True,
        **kwargs: Any,
    ) -> Observer:
        """Not implemented in RectiPy 0.12 either (it raises ``NotImplementedError``);
        rnngraph's own e-prop is :meth:`rnngraph.Network.fit_eprop`."""
        raise NotImplementedError(
            "Network.fit_eprop: RectiPy 0.12 does not implement it; rnngraph's e-prop is "
            "rnngraph.Network.fit_eprop (Bellec et al. 2020)"
        )

    def _observer(self, where: str, kwargs: dict, record_loss: bool) -> Observer:
        """The observer of a training call from its keywords (RectiPy's ``record_output``,
        ``record_loss``); any other keyword is refused. RectiPy's trainers record their
        ``record_vars`` wrongly (an edge's attributes), so those are refused too."""
        opts = {k: kwargs.pop(k) for k in ("record_output", "record_loss") if k in kwargs}
        if "record_vars" in kwargs:
            raise ValueError(
                f"{where}: record_vars is not reproduced in training (RectiPy records the "
                f"graph's edge attributes there); record them with run()"
            )
        if kwargs:
            raise TypeError(f"{where}: keyword(s) {sorted(kwargs)} are not reproduced")
        return Observer(self.dt, **{"record_loss": record_loss, **opts})

    def _epochs(self, where, inputs, targets, obs, sampling_steps, update) -> Observer:
        if not isinstance(targets, list) or len(targets) != len(inputs):
            raise ValueError(f"{where}: inputs and targets must be lists of the same length")
        start, losses = self.state, []
        for x, y in zip(inputs, targets, strict=True):
            with torch.enable_grad():
                obs = self.run(x, sampling_steps=sampling_steps, verbose=False, enable_grad=True)
            losses.append(update(torch.stack(obs["out"]), _float64(where, "targets", y)))
            self.reset(start)
        # RectiPy returns the last epoch's recording, with the losses saved on it
        obs.save("epoch_loss", losses)
        obs.save("epochs", np.arange(len(inputs)))
        return obs

    def fit_rls(
        self,
        inputs: Any,
        targets: Any,
        update_steps: int = 1,
        sampling_steps: int = 100,
        verbose: bool = True,
        **kwargs: Any,
    ) -> Observer:
        r"""Train the edge added with ``train="rls"`` online: at every ``update_steps``-th
        step, RectiPy's RLS step (:meth:`Edge.update`) on the edge's source output, the
        target and the edge's target output of that step; every ``sampling_steps``-th step
        recorded with the latest loss :math:`|y - \hat y|^2` (and, with ``verbose``, printed
        as RectiPy prints it)."""
        where = "Network.fit_rls"
        obs = self._observer(where, kwargs, record_loss=True)
        if self._rls is None or not self.graph.has_edge(*self._rls):
            raise ValueError(f"{where}: no edge was added with train='rls'")
        x, y = self._inputs(where, inputs), self._targets(where, targets, inputs)
        every = _positive(where, "sampling_steps", sampling_steps)
        window = _positive(where, "update_steps", update_steps)
        source, target = self._rls
        edge, loss = self.get_edge(source, target), 0.0
        if y.dim() != 2 or y.shape[1] != edge.n_out:
            raise ValueError(
                f"{where}: targets must be T x {edge.n_out} (the RLS edge's outputs), got "
                f"{tuple(y.shape)}"
            )
        for a in range(0, x.shape[0], window):
            for b, e in ((a, a + 1), (a + 1, min(a + window, x.shape[0]))):
                if b >= e:
                    continue
                out, rec = self._simulate(x[b:e], [source, target], False)
                if b == a:
                    edge.update(rec[source][0], y[a], rec[target][0])
                    loss = edge.loss
                for s in range(b, e):
                    if s % every == 0:
                        if verbose:  # RectiPy's progress line at each record
                            print(f"Progress: {s}/{x.shape[0]} training steps finished. "
                                  f"Current loss: {loss}.")  # fmt: skip
                        obs.record(s, out[s - b], loss, [])
        return obs

    def _targets(self, where: str, targets: Any, inputs: Any) -> Tensor:
        y = _float64(where, "targets", targets).to(self.device)
        if y.shape[0] != np.shape(inputs)[0]:
            raise ValueError(
                f"{where}: inputs and targets must agree in their first dimension; got "
                f"{np.shape(inputs)[0]} and {y.shape[0]}"
            )
        return y

    def test(
        self,
        inputs: Any,
        targets: Any,
        loss: str = "mse",
        loss_kwargs: dict | None = None,
        sampling_steps: int = 100,
        verbose: bool = True,
        **kwargs: Any,
    ) -> tuple[Observer, float]:
        """Run on ``inputs`` and return the observer and the loss of its recorded outputs
        against ``targets`` (one row per record)."""
        where = "Network.test"
        fn = _loss(where, loss, loss_kwargs)
        y = _float64(where, "targets", targets).to(self.device)
        obs = self.run(inputs, sampling_steps=sampling_steps, verbose=verbose, **kwargs)
        return obs, fn(torch.stack(obs["out"]), y).item()


class FeedbackNetwork(Network):
    """RectiPy 0.12's ``FeedbackNetwork(dt, device)``: edges added with ``feedback=True``
    stay out of the forward pass. Such an edge, from a differential-equation node, brings
    its target ``W`` times the source's output variable as RectiPy's node holds it when the
    target is computed: after this step's update where the source comes earlier in the
    forward pass, else before it; a spiking source holds the state its latest step began
    from. At most one feedback edge may enter a node (RectiPy fails on more)."""

    def add_edge(
        self,
        source: str,
        target: str,
        weights: Any = None,
        train: str | None = None,
        feedback: bool = False,
        dtype: torch.dtype = torch.float64,
        edge_attrs: dict | None = None,
        **kwargs: Any,
    ) -> Edge:
        """:meth:`Network.add_edge`, with ``feedback`` (see the class docstring)."""
        where = f"FeedbackNetwork.add_edge({source!r}, {target!r})"
        if feedback:
            if not isinstance(self._node_data(where, source)["node"], TemplateModel):
                raise ValueError(
                    f"{where}: a feedback edge reads a differential-equation node's output "
                    f"variable; RectiPy fails on a function node's"
                )
            if train == "rls":
                raise ValueError(f"{where}: RLS training of a feedback edge is not reproduced")
        attrs = {**(edge_attrs or {}), "feedback": bool(feedback)}
        return super().add_edge(source, target, weights, train, dtype, attrs, **kwargs)

    def parameters(self, recurse: bool = True) -> Iterator[Tensor]:
        """As RectiPy's: the forward graph's nodes' and edges' trained tensors, then the
        feedback graph's, so a node on a feedback edge yields its ``train_params`` twice
        (and an optimiser built on them steps them twice per update, as in RectiPy)."""
        fwd = [(u, v) for u, v, d in self.graph.edges(data=True) if not d.get("feedback")]
        fb = [(u, v) for u, v, d in self.graph.edges(data=True) if d.get("feedback")]
        for edges in (fwd, fb):
            touched = {n for e in edges for n in e}
            for n in (n for n in self.graph.nodes if n in touched):
                for key in getattr(self[n]["node"], "train_order", ()):
                    yield getattr(self[n]["node"], key)
            for u, v in edges:
                if self.graph[u][v]["edge"].train_mode == "gd":
                    yield self.graph[u][v]["edge"].weights

    def _forward_graph(self) -> nx.DiGraph:
        g = nx.DiGraph()
        g.add_nodes_from(self.graph.nodes)
        g.add_edges_from((u, v) for u, v, d in self.graph.edges(data=True) if not d.get("feedback"))
        return g

    def compile(self) -> None:
        super().compile()
        fed = [v for v in self.graph.nodes if len(self._feedback_into(v)) > 1]
        if fed:
            raise ValueError(
                f"FeedbackNetwork.compile: node(s) {fed} receive several feedback edges"
            )

    def _feedback_into(self, v: str) -> list[str]:
        return [u for u, _, d in self.graph.in_edges(v, data=True) if d.get("feedback")]

    def _delay(self, source: str, target: str) -> int:
        """Steps between the source's update and what the target reads of it (see above);
        found when the network is built."""
        order = list(nx.topological_sort(self._forward_graph()))
        later = order.index(source) >= order.index(target)
        return int(later) + int(self[source]["node"].spike_rule is not None)

    def _reading(self, source: str, target: str) -> dict:
        if not self.graph[source][target].get("feedback"):
            return {}
        d = self._delay(source, target)
        return {"source_var": self[source]["node"].output_key, "delay": d, "feedback": d > 0}

    def _lines(self) -> dict[str, Tensor]:
        lines = {}
        for (u, v), reading in self._built.readings.items():
            if not reading.get("delay"):
                continue
            name = f"{u}.{reading['source_var']}"
            now = self._held[name]  # the state after the latest step; before it: shown
            for k in range(1, reading["delay"] + 1):
                lines[f"{u}->{v}@{k}"] = now if k == 1 else self._shown.get(name, now)
        return lines


def _check_precision(where: str, kwargs: dict) -> None:
    """RectiPy 0.12 computes its nodes in float64 whatever ``float_precision`` says; other
    precisions are refused rather than given a meaning RectiPy does not give them."""
    fp = kwargs.get("float_precision", "float64")
    dtype = kwargs.get("dtype", torch.float64)
    if fp != "float64" or dtype is not torch.float64:
        raise ValueError(
            f"{where}: RectiPy 0.12 integrates its nodes in float64; got "
            f"float_precision={fp!r}, dtype={dtype}"
        )
    if "clear" in kwargs and not isinstance(kwargs["clear"], bool):
        raise TypeError(f"{where}: clear must be a bool (PyRates' cache; nothing to clear here)")


def _spike_rule(where: str, args: dict, kwargs: dict, q) -> SpikeRule | None:
    spike_var, reset_var = args["spike_var"], args["reset_var"]
    spiking = {"spike_threshold", "spike_reset", "spike_slope", "spike_center"} & set(kwargs)
    if spike_var is None:
        if spiking:
            raise ValueError(f"{where}: {sorted(spiking)} need a spiking node (spike_var=)")
        return None
    if reset_var is None:
        raise ValueError(
            f"{where}: a spiking node needs the variable to reset after a spike (reset_var)"
        )
    if isinstance(spike_var, list) or isinstance(reset_var, list) or args["reset"] is not True:
        raise ValueError(
            f"{where}: several spike variables and reset=False (a reset inside the "
            f"equations) are not reproduced; one spike_var and reset=True are"
        )
    if kwargs.get("spike_center", 1.0) != 1.0:
        raise ValueError(f"{where}: only spike_center=1.0 (H(0) = 1, RectiPy's) is reproduced")
    peak, low = float(kwargs.get("spike_threshold", 1e2)), float(kwargs.get("spike_reset", -1e2))
    slope = float(kwargs.get("spike_slope", 100.0 / abs(peak - low)))
    return SpikeRule(q(spike_var), q(reset_var), peak, low, slope)


def _node_vars(where: str, st, node_vars: dict, op: str | None, n: int) -> tuple[dict, dict]:
    """RectiPy's ``node_vars`` split into constants and initial values, by key: ``all/op/var``
    (or ``op/var``, or ``var`` with ``op=``) for every unit, ``n<i>/op/var`` for unit ``i``
    (PyRates' names of the units)."""
    if not isinstance(node_vars, dict):
        raise TypeError(f"{where}: node_vars must be a dict, got {type(node_vars).__name__}")
    values, init = {}, {}
    for name, value in node_vars.items():
        full = f"all/{op}/{name}" if op is not None and "/" not in name else name
        parts, unit = full.split("/"), None
        if len(parts) == 3 and parts[0] != "all":
            m = re.fullmatch(r"n(\d+)", parts[0])
            if m is None or int(m.group(1)) >= n:
                raise ValueError(
                    f"{where}: node_vars[{name!r}]: no unit {parts[0]!r} (n0..n{n - 1})"
                )
            unit = int(m.group(1))
        key = st.key(where, full)
        if key in st.constants:
            target, default = values, st.constants[key]
        elif key in st.states:
            target, default = init, st.states[key]
        else:
            raise ValueError(f"{where}: node_vars[{name!r}]: an input cannot be set")
        arr = _float64(where, f"node_vars[{name!r}]", value)
        if unit is not None:
            if arr.numel() != 1:
                raise ValueError(f"{where}: node_vars[{name!r}] sets one unit: give one value")
            before = torch.as_tensor(target.get(key, default), dtype=_F64)
            arr, one = torch.broadcast_to(before, (n,)).clone(), float(arr)
            arr[unit] = one
        target[key] = arr
    return values, init


def _edge_options(where: str, train: str | None, kwargs: dict, n_in: int, n_out: int) -> dict:
    extra: dict[str, Any] = {}
    if "mask" in kwargs and train == "rls":
        raise TypeError(f"{where}: RectiPy's RLS edge takes no mask")
    if "mask" in kwargs:
        mask = _edge_weights(where, kwargs.pop("mask"), n_in, n_out)
        extra["mask"] = mask
    if train == "rls":
        beta, alpha = float(kwargs.pop("beta", 1.0)), float(kwargs.pop("alpha", 1.0))
        if not 0 < beta <= 1 or alpha < 0:
            raise ValueError(f"{where}: RLS needs 0 < beta <= 1 and alpha >= 0")
        extra.update(beta=beta, alpha=alpha)
    if train == "gd" and kwargs.get("train_params", ["weights"]) == ["weights"]:
        kwargs.pop("train_params", None)
    if kwargs:
        raise TypeError(
            f"{where}: keyword(s) {sorted(kwargs)} are not reproduced (delays and filters "
            f"of RectiPy's memory edges are not); mask=, and beta=/alpha= for RLS, are"
        )
    return extra


def _fitted(where: str, name: str, value: Any, like: Tensor) -> Tensor:
    """``value`` as a state entry shaped as ``like`` (a scalar or one value per unit)."""
    t = _float64(where, f"the value of {name}", value).to(like.device)
    try:
        return torch.broadcast_to(t, like.shape).clone()
    except RuntimeError:
        raise ValueError(
            f"{where}: {name} takes a scalar or {like.shape[-1]} values, got shape {tuple(t.shape)}"
        ) from None


def _first(where: str, cutoff: Any) -> int:
    """The first step RectiPy records from ``cutoff`` (``step >= cutoff``: any number)."""
    if isinstance(cutoff, bool) or not isinstance(cutoff, int | float | np.integer | np.floating):
        raise TypeError(f"{where}: cutoff must be a number, got {cutoff!r}")
    return max(0, math.ceil(cutoff))


def _positive(where: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{where}: {name} must be an integer >= 1, got {value!r}")
    return int(value)


def _recorded(steps: int, every: int, first: int) -> range:
    """The steps RectiPy records: ``s >= first`` with ``s % every == 0``."""
    return range(first + (-first) % every, steps, every)


def _fill(
    obs: Observer, out: Tensor, values: dict, names: list, every: int, cutoff: int, loss: Any
) -> None:
    """RectiPy's recording: at each step ``s >= cutoff`` with ``s % every == 0``, the mean
    output of the steps since the previous record, and the variables after step ``s``."""
    start = cutoff
    for s in _recorded(out.shape[0], every, cutoff):
        mean = out[s] if s == start else out[start : s + 1].mean(0)
        obs.record(s, mean, loss, [values[k][s] for k in names])
        start = s + 1


#: RectiPy's losses by name
_LOSSES = {
    "mse": torch.nn.MSELoss, "l1": torch.nn.L1Loss, "nll": torch.nn.NLLLoss,
    "ce": torch.nn.CrossEntropyLoss, "kld": torch.nn.KLDivLoss,
    "hinge": torch.nn.HingeEmbeddingLoss,
}  # fmt: skip
#: RectiPy's optimisers by name
_OPTIMIZERS = {
    "sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
    "adagrad": torch.optim.Adagrad, "adadelta": torch.optim.Adadelta,
    "adamax": torch.optim.Adamax, "rmsprop": torch.optim.RMSprop, "rprop": torch.optim.Rprop,
}  # fmt: skip


def _loss(where: str, name: str, kwargs: dict | None) -> torch.nn.Module:
    if name not in _LOSSES:
        raise ValueError(f"{where}: unknown loss {name!r}; valid ones are {sorted(_LOSSES)}")
    return _LOSSES[name](**(kwargs or {}))


# ---- RectiPy's helpers ------------------------------------------------------------------
# They draw from numpy's global generator, as RectiPy's do: after np.random.seed(s) a
# script gets the matrices RectiPy gives it.


def random_connectivity(n: int, m: int, p: float, normalize: bool = True) -> np.ndarray:
    """An ``n x m`` matrix with ``int(m p)`` nonzero entries per row at random columns,
    each ``1 / int(m p)`` (``normalize``, rows sum to 1) or 1."""
    k = int(m * p)
    if k < 1:
        raise ValueError(f"random_connectivity: int(m * p) = {k}; no connection per row")
    C = np.zeros((n, m))
    positions = np.arange(m)
    for row in range(n):
        cols = np.random.permutation(positions)[:k]  # noqa: NPY002 - RectiPy's global draws
        C[row, cols] = 1.0 / k if normalize else 1.0
    return C


def input_connections(
    n: int, m: int, p: float, variance: float = 1.0, zero_mean: bool = True
) -> np.ndarray:
    """An ``n x m`` input matrix: in each column, the rows of ``random_connectivity(m, n,
    p).T`` get normal draws times ``variance`` (shifted to sum to 0 where ``zero_mean``)."""
    mask = random_connectivity(m, n, p, normalize=False).T
    C = np.zeros_like(mask)
    for col in range(mask.shape[1]):
        rows = np.flatnonzero(mask[:, col] > 0)
        C[rows, col] = np.random.randn(rows.shape[0]) * variance  # noqa: NPY002 - as above
        if zero_mean:
            C[rows, col] -= np.sum(C[:, col]) / len(rows)
    return C


def normalize(x: np.ndarray, mode: str = "minmax", row_wise: bool = False) -> np.ndarray:
    """``x`` scaled in place (and returned), as RectiPy scales it: ``"minmax"`` shifted by
    its minimum and divided by its maximum (before the shift), ``"zscore"`` to zero
    mean and unit deviation, ``"sum"`` to sum 1; each row apart where ``row_wise``."""
    if row_wise:
        for i in range(x.shape[0]):
            x[i, :] = normalize(x[i, :], mode=mode)
        return x
    flat = x.flatten()
    if mode == "minmax":  # RectiPy divides by the maximum before the shift
        x -= np.min(flat)
        top = np.max(flat)
        if top > 0:
            x /= top
    elif mode == "zscore":
        x -= np.mean(flat)
        std = np.std(flat)
        if std > 0:
            x /= std
    elif mode == "sum":
        x /= np.sum(flat)
    else:
        raise ValueError(f"normalize: unknown mode {mode!r}; 'minmax', 'zscore' or 'sum'")
    return x


def wta_score(x: np.ndarray, y: np.ndarray) -> float:
    """The share of rows whose largest entry of ``x`` is where ``y``'s is."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(
            f"wta_score: x and y must be samples x features alike, got {x.shape}, {y.shape}"
        )
    return float(np.mean(np.argmax(x, axis=1) == np.argmax(y, axis=1)))
