"""Building a report: specification in, HTML, PDF, JSON, CSV and figures out.

The build is reproducible: the same specification, inputs and library
versions give byte-identical ``index.html``, ``results.json``, CSV tables and
SVG figures (no timestamps, fixed SVG hash salt, sorted JSON keys, fixed float
formatting). Every file is written inside the output folder.
"""

from __future__ import annotations

import io
import json
import math
import multiprocessing
import multiprocessing.process
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from metaan._json import json_number
from metaan._output import OutputFolder
from metaan.report.analyses import ClassResults, ReportResults, is_blank, run_report_analyses
from metaan.report.serialize import (
    library_versions,
    provenance,
    relative,
    results_data,
    sha256,
    tables,
)
from metaan.report.spec import ReportSpec, load_spec
from metaan.report.text import (
    evidence_note,
    fmt,
    fmt_ci,
    fmt_p,
    key_findings,
    methods_text,
    p_text,
)
from metaan.studies import load_studies

__all__ = ["BuildResult", "build_report", "render_html"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildResult:
    """What a build wrote, and how long it took."""

    output: Path
    files: tuple[Path, ...]
    seconds: float


def _quiet(_: str) -> None:
    return None


def _figures(results: ReportResults, progress: Progress) -> dict[str, Any]:
    """Build every figure of the report as a matplotlib Figure, keyed by file stem."""
    from metaan import plots

    figs: dict[str, Any] = {}
    for c in results.classes:
        f = c.continuous.fit
        if f is None:
            continue
        progress(f"figure: forest plot, {c.label}")
        recs = c.continuous.records
        rob = None
        if recs["rob_overall"].astype("string").fillna("").ne("").any():
            rob = pd.DataFrame(
                {
                    name: [_rob_text(v) for v in recs[col]]
                    for name, col in (
                        ("D1", "rob_d1"),
                        ("D2", "rob_d2"),
                        ("D3", "rob_d3"),
                        ("D4", "rob_d4"),
                        ("D5", "rob_d5"),
                        ("Overall", "rob_overall"),
                    )
                }
            )
        columns = {
            "N drug": [_int_text(v) for v in recs["n1"]],
            "N control": [_int_text(v) for v in recs["n2_used"]],
        }
        if c.continuous.k <= 40:
            columns["Control"] = [str(v).replace("_", " ") for v in recs["comparator_kind"]]
        figs[f"forest_{c.id}"] = plots.forest(
            f,
            columns=columns,
            rob=rob,
            groups=(c.label.lower(), "control"),
            lower_is_better=True,
            xlabel="Standardised mean difference (Hedges' g)",
            title=f"{c.label}: depression scores",
        )
        if c.leave1out is not None and c.continuous.k <= 40:
            progress(f"figure: leave-one-out, {c.label}")
            figs[f"leave1out_{c.id}"] = plots.leave1out(
                c.leave1out,
                full=f,
                groups=(c.label.lower(), "control"),
                lower_is_better=True,
                xlabel="Standardised mean difference (Hedges' g)",
                title=f"{c.label}: leaving out one comparison at a time",
            )
        if c.bias is not None:
            progress(f"figure: funnel plot, {c.label}")
            figs[f"funnel_{c.id}"] = plots.funnel(
                c.bias.trimfill,
                contours=results.spec.bias.contours,
                egger=c.bias.egger_lm,
                xlabel="Standardised mean difference (Hedges' g)",
                title=f"{c.label}: contour-enhanced funnel plot with trim-and-fill",
            )
    comp = results.comparison
    if comp is not None:
        pooled = {}
        by_id = {c.id: c for c in results.classes}
        for cid in comp.classes:
            fit = by_id[cid].continuous.fit
            if fit is not None:
                pooled[by_id[cid].label] = fit
        if pooled:
            progress("figure: comparison of the classes")
            figs["compare"] = plots.compare(
                pooled,
                groups=("drug", "control"),
                lower_is_better=True,
                xlabel="Standardised mean difference (Hedges' g)",
                label_header="Drug class",
                title="Pooled effect on depression scores, by drug class",
            )
    dose = results.dose
    if dose is not None and dose.by_comparator is not None:
        progress("figure: psilocybin by kind of control")
        figs["subgroups"] = plots.forest(
            dose.by_comparator,
            groups=("psilocybin", "control"),
            lower_is_better=True,
            xlabel="Standardised mean difference (Hedges' g)",
            # A group of two trials has a t(1) interval tens of units wide; it ends
            # in an arrow rather than squeezing every other interval.
            xlim=(-4.0, 2.0),
            title="Psilocybin by kind of control",
        )
    if dose is not None and dose.regression is not None:
        progress("figure: dose meta-regression")
        figs["bubble"] = plots.bubble(
            dose.regression,
            "dose_mg",
            xlabel=results.spec.dose.moderator_label if results.spec.dose else "dose",
            ylabel="Standardised mean difference (Hedges' g)",
            title="Psilocybin: effect by dose",
        )
    return figs


def _rob_text(value: Any) -> str:
    text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    return {
        "low": "Low",
        "some_concerns": "Some concerns",
        "high": "High",
        "": "No information",
    }.get(text, "No information")


def _int_text(value: Any) -> str:
    x = float(value)
    return f"{x:.0f}" if x == round(x) else f"{x:.1f}"


def _figure_bytes(fig: Any, fmt_name: str) -> bytes:
    from metaan.plots import save

    buffer = io.BytesIO()
    save(fig, buffer, format=fmt_name)
    return buffer.getvalue()


def _write_figures(figures: dict[str, Any], formats: list[str], out: OutputFolder) -> list[Path]:
    return [
        out.write(f"figures/{name}.{fmt_name}", _figure_bytes(fig, fmt_name))
        for name, fig in figures.items()
        for fmt_name in formats
    ]


def _start_figure_writer(
    figures: dict[str, Any], formats: list[str], out: OutputFolder
) -> multiprocessing.process.BaseProcess | None:
    """Write the figure files in a forked process; ``None`` where fork is unavailable."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return None
    context = multiprocessing.get_context("fork")
    worker = context.Process(target=_write_figures, args=(figures, formats, out), daemon=True)
    worker.start()
    return worker


def _finish_figure_writer(
    worker: multiprocessing.process.BaseProcess | None,
    figures: dict[str, Any],
    formats: list[str],
    out: OutputFolder,
) -> list[Path]:
    """Wait for the forked writer (or write the files here) and list them."""
    if worker is None:
        return _write_figures(figures, formats, out)
    worker.join()
    if worker.exitcode != 0:
        # The fork failed for a reason of its own: write the files here instead.
        return _write_figures(figures, formats, out)
    paths = [out.path(f"figures/{name}.{fmt_name}") for name in figures for fmt_name in formats]
    for path in paths:
        out.track(path)
    return paths


def _loo_summary(c: ClassResults) -> dict[str, Any]:
    loo = c.leave1out
    assert loo is not None  # the template asks only when it exists
    full = c.continuous.fit
    est = np.asarray(loo.estimate, dtype=float)
    i2 = np.asarray(loo.I2, dtype=float)
    change = np.abs(est - (full.estimate if full is not None else 0.0))
    return {
        "min": float(est.min()),
        "max": float(est.max()),
        "i2_min": float(i2.min()),
        "i2_max": float(i2.max()),
        "most": loo.labels[int(change.argmax())],
    }


def _reported(c: ClassResults) -> list[dict[str, str]]:
    out = []
    for r in c.reported.to_dict(orient="records"):
        effect = "–"
        for est, lb, ub, name in (
            ("md", "md_ci_lb", "md_ci_ub", "MD"),
            ("smd", "smd_ci_lb", "smd_ci_ub", "SMD"),
        ):
            value = json_number(r.get(est))
            if value is not None:
                interval = fmt_ci(json_number(r.get(lb)), json_number(r.get(ub)))
                effect = f"{name} {fmt(value)} {interval}"
                break
        why = r.get("not_poolable_reason")
        if is_blank(why):
            why = "no per-arm n and SD, so no standardised mean difference"
        out.append(
            {
                "study_id": str(r["study_id"]),
                "intervention": str(r.get("intervention", "")),
                "comparator": str(r.get("comparator", "")),
                "outcome": ", ".join(
                    str(r.get(col))
                    for col in ("scale", "outcome_type", "time_label")
                    if not is_blank(r.get(col))
                ),
                "effect": effect,
                "why": str(why),
            }
        )
    return out


def _references(results: ReportResults) -> list[dict[str, str]]:
    used: set[str] = set()
    for c in results.classes:
        for a in (c.continuous, c.response):
            if a is not None and len(a.records):
                used.update(str(s) for s in a.records["study_id"])
        used.update(str(s) for s in c.reported.get("study_id", []))
    comp = results.comparison
    if comp is not None and comp.direct_analysis is not None:
        used.update(str(s) for s in comp.direct_analysis.records["study_id"])
    frame = results.studies.frame
    refs = []
    for sid in sorted(used):
        rows = frame[frame["study_id"] == sid]
        reference = next((str(v) for v in rows["reference"] if not is_blank(v)), "")
        doi = next((str(v) for v in rows["doi"] if not is_blank(v)), "")
        refs.append({"study": sid, "reference": reference, "doi": doi})
    return refs


def _subgroup_text(results: ReportResults) -> str:
    d = results.dose
    if d is None or d.by_comparator is None:
        return ""
    sg = d.by_comparator
    common = sg.common
    mixed = sg.mixed
    parts = []
    if common is not None:
        parts.append(
            f"Test for subgroup differences (fixed-effect Q between groups): "
            f"Q({len(sg.levels) - 1}) = {fmt(common.QM)}, {p_text(common.QMp)}"
        )
    if mixed is not None:
        stat = (
            f"F({mixed.QM_df}, {mixed.QM_df2})"
            if mixed.QM_df2 is not None
            else f"QM({mixed.QM_df})"
        )
        parts.append(f"mixed-effects moderator test: {stat} = {fmt(mixed.QM)}, {p_text(mixed.QMp)}")
    elif sg.mixed_note:
        parts.append(f"mixed-effects moderator test not estimable ({sg.mixed_note})")
    return "; ".join(parts) + "." if parts else ""


def _dose_text(results: ReportResults) -> str:
    d = results.dose
    if d is None or d.regression is None:
        return ""
    reg = d.regression
    slope = float(reg.coef[1])
    lb, ub = float(reg.ci_lb[1]), float(reg.ci_ub[1])
    return (
        f"Across {reg.k} trials with a readable dose, the standardised mean difference "
        f"changes by {fmt(slope, 3)} {fmt_ci(lb, ub, 3)} per mg of psilocybin "
        f"({p_text(float(reg.pval[1]))}). "
        "The doses span a narrow range, nearly all trials gave a full dose, and dose is "
        "confounded with trial, population and control; this is not evidence for or against a "
        "dose-response relation."
    )


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("metaan.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = lambda x, d=2: fmt(None if x is None else float(x), d)
    env.filters["pfmt"] = lambda p: (
        fmt_p(None if p is None else float(p)).replace("< ", "<\u2009")
        if p is not None and float(p) < 0.001
        else "= " + fmt_p(None if p is None else float(p))
    )
    env.filters["ratio"] = lambda x: fmt(math.exp(float(x)), 2)
    env.filters["sentence"] = lambda text: str(text)[:1].upper() + str(text)[1:]
    env.globals["fmt_ci"] = fmt_ci
    return env


def render_html(results: ReportResults, figures: dict[str, str]) -> str:
    """The report as one self-contained HTML page (figures inline as SVG)."""
    spec = results.spec
    base = spec.path.parent
    versions = library_versions()
    env = _environment()
    css = (Path(__file__).parent / "templates" / "style.css").read_text(encoding="utf-8")
    context = {
        "R": results,
        "spec": spec,
        "spec_file": relative(spec.path, base),
        "spec_sha": sha256(spec.path),
        "versions": versions,
        "css": Markup(css),
        "level": f"{spec.model.level:g}",
        "findings": key_findings(results),
        "notes": {c.id: evidence_note(c) for c in results.classes},
        "rob_classes": {
            c.id
            for c in results.classes
            if c.continuous.fit is not None
            and c.continuous.records["rob_overall"].astype("string").fillna("").ne("").any()
        },
        "loo": {c.id: _loo_summary(c) for c in results.classes if c.leave1out is not None},
        "influential": {
            c.id: [
                lab
                for lab, flag in zip(c.influence.labels, c.influence.influential, strict=True)
                if flag
            ]
            for c in results.classes
            if c.influence is not None
        },
        "reported": {c.id: _reported(c) for c in results.classes},
        "subgroup_test": _subgroup_text(results),
        "dose_text": _dose_text(results),
        "methods": methods_text(results, versions),
        "exclusions": [{**e.to_dict(), "file": relative(e.file, base)} for e in results.excluded],
        "provenance": provenance(results),
        "references": _references(results),
        "figures": {k: Markup(v) for k, v in figures.items()},
    }
    return env.get_template("report.html.j2").render(**context)


def _no_fetch(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    raise ValueError(f"the report renderer does not fetch anything ({url})")


def _csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, lineterminator="\n")


def build_report(
    spec_path: str | Path,
    output: str | Path | None = None,
    *,
    pdf: bool = True,
    progress: Progress | None = None,
) -> BuildResult:
    """Build the report a specification declares.

    Parameters
    ----------
    spec_path
        The ``reports/<name>.toml`` file.
    output
        The output folder (default: the spec's ``output``, next to the spec).
        Everything is written inside it, each file atomically. The folder's
        manifest (``.metaan-manifest``) lists what the build wrote; the files an
        earlier build listed there and this one no longer writes are removed,
        and nothing else in the folder is touched.
    pdf
        Render ``report.pdf`` from the HTML with WeasyPrint.
    progress
        Called with a short message at each step (the CLI prints them on stderr).
    """
    say = progress or _quiet
    start = time.perf_counter()
    spec: ReportSpec = load_spec(spec_path)
    out_path = Path(output) if output is not None else spec.output
    out = OutputFolder(out_path, inputs=[spec.path, *spec.files])
    say(f"reading {len(spec.files)} study files")
    studies = load_studies(spec.files)
    say("running the analyses")
    results = run_report_analyses(spec, studies)
    written: list[Path] = []
    say("drawing the figures")
    figures = _figures(results, say)
    svg: dict[str, str] = {}
    for name, fig in figures.items():
        data_svg = _figure_bytes(fig, "svg")
        written.append(out.write(f"figures/{name}.svg", data_svg))
        svg[name] = data_svg.decode("utf-8")[data_svg.decode("utf-8").find("<svg") :]
    raster = [f for f in spec.figure_formats if f != "svg"]
    # The raster and PDF figure files are written by a forked copy of this process
    # while this one renders the report's PDF: the two slowest steps, on two cores.
    worker = _start_figure_writer(figures, raster, out) if raster else None
    say("writing tables and results.json")
    for name, frame in tables(results).items():
        written.append(out.write(f"tables/{name}.csv", _csv(frame)))
    data = results_data(results)
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    written.append(out.write("results.json", text))
    say("rendering index.html")
    html = render_html(results, svg)
    written.append(out.write("index.html", html))
    if pdf:
        say("rendering report.pdf")
        import weasyprint

        document = weasyprint.HTML(string=html, base_url=str(out.root), url_fetcher=_no_fetch)
        written.append(out.write("report.pdf", document.write_pdf()))
    if raster:
        say("writing " + " and ".join(f.upper() for f in raster) + " figures")
        written.extend(_finish_figure_writer(worker, figures, raster, out))
    import matplotlib.pyplot as plt

    for fig in figures.values():
        plt.close(fig)
    for stale in out.finish():
        say(f"removed {stale.relative_to(out.root).as_posix()}, written by an earlier build")
    seconds = time.perf_counter() - start
    say(f"done in {seconds:.1f} s: {out.root}")
    return BuildResult(output=out.root, files=tuple(written), seconds=seconds)
