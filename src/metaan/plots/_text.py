"""Numbers and statistics written the way the plots print them."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from metaan._format import fmt_typeset
from metaan.results import Exclusion, MetaResult

__all__ = [
    "EQ",
    "LT",
    "MEASURE_NAMES",
    "effect_header",
    "excluded_notes",
    "fmt_ci",
    "fmt_interval",
    "fmt_p",
    "heterogeneity_text",
    "model_label",
    "overall_test_text",
    "short_model_label",
]

#: How an effect measure is named on an axis and in a column header.
MEASURE_NAMES: dict[str, tuple[str, str]] = {
    "OR": ("Odds ratio", "OR"),
    "PETO": ("Peto odds ratio", "OR"),
    "RR": ("Risk ratio", "RR"),
    "RD": ("Risk difference", "RD"),
    "SMD": ("Standardised mean difference", "SMD"),
    "MD": ("Mean difference", "MD"),
    "PLO": ("Log odds (proportion)", "logit"),
    "ZCOR": ("Fisher's z", "z"),
    "GEN": ("Effect size", "Effect"),
}

_ESTIMATORS = {
    "DL": "DerSimonian-Laird",
    "HE": "Hedges",
    "HS": "Hunter-Schmidt",
    "SJ": "Sidik-Jonkman",
    "ML": "ML",
    "REML": "REML",
    "EB": "empirical Bayes",
    "PM": "Paule-Mandel",
}

#: "=" between no-break spaces, so a wrapped line never separates a name from its value.
EQ = "\u00a0=\u00a0"
LT = "\u00a0<\u00a0"


def fmt_ci(est: float, lb: float, ub: float, digits: int = 2) -> str:
    """``est [lb, ub]``."""
    return f"{fmt_typeset(est, digits)} [{fmt_typeset(lb, digits)}, {fmt_typeset(ub, digits)}]"


def fmt_interval(lb: float, ub: float, digits: int = 2) -> str:
    """``[lb, ub]``."""
    return f"[{fmt_typeset(lb, digits)}, {fmt_typeset(ub, digits)}]"


def fmt_p(p: float | None) -> str:
    """``p = 0.032``, ``p < 0.001``."""
    if p is None or math.isnan(p):
        return f"p{EQ}\u2013"
    if p < 0.001:
        return f"p{LT}0.001"
    return f"p{EQ}{p:.3f}" if p < 0.1 else f"p{EQ}{p:.2f}"


def effect_header(measure: str | None, level: float) -> str:
    """The header of the effect column: ``OR [95% CI]``."""
    short = MEASURE_NAMES.get(measure or "GEN", (measure or "Effect", measure or "Effect"))[1]
    return f"{short} [{level:g}% CI]"


def model_label(result: MetaResult) -> str:
    """``Random-effects model (REML)``, ``Common-effect model (Mantel-Haenszel)``."""
    if result.method == "MH":
        return "Common-effect model (Mantel-Haenszel)"
    if result.method == "PETO":
        return "Common-effect model (Peto)"
    if result.method == "EE":
        return "Common-effect model"
    text = f"Random-effects model ({_ESTIMATORS.get(result.method, result.method)}"
    if result.test == "knha":
        text += ", Hartung-Knapp"
    return text + ")"


def short_model_label(result: MetaResult) -> str:
    """``random effects, REML``, ``common effect``, ``common effect, Mantel-Haenszel``."""
    if result.model == "common":
        names = {"MH": ", Mantel-Haenszel", "PETO": ", Peto"}
        return "common effect" + names.get(result.method, "")
    text = f"random effects, {_ESTIMATORS.get(result.method, result.method)}"
    return text + (", Hartung-Knapp" if result.test == "knha" else "")


def heterogeneity_text(result: MetaResult, digits: int = 2) -> str:
    """``Heterogeneity: τ² = 0.31; I² = 92%; Q = 152.23, df = 12, p < 0.001``."""
    parts: list[str] = []
    if result.model == "random" and result.tau2 is not None:
        parts.append(f"\u03c4\u00b2{EQ}{fmt_typeset(result.tau2, max(digits, 3))}")
    if result.I2 is not None:
        parts.append(f"I\u00b2{EQ}{result.I2:.0f}%")
    if result.QE is not None:
        parts.append(f"Q{EQ}{fmt_typeset(result.QE, 2)}, df{EQ}{result.QE_df}, {fmt_p(result.QEp)}")
    return "Heterogeneity: " + "; ".join(parts)


def overall_test_text(result: MetaResult) -> str:
    """``Test for overall effect: z = −4.00, p < 0.001`` (t with its df under Knapp-Hartung)."""
    stat = f"t({result.df})" if result.df is not None else "z"
    return f"Test for overall effect: {stat}{EQ}{fmt_typeset(result.stat, 2)}, {fmt_p(result.pval)}"


def excluded_notes(excluded: Sequence[Exclusion], result: MetaResult | None = None) -> list[str]:
    """Footnotes for the studies a plot does not show: those left out of the fit
    (``excluded``) and, of ``result``'s studies, those without a finite effect and
    a positive variance (a double-zero table under Peto, a zero variance), which
    no funnel or radial plot can place."""
    notes = []
    if excluded:
        parts = [_who(e.study, e.row) + f": {e.reason}" for e in excluded]
        notes.append(f"Not pooled ({len(parts)}): " + "; ".join(parts) + ".")
    if result is not None:
        undrawable = ~drawable(result)
        if undrawable.any():
            parts = [
                _who(result.labels[i] if i < len(result.labels) else None, _row(result, i))
                for i in (int(j) for j in np.flatnonzero(undrawable))
            ]
            notes.append(
                f"Pooled but not drawn ({len(parts)}): "
                + "; ".join(parts)
                + " (no finite effect with a positive variance)."
            )
    return notes


def drawable(result: MetaResult) -> np.ndarray[tuple[int], np.dtype[np.bool_]]:
    """Which studies of ``result`` have a finite effect and a positive, finite variance."""
    yi = np.asarray(result.yi, dtype=float)
    vi = np.asarray(result.vi, dtype=float)
    placed: np.ndarray[tuple[int], np.dtype[np.bool_]] = (
        np.isfinite(yi) & np.isfinite(vi) & (vi > 0)
    )
    return placed


def _row(result: MetaResult, i: int) -> int | None:
    return result.rows[i] if i < len(result.rows) else None


def _who(study: str | None, row: int | None) -> str:
    name = study or "a study"
    return name + (f" (row {row})" if row is not None else "")
