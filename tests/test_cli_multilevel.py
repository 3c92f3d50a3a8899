"""``metaan fit --levels`` and ``--outcome`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from metaan.cli import main

MV = Path(__file__).parent / "reference" / "metafor-mv"


def _csv(tmp_path: Path, name: str) -> tuple[str, dict]:
    doc = json.loads((MV / f"{name}.json").read_text("utf-8"))
    path = tmp_path / f"{name}.csv"
    pd.DataFrame(doc["data"]).to_csv(path, index=False)
    return str(path), doc


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_the_che_model_with_cr2_reproduces_metafor_and_clubsandwich(tmp_path: Path) -> None:
    path, doc = _csv(tmp_path, "assink2016_che")
    code, out, err = _run(
        "fit", path, "--yi", "yi", "--vi", "vi", "--levels", "study,esid", "--rho", "0.6",
        "--cluster", "study", "--mods", "deltype", "--robust", "CR2", "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    got = json.loads(out)
    ref = doc["results"]["REML_z"]
    assert got["loglik"] == pytest.approx(ref["loglik"], rel=1e-9)
    se = [row["se"] for row in got["robust"]["coefficients"]]
    assert se == pytest.approx(ref["robust"]["CR2_satterthwaite"]["se"], rel=1e-6)


def test_a_multivariate_fit_writes_a_coefficient_table(tmp_path: Path) -> None:
    path, _ = _csv(tmp_path, "berkey1998")
    code, out, err = _run(
        "fit", path, "--yi", "yi", "--vi", "vi", "--outcome", "outcome", "--study", "trial",
        "--struct", "UN", "--format", "csv",
    )  # fmt: skip
    assert code == 0, err
    assert out.splitlines()[0] == "name,estimate,se,stat,df,pval,ci_lb,ci_ub"
    assert [line.split(",")[0] for line in out.splitlines()[1:]] == ["outcome[AL]", "outcome[PD]"]
    code, out, _ = _run("fit", path, "--yi", "yi", "--vi", "vi", "--outcome", "outcome",
                          "--study", "trial", "--struct", "CS")  # fmt: skip
    assert code == 0 and "struct CS" in out and "rho" in out


def test_a_level_that_does_not_nest_in_the_cluster_is_one_line_naming_file_and_row(
    tmp_path: Path,
) -> None:
    path, _ = _csv(tmp_path, "konstantopoulos2011")
    code, _, err = _run("fit", path, "--yi", "yi", "--vi", "vi", "--levels", "district,school",
                          "--cluster", "year", "--robust", "CR1")  # fmt: skip
    assert code == 2 and "Traceback" not in err
    assert path in err and "row" in err and "does not nest" in err


def test_a_sampling_covariance_that_is_not_positive_definite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("study,esid,yi,vi\nA,1,0.1,0.1\nA,1,0.2,0.1\nB,1,0.3,0.2\nC,1,0.1,0.2\n")
    code, _, err = _run("fit", str(path), "--levels", "study,esid", "--rho", "0.6",
                        "--cluster", "study")  # fmt: skip
    assert code == 2 and "not positive definite" in err and "row 2" in err and str(path) in err


def test_a_single_effect_cluster_that_fits_a_coefficient_alone_is_refused_under_cr2(
    tmp_path: Path,
) -> None:
    rows = ["study,esid,yi,vi,arm"] + [f"S{i},{j},{0.1 * i + 0.05 * j},0.05,a" for i in range(6)
                                       for j in range(2)] + ["S9,1,0.9,0.05,b"]  # fmt: skip
    path = tmp_path / "single.csv"
    path.write_text("\n".join(rows) + "\n")
    args = ["fit", str(path), "--levels", "study,esid", "--mods", "arm", "--robust"]
    code, _, err = _run(*args, "CR2")
    assert code == 2 and "CR2 is undefined" in err and "row 14" in err
    code, _, err = _run(*args, "CR1")
    assert code == 0, err


def test_levels_and_outcome_together_are_refused(tmp_path: Path) -> None:
    path, _ = _csv(tmp_path, "berkey1998")
    code, _, err = _run("fit", path, "--yi", "yi", "--vi", "vi", "--levels", "trial",
                        "--outcome", "outcome")  # fmt: skip
    assert code == 2 and "not both" in err


def test_the_command_line_choices_are_those_of_the_multilevel_engine() -> None:
    from metaan.cli import _multilevel
    from metaan.multilevel import STRUCTS
    from metaan.robust import KINDS

    assert _multilevel.STRUCTS == STRUCTS and _multilevel.KINDS == KINDS


def test_metaan_fit_without_multilevel_options_does_not_import_the_multilevel_engine() -> None:
    import subprocess
    import sys

    code = "import sys, metaan.cli; print('metaan.multilevel' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
