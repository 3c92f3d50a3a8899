"""Parametrisations of the random-effects covariance of multilevel and multivariate models.

The marginal covariance is linear in the parameters :math:`\\theta` that
:mod:`metaan._gls` differentiates, :math:`V = S + \\sum_j \\theta_j Z_j`. The
parameters the optimiser moves, :math:`\\phi`, map onto :math:`\\theta` so that every
admissible :math:`\\phi` gives a positive semi-definite random-effects covariance, and
the admissible set is a box (simple lower and upper bounds):

- nested random intercepts (``~ 1 | study/esid``): :math:`\\theta = \\phi`, the
  variances :math:`\\sigma^2_j \\ge 0`;
- ``~ outcome | study`` with ``struct="CS"``: :math:`G = \\tau^2((1-\\rho) I + \\rho J)`
  with :math:`\\tau^2 \\ge 0` and :math:`-1/(q-1) \\le \\rho \\le 1`;
- ``struct="HCS"``: :math:`G = D((1-\\rho) I + \\rho J) D` with :math:`D =
  \\mathrm{diag}(\\tau_a)`, :math:`\\tau_a \\ge 0`;
- ``struct="UN"``: :math:`G = L L^T` with :math:`L` lower triangular and a
  non-negative diagonal (every positive semi-definite G has such a factor).

For the profile likelihood of one component, a parametrisation in which that
component is a coordinate is used (for UN: the outcomes reordered so that the
component's outcomes come first, and for a correlation the second row of
:math:`L` in polar form), so that fixing it is fixing a bound.

Every map is given with its exact first and second derivatives, so the optimiser
works with the exact gradient and Hessian (chain rule on :mod:`metaan._gls`'s).

References
----------
Pinheiro, J. C., & Bates, D. M. (1996). Unconstrained parametrizations for
variance-covariance matrices. *Statistics and Computing*, 6, 289-296.

Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package.
*Journal of Statistical Software*, 36(3), 1-48 (``rma.mv``: the structures CS, HCS
and UN of ``random = ~ inner | outer``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "Component",
    "CompoundSymmetry",
    "HeteroCompoundSymmetry",
    "Profile",
    "Structure",
    "Unstructured",
    "Variances",
]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Component:
    """A reported variance component: ``kind`` is sigma2, tau2 or rho; ``index`` its
    position among the components of that kind (for rho of UN, the pair of outcomes)."""

    kind: str
    name: str
    value: float
    index: tuple[int, ...]


@dataclass(frozen=True)
class Profile:
    """How to profile one component: in ``structure``, coordinate ``coord`` equals
    ``transform(value)``; ``slope(value)`` is its derivative."""

    structure: Structure
    coord: int
    start: FloatArray
    lower: float
    upper: float
    sqrt: bool


class Structure:
    """A map from box-constrained parameters phi to the linear parameters theta."""

    n: int
    lower: FloatArray
    upper: FloatArray

    def theta(self, phi: FloatArray) -> FloatArray:
        raise NotImplementedError

    def jacobian(self, phi: FloatArray) -> FloatArray:
        """(q, n): d theta / d phi."""
        raise NotImplementedError

    def curvature(self, phi: FloatArray) -> FloatArray:
        """(q, n, n): second derivatives of theta."""
        raise NotImplementedError

    def scales(self, variance: float) -> FloatArray:
        """A typical size of each coordinate, given a typical variance."""
        raise NotImplementedError

    def components(self, phi: FloatArray) -> list[Component]:
        raise NotImplementedError

    def profile(self, phi: FloatArray, which: int) -> Profile:
        """The profile set-up of component ``which`` (position in :meth:`components`)."""
        raise NotImplementedError


class Variances(Structure):
    """Independent variances, theta = phi >= 0 (nested random intercepts)."""

    def __init__(self, names: tuple[str, ...], fixed_zero: tuple[bool, ...]) -> None:
        self.names = names
        self.n = len(names)
        self.lower = np.zeros(self.n)
        # A level with a single unit has its variance fixed at 0, as in rma.mv.
        self.upper = np.where(np.array(fixed_zero, dtype=bool), 0.0, np.inf)

    def theta(self, phi: FloatArray) -> FloatArray:
        return phi.copy()

    def jacobian(self, phi: FloatArray) -> FloatArray:
        return np.eye(self.n)

    def curvature(self, phi: FloatArray) -> FloatArray:
        return np.zeros((self.n, self.n, self.n))

    def scales(self, variance: float) -> FloatArray:
        return np.full(self.n, variance)

    def components(self, phi: FloatArray) -> list[Component]:
        return [Component("sigma2", name, float(phi[j]), (j,)) for j, name in enumerate(self.names)]

    def profile(self, phi: FloatArray, which: int) -> Profile:
        return Profile(self, which, phi.copy(), 0.0, math.inf, False)


class _Matrix(Structure):
    """A q x q random-effects covariance G(phi); theta is its upper triangle (vech)."""

    q: int

    def matrix(self, phi: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """G, dG (n, q, q) and d2G (n, n, q, q)."""
        raise NotImplementedError

    def _vech(self) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        return np.triu_indices(self.q)

    def theta(self, phi: FloatArray) -> FloatArray:
        G = self.matrix(phi)[0]
        a, b = self._vech()
        return np.asarray(G[a, b], dtype=np.float64)

    def jacobian(self, phi: FloatArray) -> FloatArray:
        dG = self.matrix(phi)[1]
        a, b = self._vech()
        return np.asarray(dG[:, a, b].T, dtype=np.float64)

    def curvature(self, phi: FloatArray) -> FloatArray:
        d2G = self.matrix(phi)[2]
        a, b = self._vech()
        return np.asarray(np.moveaxis(d2G[:, :, a, b], 2, 0), dtype=np.float64)

    def covariance(self, phi: FloatArray) -> FloatArray:
        return self.matrix(phi)[0]

    def components(self, phi: FloatArray) -> list[Component]:
        raise NotImplementedError


def _min_rho(q: int) -> float:
    """The smallest common correlation that keeps a q x q CS matrix semi-definite."""
    return -1.0 / (q - 1) if q > 1 else -1.0


class CompoundSymmetry(_Matrix):
    """G = tau2 ((1 - rho) I + rho J); phi = (tau2, rho)."""

    def __init__(self, q: int) -> None:
        self.q = q
        self.n = 2
        self.lower = np.array([0.0, _min_rho(q)])
        self.upper = np.array([np.inf, 1.0])

    def matrix(self, phi: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        tau2, rho = float(phi[0]), float(phi[1])
        eye, ones = np.eye(self.q), np.ones((self.q, self.q))
        C = (1.0 - rho) * eye + rho * ones
        dG = np.stack([C, tau2 * (ones - eye)])
        d2G = np.zeros((2, 2, self.q, self.q))
        d2G[0, 1] = d2G[1, 0] = ones - eye
        return tau2 * C, dG, d2G

    def scales(self, variance: float) -> FloatArray:
        return np.array([variance, 1.0])

    def components(self, phi: FloatArray) -> list[Component]:
        return [
            Component("tau2", "tau^2", float(phi[0]), (0,)),
            Component("rho", "rho", float(phi[1]), (0, 1)),
        ]

    def profile(self, phi: FloatArray, which: int) -> Profile:
        lo, hi = (0.0, math.inf) if which == 0 else (float(self.lower[1]), 1.0)
        return Profile(self, which, phi.copy(), lo, hi, False)


class HeteroCompoundSymmetry(_Matrix):
    """G = D ((1 - rho) I + rho J) D with D = diag(tau); phi = (tau_1..tau_q, rho)."""

    def __init__(self, q: int) -> None:
        self.q = q
        self.n = q + 1
        self.lower = np.concatenate([np.zeros(q), [_min_rho(q)]])
        self.upper = np.concatenate([np.full(q, np.inf), [1.0]])

    def matrix(self, phi: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        q = self.q
        tau, rho = phi[:q], float(phi[q])
        eye, ones = np.eye(q), np.ones((q, q))
        C = (1.0 - rho) * eye + rho * ones
        off = ones - eye
        D = np.diag(tau)
        E = np.zeros((q, q, q))
        E[np.arange(q), np.arange(q), np.arange(q)] = 1.0
        dG = np.empty((q + 1, q, q))
        d2G = np.zeros((q + 1, q + 1, q, q))
        for c in range(q):
            dG[c] = E[c] @ C @ D + D @ C @ E[c]
            for d in range(q):
                d2G[c, d] = E[c] @ C @ E[d] + E[d] @ C @ E[c]
            d2G[c, q] = d2G[q, c] = E[c] @ off @ D + D @ off @ E[c]
        dG[q] = D @ off @ D
        return D @ C @ D, dG, d2G

    def scales(self, variance: float) -> FloatArray:
        return np.concatenate([np.full(self.q, math.sqrt(variance)), [1.0]])

    def components(self, phi: FloatArray) -> list[Component]:
        out = [Component("tau2", f"tau^2.{a + 1}", float(phi[a] ** 2), (a,)) for a in range(self.q)]
        return [*out, Component("rho", "rho", float(phi[self.q]), (0, 1))]

    def profile(self, phi: FloatArray, which: int) -> Profile:
        if which < self.q:
            return Profile(self, which, phi.copy(), 0.0, math.inf, True)
        return Profile(self, which, phi.copy(), float(self.lower[self.q]), 1.0, False)


class Unstructured(_Matrix):
    """G = P L L^T P^T: L lower triangular with a non-negative diagonal, P the
    permutation that puts outcome ``order[i]`` in row i.

    phi lists L's entries row by row. With ``polar=True`` (for profiling the
    correlation of the first two outcomes in ``order``), phi instead starts with
    (L11, t2, rho), the second row of L being t2 (rho, sqrt(1 - rho^2)), so that the
    correlation is a coordinate.
    """

    def __init__(self, q: int, order: tuple[int, ...] | None = None, polar: bool = False) -> None:
        self.q = q
        self.order = order if order is not None else tuple(range(q))
        self.polar = polar and q >= 2
        rows, cols = np.tril_indices(q)
        self._rows, self._cols = rows, cols
        self.n = rows.size
        lower = np.where(rows == cols, 0.0, -np.inf)
        upper = np.full(self.n, np.inf)
        if self.polar:  # entries 1, 2 are (L21, L22) -> (t2 >= 0, rho in [-1, 1])
            lower[1], lower[2], upper[2] = 0.0, -1.0, 1.0
        self.lower, self.upper = lower, upper

    def _factor(self, phi: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """L, dL (n, q, q), d2L (n, n, q, q) in the permuted order."""
        q, n = self.q, self.n
        L = np.zeros((q, q))
        L[self._rows, self._cols] = phi
        dL = np.zeros((n, q, q))
        dL[np.arange(n), self._rows, self._cols] = 1.0
        d2L = np.zeros((n, n, q, q))
        if self.polar:
            t2, rho = float(phi[1]), float(phi[2])
            s = math.sqrt(max(1.0 - rho * rho, 0.0))
            L[1, 0], L[1, 1] = t2 * rho, t2 * s
            dL[1, 1, 0], dL[1, 1, 1] = rho, s
            dL[2, 1, 0] = t2
            ds = -rho / s if s > 0.0 else 0.0
            dL[2, 1, 1] = t2 * ds
            d2L[1, 2, 1, 0] = d2L[2, 1, 1, 0] = 1.0
            d2L[1, 2, 1, 1] = d2L[2, 1, 1, 1] = ds
            d2L[2, 2, 1, 1] = -t2 / s**3 if s > 0.0 else 0.0
        return L, dL, d2L

    def matrix(self, phi: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        L, dL, d2L = self._factor(phi)
        G = L @ L.T
        dG = dL @ L.T + np.swapaxes(dL @ L.T, 1, 2)
        cross = np.einsum("iab,jcb->ijac", dL, dL)
        second = np.einsum("ijab,cb->ijac", d2L, L)
        d2G = cross + np.swapaxes(cross, 2, 3) + second + np.swapaxes(second, 2, 3)
        back = np.argsort(self.order)  # original outcome a sits at permuted row back[a]
        return (
            G[np.ix_(back, back)],
            dG[:, back][:, :, back],
            d2G[:, :, back][:, :, :, back],
        )

    def scales(self, variance: float) -> FloatArray:
        out = np.full(self.n, math.sqrt(variance))
        if self.polar:
            out[2] = 1.0
        return out

    def from_covariance(self, G: FloatArray) -> FloatArray:
        """The phi of a positive semi-definite G (its Cholesky factor)."""
        Gp = G[np.ix_(self.order, self.order)]
        jitter = 1e-12 * max(float(np.max(np.diag(Gp))), 1e-300)
        L = np.linalg.cholesky(Gp + jitter * np.eye(self.q))
        phi = np.asarray(L[self._rows, self._cols], dtype=np.float64)
        if self.polar:
            t2 = math.hypot(L[1, 0], L[1, 1])
            phi[1], phi[2] = t2, (L[1, 0] / t2 if t2 > 0.0 else 0.0)
        return phi

    def components(self, phi: FloatArray) -> list[Component]:
        G = self.covariance(phi)
        out = [Component("tau2", f"tau^2.{a + 1}", float(G[a, a]), (a,)) for a in range(self.q)]
        for a in range(self.q):
            for b in range(a + 1, self.q):
                den = math.sqrt(G[a, a] * G[b, b])
                rho = float(G[a, b] / den) if den > 0.0 else 0.0
                out.append(Component("rho", f"rho.{a + 1}.{b + 1}", rho, (a, b)))
        return out

    def profile(self, phi: FloatArray, which: int) -> Profile:
        G = self.covariance(phi)
        comp = self.components(phi)[which]
        rest = [a for a in range(self.q) if a not in comp.index]
        order = (*comp.index, *rest)
        if comp.kind == "tau2":
            structure = Unstructured(self.q, order)
            return Profile(structure, 0, structure.from_covariance(G), 0.0, math.inf, True)
        structure = Unstructured(self.q, order, polar=True)
        return Profile(structure, 2, structure.from_covariance(G), -1.0, 1.0, False)
