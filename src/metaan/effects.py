"""Effect sizes and their sampling variances, computed as R's metafor ``escalc`` does.

Two layers:

* small pure functions on numpy arrays, one per measure, vectorised over
  studies (:func:`standardized_mean_difference`, :func:`log_odds_ratio`, ...),
  each returning :class:`EffectArrays` ``(yi, vi)``; a study whose effect cannot
  be estimated gets ``nan`` in both;
* :func:`escalc`, which takes a :class:`pandas.DataFrame` of studies and column
  names (or values), validates the cells (raising
  :class:`~metaan.errors.InputError` that names the file, spreadsheet row,
  study and column), calls the pure function and returns the table with
  ``yi``, ``vi``, ``exclusion_reason`` and ``measure`` added.

Which columns each measure of :func:`escalc` needs:

========================  ===============================================
measure                   columns
========================  ===============================================
``SMD``, ``MD``           ``m1i, sd1i, n1i, m2i, sd2i, n2i``
``OR``, ``RR``, ``RD``    ``ai, ci`` and ``n1i`` or ``bi``, ``n2i`` or ``di``
``PLO``                   ``xi, ni``
``ZCOR``                  ``ri, ni``
any, precomputed          ``yi`` and one of ``vi``, ``sei``, or ``ci_lb`` + ``ci_ub``
========================  ===============================================

For a precomputed effect, ``yi`` with ``vi`` or ``sei`` is on the analysis
scale (log OR for ``OR``, log RR for ``RR``, logit for ``PLO``, Fisher's z for
``ZCOR``), as in metafor. ``yi`` with ``ci_lb`` and ``ci_ub`` is on the scale
papers publish: the odds or risk ratio, the proportion, the correlation;
estimate and limits are transformed (log, logit, artanh) and the standard
error is taken from the width of the interval at ``level`` (see
:func:`from_confidence_interval`). ``GEN`` is a generic effect, never
transformed. Means may be endpoint values or changes from baseline (see
:func:`standardized_mean_difference`). Rows are numbered as a spreadsheet shows
the file: when ``data`` comes from :func:`metaan.io.read_table` (or keeps its
integer index after filtering or sorting), row = index + 2; with any other
index, row = position + 2; with no table, row = position + 1.

The measure of an effect-size table is recorded in its ``measure`` column
(:data:`MEASURE_COLUMN`), not in ``DataFrame.attrs``: a column survives
filtering, sorting, ``merge`` and ``concat``, so a table of log odds ratios is
still known as one after it has been joined to other data, and a table that
mixes measures is refused rather than pooled (:func:`table_measure`).

The numbers agree with metafor 3.8 (Viechtbauer 2010) to rounding: the
conformance suite checks every reference data set at a relative tolerance of
1e-9.

References
----------
Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package.
*Journal of Statistical Software* 36(3):1-48.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeAlias, get_args, overload

import numpy as np
import numpy.typing as npt

from metaan._args import (
    Column,
    as_table_or_columns,
    check_level,
    column_values,
    label_text,
    n_rows,
    study_labels,
)
from metaan._dist import log_gamma_rest, norm_isf
from metaan.errors import InputError, raise_at_first
from metaan.io import Columns, cell_numbers, factorize, is_missing, spreadsheet_rows

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MEASURES",
    "MEASURE_COLUMN",
    "ZERO_CELL_RULES",
    "EffectArrays",
    "Measure",
    "ZeroCellRule",
    "check_measure",
    "check_zero_cell_rule",
    "escalc",
    "fisher_z",
    "from_confidence_interval",
    "from_standard_error",
    "hedges_correction",
    "log_odds_ratio",
    "log_odds_ratio_to_smd",
    "log_risk_ratio",
    "logit_proportion",
    "mean_difference",
    "measure_name",
    "raw_columns",
    "risk_difference",
    "sd_from_se",
    "se_from_sd",
    "smd_to_log_odds_ratio",
    "standardized_mean_difference",
    "table_measure",
    "zero_cell_correction",
]

Measure: TypeAlias = Literal["SMD", "MD", "OR", "RR", "RD", "PLO", "ZCOR", "GEN"]
"""The effect measures, named as metafor names them (``GEN``: a generic,
precomputed effect on its own scale)."""

ZeroCellRule: TypeAlias = Literal["only0", "all", "if0all", "none"]
"""Which tables get ``add`` added to their cells (metafor's ``to``)."""

Transform: TypeAlias = Literal["none", "log", "logit", "atanh"]
"""How a reported estimate and its confidence limits reach the analysis scale."""

MEASURES: tuple[Measure, ...] = get_args(Measure)

#: The column of an effect-size table that records the measure of each row's
#: ``yi`` (:func:`escalc` writes it; :func:`table_measure` reads it).
MEASURE_COLUMN = "measure"
ZERO_CELL_RULES: tuple[ZeroCellRule, ...] = get_args(ZeroCellRule)

FloatArray: TypeAlias = npt.NDArray[np.float64]


class EffectArrays(NamedTuple):
    """Effect sizes ``yi`` and their sampling variances ``vi``, one per study."""

    yi: FloatArray
    vi: FloatArray


# --------------------------------------------------------------------------------------
# Options, checked in one place
# --------------------------------------------------------------------------------------


def check_measure(measure: str) -> Measure:
    """Return ``measure`` as a :data:`Measure` (case is ignored), or raise InputError."""
    canonical = str(measure).strip().upper()
    if canonical not in MEASURES:
        raise InputError(
            f"unknown effect measure {measure!r}",
            fix=f"choose one of {', '.join(MEASURES)}",
        )
    return canonical


def check_zero_cell_rule(to: str) -> ZeroCellRule:
    """Return ``to`` as a :data:`ZeroCellRule`, or raise InputError."""
    if to not in ZERO_CELL_RULES:
        raise InputError(
            f"unknown zero-cell rule to={to!r}",
            fix=f"choose one of {', '.join(ZERO_CELL_RULES)}",
        )
    return to


def _check_add(add: float) -> float:
    value = float(add)
    if not math.isfinite(value) or value < 0:
        raise InputError(
            f"add={add!r} is not a valid increment for zero cells",
            fix="give a number >= 0 (metafor's default is 0.5)",
        )
    return value


# --------------------------------------------------------------------------------------
# Pure functions on arrays
# --------------------------------------------------------------------------------------


def _as_float(values: npt.ArrayLike) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def _estimable(yi: FloatArray, vi: FloatArray) -> EffectArrays:
    """Set both ``yi`` and ``vi`` to nan where either is not finite or ``vi < 0``.

    metafor recodes infinite values to NA in the same way, so a study that
    cannot be estimated drops out of every later analysis.
    """
    yi, vi = np.broadcast_arrays(yi, vi)
    bad = ~(np.isfinite(yi) & np.isfinite(vi)) | (vi < 0)
    return EffectArrays(
        np.where(bad, np.nan, yi).astype(np.float64),
        np.where(bad, np.nan, vi).astype(np.float64),
    )


def hedges_correction(m: npt.ArrayLike) -> FloatArray:
    """Exact small-sample correction factor J(m) of Hedges' g.

    .. math:: J(m) = \\frac{\\Gamma(m/2)}{\\sqrt{m/2}\\,\\Gamma((m-1)/2)}

    computed on the log scale so that it does not overflow for large ``m``.

    Parameters
    ----------
    m
        Degrees of freedom, ``n1 + n2 - 2`` for two independent groups.

    Returns
    -------
    numpy.ndarray
        J(m), or nan where ``m <= 1`` (the factor is not defined there).

    References
    ----------
    Hedges LV (1981). Distribution theory for Glass's estimator of effect size
    and related estimators. *Journal of Educational Statistics* 6(2):107-128,
    equation 6e.
    """
    m = _as_float(m)
    # With a = m/2 and Stirling's remainder r, log J = log Gamma(a) - log(a)/2
    # - log Gamma(a - 1/2) = -(a - 1) log1p(-1/(2a)) - 1/2 + r(a) - r(a - 1/2),
    # which keeps its accuracy for large m (no difference of large logarithms).
    a = np.where(m > 1, m, 2.0) / 2.0
    log_j = -(a - 1.0) * np.log1p(-0.5 / a) - 0.5 + log_gamma_rest(a) - log_gamma_rest(a - 0.5)
    return np.where(m > 1, np.exp(log_j), np.nan)


def standardized_mean_difference(
    m1i: npt.ArrayLike,
    sd1i: npt.ArrayLike,
    n1i: npt.ArrayLike,
    m2i: npt.ArrayLike,
    sd2i: npt.ArrayLike,
    n2i: npt.ArrayLike,
) -> EffectArrays:
    """Hedges' g, the bias-corrected standardized mean difference (metafor ``SMD``).

    .. math::

        s_p = \\sqrt{\\frac{(n_1-1)s_1^2 + (n_2-1)s_2^2}{n_1+n_2-2}}, \\quad
        g = J(n_1+n_2-2)\\,\\frac{\\bar x_1 - \\bar x_2}{s_p}, \\quad
        v = \\frac{1}{n_1} + \\frac{1}{n_2} + \\frac{g^2}{2(n_1+n_2)}

    with the exact correction :func:`hedges_correction` and the large-sample
    variance (metafor's default ``vtype="LS"``).

    Parameters
    ----------
    m1i, sd1i, n1i
        Mean, standard deviation and size of group 1 (e.g. treatment).
    m2i, sd2i, n2i
        The same for group 2 (e.g. control).

    Returns
    -------
    EffectArrays
        ``yi`` = g (positive when group 1 has the larger mean), ``vi`` its
        variance; nan where ``n1i + n2i <= 3``.

    Notes
    -----
    The means may be endpoint (final) values or changes from baseline, with
    the standard deviations of the same kind; the formula is the same. Do not
    mix the two kinds in one SMD meta-analysis: the SD of a change differs
    from the SD of an endpoint, so the two standardize to different scales
    (Cochrane Handbook, section 10.5.2).

    References
    ----------
    Hedges LV (1981), op. cit. Hedges LV, Olkin I (1985). *Statistical Methods
    for Meta-Analysis*. Academic Press, chapter 5, equation 15 (variance).
    Higgins JPT et al. (eds) (2023). *Cochrane Handbook for Systematic Reviews
    of Interventions* 6.4, sections 6.5.1.2 and 10.5.2.
    """
    m1, s1, n1, m2, s2, n2 = (_as_float(x) for x in (m1i, sd1i, n1i, m2i, sd2i, n2i))
    df = n1 + n2 - 2
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled_sd = np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / df)
        g = hedges_correction(df) * (m1 - m2) / pooled_sd
        vi = 1 / n1 + 1 / n2 + g**2 / (2 * (n1 + n2))
    return _estimable(g, vi)


def mean_difference(
    m1i: npt.ArrayLike,
    sd1i: npt.ArrayLike,
    n1i: npt.ArrayLike,
    m2i: npt.ArrayLike,
    sd2i: npt.ArrayLike,
    n2i: npt.ArrayLike,
) -> EffectArrays:
    """Raw mean difference (metafor ``MD``) with the heteroscedastic variance.

    .. math:: y = \\bar x_1 - \\bar x_2, \\quad v = s_1^2/n_1 + s_2^2/n_2

    The variance does not assume equal SDs in the two groups (metafor's
    default for ``MD``).

    Parameters
    ----------
    m1i, sd1i, n1i, m2i, sd2i, n2i
        Means, standard deviations and sizes of groups 1 and 2.

    Returns
    -------
    EffectArrays
        ``yi`` in the units of the outcome, ``vi`` its variance.

    Notes
    -----
    Endpoint means and changes from baseline (with their SDs) use the same
    formula, and may be combined in one MD meta-analysis (Cochrane Handbook,
    section 10.5.2).

    References
    ----------
    Borenstein M, Hedges LV, Higgins JPT, Rothstein HR (2009). *Introduction to
    Meta-Analysis*. Wiley, section 4.2 (equation 4.5 without pooling).
    Higgins JPT et al. (eds) (2023), op. cit., section 6.5.1.1.
    """
    m1, s1, n1, m2, s2, n2 = (_as_float(x) for x in (m1i, sd1i, n1i, m2i, sd2i, n2i))
    with np.errstate(invalid="ignore", divide="ignore"):
        vi = s1**2 / n1 + s2**2 / n2
    return _estimable(m1 - m2, vi)


def _add_to_cells(
    cells: Sequence[FloatArray], add: float, to: ZeroCellRule
) -> tuple[FloatArray, ...]:
    """Add ``add`` to every cell of the tables that ``to`` selects."""
    has_zero = np.zeros(cells[0].shape, dtype=bool)
    for cell in cells:
        has_zero |= cell == 0  # nan == 0 is False, as metafor treats NA
    if to == "all":
        selected = np.ones_like(has_zero)
    elif to == "only0":
        selected = has_zero
    elif to == "if0all":
        selected = np.full_like(has_zero, bool(has_zero.any()))
    else:
        selected = np.zeros_like(has_zero)
    increment = np.where(selected, add, 0.0)
    return tuple(cell + increment for cell in cells)


def _double_zero(
    ai: FloatArray, bi: FloatArray, ci: FloatArray, di: FloatArray
) -> npt.NDArray[np.bool_]:
    """Tables with no events in either arm, or only events in both (metafor's ``drop00``)."""
    return np.asarray(((ai == 0) & (ci == 0)) | ((bi == 0) & (di == 0)), dtype=np.bool_)


def zero_cell_correction(
    ai: npt.ArrayLike,
    bi: npt.ArrayLike,
    ci: npt.ArrayLike,
    di: npt.ArrayLike,
    *,
    add: float = 0.5,
    to: ZeroCellRule = "only0",
    drop00: bool = False,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """The cells of 2x2 tables after metafor's zero-cell rule.

    Parameters
    ----------
    ai, bi, ci, di
        Events and non-events in group 1 (``ai``, ``bi``) and group 2
        (``ci``, ``di``).
    add
        The increment (default 1/2, the Haldane-Anscombe correction).
    to
        Which tables get it: ``"only0"`` (default) every table with a zero
        cell, ``"all"`` every table, ``"if0all"`` every table if any table has
        a zero cell, ``"none"`` no table.
    drop00
        If true, tables with no events in either arm (or only events in both)
        become nan before the rule is applied, so they are left out of the
        analysis (the Cochrane Handbook's convention for OR and RR). Default
        false: they are kept, with ``add`` added, as metafor does.

    Returns
    -------
    tuple of numpy.ndarray
        The corrected ``ai, bi, ci, di``.

    References
    ----------
    Haldane JBS (1956). The estimation and significance of the logarithm of a
    ratio of frequencies. *Annals of Human Genetics* 20(4):309-311.
    Higgins JPT et al. (eds) (2023), op. cit., section 10.4.4.
    """
    to = check_zero_cell_rule(to)
    add = _check_add(add)
    a, b, c, d = np.broadcast_arrays(*(_as_float(x) for x in (ai, bi, ci, di)))
    if drop00:
        dropped = _double_zero(a, b, c, d)
        a, b, c, d = (np.where(dropped, np.nan, x) for x in (a, b, c, d))
    a, b, c, d = _add_to_cells((a, b, c, d), add, to)
    return a, b, c, d


def log_odds_ratio(
    ai: npt.ArrayLike,
    bi: npt.ArrayLike,
    ci: npt.ArrayLike,
    di: npt.ArrayLike,
    *,
    add: float = 0.5,
    to: ZeroCellRule = "only0",
    drop00: bool = False,
) -> EffectArrays:
    """Log odds ratio with Woolf's variance (metafor ``OR``).

    .. math:: y = \\log\\frac{a\\,d}{b\\,c}, \\quad v = 1/a + 1/b + 1/c + 1/d

    after :func:`zero_cell_correction` (same keyword arguments).

    Parameters
    ----------
    ai, bi, ci, di
        Events and non-events in group 1 (``ai``, ``bi``) and group 2 (``ci``, ``di``).
    add, to, drop00
        The zero-cell rule; see :func:`zero_cell_correction`.

    Returns
    -------
    EffectArrays
        ``yi`` = log OR (negative when group 1 has lower odds of the event).

    References
    ----------
    Woolf B (1955). On estimating the relation between blood group and
    disease. *Annals of Human Genetics* 19(4):251-253.
    Higgins JPT et al. (eds) (2023), op. cit., section 6.4.1.2.
    """
    a, b, c, d = zero_cell_correction(ai, bi, ci, di, add=add, to=to, drop00=drop00)
    with np.errstate(invalid="ignore", divide="ignore"):
        yi = np.log(a / b) - np.log(c / d)
        vi = 1 / a + 1 / b + 1 / c + 1 / d
    return _estimable(yi, vi)


def log_risk_ratio(
    ai: npt.ArrayLike,
    bi: npt.ArrayLike,
    ci: npt.ArrayLike,
    di: npt.ArrayLike,
    *,
    add: float = 0.5,
    to: ZeroCellRule = "only0",
    drop00: bool = False,
) -> EffectArrays:
    """Log risk ratio (metafor ``RR``).

    .. math::

        y = \\log\\frac{a/(a+b)}{c/(c+d)}, \\quad
        v = \\frac{1}{a} - \\frac{1}{a+b} + \\frac{1}{c} - \\frac{1}{c+d}

    after :func:`zero_cell_correction` (same keyword arguments).

    Parameters
    ----------
    ai, bi, ci, di
        Events and non-events in group 1 (``ai``, ``bi``) and group 2 (``ci``, ``di``).
    add, to, drop00
        The zero-cell rule; see :func:`zero_cell_correction`.

    Returns
    -------
    EffectArrays
        ``yi`` = log RR.

    References
    ----------
    Katz D, Baptista J, Azen SP, Pike MC (1978). Obtaining confidence intervals
    for the risk ratio in cohort studies. *Biometrics* 34(3):469-474.
    Higgins JPT et al. (eds) (2023), op. cit., section 6.4.1.2.
    """
    a, b, c, d = zero_cell_correction(ai, bi, ci, di, add=add, to=to, drop00=drop00)
    with np.errstate(invalid="ignore", divide="ignore"):
        n1, n2 = a + b, c + d
        yi = np.log(a / n1) - np.log(c / n2)
        vi = 1 / a - 1 / n1 + 1 / c - 1 / n2
    return _estimable(yi, vi)


def risk_difference(
    ai: npt.ArrayLike,
    bi: npt.ArrayLike,
    ci: npt.ArrayLike,
    di: npt.ArrayLike,
    *,
    add: float = 0.5,
    to: ZeroCellRule = "only0",
    drop00: bool = False,
) -> EffectArrays:
    """Risk difference (metafor ``RD``).

    .. math::

        p_1 = \\frac{a}{a+b},\\ p_2 = \\frac{c}{c+d}, \\quad y = p_1 - p_2, \\quad
        v = \\frac{p_1(1-p_1)}{a+b} + \\frac{p_2(1-p_2)}{c+d}

    after :func:`zero_cell_correction` (same keyword arguments). As in
    metafor, the default rule adds 1/2 to the cells of a table with a zero cell
    for the risk difference too, although it is defined without it; pass
    ``to="none"`` for the uncorrected difference (a table with no events in
    either arm then has ``yi = vi = 0``).

    Parameters
    ----------
    ai, bi, ci, di
        Events and non-events in group 1 (``ai``, ``bi``) and group 2 (``ci``, ``di``).
    add, to, drop00
        The zero-cell rule; see :func:`zero_cell_correction`.

    Returns
    -------
    EffectArrays
        ``yi`` = risk in group 1 minus risk in group 2.

    References
    ----------
    Higgins JPT et al. (eds) (2023), op. cit., section 6.4.1.2.
    Viechtbauer W (2010), op. cit. (``escalc``, measure ``"RD"``).
    """
    a, b, c, d = zero_cell_correction(ai, bi, ci, di, add=add, to=to, drop00=drop00)
    with np.errstate(invalid="ignore", divide="ignore"):
        n1, n2 = a + b, c + d
        p1, p2 = a / n1, c / n2
        vi = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    return _estimable(p1 - p2, vi)


def logit_proportion(
    xi: npt.ArrayLike,
    ni: npt.ArrayLike,
    *,
    add: float = 0.5,
    to: ZeroCellRule = "only0",
) -> EffectArrays:
    """Logit of a proportion (metafor ``PLO``).

    .. math:: y = \\log\\frac{x}{n-x}, \\quad v = \\frac{1}{x} + \\frac{1}{n-x}

    A study with no events or only events gets ``add`` added to both ``x``
    and ``n - x`` under the default rule (``to`` as in
    :func:`zero_cell_correction`).

    Parameters
    ----------
    xi
        Number of events.
    ni
        Number of participants.
    add, to
        The zero-cell rule.

    Returns
    -------
    EffectArrays
        ``yi`` = log odds of the event.

    References
    ----------
    Lipsey MW, Wilson DB (2001). *Practical Meta-Analysis*. Sage, section 3.4.
    Viechtbauer W (2010), op. cit. (``escalc``, measure ``"PLO"``).
    """
    to = check_zero_cell_rule(to)
    add = _check_add(add)
    x, n = np.broadcast_arrays(_as_float(xi), _as_float(ni))
    x, rest = _add_to_cells((x, n - x), add, to)
    with np.errstate(invalid="ignore", divide="ignore"):
        yi = np.log(x / rest)
        vi = 1 / x + 1 / rest
    return _estimable(yi, vi)


def fisher_z(ri: npt.ArrayLike, ni: npt.ArrayLike) -> EffectArrays:
    """Fisher's r-to-z transformed correlation (metafor ``ZCOR``).

    .. math::

        y = \\operatorname{artanh}(r) = \\tfrac12\\log\\frac{1+r}{1-r}, \\quad
        v = \\frac{1}{n-3}

    Parameters
    ----------
    ri
        Pearson correlation coefficients.
    ni
        Sample sizes.

    Returns
    -------
    EffectArrays
        ``yi`` = z, ``vi`` its variance; nan where ``ni <= 3`` or ``|ri| = 1``.

    References
    ----------
    Fisher RA (1921). On the "probable error" of a coefficient of correlation
    deduced from a small sample. *Metron* 1:3-32.
    Borenstein M et al. (2009), op. cit., section 6.2.
    """
    r, n = np.broadcast_arrays(_as_float(ri), _as_float(ni))
    with np.errstate(invalid="ignore", divide="ignore"):
        yi = np.arctanh(r)
        vi = np.where(n > 3, 1 / (n - 3), np.nan)
    return _estimable(yi, vi)


def from_standard_error(yi: npt.ArrayLike, sei: npt.ArrayLike) -> EffectArrays:
    """A precomputed effect with its standard error: ``vi = sei**2``.

    Parameters
    ----------
    yi
        Estimates on the analysis scale (log OR, log RR, g, ...).
    sei
        Their standard errors, on the same scale.

    Returns
    -------
    EffectArrays

    References
    ----------
    Higgins JPT et al. (eds) (2023), op. cit., section 6.3.
    """
    y, se = np.broadcast_arrays(_as_float(yi), _as_float(sei))
    return _estimable(y, se**2)


_TRANSFORMS: dict[Transform, Callable[[FloatArray], FloatArray]] = {
    "none": lambda x: x,
    "log": np.log,
    "logit": lambda p: np.log(p / (1 - p)),
    "atanh": np.arctanh,
}


def from_confidence_interval(
    estimate: npt.ArrayLike,
    ci_lb: npt.ArrayLike,
    ci_ub: npt.ArrayLike,
    *,
    level: float = 95.0,
    transform: Transform = "none",
) -> EffectArrays:
    """A published estimate with its confidence interval, on the analysis scale.

    The estimate and both limits are first transformed (``"log"`` for a ratio
    such as an odds ratio, ``"logit"`` for a proportion, ``"atanh"`` for a
    correlation), where a Wald interval is symmetric; then

    .. math:: SE = \\frac{u - l}{2\\,z_{1-\\alpha/2}}, \\quad v = SE^2

    with :math:`z` the standard normal quantile and ``level = 100 (1 - alpha)``.

    Parameters
    ----------
    estimate, ci_lb, ci_ub
        The estimate and its limits, on the scale they were published on.
    level
        Confidence level in percent (default 95).
    transform
        Transformation to the analysis scale (default none).

    Returns
    -------
    EffectArrays
        ``yi`` = transformed estimate, ``vi`` = SE squared.

    References
    ----------
    Higgins JPT et al. (eds) (2023), op. cit., sections 6.3.1 and 6.3.2
    (obtaining standard errors from confidence intervals).
    Altman DG, Bland JM (2011). How to obtain the confidence interval from a
    P value. *BMJ* 343:d2090.
    """
    level = check_level(level)
    if transform not in _TRANSFORMS:
        raise InputError(
            f"unknown transform {transform!r}", fix=f"choose one of {', '.join(_TRANSFORMS)}"
        )
    scale = _TRANSFORMS[transform]
    est, lb, ub = np.broadcast_arrays(*(_as_float(x) for x in (estimate, ci_lb, ci_ub)))
    crit = norm_isf((1 - level / 100) / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = (scale(ub) - scale(lb)) / (2 * crit)
        yi = scale(est)
    return _estimable(yi, se**2)


def se_from_sd(sd: npt.ArrayLike, n: npt.ArrayLike) -> FloatArray:
    """Standard error of a group mean from the SD of the observations: ``sd / sqrt(n)``.

    References
    ----------
    Higgins JPT et al. (eds) (2023), op. cit., section 6.5.2.2.
    """
    return _as_float(sd) / np.sqrt(_as_float(n))


def sd_from_se(se: npt.ArrayLike, n: npt.ArrayLike) -> FloatArray:
    """SD of the observations from the standard error of a group mean: ``se * sqrt(n)``.

    Use it when a trial reports the SE of each arm's mean instead of the SD.

    References
    ----------
    Higgins JPT et al. (eds) (2023), op. cit., section 6.5.2.2.
    """
    return _as_float(se) * np.sqrt(_as_float(n))


_LOGISTIC_SCALE = math.sqrt(3) / math.pi


def log_odds_ratio_to_smd(yi: npt.ArrayLike, vi: npt.ArrayLike) -> EffectArrays:
    """Convert log odds ratios to standardized mean differences.

    .. math:: d = \\log(OR)\\,\\frac{\\sqrt 3}{\\pi}, \\quad v_d = v\\,\\frac{3}{\\pi^2}

    which assumes a logistic distribution of the underlying continuous outcome
    in each group (metafor's ``OR2DL``).

    References
    ----------
    Hasselblad V, Hedges LV (1995). Meta-analysis of screening and diagnostic
    tests. *Psychological Bulletin* 117(1):167-178.
    Chinn S (2000). A simple method for converting an odds ratio to effect
    size for use in meta-analysis. *Statistics in Medicine* 19(22):3127-3131.
    """
    return EffectArrays(_as_float(yi) * _LOGISTIC_SCALE, _as_float(vi) * _LOGISTIC_SCALE**2)


def smd_to_log_odds_ratio(yi: npt.ArrayLike, vi: npt.ArrayLike) -> EffectArrays:
    """Convert standardized mean differences to log odds ratios.

    The inverse of :func:`log_odds_ratio_to_smd`:
    :math:`\\log(OR) = d\\,\\pi/\\sqrt 3`, :math:`v = v_d\\,\\pi^2/3`.

    References
    ----------
    Chinn S (2000), op. cit. Borenstein M et al. (2009), op. cit., section 7.3.
    """
    return EffectArrays(_as_float(yi) / _LOGISTIC_SCALE, _as_float(vi) / _LOGISTIC_SCALE**2)


# --------------------------------------------------------------------------------------
# The DataFrame edge
# --------------------------------------------------------------------------------------

ColumnArg: TypeAlias = Literal[
    "ai",
    "bi",
    "ci",
    "di",
    "n1i",
    "n2i",
    "m1i",
    "sd1i",
    "m2i",
    "sd2i",
    "xi",
    "ni",
    "ri",
    "yi",
    "vi",
    "sei",
    "ci_lb",
    "ci_ub",
]
_RAW_ARGS: dict[str, tuple[ColumnArg, ...]] = {
    "means": ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"),
    "counts": ("ai", "bi", "ci", "di", "n1i", "n2i"),
    "proportion": ("xi", "ni"),
    "correlation": ("ri", "ni"),
    "generic": (),
}
_PRECOMPUTED_ARGS: tuple[ColumnArg, ...] = ("yi", "vi", "sei", "ci_lb", "ci_ub")


@dataclass(frozen=True)
class _Spec:
    """What :func:`escalc` needs to know about a measure."""

    name: str  # what yi is, for messages
    family: Literal["means", "counts", "proportion", "correlation", "generic"]
    transform: Transform  # from the published scale of an estimate and CI to yi's scale
    published: str  # what that published scale is, for messages


_SPECS: dict[Measure, _Spec] = {
    "SMD": _Spec("standardized mean difference", "means", "none", "SMD"),
    "MD": _Spec("mean difference", "means", "none", "mean difference"),
    "OR": _Spec("log odds ratio", "counts", "log", "odds ratio"),
    "RR": _Spec("log risk ratio", "counts", "log", "risk ratio"),
    "RD": _Spec("risk difference", "counts", "none", "risk difference"),
    "PLO": _Spec("logit proportion", "proportion", "logit", "proportion"),
    "ZCOR": _Spec("Fisher's z", "correlation", "atanh", "correlation"),
    "GEN": _Spec("effect size", "generic", "none", "effect size"),
}


def measure_name(measure: str) -> str:
    """What ``yi`` is for ``measure``, in words (e.g. ``"log odds ratio"`` for ``OR``)."""
    return _SPECS[check_measure(measure)].name


def raw_columns(measure: str) -> tuple[str, ...]:
    """The column arguments ``measure`` can take from raw data, named as metafor names them.

    ``OR``, ``RR`` and ``RD`` list both ``bi``/``di`` and ``n1i``/``n2i``; they need
    one of each pair. ``GEN`` has none: it is always precomputed.
    """
    return _RAW_ARGS[_SPECS[check_measure(measure)].family]


class _Table:
    """The study table with what error messages need: file, rows, labels.

    ``columns`` maps each argument to its column of ``data`` (``None`` when the
    argument was given as values, which ``values`` then holds).
    """

    def __init__(
        self,
        data: pd.DataFrame | Columns,
        given: dict[ColumnArg, Any],
        source: str | None,
        labels: Any,
        *,
        by_position: bool = False,
    ) -> None:
        self.data = data
        self.source = source
        n = len(data)
        self.rows = np.arange(1, n + 1) if by_position else spreadsheet_rows(data)
        # Labels name a study in an error message: the default column's are read only
        # when one is raised; labels given are read (and checked) at once.
        self._labels = None if labels is None else study_labels(data, labels, n=n, source=source)
        self.columns: dict[ColumnArg, str | None] = {}
        raw: dict[ColumnArg, Any] = {}
        for arg, value in given.items():
            cells, column = column_values(data, value, arg, n, numeric=False, source=source)
            self.columns[arg] = column
            raw[arg] = data[column] if column is not None else cells
        self.values: dict[ColumnArg, FloatArray] = {
            arg: self._numeric(arg, series) for arg, series in raw.items()
        }

    def _numeric(self, arg: ColumnArg, series: Any) -> FloatArray:
        """A column (a pandas Series, or an array of a :class:`~metaan.io.Columns` table
        or of values) as floats; a cell that is not a number is an error."""
        if isinstance(series, np.ndarray):
            kind, is_bool = series.dtype.kind, series.dtype.kind == "b"
        else:
            import pandas as pd

            is_bool = pd.api.types.is_bool_dtype(series.dtype)
            kind = "f" if pd.api.types.is_numeric_dtype(series.dtype) else "O"
        if is_bool:
            flags = series.tolist()
            self.fail(
                np.array([not is_missing(f) for f in flags], dtype=bool),
                arg,
                lambda i: f"{arg} is {flags[i]}, a true/false value, not a number",
                _NUMBER_FIX,
            )
        if kind in "iuf":
            values = (
                series.astype(np.float64)
                if isinstance(series, np.ndarray)
                else series.to_numpy(dtype=np.float64, na_value=np.nan)
            )
        else:
            cells = [v.strip() if isinstance(v, str) else v for v in series.tolist()]
            values, given = cell_numbers(cells)
            blank = ~given | np.array([v == "" for v in cells], dtype=bool)
            self.fail(
                np.isnan(values) & ~blank,
                arg,
                lambda i: f"{arg} is {cells[i]!r}, which is not a number",
                _NUMBER_FIX,
            )
        self.fail(
            np.isinf(values),
            arg,
            lambda i: f"{arg} is {values[i]}, which is not a finite number",
            _NUMBER_FIX,
        )
        return values

    @property
    def labels(self) -> list[str | None]:
        """The study label of each row (``None`` where there is none)."""
        if self._labels is None:
            self._labels = study_labels(self.data, n=len(self.data), source=self.source)
        return self._labels

    def fail(
        self,
        mask: npt.NDArray[np.bool_],
        arg: ColumnArg,
        problem: Callable[[int], str],
        fix: str,
    ) -> None:
        """Raise InputError at the first row where ``mask`` holds, if any."""
        where = np.flatnonzero(mask)
        if not where.size:  # before self.labels is read: it is made only for an error
            return
        raise_at_first(
            where,
            problem,
            file=self.source,
            rows=self.rows,
            column=self.columns[arg] or arg,
            studies=self.labels,
            fix=fix,
        )

    def check(self, arg: ColumnArg, mask: npt.NDArray[np.bool_], rule: str, fix: str) -> None:
        """Raise ``"{arg} is {value}; {rule}"`` at the first row where ``mask`` holds."""
        values = self.values[arg]
        self.fail(mask, arg, lambda i: f"{arg} is {_num(values[i])}; {rule}", fix)

    def named(self, arg: ColumnArg) -> str:
        """``arg`` for an exclusion reason, with its column when the names differ."""
        column = self.columns[arg]
        return arg if column is None or column == arg else f"{arg} (column {column})"


_NUMBER_FIX = "enter a number, or leave the cell blank if the value is not reported"
_MISSING_NOTE = "a blank cell leaves the study out of the analysis, with its reason"


def _num(x: float) -> str:
    return format(float(x), ".10g")


def table_measure(
    data: pd.DataFrame | Columns | None,
    measure: str | None = None,
    *,
    used: npt.NDArray[np.bool_] | None = None,
    source: str | None = None,
) -> str | None:
    """The effect measure of the rows ``used`` of an effect-size table.

    :func:`escalc` records the measure of every row in the column
    :data:`MEASURE_COLUMN`, which survives filtering, sorting, ``merge`` and
    ``concat`` (pandas' ``attrs`` do not). ``measure``, when given, is used and
    must agree with that column; otherwise the column's value is returned, or
    None when the table has no such column.

    Raises
    ------
    InputError
        The column holds a value that is not one of :data:`MEASURES`, several
        measures, or a blank among used rows that have a measure elsewhere.
    """
    if data is None or MEASURE_COLUMN not in data.columns:
        return measure
    rows = spreadsheet_rows(data)
    cells = np.asarray(data[MEASURE_COLUMN], dtype=object)
    if used is not None:
        cells, rows = cells[used], rows[used]
    codes, uniques = factorize(cells.tolist())  # a handful of distinct values; missing is -1
    names = [(label_text(u) or "").upper() for u in uniques]
    present, first = np.unique(codes, return_index=True)
    first_of = dict(zip(present.tolist(), first.tolist(), strict=True))
    found: dict[str, int] = {}
    for code, name in enumerate(names):
        if name:
            found.setdefault(name, int(rows[first_of[code]]))
    is_blank = np.array([not name for name in names] + [True])[codes]  # -1 picks True
    for value, row in found.items():
        if value not in MEASURES:
            raise InputError(
                f"measure is {value!r}, which is not an effect measure ({', '.join(MEASURES)})",
                file=source,
                row=row,
                column=MEASURE_COLUMN,
                fix="this column records what yi is (metaan.escalc writes it); rename a "
                "column of that name that means something else",
            )
    if len(found) > 1:
        where = ", ".join(f"{m} (row {r})" for m, r in found.items())
        raise InputError(
            f"the table mixes effect measures: {where}",
            file=source,
            column=MEASURE_COLUMN,
            fix="analyse one measure at a time (select the rows of one measure)",
        )
    blank = np.flatnonzero(is_blank)
    if found and blank.size:
        raise InputError(
            f"the effect measure is blank here but {next(iter(found))} in other rows",
            file=source,
            row=int(rows[int(blank[0])]),
            column=MEASURE_COLUMN,
            fix="fill in the measure of every row with an effect size",
        )
    recorded = next(iter(found), None)
    if measure is not None and recorded is not None and str(measure).upper() != recorded:
        raise InputError(
            f"measure={measure!r} was given but the table's effect sizes are {recorded}",
            file=source,
            column=MEASURE_COLUMN,
            fix="leave out measure=, or give the measure of the table",
        )
    return recorded if measure is None else measure


_COLUMN_ARGS: tuple[ColumnArg, ...] = get_args(ColumnArg)


def _given(*values: Any) -> dict[ColumnArg, Any]:
    """The column arguments given, in :data:`ColumnArg` order."""
    return {a: v for a, v in zip(_COLUMN_ARGS, values, strict=True) if v is not None}


def _study_table(
    data: Any, given: dict[ColumnArg, Any], source: str | None
) -> tuple[pd.DataFrame | Columns, bool]:
    """``data`` as a table, or an empty one when every argument is given as values
    (True: rows are then numbered by position, from 1)."""
    table = as_table_or_columns(data, source=source)
    by_position = table is None
    if table is None:
        import pandas as pd

        table = pd.DataFrame(index=pd.RangeIndex(n_rows(None, **given)))
    if len(table) == 0:
        raise InputError(
            "the table has no rows", file=source, fix="add one row per study below the header"
        )
    return table, by_position


@overload
def escalc(
    data: Columns,
    measure: str,
    *,
    ai: Column | None = ...,
    bi: Column | None = ...,
    ci: Column | None = ...,
    di: Column | None = ...,
    n1i: Column | None = ...,
    n2i: Column | None = ...,
    m1i: Column | None = ...,
    sd1i: Column | None = ...,
    m2i: Column | None = ...,
    sd2i: Column | None = ...,
    xi: Column | None = ...,
    ni: Column | None = ...,
    ri: Column | None = ...,
    yi: Column | None = ...,
    vi: Column | None = ...,
    sei: Column | None = ...,
    ci_lb: Column | None = ...,
    ci_ub: Column | None = ...,
    level: float = ...,
    add: float = ...,
    to: str = ...,
    drop00: bool = ...,
    source: str | None = ...,
    labels: Column | None = ...,
) -> Columns: ...


@overload
def escalc(
    data: pd.DataFrame | None,
    measure: str,
    *,
    ai: Column | None = ...,
    bi: Column | None = ...,
    ci: Column | None = ...,
    di: Column | None = ...,
    n1i: Column | None = ...,
    n2i: Column | None = ...,
    m1i: Column | None = ...,
    sd1i: Column | None = ...,
    m2i: Column | None = ...,
    sd2i: Column | None = ...,
    xi: Column | None = ...,
    ni: Column | None = ...,
    ri: Column | None = ...,
    yi: Column | None = ...,
    vi: Column | None = ...,
    sei: Column | None = ...,
    ci_lb: Column | None = ...,
    ci_ub: Column | None = ...,
    level: float = ...,
    add: float = ...,
    to: str = ...,
    drop00: bool = ...,
    source: str | None = ...,
    labels: Column | None = ...,
) -> pd.DataFrame: ...


def escalc(
    data: pd.DataFrame | Columns | None,
    measure: str,
    *,
    ai: Column | None = None,
    bi: Column | None = None,
    ci: Column | None = None,
    di: Column | None = None,
    n1i: Column | None = None,
    n2i: Column | None = None,
    m1i: Column | None = None,
    sd1i: Column | None = None,
    m2i: Column | None = None,
    sd2i: Column | None = None,
    xi: Column | None = None,
    ni: Column | None = None,
    ri: Column | None = None,
    yi: Column | None = None,
    vi: Column | None = None,
    sei: Column | None = None,
    ci_lb: Column | None = None,
    ci_ub: Column | None = None,
    level: float = 95.0,
    add: float = 0.5,
    to: str = "only0",
    drop00: bool = False,
    source: str | None = None,
    labels: Column | None = None,
) -> pd.DataFrame | Columns:
    """Compute effect sizes ``yi`` and sampling variances ``vi`` for a table of studies.

    The column arguments, named as metafor's ``escalc`` names them, are columns
    of ``data`` or values (one per row). Which ones each measure needs, and how a
    precomputed estimate is read, is in the module notes (:mod:`metaan.effects`).

    Parameters
    ----------
    data
        The studies, one per row (``None`` when every column is given as values).
    measure
        One of :data:`MEASURES` (case is ignored).
    ai, bi, ci, di, n1i, n2i
        Events (``ai``, ``ci``), non-events (``bi``, ``di``) and totals (``n1i``,
        ``n2i``) in groups 1 and 2. Give totals or non-events; if both, they must agree.
    m1i, sd1i, m2i, sd2i
        Means and standard deviations of groups 1 and 2 (with ``n1i, n2i``).
    xi, ni, ri
        One group: events and participants (``PLO``), or a correlation (``ZCOR``).
    yi, vi, sei, ci_lb, ci_ub
        Precomputed effect with its variance, standard error or confidence limits.
    level
        Confidence level of ``ci_lb, ci_ub``: a percentage (95) or a fraction (0.95).
    add, to, drop00
        Zero-cell rule for ``OR, RR, RD`` (``add`` and ``to`` also for ``PLO``):
        see :func:`zero_cell_correction`. The defaults are metafor's.
    source
        The file ``data`` came from, named in error messages.
    labels
        Study labels for messages: a column or one label per row; by default the
        first of :data:`~metaan._args.LABEL_COLUMNS` present.

    Returns
    -------
    pandas.DataFrame
        A copy of ``data`` (same index and row order) with float columns ``yi``
        and ``vi``, an object column ``exclusion_reason`` (``None`` for a usable
        study, else why ``yi`` and ``vi`` are nan) and a column ``measure`` (the
        measure of every row, :data:`MEASURE_COLUMN`), which every function that
        reads an effect-size table uses and which survives ``merge`` and ``concat``.
        Existing columns of those names are replaced.

    Raises
    ------
    InputError
        An unknown measure or option; a named column that is not in ``data``;
        a column the measure does not use, or one it needs that was not given;
        an empty table; a cell that is not a number, or out of range. The
        message names the file, the spreadsheet row (header = row 1), the study
        and the column. (References: see the module notes.)
    """
    chosen = check_measure(measure)
    spec = _SPECS[chosen]
    rule = check_zero_cell_rule(to)
    add = _check_add(add)
    level = check_level(level)
    given = _given(
        ai, bi, ci, di, n1i, n2i, m1i, sd1i, m2i, sd2i, xi, ni, ri, yi, vi, sei, ci_lb, ci_ub
    )
    precomputed = _check_arguments(chosen, spec, given, source)
    frame, by_position = _study_table(data, given, source)
    table = _Table(frame, given, source, labels, by_position=by_position)
    if precomputed:
        outcome = _precomputed(table, spec, level)
    else:
        outcome = _from_raw_data(table, chosen, spec, add, rule, drop00)
    return _with_effects(table.data, outcome, spec, chosen)


def _from_raw_data(
    table: _Table, measure: Measure, spec: _Spec, add: float, rule: ZeroCellRule, drop00: bool
) -> _Outcome:
    """The effects of a measure's family, computed from the raw columns."""
    if spec.family == "means":
        return _means(table, measure)
    if spec.family == "counts":
        return _counts(table, measure, spec, add, rule, drop00)
    if spec.family == "proportion":
        return _proportion(table, spec, add, rule)
    return _correlation(table)


def _with_effects(
    data: pd.DataFrame | Columns, outcome: _Outcome, spec: _Spec, measure: str
) -> pd.DataFrame | Columns:
    """``data`` with ``yi``, ``vi``, ``exclusion_reason`` and ``measure`` added."""
    effect, missing, reasons = outcome
    excluded = np.isnan(effect.yi) | np.isnan(effect.vi)
    n = len(missing)
    if not excluded.any() and missing.count(None) == n and reasons.count(None) == n:
        final = np.full(n, None, dtype=object)  # every row used, as in most tables
        yi, vi = effect.yi.copy(), effect.vi.copy()
    else:
        fallback = f"the {spec.name} cannot be computed from these values"
        why = np.array(reasons, dtype=object)
        why[excluded & (why == None)] = fallback  # noqa: E711 - elementwise on objects
        why[~excluded] = None
        gone = np.array(missing, dtype=object)
        final = np.where(gone != None, gone, why)  # noqa: E711 - a missing value explains first
        dropped = final != None  # noqa: E711
        yi, vi = np.where(dropped, np.nan, effect.yi), np.where(dropped, np.nan, effect.vi)
    if isinstance(data, Columns):
        measures = np.full(len(data), measure, dtype=object)
        return data.with_columns(
            yi=yi, vi=vi, exclusion_reason=final.astype(object), **{MEASURE_COLUMN: measures}
        )
    import pandas as pd

    out = data.copy()
    out["yi"] = yi
    out["vi"] = vi
    out["exclusion_reason"] = pd.Series(final, index=data.index, dtype=object)
    out[MEASURE_COLUMN] = measure
    return out


def _check_arguments(
    measure: Measure, spec: _Spec, given: dict[ColumnArg, Any], source: str | None
) -> bool:
    """Check that the columns given fit the measure; return True for a precomputed effect."""
    raw_allowed = _RAW_ARGS[spec.family]
    raw_given = [arg for arg in given if arg not in _PRECOMPUTED_ARGS]
    pre_given = [arg for arg in given if arg in _PRECOMPUTED_ARGS]
    if pre_given and raw_given:
        raise InputError(
            f"both raw data ({', '.join(raw_given)}) and a precomputed effect "
            f"({', '.join(pre_given)}) were given for {measure}",
            file=source,
            fix="give either the raw columns or yi with vi, sei or ci_lb and ci_ub",
        )
    if pre_given:
        if "yi" not in given:
            raise InputError(
                f"{', '.join(pre_given)} given without yi, the estimate",
                file=source,
                fix="name the column that holds the estimate as yi",
            )
        kinds: list[str] = [k for k in ("vi", "sei") if k in given]
        has_ci = "ci_lb" in given or "ci_ub" in given
        if has_ci and not ("ci_lb" in given and "ci_ub" in given):
            raise InputError(
                "a confidence interval needs both limits, ci_lb and ci_ub",
                file=source,
                fix="name the columns of both limits",
            )
        if has_ci:
            kinds.append("ci_lb/ci_ub")
        if len(kinds) != 1:
            raise InputError(
                "a precomputed effect yi needs exactly one of vi, sei, or ci_lb with ci_ub; "
                + ("none was given" if not kinds else f"got {' and '.join(kinds)}"),
                file=source,
                fix="name one column for the variance, the standard error, or both CI limits",
            )
        return True
    if spec.family == "generic":
        raise InputError(
            "measure GEN is a precomputed effect and needs yi with vi, sei or ci_lb and ci_ub",
            file=source,
            fix="name the estimate column as yi, and its variance, SE or CI limits",
        )
    unused = [arg for arg in raw_given if arg not in raw_allowed]
    if unused:
        raise InputError(
            f"measure {measure} does not use {', '.join(unused)} "
            f"(it uses {', '.join(raw_allowed)})",
            file=source,
            fix="remove those columns, or choose the measure that uses them",
        )
    needed: list[tuple[ColumnArg, ...]]
    if spec.family == "counts":
        needed = [("ai",), ("n1i", "bi"), ("ci",), ("n2i", "di")]
    else:
        needed = [(arg,) for arg in raw_allowed]
    lacking = [group for group in needed if not any(a in given for a in group)]
    absent = [g[0] + (f" (or {g[1]})" if len(g) > 1 else "") for g in lacking]
    firsts = [group[0] for group in lacking]
    if absent:
        raise InputError(
            f"measure {measure} needs a column for {', '.join(absent)}; none was named",
            file=source,
            fix="name the column that holds each: "
            + ", ".join(f"{first}=COLUMN" for first in firsts)
            + " (on the command line: "
            + " ".join(f"--{first} COLUMN" for first in firsts)
            + ")",
        )
    return False


def _missing_reasons(table: _Table, needed: Sequence[tuple[ColumnArg, ...]]) -> list[str | None]:
    """Per row: which needed values are missing (a group is missing if all its columns are)."""
    masks: list[tuple[str, npt.NDArray[np.bool_]]] = []
    for group in needed:
        present = [a for a in group if a in table.values]
        mask = np.logical_and.reduce([np.isnan(table.values[a]) for a in present])
        masks.append((" and ".join(table.named(a) for a in present), mask))
    any_missing = np.logical_or.reduce([m for _, m in masks])
    reasons: list[str | None] = [None] * len(table.data)
    for i in np.flatnonzero(any_missing):
        names = [name for name, mask in masks if mask[i]]
        plural = len(names) > 1 or " and " in names[0]
        reasons[i] = f"{', '.join(names)} {'are' if plural else 'is'} missing"
    return reasons


_Outcome: TypeAlias = tuple[EffectArrays, list[str | None], list[str | None]]


def _reasons(
    n: int, conditions: Sequence[tuple[npt.NDArray[np.bool_], Callable[[int], str]]]
) -> list[str | None]:
    """The first reason whose condition holds, per row (for rows that cannot be estimated)."""
    out: list[str | None] = [None] * n
    for mask, text in reversed(conditions):
        for i in np.flatnonzero(mask):
            out[i] = text(int(i))
    return out


_VALUE_FIX = "correct the value, or leave the cell blank if it is not reported"
_SWAP_FIX = "check that the events and totals columns are not swapped"

#: Where a published estimate and its limits must lie, by transform: (low, high, in words).
_DOMAINS: dict[Transform, tuple[float, float, str]] = {
    "log": (0.0, math.inf, "> 0"),
    "logit": (0.0, 1.0, "strictly between 0 and 1"),
    "atanh": (-1.0, 1.0, "strictly between -1 and 1"),
}


def _check_domain(table: _Table, arg: ColumnArg, spec: _Spec) -> None:
    """A published ratio, proportion or correlation must lie where its transform is finite."""
    low, high, domain = _DOMAINS[spec.transform]
    table.check(
        arg,
        (table.values[arg] <= low) | (table.values[arg] >= high),
        f"a published {spec.published} must be {domain} (an estimate given with ci_lb and "
        f"ci_ub is read on the {spec.published} scale)",
        f"check that the column holds the {spec.published} itself, not its transformed value",
    )


def _precomputed(table: _Table, spec: _Spec, level: float) -> _Outcome:
    v = table.values
    estimate = v["yi"]
    needed: list[tuple[ColumnArg, ...]]
    if "vi" in v:
        table.check("vi", v["vi"] <= 0, "a sampling variance must be > 0", _VALUE_FIX)
        effect = _estimable(estimate, v["vi"])
        needed = [("yi",), ("vi",)]
    elif "sei" in v:
        table.check("sei", v["sei"] <= 0, "a standard error must be > 0", _VALUE_FIX)
        effect = from_standard_error(estimate, v["sei"])
        needed = [("yi",), ("sei",)]
    else:
        lb, ub = v["ci_lb"], v["ci_ub"]
        if spec.transform != "none":
            for arg in _INTERVAL_ARGS:
                _check_domain(table, arg, spec)
        table.fail(
            lb > ub,
            "ci_lb",
            lambda i: f"ci_lb is {_num(lb[i])}, above ci_ub {_num(ub[i])}",
            "check that the lower and upper limits are not swapped",
        )
        table.fail(
            lb == ub,
            "ci_lb",
            lambda i: f"ci_lb equals ci_ub ({_num(lb[i])}); a zero-width interval gives no SE",
            "check the limits; if the interval is not reported, leave both cells blank",
        )
        effect = from_confidence_interval(estimate, lb, ub, level=level, transform=spec.transform)
        needed = [(arg,) for arg in _INTERVAL_ARGS]
    return effect, _missing_reasons(table, needed), [None] * len(table.data)


_INTERVAL_ARGS: tuple[ColumnArg, ...] = ("yi", "ci_lb", "ci_ub")


def _check_size(table: _Table, arg: ColumnArg) -> None:
    table.check(arg, table.values[arg] < 1, "a sample size must be at least 1", _VALUE_FIX)


def _means(table: _Table, measure: Measure) -> _Outcome:
    v = table.values
    for arg in _SD_ARGS:
        table.check(
            arg,
            v[arg] <= 0,
            "a standard deviation must be > 0",
            "correct the value (an SE of a mean converts with sd = se * sqrt(n)), or leave the "
            "cell blank if it is not reported",
        )
    for arg in _SIZE_ARGS:
        _check_size(table, arg)
    args = (v["m1i"], v["sd1i"], v["n1i"], v["m2i"], v["sd2i"], v["n2i"])
    missing = _missing_reasons(table, [(a,) for a in _RAW_ARGS["means"]])
    if measure == "MD":
        return mean_difference(*args), missing, [None] * len(table.data)
    total = v["n1i"] + v["n2i"]
    reasons = _reasons(
        len(table.data),
        [
            (
                total <= 3,
                lambda i: (
                    f"n1i + n2i is {_num(total[i])}; Hedges' g needs n1i + n2i > 3 "
                    "(two degrees of freedom for the small-sample correction)"
                ),
            )
        ],
    )
    return standardized_mean_difference(*args), missing, reasons


_SD_ARGS: tuple[ColumnArg, ...] = ("sd1i", "sd2i")
_SIZE_ARGS: tuple[ColumnArg, ...] = ("n1i", "n2i")
_CELL_ARGS: tuple[ColumnArg, ...] = ("ai", "bi", "ci", "di")


def _arm(
    table: _Table, group: int, events: ColumnArg, others: ColumnArg, total: ColumnArg
) -> tuple[FloatArray, FloatArray]:
    """Events and non-events of one arm, from events with totals and/or non-events."""
    v = table.values
    a = v[events]
    if total not in v:
        b = v[others]
        table.fail(
            a + b < 1,
            others,
            lambda i: f"{events} + {others} is 0; group {group} must have at least one participant",
            _VALUE_FIX,
        )
        return a, b
    n = v[total]
    table.fail(
        a > n,
        events,
        lambda i: (
            f"{events} is {_num(a[i])} but {total} is {_num(n[i])}; events cannot outnumber "
            f"the participants of group {group}"
        ),
        _SWAP_FIX,
    )
    if others not in v:
        return a, n - a
    b = v[others]
    table.fail(
        np.abs(a + b - n) > 1e-9 * np.maximum(1.0, np.abs(n)),
        others,
        lambda i: f"{events} + {others} is {_num(a[i] + b[i])} but {total} is {_num(n[i])}",
        f"give {total} or {others}, or make them agree",
    )
    # as metafor: the non-events where given, else the total minus the events
    return a, np.where(np.isnan(b), n - a, b)


def _counts(
    table: _Table, measure: Measure, spec: _Spec, add: float, to: ZeroCellRule, drop00: bool
) -> _Outcome:
    v = table.values
    for arg in _CELL_ARGS:
        if arg in v:
            table.check(arg, v[arg] < 0, "a count cannot be negative", _VALUE_FIX)
    for arg in _SIZE_ARGS:
        if arg in v:
            _check_size(table, arg)
    a, b = _arm(table, 1, "ai", "bi", "n1i")
    c, d = _arm(table, 2, "ci", "di", "n2i")
    missing = _missing_reasons(table, [("ai",), ("n1i", "bi"), ("ci",), ("n2i", "di")])
    compute = {"OR": log_odds_ratio, "RR": log_risk_ratio, "RD": risk_difference}[measure]
    effect = compute(a, b, c, d, add=add, to=to, drop00=drop00)
    dropped = _double_zero(a, b, c, d) & drop00
    no_events = (a == 0) & (c == 0)
    reasons = _reasons(
        len(table.data),
        [
            (
                dropped,
                lambda i: (
                    (
                        "double-zero study (no events in either arm)"
                        if no_events[i]
                        else "double-zero study (no non-events in either arm: every "
                        "participant had the event)"
                    )
                    + f" dropped for {measure}: drop00=True"
                ),
            ),
            (
                (a == 0) | (b == 0) | (c == 0) | (d == 0),
                lambda i: (
                    f"a zero cell makes the {spec.name} infinite without a correction "
                    f"(add={_num(add)}, to={to!r})"
                ),
            ),
        ],
    )
    return effect, missing, reasons


def _proportion(table: _Table, spec: _Spec, add: float, to: ZeroCellRule) -> _Outcome:
    v = table.values
    x, n = v["xi"], v["ni"]
    table.check("xi", x < 0, "a count cannot be negative", _VALUE_FIX)
    _check_size(table, "ni")
    table.fail(
        x > n,
        "xi",
        lambda i: (
            f"xi is {_num(x[i])} but ni is {_num(n[i])}; events cannot outnumber the participants"
        ),
        _SWAP_FIX,
    )
    missing = _missing_reasons(table, [("xi",), ("ni",)])
    reasons = _reasons(
        len(x),
        [
            (
                (x == 0) | (x == n),
                lambda i: (
                    f"no events or only events make the {spec.name} infinite without a "
                    f"correction (add={_num(add)}, to={to!r})"
                ),
            )
        ],
    )
    return logit_proportion(x, n, add=add, to=to), missing, reasons


def _correlation(table: _Table) -> _Outcome:
    v = table.values
    r, n = v["ri"], v["ni"]
    table.check("ri", np.abs(r) > 1, "a correlation must be between -1 and 1", _VALUE_FIX)
    _check_size(table, "ni")
    missing = _missing_reasons(table, [("ri",), ("ni",)])
    reasons = _reasons(
        len(r),
        [
            (
                n <= 3,
                lambda i: f"ni is {_num(n[i])}; the variance 1/(ni - 3) of Fisher's z needs ni > 3",
            ),
            (
                np.abs(r) == 1,
                lambda i: f"ri is {_num(r[i])}; Fisher's z is infinite at a correlation of -1 or 1",
            ),
        ],
    )
    return fisher_z(r, n), missing, reasons
