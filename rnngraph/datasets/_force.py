"""Periodic targets of the FORCE learning experiments (Sussillo & Abbott 2009)."""

from __future__ import annotations

import math

import numpy as np
import torch

from .._checks import keywords
from ._utils import check_positive, check_real

__all__ = ["force_target"]

_KINDS = ("four_sines", "sine", "triangle", "sawtooth")


@keywords("force_target")
def force_target(
    t,
    kind: str = "four_sines",
    f: float = 1.0 / 60.0,
    amplitude: float | None = None,
):
    r"""A periodic target signal :math:`f(t)` for FORCE learning, evaluated at times ``t``.

    ``kind="four_sines"`` is the sum of four sines of Sussillo & Abbott (2009, Neuron 63:544,
    doi:10.1016/j.neuron.2009.07.018), Fig. 2, with :math:`A = 1.3 / 1.5` by default:

    .. math::

        f(t) = A \left(\sin(\pi f t) + \tfrac{1}{2}\sin(2\pi f t)
               + \tfrac{1}{6}\sin(3\pi f t) + \tfrac{1}{3}\sin(4\pi f t)\right).

    Its lowest frequency is :math:`f / 2`, so its period is :math:`2 / f` (120 time units for the
    default :math:`f = 1/60`). ``t`` and ``1 / f`` share one unit, the unit of the network's time
    constants: in Sussillo & Abbott's scripts the unit is the rate units' time constant
    (:math:`\tau = 1`, 10 ms), with ``dt = 0.1`` and 1440 units of training.

    The other kinds have period :math:`1 / f` and peak value :math:`A` (default :math:`A = 1`):

    * ``"sine"``: :math:`A \sin(2\pi f t)`;
    * ``"triangle"``: :math:`A \left(1 - 4\,\lvert ((f t + 1/4) \bmod 1) - 1/2 \rvert\right)`,
      a triangle wave that starts at 0 and rises, in phase with the sine;
    * ``"sawtooth"``: :math:`A \left(2\,((f t + 1/2) \bmod 1) - 1\right)`, rising linearly
      from :math:`-A` to :math:`A`, equal to 0 at :math:`t = 0`.

    Parameters
    ----------
    t : float, array-like or torch.Tensor
        Times, in the unit of ``1 / f``.
    kind : {"four_sines", "sine", "triangle", "sawtooth"}, default "four_sines"
        Shape of the target.
    f : float, default 1/60
        Frequency (1 / time unit). See above for how it sets the period of each kind.
    amplitude : float, optional
        :math:`A`; ``None`` means 1.3/1.5 for ``"four_sines"`` and 1 for the others.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        Same shape as ``t``; a tensor (same dtype and device) when ``t`` is a floating-point
        tensor, else a float64 array.

    Examples
    --------
    >>> import numpy as np
    >>> dt = 0.1
    >>> target = force_target(dt * np.arange(14400))  # 1440 time units of the FORCE task
    """
    where = "force_target"
    if kind not in _KINDS:
        raise ValueError(f"{where}: unknown kind {kind!r}; valid: {_KINDS}")
    f = check_positive(f, "f", where)
    if amplitude is None:
        amplitude = 1.3 / 1.5 if kind == "four_sines" else 1.0
    amplitude = check_real(amplitude, "amplitude", where)

    t, xp = _times(where, t)
    pi = math.pi
    if kind == "four_sines":
        s = (
            xp.sin(pi * f * t)
            + xp.sin(2 * pi * f * t) / 2.0
            + xp.sin(3 * pi * f * t) / 6.0
            + xp.sin(4 * pi * f * t) / 3.0
        )
    elif kind == "sine":
        s = xp.sin(2 * pi * f * t)
    elif kind == "triangle":
        s = 1.0 - 4.0 * xp.abs(xp.remainder(f * t + 0.25, 1.0) - 0.5)
    else:  # sawtooth
        s = 2.0 * xp.remainder(f * t + 0.5, 1.0) - 1.0
    return amplitude * s


def _times(where: str, t):
    """``t`` as finite float times and the array module it computes with (torch for a
    floating-point tensor, numpy otherwise); errors name ``where``."""
    if isinstance(t, torch.Tensor):
        if not t.is_floating_point():
            raise TypeError(f"{where}: t must be a floating-point tensor, got dtype {t.dtype}")
        xp = torch
    else:
        arr = np.asarray(t)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{where}: t must be real numbers, got an array of dtype {arr.dtype}")
        t = arr.astype(np.float64)
        xp = np
    if not bool(xp.isfinite(t).all()):
        raise ValueError(f"{where}: t contains NaN or inf values; expected finite times")
    return t, xp
