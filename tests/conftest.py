"""Test-wide settings: quiet TensorFlow, the TF backend, reproducible seeds."""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same seeds (numpy, Python, TF through Keras)."""
    import keras

    keras.utils.set_random_seed(1234)
    yield
