"""The service's view of the warehouse: read-only, and cached until the data changes.

DuckDB lets one process write a file or several read it, never both. The service must not
lock the weekly jobs out of the embedded warehouse, so for a DuckDB file it opens the file
read-only only when a job has changed it since the last read (its size and modification
time, and its write-ahead log's), keeps the answers, and, while a job holds the file,
answers from what it read before (seconds old) instead of waiting. PostgreSQL serves many
readers and writers at once: there every read goes to the database, in read-only
transactions.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import pandas as pd
import sqlalchemy as sa

from storecast.config import Settings
from storecast.delivery.warehouse import Warehouse
from storecast.errors import WarehouseBusyError

log = logging.getLogger(__name__)

#: Warehouse reads the routes make; their answers are cached per data version.
CACHED = frozenset({"history", "stores", "read_sales", "read_forecast_errors", "read_runs", "read_run",
                    "latest_run_id", "read_monitoring"})
MAX_ENTRIES = 512
#: How long a read waits for a writer when an older answer can be served instead.
QUICK_WAIT = 0.25


def duckdb_stamp(url: str) -> Callable[[], object] | None:
    """A cheap marker that changes whenever a DuckDB file (or its WAL) is written; None otherwise."""
    if not url.startswith("duckdb:///") or url == "duckdb:///:memory:":
        return None
    path = url.removeprefix("duckdb:///")

    def stamp() -> object:
        marks: list[tuple[int, int] | None] = []
        for name in (path, path + ".wal"):
            try:
                st = os.stat(name)
                marks.append((st.st_size, st.st_mtime_ns))
            except OSError:
                marks.append(None)
        return tuple(marks)

    return stamp


class CachedReads:
    """Read methods of ``Warehouse`` (same names and arguments), cached by data version."""

    def __init__(self, warehouse: Warehouse, *, quick: Warehouse | None = None, owned: bool = False) -> None:
        self.warehouse = warehouse
        self.quick = quick or warehouse  # the same reads, giving up fast when a writer holds the file
        self.stamp = duckdb_stamp(warehouse.url)
        self.owned = owned
        self._cache: OrderedDict[object, tuple[object, Any]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings) -> CachedReads:
        """The service's reads of the warehouse ``settings`` name (read-only)."""
        patient = Warehouse.from_settings(settings, read_only=True)
        quick = Warehouse(settings.resolved_warehouse_url, read_only=True, lock_timeout=QUICK_WAIT)
        return cls(patient, quick=quick, owned=True)

    @property
    def url(self) -> str:
        return self.warehouse.url

    def invalidate(self) -> None:
        with self._lock:
            self._cache.clear()

    def dispose(self) -> None:
        if self.owned:
            self.warehouse.dispose()
            if self.quick is not self.warehouse:
                self.quick.dispose()

    def ping(self) -> str | None:
        """``None`` when the warehouse answers (or a job is writing it), else the problem."""
        try:
            with self.quick.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except WarehouseBusyError:
            return None  # a job holds it: it is there, and we answer from what we read
        except Exception as exc:  # any failure means "not reachable" for a readiness probe
            return f"warehouse unreachable: {type(exc).__name__}: {str(exc)[:200]}"
        return None

    def _read(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.stamp is None:
            return getattr(self.warehouse, name)(*args, **kwargs)
        key = (name, _frozen(args), _frozen(kwargs))
        now = self.stamp()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] == now:
            return _copy(hit[1])
        try:
            source = self.quick if hit is not None else self.warehouse
            value = getattr(source, name)(*args, **kwargs)
        except WarehouseBusyError:
            if hit is None:
                raise
            log.debug("warehouse busy; serving %s from the last read", name)
            return _copy(hit[1])
        with self._lock:
            self._cache[key] = (now, value)
            self._cache.move_to_end(key)
            while len(self._cache) > MAX_ENTRIES:
                self._cache.popitem(last=False)
        return _copy(value)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.warehouse, name)
        if name not in CACHED:
            return method

        def read(*args: Any, **kwargs: Any) -> Any:
            return self._read(name, args, kwargs)

        return read


def _frozen(value: Any) -> Any:
    """A hashable cache key for arguments that may hold dicts and lists (key filters)."""
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def _copy(value: Any) -> Any:
    return value.copy() if isinstance(value, pd.DataFrame) else value
