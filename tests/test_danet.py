"""DANet position and channel attention (Fu et al. eq. 1-4) against numpy loops."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.common.danet_attention import DANetChannelAttention, DANetPositionAttention

RNG = np.random.default_rng(5)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def np_position_attention(a, weights, alpha):
    """Eq. 1-2 with explicit sums over positions i for every position j."""
    (wq, bq), (wk, bk), (wv, bv) = weights
    batch, height, width, channels = a.shape
    out = np.empty_like(a, dtype=np.float64)
    for b in range(batch):
        flat = a[b].reshape(-1, channels).astype(np.float64)
        query, key, value = flat @ wq + bq, flat @ wk + bk, flat @ wv + bv
        for j in range(flat.shape[0]):
            s = softmax(np.array([query[i] @ key[j] for i in range(flat.shape[0])]))
            attended = sum(s[i] * value[i] for i in range(flat.shape[0]))
            out[b].reshape(-1, channels)[j] = alpha * attended + flat[j]
    return out


def np_channel_attention(a, beta, max_subtracted=False):
    """Eq. 3-4 with explicit sums over channels i for every channel j."""
    batch, height, width, channels = a.shape
    out = np.empty_like(a, dtype=np.float64)
    for b in range(batch):
        flat = a[b].reshape(-1, channels).astype(np.float64)  # columns A_i
        for j in range(channels):
            energy = np.array([flat[:, i] @ flat[:, j] for i in range(channels)])
            if max_subtracted:
                energy = energy.max() - energy
            x = softmax(energy)
            attended = sum(x[i] * flat[:, i] for i in range(channels))
            out[b].reshape(-1, channels)[:, j] = beta * attended + flat[:, j]
    return out


def test_position_attention_starts_as_identity_and_matches_equation_2():
    a = RNG.normal(size=(2, 3, 4, 16)).astype("float32")
    layer = DANetPositionAttention(reduction=8)
    np.testing.assert_allclose(np.asarray(layer(a)), a, atol=1e-6)  # alpha = 0 at start
    layer.alpha.assign(0.7)
    values = [np.asarray(w, np.float64) for w in layer.weights]
    weights = [(values[0], values[1]), (values[2], values[3]), (values[4], values[5])]
    assert weights[0][0].shape == (16, 2) and weights[2][0].shape == (16, 16)
    np.testing.assert_allclose(np.asarray(layer(a)), np_position_attention(a, weights, 0.7), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("max_subtracted", [False, True])
def test_channel_attention_matches_equation_4(max_subtracted):
    a = (0.3 * RNG.normal(size=(2, 3, 3, 6))).astype("float32")
    layer = DANetChannelAttention(max_subtracted_energy=max_subtracted)
    layer.build(a.shape)
    layer.beta.assign(0.5)
    np.testing.assert_allclose(np.asarray(layer(a)), np_channel_attention(a, 0.5, max_subtracted), rtol=1e-4, atol=1e-5)


def test_return_attention_gives_the_softmaxes_of_equations_1_and_3():
    """``return_attention=True``: the same output and the attention the layer computes,
    s_ji = softmax_i(B_i . C'_j) (eq. 1) and x_ji = softmax_i(A_i . A_j) (eq. 3)."""
    a = (0.3 * RNG.normal(size=(2, 2, 3, 16))).astype("float32")
    position = DANetPositionAttention(return_attention=True)
    position.build(a.shape)
    position.alpha.assign(0.7)
    out, s = (np.asarray(t, np.float64) for t in position(a))
    values = [np.asarray(w, np.float64) for w in position.weights]
    weights = [(values[0], values[1]), (values[2], values[3]), (values[4], values[5])]
    np.testing.assert_allclose(out, np_position_attention(a, weights, 0.7), rtol=1e-4, atol=1e-5)
    flat = a.reshape(2, 6, 16).astype(np.float64)
    query, key = flat @ weights[0][0] + weights[0][1], flat @ weights[1][0] + weights[1][1]
    expected = np.stack(
        [[softmax(np.array([query[b, i] @ key[b, j] for i in range(6)])) for j in range(6)] for b in range(2)]
    )
    np.testing.assert_allclose(s, expected, rtol=1e-4, atol=1e-6)
    channel = DANetChannelAttention(return_attention=True)
    channel.build(a.shape)
    channel.beta.assign(0.5)
    out, x = (np.asarray(t, np.float64) for t in channel(a))
    np.testing.assert_allclose(out, np_channel_attention(a, 0.5), rtol=1e-4, atol=1e-5)
    expected = np.stack(
        [[softmax(np.array([flat[b, :, i] @ flat[b, :, j] for i in range(16)])) for j in range(16)] for b in range(2)]
    )
    np.testing.assert_allclose(x, expected, rtol=1e-4, atol=1e-6)
    assert position.compute_output_shape(a.shape) == (a.shape, (2, 6, 6))
    assert channel.compute_output_shape(a.shape) == (a.shape, (2, 16, 16))
    with pytest.raises(ValueError, match="return_attention must be True or False"):
        DANetChannelAttention(return_attention="yes")


def test_danet_layers_roundtrip_and_xla(tmp_path):
    inputs = keras.Input((4, 4, 16))
    outputs = DANetChannelAttention()(DANetPositionAttention()(inputs))
    model = keras.Model(inputs, outputs)
    for layer in model.layers[1:]:
        layer.weights[-1].assign(0.3)  # alpha / beta, so that attention matters
    data = RNG.normal(size=(2, 4, 4, 16)).astype("float32")
    model.save(tmp_path / "danet.keras")
    restored = keras.models.load_model(tmp_path / "danet.keras")
    np.testing.assert_allclose(np.asarray(model(data)), np.asarray(restored(data)), rtol=1e-6)
    compiled = tf.function(lambda t: model(t), jit_compile=True)(tf.constant(data))
    np.testing.assert_allclose(np.asarray(compiled), np.asarray(model(data)), rtol=1e-4, atol=1e-5)


def test_danet_layers_reject_bad_input():
    with pytest.raises(ValueError, match="reduction"):
        DANetPositionAttention(reduction=0)
    with pytest.raises(ValueError, match="batch, height, width, channels"):
        DANetChannelAttention()(keras.Input((5, 4)))
    with pytest.raises(ValueError, match="max_subtracted_energy must be True or False"):
        DANetChannelAttention(max_subtracted_energy="no")  # bool("no") would be True


@pytest.mark.parametrize("name", ["danet", "sanet_danet"])
def test_the_registered_danets_pass_the_reference_energy_on(name):
    """Issue 25.3: the builders expose the reference code's ``max - energy`` channel
    attention (junfu1115/DANet) as ``max_subtracted_energy``; eq. 3 stays the default,
    the option reaches the head's channel attention and changes the model's output, and
    a run card records it (its builder arguments)."""
    import zoo
    from zoo.common.run_card import resolved_arguments

    entry = zoo.get_model(name)
    models = {flag: entry.build(small=True, max_subtracted_energy=flag) for flag in (False, True)}
    cams = {
        flag: [layer for layer in model.layers if isinstance(layer, DANetChannelAttention)]
        for flag, model in models.items()
    }
    assert {flag: [layer.max_subtracted_energy for layer in found] for flag, found in cams.items()} == {
        False: [False],
        True: [True],
    }
    assert resolved_arguments(entry.builder, entry.kwargs)["max_subtracted_energy"] is False
    assert resolved_arguments(entry.builder, {"max_subtracted_energy": True})["max_subtracted_energy"] is True

    models[True].set_weights(models[False].get_weights())
    images = RNG.uniform(size=(2, *models[False].input_shape[1:])).astype("float32")

    def outputs(beta: float) -> dict[bool, np.ndarray]:
        for flag in (False, True):
            cams[flag][0].beta.assign(beta)
        return {flag: np.asarray(model(images, training=False)) for flag, model in models.items()}

    same = outputs(0.0)  # beta 0: the channel attention is the identity under either energy
    np.testing.assert_array_equal(same[False], same[True])
    different = outputs(1.0)
    assert np.abs(different[False] - different[True]).max() > 1e-4
