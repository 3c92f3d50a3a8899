"""Performance measures: merged unit by unit, they equal the direct formulas of
Morris, White & Crowther (2019) over all replications."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from metaan.simulate import MethodSpec, Scenario
from metaan.simulate.fitting import FAILED, NOT_ESTIMABLE, OK, BatchFit
from metaan.simulate.metrics import block_statistics, combine

SCENARIO = Scenario(index=4, measure="SMD", k=5, effect=0.3, tau2=0.09, i2=50.0, typical_v=0.09)
RANDOM = MethodSpec("REML", "knha", "metafor")
TABLES = MethodSpec("MH", "z", "none")


def _fake_fit(n: int, seed: int, *, tables: bool = False) -> BatchFit:
    rng = np.random.default_rng(seed)
    est = 0.3 + 0.2 * rng.standard_normal(n)
    half = 0.35 + 0.1 * rng.random(n)
    tau2 = np.maximum(0.0, 0.09 + 0.1 * rng.standard_normal(n))
    pi_half = half + 0.4
    status = np.full(n, OK, dtype=np.int8)
    status[[3, 250]] = NOT_ESTIMABLE
    status[[7]] = FAILED
    nan = np.full(n, math.nan)
    fit = BatchFit(
        estimate=est,
        se=half / 1.96,
        ci_lb=est - half,
        ci_ub=est + half,
        pval=rng.random(n),
        tau2=nan if tables else tau2,
        pi_lb=nan if tables else est - pi_half,
        pi_ub=nan if tables else est + pi_half,
        status=status,
    )
    for name in ("estimate", "ci_lb", "ci_ub", "pval"):
        getattr(fit, name)[status != OK] = math.nan
    return fit


def _metrics(fit: BatchFit, method: MethodSpec, cuts: list[int]) -> dict[str, float]:
    """Summarise ``fit`` in blocks cut at ``cuts`` (unit boundaries of 100), then combine."""
    units, values = [], []
    for a, b in itertools.pairwise(cuts):
        part = BatchFit(*(getattr(fit, f)[a:b] for f in BatchFit.__dataclass_fields__))
        u, v = block_statistics(
            SCENARIO, {method: part}, first_unit=a // 100, unit_size=100, level=95.0
        )
        units.append(u)
        values.append(v)
    # Blocks may arrive in any order.
    table = combine(SCENARIO, [method], units[::-1], values[::-1], replications=cuts[-1])
    return table.iloc[0].to_dict()


def test_merged_units_give_the_direct_measures_and_their_monte_carlo_ses() -> None:
    fit = _fake_fit(1050, 1)
    row = _metrics(fit, RANDOM, [0, 300, 1000, 1050])
    ok = fit.status == OK
    n = int(ok.sum())
    err = fit.estimate[ok] - 0.3
    assert row["fits"] == n == 1047
    assert row["failed"] == 1 and row["not_estimable"] == 2
    assert row["bias"] == pytest.approx(err.mean(), rel=1e-12)
    assert row["bias_mcse"] == pytest.approx(err.std(ddof=1) / math.sqrt(n), rel=1e-10)
    mse = np.mean(err**2)
    assert row["rmse"] == pytest.approx(math.sqrt(mse), rel=1e-12)
    se_mse = np.std(err**2, ddof=1) / math.sqrt(n)
    assert row["rmse_mcse"] == pytest.approx(se_mse / (2 * math.sqrt(mse)), rel=1e-10)
    assert row["median"] == pytest.approx(np.median(fit.estimate[ok]), rel=1e-15)
    t_err = fit.tau2[ok] - 0.09
    assert row["tau2_bias"] == pytest.approx(t_err.mean(), rel=1e-12)
    assert row["tau2_median"] == np.median(fit.tau2[ok])
    cover = np.mean((fit.ci_lb[ok] <= 0.3) & (0.3 <= fit.ci_ub[ok]))
    assert row["ci_coverage"] == pytest.approx(cover, rel=1e-15)
    assert row["ci_coverage_mcse"] == pytest.approx(math.sqrt(cover * (1 - cover) / n), rel=1e-12)
    width = fit.ci_ub[ok] - fit.ci_lb[ok]
    assert row["ci_width"] == pytest.approx(width.mean(), rel=1e-12)
    assert row["ci_width_mcse"] == pytest.approx(width.std(ddof=1) / math.sqrt(n), rel=1e-10)
    # Coverage of a new study's effect theta ~ N(0.3, 0.09): its probability, averaged.
    prob = stats.norm.cdf(fit.pi_ub[ok], 0.3, 0.3) - stats.norm.cdf(fit.pi_lb[ok], 0.3, 0.3)
    assert row["pi_coverage"] == pytest.approx(prob.mean(), rel=1e-12)
    assert row["pi_coverage_mcse"] == pytest.approx(prob.std(ddof=1) / math.sqrt(n), rel=1e-10)
    assert row["power"] == pytest.approx(np.mean(fit.pval[ok] < 0.05), rel=1e-15)
    assert math.isnan(row["type1_error"])
    assert row["boundary_share"] == pytest.approx(np.mean(fit.tau2[ok] == 0), rel=1e-15)
    assert row["not_estimable_share"] == pytest.approx(2 / 1050, rel=1e-15)


def test_the_measures_do_not_depend_on_how_the_replications_were_cut() -> None:
    fit = _fake_fit(1050, 2)
    whole = _metrics(fit, RANDOM, [0, 1050])
    cut = _metrics(fit, RANDOM, [0, 100, 200, 700, 1050])
    assert whole.keys() == cut.keys()
    for key, value in whole.items():
        assert value == cut[key] or (value != value and cut[key] != cut[key]), key


def test_methods_without_tau2_or_a_prediction_interval_report_none() -> None:
    fit = _fake_fit(300, 3, tables=True)
    row = _metrics(fit, TABLES, [0, 300])
    for key in ("tau2_bias", "tau2_rmse", "tau2_median", "pi_coverage", "boundary_share"):
        assert math.isnan(row[key]), key
    assert row["label"] == "MH"
    assert row["ci_coverage"] > 0
