"""reservoirpy's side of ``benchmarks/mackey_glass_esn.py`` (run inside ``.peers/reservoirpy``).

    .peers/reservoirpy/bin/python benchmarks/peers/reservoirpy_mg.py IN.npz OUT_DIR

``IN.npz`` holds the task (``series``, ``x_train``, ``y_train``, ``x_test``, ``y_test``), the
settings, the number of timed repeats and the seeds whose weights to export
(``export_seeds``). The script writes ``OUT_DIR/info.npz``, warms up, prints ``ready`` and
then serves requests from stdin, one per line: ``seed S`` answers ``done S`` after writing
``OUT_DIR/seed_S.npz``; ``quit`` ends it. The caller interleaves these requests with its own
runs, so that both libraries are timed back to back.

For seed S, reservoirpy 0.4.2's ``Reservoir`` is built with S driving both
``reservoirpy.set_seed`` and the ``Reservoir``'s own ``seed``, with its default bias 0 or,
when ``peer_bias`` is set, a bias of +-``bias_scaling`` on ``bias_connectivity`` of the
units drawn by reservoirpy's ``bernoulli``. Then, on the same weights and
each from a zero state:

* ``Ridge`` for every penalty in ``ridges`` (``model.fit(..., warmup=washout)``);
* ``RLS(alpha=rls_alpha)`` in one online pass (``model.fit(..., warmup=washout)``).

After each fit the model runs on the test inputs, continuing the reservoir's state. Timed
(wall clock, after ``model.initialize`` has drawn the weights; the best of ``repeats``
fits on the same weights): the fit with the first ridge penalty (reservoir run + ridge
solve), the test run, and the RLS fit (reservoir run + online updates). ``seed_S.npz`` holds
the predictions, the times and, for exported seeds, the dense ``W``, ``Win``, ``bias`` and
the first ridge readout (``Wout``, ``bias_out``). The caller computes every metric.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import reservoirpy
from reservoirpy.datasets import mackey_glass
from reservoirpy.mat_gen import bernoulli
from reservoirpy.nodes import RLS, Reservoir, Ridge


def dense(a) -> np.ndarray:
    """A scipy.sparse matrix, a numpy array or a float as a float64 numpy array."""
    return np.asarray(a.toarray() if hasattr(a, "toarray") else a, dtype=np.float64)


class Task:
    def __init__(self, path: str) -> None:
        d = np.load(path)
        self.d = d
        self.x_tr, self.y_tr, self.x_te = d["x_train"], d["y_train"], d["x_test"]
        self.export = {int(s) for s in d["export_seeds"]}
        self.ridges = [float(r) for r in d["ridges"]]
        self.n, self.washout = int(d["n_units"]), int(d["washout"])
        self.rls_alpha, self.repeats = float(d["rls_alpha"]), int(d["repeats"])
        self.lr = float(d["lr"])
        self.res_kwargs = {
            "lr": self.lr,
            "sr": float(d["sr"]),
            "input_scaling": float(d["input_scaling"]),
            "rc_connectivity": float(d["rc_connectivity"]),
            "input_connectivity": float(d["input_connectivity"]),
        }
        if bool(d["peer_bias"]) and float(d["bias_scaling"]):
            self.res_kwargs["bias"] = bias_init(
                float(d["bias_connectivity"]), float(d["bias_scaling"])
            )


def bias_init(connectivity: float, scaling: float):
    """A ``Reservoir`` bias initialiser: +-scaling on a fraction ``connectivity`` of the units
    (reservoirpy calls a bias initialiser with connectivity 1, which this one replaces)."""

    def init(units, dtype=np.float64, seed=None, **_):
        b = bernoulli(
            units, 1, connectivity=connectivity, input_scaling=scaling, dtype=dtype, seed=seed
        )
        return dense(b).reshape(units)

    return init


def fit_timed(model, task: Task) -> tuple[float, float, np.ndarray]:
    """(fit seconds, test-run seconds, test predictions) of an initialised model."""
    t0 = time.perf_counter()
    model.fit(task.x_tr, task.y_tr, warmup=task.washout)
    t1 = time.perf_counter()
    pred = model.run(task.x_te)
    return t1 - t0, time.perf_counter() - t1, pred


def run_seed(seed: int, task: Task) -> dict[str, np.ndarray]:
    reservoirpy.set_seed(seed)
    res = Reservoir(task.n, seed=seed, **task.res_kwargs)
    ridge = Ridge(ridge=task.ridges[0])
    model = res >> ridge
    model.initialize(task.x_tr, task.y_tr)  # draws W, Win and bias: not timed
    W, Win, bias = res.W, res.Win, res.bias

    def fresh(readout):  # same weights, zero state, initialised outside the timer
        m = Reservoir(W=W, Win=Win, bias=bias, lr=task.lr) >> readout
        m.initialize(task.x_tr, task.y_tr)
        return m

    t_fit, t_run, pred = fit_timed(model, task)
    out = {}
    if seed in task.export:
        out = {
            "W": dense(W),
            "Win": dense(Win),
            "bias": dense(bias),
            "Wout": dense(ridge.Wout),
            "bias_out": dense(ridge.bias),
        }
    for _ in range(task.repeats - 1):
        t_f, t_r, _ = fit_timed(fresh(Ridge(ridge=task.ridges[0])), task)
        t_fit, t_run = min(t_fit, t_f), min(t_run, t_r)
    preds = [pred]
    for penalty in task.ridges[1:]:
        preds.append(fit_timed(fresh(Ridge(ridge=penalty)), task)[2])

    t_rls, _, pred_rls = fit_timed(fresh(RLS(alpha=task.rls_alpha)), task)
    for _ in range(task.repeats - 1):
        t_rls = min(t_rls, fit_timed(fresh(RLS(alpha=task.rls_alpha)), task)[0])
    print(f"  reservoirpy seed {seed:3d}: fit {t_fit:.3f} s, RLS {t_rls:.3f} s", file=sys.stderr)
    return {
        "pred_ridge": np.stack(preds),  # (n_ridges, T, 1)
        "pred_rls": pred_rls,  # (T, 1)
        "t_fit_ridge": np.array(t_fit),
        "t_run_test": np.array(t_run),
        "t_fit_rls": np.array(t_rls),
        **out,
    }


def main(inp: str, outdir: str) -> None:
    task = Task(inp)
    out = Path(outdir)
    # the series the caller built with rnngraph.datasets.mackey_glass, rebuilt here
    s = mackey_glass(len(task.d["series"]))
    s = 2.0 * (s - s.min()) / (s.max() - s.min()) - 1.0
    np.savez(
        out / "info.npz",
        version=np.array(reservoirpy.__version__),
        numpy_version=np.array(np.__version__),
        mg_diff=np.array(np.max(np.abs(s - task.d["series"]))),
        bias_default=np.array(repr(Reservoir(task.n).bias)),
    )
    # one untimed warm-up of each kind on a short sequence (imports, first calls)
    for readout in (Ridge(ridge=task.ridges[0]), RLS(alpha=task.rls_alpha)):
        warm = Reservoir(task.n, seed=0, **task.res_kwargs) >> readout
        warm.fit(task.x_tr[:200], task.y_tr[:200], warmup=10)
        warm.run(task.x_te[:200])
    print("ready", flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        seed = int(words[1])
        np.savez(out / f"seed_{seed}.npz", **run_seed(seed, task))
        print(f"done {seed}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
