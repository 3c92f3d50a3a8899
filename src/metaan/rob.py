"""Risk-of-bias judgements (RoB 2): one table per study set, and robvis's summary.

A :class:`RobTable` holds one judgement per study and domain (D1 to D5 and the
overall judgement of RoB 2), with an optional weight per study (its weight in a
meta-analysis). :func:`summarise_rob` gives, for each domain, the share of the
studies (or of the weight) at each level, which is what robvis's summary bar
chart draws; :mod:`metaan.plots` draws it and the traffic-light plot.

References
----------
Sterne, J. A. C., et al. (2019). RoB 2: a revised tool for assessing risk of
bias in randomised trials. *BMJ*, 366, l4898.

McGuinness, L. A., & Higgins, J. P. T. (2021). Risk-of-bias VISualization
(robvis): an R package and Shiny web app for visualizing risk-of-bias
assessments. *Research Synthesis Methods*, 12, 55-61.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from metaan._format import MINUS
from metaan.errors import InputError

__all__ = [
    "DOMAINS",
    "DOMAIN_NAMES",
    "LEVELS",
    "LEVEL_NAMES",
    "RobSummary",
    "RobTable",
    "rob_level",
    "rob_table",
    "summarise_rob",
]

#: RoB 2 domains in the order they are drawn, and the column names that mean them.
DOMAINS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("D1", ("d1", "rob_d1")),
    ("D2", ("d2", "rob_d2")),
    ("D3", ("d3", "rob_d3")),
    ("D4", ("d4", "rob_d4")),
    ("D5", ("d5", "rob_d5")),
    ("Overall", ("overall", "rob_overall", "o")),
)
DOMAIN_NAMES = {
    "D1": "Bias arising from the randomisation process",
    "D2": "Bias due to deviations from intended interventions",
    "D3": "Bias due to missing outcome data",
    "D4": "Bias in measurement of the outcome",
    "D5": "Bias in selection of the reported result",
    "Overall": "Overall risk of bias",
}
#: The levels, best first: keys of :data:`LEVEL_NAMES`.
LEVELS = ("low", "some", "high", "none")
LEVEL_NAMES = {
    "low": "Low risk",
    "some": "Some concerns",
    "high": "High risk",
    "none": "No information",
}
_ALIASES = {
    "low": "low",
    "low risk": "low",
    "+": "low",
    "some concerns": "some",
    "some_concerns": "some",
    "some": "some",
    "unclear": "some",
    "moderate": "some",
    "-": "some",
    MINUS: "some",
    "high": "high",
    "high risk": "high",
    "x": "high",
    "no information": "none",
    "no_information": "none",
    "ni": "none",
    "?": "none",
}


def rob_level(value: Any, *, domain: str, study: str) -> str | None:
    """The level key of a judgement (``None`` for a blank cell)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    text = str(value).strip().lower()
    if text == "" or text == "nan":
        return None
    if text in _ALIASES:
        return _ALIASES[text]
    raise InputError(
        f"risk-of-bias judgement {value!r} in {domain} is not a RoB 2 judgement",
        study=study,
        column=domain,
        fix="use Low, Some concerns, High or No information",
    )


@dataclass(frozen=True)
class RobTable:
    """One RoB 2 judgement per study and domain (level keys; ``None`` = blank)."""

    studies: tuple[str, ...]
    domains: tuple[str, ...]
    judgements: tuple[tuple[str | None, ...], ...]
    weights: tuple[float, ...] | None = None

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(
            [[LEVEL_NAMES.get(j or "", "") for j in row] for row in self.judgements],
            columns=list(self.domains),
        )
        frame.insert(0, "study", list(self.studies))
        if self.weights is not None:
            frame["weight"] = list(self.weights)
        return frame


def _domain_columns(data: pd.DataFrame) -> list[tuple[str, str]]:
    lookup = {str(c).strip().lower(): str(c) for c in data.columns}
    found = []
    for domain, aliases in DOMAINS:
        name = next((lookup[a] for a in (domain.lower(), *aliases) if a in lookup), None)
        if name is not None:
            found.append((domain, name))
    if not found:
        raise InputError(
            "the table has no RoB 2 columns",
            fix="name them D1 ... D5 and Overall, or rob_d1 ... rob_d5 and rob_overall",
        )
    return found


def rob_table(data: pd.DataFrame, *, study: str = "study", weight: str | None = None) -> RobTable:
    """The RoB 2 judgements of a table, one study per row.

    Parameters
    ----------
    data
        A table with a study column and RoB 2 columns (``D1`` ... ``D5`` and
        ``Overall``, or ``rob_d1`` ... ``rob_overall``). A study may have several
        rows (one per comparison) if they carry the same judgements; their
        weights are added.
    study
        The column naming the study.
    weight
        A column of weights (e.g. the weights of a meta-analysis), or ``None``.

    Raises
    ------
    InputError
        A missing column, a value that is not a RoB 2 judgement, rows of one
        study with different judgements, a negative weight, or no judgement at all.
    """
    for name in (study, weight):
        if name is not None and name not in data.columns:
            raise InputError(
                f"there is no column {name!r}",
                column=name,
                fix=f"use one of {', '.join(map(str, data.columns))}",
            )
    columns = _domain_columns(data)
    order: list[str] = []
    rows: dict[str, tuple[str | None, ...]] = {}
    weights: dict[str, float] = {}
    for _, r in data.iterrows():
        sid = str(r[study])
        levels = tuple(rob_level(r[col], domain=dom, study=sid) for dom, col in columns)
        if sid in rows and rows[sid] != levels:
            raise InputError(
                f"study {sid} has rows with different risk-of-bias judgements",
                study=sid,
                fix="give one judgement per study and domain",
            )
        if sid not in rows:
            order.append(sid)
        rows[sid] = levels
        if weight is not None:
            w = float(r[weight])
            if not w >= 0:
                raise InputError(f"weight {w} of {sid} is not >= 0", study=sid, column=weight)
            weights[sid] = weights.get(sid, 0.0) + w
    if all(j is None for s in order for j in rows[s]):
        raise InputError(
            "the table has RoB 2 columns but no judgement in them",
            fix="fill in Low, Some concerns, High or No information per study and domain",
        )
    return RobTable(
        studies=tuple(order),
        domains=tuple(dom for dom, _ in columns),
        judgements=tuple(rows[s] for s in order),
        weights=tuple(weights[s] for s in order) if weight is not None else None,
    )


@dataclass(frozen=True)
class RobSummary:
    """Per domain, the percentage of the studies (or of their weight) at each level."""

    domains: tuple[str, ...]
    levels: tuple[str, ...]
    #: ``shares[i, j]``: percent of domain ``i`` at level ``levels[j]``; rows sum to 100.
    shares: npt.NDArray[np.float64]
    weighted: bool
    k: int

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.shares, columns=[LEVEL_NAMES[x] for x in self.levels])
        frame.insert(0, "domain", list(self.domains))
        return frame


def summarise_rob(table: RobTable) -> RobSummary:
    """The share of each judgement per domain, weighted as robvis's summary plot weights it.

    Blank judgements count as "No information". With weights, a study counts
    by its weight, so the bars show how much of the evidence is at each level.
    """
    k = len(table.studies)
    if k == 0:
        raise InputError("the risk-of-bias table has no study")
    w = np.ones(k) if table.weights is None else np.asarray(table.weights, dtype=float)
    total = float(w.sum())
    if not total > 0:
        raise InputError("the weights of the risk-of-bias table add up to 0")
    codes = np.array(
        [[LEVELS.index(j or "none") for j in row] for row in table.judgements], dtype=int
    )
    shares = np.zeros((len(table.domains), len(LEVELS)))
    for j in range(len(LEVELS)):
        shares[:, j] = (w[:, None] * (codes == j)).sum(axis=0) / total * 100.0
    return RobSummary(
        domains=table.domains,
        levels=LEVELS,
        shares=shares,
        weighted=table.weights is not None,
        k=k,
    )
