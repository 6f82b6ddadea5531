r"""Error metrics for evaluating predictions against targets.

Every metric takes the target ``y`` first and the prediction ``yhat`` second (reservoirpy's
``y_true, y_pred`` order), as numpy arrays, torch tensors (any device; detached) or nested
sequences of the same shape. They are evaluation metrics, not losses: values are computed in
float64 numpy and are not differentiable (the training losses live in ``rnngraph.training``).

Reduction
    ``axis=None`` (default) reduces over every element and returns a Python ``float``. An int or
    a tuple of ints reduces over those axes only and returns a float64 ``numpy.ndarray`` of the
    remaining shape; e.g. ``axis=0`` on ``(T, C)`` data gives one value per channel, and
    ``axis=(0, 1)`` on ``(B, T, C)`` data likewise (reservoirpy's ``dimensionwise=True``).

With :math:`e_i = y_i - \hat y_i` and :math:`N` elements in the reduction:

* :func:`mse` :math:`= \frac{1}{N} \sum_i e_i^2`
* :func:`rmse` :math:`= \sqrt{\mathrm{mse}}`
* :func:`mae` :math:`= \frac{1}{N} \sum_i \lvert e_i \rvert`
* :func:`nrmse` :math:`= \mathrm{rmse} / \lambda(y)`, :math:`\lambda` chosen by ``norm``
* :func:`rsquare` :math:`= 1 - \sum_i e_i^2 / \sum_i (y_i - \bar y)^2`

NaN or infinite values propagate into the result (a diverged prediction scores NaN or inf).
"""

from __future__ import annotations

import copy
import numbers

import numpy as np
import torch

from ._checks import as_int, as_tensor, keywords

__all__ = ["NRMSE_NORMS", "mae", "memory_capacity", "mse", "nrmse", "rmse", "rsquare"]

#: Valid ``norm`` names of :func:`nrmse` ("minmax" is an alias of "range", "iqr" of "q1q3").
NRMSE_NORMS = ("std", "range", "minmax", "var", "mean", "q1q3", "iqr")

Axis = int | tuple[int, ...] | None


def _as_float64(value, name: str, where: str) -> np.ndarray:
    """``value`` (array-like or tensor of real numbers: no strings, objects or complex) as
    a float64 numpy array, or a ``TypeError`` naming ``where``."""
    if isinstance(value, torch.Tensor) and value.layout != torch.strided:
        value = value.to_dense()
    t = as_tensor(where, name, value, dtype=torch.float64, device="cpu", copy=False)
    return t.detach().numpy()


def _pair(y, yhat, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Both arguments as float64 arrays of one shape, or an error naming the metric."""
    y_arr = _as_float64(y, "y", where)
    yhat_arr = _as_float64(yhat, "yhat", where)
    if y_arr.shape != yhat_arr.shape:
        raise ValueError(
            f"{where}: y (target) and yhat (prediction) must have the same shape, got "
            f"y {tuple(y_arr.shape)} and yhat {tuple(yhat_arr.shape)}; reshape one of them "
            "(e.g. yhat.reshape(y.shape)) if they hold the same values"
        )
    if y_arr.size == 0:
        raise ValueError(f"{where}: y and yhat are empty (shape {tuple(y_arr.shape)})")
    return y_arr, yhat_arr


def _out(value):
    """A Python float for a full reduction, else the array."""
    return float(value) if np.ndim(value) == 0 else np.asarray(value, dtype=np.float64)


def _check_axis(axis: Axis, ndim: int, where: str) -> Axis:
    if axis is None:
        return None
    if isinstance(axis, numbers.Integral):
        axes = (axis,)
    elif isinstance(axis, tuple | list):
        axes = tuple(axis)
    else:
        raise TypeError(f"{where}: axis must be None, an int or a tuple of ints, got {axis!r}")
    for ax in axes:
        if isinstance(ax, bool) or not isinstance(ax, int | np.integer) or not -ndim <= ax < ndim:
            raise ValueError(f"{where}: axis {axis!r} is out of range for data of {ndim} dims")
    return axis


@keywords("mse")
def mse(y, yhat, axis: Axis = None):
    r"""Mean squared error :math:`\frac{1}{N}\sum_i (y_i - \hat y_i)^2`.

    Same as reservoirpy's ``observables.mse``.

    Parameters
    ----------
    y : array-like or torch.Tensor
        Target.
    yhat : array-like or torch.Tensor
        Prediction, same shape as ``y``.
    axis : int, tuple of int or None, default None
        Axes to average over; ``None`` averages over all elements.

    Returns
    -------
    float or numpy.ndarray
        A ``float`` when ``axis`` is ``None``, else float64 values over the remaining axes.
    """
    y_arr, yhat_arr = _pair(y, yhat, "mse")
    axis = _check_axis(axis, y_arr.ndim, "mse")
    return _out(np.mean((y_arr - yhat_arr) ** 2, axis=axis))


@keywords("rmse")
def rmse(y, yhat, axis: Axis = None):
    r"""Root mean squared error :math:`\sqrt{\frac{1}{N}\sum_i (y_i - \hat y_i)^2}`.

    Same as reservoirpy's ``observables.rmse``. Arguments and return as in :func:`mse`.
    """
    y_arr, yhat_arr = _pair(y, yhat, "rmse")
    axis = _check_axis(axis, y_arr.ndim, "rmse")
    return _out(np.sqrt(np.mean((y_arr - yhat_arr) ** 2, axis=axis)))


@keywords("mae")
def mae(y, yhat, axis: Axis = None):
    r"""Mean absolute error :math:`\frac{1}{N}\sum_i \lvert y_i - \hat y_i \rvert`.

    Same as reservoirpy's ``observables.mae``. Arguments and return as in :func:`mse`.
    """
    y_arr, yhat_arr = _pair(y, yhat, "mae")
    axis = _check_axis(axis, y_arr.ndim, "mae")
    return _out(np.mean(np.abs(y_arr - yhat_arr), axis=axis))


@keywords("nrmse")
def nrmse(y, yhat, norm: str | None = None, axis: Axis = None, norm_value: float | None = None):
    r"""Normalised root mean squared error :math:`\mathrm{rmse}(y, \hat y) / \lambda(y)`.

    The normaliser :math:`\lambda` is computed from the TARGET ``y`` only, over the same
    ``axis`` as the error:

    * ``"std"`` (default): population standard deviation,
      :math:`\sqrt{\frac{1}{N}\sum_i (y_i - \bar y)^2}` (``ddof=0``). Then
      :math:`\mathrm{nrmse}^2 = 1 - R^2`, and predicting the mean of ``y`` scores 1.
    * ``"range"`` (alias ``"minmax"``): :math:`\max y - \min y`.
    * ``"var"``: population variance :math:`\frac{1}{N}\sum_i (y_i - \bar y)^2` (not its
      square root: the result then has the unit of 1 / y).
    * ``"mean"``: :math:`\bar y`.
    * ``"q1q3"`` (alias ``"iqr"``): interquartile range :math:`Q_3(y) - Q_1(y)` (numpy's
      default linear quantiles).
    * ``norm_value``, when given, replaces :math:`\lambda` (``norm`` must then be left out).

    Correspondence with reservoirpy 0.4.2's ``observables.nrmse(y_true, y_pred, norm=...)``:
    its default ``norm="minmax"`` is ``norm="range"`` here; ``"var"``, ``"mean"`` and ``"q1q3"``
    are the same; it has no ``"std"`` (use ``norm_value=y.std()`` there). The default here is
    ``"std"``, the usual normalisation in reservoir-computing papers; report which one you use.

    Parameters
    ----------
    y : array-like or torch.Tensor
        Target.
    yhat : array-like or torch.Tensor
        Prediction, same shape as ``y``.
    norm : {"std", "range", "minmax", "var", "mean", "q1q3", "iqr"}, optional
        Normaliser, see above; default ``"std"`` (left out when ``norm_value`` is given).
    axis : int, tuple of int or None, default None
        Axes to reduce over (for the error and the normaliser alike).
    norm_value : float, optional
        A fixed normaliser.

    Returns
    -------
    float or numpy.ndarray
        A ``float`` when ``axis`` is ``None``, else float64 values over the remaining axes.

    Raises
    ------
    ValueError
        For an unknown ``norm``, mismatched shapes, or a normaliser equal to 0 (a constant
        target has zero std, range and variance).
    """
    where = "nrmse"
    if norm is None and norm_value is None:
        norm = "std"
    if norm_value is None and norm not in NRMSE_NORMS:
        raise ValueError(f"{where}: unknown norm {norm!r}; valid: {NRMSE_NORMS}")
    if norm_value is not None and norm is not None:
        raise ValueError(
            f"{where}: norm={norm!r} and norm_value={norm_value!r} both say what to divide by; "
            "give one"
        )
    y_arr, yhat_arr = _pair(y, yhat, where)
    axis = _check_axis(axis, y_arr.ndim, where)
    error = np.sqrt(np.mean((y_arr - yhat_arr) ** 2, axis=axis))
    if norm_value is not None:
        if isinstance(norm_value, bool) or not isinstance(norm_value, numbers.Real):
            raise TypeError(f"{where}: norm_value must be a number, got {norm_value!r}")
        if not np.isfinite(norm_value) or norm_value <= 0:
            raise ValueError(f"{where}: norm_value must be a finite number > 0, got {norm_value!r}")
        lam = np.float64(norm_value)
        label = f"norm_value={norm_value!r}"
    else:
        label = f"norm={norm!r}"
        lam = _normaliser(y_arr, norm, axis)
    if np.any(lam == 0):
        raise ValueError(
            f"{where}: the normaliser ({label}) of the target y is 0, so the NRMSE is undefined "
            "(a constant target has zero std, range and variance); use rmse, or another norm"
        )
    return _out(error / lam)


def _normaliser(y: np.ndarray, norm: str, axis: Axis) -> np.ndarray:
    r"""The NRMSE normaliser :math:`\lambda` of target ``y`` by name (see :func:`nrmse`)."""
    if norm == "std":
        return np.std(y, axis=axis)
    if norm in ("range", "minmax"):
        return np.max(y, axis=axis) - np.min(y, axis=axis)
    if norm == "var":
        return np.var(y, axis=axis)
    if norm == "mean":
        return np.mean(y, axis=axis)
    return np.quantile(y, 0.75, axis=axis) - np.quantile(y, 0.25, axis=axis)  # q1q3 / iqr


@keywords("rsquare")
def rsquare(y, yhat, axis: Axis = None):
    r"""Coefficient of determination :math:`R^2 = 1 - SS_{res} / SS_{tot}`.

    .. math::

        SS_{res} = \sum_i (y_i - \hat y_i)^2, \qquad SS_{tot} = \sum_i (y_i - \bar y)^2,

    with :math:`\bar y` the mean of the target over ``axis``. A perfect prediction scores 1,
    predicting :math:`\bar y` scores 0, and worse predictions score below 0. Same as
    reservoirpy's ``observables.rsquare``.

    Parameters and return as in :func:`mse`.

    Raises
    ------
    ValueError
        For mismatched shapes, or a constant target (:math:`SS_{tot} = 0`).
    """
    where = "rsquare"
    y_arr, yhat_arr = _pair(y, yhat, where)
    axis = _check_axis(axis, y_arr.ndim, where)
    ss_res = np.sum((y_arr - yhat_arr) ** 2, axis=axis)
    ss_tot = np.sum((y_arr - np.mean(y_arr, axis=axis, keepdims=True)) ** 2, axis=axis)
    if np.any(ss_tot == 0):
        raise ValueError(
            f"{where}: the target y is constant along the reduced axes (total sum of squares 0), "
            "so R^2 is undefined"
        )
    return _out(1.0 - ss_res / ss_tot)


@keywords("memory_capacity")
def memory_capacity(
    net,
    k_max: int,
    alpha: float = 1e-4,
    series=None,
    test_size: int | float = 0.2,
    seed: int | None = None,
    as_list: bool = False,
):
    r"""Memory capacity of a reservoir (Jaeger 2001; reservoirpy's ``memory_capacity``).

    .. math:: MC = \sum_{k=1}^{k_{max}} \rho^2\big(u(t-k), y_k(t)\big)

    where :math:`y_k` is a ridge readout trained to recall the input :math:`k` steps back
    and :math:`\rho` the correlation over the test steps. A copy of ``net`` (one input
    channel, its output node the reservoir) gets a readout of :math:`k_{max}` outputs,
    fitted by ``fit_ridge`` on the first part of ``series`` with a washout of
    :math:`k_{max}` steps; the test part continues from the fit's state. ``net`` itself is
    left as it was.

    Parameters
    ----------
    net : Network
        The reservoir, from its held state.
    k_max : int
        Largest lag (>= 1); a rule of thumb is twice the units.
    alpha : float
        Ridge penalty of the readouts.
    series : array, optional
        ``(T,)`` or ``(T, 1)`` input; default i.i.d. uniform in [-0.8, 0.8], ``10 k_max``
        steps, drawn with ``seed`` (NumPy's ``default_rng``).
    test_size : int or float
        Test steps, or their fraction of the series' length (reservoirpy's rule).
    as_list : bool
        Return the ``(k_max,)`` values :math:`MC_k` instead of their sum.

    Returns
    -------
    float or numpy.ndarray
        :math:`MC` (between 0 and :math:`k_{max}`), or :math:`MC_1, \dots, MC_{k_{max}}`.
    """

    where = "memory_capacity"
    k_max = as_int(where, "k_max", k_max, 1)
    if series is None:
        series = np.random.default_rng(seed).uniform(-0.8, 0.8, 10 * k_max)
    u = _as_float64(series, "series", where)
    if u.ndim not in (1, 2) or (u.ndim == 2 and u.shape[1] != 1) or not np.isfinite(u).all():
        raise ValueError(f"{where}: series must be finite, (T,) or (T, 1); got shape {u.shape}")
    u = u.reshape(-1)
    if u.shape[0] <= 2 * k_max + 1:
        raise ValueError(f"{where}: series has {u.shape[0]} steps; it needs more than 2 k_max + 1")
    windows = np.lib.stride_tricks.sliding_window_view(u, k_max + 1)[:, ::-1]  # u(t), u(t-1)...
    real = isinstance(test_size, numbers.Real) and not isinstance(test_size, bool)
    if real and isinstance(test_size, float) and 0 <= test_size < 1:
        n_test = round(u.shape[0] * test_size)
    elif isinstance(test_size, int) and not isinstance(test_size, bool) and test_size > 0:
        n_test = test_size
    else:
        raise ValueError(
            f"{where}: test_size must be an int > 0 or a float in [0, 1), got {test_size!r}"
        )
    if not 1 <= n_test < windows.shape[0] - k_max:
        raise ValueError(f"{where}: test_size={test_size!r} leaves no training or no test steps")
    train, test = windows[:-n_test], windows[-n_test:]
    model = copy.deepcopy(net)
    model.fit_ridge(train[:, :1], train[:, 1:], alpha=alpha, washout=k_max, readout="memory")
    pred = model.run(test[:, :1]).output.detach().cpu().numpy().astype(np.float64)
    mc = np.array(
        [np.corrcoef(p, y)[0, 1] ** 2 for p, y in zip(pred.T, test[:, 1:].T, strict=True)]
    )
    return mc if as_list else float(mc.sum())
