"""Linear edges: dense, masked or sparse (CSR) weights, optional bias, delay."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .._checks import as_device, as_flag, as_float_dtype, as_int, as_tensor, describe, keywords
from .._checks import check_finite as _check_finite
from ._init import as_generator, quiet_csr

__all__ = ["Linear", "TRAIN_MODES"]

#: Values of ``train=``: ``None`` fixed (buffer), ``"gd"`` gradient descent (``nn.Parameter``),
#: ``"rls"`` fitted online by RLS (a buffer the trainer writes).
TRAIN_MODES = (None, "gd", "rls")


def _is_sparse(w: Any) -> bool:
    if isinstance(w, Tensor):
        return w.layout != torch.strided
    return hasattr(w, "tocsr")  # scipy.sparse


def _to_csr(w: Any, dtype, device) -> Tensor:
    if isinstance(w, Tensor):
        return quiet_csr(lambda: w.detach().to_sparse_csr().to(device=device, dtype=dtype))
    w = w.tocsr()
    return quiet_csr(
        lambda: torch.sparse_csr_tensor(
            torch.as_tensor(w.indptr, dtype=torch.int64),
            torch.as_tensor(w.indices, dtype=torch.int64),
            as_tensor("Linear", "weights", w.data),
            size=w.shape,
            check_invariants=True,
        ).to(device=device, dtype=dtype)
    )


def _copy_csr(w: Tensor) -> Tensor:
    """A copy of a CSR tensor that owns its memory (``copy.deepcopy`` cannot copy one)."""
    return quiet_csr(
        lambda: torch.sparse_csr_tensor(
            w.crow_indices().clone(),
            w.col_indices().clone(),
            w.values().clone(),
            size=w.shape,
            dtype=w.dtype,
            device=w.device,
            check_invariants=False,  # a copy of a tensor that passed them
        )
    )


class Linear(nn.Module):
    r"""A linear edge: :math:`y = (W \odot M)\,x + b`.

    Parameters
    ----------
    n_in, n_out : int
        Widths of the source value and of the target input (any integer >= 1).
    weights : array-like, tensor, sparse tensor or scipy.sparse matrix, optional
        ``(n_out, n_in)`` finite weights. Sparse input (or ``sparse=True``) is stored in CSR
        format. Default: ``U(-1/sqrt(n_in), 1/sqrt(n_in))`` drawn from ``seed``.
    train : {None, "gd", "rls"}
        ``None``: fixed buffer; ``"gd"``: ``nn.Parameter`` trained by gradient descent;
        ``"rls"``: a buffer fitted online by ``rnngraph.training.RLS``.
    mask : array-like, optional
        Fixed ``(n_out, n_in)`` mask of 0s and 1s (or booleans) multiplied into the weights
        (also during training, so masked-out weights stay without effect).
    bias : bool or array-like
        ``True`` adds a zero-initialised ``(n_out,)`` bias; a finite scalar or ``(n_out,)``
        array gives its values.
    sparse : bool
        Store dense ``weights`` as CSR.
    delay : int
        Steps of delay (0: the source's output of the same step).
    source_var, target_var : str, optional
        The source state variable read (default: the source's output) and the target input
        written (default: the target's main input).
    init : float or array-like, optional
        Value the edge reads before its first step when delayed (default zeros), restored
        by ``reset()``; finite, scalar, ``(n_in,)`` or ``(B, n_in)``.
    seed : int or torch.Generator, optional
        Seed for the default initialisation.

    Notes
    -----
    ``delay``, ``source_var``, ``target_var``, ``n_in``, ``n_out``, ``train_mode`` and
    ``sparse`` are read-only: a compiled network is planned on them. To change one, pop the
    edge (``Network.pop_edge``) and add a new one. Copies (``copy.deepcopy``) and pickles
    (``torch.save``) work for every layout, CSR included.

    Shape
    -----
    Input ``(..., n_in)``, output ``(..., n_out)``; ``weight`` is ``(n_out, n_in)``.
    """

    @keywords("Linear")
    def __init__(
        self,
        n_in: int,
        n_out: int,
        weights: Any = None,
        train: str | None = None,
        mask: Any = None,
        bias: bool | Any = False,
        sparse: bool = False,
        delay: int = 0,
        source_var: str | None = None,
        target_var: str | None = None,
        init: Any = None,
        seed: int | torch.Generator | None = None,
        dtype: torch.dtype | None = None,
        device: Any = None,
        where: str = "Linear",
    ) -> None:
        super().__init__()
        dtype = torch.get_default_dtype() if dtype is None else as_float_dtype(where, dtype)
        device = None if device is None else as_device(where, device)
        if not isinstance(train, str | type(None)) or train not in TRAIN_MODES:
            raise ValueError(f"{where}: train must be one of {TRAIN_MODES}, got {train!r}")
        delay = as_int(where, "delay", delay, minimum=0, type_error=ValueError)
        for name, var in (("source_var", source_var), ("target_var", target_var)):
            if not isinstance(var, str | type(None)):
                raise TypeError(f"{where}: {name} must be a name or None, got {describe(var)}")
        sparse = as_flag(where, "sparse", sparse)
        self._n_in = as_int(where, "n_in", n_in, minimum=1)
        self._n_out = as_int(where, "n_out", n_out, minimum=1)
        self._train_mode = train
        self._delay = delay
        self._source_var = source_var
        self._target_var = target_var
        if init is not None and delay == 0:
            raise ValueError(
                f"{where}: init= is the value a delayed edge reads before its source's first "
                "output; this edge has delay 0 and would never read it (give delay= or "
                "feedback=True, or leave init out)"
            )
        if seed is not None and weights is not None:
            raise ValueError(
                f"{where}: seed= draws the default weights; weights are given, so it would "
                "have no effect (leave seed out)"
            )
        opts = {"dtype": dtype, "device": device}
        w = self._make_weight(where, weights, sparse, seed, opts)
        self._sparse = w.layout == torch.sparse_csr
        if self._sparse and train == "gd":
            raise ValueError(
                f"{where}: sparse (CSR) weights cannot be trained by gradient descent; "
                "pass dense weights with a fixed mask= instead"
            )
        if self._sparse and mask is not None:
            raise ValueError(f"{where}: mask= applies to dense weights; sparse weights are masked")
        m = None if mask is None else self._make_mask(where, mask, opts)
        b = self._make_bias(where, bias, opts)
        t = None if init is None else self._make_init(where, init, opts)
        # every check passed: register
        if train == "gd":
            self.weight = nn.Parameter(w)
        else:
            self.register_buffer("weight", w)
        if m is None:
            self.mask = None
        else:
            self.register_buffer("mask", m)
        if b is None:
            self.bias = None
        elif train == "gd":
            self.bias = nn.Parameter(b)
        else:
            self.register_buffer("bias", b)
        if t is None:
            self.init = None
        else:
            self.register_buffer("init", t)
        self._made = True  # from here on the edge has a bias or has none, for good

    def _bias_stays(self, name: str, value: Any) -> None:
        """Refuse adding a bias to an edge made without one, or taking one away: compiled
        networks fold an edge's bias into their generated loops when they are made, so the
        change would be dropped. Its values can change (``edge.bias.data[...] = ...``, or a
        new tensor of the same kind)."""
        if name != "bias" or not self.__dict__.get("_made"):
            return
        if (value is None) != (self.bias is None):
            had = "no bias" if self.bias is None else "a bias"
            raise ValueError(
                f"Linear: this edge was made with {had}, and whether it has one cannot "
                "change afterwards (compiled networks fold it into their loops); set its "
                "values, or make the edge again with bias="
            )

    def __setattr__(self, name: str, value: Any) -> None:
        self._bias_stays(name, value)
        super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        self._bias_stays(name, None)
        super().__delattr__(name)

    def register_parameter(self, name: str, param: Any) -> None:
        self._bias_stays(name, param)
        super().register_parameter(name, param)

    def register_buffer(self, name: str, tensor: Any, persistent: bool = True) -> None:
        self._bias_stays(name, tensor)
        super().register_buffer(name, tensor, persistent)

    def _make_weight(self, where: str, weights: Any, sparse: bool, seed: Any, opts) -> Tensor:
        shape = (self._n_out, self._n_in)
        if weights is None:
            bound = 1.0 / math.sqrt(self._n_in)
            # drawn in float64 on the CPU, like the initialisers of ``_init``, so that a seed
            # gives the same weights whatever the network's dtype and device
            w = torch.empty(shape, dtype=torch.float64)
            w.uniform_(-bound, bound, generator=as_generator(seed, where))
            w = w.to(**opts)
        elif _is_sparse(weights):
            w = _to_csr(weights, **opts)
        else:
            w = as_tensor(where, "weights", weights, **opts)
        if tuple(w.shape) != shape:
            raise ValueError(
                f"{where}: weights must have shape (n_out, n_in) = {shape}, got {tuple(w.shape)}"
            )
        _check_finite(where, "weights", w)
        if sparse and w.layout == torch.strided:
            w = quiet_csr(w.to_sparse_csr)
        return w

    def _make_mask(self, where: str, mask: Any, opts) -> Tensor:
        shape = (self._n_out, self._n_in)
        m = as_tensor(where, "mask", mask)
        if tuple(m.shape) != shape:
            raise ValueError(
                f"{where}: mask must have shape (n_out, n_in) = {shape}, got {tuple(m.shape)}"
            )
        binary = (m == 0) | (m == 1)
        if not bool(binary.all()):
            bad = m[~binary][0].item()
            raise ValueError(
                f"{where}: mask must hold only 0s and 1s (or booleans), got the value {bad!r} "
                f"({int((~binary).sum())} of {m.numel()} entries are neither 0 nor 1)"
            )
        return m.to(**opts)

    def _make_bias(self, where: str, bias: Any, opts) -> Tensor | None:
        boolean = (isinstance(bias, Tensor) and bias.dtype == torch.bool) or (
            isinstance(bias, np.ndarray) and bias.dtype.kind == "b"
        )
        if boolean and bias.ndim == 0:
            bias = bool(bias)  # a 0-d flag is the flag
        elif boolean:
            raise TypeError(
                f"{where}: bias must be True, False or real values (a scalar or "
                f"({self._n_out},)), got a bool array of shape {tuple(bias.shape)}"
            )
        if bias is None or (isinstance(bias, bool | np.bool_) and not bias):
            return None
        b = torch.zeros(self._n_out, **opts)
        if isinstance(bias, bool | np.bool_):
            return b
        bt = as_tensor(where, "bias", bias, dtype=torch.float64)
        if bt.dim() > 1 or (bt.dim() == 1 and bt.shape[0] != self._n_out):
            raise ValueError(
                f"{where}: bias must be a scalar or have shape ({self._n_out},), "
                f"got {tuple(bt.shape)}"
            )
        _check_finite(where, "bias", bt)
        return b + bt.to(**opts)

    def _make_init(self, where: str, init: Any, opts) -> Tensor:
        t = as_tensor(where, "init", init, dtype=torch.float64)
        if t.dim() > 2 or (t.dim() >= 1 and t.shape[-1] != self._n_in):
            raise ValueError(
                f"{where}: init must be a scalar, ({self._n_in},) or (B, {self._n_in}), "
                f"got shape {tuple(t.shape)}"
            )
        _check_finite(where, "init", t)
        return t.to(**opts)

    # read-only: a compiled network's plan depends on these
    n_in = property(lambda self: self._n_in, doc="Width of the source value.")
    n_out = property(lambda self: self._n_out, doc="Width of the target input.")
    delay = property(lambda self: self._delay, doc="Steps of delay.")
    source_var = property(lambda self: self._source_var, doc="Source variable read.")
    target_var = property(lambda self: self._target_var, doc="Target input written.")
    train_mode = property(lambda self: self._train_mode, doc="``None``, ``'gd'`` or ``'rls'``.")
    sparse = property(lambda self: self._sparse, doc="Whether the weights are CSR.")

    _PLANNED = ("n_in", "n_out", "delay", "source_var", "target_var", "train_mode", "sparse")

    def __setstate__(self, state: dict) -> None:
        # edges pickled when these were plain attributes load into the read-only ones
        for name in self._PLANNED:
            if name in state:
                state[f"_{name}"] = state.pop(name)
        super().__setstate__(state)

    def __deepcopy__(self, memo: dict) -> Linear:
        # torch cannot deepcopy a CSR tensor: copy those by hand, the rest as usual
        for t in (*self._parameters.values(), *self._buffers.values()):
            if t is not None and t.layout == torch.sparse_csr and id(t) not in memo:
                memo[id(t)] = _copy_csr(t)
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        new.__setstate__(copy.deepcopy(self.__dict__, memo))
        return new

    def effective_weight(self) -> Tensor:
        """The weights as applied: ``W * mask`` for masked edges, else ``W`` (CSR if sparse)."""
        # read from the module's own tables: ``Module.__getattr__`` costs about 0.5 us, a
        # tenth of a small network's step
        w = self._parameters.get("weight")
        if w is None:
            w = self._buffers.get("weight")
            if w is None:  # a parametrization (torch.nn.utils.parametrize) or an attribute
                w = self.weight
        return w if self.mask is None else w * self.mask

    def project(self, x: Tensor, w: Tensor | None = None, out: Tensor | None = None) -> Tensor:
        """``x @ W.T + b`` for ``x`` of shape ``(..., n_in)``; written into ``out`` (of shape
        ``(..., n_out)``, no autograd) when given and the weights are dense.

        ``w`` replaces the effective weights (``W * mask``) for this call. (``apply`` is
        :meth:`torch.nn.Module.apply`, which calls a function on every submodule.)"""
        w = self.effective_weight() if w is None else w
        if self.sparse:
            lead = x.shape[:-1]
            y = (w @ x.reshape(-1, self.n_in).T).T.reshape(*lead, self.n_out)
            return y if self.bias is None else y + self.bias
        if out is not None:
            torch.matmul(x, w.T, out=out)
            return out if self.bias is None else out.add_(self.bias)
        return torch.nn.functional.linear(x, w, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.project(x)

    def extra_repr(self) -> str:
        parts = [f"n_in={self.n_in}", f"n_out={self.n_out}"]
        if self.delay:
            parts.append(f"delay={self.delay}")
        if self.train_mode:
            parts.append(f"train={self.train_mode!r}")
        if self.sparse:
            parts.append(f"sparse=True, nnz={self.weight._nnz()}")
        if self.mask is not None:
            parts.append("masked")
        if self.bias is not None:
            parts.append("bias=True")
        for name in ("source_var", "target_var"):
            if getattr(self, name):
                parts.append(f"{name}={getattr(self, name)!r}")
        return ", ".join(parts)
