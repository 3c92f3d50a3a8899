"""The text summary of a network meta-analysis (``summary()`` and ``metaan network``)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from metaan._format import fmt, fmt_p, format_excluded

if TYPE_CHECKING:
    from metaan.network.results import NetworkResult

__all__ = ["format_network"]

_METHOD_NAMES = {
    "DL": "DerSimonian-Laird, generalised as in netmeta",
    "REML": "restricted maximum likelihood",
    "ML": "maximum likelihood",
}
_SCALE = {"OR": "odds ratios", "RR": "risk ratios"}


def _heterogeneity(res: NetworkResult) -> list[str]:
    lines = []
    if res.tau2 is None:
        lines.append("tau^2 = NA (Q has no degrees of freedom)")
    else:
        how = "fixed" if res.tau2_fixed else _METHOD_NAMES[res.method]
        lines.append(f"tau^2 = {fmt(res.tau2)} ({how}); tau = {fmt(math.sqrt(res.tau2))}")
    if res.I2 is not None and res.I2_ci is not None:
        lines.append(f"I^2 = {fmt(res.I2, 1)}% [{fmt(res.I2_ci[0], 1)}%, {fmt(res.I2_ci[1], 1)}%]")
    lines.append(f"Q = {fmt(res.Q, 2)} (df {res.df_Q}), p = {fmt_p(res.pval_Q)}")
    dec = res.decomposition
    if dec is not None:
        lines.append(
            f"  within designs:  Q = {fmt(dec.Q_within, 2)} (df {dec.df_within}), "
            f"p = {fmt_p(dec.pval_within)}"
        )
        lines.append(
            f"  between designs: Q = {fmt(dec.Q_between, 2)} (df {dec.df_between}), "
            f"p = {fmt_p(dec.pval_between)}  (inconsistency)"
        )
    return lines


def _versus_reference(res: NetworkResult) -> list[str]:
    ref = res.index(res.reference)
    width = max(len("treatment"), *(len(t) for t in res.treatments))
    level = f"{res.level:g}% CI"
    scale = _SCALE.get(res.measure or "", "effects")
    lines = [
        f"Every treatment versus {res.reference} ({scale}; P-score: "
        f"{'small' if res.small_values == 'good' else 'large'} effects are better):",
        f"{'':{width}}  {'common effects':^34}  {'random effects':^34}  {'P-score':^15}",
        f"{'treatment':<{width}}  "
        + f"{'estimate':>9} {level:>17} {'p':>6}  " * 2
        + f"{'common':>7} {'random':>7}",
    ]
    for i, name in enumerate(res.treatments):
        cells = []
        for est in (res.common, res.random):
            if i == ref:
                cells.append(f"{'.':>9} {'':>17} {'':>6}")
                continue
            te, lo, hi = est.TE[i, ref], est.lower[i, ref], est.upper[i, ref]
            if res.is_ratio:
                te, lo, hi = math.exp(te), math.exp(lo), math.exp(hi)
            ci = f"[{fmt(lo)}, {fmt(hi)}]"
            cells.append(f"{fmt(te):>9} {ci:>17} {fmt_p(est.pval[i, ref]):>6}")
        lines.append(
            f"{name:<{width}}  {cells[0]}  {cells[1]}  "
            f"{fmt(res.common.pscore[i]):>7} {fmt(res.random.pscore[i]):>7}"
        )
    return lines


def format_network(res: NetworkResult) -> str:
    """The summary a person reads (see :meth:`NetworkResult.summary`)."""
    head = [
        "Network meta-analysis, graph-theoretical method (Rücker 2012)",
        f"{res.k} studies, {res.m} comparisons, {res.n} treatments, {res.d} designs"
        + (f"; measure: {res.measure}" if res.measure else ""),
        "",
    ]
    split = res.netsplit.random
    tested = int(np.sum(np.isfinite(split.pval)))
    notes = [
        "",
        f"Direct versus indirect evidence (random effects, back-calculation): "
        f"{tested} comparison{'s' if tested != 1 else ''} with both; see netsplit.",
    ]
    body = head + _heterogeneity(res) + [""] + _versus_reference(res) + notes
    return "\n".join(body + format_excluded(res.excluded))
