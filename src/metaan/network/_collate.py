"""The order of treatment names: R's ``sort()`` in an English locale.

netmeta orders treatments with R's ``sort()``, which compares text by the rules of the
locale (ICU's root collation where R is built with ICU, as on the usual Linux and
macOS builds). Case and accents are compared only when the letters are otherwise equal,
so ``"NaSSa" < "No contact CBT" < "NRI" < "rMAO-A" < "Self-help CBT" < "SNRI"``;
spaces and punctuation sort before digits, digits before letters, and a lower-case
letter before its capital. The order matters beyond display: netmeta picks each
study's reference arm for REML and its baseline for the decomposition by it, so a fit
reproduces netmeta only if it sorts as R does.

References
----------
Unicode Technical Standard #10, Unicode Collation Algorithm (the three levels of
comparison); R Core Team, ``?Comparison`` ("Comparison of strings in character
vectors is lexicographic within the strings using the collating sequence of the
locale in use").
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

__all__ = ["sort_treatments", "treatment_key"]

_SPACE, _PUNCTUATION, _DIGIT, _LETTER = 0, 1, 2, 3


def treatment_key(name: str) -> tuple[tuple[tuple[int, int | str], ...], tuple[int, ...], str]:
    """A sort key that orders names as R's ``sort()`` does in an English locale.

    The key compares, in turn: the characters ignoring case and accents (spaces
    before punctuation before digits before letters), then case (lower before upper),
    then the text itself, so distinct names never tie.
    """
    primary: list[tuple[int, int | str]] = []
    tertiary: list[int] = []
    for char in name:
        base = unicodedata.normalize("NFD", char)[0]
        if base.isspace():
            primary.append((_SPACE, ord(base)))
        elif base.isdigit():
            primary.append((_DIGIT, int(base) if base.isdecimal() else ord(base)))
        elif base.isalpha():
            primary.append((_LETTER, base.casefold()))
        else:
            primary.append((_PUNCTUATION, ord(base)))
        tertiary.append(1 if char.isupper() else 0)
    return tuple(primary), tuple(tertiary), name


def sort_treatments(names: Iterable[str]) -> tuple[str, ...]:
    """The distinct names in R's order (see :func:`treatment_key`)."""
    return tuple(sorted(set(names), key=treatment_key))
