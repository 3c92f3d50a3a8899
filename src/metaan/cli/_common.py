"""Command-line pieces that several commands share.

:func:`effect_options` adds the effect-size flags (``--measure`` and one flag per
column, named as metafor's ``escalc`` names its arguments) to a command, and
:func:`compute_effects_from_options` turns the parsed values into an
:func:`metaan.effects.escalc` call. Every command that reads studies uses the
same two, so the flags mean the same thing everywhere. :func:`model_options`
and :func:`output_options` add the model flags (``--method``, ``--test``,
``--level``) and the output flags (``--format``, ``-o``); :func:`json_text`,
:func:`frame_as_csv`, :func:`note_on_stderr` and :func:`write_output` write the
results.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import numpy as np

from metaan._args import check_level as confidence_level
from metaan._args import label_column, study_labels
from metaan._checks import table_warnings
from metaan._output import atomic_write, refuse_input
from metaan.effects import MEASURES, ZERO_CELL_RULES, escalc, raw_columns, table_measure
from metaan.errors import InputError, MetaanError
from metaan.io import Columns, column_numbers, is_missing, read_table
from metaan.models import fit
from metaan.results import Exclusion, MetaResult

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "COLUMN_FLAGS",
    "EFFECT_OPTION_NAMES",
    "EXCLUDED_COLUMNS",
    "FORMATS",
    "PRECOMPUTED_COLUMNS",
    "check_level",
    "chosen_format",
    "compute_effects_from_options",
    "effect_exclusions",
    "effect_options",
    "fit_effects",
    "frame_as_csv",
    "json_text",
    "model_options",
    "naming_file",
    "note_on_stderr",
    "output_options",
    "read_input",
    "records_as_csv",
    "showing_exclusions",
    "with_excluded_rows",
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
    "sep",
    "decimal",
    "sheet",
    "revman_outcome",
)


def check_level(ctx: click.Context | None, param: click.Parameter | None, value: float) -> float:
    """A confidence level in percent, by the library's one rule
    (:func:`metaan._args.check_level`): a percentage from 50 up to 100 or a
    fraction from 0.5 up to 1; anything else (1, 1.5, a 30 % interval) is refused
    with the flag named, rather than drawn as a 1.5 % interval."""
    flag = f"--{param.name.replace('_', '-')}" if param is not None and param.name else "--level"
    try:
        return confidence_level(value, flag)
    except InputError as exc:
        raise click.BadParameter(exc.message, ctx=ctx, param=param) from None


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
            callback=check_level,
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
        click.option(
            "--sep",
            type=click.Choice([",", ";", "tab"]),
            default=None,
            help="Separator of a text FILE (default: told from its header).",
        ),
        click.option(
            "--decimal",
            type=click.Choice([".", ","]),
            default=None,
            help="Decimal mark of a text FILE (default: told from its numbers; a comma only "
            "where the separator is not one).",
        ),
        click.option(
            "--sheet",
            metavar="NAME|N",
            default=None,
            help="The sheet of an .xlsx FILE, by name or number (needed when it has several).",
        ),
        click.option(
            "--revman-outcome",
            metavar="C.O",
            default=None,
            help="The outcome of a RevMan .rm5 FILE, as comparison.outcome, e.g. 1.2 "
            "(Analysis 1.2 of the review).",
        ),
    ]
    return _with_options(options)(func)


def _with_options(options: Sequence[Callable[[F], F]]) -> Callable[[F], F]:
    """A decorator adding ``options`` to a command, listed in --help in this order."""

    def decorate(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def model_options(methods: Sequence[str], *, method_help: str, test_help: str) -> Callable[[F], F]:
    """Add ``--method`` (one of ``methods``, default REML), ``--test`` (z or knha) and
    ``--level`` (confidence level, percent) to a command, with the help texts given."""
    return _with_options(
        [
            click.option(
                "--method",
                type=click.Choice(methods, case_sensitive=False),
                default="REML",
                show_default=True,
                help=method_help,
            ),
            click.option(
                "--test",
                type=click.Choice(["z", "knha", "t"], case_sensitive=False),
                default="z",
                show_default=True,
                help=test_help,
            ),
            click.option(
                "--level",
                type=float,
                default=95.0,
                show_default=True,
                callback=check_level,
                help="Confidence level in percent (50 to 100).",
            ),
        ]
    )


#: The output formats of the commands that print results.
FORMATS = ("table", "json", "csv")


def output_options(format_help: str | None = "Output format.") -> Callable[[F], F]:
    """Add ``--format`` (one of :data:`FORMATS`, passed as ``output_format``; ``None``
    when not given, see :func:`chosen_format`) and ``-o``/``--output`` (a file
    instead of standard output) to a command."""
    default = "Default: from the extension of -o (.json, .csv; else table)."
    return _with_options(
        [
            click.option(
                "--format",
                "output_format",
                type=click.Choice(FORMATS),
                default=None,
                help=f"{format_help} {default}" if format_help else f"Output format. {default}",
            ),
            click.option(
                "-o", "--output", metavar="FILE", default=None, help="Write here, not to stdout."
            ),
        ]
    )


def chosen_format(output_format: str | None, output: str | None) -> str:
    """The output format: ``--format`` if given, else the extension of ``-o``
    (``.json`` or ``.csv``), else ``table``."""
    if output_format is not None:
        return output_format
    suffix = Path(output).suffix.lower().lstrip(".") if output else ""
    return suffix if suffix in ("json", "csv") else "table"


def read_input(file: str, options: dict[str, Any], *, frame: bool = True) -> Any:
    """Read ``file`` with the reading options :func:`effect_options` parsed
    (``--sep``, ``--decimal``, ``--sheet``, ``--revman-outcome``): a DataFrame, or
    with ``frame=False`` the same table as :class:`~metaan.io.Columns` (no pandas)."""
    sep = options.get("sep")
    return read_table(
        file,
        sep="\t" if sep == "tab" else sep,
        decimal=options.get("decimal"),
        sheet=options.get("sheet"),
        outcome=options.get("revman_outcome"),
        frame=frame,
    )


def compute_effects_from_options(path: str | Path, table: Any, **options: Any) -> Any:
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
        The studies, as :func:`metaan.io.read_table` returns them (a DataFrame or
        :class:`~metaan.io.Columns`).
    **options
        The parsed command-line values.

    Returns
    -------
    pandas.DataFrame or Columns
        ``table`` with ``yi``, ``vi`` and ``exclusion_reason`` added (see
        :func:`metaan.effects.escalc`).

    Raises
    ------
    InputError
        No measure, a missing or unused column, or a bad cell.
    """
    source = str(path)
    columns: dict[str, str | None] = {name: options.get(name) for name, _, _ in COLUMN_FLAGS}
    # A RevMan outcome says its measure; --measure still overrides it.
    measure: str | None = options.get("measure") or table.attrs.get("measure")
    columns.update(_columns_by_name(table, measure, columns))
    if measure is None:
        measure = _recorded_measure(table, source)
    if measure is None:
        if columns.get("yi") is None:
            raise InputError(
                "no effect measure given",
                file=source,
                fix=f"add --measure with one of {', '.join(MEASURES)} and the columns it "
                "needs (see metaan effects --help)",
            )
        measure = "GEN"
    effects = escalc(
        table,
        measure,
        **columns,
        level=float(options.get("ci_level", 95.0)),
        add=float(options.get("add", 0.5)),
        to=str(options.get("to", "only0")),
        drop00=bool(options.get("drop00", False)),
        source=source,
        labels=options.get("label"),
    )
    label = _label_column(effects, options.get("label"))
    for warning in table_warnings(table, effects, columns, label):
        click.echo(f"metaan: warning: {source}: {warning}", err=True)
    return effects


def _label_column(table: pd.DataFrame | Columns, label: str | None) -> str | None:
    """The column of study labels: ``--label``, else the one metaan's rule chooses."""
    return label if label is not None else label_column(table)


def _recorded_measure(table: pd.DataFrame | Columns, source: str) -> str | None:
    """The measure a table of effect sizes records (the output of ``metaan effects``),
    so that precomputed log odds ratios stay odds ratios."""
    usable = None
    if "yi" in table.columns:
        usable = ~np.isnan(column_numbers(np.asarray(table["yi"])))
    return table_measure(table, used=usable, source=source)


#: Alternatives for the same arm: totals or non-events.
_PARTNERS = {"n1i": "bi", "bi": "n1i", "n2i": "di", "di": "n2i"}
#: The column flags of a precomputed effect.
PRECOMPUTED_COLUMNS = ("yi", "vi", "sei", "ci_lb", "ci_ub")


def _columns_by_name(
    table: pd.DataFrame | Columns, measure: str | None, columns: dict[str, str | None]
) -> dict[str, str]:
    """Columns named as metafor's arguments, for the arguments no flag named."""
    present = {str(c) for c in table.columns}
    named = {name for name, column in columns.items() if column is not None}
    if named & set(PRECOMPUTED_COLUMNS):
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


def fit_effects(
    file: str,
    method: str,
    test: str,
    level: float,
    options: dict[str, Any],
    *,
    prediction: str = "metafor",
    frame: bool = True,
) -> tuple[Any, MetaResult]:
    """Read ``file``, compute the effect sizes the options ask for and fit the model.

    The effects are a DataFrame, or with ``frame=False`` :class:`~metaan.io.Columns`
    (the same numbers, read and fitted without importing pandas)."""
    table = read_input(file, options, frame=frame)
    effects = compute_effects_from_options(file, table, **options)
    with showing_exclusions(effects, file, options.get("label")):
        res = fit(
            effects,
            labels=options.get("label"),
            method=method,
            test=test.lower(),
            level=level,
            source=file,
            prediction=prediction,
        )
    return effects, res


def effect_exclusions(effects: pd.DataFrame | Columns, label: str | None = None) -> list[Exclusion]:
    """The rows escalc could not use, with their spreadsheet rows, labels and reasons."""
    from metaan.io import spreadsheet_rows

    reasons = np.asarray(effects["exclusion_reason"], dtype=object)
    gone = np.array([not is_missing(r) for r in reasons], dtype=bool)
    if not gone.any():
        return []
    labels = study_labels(effects, label)
    rows = spreadsheet_rows(effects)
    return [
        Exclusion(int(rows[i]), labels[i], str(reasons[i]))
        for i in (int(j) for j in np.flatnonzero(gone))
    ]


@contextmanager
def showing_exclusions(
    effects: pd.DataFrame | Columns, file: str, label: str | None
) -> Iterator[None]:
    """When a fit fails, the rows escalc left out are printed as notes before the error,
    since they are usually why (a measure's columns all missing, --drop00, --add 0)."""
    try:
        yield
    except MetaanError:
        note_on_stderr((), effect_exclusions(effects, label), file)
        raise


@contextmanager
def naming_file(file: str) -> Iterator[None]:
    """Errors raised inside name ``file`` if they do not already."""
    try:
        yield
    except InputError as exc:
        if exc.file is None:
            raise exc.located(file=file) from None
        raise
    except MetaanError as exc:
        if file not in str(exc):
            raise type(exc)(f"{file}: {exc}") from None
        raise


def json_text(document: dict[str, Any]) -> str:
    """A JSON document as the commands print it: indented, ASCII, with no NaN."""
    import json  # only --format json needs it, not the table every fit prints by default

    return json.dumps(document, indent=2, allow_nan=False) + "\n"


def frame_as_csv(frame: pd.DataFrame) -> str:
    """A table as CSV: floats written exactly (repr), booleans as true/false, missing
    values blank (see :func:`records_as_csv`)."""
    return records_as_csv(frame.columns, frame.itertuples(index=False))


def records_as_csv(columns: Iterable[Any], records: Iterable[Iterable[Any]]) -> str:
    """Records (one sequence of cells each) under a header as CSV, as
    :func:`frame_as_csv` writes a table, without pandas."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in records:
        cells = []
        for value in row:
            if is_missing(value):
                cells.append("")
            elif isinstance(value, bool | np.bool_):
                cells.append(str(bool(value)).lower())
            elif isinstance(value, float | np.floating):
                cells.append(repr(float(value)))
            else:
                cells.append(str(value))
        writer.writerow(cells)
    return buffer.getvalue()


def note_on_stderr(
    warnings: Sequence[str], excluded: Sequence[Exclusion], source: str | None = None
) -> None:
    """Warnings and excluded rows on stderr, whatever the output format, so a run
    whose output goes to a file or a pipe still says what it left out."""
    where = f"{source}: " if source else ""
    for warning in warnings:
        click.echo(f"metaan: warning: {where}{warning}", err=True)
    for e in excluded:
        who = f" ({e.study})" if e.study else ""
        row = f"row {e.row}" if e.row is not None else "a study"
        click.echo(f"metaan: note: {where}{row}{who} excluded: {e.reason}", err=True)


#: The columns :func:`with_excluded_rows` adds to a CSV table.
EXCLUDED_COLUMNS = ("excluded_row", "excluded_study", "excluded_reason")


def with_excluded_rows(frame: pd.DataFrame, excluded: Sequence[Exclusion]) -> pd.DataFrame:
    """``frame`` with one more row per excluded study: ``excluded_row``,
    ``excluded_study`` and ``excluded_reason`` filled, every other cell blank.

    So a CSV output lists what was left out in the file itself; a reader keeps
    the result rows by taking those with a blank ``excluded_row``.
    """
    if not excluded:
        return frame
    import pandas as pd

    extra = pd.DataFrame(
        {
            "excluded_row": [e.row for e in excluded],
            "excluded_study": [e.study for e in excluded],
            "excluded_reason": [e.reason for e in excluded],
        },
        dtype=object,
    )
    body = frame.astype(object)
    for name in EXCLUDED_COLUMNS:
        body[name] = None
    return pd.concat([body, extra], ignore_index=True, sort=False)


def write_output(text: str, output: str | Path | None, inputs: Sequence[str] = ()) -> None:
    """Write ``text`` to stdout, or atomically to the file ``output`` (UTF-8),
    refusing to overwrite any of ``inputs``."""
    if output is None:
        click.echo(text, nl=False)
        return
    refuse_input(output, inputs)
    atomic_write(output, text)
