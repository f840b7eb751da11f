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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from storecast.data.schema import DEPT, STORE, TARGET, WEEK, Dataset, Level
from storecast.delivery.warehouse import tables as t
from storecast.delivery.warehouse.bulk import bulk_insert
from storecast.errors import (
    ConfigError,
    DataError,
    NotFoundError,
    StorecastError,
    WarehouseBusyError,
)
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
    restatements: pd.DataFrame  # store, dept, week, old_sales, new_sales (for messages)
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

    # --- runs and forecasts ----------------------------------------------------------------
    def write_run(
        self,
        record: RunRecord,
        forecast: pd.DataFrame,
        *,
        backtest: pd.DataFrame | None = None,
        history: Dataset | None = None,
        quality: dict[str, Any] | None = None,
    ) -> None:
        """Store a run in one transaction, replacing any earlier rows of the same run id.

        ``forecast``: keys, week, step, ``yhat`` (or ``prediction``), optional lo/hi bounds.
        ``backtest``: the run's out-of-sample predictions (keys, week, step, yhat, cutoff,
        optional ``y``), so a stored run can be re-exported exactly. ``history``: the sales
        the run used; merged into ``sales`` (new weeks appended, changed weeks restated
        with the old values kept in ``sales_restatements``).
        """
        parts = [self._forecast_rows(forecast, record, FORECAST)]
        if backtest is not None and not backtest.empty:
            parts.append(self._forecast_rows(backtest, record, BACKTEST))
        keys = [STORE, DEPT] if DEPT in forecast.columns else [STORE]
        n_series = record.n_series or int(forecast[keys].drop_duplicates().shape[0])
        n_rows = sum(len(p) for p in parts)
        with self.transaction() as conn:
            if history is not None:
                ingest_id = f"run-{record.run_id}-{utcnow():%Y%m%dT%H%M%S%f}"
                merge = self._merge_sales(conn, history.frame, ingest_id, allow_restatement=True)
                if merge.new or merge.restated:
                    self._insert_ingest(conn, ingest_id, source=history.source, file_fingerprint=history.fingerprint,
                                        content_fingerprint=history.fingerprint, status="accepted",
                                        total=len(history.frame), merge=merge, rejected=0,
                                        message=f"history of run {record.run_id}", started_at=utcnow())
            for table in (t.forecasts, t.forecast_runs, t.quality_reports):
                conn.execute(table.delete().where(table.c.run_id == record.run_id))
            for part in parts:  # one bulk load each: concatenating would copy every column
                bulk_insert(conn, t.forecasts, part)
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
                conn.execute(sa.text("SELECT brin_summarize_new_values('ix_forecasts_run_store')"))
            conn.commit()

    @staticmethod
    def _forecast_rows(frame: pd.DataFrame, record: RunRecord, kind: str) -> pd.DataFrame:
        """The ``forecasts`` columns of ``frame``, built without copying the big ones."""
        names = {"yhat": "prediction", "y": "actual"}
        columns: dict[str, object] = {names.get(c, c): frame[c].to_numpy() for c in frame.columns}
        missing = {STORE, WEEK, "step", "prediction"} - set(columns)
        if missing:
            raise StorecastError(f"{kind} frame of run {record.run_id} lacks columns {sorted(missing)}")
        n = len(frame)

        def constant(value: object) -> pd.Categorical:
            return pd.Categorical.from_codes(np.zeros(n, dtype="int8"), categories=[value])

        if kind == FORECAST or "cutoff" not in columns:
            columns["cutoff"] = np.full(n, pd.Timestamp(record.cutoff).to_datetime64())
        columns.update(run_id=constant(record.run_id), kind=constant(kind), model=constant(record.model))
        if record.model_version is not None:
            columns["model_version"] = constant(record.model_version)
        wanted = [c.name for c in t.forecasts.columns if c.name in columns]
        return pd.DataFrame({c: columns[c] for c in wanted}, copy=False)

    def _fill_actuals(self, conn: sa.Connection, where: sa.ColumnElement[bool]) -> None:
        """Copy known sales into ``forecasts.actual`` for the rows matching ``where``."""
        f, s = t.forecasts, t.sales
        match = sa.and_(s.c.store == f.c.store, s.c.dept.is_not_distinct_from(f.c.dept), s.c.week == f.c.week)
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

    def read_forecasts(
        self,
        run_id: str | None = None,
        store: int | None = None,
        dept: int | None = None,
        week: Any = None,
        *,
        kind: str | None = FORECAST,
    ) -> pd.DataFrame:
        """Rows of one run (default: the latest), optionally one store/dept/week.

        ``kind``: ``forecast`` (default), ``backtest``, or ``None`` for both.
        """
        run_id = self.resolve_run(run_id)
        f = t.forecasts
        stmt = sa.select(f).where(f.c.run_id == run_id)
        if kind is not None:
            stmt = stmt.where(f.c.kind == kind)
        if store is not None:
            stmt = stmt.where(f.c.store == int(store))
        if dept is not None:
            stmt = stmt.where(f.c.dept == int(dept))
        if week is not None:
            stmt = stmt.where(f.c.week == pd.Timestamp(week).date())
        stmt = stmt.order_by(f.c.kind, f.c.store, f.c.dept, f.c.cutoff, f.c.week)
        with self._read() as conn:
            return self._frame(conn, stmt)

    # --- sales history -----------------------------------------------------------------------
    def read_sales(
        self,
        store: int | None = None,
        since: Any = None,
        *,
        dept: int | None = None,
        until: Any = None,
    ) -> pd.DataFrame:
        """Stored history rows (all columns of ``sales``), sorted by series and week."""
        s = t.sales
        stmt = sa.select(s)
        if store is not None:
            stmt = stmt.where(s.c.store == int(store))
        if dept is not None:
            stmt = stmt.where(s.c.dept == int(dept))
        if since is not None:
            stmt = stmt.where(s.c.week >= pd.Timestamp(since).date())
        if until is not None:
            stmt = stmt.where(s.c.week <= pd.Timestamp(until).date())
        with self._read() as conn:
            return self._frame(conn, stmt.order_by(s.c.store, s.c.dept, s.c.week))

    def history(self) -> Dataset | None:
        """The stored history as a canonical ``Dataset`` (``None`` when ``sales`` is empty)."""
        frame = self.read_sales()
        if frame.empty:
            return None
        frame = frame.drop(columns=["ingest_id"])
        empty = [c for c in frame.columns if c not in {STORE, DEPT, WEEK, TARGET} and frame[c].isna().all()]
        frame = frame.drop(columns=empty)
        if frame[DEPT].isna().all():
            frame = frame.drop(columns=[DEPT])
        else:
            frame[DEPT] = frame[DEPT].astype("int64")
        frame[STORE] = frame[STORE].astype("int64")
        frame["is_holiday"] = frame["is_holiday"].astype(bool)
        for name in frame.columns:
            if name not in {STORE, DEPT, WEEK, "is_holiday", "store_type"}:
                frame[name] = frame[name].astype("float64")
        return Dataset.from_frame(frame, source=f"warehouse {redact(self.url)}")

    def stores(self) -> pd.DataFrame:
        """Every stored series: store, dept (NULL at store level), first/last actual week, weeks."""
        s = t.sales
        stmt = (
            sa.select(s.c.store, s.c.dept, sa.func.min(s.c.week).label("first_week"),
                      sa.func.max(s.c.week).label("last_week"), sa.func.count().label("n_weeks"))
            .group_by(s.c.store, s.c.dept)
            .order_by(s.c.store, s.c.dept)
        )
        with self._read() as conn:
            return self._frame(conn, stmt)

    def sales_level(self, conn: sa.Connection | None = None) -> Level | None:
        stmt = sa.select(t.sales.c.dept).limit(1)
        if conn is None:
            with self._read() as own:
                row = own.execute(stmt).first()
        else:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        return "store" if row[0] is None else "dept"

    def _merge_sales(
        self, conn: sa.Connection, frame: pd.DataFrame, ingest_id: str, *, allow_restatement: bool,
        source_rows: np.ndarray | None = None,
    ) -> SalesMerge:
        """Compare ``frame`` with stored sales and, unless it restates without permission, apply it.

        New series-weeks are appended; identical ones are left alone; changed ones are
        restated: their old values go to ``sales_restatements`` and the new ones replace them.
        """
        level: Level = "dept" if DEPT in frame.columns else "store"
        stored_level = self.sales_level(conn)
        if stored_level is not None and stored_level != level:
            raise DataError(
                f"the warehouse holds {stored_level}-level sales; this data is {level}-level. "
                "Use a separate warehouse (--warehouse) for each level"
            )
        keys = [STORE, DEPT, WEEK]
        values = list(t.SALES_VALUES)
        incoming = frame[[c for c in frame.columns if c in {col.name for col in t.sales.columns}]].copy()
        for name in [DEPT, *values]:
            if name not in incoming.columns:
                incoming[name] = None if name in {DEPT, "store_type"} else np.nan
        incoming[WEEK] = pd.to_datetime(incoming[WEEK])
        if incoming.empty:
            return SalesMerge(0, 0, 0, pd.DataFrame(), True, None, None)
        lo, hi = incoming[WEEK].min(), incoming[WEEK].max()
        s = t.sales
        stored = self._frame(conn, sa.select(s).where(s.c.week.between(lo.date(), hi.date())))
        stored[WEEK] = pd.to_datetime(stored[WEEK])
        # NULL dept never equals NULL in a merge key; use a sentinel just for the join.
        known = source_rows is not None and len(source_rows) == len(incoming)
        incoming["_row"] = pd.array(source_rows if known else [None] * len(incoming), dtype="Int64")
        join_in = incoming.assign(_dept=incoming[DEPT].astype("Float64").fillna(-1).astype("int64"))
        join_st = stored.assign(_dept=stored[DEPT].astype("Float64").fillna(-1).astype("int64"))
        on = [STORE, "_dept", WEEK]
        merged = join_in.merge(join_st[[*on, *values, "ingest_id"]], on=on, how="left",
                               suffixes=("", "_old"), indicator=True)
        is_new = (merged["_merge"] == "left_only").to_numpy()
        old = merged[~is_new]
        same = np.ones(len(old), dtype=bool)
        for name in values:
            same &= _same(old[name], old[f"{name}_old"])
        changed = old[~same]
        restatements = pd.DataFrame({
            STORE: changed[STORE].to_numpy(), DEPT: changed[DEPT].to_numpy(), WEEK: changed[WEEK].to_numpy(),
            "old_sales": changed[f"{TARGET}_old"].to_numpy(), "new_sales": changed[TARGET].to_numpy(),
            "source_row": changed["_row"].to_numpy(),
        })
        merge = SalesMerge(int(is_new.sum()), len(changed), int(same.sum()), restatements,
                           applied=allow_restatement or changed.empty,
                           first_week=lo.date(), last_week=hi.date())
        if not merge.applied or (merge.new == 0 and merge.restated == 0):
            return merge
        now = utcnow()
        to_insert = [merged.loc[is_new, [*keys, *values]].assign(ingest_id=ingest_id)]
        if not changed.empty:
            audit = restatements.drop(columns=["source_row"]).assign(
                ingest_id=ingest_id, restated_at=now, old_ingest_id=changed["ingest_id"].to_numpy(),
                old_values=[
                    _json({n: row[f"{n}_old"] for n in values if not _same(pd.Series([row[n]]), pd.Series([row[f"{n}_old"]]))[0]})
                    for _, row in changed.iterrows()
                ],
            )
            bulk_insert(conn, t.sales_restatements, audit)
            # Rewrite the affected weeks whole: the stored rows we keep plus the restated ones.
            weeks = sorted({w.date() for w in changed[WEEK]})
            conn.execute(s.delete().where(s.c.week.in_(weeks)))
            in_weeks = join_st[join_st[WEEK].dt.date.isin(weeks)]
            restated_keys = changed[on]
            kept = in_weeks.merge(restated_keys, on=on, how="left", indicator=True)
            kept = kept[kept["_merge"] == "left_only"]
            to_insert.append(kept[[*keys, *values, "ingest_id"]])
            to_insert.append(changed[[*keys, *values]].assign(ingest_id=ingest_id))
        rows = pd.concat([f for f in to_insert if not f.empty], ignore_index=True)
        bulk_insert(conn, s, rows)
        touched = sa.and_(t.forecasts.c.week.between(lo.date(), hi.date()))
        self._fill_actuals(conn, touched)
        return merge

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
    ) -> tuple[str, SalesMerge | None, str]:
        """Record one ingest and, when it is clean, merge its rows into ``sales``; one transaction.

        ``rejection`` (a reason) or a non-empty ``quarantine`` (source_row, check, severity,
        reason) reject the file: only the ingest record, its quality report and the
        quarantined rows are written. A file that restates stored weeks without
        ``allow_restatement`` is rejected the same way, its restating rows quarantined.
        Returns ``(status, merge, message)``.
        """
        quarantine = quarantine if quarantine is not None else pd.DataFrame()
        total = 0 if frame is None else len(frame)
        with self.transaction() as conn:
            merge: SalesMerge | None = None
            if rejection is None and quarantine.empty and frame is not None:
                merge = self._merge_sales(conn, frame, ingest_id, allow_restatement=allow_restatement,
                                          source_rows=source_rows)
                if not merge.applied:
                    r = merge.restatements
                    first = r.iloc[0]
                    rejection = (
                        f"restates {merge.restated} stored series-weeks (e.g. store {int(first[STORE])}"
                        + ("" if pd.isna(first[DEPT]) else f" dept {int(first[DEPT])}")
                        + f" week {pd.Timestamp(first[WEEK]).date()}: {first['old_sales']:.2f} -> {first['new_sales']:.2f}); "
                        "pass --allow-restatement to accept and keep the old values auditable"
                    )
                    quarantine = pd.DataFrame({
                        "source_row": r["source_row"].to_numpy(),
                        "check": "restatement", "severity": "error",
                        "reason": [
                            f"store {int(row[STORE])}" + ("" if pd.isna(row[DEPT]) else f" dept {int(row[DEPT])}")
                            + f" week {pd.Timestamp(row[WEEK]).date()}: stored {row['old_sales']:.2f}, file {row['new_sales']:.2f}"
                            for _, row in r.iterrows()
                        ],
                    })
            if rejection is None and not quarantine.empty:
                rejection = f"{len(quarantine)} problem(s) found; see the quarantine table"
            if rejection is not None:
                status, message = "rejected", rejection
            elif merge is None or (merge.new == 0 and merge.restated == 0):
                status, message = "unchanged", "every row is already stored"
            else:
                status = "accepted"
                message = f"{merge.new} new rows, {merge.restated} restated"
            rejected_rows = int(quarantine["source_row"].nunique()) if not quarantine.empty else 0
            if rejection is not None and not rejected_rows:
                rejected_rows = len(quarantine) if merge is not None else total
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
        table = t.metadata.tables[name]
        with self._read() as conn:
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
            f.c.run_id, f.c.store, f.c.dept, f.c.week, f.c.step, f.c.actual, f.c.prediction, ape,
            sa.literal(utcnow(), sa.DateTime),
        ).where(f.c.run_id == run_id, f.c.kind == FORECAST, f.c.actual.is_not(None))
        with self.transaction() as conn:
            conn.execute(e.delete().where(e.c.run_id == run_id))
            conn.execute(e.insert().from_select(
                ["run_id", "store", "dept", "week", "step", "actual", "prediction", "abs_pct_error", "computed_at"],
                select,
            ))
        return self.read_forecast_errors(run_id)

    def write_forecast_errors(self, frame: pd.DataFrame) -> int:
        """Store realized errors computed elsewhere; replaces rows of the same (run_id, week)."""
        e = t.forecast_errors
        frame = frame.assign(computed_at=frame["computed_at"] if "computed_at" in frame else utcnow())
        with self.transaction() as conn:
            for (run_id, week), _ in frame.groupby(["run_id", WEEK]):
                conn.execute(e.delete().where(e.c.run_id == run_id, e.c.week == pd.Timestamp(week).date()))
            return bulk_insert(conn, e, frame)

    def read_forecast_errors(self, run_id: str | None = None) -> pd.DataFrame:
        e = t.forecast_errors
        stmt = sa.select(e).order_by(e.c.run_id, e.c.store, e.c.dept, e.c.week)
        if run_id is not None:
            stmt = stmt.where(e.c.run_id == run_id)
        with self._read() as conn:
            return self._frame(conn, stmt)

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
