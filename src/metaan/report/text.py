"""Plain-language text generated from the results: evidence notes and methods.

The wording follows the numbers: nothing here is written by hand for a
particular data set, so a change in the data changes the text.
"""

from __future__ import annotations

from metaan._format import fmt_typeset as fmt
from metaan.report.analyses import Analysis, ClassResults, ReportResults
from metaan.report.spec import ModelSpec

__all__ = ["evidence_note", "fmt", "fmt_ci", "fmt_p", "key_findings", "methods_text", "p_text"]

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


def _size_word(g: float) -> str:
    # Cohen's (1988) conventional thresholds for standardised differences.
    a = abs(g)
    if a < 0.2:
        return "negligible"
    if a < 0.5:
        return "small"
    if a < 0.8:
        return "moderate"
    return "large"


def evidence_note(c: ClassResults) -> str:
    """How strong the evidence for one class is, in plain words."""
    a = c.continuous
    f = a.fit
    if f is None:
        have = f"{a.k} comparison{'s' if a.k != 1 else ''}" if a.k else "no comparison"
        return (
            f"Insufficient evidence to pool: {have} with the arm-level data a standardised "
            "mean difference needs. No pooled estimate is given."
        )
    parts = []
    trials = a.trials
    n = round(a.participants)
    parts.append(f"{trials} trial{'s' if trials != 1 else ''} ({n} participants)")
    word = _size_word(f.estimate)
    excludes_null = f.ci_ub < 0 or f.ci_lb > 0
    if excludes_null:
        direction = "less" if f.estimate < 0 else "more"
        parts.append(
            f"a {word} pooled effect ({direction} depression than control) whose confidence "
            "interval excludes no difference"
        )
    else:
        parts.append(f"a {word} pooled effect whose confidence interval includes no difference")
    if f.pi_lb < 0 < f.pi_ub:
        parts.append("the prediction interval crosses zero, so a new trial could find no benefit")
    else:
        parts.append("the prediction interval lies on one side of zero")
    if f.I2 is not None:
        het = "low" if f.I2 < 30 else "moderate" if f.I2 < 60 else "substantial"
        parts.append(f"{het} heterogeneity (I² = {fmt(f.I2, 0)}%)")
    rob = a.records["rob_overall"].astype("string").fillna("")
    if (rob != "").any():
        high = int((rob == "high").sum())
        parts.append(f"{high} of {a.k} comparisons at high risk of bias")
    else:
        parts.append("no risk-of-bias assessment in the source")
    if trials < 10 or n < 1000:
        parts.append("evidence is thin: few or small trials")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def _shared(model: ModelSpec) -> str:
    if model.shared_control == "split":
        return (
            "When several comparisons of one trial share a control arm (multi-arm trials), "
            "the shared arm's sample size (and, for binary outcomes, its events) is divided "
            "equally between the comparisons, so that no participant is counted twice "
            "(Cochrane Handbook 23.3.4)."
        )
    return (
        "When several comparisons of one trial share a control arm, only the first is used and "
        "the others are listed as excluded."
    )


def methods_text(results: ReportResults, versions: dict[str, str]) -> list[str]:
    """The methods section, one paragraph per string, generated from the settings."""
    m = results.spec.model
    measure = (
        "standardised mean differences (Hedges' g with the exact small-sample correction and "
        "the large-sample variance, computed from the arm-level n, mean and SD; negative "
        "values favour the drug)"
        if m.measure == "SMD"
        else "raw mean differences"
    )
    test = (
        "Confidence intervals for the pooled effects use the Hartung-Knapp-Sidik-Jonkman "
        "method (t distribution with k − 1 degrees of freedom); prediction intervals use "
        "t(k − 1) with the adjusted standard error, as metafor 3.8 does."
        if m.test == "knha"
        else "Confidence intervals are Wald intervals (normal distribution); prediction "
        "intervals are normal."
    )
    change = (
        "GRISELDA records endpoint scores, or change from baseline where no endpoint was "
        "reported, without saying which. All are included in the main SSRI analysis, although "
        "the Cochrane Handbook (10.5.2) advises against mixing endpoint and change scores in "
        "standardised mean differences; records that are certainly change scores (negative "
        "means) are flagged in the data, and a sensitivity analysis leaves them out."
        if m.change_scores == "include"
        else "Records that are change-from-baseline scores are left out of the SMD analyses "
        "(Cochrane Handbook 10.5.2)."
    )
    imputed = (
        "Values imputed by the source reviews (metapsy's imputed endpoint SDs, GRISELDA's "
        "imputed responder counts) are included and flagged in the data; a sensitivity "
        "analysis leaves out the records with imputed values."
        if m.imputed == "include"
        else "Records with imputed values are left out."
    )
    paragraphs = [
        f"Effects on depression scores were pooled as {measure} in random-effects models "
        f"with {_ESTIMATORS.get(m.method, m.method)}, solved to 1e-14 relative by a "
        f"bracketed Newton search. {test} Heterogeneity is described by Cochran's Q, I² and "
        f"tau², with Q-profile confidence intervals for tau² and I² (Viechtbauer 2007). "
        f"Response was pooled as {m.response_measure} from responders and randomised "
        f"participants per arm. The confidence level is {m.level:g}%.",
        f"{_shared(m)} {change} {imputed}",
        "Sensitivity analyses leave out one trial at a time, compute influence diagnostics "
        "(studentised residuals, DFFITS, Cook's distance, covariance ratios; Viechtbauer & "
        "Cheung 2010), and refit without trials at high risk of bias (RoB 2), without "
        "open-label trials and without trials outside depression populations. Classes are "
        "compared by the test for subgroup differences on the pooled estimates (fixed-effect "
        "Q between classes) and, for psilocybin against SSRIs, by Bucher's indirect "
        "comparison through their placebo-type controls, set beside the one head-to-head "
        "trial. Small-study effects are examined with contour-enhanced funnel plots, Egger's "
        "regression test and trim-and-fill (L0 estimator) where a class has at least "
        f"{results.spec.bias.min_k} comparisons.",
        "Every number is computed by metaan "
        f"{versions.get('metaan', '')}, whose statistics are checked against R's metafor 3.8 "
        "to a relative tolerance of 1e-9 on published data sets. Software: "
        + ", ".join(f"{k} {v}" for k, v in versions.items() if k != "metaan")
        + ".",
    ]
    from metaan.report.dependent import methods_paragraph

    shared = methods_paragraph(results.spec, results.dependent)
    if shared:
        paragraphs.insert(3, shared)
    return paragraphs


def key_findings(results: ReportResults) -> list[str]:
    """Short sentences for the top of the report."""
    out = []
    for c in results.classes:
        f = c.continuous.fit
        if f is None:
            out.append(f"{c.label}: {c.continuous.note}.")
            continue
        out.append(
            f"{c.label}: g = {fmt(f.estimate)} {fmt_ci(f.ci_lb, f.ci_ub)} from "
            f"{c.continuous.trials} trials; prediction interval {fmt_ci(f.pi_lb, f.pi_ub)}."
        )
    comp = results.comparison
    if comp is not None and comp.direct is not None:
        d = comp.direct
        out.append(
            f"Head-to-head, psilocybin against escitalopram: g = {fmt(d.estimate)} "
            f"{fmt_ci(d.ci_lb, d.ci_ub)} in one trial."
        )
    if comp is not None and comp.indirect is not None:
        i = comp.indirect
        out.append(
            f"Indirectly through placebo, psilocybin against SSRIs: g = {fmt(i.estimate)} "
            f"{fmt_ci(i.ci_lb, i.ci_ub)}; an indirect comparison across different trials and "
            "populations."
        )
    return out


def analysis_label(a: Analysis) -> str:
    return f"{a.label} ({a.measure})"
