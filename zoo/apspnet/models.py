"""A-PSPNet (Wen et al., "A-PSPNet: a novel segmentation method of renal ultrasound
image") and its Table III baselines, PSPNet, DeepLabv3 and DANet, on ResNet50.

* :func:`attention_resnet` is the "improved ResNet" of section III-A, eq. 5:
  ``f_out = M_end(y_n(M_start))``: the same CBAM arrangement (:mod:`zoo.apspnet.layers`)
  on the initial feature map (after ``conv1_relu``, 64 channels: "given an input
  and obtain the initial feature map", section VI; the ``after_stem`` hook of
  :func:`zoo.common.resnet.resnet_features`) and on the output of the last
  stage (2048 channels). The ResNet50 itself is untouched (every layer keeps its
  keras.applications name and shape), so ImageNet weights load as into a plain
  ResNet50.
* :func:`build_apspnet` = attention ResNet50 (dilated, output stride 8) + PSPNet
  head (section III-B); :func:`build_pspnet`, :func:`build_deeplabv3` and
  :func:`build_danet` put the heads of :mod:`zoo.common.segmentation_heads` on
  the plain dilated ResNet50, all through
  :func:`zoo.common.dilated.build_dilated_model`.
* :func:`build_attention_resnet50` is the attention ResNet50 as an ImageNet-style
  classifier: the model Table II counts as "A-PSPNet" (its 26.08203M parameters are
  ResNet50's 25.55703M plus 0.525M of CBAM; the PSPNet head would add ~23M).
  Table II's ResNet101 and ResNet152 are torchvision's counts plus the same
  0.52500M: :func:`build_attention_resnet` with their blocks.

CBAM parameters with the paper's eq. 3-4 (no biases, no batch norm), r = 16:
start 2 x 64 x 4 + 2 x 49 = 610, end 2 x 2048 x 128 + 98 = 524,386; together
524,996, which is Table II's 26.08203M - 25.55703M = 0.52500M.

Input: 473x473 RGB in keras.applications' "caffe" scale (:data:`APSPNET_INPUT`:
padded to a square with grey borders, resized, BGR minus the ImageNet mean);
output: per-pixel softmax over :data:`APSPNET_CLASSES`, float32.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras

from data_tools.preprocess import InputSpec
from zoo.apspnet.layers import CBAM_ORDERS, cbam
from zoo.common import segmentation_heads as heads
from zoo.common.dilated import Features, build_dilated_model
from zoo.common.resnet import (
    RESNET50_BLOCKS,
    RESNET_BACKBONES,
    classifier_head,
    has_imagenet_weights,
    load_encoder_weights,
    resnet_features,
)
from zoo.common.validation import (
    check_choice,
    check_classes,
    check_encoder_weights,
    check_input_shape,
    check_return_attention,
)
from zoo.common.weights import assemble_model, check_checkpoint

APSPNET_INPUT = InputSpec(image_size=(473, 473), fit="pad", scale="caffe")
"""Section IV-B: grey borders to a square, resize to 473x473; ImageNet ResNet50 scale."""

APSPNET_CLASSES: tuple[str, ...] = ("background", "kidney", "hydronephrosis")
"""Section IV-A: Labelme "kidney" and "hydrops" tags; index 0 is the background."""

DEFAULT_INPUT_SHAPE = (473, 473, 3)
#: The ``backbone`` choices (blocks per stage). The paper's is ResNet50; Table II
#: also counts ResNet101 and ResNet152; ResNet14 (one block per stage) serves
#: small experiments and tests.
BACKBONES: dict[str, tuple[int, ...]] = RESNET_BACKBONES
#: Feature side the pyramid's largest bin (6) needs: inputs of at least 8 x 5 + 1 = 41.
PSP_MINIMUM_SIDE = 8 * (max(heads.PSP_BINS) - 1) + 1


def attention_resnet(
    inputs: keras.KerasTensor,
    cbam_order: str = "channel_spatial",
    output_stride: int = 32,
    reduction: int = 16,
    blocks_per_stage: Sequence[int] = RESNET50_BLOCKS,
) -> tuple[Features, dict[str, keras.KerasTensor]]:
    """A ResNet with CBAM before and after its stages (eq. 5); returns features and maps.

    The start CBAM goes on the stem's output (``conv1_relu``, through the
    ``after_stem`` hook of :func:`zoo.common.resnet.resnet_features`), the end
    CBAM on the last stage's; every ResNet layer keeps the name and shape it has
    in a plain ResNet.

    Args:
        inputs: the image tensor.
        cbam_order: a key of :data:`zoo.apspnet.layers.CBAM_ORDERS` (Table I).
        output_stride: 32 (classification), 16 or 8 (dilated stages 4-5 for
            segmentation, as PSPNet).
        reduction: the channel unit's ratio r (16).
        blocks_per_stage: (3, 4, 6, 3) for ResNet50 (the paper's backbone);
            (3, 4, 23, 3) and (3, 8, 36, 3) give the ResNet101 and ResNet152 of
            Table II.

    Returns:
        The stage features ``[conv1, ..., conv5]`` (conv1 and conv5 attended)
        and the attention maps, keyed ``"cbam_start_channel"``,
        ``"cbam_end_spatial"``, ...
    """
    check_choice("cbam_order", cbam_order, tuple(CBAM_ORDERS))
    maps: dict[str, keras.KerasTensor] = {}

    def attend(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
        x, unit_maps = cbam(x, order=cbam_order, reduction=reduction, name=name)
        maps.update({f"{name}_{unit}": value for unit, value in unit_maps.items()})
        return x

    features = resnet_features(
        inputs, blocks_per_stage, output_stride=output_stride, after_stem=lambda x: attend(x, "cbam_start")
    )
    return [*features[:-1], attend(features[-1], "cbam_end")], maps


def build_apspnet(
    input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE,
    classes: int = len(APSPNET_CLASSES),
    weights: str | os.PathLike | None = None,
    *,
    encoder_weights: str | os.PathLike | None = None,
    return_attention: bool = False,
    cbam_order: str = "channel_spatial",
    backbone: str = "resnet50",
) -> keras.Model:
    """A-PSPNet (Fig. 1): attention ResNet50 (eq. 5) + pyramid pooling module.

    Args:
        input_shape: ``(height, width, channels)``; the paper's 473x473x3 by
            default. Height and width must be at least 41 (6 bins of features at
            output stride 8).
        classes: output classes including the background (3: background, kidney,
            hydronephrosis).
        weights: ``None`` or a ``.weights.h5``/``.keras`` checkpoint of this model.
        encoder_weights: ``None``, ``"imagenet"`` (keras.applications ResNet, by
            layer name; the paper's transfer learning, section IV-B) or that
            ResNet's keras.applications no-top weights file.
        return_attention: outputs a dict ``{"mask": ..., "cbam_start_channel": ...,
            ...}`` with every CBAM map instead of the mask alone.
        cbam_order: Table I's arrangement, a key of
            :data:`zoo.apspnet.layers.CBAM_ORDERS`; the paper's choice
            ``"channel_spatial"`` by default.
        backbone: a key of :data:`BACKBONES`; the paper's ``"resnet50"``.
    """

    def encoder(image: keras.KerasTensor, blocks: Sequence[int], output_stride: int):
        return attention_resnet(image, cbam_order, output_stride, blocks_per_stage=blocks)

    return build_dilated_model(
        lambda features: (heads.pspnet_head(features[-1]), {}),
        name=f"apspnet_{cbam_order}",
        input_shape=input_shape,
        classes=classes,
        weights=weights,
        encoder_weights=encoder_weights,
        backbone=backbone,
        encoder=encoder,
        return_attention=return_attention,
        attention=True,
        minimum_side=PSP_MINIMUM_SIDE,
    )


def build_pspnet(
    input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE,
    classes: int = len(APSPNET_CLASSES),
    weights: str | os.PathLike | None = None,
    *,
    encoder_weights: str | os.PathLike | None = None,
    return_attention: bool = False,
    backbone: str = "resnet50",
) -> keras.Model:
    """PSPNet (Zhao et al. 2017) on a dilated ResNet (output stride 8); Table III.

    No attention maps (``return_attention=False`` only). Other arguments as
    :func:`build_apspnet`.
    """
    return build_dilated_model(
        lambda features: (heads.pspnet_head(features[-1]), {}),
        name="pspnet",
        input_shape=input_shape,
        classes=classes,
        weights=weights,
        encoder_weights=encoder_weights,
        backbone=backbone,
        return_attention=return_attention,
        minimum_side=PSP_MINIMUM_SIDE,
    )


def build_deeplabv3(
    input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE,
    classes: int = len(APSPNET_CLASSES),
    weights: str | os.PathLike | None = None,
    *,
    encoder_weights: str | os.PathLike | None = None,
    return_attention: bool = False,
    output_stride: int = 8,
    backbone: str = "resnet50",
) -> keras.Model:
    """DeepLabv3 (Chen et al. 2017): dilated ResNet + ASPP; Table III.

    ``output_stride`` 8 (rates 12, 24, 36; the default, as the other Table III
    models) or 16 (rates 6, 12, 18; DeepLabv3's training setting). No attention
    maps. Other arguments as :func:`build_apspnet`.
    """
    return build_dilated_model(
        lambda features: (heads.aspp(features[-1], output_stride), {}),
        name="deeplabv3",
        input_shape=input_shape,
        classes=classes,
        weights=weights,
        encoder_weights=encoder_weights,
        backbone=backbone,
        output_stride=output_stride,
        return_attention=return_attention,
    )


def build_danet(
    input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE,
    classes: int = len(APSPNET_CLASSES),
    weights: str | os.PathLike | None = None,
    *,
    encoder_weights: str | os.PathLike | None = None,
    return_attention: bool = False,
    backbone: str = "resnet50",
    max_subtracted_energy: bool = False,
) -> keras.Model:
    """DANet (Fu et al. 2019): dilated ResNet (output stride 8) + dual attention head; Table III.

    Softmax over :data:`APSPNET_CLASSES` on "caffe"-scaled 473x473 input, as the
    other Table III models. (SANet's sigmoid DANet is
    :func:`zoo.sanet.build_attribute_danet`.) ``return_attention=True`` adds the
    head's ``"position_attention"`` ``(batch, N, N)`` and ``"channel_attention"``
    ``(batch, 512, 512)`` (Fu et al. eq. 1 and 3; N the positions of the stride-8
    features). ``max_subtracted_energy=True``: the channel attention of the reference
    code (junfu1115/DANet, softmax over ``max - energy``) instead of Fu et al. eq. 3.
    Other arguments as :func:`build_apspnet`.
    """
    return build_dilated_model(
        lambda features: heads.danet_head(features[-1], max_subtracted_energy=max_subtracted_energy),
        name="danet",
        input_shape=input_shape,
        classes=classes,
        weights=weights,
        encoder_weights=encoder_weights,
        backbone=backbone,
        return_attention=return_attention,
        attention=True,
    )


def build_attention_resnet(
    input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE,
    classes: int = 1000,
    weights: str | os.PathLike | None = None,
    *,
    encoder_weights: str | os.PathLike | None = None,
    return_attention: bool = False,
    cbam_order: str = "channel_spatial",
    backbone: str = "resnet50",
    name: str | None = None,
) -> keras.Model:
    """The attention ResNet of eq. 5 as a classifier (GAP + FC), the models of Table II.

    Table II's "A-PSPNet" is this model with the ResNet50 backbone; its ResNet101
    and ResNet152 counts (torchvision's plus 0.52500M) are these models too.

    Args:
        backbone: a key of :data:`BACKBONES`; ``encoder_weights`` (``"imagenet"`` or
            a keras.applications no-top file) for ResNet50, ResNet101 and ResNet152.
        return_attention: outputs ``{"probabilities": ..., "cbam_start_channel": ...,
            ...}`` with every CBAM map, as :func:`build_apspnet`.
        name: the model's name; default ``attention_<backbone>``.
        Other arguments as :func:`build_apspnet`.
    """
    check_choice("backbone", backbone, tuple(BACKBONES))
    blocks = BACKBONES[backbone]
    name = name or f"attention_{backbone}"
    check_checkpoint(weights, name)
    encoder_weights = check_encoder_weights(encoder_weights, name, pretrained=has_imagenet_weights(blocks))
    shape = check_input_shape(input_shape, name, minimum_side=32, pretrained=encoder_weights is not None)
    check_classes(classes)
    check_return_attention(return_attention, name, available=True)
    inputs = keras.Input(shape=shape, name="image")
    features, maps = attention_resnet(inputs, cbam_order, blocks_per_stage=blocks)
    probabilities = classifier_head(features[-1], classes)
    return assemble_model(
        inputs,
        "probabilities",
        probabilities,
        maps,
        return_attention=return_attention,
        weights=weights,
        name=name,
        initialise=lambda model: load_encoder_weights(model, encoder_weights, blocks),
    )


def build_attention_resnet50(
    input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE,
    classes: int = 1000,
    weights: str | os.PathLike | None = None,
    *,
    encoder_weights: str | os.PathLike | None = None,
    return_attention: bool = False,
    cbam_order: str = "channel_spatial",
) -> keras.Model:
    """Attention ResNet50 classifier: Table II's "A-PSPNet" row (:func:`build_attention_resnet`)."""
    return build_attention_resnet(
        input_shape,
        classes,
        weights,
        encoder_weights=encoder_weights,
        return_attention=return_attention,
        cbam_order=cbam_order,
        backbone="resnet50",
        name="attention_resnet50",
    )
