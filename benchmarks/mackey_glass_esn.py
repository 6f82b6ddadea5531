"""Mackey-Glass one step ahead with a 500-unit echo-state network, over many seeds.

    .venv/bin/python benchmarks/mackey_glass_esn.py [--seeds 20] [--compare] [--quick]
                                                    [--profile] [--repeats 3]
                                                    [--bias-scaling 1] [--peer-bias]

The task: the Mackey-Glass series with reservoirpy's defaults (tau=17, a=0.2, b=0.1, n=10,
x0=1.2, h=1; ``rnngraph.datasets.mackey_glass``) rescaled to [-1, 1]; predict x(t+1) from
x(t); 2000 training steps, then the next 2000 test steps, continuing the state; the first
100 training steps are left out of the fit. The model: 500 leaky-tanh units,
``x(t) = (1 - lr) x(t-1) + lr tanh(W x(t-1) + W_in u(t) + b)`` with lr=0.3, W normal with 10 %
connectivity scaled to spectral radius 1.25, W_in +-1 with 20 % connectivity (input scaling
1), b +-1 on 20 % of the units (``rnngraph.bias_weights``: the weights of a constant input,
drawn like one more column of W_in; ``--bias-scaling`` sets its size, 0 gives b = 0, the
default of reservoirpy 0.4.2's ``Reservoir``), float64. With b = 0 a tanh reservoir is odd in
its input (x[-u] = -x[u]); the bias breaks that symmetry.

For every seed (1..N) the script draws the weights, then fits, each from a zero state:
ridge readouts (alpha = 1e-5 and 1e-8, with an unpenalised bias) and an online RLS readout
(one pass, alpha = 1, P(0) = I/alpha, bias as an extra feature). Errors on the test steps:
NRMSE normalised by the target's standard deviation and by its range, and R^2. Times (wall
clock, one thread, the best of ``--repeats`` fits per seed on the same weights, then the
median over seeds): reservoir run + ridge fit (``Network.fit_ridge``), RLS fit
(``Network.fit_rls``: reservoir run + online updates) and the test run.

``--compare`` runs reservoirpy 0.4.2 in its own venv (``make peers PEERS=reservoirpy``) on the
same data and its own seeds 1..N (the seed drives ``reservoirpy.set_seed`` and the
``Reservoir``'s seed) with reservoirpy's default b = 0, or with ``--peer-bias`` the same bias
recipe drawn by reservoirpy's own ``bernoulli``; the two libraries are timed back to back for
every seed (reservoirpy as a long-lived subprocess that takes one seed at a time). It prints
both side by side with the ratios rnngraph/reservoirpy, and loads reservoirpy's weights into
rnngraph networks for a few seeds to show that the two give the same predictions.
``--quick`` runs 3 seeds; ``--profile`` prints where rnngraph's time goes. All figures go to
``benchmarks/results/mackey_glass_esn.json`` (``.quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import (
    Peer,
    fmt,
    median_label,
    ratio,
    run_record,
    single_thread,
    summary,
    table,
    timed,
    write_json,
)

import rnngraph as rg
from rnngraph.training import RLS, Ridge
from rnngraph.training._ridge import _gram

F64 = torch.float64
HERE = Path(__file__).resolve().parent

CONFIG: dict[str, Any] = {
    "n_units": 500,
    "sr": 1.25,
    "lr": 0.3,
    "input_scaling": 1.0,
    "rc_connectivity": 0.1,
    "input_connectivity": 0.2,
    "bias_scaling": 1.0,
    "bias_connectivity": 0.2,
    "peer_bias": False,
    "n_train": 2000,
    "n_test": 2000,
    "washout": 100,
    "ridges": [1e-5, 1e-8],
    "rls_alpha": 1.0,
}
READOUTS = ("ridge_1e-05", "ridge_1e-08", "rls")
LABELS = {"ridge_1e-05": "ridge 1e-5", "ridge_1e-08": "ridge 1e-8", "rls": "RLS alpha=1"}
#: reservoirpy 0.4.2, ridge 1e-5, median NRMSE(std) over seeds 1..20 (shared/anchors.md, sec. 1)
REFERENCE_MEDIAN = 0.0015


# ----------------------------------------------------------------------------------------
# task and model
# ----------------------------------------------------------------------------------------


def make_task(cfg: dict[str, Any]) -> dict[str, np.ndarray]:
    """The rescaled series and its one-step-ahead split, ``(T, 1)`` arrays."""
    n_tr, n_te = cfg["n_train"], cfg["n_test"]
    s = rg.datasets.mackey_glass(n_tr + n_te + 1)  # (T + 1, 1), reservoirpy's defaults
    s = 2.0 * (s - s.min()) / (s.max() - s.min()) - 1.0
    x, y = s[:-1], s[1:]
    return {
        "series": s,
        "x_train": x[:n_tr],
        "y_train": y[:n_tr],
        "x_test": x[n_tr : n_tr + n_te],
        "y_test": y[n_tr : n_tr + n_te],
    }


def draw_weights(
    seed: int, cfg: dict[str, Any]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | float]:
    """``(W, W_in, b)`` of one seed, drawn with rnngraph's initialisers from one generator
    (in that order; ``b = 0`` when ``cfg["bias_scaling"]`` is 0)."""
    gen = torch.Generator().manual_seed(seed)
    n = cfg["n_units"]
    w_in = rg.input_weights(
        n,
        1,
        connectivity=cfg["input_connectivity"],
        scaling=cfg["input_scaling"],
        distribution="bernoulli",
        seed=gen,
        dtype=F64,
    )  # (N, 1)
    w = rg.recurrent_weights(
        n, spectral_radius=cfg["sr"], connectivity=cfg["rc_connectivity"], seed=gen, dtype=F64
    )  # (N, N)
    if not cfg["bias_scaling"]:
        return w, w_in, 0.0
    b = rg.bias_weights(
        n, connectivity=cfg["bias_connectivity"], scaling=cfg["bias_scaling"], seed=gen, dtype=F64
    )  # (N,)
    return w, w_in, b


def build_esn(w: Any, w_in: Any, bias: Any, cfg: dict[str, Any], sparse: bool) -> rg.Network:
    """in -> res (leaky tanh), res -(1 step)-> res; no readout yet."""
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", "leaky_tanh", n=cfg["n_units"], lr=cfg["lr"], bias=bias)
    net.add_edge("in", "res", weights=w_in)
    net.add_edge("res", "res", weights=w, feedback=True, sparse=sparse)
    return net


def scores(y: np.ndarray, pred: Any) -> dict[str, float]:
    return {
        "nrmse_std": rg.metrics.nrmse(y, pred, norm="std"),
        "nrmse_range": rg.metrics.nrmse(y, pred, norm="range"),
        "r2": rg.metrics.rsquare(y, pred),
    }


def warm_up(task: dict[str, np.ndarray], cfg: dict[str, Any]) -> None:
    """One small untimed fit of each kind (first-call costs of torch and the loop)."""
    w, w_in, b = draw_weights(0, cfg)
    for sparse in (False, True):
        net = build_esn(w, w_in, b, cfg, sparse)
        net.fit_ridge(task["x_train"][:200], task["y_train"][:200], alpha=1e-5, washout=10)
        net.run(task["x_test"][:200])
        build_esn(w, w_in, b, cfg, sparse).fit_rls(
            task["x_train"][:200], task["y_train"][:200], alpha=1.0, bias=True
        )


# ----------------------------------------------------------------------------------------
# rnngraph
# ----------------------------------------------------------------------------------------


def time_layouts(
    task: dict[str, np.ndarray], seeds: list[int], cfg: dict[str, Any], rounds: int
) -> dict[str, Any]:
    """Reservoir run + ridge fit with dense and with CSR recurrent weights, interleaved:
    per seed the best of ``rounds`` fits, then the median over seeds."""
    times: dict[str, list[float]] = {"dense": [], "sparse": []}
    run_us: dict[str, list[float]] = {"dense": [], "sparse": []}
    for seed in seeds:
        w, w_in, b = draw_weights(seed, cfg)
        best: dict[str, list[float]] = {"dense": [], "sparse": []}
        best_run: dict[str, list[float]] = {"dense": [], "sparse": []}
        for _ in range(rounds):
            for name, sparse in (("dense", False), ("sparse", True)):
                net = build_esn(w, w_in, b, cfg, sparse)
                _, t = timed(
                    lambda net=net: net.fit_ridge(
                        task["x_train"], task["y_train"], alpha=1e-5, washout=cfg["washout"]
                    )
                )
                _, t_run = timed(lambda net=net: net.run(task["x_test"]))
                best[name].append(t)
                best_run[name].append(1e6 * t_run / len(task["x_test"]))
        for name in times:
            times[name].append(min(best[name]))
            run_us[name].append(min(best_run[name]))
    med = {k: float(np.median(v)) for k, v in times.items()}
    return {
        "fit_ridge_s": med,
        "run_us_per_step": {k: float(np.median(v)) for k, v in run_us.items()},
        "per_seed_best_s": times,
        "faster": min(med, key=med.get),
    }


def rnngraph_seed(
    seed: int, task: dict[str, np.ndarray], cfg: dict[str, Any], sparse: bool, repeats: int
) -> dict[str, Any]:
    """One seed: test scores of each readout; times, the best of ``repeats`` fits."""
    x_tr, y_tr, x_te, y_te = task["x_train"], task["y_train"], task["x_test"], task["y_test"]
    wash = cfg["washout"]
    w, w_in, b = draw_weights(seed, cfg)
    out: dict[str, Any] = {"scores": {}}
    t_fit, t_run, t_rls = [], [], []
    for rep in range(repeats):
        net = build_esn(w, w_in, b, cfg, sparse)
        _, t = timed(lambda net=net: net.fit_ridge(x_tr, y_tr, alpha=1e-5, washout=wash))
        rec, t_r = timed(lambda net=net: net.run(x_te))
        t_fit.append(t)
        t_run.append(t_r)
        if rep == 0:
            out["scores"]["ridge_1e-05"] = scores(y_te, rec.output)
            # refit the same readout edge with the other penalty, from the initial state
            net.reset()
            net.fit_ridge(x_tr, y_tr, edge=("res", "readout"), alpha=1e-8, washout=wash)
            out["scores"]["ridge_1e-08"] = scores(y_te, net.run(x_te).output)
    for rep in range(repeats):
        net = build_esn(w, w_in, b, cfg, sparse)
        _, t = timed(
            lambda net=net: net.fit_rls(x_tr, y_tr, alpha=cfg["rls_alpha"], bias=True, washout=wash)
        )
        t_rls.append(t)
        if rep == 0:
            out["scores"]["rls"] = scores(y_te, net.run(x_te).output)
    out["times"] = {"fit_ridge_s": min(t_fit), "run_test_s": min(t_run), "fit_rls_s": min(t_rls)}
    print(
        f"  rnngraph    seed {seed:3d}: fit {min(t_fit):.3f} s, RLS {min(t_rls):.3f} s, "
        f"NRMSE(std) ridge 1e-5 {out['scores']['ridge_1e-05']['nrmse_std']:.2e}",
        flush=True,
    )
    return out


def reservoirpy_seed(
    seed: int, peer: Peer, outdir: Path, task: dict[str, np.ndarray]
) -> dict[str, Any]:
    """One seed run by the reservoirpy peer; scores computed here, as for rnngraph."""
    peer.ask(f"seed {seed}", f"done {seed}")
    d = dict(np.load(outdir / f"seed_{seed}.npz"))
    y_te = task["y_test"]
    out: dict[str, Any] = {
        "scores": {
            "ridge_1e-05": scores(y_te, d["pred_ridge"][0]),
            "ridge_1e-08": scores(y_te, d["pred_ridge"][1]),
            "rls": scores(y_te, d["pred_rls"]),
        },
        "times": {
            "fit_ridge_s": float(d["t_fit_ridge"]),
            "run_test_s": float(d["t_run_test"]),
            "fit_rls_s": float(d["t_fit_rls"]),
        },
        "pred_ridge_1e-05": d["pred_ridge"][0],
    }
    if "W" in d:
        out["exported"] = {k: d[k] for k in ("W", "Win", "bias", "Wout", "bias_out")}
    return out


def run_all(
    task: dict[str, np.ndarray],
    seeds: list[int],
    cfg: dict[str, Any],
    sparse: bool,
    repeats: int,
    compare: bool,
    export: list[int],
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Every seed with rnngraph and, with ``compare``, with reservoirpy, the two timed back
    to back per seed (alternating which goes first)."""
    ours: dict[str, Any] = {"seeds": seeds, "per_seed": []}
    if not compare:
        for seed in seeds:
            ours["per_seed"].append(rnngraph_seed(seed, task, cfg, sparse, repeats))
        return ours, None
    theirs: dict[str, Any] = {"seeds": seeds, "per_seed": []}
    with tempfile.TemporaryDirectory() as tmp:
        outdir = Path(tmp)
        np.savez(
            outdir / "in.npz",
            **task,
            export_seeds=np.asarray(export),
            repeats=np.asarray(repeats),
            **{k: np.asarray(v) for k, v in cfg.items()},
        )
        with Peer(
            "reservoirpy", HERE / "peers" / "reservoirpy_mg.py", [outdir / "in.npz", tmp]
        ) as peer:
            info = dict(np.load(outdir / "info.npz"))
            for i, seed in enumerate(seeds):
                if i % 2 == 0:
                    ours["per_seed"].append(rnngraph_seed(seed, task, cfg, sparse, repeats))
                theirs["per_seed"].append(reservoirpy_seed(seed, peer, outdir, task))
                if i % 2 == 1:
                    ours["per_seed"].append(rnngraph_seed(seed, task, cfg, sparse, repeats))
    theirs.update(
        version=str(info["version"]),
        numpy_version=str(info["numpy_version"]),
        reservoir_bias_default=str(info["bias_default"]),
        mg_max_abs_diff=float(info["mg_diff"]),
    )
    return ours, theirs


def same_weights(
    task: dict[str, np.ndarray], peer: dict[str, Any], cfg: dict[str, Any], sparse: bool
) -> list[dict[str, Any]]:
    """reservoirpy's W, W_in, b in an rnngraph network: (a) with reservoirpy's ridge readout,
    (b) with rnngraph's own ridge fit; both compared with reservoirpy's test predictions."""
    rows = []
    n = cfg["n_units"]
    for seed, entry in zip(peer["seeds"], peer["per_seed"], strict=True):
        if "exported" not in entry:
            continue
        wts, theirs = entry["exported"], entry["pred_ridge_1e-05"]
        bias = wts["bias"] if wts["bias"].size != n else wts["bias"].reshape(n)
        net_a = build_esn(wts["W"], wts["Win"], bias, cfg, sparse)
        net_a.add_func_node("readout", 1)
        net_a.add_edge(
            "res", "readout", weights=wts["Wout"].T, bias=wts["bias_out"].reshape(-1)
        )  # Wout: (N, 1) in reservoirpy's layout
        net_a.run(task["x_train"])
        pred_a = net_a.run(task["x_test"]).output.numpy()
        net_b = build_esn(wts["W"], wts["Win"], bias, cfg, sparse)
        ridge = net_b.fit_ridge(
            task["x_train"], task["y_train"], alpha=cfg["ridges"][0], washout=cfg["washout"]
        )
        pred_b = net_b.run(task["x_test"]).output.numpy()
        rows.append(
            {
                "seed": seed,
                "their_readout_max_abs_diff": float(np.max(np.abs(pred_a - theirs))),
                "own_ridge_max_abs_diff": float(np.max(np.abs(pred_b - theirs))),
                "wout_max_abs_diff": float(np.max(np.abs(ridge.weight.numpy().T - wts["Wout"]))),
                "wout_max_abs": float(np.max(np.abs(wts["Wout"]))),
            }
        )
    return rows


# ----------------------------------------------------------------------------------------
# summaries, tables, acceptance
# ----------------------------------------------------------------------------------------


def summarise(lib: dict[str, Any]) -> dict[str, Any]:
    seeds = lib["seeds"]
    s: dict[str, Any] = {}
    for key in READOUTS:
        sc = [e["scores"][key] for e in lib["per_seed"]]
        nr = [d["nrmse_std"] for d in sc]
        med_seed = median_label(nr, seeds)
        s[key] = {
            "nrmse_std": summary(nr, seeds),
            "nrmse_range": summary([d["nrmse_range"] for d in sc], seeds),
            "r2_median": float(np.median([d["r2"] for d in sc])),
            "r2_min": float(np.min([d["r2"] for d in sc])),
            "median_seed": med_seed,
            "r2_of_median_seed": sc[seeds.index(med_seed)]["r2"],
        }
    t = {k: [e["times"][k] for e in lib["per_seed"]] for k in lib["per_seed"][0]["times"]}
    s["times"] = {k: float(np.median(v)) for k, v in t.items()}
    s["times"]["run_us_per_step"] = 1e6 * s["times"]["run_test_s"] / CONFIG["n_test"]
    return s


def summary_rows(s: dict[str, Any]) -> list[tuple[str, Any]]:
    """(figure, value) pairs for one library."""
    rows: list[tuple[str, Any]] = []
    for key in READOUTS:
        nr = s[key]["nrmse_std"]
        lab = LABELS[key]
        rows += [
            (f"{lab}: NRMSE(std) median", nr["median"]),
            (
                f"{lab}: NRMSE(std) worst (seed)",
                f"{fmt(nr['max'])} (seed {nr['worst_label']})",
            ),
            (f"{lab}: NRMSE(std) q25 - q75", f"{fmt(nr['q25'])} - {fmt(nr['q75'])}"),
            (f"{lab}: NRMSE(range) median", s[key]["nrmse_range"]["median"]),
            (f"{lab}: R^2 median", f"{s[key]['r2_median']:.6f}"),
        ]
    rls = s["rls"]
    rows.append(
        (
            "RLS: R^2 of the median seed (seed)",
            f"{rls['r2_of_median_seed']:.5f} (seed {rls['median_seed']})",
        )
    )
    t = s["times"]
    rows += [
        ("time: reservoir run + ridge fit, median s", t["fit_ridge_s"]),
        ("time: RLS fit (run + 1900 updates), median s", t["fit_rls_s"]),
        ("time: test run, us/step", t["run_us_per_step"]),
    ]
    return rows


#: figures that get a ratio ours/theirs: (row label, getter)
RATIO_ROWS = {
    "ridge 1e-5: NRMSE(std) median": lambda s: s["ridge_1e-05"]["nrmse_std"]["median"],
    "ridge 1e-5: NRMSE(std) worst (seed)": lambda s: s["ridge_1e-05"]["nrmse_std"]["max"],
    "ridge 1e-8: NRMSE(std) median": lambda s: s["ridge_1e-08"]["nrmse_std"]["median"],
    "ridge 1e-8: NRMSE(std) worst (seed)": lambda s: s["ridge_1e-08"]["nrmse_std"]["max"],
    "RLS alpha=1: NRMSE(std) median": lambda s: s["rls"]["nrmse_std"]["median"],
    "RLS alpha=1: NRMSE(std) worst (seed)": lambda s: s["rls"]["nrmse_std"]["max"],
    "time: reservoir run + ridge fit, median s": lambda s: s["times"]["fit_ridge_s"],
    "time: RLS fit (run + 1900 updates), median s": lambda s: s["times"]["fit_rls_s"],
    "time: test run, us/step": lambda s: s["times"]["run_us_per_step"],
}


def acceptance(
    ours: dict[str, Any], theirs: dict[str, Any] | None, same: list, pairs: dict[str, float]
) -> list:
    """(criterion, value, met) triples; time ratios: the median of the per-seed ratios, each
    of two fits timed back to back."""
    med = ours["ridge_1e-05"]["nrmse_std"]["median"]
    ref = theirs["ridge_1e-05"]["nrmse_std"]["median"] if theirs else REFERENCE_MEDIAN
    src = "reservoirpy, this run" if theirs else "reservoirpy, anchors.md"
    out = [
        (
            f"median NRMSE(std), ridge 1e-5, <= reservoirpy's median ({fmt(ref)}, {src})",
            fmt(med),
            med <= ref,
        ),
        (
            "RLS R^2 of the median seed >= 0.997",
            f"{ours['rls']['r2_of_median_seed']:.5f}",
            ours["rls"]["r2_of_median_seed"] >= 0.997,
        ),
    ]
    if theirs:
        for label, key, bound in (
            ("run + ridge time ratio ours/theirs <= 0.5", "fit_ridge_s", 0.5),
            ("RLS time ratio ours/theirs <= 0.2", "fit_rls_s", 0.2),
        ):
            out.append((label, fmt(pairs[key]), pairs[key] <= bound))
    if same:
        worst = max(r["own_ridge_max_abs_diff"] for r in same)
        out.append(
            ("same weights: rnngraph ridge = reservoirpy's to 1e-4", fmt(worst), worst <= 1e-4)
        )
    return out


# ----------------------------------------------------------------------------------------
# profile
# ----------------------------------------------------------------------------------------


def per_call_us(fn: Any, n: int = 2000) -> float:
    """Best of 5 rounds of ``n`` calls, in microseconds per call."""
    for _ in range(100):
        fn()

    def calls() -> None:
        for _ in range(n):
            fn()  # the result is dropped at once, as in a loop

    best = float("inf")
    for _ in range(5):
        best = min(best, timed(calls)[1] / n)
    return 1e6 * best


def op_costs(w: torch.Tensor, cfg: dict[str, Any]) -> dict[str, float]:
    """Per-call cost of the operations a step of the ESN and an RLS update are made of, with
    the shapes of this task (B = 1), and of the matching operations reservoirpy issues. The
    cProfile listings show which of them rnngraph's loop calls."""
    import scipy.sparse

    n = cfg["n_units"]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, n, generator=gen, dtype=F64)  # (B=1, N) state
    p = torch.randn(1, n, generator=gen, dtype=F64)  # precomputed W_in u(t)
    w_csr = w.to_sparse_csr()
    w_t = w.t()
    b0, lr = torch.tensor(0.0, dtype=F64), torch.tensor(cfg["lr"], dtype=F64)
    w_out, b_out = torch.zeros(n, 1, dtype=F64), torch.zeros(1, dtype=F64)
    w_sp, x_np = scipy.sparse.csr_array(w.numpy()), x[0].numpy()
    P = torch.eye(n + 1, dtype=F64)
    r = torch.randn(1, n + 1, generator=gen, dtype=F64)
    k = P @ r.T
    g = k.T / (1.0 + r @ k)
    P_np, k_np = P.numpy().copy(), k[:, 0].numpy().copy()
    c_np = 1.0 + float(r @ k)
    return {
        "step: CSR mat-mat, (W @ x.t()).t()": per_call_us(lambda: (w_csr @ x.t()).t()),
        "step: dense, torch.addmm(p, x, W.t())": per_call_us(lambda: torch.addmm(p, x, w_t)),
        "step: + precomputed input W_in u(t)": per_call_us(lambda: p + x),
        "step: + bias (0-dim tensor)": per_call_us(lambda: x + b0),
        "step: tanh": per_call_us(lambda: torch.tanh(x)),
        "step: lerp (leak)": per_call_us(lambda: torch.lerp(x, p, lr)),
        "step: readout node during the fit, addmm (500 -> 1)": per_call_us(
            lambda: torch.addmm(b_out, x, w_out)
        ),
        "step: CSR mat-vec, torch.mv(W, x[0])": per_call_us(lambda: torch.mv(w_csr, x[0])),
        "ref: scipy CSR @ x (reservoirpy's mat-vec)": per_call_us(lambda: w_sp @ x_np),
        "rls: k = P @ r (501 x 501)": per_call_us(lambda: P @ r.T),
        "rls: P.addmm_(k, g, alpha=-1) (in-place rank 1)": per_call_us(
            lambda: P.addmm_(k, g, alpha=-1e-20)
        ),
        "rls: cat([r, 1]) (bias feature)": per_call_us(lambda: torch.cat([r, r[:, :1]], dim=1)),
        "ref: numpy (P - outer(k, k) / c) / 1 (reservoirpy's P update)": per_call_us(
            lambda: (P_np + -np.outer(k_np, k_np) / c_np) / 1.0, n=500
        ),
    }


def profile(task: dict[str, np.ndarray], cfg: dict[str, Any], sparse: bool) -> dict[str, Any]:
    """Where rnngraph's time goes in ``fit_ridge`` and ``fit_rls`` (seed 1). Every part is
    timed once per round, the rounds interleaved, and the best round counts, so that a
    change of the machine's load hits all parts alike."""
    x_tr, y_tr = task["x_train"], task["y_train"]
    wash, rounds = cfg["washout"], 7
    w, w_in, b = draw_weights(1, cfg)
    net = build_esn(w, w_in, b, cfg, sparse)
    net.compile()
    states = net.run(x_tr, record=["res"])["res"]  # (T, N)
    y_t = torch.as_tensor(y_tr)
    feats = states[wash:].contiguous()  # (T', N)

    def loop() -> None:
        net.reset()
        net.run(x_tr, record=["res"])

    def rls_only() -> None:  # the RLS arithmetic alone, on the recorded states
        rls = RLS(alpha=cfg["rls_alpha"])
        wt, bt = torch.zeros(1, cfg["n_units"], dtype=F64), torch.zeros(1, dtype=F64)
        for t in range(wash, len(y_tr)):
            rls.update(wt, bt, states[t : t + 1], y_t[t : t + 1])

    parts: dict[str, list[float]] = {
        k: [] for k in ("fit", "loop", "ridge", "gram", "rls", "rls_math")
    }
    for _ in range(rounds):
        fresh = [build_esn(w, w_in, b, cfg, sparse) for _ in range(2)]  # built outside the clock
        parts["fit"].append(
            timed(lambda n=fresh[0]: n.fit_ridge(x_tr, y_tr, alpha=1e-5, washout=wash))[1]
        )
        parts["loop"].append(timed(loop)[1])
        parts["ridge"].append(timed(lambda: Ridge(alpha=1e-5, washout=wash).fit(states, y_t))[1])
        parts["gram"].append(timed(lambda: _gram(feats))[1])
        parts["rls"].append(
            timed(
                lambda n=fresh[1]: n.fit_rls(
                    x_tr, y_tr, alpha=cfg["rls_alpha"], bias=True, washout=wash
                )
            )[1]
        )
        parts["rls_math"].append(timed(rls_only)[1])
    best = {k: min(v) for k, v in parts.items()}
    t_fit, t_loop, t_ridge, t_gram = best["fit"], best["loop"], best["ridge"], best["gram"]
    t_rls, t_rls_math = best["rls"], best["rls_math"]

    def fit_ridge(n: rg.Network) -> None:
        n.fit_ridge(x_tr, y_tr, alpha=1e-5, washout=wash)

    def fit_rls(n: rg.Network) -> None:
        n.fit_rls(x_tr, y_tr, alpha=cfg["rls_alpha"], bias=True, washout=wash)

    n_steps, n_upd = len(x_tr), len(x_tr) - wash
    gram_shape = f"{n_upd} x {cfg['n_units']}"
    breakdown = {
        "fit_ridge total": t_fit,
        f"  reservoir loop, {n_steps} steps (run recording res)": t_loop,
        "  ridge from the states (Ridge.fit)": t_ridge,
        f"    of which the Gram matrix X^T X ({gram_shape}, as Ridge builds it)": t_gram,
        "  rest (readout node in the loop, validation, compile)": t_fit - t_loop - t_ridge,
        "fit_rls total": t_rls,
        f"  RLS.update x {n_upd} alone, on stored states": t_rls_math,
        "  rest (reservoir loop, hook, recording)": t_rls - t_rls_math,
    }
    per = {"loop us/step": 1e6 * t_loop / n_steps, "RLS.update us/update": 1e6 * t_rls_math / n_upd}
    ops = op_costs(w, cfg)
    print(f"\nProfile (seed 1; best of {rounds} interleaved rounds; one thread):")
    for k, v in breakdown.items():
        print(f"  {k:62s} {v * 1e3:8.2f} ms")
    for k, v in per.items():
        print(f"  {k:62s} {v:8.2f} us")
    print("\nPer-call cost of the operations (us):")
    for k, v in ops.items():
        print(f"  {k:62s} {v:8.2f}")
    for name, fn in (("fit_ridge", fit_ridge), ("fit_rls", fit_rls)):
        fresh_net = build_esn(w, w_in, b, cfg, sparse)
        prof = cProfile.Profile()
        prof.enable()
        fn(fresh_net)
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(8)
        text = buf.getvalue()
        start = text.find("   ncalls")
        print(f"\ncProfile of {name} (top 8 by own time; cProfile inflates per-call costs):")
        print(text[start:].rstrip())
    return {"seconds": breakdown, "per_step_us": per, "op_us": ops}


# ----------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds 1..N (default 20)")
    parser.add_argument("--compare", action="store_true", help="run reservoirpy side by side")
    parser.add_argument("--quick", action="store_true", help="3 seeds, for a smoke test")
    parser.add_argument("--profile", action="store_true", help="where rnngraph's time goes")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed fits per seed, the best counts (default 3)"
    )
    parser.add_argument(
        "--bias-scaling",
        type=float,
        default=CONFIG["bias_scaling"],
        help="reservoir bias +-S on 20 %% of the units; 0: no bias (default 1)",
    )
    parser.add_argument(
        "--peer-bias",
        action="store_true",
        help="give reservoirpy the same bias recipe (default: its own default, b = 0)",
    )
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    n_seeds = 3 if args.quick else args.seeds
    seeds = list(range(1, n_seeds + 1))
    export = seeds[: 1 if args.quick else 3]
    cfg = dict(CONFIG, bias_scaling=args.bias_scaling, peer_bias=args.peer_bias)
    threads = single_thread(peer=args.compare)

    print("Mackey-Glass one step ahead, ESN of 500 leaky-tanh units, float64")
    print(
        f"  train {cfg['n_train']} steps (first {cfg['washout']} left out of the fit), test "
        f"{cfg['n_test']} steps continuing the state; seeds {seeds[0]}..{seeds[-1]}"
    )
    bias = (
        f"+-{cfg['bias_scaling']:g} on {cfg['bias_connectivity']:.0%} of the units"
        if cfg["bias_scaling"]
        else "0"
    )
    line = f"  reservoir bias b: {bias} (rnngraph)"
    if args.compare:
        line += ", " + ("the same recipe" if args.peer_bias else "0, its default")
        line += " (reservoirpy)"
    print(line)
    print(f"  {threads}")
    print(
        f"  times: best of {repeats} fits per seed on the same weights, then the median over "
        "seeds" + ("; rnngraph and reservoirpy back to back per seed" if args.compare else "")
    )
    print("  NRMSE(std) = RMSE / std(y_test); NRMSE(range) = RMSE / (max - min)(y_test)")
    task = make_task(cfg)
    warm_up(task, cfg)

    layouts = time_layouts(task, seeds[:3], cfg, rounds=1 if args.quick else 2)
    sparse = layouts["faster"] == "sparse"
    print(
        "\nrecurrent weights: dense {:.3f} s, CSR (sparse=True) {:.3f} s per run + ridge fit "
        "(median); using {} for the timings".format(
            layouts["fit_ridge_s"]["dense"],
            layouts["fit_ridge_s"]["sparse"],
            "CSR (sparse=True)" if sparse else "dense",
        )
    )

    print()
    ours, theirs = run_all(task, seeds, cfg, sparse, repeats, args.compare, export)
    s_ours = summarise(ours)
    s_theirs, same, pair_ratios = None, [], {}
    if theirs is not None:
        s_theirs = summarise(theirs)
        same = same_weights(task, theirs, cfg, sparse)
        for key in ("fit_ridge_s", "fit_rls_s", "run_test_s"):
            pair_ratios[key] = float(
                np.median(
                    [
                        a["times"][key] / b["times"][key]
                        for a, b in zip(ours["per_seed"], theirs["per_seed"], strict=True)
                    ]
                )
            )

    print()
    rows_ours = summary_rows(s_ours)
    if s_theirs is None:
        print(table(["figure", "rnngraph"], rows_ours, "Results (median over seeds)"))
    else:
        rows = []
        for (label, a), (_, b) in zip(rows_ours, summary_rows(s_theirs), strict=True):
            r = ""
            if label in RATIO_ROWS:
                r = fmt(ratio(RATIO_ROWS[label](s_ours), RATIO_ROWS[label](s_theirs)))
            rows.append((label, a, b, r))
        print(
            table(
                ["figure", "rnngraph", f"reservoirpy {theirs['version']}", "ours/theirs"],
                rows,
                f"Results over seeds {seeds[0]}..{seeds[-1]} (each library its own draws)",
            )
        )
        print(
            f"\nMackey-Glass series: max |rnngraph - reservoirpy| = {theirs['mg_max_abs_diff']:.1e}"
            f"; reservoirpy's Reservoir bias default: {theirs['reservoir_bias_default']}"
        )
        print(
            "time ratios ours/theirs, median of the per-seed (back to back) ratios: "
            f"run + ridge {fmt(pair_ratios['fit_ridge_s'])}, RLS {fmt(pair_ratios['fit_rls_s'])}, "
            f"test run {fmt(pair_ratios['run_test_s'])}"
        )
        per_seed = []
        for seed, a, b in zip(seeds, ours["per_seed"], theirs["per_seed"], strict=True):
            per_seed.append(
                (
                    seed,
                    a["scores"]["ridge_1e-05"]["nrmse_std"],
                    b["scores"]["ridge_1e-05"]["nrmse_std"],
                    f"{a['scores']['rls']['r2']:.5f}",
                    f"{b['scores']['rls']['r2']:.5f}",
                    a["times"]["fit_ridge_s"],
                    b["times"]["fit_ridge_s"],
                    a["times"]["fit_rls_s"],
                    b["times"]["fit_rls_s"],
                )
            )
        print()
        print(
            table(
                [
                    "seed",
                    "NRMSE(std) ours",
                    "theirs",
                    "RLS R^2 ours",
                    "theirs",
                    "fit s ours",
                    "theirs",
                    "RLS s ours",
                    "theirs",
                ],
                per_seed,
                "Per seed (ridge 1e-5 NRMSE(std); RLS test R^2; times)",
            )
        )
        print()
        print(
            table(
                [
                    "seed",
                    "max abs diff, their readout",
                    "max abs diff, rnngraph ridge",
                    "max abs Wout diff",
                    "max abs Wout",
                ],
                [
                    (
                        r["seed"],
                        r["their_readout_max_abs_diff"],
                        r["own_ridge_max_abs_diff"],
                        r["wout_max_abs_diff"],
                        r["wout_max_abs"],
                    )
                    for r in same
                ],
                "Same weights: reservoirpy's W, W_in, b loaded into rnngraph; test predictions "
                "vs reservoirpy's (ridge 1e-5)",
            )
        )

    acc = acceptance(s_ours, s_theirs, same, pair_ratios)
    print("\nAcceptance:")
    for label, value, met in acc:
        print(f"  [{'MET' if met else 'NOT MET'}] {label}: {value}")
    worst = s_ours["ridge_1e-05"]["nrmse_std"]
    line = f"  worst seed, ridge 1e-5: rnngraph {fmt(worst['max'])} (seed {worst['worst_label']})"
    if s_theirs is not None:
        tw = s_theirs["ridge_1e-05"]["nrmse_std"]
        line += f", reservoirpy {fmt(tw['max'])} (seed {tw['worst_label']})"
    print(line)

    prof = profile(task, cfg, sparse) if args.profile else None

    result = run_record(
        argv,
        threads=threads,
        config=cfg,
        seeds=seeds,
        repeats=repeats,
        layouts=layouts,
        layout_used="sparse" if sparse else "dense",
        rnngraph={"per_seed": ours, "summary": s_ours},
        acceptance=[{"criterion": c, "value": v, "met": m} for c, v, m in acc],
        profile=prof,
    )
    if theirs is not None:
        drop = ("exported", "pred_ridge_1e-05")
        theirs["per_seed"] = [
            {k: v for k, v in e.items() if k not in drop} for e in theirs["per_seed"]
        ]
        result["reservoirpy"] = {"per_seed": theirs, "summary": s_theirs}
        result["time_ratios_median_of_pairs"] = pair_ratios
        result["same_weights"] = same
    path = write_json("mackey_glass_esn" + (".quick" if args.quick else "") + ".json", result)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
