"""`storecast serve`: the FastAPI service over the current champion and the warehouse."""

from __future__ import annotations

import copy
import socket
from pathlib import Path
from typing import Annotated, Any

import typer

from storecast.cli._common import STATE, WarehouseOpt, handle_errors, say, settings_from
from storecast.errors import UsageError

HostOpt = Annotated[str | None, typer.Option("--host", help="Address to bind (default 127.0.0.1).")]
PortOpt = Annotated[int | None, typer.Option("--port", "-p", help="Port to listen on (default 8000).", min=1, max=65535)]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Output directory of `storecast run` (holds the registry and warehouse).")]


def _check_port(host: str, port: int) -> None:
    """A taken port is one clean line naming it, before anything starts."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind(address)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (port in use by another `storecast serve`? "
            "choose another with --port)"
        ) from None


def _log_config(secrets: list[str]) -> dict[str, Any]:
    """uvicorn's logging with every line scrubbed of keys and passwords (a ``?key=`` in an access log)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"scrub": {"()": "storecast.redaction.SecretFilter", "secrets": secrets}}
    for handler in config["handlers"].values():
        handler["filters"] = ["scrub"]
    return config


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def serve(
        host: HostOpt = None,
        port: PortOpt = None,
        warehouse: WarehouseOpt = None,
        out: OutOpt = None,
    ) -> None:
        """Serve forecasts, what-if scenarios and the dashboard over HTTP (one uvicorn worker)."""
        import uvicorn

        from storecast.delivery.warehouse import Warehouse
        from storecast.errors import NotTrainedError
        from storecast.lifecycle.registry import Registry
        from storecast.redaction import redact_url
        from storecast.service.app import create_app

        settings = settings_from(host=host, port=port, warehouse_url=warehouse, out_dir=out)
        _check_port(settings.host, settings.port)
        # Reachable and migrated now, or one clean line: the service then only reads it.
        Warehouse.from_settings(settings).dispose()
        champion = Registry(settings).champion()
        if champion is None:
            raise NotTrainedError(
                f"there is no trained model yet in {redact_url(settings.resolved_tracking_uri)}; create one with "
                "`storecast run --data <file>` (or `make demo`), then run `storecast serve` again"
            )
        say(f"serving model version {champion.version} ({champion.model_name}) on "
            f"http://{settings.host}:{settings.port}  (API docs at /docs, dashboard at /dashboard)")
        uvicorn.run(
            create_app(settings), host=settings.host, port=settings.port, workers=1,
            log_level="warning" if STATE.quiet else "info", access_log=not STATE.quiet,
            log_config=_log_config(STATE.secrets),
        )
