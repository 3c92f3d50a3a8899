"""``metaan network`` and the network kinds of ``metaan plot`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import metaan
from metaan.cli import main

REFERENCE = Path(__file__).parent / "reference" / "netmeta"
ARM_FLAGS = ["--study", "study", "--treatment", "trt", "--events", "xi", "--n", "ni"]


@pytest.fixture(scope="module")
def arms_csv(tmp_path_factory: pytest.TempPathFactory) -> str:
    raw = json.loads((REFERENCE / "hasselblad1998_OR.json").read_text(encoding="utf-8"))
    path = tmp_path_factory.mktemp("network") / "smoking.csv"
    pd.DataFrame(raw["input"]).to_csv(path, index=False)
    return str(path)


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def _fit(arms_csv: str, **kw: object) -> metaan.NetworkResult:
    table = metaan.read_table(arms_csv)
    return metaan.fit_network(
        table,
        study="study",
        treatment="trt",
        events="xi",
        n="ni",
        measure="OR",
        **kw,  # type: ignore[arg-type]
    )


def test_the_summary_names_the_model_and_every_treatment(arms_csv: str) -> None:
    code, out, err = _run("network", arms_csv, *ARM_FLAGS, "--measure", "OR")
    assert code == 0, err
    assert "graph-theoretical method" in out and "between designs" in out
    assert "Every treatment versus grp_counseling" in out


def test_json_is_the_result_s_dictionary(arms_csv: str) -> None:
    flags = ["--measure", "OR", "--method", "REML", "--reference", "no_contact"]
    code, out, err = _run("network", arms_csv, *ARM_FLAGS, *flags, "--format", "json")
    assert code == 0, err
    expected = _fit(arms_csv, method="REML", reference="no_contact").to_dict()
    assert json.loads(out) == json.loads(json.dumps(expected))


def test_the_league_table_goes_out_as_csv(arms_csv: str) -> None:
    flags = ["--measure", "OR", "--show", "league", "--format", "csv", "--small-values", "bad"]
    code, out, err = _run("network", arms_csv, *ARM_FLAGS, *flags)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "treatment,grp_counseling,ind_counseling,no_contact,self_help"
    league = _fit(arms_csv, small_values="bad").league()
    assert lines[1].split(",")[0] == "grp_counseling"
    assert f'"{league.iloc[0, 1]}"' in lines[1]


@pytest.mark.parametrize("show", ["netsplit", "ranking"])
def test_netsplit_and_ranking_print_as_tables_csv_and_json(arms_csv: str, show: str) -> None:
    for fmt in ("table", "csv", "json"):
        extra = ["--nsim", "500"] if show == "ranking" else []
        args = [*ARM_FLAGS, "--measure", "OR", "--show", show, "--format", fmt, *extra]
        code, out, err = _run("network", arms_csv, *args)
        assert code == 0, err
        if fmt == "json":
            json.loads(out)


def test_a_disconnected_network_exits_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "apart.csv"
    path.write_text("study,trt,xi,ni\ns1,A,3,20\ns1,B,5,20\ns2,C,3,20\ns2,D,6,20\n")
    code, _, err = _run("network", str(path), *ARM_FLAGS, "--measure", "OR")
    assert code == 2
    assert err.startswith(f"metaan: error: {path}: the network is not connected")
    assert "{A, B}; {C, D}" in err and "Traceback" not in err


def test_an_unknown_column_exits_2_naming_it(arms_csv: str) -> None:
    flags = ["--treatment", "drug", "--events", "xi", "--n", "ni", "--measure", "OR"]
    code, _, err = _run("network", arms_csv, *flags)
    assert code == 2 and "column drug: no such column" in err


@pytest.mark.parametrize("kind", ["network", "league", "netsplit", "netforest"])
def test_metaan_plot_draws_the_network_kinds(arms_csv: str, kind: str, tmp_path: Path) -> None:
    out = tmp_path / f"{kind}.svg"
    code, _, err = _run("plot", kind, arms_csv, *ARM_FLAGS, "--measure", "OR", "-o", str(out))
    assert code == 0, err
    first = out.read_bytes()
    assert first.startswith(b"<?xml")
    code, _, err = _run("plot", kind, arms_csv, *ARM_FLAGS, "--measure", "OR", "-o", str(out))
    assert out.read_bytes() == first
