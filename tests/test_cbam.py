"""CBAM (A-PSPNet eq. 2-4, Table I) and adaptive pooling against numpy implementations."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.apspnet.layers import CBAM_ORDERS, ChannelAttention, SpatialAttention, cbam
from zoo.common.pyramid_pooling import AdaptiveAveragePooling2D

RNG = np.random.default_rng(3)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def np_channel_attention(f: np.ndarray, w0: np.ndarray, w1: np.ndarray) -> np.ndarray:
    """Eq. 3, one image at a time: sigma(W1 relu(W0 F_avg) + W1 relu(W0 F_max))."""
    maps = []
    for image in f:
        average = image.reshape(-1, image.shape[-1]).mean(axis=0)
        maximum = image.reshape(-1, image.shape[-1]).max(axis=0)
        mlp = [np.maximum(d @ w0, 0) @ w1 for d in (average, maximum)]
        maps.append(sigmoid(mlp[0] + mlp[1]))
    return np.stack(maps)[:, None, None, :]


def np_spatial_attention(f: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Eq. 4 with an explicit zero-padded 'same' correlation loop."""
    pooled = np.stack([f.mean(axis=-1), f.max(axis=-1)], axis=-1)
    k = kernel.shape[0]
    padded = np.pad(pooled, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
    batch, height, width, _ = pooled.shape
    out = np.zeros((batch, height, width, 1))
    for b in range(batch):
        for i in range(height):
            for j in range(width):
                out[b, i, j, 0] = np.sum(padded[b, i : i + k, j : j + k, :] * kernel[..., 0])
    return sigmoid(out)


def np_adaptive_average_pool(x: np.ndarray, bins: int) -> np.ndarray:
    """PyTorch's AdaptiveAvgPool2d bins: [floor(i L / n), ceil((i + 1) L / n))."""
    batch, height, width, channels = x.shape
    out = np.zeros((batch, bins, bins, channels))
    for i in range(bins):
        rows = slice(int(np.floor(i * height / bins)), int(np.ceil((i + 1) * height / bins)))
        for j in range(bins):
            cols = slice(int(np.floor(j * width / bins)), int(np.ceil((j + 1) * width / bins)))
            out[:, i, j, :] = x[:, rows, cols, :].mean(axis=(1, 2))
    return out


def test_channel_attention_matches_equation_3():
    f = RNG.normal(size=(2, 5, 4, 32)).astype("float32")
    layer = ChannelAttention(reduction=8)
    got = np.asarray(layer(f))
    w0, w1 = (np.asarray(w) for w in layer.weights)
    assert w0.shape == (32, 4) and w1.shape == (4, 32)
    np.testing.assert_allclose(got, np_channel_attention(f, w0, w1), rtol=1e-5, atol=1e-6)


def test_channel_attention_biases_are_optional_and_counted():
    assert ChannelAttention(16)(np.zeros((1, 2, 2, 64), "float32")).shape == (1, 1, 1, 64)
    plain, biased = ChannelAttention(16), ChannelAttention(16, use_bias=True)
    plain.build((None, 3, 3, 64))
    biased.build((None, 3, 3, 64))
    assert plain.count_params() == 2 * 64 * 4
    assert biased.count_params() == 2 * 64 * 4 + 4 + 64


def test_spatial_attention_matches_equation_4():
    f = RNG.normal(size=(2, 6, 5, 3)).astype("float32")
    layer = SpatialAttention(kernel_size=7)
    got = np.asarray(layer(f))
    kernel = np.asarray(layer.kernel)
    assert layer.count_params() == 7 * 7 * 2
    np.testing.assert_allclose(got, np_spatial_attention(f, kernel), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("order", sorted(CBAM_ORDERS))
def test_cbam_applies_the_units_in_table_1_order(order):
    f = RNG.normal(size=(2, 6, 6, 16)).astype("float32")
    inputs = keras.Input((6, 6, 16))
    outputs, maps = cbam(inputs, order=order, reduction=4, name="unit")
    model = keras.Model(inputs, [outputs, maps])
    got, got_maps = model(f)
    assert sorted(got_maps) == sorted(CBAM_ORDERS[order])
    expected = f
    for unit in CBAM_ORDERS[order]:
        if unit == "channel":
            w0, w1 = (np.asarray(w) for w in model.get_layer("unit_channel").weights)
            attention = np_channel_attention(expected, w0, w1)
        else:
            attention = np_spatial_attention(expected, np.asarray(model.get_layer("unit_spatial").kernel))
        np.testing.assert_allclose(np.asarray(got_maps[unit]), attention, rtol=1e-5, atol=1e-6)
        expected = expected * attention
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-5)


def test_cbam_rejects_unknown_order_and_bad_arguments():
    with pytest.raises(ValueError, match="order must be one of"):
        cbam(keras.Input((4, 4, 8)), order="both")
    with pytest.raises(ValueError, match="reduction"):
        ChannelAttention(reduction=0)
    with pytest.raises(ValueError, match="kernel_size"):
        SpatialAttention(kernel_size=2.5)
    with pytest.raises(ValueError, match="batch, height, width, channels"):
        SpatialAttention()(keras.Input((4, 8)))


@pytest.mark.parametrize("size, bins", [((60, 60), 6), ((7, 9), 3), ((5, 4), 2), ((3, 3), 6)])
def test_adaptive_pooling_matches_pytorch_bins(size, bins):
    x = RNG.normal(size=(2, *size, 3)).astype("float32")
    got = np.asarray(AdaptiveAveragePooling2D(bins)(x))
    np.testing.assert_allclose(got, np_adaptive_average_pool(x, bins), rtol=1e-5, atol=1e-6)


def test_adaptive_pooling_needs_static_size():
    with pytest.raises(ValueError, match="static height and width"):
        AdaptiveAveragePooling2D(2)(keras.Input((None, None, 3)))


def test_layers_roundtrip_and_compile_with_xla(tmp_path):
    inputs = keras.Input((8, 8, 16))
    x, maps = cbam(inputs, reduction=4)
    x = AdaptiveAveragePooling2D(3)(x)
    model = keras.Model(inputs, [x, maps["spatial"]])
    data = RNG.normal(size=(2, 8, 8, 16)).astype("float32")
    model.save(tmp_path / "cbam.keras")
    restored = keras.models.load_model(tmp_path / "cbam.keras")
    for before, after in zip(model(data), restored(data), strict=True):
        np.testing.assert_allclose(np.asarray(before), np.asarray(after), rtol=1e-6)
    xla = tf.function(lambda t: model(t), jit_compile=True)
    for eager, compiled in zip(model(data), xla(tf.constant(data)), strict=True):
        np.testing.assert_allclose(np.asarray(eager), np.asarray(compiled), rtol=1e-4, atol=1e-5)
