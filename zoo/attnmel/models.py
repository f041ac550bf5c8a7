"""AttnMel-CNN and its baselines (Yan, Kawahara & Hamarneh, "Melanoma Recognition via
Visual Attention", IPMI 2019).

Four classifiers on a VGG-16 backbone (Tables 1-2, rows "VGG-16" to "AttnMel-CNN"):

====================  ========================================================  ==========
builder               head on the VGG-16 convolutions (Sec. 3.2)                outputs
====================  ========================================================  ==========
build_vgg16_classifier  the original dense layers (fc1, fc2), 2-way softmax      probabilities
build_vgg16_gap       GAP(pool-5), softmax                                      probabilities
build_mel_cnn         concat GAP(pool-5), GAP(pool-3), GAP(pool-4), softmax     probabilities
build_attnmel_cnn     concat GAP(pool-5) and two attention modules on pool-3    probabilities,
                      and pool-4 guided by pool-5 (Fig. 1-2, eq. 1-3), softmax  attention_pool3,
                                                                                attention_pool4
====================  ========================================================  ==========

AttnMel-CNN returns a dict with the class probabilities and both attention maps
(``A`` of eq. 2, at 1/8 and 1/16 of the input), the outputs
:func:`zoo.losses.attnmel_losses` regularises (eq. 5, the "-Lesion", "-Dermo" and
"-Bkg" rows of Table 2) and Table 3 / Fig. 3 evaluate.

Input: RGB in [0, 1], H and W divisible by 32 (the paper: 224x224 crops of 256x256
images, :data:`ATTNMEL_INPUT`). With the plain VGG-16 backbone the model rescales
it internally to keras.applications' "caffe" input (:mod:`zoo.common.encoders`).

Paper versus the authors' code (SaoYan/IPMI2019-AttnMel); defaults follow the paper:

* backbone: the paper says VGG-16 pre-trained on ImageNet (``batch_norm=False``, the
  default, ``encoder_weights="imagenet"``); the code uses torchvision's VGG-16 with batch
  norm (``batch_norm=True``: conv-BN-ReLU; keras.applications has no ImageNet
  weights for it; the input is used as given: the tables standardise it with the
  training images' channel statistics as the code does, :mod:`data_tools.statistics`);
* attention normalisation: sigmoid (eq. 2); ``normalization="softmax"`` is the
  code's alternative (:class:`zoo.attnmel.layers.AttnMelAttention`).

Initialisation as the code: attention convolutions He-normal (Sec. 3.1), classifier
``N(0, 0.01)`` with zero bias.
"""

from __future__ import annotations

import os
from typing import Sequence

import keras

from data_tools.preprocess import InputSpec
from zoo.attnmel.layers import NORMALIZATIONS, AttnMelAttention
from zoo.common.blocks import conv_bn_relu
from zoo.common.encoders import build_encoder, imagenet_download
from zoo.common.validation import check_bool, check_choice
from zoo.common.weights import assemble_model, check_builder_arguments

ATTNMEL_INPUT = InputSpec(image_size=(224, 224), fit="crop", crop_fraction=0.8, pre_crop_size=(256, 256))
"""The paper's input (Sec. 3.1): centre square of 0.8 x the shorter side, resized to
256x256, then a 224x224 crop (random in training, centred at test), RGB in [0, 1]."""

VGG16_BLOCKS: tuple[tuple[int, int], ...] = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
"""VGG-16 (configuration D): (convolutions, filters) of each block, each followed by
a 2x2 max-pool (Simonyan & Zisserman 2015, Table 1)."""
VGG16_POOLS: tuple[str, ...] = ("block3_pool", "block4_pool", "block5_pool")
"""The layers AttnMel taps: pool-3 (1/8), pool-4 (1/16), pool-5 (1/32)."""
VGG16_DENSE_UNITS = 4096
VGG16_DROPOUT = 0.5  # Simonyan & Zisserman, Sec. 3.1: dropout on the first two FC layers
VGG16_SIZE_MULTIPLE = 32
ATTENTION_OUTPUTS: tuple[str, ...] = ("attention_pool3", "attention_pool4")
PAPER_PARAMETER_SAVING = 100e6
"""Sec. 3.2: AttnMel-CNN has "around 100M fewer" parameters than VGG-16."""

Weights = str | os.PathLike | None


def _vgg16_bn_features(inputs) -> list:
    """VGG-16 with batch norm (torchvision ``vgg16_bn``, the authors' backbone).

    Layers ``block{b}_conv{c}_conv`` / ``_bn`` / ``_relu`` and ``block{b}_pool``.
    Returns the three :data:`VGG16_POOLS` tensors.
    """
    x, pools = inputs, {}
    for block, (convolutions, filters) in enumerate(VGG16_BLOCKS, start=1):
        for conv in range(1, convolutions + 1):
            x = conv_bn_relu(x, filters, name=f"block{block}_conv{conv}")
        pools[f"block{block}_pool"] = x = keras.layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    return [pools[name] for name in VGG16_POOLS]


def vgg16_features(inputs, encoder_weights: Weights = None, batch_norm: bool = False) -> list:
    """Pool-3, pool-4 and pool-5 of VGG-16 run on ``inputs`` (RGB in [0, 1]).

    Args:
        inputs: the model's ``keras.Input``.
        encoder_weights: ``None``, ``"imagenet"`` or the path to keras.applications'
            VGG16 no-top weights file (``batch_norm=False`` only).
        batch_norm: the authors' VGG-16-BN instead of keras.applications VGG16.

    Raises:
        ValueError: ``encoder_weights`` other than ``None`` with ``batch_norm=True``, or bad.
    """
    check_bool("batch_norm", batch_norm)
    if not batch_norm:
        return build_encoder("vgg16", inputs, encoder_weights, taps=VGG16_POOLS)
    if encoder_weights is not None:
        raise ValueError(
            f"encoder_weights={encoder_weights!r} with batch_norm=True: keras.applications has no "
            "VGG-16-BN weights. Use encoder_weights=None (and weights= for a checkpoint of the "
            "trained model) or batch_norm=False for ImageNet VGG-16."
        )
    return _vgg16_bn_features(inputs)


def softmax_classifier(features, classes: int):
    """Dense ``predictions`` (``N(0, 0.01)`` kernel, zero bias, as the authors' code)
    and a float32 softmax ``probabilities`` (exact under mixed precision)."""
    logits = keras.layers.Dense(
        classes, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01), name="predictions"
    )(features)
    return keras.layers.Activation("softmax", dtype="float32", name="probabilities")(logits)


def _start(
    name: str,
    input_shape,
    classes: int,
    weights: Weights,
    encoder_weights: Weights,
    return_attention: bool,
    *,
    attention: bool,
) -> tuple[keras.KerasTensor, str | None]:
    """The builders' common checks; returns the model input and the checked encoder weights."""
    input_shape, encoder_weights = check_builder_arguments(
        name,
        input_shape,
        classes,
        weights,
        encoder_weights,
        return_attention,
        multiple=VGG16_SIZE_MULTIPLE,
        attention=attention,
    )
    return keras.Input(input_shape, name="image"), encoder_weights


def _build_attnmel(
    input_shape: Sequence[int],
    classes: int,
    weights: Weights,
    *,
    encoder_weights: Weights,
    return_attention: bool,
    batch_norm: bool,
    attention: bool,
    normalization: str,
    attention_filters: int,
    name: str,
) -> keras.Model:
    """AttnMel-CNN (``attention=True``) or Mel-CNN (Sec. 3.2, "Does attention help?")."""
    check_choice("normalization", normalization, NORMALIZATIONS)
    inputs, encoder_weights = _start(
        name, input_shape, classes, weights, encoder_weights, return_attention, attention=attention
    )
    pool3, pool4, pool5 = vgg16_features(inputs, encoder_weights, batch_norm)
    global_vector = keras.layers.GlobalAveragePooling2D(name="pool5_gap")(pool5)
    outputs = {}
    if attention:
        local_vectors = []
        for level, local in ((3, pool3), (4, pool4)):
            vector, attention_map = AttnMelAttention(attention_filters, normalization, name=f"attention{level}")(
                [local, pool5]
            )
            local_vectors.append(vector)
            outputs[f"attention_pool{level}"] = keras.layers.Activation(
                "linear", dtype="float32", name=f"attention_pool{level}"
            )(attention_map)
    else:
        local_vectors = [
            keras.layers.GlobalAveragePooling2D(name=f"pool{level}_gap")(local)
            for level, local in ((3, pool3), (4, pool4))
        ]
    features = keras.layers.Concatenate(name="features")([global_vector, *local_vectors])
    probabilities = softmax_classifier(features, classes)
    return assemble_model(
        inputs,
        "probabilities",
        probabilities,
        outputs,
        return_attention=return_attention,
        weights=weights,
        name=name,
        attention_by_default=attention,
    )


def build_attnmel_cnn(
    input_shape: Sequence[int] = (224, 224, 3),
    classes: int = 2,
    weights: Weights = None,
    *,
    encoder_weights: Weights = None,
    return_attention: bool = True,
    batch_norm: bool = False,
    normalization: str = "sigmoid",
    attention_filters: int = 256,
    name: str = "attnmel_cnn",
) -> keras.Model:
    """AttnMel-CNN (Sec. 2.1, Fig. 1-2; Table 1 row 7, Table 2 rows 9-12).

    VGG-16 without dense layers; attention modules (eq. 1-3) on pool-3 and pool-4
    with pool-5 as global guidance; GAP(pool-5) (512) and the two attended vectors
    (256 + 512) concatenated (1280) into a softmax classifier.

    Args:
        input_shape: ``(H, W, C)``, H and W divisible by 32; RGB in [0, 1].
        classes: softmax outputs (the paper: 2, melanoma vs rest).
        weights: ``None`` or a ``.weights.h5``/``.keras`` checkpoint of this model.
        encoder_weights: the VGG-16 convolutions': ``None``, ``"imagenet"`` (the
            paper, Sec. 3.1) or the path to keras.applications' VGG16 no-top
            weights file.
        return_attention: output both attention maps beside the probabilities.
            Unlike the other builders' it defaults to ``True``: the paper's loss
            regularises the maps (eq. 5, :func:`zoo.losses.attnmel_losses`).
            ``False`` gives the probabilities alone.
        batch_norm: VGG-16-BN backbone of the authors' code (``encoder_weights=None``
            only).
        normalization: eq. 2: ``"sigmoid"`` (paper) or ``"softmax"`` (code option).
        attention_filters: filters of ``W_f`` and ``W_g`` (the paper: 256).
        name: the model's name.

    Returns:
        A model with dict output ``{"probabilities": (batch, classes),
        "attention_pool3": (batch, H/8, W/8, 1), "attention_pool4":
        (batch, H/16, W/16, 1)}`` (the probabilities alone with
        ``return_attention=False``).
    """
    return _build_attnmel(
        input_shape,
        classes,
        weights,
        encoder_weights=encoder_weights,
        return_attention=return_attention,
        batch_norm=batch_norm,
        attention=True,
        normalization=normalization,
        attention_filters=attention_filters,
        name=name,
    )


def build_mel_cnn(
    input_shape: Sequence[int] = (224, 224, 3),
    classes: int = 2,
    weights: Weights = None,
    *,
    encoder_weights: Weights = None,
    return_attention: bool = False,
    batch_norm: bool = False,
    name: str = "mel_cnn",
) -> keras.Model:
    """Mel-CNN: AttnMel-CNN without attention, GAP of pool-3, pool-4 and pool-5
    concatenated (Sec. 3.2, "Does Attention Help?"; Table 1 row 6, Table 2 row 8).

    Arguments as :func:`build_attnmel_cnn` (no attention maps:
    ``return_attention=False`` only); outputs the class probabilities.
    """
    return _build_attnmel(
        input_shape,
        classes,
        weights,
        encoder_weights=encoder_weights,
        return_attention=return_attention,
        batch_norm=batch_norm,
        attention=False,
        normalization="sigmoid",
        attention_filters=1,
        name=name,
    )


def build_vgg16_gap(
    input_shape: Sequence[int] = (224, 224, 3),
    classes: int = 2,
    weights: Weights = None,
    *,
    encoder_weights: Weights = None,
    return_attention: bool = False,
    batch_norm: bool = False,
    name: str = "vgg16_gap",
) -> keras.Model:
    """VGG-16-GAP: the dense layers replaced by global average pooling (Sec. 3.2,
    "Comparison with the Truncated VGG"; Table 1 row 5, Table 2 row 7).

    GAP ``avg_pool`` and Dense ``predictions``: the layers
    :func:`zoo.cam.class_activation_map` reads for Table 3's CAM column.
    Arguments as :func:`build_mel_cnn`; outputs the class probabilities.
    """
    inputs, encoder_weights = _start(
        name, input_shape, classes, weights, encoder_weights, return_attention, attention=False
    )
    pool5 = vgg16_features(inputs, encoder_weights, batch_norm)[-1]
    features = keras.layers.GlobalAveragePooling2D(name="avg_pool")(pool5)
    return assemble_model(
        inputs,
        "probabilities",
        softmax_classifier(features, classes),
        {},
        return_attention=False,
        weights=weights,
        name=name,
    )


def build_vgg16_classifier(
    input_shape: Sequence[int] = (224, 224, 3),
    classes: int = 2,
    weights: Weights = None,
    *,
    encoder_weights: Weights = None,
    return_attention: bool = False,
    batch_norm: bool = False,
    name: str = "vgg16",
) -> keras.Model:
    """The original VGG-16 with its dense layers and a ``classes``-way output
    (Sec. 3.2, "Comparing with the Original VGG"; Table 1 row 4, Table 2 row 6).

    Flatten, fc1 and fc2 (4096 units, ReLU, dropout 0.5 as in Simonyan &
    Zisserman), then the new softmax layer.

    Args:
        encoder_weights: ``None``, ``"imagenet"`` or the path to keras.applications'
            full VGG16 weights file (``vgg16_weights_tf_dim_ordering_tf_kernels.h5``,
            with the dense layers): every layer but the classifier is loaded from
            it, as the paper does. Needs a 224x224x3 input (fc1's shape).
        Other arguments as :func:`build_mel_cnn`.
    """
    inputs, encoder_weights = _start(
        name, input_shape, classes, weights, encoder_weights, return_attention, attention=False
    )
    if encoder_weights is not None and (batch_norm or tuple(inputs.shape[1:]) != (224, 224, 3)):
        raise ValueError(
            f"{name}: encoder_weights={encoder_weights!r} needs batch_norm=False and input_shape="
            f"(224, 224, 3) (the shape of VGG-16's dense layers), got batch_norm={batch_norm}, "
            f"input_shape={tuple(inputs.shape[1:])}."
        )
    x = vgg16_features(inputs, None, batch_norm)[-1]
    x = keras.layers.Flatten(name="flatten")(x)
    for index in (1, 2):
        x = keras.layers.Dense(VGG16_DENSE_UNITS, activation="relu", name=f"fc{index}")(x)
        x = keras.layers.Dropout(VGG16_DROPOUT, name=f"fc{index}_dropout")(x)
    return assemble_model(
        inputs,
        "probabilities",
        softmax_classifier(x, classes),
        {},
        return_attention=False,
        weights=weights,
        name=name,
        initialise=lambda model: _load_full_vgg16_weights(model, encoder_weights),
    )


def _load_full_vgg16_weights(model: keras.Model, encoder_weights: str | None) -> None:
    """Copies keras.applications VGG16 (with top) weights into same-named layers (``None``:
    nothing)."""
    if encoder_weights is None:
        return
    with imagenet_download(
        encoder_weights,
        "VGG16",
        (
            "Download vgg16_weights_tf_dim_ordering_tf_kernels.h5 (keras.applications, with top) "
            "on a machine with internet access and pass its path as encoder_weights=, or put it in "
            "~/.keras/models/."
        ),
    ):
        source = keras.applications.VGG16(include_top=True, weights=encoder_weights)
    for layer in source.layers:
        if layer.weights and layer.name != "predictions":
            model.get_layer(layer.name).set_weights(layer.get_weights())
