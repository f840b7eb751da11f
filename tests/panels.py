"""Small synthetic retailers other than Walmart, shaped like real exports (imported as ``panels``).

- ``promo_chain``: weekly unit sales per store x brand, weeks dated by the Thursday that
  starts them (Dominick's shape), text brand names, planned price/deal/feature.
- ``daily_chain``: a daily export (one row per store and day) with closed days, a store
  that opens during the history and partial weeks at both ends, whose weekly sums are known.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BRANDS = ("Alpha 64oz", "Beta 64oz", "Gamma 96oz")


def promo_chain(n_stores: int = 5, n_weeks: int = 120, seed: int = 11) -> pd.DataFrame:
    """``store, brand, week_start, units, price, deal, feature``: a deal doubles a brand's
    units, a feature ad adds half; yearly season; log-normal noise."""
    rng = np.random.default_rng(seed)
    weeks = pd.date_range("1990-06-14", periods=n_weeks, freq="7D")  # Thursdays
    season = 1 + 0.15 * np.sin(2 * np.pi * np.arange(n_weeks) / 52)
    parts = []
    for store in range(1, n_stores + 1):
        level = rng.uniform(800, 1500)
        for b, brand in enumerate(BRANDS):
            deal = (rng.random(n_weeks) < 0.2).astype(float)
            feature = deal * (rng.random(n_weeks) < 0.5)
            units = level * (1 + 0.3 * b) * season * (1 + deal) * (1 + 0.5 * feature) * rng.lognormal(0, 0.1, n_weeks)
            parts.append(pd.DataFrame({
                "store": store, "brand": brand, "week_start": weeks.strftime("%Y-%m-%d"), "units": np.round(units),
                "price": np.round((0.03 + 0.005 * b) * (1 - 0.1 * deal), 5), "deal": deal.astype(int),
                "feature": feature,
            }))
    return pd.concat(parts, ignore_index=True)


def daily_chain(seed: int = 7) -> pd.DataFrame:
    """``Store, Date, Sales, Promo, Open``: three stores, 2021-01-06 (a Wednesday) to
    2022-12-29 (a Thursday), Sunday closures (no row), store ``C3`` opening 2022-03-01."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2021-01-06", "2022-12-29", freq="D")
    parts = []
    for i, store in enumerate(("A1", "B2", "C3")):
        open_from = pd.Timestamp("2022-03-01") if store == "C3" else days[0]
        mine = days[(days >= open_from) & (days.dayofweek != 6)]  # closed on Sundays: no row at all
        promo = (rng.random(len(mine)) < 0.15).astype(int)
        sales = np.round((100 + 40 * i) * (1 + 0.3 * promo) * rng.lognormal(0, 0.1, len(mine)), 2)
        parts.append(pd.DataFrame({"Store": store, "Date": mine.strftime("%d.%m.%Y"), "Sales": sales,
                                   "Promo": promo, "Open": 1}))
    return pd.concat(parts, ignore_index=True)
