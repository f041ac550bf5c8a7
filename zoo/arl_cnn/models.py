"""ARL-CNN and the attention baselines of Zhang et al., "Attention Residual Learning
for Skin Lesion Classification", IEEE TMI 2019.

Eight classifiers share the ResNet builder of :mod:`zoo.common.resnet` (stem,
four bottleneck stages, GAP, FC; 224x224x3 input; Tables I and II):

==========  ===================  ============================  ================
model       blocks per stage     block / extra attention        Table III params
==========  ===================  ============================  ================
ResNet14    1, 1, 1, 1           residual block                 0.8e7
ARL-CNN14   1, 1, 1, 1           ARL block (eq. 9)              0.8e7
SEnet14     1, 1, 1, 1           SE block (Hu et al.)           1.1e7
RAN14       1, 1, 1, 1           + attention module, conv2-5    1.2e7
ResNet50    3, 4, 6, 3           residual block                 2.3e7
ARL-CNN50   3, 4, 6, 3           ARL block                      2.3e7
SEnet50     3, 4, 6, 3           SE block                       2.6e7
RAN50       3, 4, 6, 3           + attention module, conv2-4    3.9e7
==========  ===================  ============================  ================

``build_resnet14`` and ``build_resnet50`` (the plain ResNets) are at the end of this module.
Every 50-layer builder accepts ``encoder_weights="imagenet"``: keras.applications
ResNet50 weights copied by layer name; layers ResNet50 lacks (SE, RAN attention
modules, classifier) start from their initialisers, as the paper does for RAN50.
The paper's SEnet50 starts from Hu et al.'s own ImageNet SE-ResNet50, which
Keras does not ship (a documented deviation).

Parameter counts (classes=2, counted as the paper does: :func:`zoo.params.count_parameters`,
``pytorch_style``) against Table III (:data:`PAPER_PARAMS`). The defaults are the models
the paper's counts identify, where Table II's layout and its counts disagree:

=========  ==========================  ==============  =========================
model      default                     ours (x 1e7)    Table III (x 1e7)
=========  ==========================  ==============  =========================
SEnet14    SE reduction r = 4          1.081           1.1 (r = 16: 0.872)
RAN14      attention in conv2, conv3   1.204           1.2 (conv2-5, Table II: 5.60)
RAN50      attention in conv2-4        3.634           3.9 (conv2-5: 7.15)
SEnet50    r = 16 (Hu et al.)          2.604           2.6
=========  ==========================  ==============  =========================

RAN50 stays 0.27e7 below the paper with Table II's conv2-4: Wang et al.'s
Attention-56 modules have more residual units per branch than ours (one unit before
the trunk/mask split, one after), and no arrangement of whole modules lands on 3.9e7.
Table II's own layouts stay available (``attention_stages=(2, 3, 4, 5)``, ``ratio=16``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import keras

from zoo.arl_cnn.layers import AttentionNormalization, ScaleGate
from zoo.arl_cnn.ran import attention_module
from zoo.arl_cnn.se import SqueezeExcitation
from zoo.common.resnet import (
    RESNET14_BLOCKS,
    RESNET50_BLOCKS,
    STAGE_FILTERS,
    MergeHook,
    StageHook,
    bottleneck_block,
    build_resnet,
)

ATTENTION_TYPES = ("spatial", "channel", "mixed")

PAPER_PARAMS = {  # Table III, "Params (x 10^7)"
    "resnet14": 0.8e7,
    "ran14": 1.2e7,
    "senet14": 1.1e7,
    "arl_cnn14": 0.8e7,
    "resnet50": 2.3e7,
    "ran50": 3.9e7,
    "senet50": 2.6e7,
    "arl_cnn50": 2.3e7,
}

FINE_TUNING_ALPHA = 0.001  # Sec. IV-B: initial scale gate when fine-tuning ARL-CNN50

# With return_attention=True the maps are the outputs of the layers named so:
ARL_MAPS = "_attention_mask"  # every ARL block's mask N[F(x)] (eq. 3-6)
SE_MAPS = "_se"  # every SE block's excitation vector (Hu et al. eq. 3)
RAN_MAPS = "_mask_sigmoid"  # every attention module's soft mask M (Wang et al. eq. 3)

Weights = str | os.PathLike | None


def arl_merge(attention: str = "spatial", alpha_initial: float = FINE_TUNING_ALPHA, maps: bool = False) -> MergeHook:
    """ARL block merge (eq. 9), y = x + F(x) + alpha * N[F(x)] * x.

    ``maps=False``: [F(x), x + alpha * N[F(x)] * x], the second from one layer,
    ``{block}_scale_gate`` (weight ``alpha``; the mask is never materialised, see
    :mod:`zoo.arl_cnn.layers`). ``maps=True`` (models that return their masks):
    [x, F(x), alpha * N[F(x)] * x] with the mask layer ``{block}_attention_mask`` and
    the scale gate ``{block}_scale_gate``. Both have the same weights.
    """
    if attention not in ATTENTION_TYPES:
        raise ValueError(f"attention must be one of {ATTENTION_TYPES}, got {attention!r}")

    def merge(residual, shortcut, name):
        if not maps:
            gated = ScaleGate(alpha_initial, normalization=attention, name=f"{name}_scale_gate")([residual, shortcut])
            return [gated, residual]
        mask = AttentionNormalization(attention, name=f"{name}_attention_mask")(residual)
        gated = ScaleGate(alpha_initial, name=f"{name}_scale_gate")([mask, shortcut])
        return [shortcut, residual, gated]

    return merge


def se_merge(ratio: int = 16) -> MergeHook:
    """SE-ResNet block merge: [x, SE(F(x))] (Hu et al., Fig. 3).

    The SE layer ``{block}_se`` also outputs its excitation vector (the SEnet's
    attention map, an output with ``return_attention=True``).
    """

    def merge(residual, shortcut, name):
        recalibrated, _ = SqueezeExcitation(ratio, return_excitation=True, name=f"{name}_se")(residual)
        return [shortcut, recalibrated]

    return merge


RAN_MASK_LEVELS = {2: 3, 3: 2, 4: 1, 5: 1}  # soft-mask depth per stage (Wang et al.)


def ran_stage_hook(attention_stages: Sequence[int]) -> StageHook:
    """Insert a RAN attention module after the first block of the listed stages.

    The soft mask of stage s has ``RAN_MASK_LEVELS[s]`` max-pooling steps (3, 2,
    1 at 56, 28, 14 pixels as in Wang et al.'s Attention-56, so the mask bottom is
    7x7 at 224 input; 1 at conv5). Its residual units are the stage's bottleneck
    blocks (width = stage filters).
    """
    stages = tuple(int(stage) for stage in attention_stages)
    if not set(stages) <= set(RAN_MASK_LEVELS):
        raise ValueError(f"attention_stages must be taken from (2, 3, 4, 5), got {attention_stages!r}")

    def hook(x, stage, name):
        if stage not in stages:
            return x
        unit = functools.partial(_identity_bottleneck, filters=STAGE_FILTERS[stage - 2])
        return attention_module(x, unit, RAN_MASK_LEVELS[stage], f"{name}_attention")

    return hook


def _identity_bottleneck(x, name, filters):
    return bottleneck_block(x, filters, name)


def build_arl_cnn14(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    classes: int = 2,
    weights: Weights = None,
    *,
    encoder_weights: Weights = None,
    return_attention: bool = False,
    attention: str = "spatial",
    alpha_initial: float = FINE_TUNING_ALPHA,
) -> keras.Model:
    """ARL-CNN14 (Table I): one ARL block per stage, trained from scratch.

    Args:
        input_shape: ``(height, width, channels)``; the paper's 224x224 patches.
        classes: softmax outputs (2: one sub-task, melanoma or seborrheic keratosis).
        weights: ``None`` or a ``.weights.h5``/``.keras`` checkpoint of this model.
        encoder_weights: ``None`` only (no ImageNet ResNet14).
        return_attention: output ``{"probabilities": ..., "conv{s}_block{b}_attention_mask":
            N[F(x)], ...}`` with every block's mask (eq. 3-6).
        attention: mask normalisation, "spatial" (eq. 4, the paper's default),
            "channel" (eq. 5) or "mixed" (eq. 6).
        alpha_initial: initial scale gate alpha of every block. The paper states
            0.001 for fine-tuning only; we use it from scratch too.
    """
    return build_resnet(
        RESNET14_BLOCKS,
        "arl_cnn14",
        input_shape,
        classes,
        weights,
        encoder_weights=encoder_weights,
        return_attention=return_attention,
        map_suffix=ARL_MAPS,
        merge=arl_merge(attention, alpha_initial, return_attention),
    )


def build_arl_cnn50(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    classes: int = 2,
    weights: Weights = None,
    *,
    encoder_weights: Weights = None,
    return_attention: bool = False,
    attention: str = "spatial",
    alpha_initial: float = FINE_TUNING_ALPHA,
) -> keras.Model:
    """ARL-CNN50 (Table I): ResNet50 with ARL blocks; see :func:`build_arl_cnn14`.

    ``encoder_weights="imagenet"`` (or a keras.applications ResNet50 no-top file)
    initialises every ResNet50 layer from ImageNet (Sec. III-B) with alpha = 0.001
    (Sec. IV-B).
    """
    return build_resnet(
        RESNET50_BLOCKS,
        "arl_cnn50",
        input_shape,
        classes,
        weights,
        encoder_weights=encoder_weights,
        return_attention=return_attention,
        map_suffix=ARL_MAPS,
        merge=arl_merge(attention, alpha_initial, return_attention),
    )


SENET14_RATIO = 4
"""The SE reduction whose SEnet14 has Table III's 1.1e7 parameters (1.081e7; Hu et al.'s
r = 16 gives 0.872e7)."""
RAN14_ATTENTION_STAGES = (2, 3)
"""The stages whose RAN14 has Table III's 1.2e7 parameters (1.204e7; Table II's conv2-5
gives 5.60e7: one module at 1024 or 2048 channels alone exceeds the difference)."""


def build_senet14(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    classes: int = 2,
    weights: Weights = None,
    *,
    encoder_weights: Weights = None,
    return_attention: bool = False,
    ratio: int = SENET14_RATIO,
) -> keras.Model:
    """SEnet14 (Table II): ResNet14 with an SE block per stage (reduction ``ratio``;
    default :data:`SENET14_RATIO`, the one Table III's parameter count identifies).

    ``return_attention=True`` adds every block's excitation vector ``(batch, C)``
    (Hu et al. eq. 3) under the key ``conv{s}_block{b}_se``. Other arguments as
    :func:`build_arl_cnn14`."""
    return build_resnet(
        RESNET14_BLOCKS,
        "senet14",
        input_shape,
        classes,
        weights,
        encoder_weights=encoder_weights,
        return_attention=return_attention,
        map_suffix=SE_MAPS,
        merge=se_merge(ratio),
    )


def build_senet50(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    classes: int = 2,
    weights: Weights = None,
    *,
    encoder_weights: Weights = None,
    return_attention: bool = False,
    ratio: int = 16,
) -> keras.Model:
    """SEnet50 (Table II): SE-ResNet50. ``encoder_weights="imagenet"``: ResNet50
    layers only. Other arguments as :func:`build_senet14`."""
    return build_resnet(
        RESNET50_BLOCKS,
        "senet50",
        input_shape,
        classes,
        weights,
        encoder_weights=encoder_weights,
        return_attention=return_attention,
        map_suffix=SE_MAPS,
        merge=se_merge(ratio),
    )


def build_ran14(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    classes: int = 2,
    weights: Weights = None,
    *,
    encoder_weights: Weights = None,
    return_attention: bool = False,
    attention_stages: Sequence[int] = RAN14_ATTENTION_STAGES,
) -> keras.Model:
    """RAN14 (Table II): ResNet14 with an attention module after the listed stages' block.

    Default :data:`RAN14_ATTENTION_STAGES` (conv2, conv3: 1.204e7, Table III's 1.2e7);
    Table II's conv2..conv5 is ``attention_stages=(2, 3, 4, 5)`` (5.60e7). Needs an
    input of at least 32x32. The soft masks are the layers
    ``conv{s}_attention_mask_sigmoid`` (outputs with ``return_attention=True``). Other
    arguments as :func:`build_arl_cnn14`.
    """
    return build_resnet(
        RESNET14_BLOCKS,
        "ran14",
        input_shape,
        classes,
        weights,
        encoder_weights=encoder_weights,
        return_attention=return_attention,
        map_suffix=RAN_MAPS,
        after_first_block=ran_stage_hook(attention_stages),
    )


def build_ran50(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    classes: int = 2,
    weights: Weights = None,
    *,
    encoder_weights: Weights = None,
    return_attention: bool = False,
    attention_stages: Sequence[int] = (2, 3, 4),
) -> keras.Model:
    """RAN50 (Table II): ResNet50 with an attention module in conv2, conv3 and conv4.

    Placed after each stage's first (projection) block, as in Wang et al.'s
    Attention-56 (residual unit, then attention module). ``encoder_weights="imagenet"``
    initialises the ResNet50 layers only (Sec. IV-D). Other arguments as
    :func:`build_ran14`.
    """
    return build_resnet(
        RESNET50_BLOCKS,
        "ran50",
        input_shape,
        classes,
        weights,
        encoder_weights=encoder_weights,
        return_attention=return_attention,
        map_suffix=RAN_MAPS,
        after_first_block=ran_stage_hook(attention_stages),
    )


def build_resnet14(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    classes: int = 2,
    weights: Weights = None,
    *,
    encoder_weights: Weights = None,
    return_attention: bool = False,
) -> keras.Model:
    """ResNet14 of the ARL paper (Table I): one bottleneck block per stage (no
    attention maps, no ImageNet weights; arguments as :func:`build_arl_cnn14`)."""
    return build_resnet(
        RESNET14_BLOCKS,
        "resnet14",
        input_shape,
        classes,
        weights,
        encoder_weights=encoder_weights,
        return_attention=return_attention,
    )


def build_resnet50(
    input_shape: tuple[int, int, int] = (224, 224, 3),
    classes: int = 2,
    weights: Weights = None,
    *,
    encoder_weights: Weights = None,
    return_attention: bool = False,
) -> keras.Model:
    """ResNet50 (Table I); ``encoder_weights="imagenet"`` loads keras.applications weights."""
    return build_resnet(
        RESNET50_BLOCKS,
        "resnet50",
        input_shape,
        classes,
        weights,
        encoder_weights=encoder_weights,
        return_attention=return_attention,
    )
