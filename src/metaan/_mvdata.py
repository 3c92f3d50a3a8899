"""The data of a multilevel or multivariate model: rows used, design, blocks and V.

Everything here turns a user's table into arrays: which rows are used (and why the
others are not), the design matrix with R's factor coding, the blocks of the
marginal covariance (the outermost grouping joined with the clusters of the
sampling covariance) and the sampling covariance on those blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import sparse
from scipy.sparse import csgraph

from metaan._args import column_values, display_labels, study_labels
from metaan._design import INTERCEPT, design_matrix
from metaan._gls import BlockMatrix, Blocks
from metaan.errors import InputError
from metaan.io import spreadsheet_rows
from metaan.results import Exclusion

__all__ = ["INTERCEPT", "Prepared", "codes_of", "design", "nested_codes", "prepare"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


@dataclass(frozen=True)
class Prepared:
    """The rows a model uses, with their values."""

    y: FloatArray
    S_entries: tuple[IntArray, IntArray, FloatArray]
    frame: pd.DataFrame
    rows: tuple[int, ...]
    labels: tuple[str, ...]
    excluded: tuple[Exclusion, ...]
    source: str | None


def _sampling_entries(
    V: Any, vi: Any, data: pd.DataFrame | None, k: int
) -> tuple[IntArray, IntArray, FloatArray]:
    """The entries (i, j, value), i <= j, of the sampling covariance of all k rows."""
    if V is None:
        v, _ = column_values(data, vi, "vi", k, numeric=True)
        idx = np.arange(k, dtype=np.intp)
        return idx, idx.copy(), v
    if isinstance(V, BlockMatrix):
        if V.blocks.k != k:
            raise InputError(f"V has {V.blocks.k} rows but there are {k} effects")
        return V.entries()
    if isinstance(V, str) or (np.ndim(V) == 1):
        v, _ = column_values(data, V, "V", k, numeric=True)
        idx = np.arange(k, dtype=np.intp)
        return idx, idx.copy(), v
    matrix = sparse.coo_array(V)
    if matrix.shape != (k, k):
        raise InputError(f"V is {matrix.shape[0]} x {matrix.shape[1]} but there are {k} effects")
    dense_check = (matrix - matrix.T).tocoo()
    if dense_check.nnz and np.max(np.abs(dense_check.data)) > 0.0:
        raise InputError("V must be symmetric")
    keep = matrix.row <= matrix.col
    r, c, x = matrix.row[keep], matrix.col[keep], matrix.data[keep]
    diag = np.zeros(k, dtype=bool)
    diag[r[r == c]] = True
    missing = np.flatnonzero(~diag)
    r = np.concatenate([r, missing]).astype(np.intp)
    c = np.concatenate([c, missing]).astype(np.intp)
    x = np.concatenate([x, np.zeros(missing.size)]).astype(np.float64)
    return r.astype(np.intp), c.astype(np.intp), np.asarray(x, dtype=np.float64)


def prepare(
    data: pd.DataFrame | None,
    *,
    yi: Any,
    vi: Any,
    V: Any,
    columns: dict[str, Any],
    labels_arg: Any,
    source: str | None,
) -> Prepared:
    """Select the rows with an effect, a sampling variance and every named value.

    ``columns`` maps a role (e.g. ``"level study"``, ``"moderator dose"``) to a column
    name or an array; the returned frame holds one column per role, for the rows
    used. A row left out is listed with its reason.
    """
    k = len(data) if data is not None else int(np.size(yi))
    y, _ = column_values(data, yi, "yi", k, numeric=True)
    r, c, x = _sampling_entries(V, vi, data, k)
    diag = np.full(k, np.nan)
    on = r == c
    diag[r[on]] = x[on]
    frame = pd.DataFrame(index=pd.RangeIndex(k))
    for role, value in columns.items():
        values, column = column_values(data, value, role, k, numeric=False)
        # A column keeps its type (a categorical keeps the order of its levels).
        kept = values if column is None or data is None else data[column].reset_index(drop=True)
        frame[role] = kept
    base = data if data is not None else pd.DataFrame(index=pd.RangeIndex(k))
    rows = spreadsheet_rows(base)
    named = study_labels(data, labels_arg, n=k, source=source)
    labels = display_labels(named)
    checks = [
        (~np.isfinite(y), "the effect size (yi) is missing"),
        (~np.isfinite(diag), "the sampling variance is missing"),
    ] + [(pd.isna(frame[role]).to_numpy(), f"{role} is missing") for role in frame.columns]
    reasons: dict[int, str] = {}
    for missing, reason in checks:
        for i in np.flatnonzero(missing).tolist():
            reasons.setdefault(i, reason)
    keep = np.ones(k, dtype=bool)
    keep[list(reasons)] = False
    excluded = tuple(
        Exclusion(int(rows[i]), named[i], reasons[int(i)]) for i in np.flatnonzero(~keep)
    )
    new_index = np.full(k, -1, dtype=np.intp)
    new_index[keep] = np.arange(int(keep.sum()))
    both = keep[r] & keep[c]
    if np.any(~np.isfinite(x[both])):
        bad = int(np.flatnonzero(both & ~np.isfinite(x))[0])
        raise InputError(
            "a covariance in V is missing", row=int(rows[r[bad]]), study=str(labels[r[bad]])
        )
    entries = (new_index[r[both]], new_index[c[both]], x[both].astype(np.float64))
    idx = np.flatnonzero(keep)
    return Prepared(
        y=y[idx],
        S_entries=entries,
        frame=frame.iloc[idx].reset_index(drop=True),
        rows=tuple(rows[idx].tolist()),
        labels=tuple(labels[i] for i in idx),
        excluded=excluded,
        source=source,
    )


def codes_of(values: Sequence[Any] | np.ndarray) -> IntArray:
    """Integer codes of labels, numbered by first appearance."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":  # text or mixed: compare as Python objects
        arr = np.asarray(pd.Series(list(values), dtype=object))
    return np.asarray(pd.factorize(arr)[0], dtype=np.intp)


def nested_codes(frame: pd.DataFrame, names: Sequence[str]) -> list[IntArray]:
    """The units of each nested level (outer first): level j's unit is the
    combination of levels 1..j, as R's ``a/b`` builds them."""
    out: list[IntArray] = []
    current = np.zeros(len(frame), dtype=np.int64)
    for name in names:
        inner = codes_of(frame[name].to_numpy()).astype(np.int64)
        current = codes_of(current * (int(inner.max(initial=0)) + 1) + inner).astype(np.int64)
        out.append(current.astype(np.intp))
    return out


def join_blocks(outer: IntArray, S_entries: tuple[IntArray, IntArray, FloatArray]) -> Blocks:
    """Blocks joining the units of ``outer`` with the clusters of S: two rows share a
    block when they share an outer unit or are linked by a covariance."""
    r, c, x = S_entries
    link = (r != c) & (x != 0.0)
    k = outer.size
    if not np.any(link) or np.all(outer[r[link]] == outer[c[link]]):
        return Blocks.from_codes(codes_of(outer))
    n_units = int(outer.max()) + 1
    graph = sparse.coo_array(
        (
            np.ones(k + int(link.sum())),
            (
                np.concatenate([np.arange(k), r[link]]),
                np.concatenate([k + outer, c[link]]),
            ),
        ),
        shape=(k + n_units, k + n_units),
    )
    _, comp = csgraph.connected_components(graph, directed=False)
    return Blocks.from_codes(codes_of(comp[:k]))


def sampling_matrix(blocks: Blocks, entries: tuple[IntArray, IntArray, FloatArray]) -> BlockMatrix:
    r, c, x = entries
    return BlockMatrix.from_entries(blocks, r, c, x)


def design(
    frame: pd.DataFrame, mods: Sequence[str], *, intercept: bool, prefix: str = "moderator "
) -> tuple[FloatArray, tuple[str, ...]]:
    """The design matrix of the moderators ``mods`` (columns ``prefix + name`` of
    ``frame``) and its column names, coded as a meta-regression codes them
    (:mod:`metaan._design`: numbers as they are, factors as treatment dummies)."""
    moderators = frame[[prefix + name for name in mods]].set_axis(list(mods), axis=1)
    X, coding = design_matrix(moderators, intercept=intercept)
    return X, coding.names
