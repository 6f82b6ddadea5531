"""NEST 3.10's side of the e-prop pattern-generation comparison (run inside ``.peers/nest``).

    .peers/nest/bin/python benchmarks/peers/nest_eprop_sine.py OUT.npz [--iterations N]
        [--seed S] [--tau-m 30] [--tau-out 30] [--c-reg 300] [--f-target 10] [--eta 1e-4]
        [--regular-spike-arrival]

The setting of NEST's tutorial "learning to generate sine waves with e-prop after Bellec et
al. (2020)" (``eprop_supervised_regression_sine-waves_bsshslm_2020``): 100 input channels of
frozen Bernoulli noise (p = 0.05 per 1 ms step, none in a sequence's first step), 100
``eprop_iaf_bsshslm_2020`` units (tau_m 30 ms, v_th 0.03 mV, reset by subtraction, no
refractory period, ``regular_spike_arrival=False``, the piecewise-linear pseudo-derivative
with gamma 0.3 of (v - v_th) / v_th, the rate regulariser c_reg 300 at 10 Hz), one
``eprop_readout_bsshslm_2020`` (tau_m 30 ms, mean squared error), dt = 1 ms, 1000-step
sequences, one trial per update, plain gradient descent with eta 1e-4 and weights clipped
to [-100, 100]; every connection has a delay of one step. Weights, noise and target (a sum
of four sines, periods 1000, 500, 333 and 200 steps) are drawn from the stream of numpy's
global generator seeded with S (default 1), in the tutorial's order. The options change
the time constants, the spike arrival, c_reg, f_target and eta.

``OUT.npz`` holds what the caller needs to run the same network and compare:
``x`` (1000, 100) input spikes of one sequence, ``y`` (1000,) the target,
``w_in`` (100, 100), ``w_rec`` (100, 100), ``w_out`` (1, 100), ``w_fb`` (100, 1) as NEST
was given them (``[post, pre]``), ``readout`` (N * 1000,) and ``target`` (N * 1000,) as the
readout's multimeter records them from the first step of the first learning window,
``v_rec`` (N * 1000, 100) the units' membranes from the step the first input reaches them,
``loss`` (N,) NEST's loss per iteration, ``0.5 sum_t (y_t - y*_t)^2``, ``w_in_after``,
``w_rec_after``, ``w_out_after`` the weights after the N updates (a strong spike into every
presynaptic unit after the task makes each synapse apply its last update), and ``seconds``,
the wall-clock time of ``nest.Simulate``.
"""

from __future__ import annotations

import argparse
import time

import nest
import numpy as np

N_IN, N_REC, N_OUT, STEPS = 100, 100, 1, 1000
#: the one-step delays of the tutorial: generator offset, input -> rec, rec -> out, out norm
OFFSET_GEN, DELAY_IN_REC, DELAY_REC_OUT, DELAY_OUT_NORM = 1, 1, 1, 1


def superimposed_sines(rs: np.random.RandomState, steps: int, periods: list[int]) -> np.ndarray:
    """Four sines of random amplitudes U(0.5, 2) and phases U(0, 2 pi), summed, shifted to
    start at 0 and scaled to max |y| = 1 (the tutorial's target, drawn in its order)."""
    amplitudes = rs.uniform(low=0.5, high=2.0, size=len(periods))
    phases = rs.uniform(low=0.0, high=2.0 * np.pi, size=len(periods))
    total = sum(
        a * np.sin(np.linspace(p, p + 2.0 * np.pi * (steps // period), steps))
        for a, p, period in zip(amplitudes, phases, periods, strict=True)
    )
    total = total - total[0]
    return total / max(np.abs(total).max(), 1e-6)


def build(n_iter: int, opts: argparse.Namespace) -> dict:
    """The network, its devices and inputs; returns what ``main`` reads. The draws come from
    a ``RandomState`` of the seed: the stream of numpy's global generator that the
    tutorial seeds, in its order."""
    rs = np.random.RandomState(opts.seed)
    task = n_iter * STEPS
    total_offset = OFFSET_GEN + DELAY_IN_REC + DELAY_REC_OUT + DELAY_OUT_NORM
    nest.ResetKernel()
    nest.set(
        eprop_learning_window=float(STEPS),
        eprop_reset_neurons_on_update=True,
        eprop_update_interval=float(STEPS),
        print_time=False,
        resolution=1.0,
        total_num_virtual_procs=1,
    )
    v_th, arrival = 0.03, bool(opts.regular_spike_arrival)
    rec_params = {
        "C_m": 1.0, "c_reg": opts.c_reg, "E_L": 0.0, "f_target": opts.f_target,
        "flush_event_send_interval": float(STEPS), "I_e": 0.0,
        "regular_spike_arrival": arrival, "surrogate_gradient_function": "piecewise_linear",
        # gamma 0.3 and width 1 of Bellec's (v - v_th) / v_th, in NEST's units
        "surrogate_gradient_height": 0.3 / v_th, "surrogate_gradient_width": 1.0 * v_th,
        "t_ref": 0.0, "tau_m": opts.tau_m, "V_m": 0.0, "V_th": v_th,
    }  # fmt: skip
    out_params = {
        "C_m": 1.0, "E_L": 0.0, "I_e": 0.0, "loss": "mean_squared_error",
        "regular_spike_arrival": arrival, "tau_m": opts.tau_out, "V_m": 0.0,
    }  # fmt: skip
    gen_in = nest.Create("spike_generator", N_IN)
    parrots = nest.Create("parrot_neuron", N_IN)
    rec = nest.Create("eprop_iaf_bsshslm_2020", N_REC, rec_params)
    out = nest.Create("eprop_readout_bsshslm_2020", N_OUT, out_params)
    gen_target = nest.Create("step_rate_generator", N_OUT)
    mm_rec = nest.Create(
        "multimeter",
        {"interval": 1.0, "record_from": ["V_m"], "start": float(OFFSET_GEN + DELAY_IN_REC),
         "stop": float(OFFSET_GEN + DELAY_IN_REC + task)},
    )  # fmt: skip
    mm_out = nest.Create(
        "multimeter",
        {"interval": 1.0, "record_from": ["readout_signal", "target_signal"],
         "start": float(total_offset), "stop": float(total_offset + task)},
    )  # fmt: skip

    # weights, then noise and target, in the tutorial's order
    w_in = np.array(rs.randn(N_IN, N_REC).T / np.sqrt(N_IN), dtype=np.float32)
    w_rec = np.array(rs.randn(N_REC, N_REC).T / np.sqrt(N_REC), dtype=np.float32)
    np.fill_diagonal(w_rec, 0.0)
    w_out = np.array(rs.randn(N_REC, N_OUT).T / np.sqrt(N_REC), dtype=np.float32)
    w_fb = np.array(rs.randn(N_REC, N_OUT) / np.sqrt(N_REC), dtype=np.float32)

    nest.SetDefaults(
        "eprop_synapse_bsshslm_2020",
        {"optimizer": {"type": "gradient_descent", "batch_size": 1, "eta": opts.eta,
                       "Wmin": -100.0, "Wmax": 100.0},
         "average_gradient": False},
    )  # fmt: skip
    eprop = {
        "synapse_model": "eprop_synapse_bsshslm_2020", "delay": 1.0,
        "tau_m_readout": opts.tau_out,
    }  # fmt: skip
    static = {"synapse_model": "static_synapse", "delay": 1.0}
    all_to_all = {"rule": "all_to_all", "allow_autapses": False}
    nest.Connect(gen_in, parrots, {"rule": "one_to_one"}, static)
    nest.Connect(parrots, rec, all_to_all, {**eprop, "weight": w_in})
    nest.Connect(rec, rec, all_to_all, {**eprop, "weight": w_rec})
    nest.Connect(rec, out, all_to_all, {**eprop, "weight": w_out})
    nest.Connect(
        out, rec, all_to_all,
        {"synapse_model": "eprop_learning_signal_connection_bsshslm_2020", "delay": 1.0,
         "weight": w_fb},
    )  # fmt: skip
    nest.Connect(
        gen_target, out, {"rule": "one_to_one"},
        {"synapse_model": "rate_connection_delayed", "delay": 1.0, "receptor_type": 2},
    )  # fmt: skip
    nest.Connect(mm_rec, rec, all_to_all, static)
    nest.Connect(mm_out, out, all_to_all, static)

    x = rs.rand(STEPS, N_IN) < 0.05
    x[0] = False  # no input in a sequence's first step (as the tutorial)
    starts = np.arange(0.0, task, STEPS) + OFFSET_GEN
    times = np.arange(0.0, STEPS, 1.0)
    nest.SetStatus(
        gen_in,
        [{"spike_times": np.hstack([times[x[:, i]] + s for s in starts]).astype(np.float32)}
         for i in range(N_IN)],
    )  # fmt: skip
    y = superimposed_sines(rs, STEPS, [1000, 500, 333, 200])
    nest.SetStatus(
        gen_target,
        {"amplitude_times": np.arange(0.0, task, 1.0) + total_offset,
         "amplitude_values": np.tile(y, n_iter)},
    )  # fmt: skip
    # a strong spike into every presynaptic unit after the task: synapses apply their
    # updates only when they transmit, so this brings every weight up to date
    final = nest.Create("spike_generator", 1, {"spike_times": [float(task + total_offset - 1)]})
    nest.Connect(final, parrots + rec, "all_to_all", {"weight": 1000.0})
    sim = task + total_offset + 1  # one step more: Simulate's interval is right-open
    return {
        "x": x.astype(np.float64), "y": y, "w_in": w_in, "w_rec": w_rec, "w_out": w_out,
        "w_fb": w_fb, "mm_rec": mm_rec, "mm_out": mm_out, "sim": float(sim),
        "populations": (parrots, rec, out),
    }  # fmt: skip


def weights(pre, post) -> np.ndarray:
    """The weights from ``pre`` to ``post`` as a ``[post, pre]`` matrix."""
    conns = nest.GetConnections(pre, post).get(["source", "target", "weight"])
    w = np.zeros((len(post), len(pre)))
    w[
        np.array(conns["target"]) - post[0].global_id, np.array(conns["source"]) - pre[0].global_id
    ] = conns["weight"]
    return w


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tau-m", type=float, default=30.0)
    ap.add_argument("--tau-out", type=float, default=30.0)
    ap.add_argument("--c-reg", type=float, default=300.0)
    ap.add_argument("--f-target", type=float, default=10.0)
    ap.add_argument("--eta", type=float, default=1e-4)
    ap.add_argument("--regular-spike-arrival", action="store_true")
    args = ap.parse_args()
    net = build(args.iterations, args)
    t0 = time.perf_counter()
    nest.Simulate(net["sim"])
    seconds = time.perf_counter() - t0
    ev_out = net["mm_out"].get("events")
    ev_rec = net["mm_rec"].get("events")
    order = np.lexsort((ev_out["senders"], ev_out["times"]))
    readout, target = ev_out["readout_signal"][order], ev_out["target_signal"][order]
    n = args.iterations * STEPS
    senders = np.asarray(ev_rec["senders"]) - min(ev_rec["senders"])
    steps = np.rint(np.asarray(ev_rec["times"]) - min(ev_rec["times"])).astype(int)
    v_rec = np.zeros((n, N_REC))
    v_rec[steps, senders] = ev_rec["V_m"]
    loss = 0.5 * np.add.reduceat((readout - target) ** 2, np.arange(0, n, STEPS))
    keep = ("x", "y", "w_in", "w_rec", "w_out", "w_fb")
    parrots, rec, out = net["populations"]
    trained = {
        "w_in_after": weights(parrots, rec), "w_rec_after": weights(rec, rec),
        "w_out_after": weights(rec, out),
    }  # fmt: skip
    np.savez(
        args.out, readout=readout, target=target, v_rec=v_rec, loss=loss, seconds=seconds,
        **{k: net[k] for k in keep}, **trained,
    )  # fmt: skip
    print(f"loss per iteration: {np.round(loss, 4).tolist()}  ({seconds:.2f} s)")


if __name__ == "__main__":
    main()
