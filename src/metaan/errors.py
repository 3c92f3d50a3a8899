"""One exception tree for everything metaan refuses to do.

Every error a user can cause is a :class:`MetaanError`. The CLI catches it,
prints its one-line message and exits with status 2; it never shows a
traceback for a user's mistake.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

__all__ = [
    "ConvergenceError",
    "InputError",
    "MetaanError",
    "NotEstimableError",
    "SpecError",
    "raise_at_first",
]


class MetaanError(Exception):
    """Base class of every error metaan raises on purpose."""


class InputError(MetaanError, ValueError):
    """Bad input data, located as precisely as the caller knows.

    The message reads ``FILE row R (STUDY): column COL: PROBLEM; FIX`` with the
    parts that are known. ``row`` is the row as a spreadsheet shows it: the
    header is row 1, so the first data row is row 2.

    Parameters
    ----------
    problem
        What is wrong, e.g. ``"sd1i is -3.2; a standard deviation must be > 0"``.
    file, row, column, study
        Where it is. Any may be ``None`` when not known.
    fix
        How to fix it, e.g. ``"correct the value or leave the cell blank"``.
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
        study: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = file
        self.row = row
        self.column = column
        self.study = study
        self.fix = fix
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = []
        if self.file is not None:
            where.append(str(self.file))
        if self.row is not None:
            where.append(f"row {self.row}" + (f" ({self.study})" if self.study else ""))
        elif self.study:
            where.append(f"study {self.study}")
        if self.column is not None:
            where.append(f"column {self.column}")
        text = ": ".join([*where, self.problem]) if where else self.problem
        if self.fix:
            text += f"; {self.fix}"
        return text

    def located(self, *, file: str | None = None, row_offset: int = 0) -> InputError:
        """Return a copy that names ``file`` and shifts the row by ``row_offset``."""
        return InputError(
            self.problem,
            file=file if file is not None else self.file,
            row=None if self.row is None else self.row + row_offset,
            column=self.column,
            study=self.study,
            fix=self.fix,
        )


class NotEstimableError(MetaanError):
    """The model cannot be estimated from these data (e.g. too few studies,
    or as many parameters as studies), as metafor also refuses."""


class ConvergenceError(MetaanError):
    """An estimating equation has no solution for these data."""


class SpecError(MetaanError):
    """A report specification is invalid (unknown key, wrong type, bad path)."""


class _Indexed(Protocol):
    """Integers by position: a sequence or a one-dimensional numpy array."""

    def __len__(self) -> int: ...

    def __getitem__(self, i: int, /) -> Any: ...


def raise_at_first(
    where: _Indexed,
    problem: Callable[[int], str],
    *,
    file: str | None,
    rows: _Indexed,
    column: str,
    studies: Sequence[str | None],
    fix: str,
) -> None:
    """Raise :class:`InputError` at the first of the positions ``where``, if any.

    The message names that row (``rows`` gives each position's spreadsheet row,
    ``studies`` its study) and counts the others as "(and N more rows like it)".
    """
    if len(where) == 0:
        return
    i = int(where[0])
    text = problem(i)
    if len(where) > 1:
        more = len(where) - 1
        text += f" (and {more} more row{'s' if more > 1 else ''} like it)"
    raise InputError(text, file=file, row=int(rows[i]), column=column, study=studies[i], fix=fix)
