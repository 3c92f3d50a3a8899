"""Tail probabilities and quantiles of the normal, t, chi^2 and F distributions.

metaan computes these itself, on Python floats and on numpy arrays alike (the
functions of :mod:`metaan._numeric` are the only places where the two differ),
rather than through :mod:`scipy.special`: importing that takes half a second,
longer than a whole small fit from the command line. Every p-value, critical
value and confidence limit of metaan comes from this module.

Methods
-------
- The complementary error function, from Cody's rational Chebyshev
  approximations in his three intervals (accurate to about 1e-16 relative).
- The regularised incomplete gamma functions P(a, z) and Q(a, z) (chi^2): the
  power series of P for z < a + 1 and Legendre's continued fraction of Q
  otherwise (Abramowitz & Stegun 6.5.29 and 6.5.31), so that the smaller tail
  is always summed directly and never found by subtraction.
- The regularised incomplete beta function I_x(a, b) (t and F): its continued
  fraction (Abramowitz & Stegun 26.5.8) on the side of the mean where it
  converges fast, with I_x(a, b) = 1 - I_{1-x}(b, a) on the other.
- Both continued fractions are evaluated by the modified Lentz method. Their
  prefactors, z^a e^-z / Gamma(a) and x^a (1-x)^b / B(a, b), are computed from
  Stirling's series with log1p, so that large degrees of freedom lose no
  accuracy to the cancellation of large logarithms (DiDonato & Morris 1986,
  1992).
- Quantiles are roots of ``log tail(x) = log q``, found by metaan's safeguarded
  Newton solver (:func:`metaan.solver.solve_decreasing_scalar`) from the usual
  approximations (Abramowitz & Stegun 26.2.23 for the normal, Cornish-Fisher
  for t, Wilson-Hilferty for chi^2), and cached.

References
----------
Abramowitz, M., & Stegun, I. A. (1964). *Handbook of Mathematical Functions*.
National Bureau of Standards.

Cody, W. J. (1969). Rational Chebyshev approximations for the error function.
*Mathematics of Computation*, 23(107), 631-637.

DiDonato, A. R., & Morris, A. H. (1986). Computation of the incomplete gamma
function ratios and their inverse. *ACM TOMS*, 12(4), 377-393.

DiDonato, A. R., & Morris, A. H. (1992). Algorithm 708: significant digit
computation of the incomplete beta function ratios. *ACM TOMS*, 18(3), 360-373.

Thompson, I. J., & Barnett, A. R. (1986). Coulomb and Bessel functions of
complex arguments and order. *Journal of Computational Physics*, 64, 490-509
(the modified Lentz method).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from metaan._numeric import exp, largest, log, log1p, sqrt, where
from metaan.solver import solve_decreasing_scalar

__all__ = [
    "chi2_cdf",
    "chi2_isf",
    "chi2_ppf",
    "chi2_sf",
    "f_sf",
    "log_gamma_rest",
    "norm_isf",
    "norm_sf",
    "t_isf",
    "t_sf",
]

FloatArray = npt.NDArray[np.float64]
Num = float | FloatArray

_EPS = 2.220446049250313e-16  # a series or continued fraction stops at this relative change
_TINY = 1e-300  # the Lentz method's stand-in for a zero denominator
_MAX_TERMS = 1_000_000  # far beyond what any argument needs (about 10 sqrt(a) terms)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_SQRT_HALF = math.sqrt(0.5)

# Cody (1969): erf on |x| <= 0.46875, erfc on 0.46875 < |x| <= 4 and on |x| > 4.
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
          3.20937758913846947e03, 1.85777706184603153e-1)  # fmt: skip
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)  # fmt: skip
_ERFC_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
           2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
           2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)  # fmt: skip
_ERFC_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
           1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
           3.43936767414372164e03, 1.23033935480374942e03)  # fmt: skip
_ERFC_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
           1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)  # fmt: skip
_ERFC_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
           6.05183413124413191e-2, 2.33520497626869185e-3)  # fmt: skip
_RSQRT_PI = 0.56418958354775628695  # 1 / sqrt(pi)
# The same, as the polynomials of each interval, from the constant term up.
_SMALL_NUM = (_ERF_A[3], _ERF_A[2], _ERF_A[1], _ERF_A[0], _ERF_A[4])
_SMALL_DEN = (_ERF_B[3], _ERF_B[2], _ERF_B[1], _ERF_B[0], 1.0)
_MIDDLE_NUM = (*_ERFC_C[7::-1], _ERFC_C[8])
_MIDDLE_DEN = (*_ERFC_D[::-1], 1.0)
_LARGE_NUM = (*_ERFC_P[4::-1], _ERFC_P[5])
_LARGE_DEN = (*_ERFC_Q[::-1], 1.0)


# ----------------------------------------------------------------------------- plumbing


def _args(*values: Any) -> tuple[bool, list[Any]]:
    """The arguments as Python floats (True) or as broadcast float arrays (False)."""
    if all(v.__class__ is float for v in values):
        return True, list(values)
    if all(isinstance(v, (float, int, np.floating, np.integer)) for v in values):
        return True, [float(v) for v in values]
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in values))
    return False, [np.ascontiguousarray(a) for a in arrays]


def _apply(
    core: Callable[..., Any],
    regular: Callable[..., Any],
    boundary: Callable[..., Any],
    *values: Any,
) -> Num:
    """``core`` where ``regular`` holds (finite, inside the support) and ``boundary``
    elsewhere (the limits at 0 and infinity, NaN for invalid arguments). ``core``
    only ever sees regular arguments, so its loops always converge."""
    scalar, args = _args(*values)
    if scalar:
        return float(core(*args)) if regular(*args) else float(boundary(*args))
    if args[0].size == 1:  # one problem, as a single fit has: floats are 10x faster
        floats = [float(a.flat[0]) for a in args]
        return np.full(args[0].shape, _apply(core, regular, boundary, *floats))
    ok = regular(*args)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.asarray(boundary(*args), dtype=np.float64).copy()
    if ok.any():
        out[ok] = core(*(a[ok] for a in args))
    return out


def _split(choose: Any, first: Callable[..., Any], second: Callable[..., Any], *args: Any) -> Any:
    """``first(*args)`` where ``choose`` holds, else ``second(*args)``: one branch for
    a float, each branch on its own elements for arrays. Both return tuples."""
    if choose is True or choose is False:
        return first(*args) if choose else second(*args)
    out: tuple[FloatArray, ...] = ()
    for mask, fn in ((choose, first), (~choose, second)):
        if mask.any():
            values = fn(*(a[mask] for a in args))
            out = out or tuple(np.empty(choose.shape) for _ in values)
            for part, value in zip(out, values, strict=True):
                part[mask] = value
    return out


def _trunc(x: Any) -> Any:
    return float(math.trunc(x)) if x.__class__ is float else np.trunc(x)


def _floor(x: Any) -> Any:
    return float(math.floor(x)) if x.__class__ is float else np.floor(x)


def _poly(coefs: tuple[float, ...], x: Any) -> Any:
    """``coefs[0] + coefs[1] x + ...`` by Horner's rule."""
    out = coefs[-1] + 0.0 * x
    for c in coefs[-2::-1]:
        out = out * x + c
    return out


# ----------------------------------------------------------------------------- erfc


def _erfc_small(x: Any) -> tuple[Any]:
    """erfc(x) = 1 - erf(x) for |x| <= 0.46875, erf by Cody's first approximation."""
    ysq = x * x
    return (1.0 - x * _poly(_SMALL_NUM, ysq) / _poly(_SMALL_DEN, ysq),)


def _erfc_middle(y: Any) -> Any:
    """exp(y^2) erfc(y) for 0.46875 < y <= 4 (Cody's second approximation)."""
    return _poly(_MIDDLE_NUM, y) / _poly(_MIDDLE_DEN, y)


def _erfc_large(y: Any) -> Any:
    """exp(y^2) erfc(y) for y > 4 (Cody's third approximation, in 1 / y^2)."""
    w = 1.0 / (y * y)
    rest = w * _poly(_LARGE_NUM, w) / _poly(_LARGE_DEN, w)
    return (_RSQRT_PI - rest) / y


def _erfc_tail(x: Any) -> tuple[Any]:
    """erfc(x) for |x| > 0.46875: erfc(|x|) from Cody's approximations of
    exp(y^2) erfc(y), and 2 - erfc(|x|) for negative x."""
    y = abs(x)
    (scaled,) = _split(y <= 4.0, lambda y: (_erfc_middle(y),), lambda y: (_erfc_large(y),), y)
    # exp(-y^2) as exp(-s^2) exp(-(y - s)(y + s)) with s = y rounded down to 1/16:
    # s^2 is exact, so the exponent loses nothing to the rounding of y^2.
    s = _trunc(y * 16.0) / 16.0
    upper = exp(-s * s) * exp(-(y - s) * (y + s)) * scaled
    return (where(x < 0.0, 2.0 - upper, upper),)


def _erfc_core(x: Any) -> Any:
    """erfc(x) for finite x, after Cody (1969), in his three intervals of |x|."""
    return _split(abs(x) <= 0.46875, _erfc_small, _erfc_tail, x)[0]


def _erfc(x: Any) -> Num:
    return _apply(
        _erfc_core,
        lambda x: (x == x) & (abs(x) < math.inf),
        lambda x: where(x > 0.0, 0.0, where(x < 0.0, 2.0, math.nan)),
        x,
    )


# ----------------------------------------------------------------------------- gamma and beta


def log_gamma_rest(a: Any) -> Any:
    """Stirling's remainder ``log Gamma(a) - ((a - 1/2) log a - a + log(2 pi) / 2)``, a > 0.

    Below 15 the argument is moved up by ``r(a) = r(a + 1) + (a + 1/2) log1p(1/a) - 1``;
    from 15 on, Stirling's series to the a^-9 term is exact to 2e-16. An array is
    computed once per distinct value (its values are a few degrees of freedom).
    """
    if a.__class__ is float:
        return _log_gamma_rest_of_float(a)
    if a.size > 16:
        distinct, inverse = np.unique(a, return_inverse=True)
        if distinct.size < a.size:
            return np.asarray(_stirling_rest(distinct))[np.asarray(inverse).reshape(a.shape)]
    return _stirling_rest(a)


@lru_cache(maxsize=4096)
def _log_gamma_rest_of_float(a: float) -> float:
    return float(_stirling_rest(a))


def _stirling_rest(a: Any) -> Any:
    """:func:`log_gamma_rest` of a float or of every element of an array."""
    shift = 0.0 * a
    b = a
    for _ in range(15):
        low = b < 15.0
        if not (low if low.__class__ is bool else low.any()):
            break
        shift = shift + where(low, (b + 0.5) * log1p(1.0 / b) - 1.0, 0.0)
        b = where(low, b + 1.0, b)
    w = 1.0 / (b * b)
    series = (1 / 12 - w * (1 / 360 - w * (1 / 1260 - w * (1 / 1680 - w / 1188)))) / b
    return series + shift


def _log_of_1_plus(d: Any, x: Any, ratio: Any) -> Any:
    """``log(1 + d)`` where ``1 + d = x * ratio``: by log1p when ``d`` is small, else by
    the logarithms of the factors (which keeps a tiny ``x`` accurate)."""
    return where(abs(d) < 0.5, log1p(d), log(x) + log(ratio))


def _iterate(
    step: Callable[[int, list[Any], list[Any]], tuple[list[Any], Any]],
    state: list[Any],
    params: list[Any],
) -> Any:
    """Run ``step(i, state, params)`` for i = 1, 2, ... until every element has
    converged, and return the first entry of the state (the result).

    ``step`` returns the new state and whether each element has converged. On
    arrays, an element's result is stored the first time it converges (later steps
    cannot move it), and the converged elements are taken out of the iteration
    whenever they make up half of it.
    """
    if state[0].__class__ is float:
        for i in range(1, _MAX_TERMS):
            state, converged = step(i, state, params)
            if converged:
                break
        return state[0]
    out = np.empty(state[0].shape)
    rows = np.arange(out.size)
    pending = np.ones(out.size, dtype=bool)  # not yet converged
    for i in range(1, _MAX_TERMS):
        state, converged = step(i, state, params)
        new = converged & pending
        if new.any():
            out[rows[new]] = state[0][new]
            pending &= ~new
            left = int(np.count_nonzero(pending))
            if not left:
                return out
            if 2 * left <= pending.size:  # take the converged out once they are half
                rows, state = rows[pending], [v[pending] for v in state]
                params, pending = [v[pending] for v in params], np.ones(left, dtype=bool)
    out[rows[pending]] = state[0][pending]
    return out


def _nonzero(v: Any) -> Any:
    """``v``, with a zero replaced by a tiny number (the Lentz method's safeguard)."""
    if v.__class__ is float:
        return v if abs(v) >= _TINY else _TINY
    return np.where(np.abs(v) < _TINY, _TINY, v)


def _gamma_kernel(a: Any, z: Any) -> Any:
    """``log(z^a e^-z / Gamma(a))``, accurate for large ``a`` (z > 0 finite)."""
    d = (z - a) / a
    core = where(abs(d) < 0.5, log1p(d) - d, log(z) - log(a) - d)
    return a * core + 0.5 * log(a) - _HALF_LOG_2PI - log_gamma_rest(a)


def _series_step(i: int, state: list[Any], params: list[Any]) -> tuple[list[Any], Any]:
    total, term, ap = state
    ap = ap + 1.0
    term = term * params[0] / ap
    total = total + term
    return [total, term, ap], term <= total * _EPS


def _gamma_series(a: Any, z: Any, kernel: Any) -> tuple[Any, Any]:
    """P(a, z) by its power series (z < a + 1), and Q = 1 - P."""
    first = 1.0 / a
    p = _iterate(_series_step, [first, first, a + 0.0 * z], [z]) * exp(kernel)
    return p, 1.0 - p


def _gamma_fraction_step(i: int, state: list[Any], params: list[Any]) -> tuple[list[Any], Any]:
    h, c, d, b = state
    an = -i * (i - params[0])
    b = b + 2.0
    d = 1.0 / _nonzero(an * d + b)
    c = _nonzero(b + an / c)
    delta = d * c
    return [h * delta, c, d, b], abs(delta - 1.0) <= _EPS


def _gamma_fraction(a: Any, z: Any, kernel: Any) -> tuple[Any, Any]:
    """Q(a, z) by Legendre's continued fraction (z >= a + 1), and P = 1 - Q."""
    b = z + 1.0 - a
    state = [1.0 / b, 1.0 / _TINY + 0.0 * z, 1.0 / b, b]
    q = _iterate(_gamma_fraction_step, state, [a]) * exp(kernel)
    return 1.0 - q, q


def _gamma_tails(a: Any, z: Any) -> tuple[Any, Any, Any]:
    """P(a, z), Q(a, z) and the density factor ``z^a e^-z / Gamma(a)`` (a, z > 0)."""
    kernel = _gamma_kernel(a, z)
    p, q = _split(z < a + 1.0, _gamma_series, _gamma_fraction, a, z, kernel)
    return p, q, exp(kernel)


def _beta_kernel(a: Any, b: Any, x: Any, y: Any) -> Any:
    """``log(x^a y^b / B(a, b))`` with ``y = 1 - x``, accurate for large ``a`` and ``b``:
    ``a log(x s / a) + b log(y s / b) + log(a b / s) / 2 - log(2 pi) / 2 - r(a) - r(b)
    + r(s)`` with ``s = a + b`` and ``r`` Stirling's remainder."""
    s = a + b
    e = x * b - y * a  # x s - a = -(y s - b)
    first = _log_of_1_plus(e / a, x, s / a)
    second = _log_of_1_plus(-e / b, y, s / b)
    rest = log_gamma_rest(a) + log_gamma_rest(b) - log_gamma_rest(s)
    return a * first + b * second + 0.5 * log(a * b / s) - _HALF_LOG_2PI - rest


def _beta_fraction_step(i: int, state: list[Any], params: list[Any]) -> tuple[list[Any], Any]:
    """Step i uses the fraction's coefficient d_(i+1) (A&S 26.5.8): d_2m on odd i, where
    m = (i + 1) / 2, and d_(2m+1) on even i, after which convergence is judged."""
    h, c, d = state
    a, b, x = params
    m = (i + 1) // 2
    if i % 2:
        coef = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m))
    else:
        coef = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0))
    d = 1.0 / _nonzero(1.0 + coef * d)
    c = _nonzero(1.0 + coef / c)
    delta = d * c
    return [h * delta, c, d], (abs(delta - 1.0) <= _EPS) & (i % 2 == 0)


def _beta_fraction(a: Any, b: Any, x: Any, y: Any) -> tuple[Any, Any]:
    """I_x(a, b) by its continued fraction (fast for x below (a + 1) / (a + b + 2)),
    and 1 - I_x(a, b)."""
    d = 1.0 / _nonzero(1.0 - (a + b) * x / (a + 1.0))
    h = _iterate(_beta_fraction_step, [d, 1.0 + 0.0 * x, d], [a, b, x])
    lower = exp(_beta_kernel(a, b, x, y)) * h / a
    return lower, 1.0 - lower


def _beta_tails(a: Any, b: Any, x: Any, y: Any) -> tuple[Any, Any]:
    """I_x(a, b) and 1 - I_x(a, b), for 0 < x < 1 given with ``y = 1 - x``."""
    direct = x * (a + b + 2.0) < a + 1.0

    def swapped(a: Any, b: Any, x: Any, y: Any) -> tuple[Any, Any]:
        upper, lower = _beta_fraction(b, a, y, x)
        return lower, upper

    lower, upper = _split(direct, _beta_fraction, swapped, a, b, x, y)
    return lower, upper


# ----------------------------------------------------------------------------- distributions


@overload
def norm_sf(x: float) -> float: ...
@overload
def norm_sf(x: FloatArray) -> FloatArray: ...
def norm_sf(x: Num) -> Num:
    """Upper tail probability of the standard normal distribution."""
    return 0.5 * _erfc(x * _SQRT_HALF)


def _positive_df(x: Any, df: Any) -> Any:
    return (x == x) & (abs(x) < math.inf) & (df > 0.0) & (df < math.inf)


def _t_beta_args(x: Any, df: Any) -> tuple[Any, Any]:
    """``df / (df + x^2)`` and ``x^2 / (df + x^2)``, each computed without the other's
    rounding (through ``r^2 = x^2 / df`` when r <= 1, else through ``1 / r^2``)."""
    r = abs(x) / sqrt(df)
    near = r <= 1.0
    w = where(near, r * r, 1.0 / (r * r))
    big, small = 1.0 / (1.0 + w), w / (1.0 + w)
    return where(near, big, small), where(near, small, big)


def _t_core(x: Any, df: Any) -> Any:
    xb, yb = _t_beta_args(x, df)
    two_sided, _ = _beta_tails(0.5 * df, 0.5 + 0.0 * df, xb, yb)
    return where(x > 0.0, 0.5 * two_sided, 1.0 - 0.5 * two_sided)


def _sf_at_infinity(x: Any) -> Any:
    """The upper tail probability of a symmetric distribution at x = -inf, 0 or +inf."""
    return where(x > 0.0, 0.0, where(x < 0.0, 1.0, 0.5))


@overload
def t_sf(x: float, df: float) -> float: ...
@overload
def t_sf(x: FloatArray, df: Num) -> FloatArray: ...
@overload
def t_sf(x: Num, df: FloatArray) -> FloatArray: ...
def t_sf(x: Num, df: Num) -> Num:
    """Upper tail probability of Student's t with ``df`` degrees of freedom:
    ``I_{df/(df+x^2)}(df/2, 1/2) / 2`` for x > 0 (Abramowitz & Stegun 26.7.1)."""
    return _apply(
        _t_core,
        lambda x, df: _positive_df(x, df) & (x != 0.0),
        lambda x, df: where((x == x) & (df > 0.0), _sf_at_infinity(x), math.nan),
        x,
        df,
    )


def _chi2_boundary(lower: bool) -> Callable[[Any, Any], Any]:
    at_zero, at_inf = (0.0, 1.0) if lower else (1.0, 0.0)
    return lambda x, df: where((x == x) & (df > 0.0), where(x > 0.0, at_inf, at_zero), math.nan)


def _gamma_upper_sum(a: Any, z: Any) -> Any:
    """Q(a, z) for 2a a whole number up to 60 and z < 700, as a finite sum of positive
    terms (Abramowitz & Stegun 6.5.13 and 26.4.4-5): ``e^-z sum_(j<a) z^j / j!`` for
    whole a, and ``erfc(sqrt z) + e^-z sum_(j<a-1/2) z^(j+1/2) / Gamma(j + 3/2)``
    for a half-integer a."""
    half = a - _floor(a) > 0.0
    terms = _floor(a)
    root = sqrt(z)
    total = where(half, _erfc(root), 0.0)
    term = exp(-z) * where(half, 2.0 * _RSQRT_PI * root, 1.0)
    offset = where(half, 1.5, 1.0)
    for j in range(int(largest(terms))):
        total = total + where(j < terms, term, 0.0)
        term = term * z / (j + offset)
    return total


def _chi2_upper(x: Any, df: Any) -> Any:
    """Q(df/2, x/2): a finite sum for whole df up to 60, else the series or fraction."""
    short = (df <= 60.0) & (df == _floor(df)) & (x < 1400.0)
    return _split(
        short,
        lambda x, df: (_gamma_upper_sum(0.5 * df, 0.5 * x),),
        lambda x, df: (_gamma_tails(0.5 * df, 0.5 * x)[1],),
        x,
        df,
    )[0]


@overload
def chi2_sf(x: float, df: float) -> float: ...
@overload
def chi2_sf(x: FloatArray, df: Num) -> FloatArray: ...
@overload
def chi2_sf(x: Num, df: FloatArray) -> FloatArray: ...
def chi2_sf(x: Num, df: Num) -> Num:
    """Upper tail probability of chi^2 with ``df`` degrees of freedom: Q(df/2, x/2)."""
    return _apply(
        _chi2_upper,
        lambda x, df: _positive_df(x, df) & (x > 0.0),
        _chi2_boundary(lower=False),
        x,
        df,
    )


@overload
def chi2_cdf(x: float, df: float) -> float: ...
@overload
def chi2_cdf(x: FloatArray, df: Num) -> FloatArray: ...
@overload
def chi2_cdf(x: Num, df: FloatArray) -> FloatArray: ...
def chi2_cdf(x: Num, df: Num) -> Num:
    """Lower tail probability of chi^2 with ``df`` degrees of freedom: P(df/2, x/2)."""
    return _apply(
        lambda x, df: _gamma_tails(0.5 * df, 0.5 * x)[0],
        lambda x, df: _positive_df(x, df) & (x > 0.0),
        _chi2_boundary(lower=True),
        x,
        df,
    )


def _f_core(x: Any, dfn: Any, dfd: Any) -> Any:
    scaled = dfn * x
    total = dfd + scaled
    return _beta_tails(0.5 * dfd, 0.5 * dfn, dfd / total, scaled / total)[0]


def f_sf(x: float, dfn: float, dfd: float) -> float:
    """Upper tail probability of F with (``dfn``, ``dfd``) degrees of freedom:
    ``I_{dfd/(dfd + dfn x)}(dfd/2, dfn/2)`` (Abramowitz & Stegun 26.6.2)."""
    return float(
        _apply(
            _f_core,
            lambda x, m, n: _positive_df(x, m) & (n > 0.0) & (n < math.inf) & (x > 0.0),
            lambda x, m, n: where(
                (x == x) & (m > 0.0) & (n > 0.0), where(x > 0.0, 0.0, 1.0), math.nan
            ),
            x,
            dfn,
            dfd,
        )
    )


# ----------------------------------------------------------------------------- quantiles


def _per_value(fn: Callable[..., float], *values: Any) -> Num:
    """``fn`` of floats, applied once per distinct combination of the arguments (the
    quantiles asked for in a batch of problems are few: one level, a few df)."""
    scalar, args = _args(*values)
    if scalar:
        return fn(*args)
    shape = args[0].shape
    varying = [n for n, v in enumerate(values) if np.ndim(v) and np.size(v) > 1]
    if len(varying) == 1:  # the usual case: one quantile, many problems' df
        distinct, inverse = np.unique(args[varying[0]].ravel(), return_inverse=True)
        fixed = [float(a.flat[0]) if n != varying[0] else 0.0 for n, a in enumerate(args)]
        rows = [
            [value if n == varying[0] else fixed[n] for n in range(len(args))]
            for value in distinct.tolist()
        ]
    else:
        table = np.stack([a.ravel() for a in args], axis=1)
        distinct_rows, inverse = np.unique(table, axis=0, return_inverse=True)
        rows = distinct_rows.tolist()
    found = np.array([fn(*row) for row in rows], dtype=np.float64)
    out: FloatArray = found[np.asarray(inverse).reshape(-1)].reshape(shape)
    return out


def _outside(q: float) -> float | None:
    """The quantile of a probability that is 0, 1 or not one (None for 0 < q < 1)."""
    if 0.0 < q < 1.0:
        return None
    return math.inf if q == 0.0 else (-math.inf if q == 1.0 else math.nan)


def _root(f: Callable[[float], tuple[float, float]], start: float, at_zero: float) -> float:
    """The root above 0 of ``f`` (decreasing; ``at_zero`` its value at 0), from ``start``."""
    scale = start if start > 0.0 else 1.0
    return solve_decreasing_scalar(f, 0.0, scale, start=start, first=(at_zero, math.nan))


@lru_cache(maxsize=1024)
def _norm_isf(q: float) -> float:
    outside = _outside(q)
    if outside is not None:
        return outside
    if q > 0.5:  # 1 - q is exact here
        return -_norm_isf(1.0 - q)
    if q == 0.5:
        return 0.0
    t = math.sqrt(-2.0 * math.log(q))  # Abramowitz & Stegun 26.2.23, |error| < 4.5e-4
    start = t - (2.515517 + t * (0.802853 + t * 0.010328)) / (
        1.0 + t * (1.432788 + t * (0.189269 + t * 0.001308))
    )
    target = math.log(q)

    def f(x: float) -> tuple[float, float]:
        sf = norm_sf(x)
        return log(sf) - target, -exp(-0.5 * x * x - _HALF_LOG_2PI) / sf

    return _root(f, start, math.log(0.5) - target)


@overload
def norm_isf(q: float) -> float: ...
@overload
def norm_isf(q: FloatArray) -> FloatArray: ...
def norm_isf(q: Num) -> Num:
    """The x with upper tail probability ``q`` under the standard normal."""
    return _per_value(_norm_isf, q)


@lru_cache(maxsize=1024)
def _t_isf(q: float, df: float) -> float:
    outside = _outside(q)
    if not df > 0.0:
        return math.nan
    if outside is not None:
        return outside
    if q > 0.5:
        return -_t_isf(1.0 - q, df)
    if q == 0.5:
        return 0.0
    z = _norm_isf(q)  # Cornish-Fisher expansion to 1 / df^2 as the start
    start = z + (z**3 + z) / (4.0 * df) + (5.0 * z**5 + 16.0 * z**3 + 3.0 * z) / (96.0 * df * df)
    target = math.log(q)

    def f(x: float) -> tuple[float, float]:
        sf = _t_core(x, df)
        xb, yb = _t_beta_args(x, df)
        density = exp(_beta_kernel(0.5 * df, 0.5, xb, yb)) / x
        return log(sf) - target, -density / sf

    return _root(f, start, math.log(0.5) - target)


@overload
def t_isf(q: float, df: float) -> float: ...
@overload
def t_isf(q: FloatArray, df: Num) -> FloatArray: ...
@overload
def t_isf(q: Num, df: FloatArray) -> FloatArray: ...
def t_isf(q: Num, df: Num) -> Num:
    """The x with upper tail probability ``q`` under Student's t with ``df`` df."""
    return _per_value(_t_isf, q, df)


@lru_cache(maxsize=1024)
def _chi2_root(prob: float, df: float, upper: bool) -> float:
    """The x with Q(df/2, x/2) = ``prob`` (``upper``) or P(df/2, x/2) = ``prob``, for
    0 < prob <= 1/2: the smaller tail is matched, where it is computed directly."""
    a = 0.5 * df
    z = _norm_isf(prob) if upper else -_norm_isf(prob)
    h = 2.0 / (9.0 * df)
    start = df * (1.0 - h + z * math.sqrt(h)) ** 3  # Wilson-Hilferty
    if not upper:  # near 0, P(a, x/2) ~ (x/2)^a / Gamma(a + 1): a start below the root
        lgamma = (a + 0.5) * math.log(a + 1.0) - (a + 1.0) + _HALF_LOG_2PI
        start = max(start, 2.0 * math.exp((math.log(prob) + lgamma + log_gamma_rest(a + 1.0)) / a))
    target = math.log(prob)

    def f(x: float) -> tuple[float, float]:
        p, q, density = _gamma_tails(a, 0.5 * x)
        if upper:
            return log(q) - target, -density / x / q
        return target - log(p), -density / x / p

    return _root(f, start, -target if upper else math.inf)


def _chi2_quantile(lower: float, upper: float, df: float) -> float:
    """The chi^2 quantile with tail probabilities ``lower`` and ``upper`` (their sum 1)."""
    if not df > 0.0 or lower != lower:
        return math.nan
    if upper <= 0.0:
        return math.inf
    if lower <= 0.0:
        return 0.0
    return _chi2_root(upper, df, True) if upper <= 0.5 else _chi2_root(lower, df, False)


@overload
def chi2_isf(q: float, df: float) -> float: ...
@overload
def chi2_isf(q: FloatArray, df: Num) -> FloatArray: ...
@overload
def chi2_isf(q: Num, df: FloatArray) -> FloatArray: ...
def chi2_isf(q: Num, df: Num) -> Num:
    """The x with upper tail probability ``q`` under chi^2 with ``df`` df."""
    return _per_value(lambda q, df: _chi2_quantile(1.0 - q, q, df) if q == q else math.nan, q, df)


@overload
def chi2_ppf(p: float, df: float) -> float: ...
@overload
def chi2_ppf(p: FloatArray, df: Num) -> FloatArray: ...
@overload
def chi2_ppf(p: Num, df: FloatArray) -> FloatArray: ...
def chi2_ppf(p: Num, df: Num) -> Num:
    """The x with lower tail probability ``p`` under chi^2 with ``df`` df."""
    return _per_value(lambda p, df: _chi2_quantile(p, 1.0 - p, df) if p == p else math.nan, p, df)
