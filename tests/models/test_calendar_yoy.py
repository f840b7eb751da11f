"""calendar_yoy and the ensemble: calendar effects are learned, short series fall back."""

from __future__ import annotations

import numpy as np
import pandas as pd

from storecast.data.schema import WEEK, Dataset
from storecast.evaluation.backtest import backtest
from storecast.features.calendar import US_CALENDAR
from storecast.models.calendar_yoy import CalendarYoY, _mixed, effect_matrix
from storecast.models.ensemble import Ensemble, _weights


def test_learns_a_positive_payday_effect(synthetic_dataset: Dataset) -> None:
    model = CalendarYoY().fit(synthetic_dataset.frame)
    effects = model.effects()
    # walmart_like lifts the week holding the 1st-3rd by 2.5% x store amplitude (0.6-1.4).
    assert 0.002 < effects["month_start_days"] < 0.02
    assert effects["christmas_shopping_days"] >= 0


def test_beats_the_level_scaled_baseline_on_synthetic(synthetic_dataset: Dataset) -> None:
    result = backtest(synthetic_dataset, ["calendar_yoy", "yoy_scaled"], horizon=13, windows=4, step=13)
    board = result.leaderboard().set_index("model")
    assert board.loc["calendar_yoy", "mape"] < board.loc["yoy_scaled", "mape"]


def test_short_and_negative_series_fall_back() -> None:
    weeks = pd.date_range("2011-01-07", periods=30, freq="7D")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "store": 1, "dept": np.repeat([1, 2], 30), WEEK: np.tile(weeks, 2),
        "sales": np.r_[rng.normal(100, 5, 30), rng.normal(5, 20, 30)], "is_holiday": False,
    })
    pred = CalendarYoY().fit(frame).predict(13)
    assert len(pred) == 26 and np.isfinite(pred["yhat"]).all()
    tail = frame.groupby("dept")["sales"].apply(lambda s: s.iloc[-8:].mean())
    got = pred.groupby("dept")["yhat"].first()
    np.testing.assert_allclose(got.to_numpy(), tail.to_numpy(), rtol=0.05, atol=2.0)


def test_ensemble_degrades_to_the_members_it_has(synthetic_dataset: Dataset) -> None:
    frame = synthetic_dataset.frame
    model = Ensemble(members=["calendar_yoy", "no_such_model"]).fit(frame)
    assert list(model.weights_) == ["calendar_yoy"]
    alone = CalendarYoY().fit(frame).predict(13)
    pd.testing.assert_series_equal(model.predict(13)["yhat"], alone["yhat"])


def test_inverse_error_weights() -> None:
    w = _weights(["a", "b"], {"a": 0.02, "b": 0.04})
    assert abs(sum(w.values()) - 1) < 1e-12 and w["a"] > w["b"] > 0.25
    assert _weights(["a", "b"], {"a": 0.02}) == {"a": 0.5, "b": 0.5}


def _shared_season(noise: float, own_shape: float, seed: int = 3) -> pd.DataFrame:
    """Stores sharing one seasonal profile, each with its own persistent shape and weekly noise."""
    rng = np.random.default_rng(seed)
    weeks = pd.date_range("2010-01-08", periods=150, freq="7D")
    woy = (weeks.dayofyear.to_numpy() - 1) // 7
    season = 0.25 * np.sin(2 * np.pi * woy / 52) + 0.4 * (woy == 50)
    rows = []
    for store in range(1, 31):
        own = own_shape * np.cos(2 * np.pi * (woy + store) / 13)
        log_sales = np.log(1e5 * (1 + store / 10)) + season + own + rng.normal(0, noise, len(weeks))
        rows.append(pd.DataFrame({"store": store, WEEK: weeks, "sales": np.exp(log_sales)}))
    return pd.concat(rows, ignore_index=True)


def _holdout_mape(history: pd.DataFrame, **params: object) -> float:
    cut = history[WEEK].max() - pd.Timedelta(weeks=13)
    model = CalendarYoY(**params).fit(history[history[WEEK] <= cut])
    pair = model.predict(13).merge(history, on=["store", WEEK])
    return float((np.abs(pair["sales"] - pair["yhat"]) / pair["sales"]).mean())


def test_shape_pooling_weight_is_learned_in_unit_interval() -> None:
    noisy = CalendarYoY().fit(_shared_season(noise=0.04, own_shape=0.0))
    clean = CalendarYoY().fit(_shared_season(noise=0.002, own_shape=0.08))
    for model in (noisy, clean):
        assert ((model.keep_ >= 0) & (model.keep_ <= 1)).all()
    # Noise only: a store's own deviation is not worth keeping; a persistent own shape is.
    assert noisy.keep_.mean() < 0.3
    assert clean.keep_.mean() > 0.8


def test_shape_pooling_helps_when_stores_share_a_season() -> None:
    history = _shared_season(noise=0.04, own_shape=0.01)
    assert _holdout_mape(history) < 0.9 * _holdout_mape(history, shape_pooling=None)


def test_fixed_shape_pooling_is_respected() -> None:
    model = CalendarYoY(shape_pooling=0.5).fit(_shared_season(noise=0.04, own_shape=0.0))
    assert np.allclose(model.keep_, 0.5)


def _level_plus_noise(drift: float, noise: float, weeks: int = 40, series: int = 45, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    level = np.cumsum(rng.normal(0, drift, (weeks, series)), axis=0)
    return level + rng.normal(0, noise, (weeks, series))


def test_local_level_halflife_follows_the_signal_to_noise_ratio() -> None:
    from storecast.models.calendar_yoy import _local_level_halflife

    # q = 1: K = (sqrt(5) - 1) / 2 = 0.618, half-life log(.5)/log(.382) = 0.72 weeks.
    fast = _local_level_halflife(_level_plus_noise(drift=0.02, noise=0.02), max_lag=13)
    # q = 1/100: K = 0.095, half-life 6.9 weeks.
    slow = _local_level_halflife(_level_plus_noise(drift=0.003, noise=0.03), max_lag=13)
    assert fast is not None and slow is not None
    assert 0.4 < fast < 1.3
    assert 4.0 < slow < 12.0
    # Pure noise shows no level movement: no learned half-life (the model's longest applies).
    flat = _local_level_halflife(np.random.default_rng(1).normal(0, 0.03, (40, 45)), max_lag=13)
    assert flat is None or flat > 20


def test_own_growth_halflife_is_learned_only_with_enough_pairs(synthetic_dataset: Dataset) -> None:
    frame = synthetic_dataset.frame
    weeks = np.sort(frame[WEEK].unique())
    long = CalendarYoY().fit(frame)
    assert all(0 < h <= 3 * long.growth_halflife for h in long.own_halflife_)
    short = CalendarYoY().fit(frame[frame[WEEK] <= weeks[52 + 20]])  # 20 weeks of year-over-year pairs
    assert short.own_halflife_[0] == 3 * short.growth_halflife
    fixed = CalendarYoY(own_halflife=5.0).fit(frame)
    assert fixed.own_halflife_ == [5.0] * len(fixed.own_halflife_)


def test_reference_mixes_last_years_same_calendar_days() -> None:
    weeks = pd.date_range("2010-11-05", "2011-01-28", freq="7D")
    pos = {w: i for i, w in enumerate(weeks)}
    ref = np.arange(len(weeks), dtype=float)[:, None] * [1.0, 10.0]
    x = effect_matrix(weeks)
    future = pd.DatetimeIndex(["2011-12-23", "2011-11-25"])  # Dec 17-23; Thanksgiving week
    src, x_src, ok = _mixed(future, 1, pos, ref, x, US_CALENDAR)
    assert ok.all()
    # Dec 17-23 2011 = 6 days of the week ending Dec 24 2010 + 1 day of the week ending Dec 17.
    dec24, dec17 = pos[pd.Timestamp("2010-12-24")], pos[pd.Timestamp("2010-12-17")]
    np.testing.assert_allclose(src[0], (6 * ref[dec24] + ref[dec17]) / 7)
    np.testing.assert_allclose(x_src[0], (6 * x[dec24] + x[dec17]) / 7)
    # A moving holiday stays on last year's holiday week, unmixed.
    np.testing.assert_allclose(src[1], ref[pos[pd.Timestamp("2010-11-26")]])
    # A comparable week outside the history is not held; a missing neighbour is not mixed in.
    src, _, ok = _mixed(pd.DatetimeIndex(["2011-11-04", "2012-12-21"]), 1, pos, ref, x, US_CALENDAR)
    assert list(ok) == [True, False]
    np.testing.assert_allclose(src[0], ref[pos[pd.Timestamp("2010-11-05")]])


def _slow_paths(seed: int = 11) -> pd.DataFrame:
    """Stores 1-15 with their own yearly season; stores 16-30 with slow wanders that never
    come back a year later (periods of 17-37 weeks, like a remodel or a competitor)."""
    rng = np.random.default_rng(seed)
    weeks = pd.date_range("2010-01-08", periods=130, freq="7D")
    t = np.arange(len(weeks))
    woy = (weeks.dayofyear.to_numpy() - 1) // 7
    chain = 0.2 * np.sin(2 * np.pi * woy / 52)
    rows = []
    for store in range(1, 31):
        if store <= 15:
            own = 0.15 * np.sin(2 * np.pi * (woy + 3 * store) / 52)
        else:
            periods = rng.uniform(17, 37, 2)
            own = sum(0.07 * np.sin(2 * np.pi * t / p + rng.uniform(0, 2 * np.pi)) for p in periods)
        log_sales = np.log(1e5) + chain + own + rng.normal(0, 0.01, len(weeks))
        rows.append(pd.DataFrame({"store": store, WEEK: weeks, "sales": np.exp(log_sales)}))
    return pd.concat(rows, ignore_index=True)


def _holdout_by_store(history: pd.DataFrame, **params: object) -> pd.Series:
    cut = history[WEEK].max() - pd.Timedelta(weeks=13)
    model = CalendarYoY(**params).fit(history[history[WEEK] <= cut])
    pair = model.predict(13).merge(history, on=["store", WEEK])
    return (np.abs(pair["sales"] - pair["yhat"]) / pair["sales"]).groupby(pair["store"]).mean()


def test_slow_deviation_is_kept_as_far_as_it_repeats() -> None:
    history = _slow_paths()
    model = CalendarYoY().fit(history)
    repeat = pd.Series(model.repeat_, index=model.series_["store"])
    assert ((repeat >= 0) & (repeat <= 1)).all()
    assert repeat.loc[:15].mean() > 0.8 > 0.5 > repeat.loc[16:].mean()
    learned, whole = _holdout_by_store(history), _holdout_by_store(history, slow_repeat=None)
    assert learned.loc[16:].mean() < 0.9 * whole.loc[16:].mean()  # wanders not carried forward
    assert learned.mean() < whole.mean()  # seasons shrink a little, the chain gains overall
    # Too few year-over-year weeks to judge: last year's path is kept whole.
    short = CalendarYoY().fit(history[history[WEEK] <= history[WEEK].min() + pd.Timedelta(weeks=60)])
    assert (short.repeat_ == 1).all()


def _growing_season(n_weeks: int, seed: int = 7) -> pd.DataFrame:
    """30 departments sharing a season, growing 6% a year, with independent weekly noise."""
    rng = np.random.default_rng(seed)
    weeks = pd.date_range("2010-02-05", periods=n_weeks, freq="7D")
    t = np.arange(n_weeks)
    season = 1 + 0.3 * np.sin(2 * np.pi * t / 52.18)
    frames = []
    for dept in range(1, 31):
        level = 1000 * (1 + 0.1 * dept) * 1.06 ** (t / 52.18)
        sales = level * season * np.exp(rng.normal(0, 0.08, n_weeks))
        frames.append(pd.DataFrame({"store": 1, "dept": dept, WEEK: weeks, "sales": sales, "is_holiday": False}))
    return pd.concat(frames, ignore_index=True)


def test_chained_second_year_adds_a_view_of_the_season_without_a_level_bias() -> None:
    full = _growing_season(143)
    cutoff = full[WEEK].min() + pd.Timedelta(weeks=103)  # two years: no two-year pairs yet
    history, actual = full[full[WEEK] <= cutoff], full[full[WEEK] > cutoff]
    scores = {}
    for chain in (False, True):
        model = CalendarYoY(chain_years=chain, own_halflife=12.0).fit(history)
        pred = model.predict(39).merge(actual, on=["store", "dept", WEEK])
        scores[chain] = (float(np.abs(pred["yhat"] - pred["sales"]).sum() / pred["sales"].sum()),
                         float(pred["yhat"].sum() / pred["sales"].sum() - 1))
        if chain:
            assert np.isfinite(model.growth_[1]).all() and not np.isfinite(CalendarYoY().fit(history).growth_[1]).any()
    assert scores[True][0] < 0.95 * scores[False][0]  # two noisy views beat one
    assert abs(scores[True][1]) < 0.02  # the older year is re-levelled, not biased low


def test_chaining_changes_nothing_once_two_year_growth_is_measured() -> None:
    history = _growing_season(130)
    one = CalendarYoY(chain_years=False).fit(history).predict(13)
    two = CalendarYoY(chain_years=True).fit(history).predict(13)
    pd.testing.assert_frame_equal(one, two)
