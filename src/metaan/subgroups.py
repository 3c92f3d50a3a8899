"""Subgroup analysis: a separate fit per level, and tests of subgroup differences.

:func:`fit_subgroups` fits the model to the studies of each level of a grouping
variable and tests whether the levels differ in two ways:

* the fixed-effect Q-between test: Cochran's Q of the whole set minus the sum
  of the within-level Q statistics, which is the Wald test of the subgroup
  dummies in a common-effect meta-regression (metafor's
  ``rma(yi, vi, mods = ~ factor(g), method = "EE")``);
* the mixed-effects moderator test QM: the same Wald test in a mixed-effects
  meta-regression with one residual tau^2 shared by all levels (``rma(...,
  mods = ~ factor(g), method = "REML")``).

tau^2 is estimated separately in each level by default; with
``tau2_mode="pooled"`` every level uses the residual tau^2 of the mixed-effects
model (Borenstein et al. 2009, ch. 19).

References
----------
Borenstein, M., Hedges, L. V., Higgins, J. P. T., & Rothstein, H. R. (2009).
*Introduction to Meta-Analysis*. Wiley, chapter 19.

Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package.
*Journal of Statistical Software*, 36(3), 1-48.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from metaan._args import Column, as_table, check_choice, check_level, column_values, n_rows
from metaan._base import Result
from metaan._design import Coding, level_name, ordered_levels
from metaan._format import fmt, fmt_p, format_excluded, p_equals
from metaan._json import json_number
from metaan.errors import InputError, NotEstimableError
from metaan.models import METHODS, TESTS, EffectData, fit_arrays
from metaan.regression import Design, MetaRegressionResult, build_design, fit_design
from metaan.results import Exclusion, MetaResult

__all__ = ["SubgroupLevel", "SubgroupResult", "fit_subgroups"]

TAU2_MODES: tuple[str, ...] = ("separate", "pooled")

#: The note of a level with a single study.
SINGLE_STUDY_NOTE = "a single study: shown as reported, not pooled"


@dataclass(frozen=True, eq=False, repr=False)
class SubgroupLevel(Result):
    """One level of the grouping variable and the model fitted to its studies.

    ``pooled`` is False for a level with a single study: ``fit`` then shows
    that study as reported (its effect, SE and CI; no tau^2, Q of 0), as metafor
    shows a model of one study, and ``note`` says so.
    """

    name: str
    fit: MetaResult
    pooled: bool
    note: str | None = None

    @property
    def k(self) -> int:
        return self.fit.k

    def _short(self) -> str:
        return f"{self.name} {self.fit._short()}"

    def to_dict(self) -> dict[str, Any]:
        """The fit's summary numbers, whether it is pooled and the note."""
        return {"level": self.name, **self.fit.to_dict(), "pooled": self.pooled, "note": self.note}

    def to_frame(self) -> pd.DataFrame:
        """The studies of the level, with their weights (see :meth:`MetaResult.to_frame`)."""
        return self.fit.to_frame()

    def summary(self) -> str:
        """The level's name (and note), then its fit's summary."""
        head = f"Subgroup {self.name}" + (f" ({self.note})" if self.note else "")
        return f"{head}\n{self.fit.summary()}"


@dataclass(frozen=True, eq=False, repr=False)
class SubgroupResult(Result):
    """A subgroup analysis: a fit per level and the tests of subgroup differences.

    Attributes
    ----------
    by
        The grouping variable.
    levels
        One :class:`SubgroupLevel` per level, in R's ``factor`` order.
    Q_between, Q_between_df, Q_between_p
        Fixed-effect test of subgroup differences (Q-between, chi^2).
    Q_within, Q_within_df
        Sum of the levels' common-effect Q statistics and of their df.
    common
        The common-effect meta-regression on the subgroup dummies.
    mixed
        The mixed-effects meta-regression on the subgroup dummies (same tau^2
        estimator), whose ``QM`` is the mixed-effects test of subgroup
        differences; ``None`` when it cannot be estimated (``mixed_note`` says
        why), e.g. with as many levels as studies.
    tau2_mode
        ``"separate"`` (tau^2 estimated within each level) or ``"pooled"``
        (every level uses ``tau2_pooled``, the mixed-effects model's residual tau^2).
    """

    by: str
    method: str
    test: str
    level: float
    tau2_mode: str
    k: int
    levels: tuple[SubgroupLevel, ...]
    Q_between: float | None
    Q_between_df: int | None
    Q_between_p: float | None
    Q_within: float | None
    Q_within_df: int | None
    common: MetaRegressionResult | None
    mixed: MetaRegressionResult | None
    mixed_note: str | None
    tau2_pooled: float | None
    measure: str | None = None
    excluded: tuple[Exclusion, ...] = ()
    #: Levels of the grouping variable whose every study was excluded (no fit).
    empty_levels: tuple[str, ...] = ()

    @property
    def fits(self) -> dict[str, MetaResult]:
        """The fit of each level, by level name."""
        return {lev.name: lev.fit for lev in self.levels}

    def fit_of(self, name: str) -> MetaResult:
        """The fit of the level ``name``.

        Raises
        ------
        NotEstimableError
            When every study of that level was excluded, so it has no fit.
        InputError
            When the grouping variable has no such level.
        """
        for lev in self.levels:
            if lev.name == name:
                return lev.fit
        if name in self.empty_levels:
            raise NotEstimableError(
                f"subgroup {name!r} of {self.by} has no study with an effect size "
                "(every one is excluded)"
            )
        known = ", ".join(lev.name for lev in self.levels)
        raise InputError(f"{self.by} has no level {name!r}", fix=f"use one of {known}")

    def moderator_test(self) -> MetaRegressionResult:
        """The mixed-effects test of subgroup differences: the meta-regression on
        the subgroup dummies, whose ``QM`` tests the differences.

        Raises
        ------
        NotEstimableError
            When that model cannot be estimated (as many parameters as studies,
            which metafor refuses too) or there is a single subgroup.
        """
        if self.mixed is None:
            raise NotEstimableError(self.mixed_note or "no mixed-effects test")
        return self.mixed

    @property
    def QM(self) -> float | None:
        """The mixed-effects test of subgroup differences (F under ``knha``)."""
        return None if self.mixed is None else self.mixed.QM

    @property
    def QMp(self) -> float | None:
        return None if self.mixed is None else self.mixed.QMp

    def _short(self) -> str:
        text = (
            f"by={self.by} {self.method} k={self.k} levels={len(self.levels)} tau2={self.tau2_mode}"
        )
        if self.Q_between is not None and self.Q_between_p is not None:
            text += f" Qb={self.Q_between:.4g} p={self.Q_between_p:.3g}"
        if self.mixed is not None:
            text += f" QM={self.mixed.QM:.4g} p={self.mixed.QMp:.3g}"
        return text

    def to_frame(self) -> pd.DataFrame:
        """One row per level: its fit's summary, whether it is pooled and any note."""
        records = []
        for lev in self.levels:
            f = lev.fit
            records.append(
                {
                    self.by: lev.name,
                    "k": f.k,
                    "estimate": f.estimate,
                    "se": f.se,
                    "stat": f.stat,
                    "df": f.df,
                    "pval": f.pval,
                    "ci_lb": f.ci_lb,
                    "ci_ub": f.ci_ub,
                    "tau2": f.tau2 if lev.pooled else None,
                    "I2": f.I2 if lev.pooled else None,
                    "QE": f.QE,
                    "QE_df": f.QE_df,
                    "QEp": f.QEp,
                    "pooled": lev.pooled,
                    "note": lev.note,
                }
            )
        return pd.DataFrame.from_records(records)

    def to_dict(self) -> dict[str, Any]:
        """Every number as a JSON-ready dict (NaN becomes None)."""
        mixed: dict[str, Any] | None = None
        if self.mixed is not None:
            m = self.mixed
            mixed = {
                "QM": json_number(m.QM),
                "QM_df": m.QM_df,
                "QM_df2": m.QM_df2,
                "QM_dist": "F" if m.QM_df2 is not None else "chi2",
                "QMp": json_number(m.QMp),
                "tau2": json_number(m.tau2),
                "se_tau2": json_number(m.se_tau2),
                "I2": json_number(m.I2),
                "QE": json_number(m.QE),
                "QE_df": m.QE_df,
                "QEp": json_number(m.QEp),
                "R2": json_number(m.R2),
                "coefficients": m.to_dict()["coefficients"],
            }
        return {
            "by": self.by,
            "measure": self.measure,
            "method": self.method,
            "test": self.test,
            "level": self.level,
            "tau2_mode": self.tau2_mode,
            "tau2_pooled": json_number(self.tau2_pooled),
            "k": self.k,
            "levels": {
                lev.name: {**lev.fit.to_dict(), "pooled": lev.pooled, "note": lev.note}
                for lev in self.levels
            },
            "between_fixed": {
                "Q": json_number(self.Q_between),
                "df": self.Q_between_df,
                "pval": json_number(self.Q_between_p),
            },
            "within_fixed": {"Q": json_number(self.Q_within), "df": self.Q_within_df},
            "mixed_effects_test": mixed,
            "mixed_effects_note": self.mixed_note,
            "excluded": [e.to_dict() for e in self.excluded],
        }

    def summary(self) -> str:
        """A readable summary: the fit of each level, then the tests of differences."""
        return format_subgroups(self)


def _subset(data: EffectData, idx: Sequence[int]) -> EffectData:
    ix = np.asarray(idx, dtype=np.int64)
    return EffectData(
        yi=data.yi[ix],
        vi=data.vi[ix],
        labels=tuple(data.labels[i] for i in idx),
        rows=tuple(data.rows[i] for i in idx),
        excluded=(),
        measure=data.measure,
    )


def _grouping(
    table: pd.DataFrame | None, by: Column, n: int, source: str | None
) -> tuple[str, pd.Categorical]:
    """The grouping variable's name and its values as a categorical in factor order."""
    if isinstance(by, pd.Series) and isinstance(by.dtype, pd.CategoricalDtype):
        values = by.reset_index(drop=True)  # keeps the order of its categories
        if len(values) != n:
            raise InputError(f"by has {len(values)} values but there are {n} rows")
    else:
        cells, _ = column_values(table, by, "by", n, numeric=False, source=source)
        values = pd.Series(list(cells))
    name = by if isinstance(by, str) else getattr(by, "name", None)
    order = ordered_levels(values)
    text = [None if pd.isna(x) else level_name(x) for x in values.astype(object)]
    return str(name) if name is not None else "group", pd.Categorical(text, categories=order)


def _difference_tests(
    design: Design, by: str, method: str, test: str, level: float
) -> tuple[MetaRegressionResult | None, MetaRegressionResult | None, str | None]:
    """The common-effect (Q-between) and mixed-effects (QM) meta-regressions on the
    subgroup dummies, and why the mixed-effects one is missing, if it is."""
    level_names = design.levels[0][1]
    if len(level_names) < 2:
        return None, None, "a single subgroup: there are no differences to test"
    effects = design.data
    treatment = Design(
        data=effects,
        X=np.column_stack([np.ones(effects.yi.size), design.X[:, 1:]]),
        coding=Coding((by,), (level_names,), intercept=True),
    )
    common = fit_design(treatment, method="EE", test="z", level=level)
    try:
        return common, fit_design(treatment, method=method, test=test, level=level), None
    except NotEstimableError as exc:
        note = f"the mixed-effects test of subgroup differences cannot be estimated: {exc}"
        return common, None, note


def _pooled_tau2(
    mixed: MetaRegressionResult | None, note: str | None, by: str
) -> tuple[float, float | None]:
    """The residual tau^2 (with its SE) every level shares under ``tau2_mode="pooled"``."""
    if mixed is None:
        raise NotEstimableError(f"tau^2 cannot be pooled across the subgroups of {by}: {note}")
    return mixed.tau2, mixed.se_tau2


def _level_fits(
    design: Design,
    method: str,
    test: str,
    level: float,
    pooled: tuple[float, float | None] | None,
) -> list[SubgroupLevel]:
    """The fit of each level: pooled (with the shared tau^2 when there is one), or
    a single study as reported."""
    member = np.argmax(design.X, axis=1)
    fitted: list[SubgroupLevel] = []
    for j, name in enumerate(design.levels[0][1]):
        idx = np.flatnonzero(member == j).tolist()
        sub = _subset(design.data, idx)
        if len(idx) == 1:
            one = fit_arrays(sub, method="EE", test="z", level=level)
            fitted.append(SubgroupLevel(name, one, pooled=False, note=SINGLE_STUDY_NOTE))
            continue
        res = fit_arrays(sub, method=method, test=test, level=level, fixed_tau2=pooled)
        fitted.append(SubgroupLevel(name, res, pooled=True))
    return fitted


def fit_subgroups(
    data: pd.DataFrame | None = None,
    *,
    by: Column,
    yi: Column = "yi",
    vi: Column = "vi",
    sei: Column | None = None,
    labels: Column | None = None,
    method: str = "REML",
    test: str = "z",
    level: float = 95.0,
    tau2_mode: str = "separate",
    measure: str | None = None,
    source: str | None = None,
) -> SubgroupResult:
    """Subgroup analysis: a fit per level and the tests for subgroup differences.

    Parameters
    ----------
    data, yi, vi, sei, labels, measure, source
        The studies, as for :func:`metaan.fit`: a table and its columns, or the
        values.
    by
        The grouping variable: a column of ``data``, or the group of each study.
        Levels are ordered as R's ``factor`` orders them (sorted; numerically
        for numbers; a pandas categorical keeps its order); the first is the
        reference of the dummies of the moderator tests.
    method
        ``EE`` or a tau^2 estimator (default ``REML``), for the fits of the
        levels and the mixed-effects test.
    test
        ``z`` or ``knha`` (then the mixed-effects test is an F test).
    level
        Confidence level as a percentage (95) or a fraction (0.95).
    tau2_mode
        ``"separate"`` (default): tau^2 is estimated within each level.
        ``"pooled"``: every level uses the residual tau^2 of the mixed-effects
        model with the subgroup dummies (refused when that model cannot be
        estimated). (Named so as not to be taken for metafor's ``tau2=``, which
        fixes tau^2 at a value.)

    Returns
    -------
    SubgroupResult
        A :class:`~metaan.results.MetaResult` per level (a level with a single
        study is shown as reported, not pooled, with a note); the fixed-effect
        Q-between test; the mixed-effects moderator test QM with the residual
        tau^2 (``mixed``; ``None`` with a note when the model has as many
        parameters as studies, which metafor refuses).

    Raises
    ------
    InputError
        A grouping column that does not exist, bad effect sizes. (A study with no
        group is not an error: it is left out and listed in ``excluded``.)
    NotEstimableError
        ``tau2_mode="pooled"`` when the mixed-effects model cannot be estimated.
    """
    method = check_choice(method, METHODS, "method")
    test = check_choice(test, TESTS, "test")
    level = check_level(level)
    tau2_mode = check_choice(tau2_mode, TAU2_MODES, "tau2_mode")
    table = as_table(data, source=source)
    n = len(table) if table is not None else n_rows(None, yi=yi)
    name, cat = _grouping(table, by, n, source)
    design = build_design(
        table, yi=yi, vi=vi, sei=sei, mods=pd.DataFrame({name: cat}), intercept=False,
        labels=labels, measure=measure, source=source, role="subgroup",
    )  # fmt: skip
    common, mixed, mixed_note = _difference_tests(design, name, method, test, level)
    pooled = None
    if tau2_mode == "pooled" and method != "EE" and len(design.levels[0][1]) >= 2:
        pooled = _pooled_tau2(mixed, mixed_note, name)
    fitted = _level_fits(design, method, test, level, pooled)
    tau2_pooled = None if pooled is None else pooled[0]
    if tau2_mode == "pooled" and method != "EE" and len(fitted) == 1:
        tau2_pooled = fitted[0].fit.tau2  # one subgroup: its own tau^2 is the pooled one
    effects = design.data
    return SubgroupResult(
        by=name,
        method=method,
        test=test,
        level=level,
        tau2_mode=tau2_mode,
        k=int(effects.yi.size),
        levels=tuple(fitted),
        Q_between=None if common is None else common.QM,
        Q_between_df=None if common is None else common.QM_df,
        Q_between_p=None if common is None else common.QMp,
        Q_within=None if common is None else common.QE,
        Q_within_df=None if common is None else common.QE_df,
        common=common,
        mixed=mixed,
        mixed_note=mixed_note,
        tau2_pooled=tau2_pooled,
        measure=effects.measure,
        excluded=effects.excluded,
        empty_levels=tuple(c for c in cat.categories if c not in design.levels[0][1]),
    )


def format_subgroups(res: SubgroupResult) -> str:
    """The subgroup analysis as a person reads it."""
    mode = "pooled across subgroups" if res.tau2_mode == "pooled" else "estimated per subgroup"
    head = f"Subgroup analysis by {res.by} ({res.method}"
    head += f"; tau^2 {mode})" if res.method != "EE" else ")"
    lines = [head, f"k = {res.k}" + (f"; measure: {res.measure}" if res.measure else ""), ""]
    width = max(8, len(res.by), *(len(lev.name) for lev in res.levels))
    stat = "t" if any(lev.fit.df is not None for lev in res.levels) else "z"
    lines.append(
        f"{res.by:<{width}} {'k':>4} {'estimate':>10} {'se':>8} {stat:>8} {'p':>8} "
        f"{'ci.lb':>9} {'ci.ub':>9} {'tau2':>8} {'I2':>7}"
    )
    for lev in res.levels:
        f = lev.fit
        tau2 = fmt(f.tau2) if lev.pooled and res.method != "EE" else ""
        i2 = fmt(f.I2, 1) if lev.pooled else ""
        line = (
            f"{lev.name:<{width}} {f.k:>4} {fmt(f.estimate):>10} {fmt(f.se):>8} "
            f"{fmt(f.stat, 3):>8} {fmt_p(f.pval):>8} {fmt(f.ci_lb):>9} {fmt(f.ci_ub):>9} "
            f"{tau2:>8} {i2:>7}"
        )
        lines.append(line.rstrip() + (f"  ({lev.note})" if lev.note else ""))
    lines.append("")
    lines.append("Test for subgroup differences:")
    if res.Q_between is not None:
        lines.append(
            f"  fixed effect (Q-between): Q({res.Q_between_df}) = {fmt(res.Q_between)}, "
            f"{p_equals(res.Q_between_p)}"
        )
    if res.mixed is not None:
        m = res.mixed
        qm = f"F({m.QM_df}, {m.QM_df2})" if m.QM_df2 is not None else f"QM({m.QM_df})"
        lines.append(
            f"  mixed effects ({m.method}): {qm} = {fmt(m.QM)}, {p_equals(m.QMp)}"
            + (f"; residual tau^2 = {fmt(m.tau2)}" if m.method != "EE" else "")
        )
    if res.mixed_note:
        lines.append(f"  {res.mixed_note}")
    if res.empty_levels:
        lines.append("")
        lines.append(
            "Subgroups with no usable study (every study excluded): " + ", ".join(res.empty_levels)
        )
    lines += format_excluded(res.excluded)
    return "\n".join(lines)
