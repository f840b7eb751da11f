"""Registered model versions, accuracy (backtest promise and realized), stored actuals."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Annotated, Any

import anyio
import numpy as np
import orjson
import pandas as pd
from fastapi import APIRouter, Path, Query, Request, Response

from storecast.data.schema import TARGET, WEEK
from storecast.errors import NotFoundError
from storecast.evaluation.metrics import bias, mape, wmape
from storecast.forecasting.hierarchy import level_name
from storecast.service.deps import ReadAccess, SnapshotDep, StateDep, WarehouseDep
from storecast.service.routes.forecasts import key_params
from storecast.service.scenario import check_store, resolve_node
from storecast.service.schemas import AccuracyResponse, ModelsResponse, SalesResponse
from storecast.service.state import Snapshot

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
            summary="Backtest metrics of the champion and realized accuracy per top-key value (Walmart: store).")
def accuracy(snap: SnapshotDep, warehouse: WarehouseDep) -> Response:
    errors = warehouse.read_forecast_errors()  # filled by `storecast monitor` as actuals arrive
    top = snap.keys[0]
    records = [
        {"store": _plain(value), **({top: _plain(value)} if top != "store" else {}),
         "mape": _round(mape(part["actual"], part["prediction"])),
         "wape": _round(wmape(part["actual"], part["prediction"])),
         "bias": _round(bias(part["actual"], part["prediction"])),
         "weeks": int(part[WEEK].nunique()), "forecasts": len(part),
         "last_week": pd.Timestamp(part[WEEK].max()).date().isoformat()}
        for value, part in errors.groupby(top, sort=True)
    ] if not errors.empty and top in errors else []
    payload = {
        "model_version": snap.version.version, "model": snap.info()["model"],
        "backtest": _finite(snap.version.metrics), "realized": records,
        "realized_available": bool(records),
    }
    return Response(orjson.dumps(payload), media_type=JSON)


def _plain(value: object) -> object:
    return int(value) if isinstance(value, (int, np.integer)) else str(value)


def _sales_body(snap: Snapshot, warehouse: Any, level: tuple[str, ...], values: tuple[Any, ...],
                weeks: int) -> dict[str, Any]:
    frame = warehouse.read_sales(keys=dict(zip(level, values, strict=True)))
    totals = frame.groupby(WEEK, as_index=False)[TARGET].sum().sort_values(WEEK).tail(weeks)
    rows = [{"week": pd.Timestamp(w).date().isoformat(), "sales": round(float(v), 2)}
            for w, v in zip(totals[WEEK], totals[TARGET], strict=True)]
    named = {k: _plain(v) for k, v in zip(level, values, strict=True)}
    return {**({"store": named.get(snap.keys[0])} if level else {}), "level": level_name(level) if not
            snap.spec.preset else snap.level, "series": named, "sales": rows}


WeeksOpt = Annotated[int, Query(ge=1, le=520, description="Most recent weeks to return.")]


@router.get("/sales", response_model=SalesResponse,
            summary="Actual weekly sales of any series or level by key, e.g. ?store=2&brand=... (none: the chain).")
def sales_by_key(request: Request, snap: SnapshotDep, warehouse: WarehouseDep, weeks: WeeksOpt = 104) -> Response:
    level, values = resolve_node(snap, key_params(request))
    return Response(orjson.dumps(_sales_body(snap, warehouse, level, values, weeks)), media_type=JSON)


@router.get("/sales/{store}", response_model=SalesResponse,
            summary="A store's (top-key value's) recent actual weekly sales, its series summed.")
def sales(
    snap: SnapshotDep,
    warehouse: WarehouseDep,
    store: Annotated[str, Path(max_length=200, description="Store number (the top key's value).")],
    weeks: WeeksOpt = 104,
) -> Response:
    value = snap.typed(snap.keys[0], store)
    if value is None:
        raise NotFoundError(f"{snap.keys[0]} {store!r} has no forecast ({snap.keys[0]} values are whole numbers)")
    check_store(snap, value)
    return Response(orjson.dumps(_sales_body(snap, warehouse, (snap.keys[0],), (value,), weeks)), media_type=JSON)
