"""Error types shared by every layer.

Each error carries an exit code (for the CLI) and an HTTP status (for the API), so the
doors translate them without knowing where they came from. Messages say what was received
and what is allowed; where a file is involved they name the file and the row.
"""

from __future__ import annotations

import errno


class StorecastError(Exception):
    """Base class for every error storecast raises on purpose."""

    exit_code: int = 1
    http_status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, details: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"error": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


class UsageError(StorecastError):
    """The caller asked for something that cannot be done with these arguments."""

    exit_code = 2
    http_status = 422
    code = "invalid_request"


class ConfigError(StorecastError):
    """A setting is missing, malformed, or a placeholder."""

    exit_code = 2
    http_status = 500
    code = "config_error"


class DataError(StorecastError):
    """Input data cannot be read or fails the quality gate.

    ``path`` and ``row`` (1-based line number in the file, header = line 1) are kept so
    the CLI and the API can point at the problem.
    """

    exit_code = 2
    http_status = 422
    code = "data_error"

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        row: int | None = None,
        details: object | None = None,
    ) -> None:
        where = ""
        if path is not None:
            where = f"{path}"
            if row is not None:
                where += f", row {row}"
            where += ": "
        super().__init__(where + message, details=details)
        self.path = path
        self.row = row


class QualityGateError(DataError):
    """The quality gate found blocking issues; ``report`` holds them all."""

    code = "quality_gate_failed"

    def __init__(self, message: str, *, report: object, path: str | None = None) -> None:
        super().__init__(message, path=path)
        self.report = report


class NotFoundError(StorecastError):
    """A store, run, model version or file that was asked for does not exist."""

    exit_code = 2
    http_status = 404
    code = "not_found"


class NotTrainedError(StorecastError):
    """A model was used before ``fit`` or no champion model exists yet."""

    exit_code = 2
    http_status = 503
    code = "not_trained"


class InsufficientHistoryError(DataError):
    """A model needs more weeks of history than the series has."""

    code = "insufficient_history"


class WarehouseBusyError(StorecastError):
    """Another process held the warehouse (DuckDB's file lock, PostgreSQL's write lock) too long."""

    exit_code = 2
    http_status = 503
    code = "busy"


class StorageError(StorecastError):
    """The disk refused a write (full, read-only, no permission); nothing was published."""

    exit_code = 2
    http_status = 507
    code = "storage_error"


#: errno values that mean "the machine's storage said no", not a bug: reported in one line.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG})


def storage_error(exc: OSError) -> StorageError | None:
    """A ``StorageError`` for an ``OSError`` of the disk's making, else ``None``."""
    if exc.errno not in STORAGE_ERRNOS:
        return None
    where = f"{exc.filename}: " if exc.filename else ""
    return StorageError(f"cannot write {where}{exc.strerror or exc}; nothing was changed")


class MissingExtraError(StorecastError):
    """An optional dependency is not installed."""

    exit_code = 2
    http_status = 501
    code = "missing_extra"

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package} is not installed; install it with: pip install 'storecast[{extra}]'"
        )


def require(module: str, extra: str):  # type: ignore[no-untyped-def]
    """Import an optional dependency or raise ``MissingExtraError`` naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module, extra) from exc
