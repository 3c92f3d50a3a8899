"""The sampling covariance of dependent effect sizes, as metafor's ``vcalc`` builds it.

Effects of one cluster (usually a trial) are correlated when they measure several
outcomes of the same patients (``rho``), the same outcome at several time points
(``phi``), or compare several arms with one shared control group (from the group
sizes ``w1``/``w2``). The correlation of effects ``i`` and ``j`` of one cluster is

.. math::

    r_{ij} = c_{ij} \\, \\frac{a_{11} / \\sqrt{w_{1i} w_{1j}} - a_{12} / \\sqrt{w_{1i} w_{2j}}
        - a_{21} / \\sqrt{w_{2i} w_{1j}} + a_{22} / \\sqrt{w_{2i} w_{2j}}}
        {\\sqrt{1/w_{1i} + 1/w_{2i} - 2 a_i / \\sqrt{w_{1i} w_{2i}}}\\,
         \\sqrt{1/w_{1j} + 1/w_{2j} - 2 a_j / \\sqrt{w_{1j} w_{2j}}}},

where :math:`a_{uv}` is :math:`\\phi^{|t_{ui} - t_{vj}|}` when group ``u`` of effect
``i`` is group ``v`` of effect ``j`` (1 at equal times) and 0 otherwise, :math:`a_i`
the same for the two groups of effect ``i`` itself, and :math:`c_{ij}` is 1 for the
same construct (``type``) and observation (``obs``), the within-construct
correlation of their observations (``rho[0]``) for the same construct, and the
between-construct correlation (``rho[1]``) for different constructs. Then
:math:`V_{ij} = \\sqrt{v_i}\\, r_{ij} \\sqrt{v_j}`. Effects of different clusters are
independent, so V is block-diagonal: it is built block by block, blocks of equal
size at once, and returned as a :class:`~metaan._gls.BlockMatrix` (never a dense
k x k matrix).

References
----------
Viechtbauer, W. (2022). ``vcalc``: construct or approximate the variance-covariance
matrix of dependent effect sizes or outcomes. metafor 3.8 (R package).

Gleser, L. J., & Olkin, I. (2009). Stochastically dependent effect sizes. In H.
Cooper, L. V. Hedges, & J. C. Valentine (Eds.), *The handbook of research synthesis
and meta-analysis* (2nd ed., pp. 357-376). Russell Sage Foundation (effects that
share a control group).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from metaan._args import column_values, n_rows
from metaan._gls import BlockMatrix, Blocks
from metaan.errors import InputError
from metaan.io import spreadsheet_rows

__all__ = ["Correlation", "vcalc"]

FloatArray = npt.NDArray[np.float64]

#: A correlation between observations or constructs: one value for every pair, or a
#: labelled square matrix (a DataFrame, or a mapping of label to mapping of label).
Correlation = float | pd.DataFrame | Mapping[Any, Mapping[Any, float]]


def _frame(data: pd.DataFrame | None, k: int | None) -> pd.DataFrame:
    return data if data is not None else pd.DataFrame(index=pd.RangeIndex(k or 0))


def _codes(values: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """Integer codes of labels in order of first appearance, and the labels."""
    labels = list(dict.fromkeys(values.tolist()))
    lookup = {v: i for i, v in enumerate(labels)}
    return np.array([lookup[v] for v in values.tolist()], dtype=np.intp), labels


def _correlation_matrix(value: Correlation | None, labels: list[Any], name: str) -> FloatArray:
    """The correlations between ``labels`` as a square array (1 on the diagonal)."""
    n = len(labels)
    if value is None:
        value = 0.0
    if isinstance(value, int | float | np.floating | np.integer):
        out = np.full((n, n), float(value))
        np.fill_diagonal(out, 1.0)
    else:
        table = pd.DataFrame(value) if not isinstance(value, pd.DataFrame) else value
        index = {str(v): v for v in table.index}
        cols = {str(v): v for v in table.columns}
        out = np.empty((n, n))
        for a, la in enumerate(labels):
            for b, lb in enumerate(labels):
                key_a, key_b = str(la), str(lb)
                if key_a not in index or key_b not in cols:
                    missing = key_a if key_a not in index else key_b
                    raise InputError(
                        f"{name} has no row and column for {missing!r}",
                        fix="give a correlation for every pair of labels that occurs",
                    )
                out[a, b] = float(table.loc[index[key_a], cols[key_b]])
    if np.any(np.abs(out) > 1.0) or not np.allclose(out, out.T):
        raise InputError(f"{name} must be a symmetric matrix of correlations in [-1, 1]")
    return out


def _same(u: np.ndarray, v: np.ndarray, t: np.ndarray, s: np.ndarray, phi: float) -> np.ndarray:
    """a_uv of the module docstring: phi^|t - s| where the groups match, else 0."""
    lag = np.abs(t - s)
    return np.where(u == v, np.where(lag == 0, 1.0, phi**lag), 0.0)


def _block_correlation(p: dict[str, np.ndarray], phi: float, c: np.ndarray) -> np.ndarray:
    """The (n, m, m) correlations of one size group; ``p`` holds (n, m) arrays."""

    def pair(name: str) -> tuple[np.ndarray, np.ndarray]:
        return p[name][:, :, None], p[name][:, None, :]

    g1i, g1j = pair("grp1")
    g2i, g2j = pair("grp2")
    t1i, t1j = pair("time1")
    t2i, t2j = pair("time2")
    w1i, w1j = pair("w1")
    w2i, w2j = pair("w2")
    num = (
        _same(g1i, g1j, t1i, t1j, phi) * np.sqrt(1.0 / w1i * 1.0 / w1j)
        - _same(g1i, g2j, t1i, t2j, phi) * np.sqrt(1.0 / w1i * 1.0 / w2j)
        - _same(g2i, g1j, t2i, t1j, phi) * np.sqrt(1.0 / w2i * 1.0 / w1j)
        + _same(g2i, g2j, t2i, t2j, phi) * np.sqrt(1.0 / w2i * 1.0 / w2j)
    )
    own = (
        1.0 / p["w1"]
        + 1.0 / p["w2"]
        - 2.0
        * _same(p["grp1"], p["grp2"], p["time1"], p["time2"], phi)
        * np.sqrt(1.0 / p["w1"] * 1.0 / p["w2"])
    )
    den = np.sqrt(own)[:, :, None] * np.sqrt(own)[:, None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(c * num / den, dtype=np.float64)


def _pairs_factor(
    obs: np.ndarray, typ: np.ndarray, rho_obs: FloatArray, rho_type: FloatArray
) -> np.ndarray:
    """c_ij of the module docstring for an (n, m) group of obs and type codes."""
    oi, oj = obs[:, :, None], obs[:, None, :]
    ti, tj = typ[:, :, None], typ[:, None, :]
    within = np.where(oi == oj, 1.0, rho_obs[oi, oj])
    return np.asarray(np.where(ti == tj, within, rho_type[ti, tj]), dtype=np.float64)


def vcalc(
    data: pd.DataFrame | None = None,
    *,
    vi: str | npt.ArrayLike = "vi",
    cluster: str | npt.ArrayLike,
    obs: str | npt.ArrayLike | None = None,
    type: str | npt.ArrayLike | None = None,
    time1: str | npt.ArrayLike | None = None,
    time2: str | npt.ArrayLike | None = None,
    grp1: str | npt.ArrayLike | None = None,
    grp2: str | npt.ArrayLike | None = None,
    w1: str | npt.ArrayLike | None = None,
    w2: str | npt.ArrayLike | None = None,
    rho: Correlation | Sequence[Correlation] | None = None,
    phi: float | None = None,
    subgroup: str | npt.ArrayLike | None = None,
) -> BlockMatrix:
    """The block-diagonal sampling covariance matrix of dependent effect sizes.

    Follows metafor's ``vcalc`` (see the module docstring for the formula).

    Parameters
    ----------
    data
        The table the column names refer to; each argument may instead be an array
        with one value per effect.
    vi
        The sampling variances.
    cluster
        Effects of one cluster (trial) may be correlated; others are independent.
    obs, type
        Observations (e.g. outcome measures) and constructs within a cluster. With
        ``obs`` alone, ``rho`` is the correlation of different observations; with
        ``type`` alone, of different constructs; with both, ``rho`` is a pair
        (within-construct, between-construct). Each correlation may be a number or
        a square matrix labelled by the observations or constructs. With neither,
        effects of one cluster are the same observation (correlation 1 unless the
        groups say otherwise), as in metafor.
    time1, time2, phi
        Time points of group 1 and 2 (``time2`` defaults to ``time1``) and the
        autocorrelation between time points: ``phi ** |t_i - t_j|``.
    grp1, grp2, w1, w2
        The groups an effect compares (group 1 minus group 2) and their sizes. Two
        effects sharing a group (e.g. a control arm) are correlated through it.
        Default: every effect compares its own group 1 with a group 2.
    subgroup
        Effects of different subgroups of a cluster are independent.

    Returns
    -------
    BlockMatrix
        V, block-diagonal by cluster; ``.to_sparse()`` gives a ``scipy.sparse`` array
        and ``.entries()`` its non-zero entries.

    Raises
    ------
    InputError
        A missing cluster, group or time value, a correlation outside [-1, 1], or an
        argument without its partner (``obs`` without ``rho``, ``time1`` without
        ``phi``, ``grp2`` without ``grp1``).
    """
    k = n_rows(data, vi=vi)
    v_all, _ = column_values(data, vi, "vi", k, numeric=True)
    frame = _frame(data, k)
    rows = spreadsheet_rows(frame)
    cl, cl_col = column_values(data, cluster, "cluster", k, numeric=False)
    if subgroup is not None:
        sg, _ = column_values(data, subgroup, "subgroup", k, numeric=False)
        joined = np.empty(k, dtype=object)
        joined[:] = list(zip(cl.tolist(), sg.tolist(), strict=True))
        cl = joined
    _no_missing(cl, "cluster", cl_col, rows)
    if (obs is not None or type is not None) and rho is None:
        raise InputError("give rho with obs or type", fix="e.g. rho=0.6")
    if grp2 is not None and grp1 is None:
        raise InputError("give grp1 with grp2", fix="name the group of each effect's first arm")
    if (time1 is not None or time2 is not None) and phi is None:
        raise InputError("give phi with time1", fix="e.g. phi=0.9")
    if time2 is not None and time1 is None:
        raise InputError("give time1 with time2")
    if phi is not None and abs(phi) > 1.0:
        raise InputError(f"phi must be in [-1, 1], not {phi}")
    parts = _group_arrays(data, k, rows, obs, type, time1, time2, grp1, grp2, w1, w2)
    rho_obs, rho_type = _rho_pair(obs, type, rho)
    obs_codes, obs_labels = _codes(parts.pop("obs"))
    type_codes, type_labels = _codes(parts.pop("type"))
    r_obs = _correlation_matrix(rho_obs, obs_labels, "rho (observations)")
    r_type = _correlation_matrix(rho_type, type_labels, "rho (constructs)")
    blocks = Blocks.from_labels(_codes(cl)[0])
    sd = np.sqrt(v_all)
    values = []
    for index in blocks.rows:
        c = _pairs_factor(obs_codes[index], type_codes[index], r_obs, r_type)
        corr = _block_correlation({n: a[index] for n, a in parts.items()}, phi or 1.0, c)
        s = sd[index]
        values.append(s[:, :, None] * corr * s[:, None, :])
    return BlockMatrix(blocks, tuple(values))


def _no_missing(values: np.ndarray, name: str, column: str | None, rows: np.ndarray) -> None:
    missing = pd.isna(pd.Series(values, dtype=object)).to_numpy()
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        raise InputError(
            f"{name} is missing",
            row=int(rows[first]),
            column=column,
            fix=f"give every effect a {name}",
        )


def _group_arrays(
    data: pd.DataFrame | None,
    k: int,
    rows: np.ndarray,
    obs: Any,
    typ: Any,
    time1: Any,
    time2: Any,
    grp1: Any,
    grp2: Any,
    w1: Any,
    w2: Any,
) -> dict[str, np.ndarray]:
    """Per-effect arrays of every argument, with metafor's defaults filled in."""

    def labels(value: Any, name: str, default: Any) -> np.ndarray:
        if value is None:
            return np.full(k, default, dtype=object)
        out, column = column_values(data, value, name, k, numeric=False)
        _no_missing(out, name, column, rows)
        return out

    def numbers(value: Any, name: str, default: np.ndarray) -> np.ndarray:
        if value is None:
            return default
        out, column = column_values(data, value, name, k, numeric=True)
        _no_missing(out, name, column, rows)
        return out

    g1 = labels(grp1, "grp1", 1)
    g2 = labels(grp2, "grp2", 2)
    codes, _ = _codes(np.concatenate([g1, g2]))
    t1 = numbers(time1, "time1", np.ones(k))
    w_1 = numbers(w1, "w1", np.ones(k))
    return {
        "obs": labels(obs, "obs", 1),
        "type": labels(typ, "type", 1),
        "grp1": codes[:k].astype(np.float64),
        "grp2": codes[k:].astype(np.float64),
        "time1": t1,
        "time2": numbers(time2, "time2", t1),
        "w1": w_1,
        "w2": numbers(w2, "w2", w_1),
    }


def _rho_pair(
    obs: Any, typ: Any, rho: Correlation | Sequence[Correlation] | None
) -> tuple[Correlation | None, Correlation | None]:
    """The within-construct and between-construct correlations, as metafor assigns them."""
    pair = isinstance(rho, list | tuple)
    if obs is not None and typ is not None:
        if not pair or len(rho) != 2:  # type: ignore[arg-type]
            raise InputError(
                "with obs and type, rho must be a pair (within-construct, between-construct)"
            )
        pair_values = list(rho)  # type: ignore[arg-type]
        return pair_values[0], pair_values[1]
    if pair:
        raise InputError("rho must be one correlation unless both obs and type are given")
    if obs is not None:
        return rho, 0.0  # type: ignore[return-value]
    if typ is not None:
        return 0.0, rho  # type: ignore[return-value]
    return 0.0, 0.0
