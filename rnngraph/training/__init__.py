"""Trainers: BPTT (gradients), ridge (offline readout), RLS / FORCE (online readout)."""

from ._bptt import BPTT, LOSSES, OPTIMIZERS, get_loss, get_optimizer
from ._eprop import FEEDBACK_MODES, TASKS, EProp
from ._ridge import Ridge, ridge_solve
from ._rls import RLS, rls_update

__all__ = [
    "BPTT",
    "EProp",
    "FEEDBACK_MODES",
    "LOSSES",
    "OPTIMIZERS",
    "RLS",
    "TASKS",
    "Ridge",
    "get_loss",
    "get_optimizer",
    "ridge_solve",
    "rls_update",
]
