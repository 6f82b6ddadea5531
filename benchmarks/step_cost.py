"""The per-step cost of a Python loop over ``CompiledNetwork.step`` against ``run``.

    .venv/bin/python benchmarks/step_cost.py [--quick] [--repeats R]

For each network (ESN N = 100 and N = 500 at B = 1, recurrent LIF N = 200 at B = 64, all
float32, dense W) and with and without gradients (trainable input weights or all parameters
fixed), time per step of

* ``run``: ``model.forward(x)`` over T steps, through the torch loop (native loops switched
  off, so that both sides run the same kernels);
* ``step``: ``for t in range(T): y, s = model.step(x[:, t], s)``, the habit of a
  reservoirpy ``model(x)`` or snnTorch loop;

* ``bare``: for the ESNs, the same torch operations per step written out by hand
  (``linear``, ``addmm``, ``tanh``, ``lerp``; no checks, no state dict; with autograd in
  the rows with gradients), the floor any Python loop over single steps stands on;

timed round-robin (one run of each in turn, median of the repeats), and the ratios
step / run and bare / run. A third table compares ``leaky_tanh`` with an empty subclass
of ``LeakyTanh`` (``class MyESN(LeakyTanh): pass``) in runs without gradients with the
native loops on: the ratio should be 1. Results: tables on stdout and
``benchmarks/results/step_cost.json``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
import torch.nn.functional as F
from _common import machine, round_robin, single_thread, table, write_json
from torch import Tensor

import rnngraph as rg
from rnngraph import native
from rnngraph.nodes import LeakyTanh


class MyESN(LeakyTanh):
    """An empty subclass: the same mathematics, so the same kernels."""


def esn(n: int, node=None) -> tuple[rg.Network, int, int]:
    g = torch.Generator().manual_seed(0)
    net = rg.Network(dt=1.0)
    net.add_func_node("in", 1)
    net.add_diffeq_node("res", node if node is not None else "leaky_tanh", n=None if node else n)
    net.add_edge("in", "res", weights=torch.randn(n, 1, generator=g), train="gd")
    w = rg.recurrent_weights(n, spectral_radius=0.9, connectivity=0.1, seed=g)
    net.add_edge("res", "res", weights=w, feedback=True)
    return net, 1, 1


def lif(n: int = 200, batch: int = 64) -> tuple[rg.Network, int, int]:
    g = torch.Generator().manual_seed(1)
    net = rg.Network(dt=1.0)
    net.add_func_node("in", 20)
    net.add_diffeq_node("rec", "lif", n=n, tau_m=20.0)
    net.add_edge("in", "rec", weights=torch.rand(n, 20, generator=g) * 0.3, train="gd")
    net.add_edge("rec", "rec", weights=torch.randn(n, n, generator=g) * 0.05, feedback=True)
    return net, 20, batch


def bare_esn(model: torch.nn.Module, x: Tensor, grad: bool) -> Callable[[], None]:
    """The ESN step by hand, ``x_t = lerp(x_{t-1}, tanh(W_in u_t + W x_{t-1}), lr)``,
    one step per Python iteration, with autograd where ``grad`` (its output is checked
    against the model's once)."""
    w_in, w = model.edges["in->res"].weight, model.edges["res->res"].weight.t()
    lr = float(model.nodes["res"].lr)

    def loop() -> Tensor:
        with torch.set_grad_enabled(grad):
            s = torch.zeros(x.shape[0], w.shape[0])
            ys = []
            for t in range(x.shape[1]):
                s = torch.lerp(s, torch.tanh(torch.addmm(F.linear(x[:, t], w_in), s, w)), lr)
                ys.append(s)
            return torch.stack(ys, 1)

    with torch.no_grad():
        torch.testing.assert_close(loop().detach(), model.forward(x), rtol=1e-5, atol=1e-6)
    return loop


def step_vs_run(steps: int, repeats: int) -> tuple[list, dict]:
    rows, data = [], {}
    was = native.enabled()
    native.set_enabled(False)
    try:
        for name, (net, c, batch) in {
            "ESN N=100 B=1": esn(100),
            "ESN N=500 B=1": esn(500),
            "LIF N=200 B=64": lif(),
        }.items():
            model = net.compile()
            x = torch.rand(batch, steps, c, generator=torch.Generator().manual_seed(2))
            for grad in (False, True):
                for p in model.parameters():
                    p.requires_grad_(grad)

                def run(model=model, x=x, grad=grad) -> None:
                    with torch.set_grad_enabled(grad):
                        model.forward(x)

                def loop(model=model, x=x, grad=grad, batch=batch) -> None:
                    with torch.set_grad_enabled(grad):
                        s = model.init_state(batch)
                        for t in range(steps):
                            _, s = model.step(x[:, t], s)

                fns = {"run": run, "step": loop}
                if name.startswith("ESN"):
                    fns["bare"] = bare_esn(model, x, grad)
                t = round_robin(fns, repeats)
                us = {k: v / steps * 1e6 for k, v in t.items()}
                bare = us["bare"] / us["run"] if "bare" in us else "-"
                rows.append([name, grad, us["run"], us["step"], us["step"] / us["run"], bare])
                data[f"{name} grad={grad}"] = us
    finally:
        native.set_enabled(was)
    return rows, data


def empty_subclass(steps: int, repeats: int) -> tuple[list, dict]:
    rows, data = [], {}
    for n in (100, 500):
        nets = {"leaky_tanh": esn(n)[0], "MyESN": esn(n, MyESN(n))[0]}
        models = {k: v.compile() for k, v in nets.items()}
        for m in models.values():
            for p in m.parameters():
                p.requires_grad_(False)
        x = torch.rand(steps, 1, generator=torch.Generator().manual_seed(3))
        fns = {k: (lambda m=m, x=x: m.forward(x)) for k, m in models.items()}
        t = round_robin(fns, repeats)
        us = {k: v / steps * 1e6 for k, v in t.items()}
        kernels = {k: m.explain().loop for k, m in models.items()}
        rows.append(
            [n, us["leaky_tanh"], us["MyESN"], us["MyESN"] / us["leaky_tanh"], kernels["MyESN"]]
        )
        data[f"N={n}"] = {"us": us, "loop": kernels}
    return rows, data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    single_thread()
    steps = 200 if args.quick else 1000
    rows, data = step_vs_run(steps, args.repeats)
    headers = ["network", "grad", "run us/step", "step us/step", "step / run", "bare / run"]
    print(table(headers, rows,
                "Python loop over step() against run (torch loop, native off)"))  # fmt: skip
    print()
    sub_rows, sub = empty_subclass(4 * steps, args.repeats)
    title = "An empty subclass of LeakyTanh against leaky_tanh (native on, no gradients)"
    headers = ["N", "leaky_tanh us/step", "MyESN us/step", "ratio", "MyESN runs"]
    print(table(headers, sub_rows, title))
    path = write_json(
        "step_cost.quick.json" if args.quick else "step_cost.json",
        {"machine": machine(), "steps": steps, "step_vs_run": data, "empty_subclass": sub},
    )
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
