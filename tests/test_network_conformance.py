"""Conformance with R's netmeta 3.4: every number of every reference file.

Run against another directory of files in the same format with
``METAAN_NETMETA_REFERENCE_DIR=/path/to/dir pytest tests/test_network_conformance.py``.

Each case is fitted twice, from its published ``input`` (arms or comparisons) and from
the comparisons netmeta built (``pairwise``), and every value of every results block
is compared at the project's tolerance (tests/tolerance.py). A key the suite does not
know fails, so new reference files cannot slip by unchecked.

netmeta's REML and ML τ² come from ``metafor::rma.mv``'s optimiser, which stops within
about 1e-8 of the root; metaan solves the score equation to 1e-14. So for those blocks
the suite checks that one Newton step from netmeta's τ² lands on metaan's (the same
root, and netmeta's value within its optimiser's tolerance of it), and compares every
other number at netmeta's τ² (netmeta's ``tau.preset``). A block that is
``{"error": ...}`` (netmeta's fit failed) requires metaan to converge: its τ² must
satisfy the score equation, or sit at 0 with a score that is not positive there.
A comparison netmeta could not compute (NA in ``pairwise``, as from an arm with a
missing number) must be left out by metaan too.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import metaan
from metaan.network import NetworkResult
from metaan.network._basic import likelihood_problem, likelihood_score
from network_reference import FILE_KEYS, NetworkCase, load_cases
from tolerance import assert_close

LIKELIHOOD = ("REML", "ML")
METHODS = ("DL", *LIKELIHOOD)
MATRICES = ("TE", "seTE", "lower", "upper", "pval")
NETSPLIT = {
    "direct": "direct",
    "direct_se": "direct_se",
    "indirect": "indirect",
    "indirect_se": "indirect_se",
    "diff": "diff",
    "diff_p": "pval",
}
#: How close netmeta's optimiser gets to the root of the score equation.
OPTIMISER_RTOL = 1e-6
#: How close metaan's τ² is to the root: the Newton step from it, relative to τ².
ROOT_RTOL = 1e-10

SourceKind = str


def fit(
    case: NetworkCase, kind: SourceKind, method: str, block: dict[str, Any], tau2: float | None
) -> NetworkResult:
    """Fit a case from its input or from netmeta's comparisons."""
    small = block.get("small_values", "desirable")
    reference = block.get("reference") or case.raw.get("reference_group")
    common = {
        "measure": case.measure,
        "method": method,
        "tau2": tau2,
        "reference": reference,
        "small_values": small,
    }
    if kind == "pairwise":
        return metaan.fit_network(case.pairwise, study="studlab", yi="TE", sei="seTE", **common)
    roles = case.roles()
    if case.arm_level:
        arms = {r: roles[r] for r in ("events", "n", "mean", "sd") if r in roles}
        return metaan.fit_network(
            case.input, study=roles["study"], treatment=roles["treatment"], **arms, **common
        )
    return metaan.fit_network(
        case.input,
        study=roles["study"],
        treat1=roles["treat1"],
        treat2=roles["treat2"],
        yi=roles["yi"],
        sei=roles["sei"],
        **common,
    )


def score_at(res: NetworkResult, tau2: float) -> tuple[float, float]:
    problem = likelihood_problem(res.contrasts, res.index(res.reference))
    return likelihood_score(problem, tau2, reml=res.method == "REML")


def check_converged(res: NetworkResult, what: str) -> None:
    """metaan's τ² solves the score equation, or is 0 with a non-positive score there."""
    assert res.tau2 is not None, f"{what}: no tau2"
    if res.tau2 == 0.0:
        score, _ = score_at(res, 0.0)
        assert score <= 0.0, f"{what}: tau2 = 0 but the score there is {score}"
        return
    score, hessian = score_at(res, res.tau2)
    assert hessian < 0.0, f"{what}: tau2 = {res.tau2} is not a maximum (Hessian {hessian})"
    step = abs(score / hessian)
    assert step <= ROOT_RTOL * res.tau2, f"{what}: a Newton step of {step} from {res.tau2}"


def check_likelihood_tau2(res: NetworkResult, expected: float, what: str) -> None:
    """netmeta's τ² is the same root as metaan's, within its optimiser's tolerance."""
    check_converged(res, what)
    assert res.tau2 is not None
    if expected == 0.0:
        assert res.tau2 == 0.0, f"{what}: netmeta's tau2 is 0, metaan's {res.tau2}"
        return
    score, hessian = score_at(res, expected)
    assert_close(res.tau2, expected - score / hessian, f"{what}: Newton step from netmeta's tau2")
    assert abs(res.tau2 - expected) <= OPTIMISER_RTOL * expected, f"{what}: tau2"


def check_matrices(res: NetworkResult, expected: dict[str, Any], model: str, what: str) -> None:
    est = res.estimates(model)
    for key, value in expected.items():
        assert key in MATRICES, f"{what}: unknown key {model}.{key}"
        assert_close(getattr(est, key), value, f"{what} {model}.{key}")


def check_netsplit(res: NetworkResult, expected: dict[str, Any], model: str, what: str) -> None:
    split = res.netsplit.estimates(model)
    assert list(res.netsplit.comparisons) == expected["comparison"], f"{what}: comparisons"
    for key, value in expected.items():
        if key == "comparison":
            continue
        assert key in NETSPLIT, f"{what}: unknown key netsplit_{model}.{key}"
        assert_close(getattr(split, NETSPLIT[key]), value, f"{what} netsplit_{model}.{key}")


def _scalars(res: NetworkResult) -> dict[str, Any]:
    dec = res.decomposition
    return {
        "k": res.k,
        "m": res.m,
        "n": res.n,
        "d": res.d,
        "I2": None if res.I2 is None else res.I2 / 100.0,
        "Q": res.Q,
        "df_Q": res.df_Q,
        "pval_Q": res.pval_Q,
        "Q_heterogeneity": None if dec is None else dec.Q_within,
        "df_Q_heterogeneity": None if dec is None else dec.df_within,
        "pval_Q_heterogeneity": None if dec is None else dec.pval_within,
        "Q_inconsistency": None if dec is None else dec.Q_between,
        "df_Q_inconsistency": None if dec is None else dec.df_between,
        "pval_Q_inconsistency": None if dec is None else dec.pval_between,
    }


def check_block(res: NetworkResult, block: dict[str, Any], what: str) -> None:
    """Every key of a results block (τ² is checked by the caller)."""
    scalars = _scalars(res)
    for key, value in block.items():
        if key == "tau2":
            continue
        if key == "treatments":
            assert list(res.treatments) == value, f"{what}: treatments in R's order"
        elif key == "reference":
            assert res.reference == value, what
        elif key == "small_values":
            assert res.small_values == ("good" if value == "desirable" else "bad"), what
        elif key in ("common", "random"):
            check_matrices(res, value, key, what)
        elif key.startswith("pscore_"):
            est = res.estimates(key.removeprefix("pscore_"))
            got = dict(zip(res.treatments, est.pscore, strict=True))
            assert set(got) == set(value), f"{what}: {key} treatments"
            assert_close([got[t] for t in value], list(value.values()), f"{what} {key}")
        elif key.startswith("netsplit_"):
            check_netsplit(res, value, key.removeprefix("netsplit_"), what)
        elif key in scalars:
            assert_close(scalars[key], value, f"{what} {key}")
        else:
            pytest.fail(f"{what}: the suite does not know the key {key!r}")


def check_case_block(case: NetworkCase, kind: SourceKind, method: str) -> None:
    """Check one results block of a case, fitted from ``kind`` (input or pairwise)."""
    assert method in METHODS, f"{case.name}: the suite does not know the method {method!r}"
    block = case.raw["results"][method]
    what = f"{case.name} {method} from {kind}"
    if set(block) == {"error"}:
        check_converged(fit(case, kind, method, {}, None), what)
        return
    estimated = fit(case, kind, method, block, None)
    if method in LIKELIHOOD:
        check_likelihood_tau2(estimated, block["tau2"], what)
        res = fit(case, kind, method, block, block["tau2"])
    else:
        assert_close(estimated.tau2, block["tau2"], f"{what} tau2")
        res = estimated
    check_block(res, block, what)


def _block_ids() -> list[tuple[NetworkCase, str, str]]:
    out = []
    for case in load_cases():
        for method in case.raw["results"]:
            for kind in ("input", "pairwise"):
                out.append((case, kind, method))
    return out


@pytest.mark.parametrize(
    ("case", "kind", "method"),
    _block_ids(),
    ids=[f"{c.name}-{m}-{k}" for c, k, m in _block_ids()],
)
def test_every_value_of_every_block_matches_netmeta(
    case: NetworkCase, kind: SourceKind, method: str
) -> None:
    check_case_block(case, kind, method)


@pytest.mark.parametrize("case", load_cases(), ids=lambda c: c.name)
def test_every_file_key_is_known(case: NetworkCase) -> None:
    check_file_keys(case)


def check_file_keys(case: NetworkCase) -> None:
    assert set(case.raw) <= FILE_KEYS, f"{case.name}: unknown keys {set(case.raw) - FILE_KEYS}"
    case.roles()  # an input column the suite cannot place fails here


PAIRWISE_KEYS = frozenset({"studlab", "treat1", "treat2", "TE", "seTE"})


def check_pairwise(case: NetworkCase) -> None:
    """metaan.pairwise gives netmeta's comparisons from the arms. A comparison netmeta
    could not compute (TE or seTE NA, as from an arm with a missing number) must be
    absent from metaan's or without an effect; every other one must match."""
    roles = case.roles()
    arms = {r: roles[r] for r in ("events", "n", "mean", "sd") if r in roles}
    got = metaan.pairwise(
        case.input,
        measure=case.measure,
        study=roles["study"],
        treatment=roles["treatment"],
        **arms,
    )
    ours = {
        (str(s), a, b): (y, se)
        for s, a, b, y, se in zip(got.study, got.treat1, got.treat2, got.yi, got.sei, strict=True)
        if math.isfinite(y) and math.isfinite(se)
    }
    matched = set()
    for row in case.raw["pairwise"]:
        assert set(row) <= PAIRWISE_KEYS, f"{case.name}: unknown pairwise keys in {row}"
        s, a, b = str(row["studlab"]), row["treat1"], row["treat2"]
        key, sign = ((s, a, b), 1.0) if (s, a, b) in ours else ((s, b, a), -1.0)
        what = f"{case.name} pairwise {s} {a}:{b}"
        if row["TE"] is None or row["seTE"] is None:
            assert key not in ours, f"{what}: NA in netmeta, {ours.get(key)} in metaan"
            continue
        assert key in ours, f"{what}: netmeta has this comparison, metaan does not"
        matched.add(key)
        y, se = ours[key]
        assert_close(sign * y, row["TE"], f"{what} TE")
        assert_close(se, row["seTE"], f"{what} seTE")
    extra = sorted(set(ours) - matched)
    assert not extra, f"{case.name}: comparisons netmeta does not have: {extra}"


@pytest.mark.parametrize("case", [c for c in load_cases() if c.arm_level], ids=lambda c: c.name)
def test_pairwise_builds_netmeta_s_comparisons_from_the_arms(case: NetworkCase) -> None:
    check_pairwise(case)


def test_the_suite_requires_convergence_where_netmeta_failed() -> None:
    case = next(c for c in load_cases() if "REML" in c.raw["results"])
    failed = {**case.raw, "results": {"REML": {"error": "Optimizer (nlminb) did not converge"}}}
    check_case_block(NetworkCase(case.name, failed), "pairwise", "REML")
    res = fit(case, "pairwise", "REML", {}, None)
    assert res.tau2 is not None and res.tau2 > 0
    # A τ² off the root by one part in 1e6 is refused.
    with pytest.raises(AssertionError, match="Newton step"):
        check_converged(fit(case, "pairwise", "REML", {}, res.tau2 * (1 + 1e-6)), "perturbed")


def test_the_suite_fails_on_a_key_it_does_not_know() -> None:
    case = load_cases()[0]
    method = next(iter(case.raw["results"]))
    block = {**case.raw["results"][method], "Q_new_statistic": 1.0}
    changed = {**case.raw, "results": {method: block}}
    with pytest.raises(pytest.fail.Exception, match="does not know the key"):
        check_case_block(NetworkCase(case.name, changed), "pairwise", method)


def test_the_suite_catches_a_changed_value() -> None:
    case = load_cases()[0]
    block = dict(case.raw["results"]["DL"])
    te = [list(row) for row in block["random"]["TE"]]
    te[0][1] *= 1 + 1e-7
    block["random"] = {**block["random"], "TE": te}
    changed = {**case.raw, "results": {"DL": block}}
    with pytest.raises(AssertionError, match=r"random\.TE"):
        check_case_block(NetworkCase(case.name, changed), "pairwise", "DL")


def test_tau2_at_the_boundary_needs_a_non_positive_score() -> None:
    """A network without heterogeneity: REML's τ² sits at 0, which the suite accepts
    only with a score that is not positive there."""
    case = load_cases()[0]
    pw = case.pairwise.copy()
    fitted = metaan.fit_network(pw, study="studlab", yi="TE", sei="seTE", measure=case.measure)
    # Put every comparison on the common-effect fit: Q = 0, no heterogeneity.
    index = {t: i for i, t in enumerate(fitted.treatments)}
    theta = fitted.common.TE[:, 0]
    pw["TE"] = [
        theta[index[a]] - theta[index[b]] for a, b in zip(pw.treat1, pw.treat2, strict=True)
    ]
    res = metaan.fit_network(
        pw, study="studlab", yi="TE", sei="seTE", measure=case.measure, method="REML"
    )
    assert res.tau2 == 0.0
    check_converged(res, "homogeneous network")
    assert math.isclose(res.Q, 0.0, abs_tol=1e-18)
    np.testing.assert_allclose(res.random.TE, res.common.TE, rtol=0, atol=1e-15)


def check_directory() -> None:
    """Everything the suite checks, over the files of the reference directory."""
    for case in load_cases():
        check_file_keys(case)
        for method in case.raw["results"]:
            for kind in ("input", "pairwise"):
                check_case_block(case, kind, method)
        if case.arm_level:
            check_pairwise(case)


def _with_directory(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAAN_NETMETA_REFERENCE_DIR", str(directory))
    load_cases.cache_clear()
    try:
        check_directory()
    finally:
        load_cases.cache_clear()


def _smoking_with_a_missing_arm_and_a_failed_reml() -> dict[str, Any]:
    """Hasselblad (1998) with a third arm in study 1 whose events are missing, so that
    netmeta's comparisons with it are NA and dropped (its numbers do not move), and
    REML as a block where netmeta's fit failed."""
    case = next(c for c in load_cases() if c.name == "hasselblad1998_OR")
    raw = copy.deepcopy(case.raw)
    first = raw["input"][0]
    raw["input"].append({**first, "id": 51, "trt": "self_help", "xi": None, "ni": 120})
    for other in ("no_contact", "ind_counseling"):
        missing = {"studlab": "1", "treat1": other, "treat2": "self_help"}
        raw["pairwise"].append(missing | {"TE": None, "seTE": None})
    raw["results"]["REML"] = {"error": "Optimizer (nlminb) did not converge"}
    return raw


def _homogeneous_pair() -> dict[str, Any]:
    """Two trials of A vs B with the same effect: Q = 0 and τ² = 0 by DL and REML (on
    the boundary), the common effect 0.2 with SE 1/sqrt(1/0.1² + 1/0.2²), exactly."""
    rows = [
        {"studlab": "s1", "treat1": "A", "treat2": "B", "TE": 0.2, "seTE": 0.1},
        {"studlab": "s2", "treat1": "A", "treat2": "B", "TE": 0.2, "seTE": 0.2},
    ]
    se = 1.0 / math.sqrt(100.0 + 25.0)
    p = math.erfc(0.2 / se / math.sqrt(2.0))
    block = {
        "treatments": ["A", "B"],
        "reference": "A",
        "k": 2,
        "m": 2,
        "n": 2,
        "d": 1,
        "tau2": 0.0,
        "I2": 0.0,
        "Q": 0.0,
        "df_Q": 1,
        "pval_Q": 1.0,
        "common": {"TE": [[0.0, 0.2], [-0.2, 0.0]], "seTE": [[0.0, se], [se, 0.0]]},
        "random": {"TE": [[0.0, 0.2], [-0.2, 0.0]], "pval": [[None, p], [p, None]]},
    }
    return {
        "case": "homogeneous_pair_MD",
        "sm": "MD",
        "reference_group": "A",
        "input": rows,
        "pairwise": rows,
        "results": {"DL": block, "REML": dict(block)},
    }


def test_another_directory_with_missing_rows_a_failed_block_and_a_boundary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {
        "smoking_missing_arm_OR.json": _smoking_with_a_missing_arm_and_a_failed_reml(),
        "homogeneous_pair_MD.json": _homogeneous_pair(),
    }
    for name, raw in files.items():
        (tmp_path / name).write_text(json.dumps(raw), encoding="utf-8")
    _with_directory(tmp_path, monkeypatch)


def test_another_directory_fails_on_a_key_it_does_not_know(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = _homogeneous_pair()
    (tmp_path / "pair.json").write_text(json.dumps({**raw, "comment": "x"}), encoding="utf-8")
    with pytest.raises(AssertionError, match=r"unknown keys \{'comment'\}"):
        _with_directory(tmp_path, monkeypatch)
    raw["results"]["DL"]["common"]["lower_predict"] = [[0.0, 0.0], [0.0, 0.0]]
    (tmp_path / "pair.json").write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(AssertionError, match=r"unknown key common\.lower_predict"):
        _with_directory(tmp_path, monkeypatch)
