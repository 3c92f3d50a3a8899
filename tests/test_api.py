"""The public API: what ``metaan.__all__`` promises, and nothing it does not."""

from __future__ import annotations

import subprocess
import sys

import metaan

#: The public names. Changing this set needs a note in CHANGELOG.md.
PUBLIC = {
    "BlockMatrix",
    "LikelihoodRatioTest",
    "MultilevelPrediction",
    "MultilevelResult",
    "ProfileCI",
    "RobustResult",
    "VarianceComponent",
    "WaldTest",
    "anova",
    "fit_multilevel",
    "fit_multivariate",
    "robust",
    "vcalc",
    "Baujat",
    "ConvergenceError",
    "Cumulative",
    "EffectArrays",
    "Exclusion",
    "FailSafeN",
    "HeterogeneityCI",
    "Influence",
    "InputError",
    "LeaveOneOut",
    "MEASURES",
    "MetaRegressionResult",
    "MetaResult",
    "MetaanError",
    "NetSplit",
    "NetworkEstimates",
    "NetworkResult",
    "NotEstimableError",
    "PermutationResult",
    "RankTest",
    "Ranking",
    "RegressionPrediction",
    "RegressionTest",
    "SmallStudyEffects",
    "SpecError",
    "StudyTable",
    "SubgroupLevel",
    "SubgroupResult",
    "TrimAndFill",
    "__version__",
    "baujat",
    "build_report",
    "cumulative",
    "egger_test",
    "escalc",
    "fail_safe_n",
    "fit",
    "fit_mh",
    "fit_network",
    "fit_peto",
    "fit_regression",
    "fit_subgroups",
    "influence",
    "leave_one_out",
    "load_spec",
    "load_studies",
    "netsplit",
    "pairwise",
    "peese",
    "permutation_test",
    "psilocybin_main_analysis",
    "q_profile_ci",
    "rank_test",
    "read_table",
    "regression_test",
    "small_study_effects",
    "sucra",
    "trim_and_fill",
    "validate_studies",
}


def test_the_public_api_is_exactly_what_all_lists() -> None:
    assert set(metaan.__all__) == PUBLIC
    assert len(metaan.__all__) == len(PUBLIC)
    for name in metaan.__all__:
        assert getattr(metaan, name) is not None, name


def test_every_public_name_is_in_the_changelog() -> None:
    from pathlib import Path

    changelog = (Path(__file__).resolve().parent.parent / "CHANGELOG.md").read_text("utf-8")
    missing = [name for name in PUBLIC if f"`{name}`" not in changelog]
    assert missing == []


def test_importing_metaan_does_not_load_matplotlib_or_scipy_stats() -> None:
    code = "import sys, metaan; print('matplotlib' in sys.modules, 'scipy.stats' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
