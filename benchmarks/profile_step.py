"""Where the time of one step goes: the generic loop's torch calls against the native loops.

    .venv/bin/python benchmarks/profile_step.py [--steps 2000] [--quick]

Workloads (one thread, float64 ESN as in ``mackey_glass_esn.py``, float32 LIF as in the
suite's LIF workload):

* ESN, N = 500, B = 1, 10 % sparse W (CSR) and the same W dense: ``in -> res``
  (``leaky_tanh``, lr 0.3) with a feedback self-edge;
* ESN, N = 500, B = 64, dense W;
* recurrent LIF, N = 500, B = 64, dense W (``exp_euler``, value reset, no refractory period).

For each, three ways of running the same network without gradients:

* ``generic``: the generated Python loop of torch calls (``rnngraph._native`` switched off),
  timed on its own and then profiled with ``torch.profiler`` for the share of each aten
  operator in the operators' self time (the profiler adds its own cost to every call, so
  only the shares are reported; the overhead over the floor is the timed difference);
* ``native``: what runs by default: the whole-sequence C loop for the ESN (at B = 64 with
  torch's own gemm called from C); for the LIF, the generic loop with event-driven spike
  input and the C node step;

and, as the floor, the recurrent product alone (``torch.mv`` / ``torch.mm`` / CSR ``mv``,
as many calls as steps). Results: a table on stdout and
``benchmarks/results/profile_step.json``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch
from _common import machine, single_thread, table, write_json
from torch.profiler import ProfilerActivity, profile

import rnngraph as rg
from rnngraph import _native

N = 500


def esn(w: torch.Tensor, sparse: bool, dtype: torch.dtype) -> rg.Network:
    gen = torch.Generator().manual_seed(2)
    net = rg.Network(dt=1.0, dtype=dtype)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", "leaky_tanh", n=N, lr=0.3)
    net.add_edge("in", "res", weights=torch.randn(N, 1, generator=gen, dtype=dtype))
    net.add_edge("res", "res", weights=w.to(dtype), feedback=True, sparse=sparse)
    return net


def lif(w: torch.Tensor) -> rg.Network:
    gen = torch.Generator().manual_seed(3)
    net = rg.Network(dt=1.0)
    net.add_func_node("in", 20)
    net.add_diffeq_node("rec", "lif", n=N, tau_m=20.0, v_th=1.0, integrator="exp_euler")
    net.add_edge("in", "rec", weights=torch.rand(N, 20, generator=gen) * 0.3)
    net.add_edge("rec", "rec", weights=w.float() * 0.5, feedback=True)
    return net


def per_step(fn: Callable[[], Any], steps: int, repeats: int = 5) -> float:
    """Median microseconds per step of ``fn`` (which runs ``steps`` steps)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2] / steps * 1e6


def operator_profile(fn: Callable[[], Any], steps: int) -> dict[str, float]:
    """Self CPU time per step (us) of each aten operator during ``fn``."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    ops = {}
    for event in prof.key_averages():
        if event.key.startswith("aten::") and event.self_cpu_time_total > 0:
            ops[event.key] = event.self_cpu_time_total / steps
    return dict(sorted(ops.items(), key=lambda kv: -kv[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="200 steps")
    args = parser.parse_args()
    threads = single_thread()
    steps = 200 if args.quick else args.steps
    print(threads)
    w = rg.recurrent_weights(N, spectral_radius=1.25, connectivity=0.1, seed=1, dtype=torch.float64)
    cases = [
        ("ESN B=1 CSR float64", esn(w, True, torch.float64), 1, 1, None),
        ("ESN B=1 dense float64", esn(w, False, torch.float64), 1, 1, None),
        ("ESN B=64 dense float32", esn(w, False, torch.float32), 64, 1, None),
        ("LIF B=64 dense float32", lif(w), 64, 20, None),
    ]
    rows, out = [], {}
    gen = torch.Generator().manual_seed(0)
    for label, net, batch, n_in, _ in cases:
        model = net.compile()
        dtype = model._ref.dtype
        x = torch.rand(batch, steps, n_in, generator=gen, dtype=dtype)

        def run(model=model, x=x) -> None:
            model.reset()
            with torch.no_grad():
                model.run(x)

        edge = net.get_edge(*(("res", "res") if "ESN" in label else ("rec", "rec")))
        weight = edge.effective_weight()
        state = torch.rand(batch, N, dtype=dtype)
        if batch == 1:
            v1 = state[0]

            def floor(weight=weight, v1=v1) -> None:
                for _ in range(steps):
                    torch.mv(weight, v1)

        else:
            wt = weight.t()

            def floor(wt=wt, state=state) -> None:
                for _ in range(steps):
                    torch.mm(state, wt)

        entry: dict[str, Any] = {"floor": per_step(floor, steps)}
        entry["native"] = per_step(run, steps)  # what runs by default
        _native.set_enabled(False)
        try:
            entry["generic"] = per_step(run, steps)
            ops = operator_profile(run, steps)
        finally:
            _native.set_enabled(True)
        total = sum(ops.values())
        entry["operator_share"] = {k: v / total for k, v in ops.items()}
        out[label] = entry
        top = ", ".join(f"{k[6:]} {100 * v / total:.0f} %" for k, v in list(ops.items())[:4])
        rows.append(
            [
                label,
                f"{entry['floor']:.1f}",
                f"{entry['generic']:.1f}",
                f"{entry['generic'] / entry['floor']:.2f}",
                top,
                f"{entry['native']:.1f}",
                f"{entry['native'] / entry['floor']:.2f}",
            ]
        )
        print(f"  {label}: done", flush=True)
    header = [
        "workload",
        "floor (product alone)",
        "generic loop",
        "generic / floor",
        "generic: operators' shares (profiler self time)",
        "native",
        "native / floor",
    ]
    print("\nus/step, median of 5 runs of", steps, "steps\n")
    print(table(header, rows))
    write_json("profile_step.json", {"steps": steps, "results": out, "machine": machine()})


if __name__ == "__main__":
    main()
