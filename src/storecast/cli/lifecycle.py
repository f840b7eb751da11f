"""Maintenance commands: train, refresh, models, monitor, schedule, simulate.

Each parses its options, calls one library function from ``storecast.lifecycle`` and reports.
"""

from __future__ import annotations

import datetime as dt
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
    say,
    settings_from,
)
from storecast.errors import UsageError

OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Output directory (registry and warehouse live here by default).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

models_app = typer.Typer(help="The model registry: list, promote, roll back, available models.", no_args_is_help=True)


def _fmt(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.2f}"


def _echo_json(payload: object) -> None:
    typer.echo(json.dumps(payload, indent=2, default=str))


@models_app.command("list")
@handle_errors
def models_list(out: OutOpt = None, as_json: JsonOpt = False) -> None:
    """Registered versions, oldest first; the champion is marked."""
    from dataclasses import asdict

    from storecast.lifecycle.registry import Registry

    versions = Registry(settings_from(out_dir=out)).versions()
    if as_json:
        _echo_json([asdict(v) for v in versions])
        return
    table = Table("version", "champion", "model", "MAPE %", "WMAPE %", "trained to", "data", "created", "run")
    for v in versions:
        table.add_row(v.version, "*" if v.is_champion else "", v.model_name, _fmt(v.metrics.get("mape")),
                      _fmt(v.metrics.get("wmape")), v.trained_to, v.data_fingerprint, v.created_at, v.run_id)
    console.print(table if versions else "no registered versions yet; run `storecast train` or `storecast run`")


@models_app.command("promote")
@handle_errors
def models_promote(version: Annotated[str, typer.Argument(help="Version to make champion.")], out: OutOpt = None) -> None:
    """Make a version the champion by hand (the previous one stays available for rollback)."""
    from storecast.lifecycle.registry import Registry

    v = Registry(settings_from(out_dir=out)).promote(version)
    say(f"version {v.version} ({v.model_name}) is now the champion")


@models_app.command("rollback")
@handle_errors
def models_rollback(out: OutOpt = None) -> None:
    """Return the champion to the version that held it before."""
    from storecast.lifecycle.registry import Registry

    v = Registry(settings_from(out_dir=out)).rollback()
    say(f"rolled back: version {v.version} ({v.model_name}) is the champion again")


@models_app.command("available")
@handle_errors
def models_available() -> None:
    """Model names usable with --model / STORECAST_MODEL."""
    from storecast.models import DEFAULT_MODEL, MODELS

    table = Table("model", "needs weeks", "description")
    for name, klass in sorted(MODELS.items()):
        table.add_row(name + (" (auto)" if name == DEFAULT_MODEL else ""), str(klass.min_history_weeks), klass.description)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")

    @app.command()
    @handle_errors
    @declared
    def train(
        data: Annotated[Path | None, typer.Option("--data", "-d", help="History file; omit to train on the warehouse history.")] = None,
        fmt: FormatOpt = None,
        out: OutOpt = None,
        model: Annotated[str | None, typer.Option("--model", "-m", help="Challenger model name, or auto.")] = None,
        as_json: JsonOpt = False,
        declaration: dict | None = None,
    ) -> None:
        """Train a challenger, backtest it against the champion on the same data, promote only if better."""
        from storecast.lifecycle.retrain import retrain_job

        settings = settings_from(declaration, out_dir=out, model=model, data_format=fmt)
        with progress_steps() as step:
            result = retrain_job(settings, data, fmt=fmt, trigger="manual", progress=step)
        t = result.train
        if as_json:
            _echo_json({"version": t.version.version, "model": t.version.model_name, "promoted": t.promoted,
                        "reason": t.reason, "challenger_mape": t.challenger_mape, "champion_mape": t.champion_mape,
                        "champion_version": result.model_version, "forecast_run_id": result.run_id})
            return
        verdict = "promoted to champion" if t.promoted else "kept as challenger"
        say(f"version {t.version.version} ({t.version.model_name}) {verdict}: {t.reason}")
        say(f"forecast run {result.run_id} by champion version {result.model_version}")

    @app.command()
    @handle_errors
    @declared
    def refresh(
        data: Annotated[Path | None, typer.Option("--data", "-d", help="This week's file; omit to refresh from the warehouse.")] = None,
        fmt: FormatOpt = None,
        out: OutOpt = None,
        allow_restatement: Annotated[bool, typer.Option("--allow-restatement", help="Accept rows that change stored weeks.")] = False,
        no_retrain: Annotated[bool, typer.Option("--no-retrain", help="Never retrain, even when the policy says so.")] = False,
        declaration: dict | None = None,
    ) -> None:
        """The weekly refresh: ingest -> forecast with the champion -> monitor -> retrain if due."""
        from storecast.lifecycle.jobs import refresh_job

        settings = settings_from(declaration, out_dir=out, data_format=fmt)
        with progress_steps() as step:
            result = refresh_job(settings, data, fmt=fmt, allow_restatement=allow_restatement,
                                 retrain=not no_retrain, progress=step)
        say(f"forecast run {result.run_id} by champion version {result.model_version}, data to {result.as_of.date()}")
        say(f"monitoring: {result.report.status} ({len(result.report.alerts)} alerts)")
        if result.retrain is not None:
            t = result.retrain.train
            say(f"retrained ({result.decision.trigger}): version {t.version.version} "
                f"{'promoted' if t.promoted else 'kept as challenger'}: {t.reason}")
        else:
            say(f"no retraining: {result.decision.reason}")

    @app.command()
    @handle_errors
    def monitor(out: OutOpt = None, as_json: JsonOpt = False) -> None:
        """Realized accuracy and drift checks on the warehouse; alerts go to the log and the webhook."""
        from storecast.lifecycle.monitoring import monitor_job

        report = monitor_job(settings_from(out_dir=out))
        if as_json:
            _echo_json(report.to_dict())
            return
        say(f"as of {report.as_of}, champion version {report.champion_version}: [bold]{report.status}[/bold]")
        table = Table("check", "subject", "status", "value", "warn", "alert", "message")
        for c in report.checks:
            table.add_row(c.name, c.subject, c.status, _fmt(c.value), _fmt(c.warn), _fmt(c.alert), c.message)
        console.print(table)

    @app.command()
    @handle_errors
    def schedule(
        out: OutOpt = None,
        inbox: Annotated[Path | None, typer.Option("--inbox", help="Folder the weekly refresh reads new files from.")] = None,
    ) -> None:
        """Serve the Prefect flows on their cron schedules (needs the prefect extra: pip install "storecast\\[prefect]")."""
        from storecast.lifecycle.flows import serve

        settings = settings_from(out_dir=out, refresh_inbox=inbox)
        say(f"serving weekly_refresh ({settings.refresh_cron}) and retrain ({settings.retrain_cron}); Ctrl-C stops")
        serve(settings)

    @app.command()
    @handle_errors
    @declared
    def simulate(
        data: DataOpt,
        start: Annotated[str, typer.Option("--start", help="Last week the first model sees (YYYY-MM-DD).")],
        fmt: FormatOpt = None,
        out: OutOpt = None,
        model: Annotated[str | None, typer.Option("--model", "-m", help="Model name, or auto.")] = None,
        as_json: JsonOpt = False,
        declaration: dict | None = None,
    ) -> None:
        """Replay history week by week through refresh, monitoring and retraining."""
        from storecast.lifecycle.simulate import simulate as run_simulation

        try:
            start_date = dt.date.fromisoformat(start)
        except ValueError:
            raise UsageError(f"--start must be a date as YYYY-MM-DD, got {start!r}") from None
        settings = settings_from(declaration, out_dir=out, model=model, data_format=fmt)
        with progress_steps() as step:
            result = run_simulation(settings, data, start_date, fmt=fmt, out=settings.out_dir, progress=step)
        if as_json:
            _echo_json(result.to_dict())
            return
        table = Table("week", "realized MAPE %", "promised %", "champion", "status", "retrained")
        for row in result.weekly.itertuples(index=False):
            table.add_row(str(row.week.date()), _fmt(row.realized_mape), _fmt(row.promised_mape),
                          str(row.champion), row.status, row.retrained)
        console.print(table)
        for r in result.retrains:
            say(f"retrain {r['week']} ({r['trigger']}): {r['reason']} -> version {r['version']}, {r['decision']}")
        say(f"{len(result.alerts)} alerts; realized MAPE {result.realized_mape:.2f}% "
            f"(all horizons {result.realized_mape_all_steps:.2f}%) vs promised {result.promised_mape:.2f}% "
            f"in {result.seconds:.0f}s")
        for key, path in result.files.items():
            say(f"{key:>6}: {path}")
