"""The block-diagonal GLS core: likelihoods and exact derivatives.

Checked against metafor's ``rma.mv`` at its reported optimum (tests/reference/
metafor-mv): at the reference variance components the core must give metafor's
coefficients, standard errors and (restricted) log-likelihood. The derivatives are
checked against central differences of the log-likelihood itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from metaan._gls import (
    BlockMatrix,
    Blocks,
    NotPositiveDefiniteError,
    gls,
    likelihood_derivatives,
)

MV = Path(__file__).parent / "reference" / "metafor-mv"

#: The references' variance components are accurate to about 1e-7 relative (see
#: tests/reference/metafor-mv/README.md); a log-likelihood at them is then exact to
#: second order, coefficients and standard errors to about that accuracy.
LOGLIK_RTOL = 1e-12
COEF_RTOL = 1e-6


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((MV / f"{name}.json").read_text(encoding="utf-8"))
    return data


def _column(case: dict[str, Any], name: str) -> np.ndarray:
    return np.array([row[name] for row in case["data"]])


def _sampling_covariance(case: dict[str, Any], blocks: Blocks) -> BlockMatrix:
    entries = np.array(case["V"], dtype=float)
    return BlockMatrix.from_entries(
        blocks, entries[:, 0].astype(int), entries[:, 1].astype(int), entries[:, 2]
    )


def _nested(case: dict[str, Any], outer: str) -> tuple[Blocks, list[BlockMatrix]]:
    labels = _column(case, outer)
    blocks = Blocks.from_labels(labels)
    rows = np.arange(len(labels))
    return blocks, [BlockMatrix.indicator(blocks, labels), BlockMatrix.indicator(blocks, rows)]


def _check_fit(fit: Any, ref: dict[str, Any], reml: bool) -> None:
    assert fit.loglik(reml=reml) == pytest.approx(ref["loglik"], rel=LOGLIK_RTOL)
    np.testing.assert_allclose(fit.beta, np.atleast_1d(ref["b"]), rtol=COEF_RTOL)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.vcov)), np.atleast_1d(ref["se"]), rtol=COEF_RTOL)


@pytest.mark.parametrize("key", ["REML_z", "ML_z"])
def test_a_three_level_model_reproduces_metafor_at_its_optimum(key: str) -> None:
    case = _load("konstantopoulos2011")
    blocks, Z = _nested(case, "district")
    S = BlockMatrix.diagonal(blocks, _column(case, "vi"))
    X = np.ones((len(case["data"]), 1))
    ref = case["results"][key]
    fit = gls(_column(case, "yi"), X, S.combine(ref["sigma2"], Z))
    _check_fit(fit, ref, key.startswith("REML"))
    assert gls(_column(case, "yi"), X, S).Q == pytest.approx(ref["QE"], rel=1e-12)


@pytest.mark.parametrize("key", ["REML_z", "ML_z"])
def test_correlated_and_hierarchical_effects_reproduce_metafor(key: str) -> None:
    case = _load("assink2016_che")
    blocks, Z = _nested(case, "study")
    S = _sampling_covariance(case, blocks)
    deltype = _column(case, "deltype")
    X = np.column_stack([np.ones(len(deltype)), deltype == "general", deltype == "overt"])
    ref = case["results"][key]
    fit = gls(_column(case, "yi"), X.astype(float), S.combine(ref["sigma2"], Z))
    _check_fit(fit, ref, key.startswith("REML"))


def _outcome_patterns(blocks: Blocks, outcome: np.ndarray) -> list[BlockMatrix]:
    """tau^2 of each outcome, then their covariance, as block patterns."""
    al, pd_ = (blocks.gather((outcome == name).astype(float)) for name in ("AL", "PD"))

    def outer(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...], both: bool) -> BlockMatrix:
        values = []
        for x, y in zip(a, b, strict=True):
            m = x[:, :, None] * y[:, None, :]
            values.append(m + np.swapaxes(m, 1, 2) if both else m)
        return BlockMatrix(blocks, tuple(values))

    return [outer(al, al, False), outer(pd_, pd_, False), outer(al, pd_, True)]


@pytest.mark.parametrize("key", ["REML_UN", "ML_UN"])
def test_an_unstructured_multivariate_model_reproduces_metafor(key: str) -> None:
    case = _load("berkey1998")
    blocks = Blocks.from_labels(_column(case, "trial"))
    outcome = _column(case, "outcome")
    X = np.column_stack([outcome == "AL", outcome == "PD"]).astype(float)
    ref = case["results"][key]
    t1, t2 = ref["tau2"]
    theta = [t1, t2, ref["rho"] * np.sqrt(t1 * t2)]
    S = _sampling_covariance(case, blocks)
    fit = gls(_column(case, "yi"), X, S.combine(theta, _outcome_patterns(blocks, outcome)))
    _check_fit(fit, ref, key.startswith("REML"))


@pytest.mark.parametrize("reml", [True, False])
def test_the_score_and_hessian_are_the_derivatives_of_the_log_likelihood(reml: bool) -> None:
    case = _load("assink2016_che")
    blocks, Z = _nested(case, "study")
    S = _sampling_covariance(case, blocks)
    X = np.column_stack([np.ones(len(case["data"])), _column(case, "year")])
    y = _column(case, "yi")
    theta = np.array([0.07, 0.11])
    at = gls(y, X, S.combine(list(theta), Z))
    der = likelihood_derivatives(at, X, Z, reml=reml)
    h = 1e-5
    for j in range(2):
        step = np.zeros(2)
        step[j] = h
        up = gls(y, X, S.combine(list(theta + step), Z))
        down = gls(y, X, S.combine(list(theta - step), Z))
        slope = (up.loglik(reml=reml) - down.loglik(reml=reml)) / (2 * h)
        assert der.score[j] == pytest.approx(slope, rel=1e-6)
        curvature = (
            likelihood_derivatives(up, X, Z, reml=reml).score
            - likelihood_derivatives(down, X, Z, reml=reml).score
        ) / (2 * h)
        np.testing.assert_allclose(der.hessian[j], curvature, rtol=1e-6)
    # The expected information is positive definite and differs from the observed.
    assert np.all(np.linalg.eigvalsh(der.information) > 0)
    assert not np.allclose(der.information, -der.hessian)


def test_blocks_keep_rows_in_order_and_number_blocks_by_first_appearance() -> None:
    blocks = Blocks.from_labels(["b", "a", "b", "c", "a", "b"])
    assert blocks.n_blocks == 3
    np.testing.assert_array_equal(blocks.block_of_row(), [0, 1, 0, 2, 1, 0])
    assert blocks.sizes == (1, 2, 3)
    x = np.arange(6.0)
    np.testing.assert_array_equal(blocks.scatter(blocks.gather(x)), x)


def test_entries_round_trip_and_the_sparse_form_is_the_dense_matrix() -> None:
    case = _load("assink2016_che")
    blocks = Blocks.from_labels(_column(case, "study"))
    S = _sampling_covariance(case, blocks)
    r, c, v = S.entries()
    entries = np.array(case["V"], dtype=float)
    order = np.lexsort((entries[:, 1], entries[:, 0]))
    np.testing.assert_array_equal(r, entries[order, 0])
    np.testing.assert_array_equal(c, entries[order, 1])
    np.testing.assert_array_equal(v, entries[order, 2])
    dense = S.to_sparse().toarray()  # type: ignore[attr-defined]
    assert np.array_equal(dense, dense.T)
    np.testing.assert_array_equal(np.diag(dense), S.diagonal_values())


def test_an_entry_across_two_blocks_is_refused() -> None:
    blocks = Blocks.from_labels([1, 1, 2])
    with pytest.raises(ValueError, match="different blocks"):
        BlockMatrix.from_entries(blocks, [0, 1], [1, 2], [0.1, 0.2])


def test_a_covariance_block_that_is_not_positive_definite_is_named() -> None:
    blocks = Blocks.from_labels([1, 1, 2, 2])
    V = BlockMatrix.from_entries(
        blocks, [0, 1, 0, 2, 3, 2], [0, 1, 1, 2, 3, 3], [1, 1, 0.5, 1, 1, 2]
    )
    with pytest.raises(NotPositiveDefiniteError) as caught:
        gls(np.zeros(4), np.ones((4, 1)), V)
    assert caught.value.block == 1
