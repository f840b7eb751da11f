"""Registered model versions, accuracy (backtest promise and realized), stored actuals."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Annotated

import anyio
import orjson
import pandas as pd
from fastapi import APIRouter, Path, Query, Response

from storecast.data.schema import STORE, TARGET, WEEK
from storecast.evaluation.metrics import bias, mape
from storecast.service.deps import ReadAccess, SnapshotDep, StateDep, WarehouseDep
from storecast.service.scenario import check_store
from storecast.service.schemas import MAX_STORE, AccuracyResponse, ModelsResponse, SalesResponse

router = APIRouter(tags=["models"], dependencies=[ReadAccess])

JSON = "application/json"


def _round(value: float) -> float | None:
    return round(float(value), 4) if value is not None and math.isfinite(value) else None


def _finite(metrics: dict[str, float]) -> dict[str, float | None]:
    return {k: (v if v is not None and math.isfinite(v) else None) for k, v in metrics.items()}


@router.get("/models", response_model=ModelsResponse, summary="Registered model versions and the champion.")
async def models(state: StateDep) -> ModelsResponse:
    versions = await anyio.to_thread.run_sync(state.source.versions)
    current = state.current
    return ModelsResponse(
        champion=next((v.version for v in versions if v.is_champion), None),
        serving=None if current is None else current.version.version,
        versions=[{**asdict(v), "metrics": _finite(v.metrics)} for v in versions],  # type: ignore[misc]
    )


@router.get("/accuracy", response_model=AccuracyResponse,
            summary="Backtest metrics of the champion and realized accuracy per store.")
def accuracy(snap: SnapshotDep, warehouse: WarehouseDep) -> Response:
    errors = warehouse.read_forecast_errors()  # filled by `storecast monitor` as actuals arrive
    records = [
        {"store": int(store),
         "mape": _round(mape(part["actual"], part["prediction"])),
         "bias": _round(bias(part["actual"], part["prediction"])),
         "weeks": int(part[WEEK].nunique()), "forecasts": len(part),
         "last_week": pd.Timestamp(part[WEEK].max()).date().isoformat()}
        for store, part in errors.groupby(STORE, sort=True)
    ] if not errors.empty else []
    payload = {
        "model_version": snap.version.version, "model": snap.info()["model"],
        "backtest": _finite(snap.version.metrics), "realized": records,
        "realized_available": bool(records),
    }
    return Response(orjson.dumps(payload), media_type=JSON)


@router.get("/sales/{store}", response_model=SalesResponse, summary="A store's recent actual weekly sales.")
def sales(
    snap: SnapshotDep,
    warehouse: WarehouseDep,
    store: Annotated[int, Path(ge=1, le=MAX_STORE, description="Store number.")],
    weeks: Annotated[int, Query(ge=1, le=520, description="Most recent weeks to return.")] = 104,
) -> Response:
    check_store(snap, store)
    frame = warehouse.read_sales(store=store)
    totals = frame.groupby(WEEK, as_index=False)[TARGET].sum().sort_values(WEEK).tail(weeks)
    rows = [{"week": pd.Timestamp(w).date().isoformat(), "sales": round(float(v), 2)}
            for w, v in zip(totals[WEEK], totals[TARGET], strict=True)]
    body = {"store": store, "level": snap.level, "sales": rows}
    return Response(orjson.dumps(body), media_type=JSON)

