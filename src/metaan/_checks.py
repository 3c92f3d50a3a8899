"""Checks of a study table that warn rather than refuse.

A table can be valid and still not mean what its author meant: a row pasted
twice is pooled twice, and a count of 12.5 events is almost always a typing
slip or a count imputed by some rule the reader should know about. metafor
accepts both silently; metaan accepts them too (they can be deliberate) but
says so, with the rows.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from metaan.io import spreadsheet_rows

__all__ = ["COUNT_ARGUMENTS", "table_warnings"]

#: The escalc arguments that are counts of participants or events.
COUNT_ARGUMENTS = ("ai", "bi", "ci", "di", "n1i", "n2i", "xi", "ni")

_SHOWN = 5  # rows named in one warning before "and N more"


def table_warnings(
    effects: pd.DataFrame, columns: Mapping[str, str | None], label: str | None
) -> list[str]:
    """Warnings about the rows of ``effects`` that were used (``yi`` not missing).

    Parameters
    ----------
    effects
        The table escalc returned (the input with ``yi``, ``vi`` added).
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
    used = effects["yi"].notna().to_numpy()
    rows = spreadsheet_rows(effects)
    out: list[str] = []
    out += _repeated_rows(effects, used, rows)
    if label is not None and label in effects.columns:
        out += _repeated_labels(effects[label], used, rows)
    out += _fractional_counts(effects, columns, used, rows)
    return out


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def _repeated_rows(effects: pd.DataFrame, used: np.ndarray, rows: np.ndarray) -> list[str]:
    data = effects.drop(columns=["yi", "vi", "exclusion_reason"], errors="ignore")
    repeated = data.duplicated(keep="first").to_numpy() & used
    if not repeated.any():
        return []
    first = data.duplicated(keep=False).to_numpy()
    pairs = [f"row {r}" for r in rows[repeated]]
    return [
        f"{_listing(pairs)} repeat{'s' if len(pairs) == 1 else ''} an earlier row cell for "
        f"cell and {'is' if len(pairs) == 1 else 'are'} pooled again "
        f"({int(first.sum())} rows in all); delete the copies if they were pasted twice"
    ]


def _repeated_labels(labels: pd.Series, used: np.ndarray, rows: np.ndarray) -> list[str]:
    # Hash the column as it is (read_table has stripped its cells); text only for repeats.
    named = used & labels.notna().to_numpy() & (labels.astype(str) != "").to_numpy()
    candidates = labels[named]
    repeats = set(candidates[candidates.duplicated(keep=False)].tolist())
    if not repeats:
        return []
    where: dict[str, list[int]] = {}
    for position, value in zip(np.flatnonzero(named), candidates.tolist(), strict=True):
        if value in repeats:
            where.setdefault(str(value), []).append(int(rows[position]))
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
    effects: pd.DataFrame, columns: Mapping[str, str | None], used: np.ndarray, rows: np.ndarray
) -> list[str]:
    out = []
    for argument in COUNT_ARGUMENTS:
        column = columns.get(argument)
        if column is None or column not in effects.columns:
            continue
        values = pd.to_numeric(effects[column], errors="coerce").to_numpy(dtype=float)
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
