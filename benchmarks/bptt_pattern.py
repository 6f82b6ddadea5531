"""BPTT on Bellec et al.'s (2020) pattern-generation task, with recurrent LIF or ALIF units.

A recurrent spiking network learns to turn frozen Poisson noise into a sum of four sines.

    .venv/bin/python benchmarks/bptt_pattern.py [--model lif|alif|both] [--epochs 250]
                                                [--seed 0] [--quick]

Bellec et al., Nat Commun 11:3625 (2020), doi:10.1038/s41467-020-17236-y, Fig. 2 (trained
there by e-prop; here by BPTT through surrogate gradients, ``Network.fit_bptt``).

Task (one trial, seeded by ``--seed``): 100 input channels of Poisson spikes at 50 Hz, drawn
once and frozen; dt = 1 ms, 1000 steps; the target is
``y(t) = sum_k a_k sin(2 pi t / P_k + phi_k)`` with periods P = 1000, 500, 333, 200 ms,
a_k ~ U(0.5, 2), phi_k ~ U(0, 2 pi), scaled to max |y| = 1.

Network (float32): ``in`` (identity, 100) -> ``rec`` (100 ``lif`` or ``alif`` units) ->
``out`` (``exp_syn``, 1 unit), every edge trained (``train="gd"``):

* ``rec``: tau_m = 20 ms, v_th = 1, v_rest = v_reset = 0, r_m = 1, exact leak
  (``exp_euler``): ``v(t) = alpha v(t-1) + (1 - alpha) I(t)`` with alpha = exp(-1/20), a
  spike when v > v_th, then ``v = 0`` in the same step (``reset="value"``, its gradient
  detached), no refractory period, the ``triangle`` surrogate with gamma = 0.3 (Bellec's
  pseudo-derivative). ``alif`` adds a threshold ``v_th + beta a(t)``,
  ``a(t) = rho a(t-1) + z(t-1)``, beta = 0.7, tau_a = 200 ms (rho = exp(-1/200)).
  (Bellec's reset by subtraction, ``reset="subtract"``, also learns the task, with a
  noisier loss: ratios of 11 to 21 over four seeds in trial runs of these settings.)
* ``in -> rec``: W_in ~ N(0, 2^2) (20 / sqrt(100)): one input spike moves v by about
  0.1 v_th. ``rec -> rec``: a feedback self-edge (delay 1 step), W_rec ~ N(0, 1) with its
  diagonal masked out (``mask=``: no self-connections, also during training).
* ``rec -> out``: the leaky readout ``y(t) = kappa y(t-1) + W_out z(t) + b``,
  kappa = exp(-1/20) (Bellec's readout, tau_out = 20 ms); W_out = 0 and b = 0 at the start,
  so the initial MSE is the target's mean square.

Training: full-sequence BPTT (no truncation), MSE, Adam; lr = 1e-2 for the first 60 % of the
epochs, then 2e-3 (a second ``fit_bptt`` call with a fresh optimiser); 250 epochs by
default, one update per epoch. One thread (``torch.set_num_threads(1)``).

Reported, per model: the MSE of every epoch (the first is the MSE of the initial network,
each one is measured before that epoch's update), the MSE of the trained network run again
from its initial state, the ratio initial / final MSE (acceptance: >= 10), the normalised MSE
(MSE / var(target)), firing rates before and after, and the wall time per epoch. Results go
to ``benchmarks/results/bptt_pattern.json`` (the entry of each model run, others kept) and
a figure per model to ``benchmarks/results/bptt_pattern_<model>.png`` (loss curve, output vs
target, spikes after training). ``--quick`` writes ``bptt_pattern.quick.json`` and
``bptt_pattern_<model>.quick.png`` instead, leaving the full results alone.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

import numpy as np
import torch
from _common import RESULTS_DIR, fmt, machine, single_thread, table, timed, write_json

import rnngraph as rg

DTYPE = torch.float32

CONFIG: dict[str, Any] = {
    "n_in": 100,
    "rate_hz": 50.0,
    "n_rec": 100,
    "dt_ms": 1.0,
    "steps": 1000,
    "periods_ms": [1000.0, 500.0, 333.0, 200.0],
    "tau_m": 20.0,
    "v_th": 1.0,
    "reset": "value",
    "surrogate": "triangle",
    "gamma": 0.3,
    "tau_a": 200.0,
    "beta": 0.7,
    "tau_out": 20.0,
    "w_in_scale": 20.0,  # W_in ~ N(0, (scale / sqrt(n_in))^2)
    "w_rec_scale": 10.0,  # W_rec ~ N(0, (scale / sqrt(n_rec))^2), diagonal masked
    "lr": 1e-2,
    "lr_final": 2e-3,
    "final_fraction": 0.4,  # the last 40 % of the epochs at lr_final
    "epochs": 250,
}
#: acceptance: initial / final MSE
RATIO_BOUND = 10.0


def task(seed: int, cfg: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Frozen Poisson inputs ``(T, n_in)`` (0/1) and the target ``(T, 1)``."""
    g = np.random.default_rng(seed)
    steps, dt = cfg["steps"], cfg["dt_ms"]
    x = (g.random((steps, cfg["n_in"])) < cfg["rate_hz"] * dt / 1000.0).astype(np.float32)
    t = dt * np.arange(steps)
    amp = g.uniform(0.5, 2.0, len(cfg["periods_ms"]))
    phase = g.uniform(0.0, 2.0 * np.pi, len(cfg["periods_ms"]))
    y = sum(
        a * np.sin(2.0 * np.pi * t / p + f)
        for a, p, f in zip(amp, cfg["periods_ms"], phase, strict=True)
    )
    return x, (y / np.abs(y).max())[:, None].astype(np.float32)


def build(model: str, seed: int, cfg: dict[str, Any]) -> rg.Network:
    """in -> rec (LIF or ALIF, masked recurrent feedback edge) -> out (leaky readout)."""
    n_in, n = cfg["n_in"], cfg["n_rec"]
    gen = torch.Generator().manual_seed(seed + 1)
    w_in = cfg["w_in_scale"] / math.sqrt(n_in) * torch.randn(n, n_in, generator=gen)
    w_rec = cfg["w_rec_scale"] / math.sqrt(n) * torch.randn(n, n, generator=gen)
    no_self = 1.0 - torch.eye(n)
    params: dict[str, Any] = {
        "tau_m": cfg["tau_m"],
        "v_th": cfg["v_th"],
        "reset": cfg["reset"],
        "surrogate": cfg["surrogate"],
        "surrogate_scale": cfg["gamma"],
    }
    if model == "alif":
        params.update(tau_a=cfg["tau_a"], beta=cfg["beta"])
    net = rg.Network(dt=cfg["dt_ms"], dtype=DTYPE)
    net.add_func_node("in", n_in)
    net.add_diffeq_node("rec", model, n=n, **params)
    net.add_edge("in", "rec", weights=w_in, train="gd")
    net.add_edge("rec", "rec", weights=w_rec * no_self, mask=no_self, feedback=True, train="gd")
    net.add_diffeq_node("out", "exp_syn", n=1, tau=cfg["tau_out"])
    net.add_edge("rec", "out", weights=torch.zeros(1, n), bias=True, train="gd")
    return net


def evaluate(net: rg.Network, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Run from the initial state: MSE, output and recurrent spikes."""
    net.reset()
    rec, mse = net.test(x, y, loss="mse", record=["rec"])
    z = rec["rec"].numpy()
    return {
        "mse": mse,
        "output": rec.output.numpy()[:, 0],
        "spikes": z,
        "rate_hz": float(z.mean() * 1000.0 / net.dt),
    }


def train(model: str, seed: int, cfg: dict[str, Any]) -> dict[str, Any]:
    x, y = task(seed, cfg)
    net = build(model, seed, cfg)
    before = evaluate(net, x, y)
    n_final = round(cfg["final_fraction"] * cfg["epochs"])
    phases = [(cfg["lr"], cfg["epochs"] - n_final), (cfg["lr_final"], n_final)]
    losses: list[float] = []
    seconds = 0.0
    for lr, epochs in phases:
        if epochs < 1:
            continue
        rec, t = timed(
            lambda lr=lr, epochs=epochs: net.fit_bptt(
                x, y, optimizer="adam", lr=lr, loss="mse", epochs=epochs
            )
        )
        losses += list(rec.loss)
        seconds += t
    after = evaluate(net, x, y)
    var = float(np.var(y))
    return {
        "x": x,
        "y": y,
        "before": before,
        "after": after,
        "losses": np.asarray(losses),
        "var_target": var,
        "seconds": seconds,
        "phases": phases,
    }


def plot(model: str, r: dict[str, Any], path: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(9, 8), height_ratios=[1, 1, 1.2])
    ep = np.arange(len(r["losses"]))
    axes[0].semilogy(ep, r["losses"] / r["var_target"], color="C0")
    axes[0].axhline(1.0 / RATIO_BOUND * r["losses"][0] / r["var_target"], color="k", ls=":")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("MSE / var(target)")
    axes[0].set_title(f"{model.upper()}: BPTT on pattern generation (dotted: initial / 10)")
    t = np.arange(len(r["y"]))
    axes[1].plot(t, r["y"][:, 0], color="k", lw=2, label="target")
    axes[1].plot(t, r["before"]["output"], color="C7", lw=1, label="before training")
    axes[1].plot(t, r["after"]["output"], color="C3", lw=1.2, label="after training")
    axes[1].set_xlabel("time (ms)")
    axes[1].set_ylabel("output")
    axes[1].legend(loc="upper right", fontsize=8)
    k, u = np.nonzero(r["after"]["spikes"])
    axes[2].scatter(k, u, s=1, color="k", marker="|")
    axes[2].set_xlim(0, len(t))
    axes[2].set_xlabel("time (ms)")
    axes[2].set_ylabel("unit")
    axes[2].set_title(f"recurrent spikes after training ({r['after']['rate_hz']:.1f} Hz)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=["lif", "alif", "both"], default="both")
    parser.add_argument("--epochs", type=int, default=None, help="default 250 (--quick: 20)")
    parser.add_argument("--seed", type=int, default=0, help="draws the task and the weights")
    parser.add_argument("--quick", action="store_true", help="20 epochs: a smoke test")
    args = parser.parse_args(argv)
    cfg = dict(CONFIG)
    cfg["epochs"] = args.epochs if args.epochs is not None else (20 if args.quick else 250)
    if cfg["epochs"] < 1:
        parser.error("--epochs must be >= 1")
    models = ["lif", "alif"] if args.model == "both" else [args.model]
    threads = single_thread()
    print("BPTT pattern generation (Bellec et al. 2020): 100 Poisson inputs at 50 Hz -> 100")
    print(
        f"  recurrent units -> leaky readout; {cfg['steps']} steps of {cfg['dt_ms']:g} ms, "
        f"target a sum of sines with periods {cfg['periods_ms']} ms; seed {args.seed}"
    )
    n_final = round(cfg["final_fraction"] * cfg["epochs"])
    print(
        f"  Adam, MSE, full-sequence BPTT: {cfg['epochs'] - n_final} epochs at lr "
        f"{cfg['lr']:g}, then {n_final} at {cfg['lr_final']:g}; float32; {threads}"
    )

    suffix = ".quick" if args.quick else ""
    out_json = RESULTS_DIR / f"bptt_pattern{suffix}.json"
    old: dict[str, Any] = {}
    if out_json.exists():
        try:
            old = json.loads(out_json.read_text()).get("results", {})
        except (json.JSONDecodeError, AttributeError):
            old = {}
    results = dict(old)
    rows, checks = [], []
    for model in models:
        print(f"\n{model.upper()}: training ...", flush=True)
        r = train(model, args.seed, cfg)
        L, var = r["losses"], r["var_target"]
        every = max(1, len(L) // 10)
        curve = {int(e): float(L[e]) for e in range(0, len(L), every)}
        curve[len(L) - 1] = float(L[-1])
        for e, v in curve.items():
            print(f"  epoch {e:4d}: MSE {v:.5f}  (MSE / var {v / var:.4f})")
        init, final, rerun = float(L[0]), float(L[-1]), r["after"]["mse"]
        per_epoch = r["seconds"] / len(L)
        png = RESULTS_DIR / f"bptt_pattern_{model}{suffix}.png"
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        plot(model, r, png)
        results[model] = {
            "seed": args.seed,
            "epochs": len(L),
            "phases": [{"lr": lr, "epochs": ep} for lr, ep in r["phases"]],
            "var_target": var,
            "mse_initial": init,
            "mse_final": final,
            "mse_trained_rerun": rerun,
            "ratio_initial_final": init / final,
            "nmse_initial": init / var,
            "nmse_final": final / var,
            "nmse_trained_rerun": rerun / var,
            "min_mse": float(L.min()),
            "rate_hz_before": r["before"]["rate_hz"],
            "rate_hz_after": r["after"]["rate_hz"],
            "seconds_total": r["seconds"],
            "seconds_per_epoch": per_epoch,
            "mse_curve": [float(v) for v in L],
            "figure": str(png.relative_to(RESULTS_DIR.parents[1])),
        }
        rows.append(
            (
                model.upper(),
                init,
                final,
                rerun,
                init / final,
                final / var,
                r["before"]["rate_hz"],
                r["after"]["rate_hz"],
                per_epoch,
                r["seconds"],
            )
        )
        checks.append((model, init / final))
        print(f"  figure: {png}")

    print()
    print(
        table(
            [
                "model",
                "MSE initial",
                "MSE final",
                "MSE rerun",
                "ratio",
                "MSE/var final",
                "Hz before",
                "Hz after",
                "s / epoch",
                "s total",
            ],
            rows,
            f"BPTT pattern generation, {cfg['epochs']} epochs, seed {args.seed} (final: the "
            "last epoch's MSE; rerun: the trained network run again)",
        )
    )
    path = write_json(
        out_json.name,
        {"machine": machine(), "config": cfg, "threads": threads, "results": results},
    )
    if args.quick:
        print("\n(--quick is a smoke test: too few epochs for the acceptance bound)")
    print("\nAcceptance:")
    ok = True
    for model, ratio in checks:
        met = ratio >= RATIO_BOUND
        ok &= met
        print(
            f"  [{'MET' if met else 'NOT MET'}] {model.upper()}: initial / final MSE >= "
            f"{RATIO_BOUND:g}: {fmt(ratio)}"
        )
    print(f"\nresults: {path}")
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
