"""Compare rnngraph.datasets with reservoirpy 0.4.2's generators, sample by sample.

Run with the project's interpreter after ``bash benchmarks/peers/setup.sh reservoirpy``:

    .venv/bin/python benchmarks/peers/check_reservoirpy_datasets.py

reservoirpy runs in its own venv (``.peers/reservoirpy``) and hands its series over in an
``.npz`` file. Prints the largest absolute difference per case; exits 1 if any is nonzero.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from rnngraph.datasets import mackey_glass, narma

ROOT = Path(__file__).resolve().parents[2]
PEER_PYTHON = ROOT / ".peers" / "reservoirpy" / "bin" / "python"

# (name, reservoirpy call, rnngraph call): both evaluated with `np` and the generators in scope
CASES = [
    ("mg default", "mackey_glass(10000)", "mackey_glass(10000)"),
    ("mg seed=0", "mackey_glass(5000, seed=0)", "mackey_glass(5000, seed=0)"),
    ("mg seed=1234", "mackey_glass(5000, seed=1234)", "mackey_glass(5000, seed=1234)"),
    ("mg tau=30", "mackey_glass(3000, tau=30, seed=3)", "mackey_glass(3000, tau=30, seed=3)"),
    ("mg h=0.5", "mackey_glass(3000, h=0.5, seed=3)", "mackey_glass(3000, h=0.5, seed=3)"),
    (
        "mg history",
        "mackey_glass(3000, history=np.linspace(0.5, 1.0, 40))",
        "mackey_glass(3000, history=np.linspace(0.5, 1.0, 40))",
    ),
    (
        "mg Generator",
        "mackey_glass(3000, seed=np.random.default_rng(7))",
        "mackey_glass(3000, seed=np.random.default_rng(7))",
    ),
    (
        "narma-10",
        "narma(2000, order=10, a1=0.3, a2=0.05, b=1.5, c=0.1, seed=11)[1]",
        "narma(2000, order=10, seed=11, convention='reservoirpy')[1]",
    ),
    (
        "narma-30",
        "narma(2000)[1]",
        "narma(2000, order=30, a1=0.2, a2=0.04, c=0.001, convention='reservoirpy')[1]",
    ),
]

PEER_SCRIPT = """
import sys
import numpy as np
from reservoirpy.datasets import mackey_glass, narma
calls = sys.argv[2:]
np.savez(sys.argv[1], *[eval(c) for c in calls])
"""


def main() -> int:
    if not PEER_PYTHON.exists():
        print(f"{PEER_PYTHON} is missing: run `bash benchmarks/peers/setup.sh reservoirpy`")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "reservoirpy.npz"
        calls = [peer for _, peer, _ in CASES]
        subprocess.run([str(PEER_PYTHON), "-c", PEER_SCRIPT, str(out), *calls], check=True)
        ref = np.load(out)
        worst = 0.0
        for i, (name, _peer, ours) in enumerate(CASES):
            a = ref[f"arr_{i}"]
            b = eval(ours, {"np": np, "mackey_glass": mackey_glass, "narma": narma})
            diff = float(np.max(np.abs(a - b))) if a.shape == b.shape else float("inf")
            worst = max(worst, diff)
            print(f"{name:14s} {str(a.shape):12s} max |rnngraph - reservoirpy| = {diff:.3e}")
    print(f"largest difference: {worst:.3e}")
    return 0 if worst == 0.0 else 1


if __name__ == "__main__":
    sys.exit(main())
