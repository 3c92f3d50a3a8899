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

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import mul
from typing import Any, Literal, NamedTuple, Protocol, TypeAlias, get_args

import numpy as np
import numpy.typing as npt

from metaan._numeric import divide, maximum0, sqrt, where
from metaan.errors import ConvergenceError, InputError
from metaan.solver import ROOT_RTOL, solve_decreasing, solve_decreasing_scalar

__all__ = [
    "ROOT_RTOL",
    "TAU2_METHODS",
    "WLS",
    "Batch",
    "Moments",
    "Single",
    "Source",
    "Tau2Estimate",
    "Tau2Method",
    "estimate_tau2",
    "generalised_q",
    "ratio_form",
    "score",
    "tau2_batch",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
#: A number of every problem: a float for a :class:`Single` problem, an array for
#: a batch.
Num: TypeAlias = Any

Tau2Method = Literal["DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM"]
TAU2_METHODS: tuple[str, ...] = get_args(Tau2Method)
ITERATIVE: frozenset[str] = frozenset({"ML", "REML", "EB", "PM"})
#: The numerical range of the engine (README, "Numerical range"). Every problem is
#: centred at its common-effect estimate and scaled by ``s``, the larger of the
#: largest deviation from it and the largest standard error (:func:`standardise`):
#: ``s`` must be at most MAX_SCALE, so that tau^2 (up to about ``s^2``) and its
#: Q-profile limits are finite doubles; the smallest sampling variance must be at
#: least MIN_RELATIVE_VARIANCE times ``s^2``, so that the weights (up to
#: ``s^2 / v``) and the sums of their cubes are finite; and, for a random-effects
#: model, no study's common-effect weight may exceed MAX_DOMINANCE times the
#: other studies' weights together: near tau^2 = 0, ``tr(P)`` and the residual sums
#: lose about ``log10`` of that ratio in digits, and 1e6 leaves ten.
MAX_SCALE = 1e150
MIN_RELATIVE_VARIANCE = 1e-90
MAX_DOMINANCE = 1e6
#: Before any of that, every effect must lie within +-MAX_EFFECT and every sampling
#: variance within [MIN_VARIANCE, MAX_VARIANCE]: the rest of metaan (leave-one-out
#: sums, the regression tests of bias, plots) computes on the data as given, and
#: its sums of weights cubed times effects squared stay finite there.
MAX_EFFECT = 1e50
MIN_VARIANCE = 1e-50
MAX_VARIANCE = 1e50

#: The largest intercept-only problem fitted on Python floats (:class:`Single`)
#: rather than numpy arrays: below it a numpy call costs more than its arithmetic.
SINGLE_MAX_K = 256


def _f(x: Any) -> FloatArray:
    """``x`` as a float array (numpy's reductions are typed as returning Any)."""
    return np.asarray(x, dtype=np.float64)


def rowsum(a: Any) -> FloatArray:
    """The sum of each row of a (B, K) array, as ``a.sum(axis=1)``; einsum is two
    to three times faster on short rows and as accurate on long ones (it sums in
    blocks)."""
    if a.dtype != np.float64:
        return np.asarray(np.add.reduce(a, axis=1), dtype=np.float64)
    return _f(np.einsum("bk->b", a))


def rowdot(a: FloatArray, b: FloatArray) -> FloatArray:
    """``(a * b).sum(axis=1)`` without the (B, K) product in memory."""
    return _f(np.einsum("bk,bk->b", a, b))


def rowdot3(a: FloatArray, b: FloatArray, c: FloatArray) -> FloatArray:
    """``(a * b * c).sum(axis=1)`` without a (B, K) product in memory: a fresh
    (B, K) array costs more than the arithmetic (its pages are new memory)."""
    return _f(np.einsum("bk,bk,bk->b", a, b, c))


@dataclass(frozen=True)
class Tau2Estimate:
    """An estimate of tau^2 with its standard error and how it was obtained."""

    tau2: float
    se_tau2: float
    method: str


class Moments(NamedTuple):
    """The weighted least squares of each problem of a batch at its trial tau^2.

    Every field has one value per problem (an array, or a float for a
    :class:`Single` problem): ``sw = sum w``, ``sw2 = sum w^2``,
    ``rss = Y'PY = sum w e^2`` (the generalised Q), ``ypp = Y'PPY``,
    ``yppp = Y'PPPY``, ``trp = tr(P)``, ``trpp = tr(PP)``. A named tuple rather
    than a dataclass: the solver builds one per evaluation.
    """

    sw: Num
    sw2: Num
    rss: Num
    ypp: Num
    yppp: Num
    trp: Num
    trpp: Num


def ratio_form(data: Num, d_data: Num, target: Num, d_target: Num) -> tuple[Num, Num]:
    """The equation ``data(t) = target(t)`` as ``1 - target / data``, and its derivative.

    Every equation of the engine sets a positive, decreasing sum of the data (the
    generalised Q, ``Y'PPY``) against its expectation. Their difference and
    ``1 - target / data`` have the same sign everywhere, so the same root and the
    same bracket, but the ratio is nearly linear in tau^2 (exactly linear when
    all sampling variances are equal, e.g. ``Q(t) = S / (v + t)``), so Newton's
    method needs a step or two fewer. ``data = 0`` (all effects equal) gives
    minus infinity: the root is at the lower end.
    """
    if data.__class__ is float:
        if data == 0.0:
            return -math.inf, math.nan
        ratio = target / data
        return 1.0 - ratio, (ratio * d_data - d_target) / data
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = target / data
        return 1.0 - ratio, (ratio * d_data - d_target) / data


def score(method: str, m: Moments, n: Num, p: int) -> tuple[Num, Num]:
    """The estimating equation of an iterative estimator and its derivative in tau^2.

    Each decreases in tau^2; its root is the estimate (0 when it is not positive
    at 0). ``n`` is the number of studies of each problem, ``p`` of coefficients.

    * REML: ``Y'PPY = tr(P)`` (Viechtbauer 2005);
    * ML: ``Y'PPY = sum w`` (Hardy & Thompson 1996);
    * PM and EB: ``Y'PY = n - p``, the generalised Q at its expectation
      (Paule & Mandel 1982; the empirical Bayes estimator of Morris 1983 solves
      the same equation);

    each in the form ``1 - right / left`` (:func:`ratio_form`).
    """
    if method == "REML":
        return ratio_form(m.ypp, -2.0 * m.yppp, m.trp, -m.trpp)
    if method == "ML":
        return ratio_form(m.ypp, -2.0 * m.yppp, m.sw, -m.sw2)
    if method in ("PM", "EB"):
        return ratio_form(m.rss, -m.ypp, n - p, 0.0)
    raise ValueError(f"{method} is not an iterative tau^2 estimator")


class Source(Protocol):
    """Anything that computes :class:`Moments` of a batch of problems."""

    #: Studies in each problem, and coefficients per problem.
    n: Num
    p: int

    def at(self, t: Num, rows: Any) -> Moments:
        """The moments of problems ``rows`` (an index array; all when None) at tau^2 ``t``."""
        ...

    def unweighted(self) -> tuple[Num, Num]:
        """``Y'PY`` and ``tr(PV)`` of the ordinary least squares fit (unit weights)."""
        ...

    def spread(self) -> Num:
        """The variance of the effects with divisor n (Sidik-Jonkman's start)."""
        ...

    def scale(self) -> Num:
        """A positive scale of tau^2: the spread plus the mean sampling variance."""
        ...

    def tolerance(self) -> Num:
        """The absolute tolerance of tau^2: 1e-16 times the smallest sampling variance."""
        ...


class Weighted:
    """Weighted least squares of every problem of a :class:`Batch` with weights ``U``.

    ``U`` is (B, K), 0 in padded cells. For the intercept-only model (``X`` None)
    every p x p matrix is a number per problem.
    """

    def __init__(self, Y: FloatArray, U: FloatArray, X: FloatArray | None) -> None:
        self.U, self.X = U, X
        self._moments: Moments | None = None
        if X is None:
            self.sw = rowsum(U)
            self.a_inv: FloatArray = 1.0 / self.sw
            self.b: FloatArray = (rowdot(U, Y) * self.a_inv)[:, None]
            self.resid: FloatArray = Y - self.b
        else:
            A = np.einsum("bk,ki,kj->bij", U, X, X)
            self.sw = rowsum(U)
            self.a_inv = np.linalg.inv(A)
            self.b = np.einsum("bij,bj->bi", self.a_inv, (U * Y) @ X)
            self.resid = Y - self.b @ X.T
        self.ue: FloatArray = U * self.resid  # P Y

    @property
    def intercept(self) -> FloatArray:
        """The first coefficient of every problem (the estimate of an intercept-only model)."""
        return self.b[:, 0]

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
        return rowdot(self.ue, self.resid)

    def ypp_y(self) -> FloatArray:
        """``Y'PPY = sum w^2 e^2``."""
        return rowdot(self.ue, self.ue)

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

    def tr_p(self, d: Any = None) -> FloatArray:
        """``tr(P D)`` for ``D = diag(d)`` (identity when ``d`` is None)."""
        wd = self.U if d is None else self.U * d
        return rowsum(wd) - self.tr_ainv(self.xtdx(self.U * wd))

    def tr_pp(self, d1: Any = None, d2: Any = None) -> FloatArray:
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
        """The :class:`Moments` of these weights (computed once)."""
        if self._moments is None:
            self._moments = (
                self._intercept_moments()
                if self.X is None
                else Moments(
                    sw=self.sw,
                    sw2=rowdot(self.U, self.U),
                    rss=self.rss(),
                    ypp=self.ypp_y(),
                    yppp=self.ypp_p_y(),
                    trp=self.tr_p(),
                    trpp=self.tr_pp(),
                )
            )
        return self._moments

    def _intercept_moments(self) -> Moments:
        """The moments of an intercept-only model, in few passes over the arrays:
        ``tr(P) = sw - sw2 / sw``, ``tr(PP) = sw2 - 2 sw3 / sw + (sw2 / sw)^2`` and
        ``Y'PPPY = sum w^3 e^2 - (sum w^2 e)^2 / sw``."""
        U, ue, a = self.U, self.ue, self.a_inv
        sw2, sw3 = rowdot(U, U), rowdot3(U, U, U)
        c = rowdot(U, ue)
        ratio = sw2 * a
        return Moments(
            sw=self.sw,
            sw2=sw2,
            rss=self.rss(),
            ypp=self.ypp_y(),
            yppp=rowdot3(U, ue, ue) - a * c * c,
            trp=self.sw - ratio,
            trpp=sw2 - 2.0 * sw3 * a + ratio * ratio,
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
        if self.mask.all():  # no padding: the arrays are used as they are
            self.Y, self.V, self.Vinf = Y, V, V
        else:
            self.Y = np.where(self.mask, Y, 0.0)
            self.V = np.where(self.mask, V, 0.0)
            self.Vinf = np.where(self.mask, V, np.inf)
        self.X: FloatArray | None = None
        self.T: FloatArray | None = None
        if X is not None:
            self.X, self.T = _condition(X)
        self.p = 1 if X is None else X.shape[1]
        self.n: FloatArray = rowsum(self.mask).astype(np.float64)
        self._scale: FloatArray | None = None
        self._tolerance: FloatArray | None = None

    @property
    def size(self) -> int:
        return int(self.Y.shape[0])

    def weighted(self, t: Num, rows: IntArray | None = None) -> Weighted:
        """The weighted least squares of problems ``rows`` at tau^2 values ``t``."""
        if rows is None or rows.size == self.Y.shape[0]:  # every problem (rows ascend)
            U = self.Vinf + t[:, None]
            return Weighted(self.Y, np.reciprocal(U, out=U), self.X)
        # np.take and in-place arithmetic: no (B, K) temporary beyond U itself.
        U = np.take(self.Vinf, rows, axis=0)
        U += t[:, None]
        return Weighted(np.take(self.Y, rows, axis=0), np.reciprocal(U, out=U), self.X)

    def at(self, t: Num, rows: Any = None) -> Moments:
        return self.weighted(t, rows).moments()

    def ols(self) -> Weighted:
        """The ordinary least squares fit of every problem (unit weights)."""
        return Weighted(self.Y, self.mask.astype(np.float64), self.X)

    def coefficients(self, fit: Weighted) -> tuple[FloatArray, FloatArray]:
        """The coefficients and ``(X'WX)^-1`` of a fit in the columns of the original X."""
        if self.T is None:
            return fit.b, fit.a_inv[:, None, None]
        b = fit.b @ self.T.T
        return b, _f(np.einsum("ij,bjk,lk->bil", self.T, fit.a_inv, self.T))

    def unweighted(self) -> tuple[FloatArray, FloatArray]:
        ols = self.ols()
        return ols.rss(), ols.tr_p(self.V)

    def spread(self) -> FloatArray:
        mean = rowsum(self.Y) / self.n
        d = self.Y - mean[:, None]
        if self.Vinf is not self.V:  # padded cells: no deviation
            d[~self.mask] = 0.0
        return rowdot(d, d) / self.n

    def scale(self) -> FloatArray:
        if self._scale is None:
            self._scale = self.spread() + rowsum(self.V) / self.n + 1e-300
        return self._scale

    def tolerance(self) -> FloatArray:
        if self._tolerance is None:
            self._tolerance = _f(np.maximum(np.min(self.Vinf, axis=1), 1e-300) * 1e-16)
        return self._tolerance


class SingleFit:
    """Weighted least squares of a :class:`Single` problem with weights ``w``, on floats.

    The intercept-only case of :class:`Weighted`, summed by two loops over the
    studies: ``b`` is the weighted mean, and every sum the estimators need is
    taken once in the constructor.
    """

    __slots__ = ("_ypp", "_yppp", "a_inv", "b", "rss_", "sw", "sw2", "sw3", "w", "y")

    def __init__(self, y: list[float], w: list[float]) -> None:
        self.y, self.w = y, w
        sw = sw2 = sw3 = swy = 0.0
        for wi, yi in zip(w, y, strict=True):
            w2 = wi * wi
            sw += wi
            sw2 += w2
            sw3 += w2 * wi
            swy += wi * yi
        self.sw, self.sw2, self.sw3 = sw, sw2, sw3
        self.a_inv = 1.0 / sw
        b = self.b = swy * self.a_inv
        rss = ypp = c = w3e2 = 0.0
        for wi, yi in zip(w, y, strict=True):
            e = yi - b
            ue = wi * e
            wue = wi * ue
            rss += ue * e
            ypp += ue * ue
            c += wue
            w3e2 += wue * ue
        self.rss_, self._ypp, self._yppp = rss, ypp, w3e2 - c * c * self.a_inv

    @property
    def intercept(self) -> float:
        """The estimate of the intercept-only model."""
        return self.b

    def rss(self) -> float:
        """``Y'PY = sum w e^2``."""
        return self.rss_

    def ypp_y(self) -> float:
        """``Y'PPY = sum w^2 e^2``."""
        return self._ypp

    def tr_p(self, d: Any = None) -> float:
        """``tr(P D)`` for ``D = diag(d)`` (identity when ``d`` is None)."""
        if d is None:
            return self.sw - self.sw2 * self.a_inv
        wd = list(map(mul, self.w, d))
        return float(sum(wd) - sum(map(mul, self.w, wd)) * self.a_inv)

    def tr_pp(self, d1: Any = None, d2: Any = None) -> float:
        """``tr(P D1 P D2)`` for diagonal ``D1``, ``D2`` (identity when None)."""
        a = self.a_inv
        if d1 is None and d2 is None:
            ratio = self.sw2 * a
            return self.sw2 - 2.0 * self.sw3 * a + ratio * ratio
        w2 = list(map(mul, self.w, self.w))
        c1 = w2 if d1 is None else list(map(mul, w2, d1))
        c2 = w2 if d2 is None else list(map(mul, w2, d2))
        c12 = c1 if d2 is None else list(map(mul, c1, d2))
        return float(sum(c12) - 2.0 * a * sum(map(mul, self.w, c12)) + a * sum(c1) * a * sum(c2))

    def moments(self) -> Moments:
        """The :class:`Moments` of these weights."""
        return Moments(
            self.sw,
            self.sw2,
            self.rss_,
            self._ypp,
            self._yppp,
            self.tr_p(),
            self.tr_pp(),
        )


class Single:
    """One intercept-only problem on Python floats: the :class:`Source` of a small fit.

    A fit of ten studies costs a few dozen numpy calls per evaluation of an
    estimating equation, each dearer than the arithmetic it does; here every
    sum is a loop over Python floats. The estimators, the solver and every
    formula downstream are the batch's own (they take a float where a batch has
    an array). ``Y`` and ``V`` should be standardised (:meth:`standardised`).
    """

    p = 1
    size = 1

    def __init__(self, Y: Sequence[float], V: Sequence[float]) -> None:
        self.Y, self.V = list(Y), list(V)
        self.n = float(len(self.Y))

    @classmethod
    def standardised(cls, y: Sequence[float], v: Sequence[float]) -> tuple[Single, float, float]:
        """The problem centred and scaled as :func:`standardise` does, with ``c`` and ``s``.

        The effects are first divided by a power of two near their largest
        magnitude (exactly, so nothing changes in the usual range), which keeps
        effects of 1e308 from overflowing on the way.
        """
        top = max(abs(x) for x in y)
        unit = math.ldexp(1.0, math.frexp(top)[1] - 1) if 0.0 < top < math.inf else 1.0
        yn = [x / unit for x in y]
        vmin = min(v)
        w = [vmin / x for x in v]
        ref = yn[0]  # deviations from one effect: equal effects give exactly 0
        cn = ref + sum(w_i * (x - ref) for w_i, x in zip(w, yn, strict=True)) / sum(w)
        s = max(max(abs(x - cn) for x in yn) * unit, math.sqrt(max(v)))
        if not s > 0.0:
            s = 1.0
        su = s / unit
        return cls([(x - cn) / su for x in yn], [x / s / s for x in v]), cn * unit, s

    def weighted(self, t: Num, rows: Any = None) -> SingleFit:
        """The weighted least squares at tau^2 ``t``."""
        return SingleFit(self.Y, [1.0 / (x + t) for x in self.V])

    def at(self, t: Num, rows: Any = None) -> Moments:
        return self.weighted(t).moments()

    def ols(self) -> SingleFit:
        """The ordinary least squares fit (unit weights)."""
        return SingleFit(self.Y, [1.0] * len(self.Y))

    def unweighted(self) -> tuple[float, float]:
        ols = self.ols()
        return ols.rss(), ols.tr_p(self.V)

    def spread(self) -> float:
        mean = sum(self.Y) / self.n
        return sum((x - mean) ** 2 for x in self.Y) / self.n

    def scale(self) -> float:
        return self.spread() + sum(self.V) / self.n + 1e-300

    def tolerance(self) -> float:
        return max(min(self.V), 1e-300) * 1e-16


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
    full = bool(mask.all())  # no padding (one problem): no cell to mask
    Vm = V if full else np.where(mask, V, np.inf)
    Ym = Y if full else np.where(mask, Y, 0.0)
    # Effects in units of a power of two near their largest magnitude: exact, and
    # effects of 1e308 cannot overflow on the way.
    top = np.max(np.abs(Ym), axis=1)
    exponent = np.frexp(np.where(np.isfinite(top) & (top > 0.0), top, 1.0))[1]
    unit = np.ldexp(1.0, exponent - 1)
    Yn = Ym / unit[:, None]
    if centre:
        vmin = np.min(Vm, axis=1)
        w = vmin[:, None] / Vm
        ref = Yn[:, :1]  # deviations from one effect: equal effects give exactly 0
        cn = ref[:, 0] + rowdot(w, Yn - ref) / rowsum(w)
    else:
        cn = np.zeros(Y.shape[0])
    Yc = Yn - cn[:, None]
    dev = np.abs(Yc) if full else np.where(mask, np.abs(Yc), 0.0)
    vmax = np.max(V if full else np.where(mask, V, 0.0), axis=1)
    with np.errstate(over="ignore"):
        s = np.maximum(np.max(dev, axis=1) * unit, np.sqrt(vmax))
    s = np.where(s > 0.0, s, 1.0)
    Yc /= (s / unit)[:, None]
    Vs = V / s[:, None] / s[:, None]
    if not full:
        Yc[~mask] = np.nan
        Vs[~mask] = np.nan
    return Yc, Vs, cn * unit, s


def _everything(source: Source | Batch | Single) -> tuple[Num, IntArray | None]:
    """tau^2 = 0 for every problem of ``source``, and the rows of them all."""
    if isinstance(source, Single):
        return 0.0, None
    size = np.asarray(source.n).size
    return np.zeros(size), np.arange(size)


def solve(
    source: Source,
    f: Callable[[Num, IntArray | None], tuple[Num, Num]],
    *,
    start: Num | None = None,
    first: tuple[Num, Num] | None = None,
    at_start: tuple[Num, Num] | None = None,
) -> Num:
    """The root in tau^2 >= 0 of a decreasing equation of every problem of ``source``.

    ``f(t, rows)`` gives the equation's value and derivative; ``first`` is them
    at 0 and ``at_start`` at ``start`` (NaN where not known) when the caller
    has them. A :class:`Single` problem is solved on floats
    by :func:`~metaan.solver.solve_decreasing_scalar`, a batch by
    :func:`~metaan.solver.solve_decreasing`: the same steps, one per problem.
    """
    known = {"start": start, "xtol": source.tolerance(), "first": first, "at_start": at_start}
    if isinstance(source, Single):
        return solve_decreasing_scalar(lambda t: f(t, None), 0.0, source.scale(), **known)
    return solve_decreasing(f, 0.0, source.scale(), **known)


def out_of_range(s: float, smallest: float, dominance: float, random: bool) -> str | None:
    """Why a standardised problem lies outside the engine's numerical range, or None.

    ``s`` is its scale, ``smallest`` its smallest standardised sampling variance
    and ``dominance`` its largest common-effect weight over the others' sum (see
    :data:`MAX_SCALE`, :data:`MIN_RELATIVE_VARIANCE`, :data:`MAX_DOMINANCE`).
    """
    if not s <= MAX_SCALE:
        spread = f"{s:.3g}" if s < math.inf else "more than the largest number (1.8e+308)"
        return (
            f"the effects spread over {spread} (the largest deviation from the common "
            f"effect, or the largest standard error); metaan fits effects whose spread "
            f"is at most {MAX_SCALE:.0e}, so that tau^2 stays a finite number"
        )
    if not smallest >= MIN_RELATIVE_VARIANCE:
        return (
            f"the smallest sampling variance is {smallest:.3g} times the square of the "
            f"effects' spread or of the largest standard error ({s:.3g}); metaan fits "
            f"variances down to {MIN_RELATIVE_VARIANCE:.0e} times that, so that the "
            "weights stay finite numbers"
        )
    if random and not dominance <= MAX_DOMINANCE:
        return (
            f"one study has {dominance:.3g} times the weight of all the others together; "
            "a random-effects model loses that many digits of precision, and metaan "
            f"fits up to {MAX_DOMINANCE:.0e}"
        )
    return None


def outside_limits(yi: FloatArray, vi: FloatArray) -> str | None:
    """Why effects or sampling variances lie outside the absolute range, or None."""
    top = float(np.max(np.abs(yi))) if yi.size else 0.0
    if not top <= MAX_EFFECT:
        return (
            f"an effect is {top:.3g} in size; metaan fits effects between {-MAX_EFFECT:.0e} "
            f"and {MAX_EFFECT:.0e}"
        )
    low, high = (float(np.min(vi)), float(np.max(vi))) if vi.size else (1.0, 1.0)
    if not MIN_VARIANCE <= low <= high <= MAX_VARIANCE:
        value = low if not low >= MIN_VARIANCE else high
        return (
            f"a sampling variance is {value:.3g}; metaan fits sampling variances between "
            f"{MIN_VARIANCE:.0e} and {MAX_VARIANCE:.0e}"
        )
    return None


def check_data(
    yi: FloatArray, vi: FloatArray, X: FloatArray | None = None, *, random: bool = True
) -> None:
    """Raise an :class:`~metaan.errors.InputError` when the effects ``yi`` and
    variances ``vi`` of one model are outside the engine's numerical range
    (:func:`out_of_range`), for code that fits them outside the engine."""
    one_problem(yi, vi, X, random=random)


def check_range(source: Batch | Single, s: float, random: bool) -> None:
    """Raise an :class:`~metaan.errors.InputError` when one standardised problem is
    outside the engine's numerical range (:func:`out_of_range`)."""
    if isinstance(source, Single):
        smallest = min(source.V)
        w = [1.0 / x for x in source.V] if smallest > 0.0 else [math.inf]
        largest, total = max(w), sum(w)
    else:
        v = source.V[0][source.mask[0]]
        smallest = float(np.min(v))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            w = 1.0 / v
            largest, total = float(np.max(w)), float(np.sum(w))
    problem = out_of_range(s, smallest, divide(largest, total - largest), random)
    if problem is not None:
        raise InputError(problem, fix=_RANGE_FIX)


_RANGE_FIX = (
    "express the effects in other units, or leave out the study whose effect or "
    "variance is out of proportion (README: Numerical range)"
)


def one_problem(
    yi: FloatArray, vi: FloatArray, X: FloatArray | None = None, *, random: bool = True
) -> tuple[Batch | Single, float, float]:
    """One problem, standardised, with its centre and scale.

    An intercept-only problem of at most :data:`~metaan.estimators.SINGLE_MAX_K`
    studies is held on Python floats (:class:`~metaan.estimators.Single`), where
    the estimators run faster than on numpy arrays of that length; any other is
    a batch of one. A design without an intercept column is only scaled.
    A problem outside the numerical range (:func:`out_of_range`; ``random``: for
    a random-effects model) raises an :class:`~metaan.errors.InputError`.
    """
    limits = outside_limits(yi, vi)
    if limits is not None:
        raise InputError(limits, fix=_RANGE_FIX)
    if X is None and yi.size <= SINGLE_MAX_K:
        single, c, s = Single.standardised(yi.tolist(), vi.tolist())
        check_range(single, s, random)
        return single, c, s
    centre = X is None or bool(np.any(np.all(X == 1.0, axis=0)))
    mask = np.ones((1, yi.size), dtype=bool)
    Ys, Vs, cs, ss = standardise(yi[None, :], vi[None, :], mask, centre=centre)
    batch = Batch(Ys, Vs, X)
    check_range(batch, float(ss[0]), random)
    return batch, float(cs[0]), float(ss[0])


def _iterative(
    source: Source, method: str, start: Num | None = None, fe: Moments | None = None
) -> Num:
    """The root of ``method``'s estimating equation for every problem of ``source``."""
    n, p = source.n, source.p

    def f(t: Num, rows: IntArray | None) -> tuple[Num, Num]:
        return score(method, source.at(t, rows), n if rows is None else n[rows], p)

    first = None if fe is None else score(method, fe, n, p)
    tau2 = solve(source, f, start=start, first=first)
    if (tau2 != tau2) if isinstance(source, Single) else np.isnan(tau2).any():
        raise ConvergenceError(f"{method}: the estimating equation has no root for these data")
    return tau2


def _closed_form(source: Source, method: str, fe: Moments | None = None) -> Num:
    """The method-of-moments estimators DL, HE, HS and SJ, truncated at 0.

    ``fe`` is the moments at tau^2 = 0, when the caller has them.
    """
    n, p = source.n, source.p
    zero, rows = _everything(source)
    if method == "HE":
        rss, tr_pv = source.unweighted()
        return maximum0(divide(rss - tr_pv, n - p))
    if method == "SJ":
        tau2_0 = source.spread()
        fit0 = source.at(tau2_0, rows)
        return where(tau2_0 > 0.0, maximum0(divide(tau2_0 * fit0.rss, n - p)), 0.0)
    if fe is None:
        fe = source.at(zero, rows)
    if method == "DL":
        return maximum0(divide(fe.rss - (n - p), fe.trp))
    if method == "HS":
        return maximum0(divide(fe.rss - n, fe.sw))
    raise ValueError(f"unknown tau^2 method {method!r}")


def tau2_batch(
    source: Source, method: str, start: Num | None = None, *, fe: Moments | None = None
) -> Num:
    """tau^2 of every problem of a batch by ``method`` (never negative).

    ``start`` (iterative estimators only) is where the solver begins, e.g. the
    DerSimonian-Laird estimate; the bracket keeps the search safe from any start.
    ``fe`` is the moments at tau^2 = 0 (the common-effect fit), when the caller
    has them: the closed forms and the solver's first step then reuse them.
    Every problem needs at least ``p + 1`` studies.
    """
    if isinstance(source, Single):  # floats: nothing for numpy to warn about
        if method in ITERATIVE:
            return _iterative(source, method, start, fe)
        return _closed_form(source, method, fe)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method in ITERATIVE:
            return _iterative(source, method, start, fe)
        return _closed_form(source, method, fe)


def se_tau2_batch(
    source: Batch | Single,
    method: str,
    tau2: Num,
    *,
    fit: Weighted | SingleFit | None = None,
    fe: Moments | None = None,
) -> Num:
    """The standard error of each tau^2 as metafor computes it (Viechtbauer 2005).

    ``fit`` is the weighted least squares at ``tau2`` and ``fe`` the moments at
    0, when the caller has them.
    """
    if isinstance(source, Single):
        return _se_tau2(source, method, tau2, fit, fe)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _se_tau2(source, method, tau2, fit, fe)


def _se_tau2(
    source: Batch | Single,
    method: str,
    tau2: Num,
    fit: Weighted | SingleFit | None,
    fe: Moments | None,
) -> Num:
    """The formulas of :func:`se_tau2_batch`."""
    n, p, V = source.n, source.p, source.V
    zero, rows = _everything(source)
    if method in ("ML", "REML"):
        m = (source.weighted(tau2) if fit is None else fit).moments()
        return sqrt(divide(2.0, m.sw2 if method == "ML" else m.trpp))
    if method in ("DL", "HS"):
        fe = fe if fe is not None else source.at(zero, rows)
        denom = fe.trp if method == "DL" else fe.sw
        var = 2.0 * (n - p) + 4.0 * tau2 * fe.trp + 2.0 * tau2 * tau2 * fe.trpp
        return sqrt(divide(var, denom * denom))
    if method == "HE":
        ols = source.ols()
        var = 2.0 * ols.tr_pp(V, V) + 4.0 * tau2 * ols.tr_p(V) + 2.0 * tau2 * tau2 * (n - p)
        return sqrt(divide(var, (n - p) * (n - p)))
    # SJ and PM share one form, at the start value (SJ) or at the estimate (PM).
    at = source.spread() if method == "SJ" else tau2
    w = source.weighted(at)
    quad = 2.0 * w.tr_pp(V, V) + 4.0 * tau2 * w.tr_pp(V, None) + 2.0 * tau2 * tau2 * w.tr_pp()
    if method == "SJ":
        return where(at > 0.0, sqrt(divide(at * at * quad, (n - p) * (n - p))), 0.0)
    return sqrt(divide((n / (n - p)) ** 2 * quad, w.sw * w.sw))


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
    source, _, s = one_problem(yi, vi, X)
    tau2 = tau2_batch(source, method)
    se = se_tau2_batch(source, method, tau2)
    if isinstance(source, Batch):
        tau2, se = float(tau2[0]), float(se[0])
    return Tau2Estimate(tau2=tau2 * s * s, se_tau2=se * s * s, method=method)


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
