"""Nodes: instantaneous function nodes and differential-equation (DE) nodes."""

from ._base import ACTIVATIONS, INTEGRATORS, DENode, FuncNode, Node, euler, exp_euler, rk4
from ._rate import LeakyIntegrator, LeakyReadout, LeakyTanh, QIFMeanField, RectiPyLI
from ._registry import MODELS, make_model, register_model
from ._spiking import (
    ALIF,
    EIF,
    IAF,
    LIF,
    QIF,
    AdEx,
    ALIFParameters,
    ALIFState,
    Izhikevich,
    LIFParameters,
    LIFState,
    SpikingNode,
    alif_step,
    lif_step,
)
from ._surrogate import SURROGATES, Surrogate, get_surrogate
from ._synapse import DoubleExpSynapse, ExpSynapse

__all__ = [
    "ACTIVATIONS",
    "ALIF",
    "ALIFParameters",
    "ALIFState",
    "AdEx",
    "DoubleExpSynapse",
    "EIF",
    "ExpSynapse",
    "IAF",
    "Izhikevich",
    "LIF",
    "LIFParameters",
    "LIFState",
    "QIF",
    "SURROGATES",
    "SpikingNode",
    "Surrogate",
    "alif_step",
    "get_surrogate",
    "lif_step",
    "INTEGRATORS",
    "MODELS",
    "DENode",
    "FuncNode",
    "LeakyIntegrator",
    "LeakyReadout",
    "LeakyTanh",
    "Node",
    "QIFMeanField",
    "RectiPyLI",
    "euler",
    "exp_euler",
    "make_model",
    "register_model",
    "rk4",
]
