"""reservoirpy's LMS readout and NVAR on given data, timed; runs inside ``.peers/reservoirpy``.

    .peers/reservoirpy/bin/python benchmarks/peers/reservoirpy_online_nodes.py IN.npz OUT.npz

``IN.npz``: ``W`` (CSR as dense), ``Win``, ``O``, ``lr``, ``x``, ``y`` (LMS on the reservoir,
open loop, ``partial_fit``), ``rate``, ``u`` (the NVAR input), ``repeats``. ``OUT.npz``: the
LMS weights and bias, the NVAR features, the ES2N states (proximity 0.2) on ``x``, and the
median seconds of each.
"""

import sys
import time

import numpy as np
import scipy.sparse as sp
from reservoirpy.nodes import ES2N, LMS, NVAR, Reservoir


def median_time(fn, repeats: int) -> float:
    fn()  # warm
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


d = np.load(sys.argv[1])
repeats, out = int(d["repeats"]), {}


def lms() -> None:
    res = Reservoir(W=sp.csr_matrix(d["W"]), Win=d["Win"], bias=0.0, lr=float(d["lr"]))
    readout = LMS(learning_rate=float(d["rate"]), fit_bias=True)
    (res >> readout).partial_fit(d["x"], d["y"])
    out["Wout"], out["bias"] = np.asarray(readout.Wout).T, np.asarray(readout.bias).ravel()


def nvar() -> None:
    out["features"] = NVAR(delay=2, order=2).run(d["u"])


def es2n() -> None:
    node = ES2N(W=sp.csr_matrix(d["W"]), Win=d["Win"], O=d["O"], proximity=0.2, bias=0.0)
    out["states"] = node.run(d["x"])


out["lms_s"], out["nvar_s"] = median_time(lms, repeats), median_time(nvar, repeats)
out["es2n_s"] = median_time(es2n, repeats)
np.savez(sys.argv[2], **out)
