"""Estimators of the between-study variance tau^2, once, for a batch of problems.

A batch holds B problems, each with its effect sizes, sampling variances and,
for a meta-regression, a design matrix shared by the batch (a permutation test
refits one design to many rearrangements of the data). Problems may have
different numbers of studies: the arrays are padded, a padded cell having
weight 0. A single fit is a batch of one.

Every estimator is written once, in terms of the weighted least squares of a
problem at a trial value t of tau^2 (:class:`Moments`): the residual sums
``Y'PY``, ``Y'PPY``, ``Y'PPPY`` and the traces ``tr(P)``, ``tr(PP)`` of the
projection

.. math:: P = W - W X (X^T W X)^{-1} X^T W, \\qquad W = \\mathrm{diag}(1 / (v_i + t)).

They are computed without ever forming a k x k matrix: for diagonal
:math:`D_1, D_2`

.. math::

    \\mathrm{tr}(P D_1) &= \\sum w_i d_{1i} - \\mathrm{tr}(A^{-1} X^T \\mathrm{diag}(w^2 d_1) X)\\\\
    \\mathrm{tr}(P D_1 P D_2) &= \\sum w_i^2 d_{1i} d_{2i}
        - 2\\,\\mathrm{tr}(A^{-1} X^T \\mathrm{diag}(w^3 d_1 d_2) X)
        + \\mathrm{tr}(A^{-1} M_1 A^{-1} M_2),

with :math:`A = X^T W X` and :math:`M_j = X^T \\mathrm{diag}(w^2 d_j) X`, so a fit
costs O(k p^2) time and O(k p) memory. Anything that can produce
:class:`Moments` for its problems (a :class:`Source`) gets all eight estimators:
the padded arrays of :class:`Batch`, and the leave-one-out and cumulative
subsets of :mod:`metaan.sensitivity`, which compute them from running sums.

References
----------
DerSimonian, R., & Laird, N. (1986). Meta-analysis in clinical trials.
*Controlled Clinical Trials*, 7, 177-188.

Hedges, L. V. (1983). A random effects model for effect sizes. *Psychological
Bulletin*, 93, 388-395.

Hunter, J. E., & Schmidt, F. L. (2004). *Methods of meta-analysis* (2nd ed.). Sage.

Sidik, K., & Jonkman, J. N. (2005). Simple heterogeneity variance estimation for
meta-analysis. *Applied Statistics*, 54, 367-384.

Hardy, R. J., & Thompson, S. G. (1996). A likelihood approach to meta-analysis
with random effects. *Statistics in Medicine*, 15, 619-629.

Paule, R. C., & Mandel, J. (1982). Consensus values and weighting factors.
*Journal of Research of the National Bureau of Standards*, 87, 377-385.
Morris, C. N. (1983). Parametric empirical Bayes inference. *JASA*, 78, 47-55.

Viechtbauer, W. (2005). Bias and efficiency of meta-analytic variance
estimators in the random-effects model. *Journal of Educational and Behavioral
Statistics*, 30(3), 261-293.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol, get_args

import numpy as np
import numpy.typing as npt

from metaan.errors import ConvergenceError
from metaan.solver import ROOT_RTOL, solve_decreasing

__all__ = [
    "ROOT_RTOL",
    "TAU2_METHODS",
    "WLS",
    "Batch",
    "Moments",
    "Source",
    "Tau2Estimate",
    "Tau2Method",
    "estimate_tau2",
    "generalised_q",
    "score",
    "tau2_batch",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

Tau2Method = Literal["DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM"]
TAU2_METHODS: tuple[str, ...] = get_args(Tau2Method)
ITERATIVE: frozenset[str] = frozenset({"ML", "REML", "EB", "PM"})


def _f(x: Any) -> FloatArray:
    """``x`` as a float array (numpy's reductions are typed as returning Any)."""
    return np.asarray(x, dtype=np.float64)


def rowsum(a: Any) -> FloatArray:
    """The sum of each row of a (B, K) array: what ``a.sum(axis=1)`` computes,
    without its per-call overhead."""
    return np.asarray(np.add.reduce(a, axis=1), dtype=np.float64)


@dataclass(frozen=True)
class Tau2Estimate:
    """An estimate of tau^2 with its standard error and how it was obtained."""

    tau2: float
    se_tau2: float
    method: str


@dataclass(frozen=True)
class Moments:
    """The weighted least squares of each problem of a batch at its trial tau^2.

    Every field is an array with one value per problem: ``sw = sum w``,
    ``sw2 = sum w^2``, ``rss = Y'PY = sum w e^2`` (the generalised Q),
    ``ypp = Y'PPY``, ``yppp = Y'PPPY``, ``trp = tr(P)``, ``trpp = tr(PP)``.
    """

    sw: FloatArray
    sw2: FloatArray
    rss: FloatArray
    ypp: FloatArray
    yppp: FloatArray
    trp: FloatArray
    trpp: FloatArray


def score(method: str, m: Moments, n: Any, p: int) -> tuple[FloatArray, FloatArray]:
    """The estimating equation of an iterative estimator and its derivative in tau^2.

    Each decreases in tau^2; its root is the estimate (0 when it is not positive
    at 0). ``n`` is the number of studies of each problem, ``p`` of coefficients.

    * REML: ``Y'PPY - tr(P)`` (Viechtbauer 2005);
    * ML: ``Y'PPY - sum w`` (Hardy & Thompson 1996);
    * PM and EB: ``Y'PY - (n - p)``, the generalised Q at its expectation
      (Paule & Mandel 1982; the empirical Bayes estimator of Morris 1983 solves
      the same equation).
    """
    if method == "REML":
        return m.ypp - m.trp, m.trpp - 2.0 * m.yppp
    if method == "ML":
        return m.ypp - m.sw, m.sw2 - 2.0 * m.yppp
    if method in ("PM", "EB"):
        return m.rss - (n - p), -m.ypp
    raise ValueError(f"{method} is not an iterative tau^2 estimator")


class Source(Protocol):
    """Anything that computes :class:`Moments` of a batch of problems."""

    #: Studies in each problem, and coefficients per problem.
    n: FloatArray
    p: int

    def at(self, t: FloatArray, rows: IntArray) -> Moments:
        """The moments of problems ``rows`` at tau^2 values ``t``."""
        ...

    def unweighted(self) -> tuple[FloatArray, FloatArray]:
        """``Y'PY`` and ``tr(PV)`` of the ordinary least squares fit (unit weights)."""
        ...

    def spread(self) -> FloatArray:
        """The variance of the effects with divisor n (Sidik-Jonkman's start)."""
        ...

    def scale(self) -> FloatArray:
        """A positive scale of tau^2: the spread plus the mean sampling variance."""
        ...

    def tolerance(self) -> FloatArray:
        """The absolute tolerance of tau^2: 1e-16 times the smallest sampling variance."""
        ...


class Weighted:
    """Weighted least squares of every problem of a :class:`Batch` with weights ``U``.

    ``U`` is (B, K), 0 in padded cells. For the intercept-only model (``X`` None)
    every p x p matrix is a number per problem.
    """

    def __init__(self, Y: FloatArray, U: FloatArray, X: FloatArray | None) -> None:
        self.U, self.X = U, X
        if X is None:
            self.sw = rowsum(U)
            self.a_inv: FloatArray = 1.0 / self.sw
            self.b: FloatArray = (rowsum(U * Y) * self.a_inv)[:, None]
            self.resid: FloatArray = Y - self.b
        else:
            A = np.einsum("bk,ki,kj->bij", U, X, X)
            self.sw = rowsum(U)
            self.a_inv = np.linalg.inv(A)
            self.b = np.einsum("bij,bj->bi", self.a_inv, (U * Y) @ X)
            self.resid = Y - self.b @ X.T
        self.ue: FloatArray = U * self.resid  # P Y

    def xtdx(self, c: FloatArray) -> FloatArray:
        """``X' diag(c) X`` of every problem: (B,) for an intercept only, else (B, p, p)."""
        if self.X is None:
            return rowsum(c)
        return _f(np.einsum("bk,ki,kj->bij", c, self.X, self.X))

    def tr_ainv(self, m: FloatArray) -> FloatArray:
        """``tr(A^-1 M)`` for symmetric ``M``."""
        if self.X is None:
            return self.a_inv * m
        return _f(np.einsum("bij,bij->b", self.a_inv, m))

    def tr_ainv_pair(self, m1: FloatArray, m2: FloatArray) -> FloatArray:
        """``tr(A^-1 M1 A^-1 M2)``."""
        if self.X is None:
            return self.a_inv * self.a_inv * m1 * m2
        return _f(np.einsum("bij,bji->b", self.a_inv @ m1, self.a_inv @ m2))

    def rss(self) -> FloatArray:
        """``Y'PY = sum w e^2``."""
        return rowsum(self.ue * self.resid)

    def ypp_y(self) -> FloatArray:
        """``Y'PPY = sum w^2 e^2``."""
        return rowsum(self.ue * self.ue)

    def ypp_p_y(self) -> FloatArray:
        """``Y'PPPY``, the derivative term of the likelihood scores."""
        wu = self.U * self.ue
        if self.X is None:
            c = rowsum(wu)
            quad = self.a_inv * c * c
        else:
            cv = wu @ self.X
            quad = np.einsum("bi,bij,bj->b", cv, self.a_inv, cv)
        return rowsum(wu * self.ue) - quad

    def tr_p(self, d: FloatArray | None = None) -> FloatArray:
        """``tr(P D)`` for ``D = diag(d)`` (identity when ``d`` is None)."""
        wd = self.U if d is None else self.U * d
        return rowsum(wd) - self.tr_ainv(self.xtdx(self.U * wd))

    def tr_pp(self, d1: FloatArray | None = None, d2: FloatArray | None = None) -> FloatArray:
        """``tr(P D1 P D2)`` for diagonal ``D1``, ``D2`` (identity when None)."""
        w2 = self.U * self.U
        c1 = w2 if d1 is None else w2 * d1
        c2 = w2 if d2 is None else w2 * d2
        c12 = c1 if d2 is None else c1 * d2
        return (
            rowsum(c12)
            - 2.0 * self.tr_ainv(self.xtdx(self.U * c12))
            + self.tr_ainv_pair(self.xtdx(c1), self.xtdx(c2))
        )

    def moments(self) -> Moments:
        """The :class:`Moments` of these weights."""
        w2 = self.U * self.U
        return Moments(
            sw=self.sw,
            sw2=rowsum(w2),
            rss=self.rss(),
            ypp=self.ypp_y(),
            yppp=self.ypp_p_y(),
            trp=self.tr_p(),
            trpp=self.tr_pp(),
        )


class Batch:
    """B problems in padded (B, K) arrays: the :class:`Source` of ordinary fits.

    Parameters
    ----------
    Y, V
        Effects and sampling variances; a padded cell holds NaN in both (or any
        value in ``Y`` and NaN in ``V``).
    X
        A design shared by every problem (K x p), or None for an intercept only.
        It is conditioned before use: with an intercept column, the other columns
        are centred, and every column is scaled to unit spread. The projection P
        depends only on the column space, so every moment is unchanged, but a
        moderator such as the publication year no longer costs ten digits to
        cancellation. :meth:`coefficients` maps back to the columns of ``X``.
    """

    def __init__(self, Y: FloatArray, V: FloatArray, X: FloatArray | None = None) -> None:
        self.mask = np.isfinite(V)
        self.Y = np.where(self.mask, Y, 0.0)
        self.V = np.where(self.mask, V, 0.0)
        self.Vinf = np.where(self.mask, V, np.inf)
        self.X: FloatArray | None = None
        self.T: FloatArray | None = None
        if X is not None:
            self.X, self.T = _condition(X)
        self.p = 1 if X is None else X.shape[1]
        self.n: FloatArray = rowsum(self.mask).astype(np.float64)

    @property
    def size(self) -> int:
        return int(self.Y.shape[0])

    def weighted(self, t: FloatArray, rows: IntArray | None = None) -> Weighted:
        """The weighted least squares of problems ``rows`` at tau^2 values ``t``."""
        if rows is None:
            return Weighted(self.Y, 1.0 / (self.Vinf + t[:, None]), self.X)
        return Weighted(self.Y[rows], 1.0 / (self.Vinf[rows] + t[:, None]), self.X)

    def at(self, t: FloatArray, rows: IntArray) -> Moments:
        return self.weighted(t, rows).moments()

    def coefficients(self, fit: Weighted) -> tuple[FloatArray, FloatArray]:
        """The coefficients and ``(X'WX)^-1`` of a fit in the columns of the original X."""
        if self.T is None:
            return fit.b, fit.a_inv[:, None, None]
        b = fit.b @ self.T.T
        return b, _f(np.einsum("ij,bjk,lk->bil", self.T, fit.a_inv, self.T))

    def unweighted(self) -> tuple[FloatArray, FloatArray]:
        ols = Weighted(self.Y, self.mask.astype(np.float64), self.X)
        return ols.rss(), ols.tr_p(self.V)

    def spread(self) -> FloatArray:
        mean = rowsum(self.Y) / self.n
        d = np.where(self.mask, self.Y - mean[:, None], 0.0)
        return rowsum(d * d) / self.n

    def scale(self) -> FloatArray:
        return self.spread() + rowsum(self.V) / self.n + 1e-300

    def tolerance(self) -> FloatArray:
        return _f(np.maximum(np.min(self.Vinf, axis=1), 1e-300) * 1e-16)


def _condition(X: FloatArray) -> tuple[FloatArray, FloatArray]:
    """A well-conditioned basis ``Xc = X T`` of the column space of ``X``, and ``T``."""
    p = X.shape[1]
    ones = np.flatnonzero(np.all(X == 1.0, axis=0))
    centre = np.zeros(p)
    if ones.size:
        centre = X.mean(axis=0)
        centre[ones] = 0.0
    spread = np.sqrt(np.mean((X - centre) ** 2, axis=0))
    spread = np.where(spread > 0.0, spread, 1.0)
    T = np.diag(1.0 / spread)
    if ones.size:
        T[ones[0], :] = -centre / spread
        T[ones[0], ones[0]] = 1.0 / spread[ones[0]]
    return (X - centre) / spread, T


def standardise(
    Y: FloatArray, V: FloatArray, mask: npt.NDArray[np.bool_], *, centre: bool = True
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Centre and scale each problem: ``((Y - c) / s, V / s^2, c, s)``.

    ``c`` is the common-effect estimate (weights ``1/v`` scaled by the smallest
    variance, so they cannot overflow), or 0 when ``centre`` is False (a model
    whose design has no intercept is only scaled); ``s`` is the larger of the
    largest absolute deviation from ``c`` and the largest standard error.
    Padded cells (``mask`` False) are NaN in the results.
    """
    Vm = np.where(mask, V, np.inf)
    if centre:
        vmin = np.min(Vm, axis=1)
        w = np.where(mask, vmin[:, None] / Vm, 0.0)
        c = rowsum(w * np.where(mask, Y, 0.0)) / rowsum(w)
    else:
        c = np.zeros(Y.shape[0])
    dev = np.where(mask, np.abs(Y - c[:, None]), 0.0)
    s = np.maximum(np.max(dev, axis=1), np.sqrt(np.max(np.where(mask, V, 0.0), axis=1)))
    s = np.where(s > 0.0, s, 1.0)
    Ys = np.where(mask, (Y - c[:, None]) / s[:, None], np.nan)
    Vs = np.where(mask, V / (s * s)[:, None], np.nan)
    return Ys, Vs, c, s


def _iterative(source: Source, method: str, start: FloatArray | None = None) -> FloatArray:
    """The root of ``method``'s estimating equation for every problem of ``source``."""
    n, p = source.n, source.p

    def f(t: FloatArray, rows: IntArray) -> tuple[FloatArray, FloatArray]:
        return score(method, source.at(t, rows), n[rows], p)

    tau2 = solve_decreasing(f, 0.0, source.scale(), start=start, xtol=source.tolerance())
    if np.isnan(tau2).any():
        raise ConvergenceError(f"{method}: the estimating equation has no root for these data")
    return tau2


def _closed_form(source: Source, method: str) -> FloatArray:
    """The method-of-moments estimators DL, HE, HS and SJ, truncated at 0."""
    n, p = source.n, source.p
    rows = np.arange(n.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "HE":
            rss, tr_pv = source.unweighted()
            return np.maximum(0.0, (rss - tr_pv) / (n - p))
        if method == "SJ":
            tau2_0 = source.spread()
            fit0 = source.at(tau2_0, rows)
            return np.where(tau2_0 > 0.0, np.maximum(0.0, tau2_0 * fit0.rss / (n - p)), 0.0)
        fe = source.at(np.zeros(n.size), rows)
        if method == "DL":
            return np.maximum(0.0, (fe.rss - (n - p)) / fe.trp)
        if method == "HS":
            return np.maximum(0.0, (fe.rss - n) / fe.sw)
    raise ValueError(f"unknown tau^2 method {method!r}")


def tau2_batch(source: Source, method: str, start: FloatArray | None = None) -> FloatArray:
    """tau^2 of every problem of a batch by ``method`` (never negative).

    ``start`` (iterative estimators only) is where the solver begins, e.g. the
    DerSimonian-Laird estimate; the bracket keeps the search safe from any start.
    """
    if method in ITERATIVE:
        return _iterative(source, method, start)
    return _closed_form(source, method)


def se_tau2_batch(batch: Batch, method: str, tau2: FloatArray) -> FloatArray:
    """The standard error of each tau^2 as metafor computes it (Viechtbauer 2005)."""
    n, p, V = batch.n, batch.p, batch.V
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "ML":
            w = batch.weighted(tau2).U
            return np.sqrt(2.0 / rowsum(w * w))
        if method == "REML":
            return np.sqrt(2.0 / batch.weighted(tau2).tr_pp())
        if method in ("DL", "HS"):
            fe = batch.weighted(np.zeros(n.size))
            tr_p = fe.tr_p()
            denom = tr_p if method == "DL" else fe.sw
            var = 2.0 * (n - p) + 4.0 * tau2 * tr_p + 2.0 * tau2**2 * fe.tr_pp()
            return np.sqrt(var / denom**2)
        if method == "HE":
            ols = Weighted(batch.Y, batch.mask.astype(np.float64), batch.X)
            var = 2.0 * ols.tr_pp(V, V) + 4.0 * tau2 * ols.tr_p(V) + 2.0 * tau2**2 * (n - p)
            return np.sqrt(var / (n - p) ** 2)
        # SJ and PM share one form, at the start value (SJ) or at the estimate (PM).
        at = batch.spread() if method == "SJ" else tau2
        fit = batch.weighted(at)
        quad = 2.0 * fit.tr_pp(V, V) + 4.0 * tau2 * fit.tr_pp(V, None) + 2.0 * tau2**2 * fit.tr_pp()
        if method == "SJ":
            return np.where(at > 0.0, np.sqrt(at**2 / (n - p) ** 2 * quad), 0.0)
        return np.sqrt((n / (n - p)) ** 2 / fit.sw**2 * quad)


def estimate_tau2(
    yi: FloatArray, vi: FloatArray, method: str, X: FloatArray | None = None
) -> Tau2Estimate:
    """Estimate the between-study variance tau^2 of one problem.

    Parameters
    ----------
    yi, vi
        Effect sizes and sampling variances (1-d float arrays, vi > 0).
    method
        One of ``DL`` (DerSimonian & Laird 1986), ``HE`` (Hedges 1983), ``HS``
        (Hunter & Schmidt 2004), ``SJ`` (Sidik & Jonkman 2005), ``ML``, ``REML``
        (Viechtbauer 2005), ``EB`` (Morris 1983) or ``PM`` (Paule & Mandel 1982).
    X
        Design matrix (k x p) for a meta-regression; ``None`` for an intercept only.

    Returns
    -------
    Tau2Estimate
        tau^2 (never negative) and its standard error as metafor computes it.
    """
    if method not in TAU2_METHODS:
        raise ValueError(f"unknown tau^2 method {method!r}")
    # Centred (when the model has an intercept) and scaled, as the engine fits.
    centre = X is None or bool(np.any(np.all(X == 1.0, axis=0)))
    mask = np.ones((1, yi.size), dtype=bool)
    Ys, Vs, _, s = standardise(yi[None, :], vi[None, :], mask, centre=centre)
    batch = Batch(Ys, Vs, X)
    tau2 = tau2_batch(batch, method)
    se = se_tau2_batch(batch, method, tau2)
    s2 = float(s[0]) ** 2
    return Tau2Estimate(tau2=float(tau2[0]) * s2, se_tau2=float(se[0]) * s2, method=method)


class WLS:
    """Weighted least squares of one problem: a batch of one of :class:`Weighted`.

    ``X=None`` is the intercept-only model. ``b`` holds the coefficients and
    ``a_inv`` the inverse of ``X'WX`` (p x p, or a number for an intercept only).
    """

    def __init__(self, y: FloatArray, w: FloatArray, X: FloatArray | None) -> None:
        Xc, T = (None, None) if X is None else _condition(X)
        self._fit = Weighted(y[None, :], w[None, :], Xc)
        self.w, self.X = w, X
        self.resid: FloatArray = self._fit.resid[0]
        if T is None:
            self.b: FloatArray = self._fit.b[0]
            self.a_inv: FloatArray | float = float(self._fit.a_inv[0])
        else:
            self.b = T @ self._fit.b[0]
            self.a_inv = T @ self._fit.a_inv[0] @ T.T

    def rss(self) -> float:
        return float(self._fit.rss()[0])

    def ypp_y(self) -> float:
        return float(self._fit.ypp_y()[0])

    def ypp_p_y(self) -> float:
        return float(self._fit.ypp_p_y()[0])

    def tr_p(self, d: FloatArray | None = None) -> float:
        return float(self._fit.tr_p(None if d is None else d[None, :])[0])

    def tr_pp(self, d1: FloatArray | None = None, d2: FloatArray | None = None) -> float:
        e1 = None if d1 is None else d1[None, :]
        e2 = None if d2 is None else d2[None, :]
        return float(self._fit.tr_pp(e1, e2)[0])


def generalised_q(tau2: float, yi: FloatArray, vi: FloatArray, X: FloatArray | None) -> float:
    """The generalised Q statistic ``sum w_i (y_i - x_i b)^2`` with ``w_i = 1/(v_i + tau2)``.

    It decreases in tau2; at tau2 = 0 it is Cochran's Q (QE).
    """
    return WLS(yi, 1.0 / (vi + tau2), X).rss()
