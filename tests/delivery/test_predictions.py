"""walmart_sales_predictions.csv: exact format, out-of-sample history, injection safety, round-trip."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storecast.delivery.predictions import (
    CSV_NAME,
    format_amounts,
    guard_cells,
    predictions_table,
    render_predictions_csv,
    safe_cell,
    write_predictions_csv,
)

WEEKS = pd.date_range("2012-01-06", periods=6, freq="7D")
RISKY = ("=", "+", "-", "@", "\t", "\r")


def _table(dept: bool = False) -> pd.DataFrame:
    rows = []
    for store in (2, 10, 1):
        for d in ((7, 3) if dept else (None,)):
            for i, week in enumerate(WEEKS):
                future = i >= 4
                rows.append({"store": store, **({"dept": d} if dept else {}), "week": week,
                             "actual": np.nan if future else 1000.0 * store + i + 0.126,
                             "predicted": 990.0 * store + i - 0.004})
    return pd.DataFrame(rows).sample(frac=1, random_state=1)  # shuffled on purpose


def _read(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), dtype={"Date": str})


def test_exact_header_iso_dates_two_decimals_and_sort() -> None:
    text = render_predictions_csv(_table(), ["store"])
    lines = text.split("\n")
    assert lines[0] == "Store,Date,Weekly_Sales,Predicted_Sales"
    assert text.endswith("\n") and "\r" not in text
    frame = _read(text)
    assert frame["Store"].tolist() == sorted(frame["Store"].tolist())  # 1, 2, 10 numerically
    assert frame.groupby("Store")["Date"].apply(lambda d: d.is_monotonic_increasing).all()
    assert frame["Date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert lines[1] == "1,2012-01-06,1000.13,990.00"
    for line in lines[1:-1]:
        for cell in line.split(",")[2:]:
            assert cell == "" or re.fullmatch(r"-?\d+\.\d{2}", cell), line


def test_department_header_and_sort() -> None:
    frame = _read(render_predictions_csv(_table(dept=True), ["store", "dept"]))
    assert list(frame.columns) == ["Store", "Dept", "Date", "Weekly_Sales", "Predicted_Sales"]
    assert list(frame[["Store", "Dept", "Date"]].itertuples(index=False)) == sorted(
        frame[["Store", "Dept", "Date"]].itertuples(index=False))


def test_future_weeks_have_empty_actuals_and_a_forecast() -> None:
    text = render_predictions_csv(_table(), ["store"])
    future = [line for line in text.splitlines() if "2012-02-03" in line or "2012-02-10" in line]
    assert len(future) == 6
    for line in future:
        store, date, actual, predicted = line.split(",")
        assert actual == "" and predicted != ""


def test_rendering_is_deterministic_and_order_independent() -> None:
    a = render_predictions_csv(_table(), ["store"])
    b = render_predictions_csv(_table().sort_values(["store", "week"]), ["store"])
    assert a == b


def test_written_file_is_utf8_without_bom_or_index(tmp_path: Path) -> None:
    path = write_predictions_csv(_table(), ["store"], tmp_path)
    assert path.name == CSV_NAME
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert raw.split(b"\n")[0] == b"Store,Date,Weekly_Sales,Predicted_Sales"
    assert [p.name for p in tmp_path.iterdir()] == [CSV_NAME]  # no temp file left behind


def test_negative_zero_is_written_as_zero() -> None:
    assert format_amounts(pd.Series([-0.001, -0.0, np.nan, -1.5])).tolist() == ["0.00", "0.00", "", "-1.50"]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("=HYPERLINK(1)", "'=HYPERLINK(1)"), ("+1+2", "'+1+2"), ("-A1", "'-A1"), ("@SUM(A1)", "'@SUM(A1)"),
     ("\t=1", "'\t=1"), ("-12.50", "-12.50"), ("+3", "+3"), ("12", "12"), ("", ""), ("Store", "Store")],
)
def test_injection_guard(cell: str, expected: str) -> None:
    assert safe_cell(cell) == expected
    assert guard_cells(pd.Series([cell])).tolist() == [expected]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=12) | st.sampled_from(RISKY).map(lambda c: c + "1)"), max_size=20))
def test_guard_property_no_formula_survives(cells: list[str]) -> None:
    guarded = guard_cells(pd.Series(cells, dtype=object)).tolist()
    assert guarded == [safe_cell(c) for c in cells]  # vectorised == scalar
    for original, out in zip(cells, guarded, strict=True):
        assert not out.startswith(RISKY) or _is_number(out)
        assert out in (original, "'" + original)


amounts = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(amounts | st.none(), amounts), min_size=1, max_size=30))
def test_round_trip_through_pandas_to_two_decimals(values: list[tuple[float | None, float]]) -> None:
    table = pd.DataFrame({
        "store": np.arange(1, len(values) + 1),
        "week": pd.Timestamp("2012-10-26"),
        "actual": [np.nan if a is None else a for a, _ in values],
        "predicted": [p for _, p in values],
    })
    back = _read(render_predictions_csv(table, ["store"]))
    assert back["Store"].tolist() == table["store"].tolist()
    for col, src in (("Weekly_Sales", "actual"), ("Predicted_Sales", "predicted")):
        expected = [float(f"{v:.2f}") if pd.notna(v) else np.nan for v in table[src]]
        np.testing.assert_allclose(back[col].to_numpy(dtype=float), expected, rtol=0, atol=1e-9)


def test_predictions_table_uses_the_latest_out_of_sample_prediction() -> None:
    history = pd.DataFrame({"store": 1, "week": WEEKS[:4], "sales": [10.0, 11.0, 12.0, 13.0]})
    backtest = pd.DataFrame({
        "store": 1, "week": [WEEKS[2], WEEKS[3], WEEKS[3]], "cutoff": [WEEKS[1], WEEKS[1], WEEKS[2]],
        "step": [1, 2, 1], "yhat": [20.0, 21.0, 22.0],
        "lo_80": 0.0, "hi_80": 1.0, "lo_95": 0.0, "hi_95": 2.0,
    })
    forecast = pd.DataFrame({"store": 1, "week": WEEKS[4:], "step": [1, 2], "yhat": [30.0, 31.0],
                             "lo_80": 0.0, "hi_80": 1.0, "lo_95": 0.0, "hi_95": 2.0})
    table = predictions_table(history, backtest, forecast, ["store"])
    assert table["predicted"].iloc[:2].isna().all()  # weeks no backtest window covered
    assert table["predicted"].iloc[2:].tolist() == [20.0, 22.0, 30.0, 31.0]  # week 4: the later origin
    assert table["actual"].iloc[4:].isna().all()
    assert table["cutoff"].iloc[4:].isna().all() and table["cutoff"].iloc[3] == WEEKS[2]
    assert {"step", "lo_80", "hi_95"} <= set(table.columns)
    assert render_predictions_csv(table, ["store"]).splitlines()[1] == "1,2012-01-06,10.00,"
