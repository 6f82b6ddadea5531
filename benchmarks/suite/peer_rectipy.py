"""RectiPy's side of the benchmark suite; runs inside ``.peers/rectipy``.

    .peers/rectipy/bin/python benchmarks/suite/peer_rectipy.py REQUEST.json RESULT.json

Task ``li``: for each N, RectiPy 0.12.2's leaky-integrator tanh template with the given dense
W, built as RectiPy's users build it, then ``Network.run`` per step (float64, its default).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import time

from _peer_io import import_failed, serve
from _timing import measure

try:
    import numpy as np
    import pyrates  # noqa: F401
    import torch
    from rectipy import Network
except ImportError as err:  # a broken venv: the runner reports RectiPy as missing
    import_failed(err)

torch.set_num_threads(1)

TEMPLATE = "neuron_model_templates.rate_neurons.leaky_integrator.tanh"


def build(w: np.ndarray, dt: float, tau: float) -> Network:
    net = Network(dt, device="cpu")
    with contextlib.redirect_stdout(io.StringIO()):  # PyRates reports each compile stage
        net.add_diffeq_node(
            "rnn",
            TEMPLATE,
            weights=w,
            source_var="tanh_op/r",
            target_var="li_op/r_in",
            input_var="li_op/I_ext",
            output_var="li_op/v",
            node_vars={"all/li_op/tau": tau},
        )
    net.compile()
    return net


def li(req: dict, arrays: dict) -> dict:
    out = {}
    for n in req["N"]:
        w, drive = arrays[f"W{n}"], torch.as_tensor(arrays[f"I{n}"])  # (N, N), (T, N)
        t0 = time.perf_counter()
        net = build(w, req["dt"], req["tau"])
        t_build = time.perf_counter() - t0
        tc = min(req["check_steps"], drive.shape[0])
        net.run(drive[:tc], verbose=False, enable_grad=False)
        check_v = net.get_node("rnn").y.detach().numpy().copy()  # state v after tc steps

        def run(T: int, net: Network = net, drive: torch.Tensor = drive) -> None:
            net.run(drive[:T], verbose=False, enable_grad=False)

        timing = measure(
            {"rectipy": (run, drive.shape[0])}, req["repeats"], req["target_s"], req["min_steps"]
        )
        out[str(n)] = {"timing": timing["rectipy"], "build_s": t_build, "check_v": check_v.tolist()}
        print(n, t_build, timing["rectipy"].get("us_median"), flush=True)
    return {"results": out}


if __name__ == "__main__":
    serve({"li": li}, importlib.metadata.version("rectipy"))
