"""Report specifications: every key checked, errors that name the key and its line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from metaan.cli import main
from metaan.errors import SpecError
from metaan.report.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent
STUDIES = ROOT / "studies"

GOOD = f"""
[report]
title = "A small report"
output = "out"

[data]
files = ["{(STUDIES / "psilocybin.csv").as_posix()}"]

[model]
method = "REML"
test = "knha"

[[class]]
id = "psilocybin"
label = "Psilocybin"
[class.continuous]
select = "psilocybin_main_analysis"
"""


def _spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_spec_is_read_with_paths_resolved_relative_to_it(tmp_path: Path) -> None:
    spec = load_spec(_spec(tmp_path, GOOD))
    assert spec.title == "A small report"
    assert spec.output == (tmp_path / "out").resolve()
    assert spec.files == ((STUDIES / "psilocybin.csv").resolve(),)
    assert spec.model.test == "knha" and spec.model.level == 95.0
    assert spec.classes[0].continuous.named == "psilocybin_main_analysis"


def test_an_unknown_key_is_named_with_its_line(tmp_path: Path) -> None:
    text = GOOD.replace('method = "REML"', 'method = "REML"\nestimator = "DL"')
    with pytest.raises(SpecError, match=r"line 11: \[model\] estimator: unknown key; use one of"):
        load_spec(_spec(tmp_path, text))


def test_an_unknown_table_is_named(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="plots: unknown key"):
        load_spec(_spec(tmp_path, GOOD + "\n[plots]\nforest = true\n"))


def test_a_wrong_type_is_named_with_its_line_and_the_type_it_needs(tmp_path: Path) -> None:
    text = GOOD.replace('test = "knha"', "test = 3")
    with pytest.raises(SpecError, match=r"line 11: \[model\] test: is int 3; it must be a str"):
        load_spec(_spec(tmp_path, text))


def test_a_value_outside_the_allowed_choices_lists_them(tmp_path: Path) -> None:
    text = GOOD.replace('method = "REML"', 'method = "XYZ"')
    with pytest.raises(SpecError, match="choose one of EE, DL"):
        load_spec(_spec(tmp_path, text))


def test_an_output_folder_outside_the_spec_folder_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace('output = "out"', 'output = "../elsewhere"')
    with pytest.raises(SpecError, match="leaves the specification's folder"):
        load_spec(_spec(tmp_path, text))


def test_a_study_file_that_does_not_exist_is_named(tmp_path: Path) -> None:
    text = GOOD.replace("psilocybin.csv", "nothing.csv")
    with pytest.raises(SpecError, match=r"\[data\] files: .*nothing.csv.* does not exist"):
        load_spec(_spec(tmp_path, text))


def test_invalid_toml_is_an_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"spec\.toml: not valid TOML"):
        load_spec(_spec(tmp_path, "[report\ntitle = 1"))


def test_the_cli_reports_a_bad_spec_in_one_line_with_exit_status_2(tmp_path: Path) -> None:
    path = _spec(tmp_path, GOOD.replace('test = "knha"', "test = 3"))
    result = CliRunner().invoke(main, ["report", str(path), "--no-pdf", "--quiet"])
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "[model] test" in lines[0]


def test_the_default_spec_is_valid() -> None:
    spec = load_spec(ROOT / "reports" / "depression.toml")
    assert [c.id for c in spec.classes] == ["psilocybin", "ssri", "cannabinoid"]
    assert spec.output == (ROOT / "reports" / "depression").resolve()


def test_every_field_of_the_model_is_a_key_and_its_choices_are_checked(tmp_path: Path) -> None:
    import dataclasses

    from metaan.report.spec import ModelSpec

    names = [f.name for f in dataclasses.fields(ModelSpec)]
    assert {"effect_sizes", "response_measures", "prediction"} <= set(names)
    text = GOOD.replace('test = "knha"', 'test = "knha"\neffect_sizes = "published"')
    with pytest.raises(SpecError, match=r"\[model\] effect_sizes: is 'published'; choose one of"):
        load_spec(_spec(tmp_path, text))
    text = GOOD.replace('test = "knha"', 'test = "knha"\nresponse_measures = ["OR", "HR"]')
    with pytest.raises(SpecError, match="response_measures: is 'HR'"):
        load_spec(_spec(tmp_path, text))


def test_the_outcome_grade_and_reproduction_tables_are_read(tmp_path: Path) -> None:
    text = (
        GOOD
        + '\n[outcome]\nunit = "HAM-D points"\n\n[grade]\nmid = 0.3\n'
        + '\n[[reproduction]]\nlabel = "x"\nanalysis = "psilocybin/continuous"\nsource = "y"\n'
        + 'published = { estimate = "-0.9031" }\n'
    )
    spec = load_spec(_spec(tmp_path, text))
    assert spec.outcome.unit == "HAM-D points" and spec.grade.mid == 0.3
    assert spec.reproductions[0].published == {"estimate": "-0.9031"}


def test_a_published_figure_must_be_written_as_printed(tmp_path: Path) -> None:
    text = (
        GOOD
        + '\n[[reproduction]]\nlabel = "x"\nanalysis = "psilocybin/continuous"\nsource = "y"\n'
        + "published = { estimate = -0.9031 }\n"
    )
    with pytest.raises(
        SpecError, match=r"published\.estimate: is float -0\.9031; it must be a str"
    ):
        load_spec(_spec(tmp_path, text))


def test_a_grade_judgement_outside_the_grade_words_is_refused(tmp_path: Path) -> None:
    text = GOOD + '[class.grade]\nindirectness = "bad"\n'
    with pytest.raises(SpecError, match=r"\[class.grade\] indirectness: is 'bad'"):
        load_spec(_spec(tmp_path, text))


def test_the_second_shipped_spec_is_valid() -> None:
    spec = load_spec(ROOT / "reports" / "ssri_response.toml")
    assert spec.model.response_measures == ("OR", "RR")
    assert spec.classes[0].continuous is None


def test_the_shared_control_model_names_its_classes_and_checks_rho(tmp_path: Path) -> None:
    table = '\n[dependent]\nrho = 0.5\n[[dependent.class]]\nid = "{}"\n'
    dep = load_spec(_spec(tmp_path, GOOD + table.format("psilocybin"))).dependent
    assert dep is not None and dep.rho == 0.5
    assert [c.class_id for c in dep.classes] == ["psilocybin"] and dep.classes[0].continuous is None
    with pytest.raises(SpecError, match=r"'ssri' is not a class id"):
        load_spec(_spec(tmp_path, GOOD + table.format("ssri")))
    with pytest.raises(SpecError, match=r"rho: is 1.5"):
        load_spec(_spec(tmp_path, GOOD + table.format("psilocybin").replace("0.5", "1.5")))
    assert load_spec(_spec(tmp_path, GOOD)).dependent is None
