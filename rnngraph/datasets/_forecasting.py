"""Turn a time series into (input, target) pairs for forecasting."""

from __future__ import annotations

import numbers

import numpy as np
import torch

from .._checks import keywords
from ._utils import check_int

__all__ = ["to_forecasting"]


@keywords("to_forecasting")
def to_forecasting(x, forecast: int = 1, axis: int = 0, test_size: int | float | None = None):
    r"""Inputs :math:`x(t)` and targets :math:`x(t + \mathrm{forecast})` from one series.

    Along the time axis ``axis`` of length :math:`T`, ``X = x[: T - forecast]`` and
    ``y = x[forecast:]``, so ``y[k] = X[k + forecast]`` wherever both exist: the task is to
    predict ``forecast`` steps ahead. With ``test_size`` the last ``n_test`` pairs are held out;
    ``n_test`` is ``test_size`` itself for an int and ``round(T * test_size)`` for a float in
    [0, 1) (as in reservoirpy's ``to_forecasting``, which always takes the time axis to be the
    second to last).

    Parameters
    ----------
    x : array-like or torch.Tensor
        The series, e.g. ``(T, C)`` or ``(B, T, C)`` with ``axis=1``.
    forecast : int, default 1
        Steps ahead, ``1 <= forecast < T``.
    axis : int, default 0
        Time axis.
    test_size : int or float, optional
        Number (int) or fraction of ``T`` (float in [0, 1)) of pairs held out for testing.

    Returns
    -------
    (X, y), or (X_train, X_test, y_train, y_test) when ``test_size`` is given
        Views of ``x`` (numpy arrays, or tensors for a tensor ``x``) with the time axis
        shortened to ``T - forecast`` (split into ``T - forecast - n_test`` and ``n_test``).

    Raises
    ------
    ValueError
        When ``forecast`` or ``test_size`` leaves no training pair, or ``axis`` is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> X, y = to_forecasting(np.arange(5.0).reshape(-1, 1), forecast=2)
    >>> X[:, 0], y[:, 0]
    (array([0., 1., 2.]), array([2., 3., 4.]))
    """
    where = "to_forecasting"
    if not isinstance(x, torch.Tensor):
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{where}: x must be real numbers, got an array of dtype {x.dtype}")
    elif x.is_complex():
        raise TypeError(f"{where}: x must be real numbers, got dtype {x.dtype}")
    if x.ndim == 0:
        raise ValueError(f"{where}: x must have a time axis, got a scalar")
    axis = check_int(axis, "axis", where, minimum=-x.ndim)
    if axis >= x.ndim:
        raise ValueError(f"{where}: axis {axis} is out of range for x with {x.ndim} dimensions")
    forecast = check_int(forecast, "forecast", where, minimum=1)
    T = x.shape[axis]
    if forecast >= T:
        raise ValueError(
            f"{where}: forecast must be smaller than the series length {T} (axis {axis}), "
            f"got forecast={forecast}"
        )
    n_pairs = T - forecast

    n_test = _test_pairs(where, test_size, T, forecast, n_pairs)

    def take(start: int, stop: int):
        index = [slice(None)] * x.ndim
        index[axis] = slice(start, stop)
        return x[tuple(index)]

    X, y = take(0, n_pairs), take(forecast, T)
    if n_test is None:
        return X, y
    n_train = n_pairs - n_test
    return (
        take(0, n_train),
        take(n_train, n_pairs),
        take(forecast, forecast + n_train),
        take(forecast + n_train, T),
    )


def _test_pairs(where: str, test_size, T: int, forecast: int, n_pairs: int) -> int | None:
    """The number of test pairs that ``test_size`` asks for (an int, or a fraction of
    ``T`` in [0, 1)), checked: at least one pair must remain for training."""
    if test_size is None:
        return None
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real):
        raise TypeError(f"{where}: test_size must be an int or a float, got {test_size!r}")
    if isinstance(test_size, numbers.Integral):
        n_test = int(test_size)
    elif 0.0 <= test_size < 1.0:
        n_test = round(T * float(test_size))
    else:
        raise ValueError(f"{where}: a float test_size must be in [0, 1), got {test_size}")
    if not 0 <= n_test < n_pairs:
        raise ValueError(
            f"{where}: test_size gives {n_test} test pairs, but the series of length {T} "
            f"with forecast={forecast} has {n_pairs} pairs and at least one must remain "
            "for training"
        )
    return n_test
