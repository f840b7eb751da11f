"""Prefect flows (optional extra ``storecast[prefect]``): the maintenance plan on a schedule.

- ``weekly_refresh``: ingest every new file in ``settings.refresh_inbox`` -> forecast with
  the champion -> export -> monitor -> retrain if the policy says so (drift, new month);
- ``retrain``: train a challenger -> backtest against the champion -> promote or keep ->
  forecast.

Each task calls the same library function as the CLI (``storecast refresh``, ``storecast
train``), so cron users get the same behaviour without Prefect. Prefect is imported only
when a flow is built, with an install hint when it is missing; ``make demo`` never needs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from storecast.config import Settings
from storecast.errors import require

DONE_DIR = "done"
REJECTED_DIR = "rejected"


def inbox_files(settings: Settings) -> list[Path]:
    """New files waiting in the inbox, oldest name first (weekly files sort by their date)."""
    inbox = settings.refresh_inbox
    if not inbox.is_dir():
        return []
    return sorted(p for p in inbox.iterdir() if p.is_file() and p.suffix.lower() in {".csv", ".parquet"})


def _file_away(path: Path, folder: str) -> Path:
    target = path.parent / folder
    target.mkdir(exist_ok=True)
    return path.replace(target / path.name)


def build_flows(settings: Settings) -> dict[str, Any]:
    """The two flows, bound to ``settings`` (built lazily: importing Prefect is slow)."""
    prefect = require("prefect", "prefect")
    flow, task = prefect.flow, prefect.task

    from storecast.lifecycle.jobs import refresh_job
    from storecast.lifecycle.retrain import retrain_job

    @task(name="refresh-week")
    def refresh_one(path: Path | None, retrain: bool) -> dict[str, Any]:
        try:
            result = refresh_job(settings, path, retrain=retrain)
        except Exception:
            if path is not None:
                _file_away(path, REJECTED_DIR)
            raise
        if path is not None:
            _file_away(path, DONE_DIR)
        return {
            "file": str(path) if path else None, "run_id": result.run_id, "model_version": result.model_version,
            "as_of": str(result.as_of.date()), "monitoring": result.report.status,
            "alerts": [c.message for c in result.report.alerts],
            "retrained": result.decision.trigger if result.retrain is not None else None,
        }

    @flow(name="weekly_refresh", log_prints=False)
    def weekly_refresh(retrain: bool = True) -> list[dict[str, Any]]:
        """Ingest each inbox file in order, forecast, export, monitor; retrain when due."""
        files = inbox_files(settings)
        if not files:
            return [refresh_one(None, retrain)]
        # One file at a time: each week's monitoring must see the weeks before it.
        return [refresh_one(path, retrain and path == files[-1]) for path in files]

    @task(name="train-promote-forecast")
    def train_and_forecast(trigger: str) -> dict[str, Any]:
        result = retrain_job(settings, None, trigger=trigger)
        t = result.train
        return {"version": t.version.version, "promoted": t.promoted, "reason": t.reason,
                "champion_version": result.model_version, "run_id": result.run_id}

    @flow(name="retrain", log_prints=False)
    def retrain(trigger: str = "schedule") -> dict[str, Any]:
        """Train a challenger on the warehouse history, promote it or keep the champion, forecast."""
        return train_and_forecast(trigger)

    return {"weekly_refresh": weekly_refresh, "retrain": retrain}


def serve(settings: Settings) -> None:
    """Serve both flows on their cron schedules until interrupted (``storecast schedule``)."""
    prefect = require("prefect", "prefect")
    flows = build_flows(settings)
    deployments = [
        flows["weekly_refresh"].to_deployment(name="storecast-weekly-refresh", cron=settings.refresh_cron),
        flows["retrain"].to_deployment(name="storecast-monthly-retrain", cron=settings.retrain_cron),
    ]
    prefect.serve(*deployments)
