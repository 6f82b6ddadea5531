r"""e-prop: online gradients for recurrent spiking networks through eligibility traces.

Bellec, Scherr, Subramoney, Hajek, Salaj, Legenstein & Maass (2020), "A solution to the
learning dilemma for recurrent networks of spiking neurons", Nat Commun 11:3625,
doi:10.1038/s41467-020-17236-y.

The network e-prop trains has three parts:

* a spiking population ``rec`` (an ``lif`` or ``alif`` node; a mixed LIF/ALIF population is
  one ``alif`` node with ``beta = 0`` for its LIF units), fed by edges (an input edge, a
  recurrent feedback self-edge without self-connections, ...);
* a leaky readout node (``leaky_readout``), the network's output node,
  :math:`y_k(t) = \kappa y_k(t-1) + \sum_j W^{out}_{kj} z_j(t) + b_k`;
* one readout edge ``rec -> readout`` (with or without bias).

For a weight :math:`W_{ji}` of an edge into ``rec`` with presynaptic value
:math:`\mathrm{pre}_i(t)` (what the edge reads at step :math:`t`: the input :math:`x_i(t)`
for an input edge, :math:`z_i(t-1)` for the recurrent edge; the constant 1 for a bias), the
membrane of unit :math:`j` takes one step
:math:`v_j(t) = \alpha_j v_j(t-1) + c_j \sum_i W_{ji} \mathrm{pre}_i(t) + \dots`, with
:math:`\alpha = e^{-dt/\tau_m}`, :math:`c = (1 - \alpha) r_m` (``exp_euler``),
:math:`\alpha = 1 - dt/\tau_m`, :math:`c = dt\,r_m/\tau_m` (``euler``) or the fourth-order
polynomial :math:`\alpha = R(-dt/\tau_m)`, :math:`c = (1 - \alpha) r_m` (``rk4``). The
eligibility vectors and traces are carried step by step:

.. math::

    \epsilon^v_{ji}(t) &= \alpha_j\,\hat\epsilon^v_{ji}(t-1) + c_j\,\mathrm{pre}_i(t)
        \quad(\text{held unit: } \epsilon^v_{ji}(t) = \hat\epsilon^v_{ji}(t-1)) \\
    \hat\epsilon^v_{ji}(t) &= (1 - z_j(t))\,\epsilon^v_{ji}(t) \ \text{(reset to a value)},
        \quad \epsilon^v_{ji}(t) \ \text{(reset by subtraction)} \\
    \psi_j(t) &= \frac{\sigma'(x_j(t))}{v_{th} - v_{reset}}, \quad
        x_j = \frac{v_j - A_j}{v_{th} - v_{reset}} \quad (0 \text{ while refractory}) \\
    \epsilon^a_{ji}(t) &= \psi_j(t-1)\,\epsilon^v_{ji}(t-1)
        + (\rho_j - \beta_j \psi_j(t-1))\,\epsilon^a_{ji}(t-1) \quad \text{(ALIF)} \\
    e_{ji}(t) &= \psi_j(t)\,\big(\epsilon^v_{ji}(t) - \beta_j\,\epsilon^a_{ji}(t)\big),
        \qquad \bar e_{ji}(t) = \kappa\,\bar e_{ji}(t-1) + e_{ji}(t)

with :math:`\sigma'` the node's surrogate pseudo-derivative, :math:`A = v_{th} + \beta a`
the (adaptive) threshold and :math:`\epsilon^v` the derivative of the membrane before the
reset. The learning signal and the gradient are

.. math::

    L_j(t) = \sum_k B_{jk}\,\mathrm{err}_k(t), \qquad
    \frac{dE}{dW_{ji}} = \sum_{b,t} L_j(t)\,\bar e_{ji}(t)

with :math:`\mathrm{err} = y - y^*` (regression) or
:math:`\mathrm{softmax}(y) - \mathrm{onehot}(y^*)` (classification), masked by the loss mask.
The readout gets its exact gradient,
:math:`dE/dW^{out}_{kj} = \sum_{b,t} \mathrm{err}_k(t)\,\bar z_j(t)` with
:math:`\bar z(t) = \kappa \bar z(t-1) + z(t)` (the bias with the filtered constant 1).
With symmetric feedback :math:`B = W_{out}^\top` this is exactly the gradient that autograd
gives when every input of the population (the recurrent spikes :math:`z(t-1)` in
:math:`W_{rec} z(t-1)` and in the reset) is treated as a constant, while a unit's own spike
still enters its adaptation :math:`a(t) = \rho a(t-1) + z(t-1)`.

Since :math:`a(t+1) = \rho a(t) + z(t)`, the adaptation eligibility of the next step is
:math:`\epsilon^a(t+1) = \rho\,\epsilon^a(t) + e(t)`, which is how it is computed.

Two formulations compute these sums (``EProp(method=...)``), the same numbers to rounding:

* **the reverse scan** (``"reverse"``, the default where its memory fits): a :class:`Hook`
  after the readout node records the trial (the presynaptic vectors, the distance to
  threshold, the spikes, the held units); since every recurrence above has postsynaptic
  coefficients and the drive :math:`c_j \mathrm{pre}_i(t)`, the gradient is a scan back
  over ``(T, B, N)`` with GEMMs ``(N x BS)(BS x P)``, a block of ``S = 64`` steps at a time (see
  :func:`_reverse_gradients`). Its memory, :func:`history_bytes`, grows with ``T``;
* **the forward traces** (``"traces"``): the eligibility vectors and traces are extra state
  carried through the compiled time loop, so their memory does not grow with the number of
  steps, at the price of products over ``(N, B, P)`` at every step.

``method="auto"`` takes the reverse scan unless its history exceeds ``history_limit``
(1 GiB by default); :meth:`EProp.method_for` says which a call takes and why. The traces
hold, with ``P`` the number of presynaptic values of the trained edges (their widths, plus
one per trained bias):

* :math:`\bar e`: ``(N, B, P)``, and a scratch buffer of that shape for :math:`e` (ALIF);
* :math:`\epsilon^v`: ``(B, P)`` when it is the same for every postsynaptic unit (one
  :math:`\alpha`, reset by subtraction, no refractoriness), else ``(N, B, P)``;
* :math:`\epsilon^a`: ``(N_a, B, P)`` for the span of units with :math:`\beta \ne 0`
  (none for LIF, or for ALIF units that all have :math:`\beta = 0`);
* :math:`\bar z`: ``(B, N)``; the accumulated gradients ``(N, P)`` and ``(K, N)``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .._checks import all_finite, as_flag, as_int, as_tensor
from ..edges import Linear
from ..network.executor import Hook
from ..nodes import DENode, SpikingNode, affine_gain, refractory_steps
from ._bptt import (
    build_optimizer,
    check_optimizer,
    lr_label,
    optimizer_label,
    optimizer_of,
    resolve_lr,
    set_optimizer_lr,
)

__all__ = ["EProp", "FEEDBACK_MODES", "METHODS", "TASKS", "history_bytes"]

#: Feedback matrices of the learning signal.
FEEDBACK_MODES = ("symmetric", "random", "adaptive")
#: How the gradients of a call are computed: chosen by memory, reverse scan, forward traces.
METHODS = ("auto", "reverse", "traces")
#: The default ``history_limit`` of ``method="auto"``: 1 GiB.
HISTORY_LIMIT = 2**30
#: Tasks: the error each output sends back.
TASKS = ("regression", "classification")
_REDUCTIONS = ("mean", "sum")
_INTEGRATORS = ("exp_euler", "euler", "rk4")  # those of AFFINE_GAINS, in this order


@dataclass
class _InEdge:
    """An edge into the spiking population."""

    key: str
    lin: Linear
    read: str  # the hook read that gives the edge's presynaptic value
    weight: bool = False  # weight trained by e-prop
    bias: bool = False  # bias trained by e-prop
    cols: slice | None = None  # columns of the weight in the concatenated presynaptic vector
    bias_col: int = -1  # column of the bias (a presynaptic constant 1)
    last_spikes: bool = False  # it reads the population's spikes of the step before


@dataclass
class _Plan:
    rec: str
    node: Any
    alif: bool
    readout: str
    out_node: DENode
    out_key: str
    out_lin: Linear
    edges: list[_InEdge] = field(default_factory=list)  # every edge into rec
    n_pre: int = 0


def _param_name(key: str, what: str) -> str:
    return f"edges.{key}.{what}"


def _structure(node: Any) -> str | None:
    """Why e-prop's equations do not describe ``node``, or ``None``: they need a spiking
    model whose only integrated variable is a linear membrane with one input (its main
    one), optionally an adaptive threshold, and no jumps or noise (what ``lif`` and
    ``alif`` declare, and any model that declares the same)."""
    if not isinstance(node, SpikingNode):
        return "not a spiking model"
    if tuple(node.ode_vars) != ("v",) or node.jumps or node.noisy:
        return "it integrates more than a linear membrane (or jumps, or draws noise)"
    lin, why = node.structure("linear_part")
    if lin is None:
        return why
    why = node.plain_output()
    if why is not None or node.output_function is not None:
        return why or "its output goes through an output function"
    if list(lin["v"].gains) != [node.input_names[0]]:
        return f"its membrane is not driven by its main input {node.input_names[0]!r} alone"
    return None


def _membrane_constants(where: str, node: Any, dt: float) -> tuple[Tensor, Tensor]:
    r""":math:`\alpha` and :math:`c` of :math:`v(t) = \alpha v(t-1) + c I(t) + (1-\alpha) v_{rest}`
    for the node's integrator, as ``(n,)`` tensors: the affine one-step map of its declared
    linear membrane (:func:`~rnngraph.nodes.affine_gain`, as the node's own step)."""
    if node.integrator not in _INTEGRATORS:
        raise ValueError(
            f"{where}: e-prop needs the membrane step of the population integrated with one of "
            f"{list(_INTEGRATORS)}, got integrator={node.integrator!r}"
        )
    part = node.linear_part()["v"]
    tau = torch.as_tensor(part.tau).detach().expand(node.n)
    alpha = affine_gain(node.integrator, dt, tau)
    gain = torch.as_tensor(part.gains[node.input_names[0]]).detach().expand(node.n)
    return alpha, (1.0 - alpha) * gain


# ----------------------------------------------------------------------------------
# the network e-prop trains: checks
# ----------------------------------------------------------------------------------


def _readout_kappa(out_node: DENode, dt: float) -> Tensor:
    r"""The readout's decay per step :math:`\kappa`, from its decay map (detached)."""
    return torch.as_tensor(out_node.decay_map().kappa(dt)).detach()


def _readout_edge(where: str, model: Any) -> tuple[str, DENode, Any]:
    """The output node (a leaky readout), and the one edge into it."""
    out = model.output_node
    out_node = model.nodes[out]
    why = (
        f"it is a {type(out_node).__name__}"
        if not isinstance(out_node, DENode)
        else out_node.plain_structure("decay_map")
    )
    if why is not None:
        raise ValueError(
            f"{where}: e-prop needs a leaky readout (y = kappa y + I) as the output node, "
            f"but {out!r} is none ({why}); add one with net.add_diffeq_node({out!r}, "
            f"'leaky_readout', n={out_node.n}, tau=20.0) fed by an edge from the "
            "spiking population"
        )
    into = [e for e in model.plan.edges if e.target == out]
    if len(into) != 1:
        raise ValueError(
            f"{where}: e-prop needs exactly one edge into the readout {out!r} (from the "
            f"spiking population); it has {len(into)}"
        )
    target, adds = into[0].target_var or out_node.input_names[0], out_node.decay_map().input
    if target != adds:
        raise ValueError(
            f"{where}: the edge into the readout {out!r} feeds its input {target!r}; its "
            f"decay map adds the input {adds!r}"
        )
    return out, out_node, into[0]


def _check_population(
    where: str, model: Any, out: str, out_node: DENode, oe: Any
) -> tuple[str, Any]:
    """The spiking population that the readout edge ``oe`` reads, with its name, after
    checking that population, readout edge and readout are what e-prop trains."""
    rec, node = oe.source, model.nodes[oe.source]
    why = _structure(node)
    if why is not None:
        raise ValueError(
            f"{where}: e-prop needs a recurrent population of 'lif' or 'alif' units "
            f"feeding the readout {out!r}, but {rec!r} is a {type(node).__name__} ({why})"
        )
    if oe.delay != 0 or oe.source_var not in (None, "z"):
        raise ValueError(
            f"{where}: the readout edge {oe.key} must read the spikes of {rec!r} of the "
            "same step (delay=0, no source_var)"
        )
    if any(e.source == out for e in model.plan.edges):
        raise ValueError(
            f"{where}: the readout {out!r} feeds back into the network; e-prop trains "
            "networks whose readout has no outgoing edge"
        )
    if rec in model.input_nodes:
        raise ValueError(
            f"{where}: the spiking population {rec!r} is the input node; give the network "
            "an input node and an input edge into the population (train='gd')"
        )
    _membrane_constants(where, node, model.dt)  # checks the integrator
    kappa = _readout_kappa(out_node, model.dt)
    if kappa.numel() > 1 and not bool((kappa == kappa.reshape(-1)[0]).all()):
        raise ValueError(
            f"{where}: the readout {out!r} must have one time constant for all its units "
            "(the filtered eligibility trace is shared by the outputs)"
        )
    return rec, node


def _add_edges_into(where: str, model: Any, plan: _Plan) -> set[str]:
    """Add every edge into the population to ``plan`` (``plan.edges``), with the columns
    of its trained weight and bias in the concatenated presynaptic vector (``plan.n_pre``
    in all); return the names of the parameters they train."""
    rec = plan.rec
    allowed = set()
    p = 0
    for e in model.plan.edges:
        if e.target != rec:
            continue
        ie = _InEdge(e.key, e.module, e.key)
        ie.last_spikes = e.source == rec and e.delay == 1 and e.source_var in (None, "z")
        ie.weight = isinstance(e.module.weight, nn.Parameter) and e.module.weight.requires_grad
        b = e.module.bias
        ie.bias = isinstance(b, nn.Parameter) and b.requires_grad
        if ie.weight:
            ie.cols = slice(p, p + e.module.n_in)
            p += e.module.n_in
            allowed.add(_param_name(e.key, "weight"))
            if e.source == rec:
                mask = e.module.mask
                if mask is None or bool((mask.diagonal() != 0).any()):
                    raise ValueError(
                        f"{where}: the recurrent edge {e.key} must have no "
                        "self-connections (e-prop's units get no input from their own "
                        "spikes): add it with mask=1 - torch.eye(n)"
                    )
        if ie.bias:
            ie.bias_col = p
            p += 1
            allowed.add(_param_name(e.key, "bias"))
        plan.edges.append(ie)
    plan.n_pre = p
    return allowed


def _check_trainable(where: str, model: Any, rec: str, oe: Any, allowed: set[str]) -> None:
    """Check that e-prop trains something, and that ``allowed`` (the trained parameters of
    the edges into ``rec``) with those of the readout edge ``oe`` are all the network's
    trainable parameters."""
    for what in ("weight", "bias"):
        t = getattr(oe.module, what)
        if isinstance(t, nn.Parameter) and t.requires_grad:
            allowed.add(_param_name(oe.key, what))
    if not allowed:
        raise ValueError(
            f"{where}: nothing to train; add the edges into {rec!r} and the readout "
            "edge with train='gd'"
        )
    extra = [n for n, q in model.named_parameters() if q.requires_grad and n not in allowed]
    if extra:
        raise ValueError(
            f"{where}: e-prop trains the weights (and biases) of the edges into {rec!r} "
            f"and of the readout edge {oe.key}; {extra} are trainable too: make them "
            "fixed (train=None, or requires_grad_(False))"
        )


# ----------------------------------------------------------------------------------
# one run: constants, traces, the hook that carries them
# ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Population:
    r"""The population's constants of one run, ``(N,)`` tensors on the run's device and
    in its dtype: :math:`\alpha` and :math:`c` of the membrane step, :math:`v_{th}`,
    :math:`1 / (v_{th} - v_{reset})`, :math:`v_{rest}` and :math:`(1 - \alpha) v_{rest}`,
    and for ALIF :math:`\beta` and
    :math:`\rho = e^{-dt/\tau_a}`; the surrogate :math:`\sigma'` and the readout's
    :math:`\kappa`."""

    alpha: Tensor
    c: Tensor
    v_th: Tensor
    inv_gap: Tensor
    v_rest: Tensor
    u_rest: Tensor  # (1 - alpha) v_rest
    beta: Tensor | None  # ALIF
    rho: Tensor | None  # ALIF
    surrogate: Callable[[Tensor], Tensor]
    kappa: float


def _population(
    where: str, plan: _Plan, dt: float, dev: torch.device, dtype: torch.dtype
) -> _Population:
    """The population's constants of one run (under ``torch.no_grad()``)."""
    node = plan.node
    n = node.n
    alpha_u, c_u = (q.to(dev, dtype) for q in _membrane_constants(where, node, dt))
    vth = getattr(node, node.threshold_name).detach().expand(n).to(dev, dtype)
    gap = vth - node.v_reset.detach().expand(n).to(dev, dtype)
    inv_gap = 1.0 / gap
    rest = torch.as_tensor(node.linear_part()["v"].rest)
    v_rest = rest.detach().expand(n).to(dev, dtype)
    beta_u = rho_u = None
    if plan.alif:
        _, tau, beta = node.adaptation
        beta_u = getattr(node, beta).detach().expand(n).to(dev, dtype)
        rho_u = torch.exp(-dt / getattr(node, tau).detach().expand(n).to(dev, dtype))
    surrogate = node.spike_fn.grad
    kappa = float(_readout_kappa(plan.out_node, dt).reshape(-1)[0])
    u_rest = (1.0 - alpha_u) * v_rest
    return _Population(alpha_u, c_u, vth, inv_gap, v_rest, u_rest, beta_u, rho_u, surrogate, kappa)


@dataclass(frozen=True)
class _Mode:
    """The branches that the steps of one run take."""

    alif: bool  # adaptive threshold A = v_th + beta a
    hold: bool  # some unit can be held (refractory) in this run
    value_reset: bool  # reset to a value (else by subtraction)
    per_post: bool  # eps_v differs between postsynaptic units: (N, B, P), else (B, P)
    adaptive: bool  # some unit has beta != 0: eps_a is carried for their span
    reg: bool  # the firing-rate regulariser is on
    classify: bool  # classification (else regression)
    traces: bool  # some weight or bias into the population is trained (P > 0)


class _TargetBlocks:
    """The per-step targets (``(B, K)``; one-hot for classification) and mask weights
    (``(B, 1)``) in the network's dtype, and which steps count (``active``). They are
    made a block of steps at a time (a whole ``(T, B, K)`` one-hot, or ``T`` per-step
    views, would grow with the number of steps)."""

    span = 256

    def __init__(
        self,
        tgt: Tensor,
        mask: Tensor | None,
        n_steps: int,
        k_out: int,
        dtype: torch.dtype,
        classify: bool,
    ) -> None:
        self._tgt, self._mask, self._n_steps = tgt, mask, n_steps
        self._k_out, self._dtype, self._classify = k_out, dtype, classify
        self.active = [True] * n_steps if mask is None else (mask > 0).any(0).tolist()
        self.masked = mask is not None
        self.t0 = -1
        self.tgt: tuple[Tensor, ...] = ()
        self.mask: tuple[Tensor, ...] = ()

    def at(self, t: int) -> int:
        """Make the block holding step ``t`` current; return ``t``'s index in it."""
        span, tgt, mask = self.span, self._tgt, self._mask
        b0 = t - t % span
        if self.t0 != b0:
            b1 = min(self._n_steps, b0 + span)
            if self._classify:  # (S, B, K) one-hot
                one = torch.nn.functional.one_hot(tgt[:, b0:b1].T, self._k_out)
                self.tgt = one.to(self._dtype).unbind(0)
            else:
                self.tgt = tgt[:, b0:b1].to(self._dtype).transpose(0, 1).unbind(0)
            if mask is not None:
                self.mask = mask[:, b0:b1].T.unsqueeze(-1).unbind(0)  # S x (B, 1)
            self.t0 = b0
        return t - b0


@dataclass
class _Traces:
    r"""The state e-prop carries through the time loop and the sums it accumulates (see
    the module docstring for the shapes)."""

    ebar: Tensor  # \bar e, (N, B, P)
    ev: Tensor | None  # \epsilon^v per postsynaptic unit, (N, B, P) (per_post)
    eh: Tensor | None  # \epsilon^v / c, the same for every postsynaptic unit, (B, P)
    G: Tensor  # (N, R, P): sum_t L(t) ebar(t), and sum_t ebar(t) (regulariser)
    LX: Tensor  # (N, R, B): the learning signal of the step, and ones (regulariser)
    zbar: Tensor  # \bar z, (B, N)
    g_out: Tensor  # the readout weight's gradient, (K, N)
    g_bias: Tensor  # the readout bias's gradient, (K,)
    count: Tensor  # spikes of each unit, (N,)
    ones: Tensor  # (B, 1): the presynaptic constant 1 of a bias
    # the adaptation eligibility, for the span ``sl`` of units with beta != 0 (adaptive)
    sl: slice | None = None
    ea: Tensor | None = None  # \epsilon^a, (N_a, B, P)
    e_buf: Tensor | None = None  # e, (N, B, P), a buffer reused every step
    e_sl: Tensor | None = None  # e_buf[sl]
    nbeta_c: Tensor | None = None  # -beta[sl], (N_a, 1, 1)
    rho_c: Tensor | None = None  # rho[sl], (N_a, 1, 1)
    rho_s: float | None = None  # rho[sl] where it is one value


def _adaptive_span(pop: _Population) -> slice:
    """The span of units with :math:`\\beta \\ne 0`, first to last (a mixed population
    keeps its LIF units, beta = 0, in one block): where the adaptation's eligibility is
    carried."""
    idx = torch.nonzero(pop.beta != 0).reshape(-1)
    return slice(int(idx[0]), int(idx[-1]) + 1)


def _traces(
    plan: _Plan,
    pop: _Population,
    mode: _Mode,
    batch: int,
    dev: torch.device,
    dtype: torch.dtype,
) -> _Traces:
    """The zeroed state and sums of one run (under ``torch.no_grad()``)."""
    n, n_pre, k_out = plan.node.n, plan.n_pre, plan.out_node.n
    rows = 2 if mode.reg else 1
    ebar = torch.zeros(n, batch, n_pre, device=dev, dtype=dtype)  # (N, B, P)
    ev = eh = None
    if mode.per_post:
        ev = torch.zeros(n, batch, n_pre, device=dev, dtype=dtype)  # (N, B, P)
    else:
        eh = torch.zeros(batch, n_pre, device=dev, dtype=dtype)  # (B, P)
    # the adaptation trace only for the span of units with beta != 0 (a mixed
    # population keeps its LIF units, beta = 0, in one block)
    ada: dict[str, Any] = {}
    if mode.adaptive:
        sl = _adaptive_span(pop)
        n_a = sl.stop - sl.start
        e_buf = torch.empty(n, batch, n_pre, device=dev, dtype=dtype)  # (N, B, P)
        rho_a = pop.rho[sl]
        ada = {
            "sl": sl,
            "ea": torch.zeros(n_a, batch, n_pre, device=dev, dtype=dtype),  # (N_a, B, P)
            "e_buf": e_buf,
            "e_sl": e_buf[sl],
            "nbeta_c": -pop.beta[sl, None, None],  # (N_a, 1, 1)
            "rho_c": rho_a[:, None, None],
            "rho_s": float(rho_a[0]) if bool((rho_a == rho_a[0]).all()) else None,
        }
    LX = torch.zeros(n, rows, batch, device=dev, dtype=dtype)  # (N, R, B)
    if mode.reg:
        LX[:, 1, :] = 1.0
    return _Traces(
        ebar=ebar,
        ev=ev,
        eh=eh,
        G=torch.zeros(n, rows, n_pre, device=dev, dtype=dtype),  # (N, R, P)
        LX=LX,
        zbar=torch.zeros(batch, n, device=dev, dtype=dtype),  # (B, N)
        g_out=torch.zeros(k_out, n, device=dev, dtype=dtype),  # (K, N)
        g_bias=torch.zeros(k_out, device=dev, dtype=dtype),  # (K,)
        count=torch.zeros(n, device=dev, dtype=dtype),  # (N,) spikes
        ones=torch.ones(batch, 1, device=dev, dtype=dtype),
        **ada,
    )


@dataclass(frozen=True)
class _Reads:
    """What the hook reads (``names``), and the slot of each value among its arguments
    (-1: not read)."""

    names: tuple[str, ...]
    pre_parts: tuple[tuple[int, int], ...]  # (read slot or -1 for a constant 1, width)
    single: bool  # the presynaptic vector is one read value
    cur: int  # the population's input current of the step (reset to a value)
    v: int
    z: int
    a: int  # the adaptation (ALIF)
    ref: int  # the refractory counter (hold)
    y: int  # the readout


def _hook_reads(plan: _Plan, mode: _Mode) -> _Reads:
    """The values the hook reads: the presynaptic values of the trained edges into the
    population, in the order of their columns, and the states of the population and the
    readout."""
    reads: list[str] = []

    def slot(name: str) -> int:
        if name not in reads:
            reads.append(name)
        return reads.index(name)

    pre_parts: list[tuple[int, int]] = []  # (read slot or -1 for a constant 1, width)
    for ie in plan.edges:
        if ie.weight:
            pre_parts.append((slot(ie.read), ie.lin.n_in))
        if ie.bias:
            pre_parts.append((-1, 1))
    # the population's input current of the step, as the loop computed it
    i_cur = slot(f"{plan.rec}:{plan.node.input_names[0]}") if mode.value_reset else -1
    i_v, i_z = slot(f"{plan.rec}.v"), slot(f"{plan.rec}.z")
    i_a = slot(f"{plan.rec}.{plan.node.adaptation[0]}") if plan.alif else -1
    i_ref = slot(f"{plan.rec}.ref") if mode.hold else -1
    i_y = slot(plan.readout)
    single = len(pre_parts) == 1 and pre_parts[0][0] >= 0
    return _Reads(tuple(reads), tuple(pre_parts), single, i_cur, i_v, i_z, i_a, i_ref, i_y)


def _hidden_membrane(
    pop: _Population, v_prev: Tensor, cur: Tensor, held: Tensor | None, z: Tensor, v: Tensor
) -> Tensor:
    r"""The membrane a reset to a value hid where a unit spiked: the step's
    :math:`\alpha v(t-1) + (1 - \alpha) v_{rest} + c I(t)` (:math:`v(t-1)` for a held
    unit) there, the membrane ``v`` elsewhere."""
    vp = pop.alpha * v_prev + pop.u_rest + pop.c * cur
    if held is not None:
        vp = torch.where(held, v_prev, vp)
    return torch.where(z > 0, vp, v)


def _psi(pop: _Population, d: Tensor, held: Tensor | None) -> Tensor:
    r""":math:`\psi = \sigma'((d - v_{th}) / g) / g` from :math:`d = v - \beta a` (the
    membrane before the reset less the adaptation), :math:`g = v_{th} - v_{reset}`; 0
    where a unit was held."""
    psi = pop.surrogate((d - pop.v_th) * pop.inv_gap) * pop.inv_gap
    return psi if held is None else psi.masked_fill(held, 0.0)


def _pseudo_derivative(
    pop: _Population, mode: _Mode, rd: _Reads, state0: dict[str, Tensor], rec: str
) -> Callable[[tuple[Tensor, ...]], tuple[Tensor, Tensor | None]]:
    r"""Step 2 of a step of the forward traces, from the hook's values: :math:`\psi_j(t)`
    at the distance to threshold of the step (0 for a unit held in it), ``(B, N)``, and the
    units held in the step (``(B, N)`` booleans; ``None`` where no unit can be held)."""
    nbeta = -pop.beta if mode.alif else None
    hold, value_reset = mode.hold, mode.value_reset
    i_cur, i_v, i_z, i_a, i_ref = rd.cur, rd.v, rd.z, rd.a, rd.ref
    carry: dict[str, Any] = {
        "held": state0[f"{rec}.ref"] > 0,
        "v_prev": state0[f"{rec}.v"].clone(),
    }

    def psi_of(vals: tuple[Tensor, ...]) -> tuple[Tensor, Tensor | None]:
        """psi of the step, and the units held in it."""
        v, z = vals[i_v], vals[i_z]
        held = carry["held"] if hold else None
        if value_reset:
            v_thr = _hidden_membrane(pop, carry["v_prev"], vals[i_cur], held, z, v)
            carry["v_prev"] = v.clone()
        else:
            v_thr = v
        d = v_thr if nbeta is None else torch.addcmul(v_thr, nbeta, vals[i_a])
        psi = _psi(pop, d, held)
        if hold:
            carry["held"] = vals[i_ref] > 0
        return psi, held

    return psi_of


def _presynaptic(rd: _Reads, ones: Tensor) -> Callable[[tuple[Tensor, ...]], Tensor]:
    """The presynaptic vector of the step from the hook's values, ``(B, P)``: the trained
    edges' presynaptic values in the order of their columns, a constant 1 per bias."""
    pre_parts, single = rd.pre_parts, rd.single
    if single:
        s0 = pre_parts[0][0]
        return lambda vals: vals[s0]
    return lambda vals: torch.cat([vals[s] if s >= 0 else ones for s, _ in pre_parts], dim=1)


def _eligibility_step(
    pop: _Population, mode: _Mode, tr: _Traces, rd: _Reads, state0: dict[str, Tensor], rec: str
) -> Callable[[tuple[Tensor, ...]], None]:
    r"""Steps 1-3 of a step, from the hook's values: advance
    :math:`\epsilon^v_{ji}(t) = \alpha_j \hat\epsilon^v_{ji}(t-1) + c_j \mathrm{pre}_i(t)`,
    compute :math:`\psi_j(t)` at the distance to threshold of the step, and add
    :math:`e_{ji}(t) = \psi_j(t) (\epsilon^v_{ji}(t) - \beta_j \epsilon^a_{ji}(t))` to
    :math:`\bar e_{ji}(t) = \kappa \bar e_{ji}(t-1) + e_{ji}(t)`."""
    alpha_u, c_u, kappa = pop.alpha, pop.c, pop.kappa
    hold, per_post, adaptive = mode.hold, mode.per_post, mode.adaptive
    ebar, ev, eh = tr.ebar, tr.ev, tr.eh
    ea, e_buf, e_sl, nbeta_c, sl = tr.ea, tr.e_buf, tr.e_sl, tr.nbeta_c, tr.sl
    psi_of = _pseudo_derivative(pop, mode, rd, state0, rec)
    pre_of = _presynaptic(rd, tr.ones)
    alpha_s = float(alpha_u[0])
    alpha_c = alpha_u[:, None]  # (N, 1): broadcasts over (N, B)
    c_c = c_u[:, None]

    def eligibility(vals: tuple[Tensor, ...]) -> None:
        """Steps 1-3: advance eps_v, compute psi, add e(t) to ebar."""
        pre = pre_of(vals)  # (B, P)
        psi, held = psi_of(vals)  # 2. (B, N), and the units held in the step
        # 1. membrane eligibility before the reset
        if per_post:
            if hold:
                a_eff = torch.where(held.T, 1.0, alpha_c)  # (N, B)
                c_eff = torch.where(held.T, 0.0, c_c)
            else:
                a_eff, c_eff = alpha_c, c_c
            ev.mul_(a_eff.unsqueeze(-1)).addcmul_(c_eff.unsqueeze(-1), pre.unsqueeze(0))
        else:
            eh.mul_(alpha_s).add_(pre)
        psi_t = psi.T.unsqueeze(-1)  # (N, B, 1)
        # 3. filtered eligibility trace
        if adaptive:
            # e = psi (eps_v - beta eps_a), one (N, B, P) buffer reused every step
            if per_post:
                torch.mul(psi_t, ev, out=e_buf)
            else:
                torch.mul((psi * c_u).T.unsqueeze(-1), eh.unsqueeze(0), out=e_buf)
            e_sl.addcmul_(nbeta_c * psi_t[sl], ea)
            torch.add(e_buf, ebar, alpha=kappa, out=ebar)  # ebar = kappa ebar + e
        elif per_post:
            ebar.mul_(kappa).addcmul_(psi_t, ev)
        else:
            ebar.mul_(kappa).addcmul_((psi * c_u).T.unsqueeze(-1), eh.unsqueeze(0))

    return eligibility


def _adaptation_step(mode: _Mode, tr: _Traces, rd: _Reads) -> Callable[[tuple[Tensor, ...]], None]:
    r"""Steps 5-6 of a step, from the hook's values: the adaptation eligibility of the next
    step, :math:`\epsilon^a(t+1) = \rho\,\epsilon^a(t) + e(t)`, and for a reset to a value
    :math:`\hat\epsilon^v(t) = (1 - z(t))\,\epsilon^v(t)`."""
    adaptive, value_reset = mode.adaptive, mode.value_reset
    ev, ea, e_sl, rho_c, rho_s = tr.ev, tr.ea, tr.e_sl, tr.rho_c, tr.rho_s
    i_z = rd.z

    def after(vals: tuple[Tensor, ...]) -> None:
        """Steps 5-6: the adaptation eligibility of the next step and the reset."""
        # 5. a(t+1) = rho a(t) + z(t), so eps_a(t+1) = rho eps_a(t) + e(t)
        if adaptive:
            if rho_s is not None:
                torch.add(e_sl, ea, alpha=rho_s, out=ea)
            else:
                ea.mul_(rho_c).add_(e_sl)
        # 6. reset to a value: the stored membrane forgets its past where the unit spiked
        if value_reset:
            ev.mul_((1.0 - vals[i_z]).T.unsqueeze(-1))

    return after


def _trace_hook(
    pop: _Population,
    mode: _Mode,
    tr: _Traces,
    rd: _Reads,
    blocks: _TargetBlocks,
    Bt: Tensor,
    state0: dict[str, Tensor],
    rec: str,
) -> Callable[..., None]:
    r"""The hook after the readout node, ``hook(t, *values)``: the eligibility traces
    (steps 1-3 and 5-6), the readout traces :math:`\bar z(t) = \kappa \bar z(t-1) + z(t)`
    and the spike counts; at each step that counts, the error, the readout's gradient
    :math:`\sum_t \mathrm{err}(t)\,\bar z(t)^\top` and the learning signal
    :math:`L(t) = B\,\mathrm{err}(t)` into :math:`\sum_t L_j(t)\,\bar e_{ji}(t)` (with
    :math:`\sum_t \bar e_{ji}(t)` for the regulariser, at every step)."""
    eligibility = _eligibility_step(pop, mode, tr, rd, state0, rec)
    after = _adaptation_step(mode, tr, rd)
    kappa, traces, classify, reg = pop.kappa, mode.traces, mode.classify, mode.reg
    ebar, zbar, g_out, g_bias, count = tr.ebar, tr.zbar, tr.g_out, tr.g_bias, tr.count
    G, LX = tr.G, tr.LX
    i_z, i_y = rd.z, rd.y
    active, block, masked = blocks.active, blocks.at, blocks.masked
    carry: dict[str, Any] = {"onebar": 0.0, "lx_zero": True}

    def hook(t: int, *vals: Tensor) -> None:
        """Step ``t``: the traces and sums after the readout node."""
        if traces:
            eligibility(vals)
        z, y = vals[i_z], vals[i_y]
        # 4. readout traces, learning signal, gradients
        zbar.mul_(kappa).add_(z)
        carry["onebar"] = kappa * carry["onebar"] + 1.0
        if active[t]:
            i = block(t)
            err = _error(y, blocks.tgt[i], blocks.mask[i] if masked else None, classify)
            g_out.addmm_(err.T, zbar)  # (K, N)
            g_bias.add_(err.sum(0), alpha=carry["onebar"])
            if traces:
                L = err @ Bt  # (B, N) learning signal
                LX[:, 0, :].copy_(L.T)
                carry["lx_zero"] = False
                G.baddbmm_(LX, ebar)  # (N, R, P)
        elif reg and traces:
            if not carry["lx_zero"]:
                LX[:, 0, :].zero_()
                carry["lx_zero"] = True
            G.baddbmm_(LX, ebar)
        count.add_(z.sum(0))
        if traces:
            after(vals)

    return hook


def _run_hooked(
    where: str, model: Any, x: Tensor, state0: dict[str, Tensor], plan: _Plan, rd: _Reads, hook: Any
) -> Tensor:
    """Run the network on ``x`` from ``state0`` without autograd, with ``hook`` after the
    readout node; the network's held state is restored afterwards, also when the run
    fails. Returns the output, ``(B, T, K)``."""

    hooks = (Hook(plan.readout, rd.names, hook),)
    held_state = model.state
    try:
        with torch.no_grad():
            rec = model.execute(where, x, None, state0, False, None, hooks=hooks)
    finally:
        model.state = held_state
    return rec.output if rec.output.dim() == 3 else rec.output.unsqueeze(0)  # (B, T, K)


@dataclass(frozen=True)
class _Columns:
    """Where the reverse scan finds each column of the presynaptic vector: the read
    values copied into its history every step (``stored``, read slots, their history
    columns and gradient columns in ``to_grad``), those that are the population's spikes
    of the step before (``shifted``: read slot and gradient columns; the recorded spikes
    serve them, the read value only at the first step) and the biases' constant 1
    (``ones``: gradient columns)."""

    stored: tuple[int, ...]
    width: int
    to_grad: tuple[tuple[slice, slice], ...]
    shifted: tuple[tuple[int, slice], ...]
    ones: tuple[int, ...]


def _columns(plan: _Plan, names: tuple[str, ...] = ()) -> _Columns:
    """The layout of the reverse scan's presynaptic history; ``names``: the hook's reads
    (the slots are ``-1`` without them)."""
    slot = (lambda r: names.index(r)) if names else (lambda r: -1)
    stored, to_grad, shifted, ones = [], [], [], []
    width = 0
    for ie in plan.edges:
        if ie.weight:
            if ie.last_spikes:
                shifted.append((slot(ie.read), ie.cols))
            else:
                w = ie.cols.stop - ie.cols.start
                stored.append(slot(ie.read))
                to_grad.append((slice(width, width + w), ie.cols))
                width += w
        if ie.bias:
            ones.append(ie.bias_col)
    return _Columns(tuple(stored), width, tuple(to_grad), tuple(shifted), tuple(ones))


@dataclass
class _History:
    r"""What the reverse formulation records in the time loop, step-major: the stored
    presynaptic values ``(T, B, P_s)`` (:class:`_Columns`; ``None`` where no column is
    stored), the read values of the shifted columns at the first step, :math:`v_j -
    \beta_j a_j` (the membrane before the reset less the adaptation) that becomes
    :math:`\psi`, the spikes ``(T, B, N)``, and which units were held in each step
    (``(T, B, N)`` booleans; ``None`` where none can be). Without trained inputs only the
    spikes are recorded."""

    pre: Tensor | None
    first: list[Tensor]
    psi: Tensor | None  # None without trained inputs (P = 0)
    z: Tensor
    held: Tensor | None


#: steps of the reverse scan's blocks: its scratch is (span, B, N)
_SPAN = 64


def history_bytes(
    n: int,
    n_pre: int,
    k_out: int,
    batch: int,
    n_steps: int,
    itemsize: int,
    hold: bool,
    inputs: bool = True,
) -> int:
    r"""Bytes the reverse formulation records for a population of ``n`` units with
    ``n_pre`` stored presynaptic values (those that are not the population's own spikes of
    the step before, nor a bias's constant 1) and ``k_out`` outputs: :math:`T B (2 N + P_s +
    K)` numbers (the stored presynaptic values, :math:`\psi`, the spikes and the filtered
    errors) and, where a unit can be held, :math:`T B N` booleans; with no trained edge into
    the population (``inputs=False``) only the spikes and the errors (``hold`` then changes
    nothing: no holds are recorded). Its scratch,
    :math:`\min(64, T)\,B N` numbers, is counted; the first step's values of the
    population's own spikes, :math:`B N` numbers per recurrent edge, are not."""
    where = "history_bytes"
    n, n_pre, k_out, batch, n_steps, itemsize = (
        as_int(where, name, value, minimum=0)
        for name, value in (
            ("n", n),
            ("n_pre", n_pre),
            ("k_out", k_out),
            ("batch", batch),
            ("n_steps", n_steps),
            ("itemsize", itemsize),
        )
    )
    hold, inputs = as_flag(where, "hold", hold), as_flag(where, "inputs", inputs)
    if not inputs:
        return n_steps * batch * (n + k_out) * itemsize
    per_step = (2 * n + n_pre + k_out) * itemsize + (n if hold else 0)
    return n_steps * batch * per_step + min(_SPAN, n_steps) * batch * n * itemsize


def _history(
    plan: _Plan,
    mode: _Mode,
    state0: dict[str, Tensor],
    n_steps: int,
    dtype: torch.dtype,
    cols: _Columns,
    kept_box: list[_History | None],
) -> _History:
    """The history of one run (under ``torch.no_grad()``): the one in ``kept_box`` (that
    of an earlier call, taken out of the box) where its shapes, dtype and device fit (the
    buffers are written afresh every step; reusing them spares the operating system's
    first touch of every page), else new buffers, made once nothing holds the old ones;
    the held units of the first step are those of ``state0``."""
    kept = kept_box.pop() if kept_box else None
    n = plan.node.n
    v0 = state0[f"{plan.rec}.v"]
    batch, dev = v0.shape[0], v0.device

    def new(width: int, kind: torch.dtype = dtype) -> Tensor:
        return torch.empty(n_steps, batch, width, device=dev, dtype=kind)

    fits = (
        kept is not None
        and tuple(kept.z.shape) == (n_steps, batch, n)
        and kept.z.dtype == dtype
        and kept.z.device == dev
        and (None if kept.pre is None else kept.pre.shape[-1]) == (cols.width or None)
        and [f.shape[-1] for f in kept.first] == [c.stop - c.start for _, c in cols.shifted]
        and (kept.psi is not None) == mode.traces
        and (kept.held is not None) == (mode.hold and mode.traces)
    )
    if fits:
        hist = kept
    else:
        del kept  # not held while the new buffers are made
        first = [
            torch.empty(batch, c.stop - c.start, device=dev, dtype=dtype) for _, c in cols.shifted
        ]
        held = new(n, torch.bool) if mode.hold and mode.traces else None
        psi = new(n) if mode.traces else None
        hist = _History(new(cols.width) if cols.width else None, first, psi, new(n), held)
    if hist.held is not None:
        torch.gt(state0[f"{plan.rec}.ref"], 0, out=hist.held[0])
    return hist


def _history_hook(
    pop: _Population,
    mode: _Mode,
    hist: _History,
    rd: _Reads,
    cols: _Columns,
    state0: dict[str, Tensor],
    rec: str,
) -> Callable[..., None]:
    r"""The hook after the readout node, ``hook(t, *values)``, of the reverse formulation:
    it records the step's presynaptic values, the distance to threshold before
    :math:`\psi` (:func:`_psi_of_history` finishes it a block of steps at a time), the
    spikes and the units held in the next step into ``hist``, copies only, except for a
    reset to a value (the membrane the reset hid, as :func:`_pseudo_derivative`)."""
    parts, shifted = (
        cols.stored,
        [(s, f) for (s, _), f in zip(cols.shifted, hist.first, strict=True)],
    )
    traces, value_reset = mode.traces, mode.value_reset
    i_z, i_v, i_a, i_ref = rd.z, rd.v, rd.a, rd.ref
    nbeta = -pop.beta if mode.alif else None
    pre, d_h, z_h, held_h = hist.pre, hist.psi, hist.z, hist.held
    last = z_h.shape[0] - 1
    carry = {"v_prev": state0[f"{rec}.v"].clone()}

    def hook(t: int, *vals: Tensor) -> None:
        """Step ``t``: record what the reverse scan needs."""
        z = vals[i_z]
        if traces:
            if len(parts) == 1:
                pre[t].copy_(vals[parts[0]])
            elif parts:
                torch.cat([vals[s] for s in parts], dim=1, out=pre[t])
            if t == 0:
                for s, f in shifted:
                    f.copy_(vals[s])
            v = vals[i_v]
            if value_reset:  # the membrane before the reset where the unit spiked
                held = None if held_h is None else held_h[t]
                v_new = _hidden_membrane(pop, carry["v_prev"], vals[rd.cur], held, z, v)
                carry["v_prev"] = v.clone()
                v = v_new
            if nbeta is not None:
                torch.addcmul(v, nbeta, vals[i_a], out=d_h[t])
            else:
                d_h[t] = v
        if held_h is not None and t < last:
            torch.gt(vals[i_ref], 0, out=held_h[t + 1])  # held_h: only with trained inputs
        z_h[t] = z

    return hook


def _error(y: Tensor, target: Tensor, mask: Tensor | None, classify: bool) -> Tensor:
    r"""The error the readout sends back, :math:`\mathrm{softmax}(y) - \mathrm{onehot}(y^*)`
    (``target`` one-hot) or :math:`y - y^*`, times the loss mask (broadcast)."""
    err = (torch.softmax(y, dim=-1) if classify else y) - target
    return err if mask is None else err * mask


def _errors(
    y: Tensor, tgt: Tensor, mask: Tensor | None, classify: bool, dtype: torch.dtype
) -> Tensor:
    """The errors (:func:`_error`) of every step, step-major ``(T, B, K)``, from the
    outputs ``(B, T, K)``, the targets (class indices or values) and the loss mask."""
    target = torch.nn.functional.one_hot(tgt, y.shape[-1]) if classify else tgt
    m = None if mask is None else mask.unsqueeze(-1)
    return _error(y, target.to(dtype), m, classify).transpose(0, 1).contiguous()


def _psi_of_history(pop: _Population, hist: _History, t0: int, t1: int) -> Tensor:
    r""":math:`\psi` (:func:`_psi`) of steps ``t0 .. t1 - 1`` from the recorded
    :math:`v - \beta a`, in place in ``hist.psi``."""
    d = hist.psi[t0:t1]
    held = None if hist.held is None else hist.held[t0:t1]
    return d.copy_(_psi(pop, d, held))


def _membrane_back(
    pop: _Population, mode: _Mode, hist: _History, t0: int, t1: int, u: Tensor
) -> None:
    r"""The membrane's part of the reverse scan over steps ``t1 - 1 .. t0``, in place in
    ``hist.psi`` (which holds :math:`\lambda\psi` there and :math:`\mu` from ``t1`` on):
    :math:`\mu(t) = \lambda(t)\psi(t) + a(t+1)\,m(t)\,\mu(t+1)`, the coefficients made
    in ``u`` (the block's scratch) where they vary over time."""
    n_steps, batch, n = hist.z.shape
    alpha = pop.alpha
    rows = hist.psi[t0 : min(t1 + 1, n_steps)].unbind(0)  # mu(t0 .. t1)
    span = len(rows) - 1  # the coefficients of mu(t0 + 1 .. t0 + span)
    if mode.hold or mode.value_reset:
        coef = u[:span]
        if hist.held is not None:
            one = torch.ones((), device=u.device, dtype=u.dtype)
            torch.where(hist.held[t0 + 1 : t0 + 1 + span], one, alpha, out=coef)
        else:
            coef.copy_(alpha.expand(span, batch, n))
        if mode.value_reset:
            coef.mul_(1.0 - hist.z[t0 : t0 + span])
        coefs = coef.unbind(0)
    else:
        coefs = (alpha,) * span
    for i in range(span - 1, -1, -1):
        rows[i].addcmul_(coefs[i], rows[i + 1])


def _reverse_gradients(
    pop: _Population,
    mode: _Mode,
    hist: _History,
    cols: _Columns,
    err: Tensor,
    Bt: Tensor,
    u0: Tensor,
    scale: float,
    n_pre: int,
) -> tuple[Tensor | None, Tensor, Tensor]:
    r"""The gradients from the recorded history by one reverse scan over ``(T, B, N)`` and
    GEMMs (one per block of steps), the sums the forward traces accumulate, reordered.

    Every eligibility recurrence has postsynaptic coefficients and the drive
    :math:`c_j\,\mathrm{pre}_i(t)`, so with the filtered errors
    :math:`\bar\delta(t) = \mathrm{err}(t) + \kappa\,\bar\delta(t+1)`, the weight of
    :math:`e_{ji}(t)` in the loss is :math:`u_j(t) = s\,(B\,\bar\delta(t))_j + r_j` (``s``
    the loss scale, ``r`` the rate regulariser's constant learning signal, ``u0``). The
    adaptation feeds :math:`e(t)` back into later steps, :math:`\lambda(t) = u(t) - \beta
    A(t)` with :math:`A(t-1) = \lambda(t)\psi(t) + \rho A(t)`; the membrane carries
    :math:`\mu(t) = \lambda(t)\psi(t) + a(t+1)\,m(t)\,\mu(t+1)` (:math:`a = \alpha`, 1
    for a held unit; :math:`m = 1 - z` for a reset to a value, else 1). Then

    .. math::

        \frac{dE}{dW_{ji}} = \sum_{b,t} \mu_j(t)\,c_j(t)\,\mathrm{pre}_i(t), \qquad
        \frac{dE}{dW^{out}_{kj}} = \sum_{b,t} \bar\delta_k(t)\,z_j(t)

    with :math:`c_j(t) = 0` for a held unit. The scan goes back a block of steps at a
    time (its scratch is one block). Returns the population's ``(N, P)`` gradient
    (``None`` without trained inputs) and the readout's unscaled weight ``(K, N)`` and
    bias ``(K,)`` sums."""
    n_steps, batch, n = hist.z.shape
    k_out = err.shape[-1]
    dbar = err  # filtered in place, from the last step back
    rows = dbar.unbind(0)
    for t in range(n_steps - 2, -1, -1):
        rows[t].add_(rows[t + 1], alpha=pop.kappa)
    g_out = dbar.reshape(-1, k_out).T @ hist.z.reshape(-1, n)  # (K, N)
    g_bias = dbar.sum((0, 1))
    if not mode.traces:
        return None, g_out, g_bias
    g_pre = torch.zeros(n, n_pre, device=err.device, dtype=err.dtype)
    share = _gradient_share(hist, cols, g_pre)
    Bs = Bt * scale  # (K, N)
    u0_row = torch.as_tensor(u0, device=err.device, dtype=err.dtype).expand(n)
    c, held = pop.c, hist.held
    if mode.adaptive:
        sl = _adaptive_span(pop)
        nbeta, rho = -pop.beta[sl], pop.rho[sl]
        acc = torch.zeros(batch, sl.stop - sl.start, device=err.device, dtype=err.dtype)
    scratch = torch.empty(min(_SPAN, n_steps) * batch, n, device=err.device, dtype=err.dtype)
    zero = torch.zeros((), device=err.device, dtype=err.dtype)
    t1 = n_steps
    while t1 > 0:
        t0 = max(0, t1 - _SPAN)
        psi = _psi_of_history(pop, hist, t0, t1)  # (S, B, N)
        u = scratch[: (t1 - t0) * batch].view(t1 - t0, batch, n)
        torch.addmm(u0_row, dbar[t0:t1].reshape(-1, k_out), Bs, out=u.view(-1, n))
        if mode.adaptive:
            lams, psis = u[:, :, sl].unbind(0), psi[:, :, sl].unbind(0)
            for t in range(t1 - t0 - 1, -1, -1):
                lam = lams[t].addcmul_(nbeta, acc)  # lambda(t) = u(t) - beta A(t)
                acc.mul_(rho).addcmul_(lam, psis[t])  # A(t-1)
        psi.mul_(u)  # lambda psi, then mu, in place
        _membrane_back(pop, mode, hist, t0, t1, u)
        # mu(t0) is final; the block's c(t) (0 where held) and its share of the gradient
        if held is not None:
            torch.where(held[t0:t1], zero, c, out=u)
            hist_w = u.mul_(psi)
        else:
            hist_w = torch.mul(psi, c, out=u)
        share(hist_w, t0, t1)
        t1 = t0
    return g_pre, g_out, g_bias


def _gradient_share(
    hist: _History, cols: _Columns, g_pre: Tensor
) -> Callable[[Tensor, int, int], None]:
    r"""``share(m, t0, t1)`` adds the gradient of steps ``t0 .. t1 - 1``,
    :math:`\sum_{b,t} m_j(t)\,\mathrm{pre}_i(t)` with ``m`` :math:`= \mu c`, ``(S, B, N)``,
    to ``g_pre``: the stored columns by a GEMM, the population's spikes of the step
    before from the recorded spikes, a bias's constant 1 as a sum."""
    n = hist.z.shape[-1]
    stored = None if hist.pre is None else torch.zeros_like(g_pre[:, : cols.width])

    def share(m: Tensor, t0: int, t1: int) -> None:
        flat = m.reshape(-1, n)
        if stored is not None:
            stored.addmm_(flat.T, hist.pre[t0:t1].reshape(-1, cols.width))
        lo = max(t0, 1)  # pre(t) = z(t - 1) from step 1 on
        for (_, gc), first in zip(cols.shifted, hist.first, strict=True):
            g = g_pre[:, gc]
            if lo < t1:
                g.addmm_(m[lo - t0 :].reshape(-1, n).T, hist.z[lo - 1 : t1 - 1].reshape(-1, n))
            if t0 == 0:
                g.addmm_(m[0].T, first)
        if cols.ones:
            total = flat.sum(0)
            for c in cols.ones:
                g_pre[:, c] += total
        if t0 == 0 and stored is not None:  # the last block: the stored columns in place
            for hc, gc in cols.to_grad:
                g_pre[:, gc] += stored[:, hc]

    return share


def _gradients(
    plan: _Plan, g_pre: Tensor, g_out: Tensor, g_bias: Tensor, scale: float
) -> dict[str, Tensor]:
    r"""The gradients by parameter name: the columns of ``g_pre`` (:math:`dE/dW_{ji}`,
    ``(N, P)``, already scaled) for the edges into the population, masked like their
    weights, and :math:`dE/dW^{out} = \sum_{b,t} \mathrm{err}\,\bar z^\top / D` and the
    bias's for the readout edge."""
    grads: dict[str, Tensor] = {}
    for ie in plan.edges:
        if ie.weight:
            g = g_pre[:, ie.cols]
            if ie.lin.mask is not None:
                g = g * ie.lin.mask
            grads[_param_name(ie.key, "weight")] = g.contiguous()
        if ie.bias:
            grads[_param_name(ie.key, "bias")] = g_pre[:, ie.bias_col].clone()
    lin = plan.out_lin
    if isinstance(lin.weight, nn.Parameter) and lin.weight.requires_grad:
        g = g_out * scale
        if lin.mask is not None:
            g = g * lin.mask
        grads[_param_name(plan.out_key, "weight")] = g
    if isinstance(lin.bias, nn.Parameter) and lin.bias.requires_grad:
        grads[_param_name(plan.out_key, "bias")] = g_bias * scale
    return grads


def _check_method(method: Any, history_limit: Any) -> int | None:
    """The ``history_limit`` of ``method`` after checking both: the given one or the
    default for ``"auto"``, ``None`` for a given method (a limit would not change it)."""
    if method not in METHODS:
        raise ValueError(f"EProp: unknown method {method!r}; valid ones are {list(METHODS)}")
    if history_limit is None:
        return HISTORY_LIMIT if method == "auto" else None
    history_limit = as_int("EProp", "history_limit", history_limit, minimum=1)
    if method != "auto":
        raise ValueError(
            f"EProp: history_limit={history_limit} has no effect with method={method!r} "
            "(only method='auto' chooses by memory); leave it out or pass method='auto'"
        )
    return history_limit


def _check_feedback_decay(feedback: str, decay: Any) -> float:
    """``feedback_decay`` as a float >= 0; other than 0 only with adaptive feedback (the
    only feedback matrix that changes)."""
    if not (isinstance(decay, numbers.Real) and not isinstance(decay, bool)) or not (
        0 <= decay < math.inf
    ):
        raise ValueError(f"EProp: feedback_decay must be a number >= 0, got {decay!r}")
    if decay and feedback != "adaptive":
        raise ValueError(
            f"EProp: feedback_decay={decay} decays the adaptive feedback matrix; feedback="
            f"{feedback!r} keeps its matrix fixed (pass feedback='adaptive', or leave "
            "feedback_decay out)"
        )
    return float(decay)


def _check_regulariser(reg_rate: Any, reg_weight: Any) -> None:
    """Refuse a target rate or a weight of the rate regulariser that is no number >= 0,
    and a weight without a rate."""
    if reg_rate is not None:
        if isinstance(reg_rate, bool) or not isinstance(reg_rate, int | float):
            raise TypeError(f"EProp: reg_rate must be a number (Hz) or None, got {reg_rate!r}")
        if not (math.isfinite(reg_rate) and reg_rate >= 0):
            raise ValueError(f"EProp: reg_rate must be >= 0 (Hz), got {reg_rate!r}")
    if reg_weight is not None and (
        isinstance(reg_weight, bool)
        or not isinstance(reg_weight, int | float)
        or not (math.isfinite(reg_weight) and reg_weight >= 0)
    ):
        raise ValueError(f"EProp: reg_weight must be a number >= 0, got {reg_weight!r}")
    if reg_weight is not None and reg_rate is None:
        raise ValueError("EProp: reg_weight needs reg_rate= (the target rate in Hz)")


class EProp:
    r"""e-prop (Bellec et al. 2020, doi:10.1038/s41467-020-17236-y): online gradients of a
    recurrent spiking network from eligibility traces and a broadcast learning signal.

    See the module docstring for the equations. The trainer computes the gradients of
    the loss

    .. math::

        E = \frac{1}{D} \sum_{b,t} m_b(t)\,\ell_b(t)
            + \lambda \sum_j \big(f_j - f^*\big)^2

    with :math:`\ell = \tfrac12 \lVert y - y^* \rVert^2` (regression) or the cross-entropy
    of :math:`\mathrm{softmax}(y)` (classification), the loss mask :math:`m` (1 where no
    mask is given), :math:`D = \sum_{b,t} m_b(t)` (``reduction="mean"``) or
    :math:`D = 1` (``"sum"``), and the optional firing-rate regulariser of Bellec et al.'s
    reference implementation: :math:`f_j = \sum_{b,t} z_j / (B\,T\,dt)`, the mean rate of
    unit :math:`j` over the batch and all steps in spikes per time unit of ``dt``, and
    :math:`f^*` = ``reg_rate`` (Hz) times ``time_unit`` (seconds per unit of ``dt``; the
    default 1e-3 means ``dt`` in ms, so rates enter in spikes/ms, as in the reference
    code, where ``reg_weight=1`` is their coefficient for the evidence task). Its exact
    gradient is

    .. math::

        \frac{dE_{reg}}{dW_{ji}} = \frac{2 \lambda (f_j - f^*)}{B\,T\,dt}
            \sum_{b,t} e_{ji}(t)

    (the unfiltered trace; :math:`\sum_t e(t) = (1-\kappa) \sum_t \bar e(t) + \kappa \bar
    e(T)`, so it comes at almost no cost from the same traces). It is a learning signal
    :math:`2\lambda(f_j - f^*)/(B T dt)` constant over the trial, known at its end.

    Parameters
    ----------
    feedback : {"symmetric", "random", "adaptive"}
        The feedback matrix :math:`B` (``(N, K)``): ``"symmetric"`` uses the current
        readout weights :math:`W_{out}^\top` (the exact gradient of the detached network);
        ``"random"`` a fixed matrix with entries :math:`\mathcal N(0, 1/N)` drawn from
        ``seed``; ``"adaptive"`` starts from the same random matrix and after every
        optimiser step adds the change of :math:`W_{out}^\top` (the readout's own update),
        Bellec et al.'s adaptive e-prop, with the weight decay ``feedback_decay`` of both.
    task : {"regression", "classification"}
        Regression targets are ``(B, T, K)`` values; classification targets ``(B, T)``
        class indices (the readout's ``K`` outputs are logits).
    optimizer : str, optimizer class or instance
        As for :class:`BPTT` (``"adam"``, ``"sgd"``, ...); built over the parameters e-prop
        trains.
    lr : float, optional
        Learning rate; default 1e-3. An optimizer instance keeps its own: ``lr`` must then
        be left out or equal the rate of every one of its param_groups (it is refused
        otherwise). :meth:`set_lr` changes it later.
    reg_rate : float, optional
        Target firing rate :math:`f^*` in Hz; ``None`` disables the regulariser.
    reg_weight : float
        :math:`\lambda` (default 1.0 when ``reg_rate`` is given).
    seed : int, optional
        Seed of the random feedback matrix of ``"random"`` and ``"adaptive"`` feedback
        (default 0). Symmetric feedback draws nothing: a seed with it is refused.
    feedback_decay : float
        :math:`\lambda \ge 0` (default 0), for ``"adaptive"`` feedback only: the weight
        decay of adaptive e-prop, on the readout weights and the feedback matrix alike.
        After the optimiser turns :math:`W_{out}` into :math:`W_{out}'`,

        .. math::

            W_{out} \leftarrow W_{out}' - \eta\lambda W_{out}, \qquad
            B \leftarrow (1 - \eta\lambda) B + (W_{out}' - W_{out})^\top,

        with :math:`\eta` the learning rate of the readout weights' parameter group at
        that update (refused when the optimiser does not train them). Then
        :math:`B - W_{out}^\top` shrinks by the factor :math:`1 - \eta\lambda` at every
        update, whatever the gradients: the feedback comes to equal the readout's
        transpose (Kolen & Pollack 1994, "Backpropagation without weight transport",
        doi:10.1109/ICNN.1994.374486). An optimiser's own ``weight_decay`` acts on
        :math:`W_{out}'` only, and :math:`B` follows that change as any other.
    reduction : {"mean", "sum"}
        :math:`D` above.
    time_unit : float
        Seconds per unit of ``dt`` (converts ``reg_rate`` from Hz); default 1e-3 (ms).
    optimizer_kwargs : dict, optional
        Passed to the optimiser.
    method : {"auto", "reverse", "traces"}
        How the gradients of a call are computed; both give the same sums (to rounding):
        ``"reverse"`` records the trial (presynaptic values, :math:`\psi`, spikes) in the
        time loop and runs one scan back over ``(T, B, N)`` with GEMMs
        (:func:`_reverse_gradients`), memory :func:`history_bytes`, growing with
        :math:`T`; ``"traces"`` carries the eligibility traces forward in the loop,
        ``(N, B, P)`` of memory whatever :math:`T`, several times slower (a product over
        ``(N, B, P)`` every step). ``"auto"`` (default) takes the reverse scan unless its
        history exceeds ``history_limit``; :meth:`method_for` says which a call takes and
        why, ``method_used`` which the last call took.
    history_limit : int, optional
        Bytes of recorded history ``"auto"`` allows the reverse scan (default
        :math:`2^{30}`, 1 GiB; refused with another method, which it would not change).
        The history of a call is kept for the next call of the
        same shapes (the buffers are rewritten; reusing them spares the first touch of
        every page); :meth:`release` frees it.

    Attributes
    ----------
    feedback_weights : Tensor or None
        :math:`B`, ``(N, K)`` (for ``"symmetric"`` the readout's transpose at the last call).
    losses : list of float
        The loss of every update.
    rates : Tensor or None
        Mean firing rate (Hz) of each unit in the last trial batch.
    method, history_limit : str, int or None
        The settings above (``history_limit`` is ``None`` with a given method; set to
        ``"auto"`` later, the trainer takes the default limit).
    method_used : str or None
        The formulation of the last call, ``"reverse"`` or ``"traces"`` (:meth:`method_for`
        says why).

    Notes
    -----
    Each call runs trials from the network's initial state (``init_state``); batch elements
    are independent trials and their gradients add up (or average, with ``"mean"``).
    """

    def __init__(
        self,
        feedback: str = "symmetric",
        task: str = "regression",
        optimizer: Any = "adam",
        lr: float | None = None,
        reg_rate: float | None = None,
        reg_weight: float | None = None,
        seed: int | None = None,
        reduction: str = "mean",
        time_unit: float = 1e-3,
        optimizer_kwargs: dict[str, Any] | None = None,
        method: str = "auto",
        history_limit: int | None = None,
        feedback_decay: float = 0.0,
    ) -> None:
        history_limit = _check_method(method, history_limit)
        if feedback not in FEEDBACK_MODES:
            raise ValueError(
                f"EProp: unknown feedback {feedback!r}; valid modes are {list(FEEDBACK_MODES)}"
            )
        feedback_decay = _check_feedback_decay(feedback, feedback_decay)
        if task not in TASKS:
            raise ValueError(f"EProp: unknown task {task!r}; valid tasks are {list(TASKS)}")
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"EProp: unknown reduction {reduction!r}; valid ones are {list(_REDUCTIONS)}"
            )
        if lr is not None:
            if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not lr > 0:
                raise ValueError(f"EProp: lr must be > 0, got {lr!r}")
            if not math.isfinite(lr):
                raise ValueError(f"EProp: lr must be finite, got {lr!r}")
            lr = float(lr)
        optimizer_kwargs = check_optimizer("EProp", optimizer, lr, optimizer_kwargs)
        _check_regulariser(reg_rate, reg_weight)
        if not (
            isinstance(time_unit, numbers.Real)
            and not isinstance(time_unit, bool)
            and 0 < time_unit < math.inf
        ):
            raise ValueError(
                f"EProp: time_unit must be > 0 and finite (seconds), got {time_unit!r}"
            )
        if seed is not None:
            seed = as_int("EProp", "seed", seed)
            if feedback == "symmetric":
                raise ValueError(
                    f"EProp: seed={seed} has no effect with feedback='symmetric', whose "
                    "feedback matrix is the readout's transpose (nothing is drawn); leave "
                    "seed out, or pass feedback='random' or 'adaptive'"
                )
        lr = resolve_lr("EProp", optimizer, lr)
        self.feedback = feedback
        self.task = task
        self.optimizer_spec = optimizer
        #: the learning rate (``None``: an optimizer instance whose groups differ)
        self.lr = lr
        self.reg_rate = None if reg_rate is None else float(reg_rate)
        self.reg_weight = (
            0.0 if reg_rate is None else float(1.0 if reg_weight is None else reg_weight)
        )
        self.seed = seed
        self.feedback_decay = feedback_decay
        self.reduction = reduction
        self.time_unit = float(time_unit)
        self.optimizer_kwargs = optimizer_kwargs
        self.optimizer: torch.optim.Optimizer | None = None
        self.feedback_weights: Tensor | None = None
        self.losses: list[float] = []
        self.rates: Tensor | None = None
        self.method = method
        self.history_limit = history_limit
        #: the formulation of the last call (see :meth:`method_for`)
        self.method_used: str | None = None
        self._kept: _History | None = None  # the reverse scan's history, reused

    # ------------------------------------------------------------------------------
    # the network e-prop trains
    # ------------------------------------------------------------------------------

    @staticmethod
    def _model(where: str, model_or_net: Any) -> Any:
        # by the executor API (the trainers sit below the network package)
        if isinstance(model_or_net, torch.nn.Module) and hasattr(model_or_net, "execute"):
            return model_or_net  # a CompiledNetwork
        if hasattr(model_or_net, "graph") and callable(getattr(model_or_net, "compile", None)):
            return model_or_net.compile()  # a Network
        raise TypeError(
            f"{where}: expected a Network or a CompiledNetwork, got {type(model_or_net).__name__}"
        )

    def check_network(self, where: str, model: Any) -> _Plan:
        """What e-prop trains in ``model``, after checking that it is a network e-prop
        trains (see the module docstring)."""
        out, out_node, oe = _readout_edge(where, model)
        rec, node = _check_population(where, model, out, out_node, oe)
        adaptive = node.adaptation is not None
        plan = _Plan(rec, node, adaptive, out, out_node, oe.key, oe.module)
        allowed = _add_edges_into(where, model, plan)
        _check_trainable(where, model, rec, oe, allowed)
        return plan

    def _feedback(self, plan: _Plan) -> Tensor:
        """:math:`B`, ``(N, K)``."""
        w_out = plan.out_lin.effective_weight().detach()  # (K, N)
        if self.feedback == "symmetric":
            self.feedback_weights = w_out.T.clone()
            return self.feedback_weights
        shape = (w_out.shape[1], w_out.shape[0])
        if self.feedback_weights is None:
            gen = torch.Generator().manual_seed(0 if self.seed is None else int(self.seed))
            b = torch.randn(shape, generator=gen, dtype=torch.float64) / math.sqrt(shape[0])
            self.feedback_weights = b.to(device=w_out.device, dtype=w_out.dtype)
        elif tuple(self.feedback_weights.shape) != shape:
            raise ValueError(
                f"EProp: the feedback matrix has shape {tuple(self.feedback_weights.shape)}, "
                f"the network needs {shape} (N, K); use a new EProp for another network"
            )
        return self.feedback_weights

    # ------------------------------------------------------------------------------
    # data
    # ------------------------------------------------------------------------------

    def prepare(
        self, where: str, model: Any, inputs: Any, targets: Any, loss_mask: Any
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """The inputs, targets and loss mask of a call, checked and converted (errors
        named after ``where``) before anything runs."""
        x, _ = model.as_input(where, inputs)
        batch, n_steps = x.shape[0], x.shape[1]
        k = model.nodes[model.output_node].n
        dev, dtype = x.device, x.dtype
        t = as_tensor(where, "targets", targets, copy=False)
        if self.task == "classification":
            if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
                raise TypeError(
                    f"{where}: classification targets must be integer class indices, "
                    f"got dtype {t.dtype}"
                )
            if t.dim() == 1:
                t = t.unsqueeze(0)
            if t.dim() != 2 or tuple(t.shape) != (batch, n_steps):
                raise ValueError(
                    f"{where}: classification targets must be (T,) or (B, T) class indices "
                    f"matching the inputs' (B, T) = {(batch, n_steps)}, got {tuple(t.shape)}"
                )
            t = t.to(device=dev, dtype=torch.int64)
            if k < 2 or bool(((t < 0) | (t >= k)).any()):
                raise ValueError(
                    f"{where}: class indices must lie in [0, {k}) (the readout has {k} "
                    "outputs, at least 2)"
                )
        else:
            if t.is_complex() or t.dtype == torch.bool:
                raise TypeError(f"{where}: targets must be real numbers, got dtype {t.dtype}")
            if t.dim() == 1 and k == 1:
                t = t.unsqueeze(-1)
            if t.dim() == 2 and batch == 1 and t.shape[0] == n_steps:
                t = t.unsqueeze(0)
            if t.dim() != 3 or tuple(t.shape) != (batch, n_steps, k):
                raise ValueError(
                    f"{where}: regression targets must be (T, K) or (B, T, K) with (B, T) = "
                    f"{(batch, n_steps)} and K = {k} (the readout's outputs), "
                    f"got {tuple(t.shape)}"
                )
            # the targets keep their dtype (``_run`` converts a block of steps at a time);
            # their values in the network's dtype must be finite
            t = t.to(device=dev)
            if not all_finite(t, dtype):
                raise ValueError(f"{where}: targets contain NaN or inf values")
        m = None
        if loss_mask is not None:
            m = as_tensor(where, "loss_mask", loss_mask, copy=False)
            if m.dim() == 1:
                m = m.unsqueeze(0).expand(batch, -1)
            if tuple(m.shape) != (batch, n_steps):
                raise ValueError(
                    f"{where}: loss_mask must be (T,) or (B, T) = {(batch, n_steps)}, "
                    f"got {tuple(m.shape)}"
                )
            m = m.to(device=dev, dtype=dtype)
            if not bool(torch.isfinite(m).all()) or bool((m < 0).any()):
                raise ValueError(f"{where}: loss_mask must be finite and >= 0")
            if not bool((m > 0).any()):
                raise ValueError(f"{where}: loss_mask selects no step")
        return x, t, m

    # ------------------------------------------------------------------------------
    # the gradients
    # ------------------------------------------------------------------------------

    def _mode(self, plan: _Plan, pop: _Population, state0: dict[str, Tensor], dt: float) -> _Mode:
        """The branches that the steps of this run take."""
        node = plan.node
        hold_steps = refractory_steps(node.refractory, dt)  # Brian2 truncation, as the node
        hold = bool((hold_steps > 0).any()) or bool((state0[f"{plan.rec}.ref"] > 0).any())
        value_reset = node.reset_mode == "value"
        uniform_alpha = bool((pop.alpha == pop.alpha[0]).all())
        return _Mode(
            alif=plan.alif,
            hold=hold,
            value_reset=value_reset,
            per_post=hold or value_reset or not uniform_alpha,  # eps_v differs between posts
            adaptive=plan.alif and bool((pop.beta != 0).any()),
            reg=self.reg_rate is not None and self.reg_weight > 0,
            classify=self.task == "classification",
            traces=plan.n_pre > 0,
        )

    def _data_loss(
        self,
        y: Tensor,
        tgt: Tensor,
        mask: Tensor | None,
        classify: bool,
        batch: int,
        n_steps: int,
        dtype: torch.dtype,
    ) -> tuple[float, float]:
        r"""The loss :math:`\frac{1}{D} \sum_{b,t} m_b(t)\,\ell_b(t)` of the outputs ``y``,
        and :math:`1/D`."""
        if classify:
            per = -torch.log_softmax(y, dim=-1).gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
        else:
            per = 0.5 * (y - tgt.to(dtype)).square().sum(-1)  # (B, T)
        if mask is not None:
            per = per * mask
        denom = float(mask.sum()) if mask is not None else float(batch * n_steps)
        scale = 1.0 / denom if self.reduction == "mean" else 1.0
        return float(per.sum()) * scale, scale

    def _rate_signal(self, rates: Tensor, norm: float) -> tuple[Tensor | float, float]:
        r"""The rate regulariser's learning signal, constant over the trial,
        :math:`r_j = 2 \lambda (f_j - f^*) / (B T dt)` (``norm`` :math:`= B T dt`), ``(N,)``
        (0.0 without the regulariser), and its loss :math:`\lambda \sum_j (f_j - f^*)^2`."""
        if self.reg_rate is None or self.reg_weight <= 0:
            return 0.0, 0.0
        f_star = self.reg_rate * self.time_unit
        coef = 2.0 * self.reg_weight * (rates - f_star) / norm
        return coef, self.reg_weight * float((rates - f_star).square().sum())

    def release(self) -> None:
        """Free the history the reverse scan keeps for the next call of the same shapes."""
        self._kept = None

    def method_for(self, model_or_net: Any, batch_size: int, n_steps: int) -> tuple[str, str]:
        """The formulation that a call with ``batch_size`` trials of ``n_steps`` steps
        takes on ``model_or_net`` (``"reverse"`` or ``"traces"``) and why, in words: the
        given ``method``, or with ``"auto"`` the reverse scan unless its history would
        exceed ``history_limit`` (see :func:`history_bytes`)."""
        where = "EProp.method_for"
        model = self._model(where, model_or_net)
        batch = as_int(where, "batch_size", batch_size, minimum=1, type_error=ValueError)
        steps = as_int(where, "n_steps", n_steps, minimum=1, type_error=ValueError)
        plan = self.check_network(where, model)
        with torch.no_grad():
            state0 = model.init_state(batch)
            ref = state0[f"{plan.rec}.v"]
            dtype = ref.dtype
            pop = _population(where, plan, model.dt, ref.device, dtype)
            mode = self._mode(plan, pop, state0, model.dt)
        return self._method(plan, mode, batch, steps, dtype)

    def _method(
        self, plan: _Plan, mode: _Mode, batch: int, n_steps: int, dtype: torch.dtype
    ) -> tuple[str, str]:
        itemsize = torch.empty((), dtype=dtype).element_size()
        k_out = plan.out_node.n
        width, traces = _columns(plan).width, mode.traces
        need = history_bytes(plan.node.n, width, k_out, batch, n_steps, itemsize, mode.hold, traces)
        mib = f"{need / 2**20:.1f} MiB of history"
        if self.method == "traces":
            return "traces", f"forward traces: method='traces' (the reverse scan would hold {mib})"
        if self.method == "reverse":
            return "reverse", f"reverse scan: method='reverse' ({mib})"
        cap = HISTORY_LIMIT if self.history_limit is None else self.history_limit
        limit = f"history_limit {cap / 2**20:.1f} MiB"
        if need <= cap:
            return "reverse", f"reverse scan: {mib} <= {limit}"
        return "traces", f"forward traces: the reverse scan would hold {mib} > {limit}"

    def _run(
        self, where: str, model: Any, inputs: Any, targets: Any, loss_mask: Any
    ) -> tuple[dict[str, Tensor], float]:
        """The e-prop gradients of one batch of trials by parameter name, and its loss."""
        plan = self.check_network(where, model)
        x, tgt, mask = self.prepare(where, model, inputs, targets, loss_mask)
        batch, n_steps = x.shape[0], x.shape[1]
        dev, dtype = x.device, x.dtype
        dt = model.dt

        with torch.no_grad():
            pop = _population(where, plan, dt, dev, dtype)
            B_fb = self._feedback(plan)  # (N, K)
            Bt = B_fb.T.contiguous()  # (K, N)
            state0 = model.init_state(batch)
            mode = self._mode(plan, pop, state0, dt)
            method = self._method(plan, mode, batch, n_steps, dtype)[0]
            kept, self._kept = [self._kept], None  # dropped where a call takes the traces
            rd = _hook_reads(plan, mode)
            if method == "reverse":
                cols = _columns(plan, rd.names)
                hist = _history(plan, mode, state0, n_steps, dtype, cols, kept)
                hook = _history_hook(pop, mode, hist, rd, cols, state0, plan.rec)
            else:
                kept.clear()
                blocks = _TargetBlocks(tgt, mask, n_steps, plan.out_node.n, dtype, mode.classify)
                tr = _traces(plan, pop, mode, batch, dev, dtype)
                hook = _trace_hook(pop, mode, tr, rd, blocks, Bt, state0, plan.rec)

        y = _run_hooked(where, model, x, state0, plan, rd, hook)
        if method == "reverse":
            self._kept = hist  # for the next call of the same shapes

        with torch.no_grad():
            loss, scale = self._data_loss(y, tgt, mask, mode.classify, batch, n_steps, dtype)
            count = hist.z.sum((0, 1)) if method == "reverse" else tr.count
            rates = count / (batch * n_steps * dt)  # (N,) spikes per unit of dt
            signal, reg_loss = self._rate_signal(rates, batch * n_steps * dt)
            loss += reg_loss
            if method == "reverse":
                err = _errors(y, tgt, mask, mode.classify, dtype)
                g_pre, g_out, g_bias = _reverse_gradients(
                    pop, mode, hist, cols, err, Bt, signal, scale, plan.n_pre
                )
                del hist
            else:
                g_pre = tr.G[:, 0, :] * scale  # (N, P)
                if mode.reg:  # sum_t e(t) = (1 - kappa) sum_t ebar(t) + kappa ebar(T)
                    sum_e = (1.0 - pop.kappa) * tr.G[:, 1, :] + pop.kappa * tr.ebar.sum(1)
                    g_pre = g_pre + signal[:, None] * sum_e
                g_out, g_bias = tr.g_out, tr.g_bias
            self.rates = rates / self.time_unit
            grads = _gradients(plan, g_pre, g_out, g_bias, scale)
        self.method_used = method
        return grads, loss

    def compute_gradients(
        self, model_or_net: Any, inputs: Any, targets: Any, loss_mask: Any = None
    ) -> dict[str, Tensor]:
        """The e-prop gradients of one batch of trials, without applying them.

        Parameters
        ----------
        model_or_net : Network or CompiledNetwork
            The network (see the module docstring for what it must contain).
        inputs : tensor or array
            ``(T, C)`` or ``(B, T, C)``.
        targets : tensor or array
            ``(T, K)`` / ``(B, T, K)`` values (regression) or ``(T,)`` / ``(B, T)`` class
            indices (classification).
        loss_mask : tensor or array, optional
            ``(T,)`` or ``(B, T)``: 1 (or a weight >= 0) where a step counts in the loss,
            0 where it does not (e.g. only the recall window of a task).

        Returns
        -------
        dict of str -> Tensor
            Gradients keyed by the compiled network's ``named_parameters()`` names (e.g.
            ``"edges.in->rec.weight"``), shaped like the parameters. The network's held
            state is left as it was.
        """
        where = "EProp.compute_gradients"
        model = self._model(where, model_or_net)
        return self._run(where, model, inputs, targets, loss_mask)[0]

    def accumulate(
        self, model_or_net: Any, inputs: Any, targets: Any, loss_mask: Any = None
    ) -> float:
        """Add the e-prop gradients of one batch to the parameters' ``.grad``; return the
        loss. Apply them with any torch optimiser (or :meth:`step`)."""
        where = "EProp.accumulate"
        model = self._model(where, model_or_net)
        grads, loss = self._run(where, model, inputs, targets, loss_mask)
        params = dict(model.named_parameters())
        for name, g in grads.items():
            p = params[name]
            if p.grad is None:
                p.grad = g.detach().clone()
            else:
                p.grad.add_(g)
        return loss

    def _params(self, model: Any) -> list[nn.Parameter]:
        plan = self.check_network("EProp.step", model)
        names = {_param_name(ie.key, "weight") for ie in plan.edges if ie.weight}
        names |= {_param_name(ie.key, "bias") for ie in plan.edges if ie.bias}
        for what in ("weight", "bias"):
            t = getattr(plan.out_lin, what)
            if isinstance(t, nn.Parameter) and t.requires_grad:
                names.add(_param_name(plan.out_key, what))
        return [p for n, p in model.named_parameters() if n in names]

    def step(self, model_or_net: Any, inputs: Any, targets: Any, loss_mask: Any = None) -> float:
        """One update from one batch of trials: gradients into ``.grad``, an optimiser step,
        and for ``feedback="adaptive"`` the same change applied to :math:`B`. Returns the
        loss before the update."""
        where = "EProp.step"
        model = self._model(where, model_or_net)
        plan = self.check_network(where, model)
        opt = self.optimizer
        if opt is None:
            opt = build_optimizer(self, self._params(model))
        eta = self._readout_lr(where, plan, opt)  # checked before anything changes
        self.optimizer = opt
        opt.zero_grad(set_to_none=True)
        loss = self.accumulate(model, inputs, targets, loss_mask)
        before = plan.out_lin.effective_weight().detach().clone()
        w0 = plan.out_lin.weight.detach().clone() if eta else None
        opt.step()
        if self.feedback == "adaptive":
            change = plan.out_lin.effective_weight().detach() - before
            if w0 is not None:  # the decay of W_out and B alike (feedback_decay)
                with torch.no_grad():
                    plan.out_lin.weight.sub_(eta * self.feedback_decay * w0)
                self.feedback_weights.mul_(1.0 - eta * self.feedback_decay)
            self.feedback_weights.add_(change.T)
        opt.zero_grad(set_to_none=True)
        self.losses.append(loss)
        return loss

    def _readout_lr(self, where: str, plan: _Plan, opt: torch.optim.Optimizer) -> float:
        """The learning rate of the readout weights' parameter group, which
        ``feedback_decay`` scales (0.0 without the decay); refused when the optimiser does
        not train the readout weights."""
        if not (self.feedback == "adaptive" and self.feedback_decay):
            return 0.0
        weight = plan.out_lin.weight
        for group in opt.param_groups:
            if any(p is weight for p in group["params"]):
                eta = float(group["lr"])
                if not eta * self.feedback_decay < 1.0:
                    raise ValueError(
                        f"{where}: lr * feedback_decay = {eta} * {self.feedback_decay} must be "
                        "< 1 (the decay would change the sign of the weights)"
                    )
                return eta
        raise ValueError(
            f"{where}: feedback_decay={self.feedback_decay} scales the feedback matrix by "
            "the readout's learning rate, but the optimiser does not train the readout "
            f"weights of {plan.out_key!r} (give that edge train='gd', or feedback_decay=0)"
        )

    def fit(
        self,
        model_or_net: Any,
        data: Iterable[tuple[Any, Any] | tuple[Any, Any, Any]],
        epochs: int = 1,
        progress: bool = False,
    ) -> list[float]:
        """Train on ``(inputs, targets)`` or ``(inputs, targets, loss_mask)`` batches, one
        update per batch, for ``epochs`` passes; returns the loss of every update.

        ``data`` is any iterable of batches. A list (or another collection) is read again
        for every epoch; an iterator, such as a generator that draws fresh trials, is read
        one batch at a time, each batch made only when its update comes (so a long stream
        of trials never needs to be held in memory), with ``epochs=1`` (it cannot be read
        twice: more epochs are refused). Each update is applied before the next batch is
        read: an error in a batch leaves the updates before it in place."""
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"EProp.fit: epochs must be an int >= 1, got {epochs!r}")
        if iter(data) is data and epochs > 1:
            raise ValueError(
                f"EProp.fit: data is an iterator (read once), so epochs={epochs} cannot be "
                "honoured; pass a list of batches, or epochs=1 with a stream of fresh trials"
            )
        bar = None
        if progress:
            from tqdm.auto import tqdm

            total = len(data) * epochs if hasattr(data, "__len__") else None
            bar = tqdm(total=total, unit="update")
        losses = []
        try:
            for _ in range(epochs):
                for item in data:
                    if len(item) not in (2, 3):
                        raise ValueError(
                            "EProp.fit: each batch must be (inputs, targets) or "
                            "(inputs, targets, loss_mask)"
                        )
                    x, y = item[0], item[1]
                    m = item[2] if len(item) == 3 else None
                    losses.append(self.step(model_or_net, x, y, m))
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{losses[-1]:.3g}")
        finally:
            if bar is not None:
                bar.close()
        return losses

    def set_lr(self, lr: float) -> None:
        """Set the learning rate from the next update on: the trainer's ``lr`` and that of
        every param_group of its optimiser (an optimizer instance's too, and one built
        later starts with it)."""
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not lr > 0:
            raise ValueError(f"EProp.set_lr: lr must be > 0, got {lr!r}")
        if not math.isfinite(lr):
            raise ValueError(f"EProp.set_lr: lr must be finite, got {lr!r}")
        self.lr = float(lr)
        set_optimizer_lr(optimizer_of(self), self.lr)

    def __repr__(self) -> str:
        reg = (
            ""
            if self.reg_rate is None
            else f", reg_rate={self.reg_rate:g}, reg_weight={self.reg_weight:g}"
        )
        method = "" if self.method == "auto" else f", method={self.method!r}"
        decay = f", feedback_decay={self.feedback_decay:g}" if self.feedback_decay else ""
        return (
            f"EProp(feedback={self.feedback!r}{decay}, task={self.task!r}, "
            f"optimizer={optimizer_label(self.optimizer_spec)}, lr={lr_label(self.lr)}{reg}"
            f"{method})"
        )
