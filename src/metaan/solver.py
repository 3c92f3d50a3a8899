"""The safeguarded Newton solver for decreasing estimating equations.

Every iterative quantity of metaan is the root of an equation that decreases
in its unknown: the tau^2 estimators ML, REML and PM/EB, the Q-profile limits
of tau^2, and (for the models built on :mod:`metaan._gls`) the variance
components of network and multilevel models. :func:`solve_decreasing` finds
those roots for a whole batch of problems at once; :func:`solve_decreasing_scalar`
is the same iteration for one problem on Python floats, which a single small fit
uses because a numpy call costs more than the arithmetic of ten studies.

Both take Newton steps inside a bracket that every evaluation narrows. A step
that leaves the bracket, or a derivative that is not negative, is replaced by
bisection, or by doubling while no negative value has been seen. The search
cannot diverge, unlike plain Fisher scoring, and stops when a step changes the
root by at most :data:`ROOT_RTOL` relative (or the bracket is that narrow), or
when two Newton steps in a row predict the next one to be that small: Newton's
steps shrink quadratically near a simple root, ``d[n+1] ~ d[n]^3 / d[n-1]^2``,
so the evaluation that would only confirm the root is saved (where the steps
shrink merely linearly, at ratio r, the prediction errs by a factor 1/r and the
root is still within a few ROOT_RTOL). A problem whose equation is not positive
at ``lower`` has the root ``lower`` (the boundary, e.g. tau^2 = 0).

The decisions of a step (:func:`_step`) are one function, evaluated on floats
by the scalar solver and on arrays by the batched one, so the two cannot drift
apart.

References
----------
Press, W. H., Teukolsky, S. A., Vetterling, W. T., & Flannery, B. P. (2007).
*Numerical Recipes* (3rd ed.), section 9.4 (Newton-Raphson with bracketing,
``rtsafe``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from metaan._numeric import isfinite as _isfinite
from metaan._numeric import where as _where

__all__ = ["MAX_ITER", "ROOT_RTOL", "solve_decreasing", "solve_decreasing_scalar"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
T = TypeVar("T", float, FloatArray)

#: Relative convergence of every root: a step that moves the root by at most this
#: (or a bracket this narrow) ends the search.
ROOT_RTOL = 1e-14
#: Iterations before a problem is declared without a root. Bisection halves the
#: bracket each step, so 2,000 steps cover any range of doubles.
MAX_ITER = 2000
#: Roots beyond this are taken as "no root" (the equation stays positive).
_NO_ROOT = 1e300


def _step(
    x: T, value: T, slope: T, lo: T, hi: T, scale: T, xtol: T, prev: T
) -> tuple[T, T, T, Any, T, T]:
    """One safeguarded step from ``x`` with the equation's ``value`` and ``slope`` there.

    ``prev`` is the length of the previous step if it was a Newton step, else NaN.
    Returns the next point, the narrowed bracket ``(lo, hi)``, whether the search
    has converged, the root it converged to, and this step's ``prev`` for the
    next. Works on floats and on arrays alike.
    """
    positive = value > 0.0
    lo = _where(positive, x, lo)
    hi = _where(positive, hi, x)
    usable = (slope < 0.0) & _isfinite(slope)
    newton = x - value / _where(usable, slope, -1.0)
    inside = usable & (lo < newton) & (newton < hi)
    finite_hi = _isfinite(hi)
    fallback = _where(finite_hi, 0.5 * (lo + hi), 2.0 * lo + scale)
    new = _where(inside, newton, fallback)
    step = abs(new - x)
    tol = ROOT_RTOL * abs(new) + xtol
    # NaN (no previous Newton step, or this one is not) never compares as small.
    ratio = step / prev
    # A Newton step within the tolerance ends the search even where it is not
    # strictly inside the bracket: at the root, x + step can round to x itself,
    # which is an end of the bracket, and bisecting from there only confirms x.
    tiny_newton = usable & (abs(newton - x) <= ROOT_RTOL * abs(newton) + xtol)
    new = _where(tiny_newton, newton, new)
    small_step = tiny_newton | (step <= tol) | (inside & (step * ratio * ratio <= tol))
    tight = finite_hi & (hi - lo <= ROOT_RTOL * abs(hi) + xtol)
    exact = value == 0.0
    done = exact | small_step | tight
    root = _where(exact, x, _where(small_step, new, 0.5 * (lo + hi)))
    return new, lo, hi, done, root, _where(inside, step, math.nan)


def solve_decreasing_scalar(
    f: Callable[[float], tuple[float, float]],
    lower: float,
    scale: float,
    *,
    start: float | None = None,
    xtol: float | None = None,
    first: tuple[float, float] | None = None,
    at_start: tuple[float, float] | None = None,
) -> float:
    """The root above ``lower`` of one decreasing equation, on Python floats.

    Parameters
    ----------
    f
        ``f(x)`` returns the equation's value and derivative at ``x``.
    lower
        The lower end of the domain (0 for a variance).
    scale
        A positive scale of the unknown, for the first doubling and the
        absolute tolerance (``scale * 1e-16``).
    start
        Where to start (default ``lower``). Any point is safe: a start above the
        root only closes the bracket sooner.
    xtol
        Absolute tolerance of the root (default ``scale * 1e-16``).
    first
        The equation's value and derivative at ``lower``, when the caller has
        them already (saves one evaluation).
    at_start
        The equation's value and derivative at ``start``, when the caller has
        them already (NaN: not known).

    Returns
    -------
    float
        The root, ``lower`` when the equation is not positive there, or NaN when
        it stays positive up to 1e300 (no root).
    """
    if xtol is None:
        xtol = max(scale, 1e-300) * 1e-16
    lo, hi = lower, math.inf
    value, slope = f(lower) if first is None else first
    if not value > 0.0:
        return lower if value <= 0.0 else math.nan
    x, prev = lower, math.nan
    if start is not None and start > lower:
        lo, x = lower, start
        known = at_start is not None and at_start[0] == at_start[0]
        value, slope = at_start if known and at_start is not None else f(x)
    for _ in range(MAX_ITER):
        if value != value:  # NaN: the equation cannot be evaluated here
            return math.nan
        x, lo, hi, done, root, prev = _step(x, value, slope, lo, hi, scale, xtol, prev)
        if done:
            return float(root)
        if x > _NO_ROOT:
            return math.nan
        value, slope = f(x)
    return math.nan


def _per_problem(
    lower: npt.ArrayLike,
    scale: npt.ArrayLike,
    start: npt.ArrayLike | None,
    size: int | None,
    xtol: npt.ArrayLike | None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The lower ends, scales and absolute tolerances of every problem, as arrays."""
    low = np.asarray(lower, dtype=np.float64)
    scales = np.asarray(scale, dtype=np.float64)
    if size is None:
        size = max(low.size, scales.size, 1 if start is None else np.asarray(start).size)
    low = np.broadcast_to(low, (size,)).copy()
    scales = np.broadcast_to(scales, (size,)).copy()
    if xtol is None:
        return low, scales, np.maximum(scales, 1e-300) * 1e-16
    return low, scales, np.broadcast_to(np.asarray(xtol, dtype=np.float64), (size,)).copy()


def _begin(
    f: Callable[[FloatArray, IntArray], tuple[FloatArray, FloatArray]],
    start: FloatArray,
    at_start: tuple[FloatArray, FloatArray] | None,
    active: IntArray,
    x: FloatArray,
    value: FloatArray,
    slope: FloatArray,
) -> None:
    """Move the ``active`` problems whose ``start`` is above their lower end ``x``
    there, with the equation's value and slope there (from ``at_start`` where it
    knows them, else evaluated); ``x``, ``value`` and ``slope`` are updated in place."""
    begin = np.broadcast_to(start, x.shape)
    later = active[begin[active] > x[active]]
    x[later] = begin[later]
    if at_start is not None:
        unknown = np.isnan(at_start[0][later])
        known = later[~unknown]
        value[known], slope[known] = at_start[0][known], at_start[1][known]
        later = later[unknown]
    if later.size:
        value[later], slope[later] = f(x[later], later)


def solve_decreasing(
    f: Callable[[FloatArray, IntArray], tuple[FloatArray, FloatArray]],
    lower: npt.ArrayLike,
    scale: npt.ArrayLike,
    *,
    start: npt.ArrayLike | None = None,
    size: int | None = None,
    xtol: npt.ArrayLike | None = None,
    first: tuple[FloatArray, FloatArray] | None = None,
    at_start: tuple[FloatArray, FloatArray] | None = None,
) -> FloatArray:
    """The roots of a batch of decreasing equations, solved together.

    Parameters
    ----------
    f
        ``f(x, rows)`` returns the values and derivatives of the equations of
        problems ``rows`` (an index array into the batch) at the points ``x``
        (one per row). Only the problems not yet converged are evaluated, so
        ``f`` must compute each row independently of the others.
    lower
        Lower end of each problem's domain (an array, or one value for all).
    scale
        Positive scale of each unknown (see :func:`solve_decreasing_scalar`).
    start
        Starting points (default ``lower``); any point is safe.
    size
        The number of problems (default: the size of ``lower``, ``scale`` or
        ``start``, whichever is an array).
    xtol
        Absolute tolerance of each root (default ``scale * 1e-16``). Give a
        smaller one when the root may lie far below ``scale``: for tau^2, the
        smallest sampling variance times 1e-16.
    first
        The equations' values and derivatives at ``lower`` for every problem,
        when the caller has them already (saves one evaluation).
    at_start
        The equations' values and derivatives at ``start``, where the caller
        has them already (NaN where not: those are evaluated).

    Returns
    -------
    numpy.ndarray
        One root per problem: ``lower`` where the equation is not positive
        there, NaN where it has no root or cannot be evaluated.

    Examples
    --------
    The square roots of 2 and 9 as the roots of ``c - x^2``:

    >>> import numpy as np
    >>> c = np.array([2.0, 9.0])
    >>> solve_decreasing(lambda x, rows: (c[rows] - x * x, -2 * x), 0.0, 1.0, size=2)
    array([1.41421356, 3.        ])
    """
    low, scales, xtols = _per_problem(lower, scale, start, size, xtol)
    n = low.size
    root = np.full(n, np.nan)
    rows = np.arange(n, dtype=np.int64)
    if first is None:
        value, slope = f(low, rows)
    else:
        value = np.array(first[0], dtype=np.float64)
        slope = np.array(first[1], dtype=np.float64)
    at_lower = value <= 0.0
    root[at_lower] = low[at_lower]
    active = np.flatnonzero(value > 0.0)
    lo, hi = low.copy(), np.full(n, np.inf)
    x = low.copy()
    if start is not None:
        _begin(f, np.asarray(start, dtype=np.float64), at_start, active, x, value, slope)
    value_a, slope_a = value[active], slope[active]
    prev = np.full(n, np.nan)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(MAX_ITER):
            ok = ~np.isnan(value_a)
            active, value_a, slope_a = active[ok], value_a[ok], slope_a[ok]
            if active.size == 0:
                break
            new, lo_a, hi_a, done, result, prev_a = _step(
                x[active],
                value_a,
                slope_a,
                lo[active],
                hi[active],
                scales[active],
                xtols[active],
                prev[active],
            )
            root[active[done]] = result[done]
            keep = ~done & (new <= _NO_ROOT)
            lo[active], hi[active], x[active], prev[active] = lo_a, hi_a, new, prev_a
            active = active[keep]
            if active.size == 0:
                break
            value_a, slope_a = f(x[active], active)
    return root
