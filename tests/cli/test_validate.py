"""`storecast validate`: a table or JSON, exit 0 for clean/warnings, 2 with file/row/problem on errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from storecast.cli import app
from storecast.synthetic import write_walmart_csv

runner = CliRunner()


def _validate(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["validate", *args])
    return result.exit_code, result.output


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return write_walmart_csv(tmp_path / "good.csv", n_stores=2, n_weeks=40, seed=4)


def _corrupt(good: Path, tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A corrupt copy of ``good`` and the text the error must show."""
    lines = good.read_text().splitlines()
    cells = lines[5].split(",")
    expect = "row 6"
    if kind == "text":
        cells[2] = "twelve"
    elif kind == "huge":
        cells[2] = "1000000000000"
    elif kind == "duplicate":
        lines.append(lines[5])
    elif kind == "truncated":
        cells = cells[:3]
    elif kind == "thousands":
        cells[2] = '"1,234,567.00"'
    elif kind == "mixed_dates":
        d, m, y = cells[1].split("-")
        cells[1] = f"{y}-{m}-{d}"
    elif kind == "delimiter":
        lines = [line.replace(",", ";") for line in lines]
        expect = "row 1"
    elif kind == "empty":
        lines, expect = [], "empty"
    elif kind == "header_only":
        lines, expect = lines[:1], "row 2"
    if kind not in {"delimiter", "empty", "header_only", "duplicate"}:
        lines[5] = ",".join(cells)
    path = tmp_path / f"{kind}.csv"
    path.write_text("\n".join(lines) + ("\n" if lines else ""))
    return path, expect


def test_clean_file_exits_0_and_prints_a_summary(good: Path) -> None:
    code, output = _validate("--data", str(good))
    assert code == 0, output
    assert "0 error(s)" in " ".join(output.split())


def test_json_lists_counts_and_rows(good: Path, tmp_path: Path) -> None:
    path, _ = _corrupt(good, tmp_path, "huge")
    code, output = _validate("--data", str(path), "--json")
    assert code == 2
    body = json.loads(output.splitlines()[0])
    assert body["ok"] is False and body["counts"]["errors"] >= 1
    assert any(i["check"] == "implausible" and i["rows"] == [6] for i in body["issues"])


@pytest.mark.parametrize("kind", ["text", "huge", "duplicate", "truncated", "thousands",
                                  "mixed_dates", "delimiter", "empty", "header_only"])
def test_corrupt_files_exit_2_with_file_row_and_problem(good: Path, tmp_path: Path, kind: str) -> None:
    path, expect = _corrupt(good, tmp_path, kind)
    code, output = _validate("--data", str(path))
    flat = " ".join(output.split())
    assert code == 2, output
    assert "Traceback" not in output
    assert path.name in flat and "error" in flat
    code, output = _validate("--data", str(path), "--json")
    body = json.loads(output.splitlines()[0])
    assert code == 2 and not body["ok"]
    errors = [i for i in body["issues"] if i["severity"] == "error"]
    if expect.startswith("row"):
        assert int(expect.split()[1]) in {r for i in errors for r in i["rows"]}, errors
    else:
        assert any(expect in i["message"] for i in errors), errors


def test_missing_file_is_exit_2(tmp_path: Path) -> None:
    code, output = _validate("--data", str(tmp_path / "nope.csv"))
    assert code == 2 and "nope.csv" in output and "Traceback" not in output


@pytest.mark.realdata
def test_real_seed_file_validates(walmart_csv: Path) -> None:
    code, output = _validate("--data", str(walmart_csv), "--json")
    assert code == 0, output
    body = json.loads(output)
    assert body["n_rows"] == 5265 and body["n_series"] == 45 and body["counts"]["errors"] == 0


@pytest.mark.realdata
def test_real_department_data_warns_but_passes(recruiting_dir: Path) -> None:
    code, output = _validate("--data", str(recruiting_dir), "--json")
    assert code == 0, output
    body = json.loads(output)
    warned = {i["check"] for i in body["issues"] if i["severity"] == "warning"}
    assert {"negative_sales", "gaps"} <= warned
    assert body["counts"]["errors"] == 0
