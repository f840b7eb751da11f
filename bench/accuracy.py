"""Accuracy benchmark: the issue's protocol on Walmart.csv, every model side by side in one run.

13-week horizon, 4 origins stepping 13 weeks, ending at the file's last week. Prints a table
(overall and per-window MAPE, WMAE, interval coverage, backtest time) and, with --cli,
times `storecast backtest` for all models and for the default model alone.

    .venv/bin/python bench/accuracy.py [--data ../shared/data/walmart/Walmart.csv] [--models a,b] [--cli]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from storecast.config import Settings
from storecast.data.readers import read_history
from storecast.evaluation.backtest import backtest
from storecast.models import BASELINES, DEFAULT_MODEL, MODELS

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "walmart" / "Walmart.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated model names")
    parser.add_argument("--cli", action="store_true", help="also time `storecast backtest`")
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"data not found: {args.data}")
    dataset = read_history(args.data, Settings())
    names = list(dict.fromkeys([*args.models.split(","), *BASELINES]))
    rows, times = [], {}
    frames = []
    for name in names:
        t = time.perf_counter()
        result = backtest(dataset, [name], horizon=13, windows=4, step=13, seed=42)
        times[name] = time.perf_counter() - t
        frames.append(result.predictions)
        if result.failures:
            print(f"{name}: {result.failures[name]}")
    preds = pd.concat(frames, ignore_index=True)
    from storecast.evaluation.metrics import summarize

    for name, part in preds.groupby("model", sort=False):
        row = {"model": name, **{k: v for k, v in summarize(part).items() if k != "n"}}
        for cutoff, win in part.groupby("cutoff"):
            row[f"mape@{pd.Timestamp(cutoff).date()}"] = summarize(win)["mape"]
        row["time_s"] = times[str(name)]
        rows.append(row)
    table = pd.DataFrame(rows).sort_values("mape")
    cols = ["model", "mape", *[c for c in table.columns if c.startswith("mape@")],
            "wmae", "bias", "coverage_80", "coverage_95", "time_s"]
    print(f"data: {args.data} ({dataset.n_series} series, {dataset.first_week.date()}..{dataset.last_week.date()})")
    print(table[cols].round(2).to_string(index=False))
    if args.cli:
        exe = Path(sys.executable).with_name("storecast")
        for label, model in (("all models", "all"), (f"default ({DEFAULT_MODEL})", "auto")):
            t = time.perf_counter()
            subprocess.run([str(exe), "-q", "backtest", "--data", str(args.data), "--model", model, "--json"],
                           check=True, capture_output=True)
            print(f"storecast backtest --model {model}: {time.perf_counter() - t:.1f} s ({label})")


if __name__ == "__main__":
    main()
