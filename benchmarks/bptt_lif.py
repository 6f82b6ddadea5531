"""BPTT of spiking networks against snnTorch: time per update, same weights and data.

    .venv/bin/python benchmarks/bptt_lif.py [--hidden 1000 2000] [--batch 128] [--steps 100]
                                            [--repeats 5] [--no-peer]

The network of snnTorch's tutorials: 100 Poisson input channels (rate 0.1 per step) ->
``Leaky`` layer of H units (``--recurrent``: ``RLeaky``, an all-to-all recurrence of
weights N(0, 0.5^2 / H)) -> ``Leaky`` output layer of 10 units, beta 0.9, threshold 1,
reset by subtraction, ``atan`` surrogate; float32, one thread on both sides. rnngraph builds
it with ``rnngraph.compat.snntorch`` (the same mapping as snnTorch's equations) and runs
``model.forward`` through its time loop. One update: the forward pass over ``(B, T, 100)``,
the loss ``mean((counts - target)^2)`` of the output spike counts, ``backward``, an SGD
step (lr 1e-4). Timed: the median of ``--repeats`` updates after one warm-up, for

* ``rnngraph``: the plan's kernels (the LIF step with gradients, which skips the refractory
  work when no unit can be held);
* ``rnngraph generic``: the same network with that kernel removed (the generic step: the
  time before this kernel existed);
* ``snnTorch`` 1.0 in ``.peers/snntorch`` (``make peers PEERS=snntorch``; ``--no-peer``
  leaves it out), through ``bptt_lif_snntorch_side.py``.

The losses of the first update (before any step) and of the last are compared: float32
steps of a different form, so they agree to rounding, not bit for bit. Results: a table on
stdout and ``benchmarks/results/bptt_lif.json``.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import fmt, peer_python, run_record, single_thread, table, write_json

import rnngraph as rg
from rnngraph.compat import snntorch as snn
from rnngraph.nodes import _kernels

HERE = Path(__file__).resolve().parent
C, K, BETA, LR = 100, 10, 0.9, 1e-4
GRAD_KERNEL = "LIF step with gradients"


def data(hidden: int, batch: int, steps: int, recurrent: bool) -> dict[str, np.ndarray]:
    g = np.random.default_rng(hidden + batch)
    return {
        "x": (g.random((batch, steps, C)) < 0.1).astype(np.float32),
        "target": g.uniform(0, 10, (batch, K)).astype(np.float32),
        "W1": (g.normal(0, 1, (hidden, C)) * 0.4 / np.sqrt(C)).astype(np.float32),
        "W2": (g.normal(0, 1, (K, hidden)) * 2.0 / np.sqrt(hidden)).astype(np.float32),
        "W_rec": (g.normal(0, 1, (hidden, hidden)) * 0.5 / np.sqrt(hidden)).astype(np.float32),
        "recurrent": np.bool_(recurrent),
    }


def ours(d: dict, repeats: int, kernels: list) -> tuple[list[float], list[float]]:
    saved = list(_kernels.KERNELS)
    _kernels.KERNELS[:] = kernels
    try:
        net = rg.Network(dt=1.0)
        net.add_func_node("in", C)
        if d["recurrent"]:
            h = d["W1"].shape[0]  # snnTorch's recurrent nn.Linear has a (trained) bias
            snn.rleaky(net, "lif1", h, BETA, torch.tensor(d["W_rec"]), torch.zeros(h))
        else:
            snn.leaky(net, "lif1", d["W1"].shape[0], BETA)
        snn.leaky(net, "lif2", K, BETA)
        net.add_edge("in", "lif1", weights=torch.tensor(d["W1"]), train="gd")
        net.add_edge("lif1", "lif2", weights=torch.tensor(d["W2"]), train="gd")
        model = net.compile()
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        x, target = torch.tensor(d["x"]), torch.tensor(d["target"])

        def update() -> float:
            loss = ((model.forward(x).sum(1) - target) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.item()

        losses, seconds = [update()], []  # the warm-up's loss: before any step
        for _ in range(repeats):
            t0 = time.perf_counter()
            losses.append(update())
            seconds.append(time.perf_counter() - t0)
        return losses, seconds
    finally:
        _kernels.KERNELS[:] = saved


def peer(d: dict, repeats: int) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(src, beta=BETA, lr=LR, repeats=repeats, **d)
        side = HERE / "bptt_lif_snntorch_side.py"
        subprocess.run([str(peer_python("snntorch")), str(side), str(src), str(dst)], check=True)
        with np.load(dst) as z:
            return z["losses"].tolist(), z["seconds"].tolist()


def med_of(runs: dict, name: str) -> float:
    return float(np.median(runs[name]["seconds"]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, nargs="+", default=[1000, 2000])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--recurrent", action="store_true")
    p.add_argument("--no-peer", action="store_true")
    args = p.parse_args()
    print(single_thread(peer=True))
    generic = [k for k in _kernels.KERNELS if k.name != GRAD_KERNEL]
    rows, out = [], {}
    for hidden in args.hidden:
        d = data(hidden, args.batch, args.steps, args.recurrent)
        runs = {"rnngraph": ours(d, args.repeats, list(_kernels.KERNELS))}
        runs["rnngraph generic"] = ours(d, args.repeats, generic)
        if not args.no_peer:
            runs["snnTorch"] = peer(d, args.repeats)
        med = {k: float(np.median(s)) for k, (_, s) in runs.items()}
        peer_s = med.get("snnTorch")
        for k, (losses, _) in runs.items():
            ratio = med[k] / peer_s if peer_s else "-"
            rows.append([hidden, k, med[k], ratio, losses[0], losses[-1]])
        out[str(hidden)] = {k: {"losses": v[0], "seconds": v[1]} for k, v in runs.items()}
    kind = "RLeaky" if args.recurrent else "Leaky"
    title = f"BPTT per update, 100 -> H {kind} -> 10 Leaky, B = {args.batch}, T = {args.steps}"
    heads = ["H", "run", "s per update", "x snnTorch", "first loss", "loss after the updates"]
    print(table(heads, rows, title))
    speedup = [med_of(out[str(h)], "rnngraph generic") / med_of(out[str(h)], "rnngraph")
               for h in args.hidden]  # fmt: skip
    print("rnngraph's speed-up over its generic step:", ", ".join(fmt(r) for r in speedup))
    write_json("bptt_lif.json", run_record(None, args=vars(args), results=out))


if __name__ == "__main__":
    main()
