r"""Norse's LIF cells (Norse 1.1) in rnngraph's terms.

Norse's ``LIFCell`` and ``LIFRecurrentCell`` integrate a current-based LIF neuron by one
forward-Euler step of ``dt``: the input current jumps into the synaptic current first,

.. math::

    i'(t) &= i(t-1) + x(t) \quad (+\,W_{rec} z(t-1) \text{ for the recurrent cell}) \\
    v(t) &= v(t-1) + dt\,\tau_{mem}^{-1}\,(v_{leak} - v(t-1) + i'(t)) \\
    z(t) &= H(v(t) - v_{th}), \qquad v(t) \leftarrow (1 - z)\,v(t) + z\,v_{reset} \\
    i(t) &= (1 - dt\,\tau_{syn}^{-1})\,i'(t),

from :math:`v = v_{leak}`, :math:`i = 0`. In rnngraph this is an
:class:`~rnngraph.nodes.ExpSynapse` ``label + "_syn"`` whose state after the step's jump
is :math:`i'`, with :math:`\tau = -dt / \ln(1 - dt\,\tau_{syn}^{-1})` (its exact decay is
Norse's Euler factor), feeding an :class:`~rnngraph.nodes.LIF` ``label`` through an identity
edge: ``integrator="euler"``, :math:`\tau_m = 1/\tau_{mem}^{-1}`, :math:`v_{rest} =
v_{leak}`, :math:`R = 1`, ``reset="value"``. The recurrent cell's :math:`W_{rec}` is the
feedback edge ``label -> label_syn`` (one step late).

Gradients: Norse 1.1's SuperSpike (``method="super"``) differentiates :math:`H` at
:math:`v - v_{th}` as :math:`1/(|v - v_{th}| + 1)^2` (its ``alpha`` enters no formula), which
is rnngraph's ``fast_sigmoid`` with scale 1 when :math:`v_{th} - v_{reset} = 1` (rnngraph
takes the distance to threshold in units of that gap; another gap is refused). The
feed-forward cell's reset carries the spike's gradient (``detach_reset=False``), the
recurrent cell's does not (Norse detaches it there).

Parameters come as Norse's ``LIFParameters`` (any object with its attribute names), or
``None`` for Norse's defaults; every one of them is honoured or refused (a parameter that
requires grad is refused: Norse would train it, rnngraph's node trains its own). Tests against Norse
itself: ``tests/test_peer_norse.py``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .._checks import as_flag, as_int
from ..nodes import LIF, ExpSynapse
from ._build import all_or_nothing, current_into

__all__ = ["DEFAULTS", "lif_cell", "lif_recurrent_cell"]

#: Norse 1.1's ``LIFParameters()`` (1/s, with ``dt`` in s)
DEFAULTS = {
    "tau_syn_inv": 200.0,
    "tau_mem_inv": 100.0,
    "v_leak": 0.0,
    "v_th": 1.0,
    "v_reset": 0.0,
    "method": "super",
    "alpha": 100.0,
}


def _number(where: str, name: str, value: Any) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{where}: p.{name} must be one number, got shape {value.shape}")
        if value.requires_grad:
            raise ValueError(
                f"{where}: a trainable p.{name} is not reproduced (rnngraph trains its own "
                "parameters, tau_m rather than tau_mem_inv); give a fixed value"
            )
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}: p.{name} must be a finite number, got {value!r}")
    return float(value)


def _parameters(where: str, p: Any) -> dict[str, Any]:
    """Norse's parameters from ``p`` (``None``: its defaults), checked."""
    if p is None:
        return dict(DEFAULTS)
    missing = [k for k in DEFAULTS if not hasattr(p, k)]
    if missing:
        raise TypeError(f"{where}: p has no {missing}; give Norse's LIFParameters or None")
    out = {k: _number(where, k, getattr(p, k)) for k in DEFAULTS if k != "method"}
    out["method"] = p.method
    if out["method"] != "super":
        raise ValueError(
            f"{where}: only Norse's method='super' (SuperSpike) is reproduced, "
            f"got {out['method']!r}"
        )
    if abs(out["v_th"] - out["v_reset"] - 1.0) > 1e-6:  # float32 parameters: 1 to rounding
        raise ValueError(
            f"{where}: Norse's SuperSpike gradient is reproduced where v_th - v_reset = 1, "
            f"got {out['v_th']!r} - {out['v_reset']!r}"
        )
    return out


def _add(net: Any, where: str, label: str, n: int, p: Any, detach_reset: bool) -> tuple[str, str]:
    q = _parameters(where, p)
    n = as_int(where, "n", n, minimum=1)
    dt = net.dt
    decay = 1.0 - dt * q["tau_syn_inv"]
    if not 0.0 < decay < 1.0:
        raise ValueError(
            f"{where}: dt * tau_syn_inv must lie in (0, 1) (Norse's Euler decay of the current), "
            f"got {dt} * {q['tau_syn_inv']}"
        )
    if not 0.0 < dt * q["tau_mem_inv"] <= 1.0:
        raise ValueError(
            f"{where}: dt * tau_mem_inv must lie in (0, 1], got {dt} * {q['tau_mem_inv']}"
        )
    lif = LIF(
        n,
        tau_m=1.0 / q["tau_mem_inv"],
        v_rest=q["v_leak"],
        v_th=q["v_th"],
        v_reset=q["v_reset"],
        r_m=1.0,
        reset="value",
        integrator="euler",
        surrogate="fast_sigmoid",
        surrogate_scale=1.0,
        detach_reset=detach_reset,
    )
    return current_into(net, label, ExpSynapse(n, tau=-dt / math.log(decay)), lif)


def lif_cell(net: Any, label: str, n: int, p: Any = None) -> tuple[str, str]:
    """Add Norse's ``LIFCell(p, dt=net.dt)`` of ``n`` units: the synaptic current
    ``label + "_syn"`` (connect the input currents to it) and the membrane ``label`` (its
    spikes); returns ``(synapse label, LIF label)``. See the module docstring."""
    return _add(net, f"rnngraph.compat.norse.lif_cell({label!r})", label, n, p, False)


def lif_recurrent_cell(
    net: Any,
    label: str,
    n: int,
    recurrent_weights: Any,
    p: Any = None,
    autapses: bool = False,
    train: str | None = "gd",
) -> tuple[str, str]:
    """Add Norse's ``LIFRecurrentCell(input_size, n, p, recurrent_weights=W, autapses=...,
    dt=net.dt)``: :func:`lif_cell` with the reset detached and the feedback edge ``label ->
    label + "_syn"`` of ``recurrent_weights`` ``(n, n)``, trained by gradient descent unless
    ``train=None`` (Norse trains them). ``autapses=False`` (Norse's default) zeroes their
    diagonal and keeps it at zero in training (a fixed mask; Norse masks its gradient).
    Connect the input to the synapse node with Norse's ``input_weights``. Returns
    ``(synapse label, LIF label)``."""
    where = f"rnngraph.compat.norse.lif_recurrent_cell({label!r})"
    mask = None
    if not as_flag(where, "autapses", autapses):
        mask = 1.0 - torch.eye(as_int(where, "n", n, minimum=1), dtype=net.dtype)
    with all_or_nothing(net):
        syn, lif = _add(net, where, label, n, p, True)
        net.add_edge(lif, syn, weights=recurrent_weights, feedback=True, mask=mask, train=train)
    return syn, lif
