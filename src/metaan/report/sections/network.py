"""Section: the network meta-analysis of psilocybin, the SSRIs and placebo.

The computations are :mod:`metaan.report.network`'s; this module lays them out: the
network graph, every treatment against placebo with its P-score, the league table as a
heat map, the inconsistency test and netsplit (psilocybin against escitalopram, direct
against indirect), the caveat on ranks and the notes on transitivity.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from metaan.report.analyses import ReportResults, select
from metaan.report.network import (
    NetworkClass,
    NetworkReport,
    OutcomeNetwork,
    effect_text,
    heterogeneity_text,
    inconsistency_text,
    link_text,
    lumped_text,
    pair,
    ranking_text,
    run_networks,
    summary_text,
)
from metaan.report.sections._base import Section


def _headings(results: ReportResults, computed: NetworkReport) -> list[tuple[str, str]]:
    return [("network", "Network meta-analysis")]


def _run(results: ReportResults) -> NetworkReport | None:
    spec = results.spec.network
    if spec is None or not spec.classes:
        return None
    classes = [
        NetworkClass(c.id, c.label, c.drug_class, c.continuous, c.response)
        for c in results.spec.classes
    ]
    report = run_networks(
        results.studies.frame,
        spec,
        classes,
        select,
        measure=results.spec.model.measure,
        lower_is_better=results.spec.outcome.lower_is_better,
        level=results.spec.model.level,
    )
    return dataclasses.replace(report, findings=_findings(results, report))


def _what(results: ReportResults, net: OutcomeNetwork) -> str:
    outcome = results.spec.outcome
    return outcome.continuous if net.outcome == "continuous" else outcome.response


def _findings(results: ReportResults, report: NetworkReport) -> tuple[str, ...]:
    if len(report.spec.focus) != 2:
        return ()
    a, b = report.spec.focus
    out = []
    for net in report.networks:
        found = pair(net.fit, a, b)
        if found is None:
            continue
        effect = effect_text(net.fit, found["estimate"], found["ci_lb"], found["ci_ub"])
        out.append(
            f"Network meta-analysis, {_what(results, net)}: {a} versus {b}, "
            f"{net.fit.measure} = {effect}, combining {found['k']} direct trial"
            f"{'s' if found['k'] != 1 else ''} with the indirect evidence through "
            f"{net.fit.reference}; it rests on trials that differ in population, blinding "
            "and control (see the network section)."
        )
    return tuple(out)


def _figures(results: ReportResults, computed: NetworkReport) -> dict[str, Any]:
    """The graph and league table of the first outcome's network, and for every
    outcome the treatments against the reference and the focus comparison split into
    direct and indirect evidence."""
    from metaan import plots

    figures: dict[str, Any] = {}
    focus = computed.spec.focus
    for number, net in enumerate(computed.networks):
        what, tag = _what(results, net), net.tag
        if number == 0:
            figures[f"network_graph_{tag}"] = plots.network_graph(
                net.fit, title=f"The network of trials: {what}"
            )
            figures[f"network_league_{tag}"] = plots.league_heatmap(
                net.fit, title=f"League table: {what}"
            )
        figures[f"network_forest_{tag}"] = plots.network_forest(
            net.fit,
            groups=("drug", net.fit.reference),
            title=f"Every treatment against {net.fit.reference}: {what}",
        )
        found = pair(net.fit, *focus) if len(focus) == 2 else None
        if found is not None and "direct" in found and "indirect" in found:
            figures[f"network_netsplit_{tag}"] = plots.netsplit_forest(
                net.fit.netsplit,
                comparisons=[":".join(focus)],
                title=f"{focus[0][:1].upper()}{focus[0][1:]} versus {focus[1]}, direct and "
                f"indirect: {what}",
            )
    return figures


def _relative(frame: pd.DataFrame, results: ReportResults) -> pd.DataFrame:
    from metaan.report.serialize import relative

    base = results.spec.path.parent
    return frame.assign(file=[relative(f, base) for f in frame["file"]])


def _tables(results: ReportResults, computed: NetworkReport) -> dict[str, pd.DataFrame]:
    out: dict[str, pd.DataFrame] = {}
    for net in computed.networks:
        tag = net.tag
        out[f"network_{tag}_estimates"] = net.fit.to_frame()
        out[f"network_{tag}_league"] = net.fit.league().reset_index()
        out[f"network_{tag}_netsplit"] = net.fit.netsplit.to_frame("random")
        out[f"network_{tag}_arms"] = _relative(net.arms, results)
        out[f"network_{tag}_left_out"] = _relative(
            pd.DataFrame(
                [o.to_dict() for o in net.out], columns=["file", "row", "study", "reason"]
            ),
            results,
        )
    return out


def _data(results: ReportResults, computed: NetworkReport) -> dict[str, Any]:
    out: dict[str, Any] = {"left_out": [list(x) for x in computed.left_out]}
    for net in computed.networks:
        out[net.outcome] = {
            "measure": net.fit.measure,
            "fit": net.fit.to_dict(),
            "arms": _relative(net.arms, results).to_dict(orient="records"),
            "left_out": _relative(
                pd.DataFrame(
                    [o.to_dict() for o in net.out], columns=["file", "row", "study", "reason"]
                ),
                results,
            ).to_dict(orient="records"),
            "lumped": None if net.lumped is None else net.lumped.to_dict(),
        }
    return out


def _outcome_context(
    results: ReportResults, computed: NetworkReport, net: OutcomeNetwork
) -> dict[str, Any]:
    spec = computed.spec
    fit = net.fit
    ref = fit.index(fit.reference)
    rows = []
    for i, name in enumerate(fit.treatments):
        if i == ref:
            continue
        te, lo, hi = fit.random.TE[i, ref], fit.random.lower[i, ref], fit.random.upper[i, ref]
        text = effect_text(fit, float(te), float(lo), float(hi))
        estimate, ci = text.split(" ", 1)
        rows.append(
            {
                "treatment": name,
                "estimate": estimate,
                "ci": ci,
                "k": int(fit.direct_k[i, ref]),
                "pscore": f"{fit.random.pscore[i]:.2f}",
            }
        )
    tag, what = net.tag, _what(results, net)
    link = ""
    if len(spec.focus) == 2:
        link = link_text(net, spec.focus[0], spec.focus[1], spec.link_label)
    return {
        "title": what[:1].upper() + what[1:],
        "summary": summary_text(net, what),
        "heterogeneity": heterogeneity_text(net, _own_tau2(results, computed, net)),
        "graph": f"network_graph_{tag}",
        "forest": f"network_forest_{tag}",
        "league": f"network_league_{tag}",
        "netsplit": f"network_netsplit_{tag}",
        "rows": rows,
        "symbol": fit.measure or "",
        "reference": fit.reference,
        "inconsistency": inconsistency_text(net),
        "link": link,
        "ranking": ranking_text(net),
        "lumped": lumped_text(net, spec),
        "out": len(net.out),
        "tag": tag,
    }


def _own_tau2(
    results: ReportResults, computed: NetworkReport, net: OutcomeNetwork
) -> dict[str, float | None]:
    """τ² of each network class's own analysis of the outcome, where it has one on the
    network's measure."""
    out: dict[str, float | None] = {}
    for cid in computed.spec.classes:
        cls = results.class_by_id(cid)
        analyses = [cls.continuous] if net.outcome == "continuous" else list(cls.response)
        for a in analyses:
            if a is not None and a.fit is not None and a.measure == net.fit.measure:
                out[cls.label] = a.fit.tau2
    return out


def _context(results: ReportResults, computed: NetworkReport) -> dict[str, Any]:
    spec = computed.spec
    labels = {c.id: c.label for c in results.classes}
    listed = [labels.get(c, c) for c in spec.classes]
    names = ", ".join(listed[:-1]) + (" and " if len(listed) > 1 else "") + listed[-1]
    return {
        "classes": names,
        "method": spec.method,
        "link_label": spec.link_label,
        "controls": spec.controls,
        "outcomes": [_outcome_context(results, computed, net) for net in computed.networks],
        "left_out": [f"{label} are not in the network: {why}" for label, why in computed.left_out],
        "caveats": list(spec.caveats),
    }


SECTION = Section(
    id="network",
    headings=_headings,
    run=_run,
    figures=_figures,
    tables=_tables,
    data=_data,
    context=_context,
)
