"""Analysis sets of the depression report that the study records alone do not define.

These selections belong to the report (the application), not to the library:
they encode one review's rules for its own primary analysis.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["psilocybin_main_analysis"]


# Metapsy's main analysis (Singleton et al. 2026), rules 4 and 5: see
# psilocybin_main_analysis.
_MAIN_EXCLUDED_STUDIES = frozenset({"Krempien 2023", "Carhart-Harris 2021"})
_MAIN_EXCLUDED_ARMS = frozenset({("Goodwin 2022", "psil 10 mg")})


def psilocybin_main_analysis(frame: pd.DataFrame) -> pd.DataFrame:
    """Select the 12-trial primary analysis set of the metapsy psilocybin review.

    The review (Singleton et al., Nature Mental Health 2026) pools one
    endpoint comparison per trial, with Hedges' g (``smd``, ``smd_se``). The
    rules, as its reproducibility guide describes them:

    1. psilocybin records with ``primary_outcome`` = 1 and
       ``primary_timepoint`` = 1;
    2. not measured after a crossover (``post_crossover`` ≠ 1);
    3. ``outcome_type`` = ``endpoint`` (reported or imputed endpoint scores);
    4. Goodwin 2022: no comparison involving the 10 mg arm (keeps 25 mg vs
       1 mg);
    5. without Krempien 2023 and Carhart-Harris 2021 (whose comparator,
       escitalopram, is an active drug).

    Parameters
    ----------
    frame
        Study records, e.g. ``load_studies(...).frame``.

    Returns
    -------
    pandas.DataFrame
        The selected rows, in their original order (12 on ``studies/``).
    """
    mask = (
        (frame["drug_class"] == "psilocybin")
        & (frame["primary_outcome"] == 1)
        & (frame["primary_timepoint"] == 1)
        & (frame["post_crossover"].fillna(0) != 1)
        & (frame["outcome_type"] == "endpoint")
        & ~frame["study_id"].isin(_MAIN_EXCLUDED_STUDIES)
    )
    for study, arm in _MAIN_EXCLUDED_ARMS:
        involves = (frame["arm1_id"] == arm) | (frame["arm2_id"] == arm)
        mask &= ~((frame["study_id"] == study) & involves)
    return frame[mask.fillna(False).astype(bool)]
