"""Reading study tables from CSV files, with errors that say where and how to fix.

Every command reads its input through :func:`read_table`, so a spreadsheet
exported as CSV behaves the same everywhere: the header is row 1, the first
study is row 2, and the returned table's index is the spreadsheet row minus 2,
so a row number in an error message still points into the file after rows have
been filtered or sorted.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from metaan.errors import InputError

__all__ = ["MISSING_TOKENS", "read_table", "spreadsheet_rows"]

#: Cell texts read as a missing value (after stripping surrounding blanks).
#: They cover what R (``NA``), Excel (``#N/A``), SAS (``.``) and pandas write.
MISSING_TOKENS: frozenset[str] = frozenset(
    {"", "NA", "N/A", "n/a", "na", "NaN", "nan", "NULL", "null", "None", "#N/A", "."}
)

_CSV_FIX = "export the sheet as 'CSV UTF-8' with one header row and one row per study"


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV file of studies into a DataFrame.

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
        The CSV file, UTF-8 encoded (a byte-order mark, as Excel writes, is
        accepted).

    Returns
    -------
    pandas.DataFrame
        One row per record. The index is the spreadsheet row minus 2: the
        first record after the header has index 0 (spreadsheet row 2). Blank
        rows leave gaps in the index rather than shifting later rows.

    Raises
    ------
    InputError
        The file is missing, unreadable, not UTF-8 text, empty, has no data
        rows, has a blank, repeated or missing column name, has a row with
        more or fewer cells than the header, or has a broken quote.
    """
    name = str(path)
    text = _read_text(Path(path), name)
    records = _parse_records(text, name)
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
    columns = [cell.strip() for cell in header]
    rows: list[list[str]] = []
    index: list[int] = []
    for position, record in enumerate(body):
        if _is_blank(record):
            continue
        if len(record) != len(columns):
            raise InputError(
                f"the row has {len(record)} cells but the header has {len(columns)}",
                file=name,
                row=position + 2,
                fix="check for a stray or missing comma, or an unquoted comma inside a cell",
            )
        rows.append([cell.strip() for cell in record])
        index.append(position)
    if not rows:
        raise InputError(
            "the file has a header but no data rows",
            file=name,
            fix="add one row per study below the header",
        )
    keep = _check_columns(columns, rows, name)
    labels = pd.Index(index, dtype="int64")
    return pd.DataFrame({columns[j]: _typed_column([row[j] for row in rows], labels) for j in keep})


def spreadsheet_rows(data: pd.DataFrame) -> np.ndarray[tuple[int], np.dtype[np.int64]]:
    """The spreadsheet row number of each row of ``data`` (header = row 1).

    A table from :func:`read_table` carries its rows in the index (index + 2),
    which survives filtering and sorting. For any other index (strings,
    negative or repeated numbers) the position in ``data`` is used instead.
    """
    labels = data.index
    if (
        pd.api.types.is_integer_dtype(labels.dtype)
        and labels.is_unique
        and (len(labels) == 0 or int(labels.min()) >= 0)
    ):
        return np.asarray(labels, dtype=np.int64) + 2
    return np.arange(len(data), dtype=np.int64) + 2


def _read_text(path: Path, name: str) -> str:
    if not path.exists():
        raise InputError(
            "no such file",
            file=name,
            fix="check the path and the spelling of the file name",
        )
    if path.is_dir():
        raise InputError(
            "is a directory, not a CSV file", file=name, fix="give the CSV file's path"
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"cannot be read ({exc.strerror or exc})",
            file=name,
            fix="check that the file is readable",
        ) from exc
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


def _parse_records(text: str, name: str) -> list[list[str]]:
    records: list[list[str]] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for record in reader:
            records.append(record)
    except csv.Error as exc:
        raise InputError(
            f"the CSV is broken from this row on ({exc})",
            file=name,
            row=len(records) + 1,
            fix="check the quotes in this row: a cell that contains a comma, quote or line "
            'break must be wrapped in double quotes, with inner quotes doubled ("")',
        ) from exc
    return records


def _is_blank(record: list[str]) -> bool:
    return all(not cell.strip() for cell in record)


def _check_columns(columns: list[str], rows: list[list[str]], name: str) -> list[int]:
    """Indices of the columns to keep; unnamed columns are kept only if they are empty."""
    keep: list[int] = []
    seen: dict[str, int] = {}
    for j, column in enumerate(columns):
        if not column:
            if any(row[j] for row in rows):
                raise InputError(
                    f"column {j + 1} has values but no name in the header",
                    file=name,
                    row=1,
                    fix="give every column a name in the first row",
                )
            continue  # an empty trailing column, as spreadsheets often export
        if column in seen:
            raise InputError(
                f"the column name {column!r} appears twice (columns {seen[column] + 1} "
                f"and {j + 1})",
                file=name,
                row=1,
                fix="give each column a distinct name",
            )
        seen[column] = j
        keep.append(j)
    return keep


def _typed_column(cells: list[str], index: pd.Index) -> pd.Series:
    missing = np.array([cell in MISSING_TOKENS for cell in cells], dtype=bool)
    present = [cell for cell, gone in zip(cells, missing, strict=True) if not gone]
    numbers = pd.to_numeric(pd.Series(present, dtype=object), errors="coerce")
    if present and not bool(numbers.isna().any()):
        values = np.full(len(cells), np.nan)
        values[~missing] = numbers.to_numpy(dtype=np.float64)
        whole = bool(np.all(np.isfinite(values) & (values == np.round(values))))
        if whole and not missing.any() and bool(np.all(np.abs(values) < 2.0**53)):
            return pd.Series(values.astype(np.int64), index=index)
        return pd.Series(values, index=index)
    if not present:
        return pd.Series(np.full(len(cells), np.nan), index=index)
    text = [None if gone else cell for cell, gone in zip(cells, missing, strict=True)]
    return pd.Series(text, index=index)
