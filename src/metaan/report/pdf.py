"""``report.pdf``: the report's HTML rendered for print by WeasyPrint.

The PDF is rendered from the ``index.html`` a build wrote and from the SVG
figures beside it: each inline figure is replaced by a reference to its own SVG
file, which WeasyPrint draws as a vector image. The text and the figures are the
HTML's; only the way a figure reaches the renderer differs, which saves
WeasyPrint from running the page's style sheet over every element of every
figure. Nothing is fetched from outside the output folder.

WeasyPrint lays out and draws an SVG ``<text>`` letter by letter (one Pango
layout per character, so that per-letter ``x``, ``dx`` or ``rotate`` lists can
place each one); a figure's labels carry one position each, so while the PDF is
rendered such a text is laid out and drawn as one run (:func:`_one_run_texts`).
The words, fonts, sizes and positions are the same; the PDF is several times
quicker to render, and a label keeps its font's kerning.

This module imports nothing of the analyses, so the PDF can be rendered in a
process of its own while the build writes the other files
(:func:`metaan.report.build.build_report` takes how to start it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from metaan._output import atomic_write

__all__ = ["render_pdf"]

_INLINE_FIGURE = re.compile(r'(<figure data-figure="([^"]+)">)<svg\b.*?</svg>', re.S)


def printable_html(html: str) -> str:
    """The page with each inline SVG figure replaced by its file, ``figures/<stem>.svg``."""
    return _INLINE_FIGURE.sub(
        lambda m: f'{m.group(1)}<img class="figure" src="figures/{m.group(2)}.svg" alt="">', html
    )


class _OneRun(str):
    """A text whose letters are one piece: iterating over it yields the whole text."""

    def __iter__(self) -> Iterator[str]:
        yield str(self)


#: Attributes that place or space a text's letters one by one.
_PER_LETTER = ("dx", "dy", "rotate", "letter-spacing", "textLength")


def _one_position(node: Any) -> bool:
    """Whether an SVG text node gives one x and one y (or none) and nothing per letter."""
    attrib = node.attrib
    if any(key in attrib for key in _PER_LETTER):
        return False
    return all(len(str(attrib.get(key, "")).replace(",", " ").split()) <= 1 for key in "xy")


@contextmanager
def _one_run_texts() -> Iterator[None]:
    """While rendering: an SVG text with one position is laid out and drawn as one run.

    WeasyPrint's SVG text drawing (``weasyprint.svg.text.text``) iterates over
    the node's characters; a node with a single position is handed to it with a
    text that iterates as one piece, so the same code lays it out, anchors it
    (``text-anchor`` from its bounding box) and draws it, once.
    """
    import weasyprint.svg as svg_package

    letter_by_letter = svg_package.text

    def text(svg: Any, node: Any, font_size: float) -> Any:
        content = node.text
        if content and type(content) is str and _one_position(node):
            node._etree_node.text = _OneRun(content)
        return letter_by_letter(svg, node, font_size)

    tags = [tag for tag, draw in svg_package.TAGS.items() if draw is letter_by_letter]
    svg_package.TAGS.update(dict.fromkeys(tags, text))
    svg_package.text = text  # draw_node tells text nodes by this name
    try:
        yield
    finally:
        svg_package.TAGS.update(dict.fromkeys(tags, letter_by_letter))
        svg_package.text = letter_by_letter


def _fetcher(folder: Path) -> Any:
    """A URL fetcher that reads files inside ``folder`` and nothing else."""
    from weasyprint.urls import URLFetcher

    root = folder.resolve()

    class LocalFiles(URLFetcher):  # type: ignore[misc]
        def fetch(self, url: str, headers: Any = None) -> Any:
            from urllib.parse import unquote, urlparse

            parsed = urlparse(url)
            path = Path(unquote(parsed.path)).resolve()
            if parsed.scheme != "file" or root not in path.parents:
                raise ValueError(f"the report renderer fetches nothing outside {root} ({url})")
            return super().fetch(url, headers)

    return LocalFiles(allowed_protocols={"file"})


def render_pdf(output: str | Path) -> Path:
    """Render ``report.pdf`` in ``output`` from the ``index.html`` and figures there."""
    import weasyprint

    folder = Path(output).resolve()
    html = printable_html((folder / "index.html").read_text(encoding="utf-8"))
    document = weasyprint.HTML(
        string=html, base_url=folder.as_uri() + "/", url_fetcher=_fetcher(folder)
    )
    with _one_run_texts():
        pdf = document.write_pdf()
    return atomic_write(folder / "report.pdf", pdf)
