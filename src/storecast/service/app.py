"""The FastAPI app factory. Nothing is created at import: ``create_app(settings)`` builds it.

The app is a door: handlers parse, call the library and the current snapshot, and answer.
Every error leaves through one handler with one JSON shape (``schemas.ErrorBody``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from storecast import __version__
from storecast.config import Settings
from storecast.errors import ConfigError, NotTrainedError, StorecastError, storage_error
from storecast.redaction import scrub
from storecast.service import deps
from storecast.service.middleware import BodyLimit, Metrics, ServiceMetrics
from storecast.service.reads import CachedReads
from storecast.service.routes import dashboard, forecasts, jobs, models, ops
from storecast.service.schemas import ErrorBody
from storecast.service.state import ChampionSource, ServiceState

log = logging.getLogger(__name__)


class OrjsonResponse(JSONResponse):
    """JSON via orjson: fast, and NaN becomes null instead of an invalid document."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def error_response(status: int, body: dict[str, object]) -> OrjsonResponse:
    return OrjsonResponse(body, status_code=status)


def _describe(errors: list[Any]) -> tuple[str, list[dict[str, object]]]:
    """One precise line per problem: where, what is wrong, what was received."""
    lines, details = [], []
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "invalid"))
        got = err.get("input")
        received = "" if got is None or isinstance(got, dict | list) else f" (got {str(got)[:60]!r})"
        lines.append(f"{loc}: {msg}{received}")
        details.append({"loc": [str(p) for p in err.get("loc", ())], "msg": msg, "type": err.get("type", "")})
    return "; ".join(lines) or "invalid request", details


def _install_error_handlers(app: FastAPI, secrets: list[str]) -> None:
    @app.exception_handler(StorecastError)
    async def _storecast(_: Request, exc: StorecastError) -> OrjsonResponse:
        body = exc.to_dict()
        body["message"] = scrub(exc.message, secrets)  # a driver's text could quote a credential
        return error_response(exc.http_status, body)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> OrjsonResponse:
        message, details = _describe(list(exc.errors()))
        return error_response(422, {"error": "invalid_request", "message": message, "details": details})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> OrjsonResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = "no such endpoint; see /docs for the API"
        return error_response(exc.status_code, {"error": codes.get(exc.status_code, "http_error"), "message": message})

    @app.exception_handler(OSError)
    async def _storage(request: Request, exc: OSError) -> OrjsonResponse:
        storage = storage_error(exc)
        if storage is None:
            return await _unexpected(request, exc)
        log.error("%s %s: %s", request.method, request.url.path, storage.message)
        return error_response(storage.http_status, {"error": storage.code, "message": "the service's disk refused a write; nothing was changed"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> OrjsonResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, {"error": "internal_error", "message": "internal error; see the service log"})


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


#: What any operation can answer besides its own statuses: a method it does not have, a
#: body over the limit, invalid input. Documented so a fuzzer sees no undocumented status.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    405: _error("Method not allowed on this path."),
    413: _error("Request body over STORECAST_MAX_BODY_BYTES."),
    422: _error("Invalid input"),
}
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _error("No API key in the X-API-Key header."),
    403: _error("The API key is not valid for this service."),
}


def _document_auth(app: FastAPI, private_reads: bool) -> None:
    """Operations that check a key document 401/403; reads drop the key scheme when public."""
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = base()
        ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
        auth = {str(code): {"description": spec["description"], **ref} for code, spec in AUTH_RESPONSES.items()}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                schemes = {name for requirement in operation.get("security", []) for name in requirement}
                if not private_reads and deps.READ_SCHEME in schemes:
                    schemes.discard(deps.READ_SCHEME)
                    operation["security"] = [r for r in operation["security"] if deps.READ_SCHEME not in r]
                    if not operation["security"]:
                        del operation["security"]
                if schemes:
                    operation["responses"] = {**auth, **operation["responses"]}
        if not private_reads:
            schema.get("components", {}).get("securitySchemes", {}).pop(deps.READ_SCHEME, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _install_docs(app: FastAPI) -> None:
    """``/openapi.json``, ``/docs`` and ``/redoc`` behind the read key (private reads).

    The pages carry the schema inline: a browser fetching it separately would not send the key.
    """
    from fastapi.openapi.docs import get_swagger_ui_html

    def spec_json() -> str:
        # Inside <script>: "</" must not close the tag.
        return orjson.dumps(app.openapi()).decode().replace("</", "<\\/")

    @app.get("/openapi.json", include_in_schema=False, dependencies=[deps.ReadAccess])
    def openapi() -> OrjsonResponse:
        return OrjsonResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=[deps.ReadAccess])
    def docs() -> HTMLResponse:
        page = get_swagger_ui_html(openapi_url="", title=f"{app.title} - API docs")
        body = bytes(page.body).decode().replace("url: '',", f"spec: {spec_json()},", 1)
        return HTMLResponse(body)

    @app.get("/redoc", include_in_schema=False, dependencies=[deps.ReadAccess])
    def redoc() -> HTMLResponse:
        return HTMLResponse(
            f"<!doctype html><html><head><title>{app.title} - API reference</title><meta charset='utf-8'></head>"
            "<body><div id='redoc'></div>"
            "<script src='https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js'></script>"
            f"<script>Redoc.init({spec_json()}, {{}}, document.getElementById('redoc'))</script></body></html>"
        )


def _prepare_warehouse(settings: Settings) -> None:
    """Apply pending migrations once (a brief write), so the service can then only read."""
    from storecast.delivery.warehouse import Warehouse

    try:
        Warehouse.from_settings(settings).dispose()
    except StorecastError as exc:  # unreachable or busy: /ready says so until it answers
        log.warning("warehouse not prepared: %s", scrub(exc.message, settings.secret_values()))


def registry_stamp(settings: Settings) -> Callable[[], object] | None:
    """A cheap change marker of a local (sqlite) registry: its file's size and mtime.

    Asking MLflow for the champion costs tens to hundreds of milliseconds of Python that
    competes with requests for the GIL; a stat costs microseconds, so the poller only asks
    when the registry file changed. Remote registries have no marker (always ask).
    """
    uri = settings.resolved_tracking_uri
    if not uri.startswith("sqlite:///"):
        return None
    db = uri.removeprefix("sqlite:///")

    def stamp() -> object:
        try:
            st = os.stat(db)
        except OSError:
            return None
        return (st.st_size, st.st_mtime_ns)

    return stamp


async def _poll(state: ServiceState, every: float, stamp: Callable[[], object] | None) -> None:
    """Check the registry's champion every ``every`` seconds and swap in a new one."""
    seen = stamp() if stamp is not None else None
    while True:
        await asyncio.sleep(every)
        if stamp is not None:
            now = stamp()
            if now == seen:
                continue
            seen = now
        await anyio.to_thread.run_sync(state.try_refresh)


def create_app(
    settings: Settings,
    *,
    source: ChampionSource | None = None,
    warehouse: Any | None = None,
    poll: bool = True,
) -> FastAPI:
    """Build the API for ``settings``.

    ``source`` (the champion's registry) and ``warehouse`` default to the ones the settings
    name; tests pass their own. ``poll`` runs the background champion check.
    """
    if settings.private_reads and not settings.api_keys:
        raise ConfigError("private_reads is on but no API keys are set; set STORECAST_API_KEYS")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from storecast.lifecycle.registry import Registry

        if warehouse is None:
            await anyio.to_thread.run_sync(_prepare_warehouse, settings)
            reads = CachedReads.open(settings)  # read-only: the jobs keep writing the same file
        else:
            reads = CachedReads(warehouse)
        state = ServiceState(source if source is not None else Registry(settings))
        app.state.service = state
        app.state.warehouse = reads
        try:
            await anyio.to_thread.run_sync(state.refresh)
        except NotTrainedError as exc:  # serve 503s until a champion appears
            state.last_error = exc.message
            log.warning("%s", exc.message)
        # Long-lived start-up objects (imports, the snapshot) leave the GC's scans: full
        # collections over them otherwise pause every request for tens of milliseconds.
        gc.collect()
        gc.freeze()
        stamp = registry_stamp(settings) if source is None else None
        task = asyncio.create_task(_poll(state, settings.champion_poll_seconds, stamp)) if poll else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            reads.dispose()

    private = settings.private_reads
    app = FastAPI(
        title="storecast",
        version=__version__,
        summary="Weekly retail sales forecasts, intervals and what-if scenarios.",
        default_response_class=OrjsonResponse,
        lifespan=lifespan,
        responses=COMMON_RESPONSES,
        # With private reads the schema and its pages need a key too (_install_docs).
        openapi_url=None if private else "/openapi.json",
        docs_url=None if private else "/docs",
        redoc_url=None if private else "/redoc",
    )
    app.state.settings = settings
    app.state.metrics = ServiceMetrics()
    _install_error_handlers(app, settings.secret_values())
    for module in (ops, forecasts, models, jobs, dashboard):
        app.include_router(module.router)
    _document_auth(app, private)
    if private:
        _install_docs(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
            allow_headers=["X-API-Key", "Content-Type", "Accept"],
        )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(Metrics)
    return app
