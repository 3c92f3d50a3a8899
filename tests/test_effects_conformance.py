"""Every yi and vi in the metafor reference files, recomputed from the raw columns.

For each file in the reference directory (``METAAN_REFERENCE_DIR``, default
``tests/reference/metafor``), the ``effect`` object says how metafor made
``yi``/``vi``: from 2x2 counts (keys ``ai, n1i, ci, n2i`` name the columns),
from means (``columns``: ``m1i, sd1i, n1i, m2i, sd2i, n2i``), from one-group
data (``xi``/``ni``, ``ri``/``ni``), or ``precomputed``. The reference
``yi``/``vi`` are removed from the table before metaan recomputes them, and the
two are compared with the shared tolerance in ``tests/tolerance.py``.

A precomputed file whose rows carry the published ratio with its confidence
limits (hackshaw: ``or``, ``or.lb``, ``or.ub``) is recomputed from those. A
precomputed file with no raw columns besides ``yi``/``vi`` (raudenbush) holds
nothing to recompute: it is checked by round trip only, ``escalc(yi=, vi=)``
returning the same values.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from metaan.effects import escalc
from tolerance import assert_close

REFERENCE_DIR = Path(
    os.environ.get(
        "METAAN_REFERENCE_DIR", Path(__file__).resolve().parent / "reference" / "metafor"
    )
)
FILES = sorted(REFERENCE_DIR.glob("*.json"))

# Keys of the ``effect`` object that name a column for an escalc argument.
COLUMN_KEYS = ("ai", "bi", "ci", "di", "n1i", "n2i", "m1i", "sd1i", "m2i", "sd2i", "xi", "ni", "ri")
# Keys that carry an escalc option rather than a column.
OPTION_KEYS = ("add", "to", "drop00")


def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document: dict[str, Any] = json.load(handle)
    return document


def _ratio_columns(measure: str, table: pd.DataFrame) -> tuple[str, str, str] | None:
    """The published ratio and its limits, as metadat names them (``or``, ``or.lb``, ``or.ub``)."""
    stem = measure.lower()
    names = (stem, f"{stem}.lb", f"{stem}.ub")
    return names if all(name in table.columns for name in names) else None


def _how(effect: dict[str, Any], table: pd.DataFrame) -> dict[str, Any]:
    """escalc keyword arguments that reproduce the file's yi/vi, or {} for round trip only."""
    columns = {key: effect[key] for key in COLUMN_KEYS if isinstance(effect.get(key), str)}
    columns.update({name: name for name in effect.get("columns", [])})
    options = {key: effect[key] for key in OPTION_KEYS if key in effect}
    if columns:
        return {**columns, **options}
    if effect.get("precomputed"):
        ratio = _ratio_columns(effect["measure"], table)
        if ratio is not None:
            return {"yi": ratio[0], "ci_lb": ratio[1], "ci_ub": ratio[2]}
        return {}
    raise AssertionError(f"the effect object {effect} names no columns to recompute from")


def test_the_reference_directory_has_files() -> None:
    assert FILES, f"no reference files in {REFERENCE_DIR}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_yi_and_vi_match_metafor(path: Path) -> None:
    document = _load(path)
    effect = document["effect"]
    table = pd.DataFrame(document["data"])
    expected_yi = table.pop("yi").tolist()
    expected_vi = table.pop("vi").tolist()
    kwargs = _how(effect, table)
    if not kwargs:
        pytest.skip("precomputed yi/vi with no raw columns: checked by round trip")
    result = escalc(table, effect["measure"], source=path.name, **kwargs)
    assert_close(result["yi"], expected_yi, f"{path.stem} yi")
    assert_close(result["vi"], expected_vi, f"{path.stem} vi")
    # A study is excluded exactly where metafor gives no yi/vi: a JSON null,
    # read from the file itself (pandas turns it into NaN in the table).
    excluded = result["exclusion_reason"].notna().tolist()
    assert excluded == [row.get("yi") is None or row.get("vi") is None for row in document["data"]]
    assert any(excluded) == any(math.isnan(float(y)) for y in result["yi"])


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_precomputed_yi_and_vi_survive_a_round_trip(path: Path) -> None:
    document = _load(path)
    table = pd.DataFrame(document["data"])
    result = escalc(table, document["effect"]["measure"], yi="yi", vi="vi", source=path.name)
    assert_close(result["yi"], table["yi"].tolist(), f"{path.stem} yi round trip")
    assert_close(result["vi"], table["vi"].tolist(), f"{path.stem} vi round trip")
