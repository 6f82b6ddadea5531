"""Network building (``Network``) and the compiled forward pass (``CompiledNetwork``)."""

from ._compiled import CompiledNetwork, Hook, State
from ._ensemble import ReservoirEnsemble
from ._network import Network

__all__ = ["CompiledNetwork", "Hook", "Network", "ReservoirEnsemble", "State"]
