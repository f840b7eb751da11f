"""`storecast run` and `storecast demo`: the main job."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from storecast.cli._common import (
    DataOpt,
    FormatOpt,
    WarehouseOpt,
    console,
    declared,
    handle_errors,
    progress_steps,
    settings_from,
)
from storecast.lifecycle.jobs import RunResult, run_job

HorizonOpt = Annotated[int | None, typer.Option("--horizon", "-h", help="Weeks to forecast.", min=1, max=104)]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Output directory.")]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="Model name, or auto.")]
QuantilesOpt = Annotated[str | None, typer.Option(
    "--quantiles", help="Quantile levels every forecast carries, comma-separated in (0, 1) (default 0.1,...,0.9).")]


def _report(result: RunResult) -> None:
    """The final result: printed even with -q (which silences only progress and logs)."""
    console.print(f"[bold]run[/bold] {result.run_id}  model [bold]{result.model}[/bold]")
    m = result.metrics
    if result.level == "dept":
        # A percentage of a department week near zero is meaningless; weighted errors lead.
        line = f"backtest WMAPE {m['wmape']:.2f}%  WMAE {m['wmae']:,.0f}"
    else:
        line = f"backtest MAPE {m['mape']:.2f}%  WMAPE {m['wmape']:.2f}%"
    if "wql" in m and m["wql"] == m["wql"]:
        line += f"  WQL {m['wql']:.3f}"
    console.print(line)
    for note in result.notes:
        console.print(f"[yellow]warning:[/yellow] {note}")
    if result.model_version:
        state = "champion" if result.promoted else "registered, champion kept"
        console.print(f"model version {result.model_version} ({state}: {result.promotion_reason})")
    for label, key in (("CSV", "csv"), ("Parquet", "parquet"), ("dashboard", "dashboard"), ("run record", "run_json")):
        console.print(f"{label:>10}: {result.files[key]}")
    console.print(f"{'warehouse':>10}: {result.warehouse_url}")


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    @declared
    def run(
        data: DataOpt,
        fmt: FormatOpt = None,
        horizon: HorizonOpt = None,
        out: OutOpt = None,
        warehouse: WarehouseOpt = None,
        model: ModelOpt = None,
        quantiles: QuantilesOpt = None,
        declaration: dict | None = None,
    ) -> None:
        """Read, validate, backtest, train, forecast and deliver (CSV, Parquet, dashboard, warehouse)."""
        settings = settings_from(declaration, data_format=fmt, horizon=horizon, out_dir=out, warehouse_url=warehouse,
                                 model=model, quantiles=quantiles)
        with progress_steps() as step:
            result = run_job(settings, data, progress=step)
        _report(result)

    @app.command()
    @handle_errors
    def demo(
        out: OutOpt = None,
        warehouse: WarehouseOpt = None,
        horizon: HorizonOpt = None,
    ) -> None:
        """Run the main job on built-in synthetic data shaped like Walmart.csv."""
        from storecast.synthetic import write_walmart_csv

        settings = settings_from(out_dir=out, warehouse_url=warehouse, horizon=horizon)
        data = write_walmart_csv(settings.out_dir / "demo_data" / "walmart_synthetic.csv")
        console.print(f"built-in data: {data}")
        with progress_steps() as step:
            result = run_job(settings, data, fmt="walmart", progress=step)
        _report(result)
