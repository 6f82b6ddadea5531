"""``Network.fit_lms``: online least-mean-squares readout training, against the delta rule
written out in numpy (closed and open loop, both feedback orders, a bias, a batch, a
learning-rate schedule), and its refusals."""

import math

import numpy as np
import pytest
import torch

import rnngraph as rg
from rnngraph import _native
from rnngraph.training import LMS

F64 = torch.float64


def _lms_reference(
    case, rates, every=1, washout=0, after=False, closed=True, bias=False, start=None
):
    """LMS written out in numpy for ``B`` trials at once: ``x(t) = (1-lr) x + lr tanh(W x +
    W_in u(t) + W_fb z(t-1))`` (no ``W_fb`` term unless ``closed``), ``z(t) = W_out x(t) +
    b``; on update steps ``e = z - y``, ``W_out -= eta sum_B e x^T``, ``b -= eta sum_B e``,
    with the next rate of ``rates`` per update; ``after``: the step passes on the output of
    the updated weights; ``start``: the initial ``(W_out, b, x)`` (zeros by default). Returns
    the outputs passed on ``(B, T, n_out)``, ``W_out``, ``b`` and the last state ``x``."""
    W, W_in, W_fb, lr, u, y = (case[k] for k in ("W", "W_in", "W_fb", "lr", "u", "y"))
    batch, steps, n_out = y.shape
    x, z = np.zeros((batch, W.shape[0])), np.zeros((batch, n_out))
    w_out, b = np.zeros((n_out, W.shape[0])), np.zeros(n_out)
    if start is not None:
        w_out, b, x = (a.copy() for a in start)
    outs, k = np.empty_like(y), 0
    for t in range(steps):
        fb = z @ W_fb.T if closed else 0.0
        x = (1 - lr) * x + lr * np.tanh(x @ W.T + u[:, t] @ W_in.T + fb)
        z = x @ w_out.T + b
        if t >= washout and (t - washout) % every == 0:
            e = z - y[:, t]
            w_out -= rates[k] * e.T @ x
            if bias:
                b -= rates[k] * e.sum(0)
            k += 1
            if after:
                z = x @ w_out.T + b
        outs[:, t] = z
    return outs, w_out, b, x


def _case(batch=1, n=30, steps=240, seed=3):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n, n)) * 0.9 / math.sqrt(n)
    W_in, W_fb = rng.uniform(-1, 1, (n, 1)), rng.uniform(-0.5, 0.5, (n, 1))
    phase = rng.uniform(0, 2 * np.pi, (batch, 1, 1))
    t = np.arange(steps)[None, :, None]
    u, y = np.sin(t / 5.0 + phase), 0.8 * np.cos(t / 5.0 + phase) + 0.3
    return {"W": W, "W_in": W_in, "W_fb": W_fb, "lr": 0.5, "u": u, "y": y}


def _net(case):
    n = case["W"].shape[0]
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", "leaky_tanh", n=n, lr=case["lr"], bias=0.0)
    net.add_edge("in", "res", weights=case["W_in"])
    net.add_edge("res", "res", weights=case["W"], feedback=True)
    return net


def _data(case, batch):
    u, y = case["u"], case["y"]
    return (u, y) if batch > 1 else (u[0], y[0])


@pytest.mark.parametrize("closed", [True, False], ids=["closed-loop", "open-loop"])
@pytest.mark.parametrize("order", ["before", "after"])
@pytest.mark.parametrize("bias", [False, True], ids=["no-bias", "bias"])
def test_fit_lms_equals_the_delta_rule_written_in_numpy(closed, order, bias):
    """In the loop (the readout fed back) and replayed (a readout that feeds nothing), with
    updates every 2 steps after a washout; the outputs passed on and the final weights."""
    case = _case()
    net = _net(case)
    fb = case["W_fb"] if closed else None
    u, y = _data(case, 1)
    kw = {"update_steps": 2, "washout": 10, "bias": bias, "feedback_order": order}
    rec = net.fit_lms(u, y, learning_rate=0.05, feedback_weights=fb, **kw)
    rates = np.full(200, 0.05)
    ref, w_ref, b_ref, _ = _lms_reference(case, rates, 2, 10, order == "after", closed, bias)
    np.testing.assert_allclose(rec.output.numpy(), ref[0], rtol=0, atol=1e-10)
    edge = net.get_edge("res", "readout")
    np.testing.assert_allclose(edge.weight.detach().numpy(), w_ref, rtol=0, atol=1e-10)
    if bias:
        np.testing.assert_allclose(edge.bias.detach().numpy(), b_ref, rtol=0, atol=1e-10)
    assert rec.trainer.n_updates == len(range(10, 240, 2))


def test_fit_lms_learns_the_task():
    """Over 3000 steps the squared error falls to a small fraction of the first steps'."""
    case = _case(steps=3000)
    u, y = _data(case, 1)
    rec = _net(case).fit_lms(u, y, learning_rate=0.05, bias=True)
    losses = rec.loss.numpy()
    assert losses[-500:].mean() < 0.05 * losses[:100].mean()


def test_fit_lms_sums_the_steps_of_a_batch():
    """Each trial of a batch adds its own gradient step, taken from the same weights."""
    case = _case(batch=3)
    net = _net(case)
    u, y = _data(case, 3)
    rec = net.fit_lms(u, y, learning_rate=0.02, feedback_weights=case["W_fb"], bias=True)
    ref, w_ref, *_ = _lms_reference(case, np.full(240, 0.02), bias=True)
    np.testing.assert_allclose(rec.output.numpy(), ref, rtol=0, atol=1e-10)
    weight = net.get_edge("res", "readout").weight.detach().numpy()
    np.testing.assert_allclose(weight, w_ref, rtol=0, atol=1e-10)


def test_fit_lms_follows_a_learning_rate_schedule():
    case = _case()
    u, y = _data(case, 1)
    rates = 0.1 / (1.0 + np.arange(115) / 20.0)  # one per update: range(10, 240, 2)
    net = _net(case)
    rec = net.fit_lms(u, y, learning_rate=rates, update_steps=2, washout=10, feedback_order="after")
    ref, w_ref, *_ = _lms_reference(case, rates, 2, 10, after=True, closed=False)
    np.testing.assert_allclose(rec.output.numpy(), ref[0], rtol=0, atol=1e-10)
    weight = net.get_edge("res", "readout").weight.detach().numpy()
    np.testing.assert_allclose(weight, w_ref, rtol=0, atol=1e-10)
    constant, *_ = _lms_reference(case, np.full(115, rates[0]), 2, 10, after=True, closed=False)
    assert np.abs(constant - ref).max() > 1e-3  # the schedule shows


def test_a_second_fit_lms_continues_from_the_weights():
    """LMS keeps nothing but the weights: a second call trains on from the first call's
    weights and the state the first call left (as every run continues)."""
    case = _case()
    u, y = _data(case, 1)
    net = _net(case)
    net.fit_lms(u, y, learning_rate=0.05, bias=True)
    rec = net.fit_lms(u, y, learning_rate=0.05, bias=True, add_readout_node=False)
    rates = np.full(240, 0.05)
    _, *first = _lms_reference(case, rates, closed=False, bias=True)
    ref, w_ref, *_ = _lms_reference(case, rates, closed=False, bias=True, start=first)
    np.testing.assert_allclose(rec.output.numpy(), ref[0], rtol=0, atol=1e-10)
    weight = net.get_edge("res", "readout").weight.detach().numpy()
    np.testing.assert_allclose(weight, w_ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    ("rate", "error", "match"),
    [
        (0.0, ValueError, "learning_rate must be finite and > 0"),
        (float("nan"), ValueError, "learning_rate must be finite and > 0"),
        ("fast", TypeError, "learning_rate must be a number or a 1-D array"),
        (np.ones((2, 2)), ValueError, "schedule must be 1-D"),
        (np.array([0.1, -0.1]), ValueError, "every learning rate of the schedule"),
        (np.full(7, 0.1), ValueError, "schedule has 7 values, the call makes 10 updates"),
    ],
)
def test_fit_lms_refuses_a_bad_learning_rate_and_changes_nothing(rate, error, match):
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", "leaky_tanh", n=5, lr=0.5)
    net.add_edge("in", "res", weights=np.ones((5, 1)))
    u, y = np.zeros((10, 1)), np.zeros((10, 1))
    with pytest.raises(error, match=f"Network.fit_lms: .*{match}"):
        net.fit_lms(u, y, learning_rate=rate)
    assert sorted(net.graph.nodes) == ["in", "res"]  # no readout added


def test_fit_lms_refuses_what_it_does_not_take():
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", "leaky_tanh", n=5, lr=0.5)
    net.add_edge("in", "res", weights=np.ones((5, 1)))
    u, y = np.zeros((10, 1)), np.zeros((10, 1))
    with pytest.raises(TypeError, match="fit_lms.*alpha"):
        net.fit_lms(u, y, alpha=1.0)  # an RLS setting
    with pytest.raises(ValueError, match="fit_lms: feedback_order='after' with teacher_forcing"):
        net.fit_lms(u, y, feedback_order="after", teacher_forcing=True)
    with pytest.raises(ValueError, match="LMS: every must be"):
        LMS(0.1, every=0)
    assert sorted(net.graph.nodes) == ["in", "res"]


def test_fit_lms_takes_a_0d_tensor_rate_and_refuses_a_bool():
    case = _case()
    u, y = _data(case, 1)
    net = _net(case)
    net.fit_lms(u, y, learning_rate=torch.tensor(0.05, dtype=F64))
    ref, w_ref, *_ = _lms_reference(case, np.full(240, 0.05), closed=False)
    weight = net.get_edge("res", "readout").weight.detach().numpy()
    np.testing.assert_allclose(weight, w_ref, rtol=0, atol=1e-10)
    with pytest.raises(TypeError, match="learning_rate must be a number"):
        LMS(True)


def test_the_native_lms_update_equals_the_torch_update():
    # batch 1 on the CPU takes the C update; the same numbers as torch's, weights, bias and
    # the a-priori errors, over a run of updates with a schedule
    g = torch.Generator().manual_seed(4)
    r = torch.randn(50, 1, 30, generator=g, dtype=torch.float64)
    y = torch.randn(50, 1, 3, generator=g, dtype=torch.float64)
    runs = []
    for native in (True, False):
        _native.set_enabled(native)
        try:
            lms = rg.training.LMS(learning_rate=np.linspace(0.05, 0.01, 50))
            lms.expect_updates("test", 50)
            w, b = torch.zeros(3, 30, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
            errs = torch.stack([lms.update(w, b, r[t], y[t]) for t in range(50)])
            runs.append((w, b, errs, lms.n_updates))
        finally:
            _native.set_enabled(True)
    (w1, b1, e1, n1), (w0, b0, e0, n0) = runs
    assert n1 == n0 == 50 and float(w1.abs().max()) > 0.05
    torch.testing.assert_close(w1, w0, rtol=0, atol=1e-14)
    torch.testing.assert_close(b1, b0, rtol=0, atol=1e-14)
    torch.testing.assert_close(e1, e0, rtol=0, atol=1e-14)


@pytest.mark.parametrize("bias", [False, True], ids=["no-bias", "bias"])
def test_updates_at_every_step_replay_in_one_call_with_the_numpy_numbers(bias, monkeypatch):
    """An open-loop readout updated at every step after a washout, with a rate schedule:
    the updates replay in one native call per chunk (``LMS.replay``); outputs, weights,
    bias and the per-update losses equal the delta rule in numpy, over chunks of 70 steps
    too, and the same run with native code off (one torch update per step)."""
    from rnngraph.network import _fitting

    case = _case()
    u, y = _data(case, 1)
    rates = 0.08 / (1.0 + np.arange(225) / 50.0)  # range(15, 240)
    ref, w_ref, b_ref, _ = _lms_reference(case, rates, 1, 15, closed=False, bias=bias)
    err = ref[0, 15:] - y[15:]
    calls = []
    real_run = _native.lms_run

    def counted(*args):
        out = real_run(*args)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(_native, "lms_run", counted)
    for chunk in (None, 70):
        for native in (True, False):
            if chunk is not None:
                monkeypatch.setattr(_fitting, "_REPLAY_ELEMENTS", chunk * 30)
            _native.set_enabled(native)
            try:
                net = _net(case)
                rec = net.fit_lms(u, y, learning_rate=rates, washout=15, bias=bias)
            finally:
                _native.set_enabled(True)
            edge = net.get_edge("res", "readout")
            np.testing.assert_allclose(rec.output.numpy(), ref[0], rtol=0, atol=1e-10)
            np.testing.assert_allclose(edge.weight.detach().numpy(), w_ref, rtol=0, atol=1e-10)
            if bias:
                np.testing.assert_allclose(edge.bias.detach().numpy(), b_ref, atol=1e-10)
            np.testing.assert_allclose(rec.loss.numpy(), (err**2).mean(1), rtol=1e-9)
            assert rec.trainer.n_updates == 225
    assert sum(calls) == 1 + 4  # one call for the whole run, one per chunk of 70 steps
