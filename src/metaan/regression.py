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
from scipy import special

from metaan._dist import chi2_sf, norm_isf, t_isf
from metaan._format import fmt, fmt_p, format_excluded
from metaan._json import json_number
from metaan.engine import knha_factor
from metaan.errors import InputError, MetaanError, NotEstimableError
from metaan.estimators import WLS, Batch, FloatArray, estimate_tau2, tau2_batch
from metaan.heterogeneity import i2_h2, typical_within_variance
from metaan.models import METHODS, TESTS, EffectData, check_choice, check_level, prepare_effects
from metaan.results import Exclusion

__all__ = [
    "Design",
    "MetaRegressionResult",
    "PermutationResult",
    "RegressionPrediction",
    "build_design",
    "fit_design",
    "fit_regression",
    "level_name",
    "permutation_test",
]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Name of the intercept column, as metafor names it.
INTERCEPT = "intrcpt"

#: Tolerance of the comparison of permuted statistics with the observed one
#: (metafor's ``permutest``: ``comptol = .Machine$double.eps^0.5``).
_COMPTOL = math.sqrt(np.finfo(float).eps)


# --------------------------------------------------------------------------
# Moderators and the design matrix


def level_name(value: Any) -> str:
    """The text of a categorical value: whole floats lose their ``.0`` (``2.0`` -> ``"2"``)."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _is_categorical(col: pd.Series) -> bool:
    """Text, boolean and pandas categorical columns are factors; numbers are covariates."""
    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
        return True
    if pd.api.types.is_numeric_dtype(dtype):
        return False
    present = col[col.notna()]
    # An object column holding only numbers (not their texts) is a covariate.
    return not all(
        isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)
        for v in present
    )


def ordered_levels(col: pd.Series) -> list[str]:
    """The levels of a categorical column in R's ``factor`` order.

    A pandas categorical keeps the order of its categories (those present); any
    other column is sorted: numerically when its values are numbers, else as text.
    """
    present = col[col.notna()]
    if isinstance(col.dtype, pd.CategoricalDtype):
        seen = set(present.astype(object).tolist())
        return [level_name(c) for c in col.cat.categories if c in seen]
    values = list(dict.fromkeys(present.tolist()))
    if all(
        isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)
        for v in values
    ):
        values.sort(key=float)
        return list(dict.fromkeys(level_name(v) for v in values))
    return sorted({level_name(v) for v in values})


@dataclass(frozen=True)
class Design:
    """Effect sizes of the usable studies with their design matrix.

    ``X`` has one row per study in ``data`` and one column per name in
    ``names`` (``intrcpt`` first when the model has an intercept).
    ``reference_levels`` maps each categorical moderator coded by treatment
    dummies to its reference level.
    """

    data: EffectData
    X: FloatArray
    names: tuple[str, ...]
    moderators: tuple[str, ...]
    intercept: bool
    reference_levels: tuple[tuple[str, str], ...] = ()
    #: The levels of each categorical moderator, in coding order.
    levels: tuple[tuple[str, tuple[str, ...]], ...] = ()


def _effect_mask(yi: Any, vi: Any, sei: Any) -> BoolArray:
    """Which input rows have a finite effect size and variance (as prepare_effects keeps)."""
    if isinstance(yi, pd.DataFrame):
        y = pd.to_numeric(yi["yi"], errors="coerce").to_numpy(dtype=float)
        var_col = "vi" if "vi" in yi.columns else "sei"
        v = pd.to_numeric(yi[var_col], errors="coerce").to_numpy(dtype=float)
    else:
        y = np.atleast_1d(np.asarray(yi, dtype=float))
        v = np.atleast_1d(np.asarray(vi if vi is not None else sei, dtype=float))
    return np.asarray(np.isfinite(y) & np.isfinite(v))


def _split_names(mods: str | Sequence[str]) -> list[str]:
    return [mods] if isinstance(mods, str) else [str(m) for m in mods]


def _moderator_frame(mods: Any, table: pd.DataFrame | None, n: int) -> pd.DataFrame:
    """The moderators as a DataFrame with one row per input row (positional index)."""
    if mods is None:
        return pd.DataFrame(index=pd.RangeIndex(n))
    if isinstance(mods, str) or (
        isinstance(mods, Sequence) and mods and all(isinstance(m, str) for m in mods)
    ):
        names = _split_names(mods)
        if table is None:
            raise InputError(
                "moderators given by name need a table",
                fix="pass an effect-size table with the moderator columns, or the moderator values",
            )
        for name in names:
            if name not in table.columns:
                raise InputError(
                    f"the moderator column {name!r} is not in the table",
                    column=name,
                    fix=f"use one of {', '.join(map(str, table.columns))}",
                )
        if len(set(names)) != len(names):
            raise InputError("a moderator is named twice", fix="name each moderator once")
        frame = table.loc[:, names]
    elif isinstance(mods, pd.DataFrame):
        frame = mods
    elif isinstance(mods, pd.Series):
        frame = mods.to_frame(name=str(mods.name) if mods.name is not None else "mod")
    elif isinstance(mods, Mapping):
        frame = pd.DataFrame({str(k): list(v) for k, v in mods.items()})
    else:
        try:
            arr = np.asarray(mods, dtype=float)
        except (TypeError, ValueError):
            raise InputError(
                "the moderators contain a value that is not a number",
                fix="pass text moderators as a DataFrame or a mapping of name to values",
            ) from None
        if arr.ndim == 1:
            frame = pd.DataFrame({"mod": arr})
        elif arr.ndim == 2:
            frame = pd.DataFrame({f"mod{j + 1}": arr[:, j] for j in range(arr.shape[1])})
        else:
            raise InputError(f"the moderators must be 1- or 2-dimensional, not {arr.ndim}")
    if len(frame) != n:
        raise InputError(f"there are {n} studies but {len(frame)} rows of moderators")
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _columns(
    frame: pd.DataFrame, intercept: bool
) -> tuple[
    list[FloatArray],
    list[str],
    list[tuple[str, str]],
    list[tuple[str, tuple[str, ...]]],
]:
    cols: list[FloatArray] = []
    names: list[str] = []
    references: list[tuple[str, str]] = []
    factor_levels: list[tuple[str, tuple[str, ...]]] = []
    full_dummies = not intercept  # as R's ~ factor - 1: every level gets a column
    for name in frame.columns:
        col = frame[name]
        if not _is_categorical(col):
            try:
                cols.append(col.to_numpy(dtype=float))
            except (TypeError, ValueError):
                raise InputError(
                    f"the moderator {name} has a value that is not a number", column=name
                ) from None
            names.append(name)
            continue
        levels = ordered_levels(col)
        factor_levels.append((name, tuple(levels)))
        if len(levels) < 2 and not full_dummies:
            raise NotEstimableError(
                f"the moderator {name} has a single level ({levels[0]}) among the studies used; "
                "a categorical moderator needs at least two"
            )
        text = col.map(level_name)
        used = levels if full_dummies else levels[1:]
        if not full_dummies:
            references.append((name, levels[0]))
        full_dummies = False
        for lev in used:
            cols.append(np.asarray((text == lev).to_numpy(), dtype=np.float64))
            names.append(f"{name}[{lev}]")
    return cols, names, references, factor_levels


def build_design(
    yi: Any,
    vi: Any = None,
    mods: Any = None,
    *,
    sei: Any = None,
    intercept: bool = True,
    labels: Sequence[str] | None = None,
    label: str | None = None,
    measure: str | None = None,
    source: str | None = None,
    role: str = "moderator",
) -> Design:
    """Effect sizes and the design matrix of a meta-regression (see :func:`fit_regression`).

    Rows with a missing effect size, variance or moderator value are left out
    and listed in ``data.excluded``, each with its reason (``"<role> <name> is
    missing"``).
    """
    table = yi if isinstance(yi, pd.DataFrame) else None
    data_all = prepare_effects(
        yi, vi, sei=sei, labels=labels, label=label, measure=measure, source=source
    )
    keep = _effect_mask(yi, vi, sei)
    if int(keep.sum()) != data_all.yi.size:  # pragma: no cover - a broken invariant
        raise RuntimeError("the usable studies do not line up with their moderators")
    frame = _moderator_frame(mods, table, keep.size)
    for name in frame.columns:
        if name == INTERCEPT:
            raise InputError(
                f"a moderator may not be called {INTERCEPT!r}",
                column=name,
                fix="rename the column",
            )

    used = frame.loc[keep].reset_index(drop=True)
    missing = used.isna().to_numpy()
    excluded = list(data_all.excluded)
    if missing.any():
        for j in np.flatnonzero(missing.any(axis=1)).tolist():
            gone = [str(c) for c, m in zip(used.columns, missing[j], strict=True) if m]
            verb = "is" if len(gone) == 1 else "are"
            reason = f"{role} {' and '.join(gone)} {verb} missing"
            excluded.append(Exclusion(data_all.rows[j], data_all.labels[j], reason))
        excluded.sort(key=lambda e: (e.row is None, e.row if e.row is not None else 0))
    ok = ~missing.any(axis=1) if missing.size else np.ones(len(used), dtype=bool)
    idx = np.flatnonzero(ok)
    data = EffectData(
        yi=data_all.yi[idx],
        vi=data_all.vi[idx],
        labels=tuple(data_all.labels[i] for i in idx),
        rows=tuple(data_all.rows[i] for i in idx),
        excluded=tuple(excluded),
        measure=data_all.measure,
    )
    if idx.size == 0:
        raise InputError(
            f"no study has an effect size, a variance and every {role} value",
            file=source,
            fix="check the yi, vi and moderator columns",
        )
    cols, names, references, factor_levels = _columns(
        used.iloc[idx].reset_index(drop=True), intercept
    )
    if intercept:
        cols.insert(0, np.ones(idx.size))
        names.insert(0, INTERCEPT)
    if not cols:
        raise InputError(
            "the model has neither an intercept nor moderators",
            fix="keep the intercept or name at least one moderator",
        )
    X = np.column_stack(cols).astype(np.float64) if idx.size else np.empty((0, len(cols)))
    return Design(
        data=data,
        X=X,
        names=tuple(names),
        moderators=tuple(frame.columns),
        intercept=intercept,
        reference_levels=tuple(references),
        levels=tuple(factor_levels),
    )


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


@dataclass(frozen=True, eq=False)
class RegressionPrediction:
    """Fitted values of a meta-regression with their standard errors and CIs."""

    pred: FloatArray
    se: FloatArray
    ci_lb: FloatArray
    ci_ub: FloatArray
    level: float

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"pred": self.pred, "se": self.se, "ci_lb": self.ci_lb, "ci_ub": self.ci_ub}
        )


@dataclass(frozen=True, eq=False, repr=False)
class MetaRegressionResult:
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
    moderators).
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
    labels: tuple[str, ...] = ()
    rows: tuple[int | None, ...] = ()

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

    def predict(self, newmods: npt.ArrayLike) -> RegressionPrediction:
        """Fitted values and their confidence intervals at new rows of the design.

        Parameters
        ----------
        newmods
            Rows of the design matrix, one value per coefficient in ``names``
            (intercept included), as a 1-d row or a 2-d array.

        Returns
        -------
        RegressionPrediction
            ``pred = x b`` with ``se = sqrt(x V x')`` and the interval
            ``pred ± crit se``, where ``crit`` is the quantile of the model's test
            (t with ``df`` under Knapp-Hartung, else normal), as metafor's
            ``predict.rma`` computes the confidence interval of a fitted value.
        """
        x = np.atleast_2d(np.asarray(newmods, dtype=np.float64))
        if x.shape[1] != self.p:
            raise InputError(
                f"newmods has {x.shape[1]} columns but the model has {self.p} coefficients",
                fix=f"give one value per coefficient: {', '.join(self.names)}",
            )
        pred = x @ self.coef
        se = np.sqrt(np.einsum("ij,jk,ik->i", x, self.vcov, x))
        alpha = 1.0 - self.level / 100.0
        crit = t_isf(alpha / 2.0, self.df) if self.df is not None else norm_isf(alpha / 2.0)
        return RegressionPrediction(
            pred=pred, se=se, ci_lb=pred - crit * se, ci_ub=pred + crit * se, level=self.level
        )

    @property
    def model(self) -> str:
        """``"mixed"`` (random) or ``"common"`` effects."""
        return "common" if self.method == "EE" else "mixed"

    @property
    def int_only(self) -> bool:
        """True for a model with an intercept and no moderators."""
        return self.names == (INTERCEPT,)

    def __repr__(self) -> str:
        qm = f"F({self.QM_df},{self.QM_df2})" if self.QM_df2 is not None else f"QM({self.QM_df})"
        text = (
            f"<MetaRegression {self.method} k={self.k} p={self.p} {qm}={self.QM:.4g} "
            f"p={self.QMp:.3g}"
        )
        if self.method != "EE":
            text += f" tau2={self.tau2:.4g}"
        if self.R2 is not None:
            text += f" R2={self.R2:.1f}%"
        return text + ">"

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
        return 2.0 * special.ndtr(-np.abs(stat)), norm_isf(alpha / 2.0)
    if df <= 0:
        return np.full_like(stat, np.nan), math.nan
    return 2.0 * special.stdtr(df, -np.abs(stat)), t_isf(alpha / 2.0, df)


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
    x_tau = None if int_only else X

    if method == "EE" or k == 1:
        tau2, se_tau2 = 0.0, None
    else:
        est = estimate_tau2(y, v, method, x_tau)
        tau2, se_tau2 = est.tau2, est.se_tau2

    wls = WLS(y, 1.0 / (v + tau2), X)
    coef = np.asarray(wls.b, dtype=np.float64)
    vcov = np.asarray(wls.a_inv, dtype=np.float64).reshape(p, p)
    df: int | None = None
    if test == "knha":
        if k == 1:
            test = "z"  # as metafor: one study leaves nothing to scale by
        else:
            df = k - p
            rss = wls.rss()
            vcov = float(knha_factor(rss, df)) * vcov
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(np.diag(vcov))
        stat = coef / se
    pval, crit = _pvals_and_crit(stat, df, level)

    if design.intercept and p > 1:
        btt: tuple[int, ...] = tuple(range(1, p))
    else:
        btt = tuple(range(p))
    m = len(btt)
    qm = _wald(coef, vcov, btt)
    qm_df2: int | None = None
    if df is not None:
        qm /= m
        qm_df2 = df
        qmp = float(special.fdtrc(m, df, qm)) if df > 0 else math.nan
    else:
        qmp = chi2_sf(qm, m)

    if k > p:
        qe = max(0.0, WLS(y, 1.0 / v, X).rss())
        qep = chi2_sf(qe, k - p)
        if method == "EE":
            i2 = max(0.0, 100.0 * (qe - (k - p)) / qe) if qe > 0.0 else 0.0
            h2 = qe / (k - p)
        else:
            i2, h2 = i2_h2(tau2, _typical_variance(v, x_tau))
    else:
        qe, qep, i2, h2 = 0.0, 1.0, 0.0, 1.0

    r2: float | None = None
    tau2_re: float | None = None
    if not int_only and design.intercept and method != "EE":
        try:
            tau2_re = estimate_tau2(y, v, method, None).tau2
        except MetaanError:
            tau2_re = None
        if tau2_re is not None:
            r2 = 0.0 if tau2_re == 0.0 else max(0.0, 100.0 * (tau2_re - tau2) / tau2_re)

    return MetaRegressionResult(
        measure=data.measure,
        method=method,
        test=test,
        level=level,
        k=k,
        names=names,
        coef=coef,
        se=se,
        stat=stat,
        pval=pval,
        ci_lb=coef - crit * se,
        ci_ub=coef + crit * se,
        vcov=vcov,
        df=df,
        btt=btt,
        QM=qm,
        QM_df=m,
        QM_df2=qm_df2,
        QMp=qmp,
        QE=qe,
        QE_df=k - p,
        QEp=qep,
        tau2=tau2,
        se_tau2=se_tau2,
        I2=i2,
        H2=h2,
        R2=r2,
        tau2_intercept_only=tau2_re,
        intercept=design.intercept,
        moderators=design.moderators,
        reference_levels=design.reference_levels,
        excluded=data.excluded,
        yi=y,
        vi=v,
        X=X,
        labels=data.labels,
        rows=data.rows,
    )


def fit_regression(
    yi: Any,
    vi: Any = None,
    mods: Any = None,
    *,
    sei: Any = None,
    method: str = "REML",
    test: str = "z",
    level: float = 95.0,
    intercept: bool = True,
    labels: Sequence[str] | None = None,
    label: str | None = None,
    measure: str | None = None,
    source: str | None = None,
) -> MetaRegressionResult:
    """Fit a meta-regression: a mixed-effects (or common-effect) model with moderators.

    Parameters
    ----------
    yi
        Effect sizes (array-like), or an effect-size table (DataFrame with
        ``yi`` and ``vi`` or ``sei`` columns, and the moderator columns).
    vi, sei
        Sampling variances or standard errors, when ``yi`` is an array. With a
        table, a moderator name (or list of names) given in the place of ``vi``
        is taken as ``mods``.
    mods
        With a table: the name of a moderator column or a list of names. Any
        input: a 1-d or 2-d array of moderator values, a DataFrame or a mapping
        of name to values. Numeric moderators enter as they are; text, boolean
        and categorical ones as treatment dummies (``name[level]``) with the
        first level as reference: sorted order, or the order of a pandas
        categorical's categories, as R's ``factor``. ``None`` fits the
        intercept-only model.
    method
        ``EE`` (common effect) or a tau^2 estimator: ``DL``, ``HE``, ``HS``,
        ``SJ``, ``ML``, ``REML`` (default), ``EB``, ``PM``.
    test
        ``z`` or ``knha`` (Knapp & Hartung 2003: the covariance matrix is scaled
        by ``RSS / (k - p)`` with weights ``1/(v_i + tau^2)``, coefficients use t
        with ``k - p`` df and the moderator test is ``F = QM / m`` with
        ``(m, k - p)`` df, as metafor).
    level
        Confidence level in percent (95) or as a fraction (0.95).
    intercept
        Include an intercept (default). Without one, the first categorical
        moderator gets a column for every level, as R's ``~ x - 1``.
    labels, label, measure, source
        As for :func:`metaan.fit`.

    Returns
    -------
    MetaRegressionResult
        Coefficients with SE, test, p-value and CI; QM and QE with p-values;
        residual tau^2 with its SE, I^2, H^2 and R^2 (metafor's pseudo R^2
        ``max(0, 100 (tau2_RE - tau2) / tau2_RE)`` against the intercept-only
        model with the same estimator; Raudenbush 2009).

    Raises
    ------
    InputError
        A moderator column that does not exist, a moderator that is not a
        number where one is needed, bad variances.
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
    if (
        isinstance(yi, pd.DataFrame)
        and mods is None
        and (isinstance(vi, str) or (isinstance(vi, Sequence) and vi and isinstance(vi[0], str)))
    ):
        vi, mods = None, vi
    design = build_design(
        yi,
        vi,
        mods,
        sei=sei,
        intercept=intercept,
        labels=labels,
        label=label,
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
        f"Test for residual heterogeneity: QE({res.QE_df}) = {fmt(res.QE)}, p = {fmt_p(res.QEp)}"
    )
    coefs = ", ".join(str(j + 1) for j in res.btt)
    if res.QM_df2 is not None:
        qm = f"F({res.QM_df}, {res.QM_df2}) = {fmt(res.QM)}"
    else:
        qm = f"QM({res.QM_df}) = {fmt(res.QM)}"
    lines.append(f"Test of moderators (coefficients {coefs}): {qm}, p = {fmt_p(res.QMp)}")
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
class PermutationResult:
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

    def __repr__(self) -> str:
        kind = "exact" if self.exact else "approximate"
        return (
            f"<PermutationTest {kind} n={self.n_perm} QM={self.QM:.4g} p={self.QMp:.4g}"
            + (f" seed={self.seed}" if self.seed is not None else "")
            + ">"
        )

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

    The refits run in batches of numpy arrays: the tau^2 estimators and the
    weighted least squares are computed for all permutations at once, the
    iterative estimators (ML, REML, PM, EB) with a vectorised safeguarded Newton
    iteration, so no Python code runs per permutation.

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
    if n_perm < 2 and not exact:
        raise InputError(f"n_perm is {n_perm}; a permutation test needs at least 2")
    k, p = result.X.shape
    y, v, X = result.yi, result.vi, result.X
    int_only = result.int_only
    limit = 10**6 if exact else n_perm

    if int_only:
        count = 2**k if k < 63 and 2**k <= limit else None
        groups = np.zeros(k, dtype=np.int64)
    else:
        _, inverse = np.unique(X, axis=0, return_inverse=True)
        groups = np.asarray(inverse, dtype=np.int64).reshape(-1)
        count = _count_unique_permutations(groups, limit)
    is_exact = count is not None
    if exact and not is_exact:
        raise InputError(
            "an exact permutation test would need more than 10^6 permutations",
            fix="use an approximate test (exact=False)",
        )
    if not is_exact and seed is None:
        raise InputError(
            "an approximate permutation test needs a seed",
            fix="pass seed=<integer> so that the result can be reproduced",
        )

    rng = np.random.default_rng(seed) if not is_exact else None
    total = count if count is not None else n_perm
    per_chunk = chunk if chunk is not None else max(1, 4_000_000 // max(k * max(p, 2), 1))

    def batches() -> Iterator[tuple[FloatArray, FloatArray]]:
        if int_only:
            if is_exact:
                codes = np.arange(total, dtype=np.int64)
                for start in range(0, total, per_chunk):
                    c = codes[start : start + per_chunk, None]
                    signs = 1.0 - 2.0 * ((c >> np.arange(k)) & 1)
                    yield signs * y, np.broadcast_to(v, signs.shape).copy()
            else:
                assert rng is not None
                for start in range(1, total, per_chunk):
                    m = min(per_chunk, total - start)
                    signs = rng.choice(np.array([-1.0, 1.0]), size=(m, k))
                    yield signs * y, np.broadcast_to(v, signs.shape).copy()
            return
        if is_exact:
            gen = _multiset_permutations(groups)
            while True:
                rows = [g for _, g in zip(range(per_chunk), gen, strict=False)]
                if not rows:
                    return
                order = _orders_from_groups(np.asarray(rows, dtype=np.int64), groups)
                yield y[order], v[order]
        else:
            assert rng is not None
            for start in range(1, total, per_chunk):
                m = min(per_chunk, total - start)
                order = np.argsort(rng.random((m, k)), axis=1)
                yield y[order], v[order]

    qm_parts: list[FloatArray] = []
    stat_parts: list[FloatArray] = []
    if not is_exact:
        qm_parts.append(np.array([result.QM]))
        stat_parts.append(result.stat[None, :])
    for Y, V in batches():
        out = _batched_fit(Y, V, X, result.method, result.test, result.btt)
        qm_parts.append(out.QM)
        stat_parts.append(out.stat)
    qm_perm = np.concatenate(qm_parts)
    stat_perm = np.concatenate(stat_parts, axis=0)

    def share(values: FloatArray, observed: float) -> float:
        ok = ~np.isnan(values)
        return float(np.mean(values[ok] >= observed - _COMPTOL)) if ok.any() else math.nan

    qmp = min(1.0, share(qm_perm, result.QM))
    pval = np.array(
        [min(1.0, share(np.abs(stat_perm[:, j]), abs(float(result.stat[j])))) for j in range(p)]
    )
    return PermutationResult(
        method=result.method,
        test=result.test,
        names=result.names,
        coef=result.coef,
        stat=result.stat,
        pval=pval,
        QM=result.QM,
        QMp=qmp,
        n_perm=int(qm_perm.size),
        exact=is_exact,
        seed=None if is_exact else seed,
        QM_perm=qm_perm,
        stat_perm=stat_perm,
    )
