"""Layers as graph builders: ``serial``, ``biclique`` and ``recurrent_serial``.

Each builder adds nodes and edges to a :class:`~rnngraph.Network` and returns a
:class:`Layer`, a named handle on what it added (connections, neurons, the names to record
for intermediate outputs) with ``clear()`` to restore the layer's part of the state. They
cover inferno's ``Serial``, ``Biclique`` and ``RecurrentSerial`` layers.

A *connection* is a linear edge; an optional *transform* on its output (any callable, e.g.
a sign flip for inhibition) becomes a function node between the edge and the neuron. With
``capture_intermediate=True`` every connection gets such a node (identity when no transform
is given), so that its output can be recorded: ``net.run(x, record=layer.intermediate)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ._checks import as_flag, as_int, keywords
from .edges import Linear
from .network import Network
from .nodes import DENode, Node

__all__ = ["Layer", "serial", "biclique", "recurrent_serial"]

NeuronSpec = str | DENode | tuple[str, Mapping[str, Any]]
Transform = Callable[[Tensor], Tensor]


@dataclass
class Layer:
    """Named handle on the nodes and edges a layer builder added to a network.

    Attributes
    ----------
    net : Network
        The network the layer lives in.
    name : str
        The prefix of its node labels.
    neurons : dict
        Role -> node label of each neuron population.
    connections : dict
        Role -> ``(source, target)`` of the edge holding each connection's weights.
    intermediate : dict
        Role -> node label of each connection's output node (transform or capture).
    """

    net: Network
    name: str
    neurons: dict[str, str] = field(default_factory=dict)
    connections: dict[str, tuple[str, str]] = field(default_factory=dict)
    intermediate: dict[str, str] = field(default_factory=dict)

    def connection(self, role: str) -> Linear:
        """The edge module of connection ``role``."""
        if role not in self.connections:
            raise KeyError(
                f"Layer {self.name!r}: no connection {role!r}; connections are "
                f"{list(self.connections)}"
            )
        return self.net.get_edge(*self.connections[role])

    def neuron(self, role: str) -> Node:
        """The node module of neuron population ``role``."""
        if role not in self.neurons:
            raise KeyError(
                f"Layer {self.name!r}: no neuron {role!r}; neurons are {list(self.neurons)}"
            )
        return self.net.get_node(self.neurons[role])

    # inferno's accessor names
    @property
    def feedfwd_connection(self) -> Linear:
        return self.connection("feedfwd")

    @property
    def lateral_connection(self) -> Linear:
        return self.connection("lateral")

    @property
    def feedback_connection(self) -> Linear:
        return self.connection("feedback")

    @property
    def feedfwd_neuron(self) -> Node:
        return self.neuron("feedfwd")

    @property
    def feedback_neuron(self) -> Node:
        return self.neuron("feedback")

    @property
    def record_names(self) -> list[str]:
        """Observer names of the connections' outputs (``capture_intermediate``)."""
        return list(self.intermediate.values())

    def labels(self) -> set[str]:
        return set(self.neurons.values()) | set(self.intermediate.values())

    def clear(self) -> None:
        """Restore this layer's state (neuron states and the delay lines of the connections
        it built) to its initial value in the network's held state; the rest of the network,
        edges between the layer and other nodes included, keeps its state."""
        model = self.net.compile()
        if model.state is None:
            return
        mine = self.labels()
        built = set(self.connections.values()) | {
            (mid, t) for mid in self.intermediate.values() for t in self.net.graph.successors(mid)
        }
        built_keys = {f"{s}->{t}" for s, t in built}
        batch = next(iter(model.state.values())).shape[0] if model.state else 1
        fresh = model.init_state(batch)
        state = dict(model.state)
        for key in state:
            if "->" in key:
                ours = key.rsplit("@", 1)[0] in built_keys
            else:
                ours = key.split(".", 1)[0] in mine
            if ours:
                state[key] = fresh[key]
        model.state = state

    reset = clear


@contextlib.contextmanager
def _built_or_untouched(where: str, net: Network) -> Iterator[None]:
    """A layer builder adds all of its nodes and edges or none: on an error the ones it
    added so far are removed again (the rest of the network, its weights and its held
    state are never touched by a builder), and the error names the builder ``where``."""
    if not isinstance(net, Network):
        raise TypeError(f"{where}: net must be a Network, got {type(net).__name__}")
    nodes, edges = set(net.graph.nodes), set(net.graph.edges)
    try:
        yield
    except (TypeError, ValueError, KeyError) as err:
        _undo(net, nodes, edges)
        msg = str(err.args[0]) if err.args else type(err).__name__
        if msg.startswith(where):
            raise
        raise type(err)(f"{where}: {msg}") from err
    except BaseException:
        _undo(net, nodes, edges)
        raise


def _undo(net: Network, nodes: set, edges: set) -> None:
    for u, v in [e for e in net.graph.edges if e not in edges]:
        net.pop_edge(u, v)
    for v in [v for v in net.graph.nodes if v not in nodes]:
        net.pop_node(v)


def _neuron(net: Network, label: str, spec: NeuronSpec, n: int | None) -> str:
    if isinstance(spec, DENode):
        if n is not None and as_int(f"neuron {label!r}", "n", n, minimum=1) != spec.n:
            raise ValueError(
                f"neuron {label!r}: n={n} but the given {type(spec).__name__} has {spec.n} "
                "units (leave n out for an instance)"
            )
        net.add_diffeq_node(label, spec)
    elif isinstance(spec, str):
        net.add_diffeq_node(label, spec, n=n)
    elif isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        net.add_diffeq_node(label, spec[0], n=n, **dict(spec[1]))
    else:
        raise TypeError(
            f"neuron {label!r}: give a model name, (name, params) or a DENode, got {spec!r}"
        )
    return label


def _connect(
    layer: Layer,
    role: str,
    source: str,
    target: str,
    weights: Any,
    transform: Transform | None,
    capture: bool,
    **edge_kw: Any,
) -> None:
    """source -(weights)-> [transform node] -> target, registered under ``role``."""
    net = layer.net
    if weights is not None:  # the seed draws default weights only
        edge_kw.pop("seed", None)
    if transform is None and not capture:
        net.add_edge(source, target, weights=weights, **edge_kw)
        layer.connections[role] = (source, target)
        return
    n_out = net.get_node(target).n
    mid = f"{layer.name}_{role}_out"
    net.add_func_node(mid, n_out, transform if transform is not None else "identity")
    # a delay stays on the weighted edge, so the node shows what the target receives now
    net.add_edge(source, mid, weights=weights, **edge_kw)
    net.add_edge(mid, target, weights=torch.eye(n_out))
    layer.connections[role] = (source, mid)
    layer.intermediate[role] = mid


@keywords("rnngraph.layers.serial")
def serial(
    net: Network,
    name: str,
    source: str,
    neuron: NeuronSpec,
    n: int | None = None,
    weights: Any = None,
    transform: Transform | None = None,
    capture_intermediate: bool = False,
    train: str | None = None,
    seed: int | None = None,
) -> Layer:
    """``source -> connection -> neuron``: one connection into one population.

    Parameters
    ----------
    net : Network
    name : str
        Prefix of the added labels; the population is ``"{name}"``.
    source : str
        Node feeding the connection.
    neuron : str, (str, dict) or DENode
        The population: a model name (with ``n``), a name with parameters, or an instance.
    n : int, optional
        Units, when ``neuron`` is a name.
    weights : array-like, optional
        ``(n, n_source)`` connection weights (default: seeded uniform).
    transform : callable, optional
        Applied to the connection's output.
    capture_intermediate : bool
        Give the connection an output node that can be recorded.
    train : {None, "gd", "rls"}
        Training mode of the connection.
    """
    capture_intermediate = as_flag(
        "rnngraph.layers.serial", "capture_intermediate", capture_intermediate
    )
    if weights is not None and seed is not None:
        raise ValueError(
            "rnngraph.layers.serial: seed= draws the default weights of the one connection; "
            "weights are given, so it would have no effect (leave seed out)"
        )
    layer = Layer(net, name)
    with _built_or_untouched("rnngraph.layers.serial", net):
        layer.neurons["neuron"] = _neuron(net, name, neuron, n)
        _connect(
            layer,
            "connection",
            source,
            name,
            weights,
            transform,
            capture_intermediate,
            train=train,
            seed=seed,
        )
    return layer


def _per_pair(where: str, name: str, given: Any, pairs: list[tuple[str, str]]) -> dict:
    """``weights`` or ``transforms`` of ``biclique``: a dict keyed by the ``(source, role)``
    pairs it builds; a key for any other pair is refused (it would go unused)."""
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise TypeError(
            f"{where}: {name} must be a dict keyed by (source, role) pairs, got "
            f"{type(given).__name__}"
        )
    unknown = [key for key in given if key not in pairs]
    if unknown:
        raise KeyError(
            f"{where}: {name} for {unknown}, which this layer does not connect; it builds "
            f"the (source, role) pairs {pairs}"
        )
    return dict(given)


@keywords("rnngraph.layers.biclique")
def biclique(
    net: Network,
    name: str,
    sources: list[str],
    neurons: Mapping[str, Any],
    weights: Mapping[tuple[str, str], Any] | None = None,
    transforms: Mapping[tuple[str, str], Transform] | None = None,
    capture_intermediate: bool = False,
    train: str | None = None,
    seed: int | None = None,
) -> Layer:
    """Every source connected to every population; a population sums its connections.

    ``neurons`` maps a role to ``(spec, n)``; populations are labelled
    ``"{name}_{role}"``, connections ``"{source}>{role}"`` with weights
    ``weights[(source, role)]`` (default: seeded uniform).
    """
    where = "rnngraph.layers.biclique"
    if isinstance(sources, str) or not isinstance(sources, list | tuple):
        raise TypeError(f"{where}: sources must be a list of node labels, got {sources!r}")
    if not isinstance(neurons, Mapping):
        raise TypeError(
            f"{where}: neurons must be a dict of role -> (spec, n) or spec, got "
            f"{type(neurons).__name__}"
        )
    capture_intermediate = as_flag(where, "capture_intermediate", capture_intermediate)
    pairs = [(src, role) for role in neurons for src in sources]
    weights = _per_pair(where, "weights", weights, pairs)
    transforms = _per_pair(where, "transforms", transforms, pairs)
    layer = Layer(net, name)
    with _built_or_untouched(where, net):
        for k, (role, spec) in enumerate(neurons.items()):
            node_spec, n = spec if isinstance(spec, tuple) and len(spec) == 2 else (spec, None)
            label = _neuron(net, f"{name}_{role}", node_spec, n)
            layer.neurons[role] = label
            for j, src in enumerate(sources):
                w = weights.get((src, role))
                tr = transforms.get((src, role))
                s = None if seed is None else seed + 1000 * k + j
                _connect(
                    layer,
                    f"{src}>{role}",
                    src,
                    label,
                    w,
                    tr,
                    capture_intermediate,
                    train=train,
                    seed=s,
                )
    return layer


def _role_transforms(
    where: str, transforms: Mapping[str, Transform] | None, roles: tuple[str, ...]
) -> dict[str, Transform]:
    """``transforms`` as a dict of connection role -> callable, every role one of ``roles``."""
    if transforms is not None and not isinstance(transforms, Mapping):
        raise TypeError(
            f"{where}: transforms must be a dict of role -> callable, "
            f"got {type(transforms).__name__}"
        )
    transforms = dict(transforms or {})
    unknown = set(transforms) - set(roles)
    if unknown:
        raise ValueError(
            f"{where}: unknown transform roles {sorted(unknown)}; valid: {sorted(roles)}"
        )
    return transforms


@keywords("rnngraph.layers.recurrent_serial")
def recurrent_serial(
    net: Network,
    name: str,
    source: str,
    feedfwd: NeuronSpec,
    feedback: NeuronSpec,
    n_feedfwd: int | None = None,
    n_feedback: int | None = None,
    feedfwd_weights: Any = None,
    lateral_weights: Any = None,
    feedback_weights: Any = None,
    transforms: Mapping[str, Transform] | None = None,
    capture_intermediate: bool = False,
    trainable_feedback: bool = False,
    train: str | None = None,
    seed: int | None = None,
) -> Layer:
    """A feedforward population with a recurrent feedback loop, inferno's ``RecurrentSerial``.

    * inputs -> feedforward connection -> feedforward neurons;
    * feedforward neurons -> lateral connection -> feedback neurons, **in the same step**;
    * feedback neurons -> feedback connection -> feedforward neurons, **one step later**
      (a delay-1 edge: it reads zeros at the first step and after ``clear()``/``reset()``).

    Parameters
    ----------
    net, name, source
        As in :func:`serial`; populations are ``"{name}_ff"`` and ``"{name}_fb"``.
    feedfwd, feedback : str, (str, dict) or DENode
        The two populations.
    n_feedfwd, n_feedback : int, optional
        Their sizes when given by name.
    feedfwd_weights, lateral_weights, feedback_weights : array-like, optional
        Connection weights ``(n_ff, n_in)``, ``(n_fb, n_ff)``, ``(n_ff, n_fb)``.
    transforms : dict, optional
        Role (``"feedfwd"``, ``"lateral"``, ``"feedback"``) -> callable on that connection's
        output (e.g. ``torch.neg`` for inhibition).
    capture_intermediate : bool
        Give every connection an output node; ``layer.record_names`` lists them.
    trainable_feedback : bool
        Make the feedback connection trainable by gradient (``train="gd"``).
    train : {None, "gd", "rls"}
        Training mode of the feedforward and lateral connections.
    seed : int, optional
        Seed of default weights.
    """
    where = "rnngraph.layers.recurrent_serial"
    capture_intermediate = as_flag(where, "capture_intermediate", capture_intermediate)
    trainable_feedback = as_flag(where, "trainable_feedback", trainable_feedback)
    transforms = _role_transforms(where, transforms, ("feedback", "feedfwd", "lateral"))
    layer = Layer(net, name)
    with _built_or_untouched("rnngraph.layers.recurrent_serial", net):
        ff = _neuron(net, f"{name}_ff", feedfwd, n_feedfwd)
        fb = _neuron(net, f"{name}_fb", feedback, n_feedback)
        layer.neurons.update(feedfwd=ff, feedback=fb)
        s = (lambda k: None) if seed is None else (lambda k: seed + k)
        fb_train = "gd" if trainable_feedback else None
        for k, (role, src, tgt, w, kw) in enumerate(
            (
                ("feedfwd", source, ff, feedfwd_weights, {"train": train}),
                ("lateral", ff, fb, lateral_weights, {"train": train}),
                ("feedback", fb, ff, feedback_weights, {"feedback": True, "train": fb_train}),
            )
        ):
            _connect(
                layer,
                role,
                src,
                tgt,
                w,
                transforms.get(role),
                capture_intermediate,
                seed=s(k),
                **kw,
            )
    return layer
