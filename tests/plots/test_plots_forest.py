"""The forest plot: labels, columns, sorting, risk of bias, exclusions, scale, size."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest
from plotcheck import (
    artists,
    assert_inside_x,
    assert_no_text_cut,
    assert_texts_in_svg,
    figure_texts,
    lines,
    main_axes,
    reference_cases,
    text_extents,
)

import metaan
from metaan import plots
from metaan.errors import InputError
from metaan.plots._table import ROB_LEVELS
from metaan.subgroups import fit_subgroups
from metaan.tables import fit_mh

BCG = reference_cases()[0]  # bcg_OR: 13 trials, 2x2 counts


def _row_order(fig: object) -> list[int]:
    """Study indices from top to bottom."""
    markers = lines(fig, r"study-\d+")  # type: ignore[arg-type]
    return [int(m.get_gid().split("-")[1]) for m in sorted(markers, key=lambda m: m.get_ydata()[0])]


def test_a_forty_character_label_stays_on_one_line_and_is_not_cut() -> None:
    labels = [f"{name:<34.34}{1948 + i:>6}" for i, name in enumerate(BCG.fit.labels)]
    labels[0] = "Wellcome-Hoechst Multicentre Group 1979"[:34] + "  1979"
    assert all(len(label) == 40 for label in labels)
    res = metaan.fit(yi=BCG.fit.yi, vi=BCG.fit.vi, labels=labels, measure="OR")
    fig = plots.forest(res)
    drawn = {t.get_gid(): t.get_text() for t in artists(fig, r"label-\d+")}
    assert sorted(drawn.values()) == sorted(labels)  # whole, on one line each
    assert_no_text_cut(fig)


def test_a_long_label_is_wrapped_whole_and_kept_clear_of_the_plot() -> None:
    long = "A very long trial name that runs well past forty characters, " * 2
    labels = [long.strip(), *BCG.fit.labels[1:]]
    res = metaan.fit(yi=BCG.fit.yi, vi=BCG.fit.vi, labels=labels, measure="OR")
    fig = plots.forest(res, columns={"Year": BCG.table["year"].tolist()})
    (text,) = artists(fig, "label-0")
    assert "\n" in text.get_text()
    assert_texts_in_svg(fig, labels)
    assert_no_text_cut(fig)
    ax_left = main_axes(fig).get_window_extent().x0
    year_left = min(box.x0 for t, box in text_extents(fig) if t.get_gid() == "cell-x:Year-0")
    for t, box in text_extents(fig):
        if (t.get_gid() or "").startswith("label-"):
            assert box.x1 < year_left < ax_left, t.get_text()


def test_the_plot_grows_with_the_rows_and_keeps_its_font_at_k_200() -> None:
    rng = np.random.default_rng(20240601)
    k = 200
    res = metaan.fit(yi=rng.normal(0.2, 0.3, k), vi=rng.uniform(0.01, 0.2, k), measure="SMD")
    fig = plots.forest(res)
    assert len(lines(fig, r"study-\d+")) == k
    assert assert_inside_x(fig, r"ci-\d+") == k
    ys = np.sort([m.get_ydata()[0] for m in lines(fig, r"study-\d+")])
    assert np.diff(ys).min() >= 0.19  # the axes' y unit is an inch: rows stay 0.2 in apart
    assert fig.get_figheight() > k * 0.19
    sizes = {t.get_fontsize() for t in artists(fig, r"label-\d+")}
    assert sizes == {9.0}


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("effect", lambda r, t: r.yi),
        ("weight", lambda r, t: -r.weights),
        ("year", lambda r, t: t["year"].to_numpy(float)),
    ],
)
def test_rows_are_sorted_by_effect_weight_or_year(sort: str, key: object) -> None:
    res, table = BCG.fit, BCG.table
    fig = plots.forest(res, sort=sort, columns={"year": table["year"].tolist()})  # type: ignore[arg-type]
    expected = list(np.argsort(key(res, table), kind="stable"))  # type: ignore[operator]
    assert _row_order(fig) == expected


def test_sorting_by_year_without_years_is_refused() -> None:
    with pytest.raises(InputError, match="year"):
        plots.forest(BCG.fit, sort="year")


def test_the_risk_of_bias_light_shows_colour_and_symbol_for_each_judgement() -> None:
    levels = ["Low", "Some concerns", "High", "No information", None]
    rob = {
        dom: [levels[(i + j) % 5] for i in range(BCG.fit.k)]
        for j, dom in enumerate(["rob_d1", "rob_d2", "rob_d3", "rob_d4", "rob_d5", "rob_overall"])
    }
    fig = plots.forest(BCG.fit, rob=rob)
    markers = lines(fig, r"rob-\d+-(D\d|Overall)")
    assert len(markers) == sum(v is not None for col in rob.values() for v in col)
    colours = {ROB_LEVELS[key][0].lower() for key in ("low", "some", "high", "none")}
    assert {mpl.colors.to_hex(m.get_markerfacecolor()) for m in markers} == colours
    symbols = [ROB_LEVELS[key][1] for key in ("low", "some", "high", "none")]
    texts = figure_texts(fig)
    for symbol in symbols:
        assert texts.count(symbol) >= 2  # in the table and in the key
    assert_texts_in_svg(fig, ["D1", "D5", "Overall", "Low risk", "Some concerns", "High risk"])


def test_a_judgement_that_is_not_a_rob_2_level_is_refused() -> None:
    rob = {"D1": ["Low"] * (BCG.fit.k - 1) + ["Moderately fine"]}
    with pytest.raises(InputError, match="not a RoB 2 judgement"):
        plots.forest(BCG.fit, rob=rob)


def test_extra_columns_need_one_value_per_study() -> None:
    with pytest.raises(InputError, match="has 3 values but the result has 13 studies"):
        plots.forest(BCG.fit, columns={"n": [1, 2, 3]})


def test_excluded_studies_are_shown_marked_and_explained() -> None:
    table = BCG.table.copy()
    table.loc[4, "vi"] = np.nan
    res = metaan.fit(table, labels="label", measure="OR")
    fig = plots.forest(res)
    assert len(lines(fig, r"study-\d+")) == 12
    (label,) = artists(fig, r"label-x0")
    assert label.get_text() == table.loc[4, "label"]
    order = sorted([*artists(fig, r"label-\d+"), label], key=lambda t: t.get_position()[1])
    assert order.index(label) == 4  # where it was in the data
    assert_texts_in_svg(
        fig, ["not pooled\u2020", f"{table.loc[4, 'label']} (row 6): vi is missing"]
    )


@pytest.mark.parametrize(
    ("lower_is_better", "left", "right"),
    [(True, "Favours drug", "Favours placebo"), (False, "Favours placebo", "Favours drug")],
)
def test_favours_labels_follow_the_direction_of_the_scale(
    lower_is_better: bool, left: str, right: str
) -> None:
    fig = plots.forest(BCG.fit, groups=("drug", "placebo"), lower_is_better=lower_is_better)
    (left_text,) = artists(fig, "favours-left")
    (right_text,) = artists(fig, "favours-right")
    assert left in left_text.get_text() and right in right_text.get_text()
    null = left_text.get_position()[0]
    assert null == 1.0  # at the null of an odds ratio
    assert left_text.get_horizontalalignment() == "right"


def test_no_favours_labels_when_the_direction_is_not_given() -> None:
    assert artists(plots.forest(BCG.fit, lower_is_better=None), "favours-.*") == []


def test_ratios_are_drawn_on_a_log_axis_labelled_in_ratios() -> None:
    fig = plots.forest(BCG.fit)
    ax = main_axes(fig)
    assert ax.get_xscale() == "log"
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert "1" in ticks
    assert ax.get_xlim()[0] > 0
    smd = plots.forest(reference_cases()[-1].fit)
    assert main_axes(smd).get_xscale() == "linear"


def test_intervals_beyond_given_limits_end_in_arrows_inside_the_axis() -> None:
    fig = plots.forest(BCG.fit, xlim=(0.2, 2.0))
    assert assert_inside_x(fig, r"ci-\d+") == BCG.fit.k
    lb = np.exp(BCG.fit.to_frame()["ci_lb"].to_numpy())
    assert len(lines(fig, r"arrow-\d+-lo")) == int(np.sum(lb < 0.2))


def test_a_mantel_haenszel_forest_has_no_prediction_interval() -> None:
    ev = BCG.events
    assert ev is not None
    res = fit_mh(
        ai=ev["ai"], n1i=ev["n1i"], ci=ev["ci"], n2i=ev["n2i"], labels=list(BCG.fit.labels)
    )
    fig = plots.forest(res)
    assert artists(fig, "pi-overall") == []
    assert_texts_in_svg(fig, ["Common-effect model (Mantel-Haenszel)"])


def test_a_subgroup_of_one_study_is_shown_but_not_pooled() -> None:
    normand = next(c for c in reference_cases() if c.name == "normand_SMD")
    sg = fit_subgroups(normand.table, by="source", labels="label", measure="SMD")
    single = [j for j, lev in enumerate(sg.levels) if not lev.pooled]
    assert single
    fig = plots.forest(sg)
    for j in single:
        assert artists(fig, f"diamond-g{j}") == []
        assert len(lines(fig, rf"study-g{j}-\d+")) == 1
    assert len(artists(fig, r"diamond-g\d+")) == len(sg.levels) - len(single)


def test_drawing_leaves_pyplot_and_the_rc_parameters_alone() -> None:
    import matplotlib.pyplot as plt

    before = dict(mpl.rcParams)
    figures = plt.get_fignums()
    plots.forest(BCG.fit, rob=pd.DataFrame({"D1": ["Low"] * BCG.fit.k}))
    plots.funnel(BCG.fit, contours=True)
    assert plt.get_fignums() == figures
    assert dict(mpl.rcParams) == before


def test_number_columns_are_right_aligned_and_text_columns_left_aligned() -> None:
    doses = ["25 mg", "0.3 mg/kg", *["10 mg"] * (BCG.fit.k - 2)]
    fig = plots.forest(BCG.fit, columns={"n": BCG.table["n1i"].tolist(), "Dose": doses})
    (n_cell,) = artists(fig, "cell-x:n-0")
    (dose_cell,) = artists(fig, "cell-x:Dose-0")
    assert n_cell.get_text() == "123" and n_cell.get_horizontalalignment() == "right"
    assert dose_cell.get_text() == "25 mg" and dose_cell.get_horizontalalignment() == "left"
