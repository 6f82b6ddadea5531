"""``torch.compile`` of a BPTT update through ``CompiledNetwork.unrolled()``.

TorchDynamo traces the whole update (forward over all steps, loss) as one graph, without
graph breaks, and the compiled update gives the eager loss and gradients to 1e-6 in float32.
The tests use the ``aot_eager`` backend (AOTAutograd without code generation, seconds to
compile); ``benchmarks/torch_compile.py`` times inductor against eager.
"""

from __future__ import annotations

import pytest
import torch

import rnngraph as rg

# TorchDynamo itself instantiates the autograd Function of the surrogate gradient while it
# traces it (torch 2.13), and says so with a DeprecationWarning: not this package's call
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*autograd.function.Function.*should not be instantiated:DeprecationWarning"
)


def _network(model: str = "lif") -> rg.Network:
    g = torch.Generator().manual_seed(0)
    net = rg.Network(dt=1.0)
    net.add_func_node("in", 5)
    if model == "lif":
        net.add_diffeq_node("rec", "lif", n=32, tau_m=10.0, refractory=2.0)
    else:
        net.add_diffeq_node("rec", "leaky_tanh", n=32, lr=0.5)
    net.add_diffeq_node("out", "leaky_readout", n=2, tau=10.0)
    net.add_edge("in", "rec", weights=torch.rand(32, 5, generator=g) * 0.8, train="gd")
    w = torch.randn(32, 32, generator=g) * 0.1
    net.add_edge("rec", "rec", weights=w, feedback=True, train="gd", mask=(w.abs() > 0.05).float())
    net.add_edge("rec", "out", weights=torch.randn(2, 32, generator=g) * 0.1, train="gd", bias=True)
    return net


def _data():
    g = torch.Generator().manual_seed(1)
    return torch.rand(4, 40, 5, generator=g), torch.rand(4, 40, 2, generator=g)


def _loss(f, model, x, target):
    y, _ = f(x, model.init_state(x.shape[0]))
    return ((y - target) ** 2).mean()


@pytest.mark.parametrize("kind", ["lif", "esn"])
def test_unrolled_equals_forward(kind):
    model = _network(kind).compile()
    x, _ = _data()
    y, state = model.unrolled()(x, model.init_state(4))
    ref = model.run(x, state=model.init_state(4))
    assert torch.equal(y, model.forward(x))
    for k, v in ref.state.items():
        assert torch.equal(state[k], v), k
    if kind == "lif":
        assert 0 < float(y.detach().abs().sum())


def test_a_bptt_update_traces_without_graph_breaks():
    model = _network().compile()
    x, target = _data()
    explained = torch._dynamo.explain(_loss)(model.unrolled(), model, x, target)
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1


@pytest.mark.parametrize("kind", ["lif", "esn"])
def test_the_compiled_update_gives_the_eager_loss_and_gradients(kind):
    torch._dynamo.reset()
    model = _network(kind).compile()
    x, target = _data()
    f = model.unrolled()
    eager = _loss(f, model, x, target)
    eager.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    loss = _loss(compiled, model, x, target)
    loss.backward()
    torch.testing.assert_close(loss, eager, rtol=0, atol=1e-6)
    assert grads and all(float(g.abs().sum()) > 0 for g in grads.values())  # all trained
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, grads[n], rtol=0, atol=1e-6, msg=n)
    # an optimiser step changes the weights in place: the compiled function reads them
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.1)
    torch.testing.assert_close(
        _loss(compiled, model, x, target), _loss(f, model, x, target), rtol=0, atol=1e-6
    )
