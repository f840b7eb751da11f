"""The weekly ingest against DuckDB and PostgreSQL: initial load, new weeks, idempotence,
restatements, and corrupt files that must leave the warehouse exactly as it was."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from storecast.config import Settings
from storecast.data.readers import read_history
from storecast.delivery.warehouse import Warehouse, tables
from storecast.delivery.warehouse.scratch import PostgresUnavailable, scratch_url
from storecast.errors import DataError
from storecast.lifecycle.ingest import IngestResult, file_fingerprint, ingest_job
from storecast.synthetic import write_walmart_csv

PG_URL = os.environ.get("STORECAST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
AUDIT = ("ingests", "quarantine", "quality_reports")


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def wh_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    try:
        with scratch_url(request.param, tmp_path, PG_URL) as url:
            yield Settings(out_dir=tmp_path / "out", warehouse_url=url)
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def full_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_walmart_csv(tmp_path_factory.mktemp("data") / "full.csv", n_stores=3, n_weeks=60, seed=5)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + ("\n" if lines else ""))
    return path


def _head(full: Path, out: Path, drop_weeks: int) -> Path:
    """``full`` without its last ``drop_weeks`` weeks (rows are store-major, week-sorted)."""
    raw = pd.read_csv(full)
    weeks = pd.to_datetime(raw["Date"], format="%d-%m-%Y")
    keep = weeks <= weeks.max() - pd.Timedelta(weeks=drop_weeks)
    lines = _lines(full)
    return _write(out, [lines[0]] + [line for line, k in zip(lines[1:], keep, strict=True) if k])


def _snapshot(settings: Settings) -> dict[str, pd.DataFrame]:
    with Warehouse(settings.resolved_warehouse_url) as wh:
        return {name: wh.read_table(name) for name in tables.DATA_TABLES}


def _unchanged_except_audit(before: dict[str, pd.DataFrame], after: dict[str, pd.DataFrame]) -> None:
    for name in before:
        if name not in AUDIT:
            pd.testing.assert_frame_equal(before[name], after[name], obj=name)


def test_initial_load_then_new_weeks(wh_settings: Settings, full_csv: Path, tmp_path: Path) -> None:
    head = _head(full_csv, tmp_path / "head.csv", drop_weeks=2)
    first = ingest_job(wh_settings, head)
    assert first.status == "accepted" and first.rows_new == first.rows_total == 3 * 58
    assert first.reasons == [] and first.last_week is not None

    second = ingest_job(wh_settings, full_csv)  # a later export: every week so far, 2 of them new
    assert second.status == "accepted"
    assert (second.rows_new, second.rows_unchanged, second.rows_restated) == (6, 3 * 58, 0)
    with Warehouse(wh_settings.resolved_warehouse_url) as wh:
        stored = wh.history()
        ingests = wh.read_ingests()
    expected = read_history(full_csv, wh_settings)
    assert stored is not None
    pd.testing.assert_frame_equal(stored.frame, expected.frame, check_like=True)
    assert ingests["status"].tolist() == ["accepted", "accepted"]
    assert ingests["file_fingerprint"].iloc[0] == file_fingerprint(full_csv)


def test_reingesting_changes_nothing(wh_settings: Settings, full_csv: Path, tmp_path: Path) -> None:
    ingest_job(wh_settings, full_csv)
    before = _snapshot(wh_settings)
    again = ingest_job(wh_settings, full_csv)
    assert again.status == "unchanged" and "already ingested" in again.message
    # The same rows in a different file (columns shuffled, rows reversed): unchanged by content.
    raw = pd.read_csv(full_csv)
    shuffled = raw[list(reversed(raw.columns))].iloc[::-1]
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
    same = ingest_job(wh_settings, tmp_path / "shuffled.csv")
    assert same.status == "unchanged" and same.rows_unchanged == len(raw) and same.rows_new == 0
    after = _snapshot(wh_settings)
    _unchanged_except_audit(before, after)
    assert after["ingests"]["status"].value_counts().to_dict() == {"accepted": 1, "unchanged": 2}
    assert after["quarantine"].empty


def test_restatement_is_rejected_unless_allowed(wh_settings: Settings, full_csv: Path, tmp_path: Path) -> None:
    ingest_job(wh_settings, full_csv)
    raw = pd.read_csv(full_csv)
    raw.loc[10, "Weekly_Sales"] = 123456.78  # file line 12
    raw.to_csv(tmp_path / "restated.csv", index=False)
    before = _snapshot(wh_settings)

    refused = ingest_job(wh_settings, tmp_path / "restated.csv")
    assert refused.status == "rejected" and refused.rows_rejected == 1
    assert "--allow-restatement" in refused.reasons[0]
    with pytest.raises(DataError, match="restates 1 stored series-weeks") as err:
        refused.raise_for_status()
    assert err.value.exit_code == 2
    after = _snapshot(wh_settings)
    _unchanged_except_audit(before, after)
    quarantine = after["quarantine"]
    assert quarantine["source_row"].tolist() == [12] and quarantine["check"].tolist() == ["restatement"]

    allowed = ingest_job(wh_settings, tmp_path / "restated.csv", allow_restatement=True)
    assert allowed.status == "accepted" and allowed.rows_restated == 1 and allowed.rows_new == 0
    with Warehouse(wh_settings.resolved_warehouse_url) as wh:
        audit = wh.read_table("sales_restatements")
        sales = wh.read_sales(store=int(raw.loc[10, "Store"]))
    original = pd.read_csv(full_csv).loc[10, "Weekly_Sales"]
    assert audit[["old_sales", "new_sales"]].iloc[0].tolist() == pytest.approx([original, 123456.78])
    assert (sales["sales"] == 123456.78).sum() == 1


def _corrupt(kind: str, lines: list[str]) -> tuple[list[str], int | None]:
    """A corrupt variant of ``lines`` and the file line the error should point at."""
    last = lines[-1].split(",")
    if kind == "text_in_number":
        bad = lines[4].split(",")
        bad[2] = "12x3.00"
        return lines[:4] + [",".join(bad)] + lines[5:], 5
    if kind == "duplicate_week":
        return lines + [lines[5]], len(lines) + 1
    if kind == "empty_file":
        return [], None
    if kind == "header_only":
        return lines[:1], None
    if kind == "truncated_row":
        return lines[:-1] + [",".join(last[:3])], len(lines)
    if kind == "huge_sales":
        return lines[:-1] + [",".join([last[0], last[1], "1000000000000", *last[3:]])], len(lines)
    if kind == "mixed_dates":
        return lines[:-1] + [",".join([last[0], "2011-05-06", *last[2:]])], len(lines)
    if kind == "wrong_delimiter":
        return [line.replace(",", ";") for line in lines], None
    raise AssertionError(kind)


CORRUPT = ["text_in_number", "duplicate_week", "empty_file", "header_only", "truncated_row",
           "huge_sales", "mixed_dates", "wrong_delimiter"]


@pytest.mark.parametrize("kind", CORRUPT)
def test_a_corrupt_file_leaves_the_warehouse_as_it_was(
    wh_settings: Settings, full_csv: Path, tmp_path: Path, kind: str
) -> None:
    head = _head(full_csv, tmp_path / "head.csv", drop_weeks=4)
    ingest_job(wh_settings, head)
    lines, bad_line = _corrupt(kind, _lines(full_csv))
    before = _snapshot(wh_settings)

    result = ingest_job(wh_settings, _write(tmp_path / f"{kind}.csv", lines))
    assert result.status == "rejected" and result.reasons and result.rows_new == 0
    with pytest.raises(DataError) as err:
        result.raise_for_status()
    assert err.value.exit_code == 2 and f"{kind}.csv" in err.value.message

    after = _snapshot(wh_settings)
    _unchanged_except_audit(before, after)
    new_ingests = after["ingests"][~after["ingests"]["ingest_id"].isin(before["ingests"]["ingest_id"])]
    assert new_ingests["status"].tolist() == ["rejected"]
    quarantine = after["quarantine"]
    assert set(quarantine["ingest_id"]) == {result.ingest_id} and (quarantine["reason"].str.len() > 0).all()
    if bad_line is not None:
        assert bad_line in set(quarantine["source_row"].dropna().astype(int))
    assert len(after["quality_reports"]) == len(before["quality_reports"]) + 1


def test_result_serialises_for_the_doors(wh_settings: Settings, full_csv: Path) -> None:
    result = ingest_job(wh_settings, full_csv)
    assert isinstance(result, IngestResult)
    body = result.to_dict()
    assert body["status"] == "accepted" and body["rows_total"] == 180
    assert (body["first_week"], body["last_week"]) == ("2010-02-05", "2011-03-25")
    result.raise_for_status()  # accepted: no error


def test_missing_file_raises(wh_settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        ingest_job(wh_settings, tmp_path / "nope.csv")
