"""Request and response models of the API (pydantic v2), with limits on every input.

Responses mirror what the hot paths serialise by hand (see ``state.py``), so the OpenAPI
schema documents exactly the bytes clients receive.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_WEEKS = 52
MAX_STORE = 1_000_000
MAX_SCENARIO_STORES = 100
MAX_SCENARIO_SERIES = 10_000
MAX_SERIES_PAGE = 100_000

KeyValue = int | str


class ErrorBody(BaseModel):
    """Every error, whatever its status, has this shape."""

    error: str = Field(description="Machine-readable error code, e.g. not_found, invalid_request.")
    message: str = Field(description="What was received and what is allowed.")
    details: object | None = Field(None, description="Structured details where useful (validation errors).")


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready", "not_ready"]
    model_version: str | None
    warehouse: bool
    problems: list[str]


class StoreRow(BaseModel):
    store: KeyValue
    dept: KeyValue | None = None
    last_actual_week: dt.date | None = Field(description="Newest week with actual sales in the warehouse.")


class StoresResponse(BaseModel):
    level: Literal["store", "dept"]
    stores: list[StoreRow]


class SeriesRow(BaseModel):
    """One leaf series: its key values (by the data's key names) and the weeks stored."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"example": {
        "store": 2, "brand": "Tropicana Premium 64oz", "first_week": "1990-06-14",
        "last_week": "1992-10-01", "weeks": 117}})

    first_week: dt.date | None = Field(description="Oldest week with actual sales in the warehouse.")
    last_week: dt.date | None = Field(description="Newest week with actual sales in the warehouse.")
    weeks: int = Field(description="Weeks of actual sales stored.")


class SeriesResponse(BaseModel):
    keys: list[str] = Field(description="The data's key columns, top of the hierarchy first.")
    levels: list[str] = Field(description="Every level forecast: total, then each prefix of the keys.")
    week: str = Field(description="How the data's weeks run and which day names them.")
    total: int = Field(description="Leaf series matching the filter.")
    offset: int
    series: list[SeriesRow]


class ForecastPoint(BaseModel):
    """One forecast week; quantile columns ``q0.1``... follow the bands, and rows of data with
    other keys carry them by name."""

    model_config = ConfigDict(extra="allow")

    dept: int | None = None
    week: dt.date = Field(description="The week's date as the data names its weeks (Walmart: its Friday).")
    step: int = Field(ge=1, description="Weeks after the cutoff.")
    yhat: float | None = Field(description="Point forecast of weekly sales.")
    lo_80: float | None
    hi_80: float | None
    lo_95: float | None
    hi_95: float | None


class ModelInfo(BaseModel):
    model_version: str
    model: str
    run_id: str
    cutoff: dt.date = Field(description="Last week of history the model was trained on.")


class StoreForecast(ModelInfo):
    store: int
    weeks: int
    forecast: list[ForecastPoint]


class WeekForecastRow(ForecastPoint):
    store: KeyValue | None = None


class NodeForecast(ModelInfo):
    level: str = Field(description="The level: total, or the key names joined by '/'.")
    series: dict[str, KeyValue] = Field(description="The key values asked for ({} for the total).")
    weeks: int
    forecast: list[ForecastPoint]


class WeekForecast(ModelInfo):
    week: dt.date
    forecast: list[WeekForecastRow]


class ScenarioWeek(BaseModel):
    """Changes for one forecast week (or, without ``week``, every week asked for); inputs left
    out keep the baseline's value. Any declared known-future driver goes in ``set`` (a value)
    or ``change`` (a percentage of the baseline's value); Walmart's inputs also have fields."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "week": "2012-05-04", "set": {"feature": 1}, "change": {"price": -10}}})

    week: dt.date | None = Field(None, description="A forecast week as the data dates its weeks; none = every week.")
    set: dict[str, float | bool] = Field(
        default_factory=dict, max_length=50, description="Known-future driver -> value, e.g. {\"deal\": 1}.")
    change: dict[str, float] = Field(
        default_factory=dict, max_length=50,
        description="Known-future driver -> percent change of its baseline value, e.g. {\"price\": -10}.")
    is_holiday: bool | None = Field(None, description="Holiday flag of the week.")
    markdown1: float | None = Field(None, ge=0, le=1e9, description="Planned markdown 1 ($).")
    markdown2: float | None = Field(None, ge=0, le=1e9, description="Planned markdown 2 ($).")
    markdown3: float | None = Field(None, ge=0, le=1e9, description="Planned markdown 3 ($).")
    markdown4: float | None = Field(None, ge=0, le=1e9, description="Planned markdown 4 ($).")
    markdown5: float | None = Field(None, ge=0, le=1e9, description="Planned markdown 5 ($).")
    temperature: float | None = Field(None, ge=-80, le=150, description="Assumed average temperature (°F).")
    fuel_price: float | None = Field(None, ge=0, le=100, description="Assumed fuel price ($/gallon).")
    cpi: float | None = Field(None, ge=0, le=10_000, description="Assumed consumer price index.")
    unemployment: float | None = Field(None, ge=0, le=100, description="Assumed unemployment rate (%).")

    @classmethod
    def legacy_fields(cls) -> frozenset[str]:
        return frozenset(cls.model_fields) - {"week", "set", "change"}

    def overrides(self) -> dict[str, object]:
        """Every input set to a value (the Walmart fields and ``set``)."""
        fixed = {k: v for k, v in self.model_dump(include=set(self.legacy_fields())).items() if v is not None}
        return {**fixed, **self.set}

    @field_validator("set", "change")
    @classmethod
    def _finite(cls, value: dict[str, float]) -> dict[str, float]:
        for name, v in value.items():
            if not isinstance(v, bool) and not math.isfinite(v):
                raise ValueError(f"{name} must be a finite number, got {v}")
            if not name or len(name) > 200:
                raise ValueError("driver names must be 1-200 characters")
        return value

    @field_validator("change")
    @classmethod
    def _sane_change(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in value.items() if not -100 <= v <= 1000}
        if bad:
            raise ValueError(f"change is a percentage between -100 and 1000, got {bad}")
        return value


class PredictRequest(BaseModel):
    """A what-if: the chosen series' forecast with some known-future inputs changed.

    Choose series with ``stores`` (values of the top key), ``dept`` (the second key) and/or
    ``where`` (key -> value or list of values); none of them = every series."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "where": {"brand": "Tropicana Premium 64oz", "store": [2, 5]}, "weeks": 13,
        "scenario": [{"change": {"price": -10}}, {"week": "2012-05-04", "set": {"feature": 1}}]}})

    stores: list[KeyValue] | None = Field(
        None, min_length=1, max_length=MAX_SCENARIO_STORES, description="Top-key values the scenario applies to.")
    dept: KeyValue | None = Field(None, description="Only this value of the second key (Walmart: department).")
    where: dict[str, KeyValue | list[KeyValue]] | None = Field(
        None, max_length=20, description="Key -> value or list of values the scenario applies to.")
    weeks: int = Field(13, ge=1, le=MAX_WEEKS, description="Forecast weeks to return.")
    scenario: list[ScenarioWeek] = Field(
        default_factory=list, max_length=MAX_WEEKS + 1, description="Changes per week; empty = baseline."
    )

    @field_validator("stores")
    @classmethod
    def _valid_stores(cls, value: list[KeyValue] | None) -> list[KeyValue] | None:
        if value is None:
            return value
        bad = [s for s in value if isinstance(s, int) and not 1 <= s <= MAX_STORE]
        if bad:
            raise ValueError(f"store numbers must be between 1 and {MAX_STORE}, got {bad[:5]}")
        if len(set(value)) != len(value):
            raise ValueError("stores must not repeat")
        return value

    @field_validator("dept")
    @classmethod
    def _valid_dept(cls, value: KeyValue | None) -> KeyValue | None:
        if isinstance(value, int) and not 0 <= value <= MAX_STORE:
            raise ValueError(f"dept must be between 0 and {MAX_STORE}, got {value}")
        return value

    @model_validator(mode="after")
    def _unique_weeks(self) -> PredictRequest:
        weeks = [s.week for s in self.scenario]
        if len(set(weeks)) != len(weeks):
            raise ValueError("each week may appear only once in scenario (and one entry without week)")
        return self


class ScenarioPoint(BaseModel):
    """One series and week of a what-if; series of other data carry their keys by name, and
    the scenario's quantiles ``q0.1``... follow the bands."""

    model_config = ConfigDict(extra="allow")

    store: KeyValue | None = None
    dept: KeyValue | None = None
    week: dt.date
    step: int
    baseline: float | None
    scenario: float | None
    difference: float | None = Field(description="scenario - baseline.")
    difference_pct: float | None = Field(description="100 x difference / baseline.")
    lo_80: float | None = Field(description="Scenario 80% band.")
    hi_80: float | None
    lo_95: float | None
    hi_95: float | None


class PredictResponse(ModelInfo):
    weeks: int
    series: int = Field(description="Series the scenario applied to.")
    ignored_inputs: list[str] = Field(
        description="Changed inputs the champion model does not read; they cannot change its forecast."
    )
    total_baseline: float
    total_scenario: float
    total_difference: float
    other_series_difference: float = Field(
        description="Change of every other series' total (e.g. sales a promotion takes from other brands).")
    forecast: list[ScenarioPoint]


class ModelVersionOut(BaseModel):
    version: str
    model_name: str
    run_id: str
    metrics: dict[str, float | None]
    data_fingerprint: str
    created_at: str
    is_champion: bool


class ModelsResponse(BaseModel):
    champion: str | None
    serving: str | None = Field(description="Version this process is serving right now.")
    versions: list[ModelVersionOut]


class AccuracyResponse(BaseModel):
    model_version: str
    model: str
    backtest: dict[str, float | None] = Field(description="Backtest metrics of the champion (MAPE in %).")
    realized: list[dict[str, object]] = Field(
        description="Realized accuracy of past forecasts per store, once actuals arrived; empty before."
    )
    realized_available: bool


class SalesPoint(BaseModel):
    week: dt.date
    sales: float


class SalesResponse(BaseModel):
    store: KeyValue | None = None
    level: str
    series: dict[str, KeyValue] = Field(default_factory=dict, description="The key values asked for.")
    sales: list[SalesPoint] = Field(description="Actual weekly sales (departments summed), oldest first.")


class JobResponse(BaseModel):
    status: str
    detail: dict[str, object]
    model_version: str | None = Field(None, description="Version served after the job.")
