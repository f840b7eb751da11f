"""Any retailer's sales under a declaration (``DataSpec``): a file or a DataFrame in, a
canonical ``Dataset`` out, or an error naming the flag, the file, the row and the value.

Steps, in order: the declared columns are read (keys as given, the date with
``--date-format`` or detected, the target as a number, drivers as numbers or text); daily
(sub-weekly) rows are aggregated to the declared weeks (``data.weekly``); the week is
inferred when every date falls on one weekday; static attributes are joined from
``--static-file``; the retailer's events are placed in weeks (``data.events``); rows after
the last actual week (no target) become the known-future values of the forecast weeks,
together with ``--future FILE``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from storecast.data.events import add_event_flags, event_columns, read_events
from storecast.data.parsing import (
    DateRule,
    Kind,
    ReadFailure,
    _parquet_header,
    _read_file,
    _sniff_header,
)
from storecast.data.quality import Issue
from storecast.data.schema import SOURCE_ROW, TARGET, WEEK, Dataset
from storecast.data.spec import CalendarSpec, DataSpec, SeriesSpec, WeekSpec, as_key_values
from storecast.data.weekly import is_sub_weekly, to_weeks
from storecast.errors import DataError

#: The week of sub-weekly data when none is declared: ISO weeks (Monday to Sunday).
DEFAULT_DAILY_ENDING = 6

_FLAGS = (("keys", "--keys"), ("known_future", "--known-future"), ("past_only", "--past-only"), ("static", "--static"))


def _header(path: Path) -> list[str]:
    if path.suffix.lower() in {".parquet", ".pq"}:
        return _parquet_header(path, str(path))
    return _sniff_header(path)


def _date_rule(spec: DataSpec) -> DateRule:
    return DateRule(format=spec.date_format, weekday=None,
                    hint="pass --date-format with the file's format (e.g. --date-format %d/%m/%Y)")


def _check_declared(header: Sequence[str], spec: DataSpec, display: str, static_from_file: set[str]) -> None:
    """Every declared column must be in the file: one error per flag, naming it and the header."""
    have = {h.strip().lower() for h in header}
    problems: list[Issue] = []
    for field, flag in (("date", "--date"), ("target", "--target")):
        name = getattr(spec, field)
        if name.lower() not in have:
            problems.append(Issue("missing_columns", "error",
                                  f"{flag} column {name!r} is not in the file; its columns are {', '.join(header)}",
                                  [1], file=display))
    for field, flag in _FLAGS:
        for name in getattr(spec, field):
            if name.lower() not in have and not (field == "static" and name in static_from_file):
                problems.append(Issue("missing_columns", "error",
                                      f"{flag} column {name!r} is not in the file; its columns are {', '.join(header)}",
                                      [1], file=display))
    if problems:
        raise ReadFailure(problems, display)


def read_declared(path: Path, spec: DataSpec) -> Dataset:
    """Read ``path`` (CSV or Parquet) under the declaration ``spec``; ``DataError`` if unreadable."""
    display = str(path)
    if not spec.keys:
        raise DataError("no --keys declared: name the series key columns (e.g. --keys store,dept)", path=display)
    _check_country(spec)
    static_cols, static_frame, static_notes = _read_static(spec)
    header = _header(path)
    _check_declared(header, spec, display, set(static_cols))
    in_file = {h.strip().lower() for h in header}
    mapping: dict[str, str] = {k: k for k in spec.keys}
    mapping[spec.date] = WEEK
    mapping[spec.target] = TARGET
    covariates = [c for c in (*spec.known_future, *spec.past_only, *spec.static) if c.lower() in in_file]
    mapping.update({c: c for c in covariates})
    kinds: dict[str, Kind] = {**{k: "key" for k in spec.keys}, WEEK: "date", TARGET: "float", **{c: "auto" for c in covariates}}
    # match_columns maps file names case-insensitively; give it the file's spelling
    by_lower = {h.strip().lower(): h for h in header}
    file_mapping = {by_lower[src.lower()]: canon for src, canon in mapping.items()}
    cols, notes = _read_file(path, file_mapping, list(file_mapping), kinds=kinds, dates=_date_rule(spec))
    lines = cols.pop(SOURCE_ROW)
    frame = pd.DataFrame(cols, copy=False)
    return canonicalize(frame, spec, source=display, lines=lines, notes=[*notes, *static_notes],
                        static=(static_cols, static_frame))


def dataset_from_dataframe(df: pd.DataFrame, spec: DataSpec, source: str = "DataFrame") -> Dataset:
    """A pandas DataFrame under the declaration, as ``read_declared`` reads a file."""
    if not spec.keys:
        raise DataError("no keys declared: DataSpec(keys=[...]) names the series key columns")
    _check_country(spec)
    roles = [*((k, "keys") for k in spec.keys), (spec.date, "date"), (spec.target, "target"),
             *((c, "known_future") for c in spec.known_future), *((c, "past_only") for c in spec.past_only)]
    missing = [f"{c!r} ({role})" for c, role in roles if c not in df.columns]
    static_cols, static_frame, static_notes = _read_static(spec)
    missing += [f"{c!r} (static)" for c in spec.static if c not in df.columns and c not in static_cols]
    if missing:
        raise DataError(f"declared column(s) {', '.join(missing)} not in the DataFrame; it has "
                        f"{', '.join(map(str, df.columns))}")
    frame = pd.DataFrame({k: as_key_values(df[k].to_numpy()) for k in spec.keys})
    dates = df[spec.date]
    if pd.api.types.is_datetime64_any_dtype(dates):
        frame[WEEK] = pd.to_datetime(dates).dt.tz_localize(None) if getattr(dates.dt, "tz", None) else pd.to_datetime(dates)
    else:
        frame[WEEK] = pd.to_datetime(dates.astype(str).str.strip(), format=spec.date_format or "ISO8601", errors="coerce")
        bad = frame[WEEK].isna()
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DataError(f"column {spec.date!r}, row {first}: {dates.iloc[first]!r} is not a date"
                            + ("" if spec.date_format else "; pass date_format"))
    frame[TARGET] = pd.to_numeric(df[spec.target], errors="coerce").astype("float64")
    for c in (*spec.known_future, *spec.past_only, *spec.static):
        if c in df.columns:
            values = df[c]
            frame[c] = values.astype("float64") if (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)) else values.astype(object)
    return canonicalize(frame, spec, source=source, lines=None, notes=static_notes, static=(static_cols, static_frame))


def _check_country(spec: DataSpec) -> None:
    if not spec.country or spec.country == "US":
        return
    from storecast.features.holidays import check_country

    try:
        check_country(spec.country)
    except ValueError as exc:
        raise DataError(f"--country {spec.country}: {exc}") from None


def _read_static(spec: DataSpec) -> tuple[list[str], pd.DataFrame | None, list[Issue]]:
    """The static attributes file: (its attribute columns, the frame, notes)."""
    path = spec.static_file
    if path is None:
        return [], None, []
    display = str(path)
    if not Path(path).is_file():
        raise DataError("--static-file not found", path=display)
    header = [h.strip() for h in _header(Path(path))]
    shared = [k for k in spec.keys if k.lower() in {h.lower() for h in header}]
    if not shared:
        raise ReadFailure([Issue("missing_columns", "error",
                                 f"--static-file shares no key column with the data (keys: {', '.join(spec.keys)}; "
                                 f"its columns: {', '.join(header)})", [1], file=display)], display)
    by_lower = {h.lower(): h for h in header}
    attrs = [h for h in header if h.lower() not in {k.lower() for k in shared}]
    if spec.static:
        wanted = [c for c in spec.static if c.lower() in by_lower]
        attrs = [by_lower[c.lower()] for c in wanted] if wanted else attrs
    mapping = {by_lower[k.lower()]: k for k in shared} | {a: a for a in attrs}
    kinds: dict[str, Kind] = {**{k: "key" for k in shared}, **{a: "auto" for a in attrs}}
    cols, notes = _read_file(Path(path), mapping, list(mapping), kinds=kinds)
    lines = cols.pop(SOURCE_ROW)
    frame = pd.DataFrame(cols)
    dup = frame.duplicated(shared, keep=False)
    if dup.any():
        rows = sorted(lines[dup.to_numpy()].tolist())
        raise ReadFailure([Issue("duplicates", "error", f"--static-file: {', '.join(shared)} appear more than once "
                                 f"(rows {', '.join(map(str, rows[:5]))})", rows, file=display)], display)
    return attrs, frame, notes


def _join_static(frame: pd.DataFrame, static: pd.DataFrame, attrs: list[str], keys: Sequence[str]) -> tuple[pd.DataFrame, list[Issue]]:
    shared = [k for k in keys if k in static.columns]
    left, right = frame, static
    for k in shared:  # integer keys on one side, text on the other: compare as text
        if left[k].dtype != right[k].dtype:
            left = left.assign(**{k: left[k].astype(str)})
            right = right.assign(**{k: right[k].astype(str)})
    merged = left.drop(columns=[a for a in attrs if a in left.columns]).merge(right[[*shared, *attrs]], on=shared, how="left")
    merged = merged.assign(**{k: frame[k].to_numpy() for k in shared})
    issues = []
    missing = merged[attrs].isna().all(axis=1) if attrs else pd.Series(False, index=merged.index)
    if missing.any():
        n = merged.loc[missing, list(keys)].drop_duplicates().shape[0]
        issues.append(Issue("static_missing", "warning", f"{n} series have no row in --static-file (their "
                            f"attributes are missing: {', '.join(attrs)})", count=n))
    return merged, issues


def canonicalize(
    frame: pd.DataFrame,
    spec: DataSpec,
    *,
    source: str,
    lines: np.ndarray | None,
    notes: Sequence[Issue] = (),
    static: tuple[list[str], pd.DataFrame | None] = ([], None),
) -> Dataset:
    """Canonical columns (keys, ``week`` = the date, ``sales``, drivers) -> the ``Dataset``."""
    issues = list(notes)
    keys = list(spec.keys)
    static_cols, static_frame = static
    drivers = [c for c in (*spec.known_future, *spec.past_only) if c in frame.columns]
    statics = [c for c in spec.static if c in frame.columns]
    sub_weekly, modal = is_sub_weekly(frame[WEEK])
    if sub_weekly:
        if spec.week_ending is None:
            issues.append(Issue("week", "warning", "daily data without --week-ending: aggregated to weeks ending on "
                                "Sunday (Monday to Sunday); declare --week-ending and --week-label to choose"))
        week = spec.week_spec(DEFAULT_DAILY_ENDING)
        per_series = frame.groupby(keys, sort=False)[statics].first().reset_index() if statics else None
        agg = to_weeks(frame.drop(columns=statics), keys, week, drivers, lines=lines, how=dict(spec.aggregate), display=source)
        frame, lines = agg.frame, agg.lines
        if per_series is not None:
            frame = frame.merge(per_series, on=keys, how="left")
        issues += agg.issues
    else:
        ending = modal if spec.week_label == "end" else (modal - 1) % 7
        week = spec.week_spec(ending)
        if spec.week_ending is None:
            issues.append(Issue("week", "info", f"week inferred from the dates: {week.describe()}"))
    if static_frame is not None:
        frame, found = _join_static(frame, static_frame, static_cols, keys)
        issues += found
        statics = list(dict.fromkeys([*statics, *static_cols]))
    chain_events: list = []
    keyed: list = []
    if spec.events_file is not None:
        chain_events, keyed = read_events(Path(spec.events_file), spec, keys)
    key_types = tuple("int" if pd.api.types.is_integer_dtype(frame[k]) else "text" for k in keys)
    missing: Literal["zero", "gap"] = (spec.missing_weeks if spec.missing_weeks != "auto"
                                       else infer_missing_weeks(frame, keys))
    series_spec = SeriesSpec(
        keys=tuple(keys), known_future=tuple(c for c in spec.known_future if c in frame.columns),
        past_only=tuple(c for c in spec.past_only if c in frame.columns), static=tuple(statics),
        calendar=CalendarSpec(week, spec.country, tuple(sorted(chain_events))), missing_weeks=missing,
        key_types=key_types, keyed_events=tuple(keyed),
    )
    if keyed:
        frame = add_event_flags(frame, series_spec)
        series_spec = replace(series_spec, known_future=(*series_spec.known_future, *event_columns(series_spec)))
    frame, lines, future = _split_future(frame, lines, series_spec)
    if spec.future_file is not None:
        future = _with_future_file(future, Path(spec.future_file), spec, series_spec)
    order = [*keys, WEEK, TARGET, *[c for c in frame.columns if c not in (*keys, WEEK, TARGET)]]
    return Dataset.from_frame(frame[order].reset_index(drop=True), source, spec=series_spec,
                              source_rows=lines, future=future, notes=tuple(issues))


#: Weeks next to a gap selling under this share of the series' median look like the run-up
#: to (or the tail of) a pause in sales, not like normal weeks with missing data.
_LOW_SHARE = 0.25
#: ... and when more than this share of them do, missing weeks are read as zero sales.
_ZERO_GAPS = 0.15
_MIN_GAP_WEEKS = 30


def infer_missing_weeks(frame: pd.DataFrame, keys: Sequence[str]) -> Literal["zero", "gap"]:
    """``zero`` when weeks missing inside series look like weeks without sales, else ``gap``.

    Walmart's departments leave out weeks with no sales: the weeks next to a gap are often
    tiny (31% below a quarter of the series' median). Dominick's leaves out weeks with no
    data: the weeks next to a gap are ordinary (3%). With fewer than 30 such weeks to judge,
    multi-key data reads missing weeks as zero and single-key data as gaps.
    """
    actual = frame[frame[TARGET].notna()].sort_values([*keys, WEEK])
    grouped = actual.groupby(list(keys), sort=False)
    step = grouped[WEEK].diff().dt.days
    after = (step > 7).to_numpy()
    before = np.r_[after[1:], False]
    near = after | before
    if near.sum() < _MIN_GAP_WEEKS:
        return "zero" if len(keys) > 1 else "gap"
    median = grouped[TARGET].transform("median").to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = actual[TARGET].to_numpy()[near] / median[near]
    low = float(np.mean(np.nan_to_num(ratio, nan=0.0) < _LOW_SHARE))
    return "zero" if low > _ZERO_GAPS else "gap"


def _split_future(frame: pd.DataFrame, lines: np.ndarray | None, spec: SeriesSpec) -> tuple[pd.DataFrame, np.ndarray | None, pd.DataFrame | None]:
    """Rows after the last actual week without a target: the forecast weeks' drivers."""
    has = frame[TARGET].notna()
    if has.all() or not has.any():
        return frame, lines, None
    last = frame.loc[has, WEEK].max()
    ahead = (~has & (frame[WEEK] > last)).to_numpy()
    if not ahead.any():
        return frame, lines, None
    future = frame.loc[ahead, [*spec.keys, WEEK, *spec.known_future]].reset_index(drop=True)
    keep = ~ahead
    return frame[keep].reset_index(drop=True), (None if lines is None else lines[keep]), future


def _with_future_file(future: pd.DataFrame | None, path: Path, spec: DataSpec, series: SeriesSpec) -> pd.DataFrame:
    """Known-future values from ``--future FILE`` (its rows win over the data's future rows)."""
    display = str(path)
    if not path.is_file():
        raise DataError("--future file not found", path=display)
    header = _header(path)
    by_lower = {h.strip().lower(): h for h in header}
    need = [*spec.keys, spec.date]
    missing = [c for c in need if c.lower() not in by_lower]
    if missing:
        raise ReadFailure([Issue("missing_columns", "error", f"--future file lacks column(s) {', '.join(missing)}; "
                                 f"its columns are {', '.join(header)}", [1], file=display)], display)
    drivers = [c for c in series.known_future if c.lower() in by_lower]
    mapping = {by_lower[k.lower()]: k for k in spec.keys} | {by_lower[spec.date.lower()]: WEEK} | {by_lower[c.lower()]: c for c in drivers}
    kinds: dict[str, Kind] = {**{k: "key" for k in spec.keys}, WEEK: "date", **{c: "auto" for c in drivers}}
    cols, _ = _read_file(path, mapping, list(mapping), kinds=kinds, dates=_date_rule(spec))
    cols.pop(SOURCE_ROW)
    given = pd.DataFrame(cols)
    week: WeekSpec = series.week
    if is_sub_weekly(given[WEEK])[0]:
        agg = to_weeks(given.assign(**{TARGET: np.nan}), list(spec.keys), week, drivers, how=dict(spec.aggregate),
                       display=display)
        given = agg.frame.drop(columns=[TARGET])
    given = add_event_flags(given, series) if series.keyed_events else given
    if future is None:
        return given.reset_index(drop=True)
    both = pd.concat([given, future], ignore_index=True)
    return both.drop_duplicates([*spec.keys, WEEK], keep="first").reset_index(drop=True)
