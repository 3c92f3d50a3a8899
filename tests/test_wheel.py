"""The wheel carries what it needs: study records, the default report and its templates.

The wheel is built from the checkout, installed into an empty folder, and run
from another folder with nothing but that folder and the third-party packages on
the import path (``python -S``: no site processing, so no editable install of the
checkout either).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from test_report_build import _numbers_equal

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    base = tmp_path_factory.mktemp("wheel")
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                  str(base / "dist"), str(ROOT)], base, dict(os.environ))  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (base / "dist").glob("metaan-*.whl")
    target = base / "site"
    done = _run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                 str(target), str(wheel)], base, dict(os.environ))  # fmt: skip
    assert done.returncode == 0, done.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join([str(target), sysconfig.get_paths()["purelib"]])
    env["MPLBACKEND"] = "Agg"
    return target, env


def _metaan(*args: str) -> list[str]:
    return [sys.executable, "-S", "-c", "from metaan.cli import main; main()", *args]


def test_metaan_is_imported_from_the_installed_wheel(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    target, env = installed
    where = _run([sys.executable, "-S", "-c", "import metaan; print(metaan.__file__)"],
                 tmp_path, env)  # fmt: skip
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(target)


def test_the_installed_wheel_validates_the_study_records_it_carries(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    _, env = installed
    result = _run(_metaan("studies", "validate"), tmp_path, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no problems found" in result.stderr
    code = "from metaan import load_studies; print(len(load_studies()))"
    loaded = _run([sys.executable, "-S", "-c", code], tmp_path, env)
    assert loaded.returncode == 0, loaded.stderr
    assert int(loaded.stdout) > 100


def test_the_installed_wheel_builds_the_default_report_in_another_folder(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    _, env = installed
    result = _run(_metaan("report", "--no-pdf", "--no-docx", "--quiet"), tmp_path, env)
    assert result.returncode == 0, result.stdout + result.stderr
    built = json.loads((tmp_path / "depression" / "results.json").read_text(encoding="utf-8"))
    committed = json.loads((ROOT / "reports" / "depression" / "results.json").read_text("utf-8"))
    _numbers_equal(built["classes"], committed["classes"], "$.classes")
    assert (tmp_path / "depression" / "index.html").stat().st_size > 10_000
