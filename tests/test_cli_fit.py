"""``metaan fit`` from the command line: formats, methods and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from metaan.cli import main

HEADER = "study,tpos,n1i,cpos,n2i\n"
ROWS = [
    "Aronson,4,123,11,139",
    "Ferguson,6,306,29,303",
    "Rosenthal,3,231,11,220",
    "Hart,62,13598,248,12867",
    "Frimodt,33,5069,47,5808",
]
COUNT_FLAGS = ["--measure", "OR", "--ai", "tpos", "--n1i", "n1i", "--ci", "cpos", "--n2i", "n2i"]


def _write(tmp_path: Path, text: str, name: str = "studies.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_json_output_has_every_documented_field_with_pairs_for_intervals(tmp_path: Path) -> None:
    path = _write(tmp_path, HEADER + "\n".join(ROWS) + "\n")
    code, out, err = _run("fit", path, *COUNT_FLAGS, "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    fields = [
        *("measure", "method", "test", "level", "k", "estimate", "se", "stat", "df", "pval"),
        *("ci_lb", "ci_ub", "tau2", "se_tau2", "tau2_ci", "tau_ci", "I2", "I2_ci", "H2"),
        *("H2_ci", "QE", "QE_df", "QEp", "pi_lb", "pi_ub", "excluded"),
    ]
    for field in fields:
        assert field in data, field
    assert data["measure"] == "OR" and data["method"] == "REML" and data["k"] == 5
    assert len(data["tau2_ci"]) == 2 and data["tau2_ci"][0] <= data["tau2"] <= data["tau2_ci"][1]


def test_the_json_numbers_match_the_python_api(tmp_path: Path) -> None:
    import pandas as pd

    import metaan

    path = _write(tmp_path, HEADER + "\n".join(ROWS) + "\n")
    code, out, _ = _run(
        "fit", path, *COUNT_FLAGS, "--method", "PM", "--test", "knha", "--format", "json"
    )
    assert code == 0
    table = metaan.escalc(pd.read_csv(path), "OR", ai="tpos", n1i="n1i", ci="cpos", n2i="n2i")
    res = metaan.fit(table, method="PM", test="knha")
    assert json.loads(out)["estimate"] == res.estimate
    assert json.loads(out)["df"] == 4


def test_the_table_view_shows_exponentiated_ratios_and_lists_excluded_rows(tmp_path: Path) -> None:
    rows = [*ROWS[:2], "Rosenthal,3,231,,220", *ROWS[3:]]
    path = _write(tmp_path, HEADER + "\n".join(rows) + "\n")
    code, out, _ = _run("fit", path, *COUNT_FLAGS)
    assert code == 0
    assert "exponentiated" in out
    assert "row 4 (Rosenthal)" in out and "missing" in out


@pytest.mark.parametrize("method", ["MH", "PETO"])
def test_mantel_haenszel_and_peto_run_from_the_counts(tmp_path: Path, method: str) -> None:
    path = _write(tmp_path, HEADER + "\n".join(ROWS) + "\n")
    code, out, err = _run("fit", path, *COUNT_FLAGS, "--method", method, "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["method"] == method and data["tau2"] is None
    if method == "MH":
        assert data["MH"] > 0 and data["TA"] >= 0


def test_precomputed_effects_with_standard_errors_fit(tmp_path: Path) -> None:
    path = _write(tmp_path, "study,g,se\nA,-0.5,0.2\nB,-0.9,0.3\nC,-0.2,0.25\n")
    code, out, err = _run("fit", path, "--yi", "g", "--sei", "se", "--format", "csv")
    assert code == 0, err
    header, values = out.strip().splitlines()
    assert header.startswith("measure,method,test,level,k,estimate")
    assert ",REML,z,95.0,3," in values


def _assert_one_line_error(code: int, err: str, *parts: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    # One error line; before it, the rows left out, which are often the reason.
    *notes, error = lines
    assert error.startswith("metaan: error: ") and "error" not in " ".join(notes), err
    assert all(note.startswith("metaan: note: ") for note in notes), err
    for part in parts:
        assert part in error, (part, error)


def test_a_missing_column_names_the_file_and_the_column(tmp_path: Path) -> None:
    path = _write(tmp_path, HEADER + "\n".join(ROWS) + "\n")
    code, _, err = _run("fit", path, "--measure", "OR", "--ai", "nope", "--n1i", "n1i",
                        "--ci", "cpos", "--n2i", "n2i")  # fmt: skip
    _assert_one_line_error(code, err, "studies.csv", "nope")


def test_a_non_numeric_cell_names_the_row_study_and_column(tmp_path: Path) -> None:
    rows = [*ROWS[:2], "Rosenthal,three,231,11,220", *ROWS[3:]]
    path = _write(tmp_path, HEADER + "\n".join(rows) + "\n")
    code, _, err = _run("fit", path, *COUNT_FLAGS)
    _assert_one_line_error(code, err, "studies.csv", "row 4", "Rosenthal", "tpos")


def test_events_above_the_group_size_are_an_error(tmp_path: Path) -> None:
    rows = [*ROWS[:2], "Rosenthal,300,231,11,220", *ROWS[3:]]
    path = _write(tmp_path, HEADER + "\n".join(rows) + "\n")
    code, _, err = _run("fit", path, *COUNT_FLAGS)
    _assert_one_line_error(code, err, "row 4", "Rosenthal", "tpos")


def test_a_negative_sd_and_a_zero_n_are_errors(tmp_path: Path) -> None:
    head = "study,m1,s1,n1,m2,s2,n2\n"
    flags = ["--measure", "SMD", "--m1i", "m1", "--sd1i", "s1", "--n1i", "n1",
             "--m2i", "m2", "--sd2i", "s2", "--n2i", "n2"]  # fmt: skip
    bad_sd = _write(tmp_path, head + "A,1,2,10,2,2,10\nB,1,-3.2,10,2,2,10\n", "sd.csv")
    code, _, err = _run("fit", bad_sd, *flags)
    _assert_one_line_error(code, err, "sd.csv", "row 3", "(B)", "s1")
    bad_n = _write(tmp_path, head + "A,1,2,10,2,2,10\nB,1,2,0,2,2,10\n", "n.csv")
    code, _, err = _run("fit", bad_n, *flags)
    _assert_one_line_error(code, err, "n.csv", "row 3", "(B)", "n1")


def test_a_variance_that_is_not_positive_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "study,y,v\nA,0.1,0.02\nB,0.3,0\nC,0.2,0.01\n")
    code, _, err = _run("fit", path, "--yi", "y", "--vi", "v")
    _assert_one_line_error(code, err, "row 3", "(B)", "v")


def test_a_random_effects_model_of_one_study_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "study,y,v\nA,0.1,0.02\nB,,0.03\n")
    code, _, err = _run("fit", path, "--yi", "y", "--vi", "v")
    _assert_one_line_error(code, err, "at least 2 studies")


@pytest.mark.parametrize("text", ["", "study,y,v\n"])
def test_an_empty_file_is_an_error(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    code, _, err = _run("fit", path, "--yi", "y", "--vi", "v")
    _assert_one_line_error(code, err, "studies.csv")


def test_a_file_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    code, _, err = _run("fit", str(tmp_path / "none.csv"), "--yi", "y", "--vi", "v")
    _assert_one_line_error(code, err, "none.csv")


def test_rows_are_numbered_as_the_spreadsheet_shows_them_even_after_a_blank_line(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, "study,y,v\nA,0.1,0.02\n\nB,,0.03\nC,0.3,0.01\n")
    code, out, _ = _run("fit", path, "--yi", "y", "--vi", "v")
    assert code == 0
    assert "row 4 (B)" in out


def test_the_prediction_interval_convention_can_be_chosen_from_the_command_line(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, "study,g,se\nA,-0.5,0.2\nB,-0.9,0.3\nC,-0.2,0.25\nD,-1.1,0.3\n")
    runs = {}
    for convention in ("metafor", "meta"):
        code, out, err = _run(
            "fit", path, "--yi", "g", "--sei", "se", "--test", "knha",
            "--prediction", convention, "--format", "json",
        )  # fmt: skip
        assert code == 0, err
        runs[convention] = json.loads(out)
    assert runs["meta"]["prediction"] == "meta"
    assert runs["meta"]["estimate"] == runs["metafor"]["estimate"]
    assert runs["meta"]["pi_lb"] != runs["metafor"]["pi_lb"]


def test_effect_sizes_written_by_metaan_effects_keep_their_measure_in_a_fit(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, HEADER + "\n".join(ROWS) + "\n")
    code, effects, err = _run("effects", path, *COUNT_FLAGS, "--format", "csv")
    assert code == 0, err
    written = _write(tmp_path, effects, "effects.csv")
    code, out, err = _run("fit", written, "--yi", "yi", "--vi", "vi", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["measure"] == "OR"
    code, text, _ = _run("fit", written, "--yi", "yi", "--vi", "vi")
    assert "exponentiated" in text


def test_the_label_flag_names_the_studies_of_every_kind_of_fit(tmp_path: Path) -> None:
    rows = [f"X{i},{row}" for i, row in enumerate(ROWS)]
    rows[2] = rows[2].replace(",3,", ",,")  # no events: excluded, and named by its label
    path = _write(tmp_path, "name," + HEADER + "\n".join(rows) + "\n")
    for extra in ([], ["--method", "MH"], ["--mods", "n1i"]):
        code, out, err = _run("fit", path, *COUNT_FLAGS, "--label", "name", *extra)
        assert code == 0, err
        assert "row 4 (X2)" in out
    figure = tmp_path / "forest.svg"
    code, _, err = _run("plot", "forest", path, *COUNT_FLAGS, "--label", "name", "-o", str(figure))
    assert code == 0, err
    assert "X0" in figure.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("rows", "flags"),
    [
        ("study,yi,vi\nA,0.1,0.02\nB,0.5,0.04\nC,,0.03\nD,-0.2,0.05\n", ["--format", "table"]),
        ("study,yi,sei\nA,0.1,0.2\nB,0.5,0.3\nC,-0.2,0.25\n", ["--format", "json"]),
        (
            "study,ai,n1i,ci,n2i\nA,5,50,10,50\nB,0,40,3,41\nC,12,100,,98\n",
            ["--measure", "OR", "--format", "csv"],
        ),
        (
            "study,m1i,sd1i,n1i,m2i,sd2i,n2i\nA,10,3,20,12,3.5,21\nB,9,2.5,30,11,3,29\n",
            ["--measure", "SMD", "--method", "DL"],
        ),
    ],
)
def test_metaan_fit_reads_and_fits_without_importing_pandas_matplotlib_jinja2_or_scipy(
    tmp_path: Path, rows: str, flags: list[str]
) -> None:
    import subprocess
    import sys

    path = tmp_path / "studies.csv"
    path.write_text(rows, encoding="utf-8")
    code = (
        "import sys\n"
        "from metaan.cli import main\n"
        "try:\n"
        f"    main({['fit', str(path), *flags]!r})\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print([m for m in ('pandas', 'matplotlib', 'jinja2', 'scipy') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "[]"


#: Modules a plain ``metaan fit FILE`` (a table on stdout) has no use for, which metaan
#: imports only where they are used: writing a file (tempfile, which brings shutil,
#: bz2, lzma and random), ``--format json``, a notebook's HTML view, data frames,
#: figures and report templates; and what scipy brought with it (numpy's random,
#: testing and f2py modules, and through them package metadata, logging, sockets).
NOT_ON_THE_FIT_PATH = (
    "tempfile",
    "shutil",
    "bz2",
    "lzma",
    "random",
    "json",
    "html",
    "pandas",
    "matplotlib",
    "jinja2",
    "scipy",
    "numpy.random",
    "numpy.testing",
    "numpy.f2py",
    "importlib.metadata",
    "charset_normalizer",
    "hashlib",
    "logging",
    "socket",
    "subprocess",
    "zipfile",
)


def test_a_plain_fit_imports_none_of_the_modules_it_does_not_use(tmp_path: Path) -> None:
    import subprocess
    import sys

    from bcg import BCG

    path = tmp_path / "bcg.csv"
    BCG[["trial", "yi", "vi"]].to_csv(path, index=False)
    # numpy and the numerical backend of metaan._dist are imported first, and what they
    # bring of these modules is forgotten, so that only metaan's own imports are seen.
    code = (
        "import sys, numpy, metaan._dist\n"
        f"lazy = {NOT_ON_THE_FIT_PATH!r}\n"
        "for name in lazy:\n"
        "    sys.modules.pop(name, None)\n"
        "from metaan.cli import main\n"
        "try:\n"
        f"    main({['fit', str(path)]!r})\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print([name for name in lazy if name in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Random-effects model" in out.stdout
    assert out.stdout.splitlines()[-1] == "[]"


def test_a_cell_that_is_not_a_number_counts_only_the_cells_like_it(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("study,yi,sei\nA,0.1,x\nB,0.2,\nC,0.3,y\nD,0.4,\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["fit", str(path), "--yi", "yi", "--sei", "sei"])
    assert result.exit_code == 2
    assert "sei is 'x', which is not a number (and 1 more row like it)" in result.output


def test_the_command_modules_load_only_when_a_command_is_used() -> None:
    import subprocess
    import sys

    code = (
        "import sys, metaan.cli\n"
        "print(sorted(m for m in sys.modules if m.startswith('metaan.cli.')))\n"
        "from click.testing import CliRunner\n"
        "CliRunner().invoke(metaan.cli.main, ['fit', '--help'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('metaan.cli.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = out.stdout.splitlines()
    assert before == "['metaan.cli._app']"
    assert "'metaan.cli._fit'" in after
    assert "_plot" not in after and "_network" not in after


def test_help_lists_every_command_with_its_short_help() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    listed = result.output.split("Commands:")[1].splitlines()
    names = [line.split()[0] for line in listed if line.strip()]
    assert names == sorted(main.lazy) and len(names) == 10
    assert all(len(line.split()) > 1 for line in listed if line.strip())
