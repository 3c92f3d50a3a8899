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

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from metaan.errors import MetaanError
from metaan.multilevel import fit_multilevel
from metaan.robust import RobustResult, robust
from metaan.vcalc import vcalc

if TYPE_CHECKING:
    from metaan.report.analyses import Analysis, ClassResults
    from metaan.report.spec import ReportSpec

__all__ = [
    "DependentClass",
    "SharedControlFit",
    "active_pairs",
    "dependent_results",
    "observation_key",
    "shared_control_fit",
]

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
        labels="label" if "label" in recs else None,
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


@dataclass(frozen=True, eq=False)
class DependentClass:
    """One class: its primary analysis, the same comparisons with the control split
    (``split``, the report's univariate model) and with whole control groups
    (``whole``), and the shared-control model of the latter (``fit``; None with
    ``note`` saying why). ``left_out`` lists the comparisons of two active arms
    (label, why)."""

    class_id: str
    label: str
    primary: Analysis | None
    split: Analysis
    whole: Analysis
    fit: SharedControlFit | None
    left_out: tuple[tuple[str, str], ...]
    note: str


@dataclass(frozen=True, eq=False)
class DependentResults:
    """The shared-control model of every class the ``[dependent]`` table names."""

    classes: tuple[DependentClass, ...]

    @property
    def analyses(self) -> tuple[Analysis, ...]:
        """The analyses with whole control groups: their records left out are listed
        with the report's other exclusions (the split ones leave out the same)."""
        return tuple(d.whole for d in self.classes)


def _one_class(
    frame: pd.DataFrame, spec: ReportSpec, c: ClassResults, selection: Any
) -> DependentClass:
    from metaan.report.analyses import _record_label, effect_analysis, select

    chosen = select(frame, selection)
    pairs = active_pairs(chosen) if len(chosen) else pd.Series(dtype=bool)
    left_out = tuple(
        (
            label,
            f"compares two active arms ({r['arm1_id']} vs {r['arm2_id']}); each enters "
            "against the trial's control instead",
        )
        for label, (_, r) in zip(
            _record_label(chosen[pairs]), chosen[pairs].iterrows(), strict=True
        )
    )
    kept = frame.loc[chosen.index[~pairs.to_numpy(dtype=bool)]] if len(chosen) else chosen
    # Effects recomputed from the arm data in both, so that the two differ only in
    # how a shared control group enters.
    model = dataclasses.replace(spec.model, shared_control="split", effect_sizes="recomputed")
    split, whole = (
        effect_analysis(
            kept,
            selection,
            analysis_id=f"{c.id}_shared_control" + ("_split" if parts else ""),
            label=c.label,
            kind="continuous",
            model=model,
            account=not parts,
            split_controls=parts,
        )
        for parts in (True, False)
    )
    dep = spec.dependent
    assert dep is not None
    fit: SharedControlFit | None = None
    note = ""
    if whole.trials < 2:
        note = f"not fitted: {whole.trials} trial(s) with the data the model needs"
    else:
        try:
            fit = shared_control_fit(
                whole.records, rho=dep.rho, level=spec.model.level, method=spec.model.method
            )
        except MetaanError as exc:
            note = f"not fitted: {exc}"
    return DependentClass(c.id, c.label, c.continuous, split, whole, fit, left_out, note)


def dependent_results(
    frame: pd.DataFrame, spec: ReportSpec, classes: Sequence[ClassResults]
) -> DependentResults | None:
    """The shared-control model of every class the ``[dependent]`` table names."""
    if spec.dependent is None:
        return None
    by_id = {c.id: c for c in classes}
    specs = {c.id: c for c in spec.classes}
    out = []
    for entry in spec.dependent.classes:
        selection = entry.continuous or specs[entry.class_id].continuous
        if selection is None:
            continue
        out.append(_one_class(frame, spec, by_id[entry.class_id], selection))
    return DependentResults(tuple(out))


def _row(
    d: DependentClass, analysis: str, model: str, a: Analysis, est: Any, heterogeneity: str
) -> dict[str, Any]:
    return {
        "class": d.class_id,
        "analysis": analysis,
        "model": model,
        "trials": a.trials,
        "comparisons": a.k,
        "estimate": est["estimate"],
        "se": est["se"],
        "ci_lb": est["ci_lb"],
        "ci_ub": est["ci_ub"],
        "df": est["df"],
        "pval": est["pval"],
        "heterogeneity": heterogeneity,
    }


def _univariate(a: Analysis) -> dict[str, Any] | None:
    f = a.fit
    if f is None:
        return None
    return {"estimate": f.estimate, "se": f.se, "ci_lb": f.ci_lb, "ci_ub": f.ci_ub,
            "df": f.df, "pval": f.pval}  # fmt: skip


def sensitivity_rows(d: DependentClass, test: str) -> list[dict[str, Any]]:
    """The rows of the sensitivity table of one class: the primary analysis (where
    its comparisons differ), the split control, the shared-control model and its
    CR2 test. ``test`` names the univariate model's test (for the model column)."""
    uni = "random effects (REML), " + ("HKSJ t test" if test == "knha" else "z test")
    rows = []
    primary = d.primary
    same = primary is not None and (
        set(primary.records["record_id"]) == set(d.split.records["record_id"])
        and primary.effect_sources == d.split.effect_sources
    )
    if primary is not None and not same and (p := _univariate(primary)) is not None:
        tau2 = primary.fit.tau2 if primary.fit is not None else None
        rows.append(
            _row(d, "the class's primary analysis", uni, primary, p,
                 f"τ² = {tau2:.4f}" if tau2 is not None else "")
        )  # fmt: skip
    if (s := _univariate(d.split)) is not None:
        tau2 = d.split.fit.tau2 if d.split.fit is not None else None
        rows.append(
            _row(d, "every arm, control split between its comparisons", uni, d.split, s,
                 f"τ² = {tau2:.4f}" if tau2 is not None else "")
        )  # fmt: skip
    if d.fit is None:
        return rows
    m, r = d.fit.model, d.fit.robust
    sigma = f"σ² trials = {m.sigma2[0]:.4f}, σ² comparisons = {m.sigma2[1]:.4f}"
    whole = d.whole
    est = {"estimate": float(m.coef[0]), "se": float(m.se[0]), "ci_lb": float(m.ci_lb[0]),
           "ci_ub": float(m.ci_ub[0]), "df": m.df, "pval": float(m.pval[0])}  # fmt: skip
    rows.append(
        _row(d, "every arm, shared control modelled", "multilevel (REML), t test on k − 1 df",
             whole, est, sigma)
    )  # fmt: skip
    rob = {"estimate": float(r.coef[0]), "se": float(r.se[0]), "ci_lb": float(r.ci_lb[0]),
           "ci_ub": float(r.ci_ub[0]), "df": float(r.df[0]), "pval": float(r.pval[0])}  # fmt: skip
    rows.append(
        _row(d, "every arm, shared control modelled, robust",
             "the same, CR2 standard error by trial, Satterthwaite df", whole, rob, sigma)
    )  # fmt: skip
    return rows


def methods_paragraph(spec: ReportSpec, results: DependentResults | None) -> str:
    """What the shared-control model is, which working model and rho, and why."""
    dep = spec.dependent
    if dep is None or results is None or not results.classes:
        return ""
    classes = results.classes
    multi = "; ".join(
        f"{d.label}: {len(d.fit.multi_arm)} of {d.fit.trials} trials"
        for d in classes
        if d.fit is not None
    )
    pairs = sum(d.fit.rho_pairs for d in classes if d.fit is not None)
    rho_use = (
        f"ρ = {dep.rho:g} ({dep.rho_reason}) applied to {pairs} pair(s) of comparisons"
        if pairs
        else f"ρ = {dep.rho:g} was set{f' ({dep.rho_reason})' if dep.rho_reason else ''} but "
        "applied to no pair of comparisons: every multi-arm trial's comparisons share their "
        "scale and time point, so their correlation comes from the group sizes alone"
    )
    return (
        "Multi-arm trials, a sensitivity analysis. Trials that compare several active arms "
        f"with one control ({multi or 'none'}) are also analysed with every active arm "
        "against the whole control group and the dependence modelled rather than removed by "
        "splitting, with effects recomputed from the arm data. The sampling covariance of two "
        "comparisons sharing a control follows from "
        "the group sizes (Gleser & Olkin 2009, as metafor's vcalc computes it; exact for mean "
        f"differences and a close approximation for SMDs); {rho_use}. The working model is the "
        "correlated and hierarchical effects model (Pustejovsky & Tipton 2022): random effects "
        "for trials and for comparisons within trials, fitted by REML with a t test on k − 1 "
        "degrees of freedom. It was chosen because the correlation is known from the design "
        "while the heterogeneity between arms of one trial is not, and a second variance "
        "component lets the arms of a trial differ. Because a working model can be wrong, the "
        "pooled effect is also tested with cluster-robust CR2 standard errors by trial and "
        "Satterthwaite degrees of freedom (Tipton 2015), which stay valid whatever the true "
        "correlation. Comparisons of two active arms of one trial are left out, since they "
        "follow from the comparisons with the control."
    )
