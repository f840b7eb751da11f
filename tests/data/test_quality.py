"""The quality gate: each check fires on its problem, with severity and file lines, and only then."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from data_files import N_WEEKS, csv_lines, seed_frame, write_lines, write_recruiting

from storecast.config import Settings
from storecast.data.quality import QualityReport, gate, validate
from storecast.data.readers import load, read_history
from storecast.data.schema import HOLIDAY, TARGET, WEEK, Dataset
from storecast.errors import QualityGateError

TODAY = dt.date(2030, 1, 1)


def _load(tmp_path: Path, settings: Settings, frame: pd.DataFrame, name: str = "w.csv") -> QualityReport:
    dataset, report = load(write_lines(tmp_path / name, csv_lines(frame)), settings, today=TODAY)
    assert dataset is not None, report.issues
    return report


def _issue(report: QualityReport, check: str):  # type: ignore[no-untyped-def]
    found = [i for i in report.issues if i.check == check]
    assert found, f"no {check} issue in {[i.check for i in report.issues]}"
    return found[0]


def test_clean_data_passes_the_gate(tmp_path: Path, settings: Settings) -> None:
    report = _load(tmp_path, settings, seed_frame())
    assert not report.has_errors, report.errors
    assert report.n_rows == 3 * N_WEEKS and report.n_series == 3
    gate(report)  # no raise


def test_duplicate_series_week_points_at_both_lines(tmp_path: Path, settings: Settings) -> None:
    frame = seed_frame()
    frame = pd.concat([frame, frame.iloc[[4]]], ignore_index=True)  # line 6 repeated as the last line
    issue = _issue(_load(tmp_path, settings, frame), "duplicates")
    assert issue.severity == "error" and issue.rows == [6, len(frame) + 1]
    assert issue.series == [{"store": 1}]


def test_off_grid_dates_and_spacing(tmp_path: Path, settings: Settings) -> None:
    frame = seed_frame()
    frame.loc[10, "Date"] = "10-04-2010"  # a Saturday
    report = _load(tmp_path, settings, frame)
    issues = [i for i in report.issues if i.check == "off_grid"]
    assert {i.severity for i in issues} == {"error"}
    assert 12 in issues[0].rows  # the Saturday itself
    assert any(12 in i.rows or 13 in i.rows for i in issues[1:])  # and the 6-day step it makes


def test_gaps_are_warnings_with_the_row_after_the_gap(tmp_path: Path, settings: Settings) -> None:
    frame = seed_frame().drop(index=[7, 8, 9])  # three weeks of store 1 missing
    issue = _issue(_load(tmp_path, settings, frame), "gaps")
    assert issue.severity == "warning" and issue.count == 1
    assert issue.rows == [9] and "3 week(s)" in issue.message  # record 10 -> line 9 after the drop


def test_future_dated_rows(tmp_path: Path, settings: Settings) -> None:
    frame = seed_frame()
    dataset, report = load(write_lines(tmp_path / "f.csv", csv_lines(frame)), settings, today=dt.date(2010, 6, 1))
    issue = _issue(report, "future_dated")
    last_ok = pd.to_datetime(frame["Date"], format="%d-%m-%Y") <= pd.Timestamp("2010-06-01")
    assert issue.severity == "error" and issue.count == int((~last_ok).sum())


def test_negative_sales_error_for_stores_warning_for_departments(tmp_path: Path, settings: Settings) -> None:
    frame = seed_frame()
    frame.loc[3, "Weekly_Sales"] = -50.0
    issue = _issue(_load(tmp_path, settings, frame), "negative_sales")
    assert (issue.severity, issue.rows) == ("error", [5])
    folder = write_recruiting(tmp_path / "comp")
    train = pd.read_csv(folder / "train.csv")
    train.loc[2, "Weekly_Sales"] = -12.5
    train.to_csv(folder / "train.csv", index=False)
    _, report = load(folder, settings, today=TODAY)
    issue = _issue(report, "negative_sales")
    assert (issue.severity, issue.rows) == ("warning", [4]) and not report.has_errors


def test_implausible_sales_and_nan_inf(tmp_path: Path, settings: Settings) -> None:
    frame = seed_frame()
    frame["Weekly_Sales"] = frame["Weekly_Sales"].astype(object)
    frame.loc[5, "Weekly_Sales"] = 1e12
    frame.loc[6, "Weekly_Sales"] = "NA"
    frame.loc[8, "Weekly_Sales"] = "inf"
    report = _load(tmp_path, settings, frame)
    assert _issue(report, "implausible").rows == [7]
    nan_inf = [i for i in report.issues if i.check == "nan_inf"]
    assert sorted(r for i in nan_inf for r in i.rows) == [8, 10]
    assert report.error_rows() == {7, 8, 10}


def test_outlier_against_the_series_own_history(tmp_path: Path, settings: Settings) -> None:
    frame = seed_frame()
    frame.loc[40, "Weekly_Sales"] *= 6  # store 2, well inside plausible
    issue = _issue(_load(tmp_path, settings, frame), "outliers")
    assert issue.severity == "warning" and 42 in issue.rows
    assert {"store": 2} in issue.series


def test_holiday_flag_that_disagrees_across_stores(tmp_path: Path, settings: Settings) -> None:
    frame = seed_frame()
    holiday_rows = frame.index[frame["Holiday_Flag"] == 1]
    frame.loc[holiday_rows[-1], "Holiday_Flag"] = 0  # store 3 forgets one holiday
    issue = _issue(_load(tmp_path, settings, frame), "holiday_disagreement")
    assert issue.severity == "error" and issue.rows == [int(holiday_rows[-1]) + 2]


def test_series_that_appear_disappear_or_go_stale(tmp_path: Path, settings: Settings) -> None:
    frame = seed_frame()
    store = frame["Store"]
    week = frame.groupby("Store").cumcount()
    frame = frame[~((store == 1) & (week < 5)) & ~((store == 2) & (week >= N_WEEKS - 2))
                  & ~((store == 3) & (week >= N_WEEKS - 10))]
    report = _load(tmp_path, settings, frame)
    assert _issue(report, "series_appears").series == [{"store": 1}]
    assert _issue(report, "series_disappears").series == [{"store": 2}]
    stale = _issue(report, "stale")
    assert stale.series == [{"store": 3}] and "10" in stale.message
    assert not report.has_errors


def test_reference_history_sees_boundary_gaps_new_and_vanished_series(tmp_path: Path, settings: Settings) -> None:
    full = read_history(write_lines(tmp_path / "all.csv", csv_lines(seed_frame())), settings)
    f = full.frame
    cut = f[WEEK].sort_values().unique()[20]
    reference = Dataset.from_frame(f[(f[WEEK] < cut) & (f["store"] != 3)], source="warehouse")
    new_part = seed_frame()
    dates = pd.to_datetime(new_part["Date"], format="%d-%m-%Y")
    new_part = new_part[(dates >= cut + pd.Timedelta(weeks=2)) & (new_part["Store"] != 2)]  # 2 weeks skipped
    dataset, report = load(write_lines(tmp_path / "new.csv", csv_lines(new_part)), settings,
                           reference=reference, today=TODAY)
    assert dataset is not None
    assert _issue(report, "gaps").series == [{"store": 1}]
    assert _issue(report, "gaps").rows == [2]
    assert _issue(report, "series_appears").series == [{"store": 3}]
    assert _issue(report, "series_disappears").series == [{"store": 2}]
    assert not report.has_errors


def test_types_are_checked_against_the_declared_schema(settings: Settings, synthetic_dataset: Dataset) -> None:
    frame = synthetic_dataset.frame.copy()
    frame[TARGET] = frame[TARGET].astype(str)
    frame = frame.drop(columns=[HOLIDAY])
    report = validate(Dataset(frame=frame, spec=synthetic_dataset.spec, source="mem"), settings)
    checks = {i.check for i in report.errors}
    assert checks == {"types", "missing_columns"}


def test_report_serialises_and_the_gate_raises(tmp_path: Path, settings: Settings) -> None:
    frame = seed_frame()
    frame.loc[3, "Weekly_Sales"] = -1.0
    report = _load(tmp_path, settings, frame)
    body = json.loads(json.dumps(report.to_dict()))
    assert body["ok"] is False and body["counts"]["errors"] == 1
    assert body["issues"][0]["rows"] == [5]
    table = report.to_frame()
    assert list(table.columns) == ["check", "severity", "row", "message", "file"]
    assert table.loc[table["check"] == "negative_sales", "row"].tolist() == [5]
    with pytest.raises(QualityGateError) as info:
        gate(report)
    assert info.value.exit_code == 2 and "row 5" in info.value.message and info.value.report is report


def test_in_memory_data_reports_series_without_rows(settings: Settings, synthetic_dataset: Dataset) -> None:
    frame = synthetic_dataset.frame.copy()
    frame.loc[3, TARGET] = -5.0
    report = validate(Dataset.from_frame(frame, source="mem"), settings, today=TODAY)
    issue = _issue(report, "negative_sales")
    assert issue.rows == [] and issue.series == [{"store": int(frame.loc[3, "store"])}]


def test_warnings_keep_a_bounded_row_list_but_the_true_count(tmp_path: Path, settings: Settings) -> None:
    from storecast.data import quality

    frame = seed_frame(n_stores=40, n_weeks=30)
    frame["Temperature"] = np.nan
    report = _load(tmp_path, settings, frame)
    issue = next(i for i in report.warnings if "temperature" in i.message)
    assert issue.count == 1200 and len(issue.rows) == quality.MAX_WARNING_ROWS
