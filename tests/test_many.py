"""fit_many: one row per group, each equal to metaan.fit on that group."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import metaan
from metaan.cli import main
from metaan.many import MANY_COLUMNS


def _table(seed: int = 5, groups: int = 25) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for g in range(groups):
        k = int(rng.integers(2, 15))
        vi = rng.uniform(0.01, 0.3, k)
        yi = rng.normal(rng.normal(0, 0.5), np.sqrt(vi + rng.uniform(0, 0.2)))
        parts.append(pd.DataFrame({"outcome": f"o{g:02d}", "study": [f"s{g}-{i}" for i in
                                   range(k)], "yi": yi, "vi": vi}))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def _same(got: object, want: object, where: str) -> None:
    if want is None:
        assert got is None or (isinstance(got, float) and math.isnan(got)) or got is pd.NA, where
    elif isinstance(want, float):
        assert isinstance(got, float | int | np.floating), where
        assert float(got) == pytest.approx(want, rel=1e-12, abs=1e-300), where
    else:
        assert got == want, where


@pytest.mark.parametrize(("method", "test"), [("REML", "z"), ("DL", "knha"), ("EE", "z"),
                                              ("PM", "knha"), ("SJ", "z")])  # fmt: skip
def test_every_row_equals_a_fit_of_its_group(method: str, test: str) -> None:
    table = _table()
    many = metaan.fit_many(table, by="outcome", method=method, test=test)
    assert list(many.columns) == ["outcome", *MANY_COLUMNS]
    assert many["outcome"].tolist() == sorted(table["outcome"].unique())
    for _, row in many.iterrows():
        group = table[table["outcome"] == row["outcome"]]
        expected = metaan.fit(group, method=method, test=test).to_dict()
        for name, value in expected.items():
            if name == "excluded":
                assert row["excluded"] == value
            elif name.endswith("_ci"):
                value = value or [None, None]
                _same(row[f"{name}_lb"], value[0], f"{row['outcome']} {name}_lb")
                _same(row[f"{name}_ub"], value[1], f"{row['outcome']} {name}_ub")
            else:
                _same(row[name], value, f"{row['outcome']} {name}")
        assert row["error"] == ""


def test_a_group_that_cannot_be_fitted_says_why_and_the_others_are_fitted() -> None:
    table = _table(groups=3)
    extra = pd.DataFrame(
        {
            "outcome": ["single", "empty", "empty", None],
            "yi": [0.2, np.nan, 0.1, 0.3],
            "vi": [0.1, 0.1, np.nan, 0.1],
        }
    )
    many = metaan.fit_many(pd.concat([table, extra], ignore_index=True), by="outcome")
    by_name = many.set_index("outcome")
    assert "at least 2 studies" in by_name.loc["single", "error"]
    assert "no study has an effect size" in by_name.loc["empty", "error"]
    assert math.isnan(by_name.loc["single", "estimate"])
    assert [e["reason"] for e in by_name.loc["empty", "excluded"]] == [
        "yi is missing",
        "vi is missing",
    ]
    assert (by_name.loc[["o00", "o01", "o02"], "error"] == "").all()
    assert many.attrs["excluded"][0]["reason"] == "the grouping value (outcome) is missing"


def test_metaan_fit_by_prints_one_row_per_group(tmp_path: Path) -> None:
    table = _table(groups=4)
    path = tmp_path / "many.csv"
    table.to_csv(path, index=False)
    runner = CliRunner()
    out = runner.invoke(main, ["fit", str(path), "--yi", "yi", "--vi", "vi", "--by", "outcome",
                               "--format", "json"])  # fmt: skip
    assert out.exit_code == 0, out.output
    groups = json.loads(out.stdout)["groups"]
    assert [g["outcome"] for g in groups] == ["o00", "o01", "o02", "o03"]
    first = metaan.fit(table[table["outcome"] == "o00"]).to_dict()
    assert groups[0]["estimate"] == pytest.approx(first["estimate"], rel=1e-12)
    assert groups[0]["tau2_ci_ub"] == pytest.approx(first["tau2_ci"][1], rel=1e-12)
    csv = runner.invoke(main, ["fit", str(path), "--yi", "yi", "--vi", "vi", "--by", "outcome",
                               "--format", "csv"])  # fmt: skip
    assert csv.exit_code == 0
    assert len(csv.stdout.strip().splitlines()) == 5
    bad = runner.invoke(main, ["fit", str(path), "--yi", "yi", "--vi", "vi", "--by", "nope"])
    assert bad.exit_code == 2
    assert "--by: there is no column 'nope'" in bad.output
