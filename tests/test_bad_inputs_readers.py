"""No silently wrong data: what every reader does with bad or ambiguous input.

Each case ends in one of three outcomes, and says which: a named error
(:class:`DatasetError` naming the file and the problem), skipped-and-listed with
``skip_bad`` (``BadInputPolicy.skipped``), or correct data (checked pixel for pixel
or label for label). Every dataset is a few tiny files in ``tmp_path``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_tools import layouts
from data_tools.folders import read_mask_folder
from data_tools.isic import read_isic2018
from data_tools.pipeline import segmentation_dataset
from data_tools.preprocess import InputSpec
from data_tools.records import BadInputPolicy, DatasetError, Record

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
        records, InputSpec((H, W)), mask_names=(mask_name,), mask_mode=mask_mode,
        batch_size=1, training=False, cache=False,
    )
    _, targets = next(iter(dataset))
    return targets.numpy()[0, ..., 0]


# ----------------------------------------------------------------------------- palette masks


def test_voc_palette_mask_reaches_the_pipeline_as_indices(tmp_path):
    """Correct data: indices 0/1/2 (colours black, dark red, green) give targets 0/1/2."""
    assert voc_palette()[3:9] == [*DARK_RED, *GREEN]
    save_rgb(tmp_path / "images/scan.png")
    save_palette_png(tmp_path / "masks/scan.png", class_indices(), voc_palette())
    records = read_mask_folder(tmp_path / "images", tmp_path / "masks", classes=3,
                               mask_name="classes", cache_dir=tmp_path / "cache")
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
    records = read_mask_folder(tmp_path / "images", tmp_path / "masks", classes=3,
                               cache_dir=tmp_path / "cache")
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
    dataset = segmentation_dataset([record], InputSpec((H, W)), mask_names=("mask",), batch_size=1,
                                   training=False, cache=False)
    image, _ = next(iter(dataset))
    np.testing.assert_allclose(image.numpy()[0] * 255, expected, atol=1e-3)


def test_pipeline_refuses_a_palette_mask_it_would_misread(tmp_path):
    """Named error: a hand-made record pointing at a palette PNG (colours, not indices)."""
    image = save_rgb(tmp_path / "a.png")
    mask = save_palette_png(tmp_path / "a_mask.png", class_indices(), voc_palette())
    with pytest.raises(DatasetError, match=r"a_mask\.png: .*palette PNG"):
        pipeline_targets([Record("a", image, {"classes": mask})], "classes", "index")
