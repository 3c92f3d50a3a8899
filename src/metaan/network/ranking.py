"""Ranking treatments: P-scores (netmeta's ``netrank``) and SUCRA by simulation.

The **P-score** of treatment i is the mean, over the other treatments j, of the
one-sided probability that i is better than j, :math:`\\Phi(\\pm\\hat\\theta_{ij} /
\\mathrm{se}_{ij})` (the sign saying which direction is better). It needs no
simulation, and equals the SUCRA of the normal approximation (Rücker & Schwarzer 2015).

**SUCRA** (surface under the cumulative ranking curve; Salanti et al. 2011) is computed
as netmeta's ``rankogram()`` does: draws of the treatment effects from their
multivariate normal distribution, ranked in every draw. It gives the probability of
each rank, the mean rank and SUCRA = (n − mean rank) / (n − 1). The draws come from a
seeded generator, so a result is reproducible.

Ranks mislead when the evidence is thin: two treatments whose intervals overlap widely
get different ranks with little to tell them apart. Read a ranking with the estimates
and their intervals beside it.

References
----------
Rücker, G., & Schwarzer, G. (2015). Ranking treatments in frequentist network
meta-analysis works without resampling methods. *BMC Medical Research Methodology*,
15, 58.

Salanti, G., Ades, A. E., & Ioannidis, J. P. A. (2011). Graphical methods and numerical
summaries for presenting results from multiple-treatment meta-analysis: an overview
and tutorial. *Journal of Clinical Epidemiology*, 64(2), 163-171.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from metaan._base import Result
from metaan._dist import norm_sf
from metaan._format import fmt
from metaan._json import json_list
from metaan.errors import InputError
from metaan.network._table import FloatArray

if TYPE_CHECKING:
    from metaan.network.results import NetworkResult

__all__ = ["SMALL_VALUES", "Ranking", "SmallValues", "pscores", "sucra"]

SmallValues = Literal["good", "bad"]
"""Whether small values of the effect are good (e.g. fewer deaths, a lower depression
score: netmeta's ``"desirable"``) or bad (e.g. more responders: ``"undesirable"``)."""

SMALL_VALUES: tuple[SmallValues, ...] = ("good", "bad")


def check_small_values(value: str) -> SmallValues:
    """``value`` as :data:`SmallValues`; netmeta's words desirable/undesirable are
    accepted too."""
    text = str(value).strip().lower()
    aliases: dict[str, SmallValues] = {
        "good": "good",
        "desirable": "good",
        "bad": "bad",
        "undesirable": "bad",
    }
    if text not in aliases:
        raise InputError(
            f"small_values is {value!r}",
            fix="use good (small effects are better, e.g. a lower depression score) or "
            "bad (large effects are better, e.g. more responders)",
        )
    return aliases[text]


def pscores(TE: FloatArray, seTE: FloatArray, small_values: SmallValues) -> FloatArray:
    """The P-score of every treatment from the n x n effects (row versus column) and
    their standard errors (netmeta's ``netrank``, method ``"P-score"``)."""
    n = TE.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        z = TE / seTE
    better = norm_sf(z) if small_values == "good" else norm_sf(-z)
    off = ~np.eye(n, dtype=bool)
    return np.asarray(np.sum(np.where(off, better, 0.0), axis=1) / (n - 1), dtype=np.float64)


@dataclass(frozen=True, repr=False)
class Ranking(Result):
    """Rank probabilities, mean ranks and SUCRA from ``nsim`` simulated networks.

    ``probabilities[i, r]`` is the probability that treatment i has rank r + 1
    (rank 1 is the best).
    """

    model: Literal["common", "random"]
    small_values: SmallValues
    treatments: tuple[str, ...]
    nsim: int
    seed: int
    probabilities: FloatArray
    mean_rank: FloatArray
    sucra: FloatArray
    pscore: FloatArray

    def to_frame(self) -> pd.DataFrame:
        """One row per treatment: SUCRA, P-score, mean rank and each rank's probability."""
        frame = pd.DataFrame(
            {
                "treatment": list(self.treatments),
                "sucra": self.sucra,
                "pscore": self.pscore,
                "mean_rank": self.mean_rank,
            }
        )
        for r in range(len(self.treatments)):
            frame[f"rank_{r + 1}"] = self.probabilities[:, r]
        return frame

    def _short(self) -> str:
        return f"{self.model} n={len(self.treatments)} nsim={self.nsim} seed={self.seed}"

    def summary(self) -> str:
        """SUCRA, P-score and mean rank of every treatment, the best first."""
        width = max(len("treatment"), *(len(t) for t in self.treatments))
        better = "small" if self.small_values == "good" else "large"
        lines = [
            f"Ranking, {self.model} effects ({better} effects are better); SUCRA from "
            f"{self.nsim} simulations (seed {self.seed})",
            f"{'treatment':<{width}}  {'SUCRA':>6}  {'P-score':>7}  {'mean rank':>9}",
        ]
        for i in np.argsort(-self.sucra, kind="stable"):
            lines.append(
                f"{self.treatments[i]:<{width}}  {fmt(float(self.sucra[i]), 3):>6}  "
                f"{fmt(float(self.pscore[i]), 3):>7}  {fmt(float(self.mean_rank[i]), 2):>9}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Every number, JSON-ready."""
        return {
            "model": self.model,
            "small_values": self.small_values,
            "nsim": self.nsim,
            "seed": self.seed,
            "treatments": list(self.treatments),
            "sucra": json_list(self.sucra),
            "pscore": json_list(self.pscore),
            "mean_rank": json_list(self.mean_rank),
            "probabilities": [json_list(row) for row in self.probabilities],
        }


def sucra(
    result: NetworkResult,
    *,
    model: Literal["common", "random"] = "random",
    nsim: int = 10_000,
    seed: int = 20_240_101,
) -> Ranking:
    """SUCRA and rank probabilities by simulation (see the module docstring).

    Parameters
    ----------
    result
        A fitted network.
    model
        Rank the common- or random-effects estimates.
    nsim
        Number of simulated networks (netmeta's default is 1,000).
    seed
        Seed of the random generator (numpy's PCG64), so the result is reproducible.
    """
    if model not in ("common", "random"):
        raise InputError(f"model is {model!r}", fix="use common or random")
    if nsim < 1:
        raise InputError(f"nsim is {nsim}", fix="simulate at least one network")
    est = result.estimates(model)
    n = len(result.treatments)
    # Effects versus the first treatment are multivariate normal with covariance
    # (e_i - e_0)' L+ (e_j - e_0), the L+ of the fit.
    theta = est.TE[:, 0]
    d = est.variance[:, 0]
    cov = 0.5 * (d[1:, None] + d[None, 1:] - est.variance[1:, 1:])
    chol = np.linalg.cholesky(cov)
    rng = np.random.default_rng(seed)
    draws = np.zeros((nsim, n))
    draws[:, 1:] = theta[1:] + rng.standard_normal((nsim, n - 1)) @ chol.T
    ordered = draws if result.small_values == "good" else -draws
    ranks = np.argsort(np.argsort(ordered, axis=1, kind="stable"), axis=1, kind="stable")
    probabilities = np.stack([np.mean(ranks == r, axis=0) for r in range(n)], axis=1)
    mean_rank = ranks.mean(axis=0) + 1.0
    return Ranking(
        model,
        result.small_values,
        result.treatments,
        nsim,
        seed,
        probabilities,
        mean_rank,
        (n - mean_rank) / (n - 1),
        est.pscore,
    )
