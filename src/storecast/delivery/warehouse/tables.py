"""The warehouse tables, declared once, and the numbered migrations that create them.

Each ``Table`` below describes the *current* shape. A migration is applied once, in order,
and recorded in ``schema_version``; once a migration has shipped it never changes: a later
change to a table is a new migration plus the matching edit here (migrations 1-3 create
the shapes they shipped with, kept in ``legacy``). No sequences: ids are chosen by the
writer (run ids, ingest ids, series ids), which keeps DuckDB and PostgreSQL identical.

Series are stored generically (schema version 4): ``series`` gives every series of every
level of the hierarchy an id and its key values (``key_1`` = the top key, e.g. the store;
``level`` names the keys it has, e.g. ``store/brand``; an aggregate such as a store's total
leaves the deeper keys empty, the chain total has none). ``dataset`` records the data's
declaration (key names and types, drivers, calendar). ``sales``, ``forecasts``,
``forecast_errors`` and ``sales_restatements`` refer to a series by ``series_id``. Driver
columns of ``sales`` (Walmart's ``is_holiday``, ``temperature``...; a retailer's ``price``,
``deal``...) and quantile columns of ``forecasts`` (``q0.1``...) are added as a dataset
declares them. The views ``v_sales`` and ``v_forecasts`` show the key columns by their
declared names (what a BI tool should read).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from storecast.delivery.warehouse import legacy

metadata = sa.MetaData()

ID = sa.String(128)
#: Most key columns a series has (``data.spec.MAX_KEYS``).
KEY_COLUMNS = tuple(f"key_{i}" for i in range(1, 6))

schema_version = sa.Table(
    "schema_version", metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),  # migration number
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("applied_at", sa.DateTime, nullable=False),  # UTC
)

#: Every series of every level: its id and key values (text; ``dataset`` gives the types).
series = sa.Table(
    "series", metadata,
    sa.Column("series_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("level", sa.String(255), nullable=False),  # "total", "store", "store/dept"
    sa.Column("series_key", sa.Text, nullable=False, unique=True),  # JSON [level, [values]]
    *[sa.Column(name, sa.Text, nullable=True) for name in KEY_COLUMNS],
    sa.Column("created_at", sa.DateTime, nullable=False),
)

#: The declaration of the data this warehouse holds (one row).
dataset = sa.Table(
    "dataset", metadata,
    sa.Column("dataset_id", sa.Integer, primary_key=True, autoincrement=False),  # always 1
    sa.Column("keys", sa.Text, nullable=False),  # JSON list of key names, top first
    sa.Column("spec", sa.Text, nullable=False),  # JSON: data.spec.SeriesSpec
    sa.Column("declaration", sa.Text, nullable=True),  # JSON: data.spec.DataSpec (file columns)
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

#: Sales history: one row per leaf series and week; driver columns are added per dataset.
sales = sa.Table(
    "sales", metadata,
    sa.Column("series_id", sa.Integer, nullable=False),
    sa.Column("week", sa.Date, nullable=False),  # the date naming the week (data.spec.WeekSpec)
    sa.Column("sales", sa.Double, nullable=False),
    sa.Column("ingest_id", ID, nullable=False),  # the ingest that wrote this row
    sa.Index("ix_sales_series_week", "series_id", "week").ddl_if(dialect="postgresql"),
)
#: ``sales`` columns that are not drivers.
SALES_FIXED = ("series_id", "week", "sales", "ingest_id")

#: Point forecasts, bands and quantiles. ``kind`` is ``forecast`` (made at the run's cutoff)
#: or ``backtest`` (out-of-sample predictions from earlier origins, ``actual`` known).
forecasts = sa.Table(
    "forecasts", metadata,
    sa.Column("run_id", ID, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=True),
    sa.Column("cutoff", sa.Date, nullable=False),  # last week of history the prediction used
    sa.Column("series_id", sa.Integer, nullable=False),
    sa.Column("week", sa.Date, nullable=False),
    sa.Column("step", sa.SmallInteger, nullable=False),  # weeks ahead of the cutoff, 1..horizon
    sa.Column("prediction", sa.Double, nullable=False),
    sa.Column("lo_80", sa.Double, nullable=True),
    sa.Column("hi_80", sa.Double, nullable=True),
    sa.Column("lo_95", sa.Double, nullable=True),
    sa.Column("hi_95", sa.Double, nullable=True),
    sa.Column("actual", sa.Double, nullable=True),  # filled when the week's sales arrive
    # A run's rows are loaded together, sorted by series, so a block-range index finds a
    # run (and a series in it) for almost nothing at load time. DuckDB's zone maps do the
    # same there without any index; an ART index would slow its bulk load several-fold.
    sa.Index("ix_forecasts_run_series", "run_id", "series_id", postgresql_using="brin",
             postgresql_with={"autosummarize": "on"}).ddl_if(dialect="postgresql"),
)

forecast_runs = legacy.forecast_runs.to_metadata(metadata)
quality_reports = legacy.quality_reports.to_metadata(metadata)
ingests = legacy.ingests.to_metadata(metadata)
quarantine = legacy.quarantine.to_metadata(metadata)
monitoring = legacy.monitoring.to_metadata(metadata)

#: The values a restating ingest replaced, so history stays auditable.
sales_restatements = sa.Table(
    "sales_restatements", metadata,
    sa.Column("ingest_id", ID, nullable=False),  # the ingest that restated the row
    sa.Column("restated_at", sa.DateTime, nullable=False),
    sa.Column("series_id", sa.Integer, nullable=False),
    sa.Column("week", sa.Date, nullable=False),
    sa.Column("old_sales", sa.Double, nullable=False),
    sa.Column("new_sales", sa.Double, nullable=False),
    sa.Column("old_ingest_id", ID, nullable=False),
    sa.Column("old_values", sa.Text, nullable=False),  # JSON: every replaced column that changed
)

#: Realized errors of stored forecasts, written by monitoring.
forecast_errors = sa.Table(
    "forecast_errors", metadata,
    sa.Column("run_id", ID, nullable=False),
    sa.Column("series_id", sa.Integer, nullable=False),
    sa.Column("week", sa.Date, nullable=False),
    sa.Column("step", sa.SmallInteger, nullable=False),
    sa.Column("actual", sa.Double, nullable=False),
    sa.Column("prediction", sa.Double, nullable=False),
    sa.Column("abs_pct_error", sa.Double, nullable=True),  # NULL when actual is 0
    sa.Column("computed_at", sa.DateTime, nullable=False),
    sa.Index("ix_forecast_errors_run_series", "run_id").ddl_if(dialect="postgresql"),
)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[sa.Connection], None]


def _create_legacy(*tables: sa.Table) -> Callable[[sa.Connection], None]:
    def apply(conn: sa.Connection) -> None:
        legacy.metadata.create_all(conn, tables=list(tables), checkfirst=True)

    return apply


#: Legacy (v3) driver columns of ``sales``, carried into the generic table by migration 4.
_LEGACY_SALES_VALUES = tuple(c.name for c in legacy.sales.columns if c.name not in {"store", "dept", "week", "sales", "ingest_id"})


def _generic_keys(conn: sa.Connection) -> None:
    """Schema 4: store/dept columns -> ``series`` ids, and the ``dataset`` declaration."""
    from storecast.data.spec import RECRUITING_SPEC, WALMART_SPEC

    q = conn.dialect.identifier_preparer.quote
    metadata.create_all(conn, tables=[series, dataset], checkfirst=True)
    has_dept = any(
        conn.execute(sa.text(f"SELECT 1 FROM {table} WHERE dept IS NOT NULL LIMIT 1")).first() is not None
        for table in ("sales", "forecasts", "forecast_errors", "sales_restatements")
    )
    has_rows = any(
        conn.execute(sa.text(f"SELECT 1 FROM {table} LIMIT 1")).first() is not None
        for table in ("sales", "forecasts", "forecast_errors", "sales_restatements")
    )
    level = "store/dept" if has_dept else "store"
    union = " UNION ".join(f"SELECT DISTINCT store, dept FROM {t}" for t in
                           ("sales", "forecasts", "forecast_errors", "sales_restatements"))
    store_text = "CAST(store AS VARCHAR)"
    dept_text = "CAST(dept AS VARCHAR)"
    values = (f"'[\"{level}\", [\"' || {store_text} || '\", \"' || {dept_text} || '\"]]'" if has_dept
              else f"'[\"{level}\", [\"' || {store_text} || '\"]]'")
    conn.execute(sa.text(
        f"INSERT INTO series (series_id, level, series_key, key_1, key_2, created_at) "
        f"SELECT CAST(row_number() OVER (ORDER BY store, dept) AS INTEGER), '{level}', {values}, {store_text}, "
        f"{dept_text if has_dept else 'NULL'}, CURRENT_TIMESTAMP FROM ({union}) AS keys"
    ))
    now = sa.func.current_timestamp()
    if has_rows:
        spec = RECRUITING_SPEC if has_dept else WALMART_SPEC
        conn.execute(dataset.insert().values(
            dataset_id=1, keys=json.dumps(list(spec.keys)), spec=json.dumps(spec.to_dict()), declaration=None,
            updated_at=now,
        ))
    match = ("s.key_1 = CAST(o.store AS VARCHAR) AND "
             + ("s.key_2 IS NOT DISTINCT FROM CAST(o.dept AS VARCHAR)" if has_dept else "s.key_2 IS NULL"))

    def move(old: str, new_table: sa.Table, columns: list[str], extra: list[sa.Column] = ()) -> None:  # type: ignore[assignment]
        temp = sa.Table(f"{old}_v4", sa.MetaData(), *[c._copy() for c in new_table.columns], *[c._copy() for c in extra])
        temp.create(conn)
        cols = ", ".join(q(c) for c in columns)
        picked = ", ".join("s.series_id" if c == "series_id" else f"o.{q(c)}" for c in columns)
        conn.execute(sa.text(f"INSERT INTO {old}_v4 ({cols}) SELECT {picked} FROM {old} AS o JOIN series AS s ON {match}"))
        conn.execute(sa.text(f"DROP TABLE {old}"))
        conn.execute(sa.text(f"ALTER TABLE {old}_v4 RENAME TO {old}"))

    # A warehouse with Walmart rows keeps their driver columns; a new one starts without any.
    carried = [c for c in legacy.sales.columns if c.name in _LEGACY_SALES_VALUES] if has_rows else []
    move("sales", sales, [*SALES_FIXED, *(c.name for c in carried)], carried)
    move("forecasts", forecasts, [c.name for c in forecasts.columns])
    move("forecast_errors", forecast_errors, [c.name for c in forecast_errors.columns])
    move("sales_restatements", sales_restatements, [c.name for c in sales_restatements.columns])
    if conn.dialect.name == "postgresql":
        for table in (sales, forecasts, forecast_errors):
            for index in table.indexes:
                index.create(conn, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "core: sales, forecasts, forecast_runs, quality_reports, ingests",
              _create_legacy(legacy.sales, legacy.forecasts, legacy.forecast_runs, legacy.quality_reports,
                             legacy.ingests)),
    Migration(2, "ingest audit: quarantine, sales_restatements",
              _create_legacy(legacy.quarantine, legacy.sales_restatements)),
    Migration(3, "monitoring: forecast_errors, monitoring", _create_legacy(legacy.forecast_errors, legacy.monitoring)),
    Migration(4, "generic series keys: series, dataset; store/dept columns become series ids", _generic_keys),
)
LATEST_VERSION = MIGRATIONS[-1].version
DATA_TABLES = tuple(t.name for t in metadata.sorted_tables if t is not schema_version)
