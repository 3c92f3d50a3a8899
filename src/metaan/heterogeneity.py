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
from typing import TYPE_CHECKING, Any

import numpy as np

from metaan._args import Column, check_level
from metaan._base import Result
from metaan._format import fmt
from metaan._json import json_number
from metaan.engine import q_profile_one
from metaan.estimators import FloatArray, Weighted

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "HeterogeneityCI",
    "heterogeneity_ci",
    "q_profile_ci",
    "typical_within_variance",
]


@dataclass(frozen=True, repr=False)
class HeterogeneityCI(Result):
    """Q-profile confidence limits ``(lower, upper)`` for tau^2 and its transforms."""

    tau2: tuple[float, float]
    tau: tuple[float, float]
    I2: tuple[float, float]
    H2: tuple[float, float]

    def _short(self) -> str:
        return f"tau2 [{self.tau2[0]:.4g}, {self.tau2[1]:.4g}]"

    def to_dict(self) -> dict[str, Any]:
        """Each interval as ``[lower, upper]`` (NaN becomes None)."""
        return {
            name: [json_number(low), json_number(high)]
            for name, (low, high) in self._intervals().items()
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per quantity: its lower and upper limit."""
        import pandas as pd

        items = self._intervals().items()
        return pd.DataFrame(
            {
                "quantity": [name for name, _ in items],
                "ci_lb": [low for _, (low, _) in items],
                "ci_ub": [high for _, (_, high) in items],
            }
        )

    def summary(self) -> str:
        """The four intervals, one a line."""
        lines = ["Q-profile confidence intervals (Viechtbauer 2007)"]
        for name, (low, high) in self._intervals().items():
            lines.append(f"  {name:<4} [{fmt(low)}, {fmt(high)}]")
        return "\n".join(lines)

    def _intervals(self) -> dict[str, tuple[float, float]]:
        return {"tau2": self.tau2, "tau": self.tau, "I2": self.I2, "H2": self.H2}


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
    data: pd.DataFrame | None = None,
    *,
    yi: Column = "yi",
    vi: Column = "vi",
    sei: Column | None = None,
    level: float = 95.0,
) -> HeterogeneityCI:
    """Q-profile confidence interval for tau^2 (Viechtbauer 2007).

    The limits are the values of tau^2 at which the generalised Q statistic equals
    the upper and lower ``alpha/2`` quantiles of chi^2 with k - 1 degrees of
    freedom. A limit below zero is truncated at zero. The interval for tau is the
    square root; those for I^2 and H^2 follow from the typical within-study
    variance. The limits are found by :func:`metaan.engine.q_profile_batch`.

    Parameters
    ----------
    data, yi, vi, sei
        The studies, as for :func:`metaan.fit`: a table and its columns, or the
        values. Rows without an effect size or variance are left out.
    level
        Confidence level as a percentage (95) or a fraction (0.95).
    """
    from metaan.models import prepare_effects  # models builds on this module

    effects = prepare_effects(data, yi=yi, vi=vi, sei=sei)
    return heterogeneity_ci(effects.yi, effects.vi, check_level(level))


def heterogeneity_ci(
    yi: FloatArray, vi: FloatArray, level: float, X: FloatArray | None = None
) -> HeterogeneityCI:
    """:func:`q_profile_ci` on arrays (``level`` in percent; ``X`` a design matrix)."""
    ci = q_profile_one(np.asarray(yi, dtype=np.float64), np.asarray(vi, dtype=np.float64), level, X)
    return HeterogeneityCI(
        tau2=(ci["tau2_ci_lb"], ci["tau2_ci_ub"]),
        tau=(ci["tau_ci_lb"], ci["tau_ci_ub"]),
        I2=(ci["I2_ci_lb"], ci["I2_ci_ub"]),
        H2=(ci["H2_ci_lb"], ci["H2_ci_ub"]),
    )
