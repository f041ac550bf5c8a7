"""ARL-CNN's multi-scale central patches (zoo.arl_cnn.patches, Zhang et al., ARL-CNN, IEEE TMI 2019 Sec. IV-B)."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from zoo.arl_cnn.patches import (
    ARL_SCALES,
    ARL_TEST_PATCHES,
    ARL_TRAIN_PATCHES,
    arl_patch_boxes,
    arl_test_patches,
    arl_training_patches,
    average_over_patches,
)


def _scale_indices(boxes, height):
    """Each box's index in ARL_SCALES, from its height."""
    heights = np.round(np.array(ARL_SCALES) * height)
    return np.argmax(boxes[:, 2:3] == heights[None, :], axis=1)


def test_boxes_centred_without_jitter():
    boxes = arl_patch_boxes(10, 20, 40, tf.constant([0, 0]), jitter=0.0).numpy()
    # each box one of the four scales of (10, 20), at half the free margin
    centred = {(4, 8, 2, 4), (3, 6, 4, 8), (2, 4, 6, 12), (1, 2, 8, 16)}
    assert set(map(tuple, boxes)) == centred


def test_boxes_random_inside_central_band_and_seeded():
    boxes = arl_patch_boxes(50, 70, 60, tf.constant([3, 4])).numpy()
    sizes = boxes[:, 2:]
    assert set(map(tuple, sizes)) == {(10, 14), (20, 28), (30, 42), (40, 56)}
    free = np.array([50, 70]) - sizes
    offsets = boxes[:, :2]
    # jitter 0.5: within a quarter of the free margin around the centred offset.
    assert (offsets >= np.floor(free / 4)).all() and (offsets <= np.ceil(3 * free / 4)).all()
    assert len(np.unique(offsets, axis=0)) > 30
    np.testing.assert_array_equal(boxes, arl_patch_boxes(50, 70, 60, tf.constant([3, 4])).numpy())
    assert not np.array_equal(boxes, arl_patch_boxes(50, 70, 60, tf.constant([3, 5])).numpy())


def test_each_patch_draws_its_scale_uniformly():
    """Sec. IV-B's scales are drawn per patch (not cycled, which gives every image
    exactly 15 of each in the order 1/5, 2/5, 3/5, 4/5, ...)."""
    per_image = np.stack(
        [
            _scale_indices(arl_patch_boxes(100, 100, ARL_TRAIN_PATCHES, tf.constant([seed, 1])).numpy(), 100)
            for seed in range(200)
        ]
    )
    counts = np.bincount(per_image.ravel(), minlength=4)
    assert stats.chisquare(counts).pvalue > 1e-3  # 12000 patches, uniform over the four scales
    histograms = np.stack([np.bincount(row, minlength=4) for row in per_image])
    assert np.mean((histograms == 15).all(axis=1)) < 0.05  # cycling: every image (15, 15, 15, 15)
    assert not (per_image == np.arange(ARL_TRAIN_PATCHES) % 4).all(axis=1).any()


def test_boxes_reject_bad_arguments():
    for kwargs, message in (
        ({"jitter": 1.5}, "jitter"),
        ({"scales": ()}, "scales"),
        ({"scales": (0.5, 1.2)}, "scales"),
    ):
        with pytest.raises(ValueError, match=f"arl_patch_boxes: {message}"):
            arl_patch_boxes(10, 10, 4, tf.constant([0, 0]), **kwargs)
    with pytest.raises(ValueError, match="count"):
        arl_patch_boxes(10, 10, 0, tf.constant([0, 0]))


def test_training_patches_are_the_boxes():
    image = np.random.default_rng(0).random((30, 40, 3)).astype(np.float32)
    seed = tf.constant([1, 2])
    patches = arl_training_patches(image, seed, count=8, size=(6, 6)).numpy()
    boxes = arl_patch_boxes(30, 40, 8, seed).numpy()
    assert patches.shape == (8, 6, 6, 3)
    for patch, (top, left, height, width) in zip(patches, boxes, strict=True):
        crop = image[top : top + height, left : left + width]
        # Corner pixels of the box land on the patch corners (align-corners sampling).
        np.testing.assert_allclose(
            patch[[0, 0, -1, -1], [0, -1, 0, -1]], crop[[0, 0, -1, -1], [0, -1, 0, -1]], atol=1e-5
        )


def test_test_patches_follow_their_seed():
    image = np.random.default_rng(1).random((30, 40, 3)).astype(np.float32)
    first = arl_test_patches(image, tf.constant([7, 0], tf.int64)).numpy()
    assert first.shape == (ARL_TEST_PATCHES, 224, 224, 3)
    np.testing.assert_array_equal(first, arl_test_patches(image, tf.constant([7, 0], tf.int64)).numpy())
    assert not np.array_equal(first, arl_test_patches(image, tf.constant([8, 0], tf.int64)).numpy())


def test_average_over_patches():
    scores = np.array([[1.0], [3.0], [2.0], [4.0]])
    np.testing.assert_allclose(average_over_patches(scores, 2).numpy(), [[2.0], [3.0]])
