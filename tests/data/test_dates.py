"""Date-format detection: properties over generated dates, and the cases that must be refused."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from storecast.data.readers import DATE_FORMATS, DateFormatError, detect_date_format, parse_dates

FRIDAY0 = dt.date(2000, 1, 7)
fridays = st.integers(0, 52 * 30).map(lambda k: FRIDAY0 + dt.timedelta(weeks=k))
any_day = st.dates(dt.date(2000, 1, 1), dt.date(2030, 12, 31))


def _fmt(days: list[dt.date], name: str) -> list[str]:
    return [d.strftime(DATE_FORMATS[name]) for d in days]


@given(days=st.lists(fridays, min_size=1, max_size=40), name=st.sampled_from(sorted(DATE_FORMATS)))
def test_detection_never_returns_a_misreading(days: list[dt.date], name: str) -> None:
    """Whatever it decides, detection either refuses or reads back the very same dates."""
    text = _fmt(days, name)
    try:
        found = detect_date_format(text)
    except DateFormatError as exc:
        assert exc.check == "ambiguous_dates"
        return
    assert found == name
    assert list(parse_dates(text, found).date) == days


@given(days=st.lists(fridays, min_size=1, max_size=40))
def test_iso_and_unambiguous_day_first_fridays_are_always_detected(days: list[dt.date]) -> None:
    assert detect_date_format(_fmt(days, "yyyy-mm-dd")) == "yyyy-mm-dd"
    if any(d.day > 12 for d in days):
        assert detect_date_format(_fmt(days, "dd-mm-yyyy")) == "dd-mm-yyyy"


@given(days=st.lists(any_day, min_size=1, max_size=20), name=st.sampled_from(sorted(DATE_FORMATS)))
def test_parse_round_trips(days: list[dt.date], name: str) -> None:
    assert list(parse_dates(_fmt(days, name), name).date) == days


@given(
    a=st.lists(fridays, min_size=1, max_size=10),
    b=st.lists(fridays, min_size=1, max_size=10),
    pair=st.sampled_from([("dd-mm-yyyy", "yyyy-mm-dd"), ("yyyy-mm-dd", "dd/mm/yy"), ("dd/mm/yy", "dd-mm-yyyy")]),
)
def test_a_file_mixing_formats_is_refused(a: list[dt.date], b: list[dt.date], pair: tuple[str, str]) -> None:
    with pytest.raises(DateFormatError) as info:
        detect_date_format(_fmt(a, pair[0]) + _fmt(b, pair[1]))
    assert info.value.check == "mixed_date_formats"
    assert set(info.value.bad) <= set(_fmt(a, pair[0]) + _fmt(b, pair[1]))


def test_one_week_files_are_settled_by_the_friday_rule() -> None:
    # 05-02-2010 is Friday 5 Feb as dd-mm, a Sunday as mm-dd: a one-week ingest file is fine
    assert detect_date_format(["05-02-2010"]) == "dd-mm-yyyy"
    # 03-12-2010 is a Friday both ways (3 Dec, 12 Mar): refuse rather than guess
    with pytest.raises(DateFormatError, match="ambiguous") as info:
        detect_date_format(["03-12-2010"])
    assert info.value.check == "ambiguous_dates"


@pytest.mark.parametrize(("values", "check"), [
    (["2010-02-05", "2010/02/12"], "dates"),
    (["31-02-2010"], "dates"),
    (["Feb 5 2010"], "dates"),
    (["02-19-2010", "02-26-2010"], "dates"),  # US order: refused, not swapped
])
def test_unreadable_dates_are_refused(values: list[str], check: str) -> None:
    with pytest.raises(DateFormatError) as info:
        detect_date_format(values)
    assert info.value.check == check and info.value.bad


def test_parse_is_strict() -> None:
    with pytest.raises(ValueError):
        parse_dates(["2010-02-30"], "yyyy-mm-dd")
    assert parse_dates([" 5-2-2010 "], "dd-mm-yyyy")[0] == pd.Timestamp("2010-02-05")
