"""Workload 5: one e-prop training update against one BPTT update and the forward run alone.

Two networks of Bellec et al. (2020, doi:10.1038/s41467-020-17236-y), float32:

* **pattern** (shared/anchors section 5): Poisson inputs (5 % per step), 100 inputs, 100
  LIF units (``LIF.bellec``: tau_m 20, v_th 0.6, reset by subtraction, triangle surrogate)
  with a trained input edge and a trained recurrent feedback self-edge without
  self-connections, a ``leaky_readout`` (tau 20) fed by a trained edge with a bias; a
  regression target (two sines); B = 1, T = 1000 and B = 64, T = 250.
* **evidence**: the evidence-accumulation task (``rg.datasets.evidence_accumulation``:
  40 inputs, 7 cues, 2250 steps), 50 LIF + 50 ALIF units in one ``alif`` node (tau_a
  2000, beta 0.0174 on the ALIF half, refractory 5 ms, triangle surrogate), 2 logits
  trained on the recall window, the rate regulariser toward 10 Hz; B = 64.

Sides, timed round-robin on the same batch: the forward run alone (``net.run`` without
gradients); one e-prop update (``net.fit_eprop``, random feedback) with the reverse scan
(``method="reverse"``) and with the forward traces (``method="traces"``); one BPTT update
(``net.fit_bptt``, whole sequence, the same loss: MSE, or the recall cross-entropy). Each
update is one run of the batch plus one Adam step, the trainer kept between updates. The
correctness check: the largest difference between the two e-prop formulations' gradients,
relative to the largest gradient, on the first batch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

import rnngraph as rg
from rnngraph.nodes import ALIF
from rnngraph.training import EProp

from ._report import FAILED, Context, Section, Table, num, ratio, seconds
from ._timing import time_calls_together

SIDES = ("forward", "reverse", "traces", "bptt")


def _edges(net: rg.Network, n_in: int, n: int, k: int, g: torch.Generator, rec_scale: float):
    no_self = 1.0 - torch.eye(n)
    w_in = torch.randn(n, n_in, generator=g) / math.sqrt(n_in)
    w_rec = rec_scale * torch.randn(n, n, generator=g) / math.sqrt(n) * no_self
    net.add_edge("in", "rec", weights=w_in, train="gd")
    net.add_edge("rec", "rec", weights=w_rec, train="gd", feedback=True, mask=no_self)
    net.add_diffeq_node("out", "leaky_readout", n=k, tau=20.0)
    w_out = torch.randn(k, n, generator=g) / math.sqrt(n) if k > 1 else torch.zeros(1, n)
    net.add_edge("rec", "out", weights=w_out, train="gd", bias=True)


def build(n_in: int, n: int, seed: int) -> rg.Network:
    """The pattern network: ``in -> rec`` (LIF) ``-> out`` (one leaky readout)."""
    g = torch.Generator().manual_seed(seed)
    net = rg.Network(dt=1.0, dtype=torch.float32)
    net.add_func_node("in", n_in)
    net.add_diffeq_node("rec", rg.nodes.LIF.bellec(n, dt=1.0, tau_m=20.0, v_th=0.6))
    _edges(net, n_in, n, 1, g, 0.5)
    return net


def build_evidence(n_in: int, n: int, seed: int) -> rg.Network:
    """The evidence network: ``in -> rec`` (LIF and ALIF halves) ``-> out`` (2 logits)."""
    g = torch.Generator().manual_seed(seed)
    alpha, rho = math.exp(-1.0 / 20.0), math.exp(-1.0 / 2000.0)
    beta = torch.tensor([0.0] * (n // 2) + [1.7 * (1 - rho) / (1 - alpha)] * (n - n // 2))
    rec = ALIF(
        n,
        tau_m=20.0,
        tau_a=2000.0,
        beta=beta,
        v_th=0.6,
        r_m=1.0 / (1.0 - alpha),
        refractory=5.0,
        reset="subtract",
        integrator="exp_euler",
        surrogate="triangle",
        surrogate_scale=0.3,
        detach_reset=False,
    )
    net = rg.Network(dt=1.0, dtype=torch.float32)
    net.add_func_node("in", n_in)
    net.add_diffeq_node("rec", rec)
    _edges(net, n_in, n, 2, g, 1.0)
    return net


def _recall_ce(mask: np.ndarray):
    steps = torch.as_tensor(np.flatnonzero(mask))

    def loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = out[:, steps]
        return torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), target[:, steps].reshape(-1)
        )

    return loss


def _workloads(quick: bool) -> list[dict[str, Any]]:
    """The batches: name, network builder and sizes, inputs, targets, e-prop and BPTT
    settings."""
    n_in, n = (20, 20) if quick else (100, 100)
    out = []
    for b, t_len in [(1, 100), (8, 50)] if quick else [(1, 1000), (64, 250)]:
        rng = np.random.default_rng(0)
        x = (rng.random((b, t_len, n_in)) < 0.05).astype(np.float32)
        tt = np.arange(t_len)
        y = np.sin(2 * np.pi * tt / 200) + 0.5 * np.sin(2 * np.pi * tt / 100)
        y = np.broadcast_to(y[None, :, None], (b, t_len, 1)).astype(np.float32)
        out.append(
            {
                "name": "pattern",
                "build": (build, n_in, n),
                "x": x,
                "y": y,
                "eprop": {},
                "bptt": {"loss": "mse"},
            }
        )
    b, cues, duration = (8, 3, 600.0) if quick else (64, 7, None)
    tr = rg.datasets.evidence_accumulation(
        batch=b, seed=np.random.default_rng(0), n_cues=cues, duration=duration, dtype=np.float32
    )
    out.append(
        {
            "name": "evidence",
            "build": (build_evidence, 40, 20 if quick else 100),
            "x": tr.inputs,
            "y": tr.targets,
            "eprop": {"loss_mask": tr.mask, "reg_rate": 10.0, "task": "classification"},
            "bptt": {"loss": _recall_ce(tr.mask)},
        }
    )
    return out


def _sides(w: dict[str, Any]) -> dict[str, Any]:
    """One callable per side, each on its own copy of the same initial network."""
    fns: dict[str, Any] = {}
    for side in SIDES:
        fn, n_in, n = w["build"]
        net = fn(n_in, n, seed=1)
        state: dict[str, Any] = {"trainer": None}

        def call(net=net, state=state, side=side) -> None:
            if side == "forward":
                with torch.no_grad():
                    net.run(w["x"])
                net.reset()
                return
            if side == "bptt":
                rec = net.fit_bptt(w["x"], w["y"], lr=1e-3, trainer=state["trainer"], **w["bptt"])
            else:
                kw = dict(w["eprop"]) if state["trainer"] is None else {}
                if state["trainer"] is None:
                    kw.update(feedback="random", seed=0, method=side)
                else:
                    kw["loss_mask"] = w["eprop"].get("loss_mask")
                rec = net.fit_eprop(w["x"], w["y"], lr=1e-3, trainer=state["trainer"], **kw)
            state["trainer"] = rec.trainer

        fns[side] = call
    return fns


def _gradient_gap(w: dict[str, Any]) -> float:
    """max |g_reverse - g_traces| / max |g_traces| over the trained parameters."""
    fn, n_in, n = w["build"]
    net = fn(n_in, n, seed=1)
    kw = dict(w["eprop"])
    mask = kw.pop("loss_mask", None)
    grads = {}
    for method in ("reverse", "traces"):
        trainer = EProp(feedback="random", seed=0, method=method, **kw)
        grads[method] = trainer.compute_gradients(net, w["x"], w["y"], loss_mask=mask)
    return max(
        float((grads["reverse"][k] - g).abs().max() / g.abs().max())
        for k, g in grads["traces"].items()
    )


def run(ctx: Context) -> Section:
    sec = Section("eprop", "5. e-prop training update vs BPTT update and the forward run")
    rows, data = [], {}
    for w in _workloads(ctx.quick):
        b, t_len = w["x"].shape[0], w["x"].shape[1]
        key = f"{w['name']}-B{b}-T{t_len}"
        ctx.log(f"  {key}")
        try:
            res = time_calls_together(_sides(w), ctx.repeats, warmup=1)
            gap = _gradient_gap(w)
        except Exception as err:  # report, do not abort the other workloads
            sec.notes.append(f"{key} failed: {type(err).__name__}: {err}")
            rows.append([w["name"], b, t_len] + [FAILED] * 8)
            continue
        data[key] = {**res, "gradient_gap": gap}
        rows.append(
            [w["name"], b, t_len]
            + [seconds(res[s]) for s in SIDES]
            + [
                ratio(res["reverse"], res["bptt"], "s_median"),
                ratio(res["reverse"], res["forward"], "s_median"),
                ratio(res["traces"], res["reverse"], "s_median"),
                num(gap),
            ]
        )
    sec.tables.append(
        Table(
            "One training update (float32): seconds, median (min)",
            [
                "task",
                "B",
                "T",
                "forward run",
                "e-prop (reverse)",
                "e-prop (traces)",
                "BPTT",
                "reverse / BPTT",
                "reverse / forward",
                "traces / reverse",
                "gradient gap",
            ],
            rows,
            [
                "An update: a run of the batch with the e-prop hook (reverse: the trial "
                "recorded, then one scan back and GEMMs; traces: eligibility traces carried "
                "in the loop) or the autograd graph (BPTT), the gradients, one Adam step. The "
                "forward run is the same batch without gradients. One warm-up round, not "
                "timed. Gradient gap: the two e-prop formulations on the first batch, "
                "relative to the largest gradient.",
            ],
        )
    )
    sec.data = {"available": True, "results": data}
    return sec
