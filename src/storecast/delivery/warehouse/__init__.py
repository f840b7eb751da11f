"""The warehouse: one interface over SQLAlchemy; DuckDB embedded by default, PostgreSQL by URL.

``tables`` declares the tables and migrations, ``bulk`` loads frames fast (binary COPY on
PostgreSQL, Arrow on DuckDB), ``store`` holds the ``Warehouse`` class, ``export``
re-exports a stored run as the BI CSV or Parquet.
"""

from storecast.delivery.warehouse.export import export_run, run_predictions_table
from storecast.delivery.warehouse.store import RunRecord, SalesMerge, Warehouse, make_engine

__all__ = ["RunRecord", "SalesMerge", "Warehouse", "export_run", "make_engine", "run_predictions_table"]
