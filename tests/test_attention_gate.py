"""AttentionGate against a numpy implementation of Oktay et al.'s eq. 1-2."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.common.attention_gate import AttentionGate

BN_EPSILON = 1e-3  # keras.layers.BatchNormalization default


def _bilinear_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of ``(H, W, C)`` with half-pixel centres and edge clamping (loops)."""
    in_h, in_w, _ = image.shape
    out = np.zeros((height, width, image.shape[2]))
    for i in range(height):
        y = min(max((i + 0.5) * in_h / height - 0.5, 0.0), in_h - 1)
        y0 = int(np.floor(y))
        y1 = min(y0 + 1, in_h - 1)
        wy = y - y0
        for j in range(width):
            x = min(max((j + 0.5) * in_w / width - 0.5, 0.0), in_w - 1)
            x0 = int(np.floor(x))
            x1 = min(x0 + 1, in_w - 1)
            wx = x - x0
            out[i, j] = (
                (1 - wy) * (1 - wx) * image[y0, x0]
                + (1 - wy) * wx * image[y0, x1]
                + wy * (1 - wx) * image[y1, x0]
                + wy * wx * image[y1, x1]
            )
    return out


def _numpy_gate(x, g, weights, activation):
    """Oktay et al. eq. 1-2 on one image, with explicit loops for the strided conv."""
    theta_k, phi_k, phi_b, psi_k, psi_b, out_k, out_b, gamma, beta, mean, var = weights
    height, width, _ = x.shape
    theta = np.zeros((height // 2, width // 2, theta_k.shape[-1]))
    for i in range(height // 2):
        for j in range(width // 2):
            patch = x[2 * i : 2 * i + 2, 2 * j : 2 * j + 2]  # (2, 2, Cx)
            theta[i, j] = np.einsum("abc,abcd->d", patch, theta_k)
    phi = g @ phi_k[0, 0] + phi_b
    phi = _bilinear_resize(phi, height // 2, width // 2)
    q = np.maximum(theta + phi, 0) @ psi_k[0, 0] + psi_b
    alpha = 1 / (1 + np.exp(-q)) if activation == "sigmoid" else np.maximum(q, 0)
    alpha = _bilinear_resize(alpha, height, width)
    y = (alpha * x) @ out_k[0, 0] + out_b
    y = gamma * (y - mean) / np.sqrt(var + BN_EPSILON) + beta
    return y, alpha


def _gate_with_known_weights(x_shape, g_shape, activation, seed=0):
    layer = AttentionGate(inter_channels=3, attention_activation=activation)
    layer.build([list(x_shape), list(g_shape)])
    rng = np.random.default_rng(seed)
    values = [rng.normal(size=w.shape) for w in layer.weights]
    # BN moving variance must be positive.
    for index, weight in enumerate(layer.weights):
        if "variance" in weight.path:
            values[index] = rng.uniform(0.5, 2.0, size=weight.shape)
    layer.set_weights(values)
    by_name = {
        w.path.split("/")[-2] + "/" + w.path.split("/")[-1]: v for w, v in zip(layer.weights, values, strict=True)
    }
    ordered = [
        by_name[key]
        for key in (
            "theta/kernel",
            "phi/kernel",
            "phi/bias",
            "psi/kernel",
            "psi/bias",
            "output_conv/kernel",
            "output_conv/bias",
            "output_bn/gamma",
            "output_bn/beta",
            "output_bn/moving_mean",
            "output_bn/moving_variance",
        )
    ]
    return layer, ordered


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
@pytest.mark.parametrize("g_size", [2, 1], ids=["g_half_size", "g_quarter_size"])
def test_gate_matches_numpy_equations(activation, g_size):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 4, 4, 5)).astype(np.float32)
    g = rng.normal(size=(2, g_size, g_size, 6)).astype(np.float32)
    layer, weights = _gate_with_known_weights(x.shape, g.shape, activation)
    y, alpha = layer([x, g], training=False)
    for index in range(2):
        want_y, want_alpha = _numpy_gate(x[index].astype(np.float64), g[index].astype(np.float64), weights, activation)
        np.testing.assert_allclose(np.asarray(alpha[index]), want_alpha, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(np.asarray(y[index]), want_y, rtol=1e-4, atol=1e-4)


def test_default_inter_channels_is_half_of_x_channels():
    layer = AttentionGate()
    layer([np.zeros((1, 4, 4, 8), np.float32), np.zeros((1, 2, 2, 3), np.float32)])
    assert layer.theta.filters == 4
    assert layer.phi.filters == 4


def test_config_round_trip_and_jit_compile():
    layer, _ = _gate_with_known_weights((1, 4, 4, 5), (1, 2, 2, 6), "relu")
    clone = AttentionGate.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.attention_activation == "relu" and clone.inter_channels == 3

    x = tf.random.normal((1, 4, 4, 5))
    g = tf.random.normal((1, 2, 2, 6))
    eager = layer([x, g], training=False)
    compiled = tf.function(lambda a, b: layer([a, b], training=False), jit_compile=True)(x, g)
    for want, got in zip(eager, compiled, strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)


def test_gate_in_a_model_survives_keras_file(tmp_path):
    x_in = keras.Input((8, 8, 4))
    g_in = keras.Input((4, 4, 2))
    y, alpha = AttentionGate(name="gate")([x_in, g_in])
    model = keras.Model([x_in, g_in], [y, alpha])
    inputs = [
        np.random.default_rng(0).normal(size=(2, 8, 8, 4)).astype(np.float32),
        np.random.default_rng(1).normal(size=(2, 4, 4, 2)).astype(np.float32),
    ]
    path = tmp_path / "gate.keras"
    model.save(path)
    restored = keras.models.load_model(path, compile=False)
    for want, got in zip(model(inputs), restored(inputs), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"attention_activation": "softmax"}, "attention_activation"),
        ({"inter_channels": 0}, "inter_channels"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AttentionGate(**kwargs)


def test_wrong_number_of_inputs_is_explained():
    with pytest.raises(ValueError, match=r"\[x, g\]"):
        AttentionGate()([keras.Input((4, 4, 2))] * 3)
