"""storecast: weekly retail sales forecasting that stays trustworthy in production."""

__version__ = "0.1.0"
