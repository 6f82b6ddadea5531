"""Built-in models against the same models given as equations (``rnngraph.equation_model``
of the form each built-in's docstring shows).

    .venv/bin/python benchmarks/equations.py [--quick] [--repeats R]

For each model, 200 units at batch 16, float32, driven through a dense input edge: the
time per step of ``forward`` without gradients (the plan's fastest kernels, native ones
included) and with gradients (trainable input weights, forward and backward), timed round
robin (median of the repeats). The ratio equation / built-in should stay within 1.2.
Results: a table on stdout and ``benchmarks/results/equations.json``.
"""

from __future__ import annotations

import argparse

import torch
from _common import machine, round_robin, single_thread, table, write_json

import rnngraph as rg
from rnngraph.equations import equation_form
from rnngraph.nodes import (
    IAF,
    LIF,
    QIF,
    AdEx,
    DoubleExpSynapse,
    ExpSynapse,
    Izhikevich,
    LeakyIntegrator,
    QIFMeanField,
)

#: model -> (parameters, input scale, dt, the built-in's initial state)
MODELS = {
    LIF: (dict(tau_m=10.0), 1.5, 0.5, {"v": 0.0}),
    IAF: (dict(r_m=1e7, bias=0.0), 2e-9, 1e-4, {"v": -0.065}),
    AdEx: ({}, 900.0, 0.1, {"v": -70.6}),
    Izhikevich: (dict(v_peak=30.0, v_reset=-65.0), 150.0, 0.1, {"v": -60.0}),
    QIF: ({}, 3.0, 0.01, {"v": -2.0}),
    QIFMeanField: ({}, 2.0, 0.01, {}),
    LeakyIntegrator: ({}, 2.0, 0.5, {}),
    ExpSynapse: ({}, 1.0, 0.1, {}),
    DoubleExpSynapse: ({}, 1.0, 0.1, {}),
}
N, B = 200, 16


def network(node, dt: float, scale: float) -> rg.Network:
    g = torch.Generator().manual_seed(0)
    net = rg.Network(dt=dt)
    net.add_func_node("in", 20)
    net.add_node("n", node)
    w = scale * torch.rand(N, 20, generator=g) / 10.0
    net.add_edge("in", "n", target_var=node.input_names[0], weights=w, train="gd")
    net.input_node = "in"
    net.output_node = "n"
    return net


def compare(model, steps: int, repeats: int) -> tuple[list, dict]:
    params, scale, dt, init = MODELS[model]
    defaults = {k: float(v) for k, v in ((p, getattr(model(1), p)) for p in model(1).param_names)}
    Eq = rg.equation_model(**equation_form(model))
    nodes = {
        "built-in": model(N, **params),
        "equations": Eq(N, **{**defaults, **params}, init=init),
    }
    nets = {k: network(v, dt, scale) for k, v in nodes.items()}
    x = torch.rand(B, steps, 20, generator=torch.Generator().manual_seed(1))
    rows, data = [], {}
    for grad in (False, True):

        def fn(net, grad=grad):
            def go() -> None:
                with torch.set_grad_enabled(grad):
                    y = net.forward(x)
                    if grad:
                        y.sum().backward()

            return go

        t = round_robin({k: fn(v) for k, v in nets.items()}, repeats)
        us = {k: v / steps * 1e6 for k, v in t.items()}
        kernel = nets["equations"].compile().explain(B, grad).nodes["n"]
        rows.append(
            [
                model.__name__,
                grad,
                us["built-in"],
                us["equations"],
                us["equations"] / us["built-in"],
                kernel[0],
            ]
        )
        data[f"{model.__name__} grad={grad}"] = us
    return rows, data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    single_thread()
    steps = 100 if args.quick else 500
    rows, data = [], {}
    for model in MODELS:
        r, d = compare(model, steps, args.repeats)
        rows += r
        data.update(d)
    headers = ["model", "grad", "built-in us/step", "equations us/step", "ratio", "kernel"]
    print(table(headers, rows, f"Built-in against equations, N={N}, B={B}, float32"))
    path = write_json(
        "equations.quick.json" if args.quick else "equations.json",
        {"machine": machine(), "steps": steps, "results": data},
    )
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
