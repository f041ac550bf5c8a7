"""Download the official ISIC challenge archives into the layout the readers expect.

The ISIC challenges publish each folder of a release as one zip archive and each
Part 3 ground truth as a plain CSV, under
``https://isic-challenge-data.s3.amazonaws.com/<year>/<file>``. The archive names
are the official folder names of :mod:`data_tools.layouts` plus ``.zip``, so the
registry below is derived from those tables rather than typed a second time.

What :func:`download_dataset` does for every archive of the requested splits:

1. skips it when a completion marker says it was already downloaded and extracted
   (reruns are cheap: the command is idempotent);
2. downloads it into ``<file>.part``, resuming with an HTTP ``Range`` request when a
   partial file is left from an interrupted run, and retrying broken connections;
3. verifies it before it is kept: the byte count (the server's ``Content-Length`` /
   ``Content-Range``, and the registry's size when known), the SHA-256 when the
   registry knows it, no HTML page (refused by Content-Type or by its first bytes: an
   error page served with status 200), zips with ``zipfile.testzip`` (every member's
   CRC), CSVs by their first row (2017: the header; 2016: ``ISIC_<id>,<label>``). A
   download resumed from a leftover ``.part`` that fails is fetched once more from the
   start; a file left by an earlier run is verified again before it is used. A
   server trickling bytes times out (see :func:`download_file`);
4. extracts zips into ``<dest>/<official folder>/`` whatever the zip's own top folder
   (most official zips hold the folder itself, a few hold the files directly),
   skipping macOS metadata (``__MACOSX/``, ``._*``) and refusing unsafe paths;
5. writes a marker under ``<dest>/.isic_download/`` and deletes the zip (unless
   ``keep_archives``).

Every failure raises :class:`DownloadError`, whose message names the URL and the
problem; the command line prints it as an ``error:`` line on stderr. Use
``ISIC_BASE_URL`` or ``--base-url`` for a mirror with the same ``<year>/<file>``
structure (tests use a ``127.0.0.1`` server).

Command line::

    python -m data_tools.download isic2018 --dest data/isic2018 --splits train validation
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import functools
import hashlib
import http.client
import io
import json
import logging
import os
import re
import shutil
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath
from typing import Callable, Mapping, Sequence

from tqdm import tqdm

from data_tools.layouts import (
    ISIC2016_LAYOUT,
    ISIC2017_LAYOUT,
    ISIC2017_PART3_COLUMNS,
    ISIC2018_LAYOUT,
    ISIC_IMAGE_ID,
)

log = logging.getLogger("data_tools")

DEFAULT_BASE_URL = "https://isic-challenge-data.s3.amazonaws.com"
BASE_URL_ENV = "ISIC_BASE_URL"
MARKER_DIR = ".isic_download"

_LAYOUTS: dict[str, tuple[int, Mapping[str, Mapping[str, str]]]] = {
    "isic2016": (2016, ISIC2016_LAYOUT),
    "isic2017": (2017, ISIC2017_LAYOUT),
    "isic2018": (2018, ISIC2018_LAYOUT),
}

#: Known archive sizes in bytes and SHA-256 digests, by file name. Only values
#: measured on the official files belong here; an archive not listed is checked
#: against the server's Content-Length only. The digest of every download is
#: written into its marker file, so a maintainer can fill this table from a run.
KNOWN_CHECKSUMS: dict[str, tuple[int | None, str | None]] = {}

#: A download averaging fewer bytes per second than this over ``timeout`` seconds
#: has stalled (a server trickling one byte per second never trips a socket timeout).
STALL_MIN_RATE = 1024
_CHUNK_SIZE = 1 << 20
_HTML_STARTS = (b"<!doctype html", b"<html", b"<?xml")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class DownloadError(RuntimeError):
    """A download, verification or extraction failed; the message names the URL."""

    def __init__(self, url: str, problem: str):
        self.url = url
        self.problem = problem
        super().__init__(f"{url}: {problem}")


@dataclasses.dataclass(frozen=True)
class Archive:
    """One file of an official release.

    Attributes:
        dataset: ``"isic2016"``, ``"isic2017"`` or ``"isic2018"``.
        split: ``"train"``, ``"validation"`` or ``"test"``.
        part: the key of :mod:`data_tools.layouts` it provides, e.g. ``"task1"``.
        year: the challenge year, the folder of the file on the server.
        target: the official folder (zips) or CSV file name it becomes in ``dest``.
        size: the size in bytes when known, else ``None``.
        sha256: the hex SHA-256 digest when known, else ``None``.
    """

    dataset: str
    split: str
    part: str
    year: int
    target: str
    size: int | None = None
    sha256: str | None = None

    @property
    def is_zip(self) -> bool:
        return not self.target.endswith(".csv")

    @property
    def file_name(self) -> str:
        return f"{self.target}.zip" if self.is_zip else self.target

    def url(self, base_url: str | None = None) -> str:
        return f"{resolve_base_url(base_url)}/{self.year}/{self.file_name}"


def resolve_base_url(base_url: str | None = None) -> str:
    """The argument, else ``$ISIC_BASE_URL``, else the official S3 bucket."""
    return (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


def _build_registry() -> dict[str, tuple[Archive, ...]]:
    registry = {}
    for dataset, (year, layout) in _LAYOUTS.items():
        archives = []
        for split, parts in layout.items():
            for part, target in parts.items():
                file_name = target if target.endswith(".csv") else f"{target}.zip"
                size, sha256 = KNOWN_CHECKSUMS.get(file_name, (None, None))
                archives.append(Archive(dataset, split, part, year, target, size, sha256))
        registry[dataset] = tuple(archives)
    return registry


#: Every official archive, by dataset.
ARCHIVES: dict[str, tuple[Archive, ...]] = _build_registry()


def select_archives(
    dataset: str,
    splits: Sequence[str] | None = None,
    parts: Sequence[str] | None = None,
) -> list[Archive]:
    """The registry's archives of ``dataset``, filtered by split and layout part.

    Raises:
        ValueError: naming the argument and the allowed values when a dataset,
            split or part is unknown.
    """
    if dataset not in ARCHIVES:
        raise ValueError(f"dataset={dataset!r} is unknown; choose one of {sorted(ARCHIVES)}")
    archives = ARCHIVES[dataset]
    for name, wanted, allowed in (
        ("splits", splits, {a.split for a in archives}),
        ("parts", parts, {a.part for a in archives}),
    ):
        unknown = set(wanted or ()) - allowed
        if unknown:
            raise ValueError(f"{name}={sorted(unknown)} unknown for {dataset}; choose from {sorted(allowed)}")
    return [a for a in archives if (splits is None or a.split in splits) and (parts is None or a.part in parts)]


def download_file(
    url: str,
    path: str | Path,
    *,
    size: int | None = None,
    sha256: str | None = None,
    verify: Callable[[Path], str | None] | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    progress: bool = True,
) -> str:
    """Download ``url`` to ``path`` through ``<path>.part``, resuming when possible.

    A ``.part`` file left by an interrupted call is continued with an HTTP
    ``Range`` request; a server that ignores the range (status 200) restarts the
    file. Broken connections and stalls are retried ``retries`` times after waits
    of 1, 2, 4, ... s (:func:`backoff_seconds`), each retry resuming from the bytes
    already written. ``path`` appears only once the file
    passes its checks: the byte count, ``size`` and ``sha256`` when given, no HTML
    (by Content-Type or by its first bytes), and ``verify(file)`` (a problem, or
    None). When a file resumed from a leftover ``.part`` fails them, the leftover
    is taken for other content and the file is fetched once more from the start.

    ``timeout`` (seconds) bounds every wait for the server and the connection with
    the response headers as a whole (a server trickling its headers is cut off),
    and a transfer averaging under :data:`STALL_MIN_RATE` bytes per second over
    ``timeout`` seconds has stalled.

    Returns:
        The hex SHA-256 of the downloaded file.

    Raises:
        DownloadError: HTTP errors, unreachable server, a stall, a file failing its
            checks (then deleted); the message names the URL.
    """
    path = Path(path)
    part = path.with_name(path.name + ".part")
    path.parent.mkdir(parents=True, exist_ok=True)
    resumed = part.is_file() and part.stat().st_size > 0
    while True:  # twice at most: once more from the start after resuming a bad leftover
        _fetch_with_retries(url, part, retries=retries, timeout=timeout, progress=progress)
        digest = file_sha256(part)
        problem = _download_problem(part, digest, size=size, sha256=sha256, verify=verify)
        if problem is None:
            part.replace(path)
            return digest
        part.unlink()
        if not resumed:
            raise DownloadError(url, problem)
        log.warning("%s: %s after resuming a leftover %s; downloading it from the start", url, problem, part.name)
        resumed = False


BACKOFF_FIRST_S = 1.0
"""Wait before the first retry of a broken connection; each further retry doubles it."""
BACKOFF_MAX_S = 30.0
"""The longest wait between two retries."""
_sleep: Callable[[float], None] = time.sleep
"""How retries wait (tests replace it, so that they do not sleep)."""


def backoff_seconds(retry: int) -> float:
    """The wait before retry number ``retry`` (1-based): 1, 2, 4, ... s, at most
    :data:`BACKOFF_MAX_S`."""
    return min(BACKOFF_FIRST_S * 2.0 ** (retry - 1), BACKOFF_MAX_S)


def _fetch_with_retries(url: str, part: Path, *, retries: int, timeout: float, progress: bool) -> None:
    """Fetches into ``part``; a broken connection or an unreachable server is retried
    ``retries`` times after exponentially growing waits (:func:`backoff_seconds`), so
    that a network that is briefly down has time to come back."""
    for attempt in range(retries + 1):
        try:
            _fetch_into(url, part, timeout=timeout, progress=progress)
            return
        except (OSError, http.client.HTTPException) as error:
            if isinstance(error, urllib.error.HTTPError) or attempt == retries:
                raise _as_download_error(url, error) from error
            wait = backoff_seconds(attempt + 1)
            log.warning("%s: %s; retrying in %g s (retry %d of %d)", url, error, wait, attempt + 1, retries)
            _sleep(wait)


def _download_problem(
    part: Path,
    digest: str,
    *,
    size: int | None,
    sha256: str | None,
    verify: Callable[[Path], str | None] | None,
) -> str | None:
    """What is wrong with a downloaded file, or None."""
    received = part.stat().st_size
    if size is not None and received != size:
        return f"size mismatch: expected {size} bytes, received {received}"
    if not received:
        return "an empty file"
    if sha256 is not None and digest != sha256.lower():
        return f"checksum mismatch: expected sha256 {sha256}, got {digest}"
    with open(part, "rb") as handle:
        head = handle.read(512).lstrip().lower()
    if head.startswith(_HTML_STARTS):
        return "an HTML page, not the file (an error or login page served as the file?)"
    return verify(part) if verify is not None else None


def _fetch_into(url: str, part: Path, *, timeout: float, progress: bool) -> None:
    """One HTTP request appending to ``part``; raises on a short, stalled or failed read."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = _open_within(request, timeout)
    except urllib.error.HTTPError as error:
        if error.code != 416 or not offset:
            raise
        # The range starts at or past the end: the .part is stale or complete but
        # unverified. Start again from zero rather than guess.
        part.unlink()
        return _fetch_into(url, part, timeout=timeout, progress=progress)
    with response:
        if response.headers.get_content_type() == "text/html":
            raise DownloadError(url, "an HTML page (Content-Type text/html), not the file: an error or login page?")
        offset, total = _resume_offset(url, response, offset)
        mode = "ab" if offset else "wb"
        with (
            open(part, mode) as out,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name.removesuffix(".part"),
                disable=not progress,
            ) as bar,
        ):
            window_start, window_bytes = time.monotonic(), 0
            while chunk := response.read1(_CHUNK_SIZE):
                out.write(chunk)
                bar.update(len(chunk))
                window_bytes += len(chunk)
                elapsed = time.monotonic() - window_start
                if elapsed >= timeout:
                    if window_bytes < STALL_MIN_RATE * elapsed:
                        raise TimeoutError(
                            f"stalled: {window_bytes} bytes in the last {elapsed:.1f} s (under "
                            f"{STALL_MIN_RATE} bytes/s)"
                        )
                    window_start, window_bytes = time.monotonic(), 0
    received = part.stat().st_size
    if total is not None and received != total:
        raise http.client.IncompleteRead(b"", total - received)


def _open_within(request: urllib.request.Request, timeout: float) -> http.client.HTTPResponse:
    """``urlopen`` whose connection, status line and headers must all arrive within
    ``timeout`` seconds. The socket timeout bounds each wait only, so a server
    trickling its headers a byte at a time would hold the download forever; the body
    is bounded by the stall check of :func:`_fetch_into`."""
    sockets: list[socket.socket] = []
    guard, state = threading.Lock(), {"opened": False, "expired": False}

    def expire() -> None:
        with guard:
            if state["opened"]:
                return
            state["expired"] = True
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        response = _recording_opener(sockets).open(request, timeout=timeout)
        with guard:
            state["opened"] = not state["expired"]
        if not state["opened"]:
            response.close()
            raise OSError("closed")
        return response
    except (OSError, http.client.HTTPException) as error:
        if state["expired"] and not isinstance(error, urllib.error.HTTPError):
            raise TimeoutError(
                f"no response (connection, status and headers) within the {timeout:g} s timeout"
            ) from error
        raise
    finally:
        timer.cancel()


def _recording_opener(sockets: list[socket.socket]) -> urllib.request.OpenerDirector:
    """An opener like ``urlopen``'s whose connections add their sockets to ``sockets``."""

    def recording(base: type[http.client.HTTPConnection]) -> type[http.client.HTTPConnection]:
        class Connection(base):
            def connect(self):
                super().connect()
                sockets.append(self.sock)

        return Connection

    class Http(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(recording(http.client.HTTPConnection), req)

    class Https(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(recording(http.client.HTTPSConnection), req, context=self._context)

    return urllib.request.build_opener(Http, Https)


def _resume_offset(url: str, response: http.client.HTTPResponse, offset: int) -> tuple[int, int | None]:
    """Where the body starts in the file and the file's total size (None if unknown)."""
    length = response.headers.get("Content-Length")
    if response.status == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
        if not match or int(match.group(1)) != offset:
            raise DownloadError(
                url,
                f"server answered range bytes={offset}- with Content-Range {response.headers.get('Content-Range')!r}",
            )
        total = match.group(3)
        return offset, None if total == "*" else int(total)
    if offset:
        log.warning("%s: server ignored the Range request; restarting from zero", url)
    return 0, int(length) if length is not None else None


def _as_download_error(url: str, error: BaseException) -> DownloadError:
    if isinstance(error, DownloadError):
        return error
    if isinstance(error, urllib.error.HTTPError):
        return DownloadError(url, f"HTTP {error.code} {error.reason}")
    if isinstance(error, urllib.error.URLError):
        return DownloadError(url, f"cannot reach the server ({error.reason})")
    if isinstance(error, http.client.IncompleteRead):
        return DownloadError(url, f"connection closed with {error.expected} bytes missing; rerun to resume")
    if isinstance(error, TimeoutError):
        return DownloadError(url, f"{error}; rerun to resume")
    return DownloadError(url, f"{type(error).__name__}: {error}; rerun to resume")


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def verify_archive_file(archive: Archive, path: str | Path) -> str | None:
    """What is wrong with a downloaded official file, or None.

    A zip must pass ``zipfile.testzip`` (every member read, its CRC checked); a CSV
    must be UTF-8 and start as the official one does: the 2017 header
    ``image_id,melanoma,seborrheic_keratosis``, or (2016, no header) a row
    ``ISIC_<7 digits>,<label>``. The readers check every row later.
    """
    path = Path(path)
    if archive.is_zip:
        try:
            with zipfile.ZipFile(path) as opened:
                bad = opened.testzip()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as error:
            return f"corrupt zip archive ({error})"
        return None if bad is None else f"corrupt zip archive: member {bad!r} fails its CRC check"
    try:
        rows = csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig")))
        first = next((row for row in rows if any(cell.strip() for cell in row)), [])
    except UnicodeDecodeError as error:
        return f"not a UTF-8 CSV ({error})"
    except csv.Error as error:
        return f"not a CSV ({error})"
    cells = [cell.strip() for cell in first]
    if archive.dataset == "isic2017":
        if set(ISIC2017_PART3_COLUMNS) <= set(cells):
            return None
        expected = f"a header with {','.join(ISIC2017_PART3_COLUMNS)}"
    else:
        if len(cells) == 2 and ISIC_IMAGE_ID.match(cells[0]):
            return None
        expected = "ISIC_<7 digits>,<label> (no header)"
    return f"not the expected CSV: first row {','.join(cells)!r}; expected {expected}"


def extract_archive(zip_path: str | Path, dest: str | Path, folder: str, *, url: str) -> Path:
    """Extract ``zip_path`` into ``dest/folder``, whatever the zip's top folder.

    When every member lies under one top-level folder (the official zips hold
    their own folder, e.g. ``ISIC2018_Task1_Training_GroundTruth/``), that folder
    is replaced by ``folder``; otherwise the members go into ``folder`` as they
    are. ``__MACOSX/`` and ``._*`` entries are skipped. The files are written to a
    temporary folder first, so an interrupted extraction leaves no half folder.

    Raises:
        DownloadError: a corrupt zip, or a member with an absolute or ``..`` path.
    """
    dest = Path(dest)
    target = dest / folder
    staging = dest / f".{folder}.extracting"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = [m for m in archive.infolist() if not _is_metadata(m.filename)]
            names = {m.filename: PurePosixPath(m.filename) for m in members}
            for name, member_path in names.items():
                if member_path.is_absolute() or ".." in member_path.parts:
                    raise DownloadError(url, f"unsafe path {name!r} in {zip_path}")
            strip = _common_top_folder(list(names.values()))
            for member in members:
                relative = PurePosixPath(*names[member.filename].parts[strip:])
                if member.is_dir() or not relative.parts:
                    continue
                out = staging.joinpath(*relative.parts)
                out.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK_SIZE)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise DownloadError(url, f"corrupt zip archive {zip_path}: {error}") from error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    staging.mkdir(exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


def _is_metadata(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return bool(parts) and (parts[0] == "__MACOSX" or parts[-1].startswith("._"))


def _common_top_folder(paths: list[PurePosixPath]) -> int:
    """1 when every member lies under one shared top folder (to strip), else 0."""
    tops = {p.parts[0] for p in paths if p.parts}
    return int(len(tops) == 1 and any(len(p.parts) > 1 for p in paths))


def download_archive(
    archive: Archive,
    dest: str | Path,
    *,
    base_url: str | None = None,
    keep_archives: bool = False,
    retries: int = 3,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download, verify and extract (zips) one archive into ``dest``; skip if done.

    An archive downloaded by an earlier run whose extraction did not finish is
    extracted again without downloading it again.

    Returns:
        The official folder or CSV file it produced in ``dest``.
    """
    dest = Path(dest)
    url = archive.url(base_url)
    target = dest / archive.target
    marker = dest / MARKER_DIR / f"{archive.file_name}.json"
    if marker.is_file() and target.exists():
        log.info("%s: already complete, skipping", target)
        return target
    download_path = dest / MARKER_DIR / archive.file_name if archive.is_zip else target
    checks = dict(size=archive.size, sha256=archive.sha256, verify=functools.partial(verify_archive_file, archive))
    if download_path.is_file():  # left by an earlier run (not extracted, or not marked): check again
        digest = file_sha256(download_path)
        problem = _download_problem(download_path, digest, **checks)
        if problem is not None:
            log.warning("%s: %s; downloading it again", download_path, problem)
            download_path.unlink()
    if not download_path.is_file():
        digest = download_file(url, download_path, **checks, retries=retries, timeout=timeout, progress=progress)
    if archive.is_zip:
        try:
            extract_archive(download_path, dest, archive.target, url=url)
        except DownloadError:
            download_path.unlink()  # a bad archive is fetched again on the next run
            raise
        if not keep_archives:
            download_path.unlink()
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"url": url, "sha256": digest, "target": archive.target}, indent=2) + "\n")
    return target


def download_dataset(
    dataset: str,
    dest: str | Path,
    *,
    splits: Sequence[str] | None = None,
    parts: Sequence[str] | None = None,
    base_url: str | None = None,
    keep_archives: bool = False,
    retries: int = 3,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download every archive of ``dataset`` (optionally some splits/parts) to ``dest``.

    ``dest`` becomes the ``root`` the readers take, e.g.
    ``data_tools.isic.read_isic2018(dest, "train", tasks=(1, 2))``.

    Returns:
        ``dest``.
    """
    dest = Path(dest)
    for archive in select_archives(dataset, splits, parts):
        download_archive(
            archive,
            dest,
            base_url=base_url,
            keep_archives=keep_archives,
            retries=retries,
            timeout=timeout,
            progress=progress,
        )
    return dest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m data_tools.download",
        description="Download and extract the official ISIC challenge archives.",
    )
    parser.add_argument("dataset", choices=sorted(ARCHIVES))
    parser.add_argument("--dest", required=True, type=Path, help="dataset root to create")
    parser.add_argument("--splits", nargs="+", help="default: every split")
    parser.add_argument("--parts", nargs="+", help="layout parts, e.g. images task1 (default: all)")
    parser.add_argument("--base-url", help=f"mirror URL (default: ${BASE_URL_ENV} or {DEFAULT_BASE_URL})")
    parser.add_argument("--keep-archives", action="store_true", help="keep the zips")
    parser.add_argument(
        "--retries", type=int, default=3, help="retries per file, after waits of 1, 2, 4, ... s (default 3)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds: the longest wait for the server, and the window over which a transfer "
        f"averaging under {STALL_MIN_RATE} bytes/s counts as stalled (default 60)",
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        archives = select_archives(args.dataset, args.splits, args.parts)
    except ValueError as error:
        parser.error(str(error))
    try:
        for archive in archives:
            path = download_archive(
                archive,
                args.dest,
                base_url=args.base_url,
                keep_archives=args.keep_archives,
                retries=args.retries,
                timeout=args.timeout,
                progress=not args.no_progress,
            )
            print(path)
    except (DownloadError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
