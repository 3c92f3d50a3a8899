"""Performance measures of the methods, per scenario and method, with Monte Carlo SEs.

A block of replications is summarised unit by unit (a unit is the fixed group of
replications that shares one random stream): the number of fits, counts of
events (CI covers the truth, the test rejects, tau^2 = 0), and the mean and sum
of squared deviations of each continuous quantity. The units of a scenario are
merged in unit order (Chan, Golub & LeVeque 1979), so the measures do not depend
on how the replications were split into blocks. Medians are taken over the
estimates themselves, which each block keeps.

The measures and their Monte Carlo standard errors follow Morris, White &
Crowther (2019), table 6: bias (SE ``sd / sqrt(n)``), root mean squared error
(SE of the MSE by its sample variance, carried to the root by the delta method),
coverage and rejection rates (SE ``sqrt(p (1 - p) / n)``) and mean widths. The
coverage of a prediction interval is the probability that it holds the true
effect of a new study, ``Phi((ub - mu) / tau) - Phi((lb - mu) / tau)``, averaged
over replications: the expected share of new studies covered, without the noise
of drawing them.

References
----------
Morris, T. P., White, I. R., & Crowther, M. J. (2019). Using simulation studies
to evaluate statistical methods. *Statistics in Medicine*, 38(11), 2074-2102.

Chan, T. F., Golub, G. H., & LeVeque, R. J. (1979). Updating formulae and a
pairwise algorithm for computing sample variances. Stanford report STAN-CS-79-773.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from metaan._dist import norm_sf
from metaan.estimators import FloatArray
from metaan.simulate.fitting import FAILED, NOT_ESTIMABLE, OK, BatchFit
from metaan.simulate.spec import MethodSpec, Scenario

__all__ = ["METRIC_COLUMNS", "Columns", "block_statistics", "combine"]

#: A table as named columns of equal length, as blocks are stored and sent.
Columns = dict[str, np.ndarray]

#: Continuous per-replication quantities, kept as (mean, M2) per unit.
_MOMENTS = ("err", "sqerr", "tau2_err", "tau2_sqerr", "ci_width", "pi_cover", "pi_width")
#: Counted events per unit.
_COUNTS = ("n", "not_estimable", "failed", "ci_cover", "reject", "boundary")
#: A unit row's keys: the scenario and the method's position in the scenario's methods.
_KEYS = ("scenario", "method")

#: The columns of the metrics table after the scenario's own columns.
METRIC_COLUMNS: tuple[str, ...] = (
    "method",
    "test",
    "prediction",
    "label",
    "replications",
    "fits",
    "failed",
    "not_estimable",
    "bias",
    "bias_mcse",
    "rmse",
    "rmse_mcse",
    "median",
    "tau2_bias",
    "tau2_bias_mcse",
    "tau2_rmse",
    "tau2_rmse_mcse",
    "tau2_median",
    "ci_coverage",
    "ci_coverage_mcse",
    "ci_width",
    "ci_width_mcse",
    "pi_coverage",
    "pi_coverage_mcse",
    "pi_width",
    "pi_width_mcse",
    "type1_error",
    "type1_error_mcse",
    "power",
    "power_mcse",
    "boundary_share",
    "boundary_share_mcse",
    "not_estimable_share",
    "not_estimable_share_mcse",
)


def _quantities(
    scenario: Scenario, method: MethodSpec, fit: BatchFit, alpha: float
) -> tuple[dict[str, FloatArray], dict[str, FloatArray]]:
    """Per-replication quantities (NaN where a fit is missing) and event indicators."""
    mu, tau2 = scenario.effect, scenario.tau2
    err = fit.estimate - mu
    quantities = {
        "err": err,
        "sqerr": err * err,
        "ci_width": fit.ci_ub - fit.ci_lb,
    }
    events = {
        "ci_cover": (fit.ci_lb <= mu) & (mu <= fit.ci_ub),
        "reject": fit.pval < alpha,
    }
    nan = np.full(err.shape, math.nan)
    if method.is_random:
        t_err = fit.tau2 - tau2
        quantities.update(tau2_err=t_err, tau2_sqerr=t_err * t_err)
        events["boundary"] = fit.tau2 == 0.0
    else:
        quantities.update(tau2_err=nan, tau2_sqerr=nan)
        events["boundary"] = np.zeros(err.shape, dtype=bool)
    if method.prediction == "none":
        quantities.update(pi_cover=nan, pi_width=nan)
    else:
        if tau2 > 0:
            tau = math.sqrt(tau2)
            cover = norm_sf((fit.pi_lb - mu) / tau) - norm_sf((fit.pi_ub - mu) / tau)
        else:
            cover = ((fit.pi_lb <= mu) & (mu <= fit.pi_ub)).astype(np.float64)
        quantities.update(pi_cover=cover, pi_width=fit.pi_ub - fit.pi_lb)
    return quantities, {k: v.astype(np.int64) for k, v in events.items()}


def _by_unit(values: FloatArray, ok: FloatArray, unit_size: int) -> tuple[FloatArray, FloatArray]:
    """Mean and M2 of ``values`` over the fitted replications of each unit."""
    n = values.size
    full = n // unit_size * unit_size
    means, m2s = [], []
    for part, rows in ((slice(0, full), full // unit_size), (slice(full, n), 1)):
        if part.stop == part.start:
            continue
        x = values[part].reshape(rows, -1)
        w = ok[part].reshape(rows, -1)
        count = w.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(w > 0, x, 0.0).sum(axis=1) / count
            dev = np.where(w > 0, x - mean[:, None], 0.0)
        means.append(mean)
        m2s.append((dev * dev).sum(axis=1))
    return np.concatenate(means), np.concatenate(m2s)


def _count_by_unit(values: np.ndarray, unit_size: int) -> np.ndarray:
    n = values.size
    full = n // unit_size * unit_size
    parts = [values[:full].reshape(-1, unit_size).sum(axis=1)]
    if full < n:
        parts.append(np.array([values[full:].sum()]))
    return np.concatenate(parts)


def block_statistics(
    scenario: Scenario,
    fits: Mapping[MethodSpec, BatchFit],
    *,
    first_unit: int,
    unit_size: int,
    level: float,
) -> tuple[Columns, Columns]:
    """Summaries of one block: per unit and method, and the raw estimates, as
    columns (name -> array).

    Returns
    -------
    units
        One row per (unit, method) with the counts and (mean, M2) pairs; a
        method is named by its position in ``fits``.
    values
        One row per replication with each estimator's estimate and tau^2, for
        the medians.
    """
    alpha = 1.0 - level / 100.0
    columns: dict[str, list[np.ndarray]] = {name: [] for name in _KEYS}
    columns["unit"] = []
    values: dict[str, FloatArray] = {}
    for position, (method, fit) in enumerate(fits.items()):
        quantities, events = _quantities(scenario, method, fit, alpha)
        ok = fit.status == OK
        okf = ok.astype(np.float64)
        counts = {
            "n": ok.astype(np.int64),
            "not_estimable": (fit.status == NOT_ESTIMABLE).astype(np.int64),
            "failed": (fit.status == FAILED).astype(np.int64),
            **{name: np.where(ok, flag, 0) for name, flag in events.items()},
        }
        for name in _COUNTS:
            columns.setdefault(name, []).append(_count_by_unit(counts[name], unit_size))
        for name in _MOMENTS:
            mean, m2 = _by_unit(quantities[name], okf, unit_size)
            columns.setdefault(f"{name}_mean", []).append(mean)
            columns.setdefault(f"{name}_m2", []).append(m2)
        units = columns["n"][-1].size
        columns["scenario"].append(np.full(units, scenario.index, dtype=np.int64))
        columns["method"].append(np.full(units, position, dtype=np.int64))
        columns["unit"].append(np.arange(first_unit, first_unit + units, dtype=np.int64))
        values.setdefault(f"{method.method}.estimate", np.where(ok, fit.estimate, math.nan))
        values.setdefault(f"{method.method}.tau2", np.where(ok, fit.tau2, math.nan))
    table = {name: np.concatenate(parts) for name, parts in columns.items()}
    return table, values


def _merge(units: Columns) -> dict[str, FloatArray]:
    """Merge the per-unit (n, mean, M2) of one method's rows, sorted by unit."""
    n_units = units["n"].astype(np.float64).tolist()
    out: dict[str, FloatArray] = {}
    for name in _MOMENTS:
        means = units[f"{name}_mean"].tolist()
        m2s = units[f"{name}_m2"].tolist()
        n, mean, m2 = 0.0, 0.0, 0.0
        for nb, mb, m2b in zip(n_units, means, m2s, strict=True):
            if nb == 0:
                continue
            total = n + nb
            delta = mb - mean
            mean += delta * nb / total
            m2 += m2b + delta * delta * n * nb / total
            n = total
        out[name] = np.array([mean if n > 0 else math.nan, m2])
    return out


def _rate(events: int, n: int) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    p = events / n
    return p, math.sqrt(p * (1.0 - p) / n)


def _mean_and_se(moments: FloatArray, n: int) -> tuple[float, float]:
    mean, m2 = float(moments[0]), float(moments[1])
    if n < 2:
        return mean, math.nan
    return mean, math.sqrt(m2 / (n - 1) / n)


def _rmse(moments: FloatArray, n: int) -> tuple[float, float]:
    mse, se_mse = _mean_and_se(moments, n)
    rmse = math.sqrt(mse) if mse >= 0 else math.nan
    return rmse, (se_mse / (2.0 * rmse) if rmse > 0 else math.nan)


def _group_metrics(
    scenario: Scenario,
    spec: MethodSpec,
    units: Columns,
    replications: int,
    medians: tuple[float, float],
) -> dict[str, object]:
    counts = {name: int(units[name].sum()) for name in _COUNTS}
    n = counts["n"]
    moments = _merge(units)
    row: dict[str, object] = {
        "method": spec.method,
        "test": spec.test,
        "prediction": spec.prediction,
        "label": spec.label,
        "replications": replications,
        "fits": n,
        "failed": counts["failed"],
        "not_estimable": counts["not_estimable"],
    }
    row["bias"], row["bias_mcse"] = _mean_and_se(moments["err"], n)
    row["rmse"], row["rmse_mcse"] = _rmse(moments["sqerr"], n)
    row["median"] = medians[0]
    row["tau2_bias"], row["tau2_bias_mcse"] = _mean_and_se(moments["tau2_err"], n)
    row["tau2_rmse"], row["tau2_rmse_mcse"] = _rmse(moments["tau2_sqerr"], n)
    row["tau2_median"] = medians[1]
    row["ci_coverage"], row["ci_coverage_mcse"] = _rate(counts["ci_cover"], n)
    row["ci_width"], row["ci_width_mcse"] = _mean_and_se(moments["ci_width"], n)
    row["pi_coverage"], row["pi_coverage_mcse"] = _mean_and_se(moments["pi_cover"], n)
    row["pi_width"], row["pi_width_mcse"] = _mean_and_se(moments["pi_width"], n)
    rejection = _rate(counts["reject"], n)
    null = scenario.effect == 0.0
    row["type1_error"], row["type1_error_mcse"] = rejection if null else (math.nan, math.nan)
    row["power"], row["power_mcse"] = (math.nan, math.nan) if null else rejection
    if spec.is_random:
        row["boundary_share"], row["boundary_share_mcse"] = _rate(counts["boundary"], n)
    else:
        row["boundary_share"], row["boundary_share_mcse"] = math.nan, math.nan
    share = _rate(counts["not_estimable"], replications)
    row["not_estimable_share"], row["not_estimable_share_mcse"] = share
    return row


def combine(
    scenario: Scenario,
    methods: Sequence[MethodSpec],
    units: Iterable[Columns],
    values: Iterable[Columns],
    replications: int,
) -> pd.DataFrame:
    """The metrics of one scenario from its blocks' summaries (see :func:`block_statistics`,
    whose ``fits`` were in the order of ``methods``), one row per method. The blocks
    may come in any order."""
    table = _concat(units)
    raw = _concat(values)
    order = np.argsort(table["unit"], kind="stable")
    table = {name: column[order] for name, column in table.items()}
    rows = []
    for position, method in enumerate(methods):
        mine = table["method"] == position
        group = {name: column[mine] for name, column in table.items()}
        medians = (
            _median(raw[f"{method.method}.estimate"]),
            _median(raw[f"{method.method}.tau2"]),
        )
        rows.append(_group_metrics(scenario, method, group, replications, medians))
    return pd.DataFrame(rows, columns=list(METRIC_COLUMNS))


def _concat(parts: Iterable[Columns]) -> Columns:
    parts = list(parts)
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _median(x: FloatArray) -> float:
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else math.nan
