"""Writing figures to SVG, PNG or PDF, byte for byte reproducibly."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

from matplotlib.figure import Figure

from metaan.errors import InputError
from metaan.plots._theme import theme

__all__ = ["FORMATS", "format_of", "save"]

#: The formats :func:`save` writes, by file extension.
FORMATS: tuple[str, ...] = ("svg", "png", "pdf")

# No dates and no tool versions that change from run to run: the same figure
# gives the same bytes (SVG and PDF; PNG is reproducible for a given matplotlib).
_METADATA: dict[str, dict[str, Any]] = {
    "svg": {"Date": None, "Creator": "metaan"},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": "metaan", "Producer": "metaan"},
    "png": {"Software": "metaan"},
}


def save(
    fig: Figure,
    path: str | os.PathLike[str] | IO[bytes],
    *,
    format: str | None = None,
    dpi: float = 300.0,
) -> None:
    """Write a figure to a file or a binary stream.

    Parameters
    ----------
    fig
        A figure returned by one of the :mod:`metaan.plots` functions.
    path
        Where to write it. The format comes from the extension (``.svg``,
        ``.png`` or ``.pdf``) unless ``format`` is given.
    format
        ``"svg"``, ``"png"`` or ``"pdf"``; required when ``path`` is a stream.
    dpi
        Resolution of PNG output (300 by default; SVG and PDF are vector).

    Raises
    ------
    InputError
        The format is not one of SVG, PNG or PDF, or cannot be told from the path.

    Notes
    -----
    SVG and PDF output is byte-identical for the same figure: the SVG hash salt
    is fixed, no creation date is written, and the creator is ``metaan``. Text in
    SVG stays text (``svg.fonttype = "none"``) so it can be searched and edited.
    """
    fmt = format_of(path, format)
    if dpi <= 0:
        raise InputError(f"dpi is {dpi:g}; a resolution must be > 0", fix="use e.g. 300")
    with theme():
        fig.savefig(path, format=fmt, dpi=dpi, metadata=dict(_METADATA[fmt]))


def format_of(path: str | os.PathLike[str] | IO[bytes], format: str | None = None) -> str:
    """The figure format of a path (from its extension) or of an explicit ``format``."""
    if format is not None:
        fmt = format.lower().lstrip(".")
    elif isinstance(path, str | os.PathLike):
        fmt = Path(path).suffix.lower().lstrip(".")
        if not fmt:
            raise InputError(
                f"cannot tell the figure format of {os.fspath(path)!r}: it has no extension",
                fix="end the file name in .svg, .png or .pdf",
            )
    else:
        raise InputError(
            "writing a figure to a stream needs a format", fix="pass format='svg', 'png' or 'pdf'"
        )
    if fmt not in FORMATS:
        raise InputError(
            f"figures can be written as SVG, PNG or PDF, not {fmt!r}",
            fix="end the file name in .svg, .png or .pdf",
        )
    return fmt
