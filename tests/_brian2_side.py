"""Brian2's side of the equation-model tests, run in Brian2's own venv (``.peers/brian2``).

``python _brian2_side.py neuron IN.npz OUT.npz``: IN holds ``spec`` (JSON: the equations
text, threshold, reset, refractory, method, dt, the number of units and steps, parameter
values as ``[SI value, unit]``, the inputs with their units, the initial values and the
variables to record) and ``in_<name>`` arrays ``(T, n)`` of each input in SI units. Each
input (declared as a parameter ``I : amp``) is set at the start of every step from a
``TimedArray`` of those values, so that it is held over the step in every stage of the
integrator, as rnngraph's inputs are. OUT holds ``var_<name>`` ``(T, n)`` recorded at the end of
each step (after the reset) and the spikes as ``spike_step``, ``spike_unit``.
"""

from __future__ import annotations

import json
import sys

import brian2 as b2
import numpy as np


def _quantity(value, unit):
    return np.asarray(value) * eval(unit, vars(b2))  # unit strings of the test, e.g. "volt"


def neuron(z: dict) -> dict:
    spec = json.loads(str(z["spec"]))
    b2.prefs.codegen.target = "numpy"
    b2.start_scope()
    dt = spec["dt"] * b2.second
    b2.defaultclock.dt = dt
    namespace = {k: _quantity(*v) for k, v in spec["namespace"].items()}
    lines = spec["equations"].splitlines()
    for name, unit in spec["inputs"].items():
        namespace[f"stim_{name}"] = b2.TimedArray(_quantity(z[f"in_{name}"], unit), dt=dt)
    options = {"method": spec["method"], "namespace": namespace}
    if spec["threshold"]:
        options["threshold"] = spec["threshold"]
    if spec["reset"]:
        options["reset"] = spec["reset"]
    if spec["refractory"]:
        r = spec["refractory"]
        options["refractory"] = r if isinstance(r, str) else r * b2.second
    group = b2.NeuronGroup(spec["n"], "\n".join(lines), **options)
    for name in spec["inputs"]:  # held over the step, every stage of the integrator
        group.run_regularly(f"{name} = stim_{name}(t, i)", when="start")
    for name, value in {**spec["params"], **spec["init"]}.items():
        setattr(group, name, _quantity(*value))
    states = b2.StateMonitor(group, spec["record"], record=True, when="end")
    spikes = b2.SpikeMonitor(group)
    b2.run(spec["steps"] * dt)
    out = {f"var_{v}": np.asarray(getattr(states, v + "_")).T for v in spec["record"]}
    out["spike_step"] = np.round(np.asarray(spikes.t_) / float(dt)).astype(np.int64)
    out["spike_unit"] = np.asarray(spikes.i, dtype=np.int64)
    return out


if __name__ == "__main__":
    task, src, dst = sys.argv[1:4]
    with np.load(src) as f:
        arrays = {k: f[k] for k in f.files}
    np.savez(dst, **{"neuron": neuron}[task](arrays))
