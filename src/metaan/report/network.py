"""The report's network meta-analysis: psilocybin, the SSRIs and placebo in one network.

The class analyses pool each drug class against its own controls; a network
meta-analysis uses all the evidence at once. Its trials are the SSRI trials of
GRISELDA, with their multi-arm trials kept whole rather than a shared placebo arm split
between comparisons; the psilocybin trials, with each kind of control as its own
treatment (or lumped into placebo, as the specification says); and the trial that
compares psilocybin with escitalopram directly (Carhart-Harris 2021). The network gives
every treatment against every other, tests whether direct and indirect evidence agree,
and ranks the treatments.

The networks are fitted by :func:`metaan.fit_network` (netmeta's graph-theoretical
method, τ² by the specification's method). Their arms come from the comparison
records: an arm shared by several records is counted once, arms of one drug in a trial
(several doses) become one arm (events and totals summed; means and SDs combined as the
Cochrane Handbook, section 6.5.2.10, combines groups), and arms without the numbers are
left out with their reason. The standardised mean difference of a network is netmeta's
(Cohen's d with the SD pooled over the trial's arms, so that a multi-arm trial's
differences add up), which differs slightly from the class analyses' Hedges' g.

References
----------
Higgins, J. P. T., et al. (eds) (2023). *Cochrane Handbook for Systematic Reviews of
Interventions* 6.4, section 6.5.2.10 (combining groups) and chapter 11 (network
meta-analysis; transitivity).

Salanti, G. (2012). Indirect and mixed-treatment comparison, network, or
multiple-treatments meta-analysis: many names, many benefits, many concerns for the next
generation evidence synthesis tool. *Research Synthesis Methods*, 3(2), 80-97.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from metaan._format import fmt_typeset
from metaan.errors import MetaanError
from metaan.network import NetworkResult, fit_network
from metaan.report.spec import NetworkSpec, ReportSpec, Selection

__all__ = [
    "ArmOut",
    "NetworkClass",
    "NetworkReport",
    "OutcomeNetwork",
    "network_arms",
    "run_networks",
]

#: The numbers each outcome needs per arm, and the record columns that hold them.
_ARM_COLUMNS = {
    "continuous": (("n", "n{}"), ("mean", "mean{}"), ("sd", "sd{}")),
    "response": (("events", "events{}"), ("total", "total{}")),
}


@dataclass(frozen=True)
class NetworkClass:
    """What the network needs of a drug class: its records' drug class and selections."""

    id: str
    label: str
    drug_class: str
    continuous: Selection | None
    response: Selection | None


@dataclass(frozen=True)
class ArmOut:
    """An arm (or a whole trial) of the network's records that does not enter it."""

    file: str
    row: int | None
    study: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "row": self.row, "study": self.study, "reason": self.reason}


@dataclass(frozen=True, eq=False)
class OutcomeNetwork:
    """The network of one outcome: its arms, the fit, and the same network with the
    kinds of control in ``lump`` lumped into the reference (a sensitivity analysis)."""

    outcome: str
    arms: pd.DataFrame
    out: tuple[ArmOut, ...]
    fit: NetworkResult
    lumped: NetworkResult | None

    @property
    def tag(self) -> str:
        """``smd``, ``md``, ``or``, ...: the measure, as file names use it."""
        return (self.fit.measure or self.outcome).lower()


@dataclass(frozen=True, eq=False)
class NetworkReport:
    spec: NetworkSpec
    networks: tuple[OutcomeNetwork, ...]
    #: Each class left out of the network, with the reason.
    left_out: tuple[tuple[str, str], ...]
    #: Sentences for the report's key findings.
    findings: tuple[str, ...] = ()


def _combine(arms: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The arms of one treatment in a trial taken together (several doses): their
    size, mean and SD as the Cochrane Handbook (section 6.5.2.10) combines groups."""
    groups = arms.groupby(keys, sort=False)
    n = groups["n"].sum()
    mean = (arms["n"] * arms["mean"]).groupby([arms[k] for k in keys], sort=False).sum() / n
    centre = pd.MultiIndex.from_frame(arms[keys]).map(mean.to_dict())
    within = ((arms["n"] - 1) * arms["sd"] ** 2).groupby([arms[k] for k in keys], sort=False).sum()
    between = (
        (arms["n"] * (arms["mean"] - np.asarray(centre, dtype=float)) ** 2)
        .groupby([arms[k] for k in keys], sort=False)
        .sum()
    )
    sd = np.sqrt((within + between) / (n - 1))
    return pd.DataFrame({"n": n, "mean": mean, "sd": sd}).reset_index()


#: Names the treatment of arm 1 or 2 of every record (a Series, or one name for all).
NodeNames = Callable[[pd.DataFrame, int], "pd.Series[str] | str"]


def _arm_rows(records: pd.DataFrame, outcome: str, node: NodeNames) -> pd.DataFrame:
    """Both arms of every record, in the records' order (arm 1, then arm 2); an arm
    shared by several records is kept once."""
    sides = []
    for side in (1, 2):
        part = pd.DataFrame(
            {
                "study": records["study_id"].to_numpy(),
                "arm": records[f"arm{side}_id"].to_numpy(),
                "treatment": node(records, side),
                "file": records["file"].to_numpy(),
                "row": records["row"].to_numpy(dtype=np.int64),
                "order": 2 * np.arange(len(records)) + side,
            }
        )
        for name, column in _ARM_COLUMNS[outcome]:
            part[name] = records[column.format(side)].to_numpy(dtype=np.float64)
        sides.append(part)
    arms = pd.concat(sides, ignore_index=True).sort_values("order", kind="stable")
    return arms.drop(columns="order").drop_duplicates(["study", "arm"]).reset_index(drop=True)


def network_arms(
    records: pd.DataFrame, outcome: str, node: NodeNames
) -> tuple[pd.DataFrame, tuple[ArmOut, ...]]:
    """One row per arm of each trial in ``records`` (see the module docstring):
    ``study``, ``treatment``, the numbers (``n``, ``mean``, ``sd`` or ``events``,
    ``total``), ``file`` and ``rows`` (the records the arm's numbers come from), and
    the arms and trials left out with their reasons.

    ``node(records, side)`` names the treatment of every record's arm 1 or 2.
    """
    arms = _arm_rows(records, outcome, node)
    needed = [name for name, _ in _ARM_COLUMNS[outcome]]
    missing = arms[needed].isna().any(axis=1)
    fraction = pd.Series(False, index=arms.index)
    if outcome == "response":
        events = arms["events"].astype(float)
        fraction = ~missing & (events != np.round(events))
    out = []
    dropped = arms[missing | fraction]
    for a, whole in zip(dropped.to_dict("records"), ~fraction[missing | fraction], strict=True):
        why = (
            "no " + " and no ".join(c for c in needed if pd.isna(a[c]))
            if whole
            else "a responder count that is not a whole number of people (imputed by the source)"
        )
        out.append(
            ArmOut(str(a["file"]), int(a["row"]), str(a["study"]), f"arm {a['arm']!r}: {why}")
        )
    arms = arms[~(missing | fraction)]
    keys = ["study", "treatment"]
    groups = arms.groupby(keys, sort=False)
    if outcome == "response":
        merged = groups[["events", "total"]].sum().reset_index()
    else:
        merged = _combine(arms, keys)
    # Where each arm's numbers came from: the file and the rows of its records.
    merged["file"] = groups["file"].first().to_numpy()
    merged["rows"] = groups["row"].agg(lambda r: " ".join(str(int(x)) for x in r)).to_numpy()
    size = merged.groupby("study")["treatment"].transform("size")
    for study in merged.loc[size < 2, "study"].unique():
        first = arms[arms["study"] == study].iloc[0]
        out.append(
            ArmOut(
                str(first["file"]),
                None,
                str(study),
                "trial left out: fewer than two arms with data",
            )
        )
    return merged[size >= 2].reset_index(drop=True), tuple(out)


def _node(spec: NetworkSpec, classes: Sequence[NetworkClass], lumped: bool) -> NodeNames:
    """The node of each record's arm: its class's drug node (or the drug it names), or
    the node of its kind of control (or the comparator it names)."""
    by_drug_class = {c.drug_class: spec.drug_nodes.get(c.id, "") for c in classes}

    def node(records: pd.DataFrame, side: int) -> pd.Series[str]:
        if side == 1:
            fixed = records["drug_class"].astype(str).map(by_drug_class).fillna("")
            return fixed.where(fixed != "", records["intervention"].astype(str))
        kind = records["comparator_kind"].astype(str)
        names = kind.map(spec.control_nodes).fillna("")
        names = names.where(names != "", records["comparator"].astype(str))
        if lumped:
            names = names.where(~kind.isin(spec.lump), spec.reference)
        return names

    return node


def _whole_trials(selection: Selection) -> Selection:
    """A class's selection without its filter on shared arms: a pairwise analysis keeps
    one comparison of a multi-arm trial so as not to count a shared arm twice, but the
    network keeps the trial whole and counts each arm once."""
    return dataclasses.replace(
        selection,
        where={k: v for k, v in selection.where.items() if k != "shared_arm"},
        exclude={k: v for k, v in selection.exclude.items() if k != "shared_arm"},
    )


def _records(
    frame: pd.DataFrame,
    spec: NetworkSpec,
    classes: Sequence[NetworkClass],
    outcome: str,
    select: Callable[[pd.DataFrame, Selection], pd.DataFrame],
) -> pd.DataFrame:
    parts = []
    for cls in classes:
        chosen = cls.continuous if outcome == "continuous" else cls.response
        if chosen is not None:
            parts.append(select(frame, _whole_trials(chosen)))
    link = spec.link_continuous if outcome == "continuous" else spec.link_response
    if link is not None:
        parts.append(select(frame, link))
    return pd.concat(parts) if parts else frame.iloc[:0]


def _fit(
    spec: NetworkSpec, arms: pd.DataFrame, outcome: str, options: dict[str, Any]
) -> NetworkResult:
    continuous = outcome == "continuous"
    return fit_network(
        arms,
        study="study",
        treatment="treatment",
        events=None if continuous else "events",
        n="n" if continuous else "total",
        mean="mean" if continuous else None,
        sd="sd" if continuous else None,
        measure=options["measure"] if continuous else spec.response_measure,
        method=spec.method,
        reference=spec.reference,
        small_values="good" if continuous and options["lower_is_better"] else "bad",
        level=options["level"],
    )


def run_networks(
    frame: pd.DataFrame,
    spec: NetworkSpec,
    classes: Sequence[NetworkClass],
    select: Callable[[pd.DataFrame, Selection], pd.DataFrame],
    *,
    measure: str,
    lower_is_better: bool,
    level: float,
) -> NetworkReport:
    """The network of each outcome the classes have records for.

    ``classes`` are the network's classes (``spec.classes``) and the classes left out
    (``spec.left_out``) are named with their reason. ``measure`` is the continuous
    outcome's measure (SMD or MD).
    """
    chosen = [c for c in classes if c.id in spec.classes]
    options = {"measure": measure, "lower_is_better": lower_is_better, "level": level}
    networks = []
    for outcome in ("continuous", "response"):
        records = _records(frame, spec, chosen, outcome, select)
        if records.empty:
            continue
        lump_main = spec.controls == "lumped"
        try:
            arms, out = network_arms(records, outcome, _node(spec, chosen, lump_main))
            fit = _fit(spec, arms, outcome, options)
            lumped = None
            if not lump_main and spec.lump:
                other, _ = network_arms(records, outcome, _node(spec, chosen, True))
                lumped = _fit(spec, other, outcome, options)
        except MetaanError as exc:
            raise type(exc)(f"the network of the {outcome} outcome: {exc}") from exc
        networks.append(OutcomeNetwork(outcome, arms, out, fit, lumped))
    labels = {c.id: c.label for c in classes}
    left = tuple((labels.get(cid, cid), why) for cid, why in spec.left_out.items())
    return NetworkReport(spec, tuple(networks), left)


# ----------------------------------------------------------------------------- the numbers read out


def pair(fit: NetworkResult, a: str, b: str) -> dict[str, Any] | None:
    """Treatment a versus b in the random-effects network: the estimate, its CI and p,
    the trials comparing them directly, and the direct and indirect estimates with the
    test of their difference (back-calculation)."""
    if a not in fit.treatments or b not in fit.treatments:
        return None
    i, j = fit.index(a), fit.index(b)
    est = fit.random
    crit = float((est.upper[i, j] - est.TE[i, j]) / est.seTE[i, j])
    out: dict[str, Any] = {
        "estimate": float(est.TE[i, j]),
        "se": float(est.seTE[i, j]),
        "ci_lb": float(est.lower[i, j]),
        "ci_ub": float(est.upper[i, j]),
        "pval": float(est.pval[i, j]),
        "k": int(fit.direct_k[i, j]),
    }
    split = fit.netsplit
    name, sign = f"{a}:{b}", 1.0
    if name not in split.comparisons:
        name, sign = f"{b}:{a}", -1.0
    c = split.comparisons.index(name)
    s = split.random
    for kind in ("direct", "indirect"):
        value, se = float(getattr(s, kind)[c]), float(getattr(s, f"{kind}_se")[c])
        if math.isfinite(value):
            out[kind] = {
                "estimate": sign * value,
                "se": se,
                "ci_lb": sign * value - crit * se,
                "ci_ub": sign * value + crit * se,
            }
    out["proportion_direct"] = float(s.proportion[c])
    out["diff_pval"] = float(s.pval[c]) if math.isfinite(s.pval[c]) else None
    return out


def effect_text(fit: NetworkResult, estimate: float, lb: float, ub: float) -> str:
    """``0.53 [0.41, 0.66]``, ratios for OR and RR."""
    if fit.is_ratio:
        estimate, lb, ub = math.exp(estimate), math.exp(lb), math.exp(ub)
    d = 2
    return f"{fmt_typeset(estimate, d)} [{fmt_typeset(lb, d)}, {fmt_typeset(ub, d)}]"


# ----------------------------------------------------------------------------- the words


def _p(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "p not estimable"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _tau2(fit: NetworkResult) -> str:
    return "not estimable" if fit.tau2 is None else fmt_typeset(fit.tau2, 3)


def summary_text(net: OutcomeNetwork, what: str) -> str:
    """The network in one paragraph: trials, treatments, designs, τ², I² and Q."""
    fit = net.fit
    multi = sum(k for d, k in fit.designs if len(d) > 2)
    i2 = "" if fit.I2 is None else f", I² = {fit.I2:.0f}%"
    return (
        f"The network of {what} has {fit.k} trials ({multi} with three or more arms, kept "
        f"whole) comparing {fit.n} treatments in {fit.d} designs, measured as "
        f"{fit.measure}: τ² = {_tau2(fit)} ({fit.method}){i2}; Q = {fmt_typeset(fit.Q, 1)} on "
        f"{fit.df_Q} df ({_p(fit.pval_Q)})."
    )


def inconsistency_text(net: OutcomeNetwork) -> str:
    """The design-by-treatment decomposition of Q, in words."""
    dec = net.fit.decomposition
    if dec is None:
        return "The network has one design only, so there is nothing to be inconsistent."
    verdict = (
        "Direct and indirect evidence disagree more than chance would explain"
        if dec.pval_between is not None and dec.pval_between < 0.05
        else "The test finds no disagreement beyond chance between designs, which is weak "
        "reassurance: it has little power when most designs are compared by few trials"
    )
    return (
        f"Heterogeneity within designs: Q = {fmt_typeset(dec.Q_within, 1)} on "
        f"{dec.df_within} df ({_p(dec.pval_within)}); inconsistency between designs: "
        f"Q = {fmt_typeset(dec.Q_between, 1)} on {dec.df_between} df "
        f"({_p(dec.pval_between)}). {verdict}."
    )


def link_text(net: OutcomeNetwork, a: str, b: str, label: str) -> str:
    """Treatment a versus b: the network estimate, and its direct and indirect parts."""
    fit = net.fit
    found = pair(fit, a, b)
    if found is None:
        return ""
    text = (
        f"{a[:1].upper()}{a[1:]} versus {b}: {fit.measure} = "
        f"{effect_text(fit, found['estimate'], found['ci_lb'], found['ci_ub'])} "
        f"in the network ({_p(found['pval'])})."
    )
    direct, indirect = found.get("direct"), found.get("indirect")
    if direct is not None:
        text += (
            f" Directly ({label}, {found['k']} trial{'s' if found['k'] != 1 else ''}): "
            f"{effect_text(fit, direct['estimate'], direct['ci_lb'], direct['ci_ub'])}"
        )
    if indirect is not None:
        text += (
            f"; indirectly, through the rest of the network: "
            f"{effect_text(fit, indirect['estimate'], indirect['ci_lb'], indirect['ci_ub'])}"
        )
    if direct is not None and indirect is not None:
        share = found["proportion_direct"]
        text += (
            f". The direct trial carries {share:.0%} of the network estimate's information; "
            f"the two disagree by no more than chance would explain "
            f"({_p(found['diff_pval'])}), but with one trial on one side the test can "
            "detect only a large disagreement"
            if found["diff_pval"] is not None and found["diff_pval"] >= 0.05
            else f". Direct and indirect evidence disagree ({_p(found['diff_pval'])})"
        )
    return text + "."


#: Treatments in at most this many trials are named as thinly evidenced next to the ranks.
THIN = 5


def ranking_text(net: OutcomeNetwork) -> str:
    """The P-scores, with the caveat that ranks mislead when evidence is thin."""
    fit = net.fit
    order = np.argsort(-fit.random.pscore, kind="stable")
    listed = "; ".join(f"{fit.treatments[i]} {fmt_typeset(fit.random.pscore[i], 2)}" for i in order)
    trials = _trials_per_treatment(net)
    thin = [f"{t} ({trials[t]})" for t in fit.treatments if trials[t] <= THIN]
    few = f" Here {'; '.join(thin)} rest on {THIN} trials or fewer (in brackets)." if thin else ""
    return (
        f"P-scores (random effects; 1 = certainly better than every other treatment): "
        f"{listed}. A rank says nothing about how large the differences are, or how "
        "certain: a treatment tested in a few small trials can get an extreme rank from a "
        f"wide interval, and one trial can change it.{few} Read the ranking with the "
        "estimates and their intervals beside it."
    )


def _trials_per_treatment(net: OutcomeNetwork) -> dict[str, int]:
    """The trials in which each treatment has an arm."""
    counts = net.arms.groupby("treatment")["study"].nunique()
    return {t: int(counts.get(t, 0)) for t in net.fit.treatments}


def heterogeneity_text(net: OutcomeNetwork, own: dict[str, float | None]) -> str:
    """The network's one τ² against the τ² of each class's trials on their own."""
    fit = net.fit
    if fit.tau2 is None:
        return ""
    parts = [
        f"{label} alone (the class analysis), τ² = {fmt_typeset(tau2, 3)} "
        f"({'larger than' if tau2 > fit.tau2 else 'no larger than'} the network's)"
        for label, tau2 in own.items()
        if tau2 is not None
    ]
    if not parts:
        return ""
    larger = any(t is not None and t > fit.tau2 for t in own.values())
    consequence = (
        "; where a class's own τ² is larger, the network's intervals for its comparisons "
        "can be narrower than its own analysis gives"
        if larger
        else ""
    )
    return (
        f"The network assumes one between-trial variance for every comparison; "
        f"{'; '.join(parts)}{consequence}."
    )


def lumped_text(net: OutcomeNetwork, spec: NetworkSpec) -> str:
    """The focus comparison when the kinds of control in ``spec.lump`` are placebo."""
    if net.lumped is None or len(spec.focus) != 2:
        return ""
    a, b = spec.focus
    main, lumped = pair(net.fit, a, b), pair(net.lumped, a, b)
    if main is None or lumped is None:
        return ""
    kinds = ", ".join(k.replace("_", " ") for k in spec.lump)
    others = [k.replace("_", " ") for k in spec.lump if k != spec.reference]
    assumed = " or ".join(f"an {k}" if k[0] in "aeiou" else f"a {k}" for k in others)
    return (
        f"Sensitivity analysis: with the psilocybin trials' controls ({kinds}) all counted "
        f"as {spec.reference}, {a} versus {b} is {net.fit.measure} = "
        f"{effect_text(net.lumped, lumped['estimate'], lumped['ci_lb'], lumped['ci_ub'])}, "
        f"against {effect_text(net.fit, main['estimate'], main['ci_lb'], main['ci_ub'])} "
        "with each kind of control as its own treatment. Lumping borrows more trials for "
        f"the link to {spec.reference}, and so gives a narrower interval, at the price of "
        f"assuming that {assumed or 'every control'} works like {spec.reference}."
    )


_TAU2 = {
    "DL": "netmeta's generalised DerSimonian-Laird estimator",
    "REML": "restricted maximum likelihood (REML)",
    "ML": "maximum likelihood",
}


def methods_paragraph(spec: ReportSpec) -> str:
    """The methods paragraph of the network meta-analysis ("" without one)."""
    network = spec.network
    if network is None or not network.classes:
        return ""
    return (
        "The network meta-analysis fits the graph-theoretical model (Rücker 2012) with "
        f"random effects, τ² by {_TAU2.get(network.method, network.method)} as R's netmeta "
        "3.4 estimates it, multi-arm trials kept whole and reweighted, the "
        "design-by-treatment decomposition of Q (Krahn et al. 2013), back-calculated direct "
        "and indirect evidence and P-scores (Rücker & Schwarzer 2015); its numbers are "
        "checked against netmeta to the same tolerance. An indirect comparison of two "
        "pooled estimates (Bucher et al. 1997) keeps their inference: with a Hartung-Knapp "
        "estimate it uses Student's t with the smaller degrees of freedom."
    )
