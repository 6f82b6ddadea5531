"""RectiPy's training methods on ``Network`` (``fit_ridge``, ``fit_rls``, ``test``): thin
calls into the trainers of ``rnngraph.training``."""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import as_flag, as_float_dtype, as_int, keywords
from ..nodes import ACTIVATIONS, FuncNode, IPReservoir
from ..observers import Observer, Recording, Recordings
from ..training import BPTT, LMS, OPTIMIZERS, RLS, EProp, Ridge
from ._compiled import recorded_steps, spans_memory
from ._readout import REDUCTIONS, Readout, list_runs, stream
from ._sequences import as_sequence_tensor, is_sequence_list, raw_tensor
from .executor import Hook

if TYPE_CHECKING:  # pragma: no cover
    from ..edges import Linear
    from ._compiled import CompiledNetwork
    from ._network import Network

#: features (batch x units x steps) a replayed RLS fit holds at once: 32 MiB in float64
_REPLAY_ELEMENTS = 1 << 22


class _Default:
    """The default of a trainer setting of ``fit_bptt`` and ``fit_eprop``: a new trainer
    takes ``value`` (``None``: the trainer's own default), a trainer continued with
    ``trainer=`` keeps its own setting. The signature shows it as ``default(value)``."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"default({self.value!r})"


def _given(**settings: Any) -> dict[str, Any]:
    """The settings the caller gave (those that are no ``_Default``); ``lr=None`` counts as
    not given (it means the rate the trainer has)."""
    return {
        k: v
        for k, v in settings.items()
        if not isinstance(v, _Default) and not (k == "lr" and v is None)
    }


def _fresh(**settings: Any) -> dict[str, Any]:
    """The settings of a new trainer: the given ones, and the defaults of the others."""
    return {k: v.value if isinstance(v, _Default) else v for k, v in settings.items()}


#: the defaults of the trainer settings of ``fit_bptt`` and ``fit_eprop``
_NONE = _Default(None)
_SGD, _ADAM, _MSE = _Default("sgd"), _Default("adam"), _Default("mse")
_SYMMETRIC, _MEAN = _Default("symmetric"), _Default("mean")
_AUTO, _ZERO = _Default("auto"), _Default(0.0)


def _paired(
    where: str, inputs: Any, targets: Any, inputs_optional: bool = True
) -> tuple[list[Any], list[Any], bool]:
    """Inputs and targets as two lists of the same length (one entry each unless both are
    lists of sequences), and whether they were; ``inputs=None`` (no input)
    pairs with every target when ``inputs_optional``."""
    is_list = is_sequence_list(targets)
    tgt_list = list(targets) if is_list else [targets]
    if is_list and not tgt_list:
        raise ValueError(f"{where}: no targets: an empty {type(targets).__name__}")
    if inputs is None and inputs_optional:
        return [None] * len(tgt_list), tgt_list, is_list
    inp_list = list(inputs) if is_list else [inputs]
    if is_sequence_list(inputs) != is_list or len(inp_list) != len(tgt_list):
        raise ValueError(
            f"{where}: inputs and targets must both be arrays or both lists of sequences "
            "of the same length (a list of arrays or tensors is a list of sequences, a "
            "nested list of numbers one array)"
        )
    return inp_list, tgt_list, is_list


def _sequences(
    where: str, inputs: Any, targets: Any, n_in: int | None, dtype, device, nan: bool = False
) -> tuple[list[Tensor | None], list[Tensor], bool]:
    """Pair inputs and targets as lists of ``(B, T, .)`` tensors, validated up front (NaN
    targets allowed with ``nan``)."""
    inp_list, tgt_list, is_list = _paired(where, inputs, targets)
    xs, ys = [], []
    for k, (x, y) in enumerate(zip(inp_list, tgt_list, strict=True)):
        yt = as_sequence_tensor(where, "targets", y, dtype, device, nan)
        yt = yt if yt.dim() == 3 else yt.unsqueeze(0)
        if x is not None:
            xt = as_sequence_tensor(where, "inputs", x, dtype, device)
            xt = xt if xt.dim() == 3 else xt.unsqueeze(0)
            if xt.shape[:2] != yt.shape[:2]:
                seq = f" (sequence {k})" if is_list else ""
                raise ValueError(
                    f"{where}: inputs{seq} have (B, T) = {tuple(xt.shape[:2])} but targets have "
                    f"{tuple(yt.shape[:2])}; they must match step by step"
                )
            if n_in is not None and xt.shape[-1] != n_in:
                raise ValueError(
                    f"{where}: inputs have {xt.shape[-1]} channels, the input node expects {n_in}"
                )
            xs.append(xt)
        else:
            xs.append(None)
        ys.append(yt)
    widths = {y.shape[-1] for y in ys}
    if len(widths) != 1:
        raise ValueError(f"{where}: targets have different widths {sorted(widths)}")
    if 0 in widths:
        raise ValueError(f"{where}: targets have width 0; expected at least one output")
    return xs, ys, is_list


def _class_targets(t: Tensor) -> bool:
    """Whether the converted targets ``t`` are integer class indices."""
    return not (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool)


#: what ``fit_bptt`` accepts, for its docstring and its errors
_BPTT_SHAPES = (
    "inputs (T, C) with targets (T, n_out) ((T,) when n_out = 1) or class indices (T,); "
    "inputs (B, T, C), a batch of B trials, with targets (B, T, n_out) or class indices "
    "(B, T); inputs None with targets (T, n_out) or class indices (T,); or lists of such "
    "pairs"
)


def _bptt_pair(
    where: str, x: Any, t: Tensor, k: int | None, n_in: int, dtype, device
) -> tuple[Tensor | None, Tensor]:
    """One ``(inputs, targets)`` pair of ``fit_bptt`` as ``(B, T, C)`` inputs (or
    ``None``) and ``(B, T, n)`` targets (``(B, T)`` class indices); the shapes must be one
    of ``_BPTT_SHAPES``."""
    seq = "" if k is None else f" (pair {k})"
    xt = None if x is None else as_sequence_tensor(where, "inputs", x, dtype, device)
    cls = _class_targets(t)
    tt = t
    if cls and 0 in tt.shape:
        raise ValueError(f"{where}: class indices{seq} are empty (shape {tuple(tt.shape)})")
    if not cls:
        tt = as_sequence_tensor(where, "targets", tt, dtype, device)  # 1-D: one output, (T, 1)
    shape_x = None if xt is None else tuple(xt.shape)
    got = tuple(tt.shape) if cls else tuple(tt.shape[:-1])  # (T,) or (B, T)
    if xt is None:  # one trial, as long as the targets
        fits = len(got) == 1 or (len(got) == 2 and got[0] == 1)
    else:
        fits = got == (tuple(xt.shape[:1]) if xt.dim() == 2 else tuple(xt.shape[:2]))
    if not fits:
        kind = "class indices" if cls else "targets"
        hint = ""
        if cls and xt is not None and xt.dim() == 3 and got == tuple(xt.shape[:1]):
            hint = (
                "; one class per trial does not say which steps count: repeat it over the "
                "steps, (B, T) = labels[:, None].repeat(1, T)"
            )
        raise ValueError(
            f"{where}: {kind}{seq} of shape {tuple(tt.shape)} do not fit inputs of shape "
            f"{shape_x}{hint}; accepted: {_BPTT_SHAPES}"
        )
    if xt is not None and xt.shape[-1] != n_in:
        raise ValueError(
            f"{where}: inputs{seq} have {xt.shape[-1]} channels, the input node expects {n_in}"
        )
    if xt is not None and xt.dim() == 2:
        xt = xt.unsqueeze(0)
    tt = tt.to(device=device).long() if cls else tt.to(device=device, dtype=dtype)
    return xt, tt if tt.dim() == (2 if cls else 3) else tt.unsqueeze(0)


def _bptt_pairs(
    where: str, inputs: Any, targets: Any, model: CompiledNetwork, trainer: Any, dtype, device
) -> list[tuple[Tensor | None, Tensor]]:
    """``fit_bptt``'s data as ``(inputs, targets)`` pairs, every shape, width and class
    index checked against the network's output before anything runs."""
    inp_list, tgt_list, is_list = _paired(where, inputs, targets)
    tgt_list = [raw_tensor(where, "targets", t) for t in tgt_list]
    classes = [_class_targets(t) for t in tgt_list]
    if any(classes) and not all(classes):
        raise TypeError(f"{where}: a mix of class-index and real-valued targets")
    pairs = [
        _bptt_pair(where, x, t, k if is_list else None, model.n_in, dtype, device)
        for k, (x, t) in enumerate(zip(inp_list, tgt_list, strict=True))
    ]
    name, out, n_out = trainer.loss_name, model.output_node, model.n_out
    if name is None:  # the user's loss callable reads the targets as it likes
        return pairs
    ignore = trainer.loss_kwargs.get("ignore_index", -100)
    for _, y in pairs:
        if classes[0]:
            if name not in ("ce", "nll"):
                raise TypeError(
                    f"{where}: integer class-index targets need loss='ce' or 'nll', the loss is "
                    f"{name!r}; pass float targets of width {n_out} for it"
                )
            bad = y[(y != ignore) & ((y < 0) | (y >= n_out))]
            if bad.numel():
                raise ValueError(
                    f"{where}: class index {int(bad[0])} is out of range: the output node "
                    f"{out!r} has {n_out} units (classes 0..{n_out - 1})"
                )
        elif y.shape[-1] != n_out:
            raise ValueError(
                f"{where}: the targets have width {y.shape[-1]}, the output node {out!r} has "
                f"{n_out} units; the loss {name!r} compares them unit by unit"
            )
    return pairs


def joins_inputs(fn: Callable) -> Callable:
    """The ``Network`` method ``fn`` (whose first argument is ``inputs``) with a dict of
    inputs, or a list of them, joined into one array before it runs
    (``Network._input_arrays``)."""
    where = f"Network.{fn.__name__}"
    assert list(inspect.signature(fn).parameters)[1] == "inputs", where

    @functools.wraps(fn)
    def wrapper(self: Network, *args: Any, **kwargs: Any) -> Any:
        if args:
            args = (self._input_arrays(where, args[0]), *args[1:])
        elif "inputs" in kwargs:
            kwargs["inputs"] = self._input_arrays(where, kwargs["inputs"])
        return fn(self, *args, **kwargs)

    return wrapper


def _network_method(fn: Callable) -> Callable:
    """Name the method ``fn`` as users call it, ``Network.<name>``, in every error about
    its arguments: Python's own (a missing or an extra positional argument) read the
    function's qualified name, and an unknown keyword is refused with the valid names
    (a method that takes ``**kwargs`` checks them itself). Its ``inputs`` may be a dict of
    inputs (:func:`joins_inputs`)."""
    where = f"Network.{fn.__name__}"
    fn.__qualname__ = where
    params = inspect.signature(fn).parameters.values()
    if "inputs" in inspect.signature(fn).parameters:
        fn = joins_inputs(fn)
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return fn
    return keywords(where)(fn)


class FittingMixin:
    """Training entry points of ``Network``; each delegates to a trainer object."""

    @contextlib.contextmanager
    def _all_or_nothing(
        self: Network,
        trained: tuple[Linear, ...] = (),
        rls: Any = None,
        gradient: Any = None,
        params: tuple[Tensor, ...] = (),
    ) -> Iterator:
        """On an error inside the block, undo what the block changed: the nodes and edges it
        added, the weights and bias of the ``trained`` edges, the tensors ``params`` (a
        node's parameters a rule changes), ``rls``'s :math:`P`, with a
        ``gradient`` trainer (BPTT, EProp) every parameter of the network and the trainer's
        optimiser state, the nodes' extra state (noise generators), the compiled network and
        the state it holds; then re-raise."""
        nodes, edges = list(self.graph.nodes), list(self.graph.edges)
        io = (self.input_node, self.output_node)
        compiled, key = self._compiled, self._compiled_key
        held = None
        if compiled is not None and compiled.state is not None:
            held = {k: v.clone() for k, v in compiled.state.items()}
        tensors = [t for e in trained for t in (e.weight, e.bias) if t is not None] + list(params)
        if gradient is not None:
            tensors += list(self.compile().parameters())
        kept = [(t, t.detach().clone()) for t in tensors]
        optimizer = None if gradient is None else _optimizer_snapshot(gradient)
        P = None if rls is None or rls.P is None else (rls.P.clone(), rls.n_updates)
        extra = [  # the nodes' own streams (an IAF's noise generator), as state_dict saves them
            (m, m.get_extra_state())
            for m in (self.get_node(v) for v in nodes)
            if type(m).get_extra_state is not nn.Module.get_extra_state
        ]
        try:
            yield
        except BaseException:
            for v in [v for v in self.graph.nodes if v not in set(nodes)]:
                self.pop_node(v)
            for u, v in [e for e in self.graph.edges if e not in set(edges)]:
                self.pop_edge(u, v)
            with torch.no_grad():
                for t, value in kept:
                    t.copy_(value)
            if P is not None:
                rls.P, rls.n_updates = P
            for m, value in extra:
                m.set_extra_state(value)
            if optimizer is not None:
                optimizer()
            self.input_node, self.output_node = io
            self._compiled, self._compiled_key = compiled, key
            if compiled is not None:
                compiled.state = held
            raise

    def _readout_edge(
        self: Network,
        where: str,
        edge: tuple[str, str] | None,
        n_out: int,
        add_readout_node: bool,
        readout: str,
        bias: bool,
    ) -> tuple[tuple[str, str], bool]:
        """Resolve (or plan) the readout edge; returns ``(edge, must_add)``. Without
        ``edge``, an edge marked ``train="rls"`` into the output node is the readout;
        otherwise one is planned. Nothing is added here, so a later validation error leaves
        the network as it was."""
        if edge is None:
            edge = self._marked_readout(where)
        if edge is not None:
            self._check_readout_edge(where, edge, n_out, bias)
            return edge, False
        if not add_readout_node:
            raise ValueError(
                f"{where}: name the readout edge with edge=(source, target), or pass "
                "add_readout_node=True"
            )
        if readout in self.graph:
            raise ValueError(
                f"{where}: a node {readout!r} exists already; pass edge=(<its source>, "
                f"{readout!r}) to refit it, or another readout= label"
            )
        source = self.compile().output_node
        return (source, readout), True

    def _readout_edges(
        self: Network,
        where: str,
        edge: Any,
        n_out: int,
        add_readout_node: bool,
        readout: str,
        bias: bool,
    ) -> tuple[list[tuple[str, str]], bool]:
        """:meth:`_readout_edge` for ``edge`` a list of edges fitted jointly: each a
        readout edge, all into one node, none twice; the bias goes on the first."""
        if not isinstance(edge, list):
            one, add = self._readout_edge(where, edge, n_out, add_readout_node, readout, bias)
            return [one], add
        if not edge:
            raise ValueError(f"{where}: edge is an empty list; give (source, target) edges")
        if not all(isinstance(e, tuple) and len(e) == 2 for e in edge):
            raise TypeError(
                f"{where}: edge must be a list of (source, target) tuples, got {edge!r}"
            )
        targets = {v for _, v in edge}
        if len(targets) > 1:
            raise ValueError(
                f"{where}: the edges {edge} go into {sorted(targets)}; a joint fit is of "
                "edges into one readout node"
            )
        if len(set(edge)) < len(edge):
            raise ValueError(f"{where}: an edge is listed twice in {edge}")
        for k, e in enumerate(edge):
            self._check_readout_edge(where, e, n_out, bias and k == 0)
        return list(edge), False

    def _marked_readout(self: Network, where: str) -> tuple[str, str] | None:
        """The edge marked ``train="rls"`` into the output node, if there is one."""
        out = self.compile().output_node
        marked = [
            (u, v)
            for u, v, e in self.graph.edges(data="edge")
            if v == out and e.train_mode == "rls"
        ]
        if len(marked) > 1:
            raise ValueError(
                f"{where}: the output node {out!r} has several edges marked train='rls' "
                f"({marked}); name the one to fit with edge=(source, target)"
            )
        return marked[0] if marked else None

    def _check_readout_edge(self: Network, where: str, edge: Any, n_out: int, bias: bool) -> None:
        if not (isinstance(edge, tuple) and len(edge) == 2):
            raise TypeError(f"{where}: edge must be a (source, target) tuple, got {edge!r}")
        if not self.graph.has_edge(*edge):
            raise KeyError(
                f"{where}: no edge {edge[0]!r} -> {edge[1]!r}; edges are {list(self.graph.edges)}"
            )
        lin = self.get_edge(*edge)
        name = f"edge {edge[0]!r} -> {edge[1]!r}"
        if lin.n_out != n_out:
            raise ValueError(f"{where}: {name} has {lin.n_out} outputs, the targets have {n_out}")
        if lin.sparse:
            raise ValueError(f"{where}: {name} is sparse; a fitted readout needs dense weights")
        if lin.mask is not None:
            raise ValueError(
                f"{where}: {name} has a connectivity mask; a fitted readout needs every weight "
                "free (add it without mask=)"
            )
        if bias and lin.bias is None:
            raise ValueError(
                f"{where}: {name} has no bias; pass bias=False or add the edge with bias=True"
            )
        if lin.delay:
            raise ValueError(
                f"{where}: {name} has delay {lin.delay}; fit a zero-delay readout edge"
            )

    def _add_readout(
        self: Network,
        where: str,
        edge: tuple[str, str],
        n_out: int,
        bias: bool,
        train: str | None,
    ) -> Linear:
        source, readout = edge
        try:
            self.add_func_node(readout, n_out, "identity")
        except (TypeError, ValueError) as err:  # the label: name the call and readout=
            raise type(err)(f"{where}: readout={readout!r}: {err}") from None
        n_src = self.get_node(source).n
        lin = self.add_edge(
            source, readout, weights=torch.zeros(n_out, n_src), train=train, bias=bias
        )
        if self.output_node is not None:  # named with compile(output_node=...): the readout
            self.output_node = readout  # takes over from the node that fed it
        return lin

    def _ridge_plan(self: Network, where: str, edges: list[tuple[str, str]], bias: bool) -> Readout:
        """How ``fit_ridge`` collects the data of the readout ``edges`` (into one node, the
        bias on the first): other edges into the readout (or a bias the fit leaves as it
        is) add to its input, so the readout's own output is recorded to subtract them from
        the targets (``offset``); when the readout's output comes back to it (through a
        source or another edge), the targets are fed on in its place (``forced``). The
        readout must be an identity function node: only then is its output the sum of its
        inputs."""
        node = self.get_node(edges[0][1])
        if not (isinstance(node, FuncNode) and node.fn is ACTIVATIONS["identity"]):
            kind = (
                f"a function node ({node.name!r})"
                if isinstance(node, FuncNode)
                else (f"a {type(node).__name__}")
            )
            raise ValueError(
                f"{where}: the readout node {edges[0][1]!r} is {kind}; a ridge fit makes the "
                "readout's input match the targets, which is its output only for an identity "
                "function node: fit an edge into a node added with "
                "add_func_node(label, n, 'identity'), or use fit_rls or fit_bptt"
            )
        g, fitted = self.graph, {u for u, _ in edges}
        lins = tuple(self.get_edge(*e) for e in edges)
        others = [s for s in g.predecessors(edges[0][1]) if s not in fitted]
        unfit_bias = [lin for k, lin in enumerate(lins) if lin.bias is not None and (k or not bias)]
        offset = bool(others) or bool(unfit_bias)
        forced = any(nx.has_path(g, edges[0][1], s) for s in g.predecessors(edges[0][1]))
        return Readout(tuple(edges), lins, bias, offset, forced)

    @_network_method
    def fit_ridge(
        self: Network,
        inputs: Any,
        targets: Any,
        edge: tuple[str, str] | list[tuple[str, str]] | None = None,
        alpha: float = 1e-8,
        washout: int = 0,
        add_readout_node: bool = True,
        readout: str = "readout",
        bias: bool = True,
        verbose: bool = False,
        chunk: int = 10_000,
        reduce: str | None = None,
    ) -> Ridge:
        r"""Fit the weights (and bias) of a readout edge by ridge regression, from the
        source values :math:`x(t)` of a run streamed into :class:`rnngraph.training.Ridge`:

        .. math:: \min_{W, b} \sum_t \lVert W x(t) + b + o(t) - y^*(t) \rVert^2
                  + \alpha \lVert W \rVert_F^2

        :math:`o(t)` is the rest of the readout node's input (other edges; the edge's own
        bias when ``bias=False`` leaves it), so the readout must be an identity function
        node. When the readout's output comes back into the network, the network runs with
        the targets in its place (teacher forcing, reservoirpy's ``ESN(feedback=True)``).
        Several edges into one readout (reservoirpy's ``[source >> reservoir, source] >>
        readout``, a deep ESN's layers) are fitted jointly, the bias on the first. A NaN
        target leaves its step out (as in reservoirpy). With ``reduce`` each sequence
        gives one sample (classification): its sources at its last step (``"last"``) or
        their mean after the washout (``"mean"``), against one target row; the run's
        ``Recordings.last()`` / ``.mean(start=washout)`` are then the fitted scores.

        Parameters
        ----------
        inputs : tensor, array or list of them
            ``(T, C)`` / ``(B, T, C)``, from the held state (held after the fit); a list of
            sequences (``(T_k, C)`` / ``(B_k, T_k, C)``), each from the initial state, run
            in padded batches of at most ``chunk`` steps in all, the held state left alone.
            A nested list of numbers (``X.tolist()``) is one array, as in :meth:`run`.
        targets : tensor, array, list of them, or dict
            ``(T, n_out)`` / ``(B, T, n_out)`` (a list for a list); with ``reduce``, one
            row per sequence: ``(N, n_out)`` or a list of ``(n_out,)`` / ``(B_k, n_out)``.
            A dict ``{readout node: targets}`` fits several readouts from one run.
        edge : (source, target), list of them, or dict, optional
            The readout edge(s) (zero delay, dense, no mask, into one node). Default: the
            edge marked ``train="rls"`` into the output node, else a new readout node; for
            a dict of targets ``{readout: edge(s)}``, default every edge into the readout.
        alpha, washout : float (or dict per readout), int
            Ridge penalty (>= 0); steps dropped at the start of each sequence.
        add_readout_node, readout : bool, str
            Without ``edge``, add an identity node ``readout`` fed by the output node.
        bias, verbose : bool
            Fit a bias; show a progress bar.
        chunk, reduce : int, {None, "last", "mean"}
            Steps simulated per chunk (>= 1; states are not stored); one sample per sequence.

        Returns
        -------
        Ridge or dict
            The fitted trainer (``.weight``, ``.bias``, ``.n_samples``; one per readout for
            a dict). A ``ValueError`` (bad input, singular equations) leaves the network as
            it was.
        """
        where = "Network.fit_ridge"
        _flags(where, add_readout_node=add_readout_node, bias=bias, verbose=verbose)
        if isinstance(targets, dict):
            return self._fit_readouts(
                where, inputs, targets, edge, alpha, washout, bias, verbose, chunk, reduce
            )
        wiring = (edge, add_readout_node, readout, bias)
        return self._fit_readout(
            where, inputs, targets, wiring, alpha, washout, verbose, chunk, reduce
        )

    def _fit_readout(
        self: Network, where, inputs, targets, wiring, alpha, washout, verbose, chunk, reduce
    ) -> Ridge:
        """``fit_ridge`` of one readout (``wiring``: ``edge, add_readout_node, readout,
        bias``)."""
        edge, add_readout_node, readout, bias = wiring
        with _named(where):
            ridge = Ridge(alpha=alpha, fit_bias=bias, washout=washout)  # checks alpha, washout
        chunk = _count(where, "chunk", chunk, 1)
        model = self.compile()
        at = (model.n_in, self.dtype, self.device)
        if reduce is None:
            xs, ys, is_list = _sequences(where, inputs, targets, *at, nan=True)
        else:
            xs, ys, is_list = _labelled(where, reduce, inputs, targets, *at)
        _check_washout(where, ys, washout, every=reduce is not None)
        n_out = ys[0].shape[-1]
        edges, add = self._readout_edges(where, edge, n_out, add_readout_node, readout, bias)
        if not add:  # the readout node, before anything runs
            _check_ridge_plan(where, self._ridge_plan(where, edges, bias), reduce, ys)
        with self._all_or_nothing(() if add else tuple(self.get_edge(*e) for e in edges)):
            if add:
                self._add_readout(where, edges[0], n_out, bias, None)
            self._ridge_solve(where, ridge, edges, xs, ys, is_list, chunk, verbose, reduce)
        return ridge

    def _fit_readouts(
        self: Network,
        where,
        inputs,
        targets: dict,
        edge,
        alpha,
        washout,
        bias,
        verbose,
        chunk,
        reduce,
    ) -> dict[str, Ridge]:
        """``fit_ridge`` of several readouts from one run: ``targets`` ``{readout: y}``,
        ``edge`` and ``alpha`` a dict per readout (or ``edge=None``: every edge into each
        readout; one ``alpha`` for all). None may feed back into the network: teacher
        forcing feeds one readout's targets, so such a readout is fitted alone."""
        if not targets:
            raise ValueError(f"{where}: targets is an empty dict; give {{readout: targets}}")
        edges_of, alphas = _per_readout(where, targets, edge, alpha)
        chunk = _count(where, "chunk", chunk, 1)
        model = self.compile()
        at = (model.n_in, self.dtype, self.device)
        plans, ridges, all_ys, xs, is_list = [], [], [], None, False
        for label, y in targets.items():
            with _named(where):
                ridges.append(Ridge(alpha=alphas[label], fit_bias=bias, washout=washout))
            if reduce is None:
                xs, ys, is_list = _sequences(where, inputs, y, *at, nan=True)
            else:
                xs, ys, is_list = _labelled(where, reduce, inputs, y, *at)
            all_ys.append(ys)  # each checked against the inputs, step by step
            plans.append(self._readout_plan(where, label, edges_of[label], ys, bias))
            _check_washout(where, ys, washout, every=reduce is not None)
        ys = [torch.cat(parts, dim=-1) for parts in zip(*all_ys, strict=True)]
        with self._all_or_nothing(tuple(lin for p in plans for lin in p.lins)):
            if is_list:
                runs = list_runs(xs, ys, chunk)
            else:
                lengths = torch.full((ys[0].shape[0],), ys[0].shape[1], device=ys[0].device)
                runs = [(xs[0], ys[0], lengths, True)]
            stream(where, model, plans, ridges, runs, chunk, verbose, reduce)
            for plan, ridge in zip(plans, ridges, strict=True):
                _solve_into(where, plan, ridge)
        return dict(zip(targets, ridges, strict=True))

    def _readout_plan(self: Network, where: str, label: Any, edge: Any, ys: list, bias: bool):
        """The plan of one readout of :meth:`_fit_readouts`, checked."""
        if not isinstance(label, str) or label not in self.graph:
            raise ValueError(f"{where}: targets name {label!r}, which is not a node")
        if edge is None:
            edge = [(u, label) for u in self.graph.predecessors(label)]
        edge = edge if isinstance(edge, list) else [edge]
        if any(not isinstance(e, tuple) or len(e) != 2 or e[1] != label for e in edge):
            raise ValueError(f"{where}: the edges of readout {label!r} must go into it, got {edge}")
        edges, _ = self._readout_edges(where, edge, ys[0].shape[-1], False, label, bias)
        plan = self._ridge_plan(where, edges, bias)
        if plan.forced:
            raise ValueError(
                f"{where}: readout {label!r} feeds back into the network; teacher forcing "
                "feeds one readout's targets, so fit it alone (targets as an array)"
            )
        return plan

    def _ridge_solve(
        self: Network,
        where: str,
        ridge: Ridge,
        edges: list[tuple[str, str]],
        xs: list,
        ys: list,
        is_list: bool,
        chunk: int,
        verbose: bool,
        reduce: str | None,
    ) -> None:
        """Stream the data of ``fit_ridge`` into ``ridge``, solve, and write the solution
        into the readout ``edges``."""
        plan = self._ridge_plan(where, edges, ridge.fit_bias)
        if is_list:
            runs = list_runs(xs, ys, chunk)
        else:
            lengths = torch.full((ys[0].shape[0],), ys[0].shape[1], device=ys[0].device)
            runs = [(xs[0], ys[0], lengths, True)]
        stream(where, self.compile(), [plan], [ridge], runs, chunk, verbose, reduce)
        _solve_into(where, plan, ridge)

    @_network_method
    def fit_rls(
        self: Network,
        inputs: Any = None,
        targets: Any = None,
        edge: tuple[str, str] | None = None,
        alpha: float | None = None,
        forgetting: float | None = None,
        update_steps: int = 1,
        washout: int = 0,
        teacher_forcing: bool = False,
        feedback_weights: Any = None,
        feedback_order: str = "before",
        add_readout_node: bool = True,
        readout: str = "readout",
        bias: bool = False,
        record: list[str] | None = None,
        sampling_steps: int = 1,
        cutoff: int = 0,
        verbose: bool = False,
        rls_dtype: torch.dtype | None = None,
        trainer: Any = None,
    ) -> Recording:
        r"""Train a readout edge online by recursive least squares (FORCE learning).

        Every ``update_steps`` steps, inside the time loop, the readout moves to the
        least-squares fit of all samples so far (:class:`rnngraph.training.RLS`); fed back
        (a delayed edge, e.g. ``feedback_weights``), it trains on the network's own, corrected
        output: FORCE (Sussillo & Abbott 2009). The a-priori error is the readout's whole
        input minus the target. Open-loop updates replay on the run's recorded features.

        Parameters
        ----------
        inputs, targets : tensor or array
            ``(T, C)`` / ``(B, T, C)`` (``None``: autonomous) and ``(T, n_out)`` /
            ``(B, T, n_out)``; a batch adds samples to one regression (rank-``B`` updates).
            A nested list of numbers (``X.tolist()``) is one array, as in :meth:`run`; a
            list of sequences is refused.
        edge, add_readout_node, readout, bias
            As in :meth:`fit_ridge` (no bias by default, as in FORCE).
        alpha, forgetting, rls_dtype : float, float, torch.dtype, optional
            Prior :math:`P(0)=I/\alpha` (default 1; RectiPy's :math:`\alpha_R I` is
            ``1/alpha_R``), forgetting factor :math:`\lambda \in (0, 1]` (default 1), dtype
            of :math:`P` (default: the network's).
        update_steps, washout : int
            Update every ``update_steps`` steps, none in the first ``washout`` steps.
        teacher_forcing, feedback_weights, feedback_order : bool, array-like, str
            Feed the target onward instead of the output; add a delay-1 edge
            ``(n_source, n_out)`` from the readout back to the readout edge's source; pass on
            at an update step the output of the weights ``"before"`` it (FORCE's default) or
            ``"after"`` it (reservoirpy's ``RLS``), as ``output`` shows.
        record, sampling_steps, cutoff, verbose
            What to record during training, and a progress bar (as in :meth:`run`).
        trainer : RLS, optional
            ``rec.trainer`` of an earlier call, whose :math:`P` continues (settings given
            with it must be its own; ``update_steps``, ``washout`` count this call's steps).

        Returns
        -------
        Recording
            ``output``, ``loss`` (mean squared a-priori error), ``trainer``.
        """
        where = "Network.fit_rls"
        counts = _online_counts(
            where, targets, trainer, update_steps, washout, sampling_steps, cutoff, rls_dtype
        )
        rls = _rls_trainer(where, alpha, forgetting, *counts[:2], rls_dtype, trainer)
        wiring = (edge, add_readout_node, readout, bias, feedback_weights, feedback_order)
        steps = (counts, teacher_forcing, record, verbose)
        return self._fit_online(where, rls, trainer, inputs, targets, wiring, steps)

    @_network_method
    def fit_lms(
        self: Network,
        inputs: Any = None,
        targets: Any = None,
        edge: tuple[str, str] | None = None,
        learning_rate: Any = 1e-6,
        update_steps: int = 1,
        washout: int = 0,
        teacher_forcing: bool = False,
        feedback_weights: Any = None,
        feedback_order: str = "before",
        add_readout_node: bool = True,
        readout: str = "readout",
        bias: bool = False,
        record: list[str] | None = None,
        sampling_steps: int = 1,
        cutoff: int = 0,
        verbose: bool = False,
    ) -> Recording:
        r"""Train a readout edge online by least mean squares (the delta rule).

        Every ``update_steps`` steps, inside the time loop, the readout takes one gradient
        step on its squared a-priori error, :math:`W \leftarrow W - \eta\,e\,r^\top`,
        :math:`b \leftarrow b - \eta\,e` with :math:`e = W r + b - f`
        (:class:`rnngraph.training.LMS`, reservoirpy's ``LMS``). Everything else is as in
        :meth:`fit_rls`: feedback, teacher forcing, the order of output and update, the
        replay of open-loop updates on the recorded features, the recording.

        Parameters
        ----------
        inputs, targets, edge, add_readout_node, readout, bias
            As in :meth:`fit_rls` (no bias by default; reservoirpy's ``LMS`` fits one:
            ``bias=True``).
        learning_rate : float or array-like
            :math:`\eta > 0`, or one rate per update of this call (a 1-D array of
            ``len(range(washout, T, update_steps))`` values); default 1e-6, reservoirpy's.
        update_steps, washout, teacher_forcing, feedback_weights, feedback_order
            As in :meth:`fit_rls`; reservoirpy's ``res << LMS`` passes on the output of the
            updated weights, ``feedback_order="after"``.
        record, sampling_steps, cutoff, verbose
            What to record during training, and a progress bar (as in :meth:`run`).

        Returns
        -------
        Recording
            ``output``, ``loss`` (mean squared a-priori error per update), ``trainer`` (the
            :class:`~rnngraph.training.LMS`; a further call continues from the weights).
        """
        where = "Network.fit_lms"
        counts = _online_counts(where, targets, None, update_steps, washout, sampling_steps, cutoff)
        with _named(where):
            lms = LMS(learning_rate, every=counts[0], start=counts[1])
        wiring = (edge, add_readout_node, readout, bias, feedback_weights, feedback_order)
        steps = (counts, teacher_forcing, record, verbose)
        return self._fit_online(where, lms, None, inputs, targets, wiring, steps)

    def _fit_online(
        self: Network,
        where: str,
        rule: Any,
        trainer: Any,
        inputs: Any,
        targets: Any,
        wiring: tuple,
        steps: tuple,
    ) -> Recording:
        """The body of ``fit_rls`` and ``fit_lms``: ``rule`` (an ``RLS`` or ``LMS``) trains
        the readout online; ``trainer``: the continued RLS the call was given, or ``None``.
        ``wiring``: ``(edge, add_readout_node, readout, bias, feedback_weights,
        feedback_order)``; ``steps``: ``((update_steps, washout, every, start),
        teacher_forcing, record, verbose)``."""
        edge, add_readout_node, readout, bias, feedback_weights, feedback_order = wiring
        (update_steps, washout, every, start), teacher_forcing, record, verbose = steps
        _flags(where, add_readout_node=add_readout_node, bias=bias, verbose=verbose)
        after = _feedback_order(where, feedback_order, teacher_forcing)
        x, y = self._online_sequence(where, inputs, targets, washout)
        rule.expect_updates(where, len(range(washout, y.shape[1], update_steps)))
        edge, add = self._readout_edge(where, edge, y.shape[-1], add_readout_node, readout, bias)
        self._check_online_call(where, edge, bias, y.shape[-1], feedback_weights, trainer, after)
        obs = None if record is None else _observer(where, record, every, start)
        with self._all_or_nothing(() if add else (self.get_edge(*edge),), rls=trainer):
            model = self._online_model(where, edge, add, y.shape[-1], bias, feedback_weights)
            if obs is None:  # the output node, which the readout may have become
                obs = _observer(where, [model.output_node], every, start)
            steps = (washout, update_steps, teacher_forcing, after, verbose)
            rec = self._online_run(where, model, edge, x, y, obs, rule, bias, *steps)
        rec.batched, rec.trainer = np.ndim(targets) == 3, rule
        return rec

    def _online_sequence(
        self: Network, where: str, inputs: Any, targets: Any, washout: int
    ) -> tuple[Tensor | None, Tensor]:
        """The one ``(x, y)`` pair ``fit_rls`` trains on, its length checked against ``washout``."""
        model = self.compile()
        xs, ys, is_list = _sequences(where, inputs, targets, model.n_in, self.dtype, self.device)
        if is_list:
            raise TypeError(
                f"{where}: pass one (T, n) or (B, T, n) array; lists of sequences "
                "train one after another with repeated calls"
            )
        x, y = xs[0], ys[0]
        if washout >= y.shape[1]:
            raise ValueError(
                f"{where}: washout={washout} leaves no step to update: the targets have "
                f"{y.shape[1]} steps; pass a washout below the length"
            )
        return x, y

    def _online_model(
        self: Network,
        where: str,
        edge: tuple[str, str],
        add: bool,
        n_out: int,
        bias: bool,
        feedback_weights: Any,
    ) -> CompiledNetwork:
        """Add ``fit_rls``'s readout and feedback edge as asked; return the checked model."""
        if add:
            self._add_readout(where, edge, n_out, bias, "rls")
        if feedback_weights is not None:
            self.add_edge(edge[1], edge[0], weights=feedback_weights, feedback=True)
        model = self.compile()
        self._check_online(where, model, edge)
        return model

    def _check_online_call(
        self: Network,
        where: str,
        edge: tuple[str, str],
        bias: bool,
        n_out: int,
        feedback_weights: Any,
        trainer: Any,
        after: bool,
    ) -> None:
        """What ``fit_rls`` can check before it changes anything."""
        node = self.graph.nodes[edge[1]]["node"] if edge[1] in self.graph else None
        if after and node is not None and not isinstance(node, FuncNode):
            raise ValueError(
                f"{where}: feedback_order='after' needs a function node as the readout (its "
                f"output recomputed from the updated weights); {edge[1]!r} is a "
                f"{type(node).__name__}, whose state integrated the input before the update"
            )
        if feedback_weights is not None:  # into the source's main input
            n_src = self.get_node(edge[0]).input_size(None)
            if tuple(np.shape(feedback_weights)) != (n_src, n_out):
                raise ValueError(
                    f"{where}: feedback_weights must have shape (n_source, n_out) "
                    f"= ({n_src}, {n_out}), got {tuple(np.shape(feedback_weights))}"
                )
            dense = (
                isinstance(feedback_weights, Tensor) and feedback_weights.layout == torch.strided
            )
            if dense or isinstance(feedback_weights, np.ndarray | list | tuple):
                as_sequence_tensor(
                    where, "feedback_weights", feedback_weights, self.dtype, self.device
                )
            if self.graph.has_edge(edge[1], edge[0]):
                raise ValueError(f"{where}: an edge {edge[1]!r} -> {edge[0]!r} exists already")
        n_features = self.get_node(edge[0]).n + bool(bias)
        if trainer is not None and trainer.P is not None and trainer.P.shape[0] != n_features:
            raise ValueError(
                f"{where}: the trainer's P is {tuple(trainer.P.shape)}, the readout edge "
                f"{edge[0]}->{edge[1]} needs ({n_features}, {n_features}) "
                f"({self.get_node(edge[0]).n} inputs{' and a bias' if bias else ''})"
            )

    @staticmethod
    def _check_online(where: str, model: CompiledNetwork, edge: tuple[str, str]) -> None:
        """Refuse a readout that an update inside the time loop cannot train."""
        if edge[1] not in model.plan.dynamic:
            raise ValueError(
                f"{where}: readout node {edge[1]!r} does not depend on the network's state; "
                "nothing to train online"
            )
        if edge[0] in model.plan.static:
            raise ValueError(
                f"{where}: the edge {edge[0]!r} -> {edge[1]!r} leaves a node computed before "
                "the time loop (from the input alone), whose products are precomputed and "
                "cannot follow updates inside the loop; train an edge from a node of the "
                "loop, or fit this one offline with fit_ridge"
            )

    def _online_run(
        self: Network,
        where: str,
        model: CompiledNetwork,
        edge: tuple[str, str],
        x: Tensor | None,
        y: Tensor,
        obs: Observer,
        rls: Any,
        bias: bool,
        washout: int,
        update_steps: int,
        teacher_forcing: bool,
        after: bool,
        verbose: bool,
    ) -> Recording:
        """The training run of ``fit_rls``: the updates inside the loop (a hook on the
        readout), or replayed on the recorded features when nothing depends on the readout.
        ``after``: an update step passes on the output of the updated weights."""
        lin = self.get_edge(*edge)
        w, b = lin.weight, (lin.bias if bias else None)
        targets_tm = y.transpose(0, 1).contiguous()  # (T, B, n_out)
        n_steps = targets_tm.shape[0]
        n_upd = len(range(washout, n_steps, update_steps))
        errors = torch.zeros(n_upd, dtype=w.dtype, device=w.device)

        # the readout's input may hold more than W r + b: other edges into that input, or
        # a bias the fit leaves as it is (bias=False on an edge that has one). RLS fits
        # what they leave of the target; the loop reads that input's sum of the step
        var = lin.target_var or self.get_node(edge[1]).input_names[0]
        offset = (b is None and lin.bias is not None) or any(
            (self.get_edge(s, edge[1]).target_var or var) == var
            for s in self.graph.predecessors(edge[1])
            if s != edge[0]
        )

        fn = model.nodes[edge[1]].fn if after else None  # a function node (checked)

        def hook(t: int, r: Tensor, out: Tensor, *total: Tensor) -> Tensor:
            f = targets_tm[t]
            if t >= washout and (t - washout) % update_steps == 0:
                goal = f - (total[0] - F.linear(r, w, b)) if offset else f
                err = rls.update(w, b, r, goal)  # the readout's input - f, a priori
                errors[(t - washout) // update_steps] = err.square().mean()
                if after:  # the other inputs (total - W r - b, a priori) stay
                    rest = total[0] - goal - err if offset else 0.0
                    out = fn(F.linear(r, w, b) + rest)
            return f if teacher_forcing else out

        if self._feeds_nothing(edge):
            # nothing depends on the readout: run first, then replay the updates
            updates = range(washout, n_steps, update_steps)
            steps = (verbose, rls, b, updates, errors, after)
            rec = _online_replay(where, model, lin, edge, x, y, obs, *steps)
        else:
            key = f"{edge[0]}->{edge[1]}"  # the hook updates this edge inside the loop
            reads = (key, edge[1]) + ((f"{edge[1]}:{var}",) if offset else ())
            tap = Hook(edge[1], reads, hook, replaces=True, writes=(key,), recorded=after)
            rec = _run_no_grad(where, model, x, y, obs, verbose, hooks=(tap,))
        rec.loss = errors
        return rec

    def _feeds_nothing(self: Network, edge: tuple[str, str]) -> bool:
        """Whether the readout node of ``edge`` is a function node fed by that edge alone
        that feeds nothing: then no state depends on the readout's weights (open loop)."""
        node = edge[1]
        return (
            isinstance(self.get_node(node), FuncNode)
            and self.graph.out_degree(node) == 0
            and self.graph.in_degree(node) == 1
        )

    @_network_method
    def fit_intrinsic(
        self: Network,
        inputs: Any,
        node: str | None = None,
        epochs: int = 1,
        washout: int = 0,
        verbose: bool = False,
    ) -> Recording:
        r"""Tune the gain :math:`a` and shift :math:`b` of an :class:`~rnngraph.nodes.IPReservoir`
        node by intrinsic plasticity (reservoirpy's ``IPReservoir.fit``).

        Runs the network on ``inputs`` ``epochs`` times, each pass continuing from the held
        state (the network holds the last pass's end), and after every step from the
        ``washout``-th of each pass adds the node's rule step
        :meth:`~rnngraph.nodes.IPReservoir.plasticity` (summed over a batch) to
        :math:`a, b`, which the next step uses. reservoirpy's ``fit(x, warmup=w)`` skips
        the first ``w`` steps altogether: it is ``fit_intrinsic(x[w:])``.

        Parameters
        ----------
        inputs : tensor or array
            ``(T, C)`` or ``(B, T, C)`` (one array: the rule runs through the steps in order).
        node : str, optional
            The node to tune; default: the network's only ``IPReservoir``.
        epochs, washout : int
            Passes over the inputs (>= 1); steps at the start of each pass left untuned.
        verbose : bool
            Show a progress bar.

        Returns
        -------
        Recording
            The last pass's run. A refused call leaves the network as it was.
        """
        where = "Network.fit_intrinsic"
        verbose = as_flag(where, "verbose", verbose)
        label = self._plastic_node(where, node)
        epochs = _count(where, "epochs", epochs, 1)
        washout = as_int(where, "washout", washout, minimum=0, type_error=ValueError)
        if is_sequence_list(inputs):
            raise TypeError(f"{where}: pass one (T, C) or (B, T, C) array; call once per sequence")
        model = self.compile()
        x, _ = model.as_input(where, inputs)
        if x.shape[1] <= washout:
            raise ValueError(f"{where}: washout={washout} leaves none of the {x.shape[1]} steps")
        ip = self.get_node(label)

        def tune(t: int, r: Tensor, out: Tensor) -> None:
            if t >= washout:
                da, db = ip.plasticity(r, out)
                ip.a.add_(da.sum(0))
                ip.b.add_(db.sum(0))

        # the rule the node declares, from step `washout`: a native loop applies it itself
        hook = Hook(label, (f"{label}.r", f"{label}.x"), tune, rule=("intrinsic", washout))
        with self._all_or_nothing(params=(ip.a, ip.b)), torch.no_grad():
            for _ in range(epochs):
                rec = model.execute(where, x, None, None, verbose, None, hooks=(hook,))
            if not bool(torch.isfinite(ip.a).all() & torch.isfinite(ip.b).all()):
                raise ValueError(
                    f"{where}: node {label!r}: the gains or shifts became NaN or inf (a learning "
                    "rate too large?); they are as they were"
                )
        return rec

    def _plastic_node(self: Network, where: str, node: Any) -> str:
        """The label of the ``IPReservoir`` node that ``fit_intrinsic`` tunes."""
        plastic = [v for v in self.graph.nodes if isinstance(self.get_node(v), IPReservoir)]
        if node is None:
            if len(plastic) != 1:
                raise ValueError(
                    f"{where}: the network has {len(plastic)} IPReservoir nodes {plastic}; "
                    "name the one to tune with node="
                )
            return plastic[0]
        if node not in plastic:
            raise ValueError(
                f"{where}: node={node!r} is not an IPReservoir node of this network; these "
                f"are: {plastic}"
            )
        return node

    @_network_method
    def fit_bptt(
        self: Network,
        inputs: Any,
        targets: Any,
        optimizer: Any = _SGD,
        optimizer_kwargs: dict[str, Any] | None = _NONE,
        loss: Any = _MSE,
        loss_kwargs: dict[str, Any] | None = _NONE,
        lr: float | None = _NONE,
        update_steps: int | None = _NONE,
        epochs: int = 1,
        clip_grad_norm: float | None = _NONE,
        reset: bool = True,
        verbose: bool = False,
        trainer: Any = None,
    ) -> Recording:
        r"""Train every ``nn.Parameter`` of the network by (truncated) BPTT.

        RectiPy's ``fit_bptt``: optimiser and loss by name (see
        :class:`rnngraph.training.BPTT`), an update every ``update_steps`` steps (the state
        is detached after each update), ``epochs`` passes over the data. The shapes it
        takes (anything else is refused, before anything runs, with an error listing them):

        ============================  ==================================================
        inputs                        targets
        ============================  ==================================================
        ``(T, C)``: one sequence      ``(T, n_out)`` values (``(T,)`` when
                                      ``n_out = 1``), or ``(T,)`` integer class indices
        ``(B, T, C)``: a batch of     ``(B, T, n_out)`` values, or ``(B, T)`` integer
        ``B`` trials                  class indices (one per trial and step)
        ``None`` (no input)           as for ``(T, C)``: the targets fix the length
        a list of the above           a list of as many targets, pair by pair
        ============================  ==================================================

        A batch runs as **one** forward: a window of ``update_steps`` steps makes one
        update from the loss over all ``B`` trials (for one update per trial, pass a list).
        Per-trial labels ``(B,)`` are refused: repeat them over the steps. With a loss by
        name, values need the output's width and class indices ``0 .. n_out - 1``
        (``ce``/``nll``); a loss callable gets the targets as given. A nested list of
        numbers (``X.tolist()``) is one array, as in :meth:`run`.

        **Continuing a trainer** (``trainer=``, the ``rec.trainer`` of an earlier call):
        the optimiser and its state carry over, and a setting left out (its default shows
        as ``default(...)``) keeps the trainer's own. ``lr`` (on every param_group),
        ``loss``, ``loss_kwargs`` (alone: the trainer's loss by name, re-keyed),
        ``update_steps`` and ``clip_grad_norm`` hold from this call on; ``optimizer`` and
        ``optimizer_kwargs`` must be the trainer's own. All are checked before any change.

        Parameters
        ----------
        inputs, targets : tensor, array or list of them
            See the table; ``inputs=None`` for networks without input.
        optimizer, optimizer_kwargs : str, class or instance; dict, optional
            Default ``"sgd"`` (RectiPy's), and its constructor's keywords (not with an instance).
        loss, loss_kwargs : str or callable; dict, optional
            Default ``"mse"``, and the keywords of a loss by name.
        lr : float, optional
            Learning rate, default 1e-3; an optimizer instance keeps its own (another ``lr``
            with it is refused, except with ``trainer=``).
        update_steps, clip_grad_norm : int, float, optional
            Truncation window (default: one update per sequence); global gradient-norm clip.
        epochs, reset, verbose : int, bool, bool
            Passes over the data; start each sequence from the initial state (default); progress.
        trainer : BPTT, optional
            Continue with this trainer and its optimiser state (see above).

        Returns
        -------
        Recording
            ``loss``: the loss of every update; ``trainer``: the :class:`BPTT` object.
        """
        where = "Network.fit_bptt"
        _flags(where, reset=reset, verbose=verbose)
        settings = _settings(BPTT, locals())
        trainer, checked, given = _trainer(where, BPTT, trainer, settings, _bptt_continued)
        epochs = _count(where, "epochs", epochs, 1)
        model = self.compile()
        data = _bptt_pairs(where, inputs, targets, model, checked, self.dtype, self.device)
        options = {"epochs": epochs, "reset": reset, "progress": verbose}
        return self._gradient_fit(where, trainer, checked, given, model, data, **options)

    @_network_method
    def fit_eprop(
        self: Network,
        inputs: Any,
        targets: Any,
        loss_mask: Any = None,
        feedback: str = _SYMMETRIC,
        task: str | None = _NONE,
        optimizer: Any = _ADAM,
        optimizer_kwargs: dict[str, Any] | None = _NONE,
        lr: float | None = _NONE,
        reg_rate: float | None = _NONE,
        reg_weight: float | None = _NONE,
        reduction: str = _MEAN,
        epochs: int = 1,
        seed: int | None = _NONE,
        verbose: bool = False,
        trainer: Any = None,
        method: str = _AUTO,
        history_limit: int | None = _NONE,
        feedback_decay: float = _ZERO,
    ) -> Recording:
        r"""Train a recurrent spiking network by e-prop (Bellec et al. 2020,
        doi:10.1038/s41467-020-17236-y).

        The network needs an ``lif`` or ``alif`` population fed by edges (input edge,
        recurrent feedback self-edge with a zero diagonal ``mask``, ``train="gd"``) and a
        ``leaky_readout`` output node fed by one edge from the population. Every batch of
        trials runs from the initial state through the compiled loop; then one optimiser
        step applies the e-prop gradients (:class:`rnngraph.training.EProp`: equations, loss).

        **Continuing a trainer** (``trainer=``, the ``rec.trainer`` of an earlier call): as
        in :meth:`fit_bptt`, the optimiser state (and the feedback matrix) carry over.
        ``lr``, ``reg_rate`` (``None`` ends the regulariser; alone, it keeps the trainer's
        weight or takes 1.0), ``reg_weight``, ``reduction``, ``method``, ``history_limit``
        and ``feedback_decay`` hold from this call on; ``feedback``, ``seed``, ``task``,
        ``optimizer`` and ``optimizer_kwargs`` must be the trainer's own.

        Parameters
        ----------
        inputs, targets : tensor, array or list of them
            ``(T, C)`` / ``(B, T, C)``, or a list of such batches (one update each), and
            ``(T, K)`` / ``(B, T, K)`` values or ``(T,)`` / ``(B, T)`` class indices. A
            nested list of numbers (``X.tolist()``) is one array, as in :meth:`run`.
        loss_mask : tensor, array or list of them, optional
            ``(T,)`` / ``(B, T)``: where the loss counts; a list of masks with a list of batches.
        feedback, task : {"symmetric", "random", "adaptive"}, {"regression", "classification"}
            Feedback matrix of the learning signal (default ``"symmetric"``); the task
            (default, and ``None``: classification for integer targets, else regression).
        optimizer, optimizer_kwargs, lr : as for :meth:`fit_bptt` (``"adam"``, lr 1e-3)
        reg_rate, reg_weight : float, optional
            Firing-rate regulariser: target rate (Hz, ``dt`` in ms) and weight (default 1.0).
        reduction, epochs, verbose : {"mean", "sum"}, int, bool
            Average (default) or sum the loss over the counted (trial, step) pairs; passes
            over the batches; progress bar.
        seed, trainer, feedback_decay : int, EProp, float
            Seed of the ``"random"``/``"adaptive"`` feedback (default 0; not with symmetric);
            a trainer to continue (see above); the decay of adaptive feedback (default 0).
        method, history_limit : {"auto", "reverse", "traces"}, int
            A reverse scan over the recorded trial, or traces carried forward (the same
            gradients); ``"auto"``: the scan unless its history exceeds 1 GiB (or the limit).

        Returns
        -------
        Recording
            ``loss``: the loss of every update; ``trainer``: the :class:`EProp` object."""
        where = "Network.fit_eprop"
        _flags(where, verbose=verbose)
        settings = _settings(EProp, locals())
        epochs = _count(where, "epochs", epochs, 1)
        model = self.compile()
        data = _eprop_data(where, inputs, targets, loss_mask)
        task = _task(settings, data[0][1])  # the given one, else read from the targets
        trainer, checked, given = _trainer(
            where, EProp, trainer, settings, _eprop_continued, task=task
        )
        trainer.check_network(where, model)  # the network's structure, before anything runs
        for batch in data:
            trainer.prepare(where, model, *batch)
        options = {"epochs": epochs, "progress": verbose}
        return self._gradient_fit(where, trainer, checked, given, model, data, **options)

    def _gradient_fit(
        self: Network,
        where: str,
        trainer: Any,
        checked: Any,
        given: dict[str, Any],
        model: CompiledNetwork,
        data: list[tuple],
        **options: Any,
    ) -> Recording:
        """``trainer.fit(model, data, **options)`` all or nothing, with the settings ``given``
        to a continued trainer (``checked``) in force; its losses as a recording."""
        with (
            _named(where),
            self._all_or_nothing(gradient=trainer),
            _honoured(trainer, checked, given),
        ):
            losses = trainer.fit(model, data, **options)
        rec = Recording({}, torch.zeros(0, dtype=torch.int64), self.dt, state=model.state)
        rec.loss = losses
        rec.trainer = trainer
        return rec

    @_network_method
    def test(
        self: Network, inputs: Any, targets: Any, loss: str = "mse", **run_kwargs: Any
    ) -> tuple[Recording, float]:
        """Run on ``inputs`` and score the output against ``targets`` (RectiPy's ``test``).

        ``inputs``: ``(T, C)`` / ``(B, T, C)``, or ``None`` (no input: one trial, as long as
        the targets); ``targets``: ``(T, n_out)`` / ``(B, T, n_out)``, step by step with the
        output. ``loss``: ``"mse"``, ``"rmse"``, ``"mae"`` or ``"nrmse"`` (std-normalised).
        ``run_kwargs`` go to :meth:`run`. A nested list of numbers (``X.tolist()``) is one
        array, as in :meth:`run`; lists of input and target sequences (arrays or tensors)
        run as :meth:`run` runs a list, scored over all their steps together (the
        recordings come back as :class:`Recordings`). Everything is checked before the
        run, so a bad call leaves the held state as it was. Returns ``(recording,
        loss_value)``.
        """
        where = "Network.test"
        scores = _SCORES
        if not isinstance(loss, str) or loss not in scores:
            raise ValueError(f"{where}: unknown loss {loss!r}; valid: {sorted(scores)}")
        run_params = inspect.signature(self.run).parameters.values()
        run_names = [
            p.name for p in run_params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        unknown = sorted(set(run_kwargs) - set(run_names[1:]))  # not inputs: test's own
        if unknown:
            raise TypeError(
                f"{where}: unknown keyword argument(s) {unknown}; valid ones are "
                f"['inputs', 'targets', 'loss'] and those of Network.run, {run_names[1:]}"
            )
        model = self.compile()
        xs, ys, is_list = _sequences(where, inputs, targets, model.n_in, self.dtype, self.device)
        if ys[0].shape[-1] != model.n_out:
            raise ValueError(
                f"{where}: the targets have width {ys[0].shape[-1]}, the output node "
                f"{model.output_node!r} has {model.n_out} units"
            )
        if is_list:
            return self._test_list(where, inputs, ys, loss, run_kwargs)
        y = ys[0]
        if inputs is None:
            if y.shape[0] != 1:
                raise ValueError(
                    f"{where}: without inputs a run has one trial, the targets have {y.shape[0]}"
                )
            if run_kwargs.setdefault("steps", y.shape[1]) != y.shape[1]:
                raise ValueError(
                    f"{where}: steps={run_kwargs['steps']} but the targets have {y.shape[1]} steps"
                )
        if loss == "nrmse" and float(y.std(unbiased=False)) == 0.0:
            raise ValueError(f"{where}: loss='nrmse' of constant targets (std 0) is undefined")
        with self._all_or_nothing():  # a refusal after the run leaves the held state as it was
            rec = self.run(inputs, **run_kwargs)
            out = rec.output if rec.output.dim() == 3 else rec.output.unsqueeze(0)
            if out.shape != y.shape:
                raise ValueError(
                    f"{where}: the output has shape {tuple(out.shape)}, the targets "
                    f"{tuple(y.shape)}"
                )
        err = (out - y).to(torch.float64)
        return rec, float(scores[loss](err, y.to(torch.float64)))

    def _test_list(
        self: Network, where: str, inputs: Any, ys: list[Tensor], loss: str, run_kwargs: dict
    ) -> tuple[Recordings, float]:
        """:meth:`test` over lists of sequences: one list run, scored over every step."""
        if inputs is None:
            raise ValueError(f"{where}: a list of target sequences needs a list of inputs")
        y = torch.cat([t.reshape(-1, t.shape[-1]) for t in ys]).to(torch.float64)
        if loss == "nrmse" and float(y.std(unbiased=False)) == 0.0:
            raise ValueError(f"{where}: loss='nrmse' of constant targets (std 0) is undefined")
        recs = self.run(inputs, **run_kwargs)
        err = recs.cat().to(torch.float64) - y
        return recs, float(_SCORES[loss](err, y))


#: the losses of ``test``: of the errors ``e`` and the targets ``y``
_SCORES = {
    "mse": lambda e, y: e.square().mean(),
    "rmse": lambda e, y: e.square().mean().sqrt(),
    "mae": lambda e, y: e.abs().mean(),
    "nrmse": lambda e, y: e.square().mean().sqrt() / y.std(unbiased=False),
}

#: the settings of a new gradient trainer, by the names of its fit call's parameters
_SETTINGS = {
    BPTT: (
        "optimizer",
        "optimizer_kwargs",
        "loss",
        "loss_kwargs",
        "lr",
        "update_steps",
        "clip_grad_norm",
    ),
    EProp: (
        "feedback",
        "task",
        "optimizer",
        "optimizer_kwargs",
        "lr",
        "reg_rate",
        "reg_weight",
        "reduction",
        "seed",
        "method",
        "history_limit",
        "feedback_decay",
    ),
}


def _settings(cls: type, arguments: dict[str, Any]) -> dict[str, Any]:
    """The trainer settings among a fit call's ``arguments`` (its ``locals()``)."""
    return {k: arguments[k] for k in _SETTINGS[cls]}


def _check_trainer(where: str, trainer: Any, cls: type) -> None:
    """Refuse a ``trainer=`` that is not a ``cls`` (the trainer of an earlier call)."""
    if trainer is not None and not isinstance(trainer, cls):
        call = where.split(".")[-1]
        raise TypeError(
            f"{where}: trainer must be the {cls.__name__} of an earlier {call} (rec.trainer), "
            f"got {type(trainer).__name__}"
        )


def _trainer(
    where: str, cls: type, trainer: Any, settings: dict[str, Any], continued: Callable, **fixed
) -> tuple[Any, Any, dict[str, Any]]:
    """``(trainer, checked, given)`` of a gradient fit: a new ``cls`` made from
    ``settings`` (and ``fixed``), which holds them all (nothing given to apply); or the
    given ``trainer``, with ``continued``'s check of the settings given to it."""
    _check_trainer(where, trainer, cls)
    given = _given(**settings)
    if trainer is None:
        with _named(where):
            trainer = cls(**{**_fresh(**settings), **fixed})
        return trainer, trainer, {}
    return trainer, continued(where, trainer, given, **fixed), given


def _task(settings: dict[str, Any], targets: Tensor) -> Any:
    """The task of ``fit_eprop``: the one given, else classification for integer
    ``targets`` and regression for others."""
    task = _given(**settings).get("task")
    if task is None:
        task = "classification" if _class_targets(targets) else "regression"
    return task


def _eprop_data(where: str, inputs: Any, targets: Any, loss_mask: Any) -> list[tuple]:
    """``fit_eprop``'s batches as ``(inputs, targets, loss_mask)`` triples."""
    xs, tgts, is_list = _paired(where, inputs, targets, inputs_optional=False)
    tgts = [raw_tensor(where, "targets", y) for y in tgts]
    if loss_mask is None:
        masks = [None] * len(tgts)
    elif is_list:
        if not is_sequence_list(loss_mask) or len(loss_mask) != len(tgts):
            raise ValueError(
                f"{where}: with lists of batches, loss_mask must be a list of as many masks "
                "(arrays or tensors, one per batch)"
            )
        masks = list(loss_mask)
    else:
        masks = [loss_mask]
    return list(zip(xs, tgts, masks, strict=True))


def _per_readout(where: str, targets: dict, edge: Any, alpha: Any) -> tuple[dict, dict]:
    """``edge`` and ``alpha`` of a fit of several readouts as dicts over ``targets``'
    readouts: a dict must name only those readouts; ``edge=None`` is every readout's
    default, a scalar ``alpha`` every readout's."""
    if edge is not None and not isinstance(edge, dict):
        raise ValueError(
            f"{where}: with a dict of targets, edge must be a dict {{readout: edge(s)}} or "
            f"None, got {edge!r}"
        )
    for name, given in (("edge", edge), ("alpha", alpha)):
        extra = [k for k in (given if isinstance(given, dict) else {}) if k not in targets]
        if extra:
            raise ValueError(f"{where}: {name} names {extra}, which have no targets")
    edges = {k: (edge or {}).get(k) for k in targets}
    if isinstance(alpha, dict):
        missing = [k for k in targets if k not in alpha]
        if missing:
            raise ValueError(f"{where}: alpha has no value for the readouts {missing}")
        return edges, alpha
    return edges, dict.fromkeys(targets, alpha)


def _solve_into(where: str, plan: Readout, ridge: Ridge) -> None:
    """Solve ``ridge`` and write its solution into the readout of ``plan``."""
    names = ", ".join(f"{u!r} -> {v!r}" for u, v in plan.edges)
    if ridge.n_samples == 0:
        raise ValueError(
            f"{where}: edge {names}: no step to fit: the targets are NaN at every step "
            "after the washout"
        )
    try:
        ridge.solve()
    except ValueError as err:
        raise ValueError(f"{where}: edge {names}: {err}; nothing was fitted") from err
    plan.write(ridge.weight, ridge.bias)


def _check_washout(where: str, ys: list[Tensor], washout: int, every: bool = False) -> None:
    """Refuse a ``washout`` that drops every step of every sequence of targets ``ys`` (with
    ``every``, every step of any sequence)."""
    lengths = [y.shape[1] for y in ys]
    short = [k for k, T in enumerate(lengths) if T <= washout]
    if every and short:
        raise ValueError(
            f"{where}: washout={washout} drops every step of sequence {short[0]} "
            f"({lengths[short[0]]} steps); with reduce= every sequence must keep one"
        )
    if all(T <= washout for T in lengths):
        raise ValueError(
            f"{where}: washout={washout} drops every step: the targets have "
            f"{lengths[0] if len(lengths) == 1 else lengths} steps; pass a washout "
            "below the length"
        )


def _labelled(
    where: str, reduce: Any, inputs: Any, targets: Any, n_in: int | None, dtype, device
) -> tuple[list[Tensor], list[Tensor], bool]:
    """The inputs of a per-sequence fit as ``(B_k, T_k, C)`` tensors and their target rows
    as ``(B_k, T_k, n_out)`` views, the row repeated at every step: ``targets`` one row
    per sequence (per row of a ``(B, T, C)`` array), as an ``(N, n_out)`` array or a list
    of ``(n_out,)`` / ``(B_k, n_out)`` rows. ``reduce`` must be one of ``REDUCTIONS``."""
    if reduce not in REDUCTIONS:
        raise ValueError(f"{where}: reduce must be None or one of {REDUCTIONS}, got {reduce!r}")
    is_list = is_sequence_list(inputs)
    seqs = list(inputs) if is_list else [inputs]
    if is_list and not seqs:
        raise ValueError(f"{where}: no sequences: an empty {type(inputs).__name__}")
    if inputs is None:
        raise ValueError(f"{where}: reduce= fits sequences of inputs; got inputs=None")
    xs = []
    for k, x in enumerate(seqs):
        xt = as_sequence_tensor(f"{where} (sequence {k})", "inputs", x, dtype, device)
        xt = xt if xt.dim() == 3 else xt.unsqueeze(0)
        if n_in is not None and xt.shape[-1] != n_in:
            raise ValueError(
                f"{where}: inputs (sequence {k}) have {xt.shape[-1]} channels, the input "
                f"node expects {n_in}"
            )
        xs.append(xt)
    rows = [x.shape[0] for x in xs]
    if is_sequence_list(targets):
        parts = [raw_tensor(where, "targets", y) for y in targets]
        y = torch.cat([p.reshape(1, -1) if p.dim() <= 1 else p for p in parts])
    else:
        y = raw_tensor(where, "targets", targets)
        y = y.reshape(1, -1) if y.dim() <= 1 and sum(rows) == 1 else y
    y = as_sequence_tensor(where, "targets", y, dtype, device, nan=True)
    if y.dim() != 2 or y.shape[0] != sum(rows):
        raise ValueError(
            f"{where}: with reduce= the targets are one row per sequence, ({sum(rows)}, "
            f"n_out) for these inputs; got shape {tuple(y.shape)}"
        )
    labels = torch.split(y, rows)
    ys = [t[:, None].expand(b, x.shape[1], -1) for t, b, x in zip(labels, rows, xs, strict=True)]
    return xs, ys, is_list


def _check_ridge_plan(where: str, plan: Readout, reduce: str | None, ys: list[Tensor]) -> None:
    """A teacher-forced fit feeds every target back: refuse NaN targets and ``reduce``."""
    if not plan.forced:
        return
    if reduce is not None:
        raise ValueError(
            f"{where}: reduce={reduce!r} fits one target per sequence, but the readout "
            f"{plan.node!r} feeds back into the network, which needs a target at every step"
        )
    if any(bool(y.isnan().any()) for y in ys):
        raise ValueError(
            f"{where}: the readout {plan.node!r} feeds back into the network (teacher "
            "forcing feeds the targets on in its place), so its targets cannot hold NaN"
        )


def _count(where: str, name: str, value: Any, least: int) -> int:
    """``value`` as an int >= ``least``; anything else is a ``ValueError`` naming ``name``."""
    return as_int(where, name, value, minimum=least, type_error=ValueError)


def _online_counts(
    where: str,
    targets: Any,
    trainer: Any,
    update_steps: Any,
    washout: Any,
    sampling_steps: Any,
    cutoff: Any,
    rls_dtype: Any = None,
) -> tuple[int, int, int, int]:
    """Check the targets, trainer, counts and rls_dtype of ``fit_rls`` (or ``fit_lms``,
    which has no trainer or dtype to pass); return the four counts."""

    if targets is None:
        raise ValueError(f"{where}: targets are required")
    if trainer is not None and not isinstance(trainer, RLS):
        raise TypeError(
            f"{where}: trainer must be the RLS of an earlier fit_rls (rec.trainer), "
            f"got {type(trainer).__name__}"
        )
    update_steps = _count(where, "update_steps", update_steps, 1)
    washout = _count(where, "washout", washout, 0)
    every = _count(where, "sampling_steps", sampling_steps, 1)
    start = _count(where, "cutoff", cutoff, 0)
    if rls_dtype is not None:
        as_float_dtype(f"{where}: rls_dtype", rls_dtype)
    return update_steps, washout, every, start


def _rls_trainer(
    where: str,
    alpha: Any,
    forgetting: Any,
    update_steps: int,
    washout: int,
    rls_dtype: Any,
    trainer: Any,
) -> Any:
    """The RLS of a ``fit_rls`` call: ``trainer``, checked against the call, or a new one."""

    with _named(where):
        fresh = RLS(
            alpha=1.0 if alpha is None else alpha,
            forgetting=1.0 if forgetting is None else forgetting,
            every=update_steps,
            start=washout,
            dtype=rls_dtype,
        )
    if trainer is not None:
        _carried_over(where, trainer, alpha, forgetting, rls_dtype, fresh)
    return trainer or fresh


def _carried_over(
    where: str, trainer: Any, alpha: Any, forgetting: Any, rls_dtype: Any, given: Any
) -> None:
    """Refuse an ``alpha``, ``forgetting`` or ``rls_dtype`` of ``fit_rls`` that differs
    from the continued ``trainer``'s (whose settings carry over with its :math:`P`);
    ``given``: an ``RLS`` built from the call's values (checked, as floats)."""
    dtype = trainer.P.dtype if trainer.P is not None else trainer.dtype
    for name, value, mine, theirs in (
        ("alpha", alpha, given.alpha, trainer.alpha),
        ("forgetting", forgetting, given.forgetting, trainer.forgetting),
        ("rls_dtype", rls_dtype, rls_dtype, dtype),
    ):
        if value is not None and mine != theirs:
            raise ValueError(
                f"{where}: {name}={value!r}, but the trainer continued here has "
                f"{name}={theirs!r}, which carries over with its P; leave {name} out, or "
                "start a new fit without trainer="
            )


def _equal(a: Any, b: Any) -> bool:
    """``a == b`` for settings, falling back on identity where ``==`` gives no truth
    value (tensors inside a dict)."""
    try:
        return bool(a == b)
    except (TypeError, ValueError, RuntimeError):
        return a is b


def _optimizer_class(spec: Any) -> type | None:
    """The optimiser class a name or class ``spec`` builds; ``None`` for anything else."""

    if isinstance(spec, str):
        return OPTIMIZERS.get(spec)
    if isinstance(spec, type) and issubclass(spec, torch.optim.Optimizer):
        return spec
    return None


def _same_optimizer(given: Any, trainer: Any) -> bool:
    """Whether ``given`` names ``trainer``'s optimiser: its instance (the one it was given
    or built), or the name or class it was built from."""
    spec = trainer.optimizer_spec
    if isinstance(given, torch.optim.Optimizer):
        return given is spec or given is trainer.optimizer
    if isinstance(spec, torch.optim.Optimizer):
        return False
    cls = _optimizer_class(given)
    return cls is not None and cls is _optimizer_class(spec)


def _label(value: Any) -> str:
    """A setting as an error shows it (an optimiser instance by its class)."""
    if isinstance(value, torch.optim.Optimizer):
        return f"<{type(value).__name__} instance>"
    return repr(value)


#: the settings that stay with a continued trainer, and why
_FIXED = {
    "optimizer": "it built the trainer's optimiser, whose state carries over",
    "optimizer_kwargs": "they built the trainer's optimiser, whose state carries over",
    "feedback": "it fixes the trainer's feedback matrix",
    "seed": "it drew the trainer's feedback matrix",
    "task": "it fixes what the targets and the loss mean",
}


def _tuples(value: Any) -> Any:
    """``value`` with every list turned into a tuple, recursively through dicts, so that
    ``betas=[0.9, 0.99]`` and ``betas=(0.9, 0.99)`` compare equal."""
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return tuple(_tuples(v) for v in value)
    return value


def _check_fixed(where: str, trainer: Any, given: dict[str, Any]) -> None:
    """Refuse a setting of ``given`` that fixes ``trainer`` (``_FIXED``) and differs from
    the trainer's own: the error names the setting, both values and how to change it."""
    for name, value in given.items():
        if name not in _FIXED:
            continue
        if name == "optimizer":
            theirs, same = trainer.optimizer_spec, _same_optimizer(value, trainer)
        elif name == "optimizer_kwargs":
            theirs = trainer.optimizer_kwargs
            same = _equal(_tuples({} if value is None else value), _tuples(theirs))
        elif name == "seed" and getattr(trainer, "feedback", None) != "symmetric":
            theirs = getattr(trainer, name)  # no seed draws the matrix of seed 0
            same = _equal(0 if value is None else value, 0 if theirs is None else theirs)
        else:
            theirs = getattr(trainer, name)
            same = _equal(value, theirs)
        if not same:
            raise ValueError(
                f"{where}: {name}={_label(value)}, but the trainer continued here (trainer=) "
                f"has {name}={_label(theirs)}, and {_FIXED[name]}; pass the trainer's own "
                f"value or leave {name} out, or start a new trainer (a call without "
                f"trainer=) to change it"
            )


def _bptt_continued(where: str, trainer: Any, given: dict[str, Any]) -> Any:
    """The settings ``fit_bptt`` gives a continued BPTT ``trainer``, checked, as a new
    ``BPTT`` that holds them (the trainer's own where not given), before anything changes:
    ``lr``, the loss (``loss`` with ``loss_kwargs``, or the trainer's loss with new
    ``loss_kwargs``), ``update_steps`` and ``clip_grad_norm`` take effect; the optimiser
    and its ``optimizer_kwargs`` must be the trainer's own."""

    _check_fixed(where, trainer, given)
    if "loss" in given:
        loss, loss_kwargs = given["loss"], given.get("loss_kwargs")
    else:
        loss = trainer.loss_fn if trainer.loss_name is None else trainer.loss_name
        loss_kwargs = given.get("loss_kwargs", trainer.loss_kwargs)
    with _named(where):
        return BPTT(
            lr=given.get("lr"),
            loss=loss,
            loss_kwargs=loss_kwargs,
            update_steps=given.get("update_steps", trainer.update_steps),
            clip_grad_norm=given.get("clip_grad_norm", trainer.clip_grad_norm),
        )


def _eprop_continued(where: str, trainer: Any, given: dict[str, Any], task: Any) -> Any:
    """The settings ``fit_eprop`` gives a continued EProp ``trainer``, checked, as a new
    ``EProp`` that holds them (the trainer's own where not given), before anything
    changes: ``lr``, ``reg_rate``, ``reg_weight``, ``reduction``, ``method``,
    ``history_limit`` and ``feedback_decay`` take effect; the
    feedback, seed, task (``task``: the given one, ``None`` read from the targets), the
    optimiser and its ``optimizer_kwargs`` must be the trainer's own."""

    if "task" in given:
        given = {**given, "task": task}
    with _named(where):  # the given fixed settings, as the constructor checks them
        EProp(
            feedback=given.get("feedback", trainer.feedback),
            task=given.get("task", trainer.task),
            seed=given.get("seed"),
        )
    _check_fixed(where, trainer, given)
    rate = given.get("reg_rate", trainer.reg_rate)
    if "reg_weight" in given:
        weight = given["reg_weight"]
    else:  # the trainer's weight, or the default for a regulariser it did not have
        weight = trainer.reg_weight if trainer.reg_rate is not None and rate is not None else None
    method = given.get("method", trainer.method)
    # the trainer's limit while it chooses by memory; none for a method given instead
    limit = trainer.history_limit if method == trainer.method == "auto" else None
    with _named(where):
        return EProp(
            feedback=trainer.feedback,
            task=trainer.task,
            lr=given.get("lr"),
            reg_rate=rate,
            reg_weight=weight,
            seed=trainer.seed,
            reduction=given.get("reduction", trainer.reduction),
            time_unit=trainer.time_unit,
            method=method,
            history_limit=given.get("history_limit", limit),
            feedback_decay=given.get("feedback_decay", trainer.feedback_decay),
        )


#: the attributes each setting a continued trainer takes sets
_HONOURED = {
    "loss": ("loss_fn", "loss_name", "loss_kwargs"),
    "loss_kwargs": ("loss_fn", "loss_name", "loss_kwargs"),
    "update_steps": ("update_steps",),
    "clip_grad_norm": ("clip_grad_norm",),
    "reg_rate": ("reg_rate", "reg_weight"),
    "reg_weight": ("reg_rate", "reg_weight"),
    "reduction": ("reduction",),
    "method": ("method", "history_limit"),
    "history_limit": ("history_limit",),
    "feedback_decay": ("feedback_decay",),
}


def _optimizer_snapshot(trainer: Any) -> Callable[[], None]:
    """A callable that puts ``trainer`` back as it is now: its optimiser's state (moments,
    step counts) restored, or, when it has none yet, none (an instance the trainer was
    given is restored too); its list of losses, and its feedback matrix (e-prop's, which
    adaptive feedback changes at every update)."""
    opt = trainer.optimizer
    given = (
        trainer.optimizer_spec
        if isinstance(trainer.optimizer_spec, torch.optim.Optimizer)
        else None
    )
    saved = {id(o): (o, copy.deepcopy(o.state_dict())) for o in (opt, given) if o is not None}
    n_losses = len(trainer.losses)
    fb = getattr(trainer, "feedback_weights", None)
    fb_saved = fb.clone() if isinstance(fb, Tensor) else fb

    def restore() -> None:
        for o, state in saved.values():
            o.load_state_dict(state)
        if opt is None:
            trainer.optimizer = None
        del trainer.losses[n_losses:]
        if isinstance(fb, Tensor) and trainer.feedback_weights is fb:
            fb.copy_(fb_saved)  # in place: a matrix the caller holds stays the trainer's
        elif hasattr(trainer, "feedback_weights"):
            trainer.feedback_weights = fb_saved

    return restore


@contextlib.contextmanager
def _honoured(trainer: Any, settings: Any, given: dict[str, Any]) -> Iterator[None]:
    """Inside the block, ``trainer`` has the given settings that can change between
    updates, as the checked ``settings`` (``_bptt_continued``, ``_eprop_continued``)
    hold them: ``lr`` on the trainer and every param_group of its optimiser, the others
    by their attributes (``_HONOURED``). They stay after the block; on an error they are
    undone."""
    names = sorted({a for n in given for a in _HONOURED.get(n, ())})
    kept = {a: getattr(trainer, a) for a in names}
    opt, spec = trainer.optimizer, trainer.optimizer_spec
    if opt is None and isinstance(spec, torch.optim.Optimizer):
        opt = spec  # an instance the trainer adopts at its first update
    groups = [] if opt is None else [(g, _copy(g["lr"])) for g in opt.param_groups]
    lr = trainer.lr
    for a in names:
        setattr(trainer, a, getattr(settings, a))
    try:
        if "lr" in given:
            trainer.set_lr(settings.lr)
        yield
    except BaseException:
        for a, value in kept.items():
            setattr(trainer, a, value)
        if "lr" in given:
            trainer.lr = lr
            for g, value in groups:
                if isinstance(g["lr"], Tensor):
                    g["lr"].copy_(value)
                else:
                    g["lr"] = value
            if opt is None and trainer.optimizer is not None and lr is not None:
                trainer.set_lr(lr)  # one built during the call, with the new rate
        raise


def _copy(value: Any) -> Any:
    """A learning rate as kept for an undo: a tensor cloned (it is changed in place)."""
    return value.clone() if isinstance(value, Tensor) else value


def _feedback_order(where: str, order: Any, teacher_forcing: Any) -> bool:
    """``fit_rls``'s ``teacher_forcing`` and ``feedback_order`` checked: whether an update
    step passes on the output of the updated weights."""
    as_flag(where, "teacher_forcing", teacher_forcing)
    if not (isinstance(order, str) and order in ("before", "after")):
        raise ValueError(
            f"{where}: feedback_order must be 'before' or 'after' (the update), got {order!r}"
        )
    if order == "after" and teacher_forcing:
        raise ValueError(
            f"{where}: feedback_order='after' with teacher_forcing=True: the readout passes "
            "on the target, so no output of the updated weights would be passed on"
        )
    return order == "after"


def _flags(where: str, **flags: Any) -> None:
    """Refuse a flag that is not ``True`` or ``False`` (a string such as ``"no"`` would
    count as true)."""
    for name, value in flags.items():
        as_flag(where, name, value)


@contextlib.contextmanager
def _named(where: str) -> Iterator[None]:
    """``TypeError``/``ValueError`` raised inside the block (a trainer's constructor, a run
    inside a fit), named after the public call ``where`` unless they already are."""
    try:
        yield
    except (TypeError, ValueError) as err:
        if str(err).startswith(where):
            raise
        try:
            named = type(err)(f"{where}: {err}")
        except Exception:  # an exception type that takes other arguments: keep it
            raise err from None
        raise named from err


def _observer(where: str, names: Any, every: Any, start: Any) -> Observer:
    """``Observer(names, every, start)``, its errors named after the call ``where``."""
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list | tuple):
        raise TypeError(f"{where}: record must be a list of names, got {names!r}")
    try:
        return Observer(list(names), every=every, start=start)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{where}: {err}") from err


def _run_no_grad(
    where: str,
    model: CompiledNetwork,
    x: Tensor | None,
    y: Tensor,
    obs: Observer,
    verbose: bool,
    hooks: tuple = (),
) -> Recording:
    """A training run over the steps of the targets ``y`` ``(B, T, n_out)``; without
    input (``x`` None) the targets fix its length and batch."""
    with torch.no_grad():
        return model.execute(
            where,
            x,
            obs,
            None,
            verbose,
            y.shape[1] if x is None else None,
            batch_size=y.shape[0] if x is None else None,
            hooks=hooks,
        )


def _online_replay(
    where: str,
    model: CompiledNetwork,
    lin: Linear,
    edge: tuple[str, str],
    x: Tensor | None,
    y: Tensor,
    obs: Observer,
    verbose: bool,
    rls: Any,
    b: Tensor | None,
    updates: range,
    errors: Tensor,
    after: bool,
) -> Recording:
    """``fit_rls`` of a readout that feeds nothing: the states do not depend on its
    weights, so the network runs first (the native loop where it applies, all steps of
    the features recorded) and the updates replay on the features afterwards, step for
    step as the loop would make them; chunk by chunk, so that the features of a long run
    are never held whole. The readout's output at step ``t`` is its node's function of
    ``W(t-1) r(t) + b(t-1)``, the weights before that step's update, as in the loop
    (``after``: an update step's output is that of its updated weights).
    ``b``: the bias RLS trains, or ``None`` (then the edge's own bias, if any, stays as it
    is and the updates fit the targets minus it). ``updates`` are the steps that update;
    fills ``errors``; returns the run's recording as ``obs`` would have taken it."""
    src = edge[0] if lin.source_var is None else f"{edge[0]}.{lin.source_var}"
    names = list(dict.fromkeys([*obs.record, src]))
    w, (batch, n_steps) = lin.weight, y.shape[:2]
    chunk = max(1, _REPLAY_ELEMENTS // (batch * lin.n_in))
    target = y.transpose(0, 1).to(w.dtype).contiguous()  # (T, B, n_out)
    errs = torch.empty(len(updates), batch, w.shape[0], dtype=w.dtype, device=w.device)
    b_out = lin.bias  # the readout's bias: b, or one the fit leaves as it is
    goal = target if b is not None or b_out is None else target - b_out  # what RLS fits
    data: dict[str, list[Tensor]] = {n: [] for n in obs.record}
    outputs, i = [], 0  # i: the next update
    for c0 in range(0, n_steps, chunk):
        c1 = min(n_steps, c0 + chunk)
        xc = None if x is None else x[:, c0:c1]
        rec = _run_no_grad(where, model, xc, y[:, c0:c1], Observer(names), verbose)
        with torch.no_grad():
            feats = rec.with_batch(src).transpose(0, 1)  # (T_c, B, n_src)
            z = torch.empty(c1 - c0, batch, w.shape[0], dtype=w.dtype, device=w.device)
            t0, first = c0, i  # first step whose readout is not computed yet, update
            if updates.step == 1 and not after and hasattr(rls, "replay"):
                # updates at every step: one call makes those of the chunk
                j = min(len(updates), c1 - updates.start)  # updates[k] = start + k < c1
                if j > i:
                    t, t1 = updates[i], updates[j - 1] + 1
                    if t > t0:  # the steps before the first update see its weights
                        F.linear(feats[t0 - c0 : t - c0], w, b_out, out=z[t0 - c0 : t - c0])
                    errs[i:j] = rls.replay(w, b, feats[t - c0 : t1 - c0], goal[t:t1])
                    t0, i = t1, j
            while i < len(updates) and updates[i] < c1:
                t = updates[i]
                if t > t0:  # the steps since the last update see its weights
                    F.linear(feats[t0 - c0 : t - c0], w, b_out, out=z[t0 - c0 : t - c0])
                errs[i] = rls.update(w, b, feats[t - c0], goal[t])  # W(t-1) r(t) + b - y
                if after:
                    z[t - c0] = F.linear(feats[t - c0], w, b_out)
                t0, i = t + 1, i + 1
            if t0 < c1:
                F.linear(feats[t0 - c0 :], w, b_out, out=z[t0 - c0 :])
            if i > first and not after:  # the update steps' outputs: target + a-priori error
                at = slice(updates[first], updates[i - 1] + 1, updates.step)
                z[at.start - c0 : at.stop - c0 : at.step] = target[at] + errs[first:i]
            out = model.nodes[edge[1]].fn(z).transpose(0, 1)  # (B, T_c, n_out)
        kept = recorded_steps(obs, c0, c1)
        for n in obs.record:
            part = (out if n == edge[1] else rec.with_batch(n))[:, kept]
            data[n].append(part if spans_memory(part) else part.clone())  # not the whole chunk
        outputs.append(out if model.output_node == edge[1] else rec.with_batch())
    errors.copy_(errs.square().mean((1, 2)))
    return Recording(
        {n: torch.cat(parts, dim=1) for n, parts in data.items()},
        torch.as_tensor(list(obs.steps(n_steps)), dtype=torch.int64),
        rec.dt,
        output=torch.cat(outputs, dim=1),
        state=rec.state,
    )
