"""Run context, table cells, machine information and the ``bench.md`` / ``bench.json`` files."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import _common as common
from ._peers import Peers

MISSING = "missing"  # the peer's venv is absent or does not import
FAILED = "failed"  # the peer (or our side) raised; the section's notes say why
NA = "n/a"  # not measured for this row (the library has no such mode, or it is too slow)


@dataclass
class Context:
    """What every workload receives: sizes mode, timing settings and the peers."""

    quick: bool
    repeats: int
    target_s: float  # wall time of one timed run
    min_steps: int  # fewest steps of one timed run
    peers: Peers
    log: Any = print


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[Any]]
    notes: list[str] = field(default_factory=list)


@dataclass
class Section:
    name: str
    title: str
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------
# cells
# ------------------------------------------------------------------------------------------


def num(x: float | None, digits: int = 3) -> str:
    """A number with ``digits`` significant digits, without an exponent where it is short."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    x = float(x)
    if x == 0.0:
        return "0"
    if 1e-3 <= abs(x) < 1e5:
        d = max(0, digits - 1 - math.floor(math.log10(abs(x))))
        return f"{x:.{d}f}"
    return f"{x:.{digits - 1}e}"


def _timing(m: dict[str, Any] | str | None, unit: str) -> str:
    if m is None:
        return NA
    if isinstance(m, str):
        return m
    if "error" in m:
        return FAILED
    return f"{num(m[f'{unit}_median'])} ({num(m[f'{unit}_min'])})"


def us(m: dict[str, Any] | str | None) -> str:
    """A timing cell: ``median (min)`` in microseconds per step, or a status word."""
    return _timing(m, "us")


def seconds(m: dict[str, Any] | str | None) -> str:
    """A timing cell: ``median (min)`` in seconds, or a status word."""
    return _timing(m, "s")


def median_of(m: Any, key: str = "us_median") -> float | None:
    return m.get(key) if isinstance(m, dict) else None


def ratio(a: Any, b: Any, key: str = "us_median") -> str:
    """``a / b`` of two measurements' medians, or ``n/a``."""
    x, y = median_of(a, key), median_of(b, key)
    if x is None or y is None or y == 0:
        return NA
    return num(x / y, 3)


def status(peer_ok: bool) -> str:
    return NA if peer_ok else MISSING


# ------------------------------------------------------------------------------------------
# machine and files
# ------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """The scripts' machine record (date, CPU, versions, source state) under the suite's
    names, with the thread environment."""
    info = common.machine()
    info["load_average_at_start"] = info.pop("load_average")
    info["thread_env"] = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    return info


def markdown_table(t: Table) -> str:
    rows = [[str(c) for c in r] for r in t.rows]
    out = [common.table(t.headers, rows, title=f"**{t.title}**")]
    out += [""] + [f"* {n}" for n in t.notes] if t.notes else []
    return "\n".join(out)


def markdown(info: dict[str, Any], sections: list[Section], peers: Peers, argv: str) -> str:
    load = info.get("load_average_at_start")
    load_end = info.get("load_average_at_end")
    lines = [
        "# rnngraph benchmarks",
        "",
        f"`{argv}` on {info['date']}: {info['cpu']}, {info['cores']} cores "
        f"(load average {load[0]:.2f} at the start, {load_end[0]:.2f} at the end), "
        f"Python {info['python']}, torch {info['torch']}, numpy {info['numpy']}; "
        f"{info['wall_s']:.0f} s in all."
        if load and load_end
        else f"`{argv}` on {info['date']}: {info['cpu']}, torch {info['torch']}",
        "",
        "One thread everywhere: `torch.set_num_threads(1)` in this process, "
        "`OMP/MKL/OPENBLAS_NUM_THREADS=1` for every peer subprocess. Times are wall clock: "
        "**median (min)** over the repeats, microseconds per step unless a header says "
        "otherwise (per step of the whole batch for B > 1). Ratios divide medians measured "
        "in this run; a time ratio rnngraph / X below 1 means rnngraph is faster. "
        f"`{MISSING}`: the peer's venv is absent or broken; `{FAILED}`: it raised (see the "
        f"notes); `{NA}`: not measured for that row.",
        "",
        "Peers: " + "; ".join(p.describe() for p in peers.probed()) + ".",
        "",
    ]
    cores = info.get("cores") or 1
    if load and load_end and max(load[0], load_end[0]) > 0.5 * cores:
        lines += [
            f"**Busy machine**: a load average of {max(load[0], load_end[0]):.1f} on {cores} "
            "cores means other work shared the CPU during this run; absolute times are "
            "inflated and noisy (compare the ratios, and the min beside each median).",
            "",
        ]
    for s in sections:
        lines += [f"## {s.title}", ""]
        for t in s.tables:
            lines += [markdown_table(t), ""]
        if s.notes:
            lines += [f"* {n}" for n in s.notes] + [""]
    return "\n".join(lines)


def write(
    out: Path, info: dict[str, Any], sections: list[Section], peers: Peers, argv: str
) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "bench.md", out / "bench.json"
    md.write_text(markdown(info, sections, peers, argv))
    data = {
        "machine": info,
        "peers": {
            p.name: {"ok": p.ok, "version": p.version, "reason": p.reason} for p in peers.probed()
        },
        "sections": {
            s.name: {
                "title": s.title,
                "tables": [t.__dict__ for t in s.tables],
                "notes": s.notes,
                "data": s.data,
            }
            for s in sections
        },
    }
    js.write_text(json.dumps(common.jsonable(data), indent=1) + "\n")
    return md, js


def peer_failed(ctx: Context, sec: Section, peer: Any, err: Exception) -> str:
    """Log a peer's failure, note it in the section and return the word for its cells."""
    msg = str(err)
    ctx.log(msg)
    sec.data.setdefault("peer_errors", {})[peer.name] = msg
    if not peer.ok:
        sec.notes.append(f"{peer.label} is missing: {peer.reason}.")
        return MISSING
    sec.notes.append(f"{peer.label} failed: {msg.splitlines()[0]} ... {msg.splitlines()[-1]}")
    return FAILED
