"""Stores, stored forecasts (per store, per week) and what-if scenarios."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import numpy as np
import orjson
import pandas as pd
from fastapi import APIRouter, Path, Query, Request, Response

from storecast.data.schema import DEPT, STORE
from storecast.errors import NotFoundError, UsageError
from storecast.service.deps import ReadAccess, SnapshotDep, WarehouseDep
from storecast.service.scenario import check_store, what_if
from storecast.service.schemas import (
    MAX_STORE,
    MAX_WEEKS,
    PredictRequest,
    PredictResponse,
    StoreForecast,
    StoresResponse,
    WeekForecast,
)
from storecast.service.state import join_rows

router = APIRouter(tags=["forecasts"], dependencies=[ReadAccess])

JSON = "application/json"
CSV_COLUMNS = ("store", "dept", "week", "step", "yhat", "lo_80", "hi_80", "lo_95", "hi_95")


@router.get("/stores", response_model=StoresResponse, summary="Stores (and departments) with their last actual week.")
def stores(snap: SnapshotDep, warehouse: WarehouseDep) -> Response:
    keys = list(snap.keys)
    served = snap.forecast[keys].drop_duplicates()
    actuals = warehouse.stores()  # store, dept (NULL at store level), first_week, last_week, n_weeks
    table = served.merge(actuals[[*keys, "last_week"]], on=keys, how="left").sort_values(keys)
    weeks = pd.to_datetime(table["last_week"])
    rows = [
        {"store": int(s), "dept": (int(d) if d is not None else None),
         "last_actual_week": (None if pd.isna(w) else w.date().isoformat())}
        for s, d, w in zip(
            table[STORE], table[DEPT] if DEPT in table else [None] * len(table), weeks, strict=True
        )
    ]
    return Response(orjson.dumps({"level": snap.level, "stores": rows}), media_type=JSON)


@router.get(
    "/forecast/{store}", response_model=StoreForecast,
    summary="A store's point forecast with 80%/95% intervals per week.",
    responses={404: {"description": "Unknown store or department."}},
)
async def forecast(
    snap: SnapshotDep,
    store: Annotated[int, Path(ge=1, le=MAX_STORE, description="Store number.")],
    weeks: Annotated[int, Query(ge=1, le=MAX_WEEKS, description="Weeks ahead (1-52).")] = 13,
    dept: Annotated[int | None, Query(ge=0, le=MAX_STORE, description="Only this department.")] = None,
) -> Response:
    rows = snap.store_rows(store, weeks, dept)
    if rows is None:
        check_store(snap, store, dept)  # raises the precise 404 / 422
    body = b"{%s,\"store\":%d,\"weeks\":%d,\"forecast\":%s}" % (snap.header, store, weeks, join_rows(rows or []))
    return Response(body, media_type=JSON)


@router.get(
    "/forecasts", response_model=WeekForecast,
    summary="Every store's forecast for one week; `Accept: text/csv` gives CSV.",
    responses={200: {"content": {"text/csv": {}}}, 404: {"description": "Week outside the forecast."}},
)
async def forecasts_for_week(
    request: Request,
    snap: SnapshotDep,
    week: Annotated[dt.date, Query(description="A forecast week, YYYY-MM-DD (a Friday).")],
) -> Response:
    if week.weekday() != 4:
        raise UsageError(f"week {week.isoformat()} is a {week:%A}; weeks are dated by the Friday that ends them")
    rows = snap.by_week.get(week)
    if rows is None:
        have = snap.weeks
        raise NotFoundError(
            f"no forecast for week {week.isoformat()}; forecast weeks are {have[0].isoformat()}..{have[-1].isoformat()}"
        )
    if "text/csv" in request.headers.get("accept", ""):
        frame = snap.forecast[snap.forecast["week"] == pd.Timestamp(week)]
        csv = _csv(frame)
        return Response(csv, media_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="forecasts_{week.isoformat()}.csv"'})
    body = b"{%s,\"week\":\"%s\",\"forecast\":%s}" % (snap.header, week.isoformat().encode(), join_rows(rows))
    return Response(body, media_type=JSON)


def _csv(frame: pd.DataFrame) -> str:
    out = frame.copy()
    out["week"] = out["week"].dt.date.astype(str)
    cols = [c for c in CSV_COLUMNS if c in out]
    out = out[cols].sort_values([c for c in (STORE, DEPT) if c in out])
    return out.to_csv(index=False, float_format="%.2f", lineterminator="\n")


@router.post(
    "/predict", response_model=PredictResponse,
    summary="What-if: change holiday flags, markdowns or assumed covariates; scenario vs baseline.",
    responses={404: {"description": "Unknown store or department."}},
)
def predict(snap: SnapshotDep, body: PredictRequest) -> Response:
    frame, ignored = what_if(snap, body.stores, body.dept, body.weeks, body.scenario)
    values = ("baseline", "scenario", "difference", "difference_pct", "lo_80", "hi_80", "lo_95", "hi_95")
    cols: dict[str, list[object]] = {
        "store": frame[STORE].astype(int).tolist(),
        "dept": frame[DEPT].astype(int).tolist() if DEPT in frame else [None] * len(frame),
        "week": [d.isoformat() for d in frame["week"].dt.date],
        "step": frame["step"].astype(int).tolist(),
    }
    for name in values:
        arr = np.round(frame[name].to_numpy(dtype="float64"), 2)
        cols[name] = [float(v) if np.isfinite(v) else None for v in arr]
    names = list(cols)
    points = [dict(zip(names, row, strict=True)) for row in zip(*cols.values(), strict=True)]
    base, scen = float(np.nansum(frame["baseline"])), float(np.nansum(frame["scenario"]))
    payload = {
        **snap.info(), "weeks": body.weeks, "ignored_inputs": ignored,
        "total_baseline": round(base, 2), "total_scenario": round(scen, 2),
        "total_difference": round(scen - base, 2), "forecast": points,
    }
    return Response(orjson.dumps(payload), media_type=JSON)
