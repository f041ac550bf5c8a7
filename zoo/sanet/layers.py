"""Superpixel average pooling, unpooling and SANet's superpixel attention module (SAM).

SANet (the SANet paper, "Superpixel Average Pooling", eq. 1) averages a feature map
``F`` inside each superpixel ``s_i`` of the image::

    R_i = sum_{(h, w) in s_i} F(h, w) / |s_i|

and unpooling gives every pixel its superpixel's ``R_i``. The superpixel
attention module ("Superpixels attention module", eq. 1 of that section) is::

    P = w * (Unpooling(R) + F)

with ``w`` a learned 1x1 convolution. The text describes a concatenation instead
of the sum; ``merge="concat"`` gives ``P = w * [Unpooling(R), F]``
(where text and equation disagree, the equation is the default).

Label maps are ``int`` ``(batch, h, w)`` or ``(batch, h, w, 1)`` with labels
``0 .. max_segments-1`` (consecutive, bounded: :mod:`zoo.sanet.superpixels`). A
map whose size differs from the features' is resized to it with nearest
neighbour, the index mapping of ``tf.image.resize(method="nearest")`` (half-pixel
centres: feature pixel ``i`` takes the label at ``floor((i + 0.5) * h / H)``,
computed in float32 like TensorFlow's kernel), as a gather with constant indices.

Everything is ``keras.ops`` (any backend; tested on TensorFlow, eager, graph and
XLA, and on JAX with ``jit_compile=True``: tests/test_jax_backend.py). Batches are pooled with
one ``keras.ops.segment_sum``
over the static count ``batch * max_segments`` (image ``b``'s labels offset by
``b * max_segments``).

Out-of-range labels, on every backend, eager or compiled: a pixel whose label is
outside ``[0, max_segments)`` is left out of the pooling (it is in no
superpixel's sum or count) and unpools to zero. Nothing raises inside the layers
(no backend can raise inside a compiled function); the readers reject such maps
with the file's name (:mod:`zoo.sanet.superpixels`, ``data_tools``), and so do
the SavedModel signature and :class:`zoo.litert.LiteRTModel`.

The mean multiplies the sums by ``counts ** -1``: in float the same mean. In an
int8 LiteRT model the power (POW) has no int8 kernel and stays float, so there is
no quantised divide by a count that int8 rounds to zero (a divide by
``counts`` gave ``DIV failed to invoke`` once a calibration superpixel had over
510 pixels); the reciprocal is then quantised to steps of 1/255 for the
multiplication, the main int8 error of SAM.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np
from keras import ops

from zoo.common.validation import check_feature_map

SAM_MERGES: tuple[str, ...] = ("add", "concat")


def _check_max_segments(layer: str, max_segments: Any) -> int:
    if isinstance(max_segments, bool) or not isinstance(max_segments, int) or max_segments < 1:
        raise ValueError(f"{layer}: max_segments must be a positive int, got {max_segments!r}.")
    return max_segments


def _check_label_shape(layer: str, shape: Sequence) -> None:
    shape = tuple(shape)
    if len(shape) not in (3, 4) or (len(shape) == 4 and shape[-1] != 1):
        raise ValueError(f"{layer}: the superpixel map must be (batch, h, w) or (batch, h, w, 1), got {shape}.")


def nearest_indices(source: int, target: int) -> np.ndarray:
    """The source index of each of ``target`` pixels resized from ``source`` with
    nearest neighbour and half-pixel centres: ``min(floor((i + 0.5) * source /
    target), source - 1)`` in float32, as TensorFlow's ResizeNearestNeighbor does."""
    scale = np.float32(source) / np.float32(target)
    index = np.floor((np.arange(target, dtype=np.float32) + np.float32(0.5)) * scale)
    return np.minimum(index.astype(np.int64), source - 1).astype(np.int32)


def resize_labels(labels, size: tuple[int, int]):
    """``int`` label maps ``(B, h, w[, 1])`` -> ``int32`` ``(B, *size)``, nearest neighbour."""
    labels = ops.cast(labels, "int32")
    if len(labels.shape) == 4:
        labels = labels[..., 0]
    source, size = tuple(labels.shape[1:3]), tuple(size)
    if source == size:
        return labels
    if None in source or None in size or not all(isinstance(d, int) for d in (*source, *size)):
        raise ValueError(f"superpixel maps {source} resized to {size}: both sizes must be static.")
    for axis in (1, 2):
        if source[axis - 1] != size[axis - 1]:
            labels = ops.take(labels, nearest_indices(source[axis - 1], size[axis - 1]), axis=axis)
    return labels


def _segment_ids(labels, max_segments: int):
    """Per-image offset ids ``(B, H, W)`` (``-1`` where the label is out of range) and
    the mask of valid pixels."""
    valid = ops.logical_and(labels >= 0, labels < max_segments)
    offsets = ops.arange(ops.shape(labels)[0], dtype="int32")[:, None, None] * max_segments
    return ops.where(valid, labels + offsets, -1), valid


def superpixel_average_pool(features, labels, max_segments: int):
    """SANet eq. 1: ``(B, H, W, C)`` features and ``(B, H, W)`` labels -> ``(B, max_segments, C)``.

    The mean of the features of each superpixel; an empty (absent) superpixel
    gets zeros; out-of-range labels are left out (module docs). Sums run in
    float32 (stable under mixed precision), the result has the features' dtype.
    """
    features, labels = ops.convert_to_tensor(features), ops.convert_to_tensor(labels)
    channels = features.shape[-1]
    ids, valid = _segment_ids(labels, max_segments)
    ids = ops.reshape(ids, (-1,))
    total = ops.shape(labels)[0] * max_segments
    values = ops.reshape(ops.cast(features, "float32"), (-1, channels))
    sums = ops.segment_sum(values, ids, num_segments=total)
    counts = ops.segment_sum(ops.reshape(ops.cast(valid, "float32"), (-1,)), ids, num_segments=total)
    means = sums * ops.power(ops.maximum(counts, 1.0), -1.0)[:, None]
    return ops.cast(ops.reshape(means, (-1, max_segments, channels)), features.dtype)


def superpixel_unpool(regions, labels):
    """``(B, N, C)`` superpixel values and ``(B, H, W)`` labels -> ``(B, H, W, C)``:
    each pixel gets its superpixel's value (zeros for labels out of range)."""
    regions, labels = ops.convert_to_tensor(regions), ops.convert_to_tensor(labels)
    max_segments = regions.shape[1]
    ids, valid = _segment_ids(labels, max_segments)
    flat = ops.reshape(regions, (-1, regions.shape[-1]))
    values = ops.take(flat, ops.maximum(ids, 0), axis=0)
    return values * ops.cast(valid, regions.dtype)[..., None]


@keras.saving.register_keras_serializable(package="zoo")
class SuperpixelAveragePooling(keras.layers.Layer):
    """Superpixel average pooling (SANet eq. 1): ``[F, s] -> R``.

    Args:
        max_segments: the bound on the superpixel labels (``0 .. max_segments-1``);
            the data's ``SlicParams.max_segments``.

    Call arguments:
        inputs: ``[features, labels]``: features ``(batch, H, W, C)``; labels
            ``int`` ``(batch, h, w)`` or ``(batch, h, w, 1)``, resized to
            ``(H, W)`` with nearest neighbour when ``(h, w) != (H, W)``.

    Returns:
        ``(batch, max_segments, C)``: the mean feature of each superpixel (zeros
        for labels absent from an image).
    """

    def __init__(self, max_segments: int = 256, **kwargs):
        super().__init__(**kwargs)
        self.max_segments = _check_max_segments("SuperpixelAveragePooling", max_segments)

    def build(self, input_shape):
        features_shape, labels_shape = (tuple(shape) for shape in input_shape)
        check_feature_map("SuperpixelAveragePooling", features_shape)
        _check_label_shape("SuperpixelAveragePooling", labels_shape)

    def call(self, inputs):
        features, labels = inputs
        labels = resize_labels(labels, tuple(features.shape[1:3]))
        return superpixel_average_pool(features, labels, self.max_segments)

    def compute_output_shape(self, input_shape):
        features_shape = tuple(input_shape[0])
        return features_shape[0], self.max_segments, features_shape[-1]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "max_segments": self.max_segments}


@keras.saving.register_keras_serializable(package="zoo")
class SuperpixelUnpooling(keras.layers.Layer):
    """Superpixel unpooling: ``[R, s] -> U`` with ``U(h, w) = R_i`` for ``(h, w)`` in ``s_i``.

    Args:
        output_size: ``(H, W)`` of the output; the labels are resized to it with
            nearest neighbour. ``None``: the labels' own size.

    Call arguments:
        inputs: ``[regions, labels]``: regions ``(batch, max_segments, C)`` (from
            :class:`SuperpixelAveragePooling`); labels ``int`` ``(batch, h, w)``
            or ``(batch, h, w, 1)``.

    Returns:
        ``(batch, H, W, C)``.
    """

    def __init__(self, output_size: Sequence[int] | None = None, **kwargs):
        super().__init__(**kwargs)
        if output_size is not None:
            output_size = tuple(output_size)
            if len(output_size) != 2 or not all(
                isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in output_size
            ):
                raise ValueError(
                    f"SuperpixelUnpooling: output_size must be None or (height, width) as positive "
                    f"ints, got {output_size!r}."
                )
        self.output_size = output_size

    def build(self, input_shape):
        regions_shape, labels_shape = (tuple(shape) for shape in input_shape)
        if len(regions_shape) != 3 or regions_shape[1] is None:
            raise ValueError(
                f"SuperpixelUnpooling: regions must be (batch, max_segments, C) with a static "
                f"max_segments, got {regions_shape}."
            )
        _check_label_shape("SuperpixelUnpooling", labels_shape)
        if self.output_size is None and None in labels_shape[1:3]:
            raise ValueError(f"SuperpixelUnpooling: the labels {labels_shape} have no static size; pass output_size.")

    def _size(self, labels_shape) -> tuple[int, int]:
        return self.output_size or tuple(labels_shape[1:3])

    def call(self, inputs):
        regions, labels = inputs
        return superpixel_unpool(regions, resize_labels(labels, self._size(labels.shape)))

    def compute_output_shape(self, input_shape):
        regions_shape, labels_shape = (tuple(shape) for shape in input_shape)
        return (regions_shape[0], *self._size(labels_shape), regions_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "output_size": self.output_size}


@keras.saving.register_keras_serializable(package="zoo")
class SuperpixelAttention(keras.layers.Layer):
    """SANet's superpixel attention module (SAM): ``[F, s] -> P = w * (Unpooling(R) + F)``.

    ``R`` is the superpixel average pooling of ``F`` (eq. 1), unpooled back to
    ``F``'s size, merged with ``F`` and recalibrated by ``w``, a 1x1 convolution
    (with bias) to ``filters`` channels.

    Args:
        max_segments: the bound on the superpixel labels.
        filters: output channels of ``w``; ``None``: those of ``F``.
        merge: ``"add"`` (the paper's equation, default) or ``"concat"`` (the
            paper's text: ``w`` sees ``[Unpooling(R), F]``).
        kernel_initializer: initialiser of ``w``.

    Call arguments:
        inputs: ``[features, labels]`` as in :class:`SuperpixelAveragePooling`.

    Returns:
        ``P``: ``(batch, H, W, filters)``.
    """

    def __init__(
        self,
        max_segments: int = 256,
        filters: int | None = None,
        merge: str = "add",
        kernel_initializer: Any = "glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.max_segments = _check_max_segments("SuperpixelAttention", max_segments)
        if filters is not None and (isinstance(filters, bool) or not isinstance(filters, int) or filters < 1):
            raise ValueError(f"SuperpixelAttention: filters must be a positive int or None, got {filters!r}.")
        if merge not in SAM_MERGES:
            raise ValueError(f"SuperpixelAttention: merge must be one of {SAM_MERGES}, got {merge!r}.")
        self.filters = filters
        self.merge = merge
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        features_shape, labels_shape = (tuple(shape) for shape in input_shape)
        check_feature_map("SuperpixelAttention", features_shape)
        _check_label_shape("SuperpixelAttention", labels_shape)
        if None in features_shape[1:]:
            raise ValueError(f"SuperpixelAttention: features need a static size and channels, got {features_shape}.")
        channels = features_shape[-1]
        self.recalibration = keras.layers.Conv2D(
            self.filters or channels,
            1,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="recalibration",
        )
        merged = channels * (2 if self.merge == "concat" else 1)
        self.recalibration.build((*features_shape[:3], merged))

    def call(self, inputs):
        features, labels = inputs
        labels = resize_labels(labels, tuple(features.shape[1:3]))
        regions = superpixel_average_pool(features, labels, self.max_segments)
        unpooled = superpixel_unpool(regions, labels)
        if self.merge == "add":
            merged = unpooled + features
        else:
            merged = ops.concatenate([unpooled, features], axis=-1)
        return self.recalibration(merged)

    def compute_output_shape(self, input_shape):
        features_shape = tuple(input_shape[0])
        return (*features_shape[:3], self.filters or features_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "max_segments": self.max_segments,
            "filters": self.filters,
            "merge": self.merge,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
