"""What-if forecasts: the champion's forecast with some known-future inputs changed.

Pure functions over a ``Snapshot`` (no HTTP here): the scenario's future frame is the
baseline's with the overrides written into the chosen series and weeks; the champion
predicts from it and its conformal bands are applied, exactly as for the baseline.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from storecast.data.schema import DEPT, HOLIDAY, STORE, WEEK
from storecast.errors import NotFoundError, UsageError
from storecast.service.schemas import ScenarioWeek
from storecast.service.state import Snapshot


def check_store(snap: Snapshot, store: int, dept: int | None = None) -> None:
    """404 naming what exists when the store (or its department) is unknown."""
    if store not in snap.by_store:
        stores = snap.stores
        raise NotFoundError(
            f"store {store} has no forecast; known stores: {stores[0]}..{stores[-1]} ({len(stores)} stores)"
        )
    if dept is not None:
        if snap.level != "dept":
            raise UsageError("dept was given but this model forecasts whole stores (no departments)")
        if (store, dept) not in snap.by_series:
            depts = sorted(d for s, d in snap.by_series if s == store)
            raise NotFoundError(f"store {store} has no department {dept}; its departments: {depts}")


def what_if(
    snap: Snapshot, stores: Sequence[int], dept: int | None, weeks: int, scenario: Sequence[ScenarioWeek]
) -> tuple[pd.DataFrame, list[str]]:
    """Baseline and scenario forecasts for ``stores`` (and ``dept``), steps 1..weeks.

    Returns the frame (keys, week, step, baseline, scenario, difference, bands of the
    scenario) and the overridden inputs the model does not read.
    """
    for store in stores:
        check_store(snap, store, dept)
    horizon_end = snap.cutoff + pd.Timedelta(weeks=weeks)
    first = (snap.cutoff + pd.Timedelta(weeks=1)).date()
    for item in scenario:
        when = pd.Timestamp(item.week)
        if not snap.cutoff < when <= horizon_end:
            raise UsageError(
                f"scenario week {item.week.isoformat()} is outside the forecast weeks "
                f"{first.isoformat()}..{horizon_end.date().isoformat()} (cutoff + 1..{weeks} weeks)"
            )

    future = snap.future[snap.future[WEEK] <= horizon_end].copy()
    chosen = future[STORE].isin(list(stores))
    if dept is not None:
        chosen &= future[DEPT] == dept
    used = type(snap.model).covariates_read(snap.model.spec_)
    overridden: set[str] = set()
    for item in scenario:
        rows = chosen & (future[WEEK] == pd.Timestamp(item.week))
        for column, value in item.overrides().items():
            if column not in future:
                future[column] = False if column == HOLIDAY else np.nan
            future.loc[rows, column] = value
            overridden.add(column)

    # The pipeline forecasts every series and reconciles them with the anchors (store totals
    # of department data) as the baseline was.
    predicted, _ = snap.pipeline.predict_leaves(weeks, future)
    scen = snap.pipeline.band(predicted).leaves
    scen = scen[scen[STORE].isin(list(stores))]
    base = snap.forecast[(snap.forecast["step"] <= weeks) & snap.forecast[STORE].isin(list(stores))]
    if dept is not None:
        base, scen = base[base[DEPT] == dept], scen[scen[DEPT] == dept]
    keys = list(snap.keys)
    out = base[[*keys, WEEK, "step", "yhat"]].rename(columns={"yhat": "baseline"}).merge(
        scen[[*keys, WEEK, "yhat", "lo_80", "hi_80", "lo_95", "hi_95"]].rename(columns={"yhat": "scenario"}),
        on=[*keys, WEEK], how="left",
    )
    out["difference"] = out["scenario"] - out["baseline"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["difference_pct"] = 100 * out["difference"] / out["baseline"].abs()
    out = out.sort_values([STORE, *([DEPT] if DEPT in keys else []), "step"], kind="stable")
    return out.reset_index(drop=True), sorted(overridden - used)
