"""Running a simulation: blocks of replications, their random streams, and where they run.

The work is cut into blocks of whole *units* of :data:`UNIT` replications of one
scenario. Unit ``u`` of scenario ``s`` draws from its own stream,
``SeedSequence(seed).spawn(scenarios)[s].spawn(units)[u]`` (built directly as
``SeedSequence(seed, spawn_key=(s, u))``, which is the same thing), so a
replication's data do not depend on which block, process or machine simulates
it: serial runs, local processes, a Dask cluster and any block size give the same
numbers.

Blocks run in this process (``scheduler="local"``), on a
:class:`distributed.LocalCluster` of worker processes (``"processes"``), or on an
existing Dask cluster (``"tcp://host:port"``). Each block's summary is written to
``<output>/blocks/`` as soon as it arrives, so an interrupted run resumes
(``resume=True``) without redoing finished blocks.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metaan.errors import InputError, SpecError
from metaan.simulate.fitting import BatchFit, fit_batch
from metaan.simulate.generate import Batch, concat, generate
from metaan.simulate.metrics import Columns, block_statistics, combine
from metaan.simulate.spec import MethodSpec, Scenario, SimulationSpec, load_simulation_spec

__all__ = [
    "UNIT",
    "Block",
    "SimulationResult",
    "plan_blocks",
    "run_simulation",
    "simulate_block",
    "unit_rng",
]

#: Replications per random stream: the unit of reproducibility. Blocks are whole units.
UNIT = 100
_FIT_FIELDS = tuple(BatchFit.__dataclass_fields__)
#: Replications per block unless told otherwise.
DEFAULT_BLOCK = 1000
SCENARIO_COLUMNS = ("scenario", "measure", "k", "effect", "tau2", "i2", "control_risk")

_BLOCK_NAME = re.compile(r"^s(\d+)-u(\d+)-(\d+)\.npz$")


@dataclass(frozen=True, order=True)
class Block:
    """Units ``first_unit`` to ``first_unit + units - 1`` of scenario ``scenario``."""

    scenario: int
    first_unit: int
    units: int

    @property
    def name(self) -> str:
        return f"s{self.scenario:06d}-u{self.first_unit:07d}-{self.first_unit + self.units:07d}"

    @property
    def unit_range(self) -> range:
        return range(self.first_unit, self.first_unit + self.units)

    def replications(self, total: int) -> tuple[int, int]:
        """The first and one-past-last replication of the block."""
        return self.first_unit * UNIT, min((self.first_unit + self.units) * UNIT, total)


@dataclass(frozen=True)
class BlockResult:
    """A block's summaries (see :func:`metaan.simulate.metrics.block_statistics`)."""

    units: Columns
    values: Columns
    fits: int


@dataclass(frozen=True)
class SimulationResult:
    """What a run produced: the metrics table and where everything was written."""

    spec: SimulationSpec
    metrics: pd.DataFrame
    output: Path
    blocks_run: int
    blocks_reused: int


def unit_rng(seed: int, scenario: int, unit: int) -> np.random.Generator:
    """The random generator of one unit of one scenario (see the module notes)."""
    stream = np.random.SeedSequence(seed, spawn_key=(scenario, unit))
    return np.random.Generator(np.random.PCG64(stream))


def simulate_block(spec: SimulationSpec, block: Block) -> BlockResult:
    """Simulate and fit one block, and summarise it (runs on a worker)."""
    scenario = next(s for s in spec.scenarios if s.index == block.scenario)
    start, stop = block.replications(spec.replications)
    batches = []
    for unit in range(block.first_unit, block.first_unit + block.units):
        n = min(UNIT, stop - unit * UNIT)
        rng = unit_rng(spec.seed, scenario.index, unit)
        batches.append(generate(scenario, spec.sample_size, n, rng, add=spec.add, to=spec.to))
    methods = spec.methods_for(scenario.measure)
    fits = {m: _fit(batches, m, spec.level) for m in methods}
    units, values = block_statistics(
        scenario, fits, first_unit=block.first_unit, unit_size=UNIT, level=spec.level
    )
    return BlockResult(units, values, fits=(stop - start) * len(methods))


def _fit(batches: list[Batch], method: MethodSpec, level: float) -> BatchFit:
    """One method's fits of a block's units.

    When every meta-analysis has the same number of studies, the block is one
    batch. Otherwise (studies left out by the zero-cell rule) each unit is its own
    batch: the engine pads a batch to its widest problem, which can move a sum's
    last bit, and a unit's numbers must not depend on the block around it.
    """
    prediction = "metafor" if method.prediction == "none" else method.prediction
    options = {"method": method.method, "test": method.test, "prediction": prediction}
    sizes = np.concatenate([b.sizes for b in batches])
    if sizes.size == 0 or np.all(sizes == sizes[0]):
        return fit_batch(concat(batches), level=level, **options)
    parts = [fit_batch(b, level=level, **options) for b in batches]
    return BatchFit(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in _FIT_FIELDS})


def plan_blocks(
    spec: SimulationSpec, block: int = DEFAULT_BLOCK, done: frozenset[tuple[int, int]] = frozenset()
) -> list[Block]:
    """The blocks still to run: each scenario's units not in ``done`` (pairs of
    scenario and unit), grouped in runs of consecutive units, ``block`` replications
    at most per block."""
    if block < UNIT or block % UNIT:
        raise InputError(
            f"the block size is {block} replications",
            fix=f"give a positive multiple of {UNIT}, the replications of one random stream",
        )
    per_block = block // UNIT
    units = math.ceil(spec.replications / UNIT)
    out = []
    for scenario in spec.scenarios:
        todo = [u for u in range(units) if (scenario.index, u) not in done]
        run: list[int] = []
        for u in todo:
            if run and (u != run[-1] + 1 or len(run) == per_block):
                out.append(Block(scenario.index, run[0], len(run)))
                run = []
            run.append(u)
        if run:
            out.append(Block(scenario.index, run[0], len(run)))
    return out


# ----------------------------------------------------------------------------- the block store


class _Store:
    """The ``blocks/`` folder of a run: one ``.npz`` file (numpy's own format, read
    and written without conversion) per finished block."""

    def __init__(self, output: Path, spec: SimulationSpec) -> None:
        self.folder = output / "blocks"
        self.spec = spec

    def manifest(self) -> dict[str, Any]:
        from metaan import __version__

        return {
            "spec_sha256": self.spec.sha256,
            "unit": UNIT,
            "metaan": __version__,
        }

    def open(self, resume: bool) -> frozenset[tuple[int, int]]:
        """Prepare the folder; return the (scenario, unit) pairs already done."""
        path = self.folder / "run.json"
        if path.exists():
            if not resume:
                raise InputError(
                    "this folder already holds a simulation run",
                    file=str(self.folder.parent),
                    fix="pass --resume to continue it, or choose another output folder",
                )
            found = json.loads(path.read_text(encoding="utf-8"))
            if found != self.manifest():
                raise InputError(
                    "the blocks in this folder come from another specification or metaan "
                    f"version ({found})",
                    file=str(self.folder.parent),
                    fix="resume with the same specification and version, or use a new folder",
                )
        else:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(
                    f"cannot create the output folder ({exc.strerror or exc})",
                    file=str(self.folder),
                    fix="check that its parent exists and is writable",
                ) from exc
            path.write_text(json.dumps(self.manifest(), indent=2) + "\n", encoding="utf-8")
        return frozenset((b.scenario, u) for b in self.finished() for u in b.unit_range)

    def finished(self) -> list[Block]:
        out = []
        for path in self.folder.glob("*.npz"):
            match = _BLOCK_NAME.match(path.name)
            if match:
                s, first, end = (int(g) for g in match.groups())
                out.append(Block(s, first, end - first))
        return sorted(out)

    def write(self, block: Block, result: BlockResult) -> None:
        # Written aside, then renamed: a block's file is there whole or not at all.
        final = self.folder / f"{block.name}.npz"
        partial = self.folder / f"{block.name}.part.npz"
        arrays = {f"units.{k}": v for k, v in result.units.items()}
        arrays.update({f"values.{k}": v for k, v in result.values.items()})
        np.savez(partial, allow_pickle=False, **arrays)
        os.replace(partial, final)

    def read(self, blocks: Sequence[Block]) -> tuple[list[Columns], list[Columns]]:
        """The unit summaries and the values of ``blocks``."""
        units, values = [], []
        for block in blocks:
            with np.load(self.folder / f"{block.name}.npz", allow_pickle=False) as data:
                columns = {name: data[name] for name in data.files}
            units.append({k[6:]: v for k, v in columns.items() if k.startswith("units.")})
            values.append({k[7:]: v for k, v in columns.items() if k.startswith("values.")})
        return units, values


# ----------------------------------------------------------------------------- schedulers


def check_scheduler(scheduler: str) -> str:
    """``local``, ``processes`` or a ``tcp://host:port`` address, else an error."""
    if scheduler in ("local", "processes") or re.fullmatch(r"tcp://[^\s:/]+:\d+", scheduler):
        return scheduler
    raise InputError(
        f"the scheduler is {scheduler!r}",
        fix="use local, processes or the address of a Dask scheduler, tcp://HOST:PORT",
    )


@contextmanager
def _client(scheduler: str, workers: int | None) -> Iterator[Any]:
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - the simulate extra is installed in CI
        raise InputError(
            f"--scheduler {scheduler} needs Dask's distributed scheduler",
            fix="install it with: pip install 'metaan[simulate]'",
        ) from None
    if scheduler == "processes":
        # Listen on the loopback interface only, and start no dashboard.
        cluster = LocalCluster(
            n_workers=workers or os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        with cluster, Client(cluster) as client:
            yield client
    else:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as exc:
            raise InputError(
                f"cannot reach the Dask scheduler at {scheduler} ({exc})",
                fix="start it (dask scheduler) or check the address",
            ) from None
        with client:
            yield client


def _execute(
    spec: SimulationSpec, blocks: Sequence[Block], scheduler: str, workers: int | None
) -> Iterator[tuple[Block, BlockResult]]:
    """Run the blocks, yielding each result as it arrives."""
    if scheduler == "local":
        for block in blocks:
            yield block, simulate_block(spec, block)
        return
    from distributed import as_completed

    with _client(scheduler, workers) as client:
        shared = client.scatter(spec, broadcast=True)
        futures = {client.submit(simulate_block, shared, b, pure=False): b for b in blocks}
        for future in as_completed(futures):
            result = future.result()
            yield futures[future], result
            future.release()


class _Progress:
    """A progress bar on stderr (fits, fits per second, time left, scenarios done);
    silent when asked, or when stderr is not a terminal."""

    def __init__(self, spec: SimulationSpec, done: frozenset[tuple[int, int]], quiet: bool) -> None:
        self.replications = spec.replications
        self.units = math.ceil(spec.replications / UNIT)
        self.left = {s.index: self.units for s in spec.scenarios}
        self.size = {s.index: len(spec.methods_for(s.measure)) for s in spec.scenarios}
        initial = 0
        for scenario, unit in done:
            if scenario in self.left:
                self.left[scenario] -= 1
                initial += self._fits(scenario, unit)
        total = sum(spec.replications * self.size[s] for s in self.size)
        self.bar: Any = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, initial=initial, unit="fit", unit_scale=True, file=sys.stderr
            )
            self._postfix()

    def _fits(self, scenario: int, unit: int) -> int:
        return self.size[scenario] * (min(UNIT, self.replications - unit * UNIT))

    def _postfix(self) -> None:
        finished = sum(1 for v in self.left.values() if v == 0)
        self.bar.set_postfix_str(f"scenarios {finished}/{len(self.left)}", refresh=False)

    def advance(self, block: Block, fits: int) -> None:
        self.left[block.scenario] -= block.units
        if self.bar is not None:
            self._postfix()
            self.bar.update(fits)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ----------------------------------------------------------------------------- a run


def run_simulation(
    spec: SimulationSpec | str | Path,
    output: str | Path | None = None,
    *,
    scheduler: str = "local",
    workers: int | None = None,
    block: int = DEFAULT_BLOCK,
    resume: bool = False,
    progress: bool = False,
    figures: bool = True,
) -> SimulationResult:
    """Run a simulation study and write its results.

    Parameters
    ----------
    spec
        A checked specification, or the path of its TOML file.
    output
        The output folder (default: the specification's, next to its file).
    scheduler
        ``"local"`` (this process), ``"processes"`` (a Dask LocalCluster of
        ``workers`` processes, listening on 127.0.0.1 only) or the
        ``"tcp://host:port"`` address of a running Dask scheduler.
    workers
        Worker processes for ``"processes"`` (default: the number of cores).
    block
        Replications per block, a multiple of :data:`UNIT`. It changes how the
        work is cut, never the numbers.
    resume
        Continue the run in ``output``, running only the blocks not yet written.
    progress
        Show a progress bar on stderr (only when stderr is a terminal).
    figures
        Draw the figures (``figures/*.svg``, also inline in ``index.html``).

    Returns
    -------
    SimulationResult
        The metrics table (also in ``metrics.csv`` and ``metrics.parquet``), with
        figures and an HTML summary beside them.

    Raises
    ------
    SpecError, InputError
        A bad specification, scheduler or block size; an output folder that holds
        another run (without ``resume``), or one from another specification.
    """
    from metaan.simulate.output import write_outputs

    if not isinstance(spec, SimulationSpec):
        spec = load_simulation_spec(spec)
    scheduler = check_scheduler(scheduler)
    if workers is not None and workers < 1:
        raise InputError(f"workers is {workers}", fix="give at least 1 worker process")
    if workers is not None and scheduler != "processes":
        raise InputError(
            f"--workers sets the processes of --scheduler processes, not of {scheduler}",
            fix="drop --workers, or use --scheduler processes",
        )
    folder = Path(output) if output is not None else spec.output
    if folder is None:
        raise SpecError("the specification has no file to put the output next to; give output")
    store = _Store(folder, spec)
    done = store.open(resume)
    blocks = plan_blocks(spec, block, done)
    bar = _Progress(spec, done, quiet=not progress)
    try:
        for finished, result in _execute(spec, blocks, scheduler, workers):
            store.write(finished, result)
            bar.advance(finished, result.fits)
    finally:
        bar.close()
    metrics = aggregate(spec, store)
    write_outputs(spec, metrics, folder, figures=figures)
    reused = len({(s, u) for s, u in done if s in {sc.index for sc in spec.scenarios}})
    return SimulationResult(
        spec=spec,
        metrics=metrics,
        output=folder,
        blocks_run=len(blocks),
        blocks_reused=reused,
    )


def aggregate(spec: SimulationSpec, store: _Store) -> pd.DataFrame:
    """The metrics table of every scenario of ``spec`` from the written blocks."""
    units = math.ceil(spec.replications / UNIT)
    finished = store.finished()
    frames = []
    for scenario in spec.scenarios:
        blocks = [b for b in finished if b.scenario == scenario.index]
        covered = sorted(u for b in blocks for u in b.unit_range)
        if covered != list(range(units)):
            raise InputError(
                f"the blocks of scenario {scenario.index} do not cover its replications once",
                file=str(store.folder),
                fix="delete the folder and run again",
            )
        units_read, values_read = store.read(blocks)
        metrics = combine(
            scenario, spec.methods_for(scenario.measure), units_read, values_read, spec.replications
        )
        frames.append(_with_scenario(metrics, scenario))
    return pd.concat(frames, ignore_index=True)


def _with_scenario(metrics: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    values: dict[str, int | float | str] = {
        "scenario": scenario.index,
        "measure": scenario.measure,
        "k": scenario.k,
        "effect": scenario.effect,
        "tau2": scenario.tau2,
        "i2": scenario.i2,
        "control_risk": math.nan if scenario.control_risk is None else scenario.control_risk,
    }
    front = pd.DataFrame({name: [values[name]] * len(metrics) for name in SCENARIO_COLUMNS})
    return pd.concat([front, metrics], axis=1)
