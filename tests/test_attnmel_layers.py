"""AttnMelAttention (AttnMel eq. 1-3, Fig. 2) against a numpy implementation."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.attnmel.layers import AttnMelAttention

BATCH, LOCAL_SIZE, GLOBAL_SIZE, LOCAL_CHANNELS, GLOBAL_CHANNELS, FILTERS = 2, 8, 2, 5, 6, 4


def bilinear_upsample(x: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize with half-pixel centres (PyTorch ``align_corners=False``), loops."""
    batch, height, width, channels = x.shape
    out = np.zeros((batch, size, size, channels))

    def taps(index: int, source: int) -> tuple[int, int, float]:
        position = min(max((index + 0.5) * source / size - 0.5, 0.0), source - 1)
        low = int(np.floor(position))
        return low, min(low + 1, source - 1), position - low

    for i in range(size):
        i0, i1, wi = taps(i, height)
        for j in range(size):
            j0, j1, wj = taps(j, width)
            out[:, i, j] = (
                (1 - wi) * (1 - wj) * x[:, i0, j0]
                + (1 - wi) * wj * x[:, i0, j1]
                + wi * (1 - wj) * x[:, i1, j0]
                + wi * wj * x[:, i1, j1]
            )
    return out


def numpy_attention(local, global_, w_f, w_g, w, bias, normalization):
    """Eq. 1-3 and the global average pooling of Fig. 1, pixel by pixel."""
    projected_global = bilinear_upsample(np.einsum("bhwc,cf->bhwf", global_, w_g), local.shape[1])
    hidden = np.maximum(np.einsum("bhwc,cf->bhwf", local, w_f) + projected_global, 0.0)
    response = np.einsum("bhwf,fo->bhwo", hidden, w) + bias  # eq. 1
    if normalization == "sigmoid":
        attention = 1.0 / (1.0 + np.exp(-response))  # eq. 2
        vector = (attention * local).mean(axis=(1, 2))  # eq. 3, GAP
    else:
        flat = response.reshape(len(response), -1)
        flat = np.exp(flat - flat.max(axis=1, keepdims=True))
        attention = (flat / flat.sum(axis=1, keepdims=True)).reshape(response.shape)
        vector = (attention * local).sum(axis=(1, 2))
    return vector, attention


@pytest.fixture(scope="module")
def features():
    rng = np.random.default_rng(7)
    local = rng.normal(size=(BATCH, LOCAL_SIZE, LOCAL_SIZE, LOCAL_CHANNELS)).astype(np.float32)
    global_ = rng.normal(size=(BATCH, GLOBAL_SIZE, GLOBAL_SIZE, GLOBAL_CHANNELS)).astype(np.float32)
    return local, global_


def _layer_with_fixed_weights(normalization: str, seed: int = 3):
    layer = AttnMelAttention(FILTERS, normalization)
    layer.build([(None, LOCAL_SIZE, LOCAL_SIZE, LOCAL_CHANNELS), (None, GLOBAL_SIZE, GLOBAL_SIZE, GLOBAL_CHANNELS)])
    rng = np.random.default_rng(seed)
    w_f = rng.normal(size=(LOCAL_CHANNELS, FILTERS)).astype(np.float32)
    w_g = rng.normal(size=(GLOBAL_CHANNELS, FILTERS)).astype(np.float32)
    w = rng.normal(size=(FILTERS, 1)).astype(np.float32)
    bias = np.array([0.3], np.float32)
    layer.local_projection.set_weights([w_f[None, None]])
    layer.global_projection.set_weights([w_g[None, None]])
    layer.response.set_weights([w[None, None], bias])
    return layer, (w_f, w_g, w, bias)


@pytest.mark.parametrize("normalization", ["sigmoid", "softmax"])
def test_matches_numpy_eq_1_to_3(features, normalization):
    local, global_ = features
    layer, weights = _layer_with_fixed_weights(normalization)
    vector, attention = layer([local, global_])
    expected_vector, expected_attention = numpy_attention(local, global_, *weights, normalization)
    np.testing.assert_allclose(attention, expected_attention, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(vector, expected_vector, rtol=1e-4, atol=1e-5)
    assert vector.shape == (BATCH, LOCAL_CHANNELS)
    assert attention.shape == (BATCH, LOCAL_SIZE, LOCAL_SIZE, 1)


def test_softmax_attention_sums_to_one_over_space(features):
    layer, _ = _layer_with_fixed_weights("softmax")
    _, attention = layer(list(features))
    np.testing.assert_allclose(np.sum(attention, axis=(1, 2, 3)), np.ones(BATCH), rtol=1e-5)


def test_same_size_global_needs_no_upsampling(features):
    local, _ = features
    layer = AttnMelAttention(FILTERS)
    vector, attention = layer([local, local])
    w_f = layer.local_projection.get_weights()[0][0, 0]
    w_g = layer.global_projection.get_weights()[0][0, 0]
    w, bias = layer.response.get_weights()
    expected_vector, expected_attention = numpy_attention(local, local, w_f, w_g, w[0, 0], bias, "sigmoid")
    np.testing.assert_allclose(attention, expected_attention, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(vector, expected_vector, rtol=1e-4, atol=1e-5)


def test_jit_compiled_call_matches_eager(features):
    layer, _ = _layer_with_fixed_weights("sigmoid")
    eager = layer(list(features))
    compiled = tf.function(lambda a, b: layer([a, b]), jit_compile=True)(*features)
    for expected, actual in zip(eager, compiled, strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_config_and_keras_file_round_trip(features, tmp_path):
    local_in = keras.Input(features[0].shape[1:])
    global_in = keras.Input(features[1].shape[1:])
    layer = AttnMelAttention(FILTERS, "softmax", kernel_initializer="glorot_normal", name="attention")
    model = keras.Model([local_in, global_in], layer([local_in, global_in]))
    config = layer.get_config()
    assert (config["filters"], config["normalization"]) == (FILTERS, "softmax")
    assert AttnMelAttention.from_config(config).get_config() == config
    path = tmp_path / "attention.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    for before, after in zip(model(list(features)), restored(list(features)), strict=True):
        np.testing.assert_allclose(before, after, rtol=1e-6)


def test_default_initialiser_is_he_normal():
    layer = AttnMelAttention()
    assert layer.filters == 256
    assert isinstance(layer.kernel_initializer, keras.initializers.HeNormal)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"filters": 0}, "filters must be a positive int"),
        ({"filters": 2.5}, "filters must be a positive int"),
        ({"normalization": "tanh"}, "normalization must be one of"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AttnMelAttention(**kwargs)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"inputs \[local, global\]"):
        AttnMelAttention().build([(None, 4, 4, 3)])
    with pytest.raises(ValueError, match="4-D"):
        AttnMelAttention().build([(None, 4, 3), (None, 2, 2, 3)])
