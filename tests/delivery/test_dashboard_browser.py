"""The dashboard in a real headless Chromium, driven over the DevTools protocol.

Loads ``dashboard.html`` from disk with the network off, checks there are no console
errors, reads the Plotly graph divs to count traces and points, works the store and
department selectors, and saves a screenshot under the test's tmp output.

Run as a script to screenshot any dashboard (this is how ``docs/img/dashboard.png`` is made):
``python tests/delivery/test_dashboard_browser.py outputs/dashboard.html docs/img/dashboard.png``
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--remote-debugging-port=0", "--window-size=1400,1000", "--hide-scrollbars", "--mute-audio",
         "--no-first-run", "--no-default-browser-check"]


class Browser:
    """A headless Chromium with one page, spoken to over the Chrome DevTools Protocol."""

    def __init__(self, profile: Path, timeout: float = 60.0) -> None:
        import websocket  # dev extra

        self.timeout = timeout
        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.is_file() and port_file.read_text().count("\n") >= 1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                self.close()
                raise RuntimeError(f"chromium did not start: {err[-2000:]}")
            time.sleep(0.05)
        port = port_file.read_text().splitlines()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            pages = [t for t in json.load(resp) if t["type"] == "page"]
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True)
        self.events: list[dict[str, Any]] = []
        self._id = 0
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]
            self.events.append(msg)

    def wait_event(self, method: str) -> dict[str, Any]:
        for i, ev in enumerate(self.events):
            if ev.get("method") == method:
                return self.events.pop(i)
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("method") == method:
                return msg
            self.events.append(msg)

    def js(self, expression: str) -> Any:
        """Evaluate ``expression`` (awaiting a promise) and return its JSON value."""
        res = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression!r} threw: {res['exceptionDetails']}")
        return res["result"].get("value")

    def open(self, path: Path) -> None:
        self.call("Page.navigate", url=path.resolve().as_uri())
        self.wait_event("Page.loadEventFired")
        self.js("window.storecastReady.then(() => new Promise(r => requestAnimationFrame(() => r(true))))")

    def console_errors(self) -> list[str]:
        errors = []
        for ev in self.events:
            method, params = ev.get("method"), ev.get("params", {})
            if method == "Runtime.exceptionThrown":
                errors.append(str(params["exceptionDetails"]))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(params["entry"]["text"])
        return errors

    def screenshot(self, path: Path) -> Path:
        height = self.js("document.documentElement.scrollHeight")
        self.call("Emulation.setDeviceMetricsOverride", width=1400, height=int(height), deviceScaleFactor=1, mobile=False)
        self.js("new Promise(r => setTimeout(() => requestAnimationFrame(() => r(true)), 300))")
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        """Stop the browser and its helper processes (its own process group, started above)."""
        if getattr(self, "ws", None) is not None:
            with contextlib.suppress(Exception):
                self.call("Browser.close")
            self.ws.close()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue


TRACES_JS = """JSON.stringify(document.getElementById('%s').data.map(
    t => ({name: t.name, n: (t.x || []).length, color: (t.line || {}).color || (t.marker || {}).color || null})))"""
TITLE_JS = "document.getElementById('sc-main').layout.title.text"


def traces(browser: Browser, div: str = "sc-main") -> list[dict[str, Any]]:
    return json.loads(browser.js(TRACES_JS % div))


def select(browser: Browser, element: str, value: str) -> None:
    browser.js(
        f"(() => {{ const s = document.getElementById('{element}'); s.value = '{value}';"
        " s.dispatchEvent(new Event('change')); return new Promise(r => setTimeout(() => r(true), 50)); })()"
    )


@pytest.fixture
def browser(tmp_path: Path):
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"headless chromium not found at {CHROMIUM} (apt-get install chromium; .ci/run does it)")
    pytest.importorskip("websocket", reason="websocket-client is in the dev extra: pip install -e '.[dev]'")
    b = Browser(tmp_path / "profile")
    yield b
    b.close()


def _span(values) -> int:
    """Points a series array holds: from its first to its last known value."""
    idx = values.reset_index(drop=True)
    known = idx[idx.notna()].index
    return 0 if known.empty else int(known[-1] - known[0] + 1)


@pytest.mark.browser
def test_store_dashboard_renders_without_errors_and_switches_stores(browser: Browser, tmp_path: Path) -> None:
    from dashboard_fixtures import HORIZON, WINDOWS, predictions_for, store_dataset

    from storecast.delivery.dashboard import ACTUAL_COLOR, PREDICTED_COLOR, write_dashboard

    table = predictions_for(store_dataset())
    page = write_dashboard(table, None, tmp_path)
    browser.open(page)

    main = traces(browser)
    assert [t["name"] for t in main] == ["95% interval", "95% interval", "80% interval", "80% interval",
                                         "Actual", "Predicted", "Holiday week"]
    n_weeks = table["week"].nunique()
    by_name = {t["name"]: t for t in main}
    assert by_name["Actual"]["n"] == n_weeks - HORIZON
    assert by_name["Actual"]["color"] == ACTUAL_COLOR and by_name["Predicted"]["color"] == PREDICTED_COLOR
    assert by_name["Predicted"]["n"] == (WINDOWS + 1) * HORIZON
    assert all(t["n"] == (WINDOWS + 1) * HORIZON for t in main[:4])
    assert by_name["Holiday week"]["n"] >= 4  # ~2.3 years of four flagged holidays

    store_bars = traces(browser, "sc-store-mape")
    assert len(store_bars) == 1 and store_bars[0]["n"] == table["store"].nunique()
    week_bars = traces(browser, "sc-week-mape")
    assert len(week_bars) == 2 and sum(t["n"] for t in week_bars) == WINDOWS * HORIZON

    select(browser, "sc-k0", "3")
    assert browser.js(TITLE_JS) == "Store 3"
    store3 = table[table["store"] == 3].sort_values("week")
    after = {t["name"]: t["n"] for t in traces(browser)}
    assert after["Actual"] == _span(store3["actual"])
    assert after["Predicted"] == _span(store3["predicted"])

    assert browser.console_errors() == []
    shot = browser.screenshot(tmp_path / "dashboard.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


@pytest.mark.browser
def test_department_drill_down(browser: Browser, tmp_path: Path) -> None:
    from dashboard_fixtures import dept_dataset, predictions_for

    from storecast.delivery.dashboard import write_dashboard

    table = predictions_for(dept_dataset())
    monitoring = {"check": ["realized MAPE"], "status": ["warn"], "value": [7.5]}
    import pandas as pd

    page = write_dashboard(table, None, tmp_path, monitoring=pd.DataFrame(monitoring))
    browser.open(page)
    assert browser.js("document.getElementById('sc-k1').disabled") is True

    select(browser, "sc-k0", "1")
    options = browser.js("Array.from(document.getElementById('sc-k1').options).map(o => o.value)")
    depts = sorted(table.loc[table["store"] == 1, "dept"].unique())
    assert options == ["all", *[str(d) for d in depts]]
    assert browser.js(TITLE_JS) == "Store 1 · all departments"

    select(browser, "sc-k1", "3")  # the department that opens late
    assert browser.js(TITLE_JS) == "Store 1 · Dept 3"
    series = table[(table["store"] == 1) & (table["dept"] == 3)].sort_values("week")
    got = {t["name"]: t["n"] for t in traces(browser)}
    assert got["Actual"] == _span(series["actual"]) == series["actual"].notna().sum()

    assert browser.js("document.querySelectorAll('#sc-monitoring tr.sc-status-warn').length") == 1
    assert browser.console_errors() == []
    browser.screenshot(tmp_path / "dashboard-dept.png")


def main(argv: list[str]) -> int:
    """Screenshot a dashboard file: ``test_dashboard_browser.py DASHBOARD.html OUT.png``."""
    page, out = Path(argv[0]), Path(argv[1])
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        b = Browser(Path(tmp) / "profile")
        try:
            b.open(page)
            b.screenshot(out)
            errors = b.console_errors()
        finally:
            b.close()
    print(f"{out}: {out.stat().st_size:,} bytes; console errors: {errors or 'none'}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


@pytest.mark.browser
def test_text_keys_drill_down(browser: Browser, tmp_path: Path) -> None:
    from dashboard_fixtures import dept_dataset, predictions_for

    from storecast.delivery.dashboard import write_dashboard

    table = predictions_for(dept_dataset())
    names = {3: "Alpha 64oz", 6: "Beta 64oz", 9: "Gamma <96oz>", 12: "Delta, 128oz"}
    table = table.assign(dept=table["dept"].map(names)).rename(columns={"dept": "brand"})
    browser.open(write_dashboard(table, None, tmp_path, keys=["store", "brand"], metric="wmape"))
    assert browser.js("document.getElementById('sc-k1').disabled") is True
    select(browser, "sc-k0", "2")
    assert browser.js(TITLE_JS) == "Store 2 · all brands"
    options = browser.js("Array.from(document.getElementById('sc-k1').options).map(o => o.textContent)")
    assert options[0] == "All brands" and options[-1].startswith("Gamma <96oz> · WAPE ")
    select(browser, "sc-k1", "Gamma <96oz>")
    assert browser.js(TITLE_JS) == "Store 2 · Gamma <96oz>"
    series = table[(table["store"] == 2) & (table["brand"] == "Gamma <96oz>")]
    assert {t["name"]: t["n"] for t in traces(browser)}["Actual"] == _span(series.sort_values("week")["actual"])
    select(browser, "sc-k0", "total")
    assert browser.js(TITLE_JS) == "Chain total" and browser.js("document.getElementById('sc-k1').disabled") is True
    assert browser.console_errors() == []
    browser.screenshot(tmp_path / "dashboard-brands.png")
