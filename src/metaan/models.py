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
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from metaan.engine import fit_one
from metaan.errors import InputError
from metaan.estimators import FloatArray
from metaan.io import spreadsheet_rows
from metaan.results import Exclusion, MetaResult

__all__ = ["METHODS", "Method", "Test", "fit", "prepare_effects"]

Method = Literal["EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM"]
METHODS: tuple[str, ...] = get_args(Method)
Test = Literal["z", "knha"]
TESTS: tuple[str, ...] = get_args(Test)
Prediction = Literal["metafor", "meta"]
PREDICTIONS: tuple[str, ...] = get_args(Prediction)

_LABEL_COLUMNS = ("study", "study_id", "label", "author", "trial")


def check_level(level: float) -> float:
    """Return a confidence level in percent, accepting 0.95 or 95."""
    level = float(level)
    if 0.0 < level < 1.0:
        level *= 100.0
    if not 0.0 < level < 100.0:
        raise InputError(
            f"level is {level}; a confidence level must be between 0 and 100 (percent)",
            fix="use e.g. 95 or 0.95",
        )
    return level


def check_choice(value: str, allowed: Sequence[str], what: str) -> str:
    """Return ``value`` if it is one of ``allowed`` (case-insensitive for methods)."""
    for option in allowed:
        if value == option or value.upper() == option.upper():
            return option
    raise InputError(f"{what} is {value!r}", fix=f"choose one of {', '.join(allowed)}")


@dataclass(frozen=True)
class EffectData:
    """Effect sizes ready to model: the usable studies, and the rows left out."""

    yi: FloatArray
    vi: FloatArray
    labels: tuple[str, ...]
    rows: tuple[int | None, ...]
    excluded: tuple[Exclusion, ...]
    measure: str | None
    #: The file the effects came from, named in error messages.
    source: str | None = None


def _as_float_array(values: Any, name: str) -> FloatArray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} contains a value that is not a number", column=name) from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, not of shape {arr.shape}", column=name)
    return arr


def _label_column(table: pd.DataFrame, label: str | None) -> str | None:
    if label is not None:
        if label not in table.columns:
            raise InputError(
                f"the label column {label!r} is not in the table",
                column=label,
                fix=f"use one of {', '.join(map(str, table.columns))}",
            )
        return label
    for name in _LABEL_COLUMNS:
        if name in table.columns:
            return name
    return None


def _numeric_column(
    values: pd.Series,
    name: str,
    rows: Sequence[int | None],
    studies: Sequence[str | None],
    source: str | None,
) -> FloatArray:
    """A table column as floats (blank cells NaN); text that is not a number is an error."""
    numbers = pd.to_numeric(values, errors="coerce")
    text = values.notna() & numbers.isna()
    if text.any():
        i = int(np.flatnonzero(text.to_numpy())[0])
        raise InputError(
            f"{name} is {values.iloc[i]!r}, which is not a number",
            file=source,
            row=rows[i],
            study=studies[i],
            column=name,
            fix="write a number, or leave the cell blank if the value is missing",
        )
    return _as_float_array(numbers, name)


def prepare_effects(
    yi: Any,
    vi: Any = None,
    *,
    sei: Any = None,
    labels: Sequence[str] | None = None,
    label: str | None = None,
    measure: str | None = None,
    source: str | None = None,
) -> EffectData:
    """Turn array-likes or an effect-size table into arrays of usable studies.

    A table is a DataFrame with ``yi`` and ``vi`` (or ``sei``) columns, such as
    :func:`metaan.escalc` returns; its ``exclusion_reason`` column, if present,
    says why a row has no effect size. Rows with a missing ``yi`` or ``vi`` are
    left out and listed in ``excluded``; they are never dropped silently. A
    sampling variance that is not positive is an error.
    """
    rows: list[int | None]
    reasons: list[str | None]
    if isinstance(yi, pd.DataFrame):
        table = yi
        if "yi" not in table.columns:
            raise InputError(
                "the table has no yi column",
                file=source,
                column="yi",
                fix="compute effect sizes first (metaan.escalc) or pass yi and vi arrays",
            )
        if "vi" in table.columns:
            var_name, var_values = "vi", table["vi"]
        elif "sei" in table.columns:
            var_name, var_values = "sei", table["sei"]
        else:
            raise InputError(
                "the table has neither a vi nor a sei column",
                file=source,
                column="vi",
                fix="add sampling variances (vi) or standard errors (sei)",
            )
        if label is None and table.attrs.get("label") in table.columns:
            label = str(table.attrs["label"])
        if source is None and table.attrs.get("source"):
            source = str(table.attrs["source"])
        col = _label_column(table, label)
        names = [str(s) for s in table[col]] if col is not None else [None] * len(table)
        rows = [int(r) for r in spreadsheet_rows(table)]
        y = _numeric_column(table["yi"], "yi", rows, names, source)
        v = _numeric_column(var_values, var_name, rows, names, source)
        label_list = [n if n is not None else f"Study {i + 1}" for i, n in enumerate(names)]
        if "exclusion_reason" in table.columns:
            reasons = [
                None if (r is None or (isinstance(r, float) and math.isnan(r))) else str(r)
                for r in table["exclusion_reason"]
            ]
        else:
            reasons = [None] * len(table)
        study_names: list[str | None] = list(names)
        if measure is None:
            measure = table.attrs.get("measure")
    else:
        y = _as_float_array(yi, "yi")
        if vi is None and sei is None:
            raise InputError("give the sampling variances vi or the standard errors sei")
        if vi is not None and sei is not None:
            raise InputError("give either vi or sei, not both")
        v = _as_float_array(vi, "vi") if vi is not None else _as_float_array(sei, "sei")
        var_name = "vi" if vi is not None else "sei"
        if v.size != y.size:
            raise InputError(f"yi has {y.size} values but {var_name} has {v.size}")
        if labels is not None:
            if len(labels) != y.size:
                raise InputError(f"yi has {y.size} values but labels has {len(labels)}")
            label_list = [str(s) for s in labels]
            study_names = list(label_list)
        else:
            label_list = [f"Study {i + 1}" for i in range(y.size)]
            study_names = [None] * y.size
        rows = [i + 1 for i in range(y.size)]
        reasons = [None] * y.size

    if y.size == 0:
        raise InputError("there are no studies", file=source, fix="give at least one study")

    bad_v = np.isfinite(v) & (v <= 0.0)
    if bad_v.any():
        i = int(np.flatnonzero(bad_v)[0])
        what = "a standard error" if var_name == "sei" else "a sampling variance"
        raise InputError(
            f"{var_name} is {v[i]:g}; {what} must be > 0",
            file=source,
            row=rows[i],
            study=study_names[i],
            column=var_name,
            fix="check the study's standard error or variance",
        )
    if var_name == "sei":
        v = v * v
    missing = ~(np.isfinite(y) & np.isfinite(v))
    excluded: list[Exclusion] = []
    labels_kept, rows_kept = tuple(label_list), tuple(rows)
    if missing.any():
        for j in np.flatnonzero(missing).tolist():
            reason = reasons[j]
            if reason is None:
                which = "yi" if not np.isfinite(y[j]) else var_name
                reason = f"{which} is missing"
            excluded.append(Exclusion(rows[j], study_names[j], reason))
        kept = np.flatnonzero(~missing).tolist()
        y, v = y[kept], v[kept]
        labels_kept = tuple(label_list[i] for i in kept)
        rows_kept = tuple(rows[i] for i in kept)
    return EffectData(
        yi=y,
        vi=v,
        labels=labels_kept,
        rows=rows_kept,
        excluded=tuple(excluded),
        measure=measure,
        source=source,
    )


def fit(
    yi: Any,
    vi: Any = None,
    *,
    sei: Any = None,
    method: str = "REML",
    test: str = "z",
    level: float = 95.0,
    measure: str | None = None,
    labels: Sequence[str] | None = None,
    label: str | None = None,
    source: str | None = None,
    prediction: str = "metafor",
) -> MetaResult:
    """Fit a common-effect (``EE``) or random-effects model by inverse variance.

    Parameters
    ----------
    yi
        Effect sizes (array-like), or an effect-size table with ``yi`` and ``vi``
        (or ``sei``) columns, as returned by :func:`metaan.escalc`.
    vi, sei
        Sampling variances or standard errors, when ``yi`` is an array.
    method
        ``EE`` (common effect) or a tau^2 estimator: ``DL``, ``HE``, ``HS``,
        ``SJ``, ``ML``, ``REML`` (default), ``EB``, ``PM``.
    test
        ``z`` (normal) or ``knha`` (Hartung-Knapp-Sidik-Jonkman: the variance of
        the estimate is scaled by the weighted residual mean square and the
        t distribution with k - 1 df is used, as metafor does).
    level
        Confidence level in percent (95) or as a fraction (0.95).
    measure
        The effect measure, carried through to the result (e.g. ``"SMD"``).
    labels, label
        Study labels for arrays, or the label column of a table.
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
        Non-positive sampling variances, no studies, or fewer than two studies
        for a random-effects model.
    """
    method = check_choice(method, METHODS, "method")
    test = check_choice(test, TESTS, "test")
    level = check_level(level)
    prediction = check_choice(prediction, PREDICTIONS, "prediction")
    data = prepare_effects(
        yi, vi, sei=sei, labels=labels, label=label, measure=measure, source=source
    )
    return fit_arrays(data, method=method, test=test, level=level, prediction=prediction)


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
