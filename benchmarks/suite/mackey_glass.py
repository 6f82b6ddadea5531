"""Workload 2: the Mackey-Glass ESN end to end, rnngraph against reservoirpy.

The task of ``benchmarks/mackey_glass_esn.py`` (shared/anchors section 1): the Mackey-Glass
series (tau 17, reservoirpy's defaults) rescaled to [-1, 1], x(t) -> x(t+1), 2000 training
steps with the first 100 left out of the fit, then the next 2000 test steps continuing the
state. 500 leaky-tanh units (lr 0.3, spectral radius 1.25, 10 % connectivity), W_in +-1 with
20 % connectivity, no bias, float64. Both libraries get the **same** W and W_in (drawn by
rnngraph's initialisers), so their ridge predictions must agree to rounding. Timed, on a
freshly built model each time: reservoir run + ridge fit (alpha 1e-5), the test run, and
reservoir run + RLS fit (alpha 1, one online pass).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

import rnngraph as rg

from ._peers import PeerError
from ._report import MISSING, NA, Context, Section, Table, num, peer_failed, ratio, seconds
from ._timing import time_calls
from .esn import LR, weights

N_UNITS, SEED, WASHOUT, RIDGE, RLS_ALPHA = 500, 3, 100, 1e-5, 1.0


def task(n_train: int, n_test: int) -> dict[str, np.ndarray]:
    s = rg.datasets.mackey_glass(n_train + n_test + 1)  # (T + 1, 1)
    s = 2.0 * (s - s.min()) / (s.max() - s.min()) - 1.0
    x, y = s[:-1], s[1:]
    return {
        "x_train": x[:n_train],
        "y_train": y[:n_train],
        "x_test": x[n_train : n_train + n_test],
        "y_test": y[n_train : n_train + n_test],
    }


def build(w: torch.Tensor, w_in: torch.Tensor, sparse: bool) -> rg.Network:
    net = rg.Network(dt=1.0, dtype=torch.float64)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", "leaky_tanh", n=w.shape[0], lr=LR, bias=0.0)
    net.add_edge("in", "res", weights=w_in)
    net.add_edge("res", "res", weights=w, feedback=True, sparse=sparse)
    return net


def ours(d: dict[str, np.ndarray], w, w_in, sparse: bool, repeats: int) -> dict[str, Any]:
    nets: dict[str, Any] = {}

    def fit_ridge() -> None:
        nets["ridge"] = net = build(w, w_in, sparse)
        net.fit_ridge(d["x_train"], d["y_train"], alpha=RIDGE, washout=WASHOUT)

    def run_test() -> None:
        nets["pred_ridge"] = nets["ridge"].run(d["x_test"]).output.numpy()

    def fit_rls() -> None:
        nets["rls"] = net = build(w, w_in, sparse)
        net.fit_rls(d["x_train"], d["y_train"], alpha=RLS_ALPHA, bias=True, washout=WASHOUT)

    res = {
        "fit_ridge": time_calls(fit_ridge, repeats),
        "run_test": time_calls(run_test, repeats),
        "fit_rls": time_calls(fit_rls, repeats),
    }
    return {
        "timing": res,
        "pred_ridge": nets["pred_ridge"],
        "pred_rls": nets["rls"].run(d["x_test"]).output.numpy(),
    }


def run(ctx: Context) -> Section:
    sec = Section("mackey_glass", "2. Mackey-Glass ESN end to end (500 units, float64)")
    n_train, n_test = (500, 500) if ctx.quick else (2000, 2000)
    d = task(n_train, n_test)
    w, w_in = weights(N_UNITS, seed=SEED)
    results: dict[str, Any] = {}
    for name, sparse in (("rnngraph (CSR W)", True), ("rnngraph (dense W)", False)):
        ctx.log(f"  {name}")
        results[name] = ours(d, w, w_in, sparse, ctx.repeats)

    peer = ctx.peers["reservoirpy"]
    rpy = "reservoirpy (CSR W)"
    if not peer.ok:
        results[rpy] = MISSING
    else:
        ctx.log(f"  {rpy}")
        req = {
            "sparse": True,
            "washout": WASHOUT,
            "lr": LR,
            "ridge": RIDGE,
            "rls_alpha": RLS_ALPHA,
            "repeats": ctx.repeats,
        }
        arrays = {"W": w.numpy(), "Win": w_in.numpy(), **d}
        try:
            r = peer.run("mg", req, arrays)
            results[rpy] = {"timing": r["results"], **r["arrays"]}
        except PeerError as err:
            results[rpy] = peer_failed(ctx, sec, peer, err)

    y = d["y_test"]
    rows, data = [], {}
    ref = results["rnngraph (CSR W)"]
    for name, r in results.items():
        if isinstance(r, str):
            rows.append([name, r, r, r, r, r, r])
            data[name] = r
            continue
        t = r["timing"]
        e_ridge = rg.metrics.nrmse(y, r["pred_ridge"], norm="std")
        e_rls = rg.metrics.nrmse(y, r["pred_rls"], norm="std")
        diff = float(np.max(np.abs(np.asarray(r["pred_ridge"]) - ref["pred_ridge"])))
        data[name] = {"timing": t, "nrmse_std_ridge": e_ridge, "nrmse_std_rls": e_rls}
        data[name]["ridge_pred_maxdiff_vs_rnngraph_csr"] = diff
        rows.append(
            [
                name,
                seconds(t["fit_ridge"]),
                seconds(t["run_test"]),
                seconds(t["fit_rls"]),
                num(e_ridge),
                num(e_rls),
                num(diff) if name != "rnngraph (CSR W)" else "-",
            ]
        )
    if isinstance(results.get(rpy), dict):
        a, b = ref["timing"], results[rpy]["timing"]
        rows.append(
            [
                "rnngraph (CSR W) / reservoirpy",
                ratio(a["fit_ridge"], b["fit_ridge"], "s_median"),
                ratio(a["run_test"], b["run_test"], "s_median"),
                ratio(a["fit_rls"], b["fit_rls"], "s_median"),
                NA,
                NA,
                NA,
            ]
        )
    sec.tables.append(
        Table(
            f"Mackey-Glass one step ahead, {n_train} train + {n_test} test steps: "
            "seconds, median (min)",
            [
                "implementation",
                "run + ridge fit, s",
                f"test run ({n_test} steps), s",
                "run + RLS fit, s",
                "NRMSE(std) ridge",
                "NRMSE(std) RLS",
                "max abs(ridge prediction diff) vs rnngraph (CSR)",
            ],
            rows,
            [
                f"Same W and W_in for both libraries (seed {SEED}), ridge alpha = {RIDGE:g} "
                f"with an unpenalised bias, RLS alpha = {RLS_ALPHA:g} (P(0) = I/alpha on both "
                f"sides) with a bias, {WASHOUT} washout steps. NRMSE divides by the test "
                "target's standard deviation.",
                "rnngraph: `fit_ridge(x, y, alpha, washout)` then `run(x_test)`, "
                "`fit_rls(x, y, alpha, bias=True, washout)`, on a network built before the "
                "clock starts; reservoirpy: `(Reservoir(W=W, Win=W_in, lr=0.3) >> Ridge)"
                ".fit(x, y, warmup)` then `.run(x_test)`, and the same with `RLS`, after "
                "`model.initialize` (not timed).",
                "reservoirpy's RLS treats the bias by a running-mean correction, rnngraph's as "
                "an extra feature of P: their RLS predictions differ slightly.",
            ],
        )
    )
    sec.data.update(n_train=n_train, n_test=n_test, results=data)
    return sec
