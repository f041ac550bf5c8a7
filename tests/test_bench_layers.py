"""Every custom layer compiles under XLA (forward and gradient) and runs in mixed precision."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from reproduce import bench_layers
from reproduce.bench_layers import LAYER_CASES, LayerCase, check_layer, registered_layers, uncovered_layers


def test_every_registered_layer_has_a_case():
    # A new layer registered under "zoo" without an XLA case fails here.
    assert len(registered_layers()) >= 14
    assert uncovered_layers() == []
    assert len({case.name for case in LAYER_CASES}) == len(LAYER_CASES)


def test_uncovered_layers_names_a_layer_without_a_case():
    cases = [case for case in LAYER_CASES if case.layer is not bench_layers.SqueezeExcitation]
    assert uncovered_layers(cases) == ["SqueezeExcitation"]


@pytest.mark.parametrize("case", LAYER_CASES, ids=lambda case: case.name)
def test_layer_compiles_under_xla_and_runs_in_mixed_precision(case):
    row = check_layer(case)
    assert row["status"] == bench_layers.OK, row["error"]
    assert row["xla_error"] <= bench_layers.XLA_TOLERANCE
    assert row["gradient_error"] <= bench_layers.XLA_TOLERANCE
    assert row["mixed_error"] <= bench_layers.MIXED_TOLERANCE
    assert keras.mixed_precision.global_policy().name == "float32"


@keras.saving.register_keras_serializable(package="zoo_test")
class HostOnlyLayer(keras.layers.Layer):
    """Calls numpy through tf.numpy_function: XLA cannot compile it."""

    def call(self, inputs):
        doubled = tf.numpy_function(lambda x: (2 * x).astype(np.float32), [inputs], tf.float32)
        return tf.ensure_shape(doubled, inputs.shape)


class Float16OverflowLayer(keras.layers.Layer):
    """Squares twice in the compute dtype: 1e2 ** 4 = 1e8 overflows float16 (max 65504)."""

    def call(self, inputs):
        return keras.ops.square(keras.ops.square(inputs * 100.0)) * 1e-8


def test_a_layer_xla_cannot_compile_is_reported_not_raised():
    case = LayerCase("host_only", HostOnlyLayer, HostOnlyLayer, lambda rng: [rng.random((2, 3)).astype(np.float32)])
    row = check_layer(case)
    assert row["status"] == bench_layers.XLA_FAILED
    assert row["error"]


def test_float16_overflow_is_reported():
    case = LayerCase(
        "overflow", Float16OverflowLayer, Float16OverflowLayer, lambda rng: [np.full((2, 3), 1.0, np.float32)]
    )
    row = check_layer(case)
    assert row["status"] == bench_layers.MIXED_FAILED
    assert row["xla_error"] <= bench_layers.XLA_TOLERANCE
    assert row["mixed_error"] == float("inf")
