"""Elementwise helpers that take a Python float or a numpy array alike.

The engine's formulas (the tau^2 estimators, the solver's step, the
Knapp-Hartung rule, the tests and heterogeneity statistics) are written once and
evaluated either on the arrays of a batch of problems or on the Python floats of
one small problem, where a numpy call costs more than the arithmetic. These
helpers are the few places where the two differ: a float takes :mod:`math` and
a plain ``if``, an array takes numpy. Floats follow numpy's IEEE rules here (a
square root of a negative number is NaN, ``x / 0`` is infinite or NaN) rather
than raising.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["divide", "exp", "isfinite", "largest", "log", "log1p", "maximum0", "sqrt", "where"]

_float = float


def where(cond: Any, a: Any, b: Any) -> Any:
    """``a`` where ``cond`` holds, else ``b`` (``numpy.where`` for arrays)."""
    if cond is True or cond is False or isinstance(cond, np.bool_):
        return a if cond else b
    return np.where(cond, a, b)


def isfinite(x: Any) -> Any:
    """Whether ``x`` is neither infinite nor NaN."""
    return math.isfinite(x) if x.__class__ is _float else np.isfinite(x)


def sqrt(x: Any) -> Any:
    """The square root (NaN for a negative float, as numpy has it)."""
    if x.__class__ is _float:
        return math.sqrt(x) if x >= 0.0 else math.nan
    return np.sqrt(x)


def maximum0(x: Any) -> Any:
    """``max(0, x)``, keeping NaN."""
    if x.__class__ is _float:
        return x if x > 0.0 or x != x else 0.0
    return np.maximum(0.0, x)


def divide(a: Any, b: Any) -> Any:
    """``a / b`` with numpy's rules for a zero denominator (inf, or NaN for 0/0)."""
    if a.__class__ is _float and b.__class__ is _float:
        if b != 0.0:
            return a / b
        if a != a or a == 0.0:
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.divide(a, b)


def exp(x: Any) -> Any:
    """``e**x`` (infinite rather than an error when a float overflows)."""
    if x.__class__ is _float:
        return math.exp(x) if x < 709.0 else (math.inf if x == x else x)
    return np.exp(x)


def log(x: Any) -> Any:
    """The natural logarithm (-inf at 0 and NaN below, as numpy has it)."""
    if x.__class__ is _float:
        return math.log(x) if x > 0.0 else (-math.inf if x == 0.0 else math.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(x)


def log1p(x: Any) -> Any:
    """``log(1 + x)``, accurate for small ``x`` (-inf at -1 and NaN below)."""
    if x.__class__ is _float:
        return math.log1p(x) if x > -1.0 else (-math.inf if x == -1.0 else math.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log1p(x)


def largest(x: Any) -> float:
    """The largest element of ``x`` (``x`` itself for a float; 0 for an empty array)."""
    if x.__class__ is _float:
        return float(x)
    return float(x.max()) if x.size else 0.0
