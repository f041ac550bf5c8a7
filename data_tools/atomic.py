"""Files that appear whole or not at all.

Every writer here writes to a temporary name in the target's folder, flushes and
fsyncs it, then renames it over the target (``os.replace``, atomic on POSIX and
Windows for files on one file system). A process killed mid-write, or a full disk,
leaves the previous file (or none) and at most a ``.<name>.*.tmp`` beside it, never a
truncated file under the final name. The new file gets the mode an ordinary
``open(path, "w")`` would give (the umask respected), not ``mkstemp``'s 0600.

    with atomic_path("scores.json") as temporary:
        temporary.write_text(json.dumps(scores))
    atomic_write_text("run.json", text)
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = "") -> Iterator[Path]:
    """A temporary path in ``path``'s folder; renamed to ``path`` when the block ends
    without an exception, deleted otherwise.

    ``suffix`` is appended to the temporary name for writers that choose the format
    by extension (``.weights.h5``, ``.png``). The content is fsynced before the
    rename and the folder after it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as file:
            os.fsync(file.fileno())
        os.chmod(temporary, _umask_mode())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


def _fsync_folder(folder: Path) -> None:
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
