"""Building reports: the default report, reproducibility, escaping and no network."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import socket
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

import metaan
from metaan.cli import main
from metaan.report.build import build_report
from metaan.report.serialize import library_versions
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
    out = tmp_path_factory.mktemp("report") / "depression"
    build_report(DEFAULT_SPEC, out, pdf=False)
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
        "Psilocybin",
        "SSRIs",
        "Cannabinoids",
        "Comparing the classes",
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
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "url(http" not in html
    assert html.count("<svg") >= 2


def test_building_twice_gives_byte_identical_html_json_csv_and_svg(
    built: Path, tmp_path: Path
) -> None:
    again = tmp_path / "depression"
    build_report(DEFAULT_SPEC, again, pdf=False)
    first, second = _files(built), _files(again)
    assert first.keys() == second.keys()
    different = [name for name in first if first[name] != second[name]]
    assert different == []


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
    result = build_report(spec, pdf=False)
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
    loud = CliRunner().invoke(main, ["report", str(spec), "--no-pdf", "-o", str(tmp_path / "a")])
    assert loud.exit_code == 0, loud.stderr
    assert "metaan report:" in loud.stderr and loud.stdout == ""
    assert (tmp_path / "a" / "index.html").is_file()
    assert not (tmp_path / "a" / "report.pdf").exists()
    quiet = CliRunner().invoke(
        main, ["report", str(spec), "--no-pdf", "--quiet", "-o", str(tmp_path / "b")]
    )
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_multi_arm_trials_are_modelled_with_their_shared_control_beside_the_split(
    built: Path,
) -> None:
    html = (built / "index.html").read_text(encoding="utf-8")
    assert "Multi-arm trials: the shared control modelled" in html
    assert "correlated and hierarchical effects model" in html
    assert (built / "tables" / "shared_control.csv").is_file()
    data = json.loads((built / "results.json").read_text(encoding="utf-8"))
    dep = {d["class"]: d for d in data["dependent"]}
    assert set(dep) == {"psilocybin", "ssri"}
    psi = dep["psilocybin"]["shared_control"]
    assert psi["multi_arm_trials"] == ["Goodwin 2022"]
    goodwin = [r for r in psi["records"] if r["study_id"] == "Goodwin 2022"]
    assert sorted(r["arm1_id"] for r in goodwin) == ["psil 10 mg", "psil 25 mg"]
    assert {r["arm2_id"] for r in goodwin} == {"psil 1 mg"} and {r["n2"] for r in goodwin} == {79}
    assert "psil 25 mg vs psil 10 mg" in dep["psilocybin"]["left_out"][0]["reason"]
    assert dep["psilocybin"]["table"][0]["analysis"].startswith("primary")
    ssri = dep["ssri"]
    assert len(ssri["table"]) == 3 and len(ssri["shared_control"]["multi_arm_trials"]) == 26
    # The split row is the class's primary analysis; the model rows are metaan's
    # multilevel fit and CR2 test of the recorded comparisons.
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
