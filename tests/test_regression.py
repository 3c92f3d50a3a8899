"""Meta-regression and its permutation test: invariants, coding, refusals, exclusions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

import metaan
from bcg import BCG
from metaan.errors import InputError, NotEstimableError
from metaan.estimators import estimate_tau2
from metaan.models import METHODS
from metaan.regression import (
    MetaRegressionResult,
    _batched_fit,
    fit_regression,
    permutation_test,
)


def _random_table(k: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=k)
    vi = rng.uniform(0.02, 0.3, size=k)
    return pd.DataFrame(
        {
            "yi": 0.2 * x + rng.normal(scale=np.sqrt(vi + 0.04)),
            "vi": vi,
            "x": x,
            "g": rng.choice(["a", "b", "c"], size=k),
        }
    )


@pytest.mark.parametrize("method", METHODS)
def test_the_intercept_only_regression_is_the_random_effects_fit(method: str) -> None:
    reg = fit_regression(BCG, method=method)
    res = metaan.fit(BCG, method=method)
    assert reg.names == ("intrcpt",)
    assert reg.coef[0] == pytest.approx(res.estimate, rel=1e-12)
    assert reg.se[0] == pytest.approx(res.se, rel=1e-12)
    assert reg.tau2 == pytest.approx(res.tau2, rel=1e-12, abs=1e-15)
    assert reg.QE == pytest.approx(res.QE, rel=1e-12)
    assert reg.I2 == pytest.approx(res.I2, rel=1e-12, abs=1e-12)
    assert reg.H2 == pytest.approx(res.H2, rel=1e-12)
    assert reg.QM == pytest.approx(res.stat**2, rel=1e-12)
    assert reg.R2 is None


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("test", ["z", "knha"])
def test_reordering_studies_leaves_every_number_unchanged(method: str, test: str) -> None:
    order = np.random.default_rng(3).permutation(len(BCG))
    a = fit_regression(BCG, mods=["ablat", "alloc"], method=method, test=test)
    b = fit_regression(
        BCG.iloc[order].reset_index(drop=True), mods=["ablat", "alloc"], method=method, test=test
    )
    for name in ("coef", "se", "pval", "ci_lb", "ci_ub"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-9)
    for name in ("QM", "QMp", "QE", "QEp", "tau2", "I2", "H2"):
        assert getattr(b, name) == pytest.approx(getattr(a, name), rel=1e-9, abs=1e-14), name


def test_a_text_moderator_becomes_treatment_dummies_with_the_first_sorted_level_as_reference() -> (
    None
):
    res = fit_regression(BCG, mods="alloc")
    assert res.names == ("intrcpt", "alloc[random]", "alloc[systematic]")
    assert res.reference_levels == (("alloc", "alternate"),)
    assert res.X[:, 1].tolist() == (BCG["alloc"] == "random").astype(float).tolist()


def test_a_pandas_categorical_keeps_the_order_of_its_categories() -> None:
    table = BCG.assign(
        alloc=pd.Categorical(BCG["alloc"], categories=["systematic", "random", "alternate"])
    )
    res = fit_regression(table, mods="alloc")
    assert res.names == ("intrcpt", "alloc[random]", "alloc[alternate]")
    # Recoding the reference changes the coefficients, not the model.
    other = fit_regression(BCG, mods="alloc")
    assert res.QM == pytest.approx(other.QM, rel=1e-10)
    assert res.tau2 == pytest.approx(other.tau2, rel=1e-10)


def test_without_an_intercept_the_first_factor_gets_a_column_per_level() -> None:
    res = fit_regression(BCG, mods="alloc", intercept=False)
    assert res.names == ("alloc[alternate]", "alloc[random]", "alloc[systematic]")
    with_int = fit_regression(BCG, mods="alloc")
    # Cell means: the no-intercept coefficients are the intercept plus each dummy.
    means = with_int.coef[0] + np.r_[0.0, with_int.coef[1:]]
    np.testing.assert_allclose(res.coef, means, rtol=1e-10)
    assert res.btt == (0, 1, 2)
    assert res.R2 is None


def test_arrays_a_mapping_and_a_table_give_the_same_fit() -> None:
    yi, vi = BCG["yi"].to_numpy(), BCG["vi"].to_numpy()
    x = BCG[["ablat", "year"]].to_numpy(dtype=float)
    a = fit_regression(BCG, mods=["ablat", "year"])
    b = fit_regression(yi=yi, vi=vi, mods=x)
    c = fit_regression(yi=yi, vi=vi, mods={"ablat": BCG["ablat"], "year": BCG["year"]})
    d = fit_regression(BCG, mods=["ablat", "year"])
    for other in (b, c, d):
        np.testing.assert_array_equal(other.coef, a.coef)
        assert other.QM == a.QM
    assert b.names == ("intrcpt", "mod1", "mod2")
    assert c.names == a.names == ("intrcpt", "ablat", "year")


def test_the_knha_moderator_test_is_f_equal_to_the_scaled_wald_statistic_over_m() -> None:
    z = fit_regression(BCG, mods=["ablat", "year"], test="z")
    t = fit_regression(BCG, mods=["ablat", "year"], test="knha")
    k, p = z.k, z.p
    w = 1.0 / (z.vi + z.tau2)
    resid = z.yi - z.X @ z.coef
    s2w = float(np.sum(w * resid**2)) / (k - p)
    assert t.QM == pytest.approx(z.QM / s2w / 2, rel=1e-10)
    assert (t.QM_df, t.QM_df2, t.df) == (2, k - p, k - p)
    from scipy import stats

    assert t.QMp == pytest.approx(stats.f.sf(t.QM, 2, k - p), rel=1e-10)
    np.testing.assert_allclose(t.se, z.se * math.sqrt(s2w), rtol=1e-12)


def test_r2_is_the_share_of_the_intercept_only_tau2_the_moderators_explain() -> None:
    res = fit_regression(BCG, mods="ablat", method="REML")
    tau2_re = estimate_tau2(BCG["yi"].to_numpy(), BCG["vi"].to_numpy(), "REML").tau2
    assert res.tau2_intercept_only == tau2_re
    assert res.R2 == pytest.approx(100 * (tau2_re - res.tau2) / tau2_re, rel=1e-12)


def test_r2_is_zero_not_negative_when_the_residual_tau2_exceeds_the_total() -> None:
    # With a useless moderator the residual tau^2 can exceed the intercept-only one.
    rng = np.random.default_rng(0)
    for _ in range(50):
        res = fit_regression(BCG.assign(noise=rng.normal(size=len(BCG))), mods="noise")
        assert res.R2 is not None and res.tau2_intercept_only is not None
        if res.tau2 >= res.tau2_intercept_only:
            assert res.R2 == 0.0
            return
    raise AssertionError("no draw had a residual tau^2 above the intercept-only tau^2")


def test_the_common_effect_regression_has_no_tau2_and_its_own_i2() -> None:
    res = fit_regression(BCG, mods="ablat", method="EE")
    assert res.tau2 == 0.0 and res.se_tau2 is None and res.R2 is None
    df = res.k - res.p
    assert res.I2 == pytest.approx(max(0.0, 100 * (res.QE - df) / res.QE))
    assert res.H2 == pytest.approx(res.QE / df)


def test_a_study_with_a_missing_moderator_is_left_out_and_reported_with_its_row() -> None:
    table = BCG.astype({"ablat": float})
    table.loc[2, "ablat"] = np.nan
    table.loc[5, "yi"] = np.nan
    res = fit_regression(table, mods=["ablat", "year"])
    assert res.k == 11
    assert [(e.row, e.reason) for e in res.excluded] == [
        (4, "moderator ablat is missing"),
        (7, "yi is missing"),
    ]
    assert res.excluded[0].study == "T3"
    full = fit_regression(table.drop(index=[2, 5]), mods=["ablat", "year"])
    np.testing.assert_array_equal(res.coef, full.coef)


def test_a_missing_categorical_value_is_reported_and_its_level_is_not_coded() -> None:
    table = BCG.copy()
    table.loc[[4, 5], "alloc"] = None  # every "alternate" study
    res = fit_regression(table, mods="alloc")
    assert len(res.excluded) == 2
    assert res.names == ("intrcpt", "alloc[systematic]")
    assert res.reference_levels == (("alloc", "random"),)


def test_as_many_parameters_as_studies_is_refused_as_metafor_refuses_it() -> None:
    table = BCG.iloc[:3].assign(z=[1.0, 2.0, 5.0])
    with pytest.raises(NotEstimableError, match="larger than the number of studies"):
        fit_regression(table, mods=["ablat", "z"], method="REML")
    # A common-effect model may have as many coefficients as studies.
    ee = fit_regression(table, mods=["ablat", "z"], method="EE")
    assert ee.QE == 0.0 and ee.QEp == 1.0 and ee.QE_df == 0 and ee.I2 == 0.0
    with pytest.raises(NotEstimableError, match="larger than the number of studies"):
        fit_regression(table.assign(u=[0.0, 1.0, 0.0]), mods=["ablat", "z", "u"], method="EE")


def test_a_mixed_model_with_one_study_per_parameter_plus_tau2_is_estimable() -> None:
    table = BCG.iloc[:4]
    res = fit_regression(table, mods=["ablat", "year"], method="REML")
    assert res.k == 4 and res.p == 3


def test_a_constant_moderator_is_refused_as_a_rank_deficient_design() -> None:
    with pytest.raises(NotEstimableError, match="rank-deficient: c is constant"):
        fit_regression(BCG.assign(c=1.0), mods=["ablat", "c"])


def test_a_moderator_duplicating_another_is_refused_as_a_rank_deficient_design() -> None:
    table = BCG.assign(twice=2.0 * BCG["ablat"] + 1.0)
    with pytest.raises(NotEstimableError, match="twice is a linear combination"):
        fit_regression(table, mods=["ablat", "twice"])


def test_a_moderator_column_that_does_not_exist_is_an_input_error_naming_it() -> None:
    message = r"column latitude: no such column \(it was given as mods\)"
    with pytest.raises(InputError, match=message) as info:
        fit_regression(BCG, mods="latitude")
    assert info.value.column == "latitude"
    assert "ablat" in str(info.value)


def test_a_factor_with_a_single_level_is_refused() -> None:
    with pytest.raises(NotEstimableError, match="single level"):
        fit_regression(BCG.assign(same="x"), mods="same")


def test_the_coefficient_table_and_dict_hold_every_number() -> None:
    res = fit_regression(BCG, mods=["ablat", "alloc"], test="knha")
    frame = res.to_frame()
    assert frame["term"].tolist() == list(res.names)
    np.testing.assert_array_equal(frame["estimate"], res.coef)
    assert set(frame["df"]) == {res.k - res.p}
    data = res.to_dict()
    assert data["QM_dist"] == "F" and data["QM_df"] == 3 and data["QM_df2"] == res.k - res.p
    assert [c["term"] for c in data["coefficients"]] == list(res.names)
    assert data["reference_levels"] == {"alloc": "alternate"}
    assert repr(res).startswith("<MetaRegressionResult REML k=13 p=4 F(3,9)=")
    assert "Test of moderators (coefficients 2, 3, 4): F(3, 9)" in res.summary()


# --------------------------------------------------------------------------
# Permutation test


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("test", ["z", "knha"])
def test_the_batched_refits_match_full_refits_of_permuted_data(method: str, test: str) -> None:
    table = _random_table(30, seed=11)
    res = fit_regression(table, mods=["x", "g"], method=method, test=test)
    rng = np.random.default_rng(5)
    orders = np.array([rng.permutation(res.k) for _ in range(8)])
    out = _batched_fit(res.yi[orders], res.vi[orders], res.X, method, test, res.btt)
    for i, order in enumerate(orders):
        refit = fit_regression(
            yi=res.yi[order], vi=res.vi[order], mods=res.X[:, 1:], method=method, test=test
        )
        assert out.QM[i] == pytest.approx(refit.QM, rel=1e-10)
        np.testing.assert_allclose(out.stat[i], refit.stat, rtol=1e-9)


def _full_refit_p(res: MetaRegressionResult, designs: list[np.ndarray]) -> float:
    qms = []
    for X in designs:
        refit = fit_regression(
            yi=res.yi, vi=res.vi, mods=X[:, 1:], method=res.method, test=res.test
        )
        qms.append(refit.QM)
    return float(np.mean(np.array(qms) >= res.QM - math.sqrt(np.finfo(float).eps)))


def test_an_exact_test_uses_every_distinct_permutation_of_the_design_rows() -> None:
    table = BCG.iloc[:6].assign(x=[1.0, 2.0, 2.0, 3.0, 4.0, 5.0])
    res = fit_regression(table, mods="x", method="REML")
    perm = permutation_test(res, 1000, seed=None)
    assert perm.exact
    # 6! / 2! distinct orderings, because two studies share a design row.
    assert perm.n_perm == 360
    designs = [res.X[list(order)] for order in itertools.permutations(range(6))]
    unique = {tuple(map(tuple, X)) for X in designs}
    assert len(unique) == 360
    assert perm.QMp == pytest.approx(_full_refit_p(res, [np.array(X) for X in unique]), abs=1e-12)


def test_the_exact_sign_flip_test_of_an_intercept_only_model_matches_full_refits() -> None:
    table = BCG.iloc[:6]
    res = fit_regression(table, method="DL")
    perm = permutation_test(res, 1000, seed=None)
    assert perm.exact and perm.n_perm == 64
    qms = []
    for signs in itertools.product([1.0, -1.0], repeat=6):
        refit = fit_regression(yi=np.array(signs) * res.yi, vi=res.vi, method="DL")
        qms.append(refit.QM)
    expected = np.mean(np.array(qms) >= res.QM - math.sqrt(np.finfo(float).eps))
    assert perm.QMp == pytest.approx(expected, abs=1e-12)


def test_the_approximate_test_is_reproducible_from_its_seed_and_counts_the_observed_data() -> None:
    res = fit_regression(_random_table(50, seed=2), mods="x")
    a = permutation_test(res, 200, seed=42)
    b = permutation_test(res, 200, seed=42)
    c = permutation_test(res, 200, seed=43)
    assert not a.exact and a.n_perm == 200
    np.testing.assert_array_equal(a.QM_perm, b.QM_perm)
    assert not np.array_equal(a.QM_perm, c.QM_perm)
    assert a.QM_perm[0] == res.QM
    count = int(np.sum(a.QM_perm[1:] >= res.QM - math.sqrt(np.finfo(float).eps)))
    assert a.QMp == (count + 1) / 200
    assert a.QMp >= 1 / 200


def test_under_the_null_the_permutation_p_value_is_not_small_and_under_a_strong_effect_it_is() -> (
    None
):
    rng = np.random.default_rng(8)
    k = 40
    vi = rng.uniform(0.05, 0.2, k)
    x = rng.normal(size=k)
    null = fit_regression(yi=rng.normal(scale=np.sqrt(vi)), vi=vi, mods=x)
    strong = fit_regression(yi=2.0 * x + rng.normal(scale=np.sqrt(vi)), vi=vi, mods=x)
    assert permutation_test(null, 500, seed=1).QMp > 0.05
    assert permutation_test(strong, 500, seed=1).QMp == 1 / 500


def test_an_approximate_test_without_a_seed_is_refused() -> None:
    res = fit_regression(_random_table(20, seed=4), mods="x")
    with pytest.raises(InputError, match="needs a seed"):
        permutation_test(res, 100, seed=None)


def test_chunking_the_batches_does_not_change_the_result() -> None:
    res = fit_regression(_random_table(25, seed=9), mods=["x", "g"], method="REML")
    a = permutation_test(res, 300, seed=7)
    b = permutation_test(res, 300, seed=7, chunk=17)
    # The same permutations; only the BLAS blocking of the batch differs.
    np.testing.assert_allclose(a.QM_perm, b.QM_perm, rtol=1e-12)
    assert a.QMp == b.QMp
    np.testing.assert_array_equal(a.pval, b.pval)
    assert a.to_frame()["term"].tolist() == list(res.names)


def test_predicting_at_a_unit_row_gives_that_coefficient_and_its_confidence_interval() -> None:
    from reference_cases import load_cases

    case = next(c for c in load_cases() if c.name == "bcg_OR")
    import pandas as pd

    table = pd.DataFrame({"yi": case.yi, "vi": case.vi, "ablat": case.column("ablat")})
    for test in ("z", "knha"):
        res = fit_regression(table, mods=["ablat"], test=test)
        for j in range(res.p):
            row = np.zeros(res.p)
            row[j] = 1.0
            got = res.predict(row)
            assert got.pred[0] == pytest.approx(res.coef[j], rel=1e-12)
            assert got.ci_lb[0] == pytest.approx(res.ci_lb[j], rel=1e-12)
            assert got.ci_ub[0] == pytest.approx(res.ci_ub[j], rel=1e-12)
        fitted = res.predict(res.X)
        assert np.allclose(fitted.pred, res.X @ res.coef, rtol=1e-12)


def test_regression_weights_are_inverse_variance_with_the_residual_tau2_in_percent() -> None:
    yi = np.array([0.1, 0.4, 0.3, 0.8, 0.5])
    vi = np.array([0.02, 0.05, 0.03, 0.04, 0.06])
    res = fit_regression(yi=yi, vi=vi, mods=np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    w = 1.0 / (vi + res.tau2)
    assert res.weights == pytest.approx(100.0 * w / w.sum(), rel=1e-12)
    with pytest.raises(InputError, match="2 coefficients"):
        res.predict([1.0, 2.0, 3.0])


# ----------------------------------------------------------------------------- predict


@pytest.mark.parametrize("test", ["z", "knha"])
def test_the_intercept_only_prediction_interval_is_metafors(test: str) -> None:
    from reference_cases import load_cases
    from tolerance import assert_close

    for case in load_cases():
        key = "predict_REML" if test == "z" else "predict_REML_knha"
        if key not in case.results:
            continue
        expected = case.results[key]
        ok = np.isfinite(case.yi) & np.isfinite(case.vi)
        res = fit_regression(yi=case.yi[ok], vi=case.vi[ok], test=test)
        pred = res.predict([1.0])
        for name in ("pred", "pi_lb", "pi_ub"):
            assert_close(getattr(pred, name)[0], expected[name], f"{case.name} {key} {name}")


def test_predict_takes_moderator_values_with_the_factor_coding_of_the_fit() -> None:
    res = fit_regression(BCG, mods=["ablat", "alloc"], test="knha")
    assert res.names == ("intrcpt", "ablat", "alloc[random]", "alloc[systematic]")
    by_value = res.predict({"ablat": [20, 40, 30], "alloc": ["random", "alternate", "systematic"]})
    rows = [[1, 20, 1, 0], [1, 40, 0, 0], [1, 30, 0, 1]]
    by_row = res.predict(np.array(rows, dtype=float))
    without_intercept = res.predict(np.array(rows, dtype=float)[:, 1:])
    frame = pd.DataFrame({"alloc": ["random", "alternate", "systematic"], "ablat": [20, 40, 30]})
    by_frame = res.predict(frame)
    for other in (by_row, without_intercept, by_frame):
        np.testing.assert_array_equal(other.pred, by_value.pred)
        np.testing.assert_array_equal(other.pi_lb, by_value.pi_lb)
    np.testing.assert_array_equal(by_value.X, np.array(rows, dtype=float))


def test_the_prediction_interval_adds_the_residual_tau2_to_the_variance_of_the_fit() -> None:
    from scipy import stats

    res = fit_regression(BCG, mods=["ablat"], test="knha")
    pred = res.predict({"ablat": 30})
    crit = stats.t.ppf(0.975, res.df)
    half = crit * math.sqrt(pred.se[0] ** 2 + res.tau2)
    assert pred.pi_lb[0] == pytest.approx(pred.pred[0] - half, rel=1e-14)
    assert pred.pi_ub[0] == pytest.approx(pred.pred[0] + half, rel=1e-14)
    assert pred.pi_lb[0] < pred.ci_lb[0] < pred.ci_ub[0] < pred.pi_ub[0]
    common = fit_regression(BCG, mods=["ablat"], method="EE").predict({"ablat": 30})
    assert (common.pi_lb[0], common.pi_ub[0]) == (common.ci_lb[0], common.ci_ub[0])


def test_predict_without_new_values_gives_the_fitted_values_of_the_studies() -> None:
    res = fit_regression(BCG, mods=["ablat"])
    np.testing.assert_allclose(res.predict().pred, res.X @ res.coef, rtol=1e-15)


def test_predict_refuses_a_level_or_a_moderator_the_fit_has_not_seen() -> None:
    res = fit_regression(BCG, mods=["ablat", "alloc"])
    with pytest.raises(InputError, match="alloc has no level 'quasi' in the model"):
        res.predict({"ablat": 20, "alloc": "quasi"})
    with pytest.raises(InputError, match="the moderator alloc is not given"):
        res.predict({"ablat": 20})
    with pytest.raises(InputError, match="year is not a moderator of the model"):
        res.predict({"ablat": 20, "alloc": "random", "year": 1970})
    with pytest.raises(InputError, match="newmods has 2 columns but the model has 4"):
        res.predict([1.0, 20.0])
    with pytest.raises(InputError, match="differ in length"):
        res.predict({"ablat": [20, 30], "alloc": ["random", "random", "random"]})


def test_a_categorical_order_is_remembered_for_predictions() -> None:
    table = BCG.assign(alloc=pd.Categorical(BCG["alloc"], ["systematic", "random", "alternate"]))
    res = fit_regression(table, mods="alloc")
    assert res.reference_levels == (("alloc", "systematic"),)
    pred = res.predict({"alloc": ["systematic", "alternate"]})
    assert pred.pred[0] == pytest.approx(res.coef[0], rel=1e-15)
    assert pred.pred[1] == pytest.approx(res.coef[0] + res.coef[2], rel=1e-15)
