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

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from metaan._format import fmt_typeset
from metaan.errors import MetaanError
from metaan.network import NetworkResult, fit_network
from metaan.report.spec import Selection

__all__ = [
    "ArmOut",
    "NetworkClass",
    "NetworkReport",
    "NetworkSpec",
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
class NetworkSpec:
    """The ``[network]`` table of a report specification."""

    #: The classes whose trials form the network (their continuous and response
    #: selections), in order.
    classes: tuple[str, ...] = ()
    #: The node of a class's drug arms: a name (all doses of psilocybin are
    #: "psilocybin"), or "" for the drug the record names (one node per SSRI).
    drug_nodes: dict[str, str] = field(default_factory=dict)
    #: The node of each kind of control (the records' ``comparator_kind``), or "" for
    #: the drug the record names as comparator (an active drug).
    control_nodes: dict[str, str] = field(default_factory=dict)
    #: ``nodes``: each kind of control is its own treatment; ``lumped``: the kinds in
    #: ``lump`` are the reference treatment.
    controls: str = field(default="nodes", metadata={"choices": ("nodes", "lumped")})
    #: Kinds of control lumped into the reference (in the main network with
    #: ``controls = "lumped"``, else in a sensitivity analysis).
    lump: tuple[str, ...] = ()
    reference: str = "placebo"
    method: str = field(default="REML", metadata={"choices": ("DL", "REML", "ML")})
    response_measure: str = field(default="OR", metadata={"choices": ("OR", "RR", "RD")})
    #: The trial that compares two classes directly, for each outcome.
    link_label: str = ""
    link_continuous: Selection | None = None
    link_response: Selection | None = None
    #: The comparison the section reports in detail (treatments a and b).
    focus: tuple[str, ...] = ()
    #: Classes left out of the network, with the reason.
    left_out: dict[str, str] = field(default_factory=dict)
    #: Plain-language notes on transitivity, printed under the network.
    caveats: tuple[str, ...] = ()


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


def _combine(group: pd.DataFrame) -> pd.Series:
    # Cochrane Handbook 6.5.2.10: the size, mean and SD of groups taken together.
    n = float(group["n"].sum())
    mean = float((group["n"] * group["mean"]).sum()) / n
    within = float(((group["n"] - 1) * group["sd"] ** 2).sum())
    between = float((group["n"] * (group["mean"] - mean) ** 2).sum())
    return pd.Series({"n": n, "mean": mean, "sd": math.sqrt((within + between) / (n - 1))})


def _arm_rows(
    records: pd.DataFrame, outcome: str, node: Callable[[pd.Series, int], str]
) -> pd.DataFrame:
    rows = []
    for _, r in records.iterrows():
        for side in (1, 2):
            row: dict[str, Any] = {"study": r["study_id"], "arm": r[f"arm{side}_id"]}
            row |= {"treatment": node(r, side), "file": r["file"], "row": int(r["row"])}
            for name, column in _ARM_COLUMNS[outcome]:
                row[name] = r[column.format(side)]
            rows.append(row)
    return pd.DataFrame(rows).drop_duplicates(["study", "arm"])


def network_arms(
    records: pd.DataFrame, outcome: str, node: Callable[[pd.Series, int], str]
) -> tuple[pd.DataFrame, tuple[ArmOut, ...]]:
    """One row per arm of each trial in ``records`` (see the module docstring):
    ``study``, ``treatment``, the numbers (``n``, ``mean``, ``sd`` or ``events``,
    ``total``), and the arms and trials left out with their reasons.

    ``node(record, side)`` names the treatment of the record's arm 1 or 2.
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
    if outcome == "response":
        merged = arms.groupby(keys, sort=False)[["events", "total"]].sum().reset_index()
    else:
        merged = arms.groupby(keys, sort=False)[["n", "mean", "sd"]].apply(_combine).reset_index()
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


def _node(
    spec: NetworkSpec, classes: Sequence[NetworkClass], lumped: bool
) -> Callable[[pd.Series, int], str]:
    """The node of a record's arm: its class's drug node (or the drug it names), or the
    node of its kind of control (or the comparator it names)."""
    by_drug_class = {c.drug_class: c.id for c in classes}

    def node(r: pd.Series, side: int) -> str:
        if side == 1:
            cid = by_drug_class.get(str(r["drug_class"]), "")
            return spec.drug_nodes.get(cid, "") or str(r["intervention"])
        kind = str(r["comparator_kind"])
        if lumped and kind in spec.lump:
            return spec.reference
        return spec.control_nodes.get(kind, "") or str(r["comparator"])

    return node


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
            parts.append(select(frame, chosen))
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
        f"{fit.measure}. One between-trial variance is assumed for every comparison: "
        f"τ² = {_tau2(fit)} ({fit.method}){i2}; Q = {fmt_typeset(fit.Q, 1)} on "
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
        f"{a} versus {b}: {fit.measure} = "
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


def ranking_text(net: OutcomeNetwork) -> str:
    """The P-scores, with the caveat that ranks mislead when evidence is thin."""
    fit = net.fit
    order = np.argsort(-fit.random.pscore, kind="stable")
    listed = "; ".join(f"{fit.treatments[i]} {fmt_typeset(fit.random.pscore[i], 2)}" for i in order)
    return (
        f"P-scores (random effects; 1 = certainly better than every other treatment): "
        f"{listed}. A rank says nothing about how large the differences are or how "
        "certain: treatments tested in a handful of small trials (psilocybin, its kinds "
        "of control) get extreme ranks from wide intervals, and a rank can change with "
        "one trial. Read the ranking with the estimates and their intervals beside it."
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
