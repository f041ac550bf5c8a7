"""The shared model harness passes good models and catches broken ones."""

import keras
import numpy as np
import pytest

from tests import model_checks


def _two_output_model() -> keras.Model:
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    mask = keras.layers.Conv2D(1, 1, activation="sigmoid", name="mask")(x)
    pooled = keras.layers.GlobalAveragePooling2D()(x)
    probs = keras.layers.Dense(2, activation="softmax", name="probs")(pooled)
    return keras.Model(inputs, {"mask": mask, "probs": probs}, name="two_outputs")


def test_harness_passes_a_sound_two_output_model(tmp_path):
    model_checks.run_all_checks(_two_output_model(), tmp_path)


class _DeadWeight(keras.layers.Layer):
    """Passes its input through and owns a weight that never touches the output."""

    def build(self, input_shape):
        self.dead = self.add_weight(shape=(1,), name="dead_weight")

    def call(self, inputs):
        return inputs


def test_gradient_check_names_a_weight_the_output_ignores():
    inputs = keras.Input((8, 8, 3))
    outputs = _DeadWeight()(keras.layers.Conv2D(2, 1)(inputs))
    model = keras.Model(inputs, outputs)
    with pytest.raises(AssertionError, match="dead_weight"):
        model_checks.check_gradients(model, model_checks.random_inputs(model))


def test_forward_check_catches_non_finite_outputs():
    inputs = keras.Input((4,))
    outputs = keras.layers.Lambda(lambda t: t / 0.0)(inputs)
    model = keras.Model(inputs, outputs)
    with pytest.raises(AssertionError, match="NaN or Inf"):
        model_checks.check_forward(model, np.ones((2, 4), np.float32))
