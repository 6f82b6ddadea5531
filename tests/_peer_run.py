"""Running a peer library's side of a test in the peer's own venv, through ``.npz`` files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def peer_python(name: str) -> Path:
    """The interpreter of the peer's venv (``make peers PEERS=name``)."""
    return ROOT / ".peers" / name / "bin" / "python"


def run_side(name: str, task: str, tmp_path: Path, **arrays) -> dict[str, np.ndarray]:
    """Run ``tests/_{name}_side.py TASK IN.npz OUT.npz`` in the peer's venv on ``arrays`` (one
    thread) and return the arrays it wrote."""
    src, dst = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(src, **arrays)
    side = Path(__file__).with_name(f"_{name}_side.py")
    done = subprocess.run(
        [str(peer_python(name)), str(side), task, str(src), str(dst)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    if done.returncode:
        sys.stderr.write(done.stderr)
        raise AssertionError(f"{name}'s side of {task!r} failed: {done.stderr[-2000:]}")
    with np.load(dst) as z:
        return {k: z[k] for k in z.files}
