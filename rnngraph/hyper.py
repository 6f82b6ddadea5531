r"""Hyperparameter searches over echo-state networks, a whole generation of trials per pass.

:func:`search` draws ``n_trials`` sets of hyperparameters from a space (random search, as
``reservoirpy.hyper``'s ``"random"`` method), fits each trial's ridge readout on a training
series and scores it on a test series. Trials run ``generation`` at a time as one
:class:`rnngraph.ReservoirEnsemble` (one batched native pass, the readouts fitted together);
the trials and their scores do not depend on the generation size.

.. code-block:: python

    space = {
        "sr": rg.hyper.loguniform(0.1, 2.0),
        "lr": rg.hyper.loguniform(0.01, 1.0),
        "input_scaling": rg.hyper.uniform(0.1, 2.0),
        "alpha": rg.hyper.loguniform(1e-9, 1e-3),
        "seed": rg.hyper.choice([1, 2, 3]),
    }
    result = rg.hyper.search(space, (x_train, y_train), (x_test, y_test), n_trials=100)
    result.best.params, result.best.loss
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from . import metrics
from ._checks import as_int
from .network import ReservoirEnsemble

__all__ = ["SearchResult", "Trial", "choice", "loguniform", "search", "uniform"]

#: what a trial may vary: the ensemble's per-member hyperparameters and the ridge penalty
HYPERPARAMETERS = ("sr", "lr", "input_scaling", "bias_scaling", "seed", "alpha")
#: what a search may fix for all trials (the ensemble's other arguments)
OPTIONS = (
    "connectivity", "input_connectivity", "bias_connectivity", "distribution", "dtype", "device",
)  # fmt: skip


def _bounds(where: str, low: Any, high: Any, positive: bool) -> tuple[float, float]:
    for v in (low, high):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(f"{where}: bounds must be finite numbers, got {v!r}")
    if not low < high or (positive and low <= 0):
        need = "0 < low < high" if positive else "low < high"
        raise ValueError(f"{where}: need {need}, got low={low!r}, high={high!r}")
    return float(low), float(high)


@dataclass(frozen=True)
class uniform:  # noqa: N801 - named as a distribution, like reservoirpy.hyper's
    """Uniform on ``[low, high)``."""

    low: float
    high: float

    def __post_init__(self) -> None:
        _bounds("uniform", self.low, self.high, positive=False)

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))


@dataclass(frozen=True)
class loguniform:  # noqa: N801
    """Log-uniform on ``[low, high)``: ``exp(U(log low, log high))``, ``0 < low``."""

    low: float
    high: float

    def __post_init__(self) -> None:
        _bounds("loguniform", self.low, self.high, positive=True)

    def sample(self, rng: np.random.Generator) -> float:
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))


@dataclass(frozen=True)
class choice:  # noqa: N801
    """One of ``values``, each with the same probability."""

    values: tuple

    def __init__(self, values: Sequence) -> None:
        values = tuple(values)
        if not values:
            raise ValueError("choice: needs at least one value")
        object.__setattr__(self, "values", values)

    def sample(self, rng: np.random.Generator) -> Any:
        return self.values[int(rng.integers(len(self.values)))]


@dataclass(frozen=True)
class Trial:
    """One trial: its number (in the order drawn), hyperparameters, test NRMSE (normalised
    by the target's standard deviation) and R^2."""

    number: int
    params: dict
    loss: float
    r2: float


@dataclass
class SearchResult:
    """The trials of a search, in the order drawn, and its wall time in seconds."""

    trials: list[Trial] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def best(self) -> Trial:
        """The trial with the lowest loss (a NaN loss counts as the worst; the first drawn
        wins a tie)."""
        return min(self.trials, key=lambda t: (math.isnan(t.loss), t.loss, t.number))

    @property
    def losses(self) -> np.ndarray:
        return np.array([t.loss for t in self.trials])

    def values(self, name: str) -> np.ndarray:
        """Hyperparameter ``name`` of every trial."""
        if not self.trials or name not in self.trials[0].params:
            raise KeyError(f"SearchResult.values: no hyperparameter {name!r}")
        return np.array([t.params[name] for t in self.trials])


def _space(where: str, space: dict, fixed: dict) -> tuple[dict, dict]:
    """The space and the fixed values, checked: the searched and fixed names are known,
    none is both."""
    if not isinstance(space, dict) or not space:
        raise ValueError(f"{where}: space must be a non-empty dict of name -> distribution")
    for name, dist in space.items():
        if name not in HYPERPARAMETERS:
            raise ValueError(f"{where}: cannot search {name!r}; hyperparameters: {HYPERPARAMETERS}")
        if not hasattr(dist, "sample"):
            raise ValueError(
                f"{where}: space[{name!r}] is {dist!r}, not a distribution "
                "(rg.hyper.uniform, loguniform or choice)"
            )
    for name in fixed:
        if name not in HYPERPARAMETERS + OPTIONS:
            raise ValueError(
                f"{where}: unknown argument {name!r}; fixed values may be given for "
                f"{HYPERPARAMETERS + OPTIONS}"
            )
        if name in space:
            raise ValueError(f"{where}: {name!r} is both searched and fixed")
    return space, fixed


def _score(y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    if not np.isfinite(pred).all():
        return math.nan, math.nan
    return float(metrics.nrmse(y, pred)), float(metrics.rsquare(y, pred))


def _bar(total: int) -> Any:
    from tqdm.auto import tqdm  # noqa: PLC0415 - slow to import, only for a bar

    return tqdm(total=total, unit="trial")


def _generation(trials: list, train: tuple, test: tuple, units: int, washout: int, options):
    """``(loss, r2)`` of every trial of one generation, run as one ensemble."""
    (x_tr, y_tr), (x_te, y_te) = train, test
    per = {k: [t[k] for t in trials] for k in trials[0] if k != "alpha"}
    n_in = np.asarray(x_tr).reshape(len(x_tr), -1).shape[1]
    ens = ReservoirEnsemble(units, n_in, **per, **options)
    alpha = [t.get("alpha", 1e-8) for t in trials]
    ens.fit_ridge(x_tr, y_tr, alpha=alpha, washout=washout)
    pred = ens.run(x_te).to(torch.float64).cpu().numpy()
    y = np.asarray(y_te, dtype=np.float64)
    return [_score(y, p) for p in pred]


def search(
    space: dict,
    train: tuple,
    test: tuple,
    n_trials: int,
    *,
    units: int = 500,
    generation: int = 25,
    washout: int = 0,
    seed: int = 0,
    progress: bool = True,
    **fixed: Any,
) -> SearchResult:
    r"""Random search over echo-state networks, ``generation`` trials per batched pass.

    Every trial is member of a :class:`rnngraph.ReservoirEnsemble`: an ``in -> res ->
    readout`` network of ``units`` leaky-tanh units drawn from its ``seed``, whose ridge
    readout is fitted on ``train`` (from the zero state, the first ``washout`` steps left
    out) and run on ``test`` continuing the state; its loss is the NRMSE of that run
    (normalised by the standard deviation of the test targets; ``rg.metrics.nrmse``) and it
    also reports :math:`R^2`. A trial whose predictions are not finite has loss NaN.

    Parameters
    ----------
    space : dict
        Hyperparameter name -> distribution (:class:`uniform`, :class:`loguniform`,
        :class:`choice`); names from ``sr``, ``lr``, ``input_scaling``, ``bias_scaling``,
        ``seed`` and ``alpha`` (the ridge penalty; 1e-8 when neither searched nor fixed).
    train, test : tuple
        ``(inputs, targets)``: ``(T, n_in)`` and ``(T, K)`` arrays.
    n_trials : int
        Trials, drawn in order from ``numpy.random.default_rng(seed)`` (each trial's values
        in the order of ``space``).
    units : int
        Reservoir units.
    generation : int
        Trials per batched pass; the trials and their scores do not depend on it (up to
        rounding), only the time does.
    washout : int
        Training steps left out of the fit.
    seed : int
        Seed of the search's random draws (not of the reservoirs: that is the ``seed``
        hyperparameter, 0 unless searched or fixed).
    progress : bool
        Show a progress bar (tqdm) over the trials.
    **fixed
        Values for all trials: hyperparameters not searched (``sr=1.25``, ...) and the
        ensemble's options (``connectivity``, ``input_connectivity``, ``bias_connectivity``,
        ``distribution``, ``dtype``, ``device``: a generation runs on that device).

    Returns
    -------
    SearchResult
        ``trials`` in the order drawn, ``best``, ``losses``, ``values(name)``.
    """
    where = "rg.hyper.search"
    space, fixed = _space(where, space, fixed)
    n_trials = as_int(where, "n_trials", n_trials, minimum=1, type_error=ValueError)
    generation = as_int(where, "generation", generation, minimum=1, type_error=ValueError)
    seed = as_int(where, "seed", seed, minimum=0, type_error=ValueError)
    rng = np.random.default_rng(seed)
    drawn = [{k: d.sample(rng) for k, d in space.items()} for _ in range(n_trials)]
    constants = {k: v for k, v in fixed.items() if k in HYPERPARAMETERS}
    options = {k: v for k, v in fixed.items() if k in OPTIONS}
    result, start = SearchResult(), time.perf_counter()
    bar = _bar(n_trials) if progress else None
    try:
        for g0 in range(0, n_trials, generation):
            trials = [constants | p for p in drawn[g0 : g0 + generation]]
            losses = _generation(trials, train, test, units, washout, options)
            for j, (t, (loss, r2)) in enumerate(zip(trials, losses, strict=True)):
                result.trials.append(Trial(g0 + j, t, loss, r2))
            if bar is not None:
                bar.update(len(trials))
                bar.set_postfix(best=f"{result.best.loss:.3g}")
    finally:
        if bar is not None:
            bar.close()
    result.seconds = time.perf_counter() - start
    return result
