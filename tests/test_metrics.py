"""Metrics against closed forms, identities between them, reductions and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rnngraph as rg
from rnngraph.metrics import mae, mse, nrmse, rmse, rsquare

# a sine sampled over whole periods with N a multiple of 4: mean 0, mean square 1/2 exactly,
# and the samples reach +1 and -1, so std = 1/sqrt(2), range = 2, var = 1/2
N = 400
SINE = np.sin(2 * np.pi * np.arange(N) / 100)[:, None]


@pytest.mark.parametrize("c", [0.1, -0.3])
def test_constant_offset_closed_forms(c):
    y, yhat = SINE, SINE + c
    assert mse(y, yhat) == pytest.approx(c**2, rel=1e-12)
    assert rmse(y, yhat) == pytest.approx(abs(c), rel=1e-12)
    assert mae(y, yhat) == pytest.approx(abs(c), rel=1e-12)
    assert nrmse(y, yhat) == pytest.approx(abs(c) * np.sqrt(2), rel=1e-12)  # std: 1/sqrt(2)
    assert nrmse(y, yhat, norm="range") == pytest.approx(abs(c) / 2, rel=1e-12)
    assert nrmse(y, yhat, norm="minmax") == nrmse(y, yhat, norm="range")
    assert nrmse(y, yhat, norm="var") == pytest.approx(abs(c) * 2, rel=1e-12)  # var: 1/2
    assert nrmse(y, yhat, norm_value=4.0) == pytest.approx(abs(c) / 4, rel=1e-12)
    # mean: shift the target so that its mean is 2
    assert nrmse(y + 2, yhat + 2, norm="mean") == pytest.approx(abs(c) / 2, rel=1e-12)
    # R^2 = 1 - c^2 / var(y)
    assert rsquare(y, yhat) == pytest.approx(1 - c**2 / 0.5, rel=1e-12)


def test_interquartile_norm():
    y = np.arange(101.0)  # Q1 = 25, Q3 = 75 with linear quantiles
    assert nrmse(y, y + 1.0, norm="q1q3") == pytest.approx(1 / 50, rel=1e-12)
    assert nrmse(y, y + 1.0, norm="iqr") == nrmse(y, y + 1.0, norm="q1q3")


def test_rsquare_of_mean_and_perfect_predictors(rng):
    y = rng.normal(size=(300, 2))
    assert rsquare(y, y) == 1.0
    assert nrmse(y, y) == 0.0
    assert rsquare(y, np.full_like(y, y.mean())) == pytest.approx(0.0, abs=1e-12)
    assert nrmse(y, np.full_like(y, y.mean())) == pytest.approx(1.0, rel=1e-12)
    # worse than the mean is negative
    assert rsquare(y, -y) < 0


def test_nrmse_std_squared_is_one_minus_rsquare(rng):
    y = rng.normal(size=500)
    yhat = y + 0.3 * rng.normal(size=500)
    assert nrmse(y, yhat) ** 2 == pytest.approx(1 - rsquare(y, yhat), rel=1e-12)


def test_normaliser_is_computed_from_the_target_only(rng):
    y = rng.normal(size=200)
    yhat = 5.0 * rng.normal(size=200)
    assert nrmse(y, yhat) == pytest.approx(rmse(y, yhat) / y.std(), rel=1e-12)
    assert nrmse(y, yhat) != pytest.approx(nrmse(yhat, y), rel=1e-3)


def test_axis_reductions_per_channel(rng):
    y = rng.normal(size=(100, 3))
    yhat = y + rng.normal(size=(100, 3)) * np.array([0.1, 0.2, 0.3])
    for metric in (mse, rmse, mae, nrmse, rsquare):
        per_channel = metric(y, yhat, axis=0)
        assert isinstance(per_channel, np.ndarray) and per_channel.shape == (3,)
        for c in range(3):
            assert per_channel[c] == pytest.approx(metric(y[:, c], yhat[:, c]), rel=1e-12)
    # (B, T, C) with axis=(0, 1): one value per channel
    y3, yhat3 = y.reshape(4, 25, 3), yhat.reshape(4, 25, 3)
    np.testing.assert_allclose(nrmse(y3, yhat3, axis=(0, 1)), nrmse(y, yhat, axis=0), rtol=1e-12)


def test_torch_inputs_give_python_floats(rng):
    y = rng.normal(size=(50, 2))
    yhat = y + 0.1
    for metric in (mse, rmse, mae, nrmse, rsquare):
        value = metric(torch.from_numpy(y), torch.from_numpy(yhat).requires_grad_())
        assert type(value) is float
        assert value == pytest.approx(metric(y, yhat), rel=1e-12)
    # float32 tensors are evaluated in float64; mixed numpy / torch inputs are accepted
    y32 = torch.tensor([[0.0], [1.0], [2.0]], dtype=torch.float32)
    assert mse(y32, np.array([[0.0], [1.0], [3.0]])) == pytest.approx(1 / 3, rel=1e-12)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match=r"rmse: y \(target\) and yhat \(prediction\) must have"):
        rmse(np.zeros((10, 1)), np.zeros(10))
    with pytest.raises(ValueError, match=r"got y \(10, 1\) and yhat \(10,\)"):
        nrmse(np.zeros((10, 1)), torch.zeros(10))


def test_other_errors():
    with pytest.raises(ValueError, match=r"nrmse: unknown norm 'l2'; valid: \('std', 'range'"):
        nrmse(SINE, SINE, norm="l2")
    with pytest.raises(ValueError, match=r"nrmse: the normaliser \(norm='std'\) of the target"):
        nrmse(np.ones(5), np.zeros(5))
    with pytest.raises(ValueError, match=r"rsquare: the target y is constant"):
        rsquare(np.ones(5), np.zeros(5))
    with pytest.raises(ValueError, match=r"mse: y and yhat are empty"):
        mse(np.zeros(0), np.zeros(0))
    with pytest.raises(ValueError, match=r"mae: axis 2 is out of range for data of 2 dims"):
        mae(SINE, SINE, axis=2)
    with pytest.raises(TypeError, match=r"^mse: y must be real numbers, got an array of dtype <U3"):
        mse("abc", np.zeros(3))
    with pytest.raises(
        TypeError, match=r"^mae: yhat must be real numbers, got an array of dtype <U"
    ):
        mae(np.ones(2), np.array(["1", "2"]))  # strings are not read as numbers
    with pytest.raises(TypeError, match=r"^rmse: y must be a number, an array of numbers or a"):
        rmse([[1.0], [1.0, 2.0]], np.zeros(2))
    with pytest.raises(TypeError, match=r"^mse: axis must be None, an int or a tuple of ints"):
        mse(SINE, SINE, axis=0.0)
    for bad in (np.nan, -1.0, np.inf):
        with pytest.raises(ValueError, match=r"^nrmse: norm_value must be a finite number > 0"):
            nrmse(SINE, SINE + 1, norm_value=bad)
    with pytest.raises(
        TypeError, match=r"^rsquare: unknown keyword argument\(s\) \['axs'\]; valid ones are"
    ):
        rsquare(SINE, SINE, axs=0)


def test_valid_array_likes():
    y = np.arange(6.0).reshape(3, 2)
    assert mse(y[::-1], y) == pytest.approx(mse(np.ascontiguousarray(y[::-1]), y))
    assert mae(torch.ones(2, 2).to_sparse(), torch.zeros(2, 2)) == 1.0
    np.testing.assert_allclose(mse(y, y + 1, axis=np.int64(0)), [1.0, 1.0])
    assert rmse([True, False], [1, 1]) == pytest.approx(np.sqrt(0.5))


def test_nan_propagates():
    assert np.isnan(rmse(np.array([1.0, 2.0]), np.array([1.0, np.nan])))


# ------------------------------------------------------------------------------------
# memory capacity and the effective spectral radius
# ------------------------------------------------------------------------------------


def _delay_line(n: int) -> rg.Network:
    """A linear shift register: unit j holds the input of j steps back, x_j(t) = u(t - j)."""
    net = rg.Network(dt=1.0, dtype=torch.float64)
    net.add_func_node("in", 1)
    shift = np.eye(n, k=-1)
    net.add_diffeq_node("res", rg.nodes.ES2N(n, np.zeros((n, n)), activation="identity"))
    net.add_edge("in", "res", weights=np.eye(n, 1))
    net.add_edge("res", "res", weights=shift, feedback=True)
    return net


def test_memory_capacity_of_a_delay_line_is_its_length():
    n = 10
    net = _delay_line(n)
    mc = rg.metrics.memory_capacity(net, 15, alpha=1e-12, seed=0, as_list=True)
    # x_j(t) = u(t - j) for j < n: lags 1 .. n-1 are recalled exactly, later ones not at all
    np.testing.assert_allclose(mc[: n - 1], 1.0, rtol=0, atol=1e-9)
    assert mc[n - 1 :].max() < 0.1
    total = rg.metrics.memory_capacity(net, 15, alpha=1e-12, seed=0)
    assert total == pytest.approx(mc.sum(), rel=1e-12)
    assert net.state is None and "memory" not in net  # the network itself is untouched


def test_memory_capacity_refuses_bad_settings():
    net = _delay_line(4)
    with pytest.raises(ValueError, match="series must be finite, \\(T,\\) or \\(T, 1\\)"):
        rg.metrics.memory_capacity(net, 5, series=np.zeros((100, 2)))
    with pytest.raises(ValueError, match="needs more than 2 k_max"):
        rg.metrics.memory_capacity(net, 5, series=np.zeros(11))
    with pytest.raises(ValueError, match="test_size must be"):
        rg.metrics.memory_capacity(net, 5, test_size=1.5)


def test_effective_spectral_radius_is_that_of_the_leaky_linearisation():
    w = rg.recurrent_weights(30, spectral_radius=1.3, seed=3, dtype=torch.float64).numpy()
    for lr in (1.0, 0.3, np.linspace(0.1, 1.0, 30)):
        lin = np.reshape(lr, (-1, 1)) * w + np.diag(1 - np.broadcast_to(lr, (30,)))
        want = np.abs(np.linalg.eigvals(lin)).max()
        assert rg.edges.effective_spectral_radius(w, lr) == pytest.approx(want, rel=1e-12)
    assert rg.edges.effective_spectral_radius(w, 1.0) == pytest.approx(1.3, rel=1e-9)
    with pytest.raises(ValueError, match=r"lr must lie in \(0, 1\]"):
        rg.edges.effective_spectral_radius(w, 0.0)
    with pytest.raises(ValueError, match="must be a scalar or"):
        rg.edges.effective_spectral_radius(w, np.ones(3))
