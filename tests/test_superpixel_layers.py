"""Superpixel pooling, unpooling and SAM (zoo.sanet.layers) against numpy loops."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.sanet.layers import (
    SuperpixelAttention,
    SuperpixelAveragePooling,
    SuperpixelUnpooling,
    nearest_indices,
    resize_labels,
    superpixel_average_pool,
)

N = 6  # max_segments


def _nearest(labels, size):
    """Nearest-neighbour resize with half-pixel centres, as a loop-free numpy index."""
    h, w = labels.shape[1:3]
    rows = np.floor((np.arange(size[0]) + 0.5) * h / size[0]).astype(int)
    columns = np.floor((np.arange(size[1]) + 0.5) * w / size[1]).astype(int)
    return labels[:, rows][:, :, columns]


def _numpy_pool(features, labels, n):
    out = np.zeros((features.shape[0], n, features.shape[-1]), np.float64)
    for b in range(features.shape[0]):
        for i in range(n):
            inside = [
                features[b, y, x]
                for y in range(labels.shape[1])
                for x in range(labels.shape[2])
                if labels[b, y, x] == i
            ]
            if inside:
                out[b, i] = np.mean(inside, axis=0)
    return out


def _numpy_unpool(regions, labels):
    out = np.zeros((*labels.shape, regions.shape[-1]))
    for b in range(labels.shape[0]):
        for y in range(labels.shape[1]):
            for x in range(labels.shape[2]):
                out[b, y, x] = regions[b, labels[b, y, x]]
    return out


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(3, 5, 7, 4)).astype(np.float32)
    labels = rng.integers(0, N - 1, (3, 10, 11, 1)).astype(np.int32)  # label N-1 absent: an empty segment
    return features, labels


@pytest.mark.parametrize("label_size", [(5, 7), (10, 14), (10, 11), (3, 4)])
def test_pooling_matches_numpy_at_any_label_resolution(data, label_size):
    features, labels = data
    labels = _nearest(labels, label_size)
    pooled = SuperpixelAveragePooling(N)([features, labels]).numpy()
    expected = _numpy_pool(features, _nearest(labels, (5, 7))[..., 0], N)
    np.testing.assert_allclose(pooled, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(pooled[:, N - 1], 0.0)


def test_unpooling_matches_numpy(data):
    features, labels = data
    regions = np.random.default_rng(1).normal(size=(3, N, 4)).astype(np.float32)
    np.testing.assert_allclose(
        SuperpixelUnpooling()([regions, labels]).numpy(), _numpy_unpool(regions, labels[..., 0]), rtol=1e-6
    )
    resized = SuperpixelUnpooling(output_size=(5, 7))([regions, labels[..., 0]]).numpy()
    np.testing.assert_allclose(resized, _numpy_unpool(regions, _nearest(labels, (5, 7))[..., 0]), rtol=1e-6)


@pytest.mark.parametrize("merge", ["add", "concat"])
def test_attention_is_w_times_unpooled_regions_and_features(data, merge):
    features, labels = data
    sam = SuperpixelAttention(N, filters=3, merge=merge)
    out = sam([features, labels]).numpy()
    small = _nearest(labels, (5, 7))[..., 0]
    unpooled = _numpy_unpool(_numpy_pool(features, small, N), small)
    merged = unpooled + features if merge == "add" else np.concatenate([unpooled, features], -1)
    kernel, bias = (np.asarray(w) for w in sam.recalibration.weights)
    np.testing.assert_allclose(out, merged @ kernel[0, 0] + bias, rtol=1e-4, atol=1e-5)


def test_pooling_gradient_matches_finite_differences():
    rng = np.random.default_rng(2)
    features = tf.constant(rng.normal(size=(2, 3, 4, 2)))
    labels = tf.constant(rng.integers(0, 4, (2, 3, 4)), tf.int32)
    theoretical, numerical = tf.test.compute_gradient(lambda f: superpixel_average_pool(f, labels, 4), [features])
    np.testing.assert_allclose(theoretical[0], numerical[0], atol=1e-6)
    assert np.abs(theoretical[0]).sum() > 0


def test_attention_gradient_reaches_features_and_weights(data):
    features, labels = data
    sam = SuperpixelAttention(N)
    features = tf.constant(features)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(features)
        loss = tf.reduce_sum(sam([features, labels]) ** 2)
    for gradient in [tape.gradient(loss, features), *tape.gradient(loss, sam.trainable_weights)]:
        assert gradient is not None and np.all(np.isfinite(gradient)) and np.abs(gradient).sum() > 0


def test_xla_matches_eager(data):
    features, labels = data
    sam = SuperpixelAttention(N, merge="concat")
    eager = sam([features, labels]).numpy()
    compiled = tf.function(lambda f, s: sam([f, s]), jit_compile=True)(features, labels).numpy()
    np.testing.assert_allclose(compiled, eager, rtol=1e-5, atol=1e-5)


def test_out_of_range_labels_are_left_out_and_unpool_to_zero_eager_and_under_xla():
    """One behaviour everywhere (no backend can raise inside a compiled function): an
    out-of-range pixel is in no superpixel (not another image's) and unpools to zero."""
    features = np.ones((2, 2, 2, 1), np.float32)
    features[0, 0, 0] = 100.0  # the out-of-range pixel: must not reach any mean
    features[1] = 5.0
    labels = np.zeros((2, 2, 2), np.int32)
    labels[0, 0, 0] = N  # would be image 1's segment 0 with per-image offsets
    labels[1, 1, 1] = -1
    pool, unpool = SuperpixelAveragePooling(N), SuperpixelUnpooling()
    regions = np.ones((2, N, 1), np.float32)
    for run in (lambda f: f(), lambda f: tf.function(f, jit_compile=True)(), lambda f: tf.function(f)()):
        pooled = np.asarray(run(lambda: pool([features, labels])))
        np.testing.assert_allclose(pooled[:, 0, 0], [1.0, 5.0])  # image 1's mean untouched
        np.testing.assert_array_equal(pooled[:, 1:], 0.0)
        unpooled = np.asarray(run(lambda: unpool([regions, labels])))[..., 0]
        np.testing.assert_array_equal(unpooled, [[[0, 1], [1, 1]], [[1, 1], [1, 0]]])


def test_nearest_indices_are_tf_image_resize_nearest():
    pairs = [(h, t) for h in range(1, 41) for t in range(1, 41)]
    pairs += [(512, 64), (224, 28), (300, 37), (1000, 333), (7, 1024), (63, 250), (600, 512)]
    for source, target in pairs:
        labels = tf.reshape(tf.range(source, dtype=tf.int32), (1, source, 1, 1))
        expected = tf.image.resize(labels, (target, 1), method="nearest").numpy().ravel()
        np.testing.assert_array_equal(nearest_indices(source, target), expected, err_msg=f"{source} -> {target}")


def test_resized_labels_are_tf_image_resize_nearest_in_both_axes():
    labels = np.random.default_rng(3).integers(0, 50, (2, 13, 29, 1)).astype(np.int32)
    for size in [(5, 7), (40, 11), (13, 64), (13, 29)]:
        np.testing.assert_array_equal(
            resize_labels(labels, size), tf.image.resize(labels, size, method="nearest").numpy()[..., 0]
        )


def test_mixed_precision_keeps_the_feature_dtype(data):
    features, labels = data
    pooled = SuperpixelAveragePooling(N, dtype="mixed_float16")([features, labels])
    assert pooled.dtype == tf.float16
    np.testing.assert_allclose(pooled.numpy(), _numpy_pool(features, _nearest(labels, (5, 7))[..., 0], N), atol=1e-2)


def test_keras_roundtrip_and_xla_training(data, tmp_path):
    features, labels = data
    feature_input = keras.Input((5, 7, 4), name="features")
    label_input = keras.Input((10, 11, 1), dtype="int32", name="superpixels")
    regions = SuperpixelAveragePooling(N, name="pool")([feature_input, label_input])
    unpooled = SuperpixelUnpooling((5, 7), name="unpool")([regions, label_input])
    attended = SuperpixelAttention(N, filters=2, merge="concat", name="sam")([unpooled, label_input])
    model = keras.Model([feature_input, label_input], attended)
    model.save(tmp_path / "m.keras")
    restored = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(
        restored.predict([features, labels], verbose=0), model.predict([features, labels], verbose=0), rtol=1e-6
    )
    assert restored.get_layer("sam").get_config() == model.get_layer("sam").get_config()
    model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    assert np.isfinite(model.train_on_batch([features, labels], np.zeros((3, 5, 7, 2))))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: SuperpixelAveragePooling(0), "max_segments"),
        (lambda: SuperpixelAttention(N, merge="mul"), "merge"),
        (lambda: SuperpixelAttention(N, filters=0), "filters"),
        (lambda: SuperpixelUnpooling(output_size=(4,)), "output_size"),
    ],
)
def test_bad_arguments_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_label_shape_is_named():
    with pytest.raises(ValueError, match="superpixel map"):
        SuperpixelAveragePooling(N)([np.zeros((1, 4, 4, 2), np.float32), np.zeros((1, 4, 4, 2), np.int32)])
