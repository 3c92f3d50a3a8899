"""Numbers and exclusions as people read them: plain text, figures and the report."""

from __future__ import annotations

import math

import numpy as np

from metaan._format import fmt, fmt_p, fmt_typeset, format_excluded
from metaan.results import Exclusion


def test_plain_numbers_print_a_dash_for_missing_and_infinite_values() -> None:
    assert fmt(-0.12345) == "-0.1235"
    assert fmt(2.5, 1) == "2.5"
    assert [fmt(x) for x in (None, math.nan, math.inf, -math.inf, np.float32("nan"))] == ["-"] * 5


def test_p_values_print_below_the_fourth_decimal_as_a_bound() -> None:
    assert fmt_p(0.01234) == "0.0123"
    assert fmt_p(0.00001) == "<.0001"
    assert [fmt_p(p) for p in (None, math.nan, math.inf)] == ["-"] * 3


def test_typeset_numbers_use_a_real_minus_and_drop_the_sign_of_a_rounded_zero() -> None:
    assert fmt_typeset(-1.234) == "\u22121.23"
    assert fmt_typeset(1.236) == "1.24"
    assert fmt_typeset(-0.004) == "0.00"
    assert fmt_typeset(-0.4, 0) == "0"
    assert fmt_typeset(-0.0, 3) == "0.000"


def test_typeset_numbers_print_an_en_dash_when_missing_and_infinity_as_a_symbol() -> None:
    assert fmt_typeset(None) == "\u2013"
    assert fmt_typeset(math.nan) == "\u2013"
    assert fmt_typeset(math.inf) == "\u221e"
    assert fmt_typeset(-math.inf) == "\u2212\u221e"


def test_excluded_rows_are_listed_under_a_count_after_a_blank_line() -> None:
    excluded = (
        Exclusion(row=7, study="Smith 2004", reason="vi is missing"),
        Exclusion(row=None, study=None, reason="yi is not finite"),
    )
    assert format_excluded(excluded) == [
        "",
        "Excluded (2):",
        "  row 7 (Smith 2004): vi is missing",
        "  : yi is not finite",
    ]
    assert format_excluded(()) == []


def test_huge_numbers_print_in_scientific_notation_not_hundreds_of_digits() -> None:
    assert fmt(1e300) == "1.0000e+300"
    assert fmt(-2.5e9, 2) == "-2.50e+09"
    assert fmt(99_999_999.0, 1) == "99999999.0"
    assert fmt_typeset(-1.7e308) == "\u22121.70e+308"
    assert len(fmt_typeset(1e300)) < 12


def test_a_p_value_in_a_sentence_reads_p_less_than() -> None:
    from metaan._format import p_equals

    assert p_equals(1e-7) == "p < .0001"
    assert p_equals(0.0123) == "p = 0.0123"
    assert p_equals(None) == "p = -"


def test_no_summary_prints_an_equals_sign_before_a_less_than() -> None:
    # QE of the BCG trials has p < .0001: every summary must say "p < .0001".
    import metaan
    from bcg import BCG

    res = metaan.fit(BCG, labels="trial")
    texts = [
        metaan.fit_regression(BCG, mods=["ablat"], labels="trial").summary(),
        metaan.fit_subgroups(BCG, by="alloc", labels="trial").summary(),
        metaan.small_study_effects(res).summary(),
    ]
    assert "p < .0001" in texts[0] and "p < .0001" in texts[1]
    for text in texts:
        assert "= <" not in text
