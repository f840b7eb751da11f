"""Pure ASGI middleware (no per-request task overhead): request metrics and a body limit."""

from __future__ import annotations

import time
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0)


class ServiceMetrics:
    """Prometheus collectors in the app's own registry (nothing global, one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "storecast_requests", "HTTP requests by route, method and status.",
            ["method", "route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "storecast_request_duration_seconds", "Time to answer a request.",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.model = Gauge(
            "storecast_model_info", "The model version being served (value 1).",
            ["version", "model", "run_id"], registry=self.registry,
        )
        self.swaps = Counter("storecast_model_swaps", "Champion swaps since start.", registry=self.registry)

    def set_model(self, version: str, model: str, run_id: str) -> None:
        self.model.clear()
        self.model.labels(version=version, model=model, run_id=run_id).set(1)


class Metrics:
    """Counts and times every request, labelled by the route template (not the raw path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.metrics: ServiceMetrics | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.metrics is None:
            self.metrics = scope["app"].state.metrics
        status = 500
        start = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - start)


class BodyLimit:
    """413 for a body larger than ``max_bytes``, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, send: Send) -> None:
        body = orjson.dumps({
            "error": "too_large",
            "message": f"request body exceeds the limit of {self.max_bytes} bytes (STORECAST_MAX_BODY_BYTES)",
        })
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._reject(send)
                    return
        seen = 0
        too_large = False
        started = False

        async def limited_receive() -> Message:
            nonlocal seen, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Stop feeding the app; whatever it answers is replaced by the 413.
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large:
                if not started:
                    started = True
                    await self._reject(send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not too_large:
                raise
            if not started:
                await self._reject(send)


def metrics_payload(metrics: ServiceMetrics) -> tuple[bytes, str]:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(metrics.registry), CONTENT_TYPE_LATEST


__all__: list[Any] = ["BodyLimit", "Metrics", "ServiceMetrics", "metrics_payload"]
