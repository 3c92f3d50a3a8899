"""``metaan sensitivity`` from the command line: formats, ordering and bad input."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import metaan
from metaan.cli import main
from metaan.sensitivity import cumulative, influence, leave_one_out

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
]
COUNT_FLAGS = ["--measure", "OR", "--ai", "tpos", "--n1i", "n1i", "--ci", "cpos", "--n2i", "n2i"]


def _write(tmp_path: Path, rows: list[str]) -> str:
    path = tmp_path / "studies.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def _table(path: str) -> pd.DataFrame:
    return metaan.escalc(pd.read_csv(path), "OR", ai="tpos", n1i="n1i", ci="cpos", n2i="n2i")


def test_json_output_holds_every_analysis_with_the_numbers_of_the_python_api(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, ROWS)
    code, out, err = _run("sensitivity", path, *COUNT_FLAGS, "--test", "knha", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    res = metaan.fit(_table(path), test="knha")
    loo, inf, cum = leave_one_out(res), influence(res), cumulative(res)
    assert data["fit"]["estimate"] == res.estimate
    assert [s["estimate"] for s in data["leave_one_out"]["studies"]] == loo.estimate.tolist()
    assert data["leave_one_out"]["df"] == len(ROWS) - 2
    assert [s["cook_d"] for s in data["influence"]["studies"]] == inf.cook_d.tolist()
    assert [s["study"] for s in data["baujat"]["studies"]] == [r.split(",")[0] for r in ROWS]
    assert [s["tau2"] for s in data["cumulative"]["studies"]] == cum.tau2.tolist()
    assert data["cumulative"]["order_by"] is None


def test_order_sorts_the_cumulative_analysis_by_a_column(tmp_path: Path) -> None:
    path = _write(tmp_path, ROWS)
    code, out, err = _run("sensitivity", path, *COUNT_FLAGS, "--order", "year", "--format", "json")
    assert code == 0, err
    data = json.loads(out)["cumulative"]
    years = [int(r.split(",")[1]) for r in ROWS]
    names = [r.split(",")[0] for r in ROWS]
    expected = [name for _, name in sorted(zip(years, names, strict=True), key=lambda p: p[0])]
    assert [s["study"] for s in data["studies"]] == expected
    assert data["order_by"] == "year"
    assert data["studies"][-1]["estimate"] == pytest.approx(
        metaan.fit(_table(path)).estimate, rel=1e-12
    )
    code, out, _ = _run("sensitivity", path, *COUNT_FLAGS, "--order", "year")
    assert "ordered by year" in out


def test_the_table_view_shows_each_analysis_and_flags_influential_studies(tmp_path: Path) -> None:
    path = _write(tmp_path, ROWS)
    code, out, err = _run("sensitivity", path, *COUNT_FLAGS)
    assert code == 0, err
    for title in ("Leave-one-out", "Influence diagnostics", "Baujat", "Cumulative"):
        assert title in out
    inf = influence(metaan.fit(_table(path)))
    assert out.count("*") - 1 == int(inf.influential.sum())  # one "*" is in the title
    code, out, _ = _run("sensitivity", path, *COUNT_FLAGS, "--analysis", "baujat")
    assert "Baujat" in out and "Leave-one-out" not in out


def test_csv_output_is_one_long_table_with_an_analysis_column(tmp_path: Path) -> None:
    path = _write(tmp_path, ROWS)
    code, out, err = _run("sensitivity", path, *COUNT_FLAGS, "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    kinds = [r["analysis"] for r in rows]
    k = len(ROWS)
    assert kinds == ["leave_one_out"] * k + ["influence"] * k + ["baujat"] * k + ["cumulative"] * k
    loo = leave_one_out(metaan.fit(_table(path)))
    assert [float(r["estimate"]) for r in rows[:k]] == loo.estimate.tolist()
    assert rows[0]["rstudent"] == "" and rows[k]["rstudent"] != ""
    assert rows[k]["influential"] in ("true", "false")


@pytest.mark.parametrize(
    ("rows", "flags", "message"),
    [
        (ROWS, ["--order", "nope"], "column nope: no such column (it was given as order)"),
        ([*ROWS[:2], "Rosenthal,,3,231,11,220", *ROWS[3:]], ["--order", "year"],
         "row 4 (Rosenthal): column year: the sort key is missing"),
        (ROWS[:2], [], "at least 3 studies"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_on_stderr_with_exit_status_2(
    tmp_path: Path, rows: list[str], flags: list[str], message: str
) -> None:
    path = _write(tmp_path, rows)
    code, out, err = _run("sensitivity", path, *COUNT_FLAGS, *flags)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("metaan: error: ")
    assert message in err
    assert "Traceback" not in err


def test_excluded_rows_are_reported_and_left_out_of_every_analysis(tmp_path: Path) -> None:
    rows = [*ROWS[:2], "Rosenthal,1960,3,231,,220", *ROWS[3:]]
    path = _write(tmp_path, rows)
    code, out, err = _run("sensitivity", path, *COUNT_FLAGS, "--format", "csv")
    assert code == 0 and "row 4 (Rosenthal) excluded" in err
    table = list(csv.DictReader(io.StringIO(out)))
    analysed = [r for r in table if not r["excluded_row"]]
    assert all("Rosenthal" not in " ".join(r.values()) for r in analysed)
    (listed,) = [r for r in table if r["excluded_row"]]
    assert listed["excluded_row"] == "4" and listed["excluded_study"] == "Rosenthal"
    assert listed["excluded_reason"] == "ci (column cpos) is missing"
    code, out, _ = _run("sensitivity", path, *COUNT_FLAGS, "--order", "year")
    assert "row 4 (Rosenthal)" in out


def test_the_table_view_prints_the_summary_of_each_python_result(tmp_path: Path) -> None:
    path = _write(tmp_path, ROWS)
    code, out, err = _run("sensitivity", path, *COUNT_FLAGS, "--order", "year")
    assert code == 0, err
    res = metaan.fit(_table(path))
    for analysis in (
        metaan.leave_one_out(res),
        metaan.influence(res),
        metaan.baujat(res),
        metaan.cumulative(_table(path), order="year"),
    ):
        assert analysis.summary() in out
    assert (
        json.loads(
            _run("sensitivity", path, *COUNT_FLAGS, "--order", "year", "--format", "json")[1]
        )["cumulative"]["order_by"]
        == "year"
    )
