"""Small-study effects: regression tests (Egger, PET, PEESE), Begg and Mazumdar's
rank correlation, trim-and-fill and Rosenthal's fail-safe N.

Every function takes a fitted :class:`~metaan.results.MetaResult` (its studies,
method, test and level are used) or an effect-size table (fitted here with the
``method``, ``test`` and ``level`` given), and returns a frozen result with
``to_frame()``, ``to_dict()`` and a one-line repr. The numbers match R's
metafor 3.8 (``regtest``, ``ranktest``, ``trimfill``, ``fsn``).

All of these tests have little power with few studies: every result carries a
warning when k < 10 (Sterne et al. 2011).

References
----------
Egger, M., Davey Smith, G., Schneider, M., & Minder, C. (1997). Bias in
meta-analysis detected by a simple, graphical test. *BMJ*, 315, 629-634.

Sterne, J. A. C., & Egger, M. (2005). Regression methods to detect publication
and other bias in meta-analysis. In H. R. Rothstein et al. (Eds.), *Publication
bias in meta-analysis* (pp. 99-110). Wiley.

Stanley, T. D., & Doucouliagos, H. (2014). Meta-regression approximations to
reduce publication selection bias. *Research Synthesis Methods*, 5, 60-78.

Begg, C. B., & Mazumdar, M. (1994). Operating characteristics of a rank
correlation test for publication bias. *Biometrics*, 50, 1088-1101.

Duval, S., & Tweedie, R. (2000). Trim and fill: a simple funnel-plot-based
method of testing and adjusting for publication bias in meta-analysis.
*Biometrics*, 56, 455-463.

Rosenthal, R. (1979). The file drawer problem and tolerance for null results.
*Psychological Bulletin*, 86, 638-641.

Sterne, J. A. C., et al. (2011). Recommendations for examining and interpreting
funnel plot asymmetry in meta-analyses of randomised controlled trials. *BMJ*,
343, d4002.

Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package.
*Journal of Statistical Software*, 36(3), 1-48 (the R sources of ``regtest``,
``ranktest``, ``trimfill`` and ``fsn`` define the conventions followed here).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, cast

import numpy as np
import pandas as pd

from metaan._args import Column, check_choice, check_level, is_default, refuse_unused
from metaan._base import Result
from metaan._dist import norm_isf, norm_sf, t_isf, t_sf
from metaan._format import fit_header, fmt, fmt_p, format_excluded, p_equals
from metaan._json import json_number
from metaan.engine import knha_factor
from metaan.errors import ConvergenceError, InputError, NotEstimableError
from metaan.estimators import WLS, FloatArray, estimate_tau2
from metaan.models import METHODS, TESTS, fit
from metaan.results import MetaResult

__all__ = [
    "FEW_STUDIES",
    "FailSafeN",
    "RankTest",
    "RegressionTest",
    "SmallStudyEffects",
    "TrimAndFill",
    "egger_test",
    "fail_safe_n",
    "peese",
    "rank_test",
    "regression_test",
    "small_study_effects",
    "trim_and_fill",
]

#: Below this many studies, tests for small-study effects are flagged as weak
#: (Sterne et al. 2011 recommend them only with at least 10 studies).
FEW_STUDIES = 10

#: Begg's test computes the exact null distribution of Kendall's statistic for
#: untied data up to this many studies (O(k^3) time); above it the normal
#: approximation is used, whose error is then far below any reporting precision.
EXACT_RANK_MAX_K = 500

RegressionModel = Literal["lm", "rma"]
Predictor = Literal["sei", "vi"]
Side = Literal["left", "right"]

_INVERSE_VARIANCE = frozenset(METHODS)


def _few_studies_warning(k: int) -> tuple[str, ...]:
    if k >= FEW_STUDIES:
        return ()
    return (
        f"only {k} studies: with fewer than {FEW_STUDIES}, tests for small-study effects "
        "have too little power to tell asymmetry from chance (Sterne et al. 2011)",
    )


def as_fit(
    data: MetaResult | pd.DataFrame | None,
    *,
    yi: Column = "yi",
    vi: Column = "vi",
    sei: Column | None = None,
    labels: Column | None = None,
    method: str | None = None,
    test: str | None = None,
    level: float | None = None,
    source: str | None = None,
) -> MetaResult:
    """The inverse-variance fit an analysis works on.

    A :class:`MetaResult` is used as it is, or refitted to its own studies when
    ``method``, ``test`` or ``level`` ask for something else; a table (with its
    columns ``yi``, ``vi`` or ``sei``, ``labels``), or the values with no table,
    is fitted with them (default REML, z, 95%).

    Raises
    ------
    InputError
        A Mantel-Haenszel or Peto result (these analyses need inverse-variance
        weights); columns named with a fitted result (they would be ignored);
        data that are neither a result nor a table.
    """
    if isinstance(data, MetaResult):
        _refuse_columns(yi, vi, sei, labels)
        if data.method not in _INVERSE_VARIANCE:
            raise InputError(
                f"this analysis needs an inverse-variance fit, not a {data.method} one",
                fix="fit the effect sizes with method EE or a tau^2 estimator such as REML",
            )
        want_method = data.method if method is None else check_choice(method, METHODS, "method")
        want_test = data.test if test is None else check_choice(test, TESTS, "test")
        want_level = data.level if level is None else check_level(level)
        if (want_method, want_test, want_level) == (data.method, data.test, data.level):
            return data
        refit = fit(
            yi=data.yi,
            vi=data.vi,
            method=want_method,
            test=want_test,
            level=want_level,
            measure=data.measure,
            labels=data.labels,
        )
        return replace(refit, rows=data.rows, excluded=data.excluded)
    if data is None or isinstance(data, pd.DataFrame):
        return fit(
            data,
            yi=yi,
            vi=vi,
            sei=sei,
            labels=labels,
            method="REML" if method is None else method,
            test="z" if test is None else test,
            level=95.0 if level is None else level,
            source=source,
        )
    raise InputError(
        f"expected a fitted MetaResult or an effect-size table, not {type(data).__name__}",
        fix="pass the result of metaan.fit or a table with yi and vi columns",
    )


def _columns(yi: Column, vi: Column, sei: Column | None, labels: Column | None) -> dict[str, Any]:
    return {"yi": yi, "vi": vi, "sei": sei, "labels": labels}


def _refuse_columns(yi: Column, vi: Column, sei: Column | None, labels: Column | None) -> None:
    """With a fitted result, the columns of a table would be ignored: say so."""
    refuse_unused(
        "the analysis uses the studies of the fitted result",
        yi=None if is_default(yi, "yi") else yi,
        vi=None if is_default(vi, "vi") else vi,
        sei=sei,
        labels=labels,
    )


def _need_studies(res: MetaResult, minimum: int, what: str) -> None:
    if res.k < minimum:
        raise NotEstimableError(
            f"{what} needs at least {minimum} studies; {res.k} "
            f"{'has' if res.k == 1 else 'have'} an effect size"
        )


def _warning_lines(warnings: tuple[str, ...]) -> list[str]:
    return [f"Warning: {w}" for w in warnings]


def _analysis_table(frame: pd.DataFrame) -> list[str]:
    """The rows of :meth:`SmallStudyEffects.to_frame` as aligned text."""
    width = max(len("analysis"), *(len(name) for name in frame["analysis"]))
    lines = [
        f"{'analysis':<{width}} {'statistic':>20} {'df':>4} {'p':>8} "
        f"{'estimate':>9} {'ci.lb':>9} {'ci.ub':>9}"
    ]
    for row in frame.to_dict(orient="records"):
        value, df, pval = (json_number(row[name]) for name in ("value", "df", "pval"))
        if row["statistic"] in ("k0", "N"):
            stat = f"{row['statistic']} = {int(value or 0)}"
        else:
            stat = f"{row['statistic']} = {fmt(value, 3)}"
        df_text = "" if df is None else str(int(df))
        p_text = "" if pval is None else fmt_p(pval)
        estimate, lb, ub = (
            "" if x is None else fmt(x)
            for x in (json_number(row[name]) for name in ("estimate", "ci_lb", "ci_ub"))
        )
        lines.append(
            f"{row['analysis']:<{width}} {stat:>20} {df_text:>4} {p_text:>8} "
            f"{estimate:>9} {lb:>9} {ub:>9}".rstrip()
        )
    return lines


def _one_row(result: RegressionTest | RankTest | FailSafeN) -> pd.DataFrame:
    """A test's result as a one-row table: its dict without ``analysis``, the warnings
    joined by semicolons."""
    row = result.to_dict()
    row["warnings"] = "; ".join(result.warnings)
    del row["analysis"]
    return pd.DataFrame([row])


# --------------------------------------------------------------------------------------
# Regression tests: Egger, PET and PEESE
# --------------------------------------------------------------------------------------

_PREDICTOR_NAMES = {"sei": "standard error", "vi": "sampling variance"}
_MODEL_NAMES = {"lm": "weighted regression", "rma": "mixed-effects meta-regression"}


@dataclass(frozen=True, repr=False)
class RegressionTest(Result):
    """A regression test for funnel-plot asymmetry and its limit estimate.

    The effect sizes are regressed on a measure of precision (``predictor``): the
    standard error (Egger's test; the intercept is the PET estimate) or the
    sampling variance (PEESE). ``stat``/``pval`` test the slope; the intercept,
    the predicted effect of an infinitely precise study, is ``limit_estimate``
    with its SE and confidence interval.

    Attributes
    ----------
    model
        ``"lm"``: weighted least squares with weights 1/vi and a multiplicative
        residual variance (Egger et al. 1997); ``"rma"``: mixed-effects
        meta-regression with the fit's tau^2 estimator and test (Sterne & Egger 2005).
    predictor
        ``"sei"`` or ``"vi"``.
    method, test, level
        The tau^2 estimator and test of the mixed-effects model (for ``"lm"``,
        ``method`` is ``None`` and ``test`` is ``"t"``), and the confidence level
        in percent.
    k
        Number of studies.
    stat, df, pval
        Test of the slope: a t statistic with ``df`` degrees of freedom (``lm``,
        or ``rma`` with the Knapp-Hartung test) or a z statistic (``df`` None).
    slope, slope_se
        The coefficient of the predictor and its standard error.
    limit_estimate, limit_se, ci_lb, ci_ub
        The intercept (limit estimate), its SE and confidence interval.
    tau2
        Residual tau^2 of the mixed-effects model (``None`` for ``"lm"``).
    warnings
        Caveats, e.g. too few studies for the test to mean much.
    """

    model: RegressionModel
    predictor: Predictor
    method: str | None
    test: str
    level: float
    k: int
    stat: float
    df: int | None
    pval: float
    slope: float
    slope_se: float
    limit_estimate: float
    limit_se: float
    ci_lb: float
    ci_ub: float
    tau2: float | None
    warnings: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """What the analysis is called: Egger's test or PEESE, and its model."""
        test = "Egger's test" if self.predictor == "sei" else "PEESE"
        return f"{test} ({_MODEL_NAMES[self.model]} on the {_PREDICTOR_NAMES[self.predictor]})"

    def _short(self) -> str:
        label = "Egger" if self.predictor == "sei" else "PEESE"
        stat = f"t({self.df})" if self.df is not None else "z"
        return (
            f"{label} {self.model} k={self.k} {stat}={self.stat:.4g} "
            f"p={self.pval:.4g} limit={self.limit_estimate:.4g} "
            f"[{self.ci_lb:.4g}, {self.ci_ub:.4g}]"
        )

    def summary(self) -> str:
        """The test of the slope and the limit estimate, as a person reads them."""
        stat = f"t({self.df})" if self.df is not None else "z"
        model = f"; tau^2 estimator {self.method}, residual tau^2 = {fmt(self.tau2)}"
        lines = [
            f"{self.name}: k = {self.k}" + (model if self.method is not None else ""),
            f"Test of the slope: {stat} = {fmt(self.stat, 3)}, {p_equals(self.pval)}; "
            f"slope {fmt(self.slope)} (SE {fmt(self.slope_se)})",
            f"Limit estimate (the intercept): {fmt(self.limit_estimate)} "
            f"(SE {fmt(self.limit_se)}), {self.level:g}% CI [{fmt(self.ci_lb)}, {fmt(self.ci_ub)}]",
        ]
        return "\n".join(lines + _warning_lines(self.warnings))

    def to_dict(self) -> dict[str, Any]:
        """Every number as a JSON-ready dict (NaN becomes None)."""
        return {
            "analysis": "regression_test",
            "name": self.name,
            "model": self.model,
            "predictor": self.predictor,
            "method": self.method,
            "test": self.test,
            "level": self.level,
            "k": self.k,
            "stat": json_number(self.stat),
            "df": self.df,
            "pval": json_number(self.pval),
            "slope": json_number(self.slope),
            "slope_se": json_number(self.slope_se),
            "limit_estimate": json_number(self.limit_estimate),
            "limit_se": json_number(self.limit_se),
            "ci_lb": json_number(self.ci_lb),
            "ci_ub": json_number(self.ci_ub),
            "tau2": json_number(self.tau2),
            "warnings": list(self.warnings),
        }

    def to_frame(self) -> pd.DataFrame:
        """The result as a one-row table."""
        return _one_row(self)


def _mixed_regression(
    yi: FloatArray, vi: FloatArray, x: FloatArray, method: str
) -> tuple[WLS, float]:
    """The meta-regression of ``yi`` on an intercept and ``x``: its weighted fit and tau^2."""
    X = np.column_stack([np.ones_like(yi), x])
    tau2 = 0.0 if method == "EE" else estimate_tau2(yi, vi, method, X).tau2
    return WLS(yi, 1.0 / (vi + tau2), X), tau2


def _asymmetry_regression(
    res: MetaResult, x: FloatArray, model: str
) -> tuple[FloatArray, FloatArray, int | None, float | None]:
    """Coefficients (intercept, slope), their SEs, the t test's df (None for z) and
    tau^2 of the regression of the effects on the precision measure ``x``."""
    yi, vi, k = res.yi, res.vi, res.k
    if model == "lm":
        wls = WLS(yi, 1.0 / vi, np.column_stack([np.ones_like(yi), x]))
        vb = cast(FloatArray, wls.a_inv) * (wls.rss() / (k - 2))
        return wls.b, np.sqrt(np.diag(vb)), k - 2, None
    wls, tau2 = _mixed_regression(yi, vi, x, res.method)
    vb = cast(FloatArray, wls.a_inv)
    df = None
    if res.test == "knha":
        df = k - 2
        vb = vb * float(knha_factor(wls.rss(), df))
    return wls.b, np.sqrt(np.diag(vb)), df, tau2


def regression_test(
    data: MetaResult | pd.DataFrame | None = None,
    *,
    yi: Column = "yi",
    vi: Column = "vi",
    sei: Column | None = None,
    labels: Column | None = None,
    model: str = "rma",
    predictor: str = "sei",
    method: str | None = None,
    test: str | None = None,
    level: float | None = None,
) -> RegressionTest:
    """Regression test for funnel-plot asymmetry (Egger's test, PET, PEESE).

    Parameters
    ----------
    data, yi, vi, sei, labels
        A fitted :class:`~metaan.results.MetaResult`, or the studies as for
        :func:`metaan.fit` (a table and its columns, or the values).
    model
        ``"rma"`` (default): a mixed-effects meta-regression with the fit's tau^2
        estimator and test (Sterne & Egger 2005; metafor's ``regtest`` default).
        ``"lm"``: the classic weighted regression of Egger et al. (1997), weights
        1/vi with an estimated multiplicative dispersion, tested with t(k - 2).
    predictor
        ``"sei"`` (Egger's test; the intercept is the PET estimate) or ``"vi"``
        (PEESE; Stanley & Doucouliagos 2014).
    method, test, level
        Override the fit's settings (or set them for a table; default REML, z, 95).

    Returns
    -------
    RegressionTest

    Raises
    ------
    NotEstimableError
        Fewer than 3 studies, or a predictor that does not vary (all studies
        equally precise), as metafor refuses.
    """
    model = cast(RegressionModel, check_choice(model, ("lm", "rma"), "model"))
    predictor = cast(Predictor, check_choice(predictor, ("sei", "vi"), "predictor"))
    res = as_fit(data, yi=yi, vi=vi, sei=sei, labels=labels, method=method, test=test, level=level)
    _need_studies(res, 3, "a regression test for funnel-plot asymmetry")
    yi, vi = res.yi, res.vi
    x = np.sqrt(vi) if predictor == "sei" else vi.copy()
    if np.ptp(x) <= 1e-12 * float(np.max(x)):
        raise NotEstimableError(
            f"every study has the same {_PREDICTOR_NAMES[predictor]}, so the regression "
            "on it cannot be fitted"
        )
    k = res.k
    alpha = 1.0 - res.level / 100.0
    b, se, df, tau2 = _asymmetry_regression(res, x, model)
    warnings = _few_studies_warning(k)
    if np.ptp(yi) <= 1e-12 * float(np.max(np.abs(yi))):
        # Equal effects: the line is exact (slope 0), and a test of the slope
        # would be the ratio of two rounding errors.
        b = np.array([float(yi[0]), 0.0])
        se = np.where(se > 1e-12 * np.abs(b).max(initial=1.0), se, 0.0)
        warnings = (*warnings, "every study has the same effect: the slope is 0 and has no test")
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = float(b[1] / se[1]) if se[1] > 0.0 else math.nan
    if df is None:
        pval = 2.0 * norm_sf(abs(stat))
        crit = norm_isf(alpha / 2.0)
    else:
        pval = 2.0 * t_sf(abs(stat), df)
        crit = t_isf(alpha / 2.0, df)
    return RegressionTest(
        model=model,
        predictor=predictor,
        method=None if model == "lm" else res.method,
        test="t" if model == "lm" else res.test,
        level=res.level,
        k=k,
        stat=stat,
        df=df,
        pval=pval,
        slope=float(b[1]),
        slope_se=float(se[1]),
        limit_estimate=float(b[0]),
        limit_se=float(se[0]),
        ci_lb=float(b[0] - crit * se[0]),
        ci_ub=float(b[0] + crit * se[0]),
        tau2=tau2,
        warnings=warnings,
    )


def egger_test(
    data: MetaResult | pd.DataFrame | None = None,
    *,
    yi: Column = "yi",
    vi: Column = "vi",
    sei: Column | None = None,
    labels: Column | None = None,
    model: str = "rma",
    method: str | None = None,
    test: str | None = None,
    level: float | None = None,
) -> RegressionTest:
    """Egger's regression test on the standard error, with the PET limit estimate.

    ``model="lm"`` is the classic weighted regression (Egger et al. 1997),
    ``model="rma"`` the mixed-effects version (Sterne & Egger 2005). See
    :func:`regression_test` for the parameters.
    """
    return regression_test(
        data, **_columns(yi, vi, sei, labels), model=model, predictor="sei", method=method,
        test=test, level=level,
    )  # fmt: skip


def peese(
    data: MetaResult | pd.DataFrame | None = None,
    *,
    yi: Column = "yi",
    vi: Column = "vi",
    sei: Column | None = None,
    labels: Column | None = None,
    model: str = "rma",
    method: str | None = None,
    test: str | None = None,
    level: float | None = None,
) -> RegressionTest:
    """PEESE: the regression on the sampling variance and its limit estimate
    (Stanley & Doucouliagos 2014). See :func:`regression_test` for the parameters."""
    return regression_test(
        data, **_columns(yi, vi, sei, labels), model=model, predictor="vi", method=method,
        test=test, level=level,
    )  # fmt: skip


# --------------------------------------------------------------------------------------
# Begg and Mazumdar's rank correlation
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class RankTest(Result):
    """Begg and Mazumdar's rank correlation test.

    Attributes
    ----------
    k
        Number of studies.
    tau
        Kendall's tau (tau-b when there are ties) between the standardised
        deviates of the effects from the common-effect estimate and their variances.
    stat
        The number of concordant pairs when the p-value is exact; otherwise the
        z statistic of the normal approximation.
    pval
        Two-sided p-value.
    exact
        Whether ``pval`` is the exact permutation p-value (no ties).
    warnings
        Caveats: too few studies, ties.
    """

    k: int
    tau: float
    stat: float
    pval: float
    exact: bool
    warnings: tuple[str, ...] = ()

    def _short(self) -> str:
        how = "exact" if self.exact else "normal approximation"
        return f"k={self.k} tau={self.tau:.4g} p={self.pval:.4g} ({how})"

    def summary(self) -> str:
        """Kendall's tau and its p-value, as a person reads them."""
        how = "exact p-value" if self.exact else "normal approximation"
        lines = [
            f"Begg and Mazumdar's rank correlation: k = {self.k}, Kendall's tau = "
            f"{fmt(self.tau)}, {p_equals(self.pval)} ({how})"
        ]
        return "\n".join(lines + _warning_lines(self.warnings))

    def to_dict(self) -> dict[str, Any]:
        """Every number as a JSON-ready dict."""
        return {
            "analysis": "rank_test",
            "name": "Begg and Mazumdar's rank correlation",
            "k": self.k,
            "tau": json_number(self.tau),
            "stat": json_number(self.stat),
            "pval": json_number(self.pval),
            "exact": self.exact,
            "warnings": list(self.warnings),
        }

    def to_frame(self) -> pd.DataFrame:
        """The result as a one-row table."""
        return _one_row(self)


def _kendall_lower_tail(q: int, n: int) -> float:
    """P(C <= q) for the number C of concordant pairs among ``n`` untied pairs
    under independence.

    C has the distribution of the number of inversions of a random permutation,
    whose generating function is prod_{j=1..n} (1 + x + ... + x^(j-1)) / n!
    (Kendall 1938). It is built one factor at a time as probabilities (each step
    a moving average over j terms), which stay in floating-point range for any n.
    """
    total = n * (n - 1) // 2
    if q < 0:
        return 0.0
    if q >= total:
        return 1.0
    probs = np.ones(1)
    for j in range(2, n + 1):
        cum = np.concatenate(([0.0], np.cumsum(probs)))
        size = probs.size + j - 1
        upper = np.minimum(np.arange(1, size + 1), probs.size)
        lower = np.maximum(np.arange(1, size + 1) - j, 0)
        new = (cum[upper] - cum[lower]) / j
        # The distribution is symmetric; mirroring the lower half keeps the upper
        # tail free of the cancellation in the cumulative sums.
        half = (size + 1) // 2
        new[size - half :] = new[:half][::-1]
        probs = new
    return float(np.sum(probs[: q + 1]))


def _rank_pvalue(
    x: FloatArray, y: FloatArray, exact: bool | None
) -> tuple[float, float, float, bool]:
    """Kendall's tau of x and y, the statistic and two-sided p-value as R's
    ``cor.test(method="kendall", exact=TRUE)`` computes them."""
    n = x.size
    from scipy import stats  # imported here: scipy.stats takes half a second to load

    tau = float(stats.kendalltau(x, y).statistic)
    ties = min(np.unique(x).size, np.unique(y).size) < n
    use_exact = (not ties) and (n <= EXACT_RANK_MAX_K if exact is None else exact)
    if use_exact:
        total = n * (n - 1) // 2
        q = round((tau + 1.0) * n * (n - 1) / 4.0)
        tail = _kendall_lower_tail(min(q, total - q), n)
        return tau, float(q), min(2.0 * tail, 1.0), True
    _, x_counts = np.unique(x, return_counts=True)
    _, y_counts = np.unique(y, return_counts=True)
    xt = x_counts[x_counts > 1].astype(float)
    yt = y_counts[y_counts > 1].astype(float)
    t0 = n * (n - 1) / 2.0
    t1 = float(np.sum(xt * (xt - 1))) / 2.0
    t2 = float(np.sum(yt * (yt - 1))) / 2.0
    s = tau * math.sqrt((t0 - t1) * (t0 - t2))
    v0 = n * (n - 1) * (2 * n + 5)
    vt = float(np.sum(xt * (xt - 1) * (2 * xt + 5)))
    vu = float(np.sum(yt * (yt - 1) * (2 * yt + 5)))
    v1 = float(np.sum(xt * (xt - 1))) * float(np.sum(yt * (yt - 1)))
    v2 = float(np.sum(xt * (xt - 1) * (xt - 2))) * float(np.sum(yt * (yt - 1) * (yt - 2)))
    var_s = (v0 - vt - vu) / 18.0 + v1 / (2.0 * n * (n - 1)) + v2 / (9.0 * n * (n - 1) * (n - 2))
    if not var_s > 0.0 or math.isnan(tau):
        # Every standardised effect (or every variance) is the same: Kendall's tau
        # is undefined, as R's cor.test reports it (NA).
        return math.nan, math.nan, math.nan, False
    z = s / math.sqrt(var_s)
    return tau, z, 2.0 * norm_sf(abs(z)), False


def rank_test(
    data: MetaResult | pd.DataFrame | None = None,
    *,
    yi: Column = "yi",
    vi: Column = "vi",
    sei: Column | None = None,
    labels: Column | None = None,
    exact: bool | None = None,
) -> RankTest:
    """Begg and Mazumdar's (1994) rank correlation test for funnel-plot asymmetry.

    The effects are standardised as (y_i - mu) / sqrt(v_i - var(mu)) with the
    common-effect estimate mu, and Kendall's tau between them and the variances
    v_i is tested. The p-value is exact (the permutation distribution of
    Kendall's statistic) when there are no ties, as metafor's ``ranktest``
    computes it, and otherwise from the normal approximation with the variance
    corrected for ties (Kendall 1970), as R's ``cor.test`` computes it.

    Parameters
    ----------
    data, yi, vi, sei, labels
        A fitted :class:`~metaan.results.MetaResult`, or the studies as for
        :func:`metaan.fit` (a table and its columns, or the values).
    exact
        ``None`` (default): exact without ties up to :data:`EXACT_RANK_MAX_K`
        studies; ``True``: exact without ties at any k (O(k^3) time);
        ``False``: always the normal approximation.

    Returns
    -------
    RankTest
    """
    res = as_fit(data, yi=yi, vi=vi, sei=sei, labels=labels)
    _need_studies(res, 3, "the rank correlation test")
    yi, vi = res.yi, res.vi
    w = 1.0 / vi
    sw = float(w.sum())
    mu = float(np.dot(w, yi)) / sw
    standardised = (yi - mu) / np.sqrt(vi - 1.0 / sw)
    tau, stat, pval, was_exact = _rank_pvalue(standardised, vi, exact)
    warnings = list(_few_studies_warning(res.k))
    if math.isnan(tau):
        warnings.append(
            "every study has the same standardised effect or the same variance: "
            "Kendall's tau is undefined"
        )
    elif not was_exact and exact is not False:
        if min(np.unique(standardised).size, np.unique(vi).size) < res.k:
            warnings.append("tied values: the p-value is from the normal approximation")
        else:
            warnings.append(
                f"more than {EXACT_RANK_MAX_K} studies: the p-value is from the normal "
                "approximation"
            )
    return RankTest(
        k=res.k, tau=tau, stat=stat, pval=pval, exact=was_exact, warnings=tuple(warnings)
    )


# --------------------------------------------------------------------------------------
# Trim-and-fill
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class TrimAndFill(Result):
    """Trim-and-fill: the number of studies estimated missing, and the fit with
    them filled in.

    Attributes
    ----------
    fit
        The model fitted to the observed and the filled studies (the original
        fit when no study is missing). Its ``yi``/``vi``/``labels`` list the
        observed studies first, then the filled ones (labelled ``Filled 1``, ...).
    original
        The fit to the observed studies.
    k0
        Estimated number of missing studies (L0 estimator).
    se_k0
        Its standard error (Duval & Tweedie 2000).
    side
        The side of the funnel plot on which studies are missing.
    filled_yi, filled_vi
        The filled studies: the trimmed studies mirrored about the trimmed estimate.
    estimator
        ``"L0"``.
    warnings
        Caveats, e.g. too few studies.
    """

    fit: MetaResult
    original: MetaResult
    k0: int
    se_k0: float
    side: Side
    filled_yi: FloatArray
    filled_vi: FloatArray
    estimator: str = "L0"
    warnings: tuple[str, ...] = ()

    @property
    def filled_labels(self) -> tuple[str, ...]:
        """Labels of the filled studies."""
        return tuple(f"Filled {i + 1}" for i in range(self.k0))

    def _short(self) -> str:
        res = self.fit
        return (
            f"{res.method} k0={self.k0} side={self.side} k={res.k} "
            f"est={res.estimate:.4g} [{res.ci_lb:.4g}, {res.ci_ub:.4g}]"
        )

    def summary(self) -> str:
        """k0, the estimate before and after filling, and the filled studies."""
        before, after = self.original, self.fit
        lines = [
            f"Trim-and-fill ({self.estimator}): {self.k0} studies estimated missing on the "
            f"{self.side} (SE of k0 {fmt(self.se_k0, 2)})",
            f"Observed studies ({before.k}): {fmt(before.estimate)} "
            f"[{fmt(before.ci_lb)}, {fmt(before.ci_ub)}]",
            f"With the filled studies ({after.k}): {fmt(after.estimate)} "
            f"[{fmt(after.ci_lb)}, {fmt(after.ci_ub)}] ({after.method}, {after.level:g}% CI)",
        ]
        for label, y, v in zip(self.filled_labels, self.filled_yi, self.filled_vi, strict=True):
            lines.append(f"  {label}: yi = {fmt(float(y))}, vi = {fmt(float(v))}")
        return "\n".join(lines + _warning_lines(self.warnings))

    def to_dict(self) -> dict[str, Any]:
        """The filled fit's summary with k0, side and the filled studies."""
        return {
            "analysis": "trim_and_fill",
            "name": f"Trim-and-fill ({self.estimator})",
            "estimator": self.estimator,
            "k0": self.k0,
            "se_k0": json_number(self.se_k0),
            "side": self.side,
            "fit": self.fit.to_dict(),
            "original": self.original.to_dict(),
            "filled": [
                {"study": label, "yi": json_number(y), "vi": json_number(v)}
                for label, y, v in zip(
                    self.filled_labels,
                    self.filled_yi.tolist(),
                    self.filled_vi.tolist(),
                    strict=True,
                )
            ],
            "warnings": list(self.warnings),
        }

    def to_frame(self) -> pd.DataFrame:
        """The studies of the filled analysis, with a ``filled`` column marking the
        imputed ones."""
        frame = self.fit.to_frame()
        frame["filled"] = [False] * self.original.k + [True] * self.k0
        return frame


def _pooled_mean(yi: FloatArray, vi: FloatArray, method: str) -> float:
    """The intercept-only estimate under ``method`` (a single study is its own estimate)."""
    if method == "EE" or yi.size < 2:
        w = 1.0 / vi
    else:
        w = 1.0 / (vi + estimate_tau2(yi, vi, method).tau2)
    return float(np.dot(w, yi)) / float(w.sum())


def trim_and_fill(
    data: MetaResult | pd.DataFrame | None = None,
    *,
    yi: Column = "yi",
    vi: Column = "vi",
    sei: Column | None = None,
    labels: Column | None = None,
    side: str | None = None,
    method: str | None = None,
    test: str | None = None,
    level: float | None = None,
    maxiter: int = 100,
) -> TrimAndFill:
    """Duval and Tweedie's (2000) trim-and-fill with the L0 estimator.

    Studies are trimmed from the side of the funnel plot opposite ``side`` until
    the rank-based L0 estimate of the number of missing studies k0 is stable;
    the k0 most extreme studies are then mirrored about the estimate of the
    trimmed data and the model (same method, test and level) is refitted to
    the observed and the filled studies. As in metafor's ``trimfill``, the
    missing side is, unless given, the left when the slope of the
    meta-regression of the effects on their standard errors (fitted with the
    same method) is not negative, else the right.

    Every fit is converged to :data:`metaan.estimators.ROOT_RTOL`. (metafor 3.8
    runs the trimming fits and the filled fit with its default convergence
    tolerance whatever the original fit used, so its filled estimates under
    REML, ML or EB differ from the converged ones by up to about 1e-5.)

    Parameters
    ----------
    data, yi, vi, sei, labels
        A fitted :class:`~metaan.results.MetaResult`, or the studies as for
        :func:`metaan.fit` (a table and its columns, or the values).
    side
        ``"left"`` or ``"right"``: where studies are missing; estimated if None.
    method, test, level
        Override the fit's settings (or set them for a table).
    maxiter
        Limit on the trimming iterations.

    Returns
    -------
    TrimAndFill

    Raises
    ------
    NotEstimableError
        Fewer than 3 studies, or equal standard errors when ``side`` is to be
        estimated.
    ConvergenceError
        k0 does not settle within ``maxiter`` iterations.
    """
    res = as_fit(data, yi=yi, vi=vi, sei=sei, labels=labels, method=method, test=test, level=level)
    _need_studies(res, 3, "trim-and-fill")
    chosen = (
        missing_side(res)
        if side is None
        else cast(Side, check_choice(side, ("left", "right"), "side"))
    )
    k0, se_k0, filled_yi, filled_vi = trim(
        res.yi, res.vi, chosen, lambda y, v: _pooled_mean(y, v, res.method), maxiter
    )
    warnings = _few_studies_warning(res.k)
    if k0 == 0:
        return TrimAndFill(
            fit=res,
            original=res,
            k0=0,
            se_k0=se_k0,
            side=chosen,
            filled_yi=filled_yi,
            filled_vi=filled_vi,
            warnings=warnings,
        )
    labels = (*res.labels, *(f"Filled {i + 1}" for i in range(k0)))
    filled_fit = fit(
        yi=np.concatenate([res.yi, filled_yi]),
        vi=np.concatenate([res.vi, filled_vi]),
        method=res.method,
        test=res.test,
        level=res.level,
        measure=res.measure,
        labels=labels,
    )
    filled_fit = replace(filled_fit, rows=(*res.rows, *([None] * k0)), excluded=res.excluded)
    return TrimAndFill(
        fit=filled_fit,
        original=res,
        k0=k0,
        se_k0=se_k0,
        side=chosen,
        filled_yi=filled_yi,
        filled_vi=filled_vi,
        warnings=warnings,
    )


def missing_side(res: MetaResult) -> Side:
    """The side of the funnel plot where trim-and-fill looks for missing studies:
    the left when the slope of the meta-regression of the effects on their
    standard errors (fitted with ``res.method``) is not negative, else the right
    (metafor's ``trimfill`` rule)."""
    vi = res.vi
    if np.ptp(vi) <= 1e-12 * float(np.max(vi)):
        raise NotEstimableError(
            "every study has the same standard error, so the side of missing studies "
            "cannot be estimated; give the side",
        )
    slope = float(_mixed_regression(res.yi, vi, np.sqrt(vi), res.method)[0].b[1])
    return "right" if slope < 0.0 else "left"


def trim(
    yi: FloatArray,
    vi: FloatArray,
    side: Side,
    centre: Callable[[FloatArray, FloatArray], float],
    maxiter: int = 100,
) -> tuple[int, float, FloatArray, FloatArray]:
    """The trimming iterations of trim-and-fill with the L0 estimator.

    ``centre(y, v)`` is the pooled estimate of a subset of studies. Returns k0,
    its standard error, and the filled studies' effects and variances (the k0
    most extreme studies on the side opposite ``side`` mirrored about the
    estimate of the trimmed data), in the order metafor lists them.
    """
    k = yi.size
    flipped = -yi if side == "right" else yi
    order = np.argsort(flipped, kind="stable")
    ys, vs = flipped[order], vi[order]
    ranks = np.empty(k, dtype=np.int64)
    k0, previous, beta, se_k0 = 0, -1, 0.0, math.nan
    iterations = 0
    while k0 != previous:
        iterations += 1
        if iterations > maxiter:
            raise ConvergenceError(f"trim-and-fill: k0 did not settle in {maxiter} iterations")
        previous = k0
        beta = centre(ys[: k - k0], vs[: k - k0])
        centred = ys - beta
        # Ranks of |centred| with ties in data order (R's ties.method = "first").
        ranks[np.argsort(np.abs(centred), kind="stable")] = np.arange(1, k + 1)
        sr = float(np.sum(ranks[centred > 0]))
        k0_raw = (4.0 * sr - k * (k + 1)) / (2 * k - 1)
        var_sr = (
            k * (k + 1) * (2 * k + 1)
            + 10 * k0_raw**3
            + 27 * k0_raw**2
            + 17 * k0_raw
            - 18 * k * k0_raw**2
            - 18 * k * k0_raw
            + 6 * k**2 * k0_raw
        ) / 24.0
        se_k0 = max(0.0, 4.0 * math.sqrt(var_sr) / (2 * k - 1)) if var_sr >= 0 else math.nan
        k0 = max(0, round(k0_raw))  # round half to even, as R does
    if k0 == 0:
        return 0, se_k0, np.empty(0), np.empty(0)
    mirrored = 2.0 * beta - ys[k - k0 :]
    filled_yi = -mirrored if side == "right" else mirrored
    return k0, se_k0, filled_yi, vs[k - k0 :].copy()


# --------------------------------------------------------------------------------------
# Fail-safe N
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class FailSafeN(Result):
    """Rosenthal's fail-safe N.

    Attributes
    ----------
    k
        Number of studies.
    fsnum
        How many unpublished null studies would raise the combined one-sided
        p-value (Stouffer's method) above ``alpha``.
    pval
        The one-sided p-value of Stouffer's combined z of the observed studies.
    z
        Stouffer's combined z, |sum z_i| / sqrt(k).
    alpha
        The significance level.
    warnings
        Caveats, e.g. too few studies.
    """

    k: int
    fsnum: int
    pval: float
    z: float
    alpha: float
    warnings: tuple[str, ...] = ()

    def _short(self) -> str:
        return f"Rosenthal k={self.k} N={self.fsnum} p={self.pval:.4g}"

    def summary(self) -> str:
        """The fail-safe N with Stouffer's combined z, as a person reads it."""
        lines = [
            f"Fail-safe N (Rosenthal): {self.fsnum} (k = {self.k}; Stouffer's z = "
            f"{fmt(self.z, 3)}, one-sided {p_equals(self.pval)}; alpha = {self.alpha:g})"
        ]
        return "\n".join(lines + _warning_lines(self.warnings))

    def to_dict(self) -> dict[str, Any]:
        """Every number as a JSON-ready dict."""
        return {
            "analysis": "fail_safe_n",
            "name": "Fail-safe N (Rosenthal)",
            "type": "Rosenthal",
            "k": self.k,
            "fsnum": self.fsnum,
            "pval": json_number(self.pval),
            "z": json_number(self.z),
            "alpha": self.alpha,
            "warnings": list(self.warnings),
        }

    def to_frame(self) -> pd.DataFrame:
        """The result as a one-row table."""
        return _one_row(self)


def fail_safe_n(
    data: MetaResult | pd.DataFrame | None = None,
    *,
    yi: Column = "yi",
    vi: Column = "vi",
    sei: Column | None = None,
    labels: Column | None = None,
    alpha: float = 0.05,
) -> FailSafeN:
    """Rosenthal's (1979) fail-safe N.

    The studies' z values y_i / sqrt(v_i) are combined by Stouffer's method,
    z = |sum z_i| / sqrt(k); the fail-safe N is the smallest number of added
    studies with z = 0 that lifts the one-sided p-value of the combined z above
    ``alpha``: ceil(max(0, k (z / z_alpha)^2 - k)), as metafor's ``fsn`` has it.

    Parameters
    ----------
    data, yi, vi, sei, labels
        A fitted :class:`~metaan.results.MetaResult`, or the studies as for
        :func:`metaan.fit` (a table and its columns, or the values).
    alpha
        One-sided significance level (default 0.05).
    """
    if not 0.0 < alpha < 1.0:
        raise InputError(f"alpha is {alpha}; it must be between 0 and 1", fix="use e.g. 0.05")
    res = as_fit(data, yi=yi, vi=vi, sei=sei, labels=labels)
    k = res.k
    z = abs(float(np.sum(res.yi / np.sqrt(res.vi)))) / math.sqrt(k)
    fsnum = math.ceil(max(0.0, k * (z / norm_isf(alpha)) ** 2 - k))
    return FailSafeN(
        k=k,
        fsnum=int(fsnum),
        pval=norm_sf(z),
        z=z,
        alpha=float(alpha),
        warnings=_few_studies_warning(k),
    )


# --------------------------------------------------------------------------------------
# All of them
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class SmallStudyEffects(Result):
    """Every small-study-effects analysis of one fit (what ``metaan bias`` shows).

    Attributes
    ----------
    fit
        The fit analysed.
    egger_lm, egger_rma
        Egger's test with the PET limit estimate: classic weighted regression and
        mixed-effects version.
    peese_lm, peese_rma
        PEESE in the same two forms.
    rank
        Begg and Mazumdar's rank correlation.
    trimfill
        Trim-and-fill (L0).
    fsn
        Rosenthal's fail-safe N.
    warnings
        Caveats that apply to all of them.
    """

    fit: MetaResult
    egger_lm: RegressionTest
    egger_rma: RegressionTest
    peese_lm: RegressionTest
    peese_rma: RegressionTest
    rank: RankTest
    trimfill: TrimAndFill
    fsn: FailSafeN
    warnings: tuple[str, ...] = ()

    def _short(self) -> str:
        return (
            f"{self.fit.method} k={self.fit.k} Egger p={self.egger_lm.pval:.4g} "
            f"Begg p={self.rank.pval:.4g} k0={self.trimfill.k0}"
        )

    def summary(self) -> str:
        """Every analysis in one table, then notes, the filled studies, warnings and
        the rows left out (what ``metaan bias`` prints)."""
        lines = [*fit_header(self.fit, "Small-study effects"), ""]
        lines += _analysis_table(self.to_frame())
        tf = self.trimfill
        lines += [
            "",
            "Egger's test and PEESE: the estimate is the intercept (the effect of a study of "
            "infinite precision).",
            f"Trim-and-fill: {tf.k0} studies estimated missing on the {tf.side} (SE of k0 "
            f"{fmt(tf.se_k0, 2)}); the estimate is that of the filled data.",
            f"Begg's test: {'exact' if self.rank.exact else 'normal-approximation'} p-value. "
            f"Fail-safe N: one-sided alpha = {self.fsn.alpha:g}.",
        ]
        if tf.k0:
            lines += ["", "Filled studies:"]
            for label, y, v in zip(tf.filled_labels, tf.filled_yi, tf.filled_vi, strict=True):
                lines.append(f"  {label}: yi = {fmt(float(y))}, vi = {fmt(float(v))}")
        warnings = dict.fromkeys(self.warnings + self.rank.warnings + tf.warnings)
        if warnings:
            lines += ["", "Warnings:"] + [f"  {w}" for w in warnings]
        return "\n".join(lines + format_excluded(self.fit.excluded))

    def to_dict(self) -> dict[str, Any]:
        """The fit's summary and every analysis, JSON-ready."""
        return {
            "fit": self.fit.to_dict(),
            "egger_lm": self.egger_lm.to_dict(),
            "egger_rma": self.egger_rma.to_dict(),
            "peese_lm": self.peese_lm.to_dict(),
            "peese_rma": self.peese_rma.to_dict(),
            "rank_test": self.rank.to_dict(),
            "trim_and_fill": self.trimfill.to_dict(),
            "fail_safe_n": self.fsn.to_dict(),
            "warnings": list(self.warnings),
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per analysis: statistic, df, p-value and the adjusted estimate
        with its confidence interval where the analysis gives one."""
        rows: list[dict[str, Any]] = []
        for reg in (self.egger_lm, self.egger_rma, self.peese_lm, self.peese_rma):
            rows.append(
                {
                    "analysis": reg.name,
                    "statistic": "t" if reg.df is not None else "z",
                    "value": reg.stat,
                    "df": reg.df,
                    "pval": reg.pval,
                    "estimate": reg.limit_estimate,
                    "ci_lb": reg.ci_lb,
                    "ci_ub": reg.ci_ub,
                    "note": "limit estimate (intercept)",
                }
            )
        rows.append(
            {
                "analysis": "Begg and Mazumdar's rank correlation",
                "statistic": "Kendall's tau",
                "value": self.rank.tau,
                "df": None,
                "pval": self.rank.pval,
                "estimate": None,
                "ci_lb": None,
                "ci_ub": None,
                "note": "exact p-value" if self.rank.exact else "normal approximation",
            }
        )
        tf = self.trimfill
        rows.append(
            {
                "analysis": f"Trim-and-fill ({tf.estimator})",
                "statistic": "k0",
                "value": float(tf.k0),
                "df": None,
                "pval": None,
                "estimate": tf.fit.estimate,
                "ci_lb": tf.fit.ci_lb,
                "ci_ub": tf.fit.ci_ub,
                "note": f"{tf.k0} studies filled on the {tf.side}",
            }
        )
        rows.append(
            {
                "analysis": "Fail-safe N (Rosenthal)",
                "statistic": "N",
                "value": float(self.fsn.fsnum),
                "df": None,
                "pval": self.fsn.pval,
                "estimate": None,
                "ci_lb": None,
                "ci_ub": None,
                "note": f"one-sided alpha = {self.fsn.alpha:g}",
            }
        )
        frame = pd.DataFrame(rows)
        frame["df"] = frame["df"].astype("Int64")
        return frame


def small_study_effects(
    data: MetaResult | pd.DataFrame | None = None,
    *,
    yi: Column = "yi",
    vi: Column = "vi",
    sei: Column | None = None,
    labels: Column | None = None,
    method: str | None = None,
    test: str | None = None,
    level: float | None = None,
    alpha: float = 0.05,
) -> SmallStudyEffects:
    """Every small-study-effects analysis at once: Egger's test and PEESE (each as
    weighted regression and as mixed-effects model), Begg's rank correlation,
    trim-and-fill and Rosenthal's fail-safe N (see the individual functions)."""
    res = as_fit(data, yi=yi, vi=vi, sei=sei, labels=labels, method=method, test=test, level=level)
    _need_studies(res, 3, "the analysis of small-study effects")
    return SmallStudyEffects(
        fit=res,
        egger_lm=regression_test(res, model="lm", predictor="sei"),
        egger_rma=regression_test(res, model="rma", predictor="sei"),
        peese_lm=regression_test(res, model="lm", predictor="vi"),
        peese_rma=regression_test(res, model="rma", predictor="vi"),
        rank=rank_test(res),
        trimfill=trim_and_fill(res),
        fsn=fail_safe_n(res, alpha=alpha),
        warnings=_few_studies_warning(res.k),
    )
