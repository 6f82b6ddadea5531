"""The bad-input sweep: every public entry point, every kind of bad input.

One row per (entry point, bad input, expected exception, expected message). Each row must
raise an error whose message names the call (``Network.add_edge``, the class name of a
constructor, the function name of a data set or metric), and a row that acts on a network
must leave the network exactly as it found it: the graph (nodes, edges and the attributes
of their modules), every parameter and buffer, and the held state are compared before and
after. The rows say what the README and the design contract ask for; ``test_errors.py``
pins the exact wording of the messages it covers, so this table does not repeat its rows.

``pytest --collect-only -q tests/test_bad_input_sweep.py | tail -1`` gives the count.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import scipy.sparse
import torch

import rnngraph as rg
from rnngraph import Network, Observer, datasets, layers, metrics, nodes

# ----------------------------------------------------------------------------------------
# networks the rows act on (each row builds its own, so no row can affect another)
# ----------------------------------------------------------------------------------------

_G = torch.Generator().manual_seed(7)
X = torch.randn(2, 10, 3, generator=_G)  # (B, T, C) inputs of the ESN
Y = torch.randn(2, 10, 2, generator=_G)  # (B, T, n_out) targets of the ESN
S = (torch.rand(2, 12, 4, generator=_G) < 0.3).float()  # (B, T, C) spikes into the LIF net
YS = torch.randn(2, 12, 2, generator=_G)  # (B, T, K) targets of the LIF net


def esn(train: str | None = "gd") -> Network:
    """A leaky-tanh ESN ``in (3) -> res (8) -> out (2)`` that has run once (batch 2)."""
    net = Network(1.0)
    net.add_func_node("in", 3)
    net.add_diffeq_node("res", "leaky_tanh", n=8, lr=0.5)
    net.add_edge("in", "res", weights=rg.input_weights(8, 3, seed=1))
    w = rg.recurrent_weights(8, spectral_radius=0.9, connectivity=0.5, seed=2)
    net.add_edge("res", "res", weights=w, feedback=True)
    net.add_func_node("out", 2)
    net.add_edge("res", "out", train=train, bias=True, seed=3)
    net.run(X)
    return net


def lif() -> Network:
    """A LIF population with a leaky readout, e-prop's shape, that has run once (batch 2)."""
    g = torch.Generator().manual_seed(5)
    net = Network(1.0)
    net.add_func_node("in", 4)
    net.add_diffeq_node("rec", "lif", n=6, tau_m=10.0, v_th=0.5)
    net.add_edge("in", "rec", weights=0.8 * torch.rand(6, 4, generator=g), train="gd")
    net.add_edge(
        "rec",
        "rec",
        weights=0.1 * torch.randn(6, 6, generator=g),
        train="gd",
        feedback=True,
        mask=1.0 - torch.eye(6),
    )
    net.add_diffeq_node("out", "leaky_readout", n=2, tau=5.0)
    net.add_edge("rec", "out", weights=0.1 * torch.randn(2, 6, generator=g), train="gd")
    net.run(S)
    return net


def fresh() -> Network:
    """A network with one input node that has not compiled yet (for the layer builders)."""
    net = Network(1.0)
    net.add_func_node("in", 3)
    return net


NETS: dict[str, Callable[[], Network]] = {
    "esn": esn,
    "fixed": lambda: esn(train=None),  # no trainable parameter
    "lif": lif,
    "fresh": fresh,
}

# ----------------------------------------------------------------------------------------
# snapshots: everything a failed call must leave as it was
# ----------------------------------------------------------------------------------------

_MODULE_INTERNALS = ("_parameters", "_buffers", "_modules", "_non_persistent_buffers_set")


def _freeze(v: Any) -> Any:
    """A comparable copy: tensors cloned (dense), containers frozen, other objects by id."""
    if isinstance(v, torch.Tensor):
        t = v.detach()
        t = t.to_dense() if t.layout != torch.strided else t
        return ("tensor", t.dtype, tuple(t.shape), v.requires_grad, t.clone())
    if isinstance(v, int | float | str | bool | type(None) | torch.dtype | torch.device):
        return v
    if isinstance(v, list | tuple):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, set | frozenset):
        return ("set", tuple(sorted(map(repr, v))))
    if isinstance(v, dict):
        return ("dict", tuple((k, _freeze(x)) for k, x in v.items()))
    return ("object", id(v))


def _module(m: torch.nn.Module) -> tuple:
    attrs = {
        k: _freeze(v)
        for k, v in vars(m).items()
        if k not in _MODULE_INTERNALS and not k.startswith("_forward") and "hook" not in k
    }
    tensors = {k: _freeze(t) for k, t in m.named_parameters()}
    tensors.update({k: _freeze(t) for k, t in m.named_buffers()})
    return id(m), type(m), attrs, tensors


def _graph(net: Network) -> dict[str, Any]:
    g = net.graph
    return {
        "nodes": [(v, sorted(d), _module(d["node"])) for v, d in g.nodes(data=True)],
        "edges": [(u, v, sorted(d), _module(d["edge"])) for u, v, d in g.edges(data=True)],
        "settings": (net.dt, net.dtype, net.device, net.input_node, net.output_node),
    }


def _held(net: Network) -> Any:
    return _freeze(dict(net.state) if net.state is not None else None)


def snapshot(net: Network) -> dict[str, Any]:
    """The graph (with each module's attributes and tensors), the settings and the state."""
    return {**_graph(net), "state": _held(net)}


def _assert_same(a: Any, b: Any, where: str) -> None:
    if isinstance(a, tuple) and a and a[0] == "tensor":
        assert isinstance(b, tuple) and b and b[0] == "tensor", where
        assert a[1:4] == b[1:4], f"{where}: dtype/shape/requires_grad {a[1:4]} -> {b[1:4]}"
        torch.testing.assert_close(b[4], a[4], rtol=0, atol=0, equal_nan=True, msg=where)
        return
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys {a} -> {b}"
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
        return
    if isinstance(a, tuple | list):
        assert isinstance(b, tuple | list) and len(a) == len(b), f"{where}: {a!r} -> {b!r}"
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{k}]")
        return
    assert a == b, f"{where}: {a!r} -> {b!r}"


def assert_unchanged(net: Network, before: dict[str, Any]) -> None:
    """The network is as :func:`snapshot` found it (graph first: the state needs it)."""
    now = _graph(net)
    for key in ("nodes", "edges", "settings"):
        _assert_same(before[key], now[key], key)
    _assert_same(before["state"], _held(net), "state")


# ----------------------------------------------------------------------------------------
# the table
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    id: str
    net: str | None  # key of NETS, or None for calls that take no network
    exc: type[Exception] | tuple[type[Exception], ...]
    match: str
    call: Callable[[Any], Any]


ROWS: list[Row] = []


def KW(call: str, name: str = "") -> str:
    """An unknown keyword: Python's own message, or rnngraph's (which lists the valid ones)."""
    tail = f".*'{name}'" if name else ""
    return rf"{call}(\(\))?:? .*(unexpected|unknown) keyword argument{tail}"


VT = (ValueError, TypeError)  # a wrong type: TypeError fits, a ValueError naming it is fine


def row(id: str, net: str | None, exc, match: str, call: Callable[[Any], Any]) -> None:
    """Add a row. ``(Network|CompiledNetwork)`` in ``match`` becomes the class the call goes
    through: ``CompiledNetwork`` when it calls ``n.model``, else ``Network`` itself."""
    assert id not in {r.id for r in ROWS}, id
    if "(Network|CompiledNetwork)" in match:
        cls = "CompiledNetwork" if ".model" in inspect.getsource(call) else "(?<!Compiled)Network"
        match = match.replace("(Network|CompiledNetwork)", cls)
    ROWS.append(Row(id, net, exc, match, call))


NAN, INF = float("nan"), float("inf")
OBJ = np.array([[None, 1.0, 2.0]], dtype=object)
STR = np.array([["a", "b", "c"]])

# ---- Network(...) -------------------------------------------------------------------------
W = r"Network: "
row("Network/dt=inf", None, ValueError, W + r".*dt", lambda _: Network(INF))
row("Network/dt=-inf", None, ValueError, W + r".*dt", lambda _: Network(-INF))
row("Network/dt=None", None, VT, W + r".*dt", lambda _: Network(None))
row("Network/dt=complex", None, VT, W + r".*dt", lambda _: Network(1 + 0j))
row("Network/dt=array", None, VT, W + r".*dt", lambda _: Network(np.array([1.0, 2.0])))
row(
    "Network/dtype=complex64",
    None,
    TypeError,
    W + "dtype",
    lambda _: Network(1.0, torch.device("cpu"), torch.complex64),
)
row("Network/dtype=bool", None, TypeError, W + "dtype", lambda _: Network(1.0, dtype=torch.bool))
row("Network/dtype=str", None, TypeError, W + "dtype", lambda _: Network(1.0, dtype="float32"))
row("Network/dtype=numpy", None, TypeError, W + "dtype", lambda _: Network(1.0, dtype=np.float32))
row("Network/device=unknown", None, VT, W + "device", lambda _: Network(1.0, device="gpu7"))
row("Network/device=int", None, VT, W + "device", lambda _: Network(1.0, device=[0]))

# ---- Network.dt and Network.to: the settings the compiled program depends on ---------------
row(
    "Network.dt/set negative",
    "esn",
    ValueError,
    r"Network\.dt.*dt",
    lambda n: setattr(n, "dt", -1.0),
)
row("Network.dt/set zero", "esn", ValueError, r"Network\.dt.*dt", lambda n: setattr(n, "dt", 0.0))
row("Network.dt/set NaN", "esn", ValueError, r"Network\.dt.*dt", lambda n: setattr(n, "dt", NAN))
row("Network.dt/set inf", "esn", ValueError, r"Network\.dt.*dt", lambda n: setattr(n, "dt", INF))
row("Network.dt/set str", "esn", VT, r"Network\.dt.*dt", lambda n: setattr(n, "dt", "1"))
row(
    "Network.to/dtype int",
    "esn",
    TypeError,
    r"Network\.to.*dtype",
    lambda n: n.to(dtype=torch.int32),
)
row(
    "Network.to/dtype complex",
    "esn",
    TypeError,
    r"Network\.to.*dtype",
    lambda n: n.to(dtype=torch.complex64),
)
row(
    "Network.to/dtype bool",
    "esn",
    TypeError,
    r"Network\.to.*dtype",
    lambda n: n.to(dtype=torch.bool),
)

# ---- Network.add_node -----------------------------------------------------------------------
W = r"Network\.add_node"
row("add_node/not a node", "esn", TypeError, W, lambda n: n.add_node("x", "lif"))
row("add_node/torch module", "esn", TypeError, W, lambda n: n.add_node("x", torch.nn.Linear(2, 2)))
row(
    "add_node/label None",
    "esn",
    ValueError,
    W + ".*label",
    lambda n: n.add_node(None, nodes.FuncNode(2)),
)
row(
    "add_node/label int",
    "esn",
    ValueError,
    W + ".*label",
    lambda n: n.add_node(3, nodes.FuncNode(2)),
)
row(
    "add_node/label empty",
    "esn",
    ValueError,
    W + ".*label",
    lambda n: n.add_node("", nodes.FuncNode(2)),
)
row(
    "add_node/label with ->",
    "esn",
    ValueError,
    W + ".*label",
    lambda n: n.add_node("a->b", nodes.FuncNode(2)),
)
row(
    "add_node/label with @",
    "esn",
    ValueError,
    W + ".*label",
    lambda n: n.add_node("a@1", nodes.FuncNode(2)),
)
row(
    "add_node/label taken",
    "esn",
    ValueError,
    W + ": a node 'res' exists",
    lambda n: n.add_node("res", nodes.FuncNode(2)),
)
row(
    "add_node/unknown keyword",
    "esn",
    TypeError,
    KW(r"add_node", "train"),
    lambda n: n.add_node("x", nodes.FuncNode(2), train="gd"),
)

# ---- Network.add_func_node ------------------------------------------------------------------
W = r"(Network\.add_func_node|FuncNode)"
row("add_func_node/n=-1", "esn", ValueError, W + ".*n must be", lambda n: n.add_func_node("f", -1))
row("add_func_node/n=2.5", "esn", VT, W + ".*n must be", lambda n: n.add_func_node("f", 2.5))
row("add_func_node/n=str", "esn", VT, W + ".*n must be", lambda n: n.add_func_node("f", "3"))
row("add_func_node/n=None", "esn", VT, W + ".*n must be", lambda n: n.add_func_node("f", None))
row("add_func_node/n=True", "esn", VT, W + ".*n must be", lambda n: n.add_func_node("f", True))
row(
    "add_func_node/n=array",
    "esn",
    VT,
    W + ".*n must be",
    lambda n: n.add_func_node("f", np.array([3, 4])),
)
row(
    "add_func_node/activation int",
    "esn",
    VT,
    W + ".*activation",
    lambda n: n.add_func_node("f", 3, 7),
)
row(
    "add_func_node/activation None",
    "esn",
    VT,
    W + ".*activation",
    lambda n: n.add_func_node("f", 3, None),
)
row(
    "add_func_node/label None", "esn", ValueError, W + ".*label", lambda n: n.add_func_node(None, 3)
)
row(
    "add_func_node/unknown keyword",
    "esn",
    TypeError,
    KW(r"add_func_node", "activation"),
    lambda n: n.add_func_node("f", 3, activation="tanh"),
)

# ---- Network.add_diffeq_node ----------------------------------------------------------------
W = r"Network\.add_diffeq_node"
WM = r"(Network\.add_diffeq_node|{})"  # the call or the model's class


def _de(model: str, **kw: Any) -> Callable[[Network], Any]:
    return lambda net: net.add_diffeq_node("x", model, n=4, **kw)


row(
    "add_diffeq_node/n=0",
    "esn",
    ValueError,
    WM.format("LeakyTanh") + ".*n",
    lambda n: n.add_diffeq_node("x", "leaky_tanh", n=0),
)
row(
    "add_diffeq_node/n=-3",
    "esn",
    ValueError,
    WM.format("LeakyTanh") + ".*n",
    lambda n: n.add_diffeq_node("x", "leaky_tanh", n=-3),
)
row(
    "add_diffeq_node/n=2.5",
    "esn",
    VT,
    WM.format("LeakyTanh") + ".*n",
    lambda n: n.add_diffeq_node("x", "leaky_tanh", n=2.5),
)
row(
    "add_diffeq_node/n=str",
    "esn",
    VT,
    WM.format("LeakyTanh") + ".*n",
    lambda n: n.add_diffeq_node("x", "leaky_tanh", n="4"),
)
row(
    "add_diffeq_node/n missing",
    "esn",
    VT,
    W + ".*n",
    lambda n: n.add_diffeq_node("x", "leaky_tanh"),
)
row(
    "add_diffeq_node/node int",
    "esn",
    TypeError,
    W + ": node must be",
    lambda n: n.add_diffeq_node("x", 3, n=4),
)
row(
    "add_diffeq_node/node FuncNode",
    "esn",
    TypeError,
    W + ": node must be",
    lambda n: n.add_diffeq_node("x", nodes.FuncNode(4)),
)
row(
    "add_diffeq_node/instance with other n",
    "esn",
    ValueError,
    W + r": n=5 but the node has 4",
    lambda n: n.add_diffeq_node("x", nodes.LeakyTanh(4), n=5),
)
row(
    "add_diffeq_node/label taken",
    "esn",
    ValueError,
    W + ": a node 'res' exists",
    lambda n: n.add_diffeq_node("res", "leaky_tanh", n=4),
)
row(
    "add_diffeq_node/RectiPy weights NaN",
    "esn",
    ValueError,
    r"Network\.add_(diffeq_node|edge).*weights.*NaN",
    lambda n: n.add_diffeq_node("x", "leaky_tanh", weights=np.full((4, 4), NAN)),
)
row(
    "add_diffeq_node/RectiPy weights complex",
    "esn",
    TypeError,
    r"Network\.add_(diffeq_node|edge).*weights",
    lambda n: n.add_diffeq_node("x", "leaky_tanh", weights=np.eye(4) * 1j),
)
row(
    "add_diffeq_node/RectiPy weights 1-D",
    "esn",
    ValueError,
    r"Network\.add_(diffeq_node|edge).*weights",
    lambda n: n.add_diffeq_node("x", "leaky_tanh", n=4, weights=np.ones(4)),
)
row(
    "add_diffeq_node/node_vars NaN param",
    "esn",
    ValueError,
    W + ".*lr",
    lambda n: n.add_diffeq_node("x", "leaky_tanh", n=4, node_vars={"lr": NAN}),
)
row(
    "add_diffeq_node/node_vars NaN state",
    "esn",
    ValueError,
    WM.format("LeakyTanh") + r".*(NaN|finite)",
    lambda n: n.add_diffeq_node("x", "leaky_tanh", n=4, node_vars={"x": NAN}),
)
row(
    "add_diffeq_node/node_vars wrong shape",
    "esn",
    ValueError,
    WM.format("LeakyTanh") + r".*shape",
    lambda n: n.add_diffeq_node("x", "leaky_tanh", n=4, node_vars={"x": np.ones(3)}),
)
row(
    "add_diffeq_node/init NaN",
    "esn",
    ValueError,
    WM.format("LeakyTanh") + ".*init",
    lambda n: n.add_diffeq_node("x", "leaky_tanh", n=4, init={"x": NAN}),
)
row(
    "add_diffeq_node/init wrong shape",
    "esn",
    ValueError,
    WM.format("LeakyTanh") + ".*init",
    lambda n: n.add_diffeq_node("x", "leaky_tanh", n=4, init={"x": np.ones(3)}),
)
row(
    "add_diffeq_node/init unknown var",
    "esn",
    ValueError,
    WM.format("LeakyTanh") + ".*'u'",
    lambda n: n.add_diffeq_node("x", "leaky_tanh", n=4, init={"u": 0.0}),
)
row(
    "add_diffeq_node/train an unknown name",
    "esn",
    ValueError,
    WM.format("LeakyTanh") + r".*train.*\['tau'\].*'lr', 'bias'",
    lambda n: n.add_diffeq_node("x", "leaky_tanh", n=4, train="tau"),
)
row(
    "add_diffeq_node/integrator int",
    "esn",
    ValueError,
    WM.format("LeakyTanh") + ".*integrator",
    lambda n: n.add_diffeq_node("x", "leaky_tanh", n=4, integrator=4),
)
row(
    "add_diffeq_node/unknown keyword (RectiPy dialect)",
    "esn",
    TypeError,
    W + r".*'tau_m'",
    lambda n: n.add_diffeq_node("x", "leaky_tanh", n=4, tau_m=20.0),
)

# every model's time constants (issue 15, point 11): 0, negative, NaN, inf are refused
TAUS = {
    "leaky_tanh": ("LeakyTanh", ["lr"]),
    "leaky_integrator": ("LeakyIntegrator", ["tau"]),
    "li": ("RectiPyLI", ["tau"]),
    "qif_mf": ("QIFMeanField", ["tau"]),
    "leaky_readout": ("LeakyReadout", ["tau"]),
    "lif": ("LIF", ["tau_m"]),
    "alif": ("ALIF", ["tau_m", "tau_a"]),
    "iaf": ("IAF", ["tau_mem"]),
    "qif": ("QIF", ["tau", "tau_s"]),
    "izhikevich": ("Izhikevich", ["C", "tau_u", "tau_s"]),
    "adex": ("AdEx", ["C", "tau_w"]),
    "eif": ("EIF", ["C"]),
    "exp_syn": ("ExpSynapse", ["tau"]),
    "double_exp_syn": ("DoubleExpSynapse", ["tau_r", "tau_d"]),
}
for model, (cls, taus) in TAUS.items():
    for p in taus:
        for label, v in (("0", 0.0), ("-1", -1.0), ("nan", NAN), ("inf", INF)):
            if model == "leaky_tanh" and label == "inf":
                continue  # lr has its own range row below
            row(
                f"add_diffeq_node/{model} {p}={label}",
                "esn",
                ValueError,
                WM.format(cls) + f".*{p}",
                _de(model, **{p: v}),
            )
row(
    "add_diffeq_node/leaky_tanh lr=2",
    "esn",
    ValueError,
    WM.format("LeakyTanh") + ".*lr",
    _de("leaky_tanh", lr=2.0),
)
row(
    "add_diffeq_node/leaky_tanh bias=inf",
    "esn",
    ValueError,
    WM.format("LeakyTanh") + ".*bias",
    _de("leaky_tanh", bias=INF),
)
row(
    "add_diffeq_node/leaky_tanh bias NaN per unit",
    "esn",
    ValueError,
    WM.format("LeakyTanh") + ".*bias",
    _de("leaky_tanh", bias=np.array([0.0, NAN, 0.0, 0.0])),
)
row(
    "add_diffeq_node/leaky_tanh bias wrong shape",
    "esn",
    ValueError,
    WM.format("LeakyTanh") + ".*bias",
    _de("leaky_tanh", bias=np.ones(5)),
)
row(
    "add_diffeq_node/lif v_th=nan",
    "esn",
    ValueError,
    WM.format("LIF") + ".*v_th",
    _de("lif", v_th=NAN),
)
row(
    "add_diffeq_node/lif refractory=-1",
    "esn",
    ValueError,
    WM.format("LIF") + ".*refractory",
    _de("lif", refractory=-1.0),
)
row(
    "add_diffeq_node/lif tau_m complex",
    "esn",
    VT,
    WM.format("LIF") + ".*tau_m",
    _de("lif", tau_m=20.0 + 1j),
)
row(
    "add_diffeq_node/lif tau_m str", "esn", VT, WM.format("LIF") + ".*tau_m", _de("lif", tau_m="20")
)
row(
    "add_diffeq_node/lif tau_m wrong shape",
    "esn",
    ValueError,
    WM.format("LIF") + ".*tau_m",
    _de("lif", tau_m=np.full(3, 20.0)),
)
row(
    "add_diffeq_node/lif unknown surrogate",
    "esn",
    ValueError,
    WM.format("LIF") + ".*surrogate",
    _de("lif", surrogate="sigmoïd"),
)
row(
    "add_diffeq_node/lif unknown reset",
    "esn",
    ValueError,
    WM.format("LIF") + ".*reset",
    _de("lif", reset="zero"),
)
row(
    "add_diffeq_node/iaf noise_std=-1",
    "esn",
    ValueError,
    WM.format("IAF") + ".*noise_std",
    _de("iaf", noise_std=-1.0),
)

# ---- Network.add_edge ---------------------------------------------------------------------
W = r"Network\.add_edge\('in', 'out'\)"
WR = r"Network\.add_edge\('out', 'res'\)"


def _edge(**kw: Any) -> Callable[[Network], Any]:
    return lambda net: net.add_edge("in", "out", **kw)


def _back(**kw: Any) -> Callable[[Network], Any]:
    return lambda net: net.add_edge("out", "res", feedback=True, **kw)


row(
    "add_edge/weights NaN",
    "esn",
    ValueError,
    W + ".*weights.*NaN",
    _edge(weights=np.full((2, 3), NAN)),
)
row(
    "add_edge/weights inf",
    "esn",
    ValueError,
    W + ".*weights.*inf",
    _edge(weights=np.full((2, 3), INF)),
)
row(
    "add_edge/weights complex",
    "esn",
    TypeError,
    W + ".*weights",
    _edge(weights=np.ones((2, 3)) * 1j),
)
row(
    "add_edge/weights complex tensor",
    "esn",
    TypeError,
    W + ".*weights",
    _edge(weights=torch.ones(2, 3, dtype=torch.complex64)),
)
row(
    "add_edge/weights object array",
    "esn",
    TypeError,
    W + ".*weights",
    _edge(weights=np.array([[None] * 3] * 2, dtype=object)),
)
row(
    "add_edge/weights strings",
    "esn",
    TypeError,
    W + ".*weights",
    _edge(weights=np.array([["a"] * 3] * 2)),
)
row("add_edge/weights a string", "esn", VT, W + ".*weights", _edge(weights="ones"))
row(
    "add_edge/weights 1-D",
    "esn",
    ValueError,
    W + ".*weights must have shape",
    _edge(weights=np.ones(6)),
)
row(
    "add_edge/weights 3-D",
    "esn",
    ValueError,
    W + ".*weights must have shape",
    _edge(weights=np.ones((1, 2, 3))),
)
row(
    "add_edge/weights scalar",
    "esn",
    ValueError,
    W + ".*weights must have shape",
    _edge(weights=1.0),
)
row(
    "add_edge/scipy weights NaN",
    "esn",
    ValueError,
    W + ".*weights.*NaN",
    _edge(weights=scipy.sparse.csr_matrix(np.full((2, 3), NAN))),
)
row(
    "add_edge/scipy weights wrong shape",
    "esn",
    ValueError,
    W + ".*weights must have shape",
    _edge(weights=scipy.sparse.eye(3, format="csr")),
)
row("add_edge/mask NaN", "esn", ValueError, W + ".*mask", _edge(mask=np.full((2, 3), NAN)))
row("add_edge/mask not 0/1", "esn", ValueError, W + ".*mask", _edge(mask=np.full((2, 3), 0.5)))
row("add_edge/mask wrong shape", "esn", ValueError, W + ".*mask", _edge(mask=np.ones((3, 2))))
row("add_edge/mask complex", "esn", TypeError, W + ".*mask", _edge(mask=np.ones((2, 3)) * 1j))
row("add_edge/mask strings", "esn", TypeError, W + ".*mask", _edge(mask=np.array([["1"] * 3] * 2)))
row("add_edge/bias NaN", "esn", ValueError, W + ".*bias", _edge(bias=np.array([0.0, NAN])))
row("add_edge/bias inf", "esn", ValueError, W + ".*bias", _edge(bias=np.array([INF, 0.0])))
row("add_edge/bias wrong shape", "esn", ValueError, W + ".*bias", _edge(bias=np.ones(3)))
row("add_edge/bias a string", "esn", VT, W + ".*bias", _edge(bias="yes"))
row("add_edge/delay=-1", "esn", ValueError, WR + ".*delay", _back(delay=-1))
row("add_edge/delay=1.5", "esn", ValueError, WR + ".*delay", _back(delay=1.5))
row("add_edge/delay=str", "esn", ValueError, WR + ".*delay", _back(delay="1"))
row("add_edge/train unknown", "esn", ValueError, W + ".*train", _edge(train="sgd"))
row("add_edge/train True", "esn", ValueError, W + ".*train", _edge(train=True))
row("add_edge/sparse and gd", "esn", ValueError, W + ".*sparse", _edge(sparse=True, train="gd"))
row("add_edge/init NaN", "esn", ValueError, WR + ".*init", _back(init=NAN))
row(
    "add_edge/init inf per unit",
    "esn",
    ValueError,
    WR + ".*init",
    _back(init=torch.tensor([INF, 0.0])),
)
row("add_edge/init wrong width", "esn", ValueError, WR + ".*init", _back(init=torch.ones(5)))
row("add_edge/init 3-D", "esn", ValueError, WR + ".*init", _back(init=torch.ones(2, 2, 2)))
row(
    "add_edge/init complex",
    "esn",
    TypeError,
    WR + ".*init",
    _back(init=torch.ones(2, dtype=torch.complex64)),
)
row("add_edge/seed a string", "esn", TypeError, W + ".*seed", _edge(seed="1"))
row("add_edge/seed a float", "esn", TypeError, W + ".*seed", _edge(seed=1.5))
row(
    "add_edge/source None",
    "esn",
    KeyError,
    r"Network\.add_edge\(None, 'out'\): no node None",
    lambda n: n.add_edge(None, "out"),
)
row(
    "add_edge/target unhashable",
    "esn",
    (KeyError, TypeError),
    r"Network\.add_edge",
    lambda n: n.add_edge("in", ["out"]),
)
row(
    "add_edge/source_var of a function node",
    "esn",
    ValueError,
    W + ".*source_var",
    _edge(source_var="v"),
)
row(
    "add_edge/unknown keyword (RectiPy's weight)",
    "esn",
    TypeError,
    KW(r"add_edge", "dtype"),
    _edge(dtype=torch.float64),
)

# ---- get_node / get_edge / pop_node / pop_edge ----------------------------------------------
row(
    "get_node/None", "esn", KeyError, r"Network\.get_node: no node None", lambda n: n.get_node(None)
)
row(
    "get_node/unhashable",
    "esn",
    (KeyError, TypeError),
    r"Network\.get_node",
    lambda n: n.get_node(["res"]),
)
row(
    "get_node/unknown keyword",
    "esn",
    TypeError,
    KW(r"get_node"),
    lambda n: n.get_node(label="res", x=1),
)
row(
    "get_edge/unknown source",
    "esn",
    KeyError,
    r"Network\.get_edge: no edge 'ghost' -> 'res'",
    lambda n: n.get_edge("ghost", "res"),
)
row(
    "get_edge/unhashable",
    "esn",
    (KeyError, TypeError),
    r"Network\.get_edge",
    lambda n: n.get_edge(["in"], "res"),
)
row(
    "pop_node/unknown",
    "esn",
    KeyError,
    r"Network\.pop_node: no node 'ghost'",
    lambda n: n.pop_node("ghost"),
)
row(
    "pop_node/None", "esn", KeyError, r"Network\.pop_node: no node None", lambda n: n.pop_node(None)
)
row(
    "pop_edge/unknown",
    "esn",
    KeyError,
    r"Network\.pop_edge: no edge 'out' -> 'res'",
    lambda n: n.pop_edge("out", "res"),
)
row(
    "pop_edge/unknown keyword",
    "esn",
    TypeError,
    KW(r"pop_edge"),
    lambda n: n.pop_edge("res", "out", force=True),
)

# ---- compile ------------------------------------------------------------------------------
W = r"Network\.compile"
row(
    "compile/output_node unknown",
    "esn",
    KeyError,
    W + r": output_node='ghost' is not a node",
    lambda n: n.compile(output_node="ghost"),
)
row(
    "compile/input_node int",
    "esn",
    (KeyError, TypeError),
    W + r".*input_node",
    lambda n: n.compile(input_node=3),
)
row(
    "compile/output_node list",
    "esn",
    (KeyError, TypeError),
    W + r".*output_node",
    lambda n: n.compile(output_node=["out"]),
)
row(
    "compile/unknown keyword",
    "esn",
    TypeError,
    KW(r"compile", "dtype"),
    lambda n: n.compile(dtype=torch.float64),
)


# ---- run ----------------------------------------------------------------------------------
W = r"(Network|CompiledNetwork)\.run"
row("run/inputs a string", "esn", TypeError, W + ".*inputs", lambda n: n.run("abc"))
row(
    "run/inputs string array",
    "esn",
    TypeError,
    W + ".*inputs",
    lambda n: n.run(np.array([[["a", "b", "c"]]])),
)
row(
    "run/inputs ragged list",
    "esn",
    (TypeError, ValueError),
    W + ".*inputs",
    lambda n: n.run([[0.0, 1.0, 2.0], [1.0]]),
)
row(
    "run/inputs a dict naming no input node",
    "esn",
    ValueError,
    W + r".*one entry per input node \['in'\].*\['nope'\] are not input nodes",
    lambda n: n.run({"nope": X}),
)
row(
    "run/inputs 4-D",
    "esn",
    ValueError,
    W + r".*got shape \(1, 2, 10, 3\)",
    lambda n: n.run(X[None]),
)
row(
    "run/inputs inf",
    "esn",
    ValueError,
    W + ".*NaN or inf",
    lambda n: n.run(torch.full((2, 4, 3), -INF)),
)
row(
    "run/inputs one NaN",
    "esn",
    ValueError,
    W + ".*NaN or inf",
    lambda n: n.run(
        X.clone().index_put_(
            (torch.tensor([1]), torch.tensor([9]), torch.tensor([2])), torch.tensor(NAN)
        )
    ),
)
row(
    "run/inputs complex128",
    "esn",
    TypeError,
    W + ".*real",
    lambda n: n.run(np.zeros((2, 3, 3), dtype=np.complex128)),
)
row(
    "run/batch mismatch (B=3 vs held 2)",
    "esn",
    ValueError,
    W + r".*batch",
    lambda n: n.run(torch.zeros(3, 4, 3)),
)
row("run/steps negative", "esn", ValueError, W + r".*steps", lambda n: n.run(steps=-2))
row("run/steps float", "esn", ValueError, W + r".*steps", lambda n: n.run(steps=2.5))
row("run/steps str", "esn", ValueError, W + r".*steps", lambda n: n.run(steps="3"))
row(
    "run/sampling_steps=0",
    "esn",
    ValueError,
    r"Network\.run.*sampling_steps",
    lambda n: n.run(X, sampling_steps=0),
)
row("run/cutoff=-1", "esn", ValueError, r"Network\.run.*cutoff", lambda n: n.run(X, cutoff=-1))
row("run/record an int", "esn", VT, W + ".*record", lambda n: n.run(X, record=3))
row(
    "run/record a.b.c",
    "esn",
    ValueError,
    W + ".*record.*'res\\.v\\.x'",
    lambda n: n.run(X, record=["res.v.x"]),
)
row(
    "run/record a parameter",
    "esn",
    ValueError,
    W + r".*cannot record 'res\.lr'",
    lambda n: n.run(X, record=["res.lr"]),
)
row("run/state not a dict", "esn", TypeError, W + ".*state", lambda n: n.run(X, state=3))
row(
    "run/state NaN",
    "esn",
    ValueError,
    W + ".*state.*NaN",
    lambda n: n.run(X, state={k: torch.full_like(v, NAN) for k, v in n.state.items()}),
)
row(
    "run/state unknown key",
    "esn",
    ValueError,
    W + ".*state.*'ghost\\.v'",
    lambda n: n.run(X, state={**n.state, "ghost.v": torch.zeros(2, 8)}),
)
row(
    "run/state entry a list",
    "esn",
    ValueError,
    W + r".*state entry 'res\.x'",
    lambda n: n.run(X, state={**n.state, "res.x": [[0.0] * 8] * 2}),
)
row(
    "run/compiled unknown keyword",
    "esn",
    TypeError,
    KW(r"CompiledNetwork\.run", "record"),
    lambda n: n.model.run(X, record=["res"]),
)

# ---- forward ------------------------------------------------------------------------------
W = r"(Network|CompiledNetwork)\.forward"
row(
    "forward/wrong width",
    "esn",
    ValueError,
    W + r": inputs have 4 channels",
    lambda n: n.forward(torch.zeros(2, 5, 4)),
)
row(
    "forward/wrong rank",
    "esn",
    ValueError,
    W + r".*got shape \(5,\)",
    lambda n: n.model(torch.zeros(5)),
)
row("forward/empty", "esn", ValueError, W + r".*empty", lambda n: n.model(torch.zeros(2, 0, 3)))
row(
    "forward/complex",
    "esn",
    TypeError,
    W + r".*real",
    lambda n: n.model(torch.zeros(2, 3, 3, dtype=torch.complex64)),
)
row(
    "forward/object array", "esn", TypeError, W + r".*(numeric|real|object)", lambda n: n.model(OBJ)
)
row("forward/NaN", "esn", ValueError, W + r".*NaN", lambda n: n.forward(torch.full((2, 3, 3), NAN)))
row(
    "forward/state of the wrong batch",
    "esn",
    ValueError,
    W + r".*state entry",
    lambda n: n.model(X, state=n.model.init_state(3)),
)
row("forward/steps negative", "esn", ValueError, W + r".*steps", lambda n: n.model(None, steps=-1))
row(
    "forward/unknown keyword",
    "esn",
    TypeError,
    KW(r"forward", "record"),
    lambda n: n.model(X, record=["res"]),
)
row(
    "forward/Network unknown keyword",
    "esn",
    TypeError,
    KW(r"forward", "observer"),
    lambda n: n.forward(X, observer=Observer(["res"])),
)

# ---- step ---------------------------------------------------------------------------------
W = r"CompiledNetwork\.step"
row(
    "step/x 3-D",
    "esn",
    ValueError,
    W + r".*\(B, C\)",
    lambda n: n.model.step(torch.zeros(2, 1, 3), n.model.init_state(2)),
)
row(
    "step/x NaN",
    "esn",
    ValueError,
    W + r".*NaN",
    lambda n: n.model.step(torch.full((2, 3), NAN), n.model.init_state(2)),
)
row(
    "step/x complex",
    "esn",
    TypeError,
    W + r".*real",
    lambda n: n.model.step(torch.zeros(2, 3, dtype=torch.complex64), n.model.init_state(2)),
)
row(
    "step/x a string",
    "esn",
    TypeError,
    W + r".*x_t",
    lambda n: n.model.step("abc", n.model.init_state(2)),
)
row(
    "step/x object array",
    "esn",
    TypeError,
    W + r".*x_t",
    lambda n: n.model.step(OBJ[0], n.model.init_state(1)),
)
row(
    "step/x empty batch",
    "esn",
    ValueError,
    W + r".*empty",
    lambda n: n.model.step(torch.zeros(0, 3), n.model.init_state(1)),
)
row(
    "step/state missing key",
    "esn",
    ValueError,
    W + r".*lacks",
    lambda n: n.model.step(torch.zeros(2, 3), {"res.x": torch.zeros(2, 8)}),
)
row(
    "step/state NaN",
    "esn",
    ValueError,
    W + r".*state.*NaN",
    lambda n: n.model.step(
        torch.zeros(2, 3), {k: torch.full_like(v, NAN) for k, v in n.model.init_state(2).items()}
    ),
)
row(
    "step/batch mismatch",
    "esn",
    ValueError,
    W + r".*state entry",
    lambda n: n.model.step(torch.zeros(2, 3), n.model.init_state(3)),
)
row(
    "step/None with empty state",
    "esn",
    ValueError,
    W + r".*state",
    lambda n: n.model.step(None, {}),
)
row(
    "step/unknown keyword",
    "esn",
    TypeError,
    KW(r"step"),
    lambda n: n.model.step(torch.zeros(2, 3), n.model.init_state(2), dt=0.5),
)

# ---- init_state ---------------------------------------------------------------------------
W = r"CompiledNetwork\.init_state: batch_size must be an int >= 1"
row("init_state/-1", "esn", ValueError, W, lambda n: n.model.init_state(-1))
row("init_state/2.0", "esn", ValueError, W, lambda n: n.model.init_state(2.0))
row("init_state/str", "esn", ValueError, W, lambda n: n.model.init_state("2"))
row("init_state/None", "esn", ValueError, W, lambda n: n.model.init_state(None))
row("init_state/True", "esn", ValueError, W, lambda n: n.model.init_state(True))
row(
    "init_state/unknown keyword",
    "esn",
    TypeError,
    KW(r"init_state"),
    lambda n: n.model.init_state(2, dtype=torch.float64),
)

# ---- reset --------------------------------------------------------------------------------
W = r"(Network|CompiledNetwork)\.reset"
row("reset/state not a dict", "esn", TypeError, W + ".*state", lambda n: n.reset(3))
row(
    "reset/state missing entries",
    "esn",
    ValueError,
    W + ".*lacks",
    lambda n: n.reset({"res.x": torch.zeros(2, 8)}),
)
row(
    "reset/state wrong width",
    "esn",
    ValueError,
    W + ".*state entry",
    lambda n: n.reset({**n.state, "res.x": torch.zeros(2, 5)}),
)
row(
    "reset/state NaN",
    "esn",
    ValueError,
    W + ".*NaN",
    lambda n: n.reset({k: torch.full_like(v, NAN) for k, v in n.state.items()}),
)
row(
    "reset/unknown keyword",
    "esn",
    TypeError,
    KW(r"reset"),
    lambda n: n.reset(batch_size=2),
)

# ---- get_var / set_var --------------------------------------------------------------------
row(
    "get_var/node None",
    "esn",
    KeyError,
    r"Network\.get_var: no node None",
    lambda n: n.get_var(None, "v"),
)
row(
    "get_var/unknown node names get_var",
    "esn",
    KeyError,
    r"Network\.get_var: no node 'ghost'",
    lambda n: n.get_var("ghost", "v"),
)
row(
    "get_var/var None",
    "esn",
    (KeyError, TypeError),
    r"Network\.get_var.*var",
    lambda n: n.get_var("res", None),
)
row(
    "get_var/function node",
    "esn",
    KeyError,
    r"Network\.get_var: node 'out' has no variable 'v'",
    lambda n: n.get_var("out", "v"),
)
row(
    "get_var/unknown keyword",
    "esn",
    TypeError,
    KW(r"get_var"),
    lambda n: n.get_var("res", "x", batch=0),
)
W = r"Network\.set_var"
row(
    "set_var/unknown node names set_var",
    "esn",
    KeyError,
    W + r": no node 'ghost'",
    lambda n: n.set_var("ghost", "v", 0.0),
)
row(
    "set_var/value a string",
    "esn",
    TypeError,
    W + r".*res\.x",
    lambda n: n.set_var("res", "x", "abc"),
)
row("set_var/value None", "esn", TypeError, W + r".*res\.x", lambda n: n.set_var("res", "x", None))
row(
    "set_var/value object array",
    "esn",
    TypeError,
    W + r".*res\.x",
    lambda n: n.set_var("res", "x", np.array([None] * 8, dtype=object)),
)
row(
    "set_var/value complex",
    "esn",
    TypeError,
    W + r".*res\.x",
    lambda n: n.set_var("res", "x", np.ones(8) * 1j),
)
row(
    "set_var/value inf",
    "esn",
    ValueError,
    W + r".*res\.x.*NaN or inf",
    lambda n: n.set_var("res", "x", INF),
)
row(
    "set_var/state of another batch",
    "esn",
    ValueError,
    W + r".*res\.x has shape \(2, 8\)",
    lambda n: n.set_var("res", "x", torch.zeros(3, 8)),
)
row(
    "set_var/parameter wrong shape",
    "esn",
    ValueError,
    W + r".*lr",
    lambda n: n.set_var("res", "lr", np.ones(3)),
)
row(
    "set_var/parameter out of range",
    "esn",
    ValueError,
    W + r".*lr",
    lambda n: n.set_var("res", "lr", 2.0),
)
row(
    "set_var/parameter zero",
    "esn",
    ValueError,
    W + r".*lr",
    lambda n: n.set_var("res", "lr", 0.0),
)
row(
    "set_var/lif tau_m negative",
    "lif",
    ValueError,
    W + r".*tau_m",
    lambda n: n.set_var("rec", "tau_m", -1.0),
)
row(
    "set_var/unknown keyword",
    "esn",
    TypeError,
    KW(r"set_var"),
    lambda n: n.set_var("res", "x", 0.0, batch=0),
)

# ---- fit_ridge ----------------------------------------------------------------------------
W = r"Network\.fit_ridge"


def _ridge(x: Any = None, y: Any = None, **kw: Any) -> Callable[[Network], Any]:
    x = X if x is None else x
    y = Y if y is None else y
    return lambda net: net.fit_ridge(x, y, **kw)


row(
    "fit_ridge/targets NaN",
    "esn",
    ValueError,
    W + r".*targets.*NaN",
    _ridge(y=torch.full((2, 10, 2), NAN)),
)
row(
    "fit_ridge/inputs inf",
    "esn",
    ValueError,
    W + r".*inputs.*NaN or inf",
    _ridge(x=torch.full((2, 10, 3), INF)),
)
row(
    "fit_ridge/inputs wrong width",
    "esn",
    ValueError,
    W + r".*inputs have 4 channels",
    _ridge(x=torch.zeros(2, 10, 4)),
)
row(
    "fit_ridge/batch mismatch",
    "esn",
    ValueError,
    W + r".*\(B, T\)",
    _ridge(y=torch.zeros(3, 10, 2)),
)
row(
    "fit_ridge/length mismatch",
    "esn",
    ValueError,
    W + r".*\(B, T\)",
    _ridge(y=torch.zeros(2, 9, 2)),
)
row(
    "fit_ridge/targets 4-D", "esn", ValueError, W + r".*targets", _ridge(y=torch.zeros(1, 2, 10, 2))
)
row(
    "fit_ridge/inputs complex",
    "esn",
    TypeError,
    W + r".*inputs.*real",
    _ridge(x=X.to(torch.complex64)),
)
row(
    "fit_ridge/targets strings",
    "esn",
    TypeError,
    W + r".*targets",
    _ridge(y=np.full((2, 10, 2), "a")),
)
row(
    "fit_ridge/inputs object array",
    "esn",
    TypeError,
    W + r".*inputs",
    _ridge(x=np.empty((2, 10, 3), dtype=object)),
)
row(
    "fit_ridge/inputs empty",
    "esn",
    ValueError,
    W + r".*(empty|0 steps)",
    _ridge(x=torch.zeros(2, 0, 3), y=torch.zeros(2, 0, 2)),
)
row(
    "fit_ridge/alpha negative",
    "esn",
    ValueError,
    r"(Network\.fit_ridge|Ridge).*alpha",
    _ridge(alpha=-1.0),
)
row(
    "fit_ridge/alpha NaN",
    "esn",
    ValueError,
    r"(Network\.fit_ridge|Ridge).*alpha",
    _ridge(alpha=NAN),
)
row("fit_ridge/alpha str", "esn", VT, r"(Network\.fit_ridge|Ridge).*alpha", _ridge(alpha="1e-6"))
row(
    "fit_ridge/washout negative",
    "esn",
    ValueError,
    r"(Network\.fit_ridge|Ridge).*washout",
    _ridge(washout=-1),
)
row(
    "fit_ridge/washout float",
    "esn",
    ValueError,
    r"(Network\.fit_ridge|Ridge).*washout",
    _ridge(washout=2.5),
)
row("fit_ridge/washout >= T", "esn", ValueError, W + r".*washout", _ridge(washout=10))
row("fit_ridge/chunk=0", "esn", ValueError, W + r".*chunk", _ridge(chunk=0))
row("fit_ridge/chunk negative", "esn", ValueError, W + r".*chunk", _ridge(chunk=-5))
row(
    "fit_ridge/edge unknown",
    "esn",
    KeyError,
    W + r": no edge 'res' -> 'ghost'",
    _ridge(edge=("res", "ghost")),
)
row(
    "fit_ridge/edge a string",
    "esn",
    TypeError,
    W + r": edge must be a \(source, target\)",
    _ridge(edge="res"),
)
row(
    "fit_ridge/edge delayed",
    "esn",
    ValueError,
    W + r".*delay",
    _ridge(y=torch.zeros(2, 10, 8), edge=("res", "res"), bias=False),
)
row(
    "fit_ridge/edge of other width",
    "esn",
    ValueError,
    W + r".*has 2 outputs, the targets have 3",
    _ridge(y=torch.zeros(2, 10, 3), edge=("res", "out")),
)
row(
    "fit_ridge/readout label taken",
    "esn",
    ValueError,
    W + r": a node 'res' exists",
    _ridge(readout="res"),
)
row(
    "fit_ridge/no edge, no readout",
    "esn",
    ValueError,
    W + r".*add_readout_node",
    _ridge(add_readout_node=False),
)
row(
    "fit_ridge/list vs array",
    "esn",
    ValueError,
    W + r".*both",
    lambda n: n.fit_ridge([X[0], X[1]], Y),
)
row("fit_ridge/empty lists", "esn", ValueError, W + r".*(empty|no )", lambda n: n.fit_ridge([], []))
row(
    "fit_ridge/list of unequal widths",
    "esn",
    ValueError,
    W + r".*widths",
    lambda n: n.fit_ridge([X[0], X[1]], [Y[0], torch.zeros(10, 3)]),
)
row(
    "fit_ridge/unknown keyword",
    "esn",
    TypeError,
    KW(r"fit_ridge", "ridge"),
    _ridge(ridge=1e-6),
)

row("fit_ridge/inputs a string", "esn", TypeError, W + r".*inputs", _ridge(x="abc"))
row(
    "fit_ridge/targets None",
    "esn",
    (TypeError, ValueError),
    W + r".*targets",
    lambda n: n.fit_ridge(X, None),
)

# ---- fit_rls ------------------------------------------------------------------------------
W = r"Network\.fit_rls"
WRLS = r"(Network\.fit_rls|RLS)"


def _rls(x: Any = None, y: Any = None, **kw: Any) -> Callable[[Network], Any]:
    x = X if x is None else x
    y = Y if y is None else y
    return lambda net: net.fit_rls(x, y, **kw)


row(
    "fit_rls/targets missing",
    "esn",
    ValueError,
    W + r": targets are required",
    lambda n: n.fit_rls(X),
)
row(
    "fit_rls/targets NaN",
    "esn",
    ValueError,
    W + r".*targets.*NaN",
    _rls(y=torch.full((2, 10, 2), NAN)),
)
row(
    "fit_rls/inputs NaN",
    "esn",
    ValueError,
    W + r".*inputs.*NaN",
    _rls(x=torch.full((2, 10, 3), NAN)),
)
row("fit_rls/batch mismatch", "esn", ValueError, W + r".*\(B, T\)", _rls(y=torch.zeros(1, 10, 2)))
row("fit_rls/targets 4-D", "esn", ValueError, W + r".*targets", _rls(y=torch.zeros(1, 2, 10, 2)))
row(
    "fit_rls/list of sequences",
    "esn",
    TypeError,
    W + r".*one \(T, n\)",
    lambda n: n.fit_rls([X[0]], [Y[0]]),
)
row("fit_rls/alpha=0", "esn", ValueError, WRLS + r".*alpha", _rls(alpha=0.0))
row("fit_rls/alpha negative", "esn", ValueError, WRLS + r".*alpha", _rls(alpha=-1.0))
row("fit_rls/alpha NaN", "esn", ValueError, WRLS + r".*alpha", _rls(alpha=NAN))
row("fit_rls/forgetting=0", "esn", ValueError, WRLS + r".*forgetting", _rls(forgetting=0.0))
row("fit_rls/forgetting>1", "esn", ValueError, WRLS + r".*forgetting", _rls(forgetting=1.5))
row("fit_rls/forgetting NaN", "esn", ValueError, WRLS + r".*forgetting", _rls(forgetting=NAN))
row(
    "fit_rls/update_steps=0",
    "esn",
    ValueError,
    WRLS + r".*(update_steps|every)",
    _rls(update_steps=0),
)
row(
    "fit_rls/update_steps float",
    "esn",
    ValueError,
    WRLS + r".*(update_steps|every)",
    _rls(update_steps=1.5),
)
row("fit_rls/washout negative", "esn", ValueError, WRLS + r".*(washout|start)", _rls(washout=-1))
row(
    "fit_rls/feedback_weights NaN",
    "esn",
    ValueError,
    r"Network\.(fit_rls|add_edge).*weights",
    _rls(feedback_weights=np.full((2, 2), NAN)),
)
row(
    "fit_rls/feedback_weights wrong shape",
    "esn",
    ValueError,
    W + r".*feedback_weights must have shape",
    _rls(feedback_weights=np.ones((2, 3))),
)
row(
    "fit_rls/record unknown",
    "esn",
    ValueError,
    W + r".*cannot record 'ghost'",
    _rls(record=["ghost"]),
)
row("fit_rls/sampling_steps=0", "esn", ValueError, W + r".*sampling_steps", _rls(sampling_steps=0))
row("fit_rls/cutoff negative", "esn", ValueError, W + r".*cutoff", _rls(cutoff=-1))
row(
    "fit_rls/trainer of another kind",
    "esn",
    TypeError,
    W + r": trainer must be the RLS",
    _rls(trainer="rls"),
)
row("fit_rls/rls_dtype int", "esn", TypeError, WRLS + r".*dtype", _rls(rls_dtype=torch.int32))
row("fit_rls/edge unknown", "esn", KeyError, W + r": no edge", _rls(edge=("res", "ghost")))
row(
    "fit_rls/readout label taken",
    "esn",
    ValueError,
    W + r": a node 'in' exists",
    _rls(readout="in"),
)
row(
    "fit_rls/unknown keyword",
    "esn",
    TypeError,
    KW(r"fit_rls", "lambda_"),
    _rls(lambda_=0.99),
)

row(
    "fit_rls/inputs empty",
    "esn",
    ValueError,
    W + r".*(empty|0 steps)",
    _rls(x=torch.zeros(2, 0, 3), y=torch.zeros(2, 0, 2)),
)

# ---- fit_bptt -----------------------------------------------------------------------------
W = r"Network\.fit_bptt"
WB = r"(Network\.fit_bptt|BPTT)"


def _bptt(x: Any = None, y: Any = None, **kw: Any) -> Callable[[Network], Any]:
    x = X if x is None else x
    y = Y if y is None else y
    return lambda net: net.fit_bptt(x, y, **kw)


row(
    "fit_bptt/targets NaN",
    "esn",
    ValueError,
    W + r".*targets.*NaN",
    _bptt(y=torch.full((2, 10, 2), NAN)),
)
row(
    "fit_bptt/inputs inf",
    "esn",
    ValueError,
    W + r".*inputs.*NaN or inf",
    _bptt(x=torch.full((2, 10, 3), INF)),
)
row(
    "fit_bptt/inputs wrong width",
    "esn",
    ValueError,
    W + r".*inputs have 4 channels",
    _bptt(x=torch.zeros(2, 10, 4)),
)
row("fit_bptt/batch mismatch", "esn", ValueError, W + r".*\(B, T\)", _bptt(y=torch.zeros(3, 10, 2)))
row(
    "fit_bptt/targets wider than the output",
    "esn",
    ValueError,
    W + r".*targets.*3.*2",
    _bptt(y=torch.zeros(2, 10, 3)),
)
row(
    "fit_bptt/(B,) class labels",
    "esn",
    ValueError,
    W + r".*targets",
    _bptt(y=torch.tensor([0, 1]), loss="ce"),
)
row(
    "fit_bptt/class index out of range",
    "esn",
    ValueError,
    W + r".*class",
    _bptt(y=torch.full((2, 10), 5), loss="ce"),
)
row(
    "fit_bptt/negative class index",
    "esn",
    ValueError,
    W + r".*class",
    _bptt(y=torch.full((2, 10), -1), loss="ce"),
)
row(
    "fit_bptt/optimizer unknown",
    "esn",
    ValueError,
    WB + r".*unknown optimizer 'adamm'",
    _bptt(optimizer="adamm"),
)
row("fit_bptt/loss unknown", "esn", ValueError, WB + r".*unknown loss 'msee'", _bptt(loss="msee"))
row("fit_bptt/lr negative", "esn", ValueError, WB + r".*lr", _bptt(lr=-1e-3))
row("fit_bptt/lr NaN", "esn", ValueError, WB + r".*lr", _bptt(lr=NAN))
row("fit_bptt/epochs=0", "esn", ValueError, WB + r".*epochs", _bptt(epochs=0))
row("fit_bptt/epochs float", "esn", ValueError, WB + r".*epochs", _bptt(epochs=2.5))
row("fit_bptt/update_steps=0", "esn", ValueError, WB + r".*update_steps", _bptt(update_steps=0))
row(
    "fit_bptt/clip_grad_norm negative",
    "esn",
    ValueError,
    WB + r".*clip_grad_norm",
    _bptt(clip_grad_norm=-1.0),
)
row(
    "fit_bptt/optimizer_kwargs unknown",
    "esn",
    TypeError,
    WB + r".*'betas2'",
    _bptt(optimizer="adam", optimizer_kwargs={"betas2": 0.9}),
)
row("fit_bptt/trainer of another kind", "esn", TypeError, W + r".*trainer", _bptt(trainer="bptt"))
row("fit_bptt/no trainable parameter", "fixed", ValueError, WB + r".*(parameter|train)", _bptt())
row(
    "fit_bptt/unknown keyword",
    "esn",
    TypeError,
    KW(r"fit_bptt", "n_epochs"),
    _bptt(n_epochs=2),
)

row(
    "fit_bptt/inputs empty",
    "esn",
    ValueError,
    W + r".*(empty|0 steps)",
    _bptt(x=torch.zeros(2, 0, 3), y=torch.zeros(2, 0, 2)),
)

# ---- fit_eprop ----------------------------------------------------------------------------
W = r"Network\.fit_eprop"
WE = r"(Network\.fit_eprop|EProp)"


def _eprop(x: Any = None, y: Any = None, **kw: Any) -> Callable[[Network], Any]:
    x = S if x is None else x
    y = YS if y is None else y
    return lambda net: net.fit_eprop(x, y, **kw)


row(
    "fit_eprop/targets NaN",
    "lif",
    ValueError,
    W + r".*targets.*NaN",
    _eprop(y=torch.full((2, 12, 2), NAN)),
)
row(
    "fit_eprop/inputs NaN",
    "lif",
    ValueError,
    W + r".*inputs.*NaN",
    _eprop(x=torch.full((2, 12, 4), NAN)),
)
row(
    "fit_eprop/inputs wrong width",
    "lif",
    ValueError,
    W + r".*inputs.*4",
    _eprop(x=torch.zeros(2, 12, 5)),
)
row(
    "fit_eprop/batch mismatch",
    "lif",
    ValueError,
    W + r".*(\(B, T\)|batch)",
    _eprop(y=torch.zeros(3, 12, 2)),
)
row(
    "fit_eprop/targets wrong width",
    "lif",
    ValueError,
    W + r".*targets",
    _eprop(y=torch.zeros(2, 12, 3)),
)
row(
    "fit_eprop/class index out of range",
    "lif",
    ValueError,
    W + r".*class",
    _eprop(y=torch.full((2, 12), 7)),
)
row(
    "fit_eprop/loss_mask wrong shape",
    "lif",
    ValueError,
    W + r".*loss_mask",
    _eprop(loss_mask=torch.ones(2, 5)),
)
row(
    "fit_eprop/loss_mask NaN",
    "lif",
    ValueError,
    W + r".*loss_mask",
    _eprop(loss_mask=torch.full((2, 12), NAN)),
)
row("fit_eprop/feedback unknown", "lif", ValueError, WE + r".*feedback", _eprop(feedback="sym"))
row("fit_eprop/task unknown", "lif", ValueError, WE + r".*task", _eprop(task="regress"))
row("fit_eprop/reduction unknown", "lif", ValueError, WE + r".*reduction", _eprop(reduction="avg"))
row("fit_eprop/lr negative", "lif", ValueError, WE + r".*lr", _eprop(lr=-1.0))
row("fit_eprop/epochs=0", "lif", ValueError, WE + r".*epochs", _eprop(epochs=0))
row(
    "fit_eprop/reg_rate negative",
    "lif",
    ValueError,
    WE + r".*reg_rate",
    _eprop(reg_rate=-5.0, reg_weight=1.0),
)
row("fit_eprop/not a spiking network", "esn", ValueError, W, lambda n: n.fit_eprop(X, Y))
row("fit_eprop/empty list", "lif", ValueError, W + r": no targets", lambda n: n.fit_eprop([], []))
row(
    "fit_eprop/unknown keyword",
    "lif",
    TypeError,
    KW(r"fit_eprop", "loss"),
    _eprop(loss="mse"),
)

row(
    "fit_eprop/targets strings",
    "lif",
    TypeError,
    W + r".*targets",
    _eprop(y=np.full((2, 12, 2), "a")),
)
row(
    "fit_eprop/loss_mask batch mismatch",
    "lif",
    ValueError,
    W + r".*loss_mask",
    _eprop(loss_mask=torch.ones(3, 12)),
)

row(
    "fit_eprop/inputs empty",
    "lif",
    ValueError,
    W + r".*(empty|0 steps)",
    _eprop(x=torch.zeros(2, 0, 4), y=torch.zeros(2, 0, 2)),
)

# ---- test ---------------------------------------------------------------------------------
W = r"Network\.test"
row(
    "test/unknown loss",
    "esn",
    ValueError,
    W + r": unknown loss 'r2'",
    lambda n: n.test(X, Y, loss="r2"),
)
row(
    "test/targets of another width",
    "esn",
    ValueError,
    W + r".*targets",
    lambda n: n.test(X, torch.zeros(2, 10, 3)),
)
row(
    "test/targets NaN",
    "esn",
    ValueError,
    W + r".*targets.*NaN",
    lambda n: n.test(X, torch.full((2, 10, 2), NAN)),
)
row("test/length mismatch", "esn", ValueError, W + r".*\(B, T\)", lambda n: n.test(X, Y[:, :5]))
row(
    "test/lists of other lengths",
    "esn",
    ValueError,
    W + r".*inputs \(sequence 1\) have \(B, T\)",
    lambda n: n.test([X[0], X[1]], [Y[0], Y[1][:4]]),
)
row(
    "test/unknown keyword",
    "esn",
    TypeError,
    KW(r"(test|run)", "metric"),
    lambda n: n.test(X, Y, metric="mse"),
)

row(
    "test/inputs wrong width",
    "esn",
    ValueError,
    W + r".*inputs have 4 channels",
    lambda n: n.test(torch.zeros(2, 10, 4), Y),
)
row(
    "test/inputs complex",
    "esn",
    TypeError,
    W + r".*real",
    lambda n: n.test(X.to(torch.complex64), Y),
)

row(
    "test/inputs empty",
    "esn",
    ValueError,
    W + r".*(empty|0 steps)",
    lambda n: n.test(torch.zeros(2, 0, 3), torch.zeros(2, 0, 2)),
)
row(
    "test/batch mismatch",
    "esn",
    ValueError,
    W + r".*\(B, T\)",
    lambda n: n.test(X, torch.zeros(3, 10, 2)),
)

# ---- Observer -----------------------------------------------------------------------------
W = r"Observer"
row("Observer/record an int", None, TypeError, W + ".*record", lambda _: Observer(3))
row("Observer/record None", None, TypeError, W + ".*record", lambda _: Observer(None))
row("Observer/record a.b.c", None, ValueError, W + r".*'a\.b\.c'", lambda _: Observer(["a.b.c"]))
row("Observer/record empty name", None, ValueError, W + r".*''", lambda _: Observer([""]))
row(
    "Observer/record twice",
    None,
    ValueError,
    W + r": names recorded twice",
    lambda _: Observer(["res", "res"]),
)
row(
    "Observer/every=0",
    None,
    ValueError,
    W + r": every must be an int >= 1",
    lambda _: Observer(["res"], every=0),
)
row(
    "Observer/every float",
    None,
    ValueError,
    W + r": every must be",
    lambda _: Observer(["res"], every=2.0),
)
row(
    "Observer/every str",
    None,
    ValueError,
    W + r": every must be",
    lambda _: Observer(["res"], every="2"),
)
row(
    "Observer/start negative",
    None,
    ValueError,
    W + r": start must be",
    lambda _: Observer(["res"], start=-1),
)
row(
    "Observer/start float",
    None,
    ValueError,
    W + r": start must be",
    lambda _: Observer(["res"], start=0.5),
)
row(
    "Observer/unknown keyword",
    None,
    TypeError,
    KW(r"(Observer|__init__)", "sampling_steps"),
    lambda _: Observer(["res"], sampling_steps=2),
)

# ---- datasets -----------------------------------------------------------------------------
D = datasets
row("mackey_glass/n=0", None, ValueError, r"mackey_glass.*n_timesteps", lambda _: D.mackey_glass(0))
row(
    "mackey_glass/n=-5",
    None,
    ValueError,
    r"mackey_glass.*n_timesteps",
    lambda _: D.mackey_glass(-5),
)
row("mackey_glass/n float", None, VT, r"mackey_glass.*n_timesteps", lambda _: D.mackey_glass(100.5))
row("mackey_glass/n str", None, VT, r"mackey_glass.*n_timesteps", lambda _: D.mackey_glass("100"))
row(
    "mackey_glass/tau negative",
    None,
    ValueError,
    r"mackey_glass.*tau",
    lambda _: D.mackey_glass(100, tau=-1),
)
row("mackey_glass/h=0", None, ValueError, r"mackey_glass.*h", lambda _: D.mackey_glass(100, h=0.0))
row(
    "mackey_glass/h NaN", None, ValueError, r"mackey_glass.*h", lambda _: D.mackey_glass(100, h=NAN)
)
row(
    "mackey_glass/a NaN", None, ValueError, r"mackey_glass.*a", lambda _: D.mackey_glass(100, a=NAN)
)
row(
    "mackey_glass/x0 inf",
    None,
    ValueError,
    r"mackey_glass.*x0",
    lambda _: D.mackey_glass(100, x0=INF),
)
row(
    "mackey_glass/history NaN",
    None,
    ValueError,
    r"mackey_glass.*history",
    lambda _: D.mackey_glass(100, history=np.full(17, NAN)),
)
row(
    "mackey_glass/history 2-D",
    None,
    ValueError,
    r"mackey_glass.*history",
    lambda _: D.mackey_glass(100, history=np.ones((17, 2))),
)
row(
    "mackey_glass/method unknown",
    None,
    ValueError,
    r"mackey_glass.*method",
    lambda _: D.mackey_glass(100, method="dde"),
)
row(
    "mackey_glass/seed str",
    None,
    TypeError,
    r"mackey_glass.*seed",
    lambda _: D.mackey_glass(100, seed="1"),
)
row(
    "mackey_glass/unknown keyword",
    None,
    TypeError,
    KW(r"mackey_glass", "sample_len"),
    lambda _: D.mackey_glass(100, sample_len=5),
)
row("narma/n=0", None, ValueError, r"narma.*n_timesteps", lambda _: D.narma(0))
row("narma/order=0", None, ValueError, r"narma.*order", lambda _: D.narma(100, order=0))
row("narma/u NaN", None, ValueError, r"narma.*u", lambda _: D.narma(100, u=np.full((110, 1), NAN)))
row("narma/u wrong length", None, ValueError, r"narma.*u", lambda _: D.narma(100, u=np.zeros(50)))
row("narma/a1 NaN", None, ValueError, r"narma.*a1", lambda _: D.narma(100, a1=NAN))
row(
    "narma/convention unknown",
    None,
    ValueError,
    r"narma.*convention",
    lambda _: D.narma(100, convention="reservoir"),
)
row("narma/seed float", None, TypeError, r"narma.*seed", lambda _: D.narma(100, seed=1.5))
row(
    "narma/unknown keyword",
    None,
    TypeError,
    KW(r"narma"),
    lambda _: D.narma(100, n=10),
)
row("lorenz/n=0", None, ValueError, r"lorenz.*n_timesteps", lambda _: D.lorenz(0))
row("lorenz/h=0", None, ValueError, r"lorenz.*h", lambda _: D.lorenz(10, h=0.0))
row("lorenz/h negative", None, ValueError, r"lorenz.*h", lambda _: D.lorenz(10, h=-0.01))
row("lorenz/rho NaN", None, ValueError, r"lorenz.*rho", lambda _: D.lorenz(10, rho=NAN))
row(
    "lorenz/x0 wrong length", None, ValueError, r"lorenz.*x0", lambda _: D.lorenz(10, x0=(1.0, 1.0))
)
row("lorenz/x0 NaN", None, ValueError, r"lorenz.*x0", lambda _: D.lorenz(10, x0=(NAN, 1.0, 1.0)))
row(
    "lorenz/method unknown",
    None,
    ValueError,
    r"lorenz.*method",
    lambda _: D.lorenz(10, method="euler4"),
)
row("lorenz/rtol negative", None, ValueError, r"lorenz.*rtol", lambda _: D.lorenz(10, rtol=-1.0))
row(
    "force_target/t NaN",
    None,
    ValueError,
    r"force_target.*t",
    lambda _: D.force_target(np.array([0.0, NAN])),
)
row(
    "force_target/kind unknown",
    None,
    ValueError,
    r"force_target.*kind",
    lambda _: D.force_target(np.arange(5.0), kind="sines"),
)
row(
    "force_target/f=0",
    None,
    ValueError,
    r"force_target.*f",
    lambda _: D.force_target(np.arange(5.0), f=0.0),
)
row(
    "force_target/f NaN",
    None,
    ValueError,
    r"force_target.*f",
    lambda _: D.force_target(np.arange(5.0), f=NAN),
)
row(
    "force_target/amplitude inf",
    None,
    ValueError,
    r"force_target.*amplitude",
    lambda _: D.force_target(np.arange(5.0), amplitude=INF),
)
row(
    "to_forecasting/forecast=0",
    None,
    ValueError,
    r"to_forecasting.*forecast",
    lambda _: D.to_forecasting(np.arange(10.0)[:, None], forecast=0),
)
row(
    "to_forecasting/forecast >= T",
    None,
    ValueError,
    r"to_forecasting.*forecast",
    lambda _: D.to_forecasting(np.arange(10.0)[:, None], forecast=10),
)
row(
    "to_forecasting/axis out of range",
    None,
    ValueError,
    r"to_forecasting.*axis",
    lambda _: D.to_forecasting(np.arange(10.0)[:, None], axis=2),
)
row(
    "to_forecasting/test_size negative",
    None,
    ValueError,
    r"to_forecasting.*test_size",
    lambda _: D.to_forecasting(np.arange(10.0)[:, None], test_size=-1),
)
row(
    "to_forecasting/test_size 1.5",
    None,
    ValueError,
    r"to_forecasting.*test_size",
    lambda _: D.to_forecasting(np.arange(10.0)[:, None], test_size=1.5),
)
row(
    "to_forecasting/test_size too large",
    None,
    ValueError,
    r"to_forecasting.*test_size",
    lambda _: D.to_forecasting(np.arange(10.0)[:, None], test_size=9),
)
row(
    "to_forecasting/empty",
    None,
    ValueError,
    r"to_forecasting",
    lambda _: D.to_forecasting(np.zeros((0, 1))),
)
row(
    "evidence_accumulation/batch=0",
    None,
    ValueError,
    r"evidence_accumulation.*batch",
    lambda _: D.evidence_accumulation(0),
)
row(
    "evidence_accumulation/dt=0",
    None,
    ValueError,
    r"evidence_accumulation.*dt",
    lambda _: D.evidence_accumulation(2, dt=0.0),
)
row(
    "evidence_accumulation/rate negative",
    None,
    ValueError,
    r"evidence_accumulation.*rate",
    lambda _: D.evidence_accumulation(2, rate=-1.0),
)
row(
    "evidence_accumulation/n_cues=0",
    None,
    ValueError,
    r"evidence_accumulation.*n_cues",
    lambda _: D.evidence_accumulation(2, n_cues=0),
)
row(
    "evidence_accumulation/p_group 1.5",
    None,
    ValueError,
    r"evidence_accumulation.*p_group",
    lambda _: D.evidence_accumulation(2, p_group=1.5),
)
row(
    "evidence_accumulation/unknown keyword",
    None,
    TypeError,
    KW(r"evidence_accumulation"),
    lambda _: D.evidence_accumulation(2, n_trials=3),
)
row(
    "pattern_generation/n_in=0",
    None,
    ValueError,
    r"pattern_generation.*n_in",
    lambda _: D.pattern_generation(n_in=0),
)
row(
    "pattern_generation/dt=0",
    None,
    ValueError,
    r"pattern_generation.*dt",
    lambda _: D.pattern_generation(dt=0.0),
)
row(
    "pattern_generation/periods empty",
    None,
    ValueError,
    r"pattern_generation.*periods",
    lambda _: D.pattern_generation(periods=()),
)
row(
    "pattern_generation/period 0",
    None,
    ValueError,
    r"pattern_generation.*periods",
    lambda _: D.pattern_generation(periods=(0.0, 100.0)),
)
row(
    "pattern_generation/n_out=0",
    None,
    ValueError,
    r"pattern_generation.*n_out",
    lambda _: D.pattern_generation(n_out=0),
)

# ---- metrics ------------------------------------------------------------------------------
_Y3 = np.linspace(0.0, 1.0, 12).reshape(4, 3)
for name in ("mse", "rmse", "mae", "nrmse", "rsquare"):
    fn = getattr(metrics, name)
    row(
        f"{name}/shape mismatch",
        None,
        ValueError,
        name + r": y \(target\) and yhat",
        lambda _, f=fn: f(_Y3, _Y3[:, :2]),
    )
    row(
        f"{name}/empty",
        None,
        ValueError,
        name + r": y and yhat are empty",
        lambda _, f=fn: f(np.zeros(0), np.zeros(0)),
    )
    row(
        f"{name}/complex",
        None,
        TypeError,
        name + r".*complex|" + name + r".*real",
        lambda _, f=fn: f(_Y3 * 1j, _Y3),
    )
    row(
        f"{name}/strings",
        None,
        TypeError,
        name + r".*y",
        lambda _, f=fn: f(np.array(["a", "b"]), np.zeros(2)),
    )
    row(
        f"{name}/object array",
        None,
        TypeError,
        name + r".*y",
        lambda _, f=fn: f(np.array([None, 1.0], dtype=object), np.zeros(2)),
    )
    row(
        f"{name}/axis out of range",
        None,
        ValueError,
        name + r": axis 2",
        lambda _, f=fn: f(_Y3, _Y3, axis=2),
    )
    row(
        f"{name}/unknown keyword",
        None,
        TypeError,
        KW(name),
        lambda _, f=fn: f(_Y3, _Y3, squared=True),
    )
row(
    "nrmse/norm unknown",
    None,
    ValueError,
    r"nrmse.*norm",
    lambda _: metrics.nrmse(_Y3, _Y3, norm="max"),
)
row(
    "nrmse/norm_value=0",
    None,
    ValueError,
    r"nrmse.*norm_value",
    lambda _: metrics.nrmse(_Y3, _Y3, norm_value=0.0),
)
row(
    "nrmse/norm_value NaN",
    None,
    ValueError,
    r"nrmse.*norm_value",
    lambda _: metrics.nrmse(_Y3, _Y3, norm_value=NAN),
)
row(
    "nrmse/constant target",
    None,
    ValueError,
    r"nrmse.*(zero|constant)",
    lambda _: metrics.nrmse(np.ones(5), np.zeros(5)),
)
row(
    "rsquare/constant target",
    None,
    ValueError,
    r"rsquare.*(zero|constant)",
    lambda _: metrics.rsquare(np.ones(5), np.zeros(5)),
)

# ---- layers (a failed build leaves the graph as it was: issue 15, point 20) ---------------
# the message names the layer call, or the graph call of rnngraph that refused the part
L = layers
WL = r"({}|Network\.add_edge|Network\.add_diffeq_node)"
SER, BIC, RS = WL.format("serial"), WL.format("biclique"), WL.format("recurrent_serial")
row(
    "serial/source unknown",
    "fresh",
    KeyError,
    SER + r".*'ghost'",
    lambda n: L.serial(n, "pop", "ghost", "lif", n=3),
)
row(
    "serial/weights wrong shape",
    "fresh",
    ValueError,
    SER + r".*weights",
    lambda n: L.serial(n, "pop", "in", "lif", n=3, weights=np.ones((2, 3))),
)
row(
    "serial/weights NaN",
    "fresh",
    ValueError,
    SER + r".*weights",
    lambda n: L.serial(n, "pop", "in", "lif", n=3, weights=np.full((3, 3), NAN)),
)
row(
    "serial/neuron an int",
    "fresh",
    TypeError,
    r"serial.*neuron",
    lambda n: L.serial(n, "pop", "in", 3, n=3),
)
row(
    "serial/n=0",
    "fresh",
    ValueError,
    r"(serial|LIF).*n",
    lambda n: L.serial(n, "pop", "in", "lif", n=0),
)
row(
    "serial/name taken",
    "fresh",
    ValueError,
    SER + r".*'in'",
    lambda n: L.serial(n, "in", "in", "lif", n=3),
)
row(
    "serial/train unknown",
    "fresh",
    ValueError,
    SER + r".*train",
    lambda n: L.serial(n, "pop", "in", "lif", n=3, train="sgd"),
)
row(
    "serial/unknown keyword",
    "fresh",
    TypeError,
    KW(r"serial"),
    lambda n: L.serial(n, "pop", "in", "lif", n=3, bias=True),
)
row(
    "biclique/source unknown",
    "fresh",
    KeyError,
    BIC + r".*'ghost'",
    lambda n: L.biclique(n, "bc", ["in", "ghost"], {"e": ("lif", 3)}),
)
row(
    "biclique/weights wrong shape",
    "fresh",
    ValueError,
    BIC + r".*weights",
    lambda n: L.biclique(
        n, "bc", ["in"], {"e": ("lif", 3), "i": ("lif", 2)}, weights={("in", "i"): np.ones((3, 3))}
    ),
)
row(
    "biclique/weights for an unknown pair",
    "fresh",
    (KeyError, ValueError),
    r"biclique.*'x'",
    lambda n: L.biclique(
        n, "bc", ["in"], {"e": ("lif", 3)}, weights={("in", "x"): np.ones((3, 3))}
    ),
)
row(
    "biclique/unknown keyword",
    "fresh",
    TypeError,
    KW(r"biclique"),
    lambda n: L.biclique(n, "bc", ["in"], {"e": ("lif", 3)}, delay=1),
)
row(
    "recurrent_serial/lateral weights wrong shape",
    "fresh",
    ValueError,
    RS + r".*weights",
    lambda n: L.recurrent_serial(
        n, "rs", "in", "lif", "lif", 3, 2, lateral_weights=np.ones((3, 3))
    ),
)
row(
    "recurrent_serial/feedback weights NaN",
    "fresh",
    ValueError,
    RS + r".*weights",
    lambda n: L.recurrent_serial(
        n, "rs", "in", "lif", "lif", 3, 2, feedback_weights=np.full((3, 2), NAN)
    ),
)
row(
    "recurrent_serial/n_feedback=0",
    "fresh",
    ValueError,
    r"(recurrent_serial|LIF).*n",
    lambda n: L.recurrent_serial(n, "rs", "in", "lif", "lif", 3, 0),
)
row(
    "recurrent_serial/source unknown",
    "fresh",
    KeyError,
    RS + r".*'ghost'",
    lambda n: L.recurrent_serial(n, "rs", "ghost", "lif", "lif", 3, 2),
)
row(
    "recurrent_serial/transform for an unknown role",
    "fresh",
    ValueError,
    r"recurrent_serial.*'lateral2'",
    lambda n: L.recurrent_serial(n, "rs", "in", "lif", "lif", 3, 2, transforms={"lateral2": abs}),
)
row(
    "recurrent_serial/unknown keyword",
    "fresh",
    TypeError,
    KW(r"recurrent_serial"),
    lambda n: L.recurrent_serial(n, "rs", "in", "lif", "lif", 3, 2, lateral_delay=1),
)

# ---- edge initialisers --------------------------------------------------------------------
for fname, call in (
    ("recurrent_weights", lambda **kw: rg.recurrent_weights(**{"n": 8, **kw})),
    ("input_weights", lambda **kw: rg.input_weights(**{"n_out": 8, "n_in": 3, **kw})),
    ("bias_weights", lambda **kw: rg.bias_weights(**{"n": 8, **kw})),
):
    first = "n_out" if fname == "input_weights" else "n"
    for label, v in (("0", 0), ("-1", -1), ("2.5", 2.5), ("str", "8"), ("None", None)):
        exc = ValueError if label in ("0", "-1") else VT
        row(
            f"{fname}/{first}={label}",
            None,
            exc,
            fname + f".*{first}",
            lambda _, c=call, v=v, k=first: c(**{k: v}),
        )
    for label, v in (("0", 0.0), ("1.5", 1.5), ("NaN", NAN), ("-0.1", -0.1)):
        row(
            f"{fname}/connectivity={label}",
            None,
            ValueError,
            fname + r".*connectivity",
            lambda _, c=call, v=v: c(connectivity=v),
        )
    row(
        f"{fname}/distribution unknown",
        None,
        ValueError,
        fname + r".*distribution",
        lambda _, c=call: c(distribution="gauss"),
    )
    row(f"{fname}/seed str", None, TypeError, fname + r".*seed", lambda _, c=call: c(seed="1"))
    row(f"{fname}/seed float", None, TypeError, fname + r".*seed", lambda _, c=call: c(seed=1.5))
    row(
        f"{fname}/dtype int",
        None,
        TypeError,
        fname + r".*dtype",
        lambda _, c=call: c(dtype=torch.int32),
    )
    row(
        f"{fname}/dtype complex",
        None,
        TypeError,
        fname + r".*dtype",
        lambda _, c=call: c(dtype=torch.complex64),
    )
    row(
        f"{fname}/unknown keyword",
        None,
        TypeError,
        KW(fname),
        lambda _, c=call: c(sr=1.0),
    )
    if fname != "recurrent_weights":
        row(
            f"{fname}/scaling NaN",
            None,
            ValueError,
            fname + r".*scaling",
            lambda _, c=call: c(scaling=NAN),
        )
        row(
            f"{fname}/scaling inf",
            None,
            ValueError,
            fname + r".*scaling",
            lambda _, c=call: c(scaling=INF),
        )
row(
    "input_weights/n_in=0",
    None,
    ValueError,
    r"input_weights.*n_in",
    lambda _: rg.input_weights(8, 0),
)
row(
    "input_weights/scaling wrong shape",
    None,
    ValueError,
    r"input_weights.*scaling",
    lambda _: rg.input_weights(8, 3, scaling=np.ones(2)),
)
row(
    "recurrent_weights/spectral_radius negative",
    None,
    ValueError,
    r"recurrent_weights.*spectral_radius",
    lambda _: rg.recurrent_weights(8, spectral_radius=-1.0),
)
row(
    "recurrent_weights/spectral_radius NaN",
    None,
    ValueError,
    r"recurrent_weights.*spectral_radius",
    lambda _: rg.recurrent_weights(8, spectral_radius=NAN),
)
row(
    "recurrent_weights/spectral_radius inf",
    None,
    ValueError,
    r"recurrent_weights.*spectral_radius",
    lambda _: rg.recurrent_weights(8, spectral_radius=INF),
)
row(
    "recurrent_weights/spectral_radius str",
    None,
    VT,
    r"recurrent_weights.*spectral_radius",
    lambda _: rg.recurrent_weights(8, spectral_radius="1.2"),
)

# ---- node constructors (rnngraph.nodes): the class name leads the message -----------------
CTORS = {
    "LeakyTanh": (nodes.LeakyTanh, "lr"),
    "LeakyIntegrator": (nodes.LeakyIntegrator, "tau"),
    "RectiPyLI": (nodes.RectiPyLI, "tau"),
    "QIFMeanField": (nodes.QIFMeanField, "tau"),
    "LeakyReadout": (nodes.LeakyReadout, "tau"),
    "LIF": (nodes.LIF, "tau_m"),
    "ALIF": (nodes.ALIF, "tau_a"),
    "IAF": (nodes.IAF, "tau_mem"),
    "QIF": (nodes.QIF, "tau"),
    "Izhikevich": (nodes.Izhikevich, "tau_u"),
    "AdEx": (nodes.AdEx, "tau_w"),
    "EIF": (nodes.EIF, "g_L"),
    "ExpSynapse": (nodes.ExpSynapse, "tau"),
    "DoubleExpSynapse": (nodes.DoubleExpSynapse, "tau_d"),
}
for cname, (cls, tau) in CTORS.items():
    for label, v in (
        ("0", 0),
        ("-2", -2),
        ("2.5", 2.5),
        ("str", "4"),
        ("None", None),
        ("True", True),
    ):
        exc = ValueError if label in ("0", "-2") else VT
        row(f"{cname}/n={label}", None, exc, cname + r".*n", lambda _, c=cls, v=v: c(v))
    row(
        f"{cname}/unknown keyword",
        None,
        TypeError,
        cname + r": unknown keyword argument\(s\) \['tau_x'\]; valid ones are",
        lambda _, c=cls: c(4, tau_x=1.0),
    )
    row(
        f"{cname}/unknown integrator",
        None,
        ValueError,
        cname + r".*integrator.*'rk45'",
        lambda _, c=cls: c(4, integrator="rk45"),
    )
    row(
        f"{cname}/{tau} per unit of the wrong shape",
        None,
        ValueError,
        cname + f".*{tau}",
        lambda _, c=cls, p=tau: c(4, **{p: np.ones(3)}),
    )
    row(
        f"{cname}/{tau} complex",
        None,
        VT,
        cname + f".*{tau}",
        lambda _, c=cls, p=tau: c(4, **{p: 1.0 + 1j}),
    )
    row(
        f"{cname}/{tau} a string",
        None,
        VT,
        cname + f".*{tau}",
        lambda _, c=cls, p=tau: c(4, **{p: "x"}),
    )
    row(
        f"{cname}/{tau} NaN per unit",
        None,
        ValueError,
        cname + f".*{tau}",
        lambda _, c=cls, p=tau: c(4, **{p: np.array([1.0, NAN, 1.0, 1.0])}),
    )
    row(
        f"{cname}/train unknown",
        None,
        ValueError,
        cname + r".*train=.*'nope'",
        lambda _, c=cls: c(4, train=["nope"]),
    )
SPIKING = {
    "LIF": (nodes.LIF, "v_th"),
    "ALIF": (nodes.ALIF, "v_th"),
    "IAF": (nodes.IAF, "v_thresh"),
    "QIF": (nodes.QIF, "v_peak"),
    "Izhikevich": (nodes.Izhikevich, "v_peak"),
    "AdEx": (nodes.AdEx, "v_peak"),
    "EIF": (nodes.EIF, "v_peak"),
}
for cname, (cls, th) in SPIKING.items():
    row(
        f"{cname}/{th} NaN",
        None,
        ValueError,
        cname + f".*{th}",
        lambda _, c=cls, p=th: c(4, **{p: NAN}),
    )
    row(
        f"{cname}/refractory=-1",
        None,
        ValueError,
        cname + r".*refractory",
        lambda _, c=cls: c(4, refractory=-1.0),
    )
    row(
        f"{cname}/refractory NaN",
        None,
        ValueError,
        cname + r".*refractory",
        lambda _, c=cls: c(4, refractory=NAN),
    )
    row(
        f"{cname}/surrogate unknown",
        None,
        ValueError,
        cname + r".*surrogate",
        lambda _, c=cls: c(4, surrogate="heaviside"),
    )
    row(
        f"{cname}/reset unknown",
        None,
        ValueError,
        cname + r".*reset",
        lambda _, c=cls: c(4, reset="zero"),
    )
for cname, cls in (
    ("LeakyTanh", nodes.LeakyTanh),
    ("LeakyIntegrator", nodes.LeakyIntegrator),
    ("RectiPyLI", nodes.RectiPyLI),
):
    row(
        f"{cname}/activation unknown",
        None,
        ValueError,
        cname + r".*activation",
        lambda _, c=cls: c(4, activation="tanhh"),
    )
    row(
        f"{cname}/activation int",
        None,
        VT,
        cname + r".*activation",
        lambda _, c=cls: c(4, activation=3),
    )

# ---- Linear and the trainer objects (rnngraph.Linear, rnngraph.training) -------------------
T_ = rg.training
row("Linear/n_in=0", None, ValueError, r"Linear.*n_in", lambda _: rg.Linear(0, 3))
row("Linear/n_out=-1", None, ValueError, r"Linear.*n_out", lambda _: rg.Linear(3, -1))
row("Linear/n_in float", None, VT, r"Linear.*n_in", lambda _: rg.Linear(2.5, 3))
row(
    "Linear/weights NaN",
    None,
    ValueError,
    r"Linear.*weights",
    lambda _: rg.Linear(3, 2, np.full((2, 3), NAN)),
)
row(
    "Linear/weights wrong shape",
    None,
    ValueError,
    r"Linear.*weights",
    lambda _: rg.Linear(3, 2, np.ones((3, 2))),
)
row(
    "Linear/dtype int",
    None,
    TypeError,
    r"Linear.*dtype",
    lambda _: rg.Linear(3, 2, dtype=torch.int64),
)
row("Ridge/alpha negative", None, ValueError, r"Ridge.*alpha", lambda _: T_.Ridge(alpha=-1.0))
row("Ridge/alpha NaN", None, ValueError, r"Ridge.*alpha", lambda _: T_.Ridge(alpha=NAN))
row("Ridge/washout negative", None, ValueError, r"Ridge.*washout", lambda _: T_.Ridge(washout=-1))
row(
    "Ridge/unknown keyword",
    None,
    TypeError,
    KW(r"Ridge(\.__init__)?", "ridge"),
    lambda _: T_.Ridge(ridge=1.0),
)
row(
    "Ridge.partial_fit/NaN",
    None,
    ValueError,
    r"Ridge\.partial_fit.*NaN",
    lambda _: T_.Ridge().partial_fit(torch.full((1, 5, 3), NAN), torch.zeros(1, 5, 2)),
)
row(
    "Ridge.partial_fit/length mismatch",
    None,
    ValueError,
    r"Ridge\.partial_fit",
    lambda _: T_.Ridge().partial_fit(torch.zeros(1, 5, 3), torch.zeros(1, 4, 2)),
)
row(
    "Ridge.solve/no samples",
    None,
    (RuntimeError, ValueError),
    r"Ridge\.solve",
    lambda _: T_.Ridge().solve(),
)
row("RLS/alpha=0", None, ValueError, r"RLS.*alpha", lambda _: T_.RLS(alpha=0.0))
row("RLS/forgetting=0", None, ValueError, r"RLS.*forgetting", lambda _: T_.RLS(forgetting=0.0))
row("RLS/every=0", None, ValueError, r"RLS.*every", lambda _: T_.RLS(every=0))
row("RLS/dtype int", None, TypeError, r"RLS.*dtype", lambda _: T_.RLS(dtype=torch.int32))
row(
    "BPTT/optimizer unknown",
    None,
    ValueError,
    r"BPTT.*optimizer",
    lambda _: T_.BPTT(optimizer="adamm"),
)
row("BPTT/loss unknown", None, ValueError, r"BPTT.*loss", lambda _: T_.BPTT(loss="msee"))
row("BPTT/lr NaN", None, ValueError, r"BPTT.*lr", lambda _: T_.BPTT(lr=NAN))
row(
    "BPTT/update_steps=0",
    None,
    ValueError,
    r"BPTT.*update_steps",
    lambda _: T_.BPTT(update_steps=0),
)
row(
    "EProp/feedback unknown",
    None,
    ValueError,
    r"EProp.*feedback",
    lambda _: T_.EProp(feedback="sym"),
)
row("EProp/task unknown", None, ValueError, r"EProp.*task", lambda _: T_.EProp(task="regress"))
row("EProp/lr negative", None, ValueError, r"EProp.*lr", lambda _: T_.EProp(lr=-1.0))
row("EProp/time_unit=0", None, ValueError, r"EProp.*time_unit", lambda _: T_.EProp(time_unit=0.0))
row(
    "native.set_enabled/str",
    None,
    TypeError,
    r"set_enabled",
    lambda _: rg.native.set_enabled("yes"),
)

row("FuncNode/activation int", None, VT, r"FuncNode.*activation", lambda _: nodes.FuncNode(3, 5))
row("FuncNode/n=0.5", None, VT, r"FuncNode.*n", lambda _: nodes.FuncNode(0.5))
row(
    "FuncNode/unknown keyword",
    None,
    TypeError,
    KW(r"(FuncNode|__init__)"),
    lambda _: nodes.FuncNode(3, act="tanh"),
)
row(
    "LIF/surrogate_scale negative",
    None,
    ValueError,
    r"LIF.*surrogate_scale",
    lambda _: nodes.LIF(4, surrogate_scale=-1.0),
)
row("LIF.bellec/dt=0", None, ValueError, r"LIF.*dt", lambda _: nodes.LIF.bellec(4, dt=0.0))
row("ALIF/beta NaN", None, ValueError, r"ALIF.*beta", lambda _: nodes.ALIF(4, beta=NAN))
row("IAF/noise_std NaN", None, ValueError, r"IAF.*noise_std", lambda _: nodes.IAF(4, noise_std=NAN))
row(
    "DoubleExpSynapse/tau_r == tau_d",
    None,
    ValueError,
    r"DoubleExpSynapse: tau_r and tau_d must differ",
    lambda _: nodes.DoubleExpSynapse(4, tau_r=5.0, tau_d=5.0),
)


# ----------------------------------------------------------------------------------------
# rows that fail because of a package defect (one line each; the lead engineer's list)
# ----------------------------------------------------------------------------------------

XFAIL: dict[str, str] = {}


def _params() -> list[Any]:
    out = []
    for r in ROWS:
        marks = [pytest.mark.xfail(strict=True, reason=XFAIL[r.id])] if r.id in XFAIL else []
        out.append(pytest.param(r, id=r.id, marks=marks))
    return out


@pytest.mark.parametrize("case", _params())
def test_bad_input(case: Row) -> None:
    net = NETS[case.net]() if case.net is not None else None
    before = snapshot(net) if net is not None else None
    with pytest.raises(case.exc, match=case.match):
        case.call(net)
    if net is not None:
        assert_unchanged(net, before)
        if case.net != "fresh":  # and it still runs, from the held state
            x = S[:, :1] if case.net == "lif" else X[:, :1]
            assert torch.isfinite(net.run(x).output).all()


def test_every_xfail_mark_names_a_row() -> None:
    assert set(XFAIL) <= {r.id for r in ROWS}
    assert len({r.id for r in ROWS}) == len(ROWS) >= 700


# ----------------------------------------------------------------------------------------
# valid input must be accepted, and give the same numbers as its plain spelling
# ----------------------------------------------------------------------------------------


def _exact(a: Any, b: Any) -> None:
    torch.testing.assert_close(torch.as_tensor(a), torch.as_tensor(b), rtol=0, atol=0)


def _esn_out(
    n: Any = 8, lr: Any = 0.5, dt: Any = 1.0, w: Any = None, u: Any = None
) -> torch.Tensor:
    net = Network(dt)
    net.add_func_node("in", 3)
    net.add_diffeq_node("res", "leaky_tanh", n=n, lr=lr)
    w_in = rg.input_weights(8, 3, seed=1).numpy() if w is None else w
    net.add_edge("in", "res", weights=w_in)
    net.add_edge("res", "res", weights=rg.recurrent_weights(8, 0.9, 0.5, seed=2), feedback=True)
    return net.run(X[0].numpy() if u is None else u).output


def test_numpy_integers_are_valid_sizes() -> None:
    _exact(_esn_out(n=np.int64(8)), _esn_out(n=8))
    net = Network(1.0)
    assert net.add_func_node("in", np.int64(3)).n == 3
    assert net.add_diffeq_node("lif", "lif", n=np.int32(4)).n == 4
    assert nodes.LIF(np.int64(4)).n == nodes.LeakyTanh(np.int16(4)).n == 4
    net.add_edge("in", "lif", seed=0, delay=np.int64(2))
    assert net.get_edge("in", "lif").delay == 2
    _exact(rg.recurrent_weights(np.int64(8), seed=3), rg.recurrent_weights(8, seed=3))
    _exact(rg.input_weights(np.int64(8), np.int32(3), seed=3), rg.input_weights(8, 3, seed=3))
    _exact(rg.bias_weights(np.int64(8), seed=3), rg.bias_weights(8, seed=3))
    _exact(datasets.mackey_glass(np.int64(50)), datasets.mackey_glass(50))
    model = esn().model
    assert model.init_state(np.int64(3))["res.x"].shape == (3, 8)
    rec = esn().run(X, observer=Observer(["res"], every=np.int64(2), start=np.int64(1)))
    assert rec["res"].shape == (2, 5, 8)
    assert esn().run(steps=np.int64(4)).output.shape[-2:] == (4, 2)


def test_numpy_float_scalars_are_valid_parameters() -> None:
    _exact(_esn_out(lr=np.float64(0.5)), _esn_out(lr=0.5))
    _exact(_esn_out(lr=np.float32(0.5), dt=np.float32(1.0)), _esn_out(lr=0.5, dt=1.0))
    a, b = nodes.LIF(4, tau_m=np.float32(20.0), v_th=np.float64(0.5)), nodes.LIF(4, 20.0, v_th=0.5)
    _exact(a.tau_m, b.tau_m)
    _exact(a.v_th, b.v_th)
    net = esn()
    net.set_var("res", "lr", np.float64(0.25))
    _exact(net.get_var("res", "lr"), torch.full((), 0.25))


def test_negative_stride_views_are_valid_weights_and_inputs() -> None:
    w = rg.input_weights(8, 3, seed=1).numpy()
    u = X[0].numpy()
    _exact(_esn_out(w=np.ascontiguousarray(w[::-1]), u=u), _esn_out(w=w[::-1], u=u))
    _exact(_esn_out(u=np.ascontiguousarray(u[::-1])), _esn_out(u=u[::-1]))
    # a transposed, reversed view as a mask and a bias
    m = (np.arange(24).reshape(3, 8) % 2).astype(np.float64)
    outs = []
    for mask, bias in ((m.T[::-1], np.arange(8.0)[::-2].repeat(2)), (None, None)):
        net = Network(1.0)
        net.add_func_node("in", 3)
        net.add_func_node("out", 8)
        mk = np.ascontiguousarray(m.T[::-1]) if mask is None else mask
        bs = np.ascontiguousarray(np.arange(8.0)[::-2].repeat(2)) if bias is None else bias
        net.add_edge("in", "out", weights=w, mask=mk, bias=bs)
        outs.append(net.run(u).output)
    _exact(outs[0], outs[1])
    assert metrics.nrmse(u[::-1], u[::-1]) == 0.0


def test_negative_stride_views_are_valid_trainer_data() -> None:
    # (B, T, .) data, as the networks hold a batch-2 state; reversed in batch and time
    u, y = X.numpy()[::-1, ::-1], Y.numpy()[::-1, ::-1]
    flip = (np.ascontiguousarray(u), np.ascontiguousarray(y))
    r1 = esn().fit_ridge(u, y, alpha=1e-3)
    r2 = esn().fit_ridge(*flip, alpha=1e-3)
    _exact(r1.weight, r2.weight)
    _exact(esn().fit_rls(u, y).output, esn().fit_rls(*flip).output)
    _exact(esn().fit_bptt(u, y).loss, esn().fit_bptt(*flip).loss)
    _exact(esn().test(u, y)[1], esn().test(*flip)[1])
    s, ys = S.numpy()[::-1, ::-1], YS.numpy()[::-1, ::-1]
    flip = (np.ascontiguousarray(s), np.ascontiguousarray(ys))
    _exact(lif().fit_eprop(s, ys).loss, lif().fit_eprop(*flip).loss)
    labels = np.arange(24).reshape(2, 12)[::-1, ::-1] % 2  # class indices, a view
    a = lif().fit_eprop(s, labels, loss_mask=np.ones((2, 12))[:, ::-1])
    b = lif().fit_eprop(flip[0], np.ascontiguousarray(labels), loss_mask=np.ones((2, 12)))
    _exact(a.loss, b.loss)


def test_negative_stride_views_in_step_and_set_var() -> None:
    x = X[:, 0].numpy()
    net = esn()
    y1, _ = net.model.step(x[::-1], net.model.init_state(2))
    y2, _ = net.model.step(np.ascontiguousarray(x[::-1]), net.model.init_state(2))
    _exact(y1, y2)
    net.set_var("res", "x", np.arange(8.0)[::-1])
    _exact(net.get_var("res", "x"), torch.arange(7.0, -1.0, -1.0).expand(2, 8))


def test_set_var_takes_one_value_per_unit_for_a_scalar_parameter() -> None:
    net = esn()
    lr = np.linspace(0.2, 0.9, 8)
    net.set_var("res", "lr", lr)
    _exact(net.get_var("res", "lr"), torch.as_tensor(lr, dtype=torch.float32))


def test_lists_are_valid_inputs() -> None:
    u = X[0]
    _exact(_esn_out(u=u.tolist()), _esn_out(u=u.numpy()))
    net_a, net_b = esn(), esn()
    _exact(net_a.run(X.tolist()).output, net_b.run(X).output)
    y, state = net_a.model.step(X[:, 0].tolist(), net_a.state)
    y2, _ = net_b.model.step(X[:, 0], net_b.state)
    _exact(y, y2)
    _exact(metrics.mse([1.0, 2.0], [1.0, 4.0]), 2.0)


def test_metrics_propagate_nan_and_inf_as_documented() -> None:
    """``rnngraph.metrics``: NaN or infinite values propagate into the result."""
    y = np.array([0.0, 2.0, 1.0])
    for name in ("mse", "rmse", "mae", "nrmse"):
        fn = getattr(metrics, name)
        assert math.isnan(fn(y, np.array([0.0, NAN, 1.0]))), name
        assert fn(y, np.array([0.0, INF, 1.0])) == INF, name


def test_float16_data_is_converted_to_the_network_dtype() -> None:
    """float16 (and float64) weights and inputs are valid: they become the network's dtype."""
    w = rg.input_weights(8, 3, seed=1).half()
    u = X[0].half()
    _exact(_esn_out(w=w, u=u), _esn_out(w=w.float(), u=u.float()))
    net = esn()
    net.set_var("res", "x", torch.full((8,), 0.5, dtype=torch.float16))
    assert net.get_var("res", "x").dtype == torch.float32


def test_run_without_input_keeps_the_held_batch() -> None:
    ref = esn().run(torch.zeros(2, 4, 3)).output  # the same network, zero input
    out = esn().run(steps=4).output  # holds a (2, n) state; its input node gets nothing
    assert out.shape == (2, 4, 2)
    _exact(out, ref)


def test_int_and_bool_inputs_are_valid() -> None:
    """Spike trains come as bool or int arrays (README: ``x = torch.rand(...) < 0.05``)."""
    spikes = S > 0
    a, b, c = lif(), lif(), lif()
    _exact(a.run(spikes).output, b.run(S).output)
    _exact(c.run(spikes.numpy().astype(np.int64)).output, lif().run(S).output)
