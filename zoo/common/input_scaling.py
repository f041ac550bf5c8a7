"""A backbone's ImageNet input transform, inside the model.

keras.applications' ResNet and VGG weights were trained by Caffe on BGR images in
0-255 minus the ImageNet BGR mean (``keras.applications.resnet.preprocess_input``,
"caffe" mode); EfficientNet expects 0-255 RGB, DenseNet ImageNet-standardised RGB.
Models that take RGB in [0, 1] apply that transform as their first layer, so a
SavedModel needs no client-side preprocessing and a pretrained encoder sees the
input it was trained on.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class InputScaling(keras.layers.Layer):
    """``x -> reverse_channels(x) * scale + offset``, per channel.

    Args:
        scale, offset: one number, or one per channel (applied after the channel
            reversal, i.e. in the backbone's channel order).
        reverse_channels: RGB -> BGR first (Caffe-trained ResNet and VGG weights).
    """

    def __init__(
        self,
        scale: float | Sequence[float],
        offset: float | Sequence[float] = 0.0,
        reverse_channels: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.scale = _as_config_value(scale, "scale")
        self.offset = _as_config_value(offset, "offset")
        self.reverse_channels = bool(reverse_channels)

    def build(self, input_shape):
        channels = tuple(input_shape)[-1]
        for name, value in (("scale", self.scale), ("offset", self.offset)):
            if isinstance(value, list) and len(value) != channels:
                raise ValueError(f"InputScaling: {len(value)} {name} values for {channels} input channels.")

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.reverse_channels:
            x = ops.flip(x, axis=-1)
        return x * ops.cast(self.scale, x.dtype) + ops.cast(self.offset, x.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "scale": self.scale,
            "offset": self.offset,
            "reverse_channels": self.reverse_channels,
        }


def _as_config_value(value: float | Sequence[float], name: str) -> float | list[float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    values = [float(v) for v in value]
    if not values:
        raise ValueError(f"InputScaling: {name} must be a number or one number per channel, got {value!r}.")
    return values
