"""Workload: FORCE / RLS online training with output feedback, rnngraph against reservoirpy.

Mackey-Glass one step ahead (tau 17, reservoirpy's defaults, rescaled to [-1, 1], the task
of ``mackey_glass.py``): x(t) -> x(t+1) on 2000 training steps, then the next 500 test steps
continuing the state. An echo-state network of 300 leaky-tanh units (lr 0.3, spectral radius
1.25, W with 10 % nonzeros stored CSR, W_in +-1 with 20 % nonzeros, no bias, float64) whose
readout output is fed back to the reservoir through W_fb (uniform in +-0.1, N x 1), drawn
twice (seeds 0 and 1) by rnngraph's initialisers and numpy; both libraries get the **same**
W, W_in and W_fb for a draw.

The readout (no bias) is trained online by recursive least squares from the zero state in
one pass over the training steps, with P(0) = I / alpha (alpha 1e-6) and forgetting factor
0.999, feeding back its own output as it learns:

* rnngraph ``net.fit_rls(x, y, alpha, forgetting, feedback_weights=W_fb,
  feedback_order=...)`` with ``"before"`` (the output of the weights before the step's
  update is fed back: Sussillo & Abbott's FORCE) and ``"after"`` (the output of the updated
  weights), then ``net.run(x_test)``;
* reservoirpy ``esn = (res >> RLS) & (res << RLS)`` with
  ``Reservoir(W, Win=[W_in, W_fb], bias=0, lr)`` and ``RLS(alpha, forgetting,
  fit_bias=False)``, ``esn.partial_fit(x, y)``, then ``esn.run(x_test)``. It feeds back the
  output of the updated weights, so rnngraph's ``"after"`` must reproduce it to rounding.

Reported per draw: the test MAE of each of the three, the largest difference between
rnngraph ``"after"`` and reservoirpy (test predictions, training outputs), and the time of
one training call on each side (a fresh model built and trained from the zero state; not
the test run), median (min) over the repeats after one untimed call, with the ratios.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._peers import PeerError
from ._report import MISSING, Context, Section, Table, num, peer_failed, ratio, seconds
from ._timing import time_calls
from .generative import LR, build, weights
from .mackey_glass import task

SR, ALPHA, FORGETTING, FB_SCALE = 1.25, 1e-6, 0.999, 0.1
ORDERS = ("before", "after")


def sizes(quick: bool) -> dict[str, int]:
    if quick:
        return {"N": 50, "n_train": 300, "n_test": 100, "draws": 1}
    return {"N": 300, "n_train": 2000, "n_test": 500, "draws": 2}


def feedback_weights(n: int, seed: int) -> np.ndarray:
    """``W_fb`` ``(n, 1)``, uniform in ``[-FB_SCALE, FB_SCALE]``."""
    return FB_SCALE * np.random.default_rng(seed).uniform(-1.0, 1.0, (n, 1))


def ours(w, w_in, w_fb: np.ndarray, d: dict[str, np.ndarray], order: str, repeats: int):
    """rnngraph's side of one draw in one feedback order: the timed fits, then the test run."""
    nets: dict[str, Any] = {}

    def fit() -> None:  # a fresh network from the zero state, trained online
        nets["net"] = net = build(w, w_in)
        nets["train"] = net.fit_rls(
            d["x_train"],
            d["y_train"],
            alpha=ALPHA,
            forgetting=FORGETTING,
            feedback_weights=w_fb,
            feedback_order=order,
        ).output.numpy()

    timing = time_calls(fit, repeats)
    net = nets["net"]
    return {
        "timing": timing,
        "train": nets["train"],
        "pred": net.run(d["x_test"]).output.numpy(),  # continues from the training state
        "w_out": net.get_edge("res", "readout").weight.detach().numpy().copy(),
    }


def theirs(ctx: Context, sec: Section, draws: dict, d: dict[str, np.ndarray]) -> dict | str:
    """reservoirpy's side of every draw, or the word for its cells."""
    peer = ctx.peers["reservoirpy"]
    if not peer.ok:
        return MISSING
    ctx.log(f"  reservoirpy, {len(draws)} draws")
    req = {"seeds": list(draws), "lr": LR, "alpha": ALPHA, "forgetting": FORGETTING}
    req["repeats"] = ctx.repeats
    arrays: dict[str, np.ndarray] = {k: d[k] for k in ("x_train", "y_train", "x_test")}
    for seed, (w, w_in, w_fb) in draws.items():
        arrays[f"W{seed}"], arrays[f"Win{seed}"] = w.numpy(), w_in.numpy()
        arrays[f"Wfb{seed}"] = w_fb
    try:
        r = peer.run("force", req, arrays)
    except PeerError as err:
        return peer_failed(ctx, sec, peer, err)
    return {
        int(k): {
            "timing": v,
            "train": r["arrays"][f"train{k}"],
            "pred": r["arrays"][f"pred{k}"],
            "w_out": r["arrays"][f"Wout{k}"],
        }
        for k, v in r["results"].items()
    }


def mae(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - truth)))


def maxdiff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def draw_rows(seed: int, mine: dict[str, Any], peer: Any, y: np.ndarray) -> tuple:
    """One draw's accuracy row, timing row and raw record."""
    before, after = mine["before"], mine["after"]
    rec: dict[str, Any] = {f"mae_rnngraph_{o}": mae(mine[o]["pred"], y) for o in ORDERS}
    rec.update({f"timing_rnngraph_{o}": mine[o]["timing"] for o in ORDERS})
    rec["pred_maxdiff_before_vs_after"] = maxdiff(before["pred"], after["pred"])
    if isinstance(peer, str):
        rec["reservoirpy"] = peer
        e_b = d_pred = d_train = t_b = peer
    else:
        e_b, t_b = mae(peer["pred"], y), peer["timing"]
        d_pred = maxdiff(after["pred"], peer["pred"])
        d_train = maxdiff(after["train"], peer["train"])
        rec.update(
            mae_reservoirpy=e_b,
            timing_reservoirpy=t_b,
            pred_maxdiff_after_vs_reservoirpy=d_pred,
            train_maxdiff_after_vs_reservoirpy=d_train,
            readout_weight_maxdiff_after_vs_reservoirpy=maxdiff(after["w_out"], peer["w_out"]),
            train_maxdiff_before_vs_reservoirpy=maxdiff(before["train"], peer["train"]),
        )

    def cell(x: Any) -> str:
        return x if isinstance(x, str) else num(x)

    acc = [seed, num(rec["mae_rnngraph_before"]), num(rec["mae_rnngraph_after"]), cell(e_b)]
    acc += [cell(d_pred), cell(d_train)]
    tb, ta = before["timing"], after["timing"]
    tim = [seed, seconds(tb), seconds(ta), seconds(t_b)]
    tim += [ratio(tb, t_b, "s_median"), ratio(ta, t_b, "s_median")]
    return acc, tim, rec


def run(ctx: Context) -> Section:
    z = sizes(ctx.quick)
    n, n_train, n_test = z["N"], z["n_train"], z["n_test"]
    sec = Section("force", f"FORCE / RLS with output feedback: Mackey-Glass ({n} units, float64)")
    d = task(n_train, n_test)
    draws = {}
    for seed in range(z["draws"]):
        draws[seed] = (*weights(n, 1, SR, seed), feedback_weights(n, seed))
    mine: dict[int, dict[str, Any]] = {}
    for seed, (w, w_in, w_fb) in draws.items():
        ctx.log(f"  draw {seed}: rnngraph")
        mine[seed] = {o: ours(w, w_in, w_fb, d, o, ctx.repeats) for o in ORDERS}
    peer = theirs(ctx, sec, draws, d)
    acc, tim, data = [], [], {}
    for seed in draws:
        side = peer if isinstance(peer, str) else peer[seed]
        a, t, rec = draw_rows(seed, mine[seed], side, d["y_test"])
        acc.append(a)
        tim.append(t)
        data[str(seed)] = rec
    persistence = mae(d["x_test"], d["y_test"])
    setup = (
        f"{n} units, {n_train} training steps (one online pass), {n_test} test steps, "
        f"alpha {ALPHA:g} (P(0) = I/alpha), forgetting {FORGETTING}, no bias"
    )
    sec.tables += [
        Table(
            f"Accuracy per draw: {setup}",
            [
                "draw (seed)",
                'test MAE rnngraph "before"',
                'test MAE rnngraph "after"',
                "test MAE reservoirpy",
                'max abs(test prediction diff), "after" vs reservoirpy',
                'max abs(training output diff), "after" vs reservoirpy',
            ],
            acc,
            [
                f"MAE on the [-1, 1]-rescaled series; predicting x(t+1) = x(t) scores "
                f"{num(persistence)}.",
            ],
        ),
        Table(
            "Training time per draw: one fresh model trained online, seconds, median (min)",
            [
                "draw (seed)",
                'rnngraph fit_rls "before", s',
                'rnngraph fit_rls "after", s',
                "reservoirpy partial_fit, s",
                '"before" / reservoirpy',
                '"after" / reservoirpy',
            ],
            tim,
        ),
    ]
    sec.notes += notes()
    sec.data.update(sizes=z, alpha=ALPHA, forgetting=FORGETTING, draws=data)
    sec.data["mae_persistence"] = persistence
    return sec


def notes() -> list[str]:
    return [
        "Both sides: the same W (CSR), W_in and W_fb per draw, lr 0.3, spectral radius "
        f"{SR}, zero reservoir bias, a readout without bias trained by RLS from the zero state "
        "(reservoirpy's RLS bias is a running mean of the errors, rnngraph's a weight on a "
        "constant feature, so both are off), then the test run continuing the state.",
        "The forgetting factor means the same on both sides: P <- (P - c k k^T) / lambda "
        "with k = P r, c = 1 / (lambda + r^T P r), and w <- w - c e k^T.",
        'rnngraph `fit_rls(x, y, alpha, forgetting, feedback_weights=W_fb, feedback_order="before"'
        ' | "after")`: "before" feeds back the output of the weights before the step\'s update '
        '(Sussillo & Abbott), "after" that of the updated weights; reservoirpy '
        "`(res >> RLS) & (res << RLS)` with `Win = [W_in, W_fb]`, `partial_fit(x, y)`, feeds "
        'back the updated weights\' output, as "after".',
        "Timed: building a fresh model and one training call (rnngraph `build` + "
        "`net.fit_rls`, reservoirpy `Reservoir`, `RLS` + `esn.partial_fit`), one untimed call "
        "first; not the test run.",
    ]
