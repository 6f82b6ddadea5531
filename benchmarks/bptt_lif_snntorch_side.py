"""snnTorch's side of ``bptt_lif.py``; runs inside ``.peers/snntorch``.

    .peers/snntorch/bin/python benchmarks/bptt_lif_snntorch_side.py IN.npz OUT.npz

``nn.Linear(C, H, bias=False) -> snn.Leaky(beta)`` (or ``snn.RLeaky(beta,
linear_features=H)`` with ``recurrent``) ``-> nn.Linear(H, K, bias=False) -> snn.Leaky(beta)``
with the given weights, float32, one thread, stepped in a Python loop as snnTorch's tutorials
do; one update is the forward pass over ``x`` ``(B, T, C)``, the loss ``mean((counts -
target)^2)`` of the output spike counts, ``backward`` and an SGD step. Writes the losses of
the timed updates and the seconds of each.
"""

import sys
import time

import numpy as np
import snntorch as snn
import torch

torch.set_num_threads(1)


def main(src: str, dst: str) -> None:
    z = np.load(src)
    x, target = torch.as_tensor(z["x"]), torch.as_tensor(z["target"])
    beta, recurrent, repeats = float(z["beta"]), bool(z["recurrent"]), int(z["repeats"])
    w1, w2 = torch.as_tensor(z["W1"]), torch.as_tensor(z["W2"])
    fc1 = torch.nn.Linear(w1.shape[1], w1.shape[0], bias=False)
    fc2 = torch.nn.Linear(w2.shape[1], w2.shape[0], bias=False)
    with torch.no_grad():
        fc1.weight.copy_(w1)
        fc2.weight.copy_(w2)
    if recurrent:
        lif1 = snn.RLeaky(beta=beta, linear_features=w1.shape[0])
        with torch.no_grad():
            lif1.recurrent.weight.copy_(torch.as_tensor(z["W_rec"]))
            lif1.recurrent.bias.zero_()
    else:
        lif1 = snn.Leaky(beta=beta)
    lif2 = snn.Leaky(beta=beta)
    params = [*fc1.parameters(), *fc2.parameters(), *lif1.parameters()]
    opt = torch.optim.SGD(params, lr=float(z["lr"]))

    def update() -> float:
        if recurrent:
            spk1, mem1 = lif1.init_rleaky()
        else:
            mem1 = lif1.init_leaky()
        mem2 = lif2.init_leaky()
        counts = 0.0
        for t in range(x.shape[1]):
            cur = fc1(x[:, t])
            if recurrent:
                spk1, mem1 = lif1(cur, spk1, mem1)
            else:
                spk1, mem1 = lif1(cur, mem1)
            spk2, mem2 = lif2(fc2(spk1), mem2)
            counts = counts + spk2
        loss = ((counts - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    losses, seconds = [update()], []  # the warm-up's loss: before any step
    for _ in range(repeats):
        t0 = time.perf_counter()
        losses.append(update())
        seconds.append(time.perf_counter() - t0)
    np.savez(dst, losses=np.array(losses), seconds=np.array(seconds))


if __name__ == "__main__":
    main(*sys.argv[1:3])
