"""Plain-text rendering of results for people (``summary()`` and the CLI table view)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from metaan.results import MetaResult

__all__ = ["fmt", "fmt_p", "format_summary"]

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


def fmt(x: float | None, digits: int = 4) -> str:
    """A number with ``digits`` decimals, or ``-`` when missing."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}"


def fmt_p(p: float | None) -> str:
    """A p-value as journals print it: ``<.0001`` below 1e-4."""
    if p is None or math.isnan(p):
        return "-"
    return "<.0001" if p < 1e-4 else f"{p:.4f}"


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
    lines.append(f"Q({res.QE_df}) = {fmt(res.QE)}, p = {fmt_p(res.QEp)}")
    if res.method == "MH" and res.MH is not None:
        lines.append(
            f"Cochran-Mantel-Haenszel test: {fmt(res.MH)}, p = {fmt_p(res.MHp)}; "
            f"Tarone's test: {fmt(res.TA)}, p = {fmt_p(res.TAp)}"
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
        lines.append(f"{level} prediction interval: [{fmt(res.pi_lb)}, {fmt(res.pi_ub)}]")
        if res.is_ratio:
            lines.append(f"exponentiated: [{fmt(math.exp(res.pi_lb))}, {fmt(math.exp(res.pi_ub))}]")
    if res.excluded:
        lines.append("")
        lines.append(f"Excluded ({len(res.excluded)}):")
        for e in res.excluded:
            where = f"row {e.row}" if e.row is not None else ""
            who = f" ({e.study})" if e.study else ""
            lines.append(f"  {where}{who}: {e.reason}")
    return "\n".join(lines)
