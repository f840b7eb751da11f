"""The warehouse tables as schema versions 1-3 shipped them (store and dept columns), frozen.

Migrations 1-3 create exactly these, as they did when they shipped; migration 4
(``tables``) turns them into the generic shape. Never edit this file: a warehouse written
by an earlier release must migrate the same way today as it would have then.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

ID = sa.String(128)
MARKDOWNS = tuple(f"markdown{i}" for i in range(1, 6))
PAST_ONLY = ("temperature", "fuel_price", "cpi", "unemployment")

#: Sales history: one row per series and week; ``dept`` is NULL for store-level data.
sales = sa.Table(
    "sales", metadata,
    sa.Column("store", sa.Integer, nullable=False),
    sa.Column("dept", sa.Integer, nullable=True),
    sa.Column("week", sa.Date, nullable=False),  # the Friday ending the Sat-Fri week
    sa.Column("sales", sa.Double, nullable=False),
    sa.Column("is_holiday", sa.Boolean, nullable=False),
    *[sa.Column(name, sa.Double, nullable=True) for name in (*PAST_ONLY, *MARKDOWNS)],
    sa.Column("store_type", sa.String(16), nullable=True),
    sa.Column("store_size", sa.Double, nullable=True),
    sa.Column("ingest_id", ID, nullable=False),  # the ingest that wrote this row
    sa.Index("ix_sales_store_week", "store", "week").ddl_if(dialect="postgresql"),
)
SALES_VALUES = tuple(c.name for c in sales.columns if c.name not in {"store", "dept", "week", "ingest_id"})

#: Point forecasts and intervals. ``kind`` is ``forecast`` (made at the run's cutoff) or
#: ``backtest`` (out-of-sample predictions from earlier origins, ``actual`` known).
forecasts = sa.Table(
    "forecasts", metadata,
    sa.Column("run_id", ID, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=True),
    sa.Column("cutoff", sa.Date, nullable=False),  # last week of history the prediction used
    sa.Column("store", sa.Integer, nullable=False),
    sa.Column("dept", sa.Integer, nullable=True),
    sa.Column("week", sa.Date, nullable=False),
    sa.Column("step", sa.SmallInteger, nullable=False),  # weeks ahead of the cutoff, 1..horizon
    sa.Column("prediction", sa.Double, nullable=False),
    sa.Column("lo_80", sa.Double, nullable=True),
    sa.Column("hi_80", sa.Double, nullable=True),
    sa.Column("lo_95", sa.Double, nullable=True),
    sa.Column("hi_95", sa.Double, nullable=True),
    sa.Column("actual", sa.Double, nullable=True),  # filled when the week's sales arrive
    # A run's rows are loaded together, sorted by series, so a block-range index finds a
    # run (and a store in it) for almost nothing at load time. DuckDB's zone maps do the
    # same there without any index; an ART index would slow its bulk load several-fold.
    sa.Index("ix_forecasts_run_store", "run_id", "store", postgresql_using="brin",
             postgresql_with={"autosummarize": "on"}).ddl_if(dialect="postgresql"),
)

#: One row per run: what produced the forecasts and how well it backtested.
forecast_runs = sa.Table(
    "forecast_runs", metadata,
    sa.Column("run_id", ID, primary_key=True),
    sa.Column("created_at", sa.DateTime, nullable=False),  # UTC
    sa.Column("model", sa.String(64), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=True),
    sa.Column("cutoff", sa.Date, nullable=False),
    sa.Column("level", sa.String(8), nullable=False),  # store | dept
    sa.Column("horizon", sa.Integer, nullable=False),
    sa.Column("n_series", sa.Integer, nullable=False),
    sa.Column("n_rows", sa.Integer, nullable=False),  # forecast + backtest rows stored
    sa.Column("data_source", sa.Text, nullable=True),
    sa.Column("data_fingerprint", sa.String(64), nullable=True),
    sa.Column("metrics", sa.Text, nullable=False),  # JSON object: backtest metrics
    sa.Column("details", sa.Text, nullable=False),  # JSON object: anything else the job records
)

#: Every quality-gate report, linked to the ingest or run that produced it.
quality_reports = sa.Table(
    "quality_reports", metadata,
    sa.Column("report_id", ID, primary_key=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("ingest_id", ID, nullable=True),
    sa.Column("run_id", ID, nullable=True),
    sa.Column("source", sa.Text, nullable=True),
    sa.Column("n_errors", sa.Integer, nullable=False),
    sa.Column("n_warnings", sa.Integer, nullable=False),
    sa.Column("report", sa.Text, nullable=False),  # JSON: the QualityReport's to_dict()
)

#: Every ingest attempt, accepted or not.
ingests = sa.Table(
    "ingests", metadata,
    sa.Column("ingest_id", ID, primary_key=True),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("file_fingerprint", sa.String(64), nullable=False),  # sha256 of the file bytes
    sa.Column("content_fingerprint", sa.String(64), nullable=True),  # of the canonical frame
    sa.Column("status", sa.String(16), nullable=False),  # accepted | unchanged | rejected
    sa.Column("rows_total", sa.Integer, nullable=False),
    sa.Column("rows_new", sa.Integer, nullable=False),
    sa.Column("rows_restated", sa.Integer, nullable=False),
    sa.Column("rows_unchanged", sa.Integer, nullable=False),
    sa.Column("rows_rejected", sa.Integer, nullable=False),
    sa.Column("first_week", sa.Date, nullable=True),
    sa.Column("last_week", sa.Date, nullable=True),
    sa.Column("message", sa.Text, nullable=False),
)

#: Rows of rejected ingests, with why.
quarantine = sa.Table(
    "quarantine", metadata,
    sa.Column("ingest_id", ID, nullable=False),
    sa.Column("source_row", sa.Integer, nullable=True),  # 1-based line in the file, header = 1
    sa.Column("check", sa.String(64), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Index("ix_quarantine_ingest", "ingest_id").ddl_if(dialect="postgresql"),
)

#: The values a restating ingest replaced, so history stays auditable.
sales_restatements = sa.Table(
    "sales_restatements", metadata,
    sa.Column("ingest_id", ID, nullable=False),  # the ingest that restated the row
    sa.Column("restated_at", sa.DateTime, nullable=False),
    sa.Column("store", sa.Integer, nullable=False),
    sa.Column("dept", sa.Integer, nullable=True),
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
    sa.Column("store", sa.Integer, nullable=False),
    sa.Column("dept", sa.Integer, nullable=True),
    sa.Column("week", sa.Date, nullable=False),
    sa.Column("step", sa.SmallInteger, nullable=False),
    sa.Column("actual", sa.Double, nullable=False),
    sa.Column("prediction", sa.Double, nullable=False),
    sa.Column("abs_pct_error", sa.Double, nullable=True),  # NULL when actual is 0
    sa.Column("computed_at", sa.DateTime, nullable=False),
    sa.Index("ix_forecast_errors_run", "run_id").ddl_if(dialect="postgresql"),
)

#: Monitoring check results: one row per check, subject and time.
monitoring = sa.Table(
    "monitoring", metadata,
    sa.Column("checked_at", sa.DateTime, nullable=False),
    sa.Column("check", sa.String(64), nullable=False),  # e.g. realized_mape, psi_temperature
    sa.Column("subject", sa.String(128), nullable=False),  # e.g. chain, store 4, store 4 dept 9
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("threshold", sa.Double, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),  # ok | warn | alert
    sa.Column("run_id", ID, nullable=True),
    sa.Column("details", sa.Text, nullable=True),  # JSON
)
