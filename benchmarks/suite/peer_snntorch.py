"""snnTorch's side of the benchmark suite; runs inside ``.peers/snntorch``.

    .peers/snntorch/bin/python benchmarks/suite/peer_snntorch.py REQUEST.json RESULT.json

Task ``rleaky``: ``snn.RLeaky`` with an all-to-all ``nn.Linear`` recurrence whose weight is
set to the given W (bias zero), reset by subtraction, stepped in a Python loop under
``torch.no_grad()``; per batch size, the time per step and the spikes of a check run.
"""

from __future__ import annotations

from pathlib import Path

from _peer_io import import_failed, serve
from _timing import measure

try:
    import numpy as np
    import snntorch as snn
    import torch
except ImportError as err:  # a broken venv: the runner reports snnTorch as missing
    import_failed(err)

torch.set_num_threads(1)


def rleaky(req: dict, arrays: dict) -> dict:
    w = torch.as_tensor(arrays["W"])  # (N, N), float32
    n = w.shape[0]
    out, rasters = {}, {}
    for b in req["B"]:
        x = torch.as_tensor(arrays[f"x{b}"]).transpose(0, 1).contiguous()  # (T, B, N)
        lif = snn.RLeaky(
            beta=req["beta"],
            linear_features=n,
            threshold=req["threshold"],
            reset_mechanism="subtract",
        )
        with torch.no_grad():
            lif.recurrent.weight.copy_(w)
            lif.recurrent.bias.zero_()

        def run(T: int, lif: snn.RLeaky = lif, x: torch.Tensor = x) -> list:
            spikes = []
            with torch.no_grad():
                spk, mem = lif.reset_mem()
                for t in range(T):
                    spk, mem = lif(x[t], spk, mem)
                    spikes.append(spk)
            return spikes

        tc = min(req["check_steps"], x.shape[0])
        rasters[f"z{b}"] = torch.stack(run(tc), 1).numpy().astype(np.uint8)  # (B, tc, N)
        timing = measure(
            {"snntorch": (run, x.shape[0])}, req["repeats"], req["target_s"], req["min_steps"]
        )
        out[str(b)] = {"timing": timing["snntorch"]}
        print(b, timing["snntorch"].get("us_median"), flush=True)
    np.savez(Path(req["tmp"]) / "result.npz", **rasters)
    return {"results": out}


if __name__ == "__main__":
    serve({"rleaky": rleaky}, snn.__version__)
