"""PyTorch-style weight decay (zoo.optimizers) against torch.optim's update, written in numpy."""

import keras
import numpy as np
import pytest

from zoo.optimizers import L2SGD, L2Adam

LR, WD, MOMENTUM = 0.1, 0.05, 0.9
GRADS = [
    np.array([0.5, -1.0, 2.0], np.float32),
    np.array([0.1, 0.3, -0.2], np.float32),
    np.array([-0.7, 0.2, 0.4], np.float32),
]
W0 = np.array([1.0, -2.0, 0.5], np.float32)


def torch_sgd_nesterov(w, grads):
    """torch.optim.SGD(lr, momentum, nesterov=True, weight_decay) step by step."""
    w, buf = w.astype(np.float64), None
    for g in grads:
        d_p = g + WD * w
        buf = d_p if buf is None else MOMENTUM * buf + d_p
        w = w - LR * (d_p + MOMENTUM * buf)
    return w


def torch_adam_amsgrad(w, grads, beta1=0.9, beta2=0.999, eps=1e-7):
    """torch.optim.Adam(lr, betas, eps, weight_decay, amsgrad=True) step by step."""
    w = w.astype(np.float64)
    m = v = v_max = np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        g = g + WD * w
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = np.maximum(v_max, v)
        denominator = np.sqrt(v_max) / np.sqrt(1 - beta2**t) + eps
        w = w - LR / (1 - beta1**t) * m / denominator
    return w


def run_keras(optimizer, grads):
    variable = keras.Variable(W0.copy())
    for g in grads:
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(g), variable)])
    return np.asarray(variable)


def test_sgd_steps_equal_pytorch_coupled_weight_decay():
    got = run_keras(L2SGD(LR, momentum=MOMENTUM, nesterov=True, l2_weight_decay=WD), GRADS)
    np.testing.assert_allclose(got, torch_sgd_nesterov(W0, GRADS), rtol=1e-6, atol=1e-6)
    # Keras' own (decoupled) weight_decay is a different update: the test can tell them apart.
    decoupled = run_keras(keras.optimizers.SGD(LR, momentum=MOMENTUM, nesterov=True, weight_decay=WD), GRADS)
    assert np.abs(decoupled - torch_sgd_nesterov(W0, GRADS)).max() > 1e-2


def test_adam_amsgrad_steps_equal_pytorch_coupled_weight_decay():
    got = run_keras(L2Adam(LR, amsgrad=True, l2_weight_decay=WD), GRADS)
    # Epsilon sits in another place in Keras (see L2Adam's docstring): 1e-7 matters little.
    np.testing.assert_allclose(got, torch_adam_amsgrad(W0, GRADS), rtol=1e-4, atol=1e-5)
    plain = run_keras(keras.optimizers.Adam(LR, amsgrad=True), GRADS)
    assert np.abs(plain - torch_adam_amsgrad(W0, GRADS)).max() > 1e-3


def test_excluded_variables_get_no_decay_and_config_round_trips():
    optimizer = L2SGD(LR, l2_weight_decay=WD)
    variable = keras.Variable(W0.copy(), name="bias")
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    optimizer.apply_gradients([(keras.ops.convert_to_tensor(GRADS[0]), variable)])
    np.testing.assert_allclose(np.asarray(variable), W0 - LR * GRADS[0], rtol=1e-6)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(L2Adam(1e-3, l2_weight_decay=WD)))
    assert type(restored) is L2Adam and restored.l2_weight_decay == WD


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"l2_weight_decay": -1.0}, "non-negative"),
        ({"l2_weight_decay": 1e-4, "weight_decay": 1e-4}, "not both"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        L2SGD(0.1, **kwargs)
