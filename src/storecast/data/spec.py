"""The data declaration: which columns are the series keys, the week, the target and the
drivers, how a week is defined, and which calendar the data lives in.

``DataSpec`` is what a user declares (``storecast.toml`` ``[data]``, the CLI flags
``--keys --date --target --week-ending --week-label --known-future --past-only --static
--country --events ...``, or ``storecast.DataSpec(...)`` in Python). Readers turn a file or
a DataFrame into the canonical frame under it, and the Dataset they return carries the
resolved ``SeriesSpec``: the canonical column names by role plus the ``CalendarSpec``
(week definition, country, retailer events) — everything a model needs to know about the
data besides the numbers. Models store their ``SeriesSpec`` with their artifact, so a
loaded champion places holidays in the same weeks as the data it was trained on.

Canonical frame: the key columns keep their declared names (values as given: text, or
integers when every value is a plain integer), the date becomes ``week`` (the date that
names the week: its first day with ``week_label="start"``, its last with ``"end"``), the
target becomes ``sales``, and covariates keep their declared names. ``walmart`` and
``recruiting`` are presets of the declaration with canonical names ``store``, ``dept``,
``is_holiday``, ``markdown1..5``, ...
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import NoDecode

Weekday = Literal["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
WeekLabel = Literal["start", "end"]
Aggregation = Literal["sum", "mean", "max", "min", "last"]
WEEKDAYS: tuple[str, ...] = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
#: Canonical names the frame itself uses; a declared column cannot take them.
WEEK = "week"
TARGET = "sales"
RESERVED = frozenset({
    WEEK, TARGET, "step", "yhat", "cutoff", "model", "run_id", "kind", "y", "actual", "predicted",
    "level", "series_id", "source_row", "model_version", "prediction", "error", "ape",
})
#: Most key columns a declaration may have (hierarchy depth).
MAX_KEYS = 5
_NAME_RE = re.compile(r"^[^\x00-\x1f,\"]{1,64}$")


# ---- weeks -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WeekSpec:
    """How a week is defined: the weekday it ends on and which day's date names it.

    Walmart's retail week runs Saturday to Friday and is named by its Friday (``FRI``,
    ``end``); Dominick's runs Thursday to Wednesday and is named by its Thursday (``WED``,
    ``start``). Calendar code works on week *end* dates (``end_of``); everything a user sees
    (files, the warehouse, the API, the dashboard) uses the declared label.
    """

    ending: int = 4  # weekday the week ends on, Monday = 0 (Friday)
    label: WeekLabel = "end"

    def __post_init__(self) -> None:
        if not 0 <= self.ending <= 6:
            raise ValueError(f"week ending weekday must be 0..6 (Monday = 0), got {self.ending}")
        if self.label not in ("start", "end"):
            raise ValueError(f"week label must be 'start' or 'end', got {self.label!r}")

    @classmethod
    def parse(cls, ending: str | int, label: str = "end") -> WeekSpec:
        day = WEEKDAYS.index(ending.upper()) if isinstance(ending, str) else int(ending)
        return cls(day, label)  # type: ignore[arg-type]

    @property
    def offset_days(self) -> int:
        """Days from the labelling date to the week's last day."""
        return 0 if self.label == "end" else 6

    @property
    def label_weekday(self) -> int:
        """Weekday of the date that names a week."""
        return (self.ending - self.offset_days) % 7

    @property
    def name(self) -> str:
        return f"{WEEKDAYS[self.ending]}/{self.label}"

    def describe(self) -> str:
        first = WEEKDAYS[(self.ending + 1) % 7]
        return (f"weeks run {first}-{WEEKDAYS[self.ending]} and are dated by their "
                f"{'last' if self.label == 'end' else 'first'} day ({_DAY_NAMES[self.label_weekday]})")

    def end_of(self, labels: Any) -> Any:
        """Week-end dates of week labels (same container type for Timestamps/indexes)."""
        if self.offset_days == 0:
            return labels
        return labels + pd.Timedelta(days=self.offset_days)

    def label_of_end(self, ends: Any) -> Any:
        if self.offset_days == 0:
            return ends
        return ends - pd.Timedelta(days=self.offset_days)

    def end_containing(self, day: dt.date) -> dt.date:
        """The last day of the week holding ``day``."""
        return day + dt.timedelta(days=(self.ending - day.weekday()) % 7)

    def label_containing(self, days: pd.DatetimeIndex | pd.Series) -> pd.DatetimeIndex:
        """The label date of the week holding each day (vectorised)."""
        idx = pd.DatetimeIndex(days).normalize()
        ahead = (self.ending - idx.dayofweek.to_numpy()) % 7
        return idx + pd.to_timedelta(ahead - self.offset_days, unit="D")

    def to_dict(self) -> dict[str, Any]:
        return {"ending": WEEKDAYS[self.ending], "label": self.label}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WeekSpec:
        return cls.parse(data["ending"], data.get("label", "end"))


_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: The Walmart files' week.
FRIDAY_END = WeekSpec(4, "end")


@dataclass(frozen=True)
class CalendarSpec:
    """The calendar a dataset lives in: its week, its country's holidays, the retailer's events.

    ``country`` is an ISO code (``US``, ``DE``, ``GB-SCT``: country and subdivision) read
    through the ``holidays`` package; ``US`` is the US retail calendar storecast has always
    used (Super Bowl, Easter, Memorial Day, Independence Day, back-to-school, Labor Day,
    Thanksgiving, Christmas). ``events`` are the retailer's chain-wide events as
    ``(date, name)`` pairs; a name that recurs in several years is aligned year over year
    like a moving holiday.
    """

    week: WeekSpec = FRIDAY_END
    country: str | None = "US"
    events: tuple[tuple[dt.date, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"week": self.week.to_dict(), "country": self.country,
                "events": [[d.isoformat(), n] for d, n in self.events]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CalendarSpec:
        return cls(WeekSpec.from_dict(data["week"]), data.get("country"),
                   tuple((dt.date.fromisoformat(d), str(n)) for d, n in data.get("events", [])))


#: The calendar of the Walmart files.
US_RETAIL = CalendarSpec()


# ---- what models know about a dataset ------------------------------------------------------------
@dataclass(frozen=True)
class SeriesSpec:
    """The canonical frame's columns by role, and its calendar (what a model is told)."""

    keys: tuple[str, ...]
    known_future: tuple[str, ...] = ()
    past_only: tuple[str, ...] = ()
    static: tuple[str, ...] = ()
    calendar: CalendarSpec = US_RETAIL
    #: how a missing week inside a series is read: "zero" (no sales) or "gap" (no data)
    missing_weeks: Literal["zero", "gap"] = "gap"
    #: the keys' value types: "int" or "text", in key order
    key_types: tuple[str, ...] = ()
    #: events of some series only, as (ISO date, flag column, ((key, value), ...)): their flag
    #: columns are known-future covariates (``data.events``)
    keyed_events: tuple[tuple[str, str, tuple[tuple[str, Any], ...]], ...] = ()
    #: ``walmart`` or ``recruiting`` for the Walmart files (their deliverables keep the
    #: seed's exact shapes), ``None`` for a declared retailer's data
    preset: str | None = None

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("a series spec needs at least one key column")
        if not self.key_types:
            object.__setattr__(self, "key_types", tuple("int" for _ in self.keys))

    @property
    def top(self) -> str:
        """The top level of the hierarchy (the store, usually)."""
        return self.keys[0]

    @property
    def leaf(self) -> str:
        """The most detailed key (a department, a brand)."""
        return self.keys[-1]

    @property
    def level(self) -> Literal["store", "dept"]:
        """``store`` for one key, ``dept`` for several: the data's level as the defaults see it
        (single-key series are aggregates such as whole stores; multi-key series are the noisy,
        sparse leaves under them)."""
        return "store" if len(self.keys) == 1 else "dept"

    @property
    def covariates(self) -> tuple[str, ...]:
        return (*self.known_future, *self.past_only, *self.static)

    @property
    def week(self) -> WeekSpec:
        return self.calendar.week

    def levels(self) -> list[tuple[str, ...]]:
        """Every level of the hierarchy, total first: (), (k1,), (k1, k2), ..."""
        return [self.keys[:i] for i in range(len(self.keys) + 1)]

    def with_keys(self, keys: Sequence[str]) -> SeriesSpec:
        """The spec of an aggregate level (the drivers of the leaves no longer apply)."""
        keys = tuple(keys)
        types = tuple(self.key_types[self.keys.index(k)] for k in keys)
        static = tuple(c for c in self.static if c in _per_key_static(self, keys))
        return replace(self, keys=keys, key_types=types, known_future=(), past_only=(), static=static,
                       missing_weeks="gap")

    def to_dict(self) -> dict[str, Any]:
        return {"keys": list(self.keys), "known_future": list(self.known_future),
                "past_only": list(self.past_only), "static": list(self.static),
                "calendar": self.calendar.to_dict(), "missing_weeks": self.missing_weeks,
                "key_types": list(self.key_types),
                "keyed_events": [[d, c, [list(p) for p in pairs]] for d, c, pairs in self.keyed_events],
                "preset": self.preset}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeriesSpec:
        return cls(
            keys=tuple(data["keys"]), known_future=tuple(data.get("known_future", ())),
            past_only=tuple(data.get("past_only", ())), static=tuple(data.get("static", ())),
            calendar=CalendarSpec.from_dict(data["calendar"]) if "calendar" in data else US_RETAIL,
            missing_weeks=data.get("missing_weeks", "gap"), key_types=tuple(data.get("key_types", ())),
            keyed_events=tuple((d, c, tuple((k, v) for k, v in pairs)) for d, c, pairs in data.get("keyed_events", [])),
            preset=data.get("preset"),
        )


def _per_key_static(spec: SeriesSpec, keys: tuple[str, ...]) -> tuple[str, ...]:
    # Static attributes of a store stay meaningful for the store's total (Walmart's store
    # type and size); they are recorded per top key, so they survive aggregation to it.
    return spec.static if keys and keys[0] == spec.keys[0] else ()


# ---- presets ---------------------------------------------------------------------------------------
MARKDOWNS = tuple(f"markdown{i}" for i in range(1, 6))
PAST_ONLY_WALMART = ("temperature", "fuel_price", "cpi", "unemployment")
WALMART_SPEC = SeriesSpec(
    keys=("store",), known_future=("is_holiday",), past_only=PAST_ONLY_WALMART,
    calendar=US_RETAIL, missing_weeks="gap", preset="walmart",
)
RECRUITING_SPEC = SeriesSpec(
    keys=("store", "dept"), known_future=("is_holiday", *MARKDOWNS), past_only=PAST_ONLY_WALMART,
    static=("store_type", "store_size"), calendar=US_RETAIL, missing_weeks="zero", key_types=("int", "int"),
    preset="recruiting",
)


def legacy_spec(frame: pd.DataFrame) -> SeriesSpec:
    """The spec of a canonical Walmart-shaped frame (``store`` [and ``dept``] keys, the
    presets' covariate names), for code and tests that build such frames by hand."""
    cols = set(frame.columns)
    dept = "dept" in cols
    return SeriesSpec(
        keys=("store", "dept") if dept else ("store",),
        known_future=tuple(c for c in ("is_holiday", *MARKDOWNS) if c in cols),
        past_only=tuple(c for c in PAST_ONLY_WALMART if c in cols),
        static=tuple(c for c in ("store_type", "store_size") if c in cols),
        calendar=US_RETAIL, missing_weeks="zero" if dept else "gap", preset="recruiting" if dept else "walmart",
    )


# ---- the user's declaration ---------------------------------------------------------------------------
def _split(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class DataSpec(BaseModel):
    """The data declaration (``[data]`` in storecast.toml, the same-named CLI flags).

    Only ``keys``, ``date`` and ``target`` are needed for a new retailer's file; the rest
    has defaults or is inferred (the week from the dates, covariates from nothing: a column
    is used only when declared).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: Annotated[list[str], NoDecode] = Field(default_factory=list, description="Series key columns, top of the hierarchy first (store,dept).")
    date: str = Field("date", description="Column holding the date.")
    date_format: str | None = Field(None, description="strftime format of the dates, e.g. %d.%m.%Y; default: detected.")
    target: str = Field("sales", description="Column holding the sales to forecast.")
    week_ending: Weekday | None = Field(None, description="Weekday a week ends on (MON..SUN); default: inferred from the dates.")
    week_label: WeekLabel = Field("end", description="Whether a date names the first (start) or last (end) day of its week.")
    known_future: Annotated[list[str], NoDecode] = Field(default_factory=list, description="Columns planned ahead (promotions, prices, events, open days).")
    past_only: Annotated[list[str], NoDecode] = Field(default_factory=list, description="Columns only known up to the forecast origin (weather, customers, CPI).")
    static: Annotated[list[str], NoDecode] = Field(default_factory=list, description="Per-series attributes (store type, size, demographics).")
    static_file: Path | None = Field(None, description="CSV of static attributes joined on a key column it shares with the data.")
    future_file: Path | None = Field(None, description="CSV of known-future values for the forecast weeks.")
    assume_future: Literal["last", "zero", "strict"] | None = Field(
        None, description="What to assume for known-future values the data does not give for forecast weeks: "
        "last, zero or strict (an error); unset: last, with a warning, when the data gives none at all.")
    country: str | None = Field(None, description="Country (and subdivision) of the holidays: US, DE, GB-SCT, ...")
    events_file: Path | None = Field(None, description="CSV of the retailer's events: date,name[,key columns].")
    aggregate: dict[str, Aggregation] = Field(
        default_factory=dict, description="Daily data: how a covariate becomes weekly (sum, mean, max, min, last); default by kind.")
    missing_weeks: Literal["auto", "zero", "gap"] = Field(
        "auto", description="A week missing inside a series: zero sales, a gap in the data, or auto (zero for multi-key data).")

    @field_validator("keys", "known_future", "past_only", "static", mode="before")
    @classmethod
    def _comma_lists(cls, value: object) -> object:
        return _split(value)

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return value.strip().upper() if value else None

    @field_validator("week_ending", mode="before")
    @classmethod
    def _weekday(cls, value: object) -> object:
        return value.strip().upper()[:3] if isinstance(value, str) else value

    @field_validator("week_label", "assume_future", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check(self) -> DataSpec:
        if len(self.keys) > MAX_KEYS:
            raise ValueError(f"at most {MAX_KEYS} key columns, got {len(self.keys)}: {', '.join(self.keys)}")
        named = [*self.keys, *self.known_future, *self.past_only, *self.static]
        for name in named:
            if not _NAME_RE.match(name):
                raise ValueError(f"column name {name!r} is not allowed (1-64 characters, no commas or quotes)")
            if name in RESERVED:
                raise ValueError(f"column {name!r} is a name storecast uses itself; rename it in the file")
        seen: set[str] = set()
        for name in named:
            if name in seen:
                raise ValueError(f"column {name!r} is declared twice (keys and drivers must be distinct)")
            seen.add(name)
        if self.date in seen or self.target in seen or self.date == self.target:
            raise ValueError("the date, the target, the keys and the drivers must be different columns")
        if self.date_format is not None and "%" not in self.date_format:
            raise ValueError(f"date_format {self.date_format!r} is not a strftime format such as %Y-%m-%d")
        return self

    @property
    def declared(self) -> bool:
        """True when keys are declared (the generic reader applies), False for presets."""
        return bool(self.keys)

    def week_spec(self, inferred_ending: int | None = None) -> WeekSpec:
        if self.week_ending is not None:
            return WeekSpec.parse(self.week_ending, self.week_label)
        if inferred_ending is None:
            raise ValueError("the week ending day is unknown")
        return WeekSpec(inferred_ending, self.week_label)

    def merged(self, **overrides: object) -> DataSpec:
        """This declaration with the given fields replaced (``None`` values are ignored)."""
        clean = {k: v for k, v in overrides.items() if v is not None}
        if not clean:
            return self
        return type(self).model_validate({**self.model_dump(), **clean})


def slug(name: str) -> str:
    """A holiday or event name as an identifier: ``New Year's Day`` -> ``new_years_day``."""
    text = re.sub(r"[^0-9a-z]+", "_", name.lower().replace("'", "")).strip("_")
    return text or "event"


def as_key_values(values: Iterable[object]) -> np.ndarray:
    """Key values as given: int64 when every value is a plain integer without leading zeros,
    else text (so ``007`` stays ``007`` and ``CA_1`` works)."""
    arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=object)
    text = pd.Series(arr, dtype=object).astype(str).str.strip()
    plain = text.str.fullmatch(r"-?(0|[1-9]\d{0,17})")
    if len(text) and bool(plain.all()):
        return text.astype("int64").to_numpy()
    return text.to_numpy(dtype=object)


__all__ = [
    "FRIDAY_END", "RECRUITING_SPEC", "US_RETAIL", "WALMART_SPEC", "WEEKDAYS", "CalendarSpec", "DataSpec",
    "SeriesSpec", "WeekSpec", "as_key_values", "legacy_spec", "slug",
]
