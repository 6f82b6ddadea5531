"""The prepared program behind ``CompiledNetwork.step``.

A step is the body of the generated time loop, generated once more as a function of one
step (``StepSource``) per kind of step (gradients or not, external input or not, batch
size, native switch, ``dt``): the static nodes on the step's input, the current weights
and biases, the kernels of the DE nodes and the new state, with every structural choice
made when it is generated. Parameters are read at every step; a DE node's kernel is kept
while its node's options and parameter values stay as they were (checked at every step,
so an optimiser step or a write through ``.data`` between two steps takes effect at the
next one, as between two runs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ..nodes import Context, for_run
from ._source import StepSource, run_source

if TYPE_CHECKING:  # pragma: no cover
    from ._compiled import CompiledNetwork

__all__ = ["StepProgram", "StepState", "step_program"]


class StepState(dict):
    """The state :meth:`CompiledNetwork.step` returns: a plain dict of tensors that also
    remembers which network made it, so that the next ``step`` from it skips the checks
    of a state given by hand. Any change of its entries through its methods (setting,
    deleting, ``update``, ``__init__``, ...) makes it a state given by hand (``dict``'s own
    methods called on it unbound, ``dict.__setitem__(state, k, v)``, bypass any
    subclass); the tensors themselves are not watched: a state edited in place is taken as
    it is."""

    __slots__ = ("_issuer",)

    def trusted(self, issuer: tuple) -> bool:
        mine = getattr(self, "_issuer", None)
        return mine is issuer or mine == issuer


def _untrusting(name: str) -> Callable:
    """``dict``'s method ``name``, which also forgets the state's issuer."""
    method = getattr(dict, name)

    def edit(self: StepState, *args: Any, **kwargs: Any) -> Any:
        self._issuer = None
        return method(self, *args, **kwargs)

    edit.__name__ = edit.__qualname__ = name
    return edit


for _name in (
    "__init__", "__setitem__", "__delitem__", "__ior__", "clear", "pop", "popitem",
    "setdefault", "update",
):  # fmt: skip
    setattr(StepState, _name, _untrusting(_name))


@dataclass(frozen=True, eq=False)
class StepProgram:
    """What every :meth:`CompiledNetwork.step` of one kind shares (made at its first step):
    what a step must match to run it without the checks (the state's issuer, the input's
    shape), and ``advance(x, state) -> (y, new_state)``, the step itself."""

    grad: bool
    external: bool
    batch: int
    native: bool
    issuer: tuple
    input_shape: torch.Size
    ctx: Context
    advance: Callable[[Tensor | None, Mapping[str, Tensor]], tuple[Tensor, StepState]]


def step_program(net: CompiledNetwork, key: tuple, issuer: tuple) -> StepProgram:
    """The program of the steps of kind ``key`` (gradients, external input, batch, native
    switch, ``dt``) of ``net``: its generated step (``StepSource``) with the constants it
    reads."""
    grad, external, batch, native, dt = key
    ctx = Context(grad, net._ref.device, net._ref.dtype, dt)
    events = net._events(grad, batch)
    single = batch == 1 and any(e.module.sparse for e in net.plan.edges)
    source = StepSource(net, external, single, events)
    summed, live, written = source.bias, source.live, source.written
    shape, like = (batch, net.n_in), net._ref
    namespace: dict[str, Any] = {
        "STEPSTATE": StepState,
        "NEWSTATE": dict.__new__,
        "FILL": dict.update,
        "ISSUER": issuer,
        "BIAS_ROWS": lambda: net._bias_rows(summed, live, written),
        "XZERO": lambda: like.new_zeros(shape),
        **source.constants(),
    }
    namespace.update({f"Z{k}": z for k, z in enumerate(net._step_zeros(batch))})
    for v, i in source.idx.items():
        if v in net.plan.de_nodes:
            namespace[f"K{i}"] = _kernel(net, v, ctx)
    advance = run_source(source.source(), f"<rnngraph step {id(net):x}>", namespace)
    return StepProgram(
        grad=grad,
        external=external,
        batch=batch,
        native=native,
        issuer=issuer,
        input_shape=torch.Size(shape),
        ctx=ctx,
        advance=advance,
    )


def _kernel(net: CompiledNetwork, v: str, ctx: Context) -> Callable[[], Callable]:
    """The step of DE node ``v`` as :meth:`CompiledNetwork._kernels` gives it for ``ctx``:
    taken from the network's cache once and checked at every step against the node's
    options and parameter values (built again when they changed)."""
    node, held = net.nodes[v], [None]

    def kernel() -> Callable:
        cached = held[0]
        if cached is None or not net.kernel_holds(node, cached):
            cached = held[0] = net._node_kernel(v, ctx)
        return for_run(cached[2])

    return kernel
