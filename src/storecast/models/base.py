"""The one contract every model follows.

``fit(history, spec) -> self`` learns from a canonical frame (see ``data.schema``) under
its ``SeriesSpec`` (``data.spec``: the key columns, the covariates by role, the calendar;
without one, a Walmart-shaped frame's is assumed); ``predict(horizon, future=None) ->
frame`` returns one row per series and future week with ``step`` (1..horizon) and the
point forecast ``yhat``. ``future`` is a canonical frame of the forecast weeks holding
known-future covariates (holiday flags, planned markdowns and prices, or a what-if
scenario); models that use none ignore it. A model states which covariate roles it reads
(``reads_known_future``, ``reads_past_only``); the spec names the columns.

Prediction intervals are added on top of any model by ``models.intervals`` from backtest
residuals, so every model gets calibrated bands the same way.

A trained model is saved as an artifact folder: ``model.json`` (name, parameters, format
version) plus whatever files the model writes for its learned state (Parquet tables,
LightGBM text models). Loading never unpickles arbitrary objects.
"""

from __future__ import annotations

import json
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from storecast.data.schema import TARGET, WEEK
from storecast.data.spec import SeriesSpec, legacy_spec
from storecast.errors import DataError, InsufficientHistoryError, NotTrainedError
from storecast.features.calendar import RetailCalendar, calendar_for

ARTIFACT_VERSION = 1
FORECAST_COLUMNS = ("week", "step", "yhat")


class Forecaster(ABC):
    """Base class: subclasses set ``name`` and implement ``_fit``/``_predict``/state."""

    name: ClassVar[str]
    #: weeks of history each series needs; fit() raises InsufficientHistoryError below it.
    min_history_weeks: ClassVar[int] = 1
    #: whether the model reads the spec's known-future covariates from ``future``.
    reads_known_future: ClassVar[bool] = False
    #: whether the model reads the spec's past-only covariates (as known at the origin).
    reads_past_only: ClassVar[bool] = False
    #: one-line description for ``storecast models available``.
    description: ClassVar[str] = ""

    @classmethod
    def roles_read(cls) -> frozenset[str]:
        """The covariate roles (``known_future``, ``past_only``) the model reads."""
        roles = {"known_future"} if cls.reads_known_future else set()
        return frozenset(roles | ({"past_only"} if cls.reads_past_only else set()))

    @classmethod
    def covariates_read(cls, spec: SeriesSpec) -> frozenset[str]:
        """Every covariate of ``spec`` the model reads, known-future or past-only."""
        return frozenset(c for role in cls.roles_read() for c in getattr(spec, role))

    def __init__(self, *, seed: int = 0, **params: Any) -> None:
        self.seed = seed
        self.params = params

    # ---- public API -------------------------------------------------------------------
    def fit(self, history: pd.DataFrame, spec: SeriesSpec | None = None) -> Self:
        if history.empty:
            raise DataError(f"{self.name}: cannot fit on an empty history")
        self._set_spec(spec if spec is not None else legacy_spec(history))
        missing = [k for k in self.keys_ if k not in history.columns]
        if missing:
            raise DataError(f"{self.name}: the history lacks the key column(s) {', '.join(missing)}")
        self._check_history(history)
        self.last_week_ = pd.Timestamp(history[WEEK].max())
        seen = history.dropna(subset=[TARGET])[self.keys_].drop_duplicates()
        self.series_seen_ = seen.sort_values(self.keys_, kind="stable").reset_index(drop=True)
        with _numeric_quiet():
            self._fit(history.sort_values([*self.keys_, WEEK], kind="stable"))
        self.is_fitted_ = True
        return self

    def predict(self, horizon: int, future: pd.DataFrame | None = None) -> pd.DataFrame:
        if not getattr(self, "is_fitted_", False):
            raise NotTrainedError(f"{self.name}: call fit() before predict()")
        if horizon < 1:
            raise DataError(f"{self.name}: horizon must be >= 1, got {horizon}")
        with _numeric_quiet():
            out = self._predict(horizon, future)
        cols = [*self.keys_, *FORECAST_COLUMNS]
        return out[cols].sort_values([*self.keys_, WEEK], kind="stable").reset_index(drop=True)

    def known_series(self) -> pd.DataFrame:
        """The series (key columns) the model was fitted on, without predicting."""
        if not getattr(self, "is_fitted_", False):
            raise NotTrainedError(f"{self.name}: call fit() before known_series()")
        seen = getattr(self, "series_seen_", None)
        if seen is None:  # an artifact saved before the series were recorded
            return self.predict(1)[self.keys_].drop_duplicates().reset_index(drop=True)
        return seen.copy()

    def _set_spec(self, spec: SeriesSpec) -> None:
        self.spec_ = spec
        self.keys_ = list(spec.keys)

    @property
    def calendar(self) -> RetailCalendar:
        """The retail calendar of the data the model was fitted on."""
        return calendar_for(self.spec_.calendar)

    def future_weeks(self, horizon: int) -> pd.DatetimeIndex:
        return pd.date_range(self.last_week_ + pd.Timedelta(weeks=1), periods=horizon, freq="7D")

    # ---- persistence ---------------------------------------------------------------------
    def save(self, folder: Path) -> Path:
        if not getattr(self, "is_fitted_", False):
            raise NotTrainedError(f"{self.name}: nothing to save before fit()")
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "name": self.name,
            "format_version": ARTIFACT_VERSION,
            "seed": self.seed,
            "params": self.params,
            "keys": self.keys_,
            "spec": self.spec_.to_dict(),
            "last_week": self.last_week_.date().isoformat(),
            "series": self.series_seen_.to_numpy().tolist(),
            "state": self._save_state(folder),
        }
        (folder / "model.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
        return folder

    @classmethod
    def load(cls, folder: Path) -> Forecaster:
        from storecast.models import get_model_class

        meta = json.loads((folder / "model.json").read_text())
        if meta.get("format_version") != ARTIFACT_VERSION:
            raise DataError(f"unsupported model artifact version {meta.get('format_version')}", path=str(folder))
        klass = get_model_class(meta["name"])
        model = klass(seed=meta["seed"], **meta["params"])
        if "spec" in meta:
            model._set_spec(SeriesSpec.from_dict(meta["spec"]))
        else:  # an artifact saved before specs were recorded: the Walmart shape
            model._set_spec(legacy_spec(pd.DataFrame(columns=list(meta["keys"]))))
        model.last_week_ = pd.Timestamp(meta["last_week"])
        if "series" in meta:
            model.series_seen_ = pd.DataFrame(meta["series"], columns=model.keys_)
        model._load_state(folder, meta["state"])
        model.is_fitted_ = True
        return model

    # ---- for subclasses ---------------------------------------------------------------------
    @abstractmethod
    def _fit(self, history: pd.DataFrame) -> None: ...

    @abstractmethod
    def _predict(self, horizon: int, future: pd.DataFrame | None) -> pd.DataFrame: ...

    @abstractmethod
    def _save_state(self, folder: Path) -> dict[str, Any]:
        """Write learned state into ``folder``; return JSON-able metadata about it."""

    @abstractmethod
    def _load_state(self, folder: Path, state: dict[str, Any]) -> None: ...

    def _check_history(self, history: pd.DataFrame) -> None:
        counts = history.dropna(subset=[TARGET]).groupby(self.keys_)[WEEK].nunique()
        if counts.empty or int(counts.max()) < self.min_history_weeks:
            have = 0 if counts.empty else int(counts.max())
            raise InsufficientHistoryError(
                f"{self.name} needs at least {self.min_history_weeks} weeks of history; "
                f"the longest series has {have}"
            )


class _numeric_quiet(warnings.catch_warnings):
    """Silence numpy's RuntimeWarnings (all-NaN slices, log of 0) inside a model.

    Short, gappy and all-zero department series make these routine; the models turn the
    resulting NaN/inf into stated fallbacks, and a user should not see hundreds of lines.
    """

    def __enter__(self) -> None:
        super().__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)
        self._err = np.seterr(all="ignore")

    def __exit__(self, *exc: Any) -> None:
        np.seterr(**self._err)
        super().__exit__(*exc)
