"""Planned-drivers benchmark on Dominick's orange juice: the new model beside its peers, one run.

913 store x brand series, weekly (Thursday-dated). Protocol (issue 12): horizon 13, 4 rolling
windows stepping 13 weeks ending at the file's last week; each window trains only on data up
to its cutoff and is given the planned price, deal and feature of its test weeks. Every
series-week present in a test window is scored. Metrics pooled over the windows:
WAPE = sum|y - yhat| / sum|y|; WQL = mean over q in 0.1..0.9 of 2 sum pinball_q / sum|y|;
MAPE; and WAPE per window. Peers: naive, seasonal naive (lag 52), AutoETS, AutoTheta (all
statsforecast, conformal bands), median x pooled promotion lift, mlforecast + LightGBM.

    .venv/bin/python bench/dominicks.py [--data DIR] [--models drivers,mlforecast_log,...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "dominicks"
KEYS = ["store", "brand"]
DRIVERS = ["price", "deal", "feature"]
HORIZON = 13
WINDOWS = 4
LEVELS = tuple(round(0.1 * i, 1) for i in range(1, 10))
THREADS = 1  # LightGBM threads; more spin-wait on a shared 2-core machine


# ---- data and protocol -----------------------------------------------------------------------
def load(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The weekly rows (``week``/``sales`` as storecast names them) and the store attributes."""
    frame = pd.read_csv(folder / "orange_juice_weekly.csv", parse_dates=["week_start"])
    frame = frame.rename(columns={"week_start": "week", "units": "sales"})
    frame["sales"] = frame["sales"].astype("float64")
    stores = pd.read_csv(folder / "stores.csv")
    return frame.sort_values([*KEYS, "week"]).reset_index(drop=True), stores


def cutoffs(last_week: pd.Timestamp) -> list[pd.Timestamp]:
    return [last_week - pd.Timedelta(weeks=HORIZON * k) for k in range(WINDOWS, 0, -1)]


def split(frame: pd.DataFrame, cutoff: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    train = frame[frame["week"] <= cutoff]
    test = frame[(frame["week"] > cutoff) & (frame["week"] <= cutoff + pd.Timedelta(weeks=HORIZON))]
    return train, test


def qcol(q: float) -> str:
    return f"q{int(round(q * 100)):02d}"


# ---- metrics ----------------------------------------------------------------------------------
def wape(y: np.ndarray, yhat: np.ndarray) -> float:
    return float(np.abs(y - yhat).sum() / np.abs(y).sum() * 100)


def mape(y: np.ndarray, yhat: np.ndarray) -> float:
    keep = y > 0
    return float(np.mean(np.abs(y[keep] - yhat[keep]) / y[keep]) * 100)


def wql(y: np.ndarray, quantiles: dict[float, np.ndarray]) -> float:
    """Mean over levels of 2 x the summed pinball loss over the summed |y|."""
    denom = np.abs(y).sum()
    losses = []
    for q, pred in quantiles.items():
        diff = y - pred
        losses.append(2 * np.maximum(q * diff, (q - 1) * diff).sum() / denom)
    return float(np.mean(losses))


def coverage(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    return float(np.mean((y >= lo) & (y <= hi)) * 100)


# ---- peers ---------------------------------------------------------------------------------------
def regular_grid(train: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Every series on every week from its first to the cutoff; gaps interpolated (sales) or
    carried forward (drivers), so lag-based peers see a regular weekly series."""
    last = train["week"].max()
    parts = []
    for key, part in train.groupby(KEYS, sort=False):
        weeks = pd.date_range(part["week"].min(), last, freq="7D")
        full = part.set_index("week")[columns].reindex(weeks)
        full["sales"] = full["sales"].interpolate(limit_direction="both")
        full = full.ffill().bfill()
        full[KEYS] = list(key)
        parts.append(full.rename_axis("week").reset_index())
    return pd.concat(parts, ignore_index=True)


def _uid(frame: pd.DataFrame) -> pd.Series:
    return frame["store"].astype(str) + "|" + frame["brand"]


def _from_uid(frame: pd.DataFrame) -> pd.DataFrame:
    parts = frame["unique_id"].str.split("|", n=1, expand=True)
    frame = frame.drop(columns="unique_id")
    frame["store"] = parts[0].astype("int64")
    frame["brand"] = parts[1]
    return frame


def _bands_to_quantiles(frame: pd.DataFrame, model: str, point: str | None = None) -> pd.DataFrame:
    """statsforecast/mlforecast ``model-lo-80`` ... columns as q10..q90 (median = point)."""
    out = frame[["store", "brand", "week"]].copy()
    out["yhat"] = frame[point or model].to_numpy()
    for q in LEVELS:
        if q == 0.5:
            out[qcol(q)] = out["yhat"]
            continue
        level = int(round(abs(1 - 2 * q) * 100))
        side = "lo" if q < 0.5 else "hi"
        out[qcol(q)] = frame[f"{model}-{side}-{level}"].to_numpy()
    return out


def statsforecast_peer(kind: str) -> Callable[[pd.DataFrame, pd.DataFrame, pd.DataFrame], pd.DataFrame]:
    def run(train: pd.DataFrame, test: pd.DataFrame, stores: pd.DataFrame) -> pd.DataFrame:
        from statsforecast import StatsForecast
        from statsforecast.models import AutoETS, AutoTheta, Naive, SeasonalNaive
        from statsforecast.utils import ConformalIntervals

        grid = regular_grid(train, ["sales"])
        df = pd.DataFrame({"unique_id": _uid(grid), "ds": grid["week"], "y": grid["sales"]})
        conformal = ConformalIntervals(h=HORIZON, n_windows=2)
        # The naive peers keep their own (normal) bands, as the reference study did.
        model = {
            "naive": Naive(),
            "seasonal_naive": SeasonalNaive(season_length=52),
            "autoets": AutoETS(season_length=52, prediction_intervals=conformal),
            "autotheta": AutoTheta(season_length=52, prediction_intervals=conformal),
        }[kind]
        if kind == "seasonal_naive":  # needs a full year in every series
            counts = df.groupby("unique_id")["y"].transform("size")
            df = df[counts >= 52 + HORIZON]
        if kind == "seasonal_naive":  # a series without a full year gets no forecast (scored as 0)
            df = df[df.groupby("unique_id")["y"].transform("size") > 52]
        sf = StatsForecast(models=[model], freq="7D", n_jobs=1)
        levels = sorted({int(round(abs(1 - 2 * q) * 100)) for q in LEVELS if q != 0.5})
        fc = sf.forecast(df=df, h=HORIZON, level=levels)
        if "unique_id" not in fc.columns:
            fc = fc.reset_index()
        fc = _from_uid(fc.rename(columns={"ds": "week"}))
        name = type(model).__name__
        return _bands_to_quantiles(fc, name)

    return run


def promo_lift_peer(train: pd.DataFrame, test: pd.DataFrame, stores: pd.DataFrame) -> pd.DataFrame:
    """Median of the series' recent regular weeks x the brand's pooled lift for the planned
    promotion state (deal, featured); quantiles from the pooled ratio distribution."""
    tr = train.copy()
    tr["state"] = tr["deal"].astype(int) * 2 + (tr["feature"] > 0.1).astype(int)
    last = tr["week"].max()
    recent = tr[(tr["week"] > last - pd.Timedelta(weeks=26))]
    regular = recent[recent["state"] == 0].groupby(KEYS)["sales"].median().rename("base")
    anyweek = recent.groupby(KEYS)["sales"].median().rename("base_all")
    base = pd.concat([regular, anyweek], axis=1)
    base["base"] = base["base"].fillna(base["base_all"])
    # Each week's ratio to the series' regular median over the whole training period.
    reg_all = tr[tr["state"] == 0].groupby(KEYS)["sales"].median().rename("reg")
    tr = tr.join(reg_all, on=KEYS)
    tr["ratio"] = tr["sales"] / tr["reg"]
    ratios = tr.dropna(subset=["ratio"]).groupby(["brand", "state"])["ratio"]
    table = ratios.quantile(list(LEVELS)).unstack()
    table.columns = [qcol(q) for q in table.columns]
    te = test[[*KEYS, "week", "deal", "feature"]].copy()
    te["state"] = te["deal"].astype(int) * 2 + (te["feature"] > 0.1).astype(int)
    te = te.join(base["base"], on=KEYS).join(table, on=["brand", "state"])
    for q in LEVELS:
        te[qcol(q)] = te["base"] * te[qcol(q)]
    te["yhat"] = te[qcol(0.5)]
    return te[[*KEYS, "week", "yhat", *[qcol(q) for q in LEVELS]]]


def _with_competition(frame: pd.DataFrame, brands: list[str]) -> pd.DataFrame:
    """Each row gets every brand's price and deal in the same store and week."""
    wide = frame.pivot_table(index=["store", "week"], columns="brand", values=["price", "deal"], aggfunc="first")
    wide = wide.reindex(columns=pd.MultiIndex.from_product([["price", "deal"], brands]))
    wide.columns = [f"{v}_b{brands.index(b)}" for v, b in wide.columns]
    return frame.join(wide, on=["store", "week"])


def mlforecast_peer(log_target: bool) -> Callable[[pd.DataFrame, pd.DataFrame, pd.DataFrame], pd.DataFrame]:
    def run(train: pd.DataFrame, test: pd.DataFrame, stores: pd.DataFrame) -> pd.DataFrame:
        import lightgbm as lgb
        from mlforecast import MLForecast
        from mlforecast.lag_transforms import RollingMean
        from mlforecast.target_transforms import GlobalSklearnTransformer
        from mlforecast.utils import PredictionIntervals
        from sklearn.preprocessing import FunctionTransformer

        brands = sorted(train["brand"].unique())
        grid = regular_grid(train, ["sales", *DRIVERS])
        grid = _with_competition(grid, brands)
        exog = [c for c in grid.columns if c not in (*KEYS, "week", "sales")]
        df = grid.assign(unique_id=_uid(grid)).rename(columns={"week": "ds", "sales": "y"})
        df = df[["unique_id", "ds", "y", *exog]]
        df[exog] = df[exog].fillna(df[exog].median())
        # Future drivers for every series and test week (a missing week carries the last plan).
        fut_weeks = pd.date_range(train["week"].max() + pd.Timedelta(weeks=1), periods=HORIZON, freq="7D")
        series = grid[KEYS].drop_duplicates()
        fut = series.merge(pd.DataFrame({"week": fut_weeks}), how="cross")
        fut = fut.merge(test[[*KEYS, "week", *DRIVERS]], on=[*KEYS, "week"], how="left")
        last = grid.sort_values("week").groupby(KEYS).last()[DRIVERS]
        for c in DRIVERS:
            fut[c] = fut[c].fillna(fut.join(last[c].rename("_l"), on=KEYS)["_l"])
        fut = _with_competition(fut, brands)
        fut[exog] = fut[exog].fillna(df[exog].median())
        x_df = fut.assign(unique_id=_uid(fut)).rename(columns={"week": "ds"})[["unique_id", "ds", *exog]]
        tfms = [GlobalSklearnTransformer(FunctionTransformer(np.log1p, np.expm1))] if log_target else []
        model = lgb.LGBMRegressor(n_estimators=300, learning_rate=0.05, num_leaves=63, num_threads=THREADS,
                                  verbosity=-1, random_state=0)
        mlf = MLForecast(models={"lgb": model}, freq="7D", lags=[1, 2, 3, 4, 13, 52],
                         lag_transforms={1: [RollingMean(4), RollingMean(13)]}, target_transforms=tfms)
        levels = sorted({int(round(abs(1 - 2 * q) * 100)) for q in LEVELS if q != 0.5})
        # dropna=False: lag 52 is missing in the first year (LightGBM takes NaN), which is all
        # the first window's conformal refits would otherwise keep.
        mlf.fit(df, static_features=[], dropna=False, prediction_intervals=PredictionIntervals(n_windows=2, h=HORIZON))
        fc = mlf.predict(HORIZON, X_df=x_df, level=levels)
        fc = _from_uid(fc.rename(columns={"ds": "week"}))
        return _bands_to_quantiles(fc, "lgb")

    return run


def drivers_model(train: pd.DataFrame, test: pd.DataFrame, stores: pd.DataFrame) -> pd.DataFrame:
    from storecast.models.drivers import DriversModel

    history = train.merge(stores, on="store", how="left")
    future = test.drop(columns="sales").merge(stores, on="store", how="left")
    model = DriversModel(seed=0, num_threads=THREADS).fit(history, keys=KEYS)
    point = model.predict(HORIZON, future)
    return point.merge(model.predict_quantiles(HORIZON, future, LEVELS), on=[*KEYS, "week", "step"])


PEERS: dict[str, Callable[[pd.DataFrame, pd.DataFrame, pd.DataFrame], pd.DataFrame]] = {
    "naive": statsforecast_peer("naive"),
    "seasonal_naive": statsforecast_peer("seasonal_naive"),
    "autoets": statsforecast_peer("autoets"),
    "autotheta": statsforecast_peer("autotheta"),
    "median_x_lift": promo_lift_peer,
    "mlforecast_raw": mlforecast_peer(log_target=False),
    "mlforecast_log": mlforecast_peer(log_target=True),
    "drivers": drivers_model,
}


# ---- run ------------------------------------------------------------------------------------------
def score(frame: pd.DataFrame) -> dict[str, float]:
    y = frame["y"].to_numpy()
    qs = {q: frame[qcol(q)].to_numpy() for q in LEVELS}
    return {
        "wape": wape(y, frame["yhat"].to_numpy()),
        "wql": wql(y, qs),
        "mape": mape(y, frame["yhat"].to_numpy()),
        "cov80": coverage(y, qs[0.1], qs[0.9]),
    }


def run_model(name: str, frame: pd.DataFrame, stores: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    fn = PEERS[name]
    parts = []
    start = time.perf_counter()
    for cutoff in cutoffs(frame["week"].max()):
        train, test = split(frame, cutoff)
        fc = fn(train, test, stores)
        scored = test[[*KEYS, "week", "sales"]].rename(columns={"sales": "y"}).merge(fc, on=[*KEYS, "week"], how="left")
        missing = scored["yhat"].isna()
        if missing.any():  # a peer without a forecast for a series scores as zero
            scored.loc[missing, ["yhat", *[qcol(q) for q in LEVELS]]] = 0.0
        qs = np.sort(scored[[qcol(q) for q in LEVELS]].to_numpy(), axis=1)  # monotone for every peer
        scored[[qcol(q) for q in LEVELS]] = np.maximum(qs, 0.0)
        scored["cutoff"] = cutoff
        parts.append(scored)
    return pd.concat(parts, ignore_index=True), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--models", default=",".join(PEERS))
    args = parser.parse_args()
    if not (args.data / "orange_juice_weekly.csv").exists():
        sys.exit(f"data not found: {args.data}")
    os.environ.setdefault("NIXTLA_ID_AS_COL", "1")
    warnings.filterwarnings("ignore")
    frame, stores = load(args.data)
    rows = []
    for name in args.models.split(","):
        scored, seconds = run_model(name, frame, stores)
        row: dict[str, object] = {"model": name, **score(scored)}
        for cutoff, part in scored.groupby("cutoff"):
            row[f"wape@{pd.Timestamp(cutoff).date()}"] = score(part)["wape"]
        for cutoff, part in scored.groupby("cutoff"):
            row[f"wql@{pd.Timestamp(cutoff).date()}"] = score(part)["wql"]
        row["time_s"] = seconds
        rows.append(row)
        print(f"{name}: WAPE {row['wape']:.1f}%  WQL {row['wql']:.3f}  ({seconds:.0f} s)", file=sys.stderr)
    table = pd.DataFrame(rows)
    print(f"data: {args.data} ({frame.groupby(KEYS).ngroups} series, {frame['week'].min().date()}.."
          f"{frame['week'].max().date()}); horizon {HORIZON}, {WINDOWS} windows; cov80 = share in [q10, q90]")
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.round({"wape": 1, "wql": 3, "mape": 1, "cov80": 1, "time_s": 1}).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
