"""The dashboard page: static figures and tables built here, the main chart built in the browser.

The accuracy charts and the main chart's layout (forecast shading, holiday marks) are Plotly
figures made in Python; the main chart's traces are made by a small inline script from the
payload for whatever store/department is selected. plotly.js is inlined once: no CDN, the
file opens from disk with no network.
"""

from __future__ import annotations

import html
import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from storecast.data.schema import WEEK
from storecast.delivery.dashboard.data import PATH_SEP, Accuracy, key_names, key_text

ACTUAL_COLOR = "#1f77b4"  # blue
PREDICTED_COLOR = "#d62728"  # red
HOLIDAY_COLOR = "#ff7f0e"
BAND_80 = "rgba(214, 39, 40, 0.28)"
BAND_95 = "rgba(214, 39, 40, 0.12)"
FORECAST_SHADE = "rgba(120, 120, 120, 0.12)"
MAIN_DIV, STORE_MAPE_DIV, WEEK_MAPE_DIV = "sc-main", "sc-store-mape", "sc-week-mape"

#: The main chart's traces, in drawing order; the page's script fills x/y from the payload.
TRACE_SPECS: list[dict] = [
    {"key": "h95", "name": "95% interval", "style": {"mode": "lines", "line": {"width": 0}, "showlegend": False, "hoverinfo": "skip"}},
    {"key": "l95", "name": "95% interval", "style": {"mode": "lines", "line": {"width": 0}, "fill": "tonexty", "fillcolor": BAND_95, "hoverinfo": "skip"}},
    {"key": "h80", "name": "80% interval", "style": {"mode": "lines", "line": {"width": 0}, "showlegend": False, "hoverinfo": "skip"}},
    {"key": "l80", "name": "80% interval", "style": {"mode": "lines", "line": {"width": 0}, "fill": "tonexty", "fillcolor": BAND_80, "hoverinfo": "skip"}},
    {"key": "a", "name": "Actual", "style": {"mode": "lines", "line": {"color": ACTUAL_COLOR, "width": 2}, "hovertemplate": "Actual %{y:$,.0f}<extra></extra>"}},
    {"key": "p", "name": "Predicted", "style": {"mode": "lines", "line": {"color": PREDICTED_COLOR, "width": 2}, "hovertemplate": "%{text}<extra></extra>"}},
    {"key": "hol", "name": "Holiday week", "style": {"mode": "markers", "marker": {"color": HOLIDAY_COLOR, "size": 9, "symbol": "star"}, "hovertemplate": "%{text}<extra></extra>"}},
]


def main_layout(payload: dict) -> dict:
    """The main chart's layout: shaded forecast horizon, labelled holiday weeks, unified hover."""
    weeks = pd.to_datetime(payload["weeks"])
    half = pd.Timedelta(days=3.5)
    shapes: list[dict] = []
    annotations: list[dict] = []
    if payload["first_future"] < len(weeks):
        shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": weeks[payload["first_future"]] - half,
                       "x1": weeks[-1] + half, "y0": 0, "y1": 1, "fillcolor": FORECAST_SHADE, "line": {"width": 0}, "layer": "below"})
        annotations.append({"x": weeks[payload["first_future"]] - half, "xref": "x", "y": 1.0, "yref": "paper", "text": "Forecast",
                            "showarrow": False, "xanchor": "left", "yanchor": "bottom", "font": {"size": 11, "color": "#555"}})
    for hol in payload["holidays"]:
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": hol["week"], "x1": hol["week"], "y0": 0, "y1": 1,
                       "line": {"color": HOLIDAY_COLOR, "width": 1, "dash": "dot"}, "layer": "below"})
        annotations.append({"x": hol["week"], "xref": "x", "y": 0.0, "yref": "paper", "text": hol["name"], "textangle": -90,
                            "showarrow": False, "xanchor": "right", "yanchor": "bottom", "font": {"size": 9, "color": HOLIDAY_COLOR}})
    fig = go.Figure(layout={
        "title": {"text": "Chain total"}, "hovermode": "x unified", "height": 480, "margin": {"t": 60, "r": 20, "l": 70, "b": 40},
        "yaxis": {"title": {"text": payload.get("value_label", "Weekly sales ($)")},
                  "tickformat": "$,.3s" if payload.get("currency", True) else ",.3s"}, "xaxis": {"type": "date"},
        "legend": {"orientation": "h", "y": -0.12}, "shapes": shapes, "annotations": annotations, "template": "plotly_white",
    })
    return json.loads(fig.to_json())["layout"]


def _display(acc: Accuracy, values: pd.Series) -> list[str]:
    """``Store 5`` for numeric keys, the value itself for names."""
    _, prefix, _ = key_names(acc.key)
    if pd.api.types.is_numeric_dtype(values):
        return [f"{prefix} {key_text(v)}" for v in values]
    return [str(v) for v in values]


def store_mape_figure(acc: Accuracy) -> go.Figure:
    """The accuracy metric per top-level series (store), worst first: one bar trace."""
    frame = acc.by_store
    label, metric = key_names(acc.key)[0], _metric_name(acc)
    other = "wmape" if acc.metric == "mape" else "mape"
    fig = go.Figure(go.Bar(
        x=_display(acc, frame[acc.key]), y=frame[acc.metric].round(2).tolist(), marker={"color": PREDICTED_COLOR},
        customdata=[[key_text(k), round(float(o), 2) if pd.notna(o) and np.isfinite(o) else None, int(w)]
                    for k, o, w in frame[[acc.key, other, "weeks"]].itertuples(index=False)],
        hovertemplate=f"%{{x}}<br>{metric} %{{y:.2f}}%<br>{'WMAPE' if other == 'wmape' else 'MAPE'} "
                      "%{customdata[1]:.2f}%<br>%{customdata[2]} weeks<br>(click to open)<extra></extra>",
        name=metric,
    ))
    fig.update_layout(title={"text": f"Backtest {metric} per {label.lower()}, worst first"},
                      yaxis={"title": {"text": f"{metric} (%)"}}, height=360, template="plotly_white",
                      margin={"t": 50, "r": 20, "l": 60, "b": 70}, xaxis={"type": "category", "tickangle": -60})
    return fig


def _metric_name(acc: Accuracy) -> str:
    return "MAPE" if acc.metric == "mape" else "WAPE"


def week_mape_figure(acc: Accuracy) -> go.Figure:
    """The metric across top-level series per backtest week; holiday weeks in their own colour."""
    frame = acc.by_week
    metric, plural = _metric_name(acc), key_names(acc.key)[2]
    fig = go.Figure()
    for is_hol, name, color in ((False, "Regular week", ACTUAL_COLOR), (True, "Holiday week", HOLIDAY_COLOR)):
        part = frame[(frame["holiday"] != "") == is_hol]
        fig.add_trace(go.Bar(
            x=part[WEEK].dt.strftime("%Y-%m-%d").tolist(), y=part[acc.metric].round(2).tolist(), name=name,
            marker={"color": color}, text=part["holiday"].tolist(),
            hovertemplate=f"%{{x}} %{{text}}<br>{metric} %{{y:.2f}}%<extra></extra>", textposition="none",
        ))
    fig.update_layout(title={"text": f"Backtest {metric} by week (across {plural})"},
                      yaxis={"title": {"text": f"{metric} (%)"}},
                      height=320, template="plotly_white", margin={"t": 50, "r": 20, "l": 60, "b": 40},
                      legend={"orientation": "h", "y": -0.15}, bargap=0.1, xaxis={"type": "date"})
    return fig


def _money(value: float, currency: bool = True) -> str:
    sign, unit = ("" if value >= 0 else "-"), ("$" if currency else "")
    return f"{sign}{unit}{abs(value):,.0f}"


def misses_table(acc: Accuracy, currency: bool = True) -> str:
    """The top-level weeks (store-weeks) with the largest percentage misses as an HTML table."""
    rows = []
    for key, week, actual, predicted, error, pct, holiday in acc.misses.itertuples(index=False):
        rows.append(
            f"<tr><td>{html.escape(key_text(key))}</td><td>{pd.Timestamp(week):%Y-%m-%d}</td>"
            f"<td>{_money(actual, currency)}</td><td>{_money(predicted, currency)}</td>"
            f"<td>{_money(error, currency)}</td>"
            f"<td>{pct:+.1f}%</td><td>{html.escape(holiday)}</td></tr>"
        )
    head = f"<tr><th>{html.escape(key_names(acc.key)[0])}</th><th>Week</th><th>Actual</th><th>Predicted</th><th>Error</th><th>Error %</th><th>Holiday</th></tr>"
    return f'<table id="sc-misses" class="sc-table"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


_STATUS_COLUMNS = ("status", "severity", "level")


def monitoring_table(monitoring: pd.DataFrame | None) -> str:
    """The monitoring frame as an HTML table, rows tinted by a status/severity/level column."""
    if monitoring is None:
        return ""
    status_col = next((c for c in monitoring.columns if str(c).lower() in _STATUS_COLUMNS), None)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in monitoring.columns)
    body = []
    for _, row in monitoring.iterrows():
        status = str(row[status_col]).lower() if status_col is not None else ""
        cells = "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row.to_numpy())
        body.append(f'<tr class="sc-status-{html.escape(status)}">{cells}</tr>')
    empty = "" if body else f'<tr><td colspan="{max(len(monitoring.columns), 1)}">No monitoring results yet.</td></tr>'
    return (
        '<section id="sc-monitoring"><h2>Monitoring</h2>'
        f'<table class="sc-table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}{empty}</tbody></table></section>'
    )


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "" if pd.isna(value) else f"{value:,.4g}"
    if isinstance(value, pd.Timestamp):
        return f"{value:%Y-%m-%d}"
    return str(value)


def _script_json(obj: object) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{padding:14px 24px;background:#fff;border-bottom:1px solid #ddd}
header h1{margin:0;font-size:20px} header p{margin:4px 0 0;color:#555;font-size:13px}
main{padding:12px 24px} section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:10px 14px;margin:0 0 14px}
h2{font-size:16px;margin:4px 0 8px} label{font-size:13px;margin-right:14px}
select{font-size:13px;padding:2px 4px;margin-left:4px}
.sc-grid{display:grid;grid-template-columns:1fr 1fr;gap:14px} @media(max-width:1100px){.sc-grid{grid-template-columns:1fr}}
.sc-table{border-collapse:collapse;font-size:12.5px;width:100%}
.sc-table th,.sc-table td{border-bottom:1px solid #eee;padding:3px 8px;text-align:right}
.sc-table th:first-child,.sc-table td:first-child{text-align:left}
.sc-status-warn{background:#fff6e0}.sc-status-alert{background:#fde4e4}.sc-status-ok{background:#eef8ee}
"""

_JS = r"""
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("sc-data").textContent);
  var SPECS = JSON.parse(document.getElementById("sc-traces").textContent);
  var LAYOUT = JSON.parse(document.getElementById("sc-layout").textContent);
  var FIGS = JSON.parse(document.getElementById("sc-figures").textContent);
  var CONFIG = {responsive: true, displaylogo: false};
  var money = new Intl.NumberFormat("en-US", D.currency === false ? {maximumFractionDigits: 0}
                                             : {style: "currency", currency: "USD", maximumFractionDigits: 0});
  var SEP = D.sep;
  var sels = D.keys.map(function (_, i) { return document.getElementById("sc-k" + i); });
  function unpack(enc) {
    if (!enc || !enc.length) return {x: [], y: [], o: 0};
    var y = enc.slice(1);
    return {x: D.weeks.slice(enc[0], enc[0] + y.length), y: y, o: enc[0]};
  }
  function valueAt(u, i) {
    var j = i - u.o;
    return j >= 0 && j < u.y.length ? u.y[j] : null;
  }
  function predictedText(S, pred) {
    var act = unpack(S.a), l80 = unpack(S.l80), h80 = unpack(S.h80);
    return pred.y.map(function (v, j) {
      var i = pred.o + j, a = valueAt(act, i), lo = valueAt(l80, i), hi = valueAt(h80, i);
      var txt = (i >= D.first_future ? "Forecast " : "Predicted ") + money.format(v);
      if (a !== null && v !== null) {
        var err = v - a;
        txt += "<br>Error " + money.format(err) + (a > 0 ? " (" + (100 * err / a).toFixed(1) + "%)" : "");
      }
      if (lo !== null && hi !== null) txt += "<br>80%: " + money.format(lo) + " – " + money.format(hi);
      return txt;
    });
  }
  function holidayPoints(S) {
    var act = unpack(S.a), pred = unpack(S.p), x = [], y = [], t = [];
    D.holidays.forEach(function (h) {
      var v = valueAt(act, h.i);
      if (v === null) v = valueAt(pred, h.i);
      if (v !== null) { x.push(h.week); y.push(v); t.push(h.name); }
    });
    return {x: x, y: y, text: t};
  }
  function traces(S) {
    return SPECS.map(function (spec) {
      var t = Object.assign({type: "scatter", name: spec.name, legendgroup: spec.name}, JSON.parse(JSON.stringify(spec.style)));
      if (D.currency === false && t.hovertemplate) t.hovertemplate = t.hovertemplate.replace("%{y:$", "%{y:");
      if (spec.key === "hol") return Object.assign(t, holidayPoints(S));
      var u = unpack(S[spec.key]);
      t.x = u.x; t.y = u.y;
      if (spec.key === "p") t.text = predictedText(S, u);
      return t;
    });
  }
  function pct(v) { return v === null || v === undefined ? "n/a" : v.toFixed(1) + "%"; }
  function named(i, v) { return D.numeric[i] ? D.prefixes[i] + " " + v : v; }
  function chosen() {  // the values picked, top first, up to the first "all"
    var out = [];
    for (var i = 0; i < sels.length; i++) {
      var v = sels[i].value;
      if (v === "total" || v === "all") break;
      out.push(v);
    }
    return out;
  }
  function selection() {
    var vals = chosen();
    if (!vals.length) return {S: D.total, title: "Chain total"};
    var title = vals.map(function (v, i) { return named(i, v); }).join(" · ");
    if (vals.length < sels.length && D.keys.length > 1) title += " · all " + D.plurals[vals.length];
    return {S: D.nodes[vals.join(SEP)], title: title};
  }
  function fillBelow(from) {  // refill every selector under ``from`` for the values above it
    for (var i = Math.max(from, 1); i < sels.length; i++) {
      var above = chosen().slice(0, i), sel = sels[i];
      var kids = above.length === i ? (D.children[above.join(SEP)] || []) : [];
      sel.innerHTML = "";
      var all = document.createElement("option");
      all.value = "all"; all.textContent = "All " + D.plurals[i]; sel.appendChild(all);
      kids.forEach(function (v) {
        var o = document.createElement("option"), node = D.nodes[above.concat([v]).join(SEP)];
        o.value = v; o.textContent = named(i, v) + " · " + D.metric + " " + pct(node ? node.m : null);
        sel.appendChild(o);
      });
      sel.disabled = above.length !== i;
    }
  }
  function draw() {
    var sel = selection();
    var layout = JSON.parse(JSON.stringify(LAYOUT));
    layout.title = {text: sel.title};
    return Plotly.react("sc-main", traces(sel.S), layout, CONFIG);
  }
  sels.forEach(function (sel, i) { sel.addEventListener("change", function () { fillBelow(i + 1); draw(); }); });
  fillBelow(1);
  window.storecastReady = Promise.all([
    draw(),
    Plotly.newPlot("sc-store-mape", FIGS.store_mape.data, FIGS.store_mape.layout, CONFIG),
    Plotly.newPlot("sc-week-mape", FIGS.week_mape.data, FIGS.week_mape.layout, CONFIG)
  ]).then(function () {
    document.getElementById("sc-store-mape").on("plotly_click", function (ev) {
      sels[0].value = String(ev.points[0].customdata[0]);
      fillBelow(1); draw();
    });
    document.body.setAttribute("data-ready", "1");
  });
})();
"""


def render_page(payload: dict, acc: Accuracy, *, title: str, subtitle: str, monitoring_html: str) -> str:
    """The complete self-contained HTML document."""
    top = payload["children"].get("", [])
    def option(value: str) -> str:
        shown = f"{payload['prefixes'][0]} {value}" if payload["numeric"][0] else value
        m = payload["nodes"][value].get("m")
        label = f"{shown} · {payload['metric']} {'n/a' if m is None else f'{m:.1f}%'}"
        return f'<option value="{html.escape(value, quote=True)}">{html.escape(label)}</option>'
    options = ['<option value="total">Chain total</option>'] + [option(v) for v in top]
    selects = [f'<label>{html.escape(payload["labels"][0])}<select id="sc-k0">{"".join(options)}</select></label>']
    selects += [f'<label>{html.escape(label)}<select id="sc-k{i}"></select></label>'
                for i, label in enumerate(payload["labels"][1:], start=1)]
    payload = {**payload, "sep": PATH_SEP}
    figures = {"store_mape": json.loads(store_mape_figure(acc).to_json()), "week_mape": json.loads(week_mape_figure(acc).to_json())}
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{_CSS}</style>
<script>{get_plotlyjs()}</script></head>
<body><header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>
<main>
<section>{"".join(selects)}
<div id="{MAIN_DIV}"></div></section>
<div class="sc-grid"><section><div id="{STORE_MAPE_DIV}"></div></section><section><div id="{WEEK_MAPE_DIV}"></div></section></div>
<section><h2>Largest misses ({html.escape(key_names(acc.key)[0].lower())}-weeks by percentage error)</h2>{misses_table(acc, payload.get("currency", True))}</section>
{monitoring_html}
</main>
<script type="application/json" id="sc-data">{_script_json(payload)}</script>
<script type="application/json" id="sc-traces">{_script_json(TRACE_SPECS)}</script>
<script type="application/json" id="sc-layout">{_script_json(main_layout(payload))}</script>
<script type="application/json" id="sc-figures">{_script_json(figures)}</script>
<script>{_JS}</script>
</body></html>
"""
