"""A batch of sparse reservoirs in the native loop, against torch's CSR product alone.

    .venv/bin/python benchmarks/batched_sparse.py [--batch 32] [--units 500] [--steps 400]
                                                  [--repeats 11] [--threads 2]

The network: an echo-state reservoir (``leaky_tanh``, lr 0.3, W normal with 10 %
connectivity scaled to spectral radius 1.25, given as CSR, one input channel), a batch of
``--batch`` input sequences of ``--steps`` steps, float64 and float32. Timed per step, in
turn within every repeat (medians over the repeats), on ``--threads`` torch threads (the
native loop runs the batch's rows in that many threads):

* ``floor``: torch's CSR product alone, ``W @ X^T`` for the ``(n, B)`` states, once per step:
  the least any loop over steps pays for the recurrent input;
* ``native``: ``model.run`` of the batch, the native loop (one batched sparse product per
  step, each nonzero read once per block of rows);
* ``torch``: the same run with the native kernels off (torch's loop and sparse products);
* ``singles``: the batch run one sequence at a time (the native loop at batch 1).

Prints the times and the ratios to the floor; all figures go to
``benchmarks/results/batched_sparse.json``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from _common import fmt, run_record, table, write_json

import rnngraph as rg


def build(n: int, dtype: torch.dtype) -> tuple[rg.Network, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    net = rg.Network(dt=1.0, dtype=dtype)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", "leaky_tanh", n=n, lr=0.3)
    net.add_edge("in", "res", weights=rg.input_weights(n, 1, seed=gen, dtype=dtype))
    w = rg.recurrent_weights(n, spectral_radius=1.25, seed=gen, dtype=dtype, sparse=True)
    net.add_edge("res", "res", weights=w, feedback=True, sparse=True)
    return net, w


def modes(net: rg.Network, w: torch.Tensor, x: torch.Tensor) -> dict:
    model = net.compile()
    states = torch.randn(w.shape[0], x.shape[0], dtype=x.dtype)

    def floor() -> None:
        for _ in range(x.shape[1]):
            w @ states

    def native() -> None:
        model.reset()
        model.run(x)

    def generic() -> None:
        rg.native.set_enabled(False)
        try:
            model.reset()
            model.run(x)
        finally:
            rg.native.set_enabled(True)

    def singles() -> None:
        for b in range(x.shape[0]):
            model.reset()
            model.run(x[b])

    return {"floor": floor, "native": native, "torch": generic, "singles": singles}


def measure(n: int, batch: int, steps: int, dtype: torch.dtype, repeats: int) -> dict:
    net, w = build(n, dtype)
    x = torch.randn(batch, steps, 1, generator=torch.Generator().manual_seed(3), dtype=dtype)
    model = net.compile()
    explained = str(model.explain(batch_size=batch))
    assert "native reservoir loop" in explained, explained
    ours = model.run(x).output
    rg.native.set_enabled(False)
    model.reset()
    theirs = model.run(x).output
    rg.native.set_enabled(True)
    times: dict[str, list[float]] = {}
    fns = modes(net, w, x)
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times.setdefault(name, []).append((time.perf_counter() - t0) / steps * 1e6)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratios = {k: [t / f for t, f in zip(v, times["floor"], strict=True)] for k, v in times.items()}
    return {
        "us_per_step": med,
        "ratio_to_floor": {k: statistics.median(v) for k, v in ratios.items()},
        "max_abs_native_vs_torch": float((ours - theirs).abs().max()),
        "times": times,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--units", type=int, default=500)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--repeats", type=int, default=11)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads: {args.threads} (torch.set_num_threads)")
    results, rows = {}, []
    for dtype in (torch.float64, torch.float32):
        r = measure(args.units, args.batch, args.steps, dtype, args.repeats)
        results[str(dtype)] = r
        us, rt = r["us_per_step"], r["ratio_to_floor"]
        rows.append(
            [str(dtype).replace("torch.", "")]
            + [f"{fmt(us[k])} ({fmt(rt[k], 2)}x)" for k in ("floor", "native", "torch", "singles")]
            + [f"{r['max_abs_native_vs_torch']:.1e}"]
        )
    heads = ["dtype", "floor (CSR product)", "native loop", "torch loop", "one at a time"]
    title = (
        f"us per step (ratio to the floor, median of {args.repeats}): batch {args.batch}, "
        f"{args.units} units, 10 % connectivity"
    )
    print(table([*heads, "max |native - torch|"], rows, title=title))
    write_json("batched_sparse", run_record(None, args=vars(args), results=results))


if __name__ == "__main__":
    main()
