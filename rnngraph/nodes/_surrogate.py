r"""Surrogate gradients: a Heaviside step forward, a smooth pseudo-derivative backward.

A spiking unit emits :math:`z = H(x)`, with :math:`x` its (scaled) distance to threshold and
:math:`H(x) = 1` for :math:`x > 0`, else 0. :math:`H` has zero derivative almost everywhere,
so gradient-based training (BPTT, e-prop) replaces :math:`\partial z / \partial x` by a
*pseudo-derivative* :math:`\psi(x)`: a bump around the threshold whose width is set by a
scale parameter. One ``torch.autograd.Function`` (:class:`SpikeFunction`) serves them
all: its forward is exactly ``(x > 0)`` as a float and its backward multiplies the incoming
gradient by the surrogate's :math:`\psi(x)`:

================  ==================================================================  =========
name              pseudo-derivative :math:`\psi(x)`                                   default
================  ==================================================================  =========
``fast_sigmoid``  :math:`1 / (s\,|x| + 1)^2` (SuperSpike, snnTorch, RectiPy)          s = 25
``triangle``      :math:`\gamma\,\max(0, 1 - |x|)` (Bellec et al. 2018/2020)          γ = 0.3
``atan``          :math:`(\alpha/2) / (1 + (\pi\,\alpha\,x/2)^2)` (snnTorch)          α = 2
``sigmoid``       :math:`s\,\sigma(s (x - c))\,(1 - \sigma(s (x - c)))`               s = 25,
                                                                                      c = 0
================  ==================================================================  =========

Spiking nodes pass :math:`x = (v - \vartheta) / (\vartheta - v_{reset})`: the distance to the
threshold in units of the threshold-to-reset gap. With :math:`v_{reset} = 0` this is Bellec's
:math:`(v - A)/v_{th}`, so ``triangle`` with :math:`\gamma = 0.3` gives e-prop's
:math:`\psi = (\gamma / v_{th}) \max(0, 1 - |(v - A)/v_{th}|)` with respect to :math:`v`;
RectiPy's spike function (``1/(1 + slope |v - v_peak|)^2``, ``slope = 100/|v_peak -
v_reset|``) has the shape of ``fast_sigmoid`` with ``scale=100`` (as a derivative with respect
to :math:`v`, ours carries the extra factor :math:`1/(v_{peak} - v_{reset})`).

Every surrogate also has a *relaxed* form (``relaxed=True``) whose forward is the smooth
primitive :math:`\Psi` of :math:`\psi` (:math:`\Psi' = \psi`, :math:`\Psi(-\infty) = 0`)
instead of the step, with the same backward. It turns a spiking model into a smooth one with
the same gradients, which ``torch.autograd.gradcheck`` can verify against finite differences.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "SURROGATES",
    "SpikeFunction",
    "Surrogate",
    "atan_grad",
    "fast_sigmoid_grad",
    "get_surrogate",
    "sigmoid_grad",
    "triangle_grad",
]


def _step(x: Tensor) -> Tensor:
    return (x > 0).to(x.dtype)


@dataclass(frozen=True)
class _Spec:
    grad: Callable[..., Tensor]
    primitive: Callable[..., Tensor]
    defaults: dict[str, float]


# --------------------------------------------------------------------------------------
# pseudo-derivatives and their primitives (pure torch)
# --------------------------------------------------------------------------------------


def fast_sigmoid_grad(x: Tensor, scale: float) -> Tensor:
    r""":math:`\psi(x) = 1 / (s|x| + 1)^2`, the derivative of the fast sigmoid :math:`x/(1 + s|x|)`
    (Zenke & Ganguli 2018, doi:10.1162/neco_a_01086)."""
    return 1.0 / (scale * x.abs() + 1.0) ** 2


def _fast_sigmoid_primitive(x: Tensor, scale: float) -> Tensor:
    return x / (1.0 + scale * x.abs()) + 1.0 / scale


def triangle_grad(x: Tensor, scale: float) -> Tensor:
    r""":math:`\psi(x) = \gamma \max(0, 1 - |x|)` with :math:`\gamma` = ``scale`` (Bellec et al.
    2020, doi:10.1038/s41467-020-17236-y): a triangle of height :math:`\gamma` and half-width 1."""
    return scale * torch.clamp(1.0 - x.abs(), min=0.0)


def _triangle_primitive(x: Tensor, scale: float) -> Tensor:
    c = torch.clamp(x, -1.0, 1.0)
    # integral of gamma (1 - |t|) from -1 to c: gamma ((c + 1) - (c |c| + 1) / 2)
    return scale * (c + 0.5 - 0.5 * c * c.abs())


def atan_grad(x: Tensor, scale: float) -> Tensor:
    r""":math:`\psi(x) = (\alpha/2) / (1 + (\pi \alpha x / 2)^2)` with :math:`\alpha` = ``scale``:
    the derivative of :math:`\arctan(\pi \alpha x / 2)/\pi + 1/2` (snnTorch's ``ATan``)."""
    return (0.5 * scale) / (1.0 + (0.5 * math.pi * scale * x) ** 2)


def _atan_primitive(x: Tensor, scale: float) -> Tensor:
    return torch.atan(0.5 * math.pi * scale * x) / math.pi + 0.5


def sigmoid_grad(x: Tensor, scale: float, center: float = 0.0) -> Tensor:
    r""":math:`\psi(x) = s\,\sigma(u)(1 - \sigma(u))`, :math:`u = s (x - c)`: the derivative of the
    logistic :math:`\sigma(s (x - c))` with slope :math:`s` = ``scale`` and centre :math:`c`."""
    sig = torch.sigmoid(scale * (x - center))
    return scale * sig * (1.0 - sig)


def _sigmoid_primitive(x: Tensor, scale: float, center: float = 0.0) -> Tensor:
    return torch.sigmoid(scale * (x - center))


# --------------------------------------------------------------------------------------
# the autograd function
# --------------------------------------------------------------------------------------


class SpikeFunction(torch.autograd.Function):
    r"""``H(x)`` forward (or the smooth primitive when ``relaxed``), ``grad * psi(x)``
    backward, for any surrogate of :data:`SURROGATES`.

    ``SpikeFunction.apply(x, spec, args, relaxed)`` with ``spec`` a registry entry and
    ``args`` its parameter values (``(scale,)``, or ``(scale, center)`` for ``sigmoid``).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, spec: _Spec, args: tuple[float, ...], relaxed: bool) -> Tensor:
        return spec.primitive(x, *args) if relaxed else _step(x)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Tensor) -> None:
        x, spec, args, _ = inputs
        ctx.save_for_backward(x)
        ctx.grad_fn, ctx.args = spec.grad, args

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None, None]:
        (x,) = ctx.saved_tensors
        return grad * ctx.grad_fn(x, *ctx.args), None, None, None


# --------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------


#: Surrogates by name: the pseudo-derivative, its primitive and the default parameters
#: (``scale`` for all, plus ``center`` for ``sigmoid``).
SURROGATES: dict[str, _Spec] = {
    "fast_sigmoid": _Spec(fast_sigmoid_grad, _fast_sigmoid_primitive, {"scale": 25.0}),
    "triangle": _Spec(triangle_grad, _triangle_primitive, {"scale": 0.3}),
    "atan": _Spec(atan_grad, _atan_primitive, {"scale": 2.0}),
    "sigmoid": _Spec(sigmoid_grad, _sigmoid_primitive, {"scale": 25.0, "center": 0.0}),
}


class Surrogate:
    """A spike function ``z = H(x)`` with a surrogate gradient; build it with
    :func:`get_surrogate`.

    Calling it applies the autograd function. Without autograd (``torch.no_grad()``) it
    computes the plain step. ``grad(x)`` evaluates the pseudo-derivative and ``primitive(x)``
    its smooth primitive.

    Attributes
    ----------
    name : str
        Registry name.
    params : dict
        Parameter values (``scale``, and ``center`` for ``sigmoid``).
    relaxed : bool
        Forward is the smooth primitive instead of the step (for gradient checks and
        continuous relaxations).
    """

    def __init__(self, name: str, params: dict[str, float], relaxed: bool = False) -> None:
        self.name = name
        self.params = dict(params)
        self.relaxed = bool(relaxed)
        spec = SURROGATES[name]
        self._spec = spec
        self._args = tuple(self.params[k] for k in spec.defaults)

    def __call__(self, x: Tensor) -> Tensor:
        if not self.relaxed and not torch.is_grad_enabled():
            return _step(x)
        return SpikeFunction.apply(x, self._spec, self._args, self.relaxed)

    def grad(self, x: Tensor) -> Tensor:
        """The pseudo-derivative at ``x``."""
        return self._spec.grad(x, *self._args)

    def primitive(self, x: Tensor) -> Tensor:
        """The smooth primitive of the pseudo-derivative (0 at minus infinity)."""
        return self._spec.primitive(x, *self._args)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        relaxed = ", relaxed=True" if self.relaxed else ""
        return f"Surrogate({self.name!r}, {args}{relaxed})"


def get_surrogate(name: str, *, relaxed: bool = False, **params: float) -> Surrogate:
    """The spike function named ``name`` with its parameters.

    Parameters
    ----------
    name : str
        ``"fast_sigmoid"``, ``"triangle"``, ``"atan"`` or ``"sigmoid"`` (see ``SURROGATES``).
    relaxed : bool
        Make the forward the smooth primitive of the pseudo-derivative (default ``False``:
        the Heaviside step).
    **params : float
        ``scale`` (all; positive) and ``center`` (``sigmoid``); ``None`` or absent means the
        default of the module table.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones) or a non-positive scale.
    TypeError
        For a parameter the surrogate does not have.
    """
    if name not in SURROGATES:
        raise ValueError(
            f"get_surrogate: unknown surrogate {name!r}; valid names are {sorted(SURROGATES)}"
        )
    spec = SURROGATES[name]
    unknown = sorted(set(params) - set(spec.defaults))
    if unknown:
        raise TypeError(
            f"get_surrogate: surrogate {name!r} has no parameter(s) {unknown}; "
            f"its parameters are {list(spec.defaults)}"
        )
    if not isinstance(relaxed, bool | np.bool_):
        raise TypeError(f"get_surrogate: relaxed must be True or False, got {relaxed!r}")
    values = dict(spec.defaults)
    for k, v in params.items():
        if v is None:
            continue
        if isinstance(v, Tensor | np.ndarray) and v.ndim == 0 and v.dtype.is_floating_point:
            v = v.item()  # a 0-d float tensor or array
        if isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Real):
            raise TypeError(f"get_surrogate: {name} {k} must be a real number, got {v!r}")
        if not math.isfinite(v):
            raise ValueError(f"get_surrogate: {name} {k} must be a finite number, got {v!r}")
        values[k] = float(v)
    if not values["scale"] > 0:
        raise ValueError(f"get_surrogate: {name} scale must be positive, got {values['scale']!r}")
    return Surrogate(name, values, relaxed=relaxed)
