r"""Synaptic filters: spike trains in, synaptic currents out.

A synapse node sits between a spiking population and its target: ``pop -> syn`` carries the
spikes (an edge, typically the identity or a weight matrix, so each synapse unit sums its
weighted input spikes), ``syn -> target`` the filtered current. Its state evolves without
input between spikes; the spikes of step :math:`k` arrive at the end of step :math:`k` as
instantaneous jumps, so the trace integrates exactly whatever ``dt``:

* ``exp_syn`` (:class:`ExpSynapse`): :math:`\tau \dot s = -s`, jump
  :math:`s \mathrel{+}= c\,x(k)`;
* ``double_exp_syn`` (:class:`DoubleExpSynapse`, Nicola & Clopath 2017):
  :math:`\dot r = -r/\tau_d + h`, :math:`\dot h = -h/\tau_r`, jump
  :math:`h \mathrel{+}= c\,x(k)`.

**Unit convention** (``normalize``): with ``normalize=False`` (default) a single spike of
weight 1 makes an exponential trace jump by 1 and a double-exponential trace peak at 1; with
``normalize=True`` the kernel has unit area (jump :math:`1/\tau`, resp.
:math:`1/(\tau_r \tau_d)` into :math:`h`), so that the trace of a spike train of rate
:math:`\nu` averages :math:`\nu` (in 1/unit of ``dt``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._base import DENode

__all__ = ["DoubleExpSynapse", "ExpSynapse"]


def _exact_only(owner: str, kwargs: dict[str, Any]) -> None:
    integrator = kwargs.pop("integrator", None)
    if integrator not in (None, "exact"):
        raise ValueError(
            f"{owner}: a synapse is integrated exactly between spikes; it takes no integrator "
            f"(got integrator={integrator!r})"
        )


def _flag(owner: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{owner}: {name} must be True or False, got {value!r}")
    return bool(value)


class ExpSynapse(DENode):
    r"""Exponential current synapses.

    .. math:: \tau \frac{ds}{dt} = -s + c \sum_k x_k\,\delta(t - t_k)

    One step: :math:`s(k) = e^{-dt/\tau} s(k-1) + c\,x(k)`, with :math:`x(k)` the input
    (weighted spikes) of step :math:`k`; :math:`c = 1` (``normalize=False``, default) or
    :math:`1/\tau` (``normalize=True``, unit-area kernel). See the module docstring for where
    the node goes in a graph.

    Parameters
    ----------
    n : int
        Number of synapse units.
    tau : float or tensor
        Decay time constant (> 0); default 5 (ms when ``dt`` is in ms).
    normalize : bool
        Unit-area kernel instead of a unit jump.

    Shape
    -----
    Input ``spikes``: ``(B, n)``. State and output ``s``: ``(B, n)``.

    As equations, with ``normalize=False`` (:func:`rnngraph.equation_model` of them equals
    this class to 1e-12 in float64)::

        ds/dt = -s/tau : 1
        on_input: s += spikes
        method: exact

    """

    state_vars = ("s",)
    input_names = ("spikes",)
    output_var = "s"

    def __init__(self, n: int, tau: Any = 5.0, normalize: bool = False, **kwargs: Any) -> None:
        _exact_only("ExpSynapse", kwargs)
        super().__init__(n, integrator="exp_euler", **kwargs)
        self.integrator = "exact"
        self.add_param("tau", tau, domain="positive")
        self.normalize = _flag("ExpSynapse", "normalize", normalize)
        self.check_train()

    def rhs(self, s: tuple, i: tuple) -> tuple:
        return (-s.s / self.tau,)

    def decay(self, s: tuple) -> tuple:
        return (1.0 / self.tau,)

    def map(self, s: tuple, i: tuple, dt: float) -> tuple:
        """One exact step: decay, then the jump of this step's input."""
        jump = i.spikes / self.tau if self.normalize else i.spikes
        return self.State(torch.exp(-dt / self.tau) * s.s + jump)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, normalize={self.normalize}"


class DoubleExpSynapse(DENode):
    r"""Double-exponential (rise and decay) current synapses (Nicola & Clopath 2017,
    doi:10.1038/s41467-017-01827-3).

    .. math::

        \frac{dr}{dt} = -\frac{r}{\tau_d} + h, \qquad
        \frac{dh}{dt} = -\frac{h}{\tau_r} + c \sum_k x_k\,\delta(t - t_k)

    One step, exact between spikes:

    .. math::

        r(k) &= e^{-dt/\tau_d}\,r(k-1) + h(k-1)\,
               \frac{e^{-dt/\tau_r} - e^{-dt/\tau_d}}{1/\tau_d - 1/\tau_r} \\
        h(k) &= e^{-dt/\tau_r}\,h(k-1) + c\,x(k)

    A spike of step :math:`k` enters :math:`h(k)` and :math:`r` from step :math:`k+1`; the
    kernel of :math:`r` is :math:`c\,\tau_r\tau_d\,(e^{-t/\tau_d} - e^{-t/\tau_r})/(\tau_d -
    \tau_r)`. :math:`c = 1/(\tau_r \tau_d)` with ``normalize=True`` (unit area, Nicola &
    Clopath's form); with ``normalize=False`` (default) :math:`c` makes the kernel's peak 1.

    Parameters
    ----------
    n : int
        Number of synapse units.
    tau_r, tau_d : float or tensor
        Rise and decay time constants (> 0), different from each other; defaults 2 and 20
        (ms).
    normalize : bool
        Unit-area kernel instead of a unit peak.

    Shape
    -----
    Input ``spikes``: ``(B, n)``. State ``r``, ``h``: ``(B, n)``; output ``r``.

    As equations, with ``normalize=False`` (:func:`rnngraph.equation_model` of them equals
    this class to 1e-12 in float64; ``method: exact`` solves the linear system)::

        dr/dt = -r/tau_d + h : 1
        dh/dt = -h/tau_r : 1
        t_peak = tau_r*tau_d*log(tau_d/tau_r)/(tau_d - tau_r) : 1
        peak = (exp(-t_peak/tau_d) - exp(-t_peak/tau_r))/(tau_d - tau_r) : 1
        on_input: h += spikes/(tau_r*tau_d*peak)
        method: exact

    """

    state_vars = ("r", "h")
    input_names = ("spikes",)
    output_var = "r"

    def __init__(
        self, n: int, tau_r: Any = 2.0, tau_d: Any = 20.0, normalize: bool = False, **kwargs: Any
    ) -> None:
        _exact_only("DoubleExpSynapse", kwargs)
        super().__init__(n, integrator="exp_euler", **kwargs)
        self.integrator = "exact"
        normalize = _flag("DoubleExpSynapse", "normalize", normalize)
        self.add_param("tau_r", tau_r, domain="positive")
        self.add_param("tau_d", tau_d, domain="positive")
        if not bool((self.tau_r != self.tau_d).all()):
            raise ValueError(
                "DoubleExpSynapse: tau_r and tau_d must differ (the kernel is their difference "
                f"of exponentials), got tau_r={self.tau_r.tolist()}, tau_d={self.tau_d.tolist()}"
            )
        self.normalize = normalize
        self.check_train()

    def rhs(self, s: tuple, i: tuple) -> tuple:
        return (-s.r / self.tau_d + s.h, -s.h / self.tau_r)

    def decay(self, s: tuple) -> tuple:
        return (1.0 / self.tau_d, 1.0 / self.tau_r)

    def jump(self) -> Tensor:
        """The jump :math:`c` of :math:`h` per unit of input."""
        tr, td = self.tau_r, self.tau_d
        c = 1.0 / (tr * td)
        if self.normalize:
            return c
        t_peak = tr * td * torch.log(td / tr) / (td - tr)
        peak = (torch.exp(-t_peak / td) - torch.exp(-t_peak / tr)) / (td - tr)
        return 1.0 / (tr * td * peak)

    def map(self, s: tuple, i: tuple, dt: float) -> tuple:
        """One exact step of ``r`` and ``h``, then the jump of this step's input."""
        tr, td = self.tau_r, self.tau_d
        er, ed = torch.exp(-dt / tr), torch.exp(-dt / td)
        r = ed * s.r + s.h * (er - ed) / (1.0 / td - 1.0 / tr)
        return self.State(r, er * s.h + self.jump() * i.spikes)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, normalize={self.normalize}"
