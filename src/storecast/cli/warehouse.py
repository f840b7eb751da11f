"""`storecast ingest` and `storecast export`: sales into the warehouse, stored runs out of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from storecast.cli._common import (
    DataOpt,
    FormatOpt,
    WarehouseOpt,
    console,
    declared,
    handle_errors,
    progress_steps,
    say,
    settings_from,
)
from storecast.delivery.warehouse import Warehouse, export_run
from storecast.lifecycle.ingest import IngestResult, ingest_job

RestateOpt = Annotated[bool, typer.Option(
    "--allow-restatement", help="Accept rows that change stored weeks; the old values are kept in sales_restatements.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
RunOpt = Annotated[str, typer.Option("--run", help="Run id to export, or 'latest'.")]
ExportFormatOpt = Annotated[str, typer.Option("--format", "-f", help="csv (the BI file) or parquet (every stored row).")]
OutFileOpt = Annotated[Path, typer.Option("--out", "-o", help="File to write.")]


def _summary(result: IngestResult) -> Table:
    style = {"accepted": "green", "unchanged": "cyan", "rejected": "red"}[result.status]
    table = Table(title=f"ingest {result.ingest_id}: [{style}]{result.status}[/{style}]", title_justify="left",
                  show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    weeks = f"{result.first_week} .. {result.last_week}" if result.first_week else "-"
    for label, value in (
        ("file", result.source), ("rows in file", result.rows_total), ("new rows", result.rows_new),
        ("restated rows", result.rows_restated), ("unchanged rows", result.rows_unchanged),
        ("rejected rows", result.rows_rejected), ("weeks", weeks), ("warehouse", result.warehouse),
        ("result", result.message),
    ):
        table.add_row(label, Text(str(value)))
    for reason in result.reasons:
        table.add_row(Text("problem", style="red"), Text(reason))
    for warning in result.warnings:
        table.add_row(Text("warning", style="yellow"), Text(warning))
    return table


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    @declared
    def ingest(
        data: DataOpt,
        warehouse: WarehouseOpt = None,
        allow_restatement: RestateOpt = False,
        fmt: FormatOpt = None,
        as_json: JsonOpt = False,
        declaration: dict | None = None,
    ) -> None:
        """Append a new sales file to the warehouse history; exit 2 when it is rejected.

        A declared retailer's weekly file needs no declaration flags again: the warehouse
        keeps the one its data was read with."""
        settings = settings_from(declaration, data_format=fmt, warehouse_url=warehouse)
        with progress_steps() as step:
            result = ingest_job(settings, data, allow_restatement=allow_restatement, progress=step)
        if as_json:
            typer.echo(json.dumps(result.to_dict()))
        else:
            console.print(_summary(result))
        result.raise_for_status()

    @app.command()
    @handle_errors
    def export(
        out: OutFileOpt,
        run: RunOpt = "latest",
        fmt: ExportFormatOpt = "csv",
        warehouse: WarehouseOpt = None,
    ) -> None:
        """Re-export a stored run: the BI CSV or the full Parquet."""
        settings = settings_from(warehouse_url=warehouse)
        with Warehouse.from_settings(settings, read_only=True) as wh:  # shares the file with a running service
            path = export_run(wh, run, fmt, out)
        say(f"wrote {path}")
