"""Speed of a network meta-analysis through ``metaan.fit_network``.

Run with ``.venv/bin/python benchmarks/network.py``. Prints the best CPU time and the
median wall time of one
full fit (comparisons from arms, common and random effects, τ², the
design-by-treatment decomposition, P-scores and back-calculated netsplit) of:

* the GRISELDA SSRI network: the six SSRIs and placebo, response, 138 trials with
  288 arms (12 of them three-arm trials), from the netmeta reference file;
* a network of 1,000 studies (two- and three-arm, about half each) over 20
  treatments, simulated with a fixed seed.

Targets: 50 ms for GRISELDA, 1 s for the 1,000 studies. R's netmeta builds m x m
matrices (the hat matrix and the study indicator of its τ² estimator) and loops over
treatment triples in R, so its time grows with the square of the comparisons; a
reference point measured on the same machine kind is given in the README.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import metaan

REFERENCE = Path(__file__).resolve().parent.parent / "tests" / "reference" / "netmeta"


def griselda() -> pd.DataFrame:
    raw = json.loads((REFERENCE / "griselda_ssri_OR.json").read_text(encoding="utf-8"))
    return pd.DataFrame(raw["input"])


def simulated(studies: int = 1000, treatments: int = 20, seed: int = 1) -> pd.DataFrame:
    """Arms of two- and three-arm studies with binary outcomes, treatment effects on the
    log odds scale and between-study heterogeneity."""
    rng = np.random.default_rng(seed)
    effect = rng.normal(0.0, 0.4, treatments)
    rows = []
    for s in range(studies):
        arms = rng.choice(treatments, size=2 + int(rng.random() < 0.5), replace=False)
        base = rng.normal(-0.5, 0.5)
        for t in arms:
            n = int(rng.integers(40, 400))
            p = 1.0 / (1.0 + np.exp(-(base + effect[t] + rng.normal(0.0, 0.15))))
            rows.append(
                {"study": f"S{s}", "drug": f"T{t:02d}", "events": rng.binomial(n, p), "n": n}
            )
    return pd.DataFrame(rows)


def timings(data: pd.DataFrame, repeats: int, **options: Any) -> tuple[float, float]:
    """Best CPU time and median wall time of ``repeats`` fits (after one warm-up). CPU
    time is the figure to compare on a shared machine, where wall time waits for the
    other processes."""
    metaan.fit_network(data, **options)
    cpu, wall = [], []
    for _ in range(repeats):
        start_cpu, start = time.process_time(), time.perf_counter()
        metaan.fit_network(data, **options)
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return min(cpu), statistics.median(wall)


def main() -> None:
    ssri = griselda()
    options = {"study": "study_id", "treatment": "drug", "events": "responders"}
    for method in ("DL", "REML"):
        cpu, wall = timings(
            ssri,
            15,
            **options,
            n="n_randomised",
            measure="OR",
            method=method,
            reference="placebo",
            small_values="bad",
        )
        print(
            f"GRISELDA SSRI network, 138 trials, {method}: CPU {cpu * 1e3:.1f} ms, "
            f"wall {wall * 1e3:.1f} ms (target <= 50 ms)"
        )
    big = simulated()
    k = big["study"].nunique()
    for method in ("DL", "REML"):
        cpu, wall = timings(
            big,
            5,
            study="study",
            treatment="drug",
            events="events",
            n="n",
            measure="OR",
            method=method,
        )
        print(
            f"{k} studies ({len(big)} arms), 20 treatments, {method}: CPU {cpu:.3f} s, "
            f"wall {wall:.3f} s (target <= 1 s)"
        )
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
