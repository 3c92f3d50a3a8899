"""Frozen result objects: what a fit returns, and nothing mutates afterwards."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from metaan._base import Result
from metaan._dist import norm_isf
from metaan._json import json_number
from metaan.estimators import FloatArray
from metaan.heterogeneity import HeterogeneityCI, heterogeneity_ci

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Exclusion", "MetaResult", "Result"]


@dataclass(frozen=True)
class Exclusion:
    """A row left out of an analysis, and why.

    ``row`` is the row as a spreadsheet shows it (header = row 1) when the data
    came from a table, else the 1-based position in the input arrays.
    """

    row: int | None
    study: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "study": self.study, "reason": self.reason}


def _pair(x: tuple[float, float] | None) -> list[float | None] | None:
    return None if x is None else [json_number(x[0]), json_number(x[1])]


#: The fields of :meth:`MetaResult.to_dict`, in order.
SUMMARY_FIELDS: tuple[str, ...] = (
    "measure",
    "method",
    "test",
    "level",
    "k",
    "estimate",
    "se",
    "stat",
    "df",
    "pval",
    "ci_lb",
    "ci_ub",
    "tau2",
    "se_tau2",
    "tau2_ci",
    "tau_ci",
    "I2",
    "I2_ci",
    "H2",
    "H2_ci",
    "QE",
    "QE_df",
    "QEp",
    "pi_lb",
    "pi_ub",
    "prediction",
)

_RATIO_MEASURES = frozenset({"OR", "RR", "PETO"})


@dataclass(frozen=True, eq=False, repr=False)
class MetaResult(Result):
    """The result of a univariate meta-analysis (common or random effects).

    Attribute names follow the JSON output of ``metaan fit --format json``.
    ``stat`` is the z statistic, or the t statistic with ``df`` degrees of
    freedom under ``test="knha"``. ``I2`` is in percent. Fields that do not apply
    to a model (tau^2 for a common-effect model) are ``None`` or 0 as metafor has
    them. For OR and RR the estimate is on the log scale.
    """

    measure: str | None
    method: str
    test: str
    level: float
    k: int
    estimate: float
    se: float
    stat: float
    df: int | None
    pval: float
    ci_lb: float
    ci_ub: float
    tau2: float | None
    se_tau2: float | None
    I2: float | None
    H2: float | None
    QE: float | None
    QE_df: int
    QEp: float | None
    pi_lb: float
    pi_ub: float
    #: Convention of the prediction interval: "metafor" or "meta" (see metaan.fit).
    prediction: str = "metafor"
    #: Whether tau^2 has a Q-profile interval (random effects with tau^2 estimated
    #: from these studies). It is computed on first use of tau2_ci, tau_ci, I2_ci
    #: or H2_ci (or to_dict), so a fit pays for it only when it is read.
    qprofile: bool = False
    excluded: tuple[Exclusion, ...] = ()
    #: Study-level data the model was fitted to (for plots and diagnostics).
    yi: FloatArray = field(default_factory=lambda: np.empty(0))
    vi: FloatArray = field(default_factory=lambda: np.empty(0))
    #: Model weight of each study, in percent.
    weights: FloatArray = field(default_factory=lambda: np.empty(0))
    labels: Sequence[str] = ()
    #: Source row of each study (spreadsheet numbering), where known.
    rows: Sequence[int | None] = ()
    #: Cochran-Mantel-Haenszel test and Tarone's test (Mantel-Haenszel OR only).
    MH: float | None = None
    MHp: float | None = None
    TA: float | None = None
    TAp: float | None = None
    #: What a reader should know about degenerate but valid data (e.g. a variance of 0).
    notes: tuple[str, ...] = ()

    @cached_property
    def _heterogeneity_ci(self) -> HeterogeneityCI | None:
        if not self.qprofile:
            return None
        return heterogeneity_ci(self.yi, self.vi, self.level)

    @property
    def tau2_ci(self) -> tuple[float, float] | None:
        """Q-profile confidence interval for tau^2 (Viechtbauer 2007), or None."""
        ci = self._heterogeneity_ci
        return None if ci is None else ci.tau2

    @property
    def tau_ci(self) -> tuple[float, float] | None:
        """The interval for tau: the square roots of the limits for tau^2."""
        ci = self._heterogeneity_ci
        return None if ci is None else ci.tau

    @property
    def I2_ci(self) -> tuple[float, float] | None:
        """The interval for I^2 (percent), from the limits for tau^2."""
        ci = self._heterogeneity_ci
        return None if ci is None else ci.I2

    @property
    def H2_ci(self) -> tuple[float, float] | None:
        """The interval for H^2, from the limits for tau^2."""
        ci = self._heterogeneity_ci
        return None if ci is None else ci.H2

    @property
    def model(self) -> str:
        """``"common"`` or ``"random"`` effects."""
        return "random" if self.method not in {"EE", "MH", "PETO"} else "common"

    @property
    def is_ratio(self) -> bool:
        """True when the estimate is a log ratio (OR, RR, Peto OR)."""
        return self.measure in _RATIO_MEASURES or self.method == "PETO"

    def _short(self) -> str:
        text = (
            f"{self.method} k={self.k} est={self.estimate:.4g} [{self.ci_lb:.4g}, {self.ci_ub:.4g}]"
        )
        if self.tau2 is not None and self.model == "random":
            text += f" tau2={self.tau2:.4g}"
        if self.I2 is not None:
            text += f" I2={self.I2:.1f}%"
        return text

    def to_dict(self) -> dict[str, Any]:
        """Every summary number as a JSON-ready dict (NaN becomes None)."""
        out: dict[str, Any] = {}
        for name in SUMMARY_FIELDS:
            value = getattr(self, name)
            if isinstance(value, tuple):
                out[name] = _pair(value)
            elif isinstance(value, float):
                out[name] = json_number(value)
            else:
                out[name] = value
        if self.method == "MH" and self.measure == "OR":
            out.update(
                MH=json_number(self.MH),
                MHp=json_number(self.MHp),
                TA=json_number(self.TA),
                TAp=json_number(self.TAp),
            )
        out["excluded"] = [e.to_dict() for e in self.excluded]
        if self.notes:
            out["notes"] = list(self.notes)
        return out

    def to_frame(self) -> pd.DataFrame:
        """The study-level table: label, row, yi, vi, SE, CI and weight (percent)."""
        import pandas as pd

        crit = norm_isf((1.0 - self.level / 100.0) / 2.0)
        sei = np.sqrt(self.vi)
        return pd.DataFrame(
            {
                "study": list(self.labels),
                "row": list(self.rows),
                "yi": self.yi,
                "vi": self.vi,
                "sei": sei,
                "ci_lb": self.yi - crit * sei,
                "ci_ub": self.yi + crit * sei,
                "weight": self.weights,
            }
        )

    def summary(self) -> str:
        """A readable multi-line summary, as ``metaan fit`` prints it."""
        from metaan._format import format_summary

        return format_summary(self)

    def to_r(self, **options: Any) -> str:
        """This analysis as a self-contained R script for metafor that prints the
        numbers to compare; the options are those of :func:`metaan.to_r`."""
        from metaan.rexport import to_r

        return to_r(self, **options)
