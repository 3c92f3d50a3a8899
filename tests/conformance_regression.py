"""Conformance checkers for meta-regression and subgroup analyses.

Each checker takes a reference case, the analysis key and metafor's values and
compares every field metafor reports with metaan's. ``CHECKERS`` pairs a key
pattern with its checker; :mod:`test_conformance` dispatches to them.

Keys:

* ``metareg_<M>_<test>``: ``rma(yi, vi, mods = <metareg_vars>, method = M, test = test)``;
* ``subgroup_mods_<M>``: the same with the dummies of ``subgroup_var``;
* ``subgroup_between_FE``: the same with ``method = "EE"`` (fixed-effect Q-between);
* ``subgroup_separate_<M>``: one fit per level of ``subgroup_var``, keyed by level.

One documented exception to matching metafor's number, in :func:`_check_fe_statistic`:
the statistics of the common-effect fit of the design (QE, its p-value, and
I^2/H^2 through the typical within-study variance ``(k - p) / tr(P)``) when the
design is badly conditioned. metafor forms ``P = W - W X (X'WX)^-1 X'W`` and
takes ``Y'PY`` and ``tr(P)`` from it, which loses digits in proportion to the
condition number of ``X'WX`` (a moderator such as the publication year, about
2000 with a spread of 20, makes it about 1e13). metaan computes the same
quantities from residuals. Where the two differ beyond the tolerance, the
checker computes the statistic in exact rational arithmetic, requires metaan's
value to match it to the project tolerance, and requires metafor's value to lie
within the forward-error bound ``cond(X'WX) * eps`` of it (so a wrong formula on
either side still fails).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from metaan.errors import MetaanError
from metaan.regression import MetaRegressionResult, fit_regression
from metaan.results import MetaResult
from metaan.subgroups import SubgroupResult, fit_subgroups
from reference_cases import Case, fit_fields
from tolerance import RTOL, assert_close, close

Checker = Callable[[Case, str, dict[str, Any]], None]

_METHODS = "EE|DL|HE|HS|SJ|ML|REML|EB|PM"
_EPS = float(np.finfo(float).eps)

#: Fields of the common-effect fit of the design, subject to the documented exception.
_FE_FIELDS = frozenset({"QE", "QEp", "I2", "H2"})


def _table(case: Case) -> pd.DataFrame:
    return pd.DataFrame(case.data)


def _names(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _regression_fields(res: MetaRegressionResult) -> dict[str, Any]:
    """The fields of a meta-regression under metafor's names."""
    return {
        "coef": res.coef,
        "estimate": res.coef,
        "se": res.se,
        "zval": res.stat,
        "tval": res.stat,
        "pval": res.pval,
        "ci_lb": res.ci_lb,
        "ci_ub": res.ci_ub,
        "QM": res.QM,
        "QMp": res.QMp,
        "tau2": res.tau2,
        "se_tau2": res.se_tau2,
        "QE": res.QE,
        "QEp": res.QEp,
        "I2": res.I2,
        "H2": res.H2,
        "R2": res.R2,
        "k": res.k,
        "p": res.p,
        "dfs": res.df,
    }


def _exact_fe_statistics(res: MetaRegressionResult) -> tuple[float, float, float]:
    """QE, tr(P) and cond(X'WX) of the common-effect fit of the design, with
    weights 1/v_i, the first two in exact rational arithmetic."""
    X = [[Fraction(float(x)) for x in row] for row in res.X]
    y = [Fraction(float(v)) for v in res.yi]
    w = [1 / Fraction(float(v)) for v in res.vi]
    p = res.p
    A = [
        [sum(wi * r[a] * r[b] for wi, r in zip(w, X, strict=True)) for b in range(p)]
        for a in range(p)
    ]
    A_inv = _inverse(A)
    xwy = [sum(wi * r[a] * yi for wi, r, yi in zip(w, X, y, strict=True)) for a in range(p)]
    b = [sum(A_inv[a][c] * xwy[c] for c in range(p)) for a in range(p)]
    qe = sum(
        wi * (yi - sum(r[a] * b[a] for a in range(p))) ** 2
        for wi, r, yi in zip(w, X, y, strict=True)
    )
    m = [
        [sum(wi * wi * r[a] * r[c] for wi, r in zip(w, X, strict=True)) for c in range(p)]
        for a in range(p)
    ]
    tr_p = sum(w) - sum(A_inv[a][c] * m[c][a] for a in range(p) for c in range(p))
    cond = float(np.linalg.cond(np.array([[float(x) for x in row] for row in A])))
    return float(qe), float(tr_p), cond


def _inverse(A: list[list[Fraction]]) -> list[list[Fraction]]:
    """Gauss-Jordan inverse in exact arithmetic."""
    n = len(A)
    M = [[*row, *(Fraction(int(i == j)) for j in range(n))] for i, row in enumerate(A)]
    for col in range(n):
        pivot = next(r for r in range(col, n) if M[r][col] != 0)
        M[col], M[pivot] = M[pivot], M[col]
        lead = M[col][col]
        M[col] = [x / lead for x in M[col]]
        for r in range(n):
            if r != col and M[r][col] != 0:
                factor = M[r][col]
                M[r] = [x - factor * y for x, y in zip(M[r], M[col], strict=True)]
    return [row[n:] for row in M]


def _check_fe_statistic(res: MetaRegressionResult, name: str, expected: float, where: str) -> None:
    """The documented exception (see the module docstring) for QE, QEp, I^2, H^2."""
    qe, tr_p, cond = _exact_fe_statistics(res)
    df = res.k - res.p
    vt = df / tr_p
    if res.method == "EE":
        i2, h2 = max(0.0, 100.0 * (qe - df) / qe), qe / df
    else:
        i2, h2 = 100.0 * res.tau2 / (vt + res.tau2), res.tau2 / vt + 1.0
    exact = {"QE": qe, "QEp": float(special.chdtrc(df, qe)), "I2": i2, "H2": h2}[name]
    bound = cond * _EPS
    assert bound > RTOL, (
        f"{where}: {name} differs from metafor's {expected!r} although the design is "
        f"well conditioned (cond {cond:.3g})"
    )
    assert_close(_regression_fields(res)[name], exact, f"{where}: {name} (exact arithmetic)")
    if name == "QEp":
        # metafor's p-value follows from its QE; its QE is checked against the bound.
        return
    assert abs(expected - exact) <= bound * abs(exact), (
        f"{where}: metafor's {name} {expected!r} is further from the exact {exact!r} than "
        f"its conditioning explains (cond {cond:.3g})"
    )


def _compare_regression(res: MetaRegressionResult, expected: dict[str, Any], where: str) -> None:
    got = _regression_fields(res)
    for name, value in expected.items():
        assert name in got, f"{where}: metaan has no field for metafor's {name!r}"
        if name in _FE_FIELDS and value is not None and not close(float(got[name]), float(value)):
            _check_fe_statistic(res, name, float(value), where)
            continue
        assert_close(got[name], value, f"{where}: {name}")


def _compare_fit(res: MetaResult, expected: dict[str, Any], where: str) -> None:
    got = fit_fields(res)
    for name, value in expected.items():
        assert name in got, f"{where}: metaan has no field for metafor's {name!r}"
        assert_close(got[name], value, f"{where}: {name}")


def check_metareg(case: Case, key: str, expected: dict[str, Any]) -> None:
    m = re.fullmatch(rf"metareg_({_METHODS})_(z|knha)", key)
    assert m is not None
    mods = _names(case.results["metareg_vars"])
    res = fit_regression(_table(case), mods=mods, method=m.group(1), test=m.group(2))
    _compare_regression(res, expected, f"{case.name} {key}")


def _subgroups(case: Case, method: str) -> SubgroupResult:
    return fit_subgroups(_table(case), by=str(case.results["subgroup_var"]), method=method)


def check_subgroup_mods(case: Case, key: str, expected: dict[str, Any]) -> None:
    method = key.removeprefix("subgroup_mods_")
    res = _subgroups(case, method).moderator_test()
    _compare_regression(res, expected, f"{case.name} {key}")


def check_subgroup_between(case: Case, key: str, expected: dict[str, Any]) -> None:
    res = _subgroups(case, "REML")
    common = res.common
    assert common is not None, f"{case.name} {key}: no Q-between test"
    got = {"QM": res.Q_between, "QMp": res.Q_between_p, "QE": res.Q_within}
    where = f"{case.name} {key}"
    for name, value in expected.items():
        if name in got:
            assert_close(got[name], value, f"{where}: {name}")
        else:
            _compare_regression(common, {name: value}, where)


def check_subgroup_separate(case: Case, key: str, expected: dict[str, Any]) -> None:
    method = key.removeprefix("subgroup_separate_")
    res = _subgroups(case, method)
    where = f"{case.name} {key}"
    expected_levels = {str(level) for level in expected}
    fitted_levels = {lev.name for lev in res.levels}
    assert fitted_levels <= expected_levels, (
        f"{where}: metaan fitted levels metafor has not: {sorted(fitted_levels - expected_levels)}"
    )
    for level, values in expected.items():
        if isinstance(values, dict) and set(values) == {"error"}:
            try:
                res.fit_of(str(level))
            except MetaanError:
                continue
            raise AssertionError(f"{where} {level}: metafor refused this level; metaan did not")
        _compare_fit(res.fit_of(str(level)), values, f"{where} {level}")


CHECKERS: list[tuple[str, Checker]] = [
    (rf"metareg_({_METHODS})_(z|knha)", check_metareg),
    (rf"subgroup_mods_({_METHODS})", check_subgroup_mods),
    (r"subgroup_between_FE", check_subgroup_between),
    (rf"subgroup_separate_({_METHODS})", check_subgroup_separate),
]

__all__ = ["CHECKERS"]
