"""Linear edges: dense, masked or sparse (CSR) weights, optional bias, delay."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

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
        return quiet_csr(lambda: w.to_sparse_csr().to(device=device, dtype=dtype))
    w = w.tocsr()
    return quiet_csr(
        lambda: torch.sparse_csr_tensor(
            torch.as_tensor(w.indptr, dtype=torch.int64),
            torch.as_tensor(w.indices, dtype=torch.int64),
            torch.as_tensor(w.data),
            size=w.shape,
            check_invariants=True,
        ).to(device=device, dtype=dtype)
    )


def _check_finite(where: str, name: str, t: Tensor) -> None:
    vals = t.values() if t.layout == torch.sparse_csr else t
    if not torch.isfinite(vals).all():
        raise ValueError(f"{where}: {name} contains NaN or inf values")


class Linear(nn.Module):
    r"""A linear edge: :math:`y = (W \odot M)\,x + b`.

    Parameters
    ----------
    n_in, n_out : int
        Widths of the source value and of the target input.
    weights : array-like, tensor, sparse tensor or scipy.sparse matrix, optional
        ``(n_out, n_in)`` weights. Sparse input (or ``sparse=True``) is stored in CSR format.
        Default: ``U(-1/sqrt(n_in), 1/sqrt(n_in))`` drawn from ``seed``.
    train : {None, "gd", "rls"}
        ``None``: fixed buffer; ``"gd"``: ``nn.Parameter`` trained by gradient descent;
        ``"rls"``: a buffer fitted online by ``rnngraph.training.RLS``.
    mask : array-like, optional
        Fixed ``(n_out, n_in)`` 0/1 mask multiplied into the weights (also during training,
        so masked-out weights stay without effect).
    bias : bool or array-like
        ``True`` adds a zero-initialised ``(n_out,)`` bias; an array gives its values.
    sparse : bool
        Store dense ``weights`` as CSR.
    delay : int
        Steps of delay (0: the source's output of the same step).
    source_var, target_var : str, optional
        The source state variable read (default: the source's output) and the target input
        written (default: the target's main input).
    init : float or tensor, optional
        Value the edge reads before its first step when delayed (default zeros), restored
        by ``reset()``; scalar, ``(n_in,)`` or ``(B, n_in)``.
    seed : int or torch.Generator, optional
        Seed for the default initialisation.

    Shape
    -----
    Input ``(..., n_in)``, output ``(..., n_out)``; ``weight`` is ``(n_out, n_in)``.
    """

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
        dtype = dtype or torch.get_default_dtype()
        if train not in TRAIN_MODES:
            raise ValueError(f"{where}: train must be one of {TRAIN_MODES}, got {train!r}")
        if isinstance(delay, bool) or not isinstance(delay, int | np.integer) or delay < 0:
            raise ValueError(f"{where}: delay must be an int >= 0, got {delay!r}")
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.train_mode = train
        self.delay = int(delay)
        self.source_var = source_var
        self.target_var = target_var
        shape = (self.n_out, self.n_in)

        if weights is None:
            bound = 1.0 / math.sqrt(self.n_in)
            # drawn in float64 on the CPU, like the initialisers of ``_init``, so that a seed
            # gives the same weights whatever the network's dtype and device
            w = torch.empty(shape, dtype=torch.float64)
            w.uniform_(-bound, bound, generator=as_generator(seed))
            w = w.to(device=device, dtype=dtype)
        elif _is_sparse(weights):
            w = _to_csr(weights, dtype, device)
        else:
            w = torch.as_tensor(np.asarray(weights) if not isinstance(weights, Tensor) else weights)
            w = w.detach().to(device=device, dtype=dtype).clone()
        if tuple(w.shape) != shape:
            raise ValueError(
                f"{where}: weights must have shape (n_out, n_in) = {shape}, got {tuple(w.shape)}"
            )
        _check_finite(where, "weights", w)
        if sparse and w.layout == torch.strided:
            w = quiet_csr(w.to_sparse_csr)
        self.sparse = w.layout == torch.sparse_csr
        if self.sparse and train == "gd":
            raise ValueError(
                f"{where}: sparse (CSR) weights cannot be trained by gradient descent; "
                "pass dense weights with a fixed mask= instead"
            )
        if self.sparse and mask is not None:
            raise ValueError(f"{where}: mask= applies to dense weights; sparse weights are masked")
        if train == "gd":
            self.weight = nn.Parameter(w)
        else:
            self.register_buffer("weight", w)

        if mask is not None:
            m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, Tensor) else mask)
            if tuple(m.shape) != shape:
                raise ValueError(
                    f"{where}: mask must have shape (n_out, n_in) = {shape}, got {tuple(m.shape)}"
                )
            self.register_buffer("mask", m.to(device=device, dtype=dtype).clone())
        else:
            self.mask = None

        if bias is False or bias is None:
            self.bias = None
        else:
            b = torch.zeros(self.n_out, dtype=dtype, device=device)
            if bias is not True:
                bt = torch.as_tensor(np.asarray(bias) if not isinstance(bias, Tensor) else bias)
                if bt.dim() > 1 or (bt.dim() == 1 and bt.shape[0] != self.n_out):
                    raise ValueError(
                        f"{where}: bias must be a scalar or have shape ({self.n_out},), "
                        f"got {tuple(bt.shape)}"
                    )
                b = b + bt.to(device=device, dtype=dtype)
            if train == "gd":
                self.bias = nn.Parameter(b)
            else:
                self.register_buffer("bias", b)

        if init is None:
            self.init = None
        else:
            t = torch.as_tensor(np.asarray(init) if not isinstance(init, Tensor) else init)
            if t.dim() > 2 or (t.dim() >= 1 and t.shape[-1] != self.n_in):
                raise ValueError(
                    f"{where}: init must be a scalar, ({self.n_in},) or (B, {self.n_in}), "
                    f"got shape {tuple(t.shape)}"
                )
            self.register_buffer("init", t.to(device=device, dtype=dtype).clone())

    def effective_weight(self) -> Tensor:
        """The weights as applied: ``W * mask`` for masked edges, else ``W`` (CSR if sparse)."""
        return self.weight if self.mask is None else self.weight * self.mask

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
