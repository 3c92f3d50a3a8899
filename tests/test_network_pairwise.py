"""``metaan.pairwise``: comparisons from arms with the formulas and zero-cell rule of
R's meta::pairwise() (meta 8.2). The OR and MD cases are checked number for number
against netmeta in test_network_conformance.py; here each measure is checked against
meta's formulas written out by hand for one study."""

from __future__ import annotations

import math

import pandas as pd
import pytest

import metaan
from metaan.errors import InputError

THREE_ARMS = pd.DataFrame(
    {
        "study": ["T", "T", "T", "U", "U"],
        "arm": ["placebo", "low", "high", "placebo", "high"],
        "events": [0, 4, 9, 5, 11],
        "n": [30, 31, 29, 40, 42],
        "mean": [22.0, 18.5, 16.0, 21.0, 15.5],
        "sd": [6.0, 7.0, 6.5, 5.5, 6.1],
    }
)


def _binary(measure: str, **kw: object) -> pd.DataFrame:
    return metaan.pairwise(
        THREE_ARMS,
        measure=measure,
        study="study",
        treatment="arm",
        events="events",
        n="n",
        **kw,  # type: ignore[arg-type]
    )


def test_pairs_follow_the_arms_in_the_order_of_the_file() -> None:
    pw = _binary("OR")
    assert list(zip(pw.study, pw.treat1, pw.treat2, strict=True)) == [
        ("T", "placebo", "low"),
        ("T", "placebo", "high"),
        ("T", "low", "high"),
        ("U", "placebo", "high"),
    ]
    assert list(pw.row1) == [2, 2, 3, 5] and list(pw.row2) == [3, 4, 4, 6]


def test_a_zero_arm_puts_the_increment_in_every_comparison_of_its_study() -> None:
    pw = _binary("OR")
    assert list(pw.incr) == [0.5, 0.5, 0.5, 0.0]
    # low vs high has no zero cell, yet gets the increment as its study does (meta).
    a, b, c, d = 4.5, 31 - 4 + 0.5, 9.5, 29 - 9 + 0.5
    assert pw.yi[2] == pytest.approx(math.log(a * d / (b * c)), rel=1e-13)
    assert pw.sei[2] == pytest.approx(math.sqrt(1 / a + 1 / b + 1 / c + 1 / d), rel=1e-13)


def test_the_risk_ratio_follows_meta_s_formula() -> None:
    pw = _binary("RR")
    e1, n1, e2, n2, i = 0, 30, 4, 31, 0.5
    assert pw.yi[0] == pytest.approx(math.log((e1 + i) / (n1 + i) / ((e2 + i) / (n2 + i))))
    var = 1 / (e1 + i) - 1 / (n1 + i) + 1 / (e2 + i) - 1 / (n2 + i)
    assert pw.vi[0] == pytest.approx(var, rel=1e-13)
    e1, n1, e2, n2 = 5, 40, 11, 42
    assert pw.yi[3] == pytest.approx(math.log(e1 / n1 / (e2 / n2)), rel=1e-13)
    assert pw.vi[3] == pytest.approx(1 / e1 - 1 / n1 + 1 / e2 - 1 / n2, rel=1e-13)


def test_the_risk_difference_takes_the_increment_only_in_its_variance() -> None:
    pw = _binary("RD")
    e1, n1, e2, n2, i = 0, 30, 4, 31, 0.5
    assert pw.yi[0] == pytest.approx(e1 / n1 - e2 / n2, rel=1e-13)
    var = (e1 + i) * (n1 - e1 + i) / (n1 + 2 * i) ** 3 + (e2 + i) * (n2 - e2 + i) / (
        n2 + 2 * i
    ) ** 3
    assert pw.vi[0] == pytest.approx(var, rel=1e-13)


def test_the_smd_is_cohen_s_d_with_the_sd_pooled_over_every_arm() -> None:
    pw = metaan.pairwise(
        THREE_ARMS, measure="SMD", study="study", treatment="arm", mean="mean", sd="sd", n="n"
    )
    n, s = [30, 31, 29], [6.0, 7.0, 6.5]
    pooled = math.sqrt(sum((k - 1) * v**2 for k, v in zip(n, s, strict=True)) / (sum(n) - 3))
    d = (22.0 - 18.5) / pooled
    assert pw.yi[0] == pytest.approx(d, rel=1e-13)
    assert pw.vi[0] == pytest.approx(1 / 30 + 1 / 31 + d**2 / (2 * 90), rel=1e-13)
    # A two-arm study pools its two arms, with its own total.
    within = math.sqrt((39 * 5.5**2 + 41 * 6.1**2) / 80)
    d2 = (21.0 - 15.5) / within
    assert pw.yi[3] == pytest.approx(d2, rel=1e-13)
    assert pw.vi[3] == pytest.approx(1 / 40 + 1 / 42 + d2**2 / (2 * 82), rel=1e-13)


def test_the_mean_difference_does_not_pool_the_sds() -> None:
    pw = metaan.pairwise(
        THREE_ARMS, measure="MD", study="study", treatment="arm", mean="mean", sd="sd", n="n"
    )
    assert pw.yi[0] == pytest.approx(3.5)
    assert pw.vi[0] == pytest.approx(36 / 30 + 49 / 31, rel=1e-13)


def test_a_measure_needs_its_columns() -> None:
    with pytest.raises(InputError, match="SMD from arms needs the column of mean"):
        metaan.pairwise(THREE_ARMS, measure="SMD", study="study", treatment="arm", n="n")


def test_more_events_than_participants_is_refused_with_the_row() -> None:
    bad = THREE_ARMS.assign(events=[0, 40, 9, 5, 11])
    with pytest.raises(InputError, match=r"row 3 \(T\): column events: events is 40"):
        metaan.pairwise(
            bad,
            measure="OR",
            study="study",
            treatment="arm",
            events="events",
            n="n",
            source="arms.csv",
        )


def test_text_in_a_number_column_is_refused_with_the_row() -> None:
    bad = THREE_ARMS.astype({"n": object})
    bad.loc[4, "n"] = "n/a?"
    with pytest.raises(InputError, match=r"row 6 \(U\): column n: n is 'n/a\?', not a number"):
        metaan.pairwise(bad, measure="OR", study="study", treatment="arm", events="events", n="n")


FOUR_ARMS = pd.DataFrame(
    {
        "study": ["T", "T", "T", "T", "U", "U"],
        "arm": ["placebo", "low", "mid", "high", "placebo", "high"],
        "mean": [22.0, 18.5, None, 16.0, 21.0, 15.5],
        "sd": [6.0, 7.0, 9.0, 6.5, 5.5, 6.1],
        "n": [30, 31, 33, 29, 40, 42],
    }
)


def _smd(data: pd.DataFrame) -> pd.DataFrame:
    return metaan.pairwise(
        data, measure="SMD", study="study", treatment="arm", mean="mean", sd="sd", n="n"
    )


def test_an_arm_without_a_mean_still_counts_in_the_smd_s_pooled_sd_and_total() -> None:
    """meta's pairwise(): the SD is pooled over the arms giving n and SD once more than
    two arms give each of n, mean and SD, and the study's total counts every arm with
    a number, so the arm without a mean still weighs in."""
    pw = _smd(FOUR_ARMS)
    n, s = [30, 31, 33, 29], [6.0, 7.0, 9.0, 6.5]
    pooled = math.sqrt(sum((k - 1) * v**2 for k, v in zip(n, s, strict=True)) / (sum(n) - 4))
    d = (22.0 - 18.5) / pooled
    first = pw[(pw.treat1 == "placebo") & (pw.treat2 == "low")].iloc[0]
    assert first.yi == pytest.approx(d, rel=1e-13)
    assert first.vi == pytest.approx(1 / 30 + 1 / 31 + d**2 / (2 * sum(n)), rel=1e-13)
    assert not (pw.treat1 == "mid").any() and not (pw.treat2 == "mid").any()
    assert [e.row for e in pw.attrs["excluded"]] == [4]


def test_a_smd_study_with_an_arm_of_unknown_size_is_left_out_with_the_reason() -> None:
    """meta's pairwise() sums the study's arm sizes for the SMD's variance; an arm with
    a mean and SD but no n makes that sum, and every SE of the study, missing."""
    data = FOUR_ARMS.astype({"n": float}).assign(mean=[22.0, 18.5, 17.0, 16.0, 21.0, 15.5])
    data.loc[2, "n"] = None
    pw = _smd(data)
    in_t = pw[pw.study == "T"]
    assert len(in_t) == 3 and in_t.yi.isna().all()
    assert all("has no size (n)" in r for r in in_t.exclusion_reason)
    assert pw[pw.study == "U"].exclusion_reason.isna().all()


def test_a_double_zero_comparison_is_left_out_without_an_increment() -> None:
    """meta's pairwise(): no events in both arms carry no information on the OR; the
    comparison has no effect and, as meta reports it, no increment. Its study's other
    comparisons keep the increment; with allstudies it is kept, with the increment."""
    data = THREE_ARMS.assign(events=[0, 0, 9, 5, 11])
    pw = metaan.pairwise(data, measure="OR", study="study", treatment="arm", events="events", n="n")
    assert math.isnan(pw.yi[0]) and pw.incr[0] == 0.0
    assert "no events in both arms" in pw.exclusion_reason[0]
    assert list(pw.incr[1:]) == [0.5, 0.5, 0.0]
    kept = metaan.pairwise(
        data,
        measure="OR",
        study="study",
        treatment="arm",
        events="events",
        n="n",
        allstudies=True,
    )
    assert kept.yi[0] == pytest.approx(math.log(31.5 / 30.5), rel=1e-13) and kept.incr[0] == 0.5
    assert kept.vi[0] == pytest.approx(2 / 0.5 + 1 / 30.5 + 1 / 31.5, rel=1e-13)
