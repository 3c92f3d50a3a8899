"""Time to build the default report (reports/depression.toml).

Run with ``.venv/bin/python benchmarks/report.py``. Prints the wall time of
one build with and without the PDF, and the time of each step, into a
temporary folder (the committed report is not touched).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from metaan.report.build import build_report

SPEC = Path(__file__).resolve().parent.parent / "reports" / "depression.toml"


def _timed(pdf: bool) -> tuple[float, list[tuple[str, float]]]:
    steps: list[tuple[str, float]] = []
    last = [time.perf_counter()]

    def progress(message: str) -> None:
        now = time.perf_counter()
        steps.append((message, now - last[0]))
        last[0] = now

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        build_report(SPEC, Path(tmp) / "depression", pdf=pdf, progress=progress)
        return time.perf_counter() - start, steps


def main() -> None:
    _timed(pdf=False)  # warm imports and font caches
    without_pdf, _ = _timed(pdf=False)
    with_pdf, steps = _timed(pdf=True)
    print("metaan report reports/depression.toml (target: <= 10 s)")
    print(f"  without PDF: {without_pdf:6.2f} s")
    print(f"  with PDF:    {with_pdf:6.2f} s")
    print("  steps of the build with PDF (time until the next step began):")
    for (message, _), (_, seconds) in zip(steps, [*steps[1:], ("", 0.0)], strict=True):
        print(f"    {seconds:6.2f} s  {message}")


if __name__ == "__main__":
    main()
