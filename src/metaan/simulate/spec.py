"""Simulation specifications: a declared grid of scenarios in a TOML file, checked.

A specification names everything that decides the numbers: the seed and the
replications, the grid (effect measure, number of studies, true mean effect and
between-study variance, given as tau^2 or as I^2), the within-study sample sizes,
the control risk of the event counts, and the methods compared. Every key is
checked: an unknown key or an impossible value is a
:class:`~metaan.errors.SpecError` that names the file and the key. The grid is
expanded in a fixed order (measure, control risk, k, effect, heterogeneity), and a
scenario's place in that order is its index, which selects its random stream.

I^2 is turned into tau^2 with the typical within-study variance of the design,
``s^2 = 1 / E[1 / v]`` over the sample-size distribution at the scenario's true
effect: the limit of Higgins & Thompson's (2002) typical variance as the number
of studies grows, so that ``I^2 = tau^2 / (tau^2 + s^2)``.

References
----------
Higgins, J. P. T., & Thompson, S. G. (2002). Quantifying heterogeneity in a
meta-analysis. *Statistics in Medicine*, 21(11), 1539-1558.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from metaan.effects import ZERO_CELL_RULES, ZeroCellRule, check_zero_cell_rule
from metaan.errors import SpecError
from metaan.estimators import FloatArray
from metaan.models import METHODS, PREDICTIONS, TESTS

__all__ = [
    "MEASURES",
    "TABLE_METHODS",
    "MethodSpec",
    "SampleSize",
    "Scenario",
    "SimulationSpec",
    "load_simulation_spec",
    "parse_simulation_spec",
]

#: The measures a simulation generates: Hedges' g from two simulated arms, and
#: the log odds ratio from simulated event counts.
MEASURES: tuple[str, ...] = ("SMD", "OR")
#: The 2x2-table methods, fitted to OR scenarios only.
TABLE_METHODS: tuple[str, ...] = ("MH", "PETO")
SAMPLE_SIZE_DISTRIBUTIONS: tuple[str, ...] = ("fixed", "uniform", "choice")


@dataclass(frozen=True)
class SampleSize:
    """The per-arm sample sizes of a simulated trial.

    The control arm's size is drawn from a discrete distribution with the
    given ``support`` and ``probabilities``; the treatment arm has
    ``round(allocation * control)`` participants.
    """

    distribution: str
    support: tuple[int, ...]
    probabilities: tuple[float, ...]
    allocation: float = 1.0

    def describe(self) -> str:
        if self.distribution == "fixed":
            text = f"{self.support[0]} per arm"
        elif self.distribution == "uniform":
            text = f"uniform on {self.support[0]}..{self.support[-1]} per arm"
        else:
            text = "drawn with equal probability from the listed arm sizes"
        if self.allocation != 1.0:
            text += f", treatment arm {self.allocation:g} x control"
        return text

    def treatment(self, control: Any) -> Any:
        """The treatment arm's size for control arm sizes ``control``."""
        return np.rint(self.allocation * np.asarray(control, dtype=np.float64))

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...]) -> FloatArray:
        """Control arm sizes; a fixed size draws nothing from ``rng``."""
        if self.distribution == "fixed":
            return np.full(shape, float(self.support[0]))
        if self.distribution == "uniform":
            low, high = self.support[0], self.support[-1]
            return rng.integers(low, high, size=shape, endpoint=True).astype(np.float64)
        values = np.asarray(self.support, dtype=np.float64)
        return values[rng.integers(0, values.size, size=shape)]


@dataclass(frozen=True)
class Scenario:
    """One point of the grid. ``effect`` is the true mean effect (SMD or log OR),
    ``tau2`` the true between-study variance on the same scale, ``i2`` the I^2
    (percent) it amounts to in this design, and ``typical_v`` the design's typical
    within-study variance."""

    index: int
    measure: str
    k: int
    effect: float
    tau2: float
    i2: float
    typical_v: float
    control_risk: float | None = None

    def describe(self) -> str:
        risk = "" if self.control_risk is None else f", control risk {self.control_risk:g}"
        return (
            f"{self.measure}, k = {self.k}, effect {self.effect:g}, "
            f"tau2 = {self.tau2:.4g} (I2 = {self.i2:.3g}%){risk}"
        )


@dataclass(frozen=True)
class MethodSpec:
    """A way of analysing each simulated meta-analysis: an estimator (``EE``, a
    tau^2 estimator, ``MH`` or ``PETO``), a test and a prediction-interval
    convention (``none`` for the 2x2-table methods, which have none)."""

    method: str
    test: str
    prediction: str

    @property
    def is_random(self) -> bool:
        return self.method not in ("EE", *TABLE_METHODS)

    @property
    def label(self) -> str:
        if self.method in TABLE_METHODS:
            return self.method
        return f"{self.method} {self.test}"


@dataclass(frozen=True)
class SimulationSpec:
    """A parsed and checked simulation specification."""

    title: str
    seed: int
    replications: int
    level: float
    sample_size: SampleSize
    scenarios: tuple[Scenario, ...]
    estimators: tuple[str, ...]
    tests: tuple[str, ...]
    predictions: tuple[str, ...]
    tables: tuple[str, ...]
    add: float = 0.5
    to: ZeroCellRule = "only0"
    #: Where the results go by default: a folder next to the specification.
    output: Path | None = None
    #: The specification's text, as read; its SHA-256 identifies a run.
    text: str = ""
    path: Path | None = None
    #: How heterogeneity was declared: "tau2" or "i2".
    heterogeneity: str = "tau2"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def methods_for(self, measure: str) -> tuple[MethodSpec, ...]:
        """The methods fitted to every replication of a scenario with this measure."""
        out = [
            MethodSpec(m, t, p)
            for m in self.estimators
            for t in self.tests
            for p in self.predictions
        ]
        if measure == "OR":
            out += [MethodSpec(m, "z", "none") for m in self.tables]
        return tuple(out)

    def subset(self, indices: Sequence[int]) -> SimulationSpec:
        """The same specification with only the scenarios of these indices.

        Each scenario keeps its index, so its random stream and numbers do not
        change: a subset reproduces those scenarios' rows of the full run.
        """
        wanted = set(indices)
        unknown = wanted - {s.index for s in self.scenarios}
        if unknown:
            raise SpecError(
                f"scenario {min(unknown)} is not in the grid; the scenarios are numbered "
                f"0 to {len(self.scenarios) - 1}"
            )
        return replace(self, scenarios=tuple(s for s in self.scenarios if s.index in wanted))


# ----------------------------------------------------------------------------- checking


class _Checker:
    """Reads keys of the parsed TOML, raising a SpecError that names file and key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str, fix: str) -> SpecError:
        return SpecError(f"{self.source}: {key}: {problem}; {fix}")

    def table(self, raw: Mapping[str, Any], name: str, allowed: Sequence[str]) -> dict[str, Any]:
        value = raw.get(name, {})
        if not isinstance(value, dict):
            raise self.fail(f"[{name}]", "must be a table", f"write it as [{name}]")
        for key in value:
            if key not in allowed:
                raise self.fail(
                    f"[{name}] {key}", "unknown key", f"use one of {', '.join(allowed)}"
                )
        return dict(value)

    def number(
        self,
        data: Mapping[str, Any],
        table: str,
        key: str,
        *,
        integer: bool = False,
        default: float | None = None,
    ) -> float:
        where = f"[{table}] {key}"
        if key not in data:
            if default is None:
                raise self.fail(where, "is required", f"add {key} = ... to [{table}]")
            return default
        value = data[key]
        kind = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind):
            what = "an integer" if integer else "a number"
            raise self.fail(where, f"is {value!r}", f"it must be {what}")
        if not math.isfinite(value):
            raise self.fail(where, f"is {value!r}", "it must be finite")
        return value

    def numbers(
        self,
        data: Mapping[str, Any],
        table: str,
        key: str,
        *,
        integer: bool = False,
        unique: bool = True,
    ) -> tuple[float, ...]:
        where = f"[{table}] {key}"
        value = data.get(key)
        if not isinstance(value, list) or not value:
            raise self.fail(where, f"is {value!r}", f"give a non-empty list, e.g. {key} = [...]")
        out = []
        for item in value:
            kind = (int,) if integer else (int, float)
            if isinstance(item, bool) or not isinstance(item, kind) or not math.isfinite(item):
                what = "integers" if integer else "finite numbers"
                raise self.fail(where, f"contains {item!r}", f"it must hold {what}")
            out.append(item)
        if unique and len(set(out)) != len(out):
            raise self.fail(where, "lists a value twice", "give each value once")
        return tuple(out)

    def choices(
        self,
        data: Mapping[str, Any],
        table: str,
        key: str,
        allowed: Sequence[str],
        default: Sequence[str],
    ) -> tuple[str, ...]:
        where = f"[{table}] {key}"
        value = data.get(key, list(default))
        if value == "all":
            return tuple(allowed)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(where, f"is {value!r}", 'give a list of names, e.g. ["DL", "REML"]')
        out = []
        for item in value:
            match = next((a for a in allowed if a.upper() == item.upper()), None)
            if match is None:
                raise self.fail(where, f"{item!r} is not known", f"use {', '.join(allowed)}")
            if match in out:
                raise self.fail(where, f"lists {item!r} twice", "give each name once")
            out.append(match)
        return tuple(out)


_TOP = ("simulation", "grid", "sample_size", "counts", "methods")
_SIMULATION = ("title", "seed", "replications", "level", "output")
_GRID = ("measure", "k", "effect", "tau2", "i2", "control_risk")
_SAMPLE = ("distribution", "n", "low", "high", "values", "allocation")
_COUNTS = ("add", "to")
_METHODS = ("estimators", "tests", "predictions", "tables")


def load_simulation_spec(path: str | Path) -> SimulationSpec:
    """Read and check a simulation specification (a TOML file).

    Raises
    ------
    SpecError
        A file that cannot be read or parsed, an unknown key, or an impossible
        value; the message names the file and the key.
    """
    spec_path = Path(path)
    try:
        text = spec_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(
            f"{spec_path}: cannot read the simulation specification ({exc.strerror or exc}); "
            "give the path of a TOML file"
        ) from None
    return parse_simulation_spec(text, path=spec_path)


def parse_simulation_spec(text: str, *, path: Path | None = None) -> SimulationSpec:
    """Check the text of a simulation specification (see :func:`load_simulation_spec`)."""
    source = str(path) if path is not None else "<simulation spec>"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{source}: not valid TOML ({exc}); fix the syntax there") from None
    c = _Checker(source)
    for key in raw:
        if key not in _TOP:
            raise c.fail(f"[{key}]", "unknown table", f"use {', '.join(_TOP)}")
    sim = c.table(raw, "simulation", _SIMULATION)
    title = sim.get("title", "Simulation study")
    if not isinstance(title, str):
        raise c.fail("[simulation] title", f"is {title!r}", "it must be text")
    seed = int(c.number(sim, "simulation", "seed", integer=True))
    if seed < 0:
        raise c.fail("[simulation] seed", f"is {seed}", "a seed must be >= 0")
    replications = int(c.number(sim, "simulation", "replications", integer=True))
    if replications < 2:
        raise c.fail(
            "[simulation] replications", f"is {replications}", "give at least 2 replications"
        )
    level = c.number(sim, "simulation", "level", default=95.0)
    if 0 < level < 1:
        level *= 100.0
    if not 0 < level < 100:
        raise c.fail("[simulation] level", f"is {level:g}", "give a level between 0 and 100")
    output = _output(c, sim, path)

    sample_size = _sample_size(c, c.table(raw, "sample_size", _SAMPLE))
    counts = c.table(raw, "counts", _COUNTS)
    add = c.number(counts, "counts", "add", default=0.5)
    if add < 0:
        raise c.fail("[counts] add", f"is {add:g}", "the zero-cell increment must be >= 0")
    to = counts.get("to", "only0")
    if to not in ZERO_CELL_RULES:
        raise c.fail("[counts] to", f"is {to!r}", f"use one of {', '.join(ZERO_CELL_RULES)}")

    grid = c.table(raw, "grid", _GRID)
    scenarios, heterogeneity = _scenarios(c, grid, sample_size)
    methods = c.table(raw, "methods", _METHODS)
    estimators = c.choices(methods, "methods", "estimators", METHODS, ["DL", "REML"])
    tests = c.choices(methods, "methods", "tests", TESTS, ["z", "knha"])
    predictions = c.choices(methods, "methods", "predictions", PREDICTIONS, ["metafor"])
    has_or = any(s.measure == "OR" for s in scenarios)
    tables = c.choices(methods, "methods", "tables", TABLE_METHODS, [])
    if tables and not has_or:
        raise c.fail(
            "[methods] tables", "MH and PETO pool 2x2 tables", 'add "OR" to [grid] measure'
        )
    if estimators and (not tests or not predictions):
        raise c.fail("[methods] tests", "no test or prediction convention", "list at least one")
    if not estimators and not tables:
        raise c.fail("[methods] estimators", "no method to compare", 'list e.g. ["DL", "REML"]')
    if not estimators and not all(s.measure == "OR" for s in scenarios):
        raise c.fail("[methods] estimators", "SMD scenarios need an estimator", "list one")
    return SimulationSpec(
        title=title,
        seed=seed,
        replications=replications,
        level=float(level),
        sample_size=sample_size,
        scenarios=scenarios,
        estimators=estimators,
        tests=tests,
        predictions=predictions,
        tables=tables,
        add=float(add),
        to=check_zero_cell_rule(to),
        output=output,
        text=text,
        path=path,
        heterogeneity=heterogeneity,
    )


def _output(c: _Checker, sim: Mapping[str, Any], path: Path | None) -> Path | None:
    if path is None:
        return None
    name = sim.get("output", path.stem)
    if not isinstance(name, str) or not name:
        raise c.fail("[simulation] output", f"is {name!r}", "give a folder name")
    base = path.resolve().parent
    output = (base / name).resolve()
    if output == base or base not in output.parents:
        raise c.fail(
            "[simulation] output",
            f"{name!r} leaves the specification's folder",
            'give a folder name inside it, e.g. output = "simulation"',
        )
    return output


def _sample_size(c: _Checker, data: Mapping[str, Any]) -> SampleSize:
    kind = data.get("distribution")
    if kind not in SAMPLE_SIZE_DISTRIBUTIONS:
        raise c.fail(
            "[sample_size] distribution",
            f"is {kind!r}",
            f"use one of {', '.join(SAMPLE_SIZE_DISTRIBUTIONS)}",
        )
    needed = {"fixed": ("n",), "uniform": ("low", "high"), "choice": ("values",)}[kind]
    for key in ("n", "low", "high", "values"):
        if key in data and key not in needed:
            raise c.fail(
                f"[sample_size] {key}",
                f"is not used by the {kind} distribution",
                f"it takes {', '.join(needed)}",
            )
    if kind == "fixed":
        support: tuple[int, ...] = (int(c.number(data, "sample_size", "n", integer=True)),)
        key = "n"
    elif kind == "uniform":
        low = int(c.number(data, "sample_size", "low", integer=True))
        high = int(c.number(data, "sample_size", "high", integer=True))
        if high < low:
            raise c.fail("[sample_size] high", f"is {high}, below low = {low}", "swap them")
        support, key = tuple(range(low, high + 1)), "low"
    else:
        values = c.numbers(data, "sample_size", "values", integer=True, unique=False)
        support = tuple(int(v) for v in values)
        key = "values"
    allocation = c.number(data, "sample_size", "allocation", default=1.0)
    if allocation <= 0:
        raise c.fail("[sample_size] allocation", f"is {allocation:g}", "it must be > 0")
    smallest = min(support)
    if smallest < 2 or round(allocation * smallest) < 2:
        raise c.fail(
            f"[sample_size] {key}",
            f"gives an arm of {min(smallest, round(allocation * smallest))} participants",
            "every arm needs at least 2 (a standard deviation needs 2)",
        )
    # Every listed value is equally likely (a value listed twice, twice as likely).
    probs = tuple(1.0 / len(support) for _ in support)
    return SampleSize(kind, support, probs, float(allocation))


def _scenarios(
    c: _Checker, grid: Mapping[str, Any], sample_size: SampleSize
) -> tuple[tuple[Scenario, ...], str]:
    measures_raw = grid.get("measure")
    if not isinstance(measures_raw, list) or not measures_raw:
        raise c.fail("[grid] measure", f"is {measures_raw!r}", 'give e.g. measure = ["SMD"]')
    measures = c.choices(grid, "grid", "measure", MEASURES, [])
    ks = tuple(int(k) for k in c.numbers(grid, "grid", "k", integer=True))
    if min(ks) < 2:
        raise c.fail("[grid] k", f"contains {min(ks)}", "a random-effects model needs k >= 2")
    effects = c.numbers(grid, "grid", "effect")
    if ("tau2" in grid) == ("i2" in grid):
        raise c.fail(
            "[grid] tau2",
            "give the heterogeneity once",
            "write either tau2 = [...] or i2 = [...] (percent)",
        )
    kind = "tau2" if "tau2" in grid else "i2"
    levels = c.numbers(grid, "grid", kind)
    if kind == "tau2" and min(levels) < 0:
        raise c.fail("[grid] tau2", f"contains {min(levels):g}", "a variance must be >= 0")
    if kind == "i2" and not all(0 <= v < 100 for v in levels):
        raise c.fail("[grid] i2", "must lie in [0, 100)", "give I2 in percent, e.g. [0, 50, 90]")
    risks: tuple[float | None, ...] = (None,)
    if "OR" in measures:
        if "control_risk" not in grid:
            raise c.fail("[grid] control_risk", "is required for OR", "add e.g. [0.1]")
        risks = c.numbers(grid, "grid", "control_risk")
        if not all(0 < r < 1 for r in risks):
            raise c.fail("[grid] control_risk", "must lie in (0, 1)", "give event risks")
    elif "control_risk" in grid:
        raise c.fail("[grid] control_risk", "is used by OR only", 'add "OR" to measure')

    scenarios: list[Scenario] = []
    for measure in measures:
        for risk, k, effect, level in itertools.product(
            risks if measure == "OR" else (None,), ks, effects, levels
        ):
            s2 = typical_variance(sample_size, measure, float(effect), risk)
            tau2 = float(level) if kind == "tau2" else level / (100.0 - level) * s2
            i2 = float(level) if kind == "i2" else 100.0 * tau2 / (tau2 + s2)
            scenarios.append(
                Scenario(len(scenarios), measure, k, float(effect), tau2, i2, s2, risk)
            )
    return tuple(scenarios), kind


def typical_variance(
    sample_size: SampleSize, measure: str, effect: float, control_risk: float | None
) -> float:
    """The typical within-study variance ``1 / E[1 / v]`` of the design.

    ``v`` is the large-sample variance of the measure at the true effect: for
    SMD ``1/n1 + 1/n2 + d^2 / (2 (n1 + n2))`` (Hedges & Olkin 1985); for log OR
    ``1 / (n1 p1 (1 - p1)) + 1 / (n2 p2 (1 - p2))`` with ``p2`` the control risk
    and ``logit p1 = logit p2 + effect``. The expectation is exact over the
    sample-size distribution.
    """
    n2 = np.asarray(sample_size.support, dtype=np.float64)
    n1 = sample_size.treatment(n2)
    prob = np.asarray(sample_size.probabilities, dtype=np.float64)
    if measure == "SMD":
        v = 1.0 / n1 + 1.0 / n2 + effect**2 / (2.0 * (n1 + n2))
    else:
        if control_risk is None:
            raise ValueError("an OR scenario needs a control risk")
        p2 = control_risk
        p1 = 1.0 / (1.0 + (1.0 - p2) / p2 * math.exp(-effect))
        v = 1.0 / (n1 * p1 * (1.0 - p1)) + 1.0 / (n2 * p2 * (1.0 - p2))
    return float(1.0 / np.dot(prob, 1.0 / v))
