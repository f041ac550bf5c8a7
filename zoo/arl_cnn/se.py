"""Squeeze-and-excitation (Hu et al., CVPR 2018), the SEnet baseline of the ARL paper.

SE recalibrates channels: s = sigmoid(W2 relu(W1 GAP(x) + b1) + b2), y = s * x,
with W1 reducing C channels to C / ratio. In an SE-ResNet block it scales the
residual branch before the shortcut is added (Hu et al., Fig. 3).
"""

from __future__ import annotations

import keras
from keras import ops

from zoo.common.validation import check_bool, check_feature_map


@keras.saving.register_keras_serializable(package="zoo")
class SqueezeExcitation(keras.layers.Layer):
    """Channel recalibration y = x * sigmoid(FC(relu(FC(GAP(x))))).

    Args:
        ratio: reduction ratio r of the bottleneck FC layer (Hu et al. use 16).
        return_excitation: return ``(y, s)``: also the excitation vector ``s`` of
            shape ``(batch, C)`` (Hu et al. eq. 3), the SEnet's attention map.
    """

    def __init__(self, ratio: int = 16, return_excitation: bool = False, **kwargs):
        super().__init__(**kwargs)
        if int(ratio) < 1:
            raise ValueError(f"ratio must be a positive integer, got {ratio!r}")
        self.ratio = int(ratio)
        self.return_excitation = check_bool("return_excitation", return_excitation)

    def build(self, input_shape):
        channels = check_feature_map(self.name, input_shape)[-1]
        hidden = max(1, channels // self.ratio)
        self.squeeze_kernel = self.add_weight(
            shape=(channels, hidden), name="squeeze_kernel", initializer="glorot_uniform"
        )
        self.squeeze_bias = self.add_weight(shape=(hidden,), name="squeeze_bias", initializer="zeros")
        self.excite_kernel = self.add_weight(
            shape=(hidden, channels), name="excite_kernel", initializer="glorot_uniform"
        )
        self.excite_bias = self.add_weight(shape=(channels,), name="excite_bias", initializer="zeros")

    def call(self, inputs):
        squeezed = ops.mean(inputs, axis=(1, 2))
        hidden = ops.relu(ops.matmul(squeezed, self.squeeze_kernel) + self.squeeze_bias)
        scale = ops.sigmoid(ops.matmul(hidden, self.excite_kernel) + self.excite_bias)
        outputs = inputs * scale[:, None, None, :]
        return (outputs, scale) if self.return_excitation else outputs

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if self.return_excitation:
            return input_shape, (input_shape[0], input_shape[-1])
        return input_shape

    def get_config(self):
        return {**super().get_config(), "ratio": self.ratio, "return_excitation": self.return_excitation}
