"""A ridge readout of a chaotic tanh network classifying syllable sequences (RectiPy's ridge
example, reduced): washout, one fit per epoch, mean weights, test loss and WTA score."""

import sys
import time

import numpy as np
import torch
from rectipy import Network, input_connections, random_connectivity, wta_score

T0 = time.perf_counter()
np.random.seed(1)
torch.manual_seed(1)
N, p, Delta_in, J, m = 30, 0.2, 2.0, 2.0, 5
signals = [[0, 2, 1], [4, 2, 3], [3, 2, 0]]
k = 3
dt = 1e-2
syll = 100
n_reps = 4
n_epochs = 3
steps = syll * 3 * n_reps
inp = np.zeros((n_epochs, steps, m))
targets = np.zeros((n_epochs, steps, k))
for e in range(n_epochs):
    for rep in range(n_reps):
        c = np.random.choice(k)
        for i, s in enumerate(signals[c]):
            inp[e, (rep * 3 + i) * syll : (rep * 3 + i + 1) * syll, s] = 1.0
        targets[e, rep * 3 * syll : (rep + 1) * 3 * syll, c] = 1.0
W = random_connectivity(N, N, p, normalize=True)
W_in = input_connections(N, m, 0.5, variance=Delta_in, zero_mean=True)
net = Network(dt=dt, device="cpu")
net.add_diffeq_node(
    "tanh",
    "neuron_model_templates.rate_neurons.leaky_integrator.tanh",
    weights=W * J,
    source_var="tanh_op/r",
    target_var="li_op/r_in",
    input_var="li_op/I_ext",
    output_var="li_op/v",
    float_precision="float64",
    clear=True,
)
net.set_var("tanh", "li_op/v", torch.tensor(np.random.randn(N)))
net.run(np.zeros((200, 1)), verbose=False, sampling_steps=201)
net.add_func_node("inp", m, activation_function="identity")
net.add_edge("inp", "tanh", weights=W_in)
net.compile()
coeffs = []
for j in range(n_epochs - 1):
    obs = net.fit_ridge(
        inputs=inp[j],
        targets=targets[j],
        sampling_steps=1,
        verbose=False,
        add_readout_node=False,
        alpha=1e-4,
    )
    coeffs.append(obs.to_numpy("w_out"))
w_out = np.mean(coeffs, axis=0)
net.add_func_node("readout", k, activation_function="identity")
net.add_edge("tanh", "readout", weights=w_out)
net.compile()
obs, test_loss = net.test(
    inp[-1], targets[-1], loss="mse", record_output=True, sampling_steps=1, verbose=False
)
out = obs.to_numpy("out")
np.savez(
    sys.argv[1],
    time_s=time.perf_counter() - T0,
    out=out,
    loss=test_loss,
    wta=wta_score(out, targets[-1]),
    w=np.asarray(coeffs),
    v=net.get_var("tanh", "li_op/v").detach().numpy(),
)
