"""``metaan network``: a network meta-analysis of the trials in a file, and the network
plots of ``metaan plot`` (``network``, ``league``, ``netsplit``, ``netforest``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from metaan.cli._app import main
from metaan.cli._common import frame_as_csv, json_text, note_on_stderr, output_options, write_output
from metaan.errors import InputError
from metaan.io import read_table
from metaan.network import (
    NETWORK_METHODS,
    SMALL_VALUES,
    SPLIT_METHODS,
    NetworkResult,
    fit_network,
    netsplit,
    sucra,
)

__all__ = ["PLOT_KINDS", "network_plot", "network_plot_options"]

F = TypeVar("F", bound=Callable[..., Any])

#: The network kinds of ``metaan plot``.
PLOT_KINDS = ("network", "league", "netsplit", "netforest")
SHOW = ("summary", "league", "netsplit", "ranking")
NETWORK_MEASURES = ("OR", "RR", "RD", "MD", "SMD", "GEN")


def _options(options: list[Callable[[F], F]]) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def network_plot_options(func: F) -> F:
    """The network options that ``metaan network`` and ``metaan plot`` share: those
    the effect-size options of ``metaan plot`` do not already have."""
    return _options(
        [
            click.option(
                "--study",
                metavar="COL",
                default="study",
                show_default=True,
                help="Network: column of the study label.",
            ),
            click.option(
                "--treatment",
                metavar="COL",
                default=None,
                help="Network, one row per arm: column of the arm's treatment.",
            ),
            click.option(
                "--treat1",
                metavar="COL",
                default=None,
                help="Network, one row per comparison: first treatment (default treat1).",
            ),
            click.option(
                "--treat2",
                metavar="COL",
                default=None,
                help="Network, one row per comparison: second treatment (default treat2).",
            ),
            click.option(
                "--mean", metavar="COL", default=None, help="Network: arm mean (MD, SMD)."
            ),
            click.option("--sd", metavar="COL", default=None, help="Network: arm SD (MD, SMD)."),
            click.option(
                "--reference",
                metavar="TREATMENT",
                default=None,
                help="Network: the reference treatment (default: the first in R's order).",
            ),
            click.option(
                "--small-values",
                "small_values",
                type=click.Choice(SMALL_VALUES),
                default="good",
                show_default=True,
                help="Network: are small effects good (a lower score) or bad (fewer "
                "responders)? Directs the ranking.",
            ),
            click.option(
                "--allstudies/--no-allstudies",
                default=False,
                show_default=True,
                help="Network, events: keep comparisons with no (or only) events in both "
                "arms, with the increment, as netmeta's allstudies.",
            ),
            click.option(
                "--model",
                type=click.Choice(["random", "common"]),
                default="random",
                show_default=True,
                help="Network: the model to tabulate, plot or rank.",
            ),
            click.option(
                "--split-method",
                "split_method",
                type=click.Choice(SPLIT_METHODS),
                default="back-calculation",
                show_default=True,
                help="Network: how direct and indirect evidence are separated.",
            ),
        ]
    )(func)


def fit_from_options(file: str, method: str, level: float, o: dict[str, Any]) -> NetworkResult:
    """Read FILE and fit the network the parsed options describe."""
    table = read_table(file)
    arm_level = o.get("treatment") is not None
    columns: dict[str, Any] = {"study": o["study"]}
    if arm_level:
        columns.update(
            treatment=o["treatment"],
            events=o.get("xi"),
            n=o.get("ni"),
            mean=o.get("mean"),
            sd=o.get("sd"),
        )
    else:
        given = {"treat1": o.get("treat1"), "treat2": o.get("treat2"), "yi": o.get("yi")}
        columns.update({k: v for k, v in given.items() if v is not None})
        columns.update(vi=o.get("vi"), sei=o.get("sei"))
    measure = o.get("measure")
    return fit_network(
        table,
        **columns,
        measure=None if measure is None or measure.upper() == "GEN" else measure.upper(),
        method=method,
        tau2=o.get("tau2"),
        reference=o.get("reference"),
        small_values=o.get("small_values", "good"),
        level=level,
        incr=float(o.get("add", 0.5)),
        allstudies=bool(o.get("allstudies", False)),
        source=file,
    )


def _render(res: NetworkResult, show: str, model: str, o: dict[str, Any], fmt: str) -> str:
    if show == "league":
        league = res.league(model)
        if fmt == "json":
            return json_text(res.league_dict(model))
        if fmt == "csv":
            return frame_as_csv(league.reset_index())
        return league.to_string() + "\n"
    if show == "netsplit":
        split = netsplit(res, o["split_method"])
        if fmt == "json":
            return json_text(split.to_dict())
        frame = split.to_frame(model)
        return frame_as_csv(frame) if fmt == "csv" else frame.to_string(index=False) + "\n"
    if show == "ranking":
        ranking = sucra(
            res, model="common" if model == "common" else "random", nsim=o["nsim"], seed=o["seed"]
        )
        if fmt == "json":
            return json_text(ranking.to_dict())
        frame = ranking.to_frame()
        return frame_as_csv(frame) if fmt == "csv" else frame.to_string(index=False) + "\n"
    if fmt == "json":
        return json_text(res.to_dict())
    if fmt == "csv":
        return frame_as_csv(res.to_frame())
    return res.summary() + "\n"


@main.command("network")
@click.argument("file", metavar="FILE")
@network_plot_options
@click.option(
    "--events", "--xi", "xi", metavar="COL", default=None, help="Arm events (OR, RR, RD)."
)
@click.option("--n", "--ni", "ni", metavar="COL", default=None, help="Arm size.")
@click.option(
    "--yi",
    "--estimate",
    "yi",
    metavar="COL",
    default=None,
    help="Comparison: effect of treat1 versus treat2 (default yi).",
)
@click.option("--sei", "--se", "sei", metavar="COL", default=None, help="Comparison: its SE.")
@click.option("--vi", metavar="COL", default=None, help="Comparison: its variance.")
@click.option(
    "--measure",
    type=click.Choice(NETWORK_MEASURES, case_sensitive=False),
    default=None,
    help="Effect measure (arm-level data need one; GEN for generic comparisons).",
)
@click.option(
    "--method",
    type=click.Choice(NETWORK_METHODS, case_sensitive=False),
    default="DL",
    show_default=True,
    help="tau^2: netmeta's generalised DerSimonian-Laird, REML or ML.",
)
@click.option("--tau2", type=float, default=None, help="Fix tau^2 at this value.")
@click.option("--level", type=float, default=95.0, show_default=True, help="Confidence level.")
@click.option(
    "--add",
    type=float,
    default=0.5,
    show_default=True,
    help="Increment for a study with an arm of no (or only) events (netmeta's incr).",
)
@click.option(
    "--show",
    type=click.Choice(SHOW),
    default="summary",
    show_default=True,
    help="What to print: the summary, the league table, direct versus indirect "
    "evidence, or the ranking (SUCRA by simulation, with P-scores).",
)
@click.option("--nsim", type=int, default=10_000, show_default=True, help="Ranking: draws.")
@click.option("--seed", type=int, default=20_240_101, show_default=True, help="Ranking: seed.")
@output_options(format_help=None)
def network_command(
    file: str,
    method: str,
    level: float,
    show: str,
    model: str,
    output_format: str,
    output: str | None,
    **options: Any,
) -> None:
    """Network meta-analysis of the trials in FILE (CSV), as R's netmeta does it.

    One row per arm (--treatment with --events and --n, or --mean, --sd and --n, and a
    --measure), or one row per comparison (--treat1, --treat2 and the effect with
    --sei or --vi; a multi-arm trial gives all its comparisons).
    """
    res = fit_from_options(file, method.upper(), level, options)
    if output_format != "table":
        note_on_stderr((), res.excluded)
    write_output(_render(res, show, model, options, output_format), output)


def network_plot(kind: str, file: str, method: str, level: float, **options: Any) -> Any:
    """Fit the network of FILE and draw one of :data:`PLOT_KINDS`; returns the figure.

    ``metaan plot`` calls this with its own options (the effect-size flags give the
    arms' events and sizes or the comparisons' effects). Its ``--method`` defaults to
    REML; a network takes netmeta's default, DL, unless ``--method`` is given.
    """
    from metaan import plots

    ctx = click.get_current_context(silent=True)
    given = ctx is not None and ctx.get_parameter_source("method") not in (
        click.core.ParameterSource.DEFAULT,
        None,
    )
    chosen = method.upper() if given else "DL"
    if chosen not in NETWORK_METHODS:
        raise InputError(f"--method {method} does not fit a network", fix="use DL, REML or ML")
    res = fit_from_options(file, chosen, level, options)
    model = options.get("model", "random")
    title = options.get("title")
    if kind == "network":
        return plots.network_graph(res, title=title)
    if kind == "league":
        return plots.league_heatmap(res, model=model, title=title)
    if kind == "netsplit":
        return plots.netsplit_forest(
            netsplit(res, options["split_method"]), model=model, title=title
        )
    return plots.network_forest(res, model=model, title=title)
