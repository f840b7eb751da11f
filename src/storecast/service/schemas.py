"""Request and response models of the API (pydantic v2), with limits on every input.

Responses mirror what the hot paths serialise by hand (see ``state.py``), so the OpenAPI
schema documents exactly the bytes clients receive.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_WEEKS = 52
MAX_STORE = 1_000_000
MAX_SCENARIO_STORES = 100


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
    store: int
    dept: int | None = None
    last_actual_week: dt.date | None = Field(description="Newest week with actual sales in the warehouse.")


class StoresResponse(BaseModel):
    level: Literal["store", "dept"]
    stores: list[StoreRow]


class ForecastPoint(BaseModel):
    dept: int | None = None
    week: dt.date = Field(description="Friday ending the Saturday-Friday retail week.")
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
    store: int


class WeekForecast(ModelInfo):
    week: dt.date
    forecast: list[WeekForecastRow]


class ScenarioWeek(BaseModel):
    """Overrides for one forecast week; fields left out keep the baseline's value."""

    model_config = ConfigDict(extra="forbid")

    week: dt.date = Field(description="A forecast week (a Friday), e.g. the cutoff + 1 week.")
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

    def overrides(self) -> dict[str, object]:
        return {k: v for k, v in self.model_dump(exclude={"week"}).items() if v is not None}

    @field_validator("week")
    @classmethod
    def _friday(cls, value: dt.date) -> dt.date:
        if value.weekday() != 4:
            raise ValueError(
                f"{value.isoformat()} is a {value:%A}; weeks are dated by the Friday that ends them"
            )
        return value


class PredictRequest(BaseModel):
    """A what-if: the chosen stores' forecast with some known-future inputs changed."""

    model_config = ConfigDict(extra="forbid")

    stores: list[int] = Field(
        min_length=1, max_length=MAX_SCENARIO_STORES, description="Stores the scenario applies to."
    )
    dept: int | None = Field(None, ge=0, le=MAX_STORE, description="Only this department (department data).")
    weeks: int = Field(13, ge=1, le=MAX_WEEKS, description="Forecast weeks to return.")
    scenario: list[ScenarioWeek] = Field(
        default_factory=list, max_length=MAX_WEEKS, description="Overrides per week; empty = baseline."
    )

    @field_validator("stores")
    @classmethod
    def _valid_stores(cls, value: list[int]) -> list[int]:
        bad = [s for s in value if not 1 <= s <= MAX_STORE]
        if bad:
            raise ValueError(f"store numbers must be between 1 and {MAX_STORE}, got {bad[:5]}")
        if len(set(value)) != len(value):
            raise ValueError("stores must not repeat")
        return value

    @model_validator(mode="after")
    def _unique_weeks(self) -> PredictRequest:
        weeks = [s.week for s in self.scenario]
        if len(set(weeks)) != len(weeks):
            raise ValueError("each week may appear only once in scenario")
        return self


class ScenarioPoint(BaseModel):
    store: int
    dept: int | None = None
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
    ignored_inputs: list[str] = Field(
        description="Overridden inputs the champion model does not read; they cannot change its forecast."
    )
    total_baseline: float
    total_scenario: float
    total_difference: float
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
    store: int
    level: Literal["store", "dept"]
    sales: list[SalesPoint] = Field(description="Actual weekly sales (departments summed), oldest first.")


class JobResponse(BaseModel):
    status: str
    detail: dict[str, object]
    model_version: str | None = Field(None, description="Version served after the job.")
