"""The comparisons a network is fitted to, read and checked.

:class:`Contrasts` holds one entry per comparison of two treatments in a study, with
the treatments numbered in R's order (:mod:`metaan.network._collate`) and every
comparison turned so that its first treatment comes first in that order (as netmeta
does, negating the effect). :func:`read_contrasts` builds it from a table of
comparisons, checking what netmeta checks: a study's comparisons must be all pairs of
its treatments, each once, with effects that agree within the study (netmeta's
``chkmultiarm``), and the network must be connected.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from metaan.errors import InputError
from metaan.network._collate import sort_treatments
from metaan.network._table import FloatArray, InputTable, IntArray, components
from metaan.results import Exclusion

__all__ = [
    "Comparisons",
    "Contrasts",
    "StudyGroup",
    "complete_incidence",
    "contrasts_from",
    "read_contrasts",
    "rows_text",
]

#: netmeta's ``tol.multiarm``: the largest residual of a multi-arm study's effects
#: from a set of arm effects before they count as inconsistent.
MULTIARM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class StudyGroup:
    """The studies with ``k`` arms, laid out for batched work on all of them at once.

    ``studies`` (g,) are their numbers; ``arms`` (g, k) their treatments in R's
    order; ``edges`` (g, k(k-1)/2) their comparisons in the order (1st, 2nd),
    (1st, 3rd), ..., (2nd, 3rd), ..., the order of the rows of netmeta's complete
    edge-vertex incidence matrix ``createB(ncol = k)``.
    """

    k: int
    studies: IntArray
    arms: IntArray
    edges: IntArray


@dataclass(frozen=True)
class Contrasts:
    """The comparisons of a network (after exclusions), ``m`` of them in ``k`` studies.

    Attributes
    ----------
    treatments
        The ``n`` treatments in R's order; treatments are numbered by position.
    studies
        The study labels, in order of first appearance.
    study, t1, t2
        Per comparison: the study number and the two treatments, ``t1 < t2``.
    y, v
        The effect of ``t1`` versus ``t2`` and its sampling variance.
    rows
        The spreadsheet rows each comparison came from (one for a table of
        comparisons, the two arms' rows for one built from arms).
    narms
        The number of arms of each study.
    participants
        Participants per treatment, summed over studies, where the data give arm sizes.
    """

    treatments: tuple[str, ...]
    studies: tuple[str, ...]
    study: IntArray
    t1: IntArray
    t2: IntArray
    y: FloatArray
    v: FloatArray
    rows: tuple[tuple[int, ...], ...]
    narms: IntArray
    participants: FloatArray | None

    @property
    def n(self) -> int:
        return len(self.treatments)

    @property
    def m(self) -> int:
        return int(self.y.size)

    @property
    def k(self) -> int:
        return len(self.studies)

    @cached_property
    def groups(self) -> tuple[StudyGroup, ...]:
        """The studies grouped by their number of arms (see :class:`StudyGroup`)."""
        order = np.lexsort((self.t2, self.t1, self.study))
        out = []
        for k in np.unique(self.narms):
            studies = np.flatnonzero(self.narms == k).astype(np.intp)
            size = int(k) * (int(k) - 1) // 2
            edges = order[np.isin(self.study[order], studies)].reshape(studies.size, size)
            arms = np.column_stack([self.t1[edges[:, 0]], self.t2[edges[:, : int(k) - 1]]])
            out.append(StudyGroup(int(k), studies, arms.astype(np.intp), edges.astype(np.intp)))
        return tuple(out)

    def pair(self) -> IntArray:
        """A number per comparison identifying its pair of treatments, ``t1 * n + t2``."""
        return (self.t1 * self.n + self.t2).astype(np.intp)

    def subset(self, keep: np.ndarray) -> Contrasts:
        """The comparisons where ``keep`` holds (studies renumbered, treatments kept)."""
        kept = np.flatnonzero(keep)
        used, study = np.unique(self.study[kept], return_inverse=True)
        return Contrasts(
            self.treatments,
            tuple(self.studies[i] for i in used),
            study.reshape(-1).astype(np.intp),
            self.t1[kept],
            self.t2[kept],
            self.y[kept],
            self.v[kept],
            tuple(self.rows[i] for i in kept),
            self.narms[used],
            self.participants,
        )


@dataclass(frozen=True)
class Comparisons:
    """Comparisons as read, before checks: per comparison the study, the two
    treatments, the effect of the first versus the second and its variance, the
    source rows, the arms' sizes (where known) and why it is left out (or None)."""

    study: list[str]
    treat1: list[str]
    treat2: list[str]
    y: FloatArray
    v: FloatArray
    rows: list[tuple[int, ...]]
    n1: FloatArray | None
    n2: FloatArray | None
    reasons: list[str | None]


def contrasts_from(
    comparisons: Comparisons, source: str | None
) -> tuple[Contrasts, tuple[Exclusion, ...]]:
    """Leave out (and list) the comparisons with a reason, then build and check the
    network (see :func:`read_contrasts`)."""
    c = comparisons
    excluded = tuple(
        Exclusion(
            c.rows[i][0], c.study[i], f"comparison {c.treat1[i]} vs {c.treat2[i]} left out: {r}"
        )
        for i, r in enumerate(c.reasons)
        if r is not None
    )
    if excluded:
        keep = [i for i, r in enumerate(c.reasons) if r is None]
        c = Comparisons(
            [c.study[i] for i in keep],
            [c.treat1[i] for i in keep],
            [c.treat2[i] for i in keep],
            c.y[keep],
            c.v[keep],
            [c.rows[i] for i in keep],
            None if c.n1 is None else c.n1[keep],
            None if c.n2 is None else c.n2[keep],
            [None] * len(keep),
        )
    return _build(c, source), excluded


def read_contrasts(
    data: pd.DataFrame,
    *,
    study: str,
    treat1: str,
    treat2: str,
    yi: str,
    vi: str | None,
    sei: str | None,
    source: str | None,
    n1: str | None = None,
    n2: str | None = None,
) -> tuple[Contrasts, tuple[Exclusion, ...]]:
    """Read and check a table of comparisons (one row each); see the module docstring.

    A row without an effect or its variance (or with ``exclusion_reason`` set, as
    :func:`~metaan.network.pairwise` leaves them) is left out and listed; every other
    problem raises an InputError naming the file, row and study. With the columns of
    the two arms' sizes (``n1``, ``n2``), the participants of each treatment are
    counted.
    """
    table = InputTable.of(data, source)
    studies = table.labels(study, "study")
    first = table.labels(treat1, "first treatment (treat1)", studies=studies)
    second = table.labels(treat2, "second treatment (treat2)", studies=studies)
    y = table.numbers(yi, "effect (yi)", studies)
    if vi is not None:
        v = table.numbers(vi, "sampling variance (vi)", studies)
        with np.errstate(invalid="ignore"):
            table.fail(v <= 0, vi, studies, "but a sampling variance must be > 0")
    elif sei is not None:
        se = table.numbers(sei, "standard error (sei)", studies)
        with np.errstate(invalid="ignore"):
            table.fail(se <= 0, sei, studies, "but a standard error must be > 0")
        v = se * se
    else:
        raise InputError(
            "a table of comparisons needs the variance or the standard error of each effect",
            file=source,
            fix="name the column with vi=... or sei=...",
        )
    same = np.array([a == b for a, b in zip(first, second, strict=True)])
    table.fail(
        same,
        treat1,
        studies,
        "the same treatment on both sides",
        cells=first,
        fix="a comparison needs two different treatments",
    )
    sizes = [
        table.numbers(col, f"arm size ({col})", studies)
        if col is not None and table.has(col)
        else None
        for col in (n1, n2)
    ]
    read = Comparisons(
        studies, first, second, y, v, _source_rows(table), sizes[0], sizes[1], _reasons(table, y, v)
    )
    return contrasts_from(read, source)


def _source_rows(table: InputTable) -> list[tuple[int, ...]]:
    data = table.data
    if "row1" in data.columns and "row2" in data.columns:
        pairs = zip(data["row1"].tolist(), data["row2"].tolist(), strict=True)
        return [(int(a), int(b)) for a, b in pairs]
    return [(int(r),) for r in table.rows]


def _reasons(table: InputTable, y: FloatArray, v: FloatArray) -> list[str | None]:
    data = table.data
    given = data["exclusion_reason"].tolist() if "exclusion_reason" in data.columns else None
    out: list[str | None] = []
    for i in range(y.size):
        if given is not None and isinstance(given[i], str) and given[i]:
            out.append(given[i])
        elif math.isnan(y[i]):
            out.append("the effect is missing")
        elif math.isnan(v[i]):
            out.append("its variance (or standard error) is missing")
        else:
            out.append(None)
    return out


def _build(read: Comparisons, source: str | None) -> Contrasts:
    if not read.study:
        raise InputError("no comparison has an effect and a variance", file=source)
    treatments = sort_treatments(read.treat1 + read.treat2)
    index = {t: i for i, t in enumerate(treatments)}
    a = np.array([index[t] for t in read.treat1], dtype=np.intp)
    b = np.array([index[t] for t in read.treat2], dtype=np.intp)
    flip = a > b
    order: dict[str, int] = {}
    code = np.array([order.setdefault(s, len(order)) for s in read.study], dtype=np.intp)
    contrasts = Contrasts(
        treatments,
        tuple(order),
        code,
        np.where(flip, b, a),
        np.where(flip, a, b),
        np.where(flip, -read.y, read.y),
        read.v.copy(),
        tuple(read.rows),
        np.zeros(len(order), dtype=np.intp),
        _participants(read, code, a, b, len(treatments)),
    )
    narms = _check_studies(contrasts, source)
    contrasts = dataclasses.replace(contrasts, narms=narms)
    _check_multiarm(contrasts, source)
    _check_connected(contrasts, source)
    return contrasts


def _participants(
    read: Comparisons, code: IntArray, a: IntArray, b: IntArray, n: int
) -> FloatArray | None:
    """Participants per treatment, each arm counted once, where every size is known."""
    if read.n1 is None or read.n2 is None:
        return None
    if np.isnan(read.n1).any() or np.isnan(read.n2).any():
        return None
    arm = np.concatenate([code * n + a, code * n + b])
    size = np.concatenate([read.n1, read.n2])
    unique, first = np.unique(arm, return_index=True)
    return np.bincount(unique % n, weights=size[first], minlength=n).astype(np.float64)


def _where(c: Contrasts, members: np.ndarray) -> str:
    """The spreadsheet rows of some comparisons, in order."""
    return ", ".join(str(r) for r in sorted({r for i in members for r in c.rows[int(i)]}))


def rows_text(rows: Sequence[int], limit: int = 6) -> str:
    """``row 5`` or ``rows 2, 3, 7``; past ``limit`` rows, the first ones and how many
    more."""
    ordered = sorted(set(rows))
    if len(ordered) == 1:
        return f"row {ordered[0]}"
    shown = ", ".join(str(r) for r in ordered[:limit])
    more = len(ordered) - limit
    return f"rows {shown}" + (f" and {more} more" if more > 0 else "")


def _check_studies(c: Contrasts, source: str | None) -> IntArray:
    """Each study's comparisons are every pair of its treatments, each once."""
    pair = c.study * c.n * c.n + c.pair()
    unique, counts = np.unique(pair, return_counts=True)
    if np.any(counts > 1):
        members = np.flatnonzero(pair == unique[np.flatnonzero(counts > 1)[0]])
        s = c.studies[int(c.study[members[0]])]
        t1, t2 = c.treatments[int(c.t1[members[0]])], c.treatments[int(c.t2[members[0]])]
        raise InputError(
            f"{t1} vs {t2} appears more than once in study {s!r} (rows {_where(c, members)})",
            file=source,
            row=c.rows[int(members[-1])][0],
            study=s,
            fix="keep one row per pair of arms of a study",
        )
    arm_key = np.unique(np.concatenate([c.study * c.n + c.t1, c.study * c.n + c.t2]))
    narms = np.bincount(arm_key // c.n, minlength=c.k).astype(np.intp)
    rows = np.bincount(c.study, minlength=c.k)
    for bad in np.flatnonzero(rows != narms * (narms - 1) // 2).tolist():
        members = np.flatnonzero(c.study == bad)
        arms = np.union1d(c.t1[members], c.t2[members])
        names = ", ".join(c.treatments[int(t)] for t in arms)
        raise InputError(
            f"study {c.studies[bad]!r} compares {names} in {members.size} rows "
            f"({_where(c, members)}), but a study of {arms.size} arms needs all "
            f"{arms.size * (arms.size - 1) // 2} comparisons of its arms",
            file=source,
            row=c.rows[int(members[0])][0],
            study=c.studies[bad],
            fix="give every pair of the study's arms, or leave out the arm whose "
            "comparisons are missing",
        )
    return narms


def complete_incidence(k: int) -> FloatArray:
    """netmeta's ``createB(ncol = k)``: the edge-vertex incidence matrix of the complete
    graph on k arms, rows (1, 2), (1, 3), ..., (2, 3), ...: +1 at the first, -1 at the
    second arm."""
    a, b = np.triu_indices(k, 1)
    B = np.zeros((a.size, k))
    B[np.arange(a.size), a] = 1.0
    B[np.arange(a.size), b] = -1.0
    return B


def _check_multiarm(c: Contrasts, source: str | None) -> None:
    """netmeta's ``chkmultiarm``: the effects of a multi-arm study must be differences
    of arm effects (within :data:`MULTIARM_TOLERANCE`), and its variances sums of
    non-negative arm variances."""
    for group in c.groups:
        if group.k < 3:
            continue
        B = complete_incidence(group.k)
        y, v = c.y[group.edges], c.v[group.edges]
        resid = y - y @ (B @ np.linalg.pinv(B)).T
        arm_var = v @ np.linalg.pinv(np.abs(B)).T
        bad_effect = np.any(np.abs(resid) > MULTIARM_TOLERANCE, axis=1)
        bad_variance = np.any(arm_var < 0, axis=1)
        for g in np.flatnonzero(bad_effect | bad_variance):
            s = int(group.studies[g])
            members = group.edges[g]
            if bad_effect[g]:
                worst = float(np.max(np.abs(resid[g])))
                problem = (
                    f"the effects of multi-arm study {c.studies[s]!r} do not fit together "
                    f"(a residual of {worst:.4g}; netmeta allows {MULTIARM_TOLERANCE:g})"
                )
                fix = "check the effects and their signs: A vs C must equal A vs B plus B vs C"
            else:
                problem = (
                    f"the variances of multi-arm study {c.studies[s]!r} imply a negative "
                    "variance for an arm"
                )
                fix = "check the standard errors of the study's comparisons"
            raise InputError(
                f"{problem} (rows {_where(c, members)})",
                file=source,
                row=c.rows[int(members[0])][0],
                study=c.studies[s],
                fix=fix,
            )


def _check_connected(c: Contrasts, source: str | None) -> None:
    """One network: else an error naming each sub-network's treatments and rows, at the
    first row of the smallest sub-network (the likeliest to hold a misspelt name)."""
    label = components(c.n, c.t1, c.t2)
    roots = np.unique(label)
    count = roots.size
    if count == 1:
        return
    parts = []
    members = [np.flatnonzero(label[c.t1] == root) for root in roots]
    for root, inside in zip(roots, members, strict=True):
        names = [c.treatments[i] for i in np.flatnonzero(label == root)]
        rows = [r for i in inside for r in c.rows[int(i)]]
        parts.append("{" + ", ".join(names) + f"}} ({rows_text(rows)})")
    smallest = min(members, key=lambda m: (m.size, min(c.rows[int(i)][0] for i in m)))
    first = min(smallest, key=lambda i: c.rows[int(i)][0])
    raise InputError(
        f"the network is not connected: its treatments fall into {count} sub-networks "
        f"that no study links: {'; '.join(parts)}{_near_names(c, label)}",
        file=source,
        row=c.rows[int(first)][0],
        study=c.studies[int(c.study[first])],
        fix="check the treatment names for spelling, analyse each sub-network on its own, "
        "or add studies that compare treatments of different sub-networks",
    )


def _near_names(c: Contrasts, label: IntArray) -> str:
    """A note on treatment names in different sub-networks that differ only in case or
    spacing (``placebo`` and ``Placebo ``), the usual cause of a split network."""
    seen: dict[str, int] = {}
    for i, name in enumerate(c.treatments):
        key = " ".join(name.split()).casefold()
        j = seen.setdefault(key, i)
        if j != i and label[i] != label[j]:
            return f"; {c.treatments[j]!r} and {name!r} differ only in case or spacing"
    return ""
