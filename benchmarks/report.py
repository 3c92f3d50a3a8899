"""Time to build the default report (reports/depression.toml).

Run with ``.venv/bin/python benchmarks/report.py``. Prints the wall time of
``metaan report`` as the command line runs it (the PDF rendered in a process of
its own, beside the PNG figures and the Word file), of the library's build in one
process, and of the build without the PDF, with the time of each step. It builds
into a temporary folder; the committed report is not touched.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from metaan.cli._report import _pdf_in_its_own_process
from metaan.report.build import build_report

SPEC = Path(__file__).resolve().parent.parent / "reports" / "depression.toml"


def _timed(pdf: bool, parallel: bool) -> tuple[float, list[tuple[str, float]]]:
    steps: list[tuple[str, float]] = []
    last = [time.perf_counter()]

    def progress(message: str) -> None:
        now = time.perf_counter()
        steps.append((message, now - last[0]))
        last[0] = now

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        options = {"start_pdf": _pdf_in_its_own_process} if parallel else {}
        build_report(SPEC, Path(tmp) / "depression", pdf=pdf, progress=progress, **options)
        return time.perf_counter() - start, steps


def main() -> None:
    _timed(pdf=False, parallel=False)  # warm imports and font caches
    cli, steps = _timed(pdf=True, parallel=True)
    library, _ = _timed(pdf=True, parallel=False)
    without_pdf, _ = _timed(pdf=False, parallel=False)
    print("metaan report reports/depression.toml (target: <= 10 s with the PDF)")
    print(f"  as the command line runs it:     {cli:6.2f} s")
    print(f"  the library's build, one process: {library:6.2f} s")
    print(f"  without the PDF:                 {without_pdf:6.2f} s")
    print("  steps of the command line's build (time until the next step began):")
    for (message, _), (_, seconds) in zip(steps, [*steps[1:], ("", 0.0)], strict=True):
        print(f"    {seconds:6.2f} s  {message}")


if __name__ == "__main__":
    main()
