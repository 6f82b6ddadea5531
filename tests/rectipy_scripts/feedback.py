"""RectiPy's FeedbackNetwork: a rate chain with feedback from a later population into an
earlier one and from an earlier into a later one, and a spiking population fed back into
and by a rate population; outputs, recorded states and a gradient-trained feedback edge."""

import sys
import time

import numpy as np
import torch
from rectipy import FeedbackNetwork

T0 = time.perf_counter()
np.random.seed(23)
torch.manual_seed(23)
LI = "neuron_model_templates.rate_neurons.leaky_integrator.tanh"
QIF = "neuron_model_templates.spiking_neurons.qif.qif"
out = {}


def li(net, label, n):
    net.add_diffeq_node(
        label, LI, weights=np.random.randn(n, n) * 0.5, source_var="tanh_op/r",
        target_var="li_op/r_in", input_var="li_op/I_ext", output_var="li_op/v",
        node_vars={"all/li_op/v": np.random.randn(n), "all/li_op/tau": 0.5},
    )  # fmt: skip


net = FeedbackNetwork(dt=1e-2)
net.add_func_node("inp", 2, activation_function="identity")
li(net, "a", 5)
li(net, "b", 4)
net.add_func_node("out", 3, activation_function="tanh")
net.add_edge("inp", "a", weights=np.random.randn(5, 2))
net.add_edge("a", "b", weights=np.random.randn(4, 5))
net.add_edge("b", "out", weights=np.random.randn(3, 4))
net.add_edge("b", "a", weights=np.random.randn(5, 4), feedback=True)
x = np.random.randn(200, 2)
obs = net.run(x, record_vars=[("a", "li_op/v", False), ("b", "li_op/v", False)], verbose=False)
out["rate_out"] = obs.to_numpy("out")
out["rate_a"] = obs.to_numpy(("a", "li_op/v"))
out["rate_b"] = obs.to_numpy(("b", "li_op/v"))

net = FeedbackNetwork(dt=1e-3)
net.add_func_node("inp", 4, activation_function="identity")
net.add_diffeq_node(
    "q", QIF, weights=np.random.rand(4, 4) * 10.0, source_var="s", target_var="s_in",
    input_var="I_ext", output_var="s", spike_var="spike", reset_var="v", op="qif_op",
)  # fmt: skip
li(net, "r", 3)
net.add_func_node("out", 2, activation_function="identity")
net.add_edge("inp", "q", weights=np.eye(4) * 8.0)
net.add_edge("q", "r", weights=np.random.randn(3, 4))
net.add_edge("r", "out", weights=np.random.randn(2, 3))
net.add_edge("r", "q", weights=np.random.randn(4, 3) * 5.0, feedback=True)
net.add_edge("q", "out", weights=np.random.randn(2, 4), feedback=True)  # from a spiking node
drive = np.abs(np.random.randn(600, 4)) * 3.0
obs = net.run(drive, record_vars=[("q", "qif_op/v", False), ("r", "li_op/v", False)], verbose=False)
out["spike_out"] = obs.to_numpy("out")
out["spike_qv"] = obs.to_numpy(("q", "qif_op/v"))
out["spike_rv"] = obs.to_numpy(("r", "li_op/v"))
out["spikes"] = np.sum(out["spike_qv"] == -100.0, axis=0)
# BPTT of a population's time constants and of its feedback edge (RectiPy yields the
# parameters of a node on a feedback edge twice: an optimiser steps them twice per update)
net = FeedbackNetwork(dt=1e-2)
net.add_func_node("inp", 2, activation_function="identity")
li(net, "c", 4)
net.get_node("c")  # noqa: B018 - as a script would look at it
net.pop_node("c")
net.add_diffeq_node(
    "c", LI, weights=np.random.randn(4, 4) * 0.5, source_var="tanh_op/r",
    target_var="li_op/r_in", input_var="li_op/I_ext", output_var="li_op/v",
    train_params=["li_op/tau"], node_vars={"all/li_op/tau": 0.5},
)  # fmt: skip
net.add_func_node("out", 2, activation_function="identity")
net.add_edge("inp", "c", weights=np.random.randn(4, 2))
net.add_edge("c", "out", weights=np.random.randn(2, 4))
net.add_edge("c", "c", weights=np.random.randn(4, 4) * 0.1, train="gd", feedback=True)
y = np.random.randn(200, 2) * 0.3
trained = net.fit_bptt(x, y, update_steps=50, lr=0.05, verbose=False)
out["bptt_loss"] = np.asarray(trained["loss"])
out["bptt_tau"] = net.get_var("c", "li_op/tau").detach().numpy()
out["bptt_fb"] = net.get_edge("c", "c").weights.detach().numpy()
np.savez(sys.argv[1], time_s=time.perf_counter() - T0, **out)
