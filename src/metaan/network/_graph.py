"""The graph-theoretical method of network meta-analysis (Rücker 2012), as netmeta
computes it.

Every comparison of a study is an edge between two treatments, weighted by the
inverse of its variance. A multi-arm study's comparisons are not independent; the
method keeps all of them and inflates their variances so that the study's weights are
those of the Laplacian whose effective resistances are the comparisons' variances
(Rücker 2012, section 3; netmeta's ``multiarm()``). The network estimate is then the
weighted least-squares fit of the comparisons on treatment effects: with the weighted
Laplacian :math:`L = B^T W B` of the network and its Moore-Penrose inverse
:math:`L^+`, the effects are :math:`\\hat\\theta = L^+ B^T W y`, the variance of
treatment i versus j is the effective resistance
:math:`L^+_{ii} + L^+_{jj} - 2 L^+_{ij}`, and :math:`Q = (y - B\\hat\\theta)^T W
(y - B\\hat\\theta)` with :math:`\\sum_s (a_s - 1) - (n - 1)` degrees of freedom
(:math:`a_s` arms in study s, n treatments). For consistent multi-arm data this is the
generalised least-squares fit with each study's full covariance (Rücker & Schwarzer
2014); it differs from it where a study's contrasts do not add up exactly.

τ² is netmeta's generalisation of DerSimonian and Laird's estimator,

.. math:: \\hat\\tau^2 = \\max\\left(0, \\frac{Q - df}
    {\\mathrm{tr}\\left((I - H)\\,\\tfrac12 (B B^T \\circ E)\\,W\\right)}\\right),

with :math:`H = B L^+ B^T W` and :math:`E` the indicator of two comparisons of one
study; a random-effects fit adds τ² to every comparison's variance before the
multi-arm reweighting. Nothing m x m is formed: the trace is
:math:`\\sum w - \\tfrac12 \\mathrm{tr}(L^+ \\sum_s L_s^2)` with :math:`L_s` the
Laplacian of study s.

References
----------
Rücker, G. (2012). Network meta-analysis, electrical networks and graph theory.
*Research Synthesis Methods*, 3(4), 312-324.

Rücker, G., & Schwarzer, G. (2014). Reduce dimension or reduce weights? Comparing two
approaches to multi-arm studies in network meta-analysis. *Statistics in Medicine*,
33(25), 4353-4369.

Jackson, D., White, I. R., & Riley, R. D. (2012). Quantifying the impact of
between-study heterogeneity in multivariate meta-analyses. *Statistics in
Medicine*, 31(29), 3805-3820 (the generalised DerSimonian-Laird estimator).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metaan.network._data import Contrasts, complete_incidence
from metaan.network._table import FloatArray

__all__ = ["GraphFit", "dl_tau2", "graph_fit", "laplacian_inverse", "reweighted_variances"]

#: netmeta's ``is_zero``: entries of L+ smaller than this are set to zero.
_ZERO = float(np.finfo(np.float64).eps ** 0.5)
#: netmeta's ``multiarm``: a negative weight contributing less than this share of a
#: study's total absolute weight is set to zero.
_SMALL_NEGATIVE = 1e-3


def reweighted_variances(c: Contrasts, tau2: float) -> FloatArray:
    """The variances of the comparisons after netmeta's multi-arm reweighting.

    For a study with k > 2 arms and comparison variances :math:`r_{ab}` (plus τ²),
    the study's Laplacian is :math:`L_s = (-\\tfrac12 C R C)^+` with the centring
    matrix :math:`C = I - J/k` (Gutman & Xiao 2004, theorem 7); its off-diagonal
    weights :math:`w_{ab} = -(L_s)_{ab}` give the variances :math:`1/w_{ab}`. A small
    negative weight (under 0.1% of the study's total) is set to zero, as netmeta does;
    its variance is then infinite and the comparison gets no weight.
    """
    v = c.v + tau2
    out = v.copy()
    for group in c.groups:
        k = group.k
        if k < 3:
            continue
        a, b = np.triu_indices(k, 1)
        R = np.zeros((group.studies.size, k, k))
        R[:, a, b] = v[group.edges]
        R[:, b, a] = v[group.edges]
        centre = np.eye(k) - 1.0 / k
        half = -0.5 * (centre @ R @ centre)
        mean = np.full((k, k), 1.0 / k)
        L = np.linalg.inv(half - mean) + mean  # netmeta's invmat(): (X - J/k)^-1 + J/k
        w = -L[:, a, b]
        total = np.abs(w).sum(axis=1, keepdims=True)
        w = np.where((w < 0) & (np.abs(w) / total < _SMALL_NEGATIVE), 0.0, w)
        with np.errstate(divide="ignore"):
            out[group.edges] = 1.0 / w
    return out


def laplacian_inverse(L: FloatArray) -> FloatArray:
    """The Moore-Penrose inverse of a connected graph's Laplacian, as netmeta's
    ``invmat()`` computes it, :math:`(L - J/n)^{-1} + J/n`, with entries below
    :math:`\\sqrt{\\epsilon}` in absolute value set to zero as netmeta does."""
    n = L.shape[0]
    mean = np.full((n, n), 1.0 / n)
    Lplus: FloatArray = np.linalg.inv(L - mean) + mean
    Lplus[np.abs(Lplus) < _ZERO] = 0.0
    return Lplus


def laplacian(n: int, t1: np.ndarray, t2: np.ndarray, w: FloatArray) -> FloatArray:
    """:math:`B^T W B` for edges ``t1``-``t2`` with weights ``w``."""
    L = np.zeros((n, n))
    np.add.at(L, (t1, t2), -w)
    np.add.at(L, (t2, t1), -w)
    L[np.diag_indices(n)] = -L.sum(axis=1)
    return L


@dataclass(frozen=True)
class GraphFit:
    """The graph-theoretical fit at one τ².

    ``w`` are the comparisons' weights after reweighting, ``Lplus`` the inverse
    Laplacian, ``theta`` the treatment effects (centred; only differences matter),
    ``Q`` the weighted residual sum of squares.
    """

    tau2: float
    w: FloatArray
    Lplus: FloatArray
    theta: FloatArray
    Q: float

    @property
    def TE(self) -> FloatArray:
        """Row i, column j: treatment i versus j."""
        return self.theta[:, None] - self.theta[None, :]

    @property
    def variance(self) -> FloatArray:
        """The variance of treatment i versus j: the effective resistance."""
        d = np.diag(self.Lplus)
        return np.maximum(d[:, None] + d[None, :] - 2.0 * self.Lplus, 0.0)


def graph_fit(c: Contrasts, tau2: float) -> GraphFit:
    """Fit the network with τ² added to every comparison's variance (0: common effect)."""
    with np.errstate(divide="ignore"):
        w = 1.0 / reweighted_variances(c, tau2)
    Lplus = laplacian_inverse(laplacian(c.n, c.t1, c.t2, w))
    wy = w * c.y
    score = np.bincount(c.t1, weights=wy, minlength=c.n) - np.bincount(
        c.t2, weights=wy, minlength=c.n
    )
    theta = Lplus @ score
    resid = c.y - (theta[c.t1] - theta[c.t2])
    return GraphFit(tau2, w, Lplus, theta, float(np.dot(w, resid * resid)))


def degrees_of_freedom(c: Contrasts) -> int:
    """:math:`\\sum_s (a_s - 1) - (n - 1)`."""
    return int(np.sum(c.narms - 1)) - (c.n - 1)


def dl_tau2(c: Contrasts, common: GraphFit) -> float | None:
    """netmeta's generalised DerSimonian-Laird τ² from the common-effect fit, or None
    when Q has no degrees of freedom (see the module docstring)."""
    df = degrees_of_freedom(c)
    if df == 0:
        return None
    squares = np.zeros((c.n, c.n))
    for group in c.groups:
        B = complete_incidence(group.k)
        Ls = np.einsum("ea,ge,eb->gab", B, common.w[group.edges], B)
        rows = np.broadcast_to(group.arms[:, :, None], Ls.shape)
        cols = np.broadcast_to(group.arms[:, None, :], Ls.shape)
        np.add.at(squares, (rows, cols), Ls @ Ls)
    trace = float(np.sum(common.w)) - 0.5 * float(np.sum(common.Lplus * squares))
    return max(0.0, (common.Q - df) / trace)
