"""The spec controls the report: a second shipped spec, and a mean-difference report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from metaan.report.build import build_report

ROOT = Path(__file__).resolve().parent.parent
STUDIES = (ROOT / "studies").as_posix()


def _texts(folder: Path) -> str:
    """Everything a reader sees: the page and every figure, without the spec's own text."""
    html = (folder / "index.html").read_text(encoding="utf-8")
    html = re.sub(r"<pre>.*?</pre>", "", html, flags=re.S)
    figures = [p.read_text(encoding="utf-8") for p in sorted((folder / "figures").glob("*.svg"))]
    return "\n".join([html, *figures])


@pytest.fixture(scope="module")
def ssri_response(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ssri") / "ssri_response"
    build_report(ROOT / "reports" / "ssri_response.toml", out, pdf=False, docx=False)
    return out


def test_the_ssri_response_report_says_nothing_of_hedges_g_or_psilocybin_doses(
    ssri_response: Path,
) -> None:
    text = _texts(ssri_response)
    for absent in ("Hedges", "psilocybin", "Psilocybin", "per mg", "Standardised", "g = "):
        assert absent not in text, absent
    assert "Odds ratio (log scale)" in text and "OR 1.57" in text
    data = json.loads((ssri_response / "results.json").read_text(encoding="utf-8"))
    (odds, risk) = data["classes"]["ssri"]["response"]
    assert (odds["measure"], risk["measure"], odds["trials"]) == ("OR", "RR", 112)
    assert all(c["reproduced"] for c in data["sections"]["reproduction"])


MD_SPEC = f"""
[report]
title = "SSRIs on the HAM-D-17"
output = "md"

[data]
files = ["{STUDIES}/ssri.csv"]

[model]
measure = "MD"
test = "knha"

[outcome]
continuous = "HAM-D-17 scores"
unit = "HAM-D-17 points"

[[class]]
id = "ssri"
label = "SSRIs"
[class.continuous]
where = {{ drug_class = "ssri", outcome_type = "endpoint_or_change", scale = "ham-d-17" }}
"""


def test_a_mean_difference_report_labels_its_axes_and_words_in_its_unit(tmp_path: Path) -> None:
    spec = tmp_path / "md.toml"
    spec.write_text(MD_SPEC, encoding="utf-8")
    result = build_report(spec, pdf=False, docx=False)
    text = _texts(result.output)
    assert "Hedges" not in text and "Standardised" not in text and "standardised" not in text
    assert "Mean difference (HAM-D-17 points)" in text
    html = (result.output / "index.html").read_text(encoding="utf-8")
    assert "HAM-D-17 scores" in html
    # Cohen's size words belong to standardised differences: none for points.
    for word in ("a small pooled", "a moderate pooled", "a large pooled", "negligible"):
        assert word not in html
