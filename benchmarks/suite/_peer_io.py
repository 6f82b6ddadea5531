"""The request/result protocol of the peer scripts (imported inside the peers' venvs).

``peer_<name>.py REQUEST.json RESULT.json``: the request names the task and a scratch folder
(``tmp``) holding ``arrays.npz``, if any; the script writes its JSON result and may leave
arrays in ``tmp/result.npz``. A script whose library does not import exits with
:data:`IMPORT_FAILED` in its message, and the runner reports that peer as missing.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

IMPORT_FAILED = "PEER-IMPORT-FAILED"


def import_failed(err: BaseException) -> None:
    sys.exit(f"{IMPORT_FAILED}: {type(err).__name__}: {err}")


def serve(tasks: dict[str, Callable[[dict, dict], dict]], version: str) -> None:
    """Run the task named in the request of ``sys.argv[1]``; write ``sys.argv[2]``."""
    import numpy as np

    request, result = sys.argv[1], sys.argv[2]
    req: dict[str, Any] = json.loads(Path(request).read_text())
    npz = Path(req["tmp"]) / "arrays.npz"
    arrays = dict(np.load(npz)) if npz.exists() else {}
    t0 = time.perf_counter()
    res = tasks[req["task"]](req, arrays)
    res.update(version=version, wall_s=time.perf_counter() - t0)
    Path(result).write_text(json.dumps(res))
