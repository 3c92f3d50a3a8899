"""Plain-language text generated from the results: labels, evidence notes and methods.

The wording follows the numbers and the specification: nothing here is written
by hand for a particular data set, so a change in the data changes the text,
and the measure, the outcome's name and its unit come from the spec (an MD
report speaks of points on its scale, an OR report of odds, neither of g).
"""

from __future__ import annotations

import math

from metaan._format import fmt_typeset as fmt
from metaan.report.analyses import Analysis, ClassResults, ReportResults
from metaan.report.spec import ModelSpec, OutcomeSpec, ReportSpec

__all__ = [
    "axis_label",
    "effect_symbol",
    "evidence_note",
    "fmt",
    "fmt_ci",
    "fmt_effect",
    "fmt_p",
    "key_findings",
    "measure_name",
    "methods_text",
    "p_text",
    "size_word",
]

_ESTIMATORS = {
    "EE": "a common-effect (inverse-variance) model",
    "DL": "the DerSimonian-Laird estimator of tau²",
    "HE": "the Hedges estimator of tau²",
    "HS": "the Hunter-Schmidt estimator of tau²",
    "SJ": "the Sidik-Jonkman estimator of tau²",
    "ML": "maximum likelihood for tau²",
    "REML": "restricted maximum likelihood (REML) for tau²",
    "EB": "the empirical Bayes estimator of tau²",
    "PM": "the Paule-Mandel estimator of tau²",
}
_RATIOS = ("OR", "RR")
#: Cohen's (1988) conventional thresholds for standardised differences.
_COHEN = (0.2, 0.5, 0.8)


def fmt_ci(lb: float | None, ub: float | None, digits: int = 2) -> str:
    return f"[{fmt(lb, digits)}, {fmt(ub, digits)}]"


def fmt_p(p: float | None) -> str:
    if p is None:
        return "–"
    if p < 0.001:
        return "< 0.001"
    return f"{p:.3f}"


def p_text(p: float | None) -> str:
    """``p = 0.012`` or ``p < 0.001``, for running text."""
    text = fmt_p(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def measure_name(measure: str, outcome: OutcomeSpec) -> str:
    """The measure in words, e.g. ``standardised mean difference (Hedges' g)``."""
    return {
        "SMD": "standardised mean difference (Hedges' g)",
        "MD": f"mean difference ({outcome.unit})",
        "OR": "odds ratio",
        "RR": "risk ratio",
        "RD": "risk difference",
    }.get(measure, measure)


def effect_symbol(measure: str) -> str:
    """The short name of an effect in running text: ``g``, ``MD``, ``OR``, ..."""
    return {"SMD": "g"}.get(measure, measure)


def axis_label(measure: str, outcome: OutcomeSpec) -> str:
    """The label of an effect axis for a measure."""
    name = measure_name(measure, outcome)
    text = name[:1].upper() + name[1:]
    return f"{text} (log scale)" if measure in _RATIOS else text


def show(value: float, measure: str) -> float:
    """A value on the analysis scale as the reader sees it (ratios back-transformed)."""
    return math.exp(value) if measure in _RATIOS else value


def fmt_effect(value: float, lb: float, ub: float, measure: str, digits: int = 2) -> str:
    """``-0.90 [-1.26, -0.55]`` or, for a ratio, ``1.57 [1.47, 1.68]``."""
    interval = fmt_ci(show(lb, measure), show(ub, measure), digits)
    return f"{fmt(show(value, measure), digits)} {interval}"


def size_word(value: float, measure: str, outcome: OutcomeSpec) -> str:
    """negligible / small / moderate / large, from the spec's thresholds ('' if none apply)."""
    thresholds = outcome.size_thresholds or (_COHEN if measure == "SMD" else ())
    if len(thresholds) != 3:
        return ""
    a = abs(math.log(value) if measure in _RATIOS and value > 0 else value)
    words = ("negligible", "small", "moderate", "large")
    return words[sum(a >= t for t in thresholds)]


def evidence_note(c: ClassResults, spec: ReportSpec) -> str:
    """How strong the evidence for one class is, in plain words."""
    a = c.primary
    f = a.fit
    outcome = spec.outcome
    if f is None:
        have = f"{a.k} comparison{'s' if a.k != 1 else ''}" if a.k else "no comparison"
        return (
            f"Insufficient evidence to pool: {have} with the arm-level data a "
            f"{measure_name(a.measure, outcome)} needs. No pooled estimate is given."
        )
    parts = [
        f"{a.trials} trial{'s' if a.trials != 1 else ''} ({round(a.participants)} participants)"
    ]
    word = size_word(f.estimate, a.measure, outcome)
    effect = f"a {word} pooled effect" if word else "a pooled effect"
    if f.ci_ub < 0 or f.ci_lb > 0:
        better = (f.estimate < 0) == (outcome.lower_is_better if a.continuous else False)
        subject = outcome.continuous if a.continuous else outcome.response
        direction = f"{'better' if better else 'worse'} {subject} than control"
        parts.append(f"{effect} ({direction}) whose confidence interval excludes no difference")
    else:
        parts.append(f"{effect} whose confidence interval includes no difference")
    if f.pi_lb < 0 < f.pi_ub:
        parts.append(
            "the prediction interval crosses no difference, so a new trial could find no benefit"
        )
    else:
        parts.append("the prediction interval lies on one side of no difference")
    if f.I2 is not None:
        het = "low" if f.I2 < 30 else "moderate" if f.I2 < 60 else "substantial"
        parts.append(f"{het} heterogeneity (I² = {fmt(f.I2, 0)}%)")
    rob = a.records["rob_overall"].astype("string").fillna("")
    if (rob != "").any():
        parts.append(f"{int((rob == 'high').sum())} of {a.k} comparisons at high risk of bias")
    else:
        parts.append("no risk-of-bias assessment in the source")
    if a.trials < 10 or a.participants < 1000:
        parts.append("evidence is thin: few or small trials")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def _shared(model: ModelSpec) -> str:
    if model.shared_control == "split":
        text = (
            "When several comparisons of one trial share a control arm (multi-arm trials), "
            "the shared arm's sample size (and, for binary outcomes, its events) is divided "
            "equally between the comparisons, so that no participant is counted twice "
            "(Cochrane Handbook 23.3.4)."
        )
    else:
        text = (
            "When several comparisons of one trial share a control arm, only the first is used "
            "and the others are listed as excluded."
        )
    if model.effect_sizes == "reported":
        text += " A source review's own effect sizes are used as published, without splitting."
    return text


def _effects_text(results: ReportResults) -> str:
    m = results.spec.model
    if m.effect_sizes == "recomputed":
        return "Every effect size is recomputed by metaan from the arm-level data."
    counts = [
        f"{a.label} ({a.measure}): {a.effect_sources.get('reported', 0)} reported, "
        f"{a.effect_sources.get('recomputed', 0)} recomputed"
        for a in results.analyses()
        if a.k
    ]
    return (
        "Where a record carries its source review's own effect size and standard error for "
        "the measure, that published number is used, so that the review's own analysis is "
        "reproduced; otherwise the effect is "
        "recomputed from the arm-level data. By analysis: " + "; ".join(counts) + "."
    )


def _measure_text(m: ModelSpec, outcome: OutcomeSpec) -> str:
    if m.measure == "SMD":
        return (
            "standardised mean differences (Hedges' g with the exact small-sample correction "
            "and the large-sample variance when computed from the arm-level n, mean and SD)"
        )
    return f"raw mean differences in {outcome.unit}"


def methods_text(results: ReportResults, versions: dict[str, str]) -> list[str]:
    """The methods section, one paragraph per string, generated from the settings."""
    spec = results.spec
    m, outcome = spec.model, spec.outcome
    test = (
        "Confidence intervals for the pooled effects use the Hartung-Knapp-Sidik-Jonkman "
        "method (t distribution with k − 1 degrees of freedom)"
        if m.test == "knha"
        else "Confidence intervals are Wald intervals (normal distribution)"
    )
    pi = (
        "prediction intervals follow R meta's convention (t(k − 1) with the unadjusted "
        "standard error)"
        if m.prediction == "meta"
        else "prediction intervals follow metafor 3.8 (t(k − 1) with the adjusted standard "
        "error under Knapp-Hartung)"
    )
    has_continuous = any(c.continuous is not None for c in results.classes)
    has_response = any(c.response for c in results.classes)
    pooled = []
    if has_continuous:
        pooled.append(f"{outcome.continuous} as {_measure_text(m, outcome)}")
    if has_response:
        names = " and ".join(measure_name(x, outcome) + "s" for x in m.response_measures)
        pooled.append(f"{outcome.response} ({outcome.response_definition}) as {names}")
    change = ""
    if has_continuous:
        change = (
            " Records that may be endpoint or change scores are included and flagged; records "
            "that are certainly change scores are left out in a sensitivity analysis "
            "(Cochrane Handbook 10.5.2)."
            if m.change_scores == "include"
            else " Change-from-baseline scores are left out (Cochrane Handbook 10.5.2)."
        )
    imputed = (
        " Values imputed by the source reviews are included and flagged; a sensitivity "
        "analysis leaves them out."
        if m.imputed == "include"
        else " Records with imputed values are left out."
    )
    from metaan.report.dependent import methods_paragraph
    from metaan.report.network import methods_paragraph as network_paragraph

    shared = methods_paragraph(spec, results.sections.get("dependent"))
    network = network_paragraph(spec)
    paragraphs = [
        f"The report pools {'; and '.join(pooled)}, in random-effects models with "
        f"{_ESTIMATORS.get(m.method, m.method)}, solved to 1e-14 relative by a bracketed Newton "
        f"search. {test}; {pi}. Heterogeneity is described by Cochran's Q, I² and tau², with "
        f"Q-profile confidence intervals (Viechtbauer 2007). The confidence level is {m.level:g}%.",
        _effects_text(results),
        f"{_shared(m)}{change}{imputed}",
        "Sensitivity analyses leave out one comparison at a time, compute influence diagnostics "
        "(studentised residuals, DFFITS, Cook's distance, covariance ratios; Viechtbauer & "
        "Cheung 2010), and refit without trials at high risk of bias (RoB 2), without "
        "open-label trials and without trials outside the declared populations. Small-study "
        "effects are examined with contour-enhanced funnel plots, Egger's regression test and "
        f"trim-and-fill (L0 estimator) where a class has at least {spec.bias.min_k} comparisons.",
        "Every number is computed by metaan "
        f"{versions.get('metaan', '')}, whose statistics are checked against R's metafor 3.8 "
        "to a relative tolerance of 1e-9 on published data sets. Software: "
        + ", ".join(f"{k} {v}" for k, v in versions.items() if k != "metaan")
        + ".",
    ]
    for extra in (shared, network):  # after the sensitivity analyses, before the software
        if extra:
            paragraphs.insert(len(paragraphs) - 1, extra)
    return paragraphs


def key_findings(results: ReportResults) -> list[str]:
    """Short sentences for the top of the report, one per class and analysis."""
    out = []
    for c in results.classes:
        for a in c.analyses:
            out.append(_finding(c, a, results.spec.outcome))
    for section in results.sections.values():
        out.extend(getattr(section, "findings", ()))
    return out


def _finding(c: ClassResults, a: Analysis, outcome: OutcomeSpec) -> str:
    f = a.fit
    subject = outcome.continuous if a.continuous else outcome.response
    if f is None:
        return f"{c.label}, {subject}: {a.note}."
    return (
        f"{c.label}, {subject}: {effect_symbol(a.measure)} = "
        f"{fmt_effect(f.estimate, f.ci_lb, f.ci_ub, a.measure)} from {a.trials} trials; "
        f"prediction interval {fmt_ci(show(f.pi_lb, a.measure), show(f.pi_ub, a.measure))}."
    )
