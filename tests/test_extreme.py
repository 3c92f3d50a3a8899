"""Extreme inputs: solved as mpmath solves them, or refused with one message.

The numerical range is documented in the README ("Numerical range") and set in
:mod:`metaan.estimators` (MAX_EFFECT, MIN_VARIANCE, MAX_VARIANCE,
MIN_RELATIVE_VARIANCE, MAX_DOMINANCE).
"""

from __future__ import annotations

import math
from pathlib import Path

import mpmath
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import metaan
from metaan.cli import main
from metaan.errors import InputError

SPAN_V = 10.0 ** np.linspace(-8, 8, 12)
SPAN_Y = 0.1 + 0.05 * np.arange(12) + np.random.default_rng(0).normal(0, 0.1, 12)

#: name: (yi, vi, refused under EE as well)
OUT_OF_RANGE = {
    "effects of +-1.7e308": ([1.7e308, -1.7e308, 1e308, -5e307, 1.2e308, -1.1e308],
                             [0.1, 0.2, 0.1, 0.3, 0.2, 0.1], True),
    "effects of 1e300 with variances of 1e-300": ([1e300, 1.1e300, 9e299, 1.05e300, 9.5e299, 1e300],
                                                  [1e-300, 2e-300, 1e-300, 3e-300, 1e-300, 2e-300],
                                                  True),
    "a denormal variance": ([0.1, 0.3, 0.2, 0.25, 0.15, 0.35],
                            [5e-324, 0.01, 0.02, 0.03, 0.01, 0.02], True),
    "one study outweighing the rest 1e15 times": ([0.1, 0.3, 0.2, 0.25, 0.15, 0.35],
                                                  [1e-8, 1e8, 1e8, 1e8, 1e8, 1e8], False),
}  # fmt: skip
COMMANDS = {
    "fit": ["fit"],
    "fit EE": ["fit", "--method", "EE"],
    "bias": ["bias"],
    "sensitivity": ["sensitivity"],
    "fit --mods": ["fit", "--mods", "x"],
    "fit --subgroup": ["fit", "--subgroup", "g"],
}


def _csv(tmp_path: Path, yi: list[float] | np.ndarray, vi: list[float] | np.ndarray) -> str:
    path = tmp_path / "studies.csv"
    lines = ["study,yi,vi,x,g"]
    lines += [f"s{i + 1},{float(y)!r},{float(v)!r},{i},{'ab'[i % 2]}"
              for i, (y, v) in enumerate(zip(yi, vi, strict=True))]  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("case", list(OUT_OF_RANGE))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_data_beyond_the_numerical_range_are_refused_in_one_line_by_every_command(
    tmp_path: Path, case: str, command: str
) -> None:
    yi, vi, refused_under_ee = OUT_OF_RANGE[case]
    path = _csv(tmp_path, yi, vi)
    code, out, err = _run(*COMMANDS[command][:1], path, "--yi", "yi", "--vi", "vi",
                          *COMMANDS[command][1:])  # fmt: skip
    if command == "fit EE" and not refused_under_ee:
        assert code == 0, err
        return
    assert code == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("metaan: error:"), err
    assert "Numerical range" in lines[0] and "Traceback" not in err


@pytest.mark.parametrize("case", list(OUT_OF_RANGE))
def test_the_api_refuses_the_same_data_with_an_input_error(case: str) -> None:
    yi, vi, refused_under_ee = OUT_OF_RANGE[case]
    with pytest.raises(InputError, match="metaan fits"):
        metaan.fit(yi=np.array(yi), vi=np.array(vi))
    if refused_under_ee:
        with pytest.raises(InputError, match="metaan fits"):
            metaan.fit(yi=np.array(yi), vi=np.array(vi), method="EE")
    table = pd.DataFrame({"yi": yi, "vi": vi, "x": np.arange(len(yi), dtype=float)})
    with pytest.raises(InputError, match="metaan fits"):
        metaan.fit_regression(table, mods=["x"])


def test_fit_many_names_the_group_beyond_the_range_and_fits_the_others() -> None:
    yi, vi, _ = OUT_OF_RANGE["effects of +-1.7e308"]
    table = pd.DataFrame({"g": ["far"] * 6 + ["near"] * 12,
                          "yi": [*yi, *SPAN_Y], "vi": [*vi, *SPAN_V]})  # fmt: skip
    many = metaan.fit_many(table, by="g").set_index("g")
    assert "metaan fits effects between" in many.loc["far", "error"]
    assert math.isnan(many.loc["far", "estimate"])
    assert many.loc["near", "error"] == ""
    assert many.loc["near", "estimate"] == pytest.approx(metaan.fit(yi=SPAN_Y, vi=SPAN_V).estimate,
                                                         rel=1e-12)  # fmt: skip


# --------------------------------------------------------------------------------------
# Sampling variances spanning 1e-8..1e8: solved, as mpmath solves them


def _mp(values: np.ndarray) -> list[mpmath.mpf]:
    return [mpmath.mpf(float(x)) for x in values]


def _score(y: np.ndarray, v: np.ndarray, X: np.ndarray, t: mpmath.mpf, method: str) -> tuple:
    """The estimating equation at t and the coefficients, at 50 digits."""
    W = mpmath.diag([1 / (vi + t) for vi in _mp(v)])
    Xm, ym = mpmath.matrix(X.tolist()), mpmath.matrix(_mp(y))
    A_inv = (Xm.T * W * Xm) ** -1
    P = W - W * Xm * A_inv * Xm.T * W
    Py = P * ym
    b = A_inv * Xm.T * W * ym
    if method == "REML":
        trace = sum(P[i, i] for i in range(len(y)))
        return (Py.T * Py)[0] - trace, b
    if method == "ML":
        return (Py.T * Py)[0] - sum(W[i, i] for i in range(len(y))), b
    return (ym.T * Py)[0] - (len(y) - X.shape[1]), b  # PM


def _solve_mp(y: np.ndarray, v: np.ndarray, X: np.ndarray, method: str) -> tuple:
    mpmath.mp.dps = 50
    if _score(y, v, X, mpmath.mpf(0), method)[0] <= 0:
        return mpmath.mpf(0), _score(y, v, X, mpmath.mpf(0), method)[1]
    lo, hi = mpmath.mpf(0), mpmath.mpf(1)
    while _score(y, v, X, hi, method)[0] > 0:
        hi *= 4
    for _ in range(120):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _score(y, v, X, mid, method)[0] > 0 else (lo, mid)
    t = (lo + hi) / 2
    return t, _score(y, v, X, t, method)[1]


@pytest.mark.parametrize("method", ["REML", "ML", "PM"])
def test_variances_spanning_sixteen_orders_are_solved_as_mpmath_solves_them(method: str) -> None:
    X = np.ones((12, 1))
    tau2, b = _solve_mp(SPAN_Y, SPAN_V, X, method)
    res = metaan.fit(yi=SPAN_Y, vi=SPAN_V, method=method)
    assert res.tau2 == pytest.approx(float(tau2), rel=1e-10, abs=1e-300)
    assert res.estimate == pytest.approx(float(b[0]), rel=1e-10)
    assert res.ci_lb < res.estimate < res.ci_ub
    assert res.QE > 1000 and res.QEp < 1e-100  # heterogeneous, not overflowed to 0 and 1


def test_a_meta_regression_on_variances_spanning_sixteen_orders_matches_mpmath() -> None:
    X = np.column_stack([np.ones(12), np.arange(12.0)])
    tau2, b = _solve_mp(SPAN_Y, SPAN_V, X, "REML")
    table = pd.DataFrame({"yi": SPAN_Y, "vi": SPAN_V, "x": np.arange(12.0)})
    reg = metaan.fit_regression(table, mods=["x"], method="REML")
    assert reg.tau2 == pytest.approx(float(tau2), rel=1e-9)
    np.testing.assert_allclose(reg.coef, [float(b[0]), float(b[1])], rtol=1e-9)
    assert np.all((reg.ci_lb < reg.coef) & (reg.coef < reg.ci_ub))


def test_subgroups_on_variances_spanning_sixteen_orders_match_mpmath() -> None:
    table = pd.DataFrame({"yi": SPAN_Y, "vi": SPAN_V, "g": ["a", "b"] * 6})
    sub = metaan.fit_subgroups(table, by="g", method="REML")
    for name in ("a", "b"):
        part = table[table["g"] == name]
        tau2, b = _solve_mp(part["yi"].to_numpy(), part["vi"].to_numpy(), np.ones((6, 1)), "REML")
        fitted = metaan.fit(part, method="REML")
        assert fitted.tau2 == pytest.approx(float(tau2), rel=1e-9, abs=1e-300)
        assert fitted.estimate == pytest.approx(float(b[0]), rel=1e-10)
    text = sub.summary() if hasattr(sub, "summary") else ""
    assert " nan" not in text


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_solves_variances_spanning_sixteen_orders(
    tmp_path: Path, command: str
) -> None:
    path = _csv(tmp_path, SPAN_Y, SPAN_V)
    code, out, err = _run(*COMMANDS[command][:1], path, "--yi", "yi", "--vi", "vi",
                          *COMMANDS[command][1:], "--format", "json")  # fmt: skip
    assert code == 0, err
    assert "Traceback" not in err and "Warning" not in err
    assert "NaN" not in out and "Infinity" not in out
