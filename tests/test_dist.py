"""metaan's normal, t, chi^2 and F distributions against 50-digit mpmath values.

Each tail probability is held to a bound that grows with the problem's
conditioning: the rounding of the argument alone moves the normal tail at x by
about x^2 ulps, the t tail by about t^2 ulps and the chi^2 and F tails by about
their degrees of freedom in ulps. Quantiles are held to 1e-13 relative, plus the
same conditioning term for t.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np
import pytest

from metaan._dist import (
    chi2_cdf,
    chi2_isf,
    chi2_ppf,
    chi2_sf,
    f_sf,
    log_gamma_rest,
    norm_isf,
    norm_sf,
    t_isf,
    t_sf,
)

EPS = 2.220446049250313e-16
mpmath.mp.dps = 50
RNG = np.random.default_rng(20261130)


def mp_t_sf(x: float, df: float) -> float:
    t, nu = mpmath.mpf(x), mpmath.mpf(df)
    half = mpmath.betainc(nu / 2, mpmath.mpf(1) / 2, 0, nu / (nu + t * t), regularized=True) / 2
    return float(half if t > 0 else 1 - half)


def mp_chi2(x: float, df: float, upper: bool) -> float:
    a, z = mpmath.mpf(df) / 2, mpmath.mpf(x) / 2
    if upper:
        return float(mpmath.gammainc(a, z, mpmath.inf, regularized=True))
    return float(mpmath.gammainc(a, 0, z, regularized=True))


def mp_f_sf(x: float, dfn: float, dfd: float) -> float:
    f, m, n = mpmath.mpf(x), mpmath.mpf(dfn), mpmath.mpf(dfd)
    return float(mpmath.betainc(n / 2, m / 2, 0, n / (n + m * f), regularized=True))


def relative_errors(got: np.ndarray, want: list[float]) -> np.ndarray:
    ref = np.array(want)
    usable = ref > 1e-300  # below that the reference itself is subnormal
    return np.where(usable, np.abs(got / np.where(usable, ref, 1.0) - 1.0), 0.0)


def test_the_normal_tail_is_exact_to_its_conditioning_from_the_centre_to_1e_minus_300() -> None:
    x = np.concatenate([RNG.normal(0.0, 3.0, 300), RNG.uniform(-37.0, 37.0, 300), [0.46875, 4.0]])
    want = [float(mpmath.ncdf(-mpmath.mpf(v))) for v in x]
    assert np.all(relative_errors(norm_sf(x), want) <= 8 * EPS * (1.0 + x * x))
    assert norm_sf(0.0) == 0.5 and norm_sf(math.inf) == 0.0 and norm_sf(-math.inf) == 1.0


def test_the_t_tail_is_exact_to_its_conditioning_for_whole_and_fractional_df() -> None:
    n = 300
    df = np.concatenate([RNG.integers(1, 40, n // 2), np.exp(RNG.uniform(-1.2, 10.8, n // 2))])
    x = RNG.standard_t(5, n) * RNG.choice([0.3, 1.0, 3.0, 30.0], n)
    want = [mp_t_sf(a, b) for a, b in zip(x, df, strict=True)]
    assert np.all(relative_errors(t_sf(x, df), want) <= 8 * EPS * (1.0 + x * x + df))


def test_the_chi2_tails_are_exact_to_their_conditioning_on_both_sides() -> None:
    n = 300
    df = np.concatenate([RNG.integers(1, 70, n // 2), np.exp(RNG.uniform(-1.2, 9.9, n // 2))])
    x = df * np.exp(RNG.normal(0.0, 0.6, n)) + RNG.uniform(0.0, 3.0, n)
    bound = 1e-13 + 8 * EPS * (x + df)  # the series or fraction, and the conditioning
    upper = [mp_chi2(a, b, upper=True) for a, b in zip(x, df, strict=True)]
    lower = [mp_chi2(a, b, upper=False) for a, b in zip(x, df, strict=True)]
    assert np.all(relative_errors(chi2_sf(x, df), upper) <= bound)
    assert np.all(relative_errors(chi2_cdf(x, df), lower) <= bound)


def test_the_f_tail_is_exact_to_its_conditioning() -> None:
    cases = [
        (2.5, 3.0, 12.0),
        (0.2, 1.0, 5.0),
        (40.0, 4.0, 200.0),
        (1.3, 7.0, 2.5),
        (9.0, 2.0, 1e4),
    ]
    for x, dfn, dfd in cases:
        got, want = f_sf(x, dfn, dfd), mp_f_sf(x, dfn, dfd)
        assert abs(got / want - 1.0) <= 8 * EPS * (1.0 + x * dfn + dfn + dfd)


def test_stirlings_remainder_gives_log_gamma_to_the_last_digits() -> None:
    a = np.array([1e-3, 0.5, 1.0, 3.5, 14.999, 15.0, 20.0, 1e3, 1e8])
    main = (a - 0.5) * np.log(a) - a + 0.5 * math.log(2.0 * math.pi)
    want = [float(mpmath.loggamma(mpmath.mpf(v))) for v in a]
    assert np.all(
        np.abs(log_gamma_rest(a) + main - want) <= 4 * EPS * np.maximum(1.0, np.abs(want))
    )


QUANTILE_PROBS = [0.4, 0.25, 0.05, 0.025, 0.005, 1e-4, 1e-10, 1e-30]
QUANTILE_DF = [0.5, 1.0, 2.0, 3.0, 9.0, 30.0, 1e3, 1e5]


@pytest.mark.parametrize("q", QUANTILE_PROBS)
def test_normal_quantiles_match_mpmath(q: float) -> None:
    want = mpmath.findroot(lambda x: mpmath.ncdf(-x) - q, float(norm_isf(q)))
    assert abs(norm_isf(q) / float(want) - 1.0) <= 1e-14
    assert norm_isf(1.0 - q) == -norm_isf(1.0 - (1.0 - q))  # the upper half by symmetry


def mp_quantile(tail: Callable[[Any], Any], q: float, guess: float) -> float:
    """The x > 0 with ``tail(x) = q``, solved for log x (50 digits)."""
    target = mpmath.log(q)
    root = mpmath.findroot(lambda u: mpmath.log(tail(mpmath.exp(u))) - target, math.log(guess))
    return float(mpmath.exp(root))


@pytest.mark.parametrize("df", QUANTILE_DF)
def test_t_quantiles_match_mpmath(df: float) -> None:
    nu = mpmath.mpf(df)
    half = mpmath.mpf(1) / 2

    def tail(t: mpmath.mpf) -> mpmath.mpf:
        return mpmath.betainc(nu / 2, half, 0, nu / (nu + t * t), regularized=True) / 2

    for q in QUANTILE_PROBS:
        got = t_isf(q, df)  # the tail's conditioning grows with df (see above)
        assert abs(got / mp_quantile(tail, q, got) - 1.0) <= 1e-13 + 8 * EPS * df, q


@pytest.mark.parametrize("df", QUANTILE_DF[:-1])  # mpmath's own P(a, x) fails at a = 5e4
def test_chi2_quantiles_of_either_tail_match_mpmath(df: float) -> None:
    a = mpmath.mpf(df) / 2

    def upper(x: mpmath.mpf) -> mpmath.mpf:
        return mpmath.gammainc(a, x / 2, mpmath.inf, regularized=True)

    def lower(x: mpmath.mpf) -> mpmath.mpf:
        return mpmath.gammainc(a, 0, x / 2, regularized=True)

    for q in QUANTILE_PROBS:
        got_upper, got_lower = chi2_isf(q, df), chi2_ppf(q, df)
        assert abs(got_upper / mp_quantile(upper, q, got_upper) - 1.0) <= 1e-13, q
        assert abs(got_lower / mp_quantile(lower, q, got_lower) - 1.0) <= 1e-13, q


def test_arrays_give_the_same_numbers_as_floats_element_by_element() -> None:
    x = np.array([-3.0, -0.2, 0.0, 0.7, 2.5, 9.0, 40.0])
    df = np.array([1.0, 2.5, 4.0, 9.0, 30.0, 1e4, 3.0])
    for fn in (t_sf, chi2_sf, chi2_cdf):
        assert np.array_equal(
            fn(x, df), [fn(float(a), float(b)) for a, b in zip(x, df, strict=True)]
        )
    assert np.array_equal(norm_sf(x), [norm_sf(float(a)) for a in x])
    q = np.array([0.025, 0.5, 0.975, 1e-8])
    assert np.array_equal(t_isf(q, 9.0), [t_isf(float(v), 9.0) for v in q])


def test_an_element_does_not_depend_on_the_others_in_its_array() -> None:
    x = RNG.uniform(0.1, 60.0, 400)
    df = RNG.choice([1.0, 4.0, 9.0, 25.5, 300.0], 400)
    whole = chi2_sf(x, df), t_sf(x, df)
    for part in (slice(0, 7), slice(100, 101), slice(250, 400)):
        assert np.array_equal(chi2_sf(x[part], df[part]), whole[0][part])
        assert np.array_equal(t_sf(x[part], df[part]), whole[1][part])


def test_limits_and_invalid_arguments_follow_the_distributions() -> None:
    assert t_sf(0.0, 5.0) == 0.5 and t_sf(math.inf, 5.0) == 0.0 and t_sf(-math.inf, 5.0) == 1.0
    assert chi2_sf(0.0, 3.0) == 1.0 and chi2_cdf(0.0, 3.0) == 0.0 and chi2_sf(math.inf, 3.0) == 0.0
    assert f_sf(0.0, 2.0, 5.0) == 1.0
    assert math.isnan(t_sf(1.0, 0.0)) and math.isnan(chi2_sf(math.nan, 3.0))
    assert math.isnan(norm_sf(math.nan)) and math.isnan(f_sf(1.0, -1.0, 5.0))
    assert norm_isf(0.5) == 0.0 and norm_isf(0.0) == math.inf and norm_isf(1.0) == -math.inf
    assert chi2_isf(1.0, 4.0) == 0.0 and chi2_ppf(1.0, 4.0) == math.inf
    assert math.isnan(t_isf(0.5, -1.0)) and math.isnan(chi2_isf(math.nan, 2.0))
    out = t_sf(np.array([np.nan, 1.0, np.inf]), np.array([3.0, np.nan, 3.0]))
    assert np.isnan(out[0]) and np.isnan(out[1]) and out[2] == 0.0
