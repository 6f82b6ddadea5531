"""Two populations from a user's own YAML template file (templates/populations.yaml, read by
its path): an adapting excitatory population with a custom operator driving an inhibitory
one; each coupled within itself, recorded by variable."""

import sys
import time

import numpy as np
import torch
from rectipy import Network, input_connections, random_connectivity

T0 = time.perf_counter()
np.random.seed(13)
torch.manual_seed(13)
Ne, Ni, m, dt, steps = 16, 8, 3, 1e-2, 700
W_ee = random_connectivity(Ne, Ne, 0.25, normalize=True) * 2.0
W_ii = -random_connectivity(Ni, Ni, 0.5, normalize=True)
W_in = input_connections(Ne, m, 0.6, variance=1.5, zero_mean=False)
W_ei = np.random.rand(Ni, Ne) / Ne
t = np.arange(steps) * dt
inp = np.stack([np.sin(2 * np.pi * f * t) for f in (0.2, 0.5, 1.1)], axis=1)
net = Network(dt, device="cpu")
net.add_func_node("inp", m, activation_function="identity")
net.add_diffeq_node(
    "exc",
    "templates/populations/exc",
    weights=W_ee,
    source_var="rate_op/r",
    target_var="adapt_op/r_in",
    input_var="adapt_op/I_ext",
    output_var="adapt_op/v",
    clear=True,
    node_vars={"all/adapt_op/tau": np.random.uniform(1.5, 3.0, size=Ne), "all/rate_op/theta": 0.2},
)
net.add_diffeq_node(
    "inh",
    "templates/populations/inh",
    weights=W_ii,
    source_var="rate_op/r",
    target_var="inh_op/r_in",
    input_var="inh_op/I_ext",
    output_var="inh_op/v",
    clear=True,
)
net.add_edge("inp", "exc", weights=W_in)
net.add_edge("exc", "inh", weights=W_ei)
obs = net.run(
    inp,
    sampling_steps=1,
    verbose=False,
    record_vars=[
        ("exc", "adapt_op/a", False),
        ("exc", "adapt_op/v", False),
        ("inh", "inh_op/v", False),
    ],
)
np.savez(
    sys.argv[1],
    time_s=time.perf_counter() - T0,
    out=obs.to_numpy("out"),
    a=obs.to_numpy(("exc", "adapt_op/a")),
    v=obs.to_numpy(("exc", "adapt_op/v")),
    vi=obs.to_numpy(("inh", "inh_op/v")),
)
