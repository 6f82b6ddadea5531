"""Surrogate gradients: exact step forward, documented pseudo-derivatives backward,
gradient checks of the relaxed forms and of a spiking step built on them."""

from __future__ import annotations

import math

import pytest
import torch

from rnngraph.nodes import SURROGATES, LIFParameters, LIFState, get_surrogate, lif_step

NAMES = ["fast_sigmoid", "triangle", "atan", "sigmoid"]


def _x(n: int = 401) -> torch.Tensor:
    """A grid over [-2, 2] in float64 that avoids the kinks of the triangle (0, +-1)."""
    return torch.linspace(-2.0, 2.0, n, dtype=torch.float64) + 1e-3


def _by_hand(name: str, x: torch.Tensor, scale: float, center: float = 0.0) -> torch.Tensor:
    """The pseudo-derivatives written out from their published formulas."""
    if name == "fast_sigmoid":  # Zenke & Ganguli 2018; snnTorch FastSigmoid
        return 1.0 / (scale * x.abs() + 1.0) ** 2
    if name == "triangle":  # Bellec et al. 2020: gamma * max(0, 1 - |x|)
        return scale * torch.clamp(1.0 - x.abs(), min=0.0)
    if name == "atan":  # snnTorch ATan: alpha / 2 / (1 + (pi / 2 * alpha * x)^2)
        return scale / 2.0 / (1.0 + (math.pi / 2.0 * scale * x) ** 2)
    s = 1.0 / (1.0 + torch.exp(-scale * (x - center)))  # logistic, slope `scale`
    return scale * s * (1.0 - s)


@pytest.mark.parametrize("name", NAMES)
def test_forward_is_the_strict_heaviside_step(name):
    sg = get_surrogate(name)
    x = torch.tensor([-1.0, -1e-12, 0.0, 1e-12, 3.0], dtype=torch.float64, requires_grad=True)
    z = sg(x)
    assert z.dtype == torch.float64
    assert z.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]  # H(0) = 0: threshold comparison is '>'
    with torch.no_grad():  # the autograd-free shortcut computes the same step
        assert sg(x).tolist() == z.tolist()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scale", [None, 0.7, 10.0])
def test_backward_equals_the_documented_formula(name, scale):
    sg = get_surrogate(name, scale=scale)
    used = SURROGATES[name].defaults["scale"] if scale is None else scale
    assert sg.params["scale"] == used
    x = _x().requires_grad_(True)
    (g,) = torch.autograd.grad(sg(x).sum(), x)
    expected = _by_hand(name, x.detach(), used)
    torch.testing.assert_close(g, expected, rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(sg.grad(x.detach()), expected, rtol=1e-13, atol=1e-15)
    # the upstream gradient is multiplied in, not replaced
    w = torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    (g2,) = torch.autograd.grad((sg(x) * w).sum(), x)
    torch.testing.assert_close(g2, w * expected, rtol=1e-13, atol=1e-15)


def test_sigmoid_center_shifts_the_bump_not_the_step():
    sg = get_surrogate("sigmoid", scale=5.0, center=0.5)
    x = _x().requires_grad_(True)
    (g,) = torch.autograd.grad(sg(x).sum(), x)
    torch.testing.assert_close(g, _by_hand("sigmoid", x.detach(), 5.0, 0.5), rtol=1e-13, atol=0)
    assert x.detach()[g.argmax()].item() == pytest.approx(0.5, abs=0.01)
    assert sg(torch.tensor([0.25])).item() == 1.0  # forward still thresholds at 0


def test_documented_defaults():
    assert {k: v.defaults for k, v in SURROGATES.items()} == {
        "fast_sigmoid": {"scale": 25.0},
        "triangle": {"scale": 0.3},
        "atan": {"scale": 2.0},
        "sigmoid": {"scale": 25.0, "center": 0.0},
    }
    # peak heights of the bumps: 1, gamma, alpha/2, scale/4
    zero = torch.zeros(1, dtype=torch.float64)
    assert get_surrogate("fast_sigmoid").grad(zero).item() == 1.0
    assert get_surrogate("triangle").grad(zero).item() == pytest.approx(0.3)
    assert get_surrogate("atan").grad(zero).item() == pytest.approx(1.0)
    assert get_surrogate("sigmoid").grad(zero).item() == pytest.approx(25.0 / 4)


@pytest.mark.parametrize("name", NAMES)
def test_relaxed_forward_is_the_primitive_of_the_backward(name):
    """gradcheck: the custom backward equals the derivative of the relaxed forward."""
    sg = get_surrogate(name, scale=1.3, relaxed=True)
    x = _x(37).requires_grad_(True)
    assert torch.autograd.gradcheck(sg, (x,), eps=1e-6, atol=1e-7)
    lo = sg(torch.tensor([-50.0], dtype=torch.float64)).item()
    assert abs(lo) < 0.02  # the primitive starts at 0 far below threshold


def _relaxed_lif_step(name: str):
    sg = get_surrogate(name, scale=1.5, relaxed=True)
    p = LIFParameters(tau_m=10.0, v_rest=0.0, v_th=1.0, v_reset=-0.2, r_m=2.0, refractory=0.0)

    def f(i, v, z):
        state = LIFState(v, z, torch.zeros_like(v))
        z1, s1 = lif_step(i, state, p, 1.0, spike_fn=sg, detach_reset=False, reset="value")
        return z1, s1.v

    return f


@pytest.mark.parametrize("name", ["fast_sigmoid", "atan", "sigmoid"])
def test_gradcheck_through_a_spiking_step(name):
    """The smooth surrogates through one LIF step (threshold, reset to value) in float64."""
    g = torch.Generator().manual_seed(5)
    i = (0.3 * torch.randn(3, 4, generator=g, dtype=torch.float64)).requires_grad_(True)
    v = (1.0 + 0.4 * torch.randn(3, 4, generator=g, dtype=torch.float64)).requires_grad_(True)
    z = torch.rand(3, 4, generator=g, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(_relaxed_lif_step(name), (i, v, z), eps=1e-6, atol=1e-7)


def test_bellec_pseudo_derivative_through_a_lif_step():
    """triangle(gamma) with v_reset = 0: dz/dv = (gamma / v_th) max(0, 1 - |v - v_th| / v_th)."""
    v_th, gamma = 0.6, 0.3
    p = LIFParameters(tau_m=20.0, v_rest=0.0, v_th=v_th, v_reset=0.0, r_m=1.0, refractory=0.0)
    v = torch.linspace(-0.2, 1.4, 33, dtype=torch.float64).reshape(1, -1) + 1e-4
    i = torch.zeros_like(v)
    i.requires_grad_(True)
    z, _ = lif_step(
        i,
        LIFState(v, torch.zeros_like(v), torch.zeros_like(v)),
        p,
        1.0,
        spike_fn=get_surrogate("triangle", scale=gamma),
    )
    (dz_di,) = torch.autograd.grad(z.sum(), i)
    # i enters v through (1 - alpha) r_m: divide it out to get dz/dv at the integrated v
    alpha = math.exp(-1.0 / 20.0)
    v1 = alpha * v
    expected = (gamma / v_th) * torch.clamp(1.0 - (v1 - v_th).abs() / v_th, min=0.0)
    torch.testing.assert_close(dz_di / (1.0 - alpha), expected, rtol=1e-9, atol=1e-12)


def test_torch_func_transforms():
    """e-prop needs torch.func: grad and vmap go through the surrogate."""
    sg = get_surrogate("fast_sigmoid", scale=4.0)
    x = _x(11)
    g = torch.func.grad(lambda t: sg(t).sum())(x)
    torch.testing.assert_close(g, _by_hand("fast_sigmoid", x, 4.0))
    jac = torch.func.vmap(torch.func.grad(lambda t: sg(t)))(x)
    torch.testing.assert_close(jac, _by_hand("fast_sigmoid", x, 4.0))


def test_errors_name_the_valid_choices():
    with pytest.raises(
        ValueError,
        match=r"unknown surrogate 'heaviside'; valid names are "
        r"\['atan', 'fast_sigmoid', 'sigmoid', 'triangle'\]",
    ):
        get_surrogate("heaviside")
    with pytest.raises(TypeError, match=r"'triangle' has no parameter\(s\) \['slope'\]"):
        get_surrogate("triangle", slope=2.0)
    with pytest.raises(ValueError, match="fast_sigmoid scale must be positive, got -1.0"):
        get_surrogate("fast_sigmoid", scale=-1.0)
    with pytest.raises(ValueError, match="atan scale must be a finite number"):
        get_surrogate("atan", scale=float("nan"))
    assert repr(get_surrogate("sigmoid", relaxed=True)) == (
        "Surrogate('sigmoid', scale=25, center=0, relaxed=True)"
    )
