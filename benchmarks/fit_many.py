"""Speed of one small fit, of many meta-analyses at once, and of one very large one.

Run with ``.venv/bin/python benchmarks/fit_many.py``. Prints:

- one REML fit through ``metaan.fit`` at k = 10 over 1,000 different random data
  sets (most with tau^2 > 0), beside statsmodels' ``combine_effects``
  (Paule-Mandel; it has no REML) and PyMARE's REML on the same data sets. The
  three are timed in turn on each data set, so a busy machine slows them alike,
  and the ratio is the median of the per-set ratios;
- ``metaan.fit_many`` on 10^5 meta-analyses of k = 10, REML and DL, with every
  field (Q-profile CIs included), and the engine alone without the Q-profile,
  beside PyMARE's vectorised REML (a (k, 2,000) array at a time) on the same
  data sets;
- one REML fit at k = 10^6 through ``metaan.fit`` and through the engine alone
  (:func:`metaan.engine.fit_one`), with the peak extra memory.

Every timing is the best of a few repeats, and the load average is printed
first and last: the figures are only comparable between runs on an idle
machine, the ratios against the peers less so. statsmodels and PyMARE come
with the ``bench`` extra (``pip install -e '.[bench]'``); a peer that is not
installed is skipped with a note. Targets (issue 9): one fit <= 40 us; 10^5
analyses <= 0.5 s for REML and for DL (>= 3x PyMARE's vectorised REML per
analysis); k = 10^6 <= 0.1 s with O(k) memory.
"""

from __future__ import annotations

import os
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

import metaan
from metaan.engine import fit_one, fit_segments

Fit = Callable[[np.ndarray, np.ndarray], Any]


def _load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def _sets(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    vi = rng.uniform(0.01, 0.2, (n, k))
    yi = rng.normal(rng.normal(0.3, 0.3, (n, 1)), np.sqrt(vi + 0.1))
    return yi, vi


def _best(fn: Callable[[], Any], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _peers() -> dict[str, Fit]:
    peers: dict[str, Fit] = {}
    try:
        from statsmodels.stats.meta_analysis import combine_effects

        peers["statsmodels combine_effects PM"] = lambda y, v: combine_effects(
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


def single_fits(n: int = 1000) -> None:
    yi, vi = _sets(n, 10, 1)
    positive = np.mean([metaan.fit(yi=y, vi=v).tau2 > 0 for y, v in zip(yi, vi, strict=True)])
    fits: dict[str, Fit] = {"metaan.fit REML": lambda y, v: metaan.fit(yi=y, vi=v), **_peers()}
    times: dict[str, list[float]] = {name: [] for name in fits}
    for i, (y, v) in enumerate(zip(yi, vi, strict=True)):
        for name, fn in fits.items():
            if name == "metaan.fit REML" or i % 5 == 0:  # the peers on every fifth set
                times[name].append(_best(lambda fn=fn, y=y, v=v: fn(y, v), 3))
    ours = times["metaan.fit REML"]
    print(f"one fit at k = 10, {n:,} data sets ({positive:.0%} with tau^2 > 0), best of 3 each")
    print(f"  metaan.fit REML                 median {statistics.median(ours) * 1e6:8.1f} us"
          "   (target <= 40 us)")  # fmt: skip
    for name in list(fits)[1:]:
        ratio = statistics.median(t / o for t, o in zip(times[name], ours[::5], strict=True))
        print(f"  {name:31s} median {statistics.median(times[name]) * 1e6:8.1f} us"
              f"   {ratio:6.1f} x metaan's time on the same sets")  # fmt: skip


def many_fits(n: int = 100_000, k: int = 10) -> None:
    yi, vi = _sets(n, k, 2)
    table = pd.DataFrame({"g": np.repeat(np.arange(n), k), "yi": yi.ravel(), "vi": vi.ravel()})
    y, v, g = table["yi"].to_numpy(), table["vi"].to_numpy(), table["g"].to_numpy()
    print(f"fit_many: {n:,} meta-analyses of k = {k}, best of 3")
    timings = {}
    for method in ("REML", "DL"):
        timings[method] = _best(lambda m=method: metaan.fit_many(table, by="g", method=m), 3)
        bare = _best(lambda m=method: fit_segments(y, v, g, method=m, qprofile=False), 3)
        print(f"  {method:4s} every field {timings[method]:6.2f} s; the engine without the "
              f"Q-profile {bare:6.2f} s   (target <= 0.5 s)")  # fmt: skip
    try:
        from pymare import estimators
    except ImportError:
        print("  (PyMARE not installed: pip install -e '.[bench]')")
        return
    chunk, chunks = 2000, 5
    per = (
        min(
            _best(
                lambda i=i: estimators.VarianceBasedLikelihoodEstimator(method="REML").fit(
                    y=yi[i * chunk : (i + 1) * chunk].T,
                    v=vi[i * chunk : (i + 1) * chunk].T,
                    X=np.ones((k, 1)),
                ),
                2,
            )
            for i in range(chunks)
        )
        / chunk
    )
    ours = timings["REML"] / n
    print(f"  PyMARE vectorised REML, {chunk:,} at a time: {per * 1e6:6.1f} us per analysis; "
          f"metaan fit_many REML {ours * 1e6:6.1f} us: {per / ours:5.2f} x faster "
          "(target >= 3)")  # fmt: skip


def one_large(k: int = 1_000_000) -> None:
    rng = np.random.default_rng(3)
    vi = rng.uniform(0.01, 0.2, k)
    yi = rng.normal(0.3, np.sqrt(vi + 0.05))
    metaan.fit(yi=yi[:1000], vi=vi[:1000])
    whole = _best(lambda: metaan.fit(yi=yi, vi=vi), 3)
    engine = _best(lambda: fit_one(yi, vi, method="REML", test="z", level=95.0), 3)
    tracemalloc.start()
    fit_one(yi, vi, method="REML", test="z", level=95.0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    tracemalloc.start()
    metaan.fit(yi=yi, vi=vi)
    _, peak_whole = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"one REML fit at k = {k:,}, best of 3 (target <= 0.1 s, O(k) memory; inputs "
          f"{2 * 8 * k / 2**20:.0f} MiB)")  # fmt: skip
    print(f"  metaan.fit          {whole:6.3f} s, peak extra memory {peak_whole / 2**20:4.0f} MiB")
    print(f"  the engine alone    {engine:6.3f} s, peak extra memory {peak / 2**20:4.0f} MiB")


def main() -> None:
    print(_load())
    single_fits()
    many_fits()
    one_large()
    print(_load())


if __name__ == "__main__":
    main()
