"""CIELAB conversion (data_tools.colour) and model-input preprocessing (data_tools.preprocess)."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from skimage.color import rgb2lab

from data_tools.colour import RGBToLab, lab_to_unit, rgb_to_lab, rgb_to_lab_unit
from data_tools.preprocess import (
    CAFFE_BGR_MEAN,
    IMAGENET_MEAN,
    IMAGENET_STD,
    InputSpec,
    normalize_images,
    preprocess_images,
    resize_images,
    resize_masks,
)

EDGE_COLOURS = np.array(
    [
        [0, 0, 0],
        [1, 1, 1],  # black, white
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],  # primaries
        [1, 1, 0],
        [0, 1, 1],
        [1, 0, 1],  # secondaries
        [0.5, 0.5, 0.5],
        [0.2, 0.2, 0.2],
        [0.04, 0.04, 0.04],
        [0.01, 0.01, 0.01],  # greys, incl. linear segment
    ],
    dtype=np.float64,
)


def _colours() -> np.ndarray:
    random = np.random.default_rng(0).random((500, 3))
    return np.concatenate([EDGE_COLOURS, random]).astype(np.float32)


def test_rgb_to_lab_matches_skimage():
    colours = _colours()
    ours = rgb_to_lab(colours).numpy()
    np.testing.assert_allclose(ours, rgb2lab(colours.astype(np.float64)), atol=0.05)


def test_rgb_to_lab_keeps_leading_dims_and_accepts_uint8():
    image = np.random.default_rng(1).integers(0, 256, (2, 5, 4, 3), dtype=np.uint8)
    ours = rgb_to_lab(image).numpy()
    assert ours.shape == image.shape
    np.testing.assert_allclose(ours.reshape(-1, 3), rgb2lab(image.reshape(-1, 3) / 255.0), atol=0.05)


def test_rgb_to_lab_under_xla():
    colours = _colours()
    compiled = tf.function(rgb_to_lab_unit, jit_compile=True)
    expected = rgb2lab(colours.astype(np.float64))
    expected_unit = (expected + [0, 128, 128]) / [100, 255, 255]
    np.testing.assert_allclose(compiled(tf.constant(colours)).numpy(), expected_unit, atol=0.05 / 255)


def test_lab_to_unit_bounds():
    # L in [0, 100], a/b in [-128, 127] map to [0, 1]; neutral grey to a = b = 128/255.
    lab = tf.constant([[0.0, -128.0, -128.0], [100.0, 127.0, 127.0], [50.0, 0.0, 0.0]])
    np.testing.assert_allclose(lab_to_unit(lab).numpy(), [[0, 0, 0], [1, 1, 1], [0.5, 128 / 255, 128 / 255]], atol=1e-6)
    unit = rgb_to_lab_unit(_colours()).numpy()
    assert unit.min() >= 0.0 and unit.max() <= 1.0


def test_gradient_finite_at_black_and_white():
    rgb = tf.Variable([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.04045, 0.0, 1.0]])
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(rgb_to_lab(rgb))
    gradient = tape.gradient(total, rgb).numpy()
    assert np.isfinite(gradient).all()
    assert np.abs(gradient).sum() > 0


def test_rgb_to_lab_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match="3 channels"):
        rgb_to_lab(tf.zeros((4, 4, 4)))


def test_rgb_to_lab_layer_round_trip(tmp_path):
    inputs = keras.Input((6, 5, 3))
    model = keras.Model(inputs, RGBToLab(unit=False, name="lab")(inputs))
    x = np.random.default_rng(2).random((2, 6, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), rgb2lab(x.astype(np.float64)), atol=0.05)
    path = tmp_path / "lab.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert reloaded.get_layer("lab").get_config()["unit"] is False
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_rgb_to_lab_layer_is_the_tf_function_eager_in_graphs_and_under_xla():
    """The layer is keras.ops (any backend; tests/test_jax_backend.py runs it under JAX)
    and the same maths as the tf.data functions."""
    x = _colours().reshape(2, -1, 4, 3)  # the edge colours and random ones
    image = np.random.default_rng(3).integers(0, 256, (2, 5, 4, 3), dtype=np.uint8)
    for unit, reference in ((True, rgb_to_lab_unit), (False, rgb_to_lab)):
        layer = RGBToLab(unit=unit)
        for rgb in (x, image):
            expected = reference(rgb).numpy()
            for forward in (layer, tf.function(layer), tf.function(layer, jit_compile=True)):
                np.testing.assert_allclose(np.asarray(forward(rgb)), expected, atol=1e-5 if unit else 1e-3, rtol=0)
        lab = np.asarray(RGBToLab(unit=False)(x)).reshape(-1, 3)
        np.testing.assert_allclose(lab, rgb2lab(x.reshape(-1, 3).astype(np.float64)), atol=0.05)
    half = RGBToLab(dtype="mixed_float16")(x)
    assert keras.backend.standardize_dtype(half.dtype) == "float16"
    np.testing.assert_allclose(np.asarray(half, np.float32), rgb_to_lab_unit(x).numpy(), atol=1e-3)


# ---------------------------------------------------------------- preprocess


def test_input_spec_config_round_trip():
    spec = InputSpec((32, 48), colour="rgb", scale="standard", mean=(0.1, 0.2, 0.3), std=(1, 2, 3))
    restored = InputSpec.from_json(json.dumps(json.loads(spec.to_json())))
    assert restored == spec
    assert spec.input_shape == (32, 48, 3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"image_size": (0, 4)}, "image_size"),
        ({"image_size": (4, 4), "colour": "hsv"}, "colour"),
        ({"image_size": (4, 4), "scale": "tanh"}, "scale"),
        ({"image_size": (4, 4), "colour": "lab", "scale": "caffe"}, "colour='lab'"),
        ({"image_size": (4, 4), "scale": "standard"}, "mean"),
        ({"image_size": (4, 4), "mean": (0, 0, 0)}, "only used"),
    ],
)
def test_input_spec_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InputSpec(**kwargs)


def test_normalize_scales_by_hand():
    pixel = np.array([[[0.2, 0.4, 0.6]]], np.float32)
    size = (1, 1)
    caffe = normalize_images(pixel, InputSpec(size, scale="caffe")).numpy()[0, 0]
    np.testing.assert_allclose(
        caffe, [0.6 * 255 - CAFFE_BGR_MEAN[0], 0.4 * 255 - CAFFE_BGR_MEAN[1], 0.2 * 255 - CAFFE_BGR_MEAN[2]], rtol=1e-5
    )
    imagenet = normalize_images(pixel, InputSpec(size, scale="imagenet")).numpy()[0, 0]
    np.testing.assert_allclose(imagenet, (pixel[0, 0] - IMAGENET_MEAN) / IMAGENET_STD, rtol=1e-5)
    raw = normalize_images(pixel, InputSpec(size, scale="raw255")).numpy()[0, 0]
    np.testing.assert_allclose(raw, pixel[0, 0] * 255, rtol=1e-6)
    lab = normalize_images(pixel, InputSpec(size, colour="lab")).numpy()[0, 0]
    np.testing.assert_allclose(
        lab, (rgb2lab(pixel.astype(np.float64))[0, 0] + [0, 128, 128]) / [100, 255, 255], atol=2e-4
    )


def test_caffe_matches_keras_applications():
    image = np.random.default_rng(3).integers(0, 256, (1, 4, 4, 3)).astype(np.float32)
    ours = preprocess_images(image / 255.0, InputSpec((4, 4), scale="caffe")).numpy()
    np.testing.assert_allclose(ours, keras.applications.vgg16.preprocess_input(image.copy()), atol=1e-3)


def test_preprocess_resizes_uint8_batched_and_unbatched():
    spec = InputSpec((8, 6), colour="lab")
    image = np.random.default_rng(4).integers(0, 256, (13, 17, 3), dtype=np.uint8)
    single = preprocess_images(image, spec)
    batch = preprocess_images(np.stack([image, image]), spec)
    assert single.shape == (8, 6, 3) and single.dtype == tf.float32
    assert batch.shape == (2, 8, 6, 3)
    np.testing.assert_allclose(batch[1].numpy(), single.numpy(), atol=1e-6)
    resized = tf.image.resize(image.astype(np.float32) / 255.0, (8, 6)).numpy()
    np.testing.assert_allclose(single.numpy(), rgb_to_lab_unit(resized).numpy(), atol=1e-5)


def test_preprocess_grey_and_xla():
    spec = InputSpec((4, 4), scale="imagenet")
    grey = np.random.default_rng(5).integers(0, 256, (1, 7, 9, 1), dtype=np.uint8)
    eager = preprocess_images(grey, spec).numpy()
    compiled = tf.function(lambda x: preprocess_images(x, spec), jit_compile=True)(tf.constant(grey)).numpy()
    np.testing.assert_allclose(compiled, eager, atol=1e-5)
    unit = resize_images(grey, spec).numpy()
    np.testing.assert_array_equal(unit[..., 0], unit[..., 2])  # grey repeated to RGB


def test_preprocess_rejects_bad_images():
    spec = InputSpec((4, 4))
    with pytest.raises(ValueError, match="channels"):
        preprocess_images(tf.zeros((5, 5, 4)), spec)
    with pytest.raises(ValueError, match=r"\[H, W, C\]"):
        preprocess_images(tf.zeros((5, 5)), spec)


def test_preprocess_pad_fit_is_grey_letterbox():
    # 2 x 4 white image -> 4 x 4 with one grey row above and below (A-PSPNet).
    spec = InputSpec((4, 4), fit="pad")
    out = resize_images(np.full((2, 4, 3), 255, np.uint8), spec).numpy()
    grey = 128 / 255
    np.testing.assert_allclose(out[[0, 3]], grey, atol=1e-6)
    np.testing.assert_allclose(out[1:3], 1.0, atol=1e-6)


def test_preprocess_crop_fit_and_pre_crop_size():
    # 10 x 20 image: centre square of side 8 starts at (1, 6); resized 8 -> 8 is exact,
    # then the centred 4 x 4 window of the 8 x 8 starts at (2, 2).
    image = np.arange(10 * 20 * 3, dtype=np.float32).reshape(10, 20, 3) / (10 * 20 * 3)
    spec = InputSpec((4, 4), fit="crop", pre_crop_size=(8, 8))
    assert spec.crop_fraction == 0.8 and spec.resize_size == (8, 8)
    np.testing.assert_array_equal(resize_images(image, spec).numpy(), image[1:9, 6:14])
    np.testing.assert_array_equal(preprocess_images(image, spec).numpy(), image[3:7, 8:12])


def test_resize_masks_nearest_and_background_padding():
    spec = InputSpec((8, 8), fit="pad")
    mask = np.zeros((2, 4, 1), np.uint8)
    mask[:, 2:] = 255
    out = resize_masks(mask, spec).numpy()
    assert out.dtype == np.uint8 and set(np.unique(out)) == {0, 255}
    expected = np.kron(np.pad(mask[..., 0], ((1, 1), (0, 0))), np.ones((2, 2), np.uint8))
    np.testing.assert_array_equal(out[..., 0], expected)


def test_gray_world_equalises_the_channel_means_and_keeps_brightness():
    """ARL-CNN Sec. V-F: gray-world colour constancy, checked against numpy by hand."""
    from data_tools.preprocess import InputSpec, gray_world, resize_images

    rng = np.random.default_rng(0)
    image = np.clip(rng.random((6, 8, 3)) * np.array([0.9, 0.5, 0.3]), 0, 1).astype(np.float32)  # a reddish cast
    means = image.mean(axis=(0, 1))
    expected = np.clip(image * means.mean() / means, 0, 1)
    out = np.asarray(gray_world(image))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.mean(axis=(0, 1)), means.mean(), rtol=1e-4)  # grey on average, same brightness
    black = np.zeros((4, 4, 3), np.float32)
    np.testing.assert_array_equal(np.asarray(gray_world(black)), black)
    spec = InputSpec(image_size=(6, 8), colour_constancy="gray_world")
    np.testing.assert_allclose(np.asarray(resize_images(image, spec)), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="colour_constancy"):
        InputSpec(image_size=(6, 8), colour_constancy="retinex")


def test_restore_geometry_inverts_attnmels_crop_and_fills_the_unseen_pixels():
    """AttnMel's input: centre square of 0.8 x the shorter side, resized to 256, centre
    224 crop. A map that marks the model's whole window comes back as exactly the
    window's box in the original image; the rest is the fill value."""
    from data_tools.preprocess import InputSpec, restore_geometry

    spec = InputSpec(image_size=(224, 224), fit="crop", crop_fraction=0.8, pre_crop_size=(256, 256))
    ones = tf.ones((224, 224, 1))
    back = np.asarray(restore_geometry(ones, (300, 400), spec, fill=0.0))[..., 0]
    side = 240  # floor(0.8 * 300)
    top, left = (300 - side) // 2 + 16 * side / 256, (400 - side) // 2 + 16 * side / 256
    rows, cols = np.nonzero(back)
    assert back.shape == (300, 400)
    assert (rows.min(), cols.min()) == (round(top), round(left))
    assert rows.max() - rows.min() + 1 == round(224 * side / 256)
    assert back.sum() == round(224 * side / 256) ** 2  # nothing blended outside the window
    with pytest.raises(ValueError, match="pass fill="):
        restore_geometry(ones, (300, 400), spec)
