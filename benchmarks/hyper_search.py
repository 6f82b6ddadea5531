"""A random search of 100 echo-state networks: one batched pass per generation against one
network at a time, and against ``reservoirpy.hyper``.

    .venv/bin/python benchmarks/hyper_search.py [--trials 100] [--units 500]
                                                [--generation 50] [--no-peer] [--device cpu]

The task: Mackey-Glass (reservoirpy's defaults, ``rnngraph.datasets.mackey_glass``)
rescaled to [-1, 1], x(t+1) from x(t), 2000 training steps (the first 100 left out of the
fit), then 1000 test steps continuing the state; loss the test NRMSE normalised by the
targets' standard deviation. The space (5 hyperparameters): spectral radius loguniform(0.1,
2), leak rate loguniform(0.05, 1), input scaling uniform(0.1, 2), ridge loguniform(1e-9,
1e-3), seed choice(1..5); ``--units`` leaky-tanh units, 10 % recurrent and 20 % input
connectivity, no bias, float64.

Three ways, each on all of the machine's threads, run one after the other:

* ``ensemble``: ``rg.hyper.search(..., generation=G)``: G trials per batched native pass;
* ``one by one``: the same trials (the parameters the search drew), each as a user writes it
  from the README: ``rg.input_weights``/``rg.recurrent_weights`` from
  ``torch.Generator().manual_seed(seed)``, an ``rg.Network``, ``fit_ridge``, ``run`` (the
  native loop at batch 1); it must find the same best trial, with every loss equal to
  rounding;
* ``reservoirpy.hyper``: ``research`` with hyperopt's random method on the same space and
  task (its own draws of trials and weights, so only its time compares), in
  ``.peers/reservoirpy`` (``make peers PEERS=reservoirpy``; ``--no-peer`` leaves it out).

``--device cuda`` runs the ensemble on a GPU (its torch loop: a sparse product per seed, all
members of a seed as columns); the one-by-one networks and reservoirpy stay on the CPU, so
the ratios then compare a GPU against the CPU, and ``--trials 1000`` is the figure to take
there. The script prints which loop the ensemble ran. All figures go to
``benchmarks/results/hyper_search.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import fmt, peer_python, run_record, table, write_json

import rnngraph as rg

HERE = Path(__file__).resolve().parent
F64 = torch.float64
SEEDS = (1, 2, 3, 4, 5)
BOUNDS = {"sr": (0.1, 2.0), "lr": (0.05, 1.0), "iss": (0.1, 2.0), "ridge": (1e-9, 1e-3)}
N_TRAIN, N_TEST, WASHOUT = 2000, 1000, 100


def task() -> dict[str, np.ndarray]:
    s = rg.datasets.mackey_glass(N_TRAIN + N_TEST + 1)
    s = 2.0 * (s - s.min()) / (s.max() - s.min()) - 1.0
    x, y = s[:-1], s[1:]
    return {
        "x_train": x[:N_TRAIN],
        "y_train": y[:N_TRAIN],
        "x_test": x[N_TRAIN:],
        "y_test": y[N_TRAIN:],
    }


def space() -> dict:
    return {
        "sr": rg.hyper.loguniform(*BOUNDS["sr"]),
        "lr": rg.hyper.loguniform(*BOUNDS["lr"]),
        "input_scaling": rg.hyper.uniform(*BOUNDS["iss"]),
        "alpha": rg.hyper.loguniform(*BOUNDS["ridge"]),
        "seed": rg.hyper.choice(SEEDS),
    }


def one_trial(p: dict, d: dict, units: int) -> float:
    """One trial as a user writes it, the README's way."""
    gen = torch.Generator().manual_seed(p["seed"])
    w_in = rg.input_weights(
        units, 1, connectivity=0.2, scaling=p["input_scaling"], seed=gen, dtype=F64
    )
    w = rg.recurrent_weights(units, p["sr"], connectivity=0.1, seed=gen, dtype=F64)
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", "leaky_tanh", n=units, lr=p["lr"])
    net.add_edge("in", "res", weights=w_in)
    net.add_edge("res", "res", weights=w, feedback=True)
    net.fit_ridge(d["x_train"], d["y_train"], alpha=p["alpha"], washout=WASHOUT)
    pred = net.run(d["x_test"]).output.numpy()
    if not np.isfinite(pred).all():
        return float("nan")
    return float(rg.metrics.nrmse(d["y_test"], pred))


def peer(d: dict, trials: int, units: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "in.npz"
        bounds = {k: np.array(v) for k, v in BOUNDS.items()}
        np.savez(
            data,
            **d,
            **bounds,
            n_trials=trials,
            units=units,
            washout=WASHOUT,
            search_seed=0,
            seeds=np.array(SEEDS),
        )
        out = Path(tmp) / "out.json"
        script = HERE / "peers" / "reservoirpy_hyper.py"
        cmd = [str(peer_python("reservoirpy")), "-W", "ignore", str(script), str(data), str(out)]
        subprocess.run(cmd, check=True, env=dict(os.environ))
        return json.loads(out.read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--units", type=int, default=500)
    p.add_argument("--generation", type=int, default=50)
    p.add_argument("--no-peer", action="store_true")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    print(f"threads: {torch.get_num_threads()} (the machine's), {args.trials} trials")
    loop = rg.ReservoirEnsemble(10, 1, seed=[1], device=args.device)
    print(f"ensemble on {args.device}: {loop.loop} loop ({loop.loop_why or 'the fastest'})")
    d = task()
    train, test = (d["x_train"], d["y_train"]), (d["x_test"], d["y_test"])
    kw = {"units": args.units, "washout": WASHOUT, "progress": False, "seed": 0}
    kw["device"] = args.device
    rg.hyper.search(space(), train, test, 2, generation=2, **kw)  # warm-up (library, caches)
    rg.network._ensemble._draw.cache_clear()  # the timed search draws its seeds itself
    t0 = time.perf_counter()
    result = rg.hyper.search(space(), train, test, args.trials, generation=args.generation, **kw)
    t_ens = time.perf_counter() - t0
    t0 = time.perf_counter()
    seq = [one_trial(t.params, d, args.units) for t in result.trials]
    t_seq = time.perf_counter() - t0
    rel = np.abs(result.losses - np.array(seq)) / np.array(seq)
    # a reservoir of spectral radius above 1 may be chaotic: two orders of summation (as
    # between the native and the torch loop of one network) part ways there
    stable = result.values("sr") < 1.0
    diff, diff_stable = float(np.nanmax(rel)), float(np.nanmax(rel[stable]))
    best_seq = int(np.nanargmin(seq))
    rows = [
        ["ensemble (rg.hyper.search)", fmt(t_ens), "1", result.best.number, fmt(result.best.loss)],
        [
            "one by one (rg.Network)",
            fmt(t_seq),
            fmt(t_seq / t_ens, 2),
            best_seq,
            fmt(seq[best_seq]),
        ],
    ]
    out = {
        "ensemble_s": t_ens,
        "ensemble_device": args.device,
        "ensemble_loop": loop.loop,
        "one_by_one_s": t_seq,
        "speedup_vs_one_by_one": t_seq / t_ens,
        "same_best_trial": best_seq == result.best.number,
        "max_rel_loss_difference": diff,
        "max_rel_loss_difference_sr_below_1": diff_stable,
        "best": {"number": result.best.number, "params": result.best.params},
    }
    if not args.no_peer:
        rp = peer(d, args.trials, args.units)
        out |= {"reservoirpy_s": rp["seconds"], "speedup_vs_reservoirpy": rp["seconds"] / t_ens}
        rows.append(
            [
                "reservoirpy.hyper",
                fmt(rp["seconds"]),
                fmt(rp["seconds"] / t_ens, 2),
                "-",
                fmt(rp["best_loss"]),
            ]
        )
    title = f"{args.trials} trials, {args.units} units, generation {args.generation}"
    heads = ["search", "seconds", "x the ensemble's time", "best trial", "best loss"]
    print(table(heads, rows, title=title))
    print(
        f"same best trial: {out['same_best_trial']}; largest relative loss difference "
        f"ensemble vs one by one: {diff_stable:.1e} over the trials of spectral radius < 1 "
        f"({int(stable.sum())}), {diff:.1e} over all"
    )
    write_json("hyper_search.json", run_record(None, args=vars(args), results=out))


if __name__ == "__main__":
    main()
