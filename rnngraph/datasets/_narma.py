"""NARMA: the nonlinear autoregressive moving-average benchmark of Atiya & Parlos (2000)."""

from __future__ import annotations

import numpy as np

from .._checks import keywords
from ._utils import as_rng, check_int, check_real

__all__ = ["narma"]

_CONVENTIONS = ("atiya", "reservoirpy")


def _narma_input(u, seed, total: int, where: str) -> np.ndarray:
    """The input ``(total, 1)``: ``u`` checked, or drawn from U[0, 0.5] with ``seed``."""
    if u is None:
        return as_rng(seed, where).uniform(0, 0.5, size=(total, 1))
    u = np.asarray(u, dtype=np.float64)
    if u.ndim == 1:
        u = u.reshape(-1, 1)
    if u.shape != (total, 1):
        raise ValueError(
            f"{where}: u must have shape (n_timesteps + order, 1) = ({total}, 1), got {u.shape}"
        )
    if not np.all(np.isfinite(u)):
        raise ValueError(f"{where}: u contains NaN or infinite values")
    return u


def _narma_series(us, order: int, a1, a2, b, c, convention: str, where: str) -> np.ndarray:
    """The output of the recurrence (see :func:`narma`) for input ``us``, as long as ``us``.

    Raises ``ValueError`` if the series diverges.
    """
    total = us.shape[0]
    y = np.zeros(total)
    # ``lag`` = 0: sums over y(t-N+1..t) and u(t-N+1); lag = 1: over y(t-N..t-1) and u(t-N)
    lag = 0 if convention == "atiya" else 1
    start = order - 1 + lag
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(start, total - 1):
            window = y[t - order + 1 - lag : t + 1 - lag]
            y[t + 1] = (
                a1 * y[t] + a2 * y[t] * np.sum(window) + b * us[t - order + 1 - lag] * us[t] + c
            )
    if not np.all(np.isfinite(y)):
        raise ValueError(
            f"{where}: the series diverged (order={order}, a1={a1}, a2={a2}, b={b}, c={c}); "
            "use smaller coefficients for high orders (e.g. a1=0.2, a2=0.04, c=0.001 for order 30)"
        )
    return y


@keywords("narma")
def narma(
    n_timesteps: int,
    order: int = 10,
    a1: float = 0.3,
    a2: float = 0.05,
    b: float = 1.5,
    c: float = 0.1,
    seed: int | np.random.Generator | None = None,
    u: np.ndarray | None = None,
    convention: str = "atiya",
) -> tuple[np.ndarray, np.ndarray]:
    r"""NARMA time series of a given order driven by a uniform input.

    With ``convention="atiya"`` (default) the recurrence is that of Atiya & Parlos (2000,
    doi:10.1109/72.846741), for order :math:`N` (NARMA-10 for the defaults):

    .. math::

        y(t+1) = a_1 y(t) + a_2 y(t) \sum_{i=0}^{N-1} y(t-i) + b\, u(t-N+1)\, u(t) + c,

    with :math:`u(t) \sim \mathcal{U}[0, 0.5]` i.i.d. and :math:`y(t) = 0` for
    :math:`t < N`. The series are indexed by steps (dimensionless).

    ``convention="reservoirpy"`` reproduces ``reservoirpy.datasets.narma`` of reservoirpy
    0.4.2 (same parameters and seed), whose code shifts both sums by one step,
    :math:`y(t+1) = a_1 y(t) + a_2 y(t) \sum_{i=1}^{N} y(t-i) + b\, u(t-N)\, u(t) + c`,
    from :math:`t = N` (its first sample is 0). reservoirpy's defaults are NARMA-30's
    (``order=30, a1=0.2, a2=0.04, c=0.001``): pass them to reproduce its default series.

    Parameters
    ----------
    n_timesteps : int
        Number of output samples (``>= 1``).
    order : int, default 10
        Order :math:`N` of the system (``>= 1``).
    a1, a2, b, c : float, default 0.3, 0.05, 1.5, 0.1
        Coefficients (NARMA-10).
    seed : int, numpy.random.Generator or None, default None
        Seeds the input draw (unused when ``u`` is given); ``None`` means the fixed seed 5555
        (reservoirpy's default dataset seed).
    u : array-like of shape (n_timesteps + order,) or (n_timesteps + order, 1), optional
        The input, ``order`` warm-up samples included; :math:`\mathcal{U}[0, 0.5]` if ``None``.
    convention : {"atiya", "reservoirpy"}, default "atiya"
        Which indexing of the recurrence to use, see above.

    Returns
    -------
    u : numpy.ndarray of shape (n_timesteps + order, 1)
        The input, warm-up included (reservoirpy's layout).
    y : numpy.ndarray of shape (n_timesteps, 1)
        The output; ``y[k]`` is aligned with ``u[order + k]`` and depends on the inputs up to
        ``u[order + k - 1]``, so the usual task is to predict ``y`` from ``u[order:]``.

    Raises
    ------
    ValueError
        For a bad size or ``convention``, an input of the wrong length, or a series that
        diverges (NARMA of high order with NARMA-10 coefficients can blow up).

    Examples
    --------
    >>> u, y = narma(1000, seed=0)
    >>> X, target = u[10:], y  # both (1000, 1)
    """
    where = "narma"
    n_timesteps = check_int(n_timesteps, "n_timesteps", where, minimum=1)
    order = check_int(order, "order", where, minimum=1)
    a1 = check_real(a1, "a1", where)
    a2 = check_real(a2, "a2", where)
    b = check_real(b, "b", where)
    c = check_real(c, "c", where)
    if convention not in _CONVENTIONS:
        raise ValueError(f"{where}: unknown convention {convention!r}; valid: {_CONVENTIONS}")
    u = _narma_input(u, seed, n_timesteps + order, where)
    y = _narma_series(u[:, 0], order, a1, a2, b, c, convention, where)
    return u, y[order:].reshape(-1, 1)
