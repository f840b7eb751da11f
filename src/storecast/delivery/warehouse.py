"""The warehouse: one interface over SQLAlchemy, DuckDB embedded by default, PostgreSQL by URL.

First version: writes a run's history and forecasts in one transaction, replacing that run.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from storecast.errors import ConfigError


def make_engine(url: str) -> sa.Engine:
    if url.startswith("duckdb:///"):
        Path(url.removeprefix("duckdb:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        return sa.create_engine(url)
    except Exception as exc:  # bad scheme, missing driver
        raise ConfigError(f"cannot open warehouse {url!r}: {exc}") from exc


class Warehouse:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)

    def write_run(self, run_id: str, sales: pd.DataFrame, forecasts: pd.DataFrame, run: pd.DataFrame) -> None:
        with self.engine.begin() as conn:
            insp = sa.inspect(conn)
            for table in ("forecasts", "forecast_runs"):
                if insp.has_table(table):
                    conn.execute(sa.text(f"DELETE FROM {table} WHERE run_id = :r"), {"r": run_id})
            if insp.has_table("sales"):
                conn.execute(sa.text("DELETE FROM sales"))
            sales.to_sql("sales", conn, if_exists="append", index=False)
            forecasts.to_sql("forecasts", conn, if_exists="append", index=False)
            run.to_sql("forecast_runs", conn, if_exists="append", index=False)

    def dispose(self) -> None:
        self.engine.dispose()
