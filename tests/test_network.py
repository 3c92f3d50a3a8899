"""Network meta-analysis (``metaan.fit_network``): what must hold beyond netmeta's numbers.

The conformance suite (test_network_conformance.py) checks every number against
netmeta; these tests check the properties a network fit must have whatever the data:
that arm-level and comparison-level input give one fit, that the order of rows and the
orientation of comparisons do not matter, that two treatments reduce to the univariate
engine, that the back-calculated indirect estimate is Bucher's in a triangle, and that
bad input is refused with its file, row and study named.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import metaan
from metaan.errors import InputError
from metaan.network import NetworkResult
from metaan.network._basic import likelihood_problem, likelihood_score
from metaan.network._collate import sort_treatments

REFERENCE = Path(__file__).parent / "reference" / "netmeta"
ARMS = {"study": "study", "treatment": "trt", "events": "xi", "n": "ni", "measure": "OR"}


def _case(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((REFERENCE / f"{name}.json").read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def smoking() -> pd.DataFrame:
    """Hasselblad (1998): smoking cessation, 24 studies, two three-arm trials."""
    return pd.DataFrame(_case("hasselblad1998_OR")["input"]).drop(columns=["id"])


def _same(a: NetworkResult, b: NetworkResult) -> None:
    assert a.treatments == b.treatments
    for model in ("common", "random"):
        for name in ("TE", "seTE", "pval", "pscore"):
            np.testing.assert_allclose(
                getattr(a.estimates(model), name),
                getattr(b.estimates(model), name),
                rtol=1e-12,
                atol=1e-14,
                err_msg=f"{model}.{name}",
            )
    assert a.tau2 == pytest.approx(b.tau2, rel=1e-12)
    assert a.Q == pytest.approx(b.Q, rel=1e-12)


@pytest.mark.parametrize("method", ["DL", "REML"])
def test_arms_and_the_comparisons_pairwise_builds_from_them_give_one_fit(
    smoking: pd.DataFrame, method: str
) -> None:
    from_arms = metaan.fit_network(smoking, **ARMS, method=method)
    comparisons = metaan.pairwise(
        smoking, measure="OR", study="study", treatment="trt", events="xi", n="ni"
    )
    from_comparisons = metaan.fit_network(comparisons, method=method)
    _same(from_arms, from_comparisons)
    assert from_comparisons.measure == "OR"
    assert from_arms.participants is not None
    np.testing.assert_allclose(from_arms.participants, from_comparisons.participants)


def test_the_order_of_the_rows_does_not_matter(smoking: pd.DataFrame) -> None:
    shuffled = smoking.sample(frac=1.0, random_state=7).reset_index(drop=True)
    _same(metaan.fit_network(smoking, **ARMS), metaan.fit_network(shuffled, **ARMS))


def test_turning_a_comparison_round_with_its_sign_changes_nothing() -> None:
    pw = pd.DataFrame(_case("linde2016_OR")["input"])
    turned = pw.copy()
    flip = np.arange(len(pw)) % 3 == 0
    turned.loc[flip, ["treat1", "treat2"]] = pw.loc[flip, ["treat2", "treat1"]].to_numpy()
    turned.loc[flip, "lnOR"] = -pw.loc[flip, "lnOR"]
    options = {"study": "id", "yi": "lnOR", "sei": "selnOR", "method": "REML"}
    _same(metaan.fit_network(pw, **options), metaan.fit_network(turned, **options))


@pytest.mark.parametrize("method", ["DL", "REML"])
def test_two_treatments_give_the_univariate_meta_analysis(method: str) -> None:
    """A network of two treatments and two-arm trials is a pairwise meta-analysis: the
    common effect is metaan.fit's EE, and netmeta's generalised DL and REML reduce to
    the univariate estimators."""
    case = _case("hasselblad1998_OR")
    pw = pd.DataFrame(case["pairwise"])
    two = pw[pw.treat1.isin(["no_contact", "ind_counseling"])]
    two = two[two.treat2.isin(["no_contact", "ind_counseling"])]
    two = two[two.groupby("studlab").studlab.transform("size") == 1]
    net = metaan.fit_network(two, study="studlab", yi="TE", sei="seTE", method=method)
    i, j = net.index("ind_counseling"), net.index("no_contact")
    sign = np.where(two.treat1 == "ind_counseling", 1.0, -1.0)
    yi, vi = sign * two.TE.to_numpy(), two.seTE.to_numpy() ** 2
    common = metaan.fit(yi=yi, vi=vi, method="EE")
    random = metaan.fit(yi=yi, vi=vi, method=method)
    assert net.common.TE[i, j] == pytest.approx(common.estimate, rel=1e-12)
    assert net.common.seTE[i, j] == pytest.approx(common.se, rel=1e-12)
    assert net.Q == pytest.approx(common.QE, rel=1e-12)
    assert net.tau2 == pytest.approx(random.tau2, rel=1e-9)
    assert net.random.TE[i, j] == pytest.approx(random.estimate, rel=1e-9)
    assert net.random.seTE[i, j] == pytest.approx(random.se, rel=1e-9)


def test_the_indirect_estimate_of_a_triangle_is_bucher_s() -> None:
    """One trial per side of a triangle A-B-C: the back-calculated indirect estimate of
    A vs B is (A vs C) - (B vs C), with the sum of their variances (Bucher 1997)."""
    pw = pd.DataFrame(
        {
            "study": ["s1", "s2", "s3"],
            "treat1": ["A", "A", "B"],
            "treat2": ["B", "C", "C"],
            "yi": [0.30, 0.55, 0.10],
            "vi": [0.04, 0.05, 0.06],
        }
    )
    res = metaan.fit_network(pw, reference="C")
    split = res.netsplit.common
    ab = res.netsplit.comparisons.index("A:B")
    assert split.direct[ab] == pytest.approx(0.30)
    assert split.indirect[ab] == pytest.approx(0.55 - 0.10, rel=1e-12)
    assert split.indirect_se[ab] ** 2 == pytest.approx(0.05 + 0.06, rel=1e-12)
    assert split.diff[ab] == pytest.approx(0.30 - 0.45, rel=1e-12)
    # The network estimate is never less precise than the direct one alone.
    assert res.common.seTE[0, 1] < np.sqrt(0.04)


def test_sidde_s_indirect_estimate_is_the_network_without_the_pair_s_studies(
    smoking: pd.DataFrame,
) -> None:
    res = metaan.fit_network(smoking, **ARMS, reference="no_contact")
    split = metaan.netsplit(res, "SIDDE")
    c = split.comparisons.index("self_help:no_contact")
    pairs = {"self_help", "no_contact"}
    with_pair = smoking.groupby("study").trt.agg(lambda t: pairs <= set(t))
    rest = smoking[~smoking.study.map(with_pair)]
    refit = metaan.fit_network(rest, **ARMS)
    i, j = refit.index("self_help"), refit.index("no_contact")
    assert split.random.indirect[c] == pytest.approx(refit.random.TE[i, j], rel=1e-12)
    assert split.common.indirect_se[c] == pytest.approx(refit.common.seTE[i, j], rel=1e-12)
    assert split.random.direct[c] == pytest.approx(res.netsplit.random.direct[c])


def test_a_star_network_has_no_indirect_evidence_to_test() -> None:
    pw = pd.DataFrame(
        {
            "study": ["s1", "s2", "s3", "s4"],
            "treat1": ["A", "A", "B", "B"],
            "treat2": ["P", "P", "P", "P"],
            "yi": [0.3, 0.4, 0.1, 0.2],
            "sei": [0.2, 0.25, 0.2, 0.3],
        }
    )
    res = metaan.fit_network(pw, reference="P")
    # Two designs but no loop: nothing can be inconsistent.
    assert res.decomposition is not None
    assert res.decomposition.df_between == 0 and res.decomposition.pval_between is None
    split = res.netsplit.random
    assert np.all(np.isnan(split.pval))
    ab = res.netsplit.comparisons.index("A:B")
    assert np.isnan(split.direct[ab])
    assert split.indirect[ab] == pytest.approx(res.random.TE[0, 1])


def test_p_scores_reverse_when_large_values_are_good(smoking: pd.DataFrame) -> None:
    good = metaan.fit_network(smoking, **ARMS, small_values="good")
    bad = metaan.fit_network(smoking, **ARMS, small_values="bad")
    np.testing.assert_allclose(good.random.pscore + bad.random.pscore, 1.0, rtol=1e-12)
    assert bad.treatments[int(np.argmax(bad.random.pscore))] == "grp_counseling"


def test_sucra_by_simulation_converges_to_the_p_score(smoking: pd.DataFrame) -> None:
    res = metaan.fit_network(smoking, **ARMS, small_values="bad")
    ranking = metaan.sucra(res, nsim=40_000, seed=3)
    # Monte Carlo error of a mean rank over 40,000 draws is well under 0.01.
    np.testing.assert_allclose(ranking.sucra, res.random.pscore, atol=0.01)
    np.testing.assert_allclose(ranking.probabilities.sum(axis=1), 1.0)
    np.testing.assert_allclose(ranking.probabilities.sum(axis=0), 1.0)
    again = metaan.sucra(res, nsim=40_000, seed=3)
    np.testing.assert_array_equal(ranking.probabilities, again.probabilities)


def test_reml_solves_its_score_equation_on_an_ill_conditioned_network() -> None:
    """Variances spread over twelve orders of magnitude, where an optimiser working on
    the likelihood's value can stop early: the bracketed search still finds the root."""
    pw = pd.DataFrame(_case("linde2016_OR")["input"])
    rng = np.random.default_rng(5)
    # One factor per study, so a multi-arm study's variances stay sums of arm variances.
    factor = dict(zip(pw.id.unique(), 10.0 ** rng.uniform(-3, 3, pw.id.nunique()), strict=True))
    pw["selnOR"] = pw.selnOR * pw.id.map(factor)
    res = metaan.fit_network(pw, study="id", yi="lnOR", sei="selnOR", method="REML")
    assert res.tau2 is not None and res.tau2 > 0
    problem = likelihood_problem(res.contrasts, res.index(res.reference))
    score, hessian = likelihood_score(problem, res.tau2, reml=True)
    assert hessian < 0 and abs(score / hessian) <= 1e-10 * res.tau2


def test_treatments_are_ordered_as_r_sorts_them() -> None:
    names = ["SSRI", "rMAO-A", "NRI", "NaSSa", "No contact CBT", "Remote CBT", "SNRI"]
    expected = ["NaSSa", "No contact CBT", "NRI", "Remote CBT", "rMAO-A", "SNRI", "SSRI"]
    assert list(sort_treatments(names)) == expected


def test_the_result_prints_tabulates_and_serialises(smoking: pd.DataFrame) -> None:
    res = metaan.fit_network(smoking, **ARMS, reference="no_contact", small_values="bad")
    assert repr(res).startswith("<NetworkResult DL k=24 m=28 n=4")
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.tau2 = 0.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.random.tau2 = 0.0  # type: ignore[misc]
    text = res.summary()
    assert "between designs" in text and "no_contact" in text
    frame = res.to_frame()
    assert len(frame) == 6 and list(frame.comparison)[-1] == "self_help:no_contact"
    league = res.league()
    assert league.loc["no_contact", "no_contact"] == "no_contact"
    # Odds ratios are shown, row versus column.
    assert league.loc["grp_counseling", "no_contact"].startswith(
        f"{np.exp(res.random.TE[0, 2]):.2f}"
    )
    document = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert document["decomposition"]["df_between"] == 7
    assert document["random"]["pval"][0][0] is None
    assert json.loads(json.dumps(res.league_dict(), allow_nan=False))["cells"][0][0] == (
        "grp_counseling"
    )


def test_the_parts_of_a_result_summarise_themselves(smoking: pd.DataFrame) -> None:
    res = metaan.fit_network(smoking, **ARMS, reference="no_contact", small_values="bad")
    est = res.random
    frame = est.to_frame()
    assert len(frame) == res.n * (res.n - 1)
    first = frame.iloc[0]
    i, j = res.index(first.treat1), res.index(first.treat2)
    assert first.TE == est.TE[i, j] and first.pval == est.pval[i, j]
    assert "P-score" in est.summary() and repr(est).startswith("<NetworkEstimates random")
    split = res.netsplit.summary()
    assert "direct - indirect" in split and "self_help:no_contact" in split
    ranking = metaan.sucra(res, nsim=500, seed=3).summary()
    assert ranking.splitlines()[2].startswith(res.treatments[int(np.argmax(res.random.pscore))])


def test_a_level_is_read_as_every_function_reads_it(smoking: pd.DataFrame) -> None:
    fraction = metaan.fit_network(smoking, **ARMS, level=0.9).to_dict()
    assert fraction == metaan.fit_network(smoking, **ARMS, level=90).to_dict()
    with pytest.raises(InputError, match="level is 1, which is ambiguous"):
        metaan.fit_network(smoking, **ARMS, level=1)


# --------------------------------------------------------------------------------------
# Bad input: one clear error naming the file, row and study
# --------------------------------------------------------------------------------------


def _arms(rows: list[tuple[str, str, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["study", "trt", "xi", "ni"])


def test_a_disconnected_network_names_its_sub_networks() -> None:
    data = _arms([("s1", "A", 5, 20), ("s1", "B", 7, 20), ("s2", "C", 5, 20), ("s2", "D", 9, 20)])
    with pytest.raises(
        InputError, match=r"2 sub-networks.*\{A, B\} \(rows 2, 3\); \{C, D\} \(rows 4, 5\)"
    ):
        metaan.fit_network(data, **ARMS, source="trials.csv")


def test_a_network_split_by_a_name_s_case_points_at_the_stray_rows() -> None:
    rows = [("s1", "A", 5, 20), ("s1", "placebo", 7, 20), ("s2", "B", 5, 20)]
    data = _arms([*rows, ("s2", "placebo", 9, 20), ("s3", "C", 4, 20), ("s3", "Placebo", 6, 20)])
    with pytest.raises(InputError) as caught:
        metaan.fit_network(data, **ARMS, source="trials.csv")
    assert str(caught.value).startswith("trials.csv: row 6 (s3): the network is not connected")
    assert "{C, Placebo} (rows 6, 7)" in str(caught.value)
    assert "'placebo' and 'Placebo' differ only in case or spacing" in str(caught.value)


def test_a_study_with_one_arm_is_refused_with_its_row() -> None:
    data = _arms([("s1", "A", 5, 20), ("s1", "B", 7, 20), ("s2", "A", 5, 20)])
    with pytest.raises(InputError, match=r"trials\.csv: row 4 \(s2\).*has one arm"):
        metaan.fit_network(data, **ARMS, source="trials.csv")


def test_a_treatment_twice_in_a_study_is_refused_with_both_rows() -> None:
    data = _arms([("s1", "A", 5, 20), ("s1", "B", 7, 20), ("s1", "A", 6, 20)])
    with pytest.raises(InputError, match=r"row 4 \(s1\).*'A' appears twice.*rows 2 and 4"):
        metaan.fit_network(data, **ARMS, source="trials.csv")


def test_an_unknown_reference_treatment_lists_the_treatments() -> None:
    data = _arms([("s1", "A", 5, 20), ("s1", "B", 7, 20)])
    with pytest.raises(InputError, match=r"'placebo' is not in the network.*one of A, B"):
        metaan.fit_network(data, **ARMS, reference="placebo")


def test_a_reference_differing_in_case_is_named_as_the_likely_one() -> None:
    data = _arms([("s1", "A", 5, 20), ("s1", "Placebo", 7, 20)])
    with pytest.raises(InputError, match=r"did you mean 'Placebo'\? choose one of A, Placebo"):
        metaan.fit_network(data, **ARMS, reference="placebo")


def test_a_reference_whose_arms_were_all_left_out_names_its_rows_and_why() -> None:
    data = _arms([("s1", "A", 5, 20), ("s1", "B", 7, 20), ("s2", "A", 5, 20)])
    data = pd.concat([data, _arms([("s2", "C", 0, 20)])], ignore_index=True)
    data.loc[3, "xi"] = np.nan
    with pytest.raises(InputError) as caught:
        metaan.fit_network(data, **ARMS, reference="C", source="trials.csv")
    text = str(caught.value)
    assert text.startswith("trials.csv: row 5: the reference treatment 'C' is in the file")
    assert "arm 'C' left out: the arm's events (xi) is missing" in text


def test_a_blank_treatment_is_refused_with_its_row() -> None:
    data = pd.DataFrame({"study": ["s1", "s1"], "trt": ["A", None], "xi": [5, 7], "ni": [20, 20]})
    with pytest.raises(InputError, match=r"row 3 \(s1\): column trt: the treatment is blank"):
        metaan.fit_network(data, **ARMS)


def test_an_incomplete_multi_arm_study_names_its_rows() -> None:
    pw = pd.DataFrame(
        {"study": ["s1", "s1", "s2"], "treat1": ["A", "A", "B"], "treat2": ["B", "C", "C"]}
        | {"yi": [0.1, 0.2, 0.3], "vi": [0.1, 0.1, 0.1]}
    )
    with pytest.raises(InputError, match=r"study 's1' compares A, B, C in 2 rows \(2, 3\)"):
        metaan.fit_network(pw, source="c.csv")


def test_an_inconsistent_multi_arm_study_is_refused() -> None:
    pw = pd.DataFrame(
        {"study": ["s1"] * 3, "treat1": ["A", "A", "B"], "treat2": ["B", "C", "C"]}
        | {"yi": [0.1, 0.5, 0.1], "vi": [0.1, 0.1, 0.1]}
    )
    with pytest.raises(InputError, match=r"do not fit together .*rows 2, 3, 4"):
        metaan.fit_network(pw)


def test_a_missing_arm_is_left_out_and_listed(smoking: pd.DataFrame) -> None:
    data = smoking.astype({"xi": float}).copy()
    row = int(np.flatnonzero((data.study == 2) & (data.trt == "grp_counseling"))[0])
    data.loc[row, "xi"] = np.nan
    res = metaan.fit_network(data, **ARMS)
    assert res.k == 24 and res.m == 26
    assert any("grp_counseling" in e.reason and e.row == row + 2 for e in res.excluded)


def test_double_zero_comparisons_are_left_out_unless_allstudies_keeps_them() -> None:
    rows = [("s1", "A", 0, 20), ("s1", "B", 0, 20), ("s2", "A", 3, 20), ("s2", "B", 6, 20)]
    data = _arms([*rows, ("s3", "B", 4, 20), ("s3", "C", 7, 20)])
    res = metaan.fit_network(data, **ARMS)
    assert res.k == 2 and any("no events in both arms" in e.reason for e in res.excluded)
    kept = metaan.fit_network(data, **ARMS, allstudies=True)
    assert kept.k == 3
