"""storecast: weekly retail sales forecasting that stays trustworthy in production.

The Python API (see ``storecast.api``): ``DataSpec`` declares the data, ``forecast``,
``backtest`` and ``fit`` run the same forecasting core as the CLI on a DataFrame or a file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["DataSpec", "Forecast", "__version__", "backtest", "fit", "forecast"]

if TYPE_CHECKING:
    from storecast.api import Forecast, backtest, fit, forecast
    from storecast.data.spec import DataSpec


def __getattr__(name: str) -> Any:
    """Import the API lazily: ``import storecast`` stays cheap for the CLI and the service."""
    if name == "DataSpec":
        from storecast.data.spec import DataSpec

        return DataSpec
    if name in ("Forecast", "backtest", "fit", "forecast"):
        from storecast import api

        return getattr(api, name)
    raise AttributeError(f"module 'storecast' has no attribute {name!r}")
