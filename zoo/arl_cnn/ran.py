"""Attention module of the Residual Attention Network (Wang et al., CVPR 2017).

An attention module (Wang et al., Sec. 3 and Fig. 2) with the paper's
hyper-parameters p = 1, t = 2, r = 1:

* one pre-processing residual unit;
* trunk branch T: two residual units;
* soft mask branch M: ``levels`` times (3x3/2 max pooling + one residual unit)
  bottom-up, one extra unit at the bottom, then top-down bilinear up-sampling
  with a skip connection (one residual unit) from each bottom-up level, back to
  the input size; BN-ReLU-1x1 conv-BN-ReLU-1x1 conv-sigmoid;
* attention residual learning H = (1 + M) * T (eq. 3 of Wang et al.);
* one post-processing residual unit.

Residual units are passed in (``residual_unit(x, name)``, same channels out as
in), so the module reuses the bottleneck block of :mod:`zoo.common.resnet`.
Wang et al. take ``levels`` = 3, 2, 1 at 56x56, 28x28 and 14x14 so that the
mask bottom is 7x7 (their Attention-56).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from zoo.common.resizing import resize_to

ResidualUnit = Callable[[keras.KerasTensor, str], keras.KerasTensor]


def soft_mask_branch(x: keras.KerasTensor, residual_unit: ResidualUnit, levels: int, name: str) -> keras.KerasTensor:
    """Bottom-up top-down soft mask M in [0, 1] with the shape of ``x``."""
    if int(levels) < 1:
        raise ValueError(f"levels must be a positive integer, got {levels!r}")
    channels = x.shape[-1]
    scales, skips, mask = [x], [], x
    for level in range(1, levels + 1):
        mask = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_down{level}_pool")(mask)
        mask = residual_unit(mask, f"{name}_down{level}")
        scales.append(mask)
        if level < levels:
            skips.append(residual_unit(mask, f"{name}_skip{level}"))
    mask = residual_unit(mask, f"{name}_bottom")
    for level in range(levels - 1, -1, -1):
        mask = resize_to(mask, scales[level].shape[1:3], f"{name}_up{level}_resize")
        if level > 0:
            mask = layers.Add(name=f"{name}_up{level}_merge")([mask, skips[level - 1]])
            mask = residual_unit(mask, f"{name}_up{level}")
    for index in (1, 2):
        mask = layers.BatchNormalization(name=f"{name}_head{index}_bn")(mask)
        mask = layers.Activation("relu", name=f"{name}_head{index}_relu")(mask)
        mask = layers.Conv2D(channels, 1, name=f"{name}_head{index}_conv")(mask)
    return layers.Activation("sigmoid", name=f"{name}_sigmoid")(mask)


def attention_module(x: keras.KerasTensor, residual_unit: ResidualUnit, levels: int, name: str) -> keras.KerasTensor:
    """One RAN attention module, output (1 + M(x)) * T(x) then a residual unit.

    Args:
        x: input feature map; the output has the same shape.
        residual_unit: ``unit(x, name)`` building one residual unit that keeps
            the channel count.
        levels: number of max-pooling steps in the soft mask branch.
        name: prefix of every layer name. The soft mask is the output of the
            layer ``{name}_mask_sigmoid``.
    """
    x = residual_unit(x, f"{name}_pre")
    trunk = residual_unit(residual_unit(x, f"{name}_trunk1"), f"{name}_trunk2")
    mask = soft_mask_branch(x, residual_unit, levels, f"{name}_mask")
    gated = layers.Multiply(name=f"{name}_gate")([mask, trunk])
    x = layers.Add(name=f"{name}_residual")([trunk, gated])
    return residual_unit(x, f"{name}_post")
