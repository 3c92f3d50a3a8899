"""Tests of the study records in studies/ and of their schema, loader and validator."""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import metaan
from metaan.effects import escalc
from metaan.errors import InputError
from metaan.report.selections import psilocybin_main_analysis
from metaan.studies import (
    COLUMN_NAMES,
    SCHEMA,
    Problem,
    StudyTable,
    StudyValidationError,
    find_studies_dir,
    load_studies,
    schema_markdown,
    summarise_studies,
    validate_studies,
)

REPO = Path(__file__).resolve().parents[1]
STUDIES = REPO / "studies"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "studies"


@pytest.fixture(scope="module")
def table() -> StudyTable:
    return load_studies(STUDIES)


@pytest.fixture(scope="module")
def frame(table: StudyTable) -> pd.DataFrame:
    return table.frame


def _class(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    return frame[frame["drug_class"] == name]


# ---------------------------------------------------------------------------
# The study files


def test_the_study_files_have_no_problems() -> None:
    assert validate_studies(STUDIES) == []


def test_the_three_classes_load_through_one_call(table: StudyTable) -> None:
    counts = table.frame.groupby("drug_class")["study_id"].nunique().to_dict()
    assert counts == {"cannabinoid": 4, "psilocybin": 15, "ssri": 153}
    assert len(table) == 220 + 877 + 10


def test_every_file_has_the_schema_columns_in_order() -> None:
    for path in sorted(STUDIES.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            assert next(csv.reader(handle)) == list(COLUMN_NAMES), path.name


def test_a_copy_of_the_study_files_loads_anywhere(tmp_path: Path) -> None:
    for path in STUDIES.glob("*.csv"):
        shutil.copy(path, tmp_path / path.name)
    assert len(load_studies(tmp_path)) == len(load_studies(STUDIES))


def test_numbers_are_written_as_the_shortest_text_of_their_double() -> None:
    numeric = [c.name for c in SCHEMA if c.kind in ("int", "float", "flag")]
    for path in sorted(STUDIES.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                for name in numeric:
                    text = row[name]
                    if not text:
                        continue
                    value = float(text)
                    shortest = str(int(value)) if value == math.floor(value) else repr(value)
                    assert text == shortest, (path.name, row["record_id"], name)


def test_every_record_names_its_source_and_licence(frame: pd.DataFrame) -> None:
    assert (frame["source_dataset"] != "").all()
    assert (frame["licence"] != "").all()
    licences = frame.groupby("drug_class")["licence"].unique().to_dict()
    assert list(licences["psilocybin"]) == ["ODC-BY-1.0"]
    assert list(licences["ssri"]) == ["CC-BY-4.0"]


def test_the_readme_holds_the_data_dictionary_of_the_schema() -> None:
    readme = (STUDIES / "README.md").read_text(encoding="utf-8")
    assert schema_markdown() in readme
    for column in SCHEMA:
        assert f"| `{column.name}` |" in readme


def test_the_sources_file_credits_each_licence_and_doi() -> None:
    sources = (STUDIES / "SOURCES.md").read_text(encoding="utf-8")
    for needed in (
        "ODC-BY 1.0",
        "CC BY 4.0",
        "10.1038/s44220-026-00630-8",
        "10.5281/zenodo.15714852",
        "10.1016/S0140-6736(17)32802-7",
        "10.17632/83rthbp8ys.2",
        "10.1177/07067437231209650",
        "10.1016/S2215-0366(19)30401-8",
    ):
        assert needed in sources


# ---------------------------------------------------------------------------
# Psilocybin


def test_every_row_of_the_metapsy_file_is_a_psilocybin_record(frame: pd.DataFrame) -> None:
    psilocybin = _class(frame, "psilocybin")
    assert len(psilocybin) == 220
    assert psilocybin["record_id"].is_unique
    assert sorted(set(psilocybin["source_record"])) == sorted(
        f"data.csv row {row}" for row in range(2, 222)
    )


def test_carhart_harris_2021_is_marked_as_an_active_comparison(frame: pd.DataFrame) -> None:
    trial = frame[frame["study_id"] == "Carhart-Harris 2021"]
    assert len(trial) == 16
    assert set(trial["comparator"]) == {"escitalopram"}
    assert set(trial["comparator_kind"]) == {"active_drug"}


def test_the_main_analysis_filter_selects_the_reviews_12_trials(frame: pd.DataFrame) -> None:
    main = psilocybin_main_analysis(frame)
    assert sorted(main["study_id"]) == [
        "Back 2024",
        "Davis 2021",
        "Goodwin 2022",
        "Griffiths 2016",
        "Lewis 2025",
        "Luquiens 2025",
        "Raison 2023",
        "Rieser 2025",
        "Rosenblat 2024",
        "Ross 2016",
        "Ross 2025",
        "von Rotz 2023",
    ]
    goodwin = main[main["study_id"] == "Goodwin 2022"].iloc[0]
    assert (goodwin["arm1_id"], goodwin["arm2_id"]) == ("psil 25 mg", "psil 1 mg")


def test_the_psilocybin_main_analysis_reproduces_the_published_result(
    frame: pd.DataFrame,
) -> None:
    # Published (metapsy review, R meta; metafor 3.8-1 gives the same): REML,
    # Knapp-Hartung, on the curated g and SE. Tolerance: the 4 published decimals.
    main = psilocybin_main_analysis(frame)
    result = metaan.fit(
        yi=main["smd"].to_numpy(), sei=main["smd_se"].to_numpy(), method="REML", test="knha"
    )
    assert result.k == 12
    assert result.estimate == pytest.approx(-0.9031, abs=5e-5)
    assert result.ci_lb == pytest.approx(-1.2561, abs=5e-5)
    assert result.ci_ub == pytest.approx(-0.5501, abs=5e-5)
    assert result.tau2 == pytest.approx(0.1174, abs=5e-5)
    assert result.QE == pytest.approx(23.84, abs=5e-3)


def test_goodwins_shared_arms_are_visible(frame: pd.DataFrame) -> None:
    goodwin = frame[(frame["study_id"] == "Goodwin 2022")]
    pairs = set(zip(goodwin["arm1_id"], goodwin["arm2_id"], strict=True))
    assert pairs == {
        ("psil 25 mg", "psil 1 mg"),
        ("psil 10 mg", "psil 1 mg"),
        ("psil 25 mg", "psil 10 mg"),
    }
    assert (goodwin["shared_arm"] == 1).all()


def test_imputed_endpoints_are_flagged_in_both_arms(frame: pd.DataFrame) -> None:
    imputed = frame[(frame["drug_class"] == "psilocybin") & (frame["imputed1"] == 1)]
    assert len(imputed) == 30
    assert imputed.groupby("study_id").size().to_dict() == {
        "Goodwin 2022": 24,
        "Raison 2023": 4,
        "Rosenblat 2024": 2,
    }
    assert (imputed["imputed2"] == 1).all()
    assert set(imputed["outcome_type"]) == {"endpoint"}


def test_post_crossover_records_are_marked(frame: pd.DataFrame) -> None:
    after = frame[frame["post_crossover"] == 1]
    assert set(after["study_id"]) == {"Griffiths 2016", "Grob 2011", "Ross 2016"}
    assert (frame[frame["study_id"] == "Grob 2011"]["post_crossover"] == 1).all()


# ---------------------------------------------------------------------------
# SSRI


def test_all_153_griselda_trials_are_present_with_a_response_record_each(
    frame: pd.DataFrame,
) -> None:
    ssri = _class(frame, "ssri")
    assert ssri["study_id"].nunique() == 153
    response = ssri[ssri["outcome_type"] == "response"]
    assert len(response) == 193
    assert response["study_id"].nunique() == 153
    assert set(ssri["outcome_type"]) == {
        "response",
        "remission",
        "dropout",
        "dropout_ae",
        "endpoint_or_change",
    }


def test_the_ssri_response_odds_ratio_of_112_independent_trials_matches_metafor(
    frame: pd.DataFrame,
) -> None:
    # REFERENCE_RESULTS.md: metafor 3.8-1, rma(measure="OR", ...), REML:
    # log OR 0.45178, SE 0.03350 (k = 112; Kramer1998's 33.12 responders dropped).
    ssri = _class(frame, "ssri")
    independent = ssri[
        (ssri["outcome_type"] == "response")
        & (ssri["shared_arm"] == 0)
        & (ssri["not_poolable_reason"] == "")
        & (ssri["noninteger_counts"].fillna(0) != 1)
    ]
    assert independent["study_id"].nunique() == 112
    effects = escalc(independent, "OR", ai="events1", n1i="total1", ci="events2", n2i="total2")
    result = metaan.fit(effects, method="REML")
    assert result.k == 112
    assert result.estimate == pytest.approx(0.45178, abs=5e-6)
    assert result.se == pytest.approx(0.03350, abs=5e-6)


def test_shared_placebo_arms_are_flagged_as_in_griselda(frame: pd.DataFrame) -> None:
    response = frame[(frame["drug_class"] == "ssri") & (frame["outcome_type"] == "response")]
    shared = response[response["shared_arm"] == 1]
    assert len(shared) == 69
    assert shared["study_id"].nunique() == 29
    burke = response[response["study_id"] == "Burke2002 (SCT-MD-01)"]
    assert sorted(burke["arm1_id"]) == ["citalopram", "escitalopram 10mg", "escitalopram 20mg"]
    assert set(burke["arm2_id"]) == {"placebo"}


def test_negative_griselda_means_are_flagged_as_change_scores(frame: pd.DataFrame) -> None:
    scores = frame[frame["outcome_type"] == "endpoint_or_change"]
    negative = (scores["mean1"] < 0) | (scores["mean2"] < 0)
    assert (scores.loc[negative, "change_certain"] == 1).all()
    assert (scores.loc[~negative, "change_certain"] == 0).all()
    certain = scores[scores["change_certain"] == 1]["study_id"].nunique()
    assert certain == 89


def test_kramer1998_keeps_its_fractional_responder_count(frame: pd.DataFrame) -> None:
    kramer = frame[(frame["study_id"] == "Kramer1998") & (frame["outcome_type"] == "response")]
    assert kramer["events1"].tolist() == [33.12]
    assert kramer["noninteger_counts"].tolist() == [1]


def test_imputed_responder_counts_keep_griseldas_flags(frame: pd.DataFrame) -> None:
    response = frame[(frame["drug_class"] == "ssri") & (frame["outcome_type"] == "response")]
    assert int((response["imputed1"] == 1).sum()) == 63
    assert int((response["imputed2"] == 1).sum()) == 64


def test_ssri_records_without_data_say_what_griselda_lacks(table: StudyTable) -> None:
    ssri = [item for item in table.not_poolable if item.drug_class == "ssri"]
    assert len(ssri) == 36
    assert all(item.reason.startswith("GRISELDA reports no ") for item in ssri)


# ---------------------------------------------------------------------------
# Cannabinoids


def test_every_transcribed_cannabinoid_record_is_kept(frame: pd.DataFrame) -> None:
    cannabinoid = _class(frame, "cannabinoid")
    assert len(cannabinoid) == 10
    assert set(cannabinoid["study_id"]) == {
        "Pinto 2023",
        "Black 2019 (unnamed RCT)",
        "Vachova 2014",
        "Zajicek 2003",
    }


def test_unpoolable_cannabinoid_records_are_listed_with_their_reason(table: StudyTable) -> None:
    listed = [item for item in table.not_poolable if item.drug_class == "cannabinoid"]
    assert len(listed) == 7
    assert all(item.reason and item.file.endswith("cannabinoid.csv") for item in listed)
    by_study = {item.study_id for item in listed}
    assert by_study == {"Pinto 2023", "Black 2019 (unnamed RCT)", "Vachova 2014", "Zajicek 2003"}
    poolable = table.poolable[table.poolable["drug_class"] == "cannabinoid"]
    assert sorted(poolable["scale"]) == ["ham-d-17", "madrs", "phq-9"]
    assert (poolable["subgroup"] == "").all()


def test_pinto_2023_keeps_the_published_difference_and_no_invented_n(
    frame: pd.DataFrame,
) -> None:
    madrs = frame[
        (frame["study_id"] == "Pinto 2023")
        & (frame["scale"] == "madrs")
        & (frame["subgroup"] == "")
    ].iloc[0]
    assert (madrs["md"], madrs["md_ci_lb"], madrs["md_ci_ub"]) == (-0.82, -7.81, 6.17)
    assert (madrs["mean1"], madrs["se1"], madrs["mean2"], madrs["se2"]) == (
        -15.38,
        2.82,
        -14.56,
        2.21,
    )
    assert pd.isna(madrs["n1"]) and pd.isna(madrs["n2"]) and np.isnan(madrs["sd1"])
    assert madrs["primary_outcome"] == 1


def test_the_two_cams_records_share_their_placebo_arm(frame: pd.DataFrame) -> None:
    cams = frame[frame["study_id"] == "Zajicek 2003"]
    assert set(cams["arm2_id"]) == {"placebo"}
    assert (cams["shared_arm"] == 1).all()
    assert cams["n1"].isna().all() and cams["events1"].isna().all()


# ---------------------------------------------------------------------------
# The loader


def test_the_drug_class_filter_keeps_one_class_after_validating_all() -> None:
    ssri = load_studies(STUDIES, drug_class="ssri")
    assert set(ssri.frame["drug_class"]) == {"ssri"}
    assert all(item.drug_class == "ssri" for item in ssri.not_poolable)


def test_an_unknown_drug_class_is_refused() -> None:
    with pytest.raises(InputError, match="unknown drug class 'ketamine'"):
        load_studies(STUDIES, drug_class="ketamine")  # type: ignore[arg-type]


def test_records_know_their_file_and_spreadsheet_row(frame: pd.DataFrame) -> None:
    first = frame[frame["file"].str.endswith("cannabinoid.csv")].iloc[0]
    assert first["row"] == 2


def test_the_studies_folder_is_found_from_inside_the_checkout() -> None:
    assert find_studies_dir(REPO / "src" / "metaan") == STUDIES


def test_a_folder_without_study_files_is_reported(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no CSV files"):
        load_studies(tmp_path)


def test_the_loader_refuses_broken_files_and_lists_every_problem() -> None:
    with pytest.raises(StudyValidationError) as caught:
        load_studies([FIXTURES / "zero_sample_size.csv", FIXTURES / "precomputed_effects.csv"])
    problems = caught.value.problems
    assert [(Path(p.file).name, p.row, p.column) for p in problems] == [
        ("precomputed_effects.csv", 2, "md"),
        ("precomputed_effects.csv", 3, "md_ci_lb"),
        ("precomputed_effects.csv", 3, "not_poolable_reason"),
        ("precomputed_effects.csv", 4, "se1"),
        ("precomputed_effects.csv", 4, "smd"),
        ("zero_sample_size.csv", 2, "n1"),
        ("zero_sample_size.csv", 3, "total2"),
    ]
    assert "7 problems" in str(caught.value)
    assert "zero_sample_size.csv:2:n1:" in str(caught.value)


def test_a_record_id_used_in_two_files_is_reported() -> None:
    problems = validate_studies([FIXTURES / "valid.csv", FIXTURES / "fractional_counts.csv"])
    repeated = [p for p in problems if p.column == "record_id" and "already used" in p.problem]
    assert len(repeated) == 6
    assert all(Path(p.file).name == "fractional_counts.csv" for p in repeated)
    assert all("valid.csv row" in p.problem for p in repeated)


def test_the_summary_counts_trials_records_outcomes_scales_and_time_points(
    table: StudyTable,
) -> None:
    summaries = {s.drug_class: s for s in summarise_studies(table)}
    assert list(summaries) == ["cannabinoid", "psilocybin", "ssri"]
    psilocybin = summaries["psilocybin"]
    assert (psilocybin.trials, psilocybin.records, psilocybin.not_poolable) == (15, 220, 0)
    assert psilocybin.outcomes == {"change": 38, "endpoint": 101, "remission": 39, "response": 42}
    assert psilocybin.scales["madrs"] == 117
    assert summaries["ssri"].time_points_weeks == (4.0, 5.0, 6.0, 8.0, 9.0, 10.0, 12.0)
    assert summaries["cannabinoid"].to_dict()["not_poolable"] == 7


# ---------------------------------------------------------------------------
# The validator, on deliberately broken files


def test_the_valid_fixture_has_no_problems() -> None:
    assert validate_studies(FIXTURES / "valid.csv") == []


def _located(name: str) -> list[tuple[int | None, str | None]]:
    return [(p.row, p.column) for p in validate_studies(FIXTURES / name)]


def test_a_negative_sd_is_reported_with_file_row_and_column() -> None:
    (problem,) = validate_studies(FIXTURES / "negative_sd.csv")
    assert str(problem).startswith(f"{FIXTURES / 'negative_sd.csv'}:2:sd1: ")
    assert "sd1 is -10.06; a standard deviation must be > 0" in problem.message
    assert "Burke2002 (SCT-MD-01)" in problem.message


def test_a_sample_size_or_total_below_one_is_reported() -> None:
    assert _located("zero_sample_size.csv") == [(2, "n1"), (3, "total2")]


def test_events_above_the_total_or_below_zero_are_reported() -> None:
    problems = validate_studies(FIXTURES / "events_over_total.csv")
    assert [(p.row, p.column) for p in problems] == [(3, "events1"), (5, "events2")]
    assert "events cannot exceed the total" in problems[0].problem


def test_cells_of_the_wrong_type_are_reported_one_by_one() -> None:
    assert _located("wrong_types.csv") == [
        (2, "n1"),
        (4, "mean1"),
        (5, "time_weeks"),
        (6, "shared_arm"),
        (7, "year"),
    ]


def test_values_outside_the_allowed_codes_are_reported_with_the_allowed_ones() -> None:
    problems = validate_studies(FIXTURES / "disallowed_values.csv")
    assert [(p.row, p.column) for p in problems] == [
        (2, "drug_class"),
        (3, "comparator_kind"),
        (4, "outcome_type"),
        (5, "direction"),
        (6, "scale"),
    ]
    assert problems[0].fix == "use one of: cannabinoid, psilocybin, ssri"


def test_a_missing_required_column_is_reported_on_the_header() -> None:
    assert _located("missing_column.csv") == [(1, "outcome_type")]


def test_an_unknown_column_is_reported_on_the_header() -> None:
    assert _located("unknown_column.csv") == [(1, "sd_arm1")]


def test_repeated_record_ids_and_repeated_records_are_reported() -> None:
    problems = validate_studies(FIXTURES / "duplicate_keys.csv")
    assert [(p.row, p.column) for p in problems] == [(3, "record_id"), (8, "record_id")]
    assert "already used" in problems[0].problem
    assert "repeats" in problems[1].problem


def test_a_shared_arm_with_different_numbers_or_doses_is_reported() -> None:
    problems = validate_studies(FIXTURES / "inconsistent_arms.csv")
    assert [(p.row, p.column) for p in problems] == [(4, "mean2"), (5, "arm1_id"), (7, "arm2_id")]
    assert "arm 'placebo' has mean -7.7 here but -7.6" in problems[0].problem
    assert "both 'placebo'" in problems[2].problem


def test_a_trial_with_two_publication_years_is_reported() -> None:
    assert _located("inconsistent_trial.csv") == [(5, "year")]


def test_a_wrong_shared_arm_flag_is_reported() -> None:
    assert _located("wrong_shared_arm.csv") == [(2, "shared_arm")]


def test_a_record_without_data_for_any_effect_needs_a_reason() -> None:
    (problem,) = validate_studies(FIXTURES / "no_effect_data.csv")
    assert (problem.row, problem.column) == (4, "not_poolable_reason")
    assert "no effect can be computed" in problem.problem


def test_a_fractional_count_must_be_flagged() -> None:
    (problem,) = validate_studies(FIXTURES / "fractional_counts.csv")
    assert (problem.row, problem.column) == (3, "events1")
    assert "noninteger_counts" in (problem.fix or "")


def test_data_that_contradict_the_outcome_type_are_reported() -> None:
    assert _located("outcome_mismatch.csv") == [
        (2, "events1"),
        (3, "direction"),
        (4, "change_certain"),
        (6, "mean1"),
    ]


def test_precomputed_effects_outside_their_interval_or_half_given_are_reported() -> None:
    assert _located("precomputed_effects.csv") == [
        (2, "md"),
        (3, "md_ci_lb"),
        (3, "not_poolable_reason"),
        (4, "se1"),
        (4, "smd"),
    ]


def test_ragged_blank_and_padded_rows_are_reported() -> None:
    assert _located("malformed_rows.csv") == [(3, None), (5, None), (7, "n1")]


def test_a_file_without_records_is_reported() -> None:
    (problem,) = validate_studies(FIXTURES / "empty.csv")
    assert str(problem).endswith(":-:-: the file has no records; add rows or remove the file")


def test_a_missing_file_is_reported_not_raised(tmp_path: Path) -> None:
    (problem,) = validate_studies(tmp_path / "nowhere.csv")
    assert problem.problem == "no such file"


def test_every_broken_fixture_fails_and_all_problems_come_in_one_run() -> None:
    broken = sorted(p for p in FIXTURES.glob("*.csv") if p.name != "valid.csv")
    problems = validate_studies(broken)
    assert {Path(p.file).name for p in problems} == {p.name for p in broken}


def test_a_problem_converts_to_an_input_error_with_the_same_place() -> None:
    problem = Problem("f.csv", 3, "sd1", "sd1 is -1", "fix it", "Smith 2004")
    error = problem.to_error()
    assert (error.file, error.row, error.column, error.study) == ("f.csv", 3, "sd1", "Smith 2004")
    assert str(problem) == "f.csv:3:sd1: Smith 2004: sd1 is -1; fix it"


def test_griffiths_2016_doses_are_read_per_70_kg_beside_the_source_text(
    frame: pd.DataFrame,
) -> None:
    griffiths = frame[frame["study_id"] == "Griffiths 2016"]
    assert set(griffiths["intervention_dose"]) == {"22 mg/70 kg"}
    assert set(griffiths["intervention_dose_source"]) == {"22 mg/kg"}
    assert set(griffiths["comparator_dose"]) == {"1 mg/70 kg"}
    assert set(griffiths["comparator_dose_source"]) == {"1 mg/kg"}
    assert all("doi:10.1177/0269881116675513" in c for c in griffiths["correction"])


def test_luquiens_2025_control_arm_is_labelled_with_its_1_mg_dose(frame: pd.DataFrame) -> None:
    luquiens = frame[frame["study_id"] == "Luquiens 2025"]
    assert set(luquiens["arm2_label"]) == {"1 mg group"}
    assert set(luquiens["comparator_dose"]) == {"1 mg"}
    assert all("'10 mg group'" in c and "10.1111/add.70152" in c for c in luquiens["correction"])
    others = frame[~frame["study_id"].isin(["Griffiths 2016", "Luquiens 2025"])]
    assert (others["correction"].fillna("") == "").all()


def test_black_2019_is_cited_as_studies_sources_cites_it(frame: pd.DataFrame) -> None:
    black = frame[frame["study_id"] == "Black 2019 (unnamed RCT)"]
    (reference,) = set(black["reference"])
    assert "Black N, Stockings E, Campbell G, et al." in reference
    assert "Lancet Psychiatry 2019;6(12):995–1010" in reference
    assert "Black N, Stockings E, Campbell G, et al." in (STUDIES / "SOURCES.md").read_text(
        encoding="utf-8"
    )


def test_the_cannabinoid_trials_awaiting_data_keep_their_provenance() -> None:
    awaiting = pd.read_csv(STUDIES / "awaiting" / "cannabinoid.csv")
    assert len(awaiting) == 12 and awaiting["doi"].notna().all()
    assert (
        awaiting["source_record"].str.startswith("cannabinoid_trials_awaiting_data.csv row").all()
    )
    assert awaiting["licence"].notna().all() and awaiting["why_not_pooled"].notna().all()
    # No outcome numbers: citations and design only.
    assert not {"mean1", "sd1", "n1", "smd", "md"} & set(awaiting.columns)
