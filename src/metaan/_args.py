"""The arguments every public function shares, checked in one place.

One data convention runs through metaan: ``fn(data, *, yi="yi", vi="vi", ...)``.
``data`` is a table (a :class:`pandas.DataFrame`, or the :class:`~metaan.io.Columns`
that ``read_table(..., frame=False)`` gives) or ``None``; every argument
that holds per-study values is either the name of a column of ``data`` or the
values themselves (one per row of ``data``, or per study when there is no
table). :func:`column_values` reads such an argument; :func:`as_table` checks
``data``; :func:`refuse_unused` turns an argument that would be ignored into an
error that says so.

Two more rules live here so that every function applies them the same way:

* study labels (:func:`study_labels`): the ``labels`` argument (a column or the
  labels), else the first of :data:`LABEL_COLUMNS` in the table (matched without
  regard to case), else none, shown as ``Study 1``, ``Study 2``, ... by position;
* the confidence level (:func:`check_level`): a percentage from 50 up to 100
  (``95``) or a fraction from 0.5 up to 1 (``0.95``); anything else is refused,
  1 as ambiguous (100 % as a fraction, 1 % as a percentage) and 1.5 as a 1.5 %
  interval no one means.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, overload

import numpy as np

from metaan.errors import InputError
from metaan.io import Columns, cell_numbers, is_missing, spreadsheet_rows

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "LABEL_COLUMNS",
    "Column",
    "LazyTuple",
    "StudyLabels",
    "StudyNumbers",
    "as_table",
    "as_table_or_columns",
    "check_choice",
    "check_level",
    "column_values",
    "display_labels",
    "is_default",
    "label_column",
    "label_text",
    "n_rows",
    "numeric_columns",
    "refuse_unused",
    "study_labels",
]

T = TypeVar("T")

#: A column of ``data`` (its name) or one value per row.
Column: TypeAlias = Any

#: Columns used as study labels when none is named, in this order (matched
#: without regard to case).
LABEL_COLUMNS: tuple[str, ...] = ("study", "study_id", "label", "author", "trial")


def check_level(level: Any, name: str = "level") -> float:
    """A confidence level in percent, from a percentage (95) or a fraction (0.95).

    A level is a percentage from 50 up to 100 or a fraction from 0.5 up to 1; so
    1 (a 100 % interval as a fraction, a 1 % one as a percentage) and 1.5 (1.5 %)
    are refused, as is anything below a 50 % interval, which no one reports and
    which is almost always a typing slip.
    """
    if isinstance(level, bool) or not isinstance(level, int | float | np.integer | np.floating):
        raise InputError(
            f"{name} is {level!r}, not a number",
            fix="give the confidence level as a percentage (95) or a fraction (0.95)",
        )
    value = float(level)
    if 0.5 <= value < 1.0:
        return value * 100.0
    if 50.0 <= value < 100.0:
        return value
    why = (
        "1, which is ambiguous (a 100 % interval as a fraction, 1 % as a percentage)"
        if value == 1.0
        else f"{level!r}; a confidence level is a percentage from 50 to 100 or a fraction "
        "from 0.5 to 1"
    )
    raise InputError(f"{name} is {why}", fix="give e.g. 95 or 0.95")


def check_choice(value: str, allowed: Sequence[str], what: str) -> str:
    """Return ``value`` as spelt in ``allowed`` (case is ignored), or raise InputError."""
    if isinstance(value, str):
        for option in allowed:
            if value == option or value.upper() == option.upper():
                return option
    raise InputError(f"{what} is {value!r}", fix=f"choose one of {', '.join(allowed)}")


def is_frame(data: Any) -> bool:
    """True for a :class:`pandas.DataFrame` (without importing pandas: a frame can
    exist only if pandas has been imported)."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(data, pd.DataFrame)


def as_table(data: Any, *, source: str | None = None) -> pd.DataFrame | None:
    """``data`` as a table, or None; anything else is an error that shows the call.

    :class:`~metaan.io.Columns` become a DataFrame; the functions that read them
    as they are (:func:`metaan.escalc`, :func:`metaan.fit`) use
    :func:`as_table_or_columns`."""
    if isinstance(data, Columns):
        return data.to_frame()
    return as_table_or_columns(data, source=source)  # type: ignore[return-value]


def as_table_or_columns(data: Any, *, source: str | None = None) -> pd.DataFrame | Columns | None:
    """``data`` as a table (a DataFrame or :class:`~metaan.io.Columns`), or None;
    anything else is an error that shows the call."""
    if data is None or isinstance(data, Columns) or is_frame(data):
        return data  # type: ignore[no-any-return]
    raise InputError(
        f"data must be a table (a pandas DataFrame) or None, not {type(data).__name__}",
        file=source,
        fix="pass the values by keyword instead, e.g. fit(yi=[...], vi=[...])",
    )


def is_default(value: Any, default: str | None) -> bool:
    """True when an argument still has its default (a column name, or None)."""
    if default is None:
        return value is None
    return isinstance(value, str) and value == default


def refuse_unused(why: str, **arguments: Any) -> None:
    """Raise InputError naming the arguments that are given (not None) but would be
    ignored, and ``why``."""
    given = [name for name, value in arguments.items() if value is not None]
    if given:
        verb = "is" if len(given) == 1 else "are"
        raise InputError(
            f"{', '.join(given)} {verb} given but would be ignored: {why}",
            fix=f"leave out {', '.join(given)}",
        )


def _length(value: Any) -> int | None:
    if value is None or isinstance(value, str):
        return None
    if isinstance(value, np.ndarray):
        return value.shape[0] if value.ndim else 1
    return 1 if np.ndim(value) == 0 else len(value)


def n_rows(data: pd.DataFrame | Columns | None, **arguments: Any) -> int:
    """The number of rows: ``len(data)``, or the length of the first argument given
    as values. An argument naming a column without a table is an error."""
    for name, value in arguments.items():
        if data is None and isinstance(value, str):
            raise InputError(
                f"{name}={value!r} names a column, but no table was given",
                fix=f"pass the table as data, or give {name} as values",
            )
    if data is not None:
        return len(data)
    for value in arguments.values():
        n = _length(value)
        if n is not None:
            return n
    raise InputError("no data: give a table, or the values by keyword (yi=..., vi=...)")


def _no_column(
    data: pd.DataFrame | Columns, column: str, name: str, source: str | None
) -> InputError:
    return InputError(
        f"no such column (it was given as {name})",
        file=source,
        column=column,
        fix=f"check the spelling; the table's columns are: {', '.join(map(str, data.columns))}",
    )


def column_values(
    data: pd.DataFrame | Columns | None,
    value: Column,
    name: str,
    n: int,
    *,
    numeric: bool,
    source: str | None = None,
    labels: Sequence[str | None] | None = None,
) -> tuple[np.ndarray, str | None]:
    """The values of an argument (a column of ``data`` named by ``value``, or the
    values; a single value is repeated) and the column's name (None for values).

    With ``numeric``, the values are floats (blank cells NaN) and a text that is
    not a number is an error naming its row (as a spreadsheet shows it), study
    and column.
    """
    column: str | None = None
    if isinstance(data, Columns):
        if isinstance(value, str):
            return _from_columns(data, value, name, numeric, source, labels), value
        data = data.to_frame()  # values given beside a table: checked as for a DataFrame
    if numeric and not (isinstance(value, str) or _is_series(value)):
        fast = _float_array(value)  # the fast path: numbers given as an array
        if fast is not None:
            if fast.size != n:
                raise InputError(
                    f"{name} has {fast.size} values but there are {n} rows", file=source
                )
            return fast, None
    import pandas as pd

    if isinstance(value, str):
        if data is None:
            n_rows(None, **{name: value})
        assert data is not None
        if value not in data.columns:
            raise _no_column(data, value, name, source)
        series = data[value].reset_index(drop=True)
        column = value
    elif isinstance(value, pd.Series):
        series = value.reset_index(drop=True)
    elif np.ndim(value) == 0:
        series = pd.Series([value] * n, dtype=object)
    else:
        array = np.asarray(value, dtype=object)
        if array.ndim != 1:
            raise InputError(
                f"{name} must be one value per row, not an array of shape {array.shape}"
            )
        series = pd.Series(array, dtype=object)
    if len(series) != n:
        raise InputError(f"{name} has {len(series)} values but there are {n} rows", file=source)
    if not numeric:
        return series.to_numpy(dtype=object), column
    return _numbers(series, name, column, data, source, labels), column


def _is_series(value: Any) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(value, pd.Series)


def _from_columns(
    data: Columns,
    column: str,
    name: str,
    numeric: bool,
    source: str | None,
    labels: Sequence[str | None] | None,
) -> np.ndarray:
    """A column of a :class:`~metaan.io.Columns` table, as :func:`column_values` gives
    it: objects, or floats where a text that is not a number is an error (the rule of
    :func:`_numbers`, without pandas)."""
    if column not in data.data:
        raise _no_column(data, column, name, source)
    values = data[column]
    if not numeric:
        return values.astype(object)
    if values.dtype.kind in "iuf":
        return values.astype(np.float64)
    if values.dtype.kind == "b":
        bad, problem = np.arange(len(values)), "a true/false value, not a number"
    else:
        numbers, given = cell_numbers(values.tolist())
        bad, problem = np.flatnonzero(given & np.isnan(numbers)), "which is not a number"
        if not bad.size:
            return numbers
    i = int(bad[0])
    raise InputError(
        f"{name} is {values[i]!r}, {problem}",
        file=source,
        row=int(data.rows[i]),
        study=labels[i] if labels is not None else None,
        column=column,
        fix="write a number, or leave the cell blank if the value is missing",
    )


def _float_array(value: Any) -> np.ndarray | None:
    """``value`` as floats when it is a 1-d array of numbers (not booleans), else None."""
    if not isinstance(value, np.ndarray):
        try:
            value = np.asarray(value)
        except (TypeError, ValueError):  # pragma: no cover - ragged input
            return None
    if value.ndim == 1 and value.dtype.kind in "iuf":
        return np.asarray(value, dtype=np.float64)
    return None


def _numbers(
    series: pd.Series,
    name: str,
    column: str | None,
    data: pd.DataFrame | None,
    source: str | None,
    labels: Sequence[str | None] | None,
) -> np.ndarray:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series.dtype):
        bad = np.flatnonzero(series.notna().to_numpy())
        problem = "a true/false value, not a number"
    else:
        numbers = pd.to_numeric(series, errors="coerce")
        bad = np.flatnonzero(series.notna().to_numpy() & numbers.isna().to_numpy())
        problem = "which is not a number"
        if not bad.size:
            return np.asarray(numbers.to_numpy(dtype=np.float64, na_value=np.nan))
    i = int(bad[0])
    rows = (spreadsheet_rows(data) if data is not None else np.arange(1, len(series) + 1)).tolist()
    raise InputError(
        f"{name} is {series.iloc[i]!r}, {problem}",
        file=source,
        row=int(rows[i]),
        study=labels[i] if labels is not None else None,
        column=column,
        fix="write a number, or leave the cell blank if the value is missing",
    )


def label_text(value: object) -> str | None:
    """A label cell as text: None when blank or missing; whole floats lose ``.0``."""
    if type(value) is str:  # the common case
        return value.strip() or None
    if is_missing(value):
        return None
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def label_column(data: pd.DataFrame | Columns) -> str | None:
    """The column of study labels when none is named: the first of
    :data:`LABEL_COLUMNS` in ``data`` (an exact match first, then any case)."""
    names = {str(c): c for c in data.columns}
    lower = {str(c).lower(): c for c in reversed(list(data.columns))}
    for name in LABEL_COLUMNS:
        if name in names:
            return str(names[name])
        if name in lower:
            return str(lower[name])
    return None


def study_labels(
    data: pd.DataFrame | Columns | None,
    labels: Column | None = None,
    *,
    n: int | None = None,
    source: str | None = None,
) -> list[str | None]:
    """The study label of each row (``None`` where there is none).

    ``labels`` is a column of ``data`` or one label per row; by default the first
    of :data:`LABEL_COLUMNS` in ``data`` (matched without regard to case), or
    none. :func:`display_labels` names the rows without a label.
    """
    count = n if n is not None else (len(data) if data is not None else None)
    if labels is None:
        column = label_column(data) if data is not None else None
        if column is None:
            return [None] * (count or 0)
        labels = column
    if count is None:
        count = n_rows(data, labels=labels)
    values, _ = column_values(data, labels, "labels", count, numeric=False, source=source)
    if set(map(type, values)) <= {str}:  # text labels (the usual case): no call per label
        texts: list[str | None] = list(map(str.strip, values))
        return [text or None for text in texts] if "" in texts else texts
    return [label_text(v) for v in values]


def display_labels(labels: Sequence[str | None]) -> list[str]:
    """Labels as results show them: ``Study i`` (by position) where there is none."""
    return [f"Study {i + 1}" if label is None else label for i, label in enumerate(labels)]


class LazyTuple(Sequence[T]):
    """A read-only sequence of one value per study whose Python objects are made
    only when they are read.

    A fit of 10^6 studies should not spend most of its time and memory on
    ``"Study 1"``, ..., ``"Study 1000000"`` and a million row numbers that no one
    may ask for. It reads like the tuple of its items: it indexes, iterates,
    compares equal to that tuple, hashes as it and adds to tuples; the tuple is
    made (once) when the sequence is iterated, compared or shown.
    """

    __slots__ = ("_tuple",)

    def __init__(self) -> None:
        self._tuple: tuple[T, ...] | None = None

    def __len__(self) -> int:
        raise NotImplementedError

    def _item(self, i: int) -> T:
        raise NotImplementedError

    def _items(self) -> tuple[T, ...]:
        return tuple(self._item(i) for i in range(len(self)))

    def take(self, index: Any) -> LazyTuple[T]:
        """The items at the positions ``index`` (an integer array), still lazy."""
        raise NotImplementedError

    def as_tuple(self) -> tuple[T, ...]:
        """The items as a tuple (made once)."""
        if self._tuple is None:
            self._tuple = self._items()
        return self._tuple

    @overload
    def __getitem__(self, i: int) -> T: ...

    @overload
    def __getitem__(self, i: slice) -> LazyTuple[T]: ...

    def __getitem__(self, i: int | slice) -> T | LazyTuple[T]:
        n = len(self)
        if isinstance(i, slice):
            return self.take(np.arange(n)[i])
        j = operator.index(i)
        j = j + n if j < 0 else j
        if not 0 <= j < n:
            raise IndexError("study index out of range")
        return self._item(j)

    def __iter__(self) -> Iterator[T]:
        return iter(self.as_tuple())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, tuple | LazyTuple):
            return len(self) == len(other) and self.as_tuple() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.as_tuple())

    def __add__(self, other: object) -> tuple[Any, ...]:
        if isinstance(other, tuple | LazyTuple):
            return self.as_tuple() + tuple(other)
        return NotImplemented

    def __radd__(self, other: object) -> tuple[Any, ...]:
        if isinstance(other, tuple):
            return other + self.as_tuple()
        return NotImplemented

    def __repr__(self) -> str:
        return repr(self.as_tuple())


class StudyNumbers(LazyTuple[int]):
    """Row numbers or positions of studies, as Python ints when read."""

    __slots__ = ("_values",)

    def __init__(self, values: np.ndarray | range) -> None:
        super().__init__()
        self._values = values

    def __len__(self) -> int:
        return len(self._values)

    def _item(self, i: int) -> int:
        return int(self._values[i])

    def _items(self) -> tuple[int, ...]:
        return tuple(np.asarray(self._values, dtype=np.int64).tolist())

    def take(self, index: Any) -> StudyNumbers:
        return StudyNumbers(np.asarray(self._values, dtype=np.int64)[index])


class StudyLabels(LazyTuple[str]):
    """Study labels as results show them (:func:`display_labels`), each made when read.

    ``given`` holds the label of each row given (None where there is none: shown
    as ``Study i``, i its position from 1); ``index`` the positions of the
    studies among those rows (default: all of them).
    """

    __slots__ = ("_given", "_index")

    def __init__(
        self, given: Sequence[str | None], index: np.ndarray | range | None = None
    ) -> None:
        super().__init__()
        self._given = given
        self._index = range(len(given)) if index is None else index

    def __len__(self) -> int:
        return len(self._index)

    def _item(self, i: int) -> str:
        position = int(self._index[i])
        label = self._given[position]
        return f"Study {position + 1}" if label is None else label

    def take(self, index: Any) -> StudyLabels:
        return StudyLabels(self._given, np.asarray(self._index, dtype=np.int64)[index])


def numeric_columns(
    data: pd.DataFrame | None,
    columns: dict[str, Column],
    *,
    labels: Column | None = None,
    source: str | None = None,
) -> tuple[dict[str, np.ndarray], list[str], list[int]]:
    """Several numeric arguments at once (see :func:`column_values`), with the study
    label (:func:`display_labels`) and the row of each row: as a spreadsheet shows
    it for a table, by position (from 1) for values."""
    table = as_table(data, source=source)
    n = n_rows(table, **columns)
    names = study_labels(table, labels, n=n, source=source)
    values = {
        name: column_values(table, value, name, n, numeric=True, source=source, labels=names)[0]
        for name, value in columns.items()
    }
    rows = spreadsheet_rows(table).tolist() if table is not None else list(range(1, n + 1))
    return values, display_labels(names), [int(r) for r in rows]
