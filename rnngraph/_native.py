"""Native loops in C for runs without gradients.

At batch 1 a step of a few hundred units costs a few microseconds of arithmetic and
about as much again per torch call in dispatch. ``_native.c`` holds the loops below; each
gives the generic torch loop's results up to rounding:

* whole-sequence reservoir loops, all steps of a chunk in one call: an echo-state reservoir
  (one ``leaky_tanh`` node with ``tanh``) or RectiPy's leaky integrator (``li``, ``tanh``,
  any explicit integrator through its affine one-step map), whose only recurrent input is a
  feedback self-edge of delay 1 (dense, masked or CSR weights; dense weights with at most
  :data:`DENSE_TO_CSR` nonzeros run as CSR), fed by static nodes (the input projection,
  computed for all steps in one GEMM before the loop) and optionally followed by function
  nodes (readouts, evaluated for the whole chunk after the loop). Batch 1, or any batch for
  the echo-state loop with dense weights (one gemm per step: torch's own BLAS, called from C);
* node steps for the generic loop: ``leaky_tanh`` and the LIF family's no-gradient step;
* event-driven input from spiking nodes into dense edges;
* the RLS update of one sample (upper triangle of ``P``).

They are taken when autograd is off (or nothing requires a gradient), no hook is attached
(RLS and e-prop use hooks; the RLS update itself is native), the tensors are on the CPU in
float32 or float64, and a C compiler is available. The library is compiled on first use
with the system's ``cc`` (``-O3 -march=native``) into ``$RNNGRAPH_CACHE_DIR`` (default
``~/.cache/rnngraph``) and reused. ``RNNGRAPH_NATIVE=0`` in the environment, or
:func:`set_enabled` ``(False)``, turns it off; :func:`available` says whether it loaded.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "available",
    "enabled",
    "event_addmm",
    "failure",
    "gram",
    "leaky_tanh_step",
    "lif_step",
    "rls_update",
    "set_enabled",
]

_SOURCE = Path(__file__).with_name("_native.c")
_COMPILE = ("-O3", "-march=native", "-ffast-math", "-fPIC")
_REALS = {torch.float64: "double", torch.float32: "float"}

_enabled = os.environ.get("RNNGRAPH_NATIVE", "1") != "0"

#: The C functions' arguments: i int64, p pointer (NULL for None), r the real type.
_SIGNATURES = {
    "esn_run": "iiipi" + "p" * 11,
    "li_run": "iipi" + "p" * 13,
    "leaky_tanh": "ii" + "p" * 5,
    "lif_step": "ii" + "p" * 14 + "i",
    "event_add": "iii" + "p" * 3,
    "rls_update": "iii" + "p" * 6 + "rp",
}
#: functions of the float64 library only
_SIGNATURES_DOUBLE = {"gram": "iippp"}
_libs: dict[torch.dtype, Any] = {}
_failure: str | None = None


def set_enabled(flag: bool) -> None:
    """Turn the native loops on or off for this process (on by default unless the
    environment sets ``RNNGRAPH_NATIVE=0``)."""
    global _enabled
    _enabled = bool(flag)


def enabled() -> bool:
    """Whether native loops are switched on (they may still be unavailable)."""
    return _enabled


def available() -> bool:
    """Whether the native library is compiled and loaded (compiling it if needed)."""
    return all(_library(d) is not None for d in _REALS)


def failure() -> str | None:
    """Why the native library could not be built, or ``None``."""
    return _failure


def _cache_dir() -> Path:
    env = os.environ.get("RNNGRAPH_CACHE_DIR")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rnngraph"
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home: the temporary directory, per user
        base = Path(tempfile.gettempdir()) / f"rnngraph-{os.getuid()}"
    return base


def _cpu_signature() -> str:
    # -march=native code must not run on another CPU sharing the cache directory
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        flags = ""
    return platform.machine() + flags


def _defines(real: str) -> list[str]:
    return [f"-DREAL={real}"] + (["-DREAL_DOUBLE"] if real == "double" else [])


def _build(real: str) -> Path:
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("no C compiler (cc) found")
    source = _SOURCE.read_bytes()
    key = hashlib.sha256(
        b"\0".join([source, " ".join(_COMPILE).encode(), real.encode(), _cpu_signature().encode()])
    ).hexdigest()[:16]
    target = _cache_dir() / f"native-{real}-{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        obj, lib = Path(tmp) / "native.o", Path(tmp) / "native.so"
        # -ffast-math (reassociated sums, vectorised tanh) only when compiling: linking
        # with it would add crtfastmath.o, which flushes denormals for the whole process
        steps = (
            [compiler, *_COMPILE, *_defines(real), "-c", str(_SOURCE), "-o", str(obj)],
            [compiler, "-shared", str(obj), "-o", str(lib), "-lm"],
        )
        for cmd in steps:
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip()[:500]}")
        os.replace(lib, target)  # atomic: concurrent builders all see a whole file
    return target


def _library(dtype: torch.dtype) -> Any:
    global _failure
    if dtype in _libs:
        return _libs[dtype]
    lib = None
    if sys.platform.startswith("linux") and dtype in _REALS and _failure is None:
        try:
            lib = ctypes.CDLL(str(_build(_REALS[dtype])))
            real = ctypes.c_double if dtype == torch.float64 else ctypes.c_float
            codes = {"i": ctypes.c_int64, "p": ctypes.c_void_p, "r": real}
            sigs = _SIGNATURES | (_SIGNATURES_DOUBLE if dtype == torch.float64 else {})
            for name, sig in sigs.items():
                fn = getattr(lib, name)
                fn.restype, fn.argtypes = None, [codes[c] for c in sig]
        except (OSError, RuntimeError, subprocess.SubprocessError) as err:
            _failure = str(err)
            lib = None
    _libs[dtype] = lib
    return lib


def _lib_for(dtype: torch.dtype, device: torch.device) -> Any:
    """The library for tensors of this dtype and device, or ``None`` when native code does
    not apply (switched off, not on the CPU, not float32/64, or no library)."""
    if not _enabled or device.type != "cpu" or dtype not in _REALS:
        return None
    return _library(dtype)


def _aligned(*tensors: Tensor) -> tuple[Tensor, ...]:
    """The tensors broadcast to one shape (only if they differ) and contiguous, as the C
    loops read them."""
    if any(t.shape != tensors[0].shape for t in tensors[1:]):
        tensors = torch.broadcast_tensors(*tensors)
    return tuple(t.contiguous() for t in tensors)


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _vector(value: Tensor, n: int, dtype: torch.dtype) -> Tensor:
    # a scalar or per-unit parameter as a contiguous (n,) array
    return torch.broadcast_to(value.detach().to(dtype).reshape(-1), (n,)).contiguous()


@dataclass(frozen=True)
class ReservoirPlan:
    """A network a native reservoir loop can run: ``node`` (``kind`` ``"esn"``: a
    ``leaky_tanh`` with ``tanh``; ``"li"``: RectiPy's leaky integrator with ``tanh``) whose
    only dynamic input is ``edge`` (its delay-1 feedback self-edge, on the input ``var``),
    followed by the function nodes ``post`` (in order)."""

    kind: str
    node: str
    edge: Any  # _Edge
    post: tuple[str, ...]


def _kind(node: Any) -> tuple[str, str] | None:
    """The native loop for a node, and the input its recurrent edge must target."""
    from .nodes._rate import LeakyTanh, RectiPyLI
    from .nodes._spiking import _AFFINE_GAIN

    if node._f is not torch.tanh:
        return None
    if type(node) is LeakyTanh:
        return "esn", "I"
    if type(node) is RectiPyLI and node.integrator in _AFFINE_GAIN:
        return "li", "r_in"
    return None


def plan(net: Any) -> ReservoirPlan | None:
    """The native plan for a ``CompiledNetwork``, or ``None`` when its structure has none."""
    from .nodes import FuncNode

    if len(net._de_nodes) != 1 or len(net._delayed) != 1:
        return None
    v = net._de_nodes[0]
    node, edge = net.nodes[v], net._delayed[0]
    kind = _kind(node) if hasattr(node, "_f") else None
    if kind is None:
        return None
    if (edge.source, edge.target, edge.delay, edge.source_var) != (v, v, 1, None):
        return None
    for t in net._targets.values():
        if t.node == v and t.dynamic != ([edge] if t.var == kind[1] else []):
            return None
        if t.node == v and kind[0] == "li" and t.var == "r_in" and (t.static or t.external):
            return None  # the drive enters I_ext only
    post = tuple(u for u in net._dynamic if u != v)
    done = set(net._static) | {v}
    for u in post:
        feeds = [e for e in net._edges if e.target == u]
        if (
            u == net.input_node
            or not isinstance(net.nodes[u], FuncNode)
            or any(e.delay != 0 or e.source_var is not None or e.source not in done for e in feeds)
        ):
            return None
        done.add(u)
    return ReservoirPlan(kind[0], v, edge, post)


def usable(net: Any, batch: int, grad: bool, hooks: tuple) -> bool:
    """Whether this run can take the native loop."""
    ref, plan = net._ref, net._native
    return (
        plan is not None
        and not grad
        and not hooks
        and _lib_for(ref.dtype, ref.device) is not None
        and (batch == 1 or _batched(plan, ref.dtype))
        and _int32_indices(plan.edge.module)
    )


def _batched(plan: ReservoirPlan, dtype: torch.dtype) -> bool:
    # batches: the ESN loop with a dense W and torch's own BLAS gemm
    return plan.kind == "esn" and not plan.edge.module.sparse and _gemm(dtype) is not None


def _gemm(dtype: torch.dtype) -> int | None:
    """The address of the BLAS ``sgemm_`` / ``dgemm_`` that torch itself calls (exported
    by ``libtorch_cpu``), or ``None``."""
    if dtype not in _gemms:
        name = {torch.float32: "sgemm_", torch.float64: "dgemm_"}.get(dtype)
        path = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
        try:
            fn = getattr(ctypes.CDLL(str(path)), name) if name else None
        except (OSError, AttributeError):
            fn = None
        _gemms[dtype] = None if fn is None else ctypes.cast(fn, ctypes.c_void_p).value
    return _gemms[dtype]


_gemms: dict[torch.dtype, int | None] = {}


def _int32_indices(module: Any) -> bool:
    # the C loop takes int32 CSR indices
    return not module.sparse or module.weight._nnz() < 2**31


#: A dense recurrent matrix with at most this fraction of nonzeros runs as CSR in the C loop:
#: the product then costs about the nonzeros, and the sum is the same up to rounding.
DENSE_TO_CSR = 0.25

#: module -> (key of its weights' versions, layout): the layout survives runs until the
#: weights change
_layouts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _recurrent_layout(module: Any) -> tuple[Tensor | None, tuple]:
    """``(W, (indptr, indices, values))`` for the C loop: a contiguous dense ``W`` and no CSR,
    or ``W = None`` and int32 CSR arrays (for sparse edges and for sparse-enough dense
    ones)."""
    key = None
    if not module.sparse:  # CSR weights convert cheaply; dense ones are counted once
        parts = [module.weight] + ([module.mask] if module.mask is not None else [])
        key = tuple((id(t), t.data_ptr(), t._version) for t in parts)
        cached = _layouts.get(module)
        if cached is not None and cached[0] == key:
            return cached[1]
    w = module.effective_weight().detach()
    if not module.sparse and bool((w != 0).sum() > DENSE_TO_CSR * w.numel()):
        layout = (w.contiguous(), (None, None, None))
    else:
        if w.layout != torch.sparse_csr:
            from .edges._init import quiet_csr

            w = quiet_csr(w.to_sparse_csr)
        csr = (w.crow_indices(), w.col_indices(), w.values())
        layout = (
            None,
            tuple(t.to(torch.int32).contiguous() for t in csr[:2]) + (csr[2].contiguous(),),
        )
    if key is not None:
        _layouts[module] = (key, layout)
    return layout


class ReservoirRun:
    """The per-run constants of a native reservoir loop (weights, per-unit coefficients)
    and its state."""

    def __init__(self, net: Any, p: ReservoirPlan, state: tuple[Tensor, Tensor]) -> None:
        node, module = net.nodes[p.node], p.edge.module
        n, dtype = node.n, net._ref.dtype
        x, prev = state
        self.lib, self.kind, self.n, self.batch = _library(dtype), p.kind, n, x.shape[0]
        if self.batch == 1:
            (self.W, self.csr), gemm = _recurrent_layout(module), None
        else:  # one gemm per step with torch's BLAS
            self.W, self.csr = module.effective_weight().detach().contiguous(), (None, None, None)
            gemm = _gemm(dtype)
        # the recurrent edge's bias; the generic loop folds it into the static drive of
        # its target when that has one
        static = any(t.static for t in net._targets.values() if (t.node, t.var) == (p.node, "I"))
        edge_bias = module.bias.detach() if module.bias is not None else torch.zeros(())
        if p.kind == "esn":
            bias = node.bias.detach() + (0 if static else edge_bias)
            self.coef = [_vector(c, n, dtype) for c in (node.lr, bias)]
        else:
            from .nodes._spiking import _AFFINE_GAIN

            with torch.no_grad():
                tau = node.tau.to(dtype)
                g = _AFFINE_GAIN[node.integrator](torch.as_tensor(net.dt, dtype=dtype) / tau)
                scale = (1 - g) * tau  # v <- g v + (1 - g) tau (drive)
                c_rec = scale * node.k
                coef = (g, c_rec, scale, scale * node.eta + c_rec * edge_bias)
            self.coef = [_vector(c, n, dtype) for c in coef]
        shape = (self.batch, n)
        self.x = x.detach().reshape(shape).clone()  # the caller's state is never written
        self.prev = prev.detach().reshape(shape).contiguous()
        self.u = torch.empty(shape, dtype=dtype)
        # what every chunk passes: the weights and the per-unit coefficients
        weights = [_ptr(self.W), *([gemm] if p.kind == "esn" else []), *map(_ptr, self.csr)]
        self.consts = weights + [_ptr(c) for c in self.coef]

    def chunk(self, P: Tensor | None, n_steps: int, out: Tensor) -> tuple[Tensor, Tensor]:
        """Run ``n_steps`` steps with the projected input ``P`` (``(n_steps, B, n)``, or
        ``None`` for none), writing the node's output into ``out`` (a contiguous
        ``(n_steps, B, n)`` tensor); return it and the node's state variable for every step
        (the same tensor for ``leaky_tanh``)."""
        n, m, dtype = self.n, self.batch, self.x.dtype
        if P is None:
            P, stride = torch.zeros(m, n, dtype=dtype), 0
        else:
            P, stride = P.expand(n_steps, m, n).contiguous(), m * n
        head = [n_steps, m, n] if self.kind == "esn" else [n_steps, n]
        args = [*head, _ptr(P), stride, *self.consts, _ptr(self.x), _ptr(self.prev), _ptr(out)]
        if self.kind == "esn":
            self.lib.esn_run(*args, _ptr(self.u))
            V = out
        else:
            V = torch.empty(n_steps, m, n, dtype=dtype)
            self.lib.li_run(*args, _ptr(V), _ptr(self.u))
        self.prev = out[-1]
        return out, V

    def state(self, State: Any) -> list:
        """The loop's state in the generic loop's layout: ``[State(x), delay line]``."""
        return [State(self.x), self.prev.clone()]


def rls_update(
    P: Tensor, w: Tensor, b: Tensor | None, r: Tensor, target: Tensor, forgetting: float
) -> Tensor | None:
    """One RLS update from one sample in C (``_native.c``: ``rls_update``), in place, with
    only the upper triangle of ``P`` read and written. Returns the a-priori error
    ``(1, n_out)``, or ``None`` (nothing done) when the native path does not apply: batch
    > 1, not on the CPU, mixed dtypes, non-contiguous tensors or no library."""
    dtype = P.dtype
    lib = _lib_for(dtype, P.device)
    if lib is None or r.shape[0] != 1:
        return None
    if not all(
        t.dtype == dtype and t.is_contiguous() and not t.requires_grad
        for t in (P, w, r, target) + (() if b is None else (b,))
    ):
        return None
    n_out, n = w.shape
    err = torch.empty(1, n_out, dtype=dtype)
    k = torch.empty(P.shape[0], dtype=dtype)
    lib.rls_update(
        P.shape[0],
        n,
        n_out,
        _ptr(P),
        _ptr(r),
        _ptr(w),
        _ptr(b),
        _ptr(target),
        _ptr(err),
        forgetting,
        _ptr(k),
    )
    return err


#: rows of X the C ``gram`` packs at a time (its GRAM_KC) and its widest tile (GRAM_NR, 24
#: columns with AVX-512, 12 otherwise): its scratch holds KC x NR x ceil(n / NR) values
_GRAM_KC, _GRAM_NR = 256, 24


def gram(X: Tensor) -> Tensor | None:
    """The upper triangle of ``X^T X`` for a float64 ``X`` ``(m, n)`` on the CPU, by the C
    ``gram`` (a register-blocked kernel of the CPU's widest vectors); entries below the
    diagonal are undefined. ``None`` when the native path does not apply."""
    lib = _lib_for(X.dtype, X.device) if X.dtype == torch.float64 else None
    if lib is None or X.dim() != 2:
        return None
    X = X.detach().contiguous()
    m, n = X.shape
    C = torch.zeros(n, n, dtype=X.dtype)
    pack = torch.empty(_GRAM_KC * _GRAM_NR * -(-n // _GRAM_NR), dtype=X.dtype)
    lib.gram(m, n, _ptr(X), _ptr(C), _ptr(pack))
    return C


def leaky_tanh_step(lr: Tensor, bias: Tensor, n: int) -> Any:
    """A no-gradient step ``x, I -> x + lr (tanh(I + bias) - x)`` in C (``leaky_tanh``), or
    ``None`` when the native path does not apply (on the CPU in float32/64 only). One
    vectorised pass instead of three torch calls; torch's ``tanh`` alone costs more."""
    lib = _lib_for(lr.dtype, lr.device)
    if lib is None:
        return None
    lr_v, b_v = _vector(lr, n, lr.dtype), _vector(bias, n, lr.dtype)

    def step(x: Tensor, I: Tensor) -> Tensor:  # noqa: E741
        x, I = _aligned(x, I)  # noqa: E741
        out = torch.empty_like(x)
        lib.leaky_tanh(out.numel() // n, n, _ptr(out), _ptr(x), _ptr(I), _ptr(lr_v), _ptr(b_v))
        return out

    return step


def lif_step(
    n: int, dtype: torch.dtype, device: torch.device, subtract: bool, **params: Any
) -> Any:
    """The no-gradient LIF step of ``lif_kernel_nograd`` in C (``lif_step``): one pass
    instead of about ten torch calls, or ``None`` when the native path does not apply.
    ``params``: ``u0, r_m, g, th, v_reset, drop, hold``, scalars or ``(n,)``."""
    lib = _lib_for(dtype, device)
    if lib is None:
        return None
    names = ("u0", "r_m", "g", "th", "v_reset", "drop", "hold")
    consts = [_vector(torch.as_tensor(params[k], dtype=dtype), n, dtype) for k in names]
    ptrs = [_ptr(c) for c in consts]

    def step(I: Tensor, v: Tensor, z: Tensor, ref: Tensor) -> tuple[Tensor, Tensor, Tensor]:  # noqa: E741
        I, v, z, ref = _aligned(I, v, z, ref)  # noqa: E741
        out = torch.empty((3, *v.shape), dtype=dtype)
        v_out, z_out, ref_out = out.unbind(0)
        lib.lif_step(
            v.numel() // n,
            n,
            *(_ptr(t) for t in (I, v, z, ref, v_out, z_out, ref_out)),
            *ptrs,
            int(subtract),
        )
        return v_out, z_out, ref_out

    step.consts = consts  # keep the constants alive with the closure
    return step


def events_usable(dtype: torch.dtype, device: torch.device) -> bool:
    """Whether :func:`event_addmm` can run for tensors of this dtype and device."""
    return _lib_for(dtype, device) is not None


def event_addmm(acc: Tensor | None, z: Tensor, Wt: Tensor) -> Tensor:
    """``acc + z @ Wt`` for spikes ``z`` ``(m, n_in)`` (mostly zeros) and a contiguous
    ``Wt`` ``(n_in, n_out)``, adding only the rows of ``Wt`` of units that spiked (C
    ``event_add``). ``acc`` broadcasts to ``(m, n_out)``; ``None`` is zero."""
    m, n_out = z.shape[0], Wt.shape[1]
    if acc is None:
        out = torch.zeros(m, n_out, dtype=Wt.dtype)
    else:
        out = torch.empty(m, n_out, dtype=Wt.dtype)
        out.copy_(acc)
    z = z.contiguous()
    _libs[Wt.dtype].event_add(m, z.shape[1], n_out, _ptr(z), _ptr(Wt), _ptr(out))
    return out
