"""SANet (superpixel attention network) and the networks of its Table 3.

SANet (sanet.txt, "Superpixel attention network", Fig. 2(a)) detects the five
ISIC 2018 Task 2 lesion attributes as five independent sigmoid maps:

* :func:`build_resunet`: "Residual UNet": a keras.applications ResNet101 encoder
  (ImageNet; skips by layer name at 1/2 ... 1/16, :mod:`zoo.models.encoders`) and
  the shared U-Net decoder (:func:`zoo.models.unet.unet_decoder`) with
  :data:`RESUNET_DECODER_FILTERS` = 256, 128, 64, 32, 16 back to full resolution.
* :func:`build_sanet`: ResUNet + SAM. The decoder features go through "a
  convolutional layer" (3x3 conv-BN-ReLU) and the superpixel attention module
  (:class:`~zoo.layers.superpixel.SuperpixelAttention`: superpixel average
  pooling, eq. 1, unpooling, ``P = w * (Unpooling(R) + F)``); the 1x1 head gives
  the five attribute probabilities. With ``superpixel_output=True`` (default)
  they are then averaged inside each superpixel (superpixel average pooling and
  unpooling), which turns "the superpixel classification task [into] the
  superpixel segmentation task": every superpixel gets one score per attribute.
* Baselines with the same sigmoid output: :func:`build_deeplab` (DeepLabv3+:
  dilated ResNet, output stride 16, ASPP and the DeepLabv3+ decoder) and
  :func:`build_resnet_danet` (dilated ResNet, output stride 8, DANet's dual
  attention head); both from :mod:`zoo.models.segmentation_heads`; and
  :func:`build_attribute_unet`, the shared U-Net (:func:`zoo.models.unet.build_unet`)
  with one sigmoid per attribute.

Every model takes RGB in [0, 1] (:data:`SANET_INPUT`) and rescales it inside for
its ImageNet backbone. SANet also takes the superpixel label map of the image
(``int32`` ``(H, W, 1)``, labels ``0 .. max_segments-1``:
:func:`data_tools.superpixels.cache_superpixels`); the map may come at another
resolution than the image (resized with nearest neighbour inside).

Serving: a SANet SavedModel has two inputs, ``image`` and ``superpixels``; SLIC
has no TensorFlow op, so clients compute the map with
:func:`data_tools.superpixels.slic_superpixels` (the same parameters as in
training) and send it beside the image.

Paper gaps, our choices: the paper names neither SLIC's settings
(:class:`data_tools.superpixels.SlicParams`), the decoder's widths (those of
segmentation_models' U-Net), the upsampling (nearest neighbour, as there) nor
the baselines' backbones (ResNet101, as SANet's).
"""
from __future__ import annotations

import os
from typing import Sequence

import keras

from data_tools.layouts import ISIC2018_ATTRIBUTES
from data_tools.preprocess import InputSpec
from data_tools.superpixels import SlicParams
from zoo.layers.superpixel import SAM_MERGES, SuperpixelAttention, SuperpixelAveragePooling, SuperpixelUnpooling
from zoo.models import segmentation_heads as heads
from zoo.models.blocks import conv_bn_relu
from zoo.models.encoders import build_encoder, encoder_spec, validate_weights, WeightsUnavailableError
from zoo.models.resnet import (RESNET14_BLOCKS, RESNET50_BLOCKS, RESNET101_BLOCKS, resnet_features,
                               transfer_resnet_weights)
from zoo.models.unet import build_unet, check_choice, check_classes, check_input_shape, unet_decoder

SANET_INPUT = InputSpec(image_size=(256, 256), scale="unit")
"""RGB in [0, 1]; 256x256 (the paper gives no size; U-Nets need multiples of 32)."""
SANET_ATTRIBUTES: tuple[str, ...] = ISIC2018_ATTRIBUTES
"""The output channels, in order (alphabetical, as :data:`~data_tools.layouts.ISIC2018_ATTRIBUTES`)."""
SANET_MAX_SEGMENTS = SlicParams.max_segments
"""The superpixel label bound: the default SLIC maps' (:class:`data_tools.superpixels.SlicParams`)."""
RESUNET_BACKBONE = "resnet101"
RESUNET_DECODER_FILTERS: tuple[int, ...] = (256, 128, 64, 32, 16)
SAM_FILTERS = 64
RESUNET_SIZE_MULTIPLE = 32
DILATED_BACKBONES: dict[str, tuple[int, ...]] = {
    "resnet14": RESNET14_BLOCKS, "resnet50": RESNET50_BLOCKS, "resnet101": RESNET101_BLOCKS}
"""Backbones of the dilated baselines (resnet14: small, no ImageNet weights)."""
_IMAGENET_RESNETS = {"resnet50": keras.applications.ResNet50, "resnet101": keras.applications.ResNet101}


def attribute_head(x, classes: int, *, name: str = "head", output_name: str = "mask"):
    """1x1 conv to ``classes`` independent sigmoid maps (multi-label), in float32.

    Layers: ``{name}_conv`` and ``output_name`` (the sigmoid).
    """
    x = keras.layers.Conv2D(classes, 1, name=f"{name}_conv")(x)
    return keras.layers.Activation("sigmoid", dtype="float32", name=output_name)(x)


def _resunet_features(inputs, backbone: str, weights, decoder_filters: Sequence[int], upsampling: str):
    """Encoder taps 1/2 ... 1/32, decoder back to full resolution."""
    taps = build_encoder(backbone, inputs, weights)
    skips = [*taps[-2::-1], None][: len(decoder_filters)]
    x, _ = unet_decoder(taps[-1], skips, decoder_filters, upsampling=upsampling)
    return x


def _check_decoder(decoder_filters: Sequence[int]) -> tuple[int, ...]:
    filters = tuple(decoder_filters)
    if len(filters) != 5 or any(isinstance(f, bool) or not isinstance(f, int) or f < 1 for f in filters):
        raise ValueError(f"decoder_filters must be five positive ints (1/16 ... 1/1), got {decoder_filters!r}.")
    return filters


def build_resunet(input_shape: Sequence[int] = (256, 256, 3), classes: int = len(SANET_ATTRIBUTES),
                  weights: str | os.PathLike | None = None, *, backbone: str = RESUNET_BACKBONE,
                  decoder_filters: Sequence[int] = RESUNET_DECODER_FILTERS,
                  upsampling: str = "nearest", name: str = "resunet") -> keras.Model:
    """ResUNet (SANet, "Residual UNet"; Table 2, Table 3 row "ResUNet").

    Args:
        input_shape: ``(H, W, C)``, H and W divisible by 32; RGB in [0, 1].
        classes: sigmoid output maps (5 lesion attributes, :data:`SANET_ATTRIBUTES`).
        weights: the encoder's: ``None``, ``"imagenet"`` (the paper) or the path to
            the keras.applications backbone's no-top weights file.
        backbone: a key of :data:`zoo.models.encoders.ENCODERS` (the paper: ResNet101).
        decoder_filters: the decoder levels' channels, at 1/16, 1/8, 1/4, 1/2, 1/1.
        upsampling: ``"nearest"``, ``"bilinear"`` or ``"transpose"``.
        name: the model's name.
    """
    input_shape = check_input_shape(input_shape, RESUNET_SIZE_MULTIPLE, name)
    check_classes(classes)
    decoder_filters = _check_decoder(decoder_filters)
    inputs = keras.Input(input_shape, name="image")
    x = _resunet_features(inputs, backbone, weights, decoder_filters, upsampling)
    return keras.Model(inputs, attribute_head(x, classes), name=name)


def build_sanet(input_shape: Sequence[int] = (256, 256, 3), classes: int = len(SANET_ATTRIBUTES),
                weights: str | os.PathLike | None = None, *, max_segments: int = SANET_MAX_SEGMENTS,
                superpixel_shape: Sequence[int] | None = None, sam_merge: str = "add",
                sam_filters: int = SAM_FILTERS, superpixel_output: bool = True,
                backbone: str = RESUNET_BACKBONE,
                decoder_filters: Sequence[int] = RESUNET_DECODER_FILTERS,
                upsampling: str = "nearest", return_attention: bool = False,
                name: str = "sanet") -> keras.Model:
    """SANet (Fig. 2(a); Table 3 rows "ResUNet+SAM" and, trained with RSM, "ResUNet+RSM+SAM").

    Inputs ``[image, superpixels]`` (named so; a dict with these keys works too):
    the image ``(H, W, C)`` in [0, 1] and its superpixel map ``int32``
    ``superpixel_shape`` with labels ``0 .. max_segments-1``.

    Args:
        input_shape, classes, weights, backbone, decoder_filters, upsampling: as in
            :func:`build_resunet`.
        max_segments: the bound on the superpixel labels (the data's
            ``SlicParams.max_segments``).
        superpixel_shape: ``(h, w, 1)`` of the map input; default the image's
            ``(H, W, 1)``.
        sam_merge: ``"add"`` (eq. 1 of the SAM section) or ``"concat"`` (its text).
        sam_filters: channels of the conv layer before SAM and of SAM's ``w``.
        superpixel_output: average the attribute probabilities inside each
            superpixel (one score per superpixel and attribute).
        return_attention: output ``{"mask": ..., "superpixel_attention": P}``.
        name: the model's name.
    """
    input_shape = check_input_shape(input_shape, RESUNET_SIZE_MULTIPLE, name)
    check_classes(classes)
    decoder_filters = _check_decoder(decoder_filters)
    check_choice("sam_merge", sam_merge, SAM_MERGES)
    if isinstance(sam_filters, bool) or not isinstance(sam_filters, int) or sam_filters < 1:
        raise ValueError(f"sam_filters must be a positive int, got {sam_filters!r}.")
    superpixel_shape = tuple(superpixel_shape or (*input_shape[:2], 1))
    if len(superpixel_shape) != 3 or superpixel_shape[-1] != 1:
        raise ValueError(f"superpixel_shape must be (height, width, 1), got {superpixel_shape!r}.")
    image = keras.Input(input_shape, name="image")
    superpixels = keras.Input(superpixel_shape, dtype="int32", name="superpixels")
    x = _resunet_features(image, backbone, weights, decoder_filters, upsampling)
    x = conv_bn_relu(x, sam_filters, name="sam_input")
    attention = SuperpixelAttention(max_segments, filters=sam_filters, merge=sam_merge,
                                    name="superpixel_attention")([x, superpixels])
    if superpixel_output:
        pixelwise = attribute_head(attention, classes, output_name="head_sigmoid")
        mask = superpixel_average(pixelwise, superpixels, max_segments)
    else:
        mask = attribute_head(attention, classes)
    outputs = {"mask": mask, "superpixel_attention": attention} if return_attention else mask
    return keras.Model([image, superpixels], outputs, name=name)


def superpixel_average(probabilities, superpixels, max_segments: int, *, name: str = "mask"):
    """Every pixel gets the mean probability of its superpixel (pool, then unpool).

    Layers: ``{name}_pool`` and ``name`` (the unpooling, float32).
    """
    size = tuple(probabilities.shape[1:3])
    regions = SuperpixelAveragePooling(max_segments, dtype="float32", name=f"{name}_pool")(
        [probabilities, superpixels])
    return SuperpixelUnpooling(size, dtype="float32", name=name)([regions, superpixels])


def build_attribute_unet(input_shape: Sequence[int] = (256, 256, 3),
                         classes: int = len(SANET_ATTRIBUTES), **unet_kwargs) -> keras.Model:
    """SANet Table 3's UNet: :func:`zoo.models.unet.build_unet` with a sigmoid per attribute.

    ``build_unet`` ends in a softmax for several classes; its last features get
    :func:`attribute_head` instead. ``unet_kwargs`` go to ``build_unet``.
    """
    unet = build_unet(input_shape, 1, **{"name": "unet", **unet_kwargs})
    features = unet.get_layer("head_conv").input
    return keras.Model(unet.inputs, attribute_head(features, classes, name="attribute_head"), name=unet.name)


def _dilated_backbone(inputs, backbone: str, output_stride: int):
    """[0, 1] input rescaled as the ImageNet ResNets expect, then the dilated ResNet stages."""
    spec = encoder_spec("resnet50")  # the Caffe scaling every keras.applications ResNet shares
    scaled = keras.layers.Rescaling(spec.scale, spec.offset, name="encoder_input_scaling")(inputs)
    return resnet_features(scaled, DILATED_BACKBONES[backbone], output_stride=output_stride)


def _load_imagenet_resnet(model: keras.Model, backbone: str, weights: str | None) -> None:
    """Copies a keras.applications ResNet's (no top) weights into ``model`` by layer name."""
    if weights is None:
        return
    try:
        source = _IMAGENET_RESNETS[backbone](include_top=False, weights=weights, input_shape=(None, None, 3))
    except Exception as error:  # keras' get_file raises a bare Exception on download failure
        raise WeightsUnavailableError(
            f"could not load the keras.applications {backbone} weights ({error}); download its "
            f"no-top weights file where there is internet and pass weights='/path/to/file.h5'."
        ) from error
    transfer_resnet_weights(source, model)


def _dilated_model(head, input_shape, classes, weights, backbone, output_stride, name) -> keras.Model:
    input_shape = check_input_shape(input_shape, output_stride, name)
    check_classes(classes)
    check_choice("backbone", backbone, tuple(DILATED_BACKBONES))
    weights = validate_weights(weights)
    if weights is not None and backbone not in _IMAGENET_RESNETS:
        raise ValueError(f"weights: {backbone} has no ImageNet weights; use weights=None.")
    image = keras.Input(input_shape, name="image")
    features = _dilated_backbone(image, backbone, output_stride)
    x = head(features)
    x = keras.layers.Conv2D(classes, 1, name="head_conv")(x)  # logits, then upsampled (as heads.classifier)
    x = heads.resize_to(x, input_shape[:2], "head_up")
    model = keras.Model(image, keras.layers.Activation("sigmoid", dtype="float32", name="mask")(x), name=name)
    _load_imagenet_resnet(model, backbone, weights)
    return model


def build_deeplab(input_shape: Sequence[int] = (256, 256, 3), classes: int = len(SANET_ATTRIBUTES),
                  weights: str | os.PathLike | None = None, *, backbone: str = "resnet101",
                  output_stride: int = 16, name: str = "deeplab") -> keras.Model:
    """DeepLabv3+ (Chen et al. 2018; SANet Table 3 "DeepLab") with sigmoid attribute maps.

    Dilated ResNet (:data:`DILATED_BACKBONES`) at ``output_stride`` 16 (or 8), ASPP,
    the DeepLabv3+ decoder on the stride-4 features, 1x1 conv, bilinear x4, sigmoid.
    ``weights``: ``None``, ``"imagenet"`` or a keras.applications no-top file of
    the backbone (copied by layer name).
    """
    def head(features):
        x = heads.aspp(features[-1], output_stride)
        return heads.deeplabv3plus_decoder(x, features[1])

    return _dilated_model(head, input_shape, classes, weights, backbone, output_stride, name)


def build_resnet_danet(input_shape: Sequence[int] = (256, 256, 3), classes: int = len(SANET_ATTRIBUTES),
                       weights: str | os.PathLike | None = None, *, backbone: str = "resnet101",
                       name: str = "danet") -> keras.Model:
    """DANet (Fu et al. 2019; SANet Table 3 "DANet") with sigmoid attribute maps.

    Dilated ResNet at output stride 8 and DANet's position + channel attention
    head, 1x1 conv, bilinear x8, sigmoid. (:func:`zoo.models.apspnet.build_danet`
    is the softmax, ResNet50, Caffe-input variant of A-PSPNet's Table III.)
    """
    return _dilated_model(lambda features: heads.danet_head(features[-1]), input_shape, classes,
                          weights, backbone, 8, name)
