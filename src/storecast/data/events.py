"""The retailer's own events (``--events FILE``: ``date,name[,key columns]``), placed in weeks.

An event without key columns is chain-wide: it joins the calendar (``CalendarSpec.events``)
and is aligned year over year like a moving holiday when its name recurs. An event with
key columns (``2012-03-14,store opening,17``) concerns only the series matching those
keys: it becomes a known-future flag column ``event_<name>`` (1 in the week holding the
date), so models that read drivers learn its effect, for history and forecast weeks alike.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from storecast.data.quality import Issue
from storecast.data.spec import DataSpec, SeriesSpec, WeekSpec, as_key_values, slug

KeyedEvent = tuple[str, str, tuple[tuple[str, object], ...]]  # iso date, flag column, key pairs


def read_events(path: Path, spec: DataSpec, keys: Sequence[str]) -> tuple[list[tuple[dt.date, str]], list[KeyedEvent]]:
    """Chain-wide events and keyed events from an events file (``DataError`` on bad rows)."""
    from storecast.data.parsing import DateRule, ReadFailure, _read_file, _sniff_header

    display = str(path)
    if not path.is_file():
        raise ReadFailure([Issue("missing_file", "error", f"--events file not found: {path}", file=display)], display)
    header = [h.strip() for h in _sniff_header(path)]
    lower = {h.lower(): h for h in header}
    for need in ("date", "name"):
        if need not in lower:
            raise ReadFailure([Issue("missing_columns", "error",
                                     f"--events file needs columns date,name[,key columns]; its header is {', '.join(header)}",
                                     [1], file=display)], display)
    key_cols = [k for k in keys if k.lower() in lower]
    mapping = {lower["date"]: "week", lower["name"]: "name", **{lower[k.lower()]: k for k in key_cols}}
    kinds = {"week": "date", "name": "str", **{k: "key" for k in key_cols}}
    rule = DateRule(format=spec.date_format, weekday=None,
                    hint="write the events' dates as yyyy-mm-dd (or pass --date-format)")
    cols, _ = _read_file(path, mapping, list(mapping), kinds=kinds, dates=rule)  # type: ignore[arg-type]
    names = cols["name"]
    lines = cols["source_row"]
    empty = np.array([not str(n or "").strip() for n in names])
    if empty.any():
        rows = lines[empty].tolist()
        raise ReadFailure([Issue("missing_values", "error", f"column 'name', row {rows[0]}: an event needs a name",
                                 rows, file=display)], display)
    days = pd.DatetimeIndex(cols["week"])
    chain: list[tuple[dt.date, str]] = []
    keyed: list[KeyedEvent] = []
    for i in range(len(names)):
        name = str(names[i]).strip()
        pairs = tuple((k, cols[k][i]) for k in key_cols)
        if pairs:
            keyed.append((days[i].date().isoformat(), "event_" + slug(name), pairs))
        else:
            chain.append((days[i].date(), name))
    return chain, keyed


def event_columns(spec: SeriesSpec) -> list[str]:
    """The flag columns keyed events add, in first-seen order."""
    return list(dict.fromkeys(col for _day, col, _pairs in spec.keyed_events))


def add_event_flags(frame: pd.DataFrame, spec: SeriesSpec, week: WeekSpec | None = None) -> pd.DataFrame:
    """``frame`` (keys, ``week``) with a 0/1 column per keyed event of ``spec``.

    A flag is 1 in the week holding the event's date for every series whose keys match the
    event's key columns (an event keyed by store alone flags every series of that store).
    """
    events = spec.keyed_events
    if not events:
        return frame
    week = week or spec.week
    out = frame.copy()
    for col in event_columns(spec):
        out[col] = 0.0
    labels = out["week"]
    for day, col, pairs in events:
        label = week.label_containing(pd.DatetimeIndex([pd.Timestamp(day)]))[0]
        hit = (labels == label).to_numpy()
        for key, value in pairs:
            column = out[key]
            if pd.api.types.is_integer_dtype(column):
                converted = as_key_values([value])[0]
                hit &= (column == converted).to_numpy() if isinstance(converted, (int, np.integer)) else False
            else:
                hit &= (column.astype(str) == str(value)).to_numpy()
        out.loc[hit, col] = 1.0
    return out
