"""Reservoir-computing nodes beyond the leaky-tanh reservoir: the nonlinear vector
autoregression of next-generation reservoir computing (``NVAR``) and the edge-of-stability
echo-state network (``ES2N``)."""

from __future__ import annotations

import itertools
from math import comb

import torch

from .._checks import as_int, as_tensor
from ._base import DENode
from ._rate import _activation, _activation_name, _map_only

__all__ = ["ES2N", "NVAR"]


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


class ES2N(DENode):
    r"""Edge-of-stability echo-state units (Ceni & Gallicchio 2024,
    doi:10.1016/j.neucom.2024.127965; reservoirpy's ``ES2N``).

    .. math:: x(t) = (1 - \beta)\,O\,x(t-1) + \beta\,f\big(I(t) + b\big)

    with the proximity :math:`\beta \in (0, 1]` (dimensionless, per step), an orthogonal
    :math:`O` (``(n, n)``; any matrix is taken as given), bias :math:`b` and
    :math:`f = \tanh` by default. With a feedback self-edge ``W`` and an input edge ``W_in``
    the input is :math:`I(t) = W x(t-1) + W_{in} u(t)`, reservoirpy's update. With
    :math:`O = I` it is the leaky-tanh map with leak rate :math:`\beta`.

    Parameters
    ----------
    n : int
        Number of units.
    O : array-like or tensor
        ``(n, n)`` matrix :math:`O`, e.g. the Q of a QR decomposition of a Gaussian matrix.
    proximity : float or tensor
        :math:`\beta` in (0, 1], scalar or ``(n,)``; default 1.
    bias : float or tensor
        :math:`b`, scalar or ``(n,)``; default 0.
    activation : str or callable
        :math:`f`; default ``"tanh"``.

    Shape
    -----
    State ``x``: ``(B, n)``; input ``I``: ``(B, n)``; output ``x``.
    """

    state_vars = ("x",)
    input_names = ("I",)
    output_var = "x"

    def __init__(self, n: int, O, proximity=1.0, bias=0.0, activation="tanh", **kwargs):  # noqa: E741, N803
        super().__init__(n, **_map_only("ES2N", kwargs))
        self.integrator = "map"
        o = as_tensor("ES2N", "O", O, dtype=torch.float64)
        if o.shape != (self.n, self.n) or not bool(torch.isfinite(o).all()):
            raise ValueError(
                f"ES2N: O must be a finite ({self.n}, {self.n}) matrix, got shape {tuple(o.shape)}"
            )
        self.register_buffer("O", o)
        self.add_param("proximity", proximity, domain="unit")
        self.add_param("bias", bias)
        self._f = _activation("ES2N", activation)
        self.activation = _activation_name(activation)
        self.check_train()

    def map(self, s, i, dt):
        r""":math:`x(t) = (1 - \beta) O x(t-1) + \beta f(I(t) + b)`."""
        beta = self.proximity
        return self.State((1.0 - beta) * (s.x @ self.O.T) + beta * self._f(i.I + self.bias))
