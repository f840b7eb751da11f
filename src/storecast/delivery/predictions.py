"""The deliverable tables of a run.

``predictions_table`` joins history weeks (actual next to the out-of-sample backtest
prediction) with future weeks (forecast, empty actual). ``write_predictions_csv`` writes
``walmart_sales_predictions.csv`` exactly as BI tools expect it.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from storecast.data.schema import DEPT, STORE, TARGET, WEEK

CSV_NAME = "walmart_sales_predictions.csv"
_INJECTION_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def predictions_table(
    history: pd.DataFrame,
    backtest_predictions: pd.DataFrame,
    forecast: pd.DataFrame,
    keys: list[str],
) -> pd.DataFrame:
    """One row per series and week: ``keys, week, actual, predicted``.

    Historical weeks covered by the backtest carry the prediction made at the latest origin
    that forecast them (the most recent information available then); older weeks carry no
    prediction. Future weeks carry the forecast and no actual.
    """
    latest = (
        backtest_predictions.sort_values("cutoff")
        .drop_duplicates([*keys, WEEK], keep="last")[[*keys, WEEK, "yhat"]]
    )
    hist = history[[*keys, WEEK, TARGET]].merge(latest, on=[*keys, WEEK], how="left")
    hist = hist.rename(columns={TARGET: "actual", "yhat": "predicted"})
    fut = forecast[[*keys, WEEK, "yhat"]].rename(columns={"yhat": "predicted"})
    fut["actual"] = np.nan
    table = pd.concat([hist, fut[hist.columns]], ignore_index=True)
    return table.sort_values([*keys, WEEK], kind="stable").reset_index(drop=True)


def _fmt(value: float) -> str:
    return "" if pd.isna(value) else f"{value:.2f}"


def _safe(text: str) -> str:
    """Neutralise spreadsheet formulas: a cell starting with =,+,-,@ that is not a number."""
    if text.startswith(_INJECTION_PREFIXES):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text


def render_predictions_csv(table: pd.DataFrame, keys: list[str]) -> str:
    header = ["Store"] + (["Dept"] if DEPT in keys else []) + ["Date", "Weekly_Sales", "Predicted_Sales"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    cols = [STORE] + ([DEPT] if DEPT in keys else [])
    for row in table.itertuples(index=False):
        rec = row._asdict()
        cells = [str(int(rec[c])) for c in cols]
        cells.append(pd.Timestamp(rec[WEEK]).date().isoformat())
        cells.append(_fmt(rec["actual"]))
        cells.append(_fmt(rec["predicted"]))
        writer.writerow([_safe(c) for c in cells])
    return buf.getvalue()


def write_predictions_csv(table: pd.DataFrame, keys: list[str], out_dir: Path) -> Path:
    path = out_dir / CSV_NAME
    tmp = path.with_suffix(".csv.tmp")
    tmp.write_text(render_predictions_csv(table, keys), encoding="utf-8", newline="")
    tmp.replace(path)
    return path
