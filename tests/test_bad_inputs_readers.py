"""No silently wrong data: what every reader does with bad or ambiguous input.

Each case ends in one of three outcomes, and says which: a named error
(:class:`DatasetError` naming the file and the problem), skipped-and-listed with
``skip_bad`` (``BadInputPolicy.skipped``), or correct data (checked pixel for pixel
or label for label). Every dataset is a few tiny files in ``tmp_path``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_tools import layouts
from data_tools.check import main as check_main
from data_tools.folders import read_labelme, read_mask_folder
from data_tools.isic import read_isic2016_part1, read_isic2016_part3, read_isic2017, read_isic2018
from data_tools.pipeline import segmentation_dataset
from data_tools.preprocess import InputSpec
from data_tools.records import BadInputPolicy, DatasetError, Record
from tests.test_readers import IDS, make_isic2016, make_isic2017, make_isic2018

H, W = 6, 8
DARK_RED, GREEN = (128, 0, 0), (0, 128, 0)


def voc_palette() -> list[int]:
    """The PASCAL VOC colour map: index 1 is dark red (128, 0, 0), 2 green, 255 cream."""
    palette = []
    for index in range(256):
        red = green = blue = 0
        for bit in range(8):
            red |= ((index >> 0) & 1) << (7 - bit)
            green |= ((index >> 1) & 1) << (7 - bit)
            blue |= ((index >> 2) & 1) << (7 - bit)
            index >>= 3
        palette += [red, green, blue]
    return palette


def save_palette_png(path: Path, indices: np.ndarray, palette: list[int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(indices.astype(np.uint8), "P")
    image.putpalette(palette)
    image.save(path)
    return path


def save_rgb(path: Path, seed: int = 0, size=(H, W)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def class_indices() -> np.ndarray:
    indices = np.zeros((H, W), np.uint8)
    indices[1:4, 1:4] = 1
    indices[3:6, 5:8] = 2
    return indices


def pipeline_targets(records, mask_name: str, mask_mode: str) -> np.ndarray:
    """The targets segmentation_dataset gives at the files' own size, first record."""
    dataset = segmentation_dataset(
        records,
        InputSpec((H, W)),
        mask_names=(mask_name,),
        mask_mode=mask_mode,
        batch_size=1,
        training=False,
        cache=False,
    )
    _, targets = next(iter(dataset))
    return targets.numpy()[0, ..., 0]


# ----------------------------------------------------------------------------- palette masks


def test_voc_palette_mask_reaches_the_pipeline_as_indices(tmp_path):
    """Correct data: indices 0/1/2 (colours black, dark red, green) give targets 0/1/2."""
    assert voc_palette()[3:9] == [*DARK_RED, *GREEN]
    save_rgb(tmp_path / "images/scan.png")
    save_palette_png(tmp_path / "masks/scan.png", class_indices(), voc_palette())
    records = read_mask_folder(
        tmp_path / "images", tmp_path / "masks", classes=3, mask_name="classes", cache_dir=tmp_path / "cache"
    )
    np.testing.assert_array_equal(pipeline_targets(records, "classes", "index"), class_indices())


def test_binary_palette_mask_keeps_its_foreground(tmp_path):
    """Correct data: a 0/255 palette mask whose index 255 is dark red keeps its lesion."""
    lesion = (class_indices() > 0).astype(np.uint8) * 255
    palette = [0, 0, 0] * 255 + list(DARK_RED)  # grey level of dark red: 38 < 128
    folders = layouts.ISIC2018_LAYOUT["train"]
    save_rgb(tmp_path / folders["images"] / "ISIC_0000000.jpg")
    save_palette_png(tmp_path / folders["task1"] / "ISIC_0000000_segmentation.png", lesion, palette)
    records = read_isic2018(tmp_path, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(pipeline_targets(records, "lesion", "binary"), lesion // 255)
    save_rgb(tmp_path / "images/a.png")
    save_palette_png(tmp_path / "masks/a.png", lesion, palette)
    records = read_mask_folder(tmp_path / "images", tmp_path / "masks", cache_dir=tmp_path / "cache2")
    np.testing.assert_array_equal(pipeline_targets(records, "mask", "binary"), lesion // 255)


def test_bmp_and_tiff_masks_reach_the_pipeline(tmp_path):
    """Correct data: tf.io.decode_image reads no one-channel BMP; the reader converts it."""
    (tmp_path / "masks").mkdir()
    for index, suffix in enumerate((".bmp", ".tif")):
        save_rgb(tmp_path / f"images/m{index}.png", seed=index)
        Image.fromarray(class_indices()).save(tmp_path / f"masks/m{index}{suffix}")
    records = read_mask_folder(tmp_path / "images", tmp_path / "masks", classes=3, cache_dir=tmp_path / "cache")
    for record in records:
        assert record.mask_paths["mask"].suffix == ".png"
        np.testing.assert_array_equal(pipeline_targets([record], "mask", "index"), class_indices())


def test_palette_bmp_image_is_converted_to_its_colours(tmp_path):
    """Correct data: tf.io.decode_image misreads palette BMPs; the reader converts them."""
    pixels = np.random.default_rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)
    (tmp_path / "images").mkdir()
    Image.fromarray(pixels).quantize(16).save(tmp_path / "images/a.bmp")
    expected = np.asarray(Image.open(tmp_path / "images/a.bmp").convert("RGB"))
    (tmp_path / "masks").mkdir()
    Image.fromarray(class_indices() * 0).save(tmp_path / "masks/a.png")
    record = read_mask_folder(tmp_path / "images", tmp_path / "masks", cache_dir=tmp_path / "cache")[0]
    assert record.image_path.parent == tmp_path / "cache/images" and record.image_path.suffix == ".png"
    dataset = segmentation_dataset(
        [record], InputSpec((H, W)), mask_names=("mask",), batch_size=1, training=False, cache=False
    )
    image, _ = next(iter(dataset))
    np.testing.assert_allclose(image.numpy()[0] * 255, expected, atol=1e-3)


def test_pipeline_refuses_a_palette_mask_it_would_misread(tmp_path):
    """Named error: a hand-made record pointing at a palette PNG (colours, not indices)."""
    image = save_rgb(tmp_path / "a.png")
    mask = save_palette_png(tmp_path / "a_mask.png", class_indices(), voc_palette())
    with pytest.raises(DatasetError, match=r"a_mask\.png: .*palette PNG"):
        pipeline_targets([Record("a", image, {"classes": mask})], "classes", "index")


# ----------------------------------------------------------------------------- two files for one id

_2016_GT = layouts.ISIC2016_LAYOUT["train"]["part1"]
_2017_IMAGES = layouts.ISIC2017_LAYOUT["train"]["images"]
_2018_GT2 = layouts.ISIC2018_LAYOUT["train"]["task2"]

CASE_TWINS = {
    "2016 mask": (
        make_isic2016,
        _2016_GT,
        "ISIC_0000001_Segmentation.png",
        "ISIC_0000001_segmentation.png",
        lambda root: read_isic2016_part1(root, skip_bad=True),
        ["isic2016-part1"],
    ),
    "2017 image": (
        make_isic2017,
        _2017_IMAGES,
        "ISIC_0000001.jpg",
        "ISIC_0000001.JPG",
        lambda root: read_isic2017(root, parts=(), skip_bad=True),
        ["isic2017", "--parts"],
    ),
    "2018 attribute": (
        make_isic2018,
        _2018_GT2,
        "ISIC_0000001_attribute_streaks.png",
        "ISIC_0000001_Attribute_Streaks.png",
        lambda root: read_isic2018(root, tasks=(2,), skip_bad=True),
        ["isic2018", "--tasks", "2"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASE_TWINS))
def test_isic_file_names_differing_only_in_case_are_an_error_naming_both(tmp_path, capsys, case):
    """Named error, even with skip_bad (which file is meant?), and the check command exits 1."""
    make, folder, official, twin, read, command = CASE_TWINS[case]
    root = make(tmp_path)
    shutil.copy(root / folder / official, root / folder / twin)
    with pytest.raises(DatasetError, match="two files for ISIC_0000001") as error:
        read(root)
    assert official in str(error.value) and twin in str(error.value)
    assert check_main([command[0], str(root), *command[1:], "--skip-bad"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and official in err and twin in err


STRAYS = ["isic_0000005.jpg", "ISIC_000005.jpg", "ISIC_0000005 (1).jpg", "ISIC_0000005.jpeg", "ISIC_0000005.png"]


@pytest.mark.parametrize("stray", STRAYS)
def test_image_names_off_the_isic_pattern_are_named_not_dropped(tmp_path, stray):
    """Named error; skipped-and-listed with skip_bad (the official images are read)."""
    root = make_isic2017(tmp_path)
    shutil.copy(root / _2017_IMAGES / "ISIC_0000001.jpg", root / _2017_IMAGES / stray)
    with pytest.raises(DatasetError, match=re.escape(f"{stray}: not an official ISIC file name")):
        read_isic2017(root, parts=(1, 3))
    policy = BadInputPolicy(skip_bad=True)
    assert [r.image_id for r in read_isic2017(root, parts=(1, 3), skip_bad=policy)] == sorted(IDS)
    assert [e.path.name for e in policy.skipped] == [stray]


def test_mask_names_off_the_isic_pattern_are_named_and_official_extras_ignored(tmp_path):
    """Skipped-and-listed: a stray mask copy; correct data: LICENSE, metadata CSV, superpixels."""
    root = make_isic2018(tmp_path)
    gt1 = root / layouts.ISIC2018_LAYOUT["train"]["task1"]
    shutil.copy(gt1 / "ISIC_0000001_segmentation.png", gt1 / "ISIC_0000001_segmentation_old.png")
    (gt1 / "ATTRIBUTION.txt").write_text("ISIC\n")
    with pytest.raises(DatasetError, match=r"ISIC_0000001_segmentation_old\.png: not an official ISIC file name"):
        read_isic2018(root)
    policy = BadInputPolicy(skip_bad=True)
    assert len(read_isic2018(root, skip_bad=policy)) == 3 and len(policy.skipped) == 1
    assert len(read_isic2017(make_isic2017(tmp_path / "2017"), parts=(1, 3))) == 3  # superpixels, CSV


@pytest.mark.parametrize(
    "names",
    [("a.png", "A.png"), ("a.png", "a.JPG")],
    ids=["stems differ in case", "same stem"],
)
def test_mask_folder_two_images_for_one_id_are_an_error_naming_both(tmp_path, names):
    """Named error, even with skip_bad; the check command exits 1."""
    for name in names:
        save_rgb(tmp_path / "images" / name)
    (tmp_path / "masks").mkdir()
    Image.fromarray(class_indices() * 0).save(tmp_path / "masks/a.png")
    with pytest.raises(DatasetError, match="two images for one id") as error:
        read_mask_folder(tmp_path / "images", tmp_path / "masks", skip_bad=True)
    assert all(name in str(error.value) for name in names)
    assert check_main(["mask-folder", str(tmp_path / "images"), "--mask-dir", str(tmp_path / "masks")]) == 1


def test_mask_folder_masks_differing_in_case_or_without_the_suffix(tmp_path):
    """Named error for twins; skipped-and-listed for a mask without ``mask_suffix``."""
    save_rgb(tmp_path / "images/a.png")
    save_rgb(tmp_path / "images/b.png")
    (tmp_path / "masks").mkdir()
    for name in ("a_mask.png", "b_mask.png", "b_Mask.png"):
        Image.fromarray(class_indices() * 0).save(tmp_path / "masks" / name)
    with pytest.raises(DatasetError, match=r"two masks for one id: b_Mask\.png and b_mask\.png"):
        read_mask_folder(tmp_path / "images", tmp_path / "masks", mask_suffix="_mask")
    (tmp_path / "masks/b_mask.png").unlink()
    policy = BadInputPolicy(skip_bad=True)
    records = read_mask_folder(tmp_path / "images", tmp_path / "masks", mask_suffix="_mask", skip_bad=policy)
    assert [r.image_id for r in records] == ["a"]
    assert [(e.path.name, e.problem.split(";")[0]) for e in policy.skipped] == [
        ("b_Mask.png", "mask name does not end with mask_suffix '_mask'"),
        ("b.png", "no mask b_mask.png (or .bmp/.tif) in " + str(tmp_path / "masks")),
    ]


@pytest.mark.parametrize("twin", ["Scan.json", "scan.JSON"])
def test_labelme_annotations_differing_only_in_case_are_an_error_naming_both(tmp_path, twin):
    """Named error, even with skip_bad; an upper-case .JSON is read, not ignored."""
    save_rgb(tmp_path / "scan.png", size=(20, 24))
    content = {
        "shapes": [{"label": "kidney", "points": [[1, 1], [5, 5]], "shape_type": "rectangle"}],
        "imagePath": "scan.png",
    }
    (tmp_path / "scan.json").write_text(json.dumps(content))
    (tmp_path / twin).write_text(json.dumps(content))
    with pytest.raises(DatasetError, match=rf"two Labelme annotations for one id: .*{re.escape(twin)}"):
        read_labelme(tmp_path, {"kidney": 1}, skip_bad=True)
    (tmp_path / "scan.json").unlink()
    assert [r.image_id for r in read_labelme(tmp_path, {"kidney": 1})] == [Path(twin).stem]


# ----------------------------------------------------------------------------- Labelme shapes


def write_labelme(folder: Path, name: str, shapes, size=(20, 24)) -> Path:
    save_rgb(folder / f"{name}.png", size=size)
    content = {"shapes": shapes, "imageHeight": size[0], "imageWidth": size[1], "imagePath": f"{name}.png"}
    path = folder / f"{name}.json"
    path.write_text(json.dumps(content))  # NaN and Infinity as Python's json writes them
    return path


GOOD_SHAPE = {"label": "kidney", "points": [[2, 2], [8, 6]], "shape_type": "rectangle"}
BAD_SHAPES = {
    "NaN coordinate": (
        {"label": "kidney", "points": [[2, 2], [float("nan"), 6], [5, 9]]},
        r"shape 2 \('kidney'\): points must be finite numbers",
    ),
    "infinite coordinate": (
        {"label": "kidney", "points": [[2, 2], [float("inf"), 6]], "shape_type": "rectangle"},
        r"shape 2 \('kidney'\): points must be finite numbers",
    ),
    "non-numeric coordinate": (
        {"label": "kidney", "points": [[2, 2], ["8", "x"], [5, 9]]},
        r"shape 2 \('kidney'\): points must be \[x, y\] numbers, got \[\[2, 2\], \['8', 'x'\]",
    ),
    "huge coordinate": (
        {"label": "kidney", "points": [[2, 2], [1e12, 6]], "shape_type": "rectangle"},
        r"shape 2 \('kidney'\): points must be finite numbers",
    ),
    "wholly outside": (
        {"label": "kidney", "points": [[30, 2], [40, 9]], "shape_type": "rectangle"},
        r"shape 2 \('kidney'\): covers no pixel of the 20x24 image",
    ),
    "circle outside": (
        {"label": "kidney", "points": [[-20, -20], [-18, -20]], "shape_type": "circle"},
        r"shape 2 \('kidney'\): covers no pixel of the 20x24 image",
    ),
    "not an object": (["kidney", [[1, 1], [4, 4]]], r"shape 2: expected an object with 'label' and 'points'"),
    "label not text": (
        {"label": ["kidney"], "points": [[1, 1], [4, 4]], "shape_type": "rectangle"},
        r"shape 2: unknown label \['kidney'\]",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SHAPES))
def test_bad_labelme_shape_is_named_or_skipped_and_listed(tmp_path, case):
    """Named error (file, shape number, label); skipped-and-listed with skip_bad."""
    bad_shape, message = BAD_SHAPES[case]
    write_labelme(tmp_path, "bad", [GOOD_SHAPE, bad_shape])
    write_labelme(tmp_path, "good", [GOOD_SHAPE])
    with pytest.raises(DatasetError, match=rf"bad\.json: {message}"):
        read_labelme(tmp_path, {"kidney": 1})
    policy = BadInputPolicy(skip_bad=True)
    records = read_labelme(tmp_path, {"kidney": 1}, skip_bad=policy)
    assert [r.image_id for r in records] == ["good"]
    assert [e.path.name for e in policy.skipped] == ["bad.json"]


def test_labelme_shape_partly_outside_is_clipped(tmp_path):
    """Correct data: the part inside the image is drawn."""
    write_labelme(tmp_path, "edge", [{"label": "kidney", "points": [[-5, -5], [3, 2]], "shape_type": "rectangle"}])
    mask = np.asarray(Image.open(read_labelme(tmp_path, {"kidney": 1})[0].mask_paths["classes"]))
    expected = np.zeros((20, 24), np.uint8)
    expected[:3, :4] = 1
    np.testing.assert_array_equal(mask, expected)


# ----------------------------------------------------------------------------- CSVs

_CSV_2016 = layouts.ISIC2016_LAYOUT["train"]["part3"]
_CSV_2017 = layouts.ISIC2017_LAYOUT["train"]["part3"]
_ROWS_2016 = "ISIC_0000000,benign\r\nISIC_0000001,malignant\r\nISIC_0000002,benign\r\n"
_LABELS_2016 = [{"melanoma": 0.0}, {"melanoma": 1.0}, {"melanoma": 0.0}]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-be-bom"])
def test_csv_in_utf8_with_or_without_bom_or_utf16_is_read(tmp_path, encoding):
    """Correct data: the byte-order mark tells UTF-16 (either byte order) and UTF-8 apart."""
    root = make_isic2016(tmp_path)
    data = b"\xfe\xff" + _ROWS_2016.encode("utf-16-be") if encoding == "utf-16-be-bom" else _ROWS_2016.encode(encoding)
    (root / _CSV_2016).write_bytes(data)
    assert [r.labels for r in read_isic2016_part3(root)] == _LABELS_2016


def test_2017_header_after_a_bom_is_found(tmp_path):
    """Correct data: Excel's UTF-8 BOM before ``image_id``."""
    root = make_isic2017(tmp_path)
    text = (root / _CSV_2017).read_text()
    (root / _CSV_2017).write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert [r.labels["melanoma"] for r in read_isic2017(root, parts=(3,))] == [1.0, 0.0, 0.0]


@pytest.mark.parametrize(
    "data, message",
    [
        (
            "ISIC_0000000,benign\nISIC_000000\xe9,malignant\n".encode("latin-1"),
            r"line 2: not UTF-8 text \(byte 0xe9 at offset 31\); save the CSV as UTF-8",
        ),
        (_ROWS_2016.encode("utf-16-le"), r"NUL characters \(UTF-16 without a byte-order mark\?\)"),
        (b"", r"empty CSV: no rows"),
    ],
    ids=["Latin-1", "UTF-16 without BOM", "empty"],
)
def test_csv_in_another_encoding_is_a_named_error(tmp_path, data, message):
    """Named error, even with skip_bad: the whole file is unreadable as text."""
    root = make_isic2016(tmp_path)
    (root / _CSV_2016).write_bytes(data)
    with pytest.raises(DatasetError, match=rf"{re.escape(_CSV_2016)}: {message}"):
        read_isic2016_part3(root, skip_bad=True)


BAD_ROWS = {
    "2017 both diagnoses": (
        _CSV_2017,
        "image_id,melanoma,seborrheic_keratosis\nISIC_0000000,0,0\nISIC_0000001,1,1\nISIC_0000002,1,0\n",
        r"line 3: ISIC_0000001 is labelled both melanoma and seborrheic_keratosis",
        1,
    ),
    "2017 short row": (
        _CSV_2017,
        "image_id,melanoma,seborrheic_keratosis\nISIC_0000000,0,0\nISIC_0000001,1\nISIC_0000002,1,0\n",
        r"line 3: expected 3 cells \(image_id,melanoma,seborrheic_keratosis\), got 2",
        1,
    ),
    "2017 id off the pattern": (
        _CSV_2017,
        "image_id,melanoma,seborrheic_keratosis\nISIC_0000000,0,0\nISIC_0000001.jpg,1,0\nISIC_0000002,1,0\n",
        r"line 3: 'ISIC_0000001\.jpg' is not an ISIC_<7 digits> image id",
        2,
    ),
    "2017 conflicting duplicate": (
        _CSV_2017,
        "image_id,melanoma,seborrheic_keratosis\nISIC_0000001,0,1\n"
        "ISIC_0000000,0,0\nISIC_0000001,1,0\nISIC_0000002,1,0\n",
        r"line 4: conflicting rows for ISIC_0000001: line 2 gives "
        r"\{'melanoma': 0\.0, 'seborrheic_keratosis': 1\.0\}, line 4 gives",
        1,
    ),
    "2016 conflicting duplicate": (
        _CSV_2016,
        _ROWS_2016 + "ISIC_0000001,benign\n",
        r"line 4: conflicting rows for ISIC_0000001: line 2 gives "
        r"\{'melanoma': 1\.0\}, line 4 gives \{'melanoma': 0\.0\}",
        1,
    ),
    "2016 repeated row": (
        _CSV_2016,
        _ROWS_2016 + "ISIC_0000001,1.0\n",
        r"line 4: duplicate row for ISIC_0000001 \(also line 2\)",
        1,
    ),
    "2016 label 2": (
        _CSV_2016,
        "ISIC_0000000,benign\nISIC_0000001,2\nISIC_0000002,benign\n",
        r"line 2: label '2' for ISIC_0000001 is not benign, malignant, 0 or 1",
        1,
    ),
    "2016 extra cell": (
        _CSV_2016,
        "ISIC_0000000,benign\nISIC_0000001,benign,malignant\nISIC_0000002,0\n",
        r"line 2: expected 2 cells \(ISIC_<id>,label\), got 3",
        1,
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_bad_or_contradictory_csv_row_is_named_or_skipped_and_listed(tmp_path, case):
    """Named error with the line; skip_bad leaves out ISIC_0000001 and lists why."""
    name, text, message, problems = BAD_ROWS[case]
    root = (make_isic2017 if name == _CSV_2017 else make_isic2016)(tmp_path)
    (root / name).write_text(text)
    read = (
        (lambda **kw: read_isic2017(root, parts=(3,), **kw))
        if name == _CSV_2017
        else (lambda **kw: read_isic2016_part3(root, **kw))
    )
    with pytest.raises(DatasetError, match=rf"{re.escape(name)}: {message}"):
        read()
    policy = BadInputPolicy(skip_bad=True)
    assert [r.image_id for r in read(skip_bad=policy)] == ["ISIC_0000000", "ISIC_0000002"]
    assert re.search(message, str(policy.skipped[0]))
    assert len(policy.skipped) == problems  # a row off the pattern also leaves its image without one


# ----------------------------------------------------------------------------- unreadable files


def _refuse(monkeypatch, target: Path, method: str) -> None:
    """Makes ``Path.<method>`` fail for ``target`` as an unreadable file or folder does."""
    original = getattr(Path, method)

    def refusing(self, *args, **kwargs):
        if self == target:
            raise PermissionError(13, "Permission denied", str(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, method, refusing)


@pytest.mark.parametrize("reader", ["isic2018", "mask folder", "labelme"])
def test_unreadable_folder_is_a_named_error(tmp_path, monkeypatch, reader):
    """Named error (the folder and 'Permission denied'), even with skip_bad."""
    if reader == "isic2018":
        root = make_isic2018(tmp_path)
        folder = root / layouts.ISIC2018_LAYOUT["train"]["task1"]
        read = lambda: read_isic2018(root, skip_bad=True)  # noqa: E731
    elif reader == "mask folder":
        save_rgb(tmp_path / "images/a.png")
        folder = tmp_path / "masks"
        folder.mkdir()
        read = lambda: read_mask_folder(tmp_path / "images", folder, skip_bad=True)  # noqa: E731
    else:
        folder = tmp_path
        write_labelme(tmp_path, "scan", [GOOD_SHAPE])
        read = lambda: read_labelme(tmp_path, {"kidney": 1}, skip_bad=True)  # noqa: E731
    _refuse(monkeypatch, folder, "iterdir")
    with pytest.raises(DatasetError, match=rf"{re.escape(folder.name)}: cannot list the folder \(Permission denied\)"):
        read()


def test_unreadable_csv_and_image(tmp_path, monkeypatch):
    """Named errors; the unreadable image is skipped-and-listed with skip_bad."""
    root = make_isic2016(tmp_path)
    _refuse(monkeypatch, root / _CSV_2016, "read_bytes")
    with pytest.raises(DatasetError, match=r"GroundTruth\.csv: cannot read the file \(Permission denied\)"):
        read_isic2016_part3(root, skip_bad=True)
    image = root / layouts.ISIC2016_LAYOUT["train"]["part1_images"] / "ISIC_0000001.jpg"
    original = Image.open
    monkeypatch.setattr(
        Image, "open", lambda path, *a, **k: _raise_permission(path) if Path(path) == image else original(path, *a, **k)
    )
    with pytest.raises(DatasetError, match=r"ISIC_0000001\.jpg: cannot read the file \(Permission denied\)"):
        read_isic2016_part1(root)
    policy = BadInputPolicy(skip_bad=True)
    assert [r.image_id for r in read_isic2016_part1(root, skip_bad=policy)] == ["ISIC_0000000", "ISIC_0000002"]
    assert [e.path for e in policy.skipped] == [image]


def test_unreadable_labelme_json_is_skipped_and_listed(tmp_path, monkeypatch):
    """Named error; skipped-and-listed with skip_bad."""
    bad = write_labelme(tmp_path, "bad", [GOOD_SHAPE])
    write_labelme(tmp_path, "good", [GOOD_SHAPE])
    _refuse(monkeypatch, bad, "read_text")
    with pytest.raises(DatasetError, match=r"bad\.json: cannot read the file \(Permission denied\)"):
        read_labelme(tmp_path, {"kidney": 1})
    policy = BadInputPolicy(skip_bad=True)
    assert [r.image_id for r in read_labelme(tmp_path, {"kidney": 1}, skip_bad=policy)] == ["good"]
    assert [e.path for e in policy.skipped] == [bad]


def _raise_permission(path):
    raise PermissionError(13, "Permission denied", str(path))


# ----------------------------------------------------------------------------- degenerate files


def _zero_width_png(path: Path) -> None:
    """A PNG whose IHDR says 0 pixels wide (with a valid CRC)."""
    import struct
    import zlib

    save_rgb(path, size=(5, 1))
    data = bytearray(path.read_bytes())
    data[16:20] = struct.pack(">I", 0)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


def _jpeg_without_end_marker(path: Path) -> None:
    """A JPEG whose data is whole but whose final FF D9 marker is cut: Pillow decodes it."""
    pixels = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)
    _truncate(path, 2)
    Image.open(path).load()


def _truncate(path: Path, cut: int = 20) -> None:
    path.write_bytes(path.read_bytes()[:-cut])


@pytest.mark.parametrize(
    "spoil, message",
    [
        (
            lambda i, m: (save_rgb(i / "b.png", size=(1, 1)), Image.new("L", (1, 1)).save(m / "b.png")),
            r"b\.png: degenerate image size 1x1 \(height x width\)",
        ),
        (
            lambda i, m: (save_rgb(i / "b.png", size=(1, 12)), Image.new("L", (12, 1)).save(m / "b.png")),
            r"b\.png: degenerate image size 1x12 \(height x width\)",
        ),
        (lambda i, m: _zero_width_png(i / "b.png"), r"b\.png: not a readable image"),
        (
            lambda i, m: (
                save_rgb(i / "b.jpg", size=(40, 40)),
                (i / "b.png").unlink(),
                Image.new("L", (40, 40)).save(m / "b.png"),
                _truncate(i / "b.jpg"),
            ),
            r"b\.jpg: truncated or corrupt image data",
        ),
        (
            lambda i, m: (
                _jpeg_without_end_marker(i / "b.jpg"),
                (i / "b.png").unlink(),
                Image.new("L", (40, 40)).save(m / "b.png"),
            ),
            r"b\.jpg: truncated or corrupt image data \(no end-of-image marker",
        ),
        (lambda i, m: _truncate(m / "b.png"), r"masks/b\.png: truncated or corrupt image data"),
        (lambda i, m: _truncate(m / "b.png", 12), r"masks/b\.png: truncated or corrupt image data"),
        (
            lambda i, m: Image.fromarray((class_indices() > 0).astype(np.uint8)).save(m / "b.png"),
            r"masks/b\.png: mask values must be \{0, 255\}; found 1",
        ),
    ],
    ids=[
        "1x1 image",
        "1-pixel-high image",
        "0-pixel image",
        "truncated JPEG",
        "JPEG without end marker",
        "truncated mask",
        "PNG mask without IEND",
        "0/1 mask",
    ],
)
def test_degenerate_truncated_or_off_value_files_in_a_mask_folder(tmp_path, spoil, message):
    """Named error; skipped-and-listed with skip_bad. A JPEG without its end marker and a
    PNG without IEND decode in Pillow but make tf.io.decode_image fail mid-training."""
    for stem in ("a", "b"):
        save_rgb(tmp_path / f"images/{stem}.png")
        (tmp_path / "masks").mkdir(exist_ok=True)
        Image.fromarray((class_indices() > 0).astype(np.uint8) * 255).save(tmp_path / f"masks/{stem}.png")
    spoil(tmp_path / "images", tmp_path / "masks")
    with pytest.raises(DatasetError, match=message):
        read_mask_folder(tmp_path / "images", tmp_path / "masks")
    policy = BadInputPolicy(skip_bad=True)
    assert [r.image_id for r in read_mask_folder(tmp_path / "images", tmp_path / "masks", skip_bad=policy)] == ["a"]
    assert len(policy.skipped) == 1 and re.search(message, str(policy.skipped[0]))


def test_degenerate_and_truncated_images_in_isic_and_labelme(tmp_path):
    """Named errors in the ISIC and Labelme readers too (header validation catches the size)."""
    root = make_isic2018(tmp_path / "isic")
    folders = layouts.ISIC2018_LAYOUT["train"]
    save_rgb(root / folders["images"] / "ISIC_0000001.jpg", size=(1, 1))
    Image.new("L", (1, 1)).save(root / folders["task1"] / "ISIC_0000001_segmentation.png")
    with pytest.raises(DatasetError, match=r"ISIC_0000001\.jpg: degenerate image size 1x1"):
        read_isic2018(root, validate="header")
    write_labelme(tmp_path / "labelme", "scan", [GOOD_SHAPE])
    scan = tmp_path / "labelme/scan.png"
    Image.open(scan).convert("RGB").save(scan.with_suffix(".jpg"))
    content = json.loads((tmp_path / "labelme/scan.json").read_text())
    (tmp_path / "labelme/scan.json").write_text(json.dumps({**content, "imagePath": "scan.jpg"}))
    _truncate(scan.with_suffix(".jpg"))
    with pytest.raises(DatasetError, match=r"scan\.jpg: truncated or corrupt image data"):
        read_labelme(tmp_path / "labelme", {"kidney": 1})


def test_check_command_refuses_a_label_given_twice(tmp_path, capsys):
    """Named error: ``--label-map kidney=1 kidney=2`` would keep one silently."""
    write_labelme(tmp_path, "scan", [GOOD_SHAPE])
    with pytest.raises(SystemExit) as exit_:
        check_main(["labelme", str(tmp_path), "--label-map", "kidney=1", "kidney=2"])
    assert exit_.value.code == 2
    assert "label 'kidney' given twice" in capsys.readouterr().err
