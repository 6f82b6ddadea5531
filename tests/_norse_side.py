"""Norse's side of ``test_peer_norse.py``; runs inside ``.peers/norse``.

    .peers/norse/bin/python tests/_norse_side.py TASK IN.npz OUT.npz

In float64, on inputs ``x`` ``(B, T, C)``, Norse's default ``LIFParameters()`` and
``dt``, from Norse's own initial state. The loss is ``sum(z * R)`` over every step; the
result holds the spikes ``z`` ``(B, T, n)`` and the gradients of the loss with respect to
``W_in`` (and ``W_rec`` for the recurrent cell).

* ``lif_cell``: ``LIFCell(p, dt)`` fed the currents ``x[:, t] @ W_in.T``;
* ``lif_recurrent_cell``: ``LIFRecurrentCell(C, n, p, input_weights=W_in,
  recurrent_weights=W_rec, autapses=autapses, dt=dt)`` fed ``x[:, t]``.
"""

import sys

import numpy as np
import torch
from norse.torch import LIFCell, LIFParameters, LIFRecurrentCell

F64 = torch.float64


def main(task: str, src: str, dst: str) -> None:
    z = np.load(src)
    x = torch.as_tensor(z["x"], dtype=F64)
    w_in = torch.nn.Parameter(torch.as_tensor(z["W_in"], dtype=F64))
    r = torch.as_tensor(z["R"], dtype=F64)
    dt = float(z["dt"])
    n, c = w_in.shape
    if task == "lif_cell":
        cell = LIFCell(LIFParameters(), dt=dt)
        step = lambda xt, s: cell(xt @ w_in.T, s)  # noqa: E731
    else:
        w_rec = torch.nn.Parameter(torch.as_tensor(z["W_rec"], dtype=F64))
        cell = LIFRecurrentCell(
            c,
            n,
            LIFParameters(),
            input_weights=w_in,
            recurrent_weights=w_rec,
            autapses=bool(z["autapses"]),
            dt=dt,
        )
        step = cell
    state, spikes = None, []
    for t in range(x.shape[1]):
        out, state = step(x[:, t], state)
        spikes.append(out)
    spk = torch.stack(spikes, 1)
    (spk * r).sum().backward()
    res = {"spk": spk.detach().numpy(), "grad_W_in": w_in.grad.numpy()}
    if task != "lif_cell":
        res["grad_W_rec"] = w_rec.grad.numpy()
    np.savez(dst, **res)


if __name__ == "__main__":
    main(*sys.argv[1:4])
