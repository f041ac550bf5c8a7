"""The few tensor operations the input transforms use, in TensorFlow and in ``keras.ops``.

The preprocessing of :mod:`data_tools.preprocess` (and the crops and pads of
:mod:`data_tools.patches` it calls) is written once against the interface below and
runs on either namespace:

* :data:`TENSORFLOW`: TensorFlow ops, for the ``tf.data`` pipelines and the
  SavedModel/LiteRT signatures, whatever the Keras backend. Image sizes may be
  unknown until run time (decoded images), so sizes are tensors (``tf.shape``).
* :data:`KERAS`: ``keras.ops``, for serving on any Keras backend without
  TensorFlow (JAX, PyTorch): images are arrays of known size, so sizes are ints.

Both give the same numbers (``tests/test_preprocess_ops.py`` compares them on every
registered model's spec). The resize follows TensorFlow's ``tf.image.resize``
without antialiasing (half-pixel centres), which ``keras.ops.image.resize`` matches
for ``"bilinear"``, ``"nearest"`` and ``"bicubic"``; ``"area"`` exists in TensorFlow only.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

from data_tools.lazy_tensorflow import lazy_tensorflow

tf = lazy_tensorflow("preprocessing in tf.data")


class TensorFlowOps:
    """TensorFlow's ops; sizes are ``int32`` tensors (known at run time only)."""

    name = "tensorflow"

    @staticmethod
    def asarray(x: Any, dtype: str | None = None):
        return tf.convert_to_tensor(x, dtype)

    @staticmethod
    def static_shape(x) -> tuple:
        return tuple(x.shape) if x.shape.rank is not None else ()

    @staticmethod
    def spatial_size(x) -> tuple:
        shape = tf.shape(x)
        return shape[-3], shape[-2]

    @staticmethod
    def dtype_kind(x) -> str:
        """``"int"``, ``"float"`` or another (bool, string ...)."""
        return "int" if x.dtype.is_integer else "float" if x.dtype.is_floating else x.dtype.name

    @staticmethod
    def to_unit_float(x):
        """Integer images over their dtype's maximum, as float32."""
        return tf.image.convert_image_dtype(x, tf.float32)

    cast = staticmethod(lambda x, dtype: tf.cast(x, dtype))
    clip = staticmethod(lambda x, low, high: tf.clip_by_value(x, low, high))
    where = staticmethod(lambda condition, x, y: tf.where(condition, x, y))
    mean = staticmethod(lambda x, axis, keepdims=False: tf.reduce_mean(x, axis=axis, keepdims=keepdims))
    concatenate = staticmethod(lambda xs, axis: tf.concat(xs, axis))
    reverse_channels = staticmethod(lambda x: tf.reverse(x, axis=[-1]))
    size_max = staticmethod(lambda a, b: tf.maximum(a, b))

    @staticmethod
    def size_fraction(fraction: float, size):
        """``max(floor(fraction * size), 1)`` of a size."""
        return tf.maximum(tf.cast(tf.math.floor(fraction * tf.cast(size, tf.float32)), tf.int32), 1)

    @staticmethod
    def size_min(a, b):
        return tf.minimum(a, b)

    @staticmethod
    def pad(x, paddings, value):
        return tf.pad(x, paddings, constant_values=tf.cast(value, x.dtype))

    @staticmethod
    def resize(x, size, method: str):
        return tf.image.resize(x, size, method=method)


class KerasOps:
    """``keras.ops`` on the Keras backend in use; sizes are Python ints."""

    name = "keras"

    @staticmethod
    def asarray(x: Any, dtype: str | None = None):
        return keras.ops.convert_to_tensor(x, dtype)

    @staticmethod
    def static_shape(x) -> tuple:
        return tuple(keras.ops.shape(x))

    @staticmethod
    def spatial_size(x) -> tuple:
        shape = keras.ops.shape(x)
        return int(shape[-3]), int(shape[-2])

    @staticmethod
    def dtype_kind(x) -> str:
        dtype = keras.backend.standardize_dtype(x.dtype)
        return "int" if "int" in dtype else "float" if "float" in dtype else dtype

    @staticmethod
    def to_unit_float(x):
        dtype = keras.backend.standardize_dtype(x.dtype)
        return keras.ops.cast(x, "float32") * np.float32(1.0 / np.iinfo(dtype).max)

    cast = staticmethod(lambda x, dtype: keras.ops.cast(x, dtype))
    clip = staticmethod(lambda x, low, high: keras.ops.clip(x, low, high))
    where = staticmethod(lambda condition, x, y: keras.ops.where(condition, x, y))
    mean = staticmethod(lambda x, axis, keepdims=False: keras.ops.mean(x, axis=axis, keepdims=keepdims))
    concatenate = staticmethod(lambda xs, axis: keras.ops.concatenate(xs, axis=axis))
    reverse_channels = staticmethod(lambda x: keras.ops.flip(x, axis=-1))
    size_max = staticmethod(max)
    size_min = staticmethod(min)

    @staticmethod
    def size_fraction(fraction: float, size: int) -> int:
        return max(int(math.floor(fraction * size)), 1)

    @staticmethod
    def pad(x, paddings, value):
        return keras.ops.pad(x, paddings, constant_values=value)

    @staticmethod
    def resize(x, size, method: str):
        if method == "area":
            raise ValueError(
                "InputSpec.resize='area' exists in TensorFlow only (tf.image.resize); "
                "keras.ops.image.resize has no such method: use 'bilinear' or serve with TensorFlow."
            )
        kind = KerasOps.dtype_kind(x)
        resized = keras.ops.image.resize(
            keras.ops.cast(x, "float32"),
            tuple(int(side) for side in size),
            interpolation=method,
            antialias=False,
            data_format="channels_last",
        )
        # As tf.image.resize: nearest keeps the dtype, the other methods give float32.
        return keras.ops.cast(resized, x.dtype) if method == "nearest" and kind != "float" else resized


TENSORFLOW = TensorFlowOps()
KERAS = KerasOps()
OPS = {"tensorflow": TENSORFLOW, "keras": KERAS}


Ops = TensorFlowOps | KerasOps


def tensor_ops(ops: str | Ops) -> Ops:
    """:data:`TENSORFLOW` or :data:`KERAS`, by name (``"tensorflow"``, ``"keras"``) or as is."""
    if isinstance(ops, (TensorFlowOps, KerasOps)):
        return ops
    if ops not in OPS:
        raise ValueError(f"ops must be one of {tuple(OPS)}, got {ops!r}.")
    return OPS[ops]
