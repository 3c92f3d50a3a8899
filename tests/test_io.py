"""The files users bring: CSV in its European and tab-separated forms, Excel
workbooks and RevMan 5 reviews, read by one module with one error convention."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import metaan
from metaan.errors import InputError
from metaan.io import read_revman, read_table, spreadsheet_rows
from tolerance import assert_close

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures" / "io"
REVIEW = FIXTURES / "review.rm5"
WORKBOOK = FIXTURES / "bcg.xlsx"


def load_case(name: str) -> dict[str, Any]:
    """A committed metafor reference file (the fixtures were built from these)."""
    path = HERE / "reference" / "metafor" / f"{name}.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def write(tmp_path: Path, text: str, name: str = "studies.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- CSV dialects


def test_a_semicolon_file_with_decimal_commas_reads_as_numbers(tmp_path: Path) -> None:
    table = read_table(write(tmp_path, "study;yi;vi\nA;0,5;0,1\nB;-,25;1,5e-2\nC;1;NA\n"))
    assert list(table.columns) == ["study", "yi", "vi"]
    np.testing.assert_array_equal(table["yi"], [0.5, -0.25, 1.0])
    np.testing.assert_array_equal(table["vi"][:2], [0.1, 0.015])
    assert np.isnan(table["vi"].iloc[2])


def test_a_tab_separated_file_reads_as_the_comma_separated_one(tmp_path: Path) -> None:
    tab = read_table(write(tmp_path, "study\tyi\tvi\nA\t0.5\t0.1\nB, Jr\t1\t0.2\n", "a.tsv"))
    comma = read_table(write(tmp_path, 'study,yi,vi\nA,0.5,0.1\n"B, Jr",1,0.2\n', "b.csv"))
    assert tab.equals(comma)


@pytest.mark.parametrize(
    "text",
    [
        "study,yi,vi\r\nA ,0.5, 0.1\r\nB,NA,0.2\r\nC,-1e-3,.",
        "study;yi;vi\nA;0,5;0,1\nB;-,25;1,5e-2\nC;1;NA\n",
        "study\tyi\tvi\tnote\nA\t1\t2\t\nB\t3\t4\tx y\n",
        "study,yi,vi\nA,0.5,0.1\n,,\nB,1,0.2\n\n",
        "yi\n0.5\n\n1\n",
        "study,yi,vi\nA,1,2\n  ,3,4\n\u00a0,5,6\n\u00c5berg,7,8\n ok,9,10\n",
        "study,yi,vi\nA,1,2\nB,3,4\n\n\n",
        "study,yi,vi\nA,1,2\nB,3,4\nC,5,6",
        "study,n\n" + "".join(f"S{i},{i}\n" for i in range(200)) + "S 1 000,7\n",
    ],
)
def test_a_file_without_quotes_reads_as_the_same_file_with_a_quoted_header(
    tmp_path: Path, text: str
) -> None:
    # A quote sends the file through the csv module record by record; a file without
    # one is split by column at once, and must read alike, cell for cell.
    first = re.match(r"[^,;\t\r\n]*", text).group()  # type: ignore[union-attr]
    quoted = f'"{first}"' + text[len(first) :]
    plain = read_table(write(tmp_path, text, "plain.csv"), frame=False)
    reference = read_table(write(tmp_path, quoted, "quoted.csv"), frame=False)
    assert plain.columns == reference.columns
    assert plain.rows.tolist() == reference.rows.tolist()
    for name in plain.columns:
        assert plain[name].dtype == reference[name].dtype
        np.testing.assert_array_equal(plain[name], reference[name])


@pytest.mark.parametrize(
    ("cells", "dtype", "values"),
    [
        (["12", "7", "30"], "int64", [12, 7, 30]),
        (["12", "NA", "30"], "float64", [12.0, np.nan, 30.0]),
        (["12", "7.5", "30"], "float64", [12.0, 7.5, 30.0]),
        (["12", "9007199254740992", "30"], "float64", [12.0, 2.0**53, 30.0]),
        (["12", "-nan", "30"], "object", ["12", "-nan", "30"]),
        (["12", "", "x"], "object", ["12", None, "x"]),
    ],
)
def test_a_column_is_whole_numbers_numbers_or_text_by_all_of_its_cells(
    tmp_path: Path, cells: list[str], dtype: str, values: list[Any]
) -> None:
    # 70 rows, so that the cells that decide come after the first 64 read.
    column = ["1"] * 67 + cells
    path = write(tmp_path, "\n".join(["study,n", *(f"S{i},{c}" for i, c in enumerate(column))]))
    read = read_table(path, frame=False)["n"]
    assert read.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(read[67:], np.array(values, dtype=dtype))


def test_sep_and_decimal_choose_what_detection_would_not(tmp_path: Path) -> None:
    path = write(tmp_path, "study;yi\nA;1.234\nB;2\n")
    assert read_table(path)["yi"].tolist() == [1.234, 2.0]
    with pytest.raises(InputError, match="thousands separator"):
        read_table(path, decimal=",")
    assert read_table(path, sep="semicolon")["yi"].tolist() == [1.234, 2.0]
    assert list(read_table(path, sep=",").columns) == ["study;yi"]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ('study,n\nA,"1,234"\n', "1,234 is written with a thousands separator (,)"),
        ("study;n\nA;1.234,5\nB;2,5\n", "1.234,5 is written with a thousands separator (.)"),
        ('study,n\nA,"1 234"\n', "1 234 is written with a thousands separator (space)"),
        ("study,n\nA,1'234\n", "1'234 is written with a thousands separator (')"),
    ],
)
def test_thousands_separators_are_refused_with_the_row_and_column(
    tmp_path: Path, text: str, shown: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as caught:
        read_table(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: row 2: column n: {shown}")
    assert "without separators" in message


def test_uneven_rows_are_refused_at_the_first_even_when_the_cells_add_up(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "study,yi,vi\nA,1,2\nB,1,2,3\nC,4\nD,5,6\n")
    with pytest.raises(InputError, match="row 3: the row has 4 cells but the header has 3"):
        read_table(path)


def test_a_grouped_number_among_text_cells_is_refused_at_its_row_and_only_there(
    tmp_path: Path,
) -> None:
    # A cell whose second line looks grouped is text; the cell 300 rows down is not.
    rows = [f"S{i},{i}" for i in range(300)]
    text = "study,n\n" + '"note\n1,234",0\n"1,234\nx",0\n' + "\n".join(rows) + "\n1 234,5\n"
    path = write(tmp_path, text)
    with pytest.raises(InputError) as caught:
        read_table(path)
    assert str(caught.value).startswith(f"{path}: row 304: column study: 1 234 is written")
    read = read_table(write(tmp_path, text.replace("1 234,5", "S1 234,5"), "b.csv"))
    assert read["study"].iloc[0] == "note\n1,234"


def test_an_ambiguous_separator_names_both_and_the_flags(tmp_path: Path) -> None:
    path = write(tmp_path, "a,b;c\n1,2;3\n")
    with pytest.raises(InputError) as caught:
        read_table(path)
    assert "commas and semicolons" in str(caught.value)
    assert "--sep , or --sep ;" in str(caught.value)


def test_mixed_decimal_marks_are_refused_naming_the_flag(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=re.escape("--decimal , or --decimal .")):
        read_table(write(tmp_path, "study;yi\nA;0,5\nB;0.25\n"))


def test_blank_rows_keep_their_spreadsheet_numbers_in_every_dialect(tmp_path: Path) -> None:
    table = read_table(write(tmp_path, "study;yi\nA;0,5\n;\nB;1\n"))
    assert list(spreadsheet_rows(table)) == [2, 4]


def test_a_workbook_renamed_to_csv_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "studies.csv"
    path.write_bytes(WORKBOOK.read_bytes())
    with pytest.raises(InputError, match=re.escape("rename it to end in .xlsx")):
        read_table(path)


def test_an_old_excel_file_is_refused_with_what_to_save_instead(tmp_path: Path) -> None:
    path = tmp_path / "studies.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(InputError, match=re.escape("save it as .xlsx")):
        read_table(path)


# ----------------------------------------------------------------------------- Excel


def test_a_workbook_sheet_reads_as_its_csv_export() -> None:
    table = read_table(WORKBOOK, sheet="trials")
    case = load_case("bcg_RR")
    assert list(table.columns) == ["author", "year", "tpos", "n1i", "cpos", "n2i", "alloc"]
    assert table["tpos"].dtype == np.int64
    assert table["author"].tolist() == [row["author"] for row in case["data"]]
    assert list(spreadsheet_rows(table)) == list(range(2, 15))
    assert read_table(WORKBOOK, sheet=1).equals(table)


def test_a_workbook_with_several_sheets_needs_one_chosen() -> None:
    with pytest.raises(InputError) as caught:
        read_table(WORKBOOK)
    assert "2 sheets (trials, notes)" in str(caught.value) and "--sheet" in str(caught.value)
    with pytest.raises(InputError, match="no sheet results; its sheets are trials, notes"):
        read_table(WORKBOOK, sheet="results")


def test_a_broken_workbook_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    path.write_bytes(b"PK\x03\x04\x14\x00\x06\x00\xff\xfe\xfa")
    with pytest.raises(InputError, match=re.escape("not a valid .xlsx workbook")):
        read_table(path)


def test_a_fit_of_the_workbook_reproduces_metafor() -> None:
    table = read_table(WORKBOOK, sheet="trials")
    effects = metaan.escalc(table, "RR", ai="tpos", n1i="n1i", ci="cpos", n2i="n2i")
    res = metaan.fit(effects, method="REML")
    expected = load_case("bcg_RR")["results"]["rma_REML"]
    assert_close(res.estimate, expected["estimate"], "estimate")
    assert_close(res.tau2, expected["tau2"], "tau2")


# ----------------------------------------------------------------------------- RevMan 5


def test_a_review_reads_every_outcome_with_names_arms_and_subgroups() -> None:
    review = read_revman(REVIEW)
    assert review["outcome"].drop_duplicates().tolist() == ["1.1", "2.1"]
    bcg = review[review["outcome"] == "1.1"]
    assert len(bcg) == 13
    assert set(bcg["subgroup"]) == {
        "random allocation",
        "alternate allocation",
        "systematic allocation",
    }
    first = bcg.iloc[0]
    assert (first["study"], first["year"], first["group1"], first["group2"]) == (
        "Aronson 1948",
        1948,
        "BCG",
        "No vaccine",
    )
    assert (first["ai"], first["n1i"], first["ci"], first["n2i"]) == (4, 123, 11, 139)
    stroke = review[review["outcome"] == "2.1"]
    assert stroke["data_type"].unique().tolist() == ["CONT"]
    assert stroke[["m1i", "sd1i", "n1i"]].notna().all().all()


def test_one_outcome_of_a_review_is_a_table_with_its_measure() -> None:
    table = read_table(REVIEW, outcome="1.1")
    assert table.attrs["measure"] == "RR"
    assert list(spreadsheet_rows(table)) == list(range(2, 15))
    assert "m1i" not in table.columns
    with pytest.raises(InputError) as caught:
        read_table(REVIEW)
    message = str(caught.value)
    assert "2 outcomes: 1.1 Tuberculosis (DICH, RR); 2.1 Length of hospital stay" in message
    assert "--revman-outcome" in message
    with pytest.raises(InputError, match=re.escape("no outcome 3.1; it has 1.1")):
        read_table(REVIEW, outcome="3.1")


@pytest.mark.parametrize(
    ("outcome", "case", "measure"), [("1.1", "bcg_RR", "RR"), ("2.1", "normand_SMD", "SMD")]
)
def test_a_fit_of_a_review_outcome_reproduces_metafor(
    outcome: str, case: str, measure: str
) -> None:
    table = read_table(REVIEW, outcome=outcome)
    columns = (
        ("ai", "n1i", "ci", "n2i")
        if measure == "RR"
        else ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")
    )
    effects = metaan.escalc(table, measure, **{c: c for c in columns})
    res = metaan.fit(effects, method="REML")
    expected = load_case(case)["results"]["rma_REML"]
    assert_close(res.estimate, expected["estimate"], "estimate")
    assert_close(res.se, expected["se"], "se")
    assert_close(res.tau2, expected["tau2"], "tau2")


def test_a_review_s_mantel_haenszel_fit_reproduces_metafor() -> None:
    table = read_table(REVIEW, outcome="1.1")
    res = metaan.fit_mh(table, measure="RR")  # the review's columns are metafor's names
    expected = load_case("bcg_RR")["results"]["mh_RR"]
    assert_close(res.estimate, expected["estimate"], "estimate")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<COCHRANE_REVIEW><ANALYSES_AND_DATA/>", "not well-formed XML"),
        ("<review/>", "not a RevMan 5 review (its root element is <review>)"),
        ("<COCHRANE_REVIEW><ANALYSES_AND_DATA/></COCHRANE_REVIEW>", "no outcome data"),
        (
            '<!DOCTYPE r [<!ENTITY a "aaaa">]><COCHRANE_REVIEW/>',
            "declares XML entities",
        ),
    ],
)
def test_a_file_that_is_no_review_is_one_error(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text, "review.rm5")
    with pytest.raises(InputError, match=re.escape(message)) as caught:
        read_revman(path)
    assert str(caught.value).startswith(str(path))


ODD_NUMBERS = [
    "1", "-2.5", "+.5", "1.", "1e5", "1E-05", "00012", "1e400", "-1e400", "1e-400",
    "inf", "-Infinity", "INFINITY", "nan", "-nan", "NAN", "99999999999999999999",
    "0.1000000000000000055511151231257827", "1_000", "\u0661", "\uff11", "1,5", "1e",
    "1.5e+", "1D5", "0x1", "5j", "--1", "1.2.3", ".", "-", "e5", "infinityx", "NR",
]  # fmt: skip


def test_numbers_are_read_as_pandas_to_numeric_reads_them() -> None:
    import pandas as pd

    from metaan.io import parse_numbers

    expected = pd.to_numeric(pd.Series(ODD_NUMBERS, dtype=object), errors="coerce")
    got = parse_numbers(ODD_NUMBERS)
    np.testing.assert_array_equal(got, expected.to_numpy(dtype=float))  # NaN equal to NaN


def test_reading_as_columns_gives_the_table_the_data_frame_holds(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "study,yi,vi,n,note\nA,0.1,0.02,10,\n\nB,,0.03,12,x\nC,0.3,NA,7,\n", encoding="utf-8"
    )
    frame = read_table(path)
    columns = read_table(path, frame=False)
    assert columns.columns == list(frame.columns)
    assert spreadsheet_rows(frame).tolist() == columns.rows.tolist() == [2, 4, 5]
    for name in frame.columns:
        assert columns[name].dtype == frame[name].dtype
        np.testing.assert_array_equal(columns[name], frame[name].to_numpy())
    # Text columns stay objects, a blank cell None (not pandas' string type and NaN).
    assert frame["note"].tolist() == [None, "x", None]
    assert frame["study"].dtype == object


def test_effects_and_a_fit_from_columns_equal_those_from_a_data_frame(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "study,ai,n1i,ci,n2i\nA,5,50,10,50\nB,0,40,3,41\nC,12,100,,98\nD,7,60,9,61\n",
        encoding="utf-8",
    )
    from_frame = metaan.escalc(read_table(path), "OR", ai="ai", n1i="n1i", ci="ci", n2i="n2i")
    from_columns = metaan.escalc(
        read_table(path, frame=False), "OR", ai="ai", n1i="n1i", ci="ci", n2i="n2i"
    )
    for name in ("yi", "vi", "exclusion_reason", "measure"):
        np.testing.assert_array_equal(from_columns[name], from_frame[name].to_numpy())
    a, b = metaan.fit(from_frame, source="t.csv"), metaan.fit(from_columns, source="t.csv")
    assert a.to_dict() == b.to_dict()
    assert a.excluded == b.excluded and a.rows == b.rows and a.labels == b.labels


@pytest.mark.parametrize(
    "values",
    [
        ["b", "a", "c"],
        ["GEN"] * 4,
        ["b", "a", "b", "c", "a"],
        ["x", None, "x", float("nan"), "y"],
        [None, None],
        [2.5, "2.5", 2.5],
    ],
)
def test_factorize_codes_values_as_pandas_does(values: list[Any]) -> None:
    import pandas as pd

    from metaan.io import factorize

    codes, uniques = factorize(values)
    expected_codes, expected_uniques = pd.factorize(pd.Series(values, dtype=object))
    assert codes.tolist() == expected_codes.tolist()
    assert uniques == list(expected_uniques)
