"""Maximum (restricted) likelihood for models with a block-diagonal marginal covariance.

:class:`Model` holds the data of a multilevel or multivariate model, ``y = X beta +
e`` with :math:`\\mathrm{cov}(e) = S + \\sum_j \\theta_j(\\phi) Z_j`, and maximises its
ML or REML log-likelihood over the box-constrained parameters :math:`\\phi` of a
:class:`~metaan._covstruct.Structure` by a safeguarded Newton search:

- the gradient and the observed Hessian are exact (those of :mod:`metaan._gls` in
  :math:`\\theta`, by the chain rule through the structure's first and second
  derivatives);
- coordinates at a bound whose gradient points out of the box are held there
  (an active set), so estimates on the boundary (a variance of 0, a correlation
  of 1) are found exactly rather than approached;
- a Newton step is taken where the Hessian on the free coordinates is negative
  definite, else a Fisher-scoring step (the expected information is positive
  semi-definite), else a gradient step; each is projected on the box and halved
  until the log-likelihood increases (an Armijo condition), so the search cannot
  diverge;
- it stops when a step changes no coordinate by more than 1e-10 of its size, which
  with Newton's quadratic convergence leaves the log-likelihood within rounding
  of its maximum.

:func:`profile_bounds` finds the profile-likelihood confidence limits of one
component with the project's bracketed root finder, using the envelope theorem for
the slope of the profile log-likelihood (the partial derivative at the constrained
optimum).

References
----------
Harville, D. A. (1977). Maximum likelihood approaches to variance component
estimation and to related problems. *JASA*, 72(358), 320-338.

Nocedal, J., & Wright, S. J. (2006). *Numerical Optimization* (2nd ed.). Springer,
chapters 3 and 16 (line search, projected Newton with an active set).

Viechtbauer, W. (2022). metafor 3.8: ``rma.mv`` and ``confint.rma.mv`` (profile
likelihood intervals of variance components: the limits where twice the drop in
the log-likelihood equals the chi-square(1) quantile, searched between 0 or -1 and
the estimate, and between the estimate and max(10, 100 x estimate) or 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from metaan._covstruct import Profile, Structure
from metaan._gls import BlockMatrix, Evaluator, GLSFit, NotPositiveDefiniteError
from metaan.errors import ConvergenceError
from metaan.solver import solve_decreasing_scalar

__all__ = ["Evaluation", "Model", "profile_bounds"]

FloatArray = npt.NDArray[np.float64]

#: A step smaller than this share of every coordinate's size ends the search.
STEP_RTOL = 1e-10
MAX_ITERATIONS = 500
#: Newton steps smaller than this share of every coordinate are taken whole.
NEWTON_REGION = 1e-4


@dataclass(frozen=True)
class Evaluation:
    """The log-likelihood at ``phi`` with its exact derivatives in phi."""

    phi: FloatArray
    fit: GLSFit
    loglik: float
    grad: FloatArray
    hess: FloatArray
    info: FloatArray


class Model:
    """y, X, the sampling covariance S and the patterns Z_j, all on one set of blocks.

    ``nested=True`` says that the patterns are nested random intercepts with
    variances >= 0, so that V^-1 may be built in closed form (see
    :class:`metaan._gls.Evaluator`). ``beta0`` is a first guess of the coefficients.
    """

    def __init__(
        self,
        y: FloatArray,
        X: FloatArray,
        S: BlockMatrix,
        patterns: Sequence[BlockMatrix],
        *,
        reml: bool,
        variance: float,
        beta0: FloatArray | None = None,
        nested: bool = False,
    ) -> None:
        self.y = y
        self.X = X
        self.S = S
        self.patterns = tuple(patterns)
        self.reml = reml
        #: A typical variance (of the sampling errors), for step sizes.
        self.variance = variance
        self.evaluator = Evaluator(y, X, S, self.patterns, nested=nested)
        self.beta0 = np.zeros(X.shape[1]) if beta0 is None else beta0

    def covariance(self, structure: Structure, phi: FloatArray) -> BlockMatrix:
        """The marginal covariance V(phi)."""
        return self.evaluator.covariance(structure.theta(phi))

    def evaluate(
        self, structure: Structure, phi: FloatArray, beta0: FloatArray | None = None
    ) -> Evaluation:
        """The log-likelihood at phi with its gradient, Hessian and information in
        phi, from one pass over the blocks (``beta0``: a guess of the coefficients,
        e.g. those of a nearby phi)."""
        fit, der = self.evaluator.evaluate(
            structure.theta(phi),
            self.beta0 if beta0 is None else beta0,
            reml=self.reml,
            derivatives=True,
        )
        assert der is not None
        J = structure.jacobian(phi)
        C = structure.curvature(phi)
        grad = J.T @ der.score
        hess = J.T @ der.hessian @ J + np.einsum("k,kij->ij", der.score, C)
        info = J.T @ der.information @ J
        return Evaluation(phi, fit, fit.loglik(reml=self.reml), grad, hess, info)

    def maximise(
        self,
        structure: Structure,
        start: FloatArray,
        lower: FloatArray | None = None,
        upper: FloatArray | None = None,
    ) -> Evaluation:
        """The maximum of the log-likelihood over the box [lower, upper] (the
        structure's own bounds by default); see the module docstring."""
        lo = structure.lower if lower is None else lower
        hi = structure.upper if upper is None else upper
        scale = structure.scales(self.variance)
        phi = np.clip(np.asarray(start, dtype=np.float64), lo, hi)
        ev = self.evaluate(structure, phi)
        for _ in range(MAX_ITERATIONS):
            free = _free(ev, lo, hi)
            if not free.any():
                return ev
            moved = None
            for newton, direction in _directions(ev, free, scale):
                size = float(np.max(np.abs(direction) / (np.abs(ev.phi) + scale)))
                if newton and size <= STEP_RTOL:
                    return ev  # a Newton step this small: converged to rounding
                if newton and size <= NEWTON_REGION:
                    moved = self._full_step(structure, ev, direction, lo, hi)
                else:
                    moved = self._line_search(structure, ev, direction, lo, hi, scale)
                if moved is not None:
                    break
            if moved is None:  # no direction increases the log-likelihood any more
                return ev
            step = moved.phi - ev.phi
            ev = moved
            if np.all(np.abs(step) <= STEP_RTOL * (np.abs(moved.phi) + scale)):
                return ev
        raise ConvergenceError(
            f"the (restricted) log-likelihood did not converge in {MAX_ITERATIONS} iterations"
        )

    def _trial(self, structure: Structure, ev: Evaluation, trial: FloatArray) -> Evaluation | None:
        """The evaluation at a trial point (None where V is not positive definite)."""
        try:
            return self.evaluate(structure, trial, ev.fit.beta)
        except NotPositiveDefiniteError:
            return None

    def _full_step(
        self,
        structure: Structure,
        ev: Evaluation,
        direction: FloatArray,
        lo: FloatArray,
        hi: FloatArray,
    ) -> Evaluation | None:
        """The projected Newton step itself: close to the maximum the quadratic model
        is exact to rounding, where a change in the log-likelihood can no longer be
        seen, so the step is taken without a line search."""
        found = self._trial(structure, ev, np.clip(ev.phi + direction, lo, hi))
        if found is None or found.loglik < ev.loglik - 1e-9 * (1.0 + abs(ev.loglik)):
            return None
        return found

    def _line_search(
        self,
        structure: Structure,
        ev: Evaluation,
        direction: FloatArray,
        lo: FloatArray,
        hi: FloatArray,
        scale: FloatArray,
    ) -> Evaluation | None:
        """A projected step along ``direction`` that increases the log-likelihood
        (Armijo), halving until the step is below rounding; None if there is none."""
        t = 1.0
        for _ in range(60):
            trial = np.clip(ev.phi + t * direction, lo, hi)
            step = trial - ev.phi
            if np.all(np.abs(step) <= 1e-14 * (np.abs(ev.phi) + scale)):
                return None
            found = self._trial(structure, ev, trial)
            if found is not None:
                gain = found.loglik - ev.loglik
                if gain > 0.0 and gain >= 1e-4 * float(ev.grad @ step):
                    return found
            t *= 0.5
        return None


def _free(ev: Evaluation, lo: FloatArray, hi: FloatArray) -> npt.NDArray[np.bool_]:
    """Coordinates not held at a bound (a bound is held while the gradient pushes
    against it)."""
    at_lo = (ev.phi <= lo) & (ev.grad <= 0.0)
    at_hi = (ev.phi >= hi) & (ev.grad >= 0.0)
    return np.asarray(~(at_lo | at_hi | (lo == hi)), dtype=np.bool_)


def _solve_psd(A: FloatArray, b: FloatArray) -> FloatArray | None:
    """A^+ b for a positive semi-definite A (None if A has a negative eigenvalue)."""
    w, U = np.linalg.eigh(0.5 * (A + A.T))
    top = float(np.max(np.abs(w))) if w.size else 0.0
    if top == 0.0 or not np.all(np.isfinite(w)):
        return None
    if float(np.min(w)) < -1e-10 * top:
        return None
    keep = w > 1e-12 * top
    d = U[:, keep] @ ((U[:, keep].T @ b) / w[keep])
    return np.asarray(d, dtype=np.float64) if np.all(np.isfinite(d)) else None


def _directions(
    ev: Evaluation, free: npt.NDArray[np.bool_], scale: FloatArray
) -> list[tuple[bool, FloatArray]]:
    """Newton, Fisher-scoring and scaled-gradient directions on the free coordinates
    (flagged True for Newton's)."""
    out: list[tuple[bool, FloatArray]] = []
    g = ev.grad[free]
    for newton, matrix in ((True, -ev.hess), (False, ev.info)):
        d = _solve_psd(matrix[np.ix_(free, free)], g)
        if d is not None and float(d @ g) > 0.0:
            full = np.zeros_like(ev.phi)
            full[free] = d
            out.append((newton, full))
    gradient = np.zeros_like(ev.phi)
    gradient[free] = g * scale[free] ** 2 / max(float(np.max(np.abs(g * scale[free]))), 1e-300)
    out.append((False, gradient))
    return out


def profile_bounds(
    model: Model,
    profile: Profile,
    estimate: float,
    loglik: float,
    critical: float,
) -> tuple[float, float]:
    """The profile-likelihood confidence limits of one component, as metafor's
    ``confint.rma.mv`` defines them (see the module docstring).

    ``critical`` is the chi-square(1) quantile; a limit is where
    ``2 (loglik - profile(x)) = critical``. The lower limit is the search's lower end
    (0 for a variance, the smallest admissible correlation) when the profile stays
    above the cut-off there, and likewise the upper limit is max(10, 100 x estimate)
    (a variance) or 1 (a correlation).
    """
    target = loglik - 0.5 * critical
    structure = profile.structure
    seen: dict[float, FloatArray] = {estimate: profile.start}

    def excess(value: float) -> tuple[float, float]:
        """profile(value) - target, and its slope in value. The other parameters
        are maximised from the estimate and from the solution at the nearest value
        already profiled, and the better is kept: the profile may have more than one
        branch of local maxima (a flat correlation), and the limit is where the
        global one crosses."""
        coord = math.sqrt(max(value, 0.0)) if profile.sqrt else value
        lo = structure.lower.copy()
        hi = structure.upper.copy()
        lo[profile.coord] = hi[profile.coord] = coord
        nearest = min(seen, key=lambda v: abs(v - value))
        starts = [profile.start] if nearest == estimate else [profile.start, seen[nearest]]
        found = []
        for start in starts:
            phi = start.copy()
            phi[profile.coord] = coord
            found.append(model.maximise(structure, phi, lo, hi))
        ev = max(found, key=lambda e: e.loglik)
        seen[value] = ev.phi
        slope = float(ev.grad[profile.coord])
        if profile.sqrt:
            slope = slope / (2.0 * coord) if coord > 0.0 else math.inf
        return ev.loglik - target, slope

    if profile.upper == math.inf:
        top = max(10.0, 100.0 * estimate) if estimate > math.sqrt(2.2e-16) else 10.0
    else:
        top = profile.upper
    bottom = profile.lower
    guess = _distance_guess(model, profile, critical)
    # The profile is known to rounding of the log-likelihood, so its root to that
    # precision divided by the slope; below that the search would only chase noise.
    noise = 1e-12 * (1.0 + abs(loglik))
    lower = _one_side(excess, estimate, bottom, guess, 0.5 * critical, noise)
    upper = _one_side(excess, estimate, top, guess, 0.5 * critical, noise)
    return lower, upper


def _distance_guess(model: Model, profile: Profile, critical: float) -> float:
    """The distance from the estimate to a limit if the profile were quadratic:
    sqrt(critical x var), var from the observed information (0 if unknown)."""
    ev = model.evaluate(profile.structure, profile.start)
    c = profile.coord
    free = _free(ev, profile.structure.lower, profile.structure.upper)
    if not free[c]:
        return 0.0
    idx = np.flatnonzero(free)
    try:
        cov = np.linalg.inv(-ev.hess[np.ix_(idx, idx)])
    except np.linalg.LinAlgError:
        return 0.0
    var = float(cov[int(np.flatnonzero(idx == c)[0]), int(np.flatnonzero(idx == c)[0])])
    if not var > 0.0 or not math.isfinite(var):
        return 0.0
    step = math.sqrt(critical * var)
    return 2.0 * float(profile.start[c]) * step if profile.sqrt else step


def _one_side(
    f: Callable[[float], tuple[float, float]],
    estimate: float,
    end: float,
    guess: float,
    at_estimate: float,
    noise: float,
) -> float:
    """The limit between ``estimate`` and ``end`` (either side); ``guess`` is a
    first step from the estimate, where the excess is ``at_estimate`` with slope 0
    (the maximum). ``end`` itself is the limit when the profile is above the
    cut-off there, as in metafor (even where the profile dips below the cut-off
    on the way, as that of a correlation may). An excess within ``noise`` of 0 is
    the root."""
    if end == estimate:
        return end
    at_end = f(end)[0]
    if at_end > 0.0:
        return end
    sign = 1.0 if end > estimate else -1.0
    width = abs(end - estimate)

    def along(u: float) -> tuple[float, float]:
        """excess at estimate + sign * u, extended linearly beyond ``end``."""
        if u == 0.0:
            return at_estimate, 0.0
        if u >= width:
            return at_end - (u - width), -1.0
        value, slope = f(estimate + sign * u)
        return (0.0 if abs(value) <= noise else value), sign * slope

    first = guess if 0.0 < guess < width else 0.5 * width
    u = solve_decreasing_scalar(along, 0.0, first)
    if math.isnan(u):
        raise ConvergenceError("profile-likelihood limit: the equation has no root for these data")
    return estimate + sign * u
