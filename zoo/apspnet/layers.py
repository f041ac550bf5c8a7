"""Convolutional block attention module, CBAM (Woo et al., ECCV 2018), as used by A-PSPNet.

A-PSPNet (Wen et al.), section III-A:

* channel attention, eq. 3: ``M_c(F) = sigma(W1(W0(F_avg)) + W1(W0(F_max)))``,
  with ``F_avg``/``F_max`` the spatially average- and max-pooled C-vectors, and
  ``W0 in R^{C/r x C}``, ``W1 in R^{C x C/r}`` a shared MLP (ReLU on its hidden
  layer, as in Woo et al.);
* spatial attention, eq. 4: ``M_s(F) = sigma(f7x7([F_avg; F_max]))``, with the
  channel-wise average and max maps concatenated (in that order) and a 7x7
  convolution to one map;
* eq. 2: each map multiplies the features it was computed from; the units run in
  series, in one of the four arrangements of Table I (:data:`CBAM_ORDERS`).

The layers return the attention *maps*; :func:`cbam` applies them, so that every
map is a tensor of the model (for figures and for serving).

The paper's equations have no biases in the MLP, no bias and no batch norm after
the 7x7 convolution; with them, the parameter gap between A-PSPNet and ResNet50 in
Table II (26.08203M - 25.55703M = 0.52500M) is met to the parameter (see
:mod:`zoo.apspnet.models`). The CBAM reference code (Jongchan/attention-module)
adds MLP biases and a batch norm; ``use_bias=True`` gives the MLP biases.
"""

from __future__ import annotations

import keras
from keras import ops

from zoo.common.validation import check_feature_map

#: Table I's arrangements: spatial only, channel only, spatial then channel,
#: channel then spatial (the paper's choice).
CBAM_ORDERS: dict[str, tuple[str, ...]] = {
    "spatial": ("spatial",),
    "channel": ("channel",),
    "spatial_channel": ("spatial", "channel"),
    "channel_spatial": ("channel", "spatial"),
}


@keras.saving.register_keras_serializable(package="zoo")
class ChannelAttention(keras.layers.Layer):
    """Channel attention map ``M_c`` of shape ``(batch, 1, 1, C)`` (A-PSPNet eq. 3).

    Args:
        reduction: the reduction ratio r; the hidden layer has ``max(1, C // r)``
            units (A-PSPNet and Woo et al. use 16).
        use_bias: biases in the shared MLP (the CBAM reference code); the paper's
            eq. 3 has none.
    """

    def __init__(self, reduction: int = 16, use_bias: bool = False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(reduction, bool) or not isinstance(reduction, int) or reduction < 1:
            raise ValueError(f"reduction must be a positive integer, got {reduction!r}")
        self.reduction = reduction
        self.use_bias = bool(use_bias)

    def build(self, input_shape):
        channels = check_feature_map(self.name, input_shape)[-1]
        hidden = max(1, channels // self.reduction)
        self.w0 = self.add_weight(shape=(channels, hidden), name="w0", initializer="glorot_uniform")
        self.w1 = self.add_weight(shape=(hidden, channels), name="w1", initializer="glorot_uniform")
        if self.use_bias:
            self.b0 = self.add_weight(shape=(hidden,), name="b0", initializer="zeros")
            self.b1 = self.add_weight(shape=(channels,), name="b1", initializer="zeros")

    def _mlp(self, descriptor):
        hidden = ops.matmul(descriptor, self.w0)
        if self.use_bias:
            hidden = hidden + self.b0
        out = ops.matmul(ops.relu(hidden), self.w1)
        return out + self.b1 if self.use_bias else out

    def call(self, inputs):
        average = self._mlp(ops.mean(inputs, axis=(1, 2)))
        maximum = self._mlp(ops.max(inputs, axis=(1, 2)))
        return ops.sigmoid(average + maximum)[:, None, None, :]

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        return (input_shape[0], 1, 1, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction, "use_bias": self.use_bias}


@keras.saving.register_keras_serializable(package="zoo")
class SpatialAttention(keras.layers.Layer):
    """Spatial attention map ``M_s`` of shape ``(batch, H, W, 1)`` (A-PSPNet eq. 4).

    Args:
        kernel_size: size of the convolution over ``[F_avg; F_max]`` (7 in the paper).
    """

    def __init__(self, kernel_size: int = 7, **kwargs):
        super().__init__(**kwargs)
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1:
            raise ValueError(f"kernel_size must be a positive integer, got {kernel_size!r}")
        self.kernel_size = kernel_size

    def build(self, input_shape):
        check_feature_map(self.name, input_shape)
        self.kernel = self.add_weight(
            shape=(self.kernel_size, self.kernel_size, 2, 1), name="kernel", initializer="glorot_uniform"
        )

    def call(self, inputs):
        pooled = ops.concatenate(
            [ops.mean(inputs, axis=-1, keepdims=True), ops.max(inputs, axis=-1, keepdims=True)], axis=-1
        )
        return ops.sigmoid(ops.conv(pooled, self.kernel, padding="same"))

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], 1)

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size}


def cbam(
    x, *, order: str = "channel_spatial", reduction: int = 16, kernel_size: int = 7, name: str = "cbam"
) -> tuple[keras.KerasTensor, dict[str, keras.KerasTensor]]:
    """CBAM on ``x``: the attention units of ``order`` in series (A-PSPNet eq. 2, Table I).

    Args:
        x: a ``(batch, H, W, C)`` Keras tensor.
        order: a key of :data:`CBAM_ORDERS`.
        reduction: the channel unit's reduction ratio r.
        kernel_size: the spatial unit's convolution size.
        name: prefix of the layer names: ``{name}_channel``/``{name}_spatial`` (the
            maps) and ``{name}_channel_mul``/``{name}_spatial_mul`` (the products).

    Returns:
        The attended features and ``{"channel": M_c, "spatial": M_s}`` (the maps of
        the units in ``order``).
    """
    if order not in CBAM_ORDERS:
        raise ValueError(f"order must be one of {sorted(CBAM_ORDERS)}, got {order!r}")
    maps = {}
    for unit in CBAM_ORDERS[order]:
        if unit == "channel":
            attention = ChannelAttention(reduction, name=f"{name}_channel")(x)
        else:
            attention = SpatialAttention(kernel_size, name=f"{name}_spatial")(x)
        maps[unit] = attention
        x = keras.layers.Multiply(name=f"{name}_{unit}_mul")([x, attention])
    return x, maps
