"""Multilevel, multivariate and robust fits against metafor's rma.mv and clubSandwich.

Reads every ``*.json`` in ``METAAN_MV_REFERENCE_DIR`` (default: the project's
tests/reference/metafor-mv; its README explains the keys) and checks every number
at ``MV_RTOL``. The model is built from the file's ``model`` block: the random
formula, the moderators and how V was made. When V came from ``vcalc``, metaan's
:func:`metaan.vcalc` must reproduce the file's V entry for entry at ``V_RTOL``, and
the fit uses metaan's V.

Tolerances (why, in one place):

- ``MV_RTOL = 1e-6``: rma.mv maximises with a general-purpose optimiser, so its
  variance components are accurate to about 1e-7 relative and its profile limits to
  about 1e-6 (the reference README).
- metaan's maximised (restricted) log-likelihood must be at least the reference's
  minus ``LOGLIK_ATOL = 1e-9``: an exact optimiser never does worse.
- Where metaan's optimum is higher than the reference's by more than 1e-9, metafor
  stopped short of the maximum and metaan is right. metaan's optimum must then be
  a true maximum (score 0 to rounding, Hessian on the free parameters negative
  definite), and the values that depend on where the optimum lies, the variance
  components and everything computed from them (coefficients, SEs, tests, CIs,
  profile limits, predictions, robust tests), are checked at ``SHORT_RTOL = 1e-3``
  only: they differ from the reference as much as the variance components do.
  berkey1998 ``ML_UN`` is such a case: metaan's ML log-likelihood is 4.7e-9
  higher and its tau^2 differ by 1.1e-4 relative (QM by 7e-5). The values that do
  not depend on the components (QE, k, ...) and those that depend on them only to
  second order at a maximum (the log-likelihood, deviance, AIC, BIC, AICc: 4.7e-9
  apart) keep ``MV_RTOL``.
- A variance component the reference puts within ``BOUNDARY_ATOL`` (relative to
  the typical sampling variance) of 0 is a boundary estimate; metaan must put it at
  0 exactly or within that distance.
- A p-value is checked through its statistic, not against the reference's
  p-value: a tail probability magnifies a relative error in its statistic by about
  half the statistic (berkey1998 ``REML_CS``: metafor's QM of 80, accurate to 3e-8,
  gives p = 4e-18 accurate only to about 1e-6). So the statistic (and its df) is
  compared at the suite's tolerance, metaan's p-value must be the distribution's
  tail at metaan's own statistic (``OWN_TAIL_RTOL = 1e-12``: the same function, to
  rounding), and the reference's p-value the tail at the reference's statistic
  (``REFERENCE_TAIL_RTOL = 1e-10``: R's and scipy's tails agree to about 1e-14;
  the JSON rounds a statistic to 15 significant digits, 5e-15 relative, which a
  tail magnifies by about half the statistic: at most 2e-13 in these files). A
  difference in p is then shown to come from the statistic alone.
- A JSON null is a missing value (NA): metaan's must be missing too.
- An analysis stored as ``{"error": ...}`` is one metafor refuses: metaan must raise
  a :class:`metaan.MetaanError`.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import sparse, stats

import metaan
from metaan.errors import MetaanError

REFERENCE_DIR = Path(
    os.environ.get("METAAN_MV_REFERENCE_DIR", Path(__file__).parent / "reference" / "metafor-mv")
)
MV_RTOL = 1e-6
SHORT_RTOL = 1e-3
OWN_TAIL_RTOL = 1e-12
REFERENCE_TAIL_RTOL = 1e-10
LOGLIK_ATOL = 1e-9
V_RTOL = 1e-12
BOUNDARY_ATOL = 1e-6

FILE_KEYS = {"case", "note", "reference", "model", "data", "V", "results"}
MODEL_KEYS = {"kind", "random", "V", "mods", "struct"}
RESULT_KEYS = {
    "b", "se", "stat", "pval", "ci_lb", "ci_ub", "test", "dfs", "sigma2", "tau2", "rho",
    "QE", "QEdf", "QEp", "QM", "QMdf", "QMp", "loglik", "deviance", "AIC", "BIC", "AICc",
    "k", "p", "s_nlevels", "method", "I2_levels", "profile_ci", "predict", "robust",
}  # fmt: skip
ROBUST_KEYS = {"CR1_metafor", "CR2_satterthwaite", "CR2_HTZ_wald"}
PREDICT_KEYS = {"pred", "se", "ci_lb", "ci_ub", "pi_lb", "pi_ub"}
#: Values that do not depend on the variance components.
FIXED_ONLY = {"QE", "QEdf", "QEp", "k", "p", "s_nlevels", "method", "test"}
#: Values that depend on them only to second order at a maximum.
AT_MAXIMUM = {"loglik", "deviance", "AIC", "BIC", "AICc"}


def _files() -> list[Path]:
    return sorted(REFERENCE_DIR.glob("*.json"))


def _cases() -> list[tuple[str, str]]:
    out = []
    for path in _files():
        doc = json.loads(path.read_text(encoding="utf-8"))
        out += [(path.name, key) for key in doc["results"]]
    return out


def _load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((REFERENCE_DIR / name).read_text(encoding="utf-8"))
    return doc


def _values(x: Any) -> np.ndarray:
    if x is None:
        return np.array([np.nan])
    arr = np.atleast_1d(np.asarray(x, dtype=object))
    return np.array([np.nan if v is None else float(v) for v in arr.tolist()], dtype=float)


def _check(actual: Any, expected: Any, what: str, rtol: float, atol: float = 0.0) -> None:
    a, e = _values(actual), _values(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    for x, y in zip(a, e, strict=True):
        if math.isnan(y) or math.isnan(x):
            assert math.isnan(x) and math.isnan(y), f"{what}: {x} vs missing {y}"
            continue
        assert abs(x - y) <= max(rtol * abs(y), atol), (
            f"{what}: metaan {x!r} metafor {y!r} (rel {abs(x - y) / max(abs(y), 1e-300):.3g})"
        )


def _check_tail(
    actual_p: Any, expected_p: Any, actual_tail: Any, expected_tail: Any, what: str
) -> None:
    """A p-value through its statistic (see the module docstring): metaan's p is the
    tail at metaan's statistic, the reference's p the tail at the reference's (the
    statistics themselves are compared as fields of their own)."""
    _check(actual_p, actual_tail, f"{what}: metaan's p at metaan's statistic", OWN_TAIL_RTOL)
    _check(
        expected_p,
        expected_tail,
        f"{what}: the reference's p at the reference's statistic",
        REFERENCE_TAIL_RTOL,
    )


def _two_sided(stat: Any, df: Any) -> np.ndarray:
    """Two-sided p of z (df missing) or t statistics."""
    z = np.abs(_values(stat))
    dfs = np.broadcast_to(_values(df), z.shape)
    return np.array(
        [
            2.0 * (stats.norm.sf(x) if math.isnan(d) else stats.t.sf(x, d))
            for x, d in zip(z, dfs, strict=True)
        ]
    )


def _upper(stat: Any, df: Any) -> np.ndarray:
    """Upper tail of chi^2 (one df, or a second df missing) or F (two df)."""
    x = float(_values(stat)[0])
    d = _values(df)
    if d.size == 1 or math.isnan(d[1]):
        return np.array([stats.chi2.sf(x, d[0])])
    return np.array([stats.f.sf(x, d[0], d[1])])


def _call_args(text: str) -> tuple[str, dict[str, str]]:
    """``vcalc(vi, cluster = study, obs = esid, rho = 0.6)`` -> ("vi", {...})."""
    inner = text[text.index("(") + 1 : text.rindex(")")]
    parts = [p.strip() for p in re.split(r",(?![^(]*\))", inner)]
    positional = [p for p in parts if "=" not in p]
    named = dict((k.strip(), v.strip()) for k, v in (p.split("=", 1) for p in parts if "=" in p))
    return positional[0], named


def _number_or_column(text: str) -> Any:
    if text.startswith("c("):
        return [float(v) for v in text[2:-1].split(",")]
    try:
        return float(text)
    except ValueError:
        return text


def _sampling(doc: dict[str, Any], frame: pd.DataFrame) -> Any:
    """V for the fit: metaan's vcalc (checked against the file) or the file's entries."""
    k = len(frame)
    entries = np.array(doc["V"], dtype=float).reshape(-1, 3)
    described = str(doc["model"].get("V", ""))
    if described.startswith("vcalc("):
        vi, args = _call_args(described)
        kwargs = {key: _number_or_column(value) for key, value in args.items()}
        V = metaan.vcalc(frame, vi=vi, **kwargs)
        r, c, v = V.entries()
        order = np.lexsort((entries[:, 1], entries[:, 0]))
        ref = entries[order]
        assert np.array_equal(r, ref[:, 0].astype(int)) and np.array_equal(c, ref[:, 1].astype(int))
        np.testing.assert_allclose(v, ref[:, 2], rtol=V_RTOL, atol=0)
        return V
    i, j = entries[:, 0].astype(int), entries[:, 1].astype(int)
    upper = sparse.coo_array((entries[:, 2], (i, j)), shape=(k, k))
    return (upper + sparse.triu(upper, 1).T).tocsr()


def _mods(text: str | None) -> tuple[list[str], bool]:
    if not text:
        return [], True
    body = text.replace("~", " ").strip()
    intercept = not re.search(r"(^|\+)\s*0\s*(\+|$)|-\s*1\b", body)
    body = re.sub(r"-\s*1\b", "", body)
    terms = [t.strip() for t in body.split("+") if t.strip() and t.strip() not in {"0", "1"}]
    return terms, intercept


def _fit(doc: dict[str, Any], key: str) -> metaan.MultilevelResult:
    model = doc["model"]
    assert set(model) <= MODEL_KEYS, f"unknown model keys {set(model) - MODEL_KEYS}"
    frame = pd.DataFrame(doc["data"])
    V = _sampling(doc, frame)
    method, variant = key.split("_", 1)
    lhs, rhs = (s.strip() for s in model["random"].replace("~", "").split("|"))
    mods, intercept = _mods(model.get("mods"))
    if lhs == "1":
        test = variant.lower()
        return metaan.fit_multilevel(
            frame, V=V, levels=rhs.split("/"), mods=mods, intercept=intercept,
            method=method, test=test,
        )  # fmt: skip
    extra = [m for m in mods if m != lhs]
    return metaan.fit_multivariate(
        frame, V=V, outcome=lhs, study=rhs, struct=variant, mods=extra, method=method
    )


def test_the_reference_directory_has_files() -> None:
    assert _files(), f"no reference files in {REFERENCE_DIR}"


@pytest.mark.parametrize(("name", "key"), _cases())
def test_a_fit_reproduces_rma_mv(name: str, key: str) -> None:
    doc = _load(name)
    assert set(doc) <= FILE_KEYS, f"unknown keys {set(doc) - FILE_KEYS}"
    ref = doc["results"][key]
    if "error" in ref:
        with pytest.raises(MetaanError):
            _fit(doc, key)
        return
    assert set(ref) <= RESULT_KEYS, f"{name} {key}: unknown keys {set(ref) - RESULT_KEYS}"
    res = _fit(doc, key)
    assert res.loglik >= ref["loglik"] - LOGLIK_ATOL, "metaan's optimum is below metafor's"
    short = res.loglik > ref["loglik"] + LOGLIK_ATOL
    if short:  # metafor stopped short of the maximum: metaan's must be a true maximum
        _assert_maximum(res)
    for field in ref:
        exact = not short or field in FIXED_ONLY or field in AT_MAXIMUM
        _check_field(res, field, ref, f"{name} {key} {field}", MV_RTOL if exact else SHORT_RTOL)


def _assert_maximum(res: metaan.MultilevelResult) -> None:
    """The score is 0 to rounding and the Hessian negative definite on the
    parameters not held at a bound."""
    state = res.state
    ev = state.model.evaluate(state.structure, state.phi)
    lo, hi = state.structure.lower, state.structure.upper
    free = ~(((ev.phi <= lo) & (ev.grad <= 0)) | ((ev.phi >= hi) & (ev.grad >= 0)))
    assert np.all(np.abs(ev.grad[free]) <= 1e-6 * (1.0 + abs(ev.loglik))), ev.grad
    assert np.all(np.linalg.eigvalsh(ev.hess[np.ix_(free, free)]) < 0.0), ev.hess


def _boundary_atol(res: metaan.MultilevelResult) -> float:
    return BOUNDARY_ATOL * float(np.mean(res.state.model.S.diagonal_values()))


def _check_field(
    res: metaan.MultilevelResult, field: str, ref: dict[str, Any], what: str, rtol: float
) -> None:
    expected = ref[field]
    simple = {
        "b": res.coef, "se": res.se, "stat": res.stat, "ci_lb": res.ci_lb,
        "ci_ub": res.ci_ub, "QE": res.QE, "QEdf": res.QE_df, "QM": res.QM,
        "loglik": res.loglik, "deviance": res.deviance, "AIC": res.AIC,
        "BIC": res.BIC, "AICc": res.AICc, "k": res.k, "p": res.p,
    }  # fmt: skip
    atol = _boundary_atol(res)
    if field == "pval":
        df = [res.df] * res.p if res.df is not None else None
        tails = _two_sided(res.stat, df), _two_sided(ref["stat"], ref["dfs"])
        _check_tail(res.pval, expected, *tails, what)
    elif field == "QEp":
        tails = _upper(res.QE, res.QE_df), _upper(ref["QE"], ref["QEdf"])
        _check_tail(res.QEp, expected, *tails, what)
    elif field == "QMp":
        tails = _upper(res.QM, list(res.QM_df)), _upper(ref["QM"], ref["QMdf"])
        _check_tail(res.QMp, expected, *tails, what)
    elif field in simple:
        _check(simple[field], expected, what, rtol)
    elif field in {"sigma2", "tau2", "rho"}:
        actual = {"sigma2": res.sigma2, "tau2": res.tau2, "rho": res.rho}[field]
        _check(
            list(actual) if actual else None, expected, what, rtol, atol if field != "rho" else 0
        )
    elif field == "dfs":
        _check([res.df] * res.p if res.df is not None else [None] * res.p, expected, what, rtol)
    elif field == "QMdf":
        _check(list(res.QM_df), expected, what, rtol)
    elif field == "s_nlevels":
        levels = [c.n_levels for c in res.components if c.kind == "sigma2"]
        assert levels == list(expected), what
    elif field in {"method", "test"}:
        assert getattr(res, field) == expected, what
    elif field == "I2_levels":
        _check(res.I2_levels, expected, what, rtol)
    elif field == "profile_ci":
        _check_profiles(res, expected, what, rtol, atol)
    elif field == "predict":
        assert set(expected) <= PREDICT_KEYS, f"{what}: unknown keys"
        pred = res.predict().to_dict()
        for key, value in expected.items():
            _check(pred[key], value, f"{what} {key}", rtol)
    elif field == "robust":
        _check_robust(res, expected, what, rtol)
    else:  # pragma: no cover - RESULT_KEYS and this function list the same keys
        raise AssertionError(f"{what}: no check for this key")


def _check_profiles(
    res: metaan.MultilevelResult, expected: dict[str, Any], what: str, rtol: float, atol: float
) -> None:
    cis = [ci for ci in res.profile_ci if ci is not None]
    assert len(cis) == len(expected), what
    for j, ci in enumerate(cis, start=1):
        ref = expected[str(j)]
        assert set(ref) <= {"names", "estimate", "ci_lb", "ci_ub"}, what
        if ci.sqrt is None:
            actual = [ci.estimate, ci.ci_lb, ci.ci_ub]
            wanted = [ref["estimate"], ref["ci_lb"], ref["ci_ub"]]
            _check(actual, wanted, f"{what} {ref['names']}", rtol)
            continue
        for row, values in enumerate(([ci.estimate, ci.ci_lb, ci.ci_ub], list(ci.sqrt))):
            wanted = [ref["estimate"][row], ref["ci_lb"][row], ref["ci_ub"][row]]
            tol = atol if row == 0 else math.sqrt(atol)
            _check(values, wanted, f"{what} {ref['names'][row]}", rtol, tol)


def _check_robust(
    res: metaan.MultilevelResult, expected: dict[str, Any], what: str, rtol: float
) -> None:
    assert set(expected) <= ROBUST_KEYS, f"{what}: unknown keys {set(expected) - ROBUST_KEYS}"
    for kind, ref in expected.items():
        out = res.robust(kind="CR1" if kind == "CR1_metafor" else "CR2")
        label = f"{what} {kind}"
        if kind == "CR2_HTZ_wald":
            assert set(ref) <= {"Fstat", "df_num", "df_denom", "pval", "note"}, label
            coefs = list(range(1, res.p)) if res.p > 1 else [0]
            wald = out.wald_test(coefs)
            assert wald.df_num == ref["df_num"], label
            _check([wald.Fstat, wald.df_denom], [ref["Fstat"], ref["df_denom"]], label, rtol)
            tails = (
                _upper(wald.Fstat, [wald.df_num, wald.df_denom]),
                _upper(ref["Fstat"], [ref["df_num"], ref["df_denom"]]),
            )
            _check_tail(wald.pval, ref["pval"], *tails, f"{label} pval")
            continue
        assert set(ref) <= {"b", "se", "stat", "dfs", "pval", "ci_lb", "ci_ub", "note"}, label
        actual = {"b": out.coef, "se": out.se, "stat": out.stat, "pval": out.pval,
                  "ci_lb": out.ci_lb, "ci_ub": out.ci_ub}  # fmt: skip
        for key, value in ref.items():
            if key == "note":
                continue
            if key == "dfs":
                df = out.df if np.ndim(value) else out.df[0]
                _check(df, value, f"{label} dfs", rtol)
            elif key == "pval":
                tails = _two_sided(out.stat, out.df), _two_sided(ref["stat"], ref["dfs"])
                _check_tail(out.pval, value, *tails, f"{label} {key}")
            else:
                _check(actual[key], value, f"{label} {key}", rtol)
