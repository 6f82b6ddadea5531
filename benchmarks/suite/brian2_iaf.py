"""Workload 4: the Brian2 IAF reference network, rnngraph's ``iaf`` node against Brian2.

shared/anchors section 6 (Rockpool's FFIAFBrian defaults): 100 IAF units,
``tau dv/dt = v_rest - v + r_m (I_in + I_bias)``, tau 20 ms, threshold v > -55 mV, reset =
rest = -65 mV, r_m = 1 ohm, I_bias = 15 mA, refractory 0, rk4, dt = 0.1 ms, 1 s (10 000
steps), v(0) = v_rest; ``I_in = 1e-3 * ones(10) @ W``, ``W = 2 N(0, 1)`` of shape (10, 100)
from ``numpy.random.default_rng(0)``. rnngraph folds the currents into the bias and runs
``run(steps=10000)`` (as ``tests/test_brian2_iaf.py``); Brian2 runs a ``NeuronGroup`` with a
``SpikeMonitor`` on its ``numpy`` and ``cython`` targets. Times are whole simulations of 1 s.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rnngraph import Network

from ._peers import PeerError
from ._report import FAILED, MISSING, NA, Context, Section, Table, num, peer_failed, ratio, seconds
from ._timing import time_calls

P = {
    "N": 100,
    "N_in": 10,
    "I_per_channel_A": 1e-3,
    "W_scale": 2.0,
    "seed": 0,
    "dt_s": 1e-4,
    "duration_s": 1.0,
    "bias_A": 0.015,
    "tau_mem_s": 0.02,
    "v_thresh_V": -0.055,
    "v_reset_V": -0.065,
    "v_rest_V": -0.065,
    "r_m_ohm": 1.0,
}
REFERENCE_TOTAL = 4014  # Brian2 (numpy and cython) and Rockpool's FFIAFBrian, anchors sec. 6


def currents() -> np.ndarray:
    rng = np.random.default_rng(P["seed"])
    w = P["W_scale"] * rng.standard_normal((P["N_in"], P["N"]))  # (10, 100)
    return P["I_per_channel_A"] * np.ones(P["N_in"]) @ w  # (100,)


def build() -> Network:
    net = Network(P["dt_s"], dtype=torch.float64)
    net.add_diffeq_node(
        "iaf",
        "iaf",
        P["N"],
        bias=P["bias_A"] + currents(),
        tau_mem=P["tau_mem_s"],
        v_thresh=P["v_thresh_V"],
        v_reset=P["v_reset_V"],
        v_rest=P["v_rest_V"],
        r_m=P["r_m_ohm"],
        refractory=0.0,
        integrator="rk4",
    )
    return net


def run(ctx: Context) -> Section:
    sec = Section("brian2", "4. Brian2 IAF reference (100 units, rk4, dt 0.1 ms, 1 s)")
    steps = round(P["duration_s"] / P["dt_s"])
    model = build().compile()
    counts: dict[str, np.ndarray] = {}

    def ours() -> None:
        model.reset()
        with torch.no_grad():
            z = model.run(steps=steps).output  # (T, N): a run without a batch axis
            counts["rnngraph"] = z.sum(0).numpy()

    ctx.log("  rnngraph")
    first = time_calls(ours, 1, warmup=0)
    mine = time_calls(ours, ctx.repeats, warmup=0)
    results: dict[str, Any] = {"rnngraph, first run": first, "rnngraph": mine}

    peer = ctx.peers["brian2"]
    theirs: dict[str, Any] = {}
    error = None
    if peer.ok:
        ctx.log("  Brian2 (numpy, then cython from a cold cache)")
        req = {
            "params": P,
            "currents": currents().tolist(),
            "repeats": ctx.repeats,
            "targets": ["numpy", "cython"],
            "cold_cython": not ctx.quick,
        }
        try:
            theirs = peer.run("iaf", req, timeout=1800)
        except PeerError as err:
            error = peer_failed(ctx, sec, peer, err)

    rows = []
    total = int(counts["rnngraph"].sum())
    rows.append(["rnngraph `iaf`, first run", seconds(first), NA, total, "-"])
    rows.append(["rnngraph `iaf`", seconds(mine), NA, total, "-"])
    labels = {
        "numpy_first": "Brian2 numpy, first run",
        "numpy": "Brian2 numpy",
        "cython_cold": "Brian2 cython, first run (cold cache)",
        "cython": "Brian2 cython (warm cache)",
    }
    for key, label in labels.items():
        if not peer.ok or error is not None:
            word = MISSING if not peer.ok else FAILED
            rows.append([label, word, word, word, word])
            continue
        r = theirs["results"].get(key)
        if r is None:
            rows.append([label, NA, NA, NA, NA])
            continue
        c = np.asarray(r["counts"])
        results[label] = r["timing"]
        rows.append(
            [
                label,
                seconds(r["timing"]),
                ratio(mine, r["timing"], "s_median"),
                int(c.sum()),
                int((c != counts["rnngraph"]).sum()),
            ]
        )
    sec.tables.append(
        Table(
            "IAF reference network: seconds per 1 s simulation (10 000 steps), median (min)",
            [
                "implementation",
                "time, s",
                "rnngraph / this",
                "spikes (total)",
                "units whose count differs from rnngraph's",
            ],
            rows,
            [
                f"Reference total: {REFERENCE_TOTAL} spikes (Brian2 numpy and cython, Rockpool "
                "FFIAFBrian). rnngraph: `net.compile().run(steps=10000)` under "
                "`torch.no_grad()`, float64, currents in the bias; `first run` includes "
                "generating the time loop.",
                "Brian2: `Network(NeuronGroup(..., method='rk4'), SpikeMonitor).run(1 * "
                "second)`, timed around `run` (code generation included); `first run` is the "
                "first simulation in a fresh process, the others are repeats in the same "
                "process. The cold cython run compiles into an empty cache folder"
                + (" (skipped by --quick)." if ctx.quick else "."),
            ],
        )
    )
    sec.notes.append(
        f"rnngraph per step: {num(1e6 * mine['s_median'] / steps)} us "
        f"({steps} steps, 100 units, B = 1)."
    )
    sec.data.update(params=P, results=results, brian2_version=theirs.get("version"))
    return sec
