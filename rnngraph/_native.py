"""Native loops in C for runs without gradients.

At batch 1 a step of a few hundred units costs a few microseconds of arithmetic and
about as much again per torch call in dispatch. ``_native.c`` holds the loops below; each
gives the generic torch loop's results up to rounding, NaN and infinities included:

* whole-sequence reservoir loops, all steps of a chunk in one call: an echo-state reservoir
  (one ``leaky_tanh`` node with ``tanh``) or RectiPy's leaky integrator (``li``, ``tanh``,
  any explicit integrator through its affine one-step map), whose only recurrent input is a
  feedback self-edge of delay 1 (dense, masked or CSR weights; dense weights with at most
  :data:`DENSE_TO_CSR` nonzeros run as CSR), fed by static nodes (the input projection,
  computed for all steps in one GEMM before the loop) and optionally followed by function
  nodes (readouts, evaluated for the whole chunk after the loop). Batch 1 only: batches run
  the torch loop (its BLAS products were faster than the C loop's);
* node steps for the generic loop: ``leaky_tanh`` and the LIF family's no-gradient step;
* event-driven input from spiking nodes into dense edges;
* the RLS update of one sample (upper triangle of ``P``).

(A C Gram kernel for ridge was dropped: scipy's ``dsyrk`` was 3.8x faster on the workload;
``benchmarks/native_kernels.py`` measures every kernel against the torch path.)

They are taken when autograd is off (or nothing requires a gradient), no hook is attached
(RLS and e-prop use hooks; the RLS update itself is native), the tensors are on the CPU in
float32 or float64, and a C compiler is available or a valid library is cached. Every array
a C function reads is checked first (shape, dtype, device, layout): weights or parameters
replaced through ``.data`` by a tensor of another shape or dtype raise a ``ValueError``
naming the call and the edge or node, never a crash. Weights are read afresh at every run,
so in-place changes (``.data``, ``mul_``, a numpy view) always take effect.

Building and the cache. The library is compiled on first use, once per real type, with
``$CC`` (split like a shell command line, e.g. ``CC='gcc -pipe'``) or else ``cc``/``gcc``
on ``PATH`` (``-O3 -fno-math-errno`` and ``-march=`` the CPU's x86-64 micro-architecture
level, ``x86-64-v3`` on a CPU with AVX2 and FMA: no finite-math assumptions; ``-fopenmp``
when torch runs on GNU OpenMP, whose loaded ``libgomp.so.1`` the library then shares, so
that a batch's row groups run on torch's own worker threads), into the cache directory:

* ``$RNNGRAPH_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/rnngraph`` (``~/.cache/rnngraph``),
  else, when that cannot be created, ``<tempdir>/rnngraph-<uid>``. Directories are created
  with mode 0700. A directory not owned by the current user, or writable by its group or
  others, is never loaded from: the library is then built in a fresh private temporary
  directory (removed once loaded), as it is when the cache is read-only (no write
  permission); one logged line says why.
* Each build goes to a temporary file, renamed into place atomically, with a manifest
  (``native-<real>-<key>.json``, written last, atomically) recording the hash of the
  source, the flags, the CPU signature, the glibc version, the compiler's identity and
  version, and the library's own SHA-256. Before loading, the manifest must match this
  build and the library its hash; otherwise (truncated, empty or foreign file, another
  compiler) it is rebuilt. A valid cached library loads without a compiler on ``PATH``.

``RNNGRAPH_NATIVE=0`` in the environment, or :func:`set_enabled` ``(False)``, turns the
native loops off; :func:`available` says whether the library loaded and :func:`failure` why
not. When it cannot load, one ``logging`` line (logger ``rnngraph.native``) says why, and
every run takes the torch loops, with the same results.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import platform
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._checks import quiet_csr

__all__ = [
    "available",
    "enabled",
    "event_addmm",
    "failure",
    "leaky_tanh_step",
    "lif_step",
    "rls_update",
    "set_enabled",
]

_SOURCE = Path(__file__).with_name("_native.c")
#: x86-64 micro-architecture levels (the psABI's) and the CPU flags each needs, as Linux's
#: /proc/cpuinfo names them: the library is built for the highest level the CPU has, so
#: it runs on every CPU of that level (``-march=native`` code may not run on another
#: machine sharing the cache)
_X86_V2 = frozenset({"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"})
_X86_V3 = _X86_V2 | {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
_X86_LEVELS = (("x86-64-v3", _X86_V3), ("x86-64-v2", _X86_V2))


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            line = next((row for row in fh if row.startswith(("flags", "Features"))), "")
    except OSError:
        line = ""
    return set(line.partition(":")[2].split())


def _target() -> str:
    """The ``-march`` level to build for: the highest x86-64 level this CPU has; on other
    machines the compiler's default target (``""``)."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return ""
    flags = _cpu_flags()
    return next((level for level, need in _X86_LEVELS if need <= flags), "x86-64")


#: no -ffast-math: it assumes finite values (NaN tests folded away, inf - inf reordered);
#: -fno-trapping-math (as torch is built) only lets the compiler vectorise the loops with
#: conditionals (NaN and inf values come out as before; no code here reads FP traps)
_COMPILE = (
    "-O3",
    "-fno-math-errno",
    "-fno-trapping-math",
    "-fPIC",
    *((f"-march={_target()}",) if _target() else ()),
)
_REALS = {torch.float64: "double", torch.float32: "float"}

_enabled = os.environ.get("RNNGRAPH_NATIVE", "1") != "0"

#: The C functions' arguments: i int64, p pointer (NULL for None), r the real type.
_SIGNATURES = {
    "esn_run": "iiipi" + "p" * 6 + "ip" + "p" * 3 + "i" + "p" * 4 + "i" + "p" * 4 + "ip",
    "li_run": "iipi" + "p" * 13,
    "gain_run": "iipi" + "p" * 8 + "ipi" + "p" * 5,
    "leaky_tanh": "ii" + "p" * 5,
    "lif_step": "ii" + "p" * 14 + "ii",
    "event_add": "iii" + "p" * 3,
    "rls_update": "iii" + "p" * 6 + "rp",
    "lms_update": "ii" + "p" * 4 + "rp",
    "lms_run": "iii" + "p" * 3 + "ipi" + "p" * 2,
}
_libs: dict[torch.dtype, Any] = {}
_failure: str | None = None
_serial = False  # set when a build with -fopenmp failed: built without it from then on
_log = logging.getLogger("rnngraph.native")
_noted: set[str] = set()


class _Unavailable(Exception):
    """Why no native library can be loaded (what :func:`failure` returns)."""


def set_enabled(flag: bool) -> None:
    """Turn the native loops on or off for this process (on by default unless the
    environment sets ``RNNGRAPH_NATIVE=0``)."""
    global _enabled
    if not isinstance(flag, bool | np.bool_):
        raise TypeError(f"rnngraph.native.set_enabled: flag must be True or False, got {flag!r}")
    _enabled = bool(flag)


def enabled() -> bool:
    """Whether native loops are switched on (they may still be unavailable)."""
    return _enabled


def available() -> bool:
    """Whether the native library is compiled and loaded (compiling it if needed)."""
    return all(_library(d) is not None for d in _REALS)


def failure() -> str | None:
    """Why the native library could not be built or loaded, or ``None``."""
    return _failure


def _note(message: str) -> None:
    """Log ``message`` once per process."""
    if message not in _noted:
        _noted.add(message)
        _log.warning("rnngraph.native: %s", message)


# ----------------------------------------------------------------------------------
# the cache directory
# ----------------------------------------------------------------------------------


def _unsafe(path: Path, kind: str = "directory") -> str | None:
    """Why ``path`` must not be trusted (not a ``kind``, another owner, writable by group
    or others), or ``None``. Files are not followed through symbolic links."""
    try:
        st = os.stat(path) if kind == "directory" else os.lstat(path)
    except OSError as err:
        return f"cannot read {path}: {err.strerror}"
    is_kind = stat.S_ISDIR if kind == "directory" else stat.S_ISREG
    if not is_kind(st.st_mode):
        return f"{path} is not a {kind}"
    if st.st_uid != os.geteuid():
        return f"{path} is owned by uid {st.st_uid}, not by this user (uid {os.geteuid()})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        mode = stat.S_IMODE(st.st_mode)
        fix = f"; `chmod go-w {path}` makes it usable" if kind == "directory" else ""
        return f"{path} is writable by its group or others (mode {mode:o}){fix}"
    return None


def _private_dir(path: Path) -> tuple[Path | None, str | None]:
    """``(path, None)`` once ``path`` exists and is safe to load from, creating its missing
    components with mode 0700; else ``(None, why)``."""
    missing, p = [], path
    while not os.path.lexists(p) and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:  # made at the same moment by another process
            pass
        except OSError as err:
            return None, f"cannot create {d}: {err.strerror}"
    for d in [path, *missing]:
        why = _unsafe(d)
        if why is not None:
            return None, why
    return path, None


def _cache_dir() -> tuple[Path | None, str | None]:
    """The cache directory and ``None``, or ``None`` and why no cache directory is safe."""
    env = os.environ.get("RNNGRAPH_CACHE_DIR")
    if env:
        return _private_dir(Path(env))
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rnngraph"
    path, why = _private_dir(base)
    if path is None:  # e.g. a read-only home: the temporary directory, per user
        path, why_tmp = _private_dir(Path(tempfile.gettempdir()) / f"rnngraph-{os.getuid()}")
        why = None if path is not None else f"{why}; {why_tmp}"
    return path, why


def _writable(path: Path) -> bool:
    # the owner's write bit too: a directory made read-only stays so even for root
    mode = os.stat(path).st_mode
    return bool(mode & stat.S_IWUSR) and os.access(path, os.W_OK | os.X_OK)


# ----------------------------------------------------------------------------------
# what identifies a build, and the manifest
# ----------------------------------------------------------------------------------


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cpu_signature() -> str:
    # the architecture and the level built for (in the flags too): a library built for
    # one level is never loaded on a CPU of a lower one sharing the cache directory
    return f"{platform.machine()} {_target()}"


def _glibc() -> str:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        return " ".join(platform.libc_ver())


def _libmvec() -> bool:
    # glibc's vector math library has tanh on x86-64 from glibc 2.35
    version = _glibc().split()
    if platform.machine() != "x86_64" or len(version) != 2 or version[0] != "glibc":
        return False
    try:
        return tuple(int(p) for p in version[1].split(".")[:2]) >= (2, 35)
    except ValueError:
        return False


def _gnu_openmp() -> bool:
    """Whether torch runs on GNU OpenMP (its ``libgomp.so.1`` is loaded in this process):
    then the library is built with ``-fopenmp``, and its parallel loops run on that same
    runtime's threads (the dynamic linker resolves ``libgomp.so.1`` to the loaded copy), so
    that torch's spinning workers and the loops' threads never compete for the cores. Not
    once a build with ``-fopenmp`` has failed (a compiler without OpenMP)."""
    if _serial:
        return False
    try:
        with open("/proc/self/maps") as fh:
            return any(line.rstrip().endswith("/libgomp.so.1") for line in fh)
    except OSError:
        return False


def _defines(real: str) -> list[str]:
    vector = ["-DRNNGRAPH_LIBMVEC"] if _libmvec() else []
    parallel = ["-fopenmp"] if _gnu_openmp() else []
    return [f"-DREAL={real}", *vector, *parallel] + (["-DREAL_DOUBLE"] if real == "double" else [])


def _libraries() -> list[str]:
    return (["-fopenmp"] if _gnu_openmp() else []) + (["-lmvec"] if _libmvec() else []) + ["-lm"]


def _fields(real: str) -> dict[str, str]:
    """What a cached library must have been built from to be loaded (besides the
    compiler, checked when one is present)."""
    return {
        "source_sha256": _sha256(_SOURCE.read_bytes()),
        "flags": " ".join([*_COMPILE, *_defines(real), *_libraries()]),
        "cpu_sha256": _sha256(_cpu_signature().encode()),
        "glibc": _glibc(),
    }


def _build_name(real: str, fields: dict) -> str:
    """The file name (without suffix) of the build with ``fields``."""
    return f"native-{real}-{_sha256(json.dumps(fields, sort_keys=True).encode())[:16]}"


def _compiler() -> tuple[list[str] | None, str]:
    """``(command, identity)``: the C compiler (``$CC`` split like a shell command line,
    else ``cc`` or ``gcc`` on ``PATH``) and its path, command line and version; or
    ``(None, why)`` when there is none."""
    cc = os.environ.get("CC")
    cmd = shlex.split(cc) if cc else [shutil.which("cc") or shutil.which("gcc") or ""]
    path = shutil.which(cmd[0]) if cmd and cmd[0] else None
    if path is None:
        return None, (f"the compiler CC={cc!r} is not found" if cc else "no C compiler (cc)")
    try:
        done = subprocess.run(
            [*cmd, "--version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError) as err:
        return None, f"{' '.join(cmd)} --version failed: {err}"
    version = (done.stdout.splitlines() or [""])[0]
    return cmd, f"{os.path.realpath(path)} {' '.join(cmd[1:])} ({version})"


def _cached(cache: Path, name: str, fields: dict, compiler: str | None) -> Path | None:
    """The library that ``cache`` holds for the build ``name``, if its manifest matches
    ``fields`` (and ``compiler``, when given) and the library its recorded hash."""
    manifest = cache / f"{name}.json"
    try:
        if _unsafe(manifest, "file") is not None:
            return None
        data = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("fields") != fields:
        return None
    if compiler is not None and data.get("compiler") != compiler:
        return None  # another compiler (or version) now: rebuild
    lib = data.get("library")
    if not isinstance(lib, str) or not lib.startswith(name) or "/" in lib:
        return None
    path = cache / lib
    try:
        if _unsafe(path, "file") is not None or _sha256(path.read_bytes()) != data.get("sha256"):
            return None
    except OSError:
        return None
    return path


def _build(cache: Path, name: str, real: str, cmd: list[str], fields: dict, compiler: str):
    """Compile the library into ``cache`` (a temporary file renamed into place) and write
    its manifest (likewise, last); return the library's path."""
    with tempfile.TemporaryDirectory(dir=cache, prefix=".build-") as tmp:
        obj, lib = Path(tmp) / "native.o", Path(tmp) / "native.so"
        steps = (
            [*cmd, *_COMPILE, *_defines(real), "-c", str(_SOURCE), "-o", str(obj)],
            [*cmd, "-shared", str(obj), "-o", str(lib), *_libraries()],
        )
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise _Unavailable(f"{' '.join(step)} failed: {done.stderr.strip()[:500]}")
        os.chmod(lib, 0o700)
        digest = _sha256(lib.read_bytes())
        target = cache / f"{name}-{digest[:16]}.so"
        manifest = Path(tmp) / "manifest.json"
        record = {"library": target.name, "sha256": digest, "compiler": compiler}
        manifest.write_text(json.dumps(record | {"fields": fields}, indent=1))
        os.chmod(manifest, 0o600)
        os.replace(lib, target)  # atomic: concurrent builders all see whole files
        os.replace(manifest, cache / f"{name}.json")
    return target


def _locate(real: str) -> tuple[Path, str | None]:
    """The verified library for ``real`` (cached, or built now) and the private temporary
    directory to remove once it is loaded (``None`` for the cache)."""
    fields = _fields(real)
    name = _build_name(real, fields)
    cmd, about = _compiler()
    compiler = about if cmd is not None else None
    cache, why = _cache_dir()
    if cache is not None:
        found = _cached(cache, name, fields, compiler)
        if found is not None:
            return found, None
        if cmd is None:
            raise _Unavailable(f"{about} on PATH and no valid cached library in {cache}")
        if _writable(cache):
            try:
                return _build(cache, name, real, cmd, fields, about), None
            except OSError as err:
                why = f"cannot write to {cache}: {err}"
        else:
            why = f"{cache} is read-only"
    if cmd is None:
        raise _Unavailable(f"{about} on PATH; {why}")
    _note(f"not using the cache directory ({why}); building in a private temporary directory")
    tmp = tempfile.mkdtemp(prefix="rnngraph-native-")
    try:
        return _build(Path(tmp), name, real, cmd, fields, about), tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _load(dtype: torch.dtype) -> Any:
    if not sys.platform.startswith("linux"):
        raise _Unavailable(f"native loops are built on Linux only, not on {sys.platform}")
    global _serial
    try:
        path, tmp = _locate(_REALS[dtype])
    except _Unavailable as err:
        if not _gnu_openmp() or "-fopenmp" not in str(err):
            raise
        _serial = True  # the compiler has no OpenMP: the row groups run one after another
        _note(f"building the native loops without -fopenmp ({err}); row groups run in turn")
        path, tmp = _locate(_REALS[dtype])
    try:
        lib = ctypes.CDLL(str(path))
    finally:
        if tmp is not None:  # the mapping outlives the file
            shutil.rmtree(tmp, ignore_errors=True)
    real = ctypes.c_double if dtype == torch.float64 else ctypes.c_float
    codes = {"i": ctypes.c_int64, "p": ctypes.c_void_p, "r": real}
    for name, sig in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = None, [codes[c] for c in sig]
    return lib


def _library(dtype: torch.dtype) -> Any:
    global _failure
    if dtype in _libs:
        return _libs[dtype]
    lib = None
    if dtype in _REALS and _failure is None:
        try:
            lib = _load(dtype)
        except (_Unavailable, OSError, AttributeError, subprocess.SubprocessError) as err:
            _failure = str(err)
            _note(f"native loops unavailable, running the torch loops: {_failure}")
    _libs[dtype] = lib
    return lib


def _lib_for(dtype: torch.dtype, device: torch.device) -> Any:
    """The library for tensors of this dtype and device, or ``None`` when native code does
    not apply (switched off, not on the CPU, not float32/64, or no library)."""
    if not _enabled or device.type != "cpu" or dtype not in _REALS:
        return None
    return _library(dtype)


def unavailable(dtype: torch.dtype, device: torch.device) -> str | None:
    """Why native code cannot serve tensors of this dtype and device (switched off, not on
    the CPU, not float32/64, no library), or ``None`` when it can."""
    if not _enabled:
        return "native loops are switched off (RNNGRAPH_NATIVE=0 or set_enabled(False))"
    if device.type != "cpu":
        return f"not on the CPU ({device.type})"
    if dtype not in _REALS:
        return f"dtype {dtype} (native loops are float32/float64)"
    if _library(dtype) is None:
        return f"the native library is unavailable: {_failure}"
    return None


def _describe(t: Tensor) -> str:
    layout = "" if t.layout == torch.strided else f" {t.layout}"
    return f"{tuple(t.shape)} {t.dtype}{layout} tensor on {t.device}"


def _check(where: str, what: str, t: Tensor, shape: tuple, dtype: torch.dtype) -> Tensor:
    """``t`` as the C code reads it (contiguous), after checking its shape, dtype, device
    and layout against ``shape`` and ``dtype``; a ``ValueError`` naming ``where`` and
    ``what`` otherwise (a C loop would read past its end or misread its values)."""
    if (
        tuple(t.shape) != tuple(shape)
        or t.dtype != dtype
        or t.device.type != "cpu"
        or t.layout != torch.strided
    ):
        raise ValueError(
            f"{where}: {what} is a {_describe(t)}, expected a {tuple(shape)} {dtype} tensor "
            "on the CPU; change values in place with the same shape and dtype "
            "(e.g. edge.weight.data.copy_(w)), or rebuild the edge or node"
        )
    return t.contiguous()


def _aligned(where: str, n: int, dtype: torch.dtype, **tensors: Tensor) -> tuple[Tensor, ...]:
    """The tensors broadcast to one shape (only if they differ) and contiguous, as the C
    loops read them, after checking they hold rows of ``n`` values of ``dtype``."""
    ts = list(tensors.values())
    shape = ts[0].shape
    if any(t.shape != shape for t in ts[1:]):
        try:
            shape = torch.broadcast_shapes(*(t.shape for t in ts))
        except RuntimeError:
            shape = ()  # refused below
    if len(shape) == 0 or shape[-1] != n:
        got = ", ".join(f"{k} {tuple(t.shape)}" for k, t in tensors.items())
        raise ValueError(f"{where}: expected rows of {n} units, got {got}")
    return tuple(_check(where, k, t.expand(shape), tuple(shape), dtype) for k, t in tensors.items())


def _plain(t: Tensor, dtype: torch.dtype) -> bool:
    """Whether ``t`` is a contiguous CPU array of ``dtype`` (the per-step fast check)."""
    return t.dtype is dtype and t.is_cpu and t.layout is torch.strided and t.is_contiguous()


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def vector(where: str, what: str, value: Any, n: int, dtype: torch.dtype) -> Tensor:
    """A scalar or per-unit parameter as a contiguous ``(n,)`` array of ``dtype``
    (Python numbers are read in float64, so nothing passes through float32)."""
    if not isinstance(value, Tensor):
        value = torch.as_tensor(value, dtype=torch.float64)
    value = value.detach()
    if value.numel() not in (1, n) or value.layout != torch.strided:
        raise ValueError(
            f"{where}: {what} is a {_describe(value)}, expected a scalar or {n} values "
            "(one per unit)"
        )
    if value.is_complex():
        raise ValueError(f"{where}: {what} is a {_describe(value)}, expected real values")
    return torch.broadcast_to(value.to("cpu", dtype).reshape(-1), (n,)).contiguous()


def int32_indices(w: Tensor) -> bool:
    """Whether the C loops can index the weights ``w`` (int32 CSR indices)."""
    return w.layout != torch.sparse_csr or w._nnz() < 2**31


#: A dense recurrent matrix with at most this fraction of nonzeros runs as CSR in the C loop:
#: the product then costs about the nonzeros, and the sum is the same up to rounding.
DENSE_TO_CSR = 0.25

#: module -> (a copy of the dense weights, their CSR arrays): the CSR arrays are reused while
#: the weights equal the copy. Compared value for value at every run (about a tenth of the
#: cost of a conversion), so no write can be missed: ``.data``, ``mul_`` or a numpy view
#: leave ``_version`` alone
_layouts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _csr_arrays(w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """int32 ``(indptr, indices)`` and the values of ``w`` in CSR, contiguous."""
    if w.layout != torch.sparse_csr:
        w = quiet_csr(w.to_sparse_csr)
    indptr, indices = (t.to(torch.int32).contiguous() for t in (w.crow_indices(), w.col_indices()))
    return indptr, indices, w.values().contiguous()


def recurrent_layout(owner: Any, w: Tensor) -> tuple[Tensor | None, tuple]:
    """``(W, (indptr, indices, values))`` for the C loop, from the current weights ``w`` of
    the edge ``owner`` (the key of the cached CSR arrays): a contiguous dense ``W`` (``None``
    for sparse weights) and int32 CSR arrays (``None`` each for dense weights with more
    than :data:`DENSE_TO_CSR` nonzeros). With both, the C loop takes the CSR product, and
    the dense one at a step with non-finite inputs."""
    module = owner
    w = w.detach()
    if w.layout == torch.sparse_csr:
        return None, _csr_arrays(w)
    if w.layout != torch.strided:
        return w, (None, None, None)  # refused by the caller's check
    w = w.contiguous()
    if bool((w != 0).sum() > DENSE_TO_CSR * w.numel()):
        _layouts.pop(module, None)
        return w, (None, None, None)
    cached = _layouts.get(module)
    if cached is not None and cached[0].shape == w.shape and cached[0].dtype == w.dtype:
        if torch.equal(cached[0], w):
            return w, cached[1]
    csr = _csr_arrays(w)
    _layouts[module] = (w.clone(), csr)
    return w, csr


def _check_csr(where: str, what: str, csr: tuple, n: int, dtype: torch.dtype) -> tuple:
    """The CSR arrays of an ``(n, n)`` matrix, checked: lengths, dtypes, row pointers from 0
    to the number of nonzeros, never decreasing, and column indices in ``[0, n)``."""
    indptr, indices, vals = csr
    if indptr is None:
        return csr
    nnz = indices.shape[0] if indices.dim() == 1 else -1
    indptr = _check(where, f"{what} (CSR row pointers)", indptr, (n + 1,), torch.int32)
    indices = _check(where, f"{what} (CSR column indices)", indices, (max(nnz, 0),), torch.int32)
    vals = _check(where, f"{what} (CSR values)", vals, (max(nnz, 0),), dtype)
    ok = int(indptr[0]) == 0 and int(indptr[-1]) == nnz and bool((indptr.diff() >= 0).all())
    if not ok or (nnz > 0 and (int(indices.min()) < 0 or int(indices.max()) >= n)):
        raise ValueError(
            f"{where}: {what} is not a valid ({n}, {n}) CSR matrix (row pointers from 0 to "
            f"{nnz}, column indices in [0, {n}))"
        )
    return indptr, indices, vals


class ReservoirRun:
    r"""A native reservoir loop over one run: the recurrent weights, the per-unit
    coefficients and the state, each checked against the shapes and dtype the C loop reads.

    ``kind`` ``"esn"``: :math:`x \leftarrow \mathrm{lerp}(x, \tanh(P + g\,W x_p + b), \lambda)`
    with coefficients ``(lr, b)``; ``"li"``: :math:`v \leftarrow g v + c_{rec} (W x_{prev}) +
    c_{ext} P + c_0`, :math:`x = \tanh(v)`, coefficients ``(g, c_rec, c_ext, c_0)``;
    ``"gain"``: :math:`r \leftarrow (1 - \lambda) r + \lambda (W x_{prev} + P + c)`,
    :math:`x = f(a r + b)`, coefficients ``(lr, c, a, b)``.
    ``where`` names the public call and the node in errors, ``edge`` the recurrent edge
    (``owner`` keys its cached CSR layout), ``state`` is ``(x, x_prev)``, ``(m, n)`` for
    ``m`` rows (``"li"``: one).

    ``"esn"`` with ``m > 1`` rows: the coefficients may also be ``(m, n)``, one set per row,
    and ``gain`` ``(m,)`` scales the recurrent product of each row (rows whose weights are
    one matrix up to a factor: an ensemble of reservoirs drawn from one seed); with CSR
    weights every nonzero is read once per step for all rows.

    ``threads`` (default: torch's) caps the threads the rows of one chunk are split over;
    ``mix`` (``"esn"``) is the dense ``(n, n)`` matrix :math:`M` of a leaky map that mixes
    the previous values, :math:`\mathrm{lerp}(M x, \tanh(\dots), \lambda)` (ES2N).

    ``feedback`` (``"esn"``, one row): a linear readout of the node fed back into its
    recurrent input one step later, ``(A, R, rb, z)``: :math:`W x_p` becomes :math:`W x_p +
    A z` with :math:`z(t) = R\,x(t) + r_b` (``A`` ``(n, c)``, ``R`` ``(c, n)``, ``rb``
    ``(c,)`` or ``None``, ``z`` ``(1, c)`` what the first step reads).

    ``rule`` (``"gain"``): ``(sigmoid, numbers, start, targets)``: :math:`f` is the logistic
    sigmoid when ``sigmoid`` is true (else tanh); with ``numbers`` (:math:`\eta, c_0, \dots,
    c_3` of an :class:`~rnngraph.nodes.IntrinsicRule`, else ``None``) every step from the
    run's ``start``-th adds the rule's step to the loop's :math:`a, b`, which are copied into
    ``targets`` (the node's own tensors) after every chunk.
    """

    def __init__(
        self,
        kind: str,
        where: str,
        edge: str,
        owner: Any,
        weight: Tensor,
        coef: list[Tensor],
        state: tuple[Tensor, Tensor],
        feedback: tuple[Tensor, Tensor, Tensor | None, Tensor] | None = None,
        gain: Tensor | None = None,
        threads: int | None = None,
        mix: Tensor | None = None,
        rule: tuple | None = None,
    ) -> None:
        x, prev = state
        n, dtype = x.shape[-1], x.dtype
        self.where = where
        what = f"the weight of edge {edge!r}"
        self.lib, self.kind, self.n, self.batch = _library(dtype), kind, n, x.shape[0]
        if self.batch != 1 and (kind != "esn" or feedback is not None):
            raise ValueError(
                f"{where}: the native {kind} loop runs batch 1 (a batch runs in the echo-state "
                f"loop without a fed-back readout), got batch {self.batch}"
            )
        W, csr = recurrent_layout(owner, weight)
        self.W = None if W is None else _check(where, what, W, (n, n), dtype)
        self.csr = _check_csr(where, what, csr, n, dtype)
        self.coef, self.cs = self._coefficients(where, coef, n, dtype)
        self.gain = None if gain is None else _check(where, "the gain", gain, (self.batch,), dtype)
        shape = (self.batch, n)
        self.x = _check(where, "the state of the node", x.detach(), shape, dtype).clone()
        what = f"the delay line of edge {edge!r}"
        self.prev = _check(where, what, prev.detach(), shape, dtype)
        self.u = torch.empty(shape, dtype=dtype)
        if mix is not None and kind != "esn":
            raise ValueError(f"{where}: a mixing matrix runs in the echo-state loop only")
        self.mix = None if mix is None else _check(where, "the mixing matrix", mix, (n, n), dtype)
        self.v = torch.empty(shape if mix is not None else (1,), dtype=dtype)
        self.rows = row_groups(self.batch, threads) if kind == "esn" else [(0, 1)]
        bounds = [r0 for r0, _ in self.rows] + [self.rows[-1][1]]
        self.bounds = torch.tensor(bounds, dtype=torch.int64)
        # the C loop's blocks of rows: up to 16 (float; 8 for double), the last one padded
        blocks = sum(-(-(r1 - r0) // 16) for r0, r1 in self.rows)
        self.scratch = torch.empty(2 * 16 * blocks * n, dtype=dtype)
        # what every chunk passes: the weights and the per-unit coefficients
        weights = [_ptr(self.W), *map(_ptr, self.csr)]
        self.consts = weights + [_ptr(c) for c in self.coef]
        self.z, self.fed = None, [0, None, None, None, None]
        if feedback is not None:
            self.fed = self._feedback(kind, where, feedback, n, dtype)
        self.t, self.rule = 0, None
        if kind == "gain":
            self.rule = self._gain_rule(where, rule, dtype)

    def _gain_rule(self, where: str, rule: tuple | None, dtype) -> tuple:
        """The gain loop's activation flag, rule numbers (or ``None``), first plastic step
        and write-back targets; its gains and shifts become the loop's own copies."""
        sigmoid, numbers, start, targets = rule if rule is not None else (False, None, 0, None)
        if numbers is not None:
            numbers = _check(where, "the rule's numbers", numbers, (5,), dtype)
            self.coef[2:] = [c.clone() for c in self.coef[2:]]
            self.consts[-2:] = [_ptr(c) for c in self.coef[2:]]
        return int(bool(sigmoid)), numbers, int(start), targets

    def _coefficients(self, where: str, coef: list, n: int, dtype) -> tuple[list[Tensor], int]:
        """The coefficients as ``(n,)`` vectors (row stride 0), or, for an ``"esn"`` loop
        given one ``(m, n)`` set per row, as contiguous ``(m, n)`` arrays (stride ``n``)."""
        m = self.batch
        if m == 1 or not any(isinstance(c, Tensor) and c.dim() == 2 for c in coef):
            return [vector(where, "a coefficient", c, n, dtype) for c in coef], 0
        rows = []
        for c in coef:
            c = torch.as_tensor(c, dtype=torch.float64) if not isinstance(c, Tensor) else c
            if c.dim() > 2 or c.dim() == 2 and tuple(c.shape) not in ((m, n), (1, n), (m, 1)):
                raise ValueError(
                    f"{where}: a coefficient is a {_describe(c)}, expected a scalar, {n} "
                    f"values or one row of {n} per sample ({m}, {n})"
                )
            rows.append(torch.broadcast_to(c.detach().to("cpu", dtype), (m, n)).contiguous())
        return rows, n

    def _feedback(self, kind: str, where: str, feedback: tuple, n: int, dtype) -> list:
        """The C loop's readout-feedback arguments, checked (see the class docstring)."""
        if kind != "esn":
            raise ValueError(f"{where}: a fed-back readout runs in the echo-state loop only")
        A, R, rb, z = feedback
        c = z.shape[-1] if isinstance(z, Tensor) else -1
        self._A = _check(where, "the feedback weights", A.detach(), (n, c), dtype)
        self._R = _check(where, "the readout weights", R.detach(), (c, n), dtype)
        self._rb = (
            None if rb is None else _check(where, "the readout bias", rb.detach(), (c,), dtype)
        )
        self.z = _check(where, "the fed-back readout", z.detach(), (1, c), dtype).clone()
        return [c, _ptr(self._A), _ptr(self._R), _ptr(self._rb), _ptr(self.z)]

    def chunk(self, P: Tensor | None, n_steps: int, out: Tensor) -> tuple[Tensor, Tensor]:
        """Run ``n_steps`` steps with the projected input ``P`` (``(n_steps, B, n)``, or
        ``None`` for none), writing the node's output into ``out`` (a contiguous
        ``(n_steps, B, n)`` tensor); return it and the node's state variable for every step
        (the same tensor for ``leaky_tanh``)."""
        n, m, dtype = self.n, self.batch, self.x.dtype
        if P is None:
            P, stride = torch.zeros(m, n, dtype=dtype), 0
        else:
            if P.dim() == 0 or P.shape[-1] != n or P.dtype != dtype or P.device.type != "cpu":
                raise ValueError(
                    f"{self.where}: the input into the node is a {_describe(P)}, expected "
                    f"({n_steps}, {m}, {n}) {dtype} on the CPU"
                )
            P, stride = P.expand(n_steps, m, n).contiguous(), m * n
        out = _check(self.where, "the output buffer", out, (n_steps, m, n), dtype)
        head = [n_steps, m, n] if self.kind == "esn" else [n_steps, n]
        if self.kind == "esn":
            self._esn(P, stride, out)
            V = out
        elif self.kind == "gain":
            V = torch.empty(n_steps, m, n, dtype=dtype)
            self._gain(P, stride, out, V)
        else:
            args = [*head, _ptr(P), stride, *self.consts, _ptr(self.x), _ptr(self.prev)]
            V = torch.empty(n_steps, m, n, dtype=dtype)
            self.lib.li_run(*args, _ptr(out), _ptr(V), _ptr(self.u))
        # a copy: a view would keep the chunk's buffer from being reused for the next one
        self.prev = out[-1].clone()
        return out, V

    def _gain(self, P: Tensor, stride: int, out: Tensor, V: Tensor) -> None:
        """The gain loop over a chunk (its rule from the run's ``start``-th step), then the
        gains and shifts copied into the rule's targets."""
        sigmoid, numbers, start, targets = self.rule
        steps = out.shape[0]
        plastic = [sigmoid, _ptr(numbers), max(0, start - self.t)]
        args = [steps, self.n, _ptr(P), stride, *self.consts, *plastic, _ptr(self.x)]
        self.lib.gain_run(*args, _ptr(self.prev), _ptr(out), _ptr(V), _ptr(self.u))
        self.t += steps
        if numbers is not None and targets is not None:
            with torch.no_grad():
                for target, value in zip(targets, self.coef[2:], strict=True):
                    target.copy_(value.view_as(target))

    def _esn(self, P: Tensor, stride: int, out: Tensor) -> None:
        """The echo-state loop over a chunk: the row groups in parallel (OpenMP threads, in
        the C loop), each one loop over all steps."""
        steps, m, n = out.shape
        head = [steps, m, n, _ptr(P), stride, *self.consts, self.cs]
        state = [_ptr(self.gain), _ptr(self.x), _ptr(self.prev), _ptr(out), m * n, _ptr(self.u)]
        v = _ptr(self.v) if self.mix is not None else None
        mixing = [_ptr(self.scratch), _ptr(self.mix), v]
        groups = [len(self.rows), _ptr(self.bounds)]
        self.lib.esn_run(*head, *state, *mixing, *self.fed, *groups)

    def state(self) -> tuple[Tensor, Tensor]:
        """The loop's state: the node's variable and the delay line (a copy)."""
        return self.x, self.prev.clone()


#: rows of a batch below which the native echo-state loop runs them in one thread
ROWS_PER_THREAD = 8
_pool: dict[int, Any] = {}


def row_groups(batch: int, threads: int | None = None) -> list[tuple[int, int]]:
    """The row ranges ``[r0, r1)`` of a batch that the native echo-state loop runs in
    parallel threads: as many as ``threads`` (default: torch's intra-op threads,
    ``torch.get_num_threads()``), at least :data:`ROWS_PER_THREAD` rows each, sized in
    multiples of 8."""
    threads = torch.get_num_threads() if threads is None else threads
    k = max(1, min(threads, batch // ROWS_PER_THREAD))
    size = -(-batch // k)
    size = -(-size // 8) * 8 if size > 8 else size
    return [(r0, min(r0 + size, batch)) for r0 in range(0, batch, size)]


def in_threads(fn: Any, parts: list[tuple]) -> None:
    """``fn(*part)`` for every part, in a pool of threads (the C calls release the GIL);
    the first exception raised is raised here once all parts are done."""
    if len(parts) == 1:
        fn(*parts[0])
        return
    pool = _pool.get(len(parts))
    if pool is None:
        pool = _pool[len(parts)] = ThreadPoolExecutor(len(parts), "rnngraph-native")
    for future in [pool.submit(fn, *part) for part in parts]:
        future.result()


def rls_update(
    P: Tensor, w: Tensor, b: Tensor | None, r: Tensor, target: Tensor, forgetting: float
) -> Tensor | None:
    """One RLS update from one sample in C (``_native.c``: ``rls_update``), in place, with
    only the upper triangle of ``P`` read and written. Returns the a-priori error
    ``(1, n_out)``, or ``None`` (nothing done) when the native path does not apply: batch
    > 1, not on the CPU, mixed dtypes, non-contiguous tensors or no library. Shapes that do
    not fit together raise a ``ValueError``."""
    dtype = P.dtype
    lib = _lib_for(dtype, P.device)
    if lib is None or r.dim() != 2 or r.shape[0] != 1:
        return None
    tensors = (P, w, r, target) + (() if b is None else (b,))
    if not all(
        t.dtype == dtype and t.is_contiguous() and not t.requires_grad and t.device == P.device
        for t in tensors
    ):
        return None
    where, n = "RLS.update (native)", r.shape[1]
    n_out = w.shape[0] if w.dim() == 2 else -1
    _check(where, "the readout weights w", w, (max(n_out, 0), n), dtype)
    f_dim = n + (b is not None)
    _check(where, "the inverse correlation matrix P", P, (f_dim, f_dim), dtype)
    _check(where, "the target", target, (1, n_out), dtype)
    if b is not None:
        _check(where, "the readout bias b", b, (n_out,), dtype)
    err = torch.empty(1, n_out, dtype=dtype)
    k = torch.empty(f_dim, dtype=dtype)
    lib.rls_update(
        f_dim, n, n_out, _ptr(P), _ptr(r), _ptr(w), _ptr(b), _ptr(target), _ptr(err),
        forgetting, _ptr(k),
    )  # fmt: skip
    return err


def _lms_library(w: Tensor, b: Tensor | None, rows: tuple[Tensor, ...]) -> Any:
    """The library for LMS updates of ``w`` (and ``b``) from the 2-D ``rows`` (features and
    targets, each row contiguous), or ``None`` where native code does not apply: not on the
    CPU, mixed dtypes or devices, a weight that requires a gradient, no library."""
    dtype = w.dtype
    lib = _lib_for(dtype, w.device)
    whole = (w,) + (() if b is None else (b,))
    if (
        lib is None
        or w.dim() != 2
        or any(t.dim() != 2 or t.stride(1) != 1 for t in rows)
        or not all(t.is_contiguous() for t in whole)
        or any(t.dtype != dtype or t.device != w.device or t.requires_grad for t in whole + rows)
    ):
        return None
    return lib


def lms_update(
    w: Tensor, b: Tensor | None, r: Tensor, target: Tensor, rate: float
) -> Tensor | None:
    """One LMS update from one sample in C (``_native.c``: ``lms_update``), in place:
    ``e = W r + b - y``, ``W -= rate e r^T``, ``b -= rate e``. Returns the a-priori error
    ``(1, n_out)``, or ``None`` (nothing done) where the native path does not apply: batch
    > 1, not on the CPU, mixed dtypes, non-contiguous tensors or no library."""
    lib = _lms_library(w, b, (r, target))
    if lib is None or r.shape[0] != 1:
        return None
    dtype, where, (n_out, n) = w.dtype, "LMS.update (native)", w.shape
    _check(where, "the features r", r, (1, n), dtype)
    _check(where, "the target", target, (1, n_out), dtype)
    if b is not None:
        _check(where, "the readout bias b", b, (n_out,), dtype)
    err = torch.empty(1, n_out, dtype=dtype)
    lib.lms_update(n_out, n, _ptr(w), _ptr(b), _ptr(r), _ptr(target), rate, _ptr(err))
    return err


def lms_run(w: Tensor, b: Tensor | None, r: Tensor, target: Tensor, rates: Tensor) -> Tensor | None:
    """``m`` LMS updates one after another in C (``lms_run``: ``lms_update`` per sample), in
    place, from the features ``r`` ``(m, N)`` and targets ``(m, n_out)`` (rows may be
    strided) with one rate per update ``rates`` ``(m,)``. Returns the a-priori errors
    ``(m, n_out)``, or ``None`` (nothing done) where the native path does not apply (see
    :func:`lms_update`)."""
    lib = _lms_library(w, b, (r, target))
    if lib is None:
        return None
    dtype, (n_out, n), m = w.dtype, w.shape, r.shape[0]
    where = "LMS.replay (native)"
    if r.shape != (m, n) or target.shape != (m, n_out) or b is not None and b.shape != (n_out,):
        raise ValueError(
            f"{where}: expected features ({m}, {n}), targets ({m}, {n_out}) and a bias "
            f"({n_out},), got {tuple(r.shape)}, {tuple(target.shape)} and "
            f"{None if b is None else tuple(b.shape)}"
        )
    rates = _check(where, "the rates", rates.to(dtype), (m,), dtype)
    err = torch.empty(m, n_out, dtype=dtype)
    lib.lms_run(
        m, n_out, n, _ptr(w), _ptr(b), _ptr(r), r.stride(0), _ptr(target), target.stride(0),
        _ptr(rates), _ptr(err),
    )  # fmt: skip
    return err


def leaky_tanh_step(lr: Tensor, bias: Tensor, n: int, where: str = "LeakyTanh step") -> Any:
    """A no-gradient step ``x, I -> lerp(x, tanh(I + bias), lr)`` in C (``leaky_tanh``), or
    ``None`` when the native path does not apply (on the CPU in float32/64 only). One
    vectorised pass instead of three torch calls; torch's ``tanh`` alone costs more.
    ``where`` names the node in errors about shapes and dtypes."""
    lib = _lib_for(lr.dtype, lr.device)
    if lib is None:
        return None
    dtype = lr.dtype
    lr_v, b_v = (vector(where, k, v, n, dtype) for k, v in (("lr", lr), ("bias", bias)))

    def step(x: Tensor, I: Tensor) -> Tensor:  # noqa: E741
        if not (
            x.shape == I.shape and x.shape[-1:] == (n,) and _plain(x, dtype) and _plain(I, dtype)
        ):
            x, I = _aligned(where, n, dtype, state=x, input=I)  # noqa: E741
        out = torch.empty_like(x)
        lib.leaky_tanh(out.numel() // n, n, _ptr(out), _ptr(x), _ptr(I), _ptr(lr_v), _ptr(b_v))
        return out

    return step


def lif_step(
    n: int,
    dtype: torch.dtype,
    device: torch.device,
    subtract: bool,
    where: str = "LIF step",
    **params: Any,
) -> Any:
    """The no-gradient LIF step of ``lif_kernel_nograd`` in C (``lif_step``): one pass
    instead of about ten torch calls, or ``None`` when the native path does not apply.
    ``params``: ``u0, r_m, g, th, v_reset, drop, hold``, scalars or ``(n,)``; the step is
    refractory when some ``hold`` is positive (else ``ref`` is neither read nor changed, as
    in the torch step). ``where`` names the node in errors about shapes and dtypes."""
    lib = _lib_for(dtype, device)
    if lib is None:
        return None
    names = ("u0", "r_m", "g", "th", "v_reset", "drop", "hold")
    consts = [vector(where, k, params[k], n, dtype) for k in names]
    ptrs = [_ptr(c) for c in consts]
    refractory = int(bool((consts[-1] > 0).any()))

    def step(I: Tensor, v: Tensor, z: Tensor, ref: Tensor) -> tuple[Tensor, Tensor, Tensor]:  # noqa: E741
        shape = v.shape
        if not (
            shape[-1:] == (n,)
            and I.shape == z.shape == ref.shape == shape
            and all(_plain(t, dtype) for t in (I, v, z, ref))
        ):
            I, v, z, ref = _aligned(where, n, dtype, input=I, v=v, z=z, ref=ref)  # noqa: E741
        out = torch.empty((3, *v.shape), dtype=dtype)
        v_out, z_out, ref_out = out.unbind(0)
        lib.lif_step(
            v.numel() // n,
            n,
            *(_ptr(t) for t in (I, v, z, ref, v_out, z_out, ref_out)),
            *ptrs,
            int(subtract),
            refractory,
        )
        return v_out, z_out, ref_out

    step.consts = consts  # keep the constants alive with the closure
    return step


def events_usable(dtype: torch.dtype, device: torch.device) -> bool:
    """Whether :func:`event_addmm` can run for tensors of this dtype and device."""
    return _lib_for(dtype, device) is not None


def event_addmm(acc: Tensor | None, z: Tensor, Wt: Tensor) -> Tensor:
    """``acc + z @ Wt`` for spikes ``z`` ``(m, n_in)`` (mostly zeros) and ``Wt``
    ``(n_in, n_out)``, adding only the rows of ``Wt`` of units that spiked (C
    ``event_add``). ``acc`` broadcasts to ``(m, n_out)``; ``None`` is zero. NaN and
    infinite spikes or ``acc`` give torch's results; non-finite weights of a silent unit
    are skipped (the dense product gives ``0 * inf = NaN``)."""
    dtype = Wt.dtype
    lib = _libs.get(dtype) if _enabled else None
    if (  # the per-step fast check: plain arrays that fit, acc of the output's shape
        lib is not None
        and z.dim() == Wt.dim() == 2
        and z.shape[1] == Wt.shape[0]
        and _plain(z, dtype)
        and _plain(Wt, dtype)
        and (acc is None or (acc.dtype is dtype and acc.is_cpu and acc.dim() <= 2))
    ):
        (m, n_in), n_out = z.shape, Wt.shape[1]
        if acc is None:
            out = torch.zeros(m, n_out, dtype=dtype)
        else:
            out = torch.empty(m, n_out, dtype=dtype)
            try:
                out.copy_(acc)
            except RuntimeError:
                return _event_addmm_checked(acc, z, Wt)
        lib.event_add(m, n_in, n_out, z.data_ptr(), Wt.data_ptr(), out.data_ptr())
        return out
    return _event_addmm_checked(acc, z, Wt)


def _event_addmm_checked(acc: Tensor | None, z: Tensor, Wt: Tensor) -> Tensor:
    """:func:`event_addmm` for arguments off its fast path: broadcast, made contiguous, or
    refused with an error that says what was expected."""
    where = "CompiledNetwork.run (event-driven input from a spiking node)"
    dtype = Wt.dtype
    lib = _lib_for(dtype, Wt.device)
    if lib is None or Wt.dim() != 2 or z.dim() != 2:
        raise ValueError(
            f"{where}: needs 2-D float32/float64 CPU tensors, got spikes {_describe(z)} "
            f"and weights {_describe(Wt)}"
        )
    (m, n_in), n_out = z.shape, Wt.shape[1]
    z = _check(where, "the spikes", z, (m, n_in), dtype)
    Wt = _check(
        where, f"the weights (transposed) for {n_in} source units", Wt, (n_in, n_out), dtype
    )
    out = torch.zeros(m, n_out, dtype=dtype) if acc is None else torch.empty(m, n_out, dtype=dtype)
    if acc is not None:
        if acc.dtype != dtype or acc.device.type != "cpu" or acc.dim() > 2:
            raise ValueError(f"{where}: the input sum is a {_describe(acc)}, expected {dtype}")
        try:
            out.copy_(acc)
        except RuntimeError:
            raise ValueError(
                f"{where}: the input sum is a {_describe(acc)}, expected a tensor that "
                f"broadcasts to ({m}, {n_out})"
            ) from None
    lib.event_add(m, n_in, n_out, _ptr(z), _ptr(Wt), _ptr(out))
    return out
