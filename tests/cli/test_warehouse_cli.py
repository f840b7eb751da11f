"""`storecast ingest` and `storecast export` through the CLI (DuckDB; the backends are
covered by tests/delivery and tests/lifecycle)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from storecast.cli import app
from storecast.synthetic import write_walmart_csv

runner = CliRunner()


def _run(args: list[str]) -> tuple[int, str]:
    result = runner.invoke(app, args)
    return result.exit_code, result.output


def test_ingest_accepts_then_reports_unchanged(tmp_path: Path) -> None:
    data = write_walmart_csv(tmp_path / "w.csv", n_stores=2, n_weeks=30, seed=4)
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    code, out = _run(["ingest", "--data", str(data), "--warehouse", url])
    assert code == 0, out
    assert "accepted" in out and "60" in out
    code, out = _run(["ingest", "--data", str(data), "--warehouse", url, "--json"])
    assert code == 0, out
    body = json.loads(out.strip().splitlines()[-1])
    assert body["status"] == "unchanged" and body["rows_new"] == 0


def test_rejected_files_exit_2_with_the_reason_and_no_traceback(tmp_path: Path) -> None:
    data = write_walmart_csv(tmp_path / "w.csv", n_stores=2, n_weeks=30, seed=4)
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    assert _run(["ingest", "--data", str(data), "--warehouse", url])[0] == 0

    lines = data.read_text().splitlines()
    cells = lines[3].split(",")
    cells[2] = "1,234.00"  # a thousands separator splits the row: an error, never a guess
    (tmp_path / "bad.csv").write_text("\n".join([*lines[:3], ",".join(cells), *lines[4:]]) + "\n")
    code, out = _run(["ingest", "--data", str(tmp_path / "bad.csv"), "--warehouse", url])
    assert code == 2, out
    assert "rejected" in out and "bad.csv" in out and "Traceback" not in out

    raw = pd.read_csv(data)
    raw.loc[0, "Weekly_Sales"] += 1.0
    raw.to_csv(tmp_path / "restated.csv", index=False)
    code, out = _run(["ingest", "--data", str(tmp_path / "restated.csv"), "--warehouse", url])
    assert code == 2 and "--allow-restatement" in out
    code, out = _run(["ingest", "--data", str(tmp_path / "restated.csv"), "--warehouse", url, "--allow-restatement"])
    assert code == 0, out
    assert "restated" in out


def test_export_reproduces_the_run_csv_byte_for_byte(tmp_path: Path) -> None:
    data = write_walmart_csv(tmp_path / "w.csv", n_stores=2, n_weeks=120, seed=6)
    out_dir = tmp_path / "out"
    code, out = _run(["-q", "run", "--data", str(data), "--out", str(out_dir)])
    assert code == 0, out
    url = f"duckdb:///{out_dir / 'storecast.duckdb'}"
    code, out = _run(["export", "--run", "latest", "--format", "csv", "--out", str(tmp_path / "again.csv"),
                      "--warehouse", url])
    assert code == 0, out
    assert (tmp_path / "again.csv").read_bytes() == (out_dir / "walmart_sales_predictions.csv").read_bytes()

    code, out = _run(["export", "--format", "parquet", "--out", str(tmp_path / "again.parquet"), "--warehouse", url])
    assert code == 0, out
    rows = pd.read_parquet(tmp_path / "again.parquet")
    forecast = rows[rows["kind"] == "forecast"]
    assert len(forecast) == 2 * 13 and forecast["lo_80"].notna().all()

    code, out = _run(["export", "--run", "no-such-run", "--out", str(tmp_path / "x.csv"), "--warehouse", url])
    assert code == 2 and "no-such-run" in out and "Traceback" not in out
    code, out = _run(["export", "--format", "xlsx", "--out", str(tmp_path / "x.xlsx"), "--warehouse", url])
    assert code == 2 and "csv or parquet" in out


def test_an_unreachable_warehouse_is_named_without_its_password(tmp_path: Path) -> None:
    data = write_walmart_csv(tmp_path / "w.csv", n_stores=2, n_weeks=30, seed=4)
    password = "Pw-s3cret-cli-9"
    url = f"postgresql+psycopg://postgres:{password}@127.0.0.1:5999/db?password={password}"
    for verbose in ([], ["-v"]):
        code, out = _run([*verbose, "ingest", "--data", str(data), "--warehouse", url])
        assert code == 2, out
        assert password not in out and "127.0.0.1:5999" in out


def _stored_run(tmp_path: Path) -> tuple[str, bytes]:
    data = write_walmart_csv(tmp_path / "w.csv", n_stores=2, n_weeks=110, seed=6)
    out_dir = tmp_path / "out"
    code, out = _run(["-q", "run", "--data", str(data), "--out", str(out_dir)])
    assert code == 0, out
    return f"duckdb:///{out_dir / 'storecast.duckdb'}", (out_dir / "walmart_sales_predictions.csv").read_bytes()


def test_export_writes_into_the_path_it_is_given(tmp_path: Path) -> None:
    """A directory gets a file name, a symlink is written through, a FIFO is written into,
    never replaced; nothing is left behind."""
    import os
    import stat
    import threading

    url, expected = _stored_run(tmp_path)
    target = tmp_path / "exports"
    target.mkdir()
    code, out = _run(["export", "--out", str(target), "--warehouse", url])
    assert code == 0, out
    written = list(target.iterdir())
    assert len(written) == 1 and written[0].suffix == ".csv" and written[0].read_bytes() == expected
    assert str(written[0]) in out
    assert not list(tmp_path.glob("exports.tmp*"))

    real = tmp_path / "real.csv"
    real.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    code, out = _run(["export", "--out", str(link), "--warehouse", url])
    assert code == 0, out
    assert link.is_symlink() and os.readlink(link) == str(real) and real.read_bytes() == expected

    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    code, out = _run(["export", "--out", str(fifo), "--warehouse", url])
    reader.join(timeout=30)
    assert code == 0, out
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and received == [expected]
    assert sorted(p.name for p in tmp_path.iterdir() if ".tmp" in p.name) == []


def test_export_leaves_nothing_behind_when_the_disk_is_full(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import errno

    import storecast.delivery.warehouse.export as export_module

    url, _ = _stored_run(tmp_path)
    target = tmp_path / "x.csv"
    target.write_text("previous export\n")

    def full(*args: object, **kwargs: object) -> str:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export_module, "render_predictions_csv", full)
    code, out = _run(["export", "--out", str(target), "--warehouse", url])
    assert code == 2 and "No space left on device" in out and "Traceback" not in out
    assert target.read_text() == "previous export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "w.csv", "x.csv"]
