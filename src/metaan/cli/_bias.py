"""``metaan bias``: small-study effects of a meta-analysis (Egger, PET-PEESE, Begg,
trim-and-fill, fail-safe N)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from metaan._format import fmt, fmt_p, format_excluded
from metaan._json import json_number
from metaan.cli._app import main
from metaan.cli._common import (
    chosen_format,
    effect_options,
    fit_effects,
    frame_as_csv,
    json_text,
    model_options,
    naming_file,
    note_on_stderr,
    output_options,
    with_excluded_rows,
    write_output,
)
from metaan.models import METHODS

if TYPE_CHECKING:
    from metaan.bias import SmallStudyEffects


def _as_text(report: SmallStudyEffects) -> str:
    res = report.fit
    scale = " (log scale)" if res.is_ratio else ""
    measure = f"; measure {res.measure}{scale}" if res.measure else ""
    lines = [
        f"Small-study effects: k = {res.k}{measure}; model {res.method}, test {res.test}, "
        f"{res.level:g}% intervals",
        f"Pooled estimate: {fmt(res.estimate)} [{fmt(res.ci_lb)}, {fmt(res.ci_ub)}]",
        "",
    ]
    frame = report.to_frame()
    width = max(len("analysis"), *(len(name) for name in frame["analysis"]))
    lines.append(
        f"{'analysis':<{width}} {'statistic':>20} {'df':>4} {'p':>8} "
        f"{'estimate':>9} {'ci.lb':>9} {'ci.ub':>9}"
    )
    for row in frame.to_dict(orient="records"):
        value, df, pval = (json_number(row[name]) for name in ("value", "df", "pval"))
        if row["statistic"] in ("k0", "N"):
            stat = f"{row['statistic']} = {int(value or 0)}"
        else:
            stat = f"{row['statistic']} = {fmt(value, 3)}"
        df_text = "" if df is None else str(int(df))
        p_text = "" if pval is None else fmt_p(pval)
        estimate, lb, ub = (
            "" if x is None else fmt(x)
            for x in (json_number(row[name]) for name in ("estimate", "ci_lb", "ci_ub"))
        )
        lines.append(
            f"{row['analysis']:<{width}} {stat:>20} {df_text:>4} {p_text:>8} "
            f"{estimate:>9} {lb:>9} {ub:>9}".rstrip()
        )
    tf = report.trimfill
    lines += [
        "",
        "Egger's test and PEESE: the estimate is the intercept (the effect of a study of "
        "infinite precision).",
        f"Trim-and-fill: {tf.k0} studies estimated missing on the {tf.side} (SE of k0 "
        f"{fmt(tf.se_k0, 2)}); the estimate is that of the filled data.",
        f"Begg's test: {'exact' if report.rank.exact else 'normal-approximation'} p-value. "
        f"Fail-safe N: one-sided alpha = {report.fsn.alpha:g}.",
    ]
    if tf.k0:
        lines += ["", "Filled studies:"]
        for label, y, v in zip(tf.filled_labels, tf.filled_yi, tf.filled_vi, strict=True):
            lines.append(f"  {label}: yi = {fmt(float(y))}, vi = {fmt(float(v))}")
    warnings = dict.fromkeys(
        report.warnings + report.rank.warnings + report.trimfill.warnings
    )  # in order, once each
    if warnings:
        lines += ["", "Warnings:"] + [f"  {w}" for w in warnings]
    lines += format_excluded(res.excluded)
    return "\n".join(lines) + "\n"


def render(report: SmallStudyEffects, output_format: str, source: str) -> str:
    """The analyses as text in one of :data:`FORMATS`."""
    if output_format == "json":
        return json_text({"source": source, **report.to_dict()})
    if output_format == "csv":
        warnings = dict.fromkeys(report.warnings + report.rank.warnings)
        note_on_stderr(tuple(warnings), (), source)
        return frame_as_csv(with_excluded_rows(report.to_frame(), report.fit.excluded))
    return _as_text(report)


@main.command("bias")
@click.argument("file", metavar="FILE")
@effect_options
@model_options(
    METHODS,
    method_help="EE or a tau^2 estimator: the model of the mixed-effects regressions and of "
    "trim-and-fill.",
    test_help="z, or knha (Knapp-Hartung t test) for the mixed-effects regressions.",
)
@click.option(
    "--alpha",
    type=float,
    default=0.05,
    show_default=True,
    help="One-sided significance level of the fail-safe N.",
)
@output_options()
def bias_command(
    file: str,
    method: str,
    test: str,
    level: float,
    alpha: float,
    output_format: str | None,
    output: str | None,
    **options: Any,
) -> None:
    """Test the studies in FILE (CSV) for small-study effects.

    Egger's regression test with the PET limit estimate and PEESE, each as the
    classic weighted regression and as a mixed-effects meta-regression; Begg
    and Mazumdar's rank correlation; trim-and-fill (L0); Rosenthal's fail-safe N.
    The effect-size flags are those of `metaan fit`. With fewer than 10 studies
    the results carry a warning: these tests then mean little.
    """
    from metaan.bias import small_study_effects

    shape = chosen_format(output_format, output)
    with naming_file(file):
        _, res = fit_effects(file, method, test, level, options)
        report = small_study_effects(res, alpha=alpha)
    note_on_stderr((), res.excluded, file)
    write_output(render(report, shape, file), output, [file])
