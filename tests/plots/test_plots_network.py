"""The network plots draw what the result holds, and the same result gives the same SVG."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, Polygon
from plotcheck import artists, svg_bytes, svg_texts

import metaan
from metaan import plots
from metaan.errors import InputError

REFERENCE = Path(__file__).resolve().parent.parent / "reference" / "netmeta"


@pytest.fixture(scope="module")
def ssri() -> metaan.NetworkResult:
    raw = json.loads((REFERENCE / "griselda_ssri_OR.json").read_text(encoding="utf-8"))
    return metaan.fit_network(
        pd.DataFrame(raw["input"]),
        study="study_id",
        treatment="drug",
        events="responders",
        n="n_randomised",
        measure="OR",
        reference="placebo",
        small_values="bad",
    )


def test_the_graph_has_a_node_per_treatment_and_a_line_per_compared_pair(
    ssri: metaan.NetworkResult,
) -> None:
    fig = plots.network_graph(ssri)
    nodes = artists(fig, r"node-\d+")
    assert len(nodes) == ssri.n and all(isinstance(a, Circle) for a in nodes)
    pairs = int(np.count_nonzero(np.triu(ssri.direct_k, 1)))
    edges = artists(fig, r"edge-\d+-\d+")
    assert len(edges) == pairs and all(isinstance(a, Line2D) for a in edges)
    # Line width grows with the number of studies: placebo-paroxetine (45) is widest.
    widths = {a.get_gid(): a.get_linewidth() for a in edges}
    p, x = ssri.index("paroxetine"), ssri.index("placebo")
    assert widths[f"edge-{min(p, x)}-{max(p, x)}"] == max(widths.values())
    # Node area follows the participants: placebo is the largest.
    radius = {a.get_gid(): a.get_radius() for a in nodes}
    assert radius[f"node-{x}"] == max(radius.values())
    multi = [d for d in ssri.designs if len(d[0]) > 2]
    shaded = artists(fig, r"multiarm-\d+")
    assert len(shaded) == len(multi) and all(isinstance(a, Polygon) for a in shaded)
    assert all(name in svg_texts(fig) for name in ssri.treatments)


def test_the_forest_has_a_row_per_treatment_but_the_reference(ssri: metaan.NetworkResult) -> None:
    fig = plots.network_forest(ssri)
    texts = "\n".join(svg_texts(fig))
    for name in ssri.treatments:
        if name != "placebo":
            assert name in texts
    te = np.exp(ssri.random.TE[ssri.index("fluvoxamine"), ssri.index("placebo")])
    assert f"{te:.2f} [" in texts
    assert "Favours treatment" in texts


def test_the_league_heat_map_has_every_cell(ssri: metaan.NetworkResult) -> None:
    fig = plots.league_heatmap(ssri)
    assert len(artists(fig, r"cell-\d+-\d+")) == ssri.n**2
    texts = svg_texts(fig)
    league = ssri.league()
    i, j = ssri.index("fluvoxamine"), ssri.index("placebo")
    estimate, interval = league.iloc[i, j].split(" ", 1)
    where = texts.index(estimate)
    assert texts[where + 1] == interval


def test_the_netsplit_forest_shows_the_comparisons_with_both_kinds_of_evidence(
    ssri: metaan.NetworkResult,
) -> None:
    fig = plots.netsplit_forest(ssri.netsplit)
    split = ssri.netsplit.random
    both = np.isfinite(split.direct) & np.isfinite(split.indirect)
    assert len(artists(fig, r"label-heading-comparison-\d+")) == int(both.sum())
    assert len(artists(fig, r"diamond-network-\d+")) == int(both.sum())


def test_the_netsplit_forest_refuses_a_network_without_loops() -> None:
    pw = pd.DataFrame(
        {"study": ["a", "b"], "treat1": ["A", "B"], "treat2": ["P", "P"], "yi": [0.1, 0.2]}
        | {"vi": [0.1, 0.1]}
    )
    with pytest.raises(InputError, match="no comparison has both"):
        plots.netsplit_forest(metaan.fit_network(pw).netsplit)


@pytest.mark.parametrize("draw", [plots.network_graph, plots.network_forest, plots.league_heatmap])
def test_the_same_result_gives_the_same_svg(ssri: metaan.NetworkResult, draw: object) -> None:
    assert callable(draw)
    assert svg_bytes(draw(ssri)) == svg_bytes(draw(ssri))
