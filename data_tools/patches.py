"""Crops, pads and patches that the papers apply before their networks, in pure TF.

* A-PSPNet (apspnet.txt, section IV.A): images are filled to a square "by adding
  gray borders" before the resize to 473, to avoid distortion:
  :func:`pad_to_square` (centred; grey 128/255 for images, background 0 for masks).
* AttnMel (attnmel.txt, section 3, "Data Preparation"): centre square with side
  0.8 x min(height, width), then resize to 256 (then random 224 crops for training,
  REFERENCE_NOTES): :func:`centre_square_crop`, :func:`centre_crop` (the random
  crop, shared with masks, is ``data_tools.augment.joint_random_crop``).
* ARL-CNN (arl_cnn.txt, section IV.B): 60 random rectangular patches from the
  central part of each training image at 1/5, 2/5, 3/5 and 4/5 of the image size,
  resized to 224 with bilinear interpolation; 9 such patches per test image whose
  scores are averaged: :func:`arl_training_patches`, :func:`arl_test_patches`,
  :func:`average_over_patches`.

Images are ``[H, W, C]`` (the crop and pad helpers also take ``[B, H, W, C]``).
Random choices use stateless ops, so a ``seed`` (shape ``[2]`` int) fixes them.
"""
from __future__ import annotations

import tensorflow as tf

GREY = 128.0 / 255.0
ARL_SCALES = (0.2, 0.4, 0.6, 0.8)
ARL_TRAIN_PATCHES = 60
ARL_TEST_PATCHES = 9
ARL_PATCH_SIZE = (224, 224)
# "The central part of the image" (ARL-CNN, section IV.B) is not quantified: a patch
# is placed at the centre and shifted by up to this fraction of its free margin on
# each side (0: always centred, 1: anywhere in the image).
ARL_CENTRE_JITTER = 0.5
# Fixed seed that makes the nine test patches the same on every run.
ARL_TEST_SEED = (2019, 9)


def _spatial_shape(image: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    shape = tf.shape(image)
    return shape[-3], shape[-2]


def pad_to_square(image: tf.Tensor, value: float = GREY) -> tf.Tensor:
    """Pad the shorter side with ``value`` so the image is square, content centred.

    The extra row/column of an odd margin goes to the bottom/right.
    """
    image = tf.convert_to_tensor(image)
    height, width = _spatial_shape(image)
    side = tf.maximum(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    spatial = [[top, side - height - top], [left, side - width - left], [0, 0]]
    paddings = [[0, 0]] * (image.shape.rank - 3) + spatial
    return tf.pad(image, paddings, constant_values=tf.cast(value, image.dtype))


def centre_square_crop(image: tf.Tensor, fraction: float = 0.8) -> tf.Tensor:
    """The centred square of side ``floor(fraction x min(H, W))`` (AttnMel: 0.8)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"centre_square_crop: fraction must be in (0, 1], got {fraction!r}.")
    image = tf.convert_to_tensor(image)
    height, width = _spatial_shape(image)
    side = tf.cast(tf.math.floor(fraction * tf.cast(tf.minimum(height, width), tf.float32)), tf.int32)
    side = tf.maximum(side, 1)
    return image[..., (height - side) // 2 : (height - side) // 2 + side, (width - side) // 2 : (width - side) // 2 + side, :]


def centre_crop(image: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """The centred ``size`` window (offsets rounded down), ``[H, W, C]`` or batched."""
    image = tf.convert_to_tensor(image)
    height, width = _spatial_shape(image)
    top, left = (height - size[0]) // 2, (width - size[1]) // 2
    return image[..., top : top + size[0], left : left + size[1], :]


def arl_patch_boxes(
    height: tf.Tensor,
    width: tf.Tensor,
    count: int,
    seed: tf.Tensor,
    *,
    scales: tuple[float, ...] = ARL_SCALES,
    jitter: float = ARL_CENTRE_JITTER,
) -> tf.Tensor:
    """Integer boxes ``[count, 4]`` as ``(top, left, box_height, box_width)``.

    Patch ``i`` has scale ``scales[i % len(scales)]`` (so 60 patches give 15 per
    scale) and the image's aspect ratio: ``round(s H) x round(s W)``. Its offset is
    the centred one plus a uniform shift of up to ``jitter`` x half the free margin.
    """
    if count < 1:
        raise ValueError(f"arl_patch_boxes: count must be >= 1, got {count}.")
    if not 0.0 <= jitter <= 1.0:
        raise ValueError(f"arl_patch_boxes: jitter must be in [0, 1], got {jitter!r}.")
    scale = tf.constant([scales[i % len(scales)] for i in range(count)], tf.float32)
    size = tf.cast(tf.stack([height, width]), tf.float32)
    box_size = tf.maximum(tf.round(scale[:, None] * size[None, :]), 1.0)
    free = size[None, :] - box_size
    shift = tf.random.stateless_uniform((count, 2), seed=seed, minval=-1.0, maxval=1.0)
    offset = tf.clip_by_value(tf.round(free / 2.0 + jitter * shift * free / 2.0), 0.0, free)
    return tf.cast(tf.concat([offset, box_size], axis=1), tf.int32)


def crop_and_resize_boxes(image: tf.Tensor, boxes: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """Crop integer ``(top, left, height, width)`` boxes of ``[H, W, C]`` and resize them bilinearly.

    One ``tf.image.crop_and_resize`` call for all boxes. A box's corner pixels map
    onto the patch's corner pixels (align-corners sampling), so a box already of
    ``size`` is copied (up to float rounding). Returns float32 ``[boxes, *size, C]``.
    """
    image = tf.convert_to_tensor(image)
    height, width = _spatial_shape(image)
    boxes = tf.cast(boxes, tf.float32)
    top, left, box_height, box_width = tf.unstack(boxes, axis=1)
    y_scale = tf.cast(tf.maximum(height - 1, 1), tf.float32)
    x_scale = tf.cast(tf.maximum(width - 1, 1), tf.float32)
    normalised = tf.stack(
        [top / y_scale, left / x_scale, (top + box_height - 1) / y_scale, (left + box_width - 1) / x_scale], axis=1
    )
    return tf.image.crop_and_resize(
        tf.cast(image[None], tf.float32), normalised, tf.zeros(tf.shape(boxes)[:1], tf.int32), size, method="bilinear"
    )


def arl_training_patches(
    image: tf.Tensor,
    seed: tf.Tensor,
    *,
    count: int = ARL_TRAIN_PATCHES,
    size: tuple[int, int] = ARL_PATCH_SIZE,
) -> tf.Tensor:
    """ARL-CNN's random multi-scale central patches of one image: ``[count, *size, C]``."""
    height, width = _spatial_shape(image)
    return crop_and_resize_boxes(image, arl_patch_boxes(height, width, count, seed), size)


def arl_test_patches(
    image: tf.Tensor,
    *,
    count: int = ARL_TEST_PATCHES,
    size: tuple[int, int] = ARL_PATCH_SIZE,
) -> tf.Tensor:
    """ARL-CNN's nine test patches, ``[9, *size, C]``: the training method with a fixed seed.

    The paper draws the test patches "using the same patch extraction method"; a
    fixed seed makes the evaluation repeatable. Average the model's scores over the
    patches with :func:`average_over_patches`.
    """
    return arl_training_patches(image, tf.constant(ARL_TEST_SEED, tf.int32), count=count, size=size)


def average_over_patches(scores: tf.Tensor, patches_per_image: int = ARL_TEST_PATCHES) -> tf.Tensor:
    """``[images x patches, ...]`` scores (patches of an image consecutive) -> ``[images, ...]`` means."""
    scores = tf.convert_to_tensor(scores)
    grouped = tf.reshape(scores, tf.concat([[-1, patches_per_image], tf.shape(scores)[1:]], axis=0))
    return tf.reduce_mean(grouped, axis=1)
