"""Trainers: ridge (offline readout), RLS / FORCE (online readout)."""

from ._ridge import Ridge, ridge_solve
from ._rls import RLS, rls_update

__all__ = ["RLS", "Ridge", "ridge_solve", "rls_update"]
