"""Command-line pieces that several commands share.

:func:`effect_options` adds the effect-size flags (``--measure`` and one flag per
column, named as metafor's ``escalc`` names its arguments) to a command, and
:func:`compute_effects_from_options` turns the parsed values into an
:func:`metaan.effects.escalc` call. ``metaan effects`` and ``metaan fit`` use the
same two, so the flags mean the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import pandas as pd

from metaan.effects import MEASURES, ZERO_CELL_RULES, escalc, raw_columns
from metaan.errors import InputError

__all__ = [
    "COLUMN_FLAGS",
    "EFFECT_OPTION_NAMES",
    "compute_effects_from_options",
    "effect_options",
    "write_output",
]

F = TypeVar("F", bound=Callable[..., Any])

#: One entry per column argument of :func:`~metaan.effects.escalc`: the keyword the
#: option is passed as, its flags (metafor's name first, then tidier aliases) and help.
COLUMN_FLAGS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("ai", ("--ai", "--events1"), "events in group 1 (OR, RR, RD)"),
    ("bi", ("--bi", "--nonevents1"), "non-events in group 1, instead of --n1i"),
    ("ci", ("--ci", "--events2"), "events in group 2 (OR, RR, RD)"),
    ("di", ("--di", "--nonevents2"), "non-events in group 2, instead of --n2i"),
    ("n1i", ("--n1i", "--n1", "--total1"), "size of group 1"),
    ("n2i", ("--n2i", "--n2", "--total2"), "size of group 2"),
    ("m1i", ("--m1i", "--mean1"), "mean of group 1, endpoint or change (SMD, MD)"),
    ("sd1i", ("--sd1i", "--sd1"), "standard deviation of group 1 (SMD, MD)"),
    ("m2i", ("--m2i", "--mean2"), "mean of group 2, endpoint or change (SMD, MD)"),
    ("sd2i", ("--sd2i", "--sd2"), "standard deviation of group 2 (SMD, MD)"),
    ("xi", ("--xi", "--events"), "events in a single group (PLO)"),
    ("ni", ("--ni", "--n", "--total"), "size of a single group (PLO, ZCOR)"),
    ("ri", ("--ri", "--cor"), "correlation coefficient (ZCOR)"),
    (
        "yi",
        ("--yi", "--estimate"),
        "precomputed estimate: on the analysis scale (log OR, ...) with --vi or --sei; "
        "as published (OR, RR, proportion, r) with --ci-lb/--ci-ub",
    ),
    ("vi", ("--vi", "--variance"), "sampling variance of --yi"),
    ("sei", ("--sei", "--se"), "standard error of --yi"),
    ("ci_lb", ("--ci-lb", "--lower"), "lower confidence limit of --yi"),
    ("ci_ub", ("--ci-ub", "--upper"), "upper confidence limit of --yi"),
)

#: Every keyword :func:`effect_options` adds to a command.
EFFECT_OPTION_NAMES: tuple[str, ...] = (
    "measure",
    *(name for name, _, _ in COLUMN_FLAGS),
    "ci_level",
    "add",
    "to",
    "drop00",
    "label",
)


def effect_options(func: F) -> F:
    """Add the effect-size options to a click command.

    The command receives the keywords in :data:`EFFECT_OPTION_NAMES`:
    ``measure`` (``None`` if not given), one keyword per column flag (a column
    name or ``None``), ``ci_level`` (confidence level of published intervals,
    percent; named so it cannot clash with a command's own ``--level``),
    ``add``, ``to``, ``drop00`` and ``label``. Pass them on to
    :func:`compute_effects_from_options`.
    """
    options: list[Callable[[F], F]] = [
        click.option(
            "--measure",
            type=click.Choice(MEASURES, case_sensitive=False),
            default=None,
            help="Effect measure, as metafor names it. GEN is a generic precomputed "
            "effect (the default when only --yi is given).",
        )
    ]
    for name, flags, text in COLUMN_FLAGS:
        options.append(
            click.option(*flags, name, metavar="COL", default=None, help=f"Column: {text}.")
        )
    options += [
        click.option(
            "--ci-level",
            "ci_level",
            type=float,
            default=95.0,
            show_default=True,
            help="Confidence level (percent) of the intervals in --ci-lb/--ci-ub.",
        ),
        click.option(
            "--add",
            type=float,
            default=0.5,
            show_default=True,
            help="Increment added to the cells of a table with a zero cell (OR, RR, RD, PLO).",
        ),
        click.option(
            "--to",
            type=click.Choice(ZERO_CELL_RULES),
            default="only0",
            show_default=True,
            help="Which tables get --add: only0 (tables with a zero cell), all, if0all "
            "(all tables if any has a zero cell), none.",
        ),
        click.option(
            "--drop00/--keep00",
            default=False,
            show_default=True,
            help="Leave out studies with no events in either arm (the Cochrane convention "
            "for OR and RR) or keep them with --add, as metafor does.",
        ),
        click.option(
            "--label",
            metavar="COL",
            default=None,
            help="Column of study labels for messages (default: study, study_id or author).",
        ),
    ]
    for option in reversed(options):  # the first option listed is the first in --help
        func = option(func)
    return func


def compute_effects_from_options(
    path: str | Path, table: pd.DataFrame, **options: Any
) -> pd.DataFrame:
    """Compute effect sizes for ``table`` from the values :func:`effect_options` parsed.

    Keywords other than :data:`EFFECT_OPTION_NAMES` are ignored, so a command may
    pass all of its own keywords. A column the measure uses but no flag named
    is taken from the table if a column carries metafor's name for it
    (``ai``, ``n1i``, ...); with no column flag at all, columns ``yi`` with
    ``vi`` or ``sei`` are a precomputed effect. Without ``--measure``, a table given with
    ``--yi`` is taken as a generic precomputed effect (``GEN``).

    Parameters
    ----------
    path
        The file ``table`` was read from, named in error messages.
    table
        The studies, as :func:`metaan.io.read_table` returns them.
    **options
        The parsed command-line values.

    Returns
    -------
    pandas.DataFrame
        ``table`` with ``yi``, ``vi`` and ``exclusion_reason`` added (see
        :func:`metaan.effects.escalc`).

    Raises
    ------
    InputError
        No measure, a missing or unused column, or a bad cell.
    """
    source = str(path)
    columns: dict[str, str | None] = {name: options.get(name) for name, _, _ in COLUMN_FLAGS}
    measure: str | None = options.get("measure")
    columns.update(_columns_by_name(table, measure, columns))
    if measure is None:
        if columns.get("yi") is None:
            raise InputError(
                "no effect measure given",
                file=source,
                fix=f"add --measure with one of {', '.join(MEASURES)} and the columns it "
                "needs (see metaan effects --help)",
            )
        measure = "GEN"
    return escalc(
        table,
        measure,
        **columns,
        level=float(options.get("ci_level", 95.0)),
        add=float(options.get("add", 0.5)),
        to=str(options.get("to", "only0")),
        drop00=bool(options.get("drop00", False)),
        source=source,
        label=options.get("label"),
    )


#: Alternatives for the same arm: totals or non-events.
_PARTNERS = {"n1i": "bi", "bi": "n1i", "n2i": "di", "di": "n2i"}
_PRECOMPUTED = ("yi", "vi", "sei", "ci_lb", "ci_ub")


def _columns_by_name(
    table: pd.DataFrame, measure: str | None, columns: dict[str, str | None]
) -> dict[str, str]:
    """Columns named as metafor's arguments, for the arguments no flag named."""
    present = {str(c) for c in table.columns}
    named = {name for name, column in columns.items() if column is not None}
    if named & set(_PRECOMPUTED):
        return {}
    if measure is not None and measure.upper() != "GEN":
        found = {
            name: name
            for name in raw_columns(measure)
            if name not in named and _PARTNERS.get(name) not in named and name in present
        }
        if found or named:
            return found
    if not named and "yi" in present:
        for spread in ("vi", "sei"):
            if spread in present:
                return {"yi": "yi", spread: spread}
    return {}


def write_output(text: str, output: str | Path | None) -> None:
    """Write ``text`` to stdout, or to the file ``output`` (UTF-8)."""
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"cannot write the output ({exc.strerror or exc})",
            file=str(output),
            fix="check that the directory exists and is writable",
        ) from exc
