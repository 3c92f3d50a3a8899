"""The one theme every metaan plot shares: fonts, sizes, palette, markers.

The palette is Okabe & Ito's colour-blind-safe set; every distinction a plot
makes by colour is also made by marker shape, fill or line style, so the
figures read the same in greyscale.

References
----------
Okabe, M., & Ito, K. (2008). Color Universal Design (CUD): how to make figures
and presentations that are friendly to colorblind people. https://jfly.uni-koeln.de/color/
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from itertools import pairwise
from typing import Any

import matplotlib as mpl
from cycler import cycler
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import text_to_path
from matplotlib.typing import RcKeyType

__all__ = [
    "BLACK",
    "BLUE",
    "FONT_FAMILY",
    "FONT_SIZE",
    "GREEN",
    "GREY",
    "LIGHT_GREY",
    "ORANGE",
    "SKY",
    "SMALL_SIZE",
    "VERMILLION",
    "YELLOW",
    "font",
    "new_figure",
    "rc",
    "text_width",
    "theme",
    "wrap_to_width",
]

# Okabe-Ito colours.
BLACK = "#000000"
ORANGE = "#E69F00"
SKY = "#56B4E9"
GREEN = "#009E73"
YELLOW = "#F0E442"
BLUE = "#0072B2"
VERMILLION = "#D55E00"
PURPLE = "#CC79A7"
# Neutral greys for regions and reference lines.
GREY = "#666666"
LIGHT_GREY = "#D9D9D9"

#: DejaVu Sans ships with matplotlib, so text is measured and drawn with the same
#: font on every machine and the layout does not depend on what is installed.
FONT_FAMILY = "DejaVu Sans"
FONT_SIZE = 9.0
SMALL_SIZE = 8.0


def rc() -> dict[RcKeyType, Any]:
    """The rcParams of the theme (applied with :func:`theme`, never globally)."""
    return {
        "font.family": "sans-serif",
        "font.sans-serif": [FONT_FAMILY],
        "font.size": FONT_SIZE,
        "axes.titlesize": FONT_SIZE + 1,
        "axes.labelsize": FONT_SIZE,
        "axes.linewidth": 0.8,
        "axes.edgecolor": BLACK,
        "axes.labelcolor": BLACK,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.unicode_minus": True,
        "axes.prop_cycle": cycler(color=[BLUE, VERMILLION, GREEN, ORANGE, SKY, PURPLE]),
        "xtick.labelsize": SMALL_SIZE,
        "ytick.labelsize": SMALL_SIZE,
        "xtick.color": BLACK,
        "ytick.color": BLACK,
        "xtick.major.width": 0.8,
        "ytick.major.width": 0.8,
        "legend.fontsize": SMALL_SIZE,
        "legend.frameon": False,
        "lines.linewidth": 1.0,
        "hatch.linewidth": 0.6,
        "figure.facecolor": "white",
        "savefig.facecolor": "white",
        "text.usetex": False,
        # Text stays text in SVG (searchable, editable, smaller); PDF embeds TrueType.
        "svg.fonttype": "none",
        "svg.hashsalt": "metaan",
        "pdf.fonttype": 42,
        "path.simplify": False,
    }


@contextmanager
def theme() -> Iterator[None]:
    """Apply the theme for the duration of a ``with`` block, leaving rcParams as they were."""
    with mpl.rc_context(rc()):
        yield


def new_figure(width: float, height: float) -> Figure:
    """A figure of the given size in inches, not registered with pyplot."""
    return Figure(figsize=(width, height), dpi=100, layout=None)


def figure_title(fig: Figure, x: float, y: float, title: str) -> None:
    """Draw a figure's title in bold, its left end at ``x`` and centred on ``y``
    (fractions of the figure)."""
    fig.text(
        x,
        y,
        title,
        ha="left",
        va="center",
        fontsize=FONT_SIZE + 1,
        fontweight="bold",
        fontfamily=FONT_FAMILY,
        parse_math=False,
    )


def font(size: float = FONT_SIZE, *, weight: str = "normal") -> FontProperties:
    """The theme's font at a given size."""
    return FontProperties(family=FONT_FAMILY, size=size, weight=weight)


@lru_cache(maxsize=65536)
def _piece_width(piece: str, weight: str) -> float:
    """Width in points at 10 pt of one or two characters, as matplotlib lays them out
    (in the fallback font that will set them, for characters the theme's font lacks)."""
    from metaan.plots._fonts import fallback_for

    prop = font(10.0, weight=weight)
    fallback = fallback_for(piece)
    if fallback is not None:
        prop.set_family([FONT_FAMILY, fallback])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font")
        width, _, _ = text_to_path.get_text_width_height_descent(piece, prop, ismath=False)
    return float(width)


def text_width(text: str, size: float = FONT_SIZE, *, weight: str = "normal") -> float:
    """The width of one line of text, in inches, as matplotlib will draw it.

    Computed from the advance of each character plus the kerning of each pair
    (both cached), which adds up to the width matplotlib measures for the whole
    line; widths scale linearly with the font size.
    """
    if not text:
        return 0.0
    total = sum(_piece_width(c, weight) for c in text)
    for a, b in pairwise(text):
        total += _piece_width(a + b, weight) - _piece_width(a, weight) - _piece_width(b, weight)
    return total * size / 10.0 / 72.0


def wrap_to_width(
    text: str, max_width: float, size: float = FONT_SIZE, *, weight: str = "normal"
) -> list[str]:
    """Break text into lines no wider than ``max_width`` inches, keeping every character.

    Lines break at spaces; a single word wider than the line is split between
    characters, so nothing is ever cut off.
    """
    lines: list[str] = []
    for paragraph in text.split("\n"):
        if text_width(paragraph, size, weight=weight) <= max_width:
            lines.append(paragraph)  # the common case: it fits
            continue
        current = ""
        for word in paragraph.split(" "):
            candidate = word if not current else f"{current} {word}"
            if text_width(candidate, size, weight=weight) <= max_width:
                current = candidate
                continue
            if current:
                lines.append(current)
            current = ""
            # A word that does not fit on a line of its own is split.
            while text_width(word, size, weight=weight) > max_width and len(word) > 1:
                cut = _longest_prefix(word, max_width, size, weight)
                lines.append(word[:cut])
                word = word[cut:]
            current = word
        lines.append(current)
    return lines


def _longest_prefix(word: str, max_width: float, size: float, weight: str) -> int:
    lo, hi = 1, len(word)
    while lo < hi:
        mid = math.ceil((lo + hi) / 2)
        if text_width(word[:mid], size, weight=weight) <= max_width:
            lo = mid
        else:
            hi = mid - 1
    return lo
