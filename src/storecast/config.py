"""One settings object, loaded at the edge (CLI, app factory, flow) and passed down.

Sources, strongest first: keyword arguments, environment variables ``STORECAST_*``
(nested fields with ``__``, e.g. ``STORECAST_COLUMNS__DATE``), the TOML file named by
``STORECAST_CONFIG`` or ``./storecast.toml``, then the defaults below. Every field has a
description; ``storecast config`` prints them and a test checks the README lists them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from storecast.data.spec import DataSpec

DataFormat = Literal["auto", "walmart", "recruiting", "generic"]


MIN_KEY_LENGTH = 16
_PLACEHOLDERS = ("changeme", "change-me", "password", "secret", "example", "xxx")
_SEQUENCES = ("0123456789", "abcdefghijklmnopqrstuvwxyz", "0123456789abcdefghijklmnopqrstuvwxyz",
              "qwertyuiop", "asdfghjkl", "zxcvbnm")


def _sequential(text: str) -> bool:
    """Every character the next (or every one the previous) of a cyclic alphabet: 0123..., fedc..."""
    for alphabet in _SEQUENCES:
        if not set(text) <= set(alphabet):
            continue
        pos = [alphabet.index(c) for c in text]
        steps = {(b - a) % len(alphabet) for a, b in zip(pos, pos[1:], strict=False)}
        if steps in ({1}, {len(alphabet) - 1}):
            return True
    return False


def weak_key(key: str) -> bool:
    """Too short, a placeholder, or one repeated or sequential pattern (``12345678``, ``abab...``)."""
    low = key.lower()
    if len(key) < MIN_KEY_LENGTH or len(set(low)) < 6 or _sequential(low):
        return True
    period = next((p for p in range(1, len(low)) if all(low[i] == low[i - p] for i in range(p, len(low)))), len(low))
    if period <= len(low) // 2:
        return True
    rest = low
    for word in _PLACEHOLDERS:
        rest = rest.replace(word, "")
    return len(rest.strip("-_. ")) < 8


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """All of storecast's settings. See the README's Configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="STORECAST_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    # --- where things go -------------------------------------------------------------
    out_dir: Path = Field(Path("outputs"), description="Directory for run outputs (CSV, Parquet, dashboard, run.json).")
    warehouse_url: str = Field(
        "",
        description="SQLAlchemy URL of the warehouse; empty means duckdb:///<out_dir>/storecast.duckdb. "
        "PostgreSQL: postgresql+psycopg://user@host:5432/db.",
    )
    mlflow_tracking_uri: str = Field(
        "", description="MLflow tracking/registry URI; empty means sqlite:///<out_dir>/mlflow.db."
    )
    registered_model_name: str = Field("storecast", description="Name of the model in the MLflow registry.")
    warehouse_lock_timeout: float = Field(
        60.0, ge=0, le=86400,
        description="Seconds a command waits for another process holding the warehouse (the embedded "
        "DuckDB file, PostgreSQL's write lock) before giving up with a message.",
    )

    # --- reading data ------------------------------------------------------------------
    data_format: DataFormat = Field(
        "auto", description="Input format: auto (a declared [data] table, else the Walmart presets by header), walmart, recruiting or generic (the declaration).")
    data: DataSpec = Field(
        default_factory=DataSpec,
        description="The data declaration ([data] table; STORECAST_DATA__KEYS=...): keys, date, target, week, drivers, calendar. See the README's Data section.")

    # --- forecasting -------------------------------------------------------------------
    horizon: int = Field(13, ge=1, le=104, description="Weeks to forecast ahead.")
    backtest_windows: int = Field(4, ge=1, le=52, description="Rolling-origin backtest windows.")
    backtest_step: int = Field(13, ge=1, le=104, description="Weeks between backtest origins.")
    backtest_jobs: int = Field(
        0, ge=0, le=256,
        description="Worker processes fitting backtest windows in parallel when the backtest would take over ~5 s in process (0 = one per CPU core; 1 = always in process).",
    )
    quantiles: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
        description="Quantile levels every forecast carries (columns q<level>), comma-separated, each in (0, 1); the 80%/95% bands come besides.",
    )
    model: str = Field("auto", description="Model name from `storecast models available`, or 'auto' for the measured default of the data level (store or department).")
    seed: int = Field(42, description="Random seed; same seed and data give byte-identical outputs.")

    # --- quality gate -------------------------------------------------------------------
    outlier_mad_threshold: float = Field(
        8.0, gt=0, description="A week is an outlier when it is this many robust deviations (MAD) from its series' median."
    )
    stale_weeks: int = Field(4, ge=1, description="A series whose last week is this many weeks behind the newest is stale.")
    max_sales: float = Field(1e10, gt=0, description="Weekly sales above this are rejected as implausible.")

    # --- service ------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address `storecast serve` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port `storecast serve` listens on.")
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, repr=False,
        description=f"API keys for write endpoints, comma-separated; each at least {MIN_KEY_LENGTH} characters, not a pattern.",
    )
    private_reads: bool = Field(False, description="Require an API key for read endpoints too.")
    max_body_bytes: int = Field(20_000_000, ge=1024, description="Largest request body the API accepts.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed by CORS, comma-separated; empty closes CORS."
    )
    champion_poll_seconds: float = Field(
        10.0, ge=0.1, le=86400, description="How often the API checks the registry for a new champion to serve."
    )

    # --- monitoring and retraining -------------------------------------------------------
    promotion_margin: float = Field(
        0.0, ge=0, le=1, description="A challenger must beat the champion's backtest MAPE by this relative margin to be promoted."
    )
    mape_warn_ratio: float = Field(1.25, gt=0, description="Realized MAPE / backtest MAPE above this warns.")
    mape_alert_ratio: float = Field(1.5, gt=0, description="Realized MAPE / backtest MAPE above this alerts.")
    psi_warn: float = Field(0.1, gt=0, description="Population stability index of a covariate above this warns.")
    psi_alert: float = Field(0.25, gt=0, description="Population stability index of a covariate above this alerts.")
    level_shift_alert: float = Field(
        0.15, gt=0, description="A store's recent level deviating from its forecast by this fraction alerts."
    )
    alert_webhook_url: str = Field("", description="If set, alerts are POSTed here as JSON.")
    retrain_every_weeks: int = Field(
        4, ge=1, le=104, description="The weekly refresh retrains once this many new weeks have arrived since the champion's training data (the monthly schedule)."
    )
    retrain_cron: str = Field("0 6 1 * *", description="Cron schedule of the monthly retrain flow.")
    refresh_cron: str = Field("0 6 * * 1", description="Cron schedule of the weekly refresh flow.")
    refresh_inbox: Path = Field(
        Path("inbox"), description="Folder the scheduled weekly refresh reads new files from."
    )

    @field_validator("quantiles", mode="before")
    @classmethod
    def _quantile_list(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("quantiles")
    @classmethod
    def _quantile_levels(cls, value: list[float]) -> list[float]:
        from storecast.models.intervals import check_quantiles

        return list(check_quantiles(value))

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("api_keys")
    @classmethod
    def _no_weak_keys(cls, value: list[str]) -> list[str]:
        for key in value:
            if weak_key(key):  # the message never repeats the key: it would land in logs
                raise ValueError(
                    f"API keys must be at least {MIN_KEY_LENGTH} characters and not a placeholder ('changeme') "
                    "or a pattern (one repeated or sequential run of characters); generate one with "
                    "python -c 'import secrets; print(secrets.token_urlsafe(24))'"
                )
        return value

    @model_validator(mode="after")
    def _check_thresholds(self) -> Settings:
        if self.mape_alert_ratio < self.mape_warn_ratio:
            raise ValueError("mape_alert_ratio must be >= mape_warn_ratio")
        if self.psi_alert < self.psi_warn:
            raise ValueError("psi_alert must be >= psi_warn")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("STORECAST_CONFIG", "storecast.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    # --- secrets ---------------------------------------------------------------------------
    def secret_values(self) -> list[str]:
        """Every credential these settings hold (keys, URL passwords, the webhook), for scrubbing."""
        from storecast.redaction import url_secrets

        found = list(self.api_keys)
        for url in (self.warehouse_url, self.mlflow_tracking_uri):
            found += url_secrets(url)
        if self.alert_webhook_url:
            found.append(self.alert_webhook_url)
            parts = self.alert_webhook_url.split("://", 1)[-1].split("/", 1)
            if len(parts) == 2 and len(parts[1]) >= 4:
                found.append(parts[1])
        return found

    def public_dump(self) -> dict[str, object]:
        """The settings as JSON-able values with keys hidden and passwords redacted (``storecast config``)."""
        from storecast.redaction import MASK, redact_url, redact_webhook

        values = self.model_dump(mode="json")
        values["api_keys"] = [MASK for _ in self.api_keys]
        values["warehouse_url"] = redact_url(self.warehouse_url)
        values["mlflow_tracking_uri"] = redact_url(self.mlflow_tracking_uri)
        values["alert_webhook_url"] = redact_webhook(self.alert_webhook_url)
        return values

    # --- derived ---------------------------------------------------------------------------
    @property
    def resolved_backtest_jobs(self) -> int:
        return self.backtest_jobs or (os.cpu_count() or 1)

    @property
    def resolved_warehouse_url(self) -> str:
        if self.warehouse_url:
            return self.warehouse_url
        return f"duckdb:///{(self.out_dir / 'storecast.duckdb').as_posix()}"

    @property
    def resolved_tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.out_dir / 'mlflow.db').resolve().as_posix()}"


def load_settings(**overrides: object) -> Settings:
    """Build settings from env, TOML and explicit overrides (``None`` values are ignored)."""
    from pydantic import ValidationError

    from storecast.errors import ConfigError

    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc


def settings_reference() -> list[dict[str, str]]:
    """Name, environment variable, default and description of every setting (for docs and `config`)."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            default = "[data] table, nothing declared"
        rows.append(
            {
                "name": name,
                "env": f"STORECAST_{name.upper()}",
                "default": str(default),
                "description": field.description or "",
            }
        )
    return rows
