"""Writing output files so that a reader sees the old file or the new one, never half of one.

``write_atomic`` writes into a temp file with a unique name next to the target, flushes it
to disk and renames it over the target; on any failure the temp file is removed and the
target is untouched. It respects what it is given: a symlink is written through (the file
it points at is replaced, the link stays), and a device, FIFO or anything under ``/dev``
or ``/proc`` (``--out /dev/stdout``) is written into directly, since it cannot be
replaced and must not be. A directory is refused: the caller picks the file name.
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from storecast.errors import UsageError

Writer = Callable[[BinaryIO], None]


def _streams(path: Path) -> bool:
    """A target written into rather than replaced: a device, FIFO or socket, or a /dev or /proc path."""
    if path.is_absolute() and path.parts[1:2] in (("dev",), ("proc",)):
        return True
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def write_atomic(path: Path, write: Writer) -> Path:
    """Write ``path`` with ``write(handle)``; see the module docstring. Returns ``path``."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path} is a directory; give a file name")
    if _streams(path):
        try:
            with path.open("wb") as handle:
                write(handle)
        except PermissionError as exc:
            raise UsageError(f"cannot write to {path}: {exc.strerror}") from exc
        return path
    target = path.resolve()  # through symlinks: replace the file, keep the link
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp")  # unique per writer
    # 0o666 minus the umask, as any new file; an existing target's permission bits are kept.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    def write(handle: BinaryIO) -> None:
        handle.write(data)

    return write_atomic(path, write)


def write_text_atomic(path: Path, text: str) -> Path:
    """``write_atomic`` for UTF-8 text, written as given (no newline translation)."""
    return write_bytes_atomic(path, text.encode("utf-8"))
