"""Writing a file so that readers and crashes see the old file or the new one, never a part.

Every file benchbed writes (parquet parts, compacted and merged runs, HTML, JSON, markdown) goes
through here: the bytes go to a dot-prefixed temporary file in the same folder, are fsynced, and
the temporary file is renamed over the target (atomic on POSIX). When a write fails (a full disk,
a file-size limit, a read-only folder) the temporary file is removed and `WriteFailed` names the
target and the reason, so the command can say it in one line and exit with its own code.
"""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path
from typing import BinaryIO, Callable

__all__ = ["WriteFailed", "write_atomic", "write_bytes_atomic", "write_text_atomic", "fsync_dir"]


class WriteFailed(OSError):
    """A file could not be written; nothing partial was left behind."""

    def __init__(self, path: str | os.PathLike[str], cause: OSError) -> None:
        reason = cause.strerror or str(cause) or cause.__class__.__name__
        if cause.errno == errno.EFBIG:
            reason = "file size limit exceeded"
        super().__init__(cause.errno, f"cannot write {str(path)!r}: {reason}")
        self.path = str(path)
        self.cause = cause

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def write_atomic(final: str | os.PathLike[str], fill: Callable[[BinaryIO], None]) -> str:
    """Write `final` by calling `fill` on a temporary file beside it, then renaming."""
    final = Path(final)
    tmp = final.with_name(f".tmp-{secrets.token_hex(4)}-{final.name}")
    try:
        with open(tmp, "wb") as fh:
            fill(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise WriteFailed(final, exc) from exc
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    fsync_dir(final.parent)
    return str(final)


def write_bytes_atomic(final: str | os.PathLike[str], data: bytes) -> str:
    return write_atomic(final, lambda fh: fh.write(data))


def write_text_atomic(final: str | os.PathLike[str], text: str, append: bool = False) -> str:
    """Write `text` (after the file's current content when `append`, as ``$GITHUB_STEP_SUMMARY``
    wants) in one rename."""
    data = text.encode("utf-8")
    if append and os.path.isfile(final):
        with open(final, "rb") as fh:
            data = fh.read() + data
    return write_bytes_atomic(final, data)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
