"""The layout steps of the plots: positions, limits and texts, before anything is drawn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from plotcheck import reference_cases

from metaan.bias import egger_test, trim_and_fill
from metaan.errors import InputError
from metaan.plots.bubble import bubble_layout
from metaan.plots.compare import compare_table
from metaan.plots.forest import forest_table
from metaan.plots.funnel import funnel_layout
from metaan.plots.radial import radial_layout
from metaan.regression import fit_regression
from metaan.subgroups import fit_subgroups

CASES = {c.name: c for c in reference_cases()}
BCG = CASES["bcg_OR"]
SMD = CASES["normand_SMD"]


def test_the_funnel_of_log_odds_ratios_is_laid_out_in_ratios_on_a_log_axis() -> None:
    fit = BCG.fit
    layout = funnel_layout(fit)
    assert layout.log and layout.xlabel == "Odds ratio (log scale)"
    assert layout.estimate == pytest.approx(math.exp(fit.estimate), rel=1e-12)
    lo, hi = layout.xlim
    # Round limits (ratios) that hold every study and the pseudo-CI at the axis' bottom.
    z = 1.959963984540054 * layout.se_max
    assert 0 < lo <= math.exp(min(fit.yi.min(), fit.estimate - z))
    assert hi >= math.exp(max(fit.yi.max(), fit.estimate + z))
    assert lo in layout.x_ticks and hi in layout.x_ticks
    np.testing.assert_allclose(layout.observed[0], np.exp(fit.yi), rtol=1e-12)
    np.testing.assert_allclose(layout.observed[1], np.sqrt(fit.vi), rtol=1e-12)
    # The standard-error axis runs from 0 to a tick at or past 1.04 times the largest SE.
    assert layout.y_ticks[0] == 0.0 and layout.y_ticks[-1] == layout.se_max
    assert layout.se_max >= 1.04 * math.sqrt(fit.vi.max()) - 1e-12
    (left, _), (right, _) = layout.pseudo_ci
    assert left[1] == pytest.approx(math.exp(fit.estimate - z), rel=1e-9)
    assert right[1] == pytest.approx(math.exp(fit.estimate + z), rel=1e-9)


def test_the_funnel_of_a_difference_is_laid_out_on_a_linear_axis() -> None:
    fit = SMD.fit
    layout = funnel_layout(fit)
    assert not layout.log
    assert layout.estimate == fit.estimate
    np.testing.assert_array_equal(layout.observed[0], fit.yi)
    assert layout.xlim[0] <= fit.yi.min() and layout.xlim[1] >= fit.yi.max()


def test_funnel_limits_given_keep_only_the_ticks_inside_and_must_be_positive_for_ratios() -> None:
    layout = funnel_layout(BCG.fit, xlim=(0.1, 3.0))
    assert layout.xlim == (0.1, 3.0)
    assert layout.x_ticks and all(0.1 <= t <= 3.0 for t in layout.x_ticks)
    with pytest.raises(InputError, match="> 0 for ratios"):
        funnel_layout(BCG.fit, xlim=(0.0, 3.0))
    with pytest.raises(InputError, match="increasing"):
        funnel_layout(SMD.fit, xlim=(1.0, -1.0))


def test_contour_wedges_open_from_no_effect_at_the_top() -> None:
    layout = funnel_layout(BCG.fit, contours=(0.05, 0.01))
    assert layout.levels == (0.05, 0.01)
    for alpha, (left, apex, right) in zip(layout.levels, layout.wedges, strict=True):
        assert apex == (1.0, 0.0)  # an odds ratio of 1 at SE 0
        z = {0.05: 1.959963984540054, 0.01: 2.5758293035489004}[alpha]
        assert left == pytest.approx((math.exp(-z * layout.se_max), layout.se_max))
        assert right == pytest.approx((math.exp(z * layout.se_max), layout.se_max))
    assert layout.legend[-3:] == ("p \u2265 .05", ".01 \u2264 p < .05", "p < .01")


def test_the_funnel_of_a_trim_and_fill_holds_the_filled_studies_and_both_estimates() -> None:
    tf = trim_and_fill(CASES["egger2001_OR"].fit)
    layout = funnel_layout(tf, egger=egger_test(tf.original))
    assert layout.filled[0].size == tf.k0
    np.testing.assert_allclose(layout.filled[0], np.exp(tf.filled_yi), rtol=1e-12)
    assert layout.estimate_observed == pytest.approx(math.exp(tf.original.estimate), rel=1e-12)
    assert layout.egger is not None and layout.egger[1][0] == 0.0
    assert "Filled in by trim-and-fill" in layout.legend


def test_radial_points_are_precision_and_standardised_effect() -> None:
    fit = BCG.fit
    layout = radial_layout(fit)
    s = np.sqrt(fit.vi + fit.tau2)
    np.testing.assert_allclose(layout.x, 1 / s, rtol=1e-12)
    np.testing.assert_allclose(layout.z, fit.yi / s, rtol=1e-12)
    x_max = layout.xlim[1]
    assert layout.xlim == (0.0, pytest.approx(1.08 * np.max(1 / s)))
    lo, hi = layout.ylim
    assert lo < layout.z.min() and hi > layout.z.max()
    assert lo < fit.estimate * x_max - layout.crit and hi > fit.estimate * x_max + layout.crit


def test_the_radial_effect_scale_reads_heights_on_the_right_edge_as_ratios() -> None:
    layout = radial_layout(BCG.fit)
    x_max = layout.xlim[1]
    assert layout.effect_label == "Odds ratio (log scale)"
    assert layout.effect_ticks
    for h, text in layout.effect_ticks:
        assert layout.ylim[0] <= h <= layout.ylim[1]
        assert float(text) == pytest.approx(math.exp(h / x_max), rel=1e-9)


def test_bubble_layout_of_log_odds_ratios_is_in_ratios_and_covers_the_band() -> None:
    reg = fit_regression(BCG.table, mods=["ablat"], measure="OR")
    layout = bubble_layout(reg)
    assert layout.moderator == "ablat" and layout.log and layout.null == 1.0
    np.testing.assert_allclose(layout.y, np.exp(reg.yi), rtol=1e-12)
    assert layout.band is not None
    lower, upper = layout.band
    assert layout.ylim[0] > 0
    assert layout.ylim[0] <= min(layout.y.min(), lower.min())
    assert layout.ylim[1] >= max(layout.y.max(), upper.max())
    assert layout.ylim[0] in layout.y_ticks and layout.ylim[1] in layout.y_ticks
    x_lo, x_hi = float(np.min(layout.x)), float(np.max(layout.x))
    assert layout.xlim == pytest.approx((x_lo - 0.05 * (x_hi - x_lo), x_hi + 0.05 * (x_hi - x_lo)))
    assert layout.area.max() == pytest.approx(420) and layout.area.min() >= 10
    assert layout.tests.startswith("QM(1)")


def test_bubble_layout_without_the_band_covers_only_the_studies_and_the_line() -> None:
    reg = fit_regression(BCG.table, mods=["ablat"], measure="OR")
    layout = bubble_layout(reg, band=False, xlabel="Latitude")
    assert layout.band is None and layout.xlabel == "Latitude"
    assert len(layout.legend) == 2


def test_forest_rows_are_the_studies_then_the_pooled_rows_and_notes() -> None:
    fit = BCG.fit
    table = forest_table(fit, sort="effect")
    kinds = [row.kind for row in table.rows]
    assert kinds == ["study"] * fit.k + ["space", "pooled", "pi", "note", "note"]
    study_est = [row.est for row in table.rows if row.kind == "study"]
    assert study_est == sorted(fit.yi.tolist())
    assert table.scale.log and table.reference == fit.estimate
    assert [c.key for c in table.columns] == ["est", "weight"]


def test_the_comparison_table_has_a_row_per_analysis_and_refuses_mixed_scales() -> None:
    sub = fit_subgroups(BCG.table, by=BCG.subgroup, measure="OR")
    table = compare_table(sub, prediction=False)
    assert [row.label for row in table.rows] == [lev.name for lev in sub.levels]
    assert [row.gid for row in table.rows] == [str(i) for i in range(len(sub.levels))]
    assert all(row.pi_lb is None for row in table.rows)
    assert [c.key for c in table.columns] == ["k", "est", "tau2", "I2"]
    assert table.footnotes[0].startswith(f"Subgroups of {BCG.subgroup}.")
    with pytest.raises(InputError, match="mix ratio measures"):
        compare_table({"or": BCG.fit, "smd": SMD.fit})
