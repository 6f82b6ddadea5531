"""What each native C kernel buys on the whole workload it serves: native on against off.

    .venv/bin/python benchmarks/native_kernels.py [--quick] [--repeats 7] [--only a,b]

``rnngraph._native`` holds C kernels for runs without gradients; ``rnngraph.native
.set_enabled(False)`` switches all of them off and every run takes the torch path, with the
same results. This script times, on one thread, each kernel's workload (a whole
``model.run`` or a whole ``fit_*`` call, built through the public API with seeded
``torch.Generator``\\ s) with the kernels on and off, and reports the time per step (per fit
for the fits), the ratio off/on (the speed-up the kernel buys) and the largest absolute
difference between the two runs' outputs (fitted weights for the fits). N = 500:

==================  ==========================================================  ==============
workload            network and run                                             kernels
==================  ==========================================================  ==============
esn_loop_b1         ESN (``leaky_tanh``, lr 0.3, W 10 % connectivity, spectral  ``esn_run``
                    radius 1.25, CSR), float64, B = 1, T = 2000
esn_loop_dense_b1   the same, W dense (10 % nonzeros: the C loop runs it as     ``esn_run``
                    CSR)
esn_loop_b64        the same, W dense, B = 64, T = 500 (its C path was dropped   ``esn_run``
                    on these numbers: both modes now take the torch loop)
li_loop_b1          RectiPy's ``li`` (tau 10, k 1, eta 0), fully dense W        ``li_run``
                    (r_in), input into I_ext, float64, B = 1, T = 2000
esn_loop_full_b1    (extra) the ESN of esn_loop_b1 with a fully dense W (100 %    ``esn_run``
                    nonzeros: the C loop's dense mat-vec), B = 1, T = 2000
li_loop_b1_10pct    (extra) li_loop_b1 with W of 10 % connectivity (CSR in C)   ``li_run``
leaky_tanh_step     the ESN of esn_loop_b1 at B = 64 (CSR), float32, T = 500:   ``leaky_tanh``
                    no whole-sequence loop, the node step in C
lif_step_b64        recurrent ``lif`` (exp_euler, tau_m 20, refractory 2: one   ``lif_step`` +
                    held step, as the C step serves only populations with held  ``event_add``
                    steps), dense W = 0.5 normal/sqrt(N), 20 input channels
                    with positive weights, float32, B = 64, T = 500
lif_step_b1         the same, B = 1, T = 2000                                   as above
rls                 ``fit_rls`` (alpha 1, bias) of the ESN of esn_loop_b1 on a  ``esn_run`` +
                    sine target, T = 2000                                       ``rls_update``
ridge               ``fit_ridge`` (alpha 1e-5, washout 100) of the ESN of       ``esn_run`` +
                    esn_loop_b1 on Mackey-Glass, T = 2000 (the C ``gram`` was   ``gram``
                    dropped on these numbers: scipy's dsyrk in both modes)
==================  ==========================================================  ==============

How. ``torch.set_num_threads(1)`` (and one BLAS thread, see ``_common.single_thread``).
For each workload every mode (``on``, ``off``, and for the LIF a third) has its own
network, built from the same seeds and compiled once, that runs only under its own setting:
a compiled model keeps the node kernels it built at its first run, so switching
``set_enabled`` between runs of one model would not switch its node steps. One untimed
warm-up run per mode, then ``--repeats`` rounds (>= 5) that run every mode once each,
round-robin, the order reversed every other round, so that both see the same load on a
shared machine. Reported: the median over rounds of each mode, the ratio of the medians,
and the spread (min-max) of the per-round ratios (adjacent runs), which shows how noisy a
ratio is. Fits build a fresh network per run, outside the timed part.

Kernels that one switch turns on together are separated where public means allow:

* ``lif_step`` and ``event_add`` (lif_step_b64/b1): a third mode registers, through the
  public kernel registry (``rnngraph.nodes.register_kernel``), the torch LIF step ahead of
  the native one for that mode's node only, so that run has event-driven products in C and
  the LIF step in torch. ``lif_step``'s speed-up is that mode's time over ``on``'s,
  ``event_add``'s is ``off``'s time over that mode's (both on the whole run).
* ``rls_update`` and ``gram``: the trainer alone (``rnngraph.training.RLS.update`` per step
  / ``Ridge.fit``) is timed on and off on the reservoir states of the same run; the effect
  of the trainer's kernel on the whole fit is estimated as ``(fit_on + trainer_off -
  trainer_on) / fit_on`` (the fit with the whole-sequence loop native and the trainer's
  kernel off, over the fit with both native).

A kernel that buys less than 10 % (speed-up < 1.10) on its workload is marked "drop".
``--quick`` runs N = 100 and short sequences (a check that the script works, not figures to
quote). Results: two tables on stdout and ``benchmarks/results/native_kernels.json``
(``.quick.json`` with ``--quick``, ``.partial.json`` with ``--only``).
"""

from __future__ import annotations

import argparse
import math
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from _common import machine, single_thread, table, write_json

import rnngraph as rg
from rnngraph import native
from rnngraph.nodes import KERNELS, NodeKernel, register_kernel
from rnngraph.training import RLS, Ridge

F32, F64 = torch.float32, torch.float64
KEEP = 1.10  # a kernel must buy at least 10 % on its workload

# ----------------------------------------------------------------------------------------
# the torch LIF step ahead of the native one, for chosen nodes only
# ----------------------------------------------------------------------------------------

#: nodes whose LIF step is forced to torch (the "event_add only" mode)
FORCED: weakref.WeakSet = weakref.WeakSet()
FORCED_KERNEL = "benchmark: torch LIF step"


def register_forced_torch_lif() -> None:
    """Register the built-in torch LIF step, under another name, ahead of the native one;
    it serves only the nodes in :data:`FORCED` (every other node sees no change)."""
    if any(k.name == FORCED_KERNEL for k in KERNELS):
        return
    torch_lif = next(k for k in KERNELS if k.name == "torch LIF step")

    def usable(node: Any, ctx: Any) -> str | None:
        if node not in FORCED:
            return "not forced by benchmarks/native_kernels.py"
        return torch_lif.usable(node, ctx)

    register_kernel(
        NodeKernel(
            FORCED_KERNEL,
            "the torch LIF step, for the nodes this benchmark forces",
            torch_lif.declared,
            usable,
            torch_lif.build,
            torch_lif.binds,
        ),
        before="native LIF step",
    )


# ----------------------------------------------------------------------------------------
# networks (seeded) and inputs
# ----------------------------------------------------------------------------------------


def esn(
    n: int, sparse: bool, dtype: torch.dtype, seed: int = 1, connectivity: float = 0.1
) -> rg.Network:
    """in (1) -> res (leaky_tanh, lr 0.3), res -(1 step)-> res: W 10 % connectivity,
    spectral radius 1.25."""
    gen = torch.Generator().manual_seed(seed)
    w = rg.recurrent_weights(
        n, spectral_radius=1.25, connectivity=connectivity, seed=gen, dtype=F64
    )
    w_in = torch.randn(n, 1, generator=gen, dtype=F64)
    net = rg.Network(dt=1.0, dtype=dtype)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", "leaky_tanh", n=n, lr=0.3)
    net.add_edge("in", "res", weights=w_in.to(dtype))
    net.add_edge("res", "res", weights=w.to(dtype), feedback=True, sparse=sparse)
    return net


LI_TAU = 10.0


def li(n: int, seed: int = 4, connectivity: float = 1.0) -> rg.Network:
    """in (1) -> rnn.I_ext, rnn -(1 step)-> rnn.r_in: RectiPy's leaky integrator (``li``,
    tanh, euler, dt 1), W (fully dense by default) scaled so that tau k W has spectral
    radius ~1.25."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(n, n, generator=gen, dtype=F64) * (1.25 / (LI_TAU * math.sqrt(n)))
    if connectivity < 1.0:
        sr = 1.25 / LI_TAU
        w = rg.recurrent_weights(
            n, spectral_radius=sr, connectivity=connectivity, seed=gen, dtype=F64
        )
    w_in = 0.1 * torch.randn(n, 1, generator=gen, dtype=F64)
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 1)
    net.add_diffeq_node("rnn", "li", n=n, tau=LI_TAU, k=1.0, eta=0.0)
    net.add_edge("in", "rnn", weights=w_in, target_var="I_ext")
    net.add_edge("rnn", "rnn", weights=w, feedback=True, target_var="r_in")
    return net


LIF_INPUTS, LIF_IN_SCALE = 20, 0.5


def lif(n: int, seed: int = 3) -> rg.Network:
    """in (20) -> rec (``lif``, exp_euler, tau_m 20, v_th 1, refractory 2 at dt 1: one held
    step), rec -(1 step)-> rec (dense, 0.5 normal/sqrt(N)); input weights U(0,
    LIF_IN_SCALE), float32. (Without held steps the plan takes the torch LIF step, which
    then skips the countdown and is as fast as the C step: 0.8-1.0x of it here.)"""
    gen = torch.Generator().manual_seed(seed)
    net = rg.Network(dt=1.0, dtype=F32)
    net.add_func_node("in", LIF_INPUTS)
    net.add_diffeq_node(
        "rec", "lif", n=n, tau_m=20.0, v_th=1.0, integrator="exp_euler", refractory=2.0
    )
    net.add_edge("in", "rec", weights=torch.rand(n, LIF_INPUTS, generator=gen) * LIF_IN_SCALE)
    w = 0.5 * torch.randn(n, n, generator=gen) / math.sqrt(n)
    net.add_edge("rec", "rec", weights=w, feedback=True)
    return net


def uniform(
    shape: tuple[int, ...], dtype: torch.dtype, seed: int, low: float = -1.0
) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return low + (1.0 - low) * torch.rand(shape, generator=gen, dtype=dtype)


def sine_task(steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Input cos(2 pi t / 50), target sin(2 pi t / 50), ``(T, 1)`` float64."""
    t = torch.arange(steps, dtype=F64)
    return torch.cos(2 * math.pi * t / 50)[:, None], torch.sin(2 * math.pi * t / 50)[:, None]


def mackey_glass_task(steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mackey-Glass (reservoirpy's defaults) rescaled to [-1, 1]: x(t) -> x(t + 1)."""
    s = rg.datasets.mackey_glass(steps + 1)
    s = 2.0 * (s - s.min()) / (s.max() - s.min()) - 1.0
    s = torch.as_tensor(s, dtype=F64)
    return s[:-1], s[1:]


# ----------------------------------------------------------------------------------------
# timing
# ----------------------------------------------------------------------------------------


@dataclass
class Mode:
    """One way of running a workload: the native switch, what is made outside the timer
    (``prepare``) and what is timed (``run(prepared) -> result``)."""

    native: bool
    run: Callable[[Any], Any]
    prepare: Callable[[], Any] = lambda: None
    last: Any = field(default=None, repr=False)


def round_robin(modes: dict[str, Mode], repeats: int) -> dict[str, list[float]]:
    """Seconds of each mode's runs: one warm-up each, then ``repeats`` rounds, every mode
    once per round, the order reversed every other round."""
    names = list(modes)
    for name in names:  # warm-up: kernels built under the mode's own switch
        m = modes[name]
        native.set_enabled(m.native)
        m.last = m.run(m.prepare())
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            m = modes[name]
            native.set_enabled(m.native)
            arg = m.prepare()
            t0 = time.perf_counter()
            out = m.run(arg)
            times[name].append(time.perf_counter() - t0)
            m.last = out
    native.set_enabled(True)
    return times


def compare(times: dict[str, list[float]], fast: str, slow: str) -> dict[str, float]:
    """Medians of ``fast`` and ``slow``, their ratio slow/fast, and the spread of the
    per-round ratios."""
    a, b = np.asarray(times[fast]), np.asarray(times[slow])
    pair = b / a
    return {
        "fast_median_s": float(np.median(a)),
        "slow_median_s": float(np.median(b)),
        "ratio": float(np.median(b) / np.median(a)),
        "round_ratio_min": float(pair.min()),
        "round_ratio_max": float(pair.max()),
    }


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max())


def runner(net: rg.Network, x: torch.Tensor) -> Callable[[Any], torch.Tensor]:
    """A timed run of the compiled ``net`` on ``x`` from its initial state, without
    gradients; returns the output."""
    model = net.compile()

    def run(_: Any) -> torch.Tensor:
        model.reset()
        with torch.no_grad():
            return model.run(x).output

    run.model = model
    return run


def explained(model: Any, batch: int, flag: bool) -> str:
    native.set_enabled(flag)
    try:
        return str(model.explain(batch))
    finally:
        native.set_enabled(True)


# ----------------------------------------------------------------------------------------
# workloads
# ----------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table: ``kernels`` switched between the ``fast`` and ``slow`` modes
    of ``workload``; ``unit`` 'us/step' (``per`` steps) or 'ms/fit'."""

    workload: str
    kernels: str
    stats: dict[str, float]
    diff: str
    unit: str
    per: int = 1
    note: str = ""
    speedup: float | None = None  # on the whole workload, when not the ratio itself

    def cells(self) -> list[str]:
        scale = 1e6 / self.per if self.unit == "us/step" else 1e3
        s = self.stats
        on, off = s["fast_median_s"] * scale, s["slow_median_s"] * scale
        spread = f"{s['round_ratio_min']:.2f}-{s['round_ratio_max']:.2f}"
        return [
            self.workload,
            self.kernels,
            f"{on:.4g} {self.unit}",
            f"{off:.4g} {self.unit}",
            f"{s['ratio']:.2f}",
            spread,
            self.diff,
            self.note,
        ]

    def whole(self) -> float:
        return self.stats["ratio"] if self.speedup is None else self.speedup


def run_workload(
    name: str,
    kernels: str,
    make: Callable[[], rg.Network],
    x: torch.Tensor,
    batch: int,
    repeats: int,
    rows: list[Row],
    out: dict,
) -> None:
    """A ``model.run`` workload: one network per mode, on and off, timed round-robin."""
    modes = {"on": Mode(True, runner(make(), x)), "off": Mode(False, runner(make(), x))}
    times = round_robin(modes, repeats)
    stats = compare(times, "on", "off")
    diff = max_abs(modes["on"].last, modes["off"].last)
    steps = x.shape[1]
    rows.append(Row(name, kernels, stats, f"{diff:.2g}", "us/step", steps))
    out[name] = {
        "kernels": kernels,
        "batch": batch,
        "steps": steps,
        "times_s": times,
        "us_per_step": {k: 1e6 * float(np.median(v)) / steps for k, v in times.items()},
        **stats,
        "max_abs_diff_output": diff,
        "explain": {
            "on": explained(modes["on"].run.model, batch, True),
            "off": explained(modes["off"].run.model, batch, False),
        },
    }


def run_lif(name: str, n: int, batch: int, steps: int, repeats: int, rows: list[Row], out: dict):
    """The LIF workload in three modes: everything native, the LIF step forced to torch
    (event-driven products still native), everything off."""
    x = uniform((batch, steps, LIF_INPUTS), F32, seed=11, low=0.0)
    forced = lif(n)
    FORCED.add(forced.get_node("rec"))
    modes = {
        "on": Mode(True, runner(lif(n), x)),
        "event_add only": Mode(True, runner(forced, x)),
        "off": Mode(False, runner(lif(n), x)),
    }
    times = round_robin(modes, repeats)
    spikes = {k: m.last for k, m in modes.items()}
    rate = float(spikes["off"].double().mean())

    def differ(a: str, b: str) -> tuple[str, dict]:
        d = max_abs(spikes[a], spikes[b])
        k = int((spikes[a] != spikes[b]).sum())
        return f"{d:.2g} ({k} of {spikes[a].numel()} spikes differ)", {"max_abs": d, "n_differ": k}

    note = f"spike fraction {100 * rate:.1f} %"
    entries = {}
    for label, kernels, fast, slow in (
        (name, "lif_step + event_add (one switch)", "on", "off"),
        (f"{name}: lif_step", "lif_step alone (event_add on in both)", "on", "event_add only"),
        (f"{name}: event_add", "event_add alone (torch LIF step in both)", "event_add only", "off"),
    ):
        stats = compare(times, fast, slow)
        text, d = differ(fast, slow)
        rows.append(
            Row(label, kernels, stats, text, "us/step", steps, note if label == name else "")
        )
        entries[label] = {"modes": [fast, slow], **stats, "diff_spikes": d}
    out[name] = {
        "kernels": "lif_step + event_add",
        "batch": batch,
        "steps": steps,
        "spike_fraction": rate,
        "times_s": times,
        "us_per_step": {k: 1e6 * float(np.median(v)) / steps for k, v in times.items()},
        "comparisons": entries,
        "explain": {
            "on": explained(modes["on"].run.model, batch, True),
            "event_add only": explained(modes["event_add only"].run.model, batch, True),
            "off": explained(modes["off"].run.model, batch, False),
        },
    }
    assert FORCED_KERNEL in out[name]["explain"]["event_add only"], "the forced mode did not apply"
    assert "native LIF step" in out[name]["explain"]["on"]


def readout_of(net: rg.Network) -> tuple[torch.Tensor, torch.Tensor | None]:
    e = net.get_edge("res", "readout")
    return e.weight.detach().clone(), None if e.bias is None else e.bias.detach().clone()


def fit_diff(a: rg.Network, b: rg.Network) -> float:
    (wa, ba), (wb, bb) = readout_of(a), readout_of(b)
    d = max_abs(wa, wb)
    return max(d, max_abs(ba, bb)) if ba is not None and bb is not None else d


def states(n: int, x: torch.Tensor) -> torch.Tensor:
    """The reservoir states ``(T, N)`` of the ESN of esn_loop_b1 on ``x`` ``(T, 1)``."""
    model = esn(n, True, F64).compile()
    with torch.no_grad():
        rec = model.run(x, observer=rg.Observer(["res"]))
    return rec["res"].reshape(x.shape[0], n).contiguous()


def run_fit(
    name: str,
    n: int,
    steps: int,
    repeats: int,
    rows: list[Row],
    out: dict,
) -> None:
    """``fit_rls`` or ``fit_ridge`` of the ESN, on and off; then its trainer alone."""
    if name == "rls":
        x, y = sine_task(steps)
        kernels, trainer_kernel = "esn_run + rls_update (one switch)", "rls_update"

        def fit(net: rg.Network) -> rg.Network:
            net.fit_rls(x, y, alpha=1.0, bias=True)
            return net

        def trainer(_: Any) -> torch.Tensor:
            w, b = torch.zeros(1, n, dtype=F64), torch.zeros(1, dtype=F64)
            rls = RLS(alpha=1.0)
            for t in range(steps):
                rls.update(w, b, X[t : t + 1], y[t : t + 1])
            return torch.cat([w.reshape(-1), b])

    else:
        x, y = mackey_glass_task(steps)
        washout = min(100, steps // 10)
        kernels, trainer_kernel = "esn_run + gram (one switch)", "gram"

        def fit(net: rg.Network) -> rg.Network:
            net.fit_ridge(x, y, alpha=1e-5, washout=washout)
            return net

        def trainer(_: Any) -> torch.Tensor:
            r = Ridge(alpha=1e-5, washout=washout).fit(X[None], y[None])
            return torch.cat([r.weight.reshape(-1), r.bias.reshape(-1)])

    def make() -> rg.Network:
        return esn(n, True, F64)

    modes = {"on": Mode(True, fit, make), "off": Mode(False, fit, make)}
    times = round_robin(modes, repeats)
    stats = compare(times, "on", "off")
    diff = fit_diff(modes["on"].last, modes["off"].last)
    rows.append(Row(name, kernels, stats, f"{diff:.2g} (readout)", "ms/fit"))
    X = states(n, x)
    tmodes = {"on": Mode(True, trainer), "off": Mode(False, trainer)}
    ttimes = round_robin(tmodes, repeats)
    tstats = compare(ttimes, "on", "off")
    tdiff = max_abs(tmodes["on"].last, tmodes["off"].last)
    fit_on = stats["fast_median_s"]
    whole = (fit_on + tstats["slow_median_s"] - tstats["fast_median_s"]) / fit_on
    where = "RLS.update x T" if name == "rls" else "Ridge.fit"
    note = f"trainer alone ({where}); on the whole fit about {whole:.2f}"
    rows.append(
        Row(f"{name}: {trainer_kernel}", f"{trainer_kernel} alone", tstats,
            f"{tdiff:.2g} (readout)", "ms/fit", note=note, speedup=whole)
    )  # fmt: skip
    out[name] = {
        "kernels": kernels,
        "steps": steps,
        "times_s": times,
        **stats,
        "max_abs_diff_readout": diff,
        "trainer_alone": {
            "kernel": trainer_kernel,
            "times_s": ttimes,
            **tstats,
            "max_abs_diff_readout": tdiff,
            "speedup_on_whole_fit_estimate": whole,
        },
    }


# ----------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------

WORKLOADS = (
    "esn_loop_b1",
    "esn_loop_dense_b1",
    "esn_loop_b64",
    "li_loop_b1",
    "esn_loop_full_b1",
    "li_loop_b1_10pct",
    "leaky_tanh_step",
    "lif_step_b64",
    "lif_step_b1",
    "rls",
    "ridge",
)

#: the kernel each row decides on (rows not listed serve more than one kernel)
VERDICT_ROWS = {
    "esn_loop_b1": "esn_run",
    "esn_loop_dense_b1": "esn_run",
    "esn_loop_b64": "esn_run",
    "li_loop_b1": "li_run",
    "esn_loop_full_b1 (extra)": "esn_run",
    "li_loop_b1_10pct (extra)": "li_run",
    "leaky_tanh_step": "leaky_tanh",
    "lif_step_b64: lif_step": "lif_step",
    "lif_step_b64: event_add": "event_add",
    "lif_step_b1: lif_step": "lif_step",
    "lif_step_b1: event_add": "event_add",
    "rls: rls_update": "rls_update",
    "ridge: gram": "gram",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 100, short sequences")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (>= 5)")
    parser.add_argument("--only", default="", help="comma-separated workloads to run")
    args = parser.parse_args()
    if args.repeats < 5:
        parser.error("--repeats must be >= 5")
    only = [w for w in args.only.split(",") if w]
    unknown = sorted(set(only) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workloads {unknown}; workloads are {list(WORKLOADS)}")
    threads = single_thread()
    print(threads)
    print(f"rnngraph: {rg.__file__}")
    if not native.available():
        raise SystemExit(f"the native library is unavailable: {native.failure()}")
    print(f"native library flags: {' '.join(native._COMPILE)}")
    register_forced_torch_lif()

    q = args.quick
    n = 100 if q else 500
    t_long, t_batch, t_fit = (200, 50, 300) if q else (2000, 500, 2000)
    reps = args.repeats
    rows: list[Row] = []
    out: dict[str, Any] = {}

    def esn_x(batch: int, steps: int, dtype: torch.dtype) -> torch.Tensor:
        return uniform((batch, steps, 1), dtype, seed=10)

    jobs: dict[str, Callable[[], None]] = {
        "esn_loop_b1": lambda: run_workload(
            "esn_loop_b1", "esn_run", lambda: esn(n, True, F64), esn_x(1, t_long, F64), 1,
            reps, rows, out),
        "esn_loop_dense_b1": lambda: run_workload(
            "esn_loop_dense_b1", "esn_run", lambda: esn(n, False, F64), esn_x(1, t_long, F64),
            1, reps, rows, out),
        "esn_loop_b64": lambda: run_workload(
            "esn_loop_b64", "esn_run (gemm from C)", lambda: esn(n, False, F64),
            esn_x(64, t_batch, F64), 64, reps, rows, out),
        "li_loop_b1": lambda: run_workload(
            "li_loop_b1", "li_run", lambda: li(n), esn_x(1, t_long, F64), 1, reps, rows, out),
        "esn_loop_full_b1": lambda: run_workload(
            "esn_loop_full_b1 (extra)", "esn_run (dense W: 100 % nonzeros)",
            lambda: esn(n, False, F64, connectivity=1.0), esn_x(1, t_long, F64), 1, reps,
            rows, out),
        "li_loop_b1_10pct": lambda: run_workload(
            "li_loop_b1_10pct (extra)", "li_run (W 10 % nonzeros: CSR in C)",
            lambda: li(n, connectivity=0.1), esn_x(1, t_long, F64), 1, reps, rows, out),
        "leaky_tanh_step": lambda: run_workload(
            "leaky_tanh_step", "leaky_tanh (node step)", lambda: esn(n, True, F32),
            esn_x(64, t_batch, F32), 64, reps, rows, out),
        "lif_step_b64": lambda: run_lif("lif_step_b64", n, 64, t_batch, reps, rows, out),
        "lif_step_b1": lambda: run_lif("lif_step_b1", n, 1, t_long, reps, rows, out),
        "rls": lambda: run_fit("rls", n, t_fit, reps, rows, out),
        "ridge": lambda: run_fit("ridge", n, t_fit, reps, rows, out),
    }  # fmt: skip
    t_start = time.perf_counter()
    for name in only or WORKLOADS:
        t0 = time.perf_counter()
        jobs[name]()
        print(f"  {name}: done ({time.perf_counter() - t0:.0f} s)", flush=True)

    header = [
        "workload",
        "kernels switched",
        "native on",
        "native off",
        "speed-up off/on",
        "per-round off/on",
        "max abs diff on/off",
        "note",
    ]
    print(f"\nN = {n}; median of {reps} round-robin runs per mode after one warm-up\n")
    print(table(header, [r.cells() for r in rows]))
    verdicts = []
    for r in rows:
        if r.workload in VERDICT_ROWS:
            s = r.whole()
            verdicts.append(
                [VERDICT_ROWS[r.workload], r.workload, f"{s:.2f}", "keep" if s >= KEEP else "drop"]
            )
    print()
    print(table(["kernel", "workload", "speed-up on the workload", "verdict (>= 1.10)"], verdicts))
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    name = "native_kernels" + (".quick" if q else "") + (".partial" if only else "") + ".json"
    path = write_json(
        name,
        {
            "n_units": n,
            "repeats": reps,
            "compile_flags": list(native._COMPILE),
            "rnngraph_file": rg.__file__,
            "threads": threads,
            "results": out,
            "verdicts": [dict(zip(["kernel", "workload", "speedup", "verdict"], v, strict=True))
                         for v in verdicts],
            "machine": machine(),
        },
    )  # fmt: skip
    print(f"results: {path}")


if __name__ == "__main__":
    main()
