"""Integrators: exactness of exp_euler on a linear leak, convergence orders from slope fits,
and the pure integrator functions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from rnngraph import DENode, Network
from rnngraph.nodes import INTEGRATORS, LeakyIntegrator, euler, exp_euler, rk4


class Logistic(DENode):
    r"""``v' = k v (1 - v)``: nonlinear, with the closed form
    ``v(t) = 1 / (1 + (1/v0 - 1) exp(-k t))``."""

    state_vars = ("v",)
    input_names = ("I",)

    def __init__(self, n, k=1.0, **kwargs):
        super().__init__(n, **kwargs)
        self.add_param("k", k)

    def rhs(self, s, i):
        return (self.k * s.v * (1.0 - s.v) + i.I,)


def _logistic_error(integrator, dt, t_end=2.0, v0=0.1, k=1.5):
    net = Network(dt, dtype=torch.float64)
    net.add_diffeq_node("p", Logistic(1, k=k, integrator=integrator, init={"v": v0}))
    steps = round(t_end / dt)
    v = net.run(steps=steps).output[-1, 0].item()
    exact = 1.0 / (1.0 + (1.0 / v0 - 1.0) * np.exp(-k * steps * dt))
    return abs(v - exact)


def _qif_error(integrator, dt, t_end=1.0):
    tau, Delta, eta, I, r0, v0 = 1.0, 0.5, -1.0, 2.0, 0.3, -0.5

    def f(_, y):
        r, v = y
        return [
            (Delta / (np.pi * tau) + 2 * r * v) / tau,
            (v * v + eta + I - (np.pi * tau * r) ** 2) / tau,
        ]

    ref = solve_ivp(f, (0.0, t_end), [r0, v0], method="DOP853", rtol=1e-13, atol=1e-13).y[:, -1]
    net = Network(dt, dtype=torch.float64)
    net.add_func_node("inp", 1)
    node = net.add_diffeq_node(
        "qif", "qif_mf", 1, tau=tau, Delta=Delta, eta=eta, integrator=integrator
    )
    node.set_init("r", r0)
    node.set_init("v", v0)
    net.add_edge("inp", "qif", [[1.0]])
    steps = round(t_end / dt)
    rec = net.run(np.full((steps, 1), I), record=["qif", "qif.v"])
    got = np.array([rec["qif"][-1, 0].item(), rec["qif.v"][-1, 0].item()])
    return np.abs(got - ref).max()


def _slope(errors_fn, integrator, dts):
    errs = np.array([errors_fn(integrator, dt) for dt in dts])
    assert np.all(errs > 0) and np.all(np.isfinite(errs)), errs
    return np.polyfit(np.log(dts), np.log(errs), 1)[0], errs


@pytest.mark.parametrize(
    ("integrator", "order", "dts"),
    [
        ("euler", 1, [0.04, 0.02, 0.01, 0.005]),
        ("rk4", 4, [0.2, 0.1, 0.05, 0.025]),
    ],
)
@pytest.mark.parametrize("model", ["logistic", "qif_mf"])
def test_convergence_order(integrator, order, dts, model):
    fn = _logistic_error if model == "logistic" else _qif_error
    slope, errs = _slope(fn, integrator, dts)
    assert abs(slope - order) < 0.3, (slope, errs)


def test_exp_euler_is_exact_on_linear_leak():
    """tau v' = -v + I with constant I: v(t) = I + (v0 - I) exp(-t/tau), whatever dt."""
    dt, steps = 0.7, 40
    tau = np.array([0.5, 2.0, 10.0])
    I = np.array([1.5, -0.5, 3.0])
    v0 = np.array([-1.0, 2.0, 0.25])
    t = dt * np.arange(1, steps + 1)[:, None]  # step k ends at time (k+1) dt
    exact = I + (v0 - I) * np.exp(-t / tau)
    errors = {}
    for integrator in ("exp_euler", "euler", "rk4"):
        net = Network(dt, dtype=torch.float64)
        net.add_diffeq_node(
            "li", "leaky_integrator", 3, tau=tau, activation="identity", integrator=integrator
        )
        net.get_node("li").set_init("v", v0)
        v = net.run(np.tile(I, (steps, 1))).output.numpy()
        errors[integrator] = np.abs(v - exact).max()
    assert errors["exp_euler"] < 1e-12, errors
    # the other two are not exact at this dt: the check above can tell them apart
    assert errors["euler"] > 1e-3 and errors["rk4"] > 1e-6, errors


def test_exp_euler_needs_a_linear_part():
    with pytest.raises(ValueError, match="Logistic: integrator 'exp_euler' needs a model with"):
        Logistic(1, integrator="exp_euler")


def test_integrator_functions_one_step():
    """The pure integrator functions on v' = (I - v)/tau, one step from v = 1."""
    node = LeakyIntegrator(1, tau=2.0).double()
    s = node.State(torch.ones(1, 1, dtype=torch.float64))
    i = node.Inputs(torch.full((1, 1), 3.0, dtype=torch.float64))
    dt, a = 0.5, 0.25  # a = dt / tau
    assert euler(node, s, i, dt).v.item() == pytest.approx(1 + 2 * a, abs=1e-15)
    rk = 1 - a + a**2 / 2 - a**3 / 6 + a**4 / 24  # RK4's stability polynomial at -a
    assert rk4(node, s, i, dt).v.item() == pytest.approx(3 - 2 * rk, abs=1e-15)
    assert exp_euler(node, s, i, dt).v.item() == pytest.approx(3 - 2 * np.exp(-a), abs=1e-15)
    assert sorted(INTEGRATORS) == ["euler", "exp_euler", "rk4"]


def test_input_is_held_constant_over_each_step():
    """Zero-order hold: step k integrates with input u(k) over the whole step, so exp_euler
    reproduces the exact piecewise solution to round-off."""
    dt = 0.25
    u = np.repeat(np.array([1.0, -2.0, 0.5, 4.0]), 5)[:, None]
    net = Network(dt, dtype=torch.float64)
    net.add_diffeq_node(
        "li", "leaky_integrator", 1, tau=1.0, activation="identity", integrator="exp_euler"
    )
    got = net.run(u).output.numpy()[:, 0]
    v, ref = 0.0, []
    for x in u[:, 0]:
        v = x + (v - x) * np.exp(-dt)
        ref.append(v)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-14)
