"""Reservoir-computing nodes beyond the leaky-tanh reservoir: the nonlinear vector
autoregression of next-generation reservoir computing (``NVAR``), the edge-of-stability
echo-state network (``ES2N``) and the reservoir with intrinsic plasticity
(``IPReservoir``)."""

from __future__ import annotations

import itertools
import math
from math import comb

import torch
from torch import Tensor

from .._checks import as_int, as_tensor
from ._base import DENode, GainMap, IntrinsicRule, LeakyMap, WindowMap
from ._rate import _activation, _activation_name, _map_only

__all__ = ["ES2N", "IPReservoir", "NVAR"]


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
    The features are a fixed function of the last :math:`(k-1)s + 1` inputs, declared as a
    window map (:meth:`window_map`), so a network of an NVAR fed by static nodes and its
    readout has no recurrence: a run computes whole chunks of steps at once (``explain()``:
    ``window map over whole chunks``). A closed loop (``generate``) feeds the readout's
    prediction back as the next input, step by step.
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

    def window_map(self) -> WindowMap:
        r"""The window of the last ``delay * strides`` inputs (``store``, newest first) and
        its features :math:`O_{lin} \oplus O_{nonlin}` (``x``), from which the torch step
        and the plan's whole-chunk computation are derived."""
        return WindowMap("u", self.delay * self.strides, self._features)

    def _features(self, store: Tensor) -> Tensor:
        r""":math:`O_{lin} \oplus O_{nonlin}` of windows ``(M, delay strides d)``."""
        linear = store if self.strides == 1 else store.index_select(1, self.taps)
        nonlinear = linear[:, self.monomials].prod(-1)  # (M, K, p) -> (M, K)
        return torch.cat([linear, nonlinear], dim=1)

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

    def leaky_map(self) -> LeakyMap:
        r""":math:`x(t) = (1 - \beta) O x(t-1) + \beta f(I(t) + b)`: the leaky map with
        leak rate :math:`\beta` that mixes the previous values by :math:`O` (from which
        the torch step and the native reservoir loop are derived)."""
        return LeakyMap(self.proximity, self.bias, self._f, "I", self.O)


class IPReservoir(DENode):
    r"""Leaky reservoir units with intrinsic plasticity (Triesch 2005; Schrauwen et al.
    2008, doi:10.1016/j.neucom.2007.12.020; reservoirpy's ``IPReservoir``).

    .. math::

        r(t) = (1 - \lambda)\, r(t-1) + \lambda\, \big(I(t) + c\big), \qquad
        x(t) = f\big(a \odot r(t) + b\big)

    with leak rate :math:`\lambda \in (0, 1]`, bias :math:`c`, the input :math:`I(t) = W
    x(t-1) + W_{in} u(t)` (a feedback self-edge and an input edge) and a gain :math:`a`
    and shift :math:`b` per unit (``(n,)``, 1 and 0 at first), which intrinsic plasticity
    tunes so that each unit's output follows a target distribution: for
    :math:`f = \tanh` a Gaussian :math:`\mathcal{N}(\mu, \sigma^2)`, for the logistic
    sigmoid an exponential of mean :math:`\mu`. One step of the rule (gradient descent on
    the Kullback-Leibler divergence, ``eta`` the learning rate, per step) is

    .. math::

        \Delta b = \eta\, \Big(\frac{\mu}{\sigma^2} - \frac{x}{\sigma^2}\big(2\sigma^2 + 1
        - x^2 + \mu x\big)\Big) \;\; (\tanh), \qquad
        \Delta b = \eta\, \Big(1 - \big(2 + \tfrac{1}{\mu}\big) x + \frac{x^2}{\mu}\Big)
        \;\; (\text{sigmoid}),

    :math:`\Delta a = \eta / a + \Delta b \odot r`, from the step's :math:`r(t)` and
    :math:`x(t)`. ``Network.fit_intrinsic`` applies it after every step of a run; a plain
    run leaves :math:`a, b` alone.

    Parameters
    ----------
    n : int
        Number of units.
    lr : float or tensor
        Leak rate :math:`\lambda` in (0, 1], scalar or ``(n,)``; default 1.
    bias : float or tensor
        :math:`c`, scalar or ``(n,)``; default 0.
    activation : {"tanh", "sigmoid"}
        :math:`f`, which picks the target distribution.
    mu, sigma : float
        Mean and standard deviation of the target (``sigma`` for tanh only; > 0; for the
        sigmoid ``mu`` > 0).
    learning_rate : float
        :math:`\eta > 0`; default 5e-4, reservoirpy's.

    Shape
    -----
    State ``r`` (the internal activation) and ``x`` (the output): ``(B, n)``; input ``I``.
    """

    state_vars = ("r", "x")
    input_names = ("I",)
    output_var = "x"

    def __init__(
        self,
        n: int,
        lr=1.0,
        bias=0.0,
        activation: str = "tanh",
        mu: float = 0.0,
        sigma: float = 1.0,
        learning_rate: float = 5e-4,
        **kwargs,
    ):
        super().__init__(n, **_map_only("IPReservoir", kwargs))
        self.integrator = "map"
        if activation not in ("tanh", "sigmoid"):
            raise ValueError(
                f"IPReservoir: activation must be 'tanh' or 'sigmoid' (the rule's target is "
                f"a Gaussian or an exponential distribution), got {activation!r}"
            )
        self.activation = activation
        self._f = _activation("IPReservoir", activation)
        self.mu = _number("IPReservoir", "mu", mu, positive=activation == "sigmoid")
        self.sigma = _number("IPReservoir", "sigma", sigma, positive=True)
        self.learning_rate = _number("IPReservoir", "learning_rate", learning_rate, True)
        self.add_param("lr", lr, domain="unit")
        self.add_param("bias", bias)
        self.add_param("a", torch.ones(self.n, dtype=torch.float64))
        self.add_param("b", torch.zeros(self.n, dtype=torch.float64))
        self.check_train()

    def gain_map(self) -> GainMap:
        r""":math:`r(t) = (1 - \lambda) r(t-1) + \lambda (I(t) + c)`, :math:`x = f(a r + b)`,
        with the rule of :meth:`plasticity` (from which the torch step, ``fit_intrinsic``'s
        per-step update and the native reservoir loop are derived)."""
        return GainMap(self.lr, self.bias, self.a, self.b, self._f, "I", self._rule)

    @property
    def _rule(self) -> IntrinsicRule:
        r"""The rule's shift step as a polynomial in :math:`x`: for tanh
        :math:`\frac{\eta}{\sigma^2}\big(\mu - (2\sigma^2 + 1) x - \mu x^2 + x^3\big)`,
        for the sigmoid :math:`\eta\big(1 - (2 + 1/\mu) x + x^2/\mu\big)`."""
        eta, mu = self.learning_rate, self.mu
        if self.activation == "tanh":
            k = eta / self.sigma**2
            coef = (k * mu, -k * (2.0 * self.sigma**2 + 1.0), -k * mu, k)
        else:
            coef = (eta, -eta * (2.0 + 1.0 / mu), eta / mu, 0.0)
        return IntrinsicRule(eta, coef)

    def plasticity(self, r, x):
        r"""The steps :math:`(\Delta a, \Delta b)` of the rule for one step's ``r`` and ``x``
        (``(..., n)`` each; the learning rate included)."""
        return self._rule.deltas(self.a, r, x)


def _number(where: str, name: str, value, positive: bool) -> float:
    """``value`` as a finite float (> 0 with ``positive``); a ``ValueError`` otherwise."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or (positive and value <= 0):
        need = "a finite number > 0" if positive else "a finite number"
        raise ValueError(f"{where}: {name} must be {need}, got {value!r}")
    return float(value)
