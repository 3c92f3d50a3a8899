"""Nothing destroyed: atomic writes, outputs that are inputs, and a report folder
that a build owns only file by file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from metaan._output import MANIFEST, OutputFolder, atomic_write, refuse_input
from metaan.cli import main
from metaan.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
STUDIES = "study,yi,vi\nA,0.1,0.04\nB,0.3,0.02\nC,-0.2,0.05\nD,0.5,0.03\n"


def test_an_interrupted_write_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "result.json"
    target.write_text("old", encoding="utf-8")

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, "new")
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temporary left


def test_an_atomic_write_replaces_the_file_and_keeps_its_permissions(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old", encoding="utf-8")
    target.chmod(0o640)
    atomic_write(target, "new\n")
    assert target.read_bytes() == b"new\n"
    assert target.stat().st_mode & 0o777 == 0o640


def test_writing_into_a_missing_folder_or_onto_a_folder_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"the folder .*nodir does not exist; create the folder"):
        atomic_write(tmp_path / "nodir" / "x.csv", "x")
    with pytest.raises(InputError, match="is a folder, not a file"):
        atomic_write(tmp_path, "x")


def test_an_output_that_is_an_input_is_refused_by_path_and_by_link(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text(STUDIES, encoding="utf-8")
    with pytest.raises(InputError, match="would overwrite the input"):
        refuse_input(tmp_path / "." / "data.csv", [data])
    link = tmp_path / "link.csv"
    link.symlink_to(data)
    with pytest.raises(InputError, match="would overwrite the input"):
        refuse_input(link, [data])
    refuse_input(tmp_path / "other.csv", [data])


def test_a_folder_build_removes_only_what_its_previous_build_listed(tmp_path: Path) -> None:
    first = OutputFolder(tmp_path)
    first.write("figures/a.svg", "a")
    first.write("figures/b.svg", "b")
    first.finish()
    (tmp_path / "figures" / "mine.txt").write_text("the user's own", encoding="utf-8")
    (tmp_path / "notes.md").write_text("also the user's", encoding="utf-8")
    second = OutputFolder(tmp_path)
    second.write("figures/a.svg", "a2")
    removed = second.finish()
    assert [p.name for p in removed] == ["b.svg"]
    assert (tmp_path / "figures" / "mine.txt").read_text(encoding="utf-8") == "the user's own"
    assert (tmp_path / "notes.md").exists()
    assert (tmp_path / MANIFEST).read_text(encoding="utf-8").splitlines()[1:] == ["figures/a.svg"]


def test_a_manifest_edited_to_point_outside_removes_nothing_there(tmp_path: Path) -> None:
    outside = tmp_path / "precious.csv"
    outside.write_text("keep", encoding="utf-8")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / MANIFEST).write_text("# x\n../precious.csv\n", encoding="utf-8")
    OutputFolder(folder).finish()
    assert outside.read_text(encoding="utf-8") == "keep"


def test_a_folder_refuses_to_write_over_an_input(tmp_path: Path) -> None:
    spec = tmp_path / "results.json"
    spec.write_text("{}", encoding="utf-8")
    with pytest.raises(InputError, match="would overwrite the input"):
        OutputFolder(tmp_path, inputs=[spec]).write("results.json", "{}")


# ----------------------------------------------------------------------------- reports

SPEC = """
[report]
title = "Output safety"
output = "out"

[data]
files = ["{studies}"]

[[class]]
id = "psilocybin"
label = "Psilocybin"
[class.continuous.where]
drug_class = "psilocybin"
primary_outcome = 1
primary_timepoint = 1
outcome_type = "endpoint"
[class.continuous.exclude]
post_crossover = 1
comparator_kind = "active_drug"
arm1_id = "psil 10 mg"
"""


def _spec(tmp_path: Path) -> Path:
    path = tmp_path / "report.toml"
    path.write_text(
        SPEC.replace("{studies}", (ROOT / "studies" / "psilocybin.csv").as_posix()),
        encoding="utf-8",
    )
    return path


def test_rebuilding_a_report_keeps_the_user_s_files_in_its_folders(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    out = tmp_path / "out"
    run = CliRunner().invoke(main, ["report", str(spec), "--no-pdf", "--no-docx", "--quiet"])
    assert run.exit_code == 0, run.stderr
    mine = [out / "figures" / "my-edit.svg", out / "tables" / "my-notes.csv", out / "readme.txt"]
    for path in mine:
        path.write_text("mine", encoding="utf-8")
    stale = out / "figures" / "forest_old.svg"
    manifest = out / MANIFEST
    manifest.write_text(
        manifest.read_text(encoding="utf-8") + "figures/forest_old.svg\n", encoding="utf-8"
    )
    stale.write_text("from an earlier build", encoding="utf-8")
    again = CliRunner().invoke(main, ["report", str(spec), "--no-pdf", "--no-docx", "-o", str(out)])
    assert again.exit_code == 0, again.stderr
    assert "removed figures/forest_old.svg" in again.stderr
    assert not stale.exists()
    assert all(p.read_text(encoding="utf-8") == "mine" for p in mine)


def test_a_report_into_an_existing_file_is_one_error(tmp_path: Path) -> None:
    target = tmp_path / "index.html"
    target.write_text("keep", encoding="utf-8")
    run = CliRunner().invoke(main, ["report", str(_spec(tmp_path)), "--no-pdf", "-o", str(target)])
    assert run.exit_code == 2
    assert run.stderr.strip() == (
        f"metaan: error: {target}: the output folder is a file; give -o the name of a folder "
        "(a new one is created)"
    )
    assert target.read_text(encoding="utf-8") == "keep"


def test_a_specification_with_a_byte_order_mark_reads(tmp_path: Path) -> None:
    from metaan.report.spec import load_spec

    spec = _spec(tmp_path)
    spec.write_bytes(b"\xef\xbb\xbf" + spec.read_bytes())
    assert load_spec(spec).title == "Output safety"


def test_a_specification_in_a_legacy_encoding_names_its_line(tmp_path: Path) -> None:
    from metaan.errors import SpecError
    from metaan.report.spec import load_spec

    spec = tmp_path / "latin.toml"
    spec.write_bytes(b'[report]\ntitle = "Caf\xe9"\n')
    with pytest.raises(SpecError, match="line 2: the specification is not UTF-8 text"):
        load_spec(spec)
