r"""Node kernels: the step of a node as the compiled time loop calls it, chosen by capability.

A kernel serves every node whose *declared structure* it needs (a linear part, a leaky map,
the event rule of a spiking model) and whose run meets its conditions (no gradient, on the
CPU, the native library loaded). The compiled plan asks :func:`choose` for each
differential-equation node, fastest kernel first; the generic kernel, the model's own
:meth:`~rnngraph.nodes.DENode.step`, serves every node and is the reference every other
kernel is tested against (NaN and inf included). No kernel tests a node's concrete class:
a model defined in a user's file that declares a linear membrane gets the affine and native
kernels, and a subclass that changes the mathematics (overrides ``rhs``) loses them
(:meth:`~rnngraph.nodes.DENode.structure`).

A kernel is ``build(node, dt) -> k`` with ``k(state, *inputs) -> (output, state)``, inputs in
the order of the node's ``input_names``; a ``k`` that keeps something per run (such as a
check of the run's first state) has ``k.per_run()``, which gives the step of one run.
:func:`register_kernel` adds one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .. import _native
from ._base import AFFINE_GAINS, DENode, affine_gain, affine_step
from ._spiking import SpikingNode, _reset_to, hold_steps, refractory_steps

__all__ = [
    "Context",
    "KERNELS",
    "NodeKernel",
    "build_kernel",
    "candidates",
    "choose",
    "for_run",
    "lif_structure",
    "register_kernel",
]


@dataclass(frozen=True)
class Context:
    """What a run is: whether it needs gradients, where its tensors live, its time step
    ``dt`` (ms)."""

    grad: bool
    device: torch.device
    dtype: torch.dtype
    dt: float


@dataclass(frozen=True)
class NodeKernel:
    """A registered node kernel.

    ``declared(node)`` says why the node lacks the structure the kernel needs (``None``:
    it has it); ``usable(node, ctx)`` why a run cannot take it (``None``: it can);
    ``build(node, dt)`` makes the step. ``binds``: the step holds values computed from the
    node's parameters when it was built (then a network rebuilds it when they change);
    ``False`` for a step that reads the parameters at every call.
    """

    name: str
    summary: str
    declared: Callable[[DENode], str | None]
    usable: Callable[[DENode, Context], str | None]
    build: Callable[[DENode, float], Callable[..., tuple[Tensor, tuple]]]
    binds: bool = True


def _per_run_only(make: Callable[[], Callable]) -> Callable:
    """A built kernel that gives each run the step ``make()`` returns (``for_run``); it
    cannot be called itself."""

    def k(s: tuple, *i: Tensor) -> tuple[Tensor, tuple]:
        raise AssertionError("call per_run() for each run")  # pragma: no cover

    k.per_run = make
    return k


def _always(*_: Any) -> None:
    return None


def _no_grad(node: DENode, ctx: Context) -> str | None:
    return "the run needs gradients" if ctx.grad else None


def _native_no_grad(node: DENode, ctx: Context) -> str | None:
    return _no_grad(node, ctx) or _native.unavailable(ctx.dtype, ctx.device)


def _native_lif_usable(node: DENode, ctx: Context) -> str | None:
    """The C step pays where it replaces the refractory countdown's extra torch operations
    (1.5x at batch 1); without held steps the torch step, which then skips the countdown,
    is as fast or faster (0.8-1.0x of it; ``benchmarks/native_kernels.py``)."""
    why = _native_no_grad(node, ctx)
    if why is None and not _holds(node, ctx.dt):
        why = "no refractory steps at this dt (the torch step skips the countdown)"
    return why


def lif_structure(node: DENode, adaptive: bool = False) -> tuple[dict | None, str | None]:
    """The constants of the LIF-type step a node's declarations describe, or ``None`` and
    why not: a spiking model whose only integrated variable is a linear membrane with one
    input (:math:`\\tau \\dot v = \\mathrm{rest} + R I - v`), a fixed threshold (with
    ``adaptive``: the adaptive threshold of ``adaptation``, :math:`v_{th} + \\beta a` with
    :math:`a(t) = \\rho a(t-1) + z(t-1)`, and the state ``(v, a, z, ref)``), no jumps, no
    noise, an integrator with an affine one-step map and a plain spike function."""
    if not isinstance(node, SpikingNode):
        return None, "not a spiking model (no event rule)"
    if tuple(node.ode_vars) != ("v",):
        return None, f"integrates {list(node.ode_vars)}, not v alone"
    lin, why = node.structure("linear_part")
    if lin is None:
        return None, why
    part = lin["v"]
    if len(part.gains) != 1:
        return None, f"v has {len(part.gains)} inputs, not one"
    if node.jumps:
        return None, "the event rule has jumps"
    if adaptive:
        if node.adaptation is None:
            return None, "the threshold is fixed (the LIF steps serve it)"
        state = ("v", node.adaptation[0], "z", "ref")
        if tuple(node.state_vars) != state:
            return None, f"the state is {list(node.state_vars)}, not {list(state)}"
    elif node.adaptation is not None:
        return None, "the event rule has an adaptive threshold"
    if node.integrator not in AFFINE_GAINS:
        return None, f"integrator {node.integrator!r} has no affine one-step map"
    why = node.plain_output()
    if why is not None:
        return None, why
    if node.output_function is not None:
        return None, "the output goes through an output function"
    if getattr(node.spike_fn, "relaxed", False):
        return None, "the spike function is relaxed (smooth forward)"
    ((name, gain),) = part.gains.items()
    return {"part": part, "input": node.input_names.index(name), "r_m": gain}, None


def _lif_declared(node: DENode) -> str | None:
    return lif_structure(node)[1]


def _lif_constants(node: SpikingNode, dt: float, adaptive: bool = False) -> dict[str, Tensor]:
    """The constants of the no-gradient LIF step in the network's dtype (a Python float must
    not pass through float32): the fixed point at zero input ``u0``, the input gain ``r_m``,
    the gain ``g``, the threshold ``th``, ``v_reset``, ``drop = th - v_reset`` and the held
    steps ``hold``; with ``adaptive`` also the adaptation's decay ``rho``
    (:math:`e^{-dt/\\tau_a}`, computed as the node's event rule computes it) and ``beta``."""
    found, _ = lif_structure(node, adaptive)
    part = found["part"]
    with torch.no_grad():
        th = getattr(node, node.threshold_name)
        like = th.detach()
        c = {
            "u0": part.rest,
            "r_m": found["r_m"],
            "g": affine_gain(node.integrator, dt, part.tau, like),
            "th": th,
            "v_reset": node.v_reset,
            "drop": th - node.v_reset,
            "hold": hold_steps(node.refractory, dt, like),
        }
        if adaptive:
            _, tau, beta = node.adaptation
            c["rho"] = torch.exp(-dt / getattr(node, tau))
            c["beta"] = getattr(node, beta)
        return {k: torch.as_tensor(v, dtype=like.dtype, device=like.device) for k, v in c.items()}


def _alif_declared(node: DENode) -> str | None:
    return lif_structure(node, adaptive=True)[1]


def _scalar_or_tensor(t: Tensor) -> float | Tensor:
    """A Python number for a 0-d tensor (one kernel launch less per use), else the tensor."""
    return float(t) if t.dim() == 0 else t


def torch_lif_step(
    c: dict[str, Tensor], subtract: bool, refractory: bool, adaptive: bool = False
) -> Callable:
    """The no-gradient LIF step in torch on the constants of :func:`_lif_constants`:
    ``(v, z, ref), I -> (z, (v, z, ref))``; with ``adaptive`` (and the constants of
    ``_lif_constants(..., adaptive=True)``) ``(v, a, z, ref), I -> (z, (v, a, z, ref))``
    with the threshold :math:`v_{th} + \\beta a`, :math:`a(t) = \\rho a(t-1) + z(t-1)`
    (also in a held step). Without ``refractory`` the countdown is neither read nor changed."""
    u0 = c["u0"]
    names = ("r_m", "g", "th", "v_reset", "drop", "hold") + (("rho", "beta") if adaptive else ())
    r_m, gain, th, v_reset, drop, hold, *ada = (_scalar_or_tensor(c[k]) for k in names)
    rho, beta = ada if adaptive else (None, None)
    unit_gain = isinstance(r_m, float) and r_m == 1.0

    def k(s: tuple, i: Tensor) -> tuple[Tensor, tuple]:
        if adaptive:
            v, a, z, ref = s
        else:
            v, z, ref = s
        u = u0 + i if unit_gain else u0 + r_m * i  # rest + R I, rounded as the model
        vi = torch.lerp(u, v, gain)  # u + g (v - u), as affine_step
        if refractory:
            held = ref > 0
            vi = torch.where(held, v, vi)
        if subtract:  # the reset of the previous step's spike, also in a held step
            vi = vi - z * drop
        if adaptive:
            a = rho * a + z
            spiked = vi > th + beta * a
        else:
            spiked = vi > th
        if refractory:
            spiked = spiked & ~held
        z_new = spiked.to(vi.dtype)
        if not subtract:
            vi = torch.where(spiked, v_reset, vi)
        if refractory:
            ref = torch.where(spiked, hold, (ref - 1.0).clamp(min=0.0))
        return z_new, ((vi, a, z_new, ref) if adaptive else (vi, z_new, ref))

    return k


def _first_state_holds(fast: Callable, held: Callable[[], Callable]) -> Callable:
    """``fast`` (a step without the countdown) unless the run's first state holds a unit
    (``ref > 0``, set by the user): then the step ``held()`` makes, which counts down as the
    model does (checked once, at the run's first step; ``ref`` is the state's last field)."""
    chosen: list[Callable] = []

    def k(s: tuple, *i: Tensor) -> tuple[Tensor, tuple]:
        if not chosen:
            chosen.append(held() if bool((s[-1] > 0).any()) else fast)
        return chosen[0](s, *i)

    return k


def _holds(node: DENode, dt: float) -> bool:
    """Whether a spike holds any unit of ``node`` for a step at ``dt`` (Brian2's rule)."""
    return bool((refractory_steps(node.refractory, dt) > 0).any())


def _select(k: Callable, j: int, n_inputs: int) -> Callable:
    """``k`` fed with input ``j`` of the node's ``n_inputs``."""
    return k if n_inputs == 1 else (lambda s, *i: k(s, i[j]))


def _lif_kernel(native: bool, adaptive: bool = False) -> Callable[[DENode, float], Callable]:
    def build(node: DENode, dt: float) -> Callable:
        c = _lif_constants(node, dt, adaptive)
        subtract = node.reset_mode == "subtract"
        refractory = _holds(node, dt)
        j = lif_structure(node, adaptive)[0]["input"]
        if native:
            where = f"{type(node).__name__} step"
            step = _native.lif_step(node.n, c["g"].dtype, c["g"].device, subtract, where, **c)

            def fast(s: tuple, i: Tensor) -> tuple[Tensor, tuple]:
                v, z, ref = step(i, *s)
                return z, (v, z, ref)

        else:
            fast = torch_lif_step(c, subtract, refractory, adaptive)
        if refractory:
            k = fast
        else:  # a fresh check of the first state per run (``per_run``)
            return _per_run_only(
                lambda: _select(
                    _first_state_holds(fast, lambda: torch_lif_step(c, subtract, True, adaptive)),
                    j,
                    len(node.input_names),
                )
            )
        return _select(k, j, len(node.input_names))

    return build


def _grad_lif_declared(node: DENode) -> str | None:
    why = _lif_declared(node)
    if why is None and tuple(node.state_vars) != ("v", "z", "ref"):
        why = f"the state is {list(node.state_vars)}, not (v, z, ref)"
    return why


def _grad_lif_usable(node: DENode, ctx: Context) -> str | None:
    if not ctx.grad:
        return "the run needs no gradients (the steps without autograd serve it)"
    if _holds(node, ctx.dt):
        return "refractory steps at this dt (the generic step holds the units)"
    return None


def _grad_lif(node: DENode, dt: float) -> Callable:
    """The generic step of a LIF-type node without its refractory work (no unit is held:
    the countdown stays zero, the masks are all false), reading every parameter and option
    at each call as the generic step does, so that values and gradients are the generic
    step's. It is built again when a parameter changes (``binds``): a new refractory period
    may hold units, and the plan then takes the generic step."""
    structure, inputs, state = node.structure, node.Inputs, node.State

    def fast(s: tuple, *i: Tensor) -> tuple[Tensor, tuple]:
        part = structure("linear_part")[0]["v"]
        g = affine_gain(node.integrator, dt, part.tau, s.v)
        v = affine_step(s.v, part.fixed_point(inputs(*i)), g)
        th, rs = getattr(node, node.threshold_name), node.v_reset
        detach = node.detach_reset
        if node.reset_mode == "subtract":  # the previous step's spike, after the leak
            v = v - (th - rs) * (s.z.detach() if detach else s.z)
        z = node.spike_fn((v - th) / (th - rs))
        if node.reset_mode == "value":
            v = _reset_to(v, z, rs, detach)
        return z, state(v, z, s.ref)

    return _per_run_only(lambda: _first_state_holds(fast, lambda: node.kernel(dt)))


def _leaky_declared(node: DENode) -> str | None:
    return node.plain_structure("leaky_map")


def _leaky_tanh_declared(node: DENode) -> str | None:
    why = _leaky_declared(node)
    if why is not None:
        return why
    if node.leaky_map().mix is not None:
        return "the map mixes the units' previous values (M x); the C step has no product"
    return None if node.leaky_map().f is torch.tanh else "the activation is not tanh"


def _native_leaky_tanh(node: DENode, dt: float) -> Callable:
    lm = node.leaky_map()
    bias = torch.as_tensor(lm.bias).detach()
    lr = torch.as_tensor(lm.lr).detach().to(bias.dtype)
    step = _native.leaky_tanh_step(lr, bias, node.n, f"{type(node).__name__} step")
    j = node.input_names.index(lm.input)

    def k(s: tuple, *i: Tensor) -> tuple[Tensor, tuple]:
        x = step(s[0], i[j])
        return x, (x,)

    return k


def _torch_leaky_map(node: DENode, dt: float) -> Callable:
    """The leaky map with a zero bias skipped (one operation less per step; the same
    values) and a fixed scalar leak rate as a Python number."""
    lm = node.leaky_map()
    f, lr, bias, mix = lm.f, lm.lr, lm.bias, lm.mix
    j = node.input_names.index(lm.input)
    if isinstance(lr, Tensor) and lr.dim() == 0 and not lr.requires_grad:
        lr = float(lr)
    has_bias = not isinstance(bias, Tensor) or bias.requires_grad or bool((bias != 0).any())
    mix_t = None if mix is None else mix.T

    def k(s: tuple, *i: Tensor) -> tuple[Tensor, tuple]:
        base = s[0] if mix_t is None else s[0] @ mix_t
        x = torch.lerp(base, f(i[j] + bias) if has_bias else f(i[j]), lr)
        return x, (x,)

    return k


def _decay_declared(node: DENode) -> str | None:
    return node.plain_structure("decay_map")


def _decay_usable(node: DENode, ctx: Context) -> str | None:
    kappa = node.decay_map().kappa(ctx.dt)
    if ctx.grad and isinstance(kappa, Tensor) and kappa.requires_grad:
        return "the decay trains (a bound kappa would take no gradient)"
    return None


def _torch_decay_map(node: DENode, dt: float) -> Callable:
    """:math:`y(t) = \\kappa y(t-1) + I(t)` by :meth:`DecayMap.step` itself, with
    :math:`\\kappa` computed once per run (the model's step computes it at every step)."""
    dm = node.decay_map()
    j = node.input_names.index(dm.input)

    def for_run() -> Callable:
        kappa, step = torch.as_tensor(dm.kappa(dt)).detach(), dm.step

        def k(s: tuple, *i: Tensor) -> tuple[Tensor, tuple]:
            y = step(s[0], i[j], kappa)
            return y, (y,)

        return k

    return _per_run_only(for_run)


def _generic(node: DENode, dt: float) -> Callable:
    return node.kernel(dt)


#: The registered kernels, fastest first; the generic step is the last and serves all.
KERNELS: list[NodeKernel] = [
    NodeKernel(
        "native LIF step",
        "the LIF-type step with its refractory countdown in C, one pass over the units",
        _lif_declared,
        _native_lif_usable,
        _lif_kernel(native=True),
    ),
    NodeKernel(
        "torch LIF step",
        "the LIF-type step as plain torch comparisons (no surrogate)",
        _lif_declared,
        _no_grad,
        _lif_kernel(native=False),
    ),
    NodeKernel(
        "torch ALIF step",
        "the adaptive-threshold LIF step as plain torch comparisons (no surrogate)",
        _alif_declared,
        _no_grad,
        _lif_kernel(native=False, adaptive=True),
    ),
    NodeKernel(
        "LIF step with gradients",
        "the LIF-type step with its surrogate gradient, without the refractory work",
        _grad_lif_declared,
        _grad_lif_usable,
        _grad_lif,
    ),
    NodeKernel(
        "native leaky-tanh step",
        "the leaky tanh map in C, one pass over the units",
        _leaky_tanh_declared,
        _native_no_grad,
        _native_leaky_tanh,
    ),
    NodeKernel(
        "torch leaky map",
        "the leaky map with its constants bound once",
        _leaky_declared,
        _always,
        _torch_leaky_map,
    ),
    NodeKernel(
        "torch decay map",
        "the decaying map y = kappa y + I with kappa computed once per run",
        _decay_declared,
        _decay_usable,
        _torch_decay_map,
        binds=False,
    ),
    NodeKernel(
        "generic", "the model's step (integrate, event, output)", _always, _always, _generic
    ),
]


def register_kernel(kernel: NodeKernel, before: str = "generic") -> None:
    """Add ``kernel`` to the registry, ahead of the kernel named ``before`` (by default
    the generic step: it is tried after every faster built-in kernel)."""
    if not isinstance(kernel, NodeKernel):
        raise TypeError(f"register_kernel: expected a NodeKernel, got {type(kernel).__name__}")
    names = [k.name for k in KERNELS]
    if kernel.name in names:
        raise ValueError(f"register_kernel: a kernel named {kernel.name!r} is registered already")
    if before not in names:
        raise ValueError(f"register_kernel: no kernel named {before!r}; kernels are {names}")
    KERNELS.insert(names.index(before), kernel)


def build_kernel(name: str, node: DENode, dt: float) -> Callable[..., tuple[Tensor, tuple]]:
    """The registered kernel ``name`` built for ``node`` (for tests and debugging: the
    plan chooses by itself); a ``ValueError`` says why the node lacks what it needs."""
    kernel = next((k for k in KERNELS if k.name == name), None)
    if kernel is None:
        raise ValueError(
            f"build_kernel: no kernel {name!r}; kernels are {[k.name for k in KERNELS]}"
        )
    why = kernel.declared(node)
    if why is not None:
        raise ValueError(f"build_kernel: kernel {name!r} cannot serve {type(node).__name__}: {why}")
    return for_run(kernel.build(node, dt))


def for_run(built: Callable) -> Callable:
    """The step a built kernel gives one run: ``built.per_run()`` for a kernel that checks
    or computes something per run, else the kernel itself."""
    return built.per_run() if hasattr(built, "per_run") else built


def candidates(node: DENode) -> list[tuple[NodeKernel, str | None]]:
    """Every registered kernel with why the node lacks the structure it needs (``None``:
    it has it), fastest first."""
    return [(k, k.declared(node)) for k in KERNELS]


def choose(
    found: list[tuple[NodeKernel, str | None]], node: DENode, ctx: Context
) -> tuple[NodeKernel, list[tuple[str, str]]]:
    """The first kernel of ``found`` (:func:`candidates`) the node and the run allow, and
    for each faster one, ``(name, why not)``."""
    passed: list[tuple[str, str]] = []
    for kernel, why in found:
        why = why or kernel.usable(node, ctx)
        if why is None:
            return kernel, passed
        passed.append((kernel.name, why))
    raise AssertionError("the generic kernel serves every node")  # pragma: no cover
