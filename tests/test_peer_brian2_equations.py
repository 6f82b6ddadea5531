"""Equations from Brian2's documentation and examples, run in rnngraph and in Brian2 itself
(its venv, ``make peers PEERS=brian2``) on the same input: spike for spike and the state
to 1e-9, for each integrator both offer (float64)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _peer_run import peer_python, run_side

import rnngraph as rg
from rnngraph.units import UNITS, Quantity, ms, mV, nA, nS, pF, siemens, ufarad, umetre

pytestmark = pytest.mark.skipif(
    not peer_python("brian2").exists(),
    reason="Brian2's venv is absent (make peers PEERS=brian2)",
)

#: Brette & Gerstner's AdEx as Brian2's examples write it (membrane ``vm``)
ADEX = """
dvm/dt = (gL*(EL - vm) + gL*DeltaT*exp((vm - VT)/DeltaT) + I - w)/C : volt
dw/dt = (a*(vm - EL) - w)/tauw : amp
I : amp
"""
ADEX_NS = dict(
    C=281 * pF,
    gL=30 * nS,
    EL=-70.6 * mV,
    VT=-50.4 * mV,
    DeltaT=2 * mV,
    tauw=144 * ms,
    a=4 * nS,
    b=0.0805 * nA,
    Vr=-70.6 * mV,
)
ADEX_NS["Vcut"] = ADEX_NS["VT"] + 5 * ADEX_NS["DeltaT"]

#: Izhikevich (2003) in Brian2's form, with units
IZHIKEVICH = """
dv/dt = (0.04/ms/mV)*v**2 + (5/ms)*v + 140*mV/ms - u + I : volt
du/dt = a*(b*v - u) : volt/second
I : volt/second
"""
IZH_NS = dict(a=0.02 / ms, b=0.2 / ms, c=-65 * mV, d=2 * mV / ms)

#: Hodgkin-Huxley with Traub & Miles' rate functions, as in Brian2's HH examples
HH = """
dv/dt = (gl*(El - v) - g_na*(m*m*m)*h*(v - ENa) - g_kd*(n*n*n*n)*(v - EK) + I)/Cm : volt
dm/dt = 0.32*(mV**-1)*4*mV/exprel((13.*mV - v + VT)/(4*mV))/ms*(1 - m)
        - 0.28*(mV**-1)*5*mV/exprel((v - VT - 40.*mV)/(5*mV))/ms*m : 1
dn/dt = 0.032*(mV**-1)*5*mV/exprel((15.*mV - v + VT)/(5*mV))/ms*(1. - n)
        - .5*exp((10.*mV - v + VT)/(40.*mV))/ms*n : 1
dh/dt = 0.128*exp((17.*mV - v + VT)/(18.*mV))/ms*(1. - h)
        - 4./(1 + exp((40.*mV - v + VT)/(5.*mV)))/ms*h : 1
I : amp
"""
AREA = 20000 * umetre**2
HH_NS = dict(
    Cm=1 * ufarad * UNITS["cm"] ** -2 * AREA,
    gl=5e-5 * siemens * UNITS["cm"] ** -2 * AREA,
    El=-65 * mV,
    EK=-90 * mV,
    ENa=50 * mV,
    VT=-63 * mV,
    g_na=100 * UNITS["msiemens"] * UNITS["cm"] ** -2 * AREA,
    g_kd=30 * UNITS["msiemens"] * UNITS["cm"] ** -2 * AREA,
)

#: a conductance-based LIF with the excitatory and inhibitory conductances as state
COBA = """
dv/dt = (gl*(El - v) + ge*(Ee - v) + gi*(Ei - v) + I)/C : volt (unless refractory)
dge/dt = -ge/taue + ge_in : siemens
dgi/dt = -gi/taui + gi_in : siemens
I : amp
ge_in : siemens/second
gi_in : siemens/second
"""
COBA_NS = dict(
    C=200 * pF,
    gl=10 * nS,
    El=-60 * mV,
    Ee=0 * mV,
    Ei=-80 * mV,
    taue=5 * ms,
    taui=10 * ms,
    Vt=-50 * mV,
    Vr=-60 * mV,
)


def _unit(q: Quantity) -> str:
    return str(q.dim)


def _both(
    tmp_path,
    eqs,
    inputs,
    *,
    threshold,
    reset,
    method,
    namespace,
    init,
    steps,
    refractory=0.0,
    renames=None,
    brian_threshold=None,
    brian_reset=None,
    brian_refractory=None,
    n=4,
    dt=0.1 * ms,
    seed=0,
):
    """Run the equations in Brian2 and in rnngraph; return both records."""
    g = np.random.default_rng(seed)
    drive = {k: lo + (hi - lo) * g.random((steps, n)) for k, (lo, hi, _) in inputs.items()}
    units = {k: u for k, (_, _, u) in inputs.items()}
    record = list(init)
    spec = dict(
        equations=eqs,
        threshold=brian_threshold or threshold or "",
        method=method,
        reset=brian_reset or reset or "",
        refractory=brian_refractory
        or (refractory.value if isinstance(refractory, Quantity) else refractory),
        dt=dt.value,
        n=n,
        steps=steps,
        inputs=units,
        record=record,
        params={},
        namespace={k: [float(v.value), _unit(v)] for k, v in namespace.items()},
        init={k: [float(v.value), _unit(v)] for k, v in init.items()},
    )
    theirs = run_side(
        "brian2",
        "neuron",
        tmp_path,
        spec=np.array(json.dumps(spec)),
        **{f"in_{k}": v for k, v in drive.items()},
    )
    text = rg.Equations(eqs, **(renames or {}))
    model = rg.equation_model(
        text,
        inputs=tuple(inputs),
        threshold=threshold,
        reset=reset,
        method=method,
        namespace=namespace,
        refractory=refractory,
    )
    renames = renames or {}
    node = model(n, init={renames.get(k, k): v for k, v in init.items()})
    net = rg.Network(dt=dt, dtype=torch.float64)
    net.add_node("n", node)
    net.output_node = "n"
    feeds = {}
    for k in inputs:
        net.add_node(f"in_{k}", rg.FuncNode(n))
        net.add_edge(f"in_{k}", "n", target_var=k, weights=torch.eye(n, dtype=torch.float64))
        feeds[f"in_{k}"] = torch.as_tensor(drive[k])
    names = [renames.get(k, k) for k in record]
    if len(feeds) == 1:
        net.input_node, feeds = next(iter(feeds)), next(iter(feeds.values()))
    rec = net.run(feeds, record=["n." + v for v in names] + (["n"] if threshold else []))
    ours = {k: rec["n." + v].numpy() for k, v in zip(record, names, strict=True)}
    if threshold:
        ours["spikes"] = rec["n"].numpy()
    return theirs, ours


def _agree(theirs, ours, spikes=True, tol=1e-9, state_steps=None):
    """States to ``tol`` of their range over the first ``state_steps`` steps (all by
    default), spikes equal over the whole run."""
    for k, v in ours.items():
        if k == "spikes":
            continue
        ref = theirs[f"var_{k}"][:state_steps]
        scale = max(np.abs(ref).max(), 1e-300)
        err = np.abs(v[:state_steps] - ref).max() / scale
        assert err <= tol, (k, err)
    if spikes:
        steps, units = np.nonzero(ours["spikes"])
        order = np.lexsort((units, steps))
        theirs_order = np.lexsort((theirs["spike_unit"], theirs["spike_step"]))
        np.testing.assert_array_equal(steps[order], theirs["spike_step"][theirs_order])
        np.testing.assert_array_equal(units[order], theirs["spike_unit"][theirs_order])
        assert len(steps) > 10


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_adex_from_brian2s_examples_equals_brian2(tmp_path, method):
    theirs, ours = _both(
        tmp_path,
        ADEX,
        {"I": (0.6e-9, 1.2e-9, "amp")},
        renames={"vm": "v"},
        threshold="v > Vcut",
        reset="v = Vr; w += b",
        brian_threshold="vm > Vcut",
        brian_reset="vm = Vr; w += b",
        method=method,
        namespace=ADEX_NS,
        init={"vm": -70.6 * mV, "w": 0 * nA},
        steps=4000,
    )
    _agree(theirs, ours)


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_izhikevich_from_brian2s_examples_equals_brian2(tmp_path, method):
    theirs, ours = _both(
        tmp_path,
        IZHIKEVICH,
        {"I": (5.0, 15.0, "volt/second")},
        threshold="v > 30*mV",
        reset="v = c; u += d",
        method=method,
        namespace=IZH_NS,
        init={"v": -65 * mV, "u": -13 * mV / ms},
        steps=5000,
    )
    # Brian2 reorders the terms of each expression (sympy) and the upswing of every spike
    # amplifies the rounding: the states differ by 1e-11 of their range at 250 ms and by
    # 1e-8 at 500 ms; the spikes stay identical
    _agree(theirs, ours, state_steps=2500)


@pytest.mark.parametrize("method", ["exponential_euler", "euler", "rk4"])
def test_hodgkin_huxley_from_brian2s_examples_equals_brian2(tmp_path, method):
    """A rate model in rnngraph (no reset); Brian2 counts its spikes by threshold and
    refractory expression, rnngraph's are the upward crossings of -40 mV."""
    dt = 0.01 * ms if method == "euler" else 0.05 * ms
    theirs, ours = _both(
        tmp_path,
        HH,
        {"I": (0.5e-9, 1.5e-9, "amp")},
        threshold=None,
        reset=None,
        brian_threshold="v > -40*mV",
        brian_refractory="v > -40*mV",
        method=method,
        namespace=HH_NS,
        init={"v": -65 * mV, "m": Quantity(0.05), "h": Quantity(0.6), "n": Quantity(0.32)},
        steps=4000,
        dt=dt,
    )
    v = ours["v"]
    above = v > -0.040
    ours["spikes"] = (above[1:] & ~above[:-1]).astype(float)
    ours["spikes"] = np.concatenate([np.zeros((1, v.shape[1])), ours["spikes"]])
    _agree(theirs, ours)


@pytest.mark.parametrize("method", ["exponential_euler", "euler", "rk4"])
def test_a_coba_neuron_with_conductances_as_state_equals_brian2(tmp_path, method):
    theirs, ours = _both(
        tmp_path,
        COBA,
        {
            "I": (0.05e-9, 0.25e-9, "amp"),
            "ge_in": (0.0, 4e-6, "siemens/second"),
            "gi_in": (0.0, 2e-6, "siemens/second"),
        },
        threshold="v > Vt",
        reset="v = Vr",
        method=method,
        namespace=COBA_NS,
        refractory=5 * ms,
        init={"v": -60 * mV, "ge": 0 * nS, "gi": 0 * nS},
        steps=5000,
    )
    _agree(theirs, ours)
