"""RectiPy's other spiking templates: leaky integrate-and-fire (a trace with an external
input of its own) and Izhikevich units (``ik``, adaptation by the population means ``iku``,
a bi-exponential synapse ``ik_biexp``), each driven and coupled within itself."""

import sys
import time

import numpy as np
import torch
from rectipy import Network, random_connectivity

T0 = time.perf_counter()
np.random.seed(17)
torch.manual_seed(17)
out = {}
N, steps = 12, 1500
cases = {
    "lif": (1e-2, dict(spike_threshold=1.0, spike_reset=-0.5), "lif_op", 8.0, 0.5),
    "ik": (5e-2, dict(spike_threshold=40.0, spike_reset=-60.0), "ik_op", 60.0, 400.0),
    "iku": (5e-2, dict(spike_threshold=40.0, spike_reset=-60.0), "iku_op", 60.0, 400.0),
    "ik_biexp": (5e-2, dict(spike_threshold=40.0, spike_reset=-60.0), "ik_biexp_op", 60.0, 400.0),
}
for name, (dt, spiking, op, gain, drive) in cases.items():
    family = "lif" if name == "lif" else "ik"
    J = random_connectivity(N, N, 0.4, normalize=True) * gain
    net = Network(dt, device="cpu")
    net.add_diffeq_node(
        "pop",
        f"neuron_model_templates.spiking_neurons.{family}.{name}",
        weights=J,
        source_var="s",
        target_var="s_in",
        input_var="I_ext",
        output_var="s",
        spike_var="spike",
        reset_var="v",
        op=op,
        **spiking,
    )
    inp = np.random.uniform(0.0, drive, size=(steps, N))
    obs = net.run(inp, record_vars=[("pop", "v", False)], sampling_steps=1, verbose=False)
    v = obs.to_numpy(("pop", "v"))
    out[f"{name}_s"] = obs.to_numpy("out")
    out[f"{name}_v"] = v
    out[f"{name}_spikes"] = np.sum(v == spiking["spike_reset"], axis=0)
np.savez(sys.argv[1], time_s=time.perf_counter() - T0, **out)
