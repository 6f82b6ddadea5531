"""Trainers: BPTT (gradients), ridge (offline readout), RLS / FORCE and LMS (online readout)."""

from ._bptt import BPTT, LOSSES, OPTIMIZERS, get_loss, get_optimizer
from ._eprop import FEEDBACK_MODES, METHODS, TASKS, EProp, history_bytes
from ._lms import LMS
from ._ridge import Ridge, ridge_solve
from ._rls import RLS, rls_update

__all__ = [
    "BPTT",
    "EProp",
    "FEEDBACK_MODES",
    "LMS",
    "LOSSES",
    "METHODS",
    "OPTIMIZERS",
    "RLS",
    "TASKS",
    "Ridge",
    "get_loss",
    "get_optimizer",
    "history_bytes",
    "ridge_solve",
    "rls_update",
]
