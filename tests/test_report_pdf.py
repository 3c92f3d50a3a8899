"""report.pdf: figures drawn from their SVG files, a label's text laid out as one run."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from metaan.report.pdf import _fetcher, printable_html, render_pdf

LABEL = "Amin 1984 (fluoxetine)"
SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="200pt" height="60pt" viewBox="0 0 200 60">'
    "<text style=\"font-size: 8px; font-family: 'DejaVu Sans'; text-anchor: end\" "
    f'x="190" y="20">{LABEL}</text>'
    "<text style=\"font-size: 8px; font-family: 'DejaVu Sans'\" "
    'x="10 20 30" y="40">ABC</text></svg>'
)


def _folder(tmp_path: Path) -> Path:
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "f.svg").write_text(SVG, encoding="utf-8")
    html = f'<html><body><figure data-figure="f">{SVG}</figure></body></html>'
    (tmp_path / "index.html").write_text(html, encoding="utf-8")
    return tmp_path


Matrix = tuple[float, float, float, float, float, float]


def _times(m: Matrix, n: Matrix) -> Matrix:
    """The affine map m then n (PDF's row-vector convention)."""
    a, b, c, d, e, f = m
    p, q, r, s, t, u = n
    return (a * p + b * r, a * q + b * s, c * p + d * r, c * q + d * s, e * p + f * r + t,
            e * q + f * s + u)  # fmt: skip


def _text_objects(pdf: bytes) -> list[tuple[float, int]]:
    """Each text object of the first page, form XObjects included, in drawing order:
    the page x of its first glyph run, and how many runs it has."""
    from pypdf import PdfReader
    from pypdf.generic import ContentStream

    reader = PdfReader(io.BytesIO(pdf))
    page = reader.pages[0]
    found: list[tuple[float, int]] = []

    def walk(content: Any, resources: Any, ctm: Matrix) -> None:
        stack: list[Matrix] = []
        starts: list[float] = []
        for operands, operator in ContentStream(content, reader).operations:
            if operator == b"q":
                stack.append(ctm)
            elif operator == b"Q":
                ctm = stack.pop()
            elif operator == b"cm":
                ctm = _times(tuple(float(v) for v in operands), ctm)  # type: ignore[arg-type]
            elif operator == b"BT":
                starts = []
            elif operator == b"Tm":
                starts.append(_times((1, 0, 0, 1, float(operands[4]), float(operands[5])), ctm)[4])
            elif operator == b"ET" and starts:
                found.append((starts[0], len(starts)))
            elif operator == b"Do":
                form = resources["/XObject"][operands[0]].get_object()
                matrix = tuple(float(v) for v in form.get("/Matrix", (1, 0, 0, 1, 0, 0)))
                walk(form, form.get("/Resources", resources), _times(matrix, ctm))  # type: ignore[arg-type]

    walk(page.get_contents(), page["/Resources"], (1.0, 0.0, 0.0, 1.0, 0.0, 0.0))
    return found


def _letter_by_letter(folder: Path) -> bytes:
    """The PDF as WeasyPrint draws it by itself, each letter of an SVG text on its own."""
    import weasyprint

    html = printable_html((folder / "index.html").read_text(encoding="utf-8"))
    document = weasyprint.HTML(
        string=html, base_url=folder.as_uri() + "/", url_fetcher=_fetcher(folder)
    )
    return bytes(document.write_pdf())


def test_a_label_with_one_position_is_one_run_anchored_where_weasyprint_puts_it(
    tmp_path: Path,
) -> None:
    import weasyprint.svg

    drawn_by = weasyprint.svg.text
    folder = _folder(tmp_path)
    (label, letters) = _text_objects(render_pdf(folder).read_bytes())
    (label_ref, letters_ref) = _text_objects(_letter_by_letter(folder))
    # The label: one run instead of one per letter, starting where WeasyPrint's own
    # letter-by-letter layout starts it (text-anchor: end from its width), to a
    # fraction of a point (the run keeps the font's kerning).
    assert label[1] == 1 and label_ref[1] == len(LABEL.replace(" ", ""))
    assert abs(label[0] - label_ref[0]) < 0.5
    # A text with a position per letter is still drawn letter by letter.
    assert letters == letters_ref and letters[1] == 3
    # WeasyPrint is left as it was once the PDF is written.
    assert weasyprint.svg.text is drawn_by
    assert weasyprint.svg.TAGS["text"] is drawn_by
