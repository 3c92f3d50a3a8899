"""``metaan simulate``: run a simulation study declared in a TOML file."""

from __future__ import annotations

import click

from metaan.cli._app import main


@main.command("simulate")
@click.argument("spec", metavar="SPEC")
@click.option(
    "-o",
    "--output",
    metavar="DIR",
    default=None,
    help="Output folder (default: the spec's output, next to the spec).",
)
@click.option(
    "--scheduler",
    default="local",
    show_default=True,
    metavar="local|processes|tcp://HOST:PORT",
    help="Where blocks run: this process, a Dask LocalCluster of worker processes "
    "(on 127.0.0.1), or a running Dask scheduler.",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Worker processes for --scheduler processes (default: one per core).",
)
@click.option(
    "--block",
    type=int,
    default=1000,
    show_default=True,
    help="Replications per block of work, a multiple of 100; it never changes the numbers.",
)
@click.option("--resume", is_flag=True, help="Continue the run in DIR; finished blocks are kept.")
@click.option("--no-figures", is_flag=True, help="Write the metrics and summary only.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def simulate_command(
    spec: str,
    output: str | None,
    scheduler: str,
    workers: int | None,
    block: int,
    resume: bool,
    no_figures: bool,
    quiet: bool,
) -> None:
    """Run the simulation study SPEC (a TOML grid) and write its metrics, figures and summary."""
    from metaan.simulate import run_simulation

    result = run_simulation(
        spec,
        output,
        scheduler=scheduler,
        workers=workers,
        block=block,
        resume=resume,
        progress=not quiet,
        figures=not no_figures,
    )
    failed = int(result.metrics["failed"].sum())
    if not quiet:
        click.echo(
            f"metaan simulate: {len(result.spec.scenarios)} scenarios x "
            f"{result.spec.replications} replications written to {result.output} "
            f"({result.blocks_run} blocks run, {failed} failed fits)",
            err=True,
        )
