"""metaan: meta-analysis of clinical trials, checked against R's metafor.

The public API is what ``__all__`` lists; everything else may change.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from metaan._gls import BlockMatrix
from metaan._mvresult import (
    LikelihoodRatioTest,
    MultilevelPrediction,
    MultilevelResult,
    ProfileCI,
    VarianceComponent,
    anova,
)
from metaan.bias import (
    FailSafeN,
    RankTest,
    RegressionTest,
    SmallStudyEffects,
    TrimAndFill,
    egger_test,
    fail_safe_n,
    peese,
    rank_test,
    regression_test,
    small_study_effects,
    trim_and_fill,
)
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
from metaan.many import fit_many
from metaan.models import fit
from metaan.multilevel import fit_multilevel, fit_multivariate
from metaan.network import (
    NetSplit,
    NetworkEstimates,
    NetworkResult,
    Ranking,
    fit_network,
    netsplit,
    pairwise,
    sucra,
)
from metaan.regression import (
    MetaRegressionResult,
    PermutationResult,
    RegressionPrediction,
    fit_regression,
    permutation_test,
)
from metaan.results import Exclusion, MetaResult
from metaan.robust import RobustResult, WaldTest, robust
from metaan.sensitivity import (
    Baujat,
    Cumulative,
    Influence,
    LeaveOneOut,
    baujat,
    cumulative,
    influence,
    leave_one_out,
)
from metaan.studies import StudyTable, load_studies, validate_studies
from metaan.subgroups import SubgroupLevel, SubgroupResult, fit_subgroups
from metaan.tables import fit_mh, fit_peto
from metaan.vcalc import vcalc

try:
    __version__ = version("metaan")
except PackageNotFoundError:  # pragma: no cover - only when run from a bare checkout
    __version__ = "0+unknown"

__all__ = [
    "MEASURES",
    "Baujat",
    "BlockMatrix",
    "ConvergenceError",
    "Cumulative",
    "EffectArrays",
    "Exclusion",
    "FailSafeN",
    "HeterogeneityCI",
    "Influence",
    "InputError",
    "LeaveOneOut",
    "LikelihoodRatioTest",
    "MetaRegressionResult",
    "MetaResult",
    "MetaanError",
    "MultilevelPrediction",
    "MultilevelResult",
    "NetSplit",
    "NetworkEstimates",
    "NetworkResult",
    "NotEstimableError",
    "PermutationResult",
    "ProfileCI",
    "RankTest",
    "Ranking",
    "RegressionPrediction",
    "RegressionTest",
    "RobustResult",
    "SmallStudyEffects",
    "SpecError",
    "StudyTable",
    "SubgroupLevel",
    "SubgroupResult",
    "TrimAndFill",
    "VarianceComponent",
    "WaldTest",
    "__version__",
    "anova",
    "baujat",
    "cumulative",
    "egger_test",
    "escalc",
    "fail_safe_n",
    "fit",
    "fit_many",
    "fit_mh",
    "fit_multilevel",
    "fit_multivariate",
    "fit_network",
    "fit_peto",
    "fit_regression",
    "fit_subgroups",
    "influence",
    "leave_one_out",
    "load_studies",
    "netsplit",
    "pairwise",
    "peese",
    "permutation_test",
    "q_profile_ci",
    "rank_test",
    "read_table",
    "regression_test",
    "robust",
    "small_study_effects",
    "sucra",
    "trim_and_fill",
    "validate_studies",
    "vcalc",
]
