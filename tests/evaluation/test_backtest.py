"""Backtests: no leakage from after an origin; honest interval coverage; report shape."""

from __future__ import annotations

import pandas as pd
import pytest

from storecast.data.readers import WALMART_MAP
from storecast.data.schema import TARGET, WEEK, Dataset
from storecast.evaluation.backtest import backtest, cutoffs
from storecast.evaluation.metrics import wmae
from storecast.evaluation.report import backtest_report, models_for
from storecast.models import BASELINES, DEFAULT_MODEL
from storecast.synthetic import walmart_like


@pytest.mark.parametrize("model", ["calendar_yoy", "ensemble"])
def test_each_window_trains_only_up_to_its_origin(synthetic_dataset: Dataset, model: str) -> None:
    frame = synthetic_dataset.frame
    origins = cutoffs(synthetic_dataset.first_week, synthetic_dataset.last_week, 13, 3, 13)
    first = backtest(synthetic_dataset, [model], horizon=13, windows=3, step=13).predictions
    # Wreck everything after the first origin: the first window's forecasts must not move.
    bent = frame.copy()
    bent.loc[bent[WEEK] > origins[0], TARGET] *= 3.0
    second = backtest(Dataset.from_frame(bent, "bent"), [model], horizon=13, windows=3, step=13).predictions
    one = first[first["cutoff"] == origins[0]].sort_values(["store", WEEK])["yhat"].to_numpy()
    two = second[second["cutoff"] == origins[0]].sort_values(["store", WEEK])["yhat"].to_numpy()
    assert (one == two).all()
    later = first[first["cutoff"] == origins[1]]["yhat"].to_numpy()
    assert not (later == second[second["cutoff"] == origins[1]]["yhat"].to_numpy()).all()


def test_interval_coverage_is_honest_on_synthetic() -> None:
    # 20 stores x 13 weeks x 4 windows: with fewer points one miss moves coverage by ~0.3
    # and the bound would test sampling noise, not the calibration.
    frame = walmart_like(n_stores=20, n_weeks=143, seed=3).rename(columns=WALMART_MAP)
    frame = frame.astype({"is_holiday": bool, "sales": "float64", "store": "int64"})
    result = backtest(Dataset.from_frame(frame, "synthetic-20"), ["calendar_yoy"], horizon=13, windows=4, step=13)
    board = result.leaderboard().set_index("model").loc["calendar_yoy"]
    assert 65 <= board["coverage_80"] <= 95
    assert 85 <= board["coverage_95"] <= 100


def test_report_shape_and_baselines(synthetic_dataset: Dataset) -> None:
    names = models_for("auto")
    assert names[0] == DEFAULT_MODEL and set(BASELINES) <= set(names)
    report = backtest_report(backtest(synthetic_dataset, names, horizon=13, windows=2, step=13))
    assert {"model", "mape", "wmape", "wmae", "windows", "leaderboard", "stores"} <= report.keys()
    assert [w["cutoff"] for w in report["windows"]] == sorted(w["cutoff"] for w in report["windows"])
    assert {row["model"] for row in report["leaderboard"]} == set(names)
    assert len(report["stores"]) == synthetic_dataset.n_series


def test_wmae_weights_holidays_five_times() -> None:
    assert wmae([10, 10], [9, 10], [False, False]) == 0.5
    assert wmae([10, 10], [9, 10], [True, False]) == pytest.approx(5 / 6)
    assert wmae(pd.Series([1.0]), pd.Series([1.0])) == 0.0


def test_worker_processes_give_the_serial_result(synthetic_dataset: Dataset) -> None:
    # mstl (60 weeks) and seasonal_naive (52) fail at the short data's first origin (24
    # weeks) and are reported in both modes as the serial loop does.
    short = Dataset.from_frame(
        synthetic_dataset.frame[synthetic_dataset.frame[WEEK] > synthetic_dataset.frame[WEEK].min() + pd.Timedelta(weeks=80)],
        "short",
    )
    for data in (synthetic_dataset, short):
        names = ["calendar_yoy", "seasonal_naive", "mstl"]
        serial = backtest(data, names, horizon=13, windows=3, step=13, jobs=1)
        seen: list[str] = []
        parallel = backtest(data, names, horizon=13, windows=3, step=13, jobs=2, progress=seen.append,
                            min_parallel_seconds=0.0)
        pd.testing.assert_frame_equal(serial.predictions, parallel.predictions)
        assert serial.failures == parallel.failures
        # Each fit is reported once; every model at least at its first origin.
        assert len(seen) == len(set(seen)) and {m.split(" @ ")[0] for m in seen} == set(names)
    assert "mstl" in serial.failures and "mstl" not in set(serial.predictions["model"])


def test_no_worker_processes_falls_back_to_fitting_in_process(
    synthetic_dataset: Dataset, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import storecast.evaluation.backtest as bt

    def broken(*_args: object, **_kwargs: object) -> None:
        raise bt.BrokenProcessPool("a worker died while starting")

    monkeypatch.setattr(bt, "ProcessPoolExecutor", broken)
    names = ["calendar_yoy", "seasonal_naive"]
    serial = backtest(synthetic_dataset, names, horizon=13, windows=2, step=13, jobs=1)
    fallback = backtest(synthetic_dataset, names, horizon=13, windows=2, step=13, jobs=2, min_parallel_seconds=0.0)
    pd.testing.assert_frame_equal(serial.predictions, fallback.predictions)
    assert "fitting in process" in caplog.text


def test_a_single_window_is_calibrated_on_an_earlier_origin_not_on_its_own_errors(synthetic_dataset: Dataset) -> None:
    frame = synthetic_dataset.frame
    result = backtest(synthetic_dataset, ["calendar_yoy"], horizon=26, windows=1, step=13)
    (origin,) = result.cutoffs
    assert set(result.calibration["cutoff"]) == {origin - pd.Timedelta(weeks=13)}
    # The bands use no actual after the window's origin: wreck those and they stay put.
    bent = frame.copy()
    bent.loc[bent[WEEK] > origin, TARGET] *= 3.0
    again = backtest(Dataset.from_frame(bent, "bent"), ["calendar_yoy"], horizon=26, windows=1, step=13)
    cols = ["yhat", "lo_80", "hi_80", "lo_95", "hi_95"]
    pd.testing.assert_frame_equal(result.predictions[cols], again.predictions[cols])
    assert result.predictions["lo_80"].notna().all()


def test_a_single_window_without_room_for_calibration_reports_no_coverage(synthetic_dataset: Dataset) -> None:
    frame = synthetic_dataset.frame
    short = Dataset.from_frame(frame[frame[WEEK] >= frame[WEEK].max() - pd.Timedelta(weeks=30)], "short")
    # The calibration origin (5 weeks in) is too short for calendar_yoy (8 weeks).
    result = backtest(short, ["calendar_yoy"], horizon=13, windows=1, step=13)
    board = result.leaderboard().set_index("model").loc["calendar_yoy"]
    assert pd.isna(board["coverage_80"]) and pd.isna(board["coverage_95"])
    assert result.calibration.empty and result.predictions["lo_80"].isna().all()
