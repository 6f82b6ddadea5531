"""rnngraph: recurrent rate and spiking networks as graphs, compiled into batched torch."""

from . import _native as native
from . import datasets, edges, equations, hyper, layers, metrics, nodes, observers, training, units
from .compat import norse as _norse  # noqa: F401 - rg.compat.norse, after the models
from .compat import snntorch as _snntorch  # noqa: F401 - rg.compat.snntorch
from .edges import Linear, bias_weights, input_weights, recurrent_weights
from .equations import Equations, equation_model
from .network import CompiledNetwork, Network, ReservoirEnsemble
from .nodes import DENode, FuncNode, register_model
from .observers import Observer, Recording, Recordings

__version__ = "0.1.0"

__all__ = [
    "CompiledNetwork",
    "DENode",
    "Equations",
    "FuncNode",
    "Linear",
    "Network",
    "Observer",
    "Recording",
    "Recordings",
    "ReservoirEnsemble",
    "bias_weights",
    "datasets",
    "edges",
    "equation_model",
    "equations",
    "hyper",
    "input_weights",
    "layers",
    "metrics",
    "native",
    "nodes",
    "observers",
    "recurrent_weights",
    "register_model",
    "training",
    "units",
]
