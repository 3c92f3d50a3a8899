"""The metafor reference files, loaded once for the conformance suites.

The directory is ``$METAAN_REFERENCE_DIR`` when set, otherwise the copy in
``tests/reference/metafor``; the format is described in ``tests/reference/README.md``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

import metaan
from metaan.heterogeneity import typical_within_variance
from tolerance import ATOL, assert_close

DEFAULT_DIR = Path(__file__).parent / "reference" / "metafor"

#: Keys of ``results`` that describe an analysis rather than hold one.
METADATA_KEYS = frozenset({"metareg_vars", "subgroup_var"})


def reference_dir() -> Path:
    return Path(os.environ.get("METAAN_REFERENCE_DIR", str(DEFAULT_DIR)))


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    effect: dict[str, Any]
    data: list[dict[str, Any]]
    results: dict[str, Any]

    def column(self, name: str) -> np.ndarray:
        """A data column as floats, with None as NaN."""
        return np.array(
            [np.nan if row.get(name) is None else row[name] for row in self.data], dtype=float
        )

    @property
    def yi(self) -> np.ndarray:
        return self.column("yi")

    @property
    def vi(self) -> np.ndarray:
        return self.column("vi")

    def counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        e = self.effect
        return (
            self.column(e["ai"]),
            self.column(e["n1i"]),
            self.column(e["ci"]),
            self.column(e["n2i"]),
        )


@cache
def load_cases() -> tuple[Case, ...]:
    directory = reference_dir()
    paths = sorted(directory.glob("*.json"))
    if not paths:
        raise FileNotFoundError(f"no reference files (*.json) in {directory}")
    cases = []
    for path in paths:
        raw = json.loads(path.read_text(encoding="utf-8"))
        cases.append(
            Case(
                name=raw.get("case", path.stem),
                path=path,
                effect=raw["effect"],
                data=raw["data"],
                results=raw["results"],
            )
        )
    return tuple(cases)


def analyses() -> list[tuple[Case, str]]:
    """Every (case, analysis key) pair in the reference files, metadata keys aside."""
    return [
        (case, key)
        for case in load_cases()
        for key in sorted(case.results)
        if key not in METADATA_KEYS
    ]


def fit_case(case: Case, method: str, test: str = "z") -> metaan.MetaResult:
    """The case's yi/vi fitted by metaan with a method and test."""
    return metaan.fit(yi=case.yi, vi=case.vi, method=method, test=test)


def fit_fields(res: metaan.MetaResult) -> dict[str, Any]:
    """The fields of a fit under metafor's names (and ``_typical``, the typical
    within-study variance of a random-effects fit, for :func:`compare`)."""
    typical = None
    if res.model == "random" and res.vi.size > 1:
        typical = typical_within_variance(res.vi)
    return {
        "_typical": typical,
        "estimate": res.estimate,
        "se": res.se,
        "zval": res.stat,
        "pval": res.pval,
        "ci_lb": res.ci_lb,
        "ci_ub": res.ci_ub,
        "tau2": res.tau2,
        "se_tau2": res.se_tau2,
        "I2": res.I2,
        "H2": res.H2,
        "QE": res.QE,
        "QEp": res.QEp,
        "k": res.k,
        "dfs": res.df,
        "MH": res.MH,
        "TA": res.TA,
    }


def compare(got: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    """Every field metafor reports, checked at the project's tolerance.

    I^2 and H^2 are functions of tau^2: I^2 = 100 tau^2 / (s^2 + tau^2) and
    H^2 = tau^2 / s^2 + 1. Where R leaves tau^2 at about 1e-14 short of a
    boundary optimum of 0, tau^2 agrees within ATOL and I^2, H^2 may differ by
    100 ATOL / s^2 and ATOL / s^2; they are compared with those absolute
    tolerances (``_typical`` in ``got`` is s^2).
    """
    typical = got.get("_typical")
    for name, value in expected.items():
        assert name in got, f"{where}: metaan has no field for metafor's {name!r}"
        atol = ATOL
        if typical and name in ("I2", "H2"):
            atol = max(ATOL, (100.0 if name == "I2" else 1.0) * ATOL / typical)
        assert_close(got[name], value, f"{where}: {name}", atol)
