"""segmentation_models U-Nets for AER-Net Table 1's encoder sweep.

The AER-Net authors compared "ResNet, VGG, EfficientNet, DenseNet, Inception,
MobileNet, SENet, SE-ResNeXt, ResNeXt" pretrained encoders under a U-Net decoder
(section 4.3) and report the best five in Table 1. SE-ResNet and SE-ResNeXt are not
in keras.applications, so the sweep uses segmentation_models 1.0.1 (qubvel), which
has all five of Table 1's backbones:

==============  ================================
Table 1         segmentation_models backbone
==============  ================================
EfficientNetb1  ``efficientnetb1``
Se-ResNeXt101   ``seresnext101``
EfficientNetb3  ``efficientnetb3``
SeResNet152     ``seresnet152``
EfficientNetb0  ``efficientnetb0``
==============  ================================

This is the one module that imports segmentation_models; it sets
``SM_FRAMEWORK=tf.keras`` first (segmentation_models otherwise looks for the
standalone ``keras`` 2 API). segmentation_models is an optional dependency
(``pip install medattn-zoo[sweep]``); it is imported when a model is built.

Input: the [0, 1] CIELAB input of :data:`zoo.aernet.models.AERNET_INPUT`, scaled inside
the model as each encoder's ImageNet weights expect (:func:`sm_input_scaling`: the
affine map of segmentation_models' own ``get_preprocessing(backbone)`` on 0-255 values,
as one ``InputScaling`` layer, ``encoder_input_scaling``), exactly as AER-Net feeds its
own EfficientNetB1 (x 255, then the backbone's normalisation): the same encoder sees the
same input in Tables 1 and 2. Models built here contain segmentation_models' own
custom layers and are meant for training and evaluation in the table script (weights
files), not for ``.keras`` export.
"""

from __future__ import annotations

import os
from typing import Sequence

import keras
import numpy as np

from zoo.common.encoders import imagenet_download
from zoo.common.input_scaling import InputScaling
from zoo.common.validation import IMAGENET, check_choice, check_classes, check_input_shape, check_return_attention
from zoo.common.weights import assemble_model, check_checkpoint

TABLE1_BACKBONES: dict[str, str] = {
    "EfficientNetb1": "efficientnetb1",
    "Se-ResNeXt101": "seresnext101",
    "EfficientNetb3": "efficientnetb3",
    "SeResNet152": "seresnet152",
    "EfficientNetb0": "efficientnetb0",
}
"""AER-Net Table 1's backbone names -> segmentation_models backbone names."""

SM_SIZE_MULTIPLE = 32  # five poolings in every segmentation_models encoder


def _segmentation_models():
    os.environ["SM_FRAMEWORK"] = "tf.keras"
    try:
        import segmentation_models
    except ImportError as error:
        raise ImportError(
            "The encoder sweep needs segmentation_models 1.0.1: pip install 'medattn-zoo[sweep]' "
            f"(or pip install segmentation-models==1.0.1). ({error})"
        ) from error
    return segmentation_models


def sm_backbones() -> tuple[str, ...]:
    """Every backbone name segmentation_models knows."""
    return tuple(_segmentation_models().Backbones.models_names())


def sm_input_scaling(backbone: str) -> InputScaling:
    """``backbone``'s ImageNet preprocessing as an :class:`InputScaling` layer on [0, 1] input.

    segmentation_models' ``get_preprocessing(backbone)`` maps 0-255 images per channel
    affinely (keras.applications' "caffe", "torch" or "tf" modes, or nothing); the map
    is read off the function itself (its answer to black and to each pure channel), so
    the layer equals ``get_preprocessing(backbone)(255 * x)`` for every backbone.
    """
    preprocess = _segmentation_models().get_preprocessing(backbone)
    black = np.asarray(preprocess(np.zeros((1, 1, 1, 3), np.float32)), np.float64).ravel()
    response = np.stack(
        [
            np.asarray(preprocess(255.0 * np.eye(3, dtype=np.float32)[c].reshape(1, 1, 1, 3)), np.float64).ravel()
            - black
            for c in range(3)
        ],
        axis=1,
    )  # [out, in]
    reverse = bool(
        np.allclose(response, np.diag(np.diag(response[:, ::-1]))[:, ::-1])
        and not np.allclose(response, np.diag(np.diag(response)))
    )
    scale = np.diag(response[:, ::-1] if reverse else response)
    if not np.allclose(response, (np.diag(scale)[:, ::-1] if reverse else np.diag(scale)), atol=1e-6):
        raise ValueError(
            f"segmentation_models' preprocessing of {backbone!r} mixes channels; it cannot be one per-channel scaling."
        )
    return InputScaling(tuple(scale), tuple(black), reverse_channels=reverse, name="encoder_input_scaling")


def build_sm_unet(
    input_shape: Sequence[int] = (256, 256, 3),
    classes: int = 1,
    weights: str | os.PathLike | None = None,
    *,
    encoder_weights: str | None = None,
    return_attention: bool = False,
    backbone: str = TABLE1_BACKBONES["EfficientNetb1"],
) -> keras.Model:
    """A segmentation_models U-Net over ``backbone`` (AER-Net Table 1, section 4.3).

    Args:
        input_shape: ``(H, W, C)``, H and W divisible by 32.
        classes: output channels (sigmoid for 1, softmax otherwise).
        weights: ``None`` or a ``.weights.h5``/``.keras`` checkpoint of this whole
            model (e.g. of a previous run), loaded after building.
        encoder_weights: ``None`` or ``"imagenet"`` (the encoder's ImageNet weights,
            downloaded by segmentation_models; it takes no local file).
        return_attention: ``False`` only: these U-Nets have no attention maps.
        backbone: a segmentation_models backbone name (:func:`sm_backbones`), e.g.
            ``"seresnext101"``; see :data:`TABLE1_BACKBONES` (default: Table 1's best,
            EfficientNetB1).

    Raises:
        ValueError: unknown backbone or bad argument (named in the message).
        WeightsUnavailableError: the ImageNet weights could not be downloaded.
    """
    sm = _segmentation_models()
    known = sm.Backbones.models_names()
    if backbone not in known:
        raise ValueError(f"backbone must be one of segmentation_models' {sorted(known)}, got {backbone!r}.")
    name = f"build_sm_unet({backbone!r})"
    check_checkpoint(weights, name)
    check_choice("encoder_weights", encoder_weights, (None, IMAGENET))
    input_shape = check_input_shape(
        input_shape, name, multiple=SM_SIZE_MULTIPLE, pretrained=encoder_weights is not None
    )
    check_classes(classes)
    check_return_attention(return_attention, name, available=False)
    with imagenet_download(
        encoder_weights,
        f"segmentation_models' {backbone}",
        (
            "Put the file segmentation_models asks for in ~/.keras/models/ (downloaded on a "
            "machine with internet access), or train from scratch with encoder_weights=None."
        ),
    ):
        unet = sm.Unet(
            backbone,
            input_shape=input_shape,
            classes=classes,
            activation="sigmoid" if classes == 1 else "softmax",
            encoder_weights=encoder_weights,
        )
    inputs = keras.Input(input_shape, name="image")
    scaling = sm_input_scaling(backbone) if input_shape[-1] == 3 else None
    mask = unet(scaling(inputs) if scaling is not None else inputs)
    return assemble_model(inputs, "mask", mask, {}, return_attention=False, weights=weights, name=f"sm_unet_{backbone}")
