"""Data layer: readers, the canonical schema, the quality gate and weekly ingest."""
