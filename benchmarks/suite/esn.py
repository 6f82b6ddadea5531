"""Workload 1: the per-step cost of an echo-state reservoir, against its floor and peers.

The reservoir: ``x(t) = (1 - lr) x(t-1) + lr tanh(W x(t-1) + W_in u(t))``, lr = 0.3, W normal
with 10 % nonzeros scaled to spectral radius 1.25 (``rg.recurrent_weights``), W_in +-1 with
20 % nonzeros, one input channel, zero state at the start. The same W is stored dense
("dense" rows) or in CSR ("sparse" rows). Implementations, all on the same W, W_in and input:

* rnngraph: ``in -> res`` (``leaky_tanh``) with a feedback self-edge (``sparse=True`` for
  CSR), ``net.compile().run(x)``;
* the floor: the recurrent product alone, ``torch.mv`` (B = 1) or ``torch.mm`` (B > 1) on
  the dense W, torch's CSR product on the sparse one; for sparse W also scipy's CSR product;
* a plain eager torch loop of the update (1-D vectors and ``torch.mv`` at B = 1);
* reservoirpy 0.4.2 ``Reservoir(W=W, Win=W_in, lr=0.3).run(u)`` (float64; numpy W for dense,
  scipy CSR for sparse; a batch is a list of series, run one after the other);
* RectiPy 0.12.2, its leaky-integrator tanh template ``v' = -v/tau + k r_in + I_ext``,
  ``r = tanh(v)``, dense W, B = 1, float64 (a separate table, beside rnngraph's ``li`` node
  built by the same ``add_diffeq_node`` call).

Check: every side starts from a zero state and runs the same first steps; the largest
difference of the final state against rnngraph is reported.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

import rnngraph as rg

from ._peers import PeerError
from ._report import FAILED, MISSING, NA, Context, Section, Table, num, peer_failed, ratio, us
from ._timing import measure

LR, SR, CONNECTIVITY, IN_CONNECTIVITY = 0.3, 1.25, 0.1, 0.2
CHECK_STEPS = 100
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {"N": [64], "B": [1, 4], "max_steps": 400, "rectipy_N": [64]}
    return {"N": [100, 500, 2000], "B": [1, 64], "max_steps": 5000, "rectipy_N": [100, 500, 2000]}


def weights(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W, W_in)`` in float64: 10 % connectivity, spectral radius 1.25; +-1 input."""
    gen = torch.Generator().manual_seed(seed)
    w_in = rg.input_weights(n, 1, connectivity=IN_CONNECTIVITY, seed=gen, dtype=torch.float64)
    w = rg.recurrent_weights(
        n, spectral_radius=SR, connectivity=CONNECTIVITY, seed=gen, dtype=torch.float64
    )
    return w, w_in


def build(w: torch.Tensor, w_in: torch.Tensor, sparse: bool, dtype: torch.dtype) -> rg.Network:
    net = rg.Network(dt=1.0, dtype=dtype)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", "leaky_tanh", n=w.shape[0], lr=LR)
    net.add_edge("in", "res", weights=w_in)
    net.add_edge("res", "res", weights=w, feedback=True, sparse=sparse)
    return net


# ------------------------------------------------------------------------------------------
# the torch side of one configuration
# ------------------------------------------------------------------------------------------


def torch_side(
    w64: torch.Tensor, w_in64: torch.Tensor, u64: torch.Tensor, sparse: bool, dtype: torch.dtype
) -> tuple[dict[str, tuple], dict[str, np.ndarray]]:
    """The timed runs of rnngraph, the floor(s) and the eager loop; and their check states."""
    B, T_max, _ = u64.shape
    n = w64.shape[0]
    w, w_in, u = w64.to(dtype), w_in64.to(dtype), u64.to(dtype)
    model = build(w, w_in, sparse, dtype).compile()

    def rnngraph_run(T: int) -> None:
        model.reset()
        with torch.no_grad():
            model.run(u[:, :T])

    W = w.to_sparse_csr() if sparse else w
    if B == 1:
        x1 = torch.rand(n, dtype=dtype)

        def floor(T: int) -> None:
            for _ in range(T):
                torch.mv(W, x1)

    elif sparse:
        xt = torch.rand(n, B, dtype=dtype)

        def floor(T: int) -> None:
            for _ in range(T):
                W @ xt

    else:
        xb, wt = torch.rand(B, n, dtype=dtype), w.t()

        def floor(T: int) -> None:
            for _ in range(T):
                torch.mm(xb, wt)

    def eager(T: int, u: torch.Tensor = u) -> torch.Tensor:
        if B == 1:
            x = torch.zeros(n, dtype=dtype)
            us = u[0]
            for t in range(T):
                x = (1 - LR) * x + LR * torch.tanh(torch.mv(W, x) + torch.mv(w_in, us[t]))
            return x.unsqueeze(0)
        x = torch.zeros(B, n, dtype=dtype)
        for t in range(T):
            rec = (W @ x.t()).t() if sparse else x @ W.t()
            x = (1 - LR) * x + LR * torch.tanh(rec + u[:, t] @ w_in.t())
        return x

    runs: dict[str, tuple] = {
        "rnngraph": (rnngraph_run, T_max),
        "floor": (floor, T_max),
        "eager": (eager, T_max),
    }
    if sparse:
        ws = sp.csr_matrix(w64.numpy().astype(np.float32 if dtype == torch.float32 else np.float64))
        xs = np.random.default_rng(0).random((n, B) if B > 1 else n).astype(ws.dtype)

        def scipy_floor(T: int) -> None:
            for _ in range(T):
                ws @ xs

        runs["scipy"] = (scipy_floor, T_max)

    tc = min(CHECK_STEPS, T_max)
    model.reset()
    check = {
        "rnngraph": model.run(u[:, :tc]).output[:, -1].double().numpy(),
        "eager": eager(tc).double().numpy(),
    }
    return runs, check


def maxdiff(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    if a is None or b is None or np.shape(a) != np.shape(b):
        return None
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


# ------------------------------------------------------------------------------------------
# the workload
# ------------------------------------------------------------------------------------------


def run(ctx: Context) -> Section:
    cfg = sizes(ctx.quick)
    sec = Section("esn", "1. ESN step (leaky tanh, lr 0.3, spectral radius 1.25)")
    ws = {n: weights(n, seed=n) for n in cfg["N"]}
    rng = np.random.default_rng(1)
    inputs = {b: torch.as_tensor(rng.uniform(-1, 1, (b, cfg["max_steps"], 1))) for b in cfg["B"]}
    configs = [
        (n, b, layout, dt)
        for n in cfg["N"]
        for b in cfg["B"]
        for layout in ("dense", "sparse")
        for dt in DTYPES
    ]

    # peers first, in one subprocess each (float64 only)
    rpy = ctx.peers["reservoirpy"]
    rpy_res: dict[str, Any] = {}
    rpy_error = None
    if rpy.ok:
        ctx.log(f"  reservoirpy: {len(cfg['N']) * len(cfg['B']) * 2} configurations")
        arrays = {f"W{n}": ws[n][0].numpy() for n in cfg["N"]}
        arrays.update({f"Win{n}": ws[n][1].numpy() for n in cfg["N"]})
        arrays.update({f"u{b}": inputs[b].numpy() for b in cfg["B"]})
        req = {
            "configs": [
                {"key": f"N{n}-B{b}-{lay}", "N": n, "B": b, "layout": lay}
                for n, b, lay, dt in configs
                if dt == "float64"
            ],
            "lr": LR,
            "check_steps": CHECK_STEPS,
            "repeats": ctx.repeats,
            "target_s": ctx.target_s,
            "min_steps": ctx.min_steps,
        }
        try:
            rpy_res = rpy.run("esn", req, arrays)
        except PeerError as err:
            rpy_error = peer_failed(ctx, sec, rpy, err)

    rows, data = [], {}
    diffs_rpy, diffs_eager = [], []
    for n, b, layout, dt in configs:
        key = f"N{n}-B{b}-{layout}"
        ctx.log(f"  {key} {dt}")
        runs, check = torch_side(ws[n][0], ws[n][1], inputs[b], layout == "sparse", DTYPES[dt])
        m = measure(runs, ctx.repeats, ctx.target_s, ctx.min_steps)
        diffs_eager.append(maxdiff(check["rnngraph"], check["eager"]))
        if dt == "float64":
            if not rpy.ok:
                m["reservoirpy"] = MISSING
            elif rpy_error is not None:
                m["reservoirpy"] = FAILED
            else:
                r = rpy_res["results"][key]
                m["reservoirpy"] = r["timing"]
                diffs_rpy.append(maxdiff(check["rnngraph"], np.asarray(r["check"])))
        data[f"{key}-{dt}"] = {**m, "check_maxdiff_eager": diffs_eager[-1]}
        rows.append(
            [
                n,
                b,
                layout,
                dt,
                us(m["rnngraph"]),
                us(m["floor"]),
                us(m.get("scipy")),
                us(m["eager"]),
                us(m.get("reservoirpy")),
                ratio(m["rnngraph"], m["floor"]),
                ratio(m["rnngraph"], m["eager"]),
                ratio(m["rnngraph"], m.get("reservoirpy")),
            ]
        )
    sec.tables.append(
        Table(
            "ESN step, us/step: median (min)",
            [
                "N",
                "B",
                "W",
                "dtype",
                "rnngraph",
                "floor: torch mat-vec",
                "floor: scipy CSR",
                "eager torch loop",
                "reservoirpy",
                "rnngraph / floor",
                "rnngraph / eager",
                "rnngraph / reservoirpy",
            ],
            rows,
            [
                "W has 10 % nonzeros in every row; `dense` stores it as a dense matrix, "
                "`sparse` in CSR (rnngraph: `add_edge(..., sparse=True)`; reservoirpy: "
                "scipy CSR).",
                "floor: the recurrent product alone, as many calls as steps: `torch.mv` "
                "(B = 1) or `torch.mm` (B > 1) on the dense W, torch's CSR product on the "
                "sparse W (`torch.mv` at B = 1, CSR @ (N, B) above); scipy: its CSR product "
                "on the same W.",
                "reservoirpy has no batch dimension: at B > 1 it runs the B series one after "
                "the other (`Reservoir.run` on a (B, T, 1) array); its time is per step of "
                "all B series, like the others. It computes in float64 only.",
            ],
        )
    )
    d_e = [d for d in diffs_eager if d is not None]
    d_r = [d for d in diffs_rpy if d is not None]
    sec.notes.append(
        f"Check after {CHECK_STEPS} steps from a zero state: largest |x_rnngraph - x_eager| "
        f"{num(max(d_e)) if d_e else NA} (over all rows, float32 included), largest "
        f"|x_rnngraph - x_reservoirpy| {num(max(d_r)) if d_r else NA} (float64 rows)."
    )
    sec.data["esn"] = data
    if rpy_res:
        sec.data["reservoirpy_version"] = rpy_res.get("version")
    rectipy_table(ctx, cfg, ws, sec)
    return sec


# ------------------------------------------------------------------------------------------
# RectiPy
# ------------------------------------------------------------------------------------------

RP_DT, RP_TAU = 0.1, 10.0


def build_li(w: np.ndarray) -> rg.Network:
    """rnngraph's ``li`` node built by RectiPy's own ``add_diffeq_node`` call (without
    ``output_var``: the states are compared, and rnngraph's ``li`` emits ``tanh(v)``)."""
    net = rg.Network(RP_DT, device="cpu", dtype=torch.float64)
    net.add_diffeq_node(
        "rnn",
        "neuron_model_templates.rate_neurons.leaky_integrator.tanh",
        weights=w,
        source_var="tanh_op/r",
        target_var="li_op/r_in",
        input_var="li_op/I_ext",
        node_vars={"all/li_op/tau": RP_TAU},
    )
    return net


def rectipy_table(ctx: Context, cfg: dict[str, Any], ws: dict, sec: Section) -> None:
    peer = ctx.peers["rectipy"]
    ns = cfg["rectipy_N"]
    t_max = {n: cfg["max_steps"] if n < 1000 else min(cfg["max_steps"], 1000) for n in ns}
    rng = np.random.default_rng(2)
    drive = {n: rng.uniform(-0.1, 0.1, (t_max[n], n)) for n in ns}
    w_dense = {n: (ws[n][0] if n in ws else weights(n, seed=n)[0]).numpy() for n in ns}

    theirs: dict[str, Any] = {}
    error = None
    if peer.ok:
        ctx.log(f"  RectiPy: N = {ns} (building its networks takes a while)")
        req = {
            "N": ns,
            "dt": RP_DT,
            "tau": RP_TAU,
            "check_steps": CHECK_STEPS,
            "repeats": ctx.repeats,
            "target_s": ctx.target_s,
            "min_steps": ctx.min_steps,
        }
        arrays = {f"W{n}": w_dense[n] for n in ns}
        arrays.update({f"I{n}": drive[n] for n in ns})
        try:
            theirs = peer.run("li", req, arrays, timeout=3600)
        except PeerError as err:
            error = peer_failed(ctx, sec, peer, err)

    rows, data = [], {}
    for n in ns:
        ctx.log(f"  rnngraph li N{n}")
        t0 = time.perf_counter()
        net = build_li(w_dense[n])
        model = net.compile()
        t_build = time.perf_counter() - t0
        x = torch.as_tensor(drive[n]).unsqueeze(0)  # (1, T, N)

        def run_li(T: int, model=model, x=x) -> None:
            model.reset()
            with torch.no_grad():
                model.run(x[:, :T])

        tc = min(CHECK_STEPS, t_max[n])
        model.reset()
        model.run(x[:, :tc])
        v_ours = model.state["rnn.v"][0].numpy()
        m = measure({"rnngraph": (run_li, t_max[n])}, ctx.repeats, ctx.target_s, ctx.min_steps)
        ours = m["rnngraph"]
        if not peer.ok:
            rp, rp_build, diff = MISSING, MISSING, None
        elif error is not None:
            rp, rp_build, diff = FAILED, FAILED, None
        else:
            r = theirs["results"][str(n)]
            rp, rp_build = r["timing"], num(r["build_s"])
            diff = maxdiff(v_ours, np.asarray(r["check_v"]))
        data[n] = {"rnngraph": ours, "rnngraph_build_s": t_build, "rectipy": rp, "maxdiff": diff}
        rows.append(
            [
                n,
                us(ours),
                us(rp),
                ratio(ours, rp),
                num(t_build),
                rp_build,
                num(diff) if diff is not None else NA,
            ]
        )
    sec.tables.append(
        Table(
            "Rate network with RectiPy's leaky-integrator tanh template (dense W, B = 1, "
            "float64), us/step: median (min)",
            [
                "N",
                "rnngraph (`li`, RectiPy's call)",
                "RectiPy",
                "rnngraph / RectiPy",
                "rnngraph build + compile, s",
                "RectiPy build, s",
                f"max abs(v diff) after {CHECK_STEPS} steps",
            ],
            rows,
            [
                f"`v' = -v/tau + k W tanh(v) + I_ext`, tau = {RP_TAU}, k = 1, dt = {RP_DT}, "
                "forward Euler on both sides, the ESN's W (dense), input U(-0.1, 0.1) per unit. "
                "Both built by RectiPy's call (rnngraph without `output_var`): "
                "`add_diffeq_node('rnn', "
                "'neuron_model_templates.rate_neurons.leaky_integrator.tanh', weights=W, "
                "source_var='tanh_op/r', target_var='li_op/r_in', input_var='li_op/I_ext', "
                "output_var='li_op/v', node_vars={'all/li_op/tau': 10.0})`; RectiPy's "
                "`Network.run(x, verbose=False, enable_grad=False)`.",
                "RectiPy has no batch dimension and no CSR path; its build time is PyRates "
                "generating the N-unit circuit.",
            ],
        )
    )
    sec.data["rectipy"] = data
    if theirs:
        sec.data["rectipy_version"] = theirs.get("version")
