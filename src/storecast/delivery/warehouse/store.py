"""The ``Warehouse``: every read and write storecast makes to its database, in one class.

Writes are transactional: each public write method runs in one transaction, so a failure
leaves nothing half-written, and is idempotent per key (a run id replaces that run's rows;
re-sending the same sales changes nothing). Migrations run when the warehouse is opened.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from storecast.data.schema import TARGET, WEEK, Dataset, Level
from storecast.data.spec import SeriesSpec, legacy_spec
from storecast.delivery.predictions import format_amounts
from storecast.delivery.warehouse import tables as t
from storecast.delivery.warehouse.bulk import bulk_insert
from storecast.delivery.warehouse.series import (
    declare,
    declared_declaration,
    declared_spec,
    ensure_columns,
    key_frame,
    level_name,
    reflect,
    refresh_views,
    series_ids,
)
from storecast.errors import (
    ConfigError,
    NotFoundError,
    StorecastError,
    WarehouseBusyError,
)
from storecast.models.intervals import quantile_columns, quantile_level
from storecast.redaction import redact_url, scrub, url_secrets

if TYPE_CHECKING:
    from storecast.config import Settings

FORECAST = "forecast"
BACKTEST = "backtest"
_DATE_COLUMNS = {"week", "cutoff", "first_week", "last_week"}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def redact(url: str) -> str:
    """The URL as every message shows it: password and secret query values hidden."""
    return redact_url(url)


#: Seconds to wait for another process's hold on the warehouse (``warehouse_lock_timeout``).
DEFAULT_LOCK_TIMEOUT = 60.0


def _busy(url: str, waited: float, what: str) -> WarehouseBusyError:
    return WarehouseBusyError(
        f"warehouse {redact(url)!r} is {what} by another process (a running job or `storecast serve`); "
        f"waited {waited:.0f} s. Try again when it has finished, or wait longer with "
        "STORECAST_WAREHOUSE_LOCK_TIMEOUT (seconds)"
    )


def _lock_conflict(exc: BaseException) -> bool:
    """DuckDB refusing a second process (file lock) or a second configuration in this process."""
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text or "different configuration" in text


def _wait_for_duckdb(engine: sa.Engine, url: str, lock_timeout: float) -> None:
    """Connections to a DuckDB file wait for another process's lock instead of failing at once.

    DuckDB lets one process write a file or several read it, never both, so `storecast
    serve` (reading) and a job (writing) take turns; each holds the file only while it works.
    """

    @sa.event.listens_for(engine, "do_connect")
    def connect(dialect: Any, conn_rec: Any, cargs: Any, cparams: Any) -> Any:
        started = time.monotonic()
        pause = 0.02
        while True:
            try:
                return dialect.connect(*cargs, **cparams)
            except Exception as exc:
                if not _lock_conflict(exc):
                    raise
                waited = time.monotonic() - started
                if waited >= lock_timeout:
                    raise _busy(url, waited, "locked") from None
                time.sleep(min(pause, max(0.0, lock_timeout - waited)))
                pause = min(pause * 2, 0.5)


def _read_only_postgres(engine: sa.Engine) -> None:
    """Every transaction of this engine is read-only (the service never writes through it)."""

    @sa.event.listens_for(engine, "do_connect")
    def connect(dialect: Any, conn_rec: Any, cargs: Any, cparams: Any) -> None:
        cparams["options"] = f"{cparams.get('options', '')} -c default_transaction_read_only=on".strip()


def make_engine(url: str, *, read_only: bool = False, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> sa.Engine:
    """An engine for ``url``. A DuckDB file gets no pool: a connection is opened per use and
    closed after it, so the file is held only while storecast works on it."""
    duck_file = url.startswith("duckdb:///") and url != "duckdb:///:memory:"
    if duck_file and not read_only:
        Path(url.removeprefix("duckdb:///")).parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {}
    if duck_file:
        kwargs["poolclass"] = sa.pool.NullPool
        if read_only:
            kwargs["connect_args"] = {"read_only": True}
    try:
        engine = sa.create_engine(url, **kwargs)
    except Exception as exc:  # bad scheme, missing driver
        raise ConfigError(f"cannot open warehouse {redact(url)!r}: {scrub(str(exc), url_secrets(url))}") from exc
    if duck_file:
        _wait_for_duckdb(engine, url, lock_timeout)
    elif read_only and engine.dialect.name == "postgresql":
        _read_only_postgres(engine)
    return engine


@dataclass(frozen=True)
class RunRecord:
    """What a run stores next to its forecasts in ``forecast_runs``."""

    run_id: str
    model: str
    cutoff: Any  # the last history week (date-like)
    level: Level = "store"
    horizon: int = 0
    n_series: int = 0
    model_version: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    data_source: str | None = None
    data_fingerprint: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    created_at: dt.datetime | None = None


@dataclass(frozen=True)
class SalesMerge:
    """How an incoming sales frame compares with the stored history."""

    new: int
    restated: int
    unchanged: int
    restatements: pd.DataFrame  # keys, week, old_sales, new_sales, source_row (for messages)
    applied: bool
    first_week: dt.date | None
    last_week: dt.date | None


def _json(value: object) -> str:
    def default(obj: object) -> object:
        if isinstance(obj, (np.integer, np.floating)):
            return obj.item()
        if isinstance(obj, (dt.date, pd.Timestamp)):
            return obj.isoformat()
        return str(obj)

    return json.dumps(value, default=default, sort_keys=True, allow_nan=False) if value is not None else "{}"


def _clean_json(value: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in value.items()}


def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Element-wise equality where two missing values are equal."""
    a_na, b_na = a.isna().to_numpy(), b.isna().to_numpy()
    equal = (a.astype("object").to_numpy() == b.astype("object").to_numpy())
    return (a_na & b_na) | (~a_na & ~b_na & equal)


class Warehouse:
    """One interface over SQLAlchemy: DuckDB (embedded default) or PostgreSQL by URL.

    Opening it applies pending migrations (``migrate=False`` skips that, for read-only
    tools that must not write). Use as a context manager or call ``dispose()``.

    ``read_only``: never writes (the service's reads: a DuckDB file opened read-only, so
    several readers share it; PostgreSQL transactions read-only) and skips migrations.
    ``lock_timeout``: seconds to wait for another process holding the DuckDB file or
    PostgreSQL's write lock before ``WarehouseBusyError``.
    """

    def __init__(self, url: str, *, migrate: bool = True, read_only: bool = False,
                 lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        self.url = url
        self.read_only = read_only
        self.lock_timeout = lock_timeout
        self.engine = make_engine(url, read_only=read_only, lock_timeout=lock_timeout)
        self._local = threading.local()  # this thread's open transaction, for nesting
        if migrate and not read_only:
            self.migrate()

    @classmethod
    def from_settings(cls, settings: Settings, *, read_only: bool = False, migrate: bool = True) -> Warehouse:
        """The warehouse ``settings`` name, waiting ``warehouse_lock_timeout`` for its lock."""
        return cls(settings.resolved_warehouse_url, migrate=migrate, read_only=read_only,
                   lock_timeout=settings.warehouse_lock_timeout)

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

    def dispose(self) -> None:
        self.engine.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def _scrub(self, error: object) -> str:
        """A driver's error text without the URL's password, should the driver have quoted it."""
        return scrub(str(error), url_secrets(self.url))

    # --- plumbing ------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """One transaction holding the warehouse's write lock; rolled back on any error.

        Nested calls in the same thread join the outer transaction, so a job can make
        several writes (and its other commit steps) commit or fail together.
        """
        current: sa.Connection | None = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        self._local.after_commit = []
        try:
            with self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    self._take_write_lock(conn)
                self._local.conn = conn
                try:
                    yield conn
                finally:
                    self._local.conn = None
        except sa.exc.OperationalError as exc:
            raise ConfigError(f"warehouse {redact(self.url)!r} is unreachable or failed: {self._scrub(exc.orig)}") from exc
        for step in self._local.after_commit:
            step()

    def _take_write_lock(self, conn: sa.Connection) -> None:
        """PostgreSQL: one writer per schema at a time; wait up to ``lock_timeout`` for it."""
        key = sa.text(r"SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '\:storecast'))")
        started, pause = time.monotonic(), 0.02
        while not conn.execute(key).scalar():
            waited = time.monotonic() - started
            if waited >= self.lock_timeout:
                raise _busy(self.url, waited, "being written")
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    def _after_commit(self, step: Callable[[], None]) -> None:
        """Run ``step`` after the current transaction commits (now, outside one)."""
        if getattr(self._local, "conn", None) is None:
            step()
        else:
            self._local.after_commit.append(step)

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        current: sa.Connection | None = getattr(self._local, "conn", None)
        if current is not None:  # inside a transaction: read what it has written
            yield current
            return
        try:
            with self.engine.connect() as conn:
                yield conn
        except sa.exc.OperationalError as exc:
            raise ConfigError(f"warehouse {redact(self.url)!r} is unreachable or failed: {self._scrub(exc.orig)}") from exc

    @staticmethod
    def _frame(conn: sa.Connection, stmt: sa.Executable) -> pd.DataFrame:
        result = conn.execute(stmt)
        frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
        for name in frame.columns:
            if name in _DATE_COLUMNS or name.endswith("_at"):
                frame[name] = pd.to_datetime(frame[name])
        return frame

    def migrate(self) -> int:
        """Apply pending migrations in order; returns the schema version now in place."""
        with self.transaction() as conn:
            inspector = sa.inspect(conn)
            if not inspector.has_table(t.schema_version.name):
                strays = [name for name in t.DATA_TABLES if inspector.has_table(name)]
                if strays:
                    raise ConfigError(
                        f"warehouse {redact(self.url)!r} has tables {strays} but no schema_version table: "
                        "it was not created by this storecast; point --warehouse at a new database or file"
                    )
                t.metadata.create_all(conn, tables=[t.schema_version])
            current = conn.execute(sa.select(sa.func.max(t.schema_version.c.version))).scalar() or 0
            if current > t.LATEST_VERSION:
                raise ConfigError(
                    f"warehouse schema version {current} is newer than this storecast supports "
                    f"({t.LATEST_VERSION}); upgrade storecast"
                )
            for migration in t.MIGRATIONS:
                if migration.version > current:
                    migration.apply(conn)
                    conn.execute(t.schema_version.insert().values(
                        version=migration.version, description=migration.description, applied_at=utcnow()))
            return t.LATEST_VERSION

    def schema_version(self) -> int:
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.max(t.schema_version.c.version))).scalar() or 0)

    # --- the dataset ------------------------------------------------------------------------
    def spec(self) -> SeriesSpec | None:
        """The declaration of the data this warehouse holds (``None`` before any data)."""
        with self._read() as conn:
            return declared_spec(conn)

    def declaration(self) -> dict[str, Any] | None:
        """The file-level declaration (``DataSpec`` fields) the data was last read with."""
        with self._read() as conn:
            return declared_declaration(conn)

    def _declare(self, conn: sa.Connection, spec: SeriesSpec, frame: pd.DataFrame | None = None,
                 declaration: dict[str, Any] | None = None) -> None:
        declare(conn, spec, declaration)
        if frame is not None:
            drivers = [c for c in (*spec.known_future, *spec.past_only, *spec.static) if c in frame.columns]
            ensure_columns(conn, "sales", frame, drivers)
        refresh_views(conn, spec)

    def _spec_or_legacy(self, conn: sa.Connection, frame: pd.DataFrame | None = None) -> SeriesSpec:
        stored = declared_spec(conn)
        if stored is not None:
            return stored
        if frame is not None:
            return legacy_spec(frame)
        raise NotFoundError("the warehouse holds no data yet; run `storecast run` or ingest a file first")

    # --- runs and forecasts ----------------------------------------------------------------
    def write_run(
        self,
        record: RunRecord,
        forecast: pd.DataFrame,
        *,
        backtest: pd.DataFrame | None = None,
        history: Dataset | None = None,
        quality: dict[str, Any] | None = None,
        levels: dict[tuple[str, ...], pd.DataFrame] | None = None,
        spec: SeriesSpec | None = None,
        declaration: dict[str, Any] | None = None,
    ) -> None:
        """Store a run in one transaction, replacing any earlier rows of the same run id.

        ``forecast``: keys, week, step, ``yhat`` (or ``prediction``), optional bands and
        quantiles ``q<level>``. ``backtest``: the run's out-of-sample predictions (keys, week,
        step, yhat, cutoff, optional ``y``), so a stored run can be re-exported exactly.
        ``levels``: forecasts of aggregate levels (a key prefix -> its frame). ``history``:
        the sales the run used; merged into ``sales`` (new weeks appended, changed weeks
        restated with the old values kept in ``sales_restatements``).
        """
        spec = spec or (history.spec if history is not None else None)
        with self.transaction() as conn:
            spec = spec or self._spec_or_legacy(conn, forecast)
            keys = list(spec.keys)
            self._declare(conn, spec, history.frame if history is not None else None, declaration)
            if history is not None:
                ingest_id = f"run-{record.run_id}-{utcnow():%Y%m%dT%H%M%S%f}"
                merge = self._merge_sales(conn, history.frame, ingest_id, spec=spec, allow_restatement=True)
                if merge.new or merge.restated:
                    self._insert_ingest(conn, ingest_id, source=history.source, file_fingerprint=history.fingerprint,
                                        content_fingerprint=history.fingerprint, status="accepted",
                                        total=len(history.frame), merge=merge, rejected=0,
                                        message=f"history of run {record.run_id}", started_at=utcnow())
            parts = [(forecast, keys, FORECAST)]
            if backtest is not None and not backtest.empty:
                parts.append((backtest, keys, BACKTEST))
            for level, frame in (levels or {}).items():
                past = frame["cutoff"].notna() if "cutoff" in frame else pd.Series(False, index=frame.index)
                if (~past).any():
                    parts.append((frame[~past].drop(columns=["cutoff"], errors="ignore"), list(level), FORECAST))
                if past.any():
                    parts.append((frame[past], list(level), BACKTEST))
            rows = [self._forecast_rows(conn, frame, level, record, kind) for frame, level, kind in parts]
            extra = quantile_columns({c for r in rows for c in r.columns})
            if extra:
                added = ensure_columns(conn, "forecasts", rows[0].assign(**{c: 0.0 for c in extra if c not in rows[0]}), extra)
                if added:
                    refresh_views(conn, spec)
            table = reflect(conn, "forecasts") if extra else t.forecasts
            n_series = record.n_series or int(forecast[keys].drop_duplicates().shape[0])
            n_rows = sum(len(r) for r in rows)
            for name in ("forecasts", "forecast_runs", "quality_reports"):
                tbl = t.metadata.tables[name]
                conn.execute(tbl.delete().where(tbl.c.run_id == record.run_id))
            for part in rows:  # one bulk load each: concatenating would copy every column
                bulk_insert(conn, table, part)
            self._fill_actuals(conn, t.forecasts.c.run_id == record.run_id)
            conn.execute(t.forecast_runs.insert().values(
                run_id=record.run_id, created_at=record.created_at or utcnow(), model=record.model,
                model_version=record.model_version, cutoff=pd.Timestamp(record.cutoff).date(),
                level=record.level, horizon=record.horizon, n_series=n_series, n_rows=n_rows,
                data_source=record.data_source, data_fingerprint=record.data_fingerprint,
                metrics=_json(_clean_json(record.metrics)), details=_json(record.details),
            ))
            if quality is not None:
                self._insert_quality(conn, quality, report_id=f"run-{record.run_id}", run_id=record.run_id,
                                     source=record.data_source)
        self._after_bulk_load(t.forecasts, n_rows)

    def _after_bulk_load(self, table: sa.Table, n_rows: int) -> None:
        """PostgreSQL: refresh planner statistics and summarize the new block ranges now,
        so the first reads after a big load use the index instead of scanning everything."""
        if self.dialect != "postgresql" or n_rows < 100_000:
            return
        self._after_commit(lambda: self._analyze(table))

    def _analyze(self, table: sa.Table) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text(f"ANALYZE {table.name}"))
            if table is t.forecasts:
                conn.execute(sa.text("SELECT brin_summarize_new_values('ix_forecasts_run_series')"))
            conn.commit()

    @staticmethod
    def _forecast_rows(conn: sa.Connection, frame: pd.DataFrame, level: list[str], record: RunRecord,
                       kind: str) -> pd.DataFrame:
        """The ``forecasts`` columns of ``frame``, built without copying the big ones."""
        names = {"yhat": "prediction", "y": "actual"}
        missing = {WEEK, "step"} - set(frame.columns) | ({"yhat", "prediction"} - set(frame.columns)
                                                         if not ({"yhat", "prediction"} & set(frame.columns)) else set())
        missing |= set(level) - set(frame.columns)
        if missing:
            raise StorecastError(f"{kind} frame of run {record.run_id} lacks columns {sorted(missing)}")
        fixed = {c.name for c in t.forecasts.columns}
        columns: dict[str, object] = {}
        for c in frame.columns:
            name = names.get(c, c)
            if name in fixed or quantile_level(name) is not None:
                columns[name] = frame[c].to_numpy()
        n = len(frame)

        def constant(value: object) -> pd.Categorical:
            return pd.Categorical.from_codes(np.zeros(n, dtype="int8"), categories=[value])

        columns["series_id"] = series_ids(conn, frame, level)
        if kind == FORECAST or "cutoff" not in columns:
            columns["cutoff"] = np.full(n, pd.Timestamp(record.cutoff).to_datetime64())
        columns.update(run_id=constant(record.run_id), kind=constant(kind), model=constant(record.model))
        if record.model_version is not None:
            columns["model_version"] = constant(record.model_version)
        wanted = [c.name for c in t.forecasts.columns if c.name in columns]
        wanted += quantile_columns(columns)
        return pd.DataFrame({c: columns[c] for c in wanted}, copy=False)

    def _fill_actuals(self, conn: sa.Connection, where: sa.ColumnElement[bool]) -> None:
        """Copy known sales into ``forecasts.actual`` for the rows matching ``where`` (leaf series)."""
        f, s = t.forecasts, t.sales
        match = sa.and_(s.c.series_id == f.c.series_id, s.c.week == f.c.week)
        actual = sa.select(s.c.sales).where(match).scalar_subquery()
        exists = sa.exists().where(match)
        conn.execute(f.update().where(where, exists).values(actual=actual))

    def delete_run(self, run_id: str) -> None:
        with self.transaction() as conn:
            self._require_run(conn, run_id)
            for table in (t.forecasts, t.forecast_runs, t.forecast_errors, t.quality_reports):
                conn.execute(table.delete().where(table.c.run_id == run_id))

    def latest_run_id(self) -> str | None:
        """The most recently created run, or ``None`` when no run is stored."""
        r = t.forecast_runs
        with self._read() as conn:
            return conn.execute(
                sa.select(r.c.run_id).order_by(r.c.created_at.desc(), r.c.run_id.desc()).limit(1)
            ).scalar()

    def _require_run(self, conn: sa.Connection, run_id: str) -> None:
        found = conn.execute(sa.select(t.forecast_runs.c.run_id).where(t.forecast_runs.c.run_id == run_id)).scalar()
        if found is None:
            raise NotFoundError(f"run {run_id!r} is not in the warehouse; `storecast runs` lists stored runs")

    def resolve_run(self, run_id: str | None) -> str:
        """``None`` or ``"latest"`` become the latest run id; an unknown id is NotFoundError."""
        if run_id in (None, "latest"):
            latest = self.latest_run_id()
            if latest is None:
                raise NotFoundError("the warehouse holds no forecast runs yet; run `storecast run` first")
            return latest
        with self._read() as conn:
            self._require_run(conn, run_id)
        return run_id

    def read_runs(self) -> pd.DataFrame:
        """All runs, newest first; ``metrics`` and ``details`` parsed into dicts."""
        r = t.forecast_runs
        with self._read() as conn:
            frame = self._frame(conn, sa.select(r).order_by(r.c.created_at.desc(), r.c.run_id.desc()))
        for name in ("metrics", "details"):
            frame[name] = frame[name].map(json.loads)
        return frame

    def read_run(self, run_id: str | None = None) -> dict[str, Any]:
        run_id = self.resolve_run(run_id)
        runs = self.read_runs()
        return runs[runs["run_id"] == run_id].iloc[0].to_dict()

    def _keyed(self, conn: sa.Connection, frame: pd.DataFrame, spec: SeriesSpec, *, level_column: bool = False) -> pd.DataFrame:
        """``frame`` (with ``series_id``) with the key columns (and the level) instead of the id."""
        keyed = key_frame(conn, spec)
        if not level_column:
            keyed = keyed.drop(columns="level")
        out = frame.merge(keyed, on="series_id", how="left").drop(columns="series_id")
        first = [*(["level"] if level_column else []), *spec.keys]
        return out[[*first, *[c for c in out.columns if c not in first]]]

    @staticmethod
    def _key_filter(spec: SeriesSpec, filters: dict[str, Any]) -> list[sa.ColumnElement[bool]]:
        s = t.series
        conds = []
        for name, value in filters.items():
            if value is None:
                continue
            if name not in spec.keys:
                raise NotFoundError(f"no key column {name!r}; the data's keys are {', '.join(spec.keys)}")
            i = spec.keys.index(name)
            conds.append(s.c[t.KEY_COLUMNS[i]] == (str(int(value)) if isinstance(value, (int, np.integer)) else str(value)))
        return conds

    def read_forecasts(
        self,
        run_id: str | None = None,
        store: Any = None,
        dept: Any = None,
        week: Any = None,
        *,
        kind: str | None = FORECAST,
        keys: dict[str, Any] | None = None,
        level: Sequence[str] | None = None,
        all_levels: bool = False,
    ) -> pd.DataFrame:
        """Rows of one run (default: the latest), optionally of some series or one week.

        ``kind``: ``forecast`` (default), ``backtest``, or ``None`` for both. ``keys`` filters
        by key values (``store``/``dept`` are the Walmart shorthand); rows are the leaves,
        another ``level`` (a key prefix, ``()`` = total), or every level with ``all_levels``
        (then a ``level`` column names each row's).
        """
        run_id = self.resolve_run(run_id)
        s = t.series
        with self._read() as conn:
            spec = self._spec_or_legacy(conn)
            filters = {**({"store": store} if store is not None else {}), **({"dept": dept} if dept is not None else {}),
                       **(keys or {})}
            table = reflect(conn, "forecasts")
            stmt = sa.select(table).join(s, s.c.series_id == table.c.series_id).where(table.c.run_id == run_id)
            if not all_levels:
                stmt = stmt.where(s.c.level == level_name(spec.keys if level is None else level))
            if kind is not None:
                stmt = stmt.where(table.c.kind == kind)
            for cond in self._key_filter(spec, filters):
                stmt = stmt.where(cond)
            if week is not None:
                stmt = stmt.where(table.c.week == pd.Timestamp(week).date())
            frame = self._frame(conn, stmt)
            out = self._keyed(conn, frame, spec, level_column=all_levels)
        order = [c for c in ("kind", "level", *spec.keys, "cutoff", WEEK) if c in out.columns]
        out = out.sort_values(order, kind="stable", na_position="first").reset_index(drop=True)
        if not all_levels and level is not None:
            out = out.drop(columns=[k for k in spec.keys if k not in level])
        return out

    def realized_forecasts(self) -> pd.DataFrame:
        """Every stored leaf forecast (not backtest) whose week's actual has arrived: keys,
        run_id, model_version, cutoff, week, step, prediction, actual (for monitoring)."""
        f, s = t.forecasts, t.series
        with self._read() as conn:
            spec = declared_spec(conn)
            if spec is None:
                return pd.DataFrame(columns=["store", "run_id", "model_version", "cutoff", WEEK, "step", "prediction",
                                             "actual"])
            stmt = (sa.select(f.c.run_id, f.c.model_version, f.c.cutoff, f.c.series_id, f.c.week, f.c.step,
                              f.c.prediction, f.c.actual)
                    .join(s, s.c.series_id == f.c.series_id)
                    .where(f.c.kind == FORECAST, f.c.actual.is_not(None), s.c.level == level_name(spec.keys)))
            frame = self._frame(conn, stmt)
            return self._keyed(conn, frame, spec)

    # --- sales history -----------------------------------------------------------------------
    def read_sales(
        self,
        store: Any = None,
        since: Any = None,
        *,
        dept: Any = None,
        until: Any = None,
        keys: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Stored history rows (keys by name, week, sales, drivers, ingest_id), sorted by series
        and week. ``keys`` filters by key values (``store``/``dept``: the Walmart shorthand)."""
        s = t.series
        with self._read() as conn:
            stored = declared_spec(conn)
            if stored is None:
                return pd.DataFrame(columns=["store", WEEK, TARGET])
            table = reflect(conn, "sales")
            stmt = sa.select(table).join(s, s.c.series_id == table.c.series_id)
            filters = {**({"store": store} if store is not None else {}), **({"dept": dept} if dept is not None else {}),
                       **(keys or {})}
            for cond in self._key_filter(stored, filters):
                stmt = stmt.where(cond)
            if since is not None:
                stmt = stmt.where(table.c.week >= pd.Timestamp(since).date())
            if until is not None:
                stmt = stmt.where(table.c.week <= pd.Timestamp(until).date())
            frame = self._frame(conn, stmt)
            out = self._keyed(conn, frame, stored)
        return out.sort_values([*stored.keys, WEEK], kind="stable").reset_index(drop=True)

    def history(self) -> Dataset | None:
        """The stored history as a canonical ``Dataset`` (``None`` when ``sales`` is empty)."""
        with self._read() as conn:
            spec = declared_spec(conn)
        if spec is None:
            return None
        frame = self.read_sales()
        if frame.empty:
            return None
        frame = frame.drop(columns=["ingest_id"])
        drivers = [c for c in frame.columns if c not in {*spec.keys, WEEK, TARGET}]
        empty = [c for c in drivers if frame[c].isna().all()]
        frame = frame.drop(columns=empty)
        for key, kind in zip(spec.keys, spec.key_types, strict=True):
            frame[key] = frame[key].astype("int64") if kind == "int" else frame[key].astype(object)
        if "is_holiday" in frame:
            frame["is_holiday"] = frame["is_holiday"].astype(bool)
        frame[TARGET] = frame[TARGET].astype("float64")
        for name in frame.columns:
            if name in {*spec.keys, WEEK, TARGET, "is_holiday"}:
                continue
            if pd.api.types.is_numeric_dtype(frame[name]) or frame[name].map(lambda v: v is None or isinstance(v, (int, float))).all():
                frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
        keep = set(frame.columns)
        spec = replace(spec, known_future=tuple(c for c in spec.known_future if c in keep),
                       past_only=tuple(c for c in spec.past_only if c in keep),
                       static=tuple(c for c in spec.static if c in keep))
        return Dataset.from_frame(frame, source=f"warehouse {redact(self.url)}", spec=spec)

    def stores(self) -> pd.DataFrame:
        """Every stored leaf series: its keys, first/last actual week and weeks held."""
        s = t.sales
        stmt = (
            sa.select(s.c.series_id, sa.func.min(s.c.week).label("first_week"),
                      sa.func.max(s.c.week).label("last_week"), sa.func.count().label("n_weeks"))
            .group_by(s.c.series_id)
        )
        with self._read() as conn:
            spec = declared_spec(conn)
            frame = self._frame(conn, stmt)
            if spec is None:
                return pd.DataFrame(columns=["store", "first_week", "last_week", "n_weeks"])
            out = self._keyed(conn, frame, spec)
        return out.sort_values(list(spec.keys), kind="stable").reset_index(drop=True)

    series_summary = stores

    def _merge_sales(
        self, conn: sa.Connection, frame: pd.DataFrame, ingest_id: str, *, spec: SeriesSpec, allow_restatement: bool,
        source_rows: np.ndarray | None = None,
    ) -> SalesMerge:
        """Compare ``frame`` with stored sales and, unless it restates without permission, apply it.

        New series-weeks are appended; identical ones are left alone; changed ones are
        restated: their old values go to ``sales_restatements`` and the new ones replace them.
        Vectorised: one read of the stored weeks the frame touches, column-wise comparisons.
        """
        keys = list(spec.keys)
        if frame.empty:
            return SalesMerge(0, 0, 0, pd.DataFrame(), True, None, None)
        table = reflect(conn, "sales")
        values = [c.name for c in table.columns if c.name not in t.SALES_FIXED or c.name == TARGET]
        incoming = pd.DataFrame({k: frame[k].to_numpy() for k in keys})
        incoming[WEEK] = pd.to_datetime(frame[WEEK]).to_numpy()
        for name in values:
            incoming[name] = frame[name].to_numpy() if name in frame.columns else None
        ids = series_ids(conn, incoming, keys, create=False)
        incoming["series_id"] = ids
        lo, hi = incoming[WEEK].min(), incoming[WEEK].max()
        known = ids[ids >= 0]
        stored = pd.DataFrame(columns=["series_id", WEEK, *values, "ingest_id"])
        if len(known):
            stmt = sa.select(table).where(table.c.week.between(lo.date(), hi.date()))
            if len(np.unique(known)) < 5000:
                stmt = stmt.where(table.c.series_id.in_(np.unique(known).tolist()))
            stored = self._frame(conn, stmt)
            stored[WEEK] = pd.to_datetime(stored[WEEK])
        row_numbers = source_rows if source_rows is not None and len(source_rows) == len(incoming) else None
        incoming["_row"] = pd.array(row_numbers if row_numbers is not None else [None] * len(incoming), dtype="Int64")
        merged = incoming.merge(stored, on=["series_id", WEEK], how="left", suffixes=("", "_old"), indicator=True)
        is_new = (merged["_merge"] == "left_only").to_numpy()
        old = merged[~is_new]
        differs = {name: ~_same(old[name], old[f"{name}_old"]) for name in values}
        changed_mask = np.zeros(len(old), dtype=bool)
        for mask in differs.values():
            changed_mask |= mask
        changed = old[changed_mask]
        restatements = pd.DataFrame({
            **{k: changed[k].to_numpy() for k in keys}, WEEK: changed[WEEK].to_numpy(),
            "old_sales": changed[f"{TARGET}_old"].to_numpy(), "new_sales": changed[TARGET].to_numpy(),
            "source_row": changed["_row"].to_numpy(),
        })
        merge = SalesMerge(int(is_new.sum()), len(changed), int((~changed_mask).sum()), restatements,
                           applied=allow_restatement or changed.empty,
                           first_week=lo.date(), last_week=hi.date())
        if not merge.applied or (merge.new == 0 and merge.restated == 0):
            return merge
        now = utcnow()
        new_rows = merged[is_new]
        new_ids = series_ids(conn, new_rows, keys)  # creates the series seen for the first time
        to_insert = [new_rows[[WEEK, *values]].assign(series_id=new_ids, ingest_id=ingest_id)]
        if not changed.empty:
            audit = pd.DataFrame({
                "series_id": changed["series_id"].to_numpy(), WEEK: changed[WEEK].to_numpy(),
                "old_sales": changed[f"{TARGET}_old"].to_numpy(), "new_sales": changed[TARGET].to_numpy(),
                "ingest_id": ingest_id, "restated_at": now, "old_ingest_id": changed["ingest_id"].to_numpy(),
                "old_values": _changed_json(changed, {n: m[changed_mask] for n, m in differs.items()}),
            })
            bulk_insert(conn, t.sales_restatements, audit)
            self._delete_series_weeks(conn, changed[["series_id", WEEK]])
            to_insert.append(changed[["series_id", WEEK, *values]].assign(ingest_id=ingest_id))
        rows = pd.concat([f for f in to_insert if not f.empty], ignore_index=True)
        bulk_insert(conn, table, rows[[c for c in rows.columns if c in table.c]])
        self._fill_actuals(conn, t.forecasts.c.week.between(lo.date(), hi.date()))
        return merge

    def _delete_series_weeks(self, conn: sa.Connection, pairs: pd.DataFrame) -> None:
        """Delete the sales rows of these (series_id, week) pairs (a scratch table and one join)."""
        scratch = sa.Table("restated_keys", sa.MetaData(), sa.Column("series_id", sa.Integer), sa.Column("week", sa.Date),
                           prefixes=["TEMPORARY"])
        scratch.create(conn, checkfirst=True)
        conn.execute(scratch.delete())
        bulk_insert(conn, scratch, pairs.drop_duplicates())
        conn.execute(sa.text(
            "DELETE FROM sales WHERE EXISTS (SELECT 1 FROM restated_keys AS r "
            "WHERE r.series_id = sales.series_id AND r.week = sales.week)"
        ))
        conn.execute(sa.text("DROP TABLE restated_keys"))

    # --- ingests, quarantine, quality ---------------------------------------------------------
    def ingest_sales(
        self,
        frame: pd.DataFrame | None,
        *,
        ingest_id: str,
        source: str,
        file_fingerprint: str,
        content_fingerprint: str | None,
        started_at: dt.datetime,
        allow_restatement: bool,
        source_rows: np.ndarray | None = None,
        quarantine: pd.DataFrame | None = None,
        quality: dict[str, Any] | None = None,
        rejection: str | None = None,
        spec: SeriesSpec | None = None,
        declaration: dict[str, Any] | None = None,
    ) -> tuple[str, SalesMerge | None, str]:
        """Record one ingest and, when it is clean, merge its rows into ``sales``; one transaction.

        ``rejection`` (a reason) or a non-empty ``quarantine`` (source_row, check, severity,
        reason) reject the file: only the ingest record, its quality report and the
        quarantined rows (at most ``MAX_QUARANTINE_ROWS``, with a row per check counting the
        rest) are written. A file that restates stored weeks without ``allow_restatement``
        is rejected the same way, its restating rows quarantined. Returns ``(status, merge,
        message)``.
        """
        quarantine = quarantine if quarantine is not None else pd.DataFrame()
        total = 0 if frame is None else len(frame)
        with self.transaction() as conn:
            merge: SalesMerge | None = None
            if rejection is None and quarantine.empty and frame is not None:
                if spec is None:
                    stored = declared_spec(conn)
                    spec = stored if stored is not None and set(stored.keys) <= set(frame.columns) else legacy_spec(frame)
                self._declare(conn, spec, frame, declaration)
                merge = self._merge_sales(conn, frame, ingest_id, spec=spec, allow_restatement=allow_restatement,
                                          source_rows=source_rows)
                if not merge.applied:
                    r = merge.restatements
                    first = r.iloc[0]
                    where = _describe_keys(r.head(1), spec.keys)[0]
                    rejection = (
                        f"restates {merge.restated} stored series-weeks (e.g. {where} week "
                        f"{pd.Timestamp(first[WEEK]).date()}: {first['old_sales']:.2f} -> {first['new_sales']:.2f}); "
                        "pass --allow-restatement to accept and keep the old values auditable"
                    )
                    shown = r.head(MAX_QUARANTINE_ROWS)
                    weeks = pd.to_datetime(shown[WEEK]).dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
                    reasons = (pd.Series(_describe_keys(shown, spec.keys)) + " week " + weeks + ": stored "
                               + format_amounts(shown["old_sales"]) + ", file " + format_amounts(shown["new_sales"]))
                    quarantine = pd.DataFrame({"source_row": shown["source_row"].to_numpy(), "check": "restatement",
                                               "severity": "error", "reason": reasons.to_numpy()})
                    if len(r) > len(shown):
                        quarantine = pd.concat([quarantine, pd.DataFrame([{
                            "source_row": None, "check": "restatement", "severity": "error",
                            "reason": f"{len(r) - len(shown)} more restating rows not listed (the first "
                                      f"{MAX_QUARANTINE_ROWS} are)"}])], ignore_index=True)
            if rejection is None and not quarantine.empty:
                rejection = f"{_count_problems(quarantine)} problem(s) found; see the quarantine table"
            if rejection is not None:
                status, message = "rejected", rejection
            elif merge is None or (merge.new == 0 and merge.restated == 0):
                status, message = "unchanged", "every row is already stored"
            else:
                status = "accepted"
                message = f"{merge.new} new rows, {merge.restated} restated"
            rejected_rows = int(quarantine["source_row"].nunique()) if not quarantine.empty else 0
            if rejection is not None and merge is not None and merge.restated:
                rejected_rows = merge.restated
            elif rejection is not None and not rejected_rows:
                rejected_rows = total
            self._insert_ingest(conn, ingest_id, source=source, file_fingerprint=file_fingerprint,
                                content_fingerprint=content_fingerprint, status=status, total=total,
                                merge=merge if status != "rejected" else None, rejected=rejected_rows,
                                message=message, started_at=started_at)
            if not quarantine.empty:
                bulk_insert(conn, t.quarantine, quarantine[["source_row", "check", "severity", "reason"]]
                            .assign(ingest_id=ingest_id))
            if quality is not None:
                self._insert_quality(conn, quality, report_id=ingest_id, ingest_id=ingest_id, source=source)
        if status == "accepted" and merge is not None:
            self._after_bulk_load(t.sales, merge.new + merge.restated)
        return status, merge, message

    def _insert_ingest(
        self, conn: sa.Connection, ingest_id: str, *, source: str, file_fingerprint: str,
        content_fingerprint: str | None, status: str, total: int, merge: SalesMerge | None,
        rejected: int, message: str, started_at: dt.datetime,
    ) -> None:
        conn.execute(t.ingests.insert().values(
            ingest_id=ingest_id, started_at=started_at, finished_at=utcnow(), source=source,
            file_fingerprint=file_fingerprint, content_fingerprint=content_fingerprint, status=status,
            rows_total=total, rows_new=merge.new if merge else 0, rows_restated=merge.restated if merge else 0,
            rows_unchanged=merge.unchanged if merge else 0, rows_rejected=rejected,
            first_week=merge.first_week if merge else None, last_week=merge.last_week if merge else None,
            message=message,
        ))

    def _insert_quality(self, conn: sa.Connection, report: dict[str, Any], *, report_id: str,
                        ingest_id: str | None = None, run_id: str | None = None, source: str | None = None) -> None:
        counts = report.get("counts", {}) if isinstance(report.get("counts"), dict) else {}
        conn.execute(t.quality_reports.insert().values(
            report_id=report_id, created_at=utcnow(), ingest_id=ingest_id, run_id=run_id, source=source,
            n_errors=int(report.get("n_errors", counts.get("error", 0)) or 0),
            n_warnings=int(report.get("n_warnings", counts.get("warning", 0)) or 0),
            report=_json(report),
        ))

    def accepted_ingest(self, file_fingerprint: str) -> str | None:
        """The id of an earlier accepted ingest of the same file bytes, if any."""
        i = t.ingests
        with self._read() as conn:
            return conn.execute(
                sa.select(i.c.ingest_id)
                .where(i.c.file_fingerprint == file_fingerprint, i.c.status == "accepted")
                .order_by(i.c.started_at).limit(1)
            ).scalar()

    def read_table(self, name: str) -> pd.DataFrame:
        """Every row of one warehouse table, in a stable order (for audits and tests)."""
        if name not in t.metadata.tables:
            raise NotFoundError(f"no warehouse table {name!r}; tables: {', '.join(sorted(t.metadata.tables))}")
        with self._read() as conn:
            table = reflect(conn, name)
            return self._frame(conn, sa.select(table).order_by(*table.c))

    def read_ingests(self) -> pd.DataFrame:
        return self.read_table(t.ingests.name).sort_values("started_at", ascending=False, ignore_index=True)

    def read_quarantine(self, ingest_id: str | None = None) -> pd.DataFrame:
        frame = self.read_table(t.quarantine.name)
        return frame if ingest_id is None else frame[frame["ingest_id"] == ingest_id].reset_index(drop=True)

    def read_quality_reports(self) -> pd.DataFrame:
        frame = self.read_table(t.quality_reports.name)
        frame["report"] = frame["report"].map(json.loads)
        return frame

    def read_restatements(self) -> pd.DataFrame:
        """Every restated row (keys by name, week, old/new sales, ingests, replaced values)."""
        with self._read() as conn:
            spec = declared_spec(conn)
            frame = self._frame(conn, sa.select(t.sales_restatements))
            if spec is None:
                return frame
            return self._keyed(conn, frame, spec)

    # --- monitoring -----------------------------------------------------------------------------
    def refresh_forecast_errors(self, run_id: str | None = None) -> pd.DataFrame:
        """Recompute ``forecast_errors`` of a run from its forecast weeks whose actual is known.

        ``abs_pct_error`` is ``|actual - prediction| / actual * 100``, NULL where the actual
        is not positive (as MAPE skips those weeks). Returns the rows now stored.
        """
        run_id = self.resolve_run(run_id)
        f, e = t.forecasts, t.forecast_errors
        ape = sa.case((f.c.actual > 0, sa.func.abs(f.c.actual - f.c.prediction) / f.c.actual * 100), else_=None)
        select = sa.select(
            f.c.run_id, f.c.series_id, f.c.week, f.c.step, f.c.actual, f.c.prediction, ape,
            sa.literal(utcnow(), sa.DateTime),
        ).where(f.c.run_id == run_id, f.c.kind == FORECAST, f.c.actual.is_not(None))
        with self.transaction() as conn:
            conn.execute(e.delete().where(e.c.run_id == run_id))
            conn.execute(e.insert().from_select(
                ["run_id", "series_id", "week", "step", "actual", "prediction", "abs_pct_error", "computed_at"],
                select,
            ))
        return self.read_forecast_errors(run_id)

    def write_forecast_errors(self, frame: pd.DataFrame) -> int:
        """Store realized errors computed elsewhere (keys by name or ``series_id``); replaces rows
        of the same (run_id, week)."""
        e = t.forecast_errors
        frame = frame.assign(computed_at=frame["computed_at"] if "computed_at" in frame else utcnow())
        with self.transaction() as conn:
            if "series_id" not in frame:
                spec = self._spec_or_legacy(conn, frame)
                frame = frame.assign(series_id=series_ids(conn, frame, list(spec.keys)))
            frame = frame[[c.name for c in e.columns if c.name in frame.columns]]
            for (run_id, week), _ in frame.groupby(["run_id", WEEK]):
                conn.execute(e.delete().where(e.c.run_id == run_id, e.c.week == pd.Timestamp(week).date()))
            return bulk_insert(conn, e, frame)

    def read_forecast_errors(self, run_id: str | None = None) -> pd.DataFrame:
        e = t.forecast_errors
        stmt = sa.select(e)
        if run_id is not None:
            stmt = stmt.where(e.c.run_id == run_id)
        with self._read() as conn:
            spec = declared_spec(conn)
            frame = self._frame(conn, stmt)
            if spec is None:
                return frame.rename(columns={"series_id": "store"})
            out = self._keyed(conn, frame, spec)
        return out.sort_values(["run_id", *spec.keys, WEEK], kind="stable").reset_index(drop=True)

    def write_monitoring(self, frame: pd.DataFrame) -> int:
        """Append check results: check, subject, value, threshold, status [, checked_at, run_id, details]."""
        frame = frame.assign(checked_at=frame["checked_at"] if "checked_at" in frame else utcnow())
        if "details" in frame:
            frame["details"] = frame["details"].map(lambda d: d if isinstance(d, str) or d is None else _json(d))
        with self.transaction() as conn:
            return bulk_insert(conn, t.monitoring, frame)

    def read_monitoring(self, since: Any = None, check: str | None = None) -> pd.DataFrame:
        m = t.monitoring
        stmt = sa.select(m).order_by(m.c.checked_at.desc(), m.c.check, m.c.subject)
        if since is not None:
            stmt = stmt.where(m.c.checked_at >= pd.Timestamp(since).to_pydatetime())
        if check is not None:
            stmt = stmt.where(m.c.check == check)
        with self._read() as conn:
            return self._frame(conn, stmt)


#: Restating rows quarantined per ingest (the rest are counted in one more row).
MAX_QUARANTINE_ROWS = 10_000


def _describe_keys(frame: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """``store 4 dept 9`` for each row."""
    parts = [k + " " + frame[k].map(lambda v: str(int(v)) if isinstance(v, (int, np.integer)) else str(v))
             for k in keys]
    out = parts[0]
    for p in parts[1:]:
        out = out + " " + p
    return out.tolist()


def _count_problems(quarantine: pd.DataFrame) -> int:
    return len(quarantine)


def _json_values(values: pd.Series) -> np.ndarray:
    """Each value as JSON text (numbers vectorised, NaN as null)."""
    if pd.api.types.is_bool_dtype(values):
        return np.where(values.to_numpy(dtype=bool), "true", "false").astype(object)
    if pd.api.types.is_numeric_dtype(values):
        arr = values.to_numpy(dtype="float64")
        text = np.char.mod("%.17g", np.where(np.isfinite(arr), arr, 0.0)).astype(object)
        text[~np.isfinite(arr)] = "null"
        return text
    return values.map(lambda v: "null" if v is None or (isinstance(v, float) and np.isnan(v)) else json.dumps(
        v.isoformat() if hasattr(v, "isoformat") else (v.item() if hasattr(v, "item") else v))).to_numpy(dtype=object)


def _changed_json(changed: pd.DataFrame, differs: dict[str, np.ndarray]) -> np.ndarray:
    """Per restated row, a JSON object of every replaced column that changed: its old value."""
    n = len(changed)
    body = np.full(n, "", dtype=object)
    first = np.ones(n, dtype=bool)
    for name in sorted(differs):
        mask = differs[name]
        if not mask.any():
            continue
        fragment = (json.dumps(name) + ": ") + _json_values(changed[f"{name}_old"].reset_index(drop=True))
        sep = np.where(first, "", ", ")
        body = np.where(mask, body + sep + fragment, body)
        first &= ~mask
    return ("{" + body + "}").astype(object)
