r"""An independent reference interpreter of rnngraph's time-step contract.

The README's "How a step works" and the design's section 3, written plainly: dense float64
numpy, one step at a time, one node at a time. It imports nothing of rnngraph: a network is
described by :class:`GraphDesc` (nodes with their parameters, edges with dense weights,
masks, biases, delays, initial values and ``source_var``/``target_var``), and
:func:`node_desc` reads a constructed node's parameters from its public attributes
(``named_buffers``/``named_parameters``), never its ``step``, ``kernel``, ``rhs`` or the
library's integrators. Each built-in model's equations are written here from its docstring.

The step rule, per step ``k``:

* nodes are evaluated in a topological order of the zero-delay edges;
* a node's input (per named input) is the sum of its incoming edges' outputs
  ``(W * M) x + b``, plus the external input on the input node's main input;
* an edge with delay 0 reads its source's value of step ``k`` (its output, or the state
  variable ``source_var`` after the step); delay ``d`` reads that of step ``k - d``, and its
  ``init`` value (zeros by default) before step 0;
* a function node outputs ``f(input)``;
* a DE node integrates its continuous state over the step with the step's input held
  constant (``euler``, ``rk4``, ``exp_euler``), then applies its event rule, then emits.

Spiking models follow Brian2 where the docstrings leave a choice:

* refractoriness: a unit that spikes at step ``k`` is held at steps ``k+1 .. k+R-1`` and
  integrates again at ``k+R`` with ``R = int((refractory + 1e-3 dt) / dt)`` (Brian2's
  ``timestep``, which truncates; ``round`` would differ for periods that are not multiples
  of ``dt``);
* a held unit's ``v`` has zero derivative in *every* stage of the integrator (Brian2's
  ``(unless refractory)``), so under ``rk4`` the other variables (``w`` of AdEx, ``u`` of
  Izhikevich) integrate against the held ``v``;
* ``dt`` enters every formula as the float64 number it is (never rounded to float32).

The threshold is strict (``v > threshold``), tested after integration on units that are not
held; ``reset="value"`` sets ``v = v_reset`` in the spike step, ``reset="subtract"``
subtracts ``threshold - v_reset`` in the next step after the leak (also when that step is
held), as the LIF docstring states. :func:`run` returns, besides every output and state
variable, the smallest relative distance of a tested membrane to its threshold
(``margin``), so that a caller can exclude draws where rounding decides a spike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["EdgeDesc", "GraphDesc", "NodeDesc", "Trace", "node_desc", "run", "MODELS"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


#: Activation functions by name (normalising ones act over the units axis).
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda x: x,
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "relu": lambda x: np.maximum(x, 0.0),
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "softmin": lambda x: _softmax(-x),
}


# --------------------------------------------------------------------------------------
# descriptions
# --------------------------------------------------------------------------------------


@dataclass
class NodeDesc:
    """One node: ``model`` is ``"func"`` or a built-in model name; ``params`` are ``(n,)``
    float64 arrays; ``init`` maps state variables to ``(n,)`` or ``(B, n)`` values."""

    label: str
    model: str
    n: int
    params: dict[str, np.ndarray] = field(default_factory=dict)
    init: dict[str, Any] = field(default_factory=dict)
    activation: str = "identity"
    integrator: str = "euler"
    reset: str = "value"
    normalize: bool = False


@dataclass
class EdgeDesc:
    """One edge ``source -> target``: ``y = (W * M) x + b`` with ``x`` the source's value
    ``delay`` steps earlier."""

    source: str
    target: str
    weight: np.ndarray
    mask: np.ndarray | None = None
    bias: np.ndarray | None = None
    delay: int = 0
    init: Any = None
    source_var: str | None = None
    target_var: str | None = None

    def effective(self) -> np.ndarray:
        w = np.asarray(self.weight, dtype=np.float64)
        return w if self.mask is None else w * np.asarray(self.mask, dtype=np.float64)


@dataclass
class GraphDesc:
    dt: float
    nodes: dict[str, NodeDesc]
    edges: list[EdgeDesc]
    input_node: str
    output_node: str

    def describe(self) -> str:
        """A readable listing (for ``hypothesis.note``)."""
        lines = [f"dt={self.dt} input={self.input_node} output={self.output_node}"]
        for v in self.nodes.values():
            ps = {k: np.round(p, 4).tolist() for k, p in v.params.items()}
            lines.append(
                f"  node {v.label}: {v.model} n={v.n} integrator={v.integrator} "
                f"reset={v.reset} act={v.activation} init={v.init} params={ps}"
            )
        for e in self.edges:
            lines.append(
                f"  edge {e.source}->{e.target} delay={e.delay} sv={e.source_var} "
                f"tv={e.target_var} mask={e.mask is not None} bias={e.bias is not None} "
                f"init={e.init} W={np.round(e.weight, 4).tolist()}"
            )
        return "\n".join(lines)


# --------------------------------------------------------------------------------------
# integrators (written here, not the library's)
# --------------------------------------------------------------------------------------

Rhs = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def _held_rhs(rhs: Rhs, held: np.ndarray | None) -> Rhs:
    """``rhs`` with ``dv/dt = 0`` on held units (Brian2's ``(unless refractory)``)."""
    if held is None:
        return rhs

    def f(y: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        d = rhs(y)
        d["v"] = np.where(held, 0.0, d["v"])
        return d

    return f


def integrate(
    rhs: Rhs,
    y: dict[str, np.ndarray],
    method: str,
    dt: float,
    decay: Mapping[str, Any] | None = None,
    held: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """One step of ``dy/dt = rhs(y)`` (input held constant) by ``method``.

    ``decay`` gives ``exp_euler``'s linear rate ``a`` per variable (``dy/dt = -a y + g``,
    ``g`` frozen over the step; a missing rate means a forward-Euler step). ``held`` masks
    the units whose ``v`` stays where it is, in every stage.
    """
    f = _held_rhs(rhs, held)
    if method == "euler":
        d = f(y)
        out = {k: y[k] + dt * d[k] for k in y}
    elif method == "rk4":
        k1 = f(y)
        k2 = f({k: y[k] + 0.5 * dt * k1[k] for k in y})
        k3 = f({k: y[k] + 0.5 * dt * k2[k] for k in y})
        k4 = f({k: y[k] + dt * k3[k] for k in y})
        out = {k: y[k] + dt / 6.0 * (k1[k] + 2.0 * k2[k] + 2.0 * k3[k] + k4[k]) for k in y}
    elif method == "exp_euler":
        d = f(y)
        out = {}
        for k in y:
            a = None if decay is None else decay.get(k)
            if a is None:
                out[k] = y[k] + dt * d[k]
            else:
                g = d[k] + a * y[k]
                e = np.exp(-a * dt)
                out[k] = e * y[k] + (1.0 - e) / a * g
    else:
        raise ValueError(f"reference: unknown integrator {method!r}")
    if held is not None:
        out["v"] = np.where(held, y["v"], out["v"])
    return out


# --------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------


@dataclass
class Model:
    """A model: state variables, inputs, output variable, default initial values and a step
    ``step(node, state, inputs, dt) -> (state, margin)``."""

    state_vars: tuple[str, ...]
    inputs: tuple[str, ...]
    output: str
    step: Callable[..., tuple[dict[str, np.ndarray], float]]
    init: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] = lambda p: {}
    activation_on_output: bool = False


def _hold_steps(refractory: np.ndarray, dt: float) -> np.ndarray:
    """Brian2's ``timestep(refractory, dt) - 1``, at least 0: steps held after a spike."""
    r = np.floor((refractory + 1e-3 * dt) / dt)
    return np.maximum(r - 1.0, 0.0)


def _fire(
    s: Mapping[str, np.ndarray],
    v: np.ndarray,
    threshold: np.ndarray,
    v_reset: np.ndarray,
    refractory: np.ndarray,
    dt: float,
    reset: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Threshold, reset and countdown after integration: ``(z, v, ref, margin)``."""
    held = s["ref"] > 0
    spiked = (v > threshold) & ~held
    gap = np.abs(np.broadcast_to(threshold, v.shape)) + np.abs(v_reset)
    rel = np.abs(v - threshold) / np.maximum(gap, 1e-300)
    margin = float(rel[~held].min()) if (~held).any() else math.inf
    if not np.all(np.isfinite(v[~held])):
        margin = 0.0  # a non-finite membrane: nothing to compare
    z = spiked.astype(np.float64)
    if reset == "value":
        v = np.where(spiked, v_reset, v)
    ref = np.where(spiked, _hold_steps(refractory, dt), np.maximum(s["ref"] - 1.0, 0.0))
    return z, v, ref, margin


def _membrane_step(node, s, current, dt, p_tau, p_rest, p_rm, threshold_name):
    """LIF / IAF: ``tau v' = v_rest - v + r_m I``, then the spike rule."""
    p = node.params
    held = s["ref"] > 0
    tau, rest, rm = p[p_tau], p[p_rest], p[p_rm]

    def rhs(y):
        return {"v": (rest - y["v"] + rm * current) / tau}

    v = integrate(rhs, {"v": s["v"]}, node.integrator, dt, {"v": 1.0 / tau}, held)["v"]
    th, rs = p[threshold_name], p["v_reset"]
    if node.reset == "subtract":
        v = v - (th - rs) * s["z"]
    z, v, ref, margin = _fire(s, v, th, rs, p["refractory"], dt, node.reset)
    return {"v": v, "z": z, "ref": ref}, margin


def _lif(node, s, i, dt):
    return _membrane_step(node, s, i["I"], dt, "tau_m", "v_rest", "r_m", "v_th")


def _iaf(node, s, i, dt):
    return _membrane_step(
        node, s, i["I"] + node.params["bias"], dt, "tau_mem", "v_rest", "r_m", "v_thresh"
    )


def _alif(node, s, i, dt):
    p = node.params
    held = s["ref"] > 0
    a = np.exp(-dt / p["tau_a"]) * s["a"] + s["z"]  # a(t) = rho a(t-1) + z(t-1)

    def rhs(y):
        return {"v": (p["v_rest"] - y["v"] + p["r_m"] * i["I"]) / p["tau_m"]}

    v = integrate(rhs, {"v": s["v"]}, node.integrator, dt, {"v": 1.0 / p["tau_m"]}, held)["v"]
    if node.reset == "subtract":
        v = v - (p["v_th"] - p["v_reset"]) * s["z"]
    threshold = p["v_th"] + p["beta"] * a
    z, v, ref, margin = _fire(s, v, threshold, p["v_reset"], p["refractory"], dt, node.reset)
    return {"v": v, "a": a, "z": z, "ref": ref}, margin


def _qif(node, s, i, dt):
    p = node.params
    held = s["ref"] > 0

    def rhs(y):
        dv = (y["v"] ** 2 + p["eta"] + i["I_ext"]) / p["tau"] + p["k"] * i["s_in"]
        return {"v": dv, "s": -y["s"] / p["tau_s"]}

    c = integrate(
        rhs, {"v": s["v"], "s": s["s"]}, node.integrator, dt, {"s": 1.0 / p["tau_s"]}, held
    )
    z, v, ref, margin = _fire(s, c["v"], p["v_peak"], p["v_reset"], p["refractory"], dt, "value")
    return {"v": v, "s": c["s"] + z, "z": z, "ref": ref}, margin


def _izhikevich(node, s, i, dt):
    p = node.params
    held = s["ref"] > 0

    def rhs(y):
        v = y["v"]
        dv = (
            p["k"] * (v - p["v_r"]) * (v - p["v_theta"])
            - y["u"]
            + i["I_ext"]
            + p["eta"]
            + p["g"] * i["s_in"] * (p["E_r"] - v)
        ) / p["C"]
        du = (p["b"] * (v - p["v_r"]) - y["u"]) / p["tau_u"]
        return {"v": dv, "u": du, "s": -y["s"] / p["tau_s"]}

    y0 = {"v": s["v"], "u": s["u"], "s": s["s"]}
    decay = {"u": 1.0 / p["tau_u"], "s": 1.0 / p["tau_s"]}
    c = integrate(rhs, y0, node.integrator, dt, decay, held)
    z, v, ref, margin = _fire(s, c["v"], p["v_peak"], p["v_reset"], p["refractory"], dt, "value")
    return {"v": v, "u": c["u"] + p["kappa"] * z, "s": c["s"] + z, "z": z, "ref": ref}, margin


def _exp_current(v, p):
    """``g_L Delta_T exp((min(v, v_peak) - V_T) / Delta_T)`` (capped as in NEST)."""
    return p["g_L"] * p["Delta_T"] * np.exp((np.minimum(v, p["v_peak"]) - p["V_T"]) / p["Delta_T"])


def _adex(node, s, i, dt):
    p = node.params
    held = s["ref"] > 0

    def rhs(y):
        v, w = y["v"], y["w"]
        dv = (-p["g_L"] * (v - p["E_L"]) + _exp_current(v, p) - w + i["I"]) / p["C"]
        return {"v": dv, "w": (p["a"] * (v - p["E_L"]) - w) / p["tau_w"]}

    decay = {"v": p["g_L"] / p["C"], "w": 1.0 / p["tau_w"]}
    c = integrate(rhs, {"v": s["v"], "w": s["w"]}, node.integrator, dt, decay, held)
    z, v, ref, margin = _fire(s, c["v"], p["v_peak"], p["v_reset"], p["refractory"], dt, "value")
    return {"v": v, "w": c["w"] + p["b"] * z, "z": z, "ref": ref}, margin


def _eif(node, s, i, dt):
    p = node.params
    held = s["ref"] > 0

    def rhs(y):
        v = y["v"]
        return {"v": (-p["g_L"] * (v - p["E_L"]) + _exp_current(v, p) + i["I"]) / p["C"]}

    c = integrate(rhs, {"v": s["v"]}, node.integrator, dt, {"v": p["g_L"] / p["C"]}, held)
    z, v, ref, margin = _fire(s, c["v"], p["v_peak"], p["v_reset"], p["refractory"], dt, "value")
    return {"v": v, "z": z, "ref": ref}, margin


def _leaky_tanh(node, s, i, dt):
    p = node.params
    f = ACTIVATIONS[node.activation]
    return {"x": (1.0 - p["lr"]) * s["x"] + p["lr"] * f(i["I"] + p["bias"])}, math.inf


def _leaky_integrator(node, s, i, dt):
    p = node.params

    def rhs(y):
        return {"v": (i["I"] - y["v"]) / p["tau"]}

    return integrate(rhs, dict(s), node.integrator, dt, {"v": 1.0 / p["tau"]}), math.inf


def _rectipy_li(node, s, i, dt):
    p = node.params

    def rhs(y):
        return {"v": -y["v"] / p["tau"] + p["k"] * i["r_in"] + i["I_ext"] + p["eta"]}

    return integrate(rhs, dict(s), node.integrator, dt, {"v": 1.0 / p["tau"]}), math.inf


def _qif_mf(node, s, i, dt):
    p = node.params
    tau = p["tau"]

    def rhs(y):
        r, v = y["r"], y["v"]
        dr = (p["Delta"] / (math.pi * tau) + 2.0 * r * v) / tau
        dv = (v * v + p["eta"] + i["I"] - (math.pi * tau * r) ** 2) / tau
        return {"r": dr, "v": dv}

    return integrate(rhs, dict(s), node.integrator, dt), math.inf


def _leaky_readout(node, s, i, dt):
    return {"y": np.exp(-dt / node.params["tau"]) * s["y"] + i["I"]}, math.inf


def _exp_syn(node, s, i, dt):
    tau = node.params["tau"]
    c = 1.0 / tau if node.normalize else 1.0
    return {"s": np.exp(-dt / tau) * s["s"] + c * i["spikes"]}, math.inf


def _double_exp_peak_gain(tr: np.ndarray, td: np.ndarray, normalize: bool) -> np.ndarray:
    """The jump ``c`` of ``h``: unit area (``1/(tr td)``) or a kernel peak of 1."""
    if normalize:
        return 1.0 / (tr * td)
    # kernel of r: c tr td (exp(-t/td) - exp(-t/tr)) / (td - tr), peak at t_peak
    t_peak = tr * td * np.log(td / tr) / (td - tr)
    shape = tr * td * (np.exp(-t_peak / td) - np.exp(-t_peak / tr)) / (td - tr)
    return 1.0 / shape


def _double_exp_syn(node, s, i, dt):
    tr, td = node.params["tau_r"], node.params["tau_d"]
    er, ed = np.exp(-dt / tr), np.exp(-dt / td)
    r = ed * s["r"] + s["h"] * (er - ed) / (1.0 / td - 1.0 / tr)
    h = er * s["h"] + _double_exp_peak_gain(tr, td, node.normalize) * i["spikes"]
    return {"r": r, "h": h}, math.inf


_SPIKE = ("z", "ref")

#: Models by their registry name.
MODELS: dict[str, Model] = {
    "leaky_tanh": Model(("x",), ("I",), "x", _leaky_tanh),
    "leaky_integrator": Model(("v",), ("I",), "v", _leaky_integrator, activation_on_output=True),
    "li": Model(("v",), ("I_ext", "r_in"), "v", _rectipy_li, activation_on_output=True),
    "qif_mf": Model(("r", "v"), ("I",), "r", _qif_mf),
    "leaky_readout": Model(("y",), ("I",), "y", _leaky_readout),
    "exp_syn": Model(("s",), ("spikes",), "s", _exp_syn),
    "double_exp_syn": Model(("r", "h"), ("spikes",), "r", _double_exp_syn),
    "lif": Model(("v", *_SPIKE), ("I",), "z", _lif, lambda p: {"v": p["v_rest"]}),
    "alif": Model(("v", "a", *_SPIKE), ("I",), "z", _alif, lambda p: {"v": p["v_rest"]}),
    "iaf": Model(("v", *_SPIKE), ("I",), "z", _iaf, lambda p: {"v": p["v_rest"]}),
    "qif": Model(("v", "s", *_SPIKE), ("I_ext", "s_in"), "z", _qif, lambda p: {"v": -2.0}),
    "izhikevich": Model(
        ("v", "u", "s", *_SPIKE), ("I_ext", "s_in"), "z", _izhikevich, lambda p: {"v": p["v_r"]}
    ),
    "adex": Model(("v", "w", *_SPIKE), ("I",), "z", _adex, lambda p: {"v": p["E_L"]}),
    "eif": Model(("v", *_SPIKE), ("I",), "z", _eif, lambda p: {"v": p["E_L"]}),
}

#: rnngraph's built-in classes by name, for :func:`node_desc`.
CLASS_NAMES = {
    "LeakyTanh": "leaky_tanh",
    "LeakyIntegrator": "leaky_integrator",
    "RectiPyLI": "li",
    "QIFMeanField": "qif_mf",
    "LeakyReadout": "leaky_readout",
    "ExpSynapse": "exp_syn",
    "DoubleExpSynapse": "double_exp_syn",
    "LIF": "lif",
    "ALIF": "alif",
    "IAF": "iaf",
    "QIF": "qif",
    "Izhikevich": "izhikevich",
    "AdEx": "adex",
    "EIF": "eif",
}


def node_desc(label: str, node: Any, init: Mapping[str, Any] | None = None) -> NodeDesc:
    """Describe a constructed rnngraph node from its public attributes.

    Parameters come from ``named_buffers``/``named_parameters`` (as float64 ``(n,)``
    arrays); ``init`` are the initial values the caller passed to the node (the model's
    documented defaults fill the rest).
    """
    cls = type(node).__name__
    if cls == "FuncNode":
        return NodeDesc(label, "func", node.n, activation=node.name)
    model = CLASS_NAMES[cls]
    tensors = dict(node.named_buffers(recurse=False))
    tensors.update(dict(node.named_parameters(recurse=False)))
    params = {
        k: np.broadcast_to(t.detach().cpu().double().numpy(), (node.n,)).copy()
        for k, t in tensors.items()
    }
    return NodeDesc(
        label,
        model,
        node.n,
        params=params,
        init=dict(init or {}),
        activation=getattr(node, "activation", "identity"),
        integrator=getattr(node, "integrator", "euler"),
        reset=getattr(node, "reset_mode", "value"),
        normalize=bool(getattr(node, "normalize", False)),
    )


# --------------------------------------------------------------------------------------
# the interpreter
# --------------------------------------------------------------------------------------


@dataclass
class Trace:
    """What :func:`run` computed: ``outputs[node]`` and ``states["node.var"]`` as
    ``(B, T, n)`` arrays, ``edge_out[(source, target)]`` each edge's output, ``margin`` the
    smallest relative distance of a tested membrane to its threshold."""

    outputs: dict[str, np.ndarray]
    states: dict[str, np.ndarray]
    edge_out: dict[tuple[str, str], np.ndarray]
    margin: float


def _order(g: GraphDesc) -> list[str]:
    """A topological order of the zero-delay edges (Kahn)."""
    preds = {v: {e.source for e in g.edges if e.target == v and e.delay == 0} for v in g.nodes}
    order: list[str] = []
    while len(order) < len(g.nodes):
        ready = [v for v in g.nodes if v not in order and preds[v] <= set(order)]
        if not ready:
            raise ValueError("reference: a cycle of zero-delay edges")
        order.append(ready[0])
    return order


def _initial(g: GraphDesc, batch: int) -> dict[str, dict[str, np.ndarray]]:
    state: dict[str, dict[str, np.ndarray]] = {}
    for v, node in g.nodes.items():
        if node.model == "func":
            continue
        m = MODELS[node.model]
        vals = {**m.init(node.params), **node.init}
        state[v] = {
            var: np.broadcast_to(np.asarray(vals.get(var, 0.0), np.float64), (batch, node.n)).copy()
            for var in m.state_vars
        }
    return state


def _output(node: NodeDesc, s: Mapping[str, np.ndarray]) -> np.ndarray:
    m = MODELS[node.model]
    y = s[m.output]
    return ACTIVATIONS[node.activation](y) if m.activation_on_output else y


def run(
    g: GraphDesc,
    x: np.ndarray,
    force: Mapping[str, np.ndarray] | None = None,
) -> Trace:
    """Run the described network from its initial state on ``x`` (``(B, T, C)``).

    ``force`` maps node labels to ``(B, T_f, n)`` values that replace the node's output
    for every edge that reads it in the first ``T_f`` steps (teacher forcing); the
    recorded output stays the node's own.
    """
    x = np.asarray(x, dtype=np.float64)
    batch, steps = x.shape[0], x.shape[1]
    order = _order(g)
    state = _initial(g, batch)
    history: dict[int, list[np.ndarray]] = {j: [] for j, e in enumerate(g.edges) if e.delay}
    outs = {v: np.zeros((batch, steps, g.nodes[v].n)) for v in g.nodes}
    states = {
        f"{v}.{var}": np.zeros((batch, steps, g.nodes[v].n)) for v in state for var in state[v]
    }
    edge_out = {(e.source, e.target): np.zeros((batch, steps, len(e.weight))) for e in g.edges}
    margin = math.inf
    for k in range(steps):
        passed: dict[str, np.ndarray] = {}  # what edges read of each node this step
        for v in order:
            node = g.nodes[v]
            names = ("in",) if node.model == "func" else MODELS[node.model].inputs
            inp = {name: np.zeros((batch, node.n)) for name in names}
            if v == g.input_node:
                inp[names[0]] = inp[names[0]] + x[:, k]
            for j, e in enumerate(g.edges):
                if e.target != v:
                    continue
                src = _edge_source(g, e, j, k, batch, history, passed, state)
                y = src @ e.effective().T
                if e.bias is not None:
                    y = y + e.bias
                edge_out[(e.source, e.target)][:, k] = y
                inp[e.target_var or names[0]] = inp[e.target_var or names[0]] + y
            if node.model == "func":
                y = ACTIVATIONS[node.activation](inp["in"])
            else:
                state[v], m = MODELS[node.model].step(node, state[v], inp, g.dt)
                margin = min(margin, m)
                y = _output(node, state[v])
                for var, val in state[v].items():
                    states[f"{v}.{var}"][:, k] = val
            outs[v][:, k] = y
            forced = force is not None and v in force and k < force[v].shape[1]
            passed[v] = force[v][:, k] if forced else y
        for j, e in enumerate(g.edges):
            if e.delay:
                history[j].append(_read(e, passed, state))
    return Trace(outs, states, edge_out, margin)


def _read(e: EdgeDesc, passed: Mapping[str, np.ndarray], state: Mapping[str, Any]) -> np.ndarray:
    """The source value of ``e`` in the current step (its output or ``source_var``)."""
    if e.source_var is None:
        return passed[e.source]
    return state[e.source][e.source_var].copy()


def _edge_source(g, e, j, k, batch, history, passed, state) -> np.ndarray:
    if e.delay == 0:
        return _read(e, passed, state)
    if k - e.delay >= 0:
        return history[j][k - e.delay]
    n_in = np.shape(e.weight)[1]
    init = 0.0 if e.init is None else np.asarray(e.init, np.float64)
    return np.broadcast_to(init, (batch, n_in)).astype(np.float64)
