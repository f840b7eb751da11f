"""Re-export a stored run: the BI CSV (same renderer as the run's own) or Parquet."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd

from storecast.data.schema import DEPT, STORE, WEEK
from storecast.delivery.files import write_atomic, write_text_atomic
from storecast.delivery.predictions import predictions_table, render_predictions_csv
from storecast.delivery.warehouse.store import BACKTEST, FORECAST, Warehouse
from storecast.errors import UsageError

ExportFormat = Literal["csv", "parquet"]


def _canonical(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    out = frame.copy()
    for key in keys:
        out[key] = out[key].astype("int64")
    if DEPT not in keys and DEPT in out.columns:
        out = out.drop(columns=[DEPT])
    return out


def run_predictions_table(wh: Warehouse, run_id: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The run's ``predictions_table``: stored actuals up to its cutoff, backtest and forecast.

    The same table the run wrote as its CSV, rebuilt from the warehouse (history restated
    since the run shows the restated values).
    """
    run = wh.read_run(run_id)
    rows = wh.read_forecasts(run["run_id"], kind=None)
    keys = [STORE, DEPT] if run["level"] == "dept" else [STORE]
    rows = _canonical(rows, keys).rename(columns={"prediction": "yhat"})
    series = rows.loc[rows["kind"] == FORECAST, keys].drop_duplicates()
    history = _canonical(wh.read_sales(until=run["cutoff"]), keys).merge(series, on=keys)
    table = predictions_table(history, rows[rows["kind"] == BACKTEST], rows[rows["kind"] == FORECAST], keys)
    return table, keys


def export_name(run_id: str, fmt: str) -> str:
    """The file name an export gets when ``--out`` is a directory."""
    return f"storecast_{run_id}.{fmt}"


def export_run(wh: Warehouse, run_id: str | None, fmt: str, out: Path) -> Path:
    """Write a stored run to ``out`` as ``csv`` (the BI CSV) or ``parquet`` (every stored row).

    ``out`` is written into as given (``delivery.files.write_atomic``): a directory gets
    ``storecast_<run>.<fmt>``, a symlink is written through, a device or FIFO is streamed
    into; a failure leaves the target as it was and no temp file behind.
    """
    if fmt not in ("csv", "parquet"):
        raise UsageError(f"export format must be csv or parquet, got {fmt!r}")
    resolved = wh.resolve_run(run_id)
    if out.is_dir():
        out = out / export_name(resolved, fmt)
    if fmt == "csv":
        table, keys = run_predictions_table(wh, resolved)
        return write_text_atomic(out, render_predictions_csv(table, keys))
    rows = wh.read_forecasts(resolved, kind=None)
    rows = rows.sort_values(["kind", STORE, DEPT, "cutoff", WEEK], kind="stable", ignore_index=True)
    return write_atomic(out, lambda handle: rows.to_parquet(handle, index=False))
