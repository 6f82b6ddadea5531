"""Shared helpers: seeded generators, numpy references and state comparisons."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch

from rnngraph import _native

matplotlib.use("Agg")  # no display in CI; Recording.plot draws off-screen


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` run where a CUDA GPU is present and skip with a message
    elsewhere."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA GPU on this machine (the test runs on one)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed_torch():
    """Every test starts from the same global torch seed (tests also seed their own draws)."""
    torch.manual_seed(0)


class _NativeOff:
    """``with generic:`` runs its block with the native loops switched off, then restores
    the setting it found."""

    def __enter__(self) -> None:
        self._was = _native.enabled()
        _native.set_enabled(False)

    def __exit__(self, *exc) -> None:
        _native.set_enabled(self._was)


@pytest.fixture
def generic() -> _NativeOff:
    """A reusable context manager for runs without the native loops (the reference)."""
    return _NativeOff()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def esn_reference(W, W_in, b, lr, u, x0=None):
    """reservoirpy's update ``x(t) = (1-lr) x(t-1) + lr tanh(W x(t-1) + W_in u(t) + b)``.

    ``u`` is ``(T, C)``; returns the states ``(T, N)`` of steps 0..T-1, ``x(-1) = x0`` (zeros).
    """
    W = W.toarray() if hasattr(W, "toarray") else np.asarray(W)
    x = np.zeros(W.shape[0]) if x0 is None else np.asarray(x0, dtype=np.float64)
    out = np.empty((len(u), W.shape[0]))
    for t in range(len(u)):
        x = (1.0 - lr) * x + lr * np.tanh(W @ x + W_in @ u[t] + b)
        out[t] = x
    return out


def state_copy(state):
    """A detached copy of a held state (``None`` stays ``None``)."""
    return None if state is None else {k: v.detach().clone() for k, v in state.items()}


def assert_state_equal(a, b):
    """Two held states are the same: same keys, equal values."""
    if a is None or b is None:
        assert a is None and b is None, (a, b)
        return
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
