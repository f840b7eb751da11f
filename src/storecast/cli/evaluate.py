"""`storecast backtest`: rolling-origin backtests of one model (or all) beside the baselines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from storecast.cli._common import (
    DataOpt,
    FormatOpt,
    console,
    declared,
    handle_errors,
    progress_steps,
    settings_from,
)
from storecast.data.readers import read_history
from storecast.evaluation.backtest import backtest
from storecast.evaluation.report import METRICS, backtest_report, models_for, predictions_frame

_LABELS = {"mape": "MAPE %", "wmape": "WAPE %", "wmae": "WMAE", "rmse": "RMSE", "bias": "bias %", "mase": "MASE",
           "wql": "WQL", "coverage_80": "cov80 %", "coverage_95": "cov95 %", "interval_score_80": "IS80"}


def _table(title: str, first: str, rows: list[dict[str, object]]) -> Table:
    table = Table(title=title)
    # The key column (model, cutoff, store) is never truncated; metric columns give way.
    width = max([len(first), *(len(str(row[first])) for row in rows)])
    table.add_column(first, no_wrap=True, min_width=width)
    for metric in METRICS:
        table.add_column(_LABELS[metric], justify="right")
    for row in rows:
        cells = [str(row[first])]
        for metric in METRICS:
            value = row.get(metric)
            if value is None:
                cells.append("")
            elif metric in ("wmae", "rmse"):
                cells.append(f"{value:,.0f}")
            elif metric in ("wql", "interval_score_80", "mase"):
                cells.append(f"{value:.3f}")
            else:
                cells.append(f"{value:.2f}")
        table.add_row(*cells)
    return table


def register(app: typer.Typer) -> None:
    @app.command("backtest")
    @handle_errors
    @declared
    def backtest_cmd(
        data: DataOpt,
        fmt: FormatOpt = None,
        horizon: Annotated[int | None, typer.Option("--horizon", "-h", min=1, max=104, help="Weeks per window.")] = None,
        windows: Annotated[int | None, typer.Option("--windows", "-w", min=1, max=52, help="Rolling origins.")] = None,
        step: Annotated[int | None, typer.Option("--step", "-s", min=1, max=104, help="Weeks between origins.")] = None,
        model: Annotated[str | None, typer.Option("--model", "-m", help="Model name, auto, or all.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
        jobs: Annotated[int | None, typer.Option("--jobs", "-j", min=0, max=256,
                                                 help="Worker processes (0 = one per core, 1 = in process).")] = None,
        quantiles: Annotated[str | None, typer.Option(
            "--quantiles", help="Quantile levels, comma-separated in (0, 1) (default 0.1,...,0.9).")] = None,
        predictions_out: Annotated[Path | None, typer.Option(
            "--predictions-out", help="Write every model's out-of-sample predictions to this Parquet file.")] = None,
        declaration: dict | None = None,
    ) -> None:
        """Backtest on rolling origins ending at the last week; baselines always beside."""
        settings = settings_from(declaration, data_format=fmt, horizon=horizon, backtest_windows=windows,
                                 backtest_step=step, backtest_jobs=jobs, quantiles=quantiles)
        with progress_steps() as say:
            say("reading data")
            dataset = read_history(data, settings, fmt)
            names = models_for(model or settings.model, dataset.level)
            result = backtest(dataset, names, horizon=settings.horizon, windows=settings.backtest_windows,
                              step=settings.backtest_step, seed=settings.seed, progress=say,
                              jobs=settings.resolved_backtest_jobs, quantiles=settings.quantiles)
        report = backtest_report(result)
        if predictions_out is not None:
            from storecast.delivery.files import write_atomic

            rows = predictions_frame(result)
            write_atomic(predictions_out, lambda handle: rows.to_parquet(handle, index=False))
            report["predictions_out"] = str(predictions_out)
        if as_json:
            typer.echo(json.dumps(report, indent=2))
            return
        console.print(_table("leaderboard", "model", report["leaderboard"]))
        console.print(_table(f"{report['model']} per window", "cutoff", report["windows"]))
        key = result.keys[0]
        console.print(_table(f"{report['model']} per {key}", key, report["stores"]))
        for name, reason in report["failures"].items():
            console.print(f"[yellow]{name} skipped:[/yellow] {reason}")
