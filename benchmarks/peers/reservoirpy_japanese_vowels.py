"""reservoirpy's side of ``benchmarks/japanese_vowels.py`` (run inside ``.peers/reservoirpy``).

    .peers/reservoirpy/bin/python benchmarks/peers/reservoirpy_japanese_vowels.py IN.npz OUT.npz

``IN.npz``: the utterances concatenated (``x_train``, ``x_test``) with their lengths
(``len_train``, ``len_test``), the one-hot labels ``y_train`` (270, 9), ``draws``,
``repeats``, the settings of the two tasks (``lr_A``, ``ridge_A``, ``warmup_A``, ``lr_B``,
``ridge_B``) and, for every draw ``s``, the dense ``W_A_s``, ``Win_A_s``, ``W_B_s``,
``Win_B_s`` (bias 0, reservoirpy 0.4.2's default; tanh; float64). W and Win go to
``Reservoir`` as CSR matrices, the form reservoirpy's own ``normal``/``bernoulli`` give.

Tutorial 5 of reservoirpy, per draw:

* A, transduction: ``[source >> reservoir, source] >> Ridge`` fitted with ``warmup`` on the
  training list (per-step one-hot targets), then ``model.run`` on the test list: every test
  sequence starts from the state the reservoir holds after the fit, the final state of the
  last training sequence (reservoirpy's semantics, kept as they are).
* B, last state: ``reservoir.run`` on the training list (each sequence from the zero state),
  ``Ridge.fit`` on the last states; the reservoir ``reset()``, then the test list likewise.

Each is fitted and predicted ``repeats`` + 1 times on fresh nodes (the first is a warm-up):
``OUT.npz`` holds, per draw and task, the test scores (``scores_A_s``: every test step,
concatenated; ``scores_B_s``: one row per utterance) and the median seconds of the fit
(``fit_A_s``, node construction included) and of the test run (``test_A_s``).
"""

import sys
import time

import numpy as np
import scipy.sparse as sp
from reservoirpy.nodes import Input, Reservoir, Ridge


def split(x: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    return np.split(x, np.cumsum(lengths)[:-1])


def reservoir(d, task: str, s: int) -> Reservoir:
    return Reservoir(
        W=sp.csr_matrix(d[f"W_{task}_{s}"]),
        Win=sp.csr_matrix(d[f"Win_{task}_{s}"]),
        bias=0.0,
        lr=float(d[f"lr_{task}"]),
        activation="tanh",
    )


def task_a(d, s: int, x_tr, y_steps, x_te):
    t0 = time.perf_counter()
    source, res = Input(), reservoir(d, "A", s)
    model = [source >> res, source] >> Ridge(ridge=float(d["ridge_A"]))
    model.fit(x_tr, y_steps, warmup=int(d["warmup_A"]))
    t1 = time.perf_counter()
    scores = np.concatenate(model.run(x_te))
    return scores, t1 - t0, time.perf_counter() - t1


def task_b(d, s: int, x_tr, y_tr, x_te):
    t0 = time.perf_counter()
    res, readout = reservoir(d, "B", s), Ridge(ridge=float(d["ridge_B"]))
    last = np.stack([states[-1] for states in res.run(x_tr)])
    readout.fit(last, y_tr)
    t1 = time.perf_counter()
    res.reset()
    scores = readout.run(np.stack([states[-1] for states in res.run(x_te)]))
    return scores, t1 - t0, time.perf_counter() - t1


def main() -> None:
    d = np.load(sys.argv[1])
    x_tr, x_te = split(d["x_train"], d["len_train"]), split(d["x_test"], d["len_test"])
    y_tr = d["y_train"]
    y_steps = [np.repeat(y[None], len(x), axis=0) for x, y in zip(x_tr, y_tr, strict=True)]
    out = {}
    for s in range(int(d["draws"])):
        for task, fn, y in (("A", task_a, y_steps), ("B", task_b, y_tr)):
            runs = [fn(d, s, x_tr, y, x_te) for _ in range(int(d["repeats"]) + 1)]
            out[f"scores_{task}_{s}"] = runs[-1][0]
            out[f"fit_{task}_{s}"] = float(np.median([r[1] for r in runs[1:]]))
            out[f"test_{task}_{s}"] = float(np.median([r[2] for r in runs[1:]]))
    np.savez(sys.argv[2], **out)


if __name__ == "__main__":
    main()
