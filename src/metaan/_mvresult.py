"""The frozen result of a multilevel or multivariate fit, and what is derived from it:
tests, fit statistics, I^2 per level, profile-likelihood intervals, predictions and
the likelihood-ratio test of two nested fits (see :mod:`metaan.multilevel`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from metaan._base import Result
from metaan._covstruct import Structure
from metaan._dist import chi2_ppf, chi2_sf, f_sf, norm_isf, norm_sf, t_isf, t_sf
from metaan._format import fmt, fmt_p, format_excluded, p_equals
from metaan._gls import BlockMatrix, GLSFit
from metaan._json import json_number
from metaan._mvdata import INTERCEPT, Prepared
from metaan._mvfit import Model, profile_bounds
from metaan.errors import InputError
from metaan.results import Exclusion

if TYPE_CHECKING:
    from metaan.robust import RobustResult

__all__ = [
    "FitState",
    "LikelihoodRatioTest",
    "MultilevelPrediction",
    "MultilevelResult",
    "ProfileCI",
    "VarianceComponent",
    "anova",
    "build_result",
]

FloatArray = npt.NDArray[np.float64]
_LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class FitState:
    """What a result keeps to compute profile intervals and robust tests later."""

    model: Model
    structure: Structure
    clusters: dict[str, np.ndarray]
    level_names: tuple[str, ...]
    n_levels: tuple[int, ...]
    multivariate: tuple[str, tuple[str, ...]] | None
    phi: FloatArray = field(default_factory=lambda: np.empty(0))
    fit: GLSFit | None = None


@dataclass(frozen=True, repr=False)
class VarianceComponent(Result):
    """One estimated (or fixed) variance component: ``kind`` is ``sigma2`` (a nested
    level), ``tau2`` or ``rho`` (the outcome covariance of a multivariate model)."""

    kind: str
    name: str
    estimate: float
    level: str | None
    n_levels: int | None
    fixed: bool

    def _short(self) -> str:
        return f"{self.name}={self.estimate:.4g}" + (" fixed" if self.fixed else "")

    def to_dict(self) -> dict[str, Any]:
        """The component's fields, JSON-ready."""
        return {
            "kind": self.kind,
            "name": self.name,
            "estimate": json_number(self.estimate),
            "level": self.level,
            "n_levels": self.n_levels,
            "fixed": self.fixed,
        }

    def to_frame(self) -> pd.DataFrame:
        """The component as a one-row table."""
        return pd.DataFrame([self.to_dict()])

    def summary(self) -> str:
        """The component in one line."""
        where = f" ({self.level}, {self.n_levels} units)" if self.level else ""
        fixed = " (fixed)" if self.fixed else ""
        return f"{self.name} = {fmt(self.estimate)}{where}{fixed}"


@dataclass(frozen=True, repr=False)
class ProfileCI(Result):
    """A profile-likelihood interval of a component (and of its square root, for a
    variance), as metafor's ``confint`` gives it."""

    name: str
    estimate: float
    ci_lb: float
    ci_ub: float
    sqrt: tuple[float, float, float] | None

    def _short(self) -> str:
        return f"{self.name}={self.estimate:.4g} [{self.ci_lb:.4g}, {self.ci_ub:.4g}]"

    def to_frame(self) -> pd.DataFrame:
        """The interval (and that of the square root) as a one-row table."""
        row: dict[str, Any] = {
            "name": self.name,
            "estimate": self.estimate,
            "ci_lb": self.ci_lb,
            "ci_ub": self.ci_ub,
        }
        if self.sqrt is not None:
            row.update(sqrt_estimate=self.sqrt[0], sqrt_ci_lb=self.sqrt[1], sqrt_ci_ub=self.sqrt[2])
        return pd.DataFrame([row])

    def summary(self) -> str:
        """The interval in one line (and that of the square root)."""
        text = f"{self.name} = {fmt(self.estimate)} [{fmt(self.ci_lb)}, {fmt(self.ci_ub)}]"
        if self.sqrt is not None:
            root = self.sqrt
            text += f"; square root {fmt(root[0])} [{fmt(root[1])}, {fmt(root[2])}]"
        return text

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "estimate": json_number(self.estimate),
            "ci_lb": json_number(self.ci_lb),
            "ci_ub": json_number(self.ci_ub),
        }
        if self.sqrt is not None:
            out["sqrt"] = [json_number(v) for v in self.sqrt]
        return out


@dataclass(frozen=True, repr=False)
class MultilevelPrediction(Result):
    """A predicted average effect with its confidence and prediction interval."""

    pred: float
    se: float
    ci_lb: float
    ci_ub: float
    pi_lb: float | None
    pi_ub: float | None
    level: float

    def _short(self) -> str:
        return f"pred={self.pred:.4g} [{self.ci_lb:.4g}, {self.ci_ub:.4g}]"

    def to_dict(self) -> dict[str, Any]:
        """The prediction, its SE and intervals, JSON-ready."""
        return {name: json_number(getattr(self, name)) for name in _PRED_FIELDS}

    def to_frame(self) -> pd.DataFrame:
        """The prediction as a one-row table."""
        return pd.DataFrame([{name: getattr(self, name) for name in _PRED_FIELDS}])

    def summary(self) -> str:
        """The prediction with its confidence and prediction interval."""
        text = (
            f"Predicted effect: {fmt(self.pred)} (SE {fmt(self.se)}), {self.level:g}% CI "
            f"[{fmt(self.ci_lb)}, {fmt(self.ci_ub)}]"
        )
        if self.pi_lb is not None and self.pi_ub is not None:
            text += f", prediction interval [{fmt(self.pi_lb)}, {fmt(self.pi_ub)}]"
        return text


_PRED_FIELDS = ("pred", "se", "ci_lb", "ci_ub", "pi_lb", "pi_ub")


@dataclass(frozen=True, repr=False)
class LikelihoodRatioTest(Result):
    """The likelihood-ratio test of a reduced against a full model (``anova``)."""

    LRT: float
    df: int
    pval: float
    loglik_full: float
    loglik_reduced: float
    AIC_full: float
    AIC_reduced: float
    BIC_full: float
    BIC_reduced: float
    method: str

    def _short(self) -> str:
        return f"{self.method} LRT={self.LRT:.4g} df={self.df} p={self.pval:.4g}"

    def to_dict(self) -> dict[str, Any]:
        """Every number, JSON-ready."""
        return {
            k: (json_number(v) if isinstance(v, float) else v) for k, v in self.__dict__.items()
        }

    def to_frame(self) -> pd.DataFrame:
        """The test as a one-row table."""
        return pd.DataFrame([dict(self.__dict__)])

    def summary(self) -> str:
        """The test and both models' fit statistics."""
        return (
            f"Likelihood-ratio test ({self.method}): LRT = {fmt(self.LRT)}, df = {self.df}, "
            f"{p_equals(self.pval)}\n"
            f"  full:    logLik {fmt(self.loglik_full)}  AIC {fmt(self.AIC_full)}  "
            f"BIC {fmt(self.BIC_full)}\n"
            f"  reduced: logLik {fmt(self.loglik_reduced)}  AIC {fmt(self.AIC_reduced)}  "
            f"BIC {fmt(self.BIC_reduced)}"
        )


@dataclass(frozen=True, eq=False, repr=False)
class MultilevelResult(Result):
    """A fitted multilevel (``model="multilevel"``) or multivariate model.

    The coefficient arrays follow ``names`` (intercept first). ``stat`` is the z
    statistic, or the t statistic with ``df = k - p`` under ``test="t"``. ``QM`` is
    the Wald test of the coefficients in ``btt`` (chi^2 with ``QM_df[0]`` df, or F
    with ``QM_df`` under ``t``), ``QE`` the test of residual heterogeneity. The log-
    likelihood is the restricted one under REML. ``I2_levels`` (percent) is the
    share of the total variance at each nested level.
    """

    model: str
    method: str
    test: str
    level: float
    k: int
    names: tuple[str, ...]
    coef: FloatArray
    se: FloatArray
    stat: FloatArray
    df: int | None
    pval: FloatArray
    ci_lb: FloatArray
    ci_ub: FloatArray
    vcov: FloatArray
    btt: tuple[int, ...]
    components: tuple[VarianceComponent, ...]
    struct: str | None
    outcomes: tuple[str, ...]
    QE: float
    QE_df: int
    QEp: float
    QM: float
    QM_df: tuple[int, int | None]
    QMp: float
    loglik: float
    deviance: float
    AIC: float
    BIC: float
    AICc: float
    parms: int
    I2_levels: tuple[float, ...] | None
    excluded: tuple[Exclusion, ...]
    labels: tuple[str, ...]
    rows: tuple[int, ...]
    yi: FloatArray
    intercept: bool
    state: FitState = field(repr=False)

    @property
    def p(self) -> int:
        return len(self.names)

    @property
    def sigma2(self) -> tuple[float, ...]:
        """The variance of each nested level, outermost first."""
        return tuple(c.estimate for c in self.components if c.kind == "sigma2")

    @property
    def tau2(self) -> tuple[float, ...]:
        """The outcome variances of a multivariate model (one for CS)."""
        return tuple(c.estimate for c in self.components if c.kind == "tau2")

    @property
    def rho(self) -> tuple[float, ...]:
        """The correlations of a multivariate model (one for CS and HCS)."""
        return tuple(c.estimate for c in self.components if c.kind == "rho")

    @cached_property
    def profile_ci(self) -> tuple[ProfileCI | None, ...]:
        """Profile-likelihood intervals, one per component (None where it is fixed)."""
        return tuple(_profile(self, j) for j in range(len(self.components)))

    def predict(
        self, newmods: npt.ArrayLike | None = None, *, outcome: str | None = None
    ) -> MultilevelPrediction:
        """The average effect at ``newmods`` (moderator values, without the intercept;
        default: their means) with its confidence and prediction interval. For a
        multivariate model, ``outcome`` picks the outcome (and its tau^2)."""
        return _predict(self, newmods, outcome)

    def robust(
        self, cluster: str | npt.ArrayLike | None = None, *, kind: str = "CR2"
    ) -> RobustResult:
        """Cluster-robust tests (see :func:`metaan.robust`); ``cluster`` is a level's
        name or one value per effect (default: the outermost level or the study)."""
        from metaan.robust import robust

        return robust(self, cluster=cluster, kind=kind)

    def _short(self) -> str:
        comps = " ".join(f"{c.name}={c.estimate:.4g}" for c in self.components)
        return f"{self.model} {self.method} k={self.k} {self.names[0]}={self.coef[0]:.4g} {comps}"

    def to_frame(self) -> pd.DataFrame:
        """The coefficient table."""
        return coefficient_frame(self, [self.df] * self.p)

    def to_dict(self) -> dict[str, Any]:
        """Every number as a JSON-ready dict (profile intervals included)."""
        return _to_dict(self)

    def summary(self) -> str:
        """The summary a person reads."""
        return _summary(self)


def coefficient_frame(res: Any, df: Any) -> pd.DataFrame:
    """The coefficient table of a model or robust result (names, estimate, se, stat,
    df, pval, CI)."""
    return pd.DataFrame(
        {
            "name": list(res.names),
            "estimate": res.coef,
            "se": res.se,
            "stat": res.stat,
            "df": df,
            "pval": res.pval,
            "ci_lb": res.ci_lb,
            "ci_ub": res.ci_ub,
        }
    )


def coefficient_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of a coefficient table as JSON-ready dicts."""
    return [
        {str(k): (json_number(v) if isinstance(v, float) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]


def _inference(
    beta: FloatArray, vcov: FloatArray, k: int, test: str, level: float
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, int | None]:
    se = np.sqrt(np.diag(vcov))
    stat = beta / se
    alpha = 1.0 - level / 100.0
    if test == "t":
        df = max(k - beta.size, 1)
        pval = np.array([2.0 * t_sf(abs(float(s)), df) for s in stat])
        crit = t_isf(alpha / 2.0, df)
    else:
        df = None
        pval = np.array([2.0 * norm_sf(abs(float(s))) for s in stat])
        crit = norm_isf(alpha / 2.0)
    return se, stat, pval, beta - crit * se, beta + crit * se, df


def _wald(beta: FloatArray, vcov: FloatArray, btt: tuple[int, ...]) -> float:
    idx = list(btt)
    b = beta[idx]
    return float(b @ np.linalg.solve(vcov[np.ix_(idx, idx)], b))


def _i2_levels(fixed: GLSFit, X: FloatArray, sigma2: FloatArray) -> tuple[float, ...]:
    """100 sigma2_j / (sum sigma2 + (k - p) / tr(P)), P from the sampling covariance
    alone (Nakagawa & Santos 2012, as the metafor documentation computes it)."""
    trace_w = 0.0
    xwwx = np.zeros((X.shape[1], X.shape[1]))
    for rows, w in zip(fixed.V_inv.blocks.rows, fixed.V_inv.values, strict=True):
        trace_w += float(np.einsum("bii->", w))
        wx = np.matmul(w, X[rows])
        xwwx += np.einsum("bmp,bmq->pq", wx, wx)
    trace_p = trace_w - float(np.sum(fixed.vcov * xwwx))
    typical = (fixed.k - fixed.p) / trace_p
    total = float(np.sum(sigma2)) + typical
    return tuple(float(100.0 * s / total) for s in sigma2)


def _fit_statistics(
    ll: float, fixed: GLSFit, S: BlockMatrix, k: int, p: int, parms: int, reml: bool
) -> tuple[float, float, float, float]:
    """Deviance, AIC, BIC and AICc as rma.mv computes them."""
    if reml:
        n = k - p
        deviance = -2.0 * ll
    else:
        n = k
        saturated = -0.5 * k * _LOG_2PI - 0.5 * fixed.logdet_V
        deviance = -2.0 * (ll - saturated) if np.all(S.diagonal_values() > 0) else -2.0 * ll
    m = max(n, parms + 2)
    return (
        deviance,
        -2.0 * ll + 2.0 * parms,
        -2.0 * ll + parms * math.log(n),
        -2.0 * ll + 2.0 * parms * m / (m - parms - 1),
    )


def build_result(
    kind: str,
    prep: Prepared,
    names: tuple[str, ...],
    intercept: bool,
    method: str,
    test: str,
    level: float,
    state: FitState,
    fixed: GLSFit,
    start: FloatArray,
) -> MultilevelResult:
    """Maximise the likelihood from ``start`` and assemble the result."""
    model, structure = state.model, state.structure
    ev = model.maximise(structure, start)
    fit = ev.fit
    k, p = prep.y.size, len(names)
    se, stat, pval, lb, ub, df = _inference(fit.beta, fit.vcov, k, test, level)
    btt = tuple(range(1, p)) if intercept and p > 1 else tuple(range(p))
    QM = _wald(fit.beta, fit.vcov, btt)
    m = len(btt)
    QM_df: tuple[int, int | None]
    if df is not None:
        QM, QM_df, QMp = QM / m, (m, df), float(f_sf(QM / m, m, df))
    else:
        QM_df, QMp = (m, None), chi2_sf(QM, m)
    free = int(np.sum(structure.lower != structure.upper))
    parms = p + free
    deviance, aic, bic, aicc = _fit_statistics(ev.loglik, fixed, model.S, k, p, parms, model.reml)
    comps = _components(structure, ev.phi, state)
    sigma2 = np.array([c.estimate for c in comps if c.kind == "sigma2"])
    i2 = _i2_levels(fixed, model.X, sigma2) if kind == "multilevel" else None
    state = FitState(
        model,
        structure,
        state.clusters,
        state.level_names,
        state.n_levels,
        state.multivariate,
        ev.phi,
        fit,
    )
    mv = state.multivariate
    return MultilevelResult(
        model=kind, method=method, test=test, level=level, k=k, names=names,
        coef=fit.beta, se=se, stat=stat, df=df, pval=pval, ci_lb=lb, ci_ub=ub,
        vcov=fit.vcov, btt=btt, components=comps, struct=mv[0] if mv else None,
        outcomes=mv[1] if mv else (), QE=fixed.Q, QE_df=k - p,
        QEp=chi2_sf(fixed.Q, k - p) if k > p else 1.0, QM=QM, QM_df=QM_df, QMp=QMp,
        loglik=ev.loglik, deviance=deviance, AIC=aic, BIC=bic, AICc=aicc, parms=parms,
        I2_levels=i2, excluded=prep.excluded, labels=prep.labels, rows=prep.rows,
        yi=prep.y, intercept=intercept, state=state,
    )  # fmt: skip


def _components(
    structure: Structure, phi: FloatArray, state: FitState
) -> tuple[VarianceComponent, ...]:
    out = []
    for j, c in enumerate(structure.components(phi)):
        if c.kind == "sigma2":
            name = "/".join(state.level_names[: j + 1])
            fixed = bool(structure.upper[j] == structure.lower[j])
            out.append(VarianceComponent(c.kind, c.name, c.value, name, state.n_levels[j], fixed))
        else:
            out.append(VarianceComponent(c.kind, c.name, c.value, None, None, False))
    return tuple(out)


def _profile(res: MultilevelResult, which: int) -> ProfileCI | None:
    comp = res.components[which]
    if comp.fixed:
        return None
    state = res.state
    prof = state.structure.profile(state.phi, which)
    crit = chi2_ppf(res.level / 100.0, 1)
    lb, ub = profile_bounds(state.model, prof, comp.estimate, res.loglik, crit)
    root = None
    if comp.kind != "rho":
        root = (math.sqrt(comp.estimate), math.sqrt(lb), math.sqrt(ub))
    return ProfileCI(comp.name, comp.estimate, lb, ub, root)


def _predict(
    res: MultilevelResult, newmods: npt.ArrayLike | None, outcome: str | None
) -> MultilevelPrediction:
    X = res.state.model.X
    if res.model == "multivariate":
        x = _outcome_row(res, newmods, outcome)
    elif newmods is None:
        x = X.mean(axis=0)
    else:
        given = np.atleast_1d(np.asarray(newmods, dtype=np.float64))
        x = np.concatenate([[1.0], given]) if res.intercept else given
    if x.size != res.p:
        raise InputError(f"the prediction needs {res.p - int(res.intercept)} moderator values")
    pred = float(x @ res.coef)
    se = math.sqrt(float(x @ res.vcov @ x))
    alpha = 1.0 - res.level / 100.0
    crit = t_isf(alpha / 2.0, res.df) if res.df is not None else norm_isf(alpha / 2.0)
    extra = _prediction_variance(res, outcome)
    pi_lb = pi_ub = None
    if extra is not None:
        half = crit * math.sqrt(se * se + extra)
        pi_lb, pi_ub = pred - half, pred + half
    return MultilevelPrediction(
        pred, se, pred - crit * se, pred + crit * se, pi_lb, pi_ub, res.level
    )


def _outcome_row(
    res: MultilevelResult, newmods: npt.ArrayLike | None, outcome: str | None
) -> FloatArray:
    q = len(res.outcomes)
    dummies = np.zeros(q)
    if outcome is None:
        dummies[:] = res.state.model.X[:, :q].mean(axis=0)
    elif str(outcome) in res.outcomes:
        dummies[res.outcomes.index(str(outcome))] = 1.0
    else:
        raise InputError(f"no outcome {outcome!r}", fix=f"use one of {', '.join(res.outcomes)}")
    rest = (
        res.state.model.X[:, q:].mean(axis=0)
        if newmods is None
        else np.atleast_1d(np.asarray(newmods, dtype=np.float64))
    )
    return np.concatenate([dummies, rest])


def _prediction_variance(res: MultilevelResult, outcome: str | None) -> float | None:
    """What is added to the variance of the prediction: every sigma^2, or the
    outcome's tau^2 (metafor leaves the interval out when it is not known which)."""
    if res.model == "multilevel":
        return float(sum(res.sigma2))
    tau2 = res.tau2
    if len(tau2) == 1:
        return tau2[0]
    if outcome is None:
        return None
    return tau2[res.outcomes.index(str(outcome))]


def anova(full: MultilevelResult, reduced: MultilevelResult) -> LikelihoodRatioTest:
    """The likelihood-ratio test of two nested fits of the same data (metafor's
    ``anova.rma``): LRT = 2 (logLik_full - logLik_reduced) against chi^2 with the
    difference in the number of parameters.

    Raises
    ------
    InputError
        The fits differ in their data, sampling covariance or method, have the same
        number of parameters, or differ in their fixed effects under REML (the
        restricted likelihoods are then not comparable: refit with ``method="ML"``).
    """
    a, b = (full, reduced) if full.parms > reduced.parms else (reduced, full)
    if a.parms == b.parms:
        raise InputError(
            "the two models have the same number of parameters; an LRT needs nested models"
        )
    if a.method != b.method:
        raise InputError("fit both models with the same method (REML or ML)")
    same_y = a.k == b.k and np.array_equal(a.yi, b.yi)
    ea, eb = a.state.model.S.entries(), b.state.model.S.entries()
    same_v = same_y and all(np.array_equal(x, y) for x, y in zip(ea, eb, strict=True))
    if not (same_y and same_v):
        raise InputError(
            "the two models are not fitted to the same effects and sampling covariance"
        )
    Xa, Xb = a.state.model.X, b.state.model.X
    if a.method == "REML" and not (Xa.shape == Xb.shape and np.array_equal(Xa, Xb)):
        raise InputError(
            "REML likelihoods of models with different fixed effects are not comparable",
            fix='refit both with method="ML"',
        )
    lrt = max(2.0 * (a.loglik - b.loglik), 0.0)
    df = a.parms - b.parms
    return LikelihoodRatioTest(
        lrt, df, chi2_sf(lrt, df), a.loglik, b.loglik, a.AIC, b.AIC, a.BIC, b.BIC, a.method
    )


def _to_dict(res: MultilevelResult) -> dict[str, Any]:
    coefficients = coefficient_records(res.to_frame())
    comps = []
    for comp, ci in zip(res.components, res.profile_ci, strict=True):
        comps.append(
            {
                "kind": comp.kind,
                "name": comp.name,
                "level": comp.level,
                "n_levels": comp.n_levels,
                "estimate": json_number(comp.estimate),
                "fixed": comp.fixed,
                "profile_ci": None if ci is None else ci.to_dict(),
            }
        )
    pred = res.predict().to_dict() if res.model == "multilevel" or len(res.tau2) == 1 else None
    return {
        "model": res.model, "method": res.method, "test": res.test, "level": res.level,
        "struct": res.struct, "outcomes": list(res.outcomes), "k": res.k, "p": res.p,
        "coefficients": coefficients, "variance_components": comps,
        "I2_levels": None if res.I2_levels is None else [json_number(v) for v in res.I2_levels],
        "QE": json_number(res.QE), "QE_df": res.QE_df, "QEp": json_number(res.QEp),
        "QM": json_number(res.QM), "QM_df": list(res.QM_df), "QMp": json_number(res.QMp),
        "btt": [res.names[j] for j in res.btt], "loglik": json_number(res.loglik),
        "deviance": json_number(res.deviance), "AIC": json_number(res.AIC),
        "BIC": json_number(res.BIC), "AICc": json_number(res.AICc), "parms": res.parms,
        "prediction": pred, "excluded": [e.to_dict() for e in res.excluded],
    }  # fmt: skip


def _summary(res: MultilevelResult) -> str:
    estimator = "restricted maximum likelihood" if res.method == "REML" else "maximum likelihood"
    if res.model == "multilevel":
        title = f"Multilevel model ({estimator}), k = {res.k}"
    else:
        title = f"Multivariate model, struct {res.struct} ({estimator}), k = {res.k}"
    lines = [title, ""]
    lines.append(
        f"logLik {fmt(res.loglik)}  deviance {fmt(res.deviance)}  AIC {fmt(res.AIC)}  "
        f"BIC {fmt(res.BIC)}  AICc {fmt(res.AICc)}"
    )
    lines += ["", "Variance components (profile-likelihood CI):"]
    for comp, ci in zip(res.components, res.profile_ci, strict=True):
        where = f"  {comp.level} ({comp.n_levels} units)" if comp.level else ""
        interval = "fixed at 0" if ci is None else f"[{fmt(ci.ci_lb)}, {fmt(ci.ci_ub)}]"
        lines.append(f"  {comp.name:<12} {fmt(comp.estimate):>9} {interval}{where}")
    if res.I2_levels is not None:
        shares = ", ".join(f"{fmt(v, 2)}%" for v in res.I2_levels)
        lines.append(f"  I^2 per level: {shares}")
    lines += ["", f"Test for residual heterogeneity: Q({res.QE_df}) = {fmt(res.QE)}, "
              f"{p_equals(res.QEp)}"]  # fmt: skip
    df2 = f", {res.QM_df[1]}" if res.QM_df[1] is not None else ""
    name = "F" if res.test == "t" else "QM"
    lines.append(f"Test of moderators: {name}({res.QM_df[0]}{df2}) = {fmt(res.QM)}, "
                 f"{p_equals(res.QMp)}")  # fmt: skip
    lines.append("")
    lines += _coefficient_lines(
        res.names, res.coef, res.se, res.stat, res.pval, res.ci_lb, res.ci_ub
    )
    lines += format_excluded(res.excluded)
    return "\n".join(lines)


def _coefficient_lines(names: tuple[str, ...], *columns: FloatArray) -> list[str]:
    width = max(len(n) for n in names)
    header = (
        f"{'':<{width}} {'estimate':>10} {'se':>9} {'stat':>9} {'pval':>8} "
        f"{'ci.lb':>10} {'ci.ub':>10}"
    )
    out = [header]
    coef, se, stat, pval, lb, ub = columns
    for j, name in enumerate(names):
        out.append(
            f"{name:<{width}} {fmt(coef[j]):>10} {fmt(se[j]):>9} {fmt(stat[j], 3):>9} "
            f"{fmt_p(pval[j]):>8} {fmt(lb[j]):>10} {fmt(ub[j]):>10}"
        )
    return out


# The intercept name is re-exported for the robust module's default tests.
__all__ += ["INTERCEPT"]
