"""Test-wide settings: quiet TensorFlow, the TF backend unless KERAS_BACKEND says another, reproducible seeds."""

import os
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# JAX compiles every eager op, weight initialisers included (a threefry kernel per
# weight shape: 1-6 s each on 2 cores). Its persistent cache shares them between the
# xdist workers and the fresh processes the tests start (hits: 0.05 s). (LLVM's
# optimisation level 0 compiles 10x faster, but CBAM's jit-compiled gradient came out NaN.)
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "zoo-tests-jax-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same seeds (numpy, Python, TF through Keras)."""
    import keras

    keras.utils.set_random_seed(1234)
    yield
