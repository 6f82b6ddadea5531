"""Node base classes: instantaneous function nodes and differential-equation nodes.

A node owns its parameters; its state lives outside it, in a tuple that the compiled
network passes in and receives back each step (see ``DENode.step``).
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
from torch import Tensor, nn

from .._checks import as_tensor, describe
from ..units import Quantity

__all__ = [
    "ACTIVATIONS",
    "AFFINE_GAINS",
    "DOMAINS",
    "DENode",
    "DecayMap",
    "FuncNode",
    "INTEGRATORS",
    "GainMap",
    "IntrinsicRule",
    "LeakyMap",
    "WindowMap",
    "LinearPart",
    "Node",
    "affine_gain",
    "affine_step",
]


def _softmax(x: Tensor) -> Tensor:
    return torch.softmax(x, dim=-1)


def _log_softmax(x: Tensor) -> Tensor:
    return torch.log_softmax(x, dim=-1)


def _softmin(x: Tensor) -> Tensor:
    return torch.softmax(-x, dim=-1)


def _identity(x: Tensor) -> Tensor:
    return x


#: Activation functions of function nodes, by name. Normalising functions act over units.
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "identity": _identity,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "softmin": _softmin,
}


#: what each declarable structure describes: redefining one of these without declaring the
#: structure again withdraws the declaration (``DENode.structure``)
_STRUCTURE_MATH = {
    "linear_part": ("rhs", "decay", "output", "event", "add_noise"),
    "leaky_map": ("map", "output", "event", "add_noise"),
    "gain_map": ("map", "output", "event", "add_noise", "plasticity"),
    "window_map": ("map", "output", "event", "add_noise"),
    "decay_map": ("map", "output", "event", "add_noise"),
}


def _owner(cls: type, name: str) -> type | None:
    """The class of ``cls``'s MRO whose body defines ``name``."""
    return next((k for k in cls.__mro__ if name in k.__dict__), None)


def _defines(cls: type, name: str) -> bool:
    """Whether a model class below ``DENode`` defines ``name`` (found once per class and
    name, and kept in the class's own dict: asked at every step)."""
    memo = cls.__dict__.get("_defines_memo")
    if memo is None:
        memo = {}
        type.__setattr__(cls, "_defines_memo", memo)
    found = memo.get(name)
    if found is None:
        owner = _owner(cls, name)
        found = memo[name] = owner is not None and owner.__dict__.get("_core") is not True
    return found


def _withdrawn(cls: type, name: str) -> str | None:
    """:func:`_find_withdrawn`, computed once per class (kept in the class's own dict)."""
    memo = cls.__dict__.get("_withdrawn_memo")
    if memo is None:
        memo = {n: _find_withdrawn(cls, n) for n in _STRUCTURE_MATH}
        type.__setattr__(cls, "_withdrawn_memo", memo)
    return memo[name]


def _find_withdrawn(cls: type, name: str) -> str | None:
    """Why the class ``cls`` no longer has the structure ``name`` it or a base declared
    (a subclass redefined the mathematics it describes), or ``None``; see
    ``DENode.structure``."""
    if not _defines(cls, name):
        return f"the model declares no {name.replace('_', ' ')}"
    owner = _owner(cls, name)
    for m in _STRUCTURE_MATH[name]:
        k = _owner(cls, m)
        # a definition the declaring class inherits (from a base of it, or the core) is
        # part of what it declares; one from a subclass, a mixin or another branch is not
        if k is not None and k.__dict__.get("_core") is not True and not issubclass(owner, k):
            return f"{k.__name__} overrides {m}() and declares no {name.replace('_', ' ')}"
    return None


class Node(nn.Module):
    """Base of every node: ``n`` units, named inputs, named state variables.

    Attributes
    ----------
    n : int
        Number of units; the node's output has shape ``(B, n)``.
    input_names : tuple of str
        Named inputs an edge may target (``target_var=``); the first is the main input,
        which receives the external input when the node is the network's input node.
    state_vars : tuple of str
        Names of the state variables (empty for function nodes).
    """

    input_names: ClassVar[tuple[str, ...]] = ("in",)
    state_vars: ClassVar[tuple[str, ...]] = ()

    def __init__(self, n: int) -> None:
        super().__init__()
        msg = f"{type(self).__name__}: n must be a positive int (the number of units), got {n!r}"
        if isinstance(n, bool | np.bool_) or not isinstance(n, numbers.Integral):
            raise TypeError(msg)
        if n < 1:
            raise ValueError(msg)
        self.n = int(n)

    @property
    def is_stateful(self) -> bool:
        return len(self.state_vars) > 0

    def var_size(self, var: str | None) -> int:
        """Number of values that ``var`` (``None``: the output) holds per batch element:
        ``n`` unless a model says otherwise (the output always has ``n``)."""
        return self.n

    def input_size(self, name: str | None) -> int:
        """Number of values the input ``name`` (``None``: the main input) takes per batch
        element: ``n`` unless a model says otherwise (a feature map such as ``NVAR`` reads
        fewer values than it gives)."""
        return self.n

    def extra_repr(self) -> str:
        return f"n={self.n}"


class FuncNode(Node):
    """An instantaneous node: ``y = f(x)`` with no state.

    Parameters
    ----------
    n : int
        Number of units (input and output width).
    activation_function : str or callable
        One of ``identity``, ``tanh``, ``sigmoid``, ``relu``, ``softmax``, ``log_softmax``,
        ``softmin`` (normalising functions act over the units axis), or any callable that maps
        a ``(..., n)`` tensor to a tensor of the same shape.

    Shape
    -----
    Input ``(B, n)`` (or ``(T, B, n)``), output the same.
    """

    input_names = ("in",)

    def __init__(self, n: int, activation_function: str | Callable[[Tensor], Tensor] = "identity"):
        super().__init__(n)
        if isinstance(activation_function, str):
            if activation_function not in ACTIVATIONS:
                raise ValueError(
                    f"FuncNode: unknown activation_function {activation_function!r}; "
                    f"valid names are {sorted(ACTIVATIONS)}"
                )
            self.name = activation_function
            self.fn = ACTIVATIONS[activation_function]
        elif callable(activation_function):
            self.name = getattr(activation_function, "__name__", type(activation_function).__name__)
            self.fn = activation_function
        else:
            raise TypeError(
                "FuncNode: activation_function must be a name or a callable, "
                f"got {type(activation_function).__name__}"
            )

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return f"n={self.n}, activation_function={self.name!r}"


# --------------------------------------------------------------------------------------
# integrators
# --------------------------------------------------------------------------------------


def _axpy(state: tuple, deriv: tuple, h: float) -> tuple:
    return tuple(s + h * d for s, d in zip(state, deriv, strict=True))


def euler(node: DENode, s: tuple, i: tuple, dt: float) -> tuple:
    """Forward Euler: ``s(t+dt) = s + dt f(s, I)`` (order 1)."""
    return node.State(*_axpy(s, node.rhs(s, i), dt))


def rk4(node: DENode, s: tuple, i: tuple, dt: float) -> tuple:
    """Classical Runge-Kutta of order 4, input held constant over the step (zero-order hold)."""
    State = node.State
    k1 = node.rhs(s, i)
    k2 = node.rhs(State(*_axpy(s, k1, 0.5 * dt)), i)
    k3 = node.rhs(State(*_axpy(s, k2, 0.5 * dt)), i)
    k4 = node.rhs(State(*_axpy(s, k3, dt)), i)
    return State(
        *(
            x + (dt / 6.0) * (a + 2.0 * b + 2.0 * c + d)
            for x, a, b, c, d in zip(s, k1, k2, k3, k4, strict=True)
        )
    )


def exp_euler(node: DENode, s: tuple, i: tuple, dt: float) -> tuple:
    r"""Exponential Euler for models with a linear part.

    The model splits each derivative as :math:`\dot x = -a\,x + g(x, I)` (``DENode.decay``
    returns ``a`` per variable, ``None`` for variables without a linear part). With ``g``
    frozen over the step,

    .. math:: x(t + dt) = e^{-a\,dt}\,x + \frac{1 - e^{-a\,dt}}{a}\,g,

    which is exact for a linear leak under constant input; where :math:`a = 0` the factor
    :math:`(1 - e^{-a\,dt})/a` is its limit :math:`dt` (a unit without leak integrates
    its input). Variables without a decay rate take a forward-Euler step.
    """
    rates = node.decay(s)
    deriv = node.rhs(s, i)
    out = []
    for x, d, a in zip(s, deriv, rates, strict=True):
        if a is None:
            out.append(x + dt * d)
        else:
            out.append(x + _exp_factor(a, dt) * d)  # = e x + (1 - e)/a (d + a x)
    return node.State(*out)


def _exp_factor(a: Any, dt: float) -> Any:
    r""":math:`(1 - e^{-a\,dt})/a`, and :math:`dt` where :math:`a = 0` (its limit; the
    gradient there is the limit's too)."""
    if not isinstance(a, Tensor):
        return dt if a == 0 else -math.expm1(-a * dt) / a
    zero = a == 0
    safe = torch.where(zero, torch.ones_like(a), a)
    return torch.where(zero, dt - a * dt * dt / 2.0, -torch.expm1(-safe * dt) / safe)


def _is_number(x: Any, value: float) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, Tensor) and x == value


class LinearPart(NamedTuple):
    r"""A linear variable :math:`x` of a model:

    .. math:: \tau\,\dot x = \mathrm{rest} + \textstyle\sum_k \mathrm{gains}_k\,I_k - x

    ``tau`` (> 0) and ``rest`` depend on the parameters only, ``gains`` maps input names to
    their gains. The fixed point under the step's input is
    :math:`u = \mathrm{rest} + \sum_k \mathrm{gains}_k I_k`. Values are scalars, ``(n,)``
    tensors or ``(B, n)`` tensors (broadcast against the state).
    """

    tau: Any
    rest: Any = 0.0
    gains: Mapping[str, Any] = MappingProxyType({})

    def fixed_point(self, i: tuple) -> Any:
        r""":math:`u = \mathrm{rest} + \sum_k \mathrm{gains}_k I_k` for the inputs ``i``
        (a rest of the number 0 and gains of the number 1 cost no operation: exact)."""
        u = None if _is_number(self.rest, 0.0) else self.rest
        for name, gain in self.gains.items():
            term = getattr(i, name) if _is_number(gain, 1.0) else gain * getattr(i, name)
            u = term if u is None else u + term
        return 0.0 if u is None else u


class LeakyMap(NamedTuple):
    r"""A discrete leaky map of one variable, reservoirpy's reservoir update:

    .. math:: x(t) = (1 - \lambda)\,M x(t-1) + \lambda\,f\big(I(t) + b\big)

    ``lr`` is :math:`\lambda` (in (0, 1]), ``bias`` :math:`b`, ``f`` the activation,
    ``input`` the name of :math:`I` and ``mix`` the ``(n, n)`` matrix :math:`M` that mixes
    the units' previous values (ES2N's orthogonal :math:`O`), or ``None`` for the identity.
    """

    lr: Any
    bias: Any
    f: Callable[[Tensor], Tensor]
    input: str
    mix: Any = None

    def step(self, x: Tensor, drive: Tensor) -> Tensor:
        """:math:`x(t)` from :math:`x(t-1)` and the input :math:`I(t)`, as the torch loop
        computes it (``torch.lerp``)."""
        base = x if self.mix is None else x @ self.mix.T
        return torch.lerp(base, self.f(drive + self.bias), self.lr)


class DecayMap(NamedTuple):
    r"""A discrete map of one variable that decays and adds its input, the leaky readout of
    Bellec et al. (2020):

    .. math:: y(t) = \kappa\,y(t-1) + I(t)

    ``kappa(dt)`` gives the decay per step :math:`\kappa` (a number, or a scalar or
    ``(n,)`` tensor), ``input`` the name of :math:`I`. The decay-map kernel computes
    :math:`\kappa` once per run (once per :meth:`~rnngraph.CompiledNetwork.step`), so
    whatever it reads may change between runs.
    """

    kappa: Callable[[float], Tensor]
    input: str

    def step(self, y: Tensor, drive: Tensor, kappa: Tensor) -> Tensor:
        r""":math:`y(t)` from :math:`y(t-1)`, the input and :math:`\kappa` (a product, then
        a sum: two roundings, on every path)."""
        return kappa * y + drive


class IntrinsicRule(NamedTuple):
    r"""One step of an intrinsic-plasticity rule of a :class:`GainMap`, whose shift step is a
    polynomial of degree 3 or less in the unit's output:

    .. math::

        \Delta b = c_0 + c_1 x + c_2 x^2 + c_3 x^3, \qquad
        \Delta a = \eta / a + \Delta b \, r

    (``coef`` :math:`(c_0, c_1, c_2, c_3)`, the learning rate :math:`\eta` included in
    them; ``eta`` :math:`\eta`). Every path (the torch step, the native loop) evaluates
    it from these numbers, in Horner's order.
    """

    eta: float
    coef: tuple[float, float, float, float]

    def deltas(self, a: Tensor, r: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        r""":math:`(\Delta a, \Delta b)` for one step's ``r`` and ``x`` (``(..., n)``) and
        the gains ``a`` before it."""
        c0, c1, c2, c3 = self.coef
        db = c0 + x * (c1 + x * (c2 + x * c3))
        return self.eta / a + db * r, db


class GainMap(NamedTuple):
    r"""A discrete leaky map on the units' input, read out through a gain and a shift per
    unit (reservoirpy's reservoir with intrinsic plasticity):

    .. math::

        r(t) = (1 - \lambda)\, r(t-1) + \lambda \big(I(t) + c\big), \qquad
        x(t) = f\big(a \odot r(t) + b\big)

    ``lr`` is :math:`\lambda` (in (0, 1]), ``bias`` :math:`c`, ``a`` and ``b`` the gains
    and shifts (``(n,)`` tensors a rule may change in place), ``f`` the activation,
    ``input`` the name of :math:`I`, and ``rule`` the :class:`IntrinsicRule` a trainer
    applies after each step (``None``: none). The model's state variables are :math:`r`
    and :math:`x`, in that order.
    """

    lr: Any
    bias: Any
    a: Tensor
    b: Tensor
    f: Callable[[Tensor], Tensor]
    input: str
    rule: IntrinsicRule | None = None

    def step(self, r: Tensor, drive: Tensor) -> tuple[Tensor, Tensor]:
        """:math:`r(t)` and :math:`x(t)` from :math:`r(t-1)` and the input :math:`I(t)`."""
        r = (1.0 - self.lr) * r + self.lr * (drive + self.bias)
        return r, self.f(self.a * r + self.b)


class WindowMap(NamedTuple):
    r"""A discrete map whose state is a window of its input's last values and whose output
    is a fixed function of that window (a nonlinear vector autoregression's features):

    .. math::

        s(t) = u(t) \oplus u(t-1) \oplus \dots \oplus u(t-L+1), \qquad x(t) = F\big(s(t)\big)

    (:math:`\oplus`: concatenation, newest first; values before the first step are the
    initial window's). ``input`` names :math:`u` (:math:`d` values), ``length`` is
    :math:`L \ge 1` and ``features`` is :math:`F`, applied to rows of :math:`Ld` values.
    The model's state variables are the window and the output, in that order. Nothing of
    the past enters but the window, so a whole chunk of steps is computed at once from
    the input over it (:meth:`chunk`), with the same values as :meth:`step` step by step.
    """

    input: str
    length: int
    features: Callable[[Tensor], Tensor]

    def step(self, store: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
        """The window and output after one step, from the window ``(B, L d)`` before it and
        the input ``(B, d)``."""
        store = torch.cat([u, store[:, : store.shape[1] - u.shape[1]]], dim=1)
        return store, self.features(store)

    def windows(self, store: Tensor, u: Tensor) -> Tensor:
        """The windows ``(T, B, L d)`` of the steps of the input ``u`` ``(T, B, d)``, from the
        window ``store`` ``(B, L d)`` before the first."""
        T, B, d = u.shape
        L = self.length
        past = store[:, : (L - 1) * d].reshape(B, L - 1, d).flip(1).transpose(0, 1)
        seq = torch.cat([past, u], dim=0)  # (L - 1 + T, B, d), oldest first
        # step t's window: seq[t + L - 1], seq[t + L - 2], ..., seq[t], newest first
        w = seq.unfold(0, L, 1).flip(-1)  # (T, B, d, L)
        return w.transpose(2, 3).reshape(T, B, L * d)

    def chunk(self, store: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
        """The windows and outputs ``(T, B, .)`` of all steps of the input ``u``
        ``(T, B, d)`` at once, from the window ``store`` before the first: the values of
        :meth:`step` applied step by step."""
        w = self.windows(store, u)
        T, B, width = w.shape
        return w, self.features(w.reshape(T * B, width)).reshape(T, B, -1)


#: The gain :math:`g(h)`, :math:`h = dt/\tau`, of the one-step map
#: :math:`x \leftarrow u + g(h)\,(x - u)` of :math:`\tau \dot x = u - x` with :math:`u` held
#: over the step, per integrator: exact for this ODE (RK4's is its stability polynomial,
#: Euler's :math:`1 - h`, exponential Euler's :math:`e^{-h}`).
AFFINE_GAINS: dict[str, Callable[[Any], Any]] = {
    "euler": lambda h: 1.0 - h,
    "rk4": lambda h: 1.0 - h + h**2 / 2.0 - h**3 / 6.0 + h**4 / 24.0,
    "exp_euler": lambda h: torch.exp(-h) if isinstance(h, Tensor) else math.exp(-h),
}


def affine_gain(integrator: str, dt: float, tau: Any, like: Tensor | None = None) -> Any:
    r"""The gain :math:`g` of the integrator's one-step map of :math:`\tau \dot x = u - x`
    (:data:`AFFINE_GAINS`), for the step ``dt`` and time constant ``tau``.

    With ``like`` the result is a tensor in its dtype and on its device (``dt``, a Python
    float, is never rounded to float32 on the way). Differentiable in ``tau``. The torch
    step, the native kernels and e-prop's traces all take their gain from here.
    """
    try:
        gain = AFFINE_GAINS[integrator]
    except KeyError:
        raise ValueError(
            f"unknown integrator {integrator!r} for the affine one-step map; valid names are "
            f"{sorted(AFFINE_GAINS)}"
        ) from None
    if like is not None:
        tau = torch.as_tensor(tau, dtype=like.dtype, device=like.device)
    return gain(float(dt) / tau)


def affine_step(x: Tensor, u: Any, g: Any) -> Tensor:
    r""":math:`x \leftarrow u + g\,(x - u)`: one exact step of :math:`\tau \dot x = u - x`
    with fixed point ``u`` and gain ``g`` (:func:`affine_gain`), as ``torch.lerp`` so that
    every path rounds alike."""
    u = torch.as_tensor(u, dtype=x.dtype, device=x.device)
    return torch.lerp(u, x, g)


#: Ranges of parameter values (``DENode.add_param(..., domain=...)``): a description for
#: error messages and the test every value must pass (NaN and inf fail every domain).
DOMAINS: dict[str, tuple[str, Callable[[Tensor], Tensor]]] = {
    "real": ("finite", lambda t: torch.ones_like(t, dtype=torch.bool)),
    "positive": ("finite and > 0", lambda t: t > 0),
    "nonnegative": ("finite and >= 0", lambda t: t >= 0),
    "unit": ("in (0, 1]", lambda t: (t > 0) & (t <= 1)),
}

#: Integrators by name; each maps ``(node, state, inputs, dt)`` to the state after one step.
INTEGRATORS: dict[str, Callable[..., tuple]] = {"euler": euler, "rk4": rk4, "exp_euler": exp_euler}


class DENode(Node):
    r"""A population of ``n`` units governed by differential equations.

    A subclass declares its ``state_vars`` and ``input_names`` and defines the right-hand
    side :meth:`rhs`; the base integrates it with the integrator chosen by name, applies the
    event rule :meth:`event` (spikes, resets; identity for rate models) and emits
    :meth:`output`. One step of the compiled network calls :meth:`step`:

    .. math:: s \leftarrow \mathrm{event}(\Phi_{dt}(s, I)), \qquad y = \mathrm{output}(s)

    where :math:`\Phi_{dt}` is the integrator and :math:`I` the step's input, held constant
    over the step.

    Parameters
    ----------
    n : int
        Number of units.
    integrator : str
        ``"euler"``, ``"rk4"`` or ``"exp_euler"`` (only for models that define
        :meth:`decay`).
    train : iterable of str, optional
        Names of parameters to make trainable (``nn.Parameter``); the rest are buffers.
    init : mapping, optional
        Initial values of state variables (scalar, ``(n,)`` or ``(B, n)``), restored by
        ``reset()``.

    Notes
    -----
    A minimal user model, a FitzHugh-Nagumo population::

        class FitzHughNagumo(DENode):
            state_vars = ("v", "w")
            input_names = ("I",)

            def __init__(self, n, a=0.7, b=0.8, tau=12.5, **kwargs):
                super().__init__(n, **kwargs)
                self.add_param("a", a)
                self.add_param("b", b)
                self.add_param("tau", tau)

            def rhs(self, s, i):
                return (s.v - s.v**3 / 3 - s.w + i.I, (s.v + self.a - self.b * s.w) / self.tau)

    ``s`` and ``i`` are named tuples, so ``s.v`` and ``i.I`` read by name.
    """

    state_vars: ClassVar[tuple[str, ...]] = ("v",)
    input_names: ClassVar[tuple[str, ...]] = ("I",)
    output_var: ClassVar[str] = "v"
    default_integrator: ClassVar[str] = "euler"
    #: default initial values of state variables (scalars)
    init_defaults: ClassVar[Mapping[str, float]] = {}
    #: whether the model computes in SI units (a model from equations with units): the
    #: network's ``dt`` then carries a unit; the built-in models are unitless (their time
    #: constants share the unit of ``dt``)
    uses_units: ClassVar[bool] = False

    State: ClassVar[type]
    Inputs: ClassVar[type]
    _core: ClassVar[bool] = True  # a base that may define the FINAL methods
    _spiking: ClassVar[bool] = False  # the event rule is SpikingNode's

    #: methods written once in the base: a model declares its mathematics instead (see
    #: the class docstring); the value says what to define
    FINAL: ClassVar[Mapping[str, str]] = MappingProxyType(
        {
            "step": "rhs() (and optionally linear_part(), decay()) for an ODE, or map(), "
            "leaky_map() or window_map() for a discrete map",
            "integrate": "rhs() (and optionally linear_part(), decay()), or map()",
            "kernel": "linear_part() or leaky_map(), for which the compiled plan chooses the "
            "registered fast kernels (rnngraph.nodes.register_kernel)",
        }
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("_core", False):
            for name, instead in cls.FINAL.items():
                owner = _owner(cls, name)  # the class, or a mixin, whose body defines it
                if owner is not None and owner.__dict__.get("_core") is not True:
                    raise TypeError(
                        f"{owner.__name__} overrides {name}(), which DENode writes once for "
                        f"every path (torch, native kernels, e-prop); define {instead} instead"
                    )
        pairs = (("linear_part", "rhs"), ("leaky_map", "map"), ("window_map", "map"),
                 ("decay_map", "map"))  # fmt: skip
        for a, b in pairs:
            if a in cls.__dict__ and b in cls.__dict__:
                raise TypeError(
                    f"{cls.__name__} defines both {a}() and {b}(); define {a}() alone: "
                    f"{b}() is derived from it"
                )
        for attr in ("state_vars", "input_names"):
            names = getattr(cls, attr)
            if not names or any(not n.isidentifier() for n in names):
                raise TypeError(f"{cls.__name__}.{attr} must be a non-empty tuple of identifiers")
        if cls.output_var not in cls.state_vars:
            raise TypeError(
                f"{cls.__name__}.output_var {cls.output_var!r} is not one of its state_vars "
                f"{cls.state_vars}"
            )
        cls.State = namedtuple(f"{cls.__name__}State", cls.state_vars)
        cls.Inputs = namedtuple(f"{cls.__name__}Inputs", cls.input_names)

    def __init__(
        self,
        n: int,
        integrator: str | None = None,
        train: tuple[str, ...] | list[str] | None = None,
        init: Mapping[str, Any] | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            # a subclass passes its **kwargs on to here: name the model and its parameters
            valid = [
                p.name
                for c in (type(self), DENode)
                for p in inspect.signature(c.__init__).parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
            ]
            raise TypeError(
                f"{type(self).__name__}: unknown keyword argument(s) {sorted(unknown)}; "
                f"valid ones are {list(dict.fromkeys(valid))}"
            )
        super().__init__(n)
        self._integrator: str | None = None
        self.integrator = self.default_integrator if integrator is None else integrator
        self._train = {train} if isinstance(train, str) else set(train or ())
        self._param_names: list[str] = []
        self._domains: dict[str, str] = {}
        self._init: dict[str, Tensor] = {}
        for k, v in {**self.init_defaults, **dict(init or {})}.items():
            self.set_init(k, v)

    def __setstate__(self, state: dict) -> None:
        # nodes pickled by earlier versions: a plain ``integrator`` attribute, no parameter
        # domains, initial values as given
        if "integrator" in state:
            state["_integrator"] = state.pop("integrator")
        state.setdefault("_domains", {})
        init = state.get("_init", {})
        state["_init"] = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in init.items()}
        super().__setstate__(state)

    # ---- integrator -------------------------------------------------------------------

    #: labels of models that define their own exact step instead of an integrator
    OWN_STEP_LABELS: ClassVar[tuple[str, ...]] = ("map", "exact")

    @property
    def integrator(self) -> str:
        """The integrator's name (see ``INTEGRATORS``), or ``"map"``/``"exact"`` for models
        that define their own exact step.

        Setting it switches the integrator of every path (torch step, native kernels,
        e-prop) for the next run. A model with its own step keeps it: only its label is
        accepted.
        """
        return self._integrator

    @integrator.setter
    def integrator(self, name: Any) -> None:
        owner = type(self).__name__
        if self._integrator in self.OWN_STEP_LABELS:
            if name != self._integrator:
                raise ValueError(
                    f"{owner}: the model defines its own exact step ({self._integrator!r}); "
                    f"it takes no integrator, got {name!r}"
                )
            return
        if name in self.OWN_STEP_LABELS and self.is_map:
            self._integrator = name
            return
        if not isinstance(name, str) or name not in INTEGRATORS:
            raise ValueError(
                f"{owner}: unknown integrator {name!r}; valid names are {sorted(INTEGRATORS)}"
            )
        if name == "exp_euler" and not self.has_decay:
            raise ValueError(
                f"{owner}: integrator 'exp_euler' needs a model with a linear part "
                "(linear_part() or a decay() method); use 'euler' or 'rk4'"
            )
        self._integrator = name
        self._integrate = INTEGRATORS[name]

    # ---- parameters -------------------------------------------------------------------

    def add_param(
        self, name: str, value: Any, trainable: bool | None = None, domain: str = "real"
    ) -> None:
        """Register a parameter: an ``nn.Parameter`` if trainable, else a buffer.

        ``value`` is a scalar (shared by all units) or an ``(n,)`` tensor/array (one per
        unit). ``trainable=None`` makes it trainable when ``name`` was listed in ``train=``.
        ``domain`` is the range every value must lie in (see ``DOMAINS``: ``"real"``,
        finite; ``"positive"``; ``"nonnegative"``; ``"unit"``, in (0, 1]); it is checked
        here and by ``Network.set_var``.
        """
        if domain not in DOMAINS:
            raise ValueError(
                f"{type(self).__name__}.add_param: unknown domain {domain!r} for parameter "
                f"{name!r}; valid ones are {sorted(DOMAINS)}"
            )
        self._domains[name] = domain
        try:
            t = self.check_param(type(self).__name__, name, value)
        except Exception:
            del self._domains[name]
            raise
        if trainable is None:
            trainable = name in self._train
        if trainable:
            self.register_parameter(name, nn.Parameter(t))
        else:
            self.register_buffer(name, t)
        self._param_names.append(name)

    def check_param(self, where: str, name: str, value: Any) -> Tensor:
        """``value`` as a new float64 tensor for parameter ``name``, checked: finite, in the
        parameter's domain, a scalar or ``(n,)``. Errors name ``where``, the model and the
        parameter."""
        what = f"parameter {name!r}"
        # kept in float64 until the network converts the node to its dtype, so that a value
        # such as 0.3 is not rounded to float32 on the way to a float64 network
        t = as_tensor(where, what, value, dtype=torch.float64)
        if t.dim() > 1 or (t.dim() == 1 and t.shape[0] not in (1, self.n)):
            raise ValueError(
                f"{where}: {what} must be a scalar or have shape ({self.n},), "
                f"got shape {tuple(t.shape)}"
            )
        text, ok = DOMAINS[self._domains.get(name, "real")]
        bad = ~(torch.isfinite(t) & ok(t))
        if bool(bad.any()):
            first = t.reshape(-1)[bad.reshape(-1)][0].item()
            count = f" ({int(bad.sum())} of {t.numel()} values are not)" if t.dim() else ""
            raise ValueError(f"{where}: {what} must be {text}, got {first!r}{count}")
        return t

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(self._param_names)

    def check_train(self) -> None:
        """Raise if ``train=`` named a parameter the model does not have."""
        unknown = self._train - set(self._param_names)
        if unknown:
            raise ValueError(
                f"{type(self).__name__}: train= names unknown parameters {sorted(unknown)}; "
                f"the model's parameters are {list(self._param_names)}"
            )

    # ---- state ------------------------------------------------------------------------

    def in_units(self, where: str, name: str, value: Any) -> Any:
        """``value`` given for the variable or parameter ``name``, in the units the model
        computes in. A model without units takes plain numbers in the unit of ``dt`` and
        refuses a :class:`~rnngraph.units.Quantity` (models from equations with units
        convert one to SI units, see :func:`rnngraph.equation_model`)."""
        if isinstance(value, Quantity):
            raise TypeError(
                f"{where}: {type(self).__name__} has no units (its values are plain "
                f"numbers, times in the unit of dt), got {value!r} for {name!r}"
            )
        return value

    def set_init(self, var: str, value: Any) -> None:
        """Set the initial value of a state variable (restored by ``reset()``): finite, a
        scalar, ``(n,)`` or ``(B, n)`` (one row per batch element); a
        :class:`~rnngraph.units.Quantity` for a model with units."""
        where = f"{type(self).__name__}.set_init"
        value = self.in_units(where, var, value)
        if var not in self.state_vars:
            raise ValueError(
                f"{where}: {var!r} is not a state variable; "
                f"state variables are {list(self.state_vars)}"
            )
        what = f"the initial value of {var!r}"
        t = as_tensor(where, what, value, dtype=torch.float64)
        n = self.var_size(var)
        if t.dim() > 2 or (t.dim() >= 1 and t.shape[-1] not in (1, n)):
            raise ValueError(
                f"{where}: {what} must be a scalar, ({n},) or (B, {n}), got shape {tuple(t.shape)}"
            )
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{where}: {what} must be finite, got {describe(value)}")
        self._init[var] = t

    @property
    def init_batch(self) -> int | None:
        """The batch size that ``(B, n)`` initial values fix (:meth:`set_init`), or ``None``
        when every initial value is shared by all batch elements."""
        sizes = {t.shape[0] for t in self._init.values() if t.dim() == 2 and t.shape[0] > 1}
        return max(sizes) if sizes else None

    def init_state(self, batch_size: int, device=None, dtype=None) -> tuple:
        """The state at time 0: a named tuple of ``(B, var_size(var))`` tensors (in ``dtype``,
        by default that of the node's floating-point parameters)."""
        ref = next(
            (t for t in (*self.parameters(), *self.buffers()) if t.is_floating_point()), None
        )
        device = device if device is not None else (ref.device if ref is not None else None)
        dtype = dtype if dtype is not None else (ref.dtype if ref is not None else None)
        out = []
        for var in self.state_vars:
            v = torch.zeros(batch_size, self.var_size(var), device=device, dtype=dtype)
            if var in self._init:
                init = self._init[var]
                if init.dim() == 2 and init.shape[0] not in (1, batch_size):
                    raise ValueError(
                        f"{type(self).__name__}.init_state: the initial value of {var!r} is "
                        f"for batch size {init.shape[0]}, the run has batch size {batch_size}"
                    )
                v = v + init.to(device=v.device, dtype=v.dtype)
            out.append(v)
        return self.State(*out)

    # ---- the model's mathematics: what a subclass defines ------------------------------

    def linear_part(self) -> Mapping[str, LinearPart] | None:
        r"""Optional structure: every integrated variable is linear,
        :math:`\tau \dot x = \mathrm{rest} + \sum_k g_k I_k - x` (:class:`LinearPart`
        per variable name). A model that declares it defines no :meth:`rhs`: the right-hand
        side, the decay rates and the exact one-step map (:func:`affine_step`) are derived
        from it, and the compiled plan may choose the affine and native kernels. ``None``
        (the default): the model has no declared linear part."""
        return None

    def leaky_map(self) -> LeakyMap | None:
        """Optional structure of a discrete map: a :class:`LeakyMap` (then :meth:`map` is
        derived from it and fast kernels may serve it), or ``None``."""
        return None

    def gain_map(self) -> GainMap | None:
        """Optional structure of a discrete map: a :class:`GainMap` (a leaky map on the
        input, read out through gains and shifts; then :meth:`map` is derived from it and
        the native reservoir loop may serve it, its plasticity rule included), or ``None``."""
        return None

    def decay_map(self) -> DecayMap | None:
        """Optional structure of a discrete map: a :class:`DecayMap` (then :meth:`map` is
        derived from it and a kernel with its decay bound once may serve it), or ``None``."""
        return None

    def plain_structure(self, name: str) -> str | None:
        """Why the kernels of the declared structure ``name`` (``"leaky_map"``,
        ``"decay_map"``) cannot serve the model, or ``None``: the declaration must hold
        (:meth:`structure`) and the model emit its variable as it is (no output function,
        no output or event of its own). e-prop's readout asks the same of a decay map."""
        why = self.structure(name)[1] or self.plain_output()
        if why is None and self.output_function is not None:
            why = "the output goes through an output function"
        return why

    def window_map(self) -> WindowMap | None:
        """Optional structure of a discrete map: a :class:`WindowMap` (the state is a window
        of the last inputs, the output a fixed function of it; then :meth:`map` is derived
        from it and the plan computes whole chunks of steps at once), or ``None``."""
        return None

    def rhs(self, s: tuple, i: tuple) -> tuple:
        """Time derivatives of the integrated variables (:meth:`ode_names`), in order;
        derived from :meth:`linear_part` when the model declares one."""
        lin = self._declared_linear()
        if lin is None:
            raise NotImplementedError(f"{type(self).__name__} defines no rhs() or linear_part()")
        return tuple((lin[v].fixed_point(i) - getattr(s, v)) / lin[v].tau for v in self.ode_names())

    def decay(self, s: tuple) -> tuple:
        """Linear decay rate ``a`` per integrated variable (``None`` where there is none),
        for ``exp_euler``; derived from :meth:`linear_part` when the model declares one."""
        lin = self._declared_linear()
        if lin is None:
            raise NotImplementedError(f"{type(self).__name__} defines no decay()")
        return tuple(1.0 / lin[v].tau for v in self.ode_names())

    def map(self, s: tuple, i: tuple, dt: float) -> tuple:
        """The state after one step of a discrete-map model (``integrator="map"`` or
        ``"exact"``); derived from :meth:`leaky_map`, :meth:`gain_map`, :meth:`decay_map` or
        :meth:`window_map` when the model declares one."""
        lm = self.leaky_map()
        if lm is not None:
            return self.State(lm.step(s[0], getattr(i, lm.input)))
        gm = self.gain_map()
        if gm is not None:
            return self.State(*gm.step(s[0], getattr(i, gm.input)))
        dm = self.decay_map()
        if dm is not None:
            return self.State(dm.step(s[0], getattr(i, dm.input), dm.kappa(dt)))
        wm = self.window_map()
        if wm is None:
            raise NotImplementedError(f"{type(self).__name__} defines no map()")
        return self.State(*wm.step(s[0], getattr(i, wm.input)))

    def event(self, before: tuple, after: tuple, dt: float) -> tuple:
        """Discontinuous rule applied after integration (spike, reset), from the state
        ``before`` the step and the integrated state ``after``; identity here."""
        return after

    #: a static map applied to ``output_var`` to give the output (``None``: the variable
    #: itself); set by a model in ``__init__``, e.g. ``tanh`` for a rate unit
    output_function: Callable[[Tensor], Tensor] | None = None

    def output(self, s: tuple) -> Tensor:
        """The node's output: :attr:`output_function` of the state variable ``output_var``
        (the variable itself when there is none)."""
        y = getattr(s, self.output_var)
        f = self.output_function
        return y if f is None else f(y)

    def add_noise(self, s: tuple, i: tuple, dt: float) -> tuple:
        """The step's inputs with the model's own noise added (identity here; see
        :attr:`noisy`)."""
        return i

    def kernel_options(self) -> tuple:
        """The options a kernel of this node is built for, besides ``dt`` and the
        parameters' values: a kernel built for other options is built again."""
        return (self.integrator, self.noisy, id(self.output_function))

    @property
    def noisy(self) -> bool:
        """Whether :meth:`add_noise` draws anything (kernels without noise then stand aside):
        by default, whether the model defines ``add_noise``."""
        return _defines(type(self), "add_noise")

    def plain_output(self) -> str | None:
        """Why the fast kernels' reading of the output (the variable ``output_var``,
        through :attr:`output_function` where a kernel allows one) and of the inputs (no
        noise, no event rule of a rate model's own) does not hold for this model, or
        ``None`` when it does."""
        cls = type(self)
        for name in ("output", "add_noise") + (() if self._spiking else ("event",)):
            if _defines(cls, name):
                return f"{_owner(cls, name).__name__} defines {name}()"
        return "the model draws noise" if self.noisy else None

    # ---- declared structure, as the paths read it ----------------------------------------

    def ode_names(self) -> tuple[str, ...]:
        """The integrated variables (all state variables of a rate model)."""
        return self.state_vars

    @property
    def is_map(self) -> bool:
        """Whether the model is a discrete map (defines :meth:`map`, :meth:`leaky_map`,
        :meth:`gain_map` or :meth:`window_map`)."""
        maps = ("map", "leaky_map", "gain_map", "decay_map", "window_map")
        return any(_defines(type(self), m) for m in maps)

    @property
    def has_decay(self) -> bool:
        """Whether ``exp_euler`` applies: decay rates defined or a linear part declared."""
        return _defines(type(self), "decay") or _defines(type(self), "linear_part")

    def structure(self, name: str) -> tuple[Any, str | None]:
        """The declared structure ``name`` (``"linear_part"``, ``"leaky_map"``,
        ``"gain_map"``, ``"decay_map"`` or ``"window_map"``) if the model's mathematics
        still is what it declares, and ``None``; else ``None`` and why.

        A declaration holds for the class that makes it and its subclasses, unless a
        subclass redefines the mathematics it describes (``rhs``/``decay`` for a linear
        part, ``map`` for a map, ``plasticity`` for a gain map's rule, and
        ``output``/``event`` for all) without declaring
        it again: an empty subclass keeps the fast paths of its base, one that changes
        its equations gets the generic path."""
        why = _withdrawn(type(self), name)
        if why is not None:
            return None, why
        value = getattr(self, name)()
        return (value, None) if value is not None else (None, f"{name}() returns None")

    def _declared_linear(self) -> Mapping[str, LinearPart] | None:
        return self.linear_part() if _defines(type(self), "linear_part") else None

    def integration(self) -> tuple[str, str | None]:
        """How :meth:`integrate` advances the continuous state: ``("map", None)``,
        ``("affine map", None)``, or the integrator's name and why the affine map does not
        apply (e.g. ``"MyLIF overrides rhs() and declares no linear part"``)."""
        if self.is_map:
            return self.integrator, None
        lin, why = self.structure("linear_part")
        if lin is not None and self.integrator in AFFINE_GAINS:
            return "affine map", None
        if lin is not None:
            why = f"integrator {self.integrator!r} has no affine one-step map"
        return self.integrator, why

    # ---- one step: written once, for every path -------------------------------------------

    def integrate(self, s: tuple, i: tuple, dt: float) -> tuple:
        """The state after integrating the step (before the event rule): the model's map,
        the exact affine map of a declared linear part, or the integrator on :meth:`rhs`."""
        if self.is_map:
            return self.map(s, i, dt)
        lin, _ = self.structure("linear_part")
        if lin is not None and self.integrator in AFFINE_GAINS:
            return self.State(*self._affine(lin, s, i, dt))
        return self._integrate(self, s, i, dt)

    def _affine(self, lin: Mapping[str, LinearPart], s: tuple, i: tuple, dt: float) -> list:
        """The affine one-step map of each variable of ``lin``, in ``ode_names`` order."""
        out = []
        for v in self.ode_names():
            x, part = getattr(s, v), lin[v]
            g = affine_gain(self.integrator, dt, part.tau, x)
            out.append(affine_step(x, part.fixed_point(i), g))
        return out

    def step(self, s: tuple, i: tuple, dt: float) -> tuple[Tensor, tuple]:
        """Advance one step of length ``dt`` under input ``i``; return ``(output, state)``:
        integrate, apply the event rule, emit the output."""
        i = self.add_noise(s, i, dt)
        new = self.event(s, self.integrate(s, i, dt), dt)
        return self.output(new), new

    def kernel(self, dt: float) -> Callable[..., tuple[Tensor, tuple]]:
        """The step as the compiled time loop calls it: ``k(state, *inputs) -> (y, state)``
        (inputs in the order of ``input_names``, a zero tensor where no edge feeds one).
        The generic kernel; the compiled plan may choose a registered faster one."""
        step, Inputs = self.step, self.Inputs

        def k(s: tuple, *i: Tensor) -> tuple[Tensor, tuple]:
            return step(s, Inputs(*i), dt)

        return k

    def extra_repr(self) -> str:
        params = []
        for name in self._param_names:
            t = getattr(self, name)
            val = f"{t.item():g}" if t.numel() == 1 else f"<{tuple(t.shape)}>"
            params.append(f"{name}={val}")
        return ", ".join([f"n={self.n}", f"integrator={self.integrator!r}", *params])
