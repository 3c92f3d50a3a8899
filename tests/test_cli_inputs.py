"""The command line against a careless user: outputs that are inputs, formats from
the extension, excluded rows in every output, warnings, levels, plots that cannot
place a study, large and unusual figures."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import metaan.plots
from bcg import BCG
from metaan.cli import main
from metaan.errors import InputError

#: Five trials (the first five BCG trials, Colditz et al. 1994) and one without its
#: control events, which every command must list with its reason.
COUNTS = """\
study,tpos,n1,cpos,n2
Aronson 1948,4,123,11,139
Ferguson 1949,6,306,29,303
Gap 1950,3,231,,220
Rosenthal 1960,3,231,11,220
Hart 1977,62,13598,248,12867
Frimodt 1973,33,5069,47,5808
"""
FLAGS = ["--measure", "OR", "--ai", "tpos", "--n1i", "n1", "--ci", "cpos", "--n2i", "n2"]
REASON = "ci (column cpos) is missing"


def write(tmp_path: Path, text: str = COUNTS, name: str = "trials.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def one_error(result: Result, *parts: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    line = result.stderr.strip().splitlines()[-1]
    for part in parts:
        assert part in line, (part, line)
    return line


# ----------------------------------------------------------------------------- outputs


@pytest.mark.parametrize("command", ["fit", "effects", "bias", "sensitivity"])
def test_an_output_that_is_the_input_is_refused_and_the_input_kept(
    tmp_path: Path, command: str
) -> None:
    path = write(tmp_path)
    one_error(run(command, path, *FLAGS, "-o", path), str(path), "would overwrite the input")
    assert path.read_text(encoding="utf-8") == COUNTS


@pytest.mark.parametrize(
    ("suffix", "check"), [(".csv", "csv"), (".json", "json"), (".txt", "table")]
)
def test_the_format_follows_the_extension_of_o(tmp_path: Path, suffix: str, check: str) -> None:
    path = write(tmp_path)
    for command in ("fit", "effects", "bias", "sensitivity"):
        out = tmp_path / f"{command}{suffix}"
        assert run(command, path, *FLAGS, "-o", out).exit_code == 0
        text = out.read_text(encoding="utf-8")
        if check == "json":
            json.loads(text)
        elif check == "csv":
            assert next(csv.reader(io.StringIO(text)))[0] in ("study", "measure", "analysis")
        else:
            assert not text.startswith("{") and "row 4 (Gap 1950)" in text


def test_an_explicit_format_wins_over_the_extension(tmp_path: Path) -> None:
    out = tmp_path / "fit.csv"
    assert run("fit", write(tmp_path), *FLAGS, "--format", "json", "-o", out).exit_code == 0
    assert json.loads(out.read_text(encoding="utf-8"))["k"] == 5


# ----------------------------------------------------------------------------- excluded rows


@pytest.mark.parametrize("command", ["fit", "effects", "bias", "sensitivity"])
@pytest.mark.parametrize("shape", ["table", "json", "csv"])
def test_every_output_format_of_every_command_lists_the_excluded_row(
    tmp_path: Path, command: str, shape: str
) -> None:
    result = run(command, write(tmp_path), *FLAGS, "--format", shape)
    assert result.exit_code == 0, result.stderr
    assert f"metaan: note: {tmp_path / 'trials.csv'}: row 4 (Gap 1950) excluded: {REASON}" in (
        result.stderr
    )
    out = result.stdout
    if shape == "json":
        document = json.loads(out)
        listed = document.get("excluded") or document.get("fit", {}).get("excluded")
        assert {"row": 4, "study": "Gap 1950", "reason": REASON} in listed
    elif shape == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        if command == "effects":
            (gap,) = [r for r in rows if r["study"] == "Gap 1950"]
            assert gap["exclusion_reason"] == REASON
        else:
            (gap,) = [r for r in rows if r["excluded_row"]]
            assert (gap["excluded_row"], gap["excluded_study"]) == ("4", "Gap 1950")
            assert gap["excluded_reason"] == REASON
    else:
        assert re.search(r"row 4 \(Gap 1950\): ci \(column cpos\) is missing", out), out


def test_grouped_fits_list_the_excluded_row_in_csv(tmp_path: Path) -> None:
    text = COUNTS.replace("study,", "era,study,").replace("\n", "\n").splitlines()
    rows = [text[0]] + [f"{'old' if i < 3 else 'new'},{line}" for i, line in enumerate(text[1:])]
    path = write(tmp_path, "\n".join(rows) + "\n")
    result = run("fit", path, *FLAGS, "--subgroup", "era", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    (gap,) = [r for r in csv.DictReader(io.StringIO(result.stdout)) if r["excluded_row"]]
    assert gap["excluded_reason"] == REASON


PLOTS = [
    ("forest", []),
    ("funnel", []),
    ("radial", []),
    ("baujat", []),
    ("leave1out", []),
    ("cumulative", []),
    ("labbe", []),
    ("bubble", ["--mods", "year"]),
    ("compare", ["--subgroup", "era"]),
]


@pytest.mark.parametrize(("kind", "extra"), PLOTS)
def test_every_plot_names_the_excluded_row_in_a_footnote(
    tmp_path: Path, kind: str, extra: list[str]
) -> None:
    lines = COUNTS.splitlines()
    years = ["1948", "1949", "1950", "1960", "1977", "1973"]
    rows = ["era,year," + lines[0]] + [
        f"{'old' if int(y) < 1960 else 'new'},{y},{line}"
        for y, line in zip(years, lines[1:], strict=True)
    ]
    path = write(tmp_path, "\n".join(rows) + "\n")
    out = tmp_path / f"{kind}.svg"
    result = run("plot", kind, path, *FLAGS, *extra, "-o", out)
    assert result.exit_code == 0, result.stderr
    svg = out.read_text(encoding="utf-8")
    assert "Gap 1950 (row 4)" in svg and REASON in svg, kind
    assert "row 4 (Gap 1950) excluded" in result.stderr


def test_funnel_and_radial_under_peto_name_a_double_zero_study_they_cannot_place(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, COUNTS.replace("Gap 1950,3,231,,220", "Nil 1950,0,231,0,220"))
    for kind in ("funnel", "radial"):
        out = tmp_path / f"{kind}.svg"
        result = run("plot", kind, path, *FLAGS, "--method", "PETO", "-o", out)
        assert result.exit_code == 0, result.stderr
        assert "Pooled but not drawn (1): Nil 1950 (row 4)" in out.read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- plots


def test_a_plot_into_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    target = tmp_path / "nodir" / "x.svg"
    one_error(run("plot", "forest", write(tmp_path), *FLAGS, "-o", target), "mkdir -p")
    assert not target.parent.exists()


def test_an_absurd_resolution_is_refused_before_any_work(tmp_path: Path) -> None:
    result = run(
        "plot", "forest", write(tmp_path), *FLAGS, "--dpi", "20000", "-o", tmp_path / "x.png"
    )
    assert result.exit_code == 2 and "1 to 2400" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_png_over_the_pixel_limit_says_which_resolution_fits() -> None:
    from matplotlib.figure import Figure

    from metaan.plots._save import check_resolution

    fig = Figure(figsize=(8.0, 400.0))
    with pytest.raises(InputError, match=r"use --dpi (\d+) or less") as caught:
        check_resolution(fig, 300.0)
    most = int(re.search(r"--dpi (\d+)", str(caught.value)).group(1))  # type: ignore[union-attr]
    check_resolution(fig, float(most))


def test_a_very_large_forest_plot_warns_and_max_rows_draws_the_heaviest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = ["study,yi,vi"] + [f"S{i},{(i % 7) / 10},{0.01 + (i % 13) / 100}" for i in range(2001)]
    path = write(tmp_path, "\n".join(lines) + "\n")

    def not_drawn(*args: object, **kwargs: object) -> None:
        raise InputError("stopped before drawing")

    with monkeypatch.context() as patch:
        patch.setattr(metaan.plots, "forest", not_drawn)
        warned = run("plot", "forest", path, "-o", tmp_path / "big.svg")
    assert "a forest plot of 2,001 studies" in warned.stderr
    assert "metaan plot funnel" in warned.stderr and "--max-rows" in warned.stderr
    out = tmp_path / "top.svg"
    cut = run("plot", "forest", path, "--max-rows", "20", "-o", out)
    assert cut.exit_code == 0 and "warning" not in cut.stderr
    svg = out.read_text(encoding="utf-8")
    assert "the 20 studies with the largest weights of the 2001 pooled" in svg


def test_chinese_study_names_are_drawn_without_warnings(tmp_path: Path) -> None:
    from metaan.plots._fonts import fallback_for

    path = write(tmp_path, "study,yi,vi\n张三 2020,0.1,0.04\n李四 2021,0.3,0.02\nSmith,-0.2,0.05\n")
    result = run("plot", "forest", path, "-o", tmp_path / "cjk.png", "--dpi", "50")
    assert result.exit_code == 0
    if fallback_for("张三") is None:
        assert result.stderr.count("warning") == 1 and "fonts-noto-cjk" in result.stderr
    else:
        assert result.stderr == ""


# ----------------------------------------------------------------------------- warnings


def test_a_row_pasted_twice_and_a_repeated_label_are_warned(tmp_path: Path) -> None:
    lines = COUNTS.splitlines()
    path = write(tmp_path, "\n".join([*lines, lines[1]]) + "\n")
    result = run("fit", path, *FLAGS)
    assert result.exit_code == 0
    assert "row 8 repeats an earlier row cell for cell and is pooled again" in result.stderr
    assert "Aronson 1948 (rows 2, 8)" in result.stderr


def test_a_yi_vi_table_without_labels_warns_only_of_a_row_pasted_twice(
    tmp_path: Path,
) -> None:
    # The first five BCG trials' log risk ratios (Colditz et al. 1994), no study column:
    # escalc adds a constant measure column, which alone must not make rows "repeats".
    rows = [f"{y},{v}" for y, v in zip(BCG["yi"][:5], BCG["vi"][:5], strict=True)]
    distinct = write(tmp_path, "\n".join(["yi,vi", *rows]) + "\n", "distinct.csv")
    result = run("fit", distinct)
    assert result.exit_code == 0, result.stderr
    assert "warning" not in result.stderr
    pasted = write(tmp_path, "\n".join(["yi,vi", *rows, rows[1]]) + "\n", "pasted.csv")
    result = run("fit", pasted)
    assert result.exit_code == 0, result.stderr
    assert "row 7 repeats an earlier row cell for cell and is pooled again (2 rows in all)" in (
        result.stderr
    )


def test_a_blank_label_beside_a_repeated_one_is_no_problem(tmp_path: Path) -> None:
    lines = COUNTS.splitlines()
    blank = lines[2].replace("Ferguson 1949", "")
    path = write(tmp_path, "\n".join([*lines[:2], blank, *lines[3:], lines[1]]) + "\n")
    result = run("fit", path, *FLAGS)
    assert result.exit_code == 0, result.stderr
    assert "1 study label appears more than once" in result.stderr


def test_fractional_counts_are_warned_with_their_rows(tmp_path: Path) -> None:
    path = write(tmp_path, COUNTS.replace("Ferguson 1949,6,", "Ferguson 1949,6.5,"))
    result = run("fit", path, *FLAGS)
    assert result.exit_code == 0
    assert "column tpos (ai) holds counts that are not whole numbers: row 3 (6.5)" in result.stderr


@pytest.mark.parametrize(
    ("level", "hint"),
    [
        ("1.5", "a percentage from 50 to 100 or a fraction from 0.5 to 1"),
        ("0.3", "a percentage from 50 to 100 or a fraction from 0.5 to 1"),
        ("1", "--level is 1, which is ambiguous"),
    ],
)
def test_a_level_that_is_not_a_confidence_level_is_refused(
    tmp_path: Path, level: str, hint: str
) -> None:
    for command in ("fit", "bias", "sensitivity", "effects"):
        flag = "--ci-level" if command == "effects" else "--level"
        result = run(command, write(tmp_path), *FLAGS, flag, level)
        assert result.exit_code == 2 and hint.replace("--level", flag) in result.stderr
        assert "Traceback" not in result.stderr


def test_a_level_given_as_a_fraction_is_the_same_level_in_percent(tmp_path: Path) -> None:
    as_fraction = run("fit", write(tmp_path), *FLAGS, "--level", "0.9", "--format", "json")
    as_percent = run("fit", write(tmp_path), *FLAGS, "--level", "90", "--format", "json")
    assert as_fraction.exit_code == 0, as_fraction.stderr
    assert json.loads(as_fraction.stdout) == json.loads(as_percent.stdout)


def test_tiny_p_values_read_p_less_than(tmp_path: Path) -> None:
    lines = ["study,yi,vi"] + [f"S{i},{1 + i / 10},0.01" for i in range(8)]
    out = run("fit", write(tmp_path, "\n".join(lines) + "\n"), "--method", "EE").stdout
    assert "p < .0001" in out and "p = <" not in out


def test_errors_name_the_file_and_show_no_python(tmp_path: Path) -> None:
    path = write(tmp_path)
    line = one_error(run("fit", path, *FLAGS, "--mods", "nothere"), str(path), "'nothere'")
    assert "[" not in line and "PosixPath" not in line
    two = write(tmp_path, "study,yi,vi\nA,0.1,0.1\n", "one.csv")
    one_error(run("bias", two, "--yi", "yi", "--vi", "vi"), str(two))
    from metaan.studies import load_studies

    with pytest.raises(InputError) as caught:
        load_studies([tmp_path / "empty"])
    assert "PosixPath" not in str(caught.value) and str(tmp_path / "empty") in str(caught.value)
