"""Dilated-ResNet segmentation models: backbone -> head -> classifier, written once.

Every segmentation network of A-PSPNet's Table III (PSPNet, Deeplabv3, DANet,
A-PSPNet) and SANet's dilated baselines of Table 3 (DeepLab, DANet) is the same
pipeline with a different head (:mod:`zoo.common.segmentation_heads`):

1. the image, either already in keras.applications' "caffe" scale (A-PSPNet's
   :data:`zoo.apspnet.models.APSPNET_INPUT`) or RGB in [0, 1] rescaled inside the
   model by an ``InputScaling`` layer named ``encoder_input_scaling`` (SANet's
   :data:`zoo.sanet.models.SANET_INPUT`; the scaling of :mod:`zoo.common.encoders`);
2. a ResNet of :mod:`zoo.common.resnet` whose last stages are dilated to the
   output stride (8 or 16: PSPNet / DeepLab), possibly with attention
   (A-PSPNet's CBAMs: an ``encoder`` callable);
3. the head on the stage features (DANet's also gives its attention maps);
4. :func:`zoo.common.segmentation_heads.classifier`: 1x1 conv, bilinear upsampling
   to the input size and a float32 softmax (one class per pixel) or sigmoid
   (independent maps, SANet's lesion attributes).

ResNet layers keep keras.applications' names, so ``encoder_weights="imagenet"`` copies
the ImageNet ResNet50/101/152 by layer name (:func:`zoo.common.resnet.load_encoder_weights`);
``weights`` is a checkpoint of the whole model (:func:`zoo.common.weights.load_checkpoint`).
Each paper's defaults (input size, classes, backbone) live in its own module.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import keras

from zoo.common import segmentation_heads as heads
from zoo.common.encoders import encoder_spec
from zoo.common.resnet import RESNET_BACKBONES, has_imagenet_weights, load_encoder_weights, resnet_features
from zoo.common.validation import (
    check_choice,
    check_classes,
    check_encoder_weights,
    check_input_shape,
    check_return_attention,
)
from zoo.common.weights import assemble_model, check_checkpoint

OUTPUT_ACTIVATIONS: tuple[str, ...] = ("softmax", "sigmoid")
INPUT_SCALES: tuple[str, ...] = ("caffe", "unit")
"""``"caffe"``: the input is already BGR 0-255 minus the ImageNet mean
(``InputSpec(scale="caffe")``); ``"unit"``: RGB in [0, 1], rescaled inside by
the ResNet scaling of :mod:`zoo.common.encoders` (RGB -> BGR, 255 x minus the
BGR mean), so that these baselines see what SANet's ResNet encoder sees."""

Features = list[keras.KerasTensor]
Head = Callable[[Features], tuple[keras.KerasTensor, dict[str, keras.KerasTensor]]]
"""``head(features)``: the [conv1 .. conv5] stage features to the classifier's input
and the head's attention maps (``{}`` for heads without attention)."""
Encoder = Callable[[keras.KerasTensor, Sequence[int], int], tuple[Features, dict[str, keras.KerasTensor]]]
"""``encoder(image, blocks_per_stage, output_stride)`` -> (stage features, attention maps)."""


def plain_encoder(
    inputs: keras.KerasTensor, blocks_per_stage: Sequence[int], output_stride: int
) -> tuple[Features, dict[str, keras.KerasTensor]]:
    """The dilated ResNet without attention: its stage features and no maps."""
    return resnet_features(inputs, blocks_per_stage, output_stride=output_stride), {}


def _unit_to_caffe(inputs: keras.KerasTensor) -> keras.KerasTensor:
    """[0, 1] input to the encoders' ResNet scale (layer ``encoder_input_scaling``)."""
    return encoder_spec("resnet50").input_scaling(inputs)  # every keras.applications ResNet's


def build_dilated_model(
    head: Head,
    *,
    name: str,
    input_shape: Sequence[int],
    classes: int,
    weights: str | os.PathLike | None,
    encoder_weights: str | os.PathLike | None,
    backbone: str,
    output_stride: int = 8,
    activation: str = "softmax",
    input_scale: str = "caffe",
    encoder: Encoder = plain_encoder,
    return_attention: bool = False,
    attention: bool = False,
    minimum_side: int = 1,
) -> keras.Model:
    """(Attention) dilated ResNet -> ``head`` -> :func:`segmentation_heads.classifier`.

    Args:
        head: maps the stage features ``[conv1, ..., conv5]`` to the classifier's
            input and its attention maps (e.g. ``lambda f: heads.danet_head(f[-1])``).
        name: the model's name.
        input_shape: ``(height, width, channels)``, sides at least ``minimum_side``.
        classes: output maps.
        weights: ``None`` or a ``.weights.h5``/``.keras`` checkpoint of the model.
        encoder_weights: ``None``, ``"imagenet"`` or a keras.applications no-top
            file of the ResNet (ResNet50/101/152 backbones).
        backbone: a key of :data:`zoo.common.resnet.RESNET_BACKBONES`.
        output_stride: 8 or 16 (stages 4-5 resp. stage 5 dilated instead of strided).
        activation: a value of :data:`OUTPUT_ACTIVATIONS`.
        input_scale: a value of :data:`INPUT_SCALES`.
        encoder: builds the backbone; :func:`plain_encoder` or an attention ResNet.
        return_attention: output ``{"mask": ..., **maps}`` with the encoder's and
            the head's maps.
        attention: the encoder or the head has attention maps (``return_attention``
            is allowed).
        minimum_side: the smallest input side the head accepts.
    """
    check_choice("backbone", backbone, tuple(RESNET_BACKBONES))
    check_choice("activation", activation, OUTPUT_ACTIVATIONS)
    check_choice("input_scale", input_scale, INPUT_SCALES)
    blocks = RESNET_BACKBONES[backbone]
    check_checkpoint(weights, name)
    encoder_weights = check_encoder_weights(encoder_weights, name, pretrained=has_imagenet_weights(blocks))
    check_classes(classes)
    shape = check_input_shape(input_shape, name, minimum_side=minimum_side, pretrained=encoder_weights is not None)
    check_return_attention(return_attention, name, available=attention)
    image = keras.Input(shape=shape, name="image")
    scaled = _unit_to_caffe(image) if input_scale == "unit" else image
    features, maps = encoder(scaled, blocks, output_stride)
    head_features, head_maps = head(features)
    mask = heads.classifier(head_features, classes, shape[:2], activation)
    return assemble_model(
        image,
        "mask",
        mask,
        {**maps, **head_maps},
        return_attention=return_attention,
        weights=weights,
        name=name,
        initialise=lambda model: load_encoder_weights(model, encoder_weights, blocks),
    )
