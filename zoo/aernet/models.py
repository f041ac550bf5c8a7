"""AER-Net: Attention Efficient Residual U-Net (Lima & Braz Junior, section 3.2, Fig. 3).

Encoder: keras.applications EfficientNetB1 (ImageNet), tapped by layer name;
bottleneck: 2x2 max-pool to 1/64 and a residual block with 512 filters. Decoder
(section 3.2): "a cada nivel uma camada de upsampling com stride = 2 que dobra o
tamanho de um mapa de recursos enquanto reduz o numero de canais pela metade, uma
camada de concatenacao que mescla o mapa de recursos gerado das etapas anteriores
com o mapa do encoder correspondente, seguida por blocos residuais", the skips gated
by attention gates (section 3.2.1). Head: 1x1 conv + sigmoid.

Input: CIELAB scaled to [0, 1] at 256x256 (section 3.1), :data:`AERNET_INPUT`. The
model multiplies it by 255 internally because EfficientNet's own Rescaling and
Normalization layers expect 0-255 values.

Paper versus the authors' code (the public repository josegpl/AER-Net, ``UEfficientNet``
in ``aer-net_model.py``); defaults follow the paper, ``decoder="authors"`` builds the
code's network (at 256x256x3: 22,596,239 trainable and 59,161 non-trainable parameters,
as their model counts with EfficientNetB1 built without weights):

=====================  =========================================  ===================================
choice                 paper (``decoder="paper"``, default)        authors' code (``"authors"``)
=====================  =========================================  ===================================
skips                  every level: 1/32, 1/16, 1/8, 1/4, 1/2       1/32 ... 1/4; 1/2, 1/1 none
                       (:data:`AERNET_SKIPS`); 1/1 has no encoder   (:data:`AUTHORS_SKIPS`, the layers
                       map but the input, so no skip                their indices 310, 179, 101, 68 reach)
decoder filters        halved each level: 256 ... 16, 8            256, 128, 64, 32, 32, 32
1/32 tap               as is                                       through a ReLU
upsampling             2x2 stride-2 transposed conv to the          nearest neighbours (``UpSampling2D``),
                       level's filters ("reduz o numero de          channels kept
                       canais pela metade")
residual shortcut      identity where the channels match,           always 1x1 conv + BN
                       else 1x1 conv + BN
convolution biases     none before a batch norm                    Keras' default bias everywhere
gating signal          1x1 conv + BN + ReLU (Oktay et al.)          the same (with the conv's bias)
gate (``attention``)   Oktay et al.'s: F_int half the level's       ``attention_block``: F_int the
                       filters; phi(g) bilinearly resized;          level's filters; phi(g) through a
                       sigmoid; alpha bilinearly upsampled          3x3 stride-1 transposed conv; ReLU;
                                                                    alpha upsampled by nearest neighbours
head                   1x1 conv + sigmoid                          1x1 conv + BN + sigmoid
=====================  =========================================  ===================================

``attention_activation``, ``upsampling`` and ``head_batch_norm`` default to the chosen
decoder's (``None``); set, they override it (e.g. the paper's decoder with the code's
ReLU gates). Both decoders share the encoder and the bottleneck (2x2 max-pool, residual
block of 512 filters; the code's with biases and its projected shortcut).
"""

from __future__ import annotations

import os
from typing import Sequence

import keras

from data_tools.preprocess import InputSpec
from zoo.common.attention_gate import ATTENTION_ACTIVATIONS
from zoo.common.blocks import UPSAMPLING_MODES, residual_block, segmentation_head
from zoo.common.encoders import build_encoder
from zoo.common.unet import build_unet_family, unet_decoder
from zoo.common.validation import check_bool, check_choice
from zoo.common.weights import assemble_model, check_builder_arguments

AERNET_INPUT = InputSpec(image_size=(256, 256), colour="lab", scale="unit")
"""The input AER-Net was trained on (section 3.1): 256x256 CIELAB, channels in [0, 1]."""

AERNET_BACKBONE = "efficientnetb1"
AUTHORS_SKIPS: tuple[str, ...] = ("block7a_expand_activation", "block5a_dwconv", "block3b_add", "block2c_se_excite")
"""EfficientNetB1 layers the authors' code feeds the decoder, coarsest first (1/32,
1/16, 1/8, 1/4; the layers its hard-coded indices reach)."""
AERNET_SKIPS: tuple[str, ...] = (*AUTHORS_SKIPS, "block2a_expand_activation")
"""The paper's: the same and the 1/2-resolution map (EfficientNetB1's last layer at
1/2, before block 2a's stride-2 depthwise convolution)."""
AERNET_BOTTLENECK_FILTERS = 512
AERNET_DECODER_FILTERS: tuple[int, ...] = (256, 128, 64, 32, 16, 8)
"""The paper's: halved at every level, from the bottleneck's 512."""
AUTHORS_DECODER_FILTERS: tuple[int, ...] = (256, 128, 64, 32, 32, 32)
DECODERS: tuple[str, ...] = ("paper", "authors")
DECODER_OPTIONS: dict[str, dict[str, object]] = {
    "paper": {"attention_activation": "sigmoid", "upsampling": "transpose", "head_batch_norm": False},
    "authors": {"attention_activation": "relu", "upsampling": "nearest", "head_batch_norm": True},
}
"""Each decoder's own ``attention_activation``, ``upsampling`` and ``head_batch_norm``
(what ``None`` means)."""
# Poolings between the input and the bottleneck: 5 in EfficientNet + 1 max-pool.
AERNET_SIZE_MULTIPLE = 64


def build_aernet(
    input_shape: Sequence[int] = (256, 256, 3),
    classes: int = 1,
    weights: str | os.PathLike | None = None,
    *,
    encoder_weights: str | os.PathLike | None = None,
    return_attention: bool = False,
    decoder: str = "paper",
    attention_activation: str | None = None,
    upsampling: str | None = None,
    head_batch_norm: bool | None = None,
    name: str = "aernet",
) -> keras.Model:
    """AER-Net (section 3.2, Fig. 3; Table 2, last row).

    Args:
        input_shape: ``(H, W, C)``, H and W divisible by 64; values in [0, 1]
            (:data:`AERNET_INPUT`: 256x256x3 CIELAB).
        classes: output channels (sigmoid for 1, softmax otherwise).
        weights: ``None`` or a ``.weights.h5``/``.keras`` checkpoint of this model
            (a trained AER-Net), loaded after building.
        encoder_weights: the EfficientNetB1 encoder's: ``None``, ``"imagenet"``
            (the paper, section 3.2) or the path to a keras.applications
            EfficientNetB1 no-top weights file (``efficientnetb1_notop.h5``), for
            offline machines.
        return_attention: output ``{"mask": ..., "attention_1": ..., ...}``, one map
            per gated level (attention_1 at 1/32; the paper's decoder has five, down
            to 1/2, the authors' four, down to 1/4).
        decoder: ``"paper"`` (every level skipped and gated, channels halved) or
            ``"authors"`` (the authors' code's network; see the module docstring).
        attention_activation: the attention gates' ``sigma_2``: ``"sigmoid"``
            (paper, Oktay et al.) or ``"relu"`` (authors' code); ``None``: the
            decoder's (:data:`DECODER_OPTIONS`).
        upsampling: ``"transpose"`` (paper: stride-2 up-convolution to the level's
            filters, halving the channels), ``"nearest"`` (authors' code) or
            ``"bilinear"``; ``None``: the decoder's.
        head_batch_norm: batch norm between the 1x1 head conv and the sigmoid
            (authors' code); ``None``: the decoder's.
        name: the model's name.

    Raises:
        ValueError: bad argument (the message names it) or input size.
        zoo.common.encoders.WeightsUnavailableError: ImageNet weights cannot be
            downloaded (the message suggests a local file).
    """
    input_shape, encoder_weights = check_builder_arguments(
        name,
        input_shape,
        classes,
        weights,
        encoder_weights,
        return_attention,
        multiple=AERNET_SIZE_MULTIPLE,
        attention=True,
    )
    check_choice("decoder", decoder, DECODERS)
    options = DECODER_OPTIONS[decoder]
    if attention_activation is None:
        attention_activation = options["attention_activation"]
    if upsampling is None:
        upsampling = options["upsampling"]
    if head_batch_norm is None:
        head_batch_norm = options["head_batch_norm"]
    check_choice("attention_activation", attention_activation, ATTENTION_ACTIVATIONS)
    check_choice("upsampling", upsampling, UPSAMPLING_MODES)
    check_bool("head_batch_norm", head_batch_norm)
    authors = decoder == "authors"
    filters = AUTHORS_DECODER_FILTERS if authors else AERNET_DECODER_FILTERS
    use_bias = True if authors else None  # the code keeps Keras' default bias; None: none before BN
    inputs = keras.Input(input_shape, name="image")
    skips = build_encoder(AERNET_BACKBONE, inputs, encoder_weights, taps=AUTHORS_SKIPS if authors else AERNET_SKIPS)
    if authors:
        skips[0] = keras.layers.Activation("relu", name="deepest_skip_relu")(skips[0])
    x = keras.layers.MaxPooling2D(2, name="bottleneck_pool")(skips[0])
    x = residual_block(x, AERNET_BOTTLENECK_FILTERS, use_bias=use_bias, always_project=authors, name="bottleneck")
    no_skip = [None] * (len(filters) - len(skips))
    x, attention_maps = unet_decoder(
        x,
        [*skips, *no_skip],
        filters,
        block="residual",
        attention=True,
        attention_activation=attention_activation,
        upsampling=upsampling,
        variant="aernet_code" if authors else "standard",
    )
    mask = segmentation_head(x, classes, batch_norm=head_batch_norm, use_bias=use_bias)
    return assemble_model(
        inputs, "mask", mask, attention_maps, return_attention=return_attention, weights=weights, name=name
    )


def aernet_encoder(model: keras.Model) -> keras.Model:
    """The encoder part of a paper-decoder AER-Net: its input to the five skip taps.

    Useful to inspect or freeze the EfficientNetB1 encoder (``for layer in
    aernet_encoder(model).layers: layer.trainable = False``).
    """
    return keras.Model(model.input, [model.get_layer(tap).output for tap in AERNET_SKIPS], name=f"{model.name}_encoder")


def build_attention_unet(
    input_shape: Sequence[int] = (256, 256, 3),
    classes: int = 1,
    weights: str | os.PathLike | None = None,
    *,
    encoder_weights: str | os.PathLike | None = None,
    return_attention: bool = False,
    base_filters: int = 64,
    depth: int = 4,
    attention_activation: str = "sigmoid",
    upsampling: str = "transpose",
    batch_norm: bool = True,
    name: str = "attention_unet",
) -> keras.Model:
    """Attention U-Net (Oktay et al. 2018; AER-Net Table 2, "Attention + U-Net").

    :func:`build_unet` with an :class:`~zoo.common.attention_gate.AttentionGate` on
    every skip connection, before the concatenation. ``return_attention=True``
    makes the model output a dict ``{"mask": ..., "attention_1": ..., ...}`` with
    the gates' maps (level 1 is the coarsest). Other arguments as in
    :func:`build_unet`.
    """
    return build_unet_family(
        input_shape,
        classes,
        weights,
        encoder_weights=encoder_weights,
        base_filters=base_filters,
        depth=depth,
        block="double_conv",
        attention=True,
        attention_activation=attention_activation,
        upsampling=upsampling,
        batch_norm=batch_norm,
        return_attention=return_attention,
        name=name,
    )


def build_attention_residual_unet(
    input_shape: Sequence[int] = (256, 256, 3),
    classes: int = 1,
    weights: str | os.PathLike | None = None,
    *,
    encoder_weights: str | os.PathLike | None = None,
    return_attention: bool = False,
    base_filters: int = 64,
    depth: int = 4,
    attention_activation: str = "sigmoid",
    upsampling: str = "transpose",
    batch_norm: bool = True,
    name: str = "attention_residual_unet",
) -> keras.Model:
    """Attention U-Net with residual decoder blocks (AER-Net Table 2, third row).

    :func:`build_attention_unet` whose decoder blocks are AER-Net's residual blocks
    (Fig. 4: two 3x3 conv-BN-ReLU plus a 1x1 conv + BN shortcut). The encoder keeps
    U-Net's plain double-conv blocks: the paper adds residual connections in the
    decoder ("blocos residuais" of section 3.2). Arguments as in
    :func:`build_attention_unet`.
    """
    return build_unet_family(
        input_shape,
        classes,
        weights,
        encoder_weights=encoder_weights,
        base_filters=base_filters,
        depth=depth,
        block="residual",
        attention=True,
        attention_activation=attention_activation,
        upsampling=upsampling,
        batch_norm=batch_norm,
        return_attention=return_attention,
        name=name,
    )
