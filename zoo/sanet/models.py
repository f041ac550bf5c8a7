"""SANet (superpixel attention network) and the networks of its Table 3.

SANet (the SANet paper, "Superpixel attention network", Fig. 2(a)) detects the five
ISIC 2018 Task 2 lesion attributes as five independent sigmoid maps:

* :func:`build_resunet`: "Residual UNet": a keras.applications ResNet101 encoder
  (ImageNet; skips by layer name at 1/2 ... 1/16, :mod:`zoo.common.encoders`) and
  the shared U-Net decoder (:func:`zoo.common.unet.unet_decoder`) with
  :data:`RESUNET_DECODER_FILTERS` = 256, 128, 64, 32, 16 back to full resolution.
* :func:`build_sanet`: ResUNet + SAM. The decoder features go through "a
  convolutional layer" (3x3 conv-BN-ReLU) and the superpixel attention module
  (:class:`~zoo.sanet.layers.SuperpixelAttention`: superpixel average
  pooling, eq. 1, unpooling, ``P = w * (Unpooling(R) + F)``); the 1x1 head gives
  the five attribute probabilities. With ``superpixel_output=True`` (default)
  they are then averaged inside each superpixel (superpixel average pooling and
  unpooling), which turns "the superpixel classification task [into] the
  superpixel segmentation task": every superpixel gets one score per attribute.
* Baselines with the same sigmoid output: :func:`build_deeplab` (DeepLabv3+:
  dilated ResNet, output stride 16, ASPP and the DeepLabv3+ decoder) and
  :func:`build_attribute_danet` (dilated ResNet, output stride 8, DANet's dual
  attention head); both through
  :func:`zoo.common.dilated.build_dilated_model`; and
  :func:`build_attribute_unet`, the shared U-Net (:func:`zoo.common.unet.build_unet`)
  with one sigmoid per attribute.

Every model takes RGB in [0, 1] (:data:`SANET_INPUT`) and rescales it inside for
its ImageNet backbone. SANet also takes the superpixel label map of the image
(``int32`` ``(H, W, 1)``, labels ``0 .. max_segments-1``:
:func:`zoo.sanet.superpixels.cache_superpixels`); the map may come at another
resolution than the image (resized with nearest neighbour inside).

Serving: :func:`zoo.export.export_saved_model` gives signatures that take the
images and a ``superpixels`` map; SLIC has no TensorFlow op, so clients compute the
map with :func:`zoo.sanet.superpixels.slic_superpixels` (the same parameters as in
training) and send it beside the image.

Paper gaps, our choices: the paper names neither SLIC's settings
(:class:`zoo.sanet.superpixels.SlicParams`), the decoder's widths (those of
segmentation_models' U-Net), the upsampling (nearest neighbour, as there) nor
the baselines' backbones (ResNet101, as SANet's).
"""

from __future__ import annotations

import os
from typing import Sequence

import keras

from data_tools.layouts import ISIC2018_ATTRIBUTES
from data_tools.preprocess import InputSpec
from zoo.common import segmentation_heads as heads
from zoo.common.blocks import conv_bn_relu, segmentation_head
from zoo.common.dilated import build_dilated_model
from zoo.common.encoders import build_encoder
from zoo.common.resnet import RESNET_BACKBONES
from zoo.common.unet import build_unet, unet_decoder
from zoo.common.validation import check_choice, check_classes, check_positive_int
from zoo.common.weights import assemble_model, check_builder_arguments, check_checkpoint
from zoo.sanet.layers import SAM_MERGES, SuperpixelAttention, SuperpixelAveragePooling, SuperpixelUnpooling

SANET_INPUT = InputSpec(image_size=(256, 256), scale="unit")
"""RGB in [0, 1]; 256x256 (the paper gives no size; U-Nets need multiples of 32)."""
SANET_ATTRIBUTES: tuple[str, ...] = ISIC2018_ATTRIBUTES
"""The output channels, in order (alphabetical, as :data:`~data_tools.layouts.ISIC2018_ATTRIBUTES`)."""
SANET_MAX_SEGMENTS = 256
"""The superpixel label bound (labels ``0 .. 255``; ours, the paper gives none): the default of the
models and of the SLIC maps (:class:`zoo.sanet.superpixels.SlicParams`), defined here so that
``import zoo`` does not import the superpixel code or scikit-image."""
RESUNET_BACKBONE = "resnet101"
RESUNET_DECODER_FILTERS: tuple[int, ...] = (256, 128, 64, 32, 16)
SAM_FILTERS = 64
RESUNET_SIZE_MULTIPLE = 32
DILATED_BACKBONE = "resnet101"
"""The dilated baselines' backbone (the paper names none: SANet's own ResNet101)."""
DILATED_BACKBONES: tuple[str, ...] = tuple(RESNET_BACKBONES)
"""The ``backbone`` choices of the dilated baselines (resnet14: small, no ImageNet weights)."""


def _resunet_features(inputs, backbone: str, encoder_weights, decoder_filters: Sequence[int], upsampling: str):
    """Encoder taps 1/2 ... 1/32, decoder back to full resolution."""
    taps = build_encoder(backbone, inputs, encoder_weights)
    skips = [*taps[-2::-1], None][: len(decoder_filters)]
    x, _ = unet_decoder(taps[-1], skips, decoder_filters, upsampling=upsampling)
    return x


def _check_decoder(decoder_filters: Sequence[int]) -> tuple[int, ...]:
    filters = tuple(decoder_filters)
    if len(filters) != 5 or any(isinstance(f, bool) or not isinstance(f, int) or f < 1 for f in filters):
        raise ValueError(f"decoder_filters must be five positive ints (1/16 ... 1/1), got {decoder_filters!r}.")
    return filters


def _check_common(
    name: str, input_shape, classes, weights, encoder_weights, return_attention, *, attention: bool
) -> tuple[tuple[int, int, int], str | None]:
    """The checks of the ResUNet-encoder builders; returns the input shape and encoder weights."""
    return check_builder_arguments(
        name,
        input_shape,
        classes,
        weights,
        encoder_weights,
        return_attention,
        multiple=RESUNET_SIZE_MULTIPLE,
        attention=attention,
    )


def build_resunet(
    input_shape: Sequence[int] = (256, 256, 3),
    classes: int = len(SANET_ATTRIBUTES),
    weights: str | os.PathLike | None = None,
    *,
    encoder_weights: str | os.PathLike | None = None,
    return_attention: bool = False,
    backbone: str = RESUNET_BACKBONE,
    decoder_filters: Sequence[int] = RESUNET_DECODER_FILTERS,
    upsampling: str = "nearest",
    name: str = "resunet",
) -> keras.Model:
    """ResUNet (SANet, "Residual UNet"; Table 2, Table 3 row "ResUNet").

    Args:
        input_shape: ``(H, W, C)``, H and W divisible by 32; RGB in [0, 1].
        classes: sigmoid output maps (5 lesion attributes, :data:`SANET_ATTRIBUTES`).
        weights: ``None`` or a ``.weights.h5``/``.keras`` checkpoint of this model.
        encoder_weights: ``None``, ``"imagenet"`` (the paper) or the path to the
            keras.applications backbone's no-top weights file.
        return_attention: ``False`` only: ResUNet has no attention maps.
        backbone: a key of :data:`zoo.common.encoders.ENCODERS` (the paper: ResNet101).
        decoder_filters: the decoder levels' channels, at 1/16, 1/8, 1/4, 1/2, 1/1.
        upsampling: ``"nearest"``, ``"bilinear"`` or ``"transpose"``.
        name: the model's name.
    """
    input_shape, encoder_weights = _check_common(
        name, input_shape, classes, weights, encoder_weights, return_attention, attention=False
    )
    decoder_filters = _check_decoder(decoder_filters)
    inputs = keras.Input(input_shape, name="image")
    x = _resunet_features(inputs, backbone, encoder_weights, decoder_filters, upsampling)
    mask = segmentation_head(x, classes, activation="sigmoid")
    return assemble_model(inputs, "mask", mask, {}, return_attention=False, weights=weights, name=name)


def build_sanet(
    input_shape: Sequence[int] = (256, 256, 3),
    classes: int = len(SANET_ATTRIBUTES),
    weights: str | os.PathLike | None = None,
    *,
    encoder_weights: str | os.PathLike | None = None,
    return_attention: bool = False,
    max_segments: int = SANET_MAX_SEGMENTS,
    superpixel_shape: Sequence[int] | None = None,
    sam_merge: str = "add",
    sam_filters: int = SAM_FILTERS,
    superpixel_output: bool = True,
    backbone: str = RESUNET_BACKBONE,
    decoder_filters: Sequence[int] = RESUNET_DECODER_FILTERS,
    upsampling: str = "nearest",
    name: str = "sanet",
) -> keras.Model:
    """SANet (Fig. 2(a); Table 3 rows "ResUNet+SAM" and, trained with RSM, "ResUNet+RSM+SAM").

    Inputs ``[image, superpixels]`` (named so; a dict with these keys works too):
    the image ``(H, W, C)`` in [0, 1] and its superpixel map ``int32``
    ``superpixel_shape`` with labels ``0 .. max_segments-1``.

    Args:
        input_shape, classes, weights, encoder_weights, backbone, decoder_filters,
            upsampling: as in :func:`build_resunet`.
        return_attention: output ``{"mask": ..., "superpixel_attention": P}``.
        max_segments: the bound on the superpixel labels (the data's
            ``SlicParams.max_segments``).
        superpixel_shape: ``(h, w, 1)`` of the map input; default the image's
            ``(H, W, 1)``.
        sam_merge: ``"add"`` (eq. 1 of the SAM section) or ``"concat"`` (its text).
        sam_filters: channels of the conv layer before SAM and of SAM's ``w``.
        superpixel_output: average the attribute probabilities inside each
            superpixel (one score per superpixel and attribute).
        name: the model's name.
    """
    input_shape, encoder_weights = _check_common(
        name, input_shape, classes, weights, encoder_weights, return_attention, attention=True
    )
    decoder_filters = _check_decoder(decoder_filters)
    check_choice("sam_merge", sam_merge, SAM_MERGES)
    check_positive_int("sam_filters", sam_filters)
    superpixel_shape = tuple(superpixel_shape or (*input_shape[:2], 1))
    if len(superpixel_shape) != 3 or superpixel_shape[-1] != 1:
        raise ValueError(f"superpixel_shape must be (height, width, 1), got {superpixel_shape!r}.")
    image = keras.Input(input_shape, name="image")
    superpixels = keras.Input(superpixel_shape, dtype="int32", name="superpixels")
    x = _resunet_features(image, backbone, encoder_weights, decoder_filters, upsampling)
    x = conv_bn_relu(x, sam_filters, name="sam_input")
    attention = SuperpixelAttention(max_segments, filters=sam_filters, merge=sam_merge, name="superpixel_attention")(
        [x, superpixels]
    )
    if superpixel_output:
        pixelwise = segmentation_head(attention, classes, activation="sigmoid", output_name="head_sigmoid")
        mask = superpixel_average(pixelwise, superpixels, max_segments)
    else:
        mask = segmentation_head(attention, classes, activation="sigmoid")
    return assemble_model(
        [image, superpixels],
        "mask",
        mask,
        {"superpixel_attention": attention},
        return_attention=return_attention,
        weights=weights,
        name=name,
    )


def superpixel_average(probabilities, superpixels, max_segments: int, *, name: str = "mask"):
    """Every pixel gets the mean probability of its superpixel (pool, then unpool).

    Layers: ``{name}_pool`` and ``name`` (the unpooling, float32).
    """
    size = tuple(probabilities.shape[1:3])
    regions = SuperpixelAveragePooling(max_segments, dtype="float32", name=f"{name}_pool")([probabilities, superpixels])
    return SuperpixelUnpooling(size, dtype="float32", name=name)([regions, superpixels])


def build_attribute_unet(
    input_shape: Sequence[int] = (256, 256, 3),
    classes: int = len(SANET_ATTRIBUTES),
    weights: str | os.PathLike | None = None,
    *,
    encoder_weights: str | os.PathLike | None = None,
    return_attention: bool = False,
    **unet_kwargs,
) -> keras.Model:
    """SANet Table 3's UNet: :func:`zoo.common.unet.build_unet` with a sigmoid per attribute.

    ``build_unet`` ends in a softmax for several classes; its last features get
    a sigmoid head instead. ``weights``: ``None`` or a checkpoint of this model;
    ``encoder_weights`` and ``return_attention`` as ``build_unet`` (None and False
    only); ``unet_kwargs`` go to ``build_unet``.
    """
    name = unet_kwargs.pop("name", "unet")
    check_checkpoint(weights, name)
    check_classes(classes)
    unet = build_unet(
        input_shape, 1, encoder_weights=encoder_weights, return_attention=return_attention, name=name, **unet_kwargs
    )
    features = unet.get_layer("head_conv").input
    head = segmentation_head(features, classes, activation="sigmoid", name="attribute_head")
    return assemble_model(unet.input, "mask", head, {}, return_attention=False, weights=weights, name=unet.name)


def build_deeplab(
    input_shape: Sequence[int] = (256, 256, 3),
    classes: int = len(SANET_ATTRIBUTES),
    weights: str | os.PathLike | None = None,
    *,
    encoder_weights: str | os.PathLike | None = None,
    return_attention: bool = False,
    backbone: str = DILATED_BACKBONE,
    output_stride: int = 16,
    name: str = "deeplab",
) -> keras.Model:
    """DeepLabv3+ (Chen et al. 2018; SANet Table 3 "DeepLab") with sigmoid attribute maps.

    RGB in [0, 1] rescaled inside, dilated ResNet (:data:`DILATED_BACKBONES`) at
    ``output_stride`` 16 (or 8), ASPP, the DeepLabv3+ decoder on the stride-4
    features, 1x1 conv, bilinear x4, sigmoid
    (:func:`zoo.common.dilated.build_dilated_model`). ``weights``: ``None`` or a
    checkpoint of this model; ``encoder_weights``: ``None``, ``"imagenet"`` or a
    keras.applications no-top file of the backbone (copied by layer name); no
    attention maps (``return_attention=False`` only).
    """

    def head(features):
        x = heads.aspp(features[-1], output_stride)
        return heads.deeplabv3plus_decoder(x, features[1]), {}

    return build_dilated_model(
        head,
        name=name,
        input_shape=input_shape,
        classes=classes,
        weights=weights,
        encoder_weights=encoder_weights,
        backbone=backbone,
        output_stride=output_stride,
        activation="sigmoid",
        input_scale="unit",
        return_attention=return_attention,
    )


def build_attribute_danet(
    input_shape: Sequence[int] = (256, 256, 3),
    classes: int = len(SANET_ATTRIBUTES),
    weights: str | os.PathLike | None = None,
    *,
    encoder_weights: str | os.PathLike | None = None,
    return_attention: bool = False,
    backbone: str = DILATED_BACKBONE,
    name: str = "danet",
    max_subtracted_energy: bool = False,
) -> keras.Model:
    """DANet (Fu et al. 2019; SANet Table 3 "DANet") with sigmoid attribute maps.

    RGB in [0, 1] rescaled inside, dilated ResNet (:data:`DILATED_BACKBONES`) at
    output stride 8, DANet's dual attention head, 1x1 conv, bilinear x8, sigmoid
    (:func:`zoo.common.dilated.build_dilated_model`; the softmax DANet of A-PSPNet's
    Table III is :func:`zoo.apspnet.build_danet`). ``return_attention=True`` adds the
    head's ``"position_attention"`` ``(batch, N, N)`` and ``"channel_attention"``
    ``(batch, C / 4, C / 4)`` (Fu et al. eq. 1 and 3). ``weights``,
    ``encoder_weights`` as :func:`build_deeplab`. ``max_subtracted_energy=True``: the
    channel attention of the reference code (junfu1115/DANet, softmax over
    ``max - energy``) instead of Fu et al. eq. 3.
    """
    return build_dilated_model(
        lambda features: heads.danet_head(features[-1], max_subtracted_energy=max_subtracted_energy),
        name=name,
        input_shape=input_shape,
        classes=classes,
        weights=weights,
        encoder_weights=encoder_weights,
        backbone=backbone,
        activation="sigmoid",
        input_scale="unit",
        return_attention=return_attention,
        attention=True,
    )
