"""The ``metaan`` command line: a thin adapter that parses and calls the library.

Each command group lives in its own module and registers itself on :data:`main`.
"""

from __future__ import annotations

from metaan.cli._app import main

# Importing a module registers its commands on ``main``.
from metaan.cli import _fit  # noqa: F401  # isort: skip
from metaan.cli import _studies  # noqa: F401  # isort: skip
from metaan.cli import _effects  # noqa: F401  # isort: skip
from metaan.cli import _bias  # noqa: F401  # isort: skip
from metaan.cli import _sensitivity  # noqa: F401  # isort: skip
from metaan.cli import _report  # noqa: F401  # isort: skip
from metaan.cli import _plot  # noqa: F401  # isort: skip
from metaan.cli import _network  # noqa: F401  # isort: skip
from metaan.cli import _export  # noqa: F401  # isort: skip
from metaan.cli import _simulate  # noqa: F401  # isort: skip

__all__ = ["main"]
