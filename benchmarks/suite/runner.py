"""``python -m benchmarks``: every workload, rnngraph and its peers, in one run."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import warnings
from pathlib import Path

import torch

from . import brian2_iaf, eprop, esn, force, generative, lif, mackey_glass, observer
from ._peers import ROOT, Peers
from ._report import Context, Section, machine, write

#: name -> module with ``run(ctx) -> Section``, in the order they run and are reported
WORKLOADS = {
    "esn": esn,
    "mackey_glass": mackey_glass,
    "generative": generative,
    "force": force,
    "lif": lif,
    "brian2": brian2_iaf,
    "eprop": eprop,
    "observer": observer,
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time rnngraph and its peers (reservoirpy, RectiPy, snnTorch, Brian2) on "
        "the same workloads in one run; write bench.md and bench.json.",
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes, a smoke test (< 1 min)")
    p.add_argument(
        "--only",
        nargs="+",
        choices=list(WORKLOADS),
        metavar="NAME",
        help=f"run these workloads only: {', '.join(WORKLOADS)}",
    )
    p.add_argument(
        "--repeats", type=int, default=None, help="timed runs of each (default 5; 2 with --quick)"
    )
    p.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results", help="output folder"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    t_start = time.perf_counter()
    args = parse(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    repeats = args.repeats or (2 if args.quick else 5)
    if repeats < 1:
        sys.exit("--repeats must be >= 1")
    ctx = Context(
        quick=args.quick,
        repeats=repeats,
        target_s=0.01 if args.quick else 0.2,
        min_steps=10,
        peers=Peers(),
        log=lambda msg: print(f"{time.perf_counter() - t_start:6.1f} s  {msg}", flush=True),
    )
    info = machine()
    argv_str = shlex.join(["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)])
    info["command"] = argv_str
    t0 = time.perf_counter()
    sections: list[Section] = []
    for name in args.only or list(WORKLOADS):
        ctx.log(f"[{name}]")
        t1 = time.perf_counter()
        sections.append(WORKLOADS[name].run(ctx))
        ctx.log(f"[{name}] {time.perf_counter() - t1:.0f} s")
    info["wall_s"] = time.perf_counter() - t0
    info["load_average_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    info["repeats"] = repeats
    info["quick"] = args.quick
    md, js = write(args.out, info, sections, ctx.peers, argv_str)
    print(md.read_text())
    print(f"wrote {md} and {js}")
    return 0
