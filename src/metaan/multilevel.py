"""Multilevel and multivariate meta-analysis: dependent effect sizes, as metafor's ``rma.mv``.

:func:`fit_multilevel` fits nested random effects of any depth (``random = ~ 1 |
study/esid``): effect ``i`` of unit ``u_1`` of the outermost level, unit ``u_2``
within it, and so on, is

.. math:: y_i = x_i^T \\beta + u_{1} + u_{2} + \\dots + e_i, \\qquad
    u_j \\sim N(0, \\sigma^2_j), \\quad e \\sim N(0, V),

:func:`fit_multivariate` fits correlated outcomes within studies (``random = ~
outcome | study``): the random effects of one study's outcomes have covariance
:math:`G` (CS, HCS or UN). V is the sampling covariance (from :func:`metaan.vcalc`,
or a diagonal of sampling variances). The variance components are estimated by
ML or REML with exact derivatives (:mod:`metaan._mvfit`), and the marginal
covariance is handled block by block (:mod:`metaan._gls`): no k x k matrix is
formed.

The results follow ``rma.mv``'s conventions: Wald tests (``test="z"``) or t-tests
with k - p degrees of freedom (``test="t"``); QE from the model without random
effects; QM of every coefficient but the intercept; the log-likelihood with
metafor's constants (REML includes ``log|X'X|``), its deviance, AIC, BIC and AICc;
profile-likelihood intervals of every variance component (``confint``); the
prediction interval adding every sigma^2 (or the outcome's tau^2) to the variance
of the prediction (``predict``).

References
----------
Konstantopoulos, S. (2011). Fixed effects and variance components estimation in
three-level meta-analysis. *Research Synthesis Methods*, 2, 61-76.

Berkey, C. S., Hoaglin, D. C., Antczak-Bouckoms, A., Mosteller, F., & Colditz, G.
A. (1998). Meta-analysis of multiple outcomes by regression with random effects.
*Statistics in Medicine*, 17, 2537-2550.

Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package.
*Journal of Statistical Software*, 36(3), 1-48 (metafor 3.8: ``rma.mv``,
``confint.rma.mv``, ``predict.rma``, ``anova.rma``).

Nakagawa, S., & Santos, E. S. A. (2012). Methodological issues and advances in
biological meta-analysis. *Evolutionary Ecology*, 26, 1253-1274 (I^2 per level).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from metaan._args import check_level
from metaan._covstruct import (
    CompoundSymmetry,
    HeteroCompoundSymmetry,
    Structure,
    Unstructured,
    Variances,
)
from metaan._design import level_name
from metaan._gls import BlockMatrix, GLSFit, NotPositiveDefiniteError, gls
from metaan._mvdata import (
    Prepared,
    codes_of,
    design,
    join_blocks,
    nested_codes,
    prepare,
    sampling_matrix,
)
from metaan._mvfit import Model
from metaan._mvresult import FitState, MultilevelResult, build_result
from metaan.errors import InputError, NotEstimableError

__all__ = ["METHODS", "STRUCTS", "TESTS", "fit_multilevel", "fit_multivariate"]

FloatArray = npt.NDArray[np.float64]

METHODS = ("REML", "ML")
TESTS = ("z", "t")
STRUCTS = ("CS", "HCS", "UN")


def _check(value: str, allowed: Sequence[str], name: str) -> str:
    chosen = value.upper() if name != "test" else value.lower()
    if chosen not in allowed:
        raise InputError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return chosen


def _names(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _nesting_error(prep: Prepared, rows: npt.NDArray[np.intp], message: str, fix: str) -> None:
    first = int(rows[0])
    raise InputError(
        message, file=prep.source, row=prep.rows[first], study=prep.labels[first], fix=fix
    )


def _sampling(prep: Prepared, outer: npt.NDArray[np.intp]) -> tuple[BlockMatrix, GLSFit | None]:
    """S on the blocks joining ``outer`` with V's clusters."""
    blocks = join_blocks(outer, prep.S_entries)
    return sampling_matrix(blocks, prep.S_entries), None


def _fixed_fit(prep: Prepared, X: FloatArray, S: BlockMatrix) -> GLSFit:
    """The fit without random effects (for QE and I^2), refusing a V that is not
    positive definite with the rows of the offending cluster."""
    try:
        _positive_definite(S)
        return gls(prep.y, X, S)
    except NotPositiveDefiniteError as exc:
        rows = np.flatnonzero(S.blocks.block_of_row() == exc.block)
        spread = ", ".join(str(prep.rows[i]) for i in rows[:8])
        raise InputError(
            f"the sampling covariance V is not positive definite in the cluster of rows {spread}",
            file=prep.source,
            row=prep.rows[int(rows[0])],
            study=prep.labels[int(rows[0])],
            fix="check the sampling variances and the correlation (rho) of these effects",
        ) from None


def _positive_definite(S: BlockMatrix) -> None:
    """Refuse a block whose smallest eigenvalue is 0 or below to rounding (a Cholesky
    factorisation can pass a singular block on a pivot of 1e-17)."""
    for ids, (w, _) in zip(S.blocks.ids, S.eigen, strict=True):
        bad = np.flatnonzero(np.min(w, axis=1) <= 1e-12 * np.max(np.abs(w), axis=1))
        if bad.size:
            block = int(ids[int(bad[0])])
            raise NotPositiveDefiniteError(block, f"block {block} is not positive definite")


def _start_variance(prep: Prepared, fixed: GLSFit, S: BlockMatrix) -> tuple[float, float]:
    """A typical sampling variance and a starting total heterogeneity."""
    typical = float(np.mean(S.diagonal_values()))
    spread = float(np.mean(fixed.resid**2)) - typical
    return typical, max(spread, 0.1 * typical)


def _moment_start(
    resid: FloatArray,
    S: tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], FloatArray],
    spread: float,
    units: Sequence[npt.NDArray[np.intp]],
    free: npt.NDArray[np.bool_],
) -> FloatArray:
    """Starting variances from mean squares of the fixed-effects residuals, so that
    Newton's method starts near the optimum (a few iterations fewer at large k).

    Within the units of level j, the sum of squared deviations from the unit means
    has expectation ``sum_u tr(C_u) - 1' C_u 1 / m_u`` for the covariance C of the
    residuals (one-way ANOVA, unweighted): its excess over that of the sampling
    covariance S alone, per degree of freedom, estimates the sum of the variances
    inside level j; the variance of level j is the difference between the excesses
    at levels j - 1 and j (level 0: all rows; a level of single rows: no excess).
    Each is floored at a small share of the total heterogeneity, so that no start
    sits on a boundary.
    """
    k = resid.size
    r, c, x = S
    diag = np.zeros(k)
    diag[r[r == c]] = x[r == c]
    excess = [float(np.mean(resid**2) - np.mean(diag))]
    for u in units:
        n = int(u.max()) + 1
        if n >= k:
            excess.append(0.0)
            continue
        size = np.bincount(u, minlength=n)
        means = np.bincount(u, weights=resid, minlength=n) / size
        same = u[r] == u[c]
        pair_sum = np.bincount(
            u[r[same]], weights=x[same] * np.where(r[same] == c[same], 1.0, 2.0), minlength=n
        )
        sampling = float(np.sum(diag) - np.sum(pair_sum / size))
        excess.append((float(np.sum((resid - means[u]) ** 2)) - sampling) / (k - n))
    values = np.array([excess[j] - excess[j + 1] for j in range(len(units))])
    floor = 0.1 * spread / max(len(units), 1)
    return np.where(free, np.maximum(values, floor), 0.0)


def fit_multilevel(
    data: pd.DataFrame | None = None,
    *,
    yi: str | npt.ArrayLike = "yi",
    vi: str | npt.ArrayLike = "vi",
    V: Any = None,
    levels: str | Sequence[str],
    mods: str | Sequence[str] | None = None,
    intercept: bool = True,
    method: str = "REML",
    test: str = "z",
    level: float = 95.0,
    labels: str | npt.ArrayLike | None = None,
    source: str | None = None,
) -> MultilevelResult:
    """Fit a multilevel meta-analysis with nested random effects (``~ 1 | a/b/...``).

    Parameters
    ----------
    data
        The effects, one row each; the other arguments name its columns (or are
        arrays with one value per row).
    yi, vi
        Effect sizes and sampling variances (``vi`` is used when ``V`` is not given).
    V
        The sampling covariance of all rows of ``data``: a
        :class:`~metaan._gls.BlockMatrix` (from :func:`metaan.vcalc`), a scipy sparse
        or a dense k x k array, or a column of variances.
    levels
        The grouping columns, outermost first (``["study", "esid"]`` is
        ``~ 1 | study/esid``). Inner levels are nested by combination, so labels may
        restart within each outer unit.
    mods, intercept
        Moderator columns (text columns become treatment dummies, R's coding) and
        whether the model has an intercept.
    method, test, level
        ``"REML"`` or ``"ML"``; ``"z"`` or ``"t"`` (t with k - p df); the confidence
        level as a percentage (95) or a fraction (0.95).
    labels, source
        The label of each row (a column or the labels; by default the table's
        study column, as for :func:`metaan.fit`), and the file the data came from.

    Returns
    -------
    MultilevelResult

    Raises
    ------
    InputError
        A missing column, a V that is not positive definite (naming its rows), or
        too few rows.
    """
    method = _check(method, METHODS, "method")
    test = _check(test, TESTS, "test")
    level = check_level(level)
    level_names = _names(levels)
    if not level_names:
        raise InputError("give at least one level", fix='e.g. levels=["study", "esid"]')
    mod_names = _names(mods)
    columns = {f"level {n}": n for n in level_names} | {f"moderator {m}": m for m in mod_names}
    prep = prepare(data, yi=yi, vi=vi, V=V, columns=columns, labels_arg=labels, source=source)
    _enough(prep, 2)
    units = nested_codes(prep.frame, [f"level {n}" for n in level_names])
    X, names = design(prep.frame, mod_names, intercept=intercept)
    S, _ = _sampling(prep, units[0])
    fixed = _fixed_fit(prep, X, S)
    counts = tuple(int(u.max()) + 1 for u in units)
    structure = Variances(
        tuple(f"sigma^2.{j + 1}" if len(units) > 1 else "sigma^2" for j in range(len(units))),
        tuple(c == 1 for c in counts),
    )
    patterns = [BlockMatrix.indicator(S.blocks, u) for u in units]
    typical, spread = _start_variance(prep, fixed, S)
    start = _moment_start(fixed.resid, prep.S_entries, spread, units, structure.upper > 0.0)
    model = Model(
        prep.y, X, S, patterns, reml=method == "REML", variance=typical, beta0=fixed.beta,
        nested=True,
    )  # fmt: skip
    clusters = {n: prep.frame[f"level {n}"].to_numpy() for n in level_names}
    state = FitState(model, structure, clusters, tuple(level_names), counts, None)
    return build_result(
        "multilevel", prep, names, intercept, method, test, level, state, fixed, start
    )


def _enough(prep: Prepared, minimum: int) -> None:
    if prep.y.size < minimum:
        raise NotEstimableError(
            f"only {prep.y.size} effect(s) have every value the model needs; "
            f"a multilevel model needs at least {minimum}"
        )


def _outcome_patterns(blocks: Any, outcome: npt.NDArray[np.intp], q: int) -> list[BlockMatrix]:
    """E_ab for a <= b: 1 where one row has outcome a and the other b (same block)."""
    parts = blocks.gather(outcome.astype(np.float64))
    out = []
    a_idx, b_idx = np.triu_indices(q)
    for a, b in zip(a_idx.tolist(), b_idx.tolist(), strict=True):
        values = []
        for p in parts:
            left = (p[:, :, None] == a) & (p[:, None, :] == b)
            right = (p[:, :, None] == b) & (p[:, None, :] == a)
            values.append((left | right).astype(np.float64))
        out.append(BlockMatrix(blocks, tuple(values)))
    return out


def fit_multivariate(
    data: pd.DataFrame | None = None,
    *,
    yi: str | npt.ArrayLike = "yi",
    vi: str | npt.ArrayLike = "vi",
    V: Any = None,
    outcome: str | npt.ArrayLike,
    study: str | npt.ArrayLike,
    struct: str = "UN",
    mods: str | Sequence[str] | None = None,
    method: str = "REML",
    test: str = "z",
    level: float = 95.0,
    labels: str | npt.ArrayLike | None = None,
    source: str | None = None,
) -> MultilevelResult:
    """Fit a multivariate meta-analysis of correlated outcomes (``~ outcome | study``).

    The fixed effects are one mean per outcome (``mods = ~ outcome - 1``, outcomes
    in sorted order) plus any ``mods`` columns; the random effects of one study's
    outcomes have covariance G: ``"CS"`` (one tau^2, one correlation), ``"HCS"`` (a
    tau^2 per outcome, one correlation) or ``"UN"`` (a tau^2 per outcome and a
    correlation per pair). G is kept positive semi-definite.

    Parameters are those of :func:`fit_multilevel`, with ``outcome`` and ``study``
    naming the outcome and the study (cluster) of each row, and ``struct`` G's
    structure.
    """
    method = _check(method, METHODS, "method")
    test = _check(test, TESTS, "test")
    level = check_level(level)
    struct = _check(struct, STRUCTS, "struct")
    mod_names = _names(mods)
    columns = {"outcome": outcome, "study": study} | {f"moderator {m}": m for m in mod_names}
    prep = prepare(data, yi=yi, vi=vi, V=V, columns=columns, labels_arg=labels, source=source)
    _enough(prep, 2)
    text = prep.frame["outcome"].astype(object).map(level_name)
    outcomes = tuple(sorted(set(text)))
    q = len(outcomes)
    if q < 2:
        raise NotEstimableError(
            f"a multivariate model needs at least two outcomes; these rows have one ({outcomes[0]})"
        )
    code = np.array([outcomes.index(t) for t in text], dtype=np.intp)
    frame = prep.frame.assign(**{"moderator outcome": text})
    X, names = design(frame, ["outcome", *mod_names], intercept=False)
    studies = codes_of(prep.frame["study"].to_numpy())
    S, _ = _sampling(prep, studies)
    fixed = _fixed_fit(prep, X, S)
    typical, spread = _start_variance(prep, fixed, S)
    structure: Structure
    if struct == "CS":
        structure = CompoundSymmetry(q)
        start = np.array([spread, 0.0])
    elif struct == "HCS":
        structure = HeteroCompoundSymmetry(q)
        start = np.concatenate([np.full(q, math.sqrt(spread)), [0.0]])
    else:
        un = Unstructured(q)
        structure = un
        start = un.from_covariance(spread * np.eye(q))
    patterns = _outcome_patterns(S.blocks, code, q)
    model = Model(prep.y, X, S, patterns, reml=method == "REML", variance=typical, beta0=fixed.beta)
    clusters = {"study": prep.frame["study"].to_numpy(), "outcome": text.to_numpy()}
    n_studies = int(studies.max()) + 1
    state = FitState(model, structure, clusters, ("study",), (n_studies,), (struct, outcomes))
    return build_result(
        "multivariate", prep, names, False, method, test, level, state, fixed, start
    )
