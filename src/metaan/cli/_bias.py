"""``metaan bias``: small-study effects of a meta-analysis (Egger, PET-PEESE, Begg,
trim-and-fill, fail-safe N)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

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


def render(report: SmallStudyEffects, output_format: str, source: str) -> str:
    """The analyses as text in one of :data:`FORMATS`."""
    if output_format == "json":
        return json_text({"source": source, **report.to_dict()})
    if output_format == "csv":
        warnings = dict.fromkeys(report.warnings + report.rank.warnings)
        note_on_stderr(tuple(warnings), (), source)
        return frame_as_csv(with_excluded_rows(report.to_frame(), report.fit.excluded))
    return report.summary() + "\n"


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
