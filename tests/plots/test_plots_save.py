"""Saving figures: formats, resolution, and byte-identical SVG and PDF."""

from __future__ import annotations

import io
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib as mpl
import pytest
from plotcheck import SVG_NS, reference_cases, svg_bytes

from metaan import plots
from metaan.bias import trim_and_fill
from metaan.errors import InputError

BCG = reference_cases()[0]


def _build(fmt: str) -> list[object]:
    """A fresh set of figures, drawn from scratch (PDF, slow to embed fonts, gets one)."""
    figures = [plots.forest(BCG.fit, rob={"D1": ["Low"] * BCG.fit.k}, title="BCG")]
    if fmt == "svg":
        figures += [plots.funnel(trim_and_fill(BCG.fit), contours=True), plots.radial(BCG.fit)]
    return figures


@pytest.mark.parametrize("fmt", ["svg", "pdf"])
def test_rebuilding_a_figure_gives_the_same_bytes(fmt: str) -> None:
    def render() -> list[bytes]:
        out = []
        for fig in _build(fmt):
            buffer = io.BytesIO()
            plots.save(fig, buffer, format=fmt)  # type: ignore[arg-type]
            out.append(buffer.getvalue())
        return out

    first, second = render(), render()
    assert first == second
    for data in first:
        assert b"metaan" in data  # the creator, instead of a tool version and a date


def test_the_svg_has_no_date_and_keeps_text_as_text() -> None:
    data = svg_bytes(plots.forest(BCG.fit))
    assert b"<dc:date>" not in data
    root = ET.fromstring(data)
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG_NS}text")]
    assert BCG.fit.labels[0] in texts
    ids = [el.get("id") for el in root.iter() if el.get("id")]
    assert len(ids) == len(set(ids))  # every id is unique


def test_the_format_comes_from_the_extension(tmp_path: Path) -> None:
    fig = plots.radial(BCG.fit)
    for ext, magic in (("svg", b"<?xml"), ("png", b"\x89PNG"), ("pdf", b"%PDF")):
        path = tmp_path / f"radial.{ext.upper() if ext == 'pdf' else ext}"
        plots.save(fig, path)
        assert path.read_bytes().startswith(magic)


def test_png_is_written_at_300_dpi_by_default(tmp_path: Path) -> None:
    fig = plots.radial(BCG.fit)
    path = tmp_path / "radial.png"
    plots.save(fig, path)
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    assert (width, height) == (
        round(fig.get_figwidth() * 300),
        round(fig.get_figheight() * 300),
    )


def test_an_unknown_format_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    fig = plots.radial(BCG.fit)
    with pytest.raises(InputError, match="SVG, PNG or PDF"):
        plots.save(fig, tmp_path / "radial.gif")
    with pytest.raises(InputError, match="no extension"):
        plots.save(fig, tmp_path / "radial")
    with pytest.raises(InputError, match="needs a format"):
        plots.save(fig, io.BytesIO())
    assert list(tmp_path.iterdir()) == []


def test_saving_leaves_the_rc_parameters_alone(tmp_path: Path) -> None:
    before = dict(mpl.rcParams)
    plots.save(plots.radial(BCG.fit), tmp_path / "r.svg")
    assert dict(mpl.rcParams) == before
