"""Feature layer: the retail calendar, holidays, lags and level features."""
