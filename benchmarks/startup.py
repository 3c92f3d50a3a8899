"""Wall time of ``metaan fit`` from the shell, start-up included.

Run with ``.venv/bin/python benchmarks/startup.py``. Writes a CSV of 10 studies
and one of 100,000 (seeded; a study label, yi and vi in each row, so the text
column's checks are timed too) into a temporary folder, then runs
``metaan fit FILE`` as a new process several times and prints the median wall
time of each, with the time of ``python -c pass``, of the imports that every
fit needs (numpy and click: the floor; metaan computes its distributions
itself, so the fit path imports no scipy) and of the fit command's
imports alone, so the share of start-up is visible. Whether metaan's sources
are byte-compiled (``make`` does it; an editable install with
``PYTHONDONTWRITEBYTECODE=1`` otherwise compiles them on every run) is
printed. Where ``Rscript`` with metafor is installed, the same fit of 10
studies by ``Rscript -e 'metafor::rma(...)'`` is timed as a peer. Targets
(issue 14): <= 0.35 s at k = 10 and <= 0.8 s at k = 100,000.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BIN = Path(sys.executable).parent


def _write(folder: Path, k: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    vi = rng.uniform(0.01, 0.2, k)
    yi = rng.normal(0.3, np.sqrt(vi + 0.05))
    path = folder / f"k{k}.csv"
    rows = (f"S{i + 1},{y:.6f},{v:.6f}" for i, (y, v) in enumerate(zip(yi, vi, strict=True)))
    lines = ["study,yi,vi", *rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _median_wall(command: list[str], repeats: int) -> float:
    """Median wall time of ``command``; the CPU time (user + system) of the same runs
    is kept in :data:`CPU`, since on a busy machine wall time measures the others."""
    subprocess.run(command, check=True, capture_output=True)  # warm the file cache
    runs, cpu = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        runs.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    CPU[" ".join(command)] = statistics.median(cpu)
    return statistics.median(runs)


#: Median CPU time of each command timed, by command line.
CPU: dict[str, float] = {}


def main() -> None:
    metaan = str(BIN / "metaan")
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        small = _write(Path(tmp), 10, 1)
        large = _write(Path(tmp), 100_000, 2)
        bare = _median_wall([python, "-c", "pass"], 21)
        floor = _median_wall([python, "-c", "import numpy, click"], 21)
        imports = _median_wall([python, "-c", "import metaan.cli._fit"], 21)
        k10 = _median_wall([metaan, "fit", str(small)], 21)
        k1e5 = _median_wall([metaan, "fit", str(large)], 9)
        peer = None
        if shutil.which("Rscript"):
            code = (
                "suppressPackageStartupMessages(library(metafor));"
                f"d <- read.csv('{small}'); print(rma(yi, vi, data = d))"
            )
            try:
                peer = _median_wall(["Rscript", "-e", code], 5)
            except subprocess.CalledProcessError:
                peer = None
    cpu = list(CPU.values())
    load = os.getloadavg()[0]
    print(f"metaan fit FILE from the shell, median wall and CPU time (load average {load:.1f})")
    print(f"  python -c pass:              {bare:6.3f} s wall {cpu[0]:6.3f} s CPU")
    print(f"  numpy, click:                {floor:6.3f} s wall {cpu[1]:6.3f} s CPU (the floor)")
    print(f"  imports of the fit command:  {imports:6.3f} s wall {cpu[2]:6.3f} s CPU")
    print(
        f"  k = 10:                      {k10:6.3f} s wall {cpu[3]:6.3f} s CPU (target <= 0.35 s)"
    )
    print(
        f"  k = 100,000:                 {k1e5:6.3f} s wall {cpu[4]:6.3f} s CPU (target <= 0.8 s)"
    )
    compiled = any(Path(__file__).resolve().parent.parent.glob("src/metaan/__pycache__/*.pyc"))
    print(f"  metaan's sources byte-compiled (src/metaan/__pycache__): {compiled}")
    if peer is not None:
        print(
            f"  Rscript metafor rma, k = 10: {peer:6.3f} s wall {cpu[5]:6.3f} s CPU "
            f"(metaan takes {k10 / peer:.2f}x the time)"
        )


if __name__ == "__main__":
    main()
