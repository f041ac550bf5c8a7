"""Additive attention gate of Attention U-Net (Oktay et al. 2018), used by AER-Net.

AER-Net (Lima & Braz Junior, section 3.2.1 and Fig. 5) places one gate on every
skip connection, before the concatenation, "as proposed by Oktay et al.". The gate
follows Oktay et al.'s eq. 1-2 and their reference code
(ozan-oktay/Attention-Gated-Networks, ``GridAttentionBlock2D``)::

    theta_x = W_theta * x                  # conv, kernel = stride = 2, no bias
    phi_g   = up(W_phi * g + b_phi)        # 1x1 conv, bilinear resize to theta_x
    q       = psi^T ReLU(theta_x + phi_g) + b_psi      # 1x1 conv to one channel
    alpha   = up(sigma_2(q))               # sigmoid; bilinear resize to x's size
    y       = BN(W_out * (alpha * x))      # 1x1 conv + batch norm

``x`` is the skip (encoder) feature map, ``g`` the gating signal from the coarser
decoder level (usually at half of ``x``'s resolution; build it with
:func:`zoo.common.blocks.gating_signal`).

The AER-Net authors' code (josegpl/AER-Net, ``attention_block``) applies a ReLU
instead of the sigmoid as ``sigma_2`` (``attention_activation="relu"``) and builds
the gate with ``variant="aernet_code"``::

    theta_x = W_theta * x + b_theta        # conv, kernel = stride = 2, 'same', bias
    phi_g   = T * (W_phi * g + b_phi) + b_T    # 1x1 conv, then a 3x3 transposed conv
                                           # of stride theta_x / g (1 in their network)
    q       = psi^T ReLU(theta_x + phi_g) + b_psi
    alpha   = up(ReLU(q))                  # nearest-neighbour upsampling to x's size
    y       = BN(W_out * (alpha * x))

The paper cites Oktay et al., so their gate (the sigmoid, ``variant="oktay"``) is
the default.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from zoo.common.resizing import resize_like

ATTENTION_ACTIVATIONS: tuple[str, ...] = ("sigmoid", "relu")
GATE_VARIANTS: tuple[str, ...] = ("oktay", "aernet_code")


@keras.saving.register_keras_serializable(package="zoo")
class AttentionGate(keras.layers.Layer):
    """Attention gate ``[x, g] -> (gated x, attention map)`` (Oktay et al., eq. 1-2).

    Args:
        inter_channels: channels of the intermediate ``theta``/``phi`` maps
            (``F_int`` in Oktay et al.). ``None``: half of ``x``'s channels, the
            reference code's default.
        attention_activation: ``sigma_2``: ``"sigmoid"`` (Oktay et al., the AER-Net
            paper) or ``"relu"`` (the AER-Net authors' code).
        variant: ``"oktay"`` (Oktay et al.'s reference code) or ``"aernet_code"``
            (the AER-Net authors' ``attention_block``: ``theta`` with a bias and
            'same' padding, a 3x3 transposed convolution ``phi_up`` after ``phi``,
            ``alpha`` upsampled by nearest neighbours); see the module docstring.
        kernel_initializer: initialiser of the convolutions.

    Call arguments:
        inputs: ``[x, g]``; ``x`` of shape ``(batch, H, W, C_x)``, ``g`` of shape
            ``(batch, H_g, W_g, C_g)``, any ``H_g, W_g`` (``phi(g)`` bilinearly
            resized to ``theta_x``'s ``(H // 2, W // 2)`` where the sizes differ).

    Returns:
        ``(y, alpha)``: the gated skip ``y`` with ``x``'s shape and the attention
        coefficients ``alpha`` of shape ``(batch, H, W, 1)``.
    """

    def __init__(
        self,
        inter_channels: int | None = None,
        attention_activation: str = "sigmoid",
        variant: str = "oktay",
        kernel_initializer: Any = "glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if inter_channels is not None and (
            isinstance(inter_channels, bool) or not isinstance(inter_channels, int) or inter_channels < 1
        ):
            raise ValueError(f"AttentionGate: inter_channels must be a positive int or None, got {inter_channels!r}.")
        if attention_activation not in ATTENTION_ACTIVATIONS:
            raise ValueError(
                f"AttentionGate: attention_activation must be one of {ATTENTION_ACTIVATIONS}, "
                f"got {attention_activation!r}."
            )
        if variant not in GATE_VARIANTS:
            raise ValueError(f"AttentionGate: variant must be one of {GATE_VARIANTS}, got {variant!r}.")
        self.inter_channels = inter_channels
        self.attention_activation = attention_activation
        self.variant = variant
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"AttentionGate expects inputs [x, g], got {len(input_shape)} inputs.")
        x_shape, g_shape = tuple(input_shape[0]), tuple(input_shape[1])
        if len(x_shape) != 4 or len(g_shape) != 4:
            raise ValueError(f"AttentionGate expects 4-D x and g (batch, H, W, C), got {x_shape} and {g_shape}.")
        x_channels = x_shape[-1]
        inter = self.inter_channels or max(x_channels // 2, 1)
        conv = dict(kernel_initializer=self.kernel_initializer, dtype=self.dtype_policy)
        code = self.variant == "aernet_code"
        self.theta = keras.layers.Conv2D(
            inter, 2, strides=2, padding="same" if code else "valid", use_bias=code, name="theta", **conv
        )
        self.phi = keras.layers.Conv2D(inter, 1, use_bias=True, name="phi", **conv)
        self.phi_up = None
        if code:  # their Conv2DTranspose(strides=theta_x's size // g's size)
            theta_shape = self.theta.compute_output_shape(x_shape)
            strides = tuple(
                max(1, t // g) if t and g else 1 for t, g in zip(theta_shape[1:3], g_shape[1:3], strict=True)
            )
            self.phi_up = keras.layers.Conv2DTranspose(inter, 3, strides=strides, padding="same", name="phi_up", **conv)
            self.phi_up.build((*g_shape[:-1], inter))
        self.psi = keras.layers.Conv2D(1, 1, use_bias=True, name="psi", **conv)
        self.output_conv = keras.layers.Conv2D(x_channels, 1, use_bias=True, name="output_conv", **conv)
        self.output_bn = keras.layers.BatchNormalization(name="output_bn", dtype=self.dtype_policy)
        self.theta.build(x_shape)
        self.phi.build(g_shape)
        self.psi.build((*x_shape[:-1], inter))
        self.output_conv.build(x_shape)
        self.output_bn.build(x_shape)

    def call(self, inputs, training=None):
        x, g = inputs
        theta_x = self.theta(x)
        phi_g = self.phi(g)
        if self.phi_up is not None:
            phi_g = self.phi_up(phi_g)
        phi_g = resize_like(phi_g, theta_x)
        q = self.psi(ops.relu(theta_x + phi_g))
        alpha = ops.sigmoid(q) if self.attention_activation == "sigmoid" else ops.relu(q)
        if self.phi_up is None:
            alpha = resize_like(alpha, x)
        else:  # their UpSampling2D: nearest neighbours
            alpha = ops.image.resize(alpha, ops.shape(x)[1:3], interpolation="nearest")
        y = self.output_bn(self.output_conv(alpha * x), training=training)
        return y, alpha

    def compute_output_shape(self, input_shape):
        x_shape = tuple(input_shape[0])
        return x_shape, (*x_shape[:-1], 1)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            inter_channels=self.inter_channels,
            attention_activation=self.attention_activation,
            variant=self.variant,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
