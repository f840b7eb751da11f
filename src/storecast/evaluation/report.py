"""A backtest as plain data: the leaderboard, the best model's windows and stores.

``backtest_report`` gives the shape ``storecast backtest --json`` prints and the bench
records; the CLI only renders it.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from storecast.evaluation.backtest import BacktestResult
from storecast.models import BASELINES, MODELS, resolve_model
from storecast.models.intervals import quantile_columns

METRICS = ("mape", "wmape", "wmae", "mase", "bias", "wql", "coverage_80", "coverage_95", "interval_score_80")


def models_for(choice: str | None, level: str = "store") -> list[str]:
    """Models to backtest for ``--model``: one name (or auto), or ``all``; baselines always."""
    if choice == "all":
        names = list(MODELS)
    else:
        name = resolve_model(choice, level)
        if name not in MODELS:
            from storecast.errors import UsageError

            raise UsageError(f"unknown model {name!r}; available: all, auto, {', '.join(sorted(MODELS))}")
        names = [name]
    return list(dict.fromkeys([*names, *BASELINES]))


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return value


def _records(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    keep = [c for c in columns if c in frame.columns]
    return [{k: _clean(v) for k, v in row.items()} for row in frame[keep].to_dict(orient="records")]


def backtest_report(result: BacktestResult) -> dict[str, Any]:
    """The best model's figures, its windows and stores, and the full leaderboard."""
    board = result.leaderboard()
    best = result.best_model()
    top = board.set_index("model").loc[best]
    windows = result.by("cutoff", best)
    stores = result.by(result.keys[0], best)
    report: dict[str, Any] = {"model": best}
    report.update({m: _clean(float(top[m])) for m in METRICS if m in top})
    report["windows"] = _records(windows, ["cutoff", *METRICS])
    report["leaderboard"] = _records(board, ["model", *METRICS])
    report["stores"] = _records(stores, [result.keys[0], *METRICS])
    report["per_window"] = {
        str(m): _records(result.by("cutoff", str(m)), ["cutoff", *METRICS]) for m in board["model"]
    }
    report["failures"] = dict(result.failures)
    return report


def predictions_frame(result: BacktestResult) -> pd.DataFrame:
    """Every out-of-sample prediction: the key columns, ``week``, ``cutoff``, ``step``,
    ``model``, ``actual``, ``yhat`` and one column per quantile ``q<level>`` (as given)."""
    frame = result.predictions.rename(columns={"y": "actual"})
    quantiles = quantile_columns(frame.columns)
    cols = [*result.keys, "week", "cutoff", "step", "model", "actual", "yhat", *quantiles]
    return frame[cols].sort_values(["model", *result.keys, "cutoff", "week"], kind="stable").reset_index(drop=True)
