"""Conformance with R's metafor: every number of every analysis in every reference file.

Run against another directory of files in the same format with
``METAAN_REFERENCE_DIR=/path/to/dir pytest tests/test_conformance.py``.

Each analysis key is dispatched to a checker. A key no checker knows fails, so
new reference files cannot slip by unchecked.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import metaan
from conformance_bias import CHECKERS as BIAS_CHECKERS
from conformance_regression import CHECKERS as REGRESSION_CHECKERS
from metaan.errors import MetaanError
from metaan.estimators import Batch, generalised_q, score
from reference_cases import Case, analyses, compare, fit_case, fit_fields
from tolerance import RTOL, assert_close, close

Checker = Callable[[Case, str, dict[str, Any]], None]


def check_boundary(case: Case, method: str, tau2: float, expected_tau2: Any, where: str) -> None:
    """Where metaan's tau^2 is 0 and R's is not, 0 must be the optimum: the
    estimating equation is not positive at 0 (iterative estimators; the
    closed-form ones are truncated at 0 by definition)."""
    if tau2 != 0.0 or not expected_tau2 or method not in ("ML", "REML", "PM", "EB"):
        return
    ok = np.isfinite(case.yi) & np.isfinite(case.vi)
    batch = Batch(case.yi[ok][None, :], case.vi[ok][None, :])
    value, _ = score(method, batch.at(np.zeros(1), np.arange(1)), batch.n, 1)
    assert float(value[0]) <= 0.0, f"{where}: tau2 = 0 but the {method} equation is positive there"


def check_rma(case: Case, key: str, expected: dict[str, Any]) -> None:
    m = re.fullmatch(r"rma_([A-Z]+)(_knha)?", key)
    assert m is not None
    res = fit_case(case, m.group(1), "knha" if m.group(2) else "z")
    where = f"{case.name} {key}"
    compare(fit_fields(res), expected, where)
    check_boundary(case, m.group(1), float(res.tau2 or 0.0), expected.get("tau2"), where)


def check_predict(case: Case, key: str, expected: dict[str, Any]) -> None:
    m = re.fullmatch(r"predict_([A-Z]+)(_knha)?", key)
    assert m is not None
    res = fit_case(case, m.group(1), "knha" if m.group(2) else "z")
    got = {"pred": res.estimate, "pi_lb": res.pi_lb, "pi_ub": res.pi_ub}
    compare(got, expected, f"{case.name} {key}")


def _metafor_search_cap(tau2_hat: float) -> float:
    # metafor's confint() searches for the limits in [0, max(100, 10 * tau2_hat)]
    # and reports the end of that range when the limit lies beyond it.
    return max(100.0, 10.0 * tau2_hat)


def check_confint(case: Case, key: str, expected: dict[str, Any]) -> None:
    """Q-profile CIs. One documented exception to matching metafor's number:

    when metafor's upper limit for tau^2 is exactly the end of its search range
    (it reports the truncated value, with a note, rather than the limit), metaan
    reports the true limit. The test then checks that metafor's value is its
    search cap, that metaan's limit lies beyond it, and that metaan's limit
    solves the Q-profile equation Q(tau^2) = chi^2_{k-1, alpha/2} to 1e-9.
    """
    method = key.removeprefix("confint_")
    res = fit_case(case, method, "z")
    assert res.tau2 is not None and res.tau2_ci is not None
    assert res.tau_ci is not None and res.I2_ci is not None and res.H2_ci is not None
    got = {
        "tau2": [res.tau2, *res.tau2_ci],
        "tau": [math.sqrt(res.tau2), *res.tau_ci],
        "I2": [res.I2, *res.I2_ci],
        "H2": [res.H2, *res.H2_ci],
    }
    where = f"{case.name} {key}"
    cap = _metafor_search_cap(res.tau2)
    metafor_upper = expected["tau2"][2]
    truncated = math.isclose(metafor_upper, cap, rel_tol=RTOL) and res.tau2_ci[1] > cap
    if not truncated:
        compare(got, expected, where)
        return
    # The estimate and lower limits must still match exactly.
    for name in ("tau2", "tau", "I2", "H2"):
        assert_close(got[name][:2], expected[name][:2], f"{where}: {name} (estimate, lower)")
    ok = np.isfinite(case.yi) & np.isfinite(case.vi)
    y, v = case.yi[ok], case.vi[ok]
    from scipy import stats

    crit = float(stats.chi2.ppf(0.025, y.size - 1))
    assert_close(generalised_q(res.tau2_ci[1], y, v, None), crit, f"{where}: Q at the upper limit")


def _counts(case: Case) -> dict[str, np.ndarray]:
    return dict(zip(("ai", "n1i", "ci", "n2i"), case.counts(), strict=True))


def check_mh(case: Case, key: str, expected: dict[str, Any]) -> None:
    measure = key.removeprefix("mh_")
    res = metaan.fit_mh(**_counts(case), measure=measure)
    compare(fit_fields(res), expected, f"{case.name} {key}")


def check_peto(case: Case, key: str, expected: dict[str, Any]) -> None:
    res = metaan.fit_peto(**_counts(case))
    compare(fit_fields(res), expected, f"{case.name} {key}")


CHECKERS: list[tuple[str, Checker]] = [
    (r"rma_(EE|DL|HE|HS|SJ|ML|REML|EB|PM)(_knha)?", check_rma),
    (r"confint_(DL|HE|HS|SJ|ML|REML|EB|PM)", check_confint),
    (r"predict_(EE|DL|HE|HS|SJ|ML|REML|EB|PM)(_knha)?", check_predict),
    (r"mh_(OR|RR|RD)", check_mh),
    (r"peto_OR", check_peto),
    *REGRESSION_CHECKERS,
    *BIAS_CHECKERS,
]


def _checker(key: str) -> Checker | None:
    for pattern, checker in CHECKERS:
        if re.fullmatch(pattern, key):
            return checker
    return None


@pytest.mark.parametrize(
    ("case", "key"), [pytest.param(c, k, id=f"{c.name}:{k}") for c, k in analyses()]
)
def test_every_reference_analysis_matches_metafor(case: Case, key: str) -> None:
    expected = case.results[key]
    checker = _checker(key)
    if checker is None:
        pytest.fail(f"{case.name}: analysis {key!r} is not known to the conformance suite")
    if isinstance(expected, dict) and set(expected) == {"error"}:
        with pytest.raises(MetaanError):
            checker(case, key, {})
        return
    checker(case, key, expected)


def test_the_tolerance_accepts_what_it_promises_and_refuses_the_rest() -> None:
    assert close(1.0 + 0.9e-9, 1.0) and not close(1.0 + 1.1e-9, 1.0)
    assert close(0.9e-12, 0.0) and not close(1.1e-12, 0.0)
    assert close(math.nan, math.nan) and not close(math.nan, 0.0)
    with pytest.raises(AssertionError, match="rel diff"):
        assert_close([1.0, 2.0], [1.0, 2.0 + 1e-6], "two values")


def test_a_metafor_tau2_left_just_above_a_boundary_of_zero_is_accepted_with_i2() -> None:
    # R stops REML at tau^2 ~ 1e-14 where the optimum is 0: I^2 is then ~1e-10 %.
    yi = np.array([0.10, 0.12, 0.11, 0.09, 0.105])
    vi = np.array([0.01, 0.02, 0.015, 0.03, 0.02])
    res = metaan.fit(yi=yi, vi=vi)
    assert res.tau2 == 0.0
    s2 = float(fit_fields(res)["_typical"])
    metafor_like = {"tau2": 1e-14, "I2": 100 * 1e-14 / (s2 + 1e-14), "H2": 1 + 1e-14 / s2}
    compare(fit_fields(res), metafor_like, "boundary")
    rows = [{"yi": y, "vi": v} for y, v in zip(yi.tolist(), vi.tolist(), strict=True)]
    case = Case("boundary", Path("-"), {}, rows, {})
    check_boundary(case, "REML", 0.0, 1e-14, "boundary")
    with pytest.raises(AssertionError):
        compare(fit_fields(res), {"I2": 1e-6}, "a real difference")
