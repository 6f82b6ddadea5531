"""``CompiledNetwork``: a graph ordered once into a batched torch forward pass.

At compile time the graph is split in two:

* **static** nodes: function nodes fed (through zero-delay edges only) by the input or by
  other static nodes. They have no state, so their outputs and their projections into the
  recurrent part are computed for a whole chunk of time steps in one batched operation
  before the time loop (e.g. ``W_in u(t)`` for all ``t`` in one GEMM);
* **dynamic** nodes: everything else, evaluated step by step in topological order.

The time loop over the dynamic part is generated as Python source once per
configuration (external input or not, recorded variables) and executed with every
tensor in a local variable: no dictionary look-ups, no dispatch over nodes, no host
synchronisation inside the loop.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .. import _native
from .._checks import (
    all_finite,
    as_flag,
    as_int,
    as_step,
    as_tensor,
    keywords,
)
from ..edges import Linear
from ..nodes import Context, DENode, Node, for_run
from ..observers import Observer, Recording
from ..units import UNITS, DimensionError, Quantity
from ._plan import (
    Explanation,
    Plan,
    PlanEdge,
    Target,
    build_plan,
    edge_key,
    event_keys,
    explain,
    node_kernels,
)
from ._reservoir import final_state, reservoir_unusable, start_reservoir
from ._source import AS_LOOP, LoopSource, run_source
from ._stepping import StepProgram, StepState, step_program
from .executor import Hook, HookSpec

__all__ = ["CompiledNetwork", "Hook", "State"]

#: A network state: ``"node.var"`` -> ``(B, n)`` for each DE state variable and
#: ``"src->tgt@k"`` -> the value a delayed edge reads ``k`` steps later.
State = dict[str, Tensor]

_CHUNK_ELEMENTS = 1 << 20  # elements of precomputed input per chunk (4 MiB in float32)
#: largest run output (bytes) whose memory a network keeps for its next runs
_REUSE_BYTES = 256 << 20


def _owners(buf: Tensor) -> tuple[int, int]:
    """Owners of ``buf``'s memory: C++ references to the storage (each tensor on it holds
    one) and Python references to the storage object (held by ``.untyped_storage()``
    callers, or a ``TypedStorage``)."""
    storage = buf.untyped_storage()
    return torch._C._storage_Use_Count(storage._cdata), sys.getrefcount(storage)


_SOLE_OWNER: list[tuple[int, int]] = []  # _owners of a tensor nothing else refers to


def _unshared(buf: Tensor) -> bool:
    """Whether no tensor, view, array or storage object but ``buf`` itself holds its
    memory, and no other process shares it (a tensor sent through
    ``torch.multiprocessing`` moves into shared memory, where the count cannot see the
    receiver). Builds without the owner count never share."""
    if getattr(torch._C, "_storage_Use_Count", None) is None or buf.is_shared():
        return False
    if not _SOLE_OWNER:
        _SOLE_OWNER.append(_owners(torch.empty(1)))
    return _owners(buf) == _SOLE_OWNER[0]


def _broadcast(state: Mapping[str, Any], batch: int) -> Mapping[str, Any]:
    """``state`` for a run of ``batch``: a state of batch 1 is the start of every element
    of a larger batch (copied, so the elements evolve apart); any other state as it is."""
    if not state or batch <= 1:
        return state
    if all(isinstance(v, Tensor) and v.shape[:1] == (1,) for v in state.values()):
        return {k: v.expand(batch, *v.shape[1:]).clone() for k, v in state.items()}
    return state


def _check_mapping(where: str, state: Any) -> None:
    if not isinstance(state, Mapping):
        raise TypeError(
            f"{where}: state must be a dict of tensors (from init_state() or a run's "
            f"Recording.state), got {type(state).__name__}"
        )


def _same_memory(a: Tensor, b: Tensor) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def spans_memory(a: Tensor) -> bool:
    """Whether ``a`` spans all of its memory (a strided sample or a slice does not)."""
    return a.numel() * a.element_size() == a.untyped_storage().nbytes()


_POOL_LOCK = threading.Lock()


class _OutputPool:
    """The memory of the last two run outputs, handed out again once the caller let go.

    A fresh CPU buffer of tens of MiB costs a page fault on every 4 KiB page its first
    write touches (about 0.3 us/KiB: 15 % of an N=500, B=64 step). The pool keeps flat
    buffers and hands out views of them; a buffer is handed out again only when no tensor,
    view or array other than the pool's own refers to it, so a run never overwrites an
    output a caller holds. Buffers above ``_REUSE_BYTES`` and non-CPU devices (whose
    allocators cache already) are not kept.
    """

    def __init__(self, limit: int = _REUSE_BYTES) -> None:
        self._bufs: list[Tensor] = []
        self._limit = limit

    def empty(self, shape: tuple[int, ...], device: torch.device, dtype: torch.dtype) -> Tensor:
        with _POOL_LOCK:  # two threads' runs must not both take one free buffer
            return self._empty(shape, device, dtype)

    def _empty(self, shape: tuple[int, ...], device: torch.device, dtype: torch.dtype) -> Tensor:
        numel = math.prod(shape)
        self._bufs = [buf for buf in self._bufs if not buf.is_shared()]  # given away
        for i, buf in enumerate(self._bufs):
            same = buf.numel() == numel and buf.dtype == dtype and buf.device == device
            # an inference tensor only inside inference mode, a normal one only outside
            same = same and buf.is_inference() == torch.is_inference_mode_enabled()
            if same and _unshared(buf):
                self._bufs.append(self._bufs.pop(i))  # most recently used last
                return buf.view(shape)
        flat = torch.empty(numel, device=device, dtype=dtype)
        if device.type == "cpu" and flat.nbytes <= self._limit:
            self._bufs = [*self._bufs[-1:], flat]
        return flat.view(shape)

    def clear(self) -> None:
        self._bufs = []

    def __getstate__(self) -> dict:  # copies and pickles of a network carry no buffers
        return {"_bufs": [], "_limit": self._limit}


#: Per thread, the memory of the native loop's internal buffers (the projected input and the
#: reservoir's states of a run) for the runs of every network: a fit on a freshly built
#: network, the usual case in a hyperparameter search, then pays no page faults either.
_SCRATCH = threading.local()
_SCRATCH_BYTES = 64 << 20


def _scratch() -> _OutputPool:
    pool = getattr(_SCRATCH, "pool", None)
    if pool is None:
        pool = _SCRATCH.pool = _OutputPool(_SCRATCH_BYTES)
    return pool


def empty_scratch() -> None:
    """Release this thread's internal buffers of the native loop (see ``_scratch``)."""
    _SCRATCH.pool = None


def _snapshot(node: Node) -> tuple[tuple[str, ...], list[tuple]]:
    """The node's parameter names and, for each, the tensor, its dtype, shape and a copy of
    its values (a Python number for one value, which compares faster), as a kernel binds
    them."""
    names = node.param_names
    return names, [
        (n, t, t.dtype, t.shape, t.item() if t.numel() == 1 else t.detach().clone())
        for n, t in ((n, getattr(node, n)) for n in names)
    ]


def _unchanged(node: Node, snapshot: tuple[tuple[str, ...], list[tuple]]) -> bool:
    """Whether the node's parameters are the tensors of ``snapshot``, with its dtypes,
    shapes and values (a write through ``.data`` changes nothing else, so the values
    themselves are compared; a NaN never compares equal, so a kernel bound to one is built
    again). Asked at every step of a loop over ``step``: written for speed."""
    names, entries = snapshot
    if node.param_names != names:
        return False
    params, buffers = node._parameters, node._buffers  # faster than Module.__getattr__
    for n, t, dtype, shape, copy in entries:
        now = params.get(n)
        if now is None:
            now = buffers.get(n)
            if now is None:
                now = getattr(node, n)
        if now is not t or t.dtype is not dtype or t.shape != shape:
            return False
        if type(copy) is Tensor:
            if not torch.equal(t, copy):
                return False
        elif t.item() != copy:
            return False
    return True


class ModuleTable(nn.Module):
    """Submodules by label. Unlike ``nn.ModuleDict`` it defines no methods of its own (only
    ``[]``, ``in``, ``len`` and iteration over labels), so a label such as ``"pop"`` or
    ``"keys"`` cannot collide with one."""

    def __init__(self, modules: Mapping[str, nn.Module]) -> None:
        super().__init__()
        for label, module in modules.items():
            self.add_module(label, module)

    def __getitem__(self, label: str) -> nn.Module:
        return self._modules[label]

    def __contains__(self, label: object) -> bool:
        return label in self._modules

    def __iter__(self):
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)


#: Labels that would shadow an attribute of a torch module.
RESERVED_LABELS = frozenset(n for n in dir(nn.Module()) if not n.startswith("_"))


def recorded_steps(observer: Observer, t0: int, t1: int) -> slice:
    """The steps of the chunk ``[t0, t1)`` that ``observer`` records, as a slice of it."""
    first = max(observer.start, t0)
    first += -(first - observer.start) % observer.every
    return slice(first - t0, t1 - t0, observer.every)


@dataclass
class _Run:
    """What one run carries from chunk to chunk (see ``CompiledNetwork._run``)."""

    observer: Any
    rec_names: tuple
    rec_dyn: tuple
    rec_steps: Any
    ridx_all: list
    H: list
    static_reads: list
    pre: list
    loop: Any = None
    written: set = field(default_factory=set)
    W: list = field(default_factory=list)
    BIAS: list = field(default_factory=list)
    STEP: list = field(default_factory=list)
    S: list = field(default_factory=list)
    ZERO: list = field(default_factory=list)
    reservoir: Any = None
    y_all: Tensor | None = None
    outs: list = field(default_factory=list)
    recs: dict = field(default_factory=dict)


def time_step(where: str, dt: Any) -> tuple[float, bool]:
    """The step in its unit (seconds for a time Quantity) and whether it carries a unit."""
    if isinstance(dt, Quantity):
        if dt.dim != UNITS["second"].dim:
            raise DimensionError(f"{where}: dt must be a time, got dimension {dt.dim}")
        return as_step(where, "dt", dt.value), True
    return as_step(where, "dt", dt), False


def check_units(where: str, label: str, node: Node, dt_unit: bool) -> None:
    """A model whose equations carry units computes in seconds: the step must carry a unit;
    and with a step in seconds, every model with time constants must say its units."""
    if not isinstance(node, DENode) or node.uses_units == dt_unit:
        return
    if node.uses_units:
        raise ValueError(
            f"{where}: node {label!r} ({type(node).__name__}) computes in SI units (its "
            "equations carry units), so the network's step must carry a unit too, e.g. "
            "Network(dt=0.1*ms); the step is a plain number (a network's dt reads the "
            "step in seconds: set a Quantity, net.dt = 0.05*ms)"
        )
    raise ValueError(
        f"{where}: node {label!r} ({type(node).__name__}) has no units (its time constants "
        "are in the unit of dt), and the network's step carries a unit (seconds): give dt as "
        "a plain number, or build the model from equations with units"
    )


class CompiledNetwork(nn.Module):
    """A network graph compiled into a batched forward pass (a ``torch.nn.Module``).

    Built by ``Network.compile()``. Node and edge modules are shared with the ``Network``,
    so parameters trained here are the network's parameters.

    Parameters
    ----------
    nodes : mapping of label -> Node
    edges : iterable of (source, target, Linear)
    dt : float or Quantity
        Step size (finite, > 0; a time Quantity exactly when the models carry units); may
        be changed later (``model.dt = ...``, or through
        ``Network.dt``): the next run uses it.
    input_node, output_node : str
        Where the external input enters and which node's output is returned.
    order : list of str
        Topological order over zero-delay edges.
    dtype, device : optional
        dtype and device of state and inputs (``Network.compile`` passes the network's).
        By default those of the first floating-point parameter or buffer, else float32 on
        the CPU. Integer and bool buffers of nodes keep their own dtype.

    Notes
    -----
    Time-step semantics: at each step nodes are evaluated in ``order``; a node's input
    is the sum of its incoming edges' outputs; a zero-delay edge reads its source's
    output of the same step, an edge with delay ``d`` the output of ``d`` steps earlier
    (its ``init`` value, zeros by default, before that). A DE node integrates its state
    over the step with the step's input, applies its event rule, then emits its output.

    State: :meth:`forward` (``model(x)``) is stateless like torch's recurrent modules
    (each call starts from ``init_state`` unless ``state=`` is given and leaves the held
    state alone); :meth:`run` continues from the held state and holds its final state, as
    RectiPy's ``run`` does; :meth:`step` is a pure function of its arguments.
    """

    def __init__(
        self,
        nodes: Mapping[str, Node],
        edges: list[tuple[str, str, Linear]],
        dt: float,
        input_node: str | tuple[str, ...],
        output_node: str,
        order: list[str],
        dtype: torch.dtype | None = None,
        device: Any = None,
    ) -> None:
        super().__init__()
        self._input_nodes = (input_node,) if isinstance(input_node, str) else tuple(input_node)
        self._output_node = output_node
        self._order = list(order)
        self.nodes = ModuleTable({k: nodes[k] for k in self._order})
        self.dt = dt  # checked against the nodes' units
        self.edges = ModuleTable({edge_key(s, t): e for s, t, e in edges})
        if dtype is None or device is None:
            tensors = (*self.parameters(), *self.buffers())
            ref = next((t for t in tensors if t.is_floating_point()), None)
            dtype = dtype or (ref.dtype if ref is not None else torch.float32)
            device = device or (ref.device if ref is not None else "cpu")
        # the dtype and device of state and inputs: moved and cast by .to() like the rest
        self.register_buffer("_ref", torch.zeros((), dtype=dtype, device=device), persistent=False)
        self.plan: Plan = build_plan(self.nodes, edges, self._order, self._input_nodes, output_node)
        self._input_columns = self._columns()
        self._into = self._static_sources()
        self._loops: dict[tuple, Any] = {}
        self._built: dict[str, tuple] = {}  # DE node -> (key, parameter values, kernel)
        self._zeros: dict[int, list[Tensor]] = {}  # batch -> zero inputs of step()
        self._step_programs: dict[tuple, StepProgram] = {}  # per step kind
        self._last_step: StepProgram | None = None  # the kind of the latest step
        self._parameter_tables: list | None = None  # the modules' parameter dicts
        self._outputs = _OutputPool()
        self._lock = threading.RLock()  # held while a call reads and writes self.state
        self.state: State | None = None

    # read-only: the plan (static and dynamic parts, the generated loops) is made for them;
    # Network.compile(input_node=..., output_node=...) compiles another network
    @property
    def input_node(self) -> str | tuple[str, ...]:
        """The node that receives the external input; the tuple of input nodes when there
        are several (see :attr:`input_nodes`)."""
        nodes = self._input_nodes
        return nodes[0] if len(nodes) == 1 else nodes

    @property
    def input_nodes(self) -> tuple[str, ...]:
        """The nodes that receive the external input, in the order of its columns: an input
        ``(..., C)`` gives the first node its first columns, the next node the next ones
        (``C`` is the sum of their widths). A dict ``{node: array}`` names them instead
        (:meth:`join_inputs`)."""
        return self._input_nodes

    def _inputs_named(self) -> str:
        """The input node(s), as an error names them."""
        nodes = self._input_nodes
        return f"input node {nodes[0]!r}" if len(nodes) == 1 else f"input nodes {list(nodes)}"

    def _columns(self) -> dict[str, slice | None]:
        """Each input node's columns of the input (``None``: all of them)."""
        if len(self._input_nodes) == 1:
            return {self._input_nodes[0]: None}
        columns, c = {}, 0
        for v in self._input_nodes:
            columns[v], c = slice(c, c + self.nodes[v].n), c + self.nodes[v].n
        return columns

    @property
    def output_node(self) -> str:
        """The node whose output :meth:`forward` and :meth:`run` return."""
        return self._output_node

    @property
    def order(self) -> list[str]:
        """The nodes in compiled (topological) order (a copy)."""
        return list(self._order)

    @property
    def dt(self) -> float:
        """Step size of the next run (in seconds when it was given as a time Quantity);
        setting it follows the rule of ``Network.dt``: a Quantity exactly when the models
        carry units."""
        return self._dt

    @dt.setter
    def dt(self, value: Any) -> None:
        dt, unit = time_step("CompiledNetwork.dt", value)
        nodes = self._modules.get("nodes")  # None while __init__ has not set them
        for label in nodes if nodes is not None else ():
            check_units("CompiledNetwork.dt", label, nodes[label], unit)
        self._dt, self._dt_unit = dt, unit

    @property
    def time_step(self) -> float | Quantity:
        """The step as given: a time Quantity for models with units, else the number."""
        return Quantity(self._dt, UNITS["second"].dim) if self._dt_unit else self._dt

    # ------------------------------------------------------------------------------
    # compile-time planning
    # ------------------------------------------------------------------------------

    # ------------------------------------------------------------------------------
    # state
    # ------------------------------------------------------------------------------

    @property
    def n_in(self) -> int:
        """The width of the external input: the input nodes' widths together."""
        return sum(self.nodes[v].n for v in self._input_nodes)

    @property
    def n_out(self) -> int:
        return self.nodes[self.output_node].n

    def state_keys(self) -> list[str]:
        """Names of the state entries, in the order the loop carries them."""
        keys = [f"{v}.{var}" for v in self.plan.de_nodes for var in self.nodes[v].state_vars]
        keys += [f"{e.key}@{k}" for e in self.plan.delayed for k in range(1, e.delay + 1)]
        return keys

    def _init_batch(self) -> int:
        """The batch size the initial values fix (a node's ``(B, n)`` ``set_init`` or a
        delayed edge's ``(B, n)`` ``init``), or 1."""
        sizes = [self.nodes[v].init_batch for v in self.plan.de_nodes]
        sizes += [
            e.module.init.shape[0]
            for e in self.plan.delayed
            if e.module.init is not None and e.module.init.dim() == 2
        ]
        return max([s for s in sizes if s is not None] or [1])

    @keywords("CompiledNetwork.init_state")
    def init_state(self, batch_size: int = 1) -> State:
        """The state at time 0 for a batch of ``batch_size`` independent samples.

        DE state variables take their initial values (``DENode.set_init``); delayed edges
        read their ``init`` value (zeros by default) until the source's output arrives.
        """
        return self._init_state("CompiledNetwork.init_state", batch_size)

    def initial_state(self, where: str, batch_size: int | None = None) -> State:
        """:meth:`init_state` for the facade and trainers: errors named after ``where``;
        ``batch_size=None`` is the batch the initial values fix (1 unless a ``(B, n)``
        initial value says otherwise)."""
        return self._init_state(where, self._init_batch() if batch_size is None else batch_size)

    def _init_state(self, where: str, batch_size: int) -> State:
        """:meth:`init_state`, its errors named after the public call ``where``."""
        batch_size = as_int(where, "batch_size", batch_size, minimum=1, type_error=ValueError)
        dev, dt = self._ref.device, self._ref.dtype
        state: State = {}
        for v in self.plan.de_nodes:
            node = self.nodes[v]
            try:
                values = node.init_state(batch_size, dev, dt)
            except ValueError as err:
                raise ValueError(f"{where}: node {v!r}: {err}") from None
            for var, val in zip(node.state_vars, values, strict=True):
                state[f"{v}.{var}"] = val
        for e in self.plan.delayed:
            width = e.module.n_in
            buf = torch.zeros(batch_size, width, device=dev, dtype=dt)
            if e.module.init is not None:
                init = e.module.init
                if init.dim() == 2 and init.shape[0] != batch_size:
                    raise ValueError(
                        f"{where}: edge {e.key} has an init value for batch size "
                        f"{init.shape[0]}, the run has batch size {batch_size}"
                    )
                buf = buf + init
            for k in range(1, e.delay + 1):
                state[f"{e.key}@{k}"] = buf
        return state

    def _check_state(
        self, where: str, state: Mapping[str, Tensor], batch: int, given: bool = True
    ) -> None:
        """Raise unless ``state`` fits a run of ``batch``: every key, width and dtype. A state
        the caller ``given`` (not the one held from a run) must also have no other keys
        and finite values."""
        _check_mapping(where, state)
        keys = self.state_keys()
        missing = [k for k in keys if k not in state]
        if missing:
            raise ValueError(f"{where}: the state lacks {missing}; expected keys {keys}")
        extra = [k for k in state if k not in keys] if given else []
        if extra:
            raise ValueError(
                f"{where}: the state has entries {extra} this network does not have; "
                f"expected keys {keys}"
            )
        for k in keys:
            v = state[k]
            if not isinstance(v, Tensor) or v.dim() != 2 or v.shape[0] != batch:
                shape = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
                raise ValueError(
                    f"{where}: state entry {k!r} must be a (B={batch}, n) tensor, got {shape}; "
                    "the batch size of a run must match its state (call reset() to start anew)"
                )
        # width and dtype too: a wrong one would fail deep inside the loop with a torch error
        widths = {
            f"{v}.{var}": self.nodes[v].var_size(var)
            for v in self.plan.de_nodes
            for var in self.nodes[v].state_vars
        }
        for e in self.plan.delayed:
            widths.update({f"{e.key}@{k}": e.module.n_in for k in range(1, e.delay + 1)})
        for k in keys:
            v = state[k]
            if v.shape[1] != widths[k] or v.dtype != self._ref.dtype:
                raise ValueError(
                    f"{where}: state entry {k!r} must be a (B={batch}, {widths[k]}) tensor of "
                    f"dtype {self._ref.dtype}, got shape {tuple(v.shape)} and dtype {v.dtype}"
                )
            if given and not bool(torch.isfinite(v).all()):
                raise ValueError(f"{where}: state entry {k!r} contains NaN or inf values")

    @keywords("CompiledNetwork.reset")
    def reset(self, state: State | None = None) -> None:
        """Forget the held state; the next run starts from ``state`` or from ``init_state``.

        A ``state`` is checked as :meth:`run` checks one (every entry, of one batch size,
        finite); nothing changes when it is refused."""
        self._reset("CompiledNetwork.reset", state)

    def _reset(self, where: str, state: State | None) -> None:
        """:meth:`reset`, its errors named after the public call ``where``."""
        if state is not None:
            _check_mapping(where, state)
            if state:
                first = next(iter(state.values()))
                batch = first.shape[0] if isinstance(first, Tensor) and first.dim() else 1
                self._check_state(where, state, batch)
        with self._lock:
            self.state = None if state is None else dict(state)

    def hold_state(self, state: State) -> None:
        """Hold ``state``, the final state of a run of this network (as a run holds its
        own: not checked, so a run that diverged holds its non-finite values)."""
        with self._lock:
            self.state = dict(state)

    def detach(self) -> None:
        """Detach the held state from the autograd graph (truncated BPTT)."""
        with self._lock:
            if self.state is not None:
                self.state = {k: v.detach() for k, v in self.state.items()}

    def empty_cache(self) -> None:
        """Release the memory kept from earlier runs' outputs for reuse.

        A run without autograd on the CPU writes its output into the memory of an earlier
        output that no tensor refers to any more (up to two buffers of at most 256 MiB
        each are kept), which saves the page faults of fresh memory; this frees them, and
        this thread's internal buffers of the native loop (up to two of at most 64 MiB,
        shared by all networks)."""
        self._outputs.clear()
        empty_scratch()

    def __getstate__(self) -> dict:
        """Pickles (``torch.save``) leave out the generated loops: functions made by
        ``exec`` cannot be pickled, and the loaded network makes them again on its first
        run."""
        state = {**super().__getstate__(), "_loops": {}, "_step_programs": {}, "_built": {}}
        state.update(_last_step=None, _parameter_tables=None)
        state.pop("_lock", None)  # a lock cannot be pickled; the copy makes its own
        return state

    def __setstate__(self, state: dict) -> None:
        # networks pickled when these were plain attributes load into the read-only ones
        for name in ("dt", "input_node", "output_node", "order"):
            if name in state:
                state[f"_{name}"] = state.pop(name)
        if "_input_node" in state:  # one input node, before there could be several
            state["_input_nodes"] = (state.pop("_input_node"),)
        super().__setstate__(state)
        self._lock = threading.RLock()
        for name, empty in (("_built", {}), ("_zeros", {}), ("_step_programs", {})):
            self.__dict__.setdefault(name, empty)
        self.__dict__.setdefault("_last_step", None)
        self.__dict__.setdefault("_parameter_tables", None)
        if "_input_columns" not in self.__dict__:
            self._input_columns = self._columns()
        if "_into" not in self.__dict__:
            self._into = self._static_sources()

    def to(self, *args: Any, **kwargs: Any) -> CompiledNetwork:
        """``torch.nn.Module.to``, with floating dtypes only: an integer, bool or complex
        dtype is refused before anything moves (and before torch's complex-module warning)."""
        dtype = torch._C._nn._parse_to(*args, **kwargs)[1]
        if dtype is not None and not dtype.is_floating_point:
            raise TypeError(
                f"CompiledNetwork.to: dtype must be a floating torch.dtype, got {dtype}"
            )
        return super().to(*args, **kwargs)

    def _apply(self, fn, *args: Any, **kwargs: Any):
        """``.to()``, ``.double()``, ... move the held state along with the parameters.
        A conversion to a dtype that is not floating point (``.to(torch.complex64)``,
        ``.type(torch.int64)``) is refused before anything moves."""
        dtype = fn(self._ref).dtype
        if not dtype.is_floating_point:
            raise TypeError(
                "CompiledNetwork: parameters, inputs and state must be of a floating dtype, "
                f"got {dtype}; nothing was converted"
            )
        with self._lock:
            super()._apply(fn, *args, **kwargs)
            self._outputs.clear()
            self._step_programs, self._zeros, self._built = {}, {}, {}
            self._last_step, self._parameter_tables = None, None
            if self.state is not None:
                self.state = {k: fn(v) for k, v in self.state.items()}
        return self

    # ------------------------------------------------------------------------------
    # inputs
    # ------------------------------------------------------------------------------

    def join_inputs(self, where: str, inputs: Any) -> Any:
        """``inputs`` as one array: a dict ``{input node: array}`` joined along the last
        axis, each node's columns in :attr:`input_nodes` order; a list of such dicts (a list
        of sequences) into a list of arrays; anything else unchanged.

        Every input node must have its entry and nothing else may: each ``(..., n_v)`` with
        ``n_v`` the node's width and the leading dimensions (batch, steps) of the others.
        """
        if isinstance(inputs, Mapping):
            return self._joined(where, inputs)
        if isinstance(inputs, list | tuple) and any(isinstance(a, Mapping) for a in inputs):
            if not all(isinstance(a, Mapping) for a in inputs):
                raise TypeError(
                    f"{where}: a list of sequences holds dicts of inputs or arrays, not both"
                )
            return [self._joined(f"{where} (sequence {k})", a) for k, a in enumerate(inputs)]
        return inputs

    def _joined(self, where: str, inputs: Mapping) -> Tensor:
        """One dict of inputs as one tensor (see :meth:`join_inputs`)."""
        nodes = self._input_nodes
        missing = [v for v in nodes if v not in inputs]
        unknown = [k for k in inputs if k not in nodes]
        if missing or unknown:
            raise ValueError(
                f"{where}: a dict of inputs needs one entry per input node {list(nodes)}, got "
                f"{list(inputs)}"
                + (f" (missing {missing})" if missing else "")
                + (f" ({unknown} are not input nodes)" if unknown else "")
            )
        parts = [as_tensor(where, f"inputs[{v!r}]", inputs[v], copy=False) for v in nodes]
        lead = parts[0].shape[:-1]
        for v, x in zip(nodes, parts, strict=True):
            if x.dim() == 0 or x.shape[-1] != self.nodes[v].n or x.shape[:-1] != lead:
                raise ValueError(
                    f"{where}: inputs[{v!r}] has shape {tuple(x.shape)}, expected "
                    f"{(*lead, self.nodes[v].n)} (the width of input node {v!r}, and the "
                    f"leading dimensions of inputs[{nodes[0]!r}])"
                )
        return torch.cat([x.to(self._ref.device) for x in parts], dim=-1)

    def as_input(self, where: str, inputs: Any) -> tuple[Tensor, bool]:
        """Validate ``inputs`` (an array, or a dict of them: :meth:`join_inputs`) and return
        them as a ``(B, T, C)`` tensor and whether the caller passed a batch dimension."""
        x = as_tensor(where, "inputs", self.join_inputs(where, inputs), copy=False)
        if x.is_complex() or not (
            x.is_floating_point()
            or x.dtype
            in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool)
        ):
            raise TypeError(f"{where}: inputs must be real numbers, got dtype {x.dtype}")
        if x.dim() not in (2, 3):
            raise ValueError(
                f"{where}: inputs must be (T, C) or (B, T, C) with C = {self.n_in} "
                f"(the width of {self._inputs_named()}), got shape {tuple(x.shape)}"
            )
        batched = x.dim() == 3
        x = x if batched else x.unsqueeze(0)
        if x.shape[-1] != self.n_in:
            raise ValueError(
                f"{where}: inputs have {x.shape[-1]} channels, {self._inputs_named()} "
                f"expects {self.n_in} (shape (T, {self.n_in}) or (B, T, {self.n_in}))"
            )
        if x.shape[1] == 0 or x.shape[0] == 0:
            raise ValueError(f"{where}: inputs are empty (shape {tuple(x.shape)})")
        x = x.to(device=self._ref.device, dtype=self._ref.dtype)
        if not all_finite(x):
            raise ValueError(f"{where}: inputs contain NaN or inf values")
        return x, batched

    # ------------------------------------------------------------------------------
    # the generated loop
    # ------------------------------------------------------------------------------

    def _loop_source(
        self,
        external: bool,
        rec_dyn: tuple[str, ...],
        hooked: tuple[HookSpec, ...] = (),
        single: bool = False,
        events: frozenset[str] = frozenset(),
    ) -> str:
        return LoopSource(self, external, rec_dyn, hooked, single, events).source()

    def _var_index(self, label: str, var: str) -> int:
        return self.nodes[label].state_vars.index(var)

    def _zero_inputs(self) -> list[tuple[str, str]]:
        """Inputs of dynamic nodes that no edge feeds: they read a zero tensor (plus the
        external input, for the input node's main input in a run with inputs)."""
        return [
            key
            for key, t in self.plan.targets.items()
            if not (t.static or t.dynamic or self._bias_edges(t))
        ]

    def _static_reads(self, hooked: tuple[HookSpec, ...]) -> list[str]:
        """Names read by hooks whose values come from the static part: static node outputs,
        and the sources of edges leaving a static node."""
        edge_of = {e.key: e for e in self.plan.edges}
        out: list[str] = []
        for _, reads, *_ in hooked:
            for name in reads:
                src = edge_of[name].source if "->" in name else name
                if src in self.plan.static and name not in out:
                    out.append(name)
        return out

    def _bias_edges(self, t: Target) -> list[PlanEdge]:
        return [e for e in t.dynamic if e.module.bias is not None]

    def _biases(self, hooked: tuple[HookSpec, ...]) -> tuple[list[Target], list[PlanEdge], set]:
        """How the biases of dynamic edges enter a run. Those of edges no hook writes are
        folded: into the precomputed input of a target with static edges, else into one
        sum per target (``summed``). Each bias of an edge a hook writes (``live``) is read
        at every step. Returns ``(summed, live, written edge keys)``."""
        written = {key for spec in hooked for key in spec[3]}
        static = [e.key for t in self.plan.targets.values() for e in t.static if e.key in written]
        if static:
            raise ValueError(
                f"a hook writes {static}, edges from nodes computed before the time loop; "
                "their products are precomputed and cannot follow updates inside it"
            )
        summed = [
            t for t in self.plan.targets.values() if not t.static and self._folded(t, written)
        ]
        live = [
            e for t in self.plan.targets.values() for e in self._bias_edges(t) if e.key in written
        ]
        return summed, live, written

    def _folded(self, t: Target, written: set) -> list[PlanEdge]:
        """The bias edges of ``t`` whose biases are folded (see ``_biases``)."""
        return [e for e in self._bias_edges(t) if e.key not in written]

    def _get_loop(
        self,
        external: bool,
        rec_dyn: tuple[str, ...],
        hooked: tuple = (),
        single: bool = False,
        events: frozenset[str] = frozenset(),
    ):
        """The generated loop for this configuration and its source, ``(fn, src)``, made
        once per configuration (``events``: the edges with event-driven products)."""
        single = single and any(e.module.sparse for e in self.plan.edges)
        key = (external, rec_dyn, hooked, single, events)
        if key not in self._loops:
            src = self._loop_source(external, rec_dyn, hooked, single, events)
            self._loops[key] = (run_source(src, f"<rnngraph loop {id(self):x}>", {}), src)
        return self._loops[key]

    def loop_source(
        self, external: bool = True, record: tuple[str, ...] = (), event: bool = False
    ) -> str:
        """The generated Python source of the time loop (for inspection and debugging).

        Runs without gradients may take a native loop instead (see ``rnngraph.native``):
        echo-state and leaky-integrator reservoirs at batch 1, and echo-state reservoirs with
        dense weights at any batch, run in C as a whole; otherwise this loop runs, with C node
        steps and, for edges from spiking nodes, event-driven products (``EVENT``; shown with
        ``event=True`` for every edge that can carry events, whereas a run takes them only
        where batch x inputs x outputs reaches ``EVENT_MIN_MACS``: :meth:`explain` says which).
        """
        events = self.plan.event_edges if event else frozenset()
        return self._get_loop(external, tuple(record), events=events)[1]

    @keywords("CompiledNetwork.explain")
    def explain(self, batch_size: int = 1, grad: bool = False) -> Explanation:
        """Which kernel serves each node and edge in a run of ``batch_size`` with or
        without gradients, and for every faster one not taken, why (e.g. "native loop: not
        on the CPU", "the affine map: MyLIF overrides rhs() and declares no linear part").

        ``print(model.explain())`` shows it; the returned :class:`Explanation` holds it as
        data (``.loop``, ``.nodes[label]``, ``.edges[key]``)."""
        where = "CompiledNetwork.explain"
        batch = as_int(where, "batch_size", batch_size, minimum=1, type_error=ValueError)
        ctx = Context(as_flag(where, "grad", grad), self._ref.device, self._ref.dtype, self.dt)
        return explain(self.plan, self.nodes, ctx, batch)

    # ------------------------------------------------------------------------------
    # running
    # ------------------------------------------------------------------------------

    def _check_record(self, where: str, names: tuple[str, ...]) -> None:
        for name in names:
            label, _, var = name.partition(".")
            if label not in self.nodes:
                raise ValueError(
                    f"{where}: cannot record {name!r}: no node {label!r}; "
                    f"nodes are {list(self.nodes)}"
                )
            node = self.nodes[label]
            if var and var not in node.state_vars:
                raise ValueError(
                    f"{where}: cannot record {name!r}: node {label!r} has no state variable "
                    f"{var!r}; its state variables are {list(node.state_vars)}"
                )

    def _static_outputs(self, X: Tensor | None, n_steps: int, batch: int) -> dict[str, Tensor]:
        ys: dict[str, Tensor] = {}
        if X is None and any(v in self.plan.static for v in self._input_nodes):
            like = self._ref
            X = torch.zeros(n_steps, batch, self.n_in, device=like.device, dtype=like.dtype)
        return self._func_outputs(ys, self.plan.static, X)

    def _func_outputs(
        self, ys: dict[str, Tensor], names: tuple[str, ...] | list[str], X: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Add to ``ys`` the outputs of the function nodes ``names`` (in compiled order) for
        a whole chunk ``(T, B, n)``, from their sources' outputs in ``ys``; the input nodes
        also receive their columns of ``X``."""
        columns, into = self._input_columns, self._into
        for v in names:
            acc = None
            if v in columns and X is not None:
                acc = X if columns[v] is None else X[..., columns[v]].contiguous()
            for e in into[v]:
                y = e.module.project(ys[e.source])
                acc = y if acc is None else acc + y
            ys[v] = self.nodes[v].fn(acc)
        return ys

    def _static_sources(self) -> dict[str, tuple[PlanEdge, ...]]:
        """The edges into each function node, in the plan's order (``_func_outputs``)."""
        return {
            v: tuple(e for e in self.plan.edges if e.target == v)
            for v in self.plan.order
            if v not in self.plan.de_nodes
        }

    def _precomputed(self, t: Target, ys: dict[str, Tensor], written: set, scratch: bool) -> Tensor:
        """What target ``t`` receives from its static edges (and its folded biases) over a
        chunk, from the static outputs ``ys``. With ``scratch`` (the native loop's drive) it
        is summed in place in the thread's scratch memory."""
        acc = None
        for e in t.static:
            src = ys[e.source]
            if acc is None:
                out = None
                if scratch:
                    shape = (*src.shape[:-1], e.module.n_out)
                    out = _scratch().empty(shape, src.device, src.dtype)
                acc = e.module.project(src, out=out)
            else:
                acc = acc.add_(e.module.project(src)) if scratch else acc + e.module.project(src)
        for e in t.dynamic:  # the folded biases (see _biases)
            bias = e.module.bias
            if bias is not None and e.key not in written:
                acc = acc.add_(bias) if scratch else acc + bias
        return acc

    def _native_chunk(
        self,
        reservoir: Any,
        ys: dict[str, Tensor],
        pre: list[Target],
        P: list[Tensor],
        xc: Tensor | None,
        n_steps: int,
        out: Tensor | None = None,
    ) -> None:
        """One chunk of the native reservoir loop; its outputs (and the function nodes
        after it) go into ``ys``."""
        plan = self.plan.reservoir
        node = self.nodes[plan.node]
        drive = next((p for t, p in zip(pre, P, strict=True) if t.node == plan.node), None)
        # the node's one driven input (the recurrent one takes no external input)
        if any(t.external for t in self.plan.targets.values() if t.node == plan.node):
            drive = xc if drive is None else drive + xc
        if plan.kind == "window":
            ys.update(reservoir.outputs(plan.node, drive, n_steps))
            self._func_outputs(ys, plan.post)
            return
        if out is None:  # the states go into scratch memory (reused once nobody holds them)
            shape = (n_steps, reservoir.batch, reservoir.n)
            out = _scratch().empty(shape, self._ref.device, self._ref.dtype)
        ys[plan.node], ys[f"{plan.node}.{node.state_vars[0]}"] = reservoir.chunk(
            drive, n_steps, out
        )
        if node.output_var != node.state_vars[0]:  # a gain map's x: the output itself
            ys[f"{plan.node}.{node.output_var}"] = ys[plan.node]
        self._func_outputs(ys, plan.post)

    def _events(self, grad: bool, batch: int) -> frozenset[str]:
        """The edges whose products are event-driven in a run of ``batch`` (none with
        gradients or without native code; see ``plan.events_skipped``)."""
        if grad or not _native.events_usable(self._ref.dtype, self._ref.device):
            return frozenset()
        return event_keys(self.plan, batch)

    def _weight_layout(self, events: frozenset[str], written: set) -> list[tuple[PlanEdge, str]]:
        """How the loop multiplies the weights of each dynamic edge, in the loop's order
        (see ``AS_LOOP``): CSR as it is, dense transposed (a contiguous copy for an
        event-driven product)."""
        layout = []
        for t in self.plan.targets.values():
            for e in t.dynamic:
                if e.module.sparse:
                    how = "as is"
                elif e.key in events and e.key not in written:
                    how = "contiguous"  # event-driven: W^T's rows per source unit
                else:
                    how = "transposed"
                layout.append((e, how))
        return layout

    def _weights(self, events: frozenset[str], written: set) -> list[Tensor]:
        """The current weights of the dynamic edges as the loop multiplies them."""
        layout = self._weight_layout(events, written)
        return [AS_LOOP[how](e.module.effective_weight()) for e, how in layout]

    def _bias_rows(self, summed: list[Target], live: list[PlanEdge], written: set) -> list:
        """Folded biases (one sum per target) and the live ones, as ``(1, n)`` rows (so that
        a bias plus a batch-1 CSR mat-vec ``(n,)`` keeps the batch axis); a live bias is a
        view of the edge's own, so a hook's writes reach the loop."""
        rows = [sum(e.module.bias for e in self._folded(t, written)).view(1, -1) for t in summed]
        return rows + [e.module.bias.view(1, -1) for e in live]

    def _kernels(self, ctx: Context) -> list[Callable]:
        """The step of every dynamic node for a run of ``ctx``: a function node's map, a DE
        node's kernel as the plan chooses it (see :meth:`explain`; kept as
        :meth:`_node_kernel` says)."""
        out = []
        for v in self.plan.dynamic:
            if v not in self.plan.de_nodes:
                out.append(self.nodes[v].fn)
                continue
            out.append(for_run(self._node_kernel(v, ctx)[2]))
        return out

    def _node_kernel(self, v: str, ctx: Context) -> tuple:
        """``(key, parameter values, kernel)`` of DE node ``v`` for a run of ``ctx``. A
        kernel is built once and kept while the node's parameters, options and ``dt`` stay
        as they were (compared value for value: writes through ``.data`` leave no other
        trace)."""
        node = self.nodes[v]
        key = (self.dt, ctx, _native.enabled(), node.kernel_options())
        cached = self._built.get(v)
        if cached is None or cached[0] != key or not self.kernel_holds(node, cached):
            kernel = node_kernels(node, ctx)[0]
            snapshot = _snapshot(node) if kernel.binds else None
            cached = (key, snapshot, kernel.build(node, self.dt))
            self._built[v] = cached
        return cached

    @staticmethod
    def kernel_holds(node: Node, cached: tuple) -> bool:
        """Whether the kernel of :meth:`_node_kernel`'s ``cached`` still serves ``node`` for
        the run it was made for: the same options and parameter values."""
        return node.kernel_options() == cached[0][3] and (
            cached[1] is None or _unchanged(node, cached[1])
        )

    def _start(self, state: Mapping[str, Tensor]) -> list:
        """The loop's state list from a state dict: one named tuple per DE node, then the
        delay lines."""
        S: list = []
        for v in self.plan.de_nodes:
            node = self.nodes[v]
            S.append(node.State(*(state[f"{v}.{var}"] for var in node.state_vars)))
        for e in self.plan.delayed:
            S.extend(state[f"{e.key}@{k}"] for k in range(1, e.delay + 1))
        return S

    def _run(
        self,
        x: Tensor | None,
        n_steps: int,
        batch: int,
        state: State,
        observer: Observer | None,
        progress: bool,
        grad: bool,
        hooks: tuple = (),
    ) -> tuple[Tensor, dict[str, Tensor], State, Tensor]:
        r = self._prepare_run(x, n_steps, batch, state, observer, grad, hooks)
        width = sum(self.nodes[t.node].n for t in r.pre) + (self.n_in if x is not None else 0)
        chunk = max(1, min(n_steps, _CHUNK_ELEMENTS // max(1, batch * max(1, width))))
        if progress:
            chunk = min(chunk, max(1, math.ceil(n_steps / 100)))
        xt = x.transpose(0, 1) if x is not None else None  # (T, B, C)
        bar = None
        if progress:
            from tqdm.auto import tqdm  # noqa: PLC0415 - optional, and slow to import

            bar = tqdm(total=n_steps, unit="step")
        try:
            for t0 in range(0, n_steps, chunk):
                t1 = min(n_steps, t0 + chunk)
                self._run_chunk(r, xt[t0:t1] if xt is not None else None, t0, t1, batch)
                if bar is not None:
                    bar.update(t1 - t0)
        finally:
            if bar is not None:
                bar.close()
        y_all = r.y_all
        if y_all is None:
            y_all = torch.cat(r.outs) if len(r.outs) > 1 else r.outs[0]
        data = self._recordings(r, y_all, batch)
        S = r.S
        if r.reservoir is not None:
            S = final_state(self.plan.reservoir, self.plan, self.nodes, r.reservoir)
        new_state = dict(zip(self.state_keys(), self._flatten_state(S), strict=True))
        steps = torch.as_tensor(list(r.rec_steps), dtype=torch.int64)
        return y_all.transpose(0, 1), data, new_state, steps

    def _prepare_run(self, x, n_steps, batch, state, observer, grad, hooks) -> _Run:
        """The per-run program and constants: the loop (or the native reservoir loop), the
        weights, biases and kernels, the start state, the recording layout."""
        rec_names = observer.record if observer is not None else ()
        rec_steps = observer.steps(n_steps) if observer is not None else range(0)
        ridx_all = [-1] * n_steps
        for k, t in enumerate(rec_steps):
            ridx_all[t] = k
        hooked = tuple(h.spec for h in hooks)
        plan, dev, dtype = self.plan, self._ref.device, self._ref.dtype
        ctx = Context(grad, dev, dtype, self.dt)
        native = reservoir_unusable(plan.reservoir, plan.reservoir_why, ctx, batch, hooks) is None
        events = self._events(grad, batch)
        r = _Run(
            observer=observer,
            rec_names=rec_names,
            rec_dyn=tuple(n for n in rec_names if n.partition(".")[0] not in plan.static),
            rec_steps=rec_steps,
            ridx_all=ridx_all,
            H=[h.fn for h in hooks],
            static_reads=self._static_reads(hooked),
            pre=[t for t in plan.targets.values() if t.static],
        )
        if not native:
            r.loop = self._get_loop(x is not None, r.rec_dyn, hooked, batch == 1, events)[0]
        summed, live, r.written = self._biases(hooked)
        r.W, r.BIAS = self._weights(events, r.written), self._bias_rows(summed, live, r.written)
        r.STEP, r.S = self._kernels(ctx), self._start(state)
        if native:
            args = (plan.reservoir, self.nodes, plan, self.dt, r.S[0], r.S[1:], hooks)
            r.reservoir = start_reservoir(*args)
        r.ZERO = [
            torch.zeros(batch, self.nodes[v].input_size(i), device=dev, dtype=dtype)
            for v, i in self._zero_inputs()
        ]
        # without autograd every chunk's output goes straight into one buffer (one copy)
        r.y_all = None if grad else self._outputs.empty((n_steps, batch, self.n_out), dev, dtype)
        r.recs = {n: [] for n in rec_names}
        return r

    def _run_chunk(self, r: _Run, xc: Tensor | None, t0: int, t1: int, batch: int) -> None:
        """Steps ``[t0, t1)``: the static part for the whole chunk, then the loop (or the
        native reservoir loop); outputs and recordings go into ``r``."""
        tc = t1 - t0
        ys = self._static_outputs(xc, tc, batch) if self.plan.static else {}
        P = [self._precomputed(t, ys, r.written, r.reservoir is not None) for t in r.pre]
        ridx = r.ridx_all[t0:t1]
        nrec = sum(1 for k in ridx if k >= 0)
        R = [[None] * nrec for _ in r.rec_dyn]
        if nrec:
            first = next(k for k in ridx if k >= 0)
            ridx = [k - first if k >= 0 else -1 for k in ridx]
        OUT: list[Any] = [None] * tc
        if r.reservoir is not None:
            # the reservoir's steps go straight into the run's output when it is that
            out = None
            if r.y_all is not None and self.output_node == self.plan.reservoir.node:
                out = r.y_all[t0:t1]
            self._native_chunk(r.reservoir, ys, r.pre, P, xc, tc, out)
            R = [[] for _ in r.rec_dyn]  # recorded from ys below
        elif self.plan.dynamic:
            # per-step slices as lists: indexing a list is cheaper than a tensor
            edge_of = {e.key: e for e in self.plan.edges}
            SV = [ys[edge_of[n].source if "->" in n else n].unbind(0) for n in r.static_reads]
            Pl = [p.unbind(0) for p in P]
            Xl = xc.unbind(0) if xc is not None else None
            args = (r.W, r.BIAS, r.STEP, r.ZERO, r.S, OUT, R, ridx, r.H, t0, SV)
            r.S = list(r.loop(tc, Xl, Pl, *args))
        self._chunk_output(r, ys, OUT, t0, t1)
        for name, rows in zip(r.rec_dyn, R, strict=True):
            if rows:
                r.recs[name].append(torch.stack(rows))
        for name in r.rec_names:
            if name in ys and nrec:
                part = ys[name][recorded_steps(r.observer, t0, t1)]
                # strided samples are copied out: a view would keep the chunk alive
                r.recs[name].append(part if r.observer.every == 1 else part.clone())

    def _chunk_output(self, r: _Run, ys: dict, OUT: list, t0: int, t1: int) -> None:
        """The output node's values of a chunk, into the run's buffer (or its list)."""
        if r.y_all is not None and self.output_node in ys:
            if ys[self.output_node].data_ptr() != r.y_all[t0:t1].data_ptr():
                r.y_all[t0:t1] = ys[self.output_node]
        elif r.y_all is not None:
            torch.stack(OUT, out=r.y_all[t0:t1])
        else:
            r.outs.append(ys[self.output_node] if self.output_node in ys else torch.stack(OUT))

    def _recordings(self, r: _Run, y_all: Tensor, batch: int) -> dict[str, Tensor]:
        """Each recorded variable ``(B, T_rec, n)``, from the chunks' parts."""
        data = {}
        lent: list[Tensor] = []  # fresh native buffers handed out as they are
        for name in r.rec_names:
            parts = r.recs[name]
            label = name.partition(".")[0]
            own = r.reservoir is not None and label == self.plan.reservoir.node
            if (
                own
                and len(parts) == 1
                and spans_memory(parts[0])
                and not any(_same_memory(parts[0], b) for b in [y_all, *lent])
            ):
                # all of the native loop's fresh buffer, referred to by nothing else (not
                # the output, not another recording): no copy
                lent.append(parts[0])
                data[name] = parts[0].transpose(0, 1)
            elif parts:
                data[name] = torch.cat(parts).transpose(0, 1)
            else:
                n = self.nodes[label].var_size(name.partition(".")[2] or None)
                data[name] = torch.zeros(batch, 0, n, device=y_all.device, dtype=y_all.dtype)
        return data

    @staticmethod
    def _flatten_state(S: list) -> list[Tensor]:
        flat: list[Tensor] = []
        for s in S:
            if isinstance(s, tuple):
                flat.extend(s)
            else:
                flat.append(s)
        return flat

    @keywords("CompiledNetwork.run")
    def run(
        self,
        inputs: Any = None,
        observer: Observer | None = None,
        state: State | None = None,
        progress: bool = False,
        steps: int | None = None,
    ) -> Recording:
        """Run the network over a sequence of inputs, continuing from the held state.

        This is RectiPy's ``run``: the network holds a state between runs, each run starts
        from it and leaves its final state there (``reset()`` restores the initial state,
        ``detach()`` cuts its autograd graph). :meth:`forward` is the stateless call of
        torch's recurrent modules.

        Parameters
        ----------
        inputs : tensor or array, optional
            ``(T, C)`` or ``(B, T, C)``, with ``C`` the width of the input node. ``None``
            runs ``steps`` steps without external input (biases and recurrence only).
        observer : Observer, optional
            What to record, and when.
        state : dict, optional
            Start from this state. By default the run continues from the state the network
            holds (the end of the previous run, or ``init_state`` after ``reset()``). Its
            batch size must be the run's, or 1: a state of batch 1 starts every element of
            a larger batch (e.g. probes from one warmed-up reservoir, or ``set_var`` before
            a batched run).
        progress : bool
            Show a tqdm progress bar.
        steps : int, optional
            Number of steps when ``inputs`` is ``None``; with inputs it must equal ``T``.
            A run without input has the batch of the state it starts from, and its output
            and recordings are ``(B, T, n)`` when that batch is larger than 1, ``(T, n)``
            for a batch of 1.

        Returns
        -------
        Recording
            Recorded variables, ``output`` (every step, the input's layout) and the final
            ``state``, which the network also holds afterwards.

        Notes
        -----
        Runs from the held state in several threads at once run one after another, each
        continuing the state the previous one left; a run with ``state=`` given runs at
        the same time as others (it reads no held state) and only waits to hold its final
        state.
        """
        where = "CompiledNetwork.run"
        progress = as_flag(where, "progress", progress)
        return self.execute(where, inputs, observer, state, progress, steps)

    def execute(
        self,
        where,
        inputs,
        observer,
        state,
        progress,
        steps,
        batch_size=None,
        hooks=(),
        hold=True,
    ):
        """The executor's run, behind :meth:`run`, :meth:`forward`, the ``Network`` facade
        and the trainers: the plan run over ``inputs`` with the ``observer`` and the
        trainer's ``hooks`` (:class:`Hook`), errors named after the public call ``where``.
        With ``hold`` it starts from the held state (unless ``state`` is given) and holds
        the final state; without, it starts from ``init_state`` (unless ``state`` is given)
        and leaves the held state alone. ``batch_size`` is the batch of a run without
        inputs from an initial state.

        A run from the held state holds the network's lock from start to end, so that runs
        from several threads follow each other; a run from a given state takes it only to
        hold its final state."""
        reads_held = hold and state is None
        with self._lock if reads_held else contextlib.nullcontext():
            rec = self._run_checked(
                where, inputs, observer, state, progress, steps, batch_size, hooks, hold
            )
            if hold:
                with self._lock:
                    self.state = rec.state
        return rec

    def _run_checked(
        self, where, inputs, observer, state, progress, steps, batch_size, hooks, hold
    ) -> Recording:
        """:meth:`execute` without the lock and without holding the final state."""
        if observer is not None and not isinstance(observer, Observer):
            raise TypeError(f"{where}: observer must be an Observer, got {type(observer).__name__}")
        if state is not None:
            _check_mapping(where, state)
        if observer is not None:
            self._check_record(where, observer.record)
        if inputs is None:
            if steps is None:
                raise ValueError(f"{where}: give inputs, or steps= for a run without input")
            steps = as_int(where, "steps", steps, minimum=1, type_error=ValueError)
            x, n_steps = None, steps
            held = state if state is not None else (self.state if hold else None)
            if batch_size is not None or not held:
                batch = batch_size or self._init_batch()
            else:
                batch = next(iter(held.values())).shape[0]
            # the layout of the state's batch: (B, T, n) for a batch of several
            batched = batch_size is not None or batch > 1
        else:
            x, batched = self.as_input(where, inputs)
            batch, n_steps = x.shape[0], x.shape[1]
            if steps is not None and steps != n_steps:
                raise ValueError(f"{where}: steps={steps} but the inputs have {n_steps} steps")
        start = state if state is not None else (self.state if hold else None)
        if start is None or not start:
            start = self._init_state(where, batch)
        start = _broadcast(start, batch)
        self._check_state(where, start, batch, given=state is not None)
        # a run that cannot produce a gradient runs without autograd, so node kernels take
        # their no-gradient fast paths even when called with grad mode on
        grad = self._wants_grad(x, start)
        with torch.set_grad_enabled(grad):
            y, data, new_state, rec_steps = self._run(
                x, n_steps, batch, start, observer, progress, grad, hooks
            )
        return Recording(data, rec_steps, self.dt, output=y, state=new_state, batched=batched)

    @keywords("CompiledNetwork.forward")
    def forward(
        self, inputs: Any = None, state: State | None = None, steps: int | None = None
    ) -> Tensor:
        """The output node's output at every step, in the input's layout, from a fresh
        initial state: the semantics of torch's recurrent modules (``nn.RNN``).

        Each call starts from ``init_state(B)`` unless ``state`` is given, and leaves the
        state the network holds (what :meth:`run` continues from) unchanged, so a plain
        torch training loop (``loss = f(model(x)); loss.backward(); opt.step()``) builds a
        new autograd graph every call. To continue a sequence, pass the state of a
        :meth:`run`'s ``Recording``, or use :meth:`run`.

        Parameters
        ----------
        inputs : tensor or array, optional
            ``(T, C)`` or ``(B, T, C)``; ``None`` with ``steps=`` for no external input.
        state : dict, optional
            The state to start from (batch ``B`` or 1); default ``init_state(B)``.
        steps : int, optional
            Number of steps for a run without input: batch 1 unless ``state`` is given,
            whose batch ``B`` the output then has (``(B, T, n_out)`` for ``B > 1``).

        Returns
        -------
        Tensor
            ``(T, n_out)`` or ``(B, T, n_out)``.
        """
        where = "CompiledNetwork.forward"
        return self.execute(where, inputs, None, state, False, steps, hold=False).output

    @keywords("CompiledNetwork.step")
    def step(self, x_t: Any, state: State) -> tuple[Tensor, State]:
        """One step as a pure function: ``(y_t, new_state) = step(x_t, state)``.

        ``x_t`` is ``(B, C)`` (or ``(C,)`` for ``B = 1``; ``None`` for no external input), or
        a dict ``{input node: (B, n_v)}`` (:meth:`join_inputs`).
        A state of batch 1 starts every element of a larger batch, as in :meth:`run`;
        ``state=None`` is ``init_state(B)``. The held state is left untouched.

        A loop over ``step`` runs the body of the loop a :meth:`run` runs, generated once
        more as a function of one step (the same kernels, kept while parameters and options
        stay as they were; parameters are read at every step). The state it returns is
        checked once, when it is made: passed back unchanged, it is not checked again; a
        state whose entries were changed (set, deleted, updated) is checked as one given by
        hand.
        """
        program = self._last_step
        # the state the latest step returned, passed back unchanged: the fast path
        if program is not None and getattr(state, "_issuer", None) is program.issuer:
            x = self._plain_step_input(program, x_t)
            if x is not False and self._wants_grad(x, state) is program.grad:
                if program.native == _native.enabled() and program.ctx.dt == self._dt:
                    if torch.is_grad_enabled() is program.grad:
                        return program.advance(x, state)
                    return self._step_once(program, x, state)
        return self._checked_step("CompiledNetwork.step", x_t, state)

    def _checked_step(self, where: str, x_t: Any, state: State) -> tuple[Tensor, State]:
        """:meth:`step` from any inputs and state: checked, broadcast, then run."""
        x_t = self.join_inputs(where, x_t)
        if state is None:
            batch = 1
            if x_t is not None:
                shape = as_tensor(where, "x_t", x_t, copy=False).shape
                batch = shape[0] if len(shape) == 2 else 1
            state = self._init_state(where, batch)
        _check_mapping(where, state)
        squeeze = False
        x = None
        if x_t is not None:
            x, squeeze = self._step_input(where, x_t)
            state = _broadcast(state, x.shape[0])
        batch = (
            x.shape[0] if x is not None else (next(iter(state.values())).shape[0] if state else 1)
        )
        issuer = (id(self), self._ref.dtype, self._ref.device, batch)
        if not (isinstance(state, StepState) and state.trusted(issuer)):
            self._check_state(where, state, batch)
        grad = self._wants_grad(x, state)
        key = (grad, x is not None, batch, _native.enabled(), self.dt)
        program = self._step_programs.get(key)
        if program is None:
            program = self._step_programs[key] = step_program(self, key, issuer)
        self._last_step = program
        y, new_state = self._step_once(program, x, state)
        return (y[0] if squeeze else y), new_state

    def _wants_grad(self, x: Tensor | None, state: Mapping[str, Tensor]) -> bool:
        """Whether a run from ``state`` with inputs ``x`` can produce a gradient (else it runs
        without autograd, and node kernels take their no-gradient paths even in grad mode)."""
        if not torch.is_grad_enabled():
            return False
        if x is not None and x.requires_grad:
            return True
        for v in state.values():  # loops, not any(...): asked at every step
            if v.requires_grad:
                return True
        tables = self._parameter_tables
        if tables is None:  # the modules are fixed at compile; their parameters are read live
            tables = self._parameter_tables = [m._parameters for m in self.modules()]
        for table in tables:
            for p in table.values():
                if p is not None and p.requires_grad:
                    return True
        return False

    def _plain_step_input(self, program: StepProgram, x_t: Any) -> Tensor | None | bool:
        """``x_t`` when it is what ``program`` steps (``None`` for a program without inputs;
        a ``(B, C)`` tensor of the network's dtype and device with finite values otherwise),
        else ``False`` (it goes through the full checks)."""
        if x_t is None:
            return None if not program.external else False
        ctx = program.ctx
        if (
            program.external
            and type(x_t) is Tensor
            and x_t.shape == program.input_shape
            and x_t.dtype is ctx.dtype
            and x_t.device == ctx.device
            and all_finite(x_t)
        ):
            return x_t
        return False

    def _step_input(self, where: str, x_t: Any) -> tuple[Tensor, bool]:
        """``x_t`` as a checked ``(B, C)`` tensor, and whether it came as ``(C,)``."""
        ref = self._ref
        if (
            type(x_t) is Tensor
            and x_t.dim() == 2
            and x_t.dtype is ref.dtype
            and x_t.device == ref.device
            and x_t.shape[1] == self.n_in
            and x_t.shape[0] > 0
        ):
            if not all_finite(x_t):
                raise ValueError(f"{where}: inputs contain NaN or inf values")
            return x_t, False
        xt = as_tensor(where, "x_t", x_t, copy=False)
        if xt.dim() not in (1, 2):
            raise ValueError(
                f"{where}: x_t must be (C,) or (B, C) with C = {self.n_in} (one step), "
                f"got shape {tuple(xt.shape)}"
            )
        squeeze = xt.dim() == 1
        xt = xt.reshape(1, -1) if squeeze else xt
        x, _ = self.as_input(where, xt.unsqueeze(1))
        return x[:, 0], squeeze

    def _step_once(
        self, program: StepProgram, x: Tensor | None, state: Mapping[str, Tensor]
    ) -> tuple[Tensor, StepState]:
        """One step of the generated loop from ``state``: the program of :meth:`_run`
        without its per-run work (no observer, no chunks, no output buffer)."""
        if torch.is_grad_enabled() is program.grad:  # the mode already is the program's
            return program.advance(x, state)
        with torch.set_grad_enabled(program.grad):
            return program.advance(x, state)

    def unrolled(self) -> Callable[[Tensor, State], tuple[Tensor, State]]:
        """The plan as a pure tensor function for ``torch.compile``:
        ``f(x, state) -> (y, new_state)`` over inputs ``x`` ``(B, T, C)`` (in the network's
        dtype and device) from ``state`` (:meth:`init_state`), with ``y`` ``(B, T, n_out)``.

        It is the time loop of :meth:`forward` with every node's generic kernel (its
        ``step``, which reads the parameters at every call), without the checks, the held
        state, the observer and native code, so that TorchDynamo traces it whole (no graph
        breaks)::

            f = torch.compile(model.unrolled())
            y, state = f(x, model.init_state(x.shape[0]))
            loss_fn(y, target).backward()

        Parameters, options and ``dt`` are read at every call (optimiser steps and
        ``set_var`` take effect; a compiled function recompiles where a Python-level option
        changes). Inputs are not checked: use :meth:`as_input` first where they come from
        a user.
        """
        loop = self._get_loop(True, (), (), False, frozenset())[0]
        summed, live, written = self._biases(())
        pre = [t for t in self.plan.targets.values() if t.static]
        nodes = [self.nodes[v] for v in self.plan.dynamic]
        de = [v in self.plan.de_nodes for v in self.plan.dynamic]
        keys = tuple(self.state_keys())
        zero_inputs = self._zero_inputs()
        out_static = self.output_node in self.plan.static

        def f(x: Tensor, state: State) -> tuple[Tensor, State]:
            xt = x.transpose(0, 1)  # (T, B, C)
            n_steps, batch = xt.shape[0], xt.shape[1]
            ys = self._func_outputs({}, self.plan.static, xt) if self.plan.static else {}
            P = [self._precomputed(t, ys, written, False).unbind(0) for t in pre]
            zeros = [
                torch.zeros(batch, self.nodes[v].input_size(i), device=x.device, dtype=x.dtype)
                for v, i in zero_inputs
            ]
            W, BIAS = self._weights(frozenset(), written), self._bias_rows(summed, live, written)
            # the generic kernels, which read the parameters at every step, for this dt
            steps = [n.kernel(self.dt) if d else n.fn for n, d in zip(nodes, de, strict=True)]
            OUT: list[Any] = [None] * n_steps
            S = loop(
                n_steps, xt.unbind(0), P, W, BIAS, steps, zeros, self._start(state), OUT,
                [], [-1] * n_steps, [], 0, [],
            )  # fmt: skip
            y = ys[self.output_node] if out_static else torch.stack(OUT)
            return y.transpose(0, 1), dict(zip(keys, self._flatten_state(S), strict=True))

        return f

    def _step_zeros(self, batch: int) -> list[Tensor]:
        """The zero inputs of a step of ``batch`` (read only, so kept between steps)."""
        zeros = self._zeros.get(batch)
        ref = self._ref
        if zeros is None or (
            zeros and (zeros[0].dtype, zeros[0].device) != (ref.dtype, ref.device)
        ):
            zeros = [
                torch.zeros(batch, self.nodes[v].input_size(i), device=ref.device, dtype=ref.dtype)
                for v, i in self._zero_inputs()
            ]
            self._zeros[batch] = zeros
        return zeros

    def extra_repr(self) -> str:
        return (
            f"dt={self.dt}, input_node={self.input_node!r}, output_node={self.output_node!r}, "
            f"order={self.order}"
        )
