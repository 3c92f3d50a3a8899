"""fit_many on tables larger than one machine: a Dask DataFrame or a folder of
Parquet files, fitted partition by partition on a LocalCluster, equals the
in-memory result row for row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import metaan
from metaan.cli import main
from metaan.errors import InputError


def _assert_same_rows(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal row for row: every value exactly, except that the engine pads each batch
    to its widest problem and a partition's batches differ from the whole table's,
    which moves the last bit of some sums (a relative 1e-15)."""
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected)
    for name in expected.columns:
        if pd.api.types.is_float_dtype(expected[name]):
            np.testing.assert_allclose(got[name], expected[name], rtol=1e-13, atol=0)
        else:
            assert got[name].tolist() == expected[name].tolist(), name
    assert (got.dtypes == expected.dtypes).all()


def _table(n: int = 4000, seed: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        {
            "trial": rng.integers(0, 500, n),
            "arm": rng.choice(["low", "high"], n),
            "yi": rng.normal(0.2, 0.5, n),
            "vi": rng.uniform(0.01, 0.3, n),
        }
    )
    table.loc[[11, n - 100], "yi"] = np.nan  # excluded rows, listed with their row
    return table


def test_a_dask_dataframe_on_a_cluster_equals_the_in_memory_fit_row_for_row(
    dask_cluster: str,
) -> None:
    import dask.dataframe as dd
    from distributed import Client

    table = _table()
    expected = metaan.fit_many(table, by=["trial", "arm"], method="REML", test="knha")
    with Client(dask_cluster):
        lazy = metaan.fit_many(
            dd.from_pandas(table, npartitions=6), by=["trial", "arm"], method="REML", test="knha"
        )
        assert type(lazy).__module__.startswith("dask.")
        got = lazy.compute()
    got = got.sort_values(["trial", "arm"]).reset_index(drop=True)
    assert len(got) == len(expected) == table.groupby(["trial", "arm"]).ngroups
    got = got.astype(expected.dtypes.to_dict())  # Dask keeps text as Arrow strings
    _assert_same_rows(got, expected.reset_index(drop=True))
    assert got["excluded"].map(len).sum() == 2


def test_a_folder_of_parquet_files_gives_the_in_memory_table(
    dask_cluster: str, tmp_path: Path
) -> None:
    from distributed import Client

    table = _table(seed=9)
    for i, part in enumerate(np.array_split(np.arange(len(table)), 5)):
        table.iloc[part].to_parquet(tmp_path / f"part-{i}.parquet", index=False)
    expected = metaan.fit_many(table, by="trial", method="DL")
    with Client(dask_cluster):
        got = metaan.fit_many(tmp_path, by="trial", method="DL")
    assert isinstance(got, pd.DataFrame)
    _assert_same_rows(got, expected)


def test_metaan_fit_by_reads_a_folder_of_parquet_files(tmp_path: Path) -> None:
    table = _table(n=600, seed=10)
    folder = tmp_path / "effects"
    folder.mkdir()
    table.iloc[:300].to_parquet(folder / "a.parquet", index=False)
    table.iloc[300:].to_parquet(folder / "b.parquet", index=False)
    csv = tmp_path / "effects.csv"
    table.to_csv(csv, index=False)
    args = ["--by", "trial,arm", "--yi", "yi", "--vi", "vi", "--format", "csv"]
    from_folder = CliRunner().invoke(main, ["fit", str(folder), *args])
    from_csv = CliRunner().invoke(main, ["fit", str(csv), *args])
    assert from_folder.exit_code == 0, from_folder.output
    assert from_folder.stdout == from_csv.stdout


def test_rows_without_a_group_are_an_error_rather_than_lost() -> None:
    import dask.dataframe as dd

    table = _table(n=200)
    table.loc[3, "trial"] = np.nan
    with pytest.raises(InputError, match="1 rows have no value"):
        metaan.fit_many(dd.from_pandas(table, npartitions=2), by="trial")
