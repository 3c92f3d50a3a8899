"""Checking the study-aligned extras a plot is given (columns, RoB, years, counts)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from metaan.errors import InputError
from metaan.estimators import FloatArray
from metaan.plots._table import Column
from metaan.rob import DOMAINS, rob_level

__all__ = [
    "ROB_DOMAINS",
    "StudyColumns",
    "as_columns",
    "cell_text",
    "extra_columns",
    "favours_text",
    "rob_columns",
    "study_numbers",
]

#: A table of values per study: a DataFrame, or a mapping of column name to values.
StudyColumns = pd.DataFrame | Mapping[str, Sequence[Any]]

#: RoB 2 domains in the order they are drawn, and the column names that mean them.
ROB_DOMAINS = DOMAINS


def as_columns(values: StudyColumns, k: int, what: str) -> dict[str, list[Any]]:
    """A study-aligned table as ``{column: values}``, checking there are ``k`` values each."""
    if isinstance(values, pd.DataFrame):
        table = {str(c): list(values[c]) for c in values.columns}
    elif isinstance(values, Mapping):
        table = {}
        for name, col in values.items():
            if isinstance(col, str | bytes):
                raise InputError(
                    f"{what} column {name!r} is a single string, not one value per study",
                    column=str(name),
                    fix="give a list with one value per study",
                )
            table[str(name)] = list(col)
    else:
        raise InputError(
            f"{what} must be a DataFrame or a mapping of column name to values",
            fix="pass e.g. {'n': [...], 'year': [...]} with one value per study",
        )
    for name, col in table.items():
        if len(col) != k:
            raise InputError(
                f"{what} column {name!r} has {len(col)} values but the result has {k} studies",
                column=name,
                fix="give one value per study, in the order of result.labels",
            )
    return table


def cell_text(value: Any) -> str:
    """A table cell as text: blank for missing, integers without ``.0``."""
    if value is None:
        return ""
    if isinstance(value, float | np.floating):
        x = float(value)
        if math.isnan(x):
            return ""
        if x.is_integer() and abs(x) < 1e15:
            return str(int(x))
        return f"{x:.4g}"
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def rob_columns(
    rob: StudyColumns, k: int, labels: Sequence[str]
) -> tuple[list[str], list[dict[str, str | None]]]:
    """The RoB 2 domains present and each study's level per domain."""
    table = as_columns(rob, k, "rob")
    lookup = {name.strip().lower(): name for name in table}
    domains: list[str] = []
    per_study: list[dict[str, str | None]] = [{} for _ in range(k)]
    used: set[str] = set()
    for domain, aliases in ROB_DOMAINS:
        name = next((lookup[a] for a in aliases if a in lookup), None)
        if name is None:
            continue
        used.add(name)
        domains.append(domain)
        for i, value in enumerate(table[name]):
            per_study[i][domain] = rob_level(value, domain=domain, study=labels[i])
    unknown = sorted(set(table) - used)
    if unknown:
        raise InputError(
            f"rob has columns {', '.join(map(repr, unknown))} that are not RoB 2 domains",
            column=unknown[0],
            fix="name them D1, D2, D3, D4, D5 and Overall (or rob_d1 ... rob_overall)",
        )
    if not domains:
        raise InputError("rob has no columns", fix="give D1-D5 and Overall judgements")
    return domains, per_study


def study_numbers(values: Sequence[Any], k: int, what: str) -> FloatArray:
    """One number per study (years, moderator values)."""
    if isinstance(values, str | bytes) or len(values) != k:
        raise InputError(
            f"{what} needs one value per study ({k})",
            fix="give them in the order of result.labels",
        )
    try:
        arr = np.asarray(pd.to_numeric(pd.Series(list(values)), errors="raise"), dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{what} contains a value that is not a number") from None
    return arr


def extra_columns(values: Mapping[str, Sequence[Any]]) -> list[Column]:
    """Columns for extra values: numbers are right-aligned, text left-aligned."""
    out = []
    for name, col in values.items():
        texts = [cell_text(v) for v in col]
        numeric = all(_is_number(t) for t in texts if t)
        out.append(Column(f"x:{name}", name, "left", "right" if numeric else "left"))
    return out


def _is_number(text: str) -> bool:
    try:
        float(text.replace("\u2212", "-").replace(",", ""))
    except ValueError:
        return False
    return True


def favours_text(
    favours: tuple[str, str] | None, groups: tuple[str, str], lower_is_better: bool | None
) -> tuple[str, str] | None:
    """The texts left and right of the null line.

    Effects are group 1 minus group 2 (or log group 1 over group 2), so an effect
    left of the null means group 1 had less of the outcome: that favours group 1
    when less is better.
    """
    if favours is not None:
        if len(favours) != 2:
            raise InputError("favours needs two texts: the left and the right label")
        return (str(favours[0]), str(favours[1]))
    if lower_is_better is None:
        return None
    first, second = groups
    if lower_is_better:
        return (f"Favours {first}", f"Favours {second}")
    return (f"Favours {second}", f"Favours {first}")
