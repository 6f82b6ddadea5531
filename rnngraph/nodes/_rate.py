"""Rate models: the ESN leaky-tanh map, leaky integrators and the QIF mean field."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ._base import ACTIVATIONS, DecayMap, DENode, LeakyMap, LinearPart

__all__ = ["LeakyTanh", "LeakyIntegrator", "RectiPyLI", "QIFMeanField", "LeakyReadout"]


def _activation(owner: str, name: str | Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    if callable(name):
        return name
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(
            f"{owner}: unknown activation {name!r}; valid names are {sorted(ACTIVATIONS)}"
        )
    return ACTIVATIONS[name]


def _activation_name(f: str | Callable[[Tensor], Tensor]) -> str:
    return f if isinstance(f, str) else getattr(f, "__name__", type(f).__name__)


def _map_only(owner: str, kwargs: dict, what: str = "a discrete map", hint: str = "") -> dict:
    """``kwargs`` without ``integrator``: a discrete map takes none (or ``"map"``)."""
    kwargs = dict(kwargs)
    integrator = kwargs.pop("integrator", None)
    if integrator not in (None, "map"):
        raise ValueError(
            f"{owner}: this is {what}, it takes no integrator (got integrator={integrator!r}){hint}"
        )
    return kwargs


class LeakyTanh(DENode):
    r"""Echo-state reservoir units: the discrete leaky map of reservoirpy's ``Reservoir``.

    .. math:: x(t) = (1 - \lambda)\,x(t-1) + \lambda\,f\big(I(t) + b\big)

    with leak rate :math:`\lambda` (``lr``, per step, dimensionless), bias :math:`b` and
    :math:`f = \tanh` by default. With a feedback self-edge ``W`` and an input edge
    ``W_in`` the input is :math:`I(t) = W x(t-1) + W_{in} u(t)`, reservoirpy's update.
    The map is defined per step: ``dt`` does not enter it (it equals forward Euler on
    :math:`\tau \dot x = -x + f(I + b)` with :math:`\lambda = dt/\tau`).

    Parameters
    ----------
    n : int
        Number of units.
    lr : float or tensor
        Leak rate in (0, 1], scalar or ``(n,)``; default 0.3.
    bias : float or tensor
        Bias :math:`b`, scalar or ``(n,)``; default 0.
    activation : str or callable
        :math:`f`, by name (see ``ACTIVATIONS``) or a callable; default ``"tanh"``.

    Shape
    -----
    State ``x``: ``(B, n)``; input ``I``: ``(B, n)``; output ``x``.
    """

    state_vars = ("x",)
    input_names = ("I",)
    output_var = "x"

    def __init__(self, n: int, lr=0.3, bias=0.0, activation="tanh", **kwargs):
        super().__init__(
            n, **_map_only("LeakyTanh", kwargs, hint="; use 'leaky_integrator' for the ODE")
        )
        self.integrator = "map"
        self.add_param("lr", lr, domain="unit")
        self.add_param("bias", bias)
        self._f = _activation("LeakyTanh", activation)
        self.activation = _activation_name(activation)
        self.check_train()

    def leaky_map(self) -> LeakyMap:
        r""":math:`x(t) = (1 - \lambda) x(t-1) + \lambda f(I(t) + b)`."""
        return LeakyMap(self.lr, self.bias, self._f, "I")


class LeakyIntegrator(DENode):
    r"""Continuous leaky integrator with a static output nonlinearity.

    .. math:: \tau\,\dot v = -v + I, \qquad r = f(v)

    Parameters
    ----------
    n : int
        Number of units.
    tau : float or tensor
        Time constant (> 0), in the unit of ``dt``; default 10.
    activation : str or callable
        Output map :math:`f`; default ``"tanh"``.
    integrator : str
        ``"euler"`` (default), ``"rk4"`` or ``"exp_euler"`` (exact for piecewise-constant
        input).

    Shape
    -----
    State ``v``: ``(B, n)``; input ``I``: ``(B, n)``; output ``r = f(v)``: ``(B, n)``.

    As equations (:func:`rnngraph.equation_model` of them equals this class to 1e-12
    in float64)::

        dv/dt = (I - v)/tau : 1
        output: tanh(v)

    """

    state_vars = ("v",)
    input_names = ("I",)
    output_var = "v"

    def __init__(self, n: int, tau=10.0, activation="tanh", **kwargs):
        super().__init__(n, **kwargs)
        self.add_param("tau", tau, domain="positive")
        self.output_function = _activation("LeakyIntegrator", activation)
        self.activation = _activation_name(activation)
        self.check_train()

    def linear_part(self) -> dict[str, LinearPart]:
        r""":math:`\tau \dot v = I - v`."""
        return {"v": LinearPart(self.tau, 0.0, {"I": 1.0})}


class RectiPyLI(DENode):
    r"""RectiPy's leaky-integrator rate template (``leaky_integrator.tanh`` / ``.sigmoid``).

    .. math:: \dot v = -v/\tau + k\,r_{in} + I_{ext} + \eta, \qquad r = f(v)

    with :math:`f = \tanh` or the logistic sigmoid. The recurrent input arrives on
    ``r_in`` through a feedback self-edge (``target_var="r_in"``); external input on
    ``I_ext``, the main input.

    Parameters
    ----------
    n : int
        Number of units.
    tau : float or tensor
        Time constant (> 0), in the unit of ``dt``; default 10 (the template's).
    k : float or tensor
        Gain of the recurrent input; default 1.
    eta : float or tensor
        Constant drive; default 0.
    activation : str
        ``"tanh"`` (default) or ``"sigmoid"``.

    Shape
    -----
    State ``v``: ``(B, n)``; inputs ``I_ext``, ``r_in``: ``(B, n)``; output ``f(v)``.
    """

    state_vars = ("v",)
    input_names = ("I_ext", "r_in")
    output_var = "v"

    def __init__(self, n: int, tau=10.0, k=1.0, eta=0.0, activation="tanh", **kwargs):
        super().__init__(n, **kwargs)
        self.add_param("tau", tau, domain="positive")
        self.add_param("k", k)
        self.add_param("eta", eta)
        self.output_function = _activation("RectiPyLI", activation)
        self.activation = _activation_name(activation)
        self.check_train()

    def linear_part(self) -> dict[str, LinearPart]:
        r""":math:`\tau \dot v = \tau\eta + \tau I_{ext} + \tau k\,r_{in} - v`, the
        template's :math:`\dot v = -v/\tau + k\,r_{in} + I_{ext} + \eta`."""
        tau = self.tau
        return {"v": LinearPart(tau, tau * self.eta, {"I_ext": tau, "r_in": tau * self.k})}


class QIFMeanField(DENode):
    r"""Mean field of all-to-all coupled QIF neurons (Montbrio, Pazo & Roxin 2015).

    .. math::

        \tau\,\dot r &= \frac{\Delta}{\pi\tau} + 2\,r\,v \\
        \tau\,\dot v &= v^2 + \eta + I - (\pi\,\tau\,r)^2

    :math:`r` is the population firing rate (1/unit of ``dt``), :math:`v` the mean membrane
    potential, :math:`\Delta` the half-width of the Lorentzian distribution of excitabilities
    centred at :math:`\eta`. The recurrent drive :math:`J\tau r` is not built in: it arrives
    through a feedback self-edge with weight :math:`J\tau`, so a mean-field node and a
    network of QIF neurons are wired the same way.

    Parameters
    ----------
    n : int
        Number of populations.
    tau : float or tensor
        Membrane time constant (> 0), in the unit of ``dt``; default 1.
    Delta : float or tensor
        Heterogeneity (>= 0); default 1.
    eta : float or tensor
        Mean excitability; default -5.
    integrator : str
        ``"euler"`` (default) or ``"rk4"``.

    Shape
    -----
    State ``r``, ``v``: ``(B, n)``; input ``I``: ``(B, n)``; output ``r``.

    As equations (:func:`rnngraph.equation_model` of them equals this class to 1e-12
    in float64)::

        dr/dt = (Delta/(pi*tau) + 2*r*v)/tau : 1
        dv/dt = (v*v + eta + I - (pi*tau*r)**2)/tau : 1

    """

    state_vars = ("r", "v")
    input_names = ("I",)
    output_var = "r"

    def __init__(self, n: int, tau=1.0, Delta=1.0, eta=-5.0, **kwargs):
        super().__init__(n, **kwargs)
        self.add_param("tau", tau, domain="positive")
        self.add_param("Delta", Delta, domain="nonnegative")
        self.add_param("eta", eta)
        self.check_train()

    def rhs(self, s, i):
        tau = self.tau
        dr = (self.Delta / (math.pi * tau) + 2.0 * s.r * s.v) / tau
        dv = (s.v * s.v + self.eta + i.I - (math.pi * tau * s.r) ** 2) / tau
        return dr, dv


class LeakyReadout(DENode):
    r"""Leaky readout units: the output layer of Bellec et al. (2020, e-prop,
    doi:10.1038/s41467-020-17236-y).

    .. math:: y(t) = \kappa\,y(t-1) + I(t), \qquad \kappa = e^{-dt/\tau}

    With a readout edge :math:`I(t) = W_{out}\,z(t) + b` from a spiking population this is
    :math:`y_k(t) = \kappa y_k(t-1) + \sum_j W^{out}_{kj} z_j(t) + b_k`. The map is exact
    per step (no integrator); the input of step :math:`t` enters without a factor
    :math:`(1 - \kappa)`, so a constant input :math:`I` settles at :math:`I / (1 - \kappa)`.

    Parameters
    ----------
    n : int
        Number of output units.
    tau : float or tensor
        Time constant of the readout (> 0), in the unit of ``dt``; default 20 (ms when ``dt`` is
        in ms). Scalar or ``(n,)``.

    Shape
    -----
    State ``y``: ``(B, n)``; input ``I``: ``(B, n)``; output ``y``.
    """

    state_vars = ("y",)
    input_names = ("I",)
    output_var = "y"

    def __init__(self, n: int, tau=20.0, **kwargs):
        super().__init__(n, **_map_only("LeakyReadout", kwargs, "an exact discrete map"))
        self.integrator = "map"
        self.add_param("tau", tau, domain="positive")
        self.check_train()

    def kappa(self, dt: float) -> Tensor:
        r"""The decay per step :math:`\kappa = e^{-dt/\tau}` (scalar or ``(n,)``)."""
        return torch.exp(-dt / self.tau)

    def decay_map(self) -> DecayMap:
        r""":math:`y(t) = \kappa\,y(t-1) + I(t)` (``map`` is derived from it)."""
        return DecayMap(self.kappa, "I")
