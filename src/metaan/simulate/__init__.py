"""Simulation studies of the meta-analysis methods, on one machine or a Dask cluster.

A study is declared in a TOML file (:func:`load_simulation_spec`) and run with
:func:`run_simulation`, which writes the metrics of every scenario and method as
CSV and Parquet, with faceted figures and an HTML summary. On the command line:
``metaan simulate spec.toml [-o DIR] [--scheduler local|processes|tcp://HOST:PORT]``.

This package needs the ``simulate`` extra (pyarrow, tqdm, Dask's distributed
scheduler): ``pip install 'metaan[simulate]'``.
"""

from __future__ import annotations

from metaan.simulate.run import UNIT, SimulationResult, run_simulation
from metaan.simulate.spec import (
    MethodSpec,
    SampleSize,
    Scenario,
    SimulationSpec,
    load_simulation_spec,
    parse_simulation_spec,
)

__all__ = [
    "UNIT",
    "MethodSpec",
    "SampleSize",
    "Scenario",
    "SimulationResult",
    "SimulationSpec",
    "load_simulation_spec",
    "parse_simulation_spec",
    "run_simulation",
]
