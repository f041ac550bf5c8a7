"""Test-wide settings: quiet TensorFlow, the TF backend unless KERAS_BACKEND says another, reproducible seeds."""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ["KERAS_BACKEND"] == "jax":
    # JAX compiles every eager op, weight initialisers included (one threefry kernel per
    # weight shape: 2-6 s each on 2 cores); without LLVM's optimisations 0.4 s. The test
    # models are tiny, so compiling dominates. Inherited by the fresh processes.
    os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same seeds (numpy, Python, TF through Keras)."""
    import keras

    keras.utils.set_random_seed(1234)
    yield
