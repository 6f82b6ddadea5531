"""Checks of user input shared by every public call: array-likes to tensors, integers,
step sizes and keyword arguments, each failing with an error that names the call."""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "all_finite",
    "as_device",
    "as_flag",
    "as_float_dtype",
    "as_names",
    "as_tensor",
    "as_int",
    "as_step",
    "check_finite",
    "describe",
    "keywords",
]

F = TypeVar("F", bound=Callable[..., Any])


def all_finite(x: Tensor, dtype: torch.dtype | None = None) -> bool:
    """Whether every value of the sequence ``x`` ``(B, T, ...)`` is finite (in ``dtype``,
    when given, as a conversion to it may overflow).

    ``isfinite(x).all()`` would allocate an ``abs`` copy and boolean masks of ``x``'s size.
    A finite sum proves every value finite (NaN and inf propagate into any sum); only a sum
    that is not finite (or overflows) is checked again, a block of steps at a time.
    """
    # a Python float of the sum: torch.isfinite costs several operations
    same = dtype is None or dtype == x.dtype
    if same and x.numel() == 1:  # one step of one channel: its value, without a sum
        return math.isfinite(x.item())
    if same and not x.requires_grad and math.isfinite(x.sum().item()):
        return True
    with torch.no_grad():
        if same and math.isfinite(x.sum().item()):
            return True
        span = max(1, (1 << 16) // max(1, x[:, :1].numel()))
        return all(
            bool(torch.isfinite(x[:, t : t + span].to(dtype or x.dtype)).all())
            for t in range(0, x.shape[1], span)
        )


def _scalar(value: Any) -> Any:
    """The Python number in a one-element tensor or array; anything else as it is."""
    if isinstance(value, Tensor) and value.numel() == 1 and value.layout == torch.strided:
        return value.reshape(()).item()
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "biuf":
        return value.reshape(()).item()
    return value


def describe(value: Any) -> str:
    """A short description of ``value`` for an error message: a number as it is, a tensor
    or array by shape and dtype, anything else by type."""
    value = _scalar(value)
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        value = value.item()
    if isinstance(value, Tensor | np.ndarray):
        return f"{type(value).__name__} of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, bool | numbers.Number | str | type(None)):
        return repr(value)
    return type(value).__name__


def as_tensor(
    where: str,
    name: str,
    value: Any,
    dtype: torch.dtype | None = None,
    device: Any = None,
    copy: bool = True,
) -> Tensor:
    """``value`` (a number, nested sequence, NumPy array of any strides or tensor) as a
    dense tensor of real numbers.

    Parameters
    ----------
    where, name : str
        The public call and the argument, for error messages.
    value : array-like or tensor
        Bool, integer or floating values; object, string and complex arrays are refused.
    dtype, device : optional
        Converted to these when given.
    copy : bool
        Whether the result must own its memory (never a view of the caller's array) and
        be detached from autograd; without, a tensor keeps its autograd graph.

    Raises
    ------
    TypeError
        When ``value`` is not an array of real numbers.
    """
    if isinstance(value, Tensor):
        if value.layout != torch.strided:
            raise TypeError(f"{where}: {name} must be a dense tensor, got layout {value.layout}")
        t = value.detach() if copy else value  # a view keeps the caller's autograd graph
    else:
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError) as err:  # ragged nesting, unconvertible objects
            raise TypeError(
                f"{where}: {name} must be a number, an array of numbers or a tensor, "
                f"got {describe(value)} ({err})"
            ) from None
        if arr.dtype.kind not in "biuf":
            raise TypeError(
                f"{where}: {name} must be real numbers, got an array of dtype {arr.dtype}"
            )
        t = torch.from_numpy(_torch_ready(arr))
    if t.is_complex():
        raise TypeError(f"{where}: {name} must be real numbers, got dtype {t.dtype}")
    out = t.to(device=device, dtype=dtype)
    if copy and (out is value or _shares(out, value)):
        out = out.clone()
    return out


def _torch_ready(arr: np.ndarray) -> np.ndarray:
    """``arr`` in a form ``torch.from_numpy`` takes without a warning or an error:
    non-negative strides, native byte order, writeable, a dtype torch has."""
    if arr.dtype.kind == "u" and arr.itemsize > 1:
        arr = arr.astype(np.int64 if arr.itemsize < 8 else np.float64)
    elif arr.dtype.kind == "f" and arr.itemsize > 8:
        arr = arr.astype(np.float64)  # long double
    elif not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if any(st < 0 for st in arr.strides) or not arr.flags.writeable:
        arr = np.array(arr, order="C")  # a copy torch can view
    return arr


def _shares(t: Tensor, value: Any) -> bool:
    if isinstance(value, Tensor):
        return t.data_ptr() == value.data_ptr() and t.numel() > 0
    if isinstance(value, np.ndarray) and t.device.type == "cpu" and t.numel() > 0:
        lo = value.__array_interface__["data"][0]
        return lo <= t.data_ptr() < lo + value.nbytes
    return False


def check_finite(where: str, name: str, t: Tensor) -> None:
    """Raise ``ValueError`` naming ``where`` and ``name`` if ``t`` holds NaN or inf."""
    vals = t.values() if t.layout == torch.sparse_csr else t
    if vals.is_floating_point() and not bool(torch.isfinite(vals).all()):
        n_bad = int((~torch.isfinite(vals)).sum())
        raise ValueError(
            f"{where}: {name} contains NaN or inf values ({n_bad} of {vals.numel()}); "
            "expected finite values"
        )


def as_int(
    where: str,
    name: str,
    value: Any,
    minimum: int | None = None,
    type_error: type[Exception] = TypeError,
) -> int:
    """``value`` as a Python int: any integer (``int``, ``np.int64``, a 0-d integer tensor),
    never a bool or a float; at least ``minimum`` when given (else ``ValueError``). A value
    that is no integer raises ``type_error``."""
    value = _scalar(value)
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        expected = "an int" if minimum is None else f"an int >= {minimum}"
        raise type_error(f"{where}: {name} must be {expected}, got {describe(value)}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{where}: {name} must be an int >= {minimum}, got {value}")
    return value


def as_step(where: str, name: str, value: Any) -> float:
    """``value`` as a finite, positive Python float (a step size or time constant)."""
    value = _scalar(value)
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: {name} must be a positive number, got {describe(value)}")
    out = float(value)
    if not (math.isfinite(out) and out > 0):
        raise ValueError(
            f"{where}: {name} must be a positive number, got {out!r} (expected finite, > 0)"
        )
    return out


def as_flag(where: str, name: str, value: Any) -> bool:
    """``value`` as a Python bool: ``True``, ``False`` or a NumPy bool; anything else (a
    string such as ``"no"``, a number) raises ``TypeError``."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{where}: {name} must be True or False, got {describe(value)}")
    return bool(value)


def as_float_dtype(where: str, dtype: Any) -> torch.dtype:
    """``dtype`` if it is a floating-point ``torch.dtype``; an integer, bool or complex
    dtype, or anything else, raises ``TypeError``."""
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"{where}: dtype must be a floating torch.dtype, got {dtype!r}")
    return dtype


def as_device(where: str, device: Any) -> torch.device:
    """``device`` (a ``torch.device`` or its name) as a ``torch.device``: ``TypeError`` for
    another type, ``ValueError`` for an unknown name."""
    bad_type = TypeError(
        f"{where}: device must be a torch device or its name, got {type(device).__name__}"
    )
    if isinstance(device, bool | np.bool_):
        raise bad_type
    try:
        return torch.device(device)
    except TypeError:
        raise bad_type from None
    except RuntimeError:  # an unknown name
        raise ValueError(
            f"{where}: device must be a torch device or its name ('cpu', 'cuda:0', ...), "
            f"got {device!r}"
        ) from None


def as_names(where: str, name: str, value: Any) -> list[str]:
    """A name or an iterable of names as a list: a single string is one name (never its
    characters). Anything else, or an entry that is not a string, raises ``TypeError``."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, Mapping | bytes | Tensor):
        names = list(value)
        if all(isinstance(v, str) for v in names):
            return names
        bad = next(v for v in names if not isinstance(v, str))
        raise TypeError(f"{where}: {name} must hold names (strings), got {describe(bad)}")
    raise TypeError(f"{where}: {name} must be a name or a list of names, got {describe(value)}")


def keywords(where: str) -> Callable[[F], F]:
    """Decorate a function so that an unknown keyword argument raises a ``TypeError``
    naming ``where`` and listing the valid names (Python's own message lists none)."""

    def deco(fn: F) -> F:
        params = inspect.signature(fn).parameters.values()
        valid = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        valid = [v for v in valid if v != "self"]
        names = frozenset(valid)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if kwargs and not names.issuperset(kwargs):
                unknown = sorted(set(kwargs) - names)
                raise TypeError(
                    f"{where}: unknown keyword argument(s) {unknown}; valid ones are {valid}"
                )
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return deco


def quiet_csr(make: Callable[[], Tensor]) -> Tensor:
    """Call ``make()`` (which builds a CSR tensor) without torch's one-time "Sparse CSR tensor
    support is in beta state" ``UserWarning``, an error under strict warning filters."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return make()
