"""Warehouse bulk load: one run of 15.6 M forecast rows into PostgreSQL and DuckDB.

100,000 series x (13 forecast weeks + 143 backtest weeks) = 15.6 M rows, written with
``Warehouse.write_run`` (one transaction: replace the run's rows, bulk load, fill actuals,
record the run). Target: PostgreSQL under 60 s. PostgreSQL runs in a scratch schema that
is dropped afterwards; DuckDB in a temporary file.

    .venv/bin/python bench/warehouse.py [--series 100000] [--backends postgres,duckdb] [--rewrite]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from storecast.delivery.warehouse import RunRecord, Warehouse
from storecast.delivery.warehouse.scratch import scratch_schema

PG_URL = os.environ.get("STORECAST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
HORIZON, BACKTEST_WEEKS = 13, 143
CUTOFF = pd.Timestamp("2012-10-26")


def frames(n_series: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A forecast (n x 13) and a backtest (n x 143) shaped like a run's."""
    rng = np.random.default_rng(seed)
    level = rng.lognormal(10, 1, n_series)

    def block(weeks: int, first: pd.Timestamp, steps: np.ndarray) -> pd.DataFrame:
        n = n_series * weeks
        yhat = np.repeat(level, weeks) * rng.normal(1, 0.05, n)
        out = pd.DataFrame({
            "store": np.repeat(np.arange(1, n_series + 1, dtype="int64"), weeks),
            "week": np.tile(pd.date_range(first, periods=weeks, freq="7D").to_numpy(), n_series),
            "step": np.tile(steps, n_series),
            "yhat": yhat,
        })
        for level_, width in (("80", 0.1), ("95", 0.2)):
            out[f"lo_{level_}"] = yhat * (1 - width)
            out[f"hi_{level_}"] = yhat * (1 + width)
        return out

    forecast = block(HORIZON, CUTOFF + pd.Timedelta(weeks=1), np.arange(1, HORIZON + 1))
    first_bt = CUTOFF - pd.Timedelta(weeks=BACKTEST_WEEKS - 1)
    backtest = block(BACKTEST_WEEKS, first_bt, (np.arange(BACKTEST_WEEKS) % HORIZON) + 1)
    backtest["cutoff"] = backtest["week"] - pd.to_timedelta(backtest["step"] * 7, unit="D")
    backtest["y"] = backtest["yhat"] * rng.normal(1, 0.05, len(backtest))
    return forecast, backtest


def measure(url: str, forecast: pd.DataFrame, backtest: pd.DataFrame, rewrite: bool) -> dict[str, float]:
    record = RunRecord(run_id="bench", model="bench", cutoff=CUTOFF, horizon=HORIZON, metrics={"mape": 1.0})
    out: dict[str, float] = {}
    with Warehouse(url) as wh:
        t = time.perf_counter()
        wh.write_run(record, forecast, backtest=backtest)
        out["write_s"] = time.perf_counter() - t
        if rewrite:
            t = time.perf_counter()
            wh.write_run(record, forecast, backtest=backtest)
            out["rewrite_s"] = time.perf_counter() - t
        t = time.perf_counter()
        one = wh.read_forecasts("bench", store=4242, kind=None)
        out["read_one_store_s"] = time.perf_counter() - t
        assert len(one) == HORIZON + BACKTEST_WEEKS
        out["rows"] = float(wh.read_run("bench")["n_rows"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--backends", default="postgres,duckdb")
    parser.add_argument("--rewrite", action="store_true", help="also time replacing the run (idempotent rewrite)")
    args = parser.parse_args()

    t = time.perf_counter()
    forecast, backtest = frames(args.series)
    print(f"generated {len(forecast) + len(backtest):,} rows in {time.perf_counter() - t:.1f} s")
    results = []
    for backend in args.backends.split(","):
        if backend == "postgres":
            with scratch_schema(PG_URL, prefix="storecast_bench") as url:
                results.append(("postgres (binary COPY)", measure(url, forecast, backtest, args.rewrite)))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                url = f"duckdb:///{Path(tmp) / 'bench.duckdb'}"
                results.append(("duckdb (Arrow INSERT SELECT)", measure(url, forecast, backtest, args.rewrite)))
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print()
    print("| backend | rows | write_run s | rows/s | rewrite s | read one store s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results:
        rewrite = f"{r['rewrite_s']:.1f}" if "rewrite_s" in r else "-"
        print(f"| {name} | {int(r['rows']):,} | {r['write_s']:.1f} | {r['rows'] / r['write_s']:,.0f} | "
              f"{rewrite} | {r['read_one_store_s']:.3f} |")
    print(f"\npeak RSS of this process: {peak_gb:.1f} GB; {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
