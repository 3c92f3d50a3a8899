"""Meta-regression: mixed-effects and common-effect models with moderators.

:func:`fit_regression` fits ``y_i = x_i^T beta + u_i + e_i`` with
``u_i ~ N(0, tau^2)`` (mixed effects; tau^2 by any estimator of
:mod:`metaan.estimators`) or without ``u_i`` (``method="EE"``), by weighted least
squares with weights ``1 / (v_i + tau^2)``, as metafor's ``rma.uni`` with
``mods`` does. Categorical moderators enter as treatment dummies, the first
level being the reference, as R's ``factor`` codes them. Nothing costs more than
O(k p^2): no k x k matrix is ever formed.

:func:`permutation_test` is metafor's ``permutest``: the moderators are
permuted across studies (the signs of the effects for an intercept-only
model) and the model is refitted to every permutation, in batches of numpy
arrays with a vectorised root finder for the iterative tau^2 estimators.

References
----------
Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package.
*Journal of Statistical Software*, 36(3), 1-48 (``rma.uni``, ``permutest``).

Raudenbush, S. W. (2009). Analyzing effect sizes: Random-effects models. In H.
Cooper, L. V. Hedges, & J. C. Valentine (Eds.), *The handbook of research
synthesis and meta-analysis* (2nd ed., pp. 295-315). Russell Sage Foundation
(the pseudo R^2 of mixed-effects models).

Knapp, G., & Hartung, J. (2003). Improved tests for a random effects
meta-regression with a single covariate. *Statistics in Medicine*, 22,
2693-2710.

Higgins, J. P. T., & Thompson, S. G. (2004). Controlling the risk of spurious
findings from meta-regression. *Statistics in Medicine*, 23, 1663-1682
(permutation tests of moderators).

Follmann, D. A., & Proschan, M. A. (1999). Valid inference in random effects
meta-analysis. *Biometrics*, 55, 732-737 (sign-flip permutations of an
intercept-only model).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from metaan._args import Column, as_table, check_choice, check_level, column_values, n_rows
from metaan._base import Result
from metaan._design import (
    INTERCEPT,
    Coding,
    as_moderator_rows,
    design_matrix,
    level_name,
    ordered_levels,
)
from metaan._dist import chi2_sf, f_sf, norm_isf, norm_sf, t_isf, t_sf
from metaan._format import fmt, fmt_p, format_excluded, p_equals, text_table
from metaan._json import json_number, jsonable
from metaan.engine import knha_factor
from metaan.errors import InputError, MetaanError, NotEstimableError
from metaan.estimators import WLS, Batch, FloatArray, check_data, estimate_tau2, tau2_batch
from metaan.heterogeneity import i2_h2, typical_within_variance
from metaan.models import METHODS, TESTS, EffectData, prepare_effects
from metaan.results import Exclusion

__all__ = [
    "INTERCEPT",
    "Design",
    "MetaRegressionResult",
    "PermutationResult",
    "RegressionPrediction",
    "build_design",
    "fit_design",
    "fit_regression",
    "level_name",
    "ordered_levels",
    "permutation_test",
]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Tolerance of the comparison of permuted statistics with the observed one
#: (metafor's ``permutest``: ``comptol = .Machine$double.eps^0.5``).
_COMPTOL = math.sqrt(np.finfo(float).eps)


# --------------------------------------------------------------------------
# Moderators and the design matrix


@dataclass(frozen=True)
class Design:
    """Effect sizes of the usable studies with their design matrix.

    ``X`` has one row per study in ``data`` and one column per name in
    ``names`` (``intrcpt`` first when the model has an intercept); ``coding``
    says how moderator values became those columns, and codes new values the
    same way.
    """

    data: EffectData
    X: FloatArray
    coding: Coding

    @property
    def names(self) -> tuple[str, ...]:
        return self.coding.names

    @property
    def moderators(self) -> tuple[str, ...]:
        return self.coding.moderators

    @property
    def intercept(self) -> bool:
        return self.coding.intercept

    @property
    def reference_levels(self) -> tuple[tuple[str, str], ...]:
        """Each categorical moderator coded by treatment dummies, with its reference level."""
        return self.coding.reference_levels

    @property
    def levels(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """The levels of each categorical moderator, in coding order."""
        return self.coding.factor_levels


def _moderator_frame(mods: Any, table: pd.DataFrame | None, n: int) -> pd.DataFrame:
    """The moderators as a DataFrame with one row per input row (positional index)."""
    if mods is None:
        return pd.DataFrame(index=pd.RangeIndex(n))
    if isinstance(mods, str) or (
        isinstance(mods, Sequence) and mods and all(isinstance(m, str) for m in mods)
    ):
        names = [mods] if isinstance(mods, str) else [str(m) for m in mods]
        if len(set(names)) != len(names):
            raise InputError("a moderator is named twice", fix="name each moderator once")
        for name in names:  # a column that is not there (or no table) is an error
            column_values(table, name, "mods", n, numeric=False)
        assert table is not None
        frame = table.loc[:, names]
    elif isinstance(mods, pd.DataFrame):
        frame = mods
    elif isinstance(mods, pd.Series):
        frame = mods.to_frame(name=str(mods.name) if mods.name is not None else "mod")
    elif isinstance(mods, Mapping):
        frame = pd.DataFrame({str(k): list(v) for k, v in mods.items()})
    else:
        frame = _array_moderators(mods)
    if len(frame) != n:
        raise InputError(f"there are {n} studies but {len(frame)} rows of moderators")
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _array_moderators(mods: Any) -> pd.DataFrame:
    try:
        arr = np.asarray(mods, dtype=float)
    except (TypeError, ValueError):
        raise InputError(
            "the moderators contain a value that is not a number",
            fix="pass text moderators as a DataFrame or a mapping of name to values",
        ) from None
    if arr.ndim == 1:
        return pd.DataFrame({"mod": arr})
    if arr.ndim == 2:
        return pd.DataFrame({f"mod{j + 1}": arr[:, j] for j in range(arr.shape[1])})
    raise InputError(f"the moderators must be 1- or 2-dimensional, not {arr.ndim}")


def _drop_missing(
    frame: pd.DataFrame, effects: EffectData, role: str
) -> tuple[pd.DataFrame, EffectData]:
    """The usable studies that have every moderator value; the others are excluded
    with the moderator named (``"<role> <name> is missing"``)."""
    used = frame.iloc[list(effects.positions)].reset_index(drop=True)
    missing = used.isna().to_numpy()
    if not missing.any():
        return used, effects
    excluded = list(effects.excluded)
    for j in np.flatnonzero(missing.any(axis=1)).tolist():
        gone = [str(c) for c, m in zip(used.columns, missing[j], strict=True) if m]
        verb = "is" if len(gone) == 1 else "are"
        reason = f"{role} {' and '.join(gone)} {verb} missing"
        excluded.append(Exclusion(effects.rows[j], effects.labels[j], reason))
    excluded.sort(key=lambda e: (e.row is None, e.row if e.row is not None else 0))
    idx = np.flatnonzero(~missing.any(axis=1)).tolist()
    kept = EffectData(
        yi=effects.yi[idx],
        vi=effects.vi[idx],
        labels=tuple(effects.labels[i] for i in idx),
        rows=tuple(effects.rows[i] for i in idx),
        excluded=tuple(excluded),
        measure=effects.measure,
        source=effects.source,
        positions=tuple(effects.positions[i] for i in idx),
    )
    return used.iloc[idx].reset_index(drop=True), kept


def build_design(
    data: pd.DataFrame | None = None,
    *,
    yi: Column = "yi",
    vi: Column = "vi",
    sei: Column | None = None,
    mods: Any = None,
    intercept: bool = True,
    labels: Column | None = None,
    measure: str | None = None,
    source: str | None = None,
    role: str = "moderator",
) -> Design:
    """Effect sizes and the design matrix of a meta-regression (see :func:`fit_regression`).

    Rows with a missing effect size, variance or moderator value are left out
    and listed in ``data.excluded``, each with its reason (``"<role> <name> is
    missing"``).
    """
    table = as_table(data, source=source)
    effects = prepare_effects(
        table, yi=yi, vi=vi, sei=sei, labels=labels, measure=measure, source=source
    )
    n = len(table) if table is not None else n_rows(None, yi=yi)
    frame, effects = _drop_missing(_moderator_frame(mods, table, n), effects, role)
    if effects.yi.size == 0:
        raise InputError(
            f"no study has an effect size, a variance and every {role} value",
            file=source,
            fix="check the yi, vi and moderator columns",
        )
    X, coding = design_matrix(frame, intercept=intercept, what=role)
    return Design(data=effects, X=X, coding=coding)


def _check_estimable(X: FloatArray, names: Sequence[str], method: str, int_only: bool) -> None:
    """Refuse, as metafor does, a model with too many parameters or a rank-deficient design."""
    k, p = X.shape
    if k == 0:
        raise InputError("no study has an effect size, a variance and every moderator")
    if not (int_only and k == 1):
        needed = p if method == "EE" else p + 1
        if needed > k:
            what = f"{p} coefficients" if method == "EE" else f"{p} coefficients and tau^2"
            raise NotEstimableError(
                f"the number of parameters to estimate ({what}) is larger than the number "
                f"of studies ({k}); use fewer moderators or subgroups, or more studies"
            )
    norms = np.sqrt(np.sum(X * X, axis=0))
    for j in range(p):
        if norms[j] == 0.0:
            raise NotEstimableError(
                f"the design column {names[j]} is zero for every study used; remove it"
            )
    scaled = X / norms
    for j in range(1, p):
        if np.linalg.matrix_rank(scaled[:, : j + 1]) <= j:
            constant = np.ptp(X[:, j]) == 0.0
            why = (
                "is constant across the studies used"
                if constant
                else "is a linear combination of the columns before it"
            )
            raise NotEstimableError(
                f"the design is rank-deficient: {names[j]} {why}; remove it or the "
                "moderator it duplicates"
            )


# --------------------------------------------------------------------------
# The fit


@dataclass(frozen=True, eq=False, repr=False)
class RegressionPrediction(Result):
    """Predicted average effects of a meta-regression, with confidence and prediction
    intervals (metafor's ``predict.rma``).

    ``X`` holds the design rows predicted at (one per prediction, columns
    ``names``). ``pi_lb``/``pi_ub`` is where the true effect of a new study with
    those moderator values lies: ``pred ± crit sqrt(se^2 + tau^2)`` with the
    residual tau^2 (0 for a common-effect model, where it equals the CI).
    """

    pred: FloatArray
    se: FloatArray
    ci_lb: FloatArray
    ci_ub: FloatArray
    pi_lb: FloatArray
    pi_ub: FloatArray
    level: float
    X: FloatArray = field(default_factory=lambda: np.empty((0, 0)))
    names: tuple[str, ...] = ()

    def _short(self) -> str:
        if self.pred.size == 1:
            return (
                f"pred={self.pred[0]:.4g} [{self.ci_lb[0]:.4g}, {self.ci_ub[0]:.4g}] "
                f"PI [{self.pi_lb[0]:.4g}, {self.pi_ub[0]:.4g}]"
            )
        return f"n={self.pred.size} level={self.level:g}%"

    def to_frame(self) -> pd.DataFrame:
        """One row per prediction: the design values, then pred, se, CI and PI."""
        frame = pd.DataFrame(self.X, columns=list(self.names)) if self.names else pd.DataFrame()
        for name in _PREDICTION_FIELDS:
            frame[name] = getattr(self, name)
        return frame

    def to_dict(self) -> dict[str, Any]:
        """The level and one record per prediction, JSON-ready."""
        return {"level": self.level, "predictions": jsonable(self.to_frame())}

    def summary(self) -> str:
        """The predictions as a table, with the level of the intervals."""
        head = f"Predicted effects ({self.level:g}% confidence and prediction intervals)"
        return head + "\n" + text_table(self.to_frame())


_PREDICTION_FIELDS = ("pred", "se", "ci_lb", "ci_ub", "pi_lb", "pi_ub")


@dataclass(frozen=True, eq=False, repr=False)
class MetaRegressionResult(Result):
    """A fitted meta-regression (mixed effects, or common effect with ``method="EE"``).

    The coefficient arrays (``coef``, ``se``, ``stat``, ``pval``, ``ci_lb``,
    ``ci_ub``) follow ``names``, intercept first. ``stat`` is the z statistic, or
    under ``test="knha"`` the t statistic with ``df = k - p`` degrees of freedom.
    ``QM`` is the Wald test of the coefficients in ``btt`` (every moderator):
    chi^2 with ``QM_df`` df, or under ``knha`` the F statistic ``QM / m`` with
    ``(QM_df, QM_df2)`` df, as metafor reports it. ``QE`` is the test of residual
    heterogeneity (k - p df). ``tau2`` is the residual between-study variance,
    ``I2`` (percent) and ``H2`` the residual heterogeneity measures, ``R2`` the
    percentage of the intercept-only model's tau^2 that the moderators account
    for (``None`` when it does not apply: common effect, no intercept or no
    moderators). ``coding`` turns moderator values into design rows
    (:meth:`predict`).
    """

    measure: str | None
    method: str
    test: str
    level: float
    k: int
    names: tuple[str, ...]
    coef: FloatArray
    se: FloatArray
    stat: FloatArray
    pval: FloatArray
    ci_lb: FloatArray
    ci_ub: FloatArray
    vcov: FloatArray
    df: int | None
    btt: tuple[int, ...]
    QM: float
    QM_df: int
    QM_df2: int | None
    QMp: float
    QE: float
    QE_df: int
    QEp: float
    tau2: float
    se_tau2: float | None
    I2: float
    H2: float
    R2: float | None
    tau2_intercept_only: float | None
    intercept: bool
    moderators: tuple[str, ...]
    reference_levels: tuple[tuple[str, str], ...] = ()
    excluded: tuple[Exclusion, ...] = ()
    yi: FloatArray = field(default_factory=lambda: np.empty(0))
    vi: FloatArray = field(default_factory=lambda: np.empty(0))
    X: FloatArray = field(default_factory=lambda: np.empty((0, 0)))
    labels: Sequence[str] = ()
    rows: Sequence[int | None] = ()
    coding: Coding | None = None

    @property
    def p(self) -> int:
        """Number of coefficients."""
        return len(self.names)

    @property
    def weights(self) -> FloatArray:
        """Each study's weight in the model, in percent: ``1 / (v_i + tau^2)`` with the
        residual tau^2 (0 for a common-effect model), normalised to sum to 100."""
        tau2 = self.tau2 if self.method != "EE" else 0.0
        w = 1.0 / (self.vi + tau2)
        return np.asarray(100.0 * w / float(w.sum()), dtype=np.float64)

    def predict(self, newmods: Any = None) -> RegressionPrediction:
        """Predicted average effects with confidence and prediction intervals.

        Parameters
        ----------
        newmods
            Where to predict. ``None``: at each study of the fit (its fitted
            value). A DataFrame, or a mapping of moderator name to a value or
            values: the original moderator columns, coded as the fit coded them
            (a categorical moderator by its level, e.g. ``{"dose": [10, 20],
            "blinding": "open"}``). Or numbers: design rows as a 1-d row or a
            2-d array, with one value per coefficient in ``names``, or one per
            coefficient but the intercept (metafor's ``newmods``), which is then
            added.

        Returns
        -------
        RegressionPrediction
            ``pred = x b`` with ``se = sqrt(x V x')``, the confidence interval
            ``pred ± crit se`` and the prediction interval ``pred ± crit
            sqrt(se^2 + tau^2)``, where ``crit`` is the quantile of the model's
            test (t with ``df`` under Knapp-Hartung, else normal), as metafor
            3.8's ``predict.rma`` computes them.

        Raises
        ------
        InputError
            A moderator missing or unknown, a level the fit has not seen, or
            rows of the wrong width.
        """
        x = self._design_rows(newmods)
        pred = x @ self.coef
        se = np.sqrt(np.einsum("ij,jk,ik->i", x, self.vcov, x))
        alpha = 1.0 - self.level / 100.0
        crit = t_isf(alpha / 2.0, self.df) if self.df is not None else norm_isf(alpha / 2.0)
        tau2 = self.tau2 if self.method != "EE" else 0.0
        half = crit * np.sqrt(se * se + tau2)
        return RegressionPrediction(
            pred=pred,
            se=se,
            ci_lb=pred - crit * se,
            ci_ub=pred + crit * se,
            pi_lb=pred - half,
            pi_ub=pred + half,
            level=self.level,
            X=x,
            names=self.names,
        )

    def _design_rows(self, newmods: Any) -> FloatArray:
        if newmods is None:
            return self.X
        if isinstance(newmods, pd.DataFrame | Mapping):
            if self.coding is None:  # pragma: no cover - every fit records its coding
                raise InputError("this fit has no record of its moderator coding")
            frame = as_moderator_rows(newmods, self.moderators)
            return self.coding.matrix(frame)
        x = np.atleast_2d(np.asarray(newmods, dtype=np.float64))
        if self.intercept and x.shape[1] == self.p - 1:
            x = np.column_stack([np.ones(x.shape[0]), x])
        if x.ndim != 2 or x.shape[1] != self.p:
            raise InputError(
                f"newmods has {x.shape[-1]} columns but the model has {self.p} coefficients",
                fix=f"give one value per coefficient ({', '.join(self.names)}), or the "
                "moderator values by name",
            )
        return x

    @property
    def model(self) -> str:
        """``"mixed"`` (random) or ``"common"`` effects."""
        return "common" if self.method == "EE" else "mixed"

    @property
    def int_only(self) -> bool:
        """True for a model with an intercept and no moderators."""
        return self.names == (INTERCEPT,)

    def _short(self) -> str:
        qm = f"F({self.QM_df},{self.QM_df2})" if self.QM_df2 is not None else f"QM({self.QM_df})"
        text = f"{self.method} k={self.k} p={self.p} {qm}={self.QM:.4g} p={self.QMp:.3g}"
        if self.method != "EE":
            text += f" tau2={self.tau2:.4g}"
        if self.R2 is not None:
            text += f" R2={self.R2:.1f}%"
        return text

    def to_frame(self) -> pd.DataFrame:
        """The coefficient table: one row per coefficient, intercept first."""
        return pd.DataFrame(
            {
                "term": list(self.names),
                "estimate": self.coef,
                "se": self.se,
                "stat": self.stat,
                "df": [self.df] * self.p,
                "pval": self.pval,
                "ci_lb": self.ci_lb,
                "ci_ub": self.ci_ub,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """Every summary number as a JSON-ready dict (NaN becomes None)."""
        return {
            "measure": self.measure,
            "method": self.method,
            "test": self.test,
            "level": self.level,
            "k": self.k,
            "p": self.p,
            "moderators": list(self.moderators),
            "reference_levels": dict(self.reference_levels),
            "coefficients": [
                {
                    "term": name,
                    "estimate": json_number(self.coef[j]),
                    "se": json_number(self.se[j]),
                    "stat": json_number(self.stat[j]),
                    "df": self.df,
                    "pval": json_number(self.pval[j]),
                    "ci_lb": json_number(self.ci_lb[j]),
                    "ci_ub": json_number(self.ci_ub[j]),
                }
                for j, name in enumerate(self.names)
            ],
            "QM": json_number(self.QM),
            "QM_df": self.QM_df,
            "QM_df2": self.QM_df2,
            "QM_dist": "F" if self.QM_df2 is not None else "chi2",
            "QMp": json_number(self.QMp),
            "QE": json_number(self.QE),
            "QE_df": self.QE_df,
            "QEp": json_number(self.QEp),
            "tau2": json_number(self.tau2),
            "se_tau2": json_number(self.se_tau2),
            "I2": json_number(self.I2),
            "H2": json_number(self.H2),
            "R2": json_number(self.R2),
            "tau2_intercept_only": json_number(self.tau2_intercept_only),
            "excluded": [e.to_dict() for e in self.excluded],
        }

    def summary(self) -> str:
        """A readable multi-line summary, as ``metaan fit --mods`` prints it."""
        return format_regression(self)


def _pvals_and_crit(stat: FloatArray, df: int | None, level: float) -> tuple[FloatArray, float]:
    alpha = 1.0 - level / 100.0
    if df is None:
        return 2.0 * norm_sf(np.abs(stat)), norm_isf(alpha / 2.0)
    if df <= 0:
        return np.full_like(stat, np.nan), math.nan
    return 2.0 * t_sf(np.abs(stat), df), t_isf(alpha / 2.0, df)


def _wald(coef: FloatArray, vcov: FloatArray, btt: Sequence[int]) -> float:
    idx = list(btt)
    b = coef[idx]
    try:
        return float(b @ np.linalg.solve(vcov[np.ix_(idx, idx)], b))
    except np.linalg.LinAlgError:
        return math.nan


def _typical_variance(vi: FloatArray, X: FloatArray | None) -> float:
    """The typical within-study variance ``(k - p) / tr(P)`` with weights ``1/v_i``.

    For a design with moderators, ``tr(P) = sum w_i (1 - h_i)`` with the leverages
    ``h_i`` taken from a thin QR decomposition of ``W^(1/2) X`` (k x p), which keeps
    its digits when ``X'WX`` is badly conditioned (a moderator such as the year),
    where ``sum w_i - tr((X'WX)^-1 X'W^2 X)`` would lose them to cancellation.
    """
    if X is None:
        return typical_within_variance(vi)
    w = 1.0 / vi
    q, _ = np.linalg.qr(np.sqrt(w)[:, None] * X)
    h = np.sum(q * q, axis=1)
    return float(X.shape[0] - X.shape[1]) / float(np.sum(w * (1.0 - h)))


@dataclass(frozen=True)
class _Coefficients:
    """The weighted least-squares fit at a tau^2: coefficients, their covariance
    (Knapp-Hartung scaled under ``knha``), tests and intervals."""

    coef: FloatArray
    vcov: FloatArray
    se: FloatArray
    stat: FloatArray
    pval: FloatArray
    ci_lb: FloatArray
    ci_ub: FloatArray
    df: int | None
    test: str


def _coefficients(
    y: FloatArray, v: FloatArray, X: FloatArray, tau2: float, test: str, level: float
) -> _Coefficients:
    """Weighted least squares with weights ``1/(v_i + tau^2)``, then the
    Knapp-Hartung scaling of the covariance by ``RSS / (k - p)`` under ``knha``."""
    k, p = X.shape
    wls = WLS(y, 1.0 / (v + tau2), X)
    coef = np.asarray(wls.b, dtype=np.float64)
    vcov = np.asarray(wls.a_inv, dtype=np.float64).reshape(p, p)
    df: int | None = None
    if test == "knha":
        if k == 1:
            test = "z"  # as metafor: one study leaves nothing to scale by
        else:
            df = k - p
            vcov = float(knha_factor(wls.rss(), df)) * vcov
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(np.diag(vcov))
        stat = coef / se
    pval, crit = _pvals_and_crit(stat, df, level)
    return _Coefficients(coef, vcov, se, stat, pval, coef - crit * se, coef + crit * se, df, test)


def _moderator_test(fit: _Coefficients, btt: tuple[int, ...]) -> tuple[float, int | None, float]:
    """QM (F = QM / m under Knapp-Hartung), its second df and its p-value."""
    m = len(btt)
    qm = _wald(fit.coef, fit.vcov, btt)
    if fit.df is None:
        return qm, None, chi2_sf(qm, m)
    qm /= m
    return qm, fit.df, float(f_sf(qm, m, fit.df)) if fit.df > 0 else math.nan


def _residual_heterogeneity(
    y: FloatArray, v: FloatArray, X: FloatArray, method: str, tau2: float, int_only: bool
) -> tuple[float, float, float, float]:
    """QE with its p-value, I^2 (with the typical within-study variance
    ``(k - p) / tr(P)``) and H^2."""
    k, p = X.shape
    if k <= p:
        return 0.0, 1.0, 0.0, 1.0
    qe = max(0.0, WLS(y, 1.0 / v, X).rss())
    qep = chi2_sf(qe, k - p)
    if method == "EE":
        i2 = max(0.0, 100.0 * (qe - (k - p)) / qe) if qe > 0.0 else 0.0
        return qe, qep, i2, qe / (k - p)
    i2, h2 = i2_h2(tau2, _typical_variance(v, None if int_only else X))
    return qe, qep, i2, h2


def _pseudo_r2(
    y: FloatArray, v: FloatArray, method: str, tau2: float
) -> tuple[float | None, float | None]:
    """Raudenbush's (2009) pseudo R^2 against the intercept-only model's tau^2 (and that tau^2)."""
    try:
        tau2_re = estimate_tau2(y, v, method, None).tau2
    except MetaanError:
        return None, None
    return (0.0 if tau2_re == 0.0 else max(0.0, 100.0 * (tau2_re - tau2) / tau2_re)), tau2_re


def fit_design(design: Design, *, method: str, test: str, level: float) -> MetaRegressionResult:
    """Fit the model of a prepared :class:`Design` (see :func:`fit_regression`).

    The steps are those of metafor's ``rma.uni``: tau^2 by the chosen estimator
    on the design, weighted least squares with weights ``1/(v_i + tau^2)``, the
    Knapp-Hartung scaling of the covariance matrix by ``RSS / (k - p)``, the
    Wald test of the moderators, and QE, I^2 (with the typical within-study
    variance ``(k - p) / tr(P)``), H^2 and the pseudo R^2.
    """
    data, X, names = design.data, design.X, design.names
    y, v = data.yi, data.vi
    int_only = names == (INTERCEPT,)
    _check_estimable(X, names, method, int_only)
    k, p = X.shape
    check_data(y, v, X, random=method != "EE" and k > 1)
    tau2, se_tau2 = 0.0, None
    if method != "EE" and k > 1:
        est = estimate_tau2(y, v, method, None if int_only else X)
        tau2, se_tau2 = est.tau2, est.se_tau2
    fit = _coefficients(y, v, X, tau2, test, level)
    btt = tuple(range(1, p)) if design.intercept and p > 1 else tuple(range(p))
    qm, qm_df2, qmp = _moderator_test(fit, btt)
    qe, qep, i2, h2 = _residual_heterogeneity(y, v, X, method, tau2, int_only)
    r2 = tau2_re = None
    if not int_only and design.intercept and method != "EE":
        r2, tau2_re = _pseudo_r2(y, v, method, tau2)
    return MetaRegressionResult(
        measure=data.measure, method=method, test=fit.test, level=level, k=k, names=names,
        coef=fit.coef, se=fit.se, stat=fit.stat, pval=fit.pval, ci_lb=fit.ci_lb,
        ci_ub=fit.ci_ub, vcov=fit.vcov, df=fit.df, btt=btt, QM=qm, QM_df=len(btt),
        QM_df2=qm_df2, QMp=qmp, QE=qe, QE_df=k - p, QEp=qep, tau2=tau2, se_tau2=se_tau2,
        I2=i2, H2=h2, R2=r2, tau2_intercept_only=tau2_re, intercept=design.intercept,
        moderators=design.moderators, reference_levels=design.reference_levels,
        excluded=data.excluded, yi=y, vi=v, X=X, labels=data.labels, rows=data.rows,
        coding=design.coding,
    )  # fmt: skip


def fit_regression(
    data: pd.DataFrame | None = None,
    *,
    yi: Column = "yi",
    vi: Column = "vi",
    sei: Column | None = None,
    mods: Any = None,
    intercept: bool = True,
    labels: Column | None = None,
    method: str = "REML",
    test: str = "z",
    level: float = 95.0,
    measure: str | None = None,
    source: str | None = None,
) -> MetaRegressionResult:
    """Fit a meta-regression: a mixed-effects (or common-effect) model with moderators.

    Parameters
    ----------
    data, yi, vi, sei, labels, measure, source
        The studies, as for :func:`metaan.fit`: a table and its columns, or the
        values.
    mods
        The name of a moderator column of ``data`` or a list of names; or the
        moderator values: a 1-d or 2-d array, a DataFrame or a mapping of name
        to values (one row per study). Numeric moderators enter as they are;
        text, boolean and categorical ones as treatment dummies
        (``name[level]``) with the first level as reference: sorted order, or
        the order of a pandas categorical's categories, as R's ``factor``.
        ``None`` fits the intercept-only model.
    intercept
        Include an intercept (default). Without one, the first categorical
        moderator gets a column for every level, as R's ``~ x - 1``.
    method
        ``EE`` (common effect) or a tau^2 estimator: ``DL``, ``HE``, ``HS``,
        ``SJ``, ``ML``, ``REML`` (default), ``EB``, ``PM``.
    test
        ``z`` or ``knha`` (Knapp & Hartung 2003: the covariance matrix is scaled
        by ``RSS / (k - p)`` with weights ``1/(v_i + tau^2)``, coefficients use t
        with ``k - p`` df and the moderator test is ``F = QM / m`` with
        ``(m, k - p)`` df, as metafor).
    level
        Confidence level as a percentage (95) or a fraction (0.95).

    Returns
    -------
    MetaRegressionResult
        Coefficients with SE, test, p-value and CI; QM and QE with p-values;
        residual tau^2 with its SE, I^2, H^2 and R^2 (metafor's pseudo R^2
        ``max(0, 100 (tau2_RE - tau2) / tau2_RE)`` against the intercept-only
        model with the same estimator; Raudenbush 2009); ``predict()``.

    Raises
    ------
    InputError
        A column that does not exist, a moderator that is not a number where
        one is needed, bad variances.
    NotEstimableError
        As many parameters as studies (``p + 1 > k`` for a mixed-effects model,
        ``p > k`` for ``EE``), or a rank-deficient design (a constant or
        duplicated moderator), as metafor refuses them.

    Notes
    -----
    A study with a missing moderator value is left out of the fit and listed
    in ``excluded`` with the moderator named; it is never dropped silently.
    """
    method = check_choice(method, METHODS, "method")
    test = check_choice(test, TESTS, "test")
    level = check_level(level)
    design = build_design(
        data,
        yi=yi,
        vi=vi,
        sei=sei,
        mods=mods,
        intercept=intercept,
        labels=labels,
        measure=measure,
        source=source,
    )
    return fit_design(design, method=method, test=test, level=level)


# --------------------------------------------------------------------------
# Text rendering


def format_regression(res: MetaRegressionResult) -> str:
    """The summary of a meta-regression as a person reads it."""
    if res.method == "EE":
        title = "Common-effect meta-regression"
    else:
        title = f"Mixed-effects meta-regression (tau^2 estimator: {res.method})"
    lines = [title, f"k = {res.k}" + (f"; measure: {res.measure}" if res.measure else "")]
    if res.reference_levels:
        refs = ", ".join(f"{m} = {lev}" for m, lev in res.reference_levels)
        lines.append(f"reference levels: {refs}")
    lines.append("")
    if res.method != "EE":
        lines.append(f"tau^2 (residual) = {fmt(res.tau2)} (SE {fmt(res.se_tau2)})")
        lines.append(f"I^2 (residual)   = {fmt(res.I2, 2)}%   H^2 = {fmt(res.H2)}")
        if res.R2 is not None:
            lines.append(f"R^2              = {fmt(res.R2, 2)}%")
    else:
        lines.append(f"I^2 (residual) = {fmt(res.I2, 2)}%   H^2 = {fmt(res.H2)}")
    lines.append(
        f"Test for residual heterogeneity: QE({res.QE_df}) = {fmt(res.QE)}, {p_equals(res.QEp)}"
    )
    coefs = ", ".join(str(j + 1) for j in res.btt)
    if res.QM_df2 is not None:
        qm = f"F({res.QM_df}, {res.QM_df2}) = {fmt(res.QM)}"
    else:
        qm = f"QM({res.QM_df}) = {fmt(res.QM)}"
    lines.append(f"Test of moderators (coefficients {coefs}): {qm}, {p_equals(res.QMp)}")
    lines.append("")
    stat = "t" if res.df is not None else "z"
    width = max(10, *(len(n) for n in res.names))
    lines.append(
        f"{'':<{width}} {'estimate':>10} {'se':>9} {stat:>8} {'p':>8} {'ci.lb':>10} {'ci.ub':>10}"
    )
    for j, name in enumerate(res.names):
        lines.append(
            f"{name:<{width}} {fmt(float(res.coef[j])):>10} {fmt(float(res.se[j])):>9} "
            f"{fmt(float(res.stat[j]), 3):>8} {fmt_p(float(res.pval[j])):>8} "
            f"{fmt(float(res.ci_lb[j])):>10} {fmt(float(res.ci_ub[j])):>10}"
        )
    lines += format_excluded(res.excluded)
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Batched refits for the permutation test


@dataclass(frozen=True)
class _BatchStats:
    QM: FloatArray
    stat: FloatArray  # n x p


def _batched_fit(
    Y: FloatArray,
    V: FloatArray,
    X: FloatArray,
    method: str,
    test: str,
    btt: Sequence[int],
) -> _BatchStats:
    """QM and the coefficients' test statistics of the model refitted to every row."""
    n = Y.shape[0]
    batch = Batch(Y, V, X)
    tau2 = np.zeros(n) if method == "EE" else tau2_batch(batch, method)
    fit = batch.weighted(tau2)
    coef, vb = batch.coefficients(fit)
    if test == "knha":
        s2w = knha_factor(fit.rss(), batch.n - batch.p)
        vb = np.asarray(vb * s2w[:, None, None], dtype=np.float64)
    idx = np.asarray(btt)
    b_t = coef[:, idx]
    vb_t = vb[:, idx][:, :, idx]
    with np.errstate(divide="ignore", invalid="ignore"):
        try:
            qm = np.einsum("bi,bi->b", b_t, np.linalg.solve(vb_t, b_t[:, :, None])[:, :, 0])
        except np.linalg.LinAlgError:
            qm = np.full(n, np.nan)
        if test == "knha":
            qm = qm / idx.size
        se = np.sqrt(np.einsum("bii->bi", vb))
        stat = coef / se
    return _BatchStats(QM=np.asarray(qm), stat=np.asarray(stat))


# --------------------------------------------------------------------------
# Permutation test


@dataclass(frozen=True, eq=False, repr=False)
class PermutationResult(Result):
    """A permutation test of a meta-regression's moderators (metafor's ``permutest``).

    ``QMp`` is the permutation p-value of the moderator test and ``pval`` those
    of the coefficients (two-sided, on the absolute test statistics), each the
    proportion of the ``n_perm`` permutations whose statistic is at least the
    observed one. In an approximate test the first permutation is the observed
    data, so no p-value is below ``1 / n_perm``. ``QM_perm`` and ``stat_perm``
    hold the permutation distribution (row 0 the observed data in an
    approximate test).
    """

    method: str
    test: str
    names: tuple[str, ...]
    coef: FloatArray
    stat: FloatArray
    pval: FloatArray
    QM: float
    QMp: float
    n_perm: int
    exact: bool
    seed: int | None
    QM_perm: FloatArray
    stat_perm: FloatArray

    def _short(self) -> str:
        kind = "exact" if self.exact else "approximate"
        seed = f" seed={self.seed}" if self.seed is not None else ""
        return f"{kind} n={self.n_perm} QM={self.QM:.4g} p={self.QMp:.4g}{seed}"

    def summary(self) -> str:
        """The permutation p-values of the moderator test and of each coefficient."""
        kind = "exact (every distinct permutation)" if self.exact else "approximate"
        seed = f", seed {self.seed}" if self.seed is not None else ""
        stat = "F" if self.test == "knha" else "QM"
        lines = [
            f"Permutation test ({kind}; {self.n_perm} permutations{seed}; model "
            f"{self.method}, test {self.test})",
            f"Test of moderators: {stat} = {fmt(self.QM)}, permutation {p_equals(self.QMp)}",
            "",
            text_table(self.to_frame()),
        ]
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient: estimate, observed statistic, permutation p-value."""
        return pd.DataFrame(
            {
                "term": list(self.names),
                "estimate": self.coef,
                "stat": self.stat,
                "pval": self.pval,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """The observed statistics and permutation p-values as a JSON-ready dict."""
        return {
            "method": self.method,
            "test": self.test,
            "n_perm": self.n_perm,
            "exact": self.exact,
            "seed": self.seed,
            "QM": json_number(self.QM),
            "QMp": json_number(self.QMp),
            "coefficients": [
                {
                    "term": name,
                    "estimate": json_number(self.coef[j]),
                    "stat": json_number(self.stat[j]),
                    "pval": json_number(self.pval[j]),
                }
                for j, name in enumerate(self.names)
            ],
        }


def _count_unique_permutations(groups: IntArray, limit: int) -> int | None:
    """k! / prod(n_g!) for the group sizes, or None when it exceeds ``limit``."""
    sizes = np.bincount(groups)
    k = int(groups.size)
    log_count = math.lgamma(k + 1) - sum(math.lgamma(int(s) + 1) for s in sizes)
    if log_count > math.log(limit) + 1.0:
        return None
    count = math.factorial(k)
    for s in sizes:
        count //= math.factorial(int(s))
    return count if count <= limit else None


def _multiset_permutations(groups: IntArray) -> Iterator[list[int]]:
    """Every distinct ordering of ``groups`` in lexicographic order (Knuth's algorithm L)."""
    a = sorted(int(g) for g in groups)
    n = len(a)
    while True:
        yield list(a)
        j = n - 2
        while j >= 0 and a[j] >= a[j + 1]:
            j -= 1
        if j < 0:
            return
        m = n - 1
        while a[j] >= a[m]:
            m -= 1
        a[j], a[m] = a[m], a[j]
        a[j + 1 :] = reversed(a[j + 1 :])


def _orders_from_groups(G: IntArray, groups: IntArray) -> IntArray:
    """For each row g of ``G`` (a group per position), an ordering of the studies
    that refits the model with the rows of X rearranged so that position i has a
    row of group g_i.

    Refitting (y, v, X[tau]) is refitting (y[sigma], v[sigma], X) with
    sigma = tau^-1, because the model does not depend on the order of the studies.
    """
    n, k = G.shape
    by_group = np.argsort(groups, kind="stable")
    positions = np.argsort(G, axis=1, kind="stable")
    tau = np.empty_like(G)
    np.put_along_axis(tau, positions, np.broadcast_to(by_group, (n, k)), axis=1)
    return np.asarray(np.argsort(tau, axis=1))


@dataclass(frozen=True)
class _Plan:
    """Which permutations a test refits: every distinct one (``exact``), or
    ``total - 1`` random ones after the observed data."""

    groups: IntArray  # the class of identical design rows of each study
    exact: bool
    total: int
    chunk: int


def _plan(
    result: MetaRegressionResult, n_perm: int, seed: int | None, exact: bool, chunk: int | None
) -> _Plan:
    """Count the distinct permutations (k! over the factorials of the sizes of groups
    of identical design rows, or 2^k sign patterns) and decide exact or approximate."""
    if n_perm < 2 and not exact:
        raise InputError(f"n_perm is {n_perm}; a permutation test needs at least 2")
    k, p = result.X.shape
    limit = 10**6 if exact else n_perm
    if result.int_only:
        count = 2**k if k < 63 and 2**k <= limit else None
        groups = np.zeros(k, dtype=np.int64)
    else:
        _, inverse = np.unique(result.X, axis=0, return_inverse=True)
        groups = np.asarray(inverse, dtype=np.int64).reshape(-1)
        count = _count_unique_permutations(groups, limit)
    if exact and count is None:
        raise InputError(
            "an exact permutation test would need more than 10^6 permutations",
            fix="use an approximate test (exact=False)",
        )
    if count is None and seed is None:
        raise InputError(
            "an approximate permutation test needs a seed",
            fix="pass seed=<integer> so that the result can be reproduced",
        )
    per_chunk = chunk if chunk is not None else max(1, 4_000_000 // max(k * max(p, 2), 1))
    return _Plan(groups, count is not None, count if count is not None else n_perm, per_chunk)


def _sign_flips(
    y: FloatArray, v: FloatArray, plan: _Plan, rng: np.random.Generator | None
) -> Iterator[tuple[FloatArray, FloatArray]]:
    """Batches of (y, v) with the signs of y flipped (an intercept-only model)."""
    k, step = y.size, plan.chunk
    if plan.exact:
        codes = np.arange(plan.total, dtype=np.int64)
        for start in range(0, plan.total, step):
            c = codes[start : start + step, None]
            signs = 1.0 - 2.0 * ((c >> np.arange(k)) & 1)
            yield signs * y, np.broadcast_to(v, signs.shape).copy()
        return
    assert rng is not None
    for start in range(1, plan.total, step):
        m = min(step, plan.total - start)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(m, k))
        yield signs * y, np.broadcast_to(v, signs.shape).copy()


def _reorderings(
    y: FloatArray, v: FloatArray, plan: _Plan, rng: np.random.Generator | None
) -> Iterator[tuple[FloatArray, FloatArray]]:
    """Batches of (y, v) reordered, which refits the model with the rows of X permuted."""
    k, step = y.size, plan.chunk
    if plan.exact:
        gen = _multiset_permutations(plan.groups)
        while True:
            rows = [g for _, g in zip(range(step), gen, strict=False)]
            if not rows:
                return
            order = _orders_from_groups(np.asarray(rows, dtype=np.int64), plan.groups)
            yield y[order], v[order]
    assert rng is not None
    for start in range(1, plan.total, step):
        m = min(step, plan.total - start)
        order = np.argsort(rng.random((m, k)), axis=1)
        yield y[order], v[order]


def _share_at_least(values: FloatArray, observed: float) -> float:
    """The share of permuted statistics at least the observed one, less metafor's tolerance."""
    ok = ~np.isnan(values)
    return float(np.mean(values[ok] >= observed - _COMPTOL)) if ok.any() else math.nan


def permutation_test(
    result: MetaRegressionResult,
    n_perm: int = 1000,
    *,
    seed: int | None,
    exact: bool = False,
    chunk: int | None = None,
) -> PermutationResult:
    """Permutation test of the moderators of a meta-regression.

    As metafor's ``permutest`` (Higgins & Thompson 2004; Viechtbauer 2010): the
    rows of the design matrix are permuted across studies (for an
    intercept-only model, the signs of the effects are flipped; Follmann &
    Proschan 1999), the model is refitted with the same tau^2 estimator and
    test, and the permutation p-value is the proportion of permutations whose
    QM (or absolute coefficient statistic) is at least the observed one, less
    a tolerance of ``sqrt(machine epsilon)``. In the approximate test the first
    of the ``n_perm`` permutations is the observed data (metafor: "avoids the
    possibility of p = 0"), so p = (1 + #{permuted >= observed}) / n_perm. When
    the number of distinct permutations (k! over the factorials of the sizes
    of groups of identical design rows, or 2^k sign patterns) is at most
    ``n_perm``, every one is used instead (an exact test), as metafor does.

    The refits run in batches of numpy arrays through the engine's estimators,
    so no Python code runs per permutation.

    Parameters
    ----------
    result
        A fitted meta-regression (:func:`fit_regression`).
    n_perm
        Number of permutations, the observed data included (metafor's ``iter``).
    seed
        Seed of the random permutations (:func:`numpy.random.default_rng`).
        Required for an approximate test; may be ``None`` when the test is exact.
    exact
        Use every distinct permutation even when there are more than ``n_perm``
        (refused above 10^6 of them).
    chunk
        Permutations refitted per batch (default: about 4 million numbers).

    Returns
    -------
    PermutationResult
    """
    plan = _plan(result, n_perm, seed, exact, chunk)
    y, v = result.yi, result.vi
    rng = None if plan.exact else np.random.default_rng(seed)
    batches = (_sign_flips if result.int_only else _reorderings)(y, v, plan, rng)
    qm_parts: list[FloatArray] = []
    stat_parts: list[FloatArray] = []
    if not plan.exact:
        qm_parts.append(np.array([result.QM]))
        stat_parts.append(result.stat[None, :])
    for Y, V in batches:
        out = _batched_fit(Y, V, result.X, result.method, result.test, result.btt)
        qm_parts.append(out.QM)
        stat_parts.append(out.stat)
    qm_perm = np.concatenate(qm_parts)
    stat_perm = np.concatenate(stat_parts, axis=0)
    pval = np.array(
        [
            min(1.0, _share_at_least(np.abs(stat_perm[:, j]), abs(float(result.stat[j]))))
            for j in range(result.p)
        ]
    )
    return PermutationResult(
        method=result.method,
        test=result.test,
        names=result.names,
        coef=result.coef,
        stat=result.stat,
        pval=pval,
        QM=result.QM,
        QMp=min(1.0, _share_at_least(qm_perm, result.QM)),
        n_perm=int(qm_perm.size),
        exact=plan.exact,
        seed=None if plan.exact else seed,
        QM_perm=qm_perm,
        stat_perm=stat_perm,
    )
