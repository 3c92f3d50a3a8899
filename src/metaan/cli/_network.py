"""``metaan network``: a network meta-analysis of the trials in a file, and the network
plots of ``metaan plot`` (``network``, ``league``, ``netsplit``, ``netforest``).

Both take the effect-size flags of ``metaan fit`` (the arms' ``--events`` and ``--n``,
a comparison's ``--yi`` with ``--sei`` or ``--vi``, ``--measure``, ``--add`` and the
reading flags) and the network flags of :func:`network_plot_options`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click

from metaan.cli._app import main
from metaan.cli._common import (
    chosen_format,
    effect_options,
    frame_as_csv,
    json_text,
    naming_file,
    note_on_stderr,
    output_options,
    read_input,
    with_excluded_rows,
    write_output,
)
from metaan.errors import InputError
from metaan.network import (
    NETWORK_METHODS,
    SMALL_VALUES,
    SPLIT_METHODS,
    NetworkResult,
    fit_network,
    netsplit,
    sucra,
)
from metaan.results import Exclusion

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["PLOT_KINDS", "network_plot", "network_plot_options"]

F = TypeVar("F", bound=Callable[..., Any])

#: The network kinds of ``metaan plot``.
PLOT_KINDS = ("network", "league", "netsplit", "netforest")
SHOW = ("summary", "league", "netsplit", "ranking")


def _options(options: list[Callable[[F], F]]) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def network_plot_options(*, study: bool = True) -> Callable[[F], F]:
    """The flags of a network that the effect-size flags do not have, shared by
    ``metaan network`` and ``metaan plot``. ``metaan plot`` has its own ``--study``
    (passed as ``study_column``), so it asks for them without it."""
    study_flag: list[Callable[[F], F]] = []
    if study:
        study_flag.append(
            click.option(
                "--study",
                "study_column",
                metavar="COL",
                default="study",
                show_default=True,
                help="Network: column of the study label.",
            )
        )
    return _options(
        [
            *study_flag,
            click.option(
                "--treatment",
                metavar="COL",
                default=None,
                help="Network, one row per arm: the arm's treatment (with --events and --n, "
                "or --mean, --sd and --n).",
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
            click.option("--mean", metavar="COL", default=None, help="Network: arm mean."),
            click.option("--sd", metavar="COL", default=None, help="Network: arm SD."),
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
                "arms, with the increment --add, as netmeta's allstudies.",
            ),
            click.option(
                "--tau2",
                type=float,
                default=None,
                help="Network: fix tau^2 at this value instead of estimating it.",
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
    )


def fit_from_options(file: str, method: str, level: float, o: dict[str, Any]) -> NetworkResult:
    """Read FILE and fit the network the parsed options describe."""
    table = read_input(file, o)
    columns: dict[str, Any] = {"study": o.get("study_column") or "study"}
    if o.get("treatment") is not None:
        columns |= {"treatment": o["treatment"], "events": o.get("xi"), "n": o.get("ni")}
        columns |= {"mean": o.get("mean"), "sd": o.get("sd")}
    else:
        given = {"treat1": o.get("treat1"), "treat2": o.get("treat2"), "yi": o.get("yi")}
        columns |= {k: v for k, v in given.items() if v is not None}
        columns |= {"vi": o.get("vi"), "sei": o.get("sei")}
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


def _render(res: NetworkResult, show: str, o: dict[str, Any], fmt: str) -> str:
    model: Literal["common", "random"] = "common" if o.get("model") == "common" else "random"
    if show == "league":
        if fmt == "json":
            return json_text(res.league_dict(model))
        league = res.league(model)
        return frame_as_csv(league.reset_index()) if fmt == "csv" else league.to_string() + "\n"
    if show == "netsplit":
        split = netsplit(res, o["split_method"])
        if fmt == "json":
            return json_text(split.to_dict())
        frame = split.to_frame(model)
    elif show == "ranking":
        ranking = sucra(res, model=model, nsim=o["nsim"], seed=o["seed"])
        if fmt == "json":
            return json_text(ranking.to_dict())
        frame = ranking.to_frame()
    elif fmt == "json":
        return json_text(res.to_dict())
    elif fmt == "csv":
        return frame_as_csv(with_excluded_rows(res.to_frame(), res.excluded))
    else:
        return res.summary() + "\n"
    return frame_as_csv(frame) if fmt == "csv" else frame.to_string(index=False) + "\n"


@main.command("network")
@click.argument("file", metavar="FILE")
@effect_options
@network_plot_options()
@click.option(
    "--method",
    type=click.Choice(NETWORK_METHODS, case_sensitive=False),
    default="DL",
    show_default=True,
    help="tau^2: netmeta's generalised DerSimonian-Laird, REML or ML.",
)
@click.option("--level", type=float, default=95.0, show_default=True, help="Confidence level.")
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
    output_format: str | None,
    output: str | None,
    **options: Any,
) -> None:
    """Network meta-analysis of the trials in FILE, as R's netmeta does it.

    One row per arm (--treatment with --events and --n, or --mean, --sd and --n, and a
    --measure), or one row per comparison (--treat1, --treat2 and the effect --yi with
    --sei or --vi; a multi-arm trial gives all its comparisons).
    """
    with naming_file(file):
        res = fit_from_options(file, method.upper(), level, options)
        text = _render(res, show, options, chosen_format(output_format, output))
    note_on_stderr((), res.excluded, file)
    write_output(text, output, [file])


def network_plot(
    req: Any, params: dict[str, Any], options: dict[str, Any]
) -> tuple[Figure, tuple[Exclusion, ...]]:
    """The network plot ``metaan plot`` asked for (``req`` is its checked request,
    ``params`` and ``options`` its other flags), and the rows the fit left out.

    ``metaan plot``'s ``--method`` defaults to REML; a network takes netmeta's default,
    DL, unless ``--method`` is given.
    """
    from metaan import plots

    ctx = click.get_current_context(silent=True)
    source = None if ctx is None else ctx.get_parameter_source("method")
    chosen = "DL" if source in (None, click.core.ParameterSource.DEFAULT) else req.method.upper()
    if chosen not in NETWORK_METHODS:
        raise InputError(f"--method {req.method} does not fit a network", fix="use DL, REML or ML")
    res = fit_from_options(req.file, chosen, req.level, {**params, **options})
    model = "common" if params.get("model") == "common" else "random"
    fig: Figure
    if req.kind == "network":
        fig = plots.network_graph(res, title=req.title)
    elif req.kind == "league":
        fig = plots.league_heatmap(res, model=model, title=req.title)
    elif req.kind == "netsplit":
        split = netsplit(res, params["split_method"])
        fig = plots.netsplit_forest(split, model=model, xlim=req.xlim, title=req.title)
    else:
        fig = plots.network_forest(res, model=model, xlim=req.xlim, title=req.title)
    return fig, res.excluded
