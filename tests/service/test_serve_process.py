"""`storecast serve` as a real process: refuses without a model, serves over HTTP with one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from svc_helpers import KEY
from typer.testing import CliRunner

from storecast.cli import app
from storecast.config import Settings
from storecast.lifecycle.retrain import retrain_job
from storecast.synthetic import write_walmart_csv

STORECAST = Path(sys.executable).with_name("storecast")


def test_serve_refuses_to_start_without_a_trained_model(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--out", str(tmp_path / "empty")])
    assert result.exit_code == 2
    assert "no trained model" in result.output and "storecast run --data" in result.output
    assert "Traceback" not in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_process_answers_over_http(tmp_path: Path) -> None:
    out = tmp_path / "out"
    data = write_walmart_csv(tmp_path / "walmart.csv", n_stores=5, n_weeks=143, seed=11)
    retrain_job(Settings(out_dir=out, backtest_windows=2), data)  # champion + stored forecast, like `make demo`
    port = _free_port()
    env = {**os.environ, "STORECAST_API_KEYS": KEY}
    proc = subprocess.Popen(
        [str(STORECAST), "-q", "serve", "--out", str(out), "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"serve did not become ready: {proc.stdout.read().decode() if proc.stdout else ''}")
            time.sleep(0.3)
        forecast = httpx.get(f"{base}/forecast/2?weeks=8").json()
        assert forecast["model_version"] == "1" and len(forecast["forecast"]) == 8
        week = forecast["forecast"][1]["week"]
        csv = httpx.get(f"{base}/forecasts?week={week}", headers={"Accept": "text/csv"})
        assert csv.status_code == 200 and len(csv.text.strip().splitlines()) == 6
        what_if = httpx.post(f"{base}/predict", json={"stores": [2], "scenario": [{"week": week, "markdown1": 5000}]})
        assert what_if.status_code == 200 and len(what_if.json()["forecast"]) == 13
        assert httpx.post(f"{base}/retrain").status_code == 401
        assert "storecast_requests_total" in httpx.get(f"{base}/metrics").text
    finally:
        proc.terminate()
        proc.wait(timeout=20)
