"""Common-effect pooling of 2x2 tables: Mantel-Haenszel and Peto.

Both work on the raw counts (no continuity correction). Cochran's Q and I^2
are computed, as metafor does, from the inverse-variance effect sizes of the
tables (with 1/2 added to the cells of tables with a zero cell, double-zero
tables left out) around the pooled estimate.

References
----------
Mantel, N., & Haenszel, W. (1959). Statistical aspects of the analysis of data
from retrospective studies of disease. *JNCI*, 22, 719-748.

Robins, J., Breslow, N., & Greenland, S. (1986). Estimators of the Mantel-Haenszel
variance consistent in both sparse data and large-strata limiting models.
*Biometrics*, 42, 311-323.

Greenland, S., & Robins, J. M. (1985). Estimation of a common effect parameter
from sparse follow-up data. *Biometrics*, 41, 55-68.

Sato, T., Greenland, S., & Robins, J. M. (1989). On the variance estimator for
the Mantel-Haenszel risk difference. *Biometrics*, 45, 1323-1324.

Tarone, R. E. (1985). On heterogeneity tests based on efficient scores.
*Biometrika*, 72, 91-95. Breslow, N. E., & Day, N. E. (1980). *Statistical
Methods in Cancer Research, Vol. I*. IARC.

Yusuf, S., Peto, R., Lewis, J., Collins, R., & Sleight, P. (1985). Beta blockade
during and after myocardial infarction. *Progress in Cardiovascular Diseases*,
27, 335-371.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from metaan._args import Column, numeric_columns
from metaan._dist import chi2_sf, norm_isf, norm_sf
from metaan.errors import InputError, NotEstimableError
from metaan.estimators import FloatArray
from metaan.results import Exclusion, MetaResult

__all__ = ["fit_mh", "fit_peto"]


@dataclass(frozen=True)
class _Tables:
    a: FloatArray
    b: FloatArray
    c: FloatArray
    d: FloatArray
    labels: tuple[str, ...]
    rows: tuple[int | None, ...]
    excluded: tuple[Exclusion, ...]

    @property
    def n1(self) -> FloatArray:
        return self.a + self.b

    @property
    def n2(self) -> FloatArray:
        return self.c + self.d

    @property
    def n(self) -> FloatArray:
        return self.a + self.b + self.c + self.d


def _tables(
    ai: Any,
    n1i: Any,
    ci: Any,
    n2i: Any,
    labels: Sequence[str] | None,
    rows: Sequence[int | None] | None,
) -> _Tables:
    arrays = []
    for name, values in (("ai", ai), ("n1i", n1i), ("ci", ci), ("n2i", n2i)):
        try:
            arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
        except (TypeError, ValueError):
            raise InputError(f"{name} contains a value that is not a number", column=name) from None
        arrays.append(arr)
    a, n1, c, n2 = arrays
    k = a.size
    if any(arr.size != k for arr in arrays):
        raise InputError("ai, n1i, ci and n2i must have the same length")
    label_list = (
        [str(s) for s in labels] if labels is not None else [f"Study {i + 1}" for i in range(k)]
    )
    row_list = list(rows) if rows is not None else [i + 1 for i in range(k)]
    names = (("ai", a, n1), ("ci", c, n2))
    for name, events, total in names:
        for arr, what in ((events, name), (total, "n1i" if name == "ai" else "n2i")):
            bad = np.isfinite(arr) & (arr < 0)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InputError(
                    f"{what} is {arr[i]:g}; counts cannot be negative",
                    row=row_list[i],
                    study=label_list[i],
                    column=what,
                )
        over = np.isfinite(events) & np.isfinite(total) & (events > total)
        if over.any():
            i = int(np.flatnonzero(over)[0])
            total_name = "n1i" if name == "ai" else "n2i"
            raise InputError(
                f"{name} is {events[i]:g} but {total_name} is {total[i]:g}; "
                "events cannot exceed the total",
                row=row_list[i],
                study=label_list[i],
                column=name,
                fix="check the events and the group size",
            )
    missing = ~(np.isfinite(a) & np.isfinite(n1) & np.isfinite(c) & np.isfinite(n2))
    excluded = [
        Exclusion(row_list[i], label_list[i], "event counts or group sizes are missing")
        for i in np.flatnonzero(missing)
    ]
    keep = ~missing
    return _Tables(
        a=a[keep],
        b=(n1 - a)[keep],
        c=c[keep],
        d=(n2 - c)[keep],
        labels=tuple(label_list[i] for i in np.flatnonzero(keep)),
        rows=tuple(row_list[i] for i in np.flatnonzero(keep)),
        excluded=tuple(excluded),
    )


def _iv_effects(t: _Tables, measure: str) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """Inverse-variance effects of each table for Q: 1/2 added to the cells of
    tables with a zero cell; double-zero tables (no events, or all events, in both
    arms) are left out. Returns yi, vi and the mask of tables used."""
    a, b, c, d = t.a, t.b, t.c, t.d
    double_zero = ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))
    use = ~double_zero
    zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    add = np.where(zero, 0.5, 0.0)
    a2, b2, c2, d2 = a + add, b + add, c + add, d + add
    n1, n2 = a2 + b2, c2 + d2
    if measure == "OR":
        yi = np.log(a2 * d2 / (b2 * c2))
        vi = 1 / a2 + 1 / b2 + 1 / c2 + 1 / d2
    elif measure == "RR":
        yi = np.log((a2 / n1) / (c2 / n2))
        vi = 1 / a2 - 1 / n1 + 1 / c2 - 1 / n2
    else:
        p1, p2 = a2 / n1, c2 / n2
        yi = p1 - p2
        vi = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    return yi, vi, use


def _heterogeneity(
    yi: FloatArray, vi: FloatArray, estimate: float
) -> tuple[float, int, float, float, float]:
    k = yi.size
    qe = float(np.sum((yi - estimate) ** 2 / vi)) if k else 0.0
    df = max(k - 1, 0)
    qep = chi2_sf(qe, df) if df >= 1 else 1.0
    i2 = max(0.0, 100.0 * (qe - df) / qe) if qe > 0 else 0.0
    h2 = qe / df if df >= 1 else 1.0
    return qe, df, qep, i2, h2


def _result(
    *,
    t: _Tables,
    method: str,
    measure: str,
    level: float,
    estimate: float,
    se: float,
    yi: FloatArray,
    vi: FloatArray,
    use: npt.NDArray[np.bool_],
    weights: FloatArray,
    extra: dict[str, float | None] | None = None,
) -> MetaResult:
    tests = extra or {}
    notes: tuple[str, ...] = ()
    if se > 0.0:
        stat = estimate / se
        pval = 2.0 * norm_sf(abs(stat))
    else:
        # metafor's rma.mh: no events anywhere (RD), or every participant an
        # event (RR, RD), gives estimate 0 with SE 0, and no test.
        stat = pval = math.nan
        notes = (
            f"the {method} variance is 0 (no events in any study, or an event for every "
            "participant): the estimate has no test, as metafor reports it",
        )
    crit = norm_isf((1.0 - level / 100.0) / 2.0)
    qe, qe_df, qep, i2, h2 = _heterogeneity(yi[use], vi[use], estimate)
    return MetaResult(
        measure=measure,
        method=method,
        test="z",
        level=level,
        k=int(t.a.size),
        estimate=estimate,
        se=se,
        stat=stat,
        df=None,
        pval=pval,
        ci_lb=estimate - crit * se,
        ci_ub=estimate + crit * se,
        tau2=None,
        se_tau2=None,
        I2=i2,
        H2=h2,
        QE=qe,
        QE_df=qe_df,
        QEp=qep,
        pi_lb=estimate - crit * se,
        pi_ub=estimate + crit * se,
        excluded=t.excluded,
        yi=yi,
        vi=vi,
        weights=weights,
        labels=t.labels,
        rows=t.rows,
        MH=tests.get("MH"),
        MHp=tests.get("MHp"),
        TA=tests.get("TA"),
        TAp=tests.get("TAp"),
        notes=notes,
    )


def _tables_of(
    data: Any, ai: Column, n1i: Column, ci: Column, n2i: Column, labels: Any, source: str | None
) -> _Tables:
    """The 2x2 tables of a table's columns or of the counts given (the data convention)."""
    columns = {"ai": ai, "n1i": n1i, "ci": ci, "n2i": n2i}
    counts, names, rows = numeric_columns(data, columns, labels=labels, source=source)
    return _tables(counts["ai"], counts["n1i"], counts["ci"], counts["n2i"], names, list(rows))


def fit_mh(
    data: pd.DataFrame | None = None,
    *,
    ai: Column = "ai",
    n1i: Column = "n1i",
    ci: Column = "ci",
    n2i: Column = "n2i",
    measure: str = "OR",
    level: float = 95.0,
    labels: Column | None = None,
    correct: bool = True,
    source: str | None = None,
) -> MetaResult:
    """Mantel-Haenszel common-effect estimate from 2x2 tables.

    Parameters
    ----------
    data
        A table with one row per study, or None when the counts are given directly.
    ai, n1i, ci, n2i
        Events and totals in group 1 (treatment) and group 2 (control): columns
        of ``data`` or one value per study.
    measure
        ``OR`` (log odds ratio, Robins-Breslow-Greenland variance), ``RR`` (log
        risk ratio, Greenland-Robins variance) or ``RD`` (risk difference,
        Sato-Greenland-Robins variance).
    level
        Confidence level as a percentage (95) or a fraction (0.95).
    labels, source
        Study labels (as for :func:`metaan.fit`) and the file, for messages.
    correct
        Continuity correction in the Cochran-Mantel-Haenszel test (OR only).

    Returns
    -------
    MetaResult
        With ``method="MH"``; for OR also ``MH``/``MHp`` (Cochran-Mantel-Haenszel
        test, 1 df) and ``TA``/``TAp`` (Tarone's test of homogeneity, k - 1 df).
    """
    from metaan.models import check_choice, check_level

    measure = check_choice(measure, ("OR", "RR", "RD"), "measure for Mantel-Haenszel")
    level = check_level(level)
    t = _tables_of(data, ai, n1i, ci, n2i, labels, source)
    if t.a.size == 0:
        raise InputError("no study has complete 2x2 counts")
    a, b, c, d = t.a, t.b, t.c, t.d
    n1, n2, n = t.n1, t.n2, t.n
    extra: dict[str, float | None] = {}
    if measure == "OR":
        r = a * d / n
        s = b * c / n
        sr, ss = float(r.sum()), float(s.sum())
        if sr == 0.0 or ss == 0.0:
            raise NotEstimableError(
                "the Mantel-Haenszel odds ratio is 0 or infinite for these tables"
            )
        estimate = math.log(sr / ss)
        pp = (a + d) / n
        qq = (b + c) / n
        var = (
            float(np.sum(pp * r)) / (2 * sr**2)
            + float(np.sum(pp * s + qq * r)) / (2 * sr * ss)
            + float(np.sum(qq * s)) / (2 * ss**2)
        )
        weights = 100.0 * s / ss
        extra = _cmh_and_tarone(t, math.exp(estimate), correct)
    elif measure == "RR":
        r = a * n2 / n
        s = c * n1 / n
        sr, ss = float(r.sum()), float(s.sum())
        if sr == 0.0 or ss == 0.0:
            raise NotEstimableError(
                "the Mantel-Haenszel risk ratio is 0 or infinite for these tables"
            )
        estimate = math.log(sr / ss)
        var = float(np.sum((n1 * n2 * (a + c) - a * c * n) / n**2)) / (sr * ss)
        weights = 100.0 * s / ss
    else:
        wts = n1 * n2 / n
        sw = float(wts.sum())
        estimate = float(np.sum((a * n2 - c * n1) / n)) / sw
        p_term = (n1**2 * c - n2**2 * a + n1 * n2 * (n2 - n1) / 2.0) / n**2
        q_term = (a * (n2 - c) + c * (n1 - a)) / (2.0 * n)
        var = (estimate * float(p_term.sum()) + float(q_term.sum())) / sw**2
        weights = 100.0 * wts / sw
    yi, vi, use = _iv_effects(t, measure)
    return _result(
        t=t,
        method="MH",
        measure=measure,
        level=level,
        estimate=estimate,
        se=math.sqrt(max(var, 0.0)),
        yi=yi,
        vi=vi,
        use=use,
        weights=weights,
        extra=extra,
    )


def _cmh_and_tarone(t: _Tables, odds_ratio: float, correct: bool) -> dict[str, float | None]:
    """Cochran-Mantel-Haenszel test and Tarone's corrected Breslow-Day test."""
    a, b, c, d = t.a, t.b, t.c, t.d
    n1, n2, n = t.n1, t.n2, t.n
    events = a + c
    non_events = b + d
    informative = n > 1
    expected = events * n1 / n
    variance = np.where(
        informative, events * non_events * n1 * n2 / (n**2 * np.maximum(n - 1, 1)), 0.0
    )
    diff = abs(float(a.sum() - expected.sum()))
    if correct:
        diff = max(0.0, diff - 0.5)
    sv = float(variance.sum())
    cmh = diff**2 / sv if sv > 0 else math.nan
    cmh_p = chi2_sf(cmh, 1) if math.isfinite(cmh) else math.nan

    # Fitted a under the common odds ratio: the root in [max(0, m - n2), min(n1, m)]
    # of (a (n2 - m + a)) / ((n1 - a)(m - a)) = OR, a quadratic in a.
    psi = odds_ratio
    lo = np.maximum(0.0, events - n2)
    hi = np.minimum(n1, events)
    qa = 1.0 - psi
    qb = (n2 - events) + psi * (n1 + events)
    qc = -psi * n1 * events
    with np.errstate(divide="ignore", invalid="ignore"):
        disc = np.sqrt(np.maximum(qb * qb - 4.0 * qa * qc, 0.0))
        r1 = (-qb + disc) / (2.0 * qa)
        r2 = (-qb - disc) / (2.0 * qa)
        linear = -qc / qb
    near_one = abs(qa) < 1e-12
    in1 = (r1 >= lo - 1e-9) & (r1 <= hi + 1e-9)
    fitted = np.where(near_one, linear, np.where(in1, r1, r2))
    fb = n1 - fitted
    fc = events - fitted
    fd = n2 - events + fitted
    varying = lo < hi
    with np.errstate(divide="ignore", invalid="ignore"):
        v_fit = 1.0 / (1.0 / fitted + 1.0 / fb + 1.0 / fc + 1.0 / fd)
    v_fit = np.where(varying, v_fit, 0.0)
    dev = np.where(varying, a - fitted, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        contrib = np.where(v_fit > 0, dev * dev / v_fit, 0.0)
    bd = float(contrib.sum())
    sv_fit = float(v_fit.sum())
    ta = bd - float(dev.sum()) ** 2 / sv_fit if sv_fit > 0 else math.nan
    df = int(np.count_nonzero(varying)) - 1
    ta_p = chi2_sf(ta, df) if df >= 1 and math.isfinite(ta) else math.nan
    return {"MH": cmh, "MHp": cmh_p, "TA": ta, "TAp": ta_p}


def fit_peto(
    data: pd.DataFrame | None = None,
    *,
    ai: Column = "ai",
    n1i: Column = "n1i",
    ci: Column = "ci",
    n2i: Column = "n2i",
    level: float = 95.0,
    labels: Column | None = None,
    source: str | None = None,
) -> MetaResult:
    """Peto's one-step common odds ratio (Yusuf et al. 1985), on the log scale.

    The arguments are those of :func:`fit_mh`.

    Each table contributes O - E (observed minus expected events in group 1 under
    the hypergeometric distribution) and its variance V; the log odds ratio is
    sum(O - E) / sum(V) with variance 1 / sum(V). Q is
    sum((O - E)^2 / V) - sum(O - E)^2 / sum(V) over tables with V > 0.
    """
    from metaan.models import check_level

    level = check_level(level)
    t = _tables_of(data, ai, n1i, ci, n2i, labels, source)
    if t.a.size == 0:
        raise InputError("no study has complete 2x2 counts")
    a = t.a
    n1, n2, n = t.n1, t.n2, t.n
    events = t.a + t.c
    non_events = t.b + t.d
    expected = events * n1 / n
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = events * non_events * (n1 / n) * (n2 / n) / (n - 1)
    use = np.isfinite(variance) & (variance > 0)
    o_e = a - expected
    sv = float(variance[use].sum())
    if sv == 0.0:
        raise NotEstimableError("Peto's odds ratio needs at least one table with events")
    estimate = float(o_e[use].sum()) / sv
    se = math.sqrt(1.0 / sv)
    with np.errstate(divide="ignore", invalid="ignore"):
        yi = np.where(use, o_e / variance, np.nan)
        vi = np.where(use, 1.0 / variance, np.nan)
    weights = 100.0 * np.where(use, variance, 0.0) / sv
    return _result(
        t=t,
        method="PETO",
        measure="OR",
        level=level,
        estimate=estimate,
        se=se,
        yi=yi,
        vi=vi,
        use=use,
        weights=weights,
    )
