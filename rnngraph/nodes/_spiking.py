r"""Spiking neuron models: LIF, ALIF, IAF (Brian2/Rockpool), QIF, Izhikevich, AdEx and EIF.

Every model here follows one step rule (the time-step contract of the package):

1. A unit is *refractory* at step :math:`k` when its countdown ``ref`` (carried in the state)
   is positive. A refractory unit holds its membrane potential :math:`v` and ignores its
   input for that step; it cannot spike. Other variables (adaptation, synaptic traces) keep
   evolving.
2. The continuous variables are integrated over the step with the step's input, held
   constant over the step (``euler``, ``rk4`` or ``exp_euler``).
3. A unit spikes when :math:`v` is strictly above its threshold: :math:`z = H(x)` with
   :math:`x = (v - \vartheta) / (\vartheta - v_{reset})` and :math:`H(x) = 1` for
   :math:`x > 0`. The backward pass uses the surrogate gradient chosen by
   ``surrogate=`` (:mod:`rnngraph.nodes._surrogate`).
4. Reset: ``reset="value"`` sets :math:`v \leftarrow v_{reset}` at once;
   ``reset="subtract"`` (LIF, ALIF, IAF) subtracts :math:`(\vartheta - v_{reset})` at the
   *next* step, after the leak (Bellec et al.'s form, see :class:`LIF`).
5. Refractoriness counts whole steps, with Brian2's rule for every model. Brian2 keeps the
   time of the last spike and, at the start of every step, sets ``not_refractory =
   timestep(t - lastspike, dt) >= timestep(refractory, dt)`` with ``timestep(t, dt) =
   int((t + 1e-3 dt) / dt)`` (truncation; the :math:`10^{-3} dt` guards multiples of
   ``dt`` against rounding); a refractory unit neither integrates :math:`v` nor spikes. So
   a unit that spikes at step :math:`k` is held at steps :math:`k+1, \dots, k+R-1` and
   integrates again from step :math:`k+R`, with

   .. math:: R = \left\lfloor \frac{refractory + 10^{-3}\,dt}{dt} \right\rfloor

   (computed in float64): :math:`\max(R - 1, 0)` held steps. For example, with ``dt = 1``:
   ``refractory`` 0, 0.5, 1, 1.4 or 1.5 holds no step, 2, 2.5 or 2.9 holds 1, 19.99 holds
   18, 20 holds 19. A spike sets the countdown ``ref`` to :math:`\max(R-1, 0)`; otherwise it
   decreases by one, down to 0. While held, :math:`v` has zero derivative in every stage of
   the integrator (Brian2's ``(unless refractory)``), so the other variables (adaptation,
   recovery, synaptic traces) integrate against the held :math:`v`.

The spike :math:`z` (0/1 floats) is a state variable, stored, never derived from other
state; it is the node's output. With ``detach_reset=True`` (the default, as in snnTorch and
RectiPy) the reset does not carry gradient through :math:`z`.

State variables are ``(B, n)`` tensors; inputs that no edge feeds are ``0.0``.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections import namedtuple
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
from torch import Tensor

from .._checks import as_step, describe
from ._base import (
    AFFINE_GAINS,
    INTEGRATORS,
    DENode,
    LinearPart,
    affine_gain,
    affine_step,
)
from ._surrogate import SURROGATES, Surrogate, get_surrogate

__all__ = [
    "ALIF",
    "EIF",
    "IAF",
    "LIF",
    "QIF",
    "AdEx",
    "ALIFParameters",
    "ALIFState",
    "Izhikevich",
    "LIFParameters",
    "LIFState",
    "SpikingNode",
    "alif_step",
    "lif_step",
]

#: Reset rules by name.
RESET_MODES = ("value", "subtract")

_DEFAULT_SPIKE = get_surrogate("fast_sigmoid")


class _ODE(NamedTuple):
    """What an integrator reads of a model: its state type, right-hand side and decay rates."""

    State: type
    rhs: Callable[..., tuple]
    decay: Callable[..., tuple]


# --------------------------------------------------------------------------------------
# shared pieces of the step rule
# --------------------------------------------------------------------------------------


def refractory_steps(refractory: Any, dt: float) -> Tensor:
    r"""Steps a unit is held after the step it spiked in, by Brian2's rule (float64):
    :math:`\max(R - 1, 0)` with :math:`R = \lfloor (refractory + 10^{-3} dt) / dt \rfloor`,
    Brian2's ``timestep(refractory, dt)``; see the module docstring.

    Examples
    --------
    >>> refractory_steps([0.0, 1.5, 2.0, 2.5, 19.99], 1.0).tolist()
    [0.0, 0.0, 1.0, 1.0, 18.0]
    """
    r = refractory.detach() if isinstance(refractory, Tensor) else refractory
    r = torch.as_tensor(r, dtype=torch.float64)
    dt = float(dt)
    return (torch.floor((r + 1e-3 * dt) / dt) - 1.0).clamp(min=0.0)


def hold_steps(refractory: Any, dt: float, like: Tensor) -> Tensor:
    """:func:`refractory_steps` in the dtype and on the device of ``like``."""
    return refractory_steps(refractory, dt).to(dtype=like.dtype, device=like.device)


def _fire(x: Tensor, held: Tensor, spike_fn: Callable[[Tensor], Tensor]) -> tuple[Tensor, Tensor]:
    """Spikes ``z`` (with surrogate gradient; zero, with zero gradient, while held) and the
    boolean spike mask."""
    z = spike_fn(x).masked_fill(held, 0.0)
    return z, (x > 0) & ~held


def _reset_to(v: Tensor, z: Tensor, v_reset: Any, detach: bool) -> Tensor:
    """``v <- v_reset`` where ``z = 1``: ``(1 - z) v + z v_reset``, exact for 0/1 spikes."""
    zr = z.detach() if detach else z
    return (1.0 - zr) * v + zr * v_reset


def _countdown(ref: Tensor, spiked: Tensor, n_hold: Tensor) -> Tensor:
    return torch.where(spiked, n_hold, (ref - 1.0).clamp(min=0.0))


#: Ranges of the values :func:`_check` accepts (as ``DENode.add_param``'s domains): the
#: description in error messages and the test; NaN and inf fail every rule.
_RULES: dict[str, tuple[str, Callable[[float], bool]]] = {
    "finite": ("finite", lambda x: True),
    "positive": ("finite and > 0", lambda x: x > 0),
    "nonnegative": ("finite and >= 0", lambda x: x >= 0),
}

#: ``DENode.add_param`` domain of each rule.
_DOMAIN = {"finite": "real", "positive": "positive", "nonnegative": "nonnegative"}


def _check(owner: str, name: str, value: Any, rule: str = "finite") -> float:
    """A model option that is one real number (not a per-unit parameter: those go through
    ``DENode.add_param`` with a domain), checked against ``rule``; returned as a float.

    Errors name ``owner`` (the public call), the option, what was expected and what came.
    """
    text, ok = _RULES[rule]
    if isinstance(value, Tensor | np.ndarray):  # a 0-d tensor or array of a real dtype
        if isinstance(value, Tensor):
            real = not (value.dtype.is_complex or value.dtype == torch.bool)
        else:
            real = value.dtype.kind in "iuf"
        if value.ndim != 0 or not real:
            raise TypeError(f"{owner}: {name} must be a real number, got {describe(value)}")
        value = value.item()
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {describe(value)}")
    x = float(value)
    if not (math.isfinite(x) and ok(x)):
        raise ValueError(f"{owner}: {name} must be {text}, got {value!r}")
    return x


# --------------------------------------------------------------------------------------
# pure step functions: LIF and ALIF
# --------------------------------------------------------------------------------------


class LIFParameters(NamedTuple):
    """Parameters of :func:`lif_step` (scalars or ``(n,)`` tensors)."""

    tau_m: Any = 20.0
    v_rest: Any = 0.0
    v_th: Any = 1.0
    v_reset: Any = 0.0
    r_m: Any = 1.0
    refractory: Any = 0.0


class LIFState(NamedTuple):
    """State of :func:`lif_step`: membrane ``v``, spike ``z``, refractory countdown ``ref``."""

    v: Tensor
    z: Tensor
    ref: Tensor


class ALIFParameters(NamedTuple):
    """Parameters of :func:`alif_step` (scalars or ``(n,)`` tensors)."""

    tau_m: Any = 20.0
    tau_a: Any = 2000.0
    beta: Any = 0.07
    v_rest: Any = 0.0
    v_th: Any = 1.0
    v_reset: Any = 0.0
    r_m: Any = 1.0
    refractory: Any = 0.0


class ALIFState(NamedTuple):
    """State of :func:`alif_step`: ``v``, adaptation ``a``, spike ``z``, countdown ``ref``."""

    v: Tensor
    a: Tensor
    z: Tensor
    ref: Tensor


_Membrane = namedtuple("_Membrane", ["v"])
_Current = namedtuple("_Current", ["I"])


def _membrane(v: Tensor, current: Any, p: Any, dt: float, integrator: str) -> Tensor:
    r"""One step of :math:`\tau_m \dot v = (v_{rest} - v) + R I` with the named integrator:
    the affine map (:func:`~rnngraph.nodes.affine_step`) for the built-in integrators, else
    the integrator applied to the right-hand side."""
    u = p.v_rest + p.r_m * current  # the fixed point under the step's input
    if integrator in AFFINE_GAINS:
        return affine_step(v, u, affine_gain(integrator, dt, p.tau_m, v))

    def rhs(s: tuple, i: tuple) -> tuple:
        return ((p.v_rest - s.v + p.r_m * i.I) / p.tau_m,)

    def decay(s: tuple) -> tuple:
        return (1.0 / p.tau_m,)

    try:
        integrate = INTEGRATORS[integrator]
    except KeyError:
        raise ValueError(
            f"unknown integrator {integrator!r}; valid names are {sorted(INTEGRATORS)}"
        ) from None
    return integrate(_ODE(_Membrane, rhs, decay), _Membrane(v), _Current(current), dt).v


def _lif_membrane_and_reset(
    i: Any,
    state: Any,
    p: Any,
    dt: float,
    integrator: str,
    reset: str,
    detach_reset: bool,
) -> tuple[Tensor, Tensor]:
    """Integrated, held and (for ``subtract``) reset membrane; and the held mask."""
    held = state.ref > 0
    v = torch.where(held, state.v, _membrane(state.v, i, p, dt, integrator))
    if reset == "subtract":
        zp = state.z.detach() if detach_reset else state.z
        v = v - (p.v_th - p.v_reset) * zp
    elif reset != "value":
        raise ValueError(f"unknown reset {reset!r}; valid modes are {list(RESET_MODES)}")
    return v, held


def lif_step(
    i: Any,
    state: Any,
    p: LIFParameters = LIFParameters(),  # noqa: B008 - an immutable NamedTuple
    dt: float = 1.0,
    *,
    integrator: str = "exp_euler",
    reset: str = "value",
    spike_fn: Callable[[Tensor], Tensor] | None = None,
    detach_reset: bool = True,
) -> tuple[Tensor, Any]:
    r"""One step of a population of leaky integrate-and-fire units (pure function).

    .. math::

        \tau_m \dot v = (v_{rest} - v) + R\,I, \qquad
        z = H\!\left(\frac{v - v_{th}}{v_{th} - v_{reset}}\right)

    See :class:`LIF` for the full rule (refractoriness, reset modes).

    Parameters
    ----------
    i : tensor or float
        Input current :math:`I`, ``(B, n)`` (or anything that broadcasts).
    state : LIFState or the node's state
        ``v``, ``z``, ``ref``: ``(B, n)`` each.
    p : LIFParameters
        Parameters.
    dt : float
        Step size, in the unit of ``tau_m``.
    integrator : str
        ``"exp_euler"`` (exact for piecewise-constant input), ``"euler"`` or ``"rk4"``.
    reset : str
        ``"value"`` or ``"subtract"``.
    spike_fn : callable, optional
        The spike function (a :class:`Surrogate`); default ``fast_sigmoid`` with scale 25.
    detach_reset : bool
        Cut the gradient through :math:`z` in the reset.

    Returns
    -------
    z : Tensor
        Spikes ``(B, n)``.
    state : same type as ``state``
        The new state.
    """
    spike_fn = _DEFAULT_SPIKE if spike_fn is None else spike_fn
    v, held = _lif_membrane_and_reset(i, state, p, dt, integrator, reset, detach_reset)
    z, spiked = _fire((v - p.v_th) / (p.v_th - p.v_reset), held, spike_fn)
    if reset == "value":
        v = _reset_to(v, z, p.v_reset, detach_reset)
    ref = _countdown(state.ref, spiked, hold_steps(p.refractory, dt, v))
    return z, type(state)(v, z, ref)


def alif_step(
    i: Any,
    state: Any,
    p: ALIFParameters = ALIFParameters(),  # noqa: B008 - an immutable NamedTuple
    dt: float = 1.0,
    *,
    integrator: str = "exp_euler",
    reset: str = "subtract",
    spike_fn: Callable[[Tensor], Tensor] | None = None,
    detach_reset: bool = True,
) -> tuple[Tensor, Any]:
    r"""One step of a population of adaptive LIF units (Bellec et al.; pure function).

    .. math::

        a(t) = \rho\,a(t-1) + z(t-1), \quad \rho = e^{-dt/\tau_a}, \qquad
        A(t) = v_{th} + \beta\,a(t), \qquad
        z(t) = H\!\left(\frac{v(t) - A(t)}{v_{th} - v_{reset}}\right)

    with the membrane of :func:`lif_step`. See :class:`ALIF`. Same arguments as
    :func:`lif_step`, with :class:`ALIFParameters` and :class:`ALIFState`
    (``v``, ``a``, ``z``, ``ref``).
    """
    spike_fn = _DEFAULT_SPIKE if spike_fn is None else spike_fn
    tau_a = p.tau_a
    rho = torch.exp(-dt / tau_a) if isinstance(tau_a, Tensor) else math.exp(-dt / tau_a)
    a = rho * state.a + state.z
    v, held = _lif_membrane_and_reset(i, state, p, dt, integrator, reset, detach_reset)
    threshold = p.v_th + p.beta * a
    z, spiked = _fire((v - threshold) / (p.v_th - p.v_reset), held, spike_fn)
    if reset == "value":
        v = _reset_to(v, z, p.v_reset, detach_reset)
    ref = _countdown(state.ref, spiked, hold_steps(p.refractory, dt, v))
    return z, type(state)(v, a, z, ref)


# --------------------------------------------------------------------------------------
# the module shell
# --------------------------------------------------------------------------------------


class SpikingNode(DENode):
    """Base of the spiking models: a :class:`DENode` whose state ends in the spike ``z`` and
    the refractory countdown ``ref`` and whose output is ``z``.

    A subclass lists its continuous variables in ``ode_vars`` (``state_vars`` is
    ``ode_vars + ("z", "ref")``); its :meth:`rhs` and :meth:`decay` cover ``ode_vars`` only,
    and its :meth:`step` applies the rule of the module docstring. ``threshold_name`` names
    the threshold parameter (``v_th``, ``v_thresh`` or ``v_peak``).

    Parameters
    ----------
    n : int
        Number of units.
    reset : str
        ``"value"`` or, where the model allows it, ``"subtract"``.
    refractory : float or tensor
        Refractory period (>= 0), in the unit of ``dt``: a spike holds the unit for
        :func:`refractory_steps` ``(refractory, dt)`` whole steps (Brian2's rule, see the
        module docstring).
    surrogate : str or Surrogate
        Spike function: a name of ``SURROGATES`` (``"fast_sigmoid"``, ``"triangle"``,
        ``"atan"``, ``"sigmoid"``) or a :class:`Surrogate` from ``get_surrogate``.
    surrogate_scale : float, optional
        Scale of the named surrogate (default: the surrogate's own default).
    detach_reset : bool
        Cut the gradient through ``z`` in the reset of ``v`` (default ``True``).
    integrator, train, init
        As for :class:`DENode`.
    """

    ode_vars: ClassVar[tuple[str, ...]] = ("v",)
    state_vars: ClassVar[tuple[str, ...]] = ("v", "z", "ref")
    output_var: ClassVar[str] = "z"
    reset_modes: ClassVar[tuple[str, ...]] = ("value",)
    threshold_name: ClassVar[str] = "v_th"
    #: jumps of integrated variables in the spike step: variable -> the name of the
    #: parameter added per spike, or a number (e.g. ``{"u": "kappa", "s": 1.0}``)
    jumps: ClassVar[Mapping[str, str | float]] = MappingProxyType({})
    #: an adaptive threshold ``(var, tau, beta)`` (names): ``var`` decays exactly with time
    #: constant ``tau`` and receives the previous step's spike,
    #: :math:`a(t) = e^{-dt/\tau} a(t-1) + z(t-1)`; the threshold is
    #: :math:`\vartheta + \beta a(t)`. ``var`` sits between ``ode_vars`` and ``z``.
    adaptation: ClassVar[tuple[str, str, str] | None] = None
    #: the output is events (0/1 spikes): dense edges from it may add only the rows of the
    #: units that fired (the plan's event-driven edge kernel)
    emits_events: ClassVar[bool] = True
    FINAL: ClassVar[Mapping[str, str]] = MappingProxyType(
        {
            **DENode.FINAL,
            "event": "the event rule's declarations (threshold_name, reset_modes, jumps, "
            "adaptation)",
        }
    )
    ODEState: ClassVar[type]
    _core: ClassVar[bool] = True
    _spiking: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        extra = (cls.adaptation[0],) if cls.adaptation else ()
        if tuple(cls.state_vars) != (*cls.ode_vars, *extra, "z", "ref"):
            raise TypeError(
                f"{cls.__name__}.state_vars must be ode_vars + "
                f"{'(adaptation variable,) + ' if extra else ''}('z', 'ref'), got "
                f"{cls.state_vars}"
            )
        if "v" not in cls.ode_vars:
            raise TypeError(f"{cls.__name__}.ode_vars must contain the membrane 'v'")
        for name in ("map", "leaky_map", "decay_map"):
            if any(name in k.__dict__ for k in cls.__mro__ if k.__dict__.get("_core") is not True):
                raise TypeError(
                    f"{cls.__name__} defines {name}(); a spiking model integrates its ode_vars: "
                    "define rhs() or linear_part()"
                )
        unknown = [v for v in cls.jumps if v not in cls.ode_vars]
        if unknown:
            raise TypeError(f"{cls.__name__}.jumps names {unknown}, which are not ode_vars")
        cls.ODEState = namedtuple(f"{cls.__name__}ODE", cls.ode_vars)

    def __init__(
        self,
        n: int,
        *,
        reset: str = "value",
        surrogate: str | Surrogate = "fast_sigmoid",
        surrogate_scale: float | None = None,
        detach_reset: bool = True,
        integrator: str | None = None,
        train: tuple[str, ...] | list[str] | None = None,
        init: Any = None,
        **unknown: Any,
    ) -> None:
        owner = type(self).__name__
        if unknown:  # a model passes its **kwargs on to here: name it and its options
            valid = [
                p.name
                for c in (type(self), SpikingNode, DENode)
                for p in inspect.signature(c.__init__).parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
            ]
            raise TypeError(
                f"{owner}: unknown keyword argument(s) {sorted(unknown)}; valid ones are "
                f"{list(dict.fromkeys(valid))}"
            )
        super().__init__(n, integrator=integrator, train=train, init=init)
        if not isinstance(reset, str) or reset not in self.reset_modes:
            raise ValueError(
                f"{owner}: unknown reset {reset!r}; valid modes for this model are "
                f"{list(self.reset_modes)}"
            )
        self.reset_mode = reset
        if not isinstance(detach_reset, bool | np.bool_):
            raise TypeError(f"{owner}: detach_reset must be True or False, got {detach_reset!r}")
        self.detach_reset = bool(detach_reset)
        if surrogate_scale is not None:
            surrogate_scale = _check(owner, "surrogate_scale", surrogate_scale, "positive")
        if isinstance(surrogate, Surrogate):
            if surrogate_scale is not None:
                raise TypeError(
                    f"{owner}: surrogate_scale goes with a surrogate name; this Surrogate "
                    f"has its own scale ({surrogate!r})"
                )
            self.spike_fn = surrogate
        elif isinstance(surrogate, str):
            if surrogate not in SURROGATES:
                raise ValueError(
                    f"{owner}: unknown surrogate {surrogate!r}; valid names are "
                    f"{sorted(SURROGATES)}"
                )
            self.spike_fn = get_surrogate(surrogate, scale=surrogate_scale)
        else:
            raise TypeError(
                f"{owner}: surrogate must be a name or a Surrogate, got {type(surrogate).__name__}"
            )

    def kernel_options(self) -> tuple:
        """:meth:`DENode.kernel_options`, and the event rule's: reset mode, whether the
        reset is detached, the surrogate."""
        return (*super().kernel_options(), self.reset_mode, self.detach_reset, id(self.spike_fn))

    def finish(self, refractory: Any = 0.0, v_init: Any = None) -> None:
        """The last call of a spiking model's ``__init__``: add the refractory period
        (``>= 0``, in the unit of ``dt``) and the default initial ``v``, check that the
        threshold is above ``v_reset`` and that ``train=`` names parameters the model has."""
        owner = type(self).__name__
        self._param("refractory", refractory, "nonnegative")
        if v_init is not None and "v" not in self._init:
            self.set_init("v", v_init)
        th, rs = getattr(self, self.threshold_name), self.v_reset
        if not bool((th > rs).all()):
            raise ValueError(
                f"{owner}: {self.threshold_name} must be above v_reset, got "
                f"{self.threshold_name}={th.tolist()} and v_reset={rs.tolist()}"
            )
        self.check_train()

    def _param(self, name: str, value: Any, rule: str = "finite") -> None:
        """Register parameter ``name``: a real scalar or ``(n,)`` array, finite, and positive
        or non-negative by ``rule`` (checked here and by ``Network.set_var``)."""
        self.add_param(name, value, domain=_DOMAIN[rule])

    def ode_names(self) -> tuple[str, ...]:
        return self.ode_vars

    def _ode(self, held: Tensor | None = None) -> _ODE:
        r"""The model's ODE; with ``held``, :math:`\dot v = 0` for the held units."""
        if held is None:
            return _ODE(self.ODEState, self.rhs, self.decay)
        j = self.ode_vars.index("v")
        rhs = self.rhs

        def rhs_held(s: tuple, i: tuple) -> tuple:
            d = rhs(s, i)
            return (*d[:j], torch.where(held, 0.0, d[j]), *d[j + 1 :])

        return _ODE(self.ODEState, rhs_held, self.decay)

    def integrate(self, s: tuple, i: tuple, dt: float) -> tuple:
        """The continuous variables after one step, a held unit's :math:`v` kept: the
        affine map of a declared linear part, else the integrator on :meth:`rhs`, where a
        held unit's :math:`v` has zero derivative in every stage (Brian2's ``(unless
        refractory)``), so that the variables coupled to it see the held value (Euler and
        exponential Euler evaluate the derivatives at the start of the step only, where
        :math:`v` is the held value anyway). Spike, countdown and adaptation are left to
        :meth:`event`."""
        k = len(self.ode_vars)
        x = self.ODEState(*s[:k])
        held = s.ref > 0
        lin, _ = self.structure("linear_part")
        if lin is not None and self.integrator in AFFINE_GAINS:
            c = self._affine(lin, x, i, dt)
        elif self.integrator in ("euler", "exp_euler"):
            c = list(self._integrate(self._ode(), x, i, dt))
        else:
            c = list(self._integrate(self._ode(held), x, i, dt))
        j = self.ode_vars.index("v")
        c[j] = torch.where(held, s.v, c[j])
        return self.State(*c, *s[k:])

    def event(self, before: tuple, after: tuple, dt: float) -> tuple:
        """The event rule of the module docstring, from the declarations: the reset by
        subtraction of the previous spike, the adaptive threshold, the spike, the reset to
        ``v_reset``, the jumps and the refractory countdown."""
        th, rs = getattr(self, self.threshold_name), self.v_reset
        held, zp = before.ref > 0, before.z
        values = list(after)
        v = after.v
        if self.reset_mode == "subtract":  # the previous step's spike, after the leak
            v = v - (th - rs) * (zp.detach() if self.detach_reset else zp)
        threshold = th
        if self.adaptation is not None:
            var, tau, beta = self.adaptation
            a = torch.exp(-dt / getattr(self, tau)) * getattr(before, var) + zp
            values[self.state_vars.index(var)] = a
            threshold = th + getattr(self, beta) * a
        z, spiked = _fire((v - threshold) / (th - rs), held, self.spike_fn)
        if self.reset_mode == "value":
            v = _reset_to(v, z, rs, self.detach_reset)
        values[self.state_vars.index("v")] = v
        for var, amount in self.jumps.items():
            j = self.state_vars.index(var)
            values[j] = values[j] + (z if amount == 1.0 else self._amount(amount) * z)
        values[-2] = z
        values[-1] = _countdown(before.ref, spiked, hold_steps(self.refractory, dt, v))
        return self.State(*values)

    def _amount(self, amount: str | float) -> Any:
        """A jump's size: the parameter it names, or the number."""
        return getattr(self, amount) if isinstance(amount, str) else amount

    def randomize_state(self, seed: int | None = None, batch_size: int | None = None) -> Tensor:
        """Draw ``v`` uniformly between ``v_reset`` and the threshold and make it the initial
        value of ``v`` (Rockpool's ``randomize_state``).

        The draw is ``(n,)`` (or ``(batch_size, n)``), from a generator seeded with ``seed``
        (torch's global generator when ``None``). It applies from the next start of a run:
        call ``net.reset()``, or ``net.set_var(label, "v", value)`` to change only the held
        state.

        Returns
        -------
        Tensor
            The drawn values (float64).
        """
        gen = None if seed is None else torch.Generator().manual_seed(int(seed))
        shape = (self.n,) if batch_size is None else (int(batch_size), self.n)
        u = torch.rand(shape, generator=gen, dtype=torch.float64)
        lo = self.v_reset.detach().to("cpu", torch.float64)
        hi = getattr(self, self.threshold_name).detach().to("cpu", torch.float64)
        v = lo + u * (hi - lo)
        self.set_init("v", v)
        return v

    def extra_repr(self) -> str:
        reset = f", reset={self.reset_mode!r}" if len(self.reset_modes) > 1 else ""
        return f"{super().extra_repr()}{reset}, surrogate={self.spike_fn!r}"


class LIF(SpikingNode):
    r"""Leaky integrate-and-fire units.

    .. math::

        \tau_m \frac{dv}{dt} = (v_{rest} - v) + R\,I, \qquad
        z = H\!\left(\frac{v - v_{th}}{v_{th} - v_{reset}}\right)

    **Threshold**: a unit spikes when :math:`v > v_{th}` (strict), after the step's
    integration.

    **Reset**: ``reset="value"`` sets :math:`v = v_{reset}` in the spike step;
    ``reset="subtract"`` keeps :math:`v` above threshold in the spike step and subtracts
    :math:`(v_{th} - v_{reset})\,z(t)` in the next step after the leak:

    .. math:: v(t+1) = \Phi_{dt}\big(v(t), I(t+1)\big) - (v_{th} - v_{reset})\,z(t).

    **Refractoriness** (Brian2's rule, ``timestep(t - lastspike, dt) >=
    timestep(refractory, dt)``): a unit that spikes at step :math:`k` is held at steps
    :math:`k+1, \dots, k+R-1` (:math:`v` keeps its value, the input is ignored, no spike)
    and integrates again from step :math:`k+R`, with the truncation
    :math:`R = \lfloor (refractory + 10^{-3} dt)/dt \rfloor`: :math:`\max(R-1, 0)` held
    steps. Example with ``dt = 0.5``: ``refractory`` 0.5 or 0.75 holds nothing, 1.0 or 1.2
    holds 1 step, 2.1 holds 3 (:math:`R = 4`).

    **Bellec et al. (e-prop) form**: with ``integrator="exp_euler"``, ``v_rest = 0``,
    ``v_reset = 0``, ``reset="subtract"`` and ``r_m = 1 / (1 - exp(-dt / tau_m))``,
    one step is :math:`v(t+1) = \alpha v(t) + I(t+1) - v_{th} z(t)` with
    :math:`\alpha = e^{-dt/\tau_m}` (exact integration of the leak, piecewise-constant input);
    :meth:`LIF.bellec` builds it. The ``triangle`` surrogate with scale :math:`\gamma` then
    gives Bellec's pseudo-derivative :math:`(\gamma/v_{th}) \max(0, 1 - |v - v_{th}|/v_{th})`.

    Parameters
    ----------
    n : int
        Number of units.
    tau_m : float or tensor
        Membrane time constant (> 0); default 20 (ms when ``dt`` is in ms).
    v_rest, v_th, v_reset : float or tensor
        Resting potential, threshold, reset value (finite, ``v_th > v_reset``); defaults
        0, 1, 0 (dimensionless).
    r_m : float or tensor
        Input resistance :math:`R` (> 0); default 1.
    refractory : float or tensor
        Refractory period (>= 0), in the unit of ``dt``; default 0.
    reset : str
        ``"value"`` (default) or ``"subtract"``.
    surrogate, surrogate_scale, detach_reset
        Spike function and reset gradient, see :class:`SpikingNode`.
    integrator : str
        ``"exp_euler"`` (default; exact for piecewise-constant input), ``"euler"``,
        ``"rk4"``.

    Shape
    -----
    Input ``I``: ``(B, n)``. State ``v``, ``z``, ``ref``: ``(B, n)``. Output ``z``: ``(B, n)``
    of 0/1 floats. ``v`` starts at ``v_rest`` unless ``init`` says otherwise.

    As equations (:func:`rnngraph.equation_model` of them equals this class to 1e-12
    in float64, spike for spike)::

        dv/dt = (v_rest - v + r_m*I)/tau_m : 1 (unless refractory)
        threshold: v > v_th
        reset: v = v_reset

    """

    ode_vars = ("v",)
    state_vars = ("v", "z", "ref")
    input_names = ("I",)
    default_integrator = "exp_euler"
    reset_modes = RESET_MODES

    def __init__(
        self,
        n: int,
        tau_m: Any = 20.0,
        v_rest: Any = 0.0,
        v_th: Any = 1.0,
        v_reset: Any = 0.0,
        r_m: Any = 1.0,
        refractory: Any = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(n, **kwargs)
        self._param("tau_m", tau_m, "positive")
        self._param("v_rest", v_rest)
        self._param("v_th", v_th)
        self._param("v_reset", v_reset)
        self._param("r_m", r_m, "positive")
        self.finish(refractory, v_rest)

    @classmethod
    def bellec(
        cls, n: int, dt: float, tau_m: float = 20.0, v_th: float = 0.6, **kwargs: Any
    ) -> LIF:
        r"""LIF units in the form of Bellec et al. 2020 (doi:10.1038/s41467-020-17236-y):
        :math:`v(t+1) = \alpha v(t) + I(t+1) - v_{th} z(t)`, triangle surrogate with
        :math:`\gamma = 0.3`. ``dt`` must be the network's step."""
        dt = as_step("LIF.bellec", "dt", dt)
        tau_m = as_step("LIF.bellec", "tau_m", tau_m)
        r_m = 1.0 / (1.0 - math.exp(-dt / tau_m))
        kwargs.setdefault("surrogate", "triangle")
        return cls(
            n,
            tau_m=tau_m,
            v_rest=0.0,
            v_th=v_th,
            v_reset=0.0,
            r_m=r_m,
            reset="subtract",
            integrator="exp_euler",
            **kwargs,
        )

    def params(self) -> LIFParameters:
        """The parameters as an :class:`LIFParameters` (for :func:`lif_step`)."""
        return LIFParameters(
            self.tau_m, self.v_rest, self.v_th, self.v_reset, self.r_m, self.refractory
        )

    def linear_part(self) -> dict[str, LinearPart]:
        r""":math:`\tau_m \dot v = v_{rest} + R\,I - v`."""
        return {"v": LinearPart(self.tau_m, self.v_rest, {"I": self.r_m})}


class ALIF(SpikingNode):
    r"""Adaptive LIF units (Bellec et al. 2018, 2020): LIF with a threshold that rises with
    each spike and relaxes with time constant :math:`\tau_a`.

    .. math::

        \tau_m \frac{dv}{dt} &= (v_{rest} - v) + R\,I \\
        a(t) &= \rho\,a(t-1) + z(t-1), \qquad \rho = e^{-dt/\tau_a} \\
        A(t) &= v_{th} + \beta\,a(t), \qquad
        z(t) = H\!\left(\frac{v(t) - A(t)}{v_{th} - v_{reset}}\right)

    The adaptation :math:`a` is per unit and per batch element (state ``a``, ``(B, n)``); it
    is integrated exactly whatever the integrator of :math:`v`, keeps decaying while the unit
    is refractory, and receives the spike with its surrogate gradient (the reset does not,
    when ``detach_reset``). **Threshold** :math:`v > A` (strict). **Reset** as for
    :class:`LIF`. **Refractoriness** by Brian2's rule, as for :class:`LIF`:
    :math:`\max(R-1, 0)` held steps after a spike, :math:`R = \lfloor (refractory +
    10^{-3} dt)/dt \rfloor` (e.g. ``refractory = 1.5 dt`` holds none, ``2.5 dt`` holds 1);
    :math:`a` keeps decaying while held. The default reset is ``"subtract"``
    (subtracting :math:`v_{th} - v_{reset}`, the baseline gap, in the next step), Bellec's
    rule. With ``r_m = 1/(1 - exp(-dt/tau_m))``, ``v_rest = v_reset = 0`` this is Bellec's
    ALIF exactly.

    Parameters
    ----------
    n : int
        Number of units.
    tau_m : float or tensor
        Membrane time constant (> 0); default 20 (ms).
    tau_a : float or tensor
        Adaptation time constant (> 0); default 2000 (ms).
    beta : float or tensor
        Adaptation strength (>= 0; threshold increase per unit of :math:`a`); default 0.07
        (voltage units; :math:`a` jumps by 1 per spike).
    v_rest, v_th, v_reset, r_m, refractory
        As for :class:`LIF` (``r_m > 0``, ``refractory >= 0``); defaults 0, 1, 0, 1, 0.
    reset : str
        ``"subtract"`` (default) or ``"value"``.

    Shape
    -----
    Input ``I``: ``(B, n)``. State ``v``, ``a``, ``z``, ``ref``: ``(B, n)``. Output ``z``.
    """

    ode_vars = ("v",)
    state_vars = ("v", "a", "z", "ref")
    adaptation = ("a", "tau_a", "beta")
    input_names = ("I",)
    default_integrator = "exp_euler"
    reset_modes = RESET_MODES

    def __init__(
        self,
        n: int,
        tau_m: Any = 20.0,
        tau_a: Any = 2000.0,
        beta: Any = 0.07,
        v_rest: Any = 0.0,
        v_th: Any = 1.0,
        v_reset: Any = 0.0,
        r_m: Any = 1.0,
        refractory: Any = 0.0,
        reset: str = "subtract",
        **kwargs: Any,
    ) -> None:
        super().__init__(n, reset=reset, **kwargs)
        self._param("tau_m", tau_m, "positive")
        self._param("tau_a", tau_a, "positive")
        self._param("beta", beta, "nonnegative")
        self._param("v_rest", v_rest)
        self._param("v_th", v_th)
        self._param("v_reset", v_reset)
        self._param("r_m", r_m, "positive")
        self.finish(refractory, v_rest)

    def params(self) -> ALIFParameters:
        """The parameters as an :class:`ALIFParameters` (for :func:`alif_step`)."""
        return ALIFParameters(
            self.tau_m,
            self.tau_a,
            self.beta,
            self.v_rest,
            self.v_th,
            self.v_reset,
            self.r_m,
            self.refractory,
        )

    def linear_part(self) -> dict[str, LinearPart]:
        r""":math:`\tau_m \dot v = v_{rest} + R\,I - v` (the adaptation is declared by
        ``adaptation``)."""
        return {"v": LinearPart(self.tau_m, self.v_rest, {"I": self.r_m})}


class IAF(SpikingNode):
    r"""Integrate-and-fire units of Brian2 / Rockpool's ``FFIAFBrian``, in SI units.

    .. math::

        \tau_{mem} \frac{dv}{dt} = v_{rest} - v + r_m\,(I + I_{bias} + \xi)

    **Threshold** :math:`v > v_{thresh}` (strict), tested after the step's integration.
    **Reset** :math:`v = v_{reset}` (``reset="value"``, Brian2's ``reset="v = v_reset"``);
    ``"subtract"`` as for :class:`LIF`. **Refractoriness** (Brian2's rule, as for every
    spiking node): a unit that spikes at step :math:`k` holds :math:`v` (input ignored,
    no spike) through step :math:`k + R - 1` and integrates again from step :math:`k + R`,
    :math:`R = \lfloor (refractory + 10^{-3} dt)/dt \rfloor` (Brian2: ``not_refractory =
    timestep(t - lastspike, dt) >= timestep(refractory, dt)``, ``timestep`` truncating);
    :math:`R \le 1` holds nothing. Example with ``dt = 0.1`` ms: ``refractory = 0.25`` ms
    holds 1 step (:math:`R = 2`), ``0.3`` ms holds 2, ``1.999`` ms holds 18.

    **Noise**: :math:`\xi` is a Gaussian current drawn each step and held over the step,
    with standard deviation ``noise_std / r_m * sqrt(2 tau_mem / dt)``, so that the free
    membrane fluctuates with standard deviation ``noise_std`` (volts) for
    :math:`dt \ll \tau_{mem}` (Rockpool's scaling, without its empirical factor 1.63). The
    draws come from the node's own generator, seeded by ``seed`` (:meth:`reseed`). That
    generator is one stream for the node, outside the network's held state: every step of
    every ``run``, ``forward`` and ``step`` advances it, ``reset()`` does not rewind it
    (:meth:`reseed` does), and a batch draws one ``(B, n)`` sample per step, so element
    ``b`` of a batch does not repeat a run of that trial alone. With ``noise_std = 0`` none
    of this applies: no draws are made.

    Parameters
    ----------
    n : int
        Number of units.
    tau_mem : float or tensor
        Membrane time constant (> 0); default 0.02 (s: 20 ms).
    v_thresh, v_reset, v_rest : float or tensor
        Threshold, reset and resting potentials (finite, ``v_thresh > v_reset``); defaults
        -0.055, -0.065, -0.065 (V).
    r_m : float or tensor
        Membrane resistance (> 0); default 1 (ohm).
    bias : float or tensor
        Bias current :math:`I_{bias}` (finite); default 0.015 (A: 15 mA, Rockpool's default).
    refractory : float or tensor
        Refractory period (>= 0); default 0 (s).
    noise_std : float
        Membrane noise (>= 0); default 0 (V). A simulation setting, saved in ``state_dict``
        with the seed and the state of the noise generator, so that a loaded network
        continues the noise stream where the saved one stopped.
    seed : int, optional
        Seed of the noise generator (default: drawn from torch's global generator).
    integrator : str
        ``"rk4"`` (default, as Rockpool), ``"euler"``, ``"exp_euler"``.

    Shape
    -----
    Input ``I``: ``(B, n)`` currents (A). State ``v``, ``z``, ``ref``: ``(B, n)``.
    Output ``z``: ``(B, n)``. ``v`` starts at ``v_rest`` (:meth:`randomize_state` draws it
    between ``v_reset`` and ``v_thresh``).

    Notes
    -----
    A Rockpool ``FFIAFBrian(weights)`` layer is a function node (or the external input)
    feeding an ``iaf`` node through an edge with ``weights.T``;
    ``net.run(steps=T, record=["iaf.v"])`` runs on the bias alone and records ``v``.

    As equations (:func:`rnngraph.equation_model` of them equals this class to 1e-12
    in float64, spike for spike)::

        dv/dt = (v_rest - v + r_m*(I + bias))/tau_mem : 1 (unless refractory)
        threshold: v > v_thresh
        reset: v = v_reset

    """

    ode_vars = ("v",)
    state_vars = ("v", "z", "ref")
    input_names = ("I",)
    default_integrator = "rk4"
    reset_modes = RESET_MODES
    threshold_name = "v_thresh"

    def __init__(
        self,
        n: int,
        tau_mem: Any = 0.02,
        v_thresh: Any = -0.055,
        v_reset: Any = -0.065,
        v_rest: Any = -0.065,
        r_m: Any = 1.0,
        bias: Any = 0.015,
        refractory: Any = 0.0,
        noise_std: float = 0.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(n, **kwargs)
        self._param("tau_mem", tau_mem, "positive")
        self._param("v_thresh", v_thresh)
        self._param("v_reset", v_reset)
        self._param("v_rest", v_rest)
        self._param("r_m", r_m, "positive")
        self._param("bias", bias)
        self.noise_std = _check("IAF", "noise_std", noise_std, "nonnegative")
        self.reseed(seed)
        self.finish(refractory, v_rest)

    def reseed(self, seed: int | None = None) -> None:
        """Restart the noise generator from ``seed`` (``None``: a seed drawn from torch's
        global generator)."""
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"IAF: seed must be an int or None, got {seed!r}")
        self.seed = int(seed)
        self._generators: dict[torch.device, torch.Generator] = {}

    def _generator(self, device: torch.device) -> torch.Generator:
        gen = self._generators.get(device)
        if gen is None:
            gen = torch.Generator(device=device).manual_seed(self.seed)
            self._generators[device] = gen
        return gen

    def get_extra_state(self) -> dict[str, Any]:
        """The noise settings and the state of each noise generator (``state_dict``), so that
        a loaded network continues the noise stream where the saved one was."""
        return {
            "noise_std": self.noise_std,
            "seed": self.seed,
            "generators": {str(d): g.get_state() for d, g in self._generators.items()},
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_extra_state`'s settings and generator states (all checked
        before anything changes). A state saved before the generators were stored restarts
        the stream from the seed; a generator of a device the state does not name starts
        from the seed when first used."""
        where = "IAF.load_state_dict"
        if not isinstance(state, dict) or not {"noise_std", "seed"} <= set(state):
            raise ValueError(
                f"{where}: the IAF extra state must be a dict with 'noise_std' and 'seed', "
                f"got {describe(state)}"
            )
        noise_std = _check(where, "noise_std", state["noise_std"], "nonnegative")
        seed = state["seed"]
        if isinstance(seed, bool | np.bool_) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"{where}: seed must be an int, got {seed!r}")
        generators = {}
        for dev, gen_state in dict(state.get("generators", {})).items():
            gen = torch.Generator(device=torch.device(dev))
            try:
                gen.set_state(gen_state)
            except (TypeError, RuntimeError) as err:
                raise ValueError(
                    f"{where}: the noise generator state for device {dev!r} is not one ({err})"
                ) from None
            generators[torch.device(dev)] = gen
        self.noise_std = noise_std
        self.reseed(int(seed))
        self._generators.update(generators)

    def params(self) -> LIFParameters:
        """The membrane parameters as an :class:`LIFParameters` (for :func:`lif_step`)."""
        return LIFParameters(
            self.tau_mem, self.v_rest, self.v_thresh, self.v_reset, self.r_m, self.refractory
        )

    def linear_part(self) -> dict[str, LinearPart]:
        r""":math:`\tau_{mem} \dot v = (v_{rest} + r_m I_{bias}) + r_m (I + \xi) - v`."""
        return {"v": LinearPart(self.tau_mem, self.v_rest + self.r_m * self.bias, {"I": self.r_m})}

    @property
    def noisy(self) -> bool:
        return self.noise_std > 0.0

    def add_noise(self, s: tuple, i: tuple, dt: float) -> tuple:
        r"""The input current plus :math:`\xi`, ``noise_std / r_m * sqrt(2 tau_mem / dt)``
        times a standard normal draw per unit and batch element (none when ``noise_std``
        is 0)."""
        if self.noise_std == 0.0:
            return i
        v = s.v
        xi = torch.randn(
            v.shape, generator=self._generator(v.device), device=v.device, dtype=v.dtype
        )
        scale = (self.noise_std / self.r_m) * torch.sqrt(2.0 * self.tau_mem / dt)
        return self.Inputs(i.I + xi * scale)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, noise_std={self.noise_std:g}, seed={self.seed}"


class QIF(SpikingNode):
    r"""Quadratic integrate-and-fire units with an exponential synaptic trace (RectiPy's
    ``qif`` template).

    .. math::

        \dot v &= (v^2 + \eta + I_{ext}) / \tau + k\,s_{in} \\
        \dot s &= -s / \tau_s + \textstyle\sum_k \delta(t - t_k)

    **Threshold** :math:`v > v_{peak}` (strict); **reset** :math:`v = v_{reset}` in the spike
    step; the trace :math:`s` jumps by 1 in the spike step (RectiPy feeds ``spike / dt``
    into Euler's step: the same jump). :math:`s` is the unit's synaptic output; connect it
    with ``source_var="s"`` to ``target_var="s_in"`` (RectiPy's recurrent wiring). With
    :math:`v_{peak} = -v_{reset}` large the unit approximates the theta neuron.
    **Refractoriness** by Brian2's rule, as for :class:`LIF`: :math:`\max(R-1, 0)` held
    steps after a spike, :math:`R = \lfloor (refractory + 10^{-3} dt)/dt \rfloor` (e.g.
    ``dt = 1e-3``, ``refractory = 2.5e-3`` holds 1 step); only :math:`v` is held (zero
    derivative in every integrator stage), :math:`s` evolves.

    Parameters
    ----------
    n : int
        Number of units.
    tau : float or tensor
        Membrane time constant (> 0); default 1 (unit of ``dt``).
    eta : float or tensor
        Excitability; default -5.
    k : float or tensor
        Gain of the synaptic input ``s_in``; default 1.
    tau_s : float or tensor
        Synaptic time constant (> 0); default 1.
    v_peak, v_reset : float or tensor
        Spike cut-off and reset; defaults 100 and -100 (dimensionless).
    refractory : float or tensor
        Refractory period (>= 0); default 0.
    integrator : str
        ``"euler"`` (default, as RectiPy), ``"rk4"``, ``"exp_euler"`` (exact for ``s``).

    Shape
    -----
    Inputs ``I_ext``, ``s_in``: ``(B, n)``. State ``v``, ``s``, ``z``, ``ref``: ``(B, n)``,
    ``v`` starting at -2 (RectiPy). Output ``z``.

    As equations (:func:`rnngraph.equation_model` of them equals this class to 1e-12
    in float64, spike for spike)::

        dv/dt = (v*v + eta + I_ext)/tau + k*s_in : 1 (unless refractory)
        ds/dt = -s/tau_s : 1
        threshold: v > v_peak
        reset: v = v_reset; s += 1

    """

    ode_vars = ("v", "s")
    state_vars = ("v", "s", "z", "ref")
    jumps = MappingProxyType({"s": 1.0})
    input_names = ("I_ext", "s_in")
    default_integrator = "euler"
    threshold_name = "v_peak"
    init_defaults = {"v": -2.0}

    def __init__(
        self,
        n: int,
        tau: Any = 1.0,
        eta: Any = -5.0,
        k: Any = 1.0,
        tau_s: Any = 1.0,
        v_peak: Any = 100.0,
        v_reset: Any = -100.0,
        refractory: Any = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(n, **kwargs)
        self._param("tau", tau, "positive")
        self._param("eta", eta)
        self._param("k", k)
        self._param("tau_s", tau_s, "positive")
        self._param("v_peak", v_peak)
        self._param("v_reset", v_reset)
        self.finish(refractory)

    def rhs(self, s: tuple, i: tuple) -> tuple:
        dv = (s.v * s.v + self.eta + i.I_ext) / self.tau + self.k * i.s_in
        return dv, -s.s / self.tau_s

    def decay(self, s: tuple) -> tuple:
        return None, 1.0 / self.tau_s


class Izhikevich(SpikingNode):
    r"""Izhikevich units with a conductance-based synapse (RectiPy's ``ik`` template).

    .. math::

        C \dot v &= k (v - v_r)(v - v_\theta) - u + I_{ext} + \eta
                    + g\,s_{in}\,(E_r - v) \\
        \dot u &= (b (v - v_r) - u) / \tau_u + \kappa \textstyle\sum_k \delta(t - t_k) \\
        \dot s &= -s / \tau_s + \textstyle\sum_k \delta(t - t_k)

    **Threshold** :math:`v > v_{peak}` (strict); **reset** :math:`v = v_{reset}`,
    :math:`u \mathrel{+}= \kappa`, :math:`s \mathrel{+}= 1`, all in the spike step. The
    synaptic input ``s_in`` (e.g. other units' ``s`` through an edge with
    ``source_var="s"``, ``target_var="s_in"``) acts as a conductance with reversal
    :math:`E_r`. **Refractoriness** by Brian2's rule, as for :class:`LIF`:
    :math:`\max(R-1, 0)` held steps after a spike, :math:`R = \lfloor (refractory +
    10^{-3} dt)/dt \rfloor` (e.g. ``dt = 0.1`` ms, ``refractory = 1.25`` ms holds 11 steps);
    only :math:`v` is held, with zero derivative in every stage of the integrator (Brian2's
    ``(unless refractory)``), so :math:`u` and :math:`s` integrate against the held
    :math:`v`.

    Parameters
    ----------
    n : int
        Number of units.
    C : float or tensor
        Capacitance (> 0); default 100 (pF).
    k : float or tensor
        Default 0.7 (nS/mV).
    v_r, v_theta : float or tensor
        Resting and threshold potentials of the quadratic; defaults -60, -40 (mV).
    eta : float or tensor
        Background current; default 0 (pA).
    g, E_r : float or tensor
        Synaptic conductance scale (>= 0) and reversal potential; defaults 1 (nS), 0 (mV).
    b : float or tensor
        Default -2 (nS).
    tau_u : float or tensor
        Recovery time constant (> 0); default 33.33 (ms).
    kappa : float or tensor
        Jump of :math:`u` per spike; default 10 (pA).
    tau_s : float or tensor
        Synaptic time constant (> 0); default 6 (ms).
    v_peak, v_reset : float or tensor
        Spike cut-off and reset; defaults 1000 and -1000 (mV, the values of RectiPy's
        examples).
    refractory : float or tensor
        Refractory period (>= 0); default 0 (ms).
    integrator : str
        ``"euler"`` (default, as RectiPy), ``"rk4"``, ``"exp_euler"``.

    Shape
    -----
    Inputs ``I_ext``, ``s_in``: ``(B, n)``. State ``v``, ``u``, ``s``, ``z``, ``ref``:
    ``(B, n)``, ``v`` starting at ``v_r``. Output ``z``.

    As equations (:func:`rnngraph.equation_model` of them equals this class to 1e-12
    in float64, spike for spike)::

        dv/dt = (k*(v - v_r)*(v - v_theta) - u + I_ext + eta + g*s_in*(E_r - v))/C : 1
                (unless refractory)
        du/dt = (b*(v - v_r) - u)/tau_u : 1
        ds/dt = -s/tau_s : 1
        threshold: v > v_peak
        reset: v = v_reset; u += kappa; s += 1

    """

    ode_vars = ("v", "u", "s")
    state_vars = ("v", "u", "s", "z", "ref")
    jumps = MappingProxyType({"u": "kappa", "s": 1.0})
    input_names = ("I_ext", "s_in")
    default_integrator = "euler"
    threshold_name = "v_peak"

    def __init__(
        self,
        n: int,
        C: Any = 100.0,
        k: Any = 0.7,
        v_r: Any = -60.0,
        v_theta: Any = -40.0,
        eta: Any = 0.0,
        g: Any = 1.0,
        E_r: Any = 0.0,
        b: Any = -2.0,
        tau_u: Any = 33.33,
        kappa: Any = 10.0,
        tau_s: Any = 6.0,
        v_peak: Any = 1000.0,
        v_reset: Any = -1000.0,
        refractory: Any = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(n, **kwargs)
        self._param("C", C, "positive")
        self._param("k", k)
        self._param("v_r", v_r)
        self._param("v_theta", v_theta)
        self._param("eta", eta)
        self._param("g", g, "nonnegative")
        self._param("E_r", E_r)
        self._param("b", b)
        self._param("tau_u", tau_u, "positive")
        self._param("kappa", kappa)
        self._param("tau_s", tau_s, "positive")
        self._param("v_peak", v_peak)
        self._param("v_reset", v_reset)
        self.finish(refractory, v_r)

    def rhs(self, s: tuple, i: tuple) -> tuple:
        v = s.v
        dv = (
            self.k * (v - self.v_r) * (v - self.v_theta)
            - s.u
            + i.I_ext
            + self.eta
            + self.g * i.s_in * (self.E_r - v)
        ) / self.C
        du = (self.b * (v - self.v_r) - s.u) / self.tau_u
        return dv, du, -s.s / self.tau_s

    def decay(self, s: tuple) -> tuple:
        return None, 1.0 / self.tau_u, 1.0 / self.tau_s


def _exp_current(v: Tensor, p: Any) -> Tensor:
    r""":math:`g_L \Delta_T \exp((\min(v, v_{peak}) - V_T)/\Delta_T)`: the spike-initiation
    current, with ``v`` capped at the cut-off (as NEST's ``aeif`` models) so that an
    overshooting step stays finite."""
    vc = torch.minimum(v, torch.as_tensor(p.v_peak, dtype=v.dtype, device=v.device))
    return p.g_L * p.Delta_T * torch.exp((vc - p.V_T) / p.Delta_T)


class AdEx(SpikingNode):
    r"""Adaptive exponential integrate-and-fire units (Brette & Gerstner 2005,
    doi:10.1152/jn.00686.2005).

    .. math::

        C \dot v &= -g_L (v - E_L) + g_L \Delta_T\,e^{(v - V_T)/\Delta_T} - w + I \\
        \tau_w \dot w &= a (v - E_L) - w

    **Threshold** :math:`v > v_{peak}` (strict); **reset** :math:`v = v_{reset}` and
    :math:`w \mathrel{+}= b` in the spike step. In the exponential :math:`v` is capped at
    :math:`v_{peak}` (NEST's rule) so that a step that overshoots stays finite.
    **Refractoriness** by Brian2's rule, as for :class:`LIF`: :math:`\max(R-1, 0)` held
    steps after a spike, :math:`R = \lfloor (refractory + 10^{-3} dt)/dt \rfloor` (e.g.
    ``dt = 0.1`` ms, ``refractory = 2`` ms holds 19 steps, ``1.95`` ms holds 18); only
    :math:`v` is held, with zero derivative in every stage of the integrator (Brian2's
    ``(unless refractory)``), so :math:`w` evolves against the held :math:`v`.

    Parameters
    ----------
    n : int
        Number of units.
    C : float or tensor
        Capacitance (> 0); default 281 (pF).
    g_L : float or tensor
        Leak conductance (> 0); default 30 (nS).
    E_L : float or tensor
        Leak reversal; default -70.6 (mV).
    V_T : float or tensor
        Threshold of the exponential; default -50.4 (mV).
    Delta_T : float or tensor
        Slope factor (> 0); default 2 (mV).
    a : float or tensor
        Subthreshold adaptation; default 4 (nS).
    tau_w : float or tensor
        Adaptation time constant (> 0); default 144 (ms).
    b : float or tensor
        Spike-triggered adaptation; default 80.5 (pA).
    v_reset : float or tensor
        Default -70.6 (mV).
    v_peak : float or tensor
        Spike cut-off; default 0 (mV).
    refractory : float or tensor
        Refractory period (>= 0); default 0 (ms).
    integrator : str
        ``"euler"`` (default), ``"rk4"``, ``"exp_euler"``.

    Units: with ``dt`` in ms, voltages in mV, conductances in nS, capacitance in pF, the input
    ``I`` and :math:`w` are in pA.

    Shape
    -----
    Input ``I``: ``(B, n)``. State ``v``, ``w``, ``z``, ``ref``: ``(B, n)``, ``v`` starting
    at ``E_L``. Output ``z``.

    As equations (:func:`rnngraph.equation_model` of them equals this class to 1e-12
    in float64, spike for spike)::

        dv/dt = (-g_L*(v - E_L) + g_L*Delta_T*exp((minimum(v, v_peak) - V_T)/Delta_T) - w + I)/C : 1
                (unless refractory)
        dw/dt = (a*(v - E_L) - w)/tau_w : 1
        threshold: v > v_peak
        reset: v = v_reset; w += b

    """

    ode_vars = ("v", "w")
    state_vars = ("v", "w", "z", "ref")
    jumps = MappingProxyType({"w": "b"})
    input_names = ("I",)
    default_integrator = "euler"
    threshold_name = "v_peak"

    def __init__(
        self,
        n: int,
        C: Any = 281.0,
        g_L: Any = 30.0,
        E_L: Any = -70.6,
        V_T: Any = -50.4,
        Delta_T: Any = 2.0,
        a: Any = 4.0,
        tau_w: Any = 144.0,
        b: Any = 80.5,
        v_reset: Any = -70.6,
        v_peak: Any = 0.0,
        refractory: Any = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(n, **kwargs)
        self._param("C", C, "positive")
        self._param("g_L", g_L, "positive")
        self._param("E_L", E_L)
        self._param("V_T", V_T)
        self._param("Delta_T", Delta_T, "positive")
        self._param("a", a)
        self._param("tau_w", tau_w, "positive")
        self._param("b", b)
        self._param("v_reset", v_reset)
        self._param("v_peak", v_peak)
        self.finish(refractory, E_L)

    def rhs(self, s: tuple, i: tuple) -> tuple:
        dv = (-self.g_L * (s.v - self.E_L) + _exp_current(s.v, self) - s.w + i.I) / self.C
        dw = (self.a * (s.v - self.E_L) - s.w) / self.tau_w
        return dv, dw

    def decay(self, s: tuple) -> tuple:
        return self.g_L / self.C, 1.0 / self.tau_w


class EIF(SpikingNode):
    r"""Exponential integrate-and-fire units (Fourcaud-Trocme et al. 2003): :class:`AdEx`
    without adaptation.

    .. math:: C \dot v = -g_L (v - E_L) + g_L \Delta_T\,e^{(v - V_T)/\Delta_T} + I

    **Threshold** :math:`v > v_{peak}` (strict), **reset** :math:`v = v_{reset}` in the spike
    step, exponential capped at :math:`v_{peak}`. **Refractoriness** by Brian2's rule, as
    for :class:`LIF`: :math:`\max(R-1, 0)` held steps after a spike, :math:`R = \lfloor
    (refractory + 10^{-3} dt)/dt \rfloor` (e.g. ``refractory = 0.5 dt`` holds none,
    ``3 dt`` holds 2).
    Parameters and units as for :class:`AdEx` (``C`` 281 pF, ``g_L`` 30 nS, ``E_L`` -70.6 mV,
    ``V_T`` -50.4 mV, ``Delta_T`` 2 mV, ``v_reset`` -70.6 mV, ``v_peak`` 0 mV, ``refractory``
    0 ms).

    Shape
    -----
    Input ``I``: ``(B, n)`` (pA). State ``v``, ``z``, ``ref``: ``(B, n)``, ``v`` starting at
    ``E_L``. Output ``z``.

    As equations (:func:`rnngraph.equation_model` of them equals this class to 1e-12
    in float64, spike for spike)::

        dv/dt = (-g_L*(v - E_L) + g_L*Delta_T*exp((minimum(v, v_peak) - V_T)/Delta_T) + I)/C : 1
                (unless refractory)
        threshold: v > v_peak
        reset: v = v_reset

    """

    ode_vars = ("v",)
    state_vars = ("v", "z", "ref")
    input_names = ("I",)
    default_integrator = "euler"
    threshold_name = "v_peak"

    def __init__(
        self,
        n: int,
        C: Any = 281.0,
        g_L: Any = 30.0,
        E_L: Any = -70.6,
        V_T: Any = -50.4,
        Delta_T: Any = 2.0,
        v_reset: Any = -70.6,
        v_peak: Any = 0.0,
        refractory: Any = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(n, **kwargs)
        self._param("C", C, "positive")
        self._param("g_L", g_L, "positive")
        self._param("E_L", E_L)
        self._param("V_T", V_T)
        self._param("Delta_T", Delta_T, "positive")
        self._param("v_reset", v_reset)
        self._param("v_peak", v_peak)
        self.finish(refractory, E_L)

    def rhs(self, s: tuple, i: tuple) -> tuple:
        return ((-self.g_L * (s.v - self.E_L) + _exp_current(s.v, self) + i.I) / self.C,)

    def decay(self, s: tuple) -> tuple:
        return (self.g_L / self.C,)
