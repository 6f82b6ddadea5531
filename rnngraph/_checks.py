"""Checks on sequences that allocate nothing of the sequence's size."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["all_finite"]


def all_finite(x: Tensor, dtype: torch.dtype | None = None) -> bool:
    """Whether every value of the sequence ``x`` ``(B, T, ...)`` is finite (in ``dtype``,
    when given, as a conversion to it may overflow).

    ``isfinite(x).all()`` would allocate an ``abs`` copy and boolean masks of ``x``'s size.
    A finite sum proves every value finite (NaN and inf propagate into any sum); only a sum
    that is not finite (or overflows) is checked again, a block of steps at a time.
    """
    with torch.no_grad():
        if (dtype is None or dtype == x.dtype) and bool(torch.isfinite(x.sum())):
            return True
        span = max(1, (1 << 16) // max(1, x[:, :1].numel()))
        return all(
            bool(torch.isfinite(x[:, t : t + span].to(dtype or x.dtype)).all())
            for t in range(0, x.shape[1], span)
        )
