"""SANet's sharpening augmentations: CLAHE (data_tools.clahe) and emboss (data_tools.augment)."""

import cv2
import numpy as np
import pytest
import tensorflow as tf
from scipy.ndimage import correlate
from skimage import data

from data_tools.augment import Augmentation, emboss
from data_tools.clahe import clahe, clahe_lightness

SEED = tf.constant([5, 6])


def _opencv_clahe(grey_uint8, clip_limit, tile_grid):
    rows, cols = tile_grid
    return cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(cols, rows)).apply(grey_uint8).astype(np.float64)


@pytest.fixture(scope="module")
def astronaut():
    return np.ascontiguousarray(data.astronaut()[::2, ::2])  # 256 x 256 RGB uint8


# ---------------------------------------------------------------- CLAHE


@pytest.mark.parametrize(
    "clip_limit, tile_grid, shape",
    [
        (2.0, (8, 8), (256, 256)),  # sides multiples of the grid: no padding
        (1.0, (3, 5), (97, 131)),  # neither side a multiple: both padded
        (4.0, (2, 4), (100, 150)),  # only the width is not: OpenCV pads both sides
    ],
)
def test_clahe_matches_opencv_on_grey_image(clip_limit, tile_grid, shape):
    grey = np.ascontiguousarray(data.camera()[: shape[0], : shape[1]])
    ours = clahe(grey[..., None] / np.float32(255), clip_limit, tile_grid).numpy()[..., 0] * 255
    difference = np.abs(ours - _opencv_clahe(grey, clip_limit, tile_grid))
    # OpenCV rounds its tile mappings to 8 bits before interpolating, we do not.
    assert difference.max() <= 1.0
    assert difference.mean() < 0.4


def test_clahe_matches_opencv_per_channel_on_rgb_image(astronaut):
    ours = clahe(astronaut / np.float32(255), 3.0, (8, 8)).numpy() * 255
    expected = np.stack([_opencv_clahe(astronaut[..., c].copy(), 3.0, (8, 8)) for c in range(3)], axis=-1)
    difference = np.abs(ours - expected)
    assert difference.max() <= 1.0
    assert difference.mean() < 0.4


def test_clahe_lightness_equalises_hsv_value_and_keeps_colours(astronaut):
    rgb = astronaut / np.float32(255)
    out = clahe_lightness(rgb, 2.0, (4, 4)).numpy()
    value_out = out.max(axis=-1)
    expected_value = _opencv_clahe(cv2.cvtColor(astronaut, cv2.COLOR_RGB2HSV)[..., 2], 2.0, (4, 4))
    assert np.abs(value_out * 255 - expected_value).max() <= 1.0
    # Hue and saturation kept: every pixel is scaled as a whole (rgb_out V_in = rgb_in V_out).
    value_in = rgb.max(axis=-1, keepdims=True)
    np.testing.assert_allclose(out * value_in, rgb * value_out[..., None], atol=1e-5)


def test_clahe_of_constant_image_is_constant_and_hand_computed():
    image = np.full((32, 32, 1), 100 / 255, np.float32)
    out = clahe(image, 2.0, (4, 4)).numpy()
    # Tiles of 8 x 8 = 64 pixels, all at level 100. Clip limit max(int(2 * 64 / 256), 1)
    # = 1: bin 100 keeps 1 count, the excess 63 < 256 bins goes one count to every
    # (256 // 63 = 4)-th bin from 0: bins 0, 4, ..., 100 (26 of them) up to level 100.
    np.testing.assert_allclose(out, (26 + 1) / 64, atol=1e-6)
    assert round(27 / 64 * 255) == _opencv_clahe(np.full((32, 32), 100, np.uint8), 2.0, (4, 4))[0, 0]


def test_clahe_of_one_tile_without_clipping_is_global_equalisation():
    levels = np.random.default_rng(0).integers(40, 200, (20, 30))
    out = clahe(levels[..., None] / np.float32(255), None, (1, 1)).numpy()[..., 0]
    cdf = np.cumsum(np.bincount(levels.ravel(), minlength=256)) / levels.size
    np.testing.assert_allclose(out, cdf[levels], atol=1e-6)


def test_clahe_runs_with_dynamic_size_and_in_tf_data():
    image = np.random.default_rng(1).random((37, 45, 1)).astype(np.float32)
    eager = clahe(image, 2.5, (4, 4)).numpy()

    @tf.function(input_signature=[tf.TensorSpec((None, None, 1), tf.float32)])
    def dynamic(x):
        return clahe(x, tf.constant(2.5), (4, 4))

    np.testing.assert_allclose(dynamic(image).numpy(), eager, atol=1e-6)
    dataset = tf.data.Dataset.from_tensors(image).map(lambda x: clahe(x, 2.5, (4, 4)))
    assert dataset.element_spec.shape == image.shape  # the static shape is kept
    np.testing.assert_allclose(next(iter(dataset)).numpy(), eager, atol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="too small for the tile grid"):
        dynamic(np.zeros((4, 30, 1), np.float32))


def test_clahe_rejects_bad_arguments():
    image = np.zeros((16, 16, 1), np.float32)
    with pytest.raises(ValueError, match=r"too small for the tile grid \(16, 8\)"):
        clahe(image, 2.0, (16, 8))
    with pytest.raises(ValueError, match="tile_grid must be"):
        clahe(image, 2.0, (0, 8))
    with pytest.raises(ValueError, match="clip_limit must be > 0"):
        clahe(image, 0.0)
    with pytest.raises(TypeError, match="expected a float image"):
        clahe(np.zeros((16, 16, 1), np.uint8))
    with pytest.raises(ValueError, match=r"RGB image \[H, W, 3\]"):
        clahe_lightness(np.zeros((16, 16, 1), np.float32))


# ---------------------------------------------------------------- emboss


def test_emboss_matches_scipy_correlation():
    image = np.random.default_rng(2).random((9, 11, 2)).astype(np.float32)
    alpha, strength = 0.7, 0.4
    relief = np.array([[-1 - strength, -strength, 0], [-strength, 1, strength], [0, strength, 1 + strength]])
    kernel = (1 - alpha) * np.pad([[1.0]], 1) + alpha * relief
    # cv2.filter2D (imgaug's Emboss) correlates; scipy's "mirror" is TF's REFLECT.
    expected = np.stack([correlate(image[..., c], kernel, mode="mirror") for c in range(2)], axis=-1)
    np.testing.assert_allclose(emboss(image, alpha, strength).numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(emboss(image, 0.0, strength).numpy(), image, atol=1e-6)


# ---------------------------------------------------------------- Augmentation


def test_new_seed_streams_leave_the_existing_ones_unchanged():
    seed = tf.constant([3, 4], tf.int64)
    older = tf.random.experimental.stateless_split(seed, 7)
    np.testing.assert_array_equal(tf.random.experimental.stateless_split(seed, 9)[:7], older)
    image = np.random.default_rng(3).random((16, 16, 3)).astype(np.float32)
    base = dict(contrast=(0.8, 1.2), noise_std=(0.01, 0.03), blur_sigma=(0.5, 1.5), blur_probability=1.0)
    without, _ = Augmentation(**base)(image, seed=seed)
    never, _ = Augmentation(
        **base, clahe_clip_limit=(1.0, 4.0), clahe_probability=0.0, emboss_alpha=(0.0, 1.0), emboss_probability=0.0
    )(image, seed=seed)
    np.testing.assert_array_equal(never.numpy(), without.numpy())


def test_augmentation_applies_clahe_and_emboss_as_drawn():
    image = np.random.default_rng(4).random((24, 24, 3)).astype(np.float32)
    with_clahe, _ = Augmentation(clahe_clip_limit=(3.0, 3.0), clahe_tile_grid=(2, 3), clahe_probability=1.0)(
        image, seed=SEED
    )
    np.testing.assert_allclose(with_clahe.numpy(), clahe_lightness(image, 3.0, (2, 3)).numpy(), atol=1e-6)
    grey = image[..., :1]
    with_clahe, _ = Augmentation(clahe_clip_limit=(3.0, 3.0), clahe_probability=1.0)(grey, seed=SEED)
    np.testing.assert_allclose(with_clahe.numpy(), clahe(grey, 3.0).numpy(), atol=1e-6)
    embossed, _ = Augmentation(emboss_alpha=(0.5, 0.5), emboss_strength=(0.8, 0.8), emboss_probability=1.0)(
        image, seed=SEED
    )
    np.testing.assert_allclose(embossed.numpy(), np.clip(emboss(image, 0.5, 0.8).numpy(), 0, 1), atol=1e-6)


def test_augmentation_sharpens_with_the_given_probability_in_tf_data():
    image = np.full((12, 12, 3), 0.5, np.float32)
    image[4:8, 4:8] = 0.2
    augment = Augmentation(emboss_alpha=(1.0, 1.0), emboss_probability=0.3)
    seeds = tf.data.Dataset.random(seed=9).batch(2).take(100)
    changed = [not np.allclose(out, image) for out in seeds.map(lambda s: augment(image, seed=s)[0])]
    assert 0.15 <= np.mean(changed) <= 0.45


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"emboss_alpha": (0.5, 1.5)}, r"emboss_alpha must be \(low, high\) with 0.0 <= low <= high <= 1.0"),
        ({"emboss_strength": (1.0, 0.5)}, "emboss_strength must be"),
        ({"clahe_clip_limit": (0.0, 2.0)}, "clahe_clip_limit must be"),
        ({"clahe_probability": 1.5}, r"clahe_probability must be in \[0, 1\]"),
        ({"emboss_probability": -0.1}, "emboss_probability must be"),
        ({"clahe_tile_grid": (8, 0)}, "Augmentation.clahe_tile_grid must be"),
    ],
)
def test_augmentation_rejects_bad_sharpening_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        Augmentation(**arguments)


def test_noise_types_are_drawn_per_image_and_each_is_what_it_says():
    """SANet: "Gaussian noises from different random distributions and types"."""
    from data_tools.augment import NOISE_TYPES

    image = tf.fill((16, 16, 3), 0.5)
    grey = Augmentation(noise_std=(0.1, 0.1), noise_types=("additive_grey",))(image, seed=tf.constant([1, 2]))[0]
    np.testing.assert_allclose(grey[..., 0], grey[..., 2])  # one draw for all channels
    colour = Augmentation(noise_std=(0.1, 0.1))(image, seed=tf.constant([1, 2]))[0]
    assert np.abs(np.asarray(colour[..., 0]) - np.asarray(colour[..., 2])).max() > 1e-3
    dark = tf.zeros((16, 16, 3))
    speckle = Augmentation(noise_std=(0.1, 0.1), noise_types=("multiplicative",))(dark, seed=tf.constant([1, 2]))[0]
    assert np.abs(np.asarray(speckle)).max() == 0.0  # multiplicative noise leaves black black
    mixed = Augmentation(noise_std=(0.1, 0.1), noise_types=NOISE_TYPES)
    kinds = set()
    for seed in range(40):
        out = np.asarray(mixed(image, seed=tf.constant([seed, 7]))[0])
        kinds.add("grey" if np.allclose(out[..., 0], out[..., 1]) else "colour")
    assert kinds == {"grey", "colour"}
    with pytest.raises(ValueError, match="noise_types"):
        Augmentation(noise_types=("salt",))


def test_sanet_augmentation_is_the_papers_list():
    """No flips or rotations by default (the paper names none); the option adds them."""
    from zoo.sanet.recipe import SANET_AUGMENTATION, SANET_GEOMETRIC_AUGMENTATION

    assert not (SANET_AUGMENTATION.horizontal_flip or SANET_AUGMENTATION.vertical_flip or SANET_AUGMENTATION.rotate90)
    assert len(SANET_AUGMENTATION.noise_types) > 1
    assert SANET_AUGMENTATION.contrast and SANET_AUGMENTATION.blur_sigma and SANET_AUGMENTATION.clahe_clip_limit
    assert SANET_AUGMENTATION.emboss_alpha
    assert SANET_GEOMETRIC_AUGMENTATION.rotate90 and SANET_GEOMETRIC_AUGMENTATION.horizontal_flip
