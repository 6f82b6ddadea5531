"""Chaotic time series: the Mackey-Glass delay equation and the Lorenz system."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.integrate import solve_ivp

from .._checks import keywords
from ._utils import DEFAULT_SEED, as_rng, check_int, check_positive, check_real

__all__ = ["lorenz", "mackey_glass"]

_MG_METHODS = ("reservoirpy", "rk4")


#: ``scipy.integrate.solve_ivp``'s methods, by name
_IVP_METHODS = ("RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA")


def _mg_history(history, m: int, x0: float, seed, where: str) -> np.ndarray:
    """The ``m`` samples before ``t = 0``: the last ``m`` of ``history``, or random ones."""
    if history is not None and seed is not None:
        raise ValueError(
            f"{where}: seed draws a random history; a history is given, so it would have no "
            "effect (give one or the other)"
        )
    if history is None:
        rng = as_rng(seed, where)
        # x0 plus uniform noise in [-0.1, 0.1), one draw per history sample (reservoirpy's recipe)
        return x0 * np.ones(m) + 0.2 * (rng.random(m) - 0.5)
    hist = np.asarray(history)
    if hist.dtype.kind not in "biuf":
        raise TypeError(f"{where}: history must be real numbers, got an array of {hist.dtype}")
    if hist.ndim != 1 and not (hist.ndim == 2 and hist.shape[1] == 1):
        raise ValueError(
            f"{where}: history must be a 1-D series (T,) or (T, 1), got shape {hist.shape}"
        )
    hist = hist.astype(np.float64).reshape(-1)
    if hist.shape[0] < m:
        raise ValueError(
            f"{where}: history must hold at least floor(tau / h) = {m} samples, "
            f"got {hist.shape[0]}; pass a longer history or history=None for a random one"
        )
    if not np.all(np.isfinite(hist)):
        raise ValueError(f"{where}: history contains NaN or infinite values")
    return hist[hist.shape[0] - m :].copy()


def _mg_reservoirpy(X: np.ndarray, m: int, x0: float, a, b, n, h, tau) -> None:
    """Fill ``X[m:]`` with reservoirpy 0.4.2's Mackey-Glass map (see :func:`mackey_glass`)."""
    bh = -b * h
    xt = x0
    for i in range(m, X.shape[0]):
        X[i] = xt
        xd = X[i - m] if tau > 0 else 0.0
        # stage values; the order of operations is kept so that the series agrees to the last bit
        k1 = bh * xt + a * xd / (1 + xd**n)
        k2 = 2 * k1 + bh * k1
        k3 = 2 * k1 + bh * k2
        k4 = k1 + bh * k3
        xt = xt + (k1 + k2 + k3 + k4) / 6


def _mg_rk4(X: np.ndarray, m: int, a: float, b: float, n: float, h: float) -> None:
    """Fill ``X[m + 1:]`` by classical RK4 on the delay equation (see :func:`mackey_glass`).

    ``X[:m + 1]`` holds the history and ``x(0)``. The delayed value at a half step is the cubic
    Hermite interpolant of the two neighbouring samples and their slopes.
    """
    hist = X[: m + 1]
    # slopes of the history function: finite differences over the samples up to x(0)
    dhist = np.gradient(hist) / h if m >= 1 else np.zeros(1)
    D = np.empty_like(X)  # slope at each sample, right-sided at t = 0
    D[:m] = dhist[:m]
    left_slope_at_0 = dhist[m]

    def rhs(x: float, xd: float) -> float:
        return a * xd / (1.0 + xd**n) - b * x

    D[m] = rhs(X[m], X[0])
    x = float(X[m])
    for i in range(m, X.shape[0] - 1):
        j = i - m  # index of x(t_i - tau)
        xd0, xd1 = float(X[j]), float(X[j + 1])
        d0 = float(D[j])
        d1 = left_slope_at_0 if j + 1 == m else float(D[j + 1])
        xdm = 0.5 * (xd0 + xd1) + 0.125 * h * (d0 - d1)  # cubic Hermite at the midpoint
        k1 = rhs(x, xd0)
        k2 = rhs(x + 0.5 * h * k1, xdm)
        k3 = rhs(x + 0.5 * h * k2, xdm)
        k4 = rhs(x + h * k3, xd1)
        x = x + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        X[i + 1] = x
        D[i + 1] = rhs(x, xd1)


def _mg_params(tau, a, b, n, x0, h, method, where: str):
    """``tau, a, b, n, x0, h`` checked, and ``m``, the delay in steps (see :func:`mackey_glass`)."""
    tau = check_real(tau, "tau", where)
    if tau < 0:
        raise ValueError(f"{where}: tau must be >= 0, got {tau}")
    a = check_real(a, "a", where)
    b = check_real(b, "b", where)
    n = check_real(n, "n", where)
    x0 = check_real(x0, "x0", where)
    h = check_positive(h, "h", where)
    if method not in _MG_METHODS:
        raise ValueError(f"{where}: unknown method {method!r}; valid: {_MG_METHODS}")
    # integer exponents stay ints so that x**n is computed as in reservoirpy
    n = int(n) if float(n).is_integer() else n

    m = int(np.floor(tau / h))
    if method == "rk4":
        ratio = tau / h
        if m < 1 or not math.isclose(ratio, round(ratio), rel_tol=0.0, abs_tol=1e-9):
            raise ValueError(
                f"{where}: method='rk4' needs tau / h to be an integer >= 1, got tau={tau}, h={h}; "
                "choose h so that it divides tau"
            )
        m = round(ratio)
    return tau, a, b, n, x0, h, m


def _mg_series(n_timesteps: int, m: int, params, history, seed, method: str, where: str):
    """The ``(n_timesteps, 1)`` series of :func:`mackey_glass` from checked
    ``params = (tau, a, b, n, x0, h)`` and the delay ``m`` in steps."""
    tau, a, b, n, x0, h = params
    X = np.empty(m + n_timesteps)
    X[:m] = _mg_history(
        history, m, x0, DEFAULT_SEED if seed is None and history is None else seed, where
    )
    if method == "reservoirpy":
        _mg_reservoirpy(X, m, x0, a, b, n, h, tau)
    else:
        X[m] = x0
        _mg_rk4(X, m, a, b, n, h)
    return X[m:].reshape(-1, 1)


@keywords("mackey_glass")
def mackey_glass(
    n_timesteps: int,
    tau: float = 17,
    a: float = 0.2,
    b: float = 0.1,
    n: float = 10,
    x0: float = 1.2,
    h: float = 1.0,
    seed: int | np.random.Generator | None = None,
    history: np.ndarray | Sequence[float] | None = None,
    method: str = "reservoirpy",
) -> np.ndarray:
    r"""Mackey-Glass time series, sampled every ``h`` time units.

    The delay differential equation of Mackey & Glass (1977, doi:10.1126/science.267326),

    .. math::

        \frac{dx}{dt} = \frac{a\, x(t-\tau)}{1 + x(t-\tau)^n} - b\, x(t),

    is chaotic for the defaults :math:`\tau = 17, a = 0.2, b = 0.1, n = 10`, where it stays
    within about :math:`[0.2, 1.4]`. Time is in the arbitrary unit of ``tau`` and ``h``. Both
    methods take the delayed value from ``x[k - m]``, :math:`m = \lfloor \tau / h \rfloor`.

    ``method="reservoirpy"`` (default) reproduces ``reservoirpy.datasets.mackey_glass`` of
    reservoirpy 0.4.2 to the last bit (same arguments and seed), the benchmarks' series: four
    RK4-like stages that hold :math:`x(t - \tau)` fixed over the step, i.e. the map

    .. math::

        x_{k+1} = x_k + g(bh)\left(\frac{a\, x_{k-m}}{1 + x_{k-m}^n} - b h\, x_k\right),
        \qquad g(s) = 1 - \frac{5 s}{6} + \frac{s^2}{2} - \frac{s^3}{6}.

    It does not converge to the equation (the delay term lacks the factor :math:`h`; for
    :math:`h = 1, b = 0.1`, :math:`g = 0.9215`, not :math:`(1 - e^{-bh}) / (bh) = 0.9516`):
    use it with the default ``h = 1``. ``method="rk4"`` is classical fourth-order Runge-Kutta,
    the delayed value at the half step being the cubic Hermite interpolant of the two
    neighbouring samples and their slopes (the history's by ``numpy.gradient``); the error
    falls as :math:`h^4` for a smooth history. It needs :math:`\tau / h` integer :math:`\geq 1`.

    Parameters
    ----------
    n_timesteps : int
        Number of samples (``>= 1``); sample ``k`` is :math:`x(k h)`, sample 0 is ``x0``.
    tau, a, b, n : float, default 17, 0.2, 0.1, 10
        Delay :math:`\tau` (time units, ``>= 0``), production and decay rates (1 / time unit),
        Hill exponent (dimensionless).
    x0, h : float, default 1.2, 1.0
        Value at :math:`t = 0`; sampling and integration step (time units).
    seed : int, numpy.random.Generator or None, default None
        Seeds the random history; ``None`` means the fixed seed 5555 (reservoirpy's default).
    history : array-like of shape (T,) or (T, 1), optional
        Samples before :math:`t = 0`, oldest first, spaced by ``h``; the last ``m`` are used
        (``T >= m``). ``None``: :math:`x_0 + 0.2\,(U - 0.5)`, :math:`U \sim \mathcal{U}[0, 1)`
        drawn ``m`` times from ``seed``.
    method : {"reservoirpy", "rk4"}, default "reservoirpy"
        Discretisation, see above.

    Returns
    -------
    numpy.ndarray of shape (n_timesteps, 1), float64

    Raises
    ------
    ValueError
        For a size or step out of range, a history shorter than ``m``, an unknown ``method``,
        or ``method="rk4"`` with a non-integer ``tau / h``.

    Examples
    --------
    >>> mackey_glass(2000).shape  # reservoirpy's default series
    (2000, 1)
    """
    where = "mackey_glass"
    n_timesteps = check_int(n_timesteps, "n_timesteps", where, minimum=1)
    *params, m = _mg_params(tau, a, b, n, x0, h, method, where)
    return _mg_series(n_timesteps, m, params, history, seed, method, where)


@keywords("lorenz")
def lorenz(
    n_timesteps: int,
    rho: float = 28.0,
    sigma: float = 10.0,
    beta: float = 8.0 / 3.0,
    x0: Sequence[float] | np.ndarray = (1.0, 1.0, 1.0),
    h: float = 0.03,
    method: str = "DOP853",
    rtol: float = 1e-10,
    atol: float = 1e-12,
) -> np.ndarray:
    r"""Lorenz (1963) system, sampled every ``h`` time units.

    .. math::

        \dot x = \sigma (y - x), \qquad
        \dot y = x (\rho - z) - y, \qquad
        \dot z = x y - \beta z

    (Lorenz 1963, doi:10.1175/1520-0469(1963)020<0130:DNF>2.0.CO;2). Integrated with
    ``scipy.integrate.solve_ivp`` (default: the 8th-order Dormand-Prince method ``"DOP853"`` at
    ``rtol=1e-10``, ``atol=1e-12``), so that the samples are accurate to about ``1e-9`` over the
    first few Lyapunov times; beyond that every finite-precision trajectory of a chaotic system
    departs from the exact one and only the attractor is meaningful.

    Sample ``k`` is the state at :math:`t = k h` exactly. (reservoirpy's ``lorenz`` samples at
    ``numpy.linspace(0, n_timesteps * h, n_timesteps)``, a spacing of
    :math:`h\, n / (n - 1)`, and uses ``solve_ivp``'s default ``rtol=1e-3``.)

    Parameters
    ----------
    n_timesteps : int
        Number of samples (``>= 1``); sample 0 is ``x0``.
    rho, sigma, beta : float, default 28, 10, 8/3
        Parameters of the system (the chaotic regime by default); time is dimensionless.
    x0 : array-like of shape (3,), default (1, 1, 1)
        Initial state :math:`(x, y, z)`.
    h : float, default 0.03
        Sampling interval (time units of the equations).
    method : str, default "DOP853"
        ``solve_ivp`` method.
    rtol, atol : float, default 1e-10, 1e-12
        ``solve_ivp`` tolerances.

    Returns
    -------
    numpy.ndarray of shape (n_timesteps, 3), float64
        Columns :math:`x, y, z`.
    """
    where = "lorenz"
    n_timesteps = check_int(n_timesteps, "n_timesteps", where, minimum=1)
    rho = check_real(rho, "rho", where)
    sigma = check_real(sigma, "sigma", where)
    beta = check_real(beta, "beta", where)
    h = check_positive(h, "h", where)
    rtol = check_positive(rtol, "rtol", where)
    atol = check_positive(atol, "atol", where)
    y0 = np.asarray(x0, dtype=np.float64).reshape(-1)
    if y0.shape != (3,) or not np.all(np.isfinite(y0)):
        raise ValueError(f"{where}: x0 must be 3 finite numbers (x, y, z), got {x0!r}")

    def rhs(_t: float, s: np.ndarray) -> np.ndarray:
        x, y, z = s
        return np.array([sigma * (y - x), x * (rho - z) - y, x * y - beta * z])

    if not (isinstance(method, str) and method in _IVP_METHODS) and not isinstance(method, type):
        raise ValueError(
            f"{where}: unknown method {method!r}; valid: {_IVP_METHODS} (scipy's solve_ivp "
            "methods) or an OdeSolver subclass"
        )
    t_eval = h * np.arange(n_timesteps)
    if n_timesteps == 1:
        return y0.reshape(1, 3).copy()
    sol = solve_ivp(rhs, (0.0, t_eval[-1]), y0, method=method, t_eval=t_eval, rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"{where}: scipy.integrate.solve_ivp failed: {sol.message}")
    return np.ascontiguousarray(sol.y.T)
