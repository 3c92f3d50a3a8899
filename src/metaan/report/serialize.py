"""Turning report results into JSON-ready data and CSV tables.

Every number of the report is in ``results.json``, keyed so it can be reused;
every study-level number carries the file and row it came from. The data's
licences, with their addresses, are in ``results.json`` and in the
``tables/LICENSE.md`` beside the CSV tables.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metaan._json import jsonable
from metaan.report.analyses import Analysis, ClassResults, ReportResults, SubsetFit
from metaan.results import MetaResult

__all__ = [
    "LIBRARIES",
    "analysis_data",
    "jsonable",
    "licence_notice",
    "provenance",
    "relative",
    "results_data",
    "tables",
]

#: Libraries whose versions a report records.
LIBRARIES = (
    "metaan",
    "numpy",
    "scipy",
    "pandas",
    "matplotlib",
    "seaborn",
    "jinja2",
    "weasyprint",
    "python-docx",
    "click",
)


def relative(path: str | Path, base: Path) -> str:
    """``path`` relative to ``base`` (with ``..`` where needed), in POSIX form."""
    return _relative(str(path), base)


@lru_cache(maxsize=64)
def _relative(path: str, base: Path) -> str:
    # Every record names one of a few study files: each is resolved once, not per record.
    try:
        return Path(path).resolve().relative_to(base).as_posix()
    except ValueError:
        return Path(os.path.relpath(Path(path).resolve(), base)).as_posix()


def _records(analysis: Analysis, base: Path) -> list[dict[str, Any]]:
    recs = analysis.records
    if not len(recs):
        return []
    weights = analysis.fit.weights if analysis.fit is not None else np.full(len(recs), np.nan)
    sources = recs.get("effect_source", pd.Series(["recomputed"] * len(recs), index=recs.index))
    return [
        {
            "label": r["label"],
            "study_id": r["study_id"],
            "record_id": r["record_id"],
            "file": relative(r["file"], base),
            "row": int(r["row"]),
            "yi": float(r["yi"]),
            "vi": float(r["vi"]),
            "weight": float(w),
            "effect_source": str(src),
        }
        for (_, r), w, src in zip(recs.iterrows(), weights, sources, strict=True)
    ]


def analysis_data(analysis: Analysis | None, base: Path) -> dict[str, Any] | None:
    """One analysis: its fit, its records with file and row, what it left out and why."""
    if analysis is None:
        return None
    return {
        "id": analysis.id,
        "label": analysis.label,
        "measure": analysis.measure,
        "selection": analysis.selection,
        "k": analysis.k,
        "trials": analysis.trials,
        "classes": list(analysis.classes),
        "class_trials": analysis.class_trials,
        "participants": analysis.participants,
        "effect_sources": dict(sorted(analysis.effect_sources.items())),
        "fit": analysis.fit.to_dict() if analysis.fit is not None else None,
        "note": analysis.note,
        "records": _records(analysis, base),
        "excluded": [{**e.to_dict(), "file": relative(e.file, base)} for e in analysis.excluded],
        "trials_out": [t.to_dict() for t in analysis.trials_out],
    }


def _subset(s: SubsetFit) -> dict[str, Any]:
    return {
        "name": s.name,
        "description": s.description,
        "removed": list(s.removed),
        "fit": s.fit.to_dict() if s.fit is not None else None,
        "note": s.note,
    }


def _class(c: ClassResults, base: Path) -> dict[str, Any]:
    return {
        "id": c.id,
        "label": c.label,
        "note": c.note,
        "continuous": analysis_data(c.continuous, base),
        "response": [analysis_data(a, base) for a in c.response],
        "sensitivity": {
            "leave1out": jsonable(c.leave1out) if c.leave1out is not None else None,
            "influence": jsonable(c.influence) if c.influence is not None else None,
            "subsets": [_subset(s) for s in c.subsets],
        },
        "small_study_effects": jsonable(c.bias) if c.bias is not None else None,
        "small_study_effects_note": c.bias_note,
        "reported": jsonable(
            c.reported.assign(file=[relative(f, base) for f in c.reported["file"]])
            if len(c.reported)
            else []
        ),
    }


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def library_versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def provenance(results: ReportResults) -> dict[str, Any]:
    spec = results.spec
    base = spec.path.parent
    inputs = [{"path": relative(spec.path, base), "sha256": sha256(spec.path)}]
    inputs += [{"path": relative(p, base), "sha256": sha256(p)} for p in spec.files]
    inputs += [
        {"path": relative(c.awaiting, base), "sha256": sha256(c.awaiting)}
        for c in spec.classes
        if c.awaiting is not None
    ]
    return {"inputs": inputs, "versions": library_versions(), "spec": spec.text}


def licence_notice(results: ReportResults) -> str:
    """The licences of the data behind the tables, for ``tables/LICENSE.md``."""
    from metaan.report.sections.provenance import CODE_LICENCE, data_licences

    lines = [
        "# Licences of the data in these tables",
        "",
        "These tables were computed by metaan from the study records listed below; "
        "`../results.json` holds the same numbers. The records' licences require "
        "the attribution given here and in the report's provenance section.",
        "",
    ]
    for item in data_licences(results):
        where = f", {item['licence_url']}" if item["licence_url"] else ""
        doi = f" (doi:{item['source_doi']})" if item["source_doi"] else ""
        lines.append(
            f"- {item['source_dataset']}{doi}: {item['records']} records, "
            f"{item['licence_name']}{where}."
        )
    lines += ["", *(f"- {a}" for a in results.spec.attribution)] if results.spec.attribution else []
    lines += ["", f"metaan itself: {CODE_LICENCE[0]}, {CODE_LICENCE[1]}.", ""]
    return "\n".join(lines)


def results_data(results: ReportResults, sections: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every number of the report, keyed for reuse; ``sections`` adds each section's data."""
    from metaan.report.sections.provenance import CODE_LICENCE, data_licences

    spec = results.spec
    base = spec.path.parent
    data: dict[str, Any] = {
        "report": {"title": spec.title, "subtitle": spec.subtitle, "name": spec.name},
        "settings": dataclasses.asdict(spec.model),
        "outcome": dataclasses.asdict(spec.outcome),
        "classes": {c.id: _class(c, base) for c in results.classes},
        "sections": sections or {},
        "exclusions": [{**e.to_dict(), "file": relative(e.file, base)} for e in results.excluded],
        "not_poolable": [
            {**jsonable(r), "file": relative(r.file, base)} for r in results.studies.not_poolable
        ],
        "licences": {
            "data": data_licences(results),
            "attribution": list(spec.attribution),
            "code": {"name": CODE_LICENCE[0], "url": CODE_LICENCE[1]},
        },
        "provenance": provenance(results),
    }
    return jsonable(data)  # type: ignore[no-any-return]


def _fit_row(label: str, f: MetaResult | None, extra: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"analysis": label, **extra}
    if f is None:
        return row
    d = f.to_dict()
    for key in ("k", "estimate", "se", "ci_lb", "ci_ub", "pi_lb", "pi_ub", "tau2", "I2", "QE",
                "QEp", "pval"):  # fmt: skip
        row[key] = d[key]
    return row


def tables(results: ReportResults) -> dict[str, pd.DataFrame]:
    """The tables of the classes' analyses, one CSV each, named by file stem."""
    base = results.spec.path.parent
    out: dict[str, pd.DataFrame] = {}
    summary = [
        _fit_row(
            f"{c.label} ({a.measure})",
            a.fit,
            {
                "measure": a.measure,
                "trials": a.trials,
                "participants": a.participants,
                "note": a.note,
            },
        )
        for c in results.classes
        for a in c.analyses
    ]
    out["summary"] = pd.DataFrame(summary)
    for c in results.classes:
        recs = _records(c.primary, base)
        if recs:
            out[f"studies_{c.id}"] = pd.DataFrame(recs)
        if c.leave1out is not None:
            out[f"leave1out_{c.id}"] = c.leave1out.to_frame()
        if c.influence is not None:
            out[f"influence_{c.id}"] = c.influence.to_frame()
        if c.subsets:
            out[f"sensitivity_{c.id}"] = pd.DataFrame(
                [
                    _fit_row(
                        s.description, s.fit, {"removed": "; ".join(s.removed), "note": s.note}
                    )
                    for s in c.subsets
                ]
            )
    out["exclusions"] = pd.DataFrame(
        [{**e.to_dict(), "file": relative(e.file, base)} for e in results.excluded],
        columns=["analysis", "file", "row", "study", "record_id", "reason"],
    )
    return out
