"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from storecast.service.deps import ReadAccess, StateDep, WarehouseDep
from storecast.service.middleware import metrics_payload
from storecast.service.schemas import Health, Ready

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Health, summary="Liveness: the process answers.")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready", response_model=Ready, summary="Readiness: a champion is loaded and the warehouse answers.",
    responses={503: {"model": Ready, "description": "Not ready; `problems` says why."}},
)
def ready(state: StateDep, warehouse: WarehouseDep, response: Response) -> Ready:
    problems: list[str] = []
    snap = state.current
    version = None if snap is None else snap.version.version
    if version is None:
        problems.append(state.last_error or "no champion model loaded")
    problem = warehouse.ping()  # a job writing the warehouse does not make the service unready
    warehouse_ok = problem is None
    if problem is not None:
        problems.append(problem)
    if problems:
        response.status_code = 503
    return Ready(status="not_ready" if problems else "ready", model_version=version,
                 warehouse=warehouse_ok, problems=problems)


@router.get(
    "/metrics", summary="Prometheus metrics: request counts and latencies, model version.",
    dependencies=[ReadAccess], response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
def metrics(request: Request, state: StateDep) -> Response:
    registry = request.app.state.metrics
    if state.loaded:
        info = state.snapshot.info()
        registry.set_model(info["model_version"], info["model"], info["run_id"])
    body, content_type = metrics_payload(registry)
    return Response(body, media_type=content_type)
