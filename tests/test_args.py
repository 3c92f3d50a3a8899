"""One way to pass data: fn(data, *, yi="yi", vi="vi", ...), with columns or values,
one rule for study labels and one for the confidence level."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

import metaan
from bcg import BCG
from metaan._args import check_level, study_labels
from metaan.errors import InputError, NotEstimableError

Y = BCG["yi"].to_numpy()
V = BCG["vi"].to_numpy()

#: Every public function that reads studies, and the data arguments it must take.
DATA_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "fit": ("yi", "vi", "sei", "labels"),
    "fit_regression": ("yi", "vi", "sei", "mods", "labels"),
    "fit_subgroups": ("by", "yi", "vi", "sei", "labels"),
    "fit_many": ("by", "yi", "vi", "sei", "labels"),
    "q_profile_ci": ("yi", "vi", "sei"),
    "leave_one_out": ("yi", "vi", "sei", "labels"),
    "influence": ("yi", "vi", "sei", "labels"),
    "baujat": ("yi", "vi", "sei", "labels"),
    "cumulative": ("yi", "vi", "sei", "labels", "order"),
    "regression_test": ("yi", "vi", "sei", "labels"),
    "egger_test": ("yi", "vi", "sei", "labels"),
    "peese": ("yi", "vi", "sei", "labels"),
    "rank_test": ("yi", "vi", "sei", "labels"),
    "trim_and_fill": ("yi", "vi", "sei", "labels"),
    "fail_safe_n": ("yi", "vi", "sei", "labels"),
    "small_study_effects": ("yi", "vi", "sei", "labels"),
    "fit_mh": ("ai", "n1i", "ci", "n2i", "labels"),
    "fit_peto": ("ai", "n1i", "ci", "n2i", "labels"),
    "fit_multilevel": ("yi", "vi", "V", "levels", "mods", "labels"),
    "fit_multivariate": ("yi", "vi", "V", "outcome", "study", "mods", "labels"),
    "vcalc": ("vi", "cluster"),
}


@pytest.mark.parametrize("name", sorted(DATA_FUNCTIONS))
def test_every_function_that_reads_studies_takes_data_then_keyword_arguments(name: str) -> None:
    params = inspect.signature(getattr(metaan, name)).parameters
    first, *rest = params.values()
    assert first.name == "data"
    assert first.default is None or name == "fit_many"  # one model per group of a table
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in rest)
    assert set(DATA_FUNCTIONS[name]) <= set(params)
    if "yi" in params:
        assert (params["yi"].default, params["vi"].default) == ("yi", "vi")
    assert "label" not in params  # one spelling: labels


def test_escalc_takes_data_and_the_measure_then_keyword_arguments() -> None:
    first, second, *rest = inspect.signature(metaan.escalc).parameters.values()
    assert (first.name, second.name) == ("data", "measure")
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in rest)


# ----------------------------------------------------------------------------- columns


def test_every_argument_may_name_a_column_or_give_the_values() -> None:
    table = BCG.rename(columns={"yi": "g", "vi": "var", "trial": "name"})
    by_name = metaan.fit(table, yi="g", vi="var", labels="name")
    by_value = metaan.fit(yi=Y, vi=V, labels=list(BCG["trial"]))
    mixed = metaan.fit(table, yi="g", vi=V, labels="name")
    assert by_name.to_dict() == by_value.to_dict() == mixed.to_dict()
    assert by_name.labels == by_value.labels == tuple(BCG["trial"])


def test_vi_given_with_a_table_is_used_not_ignored() -> None:
    doubled = metaan.fit(BCG, vi=2 * V)
    assert doubled.to_dict() == metaan.fit(yi=Y, vi=2 * V).to_dict()
    assert doubled.estimate != metaan.fit(BCG).estimate


def test_sei_given_with_a_table_is_used_not_ignored() -> None:
    table = BCG.assign(se=np.sqrt(2 * V))
    res = metaan.fit(table, sei="se")
    assert res.estimate == pytest.approx(metaan.fit(yi=Y, vi=2 * V).estimate, rel=1e-13)
    with pytest.raises(InputError, match="both vi and sei are given"):
        metaan.fit(table, vi=V, sei="se")


def test_labels_given_with_a_table_are_used_not_ignored() -> None:
    names = [f"Study {c}" for c in "ABCDEFGHIJKLM"]
    assert metaan.fit(BCG, labels=names).labels == tuple(names)
    assert metaan.leave_one_out(BCG, labels=names).labels == tuple(names)


def test_a_name_in_the_vi_place_of_fit_regression_is_a_variance_column_not_a_moderator() -> None:
    with pytest.raises(TypeError):
        metaan.fit_regression(BCG, "ablat")  # type: ignore[misc]
    res = metaan.fit_regression(BCG.assign(v2=2 * V), vi="v2", mods="ablat")
    assert res.to_dict() == metaan.fit_regression(yi=Y, vi=2 * V, mods=BCG[["ablat"]]).to_dict()


def test_a_column_that_does_not_exist_is_an_error_naming_it_and_the_argument() -> None:
    with pytest.raises(InputError, match=r"column g: no such column \(it was given as yi\)"):
        metaan.fit(BCG, yi="g")


def test_a_column_name_without_a_table_is_an_error_that_says_so() -> None:
    with pytest.raises(InputError, match="yi='g' names a column, but no table was given"):
        metaan.fit(yi="g", vi=V)


def test_values_of_the_wrong_length_are_an_error() -> None:
    with pytest.raises(InputError, match="vi has 12 values but there are 13 rows"):
        metaan.fit(BCG, vi=V[:12])


def test_arrays_in_the_place_of_the_table_are_an_error_that_shows_the_call() -> None:
    with pytest.raises(InputError, match=r"data must be a table .* fit\(yi=\[\.\.\.\], vi="):
        metaan.fit(Y)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "call",
    [
        lambda data, **kw: metaan.fit(data, **kw).to_dict(),
        lambda data, **kw: metaan.fit_regression(data, mods=BCG[["ablat"]], **kw).to_dict(),
        lambda data, **kw: metaan.fit_subgroups(data, by=list(BCG["alloc"]), **kw).to_dict(),
        lambda data, **kw: metaan.leave_one_out(data, **kw).to_dict(),
        lambda data, **kw: metaan.cumulative(data, order=-Y, **kw).to_dict(),
        lambda data, **kw: metaan.trim_and_fill(data, **kw).to_dict(),
        lambda data, **kw: metaan.small_study_effects(data, **kw).to_dict(),
        lambda data, **kw: metaan.q_profile_ci(data, **kw).to_dict(),
    ],
)
def test_a_table_and_the_same_values_without_a_table_give_the_same_result(
    call: Callable[..., dict[str, Any]],
) -> None:
    with_table = _without_rows(call(BCG[["yi", "vi"]]))
    without = _without_rows(call(None, yi=Y, vi=V))
    assert with_table == without


def _without_rows(value: Any) -> Any:
    """A dict without its ``row`` entries (a table's rows count from 2, values' from 1)."""
    if isinstance(value, dict):
        return {k: _without_rows(v) for k, v in value.items() if k != "row"}
    if isinstance(value, list):
        return [_without_rows(v) for v in value]
    return value


def test_columns_named_with_a_fitted_result_are_refused_as_ignored() -> None:
    res = metaan.fit(BCG)
    with pytest.raises(InputError, match="yi is given but would be ignored"):
        metaan.leave_one_out(res, yi="g")
    with pytest.raises(InputError, match="labels is given but would be ignored"):
        metaan.trim_and_fill(res, labels="trial")


def test_a_table_given_to_robust_with_a_cluster_it_does_not_hold_is_refused_as_ignored() -> None:
    res = metaan.fit(BCG)
    with pytest.raises(InputError, match="data is given but would be ignored"):
        metaan.robust(res, cluster=list(BCG["alloc"]), data=BCG)
    by_column = metaan.robust(res, cluster="alloc", data=BCG)
    assert by_column.n_clusters == 3


def test_the_mantel_haenszel_fit_reads_columns_or_counts() -> None:
    counts = pd.DataFrame(
        {"t": [4, 6, 3, 62], "n1": [123, 306, 231, 13598], "c": [11, 29, 11, 248],
         "n2": [139, 303, 220, 12867], "study": ["A", "B", "C", "D"]}
    )  # fmt: skip
    by_column = metaan.fit_mh(counts, ai="t", n1i="n1", ci="c", n2i="n2")
    by_value = metaan.fit_mh(ai=counts["t"], n1i=counts["n1"], ci=counts["c"], n2i=counts["n2"])
    assert by_column.estimate == by_value.estimate
    assert by_column.labels == ("A", "B", "C", "D")
    assert by_column.rows == (2, 3, 4, 5) and by_value.rows == (1, 2, 3, 4)


# ----------------------------------------------------------------------------- measure


def _or_effects() -> pd.DataFrame:
    raw = pd.DataFrame(
        {"study": ["A", "B", "C", "D"], "t": [4, 6, 3, 62], "n1": [123, 306, 231, 13598],
         "c": [11, 29, 11, 248], "n2": [139, 303, 220, 12867]}
    )  # fmt: skip
    return metaan.escalc(raw, "OR", ai="t", n1i="n1", ci="c", n2i="n2")


def test_the_measure_of_escalc_survives_merge_and_concat() -> None:
    es = _or_effects()
    extra = pd.DataFrame({"study": ["A", "B", "C", "D"], "year": [1948, 1949, 1960, 1977]})
    merged = es.merge(extra, on="study")
    stacked = pd.concat([es.iloc[:2], es.iloc[2:]])
    for table in (merged, stacked, es.sort_values("yi"), es[es["yi"] < 0]):
        res = metaan.fit(table)
        assert res.measure == "OR" and res.is_ratio
    assert metaan.fit_regression(merged, mods="year").measure == "OR"


def test_log_odds_ratios_after_a_merge_are_drawn_on_a_log_axis() -> None:
    from metaan.plots.forest import scale_of

    merged = _or_effects().merge(pd.DataFrame({"study": ["A", "B", "C", "D"]}), on="study")
    assert scale_of(metaan.fit(merged)).log


def test_a_table_that_mixes_measures_is_refused() -> None:
    smd = _or_effects().assign(measure="SMD").iloc[:2]
    mixed = pd.concat([_or_effects().iloc[2:], smd])
    with pytest.raises(InputError, match=r"mixes effect measures: OR \(row 4\), SMD \(row 2\)"):
        metaan.fit(mixed)


def test_a_measure_that_contradicts_the_table_is_refused() -> None:
    with pytest.raises(InputError, match="measure='SMD' was given but the table's effect"):
        metaan.fit(_or_effects(), measure="SMD")
    assert metaan.fit(_or_effects(), measure="OR").measure == "OR"


def test_a_measure_column_that_holds_something_else_is_refused_with_its_row() -> None:
    table = BCG.assign(measure="HAM-D")
    message = r"row 2: column measure: measure is 'HAM-D', which is not an effect measure"
    with pytest.raises(InputError, match=message):
        metaan.fit(table)


# ----------------------------------------------------------------------------- labels


def test_study_labels_follow_one_rule_in_every_model() -> None:
    table = BCG.drop(columns=["trial"]).assign(esid=range(13), cluster=[1, 1, 2, 2] * 3 + [3])
    counts = pd.DataFrame({"ai": [4, 6, 3], "n1i": [123, 306, 231], "ci": [11, 29, 11],
                           "n2i": [139, 303, 220]})  # fmt: skip
    expected = tuple(f"Study {i}" for i in range(1, 14))
    assert metaan.fit(table).labels == expected
    assert metaan.fit_regression(table, mods="ablat").labels == expected
    assert metaan.fit_multilevel(table, levels=["cluster", "esid"]).labels == expected
    assert metaan.fit_mh(counts).labels == ("Study 1", "Study 2", "Study 3")
    named = table.assign(Study=[f"S{i}" for i in range(13)])  # matched without regard to case
    assert metaan.fit(named).labels == metaan.fit_multilevel(named, levels=["esid"]).labels
    assert metaan.fit(named).labels[0] == "S0"
    assert study_labels(named) == [f"S{i}" for i in range(13)]


def test_excluded_rows_name_the_same_label_in_every_model() -> None:
    table = BCG.assign(esid=range(13))
    table.loc[3, "yi"] = np.nan
    uni = metaan.fit(table).excluded
    multi = metaan.fit_multilevel(table, levels=["esid"]).excluded
    assert [(e.row, e.study) for e in uni] == [(e.row, e.study) for e in multi] == [(5, "T4")]


# ----------------------------------------------------------------------------- level


def test_a_level_is_a_percentage_from_50_to_100_or_a_fraction_from_half_to_1() -> None:
    assert check_level(0.95) == check_level(95) == 95.0
    assert check_level(0.5) == check_level(50) == 50.0
    assert check_level(99.9) == 99.9


@pytest.mark.parametrize(
    "bad", [1, 1.0, 1.5, 0.3, 30, 0, 100, -5, 250, math.nan, math.inf, True, "95"]
)
def test_an_impossible_or_ambiguous_level_is_refused(bad: Any) -> None:
    with pytest.raises(InputError, match="level is"):
        check_level(bad)


def test_every_function_reads_a_level_the_same_way() -> None:
    table = BCG.assign(esid=range(13))
    assert metaan.fit(BCG, level=0.9).to_dict() == metaan.fit(BCG, level=90).to_dict()
    a = metaan.fit_multilevel(table, levels=["esid"], level=0.9)
    b = metaan.fit_multilevel(table, levels=["esid"], level=90)
    assert a.level == b.level == 90.0 and a.ci_lb[0] == b.ci_lb[0]
    raw = pd.DataFrame({"or": [2.0], "lo": [1.2], "hi": [3.5]})
    fraction = metaan.escalc(raw, "OR", yi="or", ci_lb="lo", ci_ub="hi", level=0.9)
    percent = metaan.escalc(raw, "OR", yi="or", ci_lb="lo", ci_ub="hi", level=90)
    assert fraction["vi"].iloc[0] == percent["vi"].iloc[0]
    for call in (
        lambda: metaan.fit(BCG, level=1),
        lambda: metaan.fit_multilevel(table, levels=["esid"], level=1),
        lambda: metaan.fit_mh(ai=[4], n1i=[123], ci=[11], n2i=[139], level=1),
        lambda: metaan.escalc(raw, "OR", yi="or", ci_lb="lo", ci_ub="hi", level=1),
        lambda: metaan.leave_one_out(BCG, level=1),
    ):
        with pytest.raises(InputError, match="level is 1, which is ambiguous"):
            call()


def test_a_single_level_factor_is_refused_in_every_model_not_dropped() -> None:
    table = BCG.assign(esid=range(13), same="x")
    with pytest.raises(NotEstimableError, match="moderator same has a single level"):
        metaan.fit_regression(table, mods=["ablat", "same"])
    with pytest.raises(NotEstimableError, match="moderator same has a single level"):
        metaan.fit_multilevel(table, levels=["esid"], mods=["ablat", "same"])


def test_labels_and_rows_of_a_large_fit_are_made_only_when_read() -> None:
    rng = np.random.default_rng(4)
    k = 50_000
    vi = rng.uniform(0.01, 0.2, k)
    res = metaan.fit(yi=rng.normal(0.3, np.sqrt(vi + 0.05)), vi=vi)
    assert res.labels._tuple is None and res.rows._tuple is None  # type: ignore[attr-defined]
    assert len(res.labels) == len(res.rows) == k
    assert res.labels[0] == "Study 1" and res.labels[-1] == f"Study {k}"
    assert res.rows[1] == 2 and isinstance(res.rows[1], int)
    assert res.labels._tuple is None  # type: ignore[attr-defined]
    assert res.labels == tuple(f"Study {i + 1}" for i in range(k))
    assert res.rows == tuple(range(1, k + 1))


def test_lazy_labels_read_as_the_tuple_they_stand_for() -> None:
    table = pd.DataFrame(
        {"study": ["A", None, "C", "D"], "yi": [0.1, 0.2, np.nan, 0.4], "vi": [0.1, 0.2, 0.3, 0.4]},
        index=[10, 11, 12, 13],
    )
    res = metaan.fit(table, method="DL")
    assert res.labels == ("A", "Study 2", "D") and hash(res.labels) == hash(("A", "Study 2", "D"))
    assert res.rows == (12, 13, 15)
    assert list(res.labels[1:]) == ["Study 2", "D"] and res.labels[1:] == ("Study 2", "D")
    assert ("x",) + res.labels == ("x", "A", "Study 2", "D")  # noqa: RUF005 (adds as a tuple)
    assert res.labels + ("x",) == ("A", "Study 2", "D", "x")  # noqa: RUF005 (adds as a tuple)
    assert repr(res.rows) == "(12, 13, 15)" and res.labels != ["A", "Study 2", "D"]
    with pytest.raises(IndexError):
        res.labels[3]
    assert res.to_frame()["study"].tolist() == ["A", "Study 2", "D"]
