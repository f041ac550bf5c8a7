"""Crops, pads and box crops that the papers apply before their networks, in pure TF.

* :func:`pad_to_square`: the shorter side padded, content centred (A-PSPNet,
  Wen et al., A-PSPNet, section IV.A: images are filled to a square "by adding gray borders"
  before the resize to 473; grey 128/255 for images, background 0 for masks).
* :func:`centre_square_crop`: the centred square of a fraction of the shorter side
  (AttnMel, Yan et al., AttnMel-CNN, IPMI 2019, section 3, "Data Preparation": 0.8), and :func:`centre_crop`,
  the centred window of a size (the random crop, shared with masks, is
  ``data_tools.augment.joint_random_crop``).
* :func:`crop_and_resize_boxes`: integer boxes cut and resized bilinearly in one op
  (ARL-CNN's patches, :mod:`zoo.arl_cnn.patches`, are such boxes).

Images are ``[H, W, C]`` (the crop and pad helpers also take ``[B, H, W, C]``).
"""

from __future__ import annotations

from data_tools.lazy_tensorflow import lazy_tensorflow
from data_tools.tensor_ops import Ops, tensor_ops

tf = lazy_tensorflow("the tf.data crops and pads")


GREY = 128.0 / 255.0


def _spatial_shape(image: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    shape = tf.shape(image)
    return shape[-3], shape[-2]


def pad_to_square(image: tf.Tensor, value: float = GREY, ops: str | Ops = "tensorflow") -> tf.Tensor:
    """Pad the shorter side with ``value`` so the image is square, content centred.

    The extra row/column of an odd margin goes to the bottom/right. ``ops``: the
    namespace (:mod:`data_tools.tensor_ops`), TensorFlow's or ``keras.ops``.
    """
    xp = tensor_ops(ops)
    image = xp.asarray(image)
    height, width = xp.spatial_size(image)
    side = xp.size_max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    spatial = [[top, side - height - top], [left, side - width - left], [0, 0]]
    paddings = [[0, 0]] * (len(xp.static_shape(image)) - 3) + spatial
    return xp.pad(image, paddings, value)


def centre_square_crop(image: tf.Tensor, fraction: float = 0.8, ops: str | Ops = "tensorflow") -> tf.Tensor:
    """The centred square of side ``floor(fraction x min(H, W))`` (AttnMel: 0.8)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"centre_square_crop: fraction must be in (0, 1], got {fraction!r}.")
    xp = tensor_ops(ops)
    image = xp.asarray(image)
    height, width = xp.spatial_size(image)
    side = xp.size_fraction(fraction, xp.size_min(height, width))
    return image[
        ..., (height - side) // 2 : (height - side) // 2 + side, (width - side) // 2 : (width - side) // 2 + side, :
    ]


def centre_crop(image: tf.Tensor, size: tuple[int, int], ops: str | Ops = "tensorflow") -> tf.Tensor:
    """The centred ``size`` window (offsets rounded down), ``[H, W, C]`` or batched."""
    xp = tensor_ops(ops)
    image = xp.asarray(image)
    height, width = xp.spatial_size(image)
    top, left = (height - size[0]) // 2, (width - size[1]) // 2
    return image[..., top : top + size[0], left : left + size[1], :]


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
