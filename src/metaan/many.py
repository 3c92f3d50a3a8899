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

from metaan._args import Column
from metaan.engine import SegmentFit, fit_segments
from metaan.errors import InputError
from metaan.io import spreadsheet_rows
from metaan.models import METHODS, PREDICTIONS, TESTS, check_choice, check_level, prepare_effects
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
    codes = keys.groupby(by, sort=True, dropna=True).ngroup().to_numpy()
    codes = np.where(pd.isna(codes), -1, codes).astype(np.int64)
    levels = keys.drop_duplicates().dropna().sort_values(by).reset_index(drop=True)
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
        from metaan._many_dask import fit_many_distributed, is_distributed

        if is_distributed(data):
            return fit_many_distributed(  # type: ignore[no-any-return]
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
    levels, codes = _groups(data, names)
    effects = prepare_effects(data, yi=yi, vi=vi, sei=sei, labels=labels, measure=measure)
    row_numbers = spreadsheet_rows(data)
    position = {int(r): i for i, r in enumerate(row_numbers)}
    kept = np.array([position[int(r)] for r in effects.rows if r is not None], dtype=np.int64)
    group_of = codes[kept]
    usable = group_of >= 0
    fits = fit_segments(
        effects.yi[usable],
        effects.vi[usable],
        group_of[usable],
        n_groups=len(levels),
        method=method,
        test=test,
        level=level,
        prediction=prediction,
    )
    excluded = _excluded(effects.excluded, codes, row_numbers, position, names, len(levels))
    out = _frame(levels, fits, method, test, level, prediction, effects.measure)
    out["excluded"] = pd.Series(excluded[:-1], index=out.index, dtype=object)
    out = out[[*names, *MANY_COLUMNS]]
    out.attrs["excluded"] = excluded[-1]
    return out


def _excluded(
    excluded: tuple[Exclusion, ...],
    codes: np.ndarray,
    row_numbers: np.ndarray,
    position: dict[int, int],
    names: list[str],
    count: int,
) -> list[list[dict[str, Any]]]:
    """The excluded rows of each group, and last those with no group."""
    out: list[list[dict[str, Any]]] = [[] for _ in range(count + 1)]
    for e in excluded:
        code = int(codes[position[int(e.row)]]) if e.row is not None else -1
        out[code if code >= 0 else count].append(e.to_dict())
    reason = f"the grouping value ({', '.join(names)}) is missing"
    for i in np.flatnonzero(codes < 0).tolist():
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
) -> pd.DataFrame:
    """The result table of :func:`fit_many`, the exclusions aside."""
    out = levels.copy()
    out["measure"] = measure
    out["method"], out["test"], out["level"] = method, test, level
    out["k"] = fits.k
    for name in MANY_COLUMNS[5:-3]:
        out[name] = getattr(fits, name)
    out["df"] = out["df"].astype("Int64")
    out["QE_df"] = fits.QE_df
    out["prediction"] = prediction
    out["error"] = fits.error
    return out
