"""Every builder of the zoo under mixed_float16: float32 outputs that agree with float32.

Each model is built twice at the benchmark's small size (:data:`reproduce.bench_models.SMALL_INPUT`),
once per policy, with the same weights; the mixed model's outputs must be float32 (the
heads keep their softmax/sigmoid in float32, as Keras' mixed-precision guide asks) and
close to the float32 model's, in inference mode (the moving statistics of fresh batch norms
are the identity; calibrating them on a 2-image batch of noise instead makes variances of
1e-10 after 1x1 poolings, whose amplified rounding says nothing about float16). All 25
models take about 75 s on two CPU cores.
"""
import warnings

import keras
import numpy as np
import pytest

from reproduce.bench_models import ZOO_MODELS, random_inputs
from zoo.runtime import precision_policy

TOLERANCE = 0.05  # probabilities: float16 keeps ~3 significant digits through ~50 layers


@pytest.mark.parametrize("entry", ZOO_MODELS, ids=lambda entry: entry.name)
def test_mixed_precision_outputs_are_float32_and_match(entry):
    reference = entry.build("small")
    with warnings.catch_warnings(), precision_policy(True):
        warnings.simplefilter("ignore", UserWarning)  # float16 is emulated on this CPU
        mixed = entry.build("small")
    inputs = random_inputs(reference, 2, np.random.default_rng(0))
    mixed.set_weights(reference.get_weights())
    expected = keras.tree.flatten(reference(inputs, training=False))
    outputs = keras.tree.flatten(mixed(inputs, training=False))
    assert keras.mixed_precision.global_policy().name == "float32"
    assert any(layer.dtype_policy.name == "mixed_float16" for layer in mixed.layers)
    for got, want in zip(outputs, expected, strict=True):
        assert got.dtype == "float32", f"{entry.name}: an output is {got.dtype}"
        got, want = np.asarray(got), np.asarray(want)
        assert np.all(np.isfinite(got)), f"{entry.name}: non-finite outputs under mixed_float16"
        np.testing.assert_allclose(got, want, atol=TOLERANCE, err_msg=entry.name)

