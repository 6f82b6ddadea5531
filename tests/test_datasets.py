"""Datasets: reference values, recurrences checked on the output, convergence, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnngraph.datasets import (
    DEFAULT_SEED,
    force_target,
    lorenz,
    mackey_glass,
    narma,
    to_forecasting,
)

# --------------------------------------------------------------------------- Mackey-Glass

# Values of reservoirpy 0.4.2's ``reservoirpy.datasets.mackey_glass(2000)`` (its default seed
# 5555) and ``mackey_glass(2000, seed=42)``, at the indices below, all other arguments default.
MG_INDICES = (0, 1, 17, 100, 500, 1999)
MG_RESERVOIRPY_DEFAULT = (
    1.2,
    1.13753884113329,
    0.47702183520111513,
    1.2965979311384965,
    1.0057232176218298,
    0.9487498037920479,
)
MG_RESERVOIRPY_SEED42 = (
    1.2,
    1.111080634967327,
    0.4931882610324262,
    1.2287035596274192,
    1.1503818804995374,
    0.9692332972997076,
)


def _mg_rhs(x, xd, a=0.2, b=0.1, n=10):
    return a * xd / (1.0 + xd**n) - b * x


@pytest.mark.parametrize(
    ("seed", "expected"), [(None, MG_RESERVOIRPY_DEFAULT), (42, MG_RESERVOIRPY_SEED42)]
)
def test_mackey_glass_matches_reservoirpy_values(seed, expected):
    x = mackey_glass(2000, seed=seed)
    assert x.shape == (2000, 1) and x.dtype == np.float64
    # bitwise equal on the machine the values were taken on; the tolerance leaves room for a
    # last-bit difference in libm's pow, amplified by the chaos over 2000 steps
    np.testing.assert_allclose(x[list(MG_INDICES), 0], expected, rtol=1e-9, atol=0)


def test_mackey_glass_default_map_is_the_documented_one():
    """Each step is x[k+1] = x[k] + g(bh) (a x[k-m] / (1 + x[k-m]^n) - b h x[k])."""
    for h in (1.0, 0.5):
        m = int(17 / h)
        hist = np.linspace(0.6, 1.1, m)
        x = mackey_glass(400, h=h, history=hist)[:, 0]
        full = np.concatenate([hist, x])
        k = np.arange(m, len(full) - 1)
        s = 0.1 * h
        g = 1 - 5 * s / 6 + s**2 / 2 - s**3 / 6
        xd = full[k - m]
        step = g * (0.2 * xd / (1 + xd**10) - 0.1 * h * full[k])
        np.testing.assert_allclose(full[k + 1], full[k] + step, rtol=1e-13, atol=1e-15)


def test_mackey_glass_random_history_recipe():
    """The history is x0 + 0.2 (U - 0.5), U drawn from the seed: x[1] depends on its oldest
    sample only."""
    u0 = np.random.default_rng(DEFAULT_SEED).random(17)[0]
    xd = 1.2 + 0.2 * (u0 - 0.5)
    g = 1 - 5 * 0.1 / 6 + 0.1**2 / 2 - 0.1**3 / 6
    x = mackey_glass(2)
    assert x[0, 0] == 1.2
    assert x[1, 0] == pytest.approx(1.2 + g * _mg_rhs(1.2, xd), rel=1e-14)


def test_mackey_glass_stays_on_the_attractor():
    for method in ("reservoirpy", "rk4"):
        x = mackey_glass(6000, method=method)[300:, 0]
        assert 0.2 < x.min() < 0.5 and 1.2 < x.max() < 1.4, (method, x.min(), x.max())
        assert x.std() > 0.15  # neither a fixed point nor a collapsed series


def test_mackey_glass_rk4_converges_with_fourth_order():
    """Step halving from h = 1 to h = 1/8 against h = 1/64; smooth (constant) history."""
    t_end = 60
    sols = {}
    for k in (0, 1, 2, 3, 6):
        h = 2.0**-k
        x = mackey_glass(t_end * 2**k + 1, h=h, history=np.full(17 * 2**k, 1.2), method="rk4")
        sols[k] = x[:: 2**k, 0]
    errors = np.array([np.max(np.abs(sols[k] - sols[6])) for k in (0, 1, 2, 3)])
    orders = np.log2(errors[:-1] / errors[1:])
    assert errors[0] < 1e-5
    np.testing.assert_allclose(orders, 4.0, atol=0.2)


def test_mackey_glass_rk4_satisfies_the_delay_equation():
    """Central differences of the samples match the right-hand side to O(h^2)."""
    h, m = 0.1, 170
    x = mackey_glass(6000, h=h, method="rk4", seed=3)[:, 0]
    k = np.arange(m + 1, len(x) - 1)
    dxdt = (x[k + 1] - x[k - 1]) / (2 * h)
    rhs = _mg_rhs(x[k], x[k - m])
    assert np.max(np.abs(dxdt - rhs)) < 3e-4


def test_mackey_glass_seeding():
    np.testing.assert_array_equal(mackey_glass(300), mackey_glass(300, seed=DEFAULT_SEED))
    np.testing.assert_array_equal(mackey_glass(300, seed=7), mackey_glass(300, seed=7))
    np.testing.assert_array_equal(
        mackey_glass(300, seed=np.random.default_rng(7)), mackey_glass(300, seed=7)
    )
    assert not np.array_equal(mackey_glass(300, seed=7), mackey_glass(300, seed=8))
    # with a given history only its last floor(tau/h) samples count (a seed is refused there)
    hist = np.linspace(0.5, 1.0, 40)
    np.testing.assert_array_equal(
        mackey_glass(100, history=hist), mackey_glass(100, history=hist[-17:])
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_timesteps": -1}, ValueError, r"mackey_glass: n_timesteps must be an int >= 1, got -1"),
        ({"n_timesteps": 10.0}, TypeError, r"mackey_glass: n_timesteps must be an int"),
        ({"n_timesteps": 10, "h": 0.0}, ValueError, r"mackey_glass: h must be a finite number > 0"),
        ({"n_timesteps": 10, "tau": -1}, ValueError, r"mackey_glass: tau must be >= 0"),
        ({"n_timesteps": 10, "method": "euler"}, ValueError, r"unknown method 'euler'; valid"),
        (
            {"n_timesteps": 10, "h": 0.7, "method": "rk4"},
            ValueError,
            r"method='rk4' needs tau / h to be an integer >= 1, got tau=17.0, h=0.7",
        ),
        (
            {"n_timesteps": 10, "history": np.ones(5)},
            ValueError,
            r"history must hold at least floor\(tau / h\) = 17 samples, got 5",
        ),
        ({"n_timesteps": 10, "seed": 1.5}, TypeError, r"mackey_glass: seed must be an int"),
    ],
)
def test_mackey_glass_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        mackey_glass(**kwargs)


def test_mackey_glass_rejects_unknown_keyword():
    with pytest.raises(TypeError):
        mackey_glass(10, dt=1.0)


# --------------------------------------------------------------------------- NARMA


def test_narma_follows_the_atiya_parlos_recurrence():
    order, n = 10, 500
    u, y = narma(n, seed=0)
    assert u.shape == (n + order, 1) and y.shape == (n, 1)
    assert 0.0 <= u.min() and u.max() <= 0.5
    yf = np.concatenate([np.zeros(order), y[:, 0]])  # y(t) = 0 before t = order
    us = u[:, 0]
    for t in range(order - 1, n + order - 1):
        expected = (
            0.3 * yf[t]
            + 0.05 * yf[t] * yf[t - order + 1 : t + 1].sum()
            + 1.5 * us[t - order + 1] * us[t]
            + 0.1
        )
        assert yf[t + 1] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    # bounded and not trivial
    assert 0.1 < y.mean() < 1.0 and y.std() > 0.01


def test_narma_reservoirpy_convention_recurrence_and_values():
    order = 10
    u, y = narma(200, order=order, seed=3, convention="reservoirpy")
    # values of reservoirpy 0.4.2's
    # narma(200, order=10, a1=0.3, a2=0.05, b=1.5, c=0.1, seed=3) at indices 0, 1, 11, 50, 199
    expected = (0.0, 0.11256563825464776, 0.2111767659883958, 0.38147090932475936)
    np.testing.assert_allclose(y[[0, 1, 11, 50], 0], expected, rtol=1e-13)
    assert y[199, 0] == pytest.approx(0.41663196351465237, rel=1e-12)
    assert u[5, 0] == 0.2165634701182369
    yf = np.concatenate([np.zeros(order), y[:, 0]])
    us = u[:, 0]
    t = np.arange(order, len(yf) - 1)
    window = np.array([yf[s - order : s].sum() for s in t])  # y(t-N) .. y(t-1)
    expected = 0.3 * yf[t] + 0.05 * yf[t] * window + 1.5 * us[t - order] * us[t] + 0.1
    np.testing.assert_allclose(yf[t + 1], expected, rtol=1e-12)


def test_narma_given_input_and_seeding():
    u, y = narma(100, seed=5)
    u2, y2 = narma(100, u=u[:, 0], seed=99)  # the seed is unused when u is given
    np.testing.assert_array_equal(u, u2)
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(narma(50)[1], narma(50, seed=DEFAULT_SEED)[1])
    assert not np.array_equal(narma(50, seed=1)[0], narma(50, seed=2)[0])


def test_narma_errors():
    with pytest.raises(ValueError, match=r"narma: u must have shape \(n_timesteps \+ order, 1\)"):
        narma(100, u=np.zeros(100))
    with pytest.raises(ValueError, match=r"narma: unknown convention 'x'; valid"):
        narma(100, convention="x")
    with pytest.raises(ValueError, match=r"narma: order must be an int >= 1, got 0"):
        narma(100, order=0)
    with pytest.raises(ValueError, match=r"narma: the series diverged \(order=30"):
        narma(1000, order=30, seed=0)


# --------------------------------------------------------------------------- Lorenz


def _lorenz_rk4(y0, h, n, substeps, sigma=10.0, rho=28.0, beta=8.0 / 3.0):
    def f(s):
        x, y, z = s
        return np.array([sigma * (y - x), x * (rho - z) - y, x * y - beta * z])

    dt = h / substeps
    s = np.array(y0, dtype=np.float64)
    out = [s.copy()]
    for _ in range(n - 1):
        for _ in range(substeps):
            k1 = f(s)
            k2 = f(s + 0.5 * dt * k1)
            k3 = f(s + 0.5 * dt * k2)
            k4 = f(s + dt * k3)
            s = s + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        out.append(s.copy())
    return np.array(out)


def test_lorenz_matches_a_fine_rk4_integration():
    h, n = 0.03, 101  # t in [0, 3]
    x = lorenz(n, h=h)
    assert x.shape == (n, 3)
    np.testing.assert_array_equal(x[0], [1.0, 1.0, 1.0])
    ref = _lorenz_rk4((1.0, 1.0, 1.0), h, n, substeps=60)
    np.testing.assert_allclose(x, ref, rtol=0, atol=1e-7)


def test_lorenz_samples_are_spaced_by_h():
    """Sampling is exact: a run with 2h, sampled every other step of a run with h, agrees."""
    a = lorenz(51, h=0.02)
    b = lorenz(26, h=0.04)
    np.testing.assert_allclose(a[::2], b, rtol=0, atol=1e-8)


def test_lorenz_errors():
    with pytest.raises(ValueError, match=r"lorenz: x0 must be 3 finite numbers"):
        lorenz(10, x0=(1.0, 2.0))
    with pytest.raises(ValueError, match=r"lorenz: n_timesteps must be an int >= 1, got 0"):
        lorenz(0)
    assert lorenz(1).shape == (1, 3)


# --------------------------------------------------------------------------- FORCE targets


def test_force_target_four_sines_closed_form():
    # pi f t = pi / 4 at t = 15 for f = 1/60
    expected = (1.3 / 1.5) * (np.sin(np.pi / 4) + 1 / 2 + np.sin(3 * np.pi / 4) / 6 + 0.0)
    assert force_target(15.0) == pytest.approx(expected, rel=1e-14)
    t = np.linspace(0, 240, 2401)
    y = force_target(t)
    assert y.shape == t.shape
    # the lowest frequency is f / 2: period 2 / f = 120
    np.testing.assert_allclose(force_target(t + 120.0), y, atol=1e-12)
    assert np.max(np.abs(force_target(t + 60.0) - y)) > 0.5
    assert force_target(0.0) == 0.0


def test_force_target_other_kinds():
    f = 0.25  # period 4
    t = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 0.5])
    np.testing.assert_allclose(
        force_target(t, "sine", f=f), [0, 1, 0, -1, 0, np.sqrt(0.5)], atol=1e-12
    )
    np.testing.assert_allclose(force_target(t, "triangle", f=f), [0, 1, 0, -1, 0, 0.5], atol=1e-12)
    np.testing.assert_allclose(
        force_target(t, "sawtooth", f=f, amplitude=2.0), [0, 1, -2, -1, 0, 0.5], atol=1e-12
    )


def test_force_target_torch_and_errors():
    t = torch.linspace(0, 120, 121, dtype=torch.float64)
    y = force_target(t)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float64
    np.testing.assert_allclose(y.numpy(), force_target(t.numpy()), atol=1e-14)
    with pytest.raises(ValueError, match=r"force_target: unknown kind 'square'; valid"):
        force_target(t, kind="square")
    with pytest.raises(ValueError, match=r"force_target: f must be a finite number > 0"):
        force_target(t, f=0.0)


# --------------------------------------------------------------------------- to_forecasting


def test_to_forecasting_shift_and_shapes():
    x = np.arange(20.0).reshape(10, 2)
    X, y = to_forecasting(x, forecast=3)
    assert X.shape == y.shape == (7, 2)
    np.testing.assert_array_equal(y, X + 6.0)  # three rows ahead
    np.testing.assert_array_equal(X, x[:7])


def test_to_forecasting_split():
    x = np.arange(100.0)[:, None]
    X_tr, X_te, y_tr, y_te = to_forecasting(x, forecast=1, test_size=20)
    assert (len(X_tr), len(X_te), len(y_tr), len(y_te)) == (79, 20, 79, 20)
    np.testing.assert_array_equal(y_te[:, 0], np.arange(80.0, 100.0))
    np.testing.assert_array_equal(X_te[:, 0], np.arange(79.0, 99.0))
    np.testing.assert_array_equal(y_tr, X_tr + 1)
    # a float is a fraction of the full length, rounded
    X_tr, X_te, _, _ = to_forecasting(x, forecast=2, test_size=0.25)
    assert (len(X_tr), len(X_te)) == (73, 25)


def test_to_forecasting_axis_and_tensor():
    x = torch.arange(2 * 10 * 3, dtype=torch.float32).reshape(2, 10, 3)
    X, y = to_forecasting(x, forecast=2, axis=1)
    assert isinstance(X, torch.Tensor) and X.shape == y.shape == (2, 8, 3)
    torch.testing.assert_close(y, x[:, 2:])
    X, y = to_forecasting(x, forecast=2, axis=-2)
    torch.testing.assert_close(X, x[:, :8])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"forecast": 10}, r"to_forecasting: forecast must be smaller than the series length 10"),
        ({"forecast": 0}, r"to_forecasting: forecast must be an int >= 1, got 0"),
        ({"test_size": 9}, r"test_size gives 9 test pairs, but the series of length 10"),
        ({"test_size": 1.5}, r"a float test_size must be in \[0, 1\), got 1.5"),
        ({"axis": 2}, r"axis 2 is out of range for x with 2 dimensions"),
    ],
)
def test_to_forecasting_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        to_forecasting(np.zeros((10, 1)), **kwargs)


def test_arguments_that_would_be_dropped_are_refused():
    from rnngraph import datasets, metrics

    with pytest.raises(ValueError, match=r"mackey_glass: seed draws a random history"):
        datasets.mackey_glass(20, history=np.ones(30), seed=1)
    with pytest.raises(ValueError, match=r"lorenz: unknown method 'bogus'"):
        datasets.lorenz(1, method="bogus")
    y = np.array([0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match=r"nrmse: norm_value must be a finite number > 0"):
        metrics.nrmse(y, y + 1, norm_value=0)
    with pytest.raises(ValueError, match=r"nrmse: norm='range' and norm_value=2.0"):
        metrics.nrmse(y, y + 1, norm="range", norm_value=2.0)
    with pytest.raises(ValueError, match=r"nrmse: norm='std' and norm_value=2.0"):
        metrics.nrmse(y, y + 1, norm="std", norm_value=2.0)
    assert metrics.nrmse(y, y + 1, norm_value=2.0) == 0.5
    assert metrics.nrmse(y, y + 1) == metrics.nrmse(y, y + 1, norm="std")
