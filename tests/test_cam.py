"""Class activation maps (eq. 13) against a hand computation and the GAP identity."""

import keras
import matplotlib
import numpy as np
import pytest

from zoo.arl_cnn.models import build_arl_cnn14
from zoo.cam import class_activation_map, plot_class_activation_maps

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def model():
    return build_arl_cnn14(input_shape=(64, 64, 3), classes=3)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(11).random((2, 64, 64, 3), dtype=np.float32)


def test_cam_is_the_fc_weighted_sum_of_the_last_feature_maps(model, images):
    features = np.asarray(keras.Model(model.input, model.get_layer("conv5_block1_out").output)(images, training=False))
    kernel = np.asarray(model.get_layer("predictions").kernel)
    expected = np.zeros(features.shape[:3])
    for c in range(features.shape[-1]):  # eq. 13: sum_c w_c^k f_c(i, j), k = 1
        expected += kernel[c, 1] * features[..., c]
    cams = class_activation_map(model, images, class_index=1)
    assert cams.shape == (2, 2, 2)
    np.testing.assert_allclose(cams, expected, rtol=1e-4, atol=1e-5)


def test_mean_cam_plus_bias_gives_the_model_logits(model, images):
    """GAP is linear: the spatial mean of C_k plus the FC bias is the class-k logit."""
    bias = np.asarray(model.get_layer("predictions").bias)
    logits = np.stack([class_activation_map(model, images, k).mean(axis=(1, 2)) + bias[k] for k in range(3)], axis=1)
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(softmax, np.asarray(model(images, training=False)), rtol=1e-4, atol=1e-6)


def test_cam_upsampled_to_the_image_keeps_its_mean(model, images):
    small = class_activation_map(model, images, 0)
    large = class_activation_map(model, images, 0, resize_to_input=True)
    assert large.shape == (2, 64, 64)
    # 2x2 -> 64x64 bilinear with edge clamping is symmetric: the mean is preserved.
    np.testing.assert_allclose(large.mean(axis=(1, 2)), small.mean(axis=(1, 2)), rtol=1e-4)


def test_cam_rejects_bad_arguments(model, images):
    with pytest.raises(ValueError, match="class_index must be in"):
        class_activation_map(model, images, 3)
    with pytest.raises(ValueError, match="images must be"):
        class_activation_map(model, images[0], 0)
    no_gap = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="predictions")])
    with pytest.raises(ValueError, match="0 GlobalAveragePooling2D"):
        class_activation_map(no_gap, np.zeros((1, 2, 2, 4)), 0)


def test_figure_has_an_image_row_and_one_row_per_model(images):
    cams = np.random.default_rng(0).random((2, 64, 64))
    figure = plot_class_activation_maps(images, {"ResNet50": cams, "ARL-CNN50": cams})
    assert len(figure.axes) == 3 * 2
    assert figure.axes[2].get_ylabel() == "ResNet50"
    with pytest.raises(ValueError, match="resize_to_input=True"):
        plot_class_activation_maps(images, {"ResNet50": cams[:, :8, :8]})
