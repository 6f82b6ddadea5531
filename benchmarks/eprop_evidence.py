"""e-prop and BPTT on Bellec et al.'s (2020) evidence-accumulation task (50 LIF + 50 ALIF).

    .venv/bin/python benchmarks/eprop_evidence.py [--iterations 500] [--seed 0]
        [--method random|symmetric|adaptive|bptt|bptt_reg|all] [--eval-every 10]
        [--stop-margin M] [--detach-reset] [--quick]
    .venv/bin/python benchmarks/eprop_evidence.py --timing 8     # seconds per update

Bellec et al., Nat Commun 11:3625 (2020), doi:10.1038/s41467-020-17236-y, Fig. 3; settings
of their reference implementation (the e-prop tutorial on evidence accumulation with ALIF).

Task (``rnngraph.datasets.evidence_accumulation``): 40 input channels in four groups of 10
(left cues, right cues, recall, background noise), 7 cues of 100 ms every 150 ms at 40 Hz,
noise at 10 Hz, trials of 2250 ms with dt = 1 ms; the network must answer in the last
150 ms (the recall window) which side had more cues. A fresh batch of 64 trials per
iteration, drawn from ``(seed, iteration)``, the same for every method.

Network (float32): ``in`` (identity, 40) -> ``rec`` -> ``out``, every edge trained:

* ``rec``: one ``alif`` node of 100 units, Bellec's form (``exp_euler``, ``r_m =
  1 / (1 - alpha)``, reset by subtraction): ``v(t) = alpha v(t-1) + I(t) - v_th z(t-1)``,
  alpha = exp(-1/20), v_th = 0.6, threshold ``v_th + beta a``, ``a(t) = rho a(t-1) +
  z(t-1)``, rho = exp(-1/2000); beta = 0 for units 0-49 (LIF units) and
  beta = 1.7 (1 - rho) / (1 - alpha) = 0.0174 for units 50-99 (the reference code's
  value); refractory period 5 ms (Brian2's timing: a unit that spiked is held for the next
  4 steps); ``triangle`` surrogate, gamma = 0.3; ``detach_reset=False``: BPTT
  differentiates the reset term ``- v_th z(t-1)``, as Bellec's BPTT does (e-prop treats it
  as a constant either way; its gradients do not depend on this flag).
* ``in -> rec``: W_in ~ N(0, 1/40); ``rec -> rec``: a feedback self-edge (delay 1 step),
  W_rec ~ N(0, 1/100) with its diagonal masked out (no self-connections).
* ``rec -> out``: ``leaky_readout``, ``y(t) = kappa y(t-1) + W_out z(t) + b``, kappa =
  exp(-1/20), 2 outputs (logits), W_out ~ N(0, 1/100), b = 0.

Training: Adam, lr 5e-3, cross-entropy of the logits at every step of the recall window.

* ``random`` / ``symmetric`` / ``adaptive``: e-prop (``Network.fit_eprop``, that feedback)
  with Bellec's firing-rate regulariser toward 10 Hz (``reg_rate=10``, ``reg_weight=1``);
  the random feedback matrix is drawn from ``--seed``.
* ``bptt``: ``Network.fit_bptt`` (whole trial, no truncation) with a loss callable that
  takes the cross-entropy over the recall window only. ``fit_bptt``'s loss sees the output
  alone, so this runs without the rate regulariser.
* ``bptt_reg``: BPTT of e-prop's own loss (recall cross-entropy + the same rate
  regulariser) through autograd, ``net.run(x, enable_grad=True, record=["out", "rec"])``
  and a torch Adam step (:class:`RegularisedBPTT`).
* ``--detach-reset`` runs ``bptt`` with ``detach_reset=True`` (snnTorch's convention, the
  node's default), stored as ``bptt_detached_reset``.

Every method starts from the same initial weights (``--seed``) and sees the same training
trials. Every ``--eval-every`` iterations (and before the first), the validation error is
measured on 512 held-out trials (fixed seed, the same for every method and seed): a trial
counts as correct when the argmax of the logits averaged over the recall window is its
label. Reported per method: the first evaluated iteration with a validation error below 7 %
(Bellec's stopping criterion), the training wall time up to it (evaluations not counted),
the final and best error, the time per update and the firing rate. Runs made at different
times see different loads on a shared machine, so ``--timing K`` measures the seconds per
update of every method round-robin (one update of each in turn, K rounds) and the table
multiplies them by the iterations to 7 %. ``--stop-margin M`` stops a method ``M``
iterations after it first crossed 7 %. Progress goes to stdout (one line per evaluation).
Results: ``benchmarks/results/eprop_evidence.json`` (the entries of the methods run now
replace theirs, others are kept; runs of different methods may go on in parallel) and
``eprop_evidence.png``; ``--quick`` (6 short iterations, 3 cues, smaller batches) writes
``eprop_evidence_quick.*``. One thread (``torch.set_num_threads(1)``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

import numpy as np
import torch
from _common import RESULTS_DIR, fmt, machine, single_thread, table, write_json

import rnngraph as rg
from rnngraph.nodes import ALIF

DTYPE = torch.float32
METHODS = ("random", "symmetric", "adaptive", "bptt", "bptt_reg")
LABELS = {
    "random": "e-prop (random)",
    "symmetric": "e-prop (symmetric)",
    "adaptive": "e-prop (adaptive)",
    "bptt": "BPTT",
    "bptt_reg": "BPTT + rate reg.",
}
#: the validation trials' seed (independent of --seed)
VAL_SEED = 20200

CONFIG: dict[str, Any] = {
    "n_in": 40,
    "n_lif": 50,
    "n_alif": 50,
    "dt_ms": 1.0,
    "tau_m": 20.0,
    "tau_a": 2000.0,
    "v_th": 0.6,
    "beta_factor": 1.7,  # beta = 1.7 (1 - rho) / (1 - alpha)
    "refractory_ms": 5.0,
    "gamma": 0.3,
    "detach_reset": False,  # BPTT differentiates the reset term (e-prop never does)
    "tau_out": 20.0,
    "n_cues": 7,
    "duration_ms": None,  # the task's default: 7 * 150 + 1200 = 2250 ms
    "recall_ms": 150.0,
    "batch": 64,
    "lr": 5e-3,
    "reg_rate_hz": 10.0,
    "reg_weight": 1.0,
    "n_val": 512,
    "threshold": 0.07,
}
QUICK = {"batch": 8, "n_val": 64, "n_cues": 3, "duration_ms": 1000.0}


def beta_alif(cfg: dict[str, Any]) -> float:
    rho = math.exp(-cfg["dt_ms"] / cfg["tau_a"])
    alpha = math.exp(-cfg["dt_ms"] / cfg["tau_m"])
    return cfg["beta_factor"] * (1.0 - rho) / (1.0 - alpha)


def build(seed: int, cfg: dict[str, Any]) -> rg.Network:
    """in -> rec (50 LIF + 50 ALIF as one ``alif`` node) -> out (``leaky_readout``)."""
    n_in, n = cfg["n_in"], cfg["n_lif"] + cfg["n_alif"]
    dt, tau_m = cfg["dt_ms"], cfg["tau_m"]
    g = torch.Generator().manual_seed(seed)
    beta = torch.tensor([0.0] * cfg["n_lif"] + [beta_alif(cfg)] * cfg["n_alif"])
    rec = ALIF(
        n,
        tau_m=tau_m,
        tau_a=cfg["tau_a"],
        beta=beta,
        v_th=cfg["v_th"],
        v_rest=0.0,
        v_reset=0.0,
        r_m=1.0 / (1.0 - math.exp(-dt / tau_m)),
        refractory=cfg["refractory_ms"],
        reset="subtract",
        integrator="exp_euler",
        surrogate="triangle",
        surrogate_scale=cfg["gamma"],
        detach_reset=cfg["detach_reset"],
    )
    net = rg.Network(dt=dt, dtype=DTYPE)
    net.add_func_node("in", n_in)
    net.add_diffeq_node("rec", rec)
    no_self = 1.0 - torch.eye(n)
    w_in = torch.randn(n, n_in, generator=g) / math.sqrt(n_in)
    w_rec = torch.randn(n, n, generator=g) / math.sqrt(n) * no_self
    w_out = torch.randn(2, n, generator=g) / math.sqrt(n)
    net.add_edge("in", "rec", weights=w_in, train="gd")
    net.add_edge("rec", "rec", weights=w_rec, train="gd", feedback=True, mask=no_self)
    net.add_diffeq_node("out", "leaky_readout", n=2, tau=cfg["tau_out"])
    net.add_edge("rec", "out", weights=w_out, train="gd", bias=True)
    return net


def trials(batch: int, seed: Any, cfg: dict[str, Any]) -> rg.datasets.EvidenceTrials:
    return rg.datasets.evidence_accumulation(
        batch=batch,
        seed=np.random.default_rng(seed),
        n_cues=cfg["n_cues"],
        duration=cfg["duration_ms"],
        recall_duration=cfg["recall_ms"],
        dt=cfg["dt_ms"],
        dtype=np.float32,
    )


def recall_ce(mask: np.ndarray):
    """BPTT's loss: the cross-entropy of the logits over the recall window only."""
    steps = torch.as_tensor(np.flatnonzero(mask))

    def loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = out[:, steps]  # (B, T_recall, 2)
        return torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), target[:, steps].reshape(-1)
        )

    return loss


class RegularisedBPTT:
    """BPTT of e-prop's own loss: the recall cross-entropy plus the rate regulariser
    ``reg_weight * sum_j (f_j - f*)^2`` (``f_j``: unit j's mean spikes per ms over the batch
    and all steps, ``f*`` = 10 Hz = 0.01 per ms), through autograd: ``net.run(x,
    enable_grad=True, record=["out", "rec"])`` gives the logits and the spikes of the trial
    with their graph, then one Adam step."""

    def __init__(self, net: rg.Network, cfg: dict[str, Any]) -> None:
        self.net = net
        self.cfg = cfg
        params = [p for p in net.compile().parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=cfg["lr"])

    def step(self, tr: rg.datasets.EvidenceTrials) -> float:
        cfg, net = self.cfg, self.net
        net.reset()
        rec = net.run(tr.inputs, enable_grad=True, record=["out", "rec"])
        net.reset()
        logits = rec["out"][:, torch.as_tensor(tr.mask)]  # (B, T_recall, 2)
        labels = torch.as_tensor(tr.labels)[:, None].expand(-1, logits.shape[1])
        ce = torch.nn.functional.cross_entropy(logits.reshape(-1, 2), labels.reshape(-1))
        rate = rec["rec"].mean((0, 1)) / net.dt  # (N,) spikes per ms
        f_star = cfg["reg_rate_hz"] * 1e-3  # spikes per ms (dt in ms)
        loss = ce + cfg["reg_weight"] * (rate - f_star).square().sum()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())


def update(
    net: rg.Network,
    method: str,
    tr: rg.datasets.EvidenceTrials,
    cfg: dict[str, Any],
    seed: int,
    trainer: Any,
) -> tuple[Any, float]:
    """One training update of ``method`` on the batch ``tr``, continuing ``trainer`` (``None``
    at first); returns the trainer to continue with and the update's loss. (Every trial has
    the same recall window, so BPTT's loss is the same function for every batch.)"""
    if method == "bptt_reg":
        trainer = trainer or RegularisedBPTT(net, cfg)
        return trainer, trainer.step(tr)
    if method == "bptt":
        rec = net.fit_bptt(
            tr.inputs,
            tr.targets,
            optimizer="adam",
            lr=cfg["lr"],
            loss=recall_ce(tr.mask),
            trainer=trainer,
        )
    else:
        rec = net.fit_eprop(
            tr.inputs,
            tr.targets,
            loss_mask=tr.mask,
            feedback=method,
            lr=cfg["lr"],
            reg_rate=cfg["reg_rate_hz"],
            reg_weight=cfg["reg_weight"],
            seed=None if method == "symmetric" else seed,  # symmetric feedback draws nothing
            trainer=trainer,
        )
    return rec.trainer, float(rec.loss[-1])


def evaluate(
    net: rg.Network, val: rg.datasets.EvidenceTrials, chunk: int = 128
) -> dict[str, float]:
    """Validation error, recall cross-entropy and mean firing rate, each trial from the
    initial state."""
    mask = torch.as_tensor(val.mask)
    wrong, ce, spikes = 0, 0.0, 0.0
    n = len(val.labels)
    for i in range(0, n, chunk):
        net.reset()
        rec = net.run(val.inputs[i : i + chunk], record=["out", "rec"])
        logits = rec["out"][:, mask]  # (b, T_recall, 2)
        labels = torch.as_tensor(val.labels[i : i + chunk])
        wrong += int((logits.mean(1).argmax(-1) != labels).sum())
        logp = torch.log_softmax(logits.double(), -1)
        ce += float(-logp.gather(-1, labels[:, None, None].expand(-1, logits.shape[1], 1)).sum())
        spikes += float(rec["rec"].double().sum())
    net.reset()
    steps = val.inputs.shape[1]
    n_units = net.get_node("rec").n
    return {
        "error": wrong / n,
        "ce": ce / (n * int(val.mask.sum())),
        "rate_hz": spikes / (n * steps * n_units) * 1000.0 / net.dt,
    }


def train(
    method: str,
    seed: int,
    iterations: int,
    eval_every: int,
    stop_margin: int | None,
    cfg: dict[str, Any],
    val: rg.datasets.EvidenceTrials,
) -> dict[str, Any]:
    net = build(seed, cfg)
    trainer = None
    curve = {"iteration": [], "error": [], "ce": [], "rate_hz": [], "train_seconds": []}
    losses: list[float] = []
    it_seconds: list[float] = []
    crossed: int | None = None
    crossed_s: float | None = None
    train_s = 0.0

    def record(it: int) -> float:
        ev = evaluate(net, val)
        curve["iteration"].append(it)
        curve["train_seconds"].append(train_s)
        for k in ("error", "ce", "rate_hz"):
            curve[k].append(ev[k])
        print(
            f"  [{LABELS[method]}, seed {seed}] iteration {it}: validation error "
            f"{100 * ev['error']:.1f} %, recall CE {ev['ce']:.3f}, {ev['rate_hz']:.1f} Hz, "
            f"train {train_s:.0f} s" + (f", last loss {losses[-1]:.3f}" if losses else ""),
            flush=True,
        )
        return ev["error"]

    record(0)
    for it in range(1, iterations + 1):
        tr = trials(cfg["batch"], [seed, it], cfg)
        t0 = time.perf_counter()
        trainer, loss_value = update(net, method, tr, cfg, seed, trainer)
        dt_it = time.perf_counter() - t0
        train_s += dt_it
        it_seconds.append(dt_it)
        losses.append(loss_value)
        if it % eval_every == 0 or it == iterations:
            err = record(it)
            if crossed is None and err < cfg["threshold"]:
                crossed, crossed_s = it, train_s
            if crossed is not None and stop_margin is not None and it >= crossed + stop_margin:
                break
    return {
        "method": method,
        "label": LABELS[method],
        "seed": seed,
        "iterations": len(losses),
        "eval_every": eval_every,
        "first_below_threshold": crossed,
        "train_seconds_to_threshold": crossed_s,
        "final_error": curve["error"][-1],
        "best_error": min(curve["error"]),
        "train_seconds": train_s,
        "seconds_per_iteration_median": float(np.median(it_seconds)),
        "losses": losses,
        "curve": curve,
    }


def plot(results: dict[str, Any], threshold: float, path: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for i, (_key, r) in enumerate(sorted(results.items())):
        c = r["curve"]
        err = 100 * np.asarray(c["error"])
        lab = f"{r['label']}, seed {r['seed']}"
        axes[0].plot(c["iteration"], err, color=f"C{i}", label=lab)
        axes[1].plot(np.asarray(c["train_seconds"]) / 60.0, err, color=f"C{i}", label=lab)
        loss = np.asarray(r["losses"])
        w = min(10, len(loss))
        smooth = np.convolve(loss, np.ones(w) / w, mode="valid")
        axes[2].plot(np.arange(w, len(loss) + 1), smooth, color=f"C{i}", label=lab)
    for ax in axes[:2]:
        ax.axhline(100 * threshold, color="k", ls=":", lw=1)
        ax.set_ylabel("validation error (%)")
        ax.set_ylim(0, 60)
    axes[0].set_xlabel("iteration")
    axes[1].set_xlabel("training wall time (min, one thread)")
    axes[2].set_xlabel("iteration")
    axes[2].set_ylabel("training loss (10-iteration mean)")
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=8)
    axes[0].set_title("Evidence accumulation, 512 validation trials (dotted: 7 %)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def timing(cfg: dict[str, Any], seed: int, updates: int) -> dict[str, Any]:
    """Seconds per training update of each method, measured round-robin (one update of each
    method in turn, ``updates`` rounds, the same batches), so that every method sees the
    same machine load."""
    methods = ("random", "symmetric", "bptt", "bptt_reg")
    nets = {m: build(seed, cfg) for m in methods}
    trainers: dict[str, Any] = dict.fromkeys(methods)
    secs: dict[str, list[float]] = {m: [] for m in methods}
    for it in range(1, updates + 1):
        tr = trials(cfg["batch"], [seed, it], cfg)
        for m in methods:
            net = nets[m]
            t0 = time.perf_counter()
            trainers[m] = update(net, m, tr, cfg, seed, trainers[m])[0]
            secs[m].append(time.perf_counter() - t0)
        print(
            f"  round {it}: " + ", ".join(f"{LABELS[m]} {secs[m][-1]:.2f} s" for m in methods),
            flush=True,
        )
    return {
        "updates": updates,
        "seconds": secs,
        "median": {m: float(np.median(v)) for m, v in secs.items()},
        "machine": machine(),
    }


def report(data: dict[str, Any], eval_every: int) -> None:
    """Print the table of every entry in ``data`` (results and, if measured, timing)."""
    results, cfg = data["results"], data["config"]
    med = data.get("timing", {}).get("median", {})
    rows = []
    for key in sorted(results):
        r = results[key]
        base = key.split("-seed")[0]
        base = "bptt" if base == "bptt_detached_reset" else base
        crossed = r["first_below_threshold"]
        s_upd = med.get(base)
        rows.append(
            [
                r["label"],
                r["seed"],
                r["iterations"],
                crossed or f"not within {r['iterations']}",
                fmt(r["train_seconds_to_threshold"] or float("nan")),
                fmt(r["seconds_per_iteration_median"]),
                fmt(s_upd) if s_upd else "-",
                fmt(crossed * s_upd) if crossed and s_upd else "-",
                f"{100 * r['final_error']:.1f}",
                f"{100 * r['best_error']:.1f}",
                f"{r['curve']['rate_hz'][-1]:.1f}",
            ]
        )
    print()
    print(
        table(
            [
                "method",
                "seed",
                "iterations",
                "first iteration < 7 %",
                "train s to < 7 % (in the run)",
                "s / update (in the run)",
                "s / update (round-robin)",
                "s to < 7 % (round-robin)",
                "final error %",
                "best error %",
                "rate Hz",
            ],
            rows,
            title=f"Evidence accumulation ({cfg['batch']} trials per update, Adam "
            f"{cfg['lr']:g}; validation every {eval_every} updates on {cfg['n_val']} trials)",
        )
    )
    print(
        "\n'in the run': wall time measured during each training run (runs at different "
        "times see different machine loads); 'round-robin': median seconds per update from "
        "--timing, all methods measured in turn under the same load, times the first "
        "iteration below 7 %."
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--method", choices=(*METHODS, "all"), default="all")
    ap.add_argument("--eval-every", type=int, default=10)
    ap.add_argument("--stop-margin", type=int, default=None)
    ap.add_argument(
        "--detach-reset",
        action="store_true",
        help="cut the reset term out of BPTT's gradient (detach_reset=True; e-prop ignores it)",
    )
    ap.add_argument(
        "--timing",
        type=int,
        default=0,
        metavar="K",
        help="instead of training: time K round-robin updates of every method",
    )
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    print(single_thread())
    cfg = dict(CONFIG)
    cfg["detach_reset"] = args.detach_reset
    iterations, eval_every = args.iterations, args.eval_every
    name = "eprop_evidence"
    if args.quick:
        cfg.update(QUICK)
        iterations, eval_every, name = 6, 3, "eprop_evidence_quick"
    path = RESULTS_DIR / f"{name}.json"

    def load() -> dict[str, Any]:
        # read the file again before each write: another run may have added its entry
        old = json.loads(path.read_text()) if path.exists() else {}
        return {
            "config": cfg,
            "beta_alif": beta_alif(cfg),
            "results": old.get("results", {}),
            **({"timing": old["timing"]} if "timing" in old else {}),
        }

    if args.timing:
        print(f"timing: {args.timing} round-robin updates of each method", flush=True)
        t = timing(cfg, args.seed, args.timing)
        data = load()
        data["timing"] = t
        write_json(f"{name}.json", data)
    else:
        methods = ("random", "symmetric", "bptt") if args.method == "all" else (args.method,)
        val = trials(cfg["n_val"], VAL_SEED, cfg)
        for m in methods:
            print(f"{LABELS[m]}: {iterations} iterations, seed {args.seed}", flush=True)
            r = train(m, args.seed, iterations, eval_every, args.stop_margin, cfg, val)
            r["machine"] = machine()
            r["config"] = cfg
            key = f"{m}-seed{args.seed}"
            if m == "bptt" and args.detach_reset:
                key = f"bptt_detached_reset-seed{args.seed}"
                r["label"] = "BPTT (reset detached)"
            data = load()
            data["results"][key] = r
            write_json(f"{name}.json", data)
    data = load()
    if data["results"]:
        report(data, eval_every)
        plot(data["results"], cfg["threshold"], RESULTS_DIR / f"{name}.png")
    print(f"\nwrote {path}" + (f" and {RESULTS_DIR / f'{name}.png'}" if data["results"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
