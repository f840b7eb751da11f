"""Re-export a stored run: the BI CSV (same renderer as the run's own) or Parquet."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd

from storecast.data.schema import WEEK
from storecast.delivery.files import write_atomic, write_text_atomic
from storecast.delivery.predictions import (
    predictions_table,
    render_generic_csv,
    render_predictions_csv,
)
from storecast.delivery.warehouse.store import BACKTEST, FORECAST, Warehouse
from storecast.errors import UsageError

ExportFormat = Literal["csv", "parquet"]


def run_predictions_table(wh: Warehouse, run_id: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The run's ``predictions_table``: stored actuals up to its cutoff, backtest and forecast.

    The same table the run wrote as its CSV, rebuilt from the warehouse (history restated
    since the run shows the restated values).
    """
    run = wh.read_run(run_id)
    spec = wh.spec()
    keys = list(spec.keys) if spec is not None else ["store"]
    rows = wh.read_forecasts(run["run_id"], kind=None).rename(columns={"prediction": "yhat"})
    series = rows.loc[rows["kind"] == FORECAST, keys].drop_duplicates()
    history = wh.read_sales(until=run["cutoff"]).merge(series, on=keys)
    table = predictions_table(history, rows[rows["kind"] == BACKTEST], rows[rows["kind"] == FORECAST], keys)
    return table, keys


def _levels(wh: Warehouse, run_id: str, keys: list[str]) -> dict[tuple[str, ...], pd.DataFrame]:
    """The aggregate levels' tables of a declared retailer's run (its ``sales_predictions.csv``)."""
    from storecast.data.schema import TARGET

    run = wh.read_run(run_id)
    out = {}
    history = wh.read_sales(until=run["cutoff"])
    for i in range(len(keys)):
        level = tuple(keys[:i])
        rows = wh.read_forecasts(run_id, kind=None, level=level).rename(columns={"prediction": "yhat"})
        if rows.empty:
            continue
        totals = history.groupby([*level, WEEK], as_index=False)[TARGET].sum(min_count=1)
        out[level] = predictions_table(totals, rows[rows["kind"] == BACKTEST], rows[rows["kind"] == FORECAST], list(level))
    return out


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
    spec = wh.spec()
    if fmt == "csv":
        table, keys = run_predictions_table(wh, resolved)
        if spec is not None and spec.preset is None:
            return write_text_atomic(out, render_generic_csv(table, keys, _levels(wh, resolved, keys)))
        return write_text_atomic(out, render_predictions_csv(table, keys))
    generic = spec is not None and spec.preset is None
    rows = wh.read_forecasts(resolved, kind=None, all_levels=generic)
    keys = list(spec.keys) if spec is not None else []
    rows = rows.sort_values([c for c in ("kind", "level", *keys, "cutoff", WEEK) if c in rows], kind="stable",
                            ignore_index=True, na_position="first")
    return write_atomic(out, lambda handle: rows.to_parquet(handle, index=False))
