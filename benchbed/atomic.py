"""Writing a file so that readers and crashes see the old file or the new one, never a part.

Every file benchbed writes (parquet parts, compacted and merged runs, HTML, JSON, markdown) goes
through here: the bytes go to a dot-prefixed temporary file in the same folder, are fsynced, and
the temporary file is renamed over the target (atomic on POSIX). When a write fails (a full disk,
a file-size limit, a read-only folder) the temporary file is removed and `WriteFailed` names the
target and the reason, so the command can say it in one line and exit with its own code.

The target is resolved first, so a write goes *through* what the path names and never replaces
it: a link to a file writes the file it points to (the temporary file beside that file, in its
folder), and a character device, pipe or socket (``/dev/stdout``, ``>(tee …)``) is written in
place with no temporary file at all (appended, as a shell's ``>>`` would: ``/dev/stdout`` redirected
to a file keeps what was printed before). A folder is refused.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path
from typing import BinaryIO, Callable

__all__ = ["WriteFailed", "resolve_target", "write_atomic", "write_bytes_atomic", "write_text_atomic", "fsync_dir"]


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


def resolve_target(final: str | os.PathLike[str]) -> tuple[Path, bool]:
    """(the path to write, whether it is a stream written in place): a link is followed to the file
    it names; a character device, FIFO or socket is a stream. A folder raises `WriteFailed`."""
    path = Path(final)
    try:
        mode = os.stat(path).st_mode  # follows links
    except OSError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise WriteFailed(path, IsADirectoryError(errno.EISDIR, "it is a folder; give a file name"))
    if mode is not None and (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        return path, True
    if mode is not None and os.path.abspath(path).startswith(("/dev/", "/proc/")):
        return path, True  # /dev/stdout redirected to a file: append through it, never rename over it
    return Path(os.path.realpath(path)), False


def write_atomic(final: str | os.PathLike[str], fill: Callable[[BinaryIO], None]) -> str:
    """Write `final` by calling `fill` on a temporary file beside the file it resolves to, then
    renaming (a stream is filled in place). Returns the path as given."""
    target, stream = resolve_target(final)
    if stream:
        try:
            with open(target, "ab") as fh:  # a stream has no start to rewind to; a redirect keeps what it had
                fill(fh)
        except OSError as exc:
            raise WriteFailed(final, exc) from exc
        return str(final)
    tmp = target.with_name(f".tmp-{secrets.token_hex(4)}-{target.name}")
    try:
        with open(tmp, "xb") as fh:
            fill(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
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
    fsync_dir(target.parent)
    return str(final)


def write_bytes_atomic(final: str | os.PathLike[str], data: bytes) -> str:
    return write_atomic(final, lambda fh: fh.write(data))


def write_text_atomic(final: str | os.PathLike[str], text: str, append: bool = False) -> str:
    """Write `text` (after the file's current content when `append`, as ``$GITHUB_STEP_SUMMARY``
    wants) in one rename."""
    data = text.encode("utf-8", "replace")
    target, stream = resolve_target(final)
    if append and not stream and os.path.isfile(target):  # os.path: False, not an error, for any bad name
        with open(target, "rb") as fh:
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
