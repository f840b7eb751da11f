"""Dependencies the route handlers declare with ``Annotated`` aliases.

They are ``async`` because they only read app state: a sync dependency would cost a
thread-pool hop per request on the hot paths.

Handlers stay plain: they receive the settings, the one snapshot this request serves,
the warehouse, and pass the API-key checks, without touching ``request.app.state``.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from storecast.config import Settings
from storecast.errors import StorecastError
from storecast.service.state import ServiceState, Snapshot

API_KEY_HEADER = "X-API-Key"
#: Two names for the same header, so the OpenAPI document says which operations need a key:
#: writes always, reads only with private reads (``app`` drops ``ReadKey`` otherwise).
WRITE_SCHEME, READ_SCHEME = "WriteKey", "ReadKey"
_write_key = APIKeyHeader(
    name=API_KEY_HEADER, scheme_name=WRITE_SCHEME, auto_error=False,
    description="One of the keys in STORECAST_API_KEYS.",
)
_read_key = APIKeyHeader(
    name=API_KEY_HEADER, scheme_name=READ_SCHEME, auto_error=False,
    description="One of the keys in STORECAST_API_KEYS (reads need it with STORECAST_PRIVATE_READS).",
)


class Unauthorized(StorecastError):
    http_status = 401
    code = "unauthorized"


class Forbidden(StorecastError):
    http_status = 403
    code = "forbidden"


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_state(request: Request) -> ServiceState:
    return request.app.state.service  # type: ignore[no-any-return]


async def get_snapshot(request: Request) -> Snapshot:
    """Read the current snapshot ONCE; the whole request uses this object."""
    return request.app.state.service.snapshot  # type: ignore[no-any-return]


async def get_warehouse(request: Request) -> Any:
    """The app's read-only, cached view of the warehouse (``service.reads.CachedReads``)."""
    return request.app.state.warehouse  # type: ignore[no-any-return]


def check_key(settings: Settings, key: str | None) -> None:
    """401 without a key, 403 with one that matches none (compared in constant time)."""
    if not key:
        raise Unauthorized(f"this endpoint needs an API key in the {API_KEY_HEADER} header")
    supplied = key.encode()
    # Compare with every configured key, without stopping early, so timing reveals nothing.
    matched = False
    for candidate in settings.api_keys:
        matched |= hmac.compare_digest(supplied, candidate.encode())
    if not matched:
        raise Forbidden("the API key is not valid for this service")


async def write_access(
    request: Request, key: Annotated[str | None, Security(_write_key)] = None
) -> None:
    check_key(request.app.state.settings, key)


async def read_access(
    request: Request, key: Annotated[str | None, Security(_read_key)] = None
) -> None:
    settings: Settings = request.app.state.settings
    if settings.private_reads:
        check_key(settings, key)


SettingsDep = Annotated[Settings, Depends(get_settings)]
StateDep = Annotated[ServiceState, Depends(get_state)]
SnapshotDep = Annotated[Snapshot, Depends(get_snapshot)]
WarehouseDep = Annotated[Any, Depends(get_warehouse)]
WriteAccess = Depends(write_access)
ReadAccess = Depends(read_access)
