"""Spiking QIF networks with and without spike-frequency adaptation driven by sine waves
(RectiPy's QIF examples, reduced): membrane potentials, traces and spike counts."""

import sys
import time

import numpy as np
import torch
from rectipy import Network, random_connectivity

T0 = time.perf_counter()
np.random.seed(3)
torch.manual_seed(3)
N, dt, steps = 20, 1e-3, 3000
t = np.arange(steps) * dt
inp = np.zeros((steps, N))
for n, amp, freq in zip([2, 4, 7], [10.0, 15.0, 12.0], [0.5, 0.25, 1.0], strict=True):
    inp[:, n] = np.sin(2 * np.pi * freq * t) * amp
out = {}
for name in ("qif", "qif_sfa"):
    J = random_connectivity(N, N, 0.3, normalize=True) * 15.0
    net = Network(dt, device="cpu")
    net.add_diffeq_node(
        "qif",
        f"neuron_model_templates.spiking_neurons.qif.{name}",
        weights=J,
        source_var="s",
        target_var="s_in",
        input_var="I_ext",
        output_var="s",
        spike_var="spike",
        reset_var="v",
        op=f"{name}_op",
        node_vars={"eta": np.random.uniform(-2.0, 3.0, size=N), "tau_s": 0.8},
        spike_threshold=50.0,
        spike_reset=-50.0,
    )
    obs = net.run(inp, record_vars=[("qif", "v", False)], sampling_steps=1, verbose=False)
    out[f"{name}_s"] = obs.to_numpy("out")
    out[f"{name}_v"] = obs.to_numpy(("qif", "v"))
    out[f"{name}_spikes"] = np.sum(out[f"{name}_v"] == -50.0, axis=0)  # v is reset to -50
    obs2 = net.run(
        inp[:1000], record_vars=[("qif", "v", True)], sampling_steps=7, cutoff=5, verbose=False
    )
    out[f"{name}_mean_v"] = obs2.to_numpy(("qif", "v"))
    out[f"{name}_avg_s"] = obs2.to_numpy("out")
np.savez(sys.argv[1], time_s=time.perf_counter() - T0, **out)
