"""Generic readers (data_tools.folders): image + mask folders, DICOM, Labelme JSON."""

from __future__ import annotations

import base64
import io
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_tools.folders import read_labelme, read_mask_folder
from data_tools.imageio import load_image, load_mask
from data_tools.records import BadInputPolicy, DatasetError

H, W = 8, 10
LABELS = {"kidney": 1, "hydronephrosis": 2}


def rgb(seed: int, size=(H, W)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def binary_mask(values=(0, 255), size=(H, W)) -> np.ndarray:
    mask = np.full(size, values[0], np.uint8)
    mask[1:4, 2:6] = values[1]
    return mask


@pytest.fixture
def mask_folder(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    for i, name in enumerate(("b.png", "a.jpg", "c.bmp")):
        save(images / name, rgb(i))
        save(masks / f"{Path(name).stem}_mask{'.bmp' if name == 'c.bmp' else '.png'}", binary_mask())
    (images / "notes.txt").write_text("not an image")
    save(images / ".hidden.png", rgb(9))
    return images, masks


# ----------------------------------------------------------------------------- mask folders


def test_pairs_by_stem(mask_folder):
    images, masks = mask_folder
    records = read_mask_folder(images, masks, mask_suffix="_mask")
    assert [(r.image_id, r.image_path.name, r.mask_paths["mask"].name) for r in records[:2]] == [
        ("a", "a.jpg", "a_mask.png"),
        ("b", "b.png", "b_mask.png"),
    ]
    # tf.io.decode_image reads no one-channel BMP: the mask is read from a PNG copy
    assert (records[2].image_id, records[2].image_path.name) == ("c", "c.bmp")
    converted = records[2].mask_paths["mask"]
    assert converted.parent == images / ".converted/masks" and converted.name.startswith("c_mask-")
    np.testing.assert_array_equal(load_mask(converted), binary_mask())


def test_class_index_masks(tmp_path):
    save(tmp_path / "i/x.png", rgb(0))
    save(tmp_path / "m/x.png", binary_mask(values=(0, 2)))
    records = read_mask_folder(tmp_path / "i", tmp_path / "m", classes=3, mask_name="classes")
    np.testing.assert_array_equal(load_mask(records[0].mask_paths["classes"], binary=False), binary_mask((0, 2)))
    with pytest.raises(DatasetError, match=r"m/x\.png: mask values must be class indices 0\.\.1; found 2"):
        read_mask_folder(tmp_path / "i", tmp_path / "m", classes=("background", "kidney"))
    with pytest.raises(DatasetError, match=r"m/x\.png: mask values must be \{0, 255\}; found 2"):
        read_mask_folder(tmp_path / "i", tmp_path / "m")


def test_tiff_converted_once_to_png(tmp_path):
    pixels = rgb(3)
    save(tmp_path / "i/x.tif", pixels)
    save(tmp_path / "m/x.tiff", binary_mask())
    record = read_mask_folder(tmp_path / "i", tmp_path / "m", cache_dir=tmp_path / "cache")[0]
    assert record.image_path.parent == tmp_path / "cache/images" and record.image_path.suffix == ".png"
    assert record.mask_paths["mask"].parent == tmp_path / "cache/masks"
    np.testing.assert_array_equal(load_image(record.image_path), pixels)
    np.testing.assert_array_equal(load_mask(record.mask_paths["mask"]), binary_mask())
    written = record.image_path.stat().st_mtime_ns
    read_mask_folder(tmp_path / "i", tmp_path / "m", cache_dir=tmp_path / "cache")
    assert record.image_path.stat().st_mtime_ns == written


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda i, m: (m / "b_mask.png").unlink(), r"images/b\.png: no mask b_mask\.png"),
        (lambda i, m: (i / "b.png").unlink(), r"masks/b_mask\.png: mask without an image b\.\*"),
        (lambda i, m: save(i / "b.jpg", rgb(0)), r"images/b\.png: two images for one id: b\.jpg and b\.png; keep one"),
        (lambda i, m: save(m / "b_mask.png", binary_mask(size=(H, W + 1))), r"b_mask\.png: mask size 8x11 differs"),
    ],
    ids=["image without mask", "mask without image", "duplicate stem", "mask size"],
)
def test_mask_folder_bad_input(mask_folder, caplog, spoil, message):
    images, masks = mask_folder
    spoil(images, masks)
    with pytest.raises(DatasetError, match=message):
        read_mask_folder(images, masks, mask_suffix="_mask")
    if "for one id" in message:
        return  # an ambiguous pairing is never skipped
    policy = BadInputPolicy(skip_bad=True)
    with caplog.at_level(logging.WARNING, logger="data_tools"):
        records = read_mask_folder(images, masks, mask_suffix="_mask", skip_bad=policy)
    assert [r.image_id for r in records] == ["a", "c"]
    assert len(policy.skipped) == 1 and len(caplog.records) == 1


def test_missing_and_empty_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    save(tmp_path / "i/x.png", rgb(0))
    with pytest.raises(DatasetError, match=r"nowhere: missing folder: expected a folder of masks"):
        read_mask_folder(tmp_path / "i", tmp_path / "nowhere")
    with pytest.raises(DatasetError, match=r"empty: empty folder: no images \(\.png"):
        read_mask_folder(tmp_path / "empty", tmp_path / "i")


# ----------------------------------------------------------------------------- DICOM


def write_dicom(path: Path, pixels: np.ndarray, photometric: str, bits: int = 8, **elements) -> Path:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.SamplesPerPixel = 3 if pixels.ndim == 3 else 1
    if pixels.ndim == 3:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 8 if bits == 8 else 16
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits - 1, 0
    for name, value in elements.items():
        setattr(ds, name, value)
    ds.PixelData = pixels.astype(np.uint8 if bits == 8 else np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_dicom_rgb_and_grey(tmp_path):
    pixels = rgb(1)
    np.testing.assert_array_equal(load_image(write_dicom(tmp_path / "c.dcm", pixels, "RGB")), pixels)
    grey12 = np.random.default_rng(2).integers(0, 4096, (H, W))
    expected = np.rint(grey12 * 255 / 4095).astype(np.uint8)
    image = load_image(write_dicom(tmp_path / "g.dcm", grey12, "MONOCHROME2", bits=12))
    np.testing.assert_array_equal(image, np.stack([expected] * 3, -1))
    grey8 = grey12.astype(np.uint8)
    inverted = load_image(write_dicom(tmp_path / "m1.dcm", grey8, "MONOCHROME1"))
    np.testing.assert_array_equal(inverted[..., 0], 255 - grey8)


def test_dicom_palette_colour_becomes_rgb(tmp_path):
    index = np.random.default_rng(3).integers(0, 256, (H, W)).astype(np.uint8)
    entries = np.arange(256)
    lut = {"Red": entries, "Green": 255 - entries, "Blue": (entries * 7) % 256}
    elements = {}
    for colour, values in lut.items():
        elements[f"{colour}PaletteColorLookupTableDescriptor"] = [256, 0, 16]
        elements[f"{colour}PaletteColorLookupTableData"] = (values * 257).astype("<u2").tobytes()
    path = write_dicom(tmp_path / "p.dcm", index, "PALETTE COLOR", **elements)
    expected = np.stack([lut[c][index] for c in ("Red", "Green", "Blue")], -1)
    np.testing.assert_array_equal(load_image(path), expected)


def test_dicom_in_mask_folder_and_without_pydicom(tmp_path, monkeypatch):
    pixels = rgb(4)
    write_dicom(tmp_path / "i/us1.dcm", pixels, "RGB")
    save(tmp_path / "m/us1.png", binary_mask())
    record = read_mask_folder(tmp_path / "i", tmp_path / "m")[0]
    assert record.image_path.parent == tmp_path / "i/.converted/images"
    np.testing.assert_array_equal(load_image(record.image_path), pixels)
    monkeypatch.setitem(sys.modules, "pydicom", None)
    with pytest.raises(DatasetError, match=r"us1\.dcm: reading DICOM needs pydicom"):
        load_image(tmp_path / "i/us1.dcm")


# ----------------------------------------------------------------------------- Labelme


def labelme(folder: Path, name: str, shapes, size=(20, 24), image: np.ndarray | None = None, **fields) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    content = {"shapes": shapes, "imageHeight": size[0], "imageWidth": size[1], "imagePath": f"{name}.png"}
    if image is not None:
        save(folder / f"{name}.png", image)
    content.update(fields)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(content))
    return path


def shape(label, points, kind="polygon"):
    return {"label": label, "points": points, "shape_type": kind}


SHAPES = [
    shape("kidney", [[2, 3], [10, 8]], "rectangle"),
    shape("hydronephrosis", [[4, 4], [7, 4], [7, 6], [4, 6]]),  # drawn over the rectangle
    shape("kidney", [[17, 13], [17, 17]], "circle"),  # centre (x 17, y 13), radius 4
]


def test_labelme_rasterised_in_file_order(tmp_path):
    labelme(tmp_path, "scan", SHAPES, image=rgb(5, (20, 24)))
    record = read_labelme(tmp_path, LABELS)[0]
    assert record.image_id == "scan" and record.image_path == tmp_path / "scan.png"
    assert record.mask_paths["classes"].parent.parent == tmp_path / ".masks"
    mask = load_mask(record.mask_paths["classes"], binary=False)
    expected = np.zeros((20, 24), np.uint8)
    expected[3:9, 2:11] = 1
    expected[4:7, 4:8] = 2
    left, circle = mask.copy(), mask.copy()  # the circle lies right of x = 12
    left[:, 12:] = 0
    circle[:, :12] = 0
    np.testing.assert_array_equal(left, expected)
    y, x = np.mgrid[:20, :24]
    distance = np.hypot(x - 17, y - 13)
    assert (circle[distance < 3] == 1).all() and (circle[distance > 5] == 0).all()


def test_labelme_embedded_image_and_windows_path(tmp_path):
    pixels = rgb(6, (20, 24))
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode()
    labelme(tmp_path / "ann", "emb", SHAPES[:1], imagePath="gone.png", imageData=data)
    save(tmp_path / "imgs/win.png", pixels)
    labelme(tmp_path / "ann", "win", SHAPES[:1], imagePath="..\\imgs\\win.png")
    embedded, windows = read_labelme(tmp_path / "ann", LABELS, cache_dir=tmp_path / "cache")
    assert embedded.image_path.parent.parent.parent == tmp_path / "cache"
    np.testing.assert_array_equal(load_image(embedded.image_path), pixels)
    assert windows.image_path.resolve() == (tmp_path / "imgs/win.png").resolve()


def test_labelme_masks_cached_per_label_map(tmp_path):
    labelme(tmp_path, "scan", SHAPES, image=rgb(5, (20, 24)))
    first = read_labelme(tmp_path, LABELS)[0].mask_paths["classes"]
    written = first.stat().st_mtime_ns
    assert read_labelme(tmp_path, LABELS)[0].mask_paths["classes"].stat().st_mtime_ns == written
    other = read_labelme(tmp_path, {"kidney": 3, "hydronephrosis": 1})[0].mask_paths["classes"]
    assert other != first
    assert load_mask(other, binary=False)[3, 2] == 3


@pytest.mark.parametrize(
    "shapes, fields, message",
    [
        (
            [SHAPES[0], shape("cyst", [[1, 1], [2, 2]], "rectangle")],
            {},
            r"scan\.json: shape 2: unknown label 'cyst'; label_map has 'kidney': 1, 'hydronephrosis': 2",
        ),
        (
            [shape("kidney", [[1, 1], [5, 5]], "line")],
            {},
            r"scan\.json: shape 1 \('kidney'\): shape_type 'line' is not supported",
        ),
        (
            [SHAPES[0]],
            {"imageHeight": 21},
            r"scan\.json: imageHeight x imageWidth 21x24 differs from the image scan\.png's 20x24",
        ),
        (
            [SHAPES[0]],
            {"imagePath": "missing.png"},
            r"scan\.json: image 'missing\.png' not found beside the JSON and no imageData",
        ),
    ],
    ids=["unknown label", "unsupported shape", "size", "no image"],
)
def test_labelme_bad_input(tmp_path, shapes, fields, message):
    labelme(tmp_path, "scan", shapes, image=rgb(5, (20, 24)), **fields)
    labelme(tmp_path, "good", SHAPES, image=rgb(6, (20, 24)))
    with pytest.raises(DatasetError, match=message):
        read_labelme(tmp_path, LABELS)
    policy = BadInputPolicy(skip_bad=True)
    assert [r.image_id for r in read_labelme(tmp_path, LABELS, skip_bad=policy)] == ["good"]
    assert [e.path.name for e in policy.skipped] == ["scan.json"]


def test_labelme_folder_and_label_map_errors(tmp_path):
    with pytest.raises(DatasetError, match="missing folder: expected a folder of Labelme annotations"):
        read_labelme(tmp_path / "nowhere", LABELS)
    with pytest.raises(DatasetError, match=r"empty folder: no Labelme annotations \(\.json\)"):
        read_labelme(tmp_path, LABELS)
    with pytest.raises(ValueError, match=r"label_map values must be integers in 1\.\.255, got \{'kidney': 300\}"):
        read_labelme(tmp_path, {"kidney": 300})
    with pytest.raises(ValueError, match=r"maps 'kidney' to 0, the background"):  # issue 24: it would vanish
        read_labelme(tmp_path, {"kidney": 0, "stone": 2})
