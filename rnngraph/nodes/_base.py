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
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from .._checks import as_tensor, describe

__all__ = ["Node", "FuncNode", "DENode", "ACTIVATIONS", "INTEGRATORS", "DOMAINS"]


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
        """Number of values that ``var`` (``None``: the output) holds per batch element."""
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

    which is exact for a linear leak under constant input. Variables without a decay rate
    take a forward-Euler step.
    """
    rates = node.decay(s)
    deriv = node.rhs(s, i)
    out = []
    for x, d, a in zip(s, deriv, rates, strict=True):
        if a is None:
            out.append(x + dt * d)
        else:
            g = d + a * x
            e = torch.exp(-a * dt) if isinstance(a, Tensor) else math.exp(-a * dt)
            out.append(e * x + (1.0 - e) / a * g)
    return node.State(*out)


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

    State: ClassVar[type]
    Inputs: ClassVar[type]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
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
        if name in self.OWN_STEP_LABELS and type(self).step is not DENode.step:
            self._integrator = name
            return
        if not isinstance(name, str) or name not in INTEGRATORS:
            raise ValueError(
                f"{owner}: unknown integrator {name!r}; valid names are {sorted(INTEGRATORS)}"
            )
        if name == "exp_euler" and type(self).decay is DENode.decay:
            raise ValueError(
                f"{owner}: integrator 'exp_euler' needs a model with a linear part "
                "(a decay() method); use 'euler' or 'rk4'"
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

    def set_init(self, var: str, value: Any) -> None:
        """Set the initial value of a state variable (restored by ``reset()``): finite, a
        scalar, ``(n,)`` or ``(B, n)`` (one row per batch element)."""
        where = f"{type(self).__name__}.set_init"
        if var not in self.state_vars:
            raise ValueError(
                f"{where}: {var!r} is not a state variable; "
                f"state variables are {list(self.state_vars)}"
            )
        what = f"the initial value of {var!r}"
        t = as_tensor(where, what, value, dtype=torch.float64)
        if t.dim() > 2 or (t.dim() >= 1 and t.shape[-1] not in (1, self.n)):
            raise ValueError(
                f"{where}: {what} must be a scalar, ({self.n},) or (B, {self.n}), "
                f"got shape {tuple(t.shape)}"
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
        """The state at time 0: a named tuple of ``(B, n)`` tensors (in ``dtype``, by default
        that of the node's floating-point parameters)."""
        ref = next(
            (t for t in (*self.parameters(), *self.buffers()) if t.is_floating_point()), None
        )
        device = device if device is not None else (ref.device if ref is not None else None)
        dtype = dtype if dtype is not None else (ref.dtype if ref is not None else None)
        out = []
        for var in self.state_vars:
            v = torch.zeros(batch_size, self.n, device=device, dtype=dtype)
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

    # ---- dynamics -----------------------------------------------------------------------

    def rhs(self, s: tuple, i: tuple) -> tuple:
        """Time derivatives of the state variables, in the order of ``state_vars``."""
        raise NotImplementedError(f"{type(self).__name__} defines no rhs()")

    def decay(self, s: tuple) -> tuple:
        """Linear decay rate ``a`` per state variable (``None`` where there is none)."""
        raise NotImplementedError

    def event(self, s: tuple) -> tuple:
        """Discontinuous rule applied after integration (spike, reset); identity here."""
        return s

    def output(self, s: tuple) -> Tensor:
        """The node's output: by default the state variable ``output_var``."""
        return getattr(s, self.output_var)

    def kernel(self, dt: float) -> Callable[..., tuple[Tensor, tuple]]:
        """The step as the compiled time loop calls it: ``k(state, *inputs) -> (y, state)``.

        Built once per run, so a model may bind its parameters and constants here and skip
        work that does not apply (a zero bias, say). The default calls :meth:`step`. ``state``
        is a tuple in the order of ``state_vars`` and so must be the state returned; inputs
        come in the order of ``input_names`` (a zero tensor where no edge feeds one).
        """
        step, Inputs = self.step, self.Inputs

        def k(s: tuple, *i: Tensor) -> tuple[Tensor, tuple]:
            return step(s, Inputs(*i), dt)

        return k

    def step(self, s: tuple, i: tuple, dt: float) -> tuple[Tensor, tuple]:
        """Advance one step of length ``dt`` under input ``i``; return ``(output, state)``."""
        s = self.event(self._integrate(self, s, i, dt))
        return self.output(s), s

    def extra_repr(self) -> str:
        params = []
        for name in self._param_names:
            t = getattr(self, name)
            val = f"{t.item():g}" if t.numel() == 1 else f"<{tuple(t.shape)}>"
            params.append(f"{name}={val}")
        return ", ".join([f"n={self.n}", f"integrator={self.integrator!r}", *params])
