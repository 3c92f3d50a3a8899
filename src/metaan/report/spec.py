"""Report specifications: ``reports/<name>.toml``, read with :mod:`tomllib` and checked.

A specification declares everything a report does: the study files and the
filters on them, the effect measure and model settings, the words the report
uses for its outcomes and units, the analyses and comparisons, the judgements
behind the GRADE ratings, the published figures it reproduces, and the plots.

The tables of the file are read into the frozen dataclasses below by one
loader driven by their fields: a field's type says what the key holds, its
default makes the key optional, and its ``metadata`` gives the allowed
choices. An unknown key or a wrong type is a :class:`~metaan.errors.SpecError`
that names the key and its line. Paths are resolved relative to the
specification's folder, and the output folder must stay inside that folder.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from metaan._args import check_level
from metaan.errors import InputError, SpecError
from metaan.grade import GradeRules

__all__ = [
    "BUNDLED_SPEC",
    "BiasSpec",
    "ClassSpec",
    "ComparisonSpec",
    "DependentClassSpec",
    "DependentSpec",
    "DoseSpec",
    "Filter",
    "GradeSpec",
    "ModelSpec",
    "NetworkSpec",
    "OutcomeSpec",
    "ReportSpec",
    "ReproductionSpec",
    "SensitivitySpec",
    "load_spec",
]

Scalar = str | int | float | bool
#: A filter: column -> allowed value(s).
Filter = dict[str, tuple[Scalar, ...]]


def _choices(*values: str, key: str | None = None) -> dict[str, Any]:
    return {"choices": values, **({"key": key} if key else {})}


def _key(name: str) -> dict[str, Any]:
    return {"key": name}


def _required() -> Any:
    return field(metadata={"required": True})


@dataclass(frozen=True)
class Selection:
    """Which records an analysis uses: a named selection, then ``where`` and ``exclude``."""

    named: str | None = field(default=None, metadata=_key("select"))
    where: Filter = field(default_factory=dict)
    exclude: Filter = field(default_factory=dict)
    #: Why a filter leaves a trial out, in words, by column (else the filter is quoted).
    reasons: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        parts = []
        if self.named:
            parts.append(f"the named selection {self.named!r}")
        for column, values in self.where.items():
            parts.append(f"{column} in {list(values)}")
        for column, values in self.exclude.items():
            parts.append(f"{column} not in {list(values)}")
        return "; ".join(parts) if parts else "all records"


@dataclass(frozen=True)
class ModelSpec:
    #: The measure of continuous outcomes: standardised or raw mean difference.
    measure: str = field(default="SMD", metadata=_choices("SMD", "MD"))
    #: ``reported``: the source review's own estimate and SE where a record has one
    #: for the measure (else recomputed); ``recomputed``: always from the arm data.
    effect_sizes: str = field(default="recomputed", metadata=_choices("reported", "recomputed"))
    method: str = field(default="REML", metadata={"choices": "METHODS"})
    test: str = field(default="knha", metadata=_choices("z", "knha"))
    level: float = 95.0
    #: The convention of the prediction interval: metafor 3.8's or R meta's.
    prediction: str = field(default="metafor", metadata=_choices("metafor", "meta"))
    shared_control: str = field(default="split", metadata=_choices("split", "first"))
    change_scores: str = field(default="include", metadata=_choices("include", "exclude"))
    imputed: str = field(default="include", metadata=_choices("include", "exclude"))
    #: Measures of the response analyses; the first is the primary one.
    response_measures: tuple[str, ...] = field(default=("RR",), metadata=_choices("OR", "RR", "RD"))


@dataclass(frozen=True)
class OutcomeSpec:
    """The words the report uses for its outcomes and units."""

    #: What the continuous outcome measures, e.g. "depression scores".
    continuous: str = "scores"
    #: The unit of a raw mean difference, e.g. "HAM-D-17 points".
    unit: str = "points"
    #: What the binary outcome counts, e.g. "response".
    response: str = "response"
    #: How the binary outcome is counted, e.g. "responders over randomised".
    response_definition: str = "participants with the event over those randomised"
    #: Whether lower values of the continuous outcome are better (symptom scores).
    lower_is_better: bool = True
    #: Thresholds of |effect| for the words negligible / small / moderate / large.
    #: Empty: Cohen's 0.2, 0.5, 0.8 for SMD, and no size words for other measures.
    size_thresholds: tuple[float, ...] = ()


@dataclass(frozen=True)
class SensitivitySpec:
    leave_one_out: bool = True
    influence: bool = True
    without_high_rob: bool = True
    without_open_label: bool = True
    #: Diagnoses that count as depression populations; the rest are left out in
    #: the "without non-depression populations" analysis.
    depression_diagnoses: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClassGradeSpec:
    """GRADE judgements for one class that the records cannot compute (declared)."""

    indirectness: str = field(
        default="", metadata=_choices("", "not serious", "serious", "very serious")
    )
    indirectness_reason: str = ""
    #: Used only where the records carry no RoB 2 judgements.
    risk_of_bias: str = field(
        default="", metadata=_choices("", "not serious", "serious", "very serious")
    )
    risk_of_bias_reason: str = ""


@dataclass(frozen=True)
class ClassSpec:
    id: str = _required()
    label: str = ""
    #: The records' drug_class this class stands for (default: the id).
    drug_class: str = ""
    continuous: Selection | None = None
    response: Selection | None = None
    note: str = ""
    #: A list of trials that exist but cannot be pooled (citations, no outcome data).
    awaiting: Path | None = None
    #: Where the full references of the class's trials are, for trials cited by code.
    references_note: str = ""
    grade: ClassGradeSpec = field(default_factory=ClassGradeSpec)


@dataclass(frozen=True)
class ComparisonSpec:
    classes: tuple[str, ...] = ()
    direct_label: str = ""
    direct: Selection | None = None
    indirect_label: str = ""
    #: The first class of the indirect comparison, restricted to placebo-type controls.
    indirect_a: Selection | None = None
    indirect_b: str | None = None
    caveats: tuple[str, ...] = ()


@dataclass(frozen=True)
class DoseSpec:
    class_id: str = field(default="", metadata={"key": "class", "required": True})
    subgroup: str = "comparator_kind"
    within_trial_label: str = ""
    within_trial: Selection | None = None
    moderator_label: str = "dose (mg)"
    #: The drug whose dose is read, and the unit doses are read in (per session).
    drug: str = "the drug"
    unit: str = "mg"
    #: Doses at or below this are "very low" (placebo-like) in the microdosing text.
    very_low: float = 3.0
    #: What each kind of control is, in the report's words (shown under the subgroups).
    controls_note: str = ""
    statement: str = ""


@dataclass(frozen=True)
class NetworkSpec:
    """The ``[network]`` table of a report specification."""

    #: The classes whose trials form the network (their continuous and response
    #: selections), in order.
    classes: tuple[str, ...] = ()
    #: The node of a class's drug arms: a name (all doses of psilocybin are
    #: "psilocybin"), or "" for the drug the record names (one node per SSRI).
    drug_nodes: dict[str, str] = field(default_factory=dict)
    #: The node of each kind of control (the records' ``comparator_kind``), or "" for
    #: the drug the record names as comparator (an active drug).
    control_nodes: dict[str, str] = field(default_factory=dict)
    #: ``nodes``: each kind of control is its own treatment; ``lumped``: the kinds in
    #: ``lump`` are the reference treatment.
    controls: str = field(default="nodes", metadata=_choices("nodes", "lumped"))
    #: Kinds of control lumped into the reference (in the main network with
    #: ``controls = "lumped"``, else in a sensitivity analysis).
    lump: tuple[str, ...] = ()
    reference: str = "placebo"
    method: str = field(default="REML", metadata=_choices("DL", "REML", "ML"))
    response_measure: str = field(default="OR", metadata=_choices("OR", "RR", "RD"))
    #: The trial that compares two classes directly, for each outcome.
    link_label: str = ""
    link_continuous: Selection | None = None
    link_response: Selection | None = None
    #: The comparison the section reports in detail (treatments a and b).
    focus: tuple[str, ...] = ()
    #: Classes left out of the network, with the reason.
    left_out: dict[str, str] = field(default_factory=dict)
    #: Plain-language notes on transitivity, printed under the network.
    caveats: tuple[str, ...] = ()


@dataclass(frozen=True)
class BiasSpec:
    min_k: int = 10
    contours: tuple[float, ...] = (0.10, 0.05, 0.01)


@dataclass(frozen=True)
class GradeSpec(GradeRules):
    """The rules of the GRADE ratings (:class:`metaan.grade.GradeRules`, each a
    judgement declared here), whether to rate at all, and the control risk of the
    absolute effects (none: the median in the data)."""

    enabled: bool = True
    control_risk: float | None = None


@dataclass(frozen=True)
class ReproductionSpec:
    """A published figure the report recomputes, and where it was published."""

    label: str = _required()
    #: ``<class>/continuous`` or ``<class>/response/<measure>``.
    analysis: str = _required()
    source: str = _required()
    #: Published numbers by name (estimate, se, ci_lb, ci_ub, tau2, QE, I2, pi_lb, pi_ub,
    #: k), as printed: text, so that each is compared at its own number of decimals.
    published: dict[str, str] = field(default_factory=dict)
    #: The convention of a published prediction interval (metafor or meta).
    prediction: str = field(default="metafor", metadata=_choices("metafor", "meta"))
    #: The published analysis's test, where it differs from the report's.
    test: str = field(default="", metadata=_choices("", "z", "knha"))


@dataclass(frozen=True)
class DependentClassSpec:
    """One class of the shared-control model of multi-arm trials."""

    class_id: str = field(default="", metadata={"key": "id", "required": True})
    #: The comparisons, every active arm against its trial's control (default: the
    #: class's continuous selection).
    continuous: Selection | None = None


@dataclass(frozen=True)
class DependentSpec:
    """Multi-arm trials modelled with a shared-control covariance, a sensitivity
    analysis beside the split-control one (:mod:`metaan.report.dependent`)."""

    classes: tuple[DependentClassSpec, ...] = field(default=(), metadata=_key("class"))
    #: The correlation of comparisons of one trial on different observations (scale
    #: or time point); comparisons on the same observation need none.
    rho: float = 0.6
    #: Why this rho, in words, for the methods.
    rho_reason: str = ""


@dataclass(frozen=True)
class ReportSpec:
    """A parsed and checked report specification."""

    path: Path
    text: str
    title: str
    subtitle: str
    output: Path
    files: tuple[Path, ...]
    model: ModelSpec
    outcome: OutcomeSpec
    classes: tuple[ClassSpec, ...]
    sensitivity: SensitivitySpec
    comparison: ComparisonSpec | None
    dose: DoseSpec | None
    bias: BiasSpec
    grade: GradeSpec
    reproductions: tuple[ReproductionSpec, ...] = ()
    network: NetworkSpec | None = None
    #: Attributions the data licences require, as the report prints them.
    attribution: tuple[str, ...] = ()
    figure_formats: tuple[str, ...] = ("svg", "png")
    dependent: DependentSpec | None = None

    @property
    def name(self) -> str:
        return self.output.name

    def class_ids(self) -> list[str]:
        return [c.id for c in self.classes]


# ----------------------------------------------------------------------------- errors


class _Locator:
    """Finds the line of a key in the TOML text, for error messages."""

    _header = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def _find(self, table: str, key: str) -> int | None:
        assign = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
        current = ""
        for number, line in enumerate(self.lines, start=1):
            header = self._header.match(line)
            if header:
                current = header.group(1).strip()
            elif current == table and assign.match(line):
                return number
        return None

    def line(self, table: str, key: str | None = None) -> int | None:
        """The line defining ``key`` in ``[table]`` (or the table itself), if found."""
        if key is not None:
            found = self._find(table, key)
            if found is not None:
                return found
        if not table:
            return None
        for number, line in enumerate(self.lines, start=1):
            header = self._header.match(line)
            if header and header.group(1).strip() == table:
                return number
        parent, _, name = table.rpartition(".")
        return self._find(parent, name)  # an inline table: name = { ... }


class _Checker:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.base = path.resolve().parent
        self.locator = _Locator(text)

    def fail(self, table: str, key: str | None, problem: str, fix: str) -> SpecError:
        line = self.locator.line(table, key) or self.locator.line(table)
        where = f"{self.path}" + (f" line {line}" if line else "")
        what = f"[{table}] {key}" if key and table else (key or f"[{table}]")
        return SpecError(f"{where}: {what}: {problem}; {fix}")

    def keys(self, data: Mapping[str, Any], table: str, allowed: Mapping[str, Any]) -> None:
        for key in data:
            if key not in allowed:
                raise self.fail(
                    table, key, "unknown key", f"use one of {', '.join(sorted(allowed))}"
                )

    def value(self, value: Any, table: str, key: str, kinds: tuple[type, ...]) -> Any:
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise self.fail(
                table, key, f"is {type(value).__name__} {value!r}", f"it must be a {names}"
            )
        return value

    def choice(self, value: Any, table: str, key: str, choices: tuple[str, ...]) -> None:
        if value not in choices:
            shown = ", ".join(repr(c) if c == "" else c for c in choices)
            raise self.fail(table, key, f"is {value!r}", f"choose one of {shown}")

    def filter(self, raw: Any, table: str, key: str) -> Filter:
        raw = self.value(raw, table, key, (dict,))
        out: Filter = {}
        for column, value in raw.items():
            values = value if isinstance(value, list) else [value]
            if not values or not all(isinstance(v, str | int | float | bool) for v in values):
                raise self.fail(
                    table,
                    key,
                    f"the filter on {column!r} must be a value or a list of values",
                    f'write e.g. {column} = "x" or {column} = ["x", "y"]',
                )
            out[str(column)] = tuple(values)
        return out

    def file(self, raw: Any, table: str, key: str) -> Path:
        name = str(self.value(raw, table, key, (str,)))
        file = (self.base / name).resolve()
        if not file.is_file():
            raise self.fail(table, key, f"{name!r} does not exist", "check the path")
        return file


# ----------------------------------------------------------------------------- the loader


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _optional(kind: Any) -> tuple[Any, bool]:
    """``(X, True)`` for ``X | None``, else ``(kind, False)``."""
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(kind)) == 2:
            return args[0], True
    return kind, False


def _read_field(c: _Checker, kind: Any, raw: Any, table: str, key: str, meta: Any) -> Any:
    """One value of a field's type, checked."""
    kind, optional = _optional(kind)
    origin = typing.get_origin(kind)
    if dataclasses.is_dataclass(kind):
        return _read_dataclass(c, typing.cast(type, kind), raw, f"{table}.{key}".strip("."))
    if kind == Filter:
        return c.filter(raw, table, key)
    if origin is dict:
        raw = c.value(raw, table, key, (dict,))
        inner = typing.get_args(kind)[1]
        return {str(k): c.value(v, table, f"{key}.{k}", (inner,)) for k, v in raw.items()}
    if origin is tuple:
        inner = typing.get_args(kind)[0]
        items = c.value(raw, table, key, (list,))
        if dataclasses.is_dataclass(inner):  # an array of tables, [[table.key]]
            name = f"{table}.{key}".strip(".")
            return tuple(_read_dataclass(c, typing.cast(type, inner), v, name) for v in items)
        values = tuple(c.value(v, table, key, (inner,)) for v in items)
        for v in values:
            if "choices" in meta:
                c.choice(v, table, key, _choice_values(meta["choices"]))
        return values
    if kind is Path:
        return c.file(raw, table, key)
    if raw is None and optional:
        return None
    value = c.value(raw, table, key, (kind,))
    if "choices" in meta:
        c.choice(value, table, key, _choice_values(meta["choices"]))
    return value


def _choice_values(choices: tuple[str, ...] | str) -> tuple[str, ...]:
    if choices == "METHODS":  # the model's estimators, from the library
        from metaan.models import METHODS

        return tuple(METHODS)
    return typing.cast(tuple[str, ...], choices)


def _read_dataclass(c: _Checker, cls: type, raw: Any, table: str) -> Any:
    """A dataclass from its TOML table: every key checked against the fields."""
    raw = c.value(raw if raw is not None else {}, table, table.rpartition(".")[2], (dict,))
    hints = _hints(cls)
    names = {f.metadata.get("key", f.name): f for f in dataclasses.fields(cls)}
    c.keys(raw, table, names)
    values: dict[str, Any] = {}
    for key, f in names.items():
        if key not in raw:
            if f.metadata.get("required"):
                raise c.fail(table, None, f"the key {key!r} is required", f"add {key} = ...")
            continue
        values[f.name] = _read_field(c, hints[f.name], raw[key], table, key, f.metadata)
    return cls(**values)


# ----------------------------------------------------------------------------- checks


def _parse(spec_path: Path) -> tuple[str, dict[str, Any]]:
    try:
        # utf-8-sig: a byte-order mark, as some Windows editors write, is not TOML.
        text = spec_path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise SpecError(
            f"{spec_path}: cannot read the report specification ({exc.strerror or exc}); "
            "give the path of a reports/<name>.toml file"
        ) from None
    except UnicodeDecodeError as exc:
        line = spec_path.read_bytes()[: exc.start].count(b"\n") + 1
        raise SpecError(
            f"{spec_path}: line {line}: the specification is not UTF-8 text; "
            "save it as UTF-8 in your editor"
        ) from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{spec_path}: not valid TOML ({exc}); fix the syntax there") from None


@dataclass(frozen=True)
class _Report:
    title: str = _required()
    subtitle: str = ""
    output: str = ""


@dataclass(frozen=True)
class _Data:
    files: tuple[str, ...] = ()
    attribution: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Figures:
    formats: tuple[str, ...] = field(default=("svg", "png"), metadata=_choices("svg", "png", "pdf"))


#: The top-level tables: key -> (dataclass, a list of tables?).
_TOP: dict[str, tuple[type, bool]] = {
    "report": (_Report, False),
    "data": (_Data, False),
    "model": (ModelSpec, False),
    "outcome": (OutcomeSpec, False),
    "class": (ClassSpec, True),
    "sensitivity": (SensitivitySpec, False),
    "comparison": (ComparisonSpec, False),
    "dose": (DoseSpec, False),
    "bias": (BiasSpec, False),
    "grade": (GradeSpec, False),
    "reproduction": (ReproductionSpec, True),
    "network": (NetworkSpec, False),
    "figures": (_Figures, False),
    "dependent": (DependentSpec, False),
}


#: Tables that are None when the file leaves them out.
_OPTIONAL = (ComparisonSpec, DoseSpec, DependentSpec, NetworkSpec)


def _output(c: _Checker, report: _Report, spec_path: Path) -> Path:
    name = report.output or spec_path.stem
    output = (c.base / name).resolve()
    if output == c.base or c.base not in output.parents:
        raise c.fail(
            "report",
            "output",
            f"{name!r} leaves the specification's folder",
            'give a folder name inside it, e.g. output = "depression"',
        )
    return output


def _files(c: _Checker, data: _Data) -> tuple[Path, ...]:
    files = tuple(c.file(name, "data", "files") for name in data.files)
    if not files:
        raise c.fail(
            "data", "files", "no study files", 'list them, e.g. files = ["../studies/x.csv"]'
        )
    return files


def _check_references(c: _Checker, parts: dict[str, Any]) -> None:
    """Class ids that other tables name must exist; numbers must be in range."""
    classes: list[ClassSpec] = parts["class"]
    ids = [k.id for k in classes]
    if len(set(ids)) != len(ids):
        raise c.fail("class", "id", f"ids repeat: {ids}", "give each class its own id")
    comp: ComparisonSpec | None = parts["comparison"]
    if comp is not None:
        for cid in (*comp.classes, *([comp.indirect_b] if comp.indirect_b else [])):
            if cid not in ids:
                raise c.fail("comparison", "classes", f"{cid!r} is not a class id", f"use {ids}")
    network: NetworkSpec | None = parts["network"]
    if network is not None:
        for cid in (*network.classes, *network.left_out):
            if cid not in ids:
                raise c.fail("network", "classes", f"{cid!r} is not a class id", f"use {ids}")
    dose: DoseSpec | None = parts["dose"]
    if dose is not None and dose.class_id not in ids:
        raise c.fail("dose", "class", f"{dose.class_id!r} is not a class id", f"use {ids}")
    for r in parts["reproduction"]:
        if r.analysis.split("/")[0] not in ids:
            raise c.fail("reproduction", "analysis", f"{r.analysis!r}", f"start with one of {ids}")
        for name, text in r.published.items():
            if not re.fullmatch(r"[-+]?\d+(\.\d+)?", text.strip()):
                raise c.fail(
                    "reproduction",
                    "published",
                    f"{name} = {text!r} is not a number as printed",
                    'write it as text, e.g. estimate = "-0.9031"',
                )
    dep: DependentSpec | None = parts["dependent"]
    if dep is not None:
        if not dep.classes:
            raise c.fail("dependent", "class", "no classes", 'add [[dependent.class]] id = "..."')
        for entry in dep.classes:
            if entry.class_id not in ids:
                raise c.fail(
                    "dependent.class", "id", f"{entry.class_id!r} is not a class id", f"use {ids}"
                )
        if not -1.0 <= dep.rho <= 1.0:
            raise c.fail("dependent", "rho", f"is {dep.rho}", "give a correlation in [-1, 1]")
    model: ModelSpec = parts["model"]
    try:  # the library's one rule for a confidence level (95, or 0.95)
        parts["model"] = dataclasses.replace(model, level=check_level(model.level))
    except InputError as exc:
        raise c.fail("model", "level", f"is {model.level}", exc.problem) from None
    if not all(0 < x < 1 for x in parts["bias"].contours):
        raise c.fail("bias", "contours", "must be p-values between 0 and 1", "e.g. [0.10, 0.05]")
    if "svg" not in parts["figures"].formats:
        raise c.fail("figures", "formats", "svg is missing", "the HTML report embeds SVG; add it")


#: The default report's specification as the package carries it (a link to
#: reports/depression.toml in a checkout; a copy, with the study records, in a wheel).
BUNDLED_SPEC = Path(__file__).resolve().parent.parent / "data" / "reports" / "depression.toml"


def load_spec(path: str | Path) -> ReportSpec:
    """Read and check a report specification.

    Raises
    ------
    SpecError
        For a file that cannot be read or parsed, an unknown key, a wrong type, a
        study file that does not exist, a class id that is not declared, or an
        output folder outside the spec's folder.
    """
    spec_path = Path(path)
    text, raw = _parse(spec_path)
    c = _Checker(spec_path, text)
    c.keys(raw, "", _TOP)
    parts: dict[str, Any] = {}
    for key, (cls, many) in _TOP.items():
        if many:
            entries = c.value(raw.get(key, []), "", key, (list,))
            parts[key] = [_read_dataclass(c, cls, e, key) for e in entries]
        elif key in raw or key in ("report", "data") or cls not in _OPTIONAL:
            parts[key] = _read_dataclass(c, cls, raw.get(key), key)
        else:
            parts[key] = None
    parts["class"] = [
        dataclasses.replace(k, label=k.label or k.id, drug_class=k.drug_class or k.id)
        for k in parts["class"]
    ]
    if parts["comparison"] is not None and not parts["comparison"].classes:
        ids = tuple(k.id for k in parts["class"])
        parts["comparison"] = dataclasses.replace(parts["comparison"], classes=ids)
    _check_references(c, parts)
    return ReportSpec(
        path=spec_path.resolve(),
        text=text,
        title=parts["report"].title,
        subtitle=parts["report"].subtitle,
        output=_output(c, parts["report"], spec_path),
        files=_files(c, parts["data"]),
        model=parts["model"],
        outcome=parts["outcome"],
        classes=tuple(parts["class"]),
        sensitivity=parts["sensitivity"],
        comparison=parts["comparison"],
        dose=parts["dose"],
        bias=parts["bias"],
        grade=parts["grade"],
        reproductions=tuple(parts["reproduction"]),
        network=parts["network"],
        attribution=parts["data"].attribution,
        figure_formats=parts["figures"].formats,
        dependent=parts["dependent"],
    )
