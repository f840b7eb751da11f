"""Department-level accuracy: the issue's protocol on walmart-recruiting, models side by side.

13-week horizon, 4 origins stepping 13 weeks, ending at the last week of train.csv, every
store x department series present at each origin. WMAE weights holiday weeks 5x (the
competition's measure). Each model is also shown as delivered ("+rec"): what the
forecasting pipeline makes of its backtest (``forecasting.pipeline.evaluate_pipeline``:
short series blended with their peers, departments reconciled with the store-level
default's forecast of the store totals by the method the backtest chooses), which is what
``storecast run`` delivers on department data.

    .venv/bin/python bench/accuracy_departments.py [--data DIR] [--models a,b] [--stores 1-30]

AutoARIMA (season 52) and ARIMA-X cost about 0.1-1 s per series and window; on ~3,300
series they are left out of the default list (pass them with --models, ideally with
--stores to a subset).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from storecast.config import Settings
from storecast.data.readers import read_history
from storecast.data.schema import WEEK, Dataset
from storecast.evaluation.backtest import BacktestResult, backtest
from storecast.evaluation.metrics import summarize
from storecast.forecasting.pipeline import evaluate_pipeline

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "walmart-recruiting"
DEFAULT_MODELS = "seasonal_naive,yoy_scaled,calendar_yoy,mstl,ets,gbm"
HORIZON, WINDOWS, STEP, SEED = 13, 4, 13, 42


def reconciled(dataset: Dataset, result: BacktestResult, name: str) -> pd.DataFrame:
    """The model's backtest as the pipeline delivers it (what ``storecast run`` ships)."""
    evaluation = evaluate_pipeline(dataset, result, name, seed=SEED)
    print(f"{name}: reconciliation {evaluation.method} (leaf WAPE {evaluation.scores})", file=sys.stderr)
    holiday = result.predictions[[*dataset.keys, WEEK, "is_holiday"]].drop_duplicates([*dataset.keys, WEEK])
    out = evaluation.leaves.merge(holiday, on=[*dataset.keys, WEEK], how="left")
    out["model"] = f"{name}+rec"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated model names")
    parser.add_argument("--stores", default="", help="store range to keep, e.g. 1-10 (default all)")
    parser.add_argument("--no-reconcile", action="store_true", help="skip the reconciled variants")
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"data not found: {args.data}")
    dataset = read_history(args.data, Settings(), "recruiting")
    if args.stores:
        lo, hi = (int(x) for x in args.stores.split("-"))
        frame = dataset.frame[dataset.frame["store"].between(lo, hi)]
        dataset = dataset.with_frame(frame.reset_index(drop=True), f"{dataset.source} stores {args.stores}")
    names = list(dict.fromkeys(["seasonal_naive", *args.models.split(",")]))
    frames, times = [], {}
    for name in names:
        t = time.perf_counter()
        result = backtest(dataset, [name], horizon=HORIZON, windows=WINDOWS, step=STEP, seed=SEED)
        times[name] = time.perf_counter() - t
        if result.failures:
            print(f"{name}: {result.failures[name]}")
        frames.append(result.predictions)
        if not args.no_reconcile:
            t = time.perf_counter()
            frames.append(reconciled(dataset, result, name))
            times[f"{name}+rec"] = times[name] + time.perf_counter() - t
        print(f"done {name} in {times[name]:.0f}s", file=sys.stderr, flush=True)
    preds = pd.concat(frames, ignore_index=True)
    naive = summarize(preds[preds["model"] == "seasonal_naive"])["wmae"]
    mstl = summarize(preds[preds["model"] == "mstl"])["wmae"] if "mstl" in names else float("nan")
    rows = []
    for name, part in preds.groupby("model", sort=False):
        s = summarize(part)
        row = {"model": name, "wmae": s["wmae"], "vs_naive_%": 100 * (s["wmae"] / naive - 1),
               "vs_mstl_%": 100 * (s["wmae"] / mstl - 1), "wmape": s["wmape"]}
        for cutoff, win in part.groupby("cutoff"):
            row[f"wmae@{pd.Timestamp(cutoff).date()}"] = summarize(win)["wmae"]
        row["time_s"] = times[str(name)]
        rows.append(row)
    table = pd.DataFrame(rows).sort_values("wmae")
    print(f"data: {dataset.source} ({dataset.n_series} series, {dataset.first_week.date()}..{dataset.last_week.date()})")
    print(f"protocol: horizon {HORIZON}, {WINDOWS} windows stepping {STEP}; WMAE holiday weeks x5")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))


if __name__ == "__main__":
    main()
