"""Speed of many meta-analyses at once, and of one very large one.

Run with ``.venv/bin/python benchmarks/fit_many.py``. Prints:

- one REML fit through ``metaan.fit`` at k = 10, median over 1,000 different
  random data sets (most with tau^2 > 0), beside statsmodels' ``combine_effects``
  (Paule-Mandel; it has no REML) and PyMARE's REML on the same data sets;
- ``metaan.fit_many`` on 10^5 meta-analyses of k = 10, REML and DL, with every
  field (Q-profile CIs included) and without the Q-profile, beside PyMARE's
  vectorised REML on the same batch (PyMARE fits a (B, k) array at once);
- one REML fit at k = 10^6 and its peak extra memory.

statsmodels and PyMARE come with the ``bench`` extra (``pip install -e '.[bench]'``);
a peer that is not installed is skipped with a note. Targets (issue 9): one fit
<= 40 us; 10^5 analyses <= 0.5 s for REML and for DL (>= 3x PyMARE's vectorised
REML per analysis); k = 10^6 <= 0.1 s with O(k) memory.
"""

from __future__ import annotations

import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

import metaan


def _sets(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    vi = rng.uniform(0.01, 0.2, (n, k))
    yi = rng.normal(rng.normal(0.3, 0.3, (n, 1)), np.sqrt(vi + 0.1))
    return yi, vi


def _median_time(fn: Callable[[np.ndarray, np.ndarray], Any], yi: np.ndarray, vi: np.ndarray,
                 number: int = 5) -> float:  # fmt: skip
    times = []
    for y, v in zip(yi, vi, strict=True):
        start = time.perf_counter()
        for _ in range(number):
            fn(y, v)
        times.append((time.perf_counter() - start) / number)
    return statistics.median(times)


def _peers() -> dict[str, Callable[[np.ndarray, np.ndarray], Any]]:
    peers: dict[str, Callable[[np.ndarray, np.ndarray], Any]] = {}
    try:
        from statsmodels.stats.meta_analysis import combine_effects

        peers["statsmodels combine_effects (PM)"] = lambda y, v: combine_effects(
            y, v, method_re="pm"
        ).summary_frame()
    except ImportError:
        print("  (statsmodels not installed: pip install -e '.[bench]')")
    try:
        from pymare import estimators

        def pymare_fit(y: np.ndarray, v: np.ndarray) -> Any:
            return estimators.VarianceBasedLikelihoodEstimator(method="REML").fit(
                y=y[:, None], v=v[:, None], X=np.ones((y.size, 1))
            )

        peers["PyMARE REML"] = pymare_fit
    except ImportError:
        print("  (PyMARE not installed: pip install -e '.[bench]')")
    return peers


def single_fits() -> None:
    yi, vi = _sets(1000, 10, 1)
    tau2_positive = np.mean([metaan.fit(yi=y, vi=v).tau2 > 0 for y, v in zip(yi, vi, strict=True)])
    ours = _median_time(lambda y, v: metaan.fit(yi=y, vi=v), yi, vi)
    print(f"one fit at k = 10, median over 1,000 data sets ({tau2_positive:.0%} with tau^2 > 0)")
    print(f"  metaan.fit REML                  {ours * 1e6:9.1f} us   (target <= 40 us)")
    for name, fn in _peers().items():
        theirs = _median_time(fn, yi[:200], vi[:200], number=2)
        print(f"  {name:32s} {theirs * 1e6:9.1f} us   ratio {theirs / ours:6.2f}")


def many_fits(n: int = 100_000, k: int = 10) -> None:
    yi, vi = _sets(n, k, 2)
    table = pd.DataFrame({"g": np.repeat(np.arange(n), k), "yi": yi.ravel(), "vi": vi.ravel()})
    print(f"fit_many: {n:,} meta-analyses of k = {k}")
    timings = {}
    for method in ("REML", "DL"):
        start = time.perf_counter()
        metaan.fit_many(table, by="g", method=method)
        timings[method] = time.perf_counter() - start
        start = time.perf_counter()
        metaan.engine.fit_segments(
            table["yi"].to_numpy(), table["vi"].to_numpy(), table["g"].to_numpy(),
            method=method, qprofile=False,
        )  # fmt: skip
        bare = time.perf_counter() - start
        print(f"  {method:4s} every field {timings[method]:7.2f} s; engine without the "
              f"Q-profile {bare:7.2f} s   (target <= 0.5 s)")  # fmt: skip
    try:
        from pymare import estimators
    except ImportError:
        print("  (PyMARE not installed: pip install -e '.[bench]')")
        return
    m = 2000
    start = time.perf_counter()
    estimators.VarianceBasedLikelihoodEstimator(method="REML").fit(
        y=yi[:m].T, v=vi[:m].T, X=np.ones((k, 1))
    )
    per = (time.perf_counter() - start) / m
    ours = timings["REML"] / n
    print(
        f"  PyMARE vectorised REML, {m:,} at once: {per * 1e6:7.1f} us per analysis; "
        f"metaan {ours * 1e6:7.1f} us; ratio {per / ours:5.2f} (target >= 3)"
    )


def one_large(k: int = 1_000_000) -> None:
    rng = np.random.default_rng(3)
    vi = rng.uniform(0.01, 0.2, k)
    yi = rng.normal(0.3, np.sqrt(vi + 0.05))
    metaan.fit(yi=yi[:1000], vi=vi[:1000])
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        metaan.fit(yi=yi, vi=vi)
        runs.append(time.perf_counter() - start)
    tracemalloc.start()
    metaan.fit(yi=yi, vi=vi)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"one REML fit at k = {k:,}: {statistics.median(runs):.3f} s (target <= 0.1 s), "
        f"peak extra memory {peak / 2**20:.0f} MiB (inputs {2 * 8 * k / 2**20:.0f} MiB)"
    )


def main() -> None:
    single_fits()
    many_fits()
    one_large()


if __name__ == "__main__":
    main()
