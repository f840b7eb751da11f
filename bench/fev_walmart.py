"""The public fev-bench "walmart" task on walmart-recruiting, storecast beside simple peers.

Protocol (fev-bench ``walmart``): one forecast origin, horizon 39 weeks, every store x
department series with at least 78 observed weeks up to the origin, quantiles 0.1..0.9;
WAPE = sum|y - yhat| / sum|y| (the point forecast; storecast's improved
q0.5 equals it, peers' point is their mean) and WQL = mean over the 9 levels of 2 * sum(pinball) /
sum|y|, over all series-weeks with an actual. Also: coverage of the 80% and 95% central
intervals, the 80% interval score (divided by the mean |y|) and MASE (lag-52 in-sample
scale). The shared file ends 2012-04-27, so the default origin is 2011-07-29 (39 weeks
before it); the published figures use the full competition history (to 2012-10-26) with
``--cutoff 2012-01-27``.

    .venv/bin/python bench/fev_walmart.py [--data DIR] [--cutoff 2011-07-29] [--horizon 39]
        [--min-history 78] [--peers naive,seasonal_naive,autoets,lightgbm] [--calibration-windows 3]

Rows:
- ``storecast <model> (delivered)``: the department default as ``storecast run`` delivers
  it (``forecasting.pipeline``): one backtest window at the cutoff, departments reconciled
  with the store-level default's store totals by the method the backtest chooses,
  quantiles calibrated (per-step relative conformal or scaled by level, series noise and
  step, whichever the calibration scores better) on ``--calibration-windows`` earlier
  origins, 13 weeks apart, on their weeks up to the cutoff. Nothing is fitted on the
  test weeks.
- peers fitted on the evaluated series only: statsforecast Naive, SeasonalNaive (52) and
  AutoETS (season 52) with their own intervals; a global LightGBM (mlforecast, lags
  1-4/13/52, recursive; point forecast only).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from storecast.config import Settings
from storecast.data.readers import read_history
from storecast.data.schema import DEPT, STORE, TARGET, WEEK, Dataset
from storecast.evaluation.backtest import backtest
from storecast.evaluation.metrics import (
    coverage,
    interval_score,
    mase,
    seasonal_naive_scale,
    wape,
    wql,
)
from storecast.forecasting.pipeline import evaluate_pipeline
from storecast.models import resolve_model
from storecast.models.quantiles import DEFAULT_LEVELS, quantile_column

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "walmart-recruiting"
KEYS = [STORE, DEPT]
SEED = 42
LEVELS = list(DEFAULT_LEVELS)
QCOLS = [quantile_column(lv) for lv in LEVELS]
INNER_STEP = 13
PEERS = "naive,seasonal_naive,autoets,lightgbm"


# ---- storecast ---------------------------------------------------------------------------------
def run_storecast(dataset: Dataset, cutoff: pd.Timestamp, horizon: int, windows: int,
                  say: Callable[[str], None]) -> dict[str, pd.DataFrame]:
    """What storecast delivers at ``cutoff``: the default department model backtested in one
    window of ``horizon`` weeks, with ``windows`` earlier origins (13 weeks apart) used only to
    calibrate quantiles; leaves reconciled with the store totals and calibrated as the
    pipeline chooses (``forecasting.pipeline.evaluate_pipeline``)."""
    end = cutoff + pd.Timedelta(weeks=horizon)
    sub = dataset.with_frame(dataset.frame[dataset.frame[WEEK] <= end].reset_index(drop=True))
    name = resolve_model("auto", sub.level)
    say(f"storecast {name}: backtest at {cutoff.date()} (+{horizon}) with {windows} calibration origins")
    result = backtest(sub, [name], horizon=horizon, windows=1, step=INNER_STEP, seed=SEED,
                      calibration_windows=windows, quantiles=LEVELS)
    evaluation = evaluate_pipeline(sub, result, name, seed=SEED, quantiles=LEVELS)
    say(f"reconciliation {evaluation.method}, quantiles {evaluation.quantile_methods}")
    # the evaluation carries the actuals as ``y``; the scorer joins its own
    return {f"storecast {name} (delivered)": evaluation.leaves.drop(columns=["y"], errors="ignore")}


# ---- peers ---------------------------------------------------------------------------------------
def _panel(train: pd.DataFrame) -> pd.DataFrame:
    """statsforecast's long format, missing weeks inside a series filled with 0 (no sales)."""
    wide = train.pivot_table(index=KEYS, columns=WEEK, values=TARGET, aggfunc="first")
    first = wide.notna().to_numpy().argmax(axis=1)
    values = wide.fillna(0.0).to_numpy()
    rows = []
    for i, (key, start) in enumerate(zip(wide.index, first, strict=True)):
        uid = f"{key[0]}_{key[1]}"
        rows.append(pd.DataFrame({"unique_id": uid, "ds": wide.columns[start:], "y": values[i, start:]}))
    return pd.concat(rows, ignore_index=True)


def _keys_back(frame: pd.DataFrame) -> pd.DataFrame:
    parts = frame["unique_id"].str.split("_", expand=True).astype(int)
    return frame.assign(**{STORE: parts[0], DEPT: parts[1]}).rename(columns={"ds": WEEK})


def run_statsforecast(train: pd.DataFrame, horizon: int, which: list[str]) -> dict[str, pd.DataFrame]:
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, Naive, SeasonalNaive

    catalogue = {"naive": Naive(), "seasonal_naive": SeasonalNaive(season_length=52), "autoets": AutoETS(season_length=52)}
    models = [catalogue[w] for w in which]
    sf = StatsForecast(models=models, freq="7D", n_jobs=1)
    fc = _keys_back(sf.forecast(h=horizon, df=_panel(train), level=[20, 40, 60, 80, 95]))
    out = {}
    for name, model in zip(which, models, strict=True):
        alias = repr(model)
        part = fc[[*KEYS, WEEK]].copy()
        part["yhat"] = fc[alias]
        for col, level in zip(QCOLS, LEVELS, strict=True):
            width = round(abs(1 - 2 * level) * 100)
            side = "lo" if level < 0.5 else "hi"
            part[col] = fc[alias] if width == 0 else fc[f"{alias}-{side}-{width}"]
        part["lo_80"], part["hi_80"] = fc[f"{alias}-lo-80"], fc[f"{alias}-hi-80"]
        part["lo_95"], part["hi_95"] = fc[f"{alias}-lo-95"], fc[f"{alias}-hi-95"]
        out[{"naive": "naive", "seasonal_naive": "seasonal naive (52)", "autoets": "AutoETS (statsforecast)"}[name]] = part
    return out


def run_lightgbm(train: pd.DataFrame, horizon: int) -> pd.DataFrame:
    import lightgbm as lgb
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean

    model = lgb.LGBMRegressor(objective="l1", n_estimators=300, learning_rate=0.05, num_leaves=63,
                              num_threads=1, random_state=SEED, verbosity=-1)
    mlf = MLForecast(models={"lgbm": model}, freq="7D", lags=[1, 2, 3, 4, 13, 52],
                     lag_transforms={1: [RollingMean(window_size=4), RollingMean(window_size=13)]},
                     date_features=["week", "month"])
    mlf.fit(_panel(train))
    fc = _keys_back(mlf.predict(horizon))
    return fc[[*KEYS, WEEK]].assign(yhat=fc["lgbm"])


# ---- scoring -----------------------------------------------------------------------------------------
def score(pred: pd.DataFrame, actual: pd.DataFrame, scale: pd.DataFrame) -> dict[str, float]:
    j = actual.merge(pred, on=[*KEYS, WEEK], how="left").merge(scale, on=KEYS, how="left")
    point = j["yhat"].fillna(0.0)  # the point forecast a model delivers (storecast: q0.5 = yhat)
    row = {"WAPE %": wape(j["y"], point), "MASE": mase(j["y"], point, j["scale"])}
    if set(QCOLS) <= set(j.columns):
        q = j[QCOLS].to_numpy(dtype="float64")
        q = np.where(np.isfinite(q), q, point.to_numpy()[:, None])
        row["WQL"] = wql(j["y"], q, LEVELS)
        row["cov80 %"] = coverage(j["y"], j["lo_80"], j["hi_80"])
        row["cov95 %"] = coverage(j["y"], j["lo_95"], j["hi_95"])
        row["IS80 / mean|y|"] = interval_score(j["y"], j["lo_80"], j["hi_80"], 80) / float(np.abs(j["y"]).mean())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cutoff", default="2011-07-29", help="forecast origin (last training week, a Friday)")
    parser.add_argument("--horizon", type=int, default=39)
    parser.add_argument("--min-history", type=int, default=78, help="observed weeks up to the cutoff a series needs")
    parser.add_argument("--peers", default=PEERS, help=f"comma-separated, from {PEERS} (empty for none)")
    parser.add_argument("--calibration-windows", type=int, default=3, help="inner windows for storecast's quantiles")
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"data not found: {args.data}")
    dataset = read_history(args.data, Settings(), "recruiting")
    frame = dataset.frame
    cutoff = pd.Timestamp(args.cutoff)
    end = cutoff + pd.Timedelta(weeks=args.horizon)
    if end > dataset.last_week:
        sys.exit(f"cutoff {cutoff.date()} + {args.horizon} weeks = {end.date()} is past the data's last week {dataset.last_week.date()}")
    frame = frame[frame[WEEK] <= end]
    train = frame[frame[WEEK] <= cutoff]
    seen = train.dropna(subset=[TARGET]).groupby(KEYS)[WEEK].nunique()
    eligible = seen[seen >= args.min_history].index
    in_eval = pd.MultiIndex.from_frame(frame[KEYS]).isin(eligible)
    actual = frame[in_eval & (frame[WEEK] > cutoff)][[*KEYS, WEEK, TARGET]].rename(columns={TARGET: "y"}).dropna(subset=["y"])
    scale = seasonal_naive_scale(train[pd.MultiIndex.from_frame(train[KEYS]).isin(eligible)], KEYS)

    def say(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    preds: dict[str, pd.DataFrame] = {}
    times: dict[str, float] = {}
    t = time.perf_counter()
    preds.update(run_storecast(dataset, cutoff, args.horizon, args.calibration_windows, say))
    for name in preds:
        times[name] = time.perf_counter() - t
    peers = [p for p in args.peers.split(",") if p]
    peer_train = train[pd.MultiIndex.from_frame(train[KEYS]).isin(eligible)]
    stats = [p for p in peers if p in ("naive", "seasonal_naive", "autoets")]
    if stats:
        t = time.perf_counter()
        say(f"statsforecast {', '.join(stats)}")
        got = run_statsforecast(peer_train, args.horizon, stats)
        preds.update(got)
        times.update({name: (time.perf_counter() - t) / len(got) for name in got})
    if "lightgbm" in peers:
        t = time.perf_counter()
        say("lightgbm (mlforecast)")
        preds["LightGBM (mlforecast, point)"] = run_lightgbm(peer_train, args.horizon)
        times["LightGBM (mlforecast, point)"] = time.perf_counter() - t

    rows = [{"model": name, **score(pred, actual, scale), "time s": times[name]} for name, pred in preds.items()]
    table = pd.DataFrame(rows).sort_values("WAPE %")
    n_series = actual.groupby(KEYS).ngroups
    print(f"data: {dataset.source}; cutoff {cutoff.date()}, horizon {args.horizon} (to {end.date()}); "
          f"{n_series} series with >= {args.min_history} weeks, {len(actual)} series-weeks")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}" if abs(v) < 1 else f"{v:.2f}"))


if __name__ == "__main__":
    main()
