"""GRADE certainty of evidence, computed from a meta-analysis by declared rules.

GRADE rates the certainty of a body of evidence: randomised trials start at
high, and each of five domains can rate it down one or two levels (Guyatt et
al. 2011). GRADE itself is a judgement; no reference software computes it. This
module makes the part that numbers can decide explicit and repeatable: each
domain's rating follows from the result by a rule whose thresholds are
parameters (:class:`GradeRules`), and what the numbers cannot decide
(indirectness; risk of bias where no RoB 2 judgement exists) is passed in as a
declared judgement with its reason. Every domain says which it is (``basis``:
``computed`` or ``declared``) and writes out why it rated down or not.

The rules:

- **Risk of bias**: the share of the model's weight from trials at high overall
  risk (RoB 2); down one at ``rob_serious``, two at ``rob_very_serious``.
- **Inconsistency**: I² and the prediction interval; down one when I² >=
  ``i2_serious`` and the prediction interval crosses the null, or when I² >=
  ``i2_very_serious``; down two when both I² >= ``i2_very_serious`` and the
  interval crosses the null (Guyatt et al. 2011, GRADE guidelines 7).
- **Imprecision**: the confidence interval against the null, or against the
  minimal important difference where one is given (one level per threshold the
  interval crosses, at most two), and the optimal information size: the
  participants a single trial would need to detect the MID (or, for binary
  outcomes, a relative change of ``ratio_mid``) at ``alpha`` and ``power``;
  fewer participants rate down one if the interval did not (Guyatt et al.
  2011, GRADE guidelines 6).
- **Publication bias**: Egger's regression test where k >= ``min_k``; p <
  ``egger_p`` rates down one (Sterne et al. 2011). With fewer studies it is not
  assessed.
- **Indirectness**: declared.

For binary outcomes, :func:`absolute_effect` gives the risks per 1,000 at an
assumed control risk.

References
----------
Guyatt, G. H., et al. (2011). GRADE guidelines: 6. Rating the quality of
evidence - imprecision. *Journal of Clinical Epidemiology*, 64, 1283-1293.

Guyatt, G. H., et al. (2011). GRADE guidelines: 7. Rating the quality of
evidence - inconsistency. *Journal of Clinical Epidemiology*, 64, 1294-1302.

Sterne, J. A. C., et al. (2011). Recommendations for examining and interpreting
funnel plot asymmetry in meta-analyses of randomised controlled trials. *BMJ*,
343, d4002.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from metaan._dist import norm_isf
from metaan.bias import egger_test
from metaan.errors import InputError
from metaan.results import MetaResult

__all__ = [
    "CERTAINTY",
    "AbsoluteEffect",
    "Domain",
    "GradeRating",
    "GradeRules",
    "Judgement",
    "absolute_effect",
    "grade",
    "optimal_information_size",
]

#: Certainty levels from a score of 4 (high) down to 1 (very low).
CERTAINTY = {4: "high", 3: "moderate", 2: "low", 1: "very low"}
_SEVERITY = {0: "not serious", -1: "serious", -2: "very serious"}
_RATIOS = ("OR", "RR")


@dataclass(frozen=True)
class GradeRules:
    """The thresholds of the rules (see the module docstring); each is a judgement."""

    rob_serious: float = 0.5
    rob_very_serious: float = 0.8
    i2_serious: float = 50.0
    i2_very_serious: float = 75.0
    mid: float | None = None
    ratio_mid: float = 1.25
    alpha: float = 0.05
    power: float = 0.80
    egger_p: float = 0.10
    min_k: int = 10


@dataclass(frozen=True)
class Judgement:
    """A rating declared by a reviewer: ``not serious``, ``serious`` or ``very serious``."""

    rating: str
    reason: str

    def downgrade(self) -> int:
        levels = {v: k for k, v in _SEVERITY.items()}
        if self.rating not in levels:
            raise InputError(
                f"a GRADE judgement is {self.rating!r}",
                fix="use 'not serious', 'serious' or 'very serious'",
            )
        return levels[self.rating]


@dataclass(frozen=True)
class Domain:
    """One GRADE domain: how far it rates down, and why."""

    name: str
    downgrade: int
    reason: str
    #: ``computed`` (from the numbers by the rule), ``declared`` (a reviewer's
    #: judgement) or ``not assessed``.
    basis: str

    @property
    def rating(self) -> str:
        return _SEVERITY[self.downgrade] if self.basis != "not assessed" else "not assessed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "downgrade": self.downgrade,
            "rating": self.rating,
            "reason": self.reason,
            "basis": self.basis,
        }


@dataclass(frozen=True)
class AbsoluteEffect:
    """Risks per 1,000 with and without the intervention, at an assumed control risk."""

    control_risk: float
    basis: str
    control_per_1000: float
    intervention_per_1000: float
    difference_per_1000: float
    difference_lb: float
    difference_ub: float

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class GradeRating:
    """The certainty of the evidence for one comparison and outcome."""

    domains: tuple[Domain, ...]
    start: int = 4
    participants: float = math.nan
    ois: float | None = None
    absolute: AbsoluteEffect | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def score(self) -> int:
        return max(1, self.start + sum(d.downgrade for d in self.domains))

    @property
    def certainty(self) -> str:
        return CERTAINTY[self.score]

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": CERTAINTY[self.start],
            "certainty": self.certainty,
            "score": self.score,
            "participants": self.participants,
            "optimal_information_size": self.ois,
            "domains": [d.to_dict() for d in self.domains],
            "absolute": self.absolute.to_dict() if self.absolute is not None else None,
            "notes": list(self.notes),
        }


def optimal_information_size(
    *,
    alpha: float,
    power: float,
    smd: float | None = None,
    control_risk: float | None = None,
    ratio: float | None = None,
) -> float:
    """Participants (both arms) one trial needs to detect an effect, two-sided.

    For a standardised difference ``smd``: 2 x 2 (z_a + z_b)² / smd². For a
    binary outcome, the risk ``control_risk`` against ``control_risk x ratio``:
    2 (z_a + z_b)² [p0(1 - p0) + p1(1 - p1)] / (p1 - p0)² (Guyatt et al. 2011).
    """
    z = norm_isf(alpha / 2.0) + norm_isf(1.0 - power)
    if smd is not None:
        if not smd > 0:
            raise InputError(f"the minimal important difference is {smd}; give a value > 0")
        return 2.0 * 2.0 * z**2 / smd**2
    if control_risk is None or ratio is None:
        raise InputError("the optimal information size needs an SMD, or a risk and a ratio")
    p0 = control_risk
    p1 = min(p0 * ratio, 1.0)
    if not 0 < p0 < 1 or p1 == p0:
        raise InputError(f"cannot size a trial at control risk {p0} and ratio {ratio}")
    return 2.0 * z**2 * (p0 * (1 - p0) + p1 * (1 - p1)) / (p1 - p0) ** 2


def absolute_effect(
    result: MetaResult, control_risk: float, *, basis: str = "declared"
) -> AbsoluteEffect:
    """Risks per 1,000 at ``control_risk`` from a pooled OR, RR or RD (and its CI)."""
    measure = result.measure or ""
    if not 0 <= control_risk <= 1:
        raise InputError(f"the control risk is {control_risk}; give a proportion in [0, 1]")

    def risk(x: float) -> float:
        if measure == "OR":
            odds = math.exp(x) * control_risk / (1.0 - control_risk)
            return odds / (1.0 + odds)
        if measure == "RR":
            return min(math.exp(x) * control_risk, 1.0)
        if measure == "RD":
            return min(max(control_risk + x, 0.0), 1.0)
        raise InputError(f"absolute effects need an OR, RR or RD, not {measure or 'a generic'}")

    p1, lb, ub = risk(result.estimate), risk(result.ci_lb), risk(result.ci_ub)
    return AbsoluteEffect(
        control_risk=control_risk,
        basis=basis,
        control_per_1000=1000.0 * control_risk,
        intervention_per_1000=1000.0 * p1,
        difference_per_1000=1000.0 * (p1 - control_risk),
        difference_lb=1000.0 * (lb - control_risk),
        difference_ub=1000.0 * (ub - control_risk),
    )


def _risk_of_bias(
    result: MetaResult,
    high_risk: Sequence[bool | None] | None,
    declared: Judgement | None,
    rules: GradeRules,
) -> Domain:
    name = "risk of bias"
    if high_risk is None or all(h is None for h in high_risk):
        if declared is not None:
            return Domain(name, declared.downgrade(), declared.reason, "declared")
        return Domain(
            name,
            0,
            "no RoB 2 judgements in the records and none declared: not rated down, so the "
            "certainty shown is an upper bound",
            "not assessed",
        )
    if len(high_risk) != result.k:
        raise InputError(f"{len(high_risk)} risk-of-bias flags for {result.k} studies")
    w = np.asarray(result.weights, dtype=float)
    flags = np.array([bool(h) for h in high_risk])
    share = float(w[flags].sum() / w.sum())
    down = -2 if share >= rules.rob_very_serious else -1 if share >= rules.rob_serious else 0
    unknown = sum(h is None for h in high_risk)
    reason = (
        f"{share:.0%} of the weight comes from {int(flags.sum())} of {result.k} comparisons at "
        f"high overall risk of bias (rates down at {rules.rob_serious:.0%} and "
        f"{rules.rob_very_serious:.0%})"
    )
    if unknown:
        reason += f"; {unknown} comparison{'s' if unknown != 1 else ''} without a judgement"
    return Domain(name, down, reason, "computed")


def _inconsistency(result: MetaResult, rules: GradeRules) -> Domain:
    name = "inconsistency"
    if result.k < 2:
        return Domain(name, 0, "one study: inconsistency cannot be assessed", "not assessed")
    i2 = float(result.I2) if result.I2 is not None else 0.0
    crosses = result.pi_lb < 0.0 < result.pi_ub
    if i2 >= rules.i2_very_serious and crosses:
        down = -2
    elif i2 >= rules.i2_very_serious or (i2 >= rules.i2_serious and crosses):
        down = -1
    else:
        down = 0
    reason = (
        f"I² = {i2:.0f}% (rates down at {rules.i2_serious:g}% with a prediction interval that "
        f"crosses no effect, or at {rules.i2_very_serious:g}%); the prediction interval "
        f"{'crosses' if crosses else 'does not cross'} no effect"
    )
    return Domain(name, down, reason, "computed")


def _thresholds(result: MetaResult, rules: GradeRules) -> tuple[list[float], str]:
    ratio = result.measure in _RATIOS
    if ratio:
        m = math.log(rules.ratio_mid)
        return [-m, m], f"an appreciable ratio of {rules.ratio_mid:g} or 1/{rules.ratio_mid:g}"
    if rules.mid is not None:
        return [-rules.mid, rules.mid], f"the minimal important difference ±{rules.mid:g}"
    return [0.0], "no effect"


def _imprecision(
    result: MetaResult, participants: float, ois: float | None, rules: GradeRules
) -> Domain:
    cuts, what = _thresholds(result, rules)
    crossed = sum(result.ci_lb < t < result.ci_ub for t in cuts)
    down = -min(crossed, 2)
    if len(cuts) == 1:
        parts = [f"the confidence interval {'includes' if crossed else 'excludes'} no effect"]
    else:
        how_many = {0: "neither", 1: "one", 2: "both"}[crossed]
        parts = [f"the confidence interval crosses {how_many} of the thresholds of {what}"]
    if ois is not None:
        short = participants < ois
        parts.append(
            f"{participants:.0f} participants against an optimal information size of {ois:.0f}"
        )
        if short and down == 0:
            down = -1
    else:
        parts.append("no optimal information size (no minimal important difference declared)")
    return Domain("imprecision", down, "; ".join(parts), "computed")


def _publication_bias(result: MetaResult, rules: GradeRules) -> Domain:
    name = "publication bias"
    if result.k < rules.min_k:
        return Domain(
            name,
            0,
            f"not assessed: {result.k} studies, fewer than {rules.min_k} for Egger's test",
            "not assessed",
        )
    test = egger_test(result)
    down = -1 if test.pval < rules.egger_p else 0
    reason = (
        f"Egger's test p = {test.pval:.3f} ({'below' if down else 'not below'} "
        f"{rules.egger_p:g}, the threshold of suspected small-study effects)"
    )
    return Domain(name, down, reason, "computed")


def grade(
    result: MetaResult,
    *,
    participants: float,
    high_risk: Sequence[bool | None] | None = None,
    risk_of_bias: Judgement | None = None,
    indirectness: Judgement | None = None,
    control_risk: float | None = None,
    control_risk_basis: str = "declared",
    rules: GradeRules | None = None,
) -> GradeRating:
    """Rate the certainty of the evidence of a pooled result by the rules above.

    Parameters
    ----------
    result
        A fitted random-effects (or common-effect) model of randomised trials.
    participants
        The number of participants the analysis rests on.
    high_risk
        Per study (in the order of ``result.labels``): at high overall risk of
        bias (RoB 2), not, or ``None`` where not judged. ``None`` for no RoB 2
        judgements at all; then ``risk_of_bias`` is used if declared.
    risk_of_bias, indirectness
        Declared judgements with their reasons.
    control_risk
        For OR, RR and RD: the assumed control risk, for the absolute effects and
        the optimal information size; ``control_risk_basis`` says where it came from.
    rules
        The thresholds; :class:`GradeRules` defaults otherwise.
    """
    rules = rules or GradeRules()
    binary = result.measure in (*_RATIOS, "RD")
    ois = None
    if binary and control_risk is not None and 0 < control_risk < 1:
        ois = optimal_information_size(
            alpha=rules.alpha, power=rules.power, control_risk=control_risk, ratio=rules.ratio_mid
        )
    elif result.measure == "SMD" and rules.mid is not None:
        ois = optimal_information_size(alpha=rules.alpha, power=rules.power, smd=rules.mid)
    indirect = (
        Domain("indirectness", indirectness.downgrade(), indirectness.reason, "declared")
        if indirectness is not None
        else Domain("indirectness", 0, "no judgement declared", "not assessed")
    )
    domains = (
        _risk_of_bias(result, high_risk, risk_of_bias, rules),
        _inconsistency(result, rules),
        indirect,
        _imprecision(result, participants, ois, rules),
        _publication_bias(result, rules),
    )
    absolute = (
        absolute_effect(result, control_risk, basis=control_risk_basis)
        if binary and control_risk is not None
        else None
    )
    return GradeRating(domains=domains, participants=participants, ois=ois, absolute=absolute)
