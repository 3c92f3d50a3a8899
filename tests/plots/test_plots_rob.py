"""robvis's figures, the forest plot on several pages, and `metaan plot rob`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import CliRunner
from plotcheck import artists, figure_texts

import metaan
from metaan import plots
from metaan.cli import main
from metaan.rob import rob_table, summarise_rob

ROOT = Path(__file__).resolve().parents[2]


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "study": ["A", "B", "C"],
            "D1": ["Low", "High", "Some concerns"],
            "D2": ["Low", "Low", "High"],
            "Overall": ["Low", "High", "High"],
            "w": [20.0, 30.0, 50.0],
        }
    )


def test_the_summary_draws_one_bar_segment_per_level_present_in_each_domain() -> None:
    fig = plots.rob_summary(summarise_rob(rob_table(_table(), study="study", weight="w")))
    bars = artists(fig, r"bar-.*")
    assert {b.get_gid() for b in bars} == {
        "bar-D1-low", "bar-D1-some", "bar-D1-high", "bar-D2-low", "bar-D2-high",
        "bar-Overall-low", "bar-Overall-high",
    }  # fmt: skip
    assert any("weight" in t for t in figure_texts(fig))


def test_the_traffic_light_names_every_study_and_domain() -> None:
    texts = figure_texts(plots.rob_traffic_light(rob_table(_table(), study="study")))
    for name in ("A", "B", "C", "D1", "D2", "Overall", "High risk"):
        assert name in texts


def test_a_long_forest_continues_on_pages_with_the_same_header_and_axis() -> None:
    rng = np.random.default_rng(3)
    k = 90
    res = metaan.fit(yi=rng.normal(-0.3, 0.2, k), vi=rng.uniform(0.01, 0.1, k),
                     labels=[f"Trial {i}" for i in range(k)], measure="SMD")  # fmt: skip
    pages = plots.forest_pages(res, page_size=(7.0, 9.0), title="Long")
    assert len(pages) >= 2
    limits = {p.axes[0].get_xlim() for p in pages}
    assert len(limits) == 1
    labels = []
    for i, page in enumerate(pages):
        texts = figure_texts(page)
        assert "Study" in texts and "Weight" in texts
        assert ("Long (continued)" in texts) == (i > 0)
        assert page.get_figheight() <= 9.0 * max(1.0, page.get_figwidth() / 7.0) + 1e-9
        labels += [t for t in texts if t.startswith("Trial ")]
    assert sorted(labels) == sorted(res.labels)
    assert any(t.startswith("Heterogeneity") for t in figure_texts(pages[-1]))


def test_metaan_plot_rob_draws_the_summary_or_the_traffic_light(tmp_path: Path) -> None:
    csv = tmp_path / "rob.csv"
    _table().to_csv(csv, index=False)
    for extra in ([], ["--traffic-light"], ["--weight", "w"]):
        out = tmp_path / f"rob{len(extra)}.svg"
        result = CliRunner().invoke(
            main, ["plot", "rob", str(csv), "--study", "study", "-o", str(out), *extra]
        )
        assert result.exit_code == 0, result.stderr
        assert out.read_text(encoding="utf-8").startswith("<?xml")


def test_metaan_plot_rob_without_judgements_is_one_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["plot", "rob", str(ROOT / "studies" / "ssri.csv"), "-o", str(tmp_path / "x.svg")]
    )
    assert result.exit_code == 2
    assert "no judgement" in result.stderr and "Traceback" not in result.stderr
