"""The estimation engine: one Knapp-Hartung rule, batches equal to single fits,
extreme magnitudes solved exactly, and every estimating equation satisfied."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

import metaan
from metaan.engine import fit_segments, knha_factor
from metaan.estimators import TAU2_METHODS

FIELDS = ("estimate", "se", "stat", "pval", "ci_lb", "ci_ub", "tau2", "se_tau2", "I2", "H2",
          "QE", "QEp", "pi_lb", "pi_ub")  # fmt: skip
EPS = float(np.finfo(float).eps)


def _random_sets(n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Data sets with k from 2 to 40, sampling-variance scales from 1e-3 to 1e2,
    and tau^2 zero for a quarter of them."""
    rng = np.random.default_rng(seed)
    sets = []
    for _ in range(n):
        k = int(rng.integers(2, 41))
        scale = 10.0 ** rng.uniform(-3, 2)
        vi = scale * rng.uniform(0.2, 2.0, k)
        tau2 = 0.0 if rng.random() < 0.25 else scale * rng.uniform(0.05, 3.0)
        yi = rng.normal(rng.normal(0, 1), np.sqrt(vi + tau2))
        sets.append((yi, vi))
    return sets


# --------------------------------------------------------------------------------------
# Knapp-Hartung: one rule, metafor's


def test_the_knapp_hartung_factor_is_zero_when_the_residuals_are_rounding_noise() -> None:
    assert knha_factor(np.array([EPS]), np.array([4.0])).tolist() == [0.0]
    assert knha_factor(np.array([0.0]), np.array([4.0])).tolist() == [0.0]
    assert knha_factor(np.array([4 * EPS]), np.array([4.0])).tolist() == [EPS]
    assert knha_factor(np.array([2.0]), np.array([4.0])).tolist() == [0.5]


def test_fit_and_fit_regression_share_metafors_knapp_hartung_rule_near_zero() -> None:
    # Equal effects up to rounding: the weighted residual sum is below machine
    # epsilon. metafor 3.8 sets s2w to 0, so the SE is 0 and the CI collapses.
    yi = np.full(5, 0.3) + np.array([0.0, 1e-17, -1e-17, 0.0, 2e-17])
    vi = np.array([0.01, 0.02, 0.03, 0.015, 0.05])
    res = metaan.fit(yi=yi, vi=vi, test="knha")
    reg = metaan.fit_regression(yi=yi, vi=vi, test="knha")
    assert res.se == 0.0
    assert float(reg.se[0]) == 0.0
    assert res.ci_lb == res.ci_ub == res.estimate
    assert math.isinf(res.stat) and res.pval == 0.0


# --------------------------------------------------------------------------------------
# A batch is many single fits


@pytest.mark.parametrize("method", ["EE", *TAU2_METHODS])
@pytest.mark.parametrize("test", ["z", "knha"])
def test_every_problem_of_a_batch_equals_its_single_fit(method: str, test: str) -> None:
    sets = _random_sets(30, seed=7)
    yi = np.concatenate([y for y, _ in sets])
    vi = np.concatenate([v for _, v in sets])
    groups = np.repeat(np.arange(len(sets)), [y.size for y, _ in sets])
    batch = fit_segments(yi, vi, groups, method=method, test=test)
    for b, (y, v) in enumerate(sets):
        res = metaan.fit(yi=y, vi=v, method=method, test=test)
        for name in FIELDS:
            got, want = float(getattr(batch, name)[b]), getattr(res, name)
            want = math.nan if want is None else float(want)
            assert got == pytest.approx(want, rel=1e-12, abs=1e-300, nan_ok=True), (b, name)
        if method != "EE":
            assert res.tau2_ci is not None
            assert float(batch.tau2_ci_ub[b]) == pytest.approx(res.tau2_ci[1], rel=1e-12)


# --------------------------------------------------------------------------------------
# Extreme magnitudes


def _reml_in_mpmath(yi: np.ndarray, vi: np.ndarray) -> tuple[mpmath.mpf, mpmath.mpf]:
    """REML tau^2 and the estimate at 60 digits, by bisection on the REML score."""
    mpmath.mp.dps = 60
    y = [mpmath.mpf(float(x)) for x in yi]
    v = [mpmath.mpf(float(x)) for x in vi]

    def parts(t: mpmath.mpf) -> tuple[mpmath.mpf, mpmath.mpf]:
        w = [1 / (vv + t) for vv in v]
        sw = mpmath.fsum(w)
        mu = mpmath.fsum(wi * yi_ for wi, yi_ in zip(w, y, strict=True)) / sw
        ypp = mpmath.fsum((wi * (yi_ - mu)) ** 2 for wi, yi_ in zip(w, y, strict=True))
        return ypp - (sw - mpmath.fsum(wi * wi for wi in w) / sw), mu

    lo, hi = mpmath.mpf(0), mpmath.mpf(1)
    while parts(hi)[0] > 0:
        hi *= 4
    for _ in range(400):
        mid = (lo + hi) / 2
        if parts(mid)[0] > 0:
            lo = mid
        else:
            hi = mid
    tau2 = (lo + hi) / 2
    return tau2, parts(tau2)[1]


@pytest.mark.parametrize("size", [1e3, 1e6, 1e8, 1e10, 1e12])
def test_a_single_huge_outlier_is_solved_as_exactly_as_an_ordinary_one(size: float) -> None:
    rng = np.random.default_rng(3)
    yi = np.append(rng.normal(0.0, 0.2, 9), size)
    vi = np.full(10, 0.04)
    res = metaan.fit(yi=yi, vi=vi, method="REML")
    tau2, mu = _reml_in_mpmath(yi, vi)
    assert res.tau2 == pytest.approx(float(tau2), rel=1e-10)
    assert res.estimate == pytest.approx(float(mu), rel=1e-10)
    assert res.tau2_ci is not None
    assert res.tau2_ci[0] <= res.tau2 <= res.tau2_ci[1]
    assert res.ci_lb <= res.estimate <= res.ci_ub


# --------------------------------------------------------------------------------------
# Convergence: every estimate satisfies its estimating equation


def _equation(method: str, yi: np.ndarray, vi: np.ndarray, t: float) -> tuple[float, float]:
    """The estimating equation at t and the size of its terms, in long double."""
    y, v = yi.astype(np.longdouble), vi.astype(np.longdouble)
    w = 1 / (v + np.longdouble(t))
    sw = w.sum()
    e = y - (w * y).sum() / sw
    rss, ypp = (w * e * e).sum(), (w * w * e * e).sum()
    if method == "REML":
        trp = sw - (w * w).sum() / sw
        return float(ypp - trp), float(ypp + trp)
    if method == "ML":
        return float(ypp - sw), float(ypp + sw)
    return float(rss - (y.size - 1)), float(rss + y.size - 1)


@pytest.mark.parametrize("method", ["REML", "ML", "PM", "EB"])
def test_every_iterative_estimate_satisfies_its_estimating_equation(method: str) -> None:
    sets = _random_sets(1500, seed=11)
    yi = np.concatenate([y for y, _ in sets])
    vi = np.concatenate([v for _, v in sets])
    groups = np.repeat(np.arange(len(sets)), [y.size for y, _ in sets])
    batch = fit_segments(yi, vi, groups, method=method, qprofile=False)
    assert not np.isnan(batch.tau2).any()
    for b, (y, v) in enumerate(sets):
        t = float(batch.tau2[b])
        value, size = _equation(method, y, v, t)
        if t == 0.0:
            assert value <= 1e-10 * size, (b, value)  # the boundary: not positive at 0
        else:
            assert abs(value) <= 1e-10 * size, (b, t, value, size)
