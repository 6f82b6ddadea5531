"""Ridge regression of a readout edge from streamed sufficient statistics."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._checks import as_flag, as_int, as_tensor

try:
    from scipy.linalg.blas import dsyrk as _dsyrk
    from scipy.linalg.lapack import dpotrf as _dpotrf
    from scipy.linalg.lapack import dpotrs as _dpotrs
except ImportError:  # pragma: no cover - scipy is a dependency; torch's otherwise
    _dsyrk = _dpotrf = _dpotrs = None

__all__ = ["Ridge", "ridge_solve"]


def ridge_solve(
    xtx: Tensor, xty: Tensor, alpha: float, fit_bias: bool = True
) -> tuple[Tensor, Tensor | None]:
    r"""Solve the ridge normal equations.

    With ``fit_bias`` the statistics are those of the augmented design
    :math:`\tilde X = [X, 1]`, and the bias (last row) is not penalised:

    .. math:: (\tilde X^\top \tilde X + \alpha D)\,\tilde W^\top = \tilde X^\top Y,
              \qquad D = \mathrm{diag}(1, \dots, 1, 0).

    Solved by one Cholesky factorisation (``torch.linalg.solve`` when the matrix is not
    positive definite, e.g. ``alpha = 0`` with collinear features); never by an inverse.
    Only the upper triangle of ``xtx`` is read.

    Parameters
    ----------
    xtx : Tensor
        ``(F, F)`` Gram matrix :math:`\tilde X^\top \tilde X` (``F = n_in + 1`` with bias);
        its upper triangle.
    xty : Tensor
        ``(F, n_out)`` cross term :math:`\tilde X^\top Y`.
    alpha : float
        Ridge penalty, >= 0.
    fit_bias : bool
        Whether the last feature is the constant 1.

    Returns
    -------
    weight : Tensor
        ``(n_out, n_in)``.
    bias : Tensor or None
        ``(n_out,)`` when ``fit_bias``.

    Raises
    ------
    ValueError
        When the system is singular.
    """
    n_penalised = xtx.shape[0] - int(fit_bias)
    xty = xty.to(xtx.dtype)

    def regularised() -> Tensor:  # (F, F), a fresh copy: the factorisation overwrites it
        a = xtx.clone(memory_format=torch.contiguous_format)
        a.diagonal()[:n_penalised] += float(alpha)
        return a

    sol = _cholesky_solve_upper(regularised(), xty)
    if sol is None:  # not positive definite
        try:
            sol = torch.linalg.solve(mirror_upper_(regularised()), xty)  # (F, n_out)
        except torch.linalg.LinAlgError as err:
            raise ValueError(
                f"ridge_solve: the normal equations are singular (alpha={alpha:g}; "
                "features that are constant, zero or linearly dependent); pass alpha > 0"
            ) from err
    if fit_bias:
        return sol[:-1].T.contiguous(), sol[-1].contiguous()
    return sol.T.contiguous(), None


def mirror_upper_(a: Tensor) -> Tensor:
    """Make the square ``a`` symmetric in place from its upper triangle (what the native
    kernels keep of a Gram or inverse correlation matrix); returns ``a``."""
    lower = a.triu(1).mT
    return a.triu_().add_(lower)


def _cholesky_solve_upper(a: Tensor, b: Tensor) -> Tensor | None:
    """``a^{-1} b`` by a Cholesky factorisation of the symmetric ``a`` given by its upper
    triangle (``a`` is overwritten), or ``None`` when ``a`` is not positive definite. On the
    CPU in float64 LAPACK's ``dpotrf``/``dpotrs`` factor the row-major upper triangle in
    place, as the lower triangle of the column-major transpose."""
    lapack = a.device.type == "cpu" and a.dtype == torch.float64 and _dpotrf is not None
    # torch's path for statistics that carry gradients, and for an empty system
    if lapack and a.numel() and not (a.requires_grad or b.requires_grad):
        chol, info = _dpotrf(a.numpy().T, lower=1, clean=0, overwrite_a=1)
        if info != 0:
            return None
        sol, info = _dpotrs(chol, b.numpy(), lower=1)
        return torch.from_numpy(sol) if info == 0 else None
    chol, info = torch.linalg.cholesky_ex(mirror_upper_(a))
    return torch.cholesky_solve(b, chol) if int(info) == 0 else None


def _gram(X: Tensor) -> Tensor:
    """``X^T X`` for float64 ``X`` of shape ``(m, n)``, upper triangle only (the lower one
    is undefined): on the CPU just that triangle, half the flops of a GEMM, by BLAS's
    ``dsyrk`` (through scipy)."""
    if X.device.type != "cpu":
        return X.T @ X
    if _dsyrk is None:
        return X.T @ X
    return torch.from_numpy(_dsyrk(1.0, X.contiguous().numpy().T, trans=0, lower=0))


def _check_finite(where: str, *parts: Tensor) -> None:
    if not all(torch.isfinite(a).all() for a in parts):
        raise ValueError(
            f"{where}: X or Y contains NaN or inf values (or values whose squares "
            "overflow); nothing was accumulated"
        )


def _centred_stats(where: str, X: Tensor, Y: Tensor) -> list:
    """``[count, mean_x, mean_y, C_xx (upper triangle), C_xy]`` of float64 ``X``, ``Y``;
    a ``ValueError`` (nothing accumulated) for NaN or inf (they show in the means)."""
    mx, my = X.mean(0), Y.mean(0)
    _check_finite(where, mx, my)
    xc = X - mx
    cxx, cxy = _gram(xc), xc.T @ (Y - my)
    _check_finite(where, cxx.diagonal(), cxy)  # squares that overflow
    return [X.shape[0], mx, my, cxx, cxy]


def _augment(count: int, mx: Tensor, my: Tensor, cxx: Tensor, cxy: Tensor) -> tuple:
    """The augmented sums ``([X, 1]^T [X, 1], [X, 1]^T Y)`` of centred statistics."""
    n = mx.shape[0]
    xtx = mx.new_zeros(n + 1, n + 1)
    xtx[:n, :n] = mirror_upper_(cxx.clone()) + count * torch.outer(mx, mx)
    xtx[:n, n] = xtx[n, :n] = count * mx
    xtx[n, n] = count
    return xtx, torch.cat([cxy + count * torch.outer(mx, my), (count * my)[None]])


class Ridge:
    r"""Offline ridge regression of a readout, from streamed sufficient statistics.

    With a bias (the default) the statistics are centred: per sequence (or chunk) the
    feature and target means and the centred sums
    :math:`C_{xx} = \sum (x - \bar x)(x - \bar x)^\top`, :math:`C_{xy} = \sum (x - \bar x)
    (y - \bar y)^\top`, merged across calls by Chan, Golub & LeVeque's pairwise update
    (exact, and free of the cancellation of :math:`X^\top X - n \bar x \bar x^\top`). The
    solve is then

    .. math:: (C_{xx} + \alpha I)\,W^\top = C_{xy}, \qquad b = \bar y - W \bar x,

    the same solution as the augmented normal equations of :func:`ridge_solve`, but with
    the condition of the centred problem: at a condition of :math:`10^9` the weights are
    about a thousand times closer to an SVD solution when the features have a mean of the
    order of their spread. Without a bias the statistics are :math:`X^\top X`,
    :math:`X^\top Y`. ``Network.fit_ridge`` drives it: it runs the network, feeds the
    recorded source values of the readout edge here and writes the solution into the edge.

    Parameters
    ----------
    alpha : float
        Ridge penalty :math:`\alpha \ge 0` on the weights (not on the bias).
    fit_bias : bool
        Fit a bias (default ``True``).
    washout : int
        Steps dropped at the start of each sequence passed to :meth:`partial_fit`.

    Attributes
    ----------
    weight : Tensor
        ``(n_out, n_in)`` solution (after :meth:`solve`).
    bias : Tensor or None
        ``(n_out,)`` solution.
    n_samples : int
        Samples accumulated so far.

    Notes
    -----
    :meth:`merge` adds another ``Ridge``'s statistics (one fit of both data sets). The
    properties :attr:`xtx` and :attr:`xty` hand the statistics out as the augmented sums
    :math:`\tilde X^\top \tilde X`, :math:`\tilde X^\top Y` of :math:`\tilde X = [X, 1]`,
    and from then on (until :meth:`reset`) the fit keeps those tensors as its statistics,
    so that writing into them changes the fit; it then solves the augmented equations, which
    the centring no longer protects.
    """

    def __init__(self, alpha: float = 1e-8, fit_bias: bool = True, washout: int = 0) -> None:
        real = isinstance(alpha, numbers.Real) and not isinstance(alpha, bool | np.bool_)
        if not (real and alpha >= 0):
            raise ValueError(f"Ridge: alpha must be a number >= 0, got {alpha!r}")
        if not math.isfinite(alpha):
            raise ValueError(f"Ridge: alpha must be finite, got {alpha!r}")
        washout = as_int("Ridge", "washout", washout, minimum=0, type_error=ValueError)
        fit_bias = as_flag("Ridge", "fit_bias", fit_bias)
        self.alpha = float(alpha)
        self.fit_bias = fit_bias
        self.washout = washout
        self.reset()

    @property
    def xtx(self) -> Tensor | None:
        """The accumulated :math:`\tilde X^\top \tilde X` ``(F, F)``, symmetric (``None``
        before the first :meth:`partial_fit`): from this call on the statistics themselves
        (see the class notes), so changing it in place changes the fit."""
        self._to_augmented()
        if self._xtx is not None and not self._mirrored:
            # the fit accumulates the upper triangle only; mirror it on the first look
            mirror_upper_(self._xtx)
            self._mirrored = True
        return self._xtx

    @xtx.setter
    def xtx(self, value: Tensor | None) -> None:
        self._to_augmented()
        self._xtx, self._mirrored = value, True

    @property
    def xty(self) -> Tensor | None:
        """The accumulated :math:`\tilde X^\top Y` ``(F, n_out)``; see :attr:`xtx`."""
        self._to_augmented()
        return self._xty

    @xty.setter
    def xty(self, value: Tensor | None) -> None:
        self._to_augmented()
        self._xty = value

    def reset(self) -> None:
        """Forget the accumulated statistics."""
        self._xtx: Tensor | None = None  # augmented sums (upper triangle); see `xtx`
        self._xty: Tensor | None = None
        self._mirrored = True
        self._centred: list | None = None  # [count, mean_x, mean_y, C_xx (upper), C_xy]
        self.n_samples = 0
        self.weight: Tensor | None = None
        self.bias: Tensor | None = None

    def _to_augmented(self) -> None:
        """Turn centred statistics into the augmented sums (see the class notes)."""
        if self._centred is not None:
            self._xtx, self._xty = _augment(*self._centred)
            self._centred, self._mirrored = None, True

    @staticmethod
    def _as3d(where: str, name: str, a: Any) -> Tensor:
        t = as_tensor(where, name, a, copy=False)
        if t.dim() == 2:
            t = t.unsqueeze(0)
        if t.dim() != 3:
            raise ValueError(
                f"{where}: {name} must be (T, n) or (B, T, n), got shape {tuple(t.shape)}"
            )
        return t

    def _widths(self) -> tuple[int, int] | None:
        """``(n_in, n_out)`` of the statistics so far, or ``None``."""
        if self._centred is not None:
            return self._centred[1].shape[0], self._centred[2].shape[0]
        if self._xtx is not None:
            return self._xtx.shape[0] - self.fit_bias, self._xty.shape[1]
        return None

    def partial_fit(self, X: Any, Y: Any, washout: int | None = None) -> Ridge:
        """Add one sequence (or a batch of sequences) of features and targets.

        Parameters
        ----------
        X : tensor or array
            ``(T, n_in)`` or ``(B, T, n_in)`` features (the readout's input).
        Y : tensor or array
            ``(T, n_out)`` or ``(B, T, n_out)`` targets, aligned step by step with ``X``. A
            step whose target holds a NaN (in any output) is left out of the statistics,
            features and all, as reservoirpy masks NaN targets; an inf is refused.
        washout : int, optional
            Steps to drop at the start (default: the trainer's ``washout``).
        """
        where = "Ridge.partial_fit"
        X, Y = self._as3d(where, "X", X), self._as3d(where, "Y", Y)
        if X.shape[:2] != Y.shape[:2]:
            raise ValueError(
                f"{where}: X has (B, T) = {tuple(X.shape[:2])}, Y has "
                f"{tuple(Y.shape[:2])}; they must match"
            )
        widths = self._widths()
        if widths is not None and widths != (X.shape[-1], Y.shape[-1]):
            raise ValueError(
                f"{where}: widths changed between calls: X has {X.shape[-1]} "
                f"features and Y {Y.shape[-1]} outputs"
            )
        w = self.washout if washout is None else as_int(where, "washout", washout, minimum=0)
        X = X[:, w:].to(torch.float64).reshape(-1, X.shape[-1])  # (B T', n_in)
        Y = Y[:, w:].to(torch.float64).reshape(-1, Y.shape[-1])  # (B T', n_out)
        masked = Y.isnan().any(-1)  # (B T',): steps without a target
        if bool(masked.any()):
            X, Y = X[~masked], Y[~masked]
        if X.shape[0] == 0:
            return self
        if self.fit_bias and self._xtx is None:
            self._merge(_centred_stats(where, X, Y))
        else:
            self._add_augmented(where, X, Y)
        self.n_samples += X.shape[0]
        return self

    def _merge(self, part: list) -> None:
        """Add centred statistics ``[count, mean_x, mean_y, C_xx, C_xy]`` (Chan et al.)."""
        if self._centred is None:
            self._centred = part
            return
        n_a, mx, my, cxx, cxy = self._centred
        n_b, mx_b, my_b, cxx_b, cxy_b = part
        n = n_a + n_b
        dx, dy, f = mx_b - mx, my_b - my, n_a * n_b / n
        self._centred = [
            n,
            mx + dx * (n_b / n),
            my + dy * (n_b / n),
            cxx + cxx_b + f * torch.outer(dx, dx),
            cxy + cxy_b + f * torch.outer(dx, dy),
        ]

    def merge(self, other: Ridge) -> Ridge:
        """Add the statistics of ``other`` (fitted on other data, with the same widths and
        ``fit_bias``; ``other`` is left as it is): a solve then fits both data sets as one."""
        where = "Ridge.merge"
        if not isinstance(other, Ridge) or other.fit_bias != self.fit_bias:
            raise ValueError(f"{where}: other must be a Ridge with fit_bias={self.fit_bias}")
        widths, theirs = self._widths(), other._widths()
        if theirs is None or other.n_samples == 0:
            return self
        if widths is not None and widths != theirs:
            raise ValueError(f"{where}: widths differ: {widths} here, {theirs} there")
        if self._xtx is None and other._centred is not None:
            self._merge([t.clone() if isinstance(t, Tensor) else t for t in other._centred])
        else:
            self._to_augmented()
            if other._centred is not None:
                xtx, xty = _augment(*other._centred)
            else:
                xtx, xty = other.xtx.clone(), other._xty.clone()
            if self._xtx is None:
                self._xtx, self._xty, self._mirrored = xtx, xty, True
            else:
                self.xtx.add_(xtx)
                self._xty.add_(xty)
        self.n_samples += other.n_samples
        return self

    def _add_augmented(self, where: str, X: Tensor, Y: Tensor) -> None:
        """Add ``X``, ``Y`` to the augmented sums (no bias, or after :attr:`xtx` was read)."""
        # this call's statistics first; the running ones change only if all are finite.
        # A NaN or inf anywhere in X shows on the diagonal of X^T X (a sum of squares),
        # one in Y in X^T Y or in the sums of Y.
        gram, xty = _gram(X), X.T @ Y  # (n, n) upper triangle, (n, n_out)
        sums = (X.sum(0), Y.sum(0)) if self.fit_bias else ()
        _check_finite(where, gram.diagonal(), xty, *sums)
        n = X.shape[1]
        if self._xtx is None:
            f = n + self.fit_bias
            self._xtx = X.new_zeros(f, f)
            self._xty = X.new_zeros(f, Y.shape[1])
        # the augmented design [X, 1] by blocks, without building it:
        # [[X^T X, X^T 1], [1^T X, m]] and [[X^T Y], [1^T Y]]
        self._xtx[:n, :n] += gram  # the upper triangles add up
        self._mirrored = False
        self._xty[:n] += xty
        if self.fit_bias:
            x_sum, y_sum = sums
            self._xtx[:n, n] += x_sum
            self._xtx[n, n] += X.shape[0]
            self._xty[n] += y_sum

    def solve(self) -> tuple[Tensor, Tensor | None]:
        """Solve for the weights from the statistics accumulated so far.

        Raises ``ValueError`` when the system is singular or its solution not finite; the
        weights of an earlier solve are then kept."""
        if self._widths() is None or self.n_samples == 0:
            raise RuntimeError(
                "Ridge.solve: no samples accumulated; call partial_fit first (or lower washout)"
            )
        try:
            if self._centred is not None:
                _, mx, my, cxx, cxy = self._centred
                weight, _ = ridge_solve(cxx, cxy, self.alpha, fit_bias=False)
                bias = my - weight @ mx
            else:
                weight, bias = ridge_solve(self._xtx, self._xty, self.alpha, self.fit_bias)
        except ValueError as err:
            raise ValueError(f"Ridge.solve: {str(err).removeprefix('ridge_solve: ')}") from err
        if not all(torch.isfinite(t).all() for t in (weight, bias) if t is not None):
            raise ValueError(
                f"Ridge.solve: the solution is not finite (alpha={self.alpha:g}; the normal "
                "equations are singular or overflow); pass alpha > 0"
            )
        self.weight, self.bias = weight, bias
        return self.weight, self.bias

    def fit(self, X: Any, Y: Any) -> Ridge:
        """``reset``, ``partial_fit`` on one (batch of) sequence(s), then ``solve``."""
        self.reset()
        self.partial_fit(X, Y)
        self.solve()
        return self

    def predict(self, X: Any) -> Tensor:
        """``X @ weight.T + bias`` in float64."""
        if self.weight is None:
            raise RuntimeError("Ridge.predict: call solve() first")
        X = as_tensor("Ridge.predict", "X", X, dtype=torch.float64, copy=False)
        if X.dim() == 0 or X.shape[-1] != self.weight.shape[1]:
            raise ValueError(
                f"Ridge.predict: X must be (..., {self.weight.shape[1]}) (the fitted features), "
                f"got shape {tuple(X.shape)}"
            )
        y = X @ self.weight.T
        return y if self.bias is None else y + self.bias

    def __repr__(self) -> str:
        return (
            f"Ridge(alpha={self.alpha:g}, fit_bias={self.fit_bias}, washout={self.washout}, "
            f"n_samples={self.n_samples})"
        )
