"""What every CLI command shares: global flags, error mapping, progress and settings."""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from storecast.config import Settings, load_settings
from storecast.errors import StorecastError, storage_error
from storecast.redaction import install_log_scrubber, scrub

F = TypeVar("F", bound=Callable[..., Any])

# Options several commands share: one definition, one help text.
DataOpt = Annotated[Path, typer.Option("--data", "-d", help="History file or folder (Walmart.csv, the competition folder, or a mapped CSV/Parquet).")]
FormatOpt = Annotated[str | None, typer.Option("--format", "-f", help="auto | walmart | recruiting | generic.")]
WarehouseOpt = Annotated[str | None, typer.Option("--warehouse", help="Warehouse URL (duckdb:///file or postgresql+psycopg://...).")]

# soft_wrap: never break a message (a path, a row number) across lines; logs and CI grep them.
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class State:
    verbose: bool = False
    quiet: bool = False
    #: credentials of the loaded settings, scrubbed from every message and log line
    secrets: list[str] = field(default_factory=list)


STATE = State()


def configure(verbose: bool, quiet: bool) -> None:
    STATE.verbose, STATE.quiet = verbose, quiet
    # Progress and results go through Rich; log lines are for -v (and warnings always).
    level = logging.DEBUG if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    for noisy in ("mlflow", "alembic", "urllib3", "httpx", "numba", "prefect"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def handle_errors(func: F) -> F:
    """Map library errors to one clean line and an exit code; tracebacks only with -v."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except StorecastError as exc:
            if STATE.verbose:
                err_console.print(scrub(traceback.format_exc(), STATE.secrets), markup=False)
            err_console.print(f"error: {scrub(exc.message, STATE.secrets)}", markup=False)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:
            storage = storage_error(exc)
            if storage is None:
                return _unexpected(exc)
            if STATE.verbose:
                err_console.print(scrub(traceback.format_exc(), STATE.secrets), markup=False)
            err_console.print(f"error: {scrub(storage.message, STATE.secrets)}", markup=False)
            raise typer.Exit(storage.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:  # the unexpected: short line, traceback on request
            _unexpected(exc)

    return wrapper  # type: ignore[return-value]


def _unexpected(exc: BaseException) -> None:
    if STATE.verbose:
        err_console.print(scrub(traceback.format_exc(), STATE.secrets), markup=False)
    else:
        err_console.print(
            f"internal error: {type(exc).__name__}: {scrub(str(exc), STATE.secrets)} (run with -v for the traceback)",
            markup=False,
        )
    raise typer.Exit(1) from None


def settings_from(**overrides: Any) -> Settings:
    """Load the settings and keep their credentials out of every message and log line."""
    settings = load_settings(**overrides)
    STATE.secrets = settings.secret_values()
    install_log_scrubber(STATE.secrets)
    return settings


@contextmanager
def progress_steps() -> Iterator[Callable[[str], None]]:
    """A Rich spinner showing the current step; silent with -q or when not a terminal."""
    if STATE.quiet:
        yield lambda _msg: None
        return
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=err_console, transient=True,
    ) as bar:
        task = bar.add_task("starting", total=None)
        yield lambda msg: bar.update(task, description=msg)


def say(message: str) -> None:
    if not STATE.quiet:
        console.print(message)
