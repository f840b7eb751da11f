"""`storecast validate`: read a file, run the quality gate, print the report."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from storecast.cli._common import (
    DataOpt,
    FormatOpt,
    console,
    declared,
    err_console,
    handle_errors,
    settings_from,
)
from storecast.data.quality import QualityReport
from storecast.data.readers import load

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as JSON (counts and row references).")]
_EXAMPLE_ROWS = 5


def _table(report: QualityReport) -> Table:
    table = Table(title=report.summary(), title_justify="left", show_lines=False)
    for name in ("check", "severity", "count", "example rows", "message"):
        table.add_column(name, overflow="fold")
    for issue in report.issues:
        style = "red" if issue.severity == "error" else "yellow"
        rows = ", ".join(str(r) for r in issue.rows[:_EXAMPLE_ROWS]) + (", ..." if len(issue.rows) > _EXAMPLE_ROWS else "")
        where = f"{issue.file}: " if issue.file and issue.file != report.source else ""
        table.add_row(issue.check, f"[{style}]{issue.severity}[/{style}]", str(issue.count), rows, where + issue.message)
    return table


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    @declared
    def validate(data: DataOpt, fmt: FormatOpt = None, as_json: JsonOpt = False, declaration: dict | None = None) -> None:
        """Check a history file against the quality gate; exit 2 when it has errors."""
        settings = settings_from(declaration, data_format=fmt)
        _, report = load(data, settings)
        if as_json:
            typer.echo(json.dumps(report.to_dict(), default=str))
        elif report.issues:
            console.print(_table(report))
        else:
            console.print(report.summary())
        if report.has_errors:
            err_console.print(f"error: {len(report.errors)} blocking problem(s) in {report.source}", markup=False)
            raise typer.Exit(2)
