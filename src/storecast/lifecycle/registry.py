"""The model registry on MLflow: every trained model is a version, one version is the champion.

Each ``register`` call is one MLflow run that logs the parameters, the data fingerprint,
the backtest metrics and the artifact (the forecasting pipeline's own ``save`` folder: the
leaf and anchor models' folders, the reconciliation choice and the quantile calibration as
JSON, never a pickle), then creates a registered model version from it. The
champion is the MLflow alias ``champion``; the order of past champions is kept in a tag of
the registered model so ``rollback`` can return to the one before.

MLflow is slow to import, so it is imported inside the functions that need it.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from storecast.config import Settings
from storecast.errors import ConfigError, NotFoundError, NotTrainedError, UsageError
from storecast.forecasting.pipeline import ForecastPipeline
from storecast.models.base import Forecaster
from storecast.models.intervals import ConformalIntervals
from storecast.redaction import redact_url, scrub, url_secrets

log = logging.getLogger(__name__)

CHAMPION_ALIAS = "champion"
HISTORY_TAG = "champion_history"
ARTIFACT_DIR = "storecast"


@dataclass(frozen=True)
class ModelVersion:
    """One registered model version, as the doors show it."""

    version: str
    model_name: str
    run_id: str
    metrics: dict[str, float]
    data_fingerprint: str
    created_at: str
    is_champion: bool
    #: the last week of the data the model was fitted on (ISO date)
    trained_to: str = ""


@dataclass
class LoadedModel:
    """A registered version ready to forecast: its forecasting pipeline."""

    version: ModelVersion
    pipeline: ForecastPipeline

    @property
    def model(self) -> Forecaster:
        """The leaf model (the version's named model)."""
        return self.pipeline.leaf

    @property
    def intervals(self) -> ConformalIntervals:
        """The leaf level's calibration."""
        cal = self.pipeline.calibration.get(tuple(self.pipeline.keys))
        if cal is None or cal.conformal is None:
            return ConformalIntervals(pd.DataFrame())
        return cal.conformal


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}


@functools.lru_cache(maxsize=8)
def _client_for(uri: str) -> Any:
    """One MLflow client per URI and process: creating one costs a database handshake."""
    # Quiet: no tqdm bars when artifacts are downloaded, no INFO lines on DB creation.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for noisy in ("mlflow", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.getLogger(noisy).level, logging.WARNING))
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=uri, registry_uri=uri)
    except Exception as exc:  # unreachable server, bad scheme
        shown = scrub(str(exc), url_secrets(uri))
        raise ConfigError(f"cannot open the MLflow registry at {redact_url(uri)!r}: {shown}") from exc


def _artifact_root(tracking_uri: str) -> str | None:
    """Artifacts of a local sqlite store go next to the database, not into the working dir."""
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri.removeprefix("sqlite:///"))
        return (db.parent / "mlartifacts").resolve().as_uri()
    return None


class Registry:
    """Registered versions of ``settings.registered_model_name`` in ``settings.resolved_tracking_uri``."""

    def __init__(self, settings: Settings) -> None:
        self.name = settings.registered_model_name
        self.uri = settings.resolved_tracking_uri
        self._client_: Any = None

    # ---- plumbing --------------------------------------------------------------------------
    @property
    def _client(self) -> Any:
        if self._client_ is None:
            self._client_ = _client_for(self.uri)
        return self._client_

    def _experiment_id(self) -> str:
        client = self._client
        exp = client.get_experiment_by_name(self.name)
        if exp is not None:
            return str(exp.experiment_id)
        return str(client.create_experiment(self.name, artifact_location=_artifact_root(self.uri)))

    def _ensure_registered_model(self) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self._client.get_registered_model(self.name)
        except MlflowException:
            self._client.create_registered_model(
                self.name, description="storecast weekly sales forecasters; alias 'champion' serves."
            )

    def _history(self) -> list[str]:
        from mlflow.exceptions import MlflowException

        try:
            tags = self._client.get_registered_model(self.name).tags
        except MlflowException:
            return []
        raw = tags.get(HISTORY_TAG, "")
        return [v for v in raw.split(",") if v]

    def _champion_version(self) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return str(self._client.get_model_version_by_alias(self.name, CHAMPION_ALIAS).version)
        except MlflowException:
            return None

    def _to_version(self, mv: Any, champion: str | None) -> ModelVersion:
        tags = mv.tags or {}
        metrics = {k: (float("nan") if v is None else float(v)) for k, v in json.loads(tags.get("metrics", "{}")).items()}
        return ModelVersion(
            version=str(mv.version),
            model_name=tags.get("model_name", ""),
            run_id=tags.get("storecast_run_id", ""),
            metrics=metrics,
            data_fingerprint=tags.get("data_fingerprint", ""),
            created_at=tags.get("created_at", ""),
            is_champion=str(mv.version) == champion,
            trained_to=tags.get("trained_to", ""),
        )

    def _get(self, version: str) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return self._client.get_model_version(self.name, str(version))
        except MlflowException:
            known = ", ".join(v.version for v in self.versions()) or "none"
            raise NotFoundError(
                f"model version {version!r} of {self.name!r} does not exist; registered versions: {known}"
            ) from None

    # ---- public API ------------------------------------------------------------------------
    def register(
        self,
        model: Forecaster | ForecastPipeline,
        *,
        intervals: ConformalIntervals | None = None,
        metrics: dict[str, float],
        params: dict[str, Any],
        data_fingerprint: str,
        run_id: str,
    ) -> ModelVersion:
        """Log one training run (params, fingerprint, metrics, artifact) and register it as a version.

        ``model`` is a pipeline, or a bare model with its leaf ``intervals``."""
        pipeline = model if isinstance(model, ForecastPipeline) else ForecastPipeline.from_model(
            model, intervals if intervals is not None else ConformalIntervals(pd.DataFrame()))
        model = pipeline.leaf
        client = self._client
        created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        run = client.create_run(
            self._experiment_id(),
            run_name=run_id,
            tags={"storecast_run_id": run_id, "data_fingerprint": data_fingerprint, "model_name": model.name},
        )
        mlflow_run = run.info.run_id
        try:
            for key, value in {"model": model.name, "seed": model.seed, **model.params, **params}.items():
                client.log_param(mlflow_run, key, str(value))
            for key, value in _finite(metrics).items():
                client.log_metric(mlflow_run, key, value)
            with tempfile.TemporaryDirectory(prefix="storecast-model-") as tmp:
                folder = Path(tmp)
                pipeline.save(folder / "pipeline")
                client.log_artifacts(mlflow_run, str(folder), ARTIFACT_DIR)
            client.set_terminated(mlflow_run)
        except Exception:
            client.set_terminated(mlflow_run, status="FAILED")
            raise
        self._ensure_registered_model()
        stored_metrics = {k: (None if not math.isfinite(float(v)) else float(v)) for k, v in metrics.items()}
        mv = client.create_model_version(
            self.name,
            source=f"runs:/{mlflow_run}/{ARTIFACT_DIR}",
            run_id=mlflow_run,
            tags={
                "model_name": model.name,
                "storecast_run_id": run_id,
                "data_fingerprint": data_fingerprint,
                "created_at": created,
                "trained_to": model.last_week_.date().isoformat(),
                "metrics": json.dumps(stored_metrics, sort_keys=True),
            },
        )
        log.info("registered %s version %s (%s, data %s)", self.name, mv.version, model.name, data_fingerprint)
        return self._to_version(mv, self._champion_version())

    def versions(self) -> list[ModelVersion]:
        """All versions, oldest first."""
        found = self._client.search_model_versions(f"name='{self.name}'")
        champion = self._champion_version() if found else None
        return sorted((self._to_version(mv, champion) for mv in found), key=lambda v: int(v.version))

    def champion(self) -> ModelVersion | None:
        version = self._champion_version()
        return None if version is None else self._to_version(self._get(version), version)

    def load(self, version: str | None = None) -> LoadedModel:
        """The fitted model and intervals of ``version`` (``None`` = the champion)."""
        if version is None:
            version = self._champion_version()
            if version is None:
                raise NotTrainedError(
                    f"no champion model in the registry {redact_url(self.uri)!r}; run `storecast train` or `storecast run` first"
                )
        mv = self._get(version)
        champion = self._champion_version()
        with tempfile.TemporaryDirectory(prefix="storecast-load-") as tmp:
            path = Path(self._client.download_artifacts(mv.run_id, ARTIFACT_DIR, tmp))
            if (path / "pipeline").is_dir():
                pipeline = ForecastPipeline.load(path / "pipeline")
            else:  # a version registered before pipelines: a model and its intervals
                model = Forecaster.load(path / "model")
                intervals = ConformalIntervals.from_records(json.loads((path / "intervals.json").read_text()))
                pipeline = ForecastPipeline.from_model(model, intervals)
        return LoadedModel(self._to_version(mv, champion), pipeline)

    def promote(self, version: str) -> ModelVersion:
        """Make ``version`` the champion (the previous champion stays available for rollback)."""
        mv = self._get(version)
        current = self._champion_version()
        if current == str(mv.version):
            return self._to_version(mv, current)
        history = self._history()
        if current is not None and (not history or history[-1] != current):
            history.append(current)
        history.append(str(mv.version))
        self._client.set_registered_model_alias(self.name, CHAMPION_ALIAS, str(mv.version))
        self._client.set_registered_model_tag(self.name, HISTORY_TAG, ",".join(history[-200:]))
        log.info("promoted %s version %s to champion (was %s)", self.name, mv.version, current)
        return replace(self._to_version(mv, str(mv.version)), is_champion=True)

    def rollback(self) -> ModelVersion:
        """Return the champion alias to the version that held it before the current one."""
        current = self._champion_version()
        history = self._history()
        while history and history[-1] == current:
            history.pop()
        if current is None or not history:
            raise UsageError(f"cannot roll back {self.name!r}: there is no earlier champion")
        previous = history[-1]
        self._client.set_registered_model_alias(self.name, CHAMPION_ALIAS, previous)
        self._client.set_registered_model_tag(self.name, HISTORY_TAG, ",".join(history))
        log.warning("rolled back %s champion from version %s to %s", self.name, current, previous)
        return self._to_version(self._get(previous), previous)
