r"""Physical units for equation models: dimensions, quantities and Brian2's unit names.

A :class:`Quantity` is a value in SI base units with its :class:`Dimension` (the exponents of
metre, kilogram, second, ampere, kelvin, mole and candela). Quantities multiply, divide and
take powers freely; they add and compare only when their dimensions agree, and a mismatch
is an error that names both dimensions. An equation model stores every value in SI units,
as Brian2 does, so ``10*ms`` is ``0.01`` (seconds) inside the model.

Unit names follow Brian2: ``volt``, ``amp``, ``second``, ``siemens``, ``farad``, ``ohm``,
``hertz``, ``metre``/``meter``, ``gram``, ``coulomb``, ``mole``, ``molar``, ``litre`` and
``kelvin``, each with the prefixes ``f p n u m c d k M G`` (``mvolt``, ``usecond``,
``kohm``), and the short forms ``V A s S F Hz m g C mol M l L`` with the same prefixes
(``mV``, ``ms``, ``nA``, ``pF``, ``uS``, ``Mohm``, ``um``, ``mM``)::

    from rnngraph.units import mV, ms, nS
    tau = 10 * ms            # Quantity(0.01, second)
    g = 5 * nS / (2 * mV)    # a quantity of dimension amp / volt**2
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction
from typing import Any

import numpy as np
import torch

__all__ = ["UNITS", "Dimension", "DimensionError", "Quantity", "dimensionless"]

_BASE = ("metre", "kilogram", "second", "amp", "kelvin", "mole", "candela")


class DimensionError(ValueError):
    """Two dimensions that must agree (terms of a sum, a value and its declared unit) do
    not."""


class Dimension(tuple):
    """The exponents of the seven SI base units, as fractions (``sqrt`` halves them)."""

    def __new__(cls, exponents: Any = (0,) * 7) -> Dimension:
        return super().__new__(cls, tuple(Fraction(e) for e in exponents))

    def __mul__(self, other: Dimension) -> Dimension:  # type: ignore[override]
        return Dimension(a + b for a, b in zip(self, other, strict=True))

    def __truediv__(self, other: Dimension) -> Dimension:
        return Dimension(a - b for a, b in zip(self, other, strict=True))

    def __pow__(self, p: Any) -> Dimension:
        return Dimension(a * Fraction(p).limit_denominator(1000) for a in self)

    @property
    def is_dimensionless(self) -> bool:
        return not any(self)

    def __str__(self) -> str:
        if self.is_dimensionless:
            return "1"
        named = _NAMED.get(self)
        if named is not None:
            return named
        for unit in ("second", "metre"):  # volt/second, siemens/metre**2
            for p in (1, 2, 3):
                named = _NAMED.get(self * _DERIVED[unit] ** p)
                if named is not None and named != unit:
                    return f"{named}/{unit}" + (f"**{p}" if p > 1 else "")
        up = [_power(n, e) for n, e in zip(_BASE, self, strict=True) if e > 0]
        down = [_power(n, -e) for n, e in zip(_BASE, self, strict=True) if e < 0]
        text = "*".join(up) or "1"
        return f"{text}/{'/'.join(down)}" if down else text

    def __repr__(self) -> str:
        return f"Dimension({self})"


def _power(name: str, e: Fraction) -> str:
    return name if e == 1 else f"{name}**{e}" if e.denominator == 1 else f"{name}**({e})"


dimensionless = Dimension()


def _dim(**exponents: int) -> Dimension:
    return Dimension(exponents.get(b, 0) for b in _BASE)


class Quantity:
    """A value (a number or a NumPy array) in SI base units with its dimension.

    Parameters
    ----------
    value : float, array_like or Tensor
        The value in SI units (``Quantity(0.01, second)`` is 10 ms); a tensor stays a
        tensor (``torch.rand(5) * mV``, e.g. trainable initial values).
    dim : Dimension
        Its dimension.
    """

    __slots__ = ("dim", "value")
    __array_priority__ = 1000  # numpy arrays defer to Quantity's operators

    def __init__(self, value: Any, dim: Dimension = dimensionless) -> None:
        keep = isinstance(value, numbers.Real | torch.Tensor)
        self.value = value if keep else np.asarray(value, float)
        self.dim = dim

    def _check(self, other: Any, op: str) -> Quantity:
        other = as_quantity(other)
        if other.dim != self.dim:
            raise DimensionError(f"cannot {op} quantities of dimensions {self.dim} and {other.dim}")
        return other

    def __add__(self, other: Any) -> Quantity:
        return Quantity(self.value + self._check(other, "add").value, self.dim)

    __radd__ = __add__

    def __sub__(self, other: Any) -> Quantity:
        return Quantity(self.value - self._check(other, "subtract").value, self.dim)

    def __rsub__(self, other: Any) -> Quantity:
        return Quantity(self._check(other, "subtract").value - self.value, self.dim)

    def __mul__(self, other: Any) -> Quantity:
        other = as_quantity(other)
        return Quantity(self.value * other.value, self.dim * other.dim)

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> Quantity:
        other = as_quantity(other)
        return Quantity(self.value / other.value, self.dim / other.dim)

    def __rtruediv__(self, other: Any) -> Quantity:
        other = as_quantity(other)
        return Quantity(other.value / self.value, other.dim / self.dim)

    def __pow__(self, p: Any) -> Quantity:
        if not isinstance(p, numbers.Real):
            raise TypeError(f"a quantity's power must be a number, got {type(p).__name__}")
        return Quantity(self.value**p, self.dim**p)

    def __neg__(self) -> Quantity:
        return Quantity(-self.value, self.dim)

    def __pos__(self) -> Quantity:
        return self

    def __abs__(self) -> Quantity:
        return Quantity(abs(self.value), self.dim)

    def __eq__(self, other: Any) -> Any:
        try:
            same = self.value == self._check(other, "compare").value
        except DimensionError:
            return False
        return bool(same.all()) if isinstance(same, torch.Tensor) else bool(np.all(same))

    def __lt__(self, other: Any) -> Any:
        return self.value < self._check(other, "compare").value

    def __le__(self, other: Any) -> Any:
        return self.value <= self._check(other, "compare").value

    def __gt__(self, other: Any) -> Any:
        return self.value > self._check(other, "compare").value

    def __ge__(self, other: Any) -> Any:
        return self.value >= self._check(other, "compare").value

    def __bool__(self) -> bool:  # as its value: ``0*mV`` is false; an array's is ambiguous
        return bool(self.value)

    __hash__ = None  # type: ignore[assignment]

    def __float__(self) -> float:
        if not self.dim.is_dimensionless:
            raise DimensionError(
                f"float() of a quantity of dimension {self.dim}: only a dimensionless "
                "quantity is a plain number (read .value for its value in SI units)"
            )
        return float(self.value)

    def __repr__(self) -> str:
        unit = "" if self.dim.is_dimensionless else f" * {self.dim}"
        return f"Quantity({self.value!r}{unit})"


def as_quantity(x: Any) -> Quantity:
    """``x`` as a :class:`Quantity`: a plain number or array is dimensionless."""
    if isinstance(x, Quantity):
        return x
    numeric = numbers.Real | np.ndarray | list | torch.Tensor
    if isinstance(x, bool | np.bool_) or not isinstance(x, numeric):
        raise TypeError(
            "a quantity combines with numbers, arrays, tensors and quantities, got "
            f"{type(x).__name__} ({x!r})"
        )
    return Quantity(x)


_DERIVED = {
    "metre": _dim(metre=1),
    "meter": _dim(metre=1),
    "gram": _dim(kilogram=1),
    "second": _dim(second=1),
    "amp": _dim(amp=1),
    "ampere": _dim(amp=1),
    "kelvin": _dim(kelvin=1),
    "mole": _dim(mole=1),
    "candela": _dim(candela=1),
    "volt": _dim(kilogram=1, metre=2, second=-3, amp=-1),
    "ohm": _dim(kilogram=1, metre=2, second=-3, amp=-2),
    "siemens": _dim(kilogram=-1, metre=-2, second=3, amp=2),
    "farad": _dim(kilogram=-1, metre=-2, second=4, amp=2),
    "coulomb": _dim(amp=1, second=1),
    "hertz": _dim(second=-1),
    "litre": _dim(metre=3),
    "liter": _dim(metre=3),
    "molar": _dim(mole=1, metre=-3),
    "joule": _dim(kilogram=1, metre=2, second=-2),
    "watt": _dim(kilogram=1, metre=2, second=-3),
    "newton": _dim(kilogram=1, metre=1, second=-2),
}
#: the factor of each unit to SI (a gram is 1e-3 kg, a litre 1e-3 m**3, a molar 1e3
#: mol/m**3)
_SCALE = {"gram": 1e-3, "litre": 1e-3, "liter": 1e-3, "molar": 1e3}
_SHORT = {
    "V": "volt", "A": "amp", "s": "second", "S": "siemens", "F": "farad", "Hz": "hertz",
    "m": "metre", "g": "gram", "C": "coulomb", "mol": "mole", "M": "molar", "l": "litre",
    "L": "litre", "ohm": "ohm", "K": "kelvin", "J": "joule", "W": "watt", "N": "newton",
}  # fmt: skip
_PREFIXES = {
    "f": 1e-15, "p": 1e-12, "n": 1e-9, "u": 1e-6, "m": 1e-3, "c": 1e-2, "d": 1e-1,
    "k": 1e3, "M": 1e6, "G": 1e9,
}  # fmt: skip
_NAMED = {d: n for n, d in _DERIVED.items() if n not in ("meter", "ampere", "liter", "gram")}
_NAMED[_dim(kilogram=1)] = "kilogram"


def _units() -> dict[str, Quantity]:
    out: dict[str, Quantity] = {}
    for name, dim in _DERIVED.items():
        scale = _SCALE.get(name, 1.0)
        out[name] = Quantity(scale, dim)
        for p, f in _PREFIXES.items():
            out[p + name] = Quantity(f * scale, dim)
    for short, name in _SHORT.items():
        dim, scale = _DERIVED[name], _SCALE.get(name, 1.0)
        out.setdefault(short, Quantity(scale, dim))
        for p, f in _PREFIXES.items():
            out.setdefault(p + short, Quantity(f * scale, dim))
    out["kilogram"] = out["kg"] = Quantity(1.0, _dim(kilogram=1))
    return out


#: every unit by name (see the module docstring)
UNITS: dict[str, Quantity] = _units()
assert math.isclose(UNITS["mV"].value, 1e-3) and UNITS["ms"].dim == _dim(second=1)
globals().update(UNITS)
__all__ += sorted(UNITS)
