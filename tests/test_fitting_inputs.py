"""The trainers' arguments: every ``Network.fit_*`` and ``Network.test`` converts its
data through the library's array conversion and names itself in every error; bad
settings are refused before anything changes, valid spellings give the same numbers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

# the sweep's networks and data: an ESN and a LIF net holding the state of a batch-2 run
from test_bad_input_sweep import YS, S, X, Y, esn, lif

import rnngraph as rg
from rnngraph.training import BPTT, RLS, EProp, Ridge, get_loss, get_optimizer

METHODS = ("fit_ridge", "fit_rls", "fit_bptt", "fit_eprop", "test")


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
        (
            {"clip_grad_norm": "1"},
            ValueError,
            r"clip_grad_norm must be a Python or NumPy number > 0, got str '1'",
        ),
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
# a continued trainer (trainer=): settings that can change are honoured, the others must
# be the trainer's own
# ---------------------------------------------------------------------------------------


def _bptt_state(t: BPTT) -> dict[str, Any]:
    """What a continued BPTT holds: its settings, its optimiser's rates and state."""
    opt = t.optimizer
    return {
        "settings": (t.lr, t.loss_fn, t.loss_name, t.loss_kwargs, t.update_steps),
        "clip": t.clip_grad_norm,
        "spec": (t.optimizer_spec, t.optimizer_kwargs, opt),
        "lrs": None if opt is None else [g["lr"] for g in opt.param_groups],
        "opt_state": None if opt is None else repr(opt.state_dict()),
    }


def _torch_bptt(schedule: list[dict[str, Any]], optimizer: Any = torch.optim.Adam) -> list:
    """torch's own loop: Adam over the ``esn`` network's parameters, one entry of
    ``schedule`` per call (``lr``, ``loss``, ``clip``, ``window``): every call runs the
    batch ``X`` from the initial state, window by window, one step per window."""
    model = esn().compile()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = optimizer(params, lr=schedule[0]["lr"])
    losses = []
    for s in schedule:
        for g in opt.param_groups:
            g["lr"] = s["lr"]
        model.reset()
        state, win = model.state, s.get("window") or X.shape[1]
        for t0 in range(0, X.shape[1], win):
            with torch.enable_grad():
                rec = model.run(X[:, t0 : t0 + win], state=state)
                loss = s["loss"](rec.output, Y[:, t0 : t0 + win])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if s.get("clip") is not None:
                torch.nn.utils.clip_grad_norm_(params, s["clip"])
            opt.step()
            state = {k: v.detach() for k, v in rec.state.items()}
            losses.append(float(loss.detach()))
    return losses


_MSE = torch.nn.functional.mse_loss
_L1 = torch.nn.functional.l1_loss


def _sum_mse(o: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.mse_loss(o, t, reduction="sum")


@pytest.mark.parametrize(
    ("first", "then", "schedule"),
    [
        ({"lr": 1e-2}, {"lr": 5e-2}, [{"lr": 1e-2, "loss": _MSE}, {"lr": 5e-2, "loss": _MSE}]),
        ({"lr": 1e-2}, {"loss": "l1"}, [{"lr": 1e-2, "loss": _MSE}, {"lr": 1e-2, "loss": _L1}]),
        (
            {"lr": 1e-2},
            {"loss_kwargs": {"reduction": "sum"}},
            [{"lr": 1e-2, "loss": _MSE}, {"lr": 1e-2, "loss": _sum_mse}],
        ),
        (
            {"lr": 1e-2, "loss": "mse", "loss_kwargs": {"reduction": "sum"}},
            {"loss": "mse"},  # a loss given alone takes its default keywords
            [{"lr": 1e-2, "loss": _sum_mse}, {"lr": 1e-2, "loss": _MSE}],
        ),
        (
            {"lr": 1e-2},
            {"loss": lambda o, t: (o - t).abs().mean()},
            [{"lr": 1e-2, "loss": _MSE}, {"lr": 1e-2, "loss": _L1}],
        ),
        (
            {"lr": 1e-2},
            {"update_steps": 4},
            [{"lr": 1e-2, "loss": _MSE}, {"lr": 1e-2, "loss": _MSE, "window": 4}],
        ),
        (
            {"lr": 1e-2, "update_steps": 4},
            {"update_steps": None},  # None given: a whole sequence per update
            [{"lr": 1e-2, "loss": _MSE, "window": 4}, {"lr": 1e-2, "loss": _MSE}],
        ),
        (
            {"lr": 1e-2},
            {"clip_grad_norm": 1e-3},
            [{"lr": 1e-2, "loss": _MSE}, {"lr": 1e-2, "loss": _MSE, "clip": 1e-3}],
        ),
        (
            {"lr": 1e-2, "clip_grad_norm": 1e-3},
            {"clip_grad_norm": None},
            [{"lr": 1e-2, "loss": _MSE, "clip": 1e-3}, {"lr": 1e-2, "loss": _MSE}],
        ),
        (  # left out, a setting keeps the trainer's
            {"lr": 5e-2, "update_steps": 4, "clip_grad_norm": 1e-3, "loss": "l1"},
            {},
            [{"lr": 5e-2, "loss": _L1, "window": 4, "clip": 1e-3}] * 2,
        ),
    ],
)
def test_a_continued_bptt_takes_the_settings_that_can_change(
    first: dict, then: dict, schedule: list
) -> None:
    """Each setting given with trainer= holds from that call on: the losses are those of
    torch's own Adam loop whose setting changes at that point (and not those of one whose
    setting stays)."""
    net = esn()
    a = net.fit_bptt(X, Y, optimizer="adam", epochs=2, **first)
    b = net.fit_bptt(X, Y, optimizer="adam", epochs=2, trainer=a.trainer, **then)
    assert b.trainer is a.trainer
    ref = _torch_bptt([schedule[0]] * 2 + [schedule[1]] * 2)
    torch.testing.assert_close(torch.tensor(a.loss + b.loss), torch.tensor(ref))
    if then:  # the change shows in the losses
        stays = _torch_bptt([schedule[0]] * 4)
        got = a.loss + b.loss
        assert len(got) != len(stays) or not torch.allclose(torch.tensor(got), torch.tensor(stays))
    if "lr" in then:
        assert a.trainer.lr == then["lr"]
        assert [g["lr"] for g in a.trainer.optimizer.param_groups] == [then["lr"]]


def test_a_continued_bptt_takes_its_own_optimizer_spelled_out() -> None:
    """The trainer's optimiser by name, class or instance, and its optimizer_kwargs, given
    with trainer=, are the same call as leaving them out."""
    kw = {"optimizer_kwargs": {"betas": (0.8, 0.99)}, "lr": 1e-2}
    a, b = esn(), esn()
    ta = a.fit_bptt(X, Y, optimizer="adam", **kw).trainer
    tb = b.fit_bptt(X, Y, optimizer="adam", **kw).trainer
    for spelled in (
        {"optimizer": "adam", **kw},
        {"optimizer": torch.optim.Adam, "optimizer_kwargs": {"betas": (0.8, 0.99)}},
        {"optimizer": ta.optimizer},
    ):
        ra = a.fit_bptt(X, Y, trainer=ta, **spelled)
        rb = b.fit_bptt(X, Y, trainer=tb)
        assert ra.loss == rb.loss
    c = esn()
    opt = torch.optim.SGD(c.model.parameters(), lr=0.1)
    tc = c.fit_bptt(X, Y, optimizer=opt).trainer
    c.fit_bptt(X, Y, optimizer=opt, lr=0.1, trainer=tc)  # its own instance and rate
    assert tc.optimizer is opt and opt.param_groups[0]["lr"] == 0.1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"optimizer": "sgd"},
            r"optimizer='sgd', but the trainer continued here \(trainer=\) has "
            r"optimizer='adam', and it built the trainer's optimiser, whose state carries "
            r"over; pass the trainer's own value or leave optimizer out, or start a new "
            r"trainer \(a call without trainer=\) to change it",
        ),
        ({"optimizer": torch.optim.AdamW}, r"optimizer=<class .*AdamW'>, but the trainer"),
        ({"optimizer": "adamx"}, r"optimizer='adamx', but the trainer continued here"),
        (
            {"optimizer_kwargs": {"betas": (0.5, 0.9)}},
            r"optimizer_kwargs=\{'betas': \(0\.5, 0\.9\)\}, but the trainer continued here "
            r"\(trainer=\) has optimizer_kwargs=\{\}, and they built",
        ),
        (
            {"optimizer": "adam", "optimizer_kwargs": {"amsgrad": True}},
            r"optimizer_kwargs=\{'amsgrad': True\}, but the trainer",
        ),
        ({"lr": -1.0}, r"BPTT: lr must be > 0, got -1\.0"),
        ({"loss": "mae"}, r"BPTT: unknown loss 'mae'"),
        ({"update_steps": 0}, r"BPTT: update_steps must be an int >= 1, got 0"),
        ({"clip_grad_norm": 0.0}, r"BPTT: clip_grad_norm must be > 0, got 0\.0"),
        ({"lr": 0.5, "epochs": 0}, r"epochs must be an int >= 1, got 0"),
        ({"lr": 0.5, "targets": Y[:, :5]}, r"targets of shape \(2, 5, 2\) do not fit inputs"),
        (  # the data are checked against the loss the call gives
            {"lr": 0.5, "loss": "ce", "targets": torch.full((2, 10), 5)},
            r"class index 5 is out of range: the output node 'out' has 2 units",
        ),
    ],
)
def test_a_continued_bptt_refuses_and_keeps_the_trainer(kwargs: dict, match: str) -> None:
    """A setting that fixes the trainer must be its own; any refused call leaves the
    network and the trainer (settings, optimiser rates and state) as they were."""
    net = esn()
    trainer = net.fit_bptt(X, Y, optimizer="adam", lr=1e-2).trainer
    before = _bptt_state(trainer)
    args = {"inputs": X, "targets": Y, **kwargs}
    _refused(
        net,
        (ValueError, TypeError),
        r"^Network\.fit_bptt: " + match,
        lambda: net.fit_bptt(trainer=trainer, **args),
    )
    assert _bptt_state(trainer) == before


def test_a_continued_trainer_that_fails_in_training_keeps_its_settings() -> None:
    """An error inside the updates (here the user's loss) undoes the settings the call
    gave the trainer."""

    def broken(o: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("no loss")

    net = esn()
    trainer = net.fit_bptt(X, Y, optimizer="adam", lr=1e-2).trainer
    before = _bptt_state(trainer)
    with pytest.raises(RuntimeError, match="no loss"):
        net.fit_bptt(X, Y, trainer=trainer, lr=0.5, loss=broken, update_steps=3)
    assert _bptt_state(trainer) == before
    fresh = BPTT(lr=1e-2)  # an optimiser built during the failed call is dropped again
    with pytest.raises(RuntimeError, match="no loss"):
        net.fit_bptt(X, Y, trainer=fresh, lr=0.5, loss=broken)
    assert fresh.lr == 1e-2 and fresh.optimizer is None


# ---------------------------------------------------------------------------------------
# lr with an optimizer instance: the instance's own rate, a different lr refused
# ---------------------------------------------------------------------------------------


def test_lr_with_an_optimizer_instance_must_be_its_own() -> None:
    net = esn()
    opt = torch.optim.SGD(net.model.parameters(), lr=0.1)
    _refused(
        net,
        ValueError,
        r"^Network\.fit_bptt: BPTT: lr=0\.2, but the optimizer instance \(SGD\) has lr=0\.1 "
        r"in its param_groups; an instance brings its own learning rate: leave lr out, set "
        r"it in the optimizer's constructor, or pass the optimizer by name or class",
        lambda: net.fit_bptt(X, Y, optimizer=opt, lr=0.2),
    )
    assert opt.param_groups[0]["lr"] == 0.1
    with pytest.raises(ValueError, match=r"^BPTT: lr=0\.001, but the optimizer instance"):
        BPTT(optimizer=opt, lr=1e-3)
    with pytest.raises(ValueError, match=r"^EProp: lr=0\.5, but the optimizer instance"):
        EProp(optimizer=opt, lr=0.5)
    with pytest.raises(ValueError, match=r"^get_optimizer: lr=0\.5, but the optimizer"):
        get_optimizer(opt, [], 0.5)
    assert BPTT(optimizer=opt).lr == 0.1 and EProp(optimizer=opt, lr=0.1).lr == 0.1
    assert get_optimizer(opt, [], None) is opt and BPTT().lr == 1e-3 and EProp().lr == 1e-3
    # groups of different rates: no single lr is the instance's
    params = [p for p in net.model.parameters() if p.requires_grad]
    two = torch.optim.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.3}], lr=0.1)
    assert BPTT(optimizer=two).lr is None
    assert "lr=<per param_group>" in repr(BPTT(optimizer=two))
    with pytest.raises(ValueError, match=r"has lr=\[0\.1, 0\.3\] in its param_groups"):
        BPTT(optimizer=two, lr=0.1)


def test_an_optimizer_instance_trains_with_its_rate_and_takes_lr_when_continued() -> None:
    """A fresh fit with an instance trains at the instance's rate (torch's own loop); with
    trainer=, lr sets the rate of its param_groups from that call on."""
    net = esn()
    params = [p for p in net.model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.05)
    a = net.fit_bptt(X, Y, optimizer=opt, loss="mse", epochs=2)
    b = net.fit_bptt(X, Y, optimizer=opt, lr=0.2, trainer=a.trainer, epochs=2)
    ref = _torch_bptt(
        [{"lr": 0.05, "loss": _MSE}] * 2 + [{"lr": 0.2, "loss": _MSE}] * 2, torch.optim.SGD
    )
    torch.testing.assert_close(torch.tensor(a.loss + b.loss), torch.tensor(ref))
    assert opt.param_groups[0]["lr"] == 0.2 and a.trainer.lr == 0.2
    t = BPTT(optimizer=torch.optim.SGD(params, lr=0.05))
    t.set_lr(0.3)  # before the trainer adopts its instance
    assert t.optimizer_spec.param_groups[0]["lr"] == 0.3
    with pytest.raises(ValueError, match=r"^BPTT\.set_lr: lr must be > 0, got 0"):
        t.set_lr(0)
    with pytest.raises(ValueError, match=r"^EProp\.set_lr: lr must be finite, got inf"):
        EProp().set_lr(float("inf"))


# ---------------------------------------------------------------------------------------
# e-prop: the same rule for a continued trainer; a seed only for a drawn feedback matrix
# ---------------------------------------------------------------------------------------


def _eprop_state(t: EProp) -> dict[str, Any]:
    opt = t.optimizer
    return {
        "settings": (t.lr, t.reg_rate, t.reg_weight, t.reduction, t.task, t.feedback, t.seed),
        "spec": (t.optimizer_spec, t.optimizer_kwargs, opt),
        "feedback": None if t.feedback_weights is None else t.feedback_weights.clone(),
        "lrs": None if opt is None else [g["lr"] for g in opt.param_groups],
        "opt_state": None if opt is None else repr(opt.state_dict()),
    }


def _assert_same_eprop(a: dict, b: dict) -> None:
    fa, fb = a.pop("feedback"), b.pop("feedback")
    assert a == b
    assert (fa is None and fb is None) or torch.equal(fa, fb)


def _torch_eprop(schedule: list[dict[str, Any]]) -> list[float]:
    """torch's own loop: Adam over the parameters e-prop trains, ``.grad`` from
    ``EProp.accumulate`` of a trainer with the entry's settings (random feedback, seed 3,
    the same matrix), the entry's ``lr`` on every param_group."""
    net = lif()
    model = net.compile()
    opt, losses = None, []
    for s in schedule:
        s = dict(s)
        lr = s.pop("lr")
        grader = EProp(feedback="random", seed=3, **s)
        if opt is None:
            names = set(grader.compute_gradients(net, S, YS))
            opt = torch.optim.Adam([p for n, p in model.named_parameters() if n in names], lr)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        losses.append(grader.accumulate(net, S, YS))
        opt.step()
    return losses


@pytest.mark.parametrize(
    ("then", "second"),
    [
        ({"lr": 5e-2}, {"lr": 5e-2}),
        ({"reg_rate": 20.0, "reg_weight": 0.5}, {"lr": 1e-2, "reg_rate": 20.0, "reg_weight": 0.5}),
        ({"reg_rate": 20.0}, {"lr": 1e-2, "reg_rate": 20.0, "reg_weight": 1.0}),
        ({"reduction": "sum"}, {"lr": 1e-2, "reduction": "sum"}),
        ({}, {"lr": 1e-2}),
    ],
)
def test_a_continued_eprop_takes_the_settings_that_can_change(then: dict, second: dict) -> None:
    net = lif()
    a = net.fit_eprop(S, YS, feedback="random", seed=3, lr=1e-2, epochs=2)
    b = net.fit_eprop(S, YS, feedback="random", seed=3, trainer=a.trainer, epochs=2, **then)
    ref = _torch_eprop([{"lr": 1e-2}] * 2 + [second] * 2)
    torch.testing.assert_close(torch.tensor(a.loss + b.loss), torch.tensor(ref))
    if then:  # the change shows in the losses
        stays = _torch_eprop([{"lr": 1e-2}] * 4)
        assert not torch.allclose(torch.tensor(a.loss + b.loss), torch.tensor(stays))
    if "lr" in then:
        assert [g["lr"] for g in a.trainer.optimizer.param_groups] == [then["lr"]]


def test_a_continued_eprop_regulariser_can_change_and_end() -> None:
    net = lif()
    a = net.fit_eprop(S, YS, feedback="random", seed=3, lr=1e-2, reg_rate=20.0, reg_weight=0.5)
    t = a.trainer
    net.fit_eprop(S, YS, trainer=t, reg_rate=10.0)  # the trainer's weight stays
    assert (t.reg_rate, t.reg_weight) == (10.0, 0.5)
    b = net.fit_eprop(S, YS, trainer=t, reg_rate=None)  # ends it
    assert t.reg_rate is None and t.reg_weight == 0.0
    ref = _torch_eprop(
        [
            {"lr": 1e-2, "reg_rate": 20.0, "reg_weight": 0.5},
            {"lr": 1e-2, "reg_rate": 10.0, "reg_weight": 0.5},
            {"lr": 1e-2},
        ]
    )
    torch.testing.assert_close(torch.tensor(a.loss + [t.losses[1]] + b.loss), torch.tensor(ref))
    _refused(
        net,
        ValueError,
        r"^Network\.fit_eprop: EProp: reg_weight needs reg_rate=",
        lambda: net.fit_eprop(S, YS, trainer=t, reg_weight=2.0),
    )


def test_a_continued_eprop_takes_its_own_fixed_settings_spelled_out() -> None:
    a, b = lif(), lif()
    kw = {"feedback": "random", "seed": 3, "optimizer_kwargs": {"betas": (0.8, 0.99)}}
    ta = a.fit_eprop(S, YS, **kw).trainer
    tb = b.fit_eprop(S, YS, **kw).trainer
    own = {**kw, "task": "regression", "optimizer": torch.optim.Adam}
    assert a.fit_eprop(S, YS, trainer=ta, **own).loss == b.fit_eprop(S, YS, trainer=tb).loss
    assert (
        a.fit_eprop(S, YS, trainer=ta, optimizer="adam", task=None).loss
        == b.fit_eprop(S, YS, trainer=tb).loss
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"feedback": "symmetric"},
            r"feedback='symmetric', but the trainer continued here \(trainer=\) has "
            r"feedback='random', and it fixes the trainer's feedback matrix; pass the "
            r"trainer's own value or leave feedback out, or start a new trainer",
        ),
        ({"seed": 4}, r"seed=4, but the trainer continued here \(trainer=\) has seed=3, and it"),
        ({"seed": None}, r"seed=None, but the trainer continued here \(trainer=\) has seed=3"),
        ({"seed": 2.5}, r"EProp: seed must be an int, got 2\.5"),
        (
            {"task": "classification"},
            r"task='classification', but the trainer continued here \(trainer=\) has "
            r"task='regression', and it fixes what the targets and the loss mean",
        ),
        ({"optimizer": "sgd"}, r"optimizer='sgd', but the trainer continued here"),
        ({"optimizer_kwargs": {"amsgrad": True}}, r"optimizer_kwargs=\{'amsgrad': True\}, but"),
        ({"lr": 0.0}, r"EProp: lr must be > 0, got 0\.0"),
        ({"reduction": "avg"}, r"EProp: unknown reduction 'avg'"),
        ({"reg_rate": -1.0}, r"EProp: reg_rate must be >= 0"),
        ({"lr": 0.5, "targets": YS[:, :5]}, r"regression targets must be"),
    ],
)
def test_a_continued_eprop_refuses_and_keeps_the_trainer(kwargs: dict, match: str) -> None:
    net = lif()
    trainer = net.fit_eprop(S, YS, feedback="random", seed=3, lr=1e-2).trainer
    before = _eprop_state(trainer)
    args = {"inputs": S, "targets": YS, **kwargs}
    _refused(
        net,
        (ValueError, TypeError),
        r"^Network\.fit_eprop: " + match,
        lambda: net.fit_eprop(trainer=trainer, **args),
    )
    _assert_same_eprop(_eprop_state(trainer), before)


def test_a_seed_with_symmetric_feedback_is_refused() -> None:
    """Symmetric feedback draws no matrix: a seed would have no effect."""
    match = (
        r"EProp: seed=1 has no effect with feedback='symmetric', whose feedback matrix is "
        r"the readout's transpose \(nothing is drawn\); leave seed out, or pass "
        r"feedback='random' or 'adaptive'"
    )
    with pytest.raises(ValueError, match="^" + match):
        EProp(seed=1)
    with pytest.raises(ValueError, match=r"^EProp: seed=0 has no effect"):
        EProp(feedback="symmetric", seed=0)
    net = lif()
    _refused(
        net, ValueError, r"^Network\.fit_eprop: " + match, lambda: net.fit_eprop(S, YS, seed=1)
    )
    sym = net.fit_eprop(S, YS, seed=None).trainer  # None: no seed
    _refused(
        net,
        ValueError,
        r"^Network\.fit_eprop: EProp: seed=1 has no effect",
        lambda: net.fit_eprop(S, YS, trainer=sym, seed=1),
    )
    assert EProp(feedback="adaptive", seed=1).seed == 1


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
    recs, mse = net.test(xs, ys)  # a list run from the initial state, scored over all steps
    net.reset()
    assert len(recs) == 2 and mse == pytest.approx(net.test(X, Y)[1], rel=1e-6)
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
    assert "nested list of numbers (``X.tolist()``) is one array, as in :meth:`run`" in doc


def test_loss_masks_follow_the_list_rule() -> None:
    """A nested list of numbers is one mask, as for the data; a list of batches takes a list
    of as many masks (arrays or tensors)."""
    mask = (torch.arange(12) >= 6).float().expand(2, 12)
    a = lif().fit_eprop(S, YS, loss_mask=mask.tolist()).loss
    assert a == lif().fit_eprop(S, YS, loss_mask=mask).loss
    two = lif().fit_eprop([S, S], [YS, YS], loss_mask=[mask, mask]).loss
    assert len(two) == 2 and two[0] == a[0]
    with pytest.raises(ValueError, match=r"Network\.fit_eprop: with lists of batches, loss_mask"):
        lif().fit_eprop([S, S], [YS, YS], loss_mask=mask.tolist())


def test_optimizer_kwargs_compare_lists_and_tuples_alike() -> None:
    first = esn().fit_bptt(X, Y, optimizer="adam", optimizer_kwargs={"betas": (0.8, 0.9)})
    net = esn()
    net.fit_bptt(
        X, Y, optimizer="adam", optimizer_kwargs={"betas": [0.8, 0.9]}, trainer=first.trainer
    )
    with pytest.raises(ValueError, match=r"Network\.fit_bptt: optimizer_kwargs="):
        net.fit_bptt(X, Y, optimizer_kwargs={"betas": [0.8, 0.99]}, trainer=first.trainer)


def test_a_continued_trainer_reads_lr_none_and_seed_zero_as_its_own() -> None:
    """``lr=None`` with ``trainer=`` keeps the trainer's rate (an optimizer instance's own);
    a random-feedback trainer built without a seed has the matrix of seed 0, so ``seed=0``
    names it; any other seed is refused."""
    net = esn()
    opt = torch.optim.SGD([p for p in net.compile().parameters()], lr=0.05)
    first = net.fit_bptt(X, Y, optimizer=opt)
    net.fit_bptt(X, Y, optimizer=opt, lr=None, trainer=first.trainer)
    assert opt.param_groups[0]["lr"] == 0.05 and first.trainer.lr == 0.05
    spiking = lif()
    rec = spiking.fit_eprop(S, YS, feedback="random")
    spiking.fit_eprop(S, YS, feedback="random", seed=0, trainer=rec.trainer)
    with pytest.raises(ValueError, match=r"Network\.fit_eprop: seed=1"):
        spiking.fit_eprop(S, YS, feedback="random", seed=1, trainer=rec.trainer)
    sym = spiking.fit_eprop(S, YS).trainer  # symmetric: no seed at all
    with pytest.raises(ValueError, match=r"Network\.fit_eprop: .*seed=0 has no effect"):
        spiking.fit_eprop(S, YS, seed=0, trainer=sym)
