"""sRGB to CIELAB, in TensorFlow for tf.data and in keras.ops for use inside models.

AER-Net (Lima & Braz Junior, AER-Net, section 3.1) converts the dermoscopy images to CIELAB and
normalises each channel to [0, 1]. The conversion here is the standard one (IEC
61966-2-1 sRGB, CIE 1976 L*a*b*) and matches ``skimage.color.rgb2lab`` with its
default D65 / 2-degree illuminant:

1. sRGB gamma expansion: ``c / 12.92`` below 0.04045, else
   ``((c + 0.055) / 1.055) ** 2.4``.
2. Linear RGB -> XYZ with the sRGB D65 matrix.
3. XYZ / white point (D65), then ``f(t) = t ** (1/3)`` above epsilon = 216/24389,
   else ``(kappa t + 16) / 116`` with kappa = 24389/27;
   ``L = 116 f(Y) - 16``, ``a = 500 (f(X) - f(Y))``, ``b = 200 (f(Y) - f(Z))``.

One implementation of the maths (``_lab``) runs on two namespaces of the same
op names: TensorFlow's for :func:`rgb_to_lab` / :func:`rgb_to_lab_unit` (tf.data
maps, whatever the Keras backend), ``keras.ops`` for the :class:`RGBToLab` layer
(TensorFlow, JAX and PyTorch backends). Plain math (no ``numpy_function``), so
it runs in tf.data maps, in graph mode and under ``jit_compile=True``. Both
branches of every ``where`` are evaluated on clamped arguments, so gradients stay
finite at black.
"""

from __future__ import annotations

import functools
import types

import keras
import numpy as np

from data_tools.lazy_tensorflow import lazy_tensorflow
from data_tools.tensor_ops import KERAS, Ops, tensor_ops

tf = lazy_tensorflow("the tf.data CIELAB conversion")

# Linear sRGB -> XYZ, D65 (IEC 61966-2-1; the matrix scikit-image uses).
_RGB_TO_XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
# Reference white D65, 2-degree observer.
_D65_WHITE = (0.95047, 1.0, 1.08883)
_EPSILON = 216.0 / 24389.0
_KAPPA = 24389.0 / 27.0

# AER-Net's per-channel [0, 1] scaling (see lab_to_unit).
_LAB_UNIT_OFFSET = (0.0, 128.0, 128.0)
_LAB_UNIT_RANGE = (100.0, 255.0, 255.0)


def _as_float_rgb(rgb: tf.Tensor, name: str) -> tf.Tensor:
    """Float32 RGB in [0, 1]; integer images are divided by their dtype's max."""
    rgb = tf.convert_to_tensor(rgb)
    if rgb.shape.rank is not None and (rgb.shape.rank == 0 or rgb.shape[-1] not in (None, 3)):
        raise ValueError(f"{name}: expected RGB values with 3 channels in the last axis, got shape {rgb.shape}.")
    if rgb.dtype.is_integer:
        return tf.image.convert_image_dtype(rgb, tf.float32)
    if not rgb.dtype.is_floating:
        raise TypeError(f"{name}: expected a float or integer image tensor, got dtype {rgb.dtype.name}.")
    return tf.cast(rgb, tf.float32)


def _power(base, exponent: float, xp):
    """``base ** exponent`` for positive ``base`` as exp(log): about twice as fast as ``tf.pow`` on CPU."""
    return xp.exp(exponent * xp.log(base))


def _srgb_to_linear(rgb, xp):
    """Inverse sRGB companding (IEC 61966-2-1)."""
    curved = _power((xp.maximum(rgb, 0.04045) + 0.055) / 1.055, 2.4, xp)
    return xp.where(rgb > 0.04045, curved, rgb / 12.92)


def _lab_f(t, xp):
    """The CIE L*a*b* companding function with its linear segment near zero."""
    cube_root = _power(xp.maximum(t, _EPSILON), 1.0 / 3.0, xp)
    return xp.where(t > _EPSILON, cube_root, (_KAPPA * t + 16.0) / 116.0)


def _lab(rgb, xp):
    """The conversion itself, once for both namespaces: ``xp`` is :func:`_tf_ops`
    (tf.data) or ``keras.ops`` (the layer, any backend); ``rgb`` float32 in [0, 1]."""
    rgb = xp.clip(rgb, 0.0, 1.0)
    linear = _srgb_to_linear(rgb, xp)
    # tensordot over the last axis (a plain matmul); matvec's broadcasting is ~7x slower.
    xyz = xp.tensordot(linear, np.asarray(_RGB_TO_XYZ, np.float32), axes=[[-1], [1]])
    f = _lab_f(xyz / np.asarray(_D65_WHITE, np.float32), xp)
    fx, fy, fz = xp.unstack(f, axis=-1)
    return xp.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def _unit(lab):
    """AER-Net's per-channel [0, 1] scaling of float32 L*a*b* (see :func:`lab_to_unit`)."""
    return (lab + np.asarray(_LAB_UNIT_OFFSET, np.float32)) / np.asarray(_LAB_UNIT_RANGE, np.float32)


@functools.cache
def _tf_ops() -> types.SimpleNamespace:
    """The names of keras.ops that :func:`_lab` uses, as TensorFlow functions."""
    return types.SimpleNamespace(
        exp=tf.exp,
        log=tf.math.log,
        maximum=tf.maximum,
        where=tf.where,
        clip=tf.clip_by_value,
        tensordot=tf.tensordot,
        unstack=tf.unstack,
        stack=tf.stack,
    )


def _keras_float_rgb(rgb):
    """:func:`_as_float_rgb` in ``keras.ops``: float32, integers over their dtype's maximum."""
    dtype = keras.backend.standardize_dtype(rgb.dtype)
    rgb = keras.ops.cast(rgb, "float32")
    return rgb * np.float32(1.0 / np.iinfo(dtype).max) if "int" in dtype else rgb


def rgb_to_lab(rgb: tf.Tensor, ops: str | Ops = "tensorflow") -> tf.Tensor:
    """sRGB -> CIE L*a*b* (D65), like ``skimage.color.rgb2lab``.

    Args:
        rgb: ``[..., 3]`` sRGB, float in [0, 1] (values outside are clipped) or an
            integer image (divided by its dtype's maximum, e.g. 255 for uint8).
        ops: ``"tensorflow"`` (tf.data) or ``"keras"`` (``keras.ops``, any backend).

    Returns:
        float32 ``[..., 3]``: L* in [0, 100], a* and b* roughly in [-128, 127].
    """
    if tensor_ops(ops) is KERAS:
        return _lab(_keras_float_rgb(KERAS.asarray(rgb)), keras.ops)
    return _lab(_as_float_rgb(rgb, "rgb_to_lab"), _tf_ops())


def lab_to_unit(lab: tf.Tensor, ops: str | Ops = "tensorflow") -> tf.Tensor:
    """Scale L*a*b* to [0, 1] per channel: ``(L / 100, (a + 128) / 255, (b + 128) / 255)``.

    AER-Net (section 3.1) normalises "each channel to [0, 1]" without giving the
    bounds. We use the 8-bit CIELAB convention of OpenCV's ``COLOR_RGB2LAB``
    (``L * 255/100, a + 128, b + 128``) divided by 255, which is what a Keras
    pipeline built on ``cv2`` and ``/ 255.`` produces. The sRGB gamut spans
    a* in [-86.2, 98.2] and b* in [-107.9, 94.5], so every sRGB colour maps inside
    [0, 1] with the neutral axis (a = b = 0) at 128/255.
    """
    xp = tensor_ops(ops)
    return _unit(xp.cast(xp.asarray(lab), "float32"))


def rgb_to_lab_unit(rgb: tf.Tensor, ops: str | Ops = "tensorflow") -> tf.Tensor:
    """sRGB -> CIELAB scaled to [0, 1] per channel (AER-Net's input)."""
    return lab_to_unit(rgb_to_lab(rgb, ops), ops)


@keras.saving.register_keras_serializable(package="zoo")
class RGBToLab(keras.layers.Layer):
    """sRGB in [0, 1] -> CIELAB, as a layer (for models that take RGB input).

    Args:
        unit: if True (default) return :func:`rgb_to_lab_unit` (AER-Net's [0, 1]
            scaling), else raw L*a*b*.

    The conversion (the same maths as :func:`rgb_to_lab`, in ``keras.ops``: any
    backend) runs in float32 and is cast to the layer's compute dtype, so it keeps
    its precision under mixed precision. Integer inputs are divided by their
    dtype's maximum, as in :func:`rgb_to_lab`. No weights.
    """

    def __init__(self, unit: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.unit = bool(unit)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if input_shape[-1] not in (None, 3):
            raise ValueError(f"RGBToLab expects 3 input channels (RGB), got input shape {input_shape}.")
        super().build(input_shape)

    def call(self, inputs):
        lab = rgb_to_lab(inputs, KERAS)
        return keras.ops.cast(_unit(lab) if self.unit else lab, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config["unit"] = self.unit
        return config
