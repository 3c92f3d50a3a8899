"""Glyphs the theme's font lacks: study names in Chinese, Japanese, Korean, ...

The theme sets every text in DejaVu Sans, so figures look the same on every
machine. DejaVu has no CJK ideographs; matplotlib then draws empty boxes and
warns once per missing glyph. Before a figure is saved, each text with a
character DejaVu lacks is given a fallback: the first installed font that has
every such character of the figure (matplotlib falls back glyph by glyph
along a font family list). Texts DejaVu can set are left alone, so the bytes
of a figure without such characters do not change. When no installed font
has them, one warning says which characters and what to install.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.text import Text

from metaan.plots import _theme as th

__all__ = ["fall_back_for_missing_glyphs", "fallback_for"]


@cache
def _charmap(path: str) -> frozenset[int]:
    from matplotlib.ft2font import FT2Font

    try:
        return frozenset(FT2Font(path).get_charmap())
    except (OSError, RuntimeError):
        return frozenset()


@cache
def _theme_chars() -> frozenset[int]:
    path = font_manager.findfont(font_manager.FontProperties(family=th.FONT_FAMILY))
    return _charmap(path)


def fallback_for(text: str) -> str | None:
    """The installed font family that sets the characters of ``text`` the theme's
    font lacks, or ``None`` when it lacks none (or no installed font has them)."""
    missing = frozenset(ord(c) for c in text if not c.isspace()) - _theme_chars()
    return _fallback_family(missing) if missing else None


@cache
def _fallback_family(missing: frozenset[int]) -> str | None:
    """The family of the first installed font (by name) with every character in ``missing``.

    matplotlib's font list is cached from when it was first built; fonts installed
    since are found by a scan of the system's font folders, done only here, when
    a figure needs them.
    """
    manager = font_manager.fontManager
    for entry in sorted(manager.ttflist, key=lambda f: (f.name, f.fname)):
        # matplotlib's own Last Resort font maps every character to a box.
        if not entry.name.startswith("Last Resort") and missing <= _charmap(entry.fname):
            return str(entry.name)
    known = {entry.fname for entry in manager.ttflist}
    for path in sorted(set(font_manager.findSystemFonts()) - known):
        if "LastResort" not in path and missing <= _charmap(path):
            before = len(manager.ttflist)
            manager.addfont(path)
            added = manager.ttflist[before:]
            if added:
                return str(sorted(added, key=lambda f: f.name)[0].name)
    return None


@contextmanager
def fall_back_for_missing_glyphs(fig: Figure) -> Iterator[None]:
    """While saving ``fig``: texts with characters the theme font lacks use a fallback
    font, and matplotlib's per-glyph warnings are replaced by one warning when no
    installed font has those characters."""
    have = _theme_chars()
    texts = [t for t in fig.findobj(Text) if isinstance(t, Text) and t.get_text()]
    needy = [
        (t, chars)
        for t, chars in (
            (t, {ord(c) for c in t.get_text() if c.isprintable() and not c.isspace()} - have)
            for t in texts
        )
        if chars
    ]
    if not needy:
        yield
        return
    missing = frozenset(c for _, chars in needy for c in chars)
    family = _fallback_family(missing)
    if family is not None:
        for text, _ in needy:
            text.set_fontfamily([th.FONT_FAMILY, family])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font")
        warnings.filterwarnings("ignore", message=r"Matplotlib currently does not support")
        yield
    if family is None:
        shown = "".join(sorted(chr(c) for c in missing)[:12])
        warnings.warn(
            f"no installed font has the characters {shown}; they are drawn as empty boxes. "
            "Install a font that has them (e.g. the Debian package fonts-noto-cjk for "
            "Chinese, Japanese and Korean) and draw the figure again",
            stacklevel=3,
        )
