"""Online RLS training of a readout on a rate reservoir (RectiPy's train="rls" edge),
then a test run with the trained weights: outputs, losses and weights."""

import sys
import time

import numpy as np
import torch
from rectipy import Network, input_connections, random_connectivity

T0 = time.perf_counter()
np.random.seed(7)
torch.manual_seed(7)
N, m, k, dt, steps = 25, 2, 1, 1e-2, 600
W = random_connectivity(N, N, 0.2, normalize=True) * 1.5
W_in = input_connections(N, m, 0.5, variance=1.0, zero_mean=True)
t = np.arange(steps) * dt
inp = np.stack([np.sin(2 * np.pi * 0.3 * t), np.cos(2 * np.pi * 0.7 * t)], axis=1)
target = (np.sin(2 * np.pi * 0.3 * t) * np.cos(2 * np.pi * 0.7 * t))[:, None]
net = Network(dt, device="cpu")
net.add_func_node("inp", m, activation_function="identity")
net.add_diffeq_node(
    "rnn",
    "neuron_model_templates.rate_neurons.leaky_integrator.tanh",
    weights=W,
    source_var="tanh_op/r",
    target_var="li_op/r_in",
    input_var="li_op/I_ext",
    output_var="li_op/v",
    node_vars={"all/li_op/tau": 2.0, "all/li_op/v": np.random.randn(N)},
)
net.add_func_node("out", k, activation_function="identity")
net.add_edge("inp", "rnn", weights=W_in)
net.add_edge("rnn", "out", weights=np.zeros((k, N)), train="rls", alpha=0.5)
obs = net.fit_rls(
    inp,
    target,
    update_steps=3,
    sampling_steps=5,
    verbose=False,
    record_output=True,
    record_loss=True,
)
obs2, loss = net.test(inp, target, loss="mse", sampling_steps=1, verbose=False)
np.savez(
    sys.argv[1],
    time_s=time.perf_counter() - T0,
    out=obs.to_numpy("out"),
    loss=obs.to_numpy("loss"),
    test=obs2.to_numpy("out"),
    test_loss=loss,
    w=net.get_edge("rnn", "out").weights.numpy(),
    P=net.get_edge("rnn", "out").P.numpy(),
    steps=np.asarray(obs["steps"]),
)
