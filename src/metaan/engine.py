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

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special

from metaan.estimators import (
    Batch,
    Moments,
    se_tau2_batch,
    standardise,
    tau2_batch,
)
from metaan.solver import solve_decreasing

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

#: Cells of one padded block (B x K); a block's arrays then take a few tens of MiB.
BLOCK_CELLS = 1 << 21
_EPS = float(np.finfo(float).eps)


def knha_factor(rss: Any, df: Any) -> Any:
    """The Knapp-Hartung factor ``s2w`` by which the variance of the estimates is scaled.

    ``RSS / df`` with the weights ``1/(v_i + tau^2)``; 0 where ``RSS`` is at most
    the machine epsilon (all effects equal up to rounding), as metafor 3.8's
    ``rma.uni`` sets it "to avoid the strange looking output" of a scale made of
    rounding noise. The standard error is then 0 and the test statistic infinite.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rss <= _EPS, 0.0, rss / np.maximum(df, 1))


class _QSource:
    """The generalised Q of a batch as a decreasing equation in tau^2: ``Q(t) - crit``."""

    def __init__(self, batch: Batch, crit: FloatArray) -> None:
        self.batch, self.crit = batch, crit

    def __call__(self, t: FloatArray, rows: IntArray) -> tuple[FloatArray, FloatArray]:
        fit = self.batch.weighted(t, rows)
        return fit.rss() - self.crit[rows], -fit.ypp_y()


def q_profile_batch(batch: Batch, level: float, typical: FloatArray) -> dict[str, FloatArray]:
    """Q-profile confidence limits of tau^2 (Viechtbauer 2007) for every problem.

    The limits are the tau^2 at which the generalised Q equals the upper and
    lower ``alpha/2`` quantiles of chi^2 with k - p df, truncated at 0. Q is
    convex and decreasing in tau^2, so the upper limit's search starts at the
    lower limit. ``typical`` is each problem's typical within-study variance,
    for the limits of I^2 and H^2.
    """
    df = batch.n - batch.p
    alpha = 1.0 - level / 100.0
    scale = batch.scale()
    crit_lo = np.asarray(2.0 * special.gammainccinv(df / 2.0, alpha / 2.0), dtype=np.float64)
    crit_hi = np.asarray(2.0 * special.gammaincinv(df / 2.0, alpha / 2.0), dtype=np.float64)
    tol = batch.tolerance()
    lower = solve_decreasing(_QSource(batch, crit_lo), 0.0, scale, xtol=tol)
    upper = solve_decreasing(_QSource(batch, crit_hi), 0.0, scale, start=lower, xtol=tol)
    out: dict[str, FloatArray] = {"tau2_ci_lb": lower, "tau2_ci_ub": upper}
    out["tau_ci_lb"], out["tau_ci_ub"] = np.sqrt(lower), np.sqrt(upper)
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


def _heterogeneity(
    batch: Batch, fe: Moments, tau2: FloatArray, random: bool
) -> dict[str, FloatArray]:
    """Q (QE, its df and p-value), I^2 and H^2, and the typical within-study variance."""
    n = batch.n
    qe_df = n - 1.0
    qe = np.maximum(0.0, fe.rss)
    with np.errstate(divide="ignore", invalid="ignore"):
        qep = np.where(qe_df >= 1.0, special.chdtrc(np.maximum(qe_df, 1.0), qe), 1.0)
        typical = qe_df / fe.trp
        if random:
            i2 = 100.0 * tau2 / (typical + tau2)
            h2 = tau2 / typical + 1.0
        else:
            i2 = np.where(qe > 0.0, np.maximum(0.0, 100.0 * (qe - qe_df) / qe), 0.0)
            h2 = np.where(qe_df > 0.0, qe / qe_df, 1.0)
    return {"QE": qe, "QE_df": qe_df, "QEp": qep, "I2": i2, "H2": h2, "typical": typical}


def _inference(
    estimate: FloatArray, se: FloatArray, df: FloatArray | None, level: float
) -> dict[str, FloatArray]:
    """Test statistic, p-value, critical value and CI (normal, or t with ``df``)."""
    alpha = 1.0 - level / 100.0
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = estimate / se
        if df is None:
            pval = 2.0 * special.ndtr(-np.abs(stat))
            crit = np.full(estimate.size, -special.ndtri(alpha / 2.0))
        else:
            pval = 2.0 * special.stdtr(df, -np.abs(stat))
            crit = np.asarray(-special.stdtrit(df, alpha / 2.0), dtype=np.float64)
    return {
        "stat": stat,
        "pval": pval,
        "crit": crit,
        "ci_lb": estimate - crit * se,
        "ci_ub": estimate + crit * se,
    }


def fit_batch(
    batch: Batch,
    *,
    method: str,
    test: str,
    level: float,
    prediction: str = "metafor",
    qprofile: bool = True,
    fixed_tau2: tuple[FloatArray, FloatArray] | None = None,
    centre: FloatArray | None = None,
    scale: FloatArray | None = None,
) -> dict[str, FloatArray]:
    """Fit every intercept-only problem of a batch (see :func:`fit_segments`).

    The batch should be standardised (:func:`standardise`) with the ``centre``
    and ``scale`` given here; the numbers returned are on the data's scale.
    Returns one array per field of :class:`SegmentFit` (``error`` aside) plus
    ``typical`` (the typical within-study variance). ``fixed_tau2`` is a tau^2
    and its SE estimated elsewhere (on the batch's scale), used as they are,
    with no Q-profile interval.
    """
    random = method != "EE"
    n, size = batch.n, batch.size
    rows = np.arange(size)
    fe = batch.at(np.zeros(size), rows)
    if random and fixed_tau2 is not None:
        tau2, se_tau2 = fixed_tau2
        qprofile = False
    elif random:
        start = tau2_batch(batch, "DL") if method in ("REML", "ML", "PM", "EB") else None
        tau2 = tau2_batch(batch, method, start=start)
        se_tau2 = se_tau2_batch(batch, method, tau2)
    else:
        tau2, se_tau2 = np.zeros(size), np.full(size, np.nan)
    fit = batch.weighted(tau2) if random else batch.weighted(np.zeros(size))
    c = np.zeros(size) if centre is None else centre
    s = np.ones(size) if scale is None else scale
    s2 = s * s
    # Back on the data's scale: the test statistic is not invariant under centring.
    estimate = fit.b[:, 0] * s + c
    se_plain = np.sqrt(1.0 / fit.sw) * s
    df: FloatArray | None = None
    se = se_plain
    if test == "knha":
        df = n - 1.0
        se = se_plain * np.sqrt(knha_factor(fit.rss(), df))
    out: dict[str, FloatArray] = {"estimate": estimate, "se": se, "tau2": tau2 * s2}
    out.update(_inference(estimate, se, df, level))
    out.update(_heterogeneity(batch, fe, tau2, random))
    out["typical"] = out["typical"] * s2
    if prediction == "meta" and random:
        # R meta: t(k-1) around the random-effects SE before any Knapp-Hartung scaling.
        crit = -special.stdtrit(n - 1.0, (1.0 - level / 100.0) / 2.0)
        half = crit * np.sqrt(se_plain * se_plain + out["tau2"])
    else:
        half = out["crit"] * np.sqrt(se * se + out["tau2"])
    out["pi_lb"], out["pi_ub"] = estimate - half, estimate + half
    out["df"] = np.full(size, np.nan) if df is None else df
    out["se_tau2"] = se_tau2 * s2
    if random and qprofile:
        ci = q_profile_batch(batch, level, out["typical"] / s2)
        for name in ("tau2_ci_lb", "tau2_ci_ub"):
            ci[name] = ci[name] * s2
        for name in ("tau_ci_lb", "tau_ci_ub"):
            ci[name] = ci[name] * s
        out.update(ci)
    else:
        for name in ("tau2", "tau", "I2", "H2"):
            out[f"{name}_ci_lb"] = out[f"{name}_ci_ub"] = np.full(size, np.nan)
    del out["crit"]
    return out


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
    col = np.arange(width)
    inside = col[None, :] < sizes[block][:, None]
    index = np.where(inside, starts[block][:, None] + col[None, :], 0)
    Y = np.where(inside, y[index], np.nan)
    V = np.where(inside, v[index], np.nan)
    return Y, V


def _checks(sizes: IntArray, method: str, test: str) -> npt.NDArray[np.str_]:
    """Why each problem cannot be fitted ("" where it can)."""
    error = np.full(sizes.size, "", dtype=object)
    error[sizes == 0] = "no study has an effect size and a sampling variance"
    if method != "EE":
        one = sizes == 1
        error[one] = "a random-effects model needs at least 2 studies; 1 has an effect size"
    elif test == "knha":
        error[sizes == 1] = "the Knapp-Hartung test needs at least 2 studies"
    return error.astype(str)


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
    out = {name: np.full(count, np.nan) for name in FIT_FIELDS}
    ok = np.flatnonzero(error == "")
    for block in _blocks(sizes[ok]):
        problems = ok[block]
        Y, V = _pad(y, v, starts, sizes, problems)
        Ys, Vs, c, s = standardise(Y, V, np.isfinite(V))
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
        error=error,
    )


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
    """Fit one intercept-only problem: a batch of one (see :func:`fit_segments`).

    Returns each field as a float. ``fixed_tau2`` is a tau^2 (and its SE) on the
    data's scale, used as it is.
    """
    Ys, Vs, c, s = standardise(yi[None, :], vi[None, :], np.ones((1, yi.size), dtype=bool))
    fixed = None
    if fixed_tau2 is not None:
        se = np.nan if fixed_tau2[1] is None else fixed_tau2[1]
        fixed = (np.array([fixed_tau2[0]]) / s**2, np.array([se]) / s**2)
    res = fit_batch(
        Batch(Ys, Vs),
        method=method,
        test=test,
        level=level,
        prediction=prediction,
        qprofile=qprofile,
        fixed_tau2=fixed,
        centre=c,
        scale=s,
    )
    return {name: float(value[0]) for name, value in res.items()}


def q_profile_one(
    yi: FloatArray, vi: FloatArray, level: float, X: FloatArray | None = None
) -> dict[str, float]:
    """The Q-profile limits of one problem (see :func:`q_profile_batch`), on the data's scale."""
    mask = np.ones((1, yi.size), dtype=bool)
    Ys, Vs, _, s = standardise(yi[None, :], vi[None, :], mask, centre=X is None)
    batch = Batch(Ys, Vs, X)
    fe = batch.weighted(np.zeros(1))
    typical = (batch.n - batch.p) / fe.tr_p()
    res = q_profile_batch(batch, level, typical)
    s2 = float(s[0]) ** 2
    out = {name: float(value[0]) for name, value in res.items()}
    for name in ("tau2_ci_lb", "tau2_ci_ub"):
        out[name] *= s2
    for name in ("tau_ci_lb", "tau_ci_ub"):
        out[name] *= float(s[0])
    return out
