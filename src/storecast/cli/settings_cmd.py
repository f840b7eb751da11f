"""`storecast config`: the effective settings and where each can be set."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from storecast.cli._common import console, handle_errors, settings_from
from storecast.config import Settings, settings_reference


def register(app: typer.Typer) -> None:
    @app.command("config")
    @handle_errors
    def config_cmd(
        as_json: Annotated[bool, typer.Option("--json", help="Print the effective settings as JSON.")] = False,
        markdown: Annotated[
            bool, typer.Option("--markdown", help="Print the reference table (defaults) as Markdown, as in the README.")
        ] = False,
    ) -> None:
        """Show every setting: its effective value, environment variable and meaning."""
        if markdown:
            typer.echo("| setting | environment variable | default | meaning |")
            typer.echo("| --- | --- | --- | --- |")
            for row in settings_reference():
                default = row["default"].replace("|", "\\|") or '""'
                typer.echo(f"| `{row['name']}` | `{row['env']}` | `{default}` | {row['description']} |")
            return
        settings: Settings = settings_from()
        values = settings.public_dump()  # keys hidden, passwords redacted
        if as_json:
            typer.echo(json.dumps(values, indent=2, sort_keys=True))
            return
        table = Table("setting", "value", "environment variable", "meaning")
        for row in settings_reference():
            shown = values.get(row["name"])
            if row["name"] == "api_keys" and shown:
                shown = f"[{len(settings.api_keys)} key(s) hidden]"
            table.add_row(row["name"], json.dumps(shown), row["env"], row["description"])
        console.print(table)
