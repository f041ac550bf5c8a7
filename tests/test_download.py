"""The ISIC downloader against a local HTTP server: extraction into the reader
layout, resumed downloads, verification errors, idempotent reruns."""

from __future__ import annotations

import hashlib
import http.server
import re
import threading
import time
import zipfile
from pathlib import Path

import pytest

from data_tools import download, layouts
from data_tools.download import (
    ARCHIVES,
    BASE_URL_ENV,
    MARKER_DIR,
    DownloadError,
    download_dataset,
    download_file,
    main,
    resolve_base_url,
    select_archives,
)
from data_tools.isic import read_isic2017, read_isic2018
from data_tools.synthetic import make_isic2017, make_isic2018

SERVER_LIFETIME_S = 60.0


@pytest.fixture(autouse=True)
def retry_waits(monkeypatch) -> list[float]:
    """The downloader's waits between retries, recorded instead of slept."""
    waits: list[float] = []
    monkeypatch.setattr(download, "_sleep", waits.append)
    return waits


class LocalServer:
    """Serves ``files`` (URL path -> bytes) on 127.0.0.1 with HTTP Range support.

    ``log`` records ``(path, Range header, bytes sent)`` per request. A path in
    ``cut_after`` sends its full Content-Length but only that many bytes, once,
    then closes the connection. With ``honour_range=False`` ranges are ignored.
    A path in ``content_types`` is served with that Content-Type; a path in
    ``trickle`` sends one byte per that many seconds (until the client hangs up).
    """

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.log: list[tuple[str, str | None, int]] = []
        self.cut_after: dict[str, int] = {}
        self.content_types: dict[str, str] = {}
        self.trickle: dict[str, float] = {}
        self.honour_range = True
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._watchdog = threading.Timer(SERVER_LIFETIME_S, self.httpd.shutdown)

    def __enter__(self) -> "LocalServer":
        self._thread.start()
        self._watchdog.start()
        return self

    def __exit__(self, *exc) -> None:
        self._watchdog.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def requests_for(self, path: str) -> list[tuple[str | None, int]]:
        return [(r, n) for p, r, n in self.log if p == path]

    def _handler(self):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 5

            def do_GET(self):
                # Each request is logged before its answer, so the client never
                # sees an answer whose log entry is still missing.
                body = server.files.get(self.path)
                requested = self.headers.get("Range")
                match = re.fullmatch(r"bytes=(\d+)-", requested or "")
                start = int(match.group(1)) if match and server.honour_range else 0
                if body is None or start and start >= len(body):
                    server.log.append((self.path, requested, 0))
                    self.send_error(404 if body is None else 416)
                    return
                payload = body[start:]
                if self.path in server.cut_after:
                    payload = payload[: server.cut_after.pop(self.path)]
                    self.close_connection = True
                server.log.append((self.path, requested, len(payload)))
                if start:
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.send_header("Content-Type", server.content_types.get(self.path, "application/octet-stream"))
                self.end_headers()
                if self.path not in server.trickle:
                    self.wfile.write(payload)
                    return
                for index in range(len(payload)):  # ends with the payload or the client
                    try:
                        self.wfile.write(payload[index : index + 1])
                        self.wfile.flush()
                    except OSError:
                        return
                    time.sleep(server.trickle[self.path])

            def log_message(self, *args):
                pass

        return Handler


@pytest.fixture
def server():
    with LocalServer() as running:
        yield running


def _zip_folder(folder: Path, zip_path: Path, arcroot: str | None, junk: bool = False) -> bytes:
    """Zips ``folder``'s files under ``arcroot/`` (or at the top when None)."""
    with zipfile.ZipFile(zip_path, "w") as archive:
        if arcroot:
            archive.writestr(f"{arcroot}/", b"")
        for path in sorted(folder.iterdir()):
            name = f"{arcroot}/{path.name}" if arcroot else path.name
            archive.write(path, name)
            if junk:
                archive.writestr(f"__MACOSX/{arcroot}/._{path.name}", b"mac metadata")
    return zip_path.read_bytes()


@pytest.fixture(scope="module")
def isic2018_source(tmp_path_factory) -> Path:
    return make_isic2018(tmp_path_factory.mktemp("source2018"), n_train=3, n_val=0, n_test=0, image_size=(48, 64))


def _serve_isic2018_train(server: LocalServer, source: Path, tmp_path: Path) -> None:
    """The three training archives, in the three shapes zips come in: with the
    official top folder (plus macOS junk), without a top folder, with another one."""
    folders = layouts.ISIC2018_LAYOUT["train"]
    shapes = {"images": (folders["images"], True), "task1": (None, False), "task2": ("gt", False)}
    for part, (arcroot, junk) in shapes.items():
        name = folders[part]
        body = _zip_folder(source / name, tmp_path / f"{name}.zip", arcroot, junk)
        server.files[f"/2018/{name}.zip"] = body


def test_download_extracts_into_the_reader_layout_and_reruns_are_free(server, isic2018_source, tmp_path):
    _serve_isic2018_train(server, isic2018_source, tmp_path)
    dest = tmp_path / "isic2018"
    download_dataset("isic2018", dest, splits=["train"], base_url=server.url, progress=False)

    records = read_isic2018(dest, "train", tasks=(1, 2))
    expected = read_isic2018(isic2018_source, "train", tasks=(1, 2))
    assert (
        [r.image_id for r in records]
        == [r.image_id for r in expected]
        == ["ISIC_0000000", "ISIC_0000001", "ISIC_0000002"]
    )
    for got, want in zip(records, expected, strict=True):
        assert got.image_path.read_bytes() == want.image_path.read_bytes()
        for name, path in got.mask_paths.items():
            assert path.read_bytes() == want.mask_paths[name].read_bytes()
    assert not list(dest.rglob("__MACOSX")) and not list(dest.rglob("._*"))
    assert not list(dest.rglob("*.zip")) and not list(dest.rglob("*.part"))
    assert len(server.log) == 3

    download_dataset("isic2018", dest, splits=["train"], base_url=server.url, progress=False)
    assert len(server.log) == 3  # every archive complete: nothing requested


def test_plain_csv_ground_truth_is_downloaded_beside_the_folders(server, tmp_path):
    source = make_isic2017(tmp_path / "source", n_train=2, n_val=0, n_test=0, image_size=(48, 48))
    folders = layouts.ISIC2017_LAYOUT["train"]
    server.files[f"/2017/{folders['part3']}"] = (source / folders["part3"]).read_bytes()
    server.files[f"/2017/{folders['images']}.zip"] = _zip_folder(
        source / folders["images"], tmp_path / "images.zip", folders["images"]
    )
    dest = tmp_path / "isic2017"
    for part in ("part3", "images"):  # the CSV first, into an empty folder
        download_dataset("isic2017", dest, splits=["train"], parts=[part], base_url=server.url, progress=False)
    records = read_isic2017(dest, "train", parts=(3,))
    expected = read_isic2017(source, "train", parts=(3,))
    assert [r.labels for r in records] == [r.labels for r in expected]


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    body = bytes(range(256)) * 40  # 10240 bytes
    server.files["/2018/archive.zip"] = body
    server.cut_after["/2018/archive.zip"] = 3000
    url, path = f"{server.url}/2018/archive.zip", tmp_path / "archive.zip"

    with pytest.raises(DownloadError, match=re.escape(url)):
        download_file(url, path, retries=0, progress=False)
    assert not path.exists()
    assert path.with_name("archive.zip.part").stat().st_size == 3000

    digest = download_file(url, path, progress=False)
    assert path.read_bytes() == body
    assert digest == hashlib.sha256(body).hexdigest()
    assert server.requests_for("/2018/archive.zip") == [(None, 3000), ("bytes=3000-", 10240 - 3000)]


def test_broken_connection_is_retried_from_where_it_stopped(server, tmp_path):
    body = b"x" * 5000 + b"y" * 5000
    server.files["/f.bin"] = body
    server.cut_after["/f.bin"] = 4321
    download_file(f"{server.url}/f.bin", tmp_path / "f.bin", retries=1, progress=False)
    assert (tmp_path / "f.bin").read_bytes() == body
    assert server.requests_for("/f.bin") == [(None, 4321), ("bytes=4321-", 10000 - 4321)]


def test_server_ignoring_range_restarts_the_file(server, tmp_path):
    body = b"abcdefghij" * 100
    server.files["/f.bin"] = body
    server.honour_range = False
    (tmp_path / "f.bin.part").write_bytes(b"stale bytes")
    download_file(f"{server.url}/f.bin", tmp_path / "f.bin", progress=False)
    assert (tmp_path / "f.bin").read_bytes() == body


def test_checksum_mismatch_names_the_url_and_keeps_no_file(server, tmp_path):
    server.files["/f.bin"] = b"payload"
    url = f"{server.url}/f.bin"
    with pytest.raises(DownloadError, match=rf"{re.escape(url)}: checksum mismatch"):
        download_file(url, tmp_path / "f.bin", sha256="0" * 64, progress=False)
    assert not list(tmp_path.iterdir())
    good = hashlib.sha256(b"payload").hexdigest()
    download_file(url, tmp_path / "f.bin", sha256=good.upper(), size=7, progress=False)
    assert (tmp_path / "f.bin").read_bytes() == b"payload"


def test_size_mismatch_names_the_url(server, tmp_path):
    server.files["/f.bin"] = b"payload"
    url = f"{server.url}/f.bin"
    with pytest.raises(DownloadError, match=rf"{re.escape(url)}: size mismatch.*8 bytes.*7"):
        download_file(url, tmp_path / "f.bin", size=8, progress=False)


def test_http_404_is_a_clear_error(server, tmp_path):
    url = f"{server.url}/2018/missing.zip"
    with pytest.raises(DownloadError, match=rf"^{re.escape(url)}: HTTP 404"):
        download_file(url, tmp_path / "missing.zip", progress=False)
    assert len(server.log) == 1  # HTTP errors are not retried


def test_unreachable_server_is_a_clear_error(tmp_path):
    with LocalServer() as stopped:
        url = f"{stopped.url}/f.bin"
    with pytest.raises(DownloadError, match=rf"{re.escape(url)}: cannot reach"):
        download_file(url, tmp_path / "f.bin", retries=0, timeout=2, progress=False)


def test_corrupt_zip_names_the_url(server, tmp_path):
    name = layouts.ISIC2018_LAYOUT["train"]["task1"]
    server.files[f"/2018/{name}.zip"] = b"PK\x03\x04 this is not a zip"
    with pytest.raises(DownloadError, match=rf"/2018/{name}\.zip: corrupt zip"):
        download_dataset(
            "isic2018",
            tmp_path,
            splits=["train"],
            parts=["task1"],
            base_url=server.url,
            progress=False,
        )
    assert not (tmp_path / name).exists()
    assert not list(tmp_path.rglob("*.zip"))  # dropped, so the next run fetches it again


def test_downloaded_archive_is_extracted_without_downloading_again(server, isic2018_source, tmp_path):
    name = layouts.ISIC2018_LAYOUT["train"]["task1"]
    (tmp_path / MARKER_DIR).mkdir()
    _zip_folder(isic2018_source / name, tmp_path / MARKER_DIR / f"{name}.zip", name)
    download_dataset(
        "isic2018",
        tmp_path,
        splits=["train"],
        parts=["task1"],
        base_url=server.url,
        progress=False,
    )
    assert server.log == []
    assert sorted(p.name for p in (tmp_path / name).iterdir()) == sorted(
        p.name for p in (isic2018_source / name).iterdir()
    )


def test_zip_with_unsafe_paths_is_refused(server, tmp_path):
    name = layouts.ISIC2018_LAYOUT["train"]["task1"]
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as archive:
        archive.writestr("../outside.png", b"x")
    server.files[f"/2018/{name}.zip"] = (tmp_path / "evil.zip").read_bytes()
    with pytest.raises(DownloadError, match="unsafe path"):
        download_dataset(
            "isic2018",
            tmp_path / "dest",
            splits=["train"],
            parts=["task1"],
            base_url=server.url,
            progress=False,
        )
    assert not (tmp_path / "outside.png").exists()


def test_registry_urls_are_the_official_ones(monkeypatch):
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    urls = {a.url() for archives in ARCHIVES.values() for a in archives}
    bucket = "https://isic-challenge-data.s3.amazonaws.com"
    assert {
        f"{bucket}/2018/ISIC2018_Task1-2_Training_Input.zip",
        f"{bucket}/2018/ISIC2018_Task2_Training_GroundTruth_v3.zip",
        f"{bucket}/2017/ISIC-2017_Training_Data.zip",
        f"{bucket}/2017/ISIC-2017_Test_v2_Part3_GroundTruth.csv",
        f"{bucket}/2016/ISBI2016_ISIC_Part1_Training_Data.zip",
        f"{bucket}/2016/ISBI2016_ISIC_Part3_Training_GroundTruth.csv",
    } <= urls
    # 2016: Parts 1 and 3 x (images, ground truth) x 2 splits; 2017, 2018: 4 and 3 x 3 splits
    assert [len(ARCHIVES[d]) for d in ("isic2016", "isic2017", "isic2018")] == [8, 12, 9]
    validation = select_archives("isic2018", ["validation"])
    assert [a.part for a in validation] == ["images", "task1", "task2"]


def test_base_url_from_argument_then_environment(monkeypatch):
    monkeypatch.setenv(BASE_URL_ENV, "http://mirror.example/isic/")
    assert resolve_base_url() == "http://mirror.example/isic"
    assert resolve_base_url("http://other") == "http://other"
    archive = select_archives("isic2017", ["validation"], ["part1"])[0]
    assert archive.url() == ("http://mirror.example/isic/2017/ISIC-2017_Validation_Part1_GroundTruth.zip")


@pytest.mark.parametrize(
    "args, message",
    [
        (("isic2019",), "dataset"),
        (("isic2018", ["valid"]), "splits"),
        (("isic2018", None, ["mask"]), "parts"),
    ],
)
def test_unknown_choices_name_the_argument(args, message):
    with pytest.raises(ValueError, match=message):
        select_archives(*args)


def test_command_line(server, isic2018_source, tmp_path, capsys):
    _serve_isic2018_train(server, isic2018_source, tmp_path)
    dest = tmp_path / "data"
    argv = ["isic2018", "--dest", str(dest), "--splits", "train", "--base-url", server.url]
    assert main([*argv, "--no-progress", "--keep-archives"]) == 0
    assert len(read_isic2018(dest, "train")) == 3
    assert len(list((dest / MARKER_DIR).glob("*.zip"))) == 3
    assert main(["isic2018", "--dest", str(dest), "--splits", "test", "--base-url", server.url, "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "HTTP 404" in err


def test_part_file_longer_than_the_file_restarts(server, tmp_path):
    body = b"0123456789" * 50
    server.files["/f.bin"] = body
    (tmp_path / "f.bin.part").write_bytes(b"z" * 600)
    download_file(f"{server.url}/f.bin", tmp_path / "f.bin", progress=False)
    assert (tmp_path / "f.bin").read_bytes() == body
    assert server.requests_for("/f.bin") == [("bytes=600-", 0), (None, 500)]


def test_offline_retries_back_off_exponentially(tmp_path, retry_waits, caplog):
    """An unreachable server is retried after 1, 2 and 4 s (not three times within
    0.3 s); the waits are capped."""
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/f.bin"
    with pytest.raises(DownloadError, match=re.escape(url)):
        download_file(url, tmp_path / "f.bin", retries=3, timeout=2, progress=False)
    assert retry_waits == [1.0, 2.0, 4.0]
    assert "retrying in 4 s (retry 3 of 3)" in caplog.text
    assert download.backoff_seconds(10) == download.BACKOFF_MAX_S == 30.0


def test_broken_connection_waits_before_resuming(server, tmp_path, retry_waits):
    server.files["/f.bin"] = b"x" * 10000
    server.cut_after["/f.bin"] = 100
    download_file(f"{server.url}/f.bin", tmp_path / "f.bin", retries=2, progress=False)
    assert retry_waits == [1.0]
