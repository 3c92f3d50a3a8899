"""metaan: meta-analysis of clinical trials, checked against R's metafor.

The public API is what ``__all__`` lists; everything else may change.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from metaan.effects import MEASURES, EffectArrays, escalc
from metaan.errors import (
    ConvergenceError,
    InputError,
    MetaanError,
    NotEstimableError,
    SpecError,
)
from metaan.heterogeneity import HeterogeneityCI, q_profile_ci
from metaan.io import read_table
from metaan.models import fit
from metaan.results import Exclusion, MetaResult
from metaan.tables import fit_mh, fit_peto

try:
    __version__ = version("metaan")
except PackageNotFoundError:  # pragma: no cover - only when run from a bare checkout
    __version__ = "0+unknown"

__all__ = [
    "MEASURES",
    "ConvergenceError",
    "EffectArrays",
    "Exclusion",
    "HeterogeneityCI",
    "InputError",
    "MetaResult",
    "MetaanError",
    "NotEstimableError",
    "SpecError",
    "__version__",
    "escalc",
    "fit",
    "fit_mh",
    "fit_peto",
    "q_profile_ci",
    "read_table",
]
