"""TensorFlow, imported on first use, so that the zoo runs where it is not installed.

Models, layers, losses, metrics, recipes, training on arrays and prediction on
decoded images run on any Keras backend (JAX, PyTorch, TensorFlow) and need no
TensorFlow. What stays TensorFlow's (the ``tf.data`` pipelines, SavedModel and
LiteRT export, ``tf.distribute``, TensorFlow's image decoders) is written against
the proxy this module gives::

    tf = lazy_tensorflow("the tf.data pipelines")

The module imports TensorFlow on the first attribute read of ``tf`` (so importing it
costs nothing), and when TensorFlow is not installed that read raises
:class:`TensorFlowMissingError`, one line naming the feature and the install
command. ``tests/test_tensorflow_optional.py`` fails when a module outside its short
allow-list imports TensorFlow at import time.
"""

from __future__ import annotations

import importlib
import sys
import types

INSTALL_HINT = "pip install tensorflow-cpu (CPU) or pip install 'tensorflow[and-cuda]' (GPU)"


class TensorFlowMissingError(ModuleNotFoundError):
    """A feature that needs TensorFlow was used where TensorFlow is not installed."""

    def __init__(self, feature: str):
        super().__init__(
            f"TensorFlow is not installed here, and {feature} needs it: {INSTALL_HINT}.", name="tensorflow"
        )
        self.feature = feature


def require_tensorflow(feature: str) -> types.ModuleType:
    """The ``tensorflow`` module, or :class:`TensorFlowMissingError` naming ``feature``."""
    module = sys.modules.get("tensorflow")
    if module is not None:
        return module
    try:
        return importlib.import_module("tensorflow")
    except ModuleNotFoundError as error:
        if error.name != "tensorflow":
            raise
        raise TensorFlowMissingError(feature) from None


class _LazyTensorFlow(types.ModuleType):
    """Stands for ``tensorflow`` in a module; imports it on the first attribute read."""

    def __init__(self, feature: str):
        super().__init__("tensorflow")
        self._feature = feature

    def __getattr__(self, name: str):
        if name.startswith("__"):  # copy/pickle/inspect probe dunders: no import for those
            raise AttributeError(name)
        return getattr(require_tensorflow(self._feature), name)

    def __repr__(self) -> str:
        return f"<tensorflow, imported on first use, for {self._feature}>"


def lazy_tensorflow(feature: str) -> types.ModuleType:
    """A stand-in for ``import tensorflow as tf`` that imports on first use (see the module doc).

    Args:
        feature: what needs TensorFlow, for the error where it is missing (e.g.
            ``"the tf.data pipelines"``).
    """
    return _LazyTensorFlow(feature)


def tensorflow_imported() -> bool:
    """Whether TensorFlow has been imported in this process (without importing it)."""
    return "tensorflow" in sys.modules
