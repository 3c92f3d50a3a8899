"""Small-study effects: regression tests, rank test, trim-and-fill, fail-safe N."""

from __future__ import annotations

import itertools
import json
import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

import metaan
from metaan.bias import (
    FEW_STUDIES,
    _kendall_lower_tail,
    egger_test,
    fail_safe_n,
    peese,
    rank_test,
    regression_test,
    small_study_effects,
    trim_and_fill,
)
from metaan.errors import InputError, NotEstimableError
from tolerance import assert_close

BCG_YI = np.array(
    [-0.8893, -1.5854, -1.3481, -1.4416, -0.2175, -0.7861, -1.6209, 0.0120, -0.4694, -1.3713,
     -0.3394, 0.4459, -0.0173]
)  # fmt: skip
BCG_VI = np.array(
    [0.3256, 0.1946, 0.4154, 0.0200, 0.0512, 0.0069, 0.2230, 0.0040, 0.0564, 0.0730, 0.0124,
     0.5325, 0.0714]
)  # fmt: skip


def _inversions(perm: tuple[int, ...]) -> int:
    return sum(1 for i, j in itertools.combinations(range(len(perm)), 2) if perm[i] > perm[j])


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7])
def test_the_exact_kendall_distribution_matches_counting_permutations(n: int) -> None:
    counts = np.zeros(n * (n - 1) // 2 + 1)
    for perm in itertools.permutations(range(n)):
        counts[_inversions(perm)] += 1
    cdf = np.cumsum(counts) / math.factorial(n)
    for q in range(counts.size):
        assert _kendall_lower_tail(q, n) == pytest.approx(cdf[q], rel=1e-14)


def test_the_exact_kendall_tail_is_accurate_far_out_for_thirty_studies() -> None:
    # Exact integer counts by multiplying the generating polynomials.
    n = 30
    poly = [1]
    for j in range(2, n + 1):
        new = [0] * (len(poly) + j - 1)
        for i, c in enumerate(poly):
            for s in range(j):
                new[i + s] += c
        poly = new
    total = math.factorial(n)
    for q in (0, 5, 40, 150, 217):
        exact = Fraction(sum(poly[: q + 1]), total)
        assert _kendall_lower_tail(q, n) == pytest.approx(float(exact), rel=1e-12)


def test_rank_test_is_exact_without_ties_and_agrees_with_scipys_exact_test() -> None:
    res = rank_test(metaan.fit(yi=BCG_YI, vi=BCG_VI))
    assert res.exact
    w = 1 / BCG_VI
    mu = np.sum(w * BCG_YI) / w.sum()
    z = (BCG_YI - mu) / np.sqrt(BCG_VI - 1 / w.sum())
    ref = stats.kendalltau(z, BCG_VI, method="exact")
    assert_close(res.tau, ref.statistic, "tau")
    assert_close(res.pval, ref.pvalue, "p")


def test_rank_test_with_tied_variances_uses_the_normal_approximation_and_says_so() -> None:
    vi = BCG_VI.copy()
    vi[1] = vi[2]
    res = rank_test(metaan.fit(yi=BCG_YI, vi=vi))
    assert not res.exact
    assert any("tied" in w for w in res.warnings)
    w = 1 / vi
    mu = np.sum(w * BCG_YI) / w.sum()
    z = (BCG_YI - mu) / np.sqrt(vi - 1 / w.sum())
    ref = stats.kendalltau(z, vi, method="asymptotic")
    assert_close(res.tau, ref.statistic, "tau-b")
    assert_close(res.pval, ref.pvalue, "p")
    assert not rank_test(metaan.fit(yi=BCG_YI, vi=BCG_VI), exact=False).exact


def test_classic_egger_test_is_the_weighted_least_squares_regression_on_the_standard_error() -> (
    None
):
    res = egger_test(metaan.fit(yi=BCG_YI, vi=BCG_VI), model="lm")
    sei = np.sqrt(BCG_VI)
    ols = sm.WLS(BCG_YI, sm.add_constant(sei), weights=1 / BCG_VI).fit()
    ci = ols.conf_int(alpha=0.05)
    assert res.df == BCG_YI.size - 2 and res.method is None
    assert_close(res.stat, ols.tvalues[1], "t")
    assert_close(res.pval, ols.pvalues[1], "p")
    assert_close(res.slope, ols.params[1], "slope")
    assert_close(res.limit_estimate, ols.params[0], "intercept")
    assert_close(res.limit_se, ols.bse[0], "intercept se")
    assert_close([res.ci_lb, res.ci_ub], ci[0], "ci")


def test_the_common_effect_regression_has_the_classic_coefficients_and_an_unscaled_variance() -> (
    None
):
    fe = metaan.fit(yi=BCG_YI, vi=BCG_VI, method="EE")
    lm = egger_test(fe, model="lm")
    rma = egger_test(fe, model="rma")
    assert rma.df is None and rma.tau2 == 0.0
    assert_close(rma.limit_estimate, lm.limit_estimate, "intercept")
    assert_close(rma.slope, lm.slope, "slope")
    wls = sm.WLS(BCG_YI, sm.add_constant(np.sqrt(BCG_VI)), weights=1 / BCG_VI).fit()
    assert_close(lm.slope_se / rma.slope_se, math.sqrt(wls.scale), "dispersion")


def test_knapp_hartung_regression_uses_t_with_k_minus_2_df_and_a_scaled_variance() -> None:
    z = egger_test(metaan.fit(yi=BCG_YI, vi=BCG_VI), model="rma")
    t = egger_test(metaan.fit(yi=BCG_YI, vi=BCG_VI, test="knha"), model="rma")
    assert t.df == BCG_YI.size - 2 and z.df is None
    assert_close(t.slope, z.slope, "slope")
    assert_close(t.pval, 2 * stats.t.sf(abs(t.stat), t.df), "p")
    assert t.slope_se / z.slope_se == pytest.approx(t.limit_se / z.limit_se, rel=1e-12)


def test_peese_recovers_the_intercept_of_effects_that_are_linear_in_the_variance() -> None:
    vi = np.linspace(0.01, 0.2, 12)
    yi = 0.25 + 3.0 * vi
    for model in ("rma", "lm"):
        res = peese(pd.DataFrame({"yi": yi, "vi": vi}), model=model)
        assert res.predictor == "vi"
        assert res.limit_estimate == pytest.approx(0.25, abs=1e-12)
        assert res.slope == pytest.approx(3.0, rel=1e-12)


def test_a_regression_on_a_constant_standard_error_is_refused() -> None:
    with pytest.raises(NotEstimableError, match="same standard error"):
        regression_test(metaan.fit(yi=BCG_YI, vi=np.full(BCG_YI.size, 0.1)))
    with pytest.raises(NotEstimableError, match="at least 3 studies"):
        egger_test(metaan.fit(yi=BCG_YI[:2], vi=BCG_VI[:2]))
    with pytest.raises(InputError, match="model is 'ols'"):
        regression_test(metaan.fit(yi=BCG_YI, vi=BCG_VI), model="ols")


def test_a_symmetric_funnel_needs_no_filling() -> None:
    d = np.array([0.1, 0.3, 0.5, 0.2, 0.4, 0.6])
    v = np.array([0.01, 0.04, 0.09, 0.02, 0.05, 0.1])
    yi = np.concatenate([0.5 + d, 0.5 - d])
    vi = np.concatenate([v, v])
    res = metaan.fit(yi=yi, vi=vi)
    tf = trim_and_fill(res)
    assert tf.k0 == 0 and tf.fit is res and tf.filled_yi.size == 0


def test_filled_studies_mirror_the_trimmed_ones_about_the_trimmed_estimate() -> None:
    rng = np.random.default_rng(3)
    vi = rng.uniform(0.01, 0.3, 30)
    yi = rng.normal(0.2, np.sqrt(vi))
    keep = ~((yi < 0.2) & (vi > 0.1))  # small studies with small effects are missing
    yi, vi = yi[keep], vi[keep]
    for method in ("EE", "REML"):
        res = metaan.fit(yi=yi, vi=vi, method=method)
        tf = trim_and_fill(res)
        assert tf.side == "left" and tf.k0 > 0
        trimmed = np.argsort(yi, kind="stable")[yi.size - tf.k0 :]  # the largest effects
        rest = np.setdiff1d(np.arange(yi.size), trimmed)
        centre = metaan.fit(yi=yi[rest], vi=vi[rest], method=method).estimate
        assert_close(tf.filled_yi, 2 * centre - yi[trimmed], "filled yi")
        assert_close(tf.filled_vi, vi[trimmed], "filled vi")
        ref = metaan.fit(
            yi=np.append(yi, tf.filled_yi), vi=np.append(vi, tf.filled_vi), method=method
        )
        assert_close(tf.fit.estimate, ref.estimate, "filled estimate")
        assert tf.fit.estimate < res.estimate
        assert (
            tf.fit.labels[-tf.k0 :]
            == tf.filled_labels
            == tuple(f"Filled {i + 1}" for i in range(tf.k0))
        )
        assert tf.fit.rows[-1] is None


def test_mirroring_the_effects_mirrors_the_trim_and_fill_result() -> None:
    for method in ("EE", "REML", "DL"):
        a = trim_and_fill(metaan.fit(yi=BCG_YI, vi=BCG_VI, method=method))
        b = trim_and_fill(metaan.fit(yi=-BCG_YI, vi=BCG_VI, method=method))
        assert {a.side, b.side} == {"left", "right"}
        assert a.k0 == b.k0
        assert_close(b.fit.estimate, -a.fit.estimate, "estimate")
        assert_close(b.filled_yi, -a.filled_yi, "filled")


def test_the_side_can_be_given() -> None:
    res = metaan.fit(yi=BCG_YI, vi=BCG_VI, method="EE")
    estimated = trim_and_fill(res)
    other = "left" if estimated.side == "right" else "right"
    forced = trim_and_fill(res, side=other)
    assert forced.side == other
    assert trim_and_fill(res, side=estimated.side).k0 == estimated.k0


def test_adding_the_fail_safe_number_of_null_studies_just_removes_significance() -> None:
    for yi, vi in ((BCG_YI, BCG_VI), (BCG_YI[:5] - 0.5, BCG_VI[:5])):
        res = fail_safe_n(metaan.fit(yi=yi, vi=vi), alpha=0.05)
        z_sum = abs(np.sum(yi / np.sqrt(vi)))
        k = yi.size
        assert res.fsnum > 0
        assert stats.norm.sf(z_sum / math.sqrt(k + res.fsnum)) >= 0.05
        assert stats.norm.sf(z_sum / math.sqrt(k + res.fsnum - 1)) < 0.05
        assert_close(res.pval, stats.norm.sf(z_sum / math.sqrt(k)), "p")
    # Not significant to begin with: no study is needed.
    assert fail_safe_n(metaan.fit(yi=BCG_YI[:5] + 1.0, vi=BCG_VI[:5])).fsnum == 0
    with pytest.raises(InputError, match="alpha is 2"):
        fail_safe_n(metaan.fit(yi=BCG_YI, vi=BCG_VI), alpha=2)


def test_every_result_warns_when_there_are_fewer_than_ten_studies() -> None:
    few = metaan.fit(yi=BCG_YI[:9], vi=BCG_VI[:9])
    many = metaan.fit(yi=BCG_YI, vi=BCG_VI)
    assert FEW_STUDIES == 10
    for fn in (egger_test, peese, rank_test, trim_and_fill, fail_safe_n, small_study_effects):
        assert any("only 9 studies" in w for w in fn(few).warnings), fn.__name__
        assert not any("studies:" in w for w in fn(many).warnings), fn.__name__


def test_a_table_is_fitted_with_the_settings_given_and_a_result_is_refitted() -> None:
    table = pd.DataFrame({"study": list("ABCDEFGHIJKLM"), "yi": BCG_YI, "vi": BCG_VI})
    by_table = egger_test(table, method="DL")
    by_fit = egger_test(metaan.fit(yi=BCG_YI, vi=BCG_VI, method="DL"))
    assert by_table.method == "DL"
    assert_close(by_table.stat, by_fit.stat, "z")
    refitted = egger_test(metaan.fit(yi=BCG_YI, vi=BCG_VI), method="DL", level=90)
    assert (refitted.method, refitted.level) == ("DL", 90)
    tf = trim_and_fill(metaan.fit(table, method="EE"))
    assert tf.fit.rows[: BCG_YI.size] == tuple(range(2, 15))
    mh = metaan.fit_mh(
        ai=[4, 6, 3], n1i=[123, 306, 231], ci=[11, 29, 11], n2i=[139, 303, 220], measure="OR"
    )
    with pytest.raises(InputError, match="inverse-variance fit"):
        rank_test(mh)
    with pytest.raises(InputError, match="expected a fitted MetaResult"):
        rank_test([1, 2, 3])  # type: ignore[arg-type]


def test_results_print_in_one_line_and_serialise_to_json_and_tables() -> None:
    report = small_study_effects(metaan.fit(yi=BCG_YI, vi=BCG_VI))
    results = (report.egger_lm, report.egger_rma, report.peese_rma, report.rank, report.fsn)
    for result in (*results, report.trimfill, report):
        text = repr(result)
        assert "\n" not in text and text.startswith("<")
        json.dumps(result.to_dict(), allow_nan=False)
        assert len(result.to_frame()) >= 1
    frame = report.to_frame()
    assert len(frame) == 7
    assert frame["analysis"].iloc[0].startswith("Egger's test (weighted regression")
    tf = report.trimfill.to_frame()
    assert tf["filled"].sum() == report.trimfill.k0
    assert report.to_dict()["trim_and_fill"]["k0"] == report.trimfill.k0


def test_beyond_the_exact_limit_the_rank_test_uses_the_normal_approximation_and_says_so() -> None:
    rng = np.random.default_rng(11)
    vi = rng.uniform(0.01, 0.2, 600)
    yi = rng.normal(0.3, np.sqrt(vi))
    res = rank_test(metaan.fit(yi=yi, vi=vi))
    assert not res.exact
    assert any("more than 500 studies" in w for w in res.warnings)
    w = 1 / vi
    z = (yi - np.sum(w * yi) / w.sum()) / np.sqrt(vi - 1 / w.sum())
    assert_close(res.pval, stats.kendalltau(z, vi, method="asymptotic").pvalue, "p")


def test_identical_effects_give_no_rank_or_slope_test_rather_than_rounding_noise() -> None:
    import math

    yi = np.full(6, 0.3)
    vi = np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06])
    res = metaan.fit(yi=yi, vi=vi)
    rank = metaan.rank_test(res)
    assert math.isnan(rank.tau) and math.isnan(rank.pval)
    assert any("undefined" in w for w in rank.warnings)
    for reg in (
        metaan.egger_test(res, model="lm"),
        metaan.egger_test(metaan.fit(yi=yi, vi=vi, test="knha")),
        metaan.peese(res, model="lm"),
    ):
        assert reg.slope == 0.0 and reg.limit_estimate == 0.3
        assert math.isnan(reg.stat) and math.isnan(reg.pval)
        assert any("same effect" in w for w in reg.warnings)
    assert metaan.small_study_effects(res).trimfill.k0 == 0
