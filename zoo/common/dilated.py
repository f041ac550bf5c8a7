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
3. the head on the stage features;
4. :func:`zoo.common.segmentation_heads.classifier`: 1x1 conv, bilinear upsampling
   to the input size and a float32 softmax (one class per pixel) or sigmoid
   (independent maps, SANet's lesion attributes).

ResNet layers keep keras.applications' names, so ``weights="imagenet"`` copies
the ImageNet ResNet50/101/152 by layer name (:func:`zoo.common.resnet.load_weights`).
Each paper's defaults (input size, classes, backbone) live in its own module.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import keras

from zoo.common import segmentation_heads as heads
from zoo.common.encoders import encoder_spec
from zoo.common.resnet import (RESNET_BACKBONES, check_input_shape, load_weights,
                               resnet_features, validate_weights)
from zoo.common.unet import check_choice, check_classes

OUTPUT_ACTIVATIONS: tuple[str, ...] = ("softmax", "sigmoid")
INPUT_SCALES: tuple[str, ...] = ("caffe", "unit")
"""``"caffe"``: the input is already BGR 0-255 minus the ImageNet mean
(``InputSpec(scale="caffe")``); ``"unit"``: RGB in [0, 1], rescaled inside by
the ResNet scaling of :mod:`zoo.common.encoders` (RGB -> BGR, 255 x minus the
BGR mean), so that these baselines see what SANet's ResNet encoder sees."""

Features = list[keras.KerasTensor]
Head = Callable[[Features], keras.KerasTensor]
"""``head(features)``: the [conv1 .. conv5] stage features to the classifier's input."""
Encoder = Callable[[keras.KerasTensor, Sequence[int], int],
                   tuple[Features, dict[str, keras.KerasTensor]]]
"""``encoder(image, blocks_per_stage, output_stride)`` -> (stage features, attention maps)."""


def plain_encoder(inputs: keras.KerasTensor, blocks_per_stage: Sequence[int],
                  output_stride: int) -> tuple[Features, dict[str, keras.KerasTensor]]:
    """The dilated ResNet without attention: its stage features and no maps."""
    return resnet_features(inputs, blocks_per_stage, output_stride=output_stride), {}


def _unit_to_caffe(inputs: keras.KerasTensor) -> keras.KerasTensor:
    """[0, 1] input to the encoders' ResNet scale (layer ``encoder_input_scaling``)."""
    return encoder_spec("resnet50").input_scaling(inputs)  # every keras.applications ResNet's


def build_dilated_model(head: Head, *, name: str, input_shape: Sequence[int], classes: int,
                        weights: str | os.PathLike | None, backbone: str,
                        output_stride: int = 8, activation: str = "softmax",
                        input_scale: str = "caffe", encoder: Encoder = plain_encoder,
                        return_attention: bool = False, minimum_side: int = 1) -> keras.Model:
    """(Attention) dilated ResNet -> ``head`` -> :func:`segmentation_heads.classifier`.

    Args:
        head: maps the stage features ``[conv1, ..., conv5]`` to the classifier's
            input (e.g. ``lambda f: heads.danet_head(f[-1])``).
        name: the model's name.
        input_shape: ``(height, width, channels)``, sides at least ``minimum_side``.
        classes: output maps.
        weights: ``None``, ``"imagenet"`` (ResNet50/101/152 backbones) or a path
            (:func:`zoo.common.resnet.load_weights`).
        backbone: a key of :data:`zoo.common.resnet.RESNET_BACKBONES`.
        output_stride: 8 or 16 (stages 4-5 resp. stage 5 dilated instead of strided).
        activation: a value of :data:`OUTPUT_ACTIVATIONS`.
        input_scale: a value of :data:`INPUT_SCALES`.
        encoder: builds the backbone; :func:`plain_encoder` or an attention ResNet.
        return_attention: output ``{"mask": ..., **maps}`` with the encoder's maps.
        minimum_side: the smallest input side the head accepts.
    """
    check_choice("backbone", backbone, tuple(RESNET_BACKBONES))
    check_choice("activation", activation, OUTPUT_ACTIVATIONS)
    check_choice("input_scale", input_scale, INPUT_SCALES)
    blocks = RESNET_BACKBONES[backbone]
    validate_weights(weights, blocks, name)
    check_classes(classes)
    shape = check_input_shape(input_shape, name, weights, minimum_side)
    image = keras.Input(shape=shape, name="image")
    scaled = _unit_to_caffe(image) if input_scale == "unit" else image
    features, maps = encoder(scaled, blocks, output_stride)
    mask = heads.classifier(head(features), classes, shape[:2], activation)
    outputs = {"mask": mask, **maps} if return_attention else mask
    model = keras.Model(image, outputs, name=name)
    load_weights(model, weights, blocks)
    return model
