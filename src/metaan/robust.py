"""Cluster-robust (sandwich) inference for meta-analytic models.

For coefficients :math:`\\hat\\beta = M X^T W y` with :math:`M = (X^T W X)^{-1}` and
W the inverse of the model's marginal covariance, the sandwich estimator over
clusters j is

.. math:: V^{R} = M \\Big(\\sum_j X_j^T W_j A_j e_j e_j^T A_j W_j X_j\\Big) M.

- ``kind="CR1"`` is metafor's ``robust(x, cluster, adjust=TRUE)``: :math:`A_j = I`
  and the sum scaled by n / (n - p) for n clusters, with t-tests on n - p degrees
  of freedom and an F-test of the moderators on (m, n - p).
- ``kind="CR2"`` is clubSandwich's bias-reduced linearisation with the model as the
  working covariance :math:`\\Theta_j = W_j^{-1}`: :math:`A_j = R_j^T G_j^{-1/2} R_j`
  with :math:`\\Theta_j = R_j^T R_j` (Cholesky) and :math:`G_j = R_j(\\Theta_j - X_j M
  X_j^T)R_j^T` (eigenvalues below 1e-12 dropped from the inverse square root, as
  ``matrix_power`` does); t-tests with Satterthwaite degrees of freedom
  (``coef_test``) and the Hotelling-T^2-Z Wald test of several coefficients
  (``Wald_test(test="HTZ")``).

Every cluster is one small block: nothing larger than a cluster is ever formed, and
the degrees of freedom are computed from p x p sums over clusters.

References
----------
Hedges, L. V., Tipton, E., & Johnson, M. C. (2010). Robust variance estimation in
meta-regression with dependent effect size estimates. *Research Synthesis Methods*,
1, 39-65 (CR1's n / (n - p)).

Bell, R. M., & McCaffrey, D. F. (2002). Bias reduction in standard errors for
linear regression with multi-stage samples. *Survey Methodology*, 28, 169-181.

Tipton, E., & Pustejovsky, J. E. (2015). Small-sample adjustments for tests of
moderators and model fit using robust variance estimation in meta-regression.
*Journal of Educational and Behavioral Statistics*, 40, 604-634 (HTZ).

Pustejovsky, J. E., & Tipton, E. (2018). Small-sample methods for cluster-robust
variance estimation and hypothesis testing in fixed effects models. *Journal of
Business & Economic Statistics*, 36, 672-683 (clubSandwich 0.5: ``vcovCR``,
``coef_test``, ``Wald_test``).

Viechtbauer, W. (2022). metafor 3.8: ``robust.rma.mv``, ``robust.rma.uni``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from metaan._args import refuse_unused
from metaan._base import Result
from metaan._dist import f_sf, t_isf, t_sf
from metaan._format import fmt, fmt_p, p_equals
from metaan._gls import BlockMatrix, Blocks
from metaan._json import json_number
from metaan._mvdata import codes_of
from metaan._mvresult import MultilevelResult, coefficient_frame, coefficient_records
from metaan.errors import InputError, NotEstimableError
from metaan.io import spreadsheet_rows
from metaan.regression import MetaRegressionResult
from metaan.results import MetaResult

__all__ = ["KINDS", "RobustResult", "WaldTest", "robust"]

FloatArray = npt.NDArray[np.float64]
KINDS = ("CR1", "CR2")


@dataclass(frozen=True, repr=False)
class WaldTest(Result):
    """A robust test that several coefficients are 0: F with (df_num, df_denom)."""

    coefs: tuple[str, ...]
    Fstat: float
    df_num: int
    df_denom: float
    pval: float
    test: str

    def _short(self) -> str:
        return (
            f"{self.test} F({self.df_num}, {self.df_denom:.4g})={self.Fstat:.4g} p={self.pval:.4g}"
        )

    def to_frame(self) -> pd.DataFrame:
        """The test as a one-row table (the coefficients joined by commas)."""
        return pd.DataFrame([{**self.to_dict(), "coefs": ", ".join(self.coefs)}])

    def summary(self) -> str:
        """The test in one line."""
        return (
            f"Robust Wald test ({self.test}) of {', '.join(self.coefs)}: F({self.df_num}, "
            f"{fmt(self.df_denom, 2)}) = {fmt(self.Fstat)}, {p_equals(self.pval)}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Every number, JSON-ready."""
        return {
            "coefs": list(self.coefs),
            "Fstat": json_number(self.Fstat),
            "df_num": self.df_num,
            "df_denom": json_number(self.df_denom),
            "pval": json_number(self.pval),
            "test": self.test,
        }


@dataclass(frozen=True)
class _Pieces:
    """Per-cluster arrays behind the CR2 degrees of freedom: G_j (p x n_j) and
    H_j (p x p) of clubSandwich's ``get_GH``, stacked by cluster size."""

    G: tuple[FloatArray, ...]
    ids: tuple[npt.NDArray[np.intp], ...]
    H: FloatArray

    def per_cluster(self, f: Any) -> FloatArray:
        """``f`` of each G stack, rearranged into cluster order (as H is)."""
        first = f(self.G[0])
        out = np.empty((self.H.shape[0], *first.shape[1:]))
        for G, ids in zip(self.G, self.ids, strict=True):
            out[ids] = f(G)
        return out


@dataclass(frozen=True, eq=False, repr=False)
class RobustResult(Result):
    """Cluster-robust coefficients, standard errors, tests and intervals.

    ``df`` holds one degrees-of-freedom value per coefficient (n - p for CR1, the
    Satterthwaite value for CR2); ``wald`` tests the model's moderators.
    """

    kind: str
    cluster: str
    n_clusters: int
    names: tuple[str, ...]
    coef: FloatArray
    se: FloatArray
    stat: FloatArray
    df: FloatArray
    pval: FloatArray
    ci_lb: FloatArray
    ci_ub: FloatArray
    vcov: FloatArray
    level: float
    wald: WaldTest | None
    pieces: _Pieces | None = field(default=None, repr=False)

    def wald_test(self, coefs: Sequence[int | str]) -> WaldTest:
        """The robust Wald test that the coefficients ``coefs`` (positions or
        names) are all 0: HTZ for CR2, F on (m, n - p) for CR1."""
        idx = tuple(self.names.index(c) if isinstance(c, str) else int(c) for c in coefs)
        if not idx or len(set(idx)) != len(idx):
            raise InputError("name each coefficient to test once")
        return _wald(self, idx)

    def _short(self) -> str:
        return (
            f"{self.kind} clusters={self.n_clusters} "
            f"{self.names[0]}={self.coef[0]:.4g} se={self.se[0]:.4g}"
        )

    def to_frame(self) -> pd.DataFrame:
        """The robust coefficient table."""
        return coefficient_frame(self, self.df)

    def to_dict(self) -> dict[str, Any]:
        """Every number, JSON-ready."""
        rows = coefficient_records(self.to_frame())
        return {
            "kind": self.kind,
            "cluster": self.cluster,
            "n_clusters": self.n_clusters,
            "level": self.level,
            "coefficients": rows,
            "wald": None if self.wald is None else self.wald.to_dict(),
        }

    def summary(self) -> str:
        """The robust coefficient table and the test of the moderators."""
        what = "CR1, t(n - p)" if self.kind == "CR1" else "CR2, Satterthwaite t"
        lines = [f"Cluster-robust inference ({what}); {self.n_clusters} clusters ({self.cluster})"]
        width = max(len(n) for n in self.names)
        lines.append(
            f"{'':<{width}} {'estimate':>10} {'se':>9} {'t':>9} {'df':>7} {'pval':>8} "
            f"{'ci.lb':>10} {'ci.ub':>10}"
        )
        for j, name in enumerate(self.names):
            lines.append(
                f"{name:<{width}} {fmt(self.coef[j]):>10} {fmt(self.se[j]):>9} "
                f"{fmt(self.stat[j], 3):>9} {fmt(self.df[j], 2):>7} {fmt_p(self.pval[j]):>8} "
                f"{fmt(self.ci_lb[j]):>10} {fmt(self.ci_ub[j]):>10}"
            )
        if self.wald is not None:
            w = self.wald
            lines.append(
                f"Test of moderators ({w.test}): F({w.df_num}, {fmt(w.df_denom, 2)}) = "
                f"{fmt(w.Fstat)}, {p_equals(w.pval)}"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class _Model:
    """What a sandwich needs from a fitted model."""

    X: FloatArray
    resid: FloatArray
    coef: FloatArray
    M: FloatArray
    theta: BlockMatrix
    names: tuple[str, ...]
    btt: tuple[int, ...]
    level: float
    rows: tuple[int | None, ...]
    labels: tuple[str, ...]
    clusters: dict[str, np.ndarray]
    default_cluster: str | None


def _from_multilevel(res: MultilevelResult) -> _Model:
    state = res.state
    assert state.fit is not None
    theta = state.model.covariance(state.structure, state.phi)
    default = state.level_names[0]
    return _Model(
        state.model.X, state.fit.resid, res.coef, state.fit.vcov, theta, res.names, res.btt,
        res.level, res.rows, res.labels, state.clusters, default,
    )  # fmt: skip


def _from_univariate(res: MetaResult | MetaRegressionResult) -> _Model:
    if isinstance(res, MetaResult):
        if res.method in {"MH", "PETO"}:
            raise InputError(f"robust inference needs an inverse-variance model, not {res.method}")
        X = np.ones((res.k, 1))
        coef = np.array([res.estimate])
        names: tuple[str, ...] = ("intrcpt",)
        btt: tuple[int, ...] = (0,)
        tau2 = res.tau2 if res.model == "random" and res.tau2 is not None else 0.0
    else:
        X, coef, names, btt = res.X, res.coef, res.names, res.btt
        tau2 = res.tau2 if res.method != "EE" else 0.0
    total = res.vi + tau2
    w = 1.0 / total
    M = np.asarray(np.linalg.inv(X.T @ (w[:, None] * X)), dtype=np.float64)
    blocks = Blocks.from_codes(np.arange(res.k))
    theta = BlockMatrix.diagonal(blocks, total)
    resid = res.yi - X @ coef
    return _Model(
        X, resid, coef, M, theta, names, btt, res.level, tuple(res.rows), tuple(res.labels), {},
        None,
    )  # fmt: skip


def _cluster_codes(
    model: _Model, cluster: Any, data: pd.DataFrame | None
) -> tuple[npt.NDArray[np.intp], str]:
    """One cluster code per fitted effect, and the cluster's name."""
    k = model.X.shape[0]
    if cluster is None:
        if model.default_cluster is None:
            raise InputError("give the cluster of each effect", fix="e.g. cluster='study'")
        cluster = model.default_cluster
    if data is not None and not (isinstance(cluster, str) and cluster not in model.clusters):
        refuse_unused(
            "data is read only for a cluster column that is not a level of the model", data=data
        )
    if isinstance(cluster, str) and cluster in model.clusters:
        return codes_of(model.clusters[cluster]), cluster
    if isinstance(cluster, str):
        if data is None or cluster not in data.columns:
            raise InputError(
                f"there is no cluster column {cluster!r}",
                column=cluster,
                fix="name a level of the model, or pass the table with data=",
            )
        where = {int(r): i for i, r in enumerate(spreadsheet_rows(data))}
        values = data[cluster].to_numpy()
        picked = [
            values[where[int(r)]] if r is not None and int(r) in where else None for r in model.rows
        ]
        if any(v is None or pd.isna(v) for v in picked):
            raise InputError(f"the cluster {cluster!r} is missing for an effect", column=cluster)
        return codes_of(picked), cluster
    values = np.asarray(cluster, dtype=object).reshape(-1)
    if values.size != k:
        raise InputError(f"cluster has {values.size} values but the model has {k} effects")
    if pd.isna(pd.Series(values)).any():
        raise InputError("a cluster value is missing")
    return codes_of(values), "cluster"


def _check_nesting(model: _Model, codes: npt.NDArray[np.intp], name: str) -> None:
    """Each block of the model's covariance must lie within one cluster
    (clubSandwich: the random effects must be nested within the clusters)."""
    block = model.theta.blocks.block_of_row()
    order = np.lexsort((codes, block))
    b, c = block[order], codes[order]
    split = np.flatnonzero((b[1:] == b[:-1]) & (c[1:] != c[:-1]))
    if split.size:
        i = int(order[split[0] + 1])
        raise InputError(
            f"the effects of one group of the model lie in more than one {name} cluster, so "
            f"the clusters are not independent under the model (a level does not nest "
            f"within the clusters)",
            row=model.rows[i],
            study=model.labels[i],
            fix="cluster by the outermost level (e.g. the study), or by a coarser grouping",
        )


def robust(
    result: MultilevelResult | MetaResult | MetaRegressionResult,
    *,
    cluster: str | npt.ArrayLike | None = None,
    kind: str = "CR2",
    data: pd.DataFrame | None = None,
) -> RobustResult:
    """Cluster-robust tests of a fitted model's coefficients.

    Parameters
    ----------
    result
        A multilevel or multivariate fit, a random- or common-effect fit
        (:func:`metaan.fit`) or a meta-regression (:func:`metaan.fit_regression`).
    cluster
        A level of a multilevel model, one value per fitted effect, or a column of
        ``data`` (the table the univariate model was fitted to, matched by row).
        Default: the outermost level (the study of a multivariate model).
    kind
        ``"CR1"`` (metafor's ``robust``) or ``"CR2"`` (clubSandwich).

    Raises
    ------
    InputError
        An unknown kind or cluster, clusters the model's groups do not nest in, or
        under CR2 a cluster whose effects alone determine a coefficient (its
        adjustment is then undefined).
    NotEstimableError
        Fewer clusters than coefficients + 1.
    """
    kind = kind.upper()
    if kind not in KINDS:
        raise InputError(f"kind must be CR1 or CR2, not {kind!r}")
    model = (
        _from_multilevel(result)
        if isinstance(result, MultilevelResult)
        else _from_univariate(result)
    )
    codes, name = _cluster_codes(model, cluster, data)
    _check_nesting(model, codes, name)
    n = int(codes.max()) + 1
    p = model.X.shape[1]
    if n - p <= 0:
        raise NotEstimableError(
            f"the number of clusters ({n}) must be larger than the number of coefficients ({p})"
        )
    blocks = Blocks.from_codes(codes)
    theta = BlockMatrix.from_entries(blocks, *model.theta.entries())
    if kind == "CR1":
        return _cr1(model, blocks, theta, n, name)
    return _cr2(model, blocks, theta, n, name)


def _meat_cr1(model: _Model, blocks: Blocks, theta: BlockMatrix) -> FloatArray:
    p = model.X.shape[1]
    meat = np.zeros((p, p))
    for rows, th in zip(blocks.rows, theta.values, strict=True):
        w = np.linalg.inv(th)
        u = np.einsum("bmp,bmn,bn->bp", model.X[rows], w, model.resid[rows])
        meat += u.T @ u
    return meat


def _finish(
    model: _Model,
    kind: str,
    vcov: FloatArray,
    df: FloatArray,
    name: str,
    n: int,
    pieces: _Pieces | None,
) -> RobustResult:
    se = np.sqrt(np.diag(vcov))
    stat = model.coef / se
    alpha = 1.0 - model.level / 100.0
    pval = np.array([2.0 * t_sf(abs(float(s)), float(d)) for s, d in zip(stat, df, strict=True)])
    crit = np.array([t_isf(alpha / 2.0, float(d)) for d in df])
    out = RobustResult(
        kind, name, n, model.names, model.coef, se, stat, df, pval,
        model.coef - crit * se, model.coef + crit * se, vcov, model.level, None, pieces,
    )  # fmt: skip
    return out.__class__(**{**out.__dict__, "wald": _wald(out, model.btt)})


def _cr1(model: _Model, blocks: Blocks, theta: BlockMatrix, n: int, name: str) -> RobustResult:
    p = model.X.shape[1]
    meat = _meat_cr1(model, blocks, theta)
    vcov = (n / (n - p)) * (model.M @ meat @ model.M)
    return _finish(model, "CR1", vcov, np.full(p, float(n - p)), name, n, None)


def _inverse_sqrt(G: FloatArray) -> FloatArray:
    """G^(-1/2) of a stack of symmetric matrices, eigenvalues <= 1e-12 dropped."""
    w, U = np.linalg.eigh(G)
    inv = np.where(w > 1e-12, 1.0 / np.sqrt(np.where(w > 1e-12, w, 1.0)), 0.0)
    return np.asarray(np.einsum("bij,bj,bkj->bik", U, inv, U), dtype=np.float64)


def _cr2(model: _Model, blocks: Blocks, theta: BlockMatrix, n: int, name: str) -> RobustResult:
    p = model.X.shape[1]
    M = model.M
    L_M = np.linalg.cholesky(M)
    meat = np.zeros((p, p))
    G_parts: list[FloatArray] = []
    H = np.empty((n, p, p))
    for rows, ids, th in zip(blocks.rows, blocks.ids, theta.values, strict=True):
        X = model.X[rows]
        L = np.linalg.cholesky(th)  # Theta = L L^T, R = L^T
        R = np.swapaxes(L, 1, 2)
        W = np.linalg.inv(th)
        G = R @ (th - X @ M @ np.swapaxes(X, 1, 2)) @ L
        G = 0.5 * (G + np.swapaxes(G, 1, 2))
        _check_adjustable(model, rows, G)
        A = L @ _inverse_sqrt(G) @ R
        E = np.swapaxes(X, 1, 2) @ W @ A  # (b, p, m)
        u = np.einsum("bpm,bm->bp", E, model.resid[rows])
        meat += u.T @ u
        ME = M @ E
        G_parts.append(ME @ L)
        H[ids] = ME @ X @ L_M
    vcov = M @ meat @ M
    pieces = _Pieces(tuple(G_parts), tuple(blocks.ids), H)
    df = np.array([_satterthwaite(pieces, i) for i in range(p)])
    return _finish(model, "CR2", vcov, df, name, n, pieces)


def _check_adjustable(model: _Model, rows: npt.NDArray[np.intp], G: FloatArray) -> None:
    """Refuse a cluster whose effects are fitted exactly whatever the data (leverage
    1: G_j = 0), such as a single effect with a moderator level of its own: its
    residuals are always 0, CR2 has nothing to adjust, and the coefficient it
    determines gets no robust standard error. (A G_j that is only partly singular
    is inverted on its non-zero eigenvalues, as clubSandwich does.)"""
    w = np.linalg.eigvalsh(G)
    scale = max(float(np.max(np.abs(model.theta.diagonal_values()))), 1e-300)
    bad = np.flatnonzero(np.max(np.abs(w), axis=1) <= 1e-10 * scale)
    if bad.size:
        first = rows[int(bad[0])]
        what = "the cluster's only effect" if first.size == 1 else f"all {first.size} effects"
        spread = ", ".join(str(model.rows[int(i)]) for i in first[:8])
        raise InputError(
            f"CR2 is undefined: {what} (rows {spread}) are fitted exactly by a coefficient "
            "that no other cluster informs, so its residuals carry no information",
            row=model.rows[int(first[0])],
            study=model.labels[int(first[0])],
            fix="use CR1, or drop the moderator level that only this cluster has",
        )


def _satterthwaite(pieces: _Pieces, i: int) -> float:
    """clubSandwich's Satterthwaite df of coefficient i, 2 E^2 / V with E = tr(P) and
    V = 2 sum(P^2), where P = diag(g) - h^T h has g_j = |G_j[i]|^2 and the columns
    h_j = H_j[i] (clubSandwich's ``get_P_array``); both sums are taken over
    clusters without forming P."""
    g = pieces.per_cluster(lambda G: np.sum(G[:, i, :] ** 2, axis=1))
    h = pieces.H[:, i, :]
    hh = np.sum(h * h, axis=1)
    trace = float(np.sum(g) - np.sum(hh))
    T = h.T @ h
    square = float(np.sum(g**2) - 2.0 * np.sum(g * hh) + np.sum(T * T))
    return trace * trace / square


def _wald(res: RobustResult, idx: tuple[int, ...]) -> WaldTest:
    names = tuple(res.names[i] for i in idx)
    b = res.coef[list(idx)]
    V = res.vcov[np.ix_(idx, idx)]
    Q = float(b @ np.linalg.solve(V, b))
    q = len(idx)
    if res.kind == "CR1":
        df = float(res.df[0])
        F = Q / q
        return WaldTest(names, F, q, df, float(f_sf(F, q, df)), "F")
    assert res.pieces is not None
    nu = _htz_nu(res.pieces, idx)
    delta = max((nu - q + 1.0) / nu, 0.0)
    df = nu - q + 1.0
    F = delta * Q / q
    pval = float(f_sf(F, q, df)) if df > 0.0 else math.nan
    return WaldTest(names, F, q, df, pval, "HTZ")


def _htz_nu(pieces: _Pieces, idx: tuple[int, ...]) -> float:
    """The HTZ degrees of freedom nu = q (q + 1) / sum(Var) of clubSandwich's
    ``Wald_testing``, from per-cluster q x q sums (see the module docstring)."""
    sel = list(idx)
    Hc = pieces.H[:, sel, :]
    a = pieces.per_cluster(lambda G: np.einsum("bsm,btm->bst", G[:, sel, :], G[:, sel, :]))
    b = np.einsum("bsu,btu->bst", Hc, Hc)
    omega = a.sum(axis=0) - b.sum(axis=0)
    w, U = np.linalg.eigh(omega)
    root = U @ np.diag(np.where(w > 1e-12, 1.0 / np.sqrt(np.where(w > 1e-12, w, 1.0)), 0.0)) @ U.T
    a = root @ a @ root
    b = root @ b @ root
    Hn = np.einsum("st,btu->bsu", root, Hc)
    T = np.einsum("bsu,btv->sutv", Hn, Hn)
    diag_a = np.einsum("bss->bs", a)
    diag_b = np.einsum("bss->bs", b)
    first = (
        np.einsum("bst,bst->st", a, a)
        - np.einsum("bst,bts->st", a, b)
        - np.einsum("bst,bst->st", a, b)
        + np.einsum("sutv,tusv->st", T, T)
    )
    second = (
        np.einsum("bs,bt->st", diag_a, diag_a)
        - np.einsum("bs,bt->st", diag_a, diag_b)
        - np.einsum("bs,bt->st", diag_b, diag_a)
        + np.einsum("sutv,sutv->st", T, T)
    )
    q = len(idx)
    return q * (q + 1) / float(np.sum(first + second))
