"""Generalised least squares with a block-diagonal covariance, and the derivatives
of its (restricted) log-likelihood in linear variance parameters.

This is the core that every model with correlated effect sizes stands on: a
network meta-analysis (contrasts of a multi-arm trial share a block), a multilevel
model (effects of one study share a block) and a multivariate model (outcomes of a
study share a block). The marginal covariance is

.. math:: V(\\theta) = S + \\sum_j \\theta_j Z_j,

with the sampling covariance :math:`S` and every :math:`Z_j` block-diagonal on the
same blocks. Nothing k x k is ever formed: blocks are grouped by size and each
group is factorised at once as a stack of small matrices, so a fit costs
:math:`O(\\sum_b m_b^3)` time and :math:`O(\\sum_b m_b^2)` memory.

For the projection :math:`P = V^{-1} - V^{-1} X A^{-1} X^T V^{-1}` with
:math:`A = X^T V^{-1} X` and the residuals :math:`r = y - X\\hat\\beta` (so that
:math:`P y = V^{-1} r`), the log-likelihoods profiled over :math:`\\beta` are

.. math::

    \\ell_{ML} &= -\\tfrac12 \\left(k \\log 2\\pi + \\log|V| + r^T V^{-1} r\\right)\\\\
    \\ell_{REML} &= -\\tfrac12 \\left((k-p) \\log 2\\pi - \\log|X^T X| + \\log|V|
        + \\log|A| + r^T V^{-1} r\\right),

where the constant :math:`\\log|X^T X|` makes the restricted likelihood invariant to
a reparametrisation of :math:`X` (metafor includes it too, so log-likelihoods, AIC and
BIC are comparable with its output). Because
:math:`\\partial V / \\partial\\theta_j = Z_j` is constant,

.. math::

    \\partial_j \\ell_{REML} &= -\\tfrac12 \\mathrm{tr}(P Z_j)
        + \\tfrac12 y^T P Z_j P y,\\\\
    \\partial_i \\partial_j \\ell_{REML} &= \\tfrac12 \\mathrm{tr}(P Z_i P Z_j)
        - y^T P Z_i P Z_j P y,

with :math:`V^{-1}` in place of :math:`P` in the trace terms for ML. The expected
information is the trace term alone. Traces of :math:`P` products are expanded into
block sums and p x p matrices, as in :mod:`metaan.estimators` for the diagonal case.

References
----------
Harville, D. A. (1977). Maximum likelihood approaches to variance component
estimation and to related problems. *Journal of the American Statistical
Association*, 72(358), 320-338.

Searle, S. R., Casella, G., & McCulloch, C. E. (1992). *Variance Components*.
Wiley, chapter 6.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from metaan.errors import NotEstimableError

__all__ = [
    "BlockMatrix",
    "Blocks",
    "GLSFit",
    "LikelihoodDerivatives",
    "NotPositiveDefiniteError",
    "gls",
    "likelihood_derivatives",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

_LOG_2PI = math.log(2.0 * math.pi)


class NotPositiveDefiniteError(NotEstimableError):
    """A block of the marginal covariance is not positive definite.

    ``block`` is the block's number (see :class:`Blocks`), so that the caller can
    name the cluster and the rows of the user's table it came from.
    """

    def __init__(self, block: int, message: str) -> None:
        self.block = block
        super().__init__(message)


@dataclass(frozen=True)
class Blocks:
    """A partition of k rows into blocks, with the blocks grouped by size.

    Blocks are numbered in the order of their first row; within a block, rows keep
    their original order. For each block size ``m`` there is one group:
    ``rows[g]`` is an ``(n_g, m)`` array of original row numbers and ``ids[g]`` the
    block numbers of its ``n_g`` blocks.
    """

    k: int
    n_blocks: int
    rows: tuple[IntArray, ...]
    ids: tuple[IntArray, ...]

    @classmethod
    def from_labels(cls, labels: npt.ArrayLike) -> Blocks:
        """Blocks of the rows that share a label (any hashable, sortable values)."""
        values = np.asarray(labels)
        k = values.shape[0]
        if k == 0:
            return cls(0, 0, (), ())
        _, first, inverse = np.unique(values, return_index=True, return_inverse=True)
        # Renumber blocks by first appearance, so the numbering follows the data.
        rank = np.empty(first.shape[0], dtype=np.intp)
        rank[np.argsort(first, kind="stable")] = np.arange(first.shape[0])
        return cls.from_codes(rank[inverse.reshape(-1)])

    @classmethod
    def from_codes(cls, codes: npt.ArrayLike) -> Blocks:
        """Blocks from integer block numbers 0..n-1 per row (every number used)."""
        code = np.asarray(codes, dtype=np.intp)
        k = code.shape[0]
        n_blocks = int(code.max()) + 1 if k else 0
        order = np.argsort(code, kind="stable")
        sizes = np.bincount(code, minlength=n_blocks)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        rows: list[IntArray] = []
        ids: list[IntArray] = []
        for m in np.unique(sizes):
            block_ids = np.flatnonzero(sizes == m).astype(np.intp)
            index = starts[block_ids][:, None] + np.arange(m)[None, :]
            rows.append(order[index].astype(np.intp))
            ids.append(block_ids)
        return cls(k, n_blocks, tuple(rows), tuple(ids))

    @property
    def sizes(self) -> tuple[int, ...]:
        """The block size of each group."""
        return tuple(int(r.shape[1]) for r in self.rows)

    def block_of_row(self) -> IntArray:
        """The block number of every row."""
        out = np.empty(self.k, dtype=np.intp)
        for rows, ids in zip(self.rows, self.ids, strict=True):
            out[rows] = ids[:, None]
        return out

    def gather(self, x: npt.ArrayLike) -> tuple[FloatArray, ...]:
        """``x`` (k, ...) arranged per group as ``(n_g, m, ...)``."""
        arr = np.asarray(x, dtype=np.float64)
        return tuple(arr[rows] for rows in self.rows)

    def scatter(self, parts: Sequence[FloatArray]) -> FloatArray:
        """The inverse of :meth:`gather`: per-group ``(n_g, m, ...)`` back to (k, ...)."""
        tail = parts[0].shape[2:] if parts else ()
        out = np.empty((self.k, *tail), dtype=np.float64)
        for rows, part in zip(self.rows, parts, strict=True):
            out[rows] = part
        return out


@dataclass(frozen=True)
class BlockMatrix:
    """A symmetric k x k matrix that is zero outside the blocks of ``blocks``.

    ``values[g]`` holds the ``(n_g, m, m)`` blocks of group ``g``, rows and columns
    in the order of ``blocks.rows[g]``.
    """

    blocks: Blocks
    values: tuple[FloatArray, ...]

    @classmethod
    def diagonal(cls, blocks: Blocks, d: npt.ArrayLike) -> BlockMatrix:
        """The diagonal matrix with ``d`` (k,) on its diagonal."""
        parts = blocks.gather(d)
        return cls(blocks, tuple(p[:, :, None] * np.eye(p.shape[1]) for p in parts))

    @classmethod
    def from_entries(
        cls, blocks: Blocks, i: npt.ArrayLike, j: npt.ArrayLike, x: npt.ArrayLike
    ) -> BlockMatrix:
        """The symmetric matrix with entries ``x`` at ``(i, j)`` and ``(j, i)``.

        Raises ``ValueError`` if an entry lies outside the blocks.
        """
        ii = np.asarray(i, dtype=np.intp)
        jj = np.asarray(j, dtype=np.intp)
        xx = np.asarray(x, dtype=np.float64)
        group, block, pos = _locate(blocks)
        if np.any(group[ii] != group[jj]) or np.any(block[ii] != block[jj]):
            bad = int(np.flatnonzero((group[ii] != group[jj]) | (block[ii] != block[jj]))[0])
            raise ValueError(
                f"entry ({ii[bad]}, {jj[bad]}) links rows of different blocks; "
                "a covariance can only join rows of one cluster"
            )
        values = [np.zeros((r.shape[0], r.shape[1], r.shape[1])) for r in blocks.rows]
        for g, val in enumerate(values):
            sel = group[ii] == g
            b, a, c = block[ii[sel]], pos[ii[sel]], pos[jj[sel]]
            val[b, a, c] = xx[sel]
            val[b, c, a] = xx[sel]
        return cls(blocks, tuple(values))

    @classmethod
    def indicator(cls, blocks: Blocks, labels: npt.ArrayLike) -> BlockMatrix:
        """1 where two rows of one block share a label, else 0 (``Z Z^T`` of a
        random effect whose levels are ``labels``, nested in the blocks)."""
        codes = np.unique(np.asarray(labels), return_inverse=True)[1].reshape(-1)
        parts = blocks.gather(codes)
        return cls(
            blocks,
            tuple((p[:, :, None] == p[:, None, :]).astype(np.float64) for p in parts),
        )

    def combine(self, coefficients: Sequence[float], others: Sequence[BlockMatrix]) -> BlockMatrix:
        """``self + sum_j coefficients[j] * others[j]`` (all on the same blocks)."""
        values = [v.copy() for v in self.values]
        for c, other in zip(coefficients, others, strict=True):
            if c != 0.0:
                for g, v in enumerate(other.values):
                    values[g] += c * v
        return BlockMatrix(self.blocks, tuple(values))

    def diagonal_values(self) -> FloatArray:
        """The diagonal, as a (k,) array in row order."""
        return self.blocks.scatter([np.diagonal(v, axis1=1, axis2=2) for v in self.values])

    def entries(self) -> tuple[IntArray, IntArray, FloatArray]:
        """The non-zero entries on and above the diagonal as row, column, value,
        sorted by row then column."""
        rows_out: list[IntArray] = []
        cols_out: list[IntArray] = []
        vals_out: list[FloatArray] = []
        for rows, val in zip(self.blocks.rows, self.values, strict=True):
            a = np.broadcast_to(rows[:, :, None], val.shape)
            b = np.broadcast_to(rows[:, None, :], val.shape)
            keep = (a <= b) & (val != 0.0)
            rows_out.append(a[keep])
            cols_out.append(b[keep])
            vals_out.append(val[keep])
        r = np.concatenate(rows_out) if rows_out else np.empty(0, dtype=np.intp)
        c = np.concatenate(cols_out) if cols_out else np.empty(0, dtype=np.intp)
        v = np.concatenate(vals_out) if vals_out else np.empty(0)
        order = np.lexsort((c, r))
        return r[order].astype(np.intp), c[order].astype(np.intp), v[order]

    def to_sparse(self) -> object:
        """The matrix as a ``scipy.sparse.csr_array`` (k x k, only the blocks stored)."""
        from scipy import sparse

        r, c, v = self.entries()
        off = r != c
        rows = np.concatenate([r, c[off]])
        cols = np.concatenate([c, r[off]])
        vals = np.concatenate([v, v[off]])
        k = self.blocks.k
        return sparse.csr_array((vals, (rows, cols)), shape=(k, k))


def _locate(blocks: Blocks) -> tuple[IntArray, IntArray, IntArray]:
    """For every row: its size group, its block's index within the group, and its
    position within the block."""
    group = np.empty(blocks.k, dtype=np.intp)
    block = np.empty(blocks.k, dtype=np.intp)
    pos = np.empty(blocks.k, dtype=np.intp)
    for g, rows in enumerate(blocks.rows):
        n, m = rows.shape
        group[rows] = g
        block[rows] = np.arange(n)[:, None]
        pos[rows] = np.arange(m)[None, :]
    return group, block, pos


@dataclass(frozen=True)
class GLSFit:
    """The generalised least-squares fit of ``y`` on ``X`` with covariance ``V``.

    Attributes
    ----------
    beta, vcov
        The coefficients and their covariance :math:`A^{-1} = (X^T V^{-1} X)^{-1}`.
    resid
        :math:`r = y - X \\hat\\beta`, in row order.
    Q
        :math:`r^T V^{-1} r`, the generalised residual sum of squares.
    logdet_V, logdet_A, logdet_XtX
        :math:`\\log|V|`, :math:`\\log|X^T V^{-1} X|` and :math:`\\log|X^T X|`.
    V_inv
        The blocks of :math:`V^{-1}`.
    """

    beta: FloatArray
    vcov: FloatArray
    resid: FloatArray
    Q: float
    logdet_V: float
    logdet_A: float
    logdet_XtX: float
    V_inv: BlockMatrix
    k: int
    p: int

    def loglik(self, *, reml: bool) -> float:
        """The log-likelihood (ML) or restricted log-likelihood (REML), profiled
        over the coefficients (see the module docstring)."""
        if reml:
            n = self.k - self.p
            return -0.5 * (n * _LOG_2PI - self.logdet_XtX + self.logdet_V + self.logdet_A + self.Q)
        return -0.5 * (self.k * _LOG_2PI + self.logdet_V + self.Q)


def _invert_blocks(V: BlockMatrix) -> tuple[tuple[FloatArray, ...], float]:
    """Inverse of every block and ``log|V|``, refusing a block that is not
    positive definite."""
    inverses: list[FloatArray] = []
    logdet = 0.0
    for ids, val in zip(V.blocks.ids, V.values, strict=True):
        try:
            chol = np.linalg.cholesky(val)
        except np.linalg.LinAlgError:
            smallest = np.linalg.eigvalsh(val)[:, 0]
            bad = int(ids[int(np.argmin(smallest))])
            raise NotPositiveDefiniteError(
                bad, f"the covariance of block {bad} is not positive definite"
            ) from None
        diag = np.diagonal(chol, axis1=1, axis2=2)
        if np.any(diag <= 0.0) or not np.all(np.isfinite(diag)):
            bad = int(ids[int(np.argmin(np.where(np.isfinite(diag), diag, -np.inf).min(1)))])
            raise NotPositiveDefiniteError(
                bad, f"the covariance of block {bad} is not positive definite"
            )
        logdet += 2.0 * float(np.log(diag).sum())
        half = np.linalg.inv(chol)  # L^{-1}
        inverses.append(np.matmul(np.swapaxes(half, 1, 2), half))
    return tuple(inverses), logdet


def gls(y: npt.ArrayLike, X: npt.ArrayLike, V: BlockMatrix) -> GLSFit:
    """Fit ``y = X beta + e`` with ``cov(e) = V`` block-diagonal.

    Parameters
    ----------
    y
        (k,) responses.
    X
        (k, p) design matrix of full column rank.
    V
        The covariance, block-diagonal on ``V.blocks``.

    Raises
    ------
    NotPositiveDefiniteError
        If a block of ``V`` is not positive definite.
    NotEstimableError
        If :math:`X^T V^{-1} X` is singular.
    """
    yy = np.asarray(y, dtype=np.float64)
    XX = np.asarray(X, dtype=np.float64)
    k, p = XX.shape
    inverses, logdet_V = _invert_blocks(V)
    A = np.zeros((p, p))
    c = np.zeros(p)
    for rows, vi in zip(V.blocks.rows, inverses, strict=True):
        Xg = XX[rows]
        VX = np.matmul(vi, Xg)
        A += np.einsum("bmp,bmq->pq", Xg, VX)
        c += np.einsum("bmp,bm->p", VX, yy[rows])
    try:
        chol_A = np.linalg.cholesky(A)
    except np.linalg.LinAlgError:
        raise NotEstimableError(
            "the model's coefficients are not identifiable from these data "
            "(X^T V^-1 X is singular); remove redundant moderators"
        ) from None
    vcov = np.linalg.inv(A)
    vcov = 0.5 * (vcov + vcov.T)
    beta: FloatArray = np.linalg.solve(A, c).astype(np.float64)
    resid = yy - XX @ beta
    Q = 0.0
    for rows, vi in zip(V.blocks.rows, inverses, strict=True):
        rg = resid[rows]
        Q += float(np.einsum("bm,bmn,bn->", rg, vi, rg))
    logdet_A = 2.0 * float(np.log(np.diagonal(chol_A)).sum())
    logdet_XtX = float(np.linalg.slogdet(XX.T @ XX)[1])
    V_inv = BlockMatrix(V.blocks, inverses)
    return GLSFit(beta, vcov, resid, Q, logdet_V, logdet_A, logdet_XtX, V_inv, k, p)


@dataclass(frozen=True)
class LikelihoodDerivatives:
    """First and second derivatives of a profiled log-likelihood in the linear
    variance parameters :math:`\\theta`.

    Attributes
    ----------
    score
        (q,) gradient.
    hessian
        (q, q) observed second derivatives (negative definite at an interior
        maximum).
    information
        (q, q) expected (Fisher) information, :math:`\\tfrac12 \\mathrm{tr}(P Z_i P Z_j)`
        (REML) or :math:`\\tfrac12 \\mathrm{tr}(V^{-1} Z_i V^{-1} Z_j)` (ML).
    """

    score: FloatArray
    hessian: FloatArray
    information: FloatArray


def likelihood_derivatives(
    fit: GLSFit, X: npt.ArrayLike, Z: Sequence[BlockMatrix], *, reml: bool
) -> LikelihoodDerivatives:
    """Exact derivatives of ``fit.loglik(reml=reml)`` in the coefficients of ``Z``.

    ``fit`` is :func:`gls` at :math:`V(\\theta) = S + \\sum_j \\theta_j Z_j`, and each
    ``Z[j]`` is block-diagonal on the same blocks. See the module docstring for the
    formulas; every trace is a sum over blocks plus p x p products.
    """
    XX = np.asarray(X, dtype=np.float64)
    q, p = len(Z), fit.p
    acc = _Accumulators(q, p)
    for g, (rows, vi) in enumerate(zip(fit.V_inv.blocks.rows, fit.V_inv.values, strict=True)):
        acc.add_group(vi, XX[rows], fit.resid[rows], [z.values[g] for z in Z])
    return acc.finish(fit.vcov, reml=reml)


class _Accumulators:
    """Block sums behind :func:`likelihood_derivatives` (q parameters, p coefficients)."""

    def __init__(self, q: int, p: int) -> None:
        self.tr_vz = np.zeros(q)  # tr(V^-1 Z_j)
        self.xvzvx = np.zeros((q, p, p))  # X' V^-1 Z_j V^-1 X
        self.rvzvr = np.zeros(q)  # r' V^-1 Z_j V^-1 r
        self.tr_vzvz = np.zeros((q, q))  # tr(V^-1 Z_i V^-1 Z_j)
        self.xvzvzvx = np.zeros((q, q, p, p))  # X' V^-1 Z_i V^-1 Z_j V^-1 X
        self.uvu = np.zeros((q, q))  # u_i' V^-1 u_j, u_j = Z_j V^-1 r
        self.xvu = np.zeros((q, p))  # X' V^-1 u_j

    def add_group(
        self, vi: FloatArray, Xg: FloatArray, rg: FloatArray, Zg: Sequence[FloatArray]
    ) -> None:
        VX = np.matmul(vi, Xg)  # (n, m, p)
        Vr = np.einsum("bmn,bn->bm", vi, rg)
        ZVX = [np.matmul(z, VX) for z in Zg]
        U = [np.einsum("bmn,bn->bm", z, Vr) for z in Zg]
        M = [np.matmul(vi, z) for z in Zg]
        for j, z in enumerate(Zg):
            self.tr_vz[j] += float(np.einsum("bij,bji->", vi, z))
            self.xvzvx[j] += np.einsum("bmp,bmq->pq", VX, ZVX[j])
            self.rvzvr[j] += float(np.einsum("bm,bm->", Vr, U[j]))
            self.xvu[j] += np.einsum("bmp,bm->p", VX, U[j])
            for i in range(j + 1):
                self.tr_vzvz[i, j] += float(np.einsum("bij,bji->", M[i], M[j]))
                self.xvzvzvx[i, j] += np.einsum("bmp,bmq->pq", ZVX[i], np.matmul(vi, ZVX[j]))
                self.uvu[i, j] += float(
                    np.einsum("bm,bm->", U[i], np.einsum("bmn,bn->bm", vi, U[j]))
                )

    def finish(self, a_inv: FloatArray, *, reml: bool) -> LikelihoodDerivatives:
        q = self.tr_vz.shape[0]
        score = np.empty(q)
        info = np.empty((q, q))
        hess = np.empty((q, q))
        for j in range(q):
            tr_pz = self.tr_vz[j] - float(np.sum(a_inv * self.xvzvx[j]))
            score[j] = -0.5 * (tr_pz if reml else self.tr_vz[j]) + 0.5 * self.rvzvr[j]
            for i in range(j + 1):
                trace = self.tr_vzvz[i, j]
                if reml:
                    trace += -2.0 * float(np.sum(a_inv * self.xvzvzvx[i, j].T)) + float(
                        np.sum((a_inv @ self.xvzvx[i]) * (a_inv @ self.xvzvx[j]).T)
                    )
                upu = self.uvu[i, j] - float(self.xvu[i] @ a_inv @ self.xvu[j])
                info[i, j] = info[j, i] = 0.5 * trace
                hess[i, j] = hess[j, i] = 0.5 * trace - upu
        return LikelihoodDerivatives(score, hess, info)
