"""Shared data sets and structural checks for the plot tests.

The data sets are every public metafor reference file (tests/reference/metafor)
and the bundled study files (studies/*.csv). The checks read what a figure
drew: artists by their ``gid``, their coordinates, the axis limits, the text in
the SVG (written with ``svg.fonttype = "none"``, so text stays text) and the
extents of every text on the canvas.
"""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text

import metaan
from metaan.plots import save
from metaan.results import MetaResult

TESTS = Path(__file__).resolve().parent.parent
REFERENCE = TESTS / "reference" / "metafor"
SVG_NS = "{http://www.w3.org/2000/svg}"


@dataclass(frozen=True)
class PlotCase:
    """A data set to draw: the effect table, its fit and what else the plots need."""

    name: str
    table: pd.DataFrame  # one row per fitted study (yi, vi, label, raw columns)
    fit: MetaResult
    measure: str
    #: Events and totals per arm (ai, n1i, ci, n2i), aligned with fit's studies.
    events: pd.DataFrame | None
    subgroup: str | None
    moderator: str | None
    rob: pd.DataFrame | None = None

    def __repr__(self) -> str:
        return self.name


def _label(row: pd.Series) -> str:
    for name in ("author", "study", "source"):
        if name in row and isinstance(row[name], str):
            year = f" {int(row['year'])}" if "year" in row and pd.notna(row["year"]) else ""
            return f"{row[name]}{year}"
    return f"Study {row.name}"


def _reference_case(path: Path) -> PlotCase:
    data = json.loads(path.read_text())
    table = pd.DataFrame(data["data"])
    table["label"] = [_label(r) for _, r in table.iterrows()]
    measure = data["effect"]["measure"]
    fit = metaan.fit(table, labels="label", measure=measure, source=path.name)
    effect = data["effect"]
    events = None
    if "ai" in effect:
        events = pd.DataFrame(
            {key: table[effect[key]].to_numpy(float) for key in ("ai", "n1i", "ci", "n2i")}
        )
    results = data["results"]
    mods = results.get("metareg_vars")
    mods = [mods] if isinstance(mods, str) else list(mods or [])
    numeric = [m for m in [*mods, "year", "n1i"] if m in table and _is_number(table[m])]
    return PlotCase(
        name=data["case"],
        table=table,
        fit=fit,
        measure=measure,
        events=events,
        subgroup=results.get("subgroup_var"),
        moderator=numeric[0],
    )


def _is_number(col: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(col)) and col.nunique() > 2


@cache
def reference_cases() -> tuple[PlotCase, ...]:
    """Every public reference data set (the README's fits: REML on its yi and vi)."""
    return tuple(_reference_case(p) for p in sorted(REFERENCE.glob("*.json")))


def _rob(frame: pd.DataFrame) -> pd.DataFrame:
    names = {"low": "Low", "some_concerns": "Some concerns", "high": "High"}
    return pd.DataFrame(
        {
            dom: [names.get(str(v)) for v in frame[col]]
            for dom, col in (
                ("D1", "rob_d1"),
                ("D2", "rob_d2"),
                ("D3", "rob_d3"),
                ("D4", "rob_d4"),
                ("D5", "rob_d5"),
                ("Overall", "rob_overall"),
            )
        }
    )


@cache
def study_cases() -> tuple[PlotCase, ...]:
    """The bundled studies: psilocybin's main analysis (SMD, with RoB 2), SSRI
    response (OR from counts) and every primary psilocybin record (by comparator)."""
    from metaan.effects import escalc
    from metaan.report.selections import psilocybin_main_analysis
    from metaan.studies import load_studies

    frame = load_studies(TESTS.parent / "studies").frame
    cases = []

    psi = psilocybin_main_analysis(frame).reset_index(drop=True)
    psi = psi.assign(yi=psi["smd"], vi=psi["smd_se"] ** 2, label=psi["study_id"])
    cases.append(
        PlotCase(
            name="studies_psilocybin",
            table=psi,
            fit=metaan.fit(psi, labels="label", measure="SMD"),
            measure="SMD",
            events=None,
            subgroup="blinding",
            moderator="year",
            rob=_rob(psi),
        )
    )

    ssri = frame[
        (frame["drug_class"] == "ssri")
        & (frame["outcome_type"] == "response")
        & (frame["primary_outcome"] == 1)
        # Three of the six drugs keep the test suite quick (60 records, k = 51).
        & frame["intervention"].isin(["escitalopram", "citalopram", "fluvoxamine"])
    ]
    ssri = ssri[~ssri["record_id"].duplicated()].reset_index(drop=True)
    effects = escalc(
        ssri, "OR", ai="events1", n1i="total1", ci="events2", n2i="total2", labels="study_id"
    )
    ssri_fit = metaan.fit(effects, labels="study_id", measure="OR")
    keep = effects["yi"].notna().to_numpy()
    used = effects[keep].reset_index(drop=True)
    cases.append(
        PlotCase(
            name="studies_ssri_response",
            table=used.assign(label=used["study_id"]),
            fit=ssri_fit,
            measure="OR",
            events=pd.DataFrame(
                {
                    "ai": used["events1"].to_numpy(float),
                    "n1i": used["total1"].to_numpy(float),
                    "ci": used["events2"].to_numpy(float),
                    "n2i": used["total2"].to_numpy(float),
                }
            ),
            subgroup="intervention",
            moderator="year",
        )
    )

    prim = frame[
        (frame["drug_class"] == "psilocybin")
        & (frame["primary_outcome"] == 1)
        & (frame["primary_timepoint"] == 1)
    ].reset_index(drop=True)
    prim = prim.assign(
        yi=prim["smd"],
        vi=prim["smd_se"] ** 2,
        label=[
            f"{s}, {o} vs {c}"
            for s, o, c in zip(
                prim["study_id"], prim["outcome_type"], prim["comparator_kind"], strict=True
            )
        ],
    )
    cases.append(
        PlotCase(
            name="studies_psilocybin_primary",
            table=prim,
            fit=metaan.fit(prim, labels="label", measure="SMD"),
            measure="SMD",
            events=None,
            subgroup="comparator_kind",
            moderator="year",
            rob=_rob(prim),
        )
    )
    return tuple(cases)


def all_cases() -> tuple[PlotCase, ...]:
    return reference_cases() + study_cases()


# --- reading a figure ----------------------------------------------------------------


def svg_bytes(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    save(fig, buffer, format="svg")
    return buffer.getvalue()


def svg_texts(fig: Figure) -> list[str]:
    """Every text of the figure as the SVG file holds it, in document order."""
    root = ET.fromstring(svg_bytes(fig))
    return ["".join(el.itertext()) for el in root.iter(f"{SVG_NS}text")]


def squash(text: str) -> str:
    """Text without any whitespace (wrapping only moves whitespace around)."""
    return re.sub(r"\s+", "", text)


def figure_texts(fig: Figure) -> list[str]:
    """Every text artist's string (no drawing needed)."""
    return [t.get_text() for t in fig.findobj(Text)]


def assert_texts_drawn(fig: Figure, texts: list[str]) -> None:
    """Every text is the string of a text artist, possibly wrapped over consecutive ones."""
    flat = squash("".join(figure_texts(fig)))
    missing = [t for t in texts if squash(t) not in flat]
    assert not missing, f"not drawn: {missing[:5]}"


def assert_texts_in_svg(fig: Figure, texts: list[str]) -> None:
    """Every text appears in the SVG, possibly wrapped over consecutive lines."""
    flat = squash("".join(svg_texts(fig)))
    missing = [t for t in texts if squash(t) not in flat]
    assert not missing, f"not in the SVG text: {missing[:5]}"


def artists(fig: Figure, pattern: str) -> list[Any]:
    """Artists of the figure whose gid matches the regular expression fully."""
    rx = re.compile(pattern)
    found = []
    for artist in fig.findobj():
        gid = artist.get_gid()
        if gid is not None and rx.fullmatch(gid):
            found.append(artist)
    return found


def lines(fig: Figure, pattern: str) -> list[Line2D]:
    return [a for a in artists(fig, pattern) if isinstance(a, Line2D)]


def main_axes(fig: Figure) -> Any:
    return fig.axes[0]


def assert_inside_x(fig: Figure, pattern: str) -> int:
    """Every matching line lies within the x limits of the plot; returns how many."""
    ax = main_axes(fig)
    lo, hi = sorted(ax.get_xlim())
    found = lines(fig, pattern)
    for line in found:
        x = np.asarray(line.get_xdata(), dtype=float)
        assert np.all(x >= lo * (1 - 1e-12) - 1e-12), (line.get_gid(), x, lo)
        assert np.all(x <= hi * (1 + 1e-12) + 1e-12), (line.get_gid(), x, hi)
    return len(found)


def text_extents(fig: Figure) -> Iterator[tuple[Text, Any]]:
    """Each text that is drawn, and its extent on the canvas (in pixels).

    Tick labels are those of the ticks inside the view (matplotlib keeps spare
    tick objects outside it, which are not drawn).
    """
    # A full layout pass without rasterising: text extents are those of a draw.
    fig.draw_without_rendering()
    ticks: set[int] = set()
    shown: list[Text] = []
    for axis in fig.findobj(Axis):
        lo, hi = sorted(axis.get_view_interval())
        eps = 1e-9 * (hi - lo)
        for tick in [*axis.majorTicks, *axis.minorTicks]:
            ticks.update(id(t) for t in (tick.label1, tick.label2))
            loc = tick.get_loc()
            if loc is not None and lo - eps <= loc <= hi + eps:
                shown += [t for t in (tick.label1, tick.label2) if t.get_visible()]
    texts = [t for t in fig.findobj(Text) if id(t) not in ticks] + shown
    for text in texts:
        if text.get_visible() and text.get_text().strip():
            yield text, text.get_window_extent()


def assert_no_text_cut(fig: Figure) -> None:
    """No text sticks out of the figure: nothing is cut off at its edges."""
    width, height = fig.get_figwidth() * fig.dpi, fig.get_figheight() * fig.dpi
    for text, box in text_extents(fig):
        assert box.x0 >= -0.5 and box.x1 <= width + 0.5, (text.get_text(), box, width)
        assert box.y0 >= -0.5 and box.y1 <= height + 0.5, (text.get_text(), box, height)
