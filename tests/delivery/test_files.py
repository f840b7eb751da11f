"""Writing files safely: readers see the old file or the new one; temp names are unique."""

from __future__ import annotations

import errno
import threading
from pathlib import Path

import pytest

from storecast.delivery.files import write_atomic, write_text_atomic


def test_concurrent_writers_never_share_a_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "dashboard.html"
    both_writing = threading.Barrier(2, timeout=10)
    errors: list[BaseException] = []

    def writer(text: str) -> None:
        def write(handle) -> None:  # type: ignore[no-untyped-def]
            handle.write(text.encode())
            both_writing.wait()  # both temp files exist at once
        try:
            write_atomic(target, write)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in ("first\n", "second\n")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert target.read_text() in {"first\n", "second\n"}
    assert [p.name for p in tmp_path.iterdir()] == ["dashboard.html"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    target.write_text("old")

    def full(handle) -> None:  # type: ignore[no-untyped-def]
        handle.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, full)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_existing_permissions_are_kept(tmp_path: Path) -> None:
    target = tmp_path / "forecasts.csv"
    target.write_text("old")
    target.chmod(0o640)
    write_text_atomic(target, "new")
    assert target.read_text() == "new" and (target.stat().st_mode & 0o777) == 0o640
