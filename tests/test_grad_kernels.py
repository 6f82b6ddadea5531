"""The LIF step with gradients (the generic step without refractory work) against the
generic step: the same values and the same gradients, bit for bit, wherever the plan takes
it, and the generic step wherever a unit can be held."""

from __future__ import annotations

import pytest
import torch

import rnngraph as rg
from rnngraph.nodes import KERNELS, build_kernel

F64 = torch.float64
NAME = "LIF step with gradients"


def _without_grad_kernel(monkeypatch):
    monkeypatch.setattr(
        "rnngraph.nodes._kernels.KERNELS", [k for k in KERNELS if k.name != NAME], raising=True
    )


@pytest.mark.parametrize("offsets", [False, True])
@pytest.mark.parametrize("reset", ["subtract", "value"])
@pytest.mark.parametrize("detach", [True, False])
@pytest.mark.parametrize("integrator", ["exp_euler", "euler"])
def test_values_and_gradients_equal_the_generic_steps(offsets, reset, detach, integrator):
    g = torch.Generator().manual_seed(3)
    kw = {"v_rest": -0.5, "v_reset": -0.2, "r_m": 1.7, "surrogate": "atan"} if offsets else {}
    th = "v_th"
    node = rg.nodes.LIF(
        6, tau_m=torch.linspace(4.0, 12.0, 6), reset=reset, detach_reset=detach,
        integrator=integrator, train=[th, "tau_m"], **kw,
    ).double()  # fmt: skip
    drive = (3.0 * torch.rand(50, 2, 6, generator=g, dtype=F64)).requires_grad_(True)
    weights = torch.randn(50, 2, 6, generator=g, dtype=F64)
    results = []
    for name in (NAME, "generic"):
        k, s = build_kernel(name, node, 0.5), node.init_state(2)
        loss, spikes = 0.0, []
        for t in range(50):
            z, s = k(s, drive[t])
            loss = loss + (z * weights[t]).sum() + 0.1 * (s.v * weights[t]).sum()
            spikes.append(z)
        grads = torch.autograd.grad(loss, [drive, node.v_th, node.tau_m])
        results.append((torch.stack(spikes), s.v.detach(), grads))
    (z1, v1, g1), (z2, v2, g2) = results
    assert int(z1.sum()) > 20
    assert torch.equal(z1, z2) and torch.equal(v1, v2)
    assert all(torch.equal(a, b) for a, b in zip(g1, g2, strict=True))
    assert float(g1[0].abs().sum()) > 0


def _network(refractory=0.0):
    g = torch.Generator().manual_seed(4)
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 3)
    net.add_diffeq_node("pop", "lif", n=8, tau_m=5.0, refractory=refractory, train=["tau_m"])
    net.add_edge("in", "pop", weights=2.0 * torch.rand(8, 3, generator=g, dtype=F64), train="gd")
    net.add_edge(
        "pop", "pop", weights=0.3 * torch.randn(8, 8, generator=g, dtype=F64), feedback=True
    )
    return net


def _trained(net, x, held=False):
    model = net.compile()
    state = model.init_state(x.shape[0])
    if held:  # a first state with units counting down (set by hand)
        state["pop.ref"] = torch.tensor([2.0, 0, 0, 1, 0, 0, 0, 3], dtype=F64).expand(3, 8)
    y = model.forward(x, state=state)
    loss = (y * torch.linspace(-1, 1, 8, dtype=F64)).sum()
    return y.detach(), torch.autograd.grad(loss, list(model.parameters()))


@pytest.mark.parametrize("case", ["plain", "held_at_start", "refractory"])
def test_a_network_takes_it_only_where_no_unit_can_be_held(monkeypatch, case):
    x = torch.rand(3, 80, 3, generator=torch.Generator().manual_seed(5), dtype=F64)
    refractory, held = (2.0 if case == "refractory" else 0.0), case == "held_at_start"
    net = _network(refractory)
    chosen = net.compile().explain(batch_size=3, grad=True).nodes["pop"][0]
    assert chosen == ("generic" if case == "refractory" else NAME)
    y, grads = _trained(net, x, held)
    _without_grad_kernel(monkeypatch)
    y_ref, grads_ref = _trained(_network(refractory), x, held)
    assert int(y.sum()) > 30
    assert torch.equal(y, y_ref)
    assert all(torch.equal(a, b) for a, b in zip(grads, grads_ref, strict=True))


def test_a_new_refractory_period_takes_the_generic_step_again():
    net = _network()
    model = net.compile()
    x = torch.rand(1, 60, 3, generator=torch.Generator().manual_seed(6), dtype=F64)
    with torch.enable_grad():
        model.forward(x)
    model.nodes["pop"].refractory.data.fill_(3.0)  # now one spike holds two steps
    assert model.explain(grad=True).nodes["pop"][0] == "generic"
    y = model.forward(x).detach()
    with torch.no_grad():
        ref = model.forward(x)  # the no-gradient steps hold as well
    assert torch.equal(y, ref)
