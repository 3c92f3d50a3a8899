"""Every plot, drawn for every public reference data set and the bundled studies.

Each test checks what was drawn, not only that a figure came out: the number
of study rows and diamonds, that every interval lies inside the axis, that the
labels are in the SVG text, the coordinates of the points, and that no text
sticks out of the figure.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from plotcheck import (
    PlotCase,
    all_cases,
    artists,
    assert_inside_x,
    assert_no_text_cut,
    assert_texts_drawn,
    assert_texts_in_svg,
    lines,
    main_axes,
)

from metaan import plots
from metaan._format import fmt_typeset
from metaan.bias import egger_test, trim_and_fill
from metaan.models import fit
from metaan.regression import fit_regression
from metaan.sensitivity import baujat, cumulative, leave_one_out
from metaan.subgroups import fit_subgroups

CASES = all_cases()
IDS = [c.name for c in CASES]


def _show(case: PlotCase, values: np.ndarray) -> np.ndarray:
    return np.exp(values) if case.fit.is_ratio else np.asarray(values)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_forest_plot_draws_one_row_per_study_and_one_diamond(case: PlotCase) -> None:
    res = case.fit
    columns = {"Year": case.table["year"].tolist()} if "year" in case.table else None
    fig = plots.forest(res, columns=columns, rob=case.rob)
    assert len(lines(fig, r"study-\d+")) == res.k
    assert assert_inside_x(fig, r"ci-\d+") == res.k
    assert len(artists(fig, r"diamond-overall")) == 1
    assert len(artists(fig, r"pi-overall")) == (1 if res.model == "random" else 0)
    assert len(artists(fig, r"label-x\d+")) == len(res.excluded)
    # The study squares sit at the studies' effects, in the order of the data.
    ax = main_axes(fig)
    markers = sorted(lines(fig, r"study-\d+"), key=lambda m: int(m.get_gid().split("-")[1]))
    xs = np.array([m.get_xdata()[0] for m in markers])
    np.testing.assert_allclose(xs, _show(case, res.yi), rtol=1e-12)
    ys = np.array([m.get_ydata()[0] for m in markers])
    assert np.all(np.diff(ys) > 0), "rows are not drawn top to bottom in data order"
    lo, hi = ax.get_xlim()
    pooled = _show(case, np.array([res.ci_lb, res.ci_ub, res.pi_lb, res.pi_ub]))
    assert lo <= pooled.min() and pooled.max() <= hi
    texts = list(res.labels) + [e.study for e in res.excluded if e.study]
    texts.append(f"I\u00b2\u00a0=\u00a0{res.I2:.0f}%")
    texts.append(fmt_typeset(float(_show(case, np.array([res.estimate]))[0]), 2))
    assert_texts_in_svg(fig, texts)
    if case.rob is not None:
        filled = int(case.rob.notna().to_numpy().sum())
        assert len(lines(fig, r"rob-\d+-(D\d|Overall)")) == filled
    if res.k <= 40:
        assert_no_text_cut(fig)


@pytest.mark.parametrize("case", [c for c in CASES if c.subgroup], ids=lambda c: c.name)
def test_the_subgroup_forest_draws_a_block_and_a_diamond_per_pooled_level(
    case: PlotCase,
) -> None:
    sg = fit_subgroups(case.table, by=case.subgroup, labels="label", measure=case.measure)
    fig = plots.forest(sg, overall=case.fit)
    pooled = [lev for lev in sg.levels if lev.pooled]
    assert len(artists(fig, r"diamond-g\d+")) == len(pooled)
    assert len(artists(fig, r"diamond-overall")) == 1
    assert len(artists(fig, r"label-heading-g\d+")) == len(sg.levels)
    assert len(lines(fig, r"study-g\d+-\d+")) == sum(lev.k for lev in sg.levels)
    assert_inside_x(fig, r"ci-g\d+-\d+")
    texts = [f"{sg.by}: {lev.name}" for lev in sg.levels]
    if sg.Q_between is not None:
        texts.append(f"Q\u00a0=\u00a0{fmt_typeset(sg.Q_between, 2)}")
    if sg.mixed is not None:
        texts.append(fmt_typeset(sg.mixed.QM, 2))
    assert_texts_in_svg(fig, texts)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_funnel_draws_the_observed_and_the_filled_studies(case: PlotCase) -> None:
    tf = trim_and_fill(case.fit)
    egger = egger_test(case.fit)
    fig = plots.funnel(tf, contours=True, egger=egger)
    (observed,) = lines(fig, "observed")
    np.testing.assert_allclose(observed.get_xdata(), _show(case, case.fit.yi), rtol=1e-12)
    np.testing.assert_allclose(observed.get_ydata(), np.sqrt(case.fit.vi), rtol=1e-12)
    filled = lines(fig, "filled")
    assert len(filled) == (1 if tf.k0 else 0)
    if tf.k0:
        np.testing.assert_allclose(filled[0].get_xdata(), _show(case, tf.filled_yi), rtol=1e-12)
        np.testing.assert_allclose(filled[0].get_ydata(), np.sqrt(tf.filled_vi), rtol=1e-12)
    ax = main_axes(fig)
    assert_inside_x(fig, "observed|filled")
    se_max = max(ax.get_ylim())
    assert np.sqrt(np.concatenate([case.fit.vi, tf.filled_vi])).max() <= se_max
    assert len(artists(fig, r"contour-\d")) == 3
    (line,) = lines(fig, "egger")
    # At SE = 0 the regression line is at the limit estimate.
    assert line.get_xdata()[0] == pytest.approx(
        float(_show(case, np.array([egger.limit_estimate]))[0]), rel=1e-12
    )
    assert_no_text_cut(fig)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_baujat_plot_puts_each_study_at_its_coordinates(case: PlotCase) -> None:
    b = baujat(case.fit)
    fig = plots.baujat(b)
    (points,) = lines(fig, "studies")
    np.testing.assert_allclose(points.get_xdata(), b.x, rtol=1e-12)
    np.testing.assert_allclose(points.get_ydata(), b.y, rtol=1e-12)
    ax = main_axes(fig)
    assert max(b.x) <= ax.get_xlim()[1] and max(b.y) <= ax.get_ylim()[1]
    assert len(artists(fig, r"label-\d+")) == (b.k if b.k <= 30 else 10)
    assert_no_text_cut(fig)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_leave_one_out_forest_has_a_row_per_study_left_out(case: PlotCase) -> None:
    loo = leave_one_out(case.fit)
    fig = plots.leave1out(loo, full=case.fit)
    assert assert_inside_x(fig, r"ci-\d+") == case.fit.k
    markers = sorted(lines(fig, r"study-\d+"), key=lambda m: int(m.get_gid().split("-")[1]))
    np.testing.assert_allclose(
        [m.get_xdata()[0] for m in markers], _show(case, loo.estimate), rtol=1e-12
    )
    assert len(artists(fig, "diamond-overall")) == 1
    assert_texts_drawn(fig, list(loo.labels))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_cumulative_forest_has_a_row_per_study_added(case: PlotCase) -> None:
    if "year" in case.table and case.table["year"].notna().all():
        cum = cumulative(case.fit, order=case.table["year"].tolist())
    else:
        cum = cumulative(case.fit)
    fig = plots.cumulative(cum, full=case.fit)
    assert assert_inside_x(fig, r"ci-\d+") == case.fit.k
    markers = sorted(lines(fig, r"study-\d+"), key=lambda m: int(m.get_gid().split("-")[1]))
    np.testing.assert_allclose(
        [m.get_xdata()[0] for m in markers], _show(case, cum.estimate), rtol=1e-12
    )
    assert_texts_drawn(fig, [f"+ {label}" for label in cum.labels])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_radial_plot_puts_each_study_at_its_precision_and_z(case: PlotCase) -> None:
    res = case.fit
    fig = plots.radial(res)
    (points,) = lines(fig, "studies")
    s = np.sqrt(res.vi + (res.tau2 or 0.0))
    np.testing.assert_allclose(points.get_xdata(), 1 / s, rtol=1e-12)
    np.testing.assert_allclose(points.get_ydata(), res.yi / s, rtol=1e-12)
    (line,) = lines(fig, "estimate")
    x, y = line.get_xdata(), line.get_ydata()
    assert (y[1] - y[0]) / (x[1] - x[0]) == pytest.approx(res.estimate, rel=1e-12)
    ax = main_axes(fig)
    assert ax.get_ylim()[0] <= min(res.yi / s) and max(res.yi / s) <= ax.get_ylim()[1]
    assert_no_text_cut(fig)


@pytest.mark.parametrize("case", [c for c in CASES if c.moderator], ids=lambda c: c.name)
def test_the_bubble_plot_draws_each_study_and_the_fitted_line(case: PlotCase) -> None:
    reg = fit_regression(case.table, mods=[case.moderator], measure=case.measure)
    fig = plots.bubble(reg)
    (points,) = artists(fig, "studies")
    offsets = points.get_offsets()
    assert len(offsets) == reg.k
    expected = sorted(zip(reg.X[:, 1], _show(case, reg.yi), strict=True))
    got = sorted(map(tuple, np.asarray(offsets)))
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    (line,) = lines(fig, "fit")
    x = line.get_xdata()
    np.testing.assert_allclose(
        line.get_ydata()[[0, -1]],
        _show(case, reg.coef[0] + reg.coef[1] * x[[0, -1]]),
        rtol=1e-10,
    )
    assert len(artists(fig, "band")) == 1
    assert_no_text_cut(fig)


@pytest.mark.parametrize("case", [c for c in CASES if c.events is not None], ids=lambda c: c.name)
def test_the_labbe_plot_puts_each_study_at_its_two_risks(case: PlotCase) -> None:
    assert case.events is not None
    fig = plots.labbe(case.fit, case.events)
    (points,) = artists(fig, "studies")
    ev = case.events
    expected = sorted(zip(ev["ci"] / ev["n2i"], ev["ai"] / ev["n1i"], strict=True))
    got = sorted(map(tuple, np.asarray(points.get_offsets())))
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    ax = main_axes(fig)
    assert max(max(p) for p in got) <= min(ax.get_xlim()[1], ax.get_ylim()[1])
    assert_no_text_cut(fig)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_comparison_plot_draws_a_diamond_and_interval_per_analysis(case: PlotCase) -> None:
    if case.subgroup:
        sg = fit_subgroups(case.table, by=case.subgroup, labels="label", measure=case.measure)
        analyses = {lev.name: lev.fit for lev in sg.levels}
        fig = plots.compare(sg)
    else:
        analyses = {
            m: fit(case.table, method=m, labels="label", measure=case.measure)
            for m in ("EE", "DL", "REML", "PM")
        }
        fig = plots.compare(analyses)
    assert len(artists(fig, r"diamond-\d+")) == len(analyses)
    with_pi = [r for r in analyses.values() if r.model == "random" and r.k >= 2]
    assert len(lines(fig, r"pi-\d+")) == len(with_pi)
    ax = main_axes(fig)
    lo, hi = ax.get_xlim()
    for res in analyses.values():
        shown = _show(case, np.array([res.ci_lb, res.ci_ub]))
        assert lo <= shown.min() and shown.max() <= hi
    texts = list(analyses)
    texts += [f"{r.I2:.0f}%" for r in analyses.values() if r.I2 is not None and r.k >= 2]
    assert_texts_in_svg(fig, texts)
    assert all(math.isfinite(v) for v in (lo, hi))
