"""Argument checks and seeding shared by the dataset generators."""

from __future__ import annotations

import numbers

import numpy as np

#: Seed used when a generator is called with ``seed=None``. It is reservoirpy's default dataset
#: seed, so that ``mackey_glass(n)`` and ``narma(n)`` give the same series in both libraries.
DEFAULT_SEED = 5555


def as_rng(seed: int | np.random.Generator | None, where: str) -> np.random.Generator:
    """A numpy ``Generator`` from an int seed, a ``Generator`` (used as is) or ``None``
    (:data:`DEFAULT_SEED`), so that every draw of a dataset generator is reproducible."""
    if seed is None:
        return np.random.default_rng(DEFAULT_SEED)
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"{where}: seed must be an int, a numpy.random.Generator or None, "
            f"got {type(seed).__name__}"
        )
    if seed < 0:
        raise ValueError(f"{where}: seed must be a non-negative int, got {seed}")
    return np.random.default_rng(int(seed))


def check_int(value, name: str, where: str, minimum: int = 0) -> int:
    """``value`` as an int ``>= minimum``, or a ``TypeError``/``ValueError`` naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{where}: {name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{where}: {name} must be an int >= {minimum}, got {value}")
    return int(value)


def check_positive(value, name: str, where: str) -> float:
    """``value`` as a finite float ``> 0``, or an error naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: {name} must be a real number, got {type(value).__name__}")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{where}: {name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_real(value, name: str, where: str) -> float:
    """``value`` as a finite float, or an error naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: {name} must be a real number, got {type(value).__name__}")
    if not np.isfinite(value):
        raise ValueError(f"{where}: {name} must be finite, got {value!r}")
    return float(value)
