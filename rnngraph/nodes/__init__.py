"""Nodes: instantaneous function nodes and differential-equation (DE) nodes."""

from ._base import ACTIVATIONS, INTEGRATORS, DENode, FuncNode, Node, euler, exp_euler, rk4
from ._rate import LeakyIntegrator, LeakyTanh, QIFMeanField, RectiPyLI
from ._registry import MODELS, make_model, register_model

__all__ = [
    "ACTIVATIONS",
    "INTEGRATORS",
    "MODELS",
    "DENode",
    "FuncNode",
    "LeakyIntegrator",
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
