"""The one route from a simulation to the estimation engine.

Every fit of a simulated meta-analysis goes through :func:`fit_batch`: segmented
arrays in, arrays of results out. It calls metaan's own engine (the batched
:func:`metaan.engine.fit_segments` for the inverse-variance methods, as
``metaan.fit`` and ``metaan.fit_many`` do; ``metaan.fit_mh`` and
``metaan.fit_peto`` for 2x2 tables), so a simulation measures exactly the code
that analyses real data; it has no estimator, solver or Knapp-Hartung rule of
its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from metaan.engine import fit_segments
from metaan.errors import NotEstimableError
from metaan.estimators import FloatArray
from metaan.simulate.generate import Batch
from metaan.simulate.spec import TABLE_METHODS
from metaan.tables import fit_mh, fit_peto

__all__ = ["FAILED", "NOT_ESTIMABLE", "OK", "BatchFit", "fit_batch"]

#: Status of one fit: fitted; no estimate exists for these data (as metafor
#: also gives none, e.g. Mantel-Haenszel with no events in one arm of every
#: trial); or the fit raised an error, which a correct engine never does.
OK, NOT_ESTIMABLE, FAILED = 0, 1, 2


@dataclass(frozen=True)
class BatchFit:
    """One method's results for each meta-analysis of a batch (NaN where not fitted).

    ``tau2`` is NaN for the 2x2-table methods, and ``pi_lb``/``pi_ub`` too, since
    a common-effect pooling of tables has no prediction interval.
    """

    estimate: FloatArray
    se: FloatArray
    ci_lb: FloatArray
    ci_ub: FloatArray
    pval: FloatArray
    tau2: FloatArray
    pi_lb: FloatArray
    pi_ub: FloatArray
    status: npt.NDArray[np.int8]


_FIELDS = ("estimate", "se", "ci_lb", "ci_ub", "pval", "tau2", "pi_lb", "pi_ub")


def fit_batch(batch: Batch, *, method: str, test: str, level: float, prediction: str) -> BatchFit:
    """Fit every meta-analysis of ``batch`` with one method.

    The inverse-variance methods go to the batched engine in one call
    (:func:`metaan.engine.fit_segments`, which :func:`metaan.fit_many` also
    uses); the 2x2-table methods to :func:`metaan.fit_mh` and
    :func:`metaan.fit_peto`, one meta-analysis at a time.

    Parameters
    ----------
    batch
        Segmented effect sizes (and 2x2 tables for ``MH`` and ``PETO``).
    method
        ``EE``, a tau^2 estimator (see :func:`metaan.fit`), ``MH`` or ``PETO``.
    test, level, prediction
        As :func:`metaan.fit` takes them; ``MH`` and ``PETO`` use the z test.

    Returns
    -------
    BatchFit
        Arrays with one entry per meta-analysis, and each fit's status.
    """
    if method in TABLE_METHODS:
        return _fit_tables(batch, method, level)
    groups = np.repeat(np.arange(batch.n, dtype=np.int64), batch.sizes)
    try:
        res = fit_segments(
            batch.yi,
            batch.vi,
            groups,
            n_groups=batch.n,
            method=method,
            test=test,
            level=level,
            prediction=prediction,
            qprofile=False,
        )
    except Exception:  # counted: a failed fit is a finding, not a crash
        missing = {name: np.full(batch.n, math.nan) for name in _FIELDS}
        return BatchFit(**missing, status=np.full(batch.n, FAILED, np.int8))
    # A problem the engine declines (too few studies) has no estimate, as in
    # metafor; one it accepted but returned without an estimate has failed.
    status = np.where(res.error != "", NOT_ESTIMABLE, OK).astype(np.int8)
    status[(status == OK) & ~np.isfinite(res.estimate)] = FAILED
    return BatchFit(
        estimate=res.estimate,
        se=res.se,
        ci_lb=res.ci_lb,
        ci_ub=res.ci_ub,
        pval=res.pval,
        tau2=res.tau2 if method != "EE" else np.full(batch.n, math.nan),
        pi_lb=res.pi_lb,
        pi_ub=res.pi_ub,
        status=status,
    )


def _fit_tables(batch: Batch, method: str, level: float) -> BatchFit:
    """Mantel-Haenszel or Peto for each meta-analysis's 2x2 tables."""
    if batch.counts is None:
        raise ValueError(f"{method} needs 2x2 tables; this batch has effect sizes only")
    n = batch.n
    out = {name: np.full(n, math.nan) for name in _FIELDS}
    status = np.zeros(n, dtype=np.int8)
    for i in range(n):
        ai, n1, ci, n2 = (c[i] for c in batch.counts)
        try:
            if method == "MH":
                res = fit_mh(ai=ai, n1i=n1, ci=ci, n2i=n2, measure="OR", level=level)
            else:
                res = fit_peto(ai=ai, n1i=n1, ci=ci, n2i=n2, level=level)
        except NotEstimableError:
            status[i] = NOT_ESTIMABLE
            continue
        except Exception:  # counted: a failed fit is a finding, not a crash
            status[i] = FAILED
            continue
        for name in ("estimate", "se", "ci_lb", "ci_ub", "pval"):
            out[name][i] = getattr(res, name)
    return BatchFit(**out, status=status)
