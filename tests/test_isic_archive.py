"""The ISIC Archive client (data_tools.isic_archive) and ARL's extra-image command,
against a fake archive API on 127.0.0.1 that the tests start and stop themselves."""

from __future__ import annotations

import csv
import http.server
import io
import json
import threading
import urllib.parse

import numpy as np
import pytest
from PIL import Image

from data_tools import isic_archive
from data_tools.download import DownloadError
from reproduce import arl_extra_images

SERVER_LIFETIME_S = 60.0


def _jpeg(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (8, 10, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


class FakeArchive:
    """``/api/v2/images/search/?query=Q`` pages of ``page_size`` results; ``/files/<id>.jpg``."""

    def __init__(self, images: dict[str, list[str]], page_size: int = 2):
        self.images, self.page_size = images, page_size
        self.files = {f"/files/{i}.jpg": _jpeg(n) for n, i in enumerate(sorted(sum(images.values(), [])))}
        self.requests: list[str] = []
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.api = f"{self.url}/api/v2"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._watchdog = threading.Timer(SERVER_LIFETIME_S, self.httpd.shutdown)

    def __enter__(self):
        self._thread.start()
        self._watchdog.start()
        return self

    def __exit__(self, *exc):
        self._watchdog.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def _page(self, query: str, offset: int) -> dict:
        ids = self.images.get(query, [])
        chunk = ids[offset : offset + self.page_size]
        more = offset + self.page_size < len(ids)
        following = urllib.parse.urlencode({"query": query, "offset": offset + self.page_size})
        return {
            "count": len(ids),
            "next": f"{self.api}/images/search/?{following}" if more else None,
            "results": [{"isic_id": i, "files": {"full": {"url": f"{self.url}/files/{i}.jpg"}}} for i in chunk],
        }

    def _handler(self):
        archive = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 5

            def do_GET(self):
                archive.requests.append(self.path)
                parsed = urllib.parse.urlparse(self.path)
                if parsed.path == "/api/v2/images/search/":
                    params = urllib.parse.parse_qs(parsed.query)
                    body = json.dumps(archive._page(params["query"][0], int(params.get("offset", ["0"])[0])))
                    self._send(body.encode(), "application/json")
                elif parsed.path in archive.files:
                    self._send(archive.files[parsed.path], "image/jpeg")
                else:
                    self.send_error(404)

            def _send(self, body: bytes, kind: str):
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        return Handler


def _ids(start: int, count: int) -> list[str]:
    return [f"ISIC_{n:07d}" for n in range(start, start + count)]


def test_search_pages_through_every_result():
    with FakeArchive({"q": _ids(1, 5)}, page_size=2) as archive:
        found = dict(isic_archive.search_images("q", api_url=archive.api))
    assert sorted(found) == _ids(1, 5)
    assert len([r for r in archive.requests if "/images/search/" in r]) == 3  # pages of 2, 2, 1


def test_sample_is_seeded_exclusive_and_checked():
    candidates = {"a": {i: "u" for i in _ids(1, 10)}, "b": {i: "u" for i in _ids(20, 4)}}
    first = isic_archive.select_sample(candidates, {"a": 3, "b": 2}, exclude={"ISIC_0000001"}, seed=5)
    again = isic_archive.select_sample(candidates, {"a": 3, "b": 2}, exclude={"ISIC_0000001"}, seed=5)
    other = isic_archive.select_sample(candidates, {"a": 3, "b": 2}, exclude={"ISIC_0000001"}, seed=6)
    assert first == again and first != other
    assert "ISIC_0000001" not in first["a"] and [len(v) for v in first.values()] == [3, 2]
    with pytest.raises(ValueError, match="class 'b': 5 images asked for, 4 found"):
        isic_archive.select_sample(candidates, {"b": 5})
    with pytest.raises(ValueError, match="found as 'a' and as 'b'"):
        isic_archive.select_sample({"a": {"ISIC_0000001": "u"}, "b": {"ISIC_0000001": "u"}}, {"a": 1})


def test_an_html_page_is_not_taken_for_an_image(tmp_path):
    with FakeArchive({"q": _ids(1, 1)}) as archive:
        archive.files["/files/ISIC_0000001.jpg"] = b"<html><body>Service unavailable</body></html>"
        with pytest.raises(DownloadError, match="not an image|an HTML page"):
            isic_archive.download_images({"ISIC_0000001": f"{archive.url}/files/ISIC_0000001.jpg"}, tmp_path)
    assert not (tmp_path / "ISIC_0000001.jpg").exists()


def test_a_page_that_is_not_a_search_answer_is_a_clear_error():
    with FakeArchive({}) as archive:
        archive.files["/api/v2/images/search/"] = b"x"
        with pytest.raises(DownloadError, match="search"):
            list(isic_archive.search_images("missing", api_url=f"{archive.url}/files"))


def test_arl_extra_images_selects_downloads_and_reuses_its_selection(tmp_path, monkeypatch):
    counts = {"melanoma": 3, "nevus": 2, "seborrheic_keratosis": 1}
    monkeypatch.setattr(arl_extra_images, "ARL_EXTRA_IMAGES", counts)
    isic2017 = tmp_path / "isic2017" / "ISIC-2017_Training_Data"
    isic2017.mkdir(parents=True)
    (isic2017 / "ISIC_0000002.jpg").write_bytes(_jpeg(0))  # a challenge image found by the search
    searches = arl_extra_images.SEARCHES
    images = {
        searches["melanoma"]: _ids(1, 6),
        searches["nevus"]: _ids(10, 3),
        searches["seborrheic_keratosis"]: _ids(20, 2),
    }
    dest = tmp_path / "extra"
    argv = ["--isic2017", str(tmp_path / "isic2017"), "--dest", str(dest), "--seed", "1"]
    with FakeArchive(images) as archive:
        assert arl_extra_images.main([*argv, "--api-url", archive.api]) == 0
        first = json.loads((dest / "selection.json").read_text())
        assert "ISIC_0000002" not in first["images"]["melanoma"]
        rows = list(csv.DictReader((dest / "extra_images.csv").open()))
        assert len(rows) == 6 and all((dest / row["path"]).is_file() for row in rows)
        labels = {row["image_id"]: (row["melanoma"], row["seborrheic_keratosis"]) for row in rows}
        assert {labels[i] for i in first["images"]["seborrheic_keratosis"]} == {("0", "1")}
        # A second run reuses the selection and downloads nothing again.
        searched = len(archive.requests)
        assert arl_extra_images.main([*argv, "--api-url", archive.api]) == 0
        assert len(archive.requests) == searched
        # Other settings are refused instead of silently mixing two samples.
        with pytest.raises(SystemExit, match="other seed"):
            arl_extra_images.main([*argv[:-1], "2", "--api-url", archive.api])
    # The list reads back with the ARL tables' reader, and no challenge image is in it.
    records = arl_extra_images.read_extra_images(dest / "extra_images.csv", {"ISIC_0000002"})
    assert len(records) == 6
