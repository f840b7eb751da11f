"""Write endpoints, behind an API key: weekly ingest and retraining.

Each calls the same library job as the CLI (``lifecycle.ingest.ingest_job``,
``lifecycle.retrain.retrain_job``) and reports its result; after a retrain the service
checks the registry at once, so a promoted champion is served without waiting for the
poller.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import shutil
import tempfile
from pathlib import Path as FilePath
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, File, Form, UploadFile

from storecast.errors import StorecastError, UsageError
from storecast.service.deps import SettingsDep, StateDep, WarehouseDep, WriteAccess
from storecast.service.schemas import JobResponse

router = APIRouter(tags=["jobs"], dependencies=[WriteAccess])

ALLOWED_SUFFIXES = (".csv", ".parquet", ".txt")


class Busy(StorecastError):
    http_status = 409
    code = "busy"


def summarize(result: object) -> dict[str, object]:
    """The JSON-able scalars of a job result (frames and models are left out)."""
    if not dataclasses.is_dataclass(result):
        return {}
    out: dict[str, object] = {}
    for f in dataclasses.fields(result):
        value = getattr(result, f.name)
        if isinstance(value, bool | int | str) or value is None:
            out[f.name] = value
        elif isinstance(value, float):
            out[f.name] = value if math.isfinite(value) else None
        elif isinstance(value, dt.date | pd.Timestamp):
            out[f.name] = value.isoformat()
        elif isinstance(value, FilePath):
            out[f.name] = str(value)
        elif isinstance(value, dict) and all(isinstance(v, int | float | str | None) for v in value.values()):
            out[f.name] = {str(k): (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in value.items()}
        elif isinstance(value, list) and all(isinstance(v, int | float | str) for v in value):
            out[f.name] = value
        elif dataclasses.is_dataclass(value):
            out[f.name] = summarize(value)
    return out


@router.post("/ingest", response_model=JobResponse, status_code=200,
             summary="Ingest a weekly sales file through the quality gate (same as `storecast ingest`).")
def ingest(
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="The weekly file (CSV or Parquet).")],
    allow_restatement: Annotated[bool, Form(description="Accept rows that change existing weeks.")] = False,
) -> JobResponse:
    from storecast.lifecycle.ingest import ingest_job

    name = FilePath(file.filename or "upload.csv").name
    suffix = FilePath(name).suffix.lower()
    if suffix not in ALLOWED_SUFFIXES:
        raise UsageError(f"file {name!r}: expected one of {', '.join(ALLOWED_SUFFIXES)}, got {suffix or 'no extension'!r}")
    with tempfile.TemporaryDirectory(prefix="storecast-upload-") as tmp:
        path = FilePath(tmp) / name
        with path.open("wb") as out:
            shutil.copyfileobj(file.file, out)
        result = ingest_job(settings, path, allow_restatement=allow_restatement)
    result.raise_for_status()  # a rejected file is a 422 naming the reasons; the history is unchanged
    return JobResponse(status=result.status, detail=summarize(result))


@router.post("/retrain", response_model=JobResponse,
             summary="Retrain now (same as `storecast train`); a better challenger becomes champion.",
             responses={409: {"description": "A retrain is already running."}})
def retrain(settings: SettingsDep, state: StateDep, warehouse: WarehouseDep) -> JobResponse:
    from storecast.lifecycle.retrain import retrain_job

    if not state.job_lock.acquire(blocking=False):
        raise Busy("a retrain is already running; try again when it has finished")
    try:
        history = warehouse.history()
        if history is None:
            raise UsageError("the warehouse holds no sales history to train on; ingest a file first (POST /ingest)")
        result = retrain_job(settings, history, trigger="manual")
    finally:
        state.job_lock.release()
    state.try_refresh()  # serve a newly promoted champion now, not at the next poll
    current = state.current
    trained = result.train
    detail = {
        "run_id": result.run_id, "champion_version": result.model_version,
        "challenger_version": trained.version.version, "challenger_model": trained.version.model_name,
        "promoted": trained.promoted, "reason": trained.reason,
        **summarize(trained),
    }
    return JobResponse(status="promoted" if trained.promoted else "kept", detail=detail,
                       model_version=None if current is None else current.version.version)

