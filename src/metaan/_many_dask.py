"""``fit_many`` on tables larger than one machine: a Dask DataFrame or a folder of
Parquet files.

The rows are numbered as if the partitions (or files) were one table, shuffled on
the grouping columns so that every group sits whole in one partition, and each
partition is fitted on a worker by the in-memory :func:`metaan.fit_many` (the
batched engine). Dask's scheduler runs it: the threads of this process by default,
or the cluster of an active ``distributed.Client``. Needs the ``simulate`` extra.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metaan.errors import InputError

__all__ = ["fit_many_distributed", "is_distributed"]


def is_distributed(data: object) -> bool:
    """True for a Dask DataFrame or the path of a folder (of Parquet files)."""
    if isinstance(data, str | os.PathLike):
        return Path(data).is_dir()
    return type(data).__module__.startswith("dask.") and hasattr(data, "map_partitions")


def _number_rows(part: pd.DataFrame, offsets: Sequence[int], partition_info: Any = None) -> Any:
    """Index the rows by their position in the whole table (as ``read_table`` does)."""
    start = offsets[partition_info["number"]] if partition_info else 0
    return part.set_axis(pd.RangeIndex(start, start + len(part)), axis=0)


def _fit_partition(part: pd.DataFrame, meta: pd.DataFrame, options: dict[str, Any]) -> Any:
    from metaan.many import fit_many

    if part.empty:
        return meta
    # The shuffle mixes rows; back in table order, each group's studies are summed
    # in the order the in-memory fit uses.
    out = fit_many(part.sort_index(kind="stable"), **options)
    out.attrs = {}
    return out


def fit_many_distributed(data: Any, *, by: Sequence[str], **options: Any) -> Any:
    """Fit one model per group of a Dask DataFrame, or of a folder of Parquet files.

    Parameters
    ----------
    data
        A ``dask.dataframe.DataFrame``, or a folder that ``dask.dataframe.read_parquet``
        reads as one table.
    by
        The grouping columns.
    **options
        ``yi``, ``vi``, ``sei``, ``method``, ``test``, ``level``, ``prediction`` and
        ``measure``, as :func:`metaan.fit_many` takes them.

    Returns
    -------
    dask.dataframe.DataFrame or pandas.DataFrame
        For a Dask DataFrame, a Dask DataFrame (lazy; one partition's groups per
        partition). For a folder, the computed table, sorted by the grouping columns
        like the in-memory result. Each row equals what :func:`metaan.fit_many`
        gives for that group; the ``row`` of an excluded study is its position in
        the whole table (+ 2, as a spreadsheet counts).

    Raises
    ------
    InputError
        A missing column, a row with no grouping value (fill or drop those rows:
        across partitions they could not be listed), or no Dask installed.
    """
    try:
        import dask.dataframe as dd
    except ImportError:  # pragma: no cover - the simulate extra is installed in CI
        raise InputError(
            "a Dask DataFrame or a folder of Parquet files needs Dask",
            fix="install it with: pip install 'metaan[simulate]'",
        ) from None
    from metaan.many import fit_many

    folder = isinstance(data, str | os.PathLike)
    table = _read(dd, data) if folder else data
    names = list(by)
    missing = [c for c in names if c not in table.columns]
    if missing:
        raise InputError(
            f"the grouping column {missing[0]!r} is not in the table",
            file=str(data) if folder else None,
            column=missing[0],
            fix=f"use one of {', '.join(map(str, table.columns))}",
        )
    blank = int(table[names].isna().any(axis=1).sum().compute())
    if blank:
        raise InputError(
            f"{blank} rows have no value in the grouping column(s) {', '.join(names)}",
            file=str(data) if folder else None,
            fix="fill them in or drop them before fitting",
        )
    options = {**options, "by": names}
    sample = table._meta_nonempty.iloc[:2]
    meta = fit_many(sample, **options).iloc[:0]
    meta.attrs = {}
    lengths = table.map_partitions(len).compute().tolist()
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int).tolist()
    numbered = table.map_partitions(_number_rows, offsets, meta=table._meta)
    grouped = numbered.shuffle(on=names)
    result = grouped.map_partitions(_fit_partition, meta, options, meta=meta)
    if not folder:
        return result
    out = result.compute().sort_values(names, kind="stable").reset_index(drop=True)
    for name in names:  # Dask reads text as Arrow strings; pandas' own, as in memory
        if pd.api.types.is_string_dtype(out[name]):
            out[name] = out[name].astype(str)
    out.attrs["excluded"] = []
    return out


def _read(dd: Any, folder: str | os.PathLike[str]) -> Any:
    try:
        return dd.read_parquet(str(folder))
    except (OSError, ValueError) as exc:
        raise InputError(
            f"cannot read the folder as Parquet files ({exc})",
            file=str(folder),
            fix="give a folder of .parquet files with the same columns",
        ) from None
