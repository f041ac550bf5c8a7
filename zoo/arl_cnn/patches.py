"""ARL-CNN's multi-scale central patches (Zhang et al., ARL-CNN, IEEE TMI 2019, section IV-B).

"we randomly extracted 60 rectangular image patches from the central part of each
image at different scales (1/5, 2/5, 3/5, and 4/5 of original image size) [...] and
then resized them to 224 x 224 using the bilinear interpolation"; "In the test stage,
we used the same patch extraction method to randomly crop nine patches from each test
image, fed them to the trained network, and averaged the obtained scores".

* :func:`arl_patch_boxes`: the random boxes, each at a scale drawn uniformly from
  :data:`ARL_SCALES`, with the image's aspect ratio;
* :func:`arl_training_patches` (60 per image) and :func:`arl_test_patches` (9 per
  image): the boxes cut and resized bilinearly, ``[count, *size, C]``;
* :func:`average_over_patches`: an image's score, the mean over its test patches.

Both patch functions take ``(image, seed)`` first, so with the size fixed
(``functools.partial(arl_training_patches, size=spec.image_size)``) they are the
``expand`` hook of :func:`data_tools.pipeline.classification_dataset`, which gives
each image a seed from the dataset's seed and the image's place in its records:
the patches of an image are fixed for a seed (extracted once, as the paper does
before its online augmentation) and differ between seeds (Table VII's ten runs each
draw their own, ``reproduce/arl_table7.py``).
"""

from __future__ import annotations

from data_tools.lazy_tensorflow import lazy_tensorflow
from data_tools.patches import crop_and_resize_boxes

tf = lazy_tensorflow("ARL-CNN's patches in tf.data")

ARL_SCALES = (0.2, 0.4, 0.6, 0.8)
"""Sec. IV-B: 1/5, 2/5, 3/5 and 4/5 of the image size."""
ARL_TRAIN_PATCHES = 60
"""Sec. IV-B: patches per training image."""
ARL_TEST_PATCHES = 9
"""Sec. IV-B: patches per test image, whose scores are averaged."""
ARL_PATCH_SIZE = (224, 224)
"""Sec. IV-B: the networks' input."""
ARL_CENTRE_JITTER = 0.5
""""The central part of the image" (Sec. IV-B) is not quantified: a patch is placed at
the centre and shifted by up to this fraction of its free margin on each side (0:
always centred, 1: anywhere in the image)."""


def arl_patch_boxes(
    height: tf.Tensor,
    width: tf.Tensor,
    count: int,
    seed: tf.Tensor,
    *,
    scales: tuple[float, ...] = ARL_SCALES,
    jitter: float = ARL_CENTRE_JITTER,
) -> tf.Tensor:
    """Integer boxes ``[count, 4]`` as ``(top, left, box_height, box_width)`` (Sec. IV-B).

    Each box draws its scale ``s`` uniformly from ``scales`` and has the image's
    aspect ratio: ``round(s H) x round(s W)``. Its offset is the centred one plus a
    uniform shift of up to ``jitter`` x half the free margin. ``seed`` (shape ``[2]``,
    int32 or int64) fixes the draws (stateless ops).
    """
    if count < 1:
        raise ValueError(f"arl_patch_boxes: count must be >= 1, got {count}.")
    if not 0.0 <= jitter <= 1.0:
        raise ValueError(f"arl_patch_boxes: jitter must be in [0, 1], got {jitter!r}.")
    if not scales or not all(0.0 < scale <= 1.0 for scale in scales):
        raise ValueError(f"arl_patch_boxes: scales must be fractions in (0, 1], got {scales!r}.")
    scale_seed, shift_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    choice = tf.random.stateless_uniform((count,), seed=scale_seed, minval=0, maxval=len(scales), dtype=tf.int32)
    scale = tf.gather(tf.constant(scales, tf.float32), choice)
    size = tf.cast(tf.stack([height, width]), tf.float32)
    box_size = tf.maximum(tf.round(scale[:, None] * size[None, :]), 1.0)
    free = size[None, :] - box_size
    shift = tf.random.stateless_uniform((count, 2), seed=shift_seed, minval=-1.0, maxval=1.0)
    offset = tf.clip_by_value(tf.round(free / 2.0 + jitter * shift * free / 2.0), 0.0, free)
    return tf.cast(tf.concat([offset, box_size], axis=1), tf.int32)


def arl_training_patches(
    image: tf.Tensor,
    seed: tf.Tensor,
    *,
    count: int = ARL_TRAIN_PATCHES,
    size: tuple[int, int] = ARL_PATCH_SIZE,
) -> tf.Tensor:
    """The random multi-scale central patches of one ``[H, W, C]`` image, resized
    bilinearly: float32 ``[count, *size, C]`` (Sec. IV-B)."""
    shape = tf.shape(image)
    return crop_and_resize_boxes(image, arl_patch_boxes(shape[0], shape[1], count, seed), size)


def arl_test_patches(
    image: tf.Tensor,
    seed: tf.Tensor,
    *,
    count: int = ARL_TEST_PATCHES,
    size: tuple[int, int] = ARL_PATCH_SIZE,
) -> tf.Tensor:
    """The nine test patches of one image, ``[9, *size, C]``: "the same patch extraction
    method" as in training (Sec. IV-B), drawn with ``seed`` (one run's). Average the
    model's scores over them with :func:`average_over_patches`."""
    return arl_training_patches(image, seed, count=count, size=size)


def average_over_patches(scores: tf.Tensor, patches_per_image: int = ARL_TEST_PATCHES) -> tf.Tensor:
    """``[images x patches, ...]`` scores (patches of an image consecutive) ->
    ``[images, ...]`` means: each test image's score (Sec. IV-B)."""
    scores = tf.convert_to_tensor(scores)
    grouped = tf.reshape(scores, tf.concat([[-1, patches_per_image], tf.shape(scores)[1:]], axis=0))
    return tf.reduce_mean(grouped, axis=1)
