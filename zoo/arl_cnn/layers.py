"""Attention residual learning (ARL) layers (Zhang et al., IEEE TMI 2019, Sec. III-A).

An ARL block adds an attention term to the residual block (eq. 9):

    y = x + F(x) + alpha * N[F(x)] * x

where F(x) is the residual branch, x the (possibly projected) shortcut, N one of
three parameter-free normalisations (eq. 4-6) and alpha a learnable scalar, the
"scale gate". :class:`AttentionNormalization` computes N[F(x)] and
:class:`ScaleGate` computes alpha * N[F(x)] * x; the block adds the three terms.
"""
from __future__ import annotations

import keras
from keras import ops

from zoo.common.validation import check_feature_map

NORMALIZATIONS = ("spatial", "channel", "mixed")


def normalize_attention(features, normalization: str):
    """The attention mask N(O) of eq. 4-6 for a channels-last map O (B, H, W, C).

    * ``"spatial"`` (eq. 4): softmax over the H x W positions of each channel.
    * ``"channel"`` (eq. 5): softmax over the C channels at each position.
    * ``"mixed"`` (eq. 6): element-wise sigmoid.
    """
    if normalization == "spatial":
        shifted = features - ops.max(features, axis=(1, 2), keepdims=True)
        weights = ops.exp(shifted)
        return weights / ops.sum(weights, axis=(1, 2), keepdims=True)
    if normalization == "channel":
        return ops.softmax(features, axis=-1)
    if normalization == "mixed":
        return ops.sigmoid(features)
    raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")


@keras.saving.register_keras_serializable(package="zoo")
class AttentionNormalization(keras.layers.Layer):
    """Parameter-free attention mask N[F(x)] of eq. 3-6 (no weights).

    Computed in float32 (a spatial softmax over 56 x 56 positions has entries near
    3e-4) and returned in the layer's compute dtype.

    Args:
        normalization: "spatial" (eq. 4, the paper's choice), "channel" (eq. 5)
            or "mixed" (eq. 6) — Table V's "spatial-wise softmax",
            "channel-wise softmax" and "mixed sigmoid".
    """

    def __init__(self, normalization: str = "spatial", **kwargs):
        super().__init__(**kwargs)
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, "
                             f"got {normalization!r}")
        self.normalization = normalization

    def build(self, input_shape):
        check_feature_map(self.name, input_shape, known_channels=False)

    def call(self, inputs):
        mask = normalize_attention(ops.cast(inputs, "float32"), self.normalization)
        return ops.cast(mask, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "normalization": self.normalization}


@keras.saving.register_keras_serializable(package="zoo")
class ScaleGate(keras.layers.Layer):
    """Attention feature map alpha * mask * x of eq. 8-9, alpha a learnable scalar.

    Inputs ``[mask, x]`` of equal shape. The paper initialises alpha to 0.001 in
    every ARL block when fine-tuning ARL-CNN50 (Sec. IV-B); it gives no value for
    training from scratch. With alpha = 0 the ARL block is exactly a residual block.

    Args:
        alpha_initial: initial value of alpha.
    """

    def __init__(self, alpha_initial: float = 0.001, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initial = float(alpha_initial)

    def build(self, input_shape):
        mask_shape, x_shape = (tuple(shape) for shape in input_shape)
        if mask_shape[1:] != x_shape[1:]:
            raise ValueError(f"{self.name}: the attention mask {mask_shape} and the "
                             f"gated input {x_shape} must have the same shape")
        self.alpha = self.add_weight(
            shape=(), name="alpha",
            initializer=keras.initializers.Constant(self.alpha_initial))

    def call(self, inputs):
        mask, x = inputs
        return ops.cast(self.alpha, self.compute_dtype) * mask * x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[1])

    def get_config(self):
        return {**super().get_config(), "alpha_initial": self.alpha_initial}
