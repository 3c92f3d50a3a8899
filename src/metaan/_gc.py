"""Pausing Python's cyclic garbage collector while many small containers are built.

Reading 10^5 rows of a CSV makes 10^5 lists; each few hundred new containers set
off a collection, and the older generations' collections walk every object of
the process, so the collector can cost as much as the parsing itself. The lists
metaan builds in bulk (records of cells, lists of excluded rows) hold only
strings, numbers and dicts of them, never a cycle, so nothing is lost by pausing
it; reference counting still frees them.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Disable the cyclic garbage collector inside the block; afterwards it is enabled
    again if it was enabled before (a caller that disabled it keeps it disabled)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
