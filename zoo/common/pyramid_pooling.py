"""Adaptive average pooling to a fixed grid, the pooling of PSPNet's pyramid (Zhao et al., 2017).

PSPNet's pyramid pooling module (PSPNet Fig. 3; A-PSPNet section III-B) average-
pools the backbone features to 1x1, 2x2, 3x3 and 6x6 bins. A-PSPNet's 473x473
input (not a multiple of the bins) gives 60x60 features at output stride 8, which
the bins happen to divide; other input sizes (e.g. 256 -> 32x32 features, not a
multiple of 3 or 6) do not, and a fixed-size ``AveragePooling2D`` cannot produce
these grids.

:class:`AdaptiveAveragePooling2D` computes PyTorch's ``AdaptiveAvgPool2d`` exactly,
as the official PSPNet (hszhao/semseg) does: output cell ``i`` of ``n`` along an axis
of length ``L`` averages input rows ``floor(i L / n)`` to ``ceil((i + 1) L / n) - 1``
(neighbouring cells overlap by a row when ``n`` does not divide ``L``). It is
written as two small averaging matrices, ``P_h X P_w^T``, so it is differentiable,
runs under XLA, and needs no resize: a bilinear or area *resize* to the bin grid
(the usual Keras substitute) only approximates these bins.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def adaptive_pooling_matrix(length: int, bins: int) -> np.ndarray:
    """``(bins, length)`` matrix whose row ``i`` averages the inputs of adaptive bin ``i``."""
    starts = (np.arange(bins) * length) // bins
    ends = -((-(np.arange(bins) + 1) * length) // bins)  # ceil((i + 1) L / n)
    positions = np.arange(length)
    members = (positions >= starts[:, None]) & (positions < ends[:, None])
    return (members / members.sum(axis=1, keepdims=True)).astype(np.float32)


@keras.saving.register_keras_serializable(package="zoo")
class AdaptiveAveragePooling2D(keras.layers.Layer):
    """Average pooling of a ``(batch, H, W, C)`` map to ``(batch, bins, bins, C)``.

    Args:
        bins: the output grid size (PSPNet: 1, 2, 3 or 6). ``H`` and ``W`` must be
            static; below ``bins``, cells repeat input rows (as in PyTorch).
    """

    def __init__(self, bins: int, **kwargs):
        super().__init__(**kwargs)
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise ValueError(f"bins must be a positive integer, got {bins!r}")
        self.bins = bins

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 4 or None in input_shape[1:3]:
            raise ValueError(
                f"{self.name} needs (batch, height, width, channels) inputs with "
                f"a static height and width, got {input_shape}"
            )
        self.rows = adaptive_pooling_matrix(input_shape[1], self.bins)
        self.columns = adaptive_pooling_matrix(input_shape[2], self.bins)

    def call(self, inputs):
        rows = ops.cast(self.rows, inputs.dtype)
        columns = ops.cast(self.columns, inputs.dtype)
        return ops.einsum("ih,bhwc,jw->bijc", rows, inputs, columns)

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        return (input_shape[0], self.bins, self.bins, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "bins": self.bins}
