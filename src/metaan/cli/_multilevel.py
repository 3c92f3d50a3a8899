"""``metaan fit --levels`` and ``metaan fit --outcome``: multilevel and multivariate
models from the command line (the options are added to ``metaan fit`` by
:func:`multilevel_options`; the work is in :mod:`metaan.multilevel`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from metaan.cli._common import compute_effects_from_options, frame_as_csv, json_text, read_input
from metaan.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

#: The choices of --struct and --robust, as metaan.multilevel.STRUCTS and
#: metaan.robust.KINDS define them (a test checks they agree); spelt out here so
#: that ``metaan fit`` without these options does not import the multilevel engine.
STRUCTS = ("CS", "HCS", "UN")
KINDS = ("CR1", "CR2")

__all__ = ["MULTILEVEL_OPTIONS", "multilevel_options", "run_multilevel"]

F = TypeVar("F", bound=Callable[..., Any])

#: The keywords :func:`multilevel_options` adds to a command.
MULTILEVEL_OPTIONS = ("levels", "outcome", "study", "struct", "rho", "cluster", "robust_kind")


def multilevel_options(func: F) -> F:
    """Add --levels, --outcome, --study, --struct, --rho, --cluster and --robust."""
    options = [
        click.option(
            "--levels",
            metavar="COL[,COL...]",
            default=None,
            help="Multilevel model with nested random effects, outermost first "
            "(study,esid is rma.mv's ~ 1 | study/esid).",
        ),
        click.option(
            "--outcome", metavar="COL", default=None,
            help="Multivariate model: the outcome of each row (~ outcome | study).",
        ),
        click.option("--study", metavar="COL", default=None, help="With --outcome: the study."),
        click.option(
            "--struct", type=click.Choice(STRUCTS, case_sensitive=False), default="UN",
            show_default=True, help="With --outcome: the outcomes' covariance structure.",
        ),
        click.option(
            "--rho", type=float, default=None,
            help="Correlation of the sampling errors of effects in one --cluster "
            "(metafor's vcalc; different innermost-level units, or outcomes).",
        ),
        click.option(
            "--cluster", metavar="COL", default=None,
            help="The cluster of correlated sampling errors (with --rho) and of the robust "
            "tests (default: the outermost level or the study).",
        ),
        click.option(
            "--robust", "robust_kind", type=click.Choice(KINDS, case_sensitive=False),
            default=None, help="Add cluster-robust tests: CR1 (metafor) or CR2 (clubSandwich).",
        ),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


def run_multilevel(
    file: str,
    method: str,
    test: str,
    level: float,
    mods: str | None,
    output_format: str,
    options: dict[str, Any],
) -> str:
    """Fit the model the options ask for and render it."""
    from metaan.multilevel import fit_multilevel, fit_multivariate
    from metaan.robust import robust

    levels, outcome = options.get("levels"), options.get("outcome")
    if levels and outcome:
        raise InputError("give --levels or --outcome, not both")
    if method.upper() not in {"REML", "ML"}:
        raise InputError(
            f"a multilevel model is fitted by REML or ML, not {method}", fix="use --method REML"
        )
    if test.lower() not in {"z", "t"}:
        raise InputError(f"use --test z or t with a multilevel model, not {test}")
    table = read_input(file, options)
    effects = compute_effects_from_options(file, table, **options)
    names = [n.strip() for n in str(levels).split(",")] if levels else []
    for column in [*names, outcome, options.get("study"), options.get("cluster")]:
        if column and column not in effects.columns:
            raise InputError(
                f"there is no column {column!r}",
                file=file,
                column=column,
                fix=f"use one of {', '.join(map(str, table.columns))}",
            )
    mod_names = [m.strip() for m in mods.split(",")] if mods else None
    V = _sampling(effects, names, options)
    common: dict[str, Any] = dict(
        V=V, mods=mod_names, method=method, test=test.lower(), level=level,
        labels=options.get("label"), source=file,
    )  # fmt: skip
    if names:
        res = fit_multilevel(effects, levels=names, **common)
    else:
        if not options.get("study"):
            raise InputError("--outcome needs --study", fix="name the study column")
        res = fit_multivariate(
            effects,
            outcome=str(outcome),
            study=str(options["study"]),
            struct=str(options["struct"]),
            **common,
        )
    kind = options.get("robust_kind")
    rob = None
    if kind:
        cluster = options.get("cluster")
        in_model = cluster in res.state.clusters if cluster else True
        rob = robust(res, cluster=cluster, kind=kind, data=None if in_model else effects)
    return _render(res, rob, output_format)


def _sampling(effects: pd.DataFrame, names: list[str], options: dict[str, Any]) -> Any:
    """The sampling covariance: vcalc with --rho within --cluster (effects of one
    cluster with different innermost-level units, or outcomes, correlate with rho),
    else the variances alone."""
    rho, cluster = options.get("rho"), options.get("cluster")
    if rho is None:
        return None
    outcome = options.get("outcome")
    cluster = str(cluster or (names[0] if names else options.get("study")))
    obs = names[-1] if names else outcome
    from metaan.vcalc import vcalc

    return vcalc(effects, vi="vi", cluster=cluster, obs=obs, rho=float(rho))


def _render(res: Any, rob: Any, output_format: str) -> str:
    if output_format == "json":
        doc = res.to_dict()
        if rob is not None:
            doc["robust"] = rob.to_dict()
        return json_text(doc)
    if output_format == "csv":
        frame = res.to_frame()
        if rob is not None:
            extra = rob.to_frame().drop(columns=["name", "estimate"]).add_prefix("robust_")
            import pandas as pd

            frame = pd.concat([frame, extra], axis=1)
        return frame_as_csv(frame)
    text = str(res.summary()) + "\n"
    if rob is not None:
        text += "\n" + rob.summary() + "\n"
    return text
