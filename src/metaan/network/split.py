"""Splitting network estimates into direct and indirect evidence (netmeta's ``netsplit``).

For every pair of treatments the network estimate combines the studies that compare
them (direct evidence) with everything else (indirect evidence). Where both exist,
their difference tests the consistency of the network at that comparison.

**Back-calculation** (the default; König, Krahn & Binder 2013). The direct estimate
pools the pair's comparisons by inverse variance (τ² added for random effects). With
the proportion of direct evidence :math:`P = \\mathrm{var}(\\hat\\theta_{net}) /
\\mathrm{var}(\\hat\\theta_{dir})`, the network estimate is
:math:`P\\,\\hat\\theta_{dir} + (1 - P)\\,\\hat\\theta_{ind}`, so

.. math:: \\hat\\theta_{ind} = \\frac{\\hat\\theta_{net} - P\\,\\hat\\theta_{dir}}{1 - P},
    \\qquad \\mathrm{var}(\\hat\\theta_{ind}) = \\frac{\\mathrm{var}(\\hat\\theta_{net})}{1-P}.

**SIDDE** (separate indirect from direct design evidence; Efthimiou et al. 2019): the
indirect estimate is the network estimate of the network without the studies that
compare the pair, refitted with its own τ².

Then, as netmeta: a direct estimate whose share of the common-effect evidence is under
``tol_direct`` is dropped; an indirect estimate where the direct evidence is
(nearly) all there is is dropped; a pair no study compares has the network estimate as
its indirect estimate. The difference direct − indirect is tested with a z test
(Bucher et al. 1997).

References
----------
König, J., Krahn, U., & Binder, H. (2013). Visualizing the flow of evidence in network
meta-analysis and characterizing mixed treatment comparisons. *Statistics in
Medicine*, 32(30), 5414-5429.

Dias, S., Welton, N. J., Caldwell, D. M., & Ades, A. E. (2010). Checking consistency in
mixed treatment comparison meta-analysis. *Statistics in Medicine*, 29(7-8), 932-944.

Efthimiou, O., Rücker, G., Schwarzer, G., Higgins, J. P. T., Egger, M., & Salanti, G.
(2019). Network meta-analysis of rare events using the Mantel-Haenszel method.
*Statistics in Medicine*, 38(16), 2992-3012 (the SIDDE approach).

Bucher, H. C., Guyatt, G. H., Griffith, L. E., & Walter, S. D. (1997). The results of
direct and indirect treatment comparisons in meta-analysis of randomized controlled
trials. *Journal of Clinical Epidemiology*, 50(6), 683-691.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from metaan._base import Result
from metaan._dist import norm_isf, norm_sf
from metaan._format import fmt, fmt_p
from metaan._json import json_list
from metaan.network._basic import KrahnFits
from metaan.network._data import Contrasts
from metaan.network._graph import GraphFit
from metaan.network._table import FloatArray, IntArray

__all__ = ["SPLIT_METHODS", "NetSplit", "SplitEstimates", "SplitMethod"]

SplitMethod = Literal["back-calculation", "SIDDE"]
SPLIT_METHODS: tuple[SplitMethod, ...] = ("back-calculation", "SIDDE")

#: netmeta's ``tol.direct``.
TOL_DIRECT = 5e-4
#: netmeta's threshold for a proportion of exactly 0 or 1.
_NEAR = float(np.finfo(np.float64).eps ** 0.5)


@dataclass(frozen=True)
class SplitEstimates:
    """Direct, indirect and network estimates of every comparison under one model.

    Arrays run over :attr:`NetSplit.comparisons`; nan where an estimate does not
    exist. ``proportion`` is the proportion of direct evidence.
    """

    model: Literal["common", "random"]
    proportion: FloatArray
    network: FloatArray
    network_se: FloatArray
    direct: FloatArray
    direct_se: FloatArray
    indirect: FloatArray
    indirect_se: FloatArray
    diff: FloatArray
    diff_se: FloatArray
    z: FloatArray
    pval: FloatArray


@dataclass(frozen=True, repr=False)
class NetSplit(Result):
    """Direct and indirect evidence for every comparison, under both models.

    Comparison ``A:B`` is A versus B; pairs are listed in R's order of the
    treatments, with the reference treatment second (netmeta's order).
    """

    method: SplitMethod
    level: float
    measure: str | None
    comparisons: tuple[str, ...]
    treat1: tuple[str, ...]
    treat2: tuple[str, ...]
    #: Studies comparing the pair directly.
    k: IntArray
    common: SplitEstimates
    random: SplitEstimates

    def estimates(self, model: str) -> SplitEstimates:
        """The estimates of ``"common"`` or ``"random"`` effects."""
        if model not in ("common", "random"):
            raise ValueError(f"model is {model!r}; choose common or random")
        return self.common if model == "common" else self.random

    def to_frame(self, model: str = "random") -> pd.DataFrame:
        """One row per comparison: k, the proportion of direct evidence, the network,
        direct and indirect estimates with their SEs and CIs, and the test of direct
        versus indirect."""
        e = self.estimates(model)
        crit = norm_isf((1.0 - self.level / 100.0) / 2.0)
        frame = pd.DataFrame(
            {"comparison": list(self.comparisons), "treat1": list(self.treat1)}
            | {"treat2": list(self.treat2), "k": self.k, "proportion": e.proportion}
        )
        for name in ("network", "direct", "indirect"):
            est, se = getattr(e, name), getattr(e, f"{name}_se")
            frame[name] = est
            frame[f"{name}_se"] = se
            frame[f"{name}_lower"] = est - crit * se
            frame[f"{name}_upper"] = est + crit * se
        frame["diff"] = e.diff
        frame["diff_se"] = e.diff_se
        frame["z"] = e.z
        frame["pval"] = e.pval
        return frame

    def _short(self) -> str:
        both = int(np.sum(np.isfinite(self.random.pval)))
        return f"{self.method} comparisons={len(self.comparisons)} with_both={both}"

    def summary(self) -> str:
        """Direct, indirect and network estimates (random effects) of every comparison
        with both kinds of evidence, and the test of their difference."""
        e = self.random
        ratio = self.measure in ("OR", "RR")
        show: Callable[[float], float] = (lambda x: float(np.exp(x))) if ratio else float
        crit = norm_isf((1.0 - self.level / 100.0) / 2.0)
        both = np.flatnonzero(np.isfinite(e.direct) & np.isfinite(e.indirect))
        lines = [
            f"Direct versus indirect evidence ({self.method}, random effects; {self.level:g}% CI)",
            f"{len(both)} of {len(self.comparisons)} comparisons have both.",
        ]
        for c in both:
            lines.append("")
            lines.append(
                f"{self.comparisons[c]}  (k = {int(self.k[c])}, direct share "
                f"{fmt(float(e.proportion[c]), 2)})"
            )
            for name in ("network", "direct", "indirect"):
                est, se = float(getattr(e, name)[c]), float(getattr(e, f"{name}_se")[c])
                lo, hi = show(est - crit * se), show(est + crit * se)
                lines.append(f"  {name:<8}  {fmt(show(est)):>9} [{fmt(lo)}, {fmt(hi)}]")
            lines.append(
                f"  direct - indirect: {fmt(float(e.diff[c]))} (SE {fmt(float(e.diff_se[c]))}),"
                f" z = {fmt(float(e.z[c]), 2)}, p = {fmt_p(float(e.pval[c]))}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Every number, JSON-ready (missing values are None)."""
        out: dict[str, Any] = {
            "method": self.method,
            "level": self.level,
            "comparison": list(self.comparisons),
            "k": json_list(self.k),
        }
        for model in ("common", "random"):
            frame = self.to_frame(model).drop(columns=["comparison", "treat1", "treat2", "k"])
            out[model] = {name: json_list(frame[name].to_numpy()) for name in frame.columns}
        return out


def comparison_order(c: Contrasts, reference: int) -> tuple[IntArray, IntArray]:
    """netmeta's order of comparisons: pairs i < j in R's order, turned to j:i where i
    is the reference (so the reference is always second)."""
    i, j = np.triu_indices(c.n, 1)
    swap = i == reference
    return np.where(swap, j, i).astype(np.intp), np.where(swap, i, j).astype(np.intp)


def direct_estimates(c: Contrasts, tau2: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Inverse-variance pooled direct estimate of every pair (n x n: row versus column),
    its SE and the number of comparisons, from the comparisons' own variances plus τ²."""
    w = 1.0 / (c.v + tau2)
    pair = c.pair()
    size = c.n * c.n
    sw = np.bincount(pair, weights=w, minlength=size).reshape(c.n, c.n)
    swy = np.bincount(pair, weights=w * c.y, minlength=size).reshape(c.n, c.n)
    count = np.bincount(pair, minlength=size).reshape(c.n, c.n).astype(float)
    sw, swy, count = sw + sw.T, swy - swy.T, count + count.T
    with np.errstate(invalid="ignore", divide="ignore"):
        return swy / sw, np.sqrt(1.0 / sw), count


def back_calculation(
    krahn: KrahnFits, fit: GraphFit
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """n x n matrices at the fit's τ²: proportion of direct evidence, direct estimate
    and SE, indirect estimate and SE, as netmeta computes them before its
    missing-value rules."""
    direct, direct_se, count = direct_estimates(krahn.c, fit.tau2)
    with np.errstate(invalid="ignore"):
        P = np.where(count > 0, krahn.variance(fit.tau2) / direct_se**2, 0.0)
    usable = np.where(np.abs(P) < _NEAR, 0.0, direct)
    P_na = np.where((np.abs(P - 1.0) < _NEAR) | (P > 1.0), np.nan, P)
    TE = fit.TE
    with np.errstate(invalid="ignore", divide="ignore"):
        indirect = (TE - P_na * usable) / (1.0 - P_na)
        indirect_se = np.sqrt(fit.variance / (1.0 - P_na))
    return P, direct, direct_se, indirect, indirect_se


def split_estimates(
    model: Literal["common", "random"],
    fit: GraphFit,
    P: FloatArray,
    P_common: FloatArray,
    direct: tuple[FloatArray, FloatArray],
    indirect: tuple[FloatArray, FloatArray],
    count: FloatArray,
    order: tuple[IntArray, IntArray],
) -> SplitEstimates:
    """Apply netmeta's missing-value rules (see the module docstring) and test the
    difference, for the comparisons in ``order``."""
    i, j = order
    d, d_se = direct[0][i, j], direct[1][i, j]
    ind, ind_se = indirect[0][i, j], indirect[1][i, j]
    drop_direct = np.abs(P_common[i, j]) < TOL_DIRECT
    d = np.where(drop_direct, np.nan, d)
    d_se = np.where(drop_direct, np.nan, d_se)
    drop_indirect = np.abs(P[i, j] - 1.0) < TOL_DIRECT
    ind = np.where(drop_indirect, np.nan, ind)
    ind_se = np.where(drop_indirect, np.nan, ind_se)
    none = count[i, j] == 0
    net, net_se = fit.TE[i, j], np.sqrt(fit.variance[i, j])
    ind = np.where(none, net, ind)
    ind_se = np.where(none, net_se, ind_se)
    diff = d - ind
    diff_se = np.sqrt(d_se**2 + ind_se**2)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = diff / diff_se
    pval = 2.0 * norm_sf(np.abs(z))
    return SplitEstimates(model, P[i, j], net, net_se, d, d_se, ind, ind_se, diff, diff_se, z, pval)


#: A refit of a sub-network: the common- and random-effects estimates (n x n) and
#: their variances, in the numbering of the full network (nan for an absent
#: treatment), or None when the sub-network is not connected.
Refit = Callable[[Contrasts], tuple[tuple[FloatArray, FloatArray], ...] | None]


def sidde_indirect(
    c: Contrasts, refit: Refit
) -> tuple[tuple[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]:
    """Indirect estimates (common, random; n x n estimate and SE) by SIDDE: for each
    pair with direct evidence, the network estimate without the studies comparing it."""
    shape = (c.n, c.n)
    out = [np.full(shape, np.nan) for _ in range(4)]
    pair = c.pair()
    for p in np.unique(pair):
        a, b = divmod(int(p), c.n)
        with_pair = np.unique(c.study[pair == p])
        keep = ~np.isin(c.study, with_pair)
        if not keep.any():
            continue
        sub = c.subset(keep)
        present = np.union1d(sub.t1, sub.t2)
        if a not in present or b not in present:
            continue
        fits = refit(sub)
        if fits is None:
            continue
        for k, (TE, var) in enumerate(fits):
            out[2 * k][a, b], out[2 * k][b, a] = TE[a, b], TE[b, a]
            out[2 * k + 1][a, b] = out[2 * k + 1][b, a] = np.sqrt(var[a, b])
    return (out[0], out[1]), (out[2], out[3])
