"""e-prop (symmetric and random feedback) against BPTT on Bellec et al.'s (2020)
pattern-generation task.

    .venv/bin/python benchmarks/eprop_pattern.py [--iterations 250] [--seeds 0 1 2]
                                                [--quick]

Bellec et al., Nat Commun 11:3625 (2020), doi:10.1038/s41467-020-17236-y, Supplementary
Fig. 7: a recurrent network of LIF units turns frozen Poisson noise into a fixed pattern.

Task (``rnngraph.datasets.pattern_generation(seed)``): 100 input channels of Poisson spikes
at 50 Hz, drawn once and frozen; dt = 1 ms, 1000 steps; the target is a sum of four sines
(periods 1000, 500, 333, 200 ms, amplitudes U(0.5, 2), random phases), shifted to start at
0 and scaled to max |y| = 1; one trial per update.

Network (float32), the same initial weights for every method of a seed; the settings of
``benchmarks/bptt_pattern.py``, tuned there for BPTT:

* ``rec``: 100 LIF units, ``v(t) = alpha v(t-1) + (1 - alpha) I(t)`` (``exp_euler``,
  r_m = 1), alpha = exp(-1/20), a spike when v > v_th = 1, then ``v = 0`` in the same step
  (``reset="value"``), no refractory period, the ``triangle`` surrogate with gamma = 0.3;
* ``in -> rec``: W_in ~ N(0, (20 / sqrt(100))^2), trained; ``rec -> rec``: a feedback
  self-edge (delay 1 step), W_rec ~ N(0, (10 / sqrt(100))^2) with its diagonal masked out,
  trained;
* ``rec -> out``: ``leaky_readout`` (tau 20 ms), 1 output, W_out = 0 and b = 0 at the
  start (so the initial normalised MSE is mean(y^2) / var(y)), trained.

Training: ``--iterations`` updates (default 250) of Adam on the squared error of all 1000
steps, lr 1e-2 for the first 60 % of the iterations, then 2e-3 (a fresh optimiser for each
phase, the same schedule for every method):

* BPTT: ``Network.fit_bptt(x, y, loss="mse")``, the whole trial, no truncation;
* e-prop: ``Network.fit_eprop(x, y, feedback="symmetric" | "random")`` (regression, no
  rate regulariser), the random feedback matrix drawn from the seed. e-prop's loss is
  ``0.5 * MSE``; Adam's steps do not depend on that factor.

Reported per seed and method: the normalised MSE (MSE / var(target)) of the trained
network run again from its initial state, and the ratio e-prop / BPTT (acceptance:
symmetric e-prop within 3x of BPTT, by the median over seeds); the time per update.
Results: ``benchmarks/results/eprop_pattern.json`` and ``eprop_pattern.png`` (learning
curves, outputs of the median seed); ``--quick`` (60 iterations, one seed) writes
``eprop_pattern_quick.*``. One thread.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Any

import numpy as np
import torch
from _common import RESULTS_DIR, fmt, machine, single_thread, summary, table, write_json

import rnngraph as rg

DTYPE = torch.float32
METHODS = ("bptt", "symmetric", "random")
LABELS = {"bptt": "BPTT", "symmetric": "e-prop (symmetric)", "random": "e-prop (random)"}
#: acceptance: symmetric e-prop's normalised MSE within this factor of BPTT's
RATIO_BOUND = 3.0

CONFIG: dict[str, Any] = {
    "n_in": 100,
    "rate_hz": 50.0,
    "n_rec": 100,
    "steps": 1000,
    "dt_ms": 1.0,
    "tau_m": 20.0,
    "v_th": 1.0,
    "r_m": 1.0,
    "reset": "value",
    "tau_out": 20.0,
    "w_in": 20.0,
    "w_rec": 10.0,
    "lr": 1e-2,
    "lr_final": 2e-3,
    "final_fraction": 0.4,
}


def build(seed: int, cfg: dict[str, Any]) -> rg.Network:
    n_in, n = cfg["n_in"], cfg["n_rec"]
    g = torch.Generator().manual_seed(1000 + seed)
    net = rg.Network(dt=cfg["dt_ms"], dtype=DTYPE)
    net.add_func_node("in", n_in)
    rec = rg.nodes.LIF(
        n,
        tau_m=cfg["tau_m"],
        v_th=cfg["v_th"],
        r_m=cfg["r_m"],
        reset=cfg["reset"],
        integrator="exp_euler",
        surrogate="triangle",
    )
    net.add_diffeq_node("rec", rec)
    no_self = 1.0 - torch.eye(n)
    w_in = cfg["w_in"] / math.sqrt(n_in) * torch.randn(n, n_in, generator=g)
    w_rec = cfg["w_rec"] / math.sqrt(n) * torch.randn(n, n, generator=g) * no_self
    net.add_edge("in", "rec", weights=w_in, train="gd")
    net.add_edge("rec", "rec", weights=w_rec, train="gd", feedback=True, mask=no_self)
    net.add_diffeq_node("out", "leaky_readout", n=1, tau=cfg["tau_out"])
    net.add_edge("rec", "out", weights=torch.zeros(1, n), train="gd", bias=True)
    return net


def evaluate(net: rg.Network, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    net.reset()
    rec = net.run(x, record=["out", "rec"])
    net.reset()
    out = rec["out"].numpy()
    return {
        "nmse": float(np.mean((out - y) ** 2) / np.var(y)),
        "output": out[:, 0],
        "rate_hz": float(rec["rec"].double().mean()) * 1000.0 / net.dt,
    }


def train(method: str, seed: int, iterations: int, cfg: dict[str, Any]) -> dict[str, Any]:
    task = rg.datasets.pattern_generation(
        seed=seed, n_in=cfg["n_in"], rate=cfg["rate_hz"], n_steps=cfg["steps"], dtype=np.float32
    )
    x, y = task.inputs, task.target
    net = build(seed, cfg)
    before = evaluate(net, x, y)
    n_final = round(cfg["final_fraction"] * iterations)
    losses: list[float] = []
    seconds = 0.0
    for lr, n_it in ((cfg["lr"], iterations - n_final), (cfg["lr_final"], n_final)):
        if n_it < 1:
            continue
        t0 = time.perf_counter()
        if method == "bptt":
            rec = net.fit_bptt(x, y, optimizer="adam", lr=lr, loss="mse", epochs=n_it)
            losses += list(rec.loss)
        else:
            rec = net.fit_eprop(
                x,
                y,
                feedback=method,
                optimizer="adam",
                lr=lr,
                epochs=n_it,
                seed=None if method == "symmetric" else seed,  # symmetric feedback draws nothing
            )
            losses += [2.0 * v for v in rec.loss]  # e-prop's loss is 0.5 * MSE
        seconds += time.perf_counter() - t0
    after = evaluate(net, x, y)
    return {
        "method": method,
        "seed": seed,
        "nmse": after["nmse"],
        "nmse_initial": before["nmse"],
        "rate_hz_initial": before["rate_hz"],
        "rate_hz": after["rate_hz"],
        "nmse_curve": (np.asarray(losses) / np.var(y)).tolist(),
        "seconds": seconds,
        "seconds_per_update": seconds / iterations,
        "output": after["output"],
        "target": y[:, 0],
    }


def plot(res: dict[str, list[dict[str, Any]]], seed_show: int, path: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(9, 7))
    for i, m in enumerate(METHODS):
        for j, r in enumerate(res[m]):
            axes[0].semilogy(
                r["nmse_curve"], color=f"C{i}", lw=1, alpha=0.8, label=LABELS[m] if j == 0 else None
            )
        r = next(r for r in res[m] if r["seed"] == seed_show)
        if i == 0:
            axes[1].plot(r["target"], color="k", lw=2.5, label="target")
        axes[1].plot(r["output"], color=f"C{i}", lw=1, label=f"{LABELS[m]} ({r['nmse']:.3f})")
    axes[0].set_xlabel("update")
    axes[0].set_ylabel("MSE / var(target), during training")
    axes[0].legend(fontsize=8)
    axes[0].set_title("Pattern generation, 100 LIF units: every seed", fontsize=9)
    axes[1].set_xlabel("time (ms)")
    axes[1].set_ylabel("output")
    axes[1].set_title(f"seed {seed_show}, run again after training (normalised MSE)", fontsize=9)
    axes[1].legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=250)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    print(single_thread())
    cfg = dict(CONFIG)
    name = "eprop_pattern"
    if args.quick:
        args.iterations, args.seeds, name = 60, args.seeds[:1], "eprop_pattern_quick"
    res: dict[str, list[dict[str, Any]]] = {m: [] for m in METHODS}
    for seed in args.seeds:
        for m in METHODS:
            r = train(m, seed, args.iterations, cfg)
            res[m].append(r)
            print(
                f"  seed {seed} {LABELS[m]}: normalised MSE {r['nmse_initial']:.3f} -> "
                f"{r['nmse']:.4f}, {r['rate_hz']:.1f} Hz, "
                f"{1000 * r['seconds_per_update']:.0f} ms/update",
                flush=True,
            )
    rows = []
    for i, seed in enumerate(args.seeds):
        b, s, rnd = (res[m][i]["nmse"] for m in METHODS)
        rows.append([seed, b, s, rnd, s / b, rnd / b])
    med = {m: summary([r["nmse"] for r in res[m]], args.seeds) for m in METHODS}
    ratio_sym = [r[4] for r in rows]
    ratio_rnd = [r[5] for r in rows]
    rows.append(
        [
            "median",
            med["bptt"]["median"],
            med["symmetric"]["median"],
            med["random"]["median"],
            float(np.median(ratio_sym)),
            float(np.median(ratio_rnd)),
        ]
    )
    print()
    print(
        table(
            [
                "seed",
                "BPTT",
                "e-prop symmetric",
                "e-prop random",
                "symmetric / BPTT",
                "random / BPTT",
            ],
            rows,
            title=f"Normalised MSE (MSE / var(target)) after {args.iterations} updates, "
            "run again from the initial state",
        )
    )
    times = [
        [LABELS[m], fmt(1000 * float(np.median([r["seconds_per_update"] for r in res[m]])))]
        for m in METHODS
    ]
    print()
    print(table(["method", "ms / update (median over seeds)"], times))
    ok = float(np.median(ratio_sym)) <= RATIO_BOUND
    print(
        f"\nacceptance (symmetric e-prop within {RATIO_BOUND:g}x of BPTT, median over seeds): "
        f"{'met' if ok else 'NOT met'} ({float(np.median(ratio_sym)):.2f}x)"
    )
    seed_show = args.seeds[int(np.argsort(ratio_sym)[len(ratio_sym) // 2])]
    out = {
        "config": cfg,
        "iterations": args.iterations,
        "seeds": args.seeds,
        "results": {
            m: [{k: v for k, v in r.items() if k not in ("output", "target")} for r in res[m]]
            for m in METHODS
        },
        "ratio_symmetric_bptt": ratio_sym,
        "ratio_random_bptt": ratio_rnd,
        "accepted": ok,
        "machine": machine(),
    }
    path = write_json(f"{name}.json", out)
    plot(res, seed_show, RESULTS_DIR / f"{name}.png")
    print(f"wrote {path} and {RESULTS_DIR / f'{name}.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
