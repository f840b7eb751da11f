"""Delivery at department scale: CSV writer speed, dashboard size, build and browser load times.

A seeded predictions table shaped like the department data (45 stores x ~73 departments,
143 history weeks, 4 x 13 backtest weeks, 13 forecast weeks; no model run) goes through
``render_predictions_csv`` and ``build_dashboard_html``; when chromium is installed the
page is opened headless and timed until its charts are drawn and after a department switch.

    .venv/bin/python bench/delivery.py [--stores 45] [--depts 73]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from storecast.delivery.dashboard import build_dashboard_html
from storecast.delivery.predictions import render_predictions_csv

HISTORY, BACKTEST, HORIZON = 143, 52, 13


def dept_table(stores: int, depts: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    weeks = pd.date_range("2010-02-05", periods=HISTORY + HORIZON, freq="7D")
    n = stores * depts
    level = np.exp(rng.normal(9, 1.2, n))
    season = 1 + 0.1 * np.sin(np.arange(len(weeks)) * 2 * np.pi / 52)
    actual = level[:, None] * season[None, :] * rng.normal(1, 0.08, (n, len(weeks)))
    predicted = actual * rng.normal(1, 0.07, actual.shape)
    predicted[:, : HISTORY - BACKTEST] = np.nan
    actual[:, HISTORY:] = np.nan
    frame = pd.DataFrame({
        "store": np.repeat(np.arange(1, stores + 1), depts * len(weeks)),
        "dept": np.tile(np.repeat(np.arange(1, depts + 1), len(weeks)), stores),
        "week": np.tile(weeks, n),
        "actual": actual.ravel(),
        "predicted": predicted.ravel(),
    })
    step = np.tile(np.r_[np.zeros(HISTORY - BACKTEST), np.tile(np.arange(1, HORIZON + 1), BACKTEST // HORIZON + 1)], n)
    frame["step"] = np.where(step > 0, step, np.nan)
    cut_idx = np.r_[np.full(HISTORY - BACKTEST, -1), np.repeat(HISTORY - BACKTEST - 1 + HORIZON * np.arange(BACKTEST // HORIZON), HORIZON),
                    np.full(HORIZON, -1)]
    frame["cutoff"] = np.tile([weeks[i] if i >= 0 else pd.NaT for i in cut_idx], n)
    for level_, z in ((80, 1.28), (95, 1.96)):
        frame[f"lo_{level_}"] = frame["predicted"] * (1 - 0.07 * z)
        frame[f"hi_{level_}"] = frame["predicted"] * (1 + 0.07 * z)
    return frame


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stores", type=int, default=45)
    parser.add_argument("--depts", type=int, default=73)
    args = parser.parse_args()
    table = dept_table(args.stores, args.depts)
    rows = [("series", f"{args.stores * args.depts:,}"), ("rows", f"{len(table):,}")]

    csv, csv_s = timed(render_predictions_csv, table, ["store", "dept"])
    rows += [("CSV render (s)", f"{csv_s:.2f}"), ("CSV size (MB)", f"{len(csv.encode()) / 1e6:.1f}")]
    page, html_s = timed(build_dashboard_html, table)
    rows += [("dashboard build (s)", f"{html_s:.2f}"), ("dashboard size (MB)", f"{len(page.encode()) / 1e6:.1f}")]

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "delivery"))
    from test_dashboard_browser import CHROMIUM, TITLE_JS, Browser, select

    if Path(CHROMIUM).is_file():
        with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
            path = Path(tmp) / "dashboard.html"
            path.write_text(page, encoding="utf-8")
            browser = Browser(Path(tmp) / "profile")
            try:
                _, load_s = timed(browser.open, path)
                _, switch_s = timed(select, browser, "sc-store", "7")
                _, dept_s = timed(select, browser, "sc-dept", "5")
                title = browser.js(TITLE_JS)
                errors = browser.console_errors()
            finally:
                browser.close()
        rows += [("browser load to drawn (s)", f"{load_s:.2f}"), ("store switch (s)", f"{switch_s:.2f}"),
                 ("dept switch (s)", f"{dept_s:.2f}"), ("title after switch", title), ("console errors", str(len(errors)))]
    else:
        rows.append(("browser", f"skipped: no chromium at {CHROMIUM}"))

    width = max(len(k) for k, _ in rows)
    print(f"{'measure':<{width}}  value")
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
