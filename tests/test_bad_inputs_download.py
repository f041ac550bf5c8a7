"""No silently wrong data from the downloader: every file is verified before it is
marked complete (zips with ``zipfile.testzip``, CSVs by their first row, HTML pages
refused), leftovers are verified again, a trickling server times out, errors go to
stderr, and ``python -m data_tools.download`` starts without TensorFlow.

Each case ends in a named :class:`DownloadError` (URL and problem) with nothing marked
complete, or in correct data (what the readers then read). The server is a
``127.0.0.1`` one that each test starts and stops (tests.test_download).
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from data_tools import download, layouts
from data_tools.download import MARKER_DIR, DownloadError, download_dataset, download_file, main
from tests.test_download import LocalServer

CSV_2017 = layouts.ISIC2017_LAYOUT["train"]["part3"]
CSV_2016 = layouts.ISIC2016_LAYOUT["test"]["part3"]
MASKS_2018 = layouts.ISIC2018_LAYOUT["train"]["task1"]
GOOD_2017 = b"image_id,melanoma,seborrheic_keratosis\nISIC_0000000,1.0,0.0\n"
HTML = b"<!DOCTYPE html>\n<html><body><h1>Service unavailable</h1></body></html>\n"


@pytest.fixture(autouse=True)
def retry_waits(monkeypatch) -> list[float]:
    """The downloader's waits between retries, recorded instead of slept."""
    waits: list[float] = []
    monkeypatch.setattr(download, "_sleep", waits.append)
    return waits


@pytest.fixture
def server():
    with LocalServer() as running:
        yield running


def _get_2017_csv(server: LocalServer, dest: Path, **kwargs) -> Path:
    return download_dataset(
        "isic2017", dest, splits=["train"], parts=["part3"], base_url=server.url, progress=False, **kwargs
    )


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _assert_nothing_complete(dest: Path, target: str) -> None:
    assert not (dest / target).exists()
    assert not list(dest.rglob("*.json")) and not list(dest.rglob("*.part"))


@pytest.mark.parametrize(
    "body, content_type, message",
    [
        (HTML, "text/html; charset=utf-8", r"an HTML page \(Content-Type text/html\)"),
        (HTML, "text/csv", r"an HTML page, not the file"),
        (
            b"foo,bar\n1,2\n",
            "text/csv",
            r"not the expected CSV: first row 'foo,bar'; expected a header "
            r"with image_id,melanoma,seborrheic_keratosis",
        ),
        (b"\xff\xfe\x00junk", "text/csv", r"not a UTF-8 CSV"),
        (b"", "text/csv", r"an empty file"),
    ],
    ids=["HTML by Content-Type", "HTML body", "wrong header", "not UTF-8", "empty"],
)
def test_csv_that_is_not_the_csv_is_a_named_error_and_never_marked(server, tmp_path, body, content_type, message):
    """Named error; nothing marked complete, so a rerun fetches it again (correct data)."""
    server.files[f"/2017/{CSV_2017}"] = body
    server.content_types[f"/2017/{CSV_2017}"] = content_type
    url = f"{server.url}/2017/{CSV_2017}"
    with pytest.raises(DownloadError, match=rf"^{re.escape(url)}: {message}"):
        _get_2017_csv(server, tmp_path)
    _assert_nothing_complete(tmp_path, CSV_2017)
    server.files[f"/2017/{CSV_2017}"] = GOOD_2017
    server.content_types[f"/2017/{CSV_2017}"] = "text/csv"
    _get_2017_csv(server, tmp_path)
    assert (tmp_path / CSV_2017).read_bytes() == GOOD_2017


def test_2016_csv_first_row_is_checked(server, tmp_path):
    """Named error for a 2016 CSV with a header it does not have; correct data otherwise."""
    path = f"/2016/{CSV_2016}"
    server.files[path] = b"image_id,melanoma\nISIC_0000000,0.0\n"
    kwargs = dict(splits=["test"], parts=["part3"], base_url=server.url, progress=False)
    with pytest.raises(
        DownloadError,
        match=r"not the expected CSV: first row 'image_id,melanoma'; expected "
        r"ISIC_<7 digits>,<label> \(no header\)",
    ):
        download_dataset("isic2016", tmp_path, **kwargs)
    server.files[path] = b"ISIC_0000000,0.0\nISIC_0000001,1.0\n"
    download_dataset("isic2016", tmp_path, **kwargs)
    assert (tmp_path / CSV_2016).read_bytes() == server.files[path]


def test_leftover_partial_csv_with_other_content_is_fetched_again(server, tmp_path):
    """Correct data: a .part of another file, resumed, fails the check and is fetched from zero."""
    server.files[f"/2017/{CSV_2017}"] = GOOD_2017
    (tmp_path / f"{CSV_2017}.part").write_bytes(b"<html>xx")  # 8 bytes: resumed from byte 8
    _get_2017_csv(server, tmp_path)
    assert (tmp_path / CSV_2017).read_bytes() == GOOD_2017
    assert server.requests_for(f"/2017/{CSV_2017}") == [("bytes=8-", len(GOOD_2017) - 8), (None, len(GOOD_2017))]
    assert len(list((tmp_path / MARKER_DIR).glob("*.json"))) == 1


def test_leftover_csv_without_marker_is_verified_again(server, tmp_path):
    """Correct data: an HTML page left where the CSV goes (an old run) is replaced."""
    server.files[f"/2017/{CSV_2017}"] = GOOD_2017
    (tmp_path / CSV_2017).write_bytes(HTML)
    _get_2017_csv(server, tmp_path)
    assert (tmp_path / CSV_2017).read_bytes() == GOOD_2017
    assert len(server.requests_for(f"/2017/{CSV_2017}")) == 1


def test_zip_failing_its_crc_is_refused_before_extraction(server, tmp_path):
    """Named error (testzip names the member); nothing extracted or marked."""
    body = bytearray(_zip({f"{MASKS_2018}/ISIC_0000000_segmentation.png": b"x" * 400}))
    body[body.index(b"x" * 400) + 100] = ord("y")  # one flipped byte: structure intact, CRC wrong
    server.files[f"/2018/{MASKS_2018}.zip"] = bytes(body)
    with pytest.raises(
        DownloadError,
        match=r"corrupt zip archive: member '.*ISIC_0000000_segmentation\.png' "
        r"fails its CRC check",
    ):
        download_dataset("isic2018", tmp_path, splits=["train"], parts=["task1"], base_url=server.url, progress=False)
    _assert_nothing_complete(tmp_path, MASKS_2018)
    assert not list(tmp_path.rglob("*.zip"))


def test_leftover_partial_zip_with_other_content_is_fetched_again(server, tmp_path):
    """Correct data: resuming a .part of other bytes makes a bad zip; it is fetched from zero."""
    good = _zip({f"{MASKS_2018}/ISIC_0000000_segmentation.png": b"mask"})
    server.files[f"/2018/{MASKS_2018}.zip"] = good
    (tmp_path / MARKER_DIR).mkdir()
    (tmp_path / MARKER_DIR / f"{MASKS_2018}.zip.part").write_bytes(b"Z" * 50)
    download_dataset("isic2018", tmp_path, splits=["train"], parts=["task1"], base_url=server.url, progress=False)
    assert (tmp_path / MASKS_2018 / "ISIC_0000000_segmentation.png").read_bytes() == b"mask"
    assert [r for r, _ in server.requests_for(f"/2018/{MASKS_2018}.zip")] == ["bytes=50-", None]


def test_leftover_corrupt_zip_is_fetched_again(server, tmp_path):
    """Correct data: a corrupt zip left by an old run (downloaded, not extracted) is replaced."""
    good = _zip({f"{MASKS_2018}/ISIC_0000000_segmentation.png": b"mask"})
    server.files[f"/2018/{MASKS_2018}.zip"] = good
    (tmp_path / MARKER_DIR).mkdir()
    (tmp_path / MARKER_DIR / f"{MASKS_2018}.zip").write_bytes(good[:-30])
    download_dataset("isic2018", tmp_path, splits=["train"], parts=["task1"], base_url=server.url, progress=False)
    assert (tmp_path / MASKS_2018 / "ISIC_0000000_segmentation.png").read_bytes() == b"mask"
    assert len(server.requests_for(f"/2018/{MASKS_2018}.zip")) == 1


def test_html_served_for_a_zip_is_refused(server, tmp_path):
    """Named error: an HTML body behind a zip URL, whatever the Content-Type says."""
    server.files[f"/2018/{MASKS_2018}.zip"] = b"  \n<html><head><title>Error</title></head></html>"
    with pytest.raises(DownloadError, match=r"an HTML page, not the file"):
        download_dataset("isic2018", tmp_path, splits=["train"], parts=["task1"], base_url=server.url, progress=False)
    _assert_nothing_complete(tmp_path, MASKS_2018)


def test_trickling_server_times_out(server, tmp_path):
    """Named error within about two timeouts, though a byte arrives every 0.05 s."""
    server.files["/slow.bin"] = b"z" * 2000
    server.trickle["/slow.bin"] = 0.05
    url = f"{server.url}/slow.bin"
    started = time.monotonic()
    with pytest.raises(DownloadError, match=rf"^{re.escape(url)}: stalled: \d+ bytes in the last"):
        download_file(url, tmp_path / "slow.bin", retries=1, timeout=0.4, progress=False)
    assert time.monotonic() - started < 3.0
    assert len(server.requests_for("/slow.bin")) == 2  # the retry resumed and stalled too
    assert not (tmp_path / "slow.bin").exists()


def test_command_line_timeout_flag_and_errors_on_stderr(server, tmp_path, capsys):
    """Named error on stderr (``error: ...``), exit status 1, nothing on stdout."""
    server.files[f"/2017/{CSV_2017}"] = GOOD_2017 * 100
    server.trickle[f"/2017/{CSV_2017}"] = 0.05
    argv = [
        "isic2017",
        "--dest",
        str(tmp_path),
        "--splits",
        "train",
        "--parts",
        "part3",
        "--base-url",
        server.url,
        "--no-progress",
        "--retries",
        "0",
        "--timeout",
        "0.3",
    ]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert out == "" and re.match(rf"error: {re.escape(server.url)}/2017/.*: stalled", err)


def test_module_starts_without_tensorflow_or_a_runpy_warning():
    """``python -m data_tools.download`` imports neither TensorFlow nor itself twice."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-W", "error::RuntimeWarning", "-m", "data_tools.download", "--help"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--timeout" in result.stdout
    imported = [
        line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")
    ]
    assert "data_tools.layouts" in imported and "tensorflow" not in imported  # the module runs as __main__
    assert "RuntimeWarning" not in result.stderr
