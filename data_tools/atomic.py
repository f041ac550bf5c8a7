"""Files that appear whole or not at all.

Every writer here writes to a temporary name in the target's folder, flushes and
fsyncs it, then renames it over the target (``os.replace``, atomic on POSIX and
Windows for files on one file system). A process killed mid-write, or a full disk,
leaves the previous file (or none) and at most a ``.<name>.*.tmp`` beside it, never a
truncated file under the final name. The new file gets the mode an ordinary
``open(path, "w")`` would give (the umask respected), not ``mkstemp``'s 0600.

A write that fails because the disk (or the user's quota) is full raises
:class:`DiskFullError`: one line naming the file, the space it needs and the space
free, with the previous file left as it was.

    with atomic_path("scores.json") as temporary:
        temporary.write_text(json.dumps(scores))
    atomic_write_text("run.json", text)
    atomic_write_bytes("model.tflite", flatbuffer)
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


class DiskFullError(OSError):
    """A file that could not be written for want of space; ``str()`` is one line.

    Attributes:
        path: the file that was being written.
        needed: bytes the whole file needs, or ``None`` where the writer did not
            say (then the message gives the bytes written before the disk filled).
        free: bytes free in the file's folder when the write failed.
    """

    def __init__(self, path: Path, needed: int | None, written: int, free: int):
        size = f"{_size(needed)}" if needed is not None else f"more than the {_size(written)} written so far"
        message = (
            f"{path}: no space left on the device: the file needs {size} and {_size(free)} are free "
            f"in {path.parent}; nothing was written under that name (a previous file is kept as it "
            "was). Free some space and run again."
        )
        super().__init__(errno.ENOSPC, message, str(path))
        self.path, self.needed, self.free = path, needed, free

    def __str__(self) -> str:
        return self.strerror


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = "", size: int | None = None) -> Iterator[Path]:
    """A temporary path in ``path``'s folder; renamed to ``path`` when the block ends
    without an exception, deleted otherwise.

    ``suffix`` is appended to the temporary name for writers that choose the format
    by extension (``.weights.h5``, ``.png``). The content is fsynced before the
    rename and the folder after it. ``size``, where the caller knows it, is the
    size :class:`DiskFullError` reports as needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        fsync_file(temporary)
        os.chmod(temporary, _umask_mode())
        os.replace(temporary, path)
    except OSError as error:
        written = temporary.stat().st_size if temporary.exists() else 0
        temporary.unlink(missing_ok=True)
        if error.errno in _FULL and not isinstance(error, DiskFullError):
            raise DiskFullError(path, size, written, shutil.disk_usage(path.parent).free) from error
        raise
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Writes ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path, size=len(data)) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def fsync_file(path: Path) -> None:
    """Makes a written file's content durable."""
    with open(path, "rb+") as file:
        os.fsync(file.fileno())


def fsync_folder(folder: Path) -> None:
    """Makes a rename in ``folder`` durable (where the platform allows it)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems cannot fsync a folder; the rename itself is still atomic
    finally:
        os.close(descriptor)
