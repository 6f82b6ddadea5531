"""reservoirpy's side of ``benchmarks/hyper_search.py`` (run inside ``.peers/reservoirpy``).

    .peers/reservoirpy/bin/python benchmarks/peers/reservoirpy_hyper.py IN.npz OUT.json

``IN.npz``: the task (``x_train``, ``y_train``, ``x_test``, ``y_test``), ``n_trials``,
``units``, ``washout``, ``search_seed`` and the bounds of the space. The search is
reservoirpy's hyperparameter tutorial with ``reservoirpy.hyper.research`` (hyperopt,
``hp_method="random"``, one instance per trial): per trial ``Reservoir(units, sr=, lr=,
input_scaling=, seed=, rc_connectivity=0.1, input_connectivity=0.2) >> Ridge(ridge=)``,
``fit(x_train, y_train, warmup=washout)``, ``run(x_test)`` continuing the state, the loss
the NRMSE normalised by the test targets' standard deviation. ``OUT.json`` holds the wall
time of ``research`` (every trial, hyperopt's bookkeeping and reservoirpy's per-trial JSON
report included), the best loss and its parameters.
"""

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from reservoirpy.hyper import research
from reservoirpy.nodes import Reservoir, Ridge


def objective(dataset, config, *, sr, lr, iss, ridge, seed):
    x_tr, y_tr, x_te, y_te, units, washout = dataset
    reservoir = Reservoir(
        units,
        sr=sr,
        lr=lr,
        input_scaling=iss,
        seed=int(seed),
        rc_connectivity=0.1,
        input_connectivity=0.2,
    )
    model = reservoir >> Ridge(ridge=ridge)
    pred = model.fit(x_tr, y_tr, warmup=washout).run(x_te)
    loss = float(np.sqrt(np.mean((pred - y_te) ** 2)) / np.std(y_te))
    return {"loss": loss if np.isfinite(loss) else 1e9}


def main() -> None:
    d = np.load(sys.argv[1])
    dataset = (d["x_train"], d["y_train"], d["x_test"], d["y_test"])
    dataset += (int(d["units"]), int(d["washout"]))
    b = {k: [float(v) for v in d[k]] for k in ("sr", "lr", "iss", "ridge")}
    config = {
        "exp": "rnngraph-benchmark",
        "hp_max_evals": int(d["n_trials"]),
        "hp_method": "random",
        "seed": int(d["search_seed"]),
        "instances_per_trial": 1,
        "hp_space": {
            "sr": ["loguniform", *b["sr"]],
            "lr": ["loguniform", *b["lr"]],
            "iss": ["uniform", *b["iss"]],
            "ridge": ["loguniform", *b["ridge"]],
            "seed": ["choice", *[int(s) for s in d["seeds"]]],
        },
    }
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "config.json"
        conf.write_text(json.dumps(config))
        t0 = time.perf_counter()
        best, trials = research(objective, dataset, str(conf), tmp)
        seconds = time.perf_counter() - t0
    losses = [t["result"]["loss"] for t in trials.trials]
    out = {"seconds": seconds, "best_loss": min(losses), "best": best, "n": len(losses)}
    Path(sys.argv[2]).write_text(json.dumps(out, default=float))


if __name__ == "__main__":
    main()
