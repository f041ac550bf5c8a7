"""Convolution and decoder blocks shared by the zoo's encoder-decoder models.

Blocks are functions on Keras tensors that create named layers
(``f"{name}_conv1"``, ``f"{name}_bn1"``, ...), in the manner of keras.applications,
so that every layer of a built model has a deterministic, readable name.
"""

from __future__ import annotations

import keras

UPSAMPLING_MODES: tuple[str, ...] = ("transpose", "nearest", "bilinear")


def conv_bn_relu(
    x,
    filters: int,
    kernel_size: int = 3,
    *,
    strides: int = 1,
    dilation_rate: int = 1,
    padding: str = "same",
    batch_norm: bool = True,
    use_bias: bool | None = None,
    bn_epsilon: float = 1e-3,
    relu: bool = True,
    name: str,
):
    """``kernel_size`` convolution, batch norm, ReLU: the zoo's one conv-BN-ReLU block.

    Args:
        strides, dilation_rate, padding: of the convolution (dilation: the atrous
            convolutions of dilated ResNets and DeepLab's ASPP).
        batch_norm: ``False`` drops the batch norm (plain conv-ReLU).
        use_bias: the convolution's bias; default: none when batch norm follows
            (the norm's beta replaces it). keras.applications ResNets keep it.
        bn_epsilon: the batch norm's epsilon (keras.applications ResNet: 1.001e-5).
        relu: ``False`` ends at the batch norm (projection shortcuts, last
            convolution of a residual branch, logits).

    Layers: ``{name}_conv``, ``{name}_bn``, ``{name}_relu``.
    """
    if use_bias is None:
        use_bias = not batch_norm
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        dilation_rate=dilation_rate,
        use_bias=use_bias,
        name=f"{name}_conv",
    )(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(epsilon=bn_epsilon, name=f"{name}_bn")(x)
    if relu:
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return x


def double_conv_block(x, filters: int, *, batch_norm: bool = True, use_bias: bool | None = None, name: str):
    """Two 3x3 conv(-BN)-ReLU layers: U-Net's block (Ronneberger et al. 2015, Fig. 1).

    ``use_bias`` as in :func:`conv_bn_relu`. Layers: ``{name}_1_*`` and ``{name}_2_*``.
    """
    x = conv_bn_relu(x, filters, batch_norm=batch_norm, use_bias=use_bias, name=f"{name}_1")
    return conv_bn_relu(x, filters, batch_norm=batch_norm, use_bias=use_bias, name=f"{name}_2")


def residual_block(
    x, filters: int, *, batch_norm: bool = True, use_bias: bool | None = None, always_project: bool = False, name: str
):
    """AER-Net's residual decoder block (AER-Net Fig. 4, section 3.2).

    Two 3x3 conv-BN-ReLU layers plus a shortcut, added, with no activation after
    the addition (as in the authors' code). The shortcut is the identity when the
    input already has ``filters`` channels, else a 1x1 conv + BN projection;
    ``always_project=True`` projects every time (the AER-Net authors' code).
    ``use_bias``: the convolutions' bias (:func:`conv_bn_relu`; the authors' code
    keeps Keras' default bias before its batch norms).
    Layers: ``{name}_1_*``, ``{name}_2_*``, ``{name}_shortcut_conv``/``_bn``,
    ``{name}_add``. ``batch_norm=False`` drops every batch norm (for ablations).
    """
    residual = double_conv_block(x, filters, batch_norm=batch_norm, use_bias=use_bias, name=name)
    shortcut = x
    if always_project or x.shape[-1] != filters:
        shortcut = conv_bn_relu(
            x, filters, 1, batch_norm=batch_norm, use_bias=use_bias, relu=False, name=f"{name}_shortcut"
        )
    return keras.layers.Add(name=f"{name}_add")([shortcut, residual])


def upsample_block(x, filters: int | None, *, mode: str = "transpose", name: str):
    """Doubles the spatial size.

    Args:
        filters: output channels. ``mode="transpose"`` needs it: a 2x2 transposed
            convolution with stride 2 (U-Net's "up-convolution" that halves the
            channels, and AER-Net section 3.2's "upsampling layer with stride 2 that
            doubles the size while halving the channels" when ``filters`` is half
            the input channels). For ``"nearest"``/``"bilinear"`` interpolation it
            must be ``None`` (channels are kept, as in the AER-Net authors' code,
            which upsamples with nearest neighbours and lets the next block change
            the channel count).
        mode: one of ``UPSAMPLING_MODES``.

    Layer: ``{name}_transpose`` or ``{name}_upsampling``.
    """
    if mode not in UPSAMPLING_MODES:
        raise ValueError(f"upsampling mode must be one of {UPSAMPLING_MODES}, got {mode!r}.")
    if mode == "transpose":
        if filters is None:
            raise ValueError("upsample_block: mode='transpose' needs filters (the output channels).")
        return keras.layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"{name}_transpose")(x)
    if filters is not None:
        raise ValueError(f"upsample_block: mode={mode!r} keeps the channels; pass filters=None, got {filters!r}.")
    return keras.layers.UpSampling2D(2, interpolation=mode, name=f"{name}_upsampling")(x)


def gating_signal(x, filters: int, *, use_bias: bool | None = None, name: str):
    """Gating signal of an attention gate: 1x1 conv + BN + ReLU (Oktay et al. 2018; the
    AER-Net authors' code too, whose convolution keeps its bias: ``use_bias=True``).

    Layers: ``{name}_conv``, ``{name}_bn``, ``{name}_relu``.
    """
    return conv_bn_relu(x, filters, kernel_size=1, use_bias=use_bias, name=name)


def segmentation_head(
    x,
    classes: int,
    *,
    activation: str | None = None,
    batch_norm: bool = False,
    use_bias: bool | None = None,
    name: str = "head",
    output_name: str = "mask",
):
    """1x1 convolution to ``classes`` maps, then the output activation.

    AER-Net section 3.2: "a 1x1 convolution and a sigmoid activation produce the
    final mask". ``activation`` defaults to sigmoid for one class and softmax for
    several; ``"sigmoid"`` with several classes gives independent (multi-label)
    maps, as SANet's five lesion attributes. ``batch_norm=True`` inserts a batch
    norm before the activation, as the AER-Net authors' code does (whose convolution
    keeps its bias there: ``use_bias=True``; default: no bias before a batch norm). The activation
    runs in float32 (its layer has ``dtype="float32"``) so the output stays
    accurate under mixed precision.
    Layers: ``{name}_conv``, ``{name}_bn`` and ``output_name`` (the activation).
    """
    if activation is None:
        activation = "sigmoid" if classes == 1 else "softmax"
    x = conv_bn_relu(x, classes, 1, batch_norm=batch_norm, use_bias=use_bias, relu=False, name=name)
    return keras.layers.Activation(activation, dtype="float32", name=output_name)(x)
