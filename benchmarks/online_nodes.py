"""LMS readout training, NVAR features, ES2N and IPReservoir: rnngraph against reservoirpy,
side by side.

    .venv/bin/python benchmarks/online_nodes.py [--repeats 5]

* LMS: a 300-unit leaky-tanh reservoir (lr 0.3, spectral radius 1.25, CSR W) on 2000 steps
  of Mackey-Glass one step ahead, its readout (with a bias) trained online by LMS (learning
  rate 0.01) in one pass: rnngraph ``fit_lms`` (open loop: the run, then the updates replayed
  on the recorded states) against reservoirpy ``(res >> LMS).partial_fit``.
* NVAR: the features of ``NVAR(delay=2, order=2)`` on 5000 steps of a 3-d input
  (27 features): rnngraph ``run`` against reservoirpy ``NVAR.run``.
* ES2N: 300 edge-of-stability units (proximity 0.2, a random orthogonal O) on the 2000
  Mackey-Glass inputs: rnngraph ``run`` against reservoirpy ``ES2N.run``.
* IPReservoir: intrinsic plasticity of the 300-unit reservoir (tanh, mu 0, sigma 0.2,
  learning rate 5e-4, a bias) over 3 epochs of the 2000 Mackey-Glass inputs: rnngraph
  ``fit_intrinsic`` against reservoirpy ``IPReservoir.fit``.

Same weights and data on both sides, float64, one thread. Reported: the largest difference
of the results (LMS weights and bias, NVAR features, ES2N states, IP gains and shifts) and
the median time of each side with the ratio, measured in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import PEERS_DIR, run_peer, single_thread, table, write_json

import rnngraph as rg


def median_time(fn, repeats: int) -> float:
    fn()  # warm
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def data() -> dict[str, np.ndarray]:
    gen = torch.Generator().manual_seed(0)
    f64 = torch.float64
    w_in = rg.input_weights(300, 1, connectivity=0.2, seed=gen, dtype=f64).numpy()
    w = rg.recurrent_weights(300, spectral_radius=1.25, connectivity=0.1, seed=gen, dtype=f64)
    s = rg.datasets.mackey_glass(2001)
    s = 2.0 * (s - s.min()) / (s.max() - s.min()) - 1.0
    u = np.random.default_rng(0).standard_normal((5000, 3))
    o = np.linalg.qr(np.random.default_rng(1).standard_normal((300, 300)))[0]
    return {
        "W": w.numpy(), "Win": w_in, "O": o, "lr": 0.3, "rate": 0.01, "x": s[:-1], "y": s[1:],
        "u": u, "ip_bias": np.random.default_rng(2).uniform(-0.2, 0.2, 300), "ip_rate": 5e-4,
        "ip_epochs": 3,
    }  # fmt: skip


def ours(d: dict, repeats: int) -> dict:
    out = {}

    def lms() -> None:
        net = rg.Network(dt=1.0, dtype=torch.float64)
        net.add_func_node("in", 1)
        net.add_diffeq_node("res", "leaky_tanh", n=300, lr=d["lr"], bias=0.0)
        net.add_edge("in", "res", weights=d["Win"])
        net.add_edge("res", "res", weights=d["W"], feedback=True, sparse=True)
        net.fit_lms(d["x"], d["y"], learning_rate=d["rate"], bias=True)
        edge = net.get_edge("res", "readout")
        out["Wout"], out["bias"] = edge.weight.detach().numpy(), edge.bias.detach().numpy()

    net = rg.Network(dt=1.0, dtype=torch.float64)
    net.add_func_node("in", 3)
    net.add_diffeq_node("nvar", rg.nodes.NVAR(3, delay=2, order=2))
    net.add_edge("in", "nvar", weights=np.eye(3))

    def nvar() -> None:
        net.reset()
        out["features"] = net.run(d["u"]).output.numpy()

    es2n = rg.Network(dt=1.0, dtype=torch.float64)
    es2n.add_func_node("in", 1)
    es2n.add_diffeq_node("res", rg.nodes.ES2N(300, d["O"], proximity=0.2))
    es2n.add_edge("in", "res", weights=d["Win"])
    es2n.add_edge("res", "res", weights=d["W"], feedback=True, sparse=True)

    def states() -> None:
        es2n.reset()
        out["states"] = es2n.run(d["x"]).output.numpy()

    def intrinsic() -> None:
        node = rg.nodes.IPReservoir(
            300, lr=d["lr"], bias=d["ip_bias"], mu=0.0, sigma=0.2, learning_rate=d["ip_rate"]
        )
        net = rg.Network(dt=1.0, dtype=torch.float64)
        net.add_func_node("in", 1)
        net.add_diffeq_node("res", node)
        net.add_edge("in", "res", weights=d["Win"])
        net.add_edge("res", "res", weights=d["W"], feedback=True, sparse=True)
        net.fit_intrinsic(d["x"], epochs=int(d["ip_epochs"]))
        out["a"], out["b"] = node.a.numpy().copy(), node.b.numpy().copy()

    out["lms_s"], out["nvar_s"] = median_time(lms, repeats), median_time(nvar, repeats)
    out["es2n_s"], out["ipreservoir_s"] = (
        median_time(states, repeats),
        median_time(intrinsic, repeats),
    )
    return out


def theirs(d: dict, repeats: int) -> dict | None:
    if not (PEERS_DIR / "reservoirpy" / "bin" / "python").exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(src, repeats=repeats, **d)
        script = Path(__file__).parent / "peers" / "reservoirpy_online_nodes.py"
        run_peer("reservoirpy", script, [src, dst])
        with np.load(dst) as z:
            return {k: z[k] for k in z.files}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print(single_thread())
    d = data()
    a, b = ours(d, args.repeats), theirs(d, args.repeats)
    rows = []
    for name, keys in (
        ("ES2N (300 units, 2000 steps)", ("states",)),
        ("LMS (300 units, 2000 steps)", ("Wout", "bias")),
        ("NVAR (5000 steps)", ("features",)),
        ("IPReservoir (300 units, 3 x 2000 steps)", ("a", "b")),
    ):
        t_ours = a[f"{name.split()[0].lower()}_s"]
        if b is None:
            rows.append([name, "-", t_ours, "missing", "-"])
            continue
        diff = max(float(np.abs(a[k] - b[k]).max()) for k in keys)
        t_theirs = float(b[f"{name.split()[0].lower()}_s"])
        rows.append([name, diff, t_ours, t_theirs, t_ours / t_theirs])
    headers = ["workload", "max abs diff", "rnngraph s", "reservoirpy s", "rnngraph / reservoirpy"]
    print(table(headers, rows))
    write_json("online_nodes.json", {"headers": headers, "rows": rows})


if __name__ == "__main__":
    main()
