"""Workload 3: a recurrent LIF population, rnngraph's ``lif`` node against snnTorch's ``RLeaky``.

N = 500 units, float32, batch 1 and 64, an all-to-all recurrent matrix W (dense), external
current x(t) per unit. Both sides compute

    v(t) = beta v(t-1) + x(t) + W z(t-1) - theta z(t-1),    z(t) = H(v(t) - theta)

with beta = 0.9, theta = 1 (reset by subtraction of the previous step's spike, snnTorch's
default ``reset_delay=True``): in rnngraph an ``lif`` node with ``exp_euler``,
``tau_m = -dt/ln(beta)``, ``r_m = 1/(1 - beta)``, ``v_rest = v_reset = 0``,
``reset="subtract"`` and a dense feedback self-edge W; in snnTorch
``RLeaky(beta, linear_features=N, reset_mechanism="subtract")`` with
``rleaky.recurrent.weight = W`` and a zero bias, stepped in a Python loop as its tutorials do.
The floor is the recurrent product alone, ``torch.mm`` on the same shapes; the eager loop
is the two lines above in plain torch.
"""

from __future__ import annotations

import math
from typing import Any

import torch

import rnngraph as rg

from ._peers import PeerError
from ._report import FAILED, MISSING, Context, Section, Table, peer_failed, ratio, us
from ._timing import measure

BETA, THETA, CHECK_STEPS = 0.9, 1.0, 100


def build(w: torch.Tensor) -> rg.Network:
    net = rg.Network(dt=1.0, dtype=torch.float32)
    net.add_diffeq_node(
        "lif",
        "lif",
        n=w.shape[0],
        tau_m=-1.0 / math.log(BETA),
        r_m=1.0 / (1.0 - BETA),
        v_rest=0.0,
        v_reset=0.0,
        v_th=THETA,
        reset="subtract",
        integrator="exp_euler",
    )
    net.add_edge("lif", "lif", weights=w, feedback=True)
    return net


def run(ctx: Context) -> Section:
    n = 100 if ctx.quick else 500
    sec = Section("lif", f"3. Recurrent LIF step (N = {n}, float32)")
    bs = [1, 8] if ctx.quick else [1, 64]
    gen = torch.Generator().manual_seed(5)
    w = 0.5 * torch.randn(n, n, generator=gen) / math.sqrt(n)  # (N, N), float32
    steps = {b: 400 if ctx.quick else (2000 if b == 1 else 300) for b in bs}  # most steps
    xs = {b: 0.25 * torch.rand(b, steps[b], n, generator=gen) for b in bs}  # (B, T, N)

    peer = ctx.peers["snntorch"]
    theirs: dict[str, Any] = {}
    if peer.ok:
        ctx.log("  snnTorch")
        req = {
            "B": bs,
            "beta": BETA,
            "threshold": THETA,
            "check_steps": CHECK_STEPS,
            "repeats": ctx.repeats,
            "target_s": ctx.target_s,
            "min_steps": ctx.min_steps,
        }
        arrays = {"W": w.numpy(), **{f"x{b}": x.numpy() for b, x in xs.items()}}
        try:
            theirs = peer.run("rleaky", req, arrays)
        except PeerError as err:
            peer_failed(ctx, sec, peer, err)

    rows, data = [], {}
    model = build(w).compile()
    wt = w.t()
    for b in bs:
        ctx.log(f"  B = {b}")
        x, t_max = xs[b], steps[b]

        def ours(T: int, x: torch.Tensor = x) -> None:
            model.reset()
            with torch.no_grad():
                model.run(x[:, :T])

        def ours_grad_mode(T: int, x: torch.Tensor = x) -> None:
            model.reset()
            with torch.enable_grad():  # nothing requires grad, but grad mode is on
                model.run(x[:, :T])

        zb = (torch.rand(b, n, generator=gen) < 0.1).float()

        def floor(T: int, zb: torch.Tensor = zb) -> None:
            for _ in range(T):
                torch.mm(zb, wt)

        def eager(T: int, x: torch.Tensor = x, b: int = b) -> torch.Tensor:
            v = torch.zeros(b, n)
            z = torch.zeros(b, n)
            zs = []
            for t in range(T):
                v = BETA * v + x[:, t] + z @ wt - THETA * z
                z = (v > THETA).float()
                zs.append(z)
            return torch.stack(zs, 1)

        m = measure(
            {
                "rnngraph": (ours, t_max),
                "floor": (floor, t_max),
                "eager": (eager, t_max),
                "rnngraph_grad_mode": (ours_grad_mode, t_max),
            },
            ctx.repeats,
            ctx.target_s,
            ctx.min_steps,
        )
        tc = min(CHECK_STEPS, t_max)
        model.reset()
        with torch.no_grad():
            z_ours = model.run(x[:, :tc]).output.numpy()  # (B, tc, N)
        z_eager = eager(tc).numpy()
        check = {
            "spikes_rnngraph": int(z_ours.sum()),
            "spikes_eager": int(z_eager.sum()),
            "agree_eager": float((z_ours == z_eager).mean()),
        }
        if not peer.ok:
            m["snntorch"] = MISSING
        elif not theirs:
            m["snntorch"] = FAILED
        else:
            r = theirs["results"][str(b)]
            m["snntorch"] = r["timing"]
            z_snn = theirs["arrays"][f"z{b}"]
            check.update(
                spikes_snntorch=int(z_snn.sum()), agree_snntorch=float((z_ours == z_snn).mean())
            )
        data[b] = {**m, "check": check}
        spikes = f"{check['spikes_rnngraph']} / {check.get('spikes_snntorch', 'n/a')}"
        agree = check.get("agree_snntorch")
        rows.append(
            [
                b,
                us(m["rnngraph"]),
                us(m["floor"]),
                us(m["eager"]),
                us(m["snntorch"]),
                us(m["rnngraph_grad_mode"]),
                ratio(m["rnngraph"], m["floor"]),
                ratio(m["rnngraph"], m["eager"]),
                ratio(m["rnngraph"], m["snntorch"]),
                spikes,
                f"{agree:.5f}" if agree is not None else "n/a",
            ]
        )
    sec.tables.append(
        Table(
            f"Recurrent LIF, N = {n}, dense W, float32, us/step: median (min)",
            [
                "B",
                "rnngraph",
                "floor: torch.mm",
                "eager torch loop",
                "snnTorch RLeaky",
                "rnngraph, grad mode on",
                "rnngraph / floor",
                "rnngraph / eager",
                "rnngraph / snnTorch",
                f"spikes in {CHECK_STEPS} steps (rnngraph / snnTorch)",
                "spike raster agreement",
            ],
            rows,
            [
                "Same W (0.5 N(0, 1)/sqrt(N)), same input x ~ U(0, 0.25) per unit and step, "
                f"beta = {BETA}, threshold {THETA}, reset by subtraction in both, zero initial "
                "state. Agreement: the fraction of (batch, step, unit) entries where both "
                "emit the same spike (float32 rounding differs: rnngraph computes "
                "u + g (v - u) with u = r_m x, snnTorch beta v + x).",
                "snnTorch: `spk, mem = rleaky(x[t], spk, mem)` in a Python loop, under "
                "`torch.no_grad()`. rnngraph: `net.compile().run(x)` under `torch.no_grad()` "
                "(what `Network.run` does by default); `grad mode on`: the same call with "
                "torch's grad mode on, as `CompiledNetwork.run` leaves it, although nothing "
                "requires grad.",
            ],
        )
    )
    sec.data.update(N=n, B=bs, results=data)
    if theirs:
        sec.data["snntorch_version"] = theirs.get("version")
    return sec
