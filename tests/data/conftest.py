"""Fixtures for the data tests (helpers live in ``data_files``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_files import csv_lines, seed_frame, write_lines


@pytest.fixture
def seed_lines() -> list[str]:
    return csv_lines(seed_frame())


@pytest.fixture
def walmart_file(tmp_path: Path, seed_lines: list[str]) -> Path:
    return write_lines(tmp_path / "Walmart.csv", seed_lines)
