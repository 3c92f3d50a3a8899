"""``metaan bias`` from the command line: formats, warnings and bad input."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import metaan
from metaan.bias import small_study_effects
from metaan.cli import main

HEADER = "study,year,tpos,n1i,cpos,n2i\n"
ROWS = [
    "Aronson,1948,4,123,11,139",
    "Ferguson,1949,6,306,29,303",
    "Rosenthal,1960,3,231,11,220",
    "Hart,1977,62,13598,248,12867",
    "Frimodt,1973,33,5069,47,5808",
    "Stein,1953,180,1541,372,1451",
    "Vandiviere,1973,8,2545,10,629",
    "TPT Madras,1980,505,88391,499,88391",
    "Coetzee,1968,29,7499,45,7277",
    "Rosenthal2,1961,17,1716,65,1665",
    "Comstock,1974,186,50634,141,27338",
    "Comstock2,1969,5,2498,3,2341",
    "Comstock3,1976,27,16913,29,17854",
]
COUNT_FLAGS = ["--measure", "OR", "--ai", "tpos", "--n1i", "n1i", "--ci", "cpos", "--n2i", "n2i"]


def _write(tmp_path: Path, rows: list[str], name: str = "studies.csv") -> str:
    path = tmp_path / name
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def _api(path: str, method: str = "REML") -> metaan.bias.SmallStudyEffects:
    table = metaan.escalc(pd.read_csv(path), "OR", ai="tpos", n1i="n1i", ci="cpos", n2i="n2i")
    return small_study_effects(metaan.fit(table, method=method))


def test_json_output_holds_every_analysis_with_the_numbers_of_the_python_api(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, ROWS)
    code, out, err = _run("bias", path, *COUNT_FLAGS, "--method", "DL", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    report = _api(path, "DL")
    assert data["source"] == path
    assert data["egger_lm"]["stat"] == report.egger_lm.stat
    assert data["egger_rma"]["limit_estimate"] == report.egger_rma.limit_estimate
    assert data["peese_rma"]["method"] == "DL"
    assert data["rank_test"]["pval"] == report.rank.pval
    assert data["trim_and_fill"]["k0"] == report.trimfill.k0
    assert data["trim_and_fill"]["fit"]["estimate"] == report.trimfill.fit.estimate
    assert len(data["trim_and_fill"]["filled"]) == report.trimfill.k0
    assert data["fail_safe_n"]["fsnum"] == report.fsn.fsnum
    assert data["warnings"] == []


def test_the_table_view_lists_every_analysis_and_the_filled_studies(tmp_path: Path) -> None:
    path = _write(tmp_path, ROWS)
    code, out, err = _run("bias", path, *COUNT_FLAGS, "--method", "EE")
    assert code == 0, err
    report = _api(path, "EE")
    for name in report.to_frame()["analysis"]:
        assert name in out
    assert f"k0 = {report.trimfill.k0}" in out
    assert report.trimfill.k0 > 0 and "Filled 1: yi = " in out
    assert f"{report.egger_lm.limit_estimate:.4f}" in out
    assert "Warnings" not in out


def test_csv_output_is_one_row_per_analysis_with_exact_numbers(tmp_path: Path) -> None:
    path = _write(tmp_path, ROWS)
    code, out, err = _run("bias", path, *COUNT_FLAGS, "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    report = _api(path)
    assert len(rows) == 7
    assert float(rows[0]["value"]) == report.egger_lm.stat
    assert int(rows[0]["df"]) == len(ROWS) - 2
    assert rows[4]["df"] == "" and rows[4]["statistic"] == "Kendall's tau"
    assert float(rows[6]["value"]) == report.fsn.fsnum


@pytest.mark.parametrize("output_format", ["table", "json", "csv"])
def test_fewer_than_ten_studies_carry_a_warning_in_every_format(
    tmp_path: Path, output_format: str
) -> None:
    path = _write(tmp_path, ROWS[:6])
    code, out, err = _run("bias", path, *COUNT_FLAGS, "--format", output_format)
    assert code == 0, err
    if output_format == "json":
        assert any("only 6 studies" in w for w in json.loads(out)["warnings"])
    elif output_format == "csv":
        assert "metaan: warning:" in err and "only 6 studies" in err
    else:
        assert "Warnings:" in out and "only 6 studies" in out


def test_excluded_rows_are_reported(tmp_path: Path) -> None:
    rows = [*ROWS[:2], "Rosenthal,1960,3,231,,220", *ROWS[3:]]
    path = _write(tmp_path, rows)
    code, out, _ = _run("bias", path, *COUNT_FLAGS)
    assert code == 0
    assert "row 4 (Rosenthal)" in out
    code, out, err = _run("bias", path, *COUNT_FLAGS, "--format", "csv")
    assert code == 0 and "row 4 (Rosenthal) excluded" in err
    code, out, _ = _run("bias", path, *COUNT_FLAGS, "--format", "json")
    assert json.loads(out)["fit"]["excluded"][0]["row"] == 4


def test_the_output_can_go_to_a_file(tmp_path: Path) -> None:
    path = _write(tmp_path, ROWS)
    target = tmp_path / "bias.json"
    code, out, err = _run("bias", path, *COUNT_FLAGS, "--format", "json", "-o", str(target))
    assert code == 0, err
    assert out == "" and json.loads(target.read_text())["fail_safe_n"]["k"] == len(ROWS)


@pytest.mark.parametrize(
    ("rows", "flags", "message"),
    [
        (ROWS, ["--measure", "OR", "--ai", "nope", "--n1i", "n1i", "--ci", "cpos", "--n2i", "n2i"],
         "nope"),
        (ROWS[:2], COUNT_FLAGS, "at least 3 studies"),
        ([*ROWS[:3], "Hart,1977,62,-5,248,12867"], COUNT_FLAGS, "row 5 (Hart)"),
        (ROWS, [*COUNT_FLAGS, "--alpha", "1.5"], "alpha is 1.5"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_on_stderr_with_exit_status_2(
    tmp_path: Path, rows: list[str], flags: list[str], message: str
) -> None:
    path = _write(tmp_path, rows)
    code, out, err = _run("bias", path, *flags)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("metaan: error: ")
    assert message in err
    assert "Traceback" not in err


def test_a_missing_file_is_one_line_with_exit_status_2(tmp_path: Path) -> None:
    code, _, err = _run("bias", str(tmp_path / "none.csv"), *COUNT_FLAGS)
    assert code == 2 and err.count("\n") == 1 and "none.csv" in err


def test_the_table_view_is_the_summary_of_the_python_result(tmp_path: Path) -> None:
    path = _write(tmp_path, ROWS)
    code, out, err = _run("bias", path, *COUNT_FLAGS, "--method", "DL")
    assert code == 0, err
    assert out == _api(path, "DL").summary() + "\n"
