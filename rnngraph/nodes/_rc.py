"""Reservoir-computing nodes beyond the leaky-tanh reservoir: the nonlinear vector
autoregression of next-generation reservoir computing (``NVAR``)."""

from __future__ import annotations

import itertools
from math import comb

import torch

from .._checks import as_int
from ._base import DENode
from ._rate import _map_only

__all__ = ["NVAR"]


class NVAR(DENode):
    r"""Nonlinear vector autoregression: the feature map of next-generation reservoir
    computing (Gauthier, Bollt, Griffith & Barbosa 2021, doi:10.1038/s41467-021-25801-2;
    reservoirpy's ``NVAR``).

    With the input :math:`u(t) \in \mathbb{R}^d`, ``delay`` :math:`k` and ``strides``
    :math:`s`, the linear features are the input and its delayed copies,

    .. math::

        O_{lin}(t) = u(t) \oplus u(t - s) \oplus \dots \oplus u(t - (k-1)s)
        \in \mathbb{R}^{kd}

    (:math:`\oplus`: concatenation; inputs before the first step are 0), and the nonlinear
    features are every distinct monomial of degree ``order`` :math:`p` in them,
    :math:`\prod_{m=1}^{p} O_{lin, j_m}(t)` for :math:`j_1 \le \dots \le j_p` in
    lexicographic order. The output is :math:`O_{lin}(t) \oplus O_{nonlin}(t)`, of
    :math:`n = kd + \binom{kd + p - 1}{p}` values; a ridge readout on it (with a bias, the
    constant feature of the paper) is the NG-RC model. The map is per step; ``dt`` does
    not enter it.

    Parameters
    ----------
    d : int
        Input dimension :math:`d` (the input ``u`` takes ``d`` values: feed it by an edge
        of ``(d, n_source)`` weights, the identity from an input node of ``d`` channels).
    delay : int
        Number of linear taps :math:`k \ge 1`.
    order : int
        Degree :math:`p \ge 1` of the monomials.
    strides : int
        Steps :math:`s \ge 1` between taps; default 1.

    Shape
    -----
    Input ``u``: ``(B, d)``. State ``store`` ``(B, k s d)``: the last :math:`ks` inputs,
    newest first (:math:`u(t), u(t-1), \dots`); ``x`` ``(B, n)``: the features, the output.

    Notes
    -----
    The features are a fixed function of the last :math:`(k-1)s + 1` inputs, so a network
    of an NVAR and its readout has no recurrence; a closed loop (``generate``) feeds the
    readout's prediction back as the next input.
    """

    state_vars = ("store", "x")
    input_names = ("u",)
    output_var = "x"

    def __init__(self, d: int, delay: int = 2, order: int = 2, strides: int = 1, **kwargs):
        d = as_int("NVAR", "d", d, minimum=1, type_error=ValueError)
        delay = as_int("NVAR", "delay", delay, minimum=1, type_error=ValueError)
        order = as_int("NVAR", "order", order, minimum=1, type_error=ValueError)
        strides = as_int("NVAR", "strides", strides, minimum=1, type_error=ValueError)
        linear = delay * d
        n = linear + comb(linear + order - 1, order)
        super().__init__(n, **_map_only("NVAR", kwargs, "a discrete feature map"))
        self.integrator = "map"
        self.d, self.delay, self.order, self.strides = d, delay, order, strides
        monomials = list(itertools.combinations_with_replacement(range(linear), order))
        self.register_buffer("monomials", torch.tensor(monomials, dtype=torch.long))
        taps = [k * strides * d + j for k in range(delay) for j in range(d)]
        self.register_buffer("taps", torch.tensor(taps, dtype=torch.long))

    def var_size(self, var: str | None) -> int:
        """``store`` holds the last ``delay * strides`` inputs; ``x`` and the output ``n``."""
        return self.delay * self.strides * self.d if var == "store" else self.n

    def input_size(self, name: str | None) -> int:
        """The input ``u`` takes ``d`` values."""
        return self.d

    def map(self, s, i, dt):
        r""":math:`\mathrm{store} \leftarrow u(t) \oplus \mathrm{store}` (the oldest input
        dropped), then the features :math:`O_{lin} \oplus O_{nonlin}` of the taps."""
        store = torch.cat([i.u, s.store[:, : s.store.shape[1] - self.d]], dim=1)
        linear = store if self.strides == 1 else store.index_select(1, self.taps)
        nonlinear = linear[:, self.monomials].prod(-1)  # (B, M, p) -> (B, M)
        return self.State(store, torch.cat([linear, nonlinear], dim=1))

    def extra_repr(self) -> str:
        return (
            f"d={self.d}, delay={self.delay}, order={self.order}, strides={self.strides}, "
            f"n={self.n}"
        )
