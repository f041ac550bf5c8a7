"""ISIC readers (data_tools.isic), file checks (data_tools.imageio) and the check CLI.

Every test writes its own tiny dataset (8x10 images) in the official layout.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_tools import layouts
from data_tools.check import main as check_main
from data_tools.imageio import load_image, load_mask, read_image_header
from data_tools.isic import (
    rasterise_isic2017_features,
    read_isic2016_part1,
    read_isic2016_part3,
    read_isic2017,
    read_isic2018,
    write_isic2017_feature_masks,
)
from data_tools.records import BadInputPolicy, DatasetError

H, W = 8, 10
IDS = ("ISIC_0000002", "ISIC_0000000", "ISIC_0000001")  # written out of order


def write_jpeg(path: Path, size=(H, W), seed=0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG", quality=95)
    return path


def write_mask(path: Path, size=(H, W), values=(0, 255)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    mask = np.full(size, values[0], np.uint8)
    mask[2:5, 3:7] = values[1]
    Image.fromarray(mask).save(path)
    return path


def make_isic2016(root: Path, split="train", ids=IDS) -> Path:
    folders = layouts.ISIC2016_LAYOUT[split]
    for i, image_id in enumerate(ids):
        write_jpeg(root / folders["part1_images"] / f"{image_id}.jpg", seed=i)
        write_mask(root / folders["part1"] / f"{image_id}_Segmentation.png")
        write_jpeg(root / folders["part3_images"] / f"{image_id}.jpg", seed=i)
    labels = ("benign", "malignant") if split == "train" else ("0.0", "1.0")
    rows = [f"{image_id},{labels[i % 2]}" for i, image_id in enumerate(ids)]
    (root / folders["part3"]).write_text("\n".join(rows) + "\n")
    return root


def make_isic2017(root: Path, split="train", ids=IDS) -> Path:
    folders = layouts.ISIC2017_LAYOUT[split]
    rows = ["image_id,melanoma,seborrheic_keratosis"]
    for i, image_id in enumerate(ids):
        write_jpeg(root / folders["images"] / f"{image_id}.jpg", seed=i)
        write_mask(root / folders["part1"] / f"{image_id}_segmentation.png")
        superpixels = np.zeros((H, W, 3), np.uint8)
        superpixels[:, W // 2 :, 0] = 1  # two superpixels: left 0, right 1
        Image.fromarray(superpixels).save(root / folders["images"] / f"{image_id}_superpixels.png")
        features = {name: [0, 1] for name in layouts.ISIC2017_FEATURES}
        part2 = root / folders["part2"]
        part2.mkdir(exist_ok=True)
        (part2 / f"{image_id}_features.json").write_text(json.dumps(features))
        rows.append(f"{image_id},{float(i == 1)},{float(i == 2)}")
    (root / folders["images"] / "ISIC-2017_Training_Data_metadata.csv").write_text("x\n")
    (root / folders["part3"]).write_text("\n".join(rows) + "\n")
    return root


def make_isic2018(root: Path, split="train", ids=IDS) -> Path:
    folders = layouts.ISIC2018_LAYOUT[split]
    for i, image_id in enumerate(ids):
        write_jpeg(root / folders["images"] / f"{image_id}.jpg", seed=i)
        write_mask(root / folders["task1"] / f"{image_id}_segmentation.png")
        for attribute in layouts.ISIC2018_ATTRIBUTES:
            suffix = layouts.isic2018_attribute_suffix(attribute)
            write_mask(root / folders["task2"] / f"{image_id}{suffix}")
    (root / folders["images"] / "LICENSE.txt").write_text("CC-BY-NC\n")
    return root


# ----------------------------------------------------------------------------- reading


def test_isic2016_part1_pairs_images_with_masks(tmp_path):
    root = make_isic2016(tmp_path)
    records = read_isic2016_part1(root)
    assert [r.image_id for r in records] == sorted(IDS)
    first = records[0]
    assert first.image_path == root / "ISBI2016_ISIC_Part1_Training_Data/ISIC_0000000.jpg"
    assert first.mask_paths == {
        "lesion": root / "ISBI2016_ISIC_Part1_Training_GroundTruth/ISIC_0000000_Segmentation.png"
    }


def test_mask_suffix_case_is_ignored(tmp_path):
    root = make_isic2016(tmp_path, split="test")
    folder = root / "ISBI2016_ISIC_Part1_Test_GroundTruth"
    (folder / "ISIC_0000001_Segmentation.png").rename(folder / "ISIC_0000001_segmentation.png")
    records = read_isic2016_part1(root, "test")
    assert records[1].mask_paths["lesion"].name == "ISIC_0000001_segmentation.png"


@pytest.mark.parametrize("split", ["train", "test"])
def test_isic2016_part3_labels_from_headerless_csv(tmp_path, split):
    root = make_isic2016(tmp_path, split=split)
    records = read_isic2016_part3(root, split)
    # IDS[i] is malignant for odd i: ISIC_0000002 -> 0, ISIC_0000000 -> 1, ISIC_0000001 -> 0.
    assert {r.image_id: r.labels for r in records} == {
        "ISIC_0000000": {"melanoma": 1.0},
        "ISIC_0000001": {"melanoma": 0.0},
        "ISIC_0000002": {"melanoma": 0.0},
    }


def test_isic2017_all_parts(tmp_path):
    root = make_isic2017(tmp_path)
    records = read_isic2017(root, parts=(1, 2, 3))
    assert [r.image_id for r in records] == sorted(IDS)  # superpixel PNGs, metadata ignored
    by_id = {r.image_id: r for r in records}
    assert by_id["ISIC_0000000"].labels == {"melanoma": 1.0, "seborrheic_keratosis": 0.0}
    assert by_id["ISIC_0000001"].labels == {"melanoma": 0.0, "seborrheic_keratosis": 1.0}
    assert by_id["ISIC_0000002"].labels == {"melanoma": 0.0, "seborrheic_keratosis": 0.0}
    record = by_id["ISIC_0000001"]
    assert record.mask_paths["lesion"].name == "ISIC_0000001_segmentation.png"
    assert record.extra == {
        "superpixels": root / "ISIC-2017_Training_Data/ISIC_0000001_superpixels.png",
        "features": root / "ISIC-2017_Training_Part2_GroundTruth/ISIC_0000001_features.json",
    }


def test_isic2017_images_only(tmp_path):
    root = make_isic2017(tmp_path, split="validation")
    records = read_isic2017(root, "validation", parts=())
    assert [(r.mask_paths, r.labels, r.extra) for r in records] == [({}, {}, {})] * 3


def test_rasterise_isic2017_features_matches_loop(tmp_path):
    rng = np.random.default_rng(0)
    index = rng.integers(0, 300, (H, W))  # indices above 255 need the G channel
    index[0, 0] = 299
    rgb = np.stack([index & 255, (index >> 8) & 255, (index >> 16) & 255], -1).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "sp.png")
    labels = {name: rng.integers(0, 2, 300).tolist() for name in layouts.ISIC2017_FEATURES}
    (tmp_path / "f.json").write_text(json.dumps(labels))
    masks = rasterise_isic2017_features(tmp_path / "sp.png", tmp_path / "f.json")
    for name in layouts.ISIC2017_FEATURES:
        expected = np.zeros((H, W), np.uint8)
        for y in range(H):
            for x in range(W):
                expected[y, x] = 255 * labels[name][index[y, x]]
        np.testing.assert_array_equal(masks[name], expected)


def test_rasterise_rejects_index_beyond_labels(tmp_path):
    Image.fromarray(np.full((H, W, 3), 5, np.uint8)).save(tmp_path / "sp.png")
    (tmp_path / "f.json").write_text(json.dumps({n: [0, 1] for n in layouts.ISIC2017_FEATURES}))
    with pytest.raises(DatasetError, match=r"sp\.png: superpixel index 328965 out of range"):
        rasterise_isic2017_features(tmp_path / "sp.png", tmp_path / "f.json")


def test_write_isic2017_feature_masks_once(tmp_path):
    root = make_isic2017(tmp_path / "data")
    records = write_isic2017_feature_masks(read_isic2017(root, parts=(1, 2)), tmp_path / "cache")
    record = records[0]
    assert set(record.mask_paths) == {"lesion", *layouts.ISIC2017_FEATURES, "dermo"}
    expected = np.zeros((H, W), np.uint8)
    expected[:, W // 2 :] = 255  # every feature is present in superpixel 1 only
    for name in (*layouts.ISIC2017_FEATURES, "dermo"):
        np.testing.assert_array_equal(load_mask(record.mask_paths[name]), expected)
    written = record.mask_paths["dermo"].stat().st_mtime_ns
    write_isic2017_feature_masks(read_isic2017(root, parts=(2,)), tmp_path / "cache")
    assert record.mask_paths["dermo"].stat().st_mtime_ns == written


def test_write_isic2017_feature_masks_needs_part2(tmp_path):
    records = read_isic2017(make_isic2017(tmp_path), parts=(1,))
    with pytest.raises(ValueError, match="ISIC_0000000 has no Part 2 files"):
        write_isic2017_feature_masks(records, tmp_path / "cache")


def test_isic2018_tasks(tmp_path):
    root = make_isic2018(tmp_path)
    records = read_isic2018(root, tasks=(1, 2))
    assert [r.image_id for r in records] == sorted(IDS)
    assert set(records[0].mask_paths) == {"lesion", *layouts.ISIC2018_ATTRIBUTES}
    assert (
        records[2].mask_paths["streaks"]
        == root / "ISIC2018_Task2_Training_GroundTruth_v3/ISIC_0000002_attribute_streaks.png"
    )
    assert read_isic2018(root, tasks=())[0].mask_paths == {}


# ----------------------------------------------------------------------------- image files


def test_load_image_and_header(tmp_path):
    grey = np.arange(H * W, dtype=np.uint8).reshape(H, W)
    Image.fromarray(grey).save(tmp_path / "g.png")
    assert read_image_header(tmp_path / "g.png") == (H, W, 1)
    image = load_image(tmp_path / "g.png")
    assert image.shape == (H, W, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[..., 1], grey)


def test_load_mask_class_indices(tmp_path):
    write_mask(tmp_path / "m.png", values=(0, 2))
    assert load_mask(tmp_path / "m.png", binary=False, num_classes=3).max() == 2
    with pytest.raises(DatasetError, match=r"m\.png: mask values must be class indices 0\.\.1; found 2"):
        load_mask(tmp_path / "m.png", binary=False, num_classes=2)


# ----------------------------------------------------------------------------- bad input


def _train1(root: Path) -> Path:
    return root / "ISIC2018_Task1-2_Training_Input"


def _gt1(root: Path) -> Path:
    return root / "ISIC2018_Task1_Training_GroundTruth"


def truncate(path: Path) -> None:
    """Cuts the end of the compressed data, leaving the header whole."""
    data = path.read_bytes()
    path.write_bytes(data[:-20])


BAD_INPUTS = {
    "truncated image": (
        lambda r: truncate(_train1(r) / "ISIC_0000001.jpg"),
        r"ISIC_0000001\.jpg: truncated or corrupt image data",
    ),
    "truncated header": (
        lambda r: (_train1(r) / "ISIC_0000001.jpg").write_bytes((_train1(r) / "ISIC_0000001.jpg").read_bytes()[:100]),
        r"ISIC_0000001\.jpg: truncated or corrupt image header",
    ),
    "not an image": (
        lambda r: (_train1(r) / "ISIC_0000001.jpg").write_bytes(b"not a jpeg at all"),
        r"ISIC_0000001\.jpg: not a readable image",
    ),
    "mask size": (
        lambda r: write_mask(_gt1(r) / "ISIC_0000001_segmentation.png", size=(H, W + 2)),
        r"ISIC_0000001_segmentation\.png: mask size 8x12 differs from its image's 8x10",
    ),
    "grey-level mask": (
        lambda r: write_mask(_gt1(r) / "ISIC_0000001_segmentation.png", values=(1, 128)),
        r"ISIC_0000001_segmentation\.png: mask values must be \{0, 255\}; found 1, 128",
    ),
    "RGB mask": (
        lambda r: Image.new("RGB", (W, H)).save(_gt1(r) / "ISIC_0000001_segmentation.png"),
        r"ISIC_0000001_segmentation\.png: mask has 3 channel\(s\) in mode 'RGB'",
    ),
    "image without mask": (
        lambda r: (_gt1(r) / "ISIC_0000001_segmentation.png").unlink(),
        r"ISIC_0000001\.jpg: no ground truth: expected ISIC_0000001_segmentation\.png in "
        r".*ISIC2018_Task1_Training_GroundTruth",
    ),
    "mask without image": (
        lambda r: (_train1(r) / "ISIC_0000001.jpg").unlink(),
        r"ISIC_0000001_segmentation\.png: ground truth for ISIC_0000001 but no image "
        r"ISIC_0000001\.jpg in .*ISIC2018_Task1-2_Training_Input",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_sample_raises_naming_file(tmp_path, case):
    spoil, message = BAD_INPUTS[case]
    root = make_isic2018(tmp_path)
    spoil(root)
    with pytest.raises(DatasetError, match=message):
        read_isic2018(root)


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_skip_bad_logs_and_skips(tmp_path, caplog, case):
    spoil, message = BAD_INPUTS[case]
    root = make_isic2018(tmp_path)
    spoil(root)
    policy = BadInputPolicy(skip_bad=True)
    with caplog.at_level(logging.WARNING, logger="data_tools"):
        records = read_isic2018(root, skip_bad=policy)
    assert [r.image_id for r in records] == ["ISIC_0000000", "ISIC_0000002"]
    assert [str(e) for e in policy.skipped] == [m.split(": ", 1)[1] for m in caplog.messages]
    assert len(policy.skipped) == 1
    assert re.search(message, str(policy.skipped[0]))


def test_header_validation_checks_sizes_not_values(tmp_path):
    root = make_isic2018(tmp_path)
    write_mask(_gt1(root) / "ISIC_0000001_segmentation.png", values=(1, 128))
    assert len(read_isic2018(root, validate="header")) == 3
    write_mask(_gt1(root) / "ISIC_0000001_segmentation.png", size=(H + 1, W))
    with pytest.raises(DatasetError, match="mask size 9x10 differs"):
        read_isic2018(root, validate="header")


def test_missing_official_folder(tmp_path):
    root = make_isic2018(tmp_path)
    with pytest.raises(DatasetError) as error:
        read_isic2018(root, "validation")
    assert error.value.path == root / "ISIC2018_Task1-2_Validation_Input"
    assert (
        "missing folder: ISIC 2018 validation expects the official folder "
        "'ISIC2018_Task1-2_Validation_Input'" in error.value.problem
    )
    shutil.rmtree(root / "ISIC2018_Task2_Training_GroundTruth_v3")
    with pytest.raises(DatasetError, match="train expects .*'ISIC2018_Task2_Training_GroundTruth_v3'"):
        read_isic2018(root, tasks=(2,))


def test_empty_image_folder(tmp_path):
    (tmp_path / "ISBI2016_ISIC_Part1_Test_Data").mkdir()
    (tmp_path / "ISBI2016_ISIC_Part1_Test_GroundTruth").mkdir()
    with pytest.raises(
        DatasetError, match=r"Part1_Test_Data: empty folder: no ISIC_<7 digits>\.jpg images \(ISIC 2016 Part 1 test\)"
    ):
        read_isic2016_part1(tmp_path, "test")


def test_csv_missing_columns(tmp_path):
    root = make_isic2017(tmp_path)
    csv = root / "ISIC-2017_Training_Part3_GroundTruth.csv"
    csv.write_text("image_id,melanoma\nISIC_0000000,1.0\n")
    with pytest.raises(
        DatasetError,
        match=r"Part3_GroundTruth\.csv: missing column\(s\) seborrheic_keratosis; header is image_id,melanoma",
    ):
        read_isic2017(root, parts=(3,))


def test_csv_unknown_id_and_image_without_row(tmp_path):
    root = make_isic2016(tmp_path)
    csv = root / "ISBI2016_ISIC_Part3_Training_GroundTruth.csv"
    csv.write_text("ISIC_0000000,benign\nISIC_0000001,malignant\nISIC_0000009,benign\n")
    with pytest.raises(DatasetError) as error:
        read_isic2016_part3(root)
    assert error.value.path == csv
    assert "ground truth for ISIC_0000009 but no image ISIC_0000009.jpg" in error.value.problem
    policy = BadInputPolicy(skip_bad=True)
    records = read_isic2016_part3(root, skip_bad=policy)
    assert [r.image_id for r in records] == ["ISIC_0000000", "ISIC_0000001"]
    assert [e.path.name for e in policy.skipped] == [csv.name, "ISIC_0000002.jpg"]
    assert "no ground truth: expected a row for ISIC_0000002" in policy.skipped[1].problem


def test_csv_bad_label_value(tmp_path):
    root = make_isic2016(tmp_path)
    csv = root / "ISBI2016_ISIC_Part3_Training_GroundTruth.csv"
    csv.write_text("ISIC_0000000,benign\nISIC_0000001,unsure\nISIC_0000002,1\n")
    with pytest.raises(DatasetError, match=r"line 2: label 'unsure' for ISIC_0000001 is not benign"):
        read_isic2016_part3(root)
    policy = BadInputPolicy(skip_bad=True)
    assert [r.labels for r in read_isic2016_part3(root, skip_bad=policy)] == [
        {"melanoma": 0.0},
        {"melanoma": 1.0},
    ]
    assert len(policy.skipped) == 1  # the bad row only, not also its image


def test_bad_arguments():
    with pytest.raises(
        ValueError, match=r"split for ISIC 2018 must be one of \('train', 'validation', 'test'\), got 'val'"
    ):
        read_isic2018("anywhere", "val")
    with pytest.raises(ValueError, match=r"parts must be drawn from \(1, 2, 3\), got \(4,\)"):
        read_isic2017("anywhere", parts=(4,))


# ----------------------------------------------------------------------------- CLI


def test_check_cli_summary_and_error(tmp_path, capsys):
    root = make_isic2017(tmp_path)
    assert check_main(["isic2017", str(root), "--parts", "1", "3"]) == 0
    out = capsys.readouterr().out
    assert "3 records" in out
    assert "mask lesion: 3" in out
    assert "label melanoma: 1 positive" in out
    truncate(root / "ISIC-2017_Training_Data/ISIC_0000002.jpg")
    assert check_main(["isic2017", str(root)]) == 1
    assert "ISIC_0000002.jpg: truncated or corrupt" in capsys.readouterr().err
    assert check_main(["isic2017", str(root), "--skip-bad"]) == 0
    out = capsys.readouterr().out
    assert "2 records" in out and "1 skipped:" in out
