"""The frozen result of a network meta-analysis, and its tables."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from metaan._base import Result
from metaan._format import fmt, fmt_p, fmt_typeset
from metaan._json import json_list, json_number
from metaan.network._basic import Decomposition
from metaan.network._data import Contrasts
from metaan.network._table import FloatArray, IntArray
from metaan.network.ranking import SmallValues
from metaan.network.split import NetSplit
from metaan.results import Exclusion

__all__ = ["NetworkEstimates", "NetworkResult"]

Model = Literal["common", "random"]

_RATIO = frozenset({"OR", "RR"})


@dataclass(frozen=True, repr=False)
class NetworkEstimates(Result):
    """Every treatment versus every other under one model, as n x n matrices.

    Row i, column j is ``treatments[i]`` versus ``treatments[j]`` (a log ratio for OR
    and RR); the diagonal is 0 (p-values nan). ``pscore`` holds each treatment's
    P-score. ``lower_predict`` and ``upper_predict`` are the prediction interval of a
    random-effects model (t with the df of Q, as netmeta), None when Q has fewer than
    2 df or for common effects.
    """

    model: Model
    treatments: tuple[str, ...]
    measure: str | None
    level: float
    tau2: float
    TE: FloatArray
    seTE: FloatArray
    lower: FloatArray
    upper: FloatArray
    z: FloatArray
    pval: FloatArray
    pscore: FloatArray
    lower_predict: FloatArray | None = None
    upper_predict: FloatArray | None = None

    @property
    def variance(self) -> FloatArray:
        """The variance of every estimate, ``seTE ** 2``."""
        return self.seTE * self.seTE

    def _short(self) -> str:
        return f"{self.model} n={len(self.treatments)} tau2={self.tau2:.4g}"

    def to_frame(self) -> pd.DataFrame:
        """One row per ordered pair of treatments (row versus column of the matrices):
        estimate, SE, CI, z and p, and the prediction interval where there is one."""
        i, j = np.nonzero(~np.eye(len(self.treatments), dtype=bool))
        names = np.array(self.treatments, dtype=object)
        frame = pd.DataFrame({"treat1": names[i], "treat2": names[j]})
        for name in ("TE", "seTE", "lower", "upper", "z", "pval"):
            frame[name] = getattr(self, name)[i, j]
        if self.lower_predict is not None and self.upper_predict is not None:
            frame["lower_predict"] = self.lower_predict[i, j]
            frame["upper_predict"] = self.upper_predict[i, j]
        return frame

    def to_dict(self) -> dict[str, Any]:
        """Every matrix (row versus column) and the P-scores, JSON-ready."""
        out: dict[str, Any] = {
            name: [json_list(row) for row in getattr(self, name)]
            for name in ("TE", "seTE", "lower", "upper", "z", "pval")
        }
        if self.lower_predict is not None and self.upper_predict is not None:
            out["lower_predict"] = [json_list(row) for row in self.lower_predict]
            out["upper_predict"] = [json_list(row) for row in self.upper_predict]
        out["pscore"] = {
            t: json_number(p) for t, p in zip(self.treatments, self.pscore, strict=True)
        }
        return out

    def summary(self) -> str:
        """Each treatment's P-score and its estimates against every other treatment."""
        ratio = self.measure in _RATIO
        head = f"Network estimates, {self.model} effects"
        if self.model == "random":
            head += f" (tau^2 = {fmt(self.tau2)})"
        width = max(len("treatment"), *(len(t) for t in self.treatments))
        lines = [head + f"; row versus column, {self.level:g}% CI", ""]
        for i, row in enumerate(self.treatments):
            lines.append(f"{row} (P-score {fmt(float(self.pscore[i]), 2)}) versus")
            for j, col in enumerate(self.treatments):
                if i == j:
                    continue
                te, lo, hi = self.TE[i, j], self.lower[i, j], self.upper[i, j]
                if ratio:
                    te, lo, hi = math.exp(te), math.exp(lo), math.exp(hi)
                lines.append(
                    f"  {col:<{width}}  {fmt(te):>9} [{fmt(lo)}, {fmt(hi)}]  "
                    f"p = {fmt_p(float(self.pval[i, j]))}"
                )
        return "\n".join(lines)


@dataclass(frozen=True, eq=False, repr=False)
class NetworkResult(Result):
    """A network meta-analysis by the graph-theoretical method (Rücker 2012).

    ``k`` studies, ``m`` comparisons, ``n`` treatments, ``d`` designs. ``tau2`` is
    None when Q has no degrees of freedom; ``I2`` is in percent with its confidence
    interval (Higgins & Thompson 2002, as netmeta). ``decomposition`` splits Q into
    heterogeneity within designs and inconsistency between designs (None with fewer
    than two designs or two treatments). ``netsplit`` holds direct and indirect
    evidence by back-calculation. ``contrasts`` are the comparisons fitted,
    ``direct_k`` the studies comparing each pair, ``designs`` each design's studies
    and :attr:`participants` each treatment's participants (where arm sizes are known).
    """

    measure: str | None
    method: str
    tau2_fixed: bool
    level: float
    reference: str
    small_values: SmallValues
    treatments: tuple[str, ...]
    k: int
    m: int
    n: int
    d: int
    common: NetworkEstimates
    random: NetworkEstimates
    tau2: float | None
    I2: float | None
    I2_ci: tuple[float, float] | None
    Q: float
    df_Q: int
    pval_Q: float | None
    decomposition: Decomposition | None
    netsplit: NetSplit
    contrasts: Contrasts
    #: Studies comparing each pair of treatments directly (n x n).
    direct_k: IntArray
    #: Every design (set of treatments compared in one study) with its studies.
    designs: tuple[tuple[tuple[str, ...], int], ...]
    excluded: tuple[Exclusion, ...] = ()
    source: str | None = None

    @property
    def participants(self) -> FloatArray | None:
        """Participants randomised to each treatment, where the data give arm sizes."""
        return self.contrasts.participants

    @property
    def is_ratio(self) -> bool:
        """True when the effects are log ratios (OR, RR)."""
        return self.measure in _RATIO

    def estimates(self, model: str) -> NetworkEstimates:
        """The estimates of ``"common"`` or ``"random"`` effects."""
        if model == "common":
            return self.common
        if model == "random":
            return self.random
        raise ValueError(f"model is {model!r}; choose common or random")

    def index(self, treatment: str) -> int:
        """The position of a treatment in :attr:`treatments`."""
        return self.treatments.index(treatment)

    def _short(self) -> str:
        tau2 = "NA" if self.tau2 is None else f"{self.tau2:.4g}"
        i2 = "" if self.I2 is None else f" I2={self.I2:.1f}%"
        return (
            f"{self.method} k={self.k} m={self.m} n={self.n} "
            f"reference={self.reference!r} tau2={tau2}{i2} Q={self.Q:.4g} (df {self.df_Q})"
        )

    def _show(self, x: FloatArray) -> FloatArray:
        with np.errstate(over="ignore"):
            return np.exp(x) if self.is_ratio else x

    def league(self, model: str = "random", *, digits: int = 2) -> pd.DataFrame:
        """The league table: row treatment versus column treatment, ``est [lower,
        upper]`` (odds or risk ratios for OR and RR), the treatment on the diagonal."""
        est = self.estimates(model)
        show = self._show
        TE, lo, hi = show(est.TE), show(est.lower), show(est.upper)
        cells = [
            [
                self.treatments[i]
                if i == j
                else f"{fmt_typeset(TE[i, j], digits)} [{fmt_typeset(lo[i, j], digits)}, "
                f"{fmt_typeset(hi[i, j], digits)}]"
                for j in range(self.n)
            ]
            for i in range(self.n)
        ]
        frame = pd.DataFrame(cells, index=list(self.treatments), columns=list(self.treatments))
        frame.index.name = "treatment"
        return frame

    def league_dict(self, model: str = "random", *, digits: int = 2) -> dict[str, Any]:
        """The league table with its numbers: estimates and limits on the displayed
        scale (ratios for OR and RR), row versus column, and the printed cells."""
        est = self.estimates(model)
        league = self.league(model, digits=digits)
        return {
            "model": model,
            "measure": self.measure,
            "level": self.level,
            "treatments": list(self.treatments),
            "estimate": [json_list(r) for r in self._show(est.TE)],
            "lower": [json_list(r) for r in self._show(est.lower)],
            "upper": [json_list(r) for r in self._show(est.upper)],
            "cells": league.to_numpy().tolist(),
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per comparison (netmeta's order, the reference second): direct
        studies, common- and random-effects estimates with SE, CI and p, the random
        prediction interval, and direct versus indirect evidence (random effects)."""
        split = self.netsplit
        i = np.array([self.index(t) for t in split.treat1])
        j = np.array([self.index(t) for t in split.treat2])
        frame = pd.DataFrame(
            {"comparison": list(split.comparisons), "treat1": list(split.treat1)}
            | {"treat2": list(split.treat2), "k": split.k}
        )
        for est in (self.common, self.random):
            for name in ("TE", "seTE", "lower", "upper", "pval"):
                frame[f"{name}_{est.model}"] = getattr(est, name)[i, j]
        if self.random.lower_predict is not None and self.random.upper_predict is not None:
            frame["lower_predict"] = self.random.lower_predict[i, j]
            frame["upper_predict"] = self.random.upper_predict[i, j]
        r = split.random
        for name in ("proportion", "direct", "direct_se", "indirect", "indirect_se"):
            frame[name] = getattr(r, name)
        frame["diff"] = r.diff
        frame["diff_pval"] = r.pval
        return frame

    def to_dict(self) -> dict[str, Any]:
        """Every number, JSON-ready (missing values are None)."""
        dec = self.decomposition
        return {
            "measure": self.measure,
            "method": self.method,
            "tau2_fixed": self.tau2_fixed,
            "level": self.level,
            "reference": self.reference,
            "small_values": self.small_values,
            "treatments": list(self.treatments),
            "k": self.k,
            "m": self.m,
            "n": self.n,
            "d": self.d,
            "tau2": json_number(self.tau2),
            "tau": json_number(None if self.tau2 is None else math.sqrt(self.tau2)),
            "I2": json_number(self.I2),
            "I2_ci": None if self.I2_ci is None else [json_number(x) for x in self.I2_ci],
            "Q": json_number(self.Q),
            "df_Q": self.df_Q,
            "pval_Q": json_number(self.pval_Q),
            "decomposition": None if dec is None else _decomposition_dict(dec),
            "common": self.common.to_dict(),
            "random": self.random.to_dict(),
            "netsplit": self.netsplit.to_dict(),
            "excluded": [e.to_dict() for e in self.excluded],
        }

    def summary(self) -> str:
        """The summary a person reads: the network, heterogeneity and inconsistency, and
        every treatment versus the reference under both models, with P-scores."""
        from metaan.network._summary import format_network

        return format_network(self)


def _decomposition_dict(dec: Decomposition) -> dict[str, Any]:
    return {
        "Q": json_number(dec.Q),
        "df": dec.df,
        "Q_within": json_number(dec.Q_within),
        "df_within": dec.df_within,
        "pval_within": json_number(dec.pval_within),
        "Q_between": json_number(dec.Q_between),
        "df_between": dec.df_between,
        "pval_between": json_number(dec.pval_between),
        "designs": [
            {"treatments": list(names), "studies": k, "Q": json_number(q), "df": df}
            for names, k, q, df in dec.designs
        ],
    }
