"""Series that start late: a short own history combined with similar series.

A series with less than a year of history (a new store, a new brand in a store, a new
department) has no comparable week of last year, so a model sees only its recent level.
Its forecast becomes the equal mean of the model's and a *peer* forecast: the series' own
recent level (the mean of its last ``k`` weeks, ``k`` = its weeks of history up to 8) times
how similar series are forecast to move from their level over those same ``k`` weeks
(their summed forecast over their summed recent level), which carries the season, the
holidays and the drivers the peers' forecasts hold.

Similar series: with several keys, the same most detailed key elsewhere (the same
department or brand in other stores), or else the same parent (the same store), when at
least three long series share it; with one key, the series with the same static
attributes (store type), or else all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from storecast.data.schema import TARGET, WEEK
from storecast.data.spec import SeriesSpec

#: A series with fewer weeks than this is short.
SHORT_WEEKS = 52
#: Weeks of a series' own recent level (at most).
RECENT_WEEKS = 8
#: Fewest long series a peer group needs.
MIN_PEERS = 3
#: The model's share of a short series' forecast; the peers' is the rest. Two forecasts of
#: similar accuracy combine best equally (measured on the Walmart departments' short series:
#: WAPE 13-26 weeks 65.8 -> 59.3, 26-52 weeks 26.1 -> 23.5, under 13 weeks 55.7 -> 55.9;
#: a share growing with the history, weeks/52, did worse: 58.7 / 25.1 / 57.2).
OWN_WEIGHT = 0.5


@dataclass
class ColdStart:
    """Per-series history length and recent levels at the origin, and the peer groups."""

    keys: list[str]
    table: pd.DataFrame  # keys, n_weeks, peer, level_1..level_RECENT_WEEKS

    @classmethod
    def fit(cls, history: pd.DataFrame, spec: SeriesSpec, origin: pd.Timestamp | None = None) -> ColdStart:
        keys = list(spec.keys)
        hist = history[history[TARGET].notna()]
        origin = pd.Timestamp(origin if origin is not None else hist[WEEK].max())
        hist = hist[hist[WEEK] <= origin]
        grouped = hist.groupby(keys, sort=True)
        table = grouped[WEEK].min().rename("first").reset_index()
        table["n_weeks"] = ((origin - table["first"]).dt.days // 7 + 1).astype(int)
        recent = hist[hist[WEEK] > origin - pd.Timedelta(weeks=RECENT_WEEKS)]
        ago = ((origin - recent[WEEK]).dt.days // 7).astype(int)  # 0 = the origin week
        wide = recent.assign(_ago=ago).pivot_table(index=keys, columns="_ago", values=TARGET, aggfunc="sum")
        wide = wide.reindex(columns=range(RECENT_WEEKS))
        sums = np.nancumsum(wide.to_numpy(dtype="float64"), axis=1)
        counts = np.cumsum(np.isfinite(wide.to_numpy(dtype="float64")), axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            levels = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        level_frame = pd.DataFrame(levels, columns=[f"level_{k}" for k in range(1, RECENT_WEEKS + 1)])
        level_frame = pd.concat([wide.index.to_frame(index=False), level_frame], axis=1)
        table = table.drop(columns="first").merge(level_frame, on=keys, how="left")
        table["peer"] = _peer_groups(table, hist, spec)
        return cls(keys, table)

    def adjust(self, forecast: pd.DataFrame) -> pd.DataFrame:
        """``forecast`` (keys, week, step, yhat) with short series blended with their peers."""
        table = self.table
        short = table[(table["n_weeks"] < SHORT_WEEKS) & (table["n_weeks"] >= 1)]
        if short.empty:
            return forecast
        keys = self.keys
        frame = forecast.merge(table[[*keys, "n_weeks", "peer"]], on=keys, how="left")
        long_rows = frame["n_weeks"] >= SHORT_WEEKS
        out = forecast.copy()
        yhat = out["yhat"].to_numpy(dtype="float64").copy()
        long_levels = table[table["n_weeks"] >= SHORT_WEEKS]
        for (peer, k), group in short.assign(k=np.minimum(short["n_weeks"], RECENT_WEEKS)).groupby(["peer", "k"]):
            level_col = f"level_{int(k)}"
            members = long_levels[(long_levels["peer"] == peer) & long_levels[level_col].notna()]
            if len(members) < MIN_PEERS:
                continue
            base = float(members[level_col].sum())
            if not np.isfinite(base) or base <= 0:
                continue
            in_peer = _rows_of(frame, members, keys)
            moves = frame[in_peer & long_rows.to_numpy()].groupby(WEEK)["yhat"].sum() / base  # peers' forecast over their level
            rows = frame[keys].merge(group[[*keys, level_col, "n_weeks"]], on=keys, how="left")
            own_level = rows[level_col].to_numpy(dtype="float64")
            target = np.isfinite(own_level)
            if not target.any():
                continue
            index = frame.loc[target, WEEK].map(moves).to_numpy(dtype="float64")
            peer_fc = own_level[target] * index
            weight = OWN_WEIGHT
            model = yhat[target]
            blended = np.where(np.isfinite(peer_fc), weight * model + (1 - weight) * peer_fc, model)
            yhat[target] = blended
        out["yhat"] = yhat
        return out


def _rows_of(frame: pd.DataFrame, members: pd.DataFrame, keys: list[str]) -> np.ndarray:
    """Which rows of ``frame`` belong to one of the ``members`` series."""
    if len(keys) == 1:
        return frame[keys[0]].isin(members[keys[0]]).to_numpy()
    wanted = pd.MultiIndex.from_frame(members[keys])
    return pd.MultiIndex.from_frame(frame[keys]).isin(wanted)


def _peer_groups(table: pd.DataFrame, history: pd.DataFrame, spec: SeriesSpec) -> np.ndarray:
    """The peer group label of each series (see the module docstring)."""
    keys = list(spec.keys)
    long = table["n_weeks"] >= SHORT_WEEKS
    if len(keys) > 1:
        candidates = [[keys[-1]], keys[:-1]]
    else:
        statics = [c for c in spec.static if c in history.columns and not pd.api.types.is_numeric_dtype(history[c])]
        if statics:
            attrs = history.groupby(keys, sort=True)[statics].first().reset_index()
            table = table.merge(attrs, on=keys, how="left")
        candidates = [statics] if statics else []
    labels = np.full(len(table), "all", dtype=object)
    decided = np.zeros(len(table), dtype=bool)
    for cols in candidates:
        key = table[cols].astype(str).agg("|".join, axis=1).to_numpy()
        counts = pd.Series(key[long.to_numpy()]).value_counts()
        enough = np.array([counts.get(k, 0) >= MIN_PEERS for k in key])
        pick = enough & ~decided
        labels[pick] = np.array([f"{'/'.join(cols)}={k}" for k in key[pick]], dtype=object)
        decided |= enough
    return labels

