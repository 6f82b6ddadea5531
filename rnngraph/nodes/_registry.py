"""Built-in models by name, for ``Network.add_diffeq_node``."""

from __future__ import annotations

from typing import Any

from ..compat import TEMPLATES, resolve_model
from ._base import DENode
from ._rate import LeakyIntegrator, LeakyReadout, LeakyTanh, QIFMeanField, RectiPyLI
from ._spiking import ALIF, EIF, IAF, LIF, QIF, AdEx, Izhikevich
from ._synapse import DoubleExpSynapse, ExpSynapse

__all__ = ["MODELS", "register_model", "make_model"]

#: Model constructors by name (RectiPy's template paths: ``rnngraph.compat._dialect``).
MODELS: dict[str, Any] = {
    "leaky_tanh": LeakyTanh,
    "leaky_integrator": LeakyIntegrator,
    "li": RectiPyLI,
    "qif_mf": QIFMeanField,
    "leaky_readout": LeakyReadout,
    "lif": LIF,
    "alif": ALIF,
    "iaf": IAF,
    "qif": QIF,
    "izhikevich": Izhikevich,
    "adex": AdEx,
    "eif": EIF,
    "exp_syn": ExpSynapse,
    "double_exp_syn": DoubleExpSynapse,
}


def register_model(name: str, cls: type[DENode]) -> None:
    """Make a ``DENode`` subclass available to ``add_diffeq_node`` by name."""
    if not (isinstance(cls, type) and issubclass(cls, DENode)):
        raise TypeError(f"register_model: {name!r} must name a DENode subclass, got {cls!r}")
    MODELS[name] = cls


def make_model(caller: str, name: str, n: int | None, **params: Any) -> DENode:
    """The model ``name`` (a registered name, or a RectiPy template path that no
    registration shadows) with ``n`` units and ``params``."""
    if name not in MODELS and name in TEMPLATES:
        name, params = resolve_model(caller, name, params)
    if name not in MODELS:
        raise ValueError(
            f"{caller}: unknown model {name!r}; built-in models are "
            f"{sorted(MODELS)} (or pass a DENode instance)"
        )
    if n is None:
        raise TypeError(f"{caller}: model {name!r} needs the number of units n=")
    return MODELS[name](n, **params)
