"""Time to build the default report (reports/depression.toml).

Run with ``.venv/bin/python benchmarks/report.py``. Prints the wall and CPU time
of ``metaan report`` as the command line runs it (the PDF rendered in a process
of its own, beside the PNG figures and the Word file), of the library's build in
one process, and of the build without the PDF, with the wall and CPU time of
each step and the load average (the machine is shared: CPU time is the figure to
compare between runs). It builds into a temporary folder; the committed report is
not touched.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from pathlib import Path

from metaan.cli._report import _pdf_in_its_own_process
from metaan.report.build import build_report

SPEC = Path(__file__).resolve().parent.parent / "reports" / "depression.toml"

Step = tuple[str, float, float]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(pdf: bool, parallel: bool) -> tuple[float, float, list[Step]]:
    """Wall time, CPU time (this process and the PDF's) and the steps of one build."""
    steps: list[Step] = []
    last = [time.perf_counter(), time.process_time()]

    def progress(message: str) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        steps.append((message, now - last[0], cpu - last[1]))
        last[:] = [now, cpu]

    with tempfile.TemporaryDirectory() as tmp:
        start, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
        options = {"start_pdf": _pdf_in_its_own_process} if parallel else {}
        build_report(SPEC, Path(tmp) / "depression", pdf=pdf, progress=progress, **options)
        cpu = time.process_time() - cpu + _children_cpu() - children
        return time.perf_counter() - start, cpu, steps


def main() -> None:
    _timed(pdf=False, parallel=False)  # warm imports and font caches
    load = os.getloadavg()[0]
    cli, cli_cpu, steps = _timed(pdf=True, parallel=True)
    library, library_cpu, _ = _timed(pdf=True, parallel=False)
    without_pdf, without_cpu, _ = _timed(pdf=False, parallel=False)
    print("metaan report reports/depression.toml (target: <= 10 s with the PDF)")
    print(f"  load average {load:.2f} before, {os.getloadavg()[0]:.2f} after (2 cores)")
    print("                                     wall       CPU")
    print(f"  as the command line runs it:     {cli:6.2f} s  {cli_cpu:6.2f} s")
    print(f"  the library's build, one process: {library:6.2f} s  {library_cpu:6.2f} s")
    print(f"  without the PDF:                 {without_pdf:6.2f} s  {without_cpu:6.2f} s")
    print("  steps of the command line's build (wall, CPU of this process, until the next):")
    for (message, _, _), (_, wall, cpu) in zip(steps, [*steps[1:], ("", 0.0, 0.0)], strict=True):
        print(f"    {wall:6.2f} s  {cpu:6.2f} s  {message}")


if __name__ == "__main__":
    main()
