"""Simulated trials, generated the way trials produce their summary data.

Each replication of a scenario is a meta-analysis of ``k`` two-arm trials. Trial
``i`` has a true effect ``theta_i ~ N(mu, tau^2)`` and arm sizes drawn from the
specification's distribution. Then:

* **SMD**: the outcome is normal with SD 1 in both arms and means 0 (control)
  and ``theta_i`` (treatment). Each arm's sample mean and SD are drawn from their
  exact sampling distributions (the mean is normal with variance ``1/n``; the
  variance is ``chi^2_{n-1} / (n - 1)``), which is the same as drawing the ``n``
  participants and summarising them. Hedges' g and its variance come from
  :func:`metaan.effects.standardized_mean_difference`.
* **OR**: events are binomial, with the control risk ``p`` and, in the treatment
  arm, ``logit p_i = logit p + theta_i``. Zero cells occur as they do in trials;
  the log odds ratio comes from :func:`metaan.effects.log_odds_ratio` with the
  specification's zero-cell rule, and the counts are kept for Mantel-Haenszel and
  Peto.

A study whose effect cannot be estimated (a zero cell under ``to = "none"``)
leaves its meta-analysis, which then has fewer studies: the batch is segmented.

References
----------
Hedges, L. V., & Olkin, I. (1985). *Statistical Methods for Meta-Analysis*.
Academic Press.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from metaan.effects import ZeroCellRule, log_odds_ratio, standardized_mean_difference
from metaan.estimators import FloatArray
from metaan.simulate.spec import SampleSize, Scenario

__all__ = ["Batch", "concat", "generate"]

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Batch:
    """Simulated meta-analyses as segmented arrays.

    ``yi``/``vi`` hold the estimable studies of every meta-analysis one after the
    other, ``sizes`` how many each has. ``counts`` (OR only) holds the 2x2 tables
    ``(ai, n1i, ci, n2i)`` of all ``k`` studies of each meta-analysis, as arrays
    of shape ``(meta-analyses, k)``.
    """

    yi: FloatArray
    vi: FloatArray
    sizes: IntArray
    counts: tuple[FloatArray, FloatArray, FloatArray, FloatArray] | None = None

    @property
    def n(self) -> int:
        return int(self.sizes.size)


def generate(
    scenario: Scenario,
    sample_size: SampleSize,
    replications: int,
    rng: np.random.Generator,
    *,
    add: float = 0.5,
    to: ZeroCellRule = "only0",
) -> Batch:
    """Simulate ``replications`` meta-analyses of ``scenario``, drawing from ``rng``.

    The draws are taken in a fixed order (control arm sizes, true effects, then
    the measure's summaries), so the same generator state gives the same batch.
    """
    shape = (replications, scenario.k)
    n2 = sample_size.draw(rng, shape)
    n1 = sample_size.treatment(n2)
    theta = scenario.effect + np.sqrt(scenario.tau2) * rng.standard_normal(shape)
    counts = None
    if scenario.measure == "SMD":
        m2 = rng.standard_normal(shape) / np.sqrt(n2)
        m1 = theta + rng.standard_normal(shape) / np.sqrt(n1)
        sd2 = np.sqrt(rng.chisquare(n2 - 1.0) / (n2 - 1.0))
        sd1 = np.sqrt(rng.chisquare(n1 - 1.0) / (n1 - 1.0))
        yi, vi = standardized_mean_difference(m1, sd1, n1, m2, sd2, n2)
    else:
        if scenario.control_risk is None:
            raise ValueError("an OR scenario needs a control risk")
        risk = scenario.control_risk
        p1 = 1.0 / (1.0 + (1.0 - risk) / risk * np.exp(-theta))
        ci = rng.binomial(n2.astype(np.int64), risk).astype(np.float64)
        ai = rng.binomial(n1.astype(np.int64), p1).astype(np.float64)
        yi, vi = log_odds_ratio(ai, n1 - ai, ci, n2 - ci, add=add, to=to)
        counts = (ai, n1, ci, n2)
    usable = np.isfinite(yi)
    return Batch(
        yi=yi[usable],
        vi=vi[usable],
        sizes=usable.sum(axis=1).astype(np.int64),
        counts=counts,
    )


def concat(batches: list[Batch]) -> Batch:
    """One batch of the meta-analyses of ``batches``, in order."""
    if len(batches) == 1:
        return batches[0]
    counts = None
    if batches[0].counts is not None:
        parts = [b.counts for b in batches if b.counts is not None]
        ai, n1, ci, n2 = (np.concatenate([p[j] for p in parts]) for j in range(4))
        counts = (ai, n1, ci, n2)
    return Batch(
        yi=np.concatenate([b.yi for b in batches]),
        vi=np.concatenate([b.vi for b in batches]),
        sizes=np.concatenate([b.sizes for b in batches]),
        counts=counts,
    )
