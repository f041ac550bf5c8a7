"""zoo.losses against hand-computed values and independent numpy formulas."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo import losses

# One 2x2 single-channel image: y_true and probabilities.
Y = np.array([[1.0, 0.0], [1.0, 1.0]], np.float32).reshape(1, 2, 2, 1)
P = np.array([[0.8, 0.2], [0.6, 0.9]], np.float32).reshape(1, 2, 2, 1)
# Hand sums: sum(y p) = 0.8 + 0.6 + 0.9 = 2.3; sum y^2 = 3;
# sum p^2 = 0.64 + 0.04 + 0.36 + 0.81 = 1.85; sum p = 2.5.


def _value(x) -> np.ndarray:
    return keras.ops.convert_to_numpy(x)


def _close(actual, expected, rtol=1e-5, atol=1e-6, **kwargs) -> None:
    np.testing.assert_allclose(_value(actual), expected, rtol=rtol, atol=atol, **kwargs)


def test_dice_loss_matches_aernet_eq1_by_hand():
    _close(losses.dice_loss(Y, P, smooth=0.0), [1 - 4.6 / 4.85])
    _close(losses.dice_loss(Y, P, smooth=1.0), [1 - 5.6 / 5.85])


def test_dice_loss_authors_code_form_over_batch():
    y = np.concatenate([Y, np.zeros_like(Y)])
    p = np.concatenate([P, np.full_like(P, 0.1)])
    # josegpl/AER-Net: 1 - (2 sum(y p) + 1) / (sum y + sum p + 1) over the whole batch.
    expected = 1 - (2 * 2.3 + 1) / (3 + 2.5 + 0.4 + 1)
    got = _value(losses.dice_loss(y, p, squared=False, over_batch=True))
    assert got.shape == ()
    _close(got, expected)


def test_dice_loss_from_logits_equals_sigmoid_first():
    logits = np.log(P / (1 - P))
    _close(losses.dice_loss(Y, logits, from_logits=True), _value(losses.dice_loss(Y, P)))


def test_soft_jaccard_loss_by_hand():
    _close(losses.soft_jaccard_loss(Y, P, smooth=0.0), [1 - 2.3 / (3 + 1.85 - 2.3)])


def test_soft_jaccard_micro_and_macro():
    # Two channels: channel 0 is Y/P, channel 1 is blank truth with p = 0.5 everywhere.
    y = np.concatenate([Y, np.zeros_like(Y)], axis=-1)
    p = np.concatenate([P, np.full_like(P, 0.5)], axis=-1)
    channel0 = 1 - 2.3 / (3 + 1.85 - 2.3)
    channel1 = 1 - 0 / (0 + 4 * 0.25 - 0)
    micro = 1 - 2.3 / (3 + 1.85 + 1.0 - 2.3)
    macro = (channel0 + channel1) / 2
    _close(losses.soft_jaccard_loss(y, p, smooth=0.0, per_channel=True), [macro])
    _close(losses.soft_jaccard_loss(y, p, smooth=0.0), [micro])
    _close(
        losses.global_balancing_jaccard_loss(y, p, smooth=0.0),
        [0.5 * micro + 0.5 * macro],
    )


def test_cross_entropy_jaccard_loss_is_sanet_eq2():
    bce = -np.mean(Y * np.log(P) + (1 - Y) * np.log(1 - P))
    jal = 1 - 2.3 / (3 + 1.85 - 2.3)
    _close(losses.cross_entropy_jaccard_loss(Y, P, smooth=0.0), [0.5 * bce + 0.5 * jal])


def _gbce_numpy(y, p, alpha, gamma, weights=None):
    """Independent loop over every element of SANet eq. 7-8 (the equations as printed)."""

    def focal(q):
        return -((1 - q) ** gamma) * np.log(q)

    out = np.zeros_like(p, dtype=np.float64)
    for index in np.ndindex(p.shape):
        p_t = p[index] if y[index] == 1 else 1 - p[index]
        value = focal(alpha) + 0.5 * (1 - p_t**2 / alpha**2) if p_t < alpha else focal(p_t)
        out[index] = value * (1.0 if weights is None else weights[index[-1]])
    return out.reshape(len(p), -1).mean(axis=1)


def test_global_balancing_cross_entropy_matches_numpy_loop():
    rng = np.random.default_rng(0)
    y = (rng.random((2, 3, 3, 5)) > 0.6).astype(np.float32)
    p = rng.uniform(0.02, 0.98, size=y.shape).astype(np.float32)
    weights = [1.0, 2.0, 0.5, 3.0, 1.5]
    for alpha, gamma, w in ((0.2, 1.0, None), (0.3, 2.0, weights), (0.2, 0.5, None)):
        _close(
            losses.global_balancing_cross_entropy(y, p, alpha, gamma, class_weights=w),
            _gbce_numpy(y, p, alpha, gamma, w),
        )


def test_global_balancing_cross_entropy_alpha0_is_keras_focal_and_continuous():
    rng = np.random.default_rng(1)
    y = (rng.random((2, 4, 4, 5)) > 0.5).astype(np.float32)
    p = rng.uniform(0.05, 0.95, size=y.shape).astype(np.float32)
    keras_focal = _value(keras.losses.binary_focal_crossentropy(y, p, gamma=2.0)).mean(axis=(1, 2))
    plain_focal = losses.global_balancing_cross_entropy(y, p, alpha=0.0, gamma=2.0)
    _close(plain_focal, keras_focal, rtol=1e-4)
    # Continuous at p_t = alpha: both branches agree just below and just above.
    ones = np.ones((1, 1, 1, 1), np.float32)
    below = losses.global_balancing_cross_entropy(ones, ones * 0.2 - 1e-6, alpha=0.2, gamma=1.0)
    above = losses.global_balancing_cross_entropy(ones, ones * 0.2 + 1e-6, alpha=0.2, gamma=1.0)
    _close(below, _value(above), rtol=0, atol=5e-5)


def test_global_balancing_loss_is_half_and_half():
    rng = np.random.default_rng(2)
    y = (rng.random((2, 4, 4, 5)) > 0.7).astype(np.float32)
    p = rng.uniform(0.05, 0.95, size=y.shape).astype(np.float32)
    jaccard = _value(losses.global_balancing_jaccard_loss(y, p))
    _close(losses.global_balancing_loss(y, p), 0.5 * _gbce_numpy(y, p, 0.2, 1.0) + 0.5 * jaccard)


def test_combo_loss_is_apspnet_eq6():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, size=(2, 4, 4))
    one_hot = np.eye(3, dtype=np.float32)[labels]
    logits = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    ce = -(one_hot * np.log(probs)).sum(-1).mean(axis=(1, 2))
    axes = (1, 2, 3)
    dice = 2 * (one_hot * probs).sum(axes) / ((one_hot**2).sum(axes) + (probs**2).sum(axes))
    expected = ce + 1 - dice
    _close(losses.combo_loss(one_hot, probs, smooth=0.0), expected)
    sparse = losses.combo_loss(labels[..., None], logits, smooth=0.0, sparse=True, from_logits=True)
    _close(sparse, expected)


def test_resize_reference_average_pools():
    rng = np.random.default_rng(4)
    mask = (rng.random((2, 8, 8, 1)) > 0.5).astype(np.float32)
    expected = mask.reshape(2, 2, 4, 2, 4, 1).mean(axis=(2, 4))
    _close(losses.resize_reference(mask, (2, 2)), expected)
    with pytest.raises(ValueError, match="integer multiple"):
        losses.resize_reference(mask, (3, 3))


def test_attention_dice_regulariser_over_the_batch():
    roi = np.zeros((2, 4, 4, 1), np.float32)
    roi[0, :2, :2] = 1.0  # pooled to 2x2: [[1, 0], [0, 0]] for image 0; image 1 blank
    attention = np.array([[[0.5, 0.1], [0.2, 0.4]], [[0.3, 0.3], [0.3, 0.3]]], np.float32)
    attention = attention[..., None]
    # Batch as one tensor: sum(a r) = 0.5; sum(a + r) = 1.2 + 1.2 + 1.
    _close(losses.attention_dice_regulariser(roi, attention), 1 - 2 * 0.5 / 3.4)


ALL_LOSSES = [
    losses.DiceLoss(),
    losses.DiceLoss(squared=False, over_batch=True),
    losses.SoftJaccardLoss(per_channel=True),
    losses.CrossEntropyJaccardLoss(),
    losses.GlobalBalancingJaccardLoss(),
    losses.GlobalBalancingCrossEntropy(class_weights=[1, 2]),
    losses.GlobalBalancingLoss(alpha=0.2, gamma=0.5),
    losses.ComboLoss(),
    losses.AttentionDiceRegulariser(),
]


def _blank_batch_predictions(loss) -> tuple[np.ndarray, list[np.ndarray]]:
    """Targets with no foreground anywhere, and predictions: all 0, all 1, all 0.5."""
    y = np.zeros((2, 4, 4, 2), np.float32)
    predictions = [np.full_like(y, value) for value in (0.0, 1.0, 0.5)]
    if isinstance(loss, losses.ComboLoss):  # softmax: every pixel background
        y[..., 0] = 1.0
        predictions[:2] = [y, 1.0 - y]
    return y, predictions


def _loss_and_gradient(loss, y, p):
    with tf.GradientTape() as tape:
        tape.watch(p)
        value = loss(y, p)
    return value, tape.gradient(value, p)


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda loss: loss.name)
def test_blank_masks_give_finite_loss_and_gradient(loss):
    y, predictions = _blank_batch_predictions(loss)
    for p in predictions:
        value, grad = _loss_and_gradient(loss, tf.constant(y), tf.constant(p))
        assert np.isfinite(value.numpy()).all() and np.isfinite(grad.numpy()).all()


def test_losses_under_xla_match_eager_on_blank_masks():
    """Every loss in one XLA program (one compilation keeps the test fast on CPU)."""
    batches = [
        (tf.constant(y), tf.constant(predictions[2])) for y, predictions in map(_blank_batch_predictions, ALL_LOSSES)
    ]

    def all_losses(batches):
        return [_loss_and_gradient(loss, y, p) for loss, (y, p) in zip(ALL_LOSSES, batches, strict=True)]

    compiled = tf.function(all_losses, jit_compile=True)(batches)
    for loss, (value, grad), (y, p) in zip(ALL_LOSSES, compiled, batches, strict=True):
        eager_value, eager_grad = _loss_and_gradient(loss, y, p)
        assert np.isfinite(value.numpy()).all() and np.isfinite(grad.numpy()).all(), loss.name
        _close(value, eager_value.numpy(), err_msg=loss.name)
        _close(grad, eager_grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=loss.name)


def test_blank_mask_predicted_blank_costs_nothing():
    y = np.zeros((2, 4, 4, 1), np.float32)
    _close(losses.dice_loss(y, y), [0.0, 0.0], atol=1e-7)
    _close(losses.soft_jaccard_loss(y, y), [0.0, 0.0], atol=1e-7)


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda loss: loss.name)
def test_loss_config_round_trip(loss):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(restored) is type(loss)
    assert restored.get_config() == loss.get_config()
    rng = np.random.default_rng(5)
    y = (rng.random((2, 4, 4, 2)) > 0.5).astype(np.float32)
    p = rng.uniform(0.05, 0.95, size=y.shape).astype(np.float32)
    _close(restored(y, p), _value(loss(y, p)))


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_compiled_loss_survives_keras_file(tmp_path):
    inputs = keras.Input((4, 4, 1))
    outputs = keras.layers.Conv2D(5, 1, activation="sigmoid")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(loss=losses.GlobalBalancingLoss(class_weights=[1, 2, 3, 4, 5], gamma=2.0))
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(restored.loss, losses.GlobalBalancingLoss)
    assert restored.loss.get_config() == model.loss.get_config()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: losses.DiceLoss(smooth=-1), "smooth"),
        (lambda: losses.GlobalBalancingLoss(alpha=1.5), "alpha"),
        (lambda: losses.GlobalBalancingCrossEntropy(gamma=-2), "gamma"),
        (
            lambda: losses.global_balancing_cross_entropy(
                np.ones((1, 2, 2, 3)), np.ones((1, 2, 2, 3)) / 2, class_weights=[1, 2]
            ),
            "class_weights",
        ),
        (lambda: losses.dice_loss(np.ones((1, 4, 4, 1)), np.ones((1, 4, 4, 2))), "shape"),
        (lambda: losses.attnmel_losses(output_names=("a", "b")), "output_names"),
    ],
)
def test_bad_arguments_raise_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_focal_loss_is_authors_focal():
    loss = losses.focal_loss()
    assert isinstance(loss, keras.losses.CategoricalFocalCrossentropy)
    y = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)
    p = np.array([[0.3, 0.7], [0.4, 0.6]], np.float32)
    expected = np.mean([-(0.3**2) * np.log(0.7), -(0.6**2) * np.log(0.4)])
    _close(loss(y, p), expected)
    assert isinstance(losses.focal_loss(multi_label=True), keras.losses.BinaryFocalCrossentropy)


def test_attnmel_losses_compile_to_eq5():
    images = keras.Input((8, 8, 3))
    features = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(images)
    a3 = keras.layers.Conv2D(1, 1, activation="sigmoid", name="attention_pool3")(
        keras.layers.AveragePooling2D(2)(features)
    )
    a4 = keras.layers.Conv2D(1, 1, activation="sigmoid", name="attention_pool4")(
        keras.layers.AveragePooling2D(4)(features)
    )
    probabilities = keras.layers.Dense(2, activation="softmax", name="probabilities")(
        keras.layers.GlobalAveragePooling2D()(features)
    )
    model = keras.Model(images, {"probabilities": probabilities, "attention_pool3": a3, "attention_pool4": a4})
    loss, loss_weights = losses.attnmel_losses()
    assert loss_weights == {"probabilities": 1.0, "attention_pool3": 0.001, "attention_pool4": 0.01}
    model.compile(loss=loss, loss_weights=loss_weights)

    rng = np.random.default_rng(6)
    x = rng.random((4, 8, 8, 3)).astype(np.float32)
    labels = np.eye(2, dtype=np.float32)[[0, 1, 1, 0]]
    roi = (rng.random((4, 8, 8, 1)) > 0.5).astype(np.float32)  # full size
    targets = {"probabilities": labels, "attention_pool3": roi, "attention_pool4": roi}
    got = model.evaluate(x, targets, batch_size=4, verbose=0, return_dict=True)["loss"]

    out = {k: _value(v) for k, v in model(x).items()}
    p_t = (labels * out["probabilities"]).sum(-1)
    focal = np.mean(-((1 - p_t) ** 2) * np.log(p_t))

    def dice(a, size):
        r = roi.reshape(4, size, 8 // size, size, 8 // size, 1).mean(axis=(2, 4))
        return 1 - 2 * (a * r).sum() / (a + r).sum()

    regularisers = 0.001 * dice(out["attention_pool3"], 4) + 0.01 * dice(out["attention_pool4"], 2)
    expected = focal + regularisers
    _close(got, expected, rtol=1e-4)
