"""Readers: every format loads, and every kind of corrupt file fails naming file, row, problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from data_files import N_WEEKS, csv_lines, seed_frame, write_lines, write_recruiting
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from storecast.config import Settings
from storecast.data.readers import ReadFailure, load, read_history
from storecast.data.schema import DEPT, HOLIDAY, STORE, TARGET, WEEK
from storecast.data.spec import DataSpec
from storecast.errors import DataError


def _fails(path: Path, settings: Settings, check: str, row: int | None, fmt: str | None = None) -> ReadFailure:
    with pytest.raises(ReadFailure) as info:
        read_history(path, settings, fmt)
    exc = info.value
    assert exc.issues[0].check == check, exc.issues
    assert exc.row == row, exc.message
    assert str(path.name) in exc.message
    if row is not None:
        assert f"row {row}" in exc.message
    return exc


# ---- good files ------------------------------------------------------------------------------


def test_seed_format_loads_with_types_and_source_lines(walmart_file: Path, settings: Settings) -> None:
    ds = read_history(walmart_file, settings)
    assert ds.level == "store" and len(ds.frame) == 3 * N_WEEKS
    f = ds.frame
    assert (f[STORE].dtype, f[WEEK].dtype, f[TARGET].dtype, f[HOLIDAY].dtype) == (
        np.dtype("int64"), np.dtype("datetime64[ns]"), np.dtype("float64"), np.dtype("bool"))
    assert "source_row" not in f.columns
    # store 2's first week is the (N_WEEKS + 1)-th record: file line N_WEEKS + 2
    first_of_2 = int(np.flatnonzero(f[STORE].to_numpy() == 2)[0])
    assert ds.source_rows[first_of_2] == N_WEEKS + 2
    assert (f[WEEK].dt.dayofweek == 4).all()


@pytest.mark.parametrize("variant", ["shuffled", "crlf", "cr", "bom", "case", "unsorted"])
def test_harmless_variations_give_the_same_dataset(tmp_path: Path, settings: Settings,
                                                   walmart_file: Path, variant: str) -> None:
    frame = seed_frame()
    newline, bom = "\n", False
    if variant == "shuffled":
        frame = frame[["Unemployment", "Weekly_Sales", "Date", "CPI", "Store", "Fuel_Price", "Holiday_Flag", "Temperature"]]
    elif variant == "unsorted":
        frame = frame.sample(frac=1.0, random_state=1)
    lines = csv_lines(frame)
    if variant == "case":
        lines[0] = " store , DATE,weekly_sales,holiday_flag,temperature,FUEL_PRICE,cpi,unemployment"
    newline = {"crlf": "\r\n", "cr": "\r"}.get(variant, "\n")
    bom = variant == "bom"
    other = read_history(write_lines(tmp_path / "v.csv", lines, newline, bom), settings)
    base = read_history(walmart_file, settings)
    assert other.fingerprint == base.fingerprint
    if variant == "unsorted":  # line numbers follow the rows, not the order
        assert sorted(other.source_rows) == list(range(2, 2 + 3 * N_WEEKS))
        assert not np.array_equal(other.source_rows, base.source_rows)


def test_na_and_empty_covariates_are_missing_values(tmp_path: Path, settings: Settings, seed_lines: list[str]) -> None:
    lines = list(seed_lines)
    for i, token in ((3, "NA"), (4, "")):
        cells = lines[i].split(",")
        cells[4] = token  # Temperature
        lines[i] = ",".join(cells)
    ds = read_history(write_lines(tmp_path / "na.csv", lines), settings)
    assert ds.frame["temperature"].isna().sum() == 2


def test_blank_lines_are_skipped_and_rows_still_point_at_file_lines(tmp_path: Path, settings: Settings,
                                                                      seed_lines: list[str]) -> None:
    lines = list(seed_lines)
    lines.insert(3, "")  # a blank line 4
    bad = lines[6].split(",")
    bad[2] = "oops"
    lines[6] = ",".join(bad)  # file line 7
    exc = _fails(write_lines(tmp_path / "blank.csv", lines), settings, "types", 7)
    assert "'oops'" in exc.message


def test_competition_folder_joins_features_and_stores(tmp_path: Path, settings: Settings) -> None:
    folder = write_recruiting(tmp_path / "comp")
    ds = read_history(folder, settings)
    assert ds.level == "dept" and ds.keys == [STORE, DEPT]
    assert len(ds.frame) == 2 * 3 * 20 and ds.n_series == 6
    f = ds.frame
    assert set(f["store_type"]) == {"A", "B"} and (f["store_size"] > 100000).all()  # stores.csv has CR endings
    assert f["markdown1"].notna().sum() == 4 * 3 and f["markdown2"].isna().all()
    assert f["temperature"].notna().all()
    assert read_history(folder / "train.csv", settings).fingerprint == ds.fingerprint


def test_train_csv_alone_loads_with_a_warning(tmp_path: Path, settings: Settings) -> None:
    folder = write_recruiting(tmp_path / "bare", with_extras=False)
    ds, report = load(folder / "train.csv", settings)
    assert ds is not None and not report.has_errors
    assert {i.file for i in report.warnings if i.check == "missing_columns"} == {
        str(folder / "features.csv"), str(folder / "stores.csv")}


def test_generic_csv_and_parquet_via_the_declaration(tmp_path: Path) -> None:
    frame = seed_frame().rename(columns={"Store": "shop", "Date": "day", "Weekly_Sales": "revenue", "Holiday_Flag": "hol"})
    frame["day"] = pd.to_datetime(frame["day"], format="%d-%m-%Y").dt.strftime("%Y-%m-%d")
    spec = DataSpec(keys=["shop"], date="day", target="revenue", known_future=["hol"], past_only=["CPI"])
    settings = Settings(data=spec, out_dir=tmp_path)
    frame.to_csv(tmp_path / "g.csv", index=False)
    parquet = frame.assign(day=pd.to_datetime(frame["day"]))
    parquet.to_parquet(tmp_path / "g.parquet", index=False)
    a = read_history(tmp_path / "g.csv", settings)
    b = read_history(tmp_path / "g.parquet", settings, "generic")
    assert a.fingerprint == b.fingerprint
    assert list(a.frame.columns) == ["shop", WEEK, TARGET, "hol", "CPI"]
    assert a.spec.week.name == "FRI/end" and a.spec.known_future == ("hol",) and a.spec.past_only == ("CPI",)
    _, report = load(tmp_path / "g.csv", settings)
    assert [i.check for i in report.issues if i.check == "extra_columns"] == ["extra_columns"]  # 3 unused covariates


def test_parquet_with_text_in_a_number_column_names_the_record(tmp_path: Path, settings: Settings) -> None:
    frame = seed_frame()
    frame["Weekly_Sales"] = frame["Weekly_Sales"].astype(str)
    frame.loc[5, "Weekly_Sales"] = "n/a?"
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    exc = _fails(tmp_path / "t.parquet", settings, "types", 7)  # record 6 reported as if after a header
    assert "'n/a?'" in exc.message


# ---- corrupt files, hand-made ----------------------------------------------------------------------


def test_empty_file(tmp_path: Path, settings: Settings) -> None:
    (tmp_path / "e.csv").write_bytes(b"")
    _fails(tmp_path / "e.csv", settings, "empty_file", None)
    (tmp_path / "ws.csv").write_bytes(b"\xef\xbb\xbf\r\n  \n")
    _fails(tmp_path / "ws.csv", settings, "empty_file", None)


def test_header_only(tmp_path: Path, settings: Settings, seed_lines: list[str]) -> None:
    _fails(write_lines(tmp_path / "h.csv", seed_lines[:1]), settings, "no_rows", 2)


def test_truncated_row(tmp_path: Path, settings: Settings, seed_lines: list[str]) -> None:
    lines = list(seed_lines)
    lines[-1] = lines[-1][:12]  # the download stopped mid-row
    exc = _fails(write_lines(tmp_path / "t.csv", lines), settings, "row_shape", len(lines))
    assert "truncated" in exc.message


def test_text_in_numbers_reports_every_row(tmp_path: Path, settings: Settings, seed_lines: list[str]) -> None:
    lines = list(seed_lines)
    for i in (4, 9):
        cells = lines[i].split(",")
        cells[2] = "abc"
        lines[i] = ",".join(cells)
    exc = _fails(write_lines(tmp_path / "x.csv", lines), settings, "types", 5)
    assert exc.issues[0].rows == [5, 10] and "Weekly_Sales" in exc.message


def test_thousands_separators_are_errors_quoted_or_not(tmp_path: Path, settings: Settings, seed_lines: list[str]) -> None:
    quoted = list(seed_lines)
    cells = quoted[3].split(",")
    cells[2] = '"1,643,690.90"'
    quoted[3] = ",".join(cells)
    _fails(write_lines(tmp_path / "q.csv", quoted), settings, "thousands_separator", 4)
    bare = list(seed_lines)
    bare[3] = ",".join(cells).replace('"', "")
    exc = _fails(write_lines(tmp_path / "b.csv", bare), settings, "row_shape", 4)
    assert "thousands" in exc.message


def test_wrong_delimiter(tmp_path: Path, settings: Settings, seed_lines: list[str]) -> None:
    lines = [line.replace(",", ";") for line in seed_lines]
    _fails(write_lines(tmp_path / "semi.csv", lines), settings, "delimiter", 1)
    # a comma header over semicolon rows: every row has one field
    mixed = [seed_lines[0]] + lines[1:]
    _fails(write_lines(tmp_path / "mixed.csv", mixed), settings, "row_shape", 2)


def test_mixed_date_formats(tmp_path: Path, settings: Settings, seed_lines: list[str]) -> None:
    lines = list(seed_lines)
    cells = lines[7].split(",")
    d, m, y = cells[1].split("-")
    cells[1] = f"{y}-{m}-{d}"
    lines[7] = ",".join(cells)
    exc = _fails(write_lines(tmp_path / "m.csv", lines), settings, "mixed_date_formats", 8)
    assert "yyyy-mm-dd" in exc.message and "dd-mm-yyyy" in exc.message


def test_us_dates_are_refused_not_swapped(tmp_path: Path, settings: Settings, seed_lines: list[str]) -> None:
    lines = [seed_lines[0]]
    for line in seed_lines[1:]:
        cells = line.split(",")
        d, m, y = cells[1].split("-")
        cells[1] = f"{m}-{d}-{y}"
        lines.append(",".join(cells))
    exc = _fails(write_lines(tmp_path / "us.csv", lines), settings, "dates", 4)  # 02-19-2010: no month 19
    assert "mm-dd-yyyy" in exc.message and "not accepted" in exc.message


def test_ambiguous_holiday_flag_and_fractional_store(tmp_path: Path, settings: Settings, seed_lines: list[str]) -> None:
    lines = list(seed_lines)
    cells = lines[2].split(",")
    cells[3] = "yes"
    lines[2] = ",".join(cells)
    cells = lines[5].split(",")
    cells[0] = "1.5"
    lines[5] = ",".join(cells)
    exc = _fails(write_lines(tmp_path / "a.csv", lines), settings, "types", 6)
    checks = {(i.check, tuple(i.rows)) for i in exc.issues}
    assert checks == {("types", (6,)), ("types", (3,))}
    assert any("whole number" in i.message for i in exc.issues)
    assert any("holiday flag" in i.message for i in exc.issues)


def test_missing_required_column_and_unknown_header(tmp_path: Path, settings: Settings) -> None:
    frame = seed_frame().drop(columns=["Weekly_Sales"])
    frame.to_csv(tmp_path / "m.csv", index=False)
    exc = _fails(tmp_path / "m.csv", settings, "missing_columns", 1, fmt="walmart")
    assert "Weekly_Sales" in exc.message
    _fails(tmp_path / "m.csv", settings, "format", 1)  # auto: nothing matches


def test_missing_path_raises_even_from_load(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(DataError, match="file not found"):
        load(tmp_path / "nope.csv", settings)


def test_load_turns_read_failures_into_a_report(tmp_path: Path, settings: Settings) -> None:
    (tmp_path / "e.csv").write_text("")
    dataset, report = load(tmp_path / "e.csv", settings)
    assert dataset is None and report.has_errors and report.errors[0].check == "empty_file"


# ---- corrupt files, generated --------------------------------------------------------------------

_GOOD = csv_lines(seed_frame())
_NUMERIC_COLS = (0, 2, 3, 4, 5, 6, 7)


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    line=st.integers(2, len(_GOOD)),
    col=st.sampled_from(_NUMERIC_COLS),
    junk=st.text(st.characters(whitelist_categories=("L",)), min_size=1, max_size=6).filter(
        lambda s: s.lower() not in {"nan", "inf", "infinity", "na", "null", "true", "false"}),
)
def test_any_text_in_any_number_cell_is_caught_at_its_line(tmp_path: Path, settings: Settings,
                                                          line: int, col: int, junk: str) -> None:
    lines = list(_GOOD)
    cells = lines[line - 1].split(",")
    cells[col] = junk
    lines[line - 1] = ",".join(cells)
    path = write_lines(tmp_path / "gen.csv", lines)
    with pytest.raises(ReadFailure) as info:
        read_history(path, settings)
    assert info.value.row == line
    assert info.value.issues[0].rows == [line]


@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(line=st.integers(2, len(_GOOD)), keep=st.integers(1, 6), extra=st.booleans())
def test_any_cut_or_overlong_row_is_caught_at_its_line(tmp_path: Path, settings: Settings,
                                                     line: int, keep: int, extra: bool) -> None:
    lines = list(_GOOD)
    cells = lines[line - 1].split(",")
    lines[line - 1] = ",".join(cells + ["7"]) if extra else ",".join(cells[:keep])
    path = write_lines(tmp_path / "cut.csv", lines)
    with pytest.raises(ReadFailure) as info:
        read_history(path, settings)
    assert info.value.issues[0].check == "row_shape"
    assert info.value.row == line
