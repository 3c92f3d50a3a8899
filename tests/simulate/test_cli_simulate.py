"""``metaan simulate`` from the command line: the files it writes, and bad input."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from metaan.cli import main

SPEC = """
[simulation]
seed = 5
replications = 200
[grid]
measure = ["SMD"]
k = [3]
effect = [0.0]
tau2 = [0.05]
[sample_size]
distribution = "choice"
values = [12, 30, 30, 45]
[methods]
estimators = ["DL"]
tests = ["z", "knha"]
"""


def _spec(tmp_path: Path, text: str = SPEC) -> str:
    path = tmp_path / "grid.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_simulate_writes_metrics_figures_and_a_summary_next_to_the_spec(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["simulate", _spec(tmp_path), "--block", "100"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "grid"
    for name in ("metrics.csv", "metrics.parquet", "index.html", "figures/ci_coverage.svg"):
        assert (out / name).is_file(), name
    assert "1 scenarios x 200 replications" in result.stderr
    assert "0 failed fits" in result.stderr
    # Not a terminal: no progress bar.
    assert "fit/s" not in result.stderr


def test_quiet_prints_nothing_and_output_goes_where_asked(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["simulate", _spec(tmp_path), "-o", str(tmp_path / "elsewhere"), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert (tmp_path / "elsewhere" / "metrics.csv").is_file()


def test_an_unknown_key_exits_2_naming_it_without_a_traceback(tmp_path: Path) -> None:
    spec = _spec(tmp_path, SPEC.replace("seed = 5", "seed = 5\nreplicates = 10"))
    result = CliRunner().invoke(main, ["simulate", spec])
    assert result.exit_code == 2
    assert "[simulation] replicates: unknown key" in result.stderr
    assert "Traceback" not in result.output


def test_a_second_run_into_the_same_folder_needs_resume(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    assert CliRunner().invoke(main, ["simulate", spec, "--quiet"]).exit_code == 0
    again = CliRunner().invoke(main, ["simulate", spec, "--quiet"])
    assert again.exit_code == 2 and "--resume" in again.stderr
    resumed = CliRunner().invoke(main, ["simulate", spec, "--resume"])
    assert resumed.exit_code == 0 and "0 blocks run" in resumed.stderr


def test_a_bad_scheduler_or_block_size_exits_2(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    bad = CliRunner().invoke(main, ["simulate", spec, "--scheduler", "threads"])
    assert bad.exit_code == 2 and "tcp://HOST:PORT" in bad.stderr
    block = CliRunner().invoke(main, ["simulate", spec, "-o", str(tmp_path / "b"), "--block", "50"])
    assert block.exit_code == 2 and "multiple of 100" in block.stderr
