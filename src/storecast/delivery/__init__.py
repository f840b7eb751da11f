"""Delivery layer: the BI CSV, the warehouse and the dashboard."""
