"""Evaluation layer: rolling-origin backtests and forecast metrics."""
