"""Per-step timing, shared by rnngraph's side and the peer scripts (standard library only).

A measurement times ``run(T)``, a function that performs one ``T``-step run, and reports the
wall time divided by ``T`` (the process's CPU time goes into the results too: on a busy
machine wall time also counts the time other processes held the core). Each implementation
gets a warm-up run first, then calibration runs that pick ``T`` so that one timed run lasts
about ``target_s`` (within ``min_steps`` and the steps available), then ``repeats`` timed
runs. Several implementations of the same
workload are timed round-robin (one run of each in turn), so that a change of machine load
during the measurement hits all of them alike. The garbage collector is off while a run is
timed, as in ``timeit`` (one full collection before each measurement).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

Run = Callable[[int], Any]


def _timed(run: Run, steps: int) -> tuple[float, float]:
    """Wall and CPU seconds of ``run(steps)``."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        run(steps)
        return time.perf_counter() - t0, time.process_time() - c0
    finally:
        if enabled:
            gc.enable()


def calibrate(run: Run, max_steps: int, target_s: float, min_steps: int) -> int:
    """Warm up ``run`` and return the number of steps of one timed run.

    Two probes: 20 steps give a first estimate (inflated by the per-run overhead), a run of
    about a tenth of the target the second one.
    """
    lo, hi = min(min_steps, max_steps), max_steps
    steps = max(1, min(max_steps, 20))
    run(steps)  # warm-up: first-call costs (code generation, caches, allocations)
    for frac in (0.1, 1.0):
        per_step = max(_timed(run, steps)[0] / steps, 1e-9)
        steps = int(max(lo, min(hi, round(frac * target_s / per_step))))
    return steps


def measure(
    runs: Mapping[str, tuple[Run, int]],
    repeats: int,
    target_s: float,
    min_steps: int,
) -> dict[str, dict[str, Any]]:
    """Time each ``name: (run, max_steps)`` round-robin; microseconds per step.

    Returns ``{name: {"us_median", "us_min", "cpu_us_median", "steps", "repeats",
    "samples_us"}}`` (wall time, and the process's CPU time for comparison); a run that
    raises is reported as ``{"error": message}`` and left out of later rounds.
    """
    gc.collect()  # once: a full collection costs ~0.2 s with torch, scipy and networkx loaded
    steps: dict[str, int] = {}
    out: dict[str, dict[str, Any]] = {}
    for name, (run, max_steps) in runs.items():
        try:
            steps[name] = calibrate(run, max_steps, target_s, min_steps)
        except Exception as err:  # a failing implementation is reported, not fatal
            out[name] = {"error": f"{type(err).__name__}: {err}"}
    samples: dict[str, list[float]] = {name: [] for name in steps}
    cpu: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, n in steps.items():
            if name in out:
                continue
            try:
                wall, used = _timed(runs[name][0], n)
            except Exception as err:
                out[name] = {"error": f"{type(err).__name__}: {err}"}
                continue
            samples[name].append(1e6 * wall / n)
            cpu[name].append(1e6 * used / n)
    for name, s in samples.items():
        if name not in out:
            out[name] = {
                "us_median": statistics.median(s),
                "us_min": min(s),
                "cpu_us_median": statistics.median(cpu[name]),
                "steps": steps[name],
                "repeats": len(s),
                "samples_us": s,
            }
    return out


def per_step(t: dict[str, Any], steps: int) -> dict[str, Any]:
    """A :func:`time_calls` result of whole ``steps``-step runs in microseconds per step."""
    return {
        "us_median": 1e6 * t["s_median"] / steps,
        "us_min": 1e6 * t["s_min"] / steps,
        "cpu_us_median": 1e6 * t["cpu_s_median"] / steps,
        "steps": steps,
        "repeats": t["repeats"],
        "samples_us": [1e6 * s / steps for s in t["samples_s"]],
    }


def time_calls(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> dict[str, Any]:
    """Wall seconds of whole calls of ``fn`` (after ``warmup`` untimed calls)."""
    return time_calls_together({"fn": fn}, repeats, warmup)["fn"]


def time_calls_together(
    fns: Mapping[str, Callable[[], Any]], repeats: int, warmup: int = 1
) -> dict[str, dict[str, Any]]:
    """Wall seconds of whole calls of each function of ``fns``, round-robin (one call of
    each in turn, ``repeats`` rounds, after ``warmup`` untimed rounds)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    gc.collect()
    s: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            s[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    return {
        k: {
            "s_median": statistics.median(s[k]),
            "s_min": min(s[k]),
            "cpu_s_median": statistics.median(cpu[k]),
            "repeats": repeats,
            "samples_s": s[k],
        }
        for k in fns
    }
