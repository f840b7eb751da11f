"""Series look-ups and what-if forecasts over a ``Snapshot`` (no HTTP here).

A series is named by its key values, top of the hierarchy first: ``{"store": 2}`` is store
2's total, ``{"store": 2, "brand": "Tropicana"}`` one leaf, ``{}`` the chain. A what-if
copies the baseline's known-future inputs, writes the scenario's values into the chosen
series and weeks, and runs the champion's pipeline on it (predict, reconcile, bands), the
same path the baseline took.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from storecast.data.schema import HOLIDAY, WEEK
from storecast.errors import NotFoundError, UsageError
from storecast.models.intervals import quantile_columns
from storecast.service.schemas import MAX_SCENARIO_SERIES, ScenarioWeek
from storecast.service.state import BANDS, Snapshot

#: at most this many key values are listed in a "not found" message
SHOWN = 20


def _listing(values: Sequence[Any]) -> str:
    shown = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values[:SHOWN])
    return shown + (f", ... ({len(values)} in all)" if len(values) > SHOWN else "")


def check_store(snap: Snapshot, store: Any, dept: Any | None = None) -> None:
    """404 naming what exists when the top-key value (or its second key) is unknown."""
    top = snap.keys[0]
    if store not in snap.by_store:
        stores = snap.stores
        raise NotFoundError(
            f"{top} {store!r} has no forecast; known: {stores[0]!r}..{stores[-1]!r} ({len(stores)} values)"
            if stores and not isinstance(store, int) else
            f"{top} {store} has no forecast; known {top}s: {stores[0]}..{stores[-1]} ({len(stores)} {top}s)"
        )
    if dept is not None:
        if len(snap.keys) < 2:
            raise UsageError(f"dept was given but this model forecasts whole {top}s, not departments (one key: {top})")
        if snap.node_rows((store, dept), 1) is None:
            below = children(snap, (store,))
            raise NotFoundError(f"{top} {store} has no {snap.keys[1]} {dept}; its {snap.keys[1]}s: {_listing(below)}")


def children(snap: Snapshot, values: tuple[Any, ...]) -> list[Any]:
    """The next key's values under ``values`` (sorted)."""
    frame = snap.forecast
    mask = np.ones(len(frame), dtype=bool)
    for key, value in zip(snap.keys, values, strict=False):
        mask &= (frame[key] == value).to_numpy()
    nxt = snap.keys[len(values)]
    return sorted(frame.loc[mask, nxt].drop_duplicates().tolist())


def resolve_node(snap: Snapshot, given: Mapping[str, object]) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """The level and key values a query names (``{"store": "2", "brand": "X"}``), typed as the
    data's keys; 422 for unknown names or keys not given top-first, 404 for unknown values."""
    keys = snap.keys
    unknown = [k for k in given if k not in keys]
    if unknown:
        raise UsageError(f"unknown key {unknown[0]!r}; this data's keys are {', '.join(keys)} (top first)")
    level = keys[: len(given)]
    if set(given) != set(level):
        raise UsageError(
            f"give the keys top-first: {', '.join(level)} (got {', '.join(given)}); "
            f"every level is a prefix of {', '.join(keys)}"
        )
    values: list[Any] = []
    for key in level:
        value = snap.typed(key, given[key])
        if value is None:
            raise UsageError(f"{key} must be a whole number, got {given[key]!r}")
        if snap.node_rows((*values, value), 1) is None:
            have = children(snap, tuple(values))
            where = "" if not values else " under " + ", ".join(f"{k}={v!r}" for k, v in zip(level, values, strict=False))
            raise NotFoundError(f"no series with {key}={value!r}{where}; known {key} values: {_listing(have)}")
        values.append(value)
    return level, tuple(values)


def check_week(snap: Snapshot, week: dt.date, *, weeks: int | None = None) -> None:
    """422 for a date on another weekday than the data's weeks, or (with ``weeks``) outside
    the first ``weeks`` forecast weeks."""
    spec = snap.spec.week
    if week.weekday() != spec.label_weekday:
        raise UsageError(f"week {week.isoformat()} is a {week:%A}; {spec.describe()}")
    if weeks is not None:
        first = (snap.cutoff + pd.Timedelta(weeks=1)).date()
        last = (snap.cutoff + pd.Timedelta(weeks=weeks)).date()
        if not first <= week <= last:
            raise UsageError(
                f"scenario week {week.isoformat()} is outside the forecast weeks "
                f"{first.isoformat()}..{last.isoformat()} (cutoff + 1..{weeks} weeks)"
            )


@dataclass(frozen=True)
class Selection:
    """The leaves a scenario applies to: a boolean mask over ``snap.future`` and its keys."""

    series: pd.DataFrame  # key columns of the chosen leaves

    def mask(self, frame: pd.DataFrame, keys: list[str]) -> np.ndarray:
        index = pd.MultiIndex.from_frame(self.series[keys])
        return pd.MultiIndex.from_frame(frame[keys]).isin(index)


def select(
    snap: Snapshot, stores: Sequence[Any] | None, dept: Any | None, where: Mapping[str, Any] | None,
) -> Selection:
    """The leaves named by ``stores`` (top-key values), ``dept`` (the second key, Walmart's
    shorthand) and ``where`` (key -> value or list of values); every leaf when none is given."""
    keys = list(snap.keys)
    conditions: dict[str, list[Any]] = {}
    if stores is not None:
        typed = [snap.typed(keys[0], s) for s in stores]
        for raw, value in zip(stores, typed, strict=True):
            if value is None:
                raise UsageError(f"{keys[0]} must be a whole number, got {raw!r}")
            check_store(snap, value)
        conditions[keys[0]] = typed
    if dept is not None:
        if len(keys) < 2:
            raise UsageError(f"dept was given but this model forecasts whole {keys[0]}s, not departments (one key: {keys[0]})")
        for store in conditions.get(keys[0], []):
            check_store(snap, store, snap.typed(keys[1], dept))
        conditions[keys[1]] = [snap.typed(keys[1], dept)]
    for key, raw in (where or {}).items():
        if key not in keys:
            raise UsageError(f"where: unknown key {key!r}; this data's keys are {', '.join(keys)}")
        values = raw if isinstance(raw, list) else [raw]
        typed = [snap.typed(key, v) for v in values]
        if any(v is None for v in typed):
            raise UsageError(f"where: {key} must be whole numbers, got {values!r}")
        known = set(snap.forecast[key].unique().tolist())
        missing = [v for v in typed if v not in known]
        if missing:
            raise NotFoundError(f"where: no series with {key}={missing[0]!r}; known: {_listing(sorted(known))}")
        conditions[key] = typed if key not in conditions else [v for v in conditions[key] if v in typed]
    series = snap.forecast[keys].drop_duplicates()
    for key, values in conditions.items():
        series = series[series[key].isin(values)]
    if series.empty:
        raise NotFoundError("no series matches " + ", ".join(f"{k} in {v}" for k, v in conditions.items()))
    if len(series) > MAX_SCENARIO_SERIES:
        raise UsageError(
            f"the scenario selects {len(series):,} series; at most {MAX_SCENARIO_SERIES:,} per request "
            "(narrow it with stores or where)"
        )
    return Selection(series.reset_index(drop=True))


def scenario_columns(snap: Snapshot) -> list[str]:
    """The known-future inputs a scenario may change: the data's declared drivers."""
    return list(snap.spec.known_future)


def what_if(
    snap: Snapshot, selection: Selection, weeks: int, scenario: Sequence[ScenarioWeek],
) -> tuple[pd.DataFrame, list[str], float]:
    """Baseline and scenario forecasts of the selected leaves, steps 1..weeks.

    Returns the frame (keys, week, step, baseline, scenario, difference, the scenario's bands
    and quantiles), the changed inputs the champion does not read (they cannot move its
    forecast), and the change in every *other* series' total (e.g. a promotion taking sales
    from a store's other brands).
    """
    keys = list(snap.keys)
    allowed = scenario_columns(snap)
    for item in scenario:
        if item.week is not None:
            check_week(snap, item.week, weeks=weeks)
        for column in [*item.set, *item.change]:
            if column not in allowed and column not in item.legacy_fields():
                raise UsageError(
                    f"scenario: {column!r} is not a known-future driver of this data; "
                    f"it can change: {', '.join(allowed) or 'nothing (no known-future drivers declared)'}"
                )
    horizon_end = snap.cutoff + pd.Timedelta(weeks=weeks)
    future = snap.future[snap.future[WEEK] <= horizon_end].copy()
    chosen = selection.mask(future, keys)
    used = type(snap.model).covariates_read(snap.model.spec_)
    changed: set[str] = set()
    for item in scenario:
        rows = chosen if item.week is None else chosen & (future[WEEK] == pd.Timestamp(item.week)).to_numpy()
        for column, value in item.overrides().items():
            if column not in future:
                future[column] = False if column == HOLIDAY else np.nan
            if isinstance(value, bool) and future[column].dtype != bool:
                value = float(value)
            future.loc[rows, column] = value
            changed.add(column)
        for column, pct in item.change.items():
            if column not in future:
                raise UsageError(f"scenario: {column!r} has no baseline value to change by a percentage; use set")
            base = pd.to_numeric(future.loc[rows, column], errors="coerce")
            future.loc[rows, column] = base * (1 + pct / 100.0)
            changed.add(column)

    predicted, _ = snap.pipeline.predict_leaves(weeks, future)
    scen = snap.pipeline.band(predicted).leaves
    base = snap.forecast[snap.forecast["step"] <= weeks]
    value_cols = [*BANDS, *quantile_columns(scen.columns)]
    merged = base[[*keys, WEEK, "step", "yhat"]].rename(columns={"yhat": "baseline"}).merge(
        scen[[*keys, WEEK, "yhat", *value_cols]].rename(columns={"yhat": "scenario"}), on=[*keys, WEEK], how="left",
    )
    inside = selection.mask(merged, keys)
    others = float(np.nansum(merged.loc[~inside, "scenario"]) - np.nansum(merged.loc[~inside, "baseline"]))
    out = merged[inside].copy()
    out["difference"] = out["scenario"] - out["baseline"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["difference_pct"] = 100 * out["difference"] / out["baseline"].abs()
    out = out.sort_values([*keys, "step"], kind="stable").reset_index(drop=True)
    return out, sorted(changed - used), others

