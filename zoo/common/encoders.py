"""Pretrained keras.applications backbones as U-Net encoders, tapped by layer name.

:func:`build_encoder` runs a keras.applications backbone (no top) on a model
input in [0, 1] and returns its feature maps at named layers ("taps"). Taps are
layer *names*, never indices: indices shift between Keras versions and with
``weights="imagenet"`` (keras.applications' EfficientNet adds a Rescaling layer only then).

The model input is in [0, 1] (``InputSpec(scale="unit")``); each backbone gets it
rescaled inside the model, by an :class:`~zoo.common.input_scaling.InputScaling`
layer named ``encoder_input_scaling``,
to the range its ImageNet weights were trained on:

* EfficientNet: times 255 (the backbone has its own Rescaling/Normalization that
  expect 0-255 input);
* ResNet, VGG ("caffe" mode): RGB -> BGR, times 255, minus the Caffe BGR means
  (as ``keras.applications.resnet.preprocess_input``: the weights were trained on
  BGR);
* DenseNet ("torch" mode): ``(x - mean) / std`` with ImageNet statistics;
* MobileNetV2 ("tf" mode): ``2 x - 1``.

``encoder_weights`` is ``None`` (random initialisation), ``"imagenet"`` (downloaded by
keras.applications into ``~/.keras/models``) or the path to a weights file of the
same backbone without top (e.g. ``efficientnetb1_notop.h5`` as keras.applications
downloads it, or a ``.weights.h5`` saved from ``keras.applications.<Backbone>(
include_top=False)``). A file is loaded exactly as the download would be: the backbone
is built with ``weights="imagenet"`` while keras' ``get_file`` hands back the file, so
the same weights give the same network whatever their source (EfficientNet's extra
``Rescaling(1/sqrt(var))`` stem layer, added for ``"imagenet"`` only, is there too).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Callable, Iterator, Sequence
from unittest import mock

import keras
from keras.src.utils import file_utils

from data_tools.preprocess import CAFFE_BGR_MEAN
from zoo.common.input_scaling import InputScaling
from zoo.common.validation import check_encoder_weights, check_pretrained_channels

# Feature strides of the default taps: 1/2, 1/4, 1/8, 1/16 (the skips) and 1/32.
TAP_STRIDES: tuple[int, ...] = (2, 4, 8, 16, 32)

_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class EncoderSpec:
    """A keras.applications backbone as an encoder.

    Attributes:
        application: the keras.applications constructor.
        taps: layer names at ``TAP_STRIDES`` (1/2 ... 1/32), finest first.
        scale, offset: per-channel affine map from [0, 1] input to the backbone's
            expected input (``x * scale + offset``, in the backbone's channel order).
        bgr: the backbone expects BGR: the channels are reversed before the map.
    """

    application: Callable[..., keras.Model]
    taps: tuple[str, ...]
    scale: tuple[float, float, float]
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    bgr: bool = False

    def input_scaling(self, inputs: keras.KerasTensor) -> keras.KerasTensor:
        """[0, 1] RGB ``inputs`` -> the backbone's input (layer ``encoder_input_scaling``).

        Inputs without 3 channels get the channel-mean scale and offset, unreversed.
        """
        scale, offset, bgr = self.scale, self.offset, self.bgr
        if inputs.shape[-1] != 3:  # per-channel statistics do not apply: use their means
            scale, offset, bgr = sum(scale) / 3, sum(offset) / 3, False
        return InputScaling(scale, offset, reverse_channels=bgr, name="encoder_input_scaling")(inputs)


def _efficientnet(application, last_stage_tap: str = "top_activation") -> EncoderSpec:
    return EncoderSpec(
        application,
        (
            "block2a_expand_activation",
            "block3a_expand_activation",
            "block4a_expand_activation",
            "block6a_expand_activation",
            last_stage_tap,
        ),
        (255.0,) * 3,
    )


def _caffe(application, taps) -> EncoderSpec:
    return EncoderSpec(application, tuple(taps), (255.0,) * 3, tuple(-m for m in CAFFE_BGR_MEAN), bgr=True)


def _torch(application, taps) -> EncoderSpec:
    return EncoderSpec(
        application,
        tuple(taps),
        tuple(1.0 / s for s in _TORCH_STD),
        tuple(-m / s for m, s in zip(_TORCH_MEAN, _TORCH_STD, strict=True)),
    )


_apps = keras.applications
ENCODERS: dict[str, EncoderSpec] = {
    **{f"efficientnetb{i}": _efficientnet(getattr(_apps, f"EfficientNetB{i}")) for i in range(8)},
    "resnet50": _caffe(
        _apps.ResNet50, ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out")
    ),
    "resnet101": _caffe(
        _apps.ResNet101, ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block23_out", "conv5_block3_out")
    ),
    "resnet152": _caffe(
        _apps.ResNet152, ("conv1_relu", "conv2_block3_out", "conv3_block8_out", "conv4_block36_out", "conv5_block3_out")
    ),
    "vgg16": _caffe(_apps.VGG16, ("block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3", "block5_pool")),
    "vgg19": _caffe(_apps.VGG19, ("block2_conv2", "block3_conv4", "block4_conv4", "block5_conv4", "block5_pool")),
    **{
        f"densenet{depth}": _torch(
            getattr(_apps, f"DenseNet{depth}"), ("conv1_relu", "pool2_relu", "pool3_relu", "pool4_relu", "relu")
        )
        for depth in (121, 169, 201)
    },
    "mobilenetv2": EncoderSpec(
        _apps.MobileNetV2,
        ("block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu", "block_13_expand_relu", "out_relu"),
        (2.0,) * 3,
        (-1.0,) * 3,
    ),
}
del _apps


class WeightsUnavailableError(RuntimeError):
    """ImageNet weights could not be downloaded; the message says how to pass a file."""


def encoder_spec(backbone: str) -> EncoderSpec:
    """The :class:`EncoderSpec` of ``backbone`` (a key of ``ENCODERS``)."""
    if backbone not in ENCODERS:
        raise ValueError(f"backbone must be one of {sorted(ENCODERS)}, got {backbone!r}.")
    return ENCODERS[backbone]


def build_encoder(
    backbone: str, inputs, encoder_weights: str | os.PathLike | None = None, taps: Sequence[str] | None = None
) -> list:
    """Runs ``backbone`` on ``inputs`` (a Keras input in [0, 1]) and returns its taps.

    The backbone's layers become layers of the model built on ``inputs`` (with their
    keras.applications names), so ``model.get_layer("block3b_add")`` works.

    Args:
        backbone: a key of ``ENCODERS`` (``"efficientnetb1"``, ``"resnet101"``, ...).
        inputs: the model's ``keras.Input``, values in [0, 1].
        encoder_weights: ``None``, ``"imagenet"`` or the path to the backbone's (no
            top) keras.applications weights file.
        taps: layer names to return, in the order wanted; default: the backbone's
            ``TAP_STRIDES`` taps, finest first.

    Returns:
        The tapped Keras tensors, in the order of ``taps``.

    Raises:
        ValueError: unknown backbone or tap, bad ``encoder_weights``, or pretrained
            weights asked for an input that does not have 3 channels.
        WeightsUnavailableError: the ImageNet weights could not be downloaded.
    """
    spec = encoder_spec(backbone)
    encoder_weights = check_encoder_weights(encoder_weights, backbone)
    if encoder_weights is not None:
        check_pretrained_channels(inputs.shape[-1], backbone)
    scaled = spec.input_scaling(inputs)
    with (
        imagenet_download(
            encoder_weights,
            backbone,
            (
                f"Download the keras.applications '{backbone}' no-top weights file (e.g. "
                f"{backbone}_notop.h5) on a machine with internet access and pass its path: "
                f"encoder_weights='/path/to/{backbone}_notop.h5'; or put it in ~/.keras/models/."
            ),
        ),
        imagenet_from(encoder_weights) as weights,
    ):
        model = spec.application(include_top=False, weights=weights, input_tensor=scaled)
    names = tuple(taps) if taps is not None else spec.taps
    known = {layer.name for layer in model.layers}
    missing = [name for name in names if name not in known]
    if missing:
        raise ValueError(f"taps {missing} are not layers of keras.applications {backbone}.")
    return [model.get_layer(name).output for name in names]


@contextlib.contextmanager
def imagenet_from(encoder_weights: str | None) -> Iterator[str | None]:
    """The ``weights`` argument for keras.applications: a local file becomes
    ``"imagenet"`` with keras' ``get_file`` (the download keras.applications calls)
    returning that file inside the block, so the backbone is the network the ImageNet
    download builds; ``None`` and ``"imagenet"`` pass unchanged."""
    if encoder_weights in (None, "imagenet"):
        yield encoder_weights
        return
    with mock.patch.object(file_utils, "get_file", lambda *args, **kwargs: encoder_weights):
        yield "imagenet"


def is_download_failure(error: Exception) -> bool:
    """Whether ``error`` comes from keras' ``get_file`` failing to download a file."""
    return isinstance(error, OSError) or "URL fetch failure" in str(error)


@contextlib.contextmanager
def imagenet_download(weights: str | None, what: str, remedy: str) -> Iterator[None]:
    """Turns a failed ImageNet download inside the block into a
    :class:`WeightsUnavailableError` that names ``what`` and tells the ``remedy``
    (keras' ``get_file`` raises a bare Exception); other errors pass unchanged."""
    try:
        yield
    except Exception as error:
        if weights == "imagenet" and is_download_failure(error):
            raise WeightsUnavailableError(
                f"Could not download the ImageNet weights of {what} ({error}). {remedy}"
            ) from error
        raise
