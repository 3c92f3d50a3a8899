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
    assert err.startswith(f"metaan: error: {path}: row 2 (s1): the network is not connected")
    assert "{A, B} (rows 2, 3); {C, D} (rows 4, 5)" in err and "Traceback" not in err


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


def _reference_csv(tmp_path: Path, name: str, out: str) -> str:
    raw = json.loads((REFERENCE / f"{name}.json").read_text(encoding="utf-8"))
    path = tmp_path / out
    pd.DataFrame(raw["input"]).to_csv(path, index=False)
    return str(path)


def test_arms_given_as_means_sds_and_sizes_fit_as_in_python(tmp_path: Path) -> None:
    """Senn (2013): one row per arm with mean, SD and size, a three-arm trial among them."""
    path = _reference_csv(tmp_path, "senn2013_MD", "senn.csv")
    flags = ["--treatment", "treatment", "--mean", "mi", "--sd", "sdi", "--n", "ni"]
    args = [*flags, "--measure", "SMD", "--reference", "placebo", "--format", "json"]
    code, out, err = _run("network", path, *args)
    assert code == 0, err
    expected = metaan.fit_network(
        metaan.read_table(path),
        treatment="treatment",
        mean="mi",
        sd="sdi",
        n="ni",
        measure="SMD",
        reference="placebo",
        source=path,
    )
    assert max(expected.contrasts.narms) == 3
    assert json.loads(out) == json.loads(json.dumps(expected.to_dict()))


def test_comparisons_with_their_standard_errors_fit_as_in_python(tmp_path: Path) -> None:
    """Linde (2016): one row per comparison (lnOR, its SE, treat1, treat2), multi-arm
    trials giving all their comparisons."""
    path = _reference_csv(tmp_path, "linde2016_OR", "linde.csv")
    flags = ["--study", "id", "--treat1", "treat1", "--treat2", "treat2", "--yi", "lnOR"]
    args = [*flags, "--sei", "selnOR", "--measure", "OR", "--reference", "Placebo"]
    code, out, err = _run("network", path, *args, "--format", "json")
    assert code == 0, err
    expected = metaan.fit_network(
        metaan.read_table(path),
        study="id",
        yi="lnOR",
        sei="selnOR",
        measure="OR",
        reference="Placebo",
        source=path,
    )
    assert max(expected.contrasts.narms) >= 3
    assert json.loads(out) == json.loads(json.dumps(expected.to_dict()))


def test_small_values_turn_the_p_scores_round(arms_csv: str) -> None:
    scores = {}
    for direction in ("good", "bad"):
        args = [*ARM_FLAGS, "--measure", "OR", "--small-values", direction, "--format", "json"]
        code, out, err = _run("network", arms_csv, *args)
        assert code == 0, err
        scores[direction] = json.loads(out)["random"]["pscore"]
    for treatment, good in scores["good"].items():
        assert good + scores["bad"][treatment] == pytest.approx(1.0, rel=1e-12)
    assert max(scores["bad"], key=scores["bad"].__getitem__) == "grp_counseling"


def test_the_league_table_goes_out_as_json_with_its_numbers(arms_csv: str) -> None:
    args = [*ARM_FLAGS, "--measure", "OR", "--show", "league", "--format", "json"]
    code, out, err = _run("network", arms_csv, *args)
    assert code == 0, err
    assert json.loads(out) == json.loads(json.dumps(_fit(arms_csv).league_dict()))


BAD_NETWORKS = {
    "one arm": (
        "study,trt,xi,ni\ns1,A,3,20\ns1,B,5,20\ns2,A,3,20\n",
        [],
        "row 4 (s2): column study: study 's2' has one arm",
    ),
    "duplicate arms": (
        "study,trt,xi,ni\ns1,A,3,20\ns1,B,5,20\ns1,A,4,20\n",
        [],
        "row 4 (s1): column trt: treatment 'A' appears twice in study 's1' (rows 2 and 4)",
    ),
    "unknown reference": (
        "study,trt,xi,ni\ns1,A,3,20\ns1,B,5,20\n",
        ["--reference", "placebo"],
        "the reference treatment 'placebo' is not in the network; choose one of A, B",
    ),
    "reference left out": (
        "study,trt,xi,ni\ns1,A,3,20\ns1,B,5,20\ns2,A,3,20\ns2,C,,20\n",
        ["--reference", "C"],
        "row 5: the reference treatment 'C' is in the file (row 5) but not in the network",
    ),
    "disconnected": (
        "study,trt,xi,ni\ns1,A,3,20\ns1,B,5,20\ns2,C,3,20\ns2,D,6,20\n",
        [],
        "row 2 (s1): the network is not connected: its treatments fall into 2 sub-networks",
    ),
}


@pytest.mark.parametrize("case", list(BAD_NETWORKS))
def test_bad_arms_exit_2_naming_the_file_and_row(tmp_path: Path, case: str) -> None:
    text, extra, message = BAD_NETWORKS[case]
    path = tmp_path / "trials.csv"
    path.write_text(text)
    code, out, err = _run("network", str(path), *ARM_FLAGS, "--measure", "OR", *extra)
    assert code == 2 and out == ""
    assert err.startswith(f"metaan: error: {path}: {message}"), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_comparison_given_twice_exits_2_naming_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "comparisons.csv"
    path.write_text("study,treat1,treat2,yi,sei\ns1,A,B,0.1,0.2\ns2,A,B,0.3,0.2\ns1,B,A,-0.1,0.2\n")
    code, _, err = _run("network", str(path))
    assert code == 2 and "Traceback" not in err
    assert err.startswith(f"metaan: error: {path}: row 4 (s1): A vs B appears more than once")
