"""Funnel, bubble, L'Abbé, Baujat and comparison plots: options and refusals."""

from __future__ import annotations

import numpy as np
import pytest
from plotcheck import artists, assert_texts_in_svg, lines, reference_cases

import metaan
from metaan import plots
from metaan.bias import egger_test, peese, trim_and_fill
from metaan.errors import InputError
from metaan.regression import fit_regression

CASES = {c.name: c for c in reference_cases()}
BCG = CASES["bcg_OR"]


def test_a_plain_funnel_has_no_contours_and_no_filled_studies() -> None:
    fig = plots.funnel(BCG.fit)
    assert artists(fig, r"contour-\d") == [] and lines(fig, "filled") == []
    assert len(lines(fig, "pseudo-ci")) == 2


def test_contour_levels_can_be_chosen_and_are_named_in_the_legend() -> None:
    fig = plots.funnel(BCG.fit, contours=(0.05, 0.01))
    assert len(artists(fig, r"contour-\d")) == 2
    assert_texts_in_svg(fig, ["p \u2265 .05", ".01 \u2264 p < .05", "p < .01"])
    with pytest.raises(InputError, match="between 0 and 1"):
        plots.funnel(BCG.fit, contours=(0.05, 5.0))


def test_the_funnel_of_a_trim_and_fill_marks_both_estimates() -> None:
    egger = CASES["egger2001_OR"].fit
    tf = trim_and_fill(egger)
    assert tf.k0 > 0
    fig = plots.funnel(tf)
    (after,) = lines(fig, "estimate")
    (before,) = lines(fig, "estimate-observed")
    assert after.get_xdata()[0] == pytest.approx(np.exp(tf.fit.estimate))
    assert before.get_xdata()[0] == pytest.approx(np.exp(tf.original.estimate))
    (filled,) = lines(fig, "filled")
    assert filled.get_markerfacecolor() == "white"  # open circles; observed are filled
    assert len(filled.get_xdata()) == tf.k0


def test_the_peese_curve_is_quadratic_in_the_standard_error() -> None:
    test = peese(BCG.fit)
    (curve,) = lines(plots.funnel(BCG.fit, egger=test), "egger")
    se = np.asarray(curve.get_ydata())
    expected = np.exp(test.limit_estimate + test.slope * se**2)
    np.testing.assert_allclose(curve.get_xdata(), expected, rtol=1e-12)


def test_egger_line_is_linear_in_the_standard_error() -> None:
    test = egger_test(BCG.fit)
    (line,) = lines(plots.funnel(BCG.fit, egger=test), "egger")
    se = np.asarray(line.get_ydata())
    np.testing.assert_allclose(
        line.get_xdata(), np.exp(test.limit_estimate + test.slope * se), rtol=1e-12
    )


def test_the_bubble_plot_needs_to_know_which_moderator_to_draw() -> None:
    reg = fit_regression(BCG.table, mods=["ablat", "year"], measure="OR")
    with pytest.raises(InputError, match="several moderator columns"):
        plots.bubble(reg)
    with pytest.raises(InputError, match="no moderator 'dose'"):
        plots.bubble(reg, "dose")
    fig = plots.bubble(reg, "ablat")
    (points,) = artists(fig, "studies")
    assert sorted(np.asarray(points.get_offsets())[:, 0]) == sorted(BCG.table["ablat"])


def test_bubble_areas_are_proportional_to_the_model_weights() -> None:
    reg = fit_regression(BCG.table, mods=["ablat"], measure="OR")
    (points,) = artists(plots.bubble(reg), "studies")
    sizes = np.asarray(points.get_sizes())
    drawn = np.asarray(points.get_offsets())
    weights = 1 / (reg.vi + reg.tau2)
    # Match each drawn circle to its study by position, not by drawing order.
    x = BCG.table["ablat"].to_numpy(dtype=float)
    shown = np.exp(reg.yi)  # odds ratios, on a log axis
    study = [int(np.flatnonzero((x == px) & np.isclose(shown, py))[0]) for px, py in drawn]
    assert sorted(study) == list(range(reg.k))
    ratio = sizes / weights[study]
    above_floor = sizes > 10
    assert above_floor.sum() >= reg.k - 2
    np.testing.assert_allclose(ratio[above_floor], ratio[above_floor][0], rtol=1e-12)
    assert sizes.max() == pytest.approx(420)


def test_a_labbe_plot_needs_event_data() -> None:
    smd = CASES["normand_SMD"].fit
    with pytest.raises(InputError, match="needs event data"):
        plots.labbe(
            smd, {"ai": [1] * smd.k, "n1i": [2] * smd.k, "ci": [1] * smd.k, "n2i": [2] * smd.k}
        )
    assert BCG.events is not None
    bad = BCG.events.assign(ai=BCG.events["n1i"] + 1)
    with pytest.raises(InputError, match="events must be between 0"):
        plots.labbe(BCG.fit, bad)


def test_the_baujat_plot_labels_the_most_extreme_studies_when_asked() -> None:
    from metaan.sensitivity import baujat

    b = baujat(BCG.fit)
    fig = plots.baujat(b, annotate=3)
    labelled = {t.get_text() for t in artists(fig, r"label-\d+")}
    extremity = np.maximum(b.x / b.x.max(), b.y / b.y.max())
    assert labelled == {b.labels[i] for i in np.argsort(-extremity)[:3]}


def test_the_comparison_plot_refuses_to_mix_ratios_and_differences() -> None:
    smd = CASES["normand_SMD"].fit
    with pytest.raises(InputError, match="mix ratio measures"):
        plots.compare({"OR": BCG.fit, "SMD": smd})
    with pytest.raises(InputError, match="no analyses"):
        plots.compare({})


def test_a_common_effect_analysis_in_a_comparison_has_no_prediction_whisker() -> None:
    ee = metaan.fit(BCG.table, method="EE", labels="label", measure="OR")
    fig = plots.compare({"Common effect": ee, "Random effects": BCG.fit})
    assert len(artists(fig, r"diamond-\d")) == 2
    assert [line.get_gid() for line in lines(fig, r"pi-\d")] == ["pi-1"]
