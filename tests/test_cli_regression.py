"""``metaan fit --mods`` and ``metaan fit --subgroup``: output formats and bad input."""

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
from metaan.regression import fit_regression
from metaan.subgroups import fit_subgroups

HEADER = "trial,tpos,n1i,cpos,n2i,ablat,year,alloc\n"
ROWS = [
    "Aronson,4,123,11,139,44,1948,random",
    "Ferguson,6,306,29,303,55,1949,random",
    "Rosenthal,3,231,11,220,42,1960,random",
    "Hart,62,13598,248,12867,52,1977,random",
    "Frimodt,33,5069,47,5808,13,1973,alternate",
    "Stein,180,1541,372,1451,44,1953,alternate",
    "Vandiviere,8,2545,10,629,19,1973,random",
    "TPT,505,88391,499,88391,13,1980,random",
    "Comstock1,29,7499,45,7277,27,1968,systematic",
    "Comstock2,17,1716,65,1665,42,1961,systematic",
    "Comstock3,186,50634,141,27338,18,1974,systematic",
    "Comstock4,5,2498,3,2341,33,1969,systematic",
    "Coetzee,27,16913,29,17854,33,1976,systematic",
]
FLAGS = ["--measure", "RR", "--ai", "tpos", "--n1i", "n1i", "--ci", "cpos", "--n2i", "n2i"]


def _write(tmp_path: Path, rows: list[str]) -> str:
    path = tmp_path / "bcg.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def _effects(path: str) -> pd.DataFrame:
    return metaan.escalc(pd.read_csv(path), "RR", ai="tpos", n1i="n1i", ci="cpos", n2i="n2i")


def test_mods_prints_the_meta_regression_table(tmp_path: Path) -> None:
    path = _write(tmp_path, ROWS)
    code, out, err = _run("fit", path, *FLAGS, "--mods", "ablat,year")
    assert code == 0, err
    assert "Mixed-effects meta-regression" in out
    assert "Test of moderators (coefficients 2, 3): QM(2) =" in out
    for term in ("intrcpt", "ablat", "year", "R^2"):
        assert term in out


def test_mods_json_holds_the_numbers_of_the_python_api(tmp_path: Path) -> None:
    path = _write(tmp_path, ROWS)
    code, out, err = _run(
        "fit", path, *FLAGS, "--mods", "ablat, alloc", "--test", "knha", "--format", "json"
    )
    assert code == 0, err
    data = json.loads(out)
    res = fit_regression(_effects(path), mods=["ablat", "alloc"], test="knha")
    assert data["QM"] == res.QM and data["QM_dist"] == "F"
    assert [c["term"] for c in data["coefficients"]] == [
        "intrcpt",
        "ablat",
        "alloc[random]",
        "alloc[systematic]",
    ]
    assert [c["estimate"] for c in data["coefficients"]] == res.coef.tolist()


def test_mods_csv_has_one_row_per_coefficient(tmp_path: Path) -> None:
    path = _write(tmp_path, ROWS)
    code, out, err = _run("fit", path, *FLAGS, "--mods", "ablat", "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["term"] for r in rows] == ["intrcpt", "ablat"]
    res = fit_regression(_effects(path), mods="ablat")
    assert float(rows[1]["estimate"]) == res.coef[1]
    assert rows[1]["df"] == ""


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_a_missing_moderator_value_lists_the_excluded_row(tmp_path: Path, fmt: str) -> None:
    rows = list(ROWS)
    rows[2] = "Rosenthal,3,231,11,220,,1960,random"
    path = _write(tmp_path, rows)
    code, out, err = _run("fit", path, *FLAGS, "--mods", "ablat", "--format", fmt)
    assert code == 0, err
    if fmt == "table":
        assert "row 4 (Rosenthal): moderator ablat is missing" in out
    elif fmt == "json":
        data = json.loads(out)
        assert data["k"] == 12
        assert data["excluded"] == [
            {"row": 4, "study": "Rosenthal", "reason": "moderator ablat is missing"}
        ]
    else:
        assert "row 4 (Rosenthal) excluded: moderator ablat is missing" in err


@pytest.mark.parametrize("flag", ["--mods", "--subgroup"])
def test_a_column_that_does_not_exist_is_one_line_and_exit_status_2(
    tmp_path: Path, flag: str
) -> None:
    path = _write(tmp_path, ROWS)
    code, out, err = _run("fit", path, *FLAGS, flag, "latitude")
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "bcg.csv" in lines[0] and "'latitude'" in lines[0] and "ablat" in lines[0]
    assert "Traceback" not in err


def test_mods_with_one_good_and_one_bad_name_names_the_bad_one(tmp_path: Path) -> None:
    path = _write(tmp_path, ROWS)
    code, _, err = _run("fit", path, *FLAGS, "--mods", "ablat,yaer")
    assert code == 2 and "'yaer'" in err and len(err.strip().splitlines()) == 1


def test_subgroup_prints_each_level_and_the_tests_of_differences(tmp_path: Path) -> None:
    path = _write(tmp_path, ROWS)
    code, out, err = _run("fit", path, *FLAGS, "--subgroup", "alloc")
    assert code == 0, err
    for level in ("alternate", "random", "systematic"):
        assert level in out
    assert "fixed effect (Q-between): Q(2) =" in out
    assert "mixed effects (REML): QM(2) =" in out


def test_subgroup_json_and_csv_match_the_python_api(tmp_path: Path) -> None:
    path = _write(tmp_path, ROWS)
    res = fit_subgroups(_effects(path), by="alloc", tau2_mode="pooled")
    code, out, err = _run(
        "fit", path, *FLAGS, "--subgroup", "alloc", "--tau2-mode", "pooled", "--format", "json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["tau2_mode"] == "pooled" and data["tau2_pooled"] == res.tau2_pooled
    assert data["between_fixed"]["Q"] == res.Q_between
    assert data["levels"]["random"]["estimate"] == res.fits["random"].estimate
    code, out, err = _run(
        "fit", path, *FLAGS, "--subgroup", "alloc", "--tau2-mode", "pooled", "--format", "csv"
    )
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["alloc"] for r in rows] == ["alternate", "random", "systematic"]
    assert [float(r["estimate"]) for r in rows] == [lev.fit.estimate for lev in res.levels]


def test_subgroup_and_mods_together_or_with_mantel_haenszel_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, ROWS)
    code, _, err = _run("fit", path, *FLAGS, "--subgroup", "alloc", "--mods", "ablat")
    assert code == 2 and "not both" in err
    code, _, err = _run("fit", path, *FLAGS, "--subgroup", "alloc", "--method", "MH")
    assert code == 2 and "inverse-variance" in err


def test_a_model_with_as_many_parameters_as_studies_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, ROWS[:3])
    code, _, err = _run("fit", path, *FLAGS, "--mods", "ablat,year")
    assert code == 2
    assert "larger than the number of studies" in err and len(err.strip().splitlines()) == 1


def test_without_subgroup_or_mods_fit_behaves_as_before(tmp_path: Path) -> None:
    path = _write(tmp_path, ROWS)
    code, out, err = _run("fit", path, *FLAGS, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["estimate"] == metaan.fit(_effects(path)).estimate
