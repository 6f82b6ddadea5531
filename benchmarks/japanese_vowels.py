"""Japanese vowels classification (reservoirpy's tutorial 5): rnngraph against reservoirpy.

    cd benchmarks && ../.venv/bin/python japanese_vowels.py [--draws 3] [--repeats 3]

The data: the UCI Japanese vowels set (Kudo et al. 1999) as it ships inside the ``aeon``
1.6.0 wheel (``aeon/datasets/data/JapaneseVowels/*.ts``): 270 training and 370 test
utterances of 9 speakers, 12 channels, 7 to 29 steps each. The wheel is ``pip
download``-ed once into ``benchmarks/results/cache`` (aeon is never installed); its ``.ts``
files are parsed here.

The two tasks of the tutorial, for every draw (seed 0, 1, ...: the weights, drawn with
``rg.recurrent_weights`` / ``rg.input_weights`` and given to both sides): 500 leaky-tanh
units ``x(t) = (1 - lr) x(t-1) + lr tanh(W x(t-1) + W_in u(t))``, W normal with 10 %
connectivity scaled to the spectral radius, W_in +-1 with 10 % connectivity (input scaling
1), no bias (reservoirpy 0.4.2's default), float64; W is CSR on both sides.

* A, transduction: sr 0.05, lr 1; the readout fed by the reservoir and the input
  (reservoirpy's ``[source >> reservoir, source] >> Ridge(ridge=1e-1)``, rnngraph's
  ``fit_ridge`` on both edges jointly), fitted with a warm-up of 2 steps per utterance on
  per-step one-hot targets; accuracy: the argmax of every test step. In reservoirpy every
  test utterance starts from the state held after the fit, the final state of the last
  training utterance; rnngraph reproduces this by passing that state as ``state=``.
* B, last state: sr 0.9, lr 0.1, ``Ridge(ridge=1e-6)`` on the last state of each utterance
  (each from the zero state); accuracy: the argmax per utterance.

Measured on one thread: per draw and task, the accuracy of each side, the largest absolute
difference of the test scores between the sides, and the median over ``--repeats`` (after
a warm-up) of the fit time (network construction included) and of the test time of each
side, with the ratios rnngraph / reservoirpy, all in the same run. reservoirpy runs in its
own venv (``benchmarks/peers/reservoirpy_japanese_vowels.py``). Results:
``benchmarks/results/japanese_vowels.json``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
from _common import (
    PEERS_DIR,
    RESULTS_DIR,
    ratio,
    run_peer,
    run_record,
    single_thread,
    table,
    write_json,
)

import rnngraph as rg

F64 = torch.float64
HERE = Path(__file__).resolve().parent
WHEEL = "aeon-1.6.0-py3-none-any.whl"
TS = "aeon/datasets/data/JapaneseVowels/JapaneseVowels_{}.ts"
TASKS = {
    "A": {"sr": 0.05, "lr": 1.0, "ridge": 1e-1, "warmup": 2},
    "B": {"sr": 0.9, "lr": 0.1, "ridge": 1e-6, "warmup": 0},
}
N_UNITS, N_IN, N_CLASSES = 500, 12, 9


def wheel() -> Path:
    """The aeon wheel: the cached one, or a fresh ``pip download``."""
    cache = RESULTS_DIR / "cache"
    if (cache / WHEEL).exists():
        return cache / WHEEL
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "aeon==1.6.0", "--no-deps", "-d", cache]
    proc = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not (cache / WHEEL).exists():
        sys.exit(
            f"cannot get {WHEEL} (the Japanese vowels data ship inside it): `pip download` "
            f"failed (exit {proc.returncode}):\n{proc.stderr.strip()[-2000:]}"
        )
    return cache / WHEEL


def parse_ts(text: str) -> tuple[list[np.ndarray], np.ndarray]:
    """The cases of an sktime/aeon ``.ts`` file: ``(T_k, channels)`` arrays and 0-based
    labels. After the ``@`` header, one line per case: channels separated by ``:``, values
    by ``,``, the class label last."""
    xs, labels, data = [], [], False
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            data = data or line.lower().startswith("@data")
            continue
        if data:
            *channels, label = line.split(":")
            xs.append(np.array([[float(v) for v in c.split(",")] for c in channels]).T)
            labels.append(int(label) - 1)
    return xs, np.array(labels)


def load() -> dict:
    """The training and test utterances and labels, checked against the set's shape."""
    with zipfile.ZipFile(wheel()) as z:
        (x_tr, y_tr), (x_te, y_te) = (
            parse_ts(z.read(TS.format(part)).decode()) for part in ("TRAIN", "TEST")
        )
    lengths = [len(x) for x in x_tr + x_te]
    got = (len(x_tr), len(x_te), {x.shape[1] for x in x_tr + x_te}, min(lengths), max(lengths))
    if got != (270, 370, {N_IN}, 7, 29) or set(y_tr) | set(y_te) != set(range(N_CLASSES)):
        sys.exit(f"unexpected Japanese vowels data: (train, test, channels, min T, max T) = {got}")
    return {"x_train": x_tr, "y_train": y_tr, "x_test": x_te, "y_test": y_te}


def draw(seed: int) -> dict[str, np.ndarray]:
    """W_in then W of task A, then of task B, from one generator seeded with ``seed``."""
    gen, out = torch.Generator().manual_seed(seed), {}
    for task, cfg in TASKS.items():
        out[f"Win_{task}"] = rg.input_weights(N_UNITS, N_IN, connectivity=0.1, seed=gen, dtype=F64)
        out[f"W_{task}"] = rg.recurrent_weights(
            N_UNITS, spectral_radius=cfg["sr"], connectivity=0.1, seed=gen, dtype=F64
        )
    return {k: v.numpy() for k, v in out.items()}


def network(w: dict, task: str) -> rg.Network:
    """input -> leaky tanh (CSR W, no bias) -> readout (from the reservoir, and for A from
    the input too; zero weights, to be fitted)."""
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", N_IN)
    net.add_diffeq_node("res", "leaky_tanh", n=N_UNITS, lr=TASKS[task]["lr"], bias=0.0)
    net.add_edge("in", "res", weights=w[f"Win_{task}"])
    net.add_edge("res", "res", weights=w[f"W_{task}"], feedback=True, sparse=True)
    net.add_func_node("readout", N_CLASSES)
    zeros = torch.zeros(N_CLASSES, N_UNITS, dtype=F64)
    net.add_edge("res", "readout", weights=zeros, bias=True)
    if task == "A":
        net.add_edge("in", "readout", weights=torch.zeros(N_CLASSES, N_IN, dtype=F64))
    return net


def ours_a(w: dict, d: dict) -> tuple[np.ndarray, float, float]:
    """Task A: scores of every test step, fit seconds, test seconds."""
    t0 = time.perf_counter()
    net = network(w, "A")
    edges = [("res", "readout"), ("in", "readout")]  # the bias on the first
    cfg = TASKS["A"]
    net.fit_ridge(d["x_train"], d["y_steps"], edge=edges, alpha=cfg["ridge"], washout=cfg["warmup"])
    start = net.run(d["x_train"][-1]).state  # reservoirpy's state after its fit
    t1 = time.perf_counter()
    scores = net.run(d["x_test"], record=["readout"], state=start).cat("readout").numpy()
    return scores, t1 - t0, time.perf_counter() - t1


def ours_b(w: dict, d: dict) -> tuple[np.ndarray, float, float]:
    """Task B: scores per test utterance, fit seconds, test seconds."""
    t0 = time.perf_counter()
    net = network(w, "B")
    alpha = TASKS["B"]["ridge"]
    net.fit_ridge(d["x_train"], d["onehot"], edge=("res", "readout"), alpha=alpha, reduce="last")
    t1 = time.perf_counter()
    scores = net.run(d["x_test"], record=["readout"]).last("readout").numpy()
    return scores, t1 - t0, time.perf_counter() - t1


def ours(weights: list[dict], d: dict, repeats: int) -> dict:
    """Every draw and task, ``repeats`` + 1 times (the first a warm-up); the last scores
    and the median times, keyed like the peer's results."""
    out = {}
    for s, w in enumerate(weights):
        for task, fn in (("A", ours_a), ("B", ours_b)):
            runs = [fn(w, d) for _ in range(repeats + 1)]
            out[f"scores_{task}_{s}"] = runs[-1][0]
            out[f"fit_{task}_{s}"] = float(np.median([r[1] for r in runs[1:]]))
            out[f"test_{task}_{s}"] = float(np.median([r[2] for r in runs[1:]]))
    return out


def theirs(weights: list[dict], d: dict, repeats: int) -> dict | None:
    """reservoirpy's results on the same data and weights (None without its venv)."""
    if not (PEERS_DIR / "reservoirpy" / "bin" / "python").exists():
        return None
    arrays = {f"{k}_{s}": v for s, w in enumerate(weights) for k, v in w.items()}
    for task, cfg in TASKS.items():
        arrays |= {f"{k}_{task}": v for k, v in cfg.items()}
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(
            src, x_train=np.concatenate(d["x_train"]), x_test=np.concatenate(d["x_test"]),
            len_train=[len(x) for x in d["x_train"]], len_test=[len(x) for x in d["x_test"]],
            y_train=d["onehot"], draws=len(weights), repeats=repeats, **arrays,
        )  # fmt: skip
        run_peer("reservoirpy", HERE / "peers" / "reservoirpy_japanese_vowels.py", [src, dst])
        with np.load(dst) as z:
            return {k: z[k] for k in z.files}


def accuracy(scores: np.ndarray, task: str, d: dict) -> float:
    labels = d["y_test"]
    if task == "A":
        labels = np.repeat(labels, [len(x) for x in d["x_test"]])
    return float(np.mean(np.argmax(scores, axis=1) == labels))


def rows(a: dict, b: dict | None, draws: int, d: dict) -> list[list]:
    """One row per draw and task: accuracies, score difference, fit and test times."""
    out = []
    for task in TASKS:
        for s in range(draws):
            k = f"{task}_{s}"
            sa, fa, ta = a[f"scores_{k}"], a[f"fit_{k}"], a[f"test_{k}"]
            if b is None:
                out.append([task, s, accuracy(sa, task, d), "-", "-", fa, "-", "-", ta, "-", "-"])
                continue
            sb, fb, tb = b[f"scores_{k}"], float(b[f"fit_{k}"]), float(b[f"test_{k}"])
            acc_a, acc_b = accuracy(sa, task, d), accuracy(sb, task, d)
            diff = float(np.abs(sa - sb).max())
            out.append([task, s, acc_a, acc_b, diff, fa, fb, ratio(fa, fb), ta, tb, ratio(ta, tb)])
    return out


HEADERS = [
    "task", "draw", "accuracy rnngraph", "accuracy reservoirpy", "max abs score diff",
    "fit s rnngraph", "fit s reservoirpy", "fit ratio", "test s rnngraph",
    "test s reservoirpy", "test ratio",
]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=3, help="weight draws, seeds 0..N-1")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats after a warm-up")
    args = ap.parse_args()
    print(single_thread(peer=True))
    d = load()
    d["onehot"] = np.eye(N_CLASSES)[d["y_train"]]
    pairs = zip(d["x_train"], d["onehot"], strict=True)
    d["y_steps"] = [np.repeat(y[None], len(x), axis=0) for x, y in pairs]
    weights = [draw(s) for s in range(args.draws)]
    a, b = ours(weights, d, args.repeats), theirs(weights, d, args.repeats)
    body = rows(a, b, args.draws, d)
    print(table(HEADERS, body))
    if b is None:
        print(f"reservoirpy missing: {PEERS_DIR / 'reservoirpy'} (make peers PEERS=reservoirpy)")
    record = run_record(None, config=TASKS, draws=args.draws, repeats=args.repeats)
    path = write_json("japanese_vowels.json", {**record, "headers": HEADERS, "rows": body})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
