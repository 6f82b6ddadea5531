"""Workload 5: one e-prop training step against one BPTT step of the same network.

Bellec et al. 2020's pattern-generation network (shared/anchors section 5): Poisson inputs
(5 % per step), a LIF population (``LIF.bellec``: tau_m 20, v_th 0.6, reset by subtraction,
triangle surrogate) with a trained input edge and a trained recurrent feedback self-edge
without self-connections, a ``leaky_readout`` (tau 20) fed by a trained edge with a bias;
float32; a regression target (two sines). One update = one run of the batch through the
network plus one Adam step: ``net.fit_eprop(x, y, epochs=1)`` against
``net.fit_bptt(x, y, loss="mse", epochs=1)`` (whole sequence, no truncation), each on its
own copy of the same initial network, the trainer kept between updates.
Included only where ``rnngraph.training.EProp`` exists.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

import rnngraph as rg

from ._report import FAILED, NA, Context, Section, Table, num, ratio, seconds
from ._timing import time_calls


def build(n_in: int, n: int, seed: int) -> rg.Network:
    g = torch.Generator().manual_seed(seed)
    net = rg.Network(dt=1.0, dtype=torch.float32)
    net.add_func_node("in", n_in)
    net.add_diffeq_node("rec", rg.nodes.LIF.bellec(n, dt=1.0, tau_m=20.0, v_th=0.6))
    net.add_edge(
        "in", "rec", weights=torch.randn(n, n_in, generator=g) / math.sqrt(n_in), train="gd"
    )
    net.add_edge(
        "rec",
        "rec",
        weights=0.5 * torch.randn(n, n, generator=g) / math.sqrt(n),
        train="gd",
        feedback=True,
        mask=1.0 - torch.eye(n),
    )
    net.add_diffeq_node("out", "leaky_readout", n=1, tau=20.0)
    net.add_edge("rec", "out", weights=torch.zeros(1, n), train="gd", bias=True)
    return net


def run(ctx: Context) -> Section:
    sec = Section("eprop", "5. e-prop training step vs BPTT step")
    try:
        from rnngraph.training import EProp  # noqa: F401
    except ImportError as err:
        sec.notes.append(f"not available: `rnngraph.training.EProp` cannot be imported ({err}).")
        sec.tables.append(
            Table("e-prop vs BPTT", ["what", "status"], [["e-prop training step", NA]])
        )
        sec.data = {"available": False}
        return sec

    n_in, n = (20, 20) if ctx.quick else (100, 100)
    configs = [(1, 100), (8, 50)] if ctx.quick else [(1, 1000), (64, 250)]
    rows, data = [], {}
    for b, t_len in configs:
        ctx.log(f"  B = {b}, T = {t_len}")
        rng = np.random.default_rng(0)
        x = (rng.random((b, t_len, n_in)) < 0.05).astype(np.float32)
        tt = np.arange(t_len)
        y = np.sin(2 * np.pi * tt / 200) + 0.5 * np.sin(2 * np.pi * tt / 100)
        y = np.broadcast_to(y[None, :, None], (b, t_len, 1)).astype(np.float32)
        res: dict[str, Any] = {}
        for name in ("e-prop", "BPTT"):
            net = build(n_in, n, seed=1)
            state: dict[str, Any] = {"trainer": None}

            def update(net=net, state=state, name=name, x=x, y=y) -> None:
                fit = net.fit_eprop if name == "e-prop" else net.fit_bptt
                kw = {} if name == "e-prop" else {"loss": "mse"}
                rec = fit(x, y, optimizer="adam", lr=1e-3, trainer=state["trainer"], **kw)
                state["trainer"] = rec.trainer
                state.setdefault("losses", []).extend(float(v) for v in rec.loss)

            try:
                res[name] = time_calls(update, ctx.repeats, warmup=1)
                res[name]["losses"] = state["losses"]
            except Exception as err:  # report, do not abort the other workloads
                res[name] = {"error": f"{type(err).__name__}: {err}"}
                sec.notes.append(f"{name} (B = {b}) failed: {res[name]['error']}")
        data[f"B{b}-T{t_len}"] = res

        def per_step(m: dict, t_len: int = t_len) -> str:
            return num(1e6 * m["s_median"] / t_len) if "s_median" in m else FAILED

        rows.append(
            [
                b,
                t_len,
                seconds(res["e-prop"]),
                seconds(res["BPTT"]),
                per_step(res["e-prop"]),
                per_step(res["BPTT"]),
                ratio(res["e-prop"], res["BPTT"], "s_median"),
            ]
        )
    sec.tables.append(
        Table(
            f"One training update ({n_in} inputs, {n} LIF, 1 leaky readout, float32): "
            "seconds, median (min)",
            [
                "B",
                "T",
                "e-prop update, s",
                "BPTT update, s",
                "e-prop, us/step",
                "BPTT, us/step",
                "e-prop / BPTT",
            ],
            rows,
            [
                "An update: forward run of the batch (e-prop carries its eligibility traces "
                "inside the compiled loop; BPTT records the autograd graph), gradients, one "
                "Adam step (lr 1e-3). The first update of each is a warm-up, not timed.",
            ],
        )
    )
    sec.data = {"available": True, "n_in": n_in, "n": n, "results": data}
    return sec
