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
DataOpt = Annotated[Path, typer.Option("--data", "-d", help="History file or folder (Walmart.csv, the competition folder, or any retailer's CSV/Parquet with --keys/--date/--target).")]
FormatOpt = Annotated[str | None, typer.Option("--format", "-f", help="auto | walmart | recruiting | generic (the declaration).")]
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


#: The data declaration's flags (``DataSpec`` fields): name -> (flag, help). One definition,
#: added by ``declared`` to every command that reads sales data.
DECLARATION_FLAGS: dict[str, tuple[str, str]] = {
    "keys": ("--keys", "Series key columns, top of the hierarchy first, e.g. store,dept or store,brand."),
    "date": ("--date", "Column holding the date."),
    "date_format": ("--date-format", "strftime format of the dates, e.g. %d.%m.%Y (default: detected)."),
    "target": ("--target", "Column holding the sales to forecast."),
    "week_ending": ("--week-ending", "Weekday a week ends on: MON..SUN (default: inferred from the dates)."),
    "week_label": ("--week-label", "Whether a date names the first (start) or last (end) day of its week."),
    "known_future": ("--known-future", "Columns planned ahead (promotions, prices, events), comma-separated."),
    "past_only": ("--past-only", "Columns known only up to the forecast origin (weather, customers), comma-separated."),
    "static": ("--static", "Per-series attribute columns, comma-separated."),
    "static_file": ("--static-file", "CSV of per-series attributes sharing a key column with the data."),
    "future_file": ("--future", "CSV of known-future values for the forecast weeks."),
    "assume_future": ("--assume-future", "What to assume for known-future values the data does not give: last, zero or strict (stop). Unset: last, with a warning, when the data gives none."),
    "country": ("--country", "Country (and subdivision) of the holidays: US, DE, GB-SCT, ..."),
    "events_file": ("--events", "CSV of the retailer's events: date,name[,key columns]."),
}


def declared(func: F) -> F:
    """Add the declaration flags to a command; it receives them as one ``declaration`` dict
    (only the flags given) to pass to ``settings_from(declaration=...)``."""
    import inspect
    import typing

    sig = inspect.signature(func)
    hints = typing.get_type_hints(func, include_extras=True)  # resolved in the command's module
    params = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in sig.parameters.values()
              if p.name != "declaration"]
    extra = []
    for name, (flag, help_text) in DECLARATION_FLAGS.items():
        kind: Any = Path if name in ("static_file", "future_file", "events_file") else str
        extra.append(inspect.Parameter(
            f"decl_{name}", inspect.Parameter.KEYWORD_ONLY, default=None,
            annotation=Annotated[kind | None, typer.Option(flag, help=help_text, rich_help_panel="Data declaration")],
        ))

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        declaration = {name: kwargs.pop(f"decl_{name}") for name in DECLARATION_FLAGS if f"decl_{name}" in kwargs}
        return func(*args, declaration={k: v for k, v in declaration.items() if v is not None}, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=[*params, *extra], return_annotation=None)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in [*params, *extra]}
    return wrapper  # type: ignore[return-value]


def settings_from(declaration: dict[str, Any] | None = None, **overrides: Any) -> Settings:
    """Load the settings and keep their credentials out of every message and log line.

    ``declaration``: data declaration fields from the command line, merged over the
    ``[data]`` table / environment (``storecast.toml``)."""
    if declaration:
        base = load_settings()
        try:
            overrides["data"] = base.data.merged(**declaration)
        except Exception as exc:  # pydantic's ValidationError: name the flag
            from pydantic import ValidationError

            from storecast.errors import UsageError

            if isinstance(exc, ValidationError):
                problems = "; ".join(f"{_flag(e['loc'])}: {e['msg']}" for e in exc.errors())
                raise UsageError(f"invalid data declaration: {problems}") from None
            raise
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


def _flag(loc: tuple[Any, ...]) -> str:
    name = str(loc[0]) if loc else "data"
    return DECLARATION_FLAGS.get(name, (f"--{name.replace('_', '-')}", ""))[0]
