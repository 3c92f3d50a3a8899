"""The estimation engine: many intercept-only meta-analyses at once, on arrays.

:func:`fit_segments` is the array-level entry point: effect sizes and sampling
variances of many independent meta-analyses, with the group of each study, in;
one array per summary number out (estimate, test, CI, tau^2 with its SE and
Q-profile CI, Q, I^2, H^2, prediction interval). :func:`metaan.fit` is a batch
of one, :func:`metaan.fit_many` the batch of a table's groups, and simulation
studies can call it directly on millions of studies. Nothing runs a Python
loop per problem: the groups are laid into padded (B, K) arrays (grouped by
size, so padding never more than doubles the work), the tau^2 estimators of
:mod:`metaan.estimators` and the solver of :mod:`metaan.solver` run on all
problems of a block together.

Before solving, each problem is centred at its common-effect estimate and
scaled by the spread of its effects (:func:`standardise`): the model is
equivariant under ``y -> (y - c) / s, v -> v / s^2, tau^2 -> tau^2 / s^2``,
so nothing changes but the floating-point range, and effects of 1e12 are
solved as precisely as effects of 1.

Inference follows metafor 3.8's ``rma.uni``: the Knapp-Hartung factor is
``s2w = RSS / (k - p)``, and 0 when ``RSS <= machine epsilon`` (all effects
equal), so the standard error is then 0, as metafor reports it
(:func:`knha_factor`, the one place the rule lives).

References
----------
Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package.
*Journal of Statistical Software*, 36(3), 1-48.

Viechtbauer, W. (2007). Confidence intervals for the amount of heterogeneity in
meta-analysis. *Statistics in Medicine*, 26(1), 37-52 (the Q-profile).

Hartung, J., & Knapp, G. (2001). A refined method for the meta-analysis of
controlled clinical trials with binary outcome. *Statistics in Medicine*, 20,
3875-3889.

Higgins, J. P. T., & Thompson, S. G. (2002). Quantifying heterogeneity in a
meta-analysis. *Statistics in Medicine*, 21(11), 1539-1558.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from metaan._dist import chi2_isf, chi2_ppf, chi2_sf, norm_isf, norm_sf, t_isf, t_sf
from metaan._numeric import divide, maximum0, sqrt, where
from metaan.estimators import (
    ITERATIVE,
    MAX_DOMINANCE,
    MAX_EFFECT,
    MAX_SCALE,
    MAX_VARIANCE,
    MIN_RELATIVE_VARIANCE,
    MIN_VARIANCE,
    Batch,
    Moments,
    Num,
    Single,
    SingleFit,
    Weighted,
    one_problem,
    out_of_range,
    outside_limits,
    ratio_form,
    rowsum,
    se_tau2_batch,
    solve,
    standardise,
    tau2_batch,
)

__all__ = [
    "FIT_FIELDS",
    "SegmentFit",
    "fit_batch",
    "fit_segments",
    "knha_factor",
    "q_profile_batch",
    "standardise",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Cells of one padded block (B x K): each of a block's arrays takes 2 MiB, so the
#: dozen of them an evaluation touches stay in the processor's cache, and a fresh
#: one costs little (fresh memory costs more than the arithmetic on ten studies);
#: per block, the Python overhead (a few hundred numpy calls) is then a few percent.
BLOCK_CELLS = 1 << 18
_EPS = float(np.finfo(float).eps)


def knha_factor(rss: Any, df: Any) -> Any:
    """The Knapp-Hartung factor ``s2w`` by which the variance of the estimates is scaled.

    ``RSS / df`` with the weights ``1/(v_i + tau^2)``; 0 where ``RSS`` is at most
    the machine epsilon (all effects equal up to rounding), as metafor 3.8's
    ``rma.uni`` sets it "to avoid the strange looking output" of a scale made of
    rounding noise. The standard error is then 0 and the test statistic infinite.
    Takes floats or arrays.
    """
    if rss.__class__ is float:
        return 0.0 if rss <= _EPS else rss / max(float(df), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rss <= _EPS, 0.0, rss / np.maximum(df, 1))


@lru_cache(maxsize=64)
def _z_crit(alpha: float) -> float:
    """The two-sided critical value of the standard normal at level ``1 - alpha``."""
    return float(norm_isf(alpha / 2.0))


class _QSource:
    """The generalised Q as a decreasing equation in tau^2: ``Q(t) = crit``, in the
    form ``1 - crit / Q(t)`` (:func:`~metaan.estimators.ratio_form`)."""

    def __init__(self, source: Batch | Single, crit: Num) -> None:
        self.source, self.crit = source, crit

    def __call__(self, t: Num, rows: Any) -> tuple[Num, Num]:
        fit = self.source.weighted(t, rows)
        crit = self.crit if rows is None else self.crit[rows]
        return ratio_form(fit.rss(), -fit.ypp_y(), crit, 0.0)


def q_profile_batch(
    source: Batch | Single,
    level: float,
    typical: Num,
    estimate: Num | None = None,
    fe: Moments | None = None,
    at_estimate: Weighted | SingleFit | None = None,
) -> dict[str, Num]:
    """Q-profile confidence limits of tau^2 (Viechtbauer 2007) for every problem.

    The limits are the tau^2 at which the generalised Q equals the upper and
    lower ``alpha/2`` quantiles of chi^2 with k - p df, truncated at 0. Q is
    convex and decreasing in tau^2, so the upper limit's search starts at the
    lower limit. ``typical`` is each problem's typical within-study variance,
    for the limits of I^2 and H^2. ``source`` is a batch, or one problem on
    floats. ``estimate`` (tau^2 of each problem, when known) is where the upper
    limit's search starts if it is above the lower limit; ``fe`` (the moments
    at tau^2 = 0, when known) saves each search its first evaluation, and
    ``at_estimate`` (the weighted fit at ``estimate``) the upper search its
    evaluation at the start.
    """
    df = source.n - source.p
    alpha = 1.0 - level / 100.0
    crit_lo = chi2_isf(alpha / 2.0, df)
    crit_hi = chi2_ppf(alpha / 2.0, df)
    first_lo = first_hi = None
    if fe is not None:
        first_lo = ratio_form(fe.rss, -fe.ypp, crit_lo, 0.0)
        first_hi = ratio_form(fe.rss, -fe.ypp, crit_hi, 0.0)
    lower = solve(source, _QSource(source, crit_lo), first=first_lo)
    start, at_start = lower, None
    if estimate is not None:
        above = estimate > lower
        start = where(above, estimate, lower)
        if at_estimate is not None:
            value, slope = ratio_form(at_estimate.rss(), -at_estimate.ypp_y(), crit_hi, 0.0)
            at_start = (where(above, value, math.nan), where(above, slope, math.nan))
    upper = solve(source, _QSource(source, crit_hi), start=start, first=first_hi, at_start=at_start)
    out: dict[str, Num] = {"tau2_ci_lb": lower, "tau2_ci_ub": upper}
    out["tau_ci_lb"], out["tau_ci_ub"] = sqrt(lower), sqrt(upper)
    for end, t in (("lb", lower), ("ub", upper)):
        out[f"I2_ci_{end}"] = 100.0 * t / (typical + t)
        out[f"H2_ci_{end}"] = t / typical + 1.0
    return out


@dataclass(frozen=True)
class SegmentFit:
    """One array per summary number, one element per problem (see :func:`fit_segments`).

    ``df`` is NaN under the z test. ``se_tau2`` and the Q-profile limits are
    NaN for a common-effect model. ``error`` is an empty string for a problem
    that was fitted, else why it was not (its numbers are then NaN).
    """

    k: IntArray
    estimate: FloatArray
    se: FloatArray
    stat: FloatArray
    df: FloatArray
    pval: FloatArray
    ci_lb: FloatArray
    ci_ub: FloatArray
    tau2: FloatArray
    se_tau2: FloatArray
    tau2_ci_lb: FloatArray
    tau2_ci_ub: FloatArray
    tau_ci_lb: FloatArray
    tau_ci_ub: FloatArray
    I2: FloatArray
    I2_ci_lb: FloatArray
    I2_ci_ub: FloatArray
    H2: FloatArray
    H2_ci_lb: FloatArray
    H2_ci_ub: FloatArray
    QE: FloatArray
    QE_df: IntArray
    QEp: FloatArray
    pi_lb: FloatArray
    pi_ub: FloatArray
    error: npt.NDArray[np.str_]

    def __len__(self) -> int:
        return int(self.k.size)


#: The numeric fields of :class:`SegmentFit`, in order.
FIT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(SegmentFit) if f.name != "error")


def _heterogeneity(source: Batch | Single, fe: Moments, tau2: Num, random: bool) -> dict[str, Num]:
    """Q (QE, its df and p-value), I^2 and H^2, and the typical within-study variance."""
    qe_df = source.n - 1.0
    qe = maximum0(fe.rss)
    qep = where(qe_df >= 1.0, chi2_sf(qe, where(qe_df >= 1.0, qe_df, 1.0)), 1.0)
    typical = divide(qe_df, fe.trp)
    if random:
        i2 = divide(100.0 * tau2, typical + tau2)
        h2 = divide(tau2, typical) + 1.0
    else:
        i2 = where(qe > 0.0, maximum0(divide(100.0 * (qe - qe_df), qe)), 0.0)
        h2 = where(qe_df > 0.0, divide(qe, qe_df), 1.0)
    return {"QE": qe, "QE_df": qe_df, "QEp": qep, "I2": i2, "H2": h2, "typical": typical}


def _inference(estimate: Num, se: Num, df: Num | None, level: float) -> dict[str, Num]:
    """Test statistic, p-value, critical value and CI (normal, or t with ``df``)."""
    alpha = 1.0 - level / 100.0
    stat = divide(estimate, se)
    if df is None:
        pval = 2.0 * norm_sf(abs(stat))
        crit = _z_crit(alpha)
    else:
        pval = 2.0 * t_sf(abs(stat), df)
        crit = t_isf(alpha / 2.0, df)
    return {
        "stat": stat,
        "pval": pval,
        "crit": crit,
        "ci_lb": estimate - crit * se,
        "ci_ub": estimate + crit * se,
    }


def _tau2(
    source: Batch | Single,
    method: str,
    fe_fit: Weighted | SingleFit,
    fe: Moments,
    fixed_tau2: tuple[Num, Num] | None,
) -> tuple[Num, Num, Weighted | SingleFit]:
    """tau^2, its SE and the weighted fit at tau^2 (fixed, estimated, or 0 under EE);
    ``fe_fit`` is the fit at tau^2 = 0 and ``fe`` its moments."""
    if method == "EE":
        zero = 0.0 if isinstance(source, Single) else np.zeros(source.size)
        return zero, zero + np.nan, fe_fit
    if fixed_tau2 is not None:
        return fixed_tau2[0], fixed_tau2[1], source.weighted(fixed_tau2[0])
    start = tau2_batch(source, "DL", fe=fe) if method in ITERATIVE else None
    tau2 = tau2_batch(source, method, start=start, fe=fe)
    fit = source.weighted(tau2)
    return tau2, se_tau2_batch(source, method, tau2, fit=fit, fe=fe), fit


def fit_batch(
    source: Batch | Single,
    *,
    method: str,
    test: str,
    level: float,
    prediction: str = "metafor",
    qprofile: bool = True,
    fixed_tau2: tuple[Num, Num] | None = None,
    centre: Num = 0.0,
    scale: Num = 1.0,
) -> dict[str, Num]:
    """Fit every intercept-only problem of a batch, or one problem on floats.

    The problems should be standardised (:func:`standardise`,
    :meth:`Single.standardised`) with the ``centre`` and ``scale`` given here;
    the numbers returned are on the data's scale. Returns one value per problem
    (arrays for a :class:`Batch`, floats for a :class:`Single`) for every field
    of :class:`SegmentFit` (``error`` aside) plus ``typical`` (the typical
    within-study variance). ``fixed_tau2`` is a tau^2 and its SE estimated
    elsewhere (on the standardised scale), used as they are, with no Q-profile
    interval.
    """
    random = method != "EE"
    n = source.n
    zero = 0.0 if isinstance(source, Single) else np.zeros(source.size)
    fe_fit = source.weighted(zero)
    fe = fe_fit.moments()
    tau2, se_tau2, fit = _tau2(source, method, fe_fit, fe, fixed_tau2)
    c, s = centre, scale
    s2 = s * s
    # Back on the data's scale: the test statistic is not invariant under centring.
    estimate = fit.intercept * s + c
    se_plain = sqrt(fit.a_inv) * s
    df: Num | None = None
    se = se_plain
    if test == "knha":
        df = n - 1.0
        se = se_plain * sqrt(knha_factor(fit.rss(), df))
    out: dict[str, Num] = {"estimate": estimate, "se": se, "tau2": tau2 * s2}
    out.update(_inference(estimate, se, df, level))
    out.update(_heterogeneity(source, fe, tau2, random))
    out["typical"] = out["typical"] * s2
    if prediction == "meta" and random:
        # R meta: t(k-1) around the random-effects SE before any Knapp-Hartung scaling.
        crit = t_isf((1.0 - level / 100.0) / 2.0, n - 1.0)
        half = crit * sqrt(se_plain * se_plain + out["tau2"])
    else:
        half = out["crit"] * sqrt(se * se + out["tau2"])
    out["pi_lb"], out["pi_ub"] = estimate - half, estimate + half
    out["df"] = zero + np.nan if df is None else df
    out["se_tau2"] = se_tau2 * s2
    if random and qprofile and fixed_tau2 is None:
        out.update(_scaled_q_profile(source, level, out["typical"] / s2, s, tau2, fe, fit))
    else:
        for name in ("tau2", "tau", "I2", "H2"):
            out[f"{name}_ci_lb"] = out[f"{name}_ci_ub"] = zero + np.nan
    del out["crit"]
    return out


def _scaled_q_profile(
    source: Batch | Single,
    level: float,
    typical: Num,
    s: Num,
    estimate: Num | None = None,
    fe: Moments | None = None,
    at_estimate: Weighted | SingleFit | None = None,
) -> dict[str, Num]:
    """The Q-profile limits of standardised problems, on the data's scale."""
    ci = q_profile_batch(source, level, typical, estimate, fe, at_estimate)
    for name in ("tau2_ci_lb", "tau2_ci_ub"):
        ci[name] = ci[name] * s * s
    for name in ("tau_ci_lb", "tau_ci_ub"):
        ci[name] = ci[name] * s
    return ci


def _blocks(sizes: IntArray) -> list[IntArray]:
    """Problems (indices, sorted by size) in blocks whose padded arrays stay small.

    Within a block the largest problem is at most twice the smallest (plus 8),
    so padding never more than doubles the cells; a block holds at most
    :data:`BLOCK_CELLS` cells unless a single problem is larger.
    """
    order = np.argsort(sizes, kind="stable")
    sorted_sizes = sizes[order]
    blocks: list[IntArray] = []
    start, total = 0, sizes.size
    while start < total:
        smallest = int(sorted_sizes[start])
        limit = 2 * smallest + 8
        stop = int(np.searchsorted(sorted_sizes, limit, side="right"))
        width = int(sorted_sizes[stop - 1])
        stop = min(stop, start + max(1, BLOCK_CELLS // max(width, 1)))
        blocks.append(order[start:stop])
        start = stop
    return blocks


def _pad(
    y: FloatArray, v: FloatArray, starts: IntArray, sizes: IntArray, block: IntArray
) -> tuple[FloatArray, FloatArray]:
    """The padded (B, K) arrays of the problems ``block`` (NaN in padded cells)."""
    width = int(sizes[block].max())
    first = int(starts[block[0]])
    if bool(np.all(sizes[block] == width)) and bool(
        np.all(starts[block] == first + width * np.arange(block.size))
    ):  # equal sizes, consecutive: the block is a view of the data, nothing padded
        end = first + width * block.size
        return y[first:end].reshape(-1, width), v[first:end].reshape(-1, width)
    col = np.arange(width)
    inside = col[None, :] < sizes[block][:, None]
    index = np.where(inside, starts[block][:, None] + col[None, :], 0)
    Y = np.where(inside, y[index], np.nan)
    V = np.where(inside, v[index], np.nan)
    return Y, V


def _outside(y: FloatArray, v: FloatArray) -> npt.NDArray[np.bool_]:
    """Which studies lie outside the absolute range (see
    :func:`~metaan.estimators.outside_limits`)."""
    inside = (np.abs(y) <= MAX_EFFECT) & (v >= MIN_VARIANCE) & (v <= MAX_VARIANCE)
    return np.asarray(~inside, dtype=np.bool_)


def _out_of_range(
    Vs: FloatArray, s: FloatArray, random: bool
) -> tuple[npt.NDArray[np.bool_], FloatArray, FloatArray]:
    """Which standardised problems of a block lie outside the numerical range (the
    rules of :func:`~metaan.estimators.out_of_range`, on arrays), with each
    problem's smallest variance and largest weight over the others' sum."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        smallest = np.nanmin(Vs, axis=1)
        w = np.where(np.isfinite(Vs), 1.0 / Vs, 0.0)
        largest = np.max(w, axis=1)
        dominance = largest / (rowsum(w) - largest)
        bad = ~(s <= MAX_SCALE) | ~(smallest >= MIN_RELATIVE_VARIANCE)
        if random:
            bad |= ~(dominance <= MAX_DOMINANCE)
    return np.asarray(bad, dtype=np.bool_), smallest, dominance


def _checks(sizes: IntArray, method: str, test: str) -> npt.NDArray[np.object_]:
    """Why each problem cannot be fitted ("" where it can), as Python strings."""
    error = np.full(sizes.size, "", dtype=object)
    error[sizes == 0] = "no study has an effect size and a sampling variance"
    if method != "EE":
        one = sizes == 1
        error[one] = "a random-effects model needs at least 2 studies; 1 has an effect size"
    elif test == "knha":
        error[sizes == 1] = "the Knapp-Hartung test needs at least 2 studies"
    return error


def fit_segments(
    yi: npt.ArrayLike,
    vi: npt.ArrayLike,
    groups: npt.ArrayLike,
    *,
    n_groups: int | None = None,
    method: str = "REML",
    test: str = "z",
    level: float = 95.0,
    prediction: str = "metafor",
    qprofile: bool = True,
) -> SegmentFit:
    """Fit an intercept-only model to every group of studies at once.

    Parameters
    ----------
    yi, vi
        Effect sizes and sampling variances of all studies (1-d, finite, vi > 0).
    groups
        The group of each study as integer codes 0..B-1 (any order). A code that
        no study has gives a problem with no studies (reported in ``error``).
    n_groups
        The number of groups B (default: the largest code + 1).
    method, test, level, prediction
        As for :func:`metaan.fit` (already checked: ``level`` in percent).
    qprofile
        Compute the Q-profile limits of tau^2, tau, I^2 and H^2 (two more
        root searches per problem).

    Returns
    -------
    SegmentFit
        One element per group, equal to :func:`metaan.fit` on that group's
        studies to about 1e-13 relative.
    """
    y = np.asarray(yi, dtype=np.float64)
    v = np.asarray(vi, dtype=np.float64)
    codes = np.asarray(groups, dtype=np.int64)
    if n_groups is None:
        n_groups = int(codes.max()) + 1 if codes.size else 0
    count = n_groups
    order = np.argsort(codes, kind="stable")
    y, v = y[order], v[order]
    sizes = np.bincount(codes, minlength=count).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    error = _checks(sizes, method, test)
    fittable = sizes >= (1 if method == "EE" and test != "knha" else 2)
    for code in np.unique(codes[order][_outside(y, v)]).tolist():
        part = slice(starts[code], starts[code] + sizes[code])
        error[code] = outside_limits(y[part], v[part])
        fittable[code] = False
    out = {name: np.full(count, np.nan) for name in FIT_FIELDS}
    ok = np.flatnonzero(fittable)
    for block in _blocks(sizes[ok]):
        problems = ok[block]
        Y, V = _pad(y, v, starts, sizes, problems)
        Ys, Vs, c, s = standardise(Y, V, np.isfinite(V))
        bad, smallest, dominance = _out_of_range(Vs, s, method != "EE")
        for i in np.flatnonzero(bad).tolist():
            error[problems[i]] = out_of_range(
                float(s[i]), float(smallest[i]), float(dominance[i]), method != "EE"
            )

        if bad.any():
            problems, Ys, Vs, c, s = problems[~bad], Ys[~bad], Vs[~bad], c[~bad], s[~bad]
            if problems.size == 0:
                continue
        res = fit_batch(
            Batch(Ys, Vs),
            method=method,
            test=test,
            level=level,
            prediction=prediction,
            qprofile=qprofile,
            centre=c,
            scale=s,
        )
        for name in FIT_FIELDS:
            if name in res:
                out[name][problems] = res[name]
    out["k"] = sizes.astype(np.float64)
    out["QE_df"] = np.maximum(sizes - 1, 0).astype(np.float64)
    return SegmentFit(
        **{name: out[name] for name in FIT_FIELDS if name not in ("k", "QE_df")},
        k=sizes,
        QE_df=np.maximum(sizes - 1, 0).astype(np.int64),
        error=error.astype(str),
    )


def _floats(res: dict[str, Num]) -> dict[str, float]:
    """The results of a problem on floats, or of a batch of one, as floats."""
    return {
        name: value if value.__class__ is float else float(value[0]) for name, value in res.items()
    }


def fit_one(
    yi: FloatArray,
    vi: FloatArray,
    *,
    method: str,
    test: str,
    level: float,
    prediction: str = "metafor",
    qprofile: bool = False,
    fixed_tau2: tuple[float, float | None] | None = None,
) -> dict[str, float]:
    """Fit one intercept-only problem (see :func:`fit_batch` and :func:`one_problem`).

    Returns each field as a float. ``fixed_tau2`` is a tau^2 (and its SE) on the
    data's scale, used as it is.
    """
    source, c, s = one_problem(yi, vi, random=method != "EE")
    fixed: tuple[Num, Num] | None = None
    if fixed_tau2 is not None:
        se = math.nan if fixed_tau2[1] is None else fixed_tau2[1]
        fixed = (fixed_tau2[0] / (s * s), se / (s * s))
        if isinstance(source, Batch):
            fixed = (np.array([fixed[0]]), np.array([fixed[1]]))
    res = fit_batch(
        source,
        method=method,
        test=test,
        level=level,
        prediction=prediction,
        qprofile=qprofile,
        fixed_tau2=fixed,
        centre=c,
        scale=s,
    )
    return _floats(res)


def q_profile_one(
    yi: FloatArray, vi: FloatArray, level: float, X: FloatArray | None = None
) -> dict[str, float]:
    """The Q-profile limits of one problem (see :func:`q_profile_batch`), on the data's scale."""
    source, _, s = one_problem(yi, vi, X)
    fe = source.weighted(0.0 if isinstance(source, Single) else np.zeros(1))
    typical = divide(source.n - source.p, fe.tr_p())
    return _floats(_scaled_q_profile(source, level, typical, s, fe=fe.moments()))
