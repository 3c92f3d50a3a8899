"""The safeguarded Newton solver, batched and scalar."""

from __future__ import annotations

import math

import numpy as np

from metaan.solver import ROOT_RTOL, solve_decreasing, solve_decreasing_scalar


def test_the_batched_solver_finds_every_root_of_a_batch() -> None:
    c = np.array([2.0, 9.0, 1e-12, 1e12])
    roots = solve_decreasing(lambda x, rows: (c[rows] - x * x, -2.0 * x), 0.0, 1.0, size=4)
    np.testing.assert_allclose(roots, np.sqrt(c), rtol=10 * ROOT_RTOL)


def test_an_equation_not_positive_at_the_lower_end_has_its_root_there() -> None:
    c = np.array([-1.0, 0.0, 4.0])
    roots = solve_decreasing(lambda x, rows: (c[rows] - x, -np.ones_like(x)), 0.0, 1.0, size=3)
    assert roots.tolist() == [0.0, 0.0, 4.0]


def test_an_equation_with_no_root_gives_nan_and_leaves_the_others_solved() -> None:
    c = np.array([4.0, 1.0])

    def f(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Row 0 never crosses zero: 4 + 1 / (1 + x) stays positive.
        value = np.where(rows == 0, c[rows] + 1.0 / (1.0 + x), c[rows] - x)
        return value, np.where(rows == 0, -1.0 / (1.0 + x) ** 2, -1.0)

    roots = solve_decreasing(f, 0.0, 1.0, size=2)
    assert math.isnan(roots[0])
    assert roots[1] == 1.0


def test_a_bad_derivative_falls_back_to_bisection_and_still_converges() -> None:
    # The derivative is reported positive: every step must come from the bracket.
    roots = solve_decreasing(lambda x, rows: (3.0 - x, np.ones_like(x)), 0.0, 1.0)
    assert abs(roots[0] - 3.0) <= 1e-13


def test_the_scalar_solver_takes_the_same_steps_as_the_batched_one() -> None:
    def f(x: float) -> tuple[float, float]:
        return 5.0 / (1.0 + x) - 1.0, -5.0 / (1.0 + x) ** 2

    def g(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return 5.0 / (1.0 + x) - 1.0, -5.0 / (1.0 + x) ** 2

    scalar = solve_decreasing_scalar(f, 0.0, 1.0)
    batched = solve_decreasing(g, 0.0, 1.0)
    assert scalar == batched[0]
    assert abs(scalar - 4.0) <= 4.0 * ROOT_RTOL


def test_a_start_above_the_root_is_safe() -> None:
    roots = solve_decreasing(lambda x, rows: (1.0 - x, -np.ones_like(x)), 0.0, 1.0, start=50.0)
    assert roots[0] == 1.0


def test_a_newton_step_that_rounds_onto_the_point_ends_the_search_at_once() -> None:
    # The root lies between two adjacent doubles: from the lower one, the equation is
    # positive and the Newton step of half an ulp rounds back onto it, an end of the
    # bracket. That is the root to working precision, not a reason to bisect.
    a = 1e5
    b = math.nextafter(a, math.inf)
    calls: list[float] = []

    def f(x: float) -> tuple[float, float]:
        calls.append(x)
        return (a - x) + (b - x), -2.0

    root = solve_decreasing_scalar(f, 0.0, 1.0, start=a, first=(a + b, -2.0))
    assert root in (a, b)
    assert calls == [a]

    def g(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (a - x) + (b - x), np.full_like(x, -2.0)

    batched = solve_decreasing(g, 0.0, 1.0, start=a)
    assert batched[0] == root
