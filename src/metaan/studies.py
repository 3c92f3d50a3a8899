"""Study records: the schema of ``studies/*.csv``, loading and validation.

One row of a study file is one comparison of an intervention arm with a
control arm, for one outcome at one time point. The same columns serve every
drug class (psilocybin, SSRIs, cannabinoids); ``studies/README.md`` is the data
dictionary, generated from :data:`SCHEMA`.

Every analysis reads study records through :func:`load_studies`, which runs
the same checks as ``metaan studies validate`` (:func:`validate_studies`) and
refuses to return data with any problem. Records that are valid but cannot
enter a pooled analysis (no dispersion, percentages without denominators, a
review-level estimate) stay in the data; their ``not_poolable_reason`` says
why, and :attr:`StudyTable.not_poolable` lists them.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

import pandas as pd

from metaan.errors import InputError

__all__ = [
    "COLUMN_NAMES",
    "CONTINUOUS_OUTCOMES",
    "DICHOTOMOUS_OUTCOMES",
    "DRUG_CLASSES",
    "SCHEMA",
    "ClassSummary",
    "Column",
    "DrugClass",
    "NotPoolable",
    "Problem",
    "StudyTable",
    "StudyValidationError",
    "find_studies_dir",
    "load_studies",
    "schema_markdown",
    "summarise_studies",
    "validate_studies",
]

DrugClass = Literal["cannabinoid", "psilocybin", "ssri"]
DRUG_CLASSES: tuple[DrugClass, ...] = ("cannabinoid", "psilocybin", "ssri")

ColumnKind = Literal["text", "code", "int", "float", "flag"]
Value: TypeAlias = str | int | float | None

#: Outcome types whose arms carry n, mean and SD.
CONTINUOUS_OUTCOMES: frozenset[str] = frozenset({"endpoint", "change", "endpoint_or_change"})
#: Outcome types whose arms carry events and totals.
DICHOTOMOUS_OUTCOMES: frozenset[str] = frozenset({"response", "remission", "dropout", "dropout_ae"})
_OTHER_OUTCOMES: frozenset[str] = frozenset({"percent_improved"})

_COMPARATOR_KINDS = frozenset(
    {
        "placebo",
        "active_placebo",
        "low_dose",
        "waitlist",
        "usual_care",
        "psychological",
        "active_drug",
    }
)
_ROB = frozenset({"low", "some_concerns", "high"})


@dataclass(frozen=True)
class Column:
    """One column of the study-record schema.

    Parameters
    ----------
    name
        The column name, as it appears in the CSV header.
    kind
        ``text`` (free text), ``code`` (one of ``allowed``), ``int``, ``float``
        or ``flag`` (0 or 1).
    description
        What the column holds; the data dictionary in ``studies/README.md``.
    required
        Every study file must have this column.
    not_blank
        Every record must fill this column.
    allowed
        The allowed values of a ``code`` column.
    minimum, maximum
        Inclusive bounds of a number.
    positive
        A number must be > 0.
    what
        How a value is named in a message (``"a standard deviation"``).
    """

    name: str
    kind: ColumnKind
    description: str
    required: bool = False
    not_blank: bool = False
    allowed: frozenset[str] | None = None
    minimum: float | None = None
    maximum: float | None = None
    positive: bool = False
    what: str = "the value"


def _arm_columns(k: int) -> tuple[Column, ...]:
    arm = "intervention" if k == 1 else "control"
    return (
        Column(
            f"n_randomised{k}",
            "int",
            f"Number randomised to the {arm} arm.",
            minimum=1,
            what="a number randomised",
        ),
        Column(
            f"n{k}",
            "int",
            f"Number analysed for this outcome in the {arm} arm (continuous outcomes; for "
            "GRISELDA response rows, its completers + LOCF denominator).",
            minimum=1,
            what="a sample size",
        ),
        Column(f"mean{k}", "float", f"Mean score of the {arm} arm (endpoint or change)."),
        Column(
            f"sd{k}",
            "float",
            f"Standard deviation of the {arm} arm's scores.",
            positive=True,
            what="a standard deviation",
        ),
        Column(
            f"se{k}",
            "float",
            f"Standard error of the {arm} arm's mean, where the source gives an SE, not an SD.",
            positive=True,
            what="a standard error",
        ),
        Column(
            f"events{k}",
            "float",
            f"Participants with the event in the {arm} arm (responders, remitters, dropouts). "
            "Whole numbers, unless `noninteger_counts` is 1.",
            minimum=0,
            what="a count of events",
        ),
        Column(
            f"total{k}",
            "int",
            f"Denominator of `events{k}` (GRISELDA: number randomised).",
            minimum=1,
            what="a total",
        ),
        Column(
            f"percent{k}",
            "float",
            f"Percentage of the {arm} arm with the event, where the source gives no counts.",
            minimum=0,
            maximum=100,
            what="a percentage",
        ),
        Column(f"baseline_mean{k}", "float", f"Baseline mean of the {arm} arm on `scale`."),
        Column(
            f"baseline_sd{k}",
            "float",
            f"Baseline SD of the {arm} arm.",
            positive=True,
            what="a standard deviation",
        ),
        Column(
            f"baseline_n{k}",
            "int",
            f"Number assessed at baseline in the {arm} arm.",
            minimum=1,
            what="a sample size",
        ),
        Column(
            f"imputed{k}",
            "flag",
            f"1 = the {arm} arm's numbers in this record were imputed by the source's curators "
            "(metapsy `imsd`, GRISELDA `*_imputed`); 0 = reported; blank = the source does not "
            "say.",
        ),
    )


#: The study-record schema, in the column order of the files in ``studies/``.
SCHEMA: tuple[Column, ...] = (
    # identity and publication
    Column(
        "record_id",
        "text",
        "Unique id of the record across all study files.",
        required=True,
        not_blank=True,
    ),
    Column(
        "study_id",
        "text",
        "Trial id, shared by all records of one trial: first author + year (psilocybin, "
        "cannabinoid) or GRISELDA's StudyID exactly as given (SSRI).",
        required=True,
        not_blank=True,
    ),
    Column("trial_registry_id", "text", "Trial registry number(s), `; `-separated, where known."),
    Column("doi", "text", "DOI(s) of the trial's publication(s), `; `-separated."),
    Column("reference", "text", "Full reference of the trial, where the source gives it."),
    Column(
        "year",
        "int",
        "Year of publication of the trial.",
        minimum=1900,
        maximum=2100,
        what="a year",
    ),
    Column("published", "flag", "1 = published, 0 = unpublished (GRISELDA); blank = not stated."),
    Column(
        "drug_class",
        "code",
        "`psilocybin`, `ssri` or `cannabinoid`.",
        required=True,
        not_blank=True,
        allowed=frozenset(DRUG_CLASSES),
    ),
    # the two arms
    Column(
        "arm1_id",
        "text",
        "Id of the intervention arm, unique within the trial.",
        required=True,
        not_blank=True,
    ),
    Column("arm1_label", "text", "The source's name for the intervention arm."),
    Column(
        "intervention",
        "text",
        "Drug (or product) of the intervention arm.",
        required=True,
        not_blank=True,
    ),
    Column(
        "intervention_dose",
        "text",
        "Its dose, as the source writes it, or as corrected (then see `correction`).",
    ),
    Column(
        "intervention_dose_source",
        "text",
        "The dose exactly as the source wrote it, where the conversion corrected it.",
    ),
    Column(
        "arm2_id",
        "text",
        "Id of the control arm, unique within the trial. Rows of one trial that name the "
        "same arm id share that arm.",
        required=True,
        not_blank=True,
    ),
    Column("arm2_label", "text", "The source's name for the control arm."),
    Column(
        "comparator",
        "text",
        "What the control arm received (placebo, niacin, waitlist, escitalopram, ...).",
        required=True,
        not_blank=True,
    ),
    Column(
        "comparator_dose",
        "text",
        "Its dose, as the source writes it, or as corrected (then see `correction`).",
    ),
    Column(
        "comparator_dose_source",
        "text",
        "The comparator's dose exactly as the source wrote it, where the conversion corrected it.",
    ),
    Column(
        "comparator_kind",
        "code",
        "`placebo`, `active_placebo` (e.g. niacin), `low_dose` (a lower dose of the same "
        "drug), `waitlist`, `usual_care`, `psychological` (e.g. MBSR alone) or "
        "`active_drug` (e.g. escitalopram).",
        required=True,
        not_blank=True,
        allowed=_COMPARATOR_KINDS,
    ),
    Column(
        "shared_arm",
        "flag",
        "1 = an arm of this record also appears in another record of the same trial, outcome "
        "and time point (multi-arm trials), so the records are correlated. Computed by the "
        "loader; if filled in, it must agree.",
    ),
    # population and design
    Column(
        "diagnosis",
        "text",
        "Population code: `mdd`, `trd`, `dep` (symptoms without diagnosis), `cancer`, `aud`, "
        "`bipolar-depression`, `ms`.",
    ),
    Column("population", "text", "The population in the source's words."),
    Column(
        "design",
        "code",
        "`parallel` or `crossover`.",
        allowed=frozenset({"parallel", "crossover"}),
    ),
    Column(
        "blinding",
        "code",
        "`double-blind`, `single-blind` or `open-label`.",
        allowed=frozenset({"double-blind", "single-blind", "open-label"}),
    ),
    Column(
        "post_crossover",
        "flag",
        "Crossover trials: 1 = measured after the crossover, 0 = before; blank = parallel.",
    ),
    Column(
        "subgroup",
        "text",
        "Blank for the randomised population; otherwise the subgroup analysed.",
    ),
    Column(
        "n_dosing_sessions",
        "int",
        "Number of dosing sessions (psilocybin).",
        minimum=1,
        what="a number of sessions",
    ),
    Column("mean_age", "float", "Mean age of participants.", positive=True, what="an age"),
    Column(
        "percent_women",
        "float",
        "Percentage of women.",
        minimum=0,
        maximum=100,
        what="a percentage",
    ),
    # the outcome
    Column(
        "outcome_type",
        "code",
        "`endpoint` (score at the time point), `change` (change from baseline), "
        "`endpoint_or_change` (GRISELDA: endpoint, or change where no endpoint was reported), "
        "`response`, `remission`, `dropout` (all causes), `dropout_ae` (for adverse events), "
        "`percent_improved` (percentage improved, no counts).",
        required=True,
        not_blank=True,
        allowed=CONTINUOUS_OUTCOMES | DICHOTOMOUS_OUTCOMES | _OTHER_OUTCOMES,
    ),
    Column(
        "outcome_definition",
        "text",
        "Definition of the event or outcome in the source's words (e.g. `>=50% on HAMD`).",
    ),
    Column(
        "scale",
        "text",
        "Rating scale, lower-case code: `madrs`, `ham-d-17`, `ham-d-21`, `ham-d-24`, "
        "`ham-d-29`, `ham-d-31`, `ham-d` (version not stated), `grid-ham-d`, `qids-sr`, `bdi`, "
        "`bdi-ii`, `bdi-1a`, `hads-d`, `phq-9`, `smdds`.",
    ),
    Column(
        "rater",
        "code",
        "`clinician` or `self-report`.",
        allowed=frozenset({"clinician", "self-report"}),
    ),
    Column(
        "direction",
        "code",
        "Which way is better for the numbers in the arms: `lower_is_better` (symptom scores, "
        "dropouts) or `higher_is_better` (responders, remitters, percent improved).",
        required=True,
        not_blank=True,
        allowed=frozenset({"lower_is_better", "higher_is_better"}),
    ),
    Column(
        "time_weeks",
        "float",
        "Time point in weeks (psilocybin: after the final dosing session, negative = before "
        "it; GRISELDA: trial duration).",
    ),
    Column("time_days", "float", "Time point in days, where the source gives it."),
    Column("time_label", "text", "The time point as worded in the source."),
    Column(
        "primary_outcome",
        "flag",
        "1 = measured on the trial's primary instrument (psilocybin: metapsy "
        "`primary_instrument`; SSRI: response, the review's primary outcome).",
    ),
    Column("primary_timepoint", "flag", "1 = the trial's primary (or only) time point."),
    *_arm_columns(1),
    *_arm_columns(2),
    Column(
        "change_certain",
        "flag",
        "`endpoint_or_change` rows only: 1 = the means are certainly change scores (a mean is "
        "negative), 0 = they may be endpoint or change scores.",
    ),
    Column(
        "noninteger_counts",
        "flag",
        "1 = the source publishes a non-integer count in this record (kept as published).",
    ),
    # precomputed effects, intervention minus control, 95% CIs
    Column("smd", "float", "Standardised mean difference (metapsy: Hedges' g), arm 1 - arm 2."),
    Column("smd_se", "float", "Its standard error.", positive=True, what="a standard error"),
    Column("smd_ci_lb", "float", "Lower bound of its 95% CI."),
    Column("smd_ci_ub", "float", "Upper bound of its 95% CI."),
    Column("md", "float", "Mean difference, arm 1 - arm 2, in `scale` units."),
    Column("md_se", "float", "Its standard error.", positive=True, what="a standard error"),
    Column("md_ci_lb", "float", "Lower bound of its 95% CI."),
    Column("md_ci_ub", "float", "Upper bound of its 95% CI."),
    Column("log_rr", "float", "Log risk ratio, arm 1 vs arm 2."),
    Column("log_rr_se", "float", "Its standard error.", positive=True, what="a standard error"),
    Column("precomputed_by", "text", "Who computed the precomputed effects."),
    # risk of bias (RoB 2)
    *(
        Column(
            f"rob_d{d}",
            "code",
            f"RoB 2 domain {d}: `low`, `some_concerns` or `high`.",
            allowed=_ROB,
        )
        for d in range(1, 6)
    ),
    Column("rob_overall", "code", "RoB 2 overall judgement.", allowed=_ROB),
    # provenance
    Column(
        "source_dataset",
        "text",
        "The data set the record was converted from (name and version).",
        required=True,
        not_blank=True,
    ),
    Column(
        "source_doi", "text", "DOI of that data set, or of the publication the numbers are from."
    ),
    Column("source_record", "text", "Where in the source the record is (file and row)."),
    Column("source_url", "text", "Web address of the source page, for hand-transcribed records."),
    Column(
        "licence",
        "text",
        "Licence of the source data (`ODC-BY-1.0`, `CC-BY-4.0`, ...).",
        required=True,
        not_blank=True,
    ),
    Column("note", "text", "Caveats from the source, and how the record was converted."),
    Column(
        "correction",
        "text",
        "What the conversion corrected in the source's text (the source's words are kept "
        "beside the reading), and the trial report that shows the correction is right.",
    ),
    Column(
        "not_poolable_reason",
        "text",
        "Blank if the record can enter a pooled analysis; otherwise why it cannot.",
    ),
)

_BY_NAME: dict[str, Column] = {column.name: column for column in SCHEMA}
COLUMN_NAMES: tuple[str, ...] = tuple(column.name for column in SCHEMA)

# Per-arm numbers that a shared arm must carry identically in every record of the
# same outcome and time point.
_ARM_NUMBERS = (
    "n",
    "mean",
    "sd",
    "se",
    "events",
    "total",
    "percent",
    "baseline_mean",
    "baseline_sd",
    "baseline_n",
)
# Columns that describe the whole trial and must agree across its records.
_TRIAL_COLUMNS = (
    "drug_class",
    "trial_registry_id",
    "doi",
    "year",
    "published",
    "design",
    "blinding",
)
# What makes a record distinct within a trial.
_KEY_COLUMNS = (
    "study_id",
    "arm1_id",
    "arm2_id",
    "outcome_type",
    "scale",
    "time_weeks",
    "time_label",
    "post_crossover",
    "subgroup",
)
_OUTCOME_GROUP = (
    "outcome_type",
    "scale",
    "time_weeks",
    "time_label",
    "post_crossover",
    "subgroup",
)
_PRECOMPUTED = ("smd", "md")

_SCALE_CODE = re.compile(r"[a-z0-9]+(?:[-.][a-z0-9]+)*\Z")
_DOI = re.compile(r"10\.\d{4,9}/\S+\Z")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\Z")


@dataclass(frozen=True)
class Problem:
    """One problem found in a study file.

    ``str(problem)`` reads ``file:row:column: message`` with the row as a
    spreadsheet shows it (the header is row 1); ``-`` stands for a row or column
    that does not apply.
    """

    file: str
    row: int | None
    column: str | None
    problem: str
    fix: str | None = None
    study: str | None = None

    @property
    def message(self) -> str:
        """The problem, the study it concerns, and how to fix it."""
        text = f"{self.study}: {self.problem}" if self.study else self.problem
        return f"{text}; {self.fix}" if self.fix else text

    def __str__(self) -> str:
        row = "-" if self.row is None else str(self.row)
        return f"{self.file}:{row}:{self.column or '-'}: {self.message}"

    def to_error(self) -> InputError:
        """The same problem as an :class:`~metaan.errors.InputError`."""
        return InputError(
            self.problem,
            file=self.file,
            row=self.row,
            column=self.column,
            study=self.study,
            fix=self.fix,
        )


class StudyValidationError(InputError):
    """Study files failed validation; :attr:`problems` lists every problem."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        first = self.problems[0]
        super().__init__(
            first.problem,
            file=first.file,
            row=first.row,
            column=first.column,
            study=first.study,
            fix=first.fix,
        )

    @property
    def message(self) -> str:
        count = len(self.problems)
        head = "1 problem" if count == 1 else f"{count} problems"
        lines = "\n".join(str(problem) for problem in self.problems)
        return f"{head} in the study records (nothing was loaded):\n{lines}"


@dataclass(frozen=True)
class NotPoolable:
    """A valid record that cannot enter a pooled analysis, and why."""

    record_id: str
    study_id: str
    drug_class: str
    file: str
    row: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.row}: {self.study_id} ({self.record_id}): {self.reason}"


@dataclass(frozen=True)
class StudyTable:
    """Validated study records.

    Attributes
    ----------
    frame
        Every record of the files read (filtered by drug class if asked), with
        the columns of :data:`SCHEMA` (text columns hold ``""`` when blank;
        numbers are ``float64`` or nullable ``Int64`` with missing values) plus
        ``file`` and ``row``: where each record is (row as a spreadsheet shows
        it).
    not_poolable
        The records of ``frame`` that cannot be pooled, with the reason.
    paths
        The files read, in order.
    """

    frame: pd.DataFrame
    not_poolable: tuple[NotPoolable, ...]
    paths: tuple[Path, ...]

    @property
    def poolable(self) -> pd.DataFrame:
        """The records that can enter a pooled analysis."""
        return self.frame[self.frame["not_poolable_reason"] == ""]

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        classes = ", ".join(
            f"{name}={count}"
            for name, count in self.frame["drug_class"].value_counts().sort_index().items()
        )
        return (
            f"<StudyTable records={len(self.frame)} ({classes}) "
            f"not_poolable={len(self.not_poolable)}>"
        )


@dataclass(frozen=True)
class ClassSummary:
    """What the study records hold for one drug class."""

    drug_class: str
    trials: int
    records: int
    not_poolable: int
    outcomes: dict[str, int] = field(default_factory=dict)
    scales: dict[str, int] = field(default_factory=dict)
    time_points_weeks: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "drug_class": self.drug_class,
            "trials": self.trials,
            "records": self.records,
            "not_poolable": self.not_poolable,
            "outcomes": dict(self.outcomes),
            "scales": dict(self.scales),
            "time_points_weeks": list(self.time_points_weeks),
        }


# ---------------------------------------------------------------------------
# Finding and reading files


def find_studies_dir(start: str | Path | None = None) -> Path:
    """Find the ``studies/`` folder of a metaan checkout.

    Looks in ``start`` (default: the working directory) and each of its
    parents, then beside the installed package (an editable install from a
    checkout). A folder counts if it holds at least one ``.csv`` file.

    Raises
    ------
    InputError
        No such folder was found.
    """
    here = Path.cwd() if start is None else Path(start)
    candidates = [folder / "studies" for folder in (here.resolve(), *here.resolve().parents)]
    candidates.append(Path(__file__).resolve().parents[2] / "studies")
    for candidate in candidates:
        if candidate.is_dir() and any(candidate.glob("*.csv")):
            return candidate
    raise InputError(
        f"no studies/ folder with CSV files in {here} or its parents",
        fix="pass the folder or files explicitly, e.g. load_studies('path/to/studies')",
    )


def _expand(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | None) -> list[Path]:
    if paths is None:
        items: list[Path] = [find_studies_dir()]
    elif isinstance(paths, str | os.PathLike):
        items = [Path(paths)]
    else:
        items = [Path(p) for p in paths]
    files: list[Path] = []
    seen: set[Path] = set()
    for item in items:
        found = sorted(item.glob("*.csv")) if item.is_dir() else [item]
        for path in found:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                files.append(path)
    return files


@dataclass
class _Parsed:
    """One file after cell-level checks: typed records and their spreadsheet rows."""

    file: str
    columns: list[str]
    records: list[dict[str, Value]]
    rows: list[int]
    complete: bool = True  # the header is sound, so records can be checked as a whole
    # Per record, the columns whose cells could not be read (their value is None).
    unreadable: list[set[str]] = field(default_factory=list)


def _read_rows(
    path: Path, problems: list[Problem]
) -> tuple[list[str], list[tuple[int, list[str]]]]:
    name = str(path)
    if not path.exists():
        problems.append(Problem(name, None, None, "no such file", "check the path"))
        return [], []
    if path.is_dir():
        problems.append(Problem(name, None, None, "is a folder, not a CSV file"))
        return [], []
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        problems.append(Problem(name, None, None, f"cannot be read ({exc})"))
        return [], []
    except UnicodeDecodeError:
        problems.append(
            Problem(name, None, None, "is not UTF-8 text", "save the file as CSV UTF-8")
        )
        return [], []
    records: list[list[str]] = []
    try:
        records.extend(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        problems.append(
            Problem(
                name,
                len(records) + 1,
                None,
                f"the CSV is broken from this row on ({exc})",
                "a cell holding a comma, quote or line break must be in double quotes",
            )
        )
        return [], []
    if not records:
        problems.append(Problem(name, None, None, "the file is empty", "add a header row"))
        return [], []
    body = [(index + 2, record) for index, record in enumerate(records[1:])]
    return records[0], body


def _header_problems(name: str, header: list[str]) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for column in header:
        if column in seen:
            problems.append(
                Problem(name, 1, column, "the column appears twice", "keep one of them")
            )
        seen.add(column)
        if column not in _BY_NAME:
            problems.append(
                Problem(
                    name,
                    1,
                    column or "-",
                    f"unknown column {column!r}",
                    "rename it to a column of the schema in studies/README.md, or remove it",
                )
            )
    for spec in SCHEMA:
        if spec.required and spec.name not in seen:
            problems.append(
                Problem(
                    name,
                    1,
                    spec.name,
                    "a required column is missing",
                    f"add the column {spec.name} ({spec.description})",
                )
            )
    return problems


def _parse_cell(column: Column, raw: str) -> tuple[Value, str | None, str | None]:
    """The typed value of one cell, or a problem and its fix."""
    if raw != raw.strip():
        return None, f"{column.name} is {raw!r}, with spaces around it", "remove the spaces"
    if raw == "":
        if column.not_blank:
            return None, f"{column.name} is blank", f"fill it in: {column.description}"
        return None, None, None
    blank_fix = "correct it, or leave the cell blank if the source does not report it"
    if column.kind == "text":
        return raw, *_text_problem(column.name, raw)
    if column.kind == "code":
        allowed = column.allowed or frozenset()
        if raw not in allowed:
            return (
                None,
                f"{column.name} is {raw!r}, which is not an allowed value",
                "use one of: " + ", ".join(sorted(allowed)),
            )
        return raw, None, None
    if column.kind == "flag":
        if raw not in ("0", "1"):
            return (
                None,
                f"{column.name} is {raw!r}; a flag must be 0 or 1",
                "write 1 for yes, 0 for no, or leave it blank if unknown",
            )
        return int(raw), None, None
    if not _NUMBER.match(raw):
        return None, f"{column.name} is {raw!r}, not a number", f"write a plain number; {blank_fix}"
    number = float(raw)
    if not math.isfinite(number):
        return None, f"{column.name} is {raw!r}, not a finite number", blank_fix
    value: int | float = number
    if column.kind == "int":
        if number != math.floor(number):
            return None, f"{column.name} is {raw}; {column.what} must be a whole number", blank_fix
        value = int(number)
    if column.positive and number <= 0:
        return None, f"{column.name} is {raw}; {column.what} must be > 0", blank_fix
    if column.minimum is not None and number < column.minimum:
        return (
            None,
            f"{column.name} is {raw}; {column.what} must be ≥ {column.minimum:g}",
            blank_fix,
        )
    if column.maximum is not None and number > column.maximum:
        return (
            None,
            f"{column.name} is {raw}; {column.what} must be ≤ {column.maximum:g}",
            blank_fix,
        )
    return value, None, None


def _text_problem(name: str, raw: str) -> tuple[str | None, str | None]:
    """The problem with a text cell that must follow a pattern (scale, DOIs), if any."""
    if name == "scale" and not _SCALE_CODE.match(raw):
        return (
            f"scale is {raw!r}, not a scale code",
            "write it in lower case without spaces, e.g. madrs, ham-d-17, bdi-ii "
            "(the codes are listed in studies/README.md)",
        )
    if name in ("doi", "source_doi"):
        for part in raw.split("; "):
            if not _DOI.match(part):
                return (
                    f"{name} holds {part!r}, which is not a DOI",
                    "write each DOI as 10.xxxx/..., without https://doi.org/, and separate "
                    "several with '; '",
                )
    return None, None


def _parse_file(path: Path, problems: list[Problem]) -> _Parsed | None:
    name = str(path)
    header, body = _read_rows(path, problems)
    if not header:
        return None
    header_problems = _header_problems(name, header)
    problems.extend(header_problems)
    if len(set(header)) != len(header):
        return None  # which of two same-named columns holds the value is unknowable
    parsed = _Parsed(name, header, [], [], complete=not header_problems)
    study_at = header.index("study_id") if "study_id" in header else None
    for row, cells in body:
        if not any(cell.strip() for cell in cells):
            problems.append(Problem(name, row, None, "the row is blank", "delete the blank row"))
            continue
        if len(cells) != len(header):
            problems.append(
                Problem(
                    name,
                    row,
                    None,
                    f"the row has {len(cells)} cells but the header has {len(header)}",
                    "check for a stray or missing comma, or an unquoted comma inside a cell",
                )
            )
            continue
        record: dict[str, Value] = {c.name: None for c in SCHEMA}
        unreadable: set[str] = set()
        study = cells[study_at] or None if study_at is not None else None
        for column_name, raw in zip(header, cells, strict=True):
            column = _BY_NAME.get(column_name)
            if column is None:
                continue  # reported once, on the header
            value, problem, fix = _parse_cell(column, raw)
            if problem is not None:
                problems.append(Problem(name, row, column_name, problem, fix, study))
                unreadable.add(column_name)
            record[column_name] = value
        parsed.records.append(record)
        parsed.rows.append(row)
        parsed.unreadable.append(unreadable)
    if not body:
        problems.append(
            Problem(name, None, None, "the file has no records", "add rows or remove the file")
        )
    return parsed


# ---------------------------------------------------------------------------
# Checks of one record


def _num(record: dict[str, Value], name: str) -> float | None:
    value = record[name]
    return float(value) if isinstance(value, int | float) else None


def _has(record: dict[str, Value], *names: str) -> bool:
    return all(record[name] is not None for name in names)


def _any(record: dict[str, Value], *names: str) -> bool:
    return any(record[name] is not None for name in names)


def _record_problems(record: dict[str, Value], unreadable: set[str]) -> list[tuple[str, str, str]]:
    """Problems within one record, as (column, problem, fix).

    Cells in ``unreadable`` were already reported; checks that need them are
    skipped rather than reported again as missing data.
    """
    found: list[tuple[str, str, str]] = []
    outcome = record["outcome_type"]
    if record["arm1_id"] is not None and record["arm1_id"] == record["arm2_id"]:
        found.append(
            (
                "arm2_id",
                f"arm1_id and arm2_id are both {record['arm1_id']!r}",
                "a comparison needs two different arms; correct one of the arm ids",
            )
        )
    noninteger = False
    for k in (1, 2):
        events, total = _num(record, f"events{k}"), _num(record, f"total{k}")
        if events is not None and total is not None and events > total:
            found.append(
                (
                    f"events{k}",
                    f"events{k} is {events:g} but total{k} is {total:g}; events cannot exceed "
                    "the total",
                    "check both cells against the source",
                )
            )
        if events is not None and events != math.floor(events):
            noninteger = True
            if record["noninteger_counts"] != 1:
                found.append(
                    (
                        f"events{k}",
                        f"events{k} is {events:g}, not a whole number",
                        "correct it; if the source really publishes a fractional count, keep it "
                        "and set noninteger_counts to 1",
                    )
                )
    if record["noninteger_counts"] == 1 and not noninteger:
        found.append(
            (
                "noninteger_counts",
                "noninteger_counts is 1 but every count in the record is whole",
                "set it to 0 or leave it blank",
            )
        )
    for measure in _PRECOMPUTED:
        found.extend(_interval_problems(record, measure))
    if record["log_rr_se"] is not None and record["log_rr"] is None:
        found.append(("log_rr_se", "log_rr_se is given but log_rr is blank", "fill in log_rr"))
    if isinstance(outcome, str):
        found.extend(_outcome_problems(record, outcome))
    if record["post_crossover"] is not None and record["design"] == "parallel":
        found.append(
            (
                "post_crossover",
                "post_crossover is set but design is parallel",
                "leave post_crossover blank for parallel trials, or correct the design",
            )
        )
    if record["not_poolable_reason"] is None and not unreadable and not _effect_computable(record):
        found.append(
            (
                "not_poolable_reason",
                "no effect can be computed from this record: it needs n, mean and sd in both "
                "arms, events and total in both arms, or a precomputed smd, md or log_rr with "
                "its SE or 95% CI",
                "fill in the missing values from the source, or, if the source does not give "
                "them, say why in not_poolable_reason",
            )
        )
    return found


def _interval_problems(record: dict[str, Value], measure: str) -> list[tuple[str, str, str]]:
    estimate = _num(record, measure)
    lower, upper = _num(record, f"{measure}_ci_lb"), _num(record, f"{measure}_ci_ub")
    found: list[tuple[str, str, str]] = []
    if (lower is None) != (upper is None):
        given = f"{measure}_ci_lb" if lower is not None else f"{measure}_ci_ub"
        found.append(
            (given, f"{given} is given without the other CI bound", "give both bounds or neither")
        )
    if estimate is None and _any(record, f"{measure}_se", f"{measure}_ci_lb", f"{measure}_ci_ub"):
        found.append(
            (
                measure,
                f"{measure} is blank but its SE or CI is given",
                f"fill in {measure} from the source",
            )
        )
    if (
        estimate is not None
        and lower is not None
        and upper is not None
        and not lower <= estimate <= upper
    ):
        found.append(
            (
                measure,
                f"{measure} is {estimate:g} but its CI is [{lower:g}, {upper:g}]; the "
                "estimate must lie inside its interval",
                "check the estimate and both bounds against the source",
            )
        )
    return found


def _outcome_problems(record: dict[str, Value], outcome: str) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    counts = ("events1", "events2", "total1", "total2")
    scores = ("mean1", "mean2", "sd1", "sd2", "se1", "se2")
    percents = ("percent1", "percent2")
    misplaced: tuple[str, ...] = ()
    if outcome in CONTINUOUS_OUTCOMES:
        misplaced = counts + percents
        where = "records with outcome_type response, remission, dropout or dropout_ae"
    elif outcome in DICHOTOMOUS_OUTCOMES:
        misplaced = scores + percents
        where = "records with outcome_type endpoint, change or endpoint_or_change"
    else:
        misplaced = counts + scores
        where = "a record of the matching outcome_type"
    for name in misplaced:
        if record[name] is not None:
            found.append(
                (
                    name,
                    f"{name} is given but outcome_type is {outcome!r}",
                    f"move it to {where}, or correct outcome_type",
                )
            )
    negative = [f"mean{k}" for k in (1, 2) if (_num(record, f"mean{k}") or 0.0) < 0]
    if outcome == "endpoint" and negative:
        found.append(
            (
                negative[0],
                f"{negative[0]} is {record[negative[0]]} but outcome_type is endpoint; a "
                "negative mean is a change score",
                "set outcome_type to change, or to endpoint_or_change with change_certain 1",
            )
        )
    if outcome == "endpoint_or_change" and negative and record["change_certain"] != 1:
        found.append(
            (
                "change_certain",
                f"{negative[0]} is {record[negative[0]]}, so the means are certainly change "
                "scores, but change_certain is not 1",
                "set change_certain to 1",
            )
        )
    if outcome != "endpoint_or_change" and record["change_certain"] is not None:
        found.append(
            (
                "change_certain",
                f"change_certain is set but outcome_type is {outcome!r}",
                "leave it blank; it only applies to endpoint_or_change records",
            )
        )
    expected = {
        "response": "higher_is_better",
        "remission": "higher_is_better",
        "percent_improved": "higher_is_better",
        "dropout": "lower_is_better",
        "dropout_ae": "lower_is_better",
    }.get(outcome)
    if expected is not None and record["direction"] not in (None, expected):
        found.append(
            (
                "direction",
                f"direction is {record['direction']!r} but a {outcome} outcome is "
                f"{expected.replace('_', ' ')}",
                f"set direction to {expected}",
            )
        )
    return found


def _effect_computable(record: dict[str, Value]) -> bool:
    """Whether at least one effect measure can be computed from the record."""
    if _has(record, "n1", "mean1", "sd1", "n2", "mean2", "sd2"):
        return True
    if _has(record, "events1", "total1", "events2", "total2"):
        return True
    for measure in _PRECOMPUTED:
        if _has(record, measure) and (
            _has(record, f"{measure}_se") or _has(record, f"{measure}_ci_lb", f"{measure}_ci_ub")
        ):
            return True
    return _has(record, "log_rr", "log_rr_se")


# ---------------------------------------------------------------------------
# Checks across records


@dataclass(frozen=True)
class _Where:
    file: str
    row: int
    study: str | None
    unreadable: frozenset[str] = frozenset()


def _at(where: _Where) -> str:
    return f"{where.file} row {where.row}"


def _problem(where: _Where, column: str, problem: str, fix: str) -> Problem:
    return Problem(where.file, where.row, column, problem, fix, where.study)


@dataclass
class _Seen:
    """What the records read so far hold, by the key each check compares on."""

    ids: dict[Value, _Where] = field(default_factory=dict)
    keys: dict[tuple[Value, ...], _Where] = field(default_factory=dict)
    trial: dict[tuple[Value, str], tuple[Value, _Where]] = field(default_factory=dict)
    treatment: dict[tuple[Value, Value], tuple[tuple[Value, Value], _Where]] = field(
        default_factory=dict
    )
    arm_numbers: dict[tuple[Value, ...], tuple[Value, _Where, int]] = field(default_factory=dict)
    randomised: dict[tuple[Value, Value], tuple[Value, _Where]] = field(default_factory=dict)


def _cross_problems(located: list[tuple[_Where, dict[str, Value]]]) -> list[Problem]:
    """Problems that only show across records: repeated ids or records, and a trial,
    arm or shared arm described differently in two records (in record order)."""
    problems: list[Problem] = []
    seen = _Seen()
    for where, record in located:
        problems += _repeated_records(where, record, seen)
        if record["study_id"] is None:
            continue
        problems += _trial_disagreements(where, record, seen)
        same_arms = record["arm1_id"] == record["arm2_id"]  # reported on its own
        for k in (1, 2):
            if record[f"arm{k}_id"] is not None and not same_arms:
                problems += _arm_disagreements(where, record, k, seen)
    return problems


def _repeated_records(where: _Where, record: dict[str, Value], seen: _Seen) -> list[Problem]:
    out: list[Problem] = []
    record_id = record["record_id"]
    if record_id is not None:
        if record_id in seen.ids:
            out.append(
                _problem(
                    where,
                    "record_id",
                    f"record_id {record_id!r} is already used at {_at(seen.ids[record_id])}",
                    "give every record its own id",
                )
            )
        else:
            seen.ids[record_id] = where
    key = tuple(record[name] for name in _KEY_COLUMNS)
    if record["study_id"] is not None and not where.unreadable.intersection(_KEY_COLUMNS):
        if key in seen.keys:
            out.append(
                _problem(
                    where,
                    "record_id",
                    f"this record repeats {_at(seen.keys[key])}: same trial, arms, "
                    "outcome_type, scale, time point and subgroup",
                    "remove the duplicate, or tell the two apart with time_label or subgroup",
                )
            )
        else:
            seen.keys[key] = where
    return out


def _trial_disagreements(where: _Where, record: dict[str, Value], seen: _Seen) -> list[Problem]:
    out: list[Problem] = []
    study = record["study_id"]
    for name in _TRIAL_COLUMNS:
        if name in where.unreadable:
            continue
        value = record[name]
        first = seen.trial.setdefault((study, name), (value, where))
        if first[0] != value:
            out.append(
                _problem(
                    where,
                    name,
                    f"{name} is {_show(value)} here but {_show(first[0])} at {_at(first[1])}, "
                    "another record of the same trial",
                    "use one value for the whole trial, or give the trials different study_ids",
                )
            )
    return out


def _arm_disagreements(
    where: _Where, record: dict[str, Value], k: int, seen: _Seen
) -> list[Problem]:
    """Arm ``k`` of the record against the same arm in earlier records: its drug and
    dose, the number randomised, and its numbers for the same outcome and time."""
    out: list[Problem] = []
    skip, study, arm = where.unreadable, record["study_id"], record[f"arm{k}_id"]
    if f"arm{k}_id" in skip:
        return out
    drug, dose = (
        ("intervention", "intervention_dose") if k == 1 else ("comparator", "comparator_dose")
    )
    given = (record[drug], record[dose])
    if drug not in skip and dose not in skip:
        first_t = seen.treatment.setdefault((study, arm), (given, where))
        if first_t[0] != given:
            out.append(
                _problem(
                    where,
                    f"arm{k}_id",
                    f"arm {arm!r} gets {_show(given[0])} {_show(given[1])} here but "
                    f"{_show(first_t[0][0])} {_show(first_t[0][1])} at {_at(first_t[1])}",
                    "an arm id names one arm of the trial: use the same drug and dose "
                    "wherever it appears, or give the arms different ids",
                )
            )
    count = record[f"n_randomised{k}"]
    if count is not None:
        first_r = seen.randomised.setdefault((study, arm), (count, where))
        if first_r[0] != count:
            out.append(
                _problem(
                    where,
                    f"n_randomised{k}",
                    f"arm {arm!r} has n_randomised {count} here but {first_r[0]} at "
                    f"{_at(first_r[1])}",
                    "a shared arm must have the same number randomised in every record",
                )
            )
    if record[f"imputed{k}"] == 1 or skip.intersection(_OUTCOME_GROUP):
        return out  # imputed values are specific to one comparison (e.g. Goodwin 2022)
    return out + _arm_number_disagreements(where, record, k, seen)


def _arm_number_disagreements(
    where: _Where, record: dict[str, Value], k: int, seen: _Seen
) -> list[Problem]:
    out: list[Problem] = []
    study, arm = record["study_id"], record[f"arm{k}_id"]
    group = tuple(record[name] for name in _OUTCOME_GROUP)
    for number in _ARM_NUMBERS:
        value = record[f"{number}{k}"]
        if value is None:
            continue
        first_n = seen.arm_numbers.setdefault((study, arm, *group, number), (value, where, k))
        if first_n[0] != value:
            out.append(
                _problem(
                    where,
                    f"{number}{k}",
                    f"arm {arm!r} has {number} {_show_number(value)} here but "
                    f"{_show_number(first_n[0])} at {_at(first_n[1])} "
                    f"({number}{first_n[2]}), for the same outcome and time point",
                    "a shared arm must carry the same numbers in every comparison: correct "
                    "one of them, or flag imputed values with imputed1/imputed2",
                )
            )
    return out


def _show(value: Value) -> str:
    return "blank" if value is None else repr(value)


def _show_number(value: Value) -> str:
    if isinstance(value, float) and value == math.floor(value) and abs(value) < 2**53:
        return str(int(value))
    return str(value)


def _shared_flags(records: list[dict[str, Value]]) -> list[int]:
    """1 for each record with an arm that another record of its outcome group also uses."""
    uses: dict[tuple[Value, ...], int] = {}
    for record in records:
        group = tuple(record[name] for name in _OUTCOME_GROUP)
        for k in (1, 2):
            slot = (record["study_id"], record[f"arm{k}_id"], *group)
            uses[slot] = uses.get(slot, 0) + 1
    flags: list[int] = []
    for record in records:
        group = tuple(record[name] for name in _OUTCOME_GROUP)
        shared = any(uses[(record["study_id"], record[f"arm{k}_id"], *group)] > 1 for k in (1, 2))
        flags.append(int(shared))
    return flags


def _validate(files: Sequence[Path]) -> tuple[list[Problem], list[_Parsed]]:
    problems: list[Problem] = []
    parsed: list[_Parsed] = []
    for path in files:
        if path.suffix.lower() != ".csv":
            problems.append(
                Problem(str(path), None, None, "not a .csv file", "give a study CSV file")
            )
            continue
        result = _parse_file(path, problems)
        if result is not None:
            parsed.append(result)
    located: list[tuple[_Where, dict[str, Value]]] = []
    for result in parsed:
        if not result.complete:
            continue  # a missing column would make every record look incomplete
        for record, row, unreadable in zip(
            result.records, result.rows, result.unreadable, strict=True
        ):
            where = _Where(result.file, row, _text(record["study_id"]), frozenset(unreadable))
            for column, problem, fix in _record_problems(record, unreadable):
                problems.append(Problem(where.file, row, column, problem, fix, where.study))
            located.append((where, record))
    problems.extend(_cross_problems(located))
    # Which arms a trial shares cannot be judged while one of its records has an
    # unreadable arm, outcome or time point: those trials are skipped here.
    grouping = {"study_id", "arm1_id", "arm2_id", *_OUTCOME_GROUP}
    unsure = {
        record["study_id"]
        for where, record in located
        if where.unreadable & grouping or record["arm1_id"] == record["arm2_id"]
    }
    all_records = [record for _, record in located]
    for (where, record), flag in zip(located, _shared_flags(all_records), strict=True):
        if record["study_id"] in unsure:
            continue
        if record["shared_arm"] is not None and record["shared_arm"] != flag:
            problems.append(
                Problem(
                    where.file,
                    where.row,
                    "shared_arm",
                    f"shared_arm is {record['shared_arm']} but an arm of this record is "
                    + ("" if flag else "not ")
                    + "used by another record of the same trial, outcome and time point",
                    f"set shared_arm to {flag}, or leave it blank for the loader to fill in",
                    where.study,
                )
            )
    problems.sort(key=lambda p: (p.file, p.row or 0))
    return problems, parsed


def _text(value: Value) -> str | None:
    return value if isinstance(value, str) else None


# ---------------------------------------------------------------------------
# Public API


def validate_studies(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | None = None,
) -> list[Problem]:
    """Check study files against the schema and return every problem found.

    The checks: required columns, no unknown or repeated ones; the type of
    every cell; ranges (SD, SE > 0; n, totals ≥ 1; 0 ≤ events ≤ total; whole
    counts unless flagged; percentages in [0, 100]; estimates inside their CIs);
    allowed values of coded columns; unique ``record_id`` and unique records
    (trial, arms, outcome, scale, time point, subgroup); consistency of each
    trial (registry id, DOI, year, design, ...) and of each arm (same drug and
    dose, and the same numbers wherever a shared arm appears for one outcome
    and time point, unless flagged as imputed); outcome type against the data
    given; and that each record has enough data for at least one effect
    measure, or states in ``not_poolable_reason`` why it has not.

    Parameters
    ----------
    paths
        Study CSV files or folders of them (a folder means its ``*.csv``
        files). ``None`` finds the ``studies/`` folder with
        :func:`find_studies_dir`.

    Returns
    -------
    list of Problem
        Sorted by file and row; empty when the files are valid.
    """
    files = _expand(paths)
    if not files:
        return [Problem(str(paths), None, None, "no CSV files found", "give study CSV files")]
    problems, _ = _validate(files)
    return problems


def load_studies(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | None = None,
    *,
    drug_class: DrugClass | Sequence[DrugClass] | None = None,
) -> StudyTable:
    """Load and validate study records.

    Every file is validated in full (see :func:`validate_studies`) before any
    record is returned; analyses never see unvalidated data.

    Parameters
    ----------
    paths
        Study CSV files or folders of them. ``None`` finds the ``studies/``
        folder of the checkout (:func:`find_studies_dir`).
    drug_class
        Keep only these drug classes (after validating everything).

    Returns
    -------
    StudyTable
        The records, and those of them that cannot be pooled, with reasons.

    Raises
    ------
    StudyValidationError
        Any problem in any file; it lists them all.
    InputError
        No files were found, or ``drug_class`` is not a known class.
    """
    files = _expand(paths)
    if not files:
        given = (
            []
            if paths is None
            else [paths]
            if isinstance(paths, str | os.PathLike)
            else list(paths)
        )
        searched = ", ".join(str(p) for p in given) or "the paths given"
        raise InputError(
            f"no CSV files in {searched}", fix="give study CSV files or the folder that holds them"
        )
    wanted: tuple[str, ...] | None = None
    if drug_class is not None:
        wanted = (drug_class,) if isinstance(drug_class, str) else tuple(drug_class)
        unknown = sorted(set(wanted) - set(DRUG_CLASSES))
        if unknown:
            raise InputError(
                f"unknown drug class {unknown[0]!r}",
                fix="use one of: " + ", ".join(DRUG_CLASSES),
            )
    problems, parsed = _validate(files)
    if problems:
        raise StudyValidationError(problems)
    records: list[dict[str, Value]] = []
    where: list[tuple[str, int]] = []
    for result in parsed:
        records.extend(result.records)
        where.extend((result.file, row) for row in result.rows)
    for record, flag in zip(records, _shared_flags(records), strict=True):
        record["shared_arm"] = flag
    frame = _to_frame(records, where)
    if wanted is not None:
        frame = frame[frame["drug_class"].isin(wanted)].reset_index(drop=True)
    not_poolable = tuple(
        NotPoolable(
            record_id=str(row["record_id"]),
            study_id=str(row["study_id"]),
            drug_class=str(row["drug_class"]),
            file=str(row["file"]),
            row=int(row["row"]),
            reason=str(row["not_poolable_reason"]),
        )
        for row in frame[frame["not_poolable_reason"] != ""].to_dict("records")
    )
    return StudyTable(frame=frame, not_poolable=not_poolable, paths=tuple(files))


def _to_frame(records: list[dict[str, Value]], where: list[tuple[str, int]]) -> pd.DataFrame:
    data: dict[str, pd.Series[Any]] = {}
    for column in SCHEMA:
        values = [record[column.name] for record in records]
        if column.kind in ("text", "code"):
            data[column.name] = pd.Series(["" if v is None else v for v in values], dtype=object)
        elif column.kind == "float":
            data[column.name] = pd.Series(
                [math.nan if v is None else float(v) for v in values], dtype="float64"
            )
        else:
            data[column.name] = pd.Series(values, dtype="Int64")
    data["file"] = pd.Series([file for file, _ in where], dtype=object)
    data["row"] = pd.Series([row for _, row in where], dtype="int64")
    return pd.DataFrame(data)


def summarise_studies(table: StudyTable) -> list[ClassSummary]:
    """Per drug class: trials, records, not-poolable records, outcomes, scales, time points.

    Parameters
    ----------
    table
        Loaded study records.

    Returns
    -------
    list of ClassSummary
        One per drug class present, in alphabetical order.
    """
    frame = table.frame
    summaries: list[ClassSummary] = []
    for name in sorted(set(frame["drug_class"])):
        part = frame[frame["drug_class"] == name]
        weeks = sorted({float(w) for w in part["time_weeks"].dropna()})
        summaries.append(
            ClassSummary(
                drug_class=str(name),
                trials=int(part["study_id"].nunique()),
                records=len(part),
                not_poolable=int((part["not_poolable_reason"] != "").sum()),
                outcomes=_counts(part["outcome_type"]),
                scales=_counts(part["scale"][part["scale"] != ""]),
                time_points_weeks=tuple(weeks),
            )
        )
    return summaries


def _counts(values: pd.Series[Any]) -> dict[str, int]:
    counted = values.value_counts()
    return {str(key): int(counted[key]) for key in sorted(counted.index, key=str)}


def schema_markdown() -> str:
    """The data dictionary of :data:`SCHEMA` as a Markdown table."""
    lines = [
        "| column | type | required | description |",
        "|---|---|---|---|",
    ]
    for column in SCHEMA:
        kind = {"text": "text", "code": "code", "int": "integer", "float": "number"}.get(
            column.kind, "0/1"
        )
        need = "column + value" if column.not_blank else ("column" if column.required else "")
        limits = []
        if column.positive:
            limits.append("> 0")
        if column.minimum is not None:
            limits.append(f"≥ {column.minimum:g}")
        if column.maximum is not None:
            limits.append(f"≤ {column.maximum:g}")
        if limits:
            kind += " " + ", ".join(limits)
        lines.append(f"| `{column.name}` | {kind} | {need} | {column.description} |")
    return "\n".join(lines) + "\n"
