"""Peak memory of e-prop (forward traces, reverse scan) and BPTT updates at T = 1000 and 4000.

    .venv/bin/python benchmarks/eprop_memory.py [--steps 1000 4000] [--batch 16] [--repeats 2]
                                               [--quick]

e-prop (Bellec et al. 2020, doi:10.1038/s41467-020-17236-y) has two formulations in
``EProp``, the same gradients to rounding. With ``method="traces"`` it carries its
eligibility traces forward through the time loop, so its memory should not depend on the
number of steps T. With ``method="reverse"`` (what ``method="auto"``, the default, takes
while the history fits in ``history_limit``) it records the trial and computes the
gradients by one reverse scan and GEMMs, so its memory grows linearly with T, by the
history that ``rnngraph.training.history_bytes`` predicts. BPTT keeps the autograd graph of
the whole trial and grows linearly with T.

Network: the evidence-accumulation network of ``eprop_evidence.py`` (40 inputs, one ``alif``
node of 50 LIF + 50 ALIF units with a 5 ms refractory period, a masked recurrent feedback
self-edge, a 2-output ``leaky_readout``; float32), batch 16; Poisson inputs at 20 Hz,
random class labels, the loss counted in the last 150 steps. Four sides:

* ``forward``: a plain forward run without gradients, ``net.run(x)``, as a floor: what any
  method pays for taking the (B, T, C) input and returning the (B, T, K) output;
* ``eprop``, e-prop (forward traces): ``net.fit_eprop(x, labels, loss_mask=mask,
  feedback="random", reg_rate=10, method="traces")``;
* ``eprop_reverse``, e-prop (reverse scan): the same call with ``method="reverse"``;
* ``bptt``: ``net.fit_bptt(x, labels, loss=<cross-entropy over the last 150 steps>)``.

Every update uses Adam.

How memory is measured. torch's CPU tensors come from its own allocator (``malloc`` /
``posix_memalign``), which ``tracemalloc`` does not see (it tracks Python objects only) and
``torch.cuda.max_memory_allocated`` does not cover. Every (method, T) therefore runs in a
fresh subprocess that imports torch, builds the network and its input tensors, runs one
short warm-up update at T = 50 (so that code paths, optimiser state and allocator pools
exist) and then reads its resident set size (``/proc/self/status`` ``VmRSS``) as the
baseline; it then runs ``--repeats`` full updates and reads the peak resident set size
(``VmHWM``, the kernel's high-water mark of the process; ``resource.getrusage`` gives the
same). The reported figure is peak - baseline: the memory the updates added at their
highest point. Before the baseline is read the high-water mark is reset
(``/proc/self/clear_refs`` with ``5``, where the kernel allows it), so the figure is not
masked by an earlier peak; the JSON says whether the reset worked. The subprocesses run
with ``MALLOC_MMAP_THRESHOLD_=65536``: glibc then serves every allocation above 64 KiB
(every sizeable tensor) by ``mmap`` and returns it on free, so the resident set follows the
live tensors instead of the heap fragmentation that glibc's sliding threshold would add.
As a check that
does not depend on the allocator, BPTT's runs also sum the bytes of the tensors autograd
saves for the backward pass (``torch.autograd.graph.saved_tensors_hooks``; shared storage
counted once), the forward-trace runs record the bytes of the state e-prop carries
(eligibility vectors and traces, from the ``EProp`` docstring's shapes), and the
reverse-scan runs record the history that ``history_bytes(n, n_pre, k_out, batch, T,
itemsize, hold)`` predicts, with n = 100 units, n_pre = 40 stored presynaptic values (the
input edge's 40 channels; the recurrent edge reads the population's own spikes of the step
before, which the spike record already holds, and no edge into the population trains a
bias), k_out = 2, itemsize 4 (float32) and hold = True (a 5 ms refractory period holds
units), next to the figure that ``EProp.method_for`` states for the same call and the
formulation the trainer took (``method_used``).

What a run holds besides the traces: the compiled loop streams the input through the
network in chunks of at most 2**20 precomputed input values (``B * steps * width``, here
468 steps of the 40 input channels and the 100 input currents), so its working memory stops
growing with T once T exceeds one chunk; what grows with T is the returned (B, T, K)
output (K = 2 here). The input is checked for NaN and inf without a temporary of its size,
and e-prop makes its per-step targets and loss-mask weights a block of steps at a time.

The reverse scan holds, besides what the forward run holds, its history (the stored
presynaptic values, the distance to threshold that becomes psi, the spikes and the held
units, for every step), the filtered errors (B, T, K) and a scratch block of 64 steps; its
peak therefore grows with T.

Acceptance: the forward-trace e-prop's peak grows by at most 20 % from T = 1000 to
T = 4000 while BPTT's grows with T; checked on the raw peaks and on the peaks above the
forward-run floor. The reverse scan has no bound on its growth: its peak grows with T by
design. Its check is that at every T its peak stays within the predicted history plus the
forward run's peak, with 20 % to spare: peak <= 1.2 * (history_bytes + forward peak).
Both checks also need the trainers to have taken the formulation asked for
(``method_used``).

Results: ``benchmarks/results/eprop_memory.json`` (``--quick``: ``eprop_memory_quick.json``,
T = 1000 and 2000, batch 16: shorter trials would fit in a single chunk, whose size still
grows with T). One thread.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import machine, single_thread, table, write_json

HERE = Path(__file__).resolve().parent
RECALL = 150  # steps of the loss window at the end of each trial
METHODS = ("forward", "eprop", "eprop_reverse", "bptt")
LABELS = {
    "forward": "forward run (no gradients)",
    "eprop": "e-prop (forward traces)",
    "eprop_reverse": "e-prop (reverse scan)",
    "bptt": "BPTT",
}
EPROP_METHOD = {"eprop": "traces", "eprop_reverse": "reverse"}
N_UNITS, N_PRE_STORED, K_OUT, ITEMSIZE, HOLD = 100, 40, 2, 4, True  # for history_bytes
SLACK = 1.2  # the 20 % of both checks


def _status(key: str) -> int:
    """``VmRSS`` / ``VmHWM`` of this process in bytes."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def _reset_peak() -> bool:
    """Reset the kernel's RSS high-water mark of this process (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return _status("VmHWM") <= _status("VmRSS") + 64 * 1024


def _data(batch: int, steps: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = np.random.default_rng(seed)
    x = torch.as_tensor((g.random((batch, steps, 40)) < 0.02).astype(np.float32))
    labels = torch.as_tensor(np.repeat(g.integers(0, 2, (batch, 1)), steps, axis=1))
    mask = torch.zeros(steps)
    mask[-min(RECALL, steps) :] = 1.0
    return x, labels, mask


def _child(method: str, steps: int, batch: int, repeats: int) -> dict[str, Any]:
    import eprop_evidence as ev

    torch.set_num_threads(1)
    cfg = dict(ev.CONFIG)
    net = ev.build(0, cfg)
    x, labels, mask = _data(batch, steps, 1)
    xw, lw, mw = _data(batch, 50, 2)
    saved: dict[str, int] = {"bytes": 0}
    seen: set[int] = set()

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = t.untyped_storage().data_ptr()
        if key not in seen:
            seen.add(key)
            saved["bytes"] += t.untyped_storage().nbytes()
        return t

    state: dict[str, Any] = {"trainer": None}

    def update(x: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> None:
        if method == "forward":
            net.reset()
            net.run(x)
            net.reset()
            return
        if method == "bptt":
            rec = net.fit_bptt(
                x,
                labels,
                optimizer="adam",
                lr=cfg["lr"],
                loss=ev.recall_ce(mask.numpy() > 0),
                trainer=state["trainer"],
            )
        else:
            rec = net.fit_eprop(
                x,
                labels,
                loss_mask=mask,
                feedback="random",
                lr=cfg["lr"],
                reg_rate=cfg["reg_rate_hz"],
                seed=0,
                trainer=state["trainer"],
                method=EPROP_METHOD[method],
            )
        state["trainer"] = rec.trainer

    update(xw, lw, mw)  # warm-up at T = 50
    base = _status("VmRSS")
    reset_ok = _reset_peak()
    base = min(base, _status("VmRSS"))
    for _ in range(repeats):
        if method == "bptt":
            seen.clear()
            saved["bytes"] = 0
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                update(x, labels, mask)
        else:
            update(x, labels, mask)
    peak = _status("VmHWM")
    history = None
    stated = None
    if method == "eprop_reverse":
        from rnngraph.training import history_bytes

        history = history_bytes(N_UNITS, N_PRE_STORED, K_OUT, batch, steps, ITEMSIZE, HOLD)
        stated = state["trainer"].method_for(net, batch, steps)[1]
    n, p = 100, 40 + 100  # units; presynaptic values of the trained edges
    n_a = cfg["n_alif"]
    bpe = 4  # float32
    # ebar, e (ALIF), eps_v per postsynaptic unit (refractoriness), eps_a, zbar, G (2 rows)
    traces = bpe * (3 * n * batch * p + n_a * batch * p + batch * n + 2 * n * p)
    return {
        "method": method,
        "steps": steps,
        "batch": batch,
        "repeats": repeats,
        "baseline_rss": base,
        "peak_rss": peak,
        "peak_minus_baseline": peak - base,
        "hwm_reset": reset_ok,
        "autograd_saved_bytes": saved["bytes"] if method == "bptt" else None,
        "eprop_state_bytes": traces if method == "eprop" else None,
        "method_used": state["trainer"].method_used if method in EPROP_METHOD else None,
        "history_bytes_predicted": history,
        "method_for": stated,
    }


def measure(method: str, steps: int, batch: int, repeats: int) -> dict[str, Any]:
    """One fresh subprocess per (method, T)."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        method,
        "--steps",
        str(steps),
        "--batch",
        str(batch),
        "--repeats",
        str(repeats),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=HERE, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[1000, 4000])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--child", choices=METHODS, default=None)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if args.child is not None:
        print(json.dumps(_child(args.child, args.steps[0], args.batch, args.repeats)))
        return 0
    print(single_thread())
    name = "eprop_memory"
    if args.quick:
        args.steps, args.batch, name = [1000, 2000], 16, "eprop_memory_quick"
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in METHODS}
    for steps in args.steps:
        for method in METHODS:
            r = measure(method, steps, args.batch, args.repeats)
            print(
                f"  {method} T={steps}: peak - baseline {r['peak_minus_baseline'] / 2**20:.1f} "
                f"MiB (baseline {r['baseline_rss'] / 2**20:.0f} MiB)",
                flush=True,
            )
            results[method].append(r)
    mib = 2.0**20
    peak = {m: [r["peak_minus_baseline"] / mib for r in results[m]] for m in METHODS}
    above = {m: [p - f for p, f in zip(peak[m], peak["forward"], strict=True)] for m in METHODS}
    rows = []
    for m in METHODS:
        rows.append(
            [
                LABELS[m],
                *peak[m],
                peak[m][-1] / peak[m][0],
                *(above[m] if m != "forward" else ["-"] * len(args.steps)),
                above[m][-1] / above[m][0] if m != "forward" else "-",
            ]
        )
    t0, t1 = args.steps[0], args.steps[-1]
    print()
    print(
        table(
            [
                "method",
                *[f"peak MiB, T={t}" for t in args.steps],
                f"T={t1} / T={t0}",
                *[f"above forward, T={t}" for t in args.steps],
                f"T={t1} / T={t0} ",
            ],
            rows,
            title=f"Peak RSS added by {args.repeats} updates (MiB), batch {args.batch}, 100 units "
            "(50 LIF + 50 ALIF), float32, a fresh process each",
        )
    )
    hist = [r["history_bytes_predicted"] / mib for r in results["eprop_reverse"]]
    bound = [SLACK * (h + f) for h, f in zip(hist, peak["forward"], strict=True)]
    rev_rows = [
        [t, pr, h, f, b, pr / (h + f), r["method_for"]]
        for t, pr, h, f, b, r in zip(
            args.steps,
            peak["eprop_reverse"],
            hist,
            peak["forward"],
            bound,
            results["eprop_reverse"],
            strict=True,
        )
    ]
    print()
    print(
        table(
            [
                "T",
                "reverse-scan peak MiB",
                "predicted history MiB",
                "forward peak MiB",
                "bound MiB",
                "peak / (history + forward)",
                "EProp.method_for",
            ],
            rev_rows,
            title="e-prop (reverse scan): peak against history_bytes(100, 40, 2, "
            f"{args.batch}, T, 4, hold=True) + the forward run's peak; bound = "
            f"{SLACK:g} x (history + forward)",
        )
    )
    used = {m: sorted({r["method_used"] for r in results[m]}) for m in EPROP_METHOD}
    print(f"formulation the trainer took: {used}")
    state = results["eprop"][0]["eprop_state_bytes"] / mib
    saved = [r["autograd_saved_bytes"] / mib for r in results["bptt"]]
    print(
        f"\ne-prop's carried state (traces, from the EProp docstring's shapes): {state:.2f} MiB "
        "at every T; tensors BPTT's autograd graph saves: "
        + ", ".join(f"{v:.1f} MiB (T={t})" for v, t in zip(saved, args.steps, strict=True))
    )
    growth = {
        "raw": {m: peak[m][-1] / peak[m][0] for m in METHODS},
        "above_forward": {m: above[m][-1] / above[m][0] for m in METHODS if m != "forward"},
    }
    verdict: dict[str, bool] = {}
    for kind in ("raw", "above_forward"):
        g = growth[kind]
        verdict[kind] = g["eprop"] <= SLACK and g["bptt"] > SLACK and used["eprop"] == ["traces"]
        print(
            f"acceptance on the {kind.replace('_', ' ')} peaks (e-prop with forward traces "
            f"grows <= 20 % from T={t0} to T={t1}, BPTT grows): "
            f"{'met' if verdict[kind] else 'NOT met'} "
            f"(e-prop traces x{g['eprop']:.2f}, BPTT x{g['bptt']:.2f}; e-prop reverse scan "
            f"x{g['eprop_reverse']:.2f}, not bounded)"
        )
    within = [pr <= b for pr, b in zip(peak["eprop_reverse"], bound, strict=True)]
    verdict["reverse_within_history"] = all(within) and used["eprop_reverse"] == ["reverse"]
    print(
        "reverse-scan check (peak <= 1.2 x (predicted history + forward peak) at every T, "
        f"the reverse scan taken): {'met' if verdict['reverse_within_history'] else 'NOT met'} "
        + "("
        + ", ".join(
            f"T={t}: {pr:.1f} <= {b:.1f}" if ok else f"T={t}: {pr:.1f} > {b:.1f}"
            for t, pr, b, ok in zip(args.steps, peak["eprop_reverse"], bound, within, strict=True)
        )
        + " MiB)"
    )
    path = write_json(
        f"{name}.json",
        {
            "steps": args.steps,
            "batch": args.batch,
            "results": results,
            "peak_mib": peak,
            "above_forward_mib": above,
            "growth": growth,
            "reverse_history_mib": hist,
            "reverse_bound_mib": bound,
            "labels": LABELS,
            "eprop_methods": EPROP_METHOD,
            "accepted": verdict,
            "machine": machine(),
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
