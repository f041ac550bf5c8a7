"""Attention residual learning (ARL) layers (Zhang et al., IEEE TMI 2019, Sec. III-A).

An ARL block adds an attention term to the residual block (eq. 9):

    y = x + F(x) + alpha * N[F(x)] * x

where F(x) is the residual branch, x the (possibly projected) shortcut, N one of
three parameter-free normalisations (eq. 4-6) and alpha a learnable scalar, the
"scale gate". It is computed in one of two forms, with the same mathematics:

* one layer (the models' default): ``ScaleGate(alpha, normalization=...)`` on
  ``[F(x), x]`` returns the gated shortcut ``x + alpha * N[F(x)] * x``, and the
  block adds F(x). The mask is never materialised: for the spatial softmax the
  per-channel ``alpha / sum exp(F - max F)`` is one ``(B, 1, 1, C)`` scale applied
  to ``exp(F - max F)``, and the max is a constant to the gradient (the softmax
  does not depend on it, so its exact gradient through the max is zero; autodiff
  would compute that zero in three more full-size passes). On a CPU this halves
  the ARL block's cost over the residual block (``reproduce/benchmark.py``).
* two layers (models built with ``return_attention=True``, whose maps are the
  masks, and files saved before the one-layer form): :class:`AttentionNormalization`
  computes N[F(x)] and ``ScaleGate(alpha)`` on ``[mask, x]`` computes
  alpha * N[F(x)] * x; the block adds the three terms.

Both forms have the same weight (``alpha`` of the ``{block}_scale_gate`` layer), so
checkpoints load into either.
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
        weights, total = _spatial_exp(features)
        return weights * (1.0 / total)
    if normalization == "channel":
        return ops.softmax(features, axis=-1)
    if normalization == "mixed":
        return ops.sigmoid(features)
    raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")


def _spatial_exp(features):
    """``exp(F - max F)`` over each channel's positions and its sum ``(B, 1, 1, C)``.

    The max only keeps exp from overflowing: the softmax does not depend on it, so
    its gradient through the max is exactly zero and is not computed.
    """
    peak = ops.stop_gradient(ops.max(features, axis=(1, 2), keepdims=True))
    weights = ops.exp(features - peak)
    return weights, ops.sum(weights, axis=(1, 2), keepdims=True)


def attention_gain(features, alpha, normalization: str):
    """``alpha * N[F]`` for a float32 map F: the spatial softmax with alpha and the
    per-channel 1 / sum folded into one ``(B, 1, 1, C)`` scale, so that the full-size
    map is touched once (``exp(F - max F) * scale``)."""
    if normalization == "spatial":
        weights, total = _spatial_exp(features)
        return weights * (alpha / total)
    return alpha * normalize_attention(features, normalization)


def _check_normalization(normalization: str) -> None:
    if normalization not in NORMALIZATIONS:
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
        _check_normalization(normalization)
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
    """The scale gate of eq. 8-9, alpha a learnable scalar, in one of two forms.

    * ``normalization=None`` (the two-layer form): inputs ``[mask, x]`` of equal
      shape, the mask from :class:`AttentionNormalization`; returns the attention
      feature map ``alpha * mask * x``.
    * ``normalization`` one of ``"spatial"``, ``"channel"``, ``"mixed"`` (the
      one-layer form): inputs ``[F(x), x]`` of equal shape; returns the gated
      shortcut ``x + alpha * N[F(x)] * x`` (eq. 9 less F(x)), with N computed in
      float32 and folded with alpha into one gain (:func:`attention_gain`).

    The paper initialises alpha to 0.001 in every ARL block when fine-tuning
    ARL-CNN50 (Sec. IV-B); it gives no value for training from scratch. With
    alpha = 0 the ARL block is exactly a residual block.

    Args:
        alpha_initial: initial value of alpha.
        normalization: ``None`` or the mask normalisation of the one-layer form.
            Files saved before it existed have none and load as the two-layer form.
    """

    def __init__(self, alpha_initial: float = 0.001, normalization: str | None = None, **kwargs):
        super().__init__(**kwargs)
        if normalization is not None:
            _check_normalization(normalization)
        self.alpha_initial = float(alpha_initial)
        self.normalization = normalization

    def build(self, input_shape):
        first_shape, x_shape = (tuple(shape) for shape in input_shape)
        if first_shape[1:] != x_shape[1:]:
            first = "attention mask" if self.normalization is None else "residual branch"
            raise ValueError(
                f"{self.name}: the {first} {first_shape} and the gated input {x_shape} must have the same shape"
            )
        self.alpha = self.add_weight(
            shape=(), name="alpha", initializer=keras.initializers.Constant(self.alpha_initial)
        )

    def call(self, inputs):
        first, x = inputs
        if self.normalization is None:
            return ops.cast(self.alpha, self.compute_dtype) * first * x
        gain = attention_gain(ops.cast(first, "float32"), ops.cast(self.alpha, "float32"), self.normalization)
        # x * (1 + gain) rather than x + x * gain: one full-size op fewer in the
        # gradient, and no less precise (the block adds the term to x + F(x) anyway).
        return x * ops.cast(1.0 + gain, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[1])

    def get_config(self):
        return {**super().get_config(), "alpha_initial": self.alpha_initial, "normalization": self.normalization}
