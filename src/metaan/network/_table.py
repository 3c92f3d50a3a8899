"""Reading the columns of a network's input table, with errors that say where.

Shared by :func:`metaan.network.pairwise` (one row per arm) and the contrast reader
of :func:`metaan.network.fit_network` (one row per comparison): a column is looked
up, its cells parsed as text labels or as numbers, and a bad cell raises an
:class:`~metaan.errors.InputError` that names the file, the spreadsheet row, the
study and the column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from metaan._args import study_labels
from metaan.errors import InputError, raise_at_first
from metaan.io import spreadsheet_rows

__all__ = ["FloatArray", "InputTable", "IntArray", "components", "pairs_within"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

_NUMBER_FIX = "enter a number, or leave the cell blank if the value is not reported"


@dataclass(frozen=True)
class InputTable:
    """A study table with what error messages need: the file and each row's number."""

    data: pd.DataFrame
    source: str | None

    @classmethod
    def of(cls, data: object, source: str | None) -> InputTable:
        """Check that ``data`` is a non-empty DataFrame."""
        if not isinstance(data, pd.DataFrame):
            raise InputError(
                f"expected a pandas DataFrame, got {type(data).__name__}",
                file=source,
                fix="read the file with metaan.io.read_table",
            )
        if len(data) == 0:
            raise InputError("the table has no rows", file=source, fix="add rows below the header")
        return cls(data, source)

    @property
    def rows(self) -> npt.NDArray[np.int64]:
        """The spreadsheet row of every record (header = row 1)."""
        return spreadsheet_rows(self.data)

    def has(self, column: str | None) -> bool:
        return column is not None and column in self.data.columns

    def column(self, column: str, role: str) -> pd.Series:
        """The column, or an error naming the columns there are."""
        if column not in self.data.columns:
            names = ", ".join(str(c) for c in self.data.columns)
            raise InputError(
                f"no such column (it was given for {role})",
                file=self.source,
                column=column,
                fix=f"check the spelling; the table's columns are: {names}",
            )
        return self.data[column]

    def labels(self, column: str, role: str, *, studies: list[str] | None = None) -> list[str]:
        """The cells of a label column as text; a blank cell is an error."""
        self.column(column, role)
        cells: list[str] = []
        for i, text in enumerate(study_labels(self.data, column, source=self.source)):
            if text is None:
                raise InputError(
                    f"the {role} is blank",
                    file=self.source,
                    row=int(self.rows[i]),
                    column=column,
                    study=None if studies is None else studies[i],
                    fix=f"every row needs its {role}",
                )
            cells.append(text)
        return cells

    def numbers(self, column: str, role: str, studies: list[str]) -> FloatArray:
        """The cells of a numeric column (nan where blank); text or infinity is an error."""
        series = self.column(column, role)
        if pd.api.types.is_bool_dtype(series.dtype):
            self.fail(series.notna().to_numpy(dtype=bool), column, studies, "a true/false value")
        if pd.api.types.is_numeric_dtype(series.dtype):
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            text = study_labels(self.data, column, source=self.source)
            parsed = pd.to_numeric(pd.Series(text, dtype=object), errors="coerce")
            values = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
            bad = np.array([t is not None for t in text]) & np.isnan(values)
            self.fail(bad, column, studies, "not a number", cells=text)
        self.fail(np.isinf(values), column, studies, "not a finite number")
        return values

    def fail(
        self,
        mask: npt.NDArray[np.bool_],
        column: str,
        studies: list[str],
        problem: str,
        *,
        cells: Sequence[str | None] | None = None,
        fix: str = _NUMBER_FIX,
    ) -> None:
        """Raise at the first row where ``mask`` holds: ``"column is VALUE, PROBLEM"``."""

        def text(i: int) -> str:
            raw: object = cells[i] if cells is not None else self.data[column].iloc[i]
            if isinstance(raw, str):
                value = repr(raw)
            elif isinstance(raw, bool | np.bool_):
                value = str(bool(raw))
            else:
                value = format(float(str(raw)), ".10g")
            return f"{column} is {value}, {problem}"

        raise_at_first(
            np.flatnonzero(mask),
            text,
            file=self.source,
            rows=self.rows,
            column=column,
            studies=studies,
            fix=fix,
        )


def pairs_within(code: IntArray) -> tuple[IntArray, IntArray]:
    """Every pair of items of a group: for items numbered by group ``code`` (groups
    0..G-1, items of a group in their order of appearance), the items ``first`` and
    ``second`` of each pair, pairs ordered by group and, within a group, as
    (1st, 2nd), (1st, 3rd), ..., (2nd, 3rd), ...: the order of R's double loop."""
    if code.size == 0:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    order = np.argsort(code, kind="stable")
    sizes = np.bincount(code)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    firsts: list[IntArray] = []
    seconds: list[IntArray] = []
    keys: list[IntArray] = []
    width = int(sizes.max()) ** 2
    for k in np.unique(sizes[sizes >= 2]):
        members = np.flatnonzero(sizes == k)
        a, b = np.triu_indices(int(k), 1)
        base = starts[members][:, None]
        firsts.append(order[base + a].reshape(-1))
        seconds.append(order[base + b].reshape(-1))
        keys.append((members[:, None] * width + np.arange(a.size)).reshape(-1))
    if not keys:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    sort = np.argsort(np.concatenate(keys), kind="stable")
    first = np.concatenate(firsts)[sort].astype(np.intp)
    second = np.concatenate(seconds)[sort].astype(np.intp)
    return first, second


def components(n: int, t1: IntArray, t2: IntArray) -> IntArray:
    """The connected component of each of ``n`` vertices joined by edges ``t1``-``t2``:
    every vertex gets the smallest vertex number of its component (label propagation
    with pointer jumping, a few vectorised passes over the edges)."""
    label = np.arange(n, dtype=np.intp)
    while True:
        low = np.minimum(label[t1], label[t2])
        new = label.copy()
        np.minimum.at(new, t1, low)
        np.minimum.at(new, t2, low)
        new = new[new]
        if np.array_equal(new, label):
            return label
        label = new
