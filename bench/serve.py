"""Load test of `storecast serve` on loopback: one uvicorn worker, open-loop fixed-rate load.

Builds a champion on synthetic Walmart-shaped data (45 stores x 143 weeks) in a temp
folder, starts `storecast -q serve` on 127.0.0.1, then for ``--seconds`` each:
- ``GET /forecast/{store}?weeks=13`` at ``--rate`` requests/s (target 500/s, p99 < 10 ms);
- ``POST /predict`` one store x 13 weeks with a scenario at ``--predict-rate``/s (default 10/s, an
  interactive planning tool's pace; p99 < 50 ms).
Requests are sent on a fixed schedule whatever the answers (open loop), and latency counts
from the scheduled time, so a slow server shows up as latency, not as a lower offered rate.
The client is raw asyncio HTTP/1.1 on keep-alive connections, to leave the CPU to the server. Prints a table; 0 errors expected.

    .venv/bin/python bench/serve.py [--seconds 60] [--rate 500] [--predict-rate 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from storecast.config import Settings
from storecast.lifecycle.retrain import retrain_job
from storecast.synthetic import write_walmart_csv

STORECAST = Path(sys.executable).with_name("storecast")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Conn:
    """One keep-alive HTTP/1.1 connection over raw asyncio streams (a light client, so the
    load generator does not eat the CPU the server is being measured on)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await self.reader.readexactly(length)
        return status


def _raw(method: str, url: str, body: object, port: int) -> bytes:
    payload = b"" if body is None else json.dumps(body).encode()
    head = f"{method} {url} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(payload)}\r\n"
    if body is not None:
        head += "Content-Type: application/json\r\n"
    return head.encode() + b"\r\n" + payload


async def _load(port: int, seconds: float, rate: float, make: object, connections: int) -> dict[str, float]:
    """Send ``rate`` requests/s for ``seconds`` on a fixed schedule; latency = send to last byte."""
    pool: asyncio.Queue[_Conn] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(_Conn(*await asyncio.open_connection("127.0.0.1", port)))
    latencies: list[float] = []
    errors = 0

    async def one(raw: bytes, due: float) -> None:
        nonlocal errors
        conn = await pool.get()
        try:
            status = await conn.request(raw)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            status = 0
            conn = _Conn(*await asyncio.open_connection("127.0.0.1", port))
        latencies.append(time.perf_counter() - due)  # from the scheduled time: queueing counts
        errors += status != 200
        pool.put_nowait(conn)

    total = int(seconds * rate)
    requests = [_raw(*make(i), port) for i in range(total)]  # type: ignore[operator]
    start = time.perf_counter()
    tasks = []
    for i, raw in enumerate(requests):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(raw, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    while not pool.empty():
        pool.get_nowait().writer.close()
    ms = np.array(latencies) * 1000
    return {"requests": len(ms), "seconds": elapsed, "rate": len(ms) / elapsed, "errors": errors,
            "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "max": float(ms.max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="Duration of each load phase (max 60).")
    parser.add_argument("--rate", type=float, default=500.0, help="GET /forecast requests per second.")
    parser.add_argument("--predict-rate", type=float, default=10.0, help="POST /predict requests per second.")
    parser.add_argument("--stores", type=int, default=45)
    args = parser.parse_args()
    seconds = min(args.seconds, 60.0)

    with tempfile.TemporaryDirectory(prefix="storecast-bench-serve-") as tmp:
        out = Path(tmp) / "out"
        data = write_walmart_csv(Path(tmp) / "walmart.csv", n_stores=args.stores, n_weeks=143, seed=7)
        t = time.perf_counter()
        retrain_job(Settings(out_dir=out), data)
        print(f"trained and registered a champion in {time.perf_counter() - t:.1f}s")
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen([str(STORECAST), "-q", "serve", "--out", str(out), "--port", str(port)],
                                cwd=tmp, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.time() + 120
            while True:
                try:
                    if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.time() > deadline:
                    raise SystemExit(f"serve did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
                time.sleep(0.5)
            first = httpx.get(f"{base}/forecast/1").json()
            weeks = [p["week"] for p in first["forecast"]]
            rng = random.Random(0)

            def forecast(_: int) -> tuple[str, str, None]:
                return "GET", f"/forecast/{rng.randint(1, args.stores)}?weeks=13", None

            def predict(i: int) -> tuple[str, str, dict[str, object]]:
                scenario = [{"week": weeks[i % 13], "is_holiday": True, "markdown1": 2500.0, "temperature": 60.0}]
                return "POST", "/predict", {"stores": [rng.randint(1, args.stores)], "weeks": 13, "scenario": scenario}

            asyncio.run(_load(port, 2, 100, forecast, 8))  # warm-up
            results = {
                "GET /forecast/{store}": asyncio.run(_load(port, seconds, args.rate, forecast, 32)),
                "POST /predict (1 store x 13 wk)": asyncio.run(_load(port, seconds, args.predict_rate, predict, 16)),
            }
        finally:
            proc.terminate()
            proc.wait(timeout=20)

    print(f"\nstorecast serve, one uvicorn worker, loopback, {seconds:.0f}s per phase, {os.cpu_count()} cores")
    print("| endpoint | requests | offered/s | achieved/s | p50 ms | p99 ms | max ms | errors |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    offered = {"GET /forecast/{store}": args.rate, "POST /predict (1 store x 13 wk)": args.predict_rate}
    for name, r in results.items():
        print(f"| {name} | {r['requests']} | {offered[name]:.0f} | {r['rate']:.0f} | {r['p50']:.2f} | "
              f"{r['p99']:.2f} | {r['max']:.1f} | {r['errors']} |")


if __name__ == "__main__":
    main()
