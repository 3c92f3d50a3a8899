"""Contrasts between the arms of each study, as R's ``pairwise()`` builds them.

A network meta-analysis is fitted to comparisons: every pair of arms of a study
gives one, so a two-arm trial gives one and a three-arm trial three. This module
turns a table with one row per arm (events and totals, or means, SDs and totals)
into that table of comparisons, with the formulas and zero-cell rule of R's
``meta::pairwise()`` (meta 8.2), which netmeta uses.

References
----------
Balduzzi, S., Rücker, G., Nikolakopoulou, A., et al. (2023). netmeta: An R package
for network meta-analysis using frequentist methods. *Journal of Statistical
Software*, 106(2), 1-40.

Cooper, H., & Hedges, L. V. (Eds.) (1994). *The Handbook of Research Synthesis*.
Russell Sage Foundation, pp. 239-253 (log odds ratio, log risk ratio, risk
difference and their variances).

Hartung, J., & Knapp, G. (2001). A refined method for the meta-analysis of
controlled clinical trials with binary outcome. *Statistics in Medicine*, 20,
3875-3889, equation (18) (the variance of the log risk ratio).

Crippa, A., & Orsini, N. (2016). Dose-response meta-analysis of differences in
means. *BMC Medical Research Methodology*, 16, 91, equation (5) (the variance of
a standardised mean difference in a multi-arm study).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeAlias, get_args

import numpy as np
import numpy.typing as npt
import pandas as pd

from metaan.effects import log_odds_ratio, mean_difference
from metaan.errors import InputError
from metaan.network._data import Comparisons
from metaan.network._table import FloatArray, InputTable, IntArray, pairs_within
from metaan.results import Exclusion

__all__ = ["ARM_MEASURES", "ArmComparisons", "ArmMeasure", "arm_comparisons", "pairwise"]

ArmMeasure: TypeAlias = Literal["OR", "RR", "RD", "MD", "SMD"]
"""Effect measures computed from arms: odds ratio, risk ratio and risk difference
from events, mean difference and standardised mean difference from means."""

ARM_MEASURES: tuple[ArmMeasure, ...] = get_args(ArmMeasure)
_BINARY = ("OR", "RR", "RD")


def check_arm_measure(measure: str, source: str | None = None) -> ArmMeasure:
    """``measure`` as an :data:`ArmMeasure` (case ignored), or an InputError."""
    canonical = str(measure).strip().upper()
    for m in ARM_MEASURES:
        if m == canonical:
            return m
    raise InputError(
        f"unknown effect measure {measure!r} for arm-level data",
        file=source,
        fix=f"choose one of {', '.join(ARM_MEASURES)}",
    )


@dataclass
class _Arms:
    """The usable arms: study and treatment labels, source rows and the numbers."""

    study: list[str]
    treatment: list[str]
    rows: list[int]
    values: dict[str, FloatArray]
    excluded: list[Exclusion] = field(default_factory=list)


def pairwise(
    data: pd.DataFrame,
    *,
    measure: str,
    study: str = "study",
    treatment: str = "treatment",
    events: str | None = None,
    n: str | None = None,
    mean: str | None = None,
    sd: str | None = None,
    incr: float = 0.5,
    allstudies: bool = False,
    source: str | None = None,
) -> pd.DataFrame:
    """Every comparison of two arms of a study, as R's ``pairwise()`` computes it.

    Parameters
    ----------
    data
        One row per arm: the study, the treatment and the arm's numbers.
    measure
        ``OR``, ``RR`` or ``RD`` (with ``events`` and ``n``), ``MD`` or ``SMD``
        (with ``mean``, ``sd`` and ``n``).
    study, treatment
        Columns of the study label and the treatment of each arm.
    events, n, mean, sd
        Columns of the arm's events, size, mean and standard deviation.
    incr
        Added to every cell of every comparison of a study in which some arm has no
        events or only events (meta's ``incr`` with ``method.incr = "only0"``).
    allstudies
        Keep comparisons with no events (OR and RR) or only events (OR) in both arms,
        with the increment, instead of leaving them out (meta's ``allstudies``).
    source
        The file ``data`` came from, named in error messages.

    Returns
    -------
    pandas.DataFrame
        One row per pair of arms of a study, pairs in the order of the arms in
        ``data`` (first with second, first with third, ..., second with third):
        ``study``, ``treat1``, ``treat2``, ``yi`` (treat1 versus treat2: a log ratio
        for OR and RR), ``vi``, ``sei``, the two arms' numbers (``events1``,
        ``n1``, ... or ``mean1``, ``sd1``, ``n1``, ...), ``incr`` (binary
        measures), ``row1`` and ``row2`` (the arms' spreadsheet rows) and
        ``exclusion_reason`` (``None``, or why ``yi`` is missing). ``attrs`` holds
        ``measure``, ``source``, ``incr``, ``allstudies`` and ``excluded``: the arms
        left out (a blank number, or no other arm left in the study), as
        :class:`~metaan.results.Exclusion`.

    Raises
    ------
    InputError
        A missing column; a blank study or treatment; a number that is not one or
        out of range (events < 0 or > n, n < 1, SD <= 0); a study with one arm; a
        treatment twice in one study. The message names the file, row and column.

    Notes
    -----
    The standardised mean difference is netmeta's: Cohen's d with the SD pooled
    over all arms of a multi-arm study, and the variance
    ``1/n1 + 1/n2 + d^2 / (2 N)`` with N the study's participants (Crippa & Orsini
    2016), with meta 8.2's rules where an arm lacks a number. It is not Hedges' g,
    which :func:`metaan.escalc` computes for two groups.
    The log risk ratio follows meta (Hartung & Knapp 2001), which differs from
    metafor's in how the increment enters.
    """
    made = arm_comparisons(
        data,
        measure=measure,
        study=study,
        treatment=treatment,
        events=events,
        n=n,
        mean=mean,
        sd=sd,
        incr=incr,
        allstudies=allstudies,
        source=source,
    )
    c = made.comparisons
    frame = pd.DataFrame({"study": c.study, "treat1": c.treat1, "treat2": c.treat2})
    frame["yi"] = c.y
    frame["vi"] = c.v
    frame["sei"] = np.sqrt(c.v)
    for name, values in made.columns.items():
        frame[name] = values
    frame["row1"] = [r[0] for r in c.rows]
    frame["row2"] = [r[1] for r in c.rows]
    frame["exclusion_reason"] = pd.Series(c.reasons, dtype=object)
    frame.attrs.update(
        {
            "measure": made.measure,
            "source": source,
            "incr": incr if made.measure in _BINARY else None,
            "allstudies": allstudies,
            "excluded": made.excluded,
        }
    )
    return frame


@dataclass(frozen=True)
class ArmComparisons:
    """What :func:`pairwise` computes, as arrays: the comparisons, the arms' numbers
    (``events1``, ``n1``, ... or ``mean1``, ``sd1``, ``n1``, ...; ``incr``), the arms
    left out and the measure."""

    comparisons: Comparisons
    columns: dict[str, FloatArray]
    excluded: tuple[Exclusion, ...]
    measure: ArmMeasure


def arm_comparisons(
    data: pd.DataFrame,
    *,
    measure: str,
    study: str,
    treatment: str,
    events: str | None,
    n: str | None,
    mean: str | None,
    sd: str | None,
    incr: float,
    allstudies: bool,
    source: str | None,
) -> ArmComparisons:
    """The work of :func:`pairwise`, without building a DataFrame."""
    table = InputTable.of(data, source)
    chosen = check_arm_measure(measure, source)
    if incr < 0 or not np.isfinite(incr):
        raise InputError(f"incr is {incr}; the increment must be >= 0", file=source)
    needed = {"events": events, "n": n} if chosen in _BINARY else {"mean": mean, "sd": sd, "n": n}
    for role, column in needed.items():
        if column is None:
            raise InputError(
                f"{chosen} from arms needs the column of {role}",
                file=source,
                fix=f"name it ({role}=COLUMN in Python, --{role} COLUMN on the command line)",
            )
    columns = {role: str(column) for role, column in needed.items()}
    arms = _read_arms(table, study, treatment, columns)
    first, second, code = _pairs(arms)
    if chosen in _BINARY:
        yi, vi, reasons, numbers = _binary(arms, first, second, code, chosen, incr, allstudies)
    else:
        yi, vi, reasons, numbers = _continuous(arms, first, second, code, chosen)
    dropped = np.array([r is not None for r in reasons], dtype=bool)
    comparisons = Comparisons(
        [arms.study[i] for i in first],
        [arms.treatment[i] for i in first],
        [arms.treatment[i] for i in second],
        np.where(dropped, np.nan, yi),
        np.where(dropped, np.nan, vi),
        [(arms.rows[i], arms.rows[j]) for i, j in zip(first, second, strict=True)],
        numbers["n1"],
        numbers["n2"],
        reasons,
    )
    return ArmComparisons(comparisons, numbers, tuple(arms.excluded), chosen)


def _read_arms(table: InputTable, study: str, treatment: str, columns: dict[str, str]) -> _Arms:
    """The arms with all their numbers; one-arm studies and repeated arms are errors."""
    studies = table.labels(study, "study")
    treatments = table.labels(treatment, "treatment", studies=studies)
    rows = [int(r) for r in table.rows]
    seen: dict[tuple[str, str], int] = {}
    count: dict[str, list[int]] = {}
    for i, (s, t) in enumerate(zip(studies, treatments, strict=True)):
        if (s, t) in seen:
            raise InputError(
                f"treatment {t!r} appears twice in study {s!r} (rows {seen[(s, t)]} and {rows[i]})",
                file=table.source,
                row=rows[i],
                column=treatment,
                study=s,
                fix="give each arm of a study its own treatment, or merge the two rows",
            )
        seen[(s, t)] = rows[i]
        count.setdefault(s, []).append(i)
    for s, members in count.items():
        if len(members) == 1:
            raise InputError(
                f"study {s!r} has one arm; a comparison needs at least two",
                file=table.source,
                row=rows[members[0]],
                column=study,
                study=s,
                fix="add the study's other arms, or remove the row",
            )
    values = {role: table.numbers(col, role, studies) for role, col in columns.items()}
    _check_ranges(table, values, columns, studies)
    if "mean" in values:
        values |= _study_sizes_and_sds(values, studies)
    return _keep_complete(studies, treatments, rows, values, columns)


def _study_sizes_and_sds(
    values: dict[str, FloatArray], studies: list[str]
) -> dict[str, FloatArray]:
    """Per arm, what netmeta's SMD takes from the whole study, before arms with a
    missing number are left out (meta 8.2's ``pairwise()``):

    - ``study_n``: the study's participants, summed over every arm with any of n, mean
      and SD (nan when such an arm lacks n: netmeta then has no SE for the study);
    - ``pooled_sd``: with more than two arms giving n, more than two a mean and more
      than two an SD, the SD pooled over the arms giving n and SD (nan otherwise: the
      arm's own SD is used).
    """
    n, mean, sd = values["n"], values["mean"], values["sd"]
    order: dict[str, int] = {}
    code = np.array([order.setdefault(s, len(order)) for s in studies], dtype=np.intp)
    k = len(order)

    def count(mask: npt.NDArray[np.bool_]) -> FloatArray:
        return np.bincount(code, weights=mask.astype(np.float64), minlength=k).astype(np.float64)

    present = ~(np.isnan(n) & np.isnan(mean) & np.isnan(sd))
    with np.errstate(invalid="ignore"):
        size = np.bincount(code, weights=np.where(present, np.nan_to_num(n), 0.0), minlength=k)
        unknown = count(present & np.isnan(n)) > 0
        both = ~np.isnan(n) & ~np.isnan(sd)
        df = np.where(both, n - 1.0, 0.0)
        var = np.bincount(
            code, weights=np.where(both, df * np.nan_to_num(sd) ** 2, 0.0), minlength=k
        )
        pooled = np.sqrt(var / np.bincount(code, weights=df, minlength=k))
        pool = (count(n > 0) > 2) & (count(~np.isnan(mean)) > 2) & (count(sd > 0) > 2)
    return {
        "study_n": np.where(unknown, np.nan, size)[code],
        "pooled_sd": np.where(pool, pooled, np.nan)[code],
    }


def _check_ranges(
    table: InputTable, values: dict[str, FloatArray], columns: dict[str, str], studies: list[str]
) -> None:
    n = values["n"]
    with np.errstate(invalid="ignore"):
        table.fail(n < 1, columns["n"], studies, "but an arm needs at least 1 participant")
        if "events" in values:
            e = values["events"]
            table.fail(e < 0, columns["events"], studies, "but events cannot be negative")
            table.fail(e > n, columns["events"], studies, "more events than participants")
        if "sd" in values:
            table.fail(
                values["sd"] <= 0, columns["sd"], studies, "but a standard deviation must be > 0"
            )


def _keep_complete(
    studies: list[str],
    treatments: list[str],
    rows: list[int],
    values: dict[str, FloatArray],
    columns: dict[str, str],
) -> _Arms:
    """Leave out arms with a blank number, then arms left alone in their study."""
    missing = np.zeros(len(studies), dtype=bool)
    excluded: list[Exclusion] = []
    reasons: dict[int, str] = {}
    for role, column in columns.items():
        blank = np.isnan(values[role]) & ~missing
        for j in np.flatnonzero(blank).tolist():
            reasons[j] = f"the arm's {role} ({column}) is missing"
        missing |= blank
    order: dict[str, int] = {}
    code = np.array([order.setdefault(s, len(order)) for s in studies], dtype=np.intp)
    alive = np.bincount(code, weights=~missing, minlength=len(order))
    alone = ~missing & (alive[code] < 2)
    for j in np.flatnonzero(alone).tolist():
        reasons[j] = "no other arm of its study has the numbers a comparison needs"
    missing |= alone
    for i in sorted(reasons):
        excluded.append(
            Exclusion(rows[i], studies[i], f"arm {treatments[i]!r} left out: {reasons[i]}")
        )
    keep = np.flatnonzero(~missing)
    return _Arms(
        [studies[i] for i in keep],
        [treatments[i] for i in keep],
        [rows[i] for i in keep],
        {role: v[keep] for role, v in values.items()},
        excluded,
    )


def _pairs(arms: _Arms) -> tuple[IntArray, IntArray, IntArray]:
    """Arm indices of every pair of arms of a study (in the order of R's loop over
    arms) and the study number of each pair, pairs in the order of the studies."""
    code = code_of_arms(arms)
    first, second = pairs_within(code)
    return first, second, code[first]


def _binary(
    arms: _Arms,
    first: IntArray,
    second: IntArray,
    code: IntArray,
    measure: ArmMeasure,
    incr: float,
    allstudies: bool,
) -> tuple[FloatArray, FloatArray, list[str | None], dict[str, FloatArray]]:
    e, n = arms.values["events"], arms.values["n"]
    # meta's pairwise(): a study with an arm of no events, or of only events, gets the
    # increment in every cell of every one of its comparisons.
    sparse_arm = (e == 0) | (e == n)
    sparse = np.bincount(code_of_arms(arms), weights=sparse_arm) > 0
    inc = np.where(sparse[code], incr, 0.0)
    e1, n1, e2, n2 = e[first], n[first], e[second], n[second]
    none = (e1 == 0) & (e2 == 0)
    every = (e1 == n1) & (e2 == n2)
    reasons: list[str | None] = [None] * first.size
    if not allstudies and measure in ("OR", "RR"):
        for i in np.flatnonzero(none | (every & (measure == "OR"))):
            what = "no events" if none[i] else "only events"
            reasons[int(i)] = (
                f"{what} in both arms: the comparison carries no information on the "
                f"{measure}; keep it with allstudies"
            )
    with np.errstate(invalid="ignore", divide="ignore"):
        if measure == "OR":
            yi, vi = log_odds_ratio(e1 + inc, n1 - e1 + inc, e2 + inc, n2 - e2 + inc, to="none")
        elif measure == "RR":
            yi = np.log((e1 + inc) / (n1 + inc)) - np.log((e2 + inc) / (n2 + inc))
            keep = np.where(every, 0.0, inc)
            vi = 1 / (e1 + keep) - 1 / (n1 + inc) + 1 / (e2 + keep) - 1 / (n2 + inc)
        else:
            yi = e1 / n1 - e2 / n2
            vi = (e1 + inc) * (n1 - e1 + inc) / (n1 + 2 * inc) ** 3 + (e2 + inc) * (
                n2 - e2 + inc
            ) / (n2 + 2 * inc) ** 3
    for i in np.flatnonzero(~np.isfinite(yi) | ~np.isfinite(vi) | (vi <= 0)):
        if reasons[int(i)] is None:
            reasons[int(i)] = f"the {measure} cannot be computed from these counts"
    # meta reports no increment for a comparison it leaves out (its incr times incl = 0).
    used = np.where([r is None for r in reasons], inc, 0.0)
    numbers = {"events1": e1, "n1": n1, "events2": e2, "n2": n2, "incr": used}
    return yi, vi, reasons, numbers


def code_of_arms(arms: _Arms) -> IntArray:
    """The study number of each arm (studies numbered by first appearance)."""
    order: dict[str, int] = {}
    return np.array([order.setdefault(s, len(order)) for s in arms.study], dtype=np.intp)


def _continuous(
    arms: _Arms, first: IntArray, second: IntArray, code: IntArray, measure: ArmMeasure
) -> tuple[FloatArray, FloatArray, list[str | None], dict[str, FloatArray]]:
    m, s, n = arms.values["mean"], arms.values["sd"], arms.values["n"]
    m1, s1, n1, m2, s2, n2 = m[first], s[first], n[first], m[second], s[second], n[second]
    if measure == "MD":
        yi, vi = mean_difference(m1, s1, n1, m2, s2, n2)
    else:
        yi, vi = _cohen_d(arms, first, second, code)
    reasons: list[str | None] = [None] * first.size
    for i in np.flatnonzero(~np.isfinite(yi) | ~np.isfinite(vi)):
        reasons[int(i)] = f"the {measure} cannot be computed from these values"
    if measure == "SMD":
        for i in np.flatnonzero(np.isnan(arms.values["study_n"][first])):
            reasons[int(i)] = (
                "an arm of the study has no size (n), so the study's total, which the "
                "SMD's variance needs, is unknown (netmeta leaves it out too)"
            )
    numbers = {"mean1": m1, "sd1": s1, "n1": n1, "mean2": m2, "sd2": s2, "n2": n2}
    return yi, vi, reasons, numbers


def _cohen_d(
    arms: _Arms, first: IntArray, second: IntArray, code: IntArray
) -> tuple[FloatArray, FloatArray]:
    """netmeta's SMD: Cohen's d, the SD pooled over every arm of a multi-arm study,
    and the variance of Crippa & Orsini (2016) with the study's total size (see
    :func:`_study_sizes_and_sds`)."""
    m, s, n = arms.values["mean"], arms.values["sd"], arms.values["n"]
    pooled = arms.values["pooled_sd"]
    sd = np.where(np.isnan(pooled), s, pooled)
    total = arms.values["study_n"][first]
    n1, n2, s1, s2 = n[first], n[second], sd[first], sd[second]
    with np.errstate(invalid="ignore", divide="ignore"):
        within = np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / (n1 + n2 - 2))
        d = (m[first] - m[second]) / within
        vi = 1 / n1 + 1 / n2 + d**2 / (2 * total)
    return d, vi
