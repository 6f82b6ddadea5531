"""reservoirpy's LMS, NVAR, ES2N and IPReservoir on given data, timed; runs inside
``.peers/reservoirpy``.

    .peers/reservoirpy/bin/python benchmarks/peers/reservoirpy_online_nodes.py IN.npz OUT.npz

``IN.npz``: ``W`` (CSR as dense), ``Win``, ``O``, ``lr``, ``x``, ``y`` (LMS on the reservoir,
open loop, ``partial_fit``), ``rate``, ``u`` (the NVAR input), ``repeats``. ``OUT.npz``: the
LMS weights and bias, the NVAR features, the ES2N states (proximity 0.2) on ``x``, the
IPReservoir's gains and shifts after ``ip_epochs`` epochs of ``fit(x)`` (tanh, mu 0, sigma
0.2, learning rate ``ip_rate``, bias ``ip_bias``), and the median seconds of each.
"""

import sys
import time

import numpy as np
import scipy.sparse as sp
from reservoirpy.nodes import ES2N, LMS, NVAR, IPReservoir, Reservoir


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


def ip() -> None:
    node = IPReservoir(
        W=sp.csr_matrix(d["W"]), Win=d["Win"], bias=d["ip_bias"], lr=float(d["lr"]),
        mu=0.0, sigma=0.2, learning_rate=float(d["ip_rate"]), epochs=int(d["ip_epochs"]),
        activation="tanh",
    )  # fmt: skip
    node.fit(d["x"])
    out["a"], out["b"] = np.asarray(node.a).ravel(), np.asarray(node.b).ravel()


out["lms_s"], out["nvar_s"] = median_time(lms, repeats), median_time(nvar, repeats)
out["es2n_s"], out["ipreservoir_s"] = median_time(es2n, repeats), median_time(ip, repeats)
np.savez(sys.argv[2], **out)
