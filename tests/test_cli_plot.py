"""``metaan plot`` from the command line: every kind, the formats and bad input."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import metaan
from metaan.bias import trim_and_fill
from metaan.cli import main

SVG = "{http://www.w3.org/2000/svg}"
HEADER = "study,year,alloc,ablat,tpos,n1i,cpos,n2i,rob_d1,rob_overall\n"
ROWS = [
    "Aronson,1948,random,44,4,123,11,139,low,some_concerns",
    "Ferguson & Simes,1949,random,55,6,306,29,303,low,low",
    "Rosenthal et al,1960,random,42,3,231,11,220,high,high",
    "Hart & Sutherland,1977,random,52,62,13598,248,12867,low,low",
    "Frimodt-Moller et al,1973,alternate,13,33,5069,47,5808,some_concerns,high",
    "Stein & Aronson,1953,alternate,44,180,1541,372,1451,low,some_concerns",
    "Vandiviere et al,1973,random,19,8,2545,10,629,,",
    "TPT Madras,1980,random,13,505,88391,499,88391,low,low",
    "Coetzee & Berjak,1968,random,27,29,7499,45,7277,high,high",
    "Rosenthal et al,1961,systematic,42,17,1716,65,1665,low,some_concerns",
    "Comstock et al,1974,systematic,18,186,50634,141,27338,low,low",
    "Comstock & Webster,1969,systematic,33,5,2498,3,2341,some_concerns,some_concerns",
    "Comstock et al,1976,systematic,33,27,16913,29,17854,low,low",
    "Lost to follow-up,1981,random,30,,200,12,210,low,low",
]
COUNTS = ["--measure", "OR", "--ai", "tpos", "--n1i", "n1i", "--ci", "cpos", "--n2i", "n2i"]


@pytest.fixture
def data(tmp_path: Path) -> str:
    path = tmp_path / "bcg.csv"
    path.write_text(HEADER + "\n".join(ROWS) + "\n", encoding="utf-8")
    return str(path)


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


def _svg_text(path: Path) -> str:
    root = ET.fromstring(path.read_bytes())
    return " ".join("".join(t.itertext()) for t in root.iter(f"{SVG}text"))


def _ids(path: Path, pattern: str) -> list[str]:
    root = ET.fromstring(path.read_bytes())
    rx = re.compile(pattern)
    return [el.get("id", "") for el in root.iter() if rx.fullmatch(el.get("id", ""))]


EXTRA = {
    "bubble": ["--mods", "ablat"],
    "compare": ["--subgroup", "alloc"],
    "cumulative": ["--order", "year"],
    "funnel": ["--contours", "--trimfill", "--egger"],
}


@pytest.mark.parametrize(
    "kind",
    [
        "forest",
        "funnel",
        "baujat",
        "bubble",
        "cumulative",
        "leave1out",
        "radial",
        "labbe",
        "compare",
    ],
)
def test_every_kind_of_plot_is_written_as_svg(kind: str, data: str, tmp_path: Path) -> None:
    out = tmp_path / f"{kind}.svg"
    code, output = _run("plot", kind, data, *COUNTS, *EXTRA.get(kind, []), "-o", str(out))
    assert code == 0, output
    text = _svg_text(out)
    if kind in ("forest", "leave1out", "cumulative"):
        assert "Hart & Sutherland" in text and "Comstock & Webster" in text
    if kind == "compare":
        assert all(level in text for level in ("alternate", "random", "systematic"))
        assert len(_ids(out, r"diamond-\d+")) == 3


def test_the_forest_shows_the_row_left_out_and_the_risk_of_bias(data: str, tmp_path: Path) -> None:
    out = tmp_path / "forest.svg"
    args = ["--columns", "year", "--rob", "--sort", "year", "--year", "year"]
    code, output = _run("plot", "forest", data, *COUNTS, *args, "-o", str(out))
    assert code == 0, output
    text = _svg_text(out)
    assert "Lost to follow-up" in text and "not pooled" in text
    assert len(_ids(out, r"study-\d+")) == 13
    assert len(_ids(out, r"rob-\d+-(D1|Overall)")) == 24  # one study has blank judgements
    assert "Favours treatment" in text


def test_a_subgroup_forest_has_a_diamond_per_level_and_the_test(data: str, tmp_path: Path) -> None:
    out = tmp_path / "sub.svg"
    code, output = _run("plot", "forest", data, *COUNTS, "--subgroup", "alloc", "-o", str(out))
    assert code == 0, output
    assert len(_ids(out, r"diamond-g\d+")) == 3
    assert len(_ids(out, "diamond-overall")) == 1
    assert "Test for subgroup differences" in _svg_text(out)


def test_the_funnel_shows_the_studies_trim_and_fill_adds(tmp_path: Path) -> None:
    reference = Path(__file__).parent / "reference" / "metafor" / "egger2001_OR.json"
    table = pd.DataFrame(json.loads(reference.read_text())["data"])
    path = tmp_path / "egger2001.csv"
    table[["study", "year", "ai", "n1i", "ci", "n2i"]].to_csv(path, index=False)
    out = tmp_path / "funnel.svg"
    flags = ["--measure", "OR", "--ai", "ai", "--n1i", "n1i", "--ci", "ci", "--n2i", "n2i"]
    code, output = _run("plot", "funnel", str(path), *flags, "--trimfill", "-o", str(out))
    assert code == 0, output
    k0 = trim_and_fill(metaan.fit(table, labels="study", measure="OR")).k0
    assert k0 > 0
    root = ET.fromstring(out.read_bytes())
    (filled,) = [g for g in root.iter(f"{SVG}g") if g.get("id") == "filled"]
    assert len(list(filled.iter(f"{SVG}use"))) == k0
    assert "Filled in by trim-and-fill" in _svg_text(out)


@pytest.mark.parametrize(("ext", "magic"), [("png", b"\x89PNG"), ("pdf", b"%PDF")])
def test_the_format_follows_the_extension(
    ext: str, magic: bytes, data: str, tmp_path: Path
) -> None:
    out = tmp_path / f"forest.{ext}"
    code, output = _run("plot", "forest", data, *COUNTS, "--dpi", "50", "-o", str(out))
    assert code == 0, output
    assert out.read_bytes().startswith(magic)


def test_two_runs_write_the_same_svg(data: str, tmp_path: Path) -> None:
    a, b = tmp_path / "a.svg", tmp_path / "b.svg"
    for out in (a, b):
        assert _run("plot", "forest", data, *COUNTS, "--rob", "-o", str(out))[0] == 0
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["forest", "-o", "out.gif"], "SVG, PNG or PDF"),
        (["bubble", "-o", "out.svg"], "--mods"),
        (["compare", "-o", "out.svg"], "--subgroup"),
        (["forest", "--subgroup", "region", "-o", "out.svg"], "no column 'region'"),
        (["forest", "--groups", "drug", "-o", "out.svg"], "two names"),
        (["forest", "--xlim", "0.1", "-o", "out.svg"], "two numbers"),
    ],
)
def test_bad_options_give_one_line_and_status_2(
    args: list[str], message: str, data: str, tmp_path: Path
) -> None:
    kind, *rest = args
    rest = [str(tmp_path / r) if r.startswith("out.") else r for r in rest]
    code, output = _run("plot", kind, data, *COUNTS, *rest)
    assert code == 2
    assert message in output
    assert "Traceback" not in output
