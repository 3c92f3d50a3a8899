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

from dataclasses import dataclass

import numpy as np

from metaan.engine import q_profile_one
from metaan.estimators import FloatArray, Weighted

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
    fe = Weighted(np.zeros((1, k)), 1.0 / vi[None, :], X)
    return float((k - p) / fe.tr_p()[0])


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
    square root; those for I^2 and H^2 follow from the typical within-study
    variance. The limits are found by :func:`metaan.engine.q_profile_batch`.
    """
    ci = q_profile_one(np.asarray(yi, dtype=np.float64), np.asarray(vi, dtype=np.float64), level, X)
    return HeterogeneityCI(
        tau2=(ci["tau2_ci_lb"], ci["tau2_ci_ub"]),
        tau=(ci["tau_ci_lb"], ci["tau_ci_ub"]),
        I2=(ci["I2_ci_lb"], ci["I2_ci_ub"]),
        H2=(ci["H2_ci_lb"], ci["H2_ci_ub"]),
    )
