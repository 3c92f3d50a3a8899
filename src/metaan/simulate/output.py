"""The files of a simulation run: the metrics as CSV and Parquet, faceted figures,
and a small HTML summary. The same metrics give the same bytes (no dates)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

from metaan._format import fmt_typeset
from metaan.simulate.spec import SimulationSpec

__all__ = ["FIGURES", "render_html", "write_figures", "write_outputs"]

#: The figures written, by file stem: what :func:`metaan.plots.simulation` draws.
FIGURES: tuple[str, ...] = ("ci_coverage", "pi_coverage", "bias", "tau2_bias", "rejection")
_ZERO_CELLS = {
    "only0": "{add:g} added to each cell of a table with a zero cell",
    "all": "{add:g} added to each cell of every table",
    "if0all": "{add:g} added to each cell of every table when any table has a zero cell",
    "none": "nothing added: a table with a zero cell leaves its meta-analysis",
}
_LIBRARIES = ("metaan", "numpy", "scipy", "pandas", "pyarrow", "matplotlib", "seaborn")


def write_outputs(
    spec: SimulationSpec, metrics: pd.DataFrame, folder: Path, *, figures: bool = True
) -> None:
    """Write ``metrics.csv``, ``metrics.parquet``, ``figures/*.svg`` (unless
    ``figures`` is false) and ``index.html``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.csv").write_text(
        metrics.to_csv(index=False, lineterminator="\n"), encoding="utf-8"
    )
    metrics.to_parquet(folder / "metrics.parquet", engine="pyarrow", index=False)
    drawn = write_figures(spec, metrics, folder / "figures") if figures else {}
    (folder / "index.html").write_text(render_html(spec, metrics, drawn), encoding="utf-8")


def write_figures(spec: SimulationSpec, metrics: pd.DataFrame, folder: Path) -> dict[str, str]:
    """Draw and save the figures that apply; return each one's SVG text for the page."""
    from metaan.plots import save
    from metaan.plots.simulation import simulation

    folder.mkdir(parents=True, exist_ok=True)
    random = bool(spec.estimators) and set(spec.estimators) != {"EE"}
    out: dict[str, str] = {}
    for name in FIGURES:
        if name in ("pi_coverage", "tau2_bias") and not random:
            continue
        fig = simulation(metrics, name, heterogeneity=spec.heterogeneity, level=spec.level)
        path = folder / f"{name}.svg"
        save(fig, path)
        out[name] = _inline_svg(path.read_text(encoding="utf-8"))
    return out


def _inline_svg(text: str) -> str:
    """An SVG file's ``<svg>`` element, to put inline in HTML."""
    return text[text.index("<svg") :]


@dataclass(frozen=True)
class _Table:
    header: list[str]
    rows: list[list[str]]
    keys: int


def _scenario_keys(metrics: pd.DataFrame, spec: SimulationSpec) -> list[tuple[str, str]]:
    """The scenario columns that vary, with their headings."""
    het = ("i2", "I² (%)") if spec.heterogeneity == "i2" else ("tau2", "τ²")
    keys = [("measure", "Measure"), ("k", "k"), het, ("effect", "Effect")]
    if metrics["control_risk"].nunique(dropna=True) > 1:
        keys.append(("control_risk", "Control risk"))
    return keys


def _cell(value: Any) -> str:
    if isinstance(value, str):
        return value
    number = float(value)
    if math.isnan(number):
        return "–"
    return f"{number:g}" if number != int(number) else str(int(number))


def _coverage_table(
    metrics: pd.DataFrame, spec: SimulationSpec, column: str, lines: list[str]
) -> _Table:
    data = metrics.drop_duplicates(["scenario", *lines])
    if column == "pi_coverage":
        data = data[data["prediction"] != "none"]
    name = data["label"] + (", " + data["prediction"] + " PI" if "prediction" in lines else "")
    low = spec.level / 100.0 - data[column] > 2.0 * data[f"{column}_mcse"]
    text = [
        "–" if value != value else f"{fmt_typeset(100 * value, 1)} ({fmt_typeset(100 * se, 1)})"
        for value, se in zip(data[column], data[f"{column}_mcse"], strict=True)
    ]
    cells = pd.DataFrame(
        {
            "scenario": data["scenario"],
            "line": name,
            "cell": [t + ("*" if flag else "") for t, flag in zip(text, low, strict=True)],
        }
    )
    labels = list(dict.fromkeys(cells["line"]))
    wide = cells.pivot(index="scenario", columns="line", values="cell")
    wide = wide.reindex(columns=labels).fillna("–").sort_index()
    keys = _scenario_keys(metrics, spec)
    first = metrics.drop_duplicates("scenario").set_index("scenario").loc[wide.index]
    rows = [
        [_cell(v) for v in key_values] + list(cells_row)
        for key_values, cells_row in zip(
            first[[k for k, _ in keys]].itertuples(index=False),
            wide.itertuples(index=False),
            strict=True,
        )
    ]
    return _Table([h for _, h in keys] + labels, rows, len(keys))


def _lowest(metrics: pd.DataFrame, spec: SimulationSpec) -> _Table:
    data = metrics[metrics["tau2"] > 0].drop_duplicates(["scenario", "method", "test"])
    rows = []
    keys = _scenario_keys(metrics, spec)
    for label, group in data.groupby("label", sort=False):
        worst = group.iloc[int(group["ci_coverage"].to_numpy().argmin())]
        where = ", ".join(f"{h} {_cell(worst[k])}" for k, h in keys)
        rows.append(
            [
                str(label),
                fmt_typeset(100 * worst["ci_coverage"], 1),
                fmt_typeset(100 * worst["ci_coverage_mcse"], 1),
                where,
            ]
        )
    return _Table(["Method", "Lowest coverage (%)", "MCSE", "Scenario"], rows, 1)


def _design(spec: SimulationSpec) -> list[tuple[str, str]]:
    scenarios = spec.scenarios
    het = sorted({s.i2 if spec.heterogeneity == "i2" else s.tau2 for s in scenarios})
    rows = [
        ("Measures", ", ".join(dict.fromkeys(s.measure for s in scenarios))),
        ("Studies k", ", ".join(str(k) for k in sorted({s.k for s in scenarios}))),
        ("True mean effect", ", ".join(f"{e:g}" for e in sorted({s.effect for s in scenarios}))),
        (
            "I² (%)" if spec.heterogeneity == "i2" else "τ²",
            ", ".join(f"{h:g}" for h in het),
        ),
        ("Arm sizes", spec.sample_size.describe()),
    ]
    risks = sorted({s.control_risk for s in scenarios if s.control_risk is not None})
    if risks:
        rows.append(("Control risk (OR)", ", ".join(f"{r:g}" for r in risks)))
        rows.append(("Zero cells (OR)", _ZERO_CELLS[spec.to].format(add=spec.add)))
    rows += [
        ("Estimators", ", ".join(spec.estimators) or "–"),
        ("Tests", ", ".join(spec.tests)),
        ("Prediction intervals", ", ".join(spec.predictions)),
    ]
    if spec.tables:
        rows.append(("2x2-table methods (OR)", ", ".join(spec.tables)))
    return rows


def _versions() -> dict[str, str]:
    def one(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return {name: one(name) for name in _LIBRARIES}


def render_html(spec: SimulationSpec, metrics: pd.DataFrame, figures: dict[str, str]) -> str:
    """The HTML summary of a run, figures inline."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("metaan.simulate", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        keep_trailing_newline=True,
    )
    n_meta = spec.replications * len(spec.scenarios)
    context = {
        "title": spec.title,
        "replications": f"{spec.replications:,}",
        "n_scenarios": len(spec.scenarios),
        "n_meta": f"{n_meta:,}",
        "seed": spec.seed,
        "level": f"{spec.level:g}",
        "design": _design(spec),
        "failed": f"{int(metrics['failed'].sum()):,}",
        "n_fits": f"{int(metrics['replications'].sum()):,}",
        "not_estimable": _not_estimable(metrics),
        "lowest": _lowest(metrics, spec),
        "ci_table": _coverage_table(metrics, spec, "ci_coverage", ["method", "test"]),
        "pi_table": _coverage_table(metrics, spec, "pi_coverage", ["method", "test", "prediction"]),
        "figures": {name: _markup(svg) for name, svg in figures.items()},
        "sha256": spec.sha256,
        "versions": _versions(),
        "spec_text": spec.text,
    }
    html = env.get_template("summary.html.j2").render(**context)
    return re.sub(r"[ \t]+\n", "\n", html)


def _not_estimable(metrics: pd.DataFrame) -> str:
    counts = (
        metrics.drop_duplicates(["scenario", "method"])
        .groupby("method", sort=False)["not_estimable"]
        .sum()
    )
    return ", ".join(f"{m} {int(n):,}" for m, n in counts.items() if n > 0)


def _markup(svg: str) -> Any:
    import markupsafe

    return markupsafe.Markup(svg)
