"""The report's shared-control model of multi-arm trials (metaan.report.dependent)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import metaan
from metaan.report.dependent import active_pairs, observation_key, shared_control_fit


def _records() -> pd.DataFrame:
    """Four trials; trial B compares two doses with one control group and also has
    the comparison of the two doses with each other."""
    rows = [
        ("A", "drug", "placebo", 40, 42, -0.50, 0.105),
        ("B", "high", "low", 30, 28, -0.70, 0.140),
        ("B", "mid", "low", 31, 28, -0.40, 0.135),
        ("B", "high", "mid", 30, 31, -0.30, 0.130),
        ("C", "drug", "placebo", 55, 50, -0.20, 0.076),
        ("D", "drug", "waitlist", 20, 22, -0.90, 0.200),
    ]
    frame = pd.DataFrame(rows, columns=["study_id", "arm1_id", "arm2_id", "n1", "n2", "yi", "vi"])
    return frame.assign(outcome_type="endpoint", scale="HAM-D", time_weeks=8)


def test_a_comparison_of_two_active_arms_of_one_trial_is_flagged() -> None:
    flagged = active_pairs(_records())
    assert flagged.tolist() == [False, False, False, True, False, False]


def test_comparisons_sharing_a_control_are_correlated_through_its_size() -> None:
    recs = _records()[lambda d: ~active_pairs(d)]
    res = shared_control_fit(recs, rho=0.6, level=95.0)
    V = res.model.state.model.S.to_sparse().toarray()
    # Gleser & Olkin: cov = (1/n_control) / sqrt((1/n1 + 1/n2)(1/n1' + 1/n2')) x sd x sd'
    r = (1 / 28) / math.sqrt((1 / 30 + 1 / 28) * (1 / 31 + 1 / 28))
    assert V[1, 2] == pytest.approx(r * math.sqrt(0.140 * 0.135), rel=1e-12)
    assert np.count_nonzero(V - np.diag(np.diag(V))) == 2  # only trial B's pair
    assert res.k == 5 and res.trials == 4 and res.multi_arm == ("B",)
    assert res.rho_pairs == 0  # one observation per trial: rho is not used
    # The model is metaan's multilevel fit of these effects with that V, and the
    # robust test clusters by trial.
    same = metaan.fit_multilevel(
        recs.reset_index(drop=True).assign(c=range(5)),
        V=res.model.state.model.S,
        levels=["study_id", "c"],
        test="t",
    )
    np.testing.assert_allclose(res.model.coef, same.coef, rtol=1e-12)
    assert res.robust.kind == "CR2" and res.robust.n_clusters == 4


def test_rho_applies_only_to_comparisons_on_different_observations() -> None:
    recs = _records()[lambda d: ~active_pairs(d)].copy()
    recs.loc[2, "scale"] = "MADRS"  # trial B's second comparison on another scale
    res = shared_control_fit(recs, rho=0.5, level=95.0)
    assert res.rho_pairs == 1
    assert observation_key(recs).nunique() == 2
    V = res.model.state.model.S.to_sparse().toarray()
    r = 0.5 * (1 / 28) / math.sqrt((1 / 30 + 1 / 28) * (1 / 31 + 1 / 28))
    assert V[1, 2] == pytest.approx(r * math.sqrt(0.140 * 0.135), rel=1e-12)
