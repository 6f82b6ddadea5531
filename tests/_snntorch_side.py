"""snnTorch's side of ``test_peer_snntorch.py``; runs inside ``.peers/snntorch``.

    .peers/snntorch/bin/python tests/_snntorch_side.py TASK IN.npz OUT.npz

Every task runs in float64 (``beta``, ``alpha`` and ``threshold`` given to snnTorch as
float64 tensors) on inputs ``x`` ``(B, T, C)`` through input weights ``W_in`` ``(n, C)``
(the current of step t is ``x[:, t] @ W_in.T``), from snnTorch's zero state, as its
tutorials loop over time. The loss is ``sum(spk * R)`` over every step; the result holds
the spikes ``spk`` ``(B, T, n)`` and the gradients of the loss with respect to ``W_in``
(and ``W_rec`` for ``rleaky``).

* ``leaky``: ``snn.Leaky(beta, threshold, spike_grad, reset_mechanism)``;
* ``rleaky``: ``snn.RLeaky(beta, linear_features=n, ...)`` with ``recurrent.weight = W_rec``
  and ``recurrent.bias = b_rec``;
* ``synaptic``: ``snn.Synaptic(alpha, beta, ...)``.

``spike_grad`` is ``atan`` or ``fast_sigmoid`` with its parameter ``grad_param`` (alpha or
slope).
"""

import sys

import numpy as np
import snntorch as snn
import torch
from snntorch import surrogate

F64 = torch.float64


def main(task: str, src: str, dst: str) -> None:
    z = np.load(src)
    x = torch.as_tensor(z["x"], dtype=F64)
    w_in = torch.as_tensor(z["W_in"], dtype=F64).requires_grad_(True)
    r = torch.as_tensor(z["R"], dtype=F64)
    name, param = str(z["spike_grad"]), float(z["grad_param"])
    grad = surrogate.atan(alpha=param) if name == "atan" else surrogate.fast_sigmoid(slope=param)
    common = {
        "beta": torch.tensor(float(z["beta"]), dtype=F64),
        "threshold": torch.tensor(float(z["threshold"]), dtype=F64),
        "spike_grad": grad,
        "reset_mechanism": str(z["reset"]),
    }
    n, steps = w_in.shape[0], x.shape[1]
    if task == "leaky":
        lif = snn.Leaky(**common)
        state = (lif.init_leaky(),)
    elif task == "synaptic":
        lif = snn.Synaptic(alpha=torch.tensor(float(z["alpha"]), dtype=F64), **common)
        state = lif.init_synaptic()
    else:
        lif = snn.RLeaky(linear_features=n, **common).double()
        with torch.no_grad():
            lif.recurrent.weight.copy_(torch.as_tensor(z["W_rec"]))
            lif.recurrent.bias.copy_(torch.as_tensor(z["b_rec"]))
        spk, mem = lif.init_rleaky()
        state = (spk, mem)
    spikes = []
    for t in range(steps):
        cur = x[:, t] @ w_in.T
        out = lif(cur, *state)
        spikes.append(out[0])
        # snnTorch's spikes are float32 whatever the input; its float64 recurrence needs them
        # as float64 (0 and 1 exactly, the gradient passing through)
        state = (out[0].double(), out[1]) if task == "rleaky" else out[1:]
    spk = torch.stack(spikes, 1)
    (spk * r).sum().backward()
    res = {"spk": spk.detach().numpy(), "grad_W_in": w_in.grad.numpy()}
    if task == "rleaky":
        res["grad_W_rec"] = lif.recurrent.weight.grad.numpy()
    np.savez(dst, **res)


if __name__ == "__main__":
    main(*sys.argv[1:4])
