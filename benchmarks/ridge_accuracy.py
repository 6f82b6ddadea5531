"""Accuracy of the ridge readout at high condition, against an SVD solution and reservoirpy.

    .venv/bin/python benchmarks/ridge_accuracy.py [--draws D]

Features with a mean of the order of their spread, whose centred Gram matrix has a condition
of 1e6, 1e9 and 1e11 (3000 samples, 200 features, 2 targets), are fitted with ridge
penalties 1e-8 and 1e-6 by

* ``rnngraph.training.Ridge`` (centred statistics, streamed in chunks of 700 samples);
* the augmented normal equations ``[X, 1]^T [X, 1]`` (what ``Ridge`` solves after its
  statistics have been read as ``xtx``);
* reservoirpy 0.4.2's ``Ridge`` node (in ``.peers/reservoirpy``; skipped when absent).

The reference is the solution from the SVD of the centred data. Reported: the relative
Frobenius error of the weights, the median over the draws. Results on stdout and in
``benchmarks/results/ridge_accuracy.json``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from _common import PEERS_DIR, run_peer, single_thread, table, write_json

from rnngraph.training import Ridge

ALPHAS = (1e-8, 1e-6)
CONDS = (1e6, 1e9, 1e11)


def case(seed: int, cond: float, m: int = 3000, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.standard_normal((m, n)))
    v, _ = np.linalg.qr(rng.standard_normal((n, n)))
    s = np.logspace(0, -np.log10(np.sqrt(cond)), n)
    X = (u * s) @ v.T * 10 + 0.3 + 0.2 * rng.standard_normal(n)
    Y = X @ rng.standard_normal((n, 2)) + 0.5 + 1e-3 * rng.standard_normal((m, 2))
    return X, Y


def svd_ridge(X: np.ndarray, Y: np.ndarray, alpha: float) -> np.ndarray:
    mx, my = X.mean(0), Y.mean(0)
    u, s, vt = np.linalg.svd(X - mx, full_matrices=False)
    return ((vt.T * (s / (s**2 + alpha))) @ (u.T @ (Y - my))).T


def ours(X: np.ndarray, Y: np.ndarray, alpha: float, augmented: bool) -> np.ndarray:
    ridge = Ridge(alpha=alpha)
    for k in range(0, len(X), 700):
        ridge.partial_fit(X[k : k + 700], Y[k : k + 700])
    if augmented:
        ridge.xtx  # noqa: B018 - read as augmented sums: the solve then takes those
    return ridge.solve()[0].numpy()


def theirs(X: np.ndarray, Y: np.ndarray) -> list[np.ndarray] | None:
    if not (PEERS_DIR / "reservoirpy" / "bin" / "python").exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(src, X=X, Y=Y, alphas=np.array(ALPHAS))
        script = Path(__file__).parent / "peers" / "reservoirpy_ridge.py"
        run_peer("reservoirpy", script, [src, dst])
        out = np.load(dst)
        return [out[f"W_{i}"] for i in range(len(ALPHAS))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=3)
    args = ap.parse_args()
    print(single_thread())
    rows, data = [], {}
    for cond in CONDS:
        errs: dict[tuple, list[float]] = {}
        for seed in range(args.draws):
            X, Y = case(seed, cond)
            peer = theirs(X, Y)
            for i, alpha in enumerate(ALPHAS):
                ref = svd_ridge(X, Y, alpha)
                sides = {"centred": ours(X, Y, alpha, False), "augmented": ours(X, Y, alpha, True)}
                if peer is not None:
                    sides["reservoirpy"] = peer[i]
                for name, W in sides.items():
                    err = float(np.linalg.norm(W - ref) / np.linalg.norm(ref))
                    errs.setdefault((alpha, name), []).append(err)
        for alpha in ALPHAS:
            med = {n: float(np.median(errs[(alpha, n)])) for (a, n) in errs if a == alpha}
            peer = med.get("reservoirpy")
            rows.append([f"{cond:.0e}", f"{alpha:.0e}", med["centred"], med["augmented"],
                         "missing" if peer is None else peer,
                         "-" if peer is None else peer / med["centred"]])  # fmt: skip
            data[f"cond={cond:g} alpha={alpha:g}"] = {k: errs[(alpha, k)] for k in med}
    headers = [
        "condition",
        "alpha",
        "rnngraph",
        "augmented",
        "reservoirpy",
        "reservoirpy / rnngraph",
    ]
    print(table(headers, rows, "Relative weight error against the SVD solution (median of draws)"))
    print(f"\nwritten: {write_json('ridge_accuracy.json', {'draws': args.draws, 'errors': data})}")


if __name__ == "__main__":
    main()
