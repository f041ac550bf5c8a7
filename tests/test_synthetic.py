"""Synthetic datasets: official layouts (read back by the real readers), binary
masks sized like their images, labels tied to visible features, determinism."""

from __future__ import annotations

import csv
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_tools import layouts
from data_tools.folders import read_labelme, read_mask_folder
from data_tools.isic import (
    read_isic2016_part1,
    read_isic2016_part3,
    read_isic2017,
    read_isic2018,
)
from data_tools.synthetic import (
    encode_superpixels,
    is_synthetic,
    main,
    make_isic2016,
    make_isic2017,
    make_isic2018,
    make_mask_folder,
    make_ultrasound_labelme,
)

LABEL_MAP = {"kidney": 1, "hydronephrosis": 2}


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def _ids(start: int, n: int) -> list[str]:
    return [f"ISIC_{start + i:07d}" for i in range(n)]


@pytest.fixture(scope="module")
def isic2018(tmp_path_factory) -> tuple[Path, float]:
    root = tmp_path_factory.mktemp("isic2018")
    start = time.perf_counter()
    make_isic2018(root, n_train=24, n_val=3, n_test=2, image_size=(128, 128), seed=0)
    return root, time.perf_counter() - start


@pytest.fixture(scope="module")
def isic2017(tmp_path_factory) -> Path:
    return make_isic2017(tmp_path_factory.mktemp("isic2017"), n_train=18, n_val=3, n_test=3, seed=0)


@pytest.fixture(scope="module")
def isic2016(tmp_path_factory) -> Path:
    return make_isic2016(tmp_path_factory.mktemp("isic2016"), n_train=9, n_test=6, seed=0)


def test_isic2018_round_trip_through_reader(isic2018):
    root, seconds = isic2018
    assert seconds < 10.0, f"24 images at 128x128 took {seconds:.1f} s"
    expected = {"train": _ids(0, 24), "validation": _ids(100_000, 3), "test": _ids(200_000, 2)}
    for split, ids in expected.items():
        records = read_isic2018(root, split, tasks=(1, 2))
        assert [r.image_id for r in records] == ids
        assert set(records[0].mask_paths) == {"lesion", *layouts.ISIC2018_ATTRIBUTES}
        assert records[0].image_path.parent.name == layouts.ISIC2018_LAYOUT[split]["images"]


def test_isic2018_masks_are_binary_and_sized_like_their_images(isic2018):
    for record in read_isic2018(isic2018[0], "train", tasks=(1, 2), validate="header"):
        image = _pixels(record.image_path)
        assert image.shape == (128, 128, 3)
        for path in record.mask_paths.values():
            mask = _pixels(path)
            assert mask.shape == image.shape[:2], path
            assert set(np.unique(mask)) <= {0, 255}, path
        assert _pixels(record.mask_paths["lesion"]).any()


def test_isic2018_attributes_sit_in_the_lesion_and_several_images_have_none(isic2018):
    records = read_isic2018(isic2018[0], "train", tasks=(1, 2), validate="header")
    without_attributes = 0
    seen = dict.fromkeys(layouts.ISIC2018_ATTRIBUTES, 0)
    for record in records:
        lesion = _pixels(record.mask_paths["lesion"]) > 0
        masks = {a: _pixels(record.mask_paths[a]) > 0 for a in layouts.ISIC2018_ATTRIBUTES}
        without_attributes += not any(m.any() for m in masks.values())
        for name, mask in masks.items():
            seen[name] += bool(mask.any())
            if name == "streaks" and mask.any():  # radial lines across the border
                assert 0 < (mask & lesion).sum() < mask.sum()
            elif mask.any():
                assert (mask & ~lesion).sum() == 0, (record.image_id, name)
    assert without_attributes >= 2
    assert all(count >= 1 for count in seen.values()), seen


def _lesion_statistics(records) -> dict[str, np.ndarray]:
    """Per class: (mean grey level in the lesion, lesion area fraction, colour spread)."""
    by_class: dict[str, list] = {}
    for record in records:
        image = _pixels(record.image_path).astype(np.float64)
        lesion = _pixels(record.mask_paths["lesion"]) > 0
        if record.labels["melanoma"]:
            name = "melanoma"
        elif record.labels["seborrheic_keratosis"]:
            name = "seborrheic_keratosis"
        else:
            name = "nevus"
        by_class.setdefault(name, []).append(
            (image.mean(-1)[lesion].mean(), lesion.mean(), image[lesion].std(0).mean())
        )
    return {name: np.mean(values, axis=0) for name, values in by_class.items()}


def test_isic2017_labels_follow_the_visible_features(isic2017):
    records = read_isic2017(isic2017, "train", parts=(1, 3))
    assert [r.image_id for r in records] == _ids(0, 18)
    counts = np.sum([[r.labels["melanoma"], r.labels["seborrheic_keratosis"]] for r in records], 0)
    assert counts.tolist() == [6, 6]
    stats = _lesion_statistics(records)
    darkness, area, spread = 0, 1, 2
    # melanoma: darkest, largest, most multi-coloured; keratosis: lightest
    assert stats["melanoma"][darkness] < stats["nevus"][darkness] < stats["seborrheic_keratosis"][darkness]
    assert stats["melanoma"][area] > 1.5 * max(stats["nevus"][area], stats["seborrheic_keratosis"][area])
    assert stats["melanoma"][spread] > stats["nevus"][spread]


def test_isic2017_part2_superpixels_and_features(isic2017):
    records = read_isic2017(isic2017, "validation", parts=(1, 2), validate="header")
    assert [r.image_id for r in records] == _ids(100_000, 3)
    for record in records:
        rgb = _pixels(record.extra["superpixels"]).astype(np.int64)
        index = rgb[..., 0] + (rgb[..., 1] << 8) + (rgb[..., 2] << 16)
        assert rgb.shape == _pixels(record.image_path).shape
        assert np.array_equal(np.unique(index), np.arange(index.max() + 1))
        features = json.loads(record.extra["features"].read_text())
        assert set(features) == set(layouts.ISIC2017_FEATURES)
        lesion = _pixels(record.mask_paths["lesion"]) > 0
        touching_lesion = set(np.unique(index[lesion]).tolist())
        for name, values in features.items():
            assert len(values) == index.max() + 1 and set(values) <= {0, 1}
            positive = {i for i, v in enumerate(values) if v}
            if name != "streaks":
                assert positive <= touching_lesion, (record.image_id, name)


def test_encode_superpixels_matches_the_isic_rgb_encoding():
    index = np.array([[0, 1], [256, 0x030201]])
    expected = np.array([[[0, 0, 0], [1, 0, 0]], [[0, 1, 0], [1, 2, 3]]], np.uint8)
    assert np.array_equal(encode_superpixels(index), expected)


def test_isic2017_metadata_csv_sits_among_the_images(isic2017):
    folder = isic2017 / layouts.ISIC2017_LAYOUT["test"]["images"]
    with open(folder / f"{folder.name}_metadata.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["image_id"] for row in rows] == _ids(200_000, 3)
    assert [r.image_id for r in read_isic2017(isic2017, "test", parts=(3,))] == _ids(200_000, 3)


def test_isic2016_csvs_follow_the_official_conventions(isic2016):
    train_csv = isic2016 / layouts.ISIC2016_LAYOUT["train"]["part3"]
    test_csv = isic2016 / layouts.ISIC2016_LAYOUT["test"]["part3"]
    train_rows = train_csv.read_text().splitlines()
    test_rows = test_csv.read_text().splitlines()
    assert all(re.fullmatch(r"ISIC_\d{7},(benign|malignant)", row) for row in train_rows)
    assert all(re.fullmatch(r"ISIC_\d{7},(0\.0|1\.0)", row) for row in test_rows)
    records = read_isic2016_part3(isic2016, "train")
    assert [r.labels["melanoma"] for r in records] == [float(row.endswith("malignant")) for row in train_rows]
    assert sum(r.labels["melanoma"] for r in records) == 3  # a third of 9
    part1 = read_isic2016_part1(isic2016, "test")
    assert [r.image_id for r in part1] == _ids(200_000, 6)
    assert part1[0].mask_paths["lesion"].name.endswith(layouts.ISIC2016_MASK_SUFFIX)


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.*"))}

    kwargs = dict(n_train=3, n_val=1, n_test=0, image_size=(64, 64))
    first = files(make_isic2017(tmp_path / "a", seed=7, **kwargs))
    again = files(make_isic2017(tmp_path / "b", seed=7, **kwargs))
    other = files(make_isic2017(tmp_path / "c", seed=8, **kwargs))
    assert first == again
    assert first.keys() == other.keys()
    image = f"{layouts.ISIC2017_LAYOUT['train']['images']}/ISIC_0000000.jpg"
    assert first[image] != other[image]


def test_varying_sizes_keep_masks_matched(tmp_path):
    root = make_isic2018(tmp_path, n_train=6, n_val=0, n_test=0, image_size=(64, 96), vary_size=True)
    records = read_isic2018(root, "train", tasks=(1, 2))  # checks mask sizes
    sizes = {_pixels(r.image_path).shape[:2] for r in records}
    assert len(sizes) > 1
    assert all(48 <= h <= 80 and 72 <= w <= 120 for h, w in sizes)
    assert not (root / layouts.ISIC2018_LAYOUT["validation"]["images"]).exists()


def test_ultrasound_labelme_round_trip(tmp_path):
    root = make_ultrasound_labelme(tmp_path / "us", n=6, image_size=(96, 112), label_map=LABEL_MAP)
    records = read_labelme(root, LABEL_MAP)
    assert [r.image_id for r in records] == [f"us_{i:04d}" for i in range(6)]
    for i, record in enumerate(records):
        image = _pixels(record.image_path)
        classes = _pixels(record.mask_paths["classes"])
        assert classes.shape == image.shape[:2] == (96, 112)
        annotation = json.loads((root / f"us_{i:04d}.json").read_text())
        labels = [shape["label"] for shape in annotation["shapes"]]
        assert labels == (["kidney"] if i % 3 == 0 else ["kidney", "hydronephrosis"])
        assert (classes == 1).any()
        if i % 3:
            # the annotated hydronephrosis is the dark region inside the kidney
            assert image[classes == 2].mean() < 0.5 * image[classes == 1].mean()
        else:
            assert not (classes == 2).any()


@pytest.mark.parametrize("kind, values", [("dermoscopy", {0, 255}), ("ultrasound", {0, 1, 2})])
def test_mask_folder_round_trip(tmp_path, kind, values):
    root = make_mask_folder(tmp_path, n=3, image_size=(64, 64), kind=kind, mask_suffix="_mask")
    classes = None if kind == "dermoscopy" else 3
    records = read_mask_folder(root / "images", root / "masks", mask_suffix="_mask", classes=classes)
    assert [r.image_id for r in records] == ["img_0000", "img_0001", "img_0002"]
    found = set().union(*(np.unique(_pixels(r.mask_paths["mask"])).tolist() for r in records))
    assert found == values


def test_marker_says_synthetic(isic2016, tmp_path):
    assert is_synthetic(isic2016)
    assert "SYNTHETIC" in (isic2016 / "SYNTHETIC.txt").read_text()
    assert not is_synthetic(tmp_path)


def test_command_line_writes_a_readable_set(tmp_path, capsys):
    args = ["isic2018", str(tmp_path), "--n-train", "2", "--n-val", "1", "--n-test", "0"]
    assert main([*args, "--image-size", "48", "64", "--seed", "3"]) == 0
    assert str(tmp_path) in capsys.readouterr().out
    records = read_isic2018(tmp_path, "train")
    assert _pixels(records[0].image_path).shape == (48, 64, 3)
    assert len(read_isic2018(tmp_path, "validation")) == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(image_size=(16, 64)), "image_size"),
        (dict(image_size=(64,)), "image_size"),
        (dict(n_train=-1), "n_train"),
    ],
)
def test_bad_arguments_name_the_argument(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_isic2018(tmp_path, **kwargs)
