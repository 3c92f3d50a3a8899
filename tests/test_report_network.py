"""The report's network meta-analysis (metaan.report.network) on the bundled records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import metaan
from metaan.report.network import network_arms
from tolerance import assert_close

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "tests" / "reference" / "netmeta" / "griselda_ssri_OR.json"


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return metaan.load_studies(ROOT / "studies").frame


def test_the_ssri_response_network_of_the_records_is_netmeta_s_griselda_network(
    records: pd.DataFrame,
) -> None:
    """The SSRI response records, arms counted once and doses of a drug combined, are
    the network of the GRISELDA reference file, so the report's SSRI network is the one
    whose every number the conformance suite checks against netmeta."""
    ssri = records[(records.drug_class == "ssri") & (records.outcome_type == "response")]
    arms, out = network_arms(
        ssri, "response", lambda r, side: r["intervention"] if side == 1 else r["comparator"]
    )
    raw = json.loads(REFERENCE.read_text(encoding="utf-8"))
    reference = pd.DataFrame(raw["input"]).rename(
        columns={"study_id": "study", "drug": "treatment", "responders": "events"}
    )
    ours = arms.set_index(["study", "treatment"]).sort_index()
    theirs = reference.set_index(["study", "treatment"]).sort_index()
    assert list(ours.index) == list(theirs.index)
    np.testing.assert_array_equal(ours["events"], theirs["events"])
    np.testing.assert_array_equal(ours["total"], theirs["n_randomised"])
    # Every arm left out is listed with its reason.
    assert any("not a whole number" in o.reason for o in out)
    assert all(o.reason for o in out)
    fit = metaan.fit_network(
        arms, study="study", treatment="treatment", events="events", n="total",
        measure="OR", reference="placebo", small_values="bad",
    )  # fmt: skip
    block = raw["results"]["DL"]
    assert_close(fit.tau2, block["tau2"], "report SSRI network tau2")
    assert_close(fit.random.TE, block["random"]["TE"], "report SSRI network random TE")


def test_doses_of_one_drug_in_a_trial_become_one_arm(records: pd.DataFrame) -> None:
    burke = records[
        (records.study_id == "Burke2002 (SCT-MD-01)")
        & (records.outcome_type == "endpoint_or_change")
    ]
    arms, _ = network_arms(
        burke, "continuous", lambda r, side: r["intervention"] if side == 1 else "placebo"
    )
    esc = burke[burke.intervention == "escitalopram"]
    n, m, s = esc.n1.to_numpy(), esc.mean1.to_numpy(), esc.sd1.to_numpy()
    total = n.sum()
    mean = (n * m).sum() / total
    sd = np.sqrt((((n - 1) * s**2).sum() + (n * (m - mean) ** 2).sum()) / (total - 1))
    row = arms[arms.treatment == "escitalopram"].iloc[0]
    assert row["n"] == total
    assert row["mean"] == pytest.approx(mean, rel=1e-14)
    assert row["sd"] == pytest.approx(sd, rel=1e-14)
    assert list(arms.treatment) == ["citalopram", "placebo", "escitalopram"]
