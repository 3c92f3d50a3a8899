"""Fitting a network meta-analysis: :func:`fit_network` and :func:`netsplit`.

The model is netmeta's (version 3.4): the graph-theoretical method with multi-arm
reweighting (:mod:`metaan.network._graph`), τ² by its generalised DerSimonian-Laird
estimator or by REML (:mod:`metaan.network._basic`), the design-by-treatment
decomposition of Q, P-scores and back-calculated direct and indirect evidence. Every
number is checked against netmeta's in ``tests/reference/netmeta``.

References
----------
Rücker, G. (2012). Network meta-analysis, electrical networks and graph theory.
*Research Synthesis Methods*, 3(4), 312-324.

Balduzzi, S., Rücker, G., Nikolakopoulou, A., et al. (2023). netmeta: An R package for
network meta-analysis using frequentist methods. *Journal of Statistical Software*,
106(2), 1-40.

Higgins, J. P. T., & Thompson, S. G. (2002). Quantifying heterogeneity in a
meta-analysis. *Statistics in Medicine*, 21(11), 1539-1558 (I² and its interval).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal, TypeAlias, get_args

import numpy as np
import pandas as pd

from metaan._args import check_level, study_labels
from metaan._dist import chi2_sf, norm_isf, norm_sf, t_isf
from metaan.errors import InputError
from metaan.io import spreadsheet_rows
from metaan.network._basic import Decomposition, KrahnFits, decomposition, likelihood_tau2
from metaan.network._data import Contrasts, contrasts_from, read_contrasts, rows_text
from metaan.network._graph import GraphFit, degrees_of_freedom, dl_tau2, graph_fit
from metaan.network._table import FloatArray, IntArray, components
from metaan.network.pairwise import arm_comparisons
from metaan.network.ranking import SmallValues, check_small_values, pscores
from metaan.network.results import NetworkEstimates, NetworkResult
from metaan.network.split import (
    SPLIT_METHODS,
    NetSplit,
    back_calculation,
    comparison_order,
    direct_estimates,
    sidde_indirect,
    split_estimates,
)
from metaan.results import Exclusion

__all__ = ["NETWORK_METHODS", "NetworkMethod", "fit_network", "netsplit"]

NetworkMethod: TypeAlias = Literal["DL", "REML", "ML"]
"""τ² estimators of a network: netmeta's generalised DerSimonian-Laird, REML and ML."""

NETWORK_METHODS: tuple[NetworkMethod, ...] = get_args(NetworkMethod)


def fit_network(
    data: pd.DataFrame,
    *,
    study: str = "study",
    treatment: str | None = None,
    events: str | None = None,
    n: str | None = None,
    mean: str | None = None,
    sd: str | None = None,
    treat1: str = "treat1",
    treat2: str = "treat2",
    yi: str = "yi",
    vi: str | None = None,
    sei: str | None = None,
    measure: str | None = None,
    method: str = "DL",
    tau2: float | None = None,
    reference: str | None = None,
    small_values: str = "good",
    level: float = 95.0,
    incr: float = 0.5,
    allstudies: bool = False,
    source: str | None = None,
) -> NetworkResult:
    """Fit a network meta-analysis, common and random effects, as R's netmeta does.

    Parameters
    ----------
    data
        Either one row per arm (give ``treatment`` and the arm's numbers: ``events``
        and ``n`` for OR, RR, RD; ``mean``, ``sd`` and ``n`` for MD, SMD), or one row
        per comparison (``treat1``, ``treat2``, the effect ``yi`` of treat1 versus
        treat2 and its variance ``vi`` or standard error ``sei``; a multi-arm study
        gives all its comparisons), such as :func:`~metaan.network.pairwise` returns.
    study
        Column of the study label.
    treatment, events, n, mean, sd
        Arm-level columns (see :func:`~metaan.network.pairwise`).
    treat1, treat2, yi, vi, sei
        Comparison-level columns. Without ``vi`` and ``sei``, a column ``vi`` or
        ``sei`` is used.
    measure
        The effect measure: needed for arm-level data (OR, RR, RD, MD, SMD); for
        comparisons it labels the scale (OR and RR are log ratios and are shown
        exponentiated). Taken from a table :func:`pairwise` made when not given.
    method
        τ² estimator: ``DL`` (netmeta's generalised DerSimonian-Laird, its default),
        ``REML`` or ``ML``.
    tau2
        Fix τ² at this value instead of estimating it (netmeta's ``tau.preset``,
        squared).
    reference
        The reference treatment (default: the first in R's order). It orders the
        output and, as in netmeta, picks each study's reference arm for REML.
    small_values
        ``good`` if small effects are better (a lower depression score), ``bad`` if
        large ones are (more responders); it directs the P-scores.
    level
        Confidence level of the intervals: a percentage (95) or a fraction (0.95).
    incr, allstudies
        The zero-cell rule of :func:`pairwise` for arm-level events.
    source
        The file the data came from, named in messages.

    Returns
    -------
    NetworkResult
        The frozen result: ``summary()``, ``to_frame()``, ``to_dict()``, ``league()``.

    Raises
    ------
    InputError
        Bad input: a missing column, a bad cell, a study with one arm, a treatment
        twice in a study, an incomplete or inconsistent multi-arm study, a network
        that falls into sub-networks (named), an unknown reference treatment.
    """
    chosen = _check_method(method, source)
    small = check_small_values(small_values)
    level = check_level(level)
    if tau2 is not None and not (math.isfinite(tau2) and tau2 >= 0.0):
        raise InputError(f"tau2 is {tau2}; a variance must be >= 0", file=source)
    arms = (study, treatment, events, n, mean, sd)
    comparisons = (treat1, treat2, yi, vi, sei)
    contrasts, excluded, measure = _read(
        data, *arms, *comparisons, measure, incr, allstudies, source
    )
    named = (treatment,) if treatment is not None else (treat1, treat2)
    ref = _reference(contrasts, reference, source, data, named, excluded)
    return _fit(contrasts, chosen, tau2, ref, small, level, measure, excluded, source)


def _check_method(method: str, source: str | None) -> NetworkMethod:
    text = str(method).strip().upper()
    for m in NETWORK_METHODS:
        if m == text:
            return m
    raise InputError(
        f"method is {method!r}; a network's tau^2 is estimated by DL, REML or ML",
        file=source,
        fix="use DL (netmeta's default), REML or ML",
    )


def _read(
    data: pd.DataFrame,
    study: str,
    treatment: str | None,
    events: str | None,
    n: str | None,
    mean: str | None,
    sd: str | None,
    treat1: str,
    treat2: str,
    yi: str,
    vi: str | None,
    sei: str | None,
    measure: str | None,
    incr: float,
    allstudies: bool,
    source: str | None,
) -> tuple[Contrasts, tuple[Exclusion, ...], str | None]:
    if treatment is not None:
        if measure is None:
            raise InputError(
                "arm-level data need the effect measure",
                file=source,
                fix="give measure=OR, RR, RD, MD or SMD",
            )
        made = arm_comparisons(
            data,
            measure=measure,
            study=study,
            treatment=treatment,
            events=events,
            n=n,
            mean=mean,
            sd=sd,
            incr=incr,
            allstudies=allstudies,
            source=source,
        )
        contrasts, dropped = contrasts_from(made.comparisons, source)
        return contrasts, made.excluded + dropped, made.measure
    arms: tuple[Exclusion, ...] = ()
    if isinstance(data, pd.DataFrame):
        measure = measure or data.attrs.get("measure")
        source = source or data.attrs.get("source")
        arms = tuple(data.attrs.get("excluded", ()))
        if vi is None and sei is None:
            vi = "vi" if "vi" in data.columns else None
            sei = "sei" if vi is None and "sei" in data.columns else None
    contrasts, dropped = read_contrasts(
        data,
        study=study,
        treat1=treat1,
        treat2=treat2,
        yi=yi,
        vi=vi,
        sei=sei,
        source=source,
        n1="n1",
        n2="n2",
    )
    return contrasts, arms + dropped, None if measure is None else str(measure).upper()


def _reference(
    c: Contrasts,
    reference: str | None,
    source: str | None,
    data: pd.DataFrame,
    columns: tuple[str, ...],
    excluded: tuple[Exclusion, ...],
) -> int:
    """The reference's number; a treatment not in the network is an error that says
    whether the file has it (its rows, and why they were left out) or which name is
    meant."""
    if reference is None:
        return 0
    if reference in c.treatments:
        return c.treatments.index(reference)
    rows = _rows_naming(data, columns, reference)
    choose = f"choose one of {', '.join(c.treatments)}"
    if rows:
        why = [e.reason for e in excluded if e.row in rows]
        raise InputError(
            f"the reference treatment {reference!r} is in the file ({rows_text(rows)}) but "
            f"not in the network: every comparison with it was left out"
            + (f" ({why[0]})" if why else ""),
            file=source,
            row=rows[0],
            fix=f"complete the data of its arms, or {choose}",
        )
    key = " ".join(reference.split()).casefold()
    near = [t for t in c.treatments if " ".join(t.split()).casefold() == key]
    raise InputError(
        f"the reference treatment {reference!r} is not in the network",
        file=source,
        fix=(f"did you mean {near[0]!r}? " if near else "") + choose,
    )


def _rows_naming(data: pd.DataFrame, columns: tuple[str, ...], treatment: str) -> list[int]:
    """The spreadsheet rows whose treatment columns name ``treatment``."""
    found: set[int] = set()
    rows = spreadsheet_rows(data)
    for column in columns:
        if column in data.columns:
            labels = study_labels(data, column)
            found.update(int(r) for r, t in zip(rows, labels, strict=True) if t == treatment)
    return sorted(found)


def _fits(
    c: Contrasts, method: NetworkMethod, tau2: float | None, reference: int
) -> tuple[GraphFit, GraphFit, float | None]:
    """The common- and random-effects fits and τ² (None when Q has no df)."""
    common = graph_fit(c, 0.0)
    if tau2 is not None:
        estimate: float | None = tau2
    elif method == "DL":
        estimate = dl_tau2(c, common)
    else:
        start = dl_tau2(c, common)  # None without df, when there is nothing to estimate
        estimate = (
            None
            if start is None
            else likelihood_tau2(c, reference, reml=method == "REML", start=start or None)
        )
    return common, graph_fit(c, 0.0 if estimate is None else estimate), estimate


def _fit(
    c: Contrasts,
    method: NetworkMethod,
    tau2: float | None,
    reference: int,
    small: SmallValues,
    level: float,
    measure: str | None,
    excluded: tuple[Exclusion, ...],
    source: str | None,
) -> NetworkResult:
    common, random, estimate = _fits(c, method, tau2, reference)
    df = degrees_of_freedom(c)
    designs = _count_designs(c)
    krahn = KrahnFits(c)
    dec: Decomposition | None = None
    if designs > 1 and c.n > 2:
        dec = decomposition(krahn, reference)
    I2, I2_ci = _i2(common.Q, df, level)
    split = _split(krahn, common, random, reference, level, measure)
    return NetworkResult(
        measure=measure,
        method=method,
        tau2_fixed=tau2 is not None,
        level=level,
        reference=c.treatments[reference],
        small_values=small,
        treatments=c.treatments,
        k=c.k,
        m=c.m,
        n=c.n,
        d=designs,
        common=_estimates("common", common, c.treatments, measure, level, small, None),
        random=_estimates("random", random, c.treatments, measure, level, small, df),
        tau2=estimate,
        I2=I2,
        I2_ci=I2_ci,
        Q=common.Q,
        df_Q=df,
        pval_Q=chi2_sf(common.Q, df) if df > 0 else None,
        decomposition=dec,
        netsplit=split,
        contrasts=c,
        direct_k=_study_counts(c),
        designs=_design_list(c),
        excluded=excluded,
        source=source,
    )


def _count_designs(c: Contrasts) -> int:
    return sum(int(np.unique(g.arms, axis=0).shape[0]) for g in c.groups)


def _design_list(c: Contrasts) -> tuple[tuple[tuple[str, ...], int], ...]:
    """Every design (its treatments in R's order) with its number of studies, by the
    number of arms and then in R's order."""
    out = []
    for group in c.groups:
        arms, counts = np.unique(group.arms, axis=0, return_counts=True)
        for row, count in zip(arms, counts, strict=True):
            out.append((tuple(c.treatments[int(t)] for t in row), int(count)))
    return tuple(out)


def _estimates(
    model: Literal["common", "random"],
    fit: GraphFit,
    treatments: tuple[str, ...],
    measure: str | None,
    level: float,
    small: SmallValues,
    df: int | None,
) -> NetworkEstimates:
    TE = fit.TE
    se = np.sqrt(fit.variance)
    crit = norm_isf((1.0 - level / 100.0) / 2.0)
    off = ~np.eye(TE.shape[0], dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(off, TE / se, np.nan)
    pval = np.where(off, 2.0 * norm_sf(np.abs(z)), np.nan)
    lower_p = upper_p = None
    if df is not None and df >= 2:
        # netmeta: the prediction interval uses t with the df of Q (Higgins et al. 2009).
        half = t_isf((1.0 - level / 100.0) / 2.0, df) * np.sqrt(se**2 + fit.tau2)
        lower_p = np.where(off, TE - half, 0.0)
        upper_p = np.where(off, TE + half, 0.0)
    return NetworkEstimates(
        model,
        treatments,
        measure,
        level,
        fit.tau2,
        TE,
        se,
        TE - crit * se,
        TE + crit * se,
        z,
        pval,
        pscores(TE, se, small),
        lower_p,
        upper_p,
    )


def _i2(Q: float, df: int, level: float) -> tuple[float | None, tuple[float, float] | None]:
    """I² with its interval from the test-based SE of log H (Higgins & Thompson 2002,
    as meta's ``isquared()``), in percent."""
    if df < 1:
        return None, None
    k = df + 1
    H = math.sqrt(Q / df)
    if Q > k:
        se = 0.5 * (math.log(Q) - math.log(df)) / (math.sqrt(2 * Q) - math.sqrt(2 * k - 3))
    elif k > 2:
        se = math.sqrt(1 / (2 * (k - 2)) * (1 - 1 / (3 * (k - 2) ** 2)))
    else:
        se = math.nan
    crit = norm_isf((1.0 - level / 100.0) / 2.0)
    log_h = math.log(max(H, 1.0))
    lo, hi = max(math.exp(log_h - crit * se), 1.0), max(math.exp(log_h + crit * se), 1.0)

    def i2(h: float) -> float:
        return 100.0 * (h * h - 1.0) / (h * h)

    return i2(max(H, 1.0)), (i2(lo), i2(hi)) if math.isfinite(se) else None


def _split(
    krahn: KrahnFits,
    common: GraphFit,
    random: GraphFit,
    reference: int,
    level: float,
    measure: str | None,
    sidde: tuple[tuple[FloatArray, FloatArray], tuple[FloatArray, FloatArray]] | None = None,
) -> NetSplit:
    c = krahn.c
    order = comparison_order(c, reference)
    P_c, dir_c, dir_c_se, ind_c, ind_c_se = back_calculation(krahn, common)
    P_r, dir_r, dir_r_se, ind_r, ind_r_se = back_calculation(krahn, random)
    if sidde is not None:
        (ind_c, ind_c_se), (ind_r, ind_r_se) = sidde
    count = direct_estimates(c, 0.0)[2]
    i, j = order
    return NetSplit(
        "SIDDE" if sidde is not None else "back-calculation",
        level,
        measure,
        tuple(f"{c.treatments[a]}:{c.treatments[b]}" for a, b in zip(i, j, strict=True)),
        tuple(c.treatments[a] for a in i),
        tuple(c.treatments[b] for b in j),
        _study_counts(c)[i, j],
        split_estimates(
            "common", common, P_c, P_c, (dir_c, dir_c_se), (ind_c, ind_c_se), count, order
        ),
        split_estimates(
            "random", random, P_r, P_c, (dir_r, dir_r_se), (ind_r, ind_r_se), count, order
        ),
    )


def _study_counts(c: Contrasts) -> IntArray:
    """Studies comparing each pair directly (n x n)."""
    pair = c.pair()
    counts = np.bincount(pair, minlength=c.n * c.n).reshape(c.n, c.n)
    return (counts + counts.T).astype(np.intp)


def netsplit(result: NetworkResult, method: str = "back-calculation") -> NetSplit:
    """Direct and indirect evidence for every comparison of a fitted network.

    ``back-calculation`` is what :attr:`NetworkResult.netsplit` already holds; ``SIDDE``
    refits the network without the studies of each directly compared pair (see
    :mod:`metaan.network.split`), with the same τ² method.
    """
    if method not in SPLIT_METHODS:
        raise InputError(f"method is {method!r}", fix=f"use one of {', '.join(SPLIT_METHODS)}")
    if method == "back-calculation":
        return result.netsplit
    c = result.contrasts
    chosen = _check_method(result.method, result.source)
    ref = result.index(result.reference)
    fixed = result.tau2 if result.tau2_fixed else None

    def refit(sub: Contrasts) -> tuple[tuple[FloatArray, FloatArray], ...] | None:
        present = np.union1d(sub.t1, sub.t2)
        inner = _renumber(sub, present)
        if inner is None:
            return None
        common, random, _ = _fits(inner, chosen, fixed, 0)
        out = []
        for fit in (common, random):
            TE = np.full((c.n, c.n), np.nan)
            var = np.full((c.n, c.n), np.nan)
            TE[np.ix_(present, present)] = fit.TE
            var[np.ix_(present, present)] = fit.variance
            out.append((TE, var))
        return tuple(out)

    common = graph_fit(c, 0.0)
    random = graph_fit(c, result.random.tau2)
    indirect = sidde_indirect(c, refit)
    return _split(KrahnFits(c), common, random, ref, result.level, result.measure, indirect)


def _renumber(sub: Contrasts, present: IntArray) -> Contrasts | None:
    """The sub-network on its own treatments, or None if it is not connected."""
    t1 = np.searchsorted(present, sub.t1).astype(np.intp)
    t2 = np.searchsorted(present, sub.t2).astype(np.intp)
    if np.any(components(present.size, t1, t2) != 0):
        return None
    return dataclasses.replace(
        sub,
        treatments=tuple(sub.treatments[int(p)] for p in present),
        t1=t1,
        t2=t2,
        participants=None,
    )
