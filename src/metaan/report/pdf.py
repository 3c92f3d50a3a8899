"""``report.pdf``: the report's HTML rendered for print by WeasyPrint.

The PDF is rendered from the ``index.html`` a build wrote and from the SVG
figures beside it: each inline figure is replaced by a reference to its own SVG
file, which WeasyPrint draws as a vector image. The text and the figures are the
HTML's; only the way a figure reaches the renderer differs, which saves
WeasyPrint from running the page's style sheet over every element of every
figure. Nothing is fetched from outside the output folder.

This module imports nothing of the analyses, so the PDF can be rendered in a
process of its own while the build writes the other files
(:func:`metaan.report.build.build_report` takes how to start it).
"""

from __future__ import annotations

import re
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
    return atomic_write(folder / "report.pdf", document.write_pdf())
