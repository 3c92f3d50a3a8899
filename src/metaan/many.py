"""Many meta-analyses at once: one intercept-only model per group of a table.

:func:`fit_many` is what a simulation study or a reanalysis of many outcomes
needs: the table is split by one or more columns and every group is fitted by
the engine in one batch (:func:`metaan.engine.fit_segments`), so 10^5 analyses
cost about as much as a single fit of 10^6 studies.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from metaan._args import Column, column_values
from metaan._gc import collector_paused
from metaan.engine import SegmentFit, fit_segments
from metaan.errors import InputError
from metaan.io import spreadsheet_rows
from metaan.models import (
    METHODS,
    PREDICTIONS,
    TESTS,
    EffectData,
    check_choice,
    check_level,
    prepare_effects,
)
from metaan.results import SUMMARY_FIELDS, Exclusion

__all__ = ["MANY_COLUMNS", "fit_many"]

#: The columns of :func:`fit_many` after the grouping columns: the fields of
#: ``metaan fit --format json`` (each interval as two columns), then ``excluded``
#: (the rows of the group left out, with their reasons) and ``error`` (why the
#: group could not be fitted, else empty).
MANY_COLUMNS: tuple[str, ...] = (
    *(
        name
        for field in SUMMARY_FIELDS
        for name in ((f"{field}_lb", f"{field}_ub") if field.endswith("_ci") else (field,))
    ),
    "excluded",
    "error",
)


def _groups(table: pd.DataFrame, by: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """The distinct groups (sorted, as pandas sorts them) and each row's group code
    (-1 for a row with a missing grouping value)."""
    for name in by:
        if name not in table.columns:
            raise InputError(
                f"the grouping column {name!r} is not in the table",
                column=name,
                fix=f"use one of {', '.join(map(str, table.columns))}",
            )
    keys = table[by].reset_index(drop=True)
    codes = keys.groupby(by, sort=True, dropna=True, observed=True).ngroup().to_numpy()
    codes = np.where(pd.isna(codes), -1, codes).astype(np.int64)
    # Each group's values from its first row, in code order (the sorted order).
    seen, first = np.unique(codes, return_index=True)
    levels = keys.iloc[first[seen >= 0]].reset_index(drop=True)
    return levels, codes


def fit_many(
    data: pd.DataFrame | str | os.PathLike[str] | Any,
    *,
    by: str | Sequence[str],
    yi: Column = "yi",
    vi: Column = "vi",
    sei: Column | None = None,
    labels: Column | None = None,
    method: str = "REML",
    test: str = "z",
    level: float = 95.0,
    prediction: str = "metafor",
    measure: str | None = None,
) -> pd.DataFrame:
    """Fit one intercept-only model per group of a table, all groups at once.

    Parameters
    ----------
    data
        A table with one row per study: a pandas DataFrame, or for tables larger
        than one machine a Dask DataFrame or the path of a folder of Parquet
        files. Those are shuffled so that each group sits in one partition, and
        fitted partition by partition on Dask's workers; a Dask DataFrame gives
        a Dask DataFrame back (lazy), a folder a pandas DataFrame.
    by
        The grouping column, or several.
    yi, vi, sei, labels
        The effect sizes and their sampling variances (or standard errors,
        ``sei``) and the study labels, as for :func:`metaan.fit`: columns of
        ``data`` or one value per row.
    method, test, level, prediction
        As for :func:`metaan.fit`.
    measure
        The effect measure, copied into every row (default: the table's own).

    Returns
    -------
    pandas.DataFrame
        One row per group: the grouping columns, then :data:`MANY_COLUMNS`. Each
        row equals :func:`metaan.fit` on the group's rows (to about 1e-13
        relative). A group that cannot be fitted (one study under a random-effects
        model, or no usable study) has NaN numbers and says why in ``error``;
        the other groups are fitted all the same. Rows with a missing grouping
        value are listed in ``attrs["excluded"]``.

    Examples
    --------
    >>> import pandas as pd, metaan
    >>> table = pd.DataFrame({"outcome": ["a", "a", "a", "b", "b"],
    ...                       "yi": [0.1, 0.3, 0.2, -0.4, -0.1],
    ...                       "vi": [0.02, 0.03, 0.05, 0.04, 0.02]})
    >>> metaan.fit_many(table, by="outcome", method="DL")[["outcome", "k", "estimate"]]
      outcome  k  estimate
    0       a  3  0.176316
    1       b  2 -0.200000
    """
    method = check_choice(method, METHODS, "method")
    test = check_choice(test, TESTS, "test")
    level = check_level(level)
    prediction = check_choice(prediction, PREDICTIONS, "prediction")
    names = [by] if isinstance(by, str) else [str(b) for b in by]
    if not isinstance(data, pd.DataFrame):
        return _elsewhere(data, names, yi, vi, sei, measure, method, test, level, prediction)  # type: ignore[no-any-return]
    levels, codes = _groups(data, names)
    y, v, clean, effects = _effects(data, yi, vi, sei, labels, measure)
    fitted = clean & (codes >= 0)
    fits = fit_segments(
        y[fitted],
        v[fitted],
        codes[fitted],
        n_groups=len(levels),
        method=method,
        test=test,
        level=level,
        prediction=prediction,
    )
    row_numbers = spreadsheet_rows(data)
    excluded = _excluded(effects.excluded, codes, row_numbers, names, len(levels))
    out = _frame(levels, fits, method, test, level, prediction, effects.measure, excluded[:-1])
    out.attrs["excluded"] = excluded[-1]
    return out


def _elsewhere(
    data: Any,
    names: list[str],
    yi: Column,
    vi: Column,
    sei: Column | None,
    measure: str | None,
    method: str,
    test: str,
    level: float,
    prediction: str,
) -> Any:
    """:func:`fit_many` on a table that is not a pandas DataFrame: a Dask DataFrame or
    a folder of Parquet files is fitted partition by partition; anything else is an
    error."""
    from metaan._many_dask import fit_many_distributed, is_distributed

    if is_distributed(data):
        return fit_many_distributed(
            data,
            by=names,
            yi=yi,
            vi=vi,
            sei=sei,
            measure=measure,
            method=method,
            test=test,
            level=level,
            prediction=prediction,
        )
    raise InputError(
        "fit_many needs a table",
        fix="pass a DataFrame, a Dask DataFrame or a folder of Parquet files",
    )


def _effects(
    data: pd.DataFrame,
    yi: Column,
    vi: Column,
    sei: Column | None,
    labels: Column | None,
    measure: str | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, EffectData]:
    """Effect sizes and sampling variances of every row, which rows are usable, and
    :func:`~metaan.models.prepare_effects` of the rows that are not.

    The usable rows (a number in yi, a positive finite number in vi or sei) are
    read as whole columns, with no Python object per row. The others go through
    ``prepare_effects``, which says why each is left out, or raises the error
    for a value that cannot be used; so does the first row, for the measure.
    """
    n = len(data)
    spread, value = ("sei", sei) if sei is not None else ("vi", vi)
    try:
        y, _ = column_values(data, yi, "yi", n, numeric=True)
        v, _ = column_values(data, value, spread, n, numeric=True)
    except InputError:  # the full message (with the study's label) comes from prepare_effects
        prepare_effects(data, yi=yi, vi=vi, sei=sei, labels=labels, measure=measure)
        raise
    with np.errstate(invalid="ignore"):
        clean = np.isfinite(y) & np.isfinite(v) & (v > 0.0)
    if spread == "sei":
        v = v * v
    judged = np.flatnonzero(~clean)
    if judged.size == 0 or judged[0] != 0:
        judged = np.concatenate([[0], judged]).astype(np.int64)
    # Rows keep their spreadsheet numbers in the subset (the index carries them).
    subset = data.set_axis(spreadsheet_rows(data) - 2).iloc[judged]

    def part(arg: Column | None) -> Column | None:
        if arg is None or isinstance(arg, str) or np.ndim(arg) == 0:
            return arg
        return np.asarray(arg, dtype=object)[judged]

    effects = prepare_effects(
        subset, yi=part(yi), vi=part(vi), sei=part(sei), labels=part(labels), measure=measure
    )
    return y, v, clean, effects


def _excluded(
    excluded: tuple[Exclusion, ...],
    codes: np.ndarray,
    row_numbers: np.ndarray,
    names: list[str],
    count: int,
) -> list[list[dict[str, Any]]]:
    """The excluded rows of each group, and last those with no group.

    One list per group, made with the garbage collector paused: the lists hold
    no cycles, and 10^5 new containers would otherwise set off collections that
    walk every object of the process (ten times the cost of the lists).
    """
    with collector_paused():
        out: list[list[dict[str, Any]]] = [[] for _ in range(count + 1)]
    missing_group = np.flatnonzero(codes < 0)
    if excluded:  # each excluded row's position in the table, found by its row number
        order = np.argsort(row_numbers, kind="stable")
        wanted = np.array([-1 if e.row is None else int(e.row) for e in excluded])
        at = order[np.minimum(np.searchsorted(row_numbers[order], wanted), order.size - 1)]
        group = np.where(wanted >= 0, codes[at], -1).tolist()
        for e, code in zip(excluded, group, strict=True):
            out[code if code >= 0 else count].append(e.to_dict())
    reason = f"the grouping value ({', '.join(names)}) is missing"
    for i in missing_group.tolist():
        out[count].append(Exclusion(int(row_numbers[i]), None, reason).to_dict())
    return out


def _frame(
    levels: pd.DataFrame,
    fits: SegmentFit,
    method: str,
    test: str,
    level: float,
    prediction: str,
    measure: str | None,
    excluded: list[list[dict[str, Any]]],
) -> pd.DataFrame:
    """The result table of :func:`fit_many`, built in one piece (a column at a time
    into a DataFrame copies its blocks again and again)."""
    count = len(levels)
    columns: dict[str, Any] = {name: levels[name].to_numpy() for name in levels.columns}
    columns.update(measure=measure, method=method, test=test, level=level, k=fits.k)
    for name in MANY_COLUMNS[5:-3]:
        columns[name] = getattr(fits, name)
    columns["df"] = pd.Series(fits.df).astype("Int64").array
    columns["QE_df"] = fits.QE_df
    columns["prediction"] = prediction
    columns["excluded"], columns["error"] = excluded, fits.error.astype(object)
    out = pd.DataFrame(columns, index=pd.RangeIndex(count))
    for name in levels.columns:  # the grouping columns keep their dtypes
        out[name] = levels[name].array
    return out
