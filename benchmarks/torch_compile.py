"""``torch.compile`` of a BPTT update against eager, on one thread.

    .venv/bin/python benchmarks/torch_compile.py [--quick] [--repeats R]

A recurrent LIF network (``in`` -> 128 ``lif`` units with a feedback self-edge -> 2
``leaky_readout`` units, every edge trained), float32, B = 16, T = 100. One update is the
forward pass over all steps through ``model.unrolled()``, the mean squared error against a
target, ``backward()`` and an Adam step. Timed: eager, and ``torch.compile`` with the
inductor backend (the default) after its compilation, whose time is reported apart; the
loss and every gradient of the first update are compared with eager's. Results on stdout
and in ``benchmarks/results/torch_compile.json``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
from _common import machine, single_thread, table, write_json

import rnngraph as rg


def network(n: int) -> rg.Network:
    g = torch.Generator().manual_seed(0)
    net = rg.Network(dt=1.0)
    net.add_func_node("in", 10)
    net.add_diffeq_node("rec", "lif", n=n, tau_m=10.0)
    net.add_diffeq_node("out", "leaky_readout", n=2, tau=10.0)
    net.add_edge("in", "rec", weights=torch.rand(n, 10, generator=g) * 0.5, train="gd")
    w = torch.randn(n, n, generator=g) * 0.05
    net.add_edge("rec", "rec", weights=w, feedback=True, train="gd")
    net.add_edge("rec", "out", weights=torch.randn(2, n, generator=g) * 0.1, train="gd")
    return net


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    single_thread()
    warnings.filterwarnings("ignore", message=".*should not be instantiated.*")
    n, batch, steps = (32, 4, 30) if args.quick else (128, 16, 100)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(batch, steps, 10, generator=g)
    target = torch.rand(batch, steps, 2, generator=g)
    results, first = {}, {}
    for mode in ("eager", "inductor"):
        model = network(n).compile()
        f = model.unrolled()
        if mode != "eager":
            f = torch.compile(f, fullgraph=True)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def update(model=model, f=f, opt=opt) -> float:
            opt.zero_grad()
            y, _ = f(x, model.init_state(batch))
            loss = ((y - target) ** 2).mean()
            loss.backward()
            return float(loss.detach())

        t0 = time.perf_counter()
        first[mode] = (update(), {k: p.grad.clone() for k, p in model.named_parameters()})
        warm = time.perf_counter() - t0
        opt.step()
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            update()
            opt.step()
            times.append(time.perf_counter() - t0)
        results[mode] = {"first_s": warm, "update_ms": sorted(times)[len(times) // 2] * 1e3}
    loss_diff = abs(first["eager"][0] - first["inductor"][0])
    grad_diff = max(
        float((first["eager"][1][k] - first["inductor"][1][k]).abs().max())
        for k in first["eager"][1]
    )
    rows = [
        [m, r["first_s"], r["update_ms"], results["eager"]["update_ms"] / r["update_ms"]]
        for m, r in results.items()
    ]
    print(table(["mode", "first update (s)", "update (ms)", "speed-up"], rows,
                f"BPTT update, LIF N={n}, B={batch}, T={steps}, float32"))  # fmt: skip
    print(f"\nfirst update: |loss difference| {loss_diff:.2e}, ", end="")
    print(f"max |gradient difference| {grad_diff:.2e}")
    path = write_json(
        "torch_compile.quick.json" if args.quick else "torch_compile.json",
        {"machine": machine(), "results": results, "loss_diff": loss_diff, "grad_diff": grad_diff},
    )
    print(f"written: {path}")


if __name__ == "__main__":
    main()
