"""U-Net (Ronneberger et al. 2015) and the decoder shared by every U-Net of the zoo.

* :func:`build_unet`: the classic U-Net (AER-Net Table 2, first row; SANet's UNet
  baseline through :func:`zoo.sanet.build_attribute_unet`);
* :func:`build_unet_family`: the U-Net with attention gates and/or residual decoder
  blocks, behind AER-Net's :func:`zoo.aernet.build_attention_unet` and
  :func:`zoo.aernet.build_attention_residual_unet`;
* :func:`unet_decoder`: the decoder over any encoder's skip taps, shared with
  AER-Net and ResNet-encoder U-Nets.

Differences from Ronneberger et al., shared by all Keras U-Nets: 'same' padding
(the output has the input's size, no cropping) and, by default, batch norm after
every convolution (``batch_norm=False`` gives the original's plain conv-ReLU).
"""

from __future__ import annotations

import os
from typing import Sequence

import keras

from zoo.common.attention_gate import ATTENTION_ACTIVATIONS, AttentionGate
from zoo.common.blocks import (
    UPSAMPLING_MODES,
    double_conv_block,
    gating_signal,
    residual_block,
    segmentation_head,
    upsample_block,
)
from zoo.common.validation import (
    check_choice,
    check_classes,
    check_encoder_weights,
    check_input_shape,
    check_positive_int,
    check_return_attention,
)
from zoo.common.weights import assemble_model, check_checkpoint

DECODER_BLOCKS: tuple[str, ...] = ("double_conv", "residual")
DECODER_VARIANTS: tuple[str, ...] = ("standard", "aernet_code")


def unet_decoder(
    x,
    skips: Sequence,
    filters: Sequence[int],
    *,
    block: str = "double_conv",
    attention: bool = False,
    attention_activation: str = "sigmoid",
    upsampling: str = "transpose",
    batch_norm: bool = True,
    variant: str = "standard",
    name: str = "decoder",
):
    """U-Net decoder: per level, upsample x2, (gate the skip,) concatenate, conv block.

    Args:
        x: the bottleneck features.
        skips: one skip tensor per level, coarsest first, each at twice the previous
            level's resolution; ``None`` for a level without skip (upsampling only).
        filters: output channels of each level's block (and of its transposed
            convolution).
        block: ``"double_conv"`` (U-Net) or ``"residual"`` (AER-Net Fig. 4).
        attention: gate each skip with an :class:`AttentionGate` before the
            concatenation (Attention U-Net; AER-Net section 3.2.1). The gating
            signal is the current decoder features through 1x1 conv + BN + ReLU
            with the level's filters; the gate's ``F_int`` is half of them.
        attention_activation: the gates' ``sigma_2`` (``"sigmoid"``: Oktay et al.;
            ``"relu"``: AER-Net authors' code).
        upsampling: one of ``UPSAMPLING_MODES``; interpolation modes keep the
            channels and let the block change them.
        batch_norm: batch norm in the blocks.
        variant: ``"standard"`` (as above) or ``"aernet_code"``, the layers of the
            AER-Net authors' code (josegpl/AER-Net): every convolution keeps its
            bias, the residual blocks' shortcut is always a 1x1 conv + BN, the
            gates are ``AttentionGate(variant="aernet_code")`` of ``F_int`` equal to
            the level's filters, behind a gating signal whose 1x1 conv has a bias.
        name: prefix of the decoder's layer names (``{name}{level}_...``, level 1
            is the coarsest).

    Returns:
        ``(features, attention_maps)``: the finest decoder features and a dict
        ``{f"attention_{level}": alpha}`` of the gates' maps (empty without gates).
    """
    check_choice("block", block, DECODER_BLOCKS)
    check_choice("upsampling", upsampling, UPSAMPLING_MODES)
    check_choice("attention_activation", attention_activation, ATTENTION_ACTIVATIONS)
    check_choice("variant", variant, DECODER_VARIANTS)
    if len(skips) != len(filters):
        raise ValueError(f"unet_decoder: got {len(skips)} skips but {len(filters)} filters.")
    code = variant == "aernet_code"
    use_bias = True if code else None  # None: no bias before a batch norm
    attention_maps = {}
    for level, (skip, level_filters) in enumerate(zip(skips, filters, strict=True), start=1):
        prefix = f"{name}{level}"
        if attention and skip is not None:
            gate = gating_signal(x, level_filters, use_bias=use_bias, name=f"{prefix}_gating")
            skip, attention_maps[f"attention_{level}"] = AttentionGate(
                inter_channels=level_filters if code else max(level_filters // 2, 1),
                attention_activation=attention_activation,
                variant="aernet_code" if code else "oktay",
                name=f"{prefix}_attention",
            )([skip, gate])
        x = upsample_block(
            x, level_filters if upsampling == "transpose" else None, mode=upsampling, name=f"{prefix}_up"
        )
        if skip is not None:
            x = keras.layers.Concatenate(name=f"{prefix}_concat")([x, skip])
        if block == "double_conv":
            x = double_conv_block(x, level_filters, batch_norm=batch_norm, use_bias=use_bias, name=f"{prefix}_block")
        else:
            x = residual_block(
                x, level_filters, batch_norm=batch_norm, use_bias=use_bias, always_project=code, name=f"{prefix}_block"
            )
    return x, attention_maps


def build_unet_family(
    input_shape,
    classes,
    weights,
    *,
    encoder_weights,
    base_filters: int,
    depth: int,
    block: str,
    attention: bool,
    attention_activation: str,
    upsampling: str,
    batch_norm: bool,
    return_attention: bool,
    name: str,
) -> keras.Model:
    """The U-Net family: encoder of ``depth`` double-conv levels, decoder, 1x1 head.

    ``weights`` is a checkpoint of the whole model (:func:`zoo.common.weights.load_checkpoint`);
    there is no pretrained encoder, so ``encoder_weights`` must be None.
    """
    check_positive_int("base_filters", base_filters)
    check_positive_int("depth", depth)
    input_shape = check_input_shape(input_shape, name, multiple=2**depth)
    check_classes(classes)
    check_checkpoint(weights, name)
    check_encoder_weights(encoder_weights, name, pretrained=False)
    check_return_attention(return_attention, name, available=attention)
    level_filters = [base_filters * 2**level for level in range(depth + 1)]

    inputs = keras.Input(input_shape, name="image")
    x, skips = inputs, []
    for level, level_filter in enumerate(level_filters[:-1], start=1):
        x = double_conv_block(x, level_filter, batch_norm=batch_norm, name=f"encoder{level}")
        skips.append(x)
        x = keras.layers.MaxPooling2D(2, name=f"encoder{level}_pool")(x)
    x = double_conv_block(x, level_filters[-1], batch_norm=batch_norm, name="bottleneck")
    x, attention_maps = unet_decoder(
        x,
        skips[::-1],
        level_filters[-2::-1],
        block=block,
        attention=attention,
        attention_activation=attention_activation,
        upsampling=upsampling,
        batch_norm=batch_norm,
    )
    mask = segmentation_head(x, classes)
    return assemble_model(
        inputs, "mask", mask, attention_maps, return_attention=return_attention, weights=weights, name=name
    )


def build_unet(
    input_shape: Sequence[int] = (256, 256, 3),
    classes: int = 1,
    weights: str | os.PathLike | None = None,
    *,
    encoder_weights: str | os.PathLike | None = None,
    return_attention: bool = False,
    base_filters: int = 64,
    depth: int = 4,
    upsampling: str = "transpose",
    batch_norm: bool = True,
    name: str = "unet",
) -> keras.Model:
    """Classic U-Net (Ronneberger et al. 2015; AER-Net Table 2, first row).

    Encoder: ``depth`` levels of two 3x3 conv-BN-ReLU and a 2x2 max-pool, channels
    ``base_filters * 2**level`` (64 ... 1024 by default); decoder: 2x2 up-convolution
    halving the channels, concatenation with the skip, two 3x3 conv-BN-ReLU; head:
    1x1 conv + sigmoid (softmax for ``classes > 1``).

    Args:
        input_shape: ``(H, W, C)``, H and W divisible by ``2**depth``.
        classes: output channels.
        weights: ``None`` or a ``.weights.h5``/``.keras`` checkpoint of this model.
        encoder_weights: ``None`` only: the U-Net has no pretrained encoder.
        return_attention: ``False`` only: the U-Net has no attention maps.
        base_filters: channels of the first level (smaller for quick tests).
        depth: number of poolings.
        upsampling: ``"transpose"`` (the up-convolution), ``"nearest"`` or
            ``"bilinear"``.
        batch_norm: batch norm after each conv (``False``: the original U-Net).
        name: the model's name.
    """
    return build_unet_family(
        input_shape,
        classes,
        weights,
        encoder_weights=encoder_weights,
        base_filters=base_filters,
        depth=depth,
        block="double_conv",
        attention=False,
        attention_activation="sigmoid",
        upsampling=upsampling,
        batch_norm=batch_norm,
        return_attention=return_attention,
        name=name,
    )
