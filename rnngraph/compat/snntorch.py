r"""snnTorch's neurons (snnTorch 1.0) in rnngraph's terms.

snnTorch steps its neurons in units of one step: ``Leaky`` computes

.. math:: m(t) = \beta\,m(t-1) + x(t) - \vartheta\,r(t), \qquad z(t) = H(m(t) - \vartheta),

with the reset :math:`r(t) = H(m(t-1) - \vartheta)` of the previous step's spike (detached
from the gradient), ``Synaptic`` puts :math:`s(t) = \alpha\,s(t-1) + x(t)` before it, and
``RLeaky`` adds :math:`W z(t-1) + b` to the input. The exact one-step map of rnngraph's
:class:`~rnngraph.nodes.LIF` with ``integrator="exp_euler"`` is the same equation when

* :math:`\tau_m = -dt / \ln\beta` (so that the gain :math:`e^{-dt/\tau_m}` is
  :math:`\beta`) and :math:`R = 1 / (1 - \beta)` (so that the input enters with weight 1);
* ``reset_mechanism="subtract"`` is ``reset="subtract"`` (rnngraph subtracts
  :math:`v_{th} - v_{reset} = \vartheta` in the step after the spike, as snnTorch);
  ``"zero"`` is ``reset="value"`` with :math:`v_{reset} = 0` for ``Leaky`` (the
  membrane restarts from zero and integrates the next input), and for ``RLeaky`` and
  ``Synaptic``, whose zero reset also discards the next step's membrane update, one held
  step on top (``refractory = 2 dt``);
* the surrogate gradient: snnTorch differentiates :math:`H` at :math:`m - \vartheta`,
  rnngraph at :math:`(v - v_{th}) / (v_{th} - v_{reset})`. ``atan`` with snnTorch's
  :math:`\alpha` is rnngraph's ``atan`` with scale :math:`\alpha\vartheta`, the same
  pseudo-derivative with respect to the membrane for any threshold; ``fast_sigmoid`` with
  snnTorch's slope :math:`k` is rnngraph's with scale :math:`k` where :math:`\vartheta = 1`
  (at another threshold rnngraph's would carry a factor :math:`1/\vartheta`, so it is
  refused).

``Synaptic``'s :math:`s` is an :class:`~rnngraph.nodes.ExpSynapse` with
:math:`\tau = -dt / \ln\alpha` feeding the LIF node through an identity edge.

In float64 the spikes are snnTorch's at every step; in float32 the two forms round
differently (rnngraph computes :math:`u + g (v - u)` with :math:`u = R\,x`, snnTorch
:math:`\beta m + x`), so a few spikes in :math:`10^5` can differ and the gradients with them.

The functions add the populations to a :class:`~rnngraph.Network` (its ``dt`` is the step)
and take snnTorch's arguments by snnTorch's names; its options that rnngraph does not
reproduce (learnable ``beta``, inhibition, graded spikes, ``reset_delay=False``, state
quantisation, ``reset_mechanism="none"``) are refused with a ``ValueError``, never dropped.
Tests against snnTorch itself: ``tests/test_peer_snntorch.py``.
"""

from __future__ import annotations

import math
from typing import Any

from .._checks import as_flag, as_int
from ..nodes import LIF, ExpSynapse
from ._build import all_or_nothing, current_into

__all__ = ["leaky", "rleaky", "synaptic"]

#: snnTorch options rnngraph does not reproduce, with their only accepted (default) value
_FIXED = {
    "learn_beta": False,
    "learn_alpha": False,
    "learn_threshold": False,
    "inhibition": False,
    "graded_spikes_factor": 1.0,
    "learn_graded_spikes_factor": False,
    "reset_delay": True,
    "state_quant": False,
    "surrogate_disable": False,
    "init_hidden": False,
    "output": False,
}
_RESETS = ("subtract", "zero")


def _decay_time(where: str, name: str, value: Any, dt: float) -> float:
    """:math:`-dt/\\ln(value)` for a decay factor in (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ValueError(
            f"{where}: {name} must be a number strictly between 0 and 1 (a decay per step), "
            f"got {value!r}"
        )
    return -dt / math.log(value)


def _options(where: str, options: dict[str, Any]) -> None:
    """Refuse snnTorch options away from the defaults that rnngraph reproduces."""
    for name, value in options.items():
        if name not in _FIXED:
            raise TypeError(
                f"{where}: unknown argument {name!r}; snnTorch's other options are accepted "
                f"at their defaults only: {_FIXED}"
            )
        if value != _FIXED[name]:
            raise ValueError(
                f"{where}: snnTorch's {name}={value!r} is not reproduced (only the default "
                f"{_FIXED[name]!r})"
            )


def _surrogate(where: str, spike_grad: Any, threshold: float) -> dict[str, Any]:
    """rnngraph's surrogate and scale for snnTorch's ``spike_grad`` (``None``: snnTorch's
    default, ``atan`` with alpha 2)."""
    if spike_grad is None or isinstance(spike_grad, str):
        name, param = spike_grad or "atan", None
    elif isinstance(spike_grad, tuple | list) and len(spike_grad) == 2:
        name, param = spike_grad
        if isinstance(param, bool) or not isinstance(param, int | float) or not param > 0:
            raise ValueError(
                f"{where}: the {name} parameter must be a positive number, got {param!r}"
            )
    else:
        name, param = None, None
    if name == "atan":
        alpha = 2.0 if param is None else float(param)
        return {"surrogate": "atan", "surrogate_scale": alpha * threshold}
    if name == "fast_sigmoid":
        if threshold != 1.0:
            raise ValueError(
                f"{where}: fast_sigmoid reproduces snnTorch's gradient only at threshold 1 "
                f"(got {threshold!r}: it would carry a factor 1/threshold); use 'atan'"
            )
        return {"surrogate": "fast_sigmoid", "surrogate_scale": 25.0 if param is None else param}
    raise ValueError(
        f"{where}: spike_grad must be 'atan' or 'fast_sigmoid', or (name, alpha or slope), "
        f"got {spike_grad!r}"
    )


def _lif(
    where: str,
    n: int,
    dt: float,
    beta: Any,
    threshold: Any,
    spike_grad: Any,
    reset_mechanism: str,
    held: bool,
    options: dict[str, Any],
) -> LIF:
    _options(where, options)
    if reset_mechanism not in _RESETS:
        raise ValueError(
            f"{where}: reset_mechanism must be one of {list(_RESETS)} (snnTorch's 'none' is "
            f"not reproduced), got {reset_mechanism!r}"
        )
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or threshold <= 0:
        raise ValueError(f"{where}: threshold must be a positive number, got {threshold!r}")
    threshold = float(threshold)
    tau_m = _decay_time(where, "beta", beta, dt)
    return LIF(
        as_int(where, "n", n, minimum=1),
        tau_m=tau_m,
        v_rest=0.0,
        v_th=threshold,
        v_reset=0.0,
        r_m=1.0 / (1.0 - beta),
        refractory=2.0 * dt if held and reset_mechanism == "zero" else 0.0,
        reset="subtract" if reset_mechanism == "subtract" else "value",
        integrator="exp_euler",
        detach_reset=True,
        **_surrogate(where, spike_grad, threshold),
    )


def leaky(
    net: Any,
    label: str,
    n: int,
    beta: float,
    threshold: float = 1.0,
    spike_grad: Any = "atan",
    reset_mechanism: str = "subtract",
    **options: Any,
) -> LIF:
    r"""Add snnTorch's ``Leaky(beta, threshold, spike_grad, reset_mechanism)`` as the LIF
    node ``label`` of ``n`` units to ``net`` (see the module docstring for the mapping);
    returns the node.

    Parameters
    ----------
    net : rnngraph.Network
        The network; its ``dt`` is snnTorch's step.
    label : str
        The node's label.
    n : int
        Number of units.
    beta : float
        Membrane decay per step, in (0, 1).
    threshold : float
        Firing threshold :math:`\vartheta` (> 0); default 1.
    spike_grad : str or (str, float)
        ``"atan"`` (snnTorch's default, :math:`\alpha = 2`), ``"fast_sigmoid"`` (slope 25),
        or ``(name, alpha or slope)``.
    reset_mechanism : str
        ``"subtract"`` (default) or ``"zero"``.
    **options
        snnTorch's other options at their defaults (others are refused).
    """
    where = f"rnngraph.compat.snntorch.leaky({label!r})"
    node = _lif(where, n, net.dt, beta, threshold, spike_grad, reset_mechanism, False, options)
    net.add_diffeq_node(label, node)
    return node


def rleaky(
    net: Any,
    label: str,
    n: int,
    beta: float,
    weights: Any,
    bias: Any = None,
    threshold: float = 1.0,
    spike_grad: Any = "atan",
    reset_mechanism: str = "subtract",
    learn_recurrent: bool = True,
    **options: Any,
) -> LIF:
    r"""Add snnTorch's ``RLeaky(beta, linear_features=n)``: :func:`leaky` and its recurrent
    ``nn.Linear(n, n)`` as the feedback edge ``label -> label`` (``weights`` ``(n, n)``,
    ``bias`` ``(n,)`` or ``None``; snnTorch's ``recurrent.weight`` and ``recurrent.bias``),
    read one step late as snnTorch reads its previous spikes. ``learn_recurrent`` (snnTorch's
    default ``True``) makes them trained by gradient descent (``train="gd"``), as snnTorch's
    ``recurrent``. Returns the node."""
    where = f"rnngraph.compat.snntorch.rleaky({label!r})"
    learn = as_flag(where, "learn_recurrent", learn_recurrent)
    node = _lif(where, n, net.dt, beta, threshold, spike_grad, reset_mechanism, True, options)
    with all_or_nothing(net):
        net.add_diffeq_node(label, node)
        net.add_edge(
            label, label, weights=weights, feedback=True, train="gd" if learn else None,
            bias=False if bias is None else bias,
        )  # fmt: skip
    return node


def synaptic(
    net: Any,
    label: str,
    n: int,
    alpha: float,
    beta: float,
    threshold: float = 1.0,
    spike_grad: Any = "atan",
    reset_mechanism: str = "subtract",
    **options: Any,
) -> tuple[str, str]:
    r"""Add snnTorch's ``Synaptic(alpha, beta, threshold, spike_grad, reset_mechanism)``:
    the synaptic current as the :class:`~rnngraph.nodes.ExpSynapse` ``label + "_syn"``
    (:math:`\tau = -dt/\ln\alpha`) and the membrane as the LIF node ``label``, joined by an
    identity edge. Connect the inputs to the synapse node and read the spikes from
    ``label``; returns ``(synapse label, LIF label)``."""
    where = f"rnngraph.compat.snntorch.synaptic({label!r})"
    node = _lif(where, n, net.dt, beta, threshold, spike_grad, reset_mechanism, True, options)
    tau = _decay_time(where, "alpha", alpha, net.dt)
    return current_into(net, label, ExpSynapse(node.n, tau=tau), node)
