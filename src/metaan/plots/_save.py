"""Writing figures to SVG, PNG or PDF, byte for byte reproducibly."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import IO, Any

from matplotlib.figure import Figure

from metaan._output import atomic_write, writable_target
from metaan.errors import InputError
from metaan.plots._fonts import fall_back_for_missing_glyphs
from metaan.plots._theme import theme

__all__ = ["FORMATS", "MAX_PIXELS", "check_resolution", "format_of", "save"]

#: The largest PNG :func:`save` renders: 100 megapixels, 400 MB in memory.
MAX_PIXELS = 100_000_000

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
        The format is not one of SVG, PNG or PDF, or cannot be told from the path;
        the folder of ``path`` does not exist; a PNG would exceed
        :data:`MAX_PIXELS` at ``dpi``.

    Notes
    -----
    SVG and PDF output is byte-identical for the same figure: the SVG hash salt
    is fixed, no creation date is written, and the creator is ``metaan``. Text in
    SVG stays text (``svg.fonttype = "none"``) so it can be searched and edited.
    A file is written atomically (a temporary file renamed over it), so an
    interrupted run leaves an earlier figure whole. Text with characters the
    theme's font lacks (Chinese, Japanese, Korean study names) is set in an
    installed font that has them.
    """
    fmt = format_of(path, format)
    if fmt == "png":
        check_resolution(fig, dpi)
    elif dpi <= 0:
        raise InputError(f"dpi is {dpi:g}; a resolution must be > 0", fix="use e.g. 300")
    target = writable_target(path) if isinstance(path, str | os.PathLike) else None
    buffer = io.BytesIO()
    with theme(), fall_back_for_missing_glyphs(fig):
        fig.savefig(buffer, format=fmt, dpi=dpi, metadata=dict(_METADATA[fmt]))
    if isinstance(path, str | os.PathLike):
        atomic_write(path if target is None else target, buffer.getvalue())
    else:
        path.write(buffer.getvalue())


def check_resolution(fig: Figure, dpi: float) -> None:
    """Refuse a resolution at which ``fig`` would be an unreasonably large PNG."""
    if not dpi > 0 or dpi != dpi:
        raise InputError(f"dpi is {dpi:g}; a resolution must be > 0", fix="use e.g. 300")
    width, height = (float(v) for v in fig.get_size_inches())
    pixels = width * height * dpi * dpi
    if pixels > MAX_PIXELS or max(width, height) * dpi >= 2**16:
        most = min((MAX_PIXELS / (width * height)) ** 0.5, (2**16 - 1) / max(width, height))
        raise InputError(
            f"at {dpi:g} dpi this {width:.1f} x {height:.1f} inch figure would be a "
            f"{width * dpi:,.0f} x {height * dpi:,.0f} pixel PNG ({pixels / 1e6:,.0f} "
            f"megapixels; the limit is {MAX_PIXELS // 1_000_000})",
            fix=f"use --dpi {int(most)} or less, or write .svg or .pdf, which have no pixels",
        )


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
