"""Peer libraries, each in its own venv under ``.peers/<name>``, run as subprocesses.

A workload writes its request (a JSON-able dict) and its arrays (an ``.npz``) to a
temporary folder and runs ``benchmarks/suite/peer_<name>.py REQUEST.json RESULT.json`` with
the peer's interpreter on one thread; the script writes its results as JSON (and arrays,
if any, to ``result.npz`` beside the request). A peer whose venv is absent, or whose library
does not import there, is *missing*: the workload still reports it, with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SUITE = Path(__file__).resolve().parent
PEERS_DIR = Path(os.environ.get("PEERS_DIR", ROOT / ".peers"))

#: One BLAS / OpenMP thread in every subprocess, as ``torch.set_num_threads(1)`` on our side.
THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
}

#: peer name -> its label in tables
PEERS = {
    "reservoirpy": "reservoirpy",
    "rectipy": "RectiPy",
    "snntorch": "snnTorch",
    "brian2": "Brian2",
}

#: what a peer script prints when its library does not import (see ``_peer_io.py``)
IMPORT_FAILED = "PEER-IMPORT-FAILED"


class PeerError(RuntimeError):
    """A peer subprocess failed; the message ends with the tail of its output."""


class Peer:
    """One peer: its interpreter, whether it works, and how to run a request in it.

    A peer is *missing* when its venv has no interpreter or when its script reports that
    the library does not import; its version comes with its first result.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.label = PEERS[name]
        self.python = PEERS_DIR / name / "bin" / "python"
        self.version: str | None = None
        self.reason: str | None = None
        if not self.python.exists():
            self.reason = f"no venv at {self.python.parent.parent} (make peers PEERS={name})"

    @property
    def ok(self) -> bool:
        return self.reason is None

    def describe(self) -> str:
        if not self.ok:
            return f"{self.label}: missing ({self.reason})"
        return f"{self.label} {self.version or '(version unknown: no run finished)'}"

    def run(
        self,
        task: str,
        request: dict[str, Any],
        arrays: dict[str, np.ndarray] | None = None,
        timeout: float = 1800.0,
    ) -> dict[str, Any]:
        """Run ``task`` in the peer's venv and return its JSON result (raises ``PeerError``;
        afterwards ``ok`` tells a missing peer from a failed run)."""
        if not self.ok:
            raise PeerError(f"{self.label} is missing: {self.reason}")
        script = SUITE / f"peer_{self.name}.py"
        with tempfile.TemporaryDirectory(prefix=f"bench-{self.name}-") as tmp:
            req, res = Path(tmp) / "request.json", Path(tmp) / "result.json"
            if arrays:
                np.savez(Path(tmp) / "arrays.npz", **arrays)
            req.write_text(json.dumps({"task": task, "tmp": tmp, **request}))
            try:
                proc = subprocess.run(
                    [str(self.python), str(script), str(req), str(res)],
                    env={**os.environ, **THREAD_ENV},
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired as err:
                raise PeerError(f"{self.label} {task}: timed out after {timeout:.0f} s") from err
            except OSError as err:  # the interpreter cannot start: a broken venv
                self.reason = f"{self.python} does not start: {err}"
                raise PeerError(f"{self.label} is missing: {self.reason}") from err
            if IMPORT_FAILED in proc.stderr:
                line = next(ln for ln in proc.stderr.splitlines() if IMPORT_FAILED in ln)
                self.reason = "its venv does not import it: " + line.split(":", 1)[1].strip()
                raise PeerError(f"{self.label} is missing: {self.reason}")
            if proc.returncode != 0 or not res.exists():
                tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
                raise PeerError(f"{self.label} {task}: exit {proc.returncode}\n{tail}")
            out = json.loads(res.read_text())
            self.version = out.get("version", self.version)
            extra = Path(tmp) / "result.npz"
            if extra.exists():  # arrays the peer hands back
                with np.load(extra) as z:
                    out["arrays"] = {k: z[k] for k in z.files}
            return out


class Peers:
    """The known peers, probed once per benchmark run."""

    def __init__(self) -> None:
        self._peers: dict[str, Peer] = {}

    def __getitem__(self, name: str) -> Peer:
        if name not in self._peers:
            self._peers[name] = Peer(name)
        return self._peers[name]

    def probed(self) -> list[Peer]:
        return list(self._peers.values())
