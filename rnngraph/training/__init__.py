"""Trainers: BPTT (gradients), ridge (offline readout), RLS / FORCE (online readout)."""

from ._bptt import BPTT, LOSSES, OPTIMIZERS, get_loss, get_optimizer
from ._ridge import Ridge, ridge_solve
from ._rls import RLS, rls_update

__all__ = [
    "BPTT",
    "LOSSES",
    "OPTIMIZERS",
    "RLS",
    "Ridge",
    "get_loss",
    "get_optimizer",
    "ridge_solve",
    "rls_update",
]
