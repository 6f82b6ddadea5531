"""FORCE learning of Sussillo & Abbott (2009): a chaotic rate network learns a periodic pattern.

    .venv/bin/python benchmarks/force_sussillo_abbott.py [--seeds 5] [--first-seed 1]
        [--forgetting 0.999] [--plain-seeds K] [--quick]

Sussillo & Abbott, Neuron 63:544 (2009), doi:10.1016/j.neuron.2009.07.018, Fig. 2, in the
form of the paper's script: N = 1000 rate units,

    x(t + dt) = x + dt/tau (-x + J r + w_f z),   r = tanh(x),   z = w^T r,

J sparse (p = 0.1, nonzero entries N(0, 1/(pN)) times g = 1.5: chaotic), feedback weights
w_f ~ U(-1, 1), readout w(0) = 0, initial state x(0) = 0.5 N(0, 1), z(0) = 0.5 N(0, 1).
Time is in units of tau: tau = 1, dt = 0.1 (the script's ``x <- (1 - dt) x + dt (J r + w_f z)``;
tau = 10 ms in the paper, so dt = 1 ms). Target (``rnngraph.datasets.force_target``):
f(t) = (1.3/1.5)(sin(pi f t) + sin(2 pi f t)/2 + sin(3 pi f t)/6 + sin(4 pi f t)/3), f = 1/60.
Training: 1440 time units (14400 steps), the network running on its own output while RLS
(P(0) = I/alpha, alpha = 1) updates w every 2nd step (steps 2, 4, ... as in the script, with
the a-priori error e = w^T r - f). Test: the next 1440 units with learning off.

RLS forgetting: with lambda < 1 each update weighs the earlier samples by lambda,

    k = P r,   P <- (P - k k^T / (lambda + r^T k)) / lambda,   w <- w - e k / (lambda + r^T k),

and lambda = 1 is the script's update. With lambda = 1 the final w is the ridge solution over
the whole training run, early samples included, when the network ran with very different
weights; the frozen w then produces an oscillation whose period is off by 0.05-0.2 %, and the
test error grows period by period. The default lambda = 0.999 (a memory of about 1000
updates, 200 time units or 1.7 target periods) fits w to the network's settled activity; it
was chosen on seeds 101-120 (``--first-seed 101 --seeds 20 --forgetting L`` for L in 1,
0.9999, 0.9995, 0.999, 0.998, 0.995) before seeds 1-20 were run. Each seed is also trained
with lambda = 1 (the script exactly) for the column "test MAE, lambda = 1".

For every seed the network is built from rnngraph nodes and edges and trained by
``Network.fit_rls(None, targets, ...)`` (closed loop), then tested by ``Network.run(steps=...)``.
Beside it, a plain float64 torch loop of the same equations with the same J, w_f, x(0), z(0)
and lambda (dense J, out-of-place ``P = (P - outer(k, k) / (lambda + r @ k)) / lambda``): its
first 200 steps on every seed, to check that both produce the same output trajectory, and
the whole task (timed) on the first ``--plain-seeds`` seeds (default: all; 30 to 90 s per
seed). Reported: train and test MAE, the training wall time and the ratio rnngraph / plain
loop. Figures go to ``benchmarks/results/force_sussillo_abbott.json`` (with ``.seedS`` and
``.lambdaL`` before ``.json`` for another first seed or forgetting factor, ``.quick`` with
``--quick``).
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

import numpy as np
import torch
from _common import fmt, ratio, run_record, single_thread, summary, table, timed, write_json

import rnngraph as rg

F64 = torch.float64

CONFIG: dict[str, Any] = {
    "n_units": 1000,
    "p": 0.1,
    "g": 1.5,
    "tau": 1.0,
    "dt": 0.1,
    "alpha": 1.0,
    "forgetting": 0.999,
    "update_every": 2,
    "f": 1.0 / 60.0,
    "train_time": 1440.0,
    "test_time": 1440.0,
    "check_steps": 200,
    "sparse_J": True,
}
#: test MAE below which a seed counts as learned (the acceptance bound on the median)
MAE_BOUND = 0.02


def draw(seed: int, cfg: dict[str, Any]) -> dict[str, torch.Tensor]:
    """J (N, N), w_f (N, 1), x0 (N,), z0 (1,) of one seed, from one torch generator."""
    n, p, g = cfg["n_units"], cfg["p"], cfg["g"]
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(n, n, generator=gen, dtype=F64) < p
    J = g * torch.randn(n, n, generator=gen, dtype=F64) * mask / math.sqrt(p * n)  # (N, N)
    w_f = 2.0 * torch.rand(n, 1, generator=gen, dtype=F64) - 1.0  # (N, 1)
    x0 = 0.5 * torch.randn(n, generator=gen, dtype=F64)  # (N,)
    z0 = 0.5 * torch.randn(1, generator=gen, dtype=F64)  # (1,)
    return {"J": J, "w_f": w_f, "x0": x0, "z0": z0}


def build(d: dict[str, torch.Tensor], cfg: dict[str, Any]) -> rg.Network:
    """res (leaky integrator, tanh output) with a recurrent and a readout feedback edge.

    The recurrent edge reads r(t - dt), ``tanh(x0)`` before the first step; the feedback
    edge reads z(t - dt), ``z0`` before the first step."""
    n = cfg["n_units"]
    net = rg.Network(dt=cfg["dt"], dtype=F64)
    net.add_diffeq_node("res", "leaky_integrator", n=n, tau=cfg["tau"], init={"v": d["x0"]})
    net.add_edge(
        "res", "res", weights=d["J"], feedback=True, sparse=cfg["sparse_J"], init=d["x0"].tanh()
    )
    net.add_func_node("readout", 1)
    net.add_edge("res", "readout", weights=torch.zeros(1, n, dtype=F64), train="rls")
    net.add_edge("readout", "res", weights=d["w_f"], feedback=True, init=d["z0"])
    return net


def run_rnngraph(
    d: dict[str, torch.Tensor], f: np.ndarray, n_train: int, cfg: dict[str, Any]
) -> dict:
    """Closed-loop FORCE training on ``f[:n_train]`` with RLS forgetting ``cfg["forgetting"]``,
    then the test run over the rest of ``f``, the target ``(T, 1)``."""
    net = build(d, cfg)
    # washout=1: the first update at the 2nd step, then every 2nd (the script's mod(ti, 2))
    rec, t_train = timed(
        lambda: net.fit_rls(
            None,
            f[:n_train],
            edge=("res", "readout"),
            alpha=cfg["alpha"],
            forgetting=cfg["forgetting"],
            update_steps=cfg["update_every"],
            washout=cfg["update_every"] - 1,
        )
    )
    test, t_test = timed(lambda: net.run(steps=len(f) - n_train))
    return {
        "z_train": rec.output.numpy()[:, 0],
        "z_test": test.output.numpy()[:, 0],
        "t_train": t_train,
        "t_test": t_test,
    }


def run_plain(
    d: dict[str, torch.Tensor], f: np.ndarray, n_train: int, n_test: int, cfg: dict[str, Any]
) -> dict:
    """The same task as a plain torch loop (dense J, out-of-place RLS update)."""
    dt, tau, every, lam = cfg["dt"], cfg["tau"], cfg["update_every"], cfg["forgetting"]
    J, w_f = d["J"], d["w_f"][:, 0]  # (N, N), (N,)
    target = torch.as_tensor(f[:, 0])
    x = d["x0"].clone()
    r = torch.tanh(x)
    z = d["z0"][0].clone()
    w = torch.zeros_like(x)
    P = torch.eye(len(x), dtype=F64) / cfg["alpha"]
    z_train = torch.zeros(n_train, dtype=F64)
    z_test = torch.zeros(n_test, dtype=F64)

    def train() -> None:
        nonlocal x, r, z, w, P
        for t in range(n_train):
            x = x + (dt / tau) * (-x + J @ r + w_f * z)
            r = torch.tanh(x)
            z = w @ r
            z_train[t] = z
            if (t + 1) % every == 0:
                k = P @ r  # (N,)
                denom = lam + r @ k
                P = (P - torch.outer(k, k) / denom) / lam  # (N, N), out of place
                e = z - target[t]  # a-priori error
                w = w - (e / denom) * k  # = w - e P(t) r

    def test() -> None:
        nonlocal x, r, z
        for t in range(n_test):
            x = x + (dt / tau) * (-x + J @ r + w_f * z)
            r = torch.tanh(x)
            z = w @ r
            z_test[t] = z

    _, t_train = timed(train)
    _, t_test = timed(test)
    return {
        "z_train": z_train.numpy(),
        "z_test": z_test.numpy(),
        "t_train": t_train,
        "t_test": t_test,
    }


def mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a - b)))


def phase_drift(z: np.ndarray, f_all: np.ndarray, start: int, period: int) -> dict[str, Any]:
    """Per period of the test output ``z`` (which starts at step ``start`` of the target
    ``f_all``): the MAE, the lag (steps, within +-period/4) that best aligns it with the
    target, and the MAE after that alignment. A lag growing by a fixed number of steps per
    period means the learned oscillation runs at a slightly different period."""
    edge = period // 4
    maes, lags, aligned = [], [], []
    for i in range(len(z) // period):
        a, b = i * period, (i + 1) * period
        seg = z[a:b]
        err = {
            lag: mae(seg, f_all[start + a + lag : start + b + lag])
            for lag in range(-edge, edge + 1)
            if start + a + lag >= 0 and start + b + lag <= len(f_all)
        }
        best = min(err, key=err.get)
        maes.append(mae(seg, f_all[start + a : start + b]))
        lags.append(best)
        aligned.append(err[best])
    slope = float(np.polyfit(np.arange(len(lags)), lags, 1)[0]) if len(lags) > 1 else 0.0
    return {
        "mae_per_period": maes,
        "lag_per_period": lags,
        "aligned_mae_per_period": aligned,
        "lag_steps_per_period": slope,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (default 5)")
    parser.add_argument("--first-seed", type=int, default=1, help="first seed (default 1)")
    parser.add_argument(
        "--forgetting",
        type=float,
        default=CONFIG["forgetting"],
        help=f"RLS forgetting factor lambda (default {CONFIG['forgetting']}; 1: the script)",
    )
    parser.add_argument(
        "--plain-seeds",
        type=int,
        default=None,
        help="run the whole task with the plain loop on the first K seeds (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="1 seed, 100 + 100 time units")
    args = parser.parse_args(argv)
    cfg = dict(CONFIG, forgetting=args.forgetting)
    if args.quick:
        cfg.update(train_time=100.0, test_time=100.0)
    n_seeds = 1 if args.quick else args.seeds
    n_plain = n_seeds if args.plain_seeds is None else min(n_seeds, args.plain_seeds)
    seeds = list(range(args.first_seed, args.first_seed + n_seeds))
    script = dict(cfg, forgetting=1.0)  # the script's RLS, for the lambda = 1 column
    with_script = cfg["forgetting"] != 1.0
    threads = single_thread()
    dt = cfg["dt"]
    n_train = round(cfg["train_time"] / dt)
    n_test = round(cfg["test_time"] / dt)
    f = rg.datasets.force_target(dt * np.arange(n_train + n_test), f=cfg["f"])[:, None]
    period = round(2.0 / cfg["f"] / dt)  # steps in one period of the target (120 units)
    # one period longer, for aligning the last test period with the target (phase_drift)
    f_long = rg.datasets.force_target(dt * np.arange(n_train + n_test + period), f=cfg["f"])
    f_train, f_test = f[:n_train, 0], f[n_train:, 0]

    print("FORCE (Sussillo & Abbott 2009), N = 1000 rate units, g = 1.5, float64")
    print(
        f"  tau = {cfg['tau']:g}, dt = {dt:g} (time in units of tau, the paper's script); train "
        f"{cfg['train_time']:g} units ({n_train} steps, RLS every {cfg['update_every']} steps, "
        f"alpha = {cfg['alpha']:g}, forgetting {cfg['forgetting']:g}), test "
        f"{cfg['test_time']:g} units with learning off"
    )
    print(
        f"  {threads}; rnngraph's J is {'CSR (sparse=True)' if cfg['sparse_J'] else 'dense'}, "
        "the plain loop's dense"
    )
    print(
        f"  plain loop: first {cfg['check_steps']} steps on every seed (trajectory check), the "
        f"whole task on seeds {seeds[:n_plain]}"
    )
    # untimed warm-up of both code paths
    warm = dict(cfg, n_units=100)
    run_rnngraph(draw(0, warm), f[:400], 200, warm)
    run_plain(draw(0, warm), f[:400], 200, 200, warm)

    def scores(run: dict) -> dict[str, float]:
        """Errors and times of a run (``run_rnngraph`` or ``run_plain``) of the whole task."""
        return {
            "train_mae": mae(run["z_train"], f_train),
            "test_mae": mae(run["z_test"], f_test),
            "test_mae_first_period": mae(run["z_test"][:period], f_test[:period]),
            "train_s": run["t_train"],
            "test_s": run["t_test"],
        }

    rows, per_seed, drift_rows = [], [], []
    for i, seed in enumerate(seeds):
        d = draw(seed, cfg)
        ours = run_rnngraph(d, f, n_train, cfg)
        k = cfg["check_steps"]
        check = run_plain(d, f[: 2 * k], k, k, cfg)
        entry: dict[str, Any] = {
            "seed": seed,
            "rnngraph": scores(ours),
            f"trajectory_max_abs_diff_first_{k}_steps": float(
                np.max(np.abs(ours["z_train"][:k] - check["z_train"]))
            ),
        }
        if with_script:
            lam1 = run_rnngraph(d, f, n_train, script)
            entry["rnngraph_lambda_1"] = scores(lam1)
        if i < n_plain:
            plain = run_plain(d, f, n_train, n_test, cfg)
            entry["plain"] = scores(plain)
            diff = np.abs(ours["z_train"] - plain["z_train"])
            entry["train_trajectory_max_abs_diff"] = float(diff.max())
            entry["train_trajectory_first_step_above_1e-6"] = (
                int(np.argmax(diff > 1e-6)) if (diff > 1e-6).any() else None
            )
            entry["test_trajectory_max_abs_diff"] = float(
                np.max(np.abs(ours["z_test"] - plain["z_test"]))
            )
        drift = phase_drift(ours["z_test"], f_long, n_train, period)
        entry["rnngraph"]["phase_drift"] = drift
        per_seed.append(entry)
        o, p = entry["rnngraph"], entry.get("plain")
        if drift["lag_per_period"]:
            drift_rows.append(
                (
                    seed,
                    o["test_mae"],
                    drift["mae_per_period"][0],
                    drift["mae_per_period"][-1],
                    f"{drift['lag_steps_per_period']:+.2f}",
                    f"{-100 * drift['lag_steps_per_period'] / period:+.3f} %",
                    float(np.median(drift["aligned_mae_per_period"])),
                )
            )
        rows.append(
            (
                seed,
                o["train_mae"],
                o["test_mae"],
                entry["rnngraph_lambda_1"]["test_mae"] if with_script else "-",
                o["train_s"],
                p["train_mae"] if p else "-",
                p["test_mae"] if p else "-",
                p["train_s"] if p else "-",
                ratio(o["train_s"], p["train_s"]) if p else "-",
                entry[f"trajectory_max_abs_diff_first_{k}_steps"],
                entry["train_trajectory_max_abs_diff"] if p else "-",
                entry["test_trajectory_max_abs_diff"] if p else "-",
            )
        )
        print(
            f"  seed {seed}: rnngraph train {o['train_s']:.2f} s, train MAE {o['train_mae']:.4f}, "
            f"test MAE {o['test_mae']:.4f} (first period {o['test_mae_first_period']:.4f})"
            + (
                f", with lambda = 1 {entry['rnngraph_lambda_1']['test_mae']:.4f}"
                if with_script
                else ""
            )
            + (
                f"; plain loop train {p['train_s']:.1f} s, test MAE {p['test_mae']:.4f}"
                if p
                else ""
            ),
            flush=True,
        )

    test_mae = [e["rnngraph"]["test_mae"] for e in per_seed]
    test_mae_1 = [e["rnngraph_lambda_1"]["test_mae"] for e in per_seed if with_script]
    train_mae = [e["rnngraph"]["train_mae"] for e in per_seed]
    t_ours = [e["rnngraph"]["train_s"] for e in per_seed]
    plain_seeds = [e for e in per_seed if "plain" in e]
    ratios = [ratio(e["rnngraph"]["train_s"], e["plain"]["train_s"]) for e in plain_seeds]
    rows.append(
        (
            "median",
            float(np.median(train_mae)),
            float(np.median(test_mae)),
            float(np.median(test_mae_1)) if with_script else "-",
            float(np.median(t_ours)),
            float(np.median([e["plain"]["train_mae"] for e in plain_seeds]))
            if plain_seeds
            else "-",
            float(np.median([e["plain"]["test_mae"] for e in plain_seeds])) if plain_seeds else "-",
            float(np.median([e["plain"]["train_s"] for e in plain_seeds])) if plain_seeds else "-",
            float(np.median(ratios)) if ratios else "-",
            max(e[f"trajectory_max_abs_diff_first_{k}_steps"] for e in per_seed),
            max(e["train_trajectory_max_abs_diff"] for e in plain_seeds) if plain_seeds else "-",
            max(e["test_trajectory_max_abs_diff"] for e in plain_seeds) if plain_seeds else "-",
        )
    )
    print()
    print(
        table(
            [
                "seed",
                "train MAE",
                "test MAE",
                "test MAE, lambda = 1",
                "train s",
                "plain train MAE",
                "plain test MAE",
                "plain train s",
                "time ratio",
                f"z diff, first {k} steps",
                "z diff, training",
                "z diff, test",
            ],
            rows,
            f"FORCE, RLS forgetting lambda = {cfg['forgetting']:g}: rnngraph (fit_rls closed "
            "loop) and the plain torch loop, same J, w_f, x0, z0; test MAE, lambda = 1: rnngraph "
            "with the script's RLS; z diff = max abs difference of the two outputs (median row: "
            "the max over seeds)",
        )
    )
    if drift_rows:
        print()
        print(
            table(
                [
                    "seed",
                    "test MAE",
                    "MAE, first period",
                    "MAE, last period",
                    "output leads by, steps/period",
                    "output period - target period",
                    "MAE after phase alignment (median over periods)",
                ],
                drift_rows,
                f"Test phase (rnngraph), period by period ({period} steps): the shift that best "
                "aligns the output with the target (its growth per period, by a line fit), and "
                "the error after that alignment",
            )
        )
    s_test = summary(test_mae, seeds)
    s_test_1 = summary(test_mae_1, seeds) if with_script else None
    acc = [
        (
            f"median test MAE <= {MAE_BOUND} (forgetting {cfg['forgetting']:g})",
            fmt(s_test["median"]),
            s_test["median"] <= MAE_BOUND,
        ),
    ]
    if args.quick:
        print("\n(--quick is a smoke test: 100 time units of training are too few to learn)")
    print("\nAcceptance:")
    for label, value, met in acc:
        print(f"  [{'MET' if met else 'NOT MET'}] {label}: {value}")
    for lam, maes, st in ((cfg["forgetting"], test_mae, s_test), (1.0, test_mae_1, s_test_1)):
        if st is None:
            continue
        print(
            f"  forgetting {lam:g}: median test MAE {fmt(st['median'])}; <= {MAE_BOUND} on "
            f"{sum(m <= MAE_BOUND for m in maes)} of {len(seeds)} seeds; worst {fmt(st['max'])} "
            f"(seed {st['worst_label']}), best {fmt(st['min'])} (seed {st['best_label']})"
        )
    if ratios:
        print(
            f"  training time rnngraph / plain loop: median {fmt(float(np.median(ratios)))} "
            f"over seeds {[e['seed'] for e in plain_seeds]}"
        )
    result = run_record(
        argv,
        threads=threads,
        config=cfg,
        steps={"train": n_train, "test": n_test},
        seeds=seeds,
        per_seed=per_seed,
        summary={
            "train_mae": summary(train_mae, seeds),
            "test_mae": s_test,
            "test_mae_lambda_1": s_test_1,
            "train_s_median": float(np.median(t_ours)),
            "time_ratio_median": float(np.median(ratios)) if ratios else None,
        },
        acceptance=[{"criterion": c, "value": v, "met": m} for c, v, m in acc],
    )
    name = "force_sussillo_abbott"  # other seeds or lambda: their own file
    name += f".seed{args.first_seed}" if args.first_seed != 1 else ""
    name += f".lambda{cfg['forgetting']:g}" if cfg["forgetting"] != CONFIG["forgetting"] else ""
    path = write_json(name + (".quick" if args.quick else "") + ".json", result)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
