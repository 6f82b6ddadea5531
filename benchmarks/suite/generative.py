"""Workload: generative (closed-loop) forecasting, rnngraph against reservoirpy.

Two chaotic series, each rescaled channel by channel to [-1, 1] (reservoirpy's tutorial
rescaling): Mackey-Glass (tau 17, reservoirpy's defaults, one channel) and Lorenz
(``rg.datasets.lorenz``, h = 0.03, three channels, the first 500 samples dropped as the
approach to the attractor). An echo-state network of 500 leaky-tanh units (float64, no bias,
W with 10 % nonzeros, W_in +-1 with 20 % nonzeros; lr 0.3 and spectral radius 1.25 for
Mackey-Glass as in reservoirpy's tutorial, lr 0.3 and 0.9 for Lorenz, where 1.25 loses the
attractor within ~20 steps) is drawn five times per series by rnngraph's initialisers; both
libraries get the **same** W (CSR on both sides) and W_in for a draw.

Each side fits its own ridge readout (alpha 1e-6, unpenalised bias, the first 100 steps left
out) to map x(t) -> x(t+1) on the first 2000 steps from the zero state, then goes back to the
zero state, runs on the last 500 training inputs (teacher-forced warm-up) and generates 1000
steps on its own output, the warm-up's last output being the first generated input:
rnngraph ``net.generate(1000, warmup=x_train[-500:])``, reservoirpy ``y = esn.step(y)`` from
``esn.run(x_train[-500:])[-1]``, the loop of its generative tutorial. Generated step k
predicts the series at index ``n_train + 1 + k``.

Reported per draw:

* **valid prediction time** (VPT) of each side: the first generated step k whose normalised
  error ``e(k) = sqrt(mean_c ((pred_c(k) - truth_c(k)) / std_c)^2)`` exceeds 0.4, where
  ``std_c`` is the standard deviation of channel c of the rescaled series (for one channel
  ``|pred - truth| / std``); the full length (1000) when it never does;
* the largest ``|pred_rnngraph - pred_reservoirpy|`` over the first 100 generated steps (the
  two readouts are fitted separately, so they differ by the rounding of two ridge solves);
* the time per generated step of each side and their ratio. Timed: a whole 1000-step
  generation from the state the warm-up left (restored before each run on both sides, a
  copy of N numbers), given the warm-up's last output as the first input: rnngraph
  ``net.reset(state); net.generate(1000, first=y0)``, reservoirpy ``res.state = {"out": s0}``
  then the ``esn.step`` loop. Not timed: the fit, the warm-up. Median (min) over the repeats,
  after one untimed run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

import rnngraph as rg

from ._peers import PeerError
from ._report import MISSING, Context, Section, Table, num, peer_failed, ratio, us
from ._timing import per_step, time_calls

LR, RIDGE, WASHOUT, VPT_THRESHOLD, CHECK_STEPS = 0.3, 1e-6, 100, 0.4, 100
CONNECTIVITY, IN_CONNECTIVITY, LORENZ_TRANSIENT, LORENZ_H = 0.1, 0.2, 500, 0.03
#: series name -> spectral radius of W
SERIES = {"mackey_glass": 1.25, "lorenz": 0.9}
LABELS = {"mackey_glass": "Mackey-Glass", "lorenz": "Lorenz"}


def sizes(quick: bool) -> dict[str, int]:
    if quick:
        return {"N": 50, "n_train": 500, "warmup": 200, "steps": 100, "draws": 1}
    return {"N": 500, "n_train": 2000, "warmup": 500, "steps": 1000, "draws": 5}


def series(name: str, n: int) -> np.ndarray:
    """``n`` samples ``(n, C)`` of the named series, each channel rescaled to [-1, 1]."""
    if name == "mackey_glass":
        s = rg.datasets.mackey_glass(n)
    else:
        s = rg.datasets.lorenz(n + LORENZ_TRANSIENT, h=LORENZ_H)[LORENZ_TRANSIENT:]
    lo, hi = s.min(axis=0), s.max(axis=0)
    return 2.0 * (s - lo) / (hi - lo) - 1.0


def weights(n: int, c: int, sr: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W, W_in)`` in float64 for one draw."""
    gen = torch.Generator().manual_seed(seed)
    w_in = rg.input_weights(n, c, connectivity=IN_CONNECTIVITY, seed=gen, dtype=torch.float64)
    w = rg.recurrent_weights(
        n, spectral_radius=sr, connectivity=CONNECTIVITY, seed=gen, dtype=torch.float64
    )
    return w, w_in


def build(w: torch.Tensor, w_in: torch.Tensor) -> rg.Network:
    net = rg.Network(dt=1.0, dtype=torch.float64)
    net.add_func_node("in", w_in.shape[1])
    net.add_diffeq_node("res", "leaky_tanh", n=w.shape[0], lr=LR, bias=0.0)
    net.add_edge("in", "res", weights=w_in)
    net.add_edge("res", "res", weights=w, feedback=True, sparse=True)
    return net


def vpt(pred: np.ndarray, truth: np.ndarray, std: np.ndarray) -> int:
    """The first step whose normalised error exceeds the threshold, or ``len(pred)``."""
    err = np.sqrt(np.mean(((pred - truth) / std) ** 2, axis=1))
    bad = np.flatnonzero(err > VPT_THRESHOLD)
    return int(bad[0]) if bad.size else len(pred)


def ours(w, w_in, d: dict[str, np.ndarray], steps: int, repeats: int) -> dict[str, Any]:
    """rnngraph's side of one draw: fit, warm up and generate, then the timed generations."""
    net = build(w, w_in)
    net.fit_ridge(d["x_train"], d["y_train"], alpha=RIDGE, washout=WASHOUT)
    net.reset()
    pred = net.generate(steps, warmup=d["warmup"]).output.numpy()
    # the timed runs start from the state after the warm-up, with its last output as input
    net.reset()
    first = net.run(d["warmup"]).output[-1].clone()
    state = {k: v.clone() for k, v in net.state.items()}
    out: dict[str, np.ndarray] = {}

    def generate() -> None:
        net.reset(state)
        out["pred"] = net.generate(steps, first=first).output.numpy()

    timing = time_calls(generate, repeats)
    edge = net.get_edge("res", "readout")
    return {
        "timing": per_step(timing, steps),
        "pred": pred,
        "timed_vs_warmup_maxdiff": float(np.max(np.abs(out["pred"] - pred))),
        "w_out": edge.weight.detach().numpy().copy(),
        "b_out": edge.bias.detach().numpy().copy(),
        "explain": net.explain_generate(),
    }


def one_series(ctx: Context, sec: Section, name: str, z: dict[str, int]) -> None:
    sr, n, n_train, steps = SERIES[name], z["N"], z["n_train"], z["steps"]
    s = series(name, n_train + steps + 1)
    std = s.std(axis=0)
    x, y = s[:-1], s[1:]
    d = {
        "x_train": x[:n_train],
        "y_train": y[:n_train],
        "warmup": x[n_train - z["warmup"] : n_train],
    }
    truth = s[n_train + 1 : n_train + 1 + steps]
    seeds = list(range(z["draws"]))
    draws = {seed: weights(n, s.shape[1], sr, seed) for seed in seeds}

    mine: dict[int, dict[str, Any]] = {}
    for seed, (w, w_in) in draws.items():
        ctx.log(f"  {name} draw {seed}: rnngraph")
        mine[seed] = ours(w, w_in, d, steps, ctx.repeats)

    peer = ctx.peers["reservoirpy"]
    theirs: dict[int, Any] | str
    if not peer.ok:
        theirs = MISSING
    else:
        ctx.log(f"  {name}: reservoirpy, {len(seeds)} draws")
        req = {"seeds": seeds, "lr": LR, "ridge": RIDGE, "washout": WASHOUT}
        req.update(steps=steps, repeats=ctx.repeats)
        arrays: dict[str, np.ndarray] = dict(d)
        for seed, (w, w_in) in draws.items():
            arrays[f"W{seed}"], arrays[f"Win{seed}"] = w.numpy(), w_in.numpy()
        try:
            r = peer.run("generate", req, arrays)
            theirs = {
                int(k): {
                    "timing": v,
                    "pred": r["arrays"][f"pred{k}"],
                    "w_out": r["arrays"][f"Wout{k}"],
                    "b_out": r["arrays"][f"bias{k}"],
                }
                for k, v in r["results"].items()
            }
        except PeerError as err:
            theirs = peer_failed(ctx, sec, peer, err)

    rows, data = [], {}
    for seed in seeds:
        a = mine[seed]
        vpt_a = vpt(a["pred"], truth, std)
        rec: dict[str, Any] = {
            "vpt_rnngraph": vpt_a,
            "timing_rnngraph": a["timing"],
            "timed_vs_warmup_maxdiff_rnngraph": a["timed_vs_warmup_maxdiff"],
        }
        if isinstance(theirs, str):
            b, vpt_b, diff, t_b = None, theirs, theirs, theirs
            rec["reservoirpy"] = theirs
        else:
            b = theirs[seed]
            vpt_b = vpt(b["pred"], truth, std)
            diff = float(np.max(np.abs(a["pred"][:CHECK_STEPS] - b["pred"][:CHECK_STEPS])))
            t_b = b["timing"]
            rec.update(
                vpt_reservoirpy=vpt_b,
                timing_reservoirpy=t_b,
                pred_maxdiff_first_steps=diff,
                pred_maxdiff_all_steps=float(np.max(np.abs(a["pred"] - b["pred"]))),
                readout_weight_maxdiff=float(np.max(np.abs(a["w_out"] - b["w_out"].T))),
                readout_bias_maxdiff=float(np.max(np.abs(a["b_out"] - b["b_out"]))),
            )
        data[str(seed)] = rec
        rows.append(
            [
                seed,
                vpt_a,
                vpt_b,
                diff if isinstance(diff, str) else num(diff),
                us(a["timing"]),
                us(t_b),
                ratio(a["timing"], t_b),
            ]
        )
    label = LABELS[name]
    lyap = (
        f" With h = {LORENZ_H} and the largest Lyapunov exponent 0.906, one Lyapunov time is "
        f"{1 / (0.906 * LORENZ_H):.0f} steps."
        if name == "lorenz"
        else ""
    )
    sec.tables.append(
        Table(
            f"{label}: {n} units, {n_train} training steps, {z['warmup']} warm-up steps, "
            f"{steps} generated steps",
            [
                "draw (seed)",
                "VPT rnngraph, steps",
                "VPT reservoirpy, steps",
                f"max abs(prediction diff), first {CHECK_STEPS} steps",
                "rnngraph generate, us/step",
                "reservoirpy esn.step loop, us/step",
                "rnngraph / reservoirpy",
            ],
            rows,
            [
                f"lr {LR}, spectral radius {sr}, ridge alpha {RIDGE:g} with a bias, "
                f"{WASHOUT} washout steps; VPT: the first generated step whose error, "
                f"normalised by the series' standard deviation (RMS over channels), exceeds "
                f"{VPT_THRESHOLD} ({steps} if none does).{lyap}",
            ],
        )
    )
    sec.data[name] = {"sizes": z, "spectral_radius": sr, "draws": data}
    sec.data.setdefault("explain_generate", a["explain"])


def run(ctx: Context) -> Section:
    z = sizes(ctx.quick)
    sec = Section(
        "generative",
        f"Generative forecasting: Mackey-Glass and Lorenz ({z['N']} units, float64)",
    )
    for name in SERIES:
        one_series(ctx, sec, name, z)
    sec.notes += [
        "Both sides: the same W (CSR) and W_in per draw, zero bias, each its own ridge "
        "readout fitted on the same data, the same warm-up from the zero state; then "
        "rnngraph `net.generate(steps, warmup=...)`, reservoirpy `y = esn.step(y)` from the "
        "warm-up's last output.",
        "Timed: one whole generation from the restored post-warm-up state, given the first "
        "input (rnngraph `net.reset(state); net.generate(steps, first=y0)`, reservoirpy "
        '`res.state = {"out": s0}` then the `esn.step` loop); not the fit, not the warm-up. '
        "Per generated step, median (min) over the repeats.",
        "rnngraph runs: " + sec.data["explain_generate"].splitlines()[0] + ".",
    ]
    return sec
