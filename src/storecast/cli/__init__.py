"""The thin command line over the library: each command parses, calls one function, reports."""

from __future__ import annotations

from typing import Annotated

import typer

from storecast import __version__
from storecast.cli import (
    data,
    evaluate,
    forecast,
    lifecycle,
    service,
    settings_cmd,
    warehouse,
    whatif,
)
from storecast.cli._common import configure

app = typer.Typer(
    name="storecast",
    help="Weekly retail sales forecasts you can trust in production.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"storecast {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging; tracebacks on errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors and the final result.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    configure(verbose, quiet)


forecast.register(app)
evaluate.register(app)
data.register(app)
settings_cmd.register(app)
service.register(app)
warehouse.register(app)
lifecycle.register(app)
whatif.register(app)


def main() -> None:
    app()
