"""The netmeta reference files, and how their inputs map onto metaan's arguments.

The directory is ``$METAAN_NETMETA_REFERENCE_DIR`` when set, otherwise the copy in
``tests/reference/netmeta`` (its README describes the format). A file's ``input`` is
the data as published, so its columns carry the publication's names; this module
knows the names in use and gives each its role. A column it does not know fails the
suite, so a new reference file cannot be read wrongly.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

DEFAULT_DIR = Path(__file__).parent / "reference" / "netmeta"

#: The top-level keys of a reference file.
FILE_KEYS = frozenset(
    {"case", "note", "reference", "sm", "reference_group", "input", "pairwise", "results"}
)

#: Column names of ``input`` by role, in order of preference.
ROLES: dict[str, tuple[str, ...]] = {
    "study": ("studlab", "study", "study_id", "id"),
    "treatment": ("treatment", "trt", "drug", "treat"),
    "treat1": ("treat1",),
    "treat2": ("treat2",),
    "events": ("xi", "events", "event", "responders", "r"),
    "n": ("ni", "n", "n_randomised", "N"),
    "mean": ("mi", "mean"),
    "sd": ("sdi", "sd"),
    "yi": ("TE", "lnOR", "logOR", "lnRR", "yi", "MD", "SMD"),
    "sei": ("seTE", "selnOR", "selogOR", "selnRR", "sei", "se"),
}
#: Descriptive columns that take no part in the analysis.
DESCRIPTIVE = frozenset({"id", "authors", "author", "year", "comment"})


def reference_dir() -> Path:
    return Path(os.environ.get("METAAN_NETMETA_REFERENCE_DIR", str(DEFAULT_DIR)))


@dataclass(frozen=True)
class NetworkCase:
    name: str
    raw: dict[str, Any]

    @property
    def measure(self) -> str:
        return str(self.raw["sm"])

    @property
    def input(self) -> pd.DataFrame:
        return pd.DataFrame(self.raw["input"])

    @property
    def pairwise(self) -> pd.DataFrame:
        return pd.DataFrame(self.raw["pairwise"])

    def roles(self) -> dict[str, str]:
        """The input column of each role; an unknown column raises AssertionError."""
        columns = list(self.raw["input"][0])
        found: dict[str, str] = {}
        for role, names in ROLES.items():
            for name in names:
                if name in columns and name not in found.values():
                    found[role] = name
                    break
        placed = set(found.values())
        unknown = [c for c in columns if c not in placed and c not in DESCRIPTIVE]
        assert not unknown, f"{self.name}: input columns the suite cannot place: {unknown}"
        return found

    @property
    def arm_level(self) -> bool:
        return "treat1" not in self.roles()


def _load(path: Path) -> NetworkCase:
    raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return NetworkCase(str(raw.get("case", path.stem)), raw)


@cache
def load_cases() -> tuple[NetworkCase, ...]:
    directory = reference_dir()
    paths = sorted(directory.glob("*.json"))
    if not paths:
        raise FileNotFoundError(f"no reference files (*.json) in {directory}")
    return tuple(_load(p) for p in paths)
