"""The one tolerance for comparing metaan's numbers with metafor's, and why.

The reference values were computed by metafor 3.8-1 with tight convergence
settings and stored with 15 significant digits (tests/reference/README.md), so
they are accurate to about 1e-10 relative. Closed-form quantities (effect
sizes, fixed-effect fits) agree to about 1e-14; iterative ones (REML, PM,
Q-profile limits) to about 1e-10. ``RTOL = 1e-9`` leaves room for the latter
and still catches any wrong formula. ``ATOL = 1e-12`` is used only where the
expected value is so close to zero that a relative error means nothing (for
example a tau^2 of 0, or a risk difference of 3e-5 computed by cancellation).

Use :func:`assert_close` in every conformance suite rather than restating the
tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

RTOL = 1e-9
ATOL = 1e-12

__all__ = ["ATOL", "RTOL", "assert_close", "close"]


def _as_array(value: Any) -> np.ndarray:
    """Numbers as a float array; ``None`` (a JSON null, a missing value) becomes nan."""
    if value is None:
        return np.array(np.nan)
    if isinstance(value, str | bytes):
        raise TypeError(f"expected a number or a sequence of numbers, got {value!r}")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return np.array(float(value), dtype=float)
    if isinstance(value, np.ndarray | Sequence) or hasattr(value, "to_numpy"):
        items = value.to_numpy() if hasattr(value, "to_numpy") else value
        parts = [_as_array(item) for item in items]
        if not parts:
            return np.zeros(0)
        shapes = {part.shape for part in parts}
        if len(shapes) != 1:
            raise ValueError("ragged sequences cannot be compared")
        return np.stack(parts)
    return np.array(float(value), dtype=float)


def close(actual: float, expected: float, atol: float = ATOL) -> bool:
    """Whether one value matches: both missing, equal infinities, or within tolerance.

    ``|actual - expected| <= max(RTOL * |expected|, atol)``; ``atol`` is
    :data:`ATOL` unless a quantity is a known multiple of one compared at ATOL
    (I^2 = 100 tau^2 / (s^2 + tau^2) near tau^2 = 0 may differ by 100 ATOL / s^2).
    """
    if math.isnan(expected) or math.isnan(actual):
        return math.isnan(expected) and math.isnan(actual)
    if math.isinf(expected) or math.isinf(actual):
        return actual == expected
    return abs(actual - expected) <= max(RTOL * abs(expected), atol)


def assert_close(actual: Any, expected: Any, what: str, atol: float = ATOL) -> None:
    """Assert that ``actual`` matches ``expected`` within :data:`RTOL` / :data:`ATOL`.

    Parameters
    ----------
    actual, expected
        Numbers, or (nested) sequences of numbers of the same shape: lists,
        tuples, numpy arrays, pandas Series. ``None`` and nan are a missing
        value, and match only each other.
    what
        What is compared, for the failure message (e.g. ``"bcg_OR yi"``).

    Raises
    ------
    AssertionError
        Naming ``what``, every mismatching position with both values, the
        absolute and relative differences, and the tolerance.
    """
    a = _as_array(actual)
    e = _as_array(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{what}: shape {a.shape} differs from the expected {e.shape}")
    bad = [
        index for index in np.ndindex(e.shape) if not close(float(a[index]), float(e[index]), atol)
    ]
    if not bad:
        return
    lines = [f"{what}: {len(bad)} of {e.size} value(s) differ beyond rtol={RTOL:g}, atol={ATOL:g}"]
    for index in bad[:20]:
        x, y = float(a[index]), float(e[index])
        diff = abs(x - y)
        rel = diff / abs(y) if y != 0 and math.isfinite(y) else math.inf
        where = f"[{', '.join(map(str, index))}]" if index else ""
        lines.append(
            f"  {where or 'value'}: actual={x!r} expected={y!r} abs diff={diff:.3g} "
            f"rel diff={rel:.3g}"
        )
    if len(bad) > 20:
        lines.append(f"  ... and {len(bad) - 20} more")
    raise AssertionError("\n".join(lines))
