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

from storecast.data.schema import DEPT, STORE, WEEK
from storecast.errors import NotTrainedError
from storecast.forecasting.pipeline import ForecastPipeline
from storecast.lifecycle.registry import LoadedModel, ModelVersion
from storecast.models.base import Forecaster
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


def _records(frame: pd.DataFrame, with_store: bool) -> list[bytes]:
    """One JSON object per row, in the shape of ``schemas.ForecastPoint``."""
    cols: dict[str, list[Any]] = {}
    if with_store:
        cols["store"] = frame[STORE].astype(int).tolist()
    cols["dept"] = frame[DEPT].astype(int).tolist() if DEPT in frame else [None] * len(frame)
    cols["week"] = [d.isoformat() for d in frame[WEEK].dt.date]
    cols["step"] = frame["step"].astype(int).tolist()
    for name in VALUE_COLUMNS:
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
    forecast: pd.DataFrame  # baseline forecast with bands, MAX_WEEKS weeks
    by_store: dict[int, list[bytes]]  # rows sorted by (step, dept)
    step_ends: dict[int, np.ndarray]  # by_store[store][: step_ends[store][n-1]] = steps 1..n
    by_series: dict[tuple[int, int], list[bytes]]  # (store, dept) -> rows by step
    by_week: dict[dt.date, list[bytes]]  # rows with a store field, sorted by (store, dept)
    header: bytes  # `"model_version":..,"model":..,"run_id":..,"cutoff":..` without braces
    loaded_at: float = field(default_factory=time.time)

    @property
    def model(self) -> Forecaster:
        return self.pipeline.leaf

    @property
    def level(self) -> str:
        return "dept" if DEPT in self.keys else "store"

    @property
    def stores(self) -> list[int]:
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

    def store_rows(self, store: int, weeks: int, dept: int | None) -> list[bytes] | None:
        """Pre-serialised rows of one store (or one department) for steps 1..weeks."""
        if dept is not None:
            rows = self.by_series.get((store, dept))
            return None if rows is None else rows[:weeks]
        rows = self.by_store.get(store)
        if rows is None:
            return None
        return rows[: int(self.step_ends[store][weeks - 1])]


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
    future = baseline_future(pipeline, weeks)
    forecast = pipeline.predict(weeks, future).leaves
    order = [STORE, "step", *([DEPT] if DEPT in keys else [])]
    forecast = forecast.sort_values(order, kind="stable").reset_index(drop=True)

    by_store: dict[int, list[bytes]] = {}
    step_ends: dict[int, np.ndarray] = {}
    by_series: dict[tuple[int, int], list[bytes]] = {}
    for store, part in forecast.groupby(STORE, sort=True):
        by_store[int(store)] = _records(part, with_store=False)
        steps = part["step"].to_numpy()
        step_ends[int(store)] = np.searchsorted(steps, np.arange(1, weeks + 1), side="right")
        if DEPT in keys:
            for dept, sub in part.groupby(DEPT, sort=True):
                by_series[(int(store), int(dept))] = _records(sub.sort_values("step"), with_store=False)
    by_week: dict[dt.date, list[bytes]] = {}
    week_order = [STORE, *([DEPT] if DEPT in keys else [])]
    for week, part in forecast.groupby(WEEK, sort=True):
        by_week[pd.Timestamp(week).date()] = _records(part.sort_values(week_order), with_store=True)

    version = loaded.version
    info = {
        "model_version": version.version,
        "model": version.model_name or model.name,
        "run_id": version.run_id,
        "cutoff": pd.Timestamp(model.last_week_).date().isoformat(),
    }
    snap = Snapshot(
        version=version, pipeline=pipeline, cutoff=pd.Timestamp(model.last_week_),
        keys=keys, future=future, forecast=forecast, by_store=by_store, step_ends=step_ends,
        by_series=by_series, by_week=by_week, header=orjson.dumps(info)[1:-1],
    )
    log.info("snapshot of version %s built in %.2fs (%d rows)", version.version, time.perf_counter() - t0, len(forecast))
    return snap


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
