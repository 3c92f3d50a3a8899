"""Simulated trials: their summaries have the sampling distributions of real trials."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metaan.effects import log_odds_ratio, standardized_mean_difference
from metaan.simulate import parse_simulation_spec
from metaan.simulate.generate import concat, generate
from metaan.simulate.run import unit_rng

SPEC = """
[simulation]
seed = 3
replications = 200
[grid]
measure = ["SMD", "OR"]
k = [4]
effect = [0.5]
tau2 = [0.0, 0.2]
control_risk = [0.1]
[sample_size]
distribution = "fixed"
n = 20
[methods]
estimators = ["REML"]
"""


def test_a_units_stream_is_the_spawned_child_of_its_scenarios_stream() -> None:
    seed, scenario, unit = 11, 3, 5
    child = np.random.SeedSequence(seed).spawn(scenario + 1)[scenario].spawn(unit + 1)[unit]
    expected = np.random.Generator(np.random.PCG64(child)).random(5)
    assert np.array_equal(unit_rng(seed, scenario, unit).random(5), expected)
    assert not np.array_equal(unit_rng(seed, scenario, unit + 1).random(5), expected)


def test_smd_arms_give_hedges_g_with_its_sampling_variance() -> None:
    spec = parse_simulation_spec(SPEC)
    scenario = spec.scenarios[0]  # SMD, tau2 = 0, d = 0.5, 20 per arm
    batch = generate(scenario, spec.sample_size, 20_000, np.random.default_rng(1))
    g = batch.yi
    assert g.size == 80_000 and np.all(batch.sizes == 4)
    # Hedges' g is unbiased for d; its variance is about 1/n1 + 1/n2 + d^2 / (2 (n1 + n2)).
    se = g.std() / math.sqrt(g.size)
    assert abs(g.mean() - 0.5) < 4 * se
    v = 2 / 20 + 0.25 / 80
    assert g.var() == pytest.approx(v, rel=0.05)
    assert np.allclose(batch.vi, 2 / 20 + g**2 / 80)


def test_heterogeneity_adds_tau2_to_the_spread_of_the_effects() -> None:
    spec = parse_simulation_spec(SPEC)
    homogeneous = generate(spec.scenarios[0], spec.sample_size, 20_000, np.random.default_rng(2))
    heterogeneous = generate(spec.scenarios[1], spec.sample_size, 20_000, np.random.default_rng(2))
    extra = heterogeneous.yi.var() - homogeneous.yi.var()
    # g shrinks d by J(38) ~ 0.98, so the added variance is J^2 tau2.
    assert extra == pytest.approx(0.2 * 0.98**2, abs=0.02)


def test_event_counts_are_binomial_with_zero_cells_as_often_as_trials_have_them() -> None:
    spec = parse_simulation_spec(SPEC)
    scenario = spec.scenarios[2]  # OR, tau2 = 0, log OR 0.5, control risk 0.1
    assert scenario.measure == "OR" and scenario.tau2 == 0.0
    batch = generate(scenario, spec.sample_size, 20_000, np.random.default_rng(3))
    assert batch.counts is not None
    ai, n1, ci, n2 = batch.counts
    zero = float(np.mean(ci == 0))
    expected = 0.9**20
    assert abs(zero - expected) < 4 * math.sqrt(expected * (1 - expected) / ci.size)
    p1 = 1 / (1 + 9 * math.exp(-0.5))
    assert abs(ai.mean() / 20 - p1) < 4 * math.sqrt(p1 * (1 - p1) / (20 * ai.size))
    # The log odds ratios are metafor's, with 1/2 added to tables with a zero cell.
    yi, vi = log_odds_ratio(ai, n1 - ai, ci, n2 - ci)
    assert np.array_equal(batch.yi, yi.ravel()) and np.array_equal(batch.vi, vi.ravel())


def test_a_study_without_an_estimate_leaves_its_meta_analysis() -> None:
    spec = parse_simulation_spec(SPEC.replace("[methods]", '[counts]\nto = "none"\n[methods]'))
    batch = generate(spec.scenarios[2], spec.sample_size, 500, np.random.default_rng(4), to="none")
    assert batch.counts is not None
    ai, _, ci, _ = batch.counts
    zero = (ai == 0) | (ci == 0)
    assert zero.any()
    assert np.array_equal(batch.sizes, 4 - zero.sum(axis=1))
    assert np.all(np.isfinite(batch.yi)) and batch.yi.size == batch.sizes.sum()


def test_the_same_generator_state_gives_the_same_trials_and_batches_join_in_order() -> None:
    spec = parse_simulation_spec(SPEC)
    s = spec.scenarios[1]
    one = generate(s, spec.sample_size, 10, unit_rng(3, s.index, 0))
    two = generate(s, spec.sample_size, 10, unit_rng(3, s.index, 0))
    assert np.array_equal(one.yi, two.yi)
    other = generate(s, spec.sample_size, 5, unit_rng(3, s.index, 1))
    joined = concat([one, other])
    assert np.array_equal(joined.yi, np.concatenate([one.yi, other.yi]))
    assert joined.n == 15


def test_smd_summaries_are_turned_into_effects_by_metaans_own_formula() -> None:
    spec = parse_simulation_spec(SPEC)
    s = spec.scenarios[0]
    rng = np.random.default_rng(5)
    batch = generate(s, spec.sample_size, 3, rng)
    # Redraw the same summaries in the generator's order and compute g directly.
    rng = np.random.default_rng(5)
    shape = (3, 4)
    theta = 0.5 + 0.0 * rng.standard_normal(shape)
    m2 = rng.standard_normal(shape) / math.sqrt(20)
    m1 = theta + rng.standard_normal(shape) / math.sqrt(20)
    sd2 = np.sqrt(rng.chisquare(np.full(shape, 19.0)) / 19)
    sd1 = np.sqrt(rng.chisquare(np.full(shape, 19.0)) / 19)
    yi, _ = standardized_mean_difference(m1, sd1, 20, m2, sd2, 20)
    assert np.array_equal(batch.yi, yi.ravel())
