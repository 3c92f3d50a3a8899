"""The report's network meta-analysis (metaan.report.network) on the bundled records."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

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


# --------------------------------------------------------------------------------------
# The report's numbers: indirect and network inference never more precise than its parts
# --------------------------------------------------------------------------------------

COMMITTED = ROOT / "reports" / "depression" / "results.json"


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """The committed report's numbers (a test of the build keeps them equal to a fresh
    build's)."""
    data: dict[str, Any] = json.loads(COMMITTED.read_text(encoding="utf-8"))
    return data


def _width(x: dict[str, Any]) -> float:
    return float(x["ci_ub"]) - float(x["ci_lb"])


def test_the_bucher_comparison_is_never_more_precise_than_its_legs(
    report: dict[str, Any],
) -> None:
    """The indirect psilocybin-versus-SSRI estimate subtracts two pooled estimates; its
    interval is at least as wide as each of theirs, since a Hartung-Knapp leg (t with
    k - 1 df) keeps its t quantile."""
    comp = report["sections"]["comparison"]
    indirect = comp["indirect"]
    legs = [comp["indirect_a"]["fit"], report["classes"]["ssri"]["continuous"]["fit"]]
    for leg in legs:
        assert _width(indirect) >= _width(leg), (indirect, leg)
    assert indirect["df"] == min(leg["df"] for leg in legs if leg["df"] is not None)
    difference = comp["inconsistency"]
    for part in (comp["direct"], indirect):
        assert _width(difference) >= _width(part)


def test_the_network_s_indirect_estimate_is_never_more_precise_than_its_legs(
    report: dict[str, Any],
) -> None:
    """In each network, the indirect estimate of psilocybin against escitalopram (the
    network without Carhart-Harris 2021, by back-calculation) is no more precise than
    either of the network's estimates against placebo it runs through."""
    for outcome in ("continuous", "response"):
        fit = report["sections"]["network"][outcome]["fit"]
        names = fit["treatments"]
        psil, esc, pbo = (names.index(t) for t in ("psilocybin", "escitalopram", "placebo"))
        split = fit["netsplit"]["random"]
        comparisons = fit["netsplit"]["comparison"]
        c = comparisons.index(
            "escitalopram:psilocybin"
            if "escitalopram:psilocybin" in comparisons
            else "psilocybin:escitalopram"
        )
        indirect_se = split["indirect_se"][c]
        se = fit["random"]["seTE"]
        assert indirect_se >= se[psil][pbo] and indirect_se >= se[esc][pbo], outcome
        # The network combines direct and indirect evidence, so it is no less precise
        # than either, and no more than both together.
        direct_se = split["direct_se"][c]
        network_se = se[psil][esc]
        assert network_se <= min(direct_se, indirect_se)
        combined = (direct_se**-2 + indirect_se**-2) ** -0.5
        assert network_se == pytest.approx(combined, rel=1e-9)


def test_the_network_section_states_what_it_leaves_out_and_why(report: dict[str, Any]) -> None:
    network = report["sections"]["network"]
    (label, reason), *_ = network["left_out"]
    assert label == "Cannabinoids" and reason.startswith("no poolable comparison")
    for outcome in ("continuous", "response"):
        arms = network[outcome]["arms"]
        assert all(a["file"].startswith("../studies/") and a["rows"] for a in arms)
        assert all(o["reason"] for o in network[outcome]["left_out"])


def _network_html() -> str:
    """The text of the committed report's network section, tags and figures removed."""
    page = (ROOT / "reports" / "depression" / "index.html").read_text(encoding="utf-8")
    start = page.index('id="network"')
    section = page[start : page.index("<h2", start)]
    section = re.sub(r"<svg.*?</svg>", " [figure] ", section, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", section)))


def test_the_network_section_holds_what_a_reader_needs(report: dict[str, Any]) -> None:
    """Depression scores as SMD and response as OR; psilocybin, escitalopram, the other
    SSRIs and placebo as nodes; Carhart-Harris 2021 as the direct psilocybin-versus-
    escitalopram trial; P-scores, the inconsistency test and netsplit; and in the text
    the graph, the league table, the caveat on ranks and the note on transitivity."""
    network = report["sections"]["network"]
    for outcome, measure in (("continuous", "SMD"), ("response", "OR")):
        fit = network[outcome]["fit"]
        assert fit["measure"] == measure
        assert {"psilocybin", "escitalopram", "placebo"} <= set(fit["treatments"])
        assert {"citalopram", "fluoxetine", "paroxetine", "sertraline"} <= set(fit["treatments"])
        direct = {
            a["treatment"] for a in network[outcome]["arms"] if a["study"] == "Carhart-Harris 2021"
        }
        assert direct == {"psilocybin", "escitalopram"}
        split = fit["netsplit"]
        pair = next(c for c in split["comparison"] if set(c.split(":")) == direct)
        assert split["k"][split["comparison"].index(pair)] == 1
        assert fit["decomposition"]["df_between"] > 0
        assert set(fit["random"]["pscore"]) == set(fit["treatments"])
    text = _network_html()
    for needed in (
        "Figure: the network of trials",
        "Figure: the league table",
        "P-scores",
        "A rank says nothing about how large the differences are",
        "inconsistency between designs",
        "Psilocybin versus escitalopram",
        "transitivity",
        "Cannabinoids are not in the network: no poolable comparison",
    ):
        assert needed in text, needed


def test_a_network_class_the_spec_does_not_declare_is_refused_with_its_line(
    tmp_path: Path,
) -> None:
    from metaan.errors import SpecError
    from metaan.report.spec import load_spec

    text = (ROOT / "reports" / "depression.toml").read_text(encoding="utf-8")
    text = text.replace('"../studies/', f'"{(ROOT / "studies").as_posix()}/')
    text = text.replace('classes = ["psilocybin", "ssri"]', 'classes = ["psilocybin", "snri"]')
    path = tmp_path / "depression.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError, match=r"line \d+: \[network\] classes: 'snri' is not a class"):
        load_spec(path)
