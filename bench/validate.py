"""Read + validate speed and peak memory on synthetic department data.

    .venv/bin/python bench/validate.py [--stores 1000] [--depts 100] [--weeks 156]

Writes a competition-format folder (train.csv + features.csv + stores.csv, generated with
numpy and written by pyarrow) and the same history as one Parquet file into a temp dir,
then times ``storecast.data.readers.load`` (read + quality gate) on each in a fresh
subprocess and reads that process's peak RSS (``ru_maxrss``). Target: 100,000 series x
156 weeks (15.6 M rows) in under 30 s and 4 GB on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

FIRST_FRIDAY = np.datetime64("2010-02-05")


def _weeks(n: int) -> np.ndarray:
    return FIRST_FRIDAY + 7 * np.arange(n)


def write_inputs(folder: Path, stores: int, depts: int, weeks: int, seed: int = 0) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    n_series = stores * depts
    week_days = _weeks(weeks)
    iso = np.datetime_as_string(week_days, unit="D")
    holiday_week = np.isin(np.arange(weeks) % 52, [1, 30, 42, 46])
    level = rng.lognormal(9.5, 1.0, n_series)
    season = 1 + 0.2 * np.sin(2 * np.pi * np.arange(weeks) / 52)
    sales = np.round(level[:, None] * season[None, :] * rng.lognormal(0, 0.1, (n_series, weeks)), 2).ravel()
    train = pa.table({
        "Store": np.repeat(np.arange(1, stores + 1), depts * weeks),
        "Dept": np.tile(np.repeat(np.arange(1, depts + 1), weeks), stores),
        "Date": pa.DictionaryArray.from_arrays(np.tile(np.arange(weeks, dtype=np.int32), n_series), iso).cast(pa.string()),
        "Weekly_Sales": sales,
        "IsHoliday": np.tile(holiday_week, n_series),
    })
    pacsv.write_csv(train, folder / "train.csv")
    pq.write_table(train.set_column(2, "Date", pa.array(np.tile(week_days, n_series).astype("datetime64[ns]"))),
                   folder.parent / "history.parquet")
    del train
    n_feat = stores * weeks
    features = pa.table({
        "Store": np.repeat(np.arange(1, stores + 1), weeks),
        "Date": np.tile(iso, stores),
        "Temperature": np.round(rng.normal(60, 15, n_feat), 2),
        "Fuel_Price": np.round(rng.normal(3, 0.3, n_feat), 3),
        **{f"MarkDown{i}": np.where(rng.random(n_feat) < 0.6, np.nan, np.round(rng.lognormal(8, 1, n_feat), 2)) for i in range(1, 6)},
        "CPI": np.round(rng.normal(180, 30, n_feat), 4),
        "Unemployment": np.round(rng.normal(7, 1, n_feat), 3),
        "IsHoliday": np.tile(holiday_week, stores),
    })
    pacsv.write_csv(features, folder / "features.csv")
    stores_csv = "Store,Type,Size\r" + "".join(f"{s},{'ABC'[s % 3]},{100000 + s}\r" for s in range(1, stores + 1))
    (folder / "stores.csv").write_text(stores_csv)
    return folder, folder.parent / "history.parquet"


def child(path: str, fmt: str) -> None:
    """Run in a fresh process: time load() and report peak RSS as JSON on stdout."""
    from storecast.config import ColumnMapping, Settings
    from storecast.data.readers import load

    settings = Settings(columns=ColumnMapping(dept="Dept", holiday="IsHoliday"))
    t0 = time.perf_counter()
    dataset, report = load(path, settings, fmt)
    seconds = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "seconds": seconds, "peak_gb": peak_kib / 1024**2,
        "rows": 0 if dataset is None else len(dataset.frame),
        "series": report.n_series, "errors": len(report.errors), "warnings": len(report.warnings),
        "columns": 0 if dataset is None else dataset.frame.shape[1],
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=1000)
    parser.add_argument("--depts", type=int, default=100)
    parser.add_argument("--weeks", type=int, default=156)
    parser.add_argument("--child", nargs=2, metavar=("PATH", "FORMAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory(prefix="storecast-bench-") as tmp:
        t0 = time.perf_counter()
        folder, parquet = write_inputs(Path(tmp) / "comp", args.stores, args.depts, args.weeks)
        gen = time.perf_counter() - t0
        size = (folder / "train.csv").stat().st_size / 1024**2
        print(f"{args.stores * args.depts:,} series x {args.weeks} weeks = {args.stores * args.depts * args.weeks:,} rows; "
              f"train.csv {size:,.0f} MiB, written in {gen:.1f} s")
        print("| input | rows | series | columns | errors | warnings | read + validate (s) | peak RSS (GB) |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for label, path, fmt in (("CSV folder (train+features+stores)", folder, "recruiting"),
                                 ("Parquet (generic mapping)", parquet, "generic")):
            out = subprocess.run([sys.executable, __file__, "--child", str(path), fmt],
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {label} | {r['rows']:,} | {r['series']:,} | {r['columns']} | {r['errors']} | {r['warnings']} "
                  f"| {r['seconds']:.1f} | {r['peak_gb']:.2f} |")


if __name__ == "__main__":
    main()
