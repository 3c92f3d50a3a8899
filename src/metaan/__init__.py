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
from metaan.regression import (
    MetaRegressionResult,
    PermutationResult,
    fit_regression,
    permutation_test,
)
from metaan.results import Exclusion, MetaResult
from metaan.subgroups import SubgroupLevel, SubgroupResult, fit_subgroups
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
    "MetaRegressionResult",
    "MetaResult",
    "MetaanError",
    "NotEstimableError",
    "PermutationResult",
    "SpecError",
    "SubgroupLevel",
    "SubgroupResult",
    "__version__",
    "escalc",
    "fit",
    "fit_mh",
    "fit_peto",
    "fit_regression",
    "fit_subgroups",
    "permutation_test",
    "q_profile_ci",
    "read_table",
]
