"""The root command group and the error handling every command shares."""

from __future__ import annotations

import importlib
import warnings
from typing import Any

import click

from metaan.errors import MetaanError


class _Group(click.Group):
    """A group that turns a :class:`MetaanError` into one line and exit status 2, and
    a Python warning (a numerical one from numpy, say) into one ``metaan: warning:``
    line rather than a source listing.

    Commands are loaded lazily: :attr:`lazy` names, for each command, the module
    that registers it on the group when imported, and the module is imported only
    when the command runs or ``--help`` lists it. So ``metaan fit`` does not pay for
    the imports of ``metaan plot`` or ``metaan network``.
    """

    #: Command name -> the module that defines it.
    lazy: dict[str, str]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            importlib.import_module(self.lazy[cmd_name])  # registers the command
        return self.commands.get(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            try:
                return super().invoke(ctx)
            except MetaanError as exc:
                _echo_warnings(caught)
                click.echo(f"metaan: error: {exc}", err=True)
                ctx.exit(2)
            finally:
                _echo_warnings(caught)


def _echo_warnings(caught: list[warnings.WarningMessage]) -> None:
    for message in dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught):
        click.echo(f"metaan: warning: {message}", err=True)
    caught.clear()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="metaan", prog_name="metaan")
def main() -> None:
    """Meta-analysis of clinical trials, checked against R's metafor."""
