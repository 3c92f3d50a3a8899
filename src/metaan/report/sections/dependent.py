"""Section: multi-arm trials with their shared control modelled rather than split.

A sensitivity analysis per class (:mod:`metaan.report.dependent`): the split-control
analysis beside a multilevel model of trials and comparisons with the covariance
of comparisons that share a control group, and its CR2 cluster-robust test.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from metaan.report.analyses import ReportResults
from metaan.report.dependent import DependentResults, dependent_results, sensitivity_rows
from metaan.report.sections._base import Section
from metaan.report.serialize import relative


def _headings(results: ReportResults, computed: DependentResults) -> list[tuple[str, str]]:
    return [("shared-control", "Multi-arm trials: the shared control modelled")]


def _run(results: ReportResults) -> DependentResults | None:
    found = dependent_results(results.studies.frame, results.spec, results.classes)
    return found if found is not None and found.classes else None


def _context(results: ReportResults, computed: DependentResults) -> dict[str, Any]:
    test = results.spec.model.test
    return {"classes": [{"d": d, "rows": sensitivity_rows(d, test)} for d in computed.classes]}


def _tables(results: ReportResults, computed: DependentResults) -> dict[str, pd.DataFrame]:
    test = results.spec.model.test
    return {
        "shared_control": pd.DataFrame(
            [row for d in computed.classes for row in sensitivity_rows(d, test)]
        )
    }


def _data(results: ReportResults, computed: DependentResults) -> list[dict[str, Any]]:
    """Per class: the table's rows, the comparisons with their whole control group
    (file and row of each), and the model's and the robust test's numbers."""
    base = results.spec.path.parent
    out = []
    for d in computed.classes:
        fit = d.fit
        model = None
        if fit is not None:
            cols = ["label", "study_id", "record_id", "file", "row", "arm1_id", "arm2_id",
                    "n1", "n2", "yi", "vi"]  # fmt: skip
            records = fit.records[cols].to_dict(orient="records")
            for r in records:
                r["file"] = relative(r["file"], base)
            model = {
                "records": records,
                "multi_arm_trials": list(fit.multi_arm),
                "rho": fit.rho,
                "rho_pairs": fit.rho_pairs,
                "multilevel": fit.model.to_dict(),
                "robust": fit.robust.to_dict(),
            }
        out.append(
            {
                "class": d.class_id,
                "label": d.label,
                "table": sensitivity_rows(d, results.spec.model.test),
                "split_fit": d.split.fit.to_dict() if d.split.fit is not None else None,
                "shared_control": model,
                "left_out": [{"comparison": a, "reason": b} for a, b in d.left_out],
                "note": d.note,
            }
        )
    return out


SECTION = Section(
    id="dependent",
    headings=_headings,
    run=_run,
    tables=_tables,
    data=_data,
    context=_context,
)
