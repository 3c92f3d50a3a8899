"""Speed and memory of a three-level REML fit at scale.

Run with ``.venv/bin/python benchmarks/multilevel.py``. Fits ``~ 1 | study/esid``
(sampling errors, effects within studies, studies) to 100,000 effects in 10,000
studies (2 to 18 effects each, a moderator), with V diagonal and with V from
``vcalc`` (rho = 0.6 within studies), and prints the time of the fit (estimates,
SEs, tests, log-likelihood, fit statistics, I^2 per level; the profile intervals
are computed when first read, and timed separately at k = 10,000) and the peak
extra memory, which grows linearly with k: the marginal covariance is held as
10,000 small blocks, never as a k x k matrix. metafor's rma.mv builds k x k
matrices (80 GB at k = 10^5) and cannot fit this.

Both the wall-clock time and the CPU time of the process are printed, with the
machine's load average: on a busy machine the wall-clock time grows with the load
while the CPU time stays close to what an idle machine would show.
"""

from __future__ import annotations

import os
import time
import tracemalloc

import numpy as np
import pandas as pd

import metaan


def _data(n_studies: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 19, n_studies)
    sizes = np.round(sizes * (10 * n_studies / sizes.sum())).astype(int).clip(1)
    study = np.repeat(np.arange(n_studies), sizes)
    esid = np.concatenate([np.arange(s) for s in sizes])
    k = study.size
    vi = rng.uniform(0.01, 0.2, k)
    x = rng.normal(size=k)
    yi = (
        0.3 + 0.1 * x + rng.normal(0, 0.3, n_studies)[study] + rng.normal(0, 0.2, k)
        + rng.normal(0, np.sqrt(vi))
    )  # fmt: skip
    return pd.DataFrame({"study": study, "esid": esid, "yi": yi, "vi": vi, "x": x})


def _time(data: pd.DataFrame, V: object) -> tuple[float, float, float, metaan.MultilevelResult]:
    """The best of three runs (wall and CPU seconds), the peak memory in MiB."""
    wall, cpu = [], []
    for _ in range(3):
        start, start_cpu = time.perf_counter(), time.process_time()
        res = metaan.fit_multilevel(data, V=V, levels=["study", "esid"], mods=["x"])
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    tracemalloc.start()
    metaan.fit_multilevel(data, V=V, levels=["study", "esid"], mods=["x"])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return min(wall), min(cpu), peak / 2**20, res


def main() -> None:
    print(f"load average before: {os.getloadavg()[0]:.1f} (2 cores)")
    for n_studies in (1_000, 10_000):
        data = _data(n_studies, 1)
        for label, V in (("diag(vi)", None), ("vcalc rho=0.6", "vcalc")):
            if V == "vcalc":
                V = metaan.vcalc(data, cluster="study", obs="esid", rho=0.6)
            elapsed, cpu, mib, res = _time(data, V)
            print(
                f"three-level REML, k = {len(data):,} in {n_studies:,} studies, V {label}: "
                f"{elapsed:.2f} s ({cpu:.2f} s CPU), peak {mib:.0f} MiB "
                f"(sigma2 = {res.sigma2[0]:.4f}, {res.sigma2[1]:.4f})"
            )
    data = _data(1_000, 2)
    res = metaan.fit_multilevel(data, levels=["study", "esid"])
    start, start_cpu = time.perf_counter(), time.process_time()
    _ = res.profile_ci
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    print(
        f"profile-likelihood CIs of both components, k = {len(data):,}: "
        f"{wall:.2f} s ({cpu:.2f} s CPU)"
    )
    print(f"load average after: {os.getloadavg()[0]:.1f} (2 cores)")


if __name__ == "__main__":
    main()
