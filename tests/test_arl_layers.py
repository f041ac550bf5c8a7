"""ARL, SE and RAN layers against numpy implementations of their equations."""

import keras
import numpy as np
import pytest
from keras import ops
from skimage.transform import resize as skimage_resize

from zoo.arl_cnn.layers import NORMALIZATIONS, AttentionNormalization, ScaleGate
from zoo.arl_cnn.models import arl_merge
from zoo.arl_cnn.ran import attention_module
from zoo.arl_cnn.se import SqueezeExcitation
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
            patch = padded[:, i : i + k, j : j + k, :]
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
    np.testing.assert_allclose(np.asarray(got), np_normalize(o, normalization), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "normalization,stride,in_channels",
    [
        ("spatial", 1, 8),  # identity shortcut
        ("channel", 2, 3),  # projection shortcut, stride 2
        ("mixed", 1, 3),  # projection shortcut, stride 1
    ],
)
def test_arl_block_matches_eq_9(normalization, stride, in_channels):
    filters, alpha = 2, 0.7
    inputs = keras.Input((4, 4, in_channels))
    outputs = bottleneck_block(inputs, filters, "blk", stride=stride, merge=arl_merge(normalization, alpha))
    model = keras.Model(inputs, outputs)
    weights = randomize(model)
    model.get_layer("blk_scale_gate").set_weights([np.float32(alpha)])
    x = RNG.normal(0, 1, (2, 4, 4, in_channels)).astype("float32")

    residual = np_conv_bn(x, weights, "blk_1", stride=stride)
    residual = np_conv_bn(residual, weights, "blk_2")
    residual = np_conv_bn(residual, weights, "blk_3", relu=False)
    shortcut = (
        x if in_channels == 4 * filters and stride == 1 else np_conv_bn(x, weights, "blk_0", stride=stride, relu=False)
    )
    expected = np.maximum(shortcut + residual + alpha * np_normalize(residual, normalization) * shortcut, 0)
    np.testing.assert_allclose(np.asarray(model(x, training=False)), expected, rtol=1e-4, atol=1e-5)


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
    with pytest.raises(ValueError, match="same shape"):
        ScaleGate(normalization="spatial")([keras.Input((4, 4, 8)), keras.Input((4, 4, 4))])
    with pytest.raises(ValueError, match="normalization must be one of"):
        ScaleGate(normalization="softmax")


@pytest.mark.parametrize(
    "layer",
    [AttentionNormalization("channel"), ScaleGate(0.25), ScaleGate(0.25, normalization="mixed"), SqueezeExcitation(4)],
)
def test_layer_config_round_trip(layer):
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


# ---------------------------------------------------------------- ARL: one gate, same maths
def reference_attention_term(features, x, alpha, normalization):
    """alpha * N[F(x)] * x as the two layers computed it before the gate was fused (kept
    here as the reference): the mask in separate full-size passes (max, exp, sum, divide;
    the gradient also through the max), then alpha * mask * x."""
    f = ops.cast(features, "float32")
    if normalization == "spatial":
        weights = ops.exp(f - ops.max(f, axis=(1, 2), keepdims=True))
        mask = weights / ops.sum(weights, axis=(1, 2), keepdims=True)
    elif normalization == "channel":
        mask = ops.softmax(f, axis=-1)
    else:
        mask = ops.sigmoid(f)
    return alpha * mask * x


def output_and_gradients(function, features, x, alpha, seed=0):
    """``function(features, x, alpha)`` and the gradients of ``sum(output * r)`` (r a fixed
    random cotangent) with respect to ``features``, ``x`` and ``alpha``, on any backend."""
    cotangent = np.random.default_rng(seed).normal(size=x.shape).astype("float32")
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        arguments = [tf.constant(features), tf.constant(x), tf.constant(alpha)]
        with tf.GradientTape() as tape:
            tape.watch(arguments)
            output = function(*arguments)
            loss = tf.reduce_sum(output * cotangent)
        gradients = tape.gradient(loss, arguments)
    elif backend == "jax":
        import jax

        output, pullback = jax.vjp(function, features, x, np.float32(alpha))
        gradients = pullback(jax.numpy.asarray(cotangent))
    else:
        import torch

        arguments = [torch.tensor(value, requires_grad=True) for value in (features, x, np.float32(alpha))]
        output = function(*arguments)
        gradients = torch.autograd.grad((output * torch.tensor(cotangent)).sum(), arguments)
        output = output.detach()
    return [np.asarray(keras.ops.convert_to_numpy(value)) for value in (output, *gradients)]


def gate_function(gate):
    """The gate as a function of its inputs and alpha (alpha passed as a value)."""

    def call(features, x, alpha):
        output, _ = gate.stateless_call([alpha], [], [features, x])
        return output

    return call


def assert_close_to_1e5(got, expected, what):
    for name, a, b in zip(("output", "d/dF", "d/dx", "d/dalpha"), got, expected, strict=True):
        scale = max(float(np.max(np.abs(b))), 1e-30)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * scale, err_msg=f"{what}: {name}")


def arl_case(shape=(2, 5, 6, 8), seed=3):
    rng = np.random.default_rng(seed)
    features = rng.normal(0, 3, shape).astype("float32")  # a peaked spatial softmax
    return features, rng.normal(0, 1, shape).astype("float32"), np.float32(0.7)


@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_one_gate_equals_the_two_layer_form_in_outputs_and_gradients(normalization):
    """ScaleGate(normalization=...) on [F(x), x] gives x + alpha * N[F(x)] * x: outputs and
    gradients w.r.t. F(x), x and alpha equal the old layers' maths to 1e-5."""
    features, x, alpha = arl_case()
    gate = ScaleGate(0.001, normalization=normalization)
    gate.build([features.shape, x.shape])
    got = output_and_gradients(gate_function(gate), features, x, alpha)
    expected = output_and_gradients(
        lambda f, s, a: s + reference_attention_term(f, s, a, normalization), features, x, alpha
    )
    assert_close_to_1e5(got, expected, normalization)


@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_two_layer_form_keeps_its_outputs_and_gradients(normalization):
    """AttentionNormalization + ScaleGate (models with their maps, old files) against the
    reference: the same to 1e-5 (the max's gradient, exactly zero, is no longer computed)."""
    features, x, alpha = arl_case(seed=4)
    mask_layer, gate = AttentionNormalization(normalization), ScaleGate(0.001)
    gate.build([x.shape, x.shape])

    def two_layers(f, s, a):
        return gate.stateless_call([a], [], [mask_layer(f), s])[0]

    got = output_and_gradients(two_layers, features, x, alpha)
    expected = output_and_gradients(
        lambda f, s, a: reference_attention_term(f, s, a, normalization), features, x, alpha
    )
    assert_close_to_1e5(got, expected, normalization)


def test_one_gate_is_exact_for_large_features_and_a_single_position():
    """No overflow where exp(F) would (F ~ 1e3), and a 1x1 map's spatial mask is 1."""
    features, x, alpha = arl_case(shape=(1, 3, 3, 4))
    gate = ScaleGate(0.5, normalization="spatial")
    large = features * 300  # up to ~3e3: exp overflows float32 (and float64) without the shift
    out = np.asarray(gate([large, x]))
    shifted = np.exp(large.astype("float64") - large.max(axis=(1, 2), keepdims=True))
    expected = x + 0.5 * shifted / shifted.sum(axis=(1, 2), keepdims=True) * x
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    single = np.full((2, 1, 1, 3), 5.0, "float32")
    np.testing.assert_allclose(np.asarray(gate([single, single])), single * 1.5, rtol=1e-6)


def test_one_gate_under_mixed_precision_computes_the_softmax_in_float32():
    features, x, _ = arl_case()
    reference = ScaleGate(0.25, normalization="spatial")
    expected = np.asarray(reference([features, x]))
    gate = ScaleGate(0.25, normalization="spatial", dtype="mixed_float16")
    out = gate([features, x])
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    np.testing.assert_allclose(np.asarray(out, "float32"), expected, rtol=3e-3, atol=3e-3)


def test_arl_block_without_maps_has_one_gate_layer_and_no_mask_layer():
    """Without return_attention the block's attention term is one layer; with the maps it
    keeps the mask layer, whose output is the map. Same weights, same outputs."""
    inputs = keras.Input((4, 4, 8))
    plain = keras.Model(inputs, bottleneck_block(inputs, 2, "blk", merge=arl_merge("spatial", 0.3)))
    kinds = [type(layer).__name__ for layer in plain.layers]
    assert "AttentionNormalization" not in kinds and kinds.count("ScaleGate") == 1
    assert plain.get_layer("blk_scale_gate").normalization == "spatial"
    with_maps = keras.Model(inputs, bottleneck_block(inputs, 2, "blk", merge=arl_merge("spatial", 0.3, maps=True)))
    assert with_maps.get_layer("blk_scale_gate").normalization is None
    assert isinstance(with_maps.get_layer("blk_attention_mask"), AttentionNormalization)
    randomize(plain)
    with_maps.set_weights(plain.get_weights())
    x = RNG.normal(0, 1, (2, 4, 4, 8)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(plain(x, training=False)), np.asarray(with_maps(x, training=False)), rtol=1e-5, atol=1e-6
    )


def test_scale_gate_saved_before_the_fused_form_loads_as_the_two_layer_gate():
    config = ScaleGate(0.25).get_config()
    config.pop("normalization")  # as saved by the earlier ScaleGate
    gate = ScaleGate.from_config(config)
    assert gate.normalization is None
    mask, x = np.full((1, 2, 2, 3), 0.5, "float32"), np.full((1, 2, 2, 3), 4.0, "float32")
    np.testing.assert_allclose(np.asarray(gate([mask, x])), 0.25 * 0.5 * 4.0, rtol=1e-6)


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
    np.testing.assert_allclose(np.asarray(layer(x)), x * scale[:, None, None, :], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- RAN
def np_max_pool_same(x: np.ndarray) -> np.ndarray:
    """3x3, stride 2, TF 'same' padding (pad value -inf, extra padding after)."""
    batch, height, width, channels = x.shape
    out_h, out_w = -(-height // 2), -(-width // 2)
    pad_h, pad_w = max((out_h - 1) * 2 + 3 - height, 0), max((out_w - 1) * 2 + 3 - width, 0)
    padded = np.pad(
        x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)), constant_values=-np.inf
    )
    return np.stack(
        [
            np.stack([padded[:, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3].max(axis=(1, 2)) for j in range(out_w)], axis=1)
            for i in range(out_h)
        ],
        axis=1,
    )


def test_attention_module_computes_one_plus_mask_times_trunk():
    """Identity residual units leave (1 + M) * x with M from pool, upsample, head."""

    def identity_unit(x, name):
        return keras.layers.Identity(name=name)(x)

    inputs = keras.Input((6, 6, 3))
    model = keras.Model(inputs, attention_module(inputs, identity_unit, 1, "am"))
    weights = randomize(model)
    x = RNG.normal(0, 1, (2, 6, 6, 3)).astype("float32")

    mask = np_max_pool_same(x)
    mask = np.stack([skimage_resize(m, (6, 6, 3), order=1, mode="edge", anti_aliasing=False) for m in mask])
    for index in (1, 2):
        mask = np.maximum(np_bn(mask, *weights[f"am_mask_head{index}_bn"]), 0)
        mask = np_conv(mask, *weights[f"am_mask_head{index}_conv"])
    mask = 1 / (1 + np.exp(-mask))
    np.testing.assert_allclose(np.asarray(model(x, training=False)), (1 + mask) * x, rtol=1e-4, atol=1e-5)


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
        return keras.layers.Conv2D(x.shape[-1], 3, padding="same", activation="relu", name=name)(x)

    inputs = keras.Input((10, 10, 4))
    x = attention_module(inputs, unit, 2, "am")
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x), name="tiny")
    model_checks.run_all_checks(model, tmp_path)
