"""Build studies/*.csv from the source data sets in ../shared/data.

Usage::

    python scripts/build_studies.py [--source DIR] [--out DIR] [--check]

The sources (read their ``*.SOURCE.md`` first):

* ``psilocybin_depression_metapsy_full.csv``: the metapsy living review's
  15 psilocybin RCTs (ODC-BY 1.0);
* ``ssri_vs_placebo_griselda_cipriani2018_pairs.csv`` and ``..._arms.csv``:
  the 153 SSRI-vs-placebo RCTs of GRISELDA (CC BY 4.0);
* ``cannabinoid_depression_transcribed.csv``: 10 records transcribed by hand
  from published tables.

Values are copied, never rounded or derived: each number is parsed as a double
and written back as the shortest text that reads back as the same double
(``6.72000000000000`` and ``6.72`` both become ``6.72``; whole numbers lose
their ``.0``). Cells the source leaves blank stay blank. Labels are mapped to
the schema's codes (``msd`` -> ``endpoint``, ``HAMD17`` -> ``ham-d-17``,
``Some concerns`` -> ``some_concerns``); the mappings are below. Every
output file is sorted, so a rerun on the same inputs gives identical bytes.
The script refuses to run if an input's SHA-256 differs from the one the
committed files were built from; review the change, then update the hash.

``--check`` rebuilds in memory and exits with status 1 if any file in
``--out`` differs from what the sources give.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path

from metaan.report.selections import psilocybin_main_analysis
from metaan.studies import COLUMN_NAMES, schema_markdown, validate_studies

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "data"

PSILOCYBIN = "psilocybin_depression_metapsy_full.csv"
PSILOCYBIN_MAIN = "psilocybin_depression_metapsy_main.csv"
SSRI_PAIRS = "ssri_vs_placebo_griselda_cipriani2018_pairs.csv"
SSRI_ARMS = "ssri_vs_placebo_griselda_cipriani2018_arms.csv"
CANNABINOID = "cannabinoid_depression_transcribed.csv"
AWAITING = "cannabinoid_trials_awaiting_data.csv"

# The inputs the committed studies/ files were built from.
SHA256 = {
    PSILOCYBIN: "c6c366694c1d572ada0f38d61d0a6a8b5c0d75d1341c825f32e0beb954652129",
    PSILOCYBIN_MAIN: "b5bf9d9c96af4e069534bce88f5ebd94b57d7d52baaee28ab703dacb989eeeb8",
    SSRI_PAIRS: "4fb0aea4d6db475c1e32e4e1fe7e05129dd6c041895d8f77e5277ae005acf023",
    SSRI_ARMS: "1fb5db983eb347a54e5e246f9f40941048dae75277691367ca38adefd265d55f",
    CANNABINOID: "c49097ddc29508aed5ec6988468700acee6cb19db5e5812515075cfe07780f3b",
    AWAITING: "9941d5b8276e94485072a03e4b29e9d3b65272d27dc69d1c42b88de1fe478f34",
}

Row = dict[str, str]


class BuildError(Exception):
    """The sources do not look as the conversion expects."""


def read_csv(path: Path) -> list[Row]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def number(text: str) -> str:
    """The shortest text that reads back as the same double, or '' for a blank cell."""
    text = text.strip()
    if not text:
        return ""
    value = float(text)
    if not math.isfinite(value):
        raise BuildError(f"not a finite number: {text!r}")
    if value == math.floor(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def require(condition: bool, message: str) -> None:
    if not condition:
        raise BuildError(message)


def strip_doi(text: str) -> str:
    parts = [part.strip() for part in text.split(";") if part.strip()]
    return "; ".join(re.sub(r"^https?://(dx\.)?doi\.org/", "", part) for part in parts)


# ---------------------------------------------------------------------------
# Psilocybin: metapsy

METAPSY_DATASET = (
    "metapsy living review of psilocybin RCTs for depression: "
    "metapsy-project/data-depression-psiloctr data.csv, commit "
    "71a102a1b85a58a79ec15632b8b8f6e966eb6a52"
)
METAPSY_DOI = "10.5281/zenodo.15714852"
METAPSY_URL = "https://github.com/metapsy-project/data-depression-psiloctr"

OUTCOME_TYPES = {
    "msd": "endpoint",
    "imsd": "endpoint",
    "change": "change",
    "response": "response",
    "remission": "remission",
}
COMPARATOR_KINDS = {
    "pcb": "placebo",
    "ncn": "active_placebo",
    "wl": "waitlist",
    "esc": "active_drug",
    "mbsr": "psychological",
    "psil": "low_dose",
    "psil-d": "low_dose",
}
ROB = {"Low": "low", "Some concerns": "some_concerns", "High": "high", "": ""}


# Documented errors in the source's text, corrected here with the trial report that
# shows the correction. The source's own words stay in the record beside the reading
# (``*_source`` columns) and the ``correction`` column cites the trial report.
GRIFFITHS_REPORT = (
    "Griffiths RR, Johnson MW, Carducci MA, et al. J Psychopharmacol 2016;30(12):1181-1197, "
    "doi:10.1177/0269881116675513, abstract: the high dose was 22 or 30 mg/70 kg and the "
    "very low (placebo-like) dose 1 or 3 mg/70 kg"
)
LUQUIENS_REPORT = (
    "Luquiens A, Belahda D, Graux C, et al. Addiction 2025, doi:10.1111/add.70152, abstract: "
    "two oral sessions of 25 mg (n = 20) or 1 mg (n = 10) of psilocybin"
)
#: (study, column, source text) -> (corrected text, why, citation).
CORRECTIONS: dict[tuple[str, str, str], tuple[str, str, str]] = {
    ("Griffiths 2016", "intervention_dose", "22 mg/kg"): (
        "22 mg/70 kg",
        "the unit is mg per 70 kg of body weight, not mg/kg (22 mg/kg would be about 1.5 g)",
        GRIFFITHS_REPORT,
    ),
    ("Griffiths 2016", "comparator_dose", "1 mg/kg"): (
        "1 mg/70 kg",
        "the unit is mg per 70 kg of body weight, not mg/kg",
        GRIFFITHS_REPORT,
    ),
    ("Luquiens 2025", "arm2_label", "10 mg group"): (
        "1 mg group",
        "the control arm received 1 mg (its dose in the same record), not 10 mg",
        LUQUIENS_REPORT,
    ),
}
#: The columns whose source text a correction keeps beside it.
SOURCE_TEXT_COLUMNS = {
    "intervention_dose": "intervention_dose_source",
    "comparator_dose": "comparator_dose_source",
}


def apply_corrections(record: Row, used: set[tuple[str, str, str]]) -> None:
    """Correct the documented errors in one record, keeping the source's text beside them."""
    notes: list[str] = []
    citations: list[str] = []
    for column in ("intervention_dose", "comparator_dose", "arm1_label", "arm2_label"):
        key = (record["study_id"], column, record[column])
        if key not in CORRECTIONS:
            continue
        corrected, why, citation = CORRECTIONS[key]
        used.add(key)
        if column in SOURCE_TEXT_COLUMNS:
            record[SOURCE_TEXT_COLUMNS[column]] = record[column]
        notes.append(f"{column}: the source reads {record[column]!r}, read as {corrected!r}; {why}")
        record[column] = corrected
        citations.append(citation)
    if notes:
        record["correction"] = "; ".join(notes) + f" ({'; '.join(dict.fromkeys(citations))})."


def dose_number(dose: str) -> float:
    found = re.match(r"([0-9.]+)", dose)
    if found is None:
        raise BuildError(f"no dose number in {dose!r}")
    return float(found.group(1))


def psilocybin(source: Path) -> list[Row]:
    rows = read_csv(source / PSILOCYBIN)
    require(len(rows) == 220, f"{PSILOCYBIN}: expected 220 rows, found {len(rows)}")
    out: list[Row] = []
    corrected: set[tuple[str, str, str]] = set()
    for position, src in enumerate(rows, start=2):
        kind = src["outcome_type"]
        require(kind in OUTCOME_TYPES, f"row {position}: unknown outcome_type {kind!r}")
        for k in ("1", "2"):
            # metapsy's computed event columns must equal the reported ones.
            for calc, given in (("calc_event_arm", "event_arm"), ("calc_totaln_arm", "totaln_arm")):
                require(src[calc + k] == src[given + k], f"row {position}: {calc}{k} differs")
        require(src["instrument_symptom"] == "depression", f"row {position}: not depression")
        arm2_kind = COMPARATOR_KINDS[src["condition_arm2"]]
        if arm2_kind == "low_dose":
            require(
                dose_number(src["dose_arm2"]) < dose_number(src["dose_arm1"]),
                f"row {position}: comparator dose is not lower",
            )
        record = dict.fromkeys(COLUMN_NAMES, "")
        record.update(
            record_id=src["row_id"],
            study_id=src["study"],
            trial_registry_id=src["registration_number"],
            doi=strip_doi(src["doi"]),
            reference=src["full_ref"],
            year=number(src["year"]),
            drug_class="psilocybin",
            arm1_id=" ".join(filter(None, (src["condition_arm1"], src["multi_arm1"]))),
            arm1_label=src["name_arm1"],
            intervention=src["drug_arm1"],
            intervention_dose=src["dose_arm1"],
            arm2_id=" ".join(filter(None, (src["condition_arm2"], src["multi_arm2"]))),
            arm2_label=src["name_arm2"],
            comparator=src["drug_arm2"],
            comparator_dose=src["dose_arm2"],
            comparator_kind=arm2_kind,
            diagnosis=src["diagnosis"],
            population=src["target_group"],
            design=src["design"],
            blinding=src["blinding"],
            post_crossover=src["post_crossover"],
            n_dosing_sessions=number(src["n_dosing_sessions"]),
            mean_age=number(src["mean_age"]),
            percent_women=number(src["percent_women"]),
            outcome_type=OUTCOME_TYPES[kind],
            scale=src["instrument"],
            rater=src["rating"],
            direction="higher_is_better"
            if kind in ("response", "remission")
            else "lower_is_better",
            time_weeks=number(src["time_weeks"]),
            time_days=number(src["time_days"]),
            time_label=src["study_time_point"],
            primary_outcome=src["primary_instrument"],
            primary_timepoint=src["primary_timepoint"],
            smd=number(src["es_g"]),
            smd_se=number(src["es_g_se"]),
            log_rr=number(src["es_log_rr"]),
            log_rr_se=number(src["es_log_rr_se"]),
            precomputed_by="metapsy curators (metapsyTools): Hedges' g; log RR for events",
            rob_d1=ROB[src["d1"]],
            rob_d2=ROB[src["d2"]],
            rob_d3=ROB[src["d3"]],
            rob_d4=ROB[src["d4"]],
            rob_d5=ROB[src["d5"]],
            rob_overall=ROB[src["rob"]],
            source_dataset=METAPSY_DATASET,
            source_doi=METAPSY_DOI,
            source_record=f"data.csv row {position}",
            source_url=METAPSY_URL,
            licence="ODC-BY-1.0",
        )
        metapsy_arms(src, kind, record)
        apply_corrections(record, corrected)
        if kind == "imsd":
            record["note"] = (
                "Endpoint means and SDs imputed by the metapsy curators (metapsy outcome type "
                "imsd)."
            )
        out.append(record)
    unused = set(CORRECTIONS) - corrected
    require(not unused, f"corrections that match no record (has the source changed?): {unused}")
    mark_shared_arms(out)
    return out


def metapsy_arms(src: Row, kind: str, record: Row) -> None:
    """The per-arm numbers of a metapsy row: endpoint or change data, or events."""
    for k in ("1", "2"):
        if kind in ("msd", "imsd"):
            n, mean, sd = src["n_arm" + k], src["mean_arm" + k], src["sd_arm" + k]
        elif kind == "change":
            n = src["n_change_arm" + k]
            mean, sd = src["mean_change_arm" + k], src["sd_change_arm" + k]
        else:
            n = mean = sd = ""
            record["events" + k] = number(src["event_arm" + k])
            record["total" + k] = number(src["totaln_arm" + k])
        record["n" + k], record["mean" + k], record["sd" + k] = (
            number(n),
            number(mean),
            number(sd),
        )
        record["baseline_mean" + k] = number(src["baseline_m_arm" + k])
        record["baseline_sd" + k] = number(src["baseline_sd_arm" + k])
        record["baseline_n" + k] = number(src["baseline_n_arm" + k])
        record["imputed" + k] = "1" if kind == "imsd" else "0"


def check_main_analysis(source: Path, records: list[Row]) -> None:
    """The documented filter must select exactly the rows of the review's main file."""
    import pandas as pd

    frame = pd.DataFrame(records)
    for name in ("primary_outcome", "primary_timepoint", "post_crossover"):
        frame[name] = pd.to_numeric(frame[name]).astype("Int64")
    selected = set(psilocybin_main_analysis(frame)["record_id"])
    expected = {row["row_id"] for row in read_csv(source / PSILOCYBIN_MAIN)}
    require(selected == expected, f"main-analysis filter selects {sorted(selected ^ expected)}")


# ---------------------------------------------------------------------------
# SSRI: GRISELDA

GRISELDA_DATASET = (
    "GRISELDA open data (Cipriani et al. 2018), Mendeley Data v2, "
    "'Cipriani et al_GRISELDA_Lancet 2018_Open data.xlsx'"
)
GRISELDA_DOI = "10.17632/83rthbp8ys.2"
GRISELDA_URL = "https://doi.org/10.17632/83rthbp8ys.2"
GRISELDA_POPULATION = "adults with major depressive disorder, acute treatment (GRISELDA)"
SCALES = {
    "HAMD17": "ham-d-17",
    "HAMD21": "ham-d-21",
    "HAMD24": "ham-d-24",
    "HAMD29": "ham-d-29",
    "HAMD31": "ham-d-31",
    "HAMDunspecified": "ham-d",
    "MADRS": "madrs",
    "IDS-IVR-30": "ids-ivr-30",
    "": "",
}
ARMS = (("1", "ssri"), ("2", "pbo"))
ARM_NAMES = {"ssri": "SSRI", "pbo": "placebo"}


def griselda_outcome_rows(src: Row, definitions: dict[str, tuple[str, str]]) -> list[Row]:
    """The records of one SSRI-vs-placebo pair: one per outcome that has any data."""

    def pair(field: str) -> tuple[str, str]:
        return src[f"{field}_ssri"], src[f"{field}_pbo"]

    def same_or_both(values: tuple[str, str], label: str) -> str:
        if values[0] == values[1]:
            return values[0]
        return f"{label} arm: {values[0] or 'blank'}; placebo arm: {values[1] or 'blank'}"

    label = src["drug_label_ssri"]
    outcomes: list[Row] = []
    specs: list[tuple[str, str, str]] = [
        ("response", "responders", "responders_imputed"),
        ("remission", "remitters", "remitters_imputed"),
        ("dropout", "dropouts_total", ""),
        ("dropout_ae", "dropouts_adverse_events", ""),
    ]
    for outcome, count, imputed in specs:
        counts = pair(count)
        if outcome != "response" and not any(counts):
            continue  # nothing reported for this outcome (response rows are always kept)
        record: Row = {"outcome_type": outcome}
        missing: list[tuple[str, str]] = []
        for k, arm in ARMS:
            record["events" + k] = number(src[f"{count}_{arm}"])
            record["total" + k] = number(src[f"n_randomised_{arm}"])
            if imputed:
                record["imputed" + k] = src[f"{imputed}_{arm}"]
            if outcome == "response":
                record["n" + k] = number(src[f"n_response_{arm}"])
            for name, field in ((count, f"{count}_{arm}"), ("n_randomised", f"n_randomised_{arm}")):
                if not src[field]:
                    missing.append((name, arm))
        record["direction"] = "higher_is_better" if imputed else "lower_is_better"
        record["primary_outcome"] = "1" if outcome == "response" else "0"
        if outcome in ("response", "remission"):
            record["outcome_definition"] = same_or_both(definitions[outcome], label)
        elif outcome == "dropout":
            record["outcome_definition"] = "dropouts for any reason"
        else:
            record["outcome_definition"] = "dropouts due to adverse events"
        if missing:
            record["not_poolable_reason"] = missing_reason(missing)
        values = [float(v) for v in (record["events1"], record["events2"]) if v]
        if any(v != math.floor(v) for v in values):
            record["noninteger_counts"] = "1"
        outcomes.append(record)
    efficacy = ("n_efficacy", "endpoint_mean", "endpoint_sd", "baseline_mean")
    if any(any(pair(field)) for field in efficacy):
        record = {
            "outcome_type": "endpoint_or_change",
            "direction": "lower_is_better",
            "primary_outcome": "0",
            "outcome_definition": (
                "endpoint score, or change from baseline where no endpoint was reported "
                "(GRISELDA 'Endpoint (if not reported, Change)')"
            ),
        }
        scales = pair("scale")
        if scales[0] == scales[1]:
            record["scale"] = SCALES[scales[0]]
        else:
            record["note_scale"] = (
                f"GRISELDA gives scale {scales[0] or 'blank'} for the {label} arm and "
                f"{scales[1] or 'blank'} for the placebo arm; scale left blank."
            )
        missing = []
        means = []
        for k, arm in ARMS:
            record["n" + k] = number(src[f"n_efficacy_{arm}"])
            record["mean" + k] = number(src[f"endpoint_mean_{arm}"])
            record["sd" + k] = number(src[f"endpoint_sd_{arm}"])
            record["baseline_mean" + k] = number(src[f"baseline_mean_{arm}"])
            for field in ("n_efficacy", "endpoint_mean", "endpoint_sd"):
                if not src[f"{field}_{arm}"]:
                    missing.append((field, arm))
            if record["mean" + k]:
                means.append(float(record["mean" + k]))
        record["change_certain"] = "1" if any(m < 0 for m in means) else "0"
        if missing:
            record["not_poolable_reason"] = missing_reason(missing)
        outcomes.append(record)
    return outcomes


def missing_reason(missing: list[tuple[str, str]]) -> str:
    """'GRISELDA reports no responders (SSRI and placebo arms)' from (field, arm) pairs."""
    arms: dict[str, list[str]] = {}
    for field, arm in missing:
        arms.setdefault(field, []).append(ARM_NAMES[arm])
    parts = [
        f"{field} ({' and '.join(names)} arm{'s' if len(names) > 1 else ''})"
        for field, names in arms.items()
    ]
    return "GRISELDA reports no " + "; no ".join(parts)


def ssri(source: Path) -> list[Row]:
    pairs = read_csv(source / SSRI_PAIRS)
    arms = read_csv(source / SSRI_ARMS)
    require(len(pairs) == 193, f"{SSRI_PAIRS}: expected 193 rows, found {len(pairs)}")
    require(len(arms) == 346, f"{SSRI_ARMS}: expected 346 rows, found {len(arms)}")
    by_arm = {(arm["study_id"], arm["drug_label"]): arm for arm in arms}
    require(len(by_arm) == len(arms), "arm labels are not unique within trials")
    ssri_arms: dict[str, int] = {}
    for src in pairs:
        ssri_arms[src["study_id"]] = ssri_arms.get(src["study_id"], 0) + 1
    out: list[Row] = []
    for position, src in enumerate(pairs, start=2):
        study = src["study_id"]
        treated = by_arm[(study, src["drug_label_ssri"])]
        placebo = by_arm[(study, src["drug_label_pbo"])]
        # The pairs file is a reshaping of the arms file: check the two agree.
        for source_arm, suffix in ((treated, "ssri"), (placebo, "pbo")):
            for name in ("n_randomised", "responders", "remitters", "endpoint_mean", "scale"):
                require(source_arm[name] == src[f"{name}_{suffix}"], f"{study}: {name} differs")
        require(
            src["shared_placebo_arm"] == ("1" if ssri_arms[study] > 1 else "0"),
            f"{study}: shared_placebo_arm does not match the number of SSRI arms",
        )
        drug, label = src["ssri"], src["drug_label_ssri"]
        require(label == drug or label.startswith(drug + " "), f"{study}: label {label!r}")
        definitions = {
            "response": (treated["response_definition"], placebo["response_definition"]),
            "remission": (treated["remission_definition"], placebo["remission_definition"]),
        }
        weeks = (src["weeks_ssri"], src["weeks_pbo"])
        registry = "; ".join(re.findall(r"NCT\d{8}", study))
        for fields in griselda_outcome_rows(src, definitions):
            record = dict.fromkeys(COLUMN_NAMES, "")
            notes = []
            record.update(
                record_id=f"{study} | {label} vs placebo | {fields['outcome_type']}",
                study_id=study,
                trial_registry_id=registry,
                year=number(src["year"]),
                published=src["published"],
                drug_class="ssri",
                arm1_id=label,
                intervention=drug,
                intervention_dose=label[len(drug) :].strip(),
                arm2_id=src["drug_label_pbo"],
                comparator="placebo",
                comparator_kind="placebo",
                diagnosis="mdd",
                population=GRISELDA_POPULATION,
                time_weeks=number(weeks[0] or weeks[1]),
                primary_timepoint="1",
                source_dataset=GRISELDA_DATASET,
                source_doi=GRISELDA_DOI,
                source_record=f"{SSRI_PAIRS} row {position}",
                source_url=GRISELDA_URL,
                licence="CC-BY-4.0",
            )
            for k, arm in ARMS:
                record["n_randomised" + k] = number(src[f"n_randomised_{arm}"])
            if weeks[0] != weeks[1]:
                notes.append(
                    f"GRISELDA gives the duration ({weeks[0] or weeks[1]} weeks) for one arm only."
                )
            scale_note = fields.pop("note_scale", "")
            if scale_note:
                notes.append(scale_note)
            if fields.get("noninteger_counts"):
                notes.append("A count is not a whole number in the source; kept as published.")
            record.update(fields)
            record["note"] = " ".join(notes)
            out.append(record)
    require(len({r["study_id"] for r in out}) == 153, "expected 153 SSRI trials")
    mark_shared_arms(out)
    for record in out:
        if record["outcome_type"] == "response":
            source_row = int(record["source_record"].rsplit(" ", 1)[1])
            shared = pairs[source_row - 2]["shared_placebo_arm"]
            require(record["shared_arm"] == shared, f"{record['record_id']}: shared arm")
    return out


# ---------------------------------------------------------------------------
# Cannabinoids: hand transcription

TRANSCRIBED_DATASET = (
    "cannabinoid_depression_transcribed.csv: hand transcription of published tables"
)
TRANSCRIBED_LICENCE = "facts from the cited publications; cite the sources"
PINTO_REFERENCE = (
    "Pinto JV, Crippa JAS, … Kapczinski F, Kauer-Sant'Anna M. Cannabidiol as an Adjunctive "
    "Treatment for Acute Bipolar Depression: A Pilot Study. Can J Psychiatry 2023;69(4):242–251."
)
VACHOVA_REFERENCE = (
    "Vachová M, Novotná A, Mares J, et al. A Multicentre, Double-Blind, Randomised, "
    "Parallel-Group, Placebo-Controlled Study of Effect of Long-Term Sativex® Treatment on "
    "Cognition and Mood of Patients with Spasticity Due to Multiple Sclerosis. "
    "J Mult Scler 2014;1(2)."
)
ZAJICEK_REFERENCE = (
    "Zajicek J, Fox P, Sanders H, et al. Cannabinoids for treatment of spasticity and other "
    "symptoms related to multiple sclerosis (CAMS study): multicentre randomised "
    "placebo-controlled trial. Lancet 2003;362(9395):1517–1526."
)
BLACK_REFERENCE = (
    "An RCT not named in its source, reported in Black N, Stockings E, Campbell G, et al. "
    "Cannabinoids for the treatment of mental disorders and symptoms of mental disorders: a "
    "systematic review and meta-analysis. Lancet Psychiatry 2019;6(12):995–1010 (Table 5)."
)
PINTO_SUBGROUP = "patients who were not early responders at week 2 (post-randomisation subgroup)"

# What the CSV cells do not say, taken from its SOURCE.md (quoted there): per source row,
# the trial, its arms and design. Keys are the CSV's row numbers (header = row 1).
PINTO = {
    "study_id": "Pinto 2023",
    "trial_registry_id": "NCT03310593",
    "doi": "10.1177/07067437231209650",
    "reference": PINTO_REFERENCE,
    "year": "2023",
    "arm1_id": "cbd",
    "arm2_id": "placebo",
    "comparator_kind": "placebo",
    "diagnosis": "bipolar-depression",
    "blinding": "double-blind",  # abstract: "A randomized, double-blind, placebo-controlled"
    "time_weeks": "8",
    "source_doi": "10.1177/07067437231209650",
}
PINTO_MAIN = {**PINTO, "primary_timepoint": "1", "precomputed_by": "Pinto 2023, Table 2"}
PINTO_EXPLORATORY = {
    **PINTO,
    "subgroup": PINTO_SUBGROUP,
    "primary_outcome": "0",
    "primary_timepoint": "0",
    "precomputed_by": "Pinto 2023, Table 3",
    "not_poolable_reason": (
        "exploratory analysis of a post-randomisation subgroup (not early responders at "
        "week 2), week 2 to week 8: not a randomised comparison; do not pool with the "
        "week-8 records (Pinto 2023, Table 3)"
    ),
}
ZAJICEK = {
    "study_id": "Zajicek 2003",
    "doi": "10.1016/S0140-6736(03)14738-1",
    "reference": ZAJICEK_REFERENCE,
    "year": "2003",
    "arm2_id": "placebo",
    "comparator_kind": "placebo",
    "diagnosis": "ms",
    "design": "parallel",  # the CSV: "parallel, 3-arm (placebo arm shared ...)"
    "blinding": "double-blind",  # "Study Design Double-blind randomised placebo controlled"
    "time_weeks": "15",
    "primary_outcome": "0",
    "primary_timepoint": "1",
    "not_poolable_reason": (
        "percentages of participants improved, without denominators: counts cannot be "
        "formed (taken from a secondary summary of the Lancet paper)"
    ),
}
CANNABINOID_ROWS: dict[int, dict[str, str]] = {
    2: {**PINTO_MAIN, "scale": "madrs", "primary_outcome": "1"},
    3: {**PINTO_MAIN, "scale": "ham-d-17", "primary_outcome": "0"},
    4: {**PINTO_MAIN, "scale": "phq-9", "primary_outcome": "0"},
    5: {**PINTO_EXPLORATORY, "scale": "madrs"},
    6: {**PINTO_EXPLORATORY, "scale": "ham-d-17"},
    7: {**PINTO_EXPLORATORY, "scale": "phq-9"},
    8: {
        "study_id": "Black 2019 (unnamed RCT)",
        # The review that reports the trial, cited as studies/SOURCES.md cites it; the
        # trial itself is not named there.
        "reference": BLACK_REFERENCE,
        "arm1_id": "cannabis",
        "arm2_id": "placebo",
        "comparator_kind": "placebo",
        "source_doi": "10.1016/S2215-0366(19)30401-8",
        "precomputed_by": "Black 2019, Table 5 (review-level SMD)",
        "not_poolable_reason": (
            "review-level SMD from Black 2019 Table 5 for one unnamed RCT: the trial, "
            "product, scale, arms and sign convention cannot be checked (Appendix F, "
            "with the forest plots, was not available)"
        ),
    },
    9: {
        "study_id": "Vachova 2014",
        "trial_registry_id": "NCT01964547",
        "doi": "10.4172/jmso.1000122",
        "reference": VACHOVA_REFERENCE,
        "year": "2014",
        "arm1_id": "nabiximols",
        "arm2_id": "placebo",
        "comparator_kind": "placebo",
        "diagnosis": "ms",
        "blinding": "double-blind",  # title: "A Multicentre, Double-Blind, Randomised, ..."
        "scale": "bdi-ii",
        "time_weeks": "48",  # "12 months / 48 weeks"
        "primary_outcome": "0",  # BDI-II was secondary; the primary was PASAT
        "primary_timepoint": "1",
        "not_poolable_reason": (
            "no SD, SE or CI for the mean changes in the sources consulted (ECTRIMS 2013 "
            "abstract, journal abstract, registry participant flow)"
        ),
    },
    10: {**ZAJICEK, "arm1_id": "cannabis extract"},
    11: {**ZAJICEK, "arm1_id": "thc"},
}
OUTCOMES_TRANSCRIBED = {
    "change": "change",
    "percent_improved": "percent_improved",
    "smd": "change",  # Black 2019: "Change in depressive symptoms", an SMD only
}
DIFFERENCE = re.compile(
    r"[Dd]ifference(?: \(CBD - placebo\))? (-?[0-9.]+) \[(-?[0-9.]+) to (-?[0-9.]+)\]"
)
BASELINE = re.compile(
    r"[Bb]aseline mean \(SD\): CBD ([0-9.]+) \(([0-9.]+)\), placebo ([0-9.]+) \(([0-9.]+)\)"
)
BASELINE_SAME = re.compile(
    r"[Bb]aseline printed identically for both arms, ([0-9.]+) \(([0-9.]+)\)"
)


def cannabinoid(source: Path) -> list[Row]:
    rows = read_csv(source / CANNABINOID)
    require(len(rows) == 10, f"{CANNABINOID}: expected 10 rows, found {len(rows)}")
    out: list[Row] = []
    for position, src in enumerate(rows, start=2):
        extra = CANNABINOID_ROWS[position]
        require(src["study"].startswith(extra["study_id"].split(" ")[0]), f"row {position}")
        record = dict.fromkeys(COLUMN_NAMES, "")
        doi_or_id = [part.strip() for part in src["doi_or_pmcid"].split(";")]
        require(doi_or_id[0].startswith("10."), f"row {position}: no DOI first")
        record.update(
            drug_class="cannabinoid",
            intervention=src["product"],
            intervention_dose=src["dose"],
            comparator=src["comparator"],
            population=src["population"],
            design=src["design"] if src["design"] in ("parallel", "crossover") else "",
            outcome_type=OUTCOMES_TRANSCRIBED[src["outcome_type"]],
            time_label=src["timepoint"],
            n_randomised1=number(src["n_arm1"]),  # the SOURCE.md: numbers randomised
            n_randomised2=number(src["n_arm2"]),
            se1=number(src["se_arm1"]),
            se2=number(src["se_arm2"]),
            smd=number(src["smd"]),
            smd_ci_lb=number(src["smd_ci_lb"]),
            smd_ci_ub=number(src["smd_ci_ub"]),
            source_dataset=TRANSCRIBED_DATASET,
            source_record=f"{CANNABINOID} row {position}: {src['study']}",
            source_url=src["source_url"],
            licence=TRANSCRIBED_LICENCE,
            note=src["direction_note"],
        )
        require(not src["sd_arm1"] and not src["sd_arm2"], f"row {position}: SDs are given")
        require(not src["event_arm1"] and not src["event_arm2"], f"row {position}: events given")
        if src["outcome_type"] == "percent_improved":
            record["percent1"], record["percent2"] = (
                number(src["mean_arm1"]),
                number(src["mean_arm2"]),
            )
            record["outcome_definition"] = src["scale"]
            record["direction"] = "higher_is_better"
        else:
            record["mean1"], record["mean2"] = number(src["mean_arm1"]), number(src["mean_arm2"])
            record["direction"] = "lower_is_better"
            if src["outcome_type"] == "smd":
                record["outcome_definition"] = src["scale"]
        difference = DIFFERENCE.search(src["direction_note"])
        if difference is not None:
            # The table's CBD - placebo difference and its 95% CI, as printed.
            record["md"], record["md_ci_lb"], record["md_ci_ub"] = (
                number(difference.group(i)) for i in (1, 2, 3)
            )
        # Baseline means (SDs) per arm, as printed in the table (kept in the note).
        baseline = BASELINE.search(src["direction_note"])
        same = BASELINE_SAME.search(src["direction_note"])
        if baseline is not None:
            values = [number(baseline.group(i)) for i in (1, 2, 3, 4)]
        elif same is not None:
            values = [number(same.group(i)) for i in (1, 2, 1, 2)]
        else:
            values = [""] * 4
        (
            record["baseline_mean1"],
            record["baseline_sd1"],
            record["baseline_mean2"],
            record["baseline_sd2"],
        ) = values
        record.update(extra)
        record["record_id"] = " | ".join(
            filter(
                None,
                (
                    record["study_id"],
                    f"{record['arm1_id']} vs {record['arm2_id']}",
                    record["outcome_type"],
                    record["scale"],
                    "exploratory subgroup" if record["subgroup"] else "",
                ),
            )
        )
        out.append(record)
    mark_shared_arms(out)
    pinto = [r for r in out if r["study_id"] == "Pinto 2023"]
    require(all(r["md"] for r in pinto), "a Pinto 2023 difference was not found in its note")
    require(all(r["baseline_mean1"] for r in pinto), "a Pinto 2023 baseline was not found")
    return out


# ---------------------------------------------------------------------------
# Cannabinoid trials awaiting data: citations and design, no outcome data

AWAITING_COLUMNS = (
    "study",
    "doi",
    "population",
    "intervention",
    "control",
    "depression_measure",
    "design_note",
    "why_not_pooled",
)
AWAITING_SOURCE = (
    "cannabinoid_trials_awaiting_data.csv: randomised trials found in a search of openly "
    "reachable abstracts and trial pages (November 2026); citations and design only"
)
AWAITING_LICENCE = "bibliographic facts from the cited trial reports; cite them"


def awaiting(source: Path) -> str:
    """The awaiting-data list, cells unchanged, with its source, licence and row added."""
    rows = read_csv(source / AWAITING)
    require(len(rows) == 12, f"{AWAITING}: expected 12 rows, found {len(rows)}")
    require(tuple(rows[0]) == AWAITING_COLUMNS, f"{AWAITING}: the columns have changed")
    buffer = io.StringIO()
    fields = ["drug_class", *AWAITING_COLUMNS, "source_dataset", "source_record", "licence"]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for position, row in enumerate(rows, start=2):
        require(all(row[c].strip() == row[c] for c in AWAITING_COLUMNS), f"row {position}")
        writer.writerow(
            {
                "drug_class": "cannabinoid",
                **row,
                "source_dataset": AWAITING_SOURCE,
                "source_record": f"{AWAITING} row {position}",
                "licence": AWAITING_LICENCE,
            }
        )
    return buffer.getvalue()


# ---------------------------------------------------------------------------
# Writing


def mark_shared_arms(records: list[Row]) -> None:
    """Set shared_arm: 1 if an arm of the record is in another record of its outcome group."""
    group_columns = (
        "outcome_type",
        "scale",
        "time_weeks",
        "time_label",
        "post_crossover",
        "subgroup",
    )
    uses: dict[tuple[str, ...], int] = {}

    def slots(record: Row) -> list[tuple[str, ...]]:
        group = tuple(record[name] for name in group_columns)
        return [(record["study_id"], record[f"arm{k}_id"], *group) for k in ("1", "2")]

    for record in records:
        for slot in slots(record):
            uses[slot] = uses.get(slot, 0) + 1
    for record in records:
        record["shared_arm"] = "1" if any(uses[slot] > 1 for slot in slots(record)) else "0"


def sort_key(record: Row) -> tuple[object, ...]:
    weeks = float(record["time_weeks"]) if record["time_weeks"] else math.inf
    return (
        record["study_id"],
        record["arm1_id"],
        record["arm2_id"],
        record["outcome_type"],
        record["scale"],
        weeks,
        record["time_label"],
        record["post_crossover"],
        record["subgroup"],
        record["record_id"],
    )


def to_csv(records: list[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMN_NAMES, lineterminator="\n")
    writer.writeheader()
    for record in sorted(records, key=sort_key):
        require(set(record) == set(COLUMN_NAMES), f"{record['record_id']}: columns differ")
        writer.writerow(record)
    return buffer.getvalue()


SCHEMA_START = (
    "<!-- schema:start (generated by scripts/build_studies.py from metaan.studies.SCHEMA) -->"
)
SCHEMA_END = "<!-- schema:end -->"


def readme_with_schema(text: str) -> str:
    """The README with its data dictionary replaced by the one of metaan.studies.SCHEMA."""
    start, end = text.find(SCHEMA_START), text.find(SCHEMA_END)
    require(0 <= start < end, f"README lacks the markers {SCHEMA_START} ... {SCHEMA_END}")
    return text[: start + len(SCHEMA_START)] + "\n" + schema_markdown() + text[end:]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=REPO / "studies")
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    source: Path = args.source
    out: Path = args.out
    for name, expected in SHA256.items():
        actual = sha256(source / name)
        if actual != expected:
            print(
                f"{source / name}: SHA-256 {actual} differs from {expected or 'unset'}; "
                "review the change in the source, then update SHA256 in this script",
                file=sys.stderr,
            )
            return 2
    builders: dict[str, Callable[[Path], list[Row]]] = {
        "psilocybin.csv": psilocybin,
        "ssri.csv": ssri,
        "cannabinoid.csv": cannabinoid,
    }
    texts: dict[str, str] = {}
    for name, build in builders.items():
        records = build(source)
        if name == "psilocybin.csv":
            check_main_analysis(source, records)
        texts[name] = to_csv(records)
    # Not study records (no outcome data): kept out of the folder that is loaded.
    texts["awaiting/cannabinoid.csv"] = awaiting(source)
    readme = out / "README.md"
    texts["README.md"] = readme_with_schema(readme.read_text(encoding="utf-8"))
    if args.check:
        stale = [
            n
            for n, t in texts.items()
            if not (out / n).exists() or (out / n).read_text(encoding="utf-8") != t
        ]
        for name in stale:
            print(f"{out / name} differs from what the sources give", file=sys.stderr)
        return 1 if stale else 0
    out.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text, encoding="utf-8", newline="\n")
        print(f"wrote {out / name}")
    problems = validate_studies([out / name for name in builders])
    for problem in problems:
        print(problem, file=sys.stderr)
    return 2 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
