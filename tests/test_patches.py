"""Crops, pads and box crops (data_tools.patches) against hand-computed windows."""

import numpy as np
import pytest

from data_tools.patches import GREY, centre_crop, centre_square_crop, crop_and_resize_boxes, pad_to_square


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


def test_crop_and_resize_boxes_exact_and_align_corners():
    image = _ramp(6, 7)
    same_size = crop_and_resize_boxes(image, [[1, 2, 3, 4]], (3, 4)).numpy()
    np.testing.assert_allclose(same_size[0], image[1:4, 2:6], atol=1e-4)
    small = np.array([[0, 1], [2, 3]], np.float32)[..., None]
    upsampled = crop_and_resize_boxes(small, [[0, 0, 2, 2]], (3, 3)).numpy()[0, ..., 0]
    np.testing.assert_allclose(upsampled, [[0, 0.5, 1], [1, 1.5, 2], [2, 2.5, 3]])
