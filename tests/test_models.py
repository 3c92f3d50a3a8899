"""Invariants of the inverse-variance and random-effects fits."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import metaan
from metaan.estimators import WLS, estimate_tau2
from metaan.models import METHODS
from metaan.report.selections import psilocybin_main_analysis

BCG_YI = np.array(
    [-0.8893, -1.5854, -1.3481, -1.4416, -0.2175, -0.7861, -1.6209, 0.0120, -0.4694, -1.3713,
     -0.3394, 0.4459, -0.0173]
)  # fmt: skip
BCG_VI = np.array(
    [0.3256, 0.1946, 0.4154, 0.0200, 0.0512, 0.0069, 0.2230, 0.0040, 0.0564, 0.0730, 0.0124,
     0.5325, 0.0714]
)  # fmt: skip


@pytest.mark.parametrize("method", METHODS)
def test_reordering_studies_leaves_every_number_unchanged(method: str) -> None:
    order = np.random.default_rng(7).permutation(BCG_YI.size)
    a = metaan.fit(yi=BCG_YI, vi=BCG_VI, method=method).to_dict()
    b = metaan.fit(yi=BCG_YI[order], vi=BCG_VI[order], method=method).to_dict()
    for key, value in a.items():
        if isinstance(value, float):
            assert b[key] == pytest.approx(value, rel=1e-10), key


# Sidik-Jonkman is positive by construction (a multiple of the initial variance).
@pytest.mark.parametrize("method", [m for m in METHODS if m not in {"EE", "SJ"}])
def test_tau2_is_zero_not_negative_for_homogeneous_studies(method: str) -> None:
    vi = np.array([0.1, 0.2, 0.15, 0.3, 0.12])
    yi = np.array([0.50, 0.51, 0.49, 0.50, 0.505])
    res = metaan.fit(yi=yi, vi=vi, method=method)
    assert res.tau2 == 0.0
    fe = metaan.fit(yi=yi, vi=vi, method="EE")
    assert res.estimate == pytest.approx(fe.estimate, rel=1e-14)
    assert res.tau2_ci is not None
    assert res.tau2_ci == (0.0, res.tau2_ci[1])


def test_the_iterative_estimators_solve_their_equations_on_a_thousand_random_data_sets() -> None:
    # Fisher scoring fails on a fraction of such data; a bracketed search must not.
    rng = np.random.default_rng(20261122)
    for _ in range(1000):
        k = int(rng.integers(2, 40))
        vi = rng.uniform(0.001, 2.0, k) ** 2
        yi = rng.normal(0.0, np.sqrt(vi + rng.uniform(0, 3)), k)
        reml = estimate_tau2(yi, vi, "REML").tau2
        ml = estimate_tau2(yi, vi, "ML").tau2
        pm = estimate_tau2(yi, vi, "PM").tau2
        assert reml >= 0 and ml >= 0 and pm >= 0
        if reml > 0:
            fit = WLS(yi, 1 / (vi + reml), None)
            score = fit.ypp_y() - fit.tr_p()
            assert abs(score) <= 1e-9 * fit.tr_p()
        if pm > 0:
            q = WLS(yi, 1 / (vi + pm), None).rss()
            assert q == pytest.approx(k - 1, rel=1e-12)


def test_knha_uses_t_with_k_minus_1_df_and_widens_the_interval_with_a_t_quantile() -> None:
    z = metaan.fit(yi=BCG_YI, vi=BCG_VI, test="z")
    t = metaan.fit(yi=BCG_YI, vi=BCG_VI, test="knha")
    assert t.df == BCG_YI.size - 1 and z.df is None
    assert t.estimate == z.estimate
    scale = t.se / z.se
    assert (t.ci_ub - t.estimate) / t.se > (z.ci_ub - z.estimate) / z.se
    assert scale > 0


def test_a_90_percent_interval_is_narrower_than_a_95_percent_one_and_level_accepts_fractions() -> (
    None
):
    a = metaan.fit(yi=BCG_YI, vi=BCG_VI, level=90)
    b = metaan.fit(yi=BCG_YI, vi=BCG_VI, level=0.95)
    assert b.level == 95.0
    assert a.ci_ub - a.ci_lb < b.ci_ub - b.ci_lb
    assert a.tau2_ci is not None and b.tau2_ci is not None
    assert a.tau2_ci[1] - a.tau2_ci[0] < b.tau2_ci[1] - b.tau2_ci[0]


def test_the_prediction_interval_contains_the_confidence_interval() -> None:
    res = metaan.fit(yi=BCG_YI, vi=BCG_VI)
    assert res.pi_lb < res.ci_lb < res.estimate < res.ci_ub < res.pi_ub
    assert res.tau2 is not None
    half = 1.959963984540054 * math.sqrt(res.se**2 + res.tau2)
    assert res.pi_ub - res.estimate == pytest.approx(half, rel=1e-12)


def test_the_common_effect_model_has_no_tau2_ci_and_its_prediction_interval_is_the_ci() -> None:
    res = metaan.fit(yi=BCG_YI, vi=BCG_VI, method="EE")
    assert res.tau2 == 0 and res.se_tau2 is None and res.tau2_ci is None
    assert (res.pi_lb, res.pi_ub) == (res.ci_lb, res.ci_ub)


def test_rows_with_missing_values_are_excluded_and_listed_with_their_reason() -> None:
    table = pd.DataFrame(
        {
            "study": ["A", "B", "C", "D"],
            "yi": [0.1, np.nan, 0.3, 0.2],
            "vi": [0.01, 0.02, np.nan, 0.03],
        }
    )
    res = metaan.fit(table)
    assert res.k == 2
    assert [(e.row, e.study) for e in res.excluded] == [(3, "B"), (4, "C")]
    assert "yi is missing" in res.excluded[0].reason
    assert "vi is missing" in res.excluded[1].reason
    assert [e["study"] for e in res.to_dict()["excluded"]] == ["B", "C"]


def test_an_effect_table_reason_for_exclusion_is_carried_into_the_fit() -> None:
    table = pd.DataFrame(
        {
            "study": ["A", "B", "C"],
            "yi": [0.1, np.nan, 0.3],
            "vi": [0.01, np.nan, 0.02],
            "exclusion_reason": [None, "n2i is missing", None],
        }
    )
    res = metaan.fit(table, method="DL")
    assert res.excluded[0].reason == "n2i is missing"


@pytest.mark.parametrize("bad", [0.0, -0.5])
def test_a_sampling_variance_that_is_not_positive_is_an_error_naming_the_row(bad: float) -> None:
    table = pd.DataFrame({"study": ["A", "B", "C"], "yi": [0.1, 0.2, 0.3], "vi": [0.1, bad, 0.2]})
    with pytest.raises(metaan.InputError, match=r"row 3 \(B\).*vi.*must be > 0"):
        metaan.fit(table, source="x.csv")


def test_a_random_effects_model_with_one_study_is_refused_with_a_clear_message() -> None:
    with pytest.raises(metaan.InputError, match="at least 2 studies"):
        metaan.fit(yi=[0.3], vi=[0.1])
    one = metaan.fit(yi=[0.3], vi=[0.1], method="EE")
    assert one.estimate == 0.3 and one.k == 1


def test_an_unknown_method_or_test_lists_the_choices() -> None:
    with pytest.raises(metaan.InputError, match="REML"):
        metaan.fit(yi=BCG_YI, vi=BCG_VI, method="FOO")
    with pytest.raises(metaan.InputError, match="knha"):
        metaan.fit(yi=BCG_YI, vi=BCG_VI, test="t")


def test_standard_errors_can_be_given_instead_of_variances() -> None:
    a = metaan.fit(yi=BCG_YI, vi=BCG_VI)
    b = metaan.fit(yi=BCG_YI, sei=np.sqrt(BCG_VI))
    assert b.estimate == pytest.approx(a.estimate, rel=1e-13)


def test_the_result_is_frozen_prints_in_one_line_and_exports_to_dict_and_frame() -> None:
    res = metaan.fit(yi=BCG_YI, vi=BCG_VI, measure="OR")
    with pytest.raises(AttributeError):
        res.estimate = 0.0  # type: ignore[misc]
    assert "\n" not in repr(res) and repr(res).startswith("<MetaResult REML k=13")
    d = res.to_dict()
    assert list(d)[:5] == ["measure", "method", "test", "level", "k"]
    assert len(d["tau2_ci"]) == 2 and d["excluded"] == []
    frame = res.to_frame()
    assert list(frame["weight"].round(6)) == list(np.round(res.weights, 6))
    assert frame["weight"].sum() == pytest.approx(100.0)
    text = res.summary()
    assert "restricted maximum likelihood" in text and "exponentiated" in text


def test_a_fit_of_100000_studies_uses_no_k_by_k_matrix() -> None:
    rng = np.random.default_rng(3)
    vi = rng.uniform(0.01, 0.1, 100_000)
    yi = rng.normal(0.2, np.sqrt(vi + 0.02))
    res = metaan.fit(yi=yi, vi=vi)
    assert res.tau2 == pytest.approx(0.02, rel=0.1)


def test_a_negative_standard_error_is_an_error_not_a_squared_variance() -> None:
    with pytest.raises(metaan.InputError, match=r"row 2: column sei: sei is -0\.2; a standard"):
        metaan.fit(yi=[0.1, 0.2, 0.3], sei=[0.1, -0.2, 0.1])


def test_text_in_the_yi_column_of_a_table_is_an_error_naming_row_study_and_column() -> None:
    table = pd.DataFrame({"study": ["A", "B", "C"], "yi": [0.1, "x", 0.2], "vi": [0.1] * 3})
    with pytest.raises(metaan.InputError, match=r"row 3 \(B\): column yi: yi is 'x'"):
        metaan.fit(table)


def test_both_published_prediction_intervals_of_the_psilocybin_analysis_are_reproduced() -> None:
    # Published (R meta, via the SYPRES guide): [-1.7183, -0.0879]; metafor 3.8's
    # predict() on the same knha fit: [-1.7358, -0.0703] (shared/data REFERENCE_RESULTS).
    studies = metaan.load_studies(Path(__file__).resolve().parent.parent / "studies")
    main = psilocybin_main_analysis(studies.frame)
    kw = {"sei": main["smd_se"], "method": "REML", "test": "knha"}
    as_metafor = metaan.fit(yi=main["smd"], **kw)
    as_meta = metaan.fit(yi=main["smd"], prediction="meta", **kw)
    assert (round(as_metafor.pi_lb, 4), round(as_metafor.pi_ub, 4)) == (-1.7358, -0.0703)
    assert (round(as_meta.pi_lb, 4), round(as_meta.pi_ub, 4)) == (-1.7183, -0.0879)
    assert as_meta.estimate == as_metafor.estimate and as_meta.ci_lb == as_metafor.ci_lb
    assert as_meta.to_dict()["prediction"] == "meta"


def test_the_meta_convention_does_not_change_a_common_effect_model() -> None:
    a = metaan.fit(yi=BCG_YI, vi=BCG_VI, method="EE", prediction="meta")
    assert (a.pi_lb, a.pi_ub) == (a.ci_lb, a.ci_ub)
    with pytest.raises(metaan.InputError, match="metafor, meta"):
        metaan.fit(yi=BCG_YI, vi=BCG_VI, prediction="other")


def test_the_q_profile_interval_is_computed_when_first_read_and_then_kept() -> None:
    res = metaan.fit(yi=BCG_YI, vi=BCG_VI)
    assert "_heterogeneity_ci" not in vars(res)
    first = res.tau2_ci
    assert "_heterogeneity_ci" in vars(res)
    assert res.tau2_ci is first
    direct = metaan.q_profile_ci(yi=BCG_YI, vi=BCG_VI)
    assert first == direct.tau2 and res.I2_ci == direct.I2
    assert res.tau_ci == direct.tau and res.H2_ci == direct.H2
    assert metaan.fit(yi=BCG_YI, vi=BCG_VI, method="EE").tau2_ci is None
