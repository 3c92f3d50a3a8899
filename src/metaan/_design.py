"""Moderators as a design matrix, with R's factor coding, remembered for new values.

Numbers enter a model as they are; text, booleans and pandas categoricals are
factors, coded by treatment dummies (``name[level]``) with the first level as the
reference, the levels in R's ``factor`` order (a categorical keeps its order;
numbers are sorted numerically, text as text). A model without an intercept
gives its first factor a column for every level, as R's ``~ x - 1``. The
:class:`Coding` learnt from the fitted rows codes new rows the same way, which is
what a prediction at new moderator values needs. Meta-regression
(:mod:`metaan.regression`) and the multilevel models (:mod:`metaan.multilevel`)
both build their design here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from metaan.errors import InputError, NotEstimableError

__all__ = [
    "INTERCEPT",
    "Coding",
    "as_moderator_rows",
    "design_matrix",
    "is_factor",
    "learn_coding",
    "level_name",
    "ordered_levels",
]

FloatArray = npt.NDArray[np.float64]

#: Name of the intercept column, as metafor names it.
INTERCEPT = "intrcpt"

#: What :func:`pandas.api.types.infer_dtype` calls a column of numbers.
_NUMERIC_KINDS = frozenset({"integer", "floating", "mixed-integer-float", "decimal"})


def level_name(value: Any) -> str:
    """The text of a categorical value: whole floats lose their ``.0`` (``2.0`` -> ``"2"``)."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def is_factor(col: pd.Series) -> bool:
    """Text, boolean and pandas categorical columns are factors; numbers are covariates
    (also in an object column, recognised by pandas' dtype inference)."""
    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
        return True
    if pd.api.types.is_numeric_dtype(dtype):
        return False
    return pd.api.types.infer_dtype(col, skipna=True) not in _NUMERIC_KINDS


def ordered_levels(col: pd.Series) -> list[str]:
    """The levels of a categorical column in R's ``factor`` order.

    A pandas categorical keeps the order of its categories (those present); any
    other column is sorted: numerically when its values are numbers, else as text.
    """
    present = col[col.notna()]
    if isinstance(col.dtype, pd.CategoricalDtype):
        seen = set(present.astype(object).tolist())
        return [level_name(c) for c in col.cat.categories if c in seen]
    values = list(dict.fromkeys(present.tolist()))
    if pd.api.types.infer_dtype(present, skipna=True) in _NUMERIC_KINDS:
        values.sort(key=float)
        return list(dict.fromkeys(level_name(v) for v in values))
    return sorted({level_name(v) for v in values})


@dataclass(frozen=True)
class Coding:
    """How moderator values become the columns of a design matrix.

    ``levels[j]`` is None for a numeric moderator ``moderators[j]``, else the
    levels of the factor in coding order (the first is the reference, unless it
    is the model's first factor and there is no intercept: then every level gets
    a column).
    """

    moderators: tuple[str, ...]
    levels: tuple[tuple[str, ...] | None, ...]
    intercept: bool

    @property
    def _full(self) -> int | None:
        """The factor coded with a column for every level (no intercept), if any."""
        if self.intercept:
            return None
        return next((j for j, lev in enumerate(self.levels) if lev is not None), None)

    def _used(self, j: int) -> tuple[str, ...]:
        levels = self.levels[j]
        assert levels is not None
        return levels if j == self._full else levels[1:]

    @property
    def names(self) -> tuple[str, ...]:
        """The design columns: ``intrcpt``, then each moderator (``name[level]`` for dummies)."""
        out = [INTERCEPT] if self.intercept else []
        for j, name in enumerate(self.moderators):
            if self.levels[j] is None:
                out.append(name)
            else:
                out += [f"{name}[{lev}]" for lev in self._used(j)]
        return tuple(out)

    @property
    def factor_levels(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Each factor with its levels, in coding order."""
        return tuple(
            (name, lev) for name, lev in zip(self.moderators, self.levels, strict=True) if lev
        )

    @property
    def reference_levels(self) -> tuple[tuple[str, str], ...]:
        """Each factor coded by treatment dummies, with its reference level."""
        return tuple(
            (name, lev[0])
            for j, (name, lev) in enumerate(zip(self.moderators, self.levels, strict=True))
            if lev is not None and j != self._full
        )

    def matrix(self, frame: pd.DataFrame, *, what: str = "moderator") -> FloatArray:
        """The design matrix of ``frame`` (one column per moderator, no missing value).

        Raises
        ------
        InputError
            A moderator missing from ``frame``, a value that is not a number where
            one is needed, or a level the model has not seen.
        """
        cols: list[FloatArray] = [np.ones(len(frame))] if self.intercept else []
        for j, name in enumerate(self.moderators):
            if name not in frame.columns:
                raise InputError(
                    f"the {what} {name} is not given", fix=f"give {', '.join(self.moderators)}"
                )
            if self.levels[j] is None:
                cols.append(_numbers(frame[name], name, what))
                continue
            text = frame[name].map(level_name)
            unknown = sorted(set(text) - set(self.levels[j] or ()))
            if unknown:
                raise InputError(
                    f"the {what} {name} has no level {unknown[0]!r} in the model",
                    column=name,
                    fix=f"use one of {', '.join(self.levels[j] or ())}",
                )
            cols += [np.asarray(text == lev, dtype=np.float64) for lev in self._used(j)]
        if not cols:
            raise InputError(
                "the model has neither an intercept nor moderators",
                fix="keep the intercept or name at least one moderator",
            )
        return np.column_stack(cols).astype(np.float64)


def _numbers(col: pd.Series, name: str, what: str) -> FloatArray:
    if is_factor(col):
        bad = next(
            (v for v in col if isinstance(v, bool) or not isinstance(v, int | float | np.number)),
            col.iloc[0],
        )
        raise InputError(
            f"the {what} {name} is numeric in the model, but {bad!r} is not a number",
            column=name,
        )
    return np.asarray(pd.to_numeric(col).to_numpy(dtype=np.float64))


def learn_coding(frame: pd.DataFrame, *, intercept: bool, what: str = "moderator") -> Coding:
    """The coding of the moderators in ``frame`` (the rows a model is fitted to).

    Raises
    ------
    InputError
        A moderator named ``intrcpt``.
    NotEstimableError
        A factor coded by treatment dummies with a single level among these rows.
    """
    levels: list[tuple[str, ...] | None] = []
    full_left = not intercept
    for name in frame.columns:
        if name == INTERCEPT:
            raise InputError(
                f"a {what} may not be called {INTERCEPT!r}", column=name, fix="rename the column"
            )
        col = frame[name]
        if not is_factor(col):
            levels.append(None)
            continue
        found = tuple(ordered_levels(col))
        if len(found) < 2 and not full_left:
            raise NotEstimableError(
                f"the {what} {name} has a single level ({found[0] if found else 'none'}) "
                "among the studies used; a categorical moderator needs at least two"
            )
        full_left = False
        levels.append(found)
    return Coding(tuple(str(c) for c in frame.columns), tuple(levels), intercept)


def design_matrix(
    frame: pd.DataFrame, *, intercept: bool, what: str = "moderator"
) -> tuple[FloatArray, Coding]:
    """The design matrix of ``frame`` and the coding that made it (see :class:`Coding`)."""
    coding = learn_coding(frame, intercept=intercept, what=what)
    return coding.matrix(frame, what=what), coding


def as_moderator_rows(values: Any, names: Sequence[str]) -> pd.DataFrame:
    """New moderator values as a table: a DataFrame, or a mapping of name to a value
    or values. A name that is not a moderator of the model is an error."""
    if isinstance(values, pd.DataFrame):
        frame = values.reset_index(drop=True)
    else:
        columns = {str(k): np.atleast_1d(np.asarray(v, dtype=object)) for k, v in values.items()}
        n = max((v.size for v in columns.values()), default=0)
        if any(v.size not in (1, n) for v in columns.values()):
            sizes = ", ".join(f"{k}: {v.size}" for k, v in columns.items())
            raise InputError(
                f"the moderator values differ in length ({sizes})",
                fix="give each moderator one value, or the same number of values",
            )
        frame = pd.DataFrame({k: list(np.resize(v, n)) for k, v in columns.items()})
    frame.columns = [str(c) for c in frame.columns]
    extra = [c for c in frame.columns if c not in names]
    if extra:
        raise InputError(
            f"{', '.join(extra)} {'is' if len(extra) == 1 else 'are'} not a moderator of the "
            "model and would be ignored",
            fix=f"give the moderators {', '.join(names)}",
        )
    return frame
