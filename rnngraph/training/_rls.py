"""Recursive least squares (RLS) for online readout training, and FORCE learning."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .. import _native
from .._checks import as_float_dtype, as_int
from ._ridge import mirror_upper_

__all__ = ["RLS", "rls_update"]


def rls_update(
    P: Tensor, w: Tensor, b: Tensor | None, r: Tensor, err: Tensor, forgetting: float = 1.0
) -> None:
    r"""One RLS step, in place, for a batch of ``B`` samples (a rank-``B`` update).

    With the a-priori error :math:`e = w r - f` of each sample (rows of ``err``),

    .. math::

        k &= P\,r^\top, \qquad S = \lambda I_B + r\,k, \qquad G = S^{-1} k^\top \\
        P &\leftarrow (P - k\,G)/\lambda, \qquad w \leftarrow w - e^\top G

    For ``B = 1`` it reads :math:`c = 1/(\lambda + r^\top P r)`,
    :math:`P \leftarrow (P - c\,k k^\top)/\lambda`, :math:`w \leftarrow w - c\,e\,k^\top`:
    with :math:`\lambda = 1`, Sussillo & Abbott's update. It is written as in-place BLAS
    calls that keep :math:`P` symmetric (an asymmetric rounding error would grow as
    :math:`\lambda^{-n}`).

    Parameters
    ----------
    P : Tensor
        ``(F, F)`` inverse correlation matrix, updated in place (``F = N + 1`` with bias).
    w : Tensor
        ``(n_out, N)`` weights, updated in place.
    b : Tensor or None
        ``(n_out,)`` bias, updated in place; its feature is the constant 1 (last of ``P``).
    r : Tensor
        ``(B, N)`` features (the readout's input) of ``B`` samples.
    err : Tensor
        ``(B, n_out)`` a-priori errors :math:`w r + b - f`.
    forgetting : float
        :math:`\lambda \in (0, 1]`; 1 weighs all samples equally.
    """
    if b is not None:
        r = torch.cat([r, r.new_ones(r.shape[0], 1)], dim=1)  # (B, F)
    k = P @ r.T  # (F, B)
    # P must stay symmetric: with forgetting < 1 an asymmetric rounding error grows by
    # 1/lambda per update (lambda^-n after n updates) until the weights drift off.
    if r.shape[0] == 1:
        d = forgetting + r @ k  # (1, 1); > 0 in exact arithmetic, not always in rounding
        g = k.T / d  # (1, F) = c k^T
        # c k k^T as (s u) u^T with u = k / sqrt|d|, s = sign(d): each entry is one rounded
        # product s u_i u_j (an FMA or not), the same for (i, j) and (j, i) in the BLAS
        # kernels torch uses; the C update keeps the upper triangle instead
        u = k * d.abs().rsqrt()  # (F, 1)
        P.addmm_(u * d.sign(), u.T, alpha=-1.0)
    else:
        s = r @ k  # (B, B)
        s.diagonal().add_(forgetting)
        g = torch.linalg.solve(s, k.T)  # (B, F)
        P.addmm_(k, g, alpha=-1.0)  # (F, F), symmetric up to rounding
        P.copy_((P + P.mT) / 2)
    if forgetting != 1.0:
        P.div_(forgetting)
    n = w.shape[1]
    w.addmm_(err.T, g[:, :n], alpha=-1.0)  # (n_out, N)
    if b is not None:
        b.sub_((err.T @ g[:, n:]).squeeze(1))  # (n_out,)


def _real(value: Any) -> bool:
    """Whether ``value`` is a real number (a Python or NumPy one, not a bool)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


class RLS:
    r"""Online recursive-least-squares training of a readout edge (FORCE learning).

    Every ``every`` steps the readout's weights move to the least-squares solution of all
    samples seen so far, weighted by ``forgetting`` per update (:func:`rls_update`).
    With :math:`P(0) = I/\alpha` and forgetting factor :math:`\lambda`, after :math:`m`
    updates with features :math:`r_j` and targets :math:`f_j`, :math:`w` minimises

    .. math::

        \sum_{j=1}^{m} \lambda^{m-j}\,\lVert w\,r_j - f_j \rVert^2
        + \lambda^{m} \alpha\,\lVert w \rVert^2,
        \qquad P = \Big(\sum_j \lambda^{m-j} r_j r_j^\top + \lambda^m \alpha I\Big)^{-1}

    (the bias, when fitted, is one more weight on a constant feature 1). With
    :math:`\lambda = 1` this is the ridge solution with penalty :math:`\alpha`; with
    :math:`\lambda < 1` the samples of the last :math:`1/(1-\lambda)` updates or so count.

    Parameters
    ----------
    alpha : float
        Prior: :math:`P(0) = I / \alpha` (reservoirpy's and Sussillo & Abbott's
        convention). RectiPy starts from :math:`P(0) = \alpha_R I`: pass
        ``alpha = 1/alpha_R``.
    forgetting : float
        Forgetting factor :math:`\lambda \in (0, 1]`; default 1 (every sample counts alike).
    every : int
        Update every ``every`` steps (Sussillo & Abbott: 2); default 1.
    start : int
        First step that updates (e.g. a washout); default 0.
    dtype : torch.dtype, optional
        Dtype of :math:`P` (default: the readout weights').

    Notes
    -----
    Batch elements are extra samples of one regression: a batch of ``B`` trials updates
    with a rank-``B`` step, never with a loop over the batch.

    In closed-loop FORCE learning, :math:`\lambda = 1` fits the final readout to the whole
    run, the early transient included; a memory of a couple of target periods (0.999 for
    Sussillo & Abbott's task, ``benchmarks/force_sussillo_abbott.py``) fits it to the
    settled activity, and on most draws the network then keeps the target's period after
    learning. Too short a memory fails (0.995 there).
    """

    def __init__(
        self,
        alpha: float = 1.0,
        forgetting: float = 1.0,
        every: int = 1,
        start: int = 0,
        dtype: torch.dtype | None = None,
    ) -> None:
        if not (_real(alpha) and alpha > 0):
            raise ValueError(f"RLS: alpha must be > 0 (P(0) = I/alpha), got {alpha!r}")
        if not math.isfinite(alpha):
            raise ValueError(f"RLS: alpha must be finite (P(0) = I/alpha), got {alpha!r}")
        if not (_real(forgetting) and 0.0 < forgetting <= 1.0):
            raise ValueError(f"RLS: forgetting must be in (0, 1], got {forgetting!r}")
        every = as_int("RLS", "every", every, minimum=1, type_error=ValueError)
        start = as_int("RLS", "start", start, minimum=0, type_error=ValueError)
        if dtype is not None:
            as_float_dtype("RLS", dtype)
        self.alpha = float(alpha)
        self.forgetting = float(forgetting)
        self.every = every
        self.start = start
        self.dtype = dtype
        self._P: Tensor | None = None
        self._upper_only = False  # the native update keeps only P's upper triangle
        self.n_updates = 0

    @property
    def P(self) -> Tensor | None:
        """The inverse correlation matrix :math:`P` ``(F, F)`` (``None`` before ``init``)."""
        if self._upper_only:
            mirror_upper_(self._P)
            self._upper_only = False
        return self._P

    @P.setter
    def P(self, value: Tensor | None) -> None:
        self._P, self._upper_only = value, False

    def init(self, n_features: int, fit_bias: bool, device: Any, dtype: torch.dtype) -> None:
        """Set :math:`P = I/\\alpha` for ``n_features`` inputs (plus the bias feature)."""
        f = n_features + int(fit_bias)
        self.P = torch.eye(f, device=device, dtype=self.dtype or dtype) / self.alpha
        self.n_updates = 0

    def expect_updates(self, where: str, n_updates: int) -> None:
        """Start a call of ``n_updates`` updates (RLS takes any number)."""

    def update(self, w: Tensor, b: Tensor | None, r: Tensor, target: Tensor) -> Tensor:
        """One update of ``w`` (and ``b``) in place from features ``r`` ``(B, N)`` and
        targets ``(B, n_out)``; returns the a-priori error ``(B, n_out)``."""
        if self._P is None:
            self.init(w.shape[1], b is not None, w.device, w.dtype)
        if self._P.dtype == w.dtype:
            err = _native.rls_update(self._P, w, b, r, target, self.forgetting)
            if err is not None:
                self._upper_only = True
                self.n_updates += 1
                return err
        err = torch.nn.functional.linear(r, w, b) - target  # (B, n_out)
        P = self.P  # the whole matrix
        if P.dtype != w.dtype:
            rr, ee = r.to(self.P.dtype), err.to(self.P.dtype)
            w64, b64 = w.to(self.P.dtype), None if b is None else b.to(self.P.dtype)
            rls_update(P, w64, b64, rr, ee, self.forgetting)
            w.copy_(w64)
            if b is not None:
                b.copy_(b64)
        else:
            rls_update(P, w, b, r, err, self.forgetting)
        self.n_updates += 1
        return err

    def __repr__(self) -> str:
        return (
            f"RLS(alpha={self.alpha:g}, forgetting={self.forgetting:g}, every={self.every}, "
            f"start={self.start}, n_updates={self.n_updates})"
        )
