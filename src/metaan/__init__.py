"""metaan: meta-analysis of clinical trials, checked against R's metafor.

The public API is what ``__all__`` lists; everything else may change.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

#: Each public name and the module that defines it, imported on first use so that
#: ``import metaan`` costs almost nothing and a command pays only for what it uses.
_LAZY: dict[str, str] = {
    "anova": "metaan._mvresult",
    "Baujat": "metaan.sensitivity",
    "baujat": "metaan.sensitivity",
    "BlockMatrix": "metaan._gls",
    "ConvergenceError": "metaan.errors",
    "Cumulative": "metaan.sensitivity",
    "cumulative": "metaan.sensitivity",
    "EffectArrays": "metaan.effects",
    "egger_test": "metaan.bias",
    "escalc": "metaan.effects",
    "Exclusion": "metaan.results",
    "fail_safe_n": "metaan.bias",
    "FailSafeN": "metaan.bias",
    "fit": "metaan.models",
    "fit_many": "metaan.many",
    "fit_mh": "metaan.tables",
    "fit_multilevel": "metaan.multilevel",
    "fit_multivariate": "metaan.multilevel",
    "fit_peto": "metaan.tables",
    "fit_regression": "metaan.regression",
    "fit_subgroups": "metaan.subgroups",
    "HeterogeneityCI": "metaan.heterogeneity",
    "Influence": "metaan.sensitivity",
    "influence": "metaan.sensitivity",
    "InputError": "metaan.errors",
    "leave_one_out": "metaan.sensitivity",
    "LeaveOneOut": "metaan.sensitivity",
    "LikelihoodRatioTest": "metaan._mvresult",
    "load_studies": "metaan.studies",
    "MEASURES": "metaan.effects",
    "MetaanError": "metaan.errors",
    "MetaRegressionResult": "metaan.regression",
    "MetaResult": "metaan.results",
    "MultilevelPrediction": "metaan._mvresult",
    "MultilevelResult": "metaan._mvresult",
    "NetSplit": "metaan.network",
    "NetworkEstimates": "metaan.network",
    "NetworkResult": "metaan.network",
    "fit_network": "metaan.network",
    "netsplit": "metaan.network",
    "pairwise": "metaan.network",
    "Ranking": "metaan.network",
    "sucra": "metaan.network",
    "NotEstimableError": "metaan.errors",
    "peese": "metaan.bias",
    "permutation_test": "metaan.regression",
    "PermutationResult": "metaan.regression",
    "ProfileCI": "metaan._mvresult",
    "q_profile_ci": "metaan.heterogeneity",
    "rank_test": "metaan.bias",
    "RankTest": "metaan.bias",
    "read_revman": "metaan.io",
    "read_table": "metaan.io",
    "regression_test": "metaan.bias",
    "RegressionPrediction": "metaan.regression",
    "RegressionTest": "metaan.bias",
    "robust": "metaan.robust",
    "RobustResult": "metaan.robust",
    "small_study_effects": "metaan.bias",
    "SmallStudyEffects": "metaan.bias",
    "SpecError": "metaan.errors",
    "StudyTable": "metaan.studies",
    "SubgroupLevel": "metaan.subgroups",
    "SubgroupResult": "metaan.subgroups",
    "to_r": "metaan.rexport",
    "trim_and_fill": "metaan.bias",
    "TrimAndFill": "metaan.bias",
    "validate_studies": "metaan.studies",
    "VarianceComponent": "metaan._mvresult",
    "vcalc": "metaan.vcalc",
    "WaldTest": "metaan.robust",
}

if TYPE_CHECKING:  # the names as the type checker and IDEs see them
    from metaan._gls import (
        BlockMatrix,
    )
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
    from metaan.effects import (
        MEASURES,
        EffectArrays,
        escalc,
    )
    from metaan.errors import (
        ConvergenceError,
        InputError,
        MetaanError,
        NotEstimableError,
        SpecError,
    )
    from metaan.heterogeneity import (
        HeterogeneityCI,
        q_profile_ci,
    )
    from metaan.io import (
        read_revman,
        read_table,
    )
    from metaan.many import (
        fit_many,
    )
    from metaan.models import (
        fit,
    )
    from metaan.multilevel import (
        fit_multilevel,
        fit_multivariate,
    )
    from metaan.network import (
        NetSplit,
        NetworkEstimates,
        NetworkResult,
        Ranking,
        fit_network,
        netsplit,
        sucra,
    )
    from metaan.network.pairwise import (  # the function, not the module of its name
        pairwise,
    )
    from metaan.regression import (
        MetaRegressionResult,
        PermutationResult,
        RegressionPrediction,
        fit_regression,
        permutation_test,
    )
    from metaan.results import (
        Exclusion,
        MetaResult,
    )
    from metaan.rexport import (
        to_r,
    )
    from metaan.robust import (
        RobustResult,
        WaldTest,
        robust,
    )
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
    from metaan.studies import (
        StudyTable,
        load_studies,
        validate_studies,
    )
    from metaan.subgroups import (
        SubgroupLevel,
        SubgroupResult,
        fit_subgroups,
    )
    from metaan.tables import (
        fit_mh,
        fit_peto,
    )
    from metaan.vcalc import (
        vcalc,
    )


class _Package(types.ModuleType):
    """The package module: a public function named like its own submodule (``vcalc``,
    ``robust``) stays the function when that submodule is imported, as it did when
    the package imported every name eagerly. The submodule stays in ``sys.modules``."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and name in _LAZY and _LAZY[name].endswith(name):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("metaan")
        except PackageNotFoundError:  # pragma: no cover - only from a bare checkout
            value = "0+unknown"
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'metaan' has no attribute '{name}'")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
    "read_revman",
    "read_table",
    "regression_test",
    "robust",
    "small_study_effects",
    "sucra",
    "to_r",
    "trim_and_fill",
    "validate_studies",
    "vcalc",
]
