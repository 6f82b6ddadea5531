"""Adding a peer's population to a network as several nodes and edges, all or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from ..nodes import DENode

__all__ = ["all_or_nothing", "current_into"]


@contextmanager
def all_or_nothing(net: Any) -> Iterator[None]:
    """The nodes a block adds to ``net`` (with their edges) are removed again when it raises,
    so that a refused population leaves the network as it was."""
    before = set(net.graph.nodes)
    try:
        yield
    except BaseException:
        for label in [v for v in net.graph.nodes if v not in before]:
            net.pop_node(label)
        raise


def current_into(net: Any, label: str, synapse: DENode, membrane: DENode) -> tuple[str, str]:
    """Add ``synapse`` as ``label + "_syn"`` feeding ``membrane`` as ``label`` through an
    identity edge (CSR); returns both labels."""
    syn = f"{label}_syn"
    with all_or_nothing(net):
        net.add_diffeq_node(syn, synapse)
        net.add_diffeq_node(label, membrane)
        eye = torch.eye(membrane.n, dtype=net.dtype)
        net.add_edge(syn, label, weights=eye, sparse=True)
    return syn, label
