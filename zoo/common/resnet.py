"""A generic bottleneck ResNet (He et al., 2016) with pluggable attention.

One stem, one bottleneck block and one stage stacker serve every ResNet-shaped
model in the zoo: plain ResNets, ARL-CNN (ARL blocks), SEnet (SE blocks), RAN
(attention modules between blocks), and the dilated backbones of A-PSPNet and
SANet. Layer names follow ``keras.applications`` ResNet50 exactly
(``conv1_conv``, ``conv2_block1_1_conv``, ..., ``conv5_block3_out``), so
:func:`transfer_resnet_weights` copies ImageNet weights by name into any model
built here, whatever attention it adds.

Block variants differ only in how the residual branch F(x) is merged with the
shortcut x. A *merge hook* ``merge(residual, shortcut, name) -> tensors`` returns
the tensors that the block adds before its final ReLU:

* plain residual block (eq. 2 of the ARL paper): ``[shortcut, residual]``;
* ARL block (eq. 9): ``[shortcut, residual, alpha * N(residual) * shortcut]``;
* SE block: ``[shortcut, SE(residual)]``.

Two more hooks insert layers between the ResNet's own: ``after_stem(x)`` on the
stem's output (A-PSPNet's start CBAM, eq. 5) and ``after_first_block(x, stage,
name)`` after each stage's first block (RAN's attention modules).

The stride of a downsampling block sits in its first 1x1 convolution, as in
``keras.applications`` (the layout of its ImageNet weights). Every conv-BN(-ReLU)
is :func:`zoo.common.blocks.conv_bn_relu` in that layout (:func:`conv_bn`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import keras
from keras import layers

from zoo.common.blocks import conv_bn_relu
from zoo.common.encoders import WeightsUnavailableError
from zoo.common.validation import check_classes, check_encoder_weights, check_input_shape, check_return_attention
from zoo.common.weights import assemble_model, check_checkpoint

BN_EPSILON = 1.001e-5
STAGE_FILTERS = (64, 128, 256, 512)
RESNET14_BLOCKS = (1, 1, 1, 1)
RESNET50_BLOCKS = (3, 4, 6, 3)
RESNET101_BLOCKS = (3, 4, 23, 3)
RESNET152_BLOCKS = (3, 8, 36, 3)
#: Blocks per stage of each named backbone. ResNet14 (one block per stage, the
#: ARL paper's Table I) has no ImageNet weights; it serves small experiments and tests.
RESNET_BACKBONES: dict[str, tuple[int, ...]] = {
    "resnet14": RESNET14_BLOCKS,
    "resnet50": RESNET50_BLOCKS,
    "resnet101": RESNET101_BLOCKS,
    "resnet152": RESNET152_BLOCKS,
}
#: The keras.applications ResNets with ImageNet weights, by blocks per stage.
IMAGENET_RESNETS: dict[tuple[int, ...], Callable[..., keras.Model]] = {
    RESNET50_BLOCKS: keras.applications.ResNet50,
    RESNET101_BLOCKS: keras.applications.ResNet101,
    RESNET152_BLOCKS: keras.applications.ResNet152,
}

MergeHook = Callable[[keras.KerasTensor, keras.KerasTensor, str], list]
StageHook = Callable[[keras.KerasTensor, int, str], keras.KerasTensor]
StemHook = Callable[[keras.KerasTensor], keras.KerasTensor]


def plain_merge(residual: keras.KerasTensor, shortcut: keras.KerasTensor, name: str) -> list:
    """The residual block's merge, y = x + F(x) (eq. 2)."""
    del name
    return [shortcut, residual]


def conv_bn(
    x: keras.KerasTensor,
    filters: int,
    kernel_size: int,
    name: str,
    *,
    strides: int = 1,
    dilation_rate: int = 1,
    padding: str = "same",
    activation: bool = True,
) -> keras.KerasTensor:
    """:func:`zoo.common.blocks.conv_bn_relu` in keras.applications' ResNet layout.

    Conv2D with bias, BN with epsilon 1.001e-5, optional ReLU: the layout of the
    ImageNet weights. Layers ``{name}_conv``, ``{name}_bn`` and ``{name}_relu``.
    """
    return conv_bn_relu(
        x,
        filters,
        kernel_size,
        strides=strides,
        dilation_rate=dilation_rate,
        padding=padding,
        use_bias=True,
        bn_epsilon=BN_EPSILON,
        relu=activation,
        name=name,
    )


def bottleneck_block(
    x: keras.KerasTensor,
    filters: int,
    name: str,
    stride: int = 1,
    dilation_rate: int = 1,
    merge: MergeHook = plain_merge,
) -> keras.KerasTensor:
    """Bottleneck block: 1x1 (filters) -> 3x3 (filters) -> 1x1 (4 filters), BN each.

    The shortcut is the identity when the input already has ``4 * filters``
    channels and ``stride == 1``, else a strided 1x1 projection + BN
    (``{name}_0_conv``). ``merge`` decides what is added before the final ReLU
    (see the module docstring); ``plain_merge`` gives the ResNet block.
    """
    if stride != 1 or x.shape[-1] != 4 * filters:
        shortcut = conv_bn(x, 4 * filters, 1, f"{name}_0", strides=stride, activation=False)
    else:
        shortcut = x
    residual = conv_bn(x, filters, 1, f"{name}_1", strides=stride)
    residual = conv_bn(residual, filters, 3, f"{name}_2", dilation_rate=dilation_rate)
    residual = conv_bn(residual, 4 * filters, 1, f"{name}_3", activation=False)
    x = layers.Add(name=f"{name}_add")(merge(residual, shortcut, name))
    return layers.Activation("relu", name=f"{name}_out")(x)


def resnet_stem(
    inputs: keras.KerasTensor, after_stem: StemHook | None = None
) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """7x7/2 convolution, BN, ReLU, then 3x3/2 max pooling (Table I, Conv1 and pool).

    ``after_stem``, if given, is applied to the conv1 output (``conv1_relu``)
    before the pooling: A-PSPNet's start CBAM (eq. 5). Returns the (hooked)
    conv1 feature map (stride 2) and the pooled map (stride 4).
    """
    x = layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    conv1 = conv_bn(x, 64, 7, "conv1", strides=2, padding="valid")
    if after_stem is not None:
        conv1 = after_stem(conv1)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(conv1)
    return conv1, layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)


def _stage_strides_and_dilations(output_stride: int) -> list[tuple[int, int]]:
    """(stride, dilation) of stages conv2..conv5 for an output stride of 8, 16 or 32.

    Once the output stride is reached, later stages keep their resolution and
    dilate their 3x3 convolutions instead (DeepLab / PSPNet dilated ResNet).
    """
    if output_stride not in (8, 16, 32):
        raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride!r}")
    plan, current, dilation = [], 4, 1
    for stage_stride in (1, 2, 2, 2):
        if current * stage_stride > output_stride:
            dilation *= stage_stride
            stage_stride = 1
        current *= stage_stride
        plan.append((stage_stride, dilation))
    return plan


def resnet_features(
    inputs: keras.KerasTensor,
    blocks_per_stage: Sequence[int] = RESNET50_BLOCKS,
    merge: MergeHook = plain_merge,
    after_first_block: StageHook | None = None,
    output_stride: int = 32,
    after_stem: StemHook | None = None,
) -> list[keras.KerasTensor]:
    """Stem and the four bottleneck stages; returns [conv1..conv5] feature maps.

    Args:
        inputs: the image tensor.
        blocks_per_stage: blocks in conv2_x..conv5_x, e.g. (3, 4, 6, 3) for ResNet50
            and (1, 1, 1, 1) for the 14-layer models of the ARL paper (Table I).
        merge: the block merge hook shared by every block (plain, ARL, SE).
        after_first_block: optional ``hook(x, stage_number, name)`` applied after
            the first block of each stage (stage_number 2..5); RAN inserts its
            attention modules there. Return ``x`` to leave a stage unchanged.
        output_stride: 32 (classification), 16 or 8 (dilated, for segmentation).
        after_stem: optional ``hook(x)`` applied to the stem's output before the
            pooling (see :func:`resnet_stem`); its result is ``features[0]``.
    """
    if len(blocks_per_stage) != 4 or any(int(b) < 1 for b in blocks_per_stage):
        raise ValueError(f"blocks_per_stage must list four positive block counts, got {blocks_per_stage!r}")
    conv1, x = resnet_stem(inputs, after_stem)
    features = [conv1]
    plan = _stage_strides_and_dilations(output_stride)
    for stage, (blocks, filters, (stride, dilation)) in enumerate(
        zip(blocks_per_stage, STAGE_FILTERS, plan, strict=True), start=2
    ):
        for block in range(1, blocks + 1):
            name = f"conv{stage}_block{block}"
            x = bottleneck_block(
                x, filters, name, stride=stride if block == 1 else 1, dilation_rate=dilation, merge=merge
            )
            if block == 1 and after_first_block is not None:
                x = after_first_block(x, stage, f"conv{stage}")
        features.append(x)
    return features


def classifier_head(features: keras.KerasTensor, classes: int) -> keras.KerasTensor:
    """GAP -> fully connected -> softmax (Table I, last two rows).

    The Dense layer (``predictions``) gives logits and a separate float32 softmax
    (``probabilities``) keeps the output float32 under mixed precision. The CAM
    of :mod:`zoo.cam` reads the ``avg_pool`` input and the ``predictions`` kernel.
    """
    check_classes(classes)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(features)
    x = layers.Dense(classes, name="predictions")(x)
    return layers.Activation("softmax", dtype="float32", name="probabilities")(x)


def imagenet_resnet(
    blocks_per_stage: Sequence[int] = RESNET50_BLOCKS, encoder_weights: str | os.PathLike = "imagenet"
) -> keras.Model:
    """The keras.applications ResNet50/101/152 without its top, with ImageNet weights.

    ``encoder_weights`` may also be a local copy of keras' no-top weights file (e.g.
    ``resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5``) for offline use.
    A failed download raises a :class:`WeightsUnavailableError` (a RuntimeError)
    that tells how to use a local file.
    """
    application = IMAGENET_RESNETS[tuple(blocks_per_stage)]
    try:
        return application(include_top=False, weights=encoder_weights, input_shape=(None, None, 3))
    except Exception as error:  # download or file errors: re-raise with a remedy
        file = f"{application.__name__.lower()}_weights_tf_dim_ordering_tf_kernels_notop.h5"
        raise WeightsUnavailableError(
            f"could not load the keras.applications {application.__name__} ImageNet weights "
            f"({type(error).__name__}: {error}). Download "
            f"https://storage.googleapis.com/tensorflow/keras-applications/resnet/{file} "
            "elsewhere and pass its local path as encoder_weights="
        ) from error


def transfer_resnet_weights(source: keras.Model, target: keras.Model) -> list[str]:
    """Copy every weighted layer of ``source`` into the same-named layer of ``target``.

    Used to initialise ResNet50, ARL-CNN50, RAN50 and SEnet50 from
    keras.applications ResNet50 (the paper's "transferring the parameters from a
    pre-trained ResNet50", Sec. IV-D). Layers of ``target`` absent from ``source``
    (ARL alphas, SE and RAN layers, the classifier) keep their initial values.
    Raises ValueError naming the first layer that is missing or mis-shaped.
    Returns the names of the copied layers.
    """
    copied = []
    for layer in source.layers:
        values = layer.get_weights()
        if not values:
            continue
        try:
            destination = target.get_layer(layer.name)
        except ValueError:
            raise ValueError(f"layer {layer.name!r} of {source.name!r} has no counterpart in {target.name!r}") from None
        shapes = [tuple(w.shape) for w in destination.weights]
        if shapes != [v.shape for v in values]:
            raise ValueError(
                f"layer {layer.name!r}: {source.name!r} has shapes "
                f"{[v.shape for v in values]}, {target.name!r} {shapes}"
            )
        destination.set_weights(values)
        copied.append(layer.name)
    return copied


def has_imagenet_weights(blocks_per_stage: Sequence[int]) -> bool:
    """keras.applications has ImageNet weights for these blocks (ResNet50/101/152)."""
    return tuple(blocks_per_stage) in IMAGENET_RESNETS


def load_encoder_weights(
    model: keras.Model, encoder_weights: str | None, blocks_per_stage: Sequence[int] = RESNET50_BLOCKS
) -> None:
    """Copies a checked ``encoder_weights`` (``None``: nothing; ``"imagenet"`` or a
    keras.applications no-top weights file of the ResNet with ``blocks_per_stage``)
    into ``model`` by layer name (:func:`transfer_resnet_weights`)."""
    if encoder_weights is not None:
        transfer_resnet_weights(imagenet_resnet(blocks_per_stage, encoder_weights), model)


def build_resnet(
    blocks_per_stage: Sequence[int],
    name: str,
    input_shape: Sequence[int] = (224, 224, 3),
    classes: int = 2,
    weights: str | os.PathLike | None = None,
    *,
    encoder_weights: str | os.PathLike | None = None,
    return_attention: bool = False,
    map_suffix: str | None = None,
    merge: MergeHook = plain_merge,
    after_first_block: StageHook | None = None,
) -> keras.Model:
    """A ResNet-shaped classifier: stem, four stages, GAP and FC (Table I/II).

    The shared builder behind every public ``build_*`` classifier of the ARL
    paper, in the builders' common signature (:mod:`zoo.common.validation`):
    ``weights`` is a checkpoint of the whole model, ``encoder_weights``
    ``"imagenet"`` (50-, 101- and 152-layer models) or a keras.applications no-top
    ResNet file, copied by layer name.

    Args:
        map_suffix: the attention maps are the outputs of the layers whose names
            end so (the second output of a layer that returns two);
            ``return_attention=True`` outputs ``{"probabilities": ..., <layer name>:
            map, ...}``. ``None``: the model has no maps.
    """
    check_checkpoint(weights, name)
    encoder_weights = check_encoder_weights(encoder_weights, name, pretrained=has_imagenet_weights(blocks_per_stage))
    shape = check_input_shape(input_shape, name, pretrained=encoder_weights is not None)
    check_classes(classes)
    check_return_attention(return_attention, name, available=map_suffix is not None)
    inputs = keras.Input(shape=shape, name="image")
    features = resnet_features(inputs, blocks_per_stage, merge, after_first_block)
    probabilities = classifier_head(features[-1], classes)
    maps = {}
    if return_attention:
        maps = {
            layer.name: _attention_output(layer)
            for layer in keras.Model(inputs, probabilities).layers
            if layer.name.endswith(map_suffix)
        }
    return assemble_model(
        inputs,
        "probabilities",
        probabilities,
        maps,
        return_attention=return_attention,
        weights=weights,
        name=name,
        initialise=lambda model: load_encoder_weights(model, encoder_weights, blocks_per_stage),
    )


def _attention_output(layer: keras.layers.Layer) -> keras.KerasTensor:
    """A map layer's map: its output, or the second of its two outputs."""
    output = layer.output
    return output[1] if isinstance(output, (tuple, list)) else output
