"""What the service serves: one immutable snapshot of the champion, swapped atomically.

A ``Snapshot`` holds the champion model, its intervals, its baseline forecast for the
next ``MAX_WEEKS`` weeks and that forecast pre-serialised per store and per week, so the
hot read paths only slice lists of bytes. ``ServiceState`` keeps the current snapshot in a
single attribute: a request reads it once and uses that object to the end, so a swap never
mixes two versions in one response; a new snapshot is built completely (in a worker
thread) before the reference is replaced.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import orjson
import pandas as pd

from storecast.data.schema import DEPT, WEEK
from storecast.data.spec import SeriesSpec
from storecast.errors import NotTrainedError
from storecast.forecasting.hierarchy import level_name
from storecast.forecasting.pipeline import ForecastPipeline
from storecast.lifecycle.registry import LoadedModel, ModelVersion
from storecast.models.base import Forecaster
from storecast.models.intervals import quantile_columns
from storecast.service.schemas import MAX_WEEKS

log = logging.getLogger(__name__)

BANDS = ("lo_80", "hi_80", "lo_95", "hi_95")
VALUE_COLUMNS = ("yhat", *BANDS)


class ChampionSource(Protocol):
    """Where the champion comes from: the MLflow registry in production, fakes in tests."""

    def champion(self) -> ModelVersion | None: ...

    def load(self, version: str | None = None) -> LoadedModel: ...

    def versions(self) -> list[ModelVersion]: ...


def _clean(values: pd.Series) -> list[float | None]:
    """Round to cents; NaN/inf become None (JSON null)."""
    arr = np.round(values.to_numpy(dtype="float64"), 2)
    return [None if not np.isfinite(v) else float(v) for v in arr]


def _key_values(values: pd.Series) -> list[Any]:
    if pd.api.types.is_integer_dtype(values):
        return values.astype("int64").tolist()
    return [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values]


def _records(frame: pd.DataFrame, key_fields: list[str], *, dept_field: bool = False) -> list[bytes]:
    """One JSON object per row: the given key fields, week, step, the point forecast, the
    bands and the quantiles (``q0.1``...). ``dept_field``: Walmart's ``dept`` (null at store
    level) as the legacy responses carry it."""
    cols: dict[str, list[Any]] = {}
    for key in key_fields:
        cols[key] = _key_values(frame[key])
    if dept_field and DEPT not in cols:
        cols["dept"] = frame[DEPT].astype(int).tolist() if DEPT in frame else [None] * len(frame)
    cols["week"] = [d.isoformat() for d in frame[WEEK].dt.date]
    cols["step"] = frame["step"].astype(int).tolist()
    for name in (*VALUE_COLUMNS, *quantile_columns(frame.columns)):
        cols[name] = _clean(frame[name])
    names = list(cols)
    return [orjson.dumps(dict(zip(names, row, strict=True))) for row in zip(*cols.values(), strict=True)]


@dataclass(frozen=True)
class Snapshot:
    """Everything one champion version serves; never mutated after it is built."""

    version: ModelVersion
    pipeline: ForecastPipeline
    cutoff: pd.Timestamp
    keys: tuple[str, ...]
    future: pd.DataFrame  # baseline known-future inputs, MAX_WEEKS weeks
    forecast: pd.DataFrame  # baseline leaf forecast with bands and quantiles, MAX_WEEKS weeks
    levels: dict[tuple[str, ...], pd.DataFrame]  # every aggregate level's forecast (total = ())
    by_store: dict[Any, list[bytes]]  # top key value -> its leaves' rows sorted by (step, other keys)
    step_ends: dict[Any, np.ndarray]  # by_store[v][: step_ends[v][n-1]] = steps 1..n
    by_series: dict[tuple[Any, ...], list[bytes]]  # (level name, key values...) -> rows by step
    by_week: dict[dt.date, list[bytes]]  # leaf rows with every key, sorted by the keys
    header: bytes  # `"model_version":..,"model":..,"run_id":..,"cutoff":..` without braces
    loaded_at: float = field(default_factory=time.time)

    @property
    def model(self) -> Forecaster:
        return self.pipeline.leaf

    @property
    def spec(self) -> SeriesSpec:
        return self.pipeline.spec

    @property
    def level(self) -> str:
        return "dept" if len(self.keys) > 1 else "store"

    @property
    def stores(self) -> list[Any]:
        return sorted(self.by_store)

    @property
    def weeks(self) -> list[dt.date]:
        return sorted(self.by_week)

    def info(self) -> dict[str, str]:
        return {
            "model_version": self.version.version,
            "model": self.version.model_name or self.model.name,
            "run_id": self.version.run_id,
            "cutoff": self.cutoff.date().isoformat(),
        }

    def store_rows(self, store: Any, weeks: int, dept: Any | None) -> list[bytes] | None:
        """Legacy rows of one top-key value (all its leaves) or one leaf (``dept``), steps 1..weeks."""
        if dept is not None:
            rows = self.by_series.get((level_name(self.keys), store, dept))
            return None if rows is None else rows[:weeks]
        rows = self.by_store.get(store)
        if rows is None:
            return None
        return rows[: int(self.step_ends[store][weeks - 1])]

    def node_rows(self, values: tuple[Any, ...], weeks: int) -> list[bytes] | None:
        """Rows of the series whose keys are the first ``len(values)`` keys (a leaf, a store's
        total, the chain total for none), steps 1..weeks."""
        level = self.keys[: len(values)]
        rows = self.by_series.get((level_name(level), *values))
        return None if rows is None else rows[:weeks]

    def typed(self, name: str, raw: object) -> Any:
        """A key value from a URL (text) in the type the data uses (integer or text)."""
        kind = self.spec.key_types[self.keys.index(name)] if name in self.keys else "text"
        if kind == "int":
            try:
                return int(str(raw))
            except ValueError:
                return None
        return str(raw)


def baseline_future(pipeline: ForecastPipeline, weeks: int) -> pd.DataFrame:
    """The known-future inputs ``run_job`` forecasts with, for every series the champion knows
    (drivers the data did not give for these weeks: the run's assumption, else each series'
    last value)."""
    return pipeline.future(weeks, assume=pipeline.assume_future or "last")


def build_snapshot(loaded: LoadedModel, weeks: int = MAX_WEEKS) -> Snapshot:
    """Forecast ``weeks`` ahead with the champion and pre-serialise the hot responses.

    The champion's pipeline reconciles the leaves with its own anchor forecasts (the store
    totals of department data), as ``storecast run`` does, so the API serves the run's numbers.
    """
    t0 = time.perf_counter()
    pipeline = loaded.pipeline
    model = pipeline.leaf
    keys = tuple(model.keys_)
    top, rest = keys[0], list(keys[1:])
    future = baseline_future(pipeline, weeks)
    made = pipeline.predict(weeks, future)
    forecast = made.leaves.sort_values([top, "step", *rest], kind="stable").reset_index(drop=True)

    by_store: dict[Any, list[bytes]] = {}
    step_ends: dict[Any, np.ndarray] = {}
    by_series: dict[tuple[Any, ...], list[bytes]] = {}
    legacy = pipeline.spec.preset is not None
    leaf_name = level_name(keys)
    for value, part in forecast.groupby(top, sort=True):
        key = _plain(value)
        by_store[key] = _records(part, rest, dept_field=legacy)
        steps = part["step"].to_numpy()
        step_ends[key] = np.searchsorted(steps, np.arange(1, weeks + 1), side="right")
    leaf_fields = list(keys) if not legacy else [*rest]
    for values, part in forecast.groupby(list(keys), sort=True):
        tup = values if isinstance(values, tuple) else (values,)
        by_series[(leaf_name, *(_plain(v) for v in tup))] = _records(part.sort_values("step"), leaf_fields,
                                                                     dept_field=legacy)
    for level, frame in made.levels.items():
        name = level_name(level)
        if not level:
            by_series[(name,)] = _records(frame.sort_values("step"), [])
            continue
        for values, part in frame.groupby(list(level), sort=True):
            tup = values if isinstance(values, tuple) else (values,)
            by_series[(name, *(_plain(v) for v in tup))] = _records(part.sort_values("step"), list(level))
    by_week: dict[dt.date, list[bytes]] = {}
    for week, part in forecast.groupby(WEEK, sort=True):
        by_week[pd.Timestamp(week).date()] = _records(part.sort_values(list(keys)), list(keys), dept_field=legacy)

    version = loaded.version
    info = {
        "model_version": version.version,
        "model": version.model_name or model.name,
        "run_id": version.run_id,
        "cutoff": pd.Timestamp(model.last_week_).date().isoformat(),
    }
    snap = Snapshot(
        version=version, pipeline=pipeline, cutoff=pd.Timestamp(model.last_week_),
        keys=keys, future=future, forecast=forecast, levels=made.levels, by_store=by_store, step_ends=step_ends,
        by_series=by_series, by_week=by_week, header=orjson.dumps(info)[1:-1],
    )
    log.info("snapshot of version %s built in %.2fs (%d rows)", version.version, time.perf_counter() - t0, len(forecast))
    return snap


def _plain(value: object) -> Any:
    return int(value) if isinstance(value, (int, np.integer)) else str(value)


class ServiceState:
    """Holds the current snapshot; ``refresh`` swaps in a new champion without a restart."""

    def __init__(self, source: ChampionSource) -> None:
        self.source = source
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()  # one build at a time; readers never take it
        self.job_lock = threading.Lock()  # one retrain at a time
        self.last_check: float = 0.0
        self.last_error: str | None = None

    @property
    def snapshot(self) -> Snapshot:
        snap = self._snapshot
        if snap is None:
            raise NotTrainedError(
                "no champion model is loaded; create one with `storecast run --data ...` or `make demo`"
            )
        return snap

    @property
    def current(self) -> Snapshot | None:
        return self._snapshot

    @property
    def loaded(self) -> bool:
        return self._snapshot is not None

    def refresh(self, *, force: bool = False) -> bool:
        """Load the registry's champion if it differs from the one served; True if swapped."""
        with self._lock:
            self.last_check = time.time()
            champion = self.source.champion()
            if champion is None:
                if self._snapshot is None:
                    raise NotTrainedError(
                        "there is no trained model yet; create one with "
                        "`storecast run --data <file>` (or `make demo`), then start the service"
                    )
                return False
            current = self._snapshot
            if not force and current is not None and current.version.version == champion.version:
                return False
            loaded = self.source.load(champion.version)
            snap = build_snapshot(loaded)
            self._snapshot = snap  # the swap: one reference assignment
            self.last_error = None
            log.info("serving model version %s", snap.version.version)
            return True

    def try_refresh(self) -> bool:
        """``refresh`` for the background poller: failures are logged, the old snapshot stays."""
        try:
            return self.refresh()
        except Exception as exc:  # keep serving the current champion whatever happened
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("champion refresh failed, still serving the previous version: %s", self.last_error)
            return False


def join_rows(parts: Iterable[bytes]) -> bytes:
    return b"[" + b",".join(parts) + b"]"
