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
from typing import Any

import numpy as np
import pytest

import metaan
from conformance_bias import CHECKERS as BIAS_CHECKERS
from conformance_regression import CHECKERS as REGRESSION_CHECKERS
from metaan.errors import MetaanError
from metaan.estimators import generalised_q
from reference_cases import Case, analyses, compare, fit_case, fit_fields
from tolerance import ATOL, RTOL, assert_close

Checker = Callable[[Case, str, dict[str, Any]], None]


def check_rma(case: Case, key: str, expected: dict[str, Any]) -> None:
    m = re.fullmatch(r"rma_([A-Z]+)(_knha)?", key)
    assert m is not None
    res = fit_case(case, m.group(1), "knha" if m.group(2) else "z")
    compare(fit_fields(res), expected, f"{case.name} {key}")


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


def check_mh(case: Case, key: str, expected: dict[str, Any]) -> None:
    measure = key.removeprefix("mh_")
    res = metaan.fit_mh(*case.counts(), measure=measure)
    compare(fit_fields(res), expected, f"{case.name} {key}")


def check_peto(case: Case, key: str, expected: dict[str, Any]) -> None:
    res = metaan.fit_peto(*case.counts())
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


def test_the_tolerance_is_the_one_the_project_promises() -> None:
    assert RTOL == 1e-9
    assert ATOL == 1e-12
