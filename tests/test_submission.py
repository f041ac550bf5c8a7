"""zoo.submission: files named, sized and valued as the ISIC challenges expect."""

import csv

import numpy as np
import pytest
from PIL import Image

from data_tools.layouts import ISIC2018_ATTRIBUTES
from zoo import submission


def _half_mask(height: int, width: int) -> np.ndarray:
    """Probabilities 1 on the left half, 0 on the right half."""
    prediction = np.zeros((height, width), np.float32)
    prediction[:, : width // 2] = 1.0
    return prediction


def _read(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.mode == "L"
        return np.asarray(image)


def test_original_size_reads_the_image_header(tmp_path):
    Image.new("RGB", (12, 8)).save(tmp_path / "ISIC_0000001.jpg")
    assert submission.original_size(tmp_path / "ISIC_0000001.jpg") == (8, 12)


@pytest.mark.parametrize("suffix", ["_segmentation.png", "_Segmentation.png"])
def test_segmentation_mask_is_resized_binary_png(tmp_path, suffix):
    path = submission.write_segmentation_mask(
        "ISIC_0000001",
        _half_mask(4, 4)[..., None],
        tmp_path / "out",
        original_size=(6, 8),
        suffix=suffix,
    )
    assert path == tmp_path / "out" / f"ISIC_0000001{suffix}"
    mask = _read(path)
    assert mask.dtype == np.uint8 and mask.shape == (6, 8)
    expected = np.zeros((6, 8), np.uint8)
    expected[:, :4] = 255
    np.testing.assert_array_equal(mask, expected)


def test_attribute_masks_one_file_per_attribute(tmp_path):
    prediction = np.zeros((4, 4, 5), np.float32)
    prediction[..., 3] = _half_mask(4, 4)  # fourth attribute in layout order
    prediction[..., 0] = 0.7  # first attribute everywhere
    paths = submission.write_attribute_masks("ISIC_0000002", prediction, tmp_path, original_size=(8, 8))
    names = [f"ISIC_0000002_attribute_{a}.png" for a in ISIC2018_ATTRIBUTES]
    assert [p.name for p in paths] == names
    masks = {a: _read(p) for a, p in zip(ISIC2018_ATTRIBUTES, paths, strict=True)}
    assert all(m.shape == (8, 8) for m in masks.values())
    assert np.all(masks[ISIC2018_ATTRIBUTES[0]] == 255)
    np.testing.assert_array_equal(masks[ISIC2018_ATTRIBUTES[3]][:, :4], 255)
    np.testing.assert_array_equal(masks[ISIC2018_ATTRIBUTES[3]][:, 4:], 0)
    for blank in (1, 2, 4):
        assert not masks[ISIC2018_ATTRIBUTES[blank]].any()


@pytest.mark.parametrize(
    "image_id, prediction, message",
    [
        ("ISIC_12", np.zeros((4, 4)), "not an ISIC id"),
        ("ISIC_0000001", np.zeros((4, 4, 2)), r"\[H, W\]"),
        ("ISIC_0000001", np.full((4, 4), np.nan), "NaN"),
    ],
)
def test_segmentation_mask_rejects_bad_input(tmp_path, image_id, prediction, message):
    with pytest.raises(ValueError, match=message):
        submission.write_segmentation_mask(image_id, prediction, tmp_path, original_size=(4, 4))


def test_attribute_masks_reject_wrong_channel_count(tmp_path):
    with pytest.raises(ValueError, match="attributes"):
        submission.write_attribute_masks("ISIC_0000001", np.zeros((4, 4, 3)), tmp_path, original_size=(4, 4))


def test_isic2017_csv_has_official_columns(tmp_path):
    path = submission.write_isic2017_classification_csv(
        tmp_path / "part3.csv", ["ISIC_0000001", "ISIC_0000002"], [0.25, 0.9], [0.125, 1e-5]
    )
    with path.open(newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["image_id", "melanoma", "seborrheic_keratosis"]
    assert [r[0] for r in rows[1:]] == ["ISIC_0000001", "ISIC_0000002"]
    values = [[float(v) for v in r[1:]] for r in rows[1:]]
    np.testing.assert_array_equal(values, [[0.25, 0.125], [0.9, 1e-5]])


def test_isic2016_csv_has_no_header(tmp_path):
    path = submission.write_isic2016_classification_csv(
        tmp_path / "part3.csv", ["ISIC_0000003", "ISIC_0000004"], np.array([0.5, 0.0])
    )
    assert path.read_text().splitlines() == ["ISIC_0000003,0.5", "ISIC_0000004,0.0"]


@pytest.mark.parametrize(
    "ids, values, message",
    [
        (["ISIC_0000001", "ISIC_0000001"], [0.1, 0.2], "unique"),
        (["ISIC_0000001"], [0.1, 0.2], "2 values for 1 image ids"),
        (["ISIC_0000001"], [1.5], r"\[0, 1\]"),
        (["ISIC_0000001"], [np.nan], r"\[0, 1\]"),
    ],
)
def test_csv_writers_reject_bad_input(tmp_path, ids, values, message):
    with pytest.raises(ValueError, match=message):
        submission.write_isic2016_classification_csv(tmp_path / "x.csv", ids, values)
    assert not (tmp_path / "x.csv").exists()
