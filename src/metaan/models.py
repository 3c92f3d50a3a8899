"""Common-effect and random-effects models for univariate meta-analysis.

``fit`` is the inverse-variance family (``EE`` and the random-effects
estimators of :mod:`metaan.estimators`); ``fit_mh`` and ``fit_peto`` pool 2x2
tables directly. All return a frozen :class:`~metaan.results.MetaResult`.

References
----------
Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package.
*Journal of Statistical Software*, 36(3), 1-48.

Hartung, J., & Knapp, G. (2001). A refined method for the meta-analysis of
controlled clinical trials with binary outcome. *Statistics in Medicine*, 20,
3875-3889. Sidik, K., & Jonkman, J. N. (2002). A simple confidence interval for
meta-analysis. *Statistics in Medicine*, 21, 3153-3159.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np

from metaan._args import (
    Column,
    StudyLabels,
    StudyNumbers,
    as_table_or_columns,
    check_choice,
    check_level,
    column_values,
    is_default,
    label_text,
    n_rows,
    study_labels,
)
from metaan.effects import table_measure
from metaan.engine import fit_one
from metaan.errors import InputError
from metaan.estimators import FloatArray
from metaan.io import Columns, spreadsheet_rows
from metaan.results import Exclusion, MetaResult

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "METHODS",
    "Method",
    "Test",
    "check_choice",
    "check_level",
    "fit",
    "prepare_effects",
]

Method = Literal["EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM"]
METHODS: tuple[str, ...] = get_args(Method)
Test = Literal["z", "knha"]
TESTS: tuple[str, ...] = get_args(Test)
Prediction = Literal["metafor", "meta"]
PREDICTIONS: tuple[str, ...] = get_args(Prediction)


@dataclass(frozen=True)
class EffectData:
    """Effect sizes ready to model: the usable studies, and the rows left out."""

    yi: FloatArray
    vi: FloatArray
    #: A tuple, or a lazy sequence that reads as one (:class:`~metaan._args.LazyTuple`).
    labels: Sequence[str]
    rows: Sequence[int | None]
    excluded: tuple[Exclusion, ...]
    measure: str | None
    #: The file the effects came from, named in error messages.
    source: str | None = None
    #: Position of each usable study among the rows given (0-based).
    positions: Sequence[int] = ()


def _spread(vi: Column, sei: Column | None) -> tuple[str, Column]:
    """Which argument holds the sampling error: ``vi`` (default), or ``sei`` when given."""
    if sei is not None:
        if not (vi is None or is_default(vi, "vi")):
            raise InputError(
                "both vi and sei are given", fix="give the sampling variances or the SEs, not both"
            )
        return "sei", sei
    if vi is None:
        raise InputError("give the sampling variances (vi) or the standard errors (sei)")
    return "vi", vi


def _check_spread(
    v: FloatArray,
    name: str,
    column: str | None,
    rows: Sequence[int | None],
    names: Sequence[str | None],
    source: str | None,
) -> None:
    bad = v <= 0.0  # NaN compares False
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "a standard error" if name == "sei" else "a sampling variance"
        raise InputError(
            f"{name} is {v[i]:g}; {what} must be > 0",
            file=source,
            row=rows[i],
            study=names[i],
            column=column or name,
            fix="check the study's standard error or variance",
        )


def _exclusions(
    table: pd.DataFrame | Columns | None,
    y: FloatArray,
    v: FloatArray,
    spread: str,
    rows: Sequence[int | None],
    names: Sequence[str | None],
) -> tuple[Exclusion, ...]:
    """The rows without an effect size or variance, with escalc's reason where it gave one."""
    missing = np.flatnonzero(~(np.isfinite(y) & np.isfinite(v))).tolist()
    reasons: list[str | None] = [None] * y.size
    if table is not None and "exclusion_reason" in table.columns:
        reasons = [label_text(r) for r in table["exclusion_reason"]]
    out = []
    for j in missing:
        which = "yi" if not np.isfinite(y[j]) else spread
        out.append(Exclusion(rows[j], names[j], reasons[j] or f"{which} is missing"))
    return tuple(out)


def prepare_effects(
    data: pd.DataFrame | Columns | None = None,
    *,
    yi: Column = "yi",
    vi: Column = "vi",
    sei: Column | None = None,
    labels: Column | None = None,
    measure: str | None = None,
    source: str | None = None,
) -> EffectData:
    """The usable studies of a table or of arrays, and the rows left out (see :func:`fit`).

    ``yi``, ``vi`` (or ``sei``) and ``labels`` are columns of ``data`` or values,
    one per row. Rows with a missing ``yi`` or ``vi`` are left out and listed in
    ``excluded`` (with the table's ``exclusion_reason``, as :func:`metaan.escalc`
    writes it, where there is one); they are never dropped silently. A sampling
    variance or SE that is not positive is an error. The measure is ``measure``,
    or the table's ``measure`` column (:func:`metaan.effects.table_measure`).
    """
    table = as_table_or_columns(data, source=source)
    spread, spread_value = _spread(vi, sei)
    n = n_rows(table, yi=yi, **{spread: spread_value}, labels=labels)
    if n == 0:
        raise InputError("there are no studies", file=source, fix="give at least one study")
    names = study_labels(table, labels, n=n, source=source)
    # Row numbers and shown labels stay lazy: no Python object per study until read.
    rows = StudyNumbers(spreadsheet_rows(table) if table is not None else range(1, n + 1))
    y, _ = column_values(table, yi, "yi", n, numeric=True, source=source, labels=names)
    v, v_column = column_values(
        table, spread_value, spread, n, numeric=True, source=source, labels=names
    )
    _check_spread(v, spread, v_column, rows, names, source)
    if spread == "sei":
        v = v * v
    kept = np.isfinite(y) & np.isfinite(v)
    measure = table_measure(table, measure, used=kept, source=source)
    shown = StudyLabels(names)
    if kept.all():  # the common case, kept fast for small fits
        return EffectData(y, v, shown, rows, (), measure, source, StudyNumbers(range(n)))
    idx = np.flatnonzero(kept)
    return EffectData(
        yi=y[idx],
        vi=v[idx],
        labels=shown.take(idx),
        rows=rows.take(idx),
        excluded=_exclusions(table, y, v, spread, rows, names),
        measure=measure,
        source=source,
        positions=StudyNumbers(idx),
    )


def fit(
    data: pd.DataFrame | Columns | None = None,
    *,
    yi: Column = "yi",
    vi: Column = "vi",
    sei: Column | None = None,
    labels: Column | None = None,
    method: str = "REML",
    test: str = "z",
    level: float = 95.0,
    measure: str | None = None,
    source: str | None = None,
    prediction: str = "metafor",
) -> MetaResult:
    """Fit a common-effect (``EE``) or random-effects model by inverse variance.

    Parameters
    ----------
    data
        A table with one row per study, such as :func:`metaan.escalc` returns, or
        None when the values are given directly.
    yi, vi, sei
        The effect sizes and their sampling variances, or standard errors
        (``sei``, instead of ``vi``): each the name of a column of ``data``
        (default ``"yi"`` and ``"vi"``) or one value per study.
    labels
        The study labels: a column of ``data`` or one label per study. By
        default the first of ``study``, ``study_id``, ``label``, ``author`` and
        ``trial`` in the table, else ``Study 1``, ``Study 2``, ...
    method
        ``EE`` (common effect) or a tau^2 estimator: ``DL``, ``HE``, ``HS``,
        ``SJ``, ``ML``, ``REML`` (default), ``EB``, ``PM``.
    test
        ``z`` (normal) or ``knha`` (Hartung-Knapp-Sidik-Jonkman: the variance of
        the estimate is scaled by the weighted residual mean square and the
        t distribution with k - 1 df is used, as metafor does).
    level
        Confidence level as a percentage (95) or a fraction (0.95); see
        :func:`metaan._args.check_level`.
    measure
        The effect measure (e.g. ``"SMD"``). By default the table's ``measure``
        column, which :func:`metaan.escalc` writes; when both are given they
        must agree.
    source
        The file the data came from, for error messages.
    prediction
        The prediction interval's convention. ``"metafor"`` (default), as metafor
        3.8's ``predict``: estimate ± crit · sqrt(tau^2 + SE^2) with the test's SE
        and critical value (normal under ``z``; the Knapp-Hartung SE and t(k-1)
        under ``knha``). ``"meta"``, as R's meta package: t(k-1) with the SE of
        the random-effects model without the Knapp-Hartung adjustment, whatever
        the test (Higgins, Thompson & Spiegelhalter 2009).

    Returns
    -------
    MetaResult
        Estimate, SE, test, CI; tau^2 with its SE and Q-profile CI (Viechtbauer
        2007); Q, I^2, H^2 (Higgins & Thompson 2002); and the prediction interval.

    Raises
    ------
    InputError
        A column that is not in the table, values of the wrong length, a text
        that is not a number, non-positive sampling variances, no studies, or
        fewer than two studies for a random-effects model.
    """
    method = check_choice(method, METHODS, "method")
    test = check_choice(test, TESTS, "test")
    level = check_level(level)
    prediction = check_choice(prediction, PREDICTIONS, "prediction")
    effects = prepare_effects(
        data, yi=yi, vi=vi, sei=sei, labels=labels, measure=measure, source=source
    )
    return fit_arrays(effects, method=method, test=test, level=level, prediction=prediction)


def fit_arrays(
    data: EffectData,
    *,
    method: str,
    test: str,
    level: float,
    fixed_tau2: tuple[float, float | None] | None = None,
    prediction: str = "metafor",
) -> MetaResult:
    """Fit the inverse-variance model to prepared effect sizes (see :func:`fit`).

    ``fixed_tau2`` is a tau^2 (with its SE) estimated elsewhere, e.g. pooled over
    subgroups: the model uses it as it is, and reports no Q-profile interval.
    """
    y, v = data.yi, data.vi
    k = y.size
    if k == 0:
        raise InputError(
            "no study has an effect size and variance to pool",
            file=data.source,
            fix="check the columns named for the measure; the excluded rows say what is missing",
        )
    random = method != "EE"
    if random and k < 2:
        raise InputError(
            f"a random-effects model needs at least 2 studies; {k} has an effect size",
            file=data.source,
            fix="use method EE to show a single study, or add studies",
        )
    if test == "knha" and k < 2:
        raise InputError("the Knapp-Hartung test needs at least 2 studies", fix="use test z")
    out = fit_one(
        y,
        v,
        method=method,
        test=test,
        level=level,
        prediction=prediction,
        fixed_tau2=fixed_tau2 if random else None,
    )
    tau2 = out["tau2"]
    w = 1.0 / (v + tau2)
    mu = out["estimate"]
    se_tau2 = out["se_tau2"] if random else None
    if se_tau2 is not None and math.isnan(se_tau2) and fixed_tau2 is not None:
        se_tau2 = fixed_tau2[1]
    return MetaResult(
        measure=data.measure,
        method=method,
        test=test,
        level=level,
        k=k,
        estimate=mu,
        se=out["se"],
        stat=out["stat"],
        df=None if test == "z" else k - 1,
        pval=out["pval"],
        ci_lb=out["ci_lb"],
        ci_ub=out["ci_ub"],
        tau2=tau2,
        se_tau2=se_tau2,
        I2=out["I2"],
        H2=out["H2"],
        QE=out["QE"],
        QE_df=k - 1,
        QEp=out["QEp"],
        pi_lb=out["pi_lb"],
        pi_ub=out["pi_ub"],
        prediction=prediction,
        qprofile=random and fixed_tau2 is None,
        excluded=data.excluded,
        yi=y,
        vi=v,
        weights=100.0 * w / float(np.add.reduce(w)),
        labels=data.labels,
        rows=data.rows,
    )
