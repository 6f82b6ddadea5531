"""The trainers' arguments: every ``Network.fit_*`` and ``Network.test`` converts its
data through the library's array conversion and names itself in every error; bad
settings are refused before anything changes, valid spellings give the same numbers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import rnngraph as rg
from rnngraph.training import BPTT, RLS, EProp, Ridge, get_loss, get_optimizer

_G = torch.Generator().manual_seed(11)
X = torch.randn(2, 10, 3, generator=_G)  # (B, T, C)
Y = torch.randn(2, 10, 2, generator=_G)  # (B, T, n_out)
S = (torch.rand(2, 12, 4, generator=_G) < 0.3).float()  # spikes into the LIF net
YS = torch.randn(2, 12, 2, generator=_G)

METHODS = ("fit_ridge", "fit_rls", "fit_bptt", "fit_eprop", "test")


def esn() -> rg.Network:
    """``in (3) -> res (8) -> out (2)``, holding the state of a batch-2 run."""
    net = rg.Network(1.0)
    net.add_func_node("in", 3)
    net.add_diffeq_node("res", "leaky_tanh", n=8, lr=0.5)
    net.add_edge("in", "res", weights=rg.input_weights(8, 3, seed=1))
    w = rg.recurrent_weights(8, spectral_radius=0.9, connectivity=0.5, seed=2)
    net.add_edge("res", "res", weights=w, feedback=True)
    net.add_func_node("out", 2)
    net.add_edge("res", "out", train="gd", bias=True, seed=3)
    net.run(X)
    return net


def lif() -> rg.Network:
    """A LIF population with a leaky readout (e-prop's shape), after a batch-2 run."""
    g = torch.Generator().manual_seed(5)
    net = rg.Network(1.0)
    net.add_func_node("in", 4)
    net.add_diffeq_node("rec", "lif", n=6, tau_m=10.0, v_th=0.5)
    net.add_edge("in", "rec", weights=0.8 * torch.rand(6, 4, generator=g), train="gd")
    net.add_edge(
        "rec",
        "rec",
        weights=0.1 * torch.randn(6, 6, generator=g),
        train="gd",
        feedback=True,
        mask=1.0 - torch.eye(6),
    )
    net.add_diffeq_node("out", "leaky_readout", n=2, tau=5.0)
    net.add_edge("rec", "out", weights=0.1 * torch.randn(2, 6, generator=g), train="gd")
    net.run(S)
    return net


def _net(method: str) -> tuple[rg.Network, torch.Tensor, torch.Tensor]:
    return (lif(), S, YS) if method == "fit_eprop" else (esn(), X, Y)


def _snapshot(net: rg.Network) -> dict[str, Any]:
    return {
        "nodes": list(net.graph.nodes),
        "edges": list(net.graph.edges),
        "params": {k: v.detach().clone() for k, v in net.model.named_parameters()},
        "state": {k: v.clone() for k, v in net.state.items()},
    }


def _assert_unchanged(net: rg.Network, before: dict[str, Any]) -> None:
    after = _snapshot(net)
    assert after["nodes"] == before["nodes"] and after["edges"] == before["edges"]
    for key in ("params", "state"):
        assert after[key].keys() == before[key].keys()
        for k, v in before[key].items():
            assert torch.equal(after[key][k], v), k


def _refused(net: rg.Network, exc: Any, match: str, call: Any) -> None:
    before = _snapshot(net)
    with pytest.raises(exc, match=match):
        call()
    _assert_unchanged(net, before)


# ---------------------------------------------------------------------------------------
# the methods name themselves as users call them: Network.<method>
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_argument_errors_name_network_method(method: str) -> None:
    net, x, y = _net(method)
    fn = getattr(net, method)
    where = rf"^Network\.{method}"
    _refused(
        net,
        TypeError,
        where + r": unknown keyword argument\(s\) \['nope'\]; valid ones",
        lambda: fn(x, y, nope=1),
    )
    _refused(net, TypeError, where + r"\(\) takes from", lambda: fn(x, y, *([None] * 20)))
    if method != "fit_rls":  # fit_rls has no required argument
        _refused(net, TypeError, where + r"\(\) missing 2 required", fn)
    assert getattr(rg.Network, method).__qualname__ == f"Network.{method}"


def test_test_lists_its_own_and_runs_keywords() -> None:
    net = esn()
    with pytest.raises(
        TypeError,
        match=r"^Network\.test: unknown keyword argument\(s\) \['metric'\]; valid ones are "
        r"\['inputs', 'targets', 'loss'\] and those of Network\.run, \['sampling_steps'",
    ):
        net.test(X, Y, metric="mse")
    with pytest.raises(ValueError, match=r"^Network\.test: unknown loss \['mse'\]"):
        net.test(X, Y, loss=["mse"])


# ---------------------------------------------------------------------------------------
# data: one conversion, errors that name the call and the argument
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("which", "value", "match"),
    [
        ("targets", "strings", r"targets must be real numbers, got an array of dtype <U1"),
        ("inputs", "strings", r"inputs must be real numbers, got an array of dtype <U1"),
        ("inputs", "objects", r"inputs must be real numbers, got an array of dtype object"),
        ("inputs", "a string", r"inputs must be real numbers, got an array of dtype <U3"),
        ("targets", "None", r"targets (must be an array of real numbers, got None|are required)"),
        ("inputs", "complex", r"inputs must be real numbers, got dtype torch\.complex64"),
    ],
)
def test_data_of_no_real_numbers_is_refused(method: str, which: str, value: str, match: str):
    net, x, y = _net(method)
    data = {"x": x, "y": y}
    ref = x if which == "inputs" else y
    data["x" if which == "inputs" else "y"] = {
        "strings": np.full(tuple(ref.shape), "a"),
        "objects": np.empty(tuple(ref.shape), dtype=object),
        "a string": "abc",
        "None": None,
        "complex": ref.to(torch.complex64),
    }[value]
    exc = ValueError if (method == "fit_rls" and value == "None") else TypeError
    fn = getattr(net, method)
    _refused(net, exc, rf"^Network\.{method}: {match}", lambda: fn(data["x"], data["y"]))


@pytest.mark.parametrize("method", METHODS)
def test_empty_sequences_are_refused_by_the_call(method: str) -> None:
    net, x, y = _net(method)
    fn = getattr(net, method)
    x0, y0 = x[:, :0], y[:, :0]
    _refused(
        net,
        ValueError,
        rf"^Network\.{method}: (inputs|targets) are empty \(shape \(2, 0, ",
        lambda: fn(x0, y0),
    )
    _refused(
        net,
        ValueError,
        rf"^Network\.{method}: (inputs|targets) are empty",
        lambda: fn(x[:0], y[:0]),
    )
    if method not in ("fit_eprop",):  # needs inputs
        if method != "test":  # test runs one trial without inputs
            _refused(
                net, ValueError, rf"^Network\.{method}: targets are empty", lambda: fn(None, y0)
            )
    if method in ("fit_ridge", "fit_bptt", "fit_eprop"):
        _refused(
            net, ValueError, rf"^Network\.{method}: no targets: an empty list", lambda: fn([], [])
        )


def test_targets_of_width_zero_are_refused() -> None:
    net = esn()
    _refused(
        net,
        ValueError,
        r"^Network\.fit_ridge: targets have width 0; expected at least one output",
        lambda: net.fit_ridge(X, torch.zeros(2, 10, 0)),
    )


def test_empty_class_indices_are_refused() -> None:
    net = esn()
    _refused(
        net,
        ValueError,
        r"^Network\.fit_bptt: class indices are empty \(shape \(2, 0\)\)",
        lambda: net.fit_bptt(None, torch.zeros(2, 0, dtype=torch.int64), loss="ce"),
    )


def test_bptt_fit_refuses_pairs_without_steps() -> None:
    with pytest.raises(ValueError, match=r"^BPTT\.fit: the targets of pair 0 must be"):
        BPTT().fit(esn().model, [(X[:, :0], Y[:, :0])])


def test_views_and_float64_give_the_numbers_of_arrays() -> None:
    """Negative-stride views and float64 arrays are the same data as a contiguous float32
    array (the network's dtype): the same numbers."""
    u, y = X.numpy()[:, ::-1], Y.numpy()[:, ::-1]
    flat = (np.ascontiguousarray(u), np.ascontiguousarray(y))
    for spelling in ((u, y), (u.astype(np.float64), y.astype(np.float64))):
        torch.testing.assert_close(
            esn().fit_ridge(*spelling, alpha=1e-3).weight,
            esn().fit_ridge(*flat, alpha=1e-3).weight,
            rtol=0,
            atol=0,
        )
        assert esn().test(*spelling)[1] == esn().test(*flat)[1]
    g = Ridge(alpha=1e-3).fit(u[0], y[0])
    h = Ridge(alpha=1e-3).fit(flat[0][0], flat[1][0])
    torch.testing.assert_close(g.weight, h.weight, rtol=0, atol=0)
    torch.testing.assert_close(g.predict(u[0]), h.predict(flat[0][0]), rtol=0, atol=0)


def test_ridge_checks_its_own_arguments() -> None:
    with pytest.raises(TypeError, match=r"^Ridge\.partial_fit: X must be real numbers"):
        Ridge().partial_fit(np.full((4, 2), "a"), np.zeros((4, 1)))
    with pytest.raises(ValueError, match=r"^Ridge\.partial_fit: washout must be an int >= 0"):
        Ridge().partial_fit(np.zeros((4, 2)), np.zeros((4, 1)), washout=-1)
    with pytest.raises(ValueError, match=r"^Ridge: alpha must be finite, got inf"):
        Ridge(alpha=float("inf"))
    with pytest.raises(TypeError, match=r"^Ridge: fit_bias must be True or False, got 'no'"):
        Ridge(fit_bias="no")
    r = Ridge(alpha=1e-3).fit(np.eye(3), np.ones((3, 1)))
    with pytest.raises(ValueError, match=r"^Ridge\.predict: X must be \(\.\.\., 3\)"):
        r.predict(np.ones((2, 4)))
    assert Ridge(washout=np.int64(2)).washout == 2


# ---------------------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"sampling_steps": 0}, ValueError, r"sampling_steps must be an int >= 1, got 0$"),
        ({"sampling_steps": 2.0}, ValueError, r"sampling_steps must be an int >= 1, got 2\.0$"),
        ({"cutoff": -1}, ValueError, r"cutoff must be an int >= 0, got -1$"),
        ({"cutoff": "3"}, ValueError, r"cutoff must be an int >= 0, got '3'$"),
        (
            {"rls_dtype": torch.int32},
            TypeError,
            r"rls_dtype: dtype must be a floating torch\.dtype",
        ),
        ({"rls_dtype": torch.complex64}, TypeError, r"rls_dtype: dtype must be a floating"),
        ({"rls_dtype": "float64"}, TypeError, r"rls_dtype: dtype must be a floating"),
        ({"alpha": float("inf")}, ValueError, r"RLS: alpha must be finite"),
        ({"bias": "no"}, TypeError, r"bias must be True or False, got 'no'$"),
        ({"teacher_forcing": 1}, TypeError, r"teacher_forcing must be True or False, got 1$"),
        ({"readout": "a.b"}, ValueError, r"readout='a\.b': Network\.add_func_node"),
    ],
)
def test_fit_rls_settings_are_named(kwargs: dict, exc: Any, match: str) -> None:
    net = esn()
    _refused(net, exc, r"^Network\.fit_rls: " + match, lambda: net.fit_rls(X, Y, **kwargs))


def test_rls_dtype_must_be_floating() -> None:
    for bad in (torch.int32, torch.bool, torch.complex128, np.float64, "float32"):
        with pytest.raises(TypeError, match=r"^RLS: dtype must be a floating torch\.dtype"):
            RLS(dtype=bad)
    assert RLS(dtype=torch.float64).dtype == torch.float64
    assert RLS(every=np.int64(2), start=np.int32(1)).every == 2
    # float64 P gives the same numbers as before (the dtype is honoured)
    a = esn().fit_rls(X, Y, rls_dtype=torch.float64)
    assert a.trainer.P.dtype == torch.float64


def test_a_continued_rls_trainer_keeps_its_settings() -> None:
    net = esn()
    first = net.fit_rls(X[:, :5], Y[:, :5], alpha=2.0, rls_dtype=torch.float64)
    for kwargs, match in (
        ({"alpha": 1.0}, r"alpha=1\.0, but the trainer continued here has alpha=2\.0"),
        ({"forgetting": 0.99}, r"forgetting=0\.99, but the trainer continued here has "),
        ({"rls_dtype": torch.float32}, r"rls_dtype=torch\.float32, but the trainer "),
    ):
        _refused(
            net,
            ValueError,
            r"^Network\.fit_rls: " + match,
            lambda kw=kwargs: net.fit_rls(X[:, 5:], Y[:, 5:], trainer=first.trainer, **kw),
        )
    # its own settings, spelled out, are the same call as leaving them out
    a, b = esn(), esn()
    ta = a.fit_rls(X[:, :5], Y[:, :5], alpha=2.0).trainer
    tb = b.fit_rls(X[:, :5], Y[:, :5], alpha=2.0).trainer
    ra = a.fit_rls(X[:, 5:], Y[:, 5:], trainer=ta, alpha=2.0, forgetting=1.0)
    rb = b.fit_rls(X[:, 5:], Y[:, 5:], trainer=tb)
    torch.testing.assert_close(ra.output, rb.output, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (
            {"optimizer": "adam", "optimizer_kwargs": {"betas2": 0.9}},
            TypeError,
            r"optimizer 'adam' \(Adam\) takes no keyword argument\(s\) \['betas2'\] "
            r"\(optimizer_kwargs\); it takes \['betas', 'eps', 'weight_decay'",
        ),
        (
            {"optimizer": torch.optim.SGD, "optimizer_kwargs": {"beta": 0.9}},
            TypeError,
            r"optimizer SGD takes no keyword argument\(s\) \['beta'\]",
        ),
        (
            {"optimizer_kwargs": {"lr": 0.1}},
            TypeError,
            r"pass the learning rate as lr=, not in optimizer_kwargs",
        ),
        (
            {"optimizer": "adam", "optimizer_kwargs": {"betas": (2.0, 0.9)}},
            ValueError,
            r"optimizer 'adam' \(Adam\), optimizer_kwargs=\{'betas': \(2\.0, 0\.9\)\}: "
            r"Invalid beta",
        ),
        ({"optimizer_kwargs": [("momentum", 0.9)]}, TypeError, r"optimizer_kwargs must be a dict"),
        (
            {"loss_kwargs": {"margin": 1.0}},
            TypeError,
            r"loss 'mse' \(MSELoss\) takes no keyword argument\(s\) \['margin'\]",
        ),
        (
            {"loss_kwargs": {"reduction": "none"}},
            ValueError,
            r"loss 'mse' with reduction='none' gives one loss per sample; training needs one "
            r"number: pass reduction= one of \['mean', 'sum'\]",
        ),
        (
            {"loss_kwargs": {"reduction": "avg"}},
            ValueError,
            r"loss 'mse' with reduction='avg'; training needs one number",
        ),
        (
            {"loss": lambda o, t: (o - t).abs().mean(), "loss_kwargs": {"a": 1}},
            TypeError,
            r"loss_kwargs \['a'\] go to a loss by name",
        ),
        ({"loss": ["mse"]}, ValueError, r"unknown loss \['mse'\]"),
        ({"lr": float("inf")}, ValueError, r"lr must be finite"),
        ({"clip_grad_norm": "1"}, ValueError, r"clip_grad_norm must be > 0, got '1'"),
        ({"reset": "yes"}, TypeError, r"reset must be True or False"),
    ],
)
def test_fit_bptt_settings_are_named(kwargs: dict, exc: Any, match: str) -> None:
    net = esn()
    _refused(
        net, exc, r"^Network\.fit_bptt: (BPTT: )?" + match, lambda: net.fit_bptt(X, Y, **kwargs)
    )


def test_an_optimizer_instance_takes_no_optimizer_kwargs() -> None:
    net = esn()
    opt = torch.optim.SGD(net.model.parameters(), lr=0.1)
    _refused(
        net,
        TypeError,
        r"^Network\.fit_bptt: BPTT: optimizer_kwargs \['momentum'\] cannot reach an optimizer "
        r"instance \(SGD, built already\)",
        lambda: net.fit_bptt(X, Y, optimizer=opt, optimizer_kwargs={"momentum": 0.9}),
    )
    with pytest.raises(TypeError, match=r"^get_optimizer: optimizer_kwargs \['momentum'\]"):
        get_optimizer(opt, [], 0.1, momentum=0.9)
    with pytest.raises(TypeError, match=r"^get_loss: loss_kwargs \['a'\] go to a loss by name"):
        get_loss(lambda o, t: o, a=1)


def test_valid_optimizer_and_loss_settings_give_the_same_numbers() -> None:
    a = esn().fit_bptt(X, Y, optimizer="adam", optimizer_kwargs={"betas": (0.8, 0.99)}, epochs=2)
    b = esn()
    ref = BPTT(optimizer=torch.optim.Adam, optimizer_kwargs={"betas": (0.8, 0.99)}, lr=1e-3)
    ref_losses = b.fit_bptt(X, Y, trainer=ref, epochs=2).loss
    assert a.loss == ref_losses
    c = esn().fit_bptt(X, Y, loss_kwargs={"reduction": "sum"})
    d = esn().fit_bptt(X, Y, loss=lambda o, t: (o - t).square().sum())
    torch.testing.assert_close(torch.tensor(c.loss), torch.tensor(d.loss))


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (
            {"optimizer_kwargs": {"betas2": 0.9}},
            TypeError,
            r"optimizer 'adam' \(Adam\) takes no keyword argument\(s\) \['betas2'\]",
        ),
        (
            {"optimizer": "sgd", "optimizer_kwargs": {"momentum": -1.0}},
            ValueError,
            r"optimizer 'sgd' \(SGD\), optimizer_kwargs=\{'momentum': -1\.0\}: Invalid momentum",
        ),
        ({"lr": float("inf")}, ValueError, r"lr must be finite"),
        ({"seed": 2.5}, TypeError, r"seed must be an int, got 2\.5"),
        ({"verbose": "no"}, TypeError, r"verbose must be True or False"),
        ({"targets": None}, TypeError, r"targets must be an array of real numbers, got None"),
    ],
)
def test_fit_eprop_settings_are_named(kwargs: dict, exc: Any, match: str) -> None:
    net = lif()
    args = {"inputs": S, "targets": YS, **kwargs}
    _refused(net, exc, r"^Network\.fit_eprop: (EProp: )?" + match, lambda: net.fit_eprop(**args))


def test_eprop_direct_calls_convert_their_data() -> None:
    net = lif()
    trainer = EProp()
    with pytest.raises(TypeError, match=r"^EProp\.compute_gradients: targets must be real"):
        trainer.compute_gradients(net, S, np.full((2, 12, 2), "a"))
    with pytest.raises(TypeError, match=r"^EProp\.compute_gradients: loss_mask must be real"):
        trainer.compute_gradients(net, S, YS, loss_mask=np.full((2, 12), "a"))
    g1 = trainer.compute_gradients(net, S.numpy()[:, ::-1], YS.numpy()[:, ::-1])
    g2 = trainer.compute_gradients(net, S.flip(1), YS.flip(1))
    for k in g1:
        torch.testing.assert_close(g1[k], g2[k], rtol=0, atol=0)


# ---------------------------------------------------------------------------------------
# Python lists: a nested list of numbers is one array (as run reads it), a list of arrays
# a list of sequences
# ---------------------------------------------------------------------------------------


def test_a_nested_list_of_numbers_is_one_array() -> None:
    """``X.tolist()`` gives every fit and ``test`` the numbers ``X`` gives."""
    torch.testing.assert_close(
        esn().fit_ridge(X.tolist(), Y.tolist(), alpha=1e-3).weight,
        esn().fit_ridge(X, Y, alpha=1e-3).weight,
        rtol=0,
        atol=0,
    )
    one, other = esn(), esn()
    one.reset()
    other.reset()
    torch.testing.assert_close(
        one.fit_ridge(X[0].tolist(), Y[0].tolist(), alpha=1e-3).weight,
        other.fit_ridge(X[0], Y[0], alpha=1e-3).weight,
        rtol=0,
        atol=0,
    )
    assert (
        esn().fit_bptt(X.tolist(), Y.tolist(), epochs=2).loss == esn().fit_bptt(X, Y, epochs=2).loss
    )
    labels = torch.randint(0, 2, (2, 10), generator=torch.Generator().manual_seed(1))
    assert (
        esn().fit_bptt(X.tolist(), labels.tolist(), loss="ce").loss
        == esn().fit_bptt(X, labels, loss="ce").loss
    )
    a, b = esn().fit_rls(X.tolist(), Y.tolist()), esn().fit_rls(X, Y)
    torch.testing.assert_close(a.output, b.output, rtol=0, atol=0)
    assert a.batched and b.batched
    assert esn().test(X.tolist(), Y.tolist())[1] == esn().test(X, Y)[1]
    assert esn().test(X.tolist(), Y.tolist(), loss="nrmse")[1] == esn().test(X, Y, loss="nrmse")[1]
    assert lif().fit_eprop(S.tolist(), YS.tolist()).loss == lif().fit_eprop(S, YS).loss


def test_a_list_of_arrays_is_a_list_of_sequences() -> None:
    xs, ys = [X[0].numpy(), X[1].numpy()], [Y[0].numpy(), Y[1].numpy()]
    torch.testing.assert_close(
        esn().fit_ridge(xs, ys, alpha=1e-3).weight,
        esn().fit_ridge(list(X), list(Y), alpha=1e-3).weight,
        rtol=0,
        atol=0,
    )
    assert len(esn().fit_bptt(xs, ys).loss) == 2  # one update per sequence
    assert len(esn().fit_bptt(X.tolist(), Y.tolist()).loss) == 1  # one batch
    net = esn()
    _refused(net, TypeError, r"^Network\.fit_rls: pass one \(T, n\)", lambda: net.fit_rls(xs, ys))
    _refused(net, TypeError, r"^Network\.test: pass one \(T, C\)", lambda: net.test(xs, ys))
    _refused(
        net,
        ValueError,
        r"^Network\.fit_ridge: inputs and targets must both be arrays or both lists of "
        r"sequences of the same length \(a list of arrays or tensors is a list of "
        r"sequences, a nested list of numbers one array\)",
        lambda: net.fit_ridge(X.tolist(), ys),
    )


def test_a_ragged_nested_list_of_numbers_is_refused_with_the_rule() -> None:
    xs = [X[0, :4].tolist(), X[1].tolist()]  # sequences of 4 and 10 steps as lists
    ys = [Y[0, :4].tolist(), Y[1].tolist()]
    for method in ("fit_ridge", "fit_bptt", "fit_rls", "test"):
        net = esn()
        _refused(
            net,
            TypeError,
            rf"^Network\.{method}: (inputs|targets) must be a number, an array of numbers or "
            r"a tensor, got .*; a nested list of numbers is one array, as Network\.run reads "
            r"it: pass a list of sequences as a list of arrays or tensors",
            lambda net=net, method=method: getattr(net, method)(xs, ys),
        )


@pytest.mark.parametrize("method", METHODS)
def test_the_list_rule_is_documented(method: str) -> None:
    doc = " ".join(getattr(rg.Network, method).__doc__.split())
    assert "nested list whose leaves are all numbers (``X.tolist()``) is one array" in doc
