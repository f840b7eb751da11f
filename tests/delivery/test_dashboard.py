"""dashboard.html: self-contained, the right data behind each view, honest aggregate bands."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dashboard_fixtures import HORIZON, WINDOWS, dept_dataset, predictions_for, store_dataset

from storecast.delivery.dashboard import (
    ACTUAL_COLOR,
    PREDICTED_COLOR,
    TRACE_SPECS,
    build_dashboard_html,
    write_dashboard,
)
from storecast.delivery.dashboard.data import aggregate_bands, build_payload, encode
from storecast.evaluation.metrics import mape


@pytest.fixture(scope="module")
def store_table() -> pd.DataFrame:
    return predictions_for(store_dataset())


@pytest.fixture(scope="module")
def dept_table() -> pd.DataFrame:
    return predictions_for(dept_dataset())


@pytest.fixture(scope="module")
def store_html(store_table: pd.DataFrame) -> str:
    return build_dashboard_html(store_table)


def _json(page: str, element: str) -> object:
    match = re.search(rf'<script type="application/json" id="{element}">(.*?)</script>', page, re.S)
    assert match, element
    return json.loads(match.group(1))


def test_page_is_self_contained_with_one_plotly_bundle(store_html: str) -> None:
    from plotly.offline import get_plotlyjs

    bundle = get_plotlyjs()
    assert store_html.count(bundle) == 1 and store_html.count("plotly.js v") == 1
    # plotly.js itself names cdn.plot.ly as its (unused) geo-map topojson default; nothing else may.
    rest = store_html.replace(bundle, "")
    assert "cdn.plot.ly" not in rest and "https://" not in rest and "http://" not in rest
    assert not re.search(r"<script[^>]*\bsrc=", store_html)
    assert not re.search(r"<link[^>]*\bhref=\"?https?:", store_html)


def test_main_chart_traces_blue_actual_red_predicted_and_bands() -> None:
    names = [s["name"] for s in TRACE_SPECS]
    assert names.count("80% interval") == 2 and names.count("95% interval") == 2
    style = {s["name"]: s["style"] for s in TRACE_SPECS}
    assert style["Actual"]["line"]["color"] == ACTUAL_COLOR == "#1f77b4"
    assert style["Predicted"]["line"]["color"] == PREDICTED_COLOR == "#d62728"
    assert [s["style"].get("fill") for s in TRACE_SPECS[:4]] == [None, "tonexty", None, "tonexty"]


def test_payload_series_cover_history_backtest_and_forecast(store_html: str, store_table: pd.DataFrame) -> None:
    data = _json(store_html, "sc-data")
    n_weeks = store_table["week"].nunique()
    assert len(data["weeks"]) == n_weeks and data["first_future"] == n_weeks - HORIZON
    assert data["children"][""] == [str(s) for s in sorted(store_table["store"].unique())]
    store2 = store_table[store_table["store"] == 2].sort_values("week")
    arrays = data["nodes"]["2"]
    assert arrays["a"][0] == 0 and len(arrays["a"]) - 1 == n_weeks - HORIZON
    assert arrays["p"][0] == n_weeks - (WINDOWS + 1) * HORIZON and len(arrays["p"]) - 1 == (WINDOWS + 1) * HORIZON
    assert arrays["a"][1:] == [round(v) for v in store2["actual"].dropna()]
    total = data["total"]
    sums = store_table.groupby("week")["actual"].sum(min_count=1).dropna()
    assert total["a"][1:] == [round(v) for v in sums]
    for key in ("l80", "h80", "l95", "h95"):
        assert len(total[key]) == len(total["p"])  # aggregate bands over every predicted week


def test_holiday_weeks_are_the_calendars_and_labelled(store_html: str) -> None:
    holidays = {h["week"]: h["name"] for h in _json(store_html, "sc-data")["holidays"]}
    assert holidays["2010-11-26"] == "Thanksgiving" and holidays["2010-12-31"] == "Christmas"
    assert holidays["2011-02-11"] == "Super Bowl" and holidays["2011-09-09"] == "Labor Day"
    layout = _json(store_html, "sc-layout")
    labels = [a["text"] for a in layout["annotations"]]
    assert labels.count("Thanksgiving") == 2 and "Forecast" in labels
    rects = [s for s in layout["shapes"] if s["type"] == "rect"]
    assert len(rects) == 1 and len(layout["shapes"]) == 1 + len(holidays)


def test_holidays_argument_restricts_marked_weeks(store_table: pd.DataFrame) -> None:
    payload, _ = build_payload(store_table, [pd.Timestamp("2010-11-26"), pd.Timestamp("2011-03-04")])
    assert [(h["week"], h["name"]) for h in payload["holidays"]] == [("2010-11-26", "Thanksgiving"), ("2011-03-04", "Holiday")]


def test_accuracy_view_matches_the_metrics(store_html: str, store_table: pd.DataFrame) -> None:
    figs = _json(store_html, "sc-figures")
    bars = figs["store_mape"]["data"]
    assert len(bars) == 1 and len(bars[0]["x"]) == store_table["store"].nunique()
    scored = store_table.dropna(subset=["actual", "predicted"])
    expected = {s: mape(g["actual"], g["predicted"]) for s, g in scored.groupby("store")}
    got = dict(zip(bars[0]["x"], bars[0]["y"], strict=True))
    for store, value in expected.items():
        assert got[f"Store {store}"] == pytest.approx(round(value, 2))
    assert bars[0]["y"] == sorted(bars[0]["y"], reverse=True)  # worst first

    weeks = figs["week_mape"]["data"]
    assert [t["name"] for t in weeks] == ["Regular week", "Holiday week"]
    assert sum(len(t["x"]) for t in weeks) == WINDOWS * HORIZON
    rows = re.findall(r"<tr><td>", store_html.split('id="sc-misses"')[1].split("</table>")[0])
    assert len(rows) == 15


def test_largest_miss_is_first_in_the_table(store_table: pd.DataFrame) -> None:
    _, acc = build_payload(store_table)
    scored = store_table.dropna(subset=["actual", "predicted"])
    pct = ((scored["predicted"] - scored["actual"]) / scored["actual"]).abs()
    worst = scored.loc[pct.idxmax()]
    assert (acc.misses.iloc[0]["store"], acc.misses.iloc[0]["week"]) == (worst["store"], worst["week"])


def test_aggregate_bands_are_out_of_sample_for_backtest_weeks() -> None:
    weeks = pd.date_range("2012-01-06", periods=9, freq="7D")
    cut = [weeks[0]] * 3 + [weeks[3]] * 3 + [pd.NaT] * 3
    rng = np.random.default_rng(0)
    agg = pd.DataFrame({"week": weeks, "cutoff": cut, "predicted": 100.0, "matched": 100 + rng.normal(0, 5, 9)})
    agg.loc[6:, "matched"] = np.nan
    base = aggregate_bands(agg)
    moved = agg.copy()
    moved.loc[0, "matched"] = 500.0  # a wild miss in the first window
    shifted = aggregate_bands(moved)
    # The first window's own bands ignore its own errors; the others' bands see it.
    pd.testing.assert_series_equal(base.loc[:2, "hi_95"], shifted.loc[:2, "hi_95"])
    assert (shifted.loc[3:, "hi_95"] > base.loc[3:, "hi_95"]).all()
    future = base.iloc[6:]
    assert ((future["lo_95"] <= future["lo_80"]) & (future["lo_80"] <= future["predicted"])
            & (future["predicted"] <= future["hi_80"]) & (future["hi_80"] <= future["hi_95"])).all()


def test_department_payload_and_selector(dept_table: pd.DataFrame) -> None:
    page = build_dashboard_html(dept_table)
    assert '<select id="sc-k0">' in page and '<select id="sc-k1">' in page and ">Department<" in page
    data = _json(page, "sc-data")
    assert data["level"] == "dept" and data["keys"] == ["store", "dept"]
    pairs = {(str(s), str(d)) for s, d in dept_table[["store", "dept"]].drop_duplicates().itertuples(index=False)}
    assert {tuple(p.split(data["sep"])) for p in data["nodes"] if data["sep"] in p} == pairs
    assert data["children"]["1"] == sorted({d for s, d in pairs if s == "1"}, key=int)
    store1 = dept_table[dept_table["store"] == 1].groupby("week")["actual"].sum(min_count=1).dropna()
    assert data["nodes"]["1"]["a"][1:] == [round(v) for v in store1]
    late = data["nodes"]["1" + data["sep"] + "3"]
    assert late["a"][0] == 20  # opened 20 weeks after the first week
    assert late["m"] is not None and late["m"] > 0


def test_monitoring_panel_only_when_given_and_escaped(store_table: pd.DataFrame) -> None:
    assert 'id="sc-monitoring"' not in build_dashboard_html(store_table)
    monitoring = pd.DataFrame({"check": ["<script>alert(1)</script>", "psi temperature"],
                               "status": ["alert", "ok"], "value": [1.8, 0.02]})
    page = build_dashboard_html(store_table, monitoring=monitoring)
    panel = page.split('id="sc-monitoring"')[1].split("</section>")[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in panel and "<script>alert" not in panel
    assert 'class="sc-status-alert"' in panel and 'class="sc-status-ok"' in panel


def test_encode_offsets_and_gaps() -> None:
    assert encode(np.array([np.nan, 1.4, np.nan, 3.6, np.nan])) == [1, 1, None, 4]
    assert encode(np.array([np.nan, np.nan])) == []


def test_written_file_is_deterministic(tmp_path: Path, store_table: pd.DataFrame) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    a = write_dashboard(store_table, None, tmp_path / "a")
    b = write_dashboard(store_table, None, tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["dashboard.html"]


def test_minimal_table_without_bands_or_cutoffs(store_table: pd.DataFrame) -> None:
    """A table with only keys, week, actual and predicted still renders (no bands drawn)."""
    minimal = store_table[["store", "week", "actual", "predicted"]]
    data = _json(build_dashboard_html(minimal), "sc-data")
    assert set(data["total"]) == {"a", "p"} and set(data["nodes"]["1"]) == {"a", "p", "m"}
    assert data["overall"]["mape"] > 0


def brand_table(dept_table: pd.DataFrame) -> pd.DataFrame:
    """The department table as another retailer's: text brand names under numbered stores."""
    names = {3: "Alpha 64oz", 6: "Beta 64oz", 9: "Gamma <96oz>", 12: "Delta, 128oz"}
    return dept_table.assign(dept=dept_table["dept"].map(names)).rename(columns={"dept": "brand"})


def test_any_keys_get_a_selector_each_and_named_holidays(dept_table: pd.DataFrame) -> None:
    table = brand_table(dept_table)
    holidays = {pd.Timestamp("2011-12-30"): "New Year's Day", pd.Timestamp("2011-07-01"): "Independence Day"}
    page = build_dashboard_html(table, holidays, keys=["store", "brand"], metric="wmape", value_label="Weekly units",
                                currency=False)
    assert '<select id="sc-k0">' in page and ">Brand<select id=\"sc-k1\">" in page
    data = _json(page, "sc-data")
    assert data["labels"] == ["Store", "Brand"] and data["numeric"] == [True, False] and data["metric"] == "WAPE"
    assert data["children"]["2"] == ["Alpha 64oz", "Beta 64oz", "Delta, 128oz", "Gamma <96oz>"]
    assert "2" + data["sep"] + "Gamma <96oz>" in data["nodes"]
    assert "Gamma <96oz>" not in page.split('id="sc-data"')[0]  # names reach the page only as escaped JSON
    assert [h["name"] for h in data["holidays"]] == ["Independence Day", "New Year's Day"]
    assert "Backtest WAPE per store" in json.dumps(_json(page, "sc-figures"))
    layout = _json(page, "sc-layout")
    assert layout["yaxis"]["title"]["text"] == "Weekly units" and "$" not in layout["yaxis"]["tickformat"]
    assert "$" not in page.split('id="sc-misses"')[1].split("</table>")[0]  # units, not dollars


def test_given_levels_are_shown_instead_of_sums(dept_table: pd.DataFrame) -> None:
    table = brand_table(dept_table)
    totals = table.groupby("week", as_index=False)[["actual", "predicted"]].sum(min_count=1)
    totals["predicted"] *= 2  # a level forecast that is not the sum of the leaves' shows as given
    data = _json(build_dashboard_html(table, keys=["store", "brand"], levels={(): totals}), "sc-data")
    summed = _json(build_dashboard_html(table, keys=["store", "brand"]), "sc-data")
    assert data["total"]["p"][1:] == [round(v) for v in totals["predicted"].dropna()]
    assert data["total"]["p"] != summed["total"]["p"] and data["nodes"]["1"] == summed["nodes"]["1"]
