"""Reading study tables from the files users bring, with errors that say where and how to fix.

Every command reads its input through :func:`read_table`, which takes

* CSV, in the comma-separated form and in the semicolon-separated form with
  decimal commas that spreadsheets write in much of Europe, and tab-separated
  text (``.tsv``, ``.txt`` or any text with tabs); the separator and the
  decimal mark are told from the file or given with ``sep=``/``decimal=``;
* Excel workbooks (``.xlsx``, ``.xlsm``), one sheet at a time (``sheet=``);
* RevMan 5 reviews (``.rm5``, the XML a Cochrane review is kept in), one
  outcome at a time (``outcome=``, e.g. ``"1.2"``), via :func:`read_revman`.

All of them give the same table: the header is row 1, the first study is row
2, and the returned table's index is that row minus 2, so a row number in an
error message still points into the file after rows have been filtered or
sorted. Every refusal is an :class:`~metaan.errors.InputError` naming the file,
the row and column where known, and what to do.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from metaan._gc import collector_paused
from metaan.errors import InputError

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

    import pandas as pd

__all__ = ["MISSING_TOKENS", "Columns", "read_revman", "read_table", "spreadsheet_rows"]

#: Cell texts read as a missing value (after stripping surrounding blanks).
#: They cover what R (``NA``), Excel (``#N/A``), SAS (``.``) and pandas write.
MISSING_TOKENS: frozenset[str] = frozenset(
    {"", "NA", "N/A", "n/a", "na", "NaN", "nan", "NULL", "null", "None", "#N/A", "."}
)

_CSV_FIX = "export the sheet as 'CSV UTF-8' with one header row and one row per study"
_SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab"}
_EXCEL = (".xlsx", ".xlsm")

# A number written with a decimal comma (0,5 or -,25) or a decimal point.
_DECIMAL_COMMA = r"^[+-]?\d*,\d+(?:[eE][+-]?\d+)?$"
_DECIMAL_POINT = r"^[+-]?\d*\.\d+(?:[eE][+-]?\d+)?$"
_NUMBER_START = frozenset("0123456789+-")
# Digits grouped in threes by a separator: 1,234 / 1.234,5 / 1 234 / 1'234; a whole
# cell, after a line break and before the next one or the end (see _grouped_cells).
_GROUPED = {
    ".": r"\n[+-]?\d{1,3}(?:([,'\u00a0\u202f ])\d{3})+(?:\.\d*)?(?=\n|\Z)",
    ",": r"\n[+-]?\d{1,3}(?:([.'\u00a0\u202f ])\d{3})+(?:,\d*)?(?=\n|\Z)",
}


@functools.cache
def _regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled when first used: a comma-separated file of numbers needs none
    of these, and compiling them all would cost every command about 2 ms."""
    return re.compile(pattern)


@dataclass(frozen=True)
class Columns:
    """A table of studies as :func:`read_table` reads it, held without pandas.

    ``data`` maps each column name to its values, typed as
    :func:`read_table` types them (``float64``, ``int64``, or ``object`` holding
    text and ``None``); ``rows`` is the spreadsheet row of each record (header =
    row 1). It is what ``read_table(..., frame=False)`` returns, so that a
    command that only needs arrays (``metaan fit``) does not import pandas;
    :meth:`to_frame` gives the :class:`pandas.DataFrame` ``read_table`` returns
    by default. The functions of the data convention (:func:`metaan.escalc`,
    :func:`metaan.fit`) accept it wherever they accept a table.
    """

    data: dict[str, np.ndarray[Any, Any]]
    rows: np.ndarray[tuple[int], np.dtype[np.int64]]
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """The column names, in the file's order."""
        return list(self.data)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, name: str) -> np.ndarray[Any, Any]:
        return self.data[name]

    def with_columns(self, **columns: np.ndarray[Any, Any]) -> Columns:
        """A copy with ``columns`` added (or replaced, keeping their place)."""
        return Columns({**self.data, **columns}, self.rows, dict(self.attrs))

    def to_frame(self) -> pd.DataFrame:
        """The table as a :class:`pandas.DataFrame`, indexed by spreadsheet row minus 2."""
        import pandas as pd

        index = pd.Index(self.rows - 2, dtype="int64")
        # dtype as read: pandas would otherwise make text columns its string type.
        frame = pd.DataFrame(
            {name: pd.Series(v, index=index, dtype=v.dtype) for name, v in self.data.items()}
        )
        frame.attrs.update(self.attrs)
        return frame

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Columns:
        """The columns of a table that :func:`read_table` returned as a DataFrame."""
        data = {str(name): frame[name].to_numpy() for name in frame.columns}
        return cls(data, spreadsheet_rows(frame), {str(k): v for k, v in frame.attrs.items()})


@overload
def read_table(
    path: str | Path,
    *,
    sep: str | None = ...,
    decimal: str | None = ...,
    sheet: str | int | None = ...,
    outcome: str | None = ...,
    frame: Literal[True] = ...,
) -> pd.DataFrame: ...


@overload
def read_table(
    path: str | Path,
    *,
    sep: str | None = ...,
    decimal: str | None = ...,
    sheet: str | int | None = ...,
    outcome: str | None = ...,
    frame: Literal[False],
) -> Columns: ...


@overload
def read_table(
    path: str | Path,
    *,
    sep: str | None = ...,
    decimal: str | None = ...,
    sheet: str | int | None = ...,
    outcome: str | None = ...,
    frame: bool,
) -> pd.DataFrame | Columns: ...


def read_table(
    path: str | Path,
    *,
    sep: str | None = None,
    decimal: str | None = None,
    sheet: str | int | None = None,
    outcome: str | None = None,
    frame: bool = True,
) -> pd.DataFrame | Columns:
    """Read a table of studies (CSV, tab-separated text, Excel or RevMan 5).

    The first row is the header; every later non-blank row is one record.
    Cells are stripped of surrounding blanks; the texts in
    :data:`MISSING_TOKENS` are missing values. A column whose non-missing cells
    all read as numbers becomes numeric (``int64`` when they are all whole and
    none is missing, else ``float64``); any other column keeps its text, so a
    stray ``"NR"`` in a column of counts is reported where it is used, with
    its row. Blank rows (no text in any cell) are skipped.

    Parameters
    ----------
    path
        The file. ``.xlsx``/``.xlsm`` is read as an Excel workbook, ``.rm5`` as a
        RevMan 5 review, anything else as UTF-8 text (a byte-order mark, as
        Excel writes, is accepted).
    sep
        The separator of a text file: ``","``, ``";"`` or ``"\\t"`` (also
        ``"tab"``, ``"comma"``, ``"semicolon"``). Told from the header when not
        given; a header that two separators split alike is refused as
        ambiguous.
    decimal
        The decimal mark of a text file, ``"."`` or ``","``. Told from the
        numbers when not given: a decimal comma only in a file that is not
        comma-separated. Numbers with thousands separators (``1,234``,
        ``1.234,5``) are refused rather than guessed.
    sheet
        The sheet of a workbook, by name or 1-based number. Required when the
        workbook has more than one sheet.
    outcome
        The outcome of a RevMan review, as ``"COMPARISON.OUTCOME"`` (e.g.
        ``"1.2"``). Required when the review has more than one outcome.
    frame
        True (default): return a :class:`pandas.DataFrame`. False: return the
        same table as :class:`Columns`, numpy arrays by column, without
        importing pandas (except for a RevMan review, which is read with it).

    Returns
    -------
    pandas.DataFrame or Columns
        One row per record. The index is the spreadsheet row minus 2: the
        first record after the header has index 0 (spreadsheet row 2). Blank
        rows leave gaps in the index rather than shifting later rows. A RevMan
        outcome carries its effect measure in ``attrs["measure"]``.

    Raises
    ------
    InputError
        The file is missing, unreadable, not UTF-8 text, not a workbook it
        claims to be, empty, has no data rows, has a blank, repeated or missing
        column name, has a row with more or fewer cells than the header, has a
        broken quote, an ambiguous separator or decimal mark, or a number with
        thousands separators.
    """
    name = str(path)
    file = Path(path)
    _check_path(file, name)
    suffix = file.suffix.lower()
    if suffix == ".rm5":
        review = _one_outcome(read_revman(file), outcome, name)
        return review if frame else Columns.from_frame(review)
    if suffix in _EXCEL:
        header, body, positions = _read_excel(file, name, sheet)
        table = _table(header, body, positions, name, decimal or ".")
        return table.to_frame() if frame else table
    if suffix == ".xls":
        raise InputError(
            "is an Excel 97-2003 workbook (.xls), which metaan does not read",
            file=name,
            fix="save it as .xlsx (Excel Workbook) or as CSV UTF-8",
        )
    text = _read_text(file, name)
    separator = _separator(sep, text, name)
    with collector_paused():  # one list per record, and no cycle among them
        table = _text_table(text, name, separator, decimal)
    return table.to_frame() if frame else table


def _text_table(text: str, name: str, separator: str, decimal: str | None) -> Columns:
    """The typed table of a text file; its records are freed on return."""
    plain = _plain_columns(text, separator)
    if plain is not None:
        header, by_column = plain
        # The decimal mark depends on which cells there are, not on their order.
        mark = _decimal_mark(decimal, separator, by_column, name)
        return _typed_table(header, by_column, list(range(len(by_column[0]))), name, mark)
    records = _parse_records(text, name, separator)
    header, body, positions = _split_header(records, name)
    mark = _decimal_mark(decimal, separator, body, name)
    return _table(header, body, positions, name, mark)


def spreadsheet_rows(data: pd.DataFrame | Columns) -> np.ndarray[tuple[int], np.dtype[np.int64]]:
    """The spreadsheet row number of each row of ``data`` (header = row 1).

    A table from :func:`read_table` carries its rows in the index (index + 2),
    which survives filtering and sorting (:class:`Columns` carries them as
    ``rows``). For any other index (strings, negative or repeated numbers) the
    position in ``data`` is used instead.
    """
    if isinstance(data, Columns):
        return data.rows
    import pandas as pd

    labels = data.index
    if (
        pd.api.types.is_integer_dtype(labels.dtype)
        and labels.is_unique
        and (len(labels) == 0 or int(labels.min()) >= 0)
    ):
        return np.asarray(labels, dtype=np.int64) + 2
    return np.arange(len(data), dtype=np.int64) + 2


# ----------------------------------------------------------------------------- files


def _check_path(path: Path, name: str) -> None:
    if not path.exists():
        raise InputError(
            "no such file",
            file=name,
            fix="check the path and the spelling of the file name",
        )
    if path.is_dir():
        raise InputError(
            "is a directory, not a table of studies",
            file=name,
            fix="give the path of a CSV, .xlsx or .rm5 file",
        )


def _read_bytes(path: Path, name: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"cannot be read ({exc.strerror or exc})",
            file=name,
            fix="check that the file is readable",
        ) from exc


def _read_text(path: Path, name: str) -> str:
    raw = _read_bytes(path, name)
    if raw.startswith(b"PK\x03\x04"):
        raise InputError(
            "is a zipped file (an Excel workbook?) without an .xlsx extension",
            file=name,
            fix="rename it to end in .xlsx, or export the sheet as 'CSV UTF-8'",
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            f"is not UTF-8 text (undecodable byte at line {line}); it may be a workbook "
            "or a CSV in a legacy encoding",
            file=name,
            fix=_CSV_FIX,
        ) from exc


# ----------------------------------------------------------------------------- text


def _separator(sep: str | None, text: str, name: str) -> str:
    """The separator given (by character or name), or the one the header shows."""
    if sep is not None:
        names = {v: k for k, v in _SEPARATORS.items()}
        chosen = names.get(sep.lower(), "\t" if sep == "\\t" else sep)
        if chosen not in _SEPARATORS:
            raise InputError(
                f"the separator {sep} is not one metaan reads",
                file=name,
                fix="use --sep , or --sep ; or --sep tab",
            )
        return chosen
    lines = _leading_lines(text, 2)
    header = lines[0] if lines else ""
    counts = {s: len(_split_line(header, s)) for s in _SEPARATORS}
    best = max(counts.values())
    if best == 1:
        return ","  # one column, or no header: the parser says what is wrong
    candidates = [s for s, n in counts.items() if n == best]
    if len(candidates) > 1:
        # Break a tie with the first data line: the right separator splits it alike.
        first = lines[1] if len(lines) > 1 else ""
        candidates = [s for s in candidates if len(_split_line(first, s)) == best] or candidates
    if len(candidates) > 1:
        shown = " and ".join(f"{_SEPARATORS[s]}s" for s in candidates)
        flags = " or ".join(f"--sep {'tab' if s == chr(9) else s}" for s in candidates)
        raise InputError(
            f"cannot tell the separator: the header splits into {best} columns at {shown}",
            file=name,
            row=1,
            fix=f"say which with {flags}",
        )
    return candidates[0]


def _leading_lines(text: str, count: int) -> list[str]:
    """The first ``count`` non-blank lines of ``text``, as ``text.splitlines()`` gives
    them, without splitting the whole file (the header is all the separator needs)."""
    size = 1 << 12
    while True:
        lines = [line for line in text[:size].splitlines() if line.strip()]
        # Lines before the last one seen are whole; the last may be cut at ``size``.
        if size >= len(text) or len(lines) > count:
            return lines[:count]
        size *= 8


def _split_line(line: str, sep: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=sep), [])
    except csv.Error:
        return [line]


def _plain_columns(text: str, sep: str) -> tuple[list[str], list[list[str]]] | None:
    """The header and the columns of a plain file, split without a list per record.

    A plain file has no quote (so a cell is the text between separators, as the
    csv module reads it), a header that is not blank, and the same number of
    cells in every row, the first one filled (so no row is blank). Any other
    file gives ``None`` and is read record by record, with its errors.
    """
    if '"' in text or "\0" in text:
        return None
    joined = text.replace("\r\n", "\n")
    if "\r" in joined:
        return None
    if joined.endswith("\n"):
        joined = joined[:-1]  # the line break that ends the last row
    shape = _plain_shape(joined, sep)
    if shape is None:
        return None
    width, doubtful = shape
    cells = joined.replace("\n", sep).split(sep)
    header = cells[:width]
    by_column = [cells[width + j :: width] for j in range(width)]
    if _is_blank(header):
        return None
    # A first cell is blank only if its line starts with a separator or a space (or a
    # character beyond ASCII, which may be one): only those lines are looked at.
    firsts = by_column[0]
    if any(not firsts[i].strip() for i in doubtful.tolist()):
        return None
    return header, by_column


def _parse_records(text: str, name: str, sep: str) -> list[list[str]]:
    records: list[list[str]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True)
    try:
        records.extend(reader)  # keeps the records read before a broken one
    except csv.Error as exc:
        raise InputError(
            f"the file is broken from this row on ({exc})",
            file=name,
            row=len(records) + 1,
            fix="check the quotes in this row: a cell that contains the separator, a quote "
            'or a line break must be wrapped in double quotes, with inner quotes doubled ("")',
        ) from exc
    return records


def _split_header(
    records: list[list[str]], name: str
) -> tuple[list[str], list[list[str]], list[int]]:
    """The header, the non-blank data records and their positions (0 = row 2)."""
    if not records or all(_is_blank(r) for r in records):
        raise InputError(
            "the file is empty: it has no header row",
            file=name,
            fix="the first row must name the columns, e.g. study,ai,n1i,ci,n2i",
        )
    header, body = records[0], records[1:]
    if _is_blank(header):
        raise InputError(
            "the row is blank, but the first row must be the header",
            file=name,
            row=1,
            fix="delete the blank rows above the header",
        )
    width = len(header)
    if set(map(len, body)) <= {width}:  # every row full: all kept unless one is blank
        firsts = [record[0] for record in body]
        if all(firsts) and not any(map(str.isspace, firsts)):
            return header, body, list(range(len(body)))
    rows: list[list[str]] = []
    positions: list[int] = []
    for position, record in enumerate(body):
        if len(record) == width and record[0] and not record[0].isspace():
            rows.append(record)  # the common case: a full row that starts with text
            positions.append(position)
            continue
        if _is_blank(record):
            continue
        if len(record) != width:
            raise InputError(
                f"the row has {len(record)} cells but the header has {width}",
                file=name,
                row=position + 2,
                fix="check for a stray or missing separator, or an unquoted separator in a cell",
            )
        rows.append(record)
        positions.append(position)
    return header, rows, positions


def _plain_shape(joined: str, sep: str) -> tuple[int, np.ndarray[Any, Any]] | None:
    """The number of cells in each line of ``joined`` and the positions of the rows
    after the header whose first cell may be blank (see :func:`_plain_columns`); None
    if ``joined`` has fewer than two lines, or lines with different numbers of cells.

    Counted on the UTF-8 bytes with numpy: a separator and a line break are ASCII,
    and no byte of a longer character is ASCII.
    """
    codes = np.frombuffer(joined.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    breaks = np.flatnonzero(codes == 10)
    if not breaks.size:
        return None
    ends = np.append(breaks, len(codes))
    per_line = np.diff(np.searchsorted(np.flatnonzero(codes == ord(sep)), ends), prepend=0)
    if not bool(np.all(per_line == per_line[0])) or breaks[-1] + 1 == len(codes):
        return None
    first = codes[breaks + 1]
    doubtful = (first == ord(sep)) | (first <= 32) | (first >= 128)
    return int(per_line[0]) + 1, np.flatnonzero(doubtful)


def _is_blank(record: Sequence[str]) -> bool:
    return not "".join(record).strip()


def _decimal_mark(decimal: str | None, sep: str, body: list[list[str]], name: str) -> str:
    """The decimal mark given, or the one the numbers show (a comma only if not the separator)."""
    if decimal is not None:
        if decimal not in (".", ","):
            raise InputError(
                f"the decimal mark {decimal} is not one metaan reads",
                file=name,
                fix="use --decimal . or --decimal ,",
            )
        return decimal
    if sep == ",":
        return "."
    comma = point = False
    comma_number, point_number = _regex(_DECIMAL_COMMA).match, _regex(_DECIMAL_POINT).match
    for record in body:
        for cell in record:
            text = cell.strip()
            comma = comma or bool(comma_number(text))
            point = point or bool(point_number(text))
        if comma and point:
            raise InputError(
                f"cannot tell the decimal mark: this {_SEPARATORS[sep]}-separated file has "
                "numbers with a decimal comma and numbers with a decimal point",
                file=name,
                fix="write every number alike, or say which mark with --decimal , or --decimal .",
            )
    return "," if comma else "."


def _table(
    header: list[str], body: list[list[str]], positions: list[int], name: str, decimal: str
) -> Columns:
    """The typed table from text cells: the one convention of every reader."""
    if not body:
        raise InputError(
            "the file has a header but no data rows",
            file=name,
            fix="add one row per study below the header",
        )
    # One object array, sliced by column: faster than transposing the lists.
    cells = np.empty((len(body), len(header)), dtype=object)
    cells[:] = body
    by_column = [cells[:, j] for j in range(len(header))]
    return _typed_table(header, by_column, positions, name, decimal)


def _typed_table(
    header: list[str],
    by_column: Sequence[Iterable[Any]],
    positions: list[int],
    name: str,
    decimal: str,
) -> Columns:
    """The typed table from the header and the text cells of each column."""
    columns = [cell.strip() for cell in header]
    keep = _check_columns(columns, by_column, name)
    rows = np.asarray(positions, dtype=np.int64) + 2
    out = {columns[j]: _typed_column(by_column[j], rows, name, columns[j], decimal) for j in keep}
    return Columns(out, rows)


def _check_columns(columns: list[str], cells: Sequence[Iterable[Any]], name: str) -> list[int]:
    """Indices of the columns to keep; unnamed columns are kept only if they are empty."""
    keep: list[int] = []
    seen: dict[str, int] = {}
    for j, column in enumerate(columns):
        if not column:
            if any(str(cell).strip() for cell in cells[j]):
                raise InputError(
                    f"column {j + 1} has values but no name in the header",
                    file=name,
                    row=1,
                    fix="give every column a name in the first row",
                )
            continue  # an empty trailing column, as spreadsheets often export
        if column in seen:
            raise InputError(
                f"the column name '{column}' appears twice (columns {seen[column] + 1} "
                f"and {j + 1})",
                file=name,
                row=1,
                fix="give each column a distinct name",
            )
        seen[column] = j
        keep.append(j)
    return keep


def _typed_column(
    raw: Iterable[Any], rows: np.ndarray[Any, Any], name: str, column: str, decimal: str
) -> np.ndarray[Any, Any]:
    # Every cell given, as in most tables: a column of numbers is read without masks
    # (a column whose first cells are text, or with any cell that is not a number, is
    # read below, with its rows). ``float`` ignores the spaces around a number, and
    # every missing token reads as NaN or not at all, so a column read here whole,
    # without NaN, has none.
    raw = raw if isinstance(raw, list) else list(raw)
    if decimal == "." and not np.isnan(parse_numbers(raw[:64])).any():
        numbers = parse_numbers(raw)
        if not np.isnan(numbers).any():
            return _whole_as_integers(numbers)
    cells = np.array(list(map(str.strip, raw)), dtype=object)
    missing = np.fromiter(map(MISSING_TOKENS.__contains__, cells), dtype=bool, count=len(cells))
    present = cells[~missing]
    if not len(present):
        return np.full(len(cells), np.nan)
    if decimal == "." and np.isnan(parse_numbers(present[:64])).any():
        # A column is numeric only if every cell reads as a number: one of the first
        # that does not makes it text, without reading the rest as numbers.
        unread = np.flatnonzero(~missing)
        _refuse_grouped_digits(cells[unread], rows[unread], name, column, decimal)
        text = cells.copy()
        text[missing] = None
        return text
    texts = present
    if decimal == ",":
        if any("." in t for t in texts):
            _refuse_points(cells, missing, rows, name, column)
        texts = np.array([t.replace(",", ".") for t in texts], dtype=object)
    numbers = parse_numbers(texts)
    failed = np.isnan(numbers)
    if failed.any():
        unread = np.flatnonzero(~missing)[failed]
        _refuse_grouped_digits(cells[unread], rows[unread], name, column, decimal)
        text = cells.copy()
        text[missing] = None
        return text
    if not missing.any():
        return _whole_as_integers(numbers)
    values = np.full(len(cells), np.nan)
    values[~missing] = numbers
    return values


def _whole_as_integers(
    values: np.ndarray[tuple[int], np.dtype[np.float64]],
) -> np.ndarray[Any, Any]:
    """A column with every cell given: ``int64`` if all its numbers are whole (and held
    exactly by a double), else the ``float64`` numbers."""
    whole = bool(np.all(np.isfinite(values) & (values == np.round(values))))
    if whole and bool(np.all(np.abs(values) < 2.0**53)):
        return values.astype(np.int64)
    return values


def parse_numbers(texts: Sequence[str]) -> np.ndarray[tuple[int], np.dtype[np.float64]]:
    """Text cells as numbers, NaN where a cell is not one (nor where it reads as NaN).

    Numbers are read as ``pandas.to_numeric`` reads text (and as a spreadsheet
    writes them): decimal, with an optional exponent, ``inf`` and ``infinity``
    in any case, ASCII digits only and no ``_`` between them (which Python's
    ``float`` would accept), each rounded correctly to the nearest double.
    """
    count = len(texts)
    joined = "".join(texts)
    if joined.isascii() and "_" not in joined:
        try:  # the common case: every cell a number
            return np.fromiter(map(float, texts), dtype=np.float64, count=count)
        except ValueError:
            pass
    return np.fromiter(map(_number, texts), dtype=np.float64, count=count)


def is_missing(value: object) -> bool:
    """None, NaN or pandas' NA: a missing cell, whatever wrote it (pandas' NA can
    exist only once pandas has been imported)."""
    if value is None:
        return True
    if type(value) is str:  # the common case, decided at once
        return False
    if isinstance(value, float):
        return math.isnan(value)
    pd = sys.modules.get("pandas")
    return pd is not None and value is pd.NA


def factorize(values: Sequence[Any]) -> tuple[np.ndarray[Any, Any], list[Any]]:
    """Codes of ``values`` by their distinct values in order of first appearance, and
    those values; -1 for a missing one (:func:`is_missing`), as ``pandas.factorize``."""
    distinct = dict.fromkeys(values)  # C speed; a handful of keys, or one per row
    if set(map(type, distinct)) == {str}:  # text, none missing: no loop in Python
        uniques = list(distinct)
        if len(uniques) == len(values):  # every value its own, as study labels are
            return np.arange(len(values), dtype=np.intp), uniques
        if len(uniques) == 1:  # one value throughout, as a column of the measure is
            return np.zeros(len(values), dtype=np.intp), uniques
        code = dict(zip(uniques, range(len(uniques)), strict=True))
        return np.fromiter(map(code.__getitem__, values), np.intp, len(values)), uniques
    code = {}
    uniques = []
    for value in distinct:
        if is_missing(value):
            code[value] = -1
        else:
            code[value] = len(uniques)
            uniques.append(value)
    codes = np.fromiter(map(code.__getitem__, values), dtype=np.intp, count=len(values))
    return codes, uniques


def cell_numbers(cells: Sequence[Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Cells of any kind (text, numbers, missing) as numbers, as ``pandas.to_numeric``
    with ``errors="coerce"`` reads them: NaN where a cell is missing
    (:func:`is_missing`) or not a number (text by :func:`parse_numbers`); and
    which cells were given (not missing)."""
    given = np.fromiter((not is_missing(v) for v in cells), dtype=bool, count=len(cells))
    numbers = np.fromiter(map(_cell_number, cells), dtype=np.float64, count=len(cells))
    return numbers, given


def column_numbers(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """A column's values as numbers, NaN where a cell is missing or not a number
    (``pandas.to_numeric(..., errors="coerce")`` of the column, as floats)."""
    if values.dtype.kind in "biuf":
        return values.astype(np.float64)
    return cell_numbers(values.tolist())[0]


def _cell_number(value: Any) -> float:
    if isinstance(value, str):
        return _number(value)
    try:
        return math.nan if is_missing(value) else float(value)
    except (TypeError, ValueError):
        return math.nan


def _number(text: str) -> float:
    if not text.isascii() or "_" in text:
        return math.nan
    try:
        return float(text)
    except ValueError:
        return math.nan


def _refuse_points(
    cells: np.ndarray[Any, Any],
    missing: np.ndarray[Any, Any],
    rows: np.ndarray[Any, Any],
    name: str,
    column: str,
) -> None:
    """In a file with decimal commas, a number with a point is a thousands separator
    or a slip; either way it is not read as a decimal."""
    present = np.flatnonzero(~missing)
    _refuse_grouped_digits(cells[present], rows[present], name, column, ",")
    point_number = _regex(_DECIMAL_POINT).match
    for position, (cell, gone) in enumerate(zip(cells, missing, strict=True)):
        if not gone and point_number(cell):
            raise InputError(
                f"{cell} is written with a decimal point, but the numbers of this file "
                "have decimal commas",
                file=name,
                row=int(rows[position]),
                column=column,
                fix="write it with a comma, or give --decimal . if points are meant",
            )


def _refuse_grouped_digits(
    cells: np.ndarray[Any, Any], rows: np.ndarray[Any, Any], name: str, column: str, decimal: str
) -> None:
    """Refuse a number written with thousands separators, which no reader should guess
    (``cells`` are the ones that did not read as numbers, ``rows`` their spreadsheet rows)."""
    first = next(_grouped_cells(cells, decimal), None)
    if first is None:
        return
    position, match = first
    mark = {" ": "space", "\u00a0": "space", "\u202f": "space"}.get(match.group(1), match.group(1))
    raise InputError(
        f"{cells[position]} is written with a thousands separator ({mark}), which metaan "
        "does not guess at",
        file=name,
        row=int(rows[position]),
        column=column,
        fix="write the number without separators (e.g. 1234 or 1234.5), or give "
        "--decimal if this mark is the decimal one",
    )


def _grouped_cells(
    cells: np.ndarray[Any, Any], decimal: str
) -> Iterator[tuple[int, re.Match[str]]]:
    """The positions of the cells written as grouped digits, in order, with the match.

    One search of the cells joined line by line finds them without a Python call per
    cell. A cell with a line break of its own can show a grouped number on a line of
    its own; each cell found is matched again whole, from its start.
    """
    pattern = _regex(_GROUPED[decimal])
    joined = "\n" + "\n".join(cells.tolist())  # a list joins twice as fast as an array
    ends: np.ndarray[Any, Any] | None = None
    for found in pattern.finditer(joined):
        if ends is None:  # where each cell's line ends, once there is a match
            lengths = np.fromiter(map(len, cells), dtype=np.int64, count=len(cells))
            ends = np.cumsum(lengths + 1)
        position = int(np.searchsorted(ends, found.start(), side="right"))
        cell = cells[position]
        match = pattern.match("\n" + cell)
        # Whole: to the cell's end, or to a line break that ends it.
        if match and cell[:1] in _NUMBER_START and cell[match.end() - 1 :] in ("", "\n"):
            yield position, match


# ----------------------------------------------------------------------------- Excel


def _read_excel(
    path: Path, name: str, sheet: str | int | None
) -> tuple[list[str], list[list[str]], list[int]]:
    """The cells of one sheet as text, in the convention of the CSV reader."""
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise InputError(
            "is not a valid .xlsx workbook (it cannot be opened)",
            file=name,
            fix="open and save it again in Excel, or export the sheet as 'CSV UTF-8'",
        ) from exc
    try:
        names = list(book.sheetnames)
        chosen = _sheet_name(names, sheet, name)
        rows = [
            [_excel_text(value) for value in row]
            for row in book[chosen].iter_rows(values_only=True)
        ]
    finally:
        book.close()
    where = f"{name} (sheet {chosen})"
    width = max((len(r) for r in rows), default=0)
    records = [r + [""] * (width - len(r)) for r in rows]
    return _split_header(records, where)


def _sheet_name(names: list[str], sheet: str | int | None, name: str) -> str:
    listed = ", ".join(names)
    if sheet is None:
        if len(names) == 1:
            return names[0]
        raise InputError(
            f"the workbook has {len(names)} sheets ({listed})",
            file=name,
            fix="choose one with --sheet NAME or --sheet NUMBER",
        )
    if isinstance(sheet, int) or str(sheet).isdigit():
        number = int(sheet)
        if 1 <= number <= len(names):
            return names[number - 1]
    elif str(sheet) in names:
        return str(sheet)
    raise InputError(
        f"the workbook has no sheet {sheet}; its sheets are {listed}",
        file=name,
        fix="give --sheet one of these names, or a number from 1 to " + str(len(names)),
    )


def _excel_text(value: Any) -> str:
    """A cell value as the CSV reader would see it: numbers exactly, dates as ISO text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


# ----------------------------------------------------------------------------- RevMan 5

#: The data of each kind of RevMan outcome: XML attribute -> metaan column.
_REVMAN_DATA: dict[str, dict[str, str]] = {
    "DICH": {"EVENTS_1": "ai", "TOTAL_1": "n1i", "EVENTS_2": "ci", "TOTAL_2": "n2i"},
    "CONT": {
        "MEAN_1": "m1i",
        "SD_1": "sd1i",
        "TOTAL_1": "n1i",
        "MEAN_2": "m2i",
        "SD_2": "sd2i",
        "TOTAL_2": "n2i",
    },
    "IV": {"EFFECT_SIZE": "yi", "SE": "sei", "TOTAL_1": "n1i", "TOTAL_2": "n2i"},
}
#: Columns of :func:`read_revman` that are text, whatever they look like.
_REVMAN_TEXT = (
    "outcome",
    "comparison",
    "outcome_name",
    "data_type",
    "effect_measure",
    "group1",
    "group2",
    "subgroup",
    "study",
    "study_id",
)
#: RevMan's effect measures as metaan names them (a Peto OR is an OR).
_REVMAN_MEASURES = {"OR": "OR", "PETO_OR": "OR", "RR": "RR", "RD": "RD", "MD": "MD", "SMD": "SMD"}


def read_revman(path: str | Path) -> pd.DataFrame:
    """Every outcome of a RevMan 5 review (``.rm5``) as one table.

    One row per study and outcome, in the order of the review, with the
    columns ``outcome`` (``"1.2"``: comparison 1, outcome 2), ``comparison``,
    ``outcome_name``, ``data_type`` (``DICH``, ``CONT`` or ``IV``),
    ``effect_measure`` (RevMan's: OR, RR, RD, PETO_OR, MD, SMD, ...),
    ``subgroup`` (its name, or missing), ``study``, ``study_id``, ``year``,
    ``group1``, ``group2`` and the data under metafor's names: ``ai``, ``n1i``,
    ``ci``, ``n2i`` for dichotomous outcomes; ``m1i``, ``sd1i``, ``n1i``,
    ``m2i``, ``sd2i``, ``n2i`` for continuous ones; ``yi`` and ``sei`` (on the
    log scale for ratios, as RevMan keeps them) for generic inverse-variance
    ones. The index counts the rows from 0 (row 2 in messages).

    The schema is that of RevMan 5 (Cochrane Information Management System,
    RevMan 5.x file format: ``COCHRANE_REVIEW/ANALYSES_AND_DATA/COMPARISON/
    DICH_OUTCOME|CONT_OUTCOME|IV_OUTCOME[/…_SUBGROUP]/…_DATA``, studies in
    ``STUDIES_AND_REFERENCES/STUDIES/INCLUDED_STUDIES/STUDY``).

    Raises
    ------
    InputError
        The file is not XML, not a RevMan review, or has no outcome data.
    """
    import xml.etree.ElementTree as ET

    name = str(path)
    file = Path(path)
    _check_path(file, name)
    raw = _read_bytes(file, name)
    if b"<!ENTITY" in raw:
        raise InputError(
            "declares XML entities, which a RevMan file never does",
            file=name,
            fix="export the review again from RevMan",
        )
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        line = exc.position[0] if exc.position else None
        raise InputError(
            f"is not well-formed XML ({exc.msg if hasattr(exc, 'msg') else exc})",
            file=name,
            row=line,
            fix="open the review in RevMan and save it again, or export the data as CSV",
        ) from None
    if root.tag != "COCHRANE_REVIEW":
        raise InputError(
            f"is XML but not a RevMan 5 review (its root element is <{root.tag}>)",
            file=name,
            fix="give the .rm5 file RevMan saved",
        )
    studies = {
        s.get("ID", ""): (str(s.get("NAME") or s.get("ID", "")), s.get("YEAR") or "")
        for s in root.iter("STUDY")
        if s.get("ID")
    }
    records = [
        record
        for comparison in root.iter("COMPARISON")
        for kind in _REVMAN_DATA
        for outcome in comparison.findall(f"{kind}_OUTCOME")
        for record in _revman_outcome(comparison, outcome, kind, studies)
    ]
    if not records:
        raise InputError(
            "the review has no outcome data (no DICH, CONT or IV outcomes under ANALYSES_AND_DATA)",
            file=name,
            fix="add the data in RevMan, or give a review that has them",
        )
    columns = list(dict.fromkeys(key for record in records for key in record))
    body = [[record.get(c, "") for c in columns] for record in records]
    table = _table(columns, body, list(range(len(body))), name, ".").to_frame()
    for column in _REVMAN_TEXT:
        # Names and numbers such as "1.10" stay as RevMan wrote them.
        table[column] = [record[column].strip() or None for record in records]
    return table


def _revman_outcome(
    comparison: ET.Element, outcome: ET.Element, kind: str, studies: dict[str, tuple[str, str]]
) -> list[dict[str, str]]:
    common = {
        "outcome": f"{comparison.get('NO', '')}.{outcome.get('NO', '')}",
        "comparison": (comparison.findtext("NAME") or "").strip(),
        "outcome_name": (outcome.findtext("NAME") or "").strip(),
        "data_type": kind,
        "effect_measure": outcome.get("EFFECT_MEASURE", ""),
        "group1": (outcome.findtext("GROUP_LABEL_1") or "").strip(),
        "group2": (outcome.findtext("GROUP_LABEL_2") or "").strip(),
    }
    blocks: list[tuple[str, ET.Element]] = [("", outcome)]
    blocks += [
        ((sub.findtext("NAME") or "").strip(), sub) for sub in outcome.findall(f"{kind}_SUBGROUP")
    ]
    out = []
    for subgroup, block in blocks:
        for data in block.findall(f"{kind}_DATA"):
            study_id = data.get("STUDY_ID", "")
            study, year = studies.get(study_id, (study_id, ""))
            record = {**common, "subgroup": subgroup, "study": study, "study_id": study_id}
            record["year"] = year
            for attribute, column in _REVMAN_DATA[kind].items():
                record[column] = data.get(attribute, "")
            out.append(record)
    return out


def _one_outcome(review: pd.DataFrame, outcome: str | None, name: str) -> pd.DataFrame:
    """The rows of one outcome, numbered from row 2, with its effect measure in attrs."""
    import pandas as pd

    available = review.drop_duplicates("outcome")
    listing = "; ".join(
        f"{row.outcome} {row.outcome_name} ({row.data_type}, {row.effect_measure})"
        for row in available.itertuples()
    )
    if outcome is None:
        if len(available) > 1:
            raise InputError(
                f"the review has {len(available)} outcomes: {listing}",
                file=name,
                fix="choose one with --revman-outcome (outcome= in Python), e.g. --revman-outcome "
                + str(available["outcome"].iloc[0]),
            )
        outcome = str(available["outcome"].iloc[0])
    chosen = review[review["outcome"].astype(str) == str(outcome)]
    if chosen.empty:
        raise InputError(
            f"the review has no outcome {outcome}; it has {listing}",
            file=name,
            fix="give --revman-outcome (outcome=) one of these numbers",
        )
    kind = str(chosen["data_type"].iloc[0])
    keep = [c for c in chosen.columns if not chosen[c].isna().all() or c == "subgroup"]
    table = chosen[keep].reset_index(drop=True)
    for column in _REVMAN_DATA[kind].values():
        if column in table.columns:
            table[column] = pd.to_numeric(table[column], errors="coerce")
    measure = _REVMAN_MEASURES.get(str(chosen["effect_measure"].iloc[0]))
    if kind == "IV":
        measure = "GEN"
    if measure is not None:
        table.attrs["measure"] = measure
    return table
