"""Subgroup analysis: per-level fits, the tests of differences, tau^2 pooling, exclusions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import metaan
from bcg import BCG
from metaan.errors import InputError, NotEstimableError
from metaan.models import METHODS
from metaan.regression import fit_regression
from metaan.subgroups import SINGLE_STUDY_NOTE, fit_subgroups


@pytest.mark.parametrize("method", METHODS)
def test_each_level_is_the_fit_of_its_own_studies(method: str) -> None:
    res = fit_subgroups(BCG, by="alloc", method=method)
    assert [lev.name for lev in res.levels] == ["alternate", "random", "systematic"]
    for lev in res.levels:
        alone = metaan.fit(BCG[BCG["alloc"] == lev.name], method=method)
        assert lev.pooled and lev.note is None
        assert lev.fit.estimate == alone.estimate
        assert lev.fit.tau2 == alone.tau2
        assert lev.fit.labels == alone.labels


def test_the_fixed_effect_q_between_is_the_total_q_less_the_within_level_qs() -> None:
    res = fit_subgroups(BCG, by="alloc")
    total = metaan.fit(BCG, method="EE").QE
    within = sum(metaan.fit(BCG[BCG["alloc"] == lev.name], method="EE").QE for lev in res.levels)
    assert res.Q_between == pytest.approx(total - within, rel=1e-10)
    assert res.Q_within == pytest.approx(within, rel=1e-10)
    assert (res.Q_between_df, res.Q_within_df) == (2, 10)


def test_the_mixed_effects_test_is_the_meta_regression_on_the_subgroup_dummies() -> None:
    res = fit_subgroups(BCG, by="alloc", method="REML", test="knha")
    reg = fit_regression(BCG, mods="alloc", method="REML", test="knha")
    mixed = res.moderator_test()
    assert mixed.QM == reg.QM and mixed.QM_df2 == reg.QM_df2 == 10
    assert res.QM == reg.QM and res.QMp == reg.QMp
    np.testing.assert_array_equal(mixed.coef, reg.coef)


def test_with_pooled_tau2_every_level_uses_the_mixed_models_residual_tau2() -> None:
    res = fit_subgroups(BCG, by="alloc", method="REML", tau2_mode="pooled")
    mixed = res.moderator_test()
    assert res.tau2_pooled == mixed.tau2
    # Under the z test a level's estimate and SE are the mixed model's cell mean.
    cell = mixed.coef[0] + np.r_[0.0, mixed.coef[1:]]
    var = np.diag(mixed.vcov).copy()
    var[1:] += mixed.vcov[0, 0] + 2 * mixed.vcov[0, 1:]
    for j, lev in enumerate(res.levels):
        assert lev.fit.tau2 == mixed.tau2
        assert lev.fit.estimate == pytest.approx(cell[j], rel=1e-10)
        assert lev.fit.se == pytest.approx(np.sqrt(var[j]), rel=1e-10)
    separate = fit_subgroups(BCG, by="alloc", method="REML")
    assert [lev.fit.tau2 for lev in separate.levels] != [mixed.tau2] * 3


def test_a_level_with_one_study_is_shown_as_reported_and_not_pooled() -> None:
    table = BCG.copy()
    table.loc[4, "alloc"] = "quasi"
    res = fit_subgroups(table, by="alloc")
    one = next(lev for lev in res.levels if lev.name == "quasi")
    assert not one.pooled and one.note == SINGLE_STUDY_NOTE
    assert one.fit.k == 1
    assert one.fit.estimate == table.loc[4, "yi"]
    assert one.fit.se == pytest.approx(np.sqrt(table.loc[4, "vi"]), rel=1e-15)
    assert one.fit.tau2 == 0.0 and one.fit.QE == 0.0 and one.fit.QEp == 1.0
    frame = res.to_frame()
    row = frame[frame["alloc"] == "quasi"].iloc[0]
    assert not row["pooled"] and row["note"] == SINGLE_STUDY_NOTE and pd.isna(row["tau2"])
    assert "quasi" in res.summary() and SINGLE_STUDY_NOTE in res.summary()


def test_as_many_levels_as_studies_leaves_no_mixed_effects_test_as_metafor_refuses_it() -> None:
    table = BCG.iloc[:4].assign(alloc=["a", "b", "c", "d"])
    res = fit_subgroups(table, by="alloc")
    assert res.mixed is None
    assert res.mixed_note is not None and "larger than the number of studies" in res.mixed_note
    with pytest.raises(NotEstimableError):
        res.moderator_test()
    # The fixed-effect test needs no tau^2 and is still there.
    assert res.Q_between is not None and res.Q_between_df == 3
    with pytest.raises(NotEstimableError, match="cannot be pooled"):
        fit_subgroups(table, by="alloc", tau2_mode="pooled")


def test_a_study_without_a_group_is_left_out_and_reported() -> None:
    table = BCG.copy()
    table.loc[3, "alloc"] = None
    res = fit_subgroups(table, by="alloc")
    assert res.k == 12
    assert [(e.row, e.study, e.reason) for e in res.excluded] == [
        (5, "T4", "subgroup alloc is missing")
    ]


def test_a_level_whose_studies_are_all_excluded_has_no_fit_and_says_so() -> None:
    table = BCG.copy()
    table.loc[[4, 5], "yi"] = np.nan  # both "alternate" studies
    res = fit_subgroups(table, by="alloc")
    assert [lev.name for lev in res.levels] == ["random", "systematic"]
    assert res.empty_levels == ("alternate",)
    with pytest.raises(NotEstimableError, match="alternate"):
        res.fit_of("alternate")
    with pytest.raises(InputError, match="no level 'other'"):
        res.fit_of("other")
    assert "alternate" in res.summary()


def test_numeric_group_codes_are_levels_in_numeric_order() -> None:
    codes = [10, 10, 2, 2, 2, 10, 1, 1, 2, 10, 1, 1, 2]
    res = fit_subgroups(BCG.assign(dose=codes), by="dose")
    assert [lev.name for lev in res.levels] == ["1", "2", "10"]
    assert res.mixed is not None
    assert res.mixed.names == ("intrcpt", "dose[2]", "dose[10]")


def test_arrays_and_a_table_give_the_same_analysis() -> None:
    a = fit_subgroups(BCG, by="alloc")
    b = fit_subgroups(yi=BCG["yi"].to_numpy(), vi=BCG["vi"].to_numpy(), by=BCG["alloc"].tolist())
    assert b.by == "group"
    assert a.Q_between == b.Q_between
    assert [lev.fit.estimate for lev in a.levels] == [lev.fit.estimate for lev in b.levels]


def test_an_unknown_grouping_column_is_an_input_error_naming_it() -> None:
    message = r"column allocation: no such column \(it was given as by\)"
    with pytest.raises(InputError, match=message) as info:
        fit_subgroups(BCG, by="allocation")
    assert info.value.column == "allocation"


def test_the_frame_has_one_row_per_level_and_the_dict_every_test() -> None:
    res = fit_subgroups(BCG, by="alloc")
    frame = res.to_frame()
    assert frame["alloc"].tolist() == ["alternate", "random", "systematic"]
    assert frame["k"].tolist() == [2, 7, 4]
    data = res.to_dict()
    assert set(data["levels"]) == {"alternate", "random", "systematic"}
    assert data["between_fixed"]["df"] == 2
    assert data["mixed_effects_test"]["QM_df"] == 2
    assert repr(res).startswith("<SubgroupResult by=alloc REML k=13 levels=3 tau2=separate Qb=")


def test_pooling_tau2_is_asked_with_tau2_mode_not_metafors_tau2() -> None:
    pooled = fit_subgroups(BCG, by="alloc", tau2_mode="pooled")
    assert pooled.tau2_mode == "pooled" and pooled.tau2_pooled is not None
    with pytest.raises(TypeError, match="tau2"):
        fit_subgroups(BCG, by="alloc", tau2="pooled")  # type: ignore[call-arg]
    with pytest.raises(InputError, match="tau2_mode is 'shared'"):
        fit_subgroups(BCG, by="alloc", tau2_mode="shared")
