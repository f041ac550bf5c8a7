"""A-PSPNet (Wen et al., "A-PSPNet: a novel segmentation method of renal ultrasound
image") and its Table III baselines, PSPNet, DeepLabv3 and DANet, on ResNet50.

* :func:`attention_resnet` is the "improved ResNet" of section III-A, eq. 5:
  ``f_out = M_end(y_n(M_start))``: the same CBAM arrangement (:mod:`zoo.layers.cbam`)
  on the initial feature map (after ``conv1_relu``, 64 channels: "given an input
  and obtain the initial feature map", section VI) and on the output of the last
  stage (2048 channels). The ResNet50 itself is untouched (every layer keeps its
  keras.applications name and shape), so ImageNet weights load as into a plain
  ResNet50.
* :func:`build_apspnet` = attention ResNet50 (dilated, output stride 8) + PSPNet
  head (section III-B); :func:`build_pspnet`, :func:`build_deeplabv3` and
  :func:`build_danet` put the heads of :mod:`zoo.models.segmentation_heads` on
  the plain dilated ResNet50.
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
from collections.abc import Callable, Sequence

import keras

from data_tools.preprocess import InputSpec
from zoo.layers.cbam import CBAM_ORDERS, cbam
from zoo.models import segmentation_heads as heads
from zoo.models.resnet import (RESNET14_BLOCKS, RESNET50_BLOCKS, RESNET101_BLOCKS,
                               classifier_head, load_weights, resnet_features,
                               validate_weights)

APSPNET_INPUT = InputSpec(image_size=(473, 473), fit="pad", scale="caffe")
"""Section IV-B: grey borders to a square, resize to 473x473; ImageNet ResNet50 scale."""

APSPNET_CLASSES: tuple[str, ...] = ("background", "kidney", "hydronephrosis")
"""Section IV-A: Labelme "kidney" and "hydrops" tags; index 0 is the background."""

DEFAULT_INPUT_SHAPE = (473, 473, 3)
#: Blocks per stage of each ``backbone``. The paper's is ResNet50 (the only one
#: with ImageNet weights); ResNet101 serves SANet's baselines, ResNet14 (one block
#: per stage, the ARL paper's) small experiments and tests.
BACKBONES: dict[str, tuple[int, ...]] = {
    "resnet14": RESNET14_BLOCKS, "resnet50": RESNET50_BLOCKS,
    "resnet101": RESNET101_BLOCKS, "resnet152": (3, 8, 36, 3),
}
STEM_LAYER = "conv1_relu"

Head = Callable[[keras.KerasTensor, int], keras.KerasTensor]


def attention_resnet(inputs: keras.KerasTensor, cbam_order: str = "channel_spatial",
                     output_stride: int = 32, reduction: int = 16,
                     blocks_per_stage: Sequence[int] = RESNET50_BLOCKS
                     ) -> tuple[keras.KerasTensor, dict[str, keras.KerasTensor]]:
    """A ResNet with CBAM before and after its stages (eq. 5); returns features and maps.

    The plain ResNet graph is built by :func:`zoo.models.resnet.resnet_features`
    on a template input, then cloned onto ``inputs`` with the start CBAM inserted
    after ``conv1_relu`` (``keras.models.clone_model(call_function=...)``), so the
    ResNet layers are exactly those of a plain ResNet (same names, same shapes)
    and each belongs to this graph only (``get_layer(name).output`` is the
    attended graph's tensor).

    Args:
        inputs: the image tensor.
        cbam_order: a key of :data:`zoo.layers.cbam.CBAM_ORDERS` (Table I).
        output_stride: 32 (classification), 16 or 8 (dilated stages 4-5 for
            segmentation, as PSPNet).
        reduction: the channel unit's ratio r (16).
        blocks_per_stage: (3, 4, 6, 3) for ResNet50 (the paper's backbone);
            (3, 4, 23, 3) and (3, 8, 36, 3) give the ResNet101 and ResNet152 of
            Table II.

    Returns:
        The attended conv5 features and the attention maps, keyed
        ``"cbam_start_channel"``, ``"cbam_end_spatial"``, ...
    """
    if cbam_order not in CBAM_ORDERS:
        raise ValueError(f"cbam_order must be one of {sorted(CBAM_ORDERS)}, got {cbam_order!r}")
    template = keras.Input(batch_shape=inputs.shape, dtype=inputs.dtype)
    plain = keras.Model(template, resnet_features(template, blocks_per_stage,
                                                  output_stride=output_stride)[-1])
    maps: dict[str, keras.KerasTensor] = {}

    def attend(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
        x, unit_maps = cbam(x, order=cbam_order, reduction=reduction, name=name)
        maps.update({f"{name}_{unit}": value for unit, value in unit_maps.items()})
        return x

    def call_with_start_cbam(layer, *args, **kwargs):
        outputs = layer(*args, **kwargs)
        return attend(outputs, "cbam_start") if layer.name == STEM_LAYER else outputs

    with_start = keras.models.clone_model(plain, input_tensors=inputs,
                                          call_function=call_with_start_cbam)
    return attend(with_start.output, "cbam_end"), maps


def _check_input_shape(input_shape: Sequence[int], minimum_side: int,
                       weights: str | os.PathLike | None, model_name: str) -> tuple[int, ...]:
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ValueError(f"{model_name}: input_shape must be (height, width, channels) "
                         f"positive integers, got {input_shape!r}")
    if min(shape[:2]) < minimum_side:
        raise ValueError(f"{model_name}: input_shape {shape} is too small; height and "
                         f"width must be at least {minimum_side}")
    if weights is not None and shape[-1] != 3:
        raise ValueError(f"{model_name}: pretrained ResNet50 weights need 3 input "
                         f"channels, got input_shape={shape}")
    return shape


def _segmentation_model(head: Head, name: str, input_shape: Sequence[int], classes: int,
                        weights: str | os.PathLike | None, backbone: str,
                        output_stride: int = 8, cbam_order: str | None = None,
                        return_attention: bool = False,
                        minimum_feature_side: int = 1) -> keras.Model:
    """(Attention) dilated ResNet -> ``head`` -> :func:`heads.classifier`."""
    if backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {sorted(BACKBONES)}, got {backbone!r}")
    blocks = BACKBONES[backbone]
    validate_weights(weights, backbone == "resnet50", name)
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise ValueError(f"classes must be a positive integer, got {classes!r}")
    shape = _check_input_shape(input_shape, output_stride * (minimum_feature_side - 1) + 1,
                               weights, name)
    inputs = keras.Input(shape=shape, name="image")
    if cbam_order is None:
        features, maps = resnet_features(inputs, blocks, output_stride=output_stride)[-1], {}
    else:
        features, maps = attention_resnet(inputs, cbam_order, output_stride,
                                          blocks_per_stage=blocks)
    mask = heads.classifier(head(features, output_stride), classes, shape[:2])
    outputs = {"mask": mask, **maps} if return_attention else mask
    model = keras.Model(inputs, outputs, name=name)
    load_weights(model, weights)
    return model


def _psp(features: keras.KerasTensor, output_stride: int) -> keras.KerasTensor:
    del output_stride
    return heads.pspnet_head(features)


def _deeplabv3(features: keras.KerasTensor, output_stride: int) -> keras.KerasTensor:
    return heads.aspp(features, output_stride)


def _danet(features: keras.KerasTensor, output_stride: int) -> keras.KerasTensor:
    del output_stride
    return heads.danet_head(features)


def build_apspnet(input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE,
                  classes: int = len(APSPNET_CLASSES),
                  weights: str | os.PathLike | None = None,
                  cbam_order: str = "channel_spatial",
                  return_attention: bool = False,
                  backbone: str = "resnet50") -> keras.Model:
    """A-PSPNet (Fig. 1): attention ResNet50 (eq. 5) + pyramid pooling module.

    Args:
        input_shape: ``(height, width, channels)``; the paper's 473x473x3 by
            default. Height and width must be at least 41 (6 bins of features at
            output stride 8).
        classes: output classes including the background (3: background, kidney,
            hydronephrosis).
        weights: ``None``, ``"imagenet"`` (keras.applications ResNet50, by layer
            name; the paper's transfer learning) or a weights file path (see
            :func:`zoo.models.resnet.load_weights`).
        cbam_order: Table I's arrangement, a key of
            :data:`zoo.layers.cbam.CBAM_ORDERS`; the paper's choice
            ``"channel_spatial"`` by default.
        return_attention: outputs a dict ``{"mask": ..., "cbam_start_channel": ...,
            ...}`` with every CBAM map instead of the mask alone.
        backbone: a key of :data:`BACKBONES`; the paper's ``"resnet50"``.
    """
    return _segmentation_model(_psp, f"apspnet_{cbam_order}", input_shape, classes, weights,
                               backbone, cbam_order=cbam_order, return_attention=return_attention,
                               minimum_feature_side=max(heads.PSP_BINS))


def build_pspnet(input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE,
                 classes: int = len(APSPNET_CLASSES),
                 weights: str | os.PathLike | None = None,
                 backbone: str = "resnet50") -> keras.Model:
    """PSPNet (Zhao et al. 2017) on a dilated ResNet (output stride 8); Table III.

    Arguments as :func:`build_apspnet`.
    """
    return _segmentation_model(_psp, "pspnet", input_shape, classes, weights, backbone,
                               minimum_feature_side=max(heads.PSP_BINS))


def build_deeplabv3(input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE,
                    classes: int = len(APSPNET_CLASSES),
                    weights: str | os.PathLike | None = None,
                    output_stride: int = 8,
                    backbone: str = "resnet50") -> keras.Model:
    """DeepLabv3 (Chen et al. 2017): dilated ResNet + ASPP; Table III.

    ``output_stride`` 8 (rates 12, 24, 36; the default, as the other Table III
    models) or 16 (rates 6, 12, 18; DeepLabv3's training setting). Other
    arguments as :func:`build_apspnet`.
    """
    return _segmentation_model(_deeplabv3, "deeplabv3", input_shape, classes, weights,
                               backbone, output_stride=output_stride)


def build_danet(input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE,
                classes: int = len(APSPNET_CLASSES),
                weights: str | os.PathLike | None = None,
                backbone: str = "resnet50") -> keras.Model:
    """DANet (Fu et al. 2019) on a dilated ResNet (output stride 8); Table III.

    Arguments as :func:`build_apspnet`.
    """
    return _segmentation_model(_danet, "danet", input_shape, classes, weights, backbone)


def build_attention_resnet(blocks_per_stage: Sequence[int] = RESNET50_BLOCKS,
                           name: str = "attention_resnet50",
                           input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE,
                           classes: int = 1000,
                           weights: str | os.PathLike | None = None,
                           cbam_order: str = "channel_spatial") -> keras.Model:
    """The attention ResNet of eq. 5 as a classifier (GAP + FC), the models of Table II.

    Table II's "A-PSPNet" is this model with ResNet50 blocks; its ResNet101 and
    ResNet152 counts (torchvision's plus 0.52500M) are these models too.
    ``weights="imagenet"`` is available for ResNet50 blocks only.
    """
    validate_weights(weights, tuple(blocks_per_stage) == RESNET50_BLOCKS, name)
    shape = _check_input_shape(input_shape, 32, weights, name)
    inputs = keras.Input(shape=shape, name="image")
    features, _ = attention_resnet(inputs, cbam_order, blocks_per_stage=blocks_per_stage)
    model = keras.Model(inputs, classifier_head(features, classes), name=name)
    load_weights(model, weights)
    return model


def build_attention_resnet50(input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE,
                             classes: int = 1000,
                             weights: str | os.PathLike | None = None,
                             cbam_order: str = "channel_spatial") -> keras.Model:
    """Attention ResNet50 classifier: Table II's "A-PSPNet" row."""
    return build_attention_resnet(RESNET50_BLOCKS, "attention_resnet50", input_shape,
                                  classes, weights, cbam_order)
