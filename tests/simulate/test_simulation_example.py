"""The shipped example, reports/simulation.toml: its committed output is what a run
gives, and it shows the well-known results it was made to show."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from metaan.plots import save
from metaan.plots.simulation import simulation
from metaan.simulate import load_simulation_spec, run_simulation
from metaan.simulate.output import FIGURES, render_html

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "reports" / "simulation.toml"
COMMITTED = ROOT / "reports" / "simulation"


@pytest.fixture(scope="module")
def committed() -> pd.DataFrame:
    return pd.read_csv(COMMITTED / "metrics.csv")


def _scenario(spec_metrics: pd.DataFrame, measure: str, k: int, i2: float, effect: float) -> int:
    rows = spec_metrics[
        (spec_metrics["measure"] == measure)
        & (spec_metrics["k"] == k)
        & (spec_metrics["i2"] == i2)
        & (spec_metrics["effect"] == effect)
    ]
    return int(rows["scenario"].iloc[0])


def test_a_reduced_grid_reproduces_the_committed_rows(
    committed: pd.DataFrame, tmp_path: Path
) -> None:
    chosen = [
        _scenario(committed, "SMD", 3, 90.0, 0.0),
        _scenario(committed, "OR", 5, 50.0, 0.5),
    ]
    spec = load_simulation_spec(SPEC).subset(chosen)
    fresh = run_simulation(spec, tmp_path, figures=False).metrics
    expected = committed[committed["scenario"].isin(chosen)].reset_index(drop=True)
    assert list(fresh.columns) == list(expected.columns)
    for column in fresh.columns:
        a, b = fresh[column].to_numpy(), expected[column].to_numpy()
        if a.dtype.kind == "f" or b.dtype.kind == "f":
            # numpy's vectorised exp and log may differ in the last bit between processors.
            np.testing.assert_allclose(a.astype(float), b.astype(float), rtol=1e-9, atol=0)
        else:
            assert list(a) == list(b), column


def test_the_committed_figure_and_summary_are_drawn_from_the_committed_metrics(
    committed: pd.DataFrame, tmp_path: Path
) -> None:
    spec = load_simulation_spec(SPEC)
    fig = simulation(committed, "ci_coverage", heterogeneity=spec.heterogeneity, level=spec.level)
    save(fig, tmp_path / "ci_coverage.svg")
    drawn = (tmp_path / "ci_coverage.svg").read_bytes()
    assert drawn == (COMMITTED / "figures" / "ci_coverage.svg").read_bytes()
    figures = {}
    for name in FIGURES:
        text = (COMMITTED / "figures" / f"{name}.svg").read_text(encoding="utf-8")
        figures[name] = text[text.index("<svg") :]
    html = render_html(spec, committed, figures)
    assert html == (COMMITTED / "index.html").read_text(encoding="utf-8")


def test_no_fit_failed(committed: pd.DataFrame) -> None:
    assert int(committed["failed"].sum()) == 0
    assert (committed["replications"] == 2000).all()


def _coverage(committed: pd.DataFrame, label: str, k: int, i2: float) -> pd.DataFrame:
    rows = committed[
        (committed["label"] == label)
        & (committed["k"] == k)
        & (committed["i2"] == i2)
        & (committed["prediction"] != "meta")
    ]
    return rows[["measure", "effect", "ci_coverage", "ci_coverage_mcse"]]


@pytest.mark.parametrize("i2", [50.0, 75.0, 90.0])
def test_wald_type_dl_under_covers_with_few_studies_and_heterogeneity(
    committed: pd.DataFrame, i2: float
) -> None:
    for k in (3, 5):
        rows = _coverage(committed, "DL z", k, i2)
        assert len(rows) == 4  # SMD and OR, two effects
        shortfall = 0.95 - rows["ci_coverage"]
        assert (shortfall > 2 * rows["ci_coverage_mcse"]).all(), rows


@pytest.mark.parametrize("i2", [25.0, 50.0, 75.0, 90.0])
def test_hartung_knapp_stays_near_nominal_with_few_studies(
    committed: pd.DataFrame, i2: float
) -> None:
    for k in (3, 5):
        wald = _coverage(committed, "DL z", k, i2)["ci_coverage"].to_numpy()
        assert wald.size == 4
        for label in ("DL knha", "REML knha"):
            rows = _coverage(committed, label, k, i2)
            near = (rows["ci_coverage"] - 0.95).abs() < 3 * rows["ci_coverage_mcse"]
            assert near.all(), (label, k, rows)
            if i2 >= 50:
                assert (rows["ci_coverage"].to_numpy() > wald).all()


def test_for_smd_hartung_knapp_is_near_nominal_at_every_k(committed: pd.DataFrame) -> None:
    # For sparse event counts with large tau2 every interval under-covers at k = 20
    # (the log odds ratios are biased); for SMD, Hartung-Knapp holds throughout.
    smd = committed[(committed["measure"] == "SMD") & (committed["test"] == "knha")]
    assert ((smd["ci_coverage"] - 0.95).abs() < 3.5 * smd["ci_coverage_mcse"]).all()


def test_the_prediction_intervals_are_reported_for_each_convention(
    committed: pd.DataFrame,
) -> None:
    pi = committed[committed["prediction"].isin(["metafor", "meta"])]
    assert pi["pi_coverage"].notna().all()
    both = pi.pivot_table(
        index=["scenario", "method", "test"], columns="prediction", values="pi_coverage"
    )
    # R meta's t(k - 1) interval is never narrower than metafor's under the z test.
    z = both.xs("z", level="test")
    assert (z["meta"] >= z["metafor"] - 1e-12).all()
