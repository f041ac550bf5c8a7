"""SLIC superpixel maps and their cache (zoo.sanet.superpixels)."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from skimage.segmentation import slic

from data_tools.imageio import load_image
from data_tools.isic import read_isic2018
from data_tools.layouts import ISIC2018_ATTRIBUTES
from data_tools.pipeline import decode_label_map, segmentation_dataset
from data_tools.preprocess import InputSpec
from data_tools.records import BadInputPolicy, DatasetError, Record
from data_tools.synthetic import make_isic2018
from zoo.sanet import superpixels as sp
from zoo.sanet.region_shuffle import RegionShuffle

SMALL = sp.SlicParams(n_segments=20, max_segments=32, max_side=None)
SPEC = InputSpec(image_size=(16, 16), scale="unit")


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = make_isic2018(tmp_path_factory.mktemp("isic2018"), n_train=3, n_val=0, n_test=0, image_size=(40, 56))
    return read_isic2018(root, "train", tasks=(2,))


def _checkerboard(cell=11, size=(64, 96)):
    y, x = np.mgrid[: size[0], : size[1]]
    return np.repeat((((y // cell) + (x // cell)) % 2 * 255).astype(np.uint8)[..., None], 3, axis=-1)


def test_relabel_consecutive_keeps_order():
    labels, count = sp.relabel_consecutive(np.array([[5, 9], [5, 100]]))
    np.testing.assert_array_equal(labels, [[0, 1], [0, 2]])
    assert count == 3 and labels.dtype == np.int32


def test_slic_map_is_consecutive_and_bounded_when_slic_overshoots():
    image = _checkerboard()
    params = sp.SlicParams(n_segments=30, max_segments=30, compactness=1.0, sigma=0.0, max_side=None)
    raw = slic(image, n_segments=30, compactness=1.0, sigma=0.0, start_label=0)
    assert len(np.unique(raw)) > params.max_segments  # the case the bound exists for
    labels = sp.slic_superpixels(image, params)
    count = labels.max() + 1
    assert count <= params.max_segments
    np.testing.assert_array_equal(np.unique(labels), np.arange(count))


def test_slic_map_matches_skimage_when_within_bound():
    image = _checkerboard(cell=8)
    labels = sp.slic_superpixels(image, SMALL)
    raw = slic(image, n_segments=SMALL.n_segments, compactness=SMALL.compactness, sigma=SMALL.sigma, start_label=0)
    expected, _ = sp.relabel_consecutive(raw)
    np.testing.assert_array_equal(labels, expected)


def test_large_images_are_segmented_at_working_size():
    image = np.zeros((300, 500, 3), np.uint8)
    assert sp.slic_superpixels(image, sp.SlicParams(max_side=100)).shape == (60, 100)
    assert sp.working_size(300, 500, None) == (300, 500)
    assert sp.working_size(30, 50, 100) == (30, 50)


@pytest.mark.parametrize(
    "field, value", [("n_segments", 0), ("max_segments", 70000), ("compactness", 0.0), ("max_side", 4)]
)
def test_bad_params_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        sp.SlicParams(**{field: value})


def test_params_key_changes_with_every_setting():
    keys = {
        sp.SlicParams().key,
        sp.SlicParams(n_segments=100).key,
        sp.SlicParams(compactness=20).key,
        sp.SlicParams(sigma=0).key,
        sp.SlicParams(max_segments=300).key,
        sp.SlicParams(max_side=None).key,
    }
    assert len(keys) == 6


def test_cache_writes_beside_the_data_and_reuses_maps(records, monkeypatch):
    cached = sp.cache_superpixels(records, SMALL)
    assert [r.image_id for r in cached] == [r.image_id for r in records]
    assert [r.mask_paths for r in cached] == [r.mask_paths for r in records]
    for record in cached:
        path = record.extra[sp.SUPERPIXELS]
        image_dir = record.image_path.parent
        assert (
            path
            == image_dir.with_name(image_dir.name + "_superpixels") / SMALL.key / f"{record.image_id}_superpixels.png"
        )
        expected = sp.slic_superpixels(load_image(record.image_path), SMALL)
        np.testing.assert_array_equal(sp.read_superpixel_map(path, SMALL.max_segments), expected)

    def fail(*_):
        raise AssertionError("recomputed an up-to-date map")

    monkeypatch.setattr(sp, "slic_superpixels", fail)
    assert sp.cache_superpixels(records, SMALL) == cached

    stale = cached[0]
    os.utime(stale.image_path, (stale.extra[sp.SUPERPIXELS].stat().st_mtime + 10,) * 2)
    with pytest.raises(AssertionError, match="recomputed"):
        sp.cache_superpixels(records[:1], SMALL)


def test_other_params_get_another_cache(records, tmp_path):
    first = sp.cache_superpixels(records[:1], SMALL, cache_dir=tmp_path)
    second = sp.cache_superpixels(
        records[:1], sp.SlicParams(n_segments=10, max_segments=32, max_side=None), cache_dir=tmp_path
    )
    assert first[0].extra[sp.SUPERPIXELS] != second[0].extra[sp.SUPERPIXELS]
    assert first[0].extra[sp.SUPERPIXELS].is_file() and second[0].extra[sp.SUPERPIXELS].is_file()


def test_unreadable_image_is_named_or_skipped(records, tmp_path):
    broken = tmp_path / "ISIC_9999999.jpg"
    broken.write_bytes(b"\xff\xd8\xff not really a jpeg")
    bad = Record("ISIC_9999999", broken)
    with pytest.raises(DatasetError, match="ISIC_9999999.jpg"):
        sp.cache_superpixels([bad], SMALL, cache_dir=tmp_path)
    policy = BadInputPolicy(skip_bad=True)
    kept = sp.cache_superpixels([records[0], bad], SMALL, cache_dir=tmp_path, skip_bad=policy)
    assert [r.image_id for r in kept] == [records[0].image_id]
    assert len(policy.skipped) == 1 and "ISIC_9999999.jpg" in str(policy.skipped[0])


def test_read_rejects_8bit_maps_and_labels_out_of_bound(tmp_path):
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(rgb)
    with pytest.raises(DatasetError, match="16-bit"):
        sp.read_superpixel_map(rgb)
    high = sp.write_superpixel_map(tmp_path / "high.png", np.full((4, 4), 40))
    with pytest.raises(DatasetError, match="40 >= max_segments=32"):
        sp.read_superpixel_map(high, max_segments=32)
    with pytest.raises(ValueError, match="labels"):
        sp.write_superpixel_map(tmp_path / "neg.png", np.full((4, 4), -1))


def test_decode_resizes_to_the_image_with_nearest_neighbour(tmp_path):
    labels = np.arange(6 * 8).reshape(6, 8) + 300  # beyond 8 bits
    path = sp.write_superpixel_map(tmp_path / "map.png", labels)
    decoded = decode_label_map(tf.constant(str(path)), (12, 4)).numpy()
    rows = np.floor((np.arange(12) + 0.5) * 6 / 12).astype(int)
    columns = np.floor((np.arange(4) + 0.5) * 8 / 4).astype(int)
    np.testing.assert_array_equal(decoded[..., 0], labels[np.ix_(rows, columns)])
    assert decoded.dtype == np.int32
    np.testing.assert_array_equal(decode_label_map(tf.constant(str(path))).numpy()[..., 0], labels)


def _with_maps(records, folder, labels_of):
    """The records with a superpixel map ``labels_of(index)`` (``(h, w)``) each."""
    return [
        dataclasses.replace(
            record,
            extra={
                sp.SUPERPIXELS: sp.write_superpixel_map(
                    folder / f"{record.image_id}{sp.SUPERPIXEL_SUFFIX}", labels_of(index)
                )
            },
        )
        for index, record in enumerate(records)
    ]


def _attribute_batches(records, **kwargs):
    dataset = sp.superpixel_segmentation_dataset(
        records, SPEC, mask_names=ISIC2018_ATTRIBUTES, batch_size=3, training=False, cache=False, **kwargs
    )
    return list(dataset)


def test_reading_a_map_with_a_label_out_of_bound_names_the_file(records, tmp_path):
    """Under XLA an id >= max_segments is dropped silently: the tf.data reader refuses it."""
    inside = _with_maps(records, tmp_path, lambda index: np.full((8, 8), 31))
    [(inputs, _)] = _attribute_batches(inside, max_segments=32)
    assert inputs["superpixels"].numpy().max() == 31
    outside = _with_maps(records, tmp_path, lambda index: np.full((8, 8), 40 if index == 1 else 0))
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=rf"{records[1].image_id}_superpixels.png\] \[holds label\] \[40\] "
        rf"\[but its labels must be < 32\]",
    ):
        _attribute_batches(outside, max_segments=32)


def test_pipeline_and_shuffle_bounds_are_checked(records, tmp_path):
    mapped = _with_maps(records, tmp_path, lambda index: np.zeros((8, 8)))
    with pytest.raises(ValueError, match="region_shuffle.max_segments=64 exceeds max_segments=32"):
        _attribute_batches(mapped, max_segments=32, region_shuffle=RegionShuffle(max_segments=64))
    with pytest.raises(ValueError, match=r"extra_map_bounds: \['labels'\] are not in extra_maps"):
        segmentation_dataset(
            mapped,
            SPEC,
            mask_names=ISIC2018_ATTRIBUTES,
            batch_size=1,
            training=False,
            extra_maps=(sp.SUPERPIXELS,),
            extra_map_bounds={"labels": 4},
        )
    with pytest.raises(ValueError, match="extra_map_bounds: bounds must be positive ints"):
        segmentation_dataset(
            mapped,
            SPEC,
            mask_names=ISIC2018_ATTRIBUTES,
            batch_size=1,
            training=False,
            extra_maps=(sp.SUPERPIXELS,),
            extra_map_bounds={sp.SUPERPIXELS: 0},
        )


def test_import_zoo_leaves_out_scikit_image_and_the_superpixel_code():
    """``import zoo`` stays light: no scikit-image, no SLIC code (zoo.sanet.superpixels and
    zoo.sanet.region_shuffle are imported on demand)."""
    script = (
        "import sys\n"
        "import zoo\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'skimage' or m in\n"
        "                ('zoo.sanet.superpixels', 'zoo.sanet.region_shuffle'))\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
