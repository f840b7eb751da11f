"""Monitoring: realized accuracy of stored forecasts, drift checks, alerts.

- ``realized_errors`` joins every stored forecast with the actuals that have arrived for its
  week: one row per forecast run, series, week and horizon step, with the error.
- ``evaluate`` turns history, realized errors and the champion into checks, each ok / warn /
  alert against thresholds from settings:
  ``realized_mape`` (realized MAPE / the backtest's promise), ``bias`` (mean signed error,
  residual drift), ``level_shift`` (per store: actuals vs forecasts), and ``psi:<covariate>``
  (population stability of the year-over-year change of temperature, fuel price, CPI and
  unemployment: the weeks since the champion's training data ended vs its training window,
  so neither summer vs winter nor steady inflation counts as drift).
  Checks about the champion only look at weeks after its training data and forecasts made
  from then on, so a retrained model is not blamed for its predecessor's errors.
- ``dispatch_alerts`` logs each alert and, if ``alert_webhook_url`` is set, POSTs one JSON.

``monitor_job`` reads the warehouse, evaluates, stores the errors (``forecast_errors``) and
the checks (``monitoring``) and alerts; ``accuracy_frames`` serves the dashboard and API.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from storecast.config import Settings
from storecast.data.schema import PAST_ONLY, STORE, TARGET, WEEK, Dataset
from storecast.data.spec import SeriesSpec
from storecast.delivery.warehouse import Warehouse
from storecast.delivery.warehouse import tables as wt
from storecast.errors import NotFoundError
from storecast.evaluation.metrics import bias, mape
from storecast.lifecycle.registry import Registry

log = logging.getLogger(__name__)

Status = Literal["ok", "warn", "alert"]
_RANK = {"ok": 0, "warn": 1, "alert": 2}
#: Weeks of realized actuals the rolling checks look at.
ROLLING_WEEKS = 4
#: Fewer weeks than these since training give no status: one odd week (a moved Easter) is
#: noise, not drift, and must not set off retraining.
MIN_ACCURACY_WEEKS = 2
MIN_DRIFT_WEEKS = 4
#: Checks whose alert means the model no longer fits the world (they trigger retraining).
DRIFT_CHECKS = ("realized_mape", "bias", "level_shift", "psi")
_DIFFERENCED = ("temperature", "unemployment")
#: Smallest year-over-year change that matters: 2 degrees, 0.2 points, or 0.5% (CPI, fuel).
_RESOLUTION = {"temperature": 2.0, "unemployment": 0.2}
_DEFAULT_RESOLUTION = 0.005
#: Fewer values than this on either side give no PSI (its sampling noise would alert).
MIN_PSI_VALUES = 30
ERROR_COLUMNS = ("run_id", "model_version", "cutoff", "week", "step", "y", "yhat", "error", "ape")
#: Columns of error frames that are not series keys.
_ERROR_FIELDS = frozenset({*ERROR_COLUMNS, "actual", "prediction", "abs_pct_error", "computed_at", "level",
                           "series_id"})


@dataclass(frozen=True)
class Check:
    name: str
    subject: str
    value: float
    warn: float
    alert: float
    status: Status
    message: str


@dataclass
class MonitorReport:
    checked_at: str
    as_of: str  # newest week with actuals
    champion_version: str | None
    checks: list[Check]
    weekly: pd.DataFrame = field(default_factory=pd.DataFrame)  # week, realized_mape, n

    @property
    def status(self) -> Status:
        worst = max((_RANK[c.status] for c in self.checks), default=0)
        return next(s for s, r in _RANK.items() if r == worst)  # type: ignore[return-value,misc]

    @property
    def alerts(self) -> list[Check]:
        return [c for c in self.checks if c.status == "alert"]

    def drift_alerts(self, covariates_read: Collection[str] | None = None) -> list[str]:
        """Alerts that call for retraining, in words.

        With ``covariates_read`` (what the champion reads), a covariate's drift counts only
        if the champion reads that covariate: refitting a model that ignores fuel prices
        on a few more weeks changes nothing the fuel-price drift could have hurt, and
        accuracy drift (realized MAPE, bias, level shifts) still calls for retraining.
        """
        def calls(check: Check) -> bool:
            kind, _, covariate = check.name.partition(":")
            if kind not in DRIFT_CHECKS:
                return False
            return kind != "psi" or covariates_read is None or covariate in covariates_read

        return [c.message for c in self.alerts if calls(c)]

    def checks_frame(self) -> pd.DataFrame:
        rows = [{"checked_at": self.checked_at, "as_of": self.as_of, "champion_version": self.champion_version,
                 **asdict(c)} for c in self.checks]
        columns = ["checked_at", "as_of", "champion_version", "name", "subject", "value", "warn", "alert",
                   "status", "message"]
        return pd.DataFrame(rows, columns=columns)

    def to_dict(self) -> dict[str, object]:
        weekly = self.weekly.assign(week=self.weekly[WEEK].dt.date.astype(str)) if not self.weekly.empty else self.weekly
        return {
            "checked_at": self.checked_at,
            "as_of": self.as_of,
            "champion_version": self.champion_version,
            "status": self.status,
            "checks": [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                        for k, v in asdict(c).items()} for c in self.checks],
            "weekly": weekly.replace({np.nan: None}).to_dict(orient="records"),
        }


def status_of(value: float, warn: float, alert: float) -> Status:
    if not math.isfinite(value):
        return "ok"
    return "alert" if value > alert else "warn" if value > warn else "ok"


# ---- realized accuracy -----------------------------------------------------------------------
def realized_errors(forecasts: pd.DataFrame, sales: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Every stored forecast whose week now has an actual, with its error (``yhat - y``)."""
    cols = [*keys, *[c for c in ("run_id", "model_version", "cutoff") if c in forecasts], WEEK, "step", "yhat"]
    actual = sales[[*keys, WEEK, TARGET]].dropna(subset=[TARGET]).rename(columns={TARGET: "y"})
    out = forecasts[cols].merge(actual, on=[*keys, WEEK], how="inner")
    out["error"] = out["yhat"] - out["y"]
    out["ape"] = np.where(out["y"] > 0, np.abs(out["error"]) / out["y"].where(out["y"] > 0) * 100, np.nan)
    return out.sort_values([WEEK, *keys, "step"], kind="stable").reset_index(drop=True)


def weekly_realized(errors: pd.DataFrame) -> pd.DataFrame:
    """Realized MAPE per actual week: of the nearest forecast and of all stored forecasts.

    The nearest forecast of a series is its smallest step; when two runs share that step
    (a refresh, then a retrain, in one week) the later run is the one that was published.
    """
    if errors.empty:
        return pd.DataFrame(columns=[WEEK, "realized_mape", "realized_mape_all_steps", "n"])
    keys = [c for c in errors.columns if c not in _ERROR_FIELDS]
    rows = []
    for week, part in errors.groupby(WEEK, sort=True):
        nearest = part[part["step"] == part["step"].min()]
        if "run_id" in nearest:
            nearest = nearest.sort_values("run_id", kind="stable").drop_duplicates(keys, keep="last")
        rows.append({WEEK: week, "realized_mape": mape(nearest["y"], nearest["yhat"]),
                     "realized_mape_all_steps": mape(part["y"], part["yhat"]), "n": len(nearest)})
    return pd.DataFrame(rows)


# ---- drift -----------------------------------------------------------------------------------
def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 5, resolution: float = 0.0) -> float:
    """Population stability index of ``actual`` against ``expected``.

    Bins are centred on quantiles of ``expected`` rounded to ``resolution``, so differences
    smaller than the resolution (a CPI trend of 1.94% vs 1.98% a year) never count as drift.
    NaN when either side has too few values for a stable estimate.
    """
    expected = expected[np.isfinite(expected)]
    actual = actual[np.isfinite(actual)]
    if expected.size < MIN_PSI_VALUES or actual.size < MIN_PSI_VALUES:
        return float("nan")
    centers = np.quantile(expected, (np.arange(bins) + 0.5) / bins)
    if resolution > 0:
        centers = np.round(centers / resolution) * resolution
    centers = np.unique(centers)
    if centers.size == 1:
        half = resolution / 2 if resolution > 0 else 1e-12
        inner = np.array([centers[0] - half, centers[0] + half])
    else:
        inner = (centers[:-1] + centers[1:]) / 2
    edges = np.concatenate([[-np.inf], inner, [np.inf]])
    e = np.histogram(expected, edges)[0] / expected.size
    a = np.histogram(actual, edges)[0] / actual.size
    e, a = np.clip(e, 1e-4, None), np.clip(a, 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))


def _yoy_change(history: pd.DataFrame, name: str, top: str = STORE) -> pd.DataFrame:
    """Per store and week, the change of ``name`` against the same week a year before.

    Covariates trend (CPI, fuel) and cycle (temperature), so their raw values always drift;
    their year-over-year change only moves when the economy or the weather really changes.
    Prices change as log ratios; temperature and the unemployment rate as differences.
    """
    per_store = history[[top, WEEK, name]].drop_duplicates([top, WEEK]).dropna(subset=[name])
    before = per_store.assign(**{WEEK: per_store[WEEK] + pd.Timedelta(weeks=52)})
    pair = per_store.merge(before, on=[top, WEEK], suffixes=("", "_ly"))
    now, then = pair[name].to_numpy(dtype="float64"), pair[f"{name}_ly"].to_numpy(dtype="float64")
    if name in _DIFFERENCED:
        change = now - then
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            change = np.log(now / then)
    return pd.DataFrame({WEEK: pair[WEEK], "change": change})


def covariate_checks(
    history: pd.DataFrame, trained_to: pd.Timestamp, settings: Settings, spec: SeriesSpec | None = None
) -> list[Check]:
    """PSI of each covariate's year-over-year change: weeks since training vs the training window."""
    checks = []
    past_only = spec.past_only if spec is not None else [c for c in PAST_ONLY if c in history]
    for name in past_only:
        if name not in history or history[name].isna().all():
            continue
        change = _yoy_change(history, name, spec.keys[0] if spec is not None else STORE)
        expected = change.loc[change[WEEK] <= trained_to, "change"].to_numpy()
        recent = change[change[WEEK] > trained_to]
        n_weeks = recent[WEEK].nunique()
        value = float("nan")
        if n_weeks >= MIN_DRIFT_WEEKS:
            value = psi(expected, recent["change"].to_numpy(),
                        resolution=_RESOLUTION.get(name, _DEFAULT_RESOLUTION))
        if n_weeks < MIN_DRIFT_WEEKS:
            msg = f"{name}: {n_weeks} weeks since training, {MIN_DRIFT_WEEKS} needed"
        elif math.isfinite(value):
            msg = f"{name} year-over-year change PSI {value:.3f} over {recent[WEEK].nunique()} weeks since training"
        else:
            msg = f"{name}: too few weeks for a year-over-year comparison"
        checks.append(Check(f"psi:{name}", "all", value, settings.psi_warn, settings.psi_alert,
                            status_of(value, settings.psi_warn, settings.psi_alert), msg))
    return checks


def accuracy_checks(errors: pd.DataFrame, promise_mape: float, settings: Settings, top: str = STORE) -> list[Check]:
    """Realized MAPE vs the backtest promise, bias, and per-store level shifts, on ``errors``."""
    if errors.empty:
        return [Check("realized_mape", "all", float("nan"), settings.mape_warn_ratio, settings.mape_alert_ratio,
                      "ok", "no realized forecasts yet")]
    weeks = errors[WEEK].nunique()
    if weeks < MIN_ACCURACY_WEEKS:
        return [Check("realized_mape", "all", float("nan"), settings.mape_warn_ratio, settings.mape_alert_ratio,
                      "ok", f"{weeks} realized week(s) since training, {MIN_ACCURACY_WEEKS} needed")]
    realized = mape(errors["y"], errors["yhat"])
    ratio = realized / promise_mape if promise_mape and math.isfinite(promise_mape) else float("nan")
    checks = [Check(
        "realized_mape", "all", ratio, settings.mape_warn_ratio, settings.mape_alert_ratio,
        status_of(ratio, settings.mape_warn_ratio, settings.mape_alert_ratio),
        f"realized MAPE {realized:.2f}% over {weeks} weeks vs backtest {promise_mape:.2f}% (x{ratio:.2f})",
    )]
    b = bias(errors["y"], errors["yhat"])
    shift_pct = settings.level_shift_alert * 100
    checks.append(Check("bias", "all", abs(b), shift_pct / 2, shift_pct, status_of(abs(b), shift_pct / 2, shift_pct),
                        f"forecasts {'over' if b > 0 else 'under'}-forecast by {abs(b):.1f}% over {weeks} weeks"))
    top = top if top in errors.columns else STORE
    sums = errors.groupby(top)[["y", "yhat"]].sum()
    shift = (sums["y"] / sums["yhat"] - 1).replace([np.inf, -np.inf], np.nan)
    for store, value in shift.items():
        dev = abs(float(value))
        status = status_of(dev, settings.level_shift_alert / 2, settings.level_shift_alert)
        if status != "ok":
            checks.append(Check("level_shift", f"{top} {store}", dev, settings.level_shift_alert / 2,
                                settings.level_shift_alert, status,
                                f"{top} {store} sells {float(value):+.1%} vs its forecasts over {weeks} weeks"))
    if not any(c.name == "level_shift" for c in checks):
        worst = float(np.nanmax(np.abs(shift.to_numpy()))) if shift.notna().any() else float("nan")
        checks.append(Check("level_shift", "all stores", worst, settings.level_shift_alert / 2,
                            settings.level_shift_alert, "ok", f"largest store deviation {worst:.1%}"))
    return checks


def evaluate(
    history: pd.DataFrame,
    errors: pd.DataFrame,
    *,
    settings: Settings,
    champion_version: str | None,
    promise_mape: float,
    trained_to: pd.Timestamp | None,
    now: dt.datetime | None = None,
    spec: SeriesSpec | None = None,
) -> MonitorReport:
    """All checks for the champion trained to ``trained_to`` (see the module docstring)."""
    as_of = pd.Timestamp(history.loc[history[TARGET].notna(), WEEK].max())
    since = trained_to if trained_to is not None else as_of - pd.Timedelta(weeks=ROLLING_WEEKS)
    window_start = max(since, as_of - pd.Timedelta(weeks=ROLLING_WEEKS))
    recent = errors
    if not errors.empty:
        recent = errors[(errors[WEEK] > window_start) & (errors["cutoff"] >= since)] if "cutoff" in errors else errors[errors[WEEK] > window_start]
    top = spec.keys[0] if spec is not None else STORE
    checks = accuracy_checks(recent, promise_mape, settings, top)
    if trained_to is not None:
        checks += covariate_checks(history, trained_to, settings, spec)
    stamp = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    return MonitorReport(stamp, str(as_of.date()), champion_version, checks, weekly_realized(errors))


# ---- alerts ----------------------------------------------------------------------------------
def dispatch_alerts(
    alerts: list[Check], settings: Settings, *, source: str = "monitor", context: dict[str, object] | None = None
) -> bool:
    """Log every alert; POST them as one JSON to ``alert_webhook_url`` if set. True if posted."""
    if not alerts:
        return False
    for check in alerts:
        log.warning("ALERT %s [%s]: %s", check.name, check.subject, check.message)
    if not settings.alert_webhook_url:
        return False
    import httpx

    body = {"source": source, "service": "storecast", **(context or {}),
            "alerts": [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                        for k, v in asdict(c).items()} for c in alerts]}
    try:
        response = httpx.post(settings.alert_webhook_url, json=body, timeout=10)
        response.raise_for_status()
    except httpx.HTTPError as exc:  # an unreachable webhook must not stop the pipeline
        log.error("could not POST %d alerts to %s: %s", len(alerts), settings.alert_webhook_url, exc)
        return False
    return True


# ---- the job: read the warehouse, evaluate, store, alert ----------------------------------------
def _stored_forecasts(wh: Warehouse) -> pd.DataFrame:
    """Every stored leaf forecast (not backtest) row whose week's actual has arrived."""
    frame = wh.realized_forecasts()
    frame[WEEK] = pd.to_datetime(frame[WEEK])
    frame["cutoff"] = pd.to_datetime(frame["cutoff"])
    return frame


def _errors_from_stored(stored: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The stored rows (prediction, actual filled by the warehouse) in ``realized_errors``' shape."""
    sales = stored[[*keys, WEEK, "actual"]].drop_duplicates([*keys, WEEK]).rename(columns={"actual": TARGET})
    forecasts = stored.drop(columns=["actual"]).rename(columns={"prediction": "yhat"})
    return realized_errors(forecasts, sales, keys)


def monitor_job(
    settings: Settings,
    *,
    history: Dataset | None = None,
    registry: Registry | None = None,
    notify: bool = True,
) -> MonitorReport:
    """Compute realized errors of every stored forecast, evaluate the checks, store, alert."""
    registry = registry or Registry(settings)
    with Warehouse.from_settings(settings) as wh:
        history = history or wh.history()
        if history is None:
            raise NotFoundError("the warehouse holds no sales yet; run `storecast run` first")
        keys = history.keys
        stored = _stored_forecasts(wh)
        errors = _errors_from_stored(stored, keys)
        champion = registry.champion()
        if champion is not None:
            mine = errors[errors["model_version"].astype(str) == champion.version]
            trained_to = pd.Timestamp(champion.trained_to) if champion.trained_to else None
            promise = float(champion.metrics.get("mape", float("nan")))
        else:
            mine, trained_to, promise = errors.iloc[0:0], None, float("nan")
        report = evaluate(history.frame, mine, settings=settings, champion_version=champion.version if champion else None,
                          promise_mape=promise, trained_to=trained_to, spec=history.spec)
        report.weekly = weekly_realized(errors)
        _store(wh, errors, report, keys)
    if notify:
        dispatch_alerts(report.alerts, settings, context={"as_of": report.as_of,
                                                          "champion_version": report.champion_version})
    return report


def _store(wh: Warehouse, errors: pd.DataFrame, report: MonitorReport, keys: list[str]) -> None:
    """Append the new realized errors (run and week not stored yet) and this check run."""
    if not errors.empty:
        done = wh.read_forecast_errors()[["run_id", WEEK]].drop_duplicates()
        done[WEEK] = pd.to_datetime(done[WEEK])
        fresh = errors.merge(done.assign(_done=True), on=["run_id", WEEK], how="left")
        fresh = fresh[fresh["_done"].isna()]
        if not fresh.empty:
            rows = fresh.rename(columns={"y": "actual", "yhat": "prediction", "ape": "abs_pct_error"})
            wanted = [*keys, *(c for c in (col.name for col in wt.forecast_errors.columns) if c in rows)]
            wh.write_forecast_errors(rows[wanted])
    checks = report.checks_frame()
    if checks.empty:
        return
    rows = pd.DataFrame({
        "checked_at": pd.Timestamp(report.checked_at).tz_convert(None),
        "check": checks["name"], "subject": checks["subject"],
        "value": checks["value"].where(np.isfinite(checks["value"])), "threshold": checks["alert"],
        "status": checks["status"], "run_id": None,
        "details": [{"message": m, "warn": w, "as_of": report.as_of, "champion_version": report.champion_version}
                    for m, w in zip(checks["message"], checks["warn"], strict=True)],
    })
    wh.write_monitoring(rows)


def latest_checks(settings: Settings) -> pd.DataFrame | None:
    """The newest stored check run (for the dashboard), or ``None`` before the first one."""
    with Warehouse.from_settings(settings) as wh:
        frame = wh.read_monitoring()
    if frame.empty:
        return None
    latest = frame[frame["checked_at"] == frame["checked_at"].max()]
    messages = latest["details"].map(lambda d: json.loads(d).get("message", "") if isinstance(d, str) else "")
    return pd.DataFrame({"check": latest["check"], "subject": latest["subject"], "status": latest["status"],
                         "value": latest["value"].round(3), "message": messages}).reset_index(drop=True)


def accuracy_frames(settings: Settings) -> dict[str, pd.DataFrame]:
    """Realized accuracy for ``GET /accuracy`` and the dashboard, from the stored errors.

    ``weekly``: realized MAPE per week (nearest forecast and all steps); ``by_store`` and
    ``by_step``: MAPE over every stored realized error; ``checks``: the latest check run.
    """
    with Warehouse.from_settings(settings) as wh:
        errors = wh.read_forecast_errors()
    errors = errors.rename(columns={"actual": "y", "prediction": "yhat"})
    errors[WEEK] = pd.to_datetime(errors[WEEK])

    def by(column: str) -> pd.DataFrame:
        rows = [{column: k, "mape": mape(g["y"], g["yhat"]), "bias": bias(g["y"], g["yhat"]), "n": len(g)}
                for k, g in errors.groupby(column, sort=True)]
        return pd.DataFrame(rows, columns=[column, "mape", "bias", "n"])

    checks = latest_checks(settings)
    top = next((c for c in errors.columns if c not in _ERROR_FIELDS), STORE)
    return {"weekly": weekly_realized(errors), "by_store": by(top), "by_step": by("step"),
            "checks": checks if checks is not None else pd.DataFrame(columns=["check", "subject", "status", "value", "message"])}
