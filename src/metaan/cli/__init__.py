"""The ``metaan`` command line: a thin adapter that parses and calls the library.

Each command lives in its own module and registers itself on :data:`main` when
that module is imported; :data:`main` imports it only when the command is used.
"""

from __future__ import annotations

from metaan.cli._app import main

# Each command's module registers it on ``main`` when imported, which the group
# does only when the command runs or --help lists it (see metaan.cli._app._Group).
main.lazy.update(
    {
        "fit": "metaan.cli._fit",
        "studies": "metaan.cli._studies",
        "effects": "metaan.cli._effects",
        "bias": "metaan.cli._bias",
        "sensitivity": "metaan.cli._sensitivity",
        "report": "metaan.cli._report",
        "plot": "metaan.cli._plot",
        "network": "metaan.cli._network",
        "export": "metaan.cli._export",
        "simulate": "metaan.cli._simulate",
    }
)

__all__ = ["main"]
