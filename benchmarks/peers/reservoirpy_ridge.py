"""reservoirpy's ridge readout on given data; runs inside ``.peers/reservoirpy``.

    .peers/reservoirpy/bin/python benchmarks/peers/reservoirpy_ridge.py IN.npz OUT.npz

``IN.npz`` holds ``X`` ``(m, n)``, ``Y`` ``(m, k)`` and ``alphas``; ``OUT.npz`` receives
``W_<i>`` ``(k, n)`` and ``b_<i>`` ``(k,)`` for each ridge penalty ``alphas[i]``.
"""

import sys

import numpy as np
from reservoirpy.nodes import Ridge

data = np.load(sys.argv[1])
out = {}
for i, alpha in enumerate(data["alphas"]):
    readout = Ridge(ridge=float(alpha))
    readout.fit(data["X"], data["Y"])
    out[f"W_{i}"] = np.asarray(readout.Wout).T
    out[f"b_{i}"] = np.asarray(readout.bias).reshape(-1)
np.savez(sys.argv[2], **out)
