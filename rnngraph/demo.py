"""``python -m rnngraph.demo``: fit an echo-state network to Mackey-Glass and plot it.

The task of reservoirpy's tutorials: one-step-ahead prediction of the Mackey-Glass series
(tau = 17) rescaled to [-1, 1], 2000 training steps (the first 100 dropped), then 2000 test
steps continuing the state. A 500-unit reservoir (spectral radius 1.25, leak rate 0.3, a
bias of +-1 on 20 % of the units), ridge readout (alpha = 1e-5), float64. Prints NRMSE
(normalised by the target's standard deviation and by its range) and R^2 on the test steps
for several reservoir draws (the score depends on the draw, so the median is the figure to
compare), and writes a figure.

``RNNGRAPH_SMALL=1`` shrinks it for a smoke test.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

import rnngraph as rg


def build_esn(n: int, seed: int, dtype: torch.dtype = torch.float64) -> rg.Network:
    """A leaky-tanh reservoir: input -> res, res -(1 step)-> res; W_in and W with
    reservoirpy's defaults, and a bias of +-1 on 20 % of the units."""
    net = rg.Network(dt=1.0, dtype=dtype)
    net.add_func_node("in", 1)
    bias = rg.bias_weights(n, connectivity=0.2, seed=seed + 2, dtype=dtype)
    net.add_diffeq_node("res", "leaky_tanh", n=n, lr=0.3, bias=bias)
    net.add_edge(
        "in",
        "res",
        weights=rg.input_weights(n, 1, connectivity=0.2, scaling=1.0, seed=seed, dtype=dtype),
    )
    net.add_edge(
        "res",
        "res",
        weights=rg.recurrent_weights(
            n, spectral_radius=1.25, connectivity=0.1, seed=seed + 1, dtype=dtype
        ),
        feedback=True,
    )
    return net


def fit_one(seed: int, n: int, data: tuple, washout: int) -> tuple[dict[str, float], np.ndarray]:
    """Fit one reservoir draw; returns its test scores and prediction."""
    x_train, y_train, x_test, y_test = data
    net = build_esn(n, seed)
    t0 = time.perf_counter()
    net.fit_ridge(x_train, y_train, alpha=1e-5, washout=washout)
    t1 = time.perf_counter()
    pred = net.run(x_test).output.numpy()  # continues from the end of training
    t2 = time.perf_counter()
    scores = {
        "seed": seed,
        "nrmse_std": rg.metrics.nrmse(y_test, pred, norm="std"),
        "nrmse_range": rg.metrics.nrmse(y_test, pred, norm="range"),
        "rsquare": rg.metrics.rsquare(y_test, pred),
        "fit_s": t1 - t0,
        "test_run_s": t2 - t1,
    }
    return scores, pred


def main(argv: list[str] | None = None) -> list[dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="reservoir draws (seeds 1..N)")
    parser.add_argument("--out", type=Path, default=Path("out"))
    args = parser.parse_args(argv)
    small = os.environ.get("RNNGRAPH_SMALL", "0") == "1"
    n, n_train, n_test, washout = (100, 500, 500, 50) if small else (500, 2000, 2000, 100)
    torch.set_num_threads(1)

    series = rg.datasets.mackey_glass(n_train + n_test + 1)
    series = 2.0 * (series - series.min()) / (series.max() - series.min()) - 1.0
    x, y = rg.datasets.to_forecasting(series, forecast=1)
    data = (x[:n_train], y[:n_train], x[n_train : n_train + n_test], y[n_train : n_train + n_test])
    y_test = data[3]

    print(f"Mackey-Glass one-step-ahead: ESN of {n} units, ridge alpha=1e-5, float64")
    print(f"train {n_train} steps (washout {washout}), test {n_test} steps; one thread")
    print(f"{'seed':>4}  {'NRMSE(std)':>10}  {'NRMSE(range)':>12}  {'R^2':>9}  {'run+fit':>8}")
    results, preds = [], {}
    for seed in range(1, args.seeds + 1):
        scores, preds[seed] = fit_one(seed, n, data, washout)
        results.append(scores)
        print(
            f"{seed:>4}  {scores['nrmse_std']:>10.3e}  {scores['nrmse_range']:>12.3e}  "
            f"{scores['rsquare']:>9.6f}  {scores['fit_s']:>7.3f}s"
        )
    order = sorted(results, key=lambda r: r["nrmse_std"])
    median = order[len(order) // 2]
    worst = order[-1]
    print(
        f"median over {len(results)} reservoirs: NRMSE(std) {median['nrmse_std']:.3e}, "
        f"NRMSE(range) {median['nrmse_range']:.3e}, R^2 {median['rsquare']:.6f} "
        f"(seed {median['seed']}); worst: {worst['nrmse_std']:.3e} (seed {worst['seed']})"
    )
    print(
        "NRMSE(std) divides the RMSE by the target's standard deviation, NRMSE(range) by "
        "its max - min."
    )

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - plot extra not installed
        print("(install rnngraph[plot] for the figure)")
        return results
    args.out.mkdir(parents=True, exist_ok=True)
    pred = preds[median["seed"]]
    fig, axes = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    t = np.arange(n_train, n_train + n_test)
    axes[0].plot(t, y_test[:, 0], "k", lw=1.5, label="Mackey-Glass x(t+1)")
    axes[0].plot(t, pred[:, 0], "C1--", lw=1.0, label=f"ESN prediction (seed {median['seed']})")
    axes[0].legend(loc="upper right")
    axes[0].set_ylabel("x")
    for r in results:
        err = np.abs(preds[r["seed"]][:, 0] - y_test[:, 0]) + 1e-12
        axes[1].semilogy(t, err, lw=0.6, label=f"seed {r['seed']}")
    axes[1].set_ylabel("|error|")
    axes[1].set_xlabel("step")
    axes[1].legend(loc="upper right", fontsize=7, ncol=5)
    axes[0].set_title(
        f"median reservoir: NRMSE(std) = {median['nrmse_std']:.2e}, R² = {median['rsquare']:.5f}"
    )
    fig.tight_layout()
    path = args.out / "demo_mackey_glass.png"
    fig.savefig(path, dpi=120)
    print(f"figure: {path}")
    return results


if __name__ == "__main__":
    main()
