"""Multilevel and multivariate models, vcalc and robust tests: behaviour beyond the
reference files (those are in test_multilevel_conformance.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import metaan
from metaan.errors import InputError

MV = Path(__file__).parent / "reference" / "metafor-mv"


def _frame(name: str) -> pd.DataFrame:
    return pd.DataFrame(json.loads((MV / f"{name}.json").read_text("utf-8"))["data"])


def test_vcalc_correlates_effects_that_share_a_control_group_through_its_size() -> None:
    # Two doses against one placebo (n = 30, 40 vs 50):
    # corr = (1/50) / sqrt((1/30 + 1/50) (1/40 + 1/50)).
    data = pd.DataFrame(
        {"trial": ["A", "A", "B"], "vi": [0.1, 0.2, 0.3], "arm": ["d1", "d2", "d1"],
         "ctrl": ["pbo", "pbo", "pbo"], "n1": [30, 40, 25], "n2": [50, 50, 25]}
    )  # fmt: skip
    V = metaan.vcalc(data, cluster="trial", grp1="arm", grp2="ctrl", w1="n1", w2="n2")
    dense = V.to_sparse().toarray()  # type: ignore[attr-defined]
    r = (1 / 50) / np.sqrt((1 / 30 + 1 / 50) * (1 / 40 + 1 / 50))
    assert dense[0, 1] == pytest.approx(r * np.sqrt(0.1 * 0.2), rel=1e-14)
    assert dense[0, 2] == 0.0 and dense[2, 2] == pytest.approx(0.3)


def test_vcalc_autocorrelates_time_points_with_phi() -> None:
    data = pd.DataFrame({"s": [1, 1, 1], "vi": [1.0, 1.0, 1.0], "t": [0.0, 1.0, 3.0]})
    dense = metaan.vcalc(data, cluster="s", time1="t", phi=0.5).to_sparse().toarray()  # type: ignore[attr-defined]
    np.testing.assert_allclose(dense[0], [1.0, 0.5, 0.125], rtol=1e-15)


def test_vcalc_needs_rho_with_obs_and_names_a_missing_cluster_row() -> None:
    data = pd.DataFrame({"s": [1, None], "vi": [1.0, 1.0], "o": [1, 2]})
    with pytest.raises(InputError, match="rho"):
        metaan.vcalc(data.fillna(2), cluster="s", obs="o")
    with pytest.raises(InputError, match="row 3"):
        metaan.vcalc(data, cluster="s", obs="o", rho=0.5)


def test_reordering_effects_leaves_a_three_level_fit_unchanged() -> None:
    data = _frame("konstantopoulos2011")
    a = metaan.fit_multilevel(data, levels=["district", "school"])
    b = metaan.fit_multilevel(data.iloc[::-1].reset_index(drop=True), levels=["district", "school"])
    assert a.loglik == pytest.approx(b.loglik, rel=1e-12)
    np.testing.assert_allclose(a.sigma2, b.sigma2, rtol=1e-9)


def test_a_level_with_one_unit_has_its_variance_fixed_at_zero() -> None:
    data = _frame("konstantopoulos2011").assign(all_="one")
    res = metaan.fit_multilevel(data, levels=["all_", "district", "school"])
    assert res.sigma2[0] == 0.0 and res.components[0].fixed
    two = metaan.fit_multilevel(data, levels=["district", "school"])
    assert res.loglik == pytest.approx(two.loglik, rel=1e-10)
    assert res.profile_ci[0] is None


def test_a_boundary_estimate_is_exactly_zero_and_its_interval_starts_at_zero() -> None:
    rng = np.random.default_rng(3)
    data = pd.DataFrame({"study": np.repeat(np.arange(8), 3), "esid": np.tile([1, 2, 3], 8),
                         "vi": 0.05, "yi": rng.normal(0.2, 0.05, 24)})  # fmt: skip
    res = metaan.fit_multilevel(data, levels=["study", "esid"])
    assert res.sigma2 == (0.0, 0.0)
    ci = res.profile_ci[0]
    assert ci is not None and ci.ci_lb == 0.0 and ci.ci_ub > 0.0


def test_anova_compares_three_with_two_levels() -> None:
    data = _frame("konstantopoulos2011")
    full = metaan.fit_multilevel(data, levels=["district", "school"])
    reduced = metaan.fit_multilevel(data, levels=["school"])
    lrt = metaan.anova(full, reduced)
    assert lrt.df == 1
    assert lrt.LRT == pytest.approx(2 * (full.loglik - reduced.loglik))
    with_year = metaan.fit_multilevel(data, levels=["district", "school"], mods=["year"])
    with pytest.raises(InputError, match="fixed effects"):
        metaan.anova(with_year, reduced)


def test_a_multivariate_prediction_interval_uses_the_outcomes_tau2() -> None:
    data = _frame("berkey1998")
    res = metaan.fit_multivariate(data, outcome="outcome", study="trial", struct="HCS")
    assert res.predict().pi_lb is None
    pred = res.predict(outcome="PD")
    half = pred.pi_ub - pred.pred  # type: ignore[operator]
    crit = (pred.ci_ub - pred.pred) / pred.se
    assert half == pytest.approx(crit * np.sqrt(pred.se**2 + res.tau2[1]), rel=1e-12)


def test_robust_meta_regression_matches_the_multilevel_sandwich_with_one_level() -> None:
    data = _frame("konstantopoulos2011_year")
    uni = metaan.fit_regression(data, mods=["year_c"], method="REML")
    cr1 = metaan.robust(uni, cluster="district", data=data, kind="CR1")
    one = metaan.fit_multilevel(data, levels=["school_id"] if False else ["study"], mods=["year_c"])
    same = metaan.robust(one, cluster=data["district"].to_numpy(), kind="CR1")
    np.testing.assert_allclose(cr1.coef, uni.coef)
    np.testing.assert_allclose(cr1.se, same.se, rtol=1e-6)
    assert cr1.df[0] == 9
    cr2 = metaan.robust(metaan.fit(data, method="DL"), cluster="district", data=data)
    assert cr2.kind == "CR2" and cr2.n_clusters == 11


def test_a_cluster_the_random_effects_do_not_nest_in_is_refused() -> None:
    data = _frame("konstantopoulos2011")
    res = metaan.fit_multilevel(data, levels=["district", "school"])
    with pytest.raises(InputError, match="does not nest"):
        res.robust(cluster=data["year"].to_numpy())


def test_cr2_refuses_a_single_effect_cluster_that_alone_fits_a_coefficient() -> None:
    data = _frame("konstantopoulos2011").assign(only=0.0)
    data.loc[0, "only"] = 1.0
    data.loc[0, "district"] = 999
    res = metaan.fit_multilevel(data, levels=["district", "school"], mods=["only"])
    with pytest.raises(InputError, match="CR2 is undefined"):
        res.robust(kind="CR2")
    assert res.robust(kind="CR1").n_clusters == 12


def test_a_sampling_covariance_that_is_not_positive_definite_names_its_rows() -> None:
    data = pd.DataFrame({"study": [1, 1, 2], "esid": [1, 1, 1], "yi": [0.1, 0.2, 0.3],
                         "vi": [0.1, 0.1, 0.1]})  # fmt: skip
    V = metaan.vcalc(data, cluster="study")  # one observation twice: correlation 1
    with pytest.raises(InputError, match=r"not positive definite.*rows 2, 3"):
        metaan.fit_multilevel(data, V=V, levels=["study", "esid"])


def test_rows_without_an_effect_are_listed_not_dropped_silently() -> None:
    data = _frame("konstantopoulos2011")
    data.loc[3, "yi"] = np.nan
    res = metaan.fit_multilevel(data, levels=["district", "school"])
    assert res.k == 55
    assert [(e.row, e.reason) for e in res.excluded] == [(5, "the effect size (yi) is missing")]


def test_a_multilevel_model_codes_moderators_as_a_meta_regression_does() -> None:
    data = pd.DataFrame(
        {
            "yi": [0.1, 0.3, 0.2, 0.5, 0.4, 0.0, 0.6, 0.2],
            "vi": [0.02, 0.03, 0.02, 0.04, 0.03, 0.02, 0.05, 0.02],
            "esid": range(8),
            "arm": pd.Categorical(["b", "a", "c", "b", "a", "c", "b", "a"], ["c", "b", "a"]),
            "dose": [10.0, 20.0, 10.0, 40.0, 20.0, 10.0, 40.0, 20.0],
        }
    )
    uni = metaan.fit_regression(data, mods=["arm", "dose"])
    multi = metaan.fit_multilevel(data, levels=["esid"], mods=["arm", "dose"])
    assert multi.names == uni.names == ("intrcpt", "arm[b]", "arm[a]", "dose")
    np.testing.assert_array_equal(multi.state.model.X, uni.X)
