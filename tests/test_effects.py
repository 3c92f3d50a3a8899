"""Invariants and hand computations for metaan.effects (metafor agreement is in
test_effects_conformance.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from metaan._args import study_labels
from metaan.effects import (
    MEASURES,
    check_measure,
    escalc,
    fisher_z,
    from_confidence_interval,
    from_standard_error,
    hedges_correction,
    log_odds_ratio,
    log_odds_ratio_to_smd,
    log_risk_ratio,
    logit_proportion,
    mean_difference,
    measure_name,
    raw_columns,
    risk_difference,
    sd_from_se,
    se_from_sd,
    smd_to_log_odds_ratio,
    standardized_mean_difference,
    zero_cell_correction,
)
from metaan.errors import InputError
from tolerance import assert_close

# ----------------------------------------------------------------------------- helpers


def counts_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "study": ["Alpha 2001", "Beta 2003", "Gamma 2005", "Delta 2007"],
            "e1": [4, 0, 12, 0],
            "t1": [120, 50, 80, 40],
            "e2": [11, 3, 10, 0],
            "t2": [130, 55, 85, 45],
        }
    )


def means_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "author": ["Ames", "Bode", "Cruz"],
            "mean_t": [10.0, 5.5, -2.0],
            "sd_t": [3.0, 2.0, 1.5],
            "n_t": [20, 35, 12],
            "mean_c": [8.0, 6.0, -1.0],
            "sd_c": [4.0, 2.5, 1.8],
            "n_c": [25, 30, 14],
        }
    )


COUNTS = {"ai": "e1", "n1i": "t1", "ci": "e2", "n2i": "t2"}
MEANS = {
    "m1i": "mean_t",
    "sd1i": "sd_t",
    "n1i": "n_t",
    "m2i": "mean_c",
    "sd2i": "sd_c",
    "n2i": "n_c",
}


# ----------------------------------------------------------------------------- SMD and MD


def test_hedges_g_matches_a_hand_computation() -> None:
    n1, n2, m1, m2, s1, s2 = 20, 25, 10.0, 8.0, 3.0, 4.0
    df = n1 + n2 - 2
    pooled = math.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / df)
    j = math.gamma(df / 2) / (math.sqrt(df / 2) * math.gamma((df - 1) / 2))
    g = j * (m1 - m2) / pooled
    v = 1 / n1 + 1 / n2 + g**2 / (2 * (n1 + n2))
    yi, vi = standardized_mean_difference(m1, s1, n1, m2, s2, n2)
    assert_close(yi, g, "g")
    assert_close(vi, v, "var(g)")


def test_the_exact_correction_is_close_to_the_usual_approximation_for_large_samples() -> None:
    m = np.array([50.0, 200.0, 10_000.0])
    # the approximation's error is of order 1/m^2
    assert np.all(np.abs(hedges_correction(m) - (1 - 3 / (4 * m - 1))) < 0.1 / m**2)
    assert hedges_correction(1e6) < 1 and hedges_correction(1e6) > 1 - 1e-6


def test_the_exact_correction_does_not_overflow_for_huge_samples() -> None:
    assert np.isfinite(hedges_correction(1e9))


def test_the_correction_is_undefined_with_one_degree_of_freedom_or_fewer() -> None:
    assert np.isnan(hedges_correction([0.0, 1.0])).all()
    assert hedges_correction(2.0) > 0


def test_swapping_groups_negates_the_smd_and_keeps_its_variance() -> None:
    args = (10.0, 3.0, 20, 8.0, 4.0, 25)
    forward = standardized_mean_difference(*args)
    backward = standardized_mean_difference(*args[3:], *args[:3])
    assert_close(backward.yi, -forward.yi, "swapped g")
    assert_close(backward.vi, forward.vi, "swapped var")


def test_the_mean_difference_uses_the_heteroscedastic_variance() -> None:
    yi, vi = mean_difference(55, 47, 155, 75, 64, 156)
    assert_close(yi, -20.0, "MD")
    assert_close(vi, 47**2 / 155 + 64**2 / 156, "var(MD)")


def test_change_from_baseline_means_use_the_same_formulas_as_endpoints() -> None:
    # changes are often negative; the formulas do not care what the means are
    change = means_table()
    result = escalc(change, "SMD", **MEANS)
    direct = standardized_mean_difference(-2.0, 1.5, 12, -1.0, 1.8, 14)
    assert_close(result["yi"].iloc[2], direct.yi, "SMD of changes")
    shifted = change.assign(mean_t=change["mean_t"] + 100, mean_c=change["mean_c"] + 100)
    assert_close(
        escalc(shifted, "MD", **MEANS)["yi"], escalc(change, "MD", **MEANS)["yi"], "MD shift"
    )


def test_an_smd_needs_more_than_three_participants() -> None:
    table = pd.DataFrame(
        {"m1i": [1.0], "sd1i": [1.0], "n1i": [2], "m2i": [0.0], "sd2i": [1.0], "n2i": [1]}
    )
    result = escalc(table, "SMD", **{k: k for k in table.columns})
    assert np.isnan(result["yi"].iloc[0]) and np.isnan(result["vi"].iloc[0])
    assert "n1i + n2i is 3" in result["exclusion_reason"].iloc[0]


# ----------------------------------------------------------------------------- 2x2 tables


def test_swapping_arms_negates_the_log_odds_ratio() -> None:
    a, b, c, d = np.array([4, 10]), np.array([119, 40]), np.array([11, 3]), np.array([128, 50])
    forward = log_odds_ratio(a, b, c, d)
    backward = log_odds_ratio(c, d, a, b)
    assert_close(backward.yi, -forward.yi, "swapped log OR")
    assert_close(backward.vi, forward.vi, "swapped var")


def test_swapping_events_and_non_events_negates_the_log_odds_ratio() -> None:
    forward = log_odds_ratio(4, 119, 11, 128)
    flipped = log_odds_ratio(119, 4, 128, 11)
    assert_close(flipped.yi, -forward.yi, "flipped log OR")
    assert_close(flipped.vi, forward.vi, "flipped var")


def test_swapping_arms_negates_the_log_risk_ratio_and_the_risk_difference() -> None:
    for measure in (log_risk_ratio, risk_difference):
        forward = measure(4, 119, 11, 128)
        backward = measure(11, 128, 4, 119)
        assert_close(backward.yi, -forward.yi, f"{measure.__name__} swapped")
        assert_close(backward.vi, forward.vi, f"{measure.__name__} swapped var")


def test_two_by_two_measures_match_hand_computations() -> None:
    a, b, c, d = 4.0, 119.0, 11.0, 128.0
    n1, n2 = a + b, c + d
    assert_close(log_odds_ratio(a, b, c, d).yi, math.log(a * d / (b * c)), "log OR")
    assert_close(log_odds_ratio(a, b, c, d).vi, 1 / a + 1 / b + 1 / c + 1 / d, "var log OR")
    assert_close(log_risk_ratio(a, b, c, d).yi, math.log((a / n1) / (c / n2)), "log RR")
    assert_close(log_risk_ratio(a, b, c, d).vi, 1 / a - 1 / n1 + 1 / c - 1 / n2, "var log RR")
    p1, p2 = a / n1, c / n2
    assert_close(risk_difference(a, b, c, d).yi, p1 - p2, "RD")
    assert_close(risk_difference(a, b, c, d).vi, p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2, "var RD")


def test_only0_adds_one_half_to_tables_with_a_zero_cell_and_to_no_other() -> None:
    a, b, c, d = zero_cell_correction([0, 4], [50, 119], [3, 11], [52, 128])
    assert_close(a, [0.5, 4], "ai")
    assert_close(b, [50.5, 119], "bi")
    assert_close(c, [3.5, 11], "ci")
    assert_close(d, [52.5, 128], "di")


def test_to_all_and_if0all_add_to_every_table() -> None:
    cells = ([0, 4], [50, 119], [3, 11], [52, 128])
    for rule in ("all", "if0all"):
        a, _, _, _ = zero_cell_correction(*cells, to=rule)  # type: ignore[arg-type]
        assert_close(a, [0.5, 4.5], f"ai with to={rule}")
    a, _, _, _ = zero_cell_correction([1, 4], [50, 119], [3, 11], [52, 128], to="if0all")
    assert_close(a, [1, 4], "if0all without a zero cell")


def test_to_none_leaves_a_zero_cell_table_unestimable_with_its_reason() -> None:
    result = escalc(counts_table(), "OR", **COUNTS, to="none")
    assert np.isnan(result["yi"].iloc[1])
    assert "zero cell" in result["exclusion_reason"].iloc[1]
    assert result["exclusion_reason"].iloc[0] is None


def test_the_increment_is_configurable() -> None:
    a, b, c, d = zero_cell_correction([0], [10], [2], [8], add=1.0)
    assert_close([a[0], b[0], c[0], d[0]], [1, 11, 3, 9], "add=1")


def test_the_risk_difference_gets_the_zero_cell_correction_as_in_metafor() -> None:
    # metafor's escalc applies add/to to RD as well: p1 = 0.5/11, p2 = 2.5/11
    yi, vi = risk_difference(0, 10, 2, 8)
    p1, p2 = 0.5 / 11, 2.5 / 11
    assert_close(yi, p1 - p2, "RD with a zero cell")
    assert_close(vi, p1 * (1 - p1) / 11 + p2 * (1 - p2) / 11, "var RD with a zero cell")
    uncorrected = risk_difference(0, 10, 2, 8, to="none")
    assert_close(uncorrected.yi, -0.2, "RD without correction")


def test_a_double_zero_study_is_kept_by_default_and_dropped_with_drop00() -> None:
    kept = escalc(counts_table(), "OR", **COUNTS)
    assert_close(kept["yi"].iloc[3], math.log((0.5 / 40.5) / (0.5 / 45.5)), "double zero kept")
    assert kept["exclusion_reason"].isna().all()
    dropped = escalc(counts_table(), "OR", **COUNTS, drop00=True)
    assert np.isnan(dropped["yi"].iloc[3]) and np.isnan(dropped["vi"].iloc[3])
    assert dropped["exclusion_reason"].iloc[3] == (
        "double-zero study (no events in either arm) dropped for OR: drop00=True"
    )
    # the other studies are unaffected
    assert_close(dropped["yi"].iloc[:3], kept["yi"].iloc[:3], "others with drop00")


def test_drop00_also_drops_tables_where_everyone_had_the_event() -> None:
    table = pd.DataFrame({"ai": [10], "n1i": [10], "ci": [12], "n2i": [12]})
    result = escalc(table, "RR", ai="ai", n1i="n1i", ci="ci", n2i="n2i", drop00=True)
    assert "every participant had the event" in result["exclusion_reason"].iloc[0]


def test_totals_and_non_events_give_the_same_effect() -> None:
    table = counts_table().assign(ne1=lambda t: t.t1 - t.e1, ne2=lambda t: t.t2 - t.e2)
    by_totals = escalc(table, "RR", **COUNTS)
    by_non_events = escalc(table, "RR", ai="e1", bi="ne1", ci="e2", di="ne2")
    both = escalc(table, "RR", ai="e1", bi="ne1", n1i="t1", ci="e2", di="ne2", n2i="t2")
    assert_close(by_non_events["yi"], by_totals["yi"], "yi from non-events")
    assert_close(both["vi"], by_totals["vi"], "vi from both")


def test_non_events_that_disagree_with_the_total_are_an_error() -> None:
    table = counts_table().assign(ne1=[117, 50, 68, 40])
    with pytest.raises(InputError, match=r"row 2 \(Alpha 2001\): column ne1: ai \+ bi is 121"):
        escalc(table, "OR", ai="e1", bi="ne1", n1i="t1", ci="e2", n2i="t2")


# ----------------------------------------------------------------------------- one group


def test_the_logit_proportion_matches_a_hand_computation() -> None:
    yi, vi = logit_proportion([3, 0, 10], [10, 10, 10])
    assert_close(yi, [math.log(3 / 7), math.log(0.5 / 10.5), math.log(10.5 / 0.5)], "logit")
    assert_close(vi, [1 / 3 + 1 / 7, 1 / 0.5 + 1 / 10.5, 1 / 10.5 + 1 / 0.5], "var logit")


def test_fishers_z_matches_a_hand_computation() -> None:
    yi, vi = fisher_z([0.5, -0.2], [28, 103])
    assert_close(yi, [0.5 * math.log(3), math.atanh(-0.2)], "z")
    assert_close(vi, [1 / 25, 1 / 100], "var z")


def test_fishers_z_needs_more_than_three_observations_and_a_correlation_below_one() -> None:
    table = pd.DataFrame({"r": [0.3, 0.3, 1.0], "n": [3, 30, 30]})
    result = escalc(table, "ZCOR", ri="r", ni="n")
    reasons = result["exclusion_reason"].tolist()
    assert "ni is 3" in reasons[0] and reasons[1] is None and "infinite" in reasons[2]


# ----------------------------------------------------------------------------- published summaries


def test_an_estimate_with_its_standard_error_gives_the_squared_error() -> None:
    assert_close(from_standard_error([0.2, -0.1], [0.1, 0.3]).vi, [0.01, 0.09], "vi")


def test_a_symmetric_interval_gives_back_its_standard_error() -> None:
    z = norm.ppf(0.975)
    yi, vi = from_confidence_interval(0.3, 0.3 - z * 0.1, 0.3 + z * 0.1)
    assert_close([yi, vi], [0.3, 0.01], "from CI")


def test_a_ratio_and_its_interval_are_taken_to_the_log_scale() -> None:
    z = norm.ppf(0.975)
    lb, ub = math.exp(math.log(1.5) - z * 0.2), math.exp(math.log(1.5) + z * 0.2)
    table = pd.DataFrame({"or": [1.5], "lo": [lb], "hi": [ub]})
    result = escalc(table, "OR", yi="or", ci_lb="lo", ci_ub="hi")
    assert_close([result["yi"].iloc[0], result["vi"].iloc[0]], [math.log(1.5), 0.04], "log OR")


def test_the_confidence_level_of_the_interval_is_honoured() -> None:
    z90 = norm.ppf(0.95)
    _, vi = from_confidence_interval(0.0, -z90 * 0.5, z90 * 0.5, level=90)
    assert_close(vi, 0.25, "90% interval")


def test_a_level_given_as_a_fraction_is_the_same_level_in_percent() -> None:
    as_fraction = from_confidence_interval(0.0, -1.0, 1.0, level=0.9)
    as_percent = from_confidence_interval(0.0, -1.0, 1.0, level=90)
    assert as_fraction.vi[()] == as_percent.vi[()]
    with pytest.raises(InputError, match="level is 1, which is ambiguous"):
        from_confidence_interval(0.0, -1.0, 1.0, level=1)


def test_a_published_odds_ratio_must_be_positive() -> None:
    table = pd.DataFrame({"study": ["S"], "or": [-0.3], "lo": [0.5], "hi": [1.2]})
    with pytest.raises(InputError, match=r"row 2 \(S\): column or: yi is -0.3"):
        escalc(table, "OR", yi="or", ci_lb="lo", ci_ub="hi")


def test_swapped_confidence_limits_are_an_error() -> None:
    table = pd.DataFrame({"y": [0.1], "lo": [0.5], "hi": [-0.2]})
    with pytest.raises(InputError, match="above ci_ub"):
        escalc(table, "GEN", yi="y", ci_lb="lo", ci_ub="hi")


# ----------------------------------------------------------------------------- conversions


def test_sd_and_se_convert_both_ways() -> None:
    se = se_from_sd([3.0, 10.0], [9, 100])
    assert_close(se, [1.0, 1.0], "se")
    assert_close(sd_from_se(se, [9, 100]), [3.0, 10.0], "sd back")


def test_log_odds_ratio_and_smd_convert_both_ways() -> None:
    yi, vi = np.array([-0.9, 0.0, 1.2]), np.array([0.3, 0.1, 0.05])
    d, vd = log_odds_ratio_to_smd(yi, vi)
    assert_close(d, yi * math.sqrt(3) / math.pi, "d")
    assert_close(vd, vi * 3 / math.pi**2, "var d")
    back = smd_to_log_odds_ratio(d, vd)
    assert_close(back.yi, yi, "log OR back")
    assert_close(back.vi, vi, "var back")


# ----------------------------------------------------------------------------- the DataFrame API


def test_escalc_adds_yi_vi_and_exclusion_reason_and_leaves_the_input_alone() -> None:
    table = means_table()
    before = table.copy()
    result = escalc(table, "SMD", **MEANS)
    pd.testing.assert_frame_equal(table, before)
    assert list(result.columns) == [*table.columns, "yi", "vi", "exclusion_reason", "measure"]
    assert set(result["measure"]) == {"SMD"}
    direct = standardized_mean_difference(
        table.mean_t, table.sd_t, table.n_t, table.mean_c, table.sd_c, table.n_c
    )
    assert_close(result["yi"], direct.yi, "escalc vs function")


def test_reordering_studies_reorders_the_effects_and_changes_nothing_else() -> None:
    table = counts_table()
    shuffled = table.iloc[[2, 0, 3, 1]]
    assert_close(
        escalc(shuffled, "OR", **COUNTS)["yi"],
        escalc(table, "OR", **COUNTS)["yi"].iloc[[2, 0, 3, 1]],
        "reordered",
    )


def test_a_missing_value_excludes_the_study_with_its_reason() -> None:
    table = means_table()
    table.loc[1, "n_c"] = np.nan
    result = escalc(table, "MD", **MEANS)
    assert np.isnan(result["yi"].iloc[1])
    assert result["exclusion_reason"].iloc[1] == "n2i (column n_c) is missing"
    assert result["exclusion_reason"].iloc[[0, 2]].isna().all()


def test_a_missing_value_in_a_metafor_named_column_is_named_plainly() -> None:
    table = pd.DataFrame({"ai": [1, 2], "n1i": [10, 10], "ci": [2, 3], "n2i": [10, None]})
    result = escalc(table, "OR", ai="ai", n1i="n1i", ci="ci", n2i="n2i")
    assert result["exclusion_reason"].tolist() == [None, "n2i is missing"]


def test_every_measure_is_known_and_named() -> None:
    for measure in MEASURES:
        assert check_measure(measure.lower()) == measure
        assert measure_name(measure)
    assert raw_columns("OR") == ("ai", "bi", "ci", "di", "n1i", "n2i")
    assert raw_columns("GEN") == ()


def test_an_unknown_measure_is_refused() -> None:
    with pytest.raises(InputError, match="unknown effect measure 'HR'"):
        escalc(counts_table(), "HR", **COUNTS)


def test_an_unknown_zero_cell_rule_or_a_negative_increment_is_refused() -> None:
    with pytest.raises(InputError, match="zero-cell rule"):
        escalc(counts_table(), "OR", **COUNTS, to="sometimes")
    with pytest.raises(InputError, match="add=-1"):
        escalc(counts_table(), "OR", **COUNTS, add=-1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sd_t": [3.0, 0.0, 1.5]}, r"row 3 \(Bode\): column sd_t: sd1i is 0; a standard"),
        ({"sd_c": [-4.0, 2.5, 1.8]}, r"row 2 \(Ames\): column sd_c: sd2i is -4; a standard"),
        ({"n_t": [20, 35, 0]}, r"row 4 \(Cruz\): column n_t: n1i is 0; a sample size"),
        ({"mean_t": ["10", "n/r", "x"]}, r"row 3 \(Bode\): column mean_t: m1i is 'n/r'"),
        ({"n_c": [25.0, math.inf, 14.0]}, r"row 3 \(Bode\): column n_c: n2i is inf"),
    ],
)
def test_bad_cells_in_means_are_located(change: dict[str, list[object]], message: str) -> None:
    table = means_table().assign(**change)
    with pytest.raises(InputError, match=message):
        escalc(table, "SMD", **MEANS, source="trials.csv")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"e1": [4, -1, 12, 0]}, r"column e1: ai is -1; a count cannot be negative"),
        ({"e2": [11, 3, 90, 0]}, r"row 4 \(Gamma 2005\): column e2: ci is 90 but n2i is 85"),
        ({"t1": [120, 50, 80, 0]}, r"row 5 \(Delta 2007\): column t1: n1i is 0"),
    ],
)
def test_bad_counts_are_located(change: dict[str, list[object]], message: str) -> None:
    table = counts_table().assign(**change)
    with pytest.raises(InputError, match=message):
        escalc(table, "RR", **COUNTS)


def test_a_correlation_outside_minus_one_to_one_is_an_error() -> None:
    table = pd.DataFrame({"study_id": ["a", "b"], "r": [0.2, -1.2], "n": [30, 40]})
    with pytest.raises(InputError, match=r"row 3 \(b\): column r: ri is -1.2"):
        escalc(table, "ZCOR", ri="r", ni="n")


def test_events_above_the_total_are_an_error_for_a_proportion() -> None:
    table = pd.DataFrame({"x": [3, 12], "n": [10, 10]})
    with pytest.raises(InputError, match="xi is 12 but ni is 10"):
        escalc(table, "PLO", xi="x", ni="n")


def test_a_column_that_is_not_in_the_table_is_an_error() -> None:
    with pytest.raises(InputError, match=r"f.csv: column n_ctrl: no such column .*n2i"):
        escalc(means_table(), "SMD", **{**MEANS, "n2i": "n_ctrl"}, source="f.csv")


def test_an_empty_table_is_an_error() -> None:
    with pytest.raises(InputError, match="no rows"):
        escalc(means_table().iloc[0:0], "SMD", **MEANS)


def test_a_column_the_measure_does_not_use_is_an_error() -> None:
    with pytest.raises(InputError, match="does not use ri"):
        escalc(means_table(), "SMD", **MEANS, ri="mean_t")


def test_a_missing_column_argument_is_named() -> None:
    with pytest.raises(InputError, match=r"needs a column for n1i \(or bi\)"):
        escalc(counts_table(), "OR", ai="e1", ci="e2", n2i="t2")


def test_raw_columns_and_a_precomputed_effect_cannot_be_mixed() -> None:
    with pytest.raises(InputError, match="either the raw columns or yi"):
        escalc(counts_table(), "OR", **COUNTS, yi="e1", vi="t1")


def test_a_precomputed_effect_needs_exactly_one_measure_of_spread() -> None:
    table = pd.DataFrame({"y": [0.1], "v": [0.01], "s": [0.1]})
    with pytest.raises(InputError, match="exactly one of"):
        escalc(table, "GEN", yi="y", vi="v", sei="s")
    with pytest.raises(InputError, match="exactly one of"):
        escalc(table, "GEN", yi="y")


def test_rows_are_numbered_as_in_the_file_even_after_filtering() -> None:
    table = counts_table().assign(e1=[4, 0, 12, -3])
    filtered = table[table.study != "Beta 2003"]  # keeps the index of the file's rows
    with pytest.raises(InputError, match=r"row 5 \(Delta 2007\)"):
        escalc(filtered, "OR", **COUNTS)


def test_study_labels_come_from_a_study_or_author_column_or_the_label_argument() -> None:
    assert study_labels(means_table()) == ["Ames", "Bode", "Cruz"]
    assert study_labels(counts_table(), "e1") == ["4", "0", "12", "0"]
    assert study_labels(pd.DataFrame({"x": [1]})) == [None]
    with pytest.raises(InputError, match="no such column"):
        study_labels(means_table(), "trial")
