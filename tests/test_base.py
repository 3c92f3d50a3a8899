"""Every result object shares one small base: repr, summary, to_dict, to_frame and
the notebook view."""

from __future__ import annotations

import dataclasses
import html
import json
from functools import cache

import pandas as pd
import pytest

import metaan
from bcg import BCG as _BCG
from metaan._base import Result

BCG = _BCG.assign(esid=range(13), cluster=[1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7])
#: A small network: a loop A-B-C, a three-arm study and a study of C and D.
ARMS = pd.DataFrame(
    {
        "study": ["s1", "s1", "s2", "s2", "s3", "s3", "s4", "s4", "s4", "s5", "s5"],
        "treatment": ["A", "B", "B", "C", "A", "C", "A", "B", "C", "C", "D"],
        "events": [10, 15, 12, 20, 9, 18, 11, 14, 19, 7, 13],
        "n": [50, 50, 60, 60, 45, 45, 40, 40, 40, 30, 30],
    }
)


@cache
def results() -> dict[str, Result]:
    """One of every result object, from real analyses of the BCG trials."""
    fit = metaan.fit(BCG)
    reg = metaan.fit_regression(BCG, mods=["ablat", "alloc"])
    sub = metaan.fit_subgroups(BCG, by="alloc")
    bias = metaan.small_study_effects(fit)
    full = metaan.fit_multilevel(BCG, levels=["cluster", "esid"], mods="ablat", method="ML")
    reduced = metaan.fit_multilevel(BCG, levels=["cluster", "esid"], method="ML")
    rob = metaan.robust(reg, cluster="cluster", data=BCG)
    assert rob.wald is not None
    out: list[Result] = [
        fit,
        reg,
        reg.predict({"ablat": [20, 40], "alloc": "random"}),
        metaan.permutation_test(reg, 200, seed=1),
        sub,
        sub.levels[0],
        metaan.leave_one_out(fit),
        metaan.influence(fit),
        metaan.baujat(fit),
        metaan.cumulative(BCG, order="ablat"),
        bias,
        bias.egger_lm,
        bias.rank,
        bias.trimfill,
        bias.fsn,
        metaan.q_profile_ci(BCG),
        full,
        full.predict(),
        full.profile_ci[0],  # type: ignore[list-item]
        full.components[0],
        metaan.anova(full, reduced),
        rob,
        rob.wald,
    ]
    net = metaan.fit_network(
        ARMS, treatment="treatment", events="events", n="n", measure="OR", reference="A"
    )
    out += [net, net.random, net.netsplit, metaan.sucra(net, nsim=200, seed=1)]
    return {type(r).__name__: r for r in out}


def test_every_public_result_class_is_built_on_the_base() -> None:
    public = {name: getattr(metaan, name) for name in metaan.__all__}
    records = {"Exclusion", "EffectArrays", "StudyTable", "BlockMatrix"}  # data, not results
    classes = {
        name
        for name, obj in public.items()
        if isinstance(obj, type) and dataclasses.is_dataclass(obj) and name not in records
    }
    assert classes, "no result classes found"
    assert {name for name in classes if not issubclass(public[name], Result)} == set()
    assert classes <= set(results())


@pytest.mark.parametrize("name", sorted(results()))
def test_the_repr_is_the_class_name_with_a_short_summary_on_one_line(name: str) -> None:
    text = repr(results()[name])
    assert text.startswith(f"<{name} ") and text.endswith(">") and "\n" not in text
    assert len(text) < 200


@pytest.mark.parametrize("name", sorted(results()))
def test_every_result_has_a_summary_a_json_ready_dict_and_a_table(name: str) -> None:
    res = results()[name]
    summary = res.summary()
    assert isinstance(summary, str) and summary.strip()
    json.dumps(res.to_dict(), allow_nan=False)
    frame = res.to_frame()
    assert isinstance(frame, pd.DataFrame) and len(frame) >= 1


@pytest.mark.parametrize("name", sorted(results()))
def test_a_notebook_shows_the_summary(name: str) -> None:
    res = results()[name]
    shown = res._repr_html_()
    assert shown.startswith("<pre") and html.escape(res.summary()) in shown


def test_a_result_without_a_summary_cannot_be_made() -> None:
    @dataclasses.dataclass(frozen=True, repr=False)
    class Half(Result):
        x: float

        def to_dict(self) -> dict[str, float]:
            return {"x": self.x}

    with pytest.raises(TypeError, match="summary"):
        Half(1.0)  # type: ignore[abstract]


def test_the_bias_and_sensitivity_summaries_say_what_the_command_line_prints() -> None:
    got = results()
    assert "Egger's test" in got["SmallStudyEffects"].summary()
    assert got["LeaveOneOut"].summary().startswith("Leave-one-out")
    assert "* = influential" in got["Influence"].summary()
    assert "ordered by ablat" in got["Cumulative"].summary()
    assert got["TrimAndFill"].summary().startswith("Trim-and-fill (L0)")
    assert got["FailSafeN"].summary().startswith("Fail-safe N (Rosenthal)")


def test_cumulative_counts_studies_in_integers_as_every_result_does() -> None:
    cum = metaan.cumulative(BCG, test="knha")
    assert isinstance(cum.k, int) and cum.k == 13
    assert cum.df is not None and cum.df[0] is None
    assert all(isinstance(d, int) for d in cum.df[1:]) and cum.df[1:] == tuple(range(1, 13))
    assert cum.to_frame()["df"].dtype == "Int64"
    assert metaan.cumulative(BCG).df is None
