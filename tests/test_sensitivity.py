"""Leave-one-out, influence, Baujat and cumulative analyses against one-at-a-time refits."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import metaan
from metaan.errors import InputError, NotEstimableError
from metaan.models import METHODS
from metaan.sensitivity import (
    _SubsetSums,
    baujat,
    cumulative,
    influence,
    leave_one_out,
)
from tolerance import assert_close

BCG_YI = np.array(
    [-0.8893, -1.5854, -1.3481, -1.4416, -0.2175, -0.7861, -1.6209, 0.0120, -0.4694, -1.3713,
     -0.3394, 0.4459, -0.0173]
)  # fmt: skip
BCG_VI = np.array(
    [0.3256, 0.1946, 0.4154, 0.0200, 0.0512, 0.0069, 0.2230, 0.0040, 0.0564, 0.0730, 0.0124,
     0.5325, 0.0714]
)  # fmt: skip

FIT_FIELDS = ("estimate", "se", "stat", "pval", "ci_lb", "ci_ub", "tau2", "I2", "H2", "QE", "QEp")


def _data(seed: int, k: int, tau2: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    vi = rng.uniform(0.005, 0.3, k)
    yi = rng.normal(0.4, np.sqrt(vi + tau2))
    return yi, vi


def _without(values: np.ndarray, i: int) -> np.ndarray:
    return np.delete(values, i)


# Heterogeneous, mildly heterogeneous and homogeneous data (tau^2 at the boundary 0
# for most estimators), so that both the interior and the boundary are exercised.
DATA_SETS = [_data(1, 12, 0.4), _data(2, 9, 0.02), _data(3, 15, 0.0)]


@pytest.mark.parametrize("test", ["z", "knha"])
@pytest.mark.parametrize("method", METHODS)
def test_leaving_out_a_study_matches_a_full_refit(method: str, test: str) -> None:
    for yi, vi in DATA_SETS:
        res = metaan.fit(yi=yi, vi=vi, method=method, test=test, level=90)
        loo = leave_one_out(res)
        assert loo.df == (yi.size - 2 if test == "knha" else None)
        for i in range(yi.size):
            ref = metaan.fit(
                yi=_without(yi, i), vi=_without(vi, i), method=method, test=test, level=90
            )
            for name in FIT_FIELDS:
                assert_close(getattr(loo, name)[i], getattr(ref, name), f"{method} {i} {name}")


@pytest.mark.parametrize("test", ["z", "knha"])
@pytest.mark.parametrize("method", METHODS)
def test_each_cumulative_fit_matches_a_fit_to_the_leading_studies(method: str, test: str) -> None:
    for yi, vi in DATA_SETS:
        res = metaan.fit(yi=yi, vi=vi, method=method, test=test)
        cum = cumulative(res)
        assert cum.k == yi.size and isinstance(cum.k, int)
        assert cum.to_frame()["k"].tolist() == list(range(1, yi.size + 1))
        for i in range(1, yi.size):
            ref = metaan.fit(yi=yi[: i + 1], vi=vi[: i + 1], method=method, test=test)
            for name in FIT_FIELDS:
                assert_close(getattr(cum, name)[i], getattr(ref, name), f"{method} {i} {name}")
            if test == "knha":
                assert cum.df is not None and cum.df[i] == i and isinstance(cum.df[i], int)
        # The first study alone, with a z interval whatever the test (as metafor).
        assert cum.estimate[0] == yi[0] and cum.se[0] == math.sqrt(vi[0])
        assert (cum.tau2[0], cum.I2[0], cum.H2[0], cum.QE[0], cum.QEp[0]) == (0, 0, 1, 0, 1)
        assert_close(cum.ci_ub[0], yi[0] + 1.959963984540054 * math.sqrt(vi[0]), "first ci_ub")


def _refit_influence(
    yi: np.ndarray, vi: np.ndarray, method: str, test: str
) -> dict[str, np.ndarray]:
    """Influence diagnostics from k explicit refits (Viechtbauer & Cheung 2010)."""
    res = metaan.fit(yi=yi, vi=vi, method=method, test=test)
    tau2 = res.tau2 or 0.0
    w = 1.0 / (vi + tau2)
    hat = w / w.sum()
    names = ("rstudent", "dffits", "cook_d", "cov_r", "dfbetas", "tau2_del", "QE_del", "x", "y")
    out: dict[str, list[float]] = {name: [] for name in names}
    for i in range(yi.size):
        ref = metaan.fit(yi=_without(yi, i), vi=_without(vi, i), method=method, test=test)
        t = ref.tau2 or 0.0
        w_del = 1.0 / (_without(vi, i) + t)
        s2w = ref.se**2 * w_del.sum()  # 1 under z, the Knapp-Hartung factor under knha
        change = res.estimate - ref.estimate
        # metafor's influence(): the deletion fit's Knapp-Hartung factor scales v_i + tau^2.
        out["rstudent"].append((yi[i] - ref.estimate) / math.sqrt(s2w * (vi[i] + t) + ref.se**2))
        out["dffits"].append(change / math.sqrt(s2w * hat[i] * (t + vi[i])))
        out["cook_d"].append(change**2 / res.se**2)
        out["cov_r"].append(ref.se**2 / res.se**2)
        out["dfbetas"].append(change / math.sqrt(s2w / np.sum(1.0 / (vi + t))))
        out["tau2_del"].append(t)
        out["QE_del"].append(ref.QE or 0.0)
        out["x"].append((yi[i] - res.estimate) ** 2 / (vi[i] + tau2))
        out["y"].append(change**2 / ref.se**2)
    result = {name: np.array(values) for name, values in out.items()}
    result["hat"] = hat
    result["weight"] = 100.0 * hat
    return result


@pytest.mark.parametrize("test", ["z", "knha"])
@pytest.mark.parametrize("method", ["REML", "DL", "EE", "PM"])
def test_influence_diagnostics_follow_from_refits_without_each_study(
    method: str, test: str
) -> None:
    for yi, vi in DATA_SETS:
        res = metaan.fit(yi=yi, vi=vi, method=method, test=test)
        inf = influence(res)
        bj = baujat(res)
        expected = _refit_influence(yi, vi, method, test)
        for name in ("rstudent", "dffits", "cook_d", "cov_r", "dfbetas", "tau2_del", "QE_del",
                     "hat", "weight"):  # fmt: skip
            assert_close(getattr(inf, name), expected[name], f"{method} {test} {name}")
        assert_close(bj.x, expected["x"], f"{method} baujat x")
        assert_close(bj.y, expected["y"], f"{method} baujat y")


def test_the_influential_flag_follows_metafors_cutoffs() -> None:
    yi = np.append(BCG_YI, 3.0)
    vi = np.append(BCG_VI, 0.01)
    inf = influence(metaan.fit(yi=yi, vi=vi))
    k = yi.size
    from scipy import stats

    expected = (
        (np.abs(inf.dffits) > 3 * math.sqrt(1 / (k - 1)))
        | (stats.chi2.cdf(inf.cook_d, 1) > 0.5)
        | (inf.hat > 3 / k)
        | (np.abs(inf.dfbetas) > 1)
    )
    assert np.array_equal(inf.influential, expected)
    assert inf.influential[-1]


def test_a_study_that_carries_most_of_the_weight_is_left_out_exactly() -> None:
    # Its own terms dominate the totals, so the deletion sums are formed directly.
    yi, vi = _data(4, 10, 0.1)
    vi[3] = 1e-7
    res = metaan.fit(yi=yi, vi=vi)
    loo = leave_one_out(res)
    for i in (3, 0):
        ref = metaan.fit(yi=_without(yi, i), vi=_without(vi, i))
        for name in FIT_FIELDS:
            assert_close(getattr(loo, name)[i], getattr(ref, name), f"{i} {name}")


def test_leave_one_out_on_ten_thousand_studies_matches_refits_of_sampled_studies() -> None:
    yi, vi = _data(5, 10_000, 0.05)
    res = metaan.fit(yi=yi, vi=vi)
    loo = leave_one_out(res)
    cum = cumulative(res)
    for i in (0, 17, 4_999, 9_999):
        ref = metaan.fit(yi=_without(yi, i), vi=_without(vi, i))
        for name in FIT_FIELDS:
            assert_close(getattr(loo, name)[i], getattr(ref, name), f"leave out {i}: {name}")
    for i in (1, 30, 2_000, 9_999):
        ref = metaan.fit(yi=yi[: i + 1], vi=vi[: i + 1])
        for name in FIT_FIELDS:
            assert_close(getattr(cum, name)[i], getattr(ref, name), f"first {i + 1}: {name}")


@pytest.mark.parametrize("kind", ["drop", "prefix"])
def test_the_series_sums_equal_the_direct_sums(kind: str) -> None:
    yi, vi = _data(6, 200, 0.2)
    y = yi - yi.mean()
    sums = _SubsetSums(y, vi, kind, 0.2)  # type: ignore[arg-type]
    idx = np.arange(1, 200)
    t = 0.2 + np.random.default_rng(7).uniform(-0.001, 0.001, idx.size)
    series = sums.evaluate(t, idx)
    direct = sums._direct(t, idx)
    assert sums.series_ok[idx].all()
    np.testing.assert_allclose(series, direct, rtol=1e-13, atol=1e-13 * np.abs(direct).max())


def test_reordering_the_studies_reorders_the_leave_one_out_results() -> None:
    order = np.random.default_rng(8).permutation(BCG_YI.size)
    a = leave_one_out(metaan.fit(yi=BCG_YI, vi=BCG_VI))
    b = leave_one_out(metaan.fit(yi=BCG_YI[order], vi=BCG_VI[order]))
    for name in FIT_FIELDS:
        assert_close(getattr(b, name), getattr(a, name)[order], name)


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "study": [f"S{i}" for i in range(BCG_YI.size)],
            "year": [1990, 1980, 1995, 1980, 2001, 1970, 1999, 1985, 1985, 1992, 1988, 1979, 2003],
            "yi": BCG_YI,
            "vi": BCG_VI,
        }
    )


def test_cumulating_by_year_equals_cumulating_the_studies_sorted_by_year() -> None:
    table = _table()
    by_year = cumulative(table, order="year")
    ordered = table.sort_values("year", kind="stable").reset_index(drop=True)
    plain = cumulative(ordered)
    for name in FIT_FIELDS:
        assert_close(getattr(by_year, name), getattr(plain, name), name)
    assert by_year.labels == tuple(ordered["study"])
    # Ties (1980, 1985) keep the data order: S1 before S3, S7 before S8.
    assert by_year.labels.index("S1") < by_year.labels.index("S3")
    assert by_year.labels.index("S7") < by_year.labels.index("S8")
    assert by_year.rows[0] == 7  # S5 (1970) is on spreadsheet row 7


def test_an_order_array_sorts_a_fitted_result_and_skips_excluded_rows() -> None:
    table = _table()
    table.loc[2, "yi"] = np.nan  # excluded from the fit, and reported
    res = metaan.fit(table)
    assert len(res.excluded) == 1
    by_column = cumulative(table, order="year")
    by_array = cumulative(res, order=table["year"].drop(index=2).to_numpy())
    by_table_array = cumulative(table, order=table["year"].to_numpy())
    for other in (by_array, by_table_array):
        assert other.labels == by_column.labels
        assert_close(other.estimate, by_column.estimate, "estimate")
    assert "S2" not in by_column.labels


def test_bad_orders_are_refused_with_a_clear_message() -> None:
    table = _table()
    res = metaan.fit(table)
    with pytest.raises(InputError, match=r"column nope: no such column \(it was given as order\)"):
        cumulative(table, order="nope")
    with pytest.raises(InputError, match="pass the effect-size table"):
        cumulative(res, order="year")
    with pytest.raises(InputError, match="order has 3 values but the analysis has 13"):
        cumulative(res, order=[1, 2, 3])
    table.loc[4, "year"] = np.nan
    with pytest.raises(InputError, match=r"row 6 \(S4\): column year: the sort key is missing"):
        cumulative(table, order="year")


def test_too_few_studies_and_non_inverse_variance_fits_are_refused() -> None:
    with pytest.raises(NotEstimableError, match="at least 3 studies"):
        leave_one_out(metaan.fit(yi=BCG_YI[:2], vi=BCG_VI[:2]))
    assert leave_one_out(metaan.fit(yi=BCG_YI[:2], vi=BCG_VI[:2], method="EE")).QE.tolist() == [
        0,
        0,
    ]
    mh = metaan.fit_mh(
        ai=[4, 6, 3], n1i=[123, 306, 231], ci=[11, 29, 11], n2i=[139, 303, 220], measure="OR"
    )
    with pytest.raises(InputError, match="inverse-variance fit"):
        influence(mh)


def test_results_print_in_one_line_and_serialise_to_json_and_tables() -> None:
    res = metaan.fit(yi=BCG_YI, vi=BCG_VI, test="knha")
    for result in (leave_one_out(res), influence(res), baujat(res), cumulative(res)):
        text = repr(result)
        assert "\n" not in text and text.startswith("<")
        frame = result.to_frame()
        assert len(frame) == BCG_YI.size
        assert list(frame.columns[:2]) == ["study", "row"]
        document = result.to_dict()
        json.dumps(document, allow_nan=False)
        assert len(document["studies"]) == BCG_YI.size
    assert "df" in cumulative(res).to_frame().columns
    inf = influence(res).to_dict()["studies"][0]
    assert set(inf) >= {"rstudent", "dffits", "cook_d", "cov_r", "tau2_del", "QE_del", "hat"}


def test_settings_given_with_a_result_refit_it() -> None:
    res = metaan.fit(yi=BCG_YI, vi=BCG_VI)
    loo = leave_one_out(res, method="DL", level=90)
    assert (loo.method, loo.level) == ("DL", 90)
    ref = metaan.fit(yi=BCG_YI[1:], vi=BCG_VI[1:], method="DL", level=90)
    assert_close(loo.ci_lb[0], ref.ci_lb, "ci_lb")


def test_the_results_do_not_depend_on_the_block_size(monkeypatch: pytest.MonkeyPatch) -> None:
    import metaan.sensitivity as sensitivity

    yi, vi = _data(9, 60, 0.3)
    vi[5] = 1e-7  # one deletion summed directly
    res = metaan.fit(yi=yi, vi=vi)
    whole = (leave_one_out(res), cumulative(res))
    monkeypatch.setattr(sensitivity, "_BLOCK_CELLS", 500)  # blocks of a few subsets
    blocked = (leave_one_out(res), cumulative(res))
    for a, b in zip(whole, blocked, strict=True):
        for name in FIT_FIELDS:
            assert_close(getattr(b, name), getattr(a, name), name)


def test_rstudent_under_knapp_hartung_scales_the_deleted_variance_as_metafor_does() -> None:
    # metafor 3.8: influence(rma(yi, vi, data = dat.bcg log RR, test = "knha"))$inf$rstudent
    # for studies 1-4, printed to 4 decimals. Leaving the factor off v_i + tau^2_(-i)
    # gave -0.2179, -1.2915, -0.7542, -1.4468.
    import json
    from pathlib import Path

    path = Path(__file__).parent / "reference" / "metafor" / "bcg_RR.json"
    rows = json.loads(path.read_text("utf-8"))["data"]
    yi = np.array([r["yi"] for r in rows])
    vi = np.array([r["vi"] for r in rows])
    inf = influence(metaan.fit(yi=yi, vi=vi, method="REML", test="knha"))
    np.testing.assert_allclose(
        inf.rstudent[:4], [-0.2136, -1.2868, -0.7428, -1.4088], rtol=0, atol=5e-5
    )
