"""``rnngraph.compat.snntorch`` and ``rnngraph.compat.norse`` against those libraries'
update equations written out here (the peers themselves: ``test_peer_snntorch.py`` and
``test_peer_norse.py``), and their refusals."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

import rnngraph as rg
from rnngraph.compat import norse, snntorch

F64 = torch.float64
B, T, C, N = 3, 200, 4, 12


def _inputs(seed: int, scale: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(B, T, C, generator=g, dtype=F64)
    w_in = scale * torch.rand(N, C, generator=g, dtype=F64)
    w_rec = 0.3 * torch.randn(N, N, generator=g, dtype=F64) / math.sqrt(N)
    return x, w_in, w_rec


def _snntorch_by_hand(kind, x, w_in, w_rec, beta, alpha, th, reset):
    """snnTorch 1.0's Leaky, RLeaky and Synaptic updates, step by step."""
    mem, syn, spk = (torch.zeros(B, N, dtype=F64) for _ in range(3))
    out = []
    for t in range(T):
        r = (mem > th).to(F64)  # the reset of the previous step's membrane
        cur = x[:, t] @ w_in.T + (spk @ w_rec.T if kind == "rleaky" else 0.0)
        if kind == "synaptic":
            syn = alpha * syn + cur
            cur = syn
        if reset == "subtract":
            mem = beta * mem + cur - r * th
        elif kind == "leaky":
            mem = beta * ((1 - r) * mem) + cur
        else:  # RLeaky and Synaptic zero the whole update after a spike
            mem = (beta * mem + cur) * (1 - r)
        spk = (mem > th).to(F64)
        out.append(spk)
    return torch.stack(out, 1)


@pytest.mark.parametrize("kind", ["leaky", "rleaky", "synaptic"])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_snntorch_neurons_fire_as_snntorchs_equations(kind, reset):
    x, w_in, w_rec = _inputs(1, 0.35)
    beta, alpha, th = 0.8, 0.6, 0.9
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", C)
    kw = {"threshold": th, "reset_mechanism": reset}
    target = "pop"
    if kind == "leaky":
        snntorch.leaky(net, "pop", N, beta, **kw)
    elif kind == "rleaky":
        snntorch.rleaky(net, "pop", N, beta, w_rec, **kw)
    else:
        target, _ = snntorch.synaptic(net, "pop", N, alpha, beta, **kw)
    net.add_edge("in", target, weights=w_in)
    with torch.no_grad():
        ours = net.compile().forward(x)
    ref = _snntorch_by_hand(kind, x, w_in, w_rec, beta, alpha, th, reset)
    assert 0.05 < float(ref.mean()) < 0.7
    assert torch.equal(ours, ref)


@pytest.mark.parametrize(("recurrent", "autapses"), [(False, True), (True, True), (True, False)])
def test_norse_cells_fire_as_norses_equations(recurrent, autapses):
    x, w_in, w_rec = _inputs(2, 1.0)
    dt, p = 1e-3, norse.DEFAULTS
    net = rg.Network(dt=dt, dtype=F64)
    net.add_func_node("in", C)
    if recurrent:
        syn, _ = norse.lif_recurrent_cell(net, "pop", N, 3.0 * w_rec, autapses=autapses)
        if not autapses:  # Norse zeroes the diagonal
            w_rec = w_rec * (1.0 - torch.eye(N, dtype=F64))
    else:
        syn, _ = norse.lif_cell(net, "pop", N)
    net.add_edge("in", syn, weights=w_in)
    with torch.no_grad():
        ours = net.compile().forward(x)
    v, i, z = (torch.zeros(B, N, dtype=F64) for _ in range(3))
    ref = []
    for t in range(T):  # Norse 1.1's lif_feed_forward_step / lif_step
        i = i + x[:, t] @ w_in.T + (z @ (3.0 * w_rec).T if recurrent else 0.0)
        v = v + dt * p["tau_mem_inv"] * ((p["v_leak"] - v) + i)
        i = i - dt * p["tau_syn_inv"] * i
        z = (v - p["v_th"] > 0).to(F64)
        v = (1 - z) * v + z * p["v_reset"]
        ref.append(z)
    ref = torch.stack(ref, 1)
    assert 0.05 < float(ref.mean()) < 0.6
    assert torch.equal(ours, ref)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda net: snntorch.leaky(net, "p", N, 0.9, learn_beta=True), ValueError, "learn_beta"),
        (lambda net: snntorch.leaky(net, "p", N, 0.9, inhibition=True), ValueError, "inhibition"),
        (lambda net: snntorch.leaky(net, "p", N, 0.9, reset_delay=False), ValueError, "reset_d"),
        (
            lambda net: snntorch.leaky(net, "p", N, 0.9, reset_mechanism="none"),
            ValueError,
            "'none'",
        ),
        (lambda net: snntorch.leaky(net, "p", N, 1.0), ValueError, "beta"),
        (
            lambda net: snntorch.leaky(net, "p", N, 0.9, spike_grad="sigmoid"),
            ValueError,
            "spike_grad",
        ),
        (
            lambda net: snntorch.leaky(net, "p", N, 0.9, threshold=0.5, spike_grad="fast_sigmoid"),
            ValueError,
            "threshold 1",
        ),
        (lambda net: snntorch.leaky(net, "p", N, 0.9, lr=0.1), TypeError, "unknown argument"),
        (lambda net: snntorch.rleaky(net, "p", N, 0.9, torch.ones(3, 3)), ValueError, "weights"),
        (lambda net: snntorch.synaptic(net, "p", N, 1.5, 0.9), ValueError, "alpha"),
        (
            lambda net: norse.lif_cell(
                net, "p", N, SimpleNamespace(**{**norse.DEFAULTS, "method": "tanh"})
            ),
            ValueError,
            "method",
        ),
        (
            lambda net: norse.lif_cell(
                net, "p", N, SimpleNamespace(**{**norse.DEFAULTS, "v_th": 2.0})
            ),
            ValueError,
            "v_th - v_reset",
        ),
        (lambda net: norse.lif_cell(net, "p", N, SimpleNamespace(v_th=1.0)), TypeError, "has no"),
        (
            lambda net: norse.lif_recurrent_cell(net, "p", N, torch.ones(2, 2)),
            ValueError,
            "weights",
        ),
    ],
)
def test_options_not_reproduced_are_refused_and_change_nothing(call, error, match):
    net = rg.Network(dt=1e-3, dtype=F64)
    net.add_func_node("in", C)
    before = (list(net.graph.nodes), list(net.graph.edges))
    with pytest.raises(error, match=match):
        call(net)
    assert (list(net.graph.nodes), list(net.graph.edges)) == before


def test_snntorchs_defaults_given_explicitly_are_its_defaults():
    nets = []
    for kw in ({}, {"spike_grad": None, "init_hidden": False, "output": False}):
        net = rg.Network(dt=1.0, dtype=F64)
        snntorch.leaky(net, "p", N, 0.9, threshold=0.5, **kw)
        nets.append(net.get_node("p"))
    assert repr(nets[0]) == repr(nets[1])
    assert repr(nets[0].spike_fn) == "Surrogate('atan', scale=1)"  # alpha 2 times threshold


def test_trained_and_fixed_recurrent_weights_follow_the_peers_switches():
    net = rg.Network(dt=1.0, dtype=F64)
    snntorch.rleaky(net, "a", N, 0.9, torch.zeros(N, N, dtype=F64))
    snntorch.rleaky(net, "b", N, 0.9, torch.zeros(N, N, dtype=F64), learn_recurrent=False)
    norse_net = rg.Network(dt=1e-3, dtype=F64)
    norse.lif_recurrent_cell(norse_net, "c", N, torch.ones(N, N, dtype=F64), train=None)
    assert net.get_edge("a", "a").weight.requires_grad
    assert not net.get_edge("b", "b").weight.requires_grad
    edge = norse_net.get_edge("c", "c_syn")
    assert not edge.weight.requires_grad
    assert torch.equal(edge.effective_weight(), 1.0 - torch.eye(N, dtype=F64))  # no autapses


def test_norse_parameters_in_float32_or_trainable():
    q = {k: torch.tensor(v) for k, v in norse.DEFAULTS.items() if k != "method"}
    q.update(v_th=torch.tensor(1.2), v_reset=torch.tensor(0.2))  # a gap of 1 to float32 rounding
    net = rg.Network(dt=1e-3, dtype=F64)
    norse.lif_cell(net, "a", N, SimpleNamespace(**q, method="super"))
    assert float(net.get_node("a").v_th) == pytest.approx(1.2)
    trainable = {**q, "tau_mem_inv": torch.nn.Parameter(torch.tensor(100.0))}
    before = list(net.graph.nodes)
    with pytest.raises(ValueError, match="trainable p.tau_mem_inv"):
        norse.lif_cell(net, "b", N, SimpleNamespace(**trainable, method="super"))
    assert list(net.graph.nodes) == before
