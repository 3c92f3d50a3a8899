"""The report as a Word document, converted from its HTML so both say the same.

Journals and review groups edit in Word. :func:`html_to_docx` walks the
report's HTML (the one source of its text) and writes the same headings,
paragraphs, lists, tables and figures with python-docx; each figure is the
300 dpi PNG of the SVG the HTML shows (``<figure data-figure="stem">``).

The file is byte-reproducible: a .docx is a zip archive whose entries carry a
modification time, and its core properties carry creation and modification
dates, so the dates are fixed (1980-01-01, the zip format's earliest) and the
archive is rewritten with its entries in the order python-docx wrote them.
"""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from html.parser import HTMLParser
from typing import Any

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.opc.constants import RELATIONSHIP_TYPE
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt, RGBColor
from docx.table import Table
from docx.text.paragraph import Paragraph

__all__ = ["html_to_docx"]

#: The fixed date of every entry and of the core properties (no timestamps).
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
#: A4 with 20 mm margins: the width a figure may take.
TEXT_WIDTH_MM = 170.0
_HEADINGS = {"h1": 0, "h2": 1, "h3": 2, "h4": 3}
_SKIP = {"style", "title", "head", "nav", "svg", "script"}


class _Writer(HTMLParser):
    """Turns the report's HTML into python-docx calls, element by element."""

    def __init__(self, png: dict[str, bytes]) -> None:
        super().__init__(convert_charrefs=True)
        self.doc = Document()
        self.png = png
        self.skip = 0
        self.paragraph: Paragraph | None = None
        self.styles: list[str] = []
        self.link: str | None = None
        self.lists: list[str] = []
        self.table: list[list[tuple[str, bool]]] | None = None
        self.cell: list[str] | None = None
        self.caption: str | None = None
        self.pre = False
        self.quiet = False
        self._setup()

    def _setup(self) -> None:
        section = self.doc.sections[0]
        section.page_width, section.page_height = Mm(210), Mm(297)
        for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
            setattr(section, side, Mm(20))
        self.doc.styles["Normal"].font.size = Pt(10)

    # -- structure ------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in _SKIP:
            self.skip += 1
            return
        if self.skip:
            return
        if tag in _HEADINGS:
            self.paragraph = self.doc.add_heading("", level=_HEADINGS[tag])
        elif tag in ("p", "dt", "dd", "figcaption"):
            self._paragraph(tag, a.get("class"))
        elif tag in ("ul", "ol"):
            self.lists.append(tag)
        elif tag == "li":
            style = "List Number" if self.lists and self.lists[-1] == "ol" else "List Bullet"
            self.paragraph = self.doc.add_paragraph(style=style)
        elif tag == "table":
            self.table = []
        elif tag == "tr" and self.table is not None:
            self.table.append([])
        elif tag in ("td", "th"):
            self.cell = []
            self.styles.append("b" if tag == "th" else "td")
        elif tag == "caption":
            self.caption = ""
        elif tag == "figure":
            self._figure(a.get("data-figure"))
        elif tag == "pre":
            self.pre = True
            self.paragraph = self.doc.add_paragraph()
        elif tag in ("strong", "b", "em", "i", "code"):
            self.styles.append(tag)
        elif tag == "a":
            self.link = a.get("href")
        elif tag == "br" and self.cell is not None:
            self.cell.append("\n")
        elif tag == "br" and self.paragraph is not None:
            self.paragraph.add_run().add_break()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
            return
        if self.skip:
            return
        if tag in _HEADINGS or tag in ("p", "dt", "dd", "figcaption", "li"):
            self.paragraph = None
            self.quiet = False
            if tag == "dt" and "dt" in self.styles:
                self.styles.remove("dt")
        elif tag in ("ul", "ol") and self.lists:
            self.lists.pop()
        elif tag in ("td", "th") and self.cell is not None and self.table is not None:
            self.table[-1].append(("".join(self.cell).strip(), tag == "th"))
            self.cell = None
            self.styles.pop()
        elif tag == "table":
            self._table()
        elif tag == "pre":
            self.pre = False
            self.paragraph = None
        elif tag in ("strong", "b", "em", "i", "code") and self.styles:
            self.styles.pop()
        elif tag == "a":
            self.link = None

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.caption is not None and self.table is not None and self.cell is None:
            self.caption += data
            return
        if self.cell is not None:
            self.cell.append(data)
            return
        if self.paragraph is None:
            if not data.strip():
                return
            self.paragraph = self.doc.add_paragraph()
        text = data if self.pre else " ".join(data.split("\n"))
        if not self.pre and (not text.strip() and not self.paragraph.text):
            return
        self._run(text)

    # -- pieces ---------------------------------------------------------------------

    def _paragraph(self, tag: str, css: str | None) -> None:
        p = self.doc.add_paragraph()
        # Captions and notes are set smaller and in italics, as on the page.
        self.quiet = tag == "figcaption" or css in ("note", "meta", "caveat")
        if tag == "figcaption":
            p.alignment = WD_ALIGN_PARAGRAPH.LEFT
        self.paragraph = p
        if tag == "dt":
            self.styles.append("dt")

    def _run(self, text: str) -> None:
        assert self.paragraph is not None
        if self.link and self.link.startswith(("http://", "https://")):
            _hyperlink(self.paragraph, self.link, text)
            return
        run = self.paragraph.add_run(text)
        run.bold = any(s in ("strong", "b", "dt") for s in self.styles) or None
        run.italic = any(s in ("em", "i") for s in self.styles) or self.quiet or None
        if self.quiet:
            run.font.size = Pt(9)
        if "code" in self.styles or self.pre:
            run.font.name = "Courier New"
            run.font.size = Pt(7 if self.pre else 9)

    def _figure(self, stem: str | None) -> None:
        if stem is None or stem not in self.png:
            return
        from PIL import Image

        data = self.png[stem]
        with Image.open(io.BytesIO(data)) as image:
            width_mm = image.width / 300 * 25.4
        self.doc.add_picture(io.BytesIO(data), width=Mm(min(width_mm, TEXT_WIDTH_MM)))

    def _table(self) -> None:
        rows = [r for r in (self.table or []) if r]
        self.table = None
        if self.caption:
            p = self.doc.add_paragraph()
            p.add_run(self.caption.strip()).bold = True
        self.caption = None
        if not rows:
            return
        width = max(len(r) for r in rows)
        table: Table = self.doc.add_table(rows=len(rows), cols=width)
        table.style = "Table Grid"
        # Row by row: Table.cell(i, j) rebuilds the whole grid of cells at each call.
        for row, values in zip(table.rows, rows, strict=True):
            for cell, (text, header) in zip(row.cells, values, strict=False):
                run = cell.paragraphs[0].add_run(text)
                run.font.size = Pt(8)
                run.bold = header or None
        self.doc.add_paragraph()


def _hyperlink(paragraph: Paragraph, url: str, text: str) -> None:
    """A clickable link in a paragraph (python-docx has no API for it)."""
    r_id = paragraph.part.relate_to(url, RELATIONSHIP_TYPE.HYPERLINK, is_external=True)
    link = OxmlElement("w:hyperlink")
    link.set(qn("r:id"), r_id)
    run = OxmlElement("w:r")
    props = OxmlElement("w:rPr")
    colour = OxmlElement("w:color")
    colour.set(qn("w:val"), str(RGBColor(0x0B, 0x4F, 0x8A)))
    props.append(colour)
    underline = OxmlElement("w:u")
    underline.set(qn("w:val"), "single")
    props.append(underline)
    run.append(props)
    node = OxmlElement("w:t")
    node.text = text
    node.set(qn("xml:space"), "preserve")
    run.append(node)
    link.append(run)
    paragraph._p.append(link)


def _fixed_archive(data: bytes) -> bytes:
    """The same archive with every entry dated FIXED_DATE (byte-reproducible)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=FIXED_DATE)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            target.writestr(entry, source.read(info.filename))
    return out.getvalue()


def html_to_docx(html: str, png: dict[str, bytes], *, title: str | None = None) -> bytes:
    """The report's HTML as a .docx file (bytes), figures from ``png`` by file stem."""
    writer = _Writer(png)
    writer.feed(html)
    writer.close()
    props: Any = writer.doc.core_properties
    fixed = datetime(*FIXED_DATE)
    props.author = "metaan"
    props.last_modified_by = "metaan"
    props.created = fixed
    props.modified = fixed
    props.last_printed = fixed
    props.revision = 1
    if title is not None:
        props.title = title
    buffer = io.BytesIO()
    writer.doc.save(buffer)
    return _fixed_archive(buffer.getvalue())
