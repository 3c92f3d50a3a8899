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
    Evaluator,
    Factor,
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


def _three_levels(seed: int, dense: bool) -> tuple[np.ndarray, np.ndarray, BlockMatrix, list]:
    """Effects in studies, clusters within studies and single effects, with blocks
    of one row too; S diagonal or correlated within clusters."""
    rng = np.random.default_rng(seed)
    sizes = np.array([1, 1, 2, 3, 5, 5, 8, 4, 1, 6])
    study = np.repeat(np.arange(sizes.size), sizes)
    cluster = np.concatenate([np.arange(s) // 2 for s in sizes])
    k = study.size
    blocks = Blocks.from_labels(study)
    v = rng.uniform(0.02, 0.3, k)
    if dense:
        i, j = np.triu_indices(k)
        same = (study[i] == study[j]) & (cluster[i] == cluster[j])
        x = np.where(i == j, v[i], 0.5 * np.sqrt(v[i] * v[j]))[same]
        S = BlockMatrix.from_entries(blocks, i[same], j[same], x)
    else:
        S = BlockMatrix.diagonal(blocks, v)
    inner = study * 100 + cluster
    Z = [
        BlockMatrix.indicator(blocks, study),
        BlockMatrix.indicator(blocks, inner),
        BlockMatrix.indicator(blocks, np.arange(k)),
    ]
    X = np.column_stack([np.ones(k), rng.normal(size=k)])
    y = X @ [0.3, 0.1] + rng.normal(0, 0.4, k)
    return y, X, S, Z


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("reml", [True, False])
def test_the_closed_form_inverse_of_nested_intercepts_equals_the_factorisation(
    dense: bool, reml: bool
) -> None:
    y, X, S, Z = _three_levels(3, dense)
    closed = Evaluator(y, X, S, Z, nested=True)
    general = Evaluator(y, X, S, Z)
    assert closed.nested is not None and general.nested is None
    for theta in ([0.05, 0.02, 0.03], [0.0, 0.1, 0.0], [0.2, 0.0, 0.01]):
        t = np.array(theta)
        fit_a, der_a = closed.evaluate(t, np.zeros(2), reml=reml, derivatives=True)
        fit_b, der_b = general.evaluate(t, np.zeros(2), reml=reml, derivatives=True)
        assert fit_a.loglik(reml=reml) == pytest.approx(fit_b.loglik(reml=reml), rel=1e-12)
        np.testing.assert_allclose(fit_a.beta, fit_b.beta, rtol=1e-11)
        np.testing.assert_allclose(fit_a.vcov, fit_b.vcov, rtol=1e-11)
        for a, b in zip(fit_a.V_inv.values, fit_b.V_inv.values, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
        assert der_a is not None and der_b is not None
        np.testing.assert_allclose(der_a.score, der_b.score, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(der_a.hessian, der_b.hessian, rtol=1e-9)
        np.testing.assert_allclose(der_a.information, der_b.information, rtol=1e-9)


def test_the_closed_form_is_not_used_where_s_links_rows_of_different_inner_units() -> None:
    y, X, S, Z = _three_levels(4, True)  # S correlates pairs of rows (the clusters)
    blocks = S.blocks
    # Studies plus an effect per row (absorbed into S): S lies within the studies.
    assert Evaluator(y, X, S, [Z[0], Z[2]], nested=True).nested is not None
    # Studies plus units of alternate rows: S joins rows of two different units.
    odd = BlockMatrix.indicator(blocks, np.arange(blocks.k) % 2)
    assert Evaluator(y, X, S, [Z[0], odd], nested=True).nested is None


def test_one_pass_gives_the_derivatives_of_the_separate_fit() -> None:
    y, X, S, Z = _three_levels(5, True)
    theta = np.array([0.04, 0.03, 0.02])
    fit, der = Evaluator(y, X, S, Z).evaluate(
        theta, np.array([5.0, -3.0]), reml=True, derivatives=True
    )
    alone = gls(y, X, S.combine(list(theta), Z))
    reference = likelihood_derivatives(alone, X, Z, reml=True)
    assert fit.loglik(reml=True) == pytest.approx(alone.loglik(reml=True), rel=1e-12)
    np.testing.assert_allclose(fit.resid, alone.resid, rtol=1e-10, atol=1e-13)
    assert der is not None
    np.testing.assert_allclose(der.score, reference.score, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(der.hessian, reference.hessian, rtol=1e-9)


def test_patterns_are_factored_exactly() -> None:
    blocks = Blocks.from_labels([1, 1, 1, 2, 2, 2])
    outcome = np.array([0, 1, 0, 1, 1, 0])
    for labels in (np.arange(6), [1, 1, 2, 3, 3, 3], outcome):
        Z = BlockMatrix.indicator(blocks, labels)
        f = Factor.of(Z.values[0])
        L = np.broadcast_to(np.eye(3), (2, 3, 3)) if f.L is None else f.L
        R = np.broadcast_to(np.eye(3), (2, 3, 3)) if f.R is None else f.R
        np.testing.assert_array_equal(L @ np.swapaxes(R, 1, 2), Z.values[0])
        assert f.units
    parts = (
        blocks.gather((outcome == 0).astype(float))[0],
        blocks.gather((outcome == 1).astype(float))[0],
    )
    cross = parts[0][:, :, None] * parts[1][:, None, :]
    E = cross + np.swapaxes(cross, 1, 2)  # covariance of two outcomes: not an indicator
    f = Factor.of(E)
    assert not f.units and f.R is None
    only_a = Factor.of(parts[0][:, :, None] * parts[0][:, None, :])
    assert only_a.L is not None and only_a.L.shape[2] == 1 and not only_a.units
