"""Position and channel attention modules of DANet (Fu et al., "Dual attention network
for scene segmentation", CVPR 2019), the DANet baseline of A-PSPNet (Table III) and SANet.

With ``A`` the ``(N = H W, C)`` feature map of one image:

* position attention (Fu et al. eq. 1-2): ``B, C', D`` are 1x1 convolutions of
  ``A`` (``C / 8``, ``C / 8`` and ``C`` channels);
  ``s_ji = exp(B_i . C'_j) / sum_i exp(B_i . C'_j)`` and
  ``E_j = alpha sum_i s_ji D_i + A_j``;
* channel attention (eq. 3-4): ``x_ji = exp(A_i . A_j) / sum_i exp(A_i . A_j)``
  over channels ``i, j`` and ``E_j = beta sum_i x_ji A_i + A_j``.

``alpha`` and ``beta`` start at 0 (Fu et al. section 3.2), so each module starts as
the identity. The DANet reference code (junfu1115/DANet) feeds the channel softmax
``max_i(A_i . A_j) - A_i . A_j`` instead of ``A_i . A_j`` (it favours *dissimilar*
channels); ``max_subtracted_energy=True`` reproduces it, the paper's eq. 3 is the
default.

With ``return_attention=True`` each layer also returns its attention, the softmax it
computes anyway: ``s`` ``(batch, N, N)`` (row ``j``: the weights of the positions
``i`` for position ``j``) and ``x`` ``(batch, C, C)``.
"""

from __future__ import annotations

import keras
from keras import ops

from zoo.common.validation import check_bool, check_feature_map


def _flatten_positions(x):
    """``(batch, H, W, C)`` -> ``(batch, H W, C)``."""
    shape = ops.shape(x)
    return ops.reshape(x, (shape[0], shape[1] * shape[2], shape[3]))


@keras.saving.register_keras_serializable(package="zoo")
class DANetPositionAttention(keras.layers.Layer):
    """Position attention module (Fu et al. section 3.2, Fig. 2A): same shape out as in.

    Args:
        reduction: ``B`` and ``C'`` have ``max(1, C // reduction)`` channels (8 in
            Fu et al.).
        return_attention: return ``(E, s)``: also the position attention ``s`` of
            eq. 1, ``(batch, H W, H W)``.
    """

    def __init__(self, reduction: int = 8, return_attention: bool = False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(reduction, bool) or not isinstance(reduction, int) or reduction < 1:
            raise ValueError(f"reduction must be a positive integer, got {reduction!r}")
        self.reduction = reduction
        self.return_attention = check_bool("return_attention", return_attention)

    def build(self, input_shape):
        channels = check_feature_map(self.name, input_shape)[-1]
        key_channels = max(1, channels // self.reduction)
        for name, width in (("query", key_channels), ("key", key_channels), ("value", channels)):
            setattr(
                self,
                f"{name}_kernel",
                self.add_weight(shape=(channels, width), name=f"{name}_kernel", initializer="glorot_uniform"),
            )
            setattr(self, f"{name}_bias", self.add_weight(shape=(width,), name=f"{name}_bias", initializer="zeros"))
        self.alpha = self.add_weight(shape=(), name="alpha", initializer="zeros")

    def call(self, inputs):
        features = _flatten_positions(inputs)
        query = ops.matmul(features, self.query_kernel) + self.query_bias  # B
        key = ops.matmul(features, self.key_kernel) + self.key_bias  # C'
        value = ops.matmul(features, self.value_kernel) + self.value_bias  # D
        # attention[j, i] = s_ji, normalised over the positions i.
        attention = ops.softmax(ops.matmul(key, ops.transpose(query, (0, 2, 1))), axis=-1)
        attended = ops.reshape(ops.matmul(attention, value), ops.shape(inputs))
        outputs = self.alpha * attended + inputs
        return (outputs, attention) if self.return_attention else outputs

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if not self.return_attention:
            return input_shape
        height, width = input_shape[1:3]
        positions = None if height is None or width is None else height * width
        return input_shape, (input_shape[0], positions, positions)

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction, "return_attention": self.return_attention}


@keras.saving.register_keras_serializable(package="zoo")
class DANetChannelAttention(keras.layers.Layer):
    """Channel attention module (Fu et al. section 3.3, Fig. 2B): same shape out as in.

    Args:
        max_subtracted_energy: softmax over ``max - A_i . A_j`` as the reference
            code does, instead of the paper's ``A_i . A_j`` (eq. 3).
        return_attention: return ``(E, x)``: also the channel attention ``x`` of
            eq. 3, ``(batch, C, C)``.
    """

    def __init__(self, max_subtracted_energy: bool = False, return_attention: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.max_subtracted_energy = check_bool("max_subtracted_energy", max_subtracted_energy)
        self.return_attention = check_bool("return_attention", return_attention)

    def build(self, input_shape):
        check_feature_map(self.name, input_shape)
        self.beta = self.add_weight(shape=(), name="beta", initializer="zeros")

    def call(self, inputs):
        features = _flatten_positions(inputs)  # (batch, N, C)
        # Energies sum N products: float32 even under mixed precision (float16
        # overflows at 60x60 features).
        wide = ops.cast(features, "float32")
        energy = ops.matmul(ops.transpose(wide, (0, 2, 1)), wide)  # [j, i] = A_j . A_i
        if self.max_subtracted_energy:
            energy = ops.max(energy, axis=-1, keepdims=True) - energy
        attention = ops.cast(ops.softmax(energy, axis=-1), inputs.dtype)  # x_ji over i
        attended = ops.matmul(features, ops.transpose(attention, (0, 2, 1)))
        outputs = self.beta * ops.reshape(attended, ops.shape(inputs)) + inputs
        return (outputs, attention) if self.return_attention else outputs

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if not self.return_attention:
            return input_shape
        return input_shape, (input_shape[0], input_shape[-1], input_shape[-1])

    def get_config(self):
        return {
            **super().get_config(),
            "max_subtracted_energy": self.max_subtracted_energy,
            "return_attention": self.return_attention,
        }
