"""Weight initialisers for reservoirs, seeded by an int or a ``torch.Generator``."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._checks import as_int, as_tensor, check_finite, describe, keywords, quiet_csr

__all__ = [
    "as_generator",
    "bias_weights",
    "effective_spectral_radius",
    "input_weights",
    "recurrent_weights",
    "spectral_radius",
]

_DISTRIBUTIONS = ("normal", "uniform", "bernoulli")


def as_generator(
    seed: int | torch.Generator | None, where: str | None = None
) -> torch.Generator | None:
    """A ``torch.Generator`` from an int seed (``None`` keeps torch's global generator);
    ``where`` names the call in the error for anything else."""
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(
            f"{where + ': ' if where else ''}seed must be an int or a torch.Generator, "
            f"got {type(seed).__name__}"
        )
    return torch.Generator().manual_seed(int(seed))


def _draw(shape, distribution: str, gen, where: str) -> Tensor:
    if distribution == "normal":
        return torch.randn(shape, generator=gen, dtype=torch.float64)
    if distribution == "uniform":
        return torch.rand(shape, generator=gen, dtype=torch.float64) * 2.0 - 1.0
    if distribution == "bernoulli":
        return torch.randint(0, 2, shape, generator=gen).to(torch.float64) * 2.0 - 1.0
    raise ValueError(f"{where}: unknown distribution {distribution!r}; valid: {_DISTRIBUTIONS}")


def _sparsify(w: Tensor, connectivity: float, gen, where: str) -> Tensor:
    bad_type = isinstance(connectivity, bool) or not isinstance(connectivity, numbers.Real)
    if bad_type or not 0.0 < connectivity <= 1.0:
        raise ValueError(f"{where}: connectivity must be in (0, 1], got {connectivity!r}")
    if connectivity < 1.0:
        keep = torch.rand(w.shape, generator=gen, dtype=torch.float64) < connectivity
        w = torch.where(keep, w, 0.0)  # not w * keep: that leaves -0.0 for negative entries
    return w


def _real(where: str, name: str, value: Any) -> Tensor:
    """``value`` as a float64 tensor of real numbers; booleans (``True``, a bool array)
    are refused: a scale is a number, not a flag."""
    t = as_tensor(where, name, value)
    if t.dtype == torch.bool:
        raise TypeError(f"{where}: {name} must be a real number, got {describe(value)}")
    return t.to(torch.float64)


_ARPACK_MIN_N = 200  # from this size the Arnoldi iteration beats a full eigendecomposition


def _options(where: str, dtype: torch.dtype | None, sparse: bool = False) -> torch.dtype:
    """The checked ``dtype`` (torch's default when ``None``) and ``sparse`` flag."""
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"{where}: dtype must be a floating torch.dtype, got {dtype!r}")
    if not isinstance(sparse, bool | np.bool_):
        raise TypeError(f"{where}: sparse must be True or False, got {describe(sparse)}")
    return dtype or torch.get_default_dtype()


@keywords("spectral_radius")
def spectral_radius(w: Tensor | np.ndarray) -> float:
    """Largest absolute eigenvalue of a square matrix (dense or sparse).

    Small matrices use a full eigendecomposition; from 200 rows on, ARPACK's Arnoldi
    iteration for the eigenvalue of largest magnitude (deterministic start vector, tolerance
    at machine precision), falling back to the full decomposition if it does not converge.
    """
    if isinstance(w, Tensor) and w.layout != torch.strided:
        w = w.to_dense()
    if hasattr(w, "toarray"):  # scipy.sparse
        w = w.toarray()
    t = as_tensor("spectral_radius", "w", w, dtype=torch.float64)
    if t.dim() != 2 or t.shape[0] != t.shape[1] or t.shape[0] == 0:
        raise ValueError(f"spectral_radius: w must be a square matrix, got shape {tuple(t.shape)}")
    check_finite("spectral_radius", "w", t)
    w = t.cpu().numpy()
    n = w.shape[0]
    if n >= _ARPACK_MIN_N:
        from scipy.sparse import csr_matrix
        from scipy.sparse.linalg import ArpackNoConvergence, eigs

        try:
            lam = eigs(
                csr_matrix(w), k=1, which="LM", v0=np.ones(n), tol=0.0, return_eigenvectors=False
            )
            return float(np.abs(lam[0]))
        except ArpackNoConvergence:
            pass
    return float(np.max(np.abs(np.linalg.eigvals(w))))


def effective_spectral_radius(w: Tensor | np.ndarray, lr: Any = 1.0) -> float:
    r"""Spectral radius of the leaky map's linearisation, :math:`\rho(\lambda W + (1 -
    \lambda) I)` (Jaeger et al. 2007; reservoirpy's ``effective_spectral_radius``): above 1
    a leaky-tanh reservoir without input, bias or feedback has no echo state property.

    Parameters
    ----------
    w : tensor or array
        ``(n, n)`` recurrent weights (dense or sparse).
    lr : float or tensor
        Leak rate :math:`\lambda` in (0, 1], a scalar or one per unit (``(n,)``, scaling the
        rows).
    """
    where = "effective_spectral_radius"
    if isinstance(w, Tensor) and w.layout != torch.strided:
        w = w.to_dense()
    if hasattr(w, "toarray"):  # scipy.sparse
        w = w.toarray()
    t = as_tensor(where, "w", w, dtype=torch.float64)
    if t.dim() != 2 or t.shape[0] != t.shape[1] or t.shape[0] == 0:
        raise ValueError(f"{where}: w must be a square matrix, got shape {tuple(t.shape)}")
    rate = as_tensor(where, "lr", lr, dtype=torch.float64)
    if rate.dim() > 1 or (rate.dim() == 1 and rate.shape[0] != t.shape[0]):
        raise ValueError(
            f"{where}: lr must be a scalar or ({t.shape[0]},), got {tuple(rate.shape)}"
        )
    if not bool(((rate > 0) & (rate <= 1)).all()):
        raise ValueError(f"{where}: lr must lie in (0, 1], got {rate.tolist()}")
    rate = rate.reshape(-1, 1) if rate.dim() else rate
    return spectral_radius(rate * t + torch.diag((1.0 - rate).reshape(-1).expand(t.shape[0])))


_rho = spectral_radius  # the name is shadowed by recurrent_weights' argument


@keywords("recurrent_weights")
def recurrent_weights(
    n: int,
    spectral_radius: float | None = 1.25,
    connectivity: float = 0.1,
    distribution: str = "normal",
    seed: int | torch.Generator | None = None,
    sparse: bool = False,
    dtype: torch.dtype | None = None,
) -> Tensor:
    r"""Random recurrent weights ``(n, n)`` scaled to a spectral radius.

    Each entry is nonzero with probability ``connectivity`` and drawn from ``distribution``
    (``"normal"``: N(0, 1); ``"uniform"``: U(-1, 1); ``"bernoulli"``: +-1); the matrix is
    then scaled so that its largest absolute eigenvalue equals ``spectral_radius`` (no
    scaling when it is ``None``). This is reservoirpy's ``Reservoir`` recipe.

    Parameters
    ----------
    n : int
        Number of units.
    spectral_radius : float or None
        Target spectral radius :math:`\rho(W)`; default 1.25.
    connectivity : float
        Fraction of nonzero entries in (0, 1]; default 0.1.
    distribution : str
        ``"normal"``, ``"uniform"`` or ``"bernoulli"``.
    seed : int or torch.Generator, optional
        Source of randomness.
    sparse : bool
        Return a CSR tensor.
    dtype : torch.dtype, optional
        Default: torch's default dtype.
    """
    where = "recurrent_weights"
    n = as_int(where, "n", n, minimum=1)
    dtype = _options(where, dtype, sparse)
    if spectral_radius is not None:
        rho_target = _real(where, "spectral_radius", spectral_radius)
        if rho_target.dim() or not (bool(torch.isfinite(rho_target)) and rho_target >= 0):
            raise ValueError(
                f"{where}: spectral_radius must be a finite number >= 0 or None, "
                f"got {describe(spectral_radius)}"
            )
        spectral_radius = float(rho_target)
    gen = as_generator(seed, where)
    w = _sparsify(
        _draw((n, n), distribution, gen, "recurrent_weights"),
        connectivity,
        gen,
        "recurrent_weights",
    )
    if spectral_radius is not None:
        rho = _rho(w)
        if rho == 0.0:
            raise ValueError(
                "recurrent_weights: the drawn matrix has spectral radius 0 "
                f"(n={n}, connectivity={connectivity}); raise connectivity or n"
            )
        w = w * (spectral_radius / rho)
    w = w.to(dtype)
    return quiet_csr(w.to_sparse_csr) if sparse else w


@keywords("input_weights")
def input_weights(
    n_out: int,
    n_in: int,
    connectivity: float = 1.0,
    scaling: float | Tensor = 1.0,
    distribution: str = "bernoulli",
    seed: int | torch.Generator | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    r"""Random input weights ``(n_out, n_in)``.

    Each entry is nonzero with probability ``connectivity``, drawn from ``distribution``
    (default ``"bernoulli"``: +-1, reservoirpy's choice) and multiplied by ``scaling``.

    Parameters
    ----------
    n_out, n_in : int
        Number of target units and of input channels.
    connectivity : float
        Fraction of nonzero entries in (0, 1]; default 1.
    scaling : float or Tensor
        Input scaling, a scalar or one value per input column ``(n_in,)``; default 1.
    distribution : str
        ``"normal"``, ``"uniform"`` or ``"bernoulli"``.
    seed : int or torch.Generator, optional
        Source of randomness.
    dtype : torch.dtype, optional
        Default: torch's default dtype.
    """
    return _scaled((n_out, n_in), connectivity, scaling, distribution, seed, dtype, "input_weights")


def _scaled(shape, connectivity, scaling, distribution, seed, dtype, where: str) -> Tensor:
    """Sparse random entries from ``distribution`` times ``scaling``, in ``dtype``."""
    names = ("n_out", "n_in") if len(shape) == 2 else ("n",)
    shape = tuple(as_int(where, k, v, minimum=1) for k, v in zip(names, shape, strict=True))
    dtype = _options(where, dtype)
    scale = _real(where, "scaling", scaling)
    if scale.dim() > 1 or (scale.dim() == 1 and scale.shape[0] not in (1, shape[-1])):
        raise ValueError(
            f"{where}: scaling must be a scalar or have shape ({shape[-1]},), "
            f"got shape {tuple(scale.shape)}"
        )
    check_finite(where, "scaling", scale)
    gen = as_generator(seed, where)
    w = _sparsify(_draw(shape, distribution, gen, where), connectivity, gen, where)
    w = w * scale
    return w.to(dtype)


@keywords("bias_weights")
def bias_weights(
    n: int,
    connectivity: float = 1.0,
    scaling: float = 1.0,
    distribution: str = "bernoulli",
    seed: int | torch.Generator | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    r"""A random bias ``(n,)`` for a reservoir's units: the weights of a constant input 1.

    Drawn exactly as one column of :func:`input_weights` with the same arguments: each entry
    nonzero with probability ``connectivity``, from ``distribution``, times ``scaling``.
    Pass it as the node's ``bias`` in :math:`x \leftarrow (1 - lr)\,x + lr\,\tanh(W x +
    W_{in} u + b)`.

    A random bias breaks the odd symmetry of a tanh reservoir without one: with
    :math:`b = 0` the states obey :math:`x[-u] = -x[u]`, so a linear readout sees only odd
    functions of the input history. On the Mackey-Glass one-step task (500 units,
    ``benchmarks/mackey_glass_esn.py``, figures in ``benchmarks/README.md``) +-1 on 20 % of
    the units lowers the median NRMSE and removes the draws with large errors. This is the
    input bias of Lukoševičius' "A Practical Guide to Applying Echo State Networks" (2012)
    and reservoirpy 0.3's default (``input_bias=True``: +-``bias_scaling`` with the input
    connectivity); reservoirpy 0.4's ``Reservoir`` has ``bias=0``.

    Parameters
    ----------
    n : int
        Number of units.
    connectivity, scaling, distribution, seed, dtype
        As for :func:`input_weights`; ``connectivity`` is the fraction of units with a
        nonzero bias.

    Examples
    --------
    >>> b = bias_weights(500, connectivity=0.2, seed=3)
    >>> b.shape, sorted(set(b.tolist()))
    (torch.Size([500]), [-1.0, 0.0, 1.0])
    """
    return _scaled((n,), connectivity, scaling, distribution, seed, dtype, "bias_weights")
