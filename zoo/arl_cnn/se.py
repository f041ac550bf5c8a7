"""Squeeze-and-excitation (Hu et al., CVPR 2018), the SEnet baseline of the ARL paper.

SE recalibrates channels: s = sigmoid(W2 relu(W1 GAP(x) + b1) + b2), y = s * x,
with W1 reducing C channels to C / ratio. In an SE-ResNet block it scales the
residual branch before the shortcut is added (Hu et al., Fig. 3).
"""
from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class SqueezeExcitation(keras.layers.Layer):
    """Channel recalibration y = x * sigmoid(FC(relu(FC(GAP(x))))).

    Args:
        ratio: reduction ratio r of the bottleneck FC layer (Hu et al. use 16).
    """

    def __init__(self, ratio: int = 16, **kwargs):
        super().__init__(**kwargs)
        if int(ratio) < 1:
            raise ValueError(f"ratio must be a positive integer, got {ratio!r}")
        self.ratio = int(ratio)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(f"{self.name} expects (batch, height, width, channels) "
                             f"inputs with known channels, got {input_shape}")
        channels = input_shape[-1]
        hidden = max(1, channels // self.ratio)
        self.squeeze_kernel = self.add_weight(shape=(channels, hidden), name="squeeze_kernel",
                                              initializer="glorot_uniform")
        self.squeeze_bias = self.add_weight(shape=(hidden,), name="squeeze_bias",
                                            initializer="zeros")
        self.excite_kernel = self.add_weight(shape=(hidden, channels), name="excite_kernel",
                                             initializer="glorot_uniform")
        self.excite_bias = self.add_weight(shape=(channels,), name="excite_bias",
                                           initializer="zeros")

    def call(self, inputs):
        squeezed = ops.mean(inputs, axis=(1, 2))
        hidden = ops.relu(ops.matmul(squeezed, self.squeeze_kernel) + self.squeeze_bias)
        scale = ops.sigmoid(ops.matmul(hidden, self.excite_kernel) + self.excite_bias)
        return inputs * scale[:, None, None, :]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "ratio": self.ratio}
