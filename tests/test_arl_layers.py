"""ARL, SE and RAN layers against numpy implementations of their equations."""
import keras
import numpy as np
import pytest
from skimage.transform import resize as skimage_resize

from zoo.arl_cnn.layers import AttentionNormalization, ScaleGate
from zoo.arl_cnn.ran import attention_module
from zoo.arl_cnn.se import SqueezeExcitation
from zoo.arl_cnn.models import arl_merge
from zoo.common.resnet import BN_EPSILON, bottleneck_block

RNG = np.random.default_rng(7)


# ---------------------------------------------------------------- numpy references
def np_normalize(o: np.ndarray, normalization: str) -> np.ndarray:
    """Eq. 4-6 written as loops over positions and channels."""
    batch, height, width, channels = o.shape
    out = np.empty_like(o)
    for b in range(batch):
        for c in range(channels):
            for i in range(height):
                for j in range(width):
                    if normalization == "spatial":
                        out[b, i, j, c] = np.exp(o[b, i, j, c]) / np.exp(o[b, :, :, c]).sum()
                    elif normalization == "channel":
                        out[b, i, j, c] = np.exp(o[b, i, j, c]) / np.exp(o[b, i, j, :]).sum()
                    else:
                        out[b, i, j, c] = 1 / (1 + np.exp(-o[b, i, j, c]))
    return out


def np_conv(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, stride: int = 1) -> np.ndarray:
    """'same' convolution (odd kernel, stride 1, or 1x1 kernel with any stride)."""
    k = kernel.shape[0]
    pad = k // 2
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    batch, height, width, _ = x.shape
    out = np.zeros((batch, height, width, kernel.shape[-1]))
    for i in range(height):
        for j in range(width):
            patch = padded[:, i:i + k, j:j + k, :]
            out[:, i, j, :] = np.tensordot(patch, kernel, axes=([1, 2, 3], [0, 1, 2]))
    return (out + bias)[:, ::stride, ::stride, :]


def np_bn(x: np.ndarray, gamma, beta, mean, var) -> np.ndarray:
    return gamma * (x - mean) / np.sqrt(var + BN_EPSILON) + beta


def randomize(model: keras.Model) -> dict:
    """Random weights (positive BN variances); returns {layer name: weights}."""
    values = {}
    for layer in model.layers:
        weights = [RNG.normal(0, 0.5, w.shape).astype("float32") for w in layer.get_weights()]
        if isinstance(layer, keras.layers.BatchNormalization):
            weights[3] = RNG.uniform(0.5, 2.0, weights[3].shape).astype("float32")
        if weights:
            layer.set_weights(weights)
            values[layer.name] = weights
    return values


def np_conv_bn(x, w, name, stride=1, relu=True):
    y = np_bn(np_conv(x, *w[f"{name}_conv"], stride=stride), *w[f"{name}_bn"])
    return np.maximum(y, 0) if relu else y


# ---------------------------------------------------------------- ARL
@pytest.mark.parametrize("normalization", ["spatial", "channel", "mixed"])
def test_attention_normalization_matches_eq_4_to_6(normalization):
    o = RNG.normal(0, 2, (2, 3, 4, 5)).astype("float32")
    got = AttentionNormalization(normalization)(o)
    np.testing.assert_allclose(np.asarray(got), np_normalize(o, normalization), rtol=1e-5,
                               atol=1e-7)


@pytest.mark.parametrize("normalization,stride,in_channels", [
    ("spatial", 1, 8),   # identity shortcut
    ("channel", 2, 3),   # projection shortcut, stride 2
    ("mixed", 1, 3),     # projection shortcut, stride 1
])
def test_arl_block_matches_eq_9(normalization, stride, in_channels):
    filters, alpha = 2, 0.7
    inputs = keras.Input((4, 4, in_channels))
    outputs = bottleneck_block(inputs, filters, "blk", stride=stride,
                               merge=arl_merge(normalization, alpha))
    model = keras.Model(inputs, outputs)
    weights = randomize(model)
    model.get_layer("blk_scale_gate").set_weights([np.float32(alpha)])
    x = RNG.normal(0, 1, (2, 4, 4, in_channels)).astype("float32")

    residual = np_conv_bn(x, weights, "blk_1", stride=stride)
    residual = np_conv_bn(residual, weights, "blk_2")
    residual = np_conv_bn(residual, weights, "blk_3", relu=False)
    shortcut = x if in_channels == 4 * filters and stride == 1 else \
        np_conv_bn(x, weights, "blk_0", stride=stride, relu=False)
    expected = np.maximum(
        shortcut + residual + alpha * np_normalize(residual, normalization) * shortcut, 0)
    np.testing.assert_allclose(np.asarray(model(x, training=False)), expected,
                               rtol=1e-4, atol=1e-5)


def test_scale_gate_alpha_is_a_trainable_scalar_starting_at_the_given_value():
    gate = ScaleGate(0.001)
    mask, x = np.full((1, 2, 2, 3), 0.5, "float32"), np.full((1, 2, 2, 3), 4.0, "float32")
    np.testing.assert_allclose(np.asarray(gate([mask, x])), 0.001 * 0.5 * 4.0, rtol=1e-6)
    assert [w.shape for w in gate.trainable_weights] == [()]


def test_arl_layers_reject_bad_arguments_by_name():
    with pytest.raises(ValueError, match="normalization must be one of"):
        AttentionNormalization("softmax")
    with pytest.raises(ValueError, match="same shape"):
        ScaleGate()([keras.Input((4, 4, 8)), keras.Input((4, 4, 4))])


@pytest.mark.parametrize("layer", [AttentionNormalization("channel"), ScaleGate(0.25),
                                   SqueezeExcitation(4)])
def test_layer_config_round_trip(layer):
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


# ---------------------------------------------------------------- SE
def test_squeeze_excitation_matches_hu_et_al():
    x = RNG.normal(0, 1, (2, 3, 3, 8)).astype("float32")
    layer = SqueezeExcitation(ratio=4)
    layer.build(x.shape)
    w1, b1, w2, b2 = (RNG.normal(0, 1, w.shape).astype("float32") for w in layer.weights)
    layer.set_weights([w1, b1, w2, b2])
    assert w1.shape == (8, 2)
    squeezed = x.mean(axis=(1, 2))
    scale = 1 / (1 + np.exp(-(np.maximum(squeezed @ w1 + b1, 0) @ w2 + b2)))
    np.testing.assert_allclose(np.asarray(layer(x)), x * scale[:, None, None, :],
                               rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- RAN
def np_max_pool_same(x: np.ndarray) -> np.ndarray:
    """3x3, stride 2, TF 'same' padding (pad value -inf, extra padding after)."""
    batch, height, width, channels = x.shape
    out_h, out_w = -(-height // 2), -(-width // 2)
    pad_h, pad_w = max((out_h - 1) * 2 + 3 - height, 0), max((out_w - 1) * 2 + 3 - width, 0)
    padded = np.pad(x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2),
                        (pad_w // 2, pad_w - pad_w // 2), (0, 0)), constant_values=-np.inf)
    return np.stack([np.stack([padded[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max(axis=(1, 2))
                               for j in range(out_w)], axis=1) for i in range(out_h)], axis=1)


def test_attention_module_computes_one_plus_mask_times_trunk():
    """Identity residual units leave (1 + M) * x with M from pool, upsample, head."""
    def identity_unit(x, name):
        return keras.layers.Identity(name=name)(x)

    inputs = keras.Input((6, 6, 3))
    model = keras.Model(inputs, attention_module(inputs, identity_unit, 1, "am"))
    weights = randomize(model)
    x = RNG.normal(0, 1, (2, 6, 6, 3)).astype("float32")

    mask = np_max_pool_same(x)
    mask = np.stack([skimage_resize(m, (6, 6, 3), order=1, mode="edge", anti_aliasing=False)
                     for m in mask])
    for index in (1, 2):
        mask = np.maximum(np_bn(mask, *weights[f"am_mask_head{index}_bn"]), 0)
        mask = np_conv(mask, *weights[f"am_mask_head{index}_conv"])
    mask = 1 / (1 + np.exp(-mask))
    np.testing.assert_allclose(np.asarray(model(x, training=False)), (1 + mask) * x,
                               rtol=1e-4, atol=1e-5)


def test_attention_module_keeps_shape_and_mask_lies_in_unit_interval():
    def unit(x, name):
        return bottleneck_block(x, 2, name)

    inputs = keras.Input((9, 9, 8))
    model = keras.Model(inputs, attention_module(inputs, unit, 3, "am"))
    probe = keras.Model(inputs, model.get_layer("am_mask_sigmoid").output)
    x = RNG.normal(0, 1, (1, 9, 9, 8)).astype("float32")
    assert model(x).shape == (1, 9, 9, 8)
    mask = np.asarray(probe(x))
    assert mask.shape == (1, 9, 9, 8) and mask.min() >= 0 and mask.max() <= 1
    with pytest.raises(ValueError, match="levels must be a positive integer"):
        attention_module(inputs, unit, 0, "bad")


# ---------------------------------------------------------------- RAN under the harness
def test_attention_module_passes_the_harness_at_tiny_size(tmp_path):
    """Forward, gradients, ``.keras`` round-trip and a ``jit_compile=True`` train step
    (the ARL and SE layers go through the registry's, tests/test_registry_harness.py)."""
    from tests import model_checks

    def unit(x, name):
        return keras.layers.Conv2D(x.shape[-1], 3, padding="same", activation="relu",
                                   name=name)(x)

    inputs = keras.Input((10, 10, 4))
    x = attention_module(inputs, unit, 2, "am")
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x), name="tiny")
    model_checks.run_all_checks(model, tmp_path)
