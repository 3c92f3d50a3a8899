"""Speed of simulation studies and of fit_many on tables larger than memory allows.

Run with ``.venv/bin/python benchmarks/simulate.py`` (``--quick`` for a tenth of
the work). Prints:

1. ``metaan simulate``: 10^6 meta-analyses (100 scenarios x 10^4 replications,
   SMD, k from 3 to 20, REML with the z test), in this process and on a Dask
   LocalCluster of 1 and of 2 worker processes; the speed-up from 1 to 2 workers,
   and meta-analyses (= fits) per second. Target: <= 60 s on 2 cores.
2. ``fit_many`` on 10^7 effects in 10^6 meta-analyses (k = 10), in memory and from
   a folder of 20 Parquet files on a LocalCluster of 2 workers.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import metaan
from metaan.simulate import parse_simulation_spec, run_simulation

QUICK = "--quick" in sys.argv
REPLICATIONS = 1_000 if QUICK else 10_000

SPEC = f"""
[simulation]
seed = 1
replications = {REPLICATIONS}
[grid]
measure = ["SMD"]
k = [3, 5, 10, 15, 20]
effect = [0.0, 0.2, 0.5, 0.8]
i2 = [0, 25, 50, 75, 90]
[sample_size]
distribution = "uniform"
low = 20
high = 100
[methods]
estimators = ["REML"]
tests = ["z"]
predictions = ["metafor"]
"""


def time_simulation(scheduler: str, workers: int | None) -> float:
    spec = parse_simulation_spec(SPEC)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        run_simulation(
            spec, folder, scheduler=scheduler, workers=workers, block=REPLICATIONS, figures=False
        )
        return time.perf_counter() - start


def simulation() -> None:
    n = 100 * REPLICATIONS
    print(f"metaan simulate: {n:,} meta-analyses (100 scenarios, k 3-20, REML z)")
    runs = {
        "this process": time_simulation("local", None),
        "LocalCluster, 1 worker": time_simulation("processes", 1),
        "LocalCluster, 2 workers": time_simulation("processes", 2),
    }
    for name, seconds in runs.items():
        print(f"  {name:<26} {seconds:7.1f} s   {n / seconds:>10,.0f} fits/s")
    ratio = runs["LocalCluster, 1 worker"] / runs["LocalCluster, 2 workers"]
    print(f"  speed-up from 1 to 2 workers: {ratio:.2f}x")


def many_table(groups: int, k: int) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    vi = rng.uniform(0.01, 0.2, groups * k)
    theta = np.repeat(rng.normal(0.3, 0.2, groups), k)
    return pd.DataFrame(
        {
            "group": np.repeat(np.arange(groups), k),
            "yi": rng.normal(theta, np.sqrt(vi)),
            "vi": vi,
        }
    )


def fit_many_dask() -> None:
    from distributed import Client, LocalCluster

    groups, k = (100_000, 10) if QUICK else (1_000_000, 10)
    table = many_table(groups, k)
    print(f"fit_many: {groups * k:,} effects in {groups:,} meta-analyses (REML z)")
    start = time.perf_counter()
    metaan.fit_many(table, by="group")
    memory = time.perf_counter() - start
    print(f"  in memory (pandas)          {memory:7.1f} s")
    with tempfile.TemporaryDirectory() as folder:
        for i, rows in enumerate(np.array_split(np.arange(len(table)), 20)):
            table.iloc[rows].to_parquet(Path(folder) / f"part-{i:02d}.parquet", index=False)
        del table
        with (
            LocalCluster(
                n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
            ) as cluster,
            Client(cluster),
        ):
            start = time.perf_counter()
            metaan.fit_many(folder, by="group")
            dask_time = time.perf_counter() - start
    print(f"  Parquet folder, 2 workers   {dask_time:7.1f} s")


if __name__ == "__main__":
    simulation()
    fit_many_dask()
