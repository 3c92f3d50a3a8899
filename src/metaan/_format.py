"""Numbers and results written for people.

:func:`fmt`, :func:`fmt_p` and :func:`format_summary` write plain text (``summary()``
and the CLI table view); :func:`fmt_typeset` writes a number as the figures and the
report print it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from metaan.results import Exclusion, MetaResult

__all__ = [
    "MINUS",
    "SCIENTIFIC_FROM",
    "fit_header",
    "fmt",
    "fmt_p",
    "fmt_typeset",
    "format_excluded",
    "format_summary",
    "p_equals",
    "text_table",
]

#: The typographic minus sign.
MINUS = "\u2212"

_MODEL_NAMES = {
    "EE": "Common-effect model (inverse variance)",
    "MH": "Common-effect model (Mantel-Haenszel)",
    "PETO": "Common-effect model (Peto)",
}
_ESTIMATOR_NAMES = {
    "DL": "DerSimonian-Laird",
    "HE": "Hedges",
    "HS": "Hunter-Schmidt",
    "SJ": "Sidik-Jonkman",
    "ML": "maximum likelihood",
    "REML": "restricted maximum likelihood",
    "EB": "empirical Bayes",
    "PM": "Paule-Mandel",
}


#: From this magnitude on, numbers are written in scientific notation: a fixed
#: number of decimals would print hundreds of digits for 1e300.
SCIENTIFIC_FROM = 1e8


def fmt(x: float | None, digits: int = 4) -> str:
    """A number with ``digits`` decimals (``digits`` significant decimals in
    scientific notation from 1e8 on), or ``-`` when missing (None, NaN) or infinite."""
    if x is None or not math.isfinite(x):
        return "-"
    if abs(x) >= SCIENTIFIC_FROM:
        return f"{x:.{digits}e}"
    return f"{x:.{digits}f}"


def fmt_p(p: float | None) -> str:
    """A p-value as journals print it: ``<.0001`` below 1e-4; ``-`` when missing."""
    if p is None or not math.isfinite(p):
        return "-"
    return "<.0001" if p < 1e-4 else f"{p:.4f}"


def p_equals(p: float | None) -> str:
    """A p-value in a sentence: ``p = 0.0186``, ``p < .0001``; ``p = -`` when missing."""
    text = fmt_p(p)
    return f"p < {text[1:]}" if text.startswith("<") else f"p = {text}"


def fmt_typeset(x: float | None, digits: int = 2) -> str:
    """A number as the figures and the report print it.

    ``digits`` fixed decimals with a typographic minus (U+2212) and no sign on a
    value that rounds to zero (``-0.001`` prints as ``0.00``); an en dash when
    missing (None or NaN); ``∞`` or ``−∞`` when infinite.
    """
    if x is None or math.isnan(x):
        return "\u2013"
    if math.isinf(x):
        return "\u221e" if x > 0 else MINUS + "\u221e"
    text = f"{x:.{digits}e}" if abs(x) >= SCIENTIFIC_FROM else f"{x:.{digits}f}"
    if text.startswith("-"):
        text = text[1:] if float(text) == 0.0 else MINUS + text[1:]
    return text


def format_excluded(excluded: Sequence[Exclusion]) -> list[str]:
    """The rows left out of an analysis, one line each under a blank line and a count
    (``Excluded (2):``); no lines when none was."""
    if not excluded:
        return []
    lines = ["", f"Excluded ({len(excluded)}):"]
    for e in excluded:
        where = f"row {e.row}" if e.row is not None else ""
        who = f" ({e.study})" if e.study else ""
        lines.append(f"  {where}{who}: {e.reason}")
    return lines


def text_table(frame: pd.DataFrame) -> str:
    """A table for people: 4 decimals, ``-`` for missing values, no index."""
    return str(frame.to_string(index=False, na_rep="-", float_format=lambda x: f"{x:.4f}"))


def fit_header(res: MetaResult, what: str) -> list[str]:
    """The first lines of an analysis of a fit: what it is, k, the measure, the
    model's settings, and the pooled estimate it starts from."""
    scale = " (log scale)" if res.is_ratio else ""
    measure = f"; measure {res.measure}{scale}" if res.measure else ""
    return [
        f"{what}: k = {res.k}{measure}; model {res.method}, test {res.test}, "
        f"{res.level:g}% intervals",
        f"Pooled estimate: {fmt(res.estimate)} [{fmt(res.ci_lb)}, {fmt(res.ci_ub)}]"
        + (f", tau^2 = {fmt(res.tau2)}" if res.model == "random" else ""),
    ]


def _ci(pair: tuple[float, float] | None, digits: int = 4) -> str:
    if pair is None:
        return ""
    return f"[{fmt(pair[0], digits)}, {fmt(pair[1], digits)}]"


def format_summary(res: MetaResult) -> str:
    """The summary a person reads: model, heterogeneity, estimate and intervals."""
    level = f"{res.level:g}%"
    if res.model == "random":
        title = f"Random-effects model (tau^2 estimator: {_ESTIMATOR_NAMES[res.method]})"
    else:
        title = _MODEL_NAMES[res.method]
    lines = [title, f"k = {res.k}" + (f"; measure: {res.measure}" if res.measure else "")]
    lines.append("")
    if res.model == "random":
        lines.append(
            f"tau^2 = {fmt(res.tau2)} (SE {fmt(res.se_tau2)}) {level} CI {_ci(res.tau2_ci)}"
        )
        tau = None if res.tau2 is None else math.sqrt(res.tau2)
        lines.append(f"tau   = {fmt(tau)} {level} CI {_ci(res.tau_ci)}")
        lines.append(f"I^2   = {fmt(res.I2, 2)}% {level} CI {_ci(res.I2_ci, 2)}")
        lines.append(f"H^2   = {fmt(res.H2)} {level} CI {_ci(res.H2_ci)}")
    else:
        lines.append(f"I^2   = {fmt(res.I2, 2)}%   H^2 = {fmt(res.H2)}")
    lines.append(f"Q({res.QE_df}) = {fmt(res.QE)}, {p_equals(res.QEp)}")
    if res.method == "MH" and res.MH is not None:
        lines.append(
            f"Cochran-Mantel-Haenszel test: {fmt(res.MH)}, {p_equals(res.MHp)}; "
            f"Tarone's test: {fmt(res.TA)}, {p_equals(res.TAp)}"
        )
    lines.append("")
    stat_name = "t" if res.df is not None else "z"
    df = f"({res.df})" if res.df is not None else ""
    header = f"{'estimate':>10} {'se':>8} {stat_name + df:>8} {'p':>8} {'ci.lb':>9} {'ci.ub':>9}"
    lines.append(header)
    lines.append(
        f"{fmt(res.estimate):>10} {fmt(res.se):>8} {fmt(res.stat, 3):>8} {fmt_p(res.pval):>8} "
        f"{fmt(res.ci_lb):>9} {fmt(res.ci_ub):>9}"
    )
    if res.is_ratio:
        lines.append(
            f"exponentiated: {fmt(math.exp(res.estimate))} "
            f"[{fmt(math.exp(res.ci_lb))}, {fmt(math.exp(res.ci_ub))}]"
        )
    if res.model == "random":
        convention = " (R meta's convention)" if res.prediction == "meta" else ""
        lines.append(
            f"{level} prediction interval{convention}: [{fmt(res.pi_lb)}, {fmt(res.pi_ub)}]"
        )
        if res.is_ratio:
            lines.append(f"exponentiated: [{fmt(math.exp(res.pi_lb))}, {fmt(math.exp(res.pi_ub))}]")
    lines += [f"Note: {note}" for note in res.notes]
    lines += format_excluded(res.excluded)
    return "\n".join(lines)
