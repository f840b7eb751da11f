"""The weekly ingest: a new sales file into the warehouse history, safely.

``ingest_job`` reads and validates the file against the stored history (the quality gate
with the warehouse as ``reference``), then in one transaction either appends its new
series-weeks, or, when anything is wrong, writes only the ingest record and the offending
rows to ``quarantine``. The same file twice, or the same rows in another file, change
nothing. Rows that restate stored weeks are refused unless ``allow_restatement``, which
keeps the replaced values in ``sales_restatements``. On an empty warehouse the first
ingest of a full history file is the initial load.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from storecast.config import Settings
from storecast.data.quality import QualityReport
from storecast.data.readers import load
from storecast.delivery.warehouse import Warehouse
from storecast.delivery.warehouse.store import redact, utcnow
from storecast.errors import DataError

Status = Literal["accepted", "unchanged", "rejected"]
Progress = Callable[[str], None]
MAX_REASONS = 20


@dataclass
class IngestResult:
    """What one ingest did; ``status`` is accepted, unchanged or rejected."""

    ingest_id: str
    status: Status
    source: str
    file_fingerprint: str
    message: str
    rows_total: int = 0
    rows_new: int = 0
    rows_restated: int = 0
    rows_unchanged: int = 0
    rows_rejected: int = 0
    first_week: str | None = None
    last_week: str | None = None
    reasons: list[str] = field(default_factory=list)  # why it was rejected, one line each
    warnings: list[str] = field(default_factory=list)
    warehouse: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def raise_for_status(self) -> None:
        """``DataError`` (exit code 2, HTTP 422) naming the reasons when the file was rejected."""
        if self.status != "rejected":
            return
        shown = "; ".join(self.reasons[:3])
        more = f"; and {len(self.reasons) - 3} more" if len(self.reasons) > 3 else ""
        raise DataError(
            f"ingest {self.ingest_id} rejected, the warehouse history is unchanged: {shown}{more}",
            path=self.source, details=self.to_dict(),
        )


def file_fingerprint(path: Path) -> str:
    """sha256 of the file's bytes; for a folder, of its CSV/Parquet files' names and bytes."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in {".csv", ".parquet"}) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(file.name.encode() + b"\0")
        with file.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _issue_line(check: str, message: str, rows: list[int]) -> str:
    where = ""
    if rows:
        shown = ", ".join(str(r) for r in rows[:5])
        where = f" (row{'s' if len(rows) > 1 else ''} {shown}{', ...' if len(rows) > 5 else ''})"
    return f"{check}: {message}{where}"


#: Offending file lines quarantined per ingest; the rest are counted per check.
MAX_QUARANTINE_LINES = 10_000


def _quarantine(report: QualityReport, limit: int = MAX_QUARANTINE_LINES) -> pd.DataFrame:
    """One row per offending file line with every check and reason that hit it (the first
    ``limit`` lines), one row per check counting the lines beyond them, and one row per
    error that names no line. Bounded whatever the file: a garbage file costs ``limit`` rows."""
    by_line: dict[int, list[tuple[str, str]]] = {}
    unplaced: list[tuple[str, str]] = []
    beyond: dict[str, int] = {}
    for issue in report.errors:
        reason = issue.message if issue.file in (None, report.source) else f"{issue.file}: {issue.message}"
        if not issue.rows:
            unplaced.append((issue.check, reason))
            continue
        for row in issue.rows:
            if row in by_line or len(by_line) < limit:
                by_line.setdefault(int(row), []).append((issue.check, reason))
            else:
                beyond[issue.check] = beyond.get(issue.check, 0) + 1
    lines = sorted(by_line)
    records = [{"source_row": line, "check": ",".join(dict.fromkeys(c for c, _ in by_line[line])),
                "severity": "error", "reason": "; ".join(dict.fromkeys(r for _, r in by_line[line]))} for line in lines]
    records += [{"source_row": None, "check": c, "severity": "error", "reason": r} for c, r in unplaced]
    records += [{"source_row": None, "check": c, "severity": "error",
                 "reason": f"{n} more line(s) failed {c} (only the first {limit} offending lines are listed)"}
                for c, n in sorted(beyond.items())]
    return pd.DataFrame(records, columns=["source_row", "check", "severity", "reason"])


def ingest_job(
    settings: Settings,
    path: Path | str,
    *,
    allow_restatement: bool = False,
    fmt: str | None = None,
    today: dt.date | None = None,
    progress: Progress | None = None,
) -> IngestResult:
    """Ingest one file (or competition folder) into the warehouse; see the module docstring.

    Rejections are returned (``status == "rejected"``), not raised: the doors report the
    summary, then call ``raise_for_status()``. A path that does not exist raises ``DataError``.
    """
    say = progress or (lambda _msg: None)
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", path=str(path))
    started = utcnow()
    say("fingerprinting the file")
    fp = file_fingerprint(path)
    ingest_id = f"{started:%Y%m%dT%H%M%S%f}-{fp[:8]}"
    with Warehouse.from_settings(settings) as wh:
        common: dict[str, Any] = {"ingest_id": ingest_id, "file_fingerprint": fp, "started_at": started,
                                  "allow_restatement": allow_restatement}
        earlier = wh.accepted_ingest(fp)
        if earlier is not None:
            status, _, _ = wh.ingest_sales(None, source=str(path), content_fingerprint=None, **common)
            return IngestResult(ingest_id, status, str(path), fp, f"the same file was already ingested as {earlier}",  # type: ignore[arg-type]
                                warehouse=redact(wh.url))
        say("reading the stored history")
        reference = wh.history()
        settings = with_stored_declaration(settings, wh)
        say(f"reading and validating {path.name}")
        dataset, report = load(path, settings, fmt, reference=reference, today=today)
        source = dataset.source if dataset is not None else str(path)
        reasons = [_issue_line(i.check, i.message, i.rows) for i in report.errors]
        warnings = [_issue_line(i.check, i.message, i.rows) for i in report.warnings]
        rejection = None
        if dataset is not None and reference is not None and dataset.keys != reference.keys:
            rejection = (f"this file's series are keyed by {', '.join(dataset.keys)} but the warehouse holds data keyed "
                         f"by {', '.join(reference.keys)}; use a separate warehouse (--warehouse) for each dataset")
            reasons.append(rejection)
        say("writing to the warehouse")
        status, _, message = wh.ingest_sales(
            dataset.frame if dataset is not None else None,
            source=source, content_fingerprint=dataset.fingerprint if dataset is not None else None,
            quarantine=_quarantine(report), quality=report.to_dict(), rejection=rejection,
            source_rows=dataset.source_rows if dataset is not None else None,
            spec=dataset.spec if dataset is not None else None,
            declaration=declaration_of(settings, dataset), **common,
        )
        if status == "rejected" and not reasons:
            reasons = [message]
        ingest = wh.read_ingests().set_index("ingest_id").loc[ingest_id]
        return _result(ingest_id, status, source, fp, message, ingest, reasons, warnings, redact(wh.url))


def declaration_of(settings: Settings, dataset: object) -> dict[str, Any] | None:
    """The file-level declaration to record with a declared retailer's data (None for presets)."""
    if not settings.data.declared or dataset is None:
        return None
    return settings.data.model_dump(mode="json")


def with_stored_declaration(settings: Settings, wh: Warehouse) -> Settings:
    """Settings that read a weekly file the way the warehouse's data was declared, when the
    command declares nothing itself (so `storecast refresh --data week.csv` needs no flags)."""
    if settings.data.declared:
        return settings
    stored = wh.declaration()
    if not stored:
        return settings
    from storecast.data.spec import DataSpec

    return settings.model_copy(update={"data": DataSpec.model_validate(stored)})


def _result(
    ingest_id: str, status: str, source: str, fp: str, message: str, ingest: pd.Series, reasons: list[str], warnings: list[str], url: str,
) -> IngestResult:
    def week(value: object) -> str | None:
        return None if pd.isna(value) else str(pd.Timestamp(value).date())  # type: ignore[arg-type]

    return IngestResult(
        ingest_id=ingest_id, status=status, source=source, file_fingerprint=fp, message=message,  # type: ignore[arg-type]
        rows_total=int(ingest["rows_total"]), rows_new=int(ingest["rows_new"]),
        rows_restated=int(ingest["rows_restated"]), rows_unchanged=int(ingest["rows_unchanged"]),
        rows_rejected=int(ingest["rows_rejected"]), first_week=week(ingest["first_week"]),
        last_week=week(ingest["last_week"]), reasons=reasons[:MAX_REASONS], warnings=warnings[:MAX_REASONS],
        warehouse=url,
    )
