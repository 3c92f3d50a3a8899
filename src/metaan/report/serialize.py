"""Turning report results into JSON-ready data and CSV tables.

Every number of the report is in ``results.json``, keyed so it can be reused;
every study-level number carries the file and row it came from.
"""

from __future__ import annotations

import dataclasses
import hashlib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metaan._json import jsonable
from metaan.report.analyses import Analysis, ClassResults, Contrast, ReportResults, SubsetFit
from metaan.report.dependent import DependentClass, sensitivity_rows
from metaan.results import MetaResult

__all__ = ["LIBRARIES", "jsonable", "provenance", "results_data", "tables"]

#: Libraries whose versions a report records.
LIBRARIES = (
    "metaan",
    "numpy",
    "scipy",
    "pandas",
    "statsmodels",
    "matplotlib",
    "seaborn",
    "jinja2",
    "weasyprint",
    "click",
)


def relative(path: str | Path, base: Path) -> str:
    """``path`` relative to ``base`` (with ``..`` where needed), in POSIX form."""
    try:
        return Path(path).resolve().relative_to(base).as_posix()
    except ValueError:
        import os

        return Path(os.path.relpath(Path(path).resolve(), base)).as_posix()


def _records(analysis: Analysis, base: Path) -> list[dict[str, Any]]:
    recs = analysis.records
    if not len(recs):
        return []
    weights = analysis.fit.weights if analysis.fit is not None else np.full(len(recs), np.nan)
    out = []
    for (_, r), w in zip(recs.iterrows(), weights, strict=True):
        out.append(
            {
                "label": r["label"],
                "study_id": r["study_id"],
                "record_id": r["record_id"],
                "file": relative(r["file"], base),
                "row": int(r["row"]),
                "yi": float(r["yi"]),
                "vi": float(r["vi"]),
                "weight": float(w),
            }
        )
    return out


def _analysis(analysis: Analysis | None, base: Path) -> dict[str, Any] | None:
    if analysis is None:
        return None
    return {
        "id": analysis.id,
        "label": analysis.label,
        "measure": analysis.measure,
        "selection": analysis.selection,
        "k": analysis.k,
        "trials": analysis.trials,
        "participants": analysis.participants,
        "fit": analysis.fit.to_dict() if analysis.fit is not None else None,
        "note": analysis.note,
        "records": _records(analysis, base),
        "excluded": [{**e.to_dict(), "file": relative(e.file, base)} for e in analysis.excluded],
    }


def _dependent(d: DependentClass, spec: Any, base: Path) -> dict[str, Any]:
    """One class of the shared-control model: the table's rows, the comparisons with
    their whole control group (file and row of each), and the model's numbers."""
    fit = d.fit
    whole = None
    if fit is not None:
        records = [
            {
                "label": r["label"],
                "study_id": r["study_id"],
                "record_id": r["record_id"],
                "file": relative(r["file"], base),
                "row": int(r["row"]),
                "arm1_id": r["arm1_id"],
                "arm2_id": r["arm2_id"],
                "n1": float(r["n1"]),
                "n2": float(r["n2"]),
                "yi": float(r["yi"]),
                "vi": float(r["vi"]),
            }
            for _, r in fit.records.iterrows()
        ]
        whole = {
            "records": records,
            "multi_arm_trials": list(fit.multi_arm),
            "rho": fit.rho,
            "rho_pairs": fit.rho_pairs,
            "multilevel": fit.model.to_dict(),
            "robust": fit.robust.to_dict(),
        }
    return {
        "class": d.class_id,
        "label": d.label,
        "table": sensitivity_rows(d, spec.model.test),
        "split": _analysis(d.split, base),
        "shared_control": whole,
        "left_out": [{"comparison": a, "reason": b} for a, b in d.left_out],
        "note": d.note,
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
        "continuous": _analysis(c.continuous, base),
        "response": _analysis(c.response, base),
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


def _contrast(c: Contrast | None) -> dict[str, Any] | None:
    return None if c is None else c.to_dict()


def _fit(f: MetaResult | None) -> dict[str, Any] | None:
    return None if f is None else f.to_dict()


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
    return {
        "inputs": inputs,
        "versions": library_versions(),
        "spec": spec.text,
    }


def results_data(results: ReportResults) -> dict[str, Any]:
    """Every number of the report, keyed for reuse."""
    spec = results.spec
    base = spec.path.parent
    comp = results.comparison
    dose = results.dose
    data: dict[str, Any] = {
        "report": {"title": spec.title, "subtitle": spec.subtitle, "name": spec.name},
        "settings": dataclasses.asdict(spec.model),
        "classes": {c.id: _class(c, base) for c in results.classes},
        "comparison": None
        if comp is None
        else {
            "classes": list(comp.classes),
            "between": _fit(comp.between),
            "between_note": comp.between_note,
            "direct": _contrast(comp.direct),
            "direct_analysis": _analysis(comp.direct_analysis, base),
            "indirect": _contrast(comp.indirect),
            "indirect_a": _analysis(comp.indirect_a, base),
            "inconsistency": _contrast(comp.inconsistency),
            "caveats": list(comp.caveats),
        },
        "dose": None
        if dose is None
        else {
            "class": dose.class_id,
            "by_comparator": jsonable(dose.by_comparator),
            "by_comparator_note": dose.by_comparator_note,
            "within_trial_label": dose.within_trial_label,
            "within_trial": [c.to_dict() for c in dose.within_trial_contrasts],
            "regression": jsonable(dose.regression),
            "regression_note": dose.regression_note,
            "doses": jsonable(dose.doses),
            "statement": dose.statement,
        },
        "dependent": [_dependent(d, spec, base) for d in results.dependent],
        "exclusions": [{**e.to_dict(), "file": relative(e.file, base)} for e in results.excluded],
        "not_poolable": [
            {**jsonable(r), "file": relative(r.file, base)} for r in results.studies.not_poolable
        ],
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
    """The report's tables, one CSV each, named by file stem."""
    base = results.spec.path.parent
    out: dict[str, pd.DataFrame] = {}
    summary = []
    for c in results.classes:
        a = c.continuous
        summary.append(
            _fit_row(
                c.label,
                a.fit,
                {
                    "measure": a.measure,
                    "trials": a.trials,
                    "participants": a.participants,
                    "note": a.note,
                },
            )
        )
        if c.response is not None:
            r = c.response
            summary.append(
                _fit_row(
                    f"{c.label} (response)",
                    r.fit,
                    {
                        "measure": r.measure,
                        "trials": r.trials,
                        "participants": r.participants,
                        "note": r.note,
                    },
                )
            )
    out["summary"] = pd.DataFrame(summary)
    for c in results.classes:
        recs = _records(c.continuous, base)
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
    comp = results.comparison
    if comp is not None:
        rows = [
            c.to_dict() for c in (comp.direct, comp.indirect, comp.inconsistency) if c is not None
        ]
        if rows:
            out["comparison"] = pd.DataFrame(rows)
    rows = [row for d in results.dependent for row in sensitivity_rows(d, results.spec.model.test)]
    if rows:
        out["shared_control"] = pd.DataFrame(rows)
    dose = results.dose
    if dose is not None and dose.within_trial_contrasts:
        out["dose_within_trial"] = pd.DataFrame([c.to_dict() for c in dose.within_trial_contrasts])
    if dose is not None and len(dose.doses):
        out["dose_read"] = dose.doses
    out["exclusions"] = pd.DataFrame(
        [{**e.to_dict(), "file": relative(e.file, base)} for e in results.excluded],
        columns=["analysis", "file", "row", "study", "record_id", "reason"],
    )
    return out
