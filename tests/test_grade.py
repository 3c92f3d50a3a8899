"""GRADE ratings computed by declared rules, and what is judgement."""

from __future__ import annotations

import math

import numpy as np
import pytest

import metaan
from metaan.errors import InputError
from metaan.grade import (
    GradeRules,
    Judgement,
    absolute_effect,
    grade,
    optimal_information_size,
)


def _fit(yi: list[float], vi: list[float], measure: str = "SMD") -> metaan.MetaResult:
    return metaan.fit(yi=np.array(yi), vi=np.array(vi), method="REML", measure=measure)


def _domain(rating: object, name: str) -> object:
    return next(d for d in rating.domains if d.name == name)  # type: ignore[attr-defined]


def test_the_optimal_information_size_follows_the_sample_size_formulas() -> None:
    z = 1.959963984540054 + 0.8416212335729143
    assert optimal_information_size(alpha=0.05, power=0.8, smd=0.5) == pytest.approx(
        4 * z**2 / 0.25
    )
    p0, p1 = 0.2, 0.25
    expected = 2 * z**2 * (p0 * (1 - p0) + p1 * (1 - p1)) / (p1 - p0) ** 2
    got = optimal_information_size(alpha=0.05, power=0.8, control_risk=0.2, ratio=1.25)
    assert got == pytest.approx(expected)


def test_absolute_effects_per_1000_follow_from_the_odds_ratio_and_the_control_risk() -> None:
    res = _fit([math.log(2.0)] * 3, [0.01, 0.02, 0.03], measure="OR")
    eff = absolute_effect(res, 0.2)
    assert eff.control_per_1000 == pytest.approx(200.0)
    assert eff.intervention_per_1000 == pytest.approx(1000 * (0.5 / 1.5))
    assert eff.difference_lb < eff.difference_per_1000 < eff.difference_ub


def test_precise_consistent_low_risk_evidence_stays_high() -> None:
    res = _fit([-0.8, -0.75, -0.85, -0.8], [0.01, 0.012, 0.011, 0.01])
    rating = grade(res, participants=2000, high_risk=[False] * 4, rules=GradeRules(mid=0.5),
                   indirectness=Judgement("not serious", "the question asked"))  # fmt: skip
    assert rating.certainty == "high"
    assert _domain(rating, "indirectness").basis == "declared"  # type: ignore[attr-defined]
    assert _domain(rating, "publication bias").basis == "not assessed"  # type: ignore[attr-defined]


def test_weight_from_high_risk_trials_rates_down_at_the_declared_shares() -> None:
    res = _fit([-0.5, -0.5, -0.5, -0.5], [0.01, 0.01, 0.01, 0.01])
    half = grade(res, participants=2000, high_risk=[True, True, False, False])
    most = grade(res, participants=2000, high_risk=[True, True, True, True])
    assert _domain(half, "risk of bias").downgrade == -1  # type: ignore[attr-defined]
    assert _domain(most, "risk of bias").downgrade == -2  # type: ignore[attr-defined]
    assert "50%" in _domain(half, "risk of bias").reason  # type: ignore[attr-defined]


def test_without_rob_judgements_the_domain_is_not_assessed_or_declared() -> None:
    res = _fit([-0.5, -0.4, -0.6], [0.01, 0.01, 0.01])
    unknown = grade(res, participants=2000)
    assert _domain(unknown, "risk of bias").basis == "not assessed"  # type: ignore[attr-defined]
    declared = grade(res, participants=2000, risk_of_bias=Judgement("serious", "why"))
    assert _domain(declared, "risk of bias").downgrade == -1  # type: ignore[attr-defined]
    with pytest.raises(InputError, match="GRADE judgement"):
        grade(res, participants=1, risk_of_bias=Judgement("awful", "why"))


def test_heterogeneity_with_a_prediction_interval_across_the_null_rates_down() -> None:
    res = _fit([-1.5, 0.4, -0.9, 0.6, -1.2], [0.02] * 5)
    assert res.I2 > 75 and res.pi_lb < 0 < res.pi_ub
    rating = grade(res, participants=5000)
    assert _domain(rating, "inconsistency").downgrade == -2  # type: ignore[attr-defined]


def test_an_interval_across_both_mid_thresholds_rates_imprecision_down_twice() -> None:
    res = _fit([-0.9, 0.9, -0.7, 0.8], [0.3] * 4)
    rating = grade(res, participants=80, rules=GradeRules(mid=0.2))
    assert _domain(rating, "imprecision").downgrade == -2  # type: ignore[attr-defined]
    assert rating.score >= 1 and rating.certainty in ("low", "very low")


def test_too_few_participants_rate_down_once_even_with_a_clear_interval() -> None:
    res = _fit([-1.2, -1.1, -1.3], [0.01, 0.01, 0.01])
    rating = grade(res, participants=60, rules=GradeRules(mid=0.2))
    imprecision = _domain(rating, "imprecision")
    assert imprecision.downgrade == -1  # type: ignore[attr-defined]
    assert "optimal information size" in imprecision.reason  # type: ignore[attr-defined]


def test_egger_runs_from_ten_studies_and_its_p_value_is_the_rule() -> None:
    rng = np.random.default_rng(7)
    vi = rng.uniform(0.01, 0.2, 12)
    yi = -0.3 - 2.0 * np.sqrt(vi) + rng.normal(0, 0.05, 12)  # small studies show more
    res = metaan.fit(yi=yi, vi=vi, method="REML", measure="SMD")
    rating = grade(res, participants=3000)
    bias = _domain(rating, "publication bias")
    assert bias.basis == "computed"  # type: ignore[attr-defined]
    p = metaan.egger_test(res).pval
    assert bias.downgrade == (-1 if p < 0.10 else 0)  # type: ignore[attr-defined]
