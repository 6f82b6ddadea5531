"""Least mean squares (LMS): online gradient training of a readout."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .. import _native
from .._checks import as_int
from ._rls import _real

__all__ = ["LMS"]


class LMS:
    r"""Online least-mean-squares training of a readout edge (the delta rule).

    At every update, with the readout's features :math:`r` and the a-priori error
    :math:`e = W r + b - f` against the target :math:`f`,

    .. math::

        W \leftarrow W - \eta\, e\, r^\top, \qquad b \leftarrow b - \eta\, e

    a step of size :math:`\eta` down the gradient of :math:`\tfrac12 \lVert e \rVert^2`
    (Widrow & Hoff 1960; reservoirpy's ``LMS``). A batch of ``B`` trials sums the
    ``B`` samples' steps, all taken from the same a-priori weights.

    Parameters
    ----------
    learning_rate : float or array-like
        :math:`\eta > 0` (in units of 1/(feature unit)^2), or one value per update of a
        call: a 1-D array whose length is the number of updates
        (``len(range(washout, T, update_steps))``), a schedule such as reservoirpy's
        iterable learning rates.
    every : int
        Update every ``every`` steps; default 1.
    start : int
        First step that updates (e.g. a washout); default 0.

    Notes
    -----
    Unlike RLS, LMS keeps no statistics: it continues from the readout's weights alone,
    and one step costs :math:`O(n_{out} N)` instead of :math:`O(N^2)`. It converges
    when :math:`\eta` is below :math:`2/\lambda_{max}` of the features' correlation matrix.
    """

    def __init__(self, learning_rate: Any = 1e-6, every: int = 1, start: int = 0) -> None:
        self.learning_rate = _rates(learning_rate)
        self.every = as_int("LMS", "every", every, minimum=1, type_error=ValueError)
        self.start = as_int("LMS", "start", start, minimum=0, type_error=ValueError)
        self.n_updates = 0
        self._k = 0  # the next rate of a schedule, within a call

    def expect_updates(self, where: str, n_updates: int) -> None:
        """Start a call that makes ``n_updates`` updates; a schedule must have that many
        rates (checked before anything changes)."""
        rates = self.learning_rate
        if isinstance(rates, np.ndarray) and len(rates) != n_updates:
            raise ValueError(
                f"{where}: the learning-rate schedule has {len(rates)} values, the call makes "
                f"{n_updates} updates (len(range(washout, T, update_steps)))"
            )
        self._k = 0

    def update(self, w: Tensor, b: Tensor | None, r: Tensor, target: Tensor) -> Tensor:
        """One update of ``w`` (and ``b``) in place from features ``r`` ``(B, N)`` and
        targets ``(B, n_out)``; returns the a-priori error ``(B, n_out)``."""
        rate = self.learning_rate
        if isinstance(rate, np.ndarray):
            rate = float(rate[self._k])
        self._k += 1
        err = _native.lms_update(w, b, r, target, float(rate))  # batch 1 on the CPU: in C
        if err is None:
            err = torch.nn.functional.linear(r, w, b) - target  # (B, n_out)
            w.addmm_(err.T, r, alpha=-rate)
            if b is not None:
                b.sub_(err.sum(0), alpha=rate)
        self.n_updates += 1
        return err

    def replay(self, w: Tensor, b: Tensor | None, r: Tensor, target: Tensor) -> Tensor:
        """``m`` updates one after another, as ``m`` calls of :meth:`update`, from features
        ``r`` ``(m, B, N)`` and targets ``(m, B, n_out)``; returns the a-priori errors
        ``(m, B, n_out)``. At batch 1 on the CPU the whole sequence runs in C."""
        m = r.shape[0]
        rate = self.learning_rate
        if isinstance(rate, np.ndarray):
            rates = torch.as_tensor(rate[self._k : self._k + m], dtype=torch.float64)
        else:
            rates = torch.full((m,), rate, dtype=torch.float64)
        err = None
        if r.shape[1] == 1:
            err = _native.lms_run(w, b, r[:, 0], target[:, 0], rates)
        if err is None:
            return torch.stack([self.update(w, b, r[k], target[k]) for k in range(m)])
        self._k += m
        self.n_updates += m
        return err.unsqueeze(1)

    def __repr__(self) -> str:
        rate = self.learning_rate
        shown = f"{rate:g}" if isinstance(rate, float) else f"schedule of {len(rate)}"
        return (
            f"LMS(learning_rate={shown}, every={self.every}, start={self.start}, "
            f"n_updates={self.n_updates})"
        )


def _rates(value: Any) -> float | np.ndarray:
    """``learning_rate`` checked: a positive finite number, or a 1-D array of them."""
    if isinstance(value, Tensor) and value.dim() == 0 and value.is_floating_point():
        value = float(value)
    if _real(value):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"LMS: learning_rate must be finite and > 0, got {value!r}")
        return float(value)
    if isinstance(value, str | bytes | dict | bool | np.bool_) or value is None:
        raise TypeError(f"LMS: learning_rate must be a number or a 1-D array, got {value!r}")
    if isinstance(value, Tensor):
        value = value.detach().cpu().numpy()
    try:
        rates = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"LMS: learning_rate must be a number or a 1-D array of numbers, got "
            f"{type(value).__name__}"
        ) from err
    if rates.ndim != 1 or len(rates) == 0:
        raise ValueError(
            f"LMS: a learning-rate schedule must be 1-D and not empty, got shape {rates.shape}"
        )
    if not (np.isfinite(rates).all() and (rates > 0).all()):
        raise ValueError("LMS: every learning rate of the schedule must be finite and > 0")
    return rates
