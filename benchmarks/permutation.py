"""Speed of the permutation test of a meta-regression's moderators.

Run with ``.venv/bin/python benchmarks/permutation.py``. Prints the median time
of ``permutation_test(result, 1000, seed=...)`` (999 permuted refits plus the
observed data) for a meta-regression on one continuous and one three-level
moderator (p = 4) at k = 50, for each tau^2 estimator and both tests, then the
REML time at larger k, and, for comparison, the time of the same refits as a
Python loop of full ``fit_regression`` calls (what metafor's ``permutest``
does: one ``rma`` refit per permutation).

Measured on a 2-core machine (numpy with OpenBLAS): at k = 50, REML 15 ms,
ML 8 ms, PM 6 ms, DL/HE/SJ 2.5-3 ms, EE 2 ms (z and knha alike); REML at
k = 500 130 ms and at k = 5,000 0.75 s; the Python loop of 999 full REML refits
at k = 50 takes 1.0 s. Timings rise several-fold while other processes keep
the cores busy, because the multithreaded BLAS products then wait for a core.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pandas as pd

from metaan.regression import fit_regression, permutation_test


def _table(k: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=k)
    vi = rng.uniform(0.01, 0.2, k)
    return pd.DataFrame(
        {
            "yi": 0.2 * x + rng.normal(scale=np.sqrt(vi + 0.05)),
            "vi": vi,
            "dose": x,
            "drug": rng.choice(["ssri", "psilocybin", "cannabinoid"], size=k),
        }
    )


def _median_time(func: object, repeats: int) -> float:
    assert callable(func)
    func()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    table = _table(50, seed=1)
    print("permutation_test(result, 1000): 999 refits + the observed data, p = 4")
    print(f"{'k':>6} {'method':>6} {'test':>5} {'median':>10}")
    for method in ("REML", "ML", "PM", "DL", "HE", "SJ", "EE"):
        for test in ("z", "knha"):
            res = fit_regression(table, mods=["dose", "drug"], method=method, test=test)
            seconds = _median_time(lambda res=res: permutation_test(res, 1000, seed=1), 7)
            print(f"{50:>6} {method:>6} {test:>5} {seconds * 1e3:>8.1f} ms")
    for k in (500, 5000):
        res = fit_regression(_table(k, seed=2), mods=["dose", "drug"], method="REML")
        seconds = _median_time(lambda res=res: permutation_test(res, 1000, seed=1), 3)
        print(f"{k:>6} {'REML':>6} {'z':>5} {seconds * 1e3:>8.1f} ms")

    res = fit_regression(table, mods=["dose", "drug"], method="REML")
    rng = np.random.default_rng(1)
    orders = [rng.permutation(res.k) for _ in range(999)]

    def loop() -> None:
        for order in orders:
            fit_regression(yi=res.yi[order], vi=res.vi[order], mods=res.X[:, 1:], method="REML")

    seconds = _median_time(loop, 3)
    print(f"\nfor comparison, a Python loop of 999 full REML refits at k = 50: {seconds:.2f} s")


if __name__ == "__main__":
    main()
