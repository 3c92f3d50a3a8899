"""Running a simulation: the same numbers however it is split, and where it runs;
blocks written as they arrive, and resumed without being redone."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from metaan.errors import InputError
from metaan.simulate import parse_simulation_spec, run_simulation
from metaan.simulate import run as run_module
from metaan.simulate.run import Block, plan_blocks

SPEC = """
[simulation]
title = "Reproducibility check"
seed = 99
replications = 300

[grid]
measure = ["SMD", "OR"]
k = [3, 4]
effect = [0.0]
tau2 = [0.0, 0.1]
control_risk = [0.2]

[sample_size]
distribution = "uniform"
low = 10
high = 40

[methods]
estimators = ["DL", "REML"]
tests = ["z", "knha"]
predictions = ["metafor", "meta"]
tables = ["MH", "PETO"]
"""


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "check.toml"
    path.write_text(SPEC, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def serial(spec_path: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("serial")
    return run_simulation(spec_path, out, block=300, figures=False).metrics


def test_every_fit_succeeds_and_every_measure_is_there(serial: pd.DataFrame) -> None:
    assert int(serial["failed"].sum()) == 0
    assert len(serial) == 4 * 8 + 4 * 10  # SMD: 8 methods; OR: 8 + MH + PETO
    assert serial["ci_coverage"].between(0, 1).all()
    assert (serial["replications"] == 300).all()


def test_any_block_size_gives_identical_numbers(
    spec_path: Path, serial: pd.DataFrame, tmp_path: Path
) -> None:
    for block in (100, 200):
        metrics = run_simulation(
            spec_path, tmp_path / str(block), block=block, figures=False
        ).metrics
        pd.testing.assert_frame_equal(metrics, serial, check_exact=True)


def test_local_processes_give_identical_numbers(
    spec_path: Path, serial: pd.DataFrame, tmp_path: Path
) -> None:
    metrics = run_simulation(
        spec_path, tmp_path, scheduler="processes", workers=2, block=100, figures=False
    ).metrics
    pd.testing.assert_frame_equal(metrics, serial, check_exact=True)


def test_a_dask_cluster_with_two_workers_gives_identical_numbers(
    spec_path: Path, serial: pd.DataFrame, dask_cluster: str, tmp_path: Path
) -> None:
    assert dask_cluster.startswith("tcp://127.0.0.1:")
    metrics = run_simulation(
        spec_path, tmp_path, scheduler=dask_cluster, block=200, figures=False
    ).metrics
    pd.testing.assert_frame_equal(metrics, serial, check_exact=True)


def test_a_resumed_run_redoes_no_finished_block(
    spec_path: Path, serial: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_simulation(spec_path, tmp_path, block=100, figures=False)
    blocks = tmp_path / "blocks"
    # An interrupted run: the blocks of scenario 5 and one of scenario 2 never arrived.
    lost = [*sorted(blocks.glob("s000005-*.npz")), blocks / "s000002-u0000001-0000002.npz"]
    for path in lost:
        path.unlink()
    ran: list[Block] = []
    original = run_module.simulate_block

    def counting(spec: object, block: Block) -> run_module.BlockResult:
        ran.append(block)
        return original(spec, block)  # type: ignore[arg-type]

    monkeypatch.setattr(run_module, "simulate_block", counting)
    result = run_simulation(spec_path, tmp_path, block=300, resume=True, figures=False)
    assert ran == [Block(2, 1, 1), Block(5, 0, 3)]
    pd.testing.assert_frame_equal(result.metrics, serial, check_exact=True)


def test_a_folder_holding_a_run_needs_resume_and_the_same_spec(
    spec_path: Path, tmp_path: Path
) -> None:
    small = parse_simulation_spec(SPEC).subset([0])
    run_simulation(small, tmp_path, figures=False)
    with pytest.raises(InputError, match="--resume"):
        run_simulation(small, tmp_path, figures=False)
    other = parse_simulation_spec(SPEC.replace("seed = 99", "seed = 100")).subset([0])
    with pytest.raises(InputError, match="another specification"):
        run_simulation(other, tmp_path, resume=True)


def test_a_subset_of_scenarios_reproduces_their_rows(serial: pd.DataFrame, tmp_path: Path) -> None:
    spec = parse_simulation_spec(SPEC).subset([1, 6])
    metrics = run_simulation(spec, tmp_path, figures=False).metrics
    expected = serial[serial["scenario"].isin([1, 6])].reset_index(drop=True)
    pd.testing.assert_frame_equal(metrics, expected, check_exact=True)


def test_the_outputs_hold_the_same_metrics_as_csv_and_parquet(
    spec_path: Path, tmp_path: Path
) -> None:
    spec = parse_simulation_spec(SPEC).subset([3])
    metrics = run_simulation(spec, tmp_path).metrics
    from_csv = pd.read_csv(tmp_path / "metrics.csv")
    from_parquet = pd.read_parquet(tmp_path / "metrics.parquet")
    pd.testing.assert_frame_equal(from_parquet, metrics, check_exact=True)
    pd.testing.assert_frame_equal(from_csv, metrics, check_exact=True, check_dtype=False)
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "Fits that failed: 0" in html and "<svg" in html
    for name in ("ci_coverage", "pi_coverage", "bias", "tau2_bias", "rejection"):
        assert (tmp_path / "figures" / f"{name}.svg").is_file()


def test_the_progress_bar_shows_on_a_terminal_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    spec = parse_simulation_spec(SPEC).subset([0, 1])
    screen = Terminal()
    monkeypatch.setattr("sys.stderr", screen)
    run_simulation(spec, tmp_path / "shown", progress=True, figures=False)
    shown = screen.getvalue()
    assert "scenarios 2/2" in shown and "fit/s" in shown
    quiet = Terminal()
    monkeypatch.setattr("sys.stderr", quiet)
    run_simulation(spec, tmp_path / "quiet", progress=False, figures=False)
    assert quiet.getvalue() == ""
    piped = io.StringIO()
    monkeypatch.setattr("sys.stderr", piped)
    run_simulation(spec, tmp_path / "piped", progress=True, figures=False)
    assert piped.getvalue() == ""


def test_blocks_are_whole_units_and_a_bad_block_size_or_scheduler_is_an_error() -> None:
    spec = parse_simulation_spec(SPEC.replace("replications = 300", "replications = 250"))
    blocks = plan_blocks(spec.subset([0]), 200)
    assert blocks == [Block(0, 0, 2), Block(0, 2, 1)]
    assert blocks[1].replications(250) == (200, 250)
    with pytest.raises(InputError, match="multiple of 100"):
        plan_blocks(spec, 150)
    with pytest.raises(InputError, match="scheduler"):
        run_simulation(spec, "unused", scheduler="threads")
    with pytest.raises(InputError, match="--workers"):
        run_simulation(spec, "unused", workers=2)
