"""Crops, pads and ARL-CNN patches (data_tools.patches) against hand-computed boxes."""
import numpy as np
import pytest
import tensorflow as tf

from data_tools.patches import (
    ARL_TEST_PATCHES,
    GREY,
    arl_patch_boxes,
    arl_test_patches,
    arl_training_patches,
    average_over_patches,
    centre_crop,
    centre_square_crop,
    crop_and_resize_boxes,
    pad_to_square,
)


def _ramp(height, width, channels=1):
    return np.arange(height * width * channels, dtype=np.float32).reshape(height, width, channels)


@pytest.mark.parametrize(
    "shape, box",  # box = (top, left, side)
    [((10, 20), (1, 6, 8)), ((7, 9), (1, 2, 5)), ((20, 10), (6, 1, 8)), ((5, 5), (0, 0, 4))],
)
def test_centre_square_crop_boxes(shape, box):
    image = _ramp(*shape)
    top, left, side = box
    np.testing.assert_array_equal(centre_square_crop(image, 0.8).numpy(), image[top : top + side, left : left + side])


def test_centre_square_crop_batched_and_bad_fraction():
    images = np.stack([_ramp(10, 20), _ramp(10, 20) + 1])
    np.testing.assert_array_equal(centre_square_crop(images, 0.8).numpy(), images[:, 1:9, 6:14])
    with pytest.raises(ValueError, match="fraction"):
        centre_square_crop(images, 1.5)


def test_pad_to_square_grey_centred():
    image = np.ones((2, 5, 3), np.float32)
    padded = pad_to_square(image).numpy()
    assert padded.shape == (5, 5, 3)
    # side 5: one row above, two below (the odd row goes to the bottom).
    np.testing.assert_array_equal(padded[1:3], 1.0)
    np.testing.assert_allclose(padded[[0, 3, 4]], GREY)
    tall = pad_to_square(np.full((3, 1, 1), 7, np.uint8), value=0).numpy()
    np.testing.assert_array_equal(tall[..., 0], [[0, 7, 0]] * 3)


def test_centre_crop_window():
    image = _ramp(9, 8)
    np.testing.assert_array_equal(centre_crop(image, (4, 4)).numpy(), image[2:6, 2:6])


def test_arl_boxes_centred_without_jitter():
    boxes = arl_patch_boxes(10, 20, 4, tf.constant([0, 0]), jitter=0.0).numpy()
    # scales 1/5 .. 4/5 of (10, 20); offsets half the free margin.
    np.testing.assert_array_equal(boxes, [[4, 8, 2, 4], [3, 6, 4, 8], [2, 4, 6, 12], [1, 2, 8, 16]])


def test_arl_boxes_random_inside_central_band():
    boxes = arl_patch_boxes(50, 70, 60, tf.constant([3, 4])).numpy()
    sizes = boxes[:, 2:]
    assert sorted(map(tuple, np.unique(sizes, axis=0))) == [(10, 14), (20, 28), (30, 42), (40, 56)]
    assert all(np.sum((sizes == s).all(axis=1)) == 15 for s in np.unique(sizes, axis=0))
    free = np.array([50, 70]) - sizes
    offsets = boxes[:, :2]
    # jitter 0.5: within a quarter of the free margin around the centred offset.
    assert (offsets >= np.floor(free / 4)).all() and (offsets <= np.ceil(3 * free / 4)).all()
    assert len(np.unique(offsets, axis=0)) > 30
    again = arl_patch_boxes(50, 70, 60, tf.constant([3, 4])).numpy()
    np.testing.assert_array_equal(boxes, again)


def test_crop_and_resize_boxes_exact_and_align_corners():
    image = _ramp(6, 7)
    same_size = crop_and_resize_boxes(image, [[1, 2, 3, 4]], (3, 4)).numpy()
    np.testing.assert_allclose(same_size[0], image[1:4, 2:6], atol=1e-4)
    small = np.array([[0, 1], [2, 3]], np.float32)[..., None]
    upsampled = crop_and_resize_boxes(small, [[0, 0, 2, 2]], (3, 3)).numpy()[0, ..., 0]
    np.testing.assert_allclose(upsampled, [[0, 0.5, 1], [1, 1.5, 2], [2, 2.5, 3]])


def test_arl_training_patches_are_the_boxes():
    image = np.random.default_rng(0).random((30, 40, 3)).astype(np.float32)
    seed = tf.constant([1, 2])
    patches = arl_training_patches(image, seed, count=8, size=(6, 6)).numpy()
    boxes = arl_patch_boxes(30, 40, 8, seed).numpy()
    assert patches.shape == (8, 6, 6, 3)
    for patch, (top, left, height, width) in zip(patches, boxes):
        crop = image[top : top + height, left : left + width]
        # Corner pixels of the box land on the patch corners (align-corners sampling).
        np.testing.assert_allclose(patch[[0, 0, -1, -1], [0, -1, 0, -1]], crop[[0, 0, -1, -1], [0, -1, 0, -1]], atol=1e-5)


def test_arl_test_patches_deterministic():
    image = np.random.default_rng(1).random((30, 40, 3)).astype(np.float32)
    first = arl_test_patches(image).numpy()
    assert first.shape == (ARL_TEST_PATCHES, 224, 224, 3)
    np.testing.assert_array_equal(first, arl_test_patches(image).numpy())


def test_average_over_patches():
    scores = np.array([[1.0], [3.0], [2.0], [4.0]])
    np.testing.assert_allclose(average_over_patches(scores, 2).numpy(), [[2.0], [3.0]])
