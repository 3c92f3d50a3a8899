"""Report specifications: ``reports/<name>.toml``, read with :mod:`tomllib` and checked.

A specification declares everything a report does: the study files and the
filters on them, the effect measure and model settings, the analyses and
comparisons, and the plots. Every key is checked against the schema below; an
unknown key or a wrong type is a :class:`~metaan.errors.SpecError` that names
the key and its line. Paths are resolved relative to the specification's folder,
and the output folder must stay inside that folder.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from metaan.errors import SpecError

__all__ = [
    "BiasSpec",
    "ClassSpec",
    "ComparisonSpec",
    "DoseSpec",
    "Filter",
    "ModelSpec",
    "ReportSpec",
    "SensitivitySpec",
    "load_spec",
]

Scalar = str | int | float | bool
#: A filter: column -> allowed value(s).
Filter = dict[str, tuple[Scalar, ...]]


@dataclass(frozen=True)
class Selection:
    """Which records an analysis uses: a named selection, then ``where`` and ``exclude``."""

    named: str | None = None
    where: Filter = field(default_factory=dict)
    exclude: Filter = field(default_factory=dict)

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
    measure: str = "SMD"
    method: str = "REML"
    test: str = "knha"
    level: float = 95.0
    shared_control: str = "split"
    change_scores: str = "include"
    imputed: str = "include"
    response_measure: str = "RR"


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
class ClassSpec:
    id: str
    label: str
    continuous: Selection
    response: Selection | None
    note: str = ""


@dataclass(frozen=True)
class ComparisonSpec:
    classes: tuple[str, ...]
    direct_label: str
    direct: Selection | None
    indirect_label: str
    #: The first class of the indirect comparison, restricted to placebo-type controls.
    indirect_a: Selection | None
    indirect_b: str | None
    caveats: tuple[str, ...] = ()


@dataclass(frozen=True)
class DoseSpec:
    class_id: str
    subgroup: str
    within_trial_label: str
    within_trial: Selection | None
    moderator_label: str
    statement: str = ""


@dataclass(frozen=True)
class BiasSpec:
    min_k: int = 10
    contours: tuple[float, ...] = (0.10, 0.05, 0.01)


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
    classes: tuple[ClassSpec, ...]
    sensitivity: SensitivitySpec
    comparison: ComparisonSpec | None
    dose: DoseSpec | None
    bias: BiasSpec
    figure_formats: tuple[str, ...] = ("svg", "png")

    @property
    def name(self) -> str:
        return self.output.name


# ----------------------------------------------------------------------------- schema checks


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
        self.locator = _Locator(text)

    def fail(self, table: str, key: str | None, problem: str, fix: str) -> SpecError:
        line = self.locator.line(table, key) or self.locator.line(table)
        where = f"{self.path}" + (f" line {line}" if line else "")
        what = f"[{table}] {key}" if key and table else (key or f"[{table}]")
        return SpecError(f"{where}: {what}: {problem}; {fix}")

    def keys(self, data: Mapping[str, Any], table: str, allowed: Mapping[str, str]) -> None:
        for key in data:
            if key not in allowed:
                raise self.fail(
                    table,
                    key,
                    "unknown key",
                    f"use one of {', '.join(sorted(allowed))}",
                )

    def get(
        self,
        data: Mapping[str, Any],
        table: str,
        key: str,
        kind: type | tuple[type, ...],
        default: Any = ...,
        choices: tuple[str, ...] | None = None,
    ) -> Any:
        if key not in data:
            if default is ...:
                raise self.fail(table, None, f"the key {key!r} is required", f"add {key} = ...")
            return default
        value = data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise self.fail(
                table, key, f"is {type(value).__name__} {value!r}", f"it must be a {names}"
            )
        if choices is not None and value not in choices:
            raise self.fail(table, key, f"is {value!r}", f"choose one of {', '.join(choices)}")
        return value

    def strings(self, data: Mapping[str, Any], table: str, key: str) -> tuple[str, ...]:
        value = self.get(data, table, key, list, default=[])
        if not all(isinstance(v, str) for v in value):
            raise self.fail(table, key, "must be a list of strings", 'write e.g. ["a", "b"]')
        return tuple(value)

    def filter(self, data: Mapping[str, Any], table: str, key: str) -> Filter:
        raw = self.get(data, table, key, dict, default={})
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

    def selection(self, data: Mapping[str, Any], table: str) -> Selection:
        self.keys(data, table, {"select": "", "where": "", "exclude": ""})
        return Selection(
            named=self.get(data, table, "select", str, default=None),
            where=self.filter(data, table, "where"),
            exclude=self.filter(data, table, "exclude"),
        )

    def table(self, data: Mapping[str, Any], table: str, key: str) -> dict[str, Any]:
        value = self.get(data, table, key, dict, default={})
        return dict(value)


_TOP = {
    "report": "title, subtitle, output",
    "data": "files",
    "model": "measure and model settings",
    "class": "one per drug class",
    "sensitivity": "sensitivity analyses",
    "comparison": "the comparison of classes",
    "dose": "dose and comparator",
    "bias": "small-study effects",
    "figures": "figure formats",
}


def load_spec(path: str | Path) -> ReportSpec:
    """Read and check a report specification.

    Raises
    ------
    SpecError
        For a file that cannot be read or parsed, an unknown key, a wrong type, a
        study file that does not exist, or an output folder outside the spec's folder.
    """
    spec_path = Path(path)
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
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{spec_path}: not valid TOML ({exc}); fix the syntax there") from None
    c = _Checker(spec_path, text)
    c.keys(raw, "", _TOP)
    base = spec_path.resolve().parent

    report = c.table(raw, "", "report")
    c.keys(report, "report", {"title": "", "subtitle": "", "output": ""})
    title = c.get(report, "report", "title", str)
    subtitle = c.get(report, "report", "subtitle", str, default="")
    output_name = c.get(report, "report", "output", str, default=spec_path.stem)
    output = (base / output_name).resolve()
    if output == base or base not in output.parents:
        raise c.fail(
            "report",
            "output",
            f"{output_name!r} leaves the specification's folder",
            'give a folder name inside it, e.g. output = "depression"',
        )

    data = c.table(raw, "", "data")
    c.keys(data, "data", {"files": ""})
    files = []
    for name in c.strings(data, "data", "files"):
        file = (base / name).resolve()
        if not file.is_file():
            raise c.fail("data", "files", f"{name!r} does not exist", "check the path")
        files.append(file)
    if not files:
        raise c.fail(
            "data", "files", "no study files", 'list them, e.g. files = ["../studies/x.csv"]'
        )

    model_raw = c.table(raw, "", "model")
    c.keys(
        model_raw,
        "model",
        {k: "" for k in ModelSpec.__dataclass_fields__},
    )
    from metaan.models import METHODS

    model = ModelSpec(
        measure=c.get(model_raw, "model", "measure", str, "SMD", ("SMD", "MD")),
        method=c.get(model_raw, "model", "method", str, "REML", METHODS),
        test=c.get(model_raw, "model", "test", str, "knha", ("z", "knha")),
        level=c.get(model_raw, "model", "level", float, 95.0),
        shared_control=c.get(
            model_raw, "model", "shared_control", str, "split", ("split", "first")
        ),
        change_scores=c.get(
            model_raw, "model", "change_scores", str, "include", ("include", "exclude")
        ),
        imputed=c.get(model_raw, "model", "imputed", str, "include", ("include", "exclude")),
        response_measure=c.get(
            model_raw, "model", "response_measure", str, "RR", ("RR", "OR", "RD")
        ),
    )
    if not 0 < model.level < 100:
        raise c.fail("model", "level", f"is {model.level}", "give a percentage, e.g. 95")

    classes_raw = c.get(raw, "", "class", list, default=[])
    classes = []
    for entry in classes_raw:
        c.keys(
            entry, "class", {"id": "", "label": "", "continuous": "", "response": "", "note": ""}
        )
        cid = c.get(entry, "class", "id", str)
        classes.append(
            ClassSpec(
                id=cid,
                label=c.get(entry, "class", "label", str, default=cid),
                continuous=c.selection(c.table(entry, "class", "continuous"), "class.continuous"),
                response=(
                    c.selection(entry["response"], "class.response")
                    if "response" in entry
                    else None
                ),
                note=c.get(entry, "class", "note", str, default=""),
            )
        )
    ids = [k.id for k in classes]
    if len(set(ids)) != len(ids):
        raise c.fail("class", "id", f"ids repeat: {ids}", "give each class its own id")

    sens_raw = c.table(raw, "", "sensitivity")
    c.keys(sens_raw, "sensitivity", {k: "" for k in SensitivitySpec.__dataclass_fields__})
    sensitivity = SensitivitySpec(
        leave_one_out=c.get(sens_raw, "sensitivity", "leave_one_out", bool, True),
        influence=c.get(sens_raw, "sensitivity", "influence", bool, True),
        without_high_rob=c.get(sens_raw, "sensitivity", "without_high_rob", bool, True),
        without_open_label=c.get(sens_raw, "sensitivity", "without_open_label", bool, True),
        depression_diagnoses=c.strings(sens_raw, "sensitivity", "depression_diagnoses"),
    )

    comparison = None
    if "comparison" in raw:
        comp = c.table(raw, "", "comparison")
        c.keys(
            comp,
            "comparison",
            {
                "classes": "",
                "direct_label": "",
                "direct": "",
                "indirect_label": "",
                "indirect_a": "",
                "indirect_b": "",
                "caveats": "",
            },
        )
        comp_classes = c.strings(comp, "comparison", "classes") or tuple(ids)
        for cid in comp_classes:
            if cid not in ids:
                raise c.fail("comparison", "classes", f"{cid!r} is not a class id", f"use {ids}")
        indirect_b = c.get(comp, "comparison", "indirect_b", str, default=None)
        if indirect_b is not None and indirect_b not in ids:
            raise c.fail(
                "comparison", "indirect_b", f"{indirect_b!r} is not a class id", f"use {ids}"
            )
        comparison = ComparisonSpec(
            classes=comp_classes,
            direct_label=c.get(comp, "comparison", "direct_label", str, default=""),
            direct=(c.selection(comp["direct"], "comparison.direct") if "direct" in comp else None),
            indirect_label=c.get(comp, "comparison", "indirect_label", str, default=""),
            indirect_a=(
                c.selection(comp["indirect_a"], "comparison.indirect_a")
                if "indirect_a" in comp
                else None
            ),
            indirect_b=indirect_b,
            caveats=c.strings(comp, "comparison", "caveats"),
        )

    dose = None
    if "dose" in raw:
        d = c.table(raw, "", "dose")
        c.keys(
            d,
            "dose",
            {
                "class": "",
                "subgroup": "",
                "within_trial_label": "",
                "within_trial": "",
                "moderator_label": "",
                "statement": "",
            },
        )
        dose_class = c.get(d, "dose", "class", str)
        if dose_class not in ids:
            raise c.fail("dose", "class", f"{dose_class!r} is not a class id", f"use {ids}")
        dose = DoseSpec(
            class_id=dose_class,
            subgroup=c.get(d, "dose", "subgroup", str, default="comparator_kind"),
            within_trial_label=c.get(d, "dose", "within_trial_label", str, default=""),
            within_trial=(
                c.selection(d["within_trial"], "dose.within_trial") if "within_trial" in d else None
            ),
            moderator_label=c.get(d, "dose", "moderator_label", str, default="dose (mg)"),
            statement=c.get(d, "dose", "statement", str, default=""),
        )

    bias_raw = c.table(raw, "", "bias")
    c.keys(bias_raw, "bias", {"min_k": "", "contours": ""})
    contours = c.get(bias_raw, "bias", "contours", list, default=[0.10, 0.05, 0.01])
    if not all(isinstance(x, int | float) and 0 < x < 1 for x in contours):
        raise c.fail("bias", "contours", "must be p-values between 0 and 1", "e.g. [0.10, 0.05]")
    bias = BiasSpec(
        min_k=c.get(bias_raw, "bias", "min_k", int, default=10),
        contours=tuple(float(x) for x in contours),
    )

    figures = c.table(raw, "", "figures")
    c.keys(figures, "figures", {"formats": ""})
    formats = c.strings(figures, "figures", "formats") or ("svg", "png")
    for fmt in formats:
        if fmt not in ("svg", "png", "pdf"):
            raise c.fail(
                "figures", "formats", f"{fmt!r} is not a figure format", "use svg, png, pdf"
            )
    if "svg" not in formats:
        raise c.fail("figures", "formats", "svg is missing", "the HTML report embeds SVG; add it")

    return ReportSpec(
        path=spec_path.resolve(),
        text=text,
        title=title,
        subtitle=subtitle,
        output=output,
        files=tuple(files),
        model=model,
        classes=tuple(classes),
        sensitivity=sensitivity,
        comparison=comparison,
        dose=dose,
        bias=bias,
        figure_formats=tuple(formats),
    )
