"""Speed of one random-effects fit through ``metaan.fit``.

Run with ``.venv/bin/python benchmarks/fit.py``. Prints the median time of one
REML fit at k = 10 (estimate, test, CI, tau^2 with its SE, Q, I^2, H^2 and the
prediction interval; the Q-profile CIs of tau^2, I^2 and H^2 are computed when
first read), the same with every number read (``to_dict()``, which computes the
Q-profile CIs), and the time and peak extra memory at k = 100,000.

Reference points measured on the same machine kind (2 cores): R's metafor
3.8 takes 3.6 ms for one REML fit at k = 10 and 159 s at k = 4,000 (it builds
k x k matrices and cannot allocate them at k = 100,000); PyMARE takes 0.93 ms
at k = 10.
"""

from __future__ import annotations

import statistics
import time
import tracemalloc

import numpy as np

import metaan


def _data(k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    vi = rng.uniform(0.01, 0.2, k)
    yi = rng.normal(0.3, np.sqrt(vi + 0.05))
    return yi, vi


def time_small(every_number: bool, repeats: int = 7, number: int = 2000) -> float:
    yi, vi = _data(10, 1)
    metaan.fit(yi=yi, vi=vi).to_dict()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        if every_number:
            for _ in range(number):
                metaan.fit(yi=yi, vi=vi).to_dict()
        else:
            for _ in range(number):
                metaan.fit(yi=yi, vi=vi)
        runs.append((time.perf_counter() - start) / number)
    return statistics.median(runs)


def time_large(k: int = 100_000, repeats: int = 5) -> tuple[float, float]:
    yi, vi = _data(k, 2)
    metaan.fit(yi=yi, vi=vi)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        metaan.fit(yi=yi, vi=vi).to_dict()
        runs.append(time.perf_counter() - start)
    tracemalloc.start()
    metaan.fit(yi=yi, vi=vi).to_dict()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(runs), peak / 2**20


def main() -> None:
    small = time_small(every_number=False)
    everything = time_small(every_number=True)
    large, peak_mib = time_large()
    print("metaan.fit, REML, test z")
    print(f"  k = 10:      {small * 1e6:8.1f} µs per fit   (target <= 50 µs; metafor 3.6 ms)")
    print(f"               {everything * 1e6:8.1f} µs with every number read (Q-profile CIs too)")
    print(f"  k = 100,000: {large:8.3f} s per fit, every number read (target <= 0.1 s)")
    print(f"               {peak_mib:8.1f} MiB peak extra memory (inputs are 1.5 MiB)")


if __name__ == "__main__":
    main()
