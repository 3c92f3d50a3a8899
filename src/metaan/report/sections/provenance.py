"""Section: data and provenance (sources and licences, what was left out and why,
inputs, software, references, and the specification as used)."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from metaan.report.analyses import ReportResults, is_blank
from metaan.report.sections._base import Section

__all__ = ["SECTION", "cite", "data_licences"]

#: Licence codes of the study records, with their names and the texts' addresses.
LICENCES = {
    "ODC-BY-1.0": (
        "Open Data Commons Attribution License 1.0 (ODC-BY 1.0)",
        "https://opendatacommons.org/licenses/by/1-0/",
    ),
    "CC-BY-4.0": (
        "Creative Commons Attribution 4.0 International (CC BY 4.0)",
        "https://creativecommons.org/licenses/by/4.0/",
    ),
}
CODE_LICENCE = ("MIT License (the LICENSE file of metaan)", "https://opensource.org/license/mit")
_AUTHOR_YEAR = re.compile(r"^([A-Z][A-Za-z'\-]+?) ?(\d{4})([a-z]?)\b\s*(.*)$")
_NCT = re.compile(r"NCT\d{8}")


def _headings(results: ReportResults, computed: Any) -> list[tuple[str, str]]:
    return [("data", "Data and provenance")]


def data_licences(results: ReportResults) -> list[dict[str, Any]]:
    """Each source of the study records, its licence (with its address) and record count."""
    from metaan.report.serialize import relative

    frame = results.studies.frame
    base = results.spec.path.parent
    rows = []
    for (dataset, licence), part in frame.groupby(["source_dataset", "licence"], sort=True):
        dois = sorted({str(d) for d in part["source_doi"] if not is_blank(d)})
        name, url = LICENCES.get(str(licence), (str(licence), ""))
        rows.append(
            {
                "source_dataset": str(dataset),
                "source_doi": dois[0] if len(dois) == 1 else "; ".join(dois[:3]),
                "licence": str(licence),
                "licence_name": name,
                "licence_url": url,
                "records": len(part),
                "files": sorted(relative(str(f), base) for f in part["file"].unique()),
            }
        )
    return rows


def cite(study: str, rows: pd.DataFrame) -> dict[str, Any]:
    """How a trial is cited: its reference, or its first author and year, or its code."""
    reference = next((str(v) for v in rows["reference"] if not is_blank(v)), "")
    doi = next((str(v) for v in rows["doi"] if not is_blank(v)), "")
    registry = next((str(v) for v in rows["trial_registry_id"] if not is_blank(v)), "")
    ncts = sorted(set(_NCT.findall(registry + " " + study)))
    published = next((v for v in rows["published"] if not is_blank(v)), None)
    year = next((int(v) for v in rows["year"] if not is_blank(v)), None)
    if not reference:
        m = _AUTHOR_YEAR.match(study)
        if m:
            name = f"{m.group(1)} {m.group(2)}{m.group(3)}"
            extra = f" {m.group(4)}" if m.group(4) else ""
            reference = f"{name}{extra}"
        else:
            reference = f"Study {study}"
        if published == 0:
            reference += ": unpublished (sponsor's trial report; the study code as listed)"
        elif year is not None and not m:
            reference += f", published {year}"
    return {"study": study, "reference": reference, "doi": doi, "nct": ncts}


def _references(results: ReportResults) -> list[dict[str, Any]]:
    used: set[str] = set()
    for a in results.analyses():
        used.update(str(s) for s in a.records.get("study_id", []))
    for c in results.classes:
        used.update(str(s) for s in c.reported.get("study_id", []))
    frame = results.studies.frame
    by_study = {str(k): v for k, v in frame.groupby("study_id", sort=False)}
    return [cite(s, by_study[s]) for s in sorted(used) if s in by_study]


def _trial_accounting(results: ReportResults) -> list[dict[str, Any]]:
    return [
        {
            "analysis": a.id,
            "label": a.label,
            "measure": a.measure,
            "classes": ", ".join(a.classes),
            "class_trials": a.class_trials,
            "trials_in": a.trials,
            "trials_out": len(a.trials_out),
        }
        for a in results.analyses()
    ]


def _exclusion_groups(results: ReportResults) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[str]] = {}
    for e in results.excluded:
        groups.setdefault((e.analysis, e.reason), []).append(e.study)
    return [
        {
            "analysis": analysis,
            "reason": reason,
            "records": len(studies),
            "studies": list(dict.fromkeys(studies)),
        }
        for (analysis, reason), studies in groups.items()
    ]


def _run(results: ReportResults) -> dict[str, Any]:
    from metaan.report.serialize import provenance

    return {
        "licences": data_licences(results),
        "references": _references(results),
        "accounting": _trial_accounting(results),
        "provenance": provenance(results),
    }


def _context(results: ReportResults, computed: dict[str, Any]) -> dict[str, Any]:
    from metaan.report.sections.classes import grouped_out
    from metaan.report.serialize import relative

    base = results.spec.path.parent
    return {
        **computed,
        "code_licence": CODE_LICENCE,
        "exclusions": [{**e.to_dict(), "file": relative(e.file, base)} for e in results.excluded],
        "out": {a.id: grouped_out(a) for a in results.analyses()},
        "notes": [c.spec.references_note for c in results.classes if c.spec.references_note],
        "other_analyses": [
            a for a in results.analyses() if not any(a in c.analyses for c in results.classes)
        ],
        "exclusion_groups": _exclusion_groups(results),
        "attribution": results.spec.attribution,
    }


def _tables(results: ReportResults, computed: dict[str, Any]) -> dict[str, pd.DataFrame]:
    return {
        "trials_out": pd.DataFrame(
            [t.to_dict() for t in results.trials_out], columns=["analysis", "study", "reason"]
        ),
        "trial_accounting": pd.DataFrame(computed["accounting"]),
    }


def _data(results: ReportResults, computed: dict[str, Any]) -> dict[str, Any]:
    return {
        "licences": computed["licences"],
        "code_licence": {"name": CODE_LICENCE[0], "url": CODE_LICENCE[1]},
        "references": computed["references"],
        "trial_accounting": computed["accounting"],
        "trials_out": [t.to_dict() for t in results.trials_out],
    }


SECTION = Section(
    id="provenance",
    headings=_headings,
    run=_run,
    tables=_tables,
    data=_data,
    context=_context,
)
