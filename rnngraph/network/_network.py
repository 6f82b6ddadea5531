"""``Network``: a networkx graph of nodes and linear edges, built by the user."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import networkx as nx
import numpy as np
import torch
from torch import Tensor, nn

from .._checks import (
    as_device,
    as_flag,
    as_float_dtype,
    as_int,
    as_names,
    as_tensor,
    describe,
    keywords,
)
from ..compat import strip_op
from ..edges import Linear
from ..nodes import DENode, FuncNode, Node, make_model
from ..observers import Observer, Recording
from ..units import UNITS, Quantity
from ._compiled import RESERVED_LABELS, CompiledNetwork, State, check_units, time_step
from ._fitting import FittingMixin, joins_inputs
from ._generate import Folded, closed_loop, closed_run, first_input, why_not_folded
from ._sequences import is_sequence_list, run_list

__all__ = ["Network"]

_RESERVED = (".", "->", "@")


F = TypeVar("F", bound=Callable[..., Any])


def one_at_a_time(fn: F) -> F:
    """Decorate a ``Network`` method that reads or writes the held state: it runs holding
    the network's lock, so such calls from several threads follow each other (a call
    from inside another one, in the same thread, goes ahead)."""

    @functools.wraps(fn)
    def wrapper(self: Network, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return fn(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _observer(
    where: str,
    model: CompiledNetwork,
    observer: Observer | None,
    record: Any,
    every: int,
    start: int,
) -> Observer:
    """The observer of a run: ``observer``, or one recording ``record`` (default: the output
    node) every ``every`` steps from step ``start``, a bad ``record`` named after ``where``."""
    if observer is not None:
        return observer
    names = [model.output_node] if record is None else record
    try:
        return Observer(names, every=every, start=start)
    except (TypeError, ValueError) as err:  # a bad record=: name this call
        raise type(err)(f"{where}: record: {err}") from None


def _set_param(where: str, node: DENode, name: str, value: Any) -> None:
    """Write ``value`` (checked: finite, in the parameter's domain, a scalar or ``(n,)``)
    into parameter ``name`` of ``node``. One value per unit turns a parameter shared by
    all units into a per-unit one (its gradient, of the old shape, is dropped)."""
    p = getattr(node, name)
    new = node.check_param(where, name, value)  # float64, () or (1,) or (n,)
    if new.dim() == 1 and new.shape[0] == 1:
        new = new.reshape(())
    with torch.no_grad():
        if new.dim() == 1 and p.dim() == 0:
            p.data = new.to(device=p.device, dtype=p.dtype)
            p.grad = None
        else:
            p.copy_(torch.broadcast_to(new.to(p.dtype), p.shape))


def _train_names(where: str, params: Mapping[str, Any], train_params: Any) -> list[str]:
    """The parameters to train: ``train=`` (a name or a list of names) and RectiPy's
    ``train_params`` (``op/var`` names), in order, each once."""
    names = [] if params.get("train") is None else as_names(where, "train", params["train"])
    if train_params is not None:
        names += [strip_op(p) for p in as_names(where, "train_params", train_params)]
    return list(dict.fromkeys(names))


def _shape(weights: Any) -> tuple[int, ...] | None:
    """The shape of an array-like, a tensor or a sparse matrix (``None`` when it has none:
    the edge's own check names the problem)."""
    shape = getattr(weights, "shape", None)
    if shape is not None:
        return tuple(shape)
    try:
        return tuple(np.shape(weights))
    except (TypeError, ValueError):
        return None


def _input_labels(given: Any, tuple_always: bool = False) -> str | tuple[str, ...] | None:
    """``compile``'s ``input_node``: ``None``, a label, or several labels (a list or tuple
    of distinct labels; one of them is that label), checked."""
    if given is None or isinstance(given, str):
        return (given,) if tuple_always and given is not None else given
    labels = tuple(given) if isinstance(given, list | tuple) else None
    if not labels or not all(isinstance(v, str) for v in labels):
        raise TypeError(
            f"Network.compile: input_node must be a node label or a list of them, got {given!r}"
        )
    if len(set(labels)) != len(labels):
        raise ValueError(f"Network.compile: input_node names a node twice: {list(labels)}")
    return labels if tuple_always or len(labels) > 1 else labels[0]


class Network(FittingMixin):
    """A recurrent network as a graph of nodes and linear edges.

    The graph is a ``networkx.DiGraph`` (``net.graph``): each node carries its module under
    the attribute ``"node"``, each edge its ``Linear`` module under ``"edge"``.
    :meth:`compile` orders it once into a :class:`CompiledNetwork`; :meth:`run`,
    :meth:`reset` and :meth:`detach` act on that compiled network and recompile when the
    graph has changed.

    Parameters
    ----------
    dt : float
        Step size, in the unit of every time constant (ms, s, ... : the user's choice).
    device : str or torch.device
        Where nodes and edges live; default ``"cpu"``.
    dtype : torch.dtype
        Floating-point type of parameters and state; default ``torch.float32``.

    Notes
    -----
    The **input node** is the one without incoming zero-delay edges, the **output node**
    the one without outgoing zero-delay edges (as in RectiPy, with feedback edges not
    counted). Of several such nodes, the only one without any incoming (outgoing) edge
    wins; otherwise name them: ``compile(input_node=..., output_node=...)``.

    A node without any edge is never inferred as the input or the output node, and
    ``compile()`` refuses a network with such a node (of two nodes or more) unless it is
    the named input or output node: an unconnected node is almost always a forgotten
    edge, and its output would be zeros or its own autonomous dynamics.

    ``dt``, ``device`` and ``dtype`` may be changed at any time, and the compiled network
    follows: setting ``dt`` changes the step of the next run (the held state is kept, the
    run continues from it with the new step); setting ``device`` or ``dtype`` is
    ``to(device=...)`` or ``to(dtype=...)`` (parameters and held state move).

    Threads: the calls that read or write the held state (:meth:`run`, :meth:`reset`,
    :meth:`detach`, :meth:`get_var`, :meth:`set_var`, :meth:`compile`, :meth:`to`,
    ``fit_ridge``, ``fit_rls``, ``fit_bptt``, ``fit_eprop`` and ``test``) run one at a time:
    from several threads at once, each waits for the one before, so every run continues a
    whole state. :meth:`forward` reads no held state and does not wait for runs.
    """

    @keywords("Network")
    def __init__(self, dt: float, device: Any = "cpu", dtype: torch.dtype = torch.float32):
        self._dt, self._dt_unit = time_step("Network", dt)
        self._dtype = as_float_dtype("Network", dtype)
        self._device = as_device("Network", device)
        self._lock = threading.RLock()  # see the class notes: one state call at a time
        self.graph = nx.DiGraph()
        self.input_node: str | None = None
        self.output_node: str | None = None
        self._compiled: CompiledNetwork | None = None
        self._compiled_key: tuple | None = None
        self._closed: tuple | None = None  # generate()'s closed loop, with what it was made for

    # ------------------------------------------------------------------------------
    # building
    # ------------------------------------------------------------------------------

    def _check_label(self, where: str, label: Any) -> None:
        if not isinstance(label, str) or not label or any(c in label for c in _RESERVED):
            raise ValueError(
                f"{where}: a node label must be a non-empty string without '.', '->' or '@', "
                f"got {label!r}"
            )
        if label in RESERVED_LABELS:
            raise ValueError(
                f"{where}: the label {label!r} is the name of a torch.nn.Module attribute; "
                "pick another label"
            )
        if label in self.graph:
            raise ValueError(f"{where}: a node {label!r} exists already; pop_node() it first")

    def _changed(self) -> None:
        self._compiled_key = None

    def __getstate__(self) -> dict:
        """Pickles and copies leave out the lock (each network has its own)."""
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict) -> None:
        # networks pickled when these were plain attributes load into the properties
        for name in ("dt", "dtype", "device"):
            if name in state:
                state[f"_{name}"] = state.pop(name)
        self.__dict__.update(state)
        self._lock = threading.RLock()

    @property
    def dt(self) -> float:
        """Step size, in the unit of every time constant: a plain number, or a time
        Quantity (``0.1*ms``), then kept and read in seconds, the unit of models whose
        equations carry units (:func:`rnngraph.equation_model`); such a network is given
        a new step as a Quantity too (``net.dt = 0.05*ms``). Setting it (finite, > 0)
        changes the step of the compiled network too, and setting the compiled network's
        changes this one; the held state is kept."""
        return self._compiled.dt if self._compiled is not None else self._dt

    @dt.setter
    def dt(self, value: Any) -> None:
        dt, unit = time_step("Network.dt", value)
        for label, node in self.graph.nodes(data="node"):
            check_units("Network.dt", label, node, unit)
        if self._compiled is not None:
            self._compiled.dt = value
        self._dt, self._dt_unit = dt, unit

    def _time_step(self) -> float | Quantity:
        """The step as the user gives it: a Quantity when it carries a unit."""
        if self._compiled is not None:
            return self._compiled.time_step
        return Quantity(self._dt, UNITS["second"].dim) if self._dt_unit else self._dt

    @property
    def dtype(self) -> torch.dtype:
        """Floating-point type of parameters and state; setting it is ``to(dtype=...)``."""
        return self._dtype

    @dtype.setter
    def dtype(self, value: Any) -> None:
        self.to(dtype=value)

    @property
    def device(self) -> torch.device:
        """Where nodes, edges and state live; setting it is ``to(device=...)``."""
        return self._device

    @device.setter
    def device(self, value: Any) -> None:
        self.to(device=value)

    @keywords("Network.add_node")
    def add_node(self, label: str, node: Node) -> Node:
        """Add a node module (``FuncNode``, ``DENode`` or a subclass) under ``label``."""
        self._check_label("Network.add_node", label)
        if not isinstance(node, Node):
            raise TypeError(
                f"Network.add_node: node {label!r} must be an rnngraph Node, "
                f"got {type(node).__name__}"
            )
        if isinstance(node, DENode):
            node.check_train()  # a user's DENode may not check its train= names itself
        check_units("Network.add_node", label, node, isinstance(self._time_step(), Quantity))
        node.to(device=self.device, dtype=self.dtype)
        self.graph.add_node(label, node=node)
        self._changed()
        return node

    @keywords("Network.add_func_node")
    def add_func_node(self, label: str, n: int, activation_function: Any = "identity") -> FuncNode:
        """Add an instantaneous node ``y = f(x)`` of ``n`` units.

        ``activation_function``: ``identity``, ``tanh``, ``sigmoid``, ``relu``, ``softmax``,
        ``log_softmax``, ``softmin`` or a callable.
        """
        where = "Network.add_func_node"
        self._check_label(where, label)
        try:
            node = FuncNode(n, activation_function)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{where}({label!r}): {err}") from None
        return self.add_node(label, node)

    def add_diffeq_node(
        self,
        label: str,
        node: str | DENode,
        n: int | None = None,
        *,
        weights: Any = None,
        source_var: str | None = None,
        target_var: str | None = None,
        input_var: str | None = None,
        output_var: str | None = None,
        node_vars: Mapping[str, Any] | None = None,
        train_params: list[str] | None = None,
        op: str | None = None,
        **params: Any,
    ) -> DENode:
        """Add a differential-equation node: a built-in model by name or a ``DENode``.

        Parameters
        ----------
        label : str
            Node label.
        node : str or DENode
            ``"leaky_tanh"``, ``"leaky_integrator"``, ``"li"``, ``"qif_mf"`` (see
            ``rnngraph.nodes.MODELS``), a RectiPy template path, or an instance.
        n : int
            Number of units (when ``node`` is a name; inferred from ``weights`` otherwise).
        **params
            Model parameters and options (``tau=``, ``integrator=``, ``train=``, ``init=``).
            ``train`` is a parameter name or a list of names (``train="lr"`` trains
            ``lr``); a name the model does not have is refused, and the error lists the
            model's parameters.

        RectiPy compatibility
        ---------------------
        ``weights`` adds a recurrent feedback self-edge (delay 1) from ``source_var``
        (default: the output) to ``target_var`` (default: the main input);
        ``node_vars`` sets parameters and initial state values; ``train_params`` makes
        parameters trainable; ``input_var`` must be the model's main input;
        ``output_var``/``op`` are accepted with RectiPy's ``op/var`` names.
        """
        where = "Network.add_diffeq_node"
        self._check_label(where, label)
        if node_vars is not None and not isinstance(node_vars, Mapping):
            raise TypeError(
                f"{where}({label!r}): node_vars must be a dict of variable names to values, "
                f"got {describe(node_vars)}"
            )
        if op is not None and not isinstance(op, str):
            raise TypeError(f"{where}({label!r}): op must be an operator name, got {describe(op)}")
        source_var, target_var = strip_op(source_var), strip_op(target_var)
        input_var, output_var = strip_op(input_var), strip_op(output_var)
        node_vars = {strip_op(k): v for k, v in (node_vars or {}).items()}
        if isinstance(node, str):
            model = _model_by_name(where, label, node, n, weights, train_params, params)
        elif isinstance(node, DENode):
            model = _model_instance(where, node, n, train_params, params)
        else:
            raise TypeError(
                f"{where}: node must be a model name or a DENode, got {type(node).__name__}"
            )
        _set_node_vars(where, label, model, node_vars)
        _check_io_vars(where, label, model, input_var, output_var)
        self.add_node(label, model)
        if weights is not None:
            self._add_self_feedback(label, weights, source_var, target_var)
        return model

    def _add_self_feedback(
        self, label: str, weights: Any, source_var: str | None, target_var: str | None
    ) -> None:
        """Add node ``label``'s RectiPy ``weights`` self-edge; on failure remove the node."""
        try:
            self.add_edge(
                label,
                label,
                weights=weights,
                feedback=True,
                source_var=source_var if source_var not in (None, "r", "out") else None,
                target_var=target_var,
            )
        except Exception:
            self.pop_node(label)  # a failed call leaves the graph as it was
            raise

    @keywords("Network.add_edge")
    def add_edge(
        self,
        source: str,
        target: str,
        weights: Any = None,
        train: str | None = None,
        feedback: bool = False,
        delay: int | None = None,
        mask: Any = None,
        bias: bool | Any = False,
        *,
        sparse: bool = False,
        source_var: str | None = None,
        target_var: str | None = None,
        init: Any = None,
        seed: int | torch.Generator | None = None,
    ) -> Linear:
        """Connect ``source`` to ``target`` by a linear edge ``y = W x + b``.

        Parameters
        ----------
        source, target : str
            Node labels.
        weights : array-like or tensor, optional
            ``(n_target, n_source)``; dense, or sparse (scipy.sparse, torch sparse).
        train : {None, "gd", "rls"}
            Fixed, gradient-trained (``nn.Parameter``) or RLS-trained.
        feedback : bool
            Read the source's previous output: ``delay=1`` unless ``delay`` is given.
        delay : int, optional
            Steps of delay (default 0, or 1 with ``feedback=True``).
        mask : array-like, optional
            Fixed 0/1 mask of the weights.
        bias : bool or array-like
            Add a bias ``b``.
        sparse : bool
            Store the weights in CSR format.
        source_var : str, optional
            Read this state variable of the source instead of its output.
        target_var : str, optional
            Write into this named input of the target (default: its main input).
        init : float or tensor, optional
            What a delayed edge reads before its first step (default zeros).
        seed : int or torch.Generator, optional
            Seed of the default weight initialisation.
        """
        where = f"Network.add_edge({source!r}, {target!r})"
        for label in (source, target):
            if label not in self.graph:
                raise KeyError(f"{where}: no node {label!r}; nodes are {list(self.graph)}")
        if self.graph.has_edge(source, target):
            raise ValueError(f"{where}: the edge exists already; pop_edge() it first")
        feedback = as_flag(where, "feedback", feedback)
        if delay is None:
            delay = 1 if feedback else 0
        elif feedback and delay == 0:
            raise ValueError(f"{where}: feedback=True needs delay >= 1, got delay=0")
        src, tgt = self.get_node(source), self.get_node(target)
        source_var, target_var = strip_op(source_var), strip_op(target_var)
        n_in, n_out = _edge_shape(where, source, target, src, tgt, source_var, target_var, weights)
        edge = Linear(
            n_in,
            n_out,
            weights=weights,
            train=train,
            mask=mask,
            bias=bias,
            sparse=sparse,
            delay=delay,
            source_var=source_var,
            target_var=target_var,
            init=init,
            seed=seed,
            dtype=self.dtype,
            device=self.device,
            where=where,
        )
        self.graph.add_edge(source, target, edge=edge)
        self._changed()
        return edge

    def get_node(self, label: str) -> Node:
        """The module of node ``label``."""
        if not isinstance(label, str) or label not in self.graph:
            raise KeyError(f"Network.get_node: no node {label!r}; nodes are {list(self.graph)}")
        return self.graph.nodes[label]["node"]

    def get_edge(self, source: str, target: str) -> Linear:
        """The ``Linear`` module of the edge ``source -> target``."""
        if not self._has_edge(source, target):
            raise KeyError(
                f"Network.get_edge: no edge {source!r} -> {target!r}; "
                f"edges are {list(self.graph.edges)}"
            )
        return self.graph.edges[source, target]["edge"]

    def pop_node(self, label: str) -> Node:
        """Remove node ``label`` (and its edges) and return its module."""
        if not isinstance(label, str) or label not in self.graph:
            raise KeyError(f"Network.pop_node: no node {label!r}; nodes are {list(self.graph)}")
        node = self.get_node(label)
        self.graph.remove_node(label)
        if label in (_input_labels(self.input_node, tuple_always=True) or ()):
            self.input_node = None  # the input nodes are found again at the next compile
        if self.output_node == label:
            self.output_node = None
        self._changed()
        return node

    def pop_edge(self, source: str, target: str) -> Linear:
        """Remove the edge ``source -> target`` and return its module."""
        if not self._has_edge(source, target):
            raise KeyError(
                f"Network.pop_edge: no edge {source!r} -> {target!r}; "
                f"edges are {list(self.graph.edges)}"
            )
        edge = self.get_edge(source, target)
        self.graph.remove_edge(source, target)
        self._changed()
        return edge

    def _has_edge(self, source: Any, target: Any) -> bool:
        return (
            isinstance(source, str)
            and isinstance(target, str)
            and (self.graph.has_edge(source, target))
        )

    def __getitem__(self, key: str | tuple[str, str]) -> Node | Linear:
        if isinstance(key, tuple):
            return self.get_edge(*key)
        return self.get_node(key)

    def __contains__(self, label: str) -> bool:
        return label in self.graph

    def __len__(self) -> int:
        return self.graph.number_of_nodes()

    # ------------------------------------------------------------------------------
    # compiling
    # ------------------------------------------------------------------------------

    def _find_io(
        self, input_node: str | tuple[str, ...] | None, output_node: str | None
    ) -> tuple[str | tuple[str, ...], str]:
        g = self.graph
        named = () if input_node is None else _input_labels(input_node, tuple_always=True)
        for key, given in [("input_node", v) for v in named] + [("output_node", output_node)]:
            if given is not None and given not in g:
                raise KeyError(
                    f"Network.compile: {key}={given!r} is not a node; nodes are {list(g)}"
                )
        if len(g) == 1:
            only = next(iter(g))
            return only, only
        bare = [v for v in g if g.degree(v) == 0 and v not in (*named, output_node)]
        if bare:
            raise ValueError(
                f"Network.compile: node(s) {bare} have no edges; connect them with add_edge(), "
                f"remove them with pop_node(), or name one as compile(input_node=...) or "
                "compile(output_node=...)"
            )
        zero = [(u, v) for u, v, e in g.edges(data="edge") if e.delay == 0]
        has_in, has_out = {v for _, v in zero}, {u for u, _ in zero}
        connected = [v for v in g if g.degree(v) > 0]
        inp = input_node or self._infer_io(
            "input", [v for v in connected if v not in has_in], g.in_degree
        )
        out = output_node or self._infer_io(
            "output", [v for v in connected if v not in has_out], g.out_degree
        )
        return inp, out

    @staticmethod
    def _infer_io(role: str, free: list[str], degree: Any) -> str:
        """The one candidate for the ``role`` node; of several, the only one without any
        incoming (input) or outgoing (output) edge, delayed ones included."""
        if len(free) > 1:
            bare = [v for v in free if degree(v) == 0]
            free = bare if len(bare) == 1 else free
        if len(free) == 1:
            return free[0]
        rule = "incoming" if role == "input" else "outgoing"
        several = (
            ", or several as compile(input_node=(...)) or by running on a dict {input node: inputs}"
            if role == "input"
            else ""
        )
        raise ValueError(
            f"Network.compile: cannot tell the {role} node: the nodes without {rule} "
            f"zero-delay edges are {free}; name one with compile({role}_node=...){several}"
        )

    def _input_arrays(self, where: str, inputs: Any) -> Any:
        """``inputs`` with a dict of inputs (or a list of them) joined into one array
        (:meth:`CompiledNetwork.join_inputs`). Where no input node is named, the keys of
        such a dict name them, as ``compile(input_node=...)`` does, if each is a node that
        no edge feeds."""
        listed = isinstance(inputs, list | tuple)
        if not (
            isinstance(inputs, Mapping) or listed and any(isinstance(a, Mapping) for a in inputs)
        ):
            return inputs  # nothing to join (and nothing compiled here)
        first = inputs[0] if listed else inputs
        if isinstance(first, Mapping) and self.input_node is None:
            keys = tuple(first)
            if keys and all(k in self.graph and self.graph.in_degree(k) == 0 for k in keys):
                self.compile(input_node=keys[0] if len(keys) == 1 else keys)
        return self.compile().join_inputs(where, inputs)

    @keywords("Network.compile")
    @one_at_a_time
    def compile(
        self,
        input_node: str | list[str] | tuple[str, ...] | None = None,
        output_node: str | None = None,
    ) -> CompiledNetwork:
        """Order the graph into a :class:`CompiledNetwork` (validated once, here).

        Parameters
        ----------
        input_node : str or list of str, optional
            The node that receives the external input; by default the one node without
            incoming zero-delay edges. Several (each a function node that no edge feeds)
            take the input side by side: run on a dict ``{node: (T, n_node)}``, or on one
            array whose columns are theirs in the order given (reservoirpy's
            ``[input_1, input_2] >> reservoir``).
        output_node : str, optional
            The node whose output runs return; by default the one node without outgoing
            zero-delay edges.

        The compiled network is cached and rebuilt only when the graph or the input or
        output node changed (a rebuilt one keeps the held state of what did not change);
        ``dt``, ``dtype`` and ``device`` changes reach the cached one directly.

        Raises
        ------
        ValueError
            For an empty graph, a cycle of zero-delay edges (the message names its nodes in
            order), an ambiguous input/output node, a node without edges (see the class
            notes), or edges whose shapes do not fit.
        """
        input_node = _input_labels(input_node)
        if output_node is not None and not isinstance(output_node, str):
            raise TypeError(
                f"Network.compile: output_node must be a node label, got "
                f"{type(output_node).__name__}"
            )
        g = self.graph
        if g.number_of_nodes() == 0:
            raise ValueError("Network.compile: the network has no nodes; add_node() first")
        input_node = input_node if input_node is not None else self.input_node
        output_node = output_node if output_node is not None else self.output_node
        zero = _checked_zero_delay_graph(g)
        inp, out = self._find_io(input_node, output_node)
        # remember the nodes named here, so that run()/reset() (which compile() without
        # arguments) keep them
        self.input_node, self.output_node = input_node, output_node
        key = (
            inp,
            out,
            tuple(g.nodes),
            tuple((u, v, id(e)) for u, v, e in g.edges(data="edge")),
            tuple(id(g.nodes[v]["node"]) for v in g),
        )
        if self._compiled is not None and self._compiled_key == key:
            return self._compiled
        order = list(nx.topological_sort(zero))
        compiled = CompiledNetwork(
            {v: g.nodes[v]["node"] for v in g},
            [(u, v, e) for u, v, e in g.edges(data="edge")],
            self._time_step(),
            inp,
            out,
            order,
            dtype=self.dtype,
            device=self.device,
        )
        if self._compiled is not None and self._compiled.state:
            compiled.state = _carried_state(self._compiled.state, compiled)
        self._compiled, self._compiled_key = compiled, key
        return compiled

    @property
    def model(self) -> CompiledNetwork:
        """The compiled network (compiled on first use)."""
        return self.compile()

    # ------------------------------------------------------------------------------
    # running (RectiPy's interface on top of CompiledNetwork)
    # ------------------------------------------------------------------------------

    @keywords("Network.run")
    @one_at_a_time
    @joins_inputs
    def run(
        self,
        inputs: Any = None,
        sampling_steps: int = 1,
        cutoff: int = 0,
        verbose: bool = False,
        enable_grad: bool = False,
        *,
        observer: Observer | None = None,
        record: list[str] | tuple[str, ...] | str | None = None,
        state: State | None = None,
        steps: int | None = None,
        progress: bool | None = None,
    ) -> Recording:
        """Run the network on ``inputs`` from its held state; RectiPy's ``run``.

        The run continues from the state the network holds (the end of the previous run,
        or the initial state after ``reset()``) and the network holds its final state
        afterwards, as in RectiPy. :meth:`forward` instead starts from the initial state
        and leaves the held state alone.

        Parameters
        ----------
        inputs : tensor, array or list of them, optional
            ``(T, C)`` or ``(B, T, C)``; ``None`` with ``steps=`` for a run without input.
            A list of sequences (arrays or tensors, each ``(T_k, C)`` or ``(B_k, T_k, C)``,
            lengths free) runs every sequence from the initial state (or ``state=``, of
            batch 1), in padded batched passes of similar lengths, and leaves the held state:
            it returns :class:`Recordings`, one recording per sequence over its own steps
            (without a final state). A nested list of numbers is one array.
        sampling_steps, cutoff : int
            Record every ``sampling_steps``-th step from step ``cutoff`` on (RectiPy names
            for ``Observer(every=..., start=...)``).
        verbose : bool
            Show a progress bar (same as ``progress=True``).
        enable_grad : bool
            Build the autograd graph (default off, unlike RectiPy, where it is on).
        observer : Observer, optional
            What to record, instead of ``record``, ``sampling_steps`` and ``cutoff`` (a
            call that gives both is refused).
        record : str or list of str, optional
            Names to record (``"node"`` or ``"node.var"``); default: the output node.
        state : dict, optional
            Start from this state instead of the held one. A state of batch 1 (held or
            given) starts every element of a larger batch.
        steps : int, optional
            Number of steps for a run without input; its output has the batch of the
            state it starts from (``(B, T, n)`` for ``B > 1``).
        progress : bool, optional
            Show a progress bar (rnngraph's name for ``verbose``).

        Returns
        -------
        Recording or Recordings
        """
        where = "Network.run"
        verbose = as_flag(where, "verbose", verbose)
        enable_grad = as_flag(where, "enable_grad", enable_grad)
        if progress is None:
            progress = verbose
        elif verbose and not as_flag(where, "progress", progress):
            raise ValueError(f"{where}: verbose=True and progress=False disagree; give one")
        else:
            progress = as_flag(where, "progress", progress)
        every = as_int(where, "sampling_steps", sampling_steps, 1, type_error=ValueError)
        start = as_int(where, "cutoff", cutoff, 0, type_error=ValueError)
        if observer is not None and (record is not None or every != 1 or start != 0):
            raise ValueError(
                f"{where}: observer= says what to record and when; give record=, "
                "sampling_steps= and cutoff= only without it"
            )
        model = self.compile()
        observer = _observer(where, model, observer, record, every, start)
        listed = is_sequence_list(inputs)
        if listed and steps is not None:
            raise ValueError(f"{where}: steps= is for a run without input, not for a list")
        with torch.set_grad_enabled(enable_grad):
            if listed:
                return run_list(where, model, inputs, observer, state, progress)
            return model.execute(where, inputs, observer, state, progress, steps)

    @keywords("Network.generate")
    @one_at_a_time
    def generate(
        self,
        steps: int,
        warmup: Any = None,
        *,
        first: Any = None,
        record: list[str] | tuple[str, ...] | str | None = None,
        observer: Observer | None = None,
        progress: bool = False,
        enable_grad: bool = False,
    ) -> Recording:
        r"""Run ``steps`` steps on the network's own output: generative (closed-loop)
        forecasting, reservoirpy's ``x = esn(x)`` loop.

        With a readout fitted to predict the next input, each step's output is the next
        step's input: :math:`u(t + 1) = y(t)`. From the held state, ``warmup`` (true inputs)
        runs first, as :meth:`run` would, and its last output is the first generated input;
        ``first`` gives that input instead. The network holds the last generated step's
        state afterwards, so :meth:`run` or another ``generate`` continues from it.

        Parameters
        ----------
        steps : int
            Number of generated steps.
        warmup : tensor or array, optional
            ``(T, C)`` or ``(B, T, C)`` true inputs to run on first (``C`` = the input width,
            which must equal the output width).
        first : tensor or array, optional
            ``(C,)`` or ``(B, C)``: the first generated step's input, instead of ``warmup``.
        record, observer
            What to record during the generated steps, as in :meth:`run`.
        progress : bool
            Show a progress bar over the generated steps.
        enable_grad : bool
            Build the autograd graph (default off).

        Returns
        -------
        Recording
            Of the generated steps only: ``output`` is ``(steps, C)`` or ``(B, steps, C)``,
            ``state`` the state after the last one (the keys of :meth:`state`).

        Raises
        ------
        ValueError
            When the input and output widths differ, the output already feeds the input,
            neither or both of ``warmup`` and ``first`` are given, or an input is malformed;
            nothing has run and the held state is unchanged.

        Notes
        -----
        The closed loop is the network plus an identity edge ``output -> input`` of delay 1;
        an echo-state network runs it without its input node, the readout fed back through
        ``W_in`` (the same computation), in the native reservoir loop (see
        :meth:`explain_generate`).
        """
        where = "Network.generate"
        steps = as_int(where, "steps", steps, minimum=1, type_error=ValueError)
        progress = as_flag(where, "progress", progress)
        enable_grad = as_flag(where, "enable_grad", enable_grad)
        if (warmup is None) == (first is None):
            raise ValueError(
                f"{where}: give warmup= (true inputs to run on first; the last output is the "
                "first generated input) or first= (that input itself), one of them"
            )
        model = self.compile()
        closed, folded = self._closed_loop(where, model)
        observer = _observer(where, closed, observer, record, 1, 0)
        if warmup is not None:
            batched = model.as_input(where, warmup)[1]  # checked before anything runs
        else:
            x0 = first_input(where, model, first, model.state)
            batched = np.ndim(first) == 2
        with torch.set_grad_enabled(enable_grad):
            if warmup is not None:
                x0 = model.execute(where, warmup, None, None, False, None).with_batch()[:, -1]
            rec = closed_run(where, model, (closed, folded), x0, observer, progress, steps)
        rec.batched = batched or rec.with_batch().shape[0] > 1
        model.hold_state(rec.state)  # as run holds its state, a diverged one included
        return rec

    @keywords("Network.explain_generate")
    def explain_generate(
        self, batch_size: int = 1, grad: bool = False, record: list[str] | str | None = None
    ) -> str:
        """Which network :meth:`generate` runs (with ``batch_size``, gradients or not, and
        ``record``), and how: the echo-state network folded into its reservoir with the
        readout fed back (no input node; the native reservoir loop where it applies), or
        the whole closed loop, and why not folded; then that network's ``explain()``."""
        where = "Network.explain_generate"
        model = self.compile()
        closed, folded = self._closed_loop(where, model)
        names = _observer(where, closed, None, record, 1, 0).record
        why = why_not_folded(model, names, as_flag(where, "grad", grad))
        if why is None:
            head = "generate: folded, the readout fed back into the reservoir through W_in"
            net = folded().network
        else:
            head = f"generate: the closed loop, output -> input (not folded: {why})"
            net = closed
        return f"{head}\n{net.explain(batch_size, grad)}"

    def _closed_loop(
        self, where: str, model: CompiledNetwork
    ) -> tuple[CompiledNetwork, Callable[[], Folded]]:
        """The closed-loop twin of the compiled network and (made on first use) its folded
        form (see ``_generate``), made again when the network was compiled again or moved,
        or its ``dt`` changed."""
        key = (model, model._ref.dtype, model._ref.device, model.dt)
        cached = getattr(self, "_closed", None)
        if cached is None or cached[0] != key:
            cached = self._closed = (key, closed_loop(where, model), [])

        def folded(made: list = cached[2]) -> Folded:
            if not made:
                made.append(Folded(model))
            return made[0]

        return cached[1], folded

    # the trainers read and write the held state too: one at a time, like run
    fit_ridge = one_at_a_time(FittingMixin.fit_ridge)
    fit_rls = one_at_a_time(FittingMixin.fit_rls)
    fit_bptt = one_at_a_time(FittingMixin.fit_bptt)
    fit_eprop = one_at_a_time(FittingMixin.fit_eprop)
    test = one_at_a_time(FittingMixin.test)

    def forward(
        self, inputs: Any = None, state: State | None = None, steps: int | None = None
    ) -> Tensor:
        """The output at every step, from the initial state (or ``state``), as torch's
        recurrent modules do: ``CompiledNetwork.forward``.

        Each call is independent of the previous ones: it starts from ``init_state`` unless
        ``state`` is given, builds its own autograd graph when autograd is on, and leaves the
        held state (what :meth:`run` continues from) unchanged.
        """
        with self._lock:
            inputs = self._input_arrays("Network.forward", inputs)
            model = self.compile()
        return model.execute(
            "Network.forward", inputs, None, state, False, steps, hold=False
        ).output

    __call__ = forward

    @keywords("Network.reset")
    @one_at_a_time
    def reset(self, state: State | None = None) -> None:
        """Restore the initial state (or set ``state``) for the next run."""
        self.compile()._reset("Network.reset", state)

    @one_at_a_time
    def detach(self) -> None:
        """Cut the held state from the autograd graph (truncated BPTT)."""
        self.compile().detach()

    def empty_cache(self) -> None:
        """Release the memory the network keeps from earlier outputs for reuse (see
        ``CompiledNetwork.empty_cache``)."""
        if self._compiled is not None:
            self._compiled.empty_cache()

    @property
    def state(self) -> State | None:
        """The state the next run starts from (``None``: the initial state)."""
        with self._lock:
            return self.compile().state

    def _var_of(self, where: str, node: str, var: str) -> tuple[Node, str, str]:
        """The module of ``node`` and ``var`` (RectiPy's ``op/var`` stripped), with whether
        it is a ``"state"`` variable or a ``"param"``; errors name ``where``."""
        if not isinstance(node, str) or node not in self.graph:
            raise KeyError(f"{where}: no node {node!r}; nodes are {list(self.graph)}")
        if not isinstance(var, str):
            raise TypeError(f"{where}: var must be a variable name, got {type(var).__name__}")
        mod = self.get_node(node)
        var = strip_op(var)
        if var in mod.state_vars:
            return mod, var, "state"
        if isinstance(mod, DENode) and var in mod.param_names:
            return mod, var, "param"
        raise KeyError(
            f"{where}: node {node!r} has no variable {var!r}; state variables "
            f"{list(mod.state_vars)}, parameters {list(getattr(mod, 'param_names', ()))}"
        )

    @keywords("Network.get_var")
    @one_at_a_time
    def get_var(self, node: str, var: str) -> Tensor:
        """Current value of a state variable (from the held state) or a parameter."""
        where = "Network.get_var"
        mod, var, kind = self._var_of(where, node, var)
        if kind == "param":
            return getattr(mod, var)
        model = self.compile()
        state = model.state if model.state is not None else model.initial_state(where)
        return state[f"{node}.{var}"]

    @keywords("Network.set_var")
    @one_at_a_time
    def set_var(self, node: str, var: str, value: Any) -> None:
        """Set a parameter, or a state variable of the held state (``reset()`` undoes the
        latter; ``get_node(node).set_init(var, value)`` sets the initial value).

        A parameter must lie in its domain (a time constant > 0, a leak rate in (0, 1], ...)
        and be a scalar (shared by all units) or ``(n,)`` (one value per unit, as at
        construction: a shared parameter becomes a per-unit one); a state value must be
        finite and broadcast to the held state's ``(B, n)``. Nothing changes when the value
        is refused.
        """
        where = "Network.set_var"
        mod, var, kind = self._var_of(where, node, var)
        if isinstance(mod, DENode):  # a Quantity for a model with units, in SI units
            value = mod.in_units(f"{where}({node!r})", var, value)
        val = as_tensor(where, f"the value for {node}.{var}", value)
        if not bool(torch.isfinite(val).all()):
            raise ValueError(f"{where}: value for {node}.{var} contains NaN or inf")
        if kind == "param":
            _set_param(f"{where}({node!r})", mod, var, val)
            return
        model = self.compile()
        state = dict(model.state if model.state is not None else model.initial_state(where))
        cur = state[f"{node}.{var}"]
        try:
            state[f"{node}.{var}"] = torch.broadcast_to(
                val.to(device=cur.device, dtype=cur.dtype), cur.shape
            ).clone()
        except RuntimeError as err:
            raise ValueError(
                f"{where}: {node}.{var} has shape {tuple(cur.shape)}, "
                f"got a value of shape {tuple(val.shape)}"
            ) from err
        model.state = state

    # ------------------------------------------------------------------------------
    # torch conveniences
    # ------------------------------------------------------------------------------

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]:
        return self.compile().parameters(recurse)

    def named_parameters(self, *args: Any, **kwargs: Any):
        return self.compile().named_parameters(*args, **kwargs)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.compile().state_dict(*args, **kwargs)

    def load_state_dict(self, *args: Any, **kwargs: Any):
        return self.compile().load_state_dict(*args, **kwargs)

    @keywords("Network.to")
    @one_at_a_time
    def to(self, device: Any = None, dtype: torch.dtype | None = None) -> Network:
        """Move every node and edge (and the held state) to ``device``/``dtype``."""
        if dtype is not None:
            dtype = as_float_dtype("Network.to", dtype)
        if device is not None:
            device = as_device("Network.to", device)
        for v in self.graph:
            self.graph.nodes[v]["node"].to(device=device, dtype=dtype)
        for _, _, e in self.graph.edges(data="edge"):
            e.to(device=device, dtype=dtype)
        if device is not None:
            self._device = device
        if dtype is not None:
            self._dtype = dtype
        if self._compiled is not None:
            self._compiled.to(device=device, dtype=dtype)
            if self._compiled.state is not None:
                self._compiled.state = {
                    k: v.to(device=device, dtype=dtype) for k, v in self._compiled.state.items()
                }
        return self

    @property
    def n_in(self) -> int:
        return self.compile().n_in

    @property
    def n_out(self) -> int:
        return self.compile().n_out

    def __repr__(self) -> str:
        return (
            f"Network(dt={self.dt}, nodes={list(self.graph.nodes)}, "
            f"edges={[f'{u}->{v}' for u, v in self.graph.edges]})"
        )


def _model_by_name(
    where: str,
    label: str,
    name: str,
    n: int | None,
    weights: Any,
    train_params: Any,
    params: dict[str, Any],
) -> DENode:
    """Build the built-in or RectiPy-template model ``name`` for ``add_diffeq_node``."""
    if n is None and weights is not None:
        shape = _shape(weights)
        if not shape:
            raise TypeError(
                f"{where}({label!r}): weights must be an (n, n) matrix, got "
                f"{type(weights).__name__}"
            )
        n = shape[0]
    if params.get("train") is not None or train_params is not None:
        params["train"] = _train_names(f"{where}({label!r})", params, train_params)
    try:
        return make_model(where, name, n, **params)
    except (TypeError, ValueError) as err:  # name the call and the node
        msg = str(err)
        raise type(err)(msg if msg.startswith(where) else f"{where}({label!r}): {msg}") from err


def _model_instance(
    where: str, node: DENode, n: int | None, train_params: Any, params: dict[str, Any]
) -> DENode:
    """Check a ``DENode`` instance given to ``add_diffeq_node`` and return it."""
    if params or train_params:
        raise TypeError(
            f"{where}: model parameters {sorted(params)} go to the DENode's constructor "
            "when passing an instance"
        )
    if n is not None and as_int(where, "n", n, minimum=1) != node.n:
        raise ValueError(f"{where}: n={n} but the node has {node.n} units")
    return node


def _set_node_vars(where: str, label: str, model: DENode, node_vars: dict[str, Any]) -> None:
    """Write RectiPy's ``node_vars`` into ``model``: initial states and parameters."""
    for k, v in node_vars.items():
        if k in model.state_vars:
            model.set_init(k, v)
        elif k in model.param_names:
            _set_param(f"{where}({label!r})", model, k, v)
        else:
            raise ValueError(
                f"{where}: node_vars names {k!r}, which node {label!r} does not have; "
                f"parameters {list(model.param_names)}, "
                f"state variables {list(model.state_vars)}"
            )


def _check_io_vars(
    where: str, label: str, model: DENode, input_var: str | None, output_var: str | None
) -> None:
    """Refuse a RectiPy ``input_var`` or ``output_var`` that ``model`` does not have as such."""
    if input_var is not None and input_var != model.input_names[0]:
        raise ValueError(
            f"{where}: input_var {input_var!r} is not the main input of {type(model).__name__} "
            f"({model.input_names[0]!r}); send edges to other inputs with target_var="
        )
    if output_var is not None and not _emits(model, output_var):
        raise ValueError(
            f"{where}({label!r}): output_var {output_var!r} is not what "
            f"{type(model).__name__} emits (its output is "
            f"{_output_description(model)}); a node's output cannot be changed here: "
            f"record {label + '.' + output_var!r} or read it with "
            f"add_edge(..., source_var={output_var!r})"
        )


def _emits(model: DENode, var: str) -> bool:
    """Whether ``model``'s output is its state variable ``var`` itself (RectiPy's
    ``output_var``); ``"r"`` and ``"out"`` name the output, whatever it is."""
    if var in ("r", "out"):
        return True
    return var == model.output_var and _plain_output(model)


def _plain_output(model: DENode) -> bool:
    """Whether the model emits its state variable ``output_var`` as it is."""
    return type(model).output is DENode.output and model.output_function is None


def _output_description(model: DENode) -> str:
    if _plain_output(model):
        return f"the state variable {model.output_var!r}"
    f = model.output_function
    name = getattr(f, "__name__", type(f).__name__) if f is not None else "a function"
    return f"{name} of {model.output_var!r} (see {type(model).__name__}.output)"


def _checked_zero_delay_graph(g: nx.DiGraph) -> nx.DiGraph:
    """The graph of ``g``'s zero-delay edges, after checking it has no cycle and every
    edge's shape fits its nodes (errors name ``Network.compile``)."""
    zero = nx.DiGraph()
    zero.add_nodes_from(g)
    zero.add_edges_from((u, v) for u, v, e in g.edges(data="edge") if e.delay == 0)
    try:
        cycle = nx.find_cycle(zero)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        names = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
        raise ValueError(
            f"Network.compile: the cycle {names} has no delayed edge; "
            "mark one edge feedback=True or give it delay>=1"
        )
    for u, v, e in g.edges(data="edge"):
        src, tgt = g.nodes[u]["node"], g.nodes[v]["node"]
        takes = tgt.input_size(e.target_var)
        if e.n_in != src.var_size(e.source_var) or e.n_out != takes:
            raise ValueError(
                f"Network.compile: edge {u!r} -> {v!r} maps {e.n_in} -> {e.n_out} values, "
                f"but {u!r} gives {src.var_size(e.source_var)} and {v!r} takes {takes}"
            )
    return zero


def _carried_state(old: dict, compiled: CompiledNetwork) -> dict | None:
    """The state of a rebuilt network: what did not change keeps its held values (adding a
    readout or a feedback edge keeps the reservoir's), new entries start from their
    initial values; ``None`` when a new initial value fixes another batch size."""
    batch = next(iter(old.values())).shape[0]
    try:
        state = compiled.init_state(batch)
    except ValueError:  # a new initial value fixes another batch size: start anew
        return None
    for k, v in state.items():
        if k in old and old[k].shape == v.shape:
            state[k] = old[k]
    return state


def _edge_shape(where, source, target, src, tgt, source_var, target_var, weights) -> tuple:
    """``(n_in, n_out)`` of an edge from ``src`` to ``tgt``, after checking the variable
    it reads, the input it writes and the weights' shape (errors name ``where``)."""
    if source_var is not None and source_var not in src.state_vars:
        raise ValueError(
            f"{where}: source_var {source_var!r} is not a state variable of {source!r} "
            f"({type(src).__name__}: {list(src.state_vars)})"
        )
    if target_var is not None and target_var not in tgt.input_names:
        raise ValueError(
            f"{where}: target_var {target_var!r} is not an input of {target!r} "
            f"({type(tgt).__name__}: {list(tgt.input_names)})"
        )
    n_in, n_out = src.var_size(source_var), tgt.input_size(target_var)
    shape = None if weights is None else _shape(weights)
    if shape is not None and shape != (n_out, n_in):
        takes = f"has {n_out} units" if n_out == tgt.n else f"takes {n_out} input values"
        raise ValueError(
            f"{where}: weights must have shape (n_target, n_source) = ({n_out}, {n_in}) "
            f"({target!r} {takes}, {source!r} has {n_in}), got {shape}"
        )
    return n_in, n_out
