"""Ensembles of echo-state networks (``rg.ReservoirEnsemble``) and random searches over them
(``rg.hyper.search``).

References: every member against the network a user writes from the README with the public
initialisers (``rg.input_weights``, ``rg.recurrent_weights``, ``rg.bias_weights``,
``Network.fit_ridge``, ``Network.run``), and against a NumPy echo-state network with a NumPy
ridge solve on the same weights.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

import rnngraph as rg

pytestmark = pytest.mark.skipif(
    not (shutil.which("cc") or shutil.which("gcc")), reason="no C compiler: no native loop"
)

F64 = torch.float64
N = 40
HYPER = {
    "sr": [0.9, 0.5, 1.1, 0.7, 0.9, 0.3, 0.8, 0.95, 0.6, 1.0, 0.4],
    "lr": [0.3, 0.9, 0.5, 0.2, 0.7, 1.0, 0.4, 0.3, 0.6, 0.8, 0.5],
    "input_scaling": [1.0, 0.5, 1.5, 1.0, 0.2, 1.0, 2.0, 0.8, 1.2, 0.6, 1.0],
    "seed": [1, 2, 1, 3, 1, 2, 1, 1, 1, 3, 1],  # seed 1: 7 members, rows of one loop
}
ALPHA = [1e-6, 1e-4, 1e-5, 1e-6, 1e-3, 1e-6, 1e-5, 1e-6, 1e-4, 1e-5, 1e-6]


def series(steps: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    s = rg.datasets.mackey_glass(steps + 1)
    s = 2 * (s - s.min()) / (s.max() - s.min()) - 1
    return s[:-1], s[1:]


def user_network(e: int, bias: bool, dtype=F64) -> rg.Network:
    """Member ``e`` as a user writes it with the public initialisers."""
    p = {k: v[e] for k, v in HYPER.items()}
    gen = torch.Generator().manual_seed(p["seed"])
    w_in = rg.input_weights(
        N, 1, connectivity=0.2, scaling=p["input_scaling"], seed=gen, dtype=dtype
    )
    w = rg.recurrent_weights(N, p["sr"], connectivity=0.1, seed=gen, dtype=dtype)
    b = rg.bias_weights(N, connectivity=0.2, scaling=0.5, seed=gen, dtype=dtype) if bias else 0.0
    net = rg.Network(dt=1.0, dtype=dtype)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", "leaky_tanh", n=N, lr=p["lr"], bias=b)
    net.add_edge("in", "res", weights=w_in)
    net.add_edge("res", "res", weights=w, feedback=True)
    return net


def ensemble(bias: bool = False, dtype=F64) -> rg.ReservoirEnsemble:
    extra = {"bias_connectivity": 0.2, "bias_scaling": 0.5} if bias else {}
    return rg.ReservoirEnsemble(N, 1, **HYPER, dtype=dtype, **extra)


@pytest.mark.parametrize("bias", [False, True])
def test_every_member_is_the_network_a_user_writes(bias):
    x, y = series()
    ens = ensemble(bias).fit_ridge(x[:300], y[:300], alpha=ALPHA, washout=50)
    pred = ens.run(x[300:])  # continues every member's state
    assert pred.shape == (11, 200, 1)
    for e in range(len(ens)):
        net = user_network(e, bias)
        net.fit_ridge(x[:300], y[:300], alpha=ALPHA[e], washout=50)
        w = net.get_edge("res", "readout").weight.detach()
        # ridge at alpha 1e-6 on 40 correlated units: rounding of the states shows in W
        torch.testing.assert_close(ens.weight[e], w, rtol=1e-5, atol=1e-6)
        out = net.run(x[300:]).output
        torch.testing.assert_close(pred[e], out, rtol=0, atol=1e-9)
        assert float(out.std()) > 0.1
    # member e rebuilt as a network with its fitted readout: the same predictions
    torch.testing.assert_close(ens.network(3).run(x).output[300:], pred[3], rtol=0, atol=1e-9)


def numpy_member(ens, e: int, x: np.ndarray, y: np.ndarray, alpha: float, washout: int):
    """Member ``e``'s states and ridge readout in NumPy from its weights (as ``network``
    gives them): the leaky-tanh map, then the centred ridge solve with an unpenalised bias."""
    net = ens.network(e)
    w = net.get_edge("res", "res").weight.detach().to_dense().numpy()
    w_in = net.get_edge("in", "res").weight.detach().numpy()
    lr = ens.params["lr"][e]
    states, v = [], np.zeros(N)
    for u in x:
        v = (1 - lr) * v + lr * np.tanh(w @ v + w_in @ u)
        states.append(v)
    X = np.array(states)
    F, Y = X[washout : len(y)], y[washout:]
    mx, my = F.mean(0), Y.mean(0)
    W = np.linalg.solve((F - mx).T @ (F - mx) + alpha * np.eye(N), (F - mx).T @ (Y - my)).T
    return X, W, my - W @ mx


def test_members_equal_a_numpy_echo_state_network_and_ridge_solve():
    x, y = series(400)
    ens = ensemble().fit_ridge(x[:250], y[:250], alpha=ALPHA, washout=30)
    pred = ens.run(x[250:]).numpy()
    for e in (0, 1, 3, 6):  # two seeds' rows of one loop, a seed of its own, another seed
        X, W, c = numpy_member(ens, e, x, y[:250], ALPHA[e], 30)
        np.testing.assert_allclose(ens.weight[e].numpy(), W, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(pred[e], X[250:] @ W.T + c, rtol=0, atol=1e-8)


def test_float32_members_follow_float64():
    x, y = series(300)
    a = ensemble(dtype=torch.float32).fit_ridge(x[:200], y[:200], alpha=1e-3).run(x[200:])
    b = ensemble().fit_ridge(x[:200], y[:200], alpha=1e-3).run(x[200:])
    assert a.dtype == torch.float32
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=2e-3)


def test_the_held_states_continue_and_reset_starts_anew():
    x, y = series(300)
    ens = ensemble().fit_ridge(x[:200], y[:200], alpha=1e-4)
    whole = ens.run(x[200:])
    state = ens.state.clone()
    ens.reset()
    assert ens.state.abs().max() == 0
    ens.run(x[:200])  # the same states as the fit left
    torch.testing.assert_close(ens.run(x[200:]), whole, rtol=0, atol=1e-12)
    torch.testing.assert_close(ens.state, state, rtol=0, atol=1e-12)
    # in two calls as in one
    ens.reset()
    ens.run(x[:200])
    first, second = ens.run(x[200:250]), ens.run(x[250:])
    torch.testing.assert_close(torch.cat([first, second], 1), whole, rtol=0, atol=1e-12)


def test_one_thread_gives_the_same_numbers_up_to_rounding():
    x, y = series(300)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = ensemble().fit_ridge(x[:200], y[:200], alpha=ALPHA).run(x[200:])
    finally:
        torch.set_num_threads(threads)
    b = ensemble().fit_ridge(x[:200], y[:200], alpha=ALPHA).run(x[200:])
    torch.testing.assert_close(a, b, rtol=0, atol=1e-10)  # torch's products per thread count


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sr": [0.9, 0.5], "lr": [0.1, 0.2, 0.3]}, "different numbers of values"),
        ({"lr": 1.5}, "lr must lie in"),
        ({"lr": [0.1, 0.0]}, "lr must lie in"),
        ({"sr": -1.0}, "sr must be >= 0"),
        ({"seed": [1, 2.5]}, "seed must be ints"),
        ({"sr": float("nan")}, "finite numbers"),
        ({"bias_scaling": 0.5}, "without bias_connectivity"),
        ({"dtype": torch.float16}, "dtype"),
        ({"units": 0}, "units"),
    ],
)
def test_the_ensemble_refuses_what_it_cannot_honour(kwargs, match):
    args = {"units": N, "sr": 0.9, "lr": 0.3} | kwargs
    with pytest.raises(ValueError, match=match):
        rg.ReservoirEnsemble(args.pop("units"), 1, **args)


def test_bad_fit_and_run_input_leaves_weights_and_states_alone():
    x, y = series(300)
    ens = ensemble().fit_ridge(x[:200], y[:200], alpha=1e-4)
    weight, state = ens.weight.clone(), ens.state.clone()
    bad = x[:50].copy()
    bad[10] = np.nan
    calls = [
        (lambda: ens.fit_ridge(x[:100], y[:90]), "100 input steps but 90"),
        (lambda: ens.fit_ridge(x[:100], y[:100], washout=100), "washout 100 leaves none"),
        (lambda: ens.fit_ridge(x[:100], y[:100], alpha=[1e-3] * 3), "alpha has 3 values"),
        (lambda: ens.fit_ridge(x[:100], y[:100], alpha=-1.0), "alpha must be >= 0"),
        (lambda: ens.fit_ridge(np.zeros((100, 2)), y[:100]), r"\(T, 1\) series"),
        (lambda: ens.run(bad), "NaN or inf"),
        (lambda: ens.run(x[:, 0]), r"\(T, 1\) series"),
    ]
    for call, match in calls:
        with pytest.raises(ValueError, match=match):
            call()
        assert torch.equal(ens.weight, weight) and torch.equal(ens.state, state)
    nan_targets = np.full((100, 1), np.nan)
    with pytest.raises(ValueError, match="member 0: the targets are NaN at every step"):
        ens.fit_ridge(x[:100], nan_targets)
    assert torch.equal(ens.weight, weight) and torch.equal(ens.state, state)
    with pytest.raises(RuntimeError, match="call fit_ridge first"):
        ensemble().run(x)
    with pytest.raises(IndexError, match="member 11 out of range"):
        ens.network(11)


def test_a_search_draws_the_same_trials_in_any_generation_size():
    x, y = series(400)
    space = {
        "sr": rg.hyper.loguniform(0.2, 1.0),
        "lr": rg.hyper.uniform(0.1, 1.0),
        "alpha": rg.hyper.loguniform(1e-6, 1e-2),
        "seed": rg.hyper.choice([4, 5]),
    }
    train, test = (x[:250], y[:250]), (x[250:], y[250:])
    kw = {"units": N, "washout": 20, "progress": False, "input_scaling": 0.7}
    a = rg.hyper.search(space, train, test, 9, generation=2, **kw)
    b = rg.hyper.search(space, train, test, 9, generation=9, **kw)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    np.testing.assert_allclose(a.losses, b.losses, rtol=1e-9)
    assert a.best.number == b.best.number == int(np.argmin(a.losses))
    assert np.all(a.values("input_scaling") == 0.7)  # a fixed value reaches every trial
    assert len(set(a.values("seed"))) == 2 and len(set(a.values("sr"))) == 9
    # every trial's loss is its own network's, written out by hand
    t = a.trials[4]
    net = rg.ReservoirEnsemble(N, 1, **{k: v for k, v in t.params.items() if k != "alpha"})
    pred = net.fit_ridge(*train, alpha=t.params["alpha"], washout=20).run(test[0])[0]
    assert t.loss == pytest.approx(rg.metrics.nrmse(test[1], pred.numpy()), rel=1e-12)
    assert t.r2 == pytest.approx(rg.metrics.rsquare(test[1], pred.numpy()), rel=1e-12)


@pytest.mark.parametrize(
    ("space", "fixed", "match"),
    [
        ({"units": rg.hyper.choice([10, 20])}, {}, "cannot search 'units'"),
        ({"sr": (0.1, 1.0)}, {}, "not a distribution"),
        ({"sr": rg.hyper.uniform(0.1, 1.0)}, {"sr": 0.5}, "both searched and fixed"),
        ({"sr": rg.hyper.uniform(0.1, 1.0)}, {"leak": 0.5}, "unknown argument 'leak'"),
        ({}, {}, "non-empty dict"),
    ],
)
def test_a_search_refuses_a_space_it_cannot_honour(space, fixed, match):
    x, y = series(100)
    with pytest.raises(ValueError, match=match):
        rg.hyper.search(space, (x, y), (x, y), 2, units=N, progress=False, **fixed)


def test_distributions_check_their_bounds_and_sample_inside():
    rng = np.random.default_rng(0)
    assert all(0.1 <= rg.hyper.loguniform(0.1, 10).sample(rng) < 10 for _ in range(200))
    draws = [rg.hyper.loguniform(1e-6, 1).sample(rng) for _ in range(4000)]
    assert abs(np.median(np.log10(draws)) + 3) < 0.2  # uniform in the exponent
    assert {rg.hyper.choice([1, 2, 3]).sample(rng) for _ in range(100)} == {1, 2, 3}
    for bad in (lambda: rg.hyper.loguniform(0, 1), lambda: rg.hyper.uniform(2, 1)):
        with pytest.raises(ValueError, match="need"):
            bad()
    with pytest.raises(ValueError, match="at least one value"):
        rg.hyper.choice([])
