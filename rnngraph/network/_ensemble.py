r"""E echo-state networks with their own hyperparameters, run as one batched pass.

A hyperparameter search over reservoirs runs many networks of one structure on one series.
:class:`ReservoirEnsemble` runs them together: the members drawn from one seed share one
sparse matrix up to a factor, so they are rows of one batched loop (on the CPU the native
loop, each nonzero read once per block of rows, see ``rnngraph._native``, the rows of all
seeds split over threads; on other devices, or without native code, a torch loop with one
sparse product per seed and step), and every member's ridge readout is fitted from its own
streamed statistics in the same pass.
"""

from __future__ import annotations

import functools
import math
import numbers
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .. import _native
from .._checks import as_device, as_int, as_tensor, describe, quiet_csr
from ..edges import bias_weights, input_weights, recurrent_weights, spectral_radius
from ..training import Ridge
from ._network import Network

__all__ = ["ReservoirEnsemble"]

#: the hyperparameters a member may have of its own
PER_MEMBER = ("sr", "lr", "input_scaling", "bias_scaling", "seed")
#: rows of one loop in a thread: one block of the native loop's batched product
_PIECE = {torch.float64: 8, torch.float32: 16}
#: elements of the states of one chunk of a loop (64 MiB in float64: 2000 steps of 8 rows
#: of 500 units), so that a fit's statistics are mostly taken in one call; the torch loop
#: (all of a seed's members in one piece) takes chunks of up to 8 times that
_CHUNK_ELEMENTS = 1 << 23


@dataclass(frozen=True)
class _Draw:
    """One seed's weights before scaling, float64: W (CSR) and its spectral radius, the
    input weights and the bias (``None`` without one)."""

    w: Tensor
    rho: float
    w_in: Tensor
    b: Tensor | None


@functools.lru_cache(maxsize=8)
def _draw(n: int, n_in: int, seed: int, rc: float, ic: float, bc: float | None, dist: str):
    """The weights of ``seed`` drawn as ``rg.input_weights``, ``rg.recurrent_weights`` and
    ``rg.bias_weights`` draw them from one generator, in that order, unscaled (cached: a
    search over a few seeds draws each once; the last 8 are kept)."""
    gen = torch.Generator().manual_seed(seed)
    w_in = input_weights(n, n_in, connectivity=ic, seed=gen, dtype=torch.float64)
    w = recurrent_weights(
        n, None, connectivity=rc, distribution=dist, seed=gen, dtype=torch.float64
    )
    rho = spectral_radius(w)
    if rho == 0.0:
        raise ValueError(
            f"ReservoirEnsemble: the weights of seed {seed} have spectral radius 0 (n={n}, "
            f"connectivity={rc}); raise connectivity or units"
        )
    b = None if bc is None else bias_weights(n, connectivity=bc, seed=gen, dtype=torch.float64)
    return _Draw(quiet_csr(w.to_sparse_csr), rho, w_in, b)


def _values(name: str, value: Any, E: int) -> list:
    """A hyperparameter as one value per member (a scalar repeated)."""
    values = list(value) if isinstance(value, Sequence | np.ndarray | Tensor) else [value]
    values = [v.item() if isinstance(v, np.generic | Tensor) else v for v in values]
    if len(values) not in (1, E):
        raise ValueError(
            f"ReservoirEnsemble: {name} has {len(values)} values, the ensemble {E} members "
            "(give a scalar or one value per member)"
        )
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(f"ReservoirEnsemble: {name} must be finite numbers, got {v!r}")
    return values * E if len(values) == 1 else values


def _size(kw: dict) -> int:
    lengths = {
        len(v) for v in kw.values() if isinstance(v, Sequence | np.ndarray | Tensor) and len(v) > 1
    }
    if len(lengths) > 1:
        raise ValueError(
            f"ReservoirEnsemble: the hyperparameters have different numbers of values "
            f"{sorted(lengths)}; give each one value or one per member"
        )
    return lengths.pop() if lengths else 1


class ReservoirEnsemble:
    r"""E echo-state networks of one structure with their own hyperparameters, run on one
    input series as one batched native pass, each with its own ridge readout.

    Member :math:`e` is the network ``in -> res -> readout`` with

    .. math::
        x_e(t) = (1 - \lambda_e)\,x_e(t-1) + \lambda_e \tanh\big(W_e x_e(t-1)
                 + W_{in,e}\,u(t) + b_e\big), \qquad y_e(t) = W_{out,e}\,x_e(t) + c_e,

    :math:`W_e = (\rho_e / \rho(W_s)) W_s`, :math:`W_{in,e} = \sigma_e V_s`, :math:`b_e =
    \beta_e B_s`, where :math:`W_s, V_s, B_s` are drawn from the member's seed :math:`s`
    exactly as ``rg.input_weights(units, n_in, connectivity=input_connectivity,
    scaling=input_scaling, seed=g)``, ``rg.recurrent_weights(units, sr,
    connectivity=connectivity, distribution=distribution, seed=g)`` and
    ``rg.bias_weights(units, connectivity=bias_connectivity, scaling=bias_scaling, seed=g)``
    draw them from one ``g = torch.Generator().manual_seed(s)``, in that order (the bias
    only when ``bias_connectivity`` is not ``None``). :meth:`network` builds member
    :math:`e` as an ``rg.Network`` with exactly these weights.

    Members that share a seed run as rows of one loop on one CSR matrix, with a gain
    :math:`\rho_e / \rho(W_s)` on their recurrent product: on the CPU the native loop, all
    rows split over torch's threads; on another ``device`` (or where native code is off or
    unavailable) a torch loop, one sparse product per seed and step (:attr:`loop` says
    which, :attr:`loop_why` why not the native one). Sums are taken in another order than
    one network's run, so states agree with :meth:`network`'s to rounding (1e-13 in
    float64).

    Parameters
    ----------
    units : int
        Reservoir units of every member.
    n_in : int
        Input channels.
    sr, lr, input_scaling, bias_scaling : float or sequence of float
        Spectral radius :math:`\rho_e` (default 1.25), leak rate :math:`\lambda_e` in (0, 1]
        (0.3), input scaling :math:`\sigma_e` (1) and bias scaling :math:`\beta_e` (1; only
        with ``bias_connectivity``): a scalar for all members or one value per member.
    seed : int or sequence of int
        Seeds of the members' weights.
    connectivity, input_connectivity : float
        Fractions of nonzero recurrent and input weights.
    bias_connectivity : float or None
        Fraction of units with a bias; ``None`` (default) for no bias (reservoirpy's
        ``Reservoir``).
    distribution : str
        Of the recurrent weights: ``"normal"``, ``"uniform"`` or ``"bernoulli"``.
    dtype : torch.dtype
        ``torch.float64`` (default) or ``torch.float32``.
    device : str or torch.device
        Where the states, readouts and the loop live (default the CPU); :meth:`run`
        returns its predictions there.

    The ensemble holds each member's state (zero at first): :meth:`fit_ridge` and
    :meth:`run` continue from it, as ``model.fit(x_train, y_train).run(x_test)`` does in
    reservoirpy; :meth:`reset` returns to zero.
    """

    def __init__(
        self,
        units: int,
        n_in: int = 1,
        *,
        sr: Any = 1.25,
        lr: Any = 0.3,
        input_scaling: Any = 1.0,
        bias_scaling: Any = None,
        seed: Any = 0,
        connectivity: float = 0.1,
        input_connectivity: float = 0.2,
        bias_connectivity: float | None = None,
        distribution: str = "normal",
        dtype: torch.dtype = torch.float64,
        device: Any = "cpu",
    ) -> None:
        where = "ReservoirEnsemble"
        self.units = as_int(where, "units", units, minimum=1, type_error=ValueError)
        self.n_in = as_int(where, "n_in", n_in, minimum=1, type_error=ValueError)
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"{where}: dtype must be torch.float32 or float64, got {dtype!r}")
        self.device = as_device(where, device)
        if bias_connectivity is None and bias_scaling is not None:
            raise ValueError(
                f"{where}: bias_scaling={bias_scaling!r} without bias_connectivity: the members "
                "have no bias; pass bias_connectivity (e.g. 0.2) to draw one"
            )
        bias_scaling = 1.0 if bias_scaling is None else bias_scaling
        kw = {"sr": sr, "lr": lr, "input_scaling": input_scaling}
        kw |= {"bias_scaling": bias_scaling, "seed": seed}
        E = _size(kw)
        self.params = {k: _values(k, v, E) for k, v in kw.items()}
        self._check_params(where)
        self.dtype, self.size = dtype, E
        self.options = {
            "connectivity": float(connectivity),
            "input_connectivity": float(input_connectivity),
            "bias_connectivity": None if bias_connectivity is None else float(bias_connectivity),
            "distribution": distribution,
        }
        self._draws = {s: self._draw(s) for s in dict.fromkeys(self.params["seed"])}
        self.weight: Tensor | None = None  # (E, K, units) after a fit
        self.bias: Tensor | None = None  # (E, K)
        self.reset()

    def _check_params(self, where: str) -> None:
        p = self.params
        if any(v < 0 for v in p["sr"]):
            raise ValueError(f"{where}: sr must be >= 0, got {p['sr']}")
        if any(not 0 < v <= 1 for v in p["lr"]):
            raise ValueError(f"{where}: lr must lie in (0, 1], got {p['lr']}")
        if any(v != int(v) or v < 0 for v in p["seed"]):
            raise ValueError(f"{where}: seed must be ints >= 0, got {p['seed']}")
        p["seed"] = [int(v) for v in p["seed"]]

    def _draw(self, seed: int) -> _Draw:
        o = self.options
        args = (self.units, self.n_in, seed, o["connectivity"], o["input_connectivity"])
        return _draw(*args, o["bias_connectivity"], o["distribution"])

    @property
    def _at(self) -> dict:
        return {"dtype": self.dtype, "device": self.device}

    def __len__(self) -> int:
        return self.size

    @property
    def loop_why(self) -> str | None:
        """Why a pass does not take the native loop (``None`` when it does): the device,
        native code switched off (``rg.native.set_enabled(False)``) or unavailable."""
        return _native.unavailable(self.dtype, self.device)

    @property
    def loop(self) -> str:
        """The loop a pass takes now: ``"native"`` or ``"torch"`` (see :attr:`loop_why`)."""
        return "native" if self.loop_why is None else "torch"

    def __repr__(self) -> str:
        seeds = len(self._draws)
        return f"ReservoirEnsemble({self.size} members of {self.units} units, {seeds} seeds)"

    def reset(self) -> None:
        """Every member back to the zero state."""
        self.state = torch.zeros(self.size, self.units, dtype=self.dtype, device=self.device)

    # ------------------------------------------------------------------------------------
    # the members' weights
    # ------------------------------------------------------------------------------------

    def _member(self, e: int) -> tuple[Tensor, Tensor, Tensor | float, _Draw]:
        """Member ``e``'s ``(W (dense), W_in, b)`` as ``rg.Network`` weights."""
        p, d = {k: v[e] for k, v in self.params.items()}, self._draws[self.params["seed"][e]]
        at = {"dtype": self.dtype, "device": self.device}
        w = (d.w.to_dense() * (p["sr"] / d.rho)).to(**at)
        w_in = (d.w_in * p["input_scaling"]).to(**at)
        b = 0.0 if d.b is None else (d.b * p["bias_scaling"]).to(**at)
        return w, w_in, b, d

    def network(self, e: int) -> Network:
        """Member ``e`` as an ``rg.Network`` (``in -> res -> readout``, CSR recurrent
        weights), with its fitted readout once :meth:`fit_ridge` ran; it starts from the
        zero state."""
        e = self._index("ReservoirEnsemble.network", e)
        w, w_in, b, _ = self._member(e)
        net = Network(dt=1.0, dtype=self.dtype, device=self.device)
        net.add_func_node("in", self.n_in)
        lr = self.params["lr"][e]
        net.add_diffeq_node("res", "leaky_tanh", n=self.units, lr=lr, bias=b)
        net.add_edge("in", "res", weights=w_in)
        net.add_edge("res", "res", weights=w, feedback=True, sparse=True)
        if self.weight is not None:
            net.add_func_node("readout", self.weight.shape[1])
            net.add_edge("res", "readout", weights=self.weight[e], bias=self.bias[e])
        return net

    def _index(self, where: str, e: Any) -> int:
        integral = isinstance(e, numbers.Integral) and not isinstance(e, bool)
        if not integral or not -self.size <= e < self.size:
            raise IndexError(f"{where}: member {e!r} out of range for {self.size} members")
        return int(e) % self.size

    # ------------------------------------------------------------------------------------
    # the pass
    # ------------------------------------------------------------------------------------

    def _pieces(self, size: int) -> list[dict]:
        """The loops of a pass: per seed, its members in pieces of at most ``size`` rows,
        each with its coefficients (leak rates, biases, gains and input scalings)."""
        out, p = [], self.params
        at = {"dtype": self.dtype, "device": self.device}
        for s, d in self._draws.items():
            members = [e for e in range(self.size) if p["seed"][e] == s]
            for k in range(0, len(members), size):
                rows = members[k : k + size]

                def col(name: str, rows=rows) -> Tensor:
                    return torch.tensor([p[name][e] for e in rows], dtype=torch.float64)

                bias = torch.zeros(len(rows), self.units, dtype=torch.float64)
                if d.b is not None:
                    bias = col("bias_scaling")[:, None] * d.b
                out.append(
                    {
                        "rows": rows,
                        "draw": d,
                        "w": quiet_csr(lambda d=d: d.w.to(**at)),
                        "w_in": d.w_in.to(**at),
                        "gain": (col("sr") / d.rho).to(**at),
                        "lr": col("lr")[:, None].expand(-1, self.units).to(**at),
                        "b": bias.to(**at),
                        "scale": col("input_scaling").to(**at),
                    }
                )
        return out

    def _pass(self, where: str, u: Tensor, each: Any) -> None:
        """Run every member on ``u`` ``(T, n_in)`` from its held state, calling
        ``each(piece, t0, states)`` with the states ``(steps, rows, units)`` of every chunk
        of steps; the held states move on only once all are done."""
        if self.loop == "torch":
            self._torch_pass(u, each)
            return
        pieces = self._pieces(_PIECE[self.dtype])
        finals: list[Tensor | None] = [None] * len(pieces)
        chunk = max(1, _CHUNK_ELEMENTS // (_PIECE[self.dtype] * self.units))

        # the threads take the pieces largest first, each the next one left when it is
        # free: a piece's cost grows with its rows, and a last piece of a seed is smaller
        order = iter(sorted(range(len(pieces)), key=lambda k: -len(pieces[k]["rows"])))
        lock = threading.Lock()

        def work() -> None:
            while True:
                with lock:
                    k = next(order, None)
                if k is None:
                    return
                piece = pieces[k]
                x = self.state[piece["rows"]].contiguous()
                run = _native.ReservoirRun(
                    "esn",
                    where,
                    "res->res",
                    piece["draw"],
                    piece["w"],
                    [piece["lr"], piece["b"]],
                    (x, x.clone()),
                    gain=piece["gain"],
                    threads=1,
                )
                for t0 in range(0, u.shape[0], chunk):
                    uc = u[t0 : t0 + chunk]
                    base = uc @ piece["w_in"].T  # (steps, units)
                    P = (base[:, None, :] * piece["scale"][None, :, None]).contiguous()
                    out = torch.empty(uc.shape[0], len(piece["rows"]), self.units, dtype=self.dtype)
                    each(piece, t0, run.chunk(P, uc.shape[0], out)[0])
                finals[k] = run.state()[0]

        threads = max(1, min(torch.get_num_threads(), len(pieces)))
        _native.in_threads(work, [()] * threads)
        self._hold(pieces, finals)

    def _hold(self, pieces: list[dict], finals: list[Tensor]) -> None:
        new = self.state.clone()
        for piece, x in zip(pieces, finals, strict=True):
            new[piece["rows"]] = x
        self.state = new

    def _torch_pass(self, u: Tensor, each: Any) -> None:
        r""":meth:`_pass` as a torch loop on the ensemble's device: per seed, all its
        members as columns of ``X`` ``(units, rows)``, one sparse product per step,
        :math:`X \leftarrow \mathrm{lerp}(X, \tanh(P + g \odot W X + b), \lambda)` (the
        native loop's update, the same coefficients)."""
        pieces = self._pieces(self.size)
        finals = []
        for piece in pieces:
            rows, w = piece["rows"], piece["w"]
            gain, lr, b = piece["gain"][None, :], piece["lr"].T, piece["b"].T  # (1 | n, rows)
            x = self.state[rows].T.contiguous()  # (units, rows)
            chunk = max(1, 8 * _CHUNK_ELEMENTS // (len(rows) * self.units))
            for t0 in range(0, u.shape[0], chunk):
                uc = u[t0 : t0 + chunk]
                base = uc @ piece["w_in"].T  # (steps, units)
                P = base[:, :, None] * piece["scale"][None, None, :] + b  # (steps, n, rows)
                out = torch.empty(uc.shape[0], len(rows), self.units, **self._at)
                for k in range(uc.shape[0]):
                    drive = torch.addcmul(P[k], gain, torch.sparse.mm(w, x))
                    x = torch.lerp(x, torch.tanh(drive), lr)
                    out[k] = x.T
                each(piece, t0, out)
            finals.append(x.T)
        self._hold(pieces, finals)

    # ------------------------------------------------------------------------------------
    # fitting and running
    # ------------------------------------------------------------------------------------

    def _series(self, where: str, name: str, x: Any, width: int | None = None) -> Tensor:
        t = as_tensor(where, name, x, dtype=self.dtype).to(self.device)
        if t.dim() != 2 or (width is not None and t.shape[1] != width) or t.shape[0] == 0:
            want = f"(T, {width})" if width is not None else "(T, K)"
            raise ValueError(f"{where}: {name} must be a {want} series, got {describe(x)}")
        if name == "inputs" and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{where}: inputs contain NaN or inf values")
        return t

    def fit_ridge(self, inputs: Any, targets: Any, alpha: Any = 1e-8, washout: int = 0):
        r"""Fit every member's readout by ridge regression on one run over ``inputs``.

        Member :math:`e` solves :math:`(C_{xx} + \alpha_e I) W^\top = C_{xy}`, :math:`c =
        \bar y - W \bar x` from its states after the first ``washout`` steps (centred
        statistics, the bias unpenalised, steps with a NaN target left out: the solve of
        ``Network.fit_ridge`` and ``rg.training.Ridge``).

        Parameters
        ----------
        inputs : array ``(T, n_in)``
        targets : array ``(T, K)``
        alpha : float or sequence of float
            Ridge penalty, >= 0: one for all members or one per member.
        washout : int
            Steps left out at the start.

        Returns
        -------
        ReservoirEnsemble
            ``self``; ``weight`` ``(E, K, units)`` and ``bias`` ``(E, K)`` hold the readouts.
        """
        where = "ReservoirEnsemble.fit_ridge"
        u = self._series(where, "inputs", inputs, self.n_in)
        y = self._series(where, "targets", targets).to(torch.float64)
        if y.shape[0] != u.shape[0]:
            raise ValueError(f"{where}: {u.shape[0]} input steps but {y.shape[0]} target steps")
        washout = as_int(where, "washout", washout, minimum=0, type_error=ValueError)
        if washout >= u.shape[0]:
            raise ValueError(f"{where}: washout {washout} leaves none of the {u.shape[0]} steps")
        alphas = _values("alpha", alpha, self.size)
        if any(a < 0 for a in alphas):
            raise ValueError(f"{where}: alpha must be >= 0, got {alphas}")
        ridges = [Ridge(alpha=a) for a in alphas]

        def each(piece: dict, t0: int, states: Tensor) -> None:
            skip = max(0, washout - t0)
            if skip >= states.shape[0]:
                return
            target = y[t0 + skip : t0 + states.shape[0]]
            for j, e in enumerate(piece["rows"]):
                ridges[e].partial_fit(states[skip:, j], target)

        held = self.state
        self._pass(where, u, each)
        solved = []
        for e, r in enumerate(ridges):
            try:
                if r.n_samples == 0:
                    raise ValueError("the targets are NaN at every step after the washout")
                solved.append(r.solve())
            except ValueError as err:
                self.state = held  # nothing changed: the states as they were
                raise ValueError(f"{where}: member {e}: {err}; nothing was fitted") from err
        self.weight = torch.stack([w for w, _ in solved]).to(self.dtype)
        self.bias = torch.stack([b for _, b in solved]).to(self.dtype)
        return self

    def run(self, inputs: Any) -> Tensor:
        """Every member's readout over ``inputs`` ``(T, n_in)``, from the held states:
        ``(E, T, K)``."""
        where = "ReservoirEnsemble.run"
        if self.weight is None:
            raise RuntimeError(f"{where}: no readout yet; call fit_ridge first")
        u = self._series(where, "inputs", inputs, self.n_in)
        out = torch.empty(self.size, u.shape[0], self.weight.shape[1], **self._at)

        def each(piece: dict, t0: int, states: Tensor) -> None:
            rows = piece["rows"]
            y = torch.einsum("trn,rkn->rtk", states, self.weight[rows]) + self.bias[rows, None]
            out[rows, t0 : t0 + states.shape[0]] = y

        self._pass(where, u, each)
        return out
