"""Convergence of the iterative estimators on 10^5 random data sets.

Run with ``.venv/bin/python benchmarks/convergence.py``. The data sets have k
from 2 to 40, sampling-variance scales from 1e-3 to 1e2 and tau^2 zero for a
quarter of them. For ML, REML and PM every estimate must exist and satisfy its
estimating equation to 1e-10 relative (or, at tau^2 = 0, the equation must not
be positive there), evaluated independently in long double. The smaller
version runs in the test suite (tests/test_engine.py).
"""

from __future__ import annotations

import time

import numpy as np

from metaan.engine import fit_segments


def data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    k = rng.integers(2, 41, n)
    scale = 10.0 ** rng.uniform(-3, 2, n)
    tau2 = np.where(rng.random(n) < 0.25, 0.0, scale * rng.uniform(0.05, 3.0, n))
    groups = np.repeat(np.arange(n), k)
    vi = scale[groups] * rng.uniform(0.2, 2.0, groups.size)
    mean = rng.normal(0, 1, n)[groups]
    yi = rng.normal(mean, np.sqrt(vi + tau2[groups]))
    return yi, vi, groups


def residuals(method: str, yi: np.ndarray, vi: np.ndarray, groups: np.ndarray,
              tau2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Each problem's estimating equation at its estimate, and the size of its terms."""
    y, v = yi.astype(np.longdouble), vi.astype(np.longdouble)
    w = 1 / (v + tau2[groups].astype(np.longdouble))
    n = groups.max() + 1

    def total(x: np.ndarray) -> np.ndarray:
        return np.bincount(groups, weights=x.astype(float), minlength=n).astype(np.longdouble)

    sw = total(w)
    e = y - total(w * y)[groups] / sw[groups]
    rss, ypp, sw2 = total(w * e * e), total(w * w * e * e), total(w * w)
    k = np.bincount(groups, minlength=n)
    if method == "REML":
        trp = sw - sw2 / sw
        return np.asarray(ypp - trp, float), np.asarray(ypp + trp, float)
    if method == "ML":
        return np.asarray(ypp - sw, float), np.asarray(ypp + sw, float)
    return np.asarray(rss - (k - 1), float), np.asarray(rss + k - 1, float)


def main(n: int = 100_000) -> None:
    yi, vi, groups = data(n, 2026)
    print(f"{n:,} data sets, k 2..40, variance scales 1e-3..1e2, a quarter with tau^2 = 0")
    for method in ("REML", "ML", "PM"):
        start = time.perf_counter()
        fit = fit_segments(yi, vi, groups, method=method, qprofile=False)
        seconds = time.perf_counter() - start
        failures = int(np.isnan(fit.tau2).sum())
        value, size = residuals(method, yi, vi, groups, fit.tau2)
        boundary = fit.tau2 == 0.0
        worst_inside = float(np.max(np.abs(value[~boundary]) / size[~boundary]))
        bad_boundary = int(np.sum(value[boundary] > 1e-10 * size[boundary]))
        print(
            f"  {method:4s} {seconds:6.2f} s; failures {failures}; at the boundary "
            f"{int(boundary.sum()):,} (equation positive at 0: {bad_boundary}); largest "
            f"relative residual inside {worst_inside:.1e} (must be <= 1e-10)"
        )


if __name__ == "__main__":
    main()
