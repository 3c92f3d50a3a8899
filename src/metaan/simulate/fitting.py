"""The one route from a simulation to the estimation engine.

Every fit of a simulated meta-analysis goes through :func:`fit_batch`: segmented
arrays in, arrays of results out. It calls metaan's own estimators (``metaan.fit``
for the inverse-variance methods, ``metaan.fit_mh`` and ``metaan.fit_peto`` for
2x2 tables), so a simulation measures exactly the code that analyses real data;
it has no estimator, solver or Knapp-Hartung rule of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from metaan.errors import NotEstimableError
from metaan.estimators import FloatArray
from metaan.models import fit
from metaan.results import MetaResult
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
    n = batch.n
    out = {name: np.full(n, math.nan) for name in _FIELDS}
    status = np.zeros(n, dtype=np.int8)
    ends = np.cumsum(batch.sizes)
    starts = ends - batch.sizes
    need = 1 if method == "EE" else 2
    for i in range(n):
        try:
            if method in TABLE_METHODS:
                res = _fit_tables(batch, i, method, level)
            elif batch.sizes[i] < need:
                status[i] = NOT_ESTIMABLE
                continue
            else:
                part = slice(int(starts[i]), int(ends[i]))
                res = fit(
                    batch.yi[part],
                    batch.vi[part],
                    method=method,
                    test=test,
                    level=level,
                    prediction=prediction,
                )
        except NotEstimableError:
            status[i] = NOT_ESTIMABLE
            continue
        except Exception:  # counted: a failed fit is a finding, not a crash
            status[i] = FAILED
            continue
        _store(out, i, res, tables=method in TABLE_METHODS)
    return BatchFit(**out, status=status)


def _fit_tables(batch: Batch, i: int, method: str, level: float) -> MetaResult:
    if batch.counts is None:
        raise ValueError(f"{method} needs 2x2 tables; this batch has effect sizes only")
    ai, n1, ci, n2 = (c[i] for c in batch.counts)
    if method == "MH":
        return fit_mh(ai, n1, ci, n2, measure="OR", level=level)
    return fit_peto(ai, n1, ci, n2, level=level)


def _store(out: dict[str, FloatArray], i: int, res: MetaResult, *, tables: bool) -> None:
    out["estimate"][i] = res.estimate
    out["se"][i] = res.se
    out["ci_lb"][i] = res.ci_lb
    out["ci_ub"][i] = res.ci_ub
    out["pval"][i] = res.pval
    if not tables:
        out["tau2"][i] = res.tau2 if res.tau2 is not None else math.nan
        out["pi_lb"][i] = res.pi_lb
        out["pi_ub"][i] = res.pi_ub
