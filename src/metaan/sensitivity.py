"""Sensitivity analyses: leave-one-out, influence diagnostics, Baujat coordinates
and cumulative meta-analysis.

Each analysis refits the model to many subsets of the studies (all but one
study, or the first i studies). metafor refits them one at a time, each fit
O(k^3) in time and O(k^2) in memory; here the k refits are computed together.
What a refit needs are the sums

.. math:: S_{ab}(t) = \\sum_{j \\in \\text{subset}} (v_j + t)^{-a} y_j^b,
    \\qquad a = 1, 2, 3, \\quad b = 0, 1, 2,

at the subset's own tau^2 = t. Around a common centre c (the tau^2 of the full
fit), :math:`(v_j + t)^{-a}` is a power series in :math:`t - c` whose
coefficients are moments :math:`\\sum_j (v_j + c)^{-a-n} y_j^b`; the moments of
all-but-one subsets are totals minus each study's own term, those of the
leading subsets cumulative sums. So every step of the root finder costs O(k)
for all k subsets at once. A subset whose t is too far from c for the series to
converge fast (or whose own term dominates the totals, where the subtraction
would lose digits) is summed directly instead, O(k) for that subset alone. The
subsets are a :class:`~metaan.estimators.Source` of the engine: the tau^2 of
every subset comes from the same estimators (:func:`metaan.estimators.tau2_batch`)
and solver (:func:`metaan.solver.solve_decreasing`) as every other fit, and the
Knapp-Hartung factor from :func:`metaan.engine.knha_factor`.

References
----------
Viechtbauer, W., & Cheung, M. W.-L. (2010). Outlier and influence diagnostics
for meta-analysis. *Research Synthesis Methods*, 1, 112-125.

Baujat, B., Mahé, C., Pignon, J.-P., & Hill, C. (2002). A graphical method for
exploring heterogeneity in meta-analyses: application to a meta-analysis of 65
trials. *Statistics in Medicine*, 21, 2641-2652.

Lau, J., Antman, E. M., Jimenez-Silva, J., Kupelnick, B., Mosteller, F., &
Chalmers, T. C. (1992). Cumulative meta-analysis of therapeutic trials for
myocardial infarction. *New England Journal of Medicine*, 327, 248-254.

Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package.
*Journal of Statistical Software*, 36(3), 1-48 (the R sources of ``leave1out``,
``influence``, ``baujat`` and ``cumul`` define the conventions followed here).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from metaan._args import Column, column_values
from metaan._base import Result
from metaan._dist import chi2_cdf, chi2_sf, norm_isf, norm_sf, t_isf, t_sf
from metaan._format import text_table
from metaan._json import json_list, jsonable
from metaan.bias import as_fit
from metaan.engine import knha_factor
from metaan.errors import InputError, NotEstimableError
from metaan.estimators import ITERATIVE, FloatArray, Moments, tau2_batch
from metaan.io import spreadsheet_rows
from metaan.results import MetaResult

__all__ = [
    "Baujat",
    "Cumulative",
    "Influence",
    "LeaveOneOut",
    "baujat",
    "cumulative",
    "influence",
    "leave_one_out",
]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
SubsetKind = Literal["drop", "prefix"]

#: Terms of the power series in (t - c), and the largest |t - c| max_j (v_j + c)^-1
#: it is used for: the first omitted term is then below 1e-18 relative.
_SERIES_TERMS = 24
_SERIES_RADIUS = 0.125
#: An all-but-one subset is summed directly when the omitted study carries more
#: than this share of a total (the subtraction would lose more than one bit).
_MAX_OWN_SHARE = 0.5
#: A leading subset is summed directly when its largest weight is this far
#: below the largest overall (the scaled series could overflow).
_MIN_WEIGHT_RATIO = 1e-6
#: Cells per block of direct summation (memory of one block: 16 MiB per array).
_BLOCK_CELLS = 1 << 21


# --------------------------------------------------------------------------------------
# The engine: sums over many subsets, each at its own tau^2
# --------------------------------------------------------------------------------------


class _SubsetSums:
    """The sums ``S[a-1, b, i] = sum_{j in subset i} (v_j + t_i)^-a y_j^b``.

    ``kind="drop"``: subset i is every study but i; ``kind="prefix"``: studies
    0..i. ``centre`` is the tau^2 about which the series is expanded.
    """

    def __init__(self, y: FloatArray, v: FloatArray, kind: SubsetKind, centre: float) -> None:
        self.y, self.v, self.kind, self.centre = y, v, kind, centre
        k = y.size
        self.ypow = np.stack([np.ones(k), y, y * y])  # (3, k): y^b
        u = 1.0 / (v + centre)
        self.scale = float(u.max())
        r = u / self.scale  # in (0, 1]
        orders = np.arange(3 + _SERIES_TERMS)
        with np.errstate(under="ignore"):
            powers = r[None, :] ** orders[:, None]  # (m, k): r^m
        self.powers = powers
        if kind == "drop":
            # Totals of r^m y^b; a subset's moment is the total minus the study's
            # own term, formed when it is needed (no (m, 3, k) array is kept).
            self.totals = np.stack([np.sum(p * self.ypow, axis=1) for p in powers])  # (m, 3)
            own = powers[3][None, :] * np.abs(self.ypow)  # the a = 3 terms
            total_abs = own.sum(axis=1, keepdims=True)
            with np.errstate(invalid="ignore", divide="ignore"):
                share = np.where(total_abs > 0.0, own / total_abs, 0.0).max(axis=0)
            self.series_ok: BoolArray = share <= _MAX_OWN_SHARE
            self.reach: FloatArray = np.full(k, self.scale)
        else:
            with np.errstate(under="ignore"):
                self.moments = np.cumsum(powers[:, None, :] * self.ypow[None, :, :], axis=2)
            running = np.maximum.accumulate(u)
            self.series_ok = running >= _MIN_WEIGHT_RATIO * self.scale
            self.reach = running
        n = np.arange(_SERIES_TERMS, dtype=np.float64)
        self.coef = np.stack([np.ones_like(n), n + 1.0, (n + 1.0) * (n + 2.0) / 2.0])

    def evaluate(self, t: FloatArray, idx: IntArray) -> FloatArray:
        """The sums for subsets ``idx`` at tau^2 values ``t``: shape (3, 3, len(idx))."""
        out = np.empty((3, 3, idx.size))
        if idx.size == 0:
            return out
        delta = t - self.centre
        use = self.series_ok[idx] & (np.abs(delta) * self.reach[idx] <= _SERIES_RADIUS)
        if use.any():
            out[:, :, use] = self._series(delta[use], idx[use])
        if not use.all():
            rest = np.flatnonzero(~use)
            out[:, :, rest] = self._direct(t[rest], idx[rest])
        return out

    def _series(self, delta: FloatArray, idx: IntArray) -> FloatArray:
        # In blocks of subsets, so that the temporary (terms, 3, subsets) arrays
        # stay small whatever k is.
        step = max(1, _BLOCK_CELLS // (3 * _SERIES_TERMS))
        if idx.size <= step:
            return self._series_block(delta, idx)
        out = np.empty((3, 3, idx.size))
        for start in range(0, idx.size, step):
            sel = slice(start, start + step)
            out[:, :, sel] = self._series_block(delta[sel], idx[sel])
        return out

    def _series_block(self, delta: FloatArray, idx: IntArray) -> FloatArray:
        x = -delta * self.scale
        powers = x[None, :] ** np.arange(_SERIES_TERMS)[:, None]  # (n, m)
        out = np.empty((3, 3, idx.size))
        for a in (1, 2, 3):
            rows = slice(a, a + _SERIES_TERMS)
            if self.kind == "drop":
                own = self.powers[rows][:, None, idx] * self.ypow[None, :, idx]
                block = self.totals[rows][:, :, None] - own  # (n, 3, m)
            else:
                block = self.moments[rows][:, :, idx]
            weights = self.coef[a - 1][:, None] * powers  # (n, m)
            out[a - 1] = self.scale**a * np.einsum("nm,nbm->bm", weights, block)
        return out

    def _direct(self, t: FloatArray, idx: IntArray) -> FloatArray:
        out = np.empty((3, 3, idx.size))
        ncol = self.y.size if self.kind == "drop" else int(idx.max()) + 1
        v = self.v[:ncol]
        ypow_t = self.ypow[:, :ncol].T  # (ncol, 3)
        rows = max(1, _BLOCK_CELLS // ncol)
        cols = np.arange(ncol)
        for start in range(0, idx.size, rows):
            sel = slice(start, start + rows)
            ii, tt = idx[sel], t[sel]
            w = 1.0 / (v[None, :] + tt[:, None])
            if self.kind == "drop":
                w[np.arange(ii.size), ii] = 0.0
            else:
                w[cols[None, :] > ii[:, None]] = 0.0
            w2 = w * w
            out[0, :, sel] = (w @ ypow_t).T
            out[1, :, sel] = (w2 @ ypow_t).T
            out[2, :, sel] = ((w2 * w) @ ypow_t).T
        return out


def _moments(s: FloatArray) -> Moments:
    """The :class:`~metaan.estimators.Moments` of each subset from its sums S."""
    a1, a2, a3 = s[0, 0], s[1, 0], s[2, 0]
    b1, b2, b3 = s[0, 1], s[1, 1], s[2, 1]
    c1, c2, c3 = s[0, 2], s[1, 2], s[2, 2]
    mu = b1 / a1
    w2e = b2 - mu * a2
    ratio = a2 / a1
    return Moments(
        sw=a1,
        sw2=a2,
        rss=c1 - mu * b1,
        ypp=c2 - 2.0 * mu * b2 + mu * mu * a2,
        yppp=c3 - 2.0 * mu * b3 + mu * mu * a3 - w2e * w2e / a1,
        trp=a1 - ratio,
        trpp=a2 - 2.0 * a3 / a1 + ratio * ratio,
    )


class _Subsets:
    """The leave-one-out or leading subsets ``idx`` of centred effects, as a
    :class:`~metaan.estimators.Source` for the engine's estimators."""

    p = 1

    def __init__(
        self, y: FloatArray, v: FloatArray, kind: SubsetKind, idx: IntArray, centre: float
    ) -> None:
        self.y, self.v, self.kind, self.idx, self.centre = y, v, kind, idx, centre
        if kind == "drop":
            self.n: FloatArray = np.full(idx.size, y.size - 1, dtype=np.float64)
        else:
            self.n = idx.astype(np.float64) + 1.0
        self.at_zero = _SubsetSums(y, v, kind, 0.0)
        self._around: _SubsetSums | None = None

    def sums(self, t: FloatArray, rows: IntArray) -> FloatArray:
        """The sums S of subsets ``rows`` at tau^2 values ``t`` (expanded about the
        full fit's tau^2, or at 0 exactly)."""
        if not np.any(t):
            return self.at_zero.evaluate(t, self.idx[rows])
        if self._around is None:
            self._around = _SubsetSums(self.y, self.v, self.kind, self.centre)
        return self._around.evaluate(t, self.idx[rows])

    def at(self, t: FloatArray, rows: IntArray) -> Moments:
        return _moments(self.sums(t, rows))

    def _plain(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Per subset: the sum of y, the OLS residual sum of squares, the sum of v."""
        stacked = np.stack([self.y, self.y * self.y, self.v])
        if self.kind == "drop":
            sums = stacked.sum(axis=1, keepdims=True) - stacked
        else:
            sums = np.cumsum(stacked, axis=1)
        sum_y, sum_y2, sum_v = sums[0, self.idx], sums[1, self.idx], sums[2, self.idx]
        return sum_y, sum_y2 - sum_y * sum_y / self.n, sum_v

    def unweighted(self) -> tuple[FloatArray, FloatArray]:
        _, rss, sum_v = self._plain()
        return rss, sum_v - sum_v / self.n

    def spread(self) -> FloatArray:
        return self._plain()[1] / self.n

    def scale(self) -> FloatArray:
        return np.full(self.idx.size, float(np.var(self.y)) + float(np.mean(self.v)) + 1e-300)

    def tolerance(self) -> FloatArray:
        return np.full(self.idx.size, max(float(np.min(self.v)), 1e-300) * 1e-16)


@dataclass(frozen=True)
class _Refits:
    """Every quantity of the refits to a family of subsets (centred effects)."""

    n: FloatArray  # studies in each subset
    tau2: FloatArray
    mu: FloatArray  # estimate minus the centring constant
    a1: FloatArray  # sum of weights at tau2
    rss: FloatArray  # sum w e^2 at tau2 (Knapp-Hartung)
    qe: FloatArray
    i2: FloatArray
    h2: FloatArray


def _refits(
    y: FloatArray,
    v: FloatArray,
    method: str,
    kind: SubsetKind,
    idx: IntArray,
    centre: float,
) -> _Refits:
    """Refit ``method`` to the subsets ``idx`` of the centred effects ``y`` with the
    engine's estimators (:func:`metaan.estimators.tau2_batch`)."""
    source = _Subsets(y, v, kind, idx, centre)
    n, rows = source.n, np.arange(idx.size)
    s0 = source.sums(np.zeros(idx.size), rows)
    fe = _moments(s0)
    qe = np.where(n > 1.0, np.maximum(0.0, fe.rss), 0.0)  # one study has no Q
    if method == "EE":
        tau2 = np.zeros(idx.size)
    else:
        start = np.full(idx.size, centre) if method in ITERATIVE else None
        tau2 = tau2_batch(source, method, start=start)
    s = s0 if method == "EE" or not np.any(tau2 > 0.0) else source.sums(tau2, rows)
    mu = s[0, 1] / s[0, 0]
    df = n - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "EE":
            i2 = np.where(qe > 0.0, np.maximum(0.0, 100.0 * (qe - df) / qe), 0.0)
            h2 = np.where(df > 0.0, qe / df, 1.0)
        else:
            s2 = df / fe.trp
            i2 = 100.0 * tau2 / (s2 + tau2)
            h2 = tau2 / s2 + 1.0
    rss = _moments(s).rss
    return _Refits(n=n, tau2=tau2, mu=mu, a1=s[0, 0], rss=rss, qe=qe, i2=i2, h2=h2)


def _s2w(refits: _Refits, test: str) -> FloatArray:
    """The Knapp-Hartung factor of each refit (metafor's rule), 1 under the z test."""
    if test != "knha":
        return np.ones(refits.n.size)
    return np.asarray(knha_factor(refits.rss, refits.n - 1.0), dtype=np.float64)


def _tests(
    estimate: FloatArray, refits: _Refits, test: str, level: float
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray | None]:
    """SE, statistic, p-value and CI of each refit, as :func:`metaan.fit` computes them."""
    se = np.sqrt(_s2w(refits, test) / refits.a1)
    alpha = 1.0 - level / 100.0
    df: FloatArray | None = None
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = estimate / se
        if test == "knha":
            df = refits.n - 1.0
            pval = 2.0 * t_sf(np.abs(stat), df)
            crit = t_isf(alpha / 2.0, df)
        else:
            pval = 2.0 * norm_sf(np.abs(stat))
            crit = np.full(estimate.size, norm_isf(alpha / 2.0))
    return se, stat, pval, estimate - crit * se, estimate + crit * se, df


def _qe_p(qe: FloatArray, n: FloatArray) -> FloatArray:
    df = n - 1.0
    with np.errstate(invalid="ignore"):
        return np.where(df >= 1.0, chi2_sf(qe, np.maximum(df, 1.0)), 1.0)


def _frame(labels: Sequence[str], rows: Sequence[int | None], **columns: Any) -> pd.DataFrame:
    data: dict[str, Any] = {"study": list(labels), "row": pd.array(list(rows), dtype="Int64")}
    data.update(columns)
    return pd.DataFrame(data)


def _titled(title: str, settings: str, frame: pd.DataFrame) -> str:
    return f"{title}; {settings}:\n{text_table(frame)}"


def _need_studies(res: MetaResult, what: str) -> None:
    minimum = 2 if res.method == "EE" else 3
    if res.k < minimum:
        raise NotEstimableError(
            f"{what} needs at least {minimum} studies for method {res.method}; "
            f"{res.k} {'has' if res.k == 1 else 'have'} an effect size"
        )


# --------------------------------------------------------------------------------------
# Leave-one-out
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class LeaveOneOut(Result):
    """The model refitted with each study left out in turn.

    Element i of every array is the fit without study i (``labels[i]``).

    Attributes
    ----------
    method, test, level, k
        The settings of the full fit and its number of studies.
    labels, rows
        The study left out, and its source row.
    estimate, se, stat, pval, ci_lb, ci_ub
        The pooled estimate without the study, its SE, z (or t with ``df``
        degrees of freedom under Knapp-Hartung) test and confidence interval.
    df
        k - 2 under ``test="knha"``, else None.
    tau2, I2, H2
        Heterogeneity without the study (I2 in percent).
    QE, QEp
        Cochran's Q without the study (k - 2 degrees of freedom) and its p-value.
    """

    method: str
    test: str
    level: float
    k: int
    labels: tuple[str, ...]
    rows: tuple[int | None, ...]
    estimate: FloatArray
    se: FloatArray
    stat: FloatArray
    df: int | None
    pval: FloatArray
    ci_lb: FloatArray
    ci_ub: FloatArray
    tau2: FloatArray
    I2: FloatArray
    H2: FloatArray
    QE: FloatArray
    QEp: FloatArray

    def _short(self) -> str:
        return (
            f"{self.method} k={self.k} estimate from {np.min(self.estimate):.4g} "
            f"to {np.max(self.estimate):.4g}"
        )

    def summary(self) -> str:
        """The refits as a table, one row per omitted study."""
        return _titled(
            "Leave-one-out (each row: the fit without that study)",
            f"{self.method}, test {self.test}, {self.level:g}% intervals",
            self.to_frame(),
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per omitted study."""
        return _frame(
            self.labels,
            self.rows,
            estimate=self.estimate,
            se=self.se,
            stat=self.stat,
            pval=self.pval,
            ci_lb=self.ci_lb,
            ci_ub=self.ci_ub,
            tau2=self.tau2,
            I2=self.I2,
            H2=self.H2,
            QE=self.QE,
            QEp=self.QEp,
        )

    def to_dict(self) -> dict[str, Any]:
        """The settings and one record per omitted study, JSON-ready."""
        return {
            "analysis": "leave_one_out",
            "method": self.method,
            "test": self.test,
            "level": self.level,
            "k": self.k,
            "df": self.df,
            "QE_df": self.k - 2,
            "studies": jsonable(self.to_frame()),
        }


@dataclass(frozen=True)
class _Deletions:
    res: MetaResult
    refits: _Refits
    estimate: FloatArray
    se: FloatArray
    stat: FloatArray
    pval: FloatArray
    ci_lb: FloatArray
    ci_ub: FloatArray
    df: FloatArray | None


def _deletions(res: MetaResult) -> _Deletions:
    centre = 0.0 if res.tau2 is None or res.method == "EE" else float(res.tau2)
    y = res.yi - res.estimate  # centred at the full estimate: the deletions stay near 0
    idx = np.arange(res.k)
    refits = _refits(y, res.vi, res.method, "drop", idx, centre)
    estimate = refits.mu + res.estimate
    se, stat, pval, lb, ub, df = _tests(estimate, refits, res.test, res.level)
    return _Deletions(res, refits, estimate, se, stat, pval, lb, ub, df)


def leave_one_out(
    data: MetaResult | pd.DataFrame | None = None,
    *,
    yi: Column = "yi",
    vi: Column = "vi",
    sei: Column | None = None,
    labels: Column | None = None,
    method: str | None = None,
    test: str | None = None,
    level: float | None = None,
) -> LeaveOneOut:
    """Refit the model with each study left out in turn (metafor's ``leave1out``).

    All k refits are computed together in O(k) time per step of the tau^2
    iteration (see the module notes); each equals a full refit of the k - 1
    studies with the same method, test and level.

    Parameters
    ----------
    data, yi, vi, sei, labels
        A fitted :class:`~metaan.results.MetaResult`, or the studies as for
        :func:`metaan.fit` (a table and its columns, or the values).
    method, test, level
        Override the fit's settings (or set them for a table; default REML, z, 95).

    Returns
    -------
    LeaveOneOut

    Raises
    ------
    NotEstimableError
        Too few studies (3 for a random-effects model, 2 for a common effect).
    """
    res = as_fit(data, yi=yi, vi=vi, sei=sei, labels=labels, method=method, test=test, level=level)
    _need_studies(res, "leave-one-out")
    d = _deletions(res)
    return LeaveOneOut(
        method=res.method,
        test=res.test,
        level=res.level,
        k=res.k,
        labels=tuple(res.labels),
        rows=tuple(res.rows),
        estimate=d.estimate,
        se=d.se,
        stat=d.stat,
        df=None if d.df is None else res.k - 2,
        pval=d.pval,
        ci_lb=d.ci_lb,
        ci_ub=d.ci_ub,
        tau2=d.refits.tau2,
        I2=d.refits.i2,
        H2=d.refits.h2,
        QE=d.refits.qe,
        QEp=_qe_p(d.refits.qe, d.refits.n),
    )


# --------------------------------------------------------------------------------------
# Influence diagnostics and Baujat coordinates
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class Influence(Result):
    """Case-deletion diagnostics of each study (Viechtbauer & Cheung 2010).

    Attributes
    ----------
    method, test, k
        The full fit's settings and number of studies.
    labels, rows
        The studies and their source rows.
    rstudent
        Studentised deleted residual: (y_i - mu_(-i)) / sqrt(v_i + var(mu_(-i)) + tau2_(-i)).
    dffits
        Change in the estimate when study i is deleted, in units of its SE.
    cook_d
        Cook's distance: the squared change in the estimate over its variance.
    cov_r
        Covariance ratio: the variance of the estimate without study i over its
        variance with it.
    tau2_del, QE_del
        tau^2 and Cochran's Q with study i deleted.
    hat
        Leverage (hat value) of study i: its share of the total weight.
    weight
        Weight of study i in percent.
    dfbetas
        Change in the estimate, scaled by its SE with the deleted-study tau^2.
    influential
        metafor's flag: |dffits| > 3 sqrt(1/(k-1)), Cook's distance above the
        median of chi^2(1), hat > 3/k or |dfbetas| > 1.
    """

    method: str
    test: str
    k: int
    labels: tuple[str, ...]
    rows: tuple[int | None, ...]
    rstudent: FloatArray
    dffits: FloatArray
    cook_d: FloatArray
    cov_r: FloatArray
    tau2_del: FloatArray
    QE_del: FloatArray
    hat: FloatArray
    weight: FloatArray
    dfbetas: FloatArray
    influential: BoolArray

    def _short(self) -> str:
        return f"{self.method} k={self.k} influential={int(np.sum(self.influential))}"

    def summary(self) -> str:
        """The diagnostics as a table, influential studies marked with ``*``."""
        frame = self.to_frame().drop(columns=["influential"])
        frame.insert(0, " ", ["*" if flag else "" for flag in self.influential])
        return _titled(
            "Influence diagnostics (Viechtbauer & Cheung 2010; * = influential)",
            f"{self.method}, test {self.test}",
            frame,
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per study."""
        return _frame(
            self.labels,
            self.rows,
            rstudent=self.rstudent,
            dffits=self.dffits,
            cook_d=self.cook_d,
            cov_r=self.cov_r,
            tau2_del=self.tau2_del,
            QE_del=self.QE_del,
            hat=self.hat,
            weight=self.weight,
            dfbetas=self.dfbetas,
            influential=self.influential,
        )

    def to_dict(self) -> dict[str, Any]:
        """The settings and one record per study, JSON-ready."""
        return {
            "analysis": "influence",
            "method": self.method,
            "test": self.test,
            "k": self.k,
            "studies": jsonable(self.to_frame()),
        }


def influence(
    data: MetaResult | pd.DataFrame | None = None,
    *,
    yi: Column = "yi",
    vi: Column = "vi",
    sei: Column | None = None,
    labels: Column | None = None,
    method: str | None = None,
    test: str | None = None,
    level: float | None = None,
) -> Influence:
    """Case-deletion influence diagnostics, as metafor's ``influence`` computes them.

    Every diagnostic follows from the k leave-one-out refits (computed together,
    see :func:`leave_one_out`) and the full fit: studentised deleted residuals,
    DFFITS, Cook's distance, covariance ratio, DFBETAS, tau^2 and Q with each
    study deleted, hat values and weights (Viechtbauer & Cheung 2010).

    Parameters
    ----------
    data, yi, vi, sei, labels
        A fitted :class:`~metaan.results.MetaResult`, or the studies as for
        :func:`metaan.fit` (a table and its columns, or the values).
    method, test, level
        Override the fit's settings (or set them for a table).

    Returns
    -------
    Influence
    """
    res = as_fit(data, yi=yi, vi=vi, sei=sei, labels=labels, method=method, test=test, level=level)
    _need_studies(res, "influence diagnostics")
    d = _deletions(res)
    tau2 = 0.0 if res.tau2 is None or res.method == "EE" else float(res.tau2)
    v = res.vi
    w = 1.0 / (v + tau2)
    hat = w / float(w.sum())
    vb_full = res.se * res.se
    change = -d.refits.mu  # full estimate minus the deleted-study estimate
    vb_del = d.se * d.se
    s2w = _s2w(d.refits, res.test)
    tau2_del = d.refits.tau2
    # metafor 3.8's influence(): the Knapp-Hartung factor of the deletion fit
    # scales v_i + tau^2_(-i) too, which makes rstudent the t statistic of a
    # mean-shift outlier model under test="knha".
    resid = res.yi - d.estimate
    with np.errstate(divide="ignore", invalid="ignore"):
        rstudent = resid / np.sqrt(s2w * (v + tau2_del) + vb_del)
    dffits = change / np.sqrt(s2w * hat * (tau2_del + v))
    all_weights = d.refits.a1 + 1.0 / (v + tau2_del)  # every study at the deleted tau^2
    dfbetas = change / np.sqrt(s2w / all_weights)
    cook_d = change * change / vb_full
    k = res.k
    influential = (
        (np.abs(dffits) > 3.0 * math.sqrt(1.0 / (k - 1)))
        | (chi2_cdf(cook_d, 1.0) > 0.5)
        | (hat > 3.0 / k)
        | (np.abs(dfbetas) > 1.0)
    )
    return Influence(
        method=res.method,
        test=res.test,
        k=k,
        labels=tuple(res.labels),
        rows=tuple(res.rows),
        rstudent=rstudent,
        dffits=dffits,
        cook_d=cook_d,
        cov_r=vb_del / vb_full,
        tau2_del=tau2_del,
        QE_del=d.refits.qe,
        hat=hat,
        weight=res.weights.copy(),
        dfbetas=dfbetas,
        influential=influential,
    )


@dataclass(frozen=True, eq=False, repr=False)
class Baujat(Result):
    """Baujat plot coordinates of each study (Baujat et al. 2002).

    Attributes
    ----------
    method, k
        The fit's method and number of studies.
    labels, rows
        The studies and their source rows.
    x
        Contribution to the overall heterogeneity: the squared Pearson residual
        (y_i - mu)^2 / (v_i + tau^2) (with tau^2 = 0 for a common-effect model
        this is the study's term of Cochran's Q).
    y
        Influence on the overall result: (mu_(-i) - mu)^2 / var(mu_(-i)).
    """

    method: str
    k: int
    labels: tuple[str, ...]
    rows: tuple[int | None, ...]
    x: FloatArray
    y: FloatArray

    def _short(self) -> str:
        top = int(np.argmax(self.y))
        return f"{self.method} k={self.k} most influential: {self.labels[top]}"

    def summary(self) -> str:
        """The coordinates as a table, one row per study."""
        return _titled(
            "Baujat coordinates (x: contribution to heterogeneity; y: influence on the estimate)",
            self.method,
            self.to_frame(),
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per study."""
        return _frame(self.labels, self.rows, x=self.x, y=self.y)

    def to_dict(self) -> dict[str, Any]:
        """The settings and one record per study, JSON-ready."""
        return {
            "analysis": "baujat",
            "method": self.method,
            "k": self.k,
            "studies": jsonable(self.to_frame()),
        }


def baujat(
    data: MetaResult | pd.DataFrame | None = None,
    *,
    yi: Column = "yi",
    vi: Column = "vi",
    sei: Column | None = None,
    labels: Column | None = None,
    method: str | None = None,
    test: str | None = None,
    level: float | None = None,
) -> Baujat:
    """Baujat et al.'s (2002) coordinates, as metafor's ``baujat`` computes them:
    each study's squared Pearson residual against the squared change of the
    estimate when it is left out, over the variance of the leave-one-out estimate.

    Parameters
    ----------
    data, yi, vi, sei, labels
        A fitted :class:`~metaan.results.MetaResult`, or the studies as for
        :func:`metaan.fit` (a table and its columns, or the values).
    method, test, level
        Override the fit's settings (or set them for a table).
    """
    res = as_fit(data, yi=yi, vi=vi, sei=sei, labels=labels, method=method, test=test, level=level)
    _need_studies(res, "the Baujat plot")
    d = _deletions(res)
    tau2 = 0.0 if res.tau2 is None or res.method == "EE" else float(res.tau2)
    resid = res.yi - res.estimate
    change = d.refits.mu
    return Baujat(
        method=res.method,
        k=res.k,
        labels=tuple(res.labels),
        rows=tuple(res.rows),
        x=resid * resid / (res.vi + tau2),
        y=change * change / (d.se * d.se),
    )


# --------------------------------------------------------------------------------------
# Cumulative meta-analysis
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class Cumulative(Result):
    """Cumulative meta-analysis: the model refitted as the studies are added one
    at a time, in ``order``.

    Element i of every array is the fit to the first i + 1 studies of the order.
    The first is the single study itself (estimate y, SE sqrt(v), tau^2 = 0,
    z test), as metafor reports it.

    Attributes
    ----------
    method, test, level
        The settings of the fits.
    k
        The number of studies (the last fit is to all of them).
    order
        Positions of the studies in the fit, in the cumulative order.
    order_by
        The column the studies were sorted by, or None (data order, or sort keys
        given as values).
    labels, rows
        The study added at each step, and its source row.
    estimate, se, stat, pval, ci_lb, ci_ub
        Pooled estimate, SE, test and confidence interval of each fit.
    df
        Under Knapp-Hartung, the degrees of freedom of each fit's t test (None
        for the first fit, which uses z); else None.
    tau2, I2, H2, QE, QEp
        Heterogeneity of each fit.
    """

    method: str
    test: str
    level: float
    k: int
    order: IntArray
    labels: tuple[str, ...]
    rows: tuple[int | None, ...]
    estimate: FloatArray
    se: FloatArray
    stat: FloatArray
    df: tuple[int | None, ...] | None
    pval: FloatArray
    ci_lb: FloatArray
    ci_ub: FloatArray
    tau2: FloatArray
    I2: FloatArray
    H2: FloatArray
    QE: FloatArray
    QEp: FloatArray
    order_by: str | None = None

    def _short(self) -> str:
        return (
            f"{self.method} k={self.k} final est={self.estimate[-1]:.4g} "
            f"[{self.ci_lb[-1]:.4g}, {self.ci_ub[-1]:.4g}]"
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per step: the study added, the number of studies so far and the fit."""
        columns: dict[str, Any] = {
            "k": np.arange(1, self.k + 1, dtype=np.int64),
            "estimate": self.estimate,
            "se": self.se,
            "stat": self.stat,
        }
        if self.df is not None:
            columns["df"] = pd.array(list(self.df), dtype="Int64")
        columns.update(
            pval=self.pval,
            ci_lb=self.ci_lb,
            ci_ub=self.ci_ub,
            tau2=self.tau2,
            I2=self.I2,
            H2=self.H2,
            QE=self.QE,
            QEp=self.QEp,
        )
        return _frame(self.labels, self.rows, **columns)

    def to_dict(self) -> dict[str, Any]:
        """The settings and one record per step, JSON-ready."""
        return {
            "analysis": "cumulative",
            "method": self.method,
            "test": self.test,
            "level": self.level,
            "k": self.k,
            "order": json_list(self.order),
            "order_by": self.order_by,
            "studies": jsonable(self.to_frame()),
        }

    def summary(self) -> str:
        """The fits as a table, one row per study added."""
        if self.order_by is not None:
            how = f"ordered by {self.order_by}"
        else:
            how = (
                "in data order"
                if np.array_equal(self.order, np.arange(self.k))
                else "in the order given"
            )
        return _titled(
            f"Cumulative meta-analysis (each row: the fit to the studies so far), {how}",
            f"{self.method}, test {self.test}, {self.level:g}% intervals",
            self.to_frame(),
        )


def _fitted_positions(table: pd.DataFrame, res: MetaResult) -> list[int]:
    """Positions in ``table`` of the studies of its fit ``res``, found by their rows."""
    where = {int(r): i for i, r in enumerate(spreadsheet_rows(table))}
    if any(r is None or int(r) not in where for r in res.rows):  # pragma: no cover
        raise InputError(
            "the studies of the fit do not match the table", fix="pass the table to order by"
        )
    return [where[int(r)] for r in res.rows if r is not None]


def _order_keys(
    table: pd.DataFrame | None, res: MetaResult, order: Column, source: str | None
) -> pd.Series:
    """The sort key of each study in ``res``, from a column of the table or values."""
    column = order if isinstance(order, str) else None
    if isinstance(order, str):
        n = len(table) if table is not None else res.k
        values = list(column_values(table, order, "order", n, numeric=False, source=source)[0])
    else:
        values = list(np.asarray(order, dtype=object).ravel())
    if table is not None and len(values) == len(table):  # one key per row of the table
        values = [values[i] for i in _fitted_positions(table, res)]
    if len(values) != res.k:
        raise InputError(
            f"order has {len(values)} values but the analysis has {res.k} studies",
            fix="give one sort key per study in the analysis",
        )
    keys = pd.Series(values, dtype=object)
    missing = keys.isna().to_numpy()
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise InputError(
            "the sort key is missing for a study in the analysis",
            row=res.rows[i],
            study=res.labels[i],
            column=column,
            fix="fill in the value or order by another column",
        )
    numeric = pd.to_numeric(keys, errors="coerce")
    if not numeric.isna().any():
        return numeric.astype(float)
    return keys.astype(str)


def cumulative(
    data: MetaResult | pd.DataFrame | None = None,
    *,
    yi: Column = "yi",
    vi: Column = "vi",
    sei: Column | None = None,
    labels: Column | None = None,
    order: Column | None = None,
    method: str | None = None,
    test: str | None = None,
    level: float | None = None,
) -> Cumulative:
    """Cumulative meta-analysis (Lau et al. 1992), as metafor's ``cumul`` computes it.

    The studies are sorted by ``order`` (a stable sort, so ties keep the data
    order) and the model is refitted to the first 1, 2, ..., k of them. All k
    fits are computed together from cumulative sums (see the module notes).

    Parameters
    ----------
    data, yi, vi, sei, labels
        A fitted :class:`~metaan.results.MetaResult`, or the studies as for
        :func:`metaan.fit` (a table and its columns, or the values).
    order
        ``None``: the data order. A column of the table (e.g. ``"year"``), or
        one sort key per study of the analysis (numbers, or text sorted as
        text); with a table, also one key per table row.
    method, test, level
        Override the fit's settings (or set them for a table).

    Returns
    -------
    Cumulative

    Raises
    ------
    InputError
        An unknown column, a column named with a fitted result (there is no
        table to read it from), a missing sort key, or keys of the wrong length.
    """
    res = as_fit(data, yi=yi, vi=vi, sei=sei, labels=labels, method=method, test=test, level=level)
    table = data if isinstance(data, pd.DataFrame) else None
    if isinstance(order, str) and isinstance(data, MetaResult):
        raise InputError(
            f"cannot order by the column {order!r} of a fitted result",
            fix="pass the effect-size table, or an array with one sort key per study",
        )
    if order is None:
        perm = np.arange(res.k, dtype=np.int64)
    else:
        keys = _order_keys(table, res, order, None)
        perm = np.asarray(keys.argsort(kind="stable").to_numpy(), dtype=np.int64)
    return _cumulative_fits(res, perm, order if isinstance(order, str) else None)


def _cumulative_fits(res: MetaResult, perm: IntArray, order_by: str | None) -> Cumulative:
    """The fits to the leading 1, ..., k studies of ``res`` in the order ``perm``."""
    k = res.k
    y, v = res.yi[perm], res.vi[perm]
    # The first study alone, as metafor reports it (z test whatever the test).
    crit = float(norm_isf((1.0 - res.level / 100.0) / 2.0))
    first_se = math.sqrt(v[0])
    first = (y[0], first_se, y[0] / first_se, 2.0 * float(norm_sf(abs(y[0] / first_se))))
    estimate, se, stat, pval = (np.array([value]) for value in first)
    lb, ub = estimate - crit * se, estimate + crit * se
    tau2, i2, h2, qe, qep = np.zeros(1), np.zeros(1), np.ones(1), np.zeros(1), np.ones(1)
    dfs: list[int | None] = [None]
    if k > 1:
        centre = 0.0 if res.tau2 is None or res.method == "EE" else float(res.tau2)
        refits = _refits(y - res.estimate, v, res.method, "prefix", np.arange(1, k), centre)
        est = refits.mu + res.estimate
        s, z, p, low, high, df = _tests(est, refits, res.test, res.level)
        estimate, se, stat, pval = (
            np.concatenate([a, b]) for a, b in ((estimate, est), (se, s), (stat, z), (pval, p))
        )
        lb, ub = np.concatenate([lb, low]), np.concatenate([ub, high])
        tau2, i2 = np.concatenate([tau2, refits.tau2]), np.concatenate([i2, refits.i2])
        h2, qe = np.concatenate([h2, refits.h2]), np.concatenate([qe, refits.qe])
        qep = np.concatenate([qep, _qe_p(refits.qe, refits.n)])
        if df is not None:
            dfs += [int(d) for d in df]
    return Cumulative(
        method=res.method,
        test=res.test,
        level=res.level,
        k=k,
        order=perm,
        labels=tuple(res.labels[i] for i in perm),
        rows=tuple(res.rows[i] for i in perm),
        estimate=estimate,
        se=se,
        stat=stat,
        df=tuple(dfs) if res.test == "knha" else None,
        pval=pval,
        ci_lb=lb,
        ci_ub=ub,
        tau2=tau2,
        I2=i2,
        H2=h2,
        QE=qe,
        QEp=qep,
        order_by=order_by,
    )
