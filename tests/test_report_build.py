"""Building reports: the default report, reproducibility, escaping and no network."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import socket
from html import unescape
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

import metaan
from metaan.cli import main
from metaan.report.build import build_report
from metaan.report.serialize import library_versions
from metaan.studies import load_studies
from tolerance import RTOL

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = ROOT / "reports" / "depression.toml"
COMMITTED = ROOT / "reports" / "depression"


def _copy_spec(tmp_path: Path, name: str = "depression") -> Path:
    """The default spec, placed in tmp_path with its study paths made absolute."""
    text = DEFAULT_SPEC.read_text(encoding="utf-8")
    text = text.replace('"../studies/', f'"{(ROOT / "studies").as_posix()}/')
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One full build (PDF and Word included) serves every test of this module.
    out = tmp_path_factory.mktemp("report") / "depression"
    build_report(DEFAULT_SPEC, out, pdf=True)
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix in {".html", ".json", ".csv", ".svg"}
    }


def test_the_default_report_has_every_part_the_reader_needs(built: Path) -> None:
    html = (built / "index.html").read_text(encoding="utf-8")
    for heading in (
        "Summary by drug class",
        "Summary of findings and certainty of evidence (GRADE)",
        "Published results reproduced",
        "Psilocybin",
        "SSRIs",
        "Cannabinoids",
        "Comparing the classes",
        "Network meta-analysis",
        "Dose and comparator",
        "Small-study effects",
        "Methods",
        "Data and provenance",
    ):
        assert heading in html, heading
    assert "insufficient evidence to pool" in html.lower()
    assert "Carhart-Harris 2021" in html and "Bucher" in html
    assert "ODC-BY" in html and "CC BY 4.0" in html
    assert re.search(r"[0-9a-f]{64}", html), "input hashes"
    data = json.loads((built / "results.json").read_text(encoding="utf-8"))
    assert set(data["classes"]) == {"psilocybin", "ssri", "cannabinoid"}
    assert data["classes"]["cannabinoid"]["continuous"]["fit"] is None
    for name in ("summary", "exclusions", "studies_psilocybin", "leave1out_psilocybin"):
        assert (built / "tables" / f"{name}.csv").is_file(), name
    assert (built / "figures" / "forest_psilocybin.svg").is_file()
    assert (built / "figures" / "forest_psilocybin.png").is_file()


def test_every_record_behind_a_pooled_number_names_its_file_and_row(built: Path) -> None:
    data = json.loads((built / "results.json").read_text(encoding="utf-8"))
    psilocybin = data["classes"]["psilocybin"]["continuous"]
    assert psilocybin["k"] == len(psilocybin["records"]) == 12
    for record in psilocybin["records"]:
        assert record["file"] == "../studies/psilocybin.csv"
        assert record["row"] >= 2
    weights = sum(r["weight"] for r in psilocybin["records"])
    assert weights == pytest.approx(100.0)
    for excluded in data["exclusions"]:
        assert excluded["file"].startswith("../studies/") and excluded["reason"]


def test_no_output_depends_on_where_the_checkout_is(built: Path) -> None:
    # Paths are written relative to the spec, so a clone elsewhere builds the same bytes.
    for name, content in _files(built).items():
        text = content.decode("utf-8")
        assert str(ROOT) not in text, name
        assert str(built) not in text, name


def test_the_html_is_self_contained(built: Path) -> None:
    html = (built / "index.html").read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    # Links to DOIs, registries and licences are fine; nothing is loaded from outside.
    assert not re.search(r"""src\s*=\s*["']?(https?:|//)""", html)
    assert "url(http" not in html
    assert html.count("<svg") >= 2


def test_building_twice_gives_byte_identical_html_json_csv_svg_and_word(
    built: Path, tmp_path: Path
) -> None:
    again = tmp_path / "depression"
    build_report(DEFAULT_SPEC, again, pdf=False)
    first, second = _files(built), _files(again)
    assert first.keys() == second.keys()
    different = [name for name in first if first[name] != second[name]]
    assert different == []
    assert (built / "report.docx").read_bytes() == (again / "report.docx").read_bytes()


def _numbers_equal(a: Any, b: Any, path: str) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            if path == "$.provenance" and key == "versions":
                continue
            _numbers_equal(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _numbers_equal(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=RTOL, abs_tol=1e-12), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def _csv_cells(content: bytes) -> list[list[Any]]:
    rows = list(csv.reader(io.StringIO(content.decode("utf-8"))))
    return [[_number_or_text(cell) for cell in row] for row in rows]


def _number_or_text(cell: str) -> Any:
    try:
        return float(cell)
    except ValueError:
        return cell


def test_the_committed_report_equals_a_fresh_build(built: Path) -> None:
    # JSON and CSV carry every number at full precision. numpy's vectorised exp and
    # log differ in the last bit between processors (AVX-512 or not), so those files
    # are compared number by number; what is shown rounded (HTML, SVG) byte for byte.
    committed = json.loads((COMMITTED / "results.json").read_text(encoding="utf-8"))
    fresh = json.loads((built / "results.json").read_text(encoding="utf-8"))
    _numbers_equal(committed, fresh, "$")
    fresh_files = _files(built)
    assert sorted(_files(COMMITTED)) == sorted(fresh_files)
    for name, content in fresh_files.items():
        if name.endswith(".csv"):
            old = _csv_cells((COMMITTED / name).read_bytes())
            _numbers_equal(old, _csv_cells(content), name)
    if committed["provenance"]["versions"] == library_versions():
        for name, content in fresh_files.items():
            if name.endswith((".html", ".svg")):
                assert (COMMITTED / name).read_bytes() == content, name


def _hostile_studies(tmp_path: Path) -> Path:
    source = (ROOT / "studies" / "psilocybin.csv").read_text(encoding="utf-8")
    target = tmp_path / "hostile.csv"
    target.write_text(source.replace("Back 2024", "<script>alert(1)</script>"), encoding="utf-8")
    return target


HOSTILE_SPEC = """
[report]
title = "Escaping <b>check</b>"
output = "out"

[data]
files = ["hostile.csv"]

[[class]]
id = "psilocybin"
label = "Psilocybin"
[class.continuous.where]
drug_class = "psilocybin"
primary_outcome = 1
primary_timepoint = 1
outcome_type = "endpoint"
[class.continuous.exclude]
post_crossover = 1
comparator_kind = "active_drug"
arm1_id = "psil 10 mg"
"""


def test_text_from_a_study_file_is_escaped_in_the_html(tmp_path: Path) -> None:
    _hostile_studies(tmp_path)
    spec = tmp_path / "hostile.toml"
    spec.write_text(HOSTILE_SPEC, encoding="utf-8")
    result = build_report(spec, pdf=False, docx=False)
    html = (result.output / "index.html").read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>check</b>" not in html


def test_the_pdf_is_rendered_without_touching_the_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the report build opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    _hostile_studies(tmp_path)
    spec = tmp_path / "hostile.toml"
    spec.write_text(HOSTILE_SPEC, encoding="utf-8")
    result = build_report(spec, pdf=True)
    pdf = (result.output / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF")


def test_metaan_report_prints_progress_on_stderr_and_quiet_silences_it(tmp_path: Path) -> None:
    _hostile_studies(tmp_path)
    spec = tmp_path / "hostile.toml"
    spec.write_text(HOSTILE_SPEC, encoding="utf-8")
    loud = CliRunner().invoke(
        main, ["report", str(spec), "--no-pdf", "--no-docx", "-o", str(tmp_path / "a")]
    )
    assert loud.exit_code == 0, loud.stderr
    assert "metaan report:" in loud.stderr and loud.stdout == ""
    assert (tmp_path / "a" / "index.html").is_file()
    assert not (tmp_path / "a" / "report.pdf").exists()
    quiet = CliRunner().invoke(
        main, ["report", str(spec), "--no-pdf", "--no-docx", "--quiet", "-o", str(tmp_path / "b")]
    )
    assert quiet.exit_code == 0 and quiet.stderr == ""


def _json(built: Path) -> dict[str, Any]:
    return json.loads((built / "results.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _analyses(data: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for c in data["classes"].values():
        out += [a for a in [c["continuous"], *c["response"]] if a is not None]
    comp = data["sections"]["comparison"]
    out += [a for a in (comp["direct_analysis"], comp["indirect_a"]) if a is not None]
    return out


def test_every_trial_of_a_class_is_in_each_analysis_or_listed_with_its_reason(
    built: Path,
) -> None:
    data = _json(built)
    frame = load_studies(ROOT / "studies").frame
    trials = {c: set(g["study_id"]) for c, g in frame.groupby("drug_class")}
    analyses = _analyses(data)
    assert len(analyses) >= 9
    for a in analyses:
        (cls,) = a["classes"]
        used = {r["study_id"] for r in a["records"]}
        out = [t["study"] for t in a["trials_out"]]
        assert all(t["reason"] for t in a["trials_out"]), a["id"]
        assert len(out) == len(set(out)) and not used & set(out), a["id"]
        assert len(used) + len(out) == len(trials[cls]) == a["class_trials"], a["id"]
        assert used | set(out) == trials[cls], a["id"]
    ssri = data["classes"]["ssri"]["continuous"]
    missing = {t["study"] for t in ssri["trials_out"]}
    for study in ("Brown1986", "Frank2004", "NCT00822744(EudraCT Number2008-001718-26)",
                  "SER 101 (FDA)", "SER 310 (FDA)", "Walczak1996"):  # fmt: skip
        assert study in missing
    assert len(missing) == 24


def test_the_published_psilocybin_and_griselda_figures_are_reproduced_in_the_report(
    built: Path,
) -> None:
    data = _json(built)
    checks = data["sections"]["reproduction"]
    assert checks and all(c["reproduced"] for c in checks)
    by = {(c["analysis"], c["quantity"]): c for c in checks}
    assert by[("psilocybin/continuous", "estimate")]["published"] == -0.9031
    assert by[("ssri/response/OR", "estimate")]["published"] == 0.45178
    psilocybin = data["classes"]["psilocybin"]["continuous"]["fit"]
    assert (round(psilocybin["estimate"], 4), round(psilocybin["ci_lb"], 4)) == (-0.9031, -1.2561)
    html = (built / "index.html").read_text(encoding="utf-8")
    for text in ("-0.9031", "-1.2561", "-0.5501", "0.45178", "Difference"):
        assert text in html, text


def test_ssri_response_is_an_odds_ratio_over_112_trials_with_the_risk_ratio_beside_it(
    built: Path,
) -> None:
    response = _json(built)["classes"]["ssri"]["response"]
    assert [a["measure"] for a in response] == ["OR", "RR"]
    assert [a["trials"] for a in response] == [112, 112]
    assert response[0]["fit"]["estimate"] == pytest.approx(0.45178, abs=5e-6)


def test_the_grade_table_rates_each_class_and_outcome_with_its_reasons(built: Path) -> None:
    rows = _json(built)["sections"]["grade"]
    rated = {(r["class"], r["analysis"]): r["rating"] for r in rows}
    psilocybin = rated[("psilocybin", "psilocybin_smd")]
    names = [d["name"] for d in psilocybin["domains"]]
    assert names == ["risk of bias", "inconsistency", "indirectness", "imprecision",
                     "publication bias"]  # fmt: skip
    assert {d["basis"] for d in psilocybin["domains"]} <= {"computed", "declared", "not assessed"}
    assert next(d for d in psilocybin["domains"] if d["name"] == "indirectness")["basis"] == (
        "declared"
    )
    assert all(d["reason"] for d in psilocybin["domains"])
    odds = rated[("ssri", "ssri_response_or")]
    assert odds["absolute"]["control_per_1000"] > 0
    assert rated[("cannabinoid", "cannabinoid_smd")] is None
    table = (built / "tables" / "grade.csv").read_text(encoding="utf-8")
    assert "certainty" in table and "risk of bias (basis)" in table
    html = (built / "index.html").read_text(encoding="utf-8")
    assert "Summary of findings" in html and "per 1,000" in html


def test_the_data_licences_are_in_the_report_results_json_and_beside_the_tables(
    built: Path,
) -> None:
    html = (built / "index.html").read_text(encoding="utf-8")
    for url in ("https://opendatacommons.org/licenses/by/1-0/",
                "https://creativecommons.org/licenses/by/4.0/"):  # fmt: skip
        assert f'href="{url}"' in html
        assert url in (built / "tables" / "LICENSE.md").read_text(encoding="utf-8")
        assert url in {d["licence_url"] for d in _json(built)["licences"]["data"]}
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")


def test_trials_are_cited_by_first_author_and_year_with_registry_links(built: Path) -> None:
    refs = {r["study"]: r for r in _json(built)["sections"]["provenance"]["references"]}
    assert refs["Amin1984"]["reference"] == "Amin 1984"
    assert "unpublished" in refs["003-048"]["reference"]
    assert refs["NCT01020799"]["nct"] == ["NCT01020799"]
    assert "Lancet Psychiatry 2019" in refs["Black 2019 (unnamed RCT)"]["reference"]
    html = (built / "index.html").read_text(encoding="utf-8")
    assert 'href="https://clinicaltrials.gov/study/NCT01020799"' in html
    assert "appendix of Cipriani et al., Lancet 2018" in html
    assert not re.search(r"<li>[^<]*\d{4}:\s*</li>", html), "a bare code in the references"


def test_the_dose_analysis_reads_the_corrected_doses(built: Path) -> None:
    doses = _json(built)["sections"]["dose"]["doses"]
    by_study = {d["study"]: d for d in doses}
    assert by_study["Griffiths 2016"]["dose_as_published"] == "22 mg/kg"
    assert by_study["Griffiths 2016"]["dose_mg"] == 22.0
    assert by_study["Davis 2021"]["dose_mg"] == 25.0
    text = _json(built)["sections"]["dose"]["very_low_doses"]
    assert "1 mg/70 kg in Griffiths 2016" in text and "mg/kg" not in text
    assert "Luquiens 2025" in text


def test_the_cannabinoid_section_maps_the_trials_awaiting_data(built: Path) -> None:
    awaiting = (ROOT / "studies" / "awaiting" / "cannabinoid.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(awaiting)))
    html = (built / "index.html").read_text(encoding="utf-8")
    assert "Evidence map" in html and len(rows) == 12
    for row in rows:
        assert f'href="https://doi.org/{row["doi"]}"' in html
    assert "ask the authors" in html.lower()


def test_a_forest_longer_than_a_page_continues_with_its_header_repeated(built: Path) -> None:
    pages = sorted((built / "figures").glob("forest_ssri_*.svg"))
    assert len(pages) >= 2
    labels: list[str] = []
    for i, page in enumerate(pages):
        svg = page.read_text(encoding="utf-8")
        for header in ("Study", "N drug", "Weight", "Standardised mean difference"):
            assert header in svg, (page.name, header)
        assert ("(continued)" in svg) == (i > 0)
        labels += re.findall(r'id="label-(\d+)"', svg)
    assert len(labels) == len(set(labels)) == _json(built)["classes"]["ssri"]["continuous"]["k"]


def _pdf_text_sizes(path: Path) -> list[tuple[float, int, str]]:
    """Every text run of a PDF with its size at print size (font size x text and user scale)."""
    from pypdf import PdfReader

    found: list[tuple[float, int, str]] = []
    for number, page in enumerate(PdfReader(path).pages, start=1):

        def visit(text: str, cm: Any, tm: Any, font: Any, size: float, n: int = number) -> None:
            if not text.strip():
                return
            a = tm[0] * cm[0] + tm[1] * cm[2]
            b = tm[0] * cm[1] + tm[1] * cm[3]
            c = tm[2] * cm[0] + tm[3] * cm[2]
            d = tm[2] * cm[1] + tm[3] * cm[3]
            found.append((size * math.sqrt(abs(a * d - b * c)), n, text.strip()))

        page.extract_text(visitor_text=visit)
    return found


def test_no_text_in_the_pdf_is_smaller_than_6_pt_at_print_size(built: Path) -> None:
    sizes = _pdf_text_sizes(built / "report.pdf")
    assert len(sizes) > 1000  # the figures' text is text, and is checked too
    small = [s for s in sizes if s[0] < 6.0 - 1e-6]
    assert small == [], small[:5]


def test_the_word_report_has_the_sections_tables_and_figures(built: Path) -> None:
    from docx import Document

    document = Document(str(built / "report.docx"))
    headings = [
        p.text for p in document.paragraphs if p.style.name.startswith(("Heading", "Title"))
    ]
    html = (built / "index.html").read_text(encoding="utf-8")
    in_html = [
        re.sub(r"<[^>]+>", "", unescape(h))
        for h in re.findall(r"<h[1-4][^>]*>(.*?)</h[1-4]>", html)
    ]
    assert headings == in_html
    assert len(document.tables) == html.count("<table")
    pictures = len(document.inline_shapes)
    assert pictures == len(list((built / "figures").glob("*.png")))


def test_no_pdf_removes_a_stale_pdf_and_says_so(tmp_path: Path) -> None:
    _hostile_studies(tmp_path)
    spec = tmp_path / "hostile.toml"
    spec.write_text(HOSTILE_SPEC, encoding="utf-8")
    out = tmp_path / "out"
    # The command line renders the PDF in a process of its own, beside the rest.
    first = CliRunner().invoke(main, ["report", str(spec), "--no-docx", "--quiet", "-o", str(out)])
    assert first.exit_code == 0, first.stderr
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF")
    result = CliRunner().invoke(
        main, ["report", str(spec), "--no-pdf", "--no-docx", "-o", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    assert not (out / "report.pdf").exists()
    assert "removed the earlier report.pdf" in result.stderr


def test_the_build_starts_no_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing
    import os
    import subprocess

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the report build started a process")

    monkeypatch.setattr(os, "fork", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(multiprocessing.Process, "start", refuse)
    _hostile_studies(tmp_path)
    spec = tmp_path / "hostile.toml"
    spec.write_text(HOSTILE_SPEC, encoding="utf-8")
    build_report(spec, pdf=False)


def test_multi_arm_trials_are_modelled_with_their_shared_control_beside_the_split(
    built: Path,
) -> None:
    html = (built / "index.html").read_text(encoding="utf-8")
    assert "Multi-arm trials: the shared control modelled" in html
    assert "correlated and hierarchical effects model" in html
    assert (built / "tables" / "shared_control.csv").is_file()
    data = json.loads((built / "results.json").read_text(encoding="utf-8"))
    dep = {d["class"]: d for d in data["sections"]["dependent"]}
    assert set(dep) == {"psilocybin", "ssri"}
    psi = dep["psilocybin"]["shared_control"]
    assert psi["multi_arm_trials"] == ["Goodwin 2022"]
    goodwin = [r for r in psi["records"] if r["study_id"] == "Goodwin 2022"]
    assert sorted(r["arm1_id"] for r in goodwin) == ["psil 10 mg", "psil 25 mg"]
    assert {r["arm2_id"] for r in goodwin} == {"psil 1 mg"} and {r["n2"] for r in goodwin} == {79}
    assert "psil 25 mg vs psil 10 mg" in dep["psilocybin"]["left_out"][0]["reason"]
    assert dep["psilocybin"]["table"][0]["analysis"] == "the class's primary analysis"
    ssri = dep["ssri"]
    assert len(ssri["table"]) == 3 and len(ssri["shared_control"]["multi_arm_trials"]) == 26
    # The split row is the class's primary analysis; the model rows are metaan's
    # multilevel fit and CR2 test of the comparisons recorded in results.json.
    primary = data["classes"]["ssri"]["continuous"]["fit"]
    assert ssri["table"][0]["estimate"] == pytest.approx(primary["estimate"], rel=1e-12)
    for d in dep.values():
        recs = pd.DataFrame(d["shared_control"]["records"])
        V = metaan.vcalc(recs, cluster="study_id", grp1="arm1_id", grp2="arm2_id", w1="n1", w2="n2")
        fit = metaan.fit_multilevel(
            recs.assign(c=range(len(recs))), V=V, levels=["study_id", "c"], test="t"
        )
        robust = fit.robust(cluster="study_id", kind="CR2")
        model_row, robust_row = d["table"][-2:]
        assert model_row["estimate"] == pytest.approx(float(fit.coef[0]), rel=1e-10)
        assert model_row["ci_lb"] == pytest.approx(float(fit.ci_lb[0]), rel=1e-10)
        assert robust_row["se"] == pytest.approx(float(robust.se[0]), rel=1e-10)
        assert robust_row["df"] == pytest.approx(float(robust.df[0]), rel=1e-10)
