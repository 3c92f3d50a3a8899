"""Checks of a study table that warn rather than refuse.

A table can be valid and still not mean what its author meant: a row pasted
twice is pooled twice, and a count of 12.5 events is almost always a typing
slip or a count imputed by some rule the reader should know about. metafor
accepts both silently; metaan accepts them too (they can be deliberate) but
says so, with the rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from metaan.io import Columns, column_numbers, factorize, spreadsheet_rows

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["COUNT_ARGUMENTS", "table_warnings"]

#: The escalc arguments that are counts of participants or events.
COUNT_ARGUMENTS = ("ai", "bi", "ci", "di", "n1i", "n2i", "xi", "ni")

_SHOWN = 5  # rows named in one warning before "and N more"


def table_warnings(
    table: pd.DataFrame | Columns,
    effects: pd.DataFrame | Columns,
    columns: Mapping[str, str | None],
    label: str | None,
) -> list[str]:
    """Warnings about the rows of ``table`` that were used (``yi`` not missing).

    Parameters
    ----------
    table
        The studies as read (a DataFrame or :class:`~metaan.io.Columns`): the
        cells a user typed, which are what "a row pasted twice" repeats.
    effects
        What escalc returned for ``table``: the same rows with ``yi``, ``vi``,
        ``exclusion_reason`` and ``measure`` added (or replaced); its ``yi`` says
        which rows are used.
    columns
        escalc argument -> the column it was taken from (``None`` when not given).
    label
        The column of study labels (``None``: no labels to compare).

    Returns
    -------
    list of str
        One message per kind of problem: studies with the same label, rows that
        repeat another row cell for cell, counts that are not whole numbers.
    """
    cells = {str(name): np.asarray(table[name]) for name in table.columns}
    used = ~np.isnan(np.asarray(effects["yi"], dtype=np.float64))
    rows = spreadsheet_rows(effects)
    # Codes of a column's cells, made once for the rows check and the labels check.
    coded: dict[str, tuple[np.ndarray[Any, Any], list[Any]]] = {}
    if label is not None and label in cells:
        coded[label] = _codes(cells[label])
    out = _repeated_rows(cells, coded, used, rows)
    if label in coded:
        out += _repeated_labels(*coded[label], used, rows)
    out += _fractional_counts(cells, columns, used, rows)
    return out


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def _numeric_codes(values: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], list[Any]]:
    """Codes of a numeric column's cells (every NaN the same, -1) and its distinct values."""
    uniques, codes = np.unique(values, return_inverse=True, equal_nan=True)
    codes = np.asarray(codes).reshape(-1)
    nan = np.isnan(uniques.astype(np.float64))
    if nan.any():  # NaN sorts last: it is the last distinct value
        codes = np.where(codes == len(uniques) - 1, -1, codes)
    return codes, uniques[~nan].tolist()


def _codes(values: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], list[Any]]:
    """Codes of a column's cells (-1 for a missing one) and its distinct values."""
    if values.dtype.kind in "biuf":
        return _numeric_codes(values)
    return factorize(values.tolist())


def _repeated_rows(
    cells: dict[str, np.ndarray[Any, Any]],
    coded: dict[str, tuple[np.ndarray[Any, Any], list[Any]]],
    used: np.ndarray,
    rows: np.ndarray,
) -> list[str]:
    """Rows that repeat an earlier row in every cell of the table as read."""
    # One code per distinct row so far, column after column (mixed radix, renumbered
    # at once, so it stays below the number of rows); a column in which every row
    # differs, as a column of effects usually does, ends the search.
    if not cells:
        return []
    key = np.zeros(len(used), dtype=np.int64)
    for name, values in cells.items():
        codes, uniques = coded.get(name) or _codes(values)
        if len(uniques) == len(key):
            return []
        key = key * (len(uniques) + 1) + (codes + 1)
        distinct, key = np.unique(key, return_inverse=True)
        if len(distinct) == len(key):
            return []
    _, first, inverse, counts = np.unique(
        key, return_index=True, return_inverse=True, return_counts=True
    )
    earlier = first[inverse] != np.arange(len(inverse))  # a row that repeats an earlier one
    repeated = earlier & used
    if not repeated.any():
        return []
    pairs = [f"row {r}" for r in rows[repeated]]
    return [
        f"{_listing(pairs)} repeat{'s' if len(pairs) == 1 else ''} an earlier row cell for "
        f"cell and {'is' if len(pairs) == 1 else 'are'} pooled again "
        f"({int(counts[counts > 1].sum())} rows in all); delete the copies if they were "
        "pasted twice"
    ]


def _repeated_labels(
    codes: np.ndarray[Any, Any], uniques: list[Any], used: np.ndarray, rows: np.ndarray
) -> list[str]:
    if len(uniques) == len(codes):  # every row its own label: nothing repeats
        return []
    # Compare the labels as they are (read_table has stripped its cells); text only for repeats.
    blank = np.array([str(u) == "" for u in uniques] + [True], dtype=bool)  # -1 picks True
    named = used & ~blank[codes]
    if not named.any():
        return []
    counts = np.bincount(codes[named], minlength=len(uniques))
    repeats = named & (counts[np.where(named, codes, 0)] > 1)
    if not repeats.any():
        return []
    where: dict[str, list[int]] = {}
    for position in np.flatnonzero(repeats).tolist():
        where.setdefault(str(uniques[codes[position]]), []).append(int(rows[position]))
    twice = list(where)
    items = [f"{name} (rows {', '.join(map(str, where[name]))})" for name in twice[:_SHOWN]]
    if len(twice) > _SHOWN:
        items.append(f"{len(twice) - _SHOWN} more")
    labels_appear = "study labels appear" if len(twice) > 1 else "study label appears"
    return [
        f"{len(twice)} {labels_appear} more than once and "
        f"each row is pooled as a separate study: {', '.join(items)}; if these are arms of "
        "one trial sharing a control, split the control group, and give each row its own label"
    ]


def _fractional_counts(
    cells: dict[str, np.ndarray[Any, Any]],
    columns: Mapping[str, str | None],
    used: np.ndarray,
    rows: np.ndarray,
) -> list[str]:
    out = []
    for argument in COUNT_ARGUMENTS:
        column = columns.get(argument)
        if column is None or column not in cells:
            continue
        values = column_numbers(cells[column])
        fractional = used & np.isfinite(values) & (values != np.round(values))
        if fractional.any():
            items = [
                f"row {r} ({v:g})"
                for r, v in zip(rows[fractional], values[fractional], strict=True)
            ]
            out.append(
                f"column {column} ({argument}) holds counts that are not whole numbers: "
                f"{_listing(items)}; they are used as given, as metafor does; check them "
                "or round them if they were typed by mistake"
            )
    return out
