"""Corners of RectiPy's semantics: an RLS edge without weights (zeros), square edges drawn
without weights (oriented as given ones), a spiking network's state saved and restored, the
observer fit_bptt returns for a list of epochs, inputs linked only to output(...) variables,
node_vars for one unit, negative and fractional cutoffs."""

import sys
import time

import numpy as np
import torch
from rectipy import Network

T0 = time.perf_counter()
np.random.seed(19)
torch.manual_seed(19)
LI = "neuron_model_templates.rate_neurons.leaky_integrator.tanh"
QIF = "neuron_model_templates.spiking_neurons.qif.qif"
out = {}


def li(n, **kwargs):
    net = Network(1e-2, device="cpu")
    net.add_diffeq_node(
        "rnn", LI, weights=np.random.randn(n, n), source_var="tanh_op/r",
        target_var="li_op/r_in", input_var="li_op/I_ext", output_var="li_op/v", **kwargs,
    )  # fmt: skip
    return net


# an RLS readout without weights, a square edge drawn without weights
net = li(4, node_vars={"all/li_op/v": np.random.randn(4), "n2/li_op/tau": 0.5})
net.add_func_node("sq", 4, activation_function="tanh")
net.add_edge("rnn", "sq")
net.add_func_node("out", 1, activation_function="identity")
net.add_edge("sq", "out", train="rls")
x = np.random.randn(60, 1)
obs = net.fit_rls(x, np.sin(np.arange(60) * 0.1)[:, None], sampling_steps=1, verbose=False)
out["rls_out"] = obs.to_numpy("out")
out["rls_w"] = net.get_edge("sq", "out").weights.numpy()
out["sq_w"] = net.get_edge("rnn", "sq").weights.numpy()
for cutoff in (-2, 2.5):
    o = net.run(x[:12], cutoff=cutoff, sampling_steps=2, verbose=False)
    out[f"cut_{cutoff}"] = o.to_numpy("out")
    out[f"cut_steps_{cutoff}"] = np.asarray(o["steps"])

# a spiking network's state, saved and restored
net = Network(1e-3, device="cpu")
net.add_diffeq_node(
    "qif", QIF, weights=np.random.rand(5, 5) * 10.0, source_var="s", target_var="s_in",
    input_var="I_ext", output_var="s", spike_var="spike", reset_var="v", op="qif_op",
)  # fmt: skip
drive = np.random.rand(300, 5) * 20.0
net.run(drive, verbose=False)
saved = net.state
first = net.run(drive, verbose=False, record_vars=[("qif", "v", False)])
net.reset(saved)
again = net.run(drive, verbose=False, record_vars=[("qif", "v", False)])
out["spike_first"] = first.to_numpy(("qif", "v"))
out["spike_again"] = again.to_numpy(("qif", "v"))

# what fit_bptt returns for a list of epochs
net = li(3, train_params=["weights"])
target = np.random.randn(30, 3) * 0.1
res = net.fit_bptt([x[:30]] * 3, [target] * 3, optimizer="sgd", lr=1e-2, verbose=False)
out["bptt_out"] = res.to_numpy("out")
out["bptt_epoch_loss"] = np.asarray(res["epoch_loss"])
out["bptt_steps"] = np.asarray(res["steps"])

# inputs linked only to output(...) variables
net = Network(1e-2, device="cpu")
net.add_diffeq_node(
    "p", "templates/links/linked", input_var="op_a/I_ext", output_var="op_b/w", N=3
)  # fmt: skip
o = net.run(np.ones((40, 1)), verbose=False, record_vars=[("p", "op_a/u", False)])
out["link_w"] = o.to_numpy("out")
out["link_u"] = o.to_numpy(("p", "op_a/u"))
np.savez(sys.argv[1], time_s=time.perf_counter() - T0, **out)
