"""RoB 2 tables and robvis's weighted summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from metaan.errors import InputError
from metaan.rob import rob_table, summarise_rob


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "study": ["A", "A", "B", "C"],
            "D1": ["Low", "Low", "High", "Some concerns"],
            "Overall": ["low", "low", "high", ""],
            "w": [10.0, 15.0, 25.0, 50.0],
        }
    )


def test_rows_of_one_study_collapse_and_their_weights_add() -> None:
    t = rob_table(_table(), study="study", weight="w")
    assert t.studies == ("A", "B", "C")
    assert t.domains == ("D1", "Overall")
    assert t.weights == (25.0, 25.0, 50.0)
    assert t.judgements[2] == ("some", None)


def test_the_summary_gives_each_level_its_share_of_the_weight() -> None:
    s = summarise_rob(rob_table(_table(), study="study", weight="w"))
    assert s.weighted and s.k == 3
    assert np.allclose(s.shares.sum(axis=1), 100.0)
    assert s.shares[0].tolist() == [25.0, 50.0, 25.0, 0.0]  # D1: low, some, high, none
    assert s.shares[1].tolist() == [25.0, 0.0, 25.0, 50.0]  # a blank counts as no information


def test_unweighted_shares_count_studies() -> None:
    s = summarise_rob(rob_table(_table(), study="study"))
    assert s.shares[0].tolist() == pytest.approx([100 / 3] * 3 + [0.0])


def test_one_study_with_two_judgements_is_an_error_naming_it() -> None:
    bad = _table()
    bad.loc[1, "D1"] = "High"
    with pytest.raises(InputError, match="study A has rows with different"):
        rob_table(bad, study="study")


def test_a_value_that_is_no_rob2_judgement_is_an_error() -> None:
    bad = _table()
    bad.loc[0, "D1"] = "maybe"
    with pytest.raises(InputError, match="not a RoB 2 judgement"):
        rob_table(bad, study="study")
