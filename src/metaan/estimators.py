"""Estimators of the between-study variance tau^2, as pure numpy functions.

Every function takes the effect sizes ``yi``, their sampling variances ``vi``
and an optional design matrix ``X`` (``None`` means an intercept only) and
returns the estimate and its standard error, computed without ever forming a
k x k matrix: the traces that metafor takes of ``P``, ``PV`` and their products
are expanded into sums over studies and p x p matrices (p = number of model
coefficients), so a fit costs O(k p^2) time and O(k p) memory.

The projection used throughout is

.. math:: P = W - W X (X^T W X)^{-1} X^T W, \\qquad W = \\mathrm{diag}(w_i),

and for diagonal matrices :math:`D_1, D_2`

.. math::

    \\mathrm{tr}(P D_1) &= \\sum w_i d_{1i} - \\mathrm{tr}(A^{-1} X^T \\mathrm{diag}(w^2 d_1) X)\\\\
    \\mathrm{tr}(P D_1 P D_2) &= \\sum w_i^2 d_{1i} d_{2i}
        - 2\\,\\mathrm{tr}(A^{-1} X^T \\mathrm{diag}(w^3 d_1 d_2) X)
        + \\mathrm{tr}(A^{-1} M_1 A^{-1} M_2),

with :math:`A = X^T W X` and :math:`M_j = X^T \\mathrm{diag}(w^2 d_j) X`.

References
----------
Viechtbauer, W. (2005). Bias and efficiency of meta-analytic variance
estimators in the random-effects model. *Journal of Educational and Behavioral
Statistics*, 30(3), 261-293.

Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor
package. *Journal of Statistical Software*, 36(3), 1-48.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast, get_args

import numpy as np
import numpy.typing as npt

from metaan.errors import ConvergenceError

__all__ = [
    "TAU2_METHODS",
    "WLS",
    "Tau2Estimate",
    "Tau2Method",
    "estimate_tau2",
    "generalised_q",
    "generalised_q_and_slope",
    "solve_decreasing",
]

FloatArray = npt.NDArray[np.float64]

#: The sum of a 1-d array: what ``ndarray.sum`` computes, without its per-call
#: overhead, which is most of the cost of a sum of ten numbers.
_total = np.add.reduce

Tau2Method = Literal["DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM"]
TAU2_METHODS: tuple[str, ...] = get_args(Tau2Method)

#: Relative convergence of every iterative estimator (tau^2 and CI bounds).
#: The issue asks for 1e-12; the root finder stops well inside that.
ROOT_RTOL = 1e-14


@dataclass(frozen=True)
class Tau2Estimate:
    """An estimate of tau^2 with its standard error and how it was obtained."""

    tau2: float
    se_tau2: float
    method: str


class WLS:
    """Weighted least squares of ``y`` on ``X`` with weights ``w``, with the traces
    of the projection ``P`` needed by the tau^2 estimators.

    ``X=None`` is the intercept-only model, where every p x p matrix is a scalar.
    """

    __slots__ = ("X", "a_inv", "b", "resid", "w", "y")

    def __init__(self, y: FloatArray, w: FloatArray, X: FloatArray | None) -> None:
        self.y = y
        self.w = w
        self.X = X
        if X is None:
            sw = float(_total(w))
            self.a_inv: FloatArray | float = 1.0 / sw
            mu = float(np.dot(w, y)) / sw
            self.b: FloatArray = np.array([mu])
            self.resid: FloatArray = y - mu
        else:
            A = X.T @ (w[:, None] * X)
            a_inv: FloatArray = np.linalg.inv(A).astype(np.float64)
            self.a_inv = a_inv
            self.b = a_inv @ (X.T @ (w * y))
            self.resid = y - X @ self.b

    def xtdx(self, c: FloatArray) -> FloatArray | float:
        """``X^T diag(c) X`` (a scalar for the intercept-only model)."""
        if self.X is None:
            return float(_total(c))
        return self.X.T @ (c[:, None] * self.X)

    def _tr_ainv(self, m: FloatArray | float) -> float:
        if self.X is None:
            return float(self.a_inv) * float(m)
        return float(np.sum(self.a_inv * m))  # tr(A^-1 M) for symmetric A^-1, M

    def _tr_ainv_pair(self, m1: FloatArray | float, m2: FloatArray | float) -> float:
        if self.X is None:
            a = float(self.a_inv)
            return a * a * float(m1) * float(m2)
        a_inv = cast(FloatArray, self.a_inv)
        return float(np.sum((a_inv @ m1) * (a_inv @ m2).T))

    def rss(self) -> float:
        """``Y^T P Y = sum w e^2``."""
        return float(np.dot(self.w, self.resid * self.resid))

    def ypp_y(self) -> float:
        """``Y^T P P Y = sum w^2 e^2``."""
        we = self.w * self.resid
        return float(np.dot(we, we))

    def ypp_p_y(self) -> float:
        """``Y^T P P P Y``, the derivative term of the likelihood scores."""
        w = self.w
        u = w * self.resid  # P Y
        c = self.xtdx(w * u) if self.X is None else self.X.T @ (w * u)
        if self.X is None:
            quad = float(self.a_inv) * float(c) ** 2
        else:
            a_inv = cast(FloatArray, self.a_inv)
            quad = float(c @ a_inv @ c)
        return float(np.dot(w, u * u)) - quad

    def tr_p(self, d: FloatArray | None = None) -> float:
        """``tr(P D)`` for ``D = diag(d)`` (identity when ``d`` is None)."""
        w = self.w
        wd = w if d is None else w * d
        return float(_total(wd)) - self._tr_ainv(self.xtdx(w * wd))

    def tr_pp(self, d1: FloatArray | None = None, d2: FloatArray | None = None) -> float:
        """``tr(P D1 P D2)`` for diagonal ``D1``, ``D2`` (identity when None)."""
        w = self.w
        w2 = w * w
        c1 = w2 if d1 is None else w2 * d1
        c2 = w2 if d2 is None else w2 * d2
        c12 = c1 if d2 is None else c1 * d2
        term1 = float(_total(c12))
        term2 = self._tr_ainv(self.xtdx(w * c12))
        term3 = self._tr_ainv_pair(self.xtdx(c1), self.xtdx(c2))
        return term1 - 2.0 * term2 + term3


def generalised_q_and_slope(
    tau2: float, yi: FloatArray, vi: FloatArray, X: FloatArray | None
) -> tuple[float, float]:
    """The generalised Q statistic and its derivative in tau2, ``-Y^T P P Y``."""
    fit = WLS(yi, 1.0 / (vi + tau2), X)
    return fit.rss(), -fit.ypp_y()


def generalised_q(tau2: float, yi: FloatArray, vi: FloatArray, X: FloatArray | None) -> float:
    """The generalised Q statistic ``sum w_i (y_i - x_i b)^2`` with ``w_i = 1/(v_i + tau2)``.

    It decreases in tau2; at tau2 = 0 it is Cochran's Q (QE).
    """
    return WLS(yi, 1.0 / (vi + tau2), X).rss()


def solve_decreasing(
    f: Callable[[float], tuple[float, float]],
    lower: float,
    scale: float,
    what: str,
) -> float:
    """The root above ``lower`` of a function that is negative far above it, or
    ``lower`` itself when the function is not positive there (the estimate lies on
    the boundary, e.g. tau^2 = 0).

    ``f(x)`` returns the function's value and its derivative. Newton steps are
    taken inside a bracket that every evaluation narrows; a step that leaves the
    bracket (or a derivative that is not negative) is replaced by bisection, or
    by doubling while no negative value has been seen. The search therefore
    cannot diverge, unlike plain Fisher scoring, and converges to ``ROOT_RTOL``
    relative. For the convex, decreasing generalised Q statistic the Newton steps
    approach the root monotonically from below.

    Raises
    ------
    ConvergenceError
        If no sign change is found below 1e300 (the equation has no root).
    """
    xtol = max(scale, 1e-300) * 1e-16
    lo, hi = lower, math.inf
    x = lower
    for step in range(2000):
        value, slope = f(x)
        if value == 0.0 or (step == 0 and value < 0.0):
            return x
        if value > 0.0:
            lo = x
        else:
            hi = x
        step_ok = slope < 0.0 and math.isfinite(slope)
        x_new = x - value / slope if step_ok else math.nan
        if not lo < x_new < hi:
            x_new = 0.5 * (lo + hi) if math.isfinite(hi) else 2.0 * lo + scale
        if abs(x_new - x) <= ROOT_RTOL * abs(x_new) + xtol:
            return x_new
        if math.isfinite(hi) and hi - lo <= ROOT_RTOL * hi + xtol:
            return 0.5 * (lo + hi)
        if x_new > 1e300:
            break
        x = x_new
    raise ConvergenceError(f"{what}: the estimating equation has no root for these data")


def _scale(yi: FloatArray, vi: FloatArray) -> float:
    """A positive scale for bracketing tau^2: the spread of the effects plus the
    typical sampling variance."""
    k = yi.size
    d = yi - float(_total(yi)) / k
    return float(np.dot(d, d)) / k + float(_total(vi)) / k + 1e-300


def _tau2_dl(yi: FloatArray, vi: FloatArray, X: FloatArray | None) -> tuple[float, float]:
    # DerSimonian & Laird (1986), method of moments on Cochran's Q.
    k, p = yi.size, 1 if X is None else X.shape[1]
    fe = WLS(yi, 1.0 / vi, X)
    tr_p = fe.tr_p()
    tau2 = max(0.0, (fe.rss() - (k - p)) / tr_p)
    se = math.sqrt((2.0 * (k - p) + 4.0 * tau2 * tr_p + 2.0 * tau2**2 * fe.tr_pp()) / tr_p**2)
    return tau2, se


def _tau2_he(yi: FloatArray, vi: FloatArray, X: FloatArray | None) -> tuple[float, float]:
    # Hedges (1983), method of moments on the unweighted residual sum of squares.
    k, p = yi.size, 1 if X is None else X.shape[1]
    ols = WLS(yi, np.ones_like(yi), X)
    tr_pv = ols.tr_p(vi)
    tau2 = max(0.0, (ols.rss() - tr_pv) / (k - p))
    se = math.sqrt(
        (2.0 * ols.tr_pp(vi, vi) + 4.0 * tau2 * tr_pv + 2.0 * tau2**2 * (k - p)) / (k - p) ** 2
    )
    return tau2, se


def _tau2_hs(yi: FloatArray, vi: FloatArray, X: FloatArray | None) -> tuple[float, float]:
    # Hunter & Schmidt (2004), as metafor defines it: (Q - k) / sum(w).
    k, p = yi.size, 1 if X is None else X.shape[1]
    w = 1.0 / vi
    fe = WLS(yi, w, X)
    sw = float(_total(w))
    tau2 = max(0.0, (fe.rss() - k) / sw)
    se = math.sqrt((2.0 * (k - p) + 4.0 * tau2 * fe.tr_p() + 2.0 * tau2**2 * fe.tr_pp()) / sw**2)
    return tau2, se


def _tau2_sj(yi: FloatArray, vi: FloatArray, X: FloatArray | None) -> tuple[float, float]:
    # Sidik & Jonkman (2005), one step from the initial value var(y) (k-1)/k.
    k, p = yi.size, 1 if X is None else X.shape[1]
    tau2_0 = float(np.var(yi))  # numpy's var divides by k, i.e. var(y) (k-1)/k
    if tau2_0 <= 0.0:
        return 0.0, 0.0
    fit0 = WLS(yi, 1.0 / (vi + tau2_0), X)
    tau2 = max(0.0, tau2_0 * fit0.rss() / (k - p))
    se = math.sqrt(
        tau2_0**2
        / (k - p) ** 2
        * (
            2.0 * fit0.tr_pp(vi, vi)
            + 4.0 * tau2 * fit0.tr_pp(vi, None)
            + 2.0 * tau2**2 * fit0.tr_pp()
        )
    )
    return tau2, se


def _tau2_ml(yi: FloatArray, vi: FloatArray, X: FloatArray | None) -> tuple[float, float]:
    # Maximum likelihood (Hardy & Thompson 1996): root of the ML score
    # sum w^2 e^2 - sum w, found by a bracketed search instead of Fisher scoring.
    def score(tau2: float) -> tuple[float, float]:
        fit = WLS(yi, 1.0 / (vi + tau2), X)
        w = fit.w
        return fit.ypp_y() - float(_total(w)), float(np.dot(w, w)) - 2.0 * fit.ypp_p_y()

    tau2 = solve_decreasing(score, 0.0, _scale(yi, vi), "ML")
    w = 1.0 / (vi + tau2)
    return tau2, math.sqrt(2.0 / float(np.dot(w, w)))


def _tau2_reml(yi: FloatArray, vi: FloatArray, X: FloatArray | None) -> tuple[float, float]:
    # Restricted maximum likelihood (Viechtbauer 2005): root of the REML score
    # Y'PPY - tr(P), found by a bracketed search instead of Fisher scoring.
    def score(tau2: float) -> tuple[float, float]:
        fit = WLS(yi, 1.0 / (vi + tau2), X)
        return fit.ypp_y() - fit.tr_p(), fit.tr_pp() - 2.0 * fit.ypp_p_y()

    tau2 = solve_decreasing(score, 0.0, _scale(yi, vi), "REML")
    fit = WLS(yi, 1.0 / (vi + tau2), X)
    return tau2, math.sqrt(2.0 / fit.tr_pp())


def _tau2_pm(yi: FloatArray, vi: FloatArray, X: FloatArray | None) -> tuple[float, float]:
    # Paule & Mandel (1982): the tau^2 at which the generalised Q equals its
    # expectation k - p. The empirical Bayes estimator (Morris 1983) solves the
    # same equation, so EB and PM coincide (Viechtbauer 2005).
    k, p = yi.size, 1 if X is None else X.shape[1]

    def excess(tau2: float) -> tuple[float, float]:
        q, slope = generalised_q_and_slope(tau2, yi, vi, X)
        return q - (k - p), slope

    tau2 = solve_decreasing(excess, 0.0, _scale(yi, vi), "PM")
    fit = WLS(yi, 1.0 / (vi + tau2), X)
    sw = float(_total(fit.w))
    se = math.sqrt(
        (k / (k - p)) ** 2
        / sw**2
        * (2.0 * fit.tr_pp(vi, vi) + 4.0 * tau2 * fit.tr_pp(vi, None) + 2.0 * tau2**2 * fit.tr_pp())
    )
    return tau2, se


_ESTIMATORS: dict[str, Callable[[FloatArray, FloatArray, FloatArray | None], tuple[float, float]]]
_ESTIMATORS = {
    "DL": _tau2_dl,
    "HE": _tau2_he,
    "HS": _tau2_hs,
    "SJ": _tau2_sj,
    "ML": _tau2_ml,
    "REML": _tau2_reml,
    "EB": _tau2_pm,
    "PM": _tau2_pm,
}


def estimate_tau2(
    yi: FloatArray, vi: FloatArray, method: str, X: FloatArray | None = None
) -> Tau2Estimate:
    """Estimate the between-study variance tau^2.

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
    try:
        estimator = _ESTIMATORS[method]
    except KeyError:
        raise ValueError(f"unknown tau^2 method {method!r}") from None
    tau2, se = estimator(yi, vi, X)
    return Tau2Estimate(tau2=tau2, se_tau2=se, method=method)
