"""Multi-arm trials with a shared control group, modelled rather than split.

A trial that compares several active arms (doses, or different drugs) with one
control group gives comparisons that are correlated through that control. The
primary analyses split the control group between them (its size divided by the
number of comparisons), which keeps them independent at the cost of information.
Here each comparison keeps its whole control group, and the dependence is modelled:

- the sampling covariance of the comparisons of one trial follows from the group
  sizes (:func:`metaan.vcalc` with ``grp1``/``grp2``/``w1``/``w2``; Gleser & Olkin
  2009); comparisons of one trial on different observations (another scale or time
  point) are correlated ``rho`` on top of that;
- the working model is a multilevel model with random effects for trials and for
  comparisons within trials (the correlated and hierarchical effects model of
  Pustejovsky & Tipton 2022), fitted by REML with t tests on k - 1 df
  (:func:`metaan.fit_multilevel`);
- because the working model may be wrong (the correlation from group sizes is
  exact for mean differences and approximate for SMDs), the pooled effect is also
  tested with cluster-robust CR2 standard errors and Satterthwaite degrees of
  freedom, clustered by trial (:func:`metaan.robust`).

Comparisons of two active arms of one trial (e.g. 25 mg against 10 mg) are left
out: each active arm enters once, against the trial's control, and the
comparison of two active arms is implied by them.

References
----------
Gleser, L. J., & Olkin, I. (2009). Stochastically dependent effect sizes. In
*The handbook of research synthesis and meta-analysis* (2nd ed., pp. 357-376).

Pustejovsky, J. E., & Tipton, E. (2022). Meta-analysis with robust variance
estimation: expanding the range of working models. *Prevention Science*, 23,
425-438.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from metaan.multilevel import fit_multilevel
from metaan.robust import RobustResult, robust
from metaan.vcalc import vcalc

__all__ = ["SharedControlFit", "active_pairs", "observation_key", "shared_control_fit"]

#: The columns that make two comparisons of one trial the same observation.
_OBSERVATION = ("outcome_type", "scale", "time_weeks")


@dataclass(frozen=True, eq=False)
class SharedControlFit:
    """One class's multi-arm trials modelled with a shared-control covariance.

    ``records`` are the comparisons with their effect computed on the whole control
    group (``yi``, ``vi``); ``multi_arm`` names the trials with more than one
    comparison; ``rho_pairs`` counts the pairs of comparisons of one trial on
    different observations, the only ones ``rho`` applies to.
    """

    records: pd.DataFrame
    multi_arm: tuple[str, ...]
    rho: float
    rho_pairs: int
    model: Any  # metaan.MultilevelResult
    robust: RobustResult

    @property
    def k(self) -> int:
        return len(self.records)

    @property
    def trials(self) -> int:
        return int(self.records["study_id"].nunique())


def observation_key(records: pd.DataFrame) -> pd.Series:
    """What a comparison measured (outcome type, scale and time point), as text."""
    parts = [records[c].astype("string").fillna("") for c in _OBSERVATION if c in records]
    if not parts:
        return pd.Series([""] * len(records), index=records.index, dtype="string")
    key = parts[0]
    for p in parts[1:]:
        key = key + " | " + p
    return key


def active_pairs(records: pd.DataFrame) -> pd.Series:
    """True for a comparison whose control arm is an active arm of another
    comparison of the same trial (e.g. 25 mg against 10 mg when both are compared
    with 1 mg): it is implied by the others and would count the trial twice."""
    active = set(zip(records["study_id"].astype(str), records["arm1_id"].astype(str), strict=True))
    return pd.Series(
        [
            (s, a) in active
            for s, a in zip(
                records["study_id"].astype(str), records["arm2_id"].astype(str), strict=True
            )
        ],
        index=records.index,
        dtype=bool,
    )


def _rho_pairs(records: pd.DataFrame, key: pd.Series) -> int:
    """Pairs of comparisons of one trial on different observations."""
    total = 0
    for _, obs in key.groupby(records["study_id"].astype(str), sort=False):
        counts = obs.value_counts().to_numpy()
        n = int(counts.sum())
        total += (n * (n - 1) - int(np.sum(counts * (counts - 1)))) // 2
    return total


def shared_control_fit(
    records: pd.DataFrame, *, rho: float, level: float, method: str = "REML"
) -> SharedControlFit:
    """Fit the shared-control model to comparisons computed on whole control groups.

    Parameters
    ----------
    records
        One row per comparison with ``yi`` and ``vi`` (each on the whole control
        group), ``study_id``, ``arm1_id``, ``arm2_id`` and the group sizes ``n1``
        and ``n2``; comparisons of two active arms must already be left out
        (:func:`active_pairs`).
    rho
        The correlation of comparisons of one trial on different observations.
    level, method
        The confidence level (percent) and the variance estimator (REML or ML).
    """
    recs = records.assign(
        _comparison=np.arange(len(records)),
        _observation=observation_key(records).to_numpy(),
    ).reset_index(drop=True)
    V = vcalc(
        recs,
        vi="vi",
        cluster="study_id",
        obs="_observation",
        grp1="arm1_id",
        grp2="arm2_id",
        w1="n1",
        w2="n2",
        rho=rho,
    )
    model = fit_multilevel(
        recs,
        V=V,
        levels=["study_id", "_comparison"],
        method=method,
        test="t",
        level=level,
        label="label" if "label" in recs else None,
    )
    sizes = recs.groupby("study_id", sort=False).size()
    return SharedControlFit(
        records=recs,
        multi_arm=tuple(str(s) for s in sizes[sizes > 1].index),
        rho=rho,
        rho_pairs=_rho_pairs(recs, recs["_observation"]),
        model=model,
        robust=robust(model, cluster="study_id", kind="CR2"),
    )
