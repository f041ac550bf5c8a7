"""Issue 24 for files and servers: a full disk, SavedModels written, loaded and fed
badly, a dangling link in a submission, SLIC on an empty image, a Labelme label drawn
as background, a server trickling its response headers. One test per class of fault,
each failing on the code before the fix: the fault ends in one sentence naming the
file (or the batch element), and nothing half-written is left.
"""

from __future__ import annotations

import errno
import io
import os
import socket
import threading
import time

import numpy as np
import pytest
from PIL import Image

from data_tools import atomic

# --------------------------------------------------------------------------- a full disk


def _disk_fills_at_fsync(monkeypatch) -> None:
    """The disk fills when the content is flushed (as delayed allocation reports it)."""

    def fsync(descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)


def test_a_full_disk_is_one_line_naming_the_file_and_the_space_and_keeps_the_previous_file(tmp_path, monkeypatch):
    from tests.test_evaluate import _csv
    from zoo import evaluate as zoo_evaluate

    target = tmp_path / "model.tflite"
    target.write_bytes(b"previous")
    with monkeypatch.context() as patch:
        _disk_fills_at_fsync(patch)
        with pytest.raises(OSError) as caught:
            atomic.atomic_write_bytes(target, b"x" * 3_000_000)
    message = str(caught.value)
    assert "\n" not in message and str(target) in message and "3.0 MB" in message and "free" in message
    assert caught.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"previous" and os.listdir(tmp_path) == ["model.tflite"]

    ids = [f"ISIC_00000{i:02d}" for i in range(6)]
    truth = _csv(
        tmp_path / "truth.csv",
        [[i, n % 2, n // 3] for n, i in enumerate(ids)],
        ["image_id", "melanoma", "seborrheic_keratosis"],
    )
    scores = _csv(
        tmp_path / "p" / "scores.csv",
        [[i, 0.3 + 0.1 * (n % 2), 0.5] for n, i in enumerate(ids)],
        ["image_id", "melanoma", "seborrheic_keratosis"],
    )
    out = tmp_path / "scores"
    with monkeypatch.context() as patch:
        _disk_fills_at_fsync(patch)
        errors = io.StringIO()
        patch.setattr("sys.stderr", errors)
        assert zoo_evaluate.main(["--task", "isic2017-part3", str(truth), str(scores), "--out", str(out)]) == 1
    line = errors.getvalue().strip()
    assert "\n" not in line and str(out / "per_image.csv") in line and "no space left" in line, line
    assert not any(out.iterdir()), "no empty per_image.csv, no temporary file"


# --------------------------------------------------------------------------- SavedModels


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    from data_tools.preprocess import InputSpec
    from tests.test_export import _one_output_model
    from zoo.export import export_saved_model

    path = tmp_path_factory.mktemp("export") / "unet" / "1"
    export_saved_model(_one_output_model(), path, input_spec=InputSpec((16, 16)), model_name="unet")
    return path


def _png(shape=(9, 11, 3)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full(shape, 90, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_serving_signatures_refuse_an_empty_batch_and_name_the_bad_encoded_image(saved_model):
    import tensorflow as tf

    signatures = tf.saved_model.load(str(saved_model)).signatures
    cases = [
        ("serving_default", {"images": tf.zeros((0, 16, 16, 3), tf.uint8)}, r"images: the batch holds no image"),
        ("serving_bytes", {"encoded": tf.constant([], tf.string)}, r"encoded: the batch holds no image"),
        (
            "serving_bytes",
            {"encoded": tf.constant([_png(), b"", _png()])},
            r"encoded: image 1 of the batch \(counted from 0\) is empty",
        ),
        (
            "serving_bytes",
            {"encoded": tf.constant([_png(), _png(), b"GIF? no: plain text"])},
            r"encoded: image 2 of the batch \(counted from 0\) is not a JPEG, PNG, GIF or BMP file",
        ),
    ]
    for name, feeds, message in cases:
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            signatures[name](**feeds)
    assert signatures["serving_bytes"](encoded=tf.constant([_png(), _png((5, 7, 3))]))["probabilities"].shape[0] == 2


class _Full(OSError):
    pass


def test_a_saved_model_is_written_whole_or_not_at_all(tmp_path, monkeypatch, saved_model):
    from data_tools.preprocess import InputSpec
    from tests.test_export import _one_output_model
    from zoo import export

    def write_json_then_fail(path, text):
        raise _Full(errno.ENOSPC, "No space left on device")

    model, spec = _one_output_model(), InputSpec((16, 16))
    monkeypatch.setattr(export, "_write_json", write_json_then_fail)
    with pytest.raises(_Full):
        export.export_saved_model(model, tmp_path / "new" / "1", input_spec=spec)
    assert not (tmp_path / "new" / "1").exists() and os.listdir(tmp_path / "new") == []

    previous = {path.relative_to(saved_model): path.read_bytes() for path in saved_model.rglob("*") if path.is_file()}
    with pytest.raises(_Full):  # over an export: the previous one stays whole
        export.export_saved_model(model, saved_model, input_spec=spec)
    assert {
        path.relative_to(saved_model): path.read_bytes() for path in saved_model.rglob("*") if path.is_file()
    } == previous
    monkeypatch.undo()

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds files that are not a SavedModel"):
        export.export_saved_model(model, other, input_spec=spec)
    assert os.listdir(other) == ["notes.txt"]


def test_saved_model_load_errors_are_one_sentence(tmp_path, saved_model):
    import shutil

    from zoo.export import load_saved_model
    from zoo.predict import load_predictor
    from zoo.serving import load_model

    cut = tmp_path / "cut"
    shutil.copytree(saved_model, cut)
    data = (cut / "saved_model.pb").read_bytes()
    (cut / "saved_model.pb").write_bytes(data[: len(data) // 3])
    cases = [
        (lambda: load_saved_model(cut, "unet"), [str(cut), "cut short or corrupt"]),
        (
            lambda: load_predictor("attention_unet", saved_model=saved_model),
            [str(saved_model), "'unet'", "'attention_unet'"],
        ),
        (lambda: load_model("unet", weights=saved_model, small=True), [str(saved_model), "SavedModel folder"]),
    ]
    for load, parts in cases:
        with pytest.raises(ValueError) as caught:
            load()
        message = str(caught.value)
        assert "\n" not in message and all(part in message for part in parts), message


# --------------------------------------------------------------------------- small ones


def test_small_faults_are_one_sentence(tmp_path):
    from data_tools.folders import read_labelme
    from zoo import evaluate as zoo_evaluate
    from zoo.sanet.superpixels import slic_superpixels

    # a dangling symbolic link in a submission folder
    truth, predictions = tmp_path / "truth", tmp_path / "predictions"
    truth.mkdir(), predictions.mkdir()
    mask = np.zeros((8, 8), np.uint8)
    mask[2:6, 2:6] = 255
    for index in range(2):
        Image.fromarray(mask).save(truth / f"ISIC_000000{index}_segmentation.png")
    Image.fromarray(mask).save(predictions / "ISIC_0000000_segmentation.png")
    (predictions / "ISIC_0000001_segmentation.png").symlink_to(tmp_path / "gone.png")
    with pytest.raises(ValueError) as caught:
        zoo_evaluate.evaluate("isic2018-task1", truth, predictions)
    assert "ISIC_0000001_segmentation.png: a symbolic link to" in str(caught.value)
    assert "gone.png, which does not exist" in str(caught.value)

    # SLIC on an image without pixels
    with pytest.raises(ValueError, match=r"^slic_superpixels: the image is 0x0 pixels"):
        slic_superpixels(np.zeros((0, 0, 3), np.uint8))

    # a Labelme label mapped to 0: its shapes would vanish into the background
    with pytest.raises(ValueError, match=r"maps 'lesion' to 0, the background"):
        read_labelme(tmp_path, {"lesion": 0, "ruler": 1})


# --------------------------------------------------------------------------- headers trickled


class _TricklingHeaders:
    """A 127.0.0.1 server answering each request with its status line and headers one
    byte every ``interval`` seconds (and never a body), until the client hangs up."""

    def __init__(self, interval: float):
        self.interval, self.listener = interval, socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/file.zip"
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self.listener.settimeout(0.1)
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection):
        with connection:
            connection.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\n" + b"X-Slow: " + b"z" * 10_000:
                if self.stop.is_set():
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return
                time.sleep(self.interval)

    def close(self):
        self.stop.set()
        self.listener.close()


def test_a_server_trickling_its_headers_is_cut_off_at_the_timeout(tmp_path, monkeypatch):
    from data_tools import download

    monkeypatch.setattr(download, "_sleep", lambda seconds: None)
    server = _TricklingHeaders(interval=0.02)
    try:
        started = time.monotonic()
        with pytest.raises(download.DownloadError, match=r"no response \(connection, status and headers\) within"):
            download.download_file(server.url, tmp_path / "file.zip", retries=0, timeout=0.5, progress=False)
        assert time.monotonic() - started < 3.0
    finally:
        server.close()
    assert not (tmp_path / "file.zip").exists()
