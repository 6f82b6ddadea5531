"""BPTT of a rate network's coupling towards a target network's output (RectiPy's rate-BPTT
example, reduced; epochs as a list of arrays): loss curve, trained weights, fitted output."""

import sys
import time

import numpy as np
import torch
from rectipy import Network

T0 = time.perf_counter()
np.random.seed(5)
torch.manual_seed(5)
node = "neuron_model_templates.rate_neurons.leaky_integrator.tanh"
N, dt, steps = 12, 1e-2, 400
node_vars = {
    "all/li_op/eta": 2.0,
    "all/li_op/tau": np.random.uniform(1.0, 2.0, size=N),
    "all/li_op/k": 2.0,
}
J0 = np.random.randn(N, N)
J0 /= np.max(np.abs(np.linalg.eigvals(J0)))
target_net = Network(dt, device="cpu")
target_net.add_diffeq_node(
    "tanh",
    node=node,
    weights=J0,
    source_var="tanh_op/r",
    target_var="li_op/r_in",
    input_var="li_op/I_ext",
    output_var="li_op/v",
    clear=True,
    float_precision="float64",
    node_vars=node_vars,
)
inp = np.zeros((steps, 1))
inp[:, 0] = np.sin(2.0 * np.pi * 0.5 * np.arange(steps) * dt) * 5.0
target = target_net.run(inp, sampling_steps=1, verbose=False).to_numpy("out")
J1 = np.random.randn(N, N)
J1 /= np.max(np.abs(np.linalg.eigvals(J1)))
learner = Network(dt, device="cpu")
learner.add_diffeq_node(
    "tanh",
    node=node,
    weights=J1,
    source_var="tanh_op/r",
    target_var="li_op/r_in",
    input_var="li_op/I_ext",
    output_var="li_op/v",
    clear=True,
    float_precision="float64",
    train_params=["weights", "li_op/k"],
    node_vars=node_vars,
)
train = learner.fit_bptt(
    [inp] * 6, [target] * 6, optimizer="rmsprop", retain_graph=True, lr=1e-3, verbose=False
)
fitted = learner.run(inp, sampling_steps=1, verbose=False, enable_grad=False).to_numpy("out")
windowed = learner.fit_bptt(
    inp, target, optimizer="adam", lr=1e-3, update_steps=50, sampling_steps=10, verbose=False
)
np.savez(
    sys.argv[1],
    time_s=time.perf_counter() - T0,
    target=target,
    epoch_loss=np.asarray(train["epoch_loss"]),
    fitted=fitted,
    weights=learner.get_var("tanh", "weights").detach().numpy(),
    k=learner.get_var("tanh", "li_op/k").detach().numpy(),
    window_loss=np.asarray(windowed["loss"]),
    window_out=windowed.to_numpy("out"),
)
