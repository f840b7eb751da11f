"""`storecast whatif`: the champion's forecast with planned drivers changed, scenario vs baseline."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer

from storecast.cli._common import console, handle_errors, settings_from
from storecast.errors import UsageError

WhereOpt = Annotated[list[str] | None, typer.Option(
    "--where", help="KEY=VALUE[,VALUE...]: the series the scenario applies to (repeat per key; none = every series).")]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="DRIVER=VALUE: a known-future driver's value in the scenario, e.g. deal=1 (repeatable).")]
ChangeOpt = Annotated[list[str] | None, typer.Option(
    "--change", help="DRIVER=PERCENT: change a driver's planned value by a percentage, e.g. price=-10 (repeatable).")]
WeekOpt = Annotated[list[str] | None, typer.Option(
    "--week", help="Forecast week the changes apply to, YYYY-MM-DD as the data dates weeks (repeatable; none = every week).")]
WeeksOpt = Annotated[int, typer.Option("--weeks", help="Forecast weeks to compare (1-52).", min=1, max=52)]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Output directory of `storecast run` (holds the registry).")]
CsvOpt = Annotated[Path | None, typer.Option("--csv", help="Also write every series and week of the comparison to this CSV.")]


def _pairs(items: list[str] | None, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise UsageError(f"{flag} {item!r}: expected NAME=VALUE")
        if name.strip() in out:
            raise UsageError(f"{flag} {name.strip()!r} is given twice")
        out[name.strip()] = value.strip()
    return out


def _number(text: str, flag: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{flag} {name}={text!r}: not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise UsageError(f"{flag} {name}={text!r}: not a finite number")
    return value


def build_request(where: list[str] | None, set_: list[str] | None, change: list[str] | None,
                  weeks_at: list[str] | None, weeks: int) -> dict[str, Any]:
    """The flags as a ``POST /predict`` body (validated by the same schema)."""
    chosen: dict[str, Any] = {}
    for key, value in _pairs(where, "--where").items():
        values = [v.strip() for v in value.split(",") if v.strip()]
        chosen[key] = values if len(values) > 1 else values[0]
    sets = {k: _number(v, "--set", k) for k, v in _pairs(set_, "--set").items()}
    changes = {k: _number(v, "--change", k) for k, v in _pairs(change, "--change").items()}
    if not sets and not changes:
        raise UsageError("nothing to change: give --set DRIVER=VALUE and/or --change DRIVER=PERCENT")
    dates: list[str | None] = []
    for text in weeks_at or []:
        try:
            dates.append(dt.date.fromisoformat(text).isoformat())
        except ValueError:
            raise UsageError(f"--week {text!r}: not a date YYYY-MM-DD") from None
    scenario = [{"week": d, "set": sets, "change": changes} for d in (dates or [None])]
    return {"where": chosen or None, "weeks": weeks, "scenario": scenario}


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def whatif(
        where: WhereOpt = None,
        set_: SetOpt = None,
        change: ChangeOpt = None,
        week: WeekOpt = None,
        weeks: WeeksOpt = 13,
        out: OutOpt = None,
        csv: CsvOpt = None,
    ) -> None:
        """What if a planned driver changes (a price cut, a deal, a feature ad)? The champion's
        forecast of the chosen series with and without the change, as `POST /predict` answers."""
        from pydantic import ValidationError
        from rich.table import Table

        from storecast.lifecycle.registry import Registry
        from storecast.service.scenario import select, what_if
        from storecast.service.schemas import PredictRequest
        from storecast.service.state import build_snapshot

        settings = settings_from(out_dir=out)
        try:
            request = PredictRequest.model_validate(build_request(where, set_, change, week, weeks))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise UsageError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        snap = build_snapshot(Registry(settings).load(), weeks=weeks)
        selection = select(snap, request.stores, request.dept, request.where)
        frame, ignored, others = what_if(snap, selection, weeks, request.scenario)

        keys = list(snap.keys)
        by_week = frame.groupby(["week", "step"], as_index=False)[["baseline", "scenario"]].sum()
        table = Table(title=f"{len(selection.series)} series, model {snap.info()['model']} "
                            f"v{snap.version.version}, data to {snap.cutoff.date()}")
        for col in ("week", "baseline", "scenario", "difference", "%"):
            table.add_column(col, justify="right")
        for row in by_week.itertuples(index=False):
            diff = row.scenario - row.baseline
            pct = f"{100 * diff / abs(row.baseline):+.1f}" if row.baseline else "-"
            table.add_row(str(row.week.date()), f"{row.baseline:,.0f}", f"{row.scenario:,.0f}", f"{diff:+,.0f}", pct)
        console.print(table)
        base, scen = float(frame["baseline"].sum()), float(frame["scenario"].sum())
        pct = f" ({100 * (scen - base) / abs(base):+.1f}%)" if base else ""
        console.print(f"total: baseline {base:,.0f}, scenario {scen:,.0f}, difference {scen - base:+,.0f}{pct}")
        console.print(f"other series change by {others:+,.0f} (e.g. sales a promotion takes from other brands)")
        if ignored:
            console.print(f"[yellow]the champion does not read {', '.join(ignored)}: it cannot move its forecast[/yellow]")
        if csv is not None:
            from storecast.delivery.files import write_text_atomic

            cols = [*keys, "week", "step", "baseline", "scenario", "difference", "difference_pct", "lo_80", "hi_80",
                    "lo_95", "hi_95"]
            body = frame.assign(week=frame["week"].dt.date.astype(str))[cols].to_csv(
                index=False, float_format="%.2f", lineterminator="\n")
            write_text_atomic(csv, body)
            console.print(f"comparison: {csv}")
