"""e-prop in rnngraph against NEST 3.10 on NEST's sine-wave tutorial, side by side.

    .venv/bin/python benchmarks/eprop_nest.py [--iterations 100] [--quick]

NEST's side is ``benchmarks/peers/nest_eprop_sine.py`` (run in ``.peers/nest``, ``make peers
PEERS=nest``): the tutorial "learning to generate sine waves with e-prop after Bellec et al.
(2020)" with its weights, frozen noise and target (seed 1), ``--iterations`` updates of one
1000-step trial each, one thread. rnngraph's side builds the same network and trainer from
the same dictionaries with ``rnngraph.compat.nest.eprop_bsshslm_2020`` and trains it on the
same trials, in float64 and in float32.

Reported: NEST's and rnngraph's loss per iteration (``0.5 sum_t (y_t - y*_t)^2``, rnngraph's
from a run of the network before each update, not timed), the first iteration at which they
differ by more than 1e-6 (relative), the largest relative difference over all iterations,
the mean loss of the last 10 iterations, and the time per update: NEST's ``nest.Simulate``
of all iterations over their number, rnngraph's ``EProp.step`` (the trial's run, the
gradients, the update). Results: a table on stdout and ``benchmarks/results/eprop_nest.json``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import run_peer, run_record, single_thread, table, write_json

from rnngraph.compat.nest import eprop_bsshslm_2020

HERE = Path(__file__).resolve().parent
SIDE = HERE / "peers" / "nest_eprop_sine.py"
V_TH = 0.03
#: the tutorial's dictionaries (nest.Create and the synapse's SetDefaults)
REC = {
    "C_m": 1.0, "c_reg": 300.0, "E_L": 0.0, "f_target": 10.0,
    "flush_event_send_interval": 1000.0, "I_e": 0.0, "regular_spike_arrival": False,
    "surrogate_gradient_function": "piecewise_linear",
    "surrogate_gradient_height": 0.3 / V_TH, "surrogate_gradient_width": V_TH,
    "t_ref": 0.0, "tau_m": 30.0, "V_m": 0.0, "V_th": V_TH,
}  # fmt: skip
OUT = {"C_m": 1.0, "E_L": 0.0, "I_e": 0.0, "loss": "mean_squared_error",
       "regular_spike_arrival": False, "tau_m": 30.0, "V_m": 0.0}  # fmt: skip
OPT = {"type": "gradient_descent", "batch_size": 1, "eta": 1e-4, "Wmin": -100.0,
       "Wmax": 100.0, "average_gradient": False}  # fmt: skip


def ours(theirs: dict, dtype: torch.dtype) -> tuple[np.ndarray, float]:
    """rnngraph's loss per iteration and seconds per update."""
    weights = [theirs[k] for k in ("w_in", "w_rec", "w_out", "w_fb")]
    net, trainer = eprop_bsshslm_2020(*weights, REC, OUT, OPT, dtype=dtype)
    x = torch.tensor(theirs["x"], dtype=dtype)[None]
    y = torch.tensor(theirs["target"][:1000], dtype=dtype)[None, :, None]
    model = net.compile()
    losses, seconds = [], 0.0
    for _ in range(len(theirs["loss"])):
        with torch.no_grad():
            out = model.run(x, state=model.init_state(1)).output
        losses.append(0.5 * float(((out - y) ** 2).sum()))
        t0 = time.perf_counter()
        trainer.step(net, x, y)
        seconds += time.perf_counter() - t0
    return np.array(losses), seconds / len(losses)


def compare(name: str, losses: np.ndarray, ref: np.ndarray, per_update: float) -> list:
    rel = np.abs(losses - ref) / np.abs(ref)
    apart = np.nonzero(rel > 1e-6)[0]
    first = int(apart[0]) + 1 if len(apart) else "-"
    return [name, losses[0], first, float(rel.max()), float(losses[-10:].mean()), per_update]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--quick", action="store_true", help="10 iterations")
    args = ap.parse_args()
    single_thread()
    n = 10 if args.quick else args.iterations
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "nest.npz"
        run_peer("nest", SIDE, [path, "--iterations", n])
        theirs = dict(np.load(path))
    nest_per = float(theirs["seconds"]) / n
    rows = [["NEST 3.10", theirs["loss"][0], "-", 0.0, float(theirs["loss"][-10:].mean()),
             nest_per]]  # fmt: skip
    data = {"nest": {"loss": theirs["loss"].tolist(), "seconds_per_update": nest_per}}
    for label, dtype in (("rnngraph float64", torch.float64), ("rnngraph float32", torch.float32)):
        losses, per = ours(theirs, dtype)
        rows.append(compare(label, losses, theirs["loss"], per))
        data[label] = {"loss": losses.tolist(), "seconds_per_update": per}
    for row in rows[1:]:
        row.append(row[5] / nest_per)
    rows[0].append(1.0)
    headers = ["side", "loss it. 1", "first it. > 1e-6 apart", "max rel. loss diff",
               "mean loss last 10", "s / update", "x NEST"]  # fmt: skip
    print(table(headers, rows, f"NEST's e-prop sine-wave tutorial, {n} iterations"))
    path = write_json(
        "eprop_nest.quick.json" if args.quick else "eprop_nest.json",
        {**run_record(sys.argv[1:], iterations=n), "results": data},
    )
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
