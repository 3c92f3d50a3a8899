"""A network as generalised least squares on basic contrasts, on the shared GLS core.

Each study contributes the effects of its arms against one baseline arm ("basic
contrasts"), with the block covariance of a multi-arm study: for baseline b and arms
i, j, :math:`\\mathrm{cov}(y_{ib}, y_{jb}) = (v_{ib} + v_{jb} - v_{ij})/2`. Random
effects add :math:`\\tau^2 Z` with :math:`Z = (I + J)/2` in every study's block (τ² on
each basic contrast, τ²/2 between two of one study: τ²/2 per arm). The fit is
:func:`metaan._gls.gls` with one block per study, blocks of equal size factorised
together. Three of netmeta's results are computed this way:

* **REML** (and ML) τ² (:func:`likelihood_tau2`). netmeta 3.4 hands the contrasts of each study
  against its reference arm (the network's reference if the study has it, else its
  last treatment) to ``metafor::rma.mv`` with the random effect
  ``~ factor(comparison) | studlab`` and ``rho = 0.5``, which is this Z (ML is the
  same with ``method = "ML"``). For data
  given as comparisons the sampling variances enter as a diagonal matrix (the
  covariance of a multi-arm study's contrasts is not used), and that is what the
  reference results show for every data set, so metaan does the same for arm-level
  and comparison-level input alike. τ² is the root of the REML score equation,
  found by the engine's safeguarded bracketed Newton search (:mod:`metaan.solver`), so it
  converges where ``rma.mv``'s optimiser does not.
* The **design-by-treatment decomposition** of Q (:func:`decomposition`; Krahn,
  König & Binder 2013, as netmeta's ``decomp.design()``): Q of the network splits
  into Q within designs (studies of one set of treatments pooled by GLS) and Q
  between designs, the inconsistency. Baselines are the network's reference where
  the study has it, else its first treatment.
* The **network variances** at τ² that back-calculation needs for the proportion of
  direct evidence (:meth:`KrahnFits.variance`; netmeta's ``netmeasures()``).

References
----------
Krahn, U., Binder, H., & König, J. (2013). A graphical tool for locating
inconsistency in network meta-analyses. *BMC Medical Research Methodology*, 13, 35.

König, J., Krahn, U., & Binder, H. (2013). Visualizing the flow of evidence in
network meta-analysis and characterizing mixed treatment comparisons. *Statistics in
Medicine*, 32(30), 5414-5429.

Higgins, J. P. T., Jackson, D., Barrett, J. K., et al. (2012). Consistency and
inconsistency in network meta-analysis: concepts and models for multi-arm studies.
*Research Synthesis Methods*, 3(2), 98-110.

Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package.
*Journal of Statistical Software*, 36(3), 1-48 (``rma.mv``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from metaan._dist import chi2_sf
from metaan._gls import BlockMatrix, Blocks, GLSFit, gls, likelihood_derivatives
from metaan.errors import ConvergenceError
from metaan.network._data import Contrasts
from metaan.network._table import FloatArray, IntArray, pairs_within

# The engine's safeguarded root finder (metaan.solver), through this one import.
from metaan.solver import solve_decreasing_scalar as solve_root  # isort: skip

__all__ = [
    "BasicContrasts",
    "Decomposition",
    "KrahnFits",
    "basic_contrasts",
    "decomposition",
    "likelihood_problem",
    "likelihood_score",
    "likelihood_tau2",
]


@dataclass(frozen=True)
class BasicContrasts:
    """Each study's arms against its baseline, as a GLS problem.

    ``y`` (K,) the effects of ``other`` versus ``base``, ``study`` their study,
    ``X`` (K, n - 1) the design (the reference treatment's column dropped), ``S`` the
    sampling covariance and ``Z`` the pattern of τ², both block-diagonal by study.
    """

    y: FloatArray
    other: IntArray
    base: IntArray
    study: IntArray
    X: FloatArray
    S: BlockMatrix
    Z: BlockMatrix


def _baselines(c: Contrasts, reference: int, fallback: Literal["first", "last"]) -> IntArray:
    """Each study's baseline: ``reference`` if it has that arm, else its first or last
    treatment in R's order."""
    base = np.empty(c.k, dtype=np.intp)
    for group in c.groups:
        has = np.any(group.arms == reference, axis=1)
        other = group.arms[:, 0] if fallback == "first" else group.arms[:, -1]
        base[group.studies] = np.where(has, reference, other)
    return base


def basic_contrasts(
    c: Contrasts,
    reference: int,
    *,
    fallback: Literal["first", "last"],
    covariance: bool,
) -> BasicContrasts:
    """Every study's contrasts against its baseline (see :func:`_baselines`).

    ``covariance`` gives a multi-arm study's contrasts their covariance from the
    comparison variances (Krahn's ``V.studies``); without it S is diagonal (netmeta's
    REML for comparison-level data).
    """
    base = _baselines(c, reference, fallback)[c.study]
    basic = np.flatnonzero((c.t1 == base) | (c.t2 == base))
    other = np.where(c.t1[basic] == base[basic], c.t2[basic], c.t1[basic])
    sign = np.where(c.t2[basic] == base[basic], 1.0, -1.0)
    # Within a study, basic contrasts in R's order of the other treatment.
    order = np.lexsort((other, c.study[basic]))
    basic, other, sign = basic[order], other[order], sign[order]
    study = c.study[basic]
    y = sign * c.y[basic]
    v = c.v[basic]
    blocks = Blocks.from_codes(study)
    i, j = pairs_within(study)
    diag = np.arange(basic.size)
    if covariance and i.size:
        key = c.study * c.n * c.n + c.pair()
        order = np.argsort(key)
        lo, hi = np.minimum(other[i], other[j]), np.maximum(other[i], other[j])
        wanted = study[i] * c.n * c.n + lo * c.n + hi
        between = order[np.searchsorted(key, wanted, sorter=order)]
        off = 0.5 * (v[i] + v[j] - c.v[between])
    else:
        off = np.zeros(i.size)
    S = BlockMatrix.from_entries(blocks, np.r_[diag, i], np.r_[diag, j], np.r_[v, off])
    Z = BlockMatrix.from_entries(
        blocks, np.r_[diag, i], np.r_[diag, j], np.r_[np.ones(diag.size), np.full(i.size, 0.5)]
    )
    X = np.zeros((basic.size, c.n))
    X[diag, other] = 1.0
    X[diag, base[basic]] = -1.0
    X = np.delete(X, reference, axis=1)
    return BasicContrasts(y, other, base[basic], study, X, S, Z)


def likelihood_score(problem: BasicContrasts, tau2: float, *, reml: bool) -> tuple[float, float]:
    """The REML (or ML) score in τ² and its derivative (the observed Hessian)."""
    fit = gls(problem.y, problem.X, problem.S.combine([tau2], [problem.Z]))
    der = likelihood_derivatives(fit, problem.X, [problem.Z], reml=reml)
    return float(der.score[0]), float(der.hessian[0, 0])


def likelihood_problem(c: Contrasts, reference: int) -> BasicContrasts:
    """The contrasts netmeta gives ``rma.mv`` for REML and ML (see the module
    docstring)."""
    return basic_contrasts(c, reference, fallback="last", covariance=False)


def likelihood_tau2(
    c: Contrasts, reference: int, *, reml: bool, start: float | None = None
) -> float | None:
    """netmeta's REML (or ML) estimate of τ² (see the module docstring): the root of
    the score, or 0 when the score is not positive there; None when the network has
    no residual degrees of freedom (as many basic contrasts as treatment effects).

    ``start`` (e.g. the DerSimonian-Laird estimate) only shortens the search: the
    solver brackets the root from there."""
    problem = likelihood_problem(c, reference)
    if problem.y.size <= problem.X.shape[1]:
        return None
    scale = float(np.var(problem.y)) + float(np.mean(problem.S.diagonal_values()))

    def score(t: float) -> tuple[float, float]:
        return likelihood_score(problem, t, reml=reml)

    root = solve_root(score, 0.0, scale, start=start)
    if math.isnan(root):
        raise ConvergenceError(
            f"the {'REML' if reml else 'ML'} score equation of tau^2 has no root for this "
            "network (the likelihood keeps rising with tau^2)"
        )
    return root


class KrahnFits:
    """GLS fits on basic contrasts with Krahn's baselines (the reference where a study
    has it, else its first treatment) and multi-arm covariances, each computed once."""

    def __init__(self, c: Contrasts) -> None:
        self.c = c
        self._problems: dict[int, BasicContrasts] = {}
        self._fits: dict[tuple[int, float], GLSFit] = {}

    def problem(self, reference: int) -> BasicContrasts:
        if reference not in self._problems:
            self._problems[reference] = basic_contrasts(
                self.c, reference, fallback="first", covariance=True
            )
        return self._problems[reference]

    def fit(self, reference: int, tau2: float) -> GLSFit:
        key = (reference, tau2)
        if key not in self._fits:
            p = self.problem(reference)
            V = p.S.combine([tau2], [p.Z]) if tau2 else p.S
            self._fits[key] = gls(p.y, p.X, V)
        return self._fits[key]

    def variance(self, tau2: float) -> FloatArray:
        """The variance of every treatment versus every other at τ² (n x n), as
        netmeta's ``nma_krahn()`` gives it for back-calculation (first treatment as
        reference)."""
        fit = self.fit(0, tau2)
        n = self.c.n
        full = np.zeros((n, n))
        full[1:, 1:] = fit.vcov
        d = np.diag(full)
        return np.maximum(d[:, None] + d[None, :] - 2.0 * full, 0.0)


@dataclass(frozen=True)
class Decomposition:
    """Q of the network split into heterogeneity within designs and inconsistency
    between designs (design-by-treatment decomposition)."""

    Q: float
    df: int
    Q_within: float
    df_within: int
    pval_within: float | None
    Q_between: float
    df_between: int
    pval_between: float | None
    #: One entry per design: its treatments, studies, Q within and its df.
    designs: tuple[tuple[tuple[str, ...], int, float, int], ...]


def _p(q: float, df: int) -> float | None:
    return chi2_sf(q, df) if df > 0 else None


def decomposition(krahn: KrahnFits, reference: int) -> Decomposition:
    """The decomposition of netmeta's ``decomp.design()`` (common-effect model)."""
    c = krahn.c
    problem, fit = krahn.problem(reference), krahn.fit(reference, 0.0)
    design = _designs(c)
    blocks = problem.S.blocks
    per_design: dict[int, tuple[float, int, int]] = {}
    Q_within = 0.0
    df_within = 0
    for rows, ids, V_inv in zip(blocks.rows, blocks.ids, fit.V_inv.values, strict=True):
        y = problem.y[rows]
        codes = design[ids]
        labels, which = np.unique(codes, return_inverse=True)
        m = rows.shape[1]
        P = np.zeros((labels.size, m, m))
        s = np.zeros((labels.size, m))
        np.add.at(P, which, V_inv)
        np.add.at(s, which, np.einsum("bij,bj->bi", V_inv, y))
        mu = np.linalg.solve(P, s[:, :, None])[:, :, 0]
        r = y - mu[which]
        q = np.einsum("bi,bij,bj->b", r, V_inv, r)
        q_design = np.bincount(which, weights=q, minlength=labels.size)
        count = np.bincount(which, minlength=labels.size)
        for d, qd, nd in zip(labels, q_design, count, strict=True):
            per_design[int(d)] = (float(qd), int(nd), int((nd - 1) * m))
        Q_within += float(q.sum())
        df_within += int(np.sum((count - 1) * m))
    df = int(problem.y.size - problem.X.shape[1])
    Q_between = fit.Q - Q_within
    df_between = df - df_within
    names = _design_names(c)
    table = tuple((names[d], nd, qd, dfd) for d, (qd, nd, dfd) in sorted(per_design.items()))
    return Decomposition(
        fit.Q,
        df,
        Q_within,
        df_within,
        _p(Q_within, df_within),
        Q_between,
        df_between,
        _p(Q_between, df_between),
        table,
    )


def _designs(c: Contrasts) -> IntArray:
    """A design number per study: studies of the same set of treatments share one."""
    out = np.empty(c.k, dtype=np.intp)
    offset = 0
    for group in c.groups:
        unique, which = np.unique(group.arms, axis=0, return_inverse=True)
        out[group.studies] = which.reshape(-1) + offset
        offset += unique.shape[0]
    return out


def _design_names(c: Contrasts) -> dict[int, tuple[str, ...]]:
    names: dict[int, tuple[str, ...]] = {}
    codes = _designs(c)
    for group in c.groups:
        unique, first = np.unique(codes[group.studies], return_index=True)
        for d, i in zip(unique, first, strict=True):
            names[int(d)] = tuple(c.treatments[int(a)] for a in group.arms[i])
    return names
