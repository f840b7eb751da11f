"""The deliverable tables of a run.

``predictions_table`` joins history weeks (actual next to the out-of-sample backtest
prediction) with future weeks (forecast, empty actual). ``write_predictions_csv`` writes
the BI CSV exactly as BI tools expect it: fixed header, ISO dates, two decimals, UTF-8
without BOM, sorted, and no cell a spreadsheet would run as a formula.

- The Walmart files: ``walmart_sales_predictions.csv`` with exactly ``Store, Date,
  Weekly_Sales, Predicted_Sales`` (department data: ``Store, Dept, ...``), the leaves only,
  as the seed's deployment plan specifies.
- Any other retailer: ``sales_predictions.csv`` with ``Level``, the declared key columns,
  ``Date``, ``Sales``, ``Predicted_Sales``: one row per series and week at every level of
  the hierarchy (``Level`` is ``total``, ``store``, ``store/brand``...; the keys a level
  sums over are empty), so a BI tool filters one level and every level adds up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from storecast.data.schema import DEPT, STORE, TARGET, WEEK
from storecast.delivery.files import write_text_atomic

CSV_NAME = "walmart_sales_predictions.csv"
#: The BI CSV of a declared retailer's data.
GENERIC_CSV_NAME = "sales_predictions.csv"
#: Interval columns carried through ``predictions_table`` when both inputs have them.
BAND_COLUMNS = ("lo_80", "hi_80", "lo_95", "hi_95")
_INJECTION_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def predictions_table(
    history: pd.DataFrame,
    backtest_predictions: pd.DataFrame,
    forecast: pd.DataFrame,
    keys: list[str],
) -> pd.DataFrame:
    """One row per series and week: ``keys, week, actual, predicted`` (+ ``step``, ``cutoff``, bands).

    Historical weeks covered by the backtest carry the prediction made at the latest origin
    that forecast them (the most recent information available then); older weeks carry no
    prediction. Future weeks carry the forecast and no actual; their ``cutoff`` is NaT.
    ``step`` and the 80%/95% bounds come along when the inputs hold them (the dashboard
    draws them; the CSV ignores them).
    """
    extra = [c for c in ("step", *BAND_COLUMNS) if c in backtest_predictions and c in forecast]
    bt_cols = [*keys, WEEK, "yhat", *extra] + (["cutoff"] if "cutoff" in backtest_predictions else [])
    latest = (
        backtest_predictions.sort_values("cutoff", kind="stable")
        .drop_duplicates([*keys, WEEK], keep="last")[bt_cols]
    )
    hist = history[[*keys, WEEK, TARGET]].merge(latest, on=[*keys, WEEK], how="left")
    hist = hist.rename(columns={TARGET: "actual", "yhat": "predicted"})
    fut = forecast[[*keys, WEEK, "yhat", *extra]].rename(columns={"yhat": "predicted"})
    fut["actual"] = np.nan
    if "cutoff" in hist:
        fut["cutoff"] = pd.NaT
    table = pd.concat([hist, fut[hist.columns]], ignore_index=True)
    return table.sort_values([*keys, WEEK], kind="stable").reset_index(drop=True)


def csv_header(keys: list[str]) -> list[str]:
    """The CSV's exact columns: ``Store[, Dept], Date, Weekly_Sales, Predicted_Sales``."""
    return ["Store"] + (["Dept"] if DEPT in keys else []) + ["Date", "Weekly_Sales", "Predicted_Sales"]


def safe_cell(text: str) -> str:
    """Neutralise a spreadsheet formula: a cell starting with =,+,-,@ (or tab/CR) that is not a number."""
    if text.startswith(_INJECTION_PREFIXES):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text


def format_amounts(values: pd.Series) -> pd.Series:
    """Two decimals as text, ``""`` for missing, no ``-0.00`` (vectorised ``_fmt``)."""
    arr = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    missing = ~np.isfinite(arr)
    text = np.char.mod("%.2f", np.where(missing, 0.0, arr)).astype(object)
    text[text == "-0.00"] = "0.00"
    text[missing] = ""
    return pd.Series(text, index=values.index, dtype=object)


def guard_cells(cells: pd.Series) -> pd.Series:
    """Vectorised ``safe_cell``: only cells with a risky first character are looked at."""
    text = cells.astype(str)
    risky = text.str[:1].isin(_INJECTION_PREFIXES).to_numpy()
    if risky.any():
        text = text.copy()
        text[risky] = [safe_cell(t) for t in text[risky]]
    return text


def _quote(cells: pd.Series) -> pd.Series:
    """CSV-quote text cells holding a comma, a quote or a line break."""
    text = cells.astype(str)
    risky = text.str.contains(r'[",\r\n]', regex=True).to_numpy()
    if risky.any():
        text = text.copy()
        text[risky] = ['"' + t.replace('"', '""') + '"' for t in text[risky]]
    return text


def _key_text(values: pd.Series) -> pd.Series:
    if pd.api.types.is_integer_dtype(values):
        return values.astype("int64").astype(str)
    return values.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))


def level_tables(dataset: Any, evaluation: Any, forecast: Any) -> dict[tuple[str, ...], pd.DataFrame]:
    """``predictions_table`` of every aggregate level: actual = the sum of the leaves' sales,
    predicted = the delivered backtest and the forecast summed to the level."""
    out = {}
    frame = dataset.frame
    for level, future in forecast.levels.items():
        keys = list(level)
        history = frame.groupby([*keys, WEEK], as_index=False, sort=True)[TARGET].sum(min_count=1)
        past = evaluation.levels.get(level, pd.DataFrame(columns=[*keys, WEEK, "yhat", "cutoff"]))
        out[level] = predictions_table(history, past, future, keys)
    return out


def render_generic_csv(leaves: pd.DataFrame, keys: list[str], levels: dict[tuple[str, ...], pd.DataFrame]) -> str:
    """``Level, <keys>, Date, Sales, Predicted_Sales`` for every level, total first."""
    from storecast.forecasting.hierarchy import level_name

    blocks = []
    ordered_levels = sorted(levels, key=len)
    for level in [*ordered_levels, tuple(keys)]:
        table = leaves if level == tuple(keys) else levels[level]
        table = table.sort_values([*level, WEEK], kind="stable")
        n = len(table)
        cols = [pd.Series([level_name(level)] * n, index=table.index)]
        for key in keys:
            cols.append(_quote(_key_text(table[key])) if key in level else pd.Series([""] * n, index=table.index))
        weeks = pd.to_datetime(table[WEEK])
        labels = pd.Series(weeks.unique())
        iso = dict(zip(labels, labels.dt.strftime("%Y-%m-%d"), strict=True))
        cols += [weeks.map(iso), format_amounts(table["actual"]), format_amounts(table["predicted"])]
        lines = guard_cells(cols[0]).to_numpy(dtype=object)
        for col in cols[1:]:
            lines = lines + "," + guard_cells(col).to_numpy(dtype=object)
        blocks.extend(lines.tolist())
    header = ",".join(["Level", *[_quote(pd.Series([k])).iloc[0] for k in keys], "Date", "Sales", "Predicted_Sales"])
    return header + "\n" + ("\n".join(blocks) + "\n" if blocks else "")


def render_predictions_csv(table: pd.DataFrame, keys: list[str]) -> str:
    """The CSV text of a predictions table (``keys, week, actual, predicted``), sorted and guarded.

    Vectorised (department data is ~250k rows); the same table always renders to the same
    bytes. Every cell is an integer key, an ISO date or a formatted number, so none needs
    quoting and lines are joined directly.
    """
    key_cols = [STORE] + ([DEPT] if DEPT in keys else [])
    ordered = table.sort_values([*key_cols, WEEK], kind="stable")
    columns = [ordered[col].astype("int64").astype(str) for col in key_cols]
    weeks = pd.to_datetime(ordered[WEEK])
    labels = pd.Series(weeks.unique())
    iso = dict(zip(labels, labels.dt.strftime("%Y-%m-%d"), strict=True))
    columns.append(weeks.map(iso))
    columns.append(format_amounts(ordered["actual"]))
    columns.append(format_amounts(ordered["predicted"]))
    lines = guard_cells(columns[0]).to_numpy(dtype=object)
    for col in columns[1:]:
        lines = lines + "," + guard_cells(col).to_numpy(dtype=object)
    body = "\n".join(lines.tolist())
    return ",".join(csv_header(keys)) + "\n" + (body + "\n" if len(lines) else "")


def write_predictions_csv(
    table: pd.DataFrame,
    keys: list[str],
    out_dir: Path,
    *,
    spec: Any = None,
    levels: dict[tuple[str, ...], pd.DataFrame] | None = None,
) -> Path:
    """Write the BI CSV atomically (temp file, then rename): the Walmart files'
    ``walmart_sales_predictions.csv``, or a declared retailer's ``sales_predictions.csv`` with
    every level (``levels``: ``level_tables``)."""
    generic = spec is not None and spec.preset is None
    path = out_dir / (GENERIC_CSV_NAME if generic else CSV_NAME)
    text = render_generic_csv(table, keys, levels or {}) if generic else render_predictions_csv(table, keys)
    return write_text_atomic(path, text)
