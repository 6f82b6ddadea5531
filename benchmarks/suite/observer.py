"""Workload 6: the cost of recording the reservoir state at every step.

The ESN of workload 1 (N = 500, B = 1): ``net.compile().run(x)`` without an observer
(only the output is kept, which for this network is also the reservoir state) and with
``observer=rg.Observer(["res"])`` (the reservoir state recorded at every step).
"""

from __future__ import annotations

import numpy as np
import torch

import rnngraph as rg

from ._report import Context, Section, Table, ratio, us
from ._timing import measure
from .esn import DTYPES, build, weights


def run(ctx: Context) -> Section:
    n = 64 if ctx.quick else 500
    t_max = 400 if ctx.quick else 5000
    sec = Section("observer", f"6. Observer overhead (ESN, N = {n}, B = 1)")
    w, w_in = weights(n, seed=n)
    u64 = torch.as_tensor(np.random.default_rng(3).uniform(-1, 1, (1, t_max, 1)))
    rows, data = [], {}
    for layout in ("dense", "sparse"):
        for dt, dtype in DTYPES.items():
            ctx.log(f"  {layout} {dt}")
            model = build(w.to(dtype), w_in.to(dtype), layout == "sparse", dtype).compile()
            u = u64.to(dtype)
            obs = rg.Observer(["res"])

            def plain(T: int, model=model, u=u) -> None:
                model.reset()
                with torch.no_grad():
                    model.run(u[:, :T])

            def observed(T: int, model=model, u=u, obs=obs) -> None:
                model.reset()
                with torch.no_grad():
                    model.run(u[:, :T], observer=obs)

            m = measure(
                {"without": (plain, t_max), "with": (observed, t_max)},
                ctx.repeats,
                ctx.target_s,
                ctx.min_steps,
            )
            data[f"{layout}-{dt}"] = m
            rows.append(
                [layout, dt, us(m["without"]), us(m["with"]), ratio(m["with"], m["without"])]
            )
    sec.tables.append(
        Table(
            "Recording every step, us/step: median (min)",
            ["W", "dtype", "without observer", "Observer(['res'])", "with / without"],
            rows,
        )
    )
    sec.data = {"N": n, "results": data}
    return sec
