"""``metaan effects`` end to end, and the CSV reader every command shares."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from metaan.cli import main
from metaan.errors import InputError
from metaan.io import read_table, spreadsheet_rows
from tolerance import assert_close

REFERENCE = Path(__file__).resolve().parent / "reference" / "metafor"

COUNTS_CSV = """\
study,tpos,n1,cpos,n2
Aronson 1948,4,123,11,139
Ferguson 1949,6,306,29,303
Nil 1950,0,50,0,60
Gap 1951,3,53,,60
"""
COUNTS_FLAGS = ["--measure", "OR", "--ai", "tpos", "--n1i", "n1", "--ci", "cpos", "--n2i", "n2"]

MEANS_CSV = """\
author,m1,s1,n1,m2,s2,n2
Ames,10,3,20,8,4,25
Bode,5.5,2,35,6,2.5,30
"""
MEANS_FLAGS = [
    "--measure",
    "SMD",
    "--m1i",
    "m1",
    "--sd1i",
    "s1",
    "--n1i",
    "n1",
    "--m2i",
    "m2",
    "--sd2i",
    "s2",
    "--n2i",
    "n2",
]


def write(tmp_path: Path, text: str, name: str = "studies.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["effects", *args])


def assert_user_error(result: Result, *parts: str) -> None:
    """Exit status 2, one line on stderr naming every part, no traceback, no output."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("metaan: error: ")
    for part in parts:
        assert part in lines[0], (part, lines[0])
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    assert result.exception is None or isinstance(result.exception, SystemExit)


# ----------------------------------------------------------------------------- formats


def test_the_default_table_lists_yi_vi_and_the_excluded_rows_beneath(tmp_path: Path) -> None:
    result = run(write(tmp_path, COUNTS_CSV), *COUNTS_FLAGS, "--drop00")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    header = text.splitlines()[0].split()
    assert header == ["study", "tpos", "n1", "cpos", "n2", "yi", "vi"]
    assert "yi: log odds ratio (OR); vi: its sampling variance" in text
    assert "Excluded: 2 of 4 studies" in text
    assert "  row 4 (Nil 1950): double-zero study (no events in either arm) dropped" in text
    assert "  row 5 (Gap 1951): ci (column cpos) is missing" in text


def test_csv_output_carries_full_precision(tmp_path: Path) -> None:
    result = run(write(tmp_path, COUNTS_CSV), *COUNTS_FLAGS, "--format", "csv")
    assert result.exit_code == 0, result.stderr
    table = pd.read_csv(io.StringIO(result.stdout))
    expected = ["study", "tpos", "n1", "cpos", "n2", "yi", "vi", "exclusion_reason", "measure"]
    assert list(table.columns) == expected
    assert table["yi"].iloc[0] == -0.9386941408703922  # float64 repr survives the round trip
    assert table["cpos"].iloc[0] == 11 and "11.0" not in result.stdout
    assert table["exclusion_reason"].iloc[3] == "ci (column cpos) is missing"


def test_json_output_is_stable_with_nulls_and_an_excluded_list(tmp_path: Path) -> None:
    path = write(tmp_path, COUNTS_CSV)
    first = run(path, *COUNTS_FLAGS, "--format", "json")
    second = run(path, *COUNTS_FLAGS, "--format", "json")
    assert first.exit_code == 0, first.stderr
    assert first.stdout == second.stdout
    document = json.loads(first.stdout)
    assert document["measure"] == "OR"
    assert document["columns"][-4:] == ["yi", "vi", "exclusion_reason", "measure"]
    assert [row["study"] for row in document["rows"]] == [
        "Aronson 1948",
        "Ferguson 1949",
        "Nil 1950",
        "Gap 1951",
    ]
    gap = document["rows"][3]
    assert gap["cpos"] is None and gap["yi"] is None and gap["vi"] is None
    assert document["rows"][0]["yi"] == -0.9386941408703922
    assert document["excluded"] == [
        {"row": 5, "study": "Gap 1951", "reason": "ci (column cpos) is missing"}
    ]
    assert "NaN" not in first.stdout


def test_output_goes_to_a_file_with_o(tmp_path: Path) -> None:
    target = tmp_path / "effects.csv"
    result = run(write(tmp_path, MEANS_CSV), *MEANS_FLAGS, "--format", "csv", "-o", str(target))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert pd.read_csv(target)["yi"].notna().all()


def test_tidy_aliases_mean_the_same_as_metafor_names(tmp_path: Path) -> None:
    path = write(tmp_path, MEANS_CSV)
    aliases = [
        "--measure",
        "smd",
        "--mean1",
        "m1",
        "--sd1",
        "s1",
        "--n1",
        "n1",
        "--mean2",
        "m2",
        "--sd2",
        "s2",
        "--total2",
        "n2",
    ]
    assert run(path, *aliases).stdout == run(path, *MEANS_FLAGS).stdout


def test_columns_named_as_metafor_names_them_need_no_flag(tmp_path: Path) -> None:
    text = "study,ai,n1i,ci,n2i\nA,4,123,11,139\nB,6,306,29,303\n"
    path = write(tmp_path, text)
    flagged = run(path, "--measure", "RR", "--ai", "ai", "--n1i", "n1i", "--ci", "ci")
    assert flagged.exit_code == 0, flagged.stderr
    assert run(path, "--measure", "RR").stdout == flagged.stdout


def test_a_table_of_yi_and_vi_needs_no_measure(tmp_path: Path) -> None:
    result = run(write(tmp_path, "study,yi,vi\nA,0.1,0.02\nB,-0.3,0.05\n"), "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["measure"] == "GEN"
    assert [row["vi"] for row in document["rows"]] == [0.02, 0.05]


@pytest.mark.parametrize("case", ["bcg_RR", "egger2001_OR", "normand_SMD"])
def test_the_command_reproduces_metafor_from_a_csv(tmp_path: Path, case: str) -> None:
    document = json.loads((REFERENCE / f"{case}.json").read_text(encoding="utf-8"))
    effect = document["effect"]
    data = pd.DataFrame(document["data"])
    expected = data[["yi", "vi"]].copy()
    path = tmp_path / f"{case}.csv"
    data.drop(columns=["yi", "vi"]).to_csv(path, index=False)
    names = {key: effect[key] for key in ("ai", "n1i", "ci", "n2i") if key in effect}
    names.update({name: name for name in effect.get("columns", [])})
    flags = [part for key, column in names.items() for part in (f"--{key}", column)]
    result = run(str(path), "--measure", effect["measure"], *flags, "--format", "csv")
    assert result.exit_code == 0, result.stderr
    table = pd.read_csv(io.StringIO(result.stdout))
    assert_close(table["yi"], expected["yi"], f"{case} yi via the CLI")
    assert_close(table["vi"], expected["vi"], f"{case} vi via the CLI")


def test_published_odds_ratios_with_intervals_reproduce_metafor(tmp_path: Path) -> None:
    document = json.loads((REFERENCE / "hackshaw_OR.json").read_text(encoding="utf-8"))
    data = pd.DataFrame(document["data"])
    path = tmp_path / "hackshaw.csv"
    data.drop(columns=["yi", "vi"]).to_csv(path, index=False)
    result = run(
        str(path),
        *("--measure", "OR", "--yi", "or", "--ci-lb", "or.lb", "--ci-ub", "or.ub"),
        *("--format", "csv"),
    )
    assert result.exit_code == 0, result.stderr
    table = pd.read_csv(io.StringIO(result.stdout))
    assert_close(table["yi"], data["yi"], "hackshaw yi via the CLI")
    assert_close(table["vi"], data["vi"], "hackshaw vi via the CLI")


# ----------------------------------------------------------------------------- bad input


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.csv")
    assert_user_error(run(missing, *COUNTS_FLAGS), missing, "no such file")


def test_an_empty_file_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    assert_user_error(run(path, *COUNTS_FLAGS), path, "empty")


def test_a_header_without_rows_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "study,tpos,n1,cpos,n2\n")
    assert_user_error(run(path, *COUNTS_FLAGS), path, "no data rows")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('study,tpos,n1,cpos,n2\n"Aronson,4,123,11,139\n', "row 2"),
        ("study,tpos,n1,cpos,n2\nAronson,4,123,11,139,7\n", "row 2"),
        ("study,tpos,n1,cpos,n2\nA,4,123,11,139\n\nB,4,123\n", "row 4"),
    ],
)
def test_unparseable_csv_is_one_line_with_its_row(tmp_path: Path, text: str, where: str) -> None:
    path = write(tmp_path, text)
    assert_user_error(run(path, *COUNTS_FLAGS), path, where)


def test_a_file_that_is_not_text_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    path.write_bytes(b"PK\x03\x04\x14\x00\x06\x00\xff\xfe\xfa")
    assert_user_error(run(str(path), *COUNTS_FLAGS), str(path), "UTF-8")


def test_a_flag_naming_a_column_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, COUNTS_CSV)
    flags = [*COUNTS_FLAGS[:-1], "n_control"]
    assert_user_error(run(path, *flags), path, "column n_control", "no such column", "n2i")


@pytest.mark.parametrize(
    ("csv_text", "flags", "parts"),
    [
        (
            COUNTS_CSV.replace("Ferguson 1949,6,306", "Ferguson 1949,six,306"),
            COUNTS_FLAGS,
            ("row 3 (Ferguson 1949)", "column tpos", "'six'", "not a number"),
        ),
        (
            MEANS_CSV.replace("Bode,5.5,2,", "Bode,5.5,0,"),
            MEANS_FLAGS,
            ("row 3 (Bode)", "column s1", "sd1i is 0", "standard deviation must be > 0"),
        ),
        (
            MEANS_CSV.replace("Ames,10,3,20,8,4,25", "Ames,10,3,20,8,-4,25"),
            MEANS_FLAGS,
            ("row 2 (Ames)", "column s2", "sd2i is -4"),
        ),
        (
            MEANS_CSV.replace(",35,", ",0,"),
            MEANS_FLAGS,
            ("row 3 (Bode)", "column n1", "n1i is 0", "at least 1"),
        ),
        (
            COUNTS_CSV.replace("Aronson 1948,4,123", "Aronson 1948,124,123"),
            COUNTS_FLAGS,
            ("row 2 (Aronson 1948)", "column tpos", "ai is 124 but n1i is 123"),
        ),
        (
            COUNTS_CSV.replace("Ferguson 1949,6,306,29", "Ferguson 1949,6,306,-2"),
            COUNTS_FLAGS,
            ("row 3 (Ferguson 1949)", "column cpos", "ci is -2", "negative"),
        ),
        (
            "study,r,n\nA,0.3,40\nB,1.4,50\n",
            ["--measure", "ZCOR", "--ri", "r", "--ni", "n"],
            ("row 3 (B)", "column r", "ri is 1.4", "between -1 and 1"),
        ),
    ],
)
def test_a_bad_cell_is_one_line_naming_file_row_and_column(
    tmp_path: Path, csv_text: str, flags: list[str], parts: tuple[str, ...]
) -> None:
    path = write(tmp_path, csv_text)
    assert_user_error(run(path, *flags), path, *parts)


def test_a_missing_value_is_not_an_error_but_an_exclusion(tmp_path: Path) -> None:
    result = run(write(tmp_path, MEANS_CSV.replace("Bode,5.5,2,35", "Bode,5.5,,35")), *MEANS_FLAGS)
    assert result.exit_code == 0, result.stderr
    assert "row 3 (Bode): sd1i (column s1) is missing" in result.stdout


def test_no_measure_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, COUNTS_CSV)
    assert_user_error(run(path, "--ai", "tpos"), path, "no effect measure", "--measure")


def test_a_measure_without_its_columns_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, COUNTS_CSV)
    assert_user_error(run(path, "--measure", "SMD"), path, "needs a column for m1i", "--m1i")


def test_an_unknown_measure_is_a_usage_error(tmp_path: Path) -> None:
    result = run(write(tmp_path, COUNTS_CSV), "--measure", "HR")
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr


def test_an_unwritable_output_is_one_line(tmp_path: Path) -> None:
    target = str(tmp_path / "missing-dir" / "out.csv")
    result = run(write(tmp_path, MEANS_CSV), *MEANS_FLAGS, "-o", target)
    assert_user_error(result, target, "cannot write")


# ----------------------------------------------------------------------------- read_table


def test_read_table_numbers_rows_as_a_spreadsheet_and_skips_blank_rows(tmp_path: Path) -> None:
    text = "\ufeffstudy, n ,x\r\nA,1,2.5\r\n\r\nB,3,NA\r\n,,\r\nC,4,n/r\r\n"
    table = read_table(write(tmp_path, text))
    assert list(table.columns) == ["study", "n", "x"]
    assert list(spreadsheet_rows(table)) == [2, 4, 6]
    assert table["n"].dtype == np.int64
    assert table["x"].iloc[0] == "2.5" and pd.isna(table["x"].iloc[1])
    assert table["x"].iloc[2] == "n/r"


def test_read_table_reads_numbers_with_blanks_as_floats(tmp_path: Path) -> None:
    table = read_table(write(tmp_path, "a,b\n1,2\n,3\n4,.\n"))
    assert table["a"].dtype == np.float64 and np.isnan(table["a"].iloc[1])
    assert np.isnan(table["b"].iloc[2])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,a\n1,2\n", "appears twice"),
        ("a,,c\n1,2,3\n", "no name"),
        ("\na,b\n1,2\n", "must be the header"),
    ],
)
def test_read_table_refuses_a_bad_header(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        read_table(write(tmp_path, text))


def test_read_table_drops_empty_unnamed_columns(tmp_path: Path) -> None:
    assert list(read_table(write(tmp_path, "a,b,,\n1,2,,\n")).columns) == ["a", "b"]


def test_read_table_refuses_a_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="directory"):
        read_table(tmp_path)
