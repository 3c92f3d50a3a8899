"""Heterogeneity: Q-profile confidence intervals for tau^2, tau, I^2 and H^2, and
the prediction interval.

References
----------
Viechtbauer, W. (2007). Confidence intervals for the amount of heterogeneity in
meta-analysis. *Statistics in Medicine*, 26(1), 37-52.

Higgins, J. P. T., & Thompson, S. G. (2002). Quantifying heterogeneity in a
meta-analysis. *Statistics in Medicine*, 21(11), 1539-1558.

Riley, R. D., Higgins, J. P. T., & Deeks, J. J. (2011). Interpretation of random
effects meta-analyses. *BMJ*, 342, d549.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from metaan._dist import chi2_isf, chi2_ppf
from metaan.estimators import (
    WLS,
    FloatArray,
    generalised_q_and_slope,
    solve_decreasing,
)

__all__ = [
    "HeterogeneityCI",
    "q_profile_ci",
    "typical_within_variance",
]


@dataclass(frozen=True)
class HeterogeneityCI:
    """Q-profile confidence limits ``(lower, upper)`` for tau^2 and its transforms."""

    tau2: tuple[float, float]
    tau: tuple[float, float]
    I2: tuple[float, float]
    H2: tuple[float, float]


def typical_within_variance(vi: FloatArray, X: FloatArray | None = None) -> float:
    """The 'typical' within-study variance ``s^2 = (k - p) / tr(P)`` with weights ``1/v_i``.

    It is the denominator of I^2 = tau^2 / (tau^2 + s^2) and H^2 = (tau^2 + s^2) / s^2
    (Higgins & Thompson 2002, eq. 9, generalised to meta-regression as metafor does).
    """
    k, p = vi.size, 1 if X is None else X.shape[1]
    if X is None:
        # tr(P) = sum(w) - sum(w^2) / sum(w), as WLS.tr_p computes it.
        w = 1.0 / vi
        sw = float(np.add.reduce(w))
        return (k - p) / (sw - (1.0 / sw) * float(np.add.reduce(w * w)))
    fe = WLS(np.zeros_like(vi), 1.0 / vi, X)
    return (k - p) / fe.tr_p()


def i2_h2(tau2: float, s2: float) -> tuple[float, float]:
    """I^2 (percent) and H^2 from tau^2 and the typical within-study variance."""
    return 100.0 * tau2 / (s2 + tau2), tau2 / s2 + 1.0


def q_profile_ci(
    yi: FloatArray,
    vi: FloatArray,
    X: FloatArray | None = None,
    level: float = 95.0,
) -> HeterogeneityCI:
    """Q-profile confidence interval for tau^2 (Viechtbauer 2007).

    The limits are the values of tau^2 at which the generalised Q statistic equals
    the upper and lower ``alpha/2`` quantiles of chi^2 with k - p degrees of
    freedom. A limit below zero is truncated at zero. The interval for tau is the
    square root; those for I^2 and H^2 follow from the typical within-study variance.
    """
    k, p = yi.size, 1 if X is None else X.shape[1]
    df = k - p
    alpha = 1.0 - level / 100.0
    crit_for_lower = float(chi2_isf(alpha / 2.0, df))
    crit_for_upper = float(chi2_ppf(alpha / 2.0, df))
    scale = float(np.var(yi)) + float(np.mean(vi)) + 1e-300

    def limit(crit: float, start: float, what: str) -> float:
        def excess(t: float) -> tuple[float, float]:
            q, slope = generalised_q_and_slope(t, yi, vi, X)
            return q - crit, slope

        return solve_decreasing(excess, start, scale, f"Q-profile {what} limit")

    # Q is convex and decreasing in tau^2, so Newton steps from a point below a
    # root stay below it: the upper limit's search starts at the lower limit.
    lower = limit(crit_for_lower, 0.0, "lower")
    upper = limit(crit_for_upper, lower, "upper")
    s2 = typical_within_variance(vi, X)
    i2_lo, h2_lo = i2_h2(lower, s2)
    i2_hi, h2_hi = i2_h2(upper, s2)
    return HeterogeneityCI(
        tau2=(lower, upper),
        tau=(math.sqrt(lower), math.sqrt(upper)),
        I2=(i2_lo, i2_hi),
        H2=(h2_lo, h2_hi),
    )
