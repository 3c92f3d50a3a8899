"""Mantel-Haenszel and Peto pooling of 2x2 tables: invariants and bad input."""

from __future__ import annotations

import numpy as np
import pytest

import metaan

AI = np.array([4, 6, 3, 62, 33])
N1 = np.array([123, 306, 231, 13598, 5069])
CI = np.array([11, 29, 11, 248, 47])
N2 = np.array([139, 303, 220, 12867, 5808])


@pytest.mark.parametrize("measure", ["OR", "RR", "RD"])
def test_swapping_the_arms_negates_the_mantel_haenszel_estimate(measure: str) -> None:
    a = metaan.fit_mh(ai=AI, n1i=N1, ci=CI, n2i=N2, measure=measure)
    b = metaan.fit_mh(ai=CI, n1i=N2, ci=AI, n2i=N1, measure=measure)
    assert b.estimate == pytest.approx(-a.estimate, rel=1e-12)
    assert b.se == pytest.approx(a.se, rel=1e-12)


def test_the_peto_odds_ratio_of_one_table_is_observed_minus_expected_over_its_variance() -> None:
    # 10/50 events against 20/50: E = 30 * 50 / 100, V = 30 * 70 * (1/2)(1/2) / 99.
    peto = metaan.fit_peto(ai=[10], n1i=[50], ci=[20], n2i=[50])
    expected, variance = 15.0, 30 * 70 * 0.25 / 99
    assert peto.method == "PETO" and peto.is_ratio
    assert peto.estimate == pytest.approx((10 - expected) / variance, rel=1e-14)
    assert peto.se == pytest.approx(variance**-0.5, rel=1e-14)


def test_a_double_zero_table_is_kept_in_the_mh_estimate_but_left_out_of_q() -> None:
    ai = np.append(AI, 0)
    ci = np.append(CI, 0)
    n1 = np.append(N1, 50)
    n2 = np.append(N2, 50)
    with_zero = metaan.fit_mh(ai=ai, n1i=n1, ci=ci, n2i=n2)
    without = metaan.fit_mh(ai=AI, n1i=N1, ci=CI, n2i=N2)
    assert with_zero.estimate == pytest.approx(without.estimate, rel=1e-12)
    assert with_zero.QE == pytest.approx(without.QE, rel=1e-12)
    assert with_zero.QE_df == without.QE_df


def test_the_cmh_and_tarone_tests_are_reported_for_the_odds_ratio_only() -> None:
    odds = metaan.fit_mh(ai=AI, n1i=N1, ci=CI, n2i=N2, measure="OR").to_dict()
    risk = metaan.fit_mh(ai=AI, n1i=N1, ci=CI, n2i=N2, measure="RR").to_dict()
    assert odds["MH"] > 0 and 0 <= odds["MHp"] <= 1 and odds["TA"] >= 0
    assert "MH" not in risk


def test_events_above_the_group_size_name_the_study_and_column() -> None:
    with pytest.raises(metaan.InputError, match=r"row 2 \(B\): column ci: ci is 40 but n2i is 30"):
        metaan.fit_mh(ai=[1, 2], n1i=[10, 20], ci=[3, 40], n2i=[10, 30], labels=["A", "B"])


def test_tables_without_any_events_cannot_give_an_odds_ratio() -> None:
    with pytest.raises(metaan.NotEstimableError):
        metaan.fit_mh(ai=[0, 0], n1i=[10, 20], ci=[0, 0], n2i=[10, 30])
    with pytest.raises(metaan.NotEstimableError):
        metaan.fit_peto(ai=[0, 0], n1i=[10, 20], ci=[0, 0], n2i=[10, 30])


def test_tables_with_missing_counts_are_excluded_and_listed() -> None:
    res = metaan.fit_mh(
        ai=[4, np.nan, 3], n1i=[50, 40, 60], ci=[9, 8, 7], n2i=[50, 40, 60], labels=list("ABC")
    )
    assert res.k == 2
    assert [(e.row, e.study) for e in res.excluded] == [(2, "B")]


def test_a_mantel_haenszel_variance_of_zero_gives_estimate_0_and_no_test_as_metafor() -> None:
    import math

    import metaan

    # metafor's rma.mh: estimate 0, SE 0, z and p NA (no events anywhere for RD;
    # every participant an event for RR and RD).
    cases = [
        ([0, 0, 0], [10, 20, 30], [0, 0, 0], [10, 20, 30], "RD"),
        ([10, 20], [10, 20], [12, 25], [12, 25], "RR"),
        ([10, 20], [10, 20], [12, 25], [12, 25], "RD"),
    ]
    for ai, n1i, ci, n2i, measure in cases:
        res = metaan.fit_mh(ai=ai, n1i=n1i, ci=ci, n2i=n2i, measure=measure)
        assert (res.estimate, res.se) == (0.0, 0.0), measure
        assert math.isnan(res.stat) and math.isnan(res.pval), measure
        assert res.ci_lb == res.ci_ub == 0.0
        assert res.QE_df >= 0
        assert "variance is 0" in res.summary()
        assert res.to_dict()["notes"]
