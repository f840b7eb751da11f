"""Series, forecasts (by key, per store, per week) and what-if scenarios."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import numpy as np
import orjson
import pandas as pd
from fastapi import APIRouter, Path, Query, Request, Response

from storecast.errors import NotFoundError, UsageError
from storecast.forecasting.hierarchy import level_name
from storecast.models.intervals import quantile_columns
from storecast.service.deps import ReadAccess, SnapshotDep, WarehouseDep
from storecast.service.scenario import check_store, check_week, resolve_node, select, what_if
from storecast.service.schemas import (
    MAX_SERIES_PAGE,
    MAX_WEEKS,
    NodeForecast,
    PredictRequest,
    PredictResponse,
    SeriesResponse,
    StoreForecast,
    StoresResponse,
    WeekForecast,
)
from storecast.service.state import BANDS, Snapshot, join_rows

router = APIRouter(tags=["forecasts"], dependencies=[ReadAccess])

JSON = "application/json"
#: query parameters that are not key names
RESERVED = {"weeks", "limit", "offset"}


def key_params(request: Request) -> dict[str, str]:
    """The query's key filters (every parameter but the reserved ones), each given once."""
    params = request.query_params
    out: dict[str, str] = {}
    for name in params:
        if name in RESERVED:
            continue
        values = params.getlist(name)
        if len(values) != 1:
            raise UsageError(f"give {name} once, got {len(values)} values")
        out[name] = values[0]
    return out


def _jsonable(value: Any) -> Any:
    return int(value) if isinstance(value, (int, np.integer)) else str(value)


def _last_weeks(warehouse: Any, snap: Snapshot) -> pd.DataFrame:
    keys = list(snap.keys)
    stored = warehouse.stores()  # keys, first_week, last_week, n_weeks
    if stored.empty or not set(keys) <= set(stored.columns):
        return pd.DataFrame(columns=[*keys, "first_week", "last_week", "n_weeks"])
    for k in keys:  # stored keys may come back as text
        if k in snap.forecast and stored[k].dtype != snap.forecast[k].dtype:
            stored[k] = stored[k].astype(snap.forecast[k].dtype)
    return stored


def _iso(value: object) -> str | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date().isoformat()


@router.get(
    "/series", response_model=SeriesResponse,
    summary="Leaf series (filter by key, e.g. ?store=2) with the weeks of sales stored; the data's keys and levels.",
)
def series(
    request: Request,
    snap: SnapshotDep,
    warehouse: WarehouseDep,
    limit: Annotated[int, Query(ge=1, le=MAX_SERIES_PAGE, description="Series per page.")] = 1000,
    offset: Annotated[int, Query(ge=0, description="Series to skip.")] = 0,
) -> Response:
    keys = list(snap.keys)
    given = key_params(request)
    served = snap.forecast[keys].drop_duplicates()
    for name, raw in given.items():
        if name not in keys:
            raise UsageError(f"unknown key {name!r}; this data's keys are {', '.join(keys)}")
        served = served[served[name] == snap.typed(name, raw)]
    table = served.merge(_last_weeks(warehouse, snap), on=keys, how="left").sort_values(keys, kind="stable")
    page = table.iloc[offset: offset + limit]
    rows = [
        {**{k: _jsonable(v) for k, v in zip(keys, values[: len(keys)], strict=True)},
         "first_week": _iso(values[-3]), "last_week": _iso(values[-2]),
         "weeks": 0 if pd.isna(values[-1]) else int(values[-1])}
        for values in page[[*keys, "first_week", "last_week", "n_weeks"]].itertuples(index=False, name=None)
    ]
    body = {"keys": keys, "levels": [level_name(lv) for lv in snap.spec.levels()], "week": snap.spec.week.describe(),
            "total": len(table), "offset": offset, "series": rows}
    return Response(orjson.dumps(body), media_type=JSON)


@router.get("/stores", response_model=StoresResponse,
            summary="Values of the top key (Walmart: stores, and departments) with their last actual week.")
def stores(snap: SnapshotDep, warehouse: WarehouseDep) -> Response:
    keys = list(snap.keys)
    walmart = snap.spec.preset is not None
    shown = keys if walmart else keys[:1]
    served = snap.forecast[shown].drop_duplicates()
    last = _last_weeks(warehouse, snap).groupby(shown, as_index=False)["last_week"].max()
    table = served.merge(last, on=shown, how="left").sort_values(shown)
    rows = []
    for values in table[[*shown, "last_week"]].itertuples(index=False, name=None):
        row: dict[str, Any] = {"store": _jsonable(values[0])}
        row["dept"] = _jsonable(values[1]) if walmart and len(shown) > 1 else None
        row["last_actual_week"] = _iso(values[-1])
        rows.append(row)
    return Response(orjson.dumps({"level": snap.level, "stores": rows}), media_type=JSON)


@router.get(
    "/forecast", response_model=NodeForecast,
    summary="Forecast of any series or level by key, e.g. ?store=2&brand=Tropicana%2064oz (none: the chain total).",
    responses={404: {"description": "No series with these key values."}},
)
async def forecast_by_key(
    request: Request,
    snap: SnapshotDep,
    weeks: Annotated[int, Query(ge=1, le=MAX_WEEKS, description="Weeks ahead (1-52).")] = 13,
) -> Response:
    level, values = resolve_node(snap, key_params(request))
    rows = snap.node_rows(values, weeks) or []
    named = orjson.dumps({k: _jsonable(v) for k, v in zip(level, values, strict=True)})
    body = b'{%s,"level":%s,"series":%s,"weeks":%d,"forecast":%s}' % (
        snap.header, orjson.dumps(level_name(level)), named, weeks, join_rows(rows))
    return Response(body, media_type=JSON)


@router.get(
    "/forecast/{store}", response_model=StoreForecast,
    summary="One top-key value's forecast per week (Walmart: a store; with dept, one department).",
    responses={404: {"description": "Unknown store or department."}},
)
async def forecast(
    snap: SnapshotDep,
    store: Annotated[str, Path(max_length=200, description="Store number (the top key's value).")],
    weeks: Annotated[int, Query(ge=1, le=MAX_WEEKS, description="Weeks ahead (1-52).")] = 13,
    dept: Annotated[str | None, Query(max_length=200, description="Only this department (second key).")] = None,
) -> Response:
    value = snap.typed(snap.keys[0], store)
    if value is None:
        raise NotFoundError(f"{snap.keys[0]} {store!r} has no forecast ({snap.keys[0]} values are whole numbers)")
    sub = None
    if dept is not None:
        if len(snap.keys) < 2:
            raise UsageError(f"dept was given but this model forecasts whole {snap.keys[0]}s, not departments (one key)")
        sub = snap.typed(snap.keys[1], dept)
        if sub is None:
            raise UsageError(f"dept must be a whole number, got {dept!r}")
    rows = snap.store_rows(value, weeks, sub)
    if rows is None:
        check_store(snap, value, sub)  # raises the precise 404 / 422
    body = b'{%s,"store":%s,"weeks":%d,"forecast":%s}' % (
        snap.header, orjson.dumps(_jsonable(value)), weeks, join_rows(rows or []))
    return Response(body, media_type=JSON)


@router.get(
    "/forecasts", response_model=WeekForecast,
    summary="Every series' forecast for one week; `Accept: text/csv` gives CSV.",
    responses={200: {"content": {"text/csv": {}}}, 404: {"description": "Week outside the forecast."}},
)
async def forecasts_for_week(
    request: Request,
    snap: SnapshotDep,
    week: Annotated[dt.date, Query(description="A forecast week, YYYY-MM-DD, as the data dates its weeks.")],
) -> Response:
    check_week(snap, week)
    rows = snap.by_week.get(week)
    if rows is None:
        have = snap.weeks
        raise NotFoundError(
            f"no forecast for week {week.isoformat()}; forecast weeks are {have[0].isoformat()}..{have[-1].isoformat()}"
        )
    if "text/csv" in request.headers.get("accept", ""):
        frame = snap.forecast[snap.forecast["week"] == pd.Timestamp(week)]
        return Response(_csv(frame, snap), media_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="forecasts_{week.isoformat()}.csv"'})
    body = b'{%s,"week":"%s","forecast":%s}' % (snap.header, week.isoformat().encode(), join_rows(rows))
    return Response(body, media_type=JSON)


def _csv(frame: pd.DataFrame, snap: Snapshot) -> str:
    out = frame.copy()
    out["week"] = out["week"].dt.date.astype(str)
    keys = list(snap.keys)
    extra = [] if snap.spec.preset is not None else quantile_columns(out.columns)
    cols = [*keys, "week", "step", "yhat", *BANDS, *extra]
    return out[cols].sort_values(keys).to_csv(index=False, float_format="%.2f", lineterminator="\n")


@router.post(
    "/predict", response_model=PredictResponse,
    summary="What-if: change any known-future driver (price, promotion, holiday, markdown) for chosen series and "
            "weeks; scenario vs baseline.",
    responses={404: {"description": "Unknown series."}},
)
def predict(snap: SnapshotDep, body: PredictRequest) -> Response:
    selection = select(snap, body.stores, body.dept, body.where)
    frame, ignored, others = what_if(snap, selection, body.weeks, body.scenario)
    keys = list(snap.keys)
    walmart = snap.spec.preset is not None
    values = ["baseline", "scenario", "difference", "difference_pct", *BANDS,
              *([] if walmart else quantile_columns(frame.columns))]
    cols: dict[str, list[object]] = {}
    if walmart:
        cols["store"] = frame[keys[0]].astype(int).tolist()
        cols["dept"] = frame[keys[1]].astype(int).tolist() if len(keys) > 1 else [None] * len(frame)
    else:
        for k in keys:
            cols[k] = [_jsonable(v) for v in frame[k]]
    cols["week"] = [d.isoformat() for d in frame["week"].dt.date]
    cols["step"] = frame["step"].astype(int).tolist()
    for name in values:
        arr = np.round(frame[name].to_numpy(dtype="float64"), 2)
        cols[name] = [float(v) if np.isfinite(v) else None for v in arr]
    names = list(cols)
    points = [dict(zip(names, row, strict=True)) for row in zip(*cols.values(), strict=True)]
    base, scen = float(np.nansum(frame["baseline"])), float(np.nansum(frame["scenario"]))
    payload = {
        **snap.info(), "weeks": body.weeks, "series": len(selection.series), "ignored_inputs": ignored,
        "total_baseline": round(base, 2), "total_scenario": round(scen, 2),
        "total_difference": round(scen - base, 2), "other_series_difference": round(others, 2), "forecast": points,
    }
    return Response(orjson.dumps(payload), media_type=JSON)
