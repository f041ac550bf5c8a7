"""Segmentation heads on a dilated backbone: PSPNet, DeepLabv3 (ASPP), DeepLabv3+, DANet.

Written once and shared by A-PSPNet (Table III: PSPNet, Deeplabv3, DANet,
A-PSPNet) and SANet (DeepLab, DANet baselines) through
:func:`zoo.common.dilated.build_dilated_model`. Each head maps backbone features
(output stride 8 or 16) to a feature map that :func:`classifier` turns into class
probabilities (softmax) or independent maps (sigmoid) at the input size:

* :func:`pyramid_pooling_module` + :func:`pspnet_head` (Zhao et al., CVPR 2017,
  Fig. 3; A-PSPNet section III-B): adaptive average pools to 1, 2, 3 and 6 bins,
  a 1x1 conv-BN-ReLU per bin reducing C to C / 4 channels, bilinear upsampling,
  concatenation with the input; then 3x3 conv 512 + BN + ReLU and dropout 0.1
  (hszhao/semseg). The auxiliary stage-4 head of PSPNet's training is not built:
  the A-PSPNet paper does not use it.
* :func:`aspp` (Chen et al., "Rethinking atrous convolution", 2017, section 3.3):
  a 1x1 conv, three 3x3 atrous convs (rates 6, 12, 18 at output stride 16,
  doubled at 8), image pooling (GAP, 1x1 conv, upsampling), each 256 channels
  with BN and ReLU, concatenated and projected by a 1x1 conv-BN-ReLU.
* :func:`deeplabv3plus_decoder` (Chen et al., ECCV 2018, section 3.1): low-level
  features reduced to 48 channels by a 1x1 conv, concatenated with the 4x
  upsampled ASPP output, two 3x3 conv-BN-ReLU of 256 channels.
* :func:`danet_head` (Fu et al., CVPR 2019, section 3.4): two branches of 3x3
  conv-BN-ReLU to C / 4 channels, position resp. channel attention
  (:mod:`zoo.common.danet_attention`), 3x3 conv-BN-ReLU; summed; dropout 0.1. (The auxiliary
  per-branch outputs of the DANet code are not built.)

Convolutions are ``zoo.common.resnet.conv_bn`` (conv with bias, BN, ReLU: the
ResNet layout of :func:`zoo.common.blocks.conv_bn_relu`). All resizing is bilinear with half-pixel centres (TF);
the PyTorch reference codes use ``align_corners=True``, a sub-pixel shift.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from zoo.common.danet_attention import DANetChannelAttention, DANetPositionAttention
from zoo.common.pyramid_pooling import AdaptiveAveragePooling2D
from zoo.common.resizing import resize_to
from zoo.common.resnet import conv_bn

PSP_BINS: tuple[int, ...] = (1, 2, 3, 6)
#: ASPP atrous rates at output stride 16 (Chen et al. 2017); doubled at 8.
ASPP_RATES_OS16: tuple[int, ...] = (6, 12, 18)


def pyramid_pooling_module(
    x: keras.KerasTensor, bins: Sequence[int] = PSP_BINS, filters: int | None = None, name: str = "ppm"
) -> keras.KerasTensor:
    """PSPNet's pyramid pooling module: ``concat[x, up(conv(pool_b(x))) for b in bins]``.

    Args:
        x: backbone features ``(batch, H, W, C)`` with static ``H, W``.
        bins: pooled grid sizes (PSPNet: 1, 2, 3, 6).
        filters: channels of each level's 1x1 conv; default ``C // len(bins)``
            (512 for ResNet50's 2048 channels, as in PSPNet).
        name: prefix of the layer names (``{name}_pool{b}``, ``{name}_conv{b}_*``,
            ``{name}_up{b}``, ``{name}_concat``).
    """
    if not bins or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in bins):
        raise ValueError(f"bins must be positive integers, got {bins!r}")
    filters = filters or x.shape[-1] // len(bins)
    levels = [x]
    for size in bins:
        level = AdaptiveAveragePooling2D(size, name=f"{name}_pool{size}")(x)
        level = conv_bn(level, filters, 1, f"{name}_conv{size}")
        levels.append(resize_to(level, x.shape[1:3], f"{name}_up{size}"))
    return layers.Concatenate(name=f"{name}_concat")(levels)


def pspnet_head(x: keras.KerasTensor, filters: int = 512, dropout: float = 0.1, name: str = "psp") -> keras.KerasTensor:
    """Pyramid pooling, 3x3 conv-BN-ReLU (``filters``) and dropout (hszhao/semseg)."""
    x = pyramid_pooling_module(x, name=f"{name}_ppm")
    x = conv_bn(x, filters, 3, f"{name}_fuse")
    return layers.Dropout(dropout, name=f"{name}_dropout")(x)


def aspp(x: keras.KerasTensor, output_stride: int = 8, filters: int = 256, name: str = "aspp") -> keras.KerasTensor:
    """Atrous spatial pyramid pooling of DeepLabv3 (Chen et al. 2017, Fig. 5).

    A rate at least the feature map's side only reaches the zero padding with the
    off-centre taps, so such rates are capped at that side: the outputs are
    identical and TF's CPU atrous convolution does not spend its time on padding
    (small inputs; at 473x473 the 60x60 features keep 12, 24, 36). Layers are
    named after the nominal rates (``{name}_rate12_conv``, ...).
    """
    if output_stride not in (8, 16):
        raise ValueError(f"output_stride must be 8 or 16, got {output_stride!r}")
    rates = [rate * 16 // output_stride for rate in ASPP_RATES_OS16]
    largest_useful = max(x.shape[1:3])
    branches = [conv_bn(x, filters, 1, f"{name}_1x1")]
    branches += [
        conv_bn(x, filters, 3, f"{name}_rate{rate}", dilation_rate=min(rate, largest_useful)) for rate in rates
    ]
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_image_pool")(x)
    pooled = conv_bn(pooled, filters, 1, f"{name}_image")
    branches.append(resize_to(pooled, x.shape[1:3], f"{name}_image_up"))
    x = layers.Concatenate(name=f"{name}_concat")(branches)
    return conv_bn(x, filters, 1, f"{name}_project")


def deeplabv3plus_decoder(
    x: keras.KerasTensor,
    low_level: keras.KerasTensor,
    low_level_filters: int = 48,
    filters: int = 256,
    name: str = "decoder",
) -> keras.KerasTensor:
    """DeepLabv3+ decoder: ASPP output ``x`` upsampled to ``low_level``'s size and refined."""
    skip = conv_bn(low_level, low_level_filters, 1, f"{name}_skip")
    x = resize_to(x, low_level.shape[1:3], f"{name}_up")
    x = layers.Concatenate(name=f"{name}_concat")([x, skip])
    x = conv_bn(x, filters, 3, f"{name}_conv1")
    return conv_bn(x, filters, 3, f"{name}_conv2")


def danet_head(
    x: keras.KerasTensor, dropout: float = 0.1, name: str = "danet", *, max_subtracted_energy: bool = False
) -> tuple[keras.KerasTensor, dict[str, keras.KerasTensor]]:
    """DANet's dual attention head (Fu et al. Fig. 2): PAM and CAM branches, summed.

    Returns the head's features and its two attention maps, as the modules compute
    them: ``{"position_attention": s (batch, H W, H W), "channel_attention": x
    (batch, C / 4, C / 4)}`` (Fu et al. eq. 1 and 3). ``max_subtracted_energy``: the
    channel attention's softmax over ``max - energy`` as the reference code
    (junfu1115/DANet) computes it, instead of eq. 3 (:class:`DANetChannelAttention`).
    """
    inter = x.shape[-1] // 4
    position = conv_bn(x, inter, 3, f"{name}_pam_in")
    position, position_map = DANetPositionAttention(return_attention=True, name=f"{name}_pam")(position)
    position = conv_bn(position, inter, 3, f"{name}_pam_out")
    channel = conv_bn(x, inter, 3, f"{name}_cam_in")
    channel, channel_map = DANetChannelAttention(
        max_subtracted_energy=max_subtracted_energy, return_attention=True, name=f"{name}_cam"
    )(channel)
    channel = conv_bn(channel, inter, 3, f"{name}_cam_out")
    x = layers.Add(name=f"{name}_sum")([position, channel])
    maps = {"position_attention": position_map, "channel_attention": channel_map}
    return layers.Dropout(dropout, name=f"{name}_dropout")(x), maps


def classifier(
    x: keras.KerasTensor, classes: int, size: Sequence[int], activation: str = "softmax", name: str = "classifier"
) -> keras.KerasTensor:
    """1x1 conv to ``classes`` logits, bilinear upsampling to ``size``, float32 activation.

    ``activation``: ``"softmax"`` (one class per pixel: A-PSPNet) or
    ``"sigmoid"`` (independent maps: SANet's lesion attributes). Layers:
    ``{name}_conv``, ``{name}_up`` and ``mask`` (the activation, float32 under
    mixed precision).
    """
    x = layers.Conv2D(classes, 1, name=f"{name}_conv")(x)
    x = resize_to(x, size, f"{name}_up")
    return layers.Activation(activation, dtype="float32", name="mask")(x)
