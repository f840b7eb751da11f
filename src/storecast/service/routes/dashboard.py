"""The live dashboard: one HTML page that reads this API; plotly.js comes from the installed
plotly package (``/static/plotly.min.js``), never from a CDN."""

from __future__ import annotations

import functools
import hashlib
from importlib import resources

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from storecast.service.deps import ReadAccess

router = APIRouter(tags=["dashboard"], dependencies=[ReadAccess])


@functools.cache
def plotly_js() -> tuple[bytes, str]:
    """The plotly.js bundle shipped inside the plotly wheel, and its ETag."""
    data = resources.files("plotly").joinpath("package_data", "plotly.min.js").read_bytes()
    return data, '"' + hashlib.sha256(data).hexdigest()[:16] + '"'


@router.get("/static/plotly.min.js", include_in_schema=False)
def plotly_bundle(request: Request) -> Response:
    data, etag = plotly_js()
    headers = {"ETag": etag, "Cache-Control": "public, max-age=86400"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type="application/javascript", headers=headers)


@router.get("/dashboard", response_class=HTMLResponse, summary="The live dashboard page.")
def dashboard() -> HTMLResponse:
    return HTMLResponse(PAGE)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>storecast dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
 header{display:flex;gap:1rem;align-items:baseline;flex-wrap:wrap}
 #meta{color:#666;font-size:.9rem} select,input{font-size:1rem}
 table{border-collapse:collapse;font-size:.85rem;margin-top:1rem}
 td,th{border-bottom:1px solid #ddd;padding:.2rem .6rem;text-align:right}
 #error{color:#b00}
</style>
<script src="static/plotly.min.js"></script>
</head><body>
<header><h1>storecast</h1>
 <label>Store <select id="store"></select></label>
 <label>Weeks <input id="weeks" type="number" min="1" max="52" value="26"></label>
 <span id="meta"></span></header>
<div id="error"></div>
<div id="chart" style="height:480px"></div>
<h2>Accuracy</h2><div id="accuracy"></div>
<script>
const ACTUAL = "#1f77b4", PREDICTED = "#d62728";
const $ = (id) => document.getElementById(id);
const headers = {};
// The key rides in the fragment (#key=...), which browsers never send: it stays out of access logs.
const key = new URLSearchParams(location.hash.slice(1)).get("key") || new URLSearchParams(location.search).get("key");
if (key) headers["X-API-Key"] = key;
async function get(path) {
  const r = await fetch(path, {headers});
  const body = await r.json();
  if (!r.ok) throw new Error(body.message || r.statusText);
  return body;
}
function text(tag, value) { const e = document.createElement(tag); e.textContent = value; return e; }
async function draw() {
  $("error").textContent = "";
  try {
    const store = $("store").value, weeks = $("weeks").value || 26;
    const [f, s] = await Promise.all([get(`forecast/${store}?weeks=${weeks}`), get(`sales/${store}?weeks=104`)]);
    $("meta").textContent = `model ${f.model} v${f.model_version} - cutoff ${f.cutoff}`;
    const x = f.forecast.map(p => p.week);
    const band = (lo, hi, name, color) => [
      {x, y: f.forecast.map(p => p[hi]), mode: "lines", line: {width: 0}, showlegend: false, hoverinfo: "skip"},
      {x, y: f.forecast.map(p => p[lo]), mode: "lines", line: {width: 0}, fill: "tonexty", fillcolor: color, name}];
    Plotly.react("chart", [
      {x: s.sales.map(p => p.week), y: s.sales.map(p => p.sales), name: "Actual", line: {color: ACTUAL}},
      ...band("lo_95", "hi_95", "95% interval", "rgba(214,39,40,0.12)"),
      ...band("lo_80", "hi_80", "80% interval", "rgba(214,39,40,0.25)"),
      {x, y: f.forecast.map(p => p.yhat), name: "Predicted", line: {color: PREDICTED}},
    ], {title: `Store ${store}`, yaxis: {title: "Weekly sales"}, hovermode: "x unified",
        shapes: [{type: "line", xref: "x", yref: "paper", x0: f.cutoff, x1: f.cutoff, y0: 0, y1: 1,
                  line: {dash: "dot", color: "grey"}}]});
  } catch (e) { $("error").textContent = e.message; }
}
async function accuracy() {
  try {
    const a = await get("accuracy");
    const table = document.createElement("table");
    const head = table.insertRow();
    ["metric", "backtest"].forEach(h => head.appendChild(text("th", h)));
    for (const [k, v] of Object.entries(a.backtest)) {
      const row = table.insertRow();
      row.appendChild(text("td", k)); row.appendChild(text("td", v === null ? "" : v.toFixed(3)));
    }
    $("accuracy").replaceChildren(table);
  } catch (e) { $("accuracy").textContent = e.message; }
}
(async () => {
  try {
    const st = await get("stores");
    const seen = new Set();
    for (const row of st.stores) {
      if (seen.has(row.store)) continue;
      seen.add(row.store);
      const o = text("option", `Store ${row.store}`); o.value = row.store; $("store").appendChild(o);
    }
    $("store").onchange = draw; $("weeks").onchange = draw;
    await draw(); await accuracy();
  } catch (e) { $("error").textContent = e.message; }
})();
</script></body></html>
"""
