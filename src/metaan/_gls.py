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

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from metaan.errors import NotEstimableError

__all__ = [
    "BlockMatrix",
    "Blocks",
    "Evaluator",
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
        # One buffer holds every group's blocks; each entry goes to its offset there.
        shapes = [(r.shape[0], r.shape[1], r.shape[1]) for r in blocks.rows]
        sizes = np.array([n * m * m for n, m, _ in shapes], dtype=np.intp)
        start = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)
        m_of = np.array([m for _, m, _ in shapes], dtype=np.intp)
        g = group[ii]
        base = start[g] + block[ii] * m_of[g] * m_of[g]
        buffer = np.zeros(int(start[-1]))
        buffer[base + pos[ii] * m_of[g] + pos[jj]] = xx
        buffer[base + pos[jj] * m_of[g] + pos[ii]] = xx
        values = tuple(
            buffer[start[h] : start[h + 1]].reshape(shape) for h, shape in enumerate(shapes)
        )
        return cls(blocks, values)

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

    @cached_property
    def eigen(self) -> tuple[tuple[FloatArray, FloatArray | None], ...]:
        """Per group, the eigenvalues (n, m) of every block, ascending, and their
        eigenvectors (n, m, m); None where every block of the group is diagonal (the
        eigenvalues are then the diagonal, in row order). Computed once."""
        out: list[tuple[FloatArray, FloatArray | None]] = []
        for val in self.values:
            m = val.shape[1]
            if not np.any(val * ~np.eye(m, dtype=bool)):
                out.append((np.diagonal(val, axis1=1, axis2=2).copy(), None))
            else:
                lam, vec = np.linalg.eigh(val)
                out.append((lam, vec))
        return tuple(out)

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
        m = val.shape[1]
        if not np.any(val * ~np.eye(m, dtype=bool)):  # diagonal blocks: elementwise
            d = np.diagonal(val, axis1=1, axis2=2)
            if np.any(d <= 0.0) or not np.all(np.isfinite(d)):
                bad = int(ids[int(np.argmin(np.where(np.isfinite(d), d, -np.inf).min(1)))])
                raise NotPositiveDefiniteError(
                    bad, f"the covariance of block {bad} is not positive definite"
                )
            logdet += float(np.log(d).sum())
            inverse = np.zeros_like(val)
            inverse[:, np.arange(m), np.arange(m)] = 1.0 / d
            inverses.append(inverse)
            continue
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


def _start_beta(y: FloatArray, X: FloatArray, d: FloatArray) -> FloatArray:
    """Weighted least squares with weights 1/diag(V): a cheap first estimate that
    the GLS step only corrects (so the sums below lose no digits to the mean)."""
    w = 1.0 / np.where(d > 0.0, d, 1.0)
    xw = X * w[:, None]
    try:
        out = np.asarray(np.linalg.solve(xw.T @ X, xw.T @ y), dtype=np.float64)
    except np.linalg.LinAlgError:
        return np.zeros(X.shape[1])
    return out if np.all(np.isfinite(out)) else np.zeros(X.shape[1])


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
    evaluator = Evaluator(yy, XX, V, ())
    beta0 = _start_beta(yy, XX, V.diagonal_values())
    return evaluator.evaluate(np.empty(0), beta0, reml=True, derivatives=False)[0]


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
    blocks = fit.V_inv.blocks
    sums = _block_sums(
        fit.V_inv.values,
        blocks.gather(XX),
        blocks.gather(fit.resid),
        _factors(Z, len(blocks.rows)),
        len(Z),
        derivatives=True,
    )
    e = np.zeros(fit.p + 1)
    e[-1] = 1.0  # the residuals are exact: no correction of beta
    return _derivatives(sums, e, fit.vcov, reml=reml)


@dataclass(frozen=True)
class _Sums:
    """Block sums over the augmented design ``Xa = [X, r0]`` (c = p + 1 columns)
    from which the fit and every derivative follow (see :func:`_block_sums`)."""

    H0: FloatArray  # (c, c) Xa' W Xa
    H1: FloatArray  # (q, c, c) Xa' W Z_j W Xa
    H2: FloatArray  # (q, q, c, c) Xa' W Z_i W Z_j W Xa (i <= j filled)
    tr_wz: FloatArray  # (q,) tr(W Z_j)
    tr_wzwz: FloatArray  # (q, q) tr(W Z_i W Z_j) (i <= j filled)


def _flat(a: FloatArray) -> FloatArray:
    return a.reshape(-1, a.shape[-1])


def _swap(a: FloatArray) -> FloatArray:
    return np.swapaxes(a, 1, 2)


@dataclass(frozen=True)
class Factor:
    """A pattern's blocks in one size group as ``Z = L R^T`` (``L``, ``R``: (n, m, r);
    None stands for the identity), so that products with Z cost O(m^2 r) rather
    than O(m^3): a random intercept's pattern is ``U U^T`` with U the (m, units)
    indicator of its units (r = 1 for a study-level effect), an effect per row is
    the identity. ``units`` is True when ``L is R`` is such an indicator with every
    row in one unit."""

    L: FloatArray | None
    R: FloatArray | None
    units: bool

    @property
    def identity(self) -> bool:
        return self.L is None and self.R is None

    def left(self, B: FloatArray) -> FloatArray:
        """L^T B."""
        return B if self.L is None else np.matmul(_swap(self.L), B)

    def right(self, B: FloatArray) -> FloatArray:
        """R^T B."""
        return B if self.R is None else np.matmul(_swap(self.R), B)

    def times(self, W: FloatArray) -> FloatArray:
        """W L."""
        return W if self.L is None else np.matmul(W, self.L)

    @classmethod
    def of(cls, Z: FloatArray) -> Factor:
        """The factor of one group's pattern blocks: the identity, a unit indicator
        when Z is one (rows with Z_aa = 1 fall in units, Z_ab = 1 within a unit,
        0 across), else ``L = Z, R = I``."""
        n, m, _ = Z.shape
        eye = np.eye(m)
        if np.array_equal(Z, np.broadcast_to(eye, Z.shape)):
            return cls(None, None, True)
        diag = np.diagonal(Z, axis1=1, axis2=2) == 1.0
        first = np.argmax(Z == 1.0, axis=2)  # the first row of each row's unit
        is_first = diag & (first == np.arange(m))
        number = np.cumsum(is_first, axis=1) - 1
        unit = np.take_along_axis(number, first, axis=1)
        r = int(is_first.sum(axis=1).max()) if n else 0
        U = np.zeros((n, m, max(r, 1)))
        b, a = np.nonzero(diag)
        U[b, a, unit[b, a]] = 1.0
        if np.array_equal(np.matmul(U, _swap(U)), Z):
            return cls(U, U, bool(np.all(diag)))
        return cls(Z, None, False)


def _factors(Z: Sequence[BlockMatrix], n_groups: int) -> list[list[Factor]]:
    """Every pattern's factor, per size group."""
    return [[Factor.of(z.values[g]) for z in Z] for g in range(n_groups)]


def _block_sums(
    W: Sequence[FloatArray],
    X: Sequence[FloatArray],
    r0: Sequence[FloatArray],
    Z: Sequence[Sequence[Factor]],
    q: int,
    *,
    derivatives: bool,
) -> _Sums:
    """One pass over the size groups: ``W`` the blocks of V^-1, ``X`` and ``r0`` the
    design and a residual (y - X beta0) per group, ``Z[g][j]`` the patterns.

    Every quantity of the fit and of its derivatives is a quadratic form in the
    columns of ``Xa = [X, r0]``: with beta = beta0 + delta, the residual is
    ``r = Xa (-delta, 1)``, so the sums need not wait for beta. beta0 close to beta
    (the previous iterate) keeps the correction, and so any cancellation, small.
    With ``Z_j = L_j R_j^T`` and ``T_ij = R_i^T W L_j``:
    ``tr(W Z_j) = tr(T_jj)``, ``tr(W Z_i W Z_j) = sum(T_ij * T_ji^T)``,
    ``Xa^T W Z_j W Xa = (L_j^T W Xa)^T (R_j^T W Xa)`` and
    ``Xa^T W Z_i W Z_j W Xa = (L_i^T W Xa)^T T_ij (R_j^T W Xa)``.
    """
    c = X[0].shape[2] + 1 if X else 1
    H0 = np.zeros((c, c))
    H1 = np.zeros((q, c, c))
    H2 = np.zeros((q, q, c, c))
    tr_wz = np.zeros(q)
    tr_wzwz = np.zeros((q, q))
    for Wg, Xg, rg, Zg in zip(W, X, r0, Z, strict=True):
        Xa = np.concatenate([Xg, rg[:, :, None]], axis=2)
        WXa = np.matmul(Wg, Xa)
        H0 += _flat(Xa).T @ _flat(WXa)
        if not derivatives:
            continue
        LW = [f.left(WXa) for f in Zg]  # L_j^T W Xa
        RW = [f.right(WXa) for f in Zg]  # R_j^T W Xa
        WL = [f.times(Wg) for f in Zg]  # W L_j
        T = [[Zg[i].right(WL[j]) for j in range(q)] for i in range(q)]
        for j in range(q):
            H1[j] += _flat(LW[j]).T @ _flat(RW[j])
            tr_wz[j] += float(np.trace(T[j][j], axis1=1, axis2=2).sum())
            for i in range(j + 1):
                tr_wzwz[i, j] += float(np.sum(T[i][j] * _swap(T[j][i])))
                left = _swap(np.matmul(_swap(LW[i]), T[i][j]))  # (n, r_j, c)
                H2[i, j] += _flat(left).T @ _flat(RW[j])
    return _Sums(H0, H1, H2, tr_wz, tr_wzwz)


def _derivatives(
    sums: _Sums, e: FloatArray, a_inv: FloatArray, *, reml: bool
) -> LikelihoodDerivatives:
    """Score, observed Hessian and expected information from the block sums;
    ``e`` = (-delta, 1) turns the augmented columns into the residual."""
    p = e.size - 1
    q = sums.tr_wz.size
    xvzvx = sums.H1[:, :p, :p]  # X' W Z_j W X
    rvzvr = np.array([e @ h @ e for h in sums.H1])  # r' W Z_j W r
    xvu = np.array([h[:p] @ e for h in sums.H1])  # X' W Z_j W r
    score = np.empty(q)
    info = np.empty((q, q))
    hess = np.empty((q, q))
    for j in range(q):
        tr_pz = sums.tr_wz[j] - float(np.sum(a_inv * xvzvx[j]))
        score[j] = -0.5 * (tr_pz if reml else sums.tr_wz[j]) + 0.5 * rvzvr[j]
        for i in range(j + 1):
            trace = sums.tr_wzwz[i, j]
            if reml:
                trace += -2.0 * float(np.sum(a_inv * sums.H2[i, j, :p, :p].T)) + float(
                    np.sum((a_inv @ xvzvx[i]) * (a_inv @ xvzvx[j]).T)
                )
            upu = float(e @ sums.H2[i, j] @ e) - float(xvu[i] @ a_inv @ xvu[j])
            info[i, j] = info[j, i] = 0.5 * trace
            hess[i, j] = hess[j, i] = 0.5 * trace - upu
    return LikelihoodDerivatives(score, hess, info)


class Evaluator:
    """The data of ``y = X beta + e``, ``cov(e) = S + sum_j theta_j Z_j``, gathered
    per block-size group once, for repeated evaluation at different ``theta``.

    Each evaluation is one pass over the groups that yields the GLS fit and, on
    request, the exact derivatives together (:func:`_block_sums`). V^-1 comes from a
    Cholesky factorisation of every block, or, with ``nested=True`` where the
    patterns are nested random intercepts and S allows it, in closed form
    (:class:`_NestedInverse`).
    """

    def __init__(
        self,
        y: FloatArray,
        X: FloatArray,
        S: BlockMatrix,
        Z: Sequence[BlockMatrix],
        *,
        nested: bool = False,
    ) -> None:
        self.blocks = S.blocks
        self.k, self.p = X.shape
        self.y = y
        self.X = X
        self.S = S
        self.Z = tuple(Z)
        self.X_parts = self.blocks.gather(X)
        self.factors = _factors(self.Z, len(self.blocks.rows))
        self.logdet_XtX = float(np.linalg.slogdet(X.T @ X)[1])
        self.nested = _NestedInverse.build(S, self.Z, self.factors) if nested else None

    def covariance(self, theta: FloatArray) -> BlockMatrix:
        """V(theta)."""
        return self.S.combine([float(t) for t in theta], self.Z)

    def inverse(self, theta: FloatArray) -> tuple[tuple[FloatArray, ...], float]:
        """The blocks of V(theta)^-1 and log|V(theta)|."""
        if self.nested is not None:
            return self.nested.inverse(theta)
        return _invert_blocks(self.covariance(theta))

    def evaluate(
        self, theta: FloatArray, beta0: FloatArray, *, reml: bool, derivatives: bool
    ) -> tuple[GLSFit, LikelihoodDerivatives | None]:
        """The GLS fit at ``theta`` and, if asked, the exact derivatives of its
        (restricted) log-likelihood; ``beta0`` is a guess of the coefficients."""
        W, logdet_V = self.inverse(theta)
        r0 = self.y - self.X @ beta0
        sums = _block_sums(
            W,
            self.X_parts,
            self.blocks.gather(r0),
            self.factors,
            len(self.Z),
            derivatives=derivatives,
        )
        p = self.p
        A = sums.H0[:p, :p]
        try:
            chol_A = np.linalg.cholesky(A)
        except np.linalg.LinAlgError:
            raise NotEstimableError(
                "the model's coefficients are not identifiable from these data "
                "(X^T V^-1 X is singular); remove redundant moderators"
            ) from None
        vcov = np.linalg.inv(A)
        vcov = 0.5 * (vcov + vcov.T)
        delta: FloatArray = np.linalg.solve(A, sums.H0[:p, p]).astype(np.float64)
        e = np.concatenate([-delta, [1.0]])
        Q = float(e @ sums.H0 @ e)
        logdet_A = 2.0 * float(np.log(np.diagonal(chol_A)).sum())
        fit = GLSFit(
            beta0 + delta,
            vcov,
            r0 - self.X @ delta,
            Q,
            logdet_V,
            logdet_A,
            self.logdet_XtX,
            BlockMatrix(self.blocks, W),
            self.k,
            p,
        )
        der = _derivatives(sums, e, vcov, reml=reml) if derivatives else None
        return fit, der


class _NestedInverse:
    """V^-1 of nested random intercepts in closed form, without a factorisation.

    With ``V = S + s_0 I + sum_j s_j Z_j``, where ``I`` is a level whose units are
    single rows (absorbed into S), and the other levels nested from the innermost
    outwards, the inverse is built level by level: starting from ``(S + s_0 I)^-1``
    (elementwise for a diagonal S; from S's eigen-decomposition, computed once,
    otherwise), each level adds ``s_j 1_u 1_u^T`` on each of its units ``u``, whose
    inverse is the Sherman-Morrison update

    .. math:: W - \\frac{s_j}{1 + s_j 1_u^T W 1_u} (W 1_u)(W 1_u)^T,

    independent across the units of a level because W is block-diagonal on the
    units of the level inside it; by the matrix determinant lemma log|V| gains
    :math:`\\log(1 + s_j 1_u^T W 1_u)`. With U the (m, units) indicator of a level,
    the update of a block costs O(m^2 units), and the whole inverse O(m^2) per block
    for a study-level effect, against O(m^3) for a factorisation. This needs every
    variance >= 0 (as the structure ensures) and S block-diagonal on the innermost
    updated level.

    References
    ----------
    Sherman, J., & Morrison, W. J. (1950). Adjustment of an inverse matrix
    corresponding to a change in one element of a given matrix. *Annals of
    Mathematical Statistics*, 21(1), 124-127.
    """

    def __init__(
        self,
        blocks: Blocks,
        eig: Sequence[tuple[FloatArray, FloatArray | None]],
        absorbed: int | None,
        levels: Sequence[int],
        factors: Sequence[Sequence[Factor]],
    ) -> None:
        self.blocks = blocks
        self.eig = eig
        self.absorbed = absorbed
        self.levels = tuple(levels)
        # A level whose units are single rows in a group is the identity there.
        self.U = [
            [np.broadcast_to(np.eye(r.shape[1]), (*r.shape, r.shape[1])) if f.L is None else f.L
             for f in fg]
            for r, fg in zip(blocks.rows, factors, strict=True)
        ]  # fmt: skip

    @classmethod
    def build(
        cls, S: BlockMatrix, Z: Sequence[BlockMatrix], factors: Sequence[Sequence[Factor]]
    ) -> _NestedInverse | None:
        """The closed form for these patterns, or None where it does not apply."""
        groups = range(len(S.blocks.rows))
        q = len(Z)
        if not all(f.units for fg in factors for f in fg):
            return None
        single = [all(factors[g][j].identity for g in groups) for j in range(q)]
        absorbed = next((j for j in range(q) if single[j]), None)
        count = [sum(float(z.values[g].sum()) for g in groups) for z in Z]
        # innermost (fewest pairs of rows in one unit) first; each must nest in the next
        order = sorted((j for j in range(q) if j != absorbed), key=lambda j: count[j])
        for inner, outer in itertools.pairwise(order):
            if any(np.any(Z[inner].values[g] > Z[outer].values[g]) for g in groups):
                return None
        for g, val in enumerate(S.values):
            off = val * ~np.eye(val.shape[1], dtype=bool)
            if order and np.any((off != 0.0) & (Z[order[0]].values[g] == 0.0)):
                return None  # S links rows of different innermost units
        return cls(S.blocks, S.eigen, absorbed, order, factors)

    def inverse(self, theta: FloatArray) -> tuple[tuple[FloatArray, ...], float]:
        shift = float(theta[self.absorbed]) if self.absorbed is not None else 0.0
        out: list[FloatArray] = []
        logdet = 0.0
        for g, (lam, vec) in enumerate(self.eig):
            d = lam + shift
            if np.any(d <= 0.0) or not np.all(np.isfinite(d)):
                bad = int(self.blocks.ids[g][int(np.argmin(np.min(d, axis=1)))])
                raise NotPositiveDefiniteError(
                    bad, f"the covariance of block {bad} is not positive definite"
                )
            logdet += float(np.log(d).sum())
            if vec is None:
                m = d.shape[1]
                W = np.zeros((d.shape[0], m, m))
                W[:, np.arange(m), np.arange(m)] = 1.0 / d
            else:
                W = np.matmul(vec / d[:, None, :], _swap(vec))
            for j in self.levels:
                s = float(theta[j])
                U = self.U[g][j]
                if s == 0.0:
                    continue
                WU = np.matmul(W, U)  # W 1_u for each unit u
                f = 1.0 + s * np.sum(U * WU, axis=1)  # 1 + s 1_u' W 1_u (1 where no unit)
                logdet += float(np.log(f).sum())
                W = W - np.matmul(WU * (s / f)[:, None, :], _swap(WU))
            out.append(W)
        return tuple(out), logdet
