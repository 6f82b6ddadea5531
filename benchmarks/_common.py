"""Helpers shared by the benchmark scripts: threads, timing, summaries, tables, peers, JSON.

The scripts in ``benchmarks/`` import this module by name (``python benchmarks/x.py`` puts
``benchmarks/`` on ``sys.path``). Peer libraries run in their own virtual environments
(``.peers/<name>``, see ``benchmarks/peers/README.md``) as subprocesses that exchange data
through ``.npz`` files.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
PEERS_DIR = Path(os.environ.get("PEERS_DIR", ROOT / ".peers"))
RESULTS_DIR = ROOT / "benchmarks" / "results"

#: Environment of a peer subprocess: one BLAS/OpenMP thread, as on rnngraph's side.
THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def single_thread(peer: bool = False) -> str:
    """Run torch on one thread and return the line that says so (printed by every script).

    numpy's and scipy's BLAS read their thread count when they load, so a script started
    without ``OPENBLAS_NUM_THREADS=1`` (and the others) restarts itself once with them set.
    """
    if any(os.environ.get(var) != value for var, value in THREAD_ENV.items()):
        os.environ.update(THREAD_ENV)
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, *sys.argv])
    torch.set_num_threads(1)
    if not peer:
        return "threads: 1 (torch.set_num_threads(1), OMP/OPENBLAS/MKL_NUM_THREADS=1)"
    return (
        "threads: 1 on each side (torch.set_num_threads(1) and "
        "OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=MKL_NUM_THREADS=1 in both processes)"
    )


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``(fn(), wall seconds)``."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def round_robin(fns: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median seconds of each function, timed in turn."""
    for f in fns.values():
        f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: sorted(v)[len(v) // 2] for k, v in times.items()}


def summary(values: Sequence[float], labels: Sequence[Any] | None = None) -> dict[str, Any]:
    """Median, quartiles, best and worst of ``values`` (worst = largest), with the label
    (e.g. the seed) of the worst. NaN (a diverged run) counts as the worst."""
    v = np.asarray(values, dtype=np.float64)
    labels = list(range(len(v))) if labels is None else list(labels)
    worst = int(np.argmax(np.where(np.isnan(v), np.inf, v)))
    best = int(np.argmin(np.where(np.isnan(v), np.inf, v)))
    return {
        "median": float(np.median(v)),
        "q25": float(np.quantile(v, 0.25)),
        "q75": float(np.quantile(v, 0.75)),
        "min": float(v[best]),
        "max": float(v[worst]),
        "best_label": labels[best],
        "worst_label": labels[worst],
        "n": len(v),
    }


def median_label(values: Sequence[float], labels: Sequence[Any]) -> Any:
    """The label of the median value: the upper median ``sorted[n // 2]`` for even ``n``,
    i.e. the worse of the two middle runs."""
    order = np.argsort(np.asarray(values, dtype=np.float64), kind="stable")
    return list(labels)[int(order[len(order) // 2])]


def fmt(x: Any, digits: int = 3) -> str:
    """A number in a short scientific or fixed format; strings pass through."""
    if isinstance(x, str):
        return x
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    x = float(x)
    if x == 0.0:
        return "0"
    if 1e-2 <= abs(x) < 1e4:
        return f"{x:.{digits}g}" if abs(x) < 1 else f"{x:.{digits}f}".rstrip("0").rstrip(".")
    return f"{x:.{digits - 1}e}"


def ratio(ours: float, theirs: float) -> float:
    return float(ours) / float(theirs) if theirs else float("nan")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> str:
    """A Markdown pipe table (pastes into ``benchmarks/README.md`` as it is)."""
    cells = [[str(h) for h in headers]] + [[fmt(c) for c in r] for r in rows]
    width = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    if title:
        lines += [title, ""]

    def line(r: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, width, strict=True)) + " |"

    lines.append(line(cells[0]))
    lines.append("|" + "|".join("-" * (w + 2) for w in width) + "|")
    lines += [line(r) for r in cells[1:]]
    return "\n".join(lines)


def source_state() -> dict[str, Any]:
    """The git commit of the working tree and the files of ``rnngraph/`` that differ from it."""

    def git(*args: str) -> str:
        try:
            out = subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return out.stdout.rstrip()

    changed = git("status", "--porcelain", "--", "rnngraph")
    return {
        "commit": git("rev-parse", "HEAD") or None,
        "rnngraph_changes": changed.splitlines() if changed else [],
    }


def machine() -> dict[str, Any]:
    """Date, CPU, core count, library versions and source state, for the results files."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            names = [ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:  # pragma: no cover - not Linux
        pass
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        **source_state(),
    }


def run_record(argv: Sequence[str] | None, **fields: Any) -> dict[str, Any]:
    """The head of a script's results file: the command line that reproduces it, the
    machine (see :func:`machine`), then ``fields``."""
    command = " ".join([Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)])
    return {"command": command, "machine": machine(), **fields}


def peer_python(name: str) -> Path:
    """The interpreter of peer ``name``; exits with a hint when its venv is missing."""
    exe = PEERS_DIR / name / "bin" / "python"
    if not exe.exists():
        sys.exit(
            f"{exe} is missing: create it with `make peers PEERS={name}` "
            f"(or `bash benchmarks/peers/setup.sh {name}`)"
        )
    return exe


def run_peer(name: str, script: Path, args: Sequence[str], timeout: float = 1800.0) -> None:
    """Run ``script`` with peer ``name``'s interpreter on one thread; its stdout and stderr
    pass through. Raises ``RuntimeError`` if it fails."""
    env = {**os.environ, **THREAD_ENV}
    cmd = [str(peer_python(name)), str(script), *map(str, args)]
    proc = subprocess.run(cmd, env=env, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"peer {name!r} failed (exit {proc.returncode}): {' '.join(cmd)}")


class Peer:
    """A peer script kept running in its venv (one thread), driven line by line.

    The script prints ``ready`` on stdout once set up, then answers every request line
    read from stdin with one line (``done ...``) and exits on ``quit``; its stderr passes
    through. Requests interleave with rnngraph's own work, so that both sides are timed
    back to back on a machine whose load changes. Use as a context manager.
    """

    def __init__(self, name: str, script: Path, args: Sequence[str]) -> None:
        env = {**os.environ, **THREAD_ENV}
        self.cmd = [str(peer_python(name)), str(script), *map(str, args)]
        self.name = name
        self.proc = subprocess.Popen(
            self.cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self._expect("ready")

    def _expect(self, answer: str) -> None:
        line = self.proc.stdout.readline()
        if line.strip() != answer:
            self.proc.kill()
            code = self.proc.wait()
            raise RuntimeError(
                f"peer {self.name!r} answered {line.strip()!r} instead of {answer!r} "
                f"(exit {code}): {' '.join(self.cmd)}"
            )

    def ask(self, request: str, answer: str) -> None:
        """Send one request line and wait for its answer line."""
        self.proc.stdin.write(request + "\n")
        self.proc.stdin.flush()
        self._expect(answer)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=60)

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        else:
            self.close()


def jsonable(x: Any) -> Any:
    """``x`` with numpy and torch values as plain Python (non-finite floats as null or "inf")."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray | torch.Tensor):
        return jsonable(x.tolist())
    if isinstance(x, np.generic):
        return jsonable(x.item())
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def write_json(name: str, data: dict[str, Any]) -> Path:
    """Write ``data`` to ``benchmarks/results/<name>`` (git-ignored) and return the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / name
    path.write_text(json.dumps(jsonable(data), indent=2) + "\n")
    return path
