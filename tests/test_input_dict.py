"""Several input nodes fed from a dict of inputs (reservoirpy's ``[u, v] >> reservoir`` with
``run({"u": ..., "v": ...})``): ``run``, ``step``, ``forward``, the fits and lists of
sequences, against the test suite's reference interpreter on the same network with one input
node whose weights are the input nodes' side by side, and ridge solutions written out in
NumPy; then everything a dict may get wrong, refused with the network left as it was.
"""

from __future__ import annotations

import _reference as ref
import numpy as np
import pytest
import torch
from conftest import assert_state_equal, state_copy

import rnngraph as rg

F64 = torch.float64
N, CU, CV, K = 20, 2, 3, 2
READ = [("res", "readout"), ("u", "readout"), ("v", "readout")]  # [u, v, res] >> readout


def two_inputs(readout: bool = False, name: bool = True, train: str | None = None):
    """u (CU) and v (CV) -> leaky tanh (N) [-> readout (K), reading u and v too]; the
    reference description with one input of width CU + CV and the weights side by side."""
    g = torch.Generator().manual_seed(0)
    w_u = rg.input_weights(N, CU, seed=g, dtype=F64)
    w_v = rg.input_weights(N, CV, seed=g, dtype=F64) * 0.5
    w = rg.recurrent_weights(N, spectral_radius=0.9, connectivity=0.3, seed=g, dtype=F64)
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("u", CU)
    net.add_func_node("v", CV)
    res = net.add_diffeq_node("res", "leaky_tanh", n=N, lr=0.4, bias=0.1)
    net.add_edge("u", "res", weights=w_u)
    net.add_edge("v", "res", weights=w_v)
    net.add_edge("res", "res", weights=w, feedback=True)
    if readout:
        net.add_func_node("readout", K)
        zeros = {"res": torch.zeros(K, N, dtype=F64), "u": torch.zeros(K, CU, dtype=F64)}
        zeros["v"] = torch.zeros(K, CV, dtype=F64)
        for s, zero in zeros.items():
            net.add_edge(s, "readout", weights=zero, bias=s == "res", train=train)
    if name:
        net.compile(input_node=["u", "v"], output_node="readout" if readout else "res")
    descs = {"in": ref.NodeDesc("in", "func", CU + CV), "res": ref.node_desc("res", res)}
    edges = [
        ref.EdgeDesc("in", "res", torch.cat([w_u, w_v], 1).numpy(), None, None, 0),
        ref.EdgeDesc("res", "res", w.numpy(), None, None, 1),
    ]
    return net, ref.GraphDesc(1.0, descs, edges, "in", "res")


def data(batch: int | None = None, steps: int = 30, seed: int = 0):
    rng = np.random.default_rng(seed)
    lead = (steps,) if batch is None else (batch, steps)
    return rng.standard_normal((*lead, CU)), rng.standard_normal((*lead, CV))


def reference_states(g, u, v) -> np.ndarray:
    x = np.concatenate([u, v], -1)
    out = ref.run(g, x if x.ndim == 3 else x[None]).outputs["res"]
    return out if x.ndim == 3 else out[0]


@pytest.mark.parametrize("batch", [None, 3])
def test_a_dict_of_inputs_feeds_each_input_node_its_own(batch):
    net, g = two_inputs()
    u, v = data(batch)
    rec = net.run({"v": v, "u": u})  # the dict's order is free: the keys say which is which
    np.testing.assert_allclose(rec.output.numpy(), reference_states(g, u, v), atol=1e-12)
    assert net.compile().input_nodes == ("u", "v") and net.compile().n_in == CU + CV
    # one array with the input nodes' columns side by side, in compile's order, is the same
    again, _ = two_inputs()
    torch.testing.assert_close(again.run(np.concatenate([u, v], -1)).output, rec.output)
    assert_state_equal(again.state, net.state)
    # forward (from the initial state) and a loop of step() give the same numbers
    torch.testing.assert_close(net.forward({"u": u, "v": v}), rec.output)
    model, state = net.compile(), None
    ut, vt = (u, v) if batch is None else (u.swapaxes(0, 1), v.swapaxes(0, 1))
    ys = []
    for k in range(u.shape[-2]):
        y, state = model.step({"u": ut[k], "v": vt[k]}, state)
        ys.append(y)
    stepped = torch.stack(ys, -2)
    np.testing.assert_allclose(stepped.numpy(), rec.output.numpy(), atol=1e-12)


def test_the_native_loop_takes_several_input_nodes():
    net, g = two_inputs()
    u, v = data(steps=200, seed=4)
    assert net.compile().explain().loop == "native reservoir loop"
    out = net.run({"u": u, "v": v}).output.numpy()
    np.testing.assert_allclose(out, reference_states(g, u, v), atol=1e-12)


def test_fit_ridge_reads_every_input_node_and_the_reservoir():
    net, g = two_inputs(readout=True)
    u, v = data(steps=80, seed=1)
    y = np.random.default_rng(2).standard_normal((80, K))
    net.fit_ridge({"u": u, "v": v}, y, edge=READ, alpha=1e-3, washout=5)
    F = np.hstack([reference_states(g, u, v), u, v])[5:]
    A = np.c_[F, np.ones(len(F))]
    D = np.eye(A.shape[1])
    D[-1, -1] = 0.0
    sol = np.linalg.solve(A.T @ A + 1e-3 * D, A.T @ y[5:])
    W = np.hstack([net.get_edge(s, "readout").weight.detach().numpy() for s in ("res", "u", "v")])
    np.testing.assert_allclose(W, sol[:-1].T, atol=1e-8)
    b = net.get_edge("res", "readout").bias.detach().numpy()
    np.testing.assert_allclose(b, sol[-1], atol=1e-8)
    # and the fitted readout's predictions, run on the dict again
    pred = net.forward({"u": u, "v": v}).numpy()
    np.testing.assert_allclose(pred[5:], A @ sol, atol=1e-8)


def test_lists_of_dicts_run_and_fit_as_sequences():
    net, g = two_inputs()
    seqs = [data(steps=T, seed=T) for T in (7, 12, 4)]
    recs = net.run([{"u": u, "v": v} for u, v in seqs])
    for rec, (u, v) in zip(recs, seqs, strict=True):
        np.testing.assert_allclose(rec.output.numpy(), reference_states(g, u, v), atol=1e-12)
    fitted, _ = two_inputs(readout=True)
    alone, _ = two_inputs(readout=True)
    ys = [np.random.default_rng(T).standard_normal((T, K)) for T in (7, 12, 4)]
    fitted.fit_ridge([{"u": u, "v": v} for u, v in seqs], ys, edge=READ, alpha=1e-2)
    alone.fit_ridge([np.concatenate(s, -1) for s in seqs], ys, edge=READ, alpha=1e-2)
    for s in ("res", "u", "v"):
        torch.testing.assert_close(
            fitted.get_edge(s, "readout").weight, alone.get_edge(s, "readout").weight
        )


@pytest.mark.parametrize("fit", ["rls", "lms", "bptt"])
def test_the_online_and_gradient_fits_take_a_dict_as_the_array(fit):
    u, v = data(steps=40, seed=3)
    y = np.random.default_rng(5).standard_normal((40, K))
    args = {
        "rls": lambda n, x: n.fit_rls(x, y, edge=("res", "readout")),
        "lms": lambda n, x: n.fit_lms(x, y, edge=("res", "readout"), learning_rate=1e-2),
        "bptt": lambda n, x: n.fit_bptt(x, y, epochs=2, lr=1e-2),
    }[fit]
    nets = []
    for x in ({"u": u, "v": v}, np.concatenate([u, v], -1)):
        torch.manual_seed(0)
        net, _ = two_inputs(readout=True, train="gd" if fit == "bptt" else None)
        args(net, x)
        nets.append(net)
    for s in ("res", "u", "v"):
        w = [n.get_edge(s, "readout").weight for n in nets]
        torch.testing.assert_close(w[0], w[1], rtol=0, atol=0)
    assert not torch.equal(nets[0].get_edge("res", "readout").weight, torch.zeros(K, N, dtype=F64))


def test_a_dict_names_the_input_nodes_when_none_is_named():
    net, g = two_inputs(name=False)
    with pytest.raises(ValueError, match=r"cannot tell the input node.*dict"):
        net.compile()
    u, v = data()
    out = net.run({"u": u, "v": v}).output.numpy()
    np.testing.assert_allclose(out, reference_states(g, u, v), atol=1e-12)
    assert net.compile().input_nodes == ("u", "v")  # remembered, as compile(input_node=) is


def test_what_a_dict_gets_wrong_is_refused_and_nothing_changes():
    net, _ = two_inputs()
    u, v = data()
    net.run({"u": u, "v": v})
    held, weights = state_copy(net.state), {k: t.clone() for k, t in net.state_dict().items()}
    cases = [
        ({"u": u}, r"one entry per input node \['u', 'v'\].*missing \['v'\]"),
        ({"u": u, "v": v, "res": v}, r"\['res'\] are not input nodes"),
        ({"u": u, "v": u}, r"inputs\['v'\] has shape \(30, 2\), expected \(30, 3\)"),
        ({"u": u, "v": v[:-1]}, r"inputs\['v'\] has shape \(29, 3\), expected \(30, 3\)"),
        ({"u": u, "v": np.full_like(v, np.nan)}, "NaN"),
        ([{"u": u, "v": v}, np.concatenate([u, v], -1)], "dicts of inputs or arrays, not both"),
        (np.concatenate([u, v, v], -1), r"8 channels, input nodes \['u', 'v'\] expects 5"),
    ]
    for bad, match in cases:
        with pytest.raises((ValueError, TypeError), match=match):
            net.run(bad)
        assert_state_equal(net.state, held)
    with pytest.raises(ValueError, match="several input nodes"):
        net.generate(5, warmup={"u": u, "v": v})
    for k, t in net.state_dict().items():
        assert torch.equal(t, weights[k]), k
    assert_state_equal(net.state, held)


def test_several_input_nodes_must_each_take_only_the_input():
    net, _ = two_inputs(name=False)
    with pytest.raises(ValueError, match=r"input nodes \['u', 'v', 'res'\].*'res' is a Leaky"):
        net.compile(input_node=("u", "v", "res"))
    with pytest.raises(ValueError, match="names a node twice"):
        net.compile(input_node=["u", "u"])
    with pytest.raises(TypeError, match="input_node must be a node label or a list"):
        net.compile(input_node=["u", 3])
    with pytest.raises(KeyError, match="input_node='w' is not a node"):
        net.compile(input_node=["u", "w"])
    # a dict whose keys are not free nodes does not rename the input: it is refused
    single = rg.Network(dt=1.0, dtype=F64)
    single.add_func_node("in", CU)
    single.add_diffeq_node("res", "leaky_tanh", n=N, lr=0.4)
    single.add_edge("in", "res", weights=torch.ones(N, CU, dtype=F64))
    with pytest.raises(ValueError, match=r"\['res'\] are not input nodes"):
        single.run({"res": data()[0]})
    assert single.compile().input_node == "in"
    out = single.run({"in": data()[0]}).output
    torch.testing.assert_close(out, single.forward(data()[0]))
