"""Edges: linear projections between nodes, and weight initialisers."""

from ._init import (
    as_generator,
    bias_weights,
    effective_spectral_radius,
    input_weights,
    recurrent_weights,
    spectral_radius,
)
from ._linear import TRAIN_MODES, Linear

__all__ = [
    "TRAIN_MODES",
    "Linear",
    "as_generator",
    "bias_weights",
    "effective_spectral_radius",
    "input_weights",
    "recurrent_weights",
    "spectral_radius",
]
