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
    "cumulative",
    "egger_test",
    "escalc",
    "fail_safe_n",
    "fit",
    "fit_many",
    "fit_mh",
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
    "small_study_effects",
    "sucra",
    "to_r",
    "trim_and_fill",
    "validate_studies",
}


def test_the_public_api_is_exactly_what_all_lists() -> None:
    assert set(metaan.__all__) == PUBLIC
    assert len(metaan.__all__) == len(PUBLIC)
    missing = [name for name in metaan.__all__ if not hasattr(metaan, name)]
    assert missing == []
    undocumented = [
        name
        for name in metaan.__all__
        if callable(getattr(metaan, name)) and not (getattr(metaan, name).__doc__ or "").strip()
    ]
    assert undocumented == []


def test_every_public_name_is_in_the_changelog() -> None:
    from pathlib import Path

    changelog = (Path(__file__).resolve().parent.parent / "CHANGELOG.md").read_text("utf-8")
    missing = [name for name in PUBLIC if f"`{name}`" not in changelog]
    assert missing == []


def test_importing_metaan_loads_neither_the_report_nor_plotting_libraries() -> None:
    names = ["matplotlib", "scipy.stats", "jinja2", "weasyprint", "metaan.report"]
    code = f"import sys, metaan; print(*[n in sys.modules for n in {names!r}])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"] * len(names)


def test_importing_metaan_loads_no_numerical_library_until_a_name_is_used() -> None:
    code = (
        "import sys, metaan; before = [m for m in ('numpy', 'pandas', 'scipy', 'jinja2') "
        "if m in sys.modules]; metaan.fit; print(before, 'numpy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "True"]


def test_a_function_named_like_its_module_stays_the_function_after_the_module_is_imported() -> None:
    code = (
        "import metaan.vcalc, metaan.robust, metaan; "
        "print(callable(metaan.vcalc), callable(metaan.robust), type(metaan.vcalc).__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "function"]
