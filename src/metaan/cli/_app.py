"""The root command group and the error handling every command shares."""

from __future__ import annotations

from typing import Any

import click

from metaan.errors import MetaanError


class _Group(click.Group):
    """A group that turns a :class:`MetaanError` into one line and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MetaanError as exc:
            click.echo(f"metaan: error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="metaan", prog_name="metaan")
def main() -> None:
    """Meta-analysis of clinical trials, checked against R's metafor."""
