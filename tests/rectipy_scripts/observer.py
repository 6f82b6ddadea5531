"""The Observer interface: a hand-written loop over forward() recording by hand, then runs
recording a variable (averaged over the units, every step and every second step)."""

import importlib.util
import sys
import time

import numpy as np
import torch
from rectipy import Network, Observer

T0 = time.perf_counter()
np.random.seed(11)
torch.manual_seed(11)
N, dt, steps = 6, 1e-3, 800
J = np.random.rand(N, N) * 20.0
net = Network(dt=dt)
net.add_diffeq_node(
    "qif",
    "neuron_model_templates.spiking_neurons.qif.qif",
    weights=J,
    source_var="s",
    target_var="s_in",
    input_var="I_ext",
    output_var="s",
    spike_var="spike",
    reset_var="v",
    op="qif_op",
)
inp = np.zeros((steps, N)) + 3.0
inp[:, 1] += np.sin(np.arange(steps) * dt * 8.0) * 20.0
net.compile()
obs = Observer(net.dt, record_output=True, record_loss=False, record_vars=[("qif", "v", False)])
x = torch.tensor(inp, dtype=torch.float64)
for step in range(200):
    out = net.forward(x[step, :])
    obs.record(step, output=out, loss=0.0, record_vars=[net.get_var("qif", "v")])
obs1 = net.run(inputs=inp, record_vars=[("qif", "v", True)], verbose=False)
obs2 = net.run(inputs=inp, record_vars=[("qif", "v", True)], sampling_steps=2, verbose=False)
obs3 = net.run(
    inputs=inp, record_output=True, record_loss=False, verbose=False, cutoff=10, sampling_steps=3
)
extra = {}
if importlib.util.find_spec("pandas"):  # to_dataframe needs it (an option of both)
    extra["df"] = obs1.to_dataframe(("qif", "v")).to_numpy()
np.savez(
    sys.argv[1],
    time_s=time.perf_counter() - T0,
    **extra,
    hand_out=obs.to_numpy("out"),
    hand_v=obs.to_numpy(("qif", "v")),
    v1=obs1.to_numpy(("qif", "v")),
    v2=obs2.to_numpy(("qif", "v")),
    out3=obs3.to_numpy("out"),
    steps3=np.asarray(obs3["steps"]),
    n1=len(obs1[("qif", "v")]),
)
