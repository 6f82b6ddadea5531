r"""NEST's e-prop models in rnngraph's terms: ``eprop_iaf_bsshslm_2020`` units read by an
``eprop_readout_bsshslm_2020`` readout, trained by ``eprop_synapse_bsshslm_2020`` synapses
(NEST 3.10, after Bellec et al. 2020, doi:10.1038/s41467-020-17236-y).

:func:`eprop_bsshslm_2020` takes the parameter dictionaries a NEST script passes to
``nest.Create`` and ``nest.SetDefaults`` and the weight matrices it passes to
``nest.Connect`` (``[post, pre]``, NEST's units), and returns the network and the
:class:`~rnngraph.training.EProp` trainer that compute what NEST computes: the same
membranes, readout and loss, and after each update the same weights (checked against NEST
3.10 in ``tests/test_peer_nest.py``, to rounding in float64).

NEST's parametrisation and rnngraph's differ by constant factors, which this module applies
(with :math:`\alpha = e^{-dt/\tau_m}`, :math:`\kappa = e^{-dt/\tau_{m,out}}`, and
:math:`\zeta = 1` for ``regular_spike_arrival=True``, else :math:`1-\alpha` (units) or
:math:`1-\kappa` (readout)):

* units: :math:`v^t = \alpha v^{t-1} + \zeta (W^{in} x^t + W^{rec} z^{t-1}) - v_{th} z^{t-1}`
  is a ``lif`` population with ``reset="subtract"`` and :math:`r_m = \zeta / (1 - \alpha)`;
  NEST's ``piecewise_linear`` pseudo-derivative of height :math:`h` and width
  :math:`v_{th}` is the ``triangle`` surrogate with :math:`\gamma = h\,v_{th}`;
* readout: :math:`y^t = \kappa y^{t-1} + \zeta W^{out}_{NEST} z^{t-1}` is a
  ``leaky_readout`` with :math:`W^{out} = \zeta W^{out}_{NEST}` (NEST's one-step delays
  line up with rnngraph's steps: the same index is the same value);
* gradients: NEST's update of :math:`W^{in}, W^{rec}` is
  :math:`-\eta\,[(1-\kappa)\,g_{task}(B_{NEST}) + g_{reg}]`, rnngraph's e-prop gradient with
  the feedback matrix :math:`B = (1-\kappa) B_{NEST}` and the rate regulariser of weight
  :math:`c_{reg}/2` at ``f_target`` Hz (``reduction="sum"``: NEST's loss is
  :math:`\tfrac12 \sum_t (y^t - y^{*,t})^2`), at learning rate :math:`\eta`; its update of
  :math:`W^{out}_{NEST}` is the exact one, which on :math:`W^{out}` is the learning rate
  :math:`\eta \zeta^2`. ``Wmin``/``Wmax`` clip the weights after every update (the
  readout's bounds times :math:`\zeta`).

What NEST offers beyond this is refused with an error naming the setting: the ``adam``
optimiser, ``batch_size`` other than 1, ``average_gradient=True``, a refractory period,
``E_L``, ``I_e``, ``V_m`` or ``V_min`` other than 0 / unbounded, ``C_m`` other than 1,
other pseudo-derivatives (or a width other than ``V_th``), the cross-entropy readout, and a
resolution other than 1 ms. NEST's defaults (``C_m=250``, ``E_L=-70``, ``t_ref=2``, ...)
hold for a key left out, as in NEST, and are refused the same way. One difference remains
and is documented here rather than reproduced: NEST keeps its synapses' presynaptic traces
from one update interval into the next, where rnngraph starts every trial afresh; the
weights after a second update then differ by about 1e-4 of that update (in the sine-wave
tutorial), while the loss of every iteration agrees to rounding over the first few.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._checks import as_tensor, describe
from ..network import Network
from ..nodes import LIF
from ..training import EProp

__all__ = ["eprop_bsshslm_2020"]

#: NEST 3.10's defaults of ``eprop_iaf_bsshslm_2020`` (those this module reads)
REC_DEFAULTS: dict[str, Any] = {
    "C_m": 250.0, "E_L": -70.0, "I_e": 0.0, "regular_spike_arrival": True, "t_ref": 2.0,
    "tau_m": 10.0, "V_m": -70.0, "V_min": -math.inf, "V_th": -55.0, "c_reg": 0.0,
    "f_target": 10.0, "surrogate_gradient_function": "piecewise_linear",
    "surrogate_gradient_height": 0.3, "surrogate_gradient_width": 1.0,
    "flush_event_send_interval": math.inf,
}  # fmt: skip
#: NEST 3.10's defaults of ``eprop_readout_bsshslm_2020``
OUT_DEFAULTS: dict[str, Any] = {
    "C_m": 250.0, "E_L": 0.0, "I_e": 0.0, "regular_spike_arrival": True, "tau_m": 10.0,
    "V_m": 0.0, "V_min": -math.inf, "loss": "mean_squared_error",
}  # fmt: skip
#: NEST 3.10's defaults of the ``eprop_synapse_bsshslm_2020`` optimiser and synapse
OPTIMIZER_DEFAULTS: dict[str, Any] = {
    "type": "gradient_descent", "batch_size": 1, "eta": 1e-4, "Wmin": -100.0, "Wmax": 100.0,
    "average_gradient": False,
}  # fmt: skip
#: the values this module reproduces where NEST allows others
_REQUIRED: dict[str, Any] = {
    "C_m": 1.0, "E_L": 0.0, "I_e": 0.0, "t_ref": 0.0, "V_m": 0.0, "V_min": -math.inf,
    "surrogate_gradient_function": "piecewise_linear", "loss": "mean_squared_error",
    "type": "gradient_descent", "batch_size": 1, "average_gradient": False,
}  # fmt: skip
#: the kind of value of each key that is no number (NEST refuses other kinds too)
_FLAGS = frozenset({"regular_spike_arrival", "average_gradient"})
_NAMES = frozenset({"surrogate_gradient_function", "loss", "type"})


def _kind(where: str, what: str, key: str, value: Any) -> Any:
    """``value`` of ``key`` if it is of the key's kind (a flag, a name, an integer
    ``batch_size``, else a number; infinite only for ``V_min``, whose NEST default
    -1.797e308 is taken as unbounded, and ``flush_event_send_interval``), else refused."""
    if key in _FLAGS:
        ok, kind = isinstance(value, bool | np.bool_), "True or False"
        value = bool(value) if ok else value
    elif key in _NAMES:
        ok, kind = isinstance(value, str), "a name"
    elif key == "batch_size":
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)
        kind = "an integer"
    else:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
        kind = "a number"
        if ok:
            value = float(value)
            if key == "V_min" and value <= -1e308:
                value = -math.inf
            unbounded = key in ("V_min", "flush_event_send_interval")
            ok = not math.isnan(value) and (math.isfinite(value) or unbounded)
    if not ok:
        raise ValueError(f"{where}: {what}[{key!r}] must be {kind}, got {describe(value)}")
    return value


def _settings(where: str, what: str, given: Any, defaults: Mapping[str, Any]) -> dict:
    """``given`` over NEST's ``defaults``: unknown keys, values of the wrong kind and values
    this module does not reproduce are refused, naming the key."""
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise TypeError(f"{where}: {what} must be a dict of NEST parameters, got {describe(given)}")
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(
            f"{where}: {what} has keys {unknown} that this mapping does not reproduce; its "
            f"keys are {sorted(defaults)}"
        )
    out = {k: _kind(where, what, k, v) for k, v in {**defaults, **given}.items()}
    for key, value in out.items():
        if key in _REQUIRED and value != _REQUIRED[key]:
            source = "given" if key in given else "NEST's default"
            raise ValueError(
                f"{where}: {what}[{key!r}] = {value!r} ({source}); the mapping reproduces "
                f"{key}={_REQUIRED[key]!r} only (set it so in the NEST script as well)"
            )
    return out


def _number(where: str, name: str, value: Any, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}: {name} must be a finite number, got {value!r}")
    if (value <= 0) if positive else (value < 0):
        raise ValueError(f"{where}: {name} must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def _weights(where: str, name: str, w: Any, shape: tuple[int, ...], dtype) -> Tensor:
    t = as_tensor(where, name, w, dtype=dtype)
    if t.dim() != 2 or (shape and tuple(t.shape) != shape):
        want = "a [post, pre] matrix" if not shape else f"shape {shape}"
        raise ValueError(f"{where}: {name} must be {want}, got shape {tuple(t.shape)}")
    return t


class _BoundedSGD(torch.optim.SGD):
    """Gradient descent at each group's ``lr`` times its ``scale`` (so that one learning
    rate, NEST's ``eta``, set by ``EProp.set_lr``, keeps the readout's factor), then every
    weight of a group clipped to its ``bounds``."""

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        rates = [g["lr"] for g in self.param_groups]
        for group in self.param_groups:
            group["lr"] = group["lr"] * group["scale"]
        try:
            loss = super().step(closure)
        finally:
            for group, lr in zip(self.param_groups, rates, strict=True):
                group["lr"] = lr
        for group in self.param_groups:
            lo, hi = group["bounds"]
            for p in group["params"]:
                p.clamp_(lo, hi)
        return loss


def eprop_bsshslm_2020(
    w_in: Any,
    w_rec: Any,
    w_out: Any,
    w_fb: Any,
    rec_params: Mapping[str, Any] | None = None,
    out_params: Mapping[str, Any] | None = None,
    optimizer: Mapping[str, Any] | None = None,
    dt: float = 1.0,
    dtype: torch.dtype = torch.float64,
) -> tuple[Network, EProp]:
    """The network and trainer of a NEST 3.10 e-prop script (module docstring: the mapping).

    Parameters
    ----------
    w_in, w_rec, w_out, w_fb : array-like
        The weights NEST connects: input -> units ``(N, C)``, units -> units ``(N, N)``
        (zero diagonal: NEST makes no autapses), units -> readout ``(K, N)`` and the
        feedback readout -> units ``(N, K)``, in NEST's units (pA).
    rec_params, out_params : dict
        ``nest.Create``'s parameters of ``eprop_iaf_bsshslm_2020`` and
        ``eprop_readout_bsshslm_2020``; NEST's defaults for keys left out.
    optimizer : dict
        The ``optimizer`` dict of ``eprop_synapse_bsshslm_2020`` (``type``, ``batch_size``,
        ``eta``, ``Wmin``, ``Wmax``) and its ``average_gradient``.
    dt : float
        NEST's ``resolution`` in ms (1.0 only).
    dtype : torch.dtype
        Of the network (default float64).

    Returns
    -------
    (Network, EProp)
        Nodes ``in``, ``rec`` (``lif``), ``out`` (``leaky_readout``); train one trial of one
        update interval per update: ``trainer.step(net, x, y)`` with ``x`` ``(1, T, C)``
        and ``y`` ``(1, T, K)``, NEST's input and target of that interval at the same
        steps (NEST's one-step delays included). ``trainer.losses`` include the
        regulariser's loss; NEST's loss is the readout's :math:`\\tfrac12 \\sum_t (y - y^*)^2`.
    """
    where = "rnngraph.compat.nest.eprop_bsshslm_2020"
    if _number(where, "dt", dt) != 1.0:
        raise ValueError(f"{where}: dt (NEST's resolution) must be 1.0 ms, got {dt!r}")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"{where}: dtype must be torch.float32 or torch.float64, got {dtype!r}")
    rec = _settings(where, "rec_params", rec_params, REC_DEFAULTS)
    out = _settings(where, "out_params", out_params, OUT_DEFAULTS)
    opt = _settings(where, "optimizer", optimizer, OPTIMIZER_DEFAULTS)
    w_in = _weights(where, "w_in", w_in, (), dtype)
    n, c = w_in.shape
    w_rec = _weights(where, "w_rec", w_rec, (n, n), dtype)
    if bool(torch.diagonal(w_rec).ne(0).any()):
        raise ValueError(f"{where}: w_rec has a non-zero diagonal; NEST makes no autapses")
    w_out = _weights(where, "w_out", w_out, (), dtype)
    k = w_out.shape[0]
    if w_out.shape[1] != n:
        raise ValueError(f"{where}: w_out must be ({k}, {n}), got shape {tuple(w_out.shape)}")
    w_fb = _weights(where, "w_fb", w_fb, (n, k), dtype)
    lo, hi = opt["Wmin"], opt["Wmax"]
    if not lo <= hi:
        raise ValueError(f"{where}: optimizer Wmin must be <= Wmax, got {lo!r}, {hi!r}")
    for name, w in (("w_in", w_in), ("w_rec", w_rec), ("w_out", w_out)):
        if bool(((w < lo) | (w > hi)).any()):  # NEST's Connect refuses them too
            raise ValueError(
                f"{where}: {name} has weights outside [Wmin, Wmax] = [{lo!r}, {hi!r}] "
                f"(from {float(w.min())!r} to {float(w.max())!r})"
            )
    population, zeta_out, kappa = _population(where, n, rec, out)
    net = Network(dt=1.0, dtype=dtype)
    net.add_func_node("in", c)
    net.add_diffeq_node("rec", population)
    net.add_edge("in", "rec", weights=w_in, train="gd")
    eye = torch.eye(n, dtype=dtype)
    net.add_edge("rec", "rec", weights=w_rec, train="gd", feedback=True, mask=1.0 - eye)
    net.add_diffeq_node("out", "leaky_readout", n=k, tau=float(out["tau_m"]))
    net.add_edge("rec", "out", weights=zeta_out * w_out, train="gd")
    trainer = _trainer(where, net, rec, opt, zeta_out)
    trainer.feedback_weights = (1.0 - kappa) * w_fb
    return net, trainer


def _population(where: str, n: int, rec: dict, out: dict) -> tuple[LIF, float, float]:
    """The units as a ``lif`` population, and the readout's ``zeta`` and ``kappa``."""
    tau_m = _number(where, "rec_params['tau_m']", rec["tau_m"])
    tau_out = _number(where, "out_params['tau_m']", out["tau_m"])
    v_th = _number(where, "rec_params['V_th']", rec["V_th"])
    height = _number(where, "rec_params['surrogate_gradient_height']",
                     rec["surrogate_gradient_height"], positive=False)  # fmt: skip
    width = _number(where, "rec_params['surrogate_gradient_width']",
                    rec["surrogate_gradient_width"])  # fmt: skip
    if not math.isclose(width, v_th, rel_tol=1e-12):
        raise ValueError(
            f"{where}: rec_params['surrogate_gradient_width'] = {width!r}; the triangle "
            f"surrogate has the width V_th = {v_th!r} (NEST's tutorials set width = V_th)"
        )
    alpha, kappa = math.exp(-1.0 / tau_m), math.exp(-1.0 / tau_out)
    zeta_rec = 1.0 if rec["regular_spike_arrival"] else 1.0 - alpha
    zeta_out = 1.0 if out["regular_spike_arrival"] else 1.0 - kappa
    population = LIF(
        n, tau_m=tau_m, v_th=v_th, reset="subtract", surrogate="triangle",
        surrogate_scale=height * v_th, r_m=zeta_rec / (1.0 - alpha),
    )  # fmt: skip
    return population, zeta_out, kappa


def _trainer(where: str, net: Network, rec: dict, opt: dict, zeta_out: float) -> EProp:
    """e-prop with NEST's learning rates, bounds and rate regulariser."""
    eta = _number(where, "optimizer['eta']", opt["eta"])
    lo, hi = opt["Wmin"], opt["Wmax"]
    c_reg = _number(where, "rec_params['c_reg']", rec["c_reg"], positive=False)
    f_target = _number(where, "rec_params['f_target']", rec["f_target"], positive=False)
    model = net.compile()
    params = dict(model.named_parameters())
    groups = [
        {"params": [params["edges.in->rec.weight"], params["edges.rec->rec.weight"]],
         "lr": eta, "scale": 1.0, "bounds": (lo, hi)},
        {"params": [params["edges.rec->out.weight"]], "lr": eta, "scale": zeta_out**2,
         "bounds": (zeta_out * lo, zeta_out * hi)},
    ]  # fmt: skip
    reg = {"reg_rate": f_target, "reg_weight": c_reg / 2.0} if c_reg > 0 else {}
    return EProp(feedback="random", optimizer=_BoundedSGD(groups), reduction="sum", **reg)
