"""Brian2's side of the benchmark suite; runs inside ``.peers/brian2``.

    .peers/brian2/bin/python benchmarks/suite/peer_brian2.py REQUEST.json RESULT.json

Task ``iaf``: the IAF reference network (shared/anchors section 6) on the ``numpy`` target,
then on the ``cython`` target: its first run compiles into an empty cache folder (cold),
later runs in the same process reuse the compiled code (warm). Each run builds a fresh
``Network`` and times ``Network.run``.
"""

from __future__ import annotations

import statistics
import tempfile
import time

from _peer_io import import_failed, serve

try:
    import brian2 as b2
    import Cython  # noqa: F401  (the cython target needs it)
    import numpy as np
except ImportError as err:  # a broken venv: the runner reports Brian2 as missing
    import_failed(err)

b2.prefs.logging.console_log_level = "WARNING"


def simulate(p: dict, currents: np.ndarray, target: str) -> tuple[float, np.ndarray]:
    b2.prefs.codegen.target = target
    b2.defaultclock.dt = p["dt_s"] * b2.second
    ns = {
        "v_rest": p["v_rest_V"] * b2.volt,
        "v_reset": p["v_reset_V"] * b2.volt,
        "v_thresh": p["v_thresh_V"] * b2.volt,
        "tau_m": p["tau_mem_s"] * b2.second,
        "r_m": p["r_m_ohm"] * b2.ohm,
        "I_bias": p["bias_A"] * b2.amp,
    }
    eqs = """
    dv/dt = (v_rest - v + r_m * (I_in + I_bias)) / tau_m : volt
    I_in : amp (constant)
    """
    group = b2.NeuronGroup(
        p["N"],
        eqs,
        threshold="v > v_thresh",
        reset="v = v_reset",
        refractory=0 * b2.ms,
        method="rk4",
        namespace=ns,
    )
    group.v = p["v_rest_V"] * b2.volt
    group.I_in = currents * b2.amp
    mon = b2.SpikeMonitor(group)
    net = b2.Network(group, mon)
    t0 = time.perf_counter()
    net.run(p["duration_s"] * b2.second)
    return time.perf_counter() - t0, np.asarray(mon.count[:])


def summary(s: list[float]) -> dict:
    return {"s_median": statistics.median(s), "s_min": min(s), "repeats": len(s), "samples_s": s}


def iaf(req: dict, arrays: dict) -> dict:
    p, currents, repeats = req["params"], np.asarray(req["currents"]), req["repeats"]
    out = {}
    for target in req["targets"]:
        if target == "cython":
            cache = tempfile.mkdtemp(prefix="brian2-cython-", dir=req["tmp"])
            if req["cold_cython"]:
                b2.prefs.codegen.runtime.cython.cache_dir = cache
        t, counts = simulate(p, currents, target)
        first = "cython_cold" if target == "cython" else "numpy_first"
        if target != "cython" or req["cold_cython"]:
            out[first] = {"timing": summary([t]), "counts": counts.tolist()}
        times = []
        for _ in range(repeats):
            t, counts = simulate(p, currents, target)
            times.append(t)
        out[target] = {"timing": summary(times), "counts": counts.tolist()}
        print(target, out[target]["timing"]["s_median"], flush=True)
    return {"results": out}


if __name__ == "__main__":
    serve({"iaf": iaf}, b2.__version__)
