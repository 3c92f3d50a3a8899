"""Tests of ``metaan studies validate`` and ``metaan studies list``."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from metaan.cli import main

REPO = Path(__file__).resolve().parents[1]
STUDIES = REPO / "studies"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "studies"
BROKEN = sorted(p.name for p in FIXTURES.glob("*.csv") if p.name != "valid.csv")
LOCATED = re.compile(r"^(?P<file>[^:]+):(?P<row>\d+|-):(?P<column>[a-z0-9_]+|-): \S")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_validate_passes_on_the_study_files() -> None:
    code, out, err = run("studies", "validate", str(STUDIES))
    assert code == 0
    assert out == ""
    assert "no problems" in err


def test_validate_checks_the_studies_folder_of_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(STUDIES, tmp_path / "studies")
    monkeypatch.chdir(tmp_path)
    assert run("studies", "validate")[0] == 0


@pytest.mark.parametrize("name", BROKEN)
def test_validate_fails_on_each_broken_fixture_naming_file_row_and_column(name: str) -> None:
    path = FIXTURES / name
    code, out, err = run("studies", "validate", str(path))
    assert code == 2
    lines = out.splitlines()
    assert lines
    for line in lines:
        match = LOCATED.match(line)
        assert match is not None, line
        assert match["file"] == str(path)
    assert re.search(r"\d+ problems? found", err)


def test_validate_prints_every_problem_of_several_files_in_one_run() -> None:
    paths = [str(FIXTURES / "negative_sd.csv"), str(FIXTURES / "precomputed_effects.csv")]
    code, out, _ = run("studies", "validate", *paths)
    assert code == 2
    assert out.splitlines()[0].startswith(f"{paths[0]}:2:sd1: ")
    assert len(out.splitlines()) == 1 + 5


def test_a_negative_sd_is_printed_with_file_row_column_and_fix() -> None:
    path = FIXTURES / "negative_sd.csv"
    _, out, _ = run("studies", "validate", str(path))
    assert out == (
        f"{path}:2:sd1: Burke2002 (SCT-MD-01): sd1 is -10.06; a standard deviation must be "
        "> 0; correct it, or leave the cell blank if the source does not report it\n"
    )


def test_list_summarises_each_class_as_a_table() -> None:
    code, out, _ = run("studies", "list", str(STUDIES))
    assert code == 0
    header, *rows = out.splitlines()[:4]
    assert header.split()[:3] == ["class", "trials", "records"]
    assert [row.split()[:3] for row in rows] == [
        ["cannabinoid", "4", "10"],
        ["psilocybin", "15", "220"],
        ["ssri", "153", "877"],
    ]
    assert "scales:      bdi (34)" in out
    assert "time points: 4, 5, 6, 8, 9, 10, 12 (weeks)" in out


def test_list_writes_json() -> None:
    code, out, _ = run("studies", "list", str(STUDIES), "--format", "json")
    assert code == 0
    data = {entry["drug_class"]: entry for entry in json.loads(out)}
    assert data["ssri"]["trials"] == 153
    assert data["cannabinoid"]["not_poolable"] == 7
    assert data["psilocybin"]["outcomes"]["endpoint"] == 101
    assert data["psilocybin"]["time_points_weeks"][0] == -2.0


def test_list_refuses_invalid_files_with_exit_status_2() -> None:
    code, out, err = run("studies", "list", str(FIXTURES / "negative_sd.csv"))
    assert code == 2
    assert out == ""
    assert "negative_sd.csv:2:sd1:" in err
    assert "Traceback" not in err
