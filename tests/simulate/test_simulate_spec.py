"""Simulation specifications: the grid they declare, and the errors that name a key."""

from __future__ import annotations

from pathlib import Path

import pytest

from metaan.errors import SpecError
from metaan.simulate import load_simulation_spec, parse_simulation_spec

BASE = """
[simulation]
seed = 7
replications = 300

[grid]
measure = ["SMD", "OR"]
k = [3, 5]
effect = [0.0, 0.4]
tau2 = [0.0, 0.1]
control_risk = [0.1]

[sample_size]
distribution = "fixed"
n = 50

[methods]
estimators = ["DL", "REML"]
tests = ["z", "knha"]
predictions = ["metafor", "meta"]
tables = ["MH", "PETO"]
"""


def test_the_grid_is_the_product_of_its_keys_in_a_fixed_order() -> None:
    spec = parse_simulation_spec(BASE)
    assert len(spec.scenarios) == 2 * 2 * 2 * 2
    assert [s.index for s in spec.scenarios] == list(range(16))
    first, last = spec.scenarios[0], spec.scenarios[-1]
    assert (first.measure, first.k, first.effect, first.tau2) == ("SMD", 3, 0.0, 0.0)
    assert first.control_risk is None
    assert (last.measure, last.k, last.effect, last.tau2, last.control_risk) == (
        "OR",
        5,
        0.4,
        0.1,
        0.1,
    )


def test_the_methods_are_every_estimator_test_and_prediction_plus_tables_for_counts() -> None:
    spec = parse_simulation_spec(BASE)
    smd = spec.methods_for("SMD")
    assert len(smd) == 2 * 2 * 2
    assert [m.method for m in spec.methods_for("OR")][-2:] == ["MH", "PETO"]
    assert spec.methods_for("OR")[-1].prediction == "none"


def test_i2_becomes_tau2_through_the_typical_within_study_variance() -> None:
    # Fixed arms of 50 and true SMD 0: every study has v = 1/50 + 1/50 = 0.04, so
    # I2 = 50 % is tau2 = 0.04 and I2 = 75 % is tau2 = 0.12.
    text = BASE.replace("tau2 = [0.0, 0.1]", "i2 = [50, 75]").replace(
        'measure = ["SMD", "OR"]', 'measure = ["SMD"]'
    )
    text = text.replace("control_risk = [0.1]\n", "").replace('tables = ["MH", "PETO"]\n', "")
    spec = parse_simulation_spec(text)
    null = [s for s in spec.scenarios if s.effect == 0.0]
    assert [s.tau2 for s in null] == pytest.approx([0.04, 0.12, 0.04, 0.12], rel=1e-14)
    assert [s.i2 for s in null] == [50.0, 75.0, 50.0, 75.0]
    assert null[0].typical_v == pytest.approx(0.04, rel=1e-14)


def test_the_typical_variance_of_a_log_odds_ratio_follows_the_event_risks() -> None:
    # Fixed arms of 50, control risk 0.1, true log OR 0: v = 2 / (50 x 0.1 x 0.9).
    text = BASE.replace('measure = ["SMD", "OR"]', 'measure = ["OR"]')
    spec = parse_simulation_spec(text)
    assert spec.scenarios[0].typical_v == pytest.approx(2 / (50 * 0.1 * 0.9), rel=1e-14)


def test_uniform_arm_sizes_average_the_inverse_variance_over_every_size() -> None:
    text = BASE.replace(
        'distribution = "fixed"\nn = 50', 'distribution = "uniform"\nlow = 2\nhigh = 3'
    )
    spec = parse_simulation_spec(text)
    expected = 1 / ((1 / (2 / 2) + 1 / (2 / 3)) / 2)  # v = 2/n at SMD 0, n = 2 or 3
    assert spec.scenarios[0].typical_v == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ("seed = 7", "seed = 7\nsede = 3", "[simulation] sede: unknown key"),
        ("[grid]", "[grdi]\nx = 1\n[grid]", "[grdi]: unknown table"),
        ("k = [3, 5]", "k = [1, 5]", "[grid] k"),
        ("k = [3, 5]", "k = [3.5]", "[grid] k"),
        ("tau2 = [0.0, 0.1]", "tau2 = [-0.1]", "[grid] tau2"),
        ("tau2 = [0.0, 0.1]", "i2 = [100]", "[grid] i2"),
        ("tau2 = [0.0, 0.1]", "tau2 = [0.1]\ni2 = [50]", "[grid] tau2"),
        ("control_risk = [0.1]", "control_risk = [1.2]", "[grid] control_risk"),
        ("control_risk = [0.1]\n", "", "[grid] control_risk"),
        ("replications = 300", "replications = 1", "[simulation] replications"),
        ("replications = 300", "replications = 3.5", "[simulation] replications"),
        ("seed = 7", "seed = -1", "[simulation] seed"),
        ("n = 50", "n = 1", "[sample_size] n"),
        ("n = 50", "n = 50\nlow = 3", "[sample_size] low"),
        ('distribution = "fixed"', 'distribution = "normal"', "[sample_size] distribution"),
        ('estimators = ["DL", "REML"]', 'estimators = ["DL", "XX"]', "[methods] estimators"),
        ('tests = ["z", "knha"]', 'tests = ["t"]', "[methods] tests"),
        ('measure = ["SMD", "OR"]', 'measure = ["MD"]', "[grid] measure"),
        ("[methods]", '[counts]\nto = "sometimes"\n[methods]', "[counts] to"),
    ],
)
def test_an_unknown_key_or_impossible_value_is_an_error_naming_the_key(
    old: str, new: str, named: str
) -> None:
    assert old in BASE
    with pytest.raises(SpecError) as info:
        parse_simulation_spec(BASE.replace(old, new, 1))
    assert named in str(info.value)


def test_table_methods_without_counts_are_an_error() -> None:
    text = BASE.replace('measure = ["SMD", "OR"]', 'measure = ["SMD"]').replace(
        "control_risk = [0.1]\n", ""
    )
    with pytest.raises(SpecError, match=r"\[methods\] tables"):
        parse_simulation_spec(text)


def test_a_subset_keeps_each_scenarios_index() -> None:
    spec = parse_simulation_spec(BASE)
    subset = spec.subset([3, 12])
    assert [s.index for s in subset.scenarios] == [3, 12]
    with pytest.raises(SpecError, match="scenario 99"):
        spec.subset([99])


def test_a_spec_file_names_its_output_folder_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "study.toml"
    path.write_text(BASE, encoding="utf-8")
    spec = load_simulation_spec(path)
    assert spec.output == (tmp_path / "study").resolve()
    assert len(spec.sha256) == 64
    with pytest.raises(SpecError, match="cannot read"):
        load_simulation_spec(tmp_path / "missing.toml")
